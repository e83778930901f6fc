//! `Gateway`: the single entry point for all LLM traffic, the assistant's included. It resolves
//! the model name (alias or deployment), validates the request, calls the provider, prices the
//! usage and writes one request-log row, for plain and streamed completions alike.

pub mod cost;
pub mod log;
mod stream;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use cost::Pricing;
pub use log::RequestLog;
pub use stream::CompletionStream;

use crate::config::{Config, ProviderConfig, resolve_secret};
use crate::error::{ApiError, GatewayError};
use crate::providers::anthropic::AnthropicProvider;
use crate::providers::local::LocalProvider;
use crate::providers::openai::OpenAiProvider;
use crate::providers::types::{ChatRequest, ChatResponse, EmbeddingRequest, Embeddings, Usage};
use crate::providers::{Provider, ProviderError};
use crate::store::{RequestRecord, RequestStatus};

/// At most this many inputs in one embeddings request, as with OpenAI.
const MAX_EMBEDDING_INPUTS: usize = 2048;

/// A named upstream model with its provider and prices.
#[derive(Clone)]
pub struct Deployment {
    pub name: String,
    pub provider_name: String,
    pub upstream_model: String,
    pub pricing: Pricing,
    provider: Arc<dyn Provider>,
}

impl Deployment {
    fn error(&self, source: ProviderError) -> GatewayError {
        GatewayError::Provider {
            deployment: self.name.clone(),
            error: source,
        }
    }

    /// Records on the log row which deployment and provider serve the request.
    fn stamp(&self, row: &mut RequestRecord) {
        row.deployment = Some(self.name.clone());
        row.provider = Some(self.provider_name.clone());
    }
}

/// A fresh request id: `req_` and a time-ordered UUID, so ids sort by arrival.
pub fn new_request_id() -> String {
    format!("req_{}", uuid::Uuid::now_v7().simple())
}

/// Who is asking and since when; one per incoming request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub key_id: Option<String>,
    pub endpoint: &'static str,
    /// `name@version` of the assistant prompt behind the request, recorded on its log row.
    pub prompt_version: Option<String>,
    pub started: Instant,
}

impl RequestContext {
    pub fn new(request_id: impl Into<String>, endpoint: &'static str) -> Self {
        Self {
            request_id: request_id.into(),
            key_id: None,
            endpoint,
            prompt_version: None,
            started: Instant::now(),
        }
    }

    /// A context for a secondary gateway call made while serving this request (the assistant's
    /// query embedding, say): its own log row, id `<parent>.<step>`, same caller and prompt.
    pub fn child(&self, step: &str, endpoint: &'static str) -> Self {
        Self {
            request_id: format!("{}.{step}", self.request_id),
            key_id: self.key_id.clone(),
            endpoint,
            prompt_version: self.prompt_version.clone(),
            started: Instant::now(),
        }
    }
}

pub struct Completion {
    pub response: ChatResponse,
    pub deployment: String,
    pub cost_micro_usd: u64,
    /// Time spent waiting on the provider.
    pub provider_time: Duration,
}

pub struct EmbeddingResult {
    pub embeddings: Embeddings,
    pub provider_time: Duration,
}

/// An entry of `GET /v1/models`.
pub struct ModelInfo {
    pub id: String,
    pub owned_by: String,
}

pub struct Gateway {
    deployments: BTreeMap<String, Deployment>,
    aliases: BTreeMap<String, Vec<String>>,
    local: HashMap<String, Arc<LocalProvider>>,
    log: RequestLog,
}

