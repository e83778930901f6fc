//! The HTTP face (axum only here): router, shared state, request ids and overhead timing, and
//! the one rendering of errors as OpenAI-style JSON bodies.

mod admin;
mod ask;
mod auth;
mod error;
mod feedback;
mod openai;
mod ui;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::cache::{self, CacheDirective, CacheStatus, ResponseCache};
use crate::config::{Config, Secret};
use crate::eval::schedule::Scheduler;
use crate::gateway::GatewayError;
use crate::gateway::limits::{LimitStore, MemoryLimits, RedisLimits};
use crate::gateway::{Access, Gateway};
use crate::pipeline::{AskError, Assistant};
use crate::prompts::{PromptError, Registry};
use crate::tasks::supervise;
use error::ApiError;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const OVERHEAD_MS: HeaderName = HeaderName::from_static("x-askacme-overhead-ms");
pub const CACHE: HeaderName = HeaderName::from_static("x-askacme-cache");

/// `cache-control: no-store` from the caller keeps the request out of the response cache.
pub fn cache_directive(headers: &HeaderMap) -> Option<CacheDirective> {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("no-store"))
        .then_some(CacheDirective::NoStore)
}

/// Sets `x-askacme-cache: exact | miss | bypass`.
pub fn with_cache_header(mut response: Response, cache: CacheStatus) -> Response {
    response
        .headers_mut()
        .insert(CACHE, HeaderValue::from_static(cache.as_str()));
    response
}

#[derive(Clone)]
pub struct AppState {
    pub gateway: Arc<Gateway>,
    config: Arc<Config>,
    /// Loaded and checked at start-up, so a broken prompt file stops the server from starting.
    prompts: Arc<Registry>,
    /// Built on first use (or at warm-up): it needs the embedding model, which may not be
    /// fetched yet; until it can be built, `/v1/ask` answers 503 saying why.
    assistant: Arc<tokio::sync::OnceCell<Arc<Assistant>>>,
    /// Set once start-up work (model warm-up) has finished.
    pub ready: Arc<AtomicBool>,
    /// `[[eval.schedule]]`, its suites loaded at start-up.
    scheduler: Arc<Scheduler>,
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let keyed = Router::new()
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/models", get(openai::list_models))
        .route("/v1/ask", post(ask::ask))
        .route("/v1/sources/{id}", get(ask::source))
        .route("/v1/feedback", post(feedback::feedback))
        .route("/admin/providers", get(admin::providers))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    let admin = Router::new()
        .route("/admin/stats", get(admin::stats))
        .route("/admin/dashboard", get(admin::dashboard))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::master_only,
        ));
    let mut metrics = Router::new().route("/metrics", get(admin::metrics));
    if state
        .config
        .server
        .metrics_need_master(state.config.auth.enabled)
    {
        metrics = metrics.route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::master_only,
        ));
    }
    Router::new()
        .merge(keyed)
        .merge(admin)
        .merge(metrics)
        .route("/", get(ui::chat))
        .route("/admin", get(ui::dashboard))
        .route("/assets/{name}", get(ui::asset))
        .route("/ui/config", get(ui::config))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .fallback(|| async {
            ApiError::new(404, "invalid_request_error", "not_found", "no such route")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                405,
                "invalid_request_error",
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn(request_id_and_overhead))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> Response {
    if !state.ready.load(Ordering::Acquire) {
        return ApiError::new(503, "api_error", "not_ready", "models are still loading")
            .into_response();
    }
    match state.gateway.request_log().database().ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            ApiError::new(503, "api_error", "not_ready", format!("database: {e}")).into_response()
        }
    }
}

/// The id of the current request, generated by the middleware. Never taken from the caller: it
/// is the request log's primary key, so a repeated id must not be possible.
#[derive(Clone)]
pub struct RequestId(pub String);

/// Set by handlers on their response: the time spent waiting on providers, which
/// `x-askacme-overhead-ms` subtracts from the total.
#[derive(Clone, Copy)]
pub struct ProviderTime(pub Duration);

