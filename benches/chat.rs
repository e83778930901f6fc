//! `cargo bench --bench chat`: the tables of docs/benchmarks.md on what people wait for.
//!
//! 1. Time to first text on the labelled handbook questions with the default local model:
//!    the unstreamed answer's total, and a streamed answer's first delta and total, without
//!    and with the prompt-prefix reuse and prompt-lookup drafting, with fewer sources
//!    (`kb.top_k = 2`) and with sources cut to their best sentences (`kb.passage_sentences`);
//!    prompt and reused tokens, and how many answers still contain the labelled fact.
//! 2. The same with a remote provider (a local server speaking OpenAI's streaming format that
//!    waits before its first token, then sends a word at a time): the first delta against the
//!    provider's own first token and the end of its first sentence.
//! 3. A conversation through the gateway with the default local model: each turn's prompt
//!    tokens, how many were reused and the time to its answer, with prompt-prefix reuse on and
//!    off, with unrelated questions between the turns.
//! 4. The admin dashboard's figures over a generated log of 1M gateway requests and 200k
//!    answers (30 days): the whole `stats::dashboard` and each of its queries.
//!
//! `ASKACME_BENCH_QUESTIONS=N` (default 20) limits sections 1 and 2 to the first N answerable
//! questions; `ASKACME_BENCH_SECTIONS=first-text,remote,conversation,dashboard` picks sections.

// A benchmark whose setup fails should stop loudly, not measure something else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Instant;

use askacme::cache::CacheDirective;
use askacme::eval::retrieval::LabelledSet;
use askacme::gateway::{RequestContext, new_request_id};
use askacme::pipeline::{AskEvent, AskRequest, AskResponse, Assistant, Status};
use askacme::server::AppState;
use askacme::store::Database;

mod support;
use support::{TempDir, app, ingest_roots, percentile, repo};

fn main() {
    askacme::providers::install_tls_provider();
    let sections = std::env::var("ASKACME_BENCH_SECTIONS")
        .unwrap_or_else(|_| "first-text,remote,conversation,dashboard".into());
    let runtime = support::runtime();
    runtime.block_on(async {
        if sections.contains("first-text") {
            first_text().await;
        }
        if sections.contains("remote") {
            remote_first_text().await;
        }
        if sections.contains("conversation") {
            conversation().await;
        }
        if sections.contains("dashboard") {
            dashboard().await;
        }
    });
}

/// One question's figures.
struct Timing {
    first_delta_ms: Option<f64>,
    total_ms: f64,
    prompt_tokens: u64,
    reused_tokens: u64,
    has_fact: bool,
}

async fn app_with_handbook(extra: &str) -> (AppState, TempDir) {
    let (state, dir) = app(&format!("[server]\nwarm_up = []\n{extra}")).await;
    ingest_roots(&state, &[repo("examples/handbook")]).await;
    (state, dir)
}