impl Gateway {
    pub fn from_config(config: &Config, log: RequestLog) -> Result<Self, GatewayError> {
        let mut providers: HashMap<String, Arc<dyn Provider>> = HashMap::new();
        let mut local = HashMap::new();
        for (name, provider) in &config.providers {
            let build_err =
                |e: ProviderError| GatewayError::Internal(format!("provider `{name}`: {e}"));
            let secret = |key: &Option<String>| {
                key.as_deref()
                    .map(resolve_secret)
                    .transpose()
                    .map_err(|m| GatewayError::Internal(format!("providers.{name}.api_key: {m}")))
            };
            let built: Arc<dyn Provider> = match provider {
                ProviderConfig::Openai(remote) => Arc::new(
                    OpenAiProvider::new(remote, secret(&remote.api_key)?.as_deref())
                        .map_err(build_err)?,
                ),
                ProviderConfig::Anthropic(remote) => Arc::new(
                    AnthropicProvider::new(remote, secret(&remote.api_key)?.as_deref())
                        .map_err(build_err)?,
                ),
                ProviderConfig::Local(local_config) => {
                    let provider = Arc::new(LocalProvider::new(local_config, config.models_dir()));
                    local.insert(name.clone(), provider.clone());
                    provider
                }
            };
            providers.insert(name.clone(), built);
        }
        let deployments = config
            .deployments
            .iter()
            .map(|(name, d)| {
                // Validated at config load: every deployment names a configured provider.
                let provider = providers.get(&d.provider).cloned().ok_or_else(|| {
                    GatewayError::Internal(format!("deployments.{name}.provider: unknown"))
                })?;
                Ok((
                    name.clone(),
                    Deployment {
                        name: name.clone(),
                        provider_name: d.provider.clone(),
                        upstream_model: d.model.clone(),
                        pricing: Pricing::from(&d.price),
                        provider,
                    },
                ))
            })
            .collect::<Result<_, GatewayError>>()?;
        Ok(Self {
            deployments,
            aliases: config.aliases.clone(),
            local,
            log,
        })
    }

    pub fn request_log(&self) -> &RequestLog {
        &self.log
    }

    /// An alias resolves to its first deployment; a deployment name to itself.
    pub fn resolve(&self, model: &str) -> Result<&Deployment, GatewayError> {
        let name = self
            .aliases
            .get(model)
            .and_then(|targets| targets.first())
            .map_or(model, String::as_str);
        self.deployments
            .get(name)
            .ok_or_else(|| GatewayError::UnknownModel(model.to_owned()))
    }

    pub fn models(&self) -> Vec<ModelInfo> {
        let aliases = self.aliases.keys().map(|a| ModelInfo {
            id: a.clone(),
            owned_by: "askacme".into(),
        });
        let deployments = self.deployments.values().map(|d| ModelInfo {
            id: d.name.clone(),
            owned_by: d.provider_name.clone(),
        });
        aliases.chain(deployments).collect()
    }

    /// Loads local models ahead of their first request.
    pub async fn warm_up(&self, model: &str) -> Result<(), GatewayError> {
        let deployment = self.resolve(model)?;
        if let Some(local) = self.local.get(&deployment.provider_name) {
            local
                .warm_up(&deployment.upstream_model)
                .await
                .map_err(|source| deployment.error(source))?;
        }
        Ok(())
    }

    pub async fn complete(
        &self,
        request: ChatRequest,
        ctx: &RequestContext,
    ) -> Result<Completion, GatewayError> {
        let mut row = self.new_row(ctx, &request.model, false);
        let result = self.complete_inner(request, &mut row).await;
        match &result {
            Ok(completion) => {
                let usage = completion.response.usage.unwrap_or_default();
                fill_usage(&mut row, &usage, completion.cost_micro_usd);
            }
            Err(e) => fail_row(&mut row, e),
        }
        row.latency_ms = millis(ctx.started.elapsed());
        self.log.record(row);
        result
    }

    async fn complete_inner(
        &self,
        mut request: ChatRequest,
        row: &mut RequestRecord,
    ) -> Result<Completion, GatewayError> {
        validate::chat_request(&request)?;
        let deployment = self.resolve(&request.model)?;
        deployment.stamp(row);
        request.model = deployment.upstream_model.clone();
        let started = Instant::now();
        let result = deployment.provider.chat(&request).await;
        row.provider_latency_ms = millis(started.elapsed());
        let response = result.map_err(|source| deployment.error(source))?;
        let cost = deployment
            .pricing
            .cost_micro_usd(&response.usage.unwrap_or_default());
        Ok(Completion {
            response,
            deployment: deployment.name.clone(),
            cost_micro_usd: cost,
            provider_time: started.elapsed(),
        })
    }

