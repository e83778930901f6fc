//! API keys, rate limits and budgets: in one process, and shared by two `askacme serve`
//! processes through Redis and the database.

use std::time::{Duration, Instant};

use askacme::gateway::access::new_key;
use serde_json::{Value, json};

use crate::harness::{App, Fake, TempDir, run_cli, serve, test_redis_url};

const MASTER: &str = "sk-master-0123456789abcdef";

/// An upstream deployment `paid` that costs exactly 1 µ$ per completion token (the fake
/// answers 300 of them), behind auth.
fn config(addr: std::net::SocketAddr) -> String {
    format!(
        "[auth]\nenabled = true\nmaster_key = \"{MASTER}\"\n\
         [providers.ai]\nkind = \"openai\"\nbase_url = \"http://{addr}/v1\"\n\
         [deployments.paid]\nprovider = \"ai\"\nmodel = \"ok\"\nprice = {{ input = 0, output = 1 }}\n\
         [deployments.other]\nprovider = \"ai\"\nmodel = \"ok\"\n"
    )
}

fn chat(model: &str) -> Value {
    json!({"model": model, "max_tokens": 300, "messages": [{"role": "user", "content": "Hi"}]})
}

async fn send(
    http: &reqwest::Client,
    base: &str,
    key: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    try_send(http, base, key, body).await.unwrap()
}

async fn try_send(
    http: &reqwest::Client,
    base: &str,
    key: Option<&str>,
    body: &Value,
) -> reqwest::Result<reqwest::Response> {
    let mut request = http.post(format!("{base}/v1/chat/completions")).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await
}

async fn create_key(
    app: &App,
    rpm: Option<u64>,
    budget: Option<u64>,
    models: Option<Vec<String>>,
) -> String {
    let (secret, record) = new_key("test", rpm, None, budget, models);
    app.state
        .gateway
        .request_log()
        .database()
        .create_key(&record, 0)
        .await
        .unwrap();
    secret
}

#[tokio::test]
async fn keys_are_required_checked_and_revocable() {
    let (_fake, addr) = Fake::spawn().await;
    let app = App::spawn(&config(addr)).await;
    let body = chat("paid");
    for (key, status) in [
        (None, 401),
        (Some("sk-acme-wrong"), 401),
        (Some(MASTER), 200),
    ] {
        let response = send(&app.http, &app.base, key, &body).await;
        assert_eq!(response.status(), status, "{key:?}");
        if status == 401 {
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"]["code"], "invalid_api_key");
        }
    }
    let key = create_key(&app, None, None, Some(vec!["paid".into()])).await;
    assert_eq!(
        send(&app.http, &app.base, Some(&key), &body).await.status(),
        200
    );
    let forbidden = send(&app.http, &app.base, Some(&key), &chat("other")).await;
    assert_eq!(forbidden.status(), 403);
    let error: Value = forbidden.json().await.unwrap();
    assert_eq!(error["error"]["code"], "model_not_allowed");

    // The admin API takes the master key only.
    let admin = |key: &str| {
        app.http
            .get(format!("{}/admin/providers", app.base))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(admin(&key).await.unwrap().status(), 403);
    assert_eq!(admin(MASTER).await.unwrap().status(), 200);

    let db = app.state.gateway.request_log().database();
    let id = db.keys().await.unwrap()[0].id.clone();
    assert!(db.revoke_key(&id, 1).await.unwrap());
    // Valid keys are trusted for `auth.key_cache_ms` (1 s) without a database read.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        send(&app.http, &app.base, Some(&key), &body).await.status(),
        401
    );
    // Anthropic clients send the key as x-api-key.
    let via_header = app
        .http
        .post(format!("{}/v1/chat/completions", app.base))
        .header("x-api-key", MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(via_header.status(), 200);
}

#[tokio::test]
async fn requests_per_minute_allow_exactly_the_limit() {
    let (_fake, addr) = Fake::spawn().await;
    let app = App::spawn(&config(addr)).await;
    let key = create_key(&app, Some(5), None, None).await;
    for i in 0..5 {
        let response = send(&app.http, &app.base, Some(&key), &chat("paid")).await;
        assert_eq!(response.status(), 200, "request {}", i + 1);
        let headers = response.headers();
        assert_eq!(headers["x-ratelimit-limit-requests"], "5");
        assert_eq!(
            headers["x-ratelimit-remaining-requests"],
            (4 - i).to_string().as_str()
        );
    }
    let refused = send(&app.http, &app.base, Some(&key), &chat("paid")).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["x-ratelimit-remaining-requests"], "0");
    // One request's share of the minute: 12 s.
    assert_eq!(refused.headers()["retry-after"], "12");
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn budgets_are_hard_and_spend_follows_usage() {
    let (_fake, addr) = Fake::spawn().await;
    let app = App::spawn(&config(addr)).await;
    // 300 completion tokens at 1 µ$ each: three requests fit in 900 µ$, a fourth does not.
    let key = create_key(&app, None, Some(900), None).await;
    for i in 0..3 {
        let response = send(&app.http, &app.base, Some(&key), &chat("paid")).await;
        assert_eq!(response.status(), 200, "request {}", i + 1);
    }
    let refused = send(&app.http, &app.base, Some(&key), &chat("paid")).await;
    assert_eq!(refused.status(), 429);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["type"], "insufficient_quota");
    // Spend is booked in the transaction that writes each request's log row.
    let log = app.state.gateway.request_log();
    log.flush().await;
    let stored = &log.database().keys().await.unwrap()[0];
    assert_eq!(stored.spent_micro_usd, 900);
    assert_eq!(stored.reserved_micro_usd, 0, "every hold was released");
}

