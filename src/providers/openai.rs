//! Any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp server). The canonical types are
//! this wire format, so requests are forwarded as they are and responses parsed as they come.

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde::Deserialize;

use super::http::{EventStream, HttpUpstream, secret_header};
use super::types::{
    ChatChunk, ChatRequest, ChatResponse, EmbeddingInput, EmbeddingRequest, Embeddings,
    new_completion_id, unix_now,
};
use super::{ChunkStream, Provider, ProviderError};
use crate::config::{RemoteProviderConfig, Secret};

pub struct OpenAiProvider {
    http: HttpUpstream,
}

impl OpenAiProvider {
    pub fn new(
        config: &RemoteProviderConfig,
        api_key: Option<&Secret>,
    ) -> Result<Self, ProviderError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = api_key {
            headers.insert(
                AUTHORIZATION,
                secret_header(&format!("Bearer {}", key.expose()))?,
            );
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
        let mut response: ChatResponse = self.http.post_json("/chat/completions", &request).await?;
        // Servers and proxies leave out fields the gateway can do without: supply them.
        response.fill_in(&request.model);
        Ok(response)
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let mut request = request.clone();
        request.stream = Some(true);
        // Always ask for usage: the gateway needs it for cost even when the caller did not.
        request.stream_options = Some(super::types::StreamOptions {
            include_usage: true,
        });
        let events = self.http.post_sse("/chat/completions", &request).await?;
        Ok(parse_stream(events, &request.model))
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

/// What `parse_stream` carries from one event to the next.
struct StreamState {
    events: EventStream,
    /// Nothing more follows: the stream broke or a chunk was malformed.
    done: bool,
    /// For chunks whose upstream left out `id`, `created` or `model`: one value per stream, so
    /// that every chunk of it agrees.
    id: String,
    created: u64,
    model: String,
}

/// `data: {chunk}` events until `data: [DONE]`. A stream that ends without `[DONE]` was cut.
/// Each chunk is filled in (see [`ChatChunk::fill_in`]) with this stream's id, its start time
/// and `requested_model`, the upstream model name the request was sent with.
fn parse_stream(events: EventStream, requested_model: &str) -> ChunkStream {
    let state = StreamState {
        events,
        done: false,
        id: new_completion_id(),
        created: unix_now(),
        model: requested_model.to_owned(),
    };
    futures::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        loop {
            let item = match state.events.next().await {
                None => {
                    let cut = ProviderError::StreamCut("stream ended without [DONE]".into());
                    state.done = true;
                    return Some((Err(cut), state));
                }
                Some(Err(e)) => {
                    state.done = true;
                    return Some((Err(e), state));
                }
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
                state.done = true;
                return Some((Err(ProviderError::StreamCut(message)), state));
            }
            let parsed = serde_json::from_str::<ChatChunk>(data)
                .map(|mut chunk| {
                    chunk.fill_in(&state.id, state.created, &state.model);
                    chunk
                })
                .map_err(|e| ProviderError::Malformed(format!("bad stream chunk ({e}): {data}")));
            state.done = parsed.is_err();
            return Some((parsed, state));
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use eventsource_stream::Event;

    use super::*;
    use crate::providers::types::FinishReason;

    const MODEL: &str = "upstream-model";

    fn event(data: &str) -> Result<Event, ProviderError> {
        Ok(Event {
            data: data.to_owned(),
            ..Event::default()
        })
    }

    /// The `data:` payloads as the event stream `post_sse` hands out.
    fn events(data: &[&str]) -> EventStream {
        let items: Vec<_> = data.iter().copied().map(event).collect();
        futures::stream::iter(items).boxed()
    }

    async fn run(data: &[&str]) -> Vec<Result<ChatChunk, ProviderError>> {
        parse_stream(events(data), MODEL).collect().await
    }

    #[tokio::test]
    async fn fills_in_one_id_and_one_time_for_the_whole_stream() {
        let chunks = run(&[
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}"#,
            "",
            r#"{"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}"#,
            r#"{"choices":[{"finish_reason":"stop"}]}"#,
            r#"{"usage":{"prompt_tokens":4,"completion_tokens":2}}"#,
            "[DONE]",
            r#"{"choices":[{"delta":{"content":"after the end"}}]}"#,
        ])
        .await;
        let chunks: Vec<ChatChunk> = chunks.into_iter().map(Result::unwrap).collect();
        assert_eq!(chunks.len(), 4);
        let first = &chunks[0];
        assert!(first.id.starts_with("chatcmpl-"));
        assert!(first.created > 0);
        for chunk in &chunks {
            assert_eq!(chunk.id, first.id);
            assert_eq!(chunk.created, first.created);
            assert_eq!(chunk.object, "chat.completion.chunk");
            assert_eq!(chunk.model, MODEL);
        }
        let text: String = chunks
            .iter()
            .flat_map(|chunk| &chunk.choices)
            .filter_map(|choice| choice.delta.content.as_deref())
            .collect();
        assert_eq!(text, "Hello");
        assert_eq!(chunks[2].choices[0].finish_reason, Some(FinishReason::Stop));
        assert_eq!(chunks[3].usage.map(|u| u.total_tokens), Some(6));

        // Another stream, another id.
        let other = run(&[r#"{"choices":[]}"#, "[DONE]"]).await;
        assert_ne!(other[0].as_ref().unwrap().id, first.id);
    }

    #[tokio::test]
    async fn keeps_what_the_upstream_sent() {
        let chunks = run(&[
            r#"{"id":"chatcmpl-up","object":"chat.completion.chunk","created":1718000000,"model":"qwen","choices":[{"index":0,"delta":{"content":"x"}}]}"#,
            r#"{"id":"chatcmpl-up","object":"chat.completion.chunk","created":1718000000.0,"model":"qwen","choices":[{"index":0,"delta":{},"finish_reason":"eos"}]}"#,
            "[DONE]",
        ])
        .await;
        let chunks: Vec<ChatChunk> = chunks.into_iter().map(Result::unwrap).collect();
        assert_eq!(chunks.len(), 2);
        for chunk in &chunks {
            assert_eq!(chunk.id, "chatcmpl-up");
            assert_eq!(chunk.created, 1_718_000_000);
            assert_eq!(chunk.model, "qwen");
        }
        assert_eq!(chunks[1].choices[0].finish_reason, Some(FinishReason::Stop));
    }

    #[tokio::test]
    async fn errors_still_end_the_stream() {
        let cut = run(&[r#"{"choices":[]}"#]).await;
        assert_eq!(cut.len(), 2);
        assert!(cut[0].is_ok());
        assert!(matches!(cut[1], Err(ProviderError::StreamCut(_))));

        let data = [r#"{"error":{"message":"overloaded"}}"#, "[DONE]"];
        let error = run(&data).await;
        assert_eq!(error.len(), 1);
        assert!(matches!(&error[0], Err(ProviderError::StreamCut(m)) if m == "overloaded"));

        let malformed = run(&["[1, 2]", r#"{"choices":[]}"#, "[DONE]"]).await;
        assert_eq!(malformed.len(), 1);
        assert!(matches!(malformed[0], Err(ProviderError::Malformed(_))));
    }
}
