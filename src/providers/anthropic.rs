//! Anthropic Messages API, translated to and from the canonical (OpenAI-shaped) types: system
//! messages become `system`, tool calls become `tool_use` blocks and tool messages `tool_result`
//! blocks, stop reasons and usage (with prompt-cache reads and writes) are mapped back.

use std::collections::HashMap;

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::{EventStream, HttpUpstream, secret_header};
use super::types::{
    ChatChunk, ChatRequest, ChatResponse, Choice, ChunkChoice, Content, Delta, FinishReason,
    FunctionCall, FunctionCallDelta, Message, Role, ToolCall, ToolCallDelta, Usage, unix_now,
};
use super::{ChunkStream, Provider, ProviderError};
use crate::config::{RemoteProviderConfig, Secret};

const API_VERSION: &str = "2023-06-01";

pub struct AnthropicProvider {
    http: HttpUpstream,
    body: BodyOptions,
}

/// Choices made for every Messages API body this provider sends.
#[derive(Debug, Clone, Copy)]
struct BodyOptions {
    /// Sent when the caller gives no `max_tokens` (the API requires one).
    default_max_tokens: u32,
    /// Mark the system prompt as a prompt-cache breakpoint (`cache_control: ephemeral`), so
    /// Anthropic bills repeated system prompts at the cached-input price.
    cache_system_prompt: bool,
}

impl AnthropicProvider {
    pub fn new(
        config: &RemoteProviderConfig,
        api_key: Option<&Secret>,
    ) -> Result<Self, ProviderError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(API_VERSION),
        );
        if let Some(key) = api_key {
            headers.insert(
                HeaderName::from_static("x-api-key"),
                secret_header(key.expose())?,
            );
        }
        Ok(Self {
            http: HttpUpstream::new(config, headers)?,
            body: BodyOptions {
                default_max_tokens: config.default_max_tokens,
                cache_system_prompt: config.cache_system_prompt,
            },
        })
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let body = to_messages_request(request, self.body, false)?;
        let response: MessagesResponse = self.http.post_json("/v1/messages", &body).await?;
        Ok(response.into_chat_response())
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let body = to_messages_request(request, self.body, true)?;
        let events = self.http.post_sse("/v1/messages", &body).await?;
        Ok(translate_stream(events))
    }

    async fn embed(
        &self,
        _model: &str,
        _inputs: &[String],
    ) -> Result<super::types::Embeddings, ProviderError> {
        Err(ProviderError::Unsupported(
            "Anthropic offers no embeddings API".into(),
        ))
    }
}

