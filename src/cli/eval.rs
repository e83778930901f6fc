//! `askacme eval run|compare|history|judge` and `askacme prompts activate|rollback|history`:
//! argument handling and printing; the work is in `askacme::eval`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use askacme::config::Config;
use askacme::eval::backend::{Backend, InProcess, Remote};
use askacme::eval::gate::{self, Candidate};
use askacme::eval::judge::Judge;
use askacme::eval::report;
use askacme::eval::runner::{self, RunOptions, SuiteReport, Trigger};
use askacme::eval::suite::Suite;
use askacme::eval::{export, human, judging, stats};
use askacme::server::AppState;
use askacme::store::Database;
use clap::Args;

/// Where cases are answered and how.
#[derive(Args, Clone, Default)]
pub struct Target {
    /// Run against a running server instead of in this process.
    #[arg(long)]
    url: Option<String>,
    /// API key for `--url` (or ASKACME_API_KEY).
    #[arg(long, env = "ASKACME_API_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Bypass the response caches (a run with repeats does for its repeated attempts anyway).
    #[arg(long)]
    no_cache: bool,
}

#[derive(Args)]
pub struct RunArgs {
    #[arg(required = true)]
    suites: Vec<String>,
    /// Answer with this prompt version (`ask_acme@v2`) instead of the live one.
    #[arg(long)]
    prompt: Option<String>,
    /// Answer with this model instead of the route's.
    #[arg(long)]
    model: Option<String>,
    /// Attempts per case (overrides the suite's `repeat`).
    #[arg(long)]
    repeat: Option<u32>,
    /// Print the reports as JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Cases answered at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    #[command(flatten)]
    target: Target,
}

/// The assistant and gateway of this process, or a server.
struct Answerer {
    backend: Box<dyn Backend>,
    /// Kept to flush the request log when done (in-process only).
    state: Option<AppState>,
}

impl Answerer {
    async fn new(config: &Config, target: &Target) -> Result<Self> {
        let no_cache = target.no_cache;
        if let Some(url) = &target.url {
            let backend = Remote::new(
                url,
                target.key.clone(),
                config.kb.embedding_model.clone(),
                no_cache,
            );
            return Ok(Self {
                backend: Box::new(backend),
                state: None,
            });
        }
        let state = AppState::from_config(config).await?;
        let assistant = state.assistant().await?;
        let backend = InProcess {
            assistant,
            gateway: state.gateway.clone(),
            embedding_model: config.kb.embedding_model.clone(),
            no_cache,
        };
        Ok(Self {
            backend: Box::new(backend),
            state: Some(state),
        })
    }

    async fn finish(&self) {
        if let Some(state) = &self.state {
            state.gateway.request_log().flush().await;
            state.gateway.cache().flush().await;
        }
    }
}

/// `ask_acme@v2` → `v2`, checking the name is the assistant's prompt.
fn prompt_version(config: &Config, spec: &str) -> Result<String> {
    match spec.split_once('@') {
        Some((name, version)) if name == config.assistant.prompt => Ok(version.to_owned()),
        Some((name, _)) => bail!(
            "--prompt {spec}: the assistant answers with prompt `{}`, not `{name}`",
            config.assistant.prompt
        ),
        None => Ok(spec.to_owned()),
    }
}

async fn database(config: &Config) -> Result<Database> {
    Ok(Database::open(&config.storage.database_url).await?)
}

/// Runs the suites, prints and stores the reports; `Ok(false)` when any failed.
pub async fn run(config: &Config, args: RunArgs) -> Result<bool> {
    let suites = args
        .suites
        .iter()
        .map(|s| Suite::for_assistant(s, config))
        .collect::<Result<Vec<_>, _>>()?;
    let answerer = Answerer::new(config, &args.target).await?;
    let judge = Judge::from_config(answerer.backend.as_ref(), config);
    let options = RunOptions {
        prompt_version: args
            .prompt
            .as_deref()
            .map(|p| prompt_version(config, p))
            .transpose()?,
        model: args.model.clone(),
        repeat: args.repeat,
        concurrency: args.concurrency,
        trigger: Trigger::Cli,
        stop_when_failed: false,
    };
    // An unknown version fails here, not as a failure in every case.
    if let (Some(state), Some(version)) = (&answerer.state, &options.prompt_version) {
        state.prompts().get(&config.assistant.prompt, version)?;
    }
    let db = database(config).await?;
    let mut reports = Vec::new();
    for suite in &suites {
        let result = runner::run(suite, answerer.backend.as_ref(), Some(&judge), &options).await;
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                answerer.finish().await;
                return Err(e.into());
            }
        };
        let (run, results) = report.rows();
        db.record_eval_run(&run, &results).await?;
        if !args.json {
            println!("{}", report::table(&report));
        }
        reports.push(report);
    }
    answerer.finish().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit(&reports))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(reports.iter().all(SuiteReport::passed))
}

