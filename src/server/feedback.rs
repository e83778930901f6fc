//! `POST /v1/feedback`: `{request_id, rating: "up"|"down", comment?, escalated?}`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

use super::{AppState, JsonBody};
use crate::eval::feedback;
use crate::gateway::Caller;
use crate::store::{Feedback, now_ms};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    request_id: String,
    rating: Rating,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    escalated: bool,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Rating {
    Up,
    Down,
}

pub async fn feedback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(request): JsonBody<FeedbackRequest>,
) -> Response {
    let rating = Feedback {
        request_id: request.request_id,
        created_at_ms: now_ms(),
        helpful: matches!(request.rating, Rating::Up),
        comment: request.comment.filter(|c| !c.trim().is_empty()),
        escalated: request.escalated,
        rater: match &caller {
            Caller::Open => None,
            Caller::Master => Some("master".into()),
            Caller::Key(key) => Some(key.name.clone()),
            Caller::Person(name) => Some(name.to_string()),
        },
    };
    let request_id = rating.request_id.clone();
    match feedback::record(state.gateway.request_log(), &caller, rating).await {
        Ok(recorded) => Json(serde_json::json!({
            "request_id": request_id,
            "recorded": true,
            "flagged_semantic_match": recorded.flagged_semantic_match,
        }))
        .into_response(),
        Err(e) => super::error::ApiError::from(&e).into_response(),
    }
}
