//! Metrics and traces: the `/metrics` series a gateway call, a streamed call, an answer, a
//! cache hit and feedback produce (GenAI names translated to Prometheus style), and the spans
//! `askacme serve` exports over OTLP/HTTP JSON to a collector that records what it receives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

use crate::assistant::handbook_app;
use crate::harness::{Fake, Server, TempDir, metric, request_id, routes_to, serve};

#[tokio::test]
async fn metrics_count_model_calls_tokens_cost_stages_cache_hits_and_feedback() {
    let (_fake, addr) = Fake::spawn().await;
    let routes = routes_to("metered");
    // A deployment name no other test uses: the series are the process's.
    let app = handbook_app(&format!(
        "[providers.ai]\nkind = \"openai\"\nbase_url = \"http://{addr}/v1\"\n\
         [deployments.metered-fake]\nprovider = \"ai\"\nmodel = \"cited\"\nprice = {{ input = 2, output = 3 }}\n\
         [aliases]\nmetered = [\"metered-fake\"]\n\
         [assistant.routes]\n{routes}"
    ))
    .await;
    let chat = json!({"model": "metered", "messages": [{"role": "user", "content": "Hi"}]});
    let response = app.post("/v1/chat/completions", chat.clone()).await;
    assert_eq!(response.status(), 200);
    let row = app.log_row(&request_id(&response)).await;
    let mut streamed = chat.clone();
    streamed["stream"] = json!(true);
    let response = app.post("/v1/chat/completions", streamed).await;
    response.text().await.unwrap();
    let question = json!({"question": "How long is parental leave?"});
    let response = app.post("/v1/ask", question.clone()).await;
    let id = request_id(&response);
    assert_eq!(response.status(), 200);
    let response = app.post("/v1/ask", question).await;
    let cached: Value = response.json().await.unwrap();
    assert_eq!(cached["cache"], "exact");
    let rated = app
        .post("/v1/feedback", json!({"request_id": id, "rating": "down"}))
        .await;
    assert_eq!(rated.status(), 200);
    // A streamed answer learns its model while it streams: measured when the stream ends.
    let streamed_ask = app
        .post(
            "/v1/ask",
            json!({"question": "How many weeks of parental leave does the primary caregiver get?", "stream": true}),
        )
        .await;
    let streamed_body = streamed_ask.text().await.unwrap();
    assert!(
        streamed_body.contains("\"status\":\"success\""),
        "{streamed_body}"
    );

    let scrape = app.get_text("/metrics").await;
    let labels = "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"ai\",gen_ai_request_model=\"metered\",gen_ai_response_model=\"metered-fake\"";
    let calls = metric(
        &scrape,
        &format!("gen_ai_client_operation_duration_seconds_count{{{labels}}}"),
    );
    assert_eq!(
        calls,
        Some(4.0),
        "chat, stream, one answer (the second was cached) and one streamed answer: {scrape}"
    );
    let usages = metric(
        &scrape,
        &format!("gen_ai_client_token_usage_count{{{labels},gen_ai_token_type=\"input\"}}"),
    );
    assert_eq!(usages, Some(4.0), "{scrape}");
    let input_tokens = metric(
        &scrape,
        "askacme_tokens_total{model=\"metered\",type=\"input\"}",
    );
    assert!(
        input_tokens.is_some_and(|n| n >= 2.0 * row.prompt_tokens as f64),
        "{scrape}"
    );
    let cost = metric(&scrape, "askacme_cost_micro_usd_total{model=\"metered\"}");
    assert!(
        cost.is_some_and(|c| c >= row.cost_micro_usd as f64 && c > 0.0),
        "{scrape}"
    );
    assert!(
        metric(
            &scrape,
            "gen_ai_server_time_to_first_token_seconds_count{gen_ai_provider_name=\"ai\",gen_ai_request_model=\"metered\"}"
        ) == Some(2.0),
        "the streamed chat and the streamed answer: {scrape}"
    );
    let http = metric(
        &scrape,
        "askacme_http_request_duration_seconds_count{route=\"/v1/chat/completions\",model=\"metered\",status=\"200\"}",
    );
    assert_eq!(http, Some(2.0), "{scrape}");
    let asked = metric(
        &scrape,
        "askacme_http_request_duration_seconds_count{route=\"/v1/ask\",model=\"metered\",status=\"200\"}",
    );
    assert_eq!(
        asked,
        Some(3.0),
        "a whole answer, its cached repeat (which names the model that made it) and a streamed one: {scrape}"
    );
    for series in [
        "askacme_stage_duration_seconds_count{stage=\"retrieve\"}",
        "askacme_cache_hits_total{kind=\"exact\"}",
        "askacme_feedback_total{rating=\"down\"}",
        "askacme_answers_total{status=\"success\"}",
        "askacme_gateway_overhead_seconds_count{route=\"/v1/ask\"}",
    ] {
        assert!(
            metric(&scrape, series).is_some_and(|n| n >= 1.0),
            "{series}: {scrape}"
        );
    }
    assert!(
        scrape.contains("askacme_breaker_state{deployment=\"metered-fake\",provider=\"ai\"} 0"),
        "{scrape}"
    );
    assert!(
        scrape.contains("# HELP gen_ai_client_operation_duration_seconds GenAI operation duration"),
        "{scrape}"
    );
    // Personal values are counted when the question is guarded, also when no model is called
    // after (the second, cached answer).
    let personal =
        json!({"question": "How many vacation days do I get? I am jane.doe@corp.example"});
    app.post("/v1/ask", personal.clone())
        .await
        .text()
        .await
        .unwrap();
    let redactions = || async {
        metric(
            &app.get_text("/metrics").await,
            "askacme_pii_redactions_total",
        )
        .unwrap_or(0.0)
    };
    let before = redactions().await;
    let cached: Value = app.post("/v1/ask", personal).await.json().await.unwrap();
    assert_eq!(cached["cache"], "exact", "{cached:#}");
    assert!(redactions().await > before, "{cached:#}");
}