/// Set by handlers on their response: the model it was for, a label of the request metrics.
/// A streamed answer learns its model while the body is sent: it sets the label then, and the
/// request is measured when its stream ends.
#[derive(Clone, Default)]
pub struct ModelLabel(Arc<std::sync::OnceLock<String>>);

impl ModelLabel {
    pub fn new(model: String) -> Self {
        let label = Self::default();
        label.set(model);
        label
    }

    /// The first model set wins.
    pub fn set(&self, model: String) {
        let _ = self.0.set(model);
    }

    fn get(&self) -> &str {
        self.0.get().map_or("", String::as_str)
    }
}

/// Runs its function when dropped: the end of a streamed body, however it ends.
struct OnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// Gives every request its id, its span (the root of its trace, joining the caller's W3C
/// `traceparent`), and its metrics: duration by route, model and status, and our overhead.
async fn request_id_and_overhead(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = crate::gateway::new_request_id();
    request.extensions_mut().insert(RequestId(id.clone()));
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let traceparent = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = method.as_str(),
        http.route = route.as_str(),
        http.response.status_code = tracing::field::Empty,
        askacme.request_id = id.as_str(),
        traceparent = traceparent.as_deref(),
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    let provider = response
        .extensions()
        .get::<ProviderTime>()
        .map_or(Duration::ZERO, |p| p.0);
    let overhead = started.elapsed().saturating_sub(provider);
    let model = response
        .extensions()
        .get::<ModelLabel>()
        .cloned()
        .unwrap_or_default();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("{:.3}", overhead.as_secs_f64() * 1000.0)) {
        headers.insert(OVERHEAD_MS, value);
    }
    let measure = move || {
        crate::telemetry::metrics::http_request(
            &route,
            model.get(),
            status,
            started.elapsed().as_secs_f64(),
            overhead.as_secs_f64(),
        );
    };
    let streamed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !streamed {
        measure();
        return response;
    }
    // Measured when the stream ends, before its end reaches the client, or when the client
    // leaves (the guard is dropped with the body).
    let at_end = OnDrop(Some(measure));
    let end = futures::stream::once(async move { drop(at_end) })
        .filter_map(|()| async { None::<Result<Bytes, axum::Error>> });
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        axum::body::Body::from_stream(body.into_data_stream().chain(end)),
    )
}

/// A JSON body whose every failure is an OpenAI-style 4xx: unreadable or oversized bodies, bad
/// UTF-8, syntax errors and wrong types (with the path of the offending field). Any content type
/// is accepted, so `curl -d` works without `-H 'content-type: application/json'`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        413,
                        "invalid_request_error",
                        "body_too_large",
                        "request body is too large",
                    )
                } else {
                    ApiError::new(
                        status.as_u16(),
                        "invalid_request_error",
                        "unreadable_body",
                        rejection.body_text(),
                    )
                }
            })?;
        if bytes.is_empty() {
            return Err(ApiError::invalid_request(
                "the request body is empty; send a JSON object",
            ));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                ApiError::invalid_request(format!("invalid JSON body: {inner}"))
            } else {
                let message = format!("invalid JSON body at `{path}`: {inner}");
                ApiError {
                    param: Some(path),
                    ..ApiError::invalid_request(message)
                }
            }
        })?;
        deserializer
            .end()
            .map_err(|e| ApiError::invalid_request(format!("invalid JSON body: {e}")))?;
        Ok(JsonBody(value))
    }
}

