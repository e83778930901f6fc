//! The HTTP face (axum only here): router, shared state, request ids and overhead timing, and
//! the one rendering of errors as OpenAI-style JSON bodies.

mod openai;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, GatewayError};
use crate::gateway::Gateway;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const OVERHEAD_MS: HeaderName = HeaderName::from_static("x-askacme-overhead-ms");

#[derive(Clone)]
pub struct AppState {
    pub gateway: Arc<Gateway>,
    /// Set once start-up work (model warm-up) has finished.
    pub ready: Arc<AtomicBool>,
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/models", get(openai::list_models))
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

/// The id of the current request, chosen by the middleware (or taken from the caller's
/// `x-request-id` when it is a sane token).
#[derive(Clone)]
pub struct RequestId(pub String);

/// Set by handlers on their response: the time spent waiting on providers, which
/// `x-askacme-overhead-ms` subtracts from the total.
#[derive(Clone, Copy)]
pub struct ProviderTime(pub Duration);

async fn request_id_and_overhead(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("req_{}", uuid::Uuid::now_v7().simple()));
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    let provider = response
        .extensions()
        .get::<ProviderTime>()
        .map_or(Duration::ZERO, |p| p.0);
    let overhead = started.elapsed().saturating_sub(provider);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("{:.3}", overhead.as_secs_f64() * 1000.0)) {
        headers.insert(OVERHEAD_MS, value);
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.to_json())).into_response();
        if let Some(retry_after) = self.retry_after {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        ApiError::from(&self).into_response()
    }
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

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

impl AppState {
    /// Opens the database, starts the request-log writer and builds the gateway. Not yet ready:
    /// `warm_up` (or the caller) sets `ready`.
    pub async fn from_config(config: &crate::config::Config) -> Result<Self, StartError> {
        let db = crate::store::Database::open(&config.storage.database_url).await?;
        let log = crate::gateway::RequestLog::start(db);
        let gateway = Gateway::from_config(config, log)?;
        Ok(Self {
            gateway: Arc::new(gateway),
            ready: Arc::new(AtomicBool::new(false)),
        })
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
    let app = router(state, max_body_bytes);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    log.flush().await;
    Ok(())
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
