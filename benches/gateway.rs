//! `cargo bench --bench gateway`: prints the tables in docs/benchmarks.md.
//!
//! 1. Gateway added latency: the same request sent straight to a local fake OpenAI upstream and
//!    through `askacme serve` (a separate release process) to that upstream, at concurrency 1
//!    and 8; requests per second; the server's RSS. Then the same through servers with auth,
//!    per-key RPM/TPM limits and a budget on (limits in process, and in Redis when one answers
//!    at `ASKACME_BENCH_REDIS_URL`, default redis://127.0.0.1:6379).
//! 2. A fault scenario: one of two deployments fails half its requests; success rate, latency
//!    and upstream calls per request with and without the gateway's retries, failover and
//!    breakers.
//! 3. Local generation: prefill and decode tokens/s per GGUF model, ours (wall clock) beside
//!    llama.cpp's own counters for the same run.
//! 4. MiniLM embedding throughput and single-query latency.
//! 5. Streaming time to first token: a streamed request straight to the fake upstream and
//!    through `askacme serve`, time until the first content chunk arrives, p50/p99 (this is
//!    what `TCP_NODELAY` on accepted connections keeps near the upstream's own).
//!
//! `ASKACME_BENCH_REQUESTS` (default 2000) sets the requests per latency run.

// A benchmark whose setup fails should stop loudly, not measure something else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use askacme::config::Config;
use askacme::models::catalog::{self, ModelKind};
use askacme::models::embedder::{BertEmbedder, Embedder};
use askacme::models::generator::{
    ChatTurn, GenerationEvent, GenerationStats, GeneratorOptions, GgufGenerator, SamplingParams,
};
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::{Value, json};

mod support;
use support::percentile;

/// Set in the child process that plays the upstream, so that the direct path and the gateway
/// path both cross a process boundary.
const UPSTREAM_ROLE: &str = "ASKACME_BENCH_UPSTREAM_PORT";

fn main() {
    askacme::providers::install_tls_provider();
    let runtime = support::runtime();
    if let Ok(port) = std::env::var(UPSTREAM_ROLE) {
        runtime.block_on(serve_fake_upstream(port.parse().unwrap()));
        return;
    }
    runtime.block_on(gateway_overhead());
    runtime.block_on(streaming_first_token());
    runtime.block_on(fault_scenario());
    local_generation();
    embeddings();
}

/// A streamed answer as OpenAI sends it: a chunk per word, 2 ms apart, then the finish reason,
/// usage and `[DONE]`.
fn streamed_answer() -> axum::response::Response {
    let chunk = |delta: Value, finish: Value| {
        let chunk = json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "bench",
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {chunk}\n\n")
    };
    let mut events: Vec<String> = ["Parental ", "leave ", "is ", "16 ", "weeks."]
        .iter()
        .map(|w| chunk(json!({"content": w}), Value::Null))
        .collect();
    events.push(chunk(json!({}), json!("stop")));
    events.push(format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "bench", "choices": [],
               "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}})
    ));
    events.push("data: [DONE]\n\n".into());
    let body =
        futures::stream::iter(events.into_iter().enumerate()).then(|(i, event)| async move {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Ok::<_, std::convert::Infallible>(event)
        });
    axum::response::Response::builder()
        .header("content-type", "text/event-stream")
        .body(axum::body::Body::from_stream(body))
        .unwrap()
}

/// The upstream: answers every chat request (streamed when asked), except that model `flaky`
/// fails half of them with 503 at random. `GET /calls` counts the chat requests received.
async fn serve_fake_upstream(port: u16) {
    let response = json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Parental leave is 16 weeks."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}
    });
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let app = Router::new()
        .route(
            "/v1/chat/completions",
            post(move |axum::Json(body): axum::Json<Value>| {
                let response = response.clone();
                counter.fetch_add(1, Ordering::Relaxed);
                async move {
                    if body["model"] == "flaky" && fastrand::bool() {
                        return (StatusCode::SERVICE_UNAVAILABLE, "overloaded").into_response();
                    }
                    if body["stream"] == true {
                        return streamed_answer();
                    }
                    axum::Json(response).into_response()
                }
            }),
        )
        .route(
            "/calls",
            get(move || async move { calls.load(Ordering::Relaxed).to_string() }),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    axum::serve(listener, app).await.unwrap();
}

