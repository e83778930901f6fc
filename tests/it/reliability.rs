//! Fault injection: retries, fallback, circuit breakers, deadlines, the retry budget and stream
//! failover, against fake upstreams that fail in the ways real ones do.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{
    App, Fake, closing_upstream, request_id, sse_events, streamed_text, test_redis_url,
};

/// Fake OpenAI and Anthropic providers (`ai`, `claude`) with a deployment per upstream model
/// name, laid under `extra`.
async fn app(models: &[&str], extra: &str) -> (App, Fake) {
    let (fake, addr) = Fake::spawn().await;
    let closing = closing_upstream().await;
    let mut toml = format!(
        "[providers.ai]\nkind = \"openai\"\nbase_url = \"http://{addr}/v1\"\ntimeout_secs = 5\n\
         [providers.claude]\nkind = \"anthropic\"\nbase_url = \"http://{addr}\"\ntimeout_secs = 5\n\
         [providers.closing]\nkind = \"openai\"\nbase_url = \"http://{closing}/v1\"\n\
         [deployments.closes]\nprovider = \"closing\"\nmodel = \"ok\"\n\
         [deployments.claude-ok]\nprovider = \"claude\"\nmodel = \"ok\"\n"
    );
    for model in models {
        toml.push_str(&format!(
            "[deployments.{model}]\nprovider = \"ai\"\nmodel = \"{model}\"\n"
        ));
    }
    toml.push_str(extra);
    (App::spawn(&toml).await, fake)
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "How long is parental leave?"}]})
}

fn streamed(model: &str) -> Value {
    let mut body = chat(model);
    body["stream"] = json!(true);
    body
}

