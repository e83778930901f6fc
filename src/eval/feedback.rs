//! Production signals: people's ratings of answers (`POST /v1/feedback`). A thumbs-down on an
//! answer the semantic cache served from another question flags that match, so bad matches
//! surface in `askacme cache hits --semantic --flagged` and in the false-hit estimate of
//! `askacme stats`.

use crate::gateway::Caller;
use crate::gateway::log::RequestLog;
use crate::store::{Feedback, StoreError, now_ms};

/// Longest comment kept.
pub const MAX_COMMENT_CHARS: usize = 4000;

#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error("no request with id `{0}`")]
    UnknownRequest(String),
    #[error("the comment is longer than {MAX_COMMENT_CHARS} characters")]
    CommentTooLong,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What recording a rating did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The rated answer was a semantic match, now flagged as a probable wrong answer.
    pub flagged_semantic_match: bool,
}

/// Stores a rating of the answer to `feedback.request_id`, which must be a request this
/// gateway logged for `caller`: a key rates only its own requests (another key's request is
/// "unknown", so ids cannot be probed); the master key and an open gateway rate any.
pub async fn record(
    log: &RequestLog,
    caller: &Caller,
    feedback: Feedback,
) -> Result<Recorded, FeedbackError> {
    if feedback
        .comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS)
    {
        return Err(FeedbackError::CommentTooLong);
    }
    // The answer's row may still be queued: rating it right away must still find it.
    log.flush().await;
    let db = log.database();
    let owned = match (db.request(&feedback.request_id).await?, caller) {
        (None, _) => false,
        (Some(_), Caller::Open | Caller::Master) => true,
        (Some(request), Caller::Key(_) | Caller::Person(_)) => {
            request.key_id.is_some() && request.key_id == caller.key_id()
        }
    };
    if !owned {
        return Err(FeedbackError::UnknownRequest(feedback.request_id));
    }
    db.record_feedback(&feedback).await?;
    crate::telemetry::metrics::feedback(if feedback.helpful { "up" } else { "down" });
    let flagged_semantic_match = !feedback.helpful
        && db
            .flag_semantic_hit(&feedback.request_id, "thumbs down", now_ms())
            .await?;
    Ok(Recorded {
        flagged_semantic_match,
    })
}
