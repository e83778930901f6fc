//! Operators' endpoints: deployment health (`GET /admin/providers`) and Prometheus metrics.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::AppState;

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