async fn timed(
    state: &AppState,
    assistant: &Arc<Assistant>,
    question: &str,
    fact: &str,
    stream: bool,
) -> Timing {
    let request = AskRequest {
        cache: Some(CacheDirective::NoStore),
        ..AskRequest::new(question)
    };
    let ctx = RequestContext::new(new_request_id(), "bench");
    let started = Instant::now();
    let (answer, first): (AskResponse, Option<f64>) = if stream {
        let (events, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let work = assistant.handle_streamed(request, &ctx, events);
        tokio::pin!(work);
        let mut first = None;
        let answer = loop {
            tokio::select! {
                biased;
                Some(event) = receiver.recv() => {
                    if matches!(event, AskEvent::Delta(_)) && first.is_none() {
                        first = Some(started.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                answer = &mut work => break answer.unwrap(),
            }
        };
        (answer, first)
    } else {
        (assistant.handle(request, &ctx).await.unwrap(), None)
    };
    let total_ms = started.elapsed().as_secs_f64() * 1000.0;
    let log = state.gateway.request_log();
    log.flush().await;
    let row = log.database().request(&ctx.request_id).await.unwrap();
    let reused_tokens = row.as_ref().map_or(0, |r| r.cached_tokens);
    Timing {
        first_delta_ms: first,
        total_ms,
        prompt_tokens: answer.usage.prompt_tokens,
        reused_tokens,
        has_fact: answer.status == Status::Success
            && answer.answer.to_lowercase().contains(&fact.to_lowercase()),
    }
}

/// The first `ASKACME_BENCH_QUESTIONS` (default 20) answerable handbook questions.
fn labelled_questions() -> Vec<askacme::eval::retrieval::LabelledQuestion> {
    let limit: usize = std::env::var("ASKACME_BENCH_QUESTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let set = LabelledSet::load(&repo("evals/handbook_questions.toml")).unwrap();
    set.questions.into_iter().take(limit).collect()
}

async fn first_text() {
    let questions = labelled_questions();
    println!(
        "## Time to first text (`strong`, {} answerable handbook questions, no cache)\n",
        questions.len()
    );
    println!(
        "| configuration | mode | prompt tokens p50 | reused p50 | first delta p50 / p95 ms | total p50 / p95 ms | first delta / baseline's unstreamed total (p50) | contains the fact |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    // (label, configuration, also measured unstreamed). The first row is the baseline: neither
    // prompt-prefix reuse nor drafting, an answer as it came before streaming.
    let configurations = [
        (
            "no prefix reuse, no drafting",
            "[providers.local]\nreuse_prefix = false\ndraft_tokens = 0\n",
            true,
        ),
        ("prefix reuse, no drafting (default)", "", false),
        (
            "prefix reuse, draft_tokens = 8",
            "[providers.local]\ndraft_tokens = 8\n",
            true,
        ),
        (
            "prefix reuse, draft_tokens = 8, kb.top_k = 2",
            "[providers.local]\ndraft_tokens = 8\n[kb]\ntop_k = 2\n",
            false,
        ),
        (
            "prefix reuse, draft_tokens = 8, kb.passage_sentences = 2",
            "[providers.local]\ndraft_tokens = 8\n[kb]\npassage_sentences = 2\n",
            false,
        ),
    ];
    let mut baseline_total = None;
    for (label, extra, unstreamed) in configurations {
        let (state, _dir) = app_with_handbook(extra).await;
        let assistant = state.assistant().await.unwrap();
        // One unmeasured answer loads the model (and, with reuse, evaluates the system prompt
        // once, as a running server has).
        timed(&state, &assistant, "How long is parental leave?", "", false).await;
        let modes: &[bool] = if unstreamed { &[false, true] } else { &[true] };
        let mut own_total = None;
        for &stream in modes {
            let mut timings = Vec::new();
            for q in &questions {
                timings.push(timed(&state, &assistant, &q.q, &q.fact, stream).await);
            }
            let sorted = |f: &dyn Fn(&Timing) -> Option<f64>| {
                let mut v: Vec<f64> = timings.iter().filter_map(f).collect();
                v.sort_by(f64::total_cmp);
                v
            };
            let totals = sorted(&|t| Some(t.total_ms));
            let firsts = sorted(&|t| t.first_delta_ms);
            let prompts = sorted(&|t| Some(t.prompt_tokens as f64));
            let reused = sorted(&|t| Some(t.reused_tokens as f64));
            let p = |v: &[f64], q: f64| {
                if v.is_empty() {
                    f64::NAN
                } else {
                    percentile(v, q)
                }
            };
            if !stream {
                own_total = Some(p(&totals, 0.5));
                baseline_total = baseline_total.or(own_total);
            }
            let ratio = match (stream, baseline_total) {
                (true, Some(base)) => {
                    let first = p(&firsts, 0.5);
                    let own = own_total
                        .filter(|_| label != configurations[0].0)
                        .map(|own| format!(" ({:.0}% of its own)", 100.0 * first / own))
                        .unwrap_or_default();
                    format!("{:.0}%{own}", 100.0 * first / base)
                }
                _ => "—".into(),
            };
            let facts = timings.iter().filter(|t| t.has_fact).count();
            println!(
                "| {label} | {} | {:.0} | {:.0} | {} | {:.0} / {:.0} | {ratio} | {facts}/{} |",
                if stream { "streamed" } else { "whole" },
                p(&prompts, 0.5),
                p(&reused, 0.5),
                if stream {
                    format!("{:.0} / {:.0}", p(&firsts, 0.5), p(&firsts, 0.95))
                } else {
                    "—".into()
                },
                p(&totals, 0.5),
                p(&totals, 0.95),
                timings.len()
            );
        }
    }
    println!();
}

/// How long the remote provider takes before its first token, and between words.
const REMOTE_FIRST_TOKEN_MS: u64 = 400;
const REMOTE_WORD_MS: u64 = 25;

/// When the remote provider sent its first token and the word that ends its first sentence.
#[derive(Default, Clone, Copy)]
struct Sent {
    first_token: Option<Instant>,
    first_sentence: Option<Instant>,
}

/// A remote provider speaking OpenAI's streaming chat format: after `REMOTE_FIRST_TOKEN_MS` it
/// sends the first two sentences of source [1] of the prompt, each cited `[1]`, a word every
/// `REMOTE_WORD_MS`, recording into `sent`. Returns its `/v1` base URL.
async fn remote_provider(sent: Arc<std::sync::Mutex<Sent>>) -> String {
    use axum::response::IntoResponse;
    let handler = move |axum::Json(body): axum::Json<serde_json::Value>| {
        let sent = sent.clone();
        async move {
            let prompt = body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .and_then(|m| m["content"].as_str())
                .unwrap_or_default()
                .to_owned();
            // The line after "[1] title - heading" is source 1's text.
            let source = prompt
                .lines()
                .skip_while(|l| !l.starts_with("[1] "))
                .nth(1)
                .unwrap_or("I don't have that information.");
            let answer: String = source
                .split_inclusive(". ")
                .take(2)
                .map(|s| format!("{} [1]. ", s.trim().trim_end_matches('.')))
                .collect();
            // As OpenAI's tokens come: the space before a word travels with it.
            let words: Vec<String> = answer
                .split_whitespace()
                .enumerate()
                .map(|(i, w)| {
                    if i == 0 {
                        w.to_owned()
                    } else {
                        format!(" {w}")
                    }
                })
                .collect();
            *sent.lock().unwrap() = Sent::default();
            let chunk = |delta: serde_json::Value, finish: Option<&str>| {
                let body = serde_json::json!({
                    "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
                    "model": "remote", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                });
                bytes::Bytes::from(format!("data: {body}\n\n"))
            };
            let mut frames = Vec::new();
            for word in &words {
                frames.push((
                    word.clone(),
                    chunk(serde_json::json!({"content": word}), None),
                ));
            }
            frames.push((String::new(), chunk(serde_json::json!({}), Some("stop"))));
            let usage = serde_json::json!({
                "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
                "model": "remote", "choices": [],
                "usage": {"prompt_tokens": prompt.len() / 4, "completion_tokens": words.len(), "total_tokens": prompt.len() / 4 + words.len()},
            });
            frames.push((
                String::new(),
                bytes::Bytes::from(format!("data: {usage}\n\ndata: [DONE]\n\n")),
            ));
            let stream =
                futures::stream::unfold((frames.into_iter(), true), move |(mut frames, first)| {
                    let sent = sent.clone();
                    async move {
                        let (word, frame) = frames.next()?;
                        let wait = if first {
                            REMOTE_FIRST_TOKEN_MS
                        } else {
                            REMOTE_WORD_MS
                        };
                        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                        let mut record = sent.lock().unwrap();
                        if !word.is_empty() {
                            record.first_token.get_or_insert_with(Instant::now);
                            if word.ends_with("].") {
                                record.first_sentence.get_or_insert_with(Instant::now);
                            }
                        }
                        drop(record);
                        Some((Ok::<_, std::convert::Infallible>(frame), (frames, false)))
                    }
                });
            (
                [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
                axum::body::Body::from_stream(stream),
            )
                .into_response()
        }
    };
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

async fn remote_first_text() {
    let questions = labelled_questions();
    let sent = Arc::new(std::sync::Mutex::new(Sent::default()));
    let base_url = remote_provider(sent.clone()).await;
    let (state, _dir) = app_with_handbook(&format!(
        "[providers.remote]\nkind = \"openai\"\nbase_url = \"{base_url}\"\n\
         [deployments.remote-model]\nprovider = \"remote\"\nmodel = \"remote\"\n\
         price = {{ input = 0.15, output = 0.6 }}\n\
         [aliases]\nstrong = [\"remote-model\"]\n[assistant.routes]\n{}",
        support::routes_to("strong")
    ))
    .await;
    let assistant = state.assistant().await.unwrap();
    let (mut after_token, mut after_sentence) = (Vec::new(), Vec::new());
    for q in &questions {
        let started = Instant::now();
        let timing = timed(&state, &assistant, &q.q, &q.fact, true).await;
        let record = *sent.lock().unwrap();
        let (Some(first), Some(token), Some(sentence)) = (
            timing.first_delta_ms,
            record.first_token,
            record.first_sentence,
        ) else {
            continue;
        };
        let at = |instant: Instant| instant.duration_since(started).as_secs_f64() * 1000.0;
        after_token.push(first - at(token));
        after_sentence.push(first - at(sentence));
    }
    after_token.sort_by(f64::total_cmp);
    after_sentence.sort_by(f64::total_cmp);
    println!(
        "## Time to first text with a remote provider ({} of {} questions streamed a first delta; provider: first token after {REMOTE_FIRST_TOKEN_MS} ms, then a word every {REMOTE_WORD_MS} ms)\n",
        after_token.len(),
        questions.len()
    );
    println!("| first delta after | p50 ms | p95 ms |");
    println!("|---|---|---|");
    for (label, values) in [
        ("the provider's first token", &after_token),
        ("the provider's end of the first sentence", &after_sentence),
    ] {
        if !values.is_empty() {
            println!(
                "| {label} | {:.1} | {:.1} |",
                percentile(values, 0.5),
                percentile(values, 0.95)
            );
        }
    }
    println!();
}

/// Fills the log with `requests` gateway rows and `answers` answers over 30 days, in SQL.
async fn generate_log(db: &Database, requests: u64, answers: u64) {
    let now = askacme::store::now_ms();
    let span = 30 * 86_400_000_i64;
    db.execute_script(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {requests}) \
         INSERT INTO requests (id, created_at_ms, key_id, endpoint, requested_model, deployment, \
         provider, stream, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, \
         cost_micro_usd, latency_ms, provider_latency_ms, status, http_status) \
         SELECT 'gen_' || i, {now} - (i * 7919) % {span}, 'key_' || (i % 20), '/v1/chat/completions', \
         CASE i % 3 WHEN 0 THEN 'strong' WHEN 1 THEN 'fast' ELSE 'embed' END, 'd' || (i % 3), 'local', 0, \
         100 + i % 900, i % 200, 0, 0, i % 5000, 50 + i % 4000, 40 + i % 4000, 'success', 200 FROM n;\n\
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {answers}) \
         INSERT INTO answers (request_id, created_at_ms, endpoint, key_id, session_id, user, question, \
         answer, status, category, prompt_version, model, cache, cost_micro_usd, saved_micro_usd, \
         latency_ms, escalated, stage_latency_json) \
         SELECT 'ans_' || i, {now} - (i * 7919) % {span}, '/v1/ask', 'key_' || (i % 20), NULL, NULL, \
         'Question number ' || (i % 5000) || '?', 'An answer.', \
         CASE WHEN i % 10 = 0 THEN 'no_answer' WHEN i % 50 = 1 THEN 'filtered' ELSE 'success' END, \
         'faq', 'ask_acme@v3', 'strong', CASE i % 4 WHEN 0 THEN 'exact' ELSE 'miss' END, i % 5000, 0, \
         1000 + i % 8000, 0, \
         '{{\"input_guard\":0.2,\"embed\":12.5,\"retrieve\":' || (i % 7) || '.5,\"generate\":' || (1000 + i % 8000) || '.0}}' \
         FROM n;\n\
         INSERT INTO feedback (request_id, created_at_ms, rating, comment, escalated) \
         SELECT request_id, created_at_ms + 1000, CASE WHEN rowid % 3 = 0 THEN 'down' ELSE 'up' END, \
         NULL, 0 FROM answers WHERE rowid % 25 = 0;"
    ))
    .await
    .unwrap();
}

/// The user's side of the conversation: the handbook's own questions, each following on.
const CONVERSATION: [&str; 4] = [
    "How long is parental leave at Acme?",
    "And for the secondary caregiver?",
    "Can it be split into several blocks?",
    "Who do I tell first?",
];

async fn conversation() {
    println!(
        "## A conversation with the local model (`strong`, through the gateway, greedy, 48 tokens per answer)\n"
    );
    println!("| prefix reuse | turn | prompt tokens | reused | answer ms |\n|---|---|---|---|---|");
    let system = "You are AskAcme, the internal assistant of Acme Corp. Answer employees' \
                  questions about Acme's policies in one or two short sentences.";
    for (label, extra) in [
        ("on (default)", ""),
        ("off", "[providers.local]\nreuse_prefix = false\n"),
    ] {
        let (state, _dir) = app(&format!("[server]\nwarm_up = []\n{extra}")).await;
        let ask = |messages: &[serde_json::Value]| {
            serde_json::from_value::<askacme::providers::types::ChatRequest>(serde_json::json!({
                "model": "strong", "temperature": 0, "max_tokens": 48, "cache": "no-store",
                "messages": messages,
            }))
            .unwrap()
        };
        let ctx = || RequestContext::new(new_request_id(), "bench");
        // Loads the model.
        let warm = [serde_json::json!({"role": "user", "content": "Hello"})];
        state.gateway.complete(ask(&warm), &ctx()).await.unwrap();
        let mut messages = vec![serde_json::json!({"role": "system", "content": system})];
        for (turn, question) in CONVERSATION.iter().enumerate() {
            messages.push(serde_json::json!({"role": "user", "content": question}));
            let started = Instant::now();
            let completion = state
                .gateway
                .complete(ask(&messages), &ctx())
                .await
                .unwrap();
            let answer_ms = started.elapsed().as_secs_f64() * 1000.0;
            let usage = completion.response.usage.unwrap_or_default();
            println!(
                "| {label} | {} | {} | {} | {answer_ms:.0} |",
                turn + 1,
                usage.prompt_tokens,
                usage.cached_tokens(),
            );
            let text = completion.response.text();
            messages.push(serde_json::json!({"role": "assistant", "content": text}));
            // Someone else's question between the turns, with the same system prompt.
            let other = [
                messages[0].clone(),
                serde_json::json!({"role": "user", "content": format!("Unrelated question {turn}: what is the VPN?")}),
            ];
            state.gateway.complete(ask(&other), &ctx()).await.unwrap();
        }
    }
    println!();
}

async fn dashboard() {
    let (requests, answers) = (1_000_000, 200_000);
    let (state, _dir) = app("").await;
    let db = state.gateway.request_log().database().clone();
    let started = Instant::now();
    generate_log(&db, requests, answers).await;
    let generated = started.elapsed().as_secs_f64();
    println!(
        "## Admin dashboard over {requests} gateway requests and {answers} answers (30 days; generated in {generated:.1} s)\n"
    );
    println!("| query | window 24h ms | window 7d ms | window 30d ms |");
    println!("|---|---|---|---|");
    type Query = for<'a> fn(
        &'a Database,
        i64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;
    let queries: [(&str, Query); 6] = [
        ("whole dashboard (`stats::dashboard`)", |db, since| {
            Box::pin(async move {
                askacme::eval::stats::dashboard(db, since).await.unwrap();
            })
        }),
        (
            "answers per day, model, key, prompt version and category",
            |db, since| {
                Box::pin(async move {
                    db.answer_cells(since).await.unwrap();
                })
            },
        ),
        ("requests per day and model", |db, since| {
            Box::pin(async move {
                db.requests_by_day(since).await.unwrap();
            })
        }),
        ("latency per stage", |db, since| {
            Box::pin(async move {
                db.stage_latencies(since).await.unwrap();
            })
        }),
        ("top questions", |db, since| {
            Box::pin(async move {
                db.top_questions(since, None, 10).await.unwrap();
            })
        }),
        ("recent feedback", |db, since| {
            Box::pin(async move {
                db.recent_feedback(since, 20).await.unwrap();
            })
        }),
    ];
    for (label, query) in queries {
        let mut cells = Vec::new();
        for window in ["24h", "7d", "30d"] {
            let since =
                askacme::eval::stats::since(askacme::config::parse_duration_ms(window).unwrap());
            query(&db, since).await; // warm the page cache
            let mut runs = Vec::new();
            for _ in 0..3 {
                let started = Instant::now();
                query(&db, since).await;
                runs.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            runs.sort_by(f64::total_cmp);
            cells.push(format!("{:.0}", runs[1]));
        }
        println!("| {label} | {} |", cells.join(" | "));
    }
    println!("\nMedian of 3 runs after one warm-up, release build, SQLite in WAL mode.\n");
    answer_writes(&db).await;
}

/// What keeping the sums costs each answer written: `record_answer` on the million-row log
/// with the rollup triggers, then with the answers' triggers dropped.
async fn answer_writes(db: &Database) {
    let write = |n: usize, tag: &'static str| async move {
        let mut times = Vec::new();
        for i in 0..n {
            let row = askacme::store::AnswerRow {
                request_id: format!("write_{tag}_{i}"),
                created_at_ms: askacme::store::now_ms(),
                endpoint: "/v1/ask".into(),
                key_id: Some(format!("key_{}", i % 20)),
                session_id: None,
                user: None,
                question: format!("Question number {}?", i % 5000),
                answer: "An answer.".into(),
                status: "success".into(),
                category: "faq".into(),
                prompt_version: "ask_acme@v3".into(),
                model: Some("strong".into()),
                cache: "miss".into(),
                cost_micro_usd: 100,
                saved_micro_usd: 0,
                latency_ms: 2500.0,
                escalated: false,
                rephrased: false,
                standalone: None,
                stage_latency_json: Some(
                    "{\"input_guard\":0.2,\"embed\":12.5,\"retrieve\":3.5,\"generate\":2400.0}"
                        .into(),
                ),
            };
            let started = Instant::now();
            db.record_answer(&row).await.unwrap();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        times
    };
    println!("| writing one answer (300 in a row, on the generated log) | p50 ms | p95 ms |");
    println!("|---|---|---|");
    let with = write(300, "with").await;
    db.execute_script(
        "DROP TRIGGER answers_rollup_insert; DROP TRIGGER answers_rollup_before_update; \
         DROP TRIGGER answers_rollup_after_update; DROP TRIGGER answers_rollup_delete;",
    )
    .await
    .unwrap();
    let without = write(300, "without").await;
    for (label, times) in [
        ("with the rollup triggers", &with),
        ("without (triggers dropped)", &without),
    ] {
        println!(
            "| {label} | {:.2} | {:.2} |",
            percentile(times, 0.5),
            percentile(times, 0.95)
        );
    }
    println!();
}
