//! OpenAI-compatible routes: chat completions (plain and SSE), embeddings, models.

use std::convert::Infallible;
use std::time::Instant;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};

use super::error::{ApiError, GUARDRAIL_HEADER};
use super::{
    AppState, JsonBody, ModelLabel, ProviderTime, RequestId, cache_directive, with_cache_header,
};
use crate::gateway::GatewayError;
use crate::gateway::{Caller, CompletionStream, RequestContext};
use crate::providers::types::{ChatRequest, EmbeddingRequest};

pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(RequestId(id)): Extension<RequestId>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<ChatRequest>,
) -> Response {
    let mut ctx = RequestContext::new(id, "/v1/chat/completions").with_caller(caller);
    ctx.cache = cache_directive(&headers);
    let model = ModelLabel::new(request.model.clone());
    let mut response = chat(&state, request, &ctx).await;
    response.extensions_mut().insert(model);
    response
}

async fn chat(state: &AppState, request: ChatRequest, ctx: &RequestContext) -> Response {
    if request.is_stream() {
        let opening = Instant::now();
        return match state.gateway.stream(request, ctx).await {
            Ok(stream) => {
                let cache = stream.cache_status();
                let mut response = Sse::new(sse_events(stream)).into_response();
                response
                    .extensions_mut()
                    .insert(ProviderTime(opening.elapsed()));
                with_cache_header(response, cache)
            }
            Err(e) => e.into_response(),
        };
    }
    match state.gateway.complete(request, ctx).await {
        Ok(completion) => {
            let mut response = Json(completion.response).into_response();
            response
                .extensions_mut()
                .insert(ProviderTime(completion.provider_time));
            if let Some(label) = completion
                .guardrail
                .and_then(|l| axum::http::HeaderValue::from_str(&l).ok())
            {
                response.headers_mut().insert(GUARDRAIL_HEADER, label);
            }
            with_cache_header(response, completion.cache)
        }
        Err(e) => e.into_response(),
    }
}

/// Chunks as `data:` events, then `data: [DONE]`. A stream that breaks ends with an `error`
/// event and no `[DONE]`, so no client mistakes a cut answer for a complete one.
fn sse_events(stream: CompletionStream) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(Some(stream), |stream| async move {
        let mut stream = stream?;
        let event = match stream.next().await {
            Some(Ok(chunk)) => match serde_json::to_string(&chunk) {
                Ok(data) => Event::default().data(data),
                Err(e) => error_event(&GatewayError::Internal(format!("cannot encode chunk: {e}"))),
            },
            Some(Err(e)) => return Some((Ok(error_event(&e)), None)),
            None => return Some((Ok(Event::default().data("[DONE]")), None)),
        };
        Some((Ok(event), Some(stream)))
    })
}

fn error_event(error: &GatewayError) -> Event {
    Event::default()
        .event("error")
        .data(ApiError::from(error).to_json().to_string())
}

pub async fn embeddings(
    State(state): State<AppState>,
    Extension(RequestId(id)): Extension<RequestId>,
    Extension(caller): Extension<Caller>,
    JsonBody(request): JsonBody<EmbeddingRequest>,
) -> Result<Response, ApiError> {
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError {
                param: Some("encoding_format".into()),
                ..ApiError::invalid_request(format!(
                    "`encoding_format` must be float or base64, got `{other}`"
                ))
            });
        }
    };
    let dimensions = request.dimensions;
    let model = request.model.clone();
    let ctx = RequestContext::new(id, "/v1/embeddings").with_caller(caller);
    let result = state
        .gateway
        .embed(request, &ctx)
        .await
        .map_err(|e| ApiError::from(&e))?;
    let vectors = &result.embeddings.vectors;
    if let Some(wanted) = dimensions
        && vectors.first().is_some_and(|v| v.len() != wanted as usize)
    {
        return Err(ApiError {
            param: Some("dimensions".into()),
            ..ApiError::invalid_request(format!(
                "model `{model}` produces {} dimensions and cannot shorten them to {wanted}",
                vectors[0].len()
            ))
        });
    }
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens = result.embeddings.prompt_tokens;
    let mut response = Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response();
    let extensions = response.extensions_mut();
    extensions.insert(ProviderTime(result.provider_time));
    extensions.insert(ModelLabel::new(model));
    Ok(response)
}

pub async fn list_models(State(state): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = state
        .gateway
        .models()
        .into_iter()
        .map(|m| json!({"id": m.id, "object": "model", "created": 0, "owned_by": m.owned_by}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}
