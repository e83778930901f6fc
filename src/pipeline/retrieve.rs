//! Retrieve: hybrid search in the collection the caller asked for, or the department's
//! collection the classifier found, or everything.
//!
//! A department found by the classifier is a hint, not a wall: the whole knowledge base is
//! searched too, and wins when its best chunk is clearly closer to the question than the
//! department's (a misclassified question still finds its answer).

use crate::config::RerankMode;
use crate::gateway::RequestContext;
use crate::kb::rerank;
use crate::kb::search::{Hit, Mode, Retrieval, Retriever, SearchError, SearchOptions};
use crate::store::{ChunkRecord, StoredChunk};

/// How much closer (cosine) the whole knowledge base must come before a department hint loses.
const WIDEN_MARGIN: f32 = 0.05;

pub enum Scope<'a> {
    /// The caller's `collection`: searched alone.
    Collection(&'a str),
    /// The classifier's department: preferred.
    Department(&'a str),
    All,
}

pub struct Retrieved {
    pub retrieval: Retrieval,
    /// The collection searched, `None` for all.
    pub collection: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub top_k: usize,
    pub rerank: RerankMode,
    pub rerank_candidates: usize,
    /// `[kb] passage_sentences`: 0 keeps whole chunks.
    pub passage_sentences: usize,
}

/// A fixed context as the only source (an evaluation case's `context`): what retrieval would
/// return if the knowledge base held exactly that text.
pub fn fixed(context: &str) -> Retrieved {
    let chunk = StoredChunk {
        id: 0,
        document_path: "context".into(),
        collection: String::new(),
        title: "Context".into(),
        chunk: ChunkRecord {
            ordinal: 0,
            heading_path: String::new(),
            text: context.trim().to_owned(),
            span: 0..context.len(),
            embedding: Vec::new(),
            flagged: None,
        },
    };
    Retrieved {
        retrieval: Retrieval {
            hits: vec![Hit {
                chunk,
                score: 1.0,
                similarity: None,
            }],
            confidence: 1.0,
        },
        collection: None,
    }
}

/// Searches, then optionally re-ranks and cuts the hits; those embedding calls log rows of
/// their own under `ctx` (`<id>.rerank`, `<id>.passages`).
pub async fn retrieve(
    retriever: &Retriever,
    question: &str,
    vector: &[f32],
    scope: Scope<'_>,
    settings: Settings,
    ctx: &RequestContext,
) -> Result<Retrieved, SearchError> {
    let mut retrieved = search_scope(retriever, question, vector, scope, settings).await?;
    if settings.rerank == RerankMode::Embedding {
        let hits = std::mem::take(&mut retrieved.retrieval.hits);
        retrieved.retrieval.hits = rerank::by_best_sentence(
            retriever.embedder(),
            vector,
            hits,
            &ctx.child("rerank", ctx.endpoint),
        )
        .await?;
        retrieved.retrieval.hits.truncate(settings.top_k);
    }
    if settings.passage_sentences > 0 {
        rerank::to_best_passages(
            retriever.embedder(),
            vector,
            &mut retrieved.retrieval.hits,
            settings.passage_sentences,
            &ctx.child("passages", ctx.endpoint),
        )
        .await?;
    }
    Ok(retrieved)
}

async fn search_scope(
    retriever: &Retriever,
    question: &str,
    vector: &[f32],
    scope: Scope<'_>,
    settings: Settings,
) -> Result<Retrieved, SearchError> {
    let top_k = match settings.rerank {
        RerankMode::None => settings.top_k,
        RerankMode::Embedding => settings.rerank_candidates,
    };
    let search = |collections: Option<Vec<String>>| async move {
        retriever
            .search(
                question,
                vector,
                SearchOptions {
                    top_k,
                    collections: collections.as_deref(),
                    mode: Mode::Hybrid,
                },
            )
            .await
    };
    match scope {
        Scope::All => Ok(Retrieved {
            retrieval: search(None).await?,
            collection: None,
        }),
        Scope::Collection(name) => Ok(Retrieved {
            retrieval: search(Some(vec![name.to_owned()])).await?,
            collection: Some(name.to_owned()),
        }),
        Scope::Department(name) => {
            let department = search(Some(vec![name.to_owned()])).await?;
            let everything = search(None).await?;
            Ok(
                if everything.confidence > department.confidence + WIDEN_MARGIN {
                    Retrieved {
                        retrieval: everything,
                        collection: None,
                    }
                } else {
                    Retrieved {
                        retrieval: department,
                        collection: Some(name.to_owned()),
                    }
                },
            )
        }
    }
}
