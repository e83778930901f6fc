//! `Gateway`: the single entry point for all LLM traffic, the assistant's included. It checks
//! the caller's model allow-list, token limit and budget, plans the deployments to try (weights,
//! fallbacks, open breakers skipped), calls them with retries inside a deadline, prices the
//! usage and writes one request-log row, for plain and streamed completions alike.

pub mod access;
pub mod auto;
pub mod cost;
mod error;
mod failover;
pub mod guardrails;
pub mod health;
pub mod limits;
pub mod log;
pub mod retry;
pub mod router;
mod shared_breakers;
mod stream;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use std::time::{Duration, Instant};
use tracing::Instrument;

pub use access::{Access, Caller};
pub use cost::Pricing;
pub use error::{DeploymentFailure, GatewayError};
pub use log::RequestLog;
pub use stream::CompletionStream;

use crate::cache::{self, CacheStatus, ResponseCache};
use crate::config::{Config, ProviderConfig, RouterConfig, Secret};
use crate::providers::anthropic::AnthropicProvider;
use crate::providers::local::LocalProvider;
use crate::providers::openai::OpenAiProvider;
use crate::providers::types::{
    CacheDirective, ChatChunk, ChatRequest, ChatResponse, Choice, ChunkChoice, Delta,
    EmbeddingRequest, Embeddings, Role, Usage,
};
use crate::providers::{Provider, ProviderError};
use crate::store::{RequestRecord, RequestStatus};
use failover::Settle;
use health::{DeploymentHealth, HealthSnapshot};
use router::Router;

/// At most this many inputs in one embeddings request, as with OpenAI.
const MAX_EMBEDDING_INPUTS: usize = 2048;

/// A named upstream model with its provider, prices and health.
pub struct Deployment {
    pub name: String,
    pub provider_name: String,
    pub upstream_model: String,
    pub pricing: Pricing,
    provider: Arc<dyn Provider>,
    health: Arc<DeploymentHealth>,
    /// The longest a stream from this deployment can run once it started: a remote provider's
    /// whole-request timeout, or `LOCAL_STREAM_LIMIT`. A stream's budget hold lasts this long
    /// past the request's deadline, which only covers opening the stream.
    stream_limit: Duration,
    /// A remote provider (OpenAI, Anthropic): guardrails redact personal data before a request
    /// leaves for it.
    remote: bool,
}

/// Local generations end at their token limit; this bounds how long a streamed one is assumed
/// to run when its budget hold is taken.
const LOCAL_STREAM_LIMIT: Duration = Duration::from_secs(30 * 60);

impl Deployment {
    fn error(&self, source: ProviderError) -> GatewayError {
        GatewayError::Provider {
            deployment: self.name.clone(),
            error: source,
        }
    }

