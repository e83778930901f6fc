//! Optional second-stage ranking (`[kb] rerank = "embedding"`): a chunk is re-scored by its
//! single sentence closest to the question. A chunk's embedding averages every sentence in it,
//! so a long section whose one relevant sentence is drowned by the rest ranks lower than it
//! should; the sentence-level score recovers it. Costs one embedding call over the sentences
//! of the first `rerank_candidates` hits.

use super::embed::TextEmbedder;
use super::search::Hit;
use crate::gateway::GatewayError;
use crate::gateway::RequestContext;
use crate::models::embedder::cosine;

/// Sentences shorter than this (headings, list stubs) are not scored on their own.
const MIN_SENTENCE_CHARS: usize = 20;

/// Re-orders `hits` by their best sentence's similarity to the question, best first. Hits
/// with no scorable sentence keep their chunk similarity.
pub async fn by_best_sentence(
    embedder: &dyn TextEmbedder,
    question_vector: &[f32],
    mut hits: Vec<Hit>,
    ctx: &RequestContext,
) -> Result<Vec<Hit>, GatewayError> {
    let mut owners = Vec::new();
    let mut sentences = Vec::new();
    for (i, hit) in hits.iter().enumerate() {
        for sentence in split_sentences(&hit.chunk.chunk.text) {
            owners.push(i);
            sentences.push(sentence.to_owned());
        }
    }
    let mut best: Vec<f32> = hits.iter().map(|h| h.similarity.unwrap_or(0.0)).collect();
    if !sentences.is_empty() {
        let vectors = embedder.embed(sentences, ctx).await?;
        for (owner, vector) in owners.into_iter().zip(vectors) {
            best[owner] = best[owner].max(cosine(&vector, question_vector));
        }
    }
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

fn split_sentences(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(['.', '?', '!', '\n'])
        .map(str::trim)
        .filter(|s| s.chars().count() >= MIN_SENTENCE_CHARS)
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

    #[tokio::test]
    async fn a_chunk_with_one_matching_sentence_moves_up() {
        let ctx = RequestContext::new("test", "test");
        let question = HashEmbedder
            .embed(vec!["How many weeks of parental leave?".into()], &ctx)
            .await
            .unwrap()
            .remove(0);
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
}
