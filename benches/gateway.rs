//! `cargo bench --bench gateway`: prints the tables in docs/benchmarks.md.
//!
//! 1. Gateway added latency: the same request sent straight to a local fake OpenAI upstream and
//!    through `askacme serve` (a separate release process) to that upstream, at concurrency 1
//!    and 8; requests per second; the server's RSS.
//! 2. Local generation: prefill and decode tokens/s per GGUF model, ours (wall clock) beside
//!    llama.cpp's own counters for the same run.
//! 3. MiniLM embedding throughput and single-query latency.
//!
//! `ASKACME_BENCH_REQUESTS` (default 2000) sets the requests per latency run.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use askacme::config::Config;
use askacme::models::catalog::{self, ModelKind};
use askacme::models::embedder::{BertEmbedder, Embedder};
use askacme::models::generator::{
    ChatTurn, GenerationEvent, GeneratorOptions, GgufGenerator, SamplingParams,
};
use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};

/// Set in the child process that plays the upstream, so that the direct path and the gateway
/// path both cross a process boundary.
const UPSTREAM_ROLE: &str = "ASKACME_BENCH_UPSTREAM_PORT";

fn main() {
    askacme::providers::install_tls_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(port) = std::env::var(UPSTREAM_ROLE) {
        runtime.block_on(serve_fake_upstream(port.parse().unwrap()));
        return;
    }
    runtime.block_on(gateway_overhead());
    local_generation();
    embeddings();
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn serve_fake_upstream(port: u16) {
    let response = json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Parental leave is 16 weeks."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}
    });
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move || async move { axum::Json(response) }),
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

