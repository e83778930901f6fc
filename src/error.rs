//! The gateway's error type and its one mapping to an OpenAI-style error (status, type, code).
//! The server renders `ApiError` as `{"error":{"message","type","code","param"}}`.

use std::time::Duration;

use crate::gateway::limits::{Decision, LimitKind};
use crate::providers::ProviderError;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The caller's request is malformed or asks for something impossible.
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
    },
    #[error(
        "the model `{0}` does not exist; GET /v1/models lists the models and aliases available"
    )]
    UnknownModel(String),
    #[error("deployment `{deployment}`: {error}")]
    Provider {
        deployment: String,
        error: ProviderError,
    },
    /// Every deployment of the model has an open circuit breaker.
    #[error("no deployment of `{model}` is available: all circuit breakers are open")]
    NoHealthyDeployment { model: String, retry_in: Duration },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// A per-key requests- or tokens-per-minute limit; the decision fills `x-ratelimit-*`.
    #[error("{message}")]
    RateLimited {
        message: String,
        kind: LimitKind,
        decision: Decision,
    },
    #[error("budget exceeded: {0}")]
    BudgetExceeded(String),
    /// A store the gateway needs (the shared rate-limit store, say) cannot be reached.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    pub fn invalid(message: impl Into<String>, param: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
        }
    }
}

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
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", "invalid_request", message)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {"message": self.message, "type": self.kind, "code": self.code, "param": self.param}
        })
    }
}

impl From<&crate::pipeline::AskError> for ApiError {
    fn from(error: &crate::pipeline::AskError) -> Self {
        use crate::kb::search::SearchError;
        use crate::pipeline::AskError;
        match error {
            AskError::Gateway(e) | AskError::Search(SearchError::Embed(e)) => e.into(),
            AskError::Search(_) | AskError::Prompt(_) => {
                ApiError::new(500, "api_error", "internal_error", error.to_string())
            }
        }
    }
}

impl From<&GatewayError> for ApiError {
    fn from(error: &GatewayError) -> Self {
        let message = error.to_string();
        match error {
            GatewayError::InvalidRequest { param, .. } => ApiError {
                param: param.clone(),
                ..ApiError::invalid_request(message)
            },
            GatewayError::UnknownModel(_) => {
                ApiError::new(404, "invalid_request_error", "model_not_found", message)
            }
            GatewayError::Internal(_) => ApiError::new(500, "api_error", "internal_error", message),
            GatewayError::NoHealthyDeployment { retry_in, .. } => ApiError {
                retry_after: Some(*retry_in),
                ..ApiError::new(503, "api_error", "no_healthy_deployment", message)
            },
            GatewayError::Unauthorized(_) => {
                ApiError::new(401, "authentication_error", "invalid_api_key", message)
            }
            GatewayError::Forbidden(_) => {
                ApiError::new(403, "permission_error", "model_not_allowed", message)
            }
            GatewayError::RateLimited { kind, decision, .. } => ApiError {
                retry_after: Some(decision.retry_after),
                headers: ratelimit_headers(*kind, decision).to_vec(),
                ..ApiError::new(429, "rate_limit_error", "rate_limit_exceeded", message)
            },
            // OpenAI answers an exhausted quota with 429 `insufficient_quota`; clients know it.
            // No Retry-After: waiting does not help.
            GatewayError::BudgetExceeded(_) => {
                ApiError::new(429, "insufficient_quota", "budget_exceeded", message)
            }
            GatewayError::Unavailable(_) => {
                ApiError::new(503, "api_error", "service_unavailable", message)
            }
            GatewayError::Provider { error, .. } => match error {
                ProviderError::Connect(_) => {
                    ApiError::new(503, "api_error", "upstream_unavailable", message)
                }
                ProviderError::Timeout(_) => {
                    ApiError::new(504, "api_error", "upstream_timeout", message)
                }
                ProviderError::Upstream {
                    status,
                    retry_after,
                    ..
                } => match status {
                    429 => ApiError {
                        retry_after: *retry_after,
                        ..ApiError::new(429, "rate_limit_error", "upstream_rate_limited", message)
                    },
                    // The upstream judged the request itself bad (too long, bad parameter): the caller's to fix.
                    400 | 413 | 422 => ApiError::new(
                        400,
                        "invalid_request_error",
                        "upstream_rejected_request",
                        message,
                    ),
                    401 | 403 => ApiError::new(502, "api_error", "upstream_auth_failed", message),
                    408 => ApiError::new(504, "api_error", "upstream_timeout", message),
                    _ => ApiError::new(502, "api_error", "upstream_error", message),
                },
                ProviderError::Malformed(_) | ProviderError::StreamCut(_) => {
                    ApiError::new(502, "api_error", "upstream_bad_response", message)
                }
                ProviderError::Unsupported(_) | ProviderError::InvalidRequest(_) => {
                    ApiError::new(400, "invalid_request_error", "unsupported_request", message)
                }
                ProviderError::ModelUnavailable(_) => {
                    ApiError::new(503, "api_error", "model_unavailable", message)
                }
                ProviderError::Inference(_) => {
                    ApiError::new(500, "api_error", "inference_failed", message)
                }
            },
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(status: u16) -> GatewayError {
        GatewayError::Provider {
            deployment: "d".into(),
            error: ProviderError::Upstream {
                status,
                message: "m".into(),
                retry_after: Some(Duration::from_secs(3)),
            },
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
            assert_eq!(
                ApiError::from(&upstream(upstream_status)).status,
                expected,
                "upstream {upstream_status}"
            );
        }
        assert_eq!(
            ApiError::from(&upstream(429)).retry_after,
            Some(Duration::from_secs(3))
        );
    }
}
