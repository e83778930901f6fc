//! Hybrid retrieval: BM25 and dense candidates fused by reciprocal rank (RRF), within optional
//! collections, with the scores of every stage kept on each hit.
//!
//! RRF needs no score calibration between the two retrievers, which is why it is the default
//! fusion everywhere; its fused score, though, says nothing about how well the best chunk
//! matches. That is the job of [`Retrieval::confidence`]: the best cosine similarity between
//! the question and any searched chunk, which the pipeline compares with its threshold.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use super::embed::{TextEmbedder, passage};
use super::lexical::{LexicalError, LexicalIndex};
use super::vector::{BruteForce, VectorIndex};
use crate::gateway::GatewayError;
use crate::gateway::RequestContext;
use crate::store::{Database, StoreError, StoredChunk};

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lexical(#[from] LexicalError),
    #[error("embedding the question: {0}")]
    Embed(#[from] GatewayError),
    #[error("index build failed: {0}")]
    Worker(String),
}

/// Which retrievers a search uses; `Lexical` and `Dense` exist for evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Hybrid,
    Lexical,
    Dense,
}

#[derive(Debug, Clone, Copy)]
pub struct FusionSettings {
    /// Candidates taken from each retriever before fusion.
    pub candidates: usize,
    /// RRF's rank constant: a hit at rank r adds 1 / (rrf_k + r).
    pub rrf_k: f32,
}

#[derive(Debug, Clone, Copy)]
pub struct SearchOptions<'a> {
    pub top_k: usize,
    /// Only chunks of these collections; all when `None`.
    pub collections: Option<&'a [String]>,
    pub mode: Mode,
}

#[derive(Debug, Clone)]
pub struct Hit {
    /// The chunk (its embedding left out).
    pub chunk: StoredChunk,
    /// The fused score (RRF), or the single retriever's score in `Lexical`/`Dense` mode.
    pub score: f32,
    /// Cosine similarity to the question, if it was a dense candidate.
    pub similarity: Option<f32>,
}

#[derive(Debug, Clone)]
pub struct Retrieval {
    pub hits: Vec<Hit>,
    /// Best cosine similarity between the question and any chunk searched (0 when the dense
    /// retriever did not run or found nothing).
    pub confidence: f32,
}

/// The indexes of one knowledge-base generation.
struct Snapshot {
    generation: i64,
    chunks: Vec<StoredChunk>,
    collections: BTreeSet<String>,
    lexical: LexicalIndex,
    vectors: Box<dyn VectorIndex>,
}

pub struct Retriever {
    db: Database,
    embedder: Arc<dyn TextEmbedder>,
    fusion: FusionSettings,
    current: RwLock<Option<Arc<Snapshot>>>,
    rebuild: tokio::sync::Mutex<()>,
    /// Leave out chunks flagged at ingest as carrying instructions for a model.
    quarantine_flagged: bool,
}

impl Retriever {
    pub fn new(
        db: Database,
        embedder: Arc<dyn TextEmbedder>,
        fusion: FusionSettings,
        quarantine_flagged: bool,
    ) -> Self {
        Self {
            db,
            embedder,
            fusion,
            current: RwLock::new(None),
            rebuild: tokio::sync::Mutex::new(()),
            quarantine_flagged,
        }
    }

    pub fn embedder(&self) -> &dyn TextEmbedder {
        self.embedder.as_ref()
    }

    pub async fn embed_question(
        &self,
        question: &str,
        ctx: &RequestContext,
    ) -> Result<Vec<f32>, SearchError> {
        let mut vectors = self.embedder.embed(vec![question.to_owned()], ctx).await?;
        Ok(vectors.pop().unwrap_or_default())
    }

