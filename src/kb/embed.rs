//! Embeddings for the knowledge base, made through the gateway so that the embedding model is
//! configuration (`[kb] embedding_model`, the local MiniLM by default) and every call is logged
//! and priced like any other.

use crate::models::embedder::normalized;
use std::sync::Arc;

use async_trait::async_trait;

use crate::gateway::GatewayError;
use crate::gateway::{Gateway, RequestContext};
use crate::providers::types::{EmbeddingInput, EmbeddingRequest};

/// Inputs per gateway call at ingest: big enough to batch well, small enough to report progress.
pub const INGEST_BATCH: usize = 64;

#[async_trait]
pub trait TextEmbedder: Send + Sync {
    /// Names the model; stored with the knowledge base so that a change of model re-embeds it.
    fn model_id(&self) -> &str;

    /// One unit-length vector per text.
    async fn embed(
        &self,
        texts: Vec<String>,
        ctx: &RequestContext,
    ) -> Result<Vec<Vec<f32>>, GatewayError>;
}

pub struct GatewayEmbedder {
    gateway: Arc<Gateway>,
    model: String,
}

impl GatewayEmbedder {
    pub fn new(gateway: Arc<Gateway>, model: impl Into<String>) -> Self {
        Self {
            gateway,
            model: model.into(),
        }
    }
}

#[async_trait]
impl TextEmbedder for GatewayEmbedder {
    fn model_id(&self) -> &str {
        &self.model
    }

    async fn embed(
        &self,
        texts: Vec<String>,
        ctx: &RequestContext,
    ) -> Result<Vec<Vec<f32>>, GatewayError> {
        let expected = texts.len();
        let request = EmbeddingRequest {
            model: self.model.clone(),
            input: EmbeddingInput::Many(texts),
            encoding_format: None,
            dimensions: None,
            user: None,
        };
        let vectors = self.gateway.embed(request, ctx).await?.embeddings.vectors;
        if vectors.len() != expected {
            return Err(GatewayError::Internal(format!(
                "embedding model `{}` returned {} vectors for {expected} inputs",
                self.model,
                vectors.len()
            )));
        }
        Ok(vectors.into_iter().map(normalized).collect())
    }
}

/// The text a chunk is searched by, lexically and densely: where it sits (title and headings)
/// and what it says. Questions name the topic ("parental leave") more often than the body does.
pub fn passage(title: &str, heading_path: &str, text: &str) -> String {
    if heading_path.is_empty() || heading_path == title {
        format!("{title}\n{text}")
    } else if heading_path.starts_with(title) {
        format!("{heading_path}\n{text}")
    } else {
        format!("{title} > {heading_path}\n{text}")
    }
}

#[cfg(test)]
pub mod testing {
    //! A deterministic bag-of-words embedder for unit tests that must not load a model.
    use super::*;

    pub struct HashEmbedder;

    pub const DIMENSIONS: usize = 256;

    #[async_trait]
    impl TextEmbedder for HashEmbedder {
        fn model_id(&self) -> &str {
            "hash-bow"
        }

        async fn embed(
            &self,
            texts: Vec<String>,
            _ctx: &RequestContext,
        ) -> Result<Vec<Vec<f32>>, GatewayError> {
            Ok(texts
                .iter()
                .map(|text| {
                    let mut v = vec![0f32; DIMENSIONS];
                    for word in text
                        .split(|c: char| !c.is_alphanumeric())
                        .filter(|w| !w.is_empty())
                    {
                        let hash = word
                            .to_lowercase()
                            .bytes()
                            .fold(0xcbf29ce484222325u64, |h, b| {
                                (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
                            });
                        v[(hash % DIMENSIONS as u64) as usize] += 1.0;
                    }
                    normalized(v)
                })
                .collect())
        }
    }
}
