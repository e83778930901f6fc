//! The one mapping of every layer's error to an OpenAI-style error response:
//! `{"error":{"message","type","code","param"}}` with its status, `Retry-After` and
//! `x-ratelimit-*` headers. No module below `server` knows these types.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::eval::feedback::FeedbackError;
use crate::gateway::GatewayError;
use crate::gateway::limits::{Decision, LimitKind};
use crate::kb::search::SearchError;
use crate::pipeline::AskError;
use crate::providers::ProviderError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub retry_after: Option<Duration>,
    /// Extra response headers (`x-ratelimit-*`).
    pub headers: Vec<(&'static str, String)>,
    /// Each failed upstream call, when every deployment failed: `{deployment, error}`.
    pub attempts: Vec<serde_json::Value>,
}

impl ApiError {
    pub fn new(
        status: u16,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            code,
            message: message.into(),
            param: None,
            retry_after: None,
            headers: Vec::new(),
            attempts: Vec::new(),
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", "invalid_request", message)
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut error = serde_json::json!({
            "message": self.message, "type": self.kind, "code": self.code, "param": self.param
        });
        if !self.attempts.is_empty() {
            error["attempts"] = serde_json::Value::Array(self.attempts.clone());
        }
        serde_json::json!({ "error": error })
    }
}

impl From<&AskError> for ApiError {
    fn from(error: &AskError) -> Self {
        match error {
            AskError::Gateway(e) | AskError::Search(SearchError::Embed(e)) => e.into(),
            AskError::Search(_) | AskError::Prompt(_) | AskError::Safety(_) => {
                ApiError::new(500, "api_error", "internal_error", error.to_string())
            }
        }
    }
}

impl From<&FeedbackError> for ApiError {
    fn from(error: &FeedbackError) -> Self {
        match error {
            FeedbackError::UnknownRequest(_) => ApiError::new(
                404,
                "invalid_request_error",
                "unknown_request",
                error.to_string(),
            ),
            FeedbackError::CommentTooLong => ApiError {
                param: Some("comment".into()),
                ..ApiError::invalid_request(error.to_string())
            },
            FeedbackError::Store(e) => e.into(),
        }
    }
}

/// The database failed: the server's fault, never the caller's.
impl From<&crate::store::StoreError> for ApiError {
    fn from(error: &crate::store::StoreError) -> Self {
        ApiError::new(500, "api_error", "internal_error", error.to_string())
    }
}

/// Names the guardrail, stage and reason that blocked a request or withheld a reply.
pub const GUARDRAIL_HEADER: &str = "x-askacme-guardrail";

impl From<&GatewayError> for ApiError {
    fn from(error: &GatewayError) -> Self {
        let status = error.http_status();
        let message = error.to_string();
        let (kind, code) = match error {
            GatewayError::InvalidRequest { .. } => ("invalid_request_error", "invalid_request"),
            GatewayError::ContentFilter { .. } => ("invalid_request_error", "content_filter"),
            GatewayError::UnknownModel(_) => ("invalid_request_error", "model_not_found"),
            GatewayError::Internal(_) => ("api_error", "internal_error"),
            GatewayError::NoHealthyDeployment { .. } => ("api_error", "no_healthy_deployment"),
            GatewayError::Unauthorized(_) => ("authentication_error", "invalid_api_key"),
            GatewayError::Forbidden(_) => ("permission_error", "model_not_allowed"),
            GatewayError::RateLimited { .. } => ("rate_limit_error", "rate_limit_exceeded"),
            // OpenAI answers an exhausted quota with 429 `insufficient_quota`; clients know it.
            GatewayError::BudgetExceeded(_) => ("insufficient_quota", "budget_exceeded"),
            GatewayError::Unavailable(_) => ("api_error", "service_unavailable"),
            GatewayError::Provider { .. } | GatewayError::AllDeploymentsFailed { .. } => error
                .provider_error()
                .map_or(("api_error", "upstream_error"), provider_kind_and_code),
        };
        let mut api = ApiError::new(status, kind, code, message);
        match error {
            GatewayError::InvalidRequest { param, .. } => api.param.clone_from(param),
            GatewayError::ContentFilter {
                guardrail,
                stage,
                verdict,
            } => {
                api.headers = vec![(
                    GUARDRAIL_HEADER,
                    format!("{guardrail}:{stage}:{}", verdict.reason.as_str()),
                )];
            }
            GatewayError::NoHealthyDeployment { retry_in, .. } => api.retry_after = Some(*retry_in),
            GatewayError::RateLimited { kind, decision, .. } => {
                api.retry_after = Some(decision.retry_after);
                api.headers = ratelimit_headers(*kind, decision).to_vec();
            }
            GatewayError::AllDeploymentsFailed { failures, .. } => {
                api.attempts = failures
                    .iter()
                    .map(|f| serde_json::json!({"deployment": f.deployment, "error": f.error.to_string()}))
                    .collect();
            }
            _ => {}
        }
        // An upstream's own 429 carries its Retry-After through; budgets get none: waiting
        // does not help.
        if let Some(ProviderError::Upstream {
            status: 429,
            retry_after,
            ..
        }) = error.provider_error()
        {
            api.retry_after = *retry_after;
        }
        api
    }
}