async fn providers(app: &App) -> Value {
    app.http
        .get(format!("{}/admin/providers", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn breaker_state(providers: &Value, deployment: &str) -> String {
    providers["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["deployment"] == deployment)
        .unwrap_or_else(|| panic!("{deployment} not in {providers}"))["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

const FAST_RETRIES: &str = "[router]\nmax_attempts = 3\nbackoff_base_ms = 5\nbackoff_max_ms = 20\n";

#[tokio::test]
async fn transient_failures_are_retried_and_the_attempts_logged() {
    let (app, fake) = app(&["fail-2", "err-400"], FAST_RETRIES).await;
    let response = app.post("/v1/chat/completions", chat("fail-2")).await;
    assert_eq!(response.status(), 200);
    let row = app.log_row(&request_id(&response)).await;
    assert_eq!(row.attempts, 3);
    assert_eq!(fake.count("fail-2"), 3);
    let route = row.route.unwrap();
    assert!(route.contains("fail-2: HTTP 503"), "{route}");

    // A request the upstream rejects as malformed is never retried.
    let response = app.post("/v1/chat/completions", chat("err-400")).await;
    assert_eq!(response.status(), 400);
    assert_eq!(fake.count("err-400"), 1);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (app, fake) = app(&["once-429"], FAST_RETRIES).await;
    let started = Instant::now();
    let response = app.post("/v1/chat/completions", chat("once-429")).await;
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited the upstream's Retry-After: 1, not the 5-20 ms backoff"
    );
    assert_eq!(fake.count("once-429"), 2);
}

#[tokio::test]
async fn fallback_crosses_providers_in_the_configured_order() {
    let extra = "[aliases.chat]\ndeployments = [\"err-500\"]\nfallback = [\"backup\", \"ok\"]\n\
                 [aliases.backup]\ndeployments = [\"closes\", \"claude-ok\"]\nweights = [1, 0]\n\
                 [router]\nmax_attempts = 1\n";
    let (app, fake) = app(&["err-500", "ok"], extra).await;
    let response = app.post("/v1/chat/completions", chat("chat")).await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Parental leave is 16 weeks."
    );
    // err-500, then the backup alias: `closes` by weight, then its standby `claude-ok`, which
    // answers; the `ok` deployment after it is never needed.
    let row = app.log_row(&id).await;
    assert_eq!(row.deployment.as_deref(), Some("claude-ok"));
    assert_eq!(row.provider.as_deref(), Some("claude"));
    assert_eq!(row.attempts, 3);
    let route = row.route.unwrap();
    assert!(
        route.starts_with("chat → claude-ok (fallback) after err-500: HTTP 500; closes:"),
        "{route}"
    );
    assert_eq!(fake.count("err-500"), 1);
    assert_eq!(fake.count("ok"), 1, "only claude-ok's own request");
}

#[tokio::test]
async fn every_request_is_answered_while_one_deployment_is_healthy() {
    // Five broken deployments (5xx, a flaky one, malformed JSON, a closed connection, 429 with a
    // Retry-After too long to wait) and one healthy one, sharing an alias by weight.
    let extra = "[aliases.chat]\n\
                 deployments = [\"err-503\", \"flaky\", \"malformed\", \"closes\", \"err-429\", \"ok\"]\n\
                 [router]\nmax_attempts = 2\nbackoff_base_ms = 1\nbackoff_max_ms = 5\nmax_retry_after_secs = 1\n\
                 [breaker]\nmin_requests = 3\ncooldown_secs = 60\n";
    let (app, fake) = app(&["err-503", "flaky", "malformed", "err-429", "ok"], extra).await;
    for i in 0..40 {
        let response = app.post("/v1/chat/completions", chat("chat")).await;
        assert_eq!(response.status(), 200, "request {i}");
    }
    let providers = providers(&app).await;
    for broken in ["err-503", "malformed", "closes"] {
        assert_eq!(breaker_state(&providers, broken), "open", "{broken}");
    }
    assert_eq!(breaker_state(&providers, "ok"), "closed");
    // Once the breakers are open the broken deployments stop getting traffic.
    let calls_to_broken = fake.count("err-503") + fake.count("malformed");
    assert!(
        calls_to_broken <= 12,
        "{calls_to_broken} calls to open deployments"
    );
}

#[tokio::test]
async fn the_breaker_opens_then_a_good_probe_closes_it() {
    let extra = "[router]\nmax_attempts = 1\n\
                 [breaker]\nmin_requests = 2\nfailure_rate = 0.5\ncooldown_secs = 1\n";
    let (app, fake) = app(&["fail-3"], extra).await;
    for _ in 0..2 {
        let response = app.post("/v1/chat/completions", chat("fail-3")).await;
        assert_eq!(response.status(), 502);
    }
    assert_eq!(breaker_state(&providers(&app).await, "fail-3"), "open");
    let refused = app.post("/v1/chat/completions", chat("fail-3")).await;
    assert_eq!(
        refused.status(),
        503,
        "open breaker: refused without a call"
    );
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_healthy_deployment");
    assert_eq!(fake.count("fail-3"), 2);

    // After the cooldown one probe goes through; it fails (the 3rd call), so the breaker opens again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let probe = app.post("/v1/chat/completions", chat("fail-3")).await;
    assert_eq!(probe.status(), 502);
    assert_eq!(breaker_state(&providers(&app).await, "fail-3"), "open");

    // The next probe succeeds and closes it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let probe = app.post("/v1/chat/completions", chat("fail-3")).await;
    assert_eq!(probe.status(), 200);
    assert_eq!(breaker_state(&providers(&app).await, "fail-3"), "closed");
    assert_eq!(fake.count("fail-3"), 4);

    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("askacme_breaker_state{deployment=\"fail-3\",provider=\"ai\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("askacme_upstream_failures_total{deployment=\"fail-3\",provider=\"ai\"} 3")
    );
}

/// A caller that hangs up says nothing about the upstream: a half-open breaker whose probe is
/// abandoned mid-stream must not close (before, the cancellation counted as a success).
#[tokio::test]
async fn a_probe_whose_caller_hangs_up_does_not_close_the_breaker() {
    let extra = "[router]\nmax_attempts = 1\n\
                 [breaker]\nmin_requests = 1\nfailure_rate = 0.5\ncooldown_secs = 1\n";
    let (app, _fake) = app(&["slow-after-1"], extra).await;
    let failed = app
        .post("/v1/chat/completions", streamed("slow-after-1"))
        .await;
    assert_eq!(failed.status(), 502);
    assert_eq!(
        breaker_state(&providers(&app).await, "slow-after-1"),
        "open"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut probe = app
        .post("/v1/chat/completions", streamed("slow-after-1"))
        .await;
    assert_eq!(probe.status(), 200, "the probe was let through");
    let id = request_id(&probe);
    assert!(probe.chunk().await.unwrap().is_some(), "the stream started");
    assert_eq!(
        breaker_state(&providers(&app).await, "slow-after-1"),
        "half_open"
    );
    drop(probe);

    let db = app.state.gateway.request_log().database().clone();
    let mut row = None;
    for _ in 0..100 {
        app.state.gateway.request_log().flush().await;
        row = db.request(&id).await.unwrap();
        if row.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let row = row.expect("the abandoned probe's row is written");
    assert_eq!(row.status, askacme::store::RequestStatus::Cancelled);
    assert_ne!(
        breaker_state(&providers(&app).await, "slow-after-1"),
        "closed",
        "an abandoned probe proves nothing"
    );
}

#[tokio::test]
async fn no_request_outlives_its_deadline() {
    let extra = "[router]\nrequest_timeout_secs = 1\nmax_attempts = 3\nmax_retry_after_secs = 30\n";
    let (app, _fake) = app(&["hang", "err-429"], extra).await;
    for model in ["hang", "err-429"] {
        let started = Instant::now();
        let response = app.post("/v1/chat/completions", chat(model)).await;
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_millis(1500),
            "{model}: answered after {elapsed:?} with a 1 s deadline"
        );
        let expected = if model == "hang" { 504 } else { 429 };
        assert_eq!(response.status(), expected, "{model}");
    }
}

#[tokio::test]
async fn retries_stay_within_the_budget_when_every_upstream_fails() {
    // Breakers out of the way (they would stop the calls first), five attempts allowed per
    // deployment, and a budget of 2 + 20% of first attempts per deployment.
    let extra = "[aliases.chat]\ndeployments = [\"err-503\", \"err-500\"]\n\
                 [router]\nmax_attempts = 5\nbackoff_base_ms = 1\nbackoff_max_ms = 2\n\
                 retry_budget_ratio = 0.2\nretry_budget_min = 2\nretry_budget_window_secs = 60\n\
                 [breaker]\nmin_requests = 100000\n";
    let (app, fake) = app(&["err-503", "err-500"], extra).await;
    let requests = 40;
    for i in 0..requests {
        let response = app.post("/v1/chat/completions", chat("chat")).await;
        assert_eq!(response.status(), 502);
        if i == 0 {
            // Each deployment's failure is reported, in the body and on the row, not only the
            // last one.
            let id = request_id(&response);
            let body: Value = response.json().await.unwrap();
            let attempts = body["error"]["attempts"].as_array().unwrap();
            let failed: Vec<&str> = attempts
                .iter()
                .map(|a| a["deployment"].as_str().unwrap())
                .collect();
            assert!(
                failed.contains(&"err-503") && failed.contains(&"err-500"),
                "{body}"
            );
            let error = app.log_row(&id).await.error.unwrap();
            assert!(
                error.contains("HTTP 503") && error.contains("HTTP 500"),
                "{error}"
            );
            assert!(
                error.contains("upstream request id upstream-req-503"),
                "the upstream's request id is kept: {error}"
            );
        }
    }
    let calls = fake.count("err-503") + fake.count("err-500");
    // Each request tries both deployments once: 80 first attempts. Retries are capped at
    // 2 + 0.2 × 40 = 10 per deployment; without the budget there would be 400 calls.
    assert!(
        (80..=100).contains(&calls),
        "{calls} upstream calls for {requests} requests"
    );
    let providers = providers(&app).await;
    for d in providers["data"].as_array().unwrap() {
        if d["deployment"] == "err-503" || d["deployment"] == "err-500" {
            assert!(d["total_retries"].as_u64().unwrap() <= 10, "{d}");
            assert!(d["total_retries_refused"].as_u64().unwrap() > 0, "{d}");
        }
    }
}

#[tokio::test]
async fn a_stream_that_fails_before_its_first_byte_falls_back_unseen() {
    let extra = "[aliases.chat]\ndeployments = [\"err-503\"]\nfallback = [\"empty-stream\", \"claude-ok\"]\n\
                 [router]\nmax_attempts = 1\n";
    let (app, fake) = app(&["err-503", "empty-stream"], extra).await;
    let response = app.post("/v1/chat/completions", streamed("chat")).await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let body = response.text().await.unwrap();
    let events = sse_events(&body);
    assert!(
        events.iter().all(|(event, _)| event != "error"),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap().1, "[DONE]");
    assert_eq!(streamed_text(&body), "Parental leave is 16 weeks.");
    assert_eq!(fake.count("err-503"), 1);
    assert_eq!(fake.count("empty-stream"), 1);
    let row = app.log_row(&id).await;
    assert_eq!(row.deployment.as_deref(), Some("claude-ok"));
    assert_eq!(row.attempts, 3);
    let route = row.route.unwrap();
    assert!(
        route.contains("(fallback)") && route.contains("empty-stream: stream cut"),
        "{route}"
    );
}

#[tokio::test]
async fn auto_sends_easy_and_hard_requests_to_their_tiers_and_logs_why() {
    // The difficulty classifier embeds with the local MiniLM; the tiers are fakes.
    let extra = "[aliases]\neasy-tier = [\"ok\"]\nhard-tier = [\"cited\"]\n\
                 [auto]\neasy = \"easy-tier\"\nhard = \"hard-tier\"\n";
    let (app, fake) = app(&["ok", "cited"], extra).await;
    for (question, tier, upstream) in [
        (
            "How many vacation days do I get per year?",
            "easy-tier",
            "ok",
        ),
        (
            "Compare the remote work policy with the office policy, analyse the trade-offs for \
             a new team and plan the rollout step by step.",
            "hard-tier",
            "cited",
        ),
    ] {
        let before = fake.count(upstream);
        let response = app
            .post(
                "/v1/chat/completions",
                json!({"model": "auto", "messages": [{"role": "user", "content": question}]}),
            )
            .await;
        assert_eq!(response.status(), 200, "{question}");
        assert_eq!(fake.count(upstream), before + 1, "{question} → {upstream}");
        let row = app.log_row(&request_id(&response)).await;
        assert_eq!(row.requested_model, "auto");
        let route = row.route.unwrap();
        assert!(route.starts_with(&format!("auto → {tier} (")), "{route}");
        assert!(route.contains("score"), "{route}");
    }
}

#[tokio::test]
async fn a_breaker_opened_by_one_instance_opens_on_the_others_through_redis() {
    let Some(redis_url) = test_redis_url("shared-breaker") else {
        return;
    };
    let (fake, addr) = Fake::spawn().await;
    // A deployment name of its own, so no other run's breaker key interferes.
    let deployment = format!("shared-{}", uuid::Uuid::now_v7().simple());
    let config = format!(
        "storage.redis_url = \"{redis_url}\"\n\
         [providers.ai]\nkind = \"openai\"\nbase_url = \"http://{addr}/v1\"\n\
         [deployments.{deployment}]\nprovider = \"ai\"\nmodel = \"fail-1000\"\n\
         [router]\nmax_attempts = 1\n[breaker]\nmin_requests = 2\ncooldown_secs = 30\n"
    );
    let (first, second) = (App::spawn(&config).await, App::spawn(&config).await);
    for _ in 0..2 {
        let response = first.post("/v1/chat/completions", chat(&deployment)).await;
        assert_eq!(response.status(), 502);
    }
    assert_eq!(breaker_state(&providers(&first).await, &deployment), "open");
    let mut state = String::new();
    for _ in 0..40 {
        state = breaker_state(&providers(&second).await, &deployment);
        if state == "open" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, "open", "the second instance learned of the failures");
    let refused = second.post("/v1/chat/completions", chat(&deployment)).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(
        fake.count("fail-1000"),
        2,
        "the second instance sent nothing upstream"
    );
}
