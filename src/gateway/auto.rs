//! The `auto` model: a difficulty classifier picks the tier. The last user message is embedded
//! and compared with the centroids of labelled easy and hard examples from `[auto]`; the nearer
//! one wins, and the decision with its score goes on the log row and into the trace.

use serde::Serialize;
use tokio::sync::OnceCell;

use super::GatewayError;
use crate::config::{AutoConfig, Difficulty};
use crate::models::embedder::{centroids, cosine};
use crate::providers::types::{EmbeddingInput, EmbeddingRequest, Role};

use super::{ChatRequest, Gateway, RequestContext};

/// The model name callers send to have the gateway pick the tier.
pub const AUTO: &str = "auto";

pub struct AutoRouter {
    config: AutoConfig,
    /// Embedded on first use: the embedding model may not be loaded at start-up.
    centroids: OnceCell<Vec<(Difficulty, Vec<f32>)>>,
}

/// What the classifier decided.
#[derive(Debug, Clone, Serialize)]
pub struct AutoDecision {
    pub difficulty: Difficulty,
    /// Similarity to the hard centroid minus similarity to the easy one.
    pub score: f32,
    pub model: String,
}

impl std::fmt::Display for AutoDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "auto → {} ({}, score {:+.3})",
            self.model,
            self.difficulty.as_str(),
            self.score
        )
    }
}

impl AutoRouter {
    pub fn new(config: AutoConfig) -> Self {
        Self {
            config,
            centroids: OnceCell::new(),
        }
    }

    /// Classifies `request` and names the tier for it.
    pub(super) async fn decide(
        &self,
        gateway: &Gateway,
        request: &ChatRequest,
        ctx: &RequestContext,
    ) -> Result<AutoDecision, GatewayError> {
        let centroids = self
            .centroids
            .get_or_try_init(|| async {
                let texts = self
                    .config
                    .examples
                    .iter()
                    .map(|e| e.text.clone())
                    .collect();
                let vectors = embed(
                    gateway,
                    &self.config.embedding_model,
                    texts,
                    ctx,
                    "auto-train",
                )
                .await?;
                let labelled = self.config.examples.iter().zip(&vectors);
                Ok::<_, GatewayError>(centroids(labelled.map(|(e, v)| (e.difficulty, v))))
            })
            .await?;
        let question = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.text())
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                GatewayError::invalid(
                    "model `auto` needs a user message to judge the request's difficulty",
                    "messages",
                )
            })?;
        let vector = embed(
            gateway,
            &self.config.embedding_model,
            vec![question],
            ctx,
            "auto",
        )
        .await?
        .pop()
        .unwrap_or_default();
        let similarity = |wanted: Difficulty| {
            centroids
                .iter()
                .find(|(d, _)| *d == wanted)
                .map_or(0.0, |(_, c)| cosine(c, &vector))
        };
        let score = similarity(Difficulty::Hard) - similarity(Difficulty::Easy);
        let difficulty = if score > 0.0 {
            Difficulty::Hard
        } else {
            Difficulty::Easy
        };
        let model = match difficulty {
            Difficulty::Easy => self.config.easy.clone(),
            Difficulty::Hard => self.config.hard.clone(),
        };
        let decision = AutoDecision {
            difficulty,
            score,
            model,
        };
        tracing::info!(request_id = %ctx.request_id, %decision, "auto routing");
        Ok(decision)
    }
}

async fn embed(
    gateway: &Gateway,
    model: &str,
    texts: Vec<String>,
    ctx: &RequestContext,
    step: &str,
) -> Result<Vec<Vec<f32>>, GatewayError> {
    let request = EmbeddingRequest {
        model: model.to_owned(),
        input: EmbeddingInput::Many(texts),
        encoding_format: None,
        dimensions: None,
        user: None,
    };
    let vectors = gateway
        .embed(request, &ctx.child(step, ctx.endpoint))
        .await?
        .embeddings
        .vectors;
    Ok(vectors
        .into_iter()
        .map(crate::models::embedder::normalized)
        .collect())
}