async fn connect_redis(url: &Secret) -> Result<redis::aio::ConnectionManager, StartError> {
    let unreachable =
        |e: redis::RedisError| StartError::Redis(format!("{}: {e}", url.redacted_url()));
    let client = redis::Client::open(url.expose()).map_err(unreachable)?;
    redis::aio::ConnectionManager::new(client)
        .await
        .map_err(unreachable)
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error("storage.redis_url: {0}")]
    Limits(#[from] crate::gateway::limits::LimitError),
    #[error("auth.master_key: {0}")]
    MasterKey(String),
    #[error("storage.redis_url: cannot connect to {0}")]
    Redis(String),
    #[error(transparent)]
    Schedule(#[from] crate::eval::schedule::ScheduleError),
}

impl AppState {
    /// Opens the database, starts the request-log writer and builds the gateway. Not yet ready:
    /// `warm_up` (or the caller) sets `ready`.
    pub async fn from_config(config: &crate::config::Config) -> Result<Self, StartError> {
        // Before anything is recorded: until a recorder is installed, metrics go nowhere.
        crate::telemetry::metrics::install();
        let db = crate::store::Database::open(&config.storage.database_url).await?;
        let limits: Arc<dyn LimitStore> = if config.storage.redis_url.is_empty() {
            Arc::new(MemoryLimits::default())
        } else {
            Arc::new(RedisLimits::connect(&config.storage.redis_url).await?)
        };
        let master_key = config
            .auth
            .master_key
            .as_ref()
            .map(Secret::resolve)
            .transpose()
            .map_err(StartError::MasterKey)?;
        let access = Access::new(
            config.auth.enabled,
            master_key.as_ref().map(Secret::expose),
            Duration::from_millis(config.auth.key_cache_ms),
            db.clone(),
            limits,
        );
        let store = match &config.storage.redis_url {
            url if url.is_empty() => cache::Store::Database(db.clone()),
            url => cache::Store::Redis(connect_redis(url).await?),
        };
        let cache = Arc::new(ResponseCache::new(config.cache.clone(), store));
        let spill = config
            .storage
            .data_dir
            .as_ref()
            .map(|dir| dir.join("request-log.spill.jsonl"));
        let log = crate::gateway::RequestLog::start(db, spill);
        let access = Arc::new(access);
        // Expired holds (a process that died mid-request leaves them) are released before this
        // one takes new ones.
        access.release_expired_holds().await;
        let sweeper = access.clone();
        supervise("budget hold sweeper", move || {
            sweeper.clone().sweep_expired_holds()
        });
        let gateway = Arc::new(Gateway::from_config(config, log, access, cache)?);
        if !config.storage.redis_url.is_empty() {
            let sharing = gateway.clone();
            let url = config.storage.redis_url.clone();
            supervise("breaker sharing", move || {
                sharing.clone().share_breakers(url.clone())
            });
        }
        let prompts = Registry::load(&config.prompts)?;
        prompts.apply(&gateway.request_log().database().activations(None).await?);
        prompts.active(&config.assistant.prompt)?;
        let scheduler = Arc::new(Scheduler::from_config(config)?);
        Ok(Self {
            gateway,
            scheduler,
            prompts: Arc::new(prompts),
            config: Arc::new(config.clone()),
            assistant: Arc::new(tokio::sync::OnceCell::new()),
            ready: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The prompt registry, with the recorded activations applied.
    pub fn prompts(&self) -> &Arc<Registry> {
        &self.prompts
    }

    /// The assistant, built by the first caller that needs it.
    pub async fn assistant(&self) -> Result<Arc<Assistant>, AskError> {
        self.assistant
            .get_or_try_init(|| async {
                let db = self.gateway.request_log().database().clone();
                Assistant::new(&self.config, self.gateway.clone(), db, self.prompts.clone())
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned()
    }

    /// Loads the given models, then marks the server ready. A model that cannot load (not yet
    /// fetched, say) is reported and skipped: its requests get a 503 that says what to do.
    pub async fn warm_up(&self, models: &[String]) {
        for model in models {
            let started = Instant::now();
            match self.gateway.warm_up(model).await {
                Ok(()) => tracing::info!(
                    model,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "model ready"
                ),
                Err(e) => tracing::warn!(model, error = %e, "model not loaded"),
            }
        }
        // The assistant needs the embedding model; build it now only if that was warmed up.
        if models.contains(&self.config.kb.embedding_model)
            && let Err(e) = self.assistant().await
        {
            tracing::warn!(error = %e, "assistant not ready; /v1/ask retries on first use");
        }
        self.ready.store(true, Ordering::Release);
    }
}

/// Serves until ctrl-c / SIGTERM, then finishes in-flight requests and flushes the request log.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    max_body_bytes: usize,
) -> std::io::Result<()> {
    let log = state.gateway.request_log().clone();
    let cache = state.gateway.cache().clone();
    let (db, prompts) = (log.database().clone(), state.prompts.clone());
    let follower = supervise("prompt activations", move || {
        follow_activations(db.clone(), prompts.clone())
    });
    let scheduled = (!state.scheduler.is_empty()).then(|| {
        let state = state.clone();
        supervise("scheduled suites", move || run_schedules(state.clone()))
    });
    let retention = state.config.assistant.conversation_retention_days;
    let forgetting = (retention > 0).then(|| {
        let db = log.database().clone();
        supervise("answer retention", move || {
            forget_old_answers(db.clone(), retention)
        })
    });
    let app = router(state, max_body_bytes);
    axum::serve(without_nagle(listener), app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    follower.abort();
    for task in [scheduled, forgetting].into_iter().flatten() {
        task.abort();
    }
    log.flush().await;
    cache.flush().await;
    Ok(())
}

/// Runs the scheduled suites that are due, every `eval.schedule_poll_secs`, in process and
/// without the caches.
async fn run_schedules(state: AppState) {
    let poll = Duration::from_secs(state.config.eval.schedule_poll_secs);
    let db = state.gateway.request_log().database().clone();
    loop {
        tokio::time::sleep(poll).await;
        let assistant = match state.assistant().await {
            Ok(assistant) => assistant,
            Err(e) => {
                tracing::warn!(error = %e, "scheduled suites wait for the assistant");
                continue;
            }
        };
        let backend = crate::eval::backend::InProcess {
            assistant,
            gateway: state.gateway.clone(),
            embedding_model: state.config.kb.embedding_model.clone(),
            no_cache: true,
        };
        let judge = crate::eval::judge::Judge::from_config(&backend, &state.config);
        if let Err(e) = state.scheduler.run_due(&db, &backend, &judge).await {
            tracing::warn!(error = %e, "scheduled suites");
        }
    }
}

/// How often answers past `assistant.conversation_retention_days` are deleted.
const RETENTION_SWEEP: Duration = Duration::from_secs(3600);

/// Deletes the answers (and so the conversations) older than the retention, at start and
/// then hourly.
async fn forget_old_answers(db: crate::store::Database, days: u64) {
    loop {
        let before = crate::store::now_ms() - (days * 86_400_000) as i64;
        match db.forget_answers_before(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(answers = n, days, "answers past their retention deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot delete answers past their retention"),
        }
        tokio::time::sleep(RETENTION_SWEEP).await;
    }
}

/// How often a server looks for a prompt activation recorded by another process
/// (`askacme prompts activate|rollback`).
const ACTIVATION_POLL: Duration = Duration::from_secs(2);

/// Applies new prompt activations to the live registry as they are recorded.
async fn follow_activations(db: crate::store::Database, prompts: Arc<Registry>) {
    // Not the id at start: one recorded between loading the registry and this first poll
    // would be missed. Applying the same activations twice is harmless.
    let mut seen = -1;
    loop {
        tokio::time::sleep(ACTIVATION_POLL).await;
        let latest = match db.last_activation_id().await {
            Ok(latest) if latest != seen => latest,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read prompt activations");
                continue;
            }
        };
        match db.activations(None).await {
            Ok(activations) => {
                prompts.apply(&activations);
                seen = latest;
                tracing::info!("prompt activation applied");
            }
            Err(e) => tracing::warn!(error = %e, "cannot read prompt activations"),
        }
    }
}

/// Accepted connections with `TCP_NODELAY`: SSE writes are small, and with Nagle's algorithm
/// each waits for the client's delayed ACK (~40 ms before a stream's first token).
fn without_nagle(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener;

    use super::*;

    #[tokio::test]
    async fn accepted_connections_do_not_wait_for_nagle() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut listener = without_nagle(listener);
        let _client = tokio::net::TcpStream::connect(address).await.unwrap();
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().unwrap());
    }
}
