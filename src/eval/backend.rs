//! Where a suite's cases are answered: in this process (the assistant and gateway built from
//! the config, which alone can try another prompt version, model or a fixed context) or by a
//! running server over HTTP (`--url`), exactly as any client sees it.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::assertion::{CitedSource, Outcome};
use crate::cache::CacheDirective;
use crate::gateway::{Gateway, RequestContext, new_request_id};
use crate::kb::embed::{GatewayEmbedder, TextEmbedder};
use crate::pipeline::{AskRequest, AskResponse, Assistant, Overrides, Status};
use crate::providers::types::ChatRequest;

/// Why a case could not be answered (as opposed to answered wrongly): the attempt fails with
/// this message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// A question for the assistant, as a case sends it.
#[derive(Debug, Clone, Default)]
pub struct Question {
    pub question: String,
    pub collection: Option<String>,
    pub overrides: Overrides,
    /// Bypass the response caches for this question (a repeated attempt must reach a model).
    pub fresh: bool,
}

#[async_trait]
pub trait Backend: Send + Sync {
    async fn ask(&self, question: &Question) -> Result<Outcome, BackendError>;
    async fn chat(&self, request: ChatRequest) -> Result<Outcome, BackendError>;
    /// One unit-length vector per text.
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, BackendError>;
    /// Whether this backend can apply prompt, model and context overrides.
    fn overrides(&self) -> bool;
}

/// The assistant and gateway of this process.
pub struct InProcess {
    pub assistant: Arc<Assistant>,
    pub gateway: Arc<Gateway>,
    pub embedding_model: String,
    /// Bypass the response caches: every attempt reaches a model (used for repeats, so a
    /// second attempt is not the first one's cached answer).
    pub no_cache: bool,
}

impl InProcess {
    fn context(&self, endpoint: &'static str) -> RequestContext {
        let mut ctx = RequestContext::new(new_request_id(), endpoint);
        if self.no_cache {
            ctx.cache = Some(CacheDirective::NoStore);
        }
        ctx
    }
}

#[async_trait]
impl Backend for InProcess {
    async fn ask(&self, question: &Question) -> Result<Outcome, BackendError> {
        let ctx = self.context("eval/ask");
        let request = AskRequest {
            collection: question.collection.clone(),
            cache: question.fresh.then_some(CacheDirective::NoStore),
            ..AskRequest::new(question.question.clone())
        };
        let response = self
            .assistant
            .handle_with(request, &question.overrides, &ctx)
            .await
            .map_err(|e| BackendError(e.to_string()))?;
        Ok(ask_outcome(&response))
    }

    async fn chat(&self, request: ChatRequest) -> Result<Outcome, BackendError> {
        let ctx = self.context("eval/chat");
        let started = Instant::now();
        // The model asked for (a cache hit's deployment is `cache`).
        let model = request.model.clone();
        let completion = self
            .gateway
            .complete(request, &ctx)
            .await
            .map_err(|e| BackendError(e.to_string()))?;
        Ok(Outcome {
            answer: completion.response.text(),
            model: Some(model),
            cost_micro_usd: completion.cost_micro_usd,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            request_id: ctx.request_id,
            ..Outcome::default()
        })
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, BackendError> {
        GatewayEmbedder::new(self.gateway.clone(), self.embedding_model.clone())
            .embed(texts, &self.context("eval/embed"))
            .await
            .map_err(|e| BackendError(e.to_string()))
    }

    fn overrides(&self) -> bool {
        true
    }
}

fn ask_outcome(response: &AskResponse) -> Outcome {
    Outcome {
        answer: response.answer.clone(),
        status: Some(response.status),
        cited: response
            .sources
            .iter()
            .filter(|s| s.cited)
            .map(|s| CitedSource {
                path: s.path.clone(),
                heading: s.heading.clone(),
            })
            .collect(),
        ungrounded: response.ungrounded.clone(),
        model: response.model.clone(),
        prompt_version: Some(response.prompt_version.clone()),
        deployment: response.deployment.clone(),
        cost_micro_usd: response.cost_micro_usd,
        latency_ms: response.latency_ms,
        request_id: response.request_id.clone(),
    }
}

/// A running AskAcme server.
pub struct Remote {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
    embedding_model: String,
    no_cache: bool,
}

impl Remote {
    pub fn new(base: &str, key: Option<String>, embedding_model: String, no_cache: bool) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            key,
            embedding_model,
            no_cache,
        }
    }

    /// `body` with the cache bypassed, when it should be.
    fn cache_directive(&self, mut body: Value, fresh: bool) -> Value {
        if self.no_cache || fresh {
            body["cache"] = json!("no-store");
        }
        body
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, BackendError> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| BackendError(format!("{}{path}: {e}", self.base)))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| BackendError(format!("{}{path}: unreadable response: {e}", self.base)))?;
        if !status.is_success() {
            let message = body["error"]["message"].as_str().unwrap_or("no message");
            return Err(BackendError(format!("{path}: {status}: {message}")));
        }
        Ok(body)
    }
}

#[async_trait]
impl Backend for Remote {
    async fn ask(&self, question: &Question) -> Result<Outcome, BackendError> {
        let mut body = json!({"question": question.question});
        if let Some(collection) = &question.collection {
            body["collection"] = json!(collection);
        }
        let answer = self
            .post("/v1/ask", self.cache_directive(body, question.fresh))
            .await?;
        let text = |key: &str| answer[key].as_str().map(str::to_owned);
        let status: Option<Status> = serde_json::from_value(answer["status"].clone()).ok();
        Ok(Outcome {
            answer: text("answer").unwrap_or_default(),
            status,
            cited: answer["sources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["cited"] == true)
                .map(|s| CitedSource {
                    path: s["path"].as_str().unwrap_or_default().to_owned(),
                    heading: s["heading"].as_str().unwrap_or_default().to_owned(),
                })
                .collect(),
            ungrounded: answer["ungrounded"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            model: text("model"),
            prompt_version: text("prompt_version"),
            deployment: text("deployment"),
            cost_micro_usd: answer["cost_micro_usd"].as_u64().unwrap_or_default(),
            latency_ms: answer["latency_ms"].as_f64().unwrap_or_default(),
            request_id: text("request_id").unwrap_or_default(),
        })
    }

    async fn chat(&self, request: ChatRequest) -> Result<Outcome, BackendError> {
        let started = Instant::now();
        // `cache` is ours and never serialised upstream: it travels as the body's extension.
        let fresh = request.cache.is_some();
        let body = serde_json::to_value(&request).map_err(|e| BackendError(e.to_string()))?;
        let response = self
            .post("/v1/chat/completions", self.cache_directive(body, fresh))
            .await?;
        Ok(Outcome {
            answer: response["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            model: Some(request.model),
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            request_id: response["id"].as_str().unwrap_or_default().to_owned(),
            ..Outcome::default()
        })
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, BackendError> {
        let expected = texts.len();
        let response = self
            .post(
                "/v1/embeddings",
                json!({"model": self.embedding_model, "input": texts}),
            )
            .await?;
        let vectors: Vec<Vec<f32>> = response["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| {
                item["embedding"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_f64().map(|x| x as f32))
                    .collect()
            })
            .collect();
        if vectors.len() != expected {
            return Err(BackendError(format!(
                "/v1/embeddings returned {} vectors for {expected} inputs",
                vectors.len()
            )));
        }
        Ok(vectors)
    }

    fn overrides(&self) -> bool {
        false
    }
}
