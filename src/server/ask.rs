//! `POST /v1/ask` (whole, or streamed as server-sent events) and `GET /v1/sources/{id}`: the
//! assistant's HTTP face.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::Instrument;

use super::error::ApiError;
use super::{
    AppState, JsonBody, ModelLabel, ProviderTime, RequestId, cache_directive, with_cache_header,
};
use crate::gateway::{Caller, RequestContext};
use crate::pipeline::{AskError, AskEvent, AskRequest, AskResponse, Assistant};

pub async fn ask(
    State(state): State<AppState>,
    Extension(RequestId(id)): Extension<RequestId>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(mut request): JsonBody<AskRequest>,
) -> Response {
    let mut ctx = RequestContext::new(id, "/v1/ask").with_caller(caller.clone());
    ctx.cache = cache_directive(&headers);
    if request.user.is_none() {
        request.user = caller.user().map(str::to_owned);
    }
    let assistant = match state.assistant().await {
        Ok(assistant) => assistant,
        Err(e) => return e.into_response(),
    };
    if request.stream {
        return streamed(assistant, request, ctx).await;
    }
    match assistant.handle(request, &ctx).await {
        Ok(answer) => {
            let waited = answer.stage_latency_ms.embed + answer.stage_latency_ms.generate;
            let cache = answer.cache;
            let model = ModelLabel::new(answer.model.clone().unwrap_or_default());
            let mut response = Json(answer).into_response();
            let extensions = response.extensions_mut();
            extensions.insert(ProviderTime(Duration::from_secs_f64(waited / 1000.0)));
            extensions.insert(model);
            with_cache_header(response, cache)
        }
        Err(e) => e.into_response(),
    }
}

type Work = Pin<Box<dyn Future<Output = Result<AskResponse, AskError>> + Send>>;

/// The answer as server-sent events: `delta` (`{"text"}`), `sources` (`{"sources"}`), then
/// `done` (the `AskResponse`) or `error` (the error body). The work runs inside the response
/// body, so a client that hangs up drops it, model stream included. Until the first event the
/// answer is held back: a question refused before any text (a bad collection, too long) gets
/// its plain 4xx, not a stream.
async fn streamed(assistant: Arc<Assistant>, request: AskRequest, ctx: RequestContext) -> Response {
    let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
    let started = ctx.started;
    let model_wait = ctx.model_wait.clone();
    // The body is polled after the handler returned, outside the request's span: the work
    // carries the span with it, so its stages stay in the request's trace.
    let work: Work = Box::pin(
        async move { assistant.handle_streamed(request, &ctx, events).await }
            .instrument(tracing::Span::current()),
    );
    let mut state = Some((work, receiver));
    let first = next_events(&mut state).await;
    if state.is_none()
        && let [Outcome::Failed(error)] = first.as_slice()
    {
        return ApiError::from(error).into_response();
    }
    let rest = futures::stream::unfold(state, |mut state| async move {
        state.as_ref()?;
        let events = next_events(&mut state).await;
        Some((events, state))
    });
    let mut timed = false;
    let model = ModelLabel::default();
    let answered = model.clone();
    let events = futures::stream::iter([first])
        .chain(rest)
        .inspect(move |batch| {
            for outcome in batch {
                match outcome {
                    Outcome::Event(AskEvent::Delta(_)) if !timed => {
                        timed = true;
                        crate::telemetry::metrics::first_delta(started.elapsed().as_secs_f64());
                    }
                    Outcome::Done(answer) => {
                        answered.set(answer.model.clone().unwrap_or_default());
                    }
                    _ => {}
                }
            }
        })
        .flat_map(|batch| futures::stream::iter(batch.into_iter().map(Outcome::event)));
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    // The head goes out with the first event: what the answer waited on models until then
    // is not the server's overhead.
    let extensions = response.extensions_mut();
    extensions.insert(ProviderTime(model_wait.get()));
    extensions.insert(model);
    response
}

/// One item of a streamed answer.
enum Outcome {
    Event(AskEvent),
    Done(Box<AskResponse>),
    Failed(AskError),
}

impl Outcome {
    /// The event, its data serialised straight from the types (as the unstreamed answer is),
    /// so a streamed answer's figures read exactly as the unstreamed one's.
    fn event(self) -> Result<Event, Infallible> {
        #[derive(serde::Serialize)]
        struct Delta<'a> {
            text: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Sources<'a> {
            sources: &'a [crate::pipeline::Source],
        }
        let (name, data) = match &self {
            Outcome::Event(AskEvent::Delta(text)) => {
                ("delta", serde_json::to_string(&Delta { text }))
            }
            Outcome::Event(AskEvent::Sources(sources)) => {
                ("sources", serde_json::to_string(&Sources { sources }))
            }
            Outcome::Done(answer) => ("done", serde_json::to_string(answer)),
            Outcome::Failed(error) => ("error", Ok(ApiError::from(error).to_json().to_string())),
        };
        let (name, data) = match data {
            Ok(data) => (name, data),
            Err(e) => (
                "error",
                ApiError::new(500, "api_error", "internal", format!("cannot encode: {e}"))
                    .to_json()
                    .to_string(),
            ),
        };
        Ok(Event::default().event(name).data(data))
    }
}

/// The next event, or, when the work finished, every event it left and its end; `state`
/// becomes `None` after the end.
async fn next_events(state: &mut Option<(Work, UnboundedReceiver<AskEvent>)>) -> Vec<Outcome> {
    let Some((work, receiver)) = state.as_mut() else {
        return Vec::new();
    };
    tokio::select! {
        biased;
        Some(event) = receiver.recv() => vec![Outcome::Event(event)],
        result = work => {
            let mut out: Vec<Outcome> = std::iter::from_fn(|| receiver.try_recv().ok())
                .map(Outcome::Event)
                .collect();
            out.push(match result {
                Ok(answer) => Outcome::Done(Box::new(answer)),
                Err(error) => Outcome::Failed(error),
            });
            *state = None;
            out
        }
    }
}

/// `GET /v1/sources/{id}`: a cited chunk in its document, for the chat's source view.
pub async fn source(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return ApiError::new(
            400,
            "invalid_request_error",
            "invalid_source_id",
            format!("`{id}` is not a source id (a number from an answer's sources)"),
        )
        .into_response();
    };
    let db = state.gateway.request_log().database();
    match crate::kb::view::source_view(db, id).await {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => ApiError::new(
            404,
            "invalid_request_error",
            "source_not_found",
            format!("no source {id} (the knowledge base may have been re-ingested since)"),
        )
        .into_response(),
        Err(e) => ApiError::from(&e).into_response(),
    }
}