/// Latencies (ms, sorted), wall time, and server-reported overheads of `total` requests.
async fn run(
    client: &reqwest::Client,
    url: &str,
    total: usize,
    concurrency: usize,
) -> (Vec<f64>, Duration, Vec<f64>) {
    let body = json!({"model": "bench", "messages": [{"role": "user", "content": "How long is parental leave?"}]});
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, body) = (client.clone(), url.to_owned(), body.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut overheads = Vec::new();
                for _ in 0..total / concurrency {
                    let t = Instant::now();
                    let response = client.post(&url).json(&body).send().await.unwrap();
                    assert!(response.status().is_success(), "{}", response.status());
                    if let Some(v) = response.headers().get("x-askacme-overhead-ms") {
                        overheads.push(v.to_str().unwrap().parse::<f64>().unwrap());
                    }
                    let _: Value = response.json().await.unwrap();
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                (latencies, overheads)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut overheads = Vec::new();
    for task in tasks {
        let (l, o) = task.await.unwrap();
        latencies.extend(l);
        overheads.extend(o);
    }
    let wall = started.elapsed();
    latencies.sort_by(f64::total_cmp);
    overheads.sort_by(f64::total_cmp);
    (latencies, wall, overheads)
}

async fn gateway_overhead() {
    let total: usize = std::env::var("ASKACME_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let base_port = 20000 + (std::process::id() % 20000) as u16;
    let upstream = format!("http://127.0.0.1:{base_port}");
    let _upstream = Server(
        Command::new(std::env::current_exe().unwrap())
            .env(UPSTREAM_ROLE, base_port.to_string())
            .spawn()
            .unwrap(),
    );
    let dir = std::env::temp_dir().join(format!("askacme-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("askacme.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nwarm_up = []\n[storage]\ndata_dir = {:?}\n[providers.fake]\nkind = \"openai\"\nbase_url = \"{upstream}/v1\"\n\
             [deployments.bench]\nprovider = \"fake\"\nmodel = \"bench\"\nprice = {{ input = 2.5, output = 10 }}\n",
            dir.display().to_string()
        ),
    )
    .unwrap();
    let port = base_port + 1;
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_askacme"))
            .args([
                "--config",
                config.to_str().unwrap(),
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let gateway = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &format!("{gateway}/readyz")).await;
    wait_ready(&client, &upstream).await;
    let direct_url = format!("{upstream}/v1/chat/completions");
    let gateway_url = format!("{gateway}/v1/chat/completions");
    // Warm up connections and caches on both paths.
    run(&client, &direct_url, 200, 8).await;
    run(&client, &gateway_url, 200, 8).await;

    println!(
        "## Gateway added latency ({total} requests per row, fake upstream in its own process on loopback)\n"
    );
    println!(
        "| concurrency | direct p50 ms | direct p99 ms | via gateway p50 ms | via gateway p99 ms | added p50 ms | added p99 ms | server overhead p50 ms | gateway req/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for concurrency in [1, 8] {
        let (direct, _, _) = run(&client, &direct_url, total, concurrency).await;
        let (via, wall, overheads) = run(&client, &gateway_url, total, concurrency).await;
        println!(
            "| {concurrency} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0} |",
            percentile(&direct, 0.5),
            percentile(&direct, 0.99),
            percentile(&via, 0.5),
            percentile(&via, 0.99),
            percentile(&via, 0.5) - percentile(&direct, 0.5),
            percentile(&via, 0.99) - percentile(&direct, 0.99),
            percentile(&overheads, 0.5),
            via.len() as f64 / wall.as_secs_f64(),
        );
    }
    println!(
        "\nserver RSS after the runs: {:.1} MB\n",
        rss_mb(server.0.id())
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

const RAG_PROMPT: &str = "Answer only from the context and cite the section.\n\nContext:\n\
[1] Parental leave (HR-104): Employees who have completed six months of service receive 16 weeks of fully paid \
parental leave, to be taken within 12 months of the birth or adoption. Leave can be split into at most two blocks.\n\
[2] Annual leave (HR-101): Full-time staff accrue 25 days of annual leave per calendar year; part-time staff \
accrue pro rata. Up to 5 unused days may be carried over to 31 March of the following year.\n\
[3] Expenses (FIN-210): Claims must be filed within 30 days with itemised receipts. Meals while travelling are \
reimbursed up to 45 EUR per day.\n\nQuestion: How long is parental leave and who is eligible?";

fn local_generation() {
    let config = Config::load(None).unwrap();
    let models_dir = config.models_dir();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let options = GeneratorOptions {
        threads,
        max_concurrent: 1,
        context_tokens: 4096,
        batch_tokens: 512,
    };
    println!(
        "## Local generation (llama.cpp, {threads} threads, greedy, 64 new tokens, RAG prompt)\n"
    );
    println!(
        "| model | prompt tokens | prefill tok/s (ours) | prefill tok/s (llama.cpp) | decode tok/s (ours) | decode tok/s (llama.cpp) |"
    );
    println!("|---|---|---|---|---|---|");
    for entry in catalog::CATALOG
        .iter()
        .filter(|e| e.kind == ModelKind::Generation)
    {
        let path = entry.load_path(&models_dir);
        if !path.is_file() {
            println!("| {} | not downloaded | | | | |", entry.name);
            continue;
        }
        let generator = GgufGenerator::load(&path, &options).unwrap();
        let params = SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            max_tokens: Some(64),
            stop: Vec::new(),
            seed: 0,
        };
        let turns = vec![ChatTurn {
            role: "user".into(),
            content: RAG_PROMPT.into(),
        }];
        // One warm-up run, then the measured one.
        let mut stats = None;
        for _ in 0..2 {
            let mut events = generator.generate(turns.clone(), params.clone());
            while let Some(event) = events.blocking_recv() {
                match event {
                    GenerationEvent::Done(s) => stats = Some(s),
                    GenerationEvent::Failed(e) => panic!("{e}"),
                    GenerationEvent::Text(_) => {}
                }
            }
        }
        let s = stats.unwrap();
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.1} | {:.1} |",
            entry.name,
            s.prompt_tokens,
            s.prefill_tokens_per_sec(),
            s.llama_cpp.prefill_tokens_per_sec(),
            s.decode_tokens_per_sec(),
            s.llama_cpp.decode_tokens_per_sec(),
        );
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