fn provider_kind_and_code(error: &ProviderError) -> (&'static str, &'static str) {
    match error {
        ProviderError::Connect(_) => ("api_error", "upstream_unavailable"),
        ProviderError::Timeout(_) => ("api_error", "upstream_timeout"),
        ProviderError::Upstream { status, .. } => match status {
            429 => ("rate_limit_error", "upstream_rate_limited"),
            400 | 413 | 422 => ("invalid_request_error", "upstream_rejected_request"),
            401 | 403 => ("api_error", "upstream_auth_failed"),
            408 => ("api_error", "upstream_timeout"),
            _ => ("api_error", "upstream_error"),
        },
        ProviderError::Malformed(_) | ProviderError::StreamCut(_) => {
            ("api_error", "upstream_bad_response")
        }
        ProviderError::Unsupported(_) | ProviderError::InvalidRequest(_) => {
            ("invalid_request_error", "unsupported_request")
        }
        ProviderError::ModelUnavailable(_) => ("api_error", "model_unavailable"),
        ProviderError::Inference(_) => ("api_error", "inference_failed"),
    }
}

/// `x-ratelimit-limit-<kind>`, `-remaining-<kind>` and `-reset-<kind>` (seconds until the
/// allowance is whole again, as OpenAI sends them: `6s`, `0.5s`).
pub fn ratelimit_headers(kind: LimitKind, decision: &Decision) -> [(&'static str, String); 3] {
    let (limit, remaining, reset) = match kind {
        LimitKind::Requests => (
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
        ),
        LimitKind::Tokens => (
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-tokens",
        ),
    };
    [
        (limit, decision.limit.to_string()),
        (remaining, decision.remaining.to_string()),
        (reset, format!("{:.3}s", decision.reset.as_secs_f64())),
    ]
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.to_json())).into_response();
        if let Some(retry_after) = self.retry_after {
            let seconds = retry_after
                .as_secs()
                .saturating_add(u64::from(retry_after.subsec_nanos() > 0));
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
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

impl IntoResponse for AskError {
    fn into_response(self) -> Response {
        ApiError::from(&self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::DeploymentFailure;

    fn upstream(status: u16) -> ProviderError {
        ProviderError::Upstream {
            status,
            message: "m".into(),
            retry_after: Some(Duration::from_secs(3)),
        }
    }

    fn one(status: u16) -> GatewayError {
        GatewayError::Provider {
            deployment: "d".into(),
            error: upstream(status),
        }
    }

    #[test]
    fn upstream_statuses_map_to_gateway_statuses() {
        for (upstream_status, expected) in [
            (429, 429),
            (400, 400),
            (401, 502),
            (404, 502),
            (500, 502),
            (503, 502),
            (408, 504),
        ] {
            let error = one(upstream_status);
            assert_eq!(
                ApiError::from(&error).status,
                expected,
                "upstream {upstream_status}"
            );
            assert_eq!(
                error.http_status(),
                expected,
                "log row status {upstream_status}"
            );
        }
        assert_eq!(
            ApiError::from(&one(429)).retry_after,
            Some(Duration::from_secs(3))
        );
        assert_eq!(ApiError::from(&one(503)).retry_after, None);
    }

    #[test]
    fn every_failed_deployment_is_in_the_body_and_the_last_decides_the_status() {
        let error = GatewayError::AllDeploymentsFailed {
            model: "chat".into(),
            failures: vec![
                DeploymentFailure {
                    deployment: "a".into(),
                    error: upstream(500),
                },
                DeploymentFailure {
                    deployment: "b".into(),
                    error: ProviderError::Timeout(Duration::from_secs(1)),
                },
            ],
        };
        let api = ApiError::from(&error);
        assert_eq!((api.status, api.code), (504, "upstream_timeout"));
        let body = api.to_json();
        let attempts = body["error"]["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0]["deployment"], "a");
        assert!(attempts[0]["error"].as_str().unwrap().contains("HTTP 500"));
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("`a`") && message.contains("`b`"),
            "{message}"
        );
    }
}