#[tokio::test]
async fn tokens_per_minute_refuse_once_usage_fills_the_minute() {
    let (_fake, addr) = Fake::spawn().await;
    let app = App::spawn(&config(addr)).await;
    let (secret, record) = new_key("tpm", None, Some(5000), None, None);
    let db = app.state.gateway.request_log().database();
    db.create_key(&record, 0).await.unwrap();
    // A request is admitted on its prompt estimate (4 tokens for "Hi") and then booked at the
    // 2,300 tokens the fake reports: three are admitted (the third runs into debt at 6,900),
    // the fourth finds the minute used up.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = send(&app.http, &app.base, Some(&secret), &chat("paid")).await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert_eq!(response.headers()["x-ratelimit-remaining-tokens"], "0");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
}

#[tokio::test]
async fn two_processes_sharing_redis_and_the_database_enforce_one_limit() {
    let Some(redis_url) = test_redis_url("shared-limit") else {
        return;
    };
    let (_fake, addr) = Fake::spawn().await;
    let dir = TempDir::new("shared");
    let config_path = dir.0.join("askacme.toml");
    std::fs::write(
        &config_path,
        format!(
            "[storage]\ndata_dir = {:?}\nredis_url = \"{redis_url}\"\n[server]\nwarm_up = []\n{}",
            dir.0.display().to_string(),
            config(addr)
        ),
    )
    .unwrap();
    let rpm_key = run_cli(
        &config_path,
        &["keys", "create", "--name", "rpm", "--rpm", "6"],
    );
    let budget_key = run_cli(
        &config_path,
        &[
            "keys",
            "create",
            "--name",
            "budget",
            "--budget-usd",
            "0.0012",
            "--models",
            "paid",
        ],
    );
    let listed = run_cli(&config_path, &["keys", "list"]);
    assert!(
        listed.contains("0.001200") && listed.contains("rpm"),
        "{listed}"
    );
    let servers = [serve(&config_path).await, serve(&config_path).await];
    let http = reqwest::Client::new();
    let mut allowed = 0;
    for i in 0..12 {
        let server = &servers[i % 2];
        let status = send(&http, &server.base, Some(rpm_key.trim()), &chat("paid"))
            .await
            .status();
        assert!(status == 200 || status == 429, "{status}");
        allowed += usize::from(status == 200);
    }
    assert_eq!(allowed, 6, "6 requests per minute across both instances");

    // 1,200 µ$ holds four 300 µ$ answers, wherever they are served.
    let mut allowed = 0;
    for i in 0..8 {
        let server = &servers[i % 2];
        let status = send(&http, &server.base, Some(budget_key.trim()), &chat("paid"))
            .await
            .status();
        allowed += usize::from(status == 200);
    }
    assert_eq!(allowed, 4, "one budget across both instances");

    run_cli(&config_path, &["keys", "revoke", "rpm"]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let revoked = send(&http, &servers[1].base, Some(rpm_key.trim()), &chat("paid")).await;
    assert_eq!(
        revoked.status(),
        401,
        "a CLI revocation reaches running servers within auth.key_cache_ms"
    );
}

#[tokio::test]
async fn a_caller_that_hangs_up_is_logged_as_cancelled_and_its_budget_hold_released() {
    let (_fake, addr) = Fake::spawn().await;
    let extra = "[deployments.slow]\nprovider = \"ai\"\nmodel = \"hang\"\nprice = { input = 0, output = 1 }\n";
    let app = App::spawn(&format!("{}{extra}", config(addr))).await;
    let key = create_key(&app, None, Some(1_000_000), None).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let abandoned = try_send(&impatient, &app.base, Some(&key), &chat("slow")).await;
    assert!(abandoned.is_err(), "the client gave up first");
    let db = app.state.gateway.request_log().database();
    let mut reserved = u64::MAX;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        reserved = db.keys().await.unwrap()[0].reserved_micro_usd;
        if reserved == 0 {
            break;
        }
    }
    assert_eq!(
        reserved, 0,
        "the hold of the abandoned request was released"
    );
    app.state.gateway.request_log().flush().await;
    let row = &db.recent_requests(1).await.unwrap()[0];
    assert_eq!(row.status, askacme::store::RequestStatus::Cancelled);
    assert_eq!(row.http_status, 499);
    assert_eq!(row.deployment.as_deref(), Some("slow"));
}

