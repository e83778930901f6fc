//! `cargo bench --bench cache`: the response cache's tables in docs/benchmarks.md.
//!
//! 1. Exact-hit latency through the HTTP server: `/v1/chat/completions` served from the cache
//!    against the same request answered by a fake upstream (both in this process, loopback).
//! 2. Semantic lookup latency: the question's embedding (MiniLM) and the nearest-question
//!    search at 10k and 100k cached questions in one scope.
//! 3. The semantic cache's guard on the held-out test split of the labelled pairs
//!    (evals/semantic/test.toml): per family, the threshold table, and the guard's latency.
//! 4. Money saved on a replayed log of 1,000 assistant questions with realistic repetition
//!    (see `replay_log`), answered through the pipeline with a priced fake model.
//!
//! Needs `askacme models fetch all-minilm-l6-v2`.

// A benchmark whose setup fails should stop loudly, not measure something else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use askacme::cache::CacheStatus;
use askacme::cache::guard::{Guard, Lexicon};
use askacme::cache::semantic::{Probe, SemanticCache};
use askacme::config::DEFAULT_LEXICON;
use askacme::eval::retrieval::LabelledSet;
use askacme::eval::semantic::{self, Expect, PairSet};
use askacme::gateway::{RequestContext, new_request_id};
use askacme::kb::embed::GatewayEmbedder;
use askacme::pipeline::AskRequest;
use askacme::providers::types::{EmbeddingInput, EmbeddingRequest};
use askacme::store::SemanticEntry;
use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};

mod support;
use support::{app, ingest_roots, percentile, repo};

fn main() {
    askacme::providers::install_tls_provider();
    let runtime = support::runtime();
    runtime.block_on(async {
        let upstream = fake_upstream().await;
        exact_hits(&upstream).await;
        semantic_lookup().await;
        guard_on_test_split().await;
        replay_savings(&upstream).await;
    });
}

