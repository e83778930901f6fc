//! Every metric series, named once here and recorded through these functions, so that the
//! exposition, its help texts and docs/observability.md cannot drift apart. The recorder is
//! `metrics-exporter-prometheus` without its HTTP listener: `/metrics` renders it.
//!
//! OpenTelemetry GenAI names are translated to Prometheus style (dots become underscores, the
//! unit is a suffix): `gen_ai.client.operation.duration` is
//! `gen_ai_client_operation_duration_seconds`, `gen_ai.client.token.usage` is
//! `gen_ai_client_token_usage` with `gen_ai_token_type`, `gen_ai.server.time_to_first_token`
//! is `gen_ai_server_time_to_first_token_seconds`.

use std::sync::OnceLock;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const OPERATION_DURATION: &str = "gen_ai_client_operation_duration_seconds";
pub const TOKEN_USAGE: &str = "gen_ai_client_token_usage";
pub const TIME_TO_FIRST_TOKEN: &str = "gen_ai_server_time_to_first_token_seconds";
pub const HTTP_DURATION: &str = "askacme_http_request_duration_seconds";
pub const GATEWAY_OVERHEAD: &str = "askacme_gateway_overhead_seconds";
pub const STAGE_DURATION: &str = "askacme_stage_duration_seconds";
pub const FIRST_DELTA: &str = "askacme_ask_time_to_first_delta_seconds";
pub const TOKENS: &str = "askacme_tokens_total";
pub const COST: &str = "askacme_cost_micro_usd_total";
pub const CACHE_HITS: &str = "askacme_cache_hits_total";
pub const CACHE_SAVED: &str = "askacme_cache_saved_micro_usd_total";
pub const ANSWERS: &str = "askacme_answers_total";
pub const FEEDBACK: &str = "askacme_feedback_total";
pub const FALLBACKS: &str = "askacme_fallbacks_total";
pub const GUARD_VERDICTS: &str = "askacme_guard_verdicts_total";
pub const PII_REDACTIONS: &str = "askacme_pii_redactions_total";
pub const BREAKER_STATE: &str = "askacme_breaker_state";
pub const BREAKER_TRANSITIONS: &str = "askacme_breaker_transitions_total";
pub const UPSTREAM_SUCCESSES: &str = "askacme_upstream_successes_total";
pub const UPSTREAM_FAILURES: &str = "askacme_upstream_failures_total";
pub const RETRIES: &str = "askacme_retries_total";
pub const RETRIES_REFUSED: &str = "askacme_retries_refused_total";
pub const BREAKER_REJECTIONS: &str = "askacme_breaker_rejections_total";
pub const EVAL_PASS_RATE: &str = "askacme_eval_pass_rate";
pub const EVAL_DRIFT: &str = "askacme_eval_drift";

/// The OpenTelemetry GenAI advisory buckets for `gen_ai.client.operation.duration` (seconds).
const DURATION_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// The advisory buckets for `gen_ai.client.token.usage`.
const TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];
/// The advisory buckets for `gen_ai.server.time_to_first_token` (seconds).
const FIRST_TOKEN_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Our own overhead and the pipeline's cheap stages are milliseconds.
const FAST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder (once; later calls are free). `None` when another recorder
/// was installed first, in which case `/metrics` says so instead of showing nothing.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = [
                (OPERATION_DURATION, DURATION_BUCKETS),
                (HTTP_DURATION, DURATION_BUCKETS),
                (FIRST_DELTA, DURATION_BUCKETS),
                (TOKEN_USAGE, TOKEN_BUCKETS),
                (TIME_TO_FIRST_TOKEN, FIRST_TOKEN_BUCKETS),
                (GATEWAY_OVERHEAD, FAST_BUCKETS),
                (STAGE_DURATION, FAST_BUCKETS),
            ]
            .into_iter()
            .try_fold(PrometheusBuilder::new(), |builder, (name, buckets)| {
                builder.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
            });
            let handle = builder
                .map_err(|e| e.to_string())
                .and_then(|b| b.install_recorder().map_err(|e| e.to_string()));
            match handle {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The Prometheus text exposition of everything recorded.
pub fn render() -> String {
    match install() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => "# another metrics recorder was installed first\n".to_owned(),
    }
}

