//! LLM providers behind one trait. Providers know wire formats, not policy: retries, fallback,
//! pricing and logging live in the gateway.

pub mod anthropic;
mod http;
pub mod local;
pub mod openai;
mod retry_after;
pub mod types;

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

pub use http::install_tls_provider;
use types::{ChatChunk, ChatRequest, ChatResponse, Embeddings};

/// A stream of chunks; an `Err` item means the stream broke and nothing more follows.
pub type ChunkStream = BoxStream<'static, Result<ChatChunk, ProviderError>>;

#[async_trait]
pub trait Provider: Send + Sync {
    /// `request.model` is already the upstream model name of the chosen deployment.
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError>;

    /// Resolves once the upstream has accepted the request (status and headers checked), so a
    /// failure before the first byte is an `Err` here, not an item of the stream.
    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChunkStream, ProviderError>;

    async fn embed(&self, model: &str, inputs: &[String]) -> Result<Embeddings, ProviderError>;
}

/// What went wrong talking to a provider. The gateway maps these once to HTTP statuses.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot connect to provider: {0}")]
    Connect(String),
    #[error("provider did not answer within {0:?}")]
    Timeout(Duration),
    /// The upstream answered with an error status.
    #[error("provider returned HTTP {status}: {message}")]
    Upstream {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("provider sent a malformed response: {0}")]
    Malformed(String),
    #[error("provider stream broke off: {0}")]
    StreamCut(String),
    #[error("{0}")]
    Unsupported(String),
    /// A local model is not on disk or failed to load.
    #[error("{0}")]
    ModelUnavailable(String),
    /// The request cannot be served as asked (e.g. the prompt exceeds the context window).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("local inference failed: {0}")]
    Inference(String),
}

impl ProviderError {
    pub(crate) fn from_reqwest(err: reqwest::Error, timeout: Duration) -> Self {
        if err.is_timeout() {
            ProviderError::Timeout(timeout)
        } else if err.is_connect() {
            ProviderError::Connect(err.to_string())
        } else if err.is_decode() || err.is_body() {
            ProviderError::StreamCut(err.to_string())
        } else {
            ProviderError::Connect(err.to_string())
        }
    }
}