/// Builds the Messages API body. Consecutive messages of one role are merged into one turn,
/// as the API requires alternating user and assistant turns.
fn to_messages_request(
    request: &ChatRequest,
    options: BodyOptions,
    stream: bool,
) -> Result<Value, ProviderError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in &request.messages {
        let (role, blocks) = match message.role {
            Role::System | Role::Developer => {
                system.push(message.text());
                continue;
            }
            Role::User => ("user", text_blocks(message)),
            Role::Assistant => {
                let mut blocks = text_blocks(message);
                for call in message.tool_calls.iter().flatten() {
                    let input: Value = if call.function.arguments.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(&call.function.arguments).map_err(|e| {
                            ProviderError::InvalidRequest(format!(
                                "tool call {} has arguments that are not JSON: {e}",
                                call.id
                            ))
                        })?
                    };
                    blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.function.name, "input": input}));
                }
                ("assistant", blocks)
            }
            Role::Tool => {
                let id = message.tool_call_id.clone().ok_or_else(|| {
                    ProviderError::InvalidRequest("a tool message needs a tool_call_id".into())
                })?;
                (
                    "user",
                    vec![
                        json!({"type": "tool_result", "tool_use_id": id, "content": message.text()}),
                    ],
                )
            }
        };
        match turns.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }

    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert(
        "max_tokens".into(),
        json!(
            request
                .max_output_tokens()
                .unwrap_or(options.default_max_tokens)
        ),
    );
    body.insert(
        "messages".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|(role, content)| json!({"role": role, "content": content}))
                .collect(),
        ),
    );
    if !system.is_empty() {
        let system = system.join("\n\n");
        let system = if options.cache_system_prompt {
            json!([{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}])
        } else {
            json!(system)
        };
        body.insert("system".into(), system);
    }
    if let Some(t) = request.temperature {
        // OpenAI's range is 0..2, Anthropic's 0..1.
        body.insert("temperature".into(), json!(t.min(1.0)));
    }
    if let Some(p) = request.top_p {
        body.insert("top_p".into(), json!(p));
    }
    let stops = request.stop_sequences();
    if !stops.is_empty() {
        body.insert("stop_sequences".into(), json!(stops));
    }
    if let Some(tools) = &request.tools {
        let tools: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut tool = json!({
                    "name": t.function.name,
                    "input_schema": t.function.parameters.clone().unwrap_or_else(|| json!({"type": "object"})),
                });
                if let Some(d) = &t.function.description {
                    tool["description"] = json!(d);
                }
                tool
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = &request.tool_choice {
        body.insert("tool_choice".into(), tool_choice(choice)?);
    }
    if let Some(user) = &request.user {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    if stream {
        body.insert("stream".into(), json!(true));
    }
    Ok(Value::Object(body))
}

fn text_blocks(message: &Message) -> Vec<Value> {
    match &message.content {
        None => Vec::new(),
        Some(Content::Text(text)) if text.is_empty() => Vec::new(),
        Some(Content::Text(text)) => vec![json!({"type": "text", "text": text})],
        Some(Content::Parts(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(|text| json!({"type": "text", "text": text}))
            .collect(),
    }
}

fn tool_choice(choice: &Value) -> Result<Value, ProviderError> {
    match choice {
        Value::String(s) if s == "auto" => Ok(json!({"type": "auto"})),
        Value::String(s) if s == "required" => Ok(json!({"type": "any"})),
        Value::String(s) if s == "none" => Ok(json!({"type": "none"})),
        Value::Object(o) => match o
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
        {
            Some(name) => Ok(json!({"type": "tool", "name": name})),
            None => Err(ProviderError::InvalidRequest(
                "tool_choice object needs function.name".into(),
            )),
        },
        other => Err(ProviderError::InvalidRequest(format!(
            "unsupported tool_choice {other}"
        ))),
    }
}

#[derive(Debug, Deserialize)]
struct MessagesResponse {
    id: String,
    model: String,
    content: Vec<Block>,
    stop_reason: Option<String>,
    usage: AnthropicUsage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct AnthropicUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// Anthropic's `input_tokens` excludes cache reads and writes; OpenAI's `prompt_tokens` counts all.
    fn to_usage(self) -> Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_creation_input_tokens.unwrap_or(0);
        Usage::new(
            self.input_tokens + read + write,
            self.output_tokens,
            read,
            write,
        )
    }
}

fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

impl MessagesResponse {
    fn into_chat_response(self) -> ChatResponse {
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        for block in self.content {
            match block {
                Block::Text { text: t } => text.push_str(&t),
                Block::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                    id,
                    kind: "function".into(),
                    function: FunctionCall {
                        name,
                        arguments: input.to_string(),
                    },
                }),
                Block::Other => {}
            }
        }
        let mut message = Message::new(Role::Assistant, text);
        if !tool_calls.is_empty() {
            message.tool_calls = Some(tool_calls);
        }
        ChatResponse {
            id: self.id,
            object: "chat.completion".into(),
            created: unix_now(),
            model: self.model,
            choices: vec![Choice {
                index: 0,
                message,
                finish_reason: self.stop_reason.as_deref().map(finish_reason),
            }],
            usage: Some(self.usage.to_usage()),
            extra: Map::new(),
        }
    }
}