fn describe() {
    use Unit::{Count, Seconds};
    let histograms: [(&'static str, Unit, &'static str); 7] = [
        (
            OPERATION_DURATION,
            Seconds,
            "GenAI operation duration (a gateway call to a model: chat or embeddings), by operation, provider, requested and response model, and error type when it failed.",
        ),
        (
            TOKEN_USAGE,
            Count,
            "Tokens per GenAI operation, by token type (input, output).",
        ),
        (
            TIME_TO_FIRST_TOKEN,
            Seconds,
            "Time from the gateway starting a streamed call (admission and failover included) to the provider's first content chunk.",
        ),
        (
            HTTP_DURATION,
            Seconds,
            "HTTP request duration, by route, model and status code.",
        ),
        (
            GATEWAY_OVERHEAD,
            Seconds,
            "Time a request spent in AskAcme itself, not waiting on a provider, by route.",
        ),
        (
            STAGE_DURATION,
            Seconds,
            "Time per assistant pipeline stage (input_guard, embed, conversation, classify, retrieve, route, generate, output_guard, grounding, citations).",
        ),
        (
            FIRST_DELTA,
            Seconds,
            "Time from a streamed /v1/ask request to its first released text.",
        ),
    ];
    for (name, unit, help) in histograms {
        describe_histogram!(name, unit, help);
    }
    let counters: [(&'static str, &'static str); 15] = [
        (
            TOKENS,
            "Tokens billed, by model and type (input, output, cache_read, cache_write).",
        ),
        (COST, "Spend in micro-dollars, by model."),
        (
            CACHE_HITS,
            "Response-cache hits, by kind (exact, semantic).",
        ),
        (
            CACHE_SAVED,
            "Spend the response cache saved, in micro-dollars, by kind.",
        ),
        (
            ANSWERS,
            "Assistant answers, by status (success, no_answer, filtered, output_filtered).",
        ),
        (FEEDBACK, "Feedback on answers, by rating (up, down)."),
        (
            FALLBACKS,
            "Requests answered by another deployment than the first one planned, by model and the deployment that answered.",
        ),
        (
            GUARD_VERDICTS,
            "Requests or replies a guard refused, by policy (`assistant` or the guardrail's name), stage and reason.",
        ),
        (
            PII_REDACTIONS,
            "Personal values redacted from questions before they were stored or sent.",
        ),
        (
            BREAKER_TRANSITIONS,
            "Circuit-breaker state changes, by deployment and the state entered.",
        ),
        (
            UPSTREAM_SUCCESSES,
            "Upstream calls that succeeded (or failed through the caller's fault).",
        ),
        (
            UPSTREAM_FAILURES,
            "Upstream calls that failed: connect errors, timeouts, 429, 5xx, broken responses.",
        ),
        (RETRIES, "Retries granted by the retry budget."),
        (RETRIES_REFUSED, "Retries the retry budget refused."),
        (
            BREAKER_REJECTIONS,
            "Calls skipped because the breaker was open.",
        ),
    ];
    for (name, help) in counters {
        describe_counter!(name, help);
    }
    describe_gauge!(
        BREAKER_STATE,
        "Circuit breaker state: 0 closed, 1 half-open, 2 open."
    );
    describe_gauge!(
        EVAL_PASS_RATE,
        "Latest scheduled run's share of cases passed, by suite and model."
    );
    describe_gauge!(
        EVAL_DRIFT,
        "1 when the latest scheduled run's pass rate fell more than the drift margin below the first run's."
    );
}

/// One finished gateway call to a model.
pub struct Operation<'a> {
    /// `chat` or `embeddings`.
    pub name: &'static str,
    pub provider: &'a str,
    pub request_model: &'a str,
    pub response_model: &'a str,
    /// `None` when it succeeded.
    pub error_type: Option<&'a str>,
    pub seconds: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub cost_micro_usd: u64,
}

pub fn operation(op: &Operation) {
    let labels = [
        ("gen_ai_operation_name", op.name.to_owned()),
        ("gen_ai_provider_name", op.provider.to_owned()),
        ("gen_ai_request_model", op.request_model.to_owned()),
        ("gen_ai_response_model", op.response_model.to_owned()),
    ];
    match op.error_type {
        Some(error) => {
            let mut with_error = labels.to_vec();
            with_error.push(("error_type", error.to_owned()));
            histogram!(OPERATION_DURATION, &with_error).record(op.seconds);
        }
        None => histogram!(OPERATION_DURATION, &labels).record(op.seconds),
    }
    for (kind, tokens) in [("input", op.input_tokens), ("output", op.output_tokens)] {
        if tokens > 0 {
            let mut with_type = labels.to_vec();
            with_type.push(("gen_ai_token_type", kind.to_owned()));
            histogram!(TOKEN_USAGE, &with_type).record(tokens as f64);
        }
    }
    for (kind, tokens) in [
        ("input", op.input_tokens),
        ("output", op.output_tokens),
        ("cache_read", op.cache_read_tokens),
        ("cache_write", op.cache_write_tokens),
    ] {
        if tokens > 0 {
            counter!(TOKENS, "model" => op.request_model.to_owned(), "type" => kind)
                .increment(tokens);
        }
    }
    if op.cost_micro_usd > 0 {
        counter!(COST, "model" => op.request_model.to_owned()).increment(op.cost_micro_usd);
    }
}