    /// Starts a streamed completion. Failures before the upstream accepted the request are an
    /// `Err` here; later ones are an error item of the stream. The stream logs its row when it
    /// ends, breaks or is dropped.
    pub async fn stream(
        &self,
        mut request: ChatRequest,
        ctx: &RequestContext,
    ) -> Result<CompletionStream, GatewayError> {
        let mut row = self.new_row(ctx, &request.model, true);
        let include_usage = request
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage);
        let started = Instant::now();
        let opened = async {
            validate::chat_request(&request)?;
            let deployment = self.resolve(&request.model)?;
            deployment.stamp(&mut row);
            request.model = deployment.upstream_model.clone();
            let chunks = deployment
                .provider
                .chat_stream(&request)
                .await
                .map_err(|source| deployment.error(source))?;
            Ok((chunks, deployment))
        }
        .await;
        match opened {
            Ok((chunks, deployment)) => Ok(CompletionStream::new(
                chunks,
                stream::Tracker::new(
                    self.log.clone(),
                    row,
                    deployment.pricing,
                    ctx.started,
                    started,
                ),
                include_usage,
                deployment.name.clone(),
            )),
            Err(e) => {
                fail_row(&mut row, &e);
                row.provider_latency_ms = millis(started.elapsed());
                row.latency_ms = millis(ctx.started.elapsed());
                self.log.record(row);
                Err(e)
            }
        }
    }

    pub async fn embed(
        &self,
        request: EmbeddingRequest,
        ctx: &RequestContext,
    ) -> Result<EmbeddingResult, GatewayError> {
        let mut row = self.new_row(ctx, &request.model, false);
        let started = Instant::now();
        let result = async {
            let deployment = self.resolve(&request.model)?;
            deployment.stamp(&mut row);
            let inputs = request.input.into_vec();
            if inputs.is_empty() || inputs.len() > MAX_EMBEDDING_INPUTS {
                return Err(GatewayError::invalid(
                    format!("`input` must hold between 1 and {MAX_EMBEDDING_INPUTS} strings"),
                    "input",
                ));
            }
            if let Some(i) = inputs.iter().position(|s| s.is_empty()) {
                return Err(GatewayError::invalid(
                    format!("input[{i}] must not be empty"),
                    format!("input[{i}]"),
                ));
            }
            let embeddings = deployment
                .provider
                .embed(&deployment.upstream_model, &inputs)
                .await
                .map_err(|source| deployment.error(source))?;
            let usage = Usage::new(embeddings.prompt_tokens, 0, 0, 0);
            Ok((embeddings, deployment.pricing.cost_micro_usd(&usage), usage))
        }
        .await;
        let provider_time = started.elapsed();
        row.provider_latency_ms = millis(provider_time);
        let result = match result {
            Ok((embeddings, cost, usage)) => {
                fill_usage(&mut row, &usage, cost);
                Ok(EmbeddingResult {
                    embeddings,
                    provider_time,
                })
            }
            Err(e) => {
                fail_row(&mut row, &e);
                Err(e)
            }
        };
        row.latency_ms = millis(ctx.started.elapsed());
        self.log.record(row);
        result
    }

    fn new_row(&self, ctx: &RequestContext, model: &str, stream: bool) -> RequestRecord {
        RequestRecord {
            id: ctx.request_id.clone(),
            created_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            key_id: ctx.key_id.clone(),
            endpoint: ctx.endpoint.to_owned(),
            prompt_version: ctx.prompt_version.clone(),
            requested_model: model.to_owned(),
            deployment: None,
            provider: None,
            stream,
            prompt_tokens: 0,
            completion_tokens: 0,
            cached_tokens: 0,
            cache_write_tokens: 0,
            cost_micro_usd: 0,
            latency_ms: 0.0,
            provider_latency_ms: 0.0,
            status: RequestStatus::Success,
            http_status: 200,
            error: None,
        }
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn fill_usage(row: &mut RequestRecord, usage: &Usage, cost_micro_usd: u64) {
    row.prompt_tokens = usage.prompt_tokens;
    row.completion_tokens = usage.completion_tokens;
    row.cached_tokens = usage.cached_tokens();
    row.cache_write_tokens = usage.cache_write_tokens();
    row.cost_micro_usd = cost_micro_usd;
}

fn fail_row(row: &mut RequestRecord, error: &GatewayError) {
    row.status = RequestStatus::Error;
    row.http_status = ApiError::from(error).status;
    row.error = Some(error.to_string());
}
