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

/// Prometheus text format: breaker state and upstream-call counters per deployment.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let deployments = state.gateway.deployment_status();
    let mut out = String::new();
    let mut family =
        |name: &str,
         kind: &str,
         help: &str,
         value: &dyn Fn(&crate::gateway::DeploymentStatus) -> String| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for d in &deployments {
                out.push_str(&format!(
                    "{name}{{deployment=\"{}\",provider=\"{}\"}} {}\n",
                    escape(&d.deployment),
                    escape(&d.provider),
                    value(d)
                ));
            }
        };
    family(
        "askacme_breaker_state",
        "gauge",
        "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
        &|d| d.health.state.gauge().to_string(),
    );
    family(
        "askacme_upstream_successes_total",
        "counter",
        "Upstream calls that succeeded (or failed through the caller's fault).",
        &|d| d.health.total_successes.to_string(),
    );
    family(
        "askacme_upstream_failures_total",
        "counter",
        "Upstream calls that failed: connect errors, timeouts, 429, 5xx, broken responses.",
        &|d| d.health.total_failures.to_string(),
    );
    family(
        "askacme_retries_total",
        "counter",
        "Retries granted by the retry budget.",
        &|d| d.health.total_retries.to_string(),
    );
    family(
        "askacme_retries_refused_total",
        "counter",
        "Retries the retry budget refused.",
        &|d| d.health.total_retries_refused.to_string(),
    );
    family(
        "askacme_breaker_rejections_total",
        "counter",
        "Calls skipped because the breaker was open.",
        &|d| d.health.total_skipped_open.to_string(),
    );
    let guards = state.gateway.request_log().guards();
    out.push_str(
        "# HELP askacme_guard_verdicts_total Requests or replies a guard refused, by policy \
         (`assistant` or the guardrail's name), stage and reason.\n\
         # TYPE askacme_guard_verdicts_total counter\n",
    );
    for (label, count) in guards.verdicts() {
        let mut parts = label.splitn(3, ':');
        let (policy, stage, reason) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        out.push_str(&format!(
            "askacme_guard_verdicts_total{{policy=\"{}\",stage=\"{}\",reason=\"{}\"}} {count}\n",
            escape(policy),
            escape(stage),
            escape(reason)
        ));
    }
    out.push_str(&format!(
        "# HELP askacme_pii_redactions_total Personal values redacted from questions before they were stored or sent.\n\
         # TYPE askacme_pii_redactions_total counter\naskacme_pii_redactions_total {}\n",
        guards.redactions()
    ));
    let db = state.gateway.request_log().database();
    match crate::eval::schedule::drift(db, &state.config).await {
        Ok(canaries) if !canaries.is_empty() => {
            type Gauge = fn(&crate::eval::schedule::Drift) -> f64;
            let gauges: [(&str, &str, Gauge); 2] = [
                (
                    "askacme_eval_pass_rate",
                    "Latest scheduled run's share of cases passed, by suite and model.",
                    |c| c.latest,
                ),
                (
                    "askacme_eval_drift",
                    "1 when the latest scheduled run's pass rate fell more than the drift margin below the first run's.",
                    |c| f64::from(u8::from(c.drifted)),
                ),
            ];
            for (name, help, value) in gauges {
                out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
                for c in &canaries {
                    out.push_str(&format!(
                        "{name}{{suite=\"{}\",model=\"{}\"}} {}\n",
                        escape(&c.suite),
                        escape(c.model.as_deref().unwrap_or("routes")),
                        value(c)
                    ));
                }
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the drift canaries"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// A label value as the Prometheus text format wants it: backslash, double quote and line feed
/// escaped.
fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("a\"b"), "a\\\"b");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
        assert_eq!(escape("two\nlines"), "two\\nlines");
    }
}
