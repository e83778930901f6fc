//! The gateway's error type. It says what went wrong in the gateway's own terms; the one mapping
//! to an HTTP error body lives in `server::error`. `http_status` is here because the request log
//! records the status a request ended with, whoever served it.

use std::time::Duration;

use super::limits::{Decision, LimitKind};
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
    /// Every deployment the plan allowed failed. Each failure is kept, in the order they
    /// happened; the last one decides the status.
    #[error("the calls for `{model}` failed: {}", describe(failures))]
    AllDeploymentsFailed {
        model: String,
        failures: Vec<DeploymentFailure>,
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
    /// A guardrail refused the request (`stage` `input`): the reason names the check.
    #[error("guardrail `{guardrail}` blocked the request: {}", verdict.detail)]
    ContentFilter {
        guardrail: String,
        stage: String,
        verdict: crate::safety::Verdict,
    },
}

/// One failed upstream call of a request.
#[derive(Debug, Clone)]
pub struct DeploymentFailure {
    pub deployment: String,
    pub error: ProviderError,
}

fn describe(failures: &[DeploymentFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("`{}`: {}", f.deployment, f.error))
        .collect::<Vec<_>>()
        .join("; ")
}

impl GatewayError {
    pub fn invalid(message: impl Into<String>, param: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// The provider error that decides how the request failed: the only one, or the last of
    /// several.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            GatewayError::Provider { error, .. } => Some(error),
            GatewayError::AllDeploymentsFailed { failures, .. } => {
                failures.last().map(|f| &f.error)
            }
            _ => None,
        }
    }

    /// The HTTP status this error answers with (and the request log records).
    pub fn http_status(&self) -> u16 {
        match self {
            GatewayError::InvalidRequest { .. } | GatewayError::ContentFilter { .. } => 400,
            GatewayError::UnknownModel(_) => 404,
            GatewayError::Unauthorized(_) => 401,
            GatewayError::Forbidden(_) => 403,
            GatewayError::RateLimited { .. } | GatewayError::BudgetExceeded(_) => 429,
            GatewayError::NoHealthyDeployment { .. } | GatewayError::Unavailable(_) => 503,
            GatewayError::Internal(_) => 500,
            GatewayError::Provider { .. } | GatewayError::AllDeploymentsFailed { .. } => {
                self.provider_error().map_or(502, provider_status)
            }
        }
    }
}

/// The status a provider failure answers with: the caller's fault is a 4xx, upstream trouble a
/// 5xx (429 passes through so clients back off).
fn provider_status(error: &ProviderError) -> u16 {
    match error {
        ProviderError::Connect(_) | ProviderError::ModelUnavailable(_) => 503,
        ProviderError::Timeout(_) => 504,
        ProviderError::Upstream { status, .. } => match status {
            429 => 429,
            // The upstream judged the request itself bad (too long, bad parameter).
            400 | 413 | 422 => 400,
            408 => 504,
            _ => 502,
        },
        ProviderError::Malformed(_) | ProviderError::StreamCut(_) => 502,
        ProviderError::Unsupported(_) | ProviderError::InvalidRequest(_) => 400,
        ProviderError::Inference(_) => 500,
    }
}