/// Translation state across the events of one stream.
struct StreamState {
    events: EventStream,
    id: String,
    model: String,
    created: u64,
    usage: AnthropicUsage,
    /// Anthropic content-block index → OpenAI tool-call index.
    tool_index: HashMap<u64, u32>,
    finished: bool,
}

impl StreamState {
    fn chunk(&self, delta: Delta, finish_reason: Option<FinishReason>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
            }],
            usage: None,
        }
    }

    /// One event in, at most one chunk out; `Err` ends the stream.
    fn on_event(&mut self, event: &str, data: &Value) -> Result<Option<ChatChunk>, ProviderError> {
        let malformed = || ProviderError::Malformed(format!("unexpected `{event}` event: {data}"));
        match event {
            "message_start" => {
                let message = data.get("message").ok_or_else(malformed)?;
                self.id = message
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                self.model = message
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if let Some(usage) = message.get("usage") {
                    self.usage = serde_json::from_value(usage.clone()).map_err(|_| malformed())?;
                }
                Ok(Some(self.chunk(
                    Delta {
                        role: Some(Role::Assistant),
                        ..Delta::default()
                    },
                    None,
                )))
            }
            "content_block_start" => {
                let block = data.get("content_block").ok_or_else(malformed)?;
                if block.get("type").and_then(Value::as_str) != Some("tool_use") {
                    return Ok(None);
                }
                let block_index = data
                    .get("index")
                    .and_then(Value::as_u64)
                    .ok_or_else(malformed)?;
                let index = self.tool_index.len() as u32;
                self.tool_index.insert(block_index, index);
                let delta = ToolCallDelta {
                    index,
                    id: block.get("id").and_then(Value::as_str).map(str::to_owned),
                    kind: Some("function".into()),
                    function: Some(FunctionCallDelta {
                        name: block.get("name").and_then(Value::as_str).map(str::to_owned),
                        arguments: Some(String::new()),
                    }),
                };
                Ok(Some(self.chunk(
                    Delta {
                        tool_calls: Some(vec![delta]),
                        ..Delta::default()
                    },
                    None,
                )))
            }
            "content_block_delta" => {
                let delta = data.get("delta").ok_or_else(malformed)?;
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let text = delta
                            .get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        Ok(Some(self.chunk(
                            Delta {
                                content: Some(text.to_owned()),
                                ..Delta::default()
                            },
                            None,
                        )))
                    }
                    Some("input_json_delta") => {
                        let block_index = data
                            .get("index")
                            .and_then(Value::as_u64)
                            .ok_or_else(malformed)?;
                        let index = *self.tool_index.get(&block_index).ok_or_else(malformed)?;
                        let partial = delta
                            .get("partial_json")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        let delta = ToolCallDelta {
                            index,
                            function: Some(FunctionCallDelta {
                                name: None,
                                arguments: Some(partial.to_owned()),
                            }),
                            ..ToolCallDelta::default()
                        };
                        Ok(Some(self.chunk(
                            Delta {
                                tool_calls: Some(vec![delta]),
                                ..Delta::default()
                            },
                            None,
                        )))
                    }
                    _ => Ok(None),
                }
            }
            "message_delta" => {
                if let Some(usage) = data.get("usage") {
                    let update: AnthropicUsage =
                        serde_json::from_value(usage.clone()).map_err(|_| malformed())?;
                    // `output_tokens` is cumulative; input counts, when repeated, are the final ones.
                    self.usage.output_tokens = update.output_tokens;
                    if update.input_tokens > 0 {
                        self.usage.input_tokens = update.input_tokens;
                    }
                    self.usage.cache_read_input_tokens = update
                        .cache_read_input_tokens
                        .or(self.usage.cache_read_input_tokens);
                    self.usage.cache_creation_input_tokens = update
                        .cache_creation_input_tokens
                        .or(self.usage.cache_creation_input_tokens);
                }
                let reason = data
                    .pointer("/delta/stop_reason")
                    .and_then(Value::as_str)
                    .map(finish_reason);
                Ok(reason.map(|r| self.chunk(Delta::default(), Some(r))))
            }
            "message_stop" => {
                self.finished = true;
                let mut chunk = self.chunk(Delta::default(), None);
                chunk.choices.clear();
                chunk.usage = Some(self.usage.to_usage());
                Ok(Some(chunk))
            }
            "error" => {
                let message = data
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error");
                Err(ProviderError::StreamCut(message.to_owned()))
            }
            _ => Ok(None), // ping, content_block_stop, future event types
        }
    }
}

