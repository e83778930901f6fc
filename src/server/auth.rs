//! The door: checks the API key of every `/v1` and `/admin` request, counts it against the key's
//! requests-per-minute limit, hands the caller to the handlers, and puts the `x-ratelimit-*`
//! headers on the answer.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::{ApiError, ratelimit_headers};
use crate::gateway::Caller;
use crate::gateway::limits::{Decision, LimitKind};

/// `Authorization: Bearer <key>` (OpenAI clients) or `x-api-key: <key>` (Anthropic clients).
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim);
    }
    headers.get("x-api-key")?.to_str().ok().map(str::trim)
}

/// The person the SSO proxy signed in, from `auth.user_header`, when it is configured and
/// present.
pub fn trusted_user<'h>(state: &AppState, headers: &'h HeaderMap) -> Option<&'h str> {
    let name = &state.config.auth.user_header;
    if name.is_empty() {
        return None;
    }
    let user = headers.get(name.as_str())?.to_str().ok()?.trim();
    (!user.is_empty() && user.len() <= MAX_USER_CHARS).then_some(user)
}

/// The longest user name a trusted header may carry.
const MAX_USER_CHARS: usize = 256;

/// The web chat's routes, which a person signed in by the SSO proxy may use without a key.
fn chat_route(path: &str) -> bool {
    path == "/v1/ask" || path == "/v1/feedback" || path.starts_with("/v1/sources/")
}

pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let access = state.gateway.access();
    let person = chat_route(request.uri().path())
        .then(|| trusted_user(&state, request.headers()))
        .flatten();
    let caller = match person {
        Some(user) => Caller::Person(user.into()),
        None => match access.authenticate(presented_key(request.headers())).await {
            Ok(caller) => caller,
            Err(e) => return e.into_response(),
        },
    };
    if request.uri().path().starts_with("/admin") && access.enabled() && !caller.is_master() {
        return ApiError::new(
            403,
            "permission_error",
            "admin_only",
            "the admin API needs the master key",
        )
        .into_response();
    }
    let requests = match access.admit_request(&caller).await {
        Ok(decision) => decision,
        Err(e) => return e.into_response(),
    };
    request.extensions_mut().insert(caller.clone());
    let mut response = next.run(request).await;
    let tokens = access.token_status(&caller).await;
    let headers = response.headers_mut();
    for (kind, decision) in [(LimitKind::Requests, requests), (LimitKind::Tokens, tokens)] {
        if let Some(decision) = decision {
            insert_ratelimit_headers(headers, kind, &decision);
        }
    }
    response
}

/// For `/metrics` when `server.metrics_auth` asks for it: the master key or nothing.
pub async fn master_only(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let access = state.gateway.access();
    match access.authenticate(presented_key(request.headers())).await {
        Ok(caller) if caller.is_master() || !access.enabled() => next.run(request).await,
        Ok(_) => ApiError::new(
            403,
            "permission_error",
            "admin_only",
            "this endpoint needs the master key",
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

fn insert_ratelimit_headers(headers: &mut HeaderMap, kind: LimitKind, decision: &Decision) {
    for (name, value) in ratelimit_headers(kind, decision) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}