    /// The caller's request as this deployment's upstream receives it: its own model name.
    fn request(&self, request: &ChatRequest) -> ChatRequest {
        ChatRequest {
            model: self.upstream_model.clone(),
            ..request.clone()
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
    pub caller: Caller,
    pub endpoint: &'static str,
    /// `name@version` of the assistant prompt behind the request, recorded on its log row.
    pub prompt_version: Option<String>,
    /// The model was chosen by AskAcme's configuration (the assistant's routes, its embedding
    /// model, `auto`'s classifier), not named by the caller, so the key's model allow-list
    /// does not apply; its limits and budget still do.
    pub configured_model: bool,
    /// The caller's `cache-control` header, if it said `no-store`.
    pub cache: Option<CacheDirective>,
    /// The conversation the request belongs to (`/v1/ask`'s `session_id`), for the log row.
    pub session_id: Option<String>,
    /// The end user the caller says it acts for (`user` in the body), for the log row.
    pub user: Option<String>,
    /// Personal values redacted from the request before it reached the gateway, for its rows.
    pub redactions: u64,
    /// A streamed answer's wait on models before its first event (set by the pipeline as the
    /// event leaves; zero until then and for other requests); shared by child contexts.
    pub model_wait: ModelWait,
    pub started: Instant,
}

/// How long a streamed answer waited on models (its embedding, and its generation) before its
/// first event, readable while the answer runs: the server subtracts it from the time to the
/// response head to report its own overhead.
#[derive(Debug, Clone, Default)]
pub struct ModelWait(Arc<std::sync::atomic::AtomicU64>);

impl ModelWait {
    pub fn get(&self) -> Duration {
        Duration::from_micros(self.0.load(std::sync::atomic::Ordering::Acquire))
    }

    pub fn set(&self, waited: Duration) {
        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.0.store(micros, std::sync::atomic::Ordering::Release);
    }
}

impl RequestContext {
    pub fn new(request_id: impl Into<String>, endpoint: &'static str) -> Self {
        Self {
            request_id: request_id.into(),
            caller: Caller::Open,
            endpoint,
            prompt_version: None,
            configured_model: false,
            cache: None,
            session_id: None,
            user: None,
            redactions: 0,
            model_wait: ModelWait::default(),
            started: Instant::now(),
        }
    }

    pub fn with_caller(self, caller: Caller) -> Self {
        Self { caller, ..self }
    }

    /// A context for a secondary gateway call made while serving this request (the assistant's
    /// query embedding, say): its own log row, id `<parent>.<step>`, same caller and prompt.
    pub fn child(&self, step: &str, endpoint: &'static str) -> Self {
        Self {
            request_id: format!("{}.{step}", self.request_id),
            caller: self.caller.clone(),
            endpoint,
            prompt_version: self.prompt_version.clone(),
            configured_model: true,
            cache: self.cache,
            session_id: self.session_id.clone(),
            user: self.user.clone(),
            redactions: self.redactions,
            model_wait: self.model_wait.clone(),
            started: Instant::now(),
        }
    }

    /// A log row for this request, with who asked and for what.
    pub fn new_row(&self, model: &str, stream: bool) -> RequestRecord {
        RequestRecord {
            key_id: self.caller.key_id(),
            prompt_version: self.prompt_version.clone(),
            session_id: self.session_id.clone(),
            user: self.user.clone(),
            redactions: self.redactions,
            stream,
            ..RequestRecord::new(&self.request_id, self.endpoint, model)
        }
    }
}

pub struct Completion {
    pub response: ChatResponse,
    /// The deployment that answered (`cache` for a cache hit).
    pub deployment: String,
    pub cost_micro_usd: u64,
    /// Time spent waiting on the provider.
    pub provider_time: Duration,
    pub cache: CacheStatus,
    /// `guardrail:output:reason` when a guardrail withheld the reply.
    pub guardrail: Option<String>,
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

/// A deployment's state for `GET /admin/providers`.
#[derive(serde::Serialize)]
pub struct DeploymentStatus {
    pub deployment: String,
    pub provider: String,
    pub model: String,
    #[serde(flatten)]
    pub health: HealthSnapshot,
}

pub struct Gateway {
    deployments: BTreeMap<String, Arc<Deployment>>,
    router: Router,
    policy: RouterConfig,
    local: HashMap<String, Arc<LocalProvider>>,
    access: Arc<Access>,
    /// The `auto` model; `None` when `[auto]` has no examples.
    auto: Option<auto::AutoRouter>,
    cache: Arc<ResponseCache>,
    log: RequestLog,
    /// `None` when no `[guardrails.NAME]` is configured.
    guardrails: Option<guardrails::Guardrails>,
}

impl Gateway {
    pub fn from_config(
        config: &Config,
        log: RequestLog,
        access: Arc<Access>,
        cache: Arc<ResponseCache>,
    ) -> Result<Self, GatewayError> {
        let mut providers: HashMap<String, Arc<dyn Provider>> = HashMap::new();
        let mut local = HashMap::new();
        for (name, provider) in &config.providers {
            let build_err =
                |e: ProviderError| GatewayError::Internal(format!("provider `{name}`: {e}"));
            let secret = |key: &Option<Secret>| {
                key.as_ref()
                    .map(Secret::resolve)
                    .transpose()
                    .map_err(|m| GatewayError::Internal(format!("providers.{name}.api_key: {m}")))
            };
            let built: Arc<dyn Provider> = match provider {
                ProviderConfig::Openai(remote) => Arc::new(
                    OpenAiProvider::new(remote, secret(&remote.api_key)?.as_ref())
                        .map_err(build_err)?,
                ),
                ProviderConfig::Anthropic(remote) => Arc::new(
                    AnthropicProvider::new(remote, secret(&remote.api_key)?.as_ref())
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
                let (stream_limit, remote) = match config.providers.get(&d.provider) {
                    Some(ProviderConfig::Openai(remote) | ProviderConfig::Anthropic(remote)) => {
                        (Duration::from_secs(remote.timeout_secs), true)
                    }
                    Some(ProviderConfig::Local(_)) | None => (LOCAL_STREAM_LIMIT, false),
                };
                Ok((
                    name.clone(),
                    Arc::new(Deployment {
                        name: name.clone(),
                        provider_name: d.provider.clone(),
                        upstream_model: d.model.clone(),
                        pricing: Pricing::from(&d.price),
                        provider,
                        health: Arc::new(DeploymentHealth::new(&config.breaker, &config.router)),
                        stream_limit,
                        remote,
                    }),
                ))
            })
            .collect::<Result<BTreeMap<_, _>, GatewayError>>()?;
        Ok(Self {
            router: Router::new(&config.aliases, deployments.keys().cloned()),
            deployments,
            policy: config.router.clone(),
            local,
            access,
            auto: (!config.auto.examples.is_empty())
                .then(|| auto::AutoRouter::new(config.auto.clone())),
            cache,
            log,
            guardrails: guardrails::Guardrails::from_config(config)
                .map_err(|e| GatewayError::Internal(e.to_string()))?,
        })
    }

    pub fn access(&self) -> &Arc<Access> {
        &self.access
    }

    pub fn cache(&self) -> &Arc<ResponseCache> {
        &self.cache
    }

    /// Every deployment with its breaker and retry-budget state.
    pub fn deployment_status(&self) -> Vec<DeploymentStatus> {
        self.deployments
            .values()
            .map(|d| DeploymentStatus {
                deployment: d.name.clone(),
                provider: d.provider_name.clone(),
                model: d.upstream_model.clone(),
                health: d.health.snapshot(),
            })
            .collect()
    }

    pub fn request_log(&self) -> &RequestLog {
        &self.log
    }

    /// The deployment an alias sends its traffic to first (for warm-up); a deployment
    /// name resolves to itself.
    fn primary(&self, model: &str) -> Result<&Deployment, GatewayError> {
        let plan = self
            .router
            .plan(model, &mut fastrand::Rng::new())
            .ok_or_else(|| GatewayError::UnknownModel(model.to_owned()))?;
        plan.first()
            .and_then(|c| self.deployments.get(&c.deployment))
            .map(|d| &**d)
            .ok_or_else(|| GatewayError::UnknownModel(model.to_owned()))
    }

    pub fn models(&self) -> Vec<ModelInfo> {
        let auto = self.auto.as_ref().map(|_| auto::AUTO);
        let aliases = auto
            .into_iter()
            .chain(self.router.aliases())
            .map(|a| ModelInfo {
                id: a.to_owned(),
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
        let deployment = self.primary(model)?;
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
        let span = operation_span("chat", &request.model, ctx);
        capture_input(&span, &request);
        let mut pending = PendingRow::new(
            self,
            "chat",
            new_row(ctx, &request.model, request.user.as_deref(), false),
            ctx,
            span.clone(),
        );
        let result = self
            .complete_inner(request, ctx, &mut pending)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(completion) => {
                let usage = completion.response.usage.unwrap_or_default();
                fill_usage(&mut pending.row, &usage, completion.cost_micro_usd);
                capture_output(&span, &completion.response.choices);
            }
            Err(e) => fail_row(&mut pending.row, e),
        }
        pending.write();
        result
    }

    async fn complete_inner(
        &self,
        mut request: ChatRequest,
        ctx: &RequestContext,
        pending: &mut PendingRow<'_>,
    ) -> Result<Completion, GatewayError> {
        validate::chat_request(&request)?;
        self.check_allowed(&request.model, ctx)?;
        let guarded = self.guard_input(&request, ctx)?;
        // A guarded reply is checked against the caller's own request (its canary, its
        // messages): one cached for another caller cannot be.
        let cache_key = self.cache_key(&request, ctx).filter(|_| guarded.is_none());
        if let Some(key) = &cache_key
            && let Some((response, saved)) = self.cached_response(key).await
        {
            mark_hit(&mut pending.row, saved);
            return Ok(Completion {
                response,
                deployment: "cache".into(),
                cost_micro_usd: 0,
                provider_time: Duration::ZERO,
                cache: CacheStatus::Exact,
                guardrail: None,
            });
        }
        let admitted = self.admit(&mut request, ctx, false).await?;
        pending.prompt_estimate = admitted.prompt_estimate;
        let row = &mut pending.row;
        row.held_micro_usd = admitted.hold.reserved_micro_usd;
        let started = Instant::now();
        let result = self
            .with_failover(
                &request.model,
                self.deadline(ctx),
                Settle::OnSuccess,
                row,
                |deployment| {
                    let upstream = self.upstream(&deployment, &request, guarded);
                    async move {
                        let response = deployment.provider.chat(&upstream.request).await?;
                        Ok((response, upstream.redaction))
                    }
                },
            )
            .await;
        note_auto(row, admitted.decision.as_ref());
        row.provider_latency_ms = millis(started.elapsed());
        let ((mut response, redaction), deployment) = result?;
        let guardrail = guarded.and_then(|(_, policy)| {
            let verdict = policy.check_output(&request, &redaction, &mut response)?;
            tracing::warn!(
                guardrail = policy.name,
                reason = verdict.reason.as_str(),
                detail = verdict.detail,
                "guardrail withheld a reply"
            );
            Some(policy.label("output", &verdict))
        });
        row.guard.clone_from(&guardrail);
        let usage = response.usage.unwrap_or_default();
        let cost = deployment.pricing.cost_micro_usd(&usage);
        admitted
            .hold
            .book_tokens(usage.prompt_tokens + usage.completion_tokens)
            .await;
        if let Some(key) = cache_key
            && let Ok(body) = serde_json::to_string(&response)
        {
            self.cache.put(key, "chat", body, cost);
        }
        Ok(Completion {
            response,
            deployment: deployment.name.clone(),
            cost_micro_usd: cost,
            provider_time: started.elapsed(),
            cache: if self.cache_applies(&request, ctx) {
                CacheStatus::Miss
            } else {
                CacheStatus::Bypass
            },
            guardrail,
        })
    }

    /// Starts a streamed completion. A stream that fails before its first chunk is retried or
    /// falls back like a plain request, so the caller sees nothing of it; failures after that
    /// are an error item of the stream. The stream logs its row (and books usage) when it ends,
    /// breaks or is dropped.
    pub async fn stream(
        &self,
        mut request: ChatRequest,
        ctx: &RequestContext,
    ) -> Result<CompletionStream, GatewayError> {
        let mut row = new_row(ctx, &request.model, request.user.as_deref(), true);
        let span = operation_span("chat", &request.model, ctx);
        capture_input(&span, &request);
        let include_usage = request
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage);
        let started = Instant::now();
        let opened = async {
            validate::chat_request(&request)?;
            self.check_allowed(&request.model, ctx)?;
            let guarded = self.guard_input(&request, ctx)?;
            let cache_key = self.cache_key(&request, ctx).filter(|_| guarded.is_none());
            if let Some(key) = &cache_key
                && let Some((response, saved)) = self.cached_response(key).await
                && let Some(chunks) = replay(response)
            {
                mark_hit(&mut row, saved);
                return Ok(Opened::Cached(chunks));
            }
            let Admitted {
                hold,
                decision,
                prompt_estimate,
            } = self.admit(&mut request, ctx, true).await?;
            row.held_micro_usd = hold.reserved_micro_usd;
            let result = self
                .with_failover(
                    &request.model,
                    self.deadline(ctx),
                    Settle::ByCaller,
                    &mut row,
                    |deployment| {
                        let upstream = self.upstream(&deployment, &request, guarded);
                        async move {
                            let mut chunks =
                                deployment.provider.chat_stream(&upstream.request).await?;
                            // Wait for the first chunk: a stream that breaks before it can
                            // still go elsewhere without the caller noticing.
                            let first = chunks.next().await.unwrap_or_else(|| {
                                Err(ProviderError::StreamCut(
                                    "stream ended before any data".into(),
                                ))
                            })?;
                            let chunks = futures::stream::once(async { Ok(first) })
                                .chain(chunks)
                                .boxed();
                            Ok((chunks, upstream.redaction))
                        }
                    },
                )
                .await;
            note_auto(&mut row, decision.as_ref());
            let ((mut chunks, redaction), deployment) = result?;
            let mut stopped = None;
            if let Some((_, policy)) = guarded {
                let stop = guardrails::StreamStop::default();
                chunks = policy
                    .clone()
                    .guard_stream(&request, redaction, chunks, stop.clone());
                stopped = Some(stop);
            }
            Ok(Opened::Upstream {
                chunks,
                deployment,
                hold,
                cache_key,
                prompt_estimate,
                stopped,
            })
        }
        .instrument(span.clone())
        .await;
        let tracker = |row, settlement| {
            stream::Tracker::new(
                self.log.clone(),
                row,
                settlement,
                ctx.started,
                started,
                span.clone(),
            )
        };
        match opened {
            Ok(Opened::Cached(chunks)) => Ok(CompletionStream::new(
                chunks,
                tracker(
                    row,
                    stream::Settlement {
                        pricing: Pricing::default(),
                        health: None,
                        hold: access::Hold::none(),
                        store: None,
                        prompt_estimate: 0,
                        stopped: None,
                    },
                ),
                include_usage,
                "cache".into(),
                CacheStatus::Exact,
            )),
            Ok(Opened::Upstream {
                chunks,
                deployment,
                hold,
                cache_key,
                prompt_estimate,
                stopped,
            }) => {
                let status = if cache_key.is_some() {
                    CacheStatus::Miss
                } else {
                    CacheStatus::Bypass
                };
                Ok(CompletionStream::new(
                    chunks,
                    tracker(
                        row,
                        stream::Settlement {
                            pricing: deployment.pricing,
                            health: Some(deployment.health.clone()),
                            hold,
                            store: cache_key.map(|key| (self.cache.clone(), key)),
                            prompt_estimate,
                            stopped,
                        },
                    ),
                    include_usage,
                    deployment.name.clone(),
                    status,
                ))
            }
            Err(e) => {
                fail_row(&mut row, &e);
                row.provider_latency_ms = millis(started.elapsed());
                row.latency_ms = millis(ctx.started.elapsed());
                observe_operation(&row, "chat", &span);
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
        let row = new_row(ctx, &request.model, request.user.as_deref(), false);
        let span = operation_span("embeddings", &request.model, ctx);
        let mut pending = PendingRow::new(self, "embeddings", row, ctx, span.clone());
        let started = Instant::now();
        let result = async {
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
            self.check_allowed(&request.model, ctx)?;
            let estimated = estimate_tokens(inputs.iter());
            let worst = self.worst_cost(&request.model, estimated, 0);
            let hold = self.hold(ctx, Duration::ZERO, estimated, worst).await?;
            pending.row.held_micro_usd = hold.reserved_micro_usd;
            pending.prompt_estimate = estimated;
            let inputs = Arc::new(inputs);
            let result = self
                .with_failover(
                    &request.model,
                    self.deadline(ctx),
                    Settle::OnSuccess,
                    &mut pending.row,
                    |deployment| {
                        let inputs = inputs.clone();
                        async move {
                            deployment
                                .provider
                                .embed(&deployment.upstream_model, &inputs)
                                .await
                        }
                    },
                )
                .await;
            let (embeddings, deployment) = result?;
            let usage = Usage::new(embeddings.prompt_tokens, 0, 0, 0);
            let cost = deployment.pricing.cost_micro_usd(&usage);
            hold.book_tokens(usage.prompt_tokens).await;
            Ok((embeddings, cost, usage))
        }
        .instrument(span.clone())
        .await;
        let provider_time = started.elapsed();
        let row = &mut pending.row;
        row.provider_latency_ms = millis(provider_time);
        let result = match result {
            Ok((embeddings, cost, usage)) => {
                fill_usage(row, &usage, cost);
                Ok(EmbeddingResult {
                    embeddings,
                    provider_time,
                })
            }
            Err(e) => {
                fail_row(row, &e);
                Err(e)
            }
        };
        pending.write();
        result
    }

    /// When the request must be over, retries and fallbacks included. Config validation bounds
    /// `request_timeout_secs`, so the sum cannot overflow; if it did, the request would time out
    /// at once rather than panic.
    fn deadline(&self, ctx: &RequestContext) -> Instant {
        ctx.started
            .checked_add(Duration::from_secs(self.policy.request_timeout_secs))
            .unwrap_or(ctx.started)
    }

    /// The caller's token-limit check and budget hold for one call; the hold expires at the
    /// request's deadline (plus `beyond`, for a stream that may run past it), so a request that
    /// never writes its log row (a crash) cannot keep it.
    async fn hold(
        &self,
        ctx: &RequestContext,
        beyond: Duration,
        estimated_tokens: u64,
        worst_cost_micro_usd: u64,
    ) -> Result<access::Hold, GatewayError> {
        let remaining = self
            .deadline(ctx)
            .saturating_duration_since(Instant::now())
            .saturating_add(beyond);
        let expires_at_ms = crate::store::now_ms()
            .saturating_add(i64::try_from(remaining.as_millis()).unwrap_or(i64::MAX));
        self.access
            .hold(
                &ctx.caller,
                access::HoldRequest {
                    request_id: &ctx.request_id,
                    expires_at_ms,
                    estimated_tokens,
                    worst_cost_micro_usd,
                },
            )
            .await
    }

    /// The guardrail policy that applies to the request, after its input checks passed. The
    /// assistant's own calls (`configured_model`) have the assistant's guards instead: their
    /// prompts carry retrieved passages, which are not the caller's words.
    fn guard_input(
        &self,
        request: &ChatRequest,
        ctx: &RequestContext,
    ) -> Result<Option<(&guardrails::Guardrails, &Arc<guardrails::Policy>)>, GatewayError> {
        let Some(guardrails) = self.guardrails.as_ref().filter(|_| !ctx.configured_model) else {
            return Ok(None);
        };
        let key_name = match &ctx.caller {
            Caller::Key(key) => Some(key.name.as_str()),
            Caller::Open | Caller::Master | Caller::Person(_) => None,
        };
        let Some(policy) = guardrails.policy(&request.model, key_name) else {
            return Ok(None);
        };
        guardrails.check_input(policy, request)?;
        Ok(Some((guardrails, policy)))
    }

    /// The request as `deployment` receives it: its own model name, and the guardrail's canary
    /// and redactions when one applies (kept with the attempt, to restore its reply).
    fn upstream(
        &self,
        deployment: &Deployment,
        request: &ChatRequest,
        guarded: Option<(&guardrails::Guardrails, &Arc<guardrails::Policy>)>,
    ) -> guardrails::Prepared {
        let upstream = deployment.request(request);
        match guarded {
            Some((guardrails, policy)) => guardrails.prepare(policy, &upstream, deployment.remote),
            None => guardrails::Prepared::plain(upstream),
        }
    }

    /// The caller's model allow-list, for the name asked for (before the cache: a key may not
    /// read answers of a model it may not call).
    fn check_allowed(&self, model: &str, ctx: &RequestContext) -> Result<(), GatewayError> {
        if ctx.configured_model {
            return Ok(());
        }
        self.access.check_model(&ctx.caller, model)
    }

    fn cache_applies(&self, request: &ChatRequest, ctx: &RequestContext) -> bool {
        let deterministic = request.temperature == Some(0.0);
        self.cache
            .applies(deterministic, request.cache.or(ctx.cache))
    }

    /// The request's cache key, when the cache applies to it. The key covers the deployments
    /// the model name resolves to, so re-pointing an alias retires its entries.
    fn cache_key(&self, request: &ChatRequest, ctx: &RequestContext) -> Option<String> {
        if !self.cache_applies(request, ctx) {
            return None;
        }
        let mut route: Vec<String> = self
            .planned(&request.model)
            .map(|d| format!("{}={}/{}", d.name, d.provider_name, d.upstream_model))
            .collect();
        route.sort();
        route.insert(0, request.model.clone());
        Some(cache::chat_key(request, &route.join(",")))
    }

    /// A cached response and what it cost to make.
    async fn cached_response(&self, key: &str) -> Option<(ChatResponse, u64)> {
        let hit = self.cache.get(key).await?;
        let response = serde_json::from_str(&hit.body).ok()?;
        Some((response, hit.cost_micro_usd))
    }

    /// Before a chat request is sent: `auto` resolved to a tier, then the token limit and the
    /// budget hold.
    async fn admit(
        &self,
        request: &mut ChatRequest,
        ctx: &RequestContext,
        stream: bool,
    ) -> Result<Admitted, GatewayError> {
        let decision = match (&self.auto, request.model == auto::AUTO) {
            (Some(auto), true) => {
                let decision = auto.decide(self, request, ctx).await?;
                request.model = decision.model.clone();
                Some(decision)
            }
            _ => None,
        };
        let model = &request.model;
        if !self.router.is_alias(model) && !self.deployments.contains_key(model) {
            return Err(GatewayError::UnknownModel(model.clone()));
        }
        let prompt = estimate_tokens(request.messages.iter().map(|m| m.text()));
        let completion = request
            .max_output_tokens()
            .unwrap_or(DEFAULT_WORST_CASE_COMPLETION);
        let worst = self.worst_cost(model, prompt, u64::from(completion));
        let beyond = if stream {
            self.planned(model)
                .map(|d| d.stream_limit)
                .max()
                .unwrap_or_default()
        } else {
            Duration::ZERO
        };
        let hold = self.hold(ctx, beyond, prompt, worst).await?;
        Ok(Admitted {
            hold,
            decision,
            prompt_estimate: prompt,
        })
    }

    /// The most a call could cost on any deployment it might be sent to.
    fn worst_cost(&self, model: &str, prompt_tokens: u64, completion_tokens: u64) -> u64 {
        let usage = Usage::new(prompt_tokens, completion_tokens, 0, 0);
        self.planned(model)
            .map(|d| d.pricing.cost_micro_usd(&usage))
            .max()
            .unwrap_or(0)
    }

    /// Every deployment a request for `model` might reach (its whole plan, fallbacks included).
    fn planned(&self, model: &str) -> impl Iterator<Item = &Deployment> {
        self.router
            .plan(model, &mut fastrand::Rng::with_seed(0))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| self.deployments.get(&c.deployment).map(|d| &**d))
    }

    fn pricing(&self, deployment: &str) -> Option<Pricing> {
        self.deployments.get(deployment).map(|d| d.pricing)
    }
}

/// A gateway request's log row: the body's `user` field when it has one, else the context's.
fn new_row(ctx: &RequestContext, model: &str, user: Option<&str>, stream: bool) -> RequestRecord {
    let mut row = ctx.new_row(model, stream);
    if let Some(user) = user {
        row.user = Some(user.to_owned());
    }
    row
}

/// A chat request let through: what it holds, how `auto` decided, and the prompt's estimated
/// size (billed if the provider never reports usage).
struct Admitted {
    hold: access::Hold,
    decision: Option<auto::AutoDecision>,
    prompt_estimate: u64,
}

/// How a stream was opened.
enum Opened {
    Cached(crate::providers::ChunkStream),
    Upstream {
        chunks: crate::providers::ChunkStream,
        deployment: Arc<Deployment>,
        hold: access::Hold,
        cache_key: Option<String>,
        prompt_estimate: u64,
        stopped: Option<guardrails::StreamStop>,
    },
}

/// A cache hit on the log row: no provider, no cost, the original cost saved.
fn mark_hit(row: &mut RequestRecord, saved_micro_usd: u64) {
    row.cache = Some(CacheStatus::Exact.as_str().to_owned());
    row.saved_micro_usd = saved_micro_usd;
    row.route = Some(format!("{} → response cache", row.requested_model));
}

/// A cached answer as a stream: the text in one chunk, then the finish reason, then usage
/// (dropped unless the caller asked for it). Answers with tool calls or several choices are
/// not replayed (they are served to plain requests only).
fn replay(response: ChatResponse) -> Option<crate::providers::ChunkStream> {
    let [choice] = response.choices.as_slice() else {
        return None;
    };
    if choice.message.tool_calls.is_some() {
        return None;
    }
    let chunk = |choices, usage| ChatChunk {
        id: response.id.clone(),
        object: "chat.completion.chunk".into(),
        created: response.created,
        model: response.model.clone(),
        choices,
        usage,
    };
    let chunks = vec![
        chunk(
            vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    role: Some(Role::Assistant),
                    content: Some(choice.message.text()),
                    tool_calls: None,
                },
                finish_reason: None,
            }],
            None,
        ),
        chunk(
            vec![ChunkChoice {
                index: 0,
                delta: Delta::default(),
                finish_reason: choice.finish_reason,
            }],
            None,
        ),
        chunk(Vec::new(), Some(response.usage.unwrap_or_default())),
    ];
    Some(futures::stream::iter(chunks.into_iter().map(Ok)).boxed())
}

/// Puts the difficulty classifier's decision in front of the routing note.
fn note_auto(row: &mut RequestRecord, decision: Option<&auto::AutoDecision>) {
    if let Some(decision) = decision {
        row.route = Some(match row.route.take() {
            Some(route) => format!("{decision}; {route}"),
            None => decision.to_string(),
        });
    }
}

/// A budget check needs a bound on the answer's length; requests without `max_tokens` are
/// held at this many completion tokens (and booked at what they really used).
const DEFAULT_WORST_CASE_COMPLETION: u32 = 4096;

/// A generous token estimate for limits and budget holds: about 3 characters per token (real
/// tokenizers average ~4 on English), plus a few per message for the chat template.
fn estimate_tokens(texts: impl Iterator<Item = impl AsRef<str>>) -> u64 {
    texts
        .map(|t| t.as_ref().chars().count() as u64 / 3 + 4)
        .sum()
}

/// The log row of a plain (non-streamed) call. A caller that hangs up drops the request's
/// future mid-call; the row is then written on drop, as `cancelled`, so no request that
/// reached the gateway goes unlogged. A cancelled call that reached an upstream is billed its
/// prompt at the gateway's estimate (marked `usage_estimated`): providers charge for it.
struct PendingRow<'a> {
    gateway: &'a Gateway,
    /// `chat` or `embeddings`, for the GenAI metrics.
    operation: &'static str,
    /// The call's span, given its usage and outcome when the row is written.
    span: tracing::Span,
    row: RequestRecord,
    started: Instant,
    prompt_estimate: u64,
    written: bool,
}

impl<'a> PendingRow<'a> {
    fn new(
        gateway: &'a Gateway,
        operation: &'static str,
        row: RequestRecord,
        ctx: &RequestContext,
        span: tracing::Span,
    ) -> Self {
        Self {
            gateway,
            operation,
            span,
            row,
            started: ctx.started,
            prompt_estimate: 0,
            written: false,
        }
    }