/// An OTLP/HTTP collector that keeps every span it is sent.
async fn collector() -> (Arc<Mutex<Vec<Value>>>, String) {
    async fn traces(State(spans): State<Arc<Mutex<Vec<Value>>>>, body: String) -> &'static str {
        let body: Value = serde_json::from_str(&body).unwrap();
        for resource in body["resourceSpans"].as_array().unwrap() {
            assert_eq!(
                resource["resource"]["attributes"][0]["key"], "service.name",
                "{resource}"
            );
            for scope in resource["scopeSpans"].as_array().unwrap() {
                spans
                    .lock()
                    .unwrap()
                    .extend(scope["spans"].as_array().unwrap().iter().cloned());
            }
        }
        "{}"
    }
    let spans = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (spans, format!("http://{address}"))
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

/// A server exporting its spans to `endpoint` every 50 ms, with one deployment `traced` on a
/// fake OpenAI upstream; `telemetry` adds to its `[telemetry]` table.
async fn traced_server(dir: &TempDir, endpoint: &str, telemetry: &str) -> (Server, Fake) {
    let (fake, addr) = Fake::spawn().await;
    let config = dir.0.join("askacme.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\ndata_dir = {:?}\nmodels_dir = {:?}\n[server]\nwarm_up = []\n\
             [telemetry]\notlp_endpoint = \"{endpoint}\"\nexport_interval_ms = 50\n{telemetry}\
             [providers.ai]\nkind = \"openai\"\nbase_url = \"http://{addr}/v1\"\n\
             [deployments.traced]\nprovider = \"ai\"\nmodel = \"ok\"\n",
            dir.0.display().to_string(),
            crate::harness::models_dir().display().to_string(),
        ),
    )
    .unwrap();
    (serve(&config).await, fake)
}

