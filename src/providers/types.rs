//! Canonical request/response types: the OpenAI chat-completions schema. Clients send it, the
//! `openai` provider forwards it, the other adapters translate to and from it. Fields this code
//! does not interpret are kept in `extra` and forwarded untouched.
//!
//! Responses and chunks are read liberally: OpenAI-compatible servers and proxies differ in what
//! they send (no `created`, no `id`, a float timestamp, a finish reason of their own), and one
//! missing field the gateway can do without must not make every answer "malformed" (which would
//! open the deployment's breaker and refuse healthy traffic). Only what the gateway needs is
//! required: `choices`, and `message` inside a choice of a response. The rest is optional, and
//! [`ChatResponse::fill_in`] / [`ChatChunk::fill_in`] fill the gaps so that what clients get
//! always has `id`, `object`, `created` and `model`. Client requests stay strict.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// AskAcme's extension: `"no-store"` keeps this request out of the response cache. Never
    /// sent upstream.
    #[serde(default, skip_serializing)]
    pub cache: Option<CacheDirective>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A caller's say over the response cache, from `"cache": "no-store"` in the body or the
/// `cache-control: no-store` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheDirective {
    /// Neither read nor write the cache for this request.
    NoStore,
}

impl ChatRequest {
    /// `max_completion_tokens` is the newer spelling of `max_tokens`; either limits the answer.
    pub fn max_output_tokens(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    pub fn stop_sequences(&self) -> Vec<String> {
        match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        }
    }

    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Message {
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: Some(Content::Text(text.into())),
            name: None,
            tool_calls: None,
            tool_call_id: None,
            extra: Map::new(),
        }
    }

    /// The text of the message: a string content, or its text parts joined.
    pub fn text(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(Content::Text(text)) => text.clone(),
            Some(Content::Parts(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    /// Multi-part content (`[{"type":"text","text":...}, {"type":"image_url",...}]`), kept as JSON.
    Parts(Vec<Map<String, Value>>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: FunctionDef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text, as the model produced it.
    pub arguments: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    FunctionCall,
}

/// A whole answer. Upstreams may leave out (or send `null` for) `id`, `object`, `created` and
/// `model`; [`ChatResponse::fill_in`] supplies them. `choices` is required.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub object: String,
    /// Seconds since the UNIX epoch; some servers write it as a float.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub created: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub model: String,
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatResponse {
    /// The text of the first choice (empty when there is none).
    pub fn text(&self) -> String {
        self.choices
            .first()
            .map(|c| c.message.text())
            .unwrap_or_default()
    }

    /// Fills in what an upstream left out, so clients always get a complete response: an empty
    /// `id` becomes a new `chatcmpl-…` id, an empty `object` `chat.completion`, a zero
    /// `created` the current time, an empty `model` `requested_model` (the upstream model name
    /// the request was sent with); a missing usage total is computed from its parts, and an
    /// empty `tool_calls: []` (vLLM sends one with every answer) becomes `None`, because the
    /// gateway reads `Some(_)` as "the answer has tool calls".
    pub fn fill_in(&mut self, requested_model: &str) {
        if self.id.is_empty() {
            self.id = new_completion_id();
        }
        if self.object.is_empty() {
            self.object = "chat.completion".into();
        }
        if self.created == 0 {
            self.created = unix_now();
        }
        if self.model.is_empty() {
            self.model = requested_model.to_owned();
        }
        if let Some(usage) = &mut self.usage {
            usage.fill_in();
        }
        for choice in &mut self.choices {
            none_if_empty(&mut choice.message.tool_calls);
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Choice {
    /// Left out by some servers that only ever send one choice.
    #[serde(default, deserialize_with = "null_as_default")]
    pub index: u32,
    pub message: Message,
    #[serde(default, deserialize_with = "lenient_finish_reason")]
    pub finish_reason: Option<FinishReason>,
}

/// One `chat.completion.chunk` of a stream.
///
/// Deserialized through `ChatChunkWire`, from a JSON object only: every field may be missing
/// upstream (a usage-only chunk may even lack `choices`), so a derived impl would also take
/// any short JSON array for an empty chunk. [`ChatChunk::fill_in`] supplies what is missing.
/// Serialization always writes `id`, `object`, `created`, `model` and `choices`.
#[derive(Debug, Clone, Serialize)]
pub struct ChatChunk {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    /// Present (possibly `null`) only when the caller asked for `stream_options.include_usage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl ChatChunk {
    /// Fills in what an upstream left out of a chunk, with values fixed for the whole stream so
    /// that all its chunks agree: an empty `id` becomes `stream_id` (one
    /// [`new_completion_id`] per stream), a zero `created` becomes `created` (one [`unix_now`]
    /// per stream), an empty `object` `chat.completion.chunk`, an empty `model`
    /// `requested_model`; a missing usage total is computed from its parts, and an empty
    /// `tool_calls: []` in a delta becomes `None` (the gateway reads `Some(_)` as "tool calls
    /// are streaming").
    pub fn fill_in(&mut self, stream_id: &str, created: u64, requested_model: &str) {
        if self.id.is_empty() {
            self.id = stream_id.to_owned();
        }
        if self.object.is_empty() {
            self.object = "chat.completion.chunk".into();
        }
        if self.created == 0 {
            self.created = created;
        }
        if self.model.is_empty() {
            self.model = requested_model.to_owned();
        }
        if let Some(usage) = &mut self.usage {
            usage.fill_in();
        }
        for choice in &mut self.choices {
            none_if_empty(&mut choice.delta.tool_calls);
        }
    }
}

/// [`ChatChunk`] as upstreams send it: everything optional, `null` as good as missing.
#[derive(Deserialize)]
struct ChatChunkWire {
    #[serde(default, deserialize_with = "null_as_default")]
    id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    object: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    created: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    model: String,
    /// Missing from some usage-only chunks.
    #[serde(default, deserialize_with = "null_as_default")]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

impl<'de> Deserialize<'de> for ChatChunk {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ChatChunkVisitor)
    }
}

/// Takes a JSON object only, and reads it as a [`ChatChunkWire`].
struct ChatChunkVisitor;

impl<'de> Visitor<'de> for ChatChunkVisitor {
    type Value = ChatChunk;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a chat completion chunk (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ChatChunk, A::Error> {
        let map = MapAccessDeserializer::new(map);
        let wire = ChatChunkWire::deserialize(map)?;
        Ok(ChatChunk {
            id: wire.id,
            object: wire.object,
            created: wire.created,
            model: wire.model,
            choices: wire.choices,
            usage: wire.usage,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkChoice {
    #[serde(default, deserialize_with = "null_as_default")]
    pub index: u32,
    /// Missing from some servers' final chunk, which only carries the finish reason.
    #[serde(default, deserialize_with = "null_as_default")]
    pub delta: Delta,
    #[serde(default, deserialize_with = "lenient_finish_reason")]
    pub finish_reason: Option<FinishReason>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ToolCallDelta {
    /// Left out by some servers that stream one tool call at a time.
    #[serde(default, deserialize_with = "null_as_default")]
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FunctionCallDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// OpenAI's usage object. `prompt_tokens` counts every input token, cached ones included.
/// Upstreams may leave counts out (or send `null`): they read as 0, and [`Usage::fill_in`]
/// computes a missing total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub prompt_tokens: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub completion_tokens: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: u64,
    /// Tokens written to a provider's prompt cache (Anthropic's `cache_creation_input_tokens`);
    /// not an OpenAI field, so absent unless non-zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    pub fn new(
        prompt_tokens: u64,
        completion_tokens: u64,
        cached_tokens: u64,
        cache_write_tokens: u64,
    ) -> Self {
        let details =
            (cached_tokens > 0 || cache_write_tokens > 0).then_some(PromptTokensDetails {
                cached_tokens,
                cache_write_tokens,
            });
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            prompt_tokens_details: details,
        }
    }

    pub fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details.map_or(0, |d| d.cached_tokens)
    }

    pub fn cache_write_tokens(&self) -> u64 {
        self.prompt_tokens_details
            .map_or(0, |d| d.cache_write_tokens)
    }

    /// A total an upstream left out (0) is the sum of the parts.
    pub fn fill_in(&mut self) {
        if self.total_tokens == 0 {
            self.total_tokens = self.prompt_tokens.saturating_add(self.completion_tokens);
        }
    }
}

/// An empty list becomes no list: some upstreams send `tool_calls: []` with every answer.
fn none_if_empty<T>(list: &mut Option<Vec<T>>) {
    if list.as_ref().is_some_and(Vec::is_empty) {
        *list = None;
    }
}

/// A new completion id, `chatcmpl-<time-ordered uuid>`: for local answers, and for an answer
/// whose upstream sent none.
pub fn new_completion_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::now_v7().simple())
}

/// Seconds since the UNIX epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `null` reads as the default, like a missing field: some upstreams write `null` for what they
/// do not know rather than leaving it out.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A count or timestamp from an upstream: an integer, or a float (some servers write
/// `"created": 1718000000.0`), truncated; `null` and negative numbers read as 0.
fn lenient_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    deserializer.deserialize_any(LenientU64)
}

struct LenientU64;

impl<'de> Visitor<'de> for LenientU64 {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative number or null")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        Ok(u64::try_from(v).unwrap_or(0))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        // `as` saturates; NaN and negatives fail the comparison and read as 0.
        Ok(if v > 0.0 { v as u64 } else { 0 })
    }

    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        Ok(0)
    }

    fn visit_none<E: de::Error>(self) -> Result<u64, E> {
        Ok(0)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// An upstream's finish reason. Servers have their own names for a normal end (`"eos"` from
/// llama.cpp-style servers, Anthropic-style `"end_turn"`, `"stop_sequence"`, `"max_tokens"`,
/// `"tool_use"`), read as the OpenAI reason they mean. Any other string (vLLM's `"abort"`, a
/// proxy's `"error"`, something new) is not taken for a complete answer: it reads as `None`, so
/// a stream that ends on it is reported cut (never cached, counted against the upstream)
/// rather than failing to parse. `null`, a missing field and `""` (which some proxies send on
/// every chunk before the last) read as `None` too.
fn lenient_finish_reason<'de, D>(deserializer: D) -> Result<Option<FinishReason>, D::Error>
where
    D: Deserializer<'de>,
{
    let Some(reason) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    Ok(match reason.as_str() {
        "stop" | "eos" | "end_turn" | "stop_sequence" => Some(FinishReason::Stop),
        "length" | "max_tokens" => Some(FinishReason::Length),
        "tool_calls" | "tool_use" => Some(FinishReason::ToolCalls),
        "content_filter" => Some(FinishReason::ContentFilter),
        "function_call" => Some(FinishReason::FunctionCall),
        _ => None,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: EmbeddingInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
}

impl EmbeddingInput {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            EmbeddingInput::One(s) => vec![s],
            EmbeddingInput::Many(v) => v,
        }
    }
}

/// Vectors in input order plus the input tokens they cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub prompt_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUESTED: &str = "requested-model";

    fn counts(u: Usage) -> (u64, u64, u64) {
        (u.prompt_tokens, u.completion_tokens, u.total_tokens)
    }

    /// A whole answer as a server sends it, and what the gateway must read from it.
    struct PlainCase {
        name: &'static str,
        body: &'static str,
        text: &'static str,
        finish_reason: Option<FinishReason>,
        /// (prompt, completion, total) after fill-in.
        usage: Option<(u64, u64, u64)>,
        /// The upstream's id, when it sent one (else a generated one is expected).
        id: Option<&'static str>,
        /// The model after fill-in: the upstream's, else the requested one.
        model: &'static str,
    }

    const PLAIN: &[PlainCase] = &[
        PlainCase {
            name: "openai",
            body: r#"{
                "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
                "object": "chat.completion",
                "created": 1741570283,
                "model": "gpt-4o-2024-08-06",
                "choices": [{
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "The capital of France is Paris.",
                        "refusal": null,
                        "annotations": []
                    },
                    "logprobs": null,
                    "finish_reason": "stop"
                }],
                "usage": {
                    "prompt_tokens": 1117,
                    "completion_tokens": 46,
                    "total_tokens": 1163,
                    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
                    "completion_tokens_details": {
                        "reasoning_tokens": 0,
                        "audio_tokens": 0,
                        "accepted_prediction_tokens": 0,
                        "rejected_prediction_tokens": 0
                    }
                },
                "service_tier": "default",
                "system_fingerprint": "fp_fc9f1d7035"
            }"#,
            text: "The capital of France is Paris.",
            finish_reason: Some(FinishReason::Stop),
            usage: Some((1117, 46, 1163)),
            id: Some("chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"),
            model: "gpt-4o-2024-08-06",
        },
        PlainCase {
            name: "vllm",
            body: r#"{
                "id": "chatcmpl-8c1b6a4e0f7d4c3e9a2b5d6e7f809a1b",
                "object": "chat.completion",
                "created": 1718000000,
                "model": "Qwen/Qwen2.5-7B-Instruct",
                "choices": [{
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "reasoning_content": null,
                        "content": "Paris.",
                        "tool_calls": []
                    },
                    "logprobs": null,
                    "finish_reason": "length",
                    "stop_reason": null
                }],
                "usage": {
                    "prompt_tokens": 25,
                    "total_tokens": 28,
                    "completion_tokens": 3,
                    "prompt_tokens_details": null
                },
                "prompt_logprobs": null,
                "kv_transfer_params": null
            }"#,
            text: "Paris.",
            finish_reason: Some(FinishReason::Length),
            usage: Some((25, 3, 28)),
            id: Some("chatcmpl-8c1b6a4e0f7d4c3e9a2b5d6e7f809a1b"),
            model: "Qwen/Qwen2.5-7B-Instruct",
        },
        PlainCase {
            name: "ollama",
            body: r#"{
                "id": "chatcmpl-245",
                "object": "chat.completion",
                "created": 1718000000,
                "model": "llama3.2",
                "system_fingerprint": "fp_ollama",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hi there!"},
                    "finish_reason": "stop"
                }],
                "usage": {"prompt_tokens": 26, "completion_tokens": 4, "total_tokens": 30}
            }"#,
            text: "Hi there!",
            finish_reason: Some(FinishReason::Stop),
            usage: Some((26, 4, 30)),
            id: Some("chatcmpl-245"),
            model: "llama3.2",
        },
        PlainCase {
            name: "llama.cpp server",
            body: r#"{
                "choices": [{
                    "finish_reason": "stop",
                    "index": 0,
                    "message": {"role": "assistant", "content": "Four."}
                }],
                "created": 1718000000,
                "model": "gpt-3.5-turbo",
                "system_fingerprint": "b4273-e0c2e1a4",
                "object": "chat.completion",
                "usage": {"completion_tokens": 3, "prompt_tokens": 12, "total_tokens": 15},
                "id": "chatcmpl-QmvTnMEx2SpPPtFhYHbXfmxUwk5KJAp8",
                "timings": {
                    "prompt_n": 12,
                    "prompt_ms": 30.1,
                    "predicted_n": 3,
                    "predicted_ms": 50.2,
                    "predicted_per_second": 59.7
                }
            }"#,
            text: "Four.",
            finish_reason: Some(FinishReason::Stop),
            usage: Some((12, 3, 15)),
            id: Some("chatcmpl-QmvTnMEx2SpPPtFhYHbXfmxUwk5KJAp8"),
            model: "gpt-3.5-turbo",
        },
        PlainCase {
            name: "proxy without id, object, created, model, index or total",
            body: r#"{
                "choices": [{
                    "message": {"role": "assistant", "content": "OK"},
                    "finish_reason": "stop"
                }],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1}
            }"#,
            text: "OK",
            finish_reason: Some(FinishReason::Stop),
            usage: Some((5, 1, 6)),
            id: None,
            model: REQUESTED,
        },
        PlainCase {
            name: "float created, server-specific finish reason, usage null",
            body: r#"{
                "id": "cmpl-1",
                "object": "chat.completion",
                "created": 1718000000.0,
                "model": "local-model",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": "Done"},
                    "finish_reason": "eos"
                }],
                "usage": null
            }"#,
            text: "Done",
            finish_reason: Some(FinishReason::Stop),
            usage: None,
            id: Some("cmpl-1"),
            model: "local-model",
        },
        PlainCase {
            name: "nulls for id and model, no finish reason",
            body: r#"{
                "id": null,
                "created": null,
                "model": null,
                "choices": [{"index": null, "message": {"role": "assistant", "content": "x"}}]
            }"#,
            text: "x",
            finish_reason: None,
            usage: None,
            id: None,
            model: REQUESTED,
        },
    ];

    #[test]
    fn reads_and_fills_in_plain_responses() {
        for case in PLAIN {
            let mut response: ChatResponse = serde_json::from_str(case.body)
                .unwrap_or_else(|e| panic!("{}: does not parse: {e}", case.name));
            response.fill_in(REQUESTED);
            let name = case.name;
            assert_eq!(response.text(), case.text, "{name}");
            let choice = &response.choices[0];
            assert_eq!(choice.finish_reason, case.finish_reason, "{name}");
            assert_eq!(choice.index, 0, "{name}");
            assert!(choice.message.tool_calls.is_none(), "{name}");
            assert_eq!(response.usage.map(counts), case.usage, "{name}");
            match case.id {
                Some(id) => assert_eq!(response.id, id, "{name}"),
                None => assert!(response.id.starts_with("chatcmpl-"), "{name}"),
            }
            assert!(!response.id.is_empty(), "{name}");
            assert_eq!(response.object, "chat.completion", "{name}");
            assert!(response.created > 0, "{name}");
            assert_eq!(response.model, case.model, "{name}");
        }
    }

    #[test]
    fn keeps_upstream_created_and_cached_tokens() {
        let mut response: ChatResponse = serde_json::from_str(PLAIN[0].body).unwrap();
        response.fill_in(REQUESTED);
        assert_eq!(response.created, 1_741_570_283);
        assert_eq!(response.usage.unwrap().cached_tokens(), 1024);
        // Fields the gateway does not interpret are forwarded.
        assert_eq!(response.extra["system_fingerprint"], "fp_fc9f1d7035");

        let mut response: ChatResponse = serde_json::from_str(PLAIN[5].body).unwrap();
        response.fill_in(REQUESTED);
        assert_eq!(response.created, 1_718_000_000);
    }

    /// A stream as a server sends it (the `data:` payloads before `[DONE]`), and what the
    /// gateway must read from it.
    struct StreamCase {
        name: &'static str,
        chunks: &'static [&'static str],
        text: &'static str,
        finish_reason: Option<FinishReason>,
        /// (prompt, completion, total) of the last chunk that carried usage, after fill-in.
        usage: Option<(u64, u64, u64)>,
        /// The upstream's id, when it sent one (else the stream's id is expected).
        id: Option<&'static str>,
        /// The model after fill-in: the upstream's, else the requested one.
        model: &'static str,
    }

    const STREAMS: &[StreamCase] = &[
        StreamCase {
            name: "openai",
            chunks: &[
                r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"x2"}"#,
                r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"Rk"}"#,
                r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#,
                r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}"#,
            ],
            text: "Hello",
            finish_reason: Some(FinishReason::Stop),
            usage: Some((9, 1, 10)),
            id: Some("chatcmpl-123"),
            model: "gpt-4o-mini",
        },
        StreamCase {
            name: "vllm",
            chunks: &[
                r#"{"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1718000000,"model":"Qwen/Qwen2.5-7B-Instruct","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
                r#"{"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1718000000,"model":"Qwen/Qwen2.5-7B-Instruct","choices":[{"index":0,"delta":{"content":"Paris","reasoning_content":null,"tool_calls":[]},"logprobs":null,"finish_reason":null}]}"#,
                r#"{"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1718000000,"model":"Qwen/Qwen2.5-7B-Instruct","choices":[{"index":0,"delta":{"content":"."},"logprobs":null,"finish_reason":"stop","stop_reason":null}]}"#,
                r#"{"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1718000000,"model":"Qwen/Qwen2.5-7B-Instruct","choices":[],"usage":{"prompt_tokens":25,"total_tokens":27,"completion_tokens":2}}"#,
            ],
            text: "Paris.",
            finish_reason: Some(FinishReason::Stop),
            usage: Some((25, 2, 27)),
            id: Some("chatcmpl-abc"),
            model: "Qwen/Qwen2.5-7B-Instruct",
        },
        StreamCase {
            name: "ollama",
            chunks: &[
                r#"{"id":"chatcmpl-245","object":"chat.completion.chunk","created":1718000000,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#,
                r#"{"id":"chatcmpl-245","object":"chat.completion.chunk","created":1718000000,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":" there!"},"finish_reason":null}]}"#,
                r#"{"id":"chatcmpl-245","object":"chat.completion.chunk","created":1718000000,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}"#,
                r#"{"id":"chatcmpl-245","object":"chat.completion.chunk","created":1718000000,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":26,"completion_tokens":4,"total_tokens":30}}"#,
            ],
            text: "Hi there!",
            finish_reason: Some(FinishReason::Stop),
            usage: Some((26, 4, 30)),
            id: Some("chatcmpl-245"),
            model: "llama3.2",
        },
        StreamCase {
            name: "llama.cpp server",
            chunks: &[
                r#"{"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],"created":1718000000,"id":"chatcmpl-Qmv","model":"gpt-3.5-turbo","system_fingerprint":"b4273-e0c2e1a4","object":"chat.completion.chunk"}"#,
                r#"{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Four"}}],"created":1718000000,"id":"chatcmpl-Qmv","model":"gpt-3.5-turbo","system_fingerprint":"b4273-e0c2e1a4","object":"chat.completion.chunk"}"#,
                r#"{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"."}}],"created":1718000000,"id":"chatcmpl-Qmv","model":"gpt-3.5-turbo","system_fingerprint":"b4273-e0c2e1a4","object":"chat.completion.chunk"}"#,
                r#"{"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":1718000000,"id":"chatcmpl-Qmv","model":"gpt-3.5-turbo","system_fingerprint":"b4273-e0c2e1a4","object":"chat.completion.chunk","usage":{"completion_tokens":2,"prompt_tokens":12,"total_tokens":14},"timings":{"prompt_n":12,"prompt_ms":30.1,"predicted_n":2,"predicted_ms":33.4,"predicted_per_second":59.9}}"#,
            ],
            text: "Four.",
            finish_reason: Some(FinishReason::Stop),
            usage: Some((12, 2, 14)),
            id: Some("chatcmpl-Qmv"),
            model: "gpt-3.5-turbo",
        },
        StreamCase {
            name: "proxy without id, object, created, model, delta or choices",
            chunks: &[
                r#"{"choices":[{"delta":{"role":"assistant","content":"O"}}]}"#,
                r#"{"choices":[{"delta":{"content":"K"},"finish_reason":null}]}"#,
                r#"{"choices":[{"finish_reason":"stop"}]}"#,
                r#"{"usage":{"prompt_tokens":5,"completion_tokens":2}}"#,
            ],
            text: "OK",
            finish_reason: Some(FinishReason::Stop),
            usage: Some((5, 2, 7)),
            id: None,
            model: REQUESTED,
        },
        StreamCase {
            name: "float created, server-specific finish reason, empty finish reason",
            chunks: &[
                r#"{"id":"cmpl-9","object":"chat.completion.chunk","created":1718000000.5,"model":"local-model","choices":[{"index":0,"delta":{"role":"assistant","content":"Bye"},"finish_reason":""}]}"#,
                r#"{"id":"cmpl-9","object":"chat.completion.chunk","created":1718000000.5,"model":"local-model","choices":[{"index":0,"delta":{},"finish_reason":"end_turn"}],"usage":null}"#,
            ],
            text: "Bye",
            finish_reason: Some(FinishReason::Stop),
            usage: None,
            id: Some("cmpl-9"),
            model: "local-model",
        },
    ];

    #[test]
    fn reads_and_fills_in_streams() {
        for case in STREAMS {
            let name = case.name;
            let stream_id = new_completion_id();
            let started = unix_now();
            let mut text = String::new();
            let mut finish_reason = None;
            let mut usage = None;
            for (i, data) in case.chunks.iter().enumerate() {
                let mut chunk: ChatChunk = serde_json::from_str(data)
                    .unwrap_or_else(|e| panic!("{name}: chunk {i} does not parse: {e}"));
                chunk.fill_in(&stream_id, started, REQUESTED);
                match case.id {
                    Some(id) => assert_eq!(chunk.id, id, "{name} {i}"),
                    None => assert_eq!(chunk.id, stream_id, "{name} {i}"),
                }
                assert_eq!(chunk.object, "chat.completion.chunk", "{name} {i}");
                assert!(chunk.created > 0, "{name} {i}");
                assert_eq!(chunk.model, case.model, "{name} {i}");
                for choice in &chunk.choices {
                    assert_eq!(choice.index, 0, "{name} {i}");
                    assert!(choice.delta.tool_calls.is_none(), "{name} {i}");
                    if let Some(content) = &choice.delta.content {
                        text.push_str(content);
                    }
                    if choice.finish_reason.is_some() {
                        finish_reason = choice.finish_reason;
                    }
                }
                if let Some(u) = chunk.usage {
                    usage = Some(counts(u));
                }
            }
            assert_eq!(text, case.text, "{name}");
            assert_eq!(finish_reason, case.finish_reason, "{name}");
            assert_eq!(usage, case.usage, "{name}");
        }
    }

    #[test]
    fn finish_reasons_map_known_ends_and_treat_unknown_ones_as_unfinished() {
        let cases = [
            (r#""stop""#, Some(FinishReason::Stop)),
            (r#""length""#, Some(FinishReason::Length)),
            (r#""tool_calls""#, Some(FinishReason::ToolCalls)),
            (r#""content_filter""#, Some(FinishReason::ContentFilter)),
            (r#""function_call""#, Some(FinishReason::FunctionCall)),
            (r#""eos""#, Some(FinishReason::Stop)),
            (r#""abort""#, None),
            (r#""error""#, None),
            (r#""max_tokens""#, Some(FinishReason::Length)),
            (r#""end_turn""#, Some(FinishReason::Stop)),
            (r#""""#, None),
            ("null", None),
        ];
        for (reason, expected) in cases {
            let data = format!(r#"{{"choices":[{{"delta":{{}},"finish_reason":{reason}}}]}}"#);
            let chunk: ChatChunk = serde_json::from_str(&data).unwrap();
            assert_eq!(chunk.choices[0].finish_reason, expected, "{reason}");
            let body = format!(
                r#"{{"choices":[{{"message":{{"role":"assistant"}},"finish_reason":{reason}}}]}}"#
            );
            let response: ChatResponse = serde_json::from_str(&body).unwrap();
            assert_eq!(response.choices[0].finish_reason, expected, "{reason}");
        }
        let missing: ChatChunk = serde_json::from_str(r#"{"choices":[{"delta":{}}]}"#).unwrap();
        assert_eq!(missing.choices[0].finish_reason, None);
    }

    #[test]
    fn created_may_be_a_float_or_missing() {
        let cases = [
            (r#""created":1718000000,"#, 1_718_000_000),
            (r#""created":1718000000.0,"#, 1_718_000_000),
            (r#""created":1718000000.9,"#, 1_718_000_000),
            (r#""created":null,"#, 0),
            (r#""created":-5,"#, 0),
            ("", 0),
        ];
        for (created, expected) in cases {
            let data = format!(r#"{{{created}"choices":[]}}"#);
            let chunk: ChatChunk = serde_json::from_str(&data).unwrap();
            assert_eq!(chunk.created, expected, "{created}");
            let response: ChatResponse = serde_json::from_str(&data).unwrap();
            assert_eq!(response.created, expected, "{created}");
        }
        assert!(serde_json::from_str::<ChatChunk>(r#"{"created":"soon"}"#).is_err());
    }

    #[test]
    fn a_chunk_without_choices_or_usage_is_an_empty_chunk() {
        let mut chunk: ChatChunk = serde_json::from_str("{}").unwrap();
        assert!(chunk.choices.is_empty());
        assert!(chunk.usage.is_none());
        chunk.fill_in("chatcmpl-stream", 1_718_000_000, REQUESTED);
        assert_eq!(chunk.id, "chatcmpl-stream");
        assert_eq!(chunk.created, 1_718_000_000);

        let chunk: ChatChunk =
            serde_json::from_str(r#"{"id":"x","choices":null,"usage":null}"#).unwrap();
        assert!(chunk.choices.is_empty());
        assert!(chunk.usage.is_none());
    }

    #[test]
    fn a_body_that_is_not_an_object_fails() {
        for body in [
            "[]",
            r#"["", "", 0, "", [], null]"#,
            r#""hello""#,
            "42",
            "null",
            "true",
        ] {
            let chunk = serde_json::from_str::<ChatChunk>(body);
            assert!(chunk.is_err(), "chunk {body}");
            let response = serde_json::from_str::<ChatResponse>(body);
            assert!(response.is_err(), "response {body}");
        }
    }

    #[test]
    fn what_the_gateway_needs_stays_required() {
        // No choices.
        assert!(serde_json::from_str::<ChatResponse>(r#"{"id":"x"}"#).is_err());
        // A choice without its message.
        let body = r#"{"choices":[{"index":0,"finish_reason":"stop"}]}"#;
        assert!(serde_json::from_str::<ChatResponse>(body).is_err());
        // A finish reason that is not a string.
        let data = r#"{"choices":[{"delta":{},"finish_reason":7}]}"#;
        assert!(serde_json::from_str::<ChatChunk>(data).is_err());
    }

    #[test]
    fn client_requests_stay_strict() {
        let no_role = r#"{"model":"m","messages":[{"content":"hi"}]}"#;
        assert!(serde_json::from_str::<ChatRequest>(no_role).is_err());
        let bad_role = r#"{"model":"m","messages":[{"role":"robot","content":"hi"}]}"#;
        assert!(serde_json::from_str::<ChatRequest>(bad_role).is_err());
        let no_model = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
        assert!(serde_json::from_str::<ChatRequest>(no_model).is_err());
    }

    #[test]
    fn serialization_keeps_its_shape() {
        let mut chunk: ChatChunk =
            serde_json::from_str(r#"{"choices":[{"finish_reason":"eos"}]}"#).unwrap();
        chunk.fill_in("chatcmpl-s", 1_718_000_000, REQUESTED);
        assert_eq!(
            serde_json::to_value(chunk).unwrap(),
            serde_json::json!({
                "id": "chatcmpl-s",
                "object": "chat.completion.chunk",
                "created": 1_718_000_000,
                "model": REQUESTED,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            })
        );

        let body = r#"{"choices":[{"message":{"role":"assistant","content":"OK","tool_calls":[]}}],
            "usage":{"prompt_tokens":5,"completion_tokens":1}}"#;
        let mut response: ChatResponse = serde_json::from_str(body).unwrap();
        response.fill_in(REQUESTED);
        let value = serde_json::to_value(&response).unwrap();
        assert_eq!(value["object"], "chat.completion");
        assert_eq!(value["model"], REQUESTED);
        assert!(value["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert!(value["created"].as_u64().unwrap() > 0);
        assert_eq!(
            value["choices"],
            serde_json::json!([{
                "index": 0,
                "message": {"role": "assistant", "content": "OK"},
                "finish_reason": null,
            }])
        );
        assert_eq!(
            value["usage"],
            serde_json::json!({"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6})
        );
        // What is written reads back the same.
        let again: ChatResponse = serde_json::from_value(value).unwrap();
        assert_eq!(again.id, response.id);
        assert_eq!(again.usage, response.usage);
    }
}