    /// Searches the current generation of the knowledge base, rebuilding the in-memory indexes
    /// first if documents changed since they were built.
    pub async fn search(
        &self,
        question: &str,
        question_vector: &[f32],
        options: SearchOptions<'_>,
    ) -> Result<Retrieval, SearchError> {
        let snapshot = self.snapshot().await?;
        let candidates = self.fusion.candidates.max(options.top_k);
        let allowed = |position: usize| {
            options.collections.is_none_or(|collections| {
                collections.contains(&snapshot.chunks[position].collection)
            })
        };
        let lexical = if options.mode == Mode::Dense {
            Vec::new()
        } else {
            snapshot
                .lexical
                .search(question, candidates, options.collections)?
        };
        let dense = if options.mode == Mode::Lexical {
            Vec::new()
        } else {
            snapshot
                .vectors
                .search(question_vector, candidates, &allowed)
        };
        let confidence = dense.first().map_or(0.0, |d| d.1.max(0.0));

        let mut fused: HashMap<usize, Hit> = HashMap::new();
        let new_hit = |position: usize| Hit {
            chunk: snapshot.chunks[position].clone(),
            score: 0.0,
            similarity: None,
        };
        for (rank, &(position, bm25)) in lexical.iter().enumerate() {
            let entry = fused.entry(position).or_insert_with(|| new_hit(position));
            entry.score += match options.mode {
                Mode::Lexical => bm25,
                _ => 1.0 / (self.fusion.rrf_k + (rank + 1) as f32),
            };
        }
        for (rank, &(position, similarity)) in dense.iter().enumerate() {
            let entry = fused.entry(position).or_insert_with(|| new_hit(position));
            entry.similarity = Some(similarity);
            entry.score += match options.mode {
                Mode::Dense => similarity,
                _ => 1.0 / (self.fusion.rrf_k + (rank + 1) as f32),
            };
        }
        let mut hits: Vec<Hit> = fused.into_values().collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.chunk.id.cmp(&b.chunk.id))
        });
        hits.truncate(options.top_k);
        Ok(Retrieval { hits, confidence })
    }

    /// The collections that hold at least one chunk.
    pub async fn collections(&self) -> Result<BTreeSet<String>, SearchError> {
        Ok(self.snapshot().await?.collections.clone())
    }

    /// The indexes for the database's current generation; one caller rebuilds, others wait.
    async fn snapshot(&self) -> Result<Arc<Snapshot>, SearchError> {
        let generation = self.db.kb_generation().await?;
        if let Some(snapshot) = self.cached(generation) {
            return Ok(snapshot);
        }
        let _rebuilding = self.rebuild.lock().await;
        if let Some(snapshot) = self.cached(generation) {
            return Ok(snapshot);
        }
        // Read the generation with the chunks: a change in between only means one more rebuild.
        let generation = self.db.kb_generation().await?;
        let mut chunks = self.db.all_chunks().await?;
        if self.quarantine_flagged {
            chunks.retain(|c| c.chunk.flagged.is_none());
        }
        let snapshot = tokio::task::spawn_blocking(move || build(generation, chunks))
            .await
            .map_err(|e| SearchError::Worker(e.to_string()))??;
        let snapshot = Arc::new(snapshot);
        if let Ok(mut current) = self.current.write() {
            *current = Some(snapshot.clone());
        }
        Ok(snapshot)
    }

    fn cached(&self, generation: i64) -> Option<Arc<Snapshot>> {
        let current = self.current.read().ok()?;
        current
            .as_ref()
            .filter(|s| s.generation == generation)
            .cloned()
    }
}

fn build(generation: i64, mut chunks: Vec<StoredChunk>) -> Result<Snapshot, SearchError> {
    let lexical = LexicalIndex::build(chunks.iter().enumerate().map(|(i, c)| {
        (
            i,
            c.collection.as_str(),
            passage(&c.title, &c.chunk.heading_path, &c.chunk.text),
        )
    }))?;
    let vectors = BruteForce::build(
        chunks
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.chunk.embedding.as_slice())),
    );
    // The vector index holds its own copy; hits do not need to carry 1.5 KB of floats each.
    for chunk in &mut chunks {
        chunk.chunk.embedding = Vec::new();
    }
    Ok(Snapshot {
        generation,
        collections: chunks.iter().map(|c| c.collection.clone()).collect(),
        chunks,
        lexical,
        vectors: Box::new(vectors),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::embed::testing::HashEmbedder;
    use crate::kb::testing::KbFixture;

    struct Fixture {
        kb: KbFixture,
        retriever: Retriever,
    }

    impl Fixture {
        async fn new() -> Self {
            let kb = KbFixture::new("search", &["hr", "it"]).await;
            let retriever = Retriever::new(
                kb.db.clone(),
                Arc::new(HashEmbedder),
                FusionSettings {
                    candidates: 10,
                    rrf_k: 60.0,
                },
                true,
            );
            Self { kb, retriever }
        }

        async fn ingest(&self) {
            self.kb.ingest().await;
        }

        async fn paths(&self, question: &str, collections: Option<&[String]>) -> Vec<String> {
            let ctx = RequestContext::new("test", "test");
            let vector = self.retriever.embed_question(question, &ctx).await.unwrap();
            let options = SearchOptions {
                top_k: 5,
                collections,
                mode: Mode::Hybrid,
            };
            let retrieval = self
                .retriever
                .search(question, &vector, options)
                .await
                .unwrap();
            retrieval
                .hits
                .into_iter()
                .map(|h| h.chunk.document_path)
                .collect()
        }
    }

    #[tokio::test]
    async fn search_follows_ingest_and_deleted_files_vanish() {
        let f = Fixture::new().await;
        f.kb.write(
            "hr/parental.md",
            b"# Parental leave\n\nThe primary caregiver gets 20 weeks.\n",
        );
        f.kb.write(
            "it/laptops.md",
            b"# Laptops\n\nLaptops are replaced every 3 years.\n",
        );
        f.ingest().await;
        let found = f.paths("parental leave weeks", None).await;
        assert_eq!(found.first().map(String::as_str), Some("hr/parental.md"));
        assert_eq!(
            f.paths("parental leave weeks", Some(&["it".to_owned()]))
                .await,
            vec!["it/laptops.md".to_owned()],
            "a collection filter keeps other collections out"
        );

        std::fs::remove_file(f.kb.docs().join("hr/parental.md")).unwrap();
        f.ingest().await;
        let after = f.paths("parental leave weeks", None).await;
        assert!(
            !after.contains(&"hr/parental.md".to_owned()),
            "the index was rebuilt for the new generation: {after:?}"
        );
        assert!(f.retriever.collections().await.unwrap().contains("it"));
        assert!(!f.retriever.collections().await.unwrap().contains("hr"));
    }
}
