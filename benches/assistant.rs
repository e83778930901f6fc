//! `cargo bench --bench assistant`: the assistant's tables in docs/benchmarks.md.
//!
//! 1. Ingest throughput with embedding: ten copies of the sample handbook (chunks/s).
//! 2. Retrieval on the labelled handbook questions: recall@1/3/5 and MRR for BM25, dense and
//!    hybrid.
//! 3. End-to-end answers with the local `fast` and `strong` models: the share of answers that
//!    contain the expected fact, that cite the expected document, and of unanswerable questions
//!    answered `no_answer`; per-stage latency p50/p95.
//!
//! `ASKACME_BENCH_QUESTIONS=N` limits section 3 to the first N questions of each kind;
//! `ASKACME_BENCH_MODELS=strong` to the models named (default `fast,strong`).

// A benchmark whose setup fails should stop loudly, not measure something else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use askacme::cache::CacheDirective;
use askacme::eval::retrieval::{self, BM25, DENSE, HYBRID, LabelledSet, Variant};
use askacme::gateway::{RequestContext, new_request_id};
use askacme::kb::search::Mode;
use askacme::pipeline::{AskRequest, AskResponse, Assistant, StageLatency, Status};
use askacme::server::AppState;

mod support;
use support::{TempDir, app, ingest_roots, percentile, repo};

fn main() {
    askacme::providers::install_tls_provider();
    let runtime = support::runtime();
    runtime.block_on(async {
        ingest_throughput().await;
        let (state, _dir) = app_with_handbook("").await;
        recall(&state).await;
        let models = std::env::var("ASKACME_BENCH_MODELS").unwrap_or_else(|_| "fast,strong".into());
        for model in models.split(',') {
            answers(model.trim()).await;
        }
        drop(state);
    });
}

async fn app_with_handbook(extra: &str) -> (AppState, TempDir) {
    let (state, dir) = app(extra).await;
    ingest_roots(&state, &[repo("examples/handbook")]).await;
    (state, dir)
}

/// Chunks written and seconds taken to ingest `roots`.
async fn timed_ingest(state: &AppState, roots: &[PathBuf]) -> (usize, f64) {
    let started = Instant::now();
    let chunks = ingest_roots(state, roots).await;
    (chunks, started.elapsed().as_secs_f64())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

async fn ingest_throughput() {
    let (state, dir) = app("").await;
    // Warm the embedder so the figure is steady-state throughput, not model loading.
    state.gateway.warm_up("embed").await.unwrap();
    let roots: Vec<PathBuf> = (0..10)
        .map(|i| {
            let root = dir.0.join(format!("corpus/copy{i}"));
            copy_dir(&repo("examples/handbook"), &root);
            root
        })
        .collect();
    let (chunks, seconds) = timed_ingest(&state, &roots).await;
    println!("## Ingest (10 copies of examples/handbook, MiniLM embeddings, SQLite)\n");
    println!("| chunks | seconds | chunks/s |\n|---|---|---|");
    println!(
        "| {chunks} | {seconds:.2} | {:.0} |\n",
        chunks as f64 / seconds
    );
    let (_, again) = timed_ingest(&state, &roots).await;
    println!(
        "Re-ingest of the unchanged corpus: {:.0} ms.\n",
        again * 1000.0
    );
}

async fn recall(state: &AppState) {
    let assistant = state.assistant().await.unwrap();
    let set = LabelledSet::load(&repo("evals/handbook_questions.toml")).unwrap();
    let reports = retrieval::evaluate(
        assistant.retriever(),
        &set,
        &[
            BM25,
            DENSE,
            HYBRID,
            Variant {
                label: "hybrid + rerank (embedding, 8 candidates)",
                mode: Mode::Hybrid,
                rerank_candidates: Some(8),
            },
        ],
    )
    .await
    .unwrap();
    println!(
        "## Retrieval ({} labelled questions; relevant = a chunk of the expected document holding the fact)\n",
        set.questions.len()
    );
    println!("| retriever | recall@1 | recall@3 | recall@5 | MRR |\n|---|---|---|---|---|");
    for r in reports {
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} |",
            r.label, r.recall[0], r.recall[1], r.recall[2], r.mrr
        );
    }
    println!();
}