async fn wait_ready(client: &reqwest::Client, url: &str) {
    for _ in 0..100 {
        if client.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not come up");
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// What a run of requests measured.
struct Run {
    /// Milliseconds, sorted.
    latencies: Vec<f64>,
    /// Server-reported `x-askacme-overhead-ms`, sorted.
    overheads: Vec<f64>,
    successes: usize,
    wall: Duration,
}

impl Run {
    fn p(&self, q: f64) -> f64 {
        percentile(&self.latencies, q)
    }

    fn per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }
}

/// `total` chat requests at `concurrency`, each for `models()`'s pick, with an optional key.
async fn run(
    client: &reqwest::Client,
    url: &str,
    total: usize,
    concurrency: usize,
    key: Option<&str>,
    models: fn() -> &'static str,
) -> Run {
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url) = (client.clone(), url.to_owned());
            let key = key.map(str::to_owned);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut overheads = Vec::new();
                let mut successes = 0;
                for _ in 0..total / concurrency {
                    let body = json!({"model": models(), "messages": [{"role": "user", "content": "How long is parental leave?"}]});
                    let t = Instant::now();
                    let mut request = client.post(&url).json(&body);
                    if let Some(key) = &key {
                        request = request.bearer_auth(key);
                    }
                    let response = request.send().await.unwrap();
                    successes += usize::from(response.status().is_success());
                    if let Some(v) = response.headers().get("x-askacme-overhead-ms") {
                        overheads.push(v.to_str().unwrap().parse::<f64>().unwrap());
                    }
                    let _: Value = response.json().await.unwrap_or(Value::Null);
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                (latencies, overheads, successes)
            })
        })
        .collect();
    let mut out = Run {
        latencies: Vec::new(),
        overheads: Vec::new(),
        successes: 0,
        wall: Duration::ZERO,
    };
    for task in tasks {
        let (l, o, s) = task.await.unwrap();
        out.latencies.extend(l);
        out.overheads.extend(o);
        out.successes += s;
    }
    out.wall = started.elapsed();
    out.latencies.sort_by(f64::total_cmp);
    out.overheads.sort_by(f64::total_cmp);
    out
}

fn bench_model() -> &'static str {
    "bench"
}

