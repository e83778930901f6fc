//! Test harness: the app served in-process on an ephemeral port, and fake upstreams that speak
//! the real OpenAI and Anthropic wire formats. A fake's behaviour is chosen by the upstream model
//! name (`ok`, `tool`, `err-429`, `stream-cut`, …), so tests need no shared script state.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use askacme::config::Config;
use askacme::server::{self, AppState};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use serde_json::{Value, json};

/// Directory for one test's data; removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "askacme-it-{label}-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the `askacme` binary with `--config config`, whatever the outcome.
pub fn cli_output(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_askacme"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// Runs the `askacme` binary with `--config config`; panics with its stderr if it fails.
pub fn run_cli(config: &std::path::Path, args: &[&str]) -> String {
    let output = cli_output(config, args);
    assert!(
        output.status.success(),
        "askacme {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `[assistant.routes]` lines sending every category to `model`.
pub fn routes_to(model: &str) -> String {
    askacme::config::Category::ALL
        .iter()
        .map(|c| format!("{} = \"{model}\"\n", c.as_str()))
        .collect()
}

/// The Redis the shared-state tests use, or `None` (with a note saying how to run them) when
/// `ASKACME_TEST_REDIS_URL` is not set.
pub fn test_redis_url(test: &str) -> Option<String> {
    let url = std::env::var("ASKACME_TEST_REDIS_URL").ok();
    if url.is_none() {
        eprintln!(
            "skipped: set ASKACME_TEST_REDIS_URL=redis://127.0.0.1:6379 to run the {test} test (.ci/run does)"
        );
    }
    url
}

/// Where `askacme models fetch` put the models (respects `ASKACME_HOME`).
pub fn models_dir() -> PathBuf {
    Config::load(None).unwrap().models_dir()
}

pub struct App {
    pub base: String,
    pub state: AppState,
    pub http: reqwest::Client,
    _dir: TempDir,
}

impl App {
    /// Serves the app with `extra` TOML laid over the defaults, a fresh database, and the shared
    /// models. Lines of `extra` starting `storage.`, `server.` or `safety.` go into the
    /// `[storage]`, `[server]` and `[safety]` tables written here. The learned injection
    /// detector is off unless a test names one: a head trained on this machine must not change
    /// what the tests see.
    pub async fn spawn(extra: &str) -> App {
        let dir = TempDir::new("app");
        let (ours, rest): (Vec<&str>, Vec<&str>) = extra.lines().partition(|l| {
            l.starts_with("storage.") || l.starts_with("server.") || l.starts_with("safety.")
        });
        let keys_of = |table: &str| -> String {
            ours.iter()
                .filter_map(|l| l.strip_prefix(table))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        let mut safety = keys_of("safety.");
        if !safety.contains("learned_head") {
            let none = dir.0.join("no-injection-head.json");
            safety.push_str(&format!(
                "learned_head = {:?}\n",
                none.display().to_string()
            ));
        }
        let text = format!(
            "[storage]\ndata_dir = {:?}\nmodels_dir = {:?}\n{}[server]\nwarm_up = []\nmax_body_bytes = 1048576\n{}[safety]\n{safety}{}\n",
            dir.0.display().to_string(),
            models_dir().display().to_string(),
            keys_of("storage."),
            keys_of("server."),
            rest.join("\n")
        );
        let config = Config::from_toml_str(&text).unwrap();
        let state = AppState::from_config(&config).await.unwrap();
        state.warm_up(&[]).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let serving = state.clone();
        tokio::spawn(async move {
            server::serve(listener, serving, config.server.max_body_bytes).await
        });
        askacme::providers::install_tls_provider();
        App {
            base,
            state,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// Where the app keeps its database.
    pub fn data_dir(&self) -> &std::path::Path {
        &self._dir.0
    }

    /// The text of `GET path`.
    pub async fn get_text(&self, path: &str) -> String {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// The log row of a request, once the writer has flushed it.
    pub async fn log_row(&self, request_id: &str) -> askacme::store::RequestRecord {
        let log = self.state.gateway.request_log();
        log.flush().await;
        log.database()
            .request(request_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no log row for {request_id}"))
    }
}

pub fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Reads an SSE body into its `(event, data)` pairs.
pub fn sse_events(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = String::new();
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.trim_start().to_owned());
                }
            }
            (event, data.join("\n"))
        })
        .collect()
}

/// The value of one series (`name{labels}` exactly as exposed) in a Prometheus scrape.
pub fn metric(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The text of a streamed chat answer: its content deltas joined.
pub fn streamed_text(body: &str) -> String {
    sse_events(body)
        .iter()
        .filter(|(_, data)| data != "[DONE]")
        .filter_map(|(_, data)| {
            let chunk: Value = serde_json::from_str(data).ok()?;
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// The fake upstream: records every request body it receives.
#[derive(Clone, Default)]
pub struct Fake {
    pub received: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

/// An address whose listener accepts connections and closes them at once, before any response.
pub async fn closing_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    addr
}

impl Fake {
    pub async fn spawn() -> (Fake, SocketAddr) {
        let fake = Fake::default();
        let app = Router::new()
            .route("/v1/chat/completions", post(openai_chat))
            .route("/v1/embeddings", post(openai_embeddings))
            .route("/v1/messages", post(anthropic_messages))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (fake, addr)
    }

    /// Requests received so far for an upstream model name.
    pub fn count(&self, model: &str) -> usize {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, body)| body["model"] == model)
            .count()
    }

    /// Records a request and returns how many the fake has now seen for its model (1-based).
    fn receive(&self, headers: HeaderMap, body: &Value) -> usize {
        let mut received = self.received.lock().unwrap();
        received.push((headers, body.clone()));
        received
            .iter()
            .filter(|(_, b)| b["model"] == body["model"])
            .count()
    }

    pub fn last(&self) -> (HeaderMap, Value) {
        self.received
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the fake received no request")
    }
}

/// A stream that sends `text` every 100 ms for 10 s and never finishes.
fn endless_stream(model: String, text: &'static str) -> Response {
    let chunks = futures::stream::iter(0..100).then(move |i| {
        let model = model.clone();
        async move {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let c = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model,
                           "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]});
            Ok::<_, std::convert::Infallible>(format!("data: {c}\n\n"))
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(chunks))
        .unwrap()
}

fn sse_body(events: Vec<String>) -> Response {
    let body: String = events.concat();
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from(body))
        .unwrap()
}

fn error_response(status: u16, message: &str, retry_after: Option<u64>) -> Response {
    let mut response = (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({"error": {"message": message, "type": "x"}})),
    )
        .into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
    }
    // As OpenAI does: the upstream's own id of the request, for its support.
    response.headers_mut().insert(
        "x-request-id",
        format!("upstream-req-{status}").parse().unwrap(),
    );
    response
}

/// Shared fault behaviours; `None` means "answer normally". `nth` is how many requests for
/// this model the fake has seen, this one included: `fail-N` fails the first N with 503,
/// `flaky` every odd one, `once-429` the first with 429 and `Retry-After: 1`.
async fn fault(model: &str, nth: usize) -> Option<Response> {
    if let Some(n) = model
        .strip_prefix("fail-")
        .and_then(|n| n.parse::<usize>().ok())
    {
        return (nth <= n).then(|| error_response(503, "warming up", None));
    }
    match model {
        "flaky" if nth % 2 == 1 => Some(error_response(503, "flaky", None)),
        // Answers once, then fails: a provider whose model changed under us.
        "breaks-after-1" if nth > 1 => Some(error_response(500, "new model, who dis", None)),
        "once-429" if nth == 1 => Some(error_response(429, "slow down", Some(1))),
        "err-500" => Some(error_response(500, "upstream exploded", None)),
        "err-503" => Some(error_response(503, "overloaded", None)),
        "err-429" => Some(error_response(429, "slow down", Some(7))),
        "err-401" => Some(error_response(401, "bad key", None)),
        "err-400" => Some(error_response(400, "context length exceeded", None)),
        "malformed" => Some(
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from("{\"id\": oops"))
                .unwrap(),
        ),
        "hang" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Some(error_response(500, "too late", None))
        }
        _ => None,
    }
}

async fn openai_chat(
    State(fake): State<Fake>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let nth = fake.receive(headers, &body);
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if let Some(response) = fault(&model, nth).await {
        return response;
    }
    let stream = body["stream"].as_bool().unwrap_or(false);
    if stream && model == "empty-stream" {
        return sse_body(Vec::new());
    }
    let cached = if model == "cached" { 1500 } else { 0 };
    let usage = json!({"prompt_tokens": 2000, "completion_tokens": 300, "total_tokens": 2300,
                       "prompt_tokens_details": {"cached_tokens": cached}});
    let base = json!({"id": "chatcmpl-fake", "created": 1, "model": model});
    if model == "tool" {
        let call = json!({"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"leave\"}"}});
        if stream {
            let chunk = |delta: Value, finish: Value| {
                let mut c = base.clone();
                c["object"] = json!("chat.completion.chunk");
                c["choices"] = json!([{"index": 0, "delta": delta, "finish_reason": finish}]);
                format!("data: {c}\n\n")
            };
            return sse_body(vec![
                chunk(
                    json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": ""}}]}),
                    Value::Null,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"q\":\"leave\"}"}}]}),
                    Value::Null,
                ),
                chunk(json!({}), json!("tool_calls")),
                format!(
                    "data: {}\n\n",
                    json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [], "usage": usage})
                ),
                "data: [DONE]\n\n".into(),
            ]);
        }
        let mut r = base.clone();
        r["object"] = json!("chat.completion");
        r["choices"] = json!([{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [call]}, "finish_reason": "tool_calls"}]);
        r["usage"] = usage;
        return axum::Json(r).into_response();
    }
    // `slow-after-1`: the first request fails (503); later streams send a chunk every 100 ms
    // for 10 s without finishing, for callers that hang up mid-stream.
    if model == "slow-after-1" {
        if nth == 1 {
            return error_response(503, "warming up", None);
        }
        if stream {
            return endless_stream(model, "word ");
        }
    }
    // `slow-sentences`: a short sentence every 100 ms for 10 s, never finishing, for callers
    // that hang up mid-answer.
    if model == "slow-sentences" && stream {
        return endless_stream(model, "Leave is paid. ");
    }
    // `echo-system` / `echo-user` answer with the request's system / last user message, as a
    // model made to repeat its instructions would.
    let echoed = model.strip_prefix("echo-").map(|role| {
        body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .rfind(|m| m["role"] == role)
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_owned()
    });
    // `cited` answers like a good assistant: the handbook's figure, with a citation;
    // `slow-cited` the same after 300 ms; `source-cited` the same, citing in the
    // `[Source 1]` form.
    if model == "slow-cited" {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let content = match model.as_str() {
        "cited" | "slow-cited" => {
            "Employees get 20 weeks of parental leave at full pay [1].".to_owned()
        }
        "source-cited" => {
            "Employees get 20 weeks of parental leave at full pay [Source 1].".to_owned()
        }
        // Confirms the figure a question asserts, as a model talked into it would.
        "confirms-52" => "Yes, parental leave is 52 weeks at full pay [1].".to_owned(),
        // A grounded sentence, then one whose figure no source holds.
        "then-ungrounded" => "Employees get 20 weeks of parental leave at full pay [1]. \
             Part-timers get 75 weeks of it [1]."
            .to_owned(),
        // A follow-up rewritten, as a rewrite model would.
        "rewriter" => "How long is parental leave for the secondary caregiver?".to_owned(),
        // A judge's verdict, as the rubric asks for it.
        "judge-5" => r#"{"correctness": 5, "completeness": 4, "conciseness": 5, "reason": "agrees with the reference"}"#.to_owned(),
        // A pairwise judge that always prefers whichever answer it is shown first.
        "prefers-a" => r#"{"winner": "A", "reason": "the first one"}"#.to_owned(),
        _ => match &echoed {
            Some(text) => text.clone(),
            None => "Parental leave is 16 weeks.".to_owned(),
        },
    };
    // Streams send the same text a word at a time.
    let words: Vec<String> = content.split_inclusive(' ').map(str::to_owned).collect();
    if stream {
        let mut events: Vec<String> = words
            .iter()
            .map(|w| {
                let c = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model,
                               "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": null}]});
                format!("data: {c}\n\n")
            })
            .collect();
        if model == "stream-cut" {
            events.truncate(2);
            return sse_body(events);
        }
        events.push(format!("data: {}\n\n", json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})));
        events.push(format!("data: {}\n\n", json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [], "usage": usage})));
        events.push("data: [DONE]\n\n".into());
        return sse_body(events);
    }
    let mut r = base;
    r["object"] = json!("chat.completion");
    r["choices"] = json!([{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]);
    r["usage"] = usage;
    r["system_fingerprint"] = json!("fp_fake");
    axum::Json(r).into_response()
}