/// `eval compare SUITE --a V --b V`.
pub async fn compare(
    config: &Config,
    suite: &str,
    a: &str,
    b: &str,
    repeat: Option<u32>,
    target: &Target,
) -> Result<()> {
    let suite = Suite::for_assistant(suite, config)?;
    let answerer = Answerer::new(config, target).await?;
    let judge = Judge::from_config(answerer.backend.as_ref(), config);
    let db = database(config).await?;
    let mut reports = Vec::new();
    for version in [a, b] {
        let options = RunOptions {
            prompt_version: Some(prompt_version(config, version)?),
            repeat,
            ..RunOptions::default()
        };
        let report = runner::run(&suite, answerer.backend.as_ref(), Some(&judge), &options).await?;
        let (run, results) = report.rows();
        db.record_eval_run(&run, &results).await?;
        reports.push(report);
    }
    answerer.finish().await;
    print!("{}", report::compare(&reports[0], &reports[1]));
    Ok(())
}

pub async fn history(config: &Config, suite: Option<&str>, limit: u32) -> Result<()> {
    let runs = database(config).await?.eval_runs(suite, limit).await?;
    print!("{}", report::history(&runs));
    Ok(())
}

/// Who is acting, for the activation record: the OS user.
fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("os:{user}")
}

/// `prompts activate NAME VERSION [--force --reason]`; `Ok(false)` when the gate refused.
pub async fn activate(
    config: &Config,
    name: &str,
    version: &str,
    force: bool,
    reason: Option<&str>,
) -> Result<bool> {
    if force && reason.is_none() {
        bail!("--force needs --reason \"…\": the override is recorded");
    }
    let answerer = Answerer::new(config, &Target::default()).await?;
    let Some(state) = &answerer.state else {
        bail!("activation runs in process");
    };
    let judge = Judge::from_config(answerer.backend.as_ref(), config);
    let db = state.gateway.request_log().database().clone();
    let candidate = Candidate {
        name,
        version,
        actor: &actor(),
        force_reason: if force { reason } else { None },
    };
    let gated = gate::activate(
        config,
        state.prompts(),
        &db,
        answerer.backend.as_ref(),
        Some(&judge),
        candidate,
    )
    .await;
    answerer.finish().await;
    let gated = gated?;
    for report in &gated.reports {
        if !report.passed() {
            print!("{}", report::table(report));
        }
    }
    if gated.activated {
        println!("{name}@{version} is active ({})", gated.summary);
        Ok(true)
    } else {
        eprintln!(
            "{name}@{version} NOT activated: the gate failed ({}); nothing changed",
            gated.summary
        );
        Ok(false)
    }
}

pub async fn rollback(config: &Config, name: &str, reason: Option<&str>) -> Result<()> {
    let state = AppState::from_config(config).await?;
    let db = state.gateway.request_log().database().clone();
    let version = gate::rollback(state.prompts(), &db, name, &actor(), reason).await?;
    println!("{name}@{version} is active again (rolled back, no gate)");
    Ok(())
}

pub async fn prompt_history(config: &Config, name: &str) -> Result<()> {
    let db = database(config).await?;
    println!(
        "{:<20} {:<10} {:<9} {:<16} gate / reason",
        "when (UTC)", "version", "action", "who"
    );
    for a in db.activations(Some(name)).await? {
        println!(
            "{:<20} {:<10} {:<9} {:<16} {}{}",
            report::utc(a.activated_at_ms),
            a.version,
            a.action.as_str(),
            a.actor,
            a.gate,
            a.reason.map(|r| format!(" — {r}")).unwrap_or_default()
        );
    }
    Ok(())
}