pub fn time_to_first_token(provider: &str, request_model: &str, seconds: f64) {
    histogram!(
        TIME_TO_FIRST_TOKEN,
        "gen_ai_provider_name" => provider.to_owned(),
        "gen_ai_request_model" => request_model.to_owned()
    )
    .record(seconds);
}

pub fn http_request(route: &str, model: &str, status: u16, seconds: f64, overhead_seconds: f64) {
    histogram!(
        HTTP_DURATION,
        "route" => route.to_owned(),
        "model" => model.to_owned(),
        "status" => status.to_string()
    )
    .record(seconds);
    histogram!(GATEWAY_OVERHEAD, "route" => route.to_owned()).record(overhead_seconds);
}

pub fn stage(stage: &'static str, seconds: f64) {
    histogram!(STAGE_DURATION, "stage" => stage).record(seconds);
}

pub fn first_delta(seconds: f64) {
    histogram!(FIRST_DELTA).record(seconds);
}

pub fn cache_hit(kind: &str, saved_micro_usd: u64) {
    counter!(CACHE_HITS, "kind" => kind.to_owned()).increment(1);
    counter!(CACHE_SAVED, "kind" => kind.to_owned()).increment(saved_micro_usd);
}

pub fn answer(status: &'static str) {
    counter!(ANSWERS, "status" => status).increment(1);
}

pub fn feedback(rating: &'static str) {
    counter!(FEEDBACK, "rating" => rating).increment(1);
}

pub fn fallback(model: &str, deployment: &str) {
    counter!(FALLBACKS, "model" => model.to_owned(), "deployment" => deployment.to_owned())
        .increment(1);
}

pub fn guard_verdict(policy: &str, stage: &str, reason: &str) {
    counter!(
        GUARD_VERDICTS,
        "policy" => policy.to_owned(),
        "stage" => stage.to_owned(),
        "reason" => reason.to_owned()
    )
    .increment(1);
}

pub fn redactions(count: u64) {
    counter!(PII_REDACTIONS).increment(count);
}

/// A deployment's health as its breaker counts it, set at each scrape.
pub struct DeploymentFigures<'a> {
    pub deployment: &'a str,
    pub provider: &'a str,
    pub state: u8,
    pub successes: u64,
    pub failures: u64,
    pub retries: u64,
    pub retries_refused: u64,
    pub rejections: u64,
    /// Times the breaker entered each state: `(closed, half_open, open)`.
    pub transitions: (u64, u64, u64),
}

pub fn deployment(d: &DeploymentFigures) {
    let labels = [
        ("deployment", d.deployment.to_owned()),
        ("provider", d.provider.to_owned()),
    ];
    gauge!(BREAKER_STATE, &labels).set(f64::from(d.state));
    for (name, value) in [
        (UPSTREAM_SUCCESSES, d.successes),
        (UPSTREAM_FAILURES, d.failures),
        (RETRIES, d.retries),
        (RETRIES_REFUSED, d.retries_refused),
        (BREAKER_REJECTIONS, d.rejections),
    ] {
        counter!(name, &labels).absolute(value);
    }
    let (closed, half_open, open) = d.transitions;
    for (to, value) in [("closed", closed), ("half_open", half_open), ("open", open)] {
        counter!(BREAKER_TRANSITIONS, "deployment" => d.deployment.to_owned(), "to" => to)
            .absolute(value);
    }
}

/// A scheduled suite's latest pass rate and whether it drifted, set at each scrape.
pub fn eval_canary(suite: &str, model: &str, pass_rate: f64, drifted: bool) {
    let labels = [("suite", suite.to_owned()), ("model", model.to_owned())];
    gauge!(EVAL_PASS_RATE, &labels).set(pass_rate);
    gauge!(EVAL_DRIFT, &labels).set(f64::from(u8::from(drifted)));
}