#[tokio::test]
async fn a_request_is_traced_over_otlp_with_the_genai_attributes() {
    let (spans, endpoint) = collector().await;
    let dir = TempDir::new("otlp");
    let (server, _fake) = traced_server(&dir, &endpoint, "").await;
    let http = reqwest::Client::new();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = http
        .post(format!("{}/v1/chat/completions", server.base))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({"model": "traced", "messages": [{"role": "user", "content": "Hi there"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let mut found = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let spans = spans.lock().unwrap().clone();
        let llm = spans
            .iter()
            .find(|s| attribute(s, "gen_ai.operation.name").is_some());
        let request = spans
            .iter()
            .find(|s| s["name"] == "POST /v1/chat/completions");
        if let (Some(llm), Some(request)) = (llm, request) {
            found = Some((llm.clone(), request.clone()));
            break;
        }
    }
    let (llm, request) = found.expect("the collector received the request's spans");
    assert_eq!(request["kind"], 2, "server: {request}");
    assert_eq!(request["traceId"], trace_id, "joins the caller's trace");
    assert_eq!(request["parentSpanId"], "00f067aa0ba902b7");
    assert_eq!(
        attribute(&request, "http.response.status_code"),
        Some(&json!({"intValue": "200"}))
    );
    assert_eq!(llm["name"], "chat traced");
    assert_eq!(llm["kind"], 3, "client: {llm}");
    assert_eq!(llm["traceId"], trace_id);
    assert_eq!(
        llm["parentSpanId"], request["spanId"],
        "a child of the request"
    );
    let text = |key: &str| attribute(&llm, key).and_then(|v| v["stringValue"].as_str());
    assert_eq!(text("gen_ai.operation.name"), Some("chat"));
    assert_eq!(text("gen_ai.provider.name"), Some("ai"));
    assert_eq!(text("gen_ai.request.model"), Some("traced"));
    assert_eq!(text("gen_ai.response.model"), Some("traced"));
    for key in ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"] {
        let tokens = attribute(&llm, key).and_then(|v| v["intValue"].as_str());
        assert!(
            tokens.is_some_and(|t| t.parse::<u64>().unwrap() > 0),
            "{key}: {llm}"
        );
    }
    assert!(
        attribute(&llm, "gen_ai.input.messages").is_none(),
        "message content only when opted in: {llm}"
    );
    let nanos = |key: &str| llm[key].as_str().unwrap().parse::<u128>().unwrap();
    assert!(nanos("endTimeUnixNano") >= nanos("startTimeUnixNano"));

    // A streamed answer's stages run while its body is sent, after the handler returned:
    // they still belong to the request's trace.
    let response = http
        .post(format!("{}/v1/ask", server.base))
        .json(&json!({"question": "How long is parental leave?", "stream": true}))
        .send()
        .await
        .unwrap();
    assert!(response.text().await.unwrap().contains("event: done"));
    let mut stages = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let spans = spans.lock().unwrap().clone();
        let Some(ask) = spans.iter().find(|s| s["name"] == "POST /v1/ask") else {
            continue;
        };
        stages = spans
            .iter()
            .filter(|s| s["traceId"] == ask["traceId"] && s["name"] != "POST /v1/ask")
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect();
        if stages.iter().any(|s| s == "retrieve") {
            break;
        }
    }
    for stage in [
        "input_guard",
        "embed",
        "classify",
        "retrieve",
        "embeddings embed",
    ] {
        assert!(stages.iter().any(|s| s == stage), "{stage} in {stages:?}");
    }
}

/// With `capture_content`, a model call's span carries the messages it was sent and the reply,
/// whether the reply was streamed or not.
#[tokio::test]
async fn captured_content_is_on_plain_and_streamed_model_call_spans() {
    let (spans, endpoint) = collector().await;
    let dir = TempDir::new("otlp-content");
    let (server, _fake) = traced_server(&dir, &endpoint, "capture_content = true\n").await;
    let http = reqwest::Client::new();
    let questions = ["Asked plainly?", "Asked streamed?"];
    for (question, stream) in questions.iter().zip([false, true]) {
        let response = http
            .post(format!("{}/v1/chat/completions", server.base))
            .json(&json!({"model": "traced", "stream": stream,
                          "messages": [{"role": "user", "content": question}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        // Streamed, the reply comes a word per chunk.
        assert!(response.text().await.unwrap().contains("weeks"));
    }
    let text = |span: &Value, key: &str| {
        attribute(span, key)
            .and_then(|v| v["stringValue"].as_str())
            .map(str::to_owned)
    };
    let mut calls = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        calls = spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| attribute(s, "gen_ai.operation.name").is_some())
            .cloned()
            .collect();
        if calls.len() >= questions.len() {
            break;
        }
    }
    for question in questions {
        let call = calls
            .iter()
            .find(|s| text(s, "gen_ai.input.messages").is_some_and(|m| m.contains(question)))
            .unwrap_or_else(|| panic!("a span with {question:?} in {calls:?}"));
        let output = text(call, "gen_ai.output.messages").unwrap_or_default();
        let choices: Value = serde_json::from_str(&output).unwrap_or_default();
        assert_eq!(
            choices[0]["message"]["content"], "Parental leave is 16 weeks.",
            "{question}: {call}"
        );
    }
}