/// `eval judge`: rubric scores of the candidate's answers to a suite's cases with a
/// reference, and with a baseline, pairwise verdicts in both orders.
pub async fn judge(
    config: &Config,
    suite: &str,
    candidate: Option<&str>,
    baseline: Option<&str>,
    repeat: u32,
    json: bool,
) -> Result<()> {
    let suite = Suite::for_assistant(suite, config)?;
    // Repeated verdicts must each reach the judge, not its first cached reply.
    let target = Target {
        no_cache: repeat > 1,
        ..Target::default()
    };
    let answerer = Answerer::new(config, &target).await?;
    let Some(state) = &answerer.state else {
        bail!("judging runs in process");
    };
    // The live version (activations applied), unless one is named.
    let candidate = match candidate {
        Some(candidate) => prompt_version(config, candidate)?,
        None => state
            .prompts()
            .active(&config.assistant.prompt)?
            .version
            .clone(),
    };
    let backend = answerer.backend.as_ref();
    let judge = Judge::from_config(backend, config);
    let prompt_model = state
        .prompts()
        .get(&config.assistant.prompt, &candidate)?
        .model
        .clone();
    if let Some(why) = judge
        .self_judging
        .as_ref()
        .and_then(|guard| guard.refusal(&judge.model, &prompt_model))
    {
        bail!("{why}");
    }
    let result = judging::judge_suite(
        &suite,
        backend,
        &judge,
        &candidate,
        baseline
            .map(|b| prompt_version(config, b))
            .transpose()?
            .as_deref(),
        repeat,
    )
    .await;
    answerer.finish().await;
    let report = result?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", judging::judge_table(&report));
    }
    Ok(())
}

/// `eval judge --calibrate FILE`: the judge's agreement with human labels.
pub async fn calibrate(config: &Config, file: &Path, json: bool) -> Result<()> {
    let set = judging::CalibrationSet::load(file)?;
    let answerer = Answerer::new(config, &Target::default()).await?;
    let judge = Judge::from_config(answerer.backend.as_ref(), config);
    let result = judging::calibrate(&set, &judge).await;
    answerer.finish().await;
    let report = result?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", judging::calibration_table(&report));
    }
    Ok(())
}

/// `eval human sample`: writes the CSV and records the items.
pub async fn human_sample(
    config: &Config,
    n: usize,
    window_ms: i64,
    seed: u64,
    raters: usize,
    out: &Path,
) -> Result<()> {
    let db = database(config).await?;
    let answers = db.production_answers(stats::since(window_ms)).await?;
    let items = human::sample(&answers, n, seed);
    human::record_sample(&db, &items).await?;
    std::fs::write(out, human::csv(&items, raters.max(1)))
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "{} of {} answers sampled (seed {seed}) into {}",
        items.len(),
        answers.len(),
        out.display()
    );
    Ok(())
}

/// `eval human import FILE…`: all files are read before anything is stored. A rater is named
/// by their columns (`ana_rating`), so two files rating the same item under the same name are
/// refused rather than one silently replacing the other.
pub async fn human_import(config: &Config, files: &[PathBuf]) -> Result<()> {
    let mut ratings = Vec::new();
    let mut seen: std::collections::BTreeMap<(String, String), String> = Default::default();
    for file in files {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {name}"))?;
        for rating in human::read_ratings(&name, &text)? {
            let key = (rating.item_id.clone(), rating.rater.clone());
            if let Some(other) = seen.insert(key, name.clone()) {
                bail!(
                    "{name} and {other} both rate {} as `{}`: name each rater's columns after them (e.g. `ana_rating`); nothing imported",
                    rating.item_id,
                    rating.rater
                );
            }
            ratings.push(rating);
        }
    }
    let db = database(config).await?;
    if let Err(item) = db
        .record_human_ratings(&ratings, askacme::store::now_ms())
        .await?
    {
        bail!(
            "item `{item}` is in no sample (`askacme eval human sample` records them); nothing imported"
        );
    }
    println!("{} ratings imported", ratings.len());
    Ok(())
}

pub async fn human_agreement(config: &Config, with_judge: bool, json: bool) -> Result<()> {
    let db = database(config).await?;
    let report = if with_judge {
        let answerer = Answerer::new(config, &Target::default()).await?;
        let judge = Judge::from_config(answerer.backend.as_ref(), config);
        let report = human::agreement(&db, Some(&judge)).await;
        answerer.finish().await;
        report?
    } else {
        human::agreement(&db, None).await?
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", human::agreement_table(&report));
    }
    Ok(())
}

/// `export finetune`: JSONL of rated answers.
pub async fn export_finetune(
    config: &Config,
    rating: &str,
    model: Option<&str>,
    window_ms: i64,
    out: &Path,
) -> Result<()> {
    let state = AppState::from_config(config).await?;
    let assistant = state.assistant().await?;
    let db = state.gateway.request_log().database().clone();
    let exported = export::finetune(&assistant, &db, rating, stats::since(window_ms), model).await;
    state.gateway.request_log().flush().await;
    let exported = exported?;
    let mut text = exported.lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "{} examples written to {}{}",
        exported.lines.len(),
        out.display(),
        if exported.skipped > 0 {
            format!(
                " ({} skipped: their prompt version is gone)",
                exported.skipped
            )
        } else {
            String::new()
        }
    );
    Ok(())
}