/// A server killed mid-request never writes the row that releases its budget hold; the hold
/// carries the request's deadline and is released once it passes, so the key can spend again.
#[tokio::test]
async fn a_hold_left_by_a_killed_server_expires_at_the_request_deadline() {
    let (fake, addr) = Fake::spawn().await;
    let dir = TempDir::new("killed");
    let config_path = dir.0.join("askacme.toml");
    std::fs::write(
        &config_path,
        format!(
            "[storage]\ndata_dir = {:?}\n[server]\nwarm_up = []\n{}\
             [deployments.slow]\nprovider = \"ai\"\nmodel = \"hang\"\nprice = {{ input = 0, output = 1 }}\n\
             [router]\nrequest_timeout_secs = 3\n",
            dir.0.display().to_string(),
            config(addr)
        ),
    )
    .unwrap();
    // A request holds 300 µ$ (max_tokens 300 at 1 µ$ each): the budget fits one, not two.
    let key = run_cli(
        &config_path,
        &["keys", "create", "--name", "held", "--budget-usd", "0.0005"],
    );
    let key = key.trim().to_owned();
    let server = serve(&config_path).await;
    let http = reqwest::Client::new();
    let (base, held_key) = (server.base.clone(), key.clone());
    let hanging = tokio::spawn(async move {
        try_send(
            &reqwest::Client::new(),
            &base,
            Some(&held_key),
            &chat("slow"),
        )
        .await
    });
    for _ in 0..100 {
        if fake.count("hang") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.count("hang"), 1, "the request reached the upstream");
    let refused = send(&http, &server.base, Some(&key), &chat("paid")).await;
    assert_eq!(
        refused.status(),
        429,
        "the first request's hold is in place"
    );

    let killed = Instant::now();
    drop(server); // SIGKILL: no row, no release
    assert!(hanging.await.unwrap().is_err());
    let url = format!("sqlite://{}", dir.0.join("askacme.db").display());
    let db = askacme::store::Database::open(&url).await.unwrap();
    let key_id = db.keys().await.unwrap()[0].id.clone();
    assert_eq!(
        db.open_holds(&key_id).await.unwrap().len(),
        1,
        "the hold outlived its server"
    );

    let server = serve(&config_path).await;
    let mut status = 0;
    while killed.elapsed() < Duration::from_secs(10) {
        status = send(&http, &server.base, Some(&key), &chat("paid"))
            .await
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        assert_eq!(status, 429);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        status, 200,
        "the key can spend again once the deadline passed"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(3 + 2),
        "released within the request's deadline (3 s), not later: {:?}",
        killed.elapsed()
    );
    // Only the request just served held anything, and its row releases it.
    let mut open = usize::MAX;
    for _ in 0..50 {
        open = db.open_holds(&key_id).await.unwrap().len();
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(open, 0, "no hold is left behind");
}

/// A stream's deadline covers only its opening; its hold lasts as long as the stream may run
/// (the provider's `timeout_secs`), so the budget stays held while tokens are generated.
#[tokio::test]
async fn a_streams_hold_lasts_as_long_as_the_stream_may_run() {
    let (_fake, addr) = Fake::spawn().await;
    let extra = format!(
        "[providers.patient]\nkind = \"openai\"\nbase_url = \"http://{addr}/v1\"\ntimeout_secs = 600\n\
         [deployments.slow]\nprovider = \"patient\"\nmodel = \"hang\"\nprice = {{ input = 0, output = 1 }}\n\
         [router]\nrequest_timeout_secs = 5\n"
    );
    let app = App::spawn(&format!("{}{extra}", config(addr))).await;
    let key = create_key(&app, None, Some(1_000_000), None).await;
    let mut body = chat("slow");
    body["stream"] = json!(true);
    let (http, base) = (app.http.clone(), app.base.clone());
    let streaming = tokio::spawn(async move { try_send(&http, &base, Some(&key), &body).await });
    let db = app.state.gateway.request_log().database();
    let key_id = db.keys().await.unwrap()[0].id.clone();
    let mut holds = Vec::new();
    for _ in 0..100 {
        holds = db.open_holds(&key_id).await.unwrap();
        if !holds.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lasts_ms = holds[0] - askacme::store::now_ms();
    assert!(
        lasts_ms > (600 + 5 - 2) * 1000,
        "held for the deadline and the provider's timeout: {lasts_ms} ms"
    );
    streaming.abort();
}

/// With `[auth]` on, `/metrics` needs the master key unless `server.metrics_auth = "none"`.
#[tokio::test]
async fn metrics_are_protected_when_auth_is_on() {
    let (_fake, addr) = Fake::spawn().await;
    let get = |app: &App, key: Option<&str>| {
        let mut request = app.http.get(format!("{}/metrics", app.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    let app = App::spawn(&config(addr)).await;
    let virtual_key = create_key(&app, None, None, None).await;
    assert_eq!(get(&app, None).await.unwrap().status(), 401);
    assert_eq!(get(&app, Some(&virtual_key)).await.unwrap().status(), 403);
    let scraped = get(&app, Some(MASTER)).await.unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(
        scraped
            .text()
            .await
            .unwrap()
            .contains("askacme_breaker_state")
    );

    let open = App::spawn(&format!("server.metrics_auth = \"none\"\n{}", config(addr))).await;
    assert_eq!(get(&open, None).await.unwrap().status(), 200);
}

/// With `[auth]` on, a key rates only its own answers: another key's request id is unknown to
/// it (404, so ids cannot be probed); the master key rates any.
#[tokio::test]
async fn feedback_is_taken_only_from_the_key_that_asked() {
    let (_fake, addr) = Fake::spawn().await;
    let app = App::spawn(&config(addr)).await;
    let (owner, other) = (
        create_key(&app, None, None, None).await,
        create_key(&app, None, None, None).await,
    );
    let asked = send(&app.http, &app.base, Some(&owner), &chat("paid")).await;
    assert_eq!(asked.status(), 200);
    let request_id = asked.headers()["x-request-id"].to_str().unwrap().to_owned();
    let rate = |key: String| {
        let (http, base, request_id) = (app.http.clone(), app.base.clone(), request_id.clone());
        async move {
            http.post(format!("{base}/v1/feedback"))
                .bearer_auth(key)
                .json(&json!({"request_id": request_id, "rating": "up"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(rate(other).await, 404);
    assert_eq!(rate(owner).await, 200);
    assert_eq!(rate(MASTER.to_owned()).await, 200);
}
