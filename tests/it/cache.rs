//! The exact response cache: what hits, what misses, expiry, opting out, streamed replays, the
//! assistant's answers and their invalidation by ingest, and `askacme cache purge`.

use std::time::Duration;

use askacme::kb::chunk::ChunkOptions;
use askacme::kb::embed::GatewayEmbedder;
use askacme::kb::ingest::ingest;
use askacme::store::{HitFilter, RequestStatus};
use serde_json::{Value, json};

use crate::harness::{
    App, Fake, TempDir, request_id, routes_to, run_cli, sse_events, streamed_text, test_redis_url,
};

async fn app(extra: &str) -> (App, Fake) {
    let (fake, addr) = Fake::spawn().await;
    let config = format!(
        "[providers.ai]\nkind = \"openai\"\nbase_url = \"http://{addr}/v1\"\n\
         [deployments.paid]\nprovider = \"ai\"\nmodel = \"ok\"\nprice = {{ input = 1, output = 2 }}\n{extra}"
    );
    (App::spawn(&config).await, fake)
}

fn chat(overrides: Value) -> Value {
    let mut body = json!({"model": "paid", "temperature": 0, "messages": [{"role": "user", "content": "How long is parental leave?"}]});
    for (k, v) in overrides.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn cache_header(response: &reqwest::Response) -> String {
    response.headers()["x-askacme-cache"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Sends a request and returns its cache header, request id and body text.
async fn send(app: &App, body: Value) -> (String, String, String) {
    let response = app.post("/v1/chat/completions", body).await;
    assert_eq!(response.status(), 200);
    let cache = cache_header(&response);
    let id = request_id(&response);
    (cache, id, response.text().await.unwrap())
}

#[tokio::test]
async fn identical_requests_hit_and_the_hit_is_logged_with_what_it_saved() {
    let (app, fake) = app("").await;
    let (first, first_id, first_body) = send(&app, chat(json!({}))).await;
    let (second, second_id, second_body) = send(&app, chat(json!({}))).await;
    assert_eq!((first.as_str(), second.as_str()), ("miss", "exact"));
    assert_eq!(first_body, second_body);
    assert_eq!(fake.count("ok"), 1, "the hit never reached the upstream");
    let miss = app.log_row(&first_id).await;
    let hit = app.log_row(&second_id).await;
    // 2000 prompt tokens at $1/Mtok + 300 completion tokens at $2/Mtok.
    assert_eq!(miss.cost_micro_usd, 2600);
    assert_eq!(hit.cost_micro_usd, 0);
    assert_eq!(hit.saved_micro_usd, 2600);
    assert_eq!(hit.cache.as_deref(), Some("exact"));
    assert_eq!(hit.attempts, 0);
    assert_eq!(hit.status, RequestStatus::Success);
}

#[tokio::test]
async fn any_parameter_that_changes_the_answer_misses() {
    let (app, fake) = app("").await;
    send(&app, chat(json!({}))).await;
    for change in [
        json!({"max_tokens": 50}),
        json!({"top_p": 0.5}),
        json!({"stop": ["."]}),
        json!({"seed": 3}),
        json!({"response_format": {"type": "json_object"}}),
        json!({"messages": [{"role": "user", "content": "How long is parental leave? "}]}),
        json!({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How long is parental leave?"}]}),
    ] {
        let (cache, _, _) = send(&app, chat(change.clone())).await;
        assert_eq!(cache, "miss", "{change}");
    }
    assert_eq!(fake.count("ok"), 8);
}

#[tokio::test]
async fn the_same_last_message_in_another_conversation_does_not_hit() {
    let (app, fake) = app("").await;
    let conversation = |earlier: &str| {
        chat(json!({"messages": [
            {"role": "user", "content": earlier},
            {"role": "assistant", "content": "Sure."},
            {"role": "user", "content": "And how long is it?"},
        ]}))
    };
    assert_eq!(
        send(&app, conversation("Tell me about parental leave."))
            .await
            .0,
        "miss"
    );
    assert_eq!(
        send(&app, conversation("Tell me about sick leave."))
            .await
            .0,
        "miss"
    );
    assert_eq!(
        send(&app, conversation("Tell me about parental leave."))
            .await
            .0,
        "exact"
    );
    assert_eq!(fake.count("ok"), 2);
}

#[tokio::test]
async fn only_deterministic_requests_are_cached_and_callers_can_opt_out() {
    let (app, fake) = app("").await;
    for sampled in [json!({"temperature": 0.7}), json!({"temperature": null})] {
        let (cache, _, _) = send(&app, chat(sampled.clone())).await;
        assert_eq!(cache, "bypass", "{sampled}");
    }
    // The header and the body field both keep a request out of the cache, both ways.
    let response = app
        .http
        .post(format!("{}/v1/chat/completions", app.base))
        .header("cache-control", "no-store")
        .json(&chat(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(cache_header(&response), "bypass");
    let (cache, _, _) = send(&app, chat(json!({"cache": "no-store"}))).await;
    assert_eq!(cache, "bypass");
    assert!(
        fake.last().1.get("cache").is_none(),
        "the cache field is ours and is not sent upstream"
    );
    let (cache, _, _) = send(&app, chat(json!({}))).await;
    assert_eq!(cache, "miss", "no-store requests stored nothing");
    assert_eq!(fake.count("ok"), 5);
}

#[tokio::test]
async fn entries_expire_after_their_ttl() {
    let (app, fake) = app("[cache]\nttl_secs = 1\n").await;
    send(&app, chat(json!({}))).await;
    assert_eq!(send(&app, chat(json!({}))).await.0, "exact");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(send(&app, chat(json!({}))).await.0, "miss");
    assert_eq!(fake.count("ok"), 2);
}

#[tokio::test]
async fn streams_are_stored_and_replayed_as_streams_with_the_same_content() {
    let (app, fake) = app("").await;
    let streamed = chat(json!({"stream": true, "stream_options": {"include_usage": true}}));
    let (first, _, first_body) = send(&app, streamed.clone()).await;
    let (second, second_id, second_body) = send(&app, streamed).await;
    assert_eq!((first.as_str(), second.as_str()), ("miss", "exact"));
    assert_eq!(streamed_text(&first_body), "Parental leave is 16 weeks.");
    assert_eq!(streamed_text(&second_body), streamed_text(&first_body));
    let events = sse_events(&second_body);
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let usage = events
        .iter()
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .find(|c| !c["usage"].is_null())
        .expect("the replay carries the usage the caller asked for");
    assert_eq!(usage["usage"]["completion_tokens"], 300);
    // A plain request is served from the streamed answer's entry, and the other way round.
    let (plain, _, plain_body) = send(&app, chat(json!({}))).await;
    assert_eq!(plain, "exact");
    let plain: Value = serde_json::from_str(&plain_body).unwrap();
    assert_eq!(
        plain["choices"][0]["message"]["content"],
        "Parental leave is 16 weeks."
    );
    assert_eq!(fake.count("ok"), 1);
    let hit = app.log_row(&second_id).await;
    assert_eq!(hit.cache.as_deref(), Some("exact"));
    assert_eq!(hit.cost_micro_usd, 0);
    assert_eq!(hit.saved_micro_usd, 2600);
}

fn repo(path: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[tokio::test]
async fn assistant_answers_are_cached_until_the_knowledge_base_changes_and_purge_empties_it() {
    // The assistant answers through a fake tier (every category routed to it), with the real
    // MiniLM for retrieval.
    let routes = routes_to("tier");
    let extra = format!(
        "[deployments.cited]\nprovider = \"ai\"\nmodel = \"cited\"\nprice = {{ input = 1, output = 2 }}\n\
         [aliases]\ntier = [\"cited\"]\n[assistant.routes]\n{routes}"
    );
    let (app, fake) = app(&extra).await;
    let embedder = GatewayEmbedder::new(app.state.gateway.clone(), "embed");
    let db = app.state.gateway.request_log().database().clone();
    let ingest_dir = |dir: std::path::PathBuf| {
        let (db, embedder) = (db.clone(), &embedder);
        async move {
            ingest(&db, &[dir], ChunkOptions::default(), embedder, &|_| {})
                .await
                .unwrap()
        }
    };
    ingest_dir(repo("examples/handbook")).await;
    let question = json!({"question": "How long is parental leave?"});
    let ask = |body: Value| async {
        let response = app.post("/v1/ask", body).await;
        assert_eq!(response.status(), 200);
        let cache = cache_header(&response);
        let id = request_id(&response);
        let answer: Value = response.json().await.unwrap();
        (cache, id, answer)
    };
    let (first, _, answer) = ask(question.clone()).await;
    assert_eq!(first, "miss");
    assert_eq!(answer["status"], "success", "{answer}");
    let (second, second_id, replayed) =
        ask(json!({"question": "  how long is  PARENTAL leave?"})).await;
    assert_eq!(second, "exact", "case and spacing do not matter");
    assert_eq!(replayed["answer"], answer["answer"]);
    assert_eq!(replayed["sources"], answer["sources"]);
    assert_eq!(replayed["cache"], "exact");
    assert_eq!(replayed["cost_micro_usd"], 0);
    assert_eq!(fake.count("cited"), 1);
    let row = app.log_row(&second_id).await;
    assert_eq!(row.cache.as_deref(), Some("exact"));
    assert!(row.saved_micro_usd > 0);
    let (opted_out, _, _) =
        ask(json!({"question": "How long is parental leave?", "cache": "no-store"})).await;
    assert_eq!(opted_out, "bypass");

    // A retype is served the same answer by the semantic cache; a narrower question is not.
    let (semantic, semantic_id, paraphrased) =
        ask(json!({"question": "How long is the parental leave?"})).await;
    assert_eq!(semantic, "semantic");
    assert_eq!(paraphrased["answer"], answer["answer"]);
    assert_eq!(
        paraphrased["cache_match"]["question"],
        "How long is parental leave?"
    );
    assert!(paraphrased["cache_match"]["similarity"].as_f64().unwrap() >= 0.75);
    assert_eq!(
        app.log_row(&semantic_id).await.cache.as_deref(),
        Some("semantic")
    );
    let (narrower, _, _) =
        ask(json!({"question": "How long is parental leave for part-time employees?"})).await;
    assert_eq!(narrower, "miss", "the guard refused the part-time question");
    let reviewed = db.semantic_hits(HitFilter::All, 10).await.unwrap();
    assert!(
        reviewed
            .iter()
            .any(|h| h.decision == "served" && h.question == "How long is the parental leave?"),
        "{reviewed:?}"
    );
    assert!(
        reviewed
            .iter()
            .any(|h| h.decision.starts_with("unmatched word: part")
                && h.question.contains("part-time")),
        "{reviewed:?}"
    );

    // A thumbs-down on the served match flags it; feedback on a request that does not exist,
    // or with a rating that is not up or down, is a client error.
    let rated = app
        .post(
            "/v1/feedback",
            json!({"request_id": semantic_id, "rating": "down", "comment": "wrong"}),
        )
        .await;
    assert_eq!(rated.status(), 200);
    let rated: Value = rated.json().await.unwrap();
    assert_eq!(rated["flagged_semantic_match"], true, "{rated}");
    let unknown = app
        .post(
            "/v1/feedback",
            json!({"request_id": "req_nope", "rating": "down"}),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    let bad = app
        .post(
            "/v1/feedback",
            json!({"request_id": semantic_id, "rating": "meh"}),
        )
        .await;
    assert_eq!(bad.status(), 400);

    // In a conversation, asking again in other words right after a served match flags it too.
    let (in_session, session_hit, _) =
        ask(json!({"question": "how long is the parental leave", "session_id": "conversation-1"}))
            .await;
    assert_eq!(in_session, "semantic");
    ask(json!({"question": "What is the duration of parental leave for a new parent?", "session_id": "conversation-1"}))
        .await;
    let flagged = db.semantic_hits(HitFilter::Flagged, 10).await.unwrap();
    let reasons: Vec<(&str, Option<&str>)> = flagged
        .iter()
        .map(|h| (h.request_id.as_str(), h.flag_reason.as_deref()))
        .collect();
    assert!(
        reasons.contains(&(semantic_id.as_str(), Some("thumbs down"))),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(id, why)| *id == session_hit && why.is_some_and(|w| w.starts_with("rephrased"))),
        "{reasons:?}"
    );

    // `askacme cache hits --semantic --flagged` lists them, `askacme stats` counts them, and
    // `askacme cache forget ID` stops the match being served, in the running server too.
    let cli_config = TempDir::new("cli-config");
    let config = cli_config.0.join("askacme.toml");
    let data_dir = app.data_dir().display().to_string();
    std::fs::write(&config, format!("[storage]\ndata_dir = {data_dir:?}\n")).unwrap();
    let listed = run_cli(&config, &["cache", "hits", "--semantic", "--flagged"]);
    assert!(listed.contains("flagged: thumbs down"), "{listed}");
    assert!(
        !listed.contains("part-time"),
        "only flagged matches: {listed}"
    );
    let stats = run_cli(&config, &["stats"]);
    assert!(stats.contains("2 served matches flagged"), "{stats}");
    let id = flagged[0].id.to_string();
    let forgot = run_cli(&config, &["cache", "forget", &id]);
    assert!(forgot.contains("How long is parental leave?"), "{forgot}");
    let (after_forget, _, _) = ask(json!({"question": "How long is the parental leave?"})).await;
    assert_eq!(
        after_forget, "miss",
        "a forgotten match is not served again"
    );

    // Any ingest that changes a document moves the knowledge base's generation: answers made
    // from the old documents are not served again.
    let extra_docs = TempDir::new("extra-docs");
    std::fs::create_dir_all(extra_docs.0.join("hr")).unwrap();
    std::fs::write(
        extra_docs.0.join("hr/bikes.md"),
        "# Bike scheme\n\nEmployees may lease one bike through payroll.\n",
    )
    .unwrap();
    ingest_dir(extra_docs.0.clone()).await;
    let (after_ingest, _, _) = ask(question.clone()).await;
    assert_eq!(after_ingest, "miss");

    // `askacme cache purge --all` empties the store the server shares.
    app.state.gateway.cache().flush().await;
    let printed = run_cli(&config, &["cache", "purge", "--all"]);
    let purged: u64 = printed
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{printed}"));
    // The two assistant answers (before and after the ingest) and the gateway entries of
    // their model calls.
    assert!(purged >= 2, "{printed}");
}

/// The semantic cache on the held-out test split of the labelled pairs
/// (evals/semantic/test.toml, never looked at while the guard was designed): at the default
/// threshold, with the guard, at most 1% of the near-misses are served. The tables, per family
/// and per threshold, are printed (`--nocapture`) and kept in docs/benchmarks.md.
#[tokio::test]
async fn the_guard_serves_at_most_one_percent_of_held_out_near_misses() {
    use askacme::cache::guard::{Guard, Lexicon};
    use askacme::eval::semantic::{self, Expect, PairSet};
    use askacme::gateway::RequestContext;

    let set = PairSet::load(&repo("evals/semantic/test.toml")).unwrap();
    let app = App::spawn("").await;
    let config = askacme::config::Config::load(None).unwrap();
    let embedder = GatewayEmbedder::new(app.state.gateway.clone(), "embed");
    let guard = Guard::new(Lexicon::shared(&config.cache.semantic_lexicon));
    let ctx = RequestContext::new("semantic-pairs", "test");
    let scored = semantic::score(&set.pairs, &embedder, &guard, None, &ctx)
        .await
        .unwrap();
    let threshold = config.cache.semantic_threshold;
    println!("{}", semantic::family_table(&scored, threshold));
    println!("{}", semantic::threshold_table(&scored));
    let misses = scored
        .iter()
        .filter(|s| s.pair.expect == Expect::Miss)
        .count();
    assert!(misses >= 200, "the test split has {misses} near-misses");
    let false_hits = semantic::served_rate(&scored, Expect::Miss, threshold, true);
    assert!(
        false_hits <= 0.01,
        "near-misses served at {threshold}: {false_hits}"
    );
    // Without the guard the same threshold serves most of them: the guard is what holds.
    assert!(semantic::served_rate(&scored, Expect::Miss, threshold, false) > 0.5);
    // What it does serve: today a third of the should-hit pairs (mostly retypes); the target
    // of 60% is not met (docs/semantic-cache.md), and this keeps it from getting worse.
    let served = semantic::served_rate(&scored, Expect::Hit, threshold, true);
    assert!(
        served >= 0.3,
        "should-hit pairs served at {threshold}: {served}"
    );
}

#[tokio::test]
async fn two_instances_on_one_redis_share_the_cache() {
    let Some(redis_url) = test_redis_url("shared-cache") else {
        return;
    };
    let (fake, addr) = Fake::spawn().await;
    // Two instances with their own databases: only Redis is shared.
    let config = format!(
        "storage.redis_url = \"{redis_url}\"\n\
         [providers.ai]\nkind = \"openai\"\nbase_url = \"http://{addr}/v1\"\n\
         [deployments.paid]\nprovider = \"ai\"\nmodel = \"ok\"\nprice = {{ input = 1, output = 2 }}\n"
    );
    let (first, second) = (App::spawn(&config).await, App::spawn(&config).await);
    // A question of its own, so no earlier run's entry answers it.
    let body = chat(
        json!({"messages": [{"role": "user", "content": format!("Run {}?", uuid::Uuid::now_v7())}]}),
    );
    assert_eq!(send(&first, body.clone()).await.0, "miss");
    first.state.gateway.cache().flush().await;
    let (cache, id, _) = send(&second, body).await;
    assert_eq!(
        cache, "exact",
        "one instance's answer is a hit on the other"
    );
    assert_eq!(fake.count("ok"), 1);
    assert_eq!(second.log_row(&id).await.saved_micro_usd, 2600);

    // A purge walks the keys with SCAN and frees them with UNLINK: KEYS would block the Redis
    // that also serves limits and breakers. Redis's MONITOR shows the commands it ran.
    let mut monitor = redis_monitor(&redis_url).await;
    let purged = second
        .state
        .gateway
        .cache()
        .purge(askacme::store::now_ms(), i64::MAX)
        .await
        .unwrap();
    assert!(purged >= 1, "{purged}");
    let commands = read_for(&mut monitor, Duration::from_millis(300)).await;
    assert!(commands.contains("\"SCAN\""), "{commands}");
    assert!(commands.contains("\"UNLINK\""), "{commands}");
    assert!(!commands.contains("\"KEYS\""), "{commands}");
    assert!(!commands.contains("\"DEL\""), "{commands}");
}

/// A raw connection in MONITOR mode: Redis streams every command it runs to it.
async fn redis_monitor(url: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let address = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(b"*1\r\n$7\r\nMONITOR\r\n").await.unwrap();
    let ok = read_for(&mut stream, Duration::from_millis(200)).await;
    assert!(ok.starts_with("+OK"), "{ok}");
    stream
}

/// What arrives on `stream` within `window`.
async fn read_for(stream: &mut tokio::net::TcpStream, window: Duration) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buffer = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}
