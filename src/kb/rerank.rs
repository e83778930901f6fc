//! Sentence-level second looks at the fused hits, both scoring each sentence of a chunk against
//! the question with one embedding call:
//!
//! - `by_best_sentence` (`[kb] rerank = "embedding"`): a chunk is re-scored by its single
//!   sentence closest to the question. A chunk's embedding averages every sentence in it, so a
//!   long section whose one relevant sentence is drowned by the rest ranks lower than it should;
//!   the sentence-level score recovers it.
//! - `to_best_passages` (`[kb] passage_sentences = N`): each chunk is cut to its N sentences
//!   closest to the question, in their order, so the model prefills fewer tokens.

use super::embed::TextEmbedder;
use super::search::Hit;
use crate::gateway::GatewayError;
use crate::gateway::RequestContext;
use crate::models::embedder::cosine;

/// Sentences shorter than this (headings, list stubs) are not scored on their own.
const MIN_SENTENCE_CHARS: usize = 20;

/// Every sentence of each hit at least `min_chars` long, with its similarity to the question,
/// per hit.
async fn sentence_scores<'h>(
    embedder: &dyn TextEmbedder,
    question_vector: &[f32],
    hits: &'h [Hit],
    min_chars: usize,
    ctx: &RequestContext,
) -> Result<Vec<Vec<(&'h str, f32)>>, GatewayError> {
    let per_hit: Vec<Vec<&str>> = hits
        .iter()
        .map(|hit| {
            sentences(&hit.chunk.chunk.text)
                .into_iter()
                .filter(|s| s.chars().count() >= min_chars)
                .collect()
        })
        .collect();
    let all: Vec<String> = per_hit.iter().flatten().map(|s| (*s).to_owned()).collect();
    let mut vectors = if all.is_empty() {
        Vec::new()
    } else {
        embedder.embed(all, ctx).await?
    }
    .into_iter();
    Ok(per_hit
        .into_iter()
        .map(|sentences| {
            sentences
                .into_iter()
                .map(|s| {
                    let score = vectors.next().map_or(0.0, |v| cosine(&v, question_vector));
                    (s, score)
                })
                .collect()
        })
        .collect())
}

/// Re-orders `hits` by their best sentence's similarity to the question, best first. Hits
/// with no scorable sentence keep their chunk similarity.
pub async fn by_best_sentence(
    embedder: &dyn TextEmbedder,
    question_vector: &[f32],
    mut hits: Vec<Hit>,
    ctx: &RequestContext,
) -> Result<Vec<Hit>, GatewayError> {
    let best: Vec<f32> = sentence_scores(embedder, question_vector, &hits, MIN_SENTENCE_CHARS, ctx)
        .await?
        .iter()
        .zip(&hits)
        .map(|(sentences, hit)| {
            sentences
                .iter()
                .map(|(_, score)| *score)
                .fold(hit.similarity.unwrap_or(0.0), f32::max)
        })
        .collect();
    let mut scored: Vec<(f32, Hit)> = best.into_iter().zip(hits.drain(..)).collect();
    // Stable: equal scores keep the fused order.
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(scored
        .into_iter()
        .map(|(score, mut hit)| {
            hit.score = score;
            hit
        })
        .collect())
}

