//! Operators' endpoints: deployment health (`GET /admin/providers`), production figures
//! (`GET /admin/stats`, and the dashboard's `GET /admin/dashboard`) and Prometheus metrics.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// `7d`, `24h`, … (default 7d).
    since: Option<String>,
    /// `day`, `prompt_version`, `model`, `category`, `key` (default: one group).
    by: Option<String>,
}

/// `GET /admin/stats`: the figures `askacme stats --json` prints.
pub async fn stats(State(state): State<AppState>, Query(query): Query<StatsQuery>) -> Response {
    let window = crate::config::parse_duration_ms(query.since.as_deref().unwrap_or("7d"));
    let by = crate::eval::stats::parse_grouping(query.by.as_deref().unwrap_or("all"));
    let (window, by) = match (window, by) {
        (Ok(window), Ok(by)) => (window, by),
        (Err(message), _) | (_, Err(message)) => {
            return ApiError::new(400, "invalid_request_error", "invalid_query", message)
                .into_response();
        }
    };
    let db = state.gateway.request_log().database();
    match crate::eval::stats::report(db, crate::eval::stats::since(window), by).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => ApiError::from(&e).into_response(),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardQuery {
    /// `7d`, `24h`, … (default 7d).
    since: Option<String>,
}

/// `GET /admin/dashboard`: what `askacme stats --dashboard` prints, with the deployments'
/// health as this server sees it.
pub async fn dashboard(
    State(state): State<AppState>,
    Query(query): Query<DashboardQuery>,
) -> Response {
    let window = match crate::config::parse_duration_ms(query.since.as_deref().unwrap_or("7d")) {
        Ok(window) => window,
        Err(message) => {
            return ApiError::new(400, "invalid_request_error", "invalid_query", message)
                .into_response();
        }
    };
    let db = state.gateway.request_log().database();
    let since = crate::eval::stats::since(window);
    match crate::eval::stats::dashboard(db, since).await {
        Ok(dashboard) => {
            let mut body = json!(dashboard);
            body["deployments"] = json!(state.gateway.deployment_status());
            Json(body).into_response()
        }
        Err(e) => ApiError::from(&e).into_response(),
    }
}

pub async fn providers(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"object": "list", "data": state.gateway.deployment_status()}))
}

/// The Prometheus exposition of every series (docs/observability.md); the deployments'
/// health and the drift canaries are read as of this scrape.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    use crate::telemetry::metrics;
    for d in state.gateway.deployment_status() {
        let h = &d.health;
        metrics::deployment(&metrics::DeploymentFigures {
            deployment: &d.deployment,
            provider: &d.provider,
            state: h.state.gauge(),
            successes: h.total_successes,
            failures: h.total_failures,
            retries: h.total_retries,
            retries_refused: h.total_retries_refused,
            rejections: h.total_skipped_open,
            transitions: (h.total_closed, h.total_half_opened, h.total_opened),
        });
    }
    let db = state.gateway.request_log().database();
    match crate::eval::schedule::drift(db, &state.config).await {
        Ok(canaries) => {
            for c in canaries {
                let model = c.model.as_deref().unwrap_or("routes");
                metrics::eval_canary(&c.suite, model, c.latest, c.drifted);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the drift canaries"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics::render(),
    )
}
