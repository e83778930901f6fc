//! `POST /v1/ask`: the assistant's HTTP face.

use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::{AppState, JsonBody, ProviderTime, RequestId, cache_directive, with_cache_header};
use crate::gateway::{Caller, RequestContext};
use crate::pipeline::AskRequest;

pub async fn ask(
    State(state): State<AppState>,
    Extension(RequestId(id)): Extension<RequestId>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<AskRequest>,
) -> Response {
    let mut ctx = RequestContext::new(id, "/v1/ask").with_caller(caller);
    ctx.cache = cache_directive(&headers);
    let assistant = match state.assistant().await {
        Ok(assistant) => assistant,
        Err(e) => return e.into_response(),
    };
    match assistant.handle(request, &ctx).await {
        Ok(answer) => {
            let waited = answer.stage_latency_ms.embed + answer.stage_latency_ms.generate;
            let cache = answer.cache;
            let mut response = Json(answer).into_response();
            response
                .extensions_mut()
                .insert(ProviderTime(Duration::from_secs_f64(waited / 1000.0)));
            with_cache_header(response, cache)
        }
        Err(e) => e.into_response(),
    }
}