/// Cuts each hit's text to its `keep` sentences (lines, for lists and headings) closest to the
/// question, in their order, one per line. A chunk of no more sentences is left whole.
pub async fn to_best_passages(
    embedder: &dyn TextEmbedder,
    question_vector: &[f32],
    hits: &mut [Hit],
    keep: usize,
    ctx: &RequestContext,
) -> Result<(), GatewayError> {
    let passages: Vec<Option<String>> = sentence_scores(embedder, question_vector, hits, 1, ctx)
        .await?
        .into_iter()
        .map(|sentences| {
            if sentences.len() <= keep {
                return None;
            }
            let mut ranked: Vec<usize> = (0..sentences.len()).collect();
            ranked.sort_by(|&a, &b| sentences[b].1.total_cmp(&sentences[a].1));
            ranked.truncate(keep);
            ranked.sort_unstable();
            Some(
                ranked
                    .into_iter()
                    .map(|i| sentences[i].0)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })
        .collect();
    for (hit, passage) in hits.iter_mut().zip(passages) {
        if let Some(passage) = passage {
            hit.chunk.chunk.text = passage;
        }
    }
    Ok(())
}

/// The sentences of `text`, trimmed: each ends at a newline or at `.`, `!` or `?` followed by
/// whitespace or the end (so "2.5 days" and "e.g.x" stay whole), unless the word it closes is
/// a list number or a short abbreviation ("1.", "Dr."): that joins the next sentence.
fn sentences(text: &str) -> Vec<&str> {
    /// Words shorter than this do not end a sentence with their stop.
    const MIN_WORD_CHARS: usize = 3;
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let stop = matches!(b, b'.' | b'!' | b'?')
            && bytes
                .get(i + 1)
                .is_none_or(|next| next.is_ascii_whitespace())
            && text[start..i]
                .rsplit(char::is_whitespace)
                .next()
                .is_some_and(|word| word.chars().count() >= MIN_WORD_CHARS);
        if b == b'\n' || stop {
            // Both are ASCII: `i + 1` is a char boundary.
            out.push(&text[start..=i]);
            start = i + 1;
        }
    }
    out.push(&text[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::embed::testing::HashEmbedder;
    use crate::store::{ChunkRecord, StoredChunk};

    fn hit(id: i64, text: &str, similarity: f32) -> Hit {
        Hit {
            chunk: StoredChunk {
                id,
                document_path: format!("doc{id}.md"),
                collection: "general".into(),
                title: "T".into(),
                chunk: ChunkRecord {
                    ordinal: 0,
                    heading_path: String::new(),
                    text: text.into(),
                    span: 0..text.len(),
                    embedding: Vec::new(),
                    flagged: None,
                },
            },
            score: 0.0,
            similarity: Some(similarity),
        }
    }

    /// A test context and the question both tests score against.
    async fn parental_leave_question() -> (RequestContext, Vec<f32>) {
        let ctx = RequestContext::new("test", "test");
        let question = HashEmbedder
            .embed(vec!["How many weeks of parental leave?".into()], &ctx)
            .await
            .unwrap()
            .remove(0);
        (ctx, question)
    }

    #[tokio::test]
    async fn a_chunk_with_one_matching_sentence_moves_up() {
        let (ctx, question) = parental_leave_question().await;
        let hits = vec![
            hit(
                1,
                "Our offices are open on weekdays. Visitors sign in at the desk.",
                0.4,
            ),
            hit(
                2,
                "Employees may bring a dog on Fridays after approval. How many weeks of parental leave? Twenty weeks of parental leave apply.",
                0.3,
            ),
        ];
        let reranked = by_best_sentence(&HashEmbedder, &question, hits, &ctx)
            .await
            .unwrap();
        assert_eq!(reranked[0].chunk.id, 2);
        assert!(reranked[0].score > 0.9, "{}", reranked[0].score);
    }

    #[tokio::test]
    async fn a_chunk_is_cut_to_its_closest_sentences_in_their_order() {
        let (ctx, question) = parental_leave_question().await;
        let long = "Parental leave is paid by the company. Employees may bring a dog on Fridays. \
                    Twenty weeks of parental leave apply to the primary caregiver. The canteen opens at noon.";
        let short = "Offices open on weekdays at eight.";
        let mut hits = vec![hit(1, long, 0.5), hit(2, short, 0.4)];
        to_best_passages(&HashEmbedder, &question, &mut hits, 2, &ctx)
            .await
            .unwrap();
        assert_eq!(
            hits[0].chunk.chunk.text,
            "Parental leave is paid by the company.\nTwenty weeks of parental leave apply to the primary caregiver."
        );
        assert_eq!(hits[1].chunk.chunk.text, short, "nothing to cut");
    }

    #[test]
    fn sentences_end_at_stops_before_whitespace_and_at_lines() {
        assert_eq!(
            sentences("Staff get 2.5 days a month. See e.g.x too!\n- 20 days\nDone"),
            [
                "Staff get 2.5 days a month.",
                "See e.g.x too!",
                "- 20 days",
                "Done"
            ]
        );
        assert_eq!(
            sentences("1. Sign in with Dr. Miller. Then go."),
            ["1. Sign in with Dr. Miller.", "Then go."]
        );
    }
}