fn translate_stream(events: EventStream) -> ChunkStream {
    let state = StreamState {
        events,
        id: String::new(),
        model: String::new(),
        created: unix_now(),
        usage: AnthropicUsage::default(),
        tool_index: HashMap::new(),
        finished: false,
    };
    futures::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        loop {
            if state.finished {
                return None;
            }
            let event = match state.events.next().await {
                None => {
                    return Some((
                        Err(ProviderError::StreamCut(
                            "stream ended before message_stop".into(),
                        )),
                        None,
                    ));
                }
                Some(Err(e)) => return Some((Err(e), None)),
                Some(Ok(event)) => event,
            };
            let data: Value = match serde_json::from_str(&event.data) {
                Ok(data) => data,
                Err(e) => {
                    return Some((
                        Err(ProviderError::Malformed(format!("bad event data ({e})"))),
                        None,
                    ));
                }
            };
            // The event name is repeated as `type` in the data; older proxies drop the `event:` line.
            let name = if event.event.is_empty() || event.event == "message" {
                data.get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            } else {
                event.event.clone()
            };
            match state.on_event(&name, &data) {
                Ok(Some(chunk)) => return Some((Ok(chunk), Some(state))),
                Ok(None) => continue,
                Err(e) => return Some((Err(e), None)),
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: Value) -> ChatRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn translates_system_tools_and_tool_results() {
        let req = request(json!({
            "model": "claude",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "user", "content": "Thanks"}
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "stop": "END",
            "temperature": 1.5
        }));
        let options = BodyOptions {
            default_max_tokens: 1000,
            cache_system_prompt: false,
        };
        let body = to_messages_request(&req, options, false).unwrap();
        assert_eq!(body["system"], "Be brief.");
        let cached = BodyOptions {
            cache_system_prompt: true,
            ..options
        };
        let body_with_breakpoint = to_messages_request(&req, cached, false).unwrap();
        assert_eq!(
            body_with_breakpoint["system"],
            json!([{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]),
            "the system prompt is a prompt-cache breakpoint"
        );
        assert_eq!(body["max_tokens"], 1000);
        assert_eq!(body["temperature"], 1.0);
        assert_eq!(body["stop_sequences"], json!(["END"]));
        assert_eq!(body["tool_choice"], json!({"type": "any"}));
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(
            messages.len(),
            3,
            "tool result and next user message merge into one turn: {messages:?}"
        );
        assert_eq!(messages[1]["content"][0]["type"], "tool_use");
        assert_eq!(messages[1]["content"][0]["input"]["city"], "Paris");
        assert_eq!(messages[2]["content"][0]["type"], "tool_result");
        assert_eq!(messages[2]["content"][1]["text"], "Thanks");
    }

    #[test]
    fn usage_counts_cache_reads_and_writes_as_prompt_tokens() {
        let usage = AnthropicUsage {
            input_tokens: 10,
            output_tokens: 5,
            cache_read_input_tokens: Some(100),
            cache_creation_input_tokens: Some(20),
        }
        .to_usage();
        assert_eq!(usage.prompt_tokens, 130);
        assert_eq!(usage.cached_tokens(), 100);
        assert_eq!(usage.cache_write_tokens(), 20);
        assert_eq!(usage.total_tokens, 135);
    }
}
