//! Retrieve: hybrid search in the collection the caller asked for, or the department's
//! collection the classifier found, or everything.
//!
//! A department found by the classifier is a hint, not a wall: the whole knowledge base is
//! searched too, and wins when its best chunk is clearly closer to the question than the
//! department's (a misclassified question still finds its answer).

use crate::kb::search::{Mode, Retrieval, Retriever, SearchError, SearchOptions};

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

pub async fn retrieve(
    retriever: &Retriever,
    question: &str,
    vector: &[f32],
    scope: Scope<'_>,
    top_k: usize,
) -> Result<Retrieved, SearchError> {
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