async fn answers(model: &str) {
    let routes = support::routes_to(model);
    let (state, _dir) = app_with_handbook(&format!("[assistant.routes]\n{routes}")).await;
    let assistant: Arc<Assistant> = state.assistant().await.unwrap();
    let set = LabelledSet::load(&repo("evals/handbook_questions.toml")).unwrap();
    let limit: usize = std::env::var("ASKACME_BENCH_QUESTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let ask = |question: &str| {
        let assistant = assistant.clone();
        let request = AskRequest {
            // Every question through the pipeline: the bench measures answering, not the cache.
            cache: Some(CacheDirective::NoStore),
            ..AskRequest::new(question)
        };
        async move {
            let ctx = RequestContext::new(new_request_id(), "bench");
            assistant.handle(request, &ctx).await.unwrap()
        }
    };
    let mut stages: Vec<StageLatency> = Vec::new();
    let mut totals: Vec<f64> = Vec::new();
    // Stage figures come from the questions that reached a model: a `no_answer` decided by
    // retrieval skips route and generate, and its zeros would flatter the percentiles.
    let mut record = |answer: &AskResponse| {
        if answer.model.is_some() {
            stages.push(answer.stage_latency_ms);
        }
        totals.push(answer.latency_ms);
    };
    let (mut correct, mut cites_doc, mut asked, mut ungrounded) = (0, 0, 0, 0);
    for question in set.questions.iter().take(limit) {
        let answer = ask(&question.q).await;
        record(&answer);
        asked += 1;
        ungrounded += usize::from(!answer.ungrounded.is_empty());
        let fact = question.fact.to_lowercase();
        if answer.status == Status::Success && answer.answer.to_lowercase().contains(&fact) {
            correct += 1;
        }
        if answer
            .sources
            .iter()
            .any(|s| s.cited && s.path == question.doc)
        {
            cites_doc += 1;
        }
    }
    let (mut declined, mut unanswerable) = (0, 0);
    for question in set.unanswerable.iter().take(limit) {
        let answer = ask(&question.q).await;
        record(&answer);
        unanswerable += 1;
        if answer.status == Status::NoAnswer {
            declined += 1;
        }
    }
    let share = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
    println!(
        "## Answers with `{model}` ({asked} answerable, {unanswerable} unanswerable questions)\n"
    );
    println!(
        "| contains the fact | cites the expected document | unanswerable → no_answer | answerable withheld as ungrounded |\n|---|---|---|---|"
    );
    println!(
        "| {:.0}% ({correct}/{asked}) | {:.0}% ({cites_doc}/{asked}) | {:.0}% ({declined}/{unanswerable}) | {ungrounded} |\n",
        share(correct, asked),
        share(cites_doc, asked),
        share(declined, unanswerable)
    );
    println!(
        "| stage ({} answers from a model; total over all) | p50 ms | p95 ms |\n|---|---|---|",
        stages.len()
    );
    let column = |pick: fn(&StageLatency) -> f64| stages.iter().map(pick).collect::<Vec<f64>>();
    for (name, values) in [
        ("input_guard", column(|s| s.input_guard)),
        ("embed", column(|s| s.embed)),
        ("classify", column(|s| s.classify)),
        ("retrieve", column(|s| s.retrieve)),
        ("route", column(|s| s.route)),
        ("generate", column(|s| s.generate)),
        ("output_guard", column(|s| s.output_guard)),
        ("grounding", column(|s| s.grounding)),
        ("citations", column(|s| s.citations)),
        ("total", totals.clone()),
    ] {
        let mut values = values;
        values.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.2} | {:.2} |",
            percentile(&values, 0.5),
            percentile(&values, 0.95)
        );
    }
    println!();
}