    fn write(mut self) {
        self.record(false);
    }

    fn record(&mut self, cancelled: bool) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        let mut row = self.row.clone();
        if cancelled {
            row.status = RequestStatus::Cancelled;
            // nginx's "client closed request": no response was sent.
            row.http_status = 499;
            if row.attempts > 0 && row.prompt_tokens == 0 {
                let usage = Usage::new(self.prompt_estimate, 0, 0, 0);
                let pricing = row
                    .deployment
                    .as_deref()
                    .and_then(|d| self.gateway.pricing(d));
                let cost = pricing.map_or(0, |p| p.cost_micro_usd(&usage));
                fill_usage(&mut row, &usage, cost);
                row.usage_estimated = true;
            }
        }
        row.latency_ms = millis(self.started.elapsed());
        observe_operation(&row, self.operation, &self.span);
        self.gateway.log.record(row);
    }
}

/// With `telemetry.capture_content`, the request's messages on its model-call span, as the
/// gateway received them.
fn capture_input(span: &tracing::Span, request: &ChatRequest) {
    if crate::telemetry::otlp::capture_content() {
        let input = serde_json::to_string(&request.messages);
        span.record("gen_ai.input.messages", input.unwrap_or_default());
    }
}

/// With `telemetry.capture_content`, the reply's choices on its model-call span.
fn capture_output(span: &tracing::Span, choices: &[Choice]) {
    if crate::telemetry::otlp::capture_content() {
        let output = serde_json::to_string(choices);
        span.record("gen_ai.output.messages", output.unwrap_or_default());
    }
}

