//! Retrieval quality on a labelled question set: recall@k and MRR, for BM25 alone, dense alone
//! and the hybrid. A hit is relevant when it is a chunk of the expected document that contains
//! the expected fact: what the model needs in its context, not merely the right file (with a
//! handbook of 18 files, "right file in the top 5" is nearly free). Shared by the test that gates
//! retrieval changes and the benchmark that reports the figures.

use std::path::Path;

use serde::Deserialize;

use crate::gateway::{RequestContext, new_request_id};
use crate::kb::rerank;
use crate::kb::search::{Mode, Retriever, SearchError, SearchOptions};

/// The cut-offs reported.
pub const RECALL_AT: [usize; 3] = [1, 3, 5];
/// Ranks beyond this count as not found for MRR.
const MRR_DEPTH: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {message}")]
    Load { path: String, message: String },
    #[error(transparent)]
    Search(#[from] SearchError),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelledQuestion {
    pub q: String,
    /// Path of the document holding the answer, relative to the ingested folder.
    pub doc: String,
    /// Text a correct answer contains.
    pub fact: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnanswerableQuestion {
    pub q: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelledSet {
    #[serde(rename = "question")]
    pub questions: Vec<LabelledQuestion>,
    #[serde(rename = "unanswerable", default)]
    pub unanswerable: Vec<UnanswerableQuestion>,
}

impl LabelledSet {
    pub fn load(path: &Path) -> Result<Self, EvalError> {
        let load_err = |message: String| EvalError::Load {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| load_err(e.to_string()))?;
        toml::from_str(&text).map_err(|e| load_err(e.to_string()))
    }
}

/// One retrieval configuration to score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    pub label: &'static str,
    pub mode: Mode,
    /// Re-rank this many hits by best sentence (`[kb] rerank = "embedding"`).
    pub rerank_candidates: Option<usize>,
}

pub const BM25: Variant = Variant {
    label: "BM25",
    mode: Mode::Lexical,
    rerank_candidates: None,
};
pub const DENSE: Variant = Variant {
    label: "dense",
    mode: Mode::Dense,
    rerank_candidates: None,
};
pub const HYBRID: Variant = Variant {
    label: "hybrid (RRF)",
    mode: Mode::Hybrid,
    rerank_candidates: None,
};

#[derive(Debug, Clone, PartialEq)]
pub struct RecallReport {
    pub label: &'static str,
    /// Recall at each cut-off of [`RECALL_AT`].
    pub recall: [f64; 3],
    pub mrr: f64,
    /// Questions whose document was not in the top 5, for inspection.
    pub misses: Vec<String>,
}

/// Runs every question through each variant (the question is embedded once) and scores the
/// rank of the first relevant chunk.
pub async fn evaluate(
    retriever: &Retriever,
    set: &LabelledSet,
    variants: &[Variant],
) -> Result<Vec<RecallReport>, EvalError> {
    let ctx = RequestContext::new(new_request_id(), "eval.retrieval");
    let mut ranks: Vec<Vec<Option<usize>>> = vec![Vec::new(); variants.len()];
    for question in &set.questions {
        let vector = retriever.embed_question(&question.q, &ctx).await?;
        for (variant, ranks) in variants.iter().zip(&mut ranks) {
            let options = SearchOptions {
                top_k: variant.rerank_candidates.unwrap_or(MRR_DEPTH),
                collections: None,
                mode: variant.mode,
            };
            let mut hits = retriever.search(&question.q, &vector, options).await?.hits;
            if variant.rerank_candidates.is_some() {
                hits = rerank::by_best_sentence(retriever.embedder(), &vector, hits, &ctx)
                    .await
                    .map_err(SearchError::from)?;
            }
            ranks.push(
                hits.iter()
                    .position(|h| {
                        h.chunk.document_path == question.doc
                            && h.chunk.chunk.text.contains(&question.fact)
                    })
                    .map(|p| p + 1),
            );
        }
    }
    let total = set.questions.len().max(1) as f64;
    Ok(variants
        .iter()
        .zip(ranks)
        .map(|(variant, ranks)| {
            let recall = RECALL_AT
                .map(|k| ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / total);
            let mrr = ranks.iter().flatten().map(|&r| 1.0 / r as f64).sum::<f64>() / total;
            let misses = set
                .questions
                .iter()
                .zip(&ranks)
                .filter(|(_, r)| !r.is_some_and(|r| r <= 5))
                .map(|(q, r)| format!("{} (rank {r:?}, want {})", q.q, q.doc))
                .collect();
            RecallReport {
                label: variant.label,
                recall,
                mrr,
                misses,
            }
        })
        .collect())
}
