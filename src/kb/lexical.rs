//! BM25 over tantivy. The index is derived data: it is built in memory from the chunks stored in
//! SQLite (the source of truth) and rebuilt when the knowledge base's generation moves, so it can
//! never disagree with the database.
//!
//! Questions are not parsed as tantivy query syntax: the words of a question are analysed like
//! the indexed text (lower case, English stop words removed, stemmed) and OR-ed, so a question
//! with quotes, colons or `AND` is never a syntax error and never a field query.

use std::collections::BTreeSet;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TantivyDocument, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, Term};

const ANALYZER: &str = "en_stem_stop";
/// Indexing arena: large enough that ~100k chunks make few segments; freed once built.
const WRITER_BYTES: usize = 50_000_000;

#[derive(Debug, thiserror::Error)]
#[error("lexical index: {0}")]
pub struct LexicalError(#[from] tantivy::TantivyError);

pub struct LexicalIndex {
    index: Index,
    reader: IndexReader,
    body: Field,
    collection: Field,
    position: Field,
}

impl LexicalIndex {
    /// Indexes `(position, collection, passage)` entries; searches return positions.
    pub fn build<'a>(
        entries: impl IntoIterator<Item = (usize, &'a str, String)>,
    ) -> Result<Self, LexicalError> {
        let mut schema = Schema::builder();
        let body = schema.add_text_field(
            "body",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(ANALYZER)
                    .set_index_option(IndexRecordOption::WithFreqs),
            ),
        );
        let collection = schema.add_text_field("collection", STRING);
        let position = schema.add_u64_field("position", INDEXED | STORED);
        let index = Index::create_in_ram(schema.build());
        index.tokenizers().register(ANALYZER, analyzer());
        let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, WRITER_BYTES)?;
        for (pos, coll, passage) in entries {
            let mut doc = TantivyDocument::default();
            doc.add_text(body, &passage);
            doc.add_text(collection, coll);
            doc.add_u64(position, pos as u64);
            writer.add_document(doc)?;
        }
        writer.commit()?;
        let reader = index.reader()?;
        Ok(Self {
            index,
            reader,
            body,
            collection,
            position,
        })
    }

    /// The best `k` positions for `question` by BM25, best first, optionally within some
    /// collections. A question without a single indexable word finds nothing.
    pub fn search(
        &self,
        question: &str,
        k: usize,
        collections: Option<&[String]>,
    ) -> Result<Vec<(usize, f32)>, LexicalError> {
        let terms = self.terms(question)?;
        if terms.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let words: Vec<(Occur, Box<dyn Query>)> = terms
            .into_iter()
            .map(|t| {
                let q: Box<dyn Query> = Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs));
                (Occur::Should, q)
            })
            .collect();
        let mut query: Box<dyn Query> = Box::new(BooleanQuery::new(words));
        if let Some(collections) = collections {
            let allowed = TermSetQuery::new(
                collections
                    .iter()
                    .map(|c| Term::from_field_text(self.collection, c)),
            );
            // The filter must match but must not score: BM25 ranks by the words alone.
            query = Box::new(BooleanQuery::new(vec![
                (Occur::Must, query),
                (
                    Occur::Must,
                    Box::new(tantivy::query::ConstScoreQuery::new(Box::new(allowed), 0.0)),
                ),
            ]));
        }
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(k).order_by_score())?;
        top.into_iter()
            .map(|(score, address)| {
                let doc: TantivyDocument = searcher.doc(address)?;
                let position = doc
                    .get_first(self.position)
                    .and_then(|v| v.as_u64())
                    .ok_or_else(|| {
                        tantivy::TantivyError::InternalError("entry without position".into())
                    })?;
                Ok((position as usize, score))
            })
            .collect()
    }

    fn terms(&self, question: &str) -> Result<Vec<Term>, LexicalError> {
        let mut analyzer = self.index.tokenizer_for_field(self.body)?;
        let mut stream = analyzer.token_stream(question);
        let mut words = BTreeSet::new();
        while stream.advance() {
            words.insert(stream.token().text.clone());
        }
        Ok(words
            .into_iter()
            .map(|w| Term::from_field_text(self.body, &w))
            .collect())
    }
}

fn analyzer() -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser);
    match StopWordFilter::new(Language::English) {
        Some(stop_words) => builder
            .filter(stop_words)
            .filter(Stemmer::new(Language::English))
            .build(),
        None => builder.filter(Stemmer::new(Language::English)).build(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> LexicalIndex {
        LexicalIndex::build([
            (
                0,
                "hr",
                "Parental leave: the primary caregiver gets 20 weeks.".to_owned(),
            ),
            (1, "it", "Passwords need at least 14 characters.".to_owned()),
            (2, "hr", "Annual leave is 25 days.".to_owned()),
        ])
        .unwrap()
    }

    #[test]
    fn ranks_by_stemmed_words_and_ignores_query_syntax() {
        let index = index();
        let hits = index
            .search("How long is PARENTAL leaving?", 3, None)
            .unwrap();
        assert_eq!(hits[0].0, 0, "{hits:?}");
        assert!(hits.iter().any(|h| h.0 == 2), "`leaving` stems to `leav`");
        assert!(!hits.iter().any(|h| h.0 == 1));
        for odd in ["body:passwords AND", "\"unclosed", "the of and", ""] {
            let result = index.search(odd, 3, None);
            assert!(result.is_ok(), "{odd}: {result:?}");
        }
        assert_eq!(index.search("body:passwords", 3, None).unwrap()[0].0, 1);
    }

    #[test]
    fn collection_filter_restricts_without_changing_order() {
        let index = index();
        let only_it = index
            .search("leave passwords", 3, Some(&["it".to_owned()]))
            .unwrap();
        assert_eq!(only_it.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1]);
        let hr = index
            .search("parental leave", 3, Some(&["hr".to_owned()]))
            .unwrap();
        assert_eq!(hr.iter().map(|h| h.0).collect::<Vec<_>>(), vec![0, 2]);
    }
}