/// The span of one call to a model, with the GenAI attributes known before it starts; the
/// rest are recorded by `observe_operation`.
fn operation_span(operation: &'static str, model: &str, ctx: &RequestContext) -> tracing::Span {
    use tracing::field::Empty;
    let (prompt, version) = ctx
        .prompt_version
        .as_deref()
        .and_then(|p| p.split_once('@'))
        .unzip();
    tracing::info_span!(
        "gen_ai",
        otel.name = %format_args!("{operation} {model}"),
        otel.kind = "client",
        gen_ai.operation.name = operation,
        gen_ai.request.model = model,
        gen_ai.provider.name = Empty,
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.usage.cache_read.input_tokens = Empty,
        gen_ai.prompt.name = prompt,
        gen_ai.prompt.version = version,
        gen_ai.input.messages = Empty,
        gen_ai.output.messages = Empty,
        error.type = Empty,
        askacme.request_id = ctx.request_id.as_str(),
        askacme.cost_micro_usd = Empty,
        askacme.cache = Empty,
    )
}

/// The GenAI metrics and span attributes of a finished call to a model; a cache hit called
/// none (its span says so). The response model is the deployment that answered (each pins
/// one upstream model).
fn observe_operation(row: &RequestRecord, operation: &'static str, span: &tracing::Span) {
    let error_type = match row.status {
        RequestStatus::Success => None,
        RequestStatus::Cancelled => Some("cancelled".to_owned()),
        RequestStatus::Error if row.http_status > 0 => Some(row.http_status.to_string()),
        RequestStatus::Error => Some("error".to_owned()),
    };
    if let Some(error) = &error_type {
        span.record("error.type", error.as_str());
    }
    if let Some(cache) = &row.cache {
        span.record("askacme.cache", cache.as_str());
    }
    let (Some(deployment), None) = (row.deployment.as_deref(), row.cache.as_deref()) else {
        return;
    };
    span.record(
        "gen_ai.provider.name",
        row.provider.as_deref().unwrap_or_default(),
    );
    span.record("gen_ai.response.model", deployment);
    span.record("gen_ai.usage.input_tokens", row.prompt_tokens);
    span.record("gen_ai.usage.output_tokens", row.completion_tokens);
    span.record("gen_ai.usage.cache_read.input_tokens", row.cached_tokens);
    span.record("askacme.cost_micro_usd", row.cost_micro_usd);
    crate::telemetry::metrics::operation(&crate::telemetry::metrics::Operation {
        name: operation,
        provider: row.provider.as_deref().unwrap_or_default(),
        request_model: &row.requested_model,
        response_model: deployment,
        error_type: error_type.as_deref(),
        // The time spent calling providers (failover included), not the caller's whole
        // request: `/v1/ask`'s answer row times the question from its start.
        seconds: row.provider_latency_ms / 1000.0,
        input_tokens: row.prompt_tokens,
        output_tokens: row.completion_tokens,
        cache_read_tokens: row.cached_tokens,
        cache_write_tokens: row.cache_write_tokens,
        cost_micro_usd: row.cost_micro_usd,
    });
}

impl Drop for PendingRow<'_> {
    fn drop(&mut self) {
        self.record(true);
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
    row.http_status = error.http_status();
    row.error = Some(error.to_string());
    if let GatewayError::ContentFilter {
        guardrail,
        stage,
        verdict,
    } = error
    {
        row.guard = Some(format!("{guardrail}:{stage}:{}", verdict.reason.as_str()));
    }
}