/// An OpenAI-style upstream that answers every chat request with a cited, figure-free answer
/// (so the assistant's grounding accepts it) and 2,000 prompt + 300 completion tokens.
async fn fake_upstream() -> String {
    let app = Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            axum::Json(json!({
                "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "bench",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "The handbook covers this [1]."}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 2000, "completion_tokens": 300, "total_tokens": 2300}
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

/// A priced deployment (gpt-4o-mini's list prices) on the fake upstream, and every assistant
/// category routed to it.
fn priced(upstream: &str) -> String {
    let routes = support::routes_to("priced");
    format!(
        "[server]\nwarm_up = []\n[providers.fake]\nkind = \"openai\"\nbase_url = \"{upstream}\"\n\
         [deployments.priced]\nprovider = \"fake\"\nmodel = \"bench\"\nprice = {{ input = 0.15, output = 0.6 }}\n\
         [assistant.routes]\n{routes}"
    )
}

async fn exact_hits(upstream: &str) {
    let (state, _dir) = app(&priced(upstream)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let serving = state.clone();
    tokio::spawn(async move { askacme::server::serve(listener, serving, 1 << 20).await });
    let client = reqwest::Client::new();
    let url = format!("{base}/v1/chat/completions");
    let body = |n: usize| {
        json!({"model": "priced", "temperature": 0,
               "messages": [{"role": "user", "content": format!("How long is parental leave? ({n})")}]})
    };
    let timed = |body: Value| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let t = Instant::now();
            let response = client.post(&url).json(&body).send().await.unwrap();
            let cache = response.headers()["x-askacme-cache"]
                .to_str()
                .unwrap()
                .to_owned();
            let _: Value = response.json().await.unwrap();
            (t.elapsed().as_secs_f64() * 1000.0, cache)
        }
    };
    // Misses: distinct requests, each answered by the upstream (and stored).
    let mut misses = Vec::new();
    for n in 0..500 {
        let (ms, cache) = timed(body(n)).await;
        assert_eq!(cache, "miss");
        misses.push(ms);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut hits = Vec::new();
    for round in 0..4 {
        for n in 0..500 {
            let (ms, cache) = timed(body(n)).await;
            assert_eq!(cache, "exact", "round {round}");
            hits.push(ms);
        }
    }
    misses.sort_by(f64::total_cmp);
    hits.sort_by(f64::total_cmp);
    println!(
        "## Exact cache through the HTTP server (client, server and fake upstream in one process, loopback)\n"
    );
    println!("| path | requests | p50 ms | p99 ms |\n|---|---|---|---|");
    println!(
        "| miss (fake upstream answers, entry stored) | {} | {:.3} | {:.3} |",
        misses.len(),
        percentile(&misses, 0.5),
        percentile(&misses, 0.99)
    );
    println!(
        "| exact hit | {} | {:.3} | {:.3} |\n",
        hits.len(),
        percentile(&hits, 0.5),
        percentile(&hits, 0.99)
    );
}

async fn semantic_lookup() {
    let (state, _dir) = app("[server]\nwarm_up = []\n").await;
    let db = state.gateway.request_log().database().clone();
    // The question's embedding, as the assistant makes it.
    let ctx = RequestContext::new("bench", "bench");
    let embed = |text: String| {
        let gateway = state.gateway.clone();
        let ctx = ctx.child(&new_request_id(), "bench");
        async move {
            let request = EmbeddingRequest {
                model: "embed".into(),
                input: EmbeddingInput::One(text),
                encoding_format: None,
                dimensions: None,
                user: None,
            };
            gateway
                .embed(request, &ctx)
                .await
                .unwrap()
                .embeddings
                .vectors
                .remove(0)
        }
    };
    embed("warm up".into()).await;
    let mut embedding = Vec::new();
    for n in 0..100 {
        let t = Instant::now();
        embed(format!("How many vacation days do I get after {n} years?")).await;
        embedding.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    embedding.sort_by(f64::total_cmp);
    println!(
        "## Semantic lookup (one scope, brute-force cosine over 384-dimension MiniLM vectors)\n"
    );
    println!(
        "question embedding (MiniLM, through the gateway): p50 {:.1} ms, p99 {:.1} ms\n",
        percentile(&embedding, 0.5),
        percentile(&embedding, 0.99)
    );
    println!(
        "| cached questions | first lookup (loads the scope from SQLite) ms | search p50 ms | search p99 ms |"
    );
    println!("|---|---|---|---|");
    let mut rng = fastrand::Rng::with_seed(11);
    let mut unit = || {
        let v: Vec<f32> = (0..384).map(|_| rng.f32() - 0.5).collect();
        askacme::models::embedder::normalized(v)
    };
    for count in [10_000, 100_000] {
        let scope = format!("bench-{count}");
        let writer = SemanticCache::new(db.clone(), 0.75, guard());
        for i in 0..count {
            let entry = SemanticEntry {
                question: format!("question {i}"),
                embedding: unit(),
                answer_key: format!("key {i}"),
            };
            writer.add(&scope, entry).await;
        }
        // A fresh cache, as after a restart: the first lookup loads the scope.
        let semantic = SemanticCache::new(db.clone(), 0.75, guard());
        let query = unit();
        let t = Instant::now();
        semantic.lookup(&probe(&scope, &query), None).await;
        let first = t.elapsed().as_secs_f64() * 1000.0;
        let mut searches = Vec::new();
        for _ in 0..100 {
            let query = unit();
            let t = Instant::now();
            semantic.lookup(&probe(&scope, &query), None).await;
            searches.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        searches.sort_by(f64::total_cmp);
        println!(
            "| {count} | {first:.1} | {:.2} | {:.2} |",
            percentile(&searches, 0.5),
            percentile(&searches, 0.99)
        );
    }
    println!();
}

fn probe<'a>(scope: &'a str, vector: &'a [f32]) -> Probe<'a> {
    Probe {
        scope,
        question: "a question",
        vector,
        request_id: "bench",
        session_id: None,
    }
}

fn guard() -> std::sync::Arc<Guard> {
    std::sync::Arc::new(Guard::new(Lexicon::shared(std::path::Path::new(
        DEFAULT_LEXICON,
    ))))
}

async fn guard_on_test_split() {
    let (state, _dir) = app("[server]\nwarm_up = []\n").await;
    let set = PairSet::load(&repo("evals/semantic/test.toml")).unwrap();
    let embedder = GatewayEmbedder::new(state.gateway.clone(), "embed");
    let ctx = RequestContext::new(new_request_id(), "bench");
    let scored = semantic::score(&set.pairs, &embedder, &guard(), None, &ctx)
        .await
        .unwrap();
    println!(
        "## The semantic cache's guard on the held-out test split ({} pairs)\n",
        scored.len()
    );
    println!("At the default threshold 0.75:\n");
    println!("{}", semantic::family_table(&scored, 0.75));
    println!("{}", semantic::threshold_table(&scored));
    let (p50, p95, max) = semantic::guard_latency(&scored);
    println!(
        "guard latency per candidate: p50 {:.3} ms, p95 {:.3} ms, max {:.3} ms\n",
        p50.as_secs_f64() * 1000.0,
        p95.as_secs_f64() * 1000.0,
        max.as_secs_f64() * 1000.0
    );
}

/// 1,000 questions as employees would ask them: drawn with a Zipf-like popularity (weight
/// 1/rank^1.1, a fixed seed) from the 49 labelled handbook questions, the 30 handbook
/// paraphrase pairs of evals/semantic/dev.toml and the 6 unanswerable questions; a fifth of the draws of a
/// question that has a paraphrase use the paraphrase instead, and a tenth of all draws change
/// case or spacing ("how long is  Parental leave?").
fn replay_log() -> Vec<String> {
    let labelled = LabelledSet::load(&repo("evals/handbook_questions.toml")).unwrap();
    let pairs = PairSet::load(&repo("evals/semantic/dev.toml")).unwrap();
    // (question, paraphrase)
    let mut pool: Vec<(String, Option<String>)> = labelled
        .questions
        .iter()
        .map(|q| (q.q.clone(), None))
        .chain(labelled.unanswerable.iter().map(|q| (q.q.clone(), None)))
        .chain(
            pairs
                .pairs
                .into_iter()
                .filter(|p| p.expect == Expect::Hit && p.domain == "handbook")
                .map(|p| (p.a, Some(p.b))),
        )
        .collect();
    let mut rng = fastrand::Rng::with_seed(2026);
    rng.shuffle(&mut pool);
    let weights: Vec<f64> = (1..=pool.len())
        .map(|r| 1.0 / (r as f64).powf(1.1))
        .collect();
    let total: f64 = weights.iter().sum();
    (0..1000)
        .map(|_| {
            let mut x = rng.f64() * total;
            let index = weights
                .iter()
                .position(|w| {
                    x -= w;
                    x <= 0.0
                })
                .unwrap_or(pool.len() - 1);
            let (question, paraphrase) = &pool[index];
            let mut asked = match paraphrase {
                Some(p) if rng.f64() < 0.2 => p.clone(),
                _ => question.clone(),
            };
            if rng.f64() < 0.1 {
                asked = asked.to_lowercase().replacen(' ', "  ", 1);
            }
            asked
        })
        .collect()
}

async fn replay_savings(upstream: &str) {
    let (state, _dir) = app(&priced(upstream)).await;
    ingest_roots(&state, &[repo("examples/handbook")]).await;
    let assistant = state.assistant().await.unwrap();
    let log = replay_log();
    let distinct: std::collections::BTreeSet<&String> = log.iter().collect();
    let (mut exact, mut semantic, mut miss) = (0, 0, 0);
    let (mut spent, mut saved) = (0u64, 0u64);
    let started = Instant::now();
    for question in &log {
        let ctx = RequestContext::new(new_request_id(), "bench");
        let request = AskRequest::new(question.clone());
        let answer = assistant.handle(request, &ctx).await.unwrap();
        match answer.cache {
            CacheStatus::Exact => exact += 1,
            CacheStatus::Semantic => semantic += 1,
            CacheStatus::Miss | CacheStatus::Bypass => miss += 1,
        }
        spent += answer.cost_micro_usd;
    }
    let seconds = started.elapsed().as_secs_f64();
    state.gateway.request_log().flush().await;
    for row in state
        .gateway
        .request_log()
        .database()
        .recent_requests(10_000)
        .await
        .unwrap()
    {
        saved += row.saved_micro_usd;
    }
    let without = spent + saved;
    println!("## Money saved on a replayed log of 1,000 assistant questions\n");
    println!(
        "{} distinct question texts; model priced at $0.15 / $0.60 per Mtok (2,000 + 300 tokens per answer); {seconds:.1} s for the replay\n",
        distinct.len()
    );
    println!(
        "| exact hits | semantic hits | misses | cost without cache | cost with cache | saved |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {exact} | {semantic} | {miss} | ${:.4} | ${:.4} | {:.0}% |\n",
        without as f64 / 1e6,
        spent as f64 / 1e6,
        100.0 * saved as f64 / without.max(1) as f64
    );
}
