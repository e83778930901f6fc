//! Any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp server). The canonical types are
//! this wire format, so requests are forwarded as they are and responses parsed as they come.

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::Deserialize;

use super::http::HttpUpstream;
use super::types::{
    ChatChunk, ChatRequest, ChatResponse, EmbeddingInput, EmbeddingRequest, Embeddings,
};
use super::{ChunkStream, Provider, ProviderError};
use crate::config::RemoteProviderConfig;

pub struct OpenAiProvider {
    http: HttpUpstream,
}

impl OpenAiProvider {
    pub fn new(
        config: &RemoteProviderConfig,
        api_key: Option<&str>,
    ) -> Result<Self, ProviderError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = api_key {
            let value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                ProviderError::InvalidRequest("API key contains invalid characters".into())
            })?;
            headers.insert(AUTHORIZATION, value);
        }
        Ok(Self {
            http: HttpUpstream::new(config, headers)?,
        })
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let mut request = request.clone();
        request.stream = None;
        request.stream_options = None;
        self.http.post_json("/chat/completions", &request).await
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let mut request = request.clone();
        request.stream = Some(true);
        // Always ask for usage: the gateway needs it for cost even when the caller did not.
        request.stream_options = Some(super::types::StreamOptions {
            include_usage: true,
        });
        let events = self.http.post_sse("/chat/completions", &request).await?;
        Ok(parse_stream(events))
    }

    async fn embed(&self, model: &str, inputs: &[String]) -> Result<Embeddings, ProviderError> {
        #[derive(Deserialize)]
        struct Response {
            data: Vec<Item>,
            #[serde(default)]
            usage: Option<EmbeddingUsage>,
        }
        #[derive(Deserialize)]
        struct Item {
            index: usize,
            embedding: Vec<f32>,
        }
        #[derive(Deserialize)]
        struct EmbeddingUsage {
            prompt_tokens: u64,
        }
        let request = EmbeddingRequest {
            model: model.to_owned(),
            input: EmbeddingInput::Many(inputs.to_vec()),
            encoding_format: Some("float".into()),
            dimensions: None,
            user: None,
        };
        let mut response: Response = self.http.post_json("/embeddings", &request).await?;
        if response.data.len() != inputs.len() {
            return Err(ProviderError::Malformed(format!(
                "asked for {} embeddings, got {}",
                inputs.len(),
                response.data.len()
            )));
        }
        response.data.sort_by_key(|item| item.index);
        Ok(Embeddings {
            vectors: response
                .data
                .into_iter()
                .map(|item| item.embedding)
                .collect(),
            prompt_tokens: response.usage.map_or(0, |u| u.prompt_tokens),
        })
    }
}

/// `data: {chunk}` events until `data: [DONE]`. A stream that ends without `[DONE]` was cut.
fn parse_stream(events: super::http::EventStream) -> ChunkStream {
    futures::stream::unfold((events, false), |(mut events, done)| async move {
        if done {
            return None;
        }
        loop {
            let item = match events.next().await {
                None => {
                    let cut = ProviderError::StreamCut("stream ended without [DONE]".into());
                    return Some((Err(cut), (events, true)));
                }
                Some(Err(e)) => return Some((Err(e), (events, true))),
                Some(Ok(event)) => event,
            };
            let data = item.data.trim();
            if data.is_empty() {
                continue;
            }
            if data == "[DONE]" {
                return None;
            }
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(data)
                && let Some(error) = value.get("error")
            {
                let message = error
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("unknown error")
                    .to_owned();
                return Some((Err(ProviderError::StreamCut(message)), (events, true)));
            }
            let parsed = serde_json::from_str::<ChatChunk>(data)
                .map_err(|e| ProviderError::Malformed(format!("bad stream chunk ({e}): {data}")));
            let stop = parsed.is_err();
            return Some((parsed, (events, stop)));
        }
    })
    .boxed()
}