async fn openai_embeddings(
    State(fake): State<Fake>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    fake.received.lock().unwrap().push((headers, body.clone()));
    let inputs = body["input"].as_array().cloned().unwrap_or_default();
    // Returned out of order on purpose: clients must sort by index.
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, _)| json!({"object": "embedding", "index": i, "embedding": [i as f32, 1.0, 0.5]}))
        .collect();
    axum::Json(json!({"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 12, "total_tokens": 12}}))
        .into_response()
}

async fn anthropic_messages(
    State(fake): State<Fake>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let nth = fake.receive(headers.clone(), &body);
    if headers.get("anthropic-version").is_none() {
        return error_response(400, "missing anthropic-version", None);
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if model == "err-529" {
        return error_response(529, "Overloaded", None);
    }
    if let Some(response) = fault(&model, nth).await {
        return response;
    }
    let usage = json!({"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20});
    let stream = body["stream"].as_bool().unwrap_or(false);
    let tool = model == "tool";
    if !stream {
        let content = if tool {
            json!([{"type": "text", "text": "Let me look."}, {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "leave"}}])
        } else {
            json!([{"type": "text", "text": "Parental leave is 16 weeks."}])
        };
        return axum::Json(json!({"id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": if tool { "tool_use" } else { "end_turn" }, "stop_sequence": null, "usage": usage}))
        .into_response();
    }
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
            "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}}}),
        ),
        event("ping", json!({"type": "ping"})),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Parental leave "}}),
        ),
    ];
    if model == "stream-error" {
        events.push(event("error", json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})));
        return sse_body(events);
    }
    if model == "stream-cut" {
        return sse_body(events);
    }
    events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "is 16 weeks."}})));
    events.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    if tool {
        events.push(event("content_block_start", json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}})));
        events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"q\":"}})));
        events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"leave\"}"}})));
        events.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ));
    }
    events.push(event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": if tool { "tool_use" } else { "end_turn" }}, "usage": {"output_tokens": 5}})));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    sse_body(events)
}

/// An `askacme serve` process on a free port, stopped when dropped.
pub struct Server {
    child: std::process::Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn serve(config: &std::path::Path) -> Server {
    // This process's HTTP clients need the TLS provider even when no in-process app made one.
    askacme::providers::install_tls_provider();
    let port = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_askacme"))
        .args(["--config", config.to_str().unwrap(), "serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{}/readyz", server.base)).send().await
            && r.status() == 200
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("askacme serve on port {port} did not become ready");
}