/// The fake upstream in its own process, on `port`.
async fn start_upstream(client: &reqwest::Client, port: u16) -> (Server, String) {
    let server = Server(
        Command::new(std::env::current_exe().unwrap())
            .env(UPSTREAM_ROLE, port.to_string())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(client, &format!("{url}/calls")).await;
    (server, url)
}

/// `askacme serve` (release) on `port` with `extra` config over a fake upstream at `upstream`,
/// its data in `dir`; returns the process and the base URL once ready.
async fn start_gateway(
    client: &reqwest::Client,
    dir: &std::path::Path,
    port: u16,
    upstream: &str,
    storage: &str,
    extra: &str,
) -> (Server, String) {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("askacme.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nwarm_up = []\n[storage]\ndata_dir = {:?}\n{storage}[providers.fake]\nkind = \"openai\"\nbase_url = \"{upstream}/v1\"\n\
             [deployments.bench]\nprovider = \"fake\"\nmodel = \"bench\"\nprice = {{ input = 2.5, output = 10 }}\n{extra}",
            dir.display().to_string()
        ),
    )
    .unwrap();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_askacme"))
            .args(["--config", config.to_str().unwrap(), "serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(client, &format!("{base}/readyz")).await;
    (server, base)
}

/// Creates a virtual key with the CLI against the config in `dir`.
fn create_key(dir: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_askacme"))
        .arg("--config")
        .arg(dir.join("askacme.toml"))
        .args(["keys", "create", "--name", "bench"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

const MASTER_KEY: &str = "sk-bench-master-key-0123456789";

async fn redis_answers(url: &str) -> bool {
    let Some(address) = url.strip_prefix("redis://") else {
        return false;
    };
    let address = address.split('/').next().unwrap_or(address);
    tokio::net::TcpStream::connect(address).await.is_ok()
}

async fn gateway_overhead() {
    let total: usize = std::env::var("ASKACME_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let client = reqwest::Client::new();
    let base_port = 20000 + (std::process::id() % 20000) as u16;
    let (_upstream, upstream) = start_upstream(&client, base_port).await;
    let root = std::env::temp_dir().join(format!("askacme-bench-{}", std::process::id()));
    let redis_url = std::env::var("ASKACME_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let auth = format!("[auth]\nenabled = true\nmaster_key = \"{MASTER_KEY}\"\n");
    let redis = format!("redis_url = \"{redis_url}\"\n");
    // Limits far above what the runs send, so every request pays for the checks and none is
    // refused.
    const LIMITS: &[&str] = &["--rpm", "100000000", "--tpm", "100000000000"];
    const LIMITS_AND_BUDGET: &[&str] = &[
        "--rpm",
        "100000000",
        "--tpm",
        "100000000000",
        "--budget-usd",
        "1000000",
    ];
    let mut variants: Vec<(&str, String, String, Option<&[&str]>)> = vec![
        ("off", String::new(), String::new(), None),
        ("virtual key", String::new(), auth.clone(), Some(&[])),
        ("key + RPM/TPM", String::new(), auth.clone(), Some(LIMITS)),
        (
            "key + RPM/TPM + budget",
            String::new(),
            auth.clone(),
            Some(LIMITS_AND_BUDGET),
        ),
    ];
    if redis_answers(&redis_url).await {
        variants.push((
            "key + RPM/TPM in Redis + budget",
            redis,
            auth.clone(),
            Some(LIMITS_AND_BUDGET),
        ));
    }
    let direct_url = format!("{upstream}/v1/chat/completions");
    run(&client, &direct_url, 200, 8, None, bench_model).await;

    println!(
        "## Gateway added latency ({total} requests per row, fake upstream in its own process on loopback)\n"
    );
    println!(
        "| access control | concurrency | direct p50 ms | direct p99 ms | via gateway p50 ms | via gateway p99 ms | added p50 ms | added p99 ms | server overhead p50 ms | gateway req/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut rss = Vec::new();
    for (i, (label, storage, extra, key_args)) in variants.iter().enumerate() {
        let dir = root.join(format!("variant{i}"));
        let port = base_port + 1 + i as u16;
        let (server, gateway) = start_gateway(&client, &dir, port, &upstream, storage, extra).await;
        let key = key_args.map(|args| create_key(&dir, args));
        let gateway_url = format!("{gateway}/v1/chat/completions");
        run(&client, &gateway_url, 200, 8, key.as_deref(), bench_model).await;
        for concurrency in [1, 8] {
            let direct = run(&client, &direct_url, total, concurrency, None, bench_model).await;
            let via = run(
                &client,
                &gateway_url,
                total,
                concurrency,
                key.as_deref(),
                bench_model,
            )
            .await;
            assert_eq!(
                via.successes,
                via.latencies.len(),
                "{label}: every request answered"
            );
            println!(
                "| {label} | {concurrency} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0} |",
                direct.p(0.5),
                direct.p(0.99),
                via.p(0.5),
                via.p(0.99),
                via.p(0.5) - direct.p(0.5),
                via.p(0.99) - direct.p(0.99),
                percentile(&via.overheads, 0.5),
                via.per_sec(),
            );
        }
        rss.push(format!("{label}: {:.1} MB", rss_mb(server.0.id())));
    }
    println!("\nserver RSS after the runs: {}\n", rss.join("; "));
    let _ = std::fs::remove_dir_all(&root);
}

/// Milliseconds until the first content chunk of `total` streamed requests, one at a time.
async fn first_token_times(client: &reqwest::Client, url: &str, total: usize) -> Vec<f64> {
    let body = json!({"model": "bench", "stream": true,
                      "messages": [{"role": "user", "content": "How long is parental leave?"}]});
    let mut times = Vec::with_capacity(total);
    for _ in 0..total {
        let started = Instant::now();
        let mut response = client.post(url).json(&body).send().await.unwrap();
        assert!(response.status().is_success());
        let mut seen = String::new();
        let mut first = None;
        while let Some(bytes) = response.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&bytes));
            if first.is_none() && seen.contains("\"content\"") {
                first = Some(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        assert!(seen.contains("[DONE]"), "{seen}");
        times.push(first.expect("a content chunk"));
    }
    times.sort_by(f64::total_cmp);
    times
}

async fn streaming_first_token() {
    let total = 500;
    let client = reqwest::Client::new();
    let base_port = 30000 + (std::process::id() % 10000) as u16;
    let (_upstream, upstream) = start_upstream(&client, base_port).await;
    let dir = std::env::temp_dir().join(format!("askacme-bench-ttft-{}", std::process::id()));
    let (_gateway, gateway) = start_gateway(&client, &dir, base_port + 1, &upstream, "", "").await;
    let direct_url = format!("{upstream}/v1/chat/completions");
    let gateway_url = format!("{gateway}/v1/chat/completions");
    first_token_times(&client, &gateway_url, 20).await;
    let direct = first_token_times(&client, &direct_url, total).await;
    let via = first_token_times(&client, &gateway_url, total).await;
    println!("## Streaming time to first token ({total} streamed requests each, one at a time)\n");
    println!("| path | p50 ms | p99 ms |");
    println!("|---|---|---|");
    for (label, times) in [
        ("direct to the upstream", &direct),
        ("through askacme serve", &via),
    ] {
        println!(
            "| {label} | {:.2} | {:.2} |",
            percentile(times, 0.5),
            percentile(times, 0.99)
        );
    }
    println!();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fault-scenario row: its label, the config laid over the base, and how requests pick
/// their model.
type Scenario = (&'static str, String, fn() -> &'static str);

/// Half the time the healthy deployment, half the flaky one: what a caller without failover
/// gets when it spreads its traffic over both.
fn either_deployment() -> &'static str {
    if fastrand::bool() { "good" } else { "flaky" }
}

fn pair_alias() -> &'static str {
    "pair"
}

async fn fault_scenario() {
    let total: usize = 2000;
    let client = reqwest::Client::new();
    let base_port = 40000 + (std::process::id() % 20000) as u16;
    let (_upstream, upstream) = start_upstream(&client, base_port).await;
    let calls = || async {
        client
            .get(format!("{upstream}/calls"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let deployments = "[deployments.good]\nprovider = \"fake\"\nmodel = \"good\"\n\
                       [deployments.flaky]\nprovider = \"fake\"\nmodel = \"flaky\"\n\
                       [aliases.pair]\ndeployments = [\"good\", \"flaky\"]\n";
    let root = std::env::temp_dir().join(format!("askacme-bench-faults-{}", std::process::id()));
    let scenarios: [Scenario; 3] = [
        (
            "no retry, no failover: each request to one deployment at random",
            format!("{deployments}[router]\nmax_attempts = 1\n[breaker]\nmin_requests = 1000000\n"),
            either_deployment,
        ),
        (
            "alias with failover, no retry, breaker off",
            format!("{deployments}[router]\nmax_attempts = 1\n[breaker]\nmin_requests = 1000000\n"),
            pair_alias,
        ),
        (
            "alias with defaults: retries + failover + breaker",
            deployments.to_owned(),
            pair_alias,
        ),
    ];
    println!(
        "## Fault scenario: one of two deployments fails 50% of its requests ({total} requests, concurrency 8)\n"
    );
    println!("| gateway setup | success rate | p50 ms | p99 ms | upstream calls per request |");
    println!("|---|---|---|---|---|");
    for (i, (label, extra, models)) in scenarios.into_iter().enumerate() {
        let dir = root.join(format!("scenario{i}"));
        let (_server, gateway) = start_gateway(
            &client,
            &dir,
            base_port + 1 + i as u16,
            &upstream,
            "",
            &extra,
        )
        .await;
        let url = format!("{gateway}/v1/chat/completions");
        let before = calls().await;
        let result = run(&client, &url, total, 8, None, models).await;
        let upstream_calls = calls().await - before;
        println!(
            "| {label} | {:.1}% | {:.3} | {:.3} | {:.2} |",
            100.0 * result.successes as f64 / result.latencies.len() as f64,
            result.p(0.5),
            result.p(0.99),
            upstream_calls as f64 / result.latencies.len() as f64,
        );
    }
    println!();
    let _ = std::fs::remove_dir_all(&root);
}

const RAG_PROMPT: &str = "Answer only from the context and cite the section.\n\nContext:\n\
[1] Parental leave (HR-104): Employees who have completed six months of service receive 16 weeks of fully paid \
parental leave, to be taken within 12 months of the birth or adoption. Leave can be split into at most two blocks.\n\
[2] Annual leave (HR-101): Full-time staff accrue 25 days of annual leave per calendar year; part-time staff \
accrue pro rata. Up to 5 unused days may be carried over to 31 March of the following year.\n\
[3] Expenses (FIN-210): Claims must be filed within 30 days with itemised receipts. Meals while travelling are \
reimbursed up to 45 EUR per day.\n\nQuestion: How long is parental leave and who is eligible?";

/// Two greedy runs of `RAG_PROMPT` (the first warms up): the second's figures and text.
fn generate_twice(generator: &GgufGenerator) -> (GenerationStats, String) {
    let params = SamplingParams {
        temperature: 0.0,
        top_p: 1.0,
        max_tokens: Some(64),
        stop: Vec::new(),
        seed: 0,
        json: false,
    };
    let turns = vec![ChatTurn {
        role: "user".into(),
        content: RAG_PROMPT.into(),
    }];
    let mut last = None;
    for _ in 0..2 {
        let mut text = String::new();
        let mut events = generator.generate(turns.clone(), params.clone());
        while let Some(event) = events.blocking_recv() {
            match event {
                GenerationEvent::Done(s) => last = Some((s, std::mem::take(&mut text))),
                GenerationEvent::Failed(e) => panic!("{e}"),
                GenerationEvent::Text(t) => text.push_str(&t),
            }
        }
    }
    last.unwrap()
}

fn local_generation() {
    let config = Config::load(None).unwrap();
    let models_dir = config.models_dir();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let options = |draft_tokens| GeneratorOptions {
        threads,
        max_concurrent: 1,
        context_tokens: 4096,
        batch_tokens: 512,
        // The same prompt runs twice: the second must evaluate all of it to measure prefill.
        reuse_prefix: false,
        draft_tokens,
    };
    let models: Vec<_> = catalog::CATALOG
        .iter()
        .filter(|e| e.kind == ModelKind::Generation)
        .map(|e| (e.name, e.load_path(&models_dir)))
        .filter(|(name, path)| {
            let found = path.is_file();
            if !found {
                println!("{name} not downloaded; skipping it");
            }
            found
        })
        .collect();
    println!(
        "## Local generation (llama.cpp, {threads} threads, greedy, 64 new tokens, RAG prompt, no drafting)\n"
    );
    println!(
        "| model | prompt tokens | prefill tok/s (ours) | prefill tok/s (llama.cpp) | decode tok/s (ours) | decode tok/s (llama.cpp) |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, path) in &models {
        let generator = GgufGenerator::load(path, &options(0)).unwrap();
        let (s, _) = generate_twice(&generator);
        println!(
            "| {name} | {} | {:.0} | {:.0} | {:.1} | {:.1} |",
            s.prompt_tokens,
            s.prefill_tokens_per_sec(),
            s.llama_cpp.prefill_tokens_per_sec(),
            s.decode_tokens_per_sec(),
            s.llama_cpp.decode_tokens_per_sec(),
        );
    }
    println!();
    println!("## Prompt-lookup drafting (the same runs, `providers.local.draft_tokens`)\n");
    println!(
        "| model | draft tokens | completion tokens | decode calls | guesses checked / kept | decode tok/s | same text as without drafting |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, path) in &models {
        let mut plain = None;
        for draft_tokens in [0, 4, 8, 16] {
            let generator = GgufGenerator::load(path, &options(draft_tokens)).unwrap();
            let (s, text) = generate_twice(&generator);
            let plain = plain.get_or_insert(text.clone());
            println!(
                "| {name} | {draft_tokens} | {} | {} | {} / {} | {:.1} | {} |",
                s.completion_tokens,
                s.decode_calls,
                s.drafted_tokens,
                s.accepted_tokens,
                s.decode_tokens_per_sec(),
                if *plain == text { "yes" } else { "no" },
            );
        }
    }
    println!();
}

fn embeddings() {
    let models_dir = Config::load(None).unwrap().models_dir();
    let Some(entry) = catalog::find("all-minilm-l6-v2") else {
        return;
    };
    let dir = entry.load_path(&models_dir);
    if !dir.join("model.safetensors").is_file() {
        println!("MiniLM not downloaded; skipping embedding figures");
        return;
    }
    let embedder = BertEmbedder::load(&dir).unwrap();
    let texts: Vec<String> = (0..256)
        .map(|i| format!("Employees in office {i} may request remote work for up to {} days per month after approval.", i % 10))
        .collect();
    embedder.embed(&texts[..32]).unwrap();
    let started = Instant::now();
    embedder.embed(&texts).unwrap();
    let batch_rate = texts.len() as f64 / started.elapsed().as_secs_f64();
    let mut single = Vec::new();
    for text in texts.iter().take(50) {
        let t = Instant::now();
        embedder.embed(std::slice::from_ref(text)).unwrap();
        single.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    single.sort_by(f64::total_cmp);
    println!("## Embeddings (MiniLM-L6, candle, CPU)\n");
    println!(
        "| batch throughput (texts/s, batches of 32, ~20 tokens each) | single query p50 ms | single query p99 ms |"
    );
    println!("|---|---|---|");
    println!(
        "| {batch_rate:.0} | {:.1} | {:.1} |",
        percentile(&single, 0.5),
        percentile(&single, 0.99)
    );
}
