//! The runner: every case of a suite, `repeat` times, its assertions checked; a case's pass
//! rate is passes / attempts and it passes when that meets the suite's `min_pass_rate`;
//! `pass^N` says whether it passed every time. A judge reply that does not parse fails its
//! assertion and is counted as unparsable, never as a pass.

use serde::Serialize;

use super::assertion::{Assertion, Check, Outcome, excerpt};
use super::backend::{Backend, Question};
use super::judge::Judge;
use super::suite::{Case, Input, Suite};
use crate::cache::CacheDirective;
use crate::pipeline::Overrides;
use crate::providers::types::ChatRequest;
use crate::store::{EvalResultRow, EvalRunRow, now_ms};

/// What started a run, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Cli,
    /// `askacme prompts activate`'s gate.
    Gate,
    Schedule,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Cli => "cli",
            Trigger::Gate => "gate",
            Trigger::Schedule => "schedule",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Answer with this version of the suite's prompt instead of the live one.
    pub prompt_version: Option<String>,
    /// Answer with this model instead of the route's (assistant cases) or the case's own
    /// (gateway cases).
    pub model: Option<String>,
    /// Overrides the suite's `repeat`.
    pub repeat: Option<u32>,
    /// Cases answered at once.
    pub concurrency: usize,
    pub trigger: Trigger,
    /// Stop as soon as the suite can no longer pass (a gate needs only the verdict).
    pub stop_when_failed: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            prompt_version: None,
            model: None,
            repeat: None,
            concurrency: 1,
            trigger: Trigger::Cli,
            stop_when_failed: false,
        }
    }
}

/// One attempt at a case.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub pass: bool,
    /// The first failing assertion's message.
    pub failure: Option<String>,
    /// The judge's score or the similarity, when the case has one.
    pub score: Option<f64>,
    /// The judge's reply did not parse.
    pub judge_unparsable: bool,
    /// What grading cost (the judge's calls), apart from the answer's own cost.
    pub judge_cost_micro_usd: u64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    pub id: String,
    pub tags: Vec<String>,
    pub question: String,
    pub attempts: Vec<Attempt>,
    /// passes / attempts.
    pub pass_rate: f64,
    /// Passed every attempt (`pass^N`).
    pub passed_every_time: bool,
    /// Met the suite's `min_pass_rate`.
    pub passed: bool,
}

impl CaseReport {
    pub fn first_failure(&self) -> Option<&Attempt> {
        self.attempts.iter().find(|a| !a.pass)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    pub run_id: String,
    pub suite: String,
    pub prompt_version: Option<String>,
    pub model: Option<String>,
    pub judge: Option<String>,
    pub trigger: Trigger,
    pub repeat: u32,
    pub min_pass_rate: f64,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub cases: Vec<CaseReport>,
    /// Cases not run because the suite had already failed (`stop_when_failed`).
    pub not_run: usize,
    pub cost_micro_usd: u64,
}

impl SuiteReport {
    pub fn cases_passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed).count()
    }

    /// Every case met the pass rate (and every case ran).
    pub fn passed(&self) -> bool {
        self.not_run == 0 && self.cases.iter().all(|c| c.passed)
    }

    pub fn judge_unparsable(&self) -> usize {
        self.cases
            .iter()
            .flat_map(|c| &c.attempts)
            .filter(|a| a.judge_unparsable)
            .count()
    }

    /// The rows `eval_runs` and `eval_results` store.
    pub fn rows(&self) -> (EvalRunRow, Vec<EvalResultRow>) {
        let run = EvalRunRow {
            id: self.run_id.clone(),
            suite: self.suite.clone(),
            prompt_version: self.prompt_version.clone(),
            model: self.model.clone(),
            trigger: self.trigger.as_str().to_owned(),
            repeat: self.repeat,
            started_at_ms: self.started_at_ms,
            finished_at_ms: self.finished_at_ms,
            cases: self.cases.len() as u32,
            cases_passed: self.cases_passed() as u32,
            passed: self.passed(),
            cost_micro_usd: self.cost_micro_usd,
        };
        let results = self
            .cases
            .iter()
            .flat_map(|case| {
                case.attempts
                    .iter()
                    .enumerate()
                    .map(|(i, attempt)| EvalResultRow {
                        case_id: case.id.clone(),
                        attempt: i as u32 + 1,
                        pass: attempt.pass,
                        score: attempt.score,
                        failure: attempt.failure.clone(),
                        status: attempt.outcome.status.map(|s| s.as_str().to_owned()),
                        answer: attempt.outcome.answer.clone(),
                        cost_micro_usd: attempt.outcome.cost_micro_usd,
                        latency_ms: attempt.outcome.latency_ms,
                        created_at_ms: self.finished_at_ms,
                    })
            })
            .collect();
        (run, results)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "suite {suite}: {what} needs an in-process run (a server answers with its live prompt and routes); drop --url"
    )]
    NeedsInProcess { suite: String, what: String },
    #[error("suite {0} has `judge` assertions but no judge model was given")]
    NoJudge(String),
}

/// Runs every case of `suite` against `backend`.
pub async fn run(
    suite: &Suite,
    backend: &dyn Backend,
    judge: Option<&Judge<'_>>,
    options: &RunOptions,
) -> Result<SuiteReport, RunError> {
    if !backend.overrides() {
        let fixed = suite
            .cases
            .iter()
            .filter(|c| {
                matches!(
                    &c.input,
                    Input::Ask {
                        context: Some(_),
                        ..
                    }
                )
            })
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>();
        let priced = suite
            .cases
            .iter()
            .filter(|c| {
                !c.is_ask()
                    && c.assertions
                        .iter()
                        .any(|a| matches!(a, Assertion::MaxCostUsd { .. }))
            })
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>();
        let what = if options.prompt_version.is_some() {
            Some("--prompt".to_owned())
        } else if options.model.is_some() && suite.asks_the_assistant() {
            Some("--model".to_owned())
        } else if !fixed.is_empty() {
            Some(format!("a fixed `context` (cases {})", fixed.join(", ")))
        } else if !priced.is_empty() {
            Some(format!(
                "`max_cost_usd` on gateway cases (a chat completion's body carries no cost; cases {})",
                priced.join(", ")
            ))
        } else {
            None
        };
        if let Some(what) = what {
            return Err(RunError::NeedsInProcess {
                suite: suite.name.clone(),
                what,
            });
        }
    }
    if suite.needs_judge() && judge.is_none() {
        return Err(RunError::NoJudge(suite.name.clone()));
    }
    let repeat = options.repeat.unwrap_or(suite.repeat).max(1);
    let started_at_ms = now_ms();
    // `concurrency` cases at a time; a gate stops after the first batch with a failed case
    // (with the pass rate per case, one failed case fails the suite).
    let mut cases = Vec::with_capacity(suite.cases.len());
    for batch in suite.cases.chunks(options.concurrency.max(1)) {
        let mut pending = Vec::with_capacity(batch.len());
        for case in batch {
            pending.push(run_case(
                case,
                repeat,
                suite.min_pass_rate,
                backend,
                judge,
                options,
            ));
        }
        let reports = futures::future::join_all(pending).await;
        let failed = reports.iter().any(|r| !r.passed);
        cases.extend(reports);
        if failed && options.stop_when_failed {
            break;
        }
    }
    let cost_micro_usd = cases
        .iter()
        .flat_map(|c| &c.attempts)
        .map(|a| a.outcome.cost_micro_usd + a.judge_cost_micro_usd)
        .sum::<u64>();
    let prompt_version = cases
        .iter()
        .flat_map(|c| &c.attempts)
        .find_map(|a| a.outcome.prompt_version.clone());
    Ok(SuiteReport {
        run_id: format!("eval_{}", uuid::Uuid::now_v7().simple()),
        suite: suite.name.clone(),
        prompt_version,
        model: options.model.clone(),
        judge: judge
            .filter(|_| suite.needs_judge())
            .map(|j| j.model.clone()),
        trigger: options.trigger,
        repeat,
        min_pass_rate: suite.min_pass_rate,
        started_at_ms,
        finished_at_ms: now_ms(),
        not_run: suite.cases.len() - cases.len(),
        cases,
        cost_micro_usd,
    })
}

async fn run_case(
    case: &Case,
    repeat: u32,
    min_pass_rate: f64,
    backend: &dyn Backend,
    judge: Option<&Judge<'_>>,
    options: &RunOptions,
) -> CaseReport {
    let mut attempts = Vec::with_capacity(repeat as usize);
    for _ in 0..repeat {
        attempts.push(attempt(case, repeat > 1, backend, judge, options).await);
    }
    let passes = attempts.iter().filter(|a| a.pass).count();
    let pass_rate = passes as f64 / attempts.len().max(1) as f64;
    CaseReport {
        id: case.id.clone(),
        tags: case.tags.clone(),
        question: case.question(),
        passed_every_time: passes == attempts.len(),
        passed: pass_rate >= min_pass_rate,
        pass_rate,
        attempts,
    }
}

/// One attempt; `fresh` bypasses the caches (every attempt of a repeated case must reach a
/// model, or the repeats would replay the first).
async fn attempt(
    case: &Case,
    fresh: bool,
    backend: &dyn Backend,
    judge: Option<&Judge<'_>>,
    options: &RunOptions,
) -> Attempt {
    let answered = match &case.input {
        Input::Ask {
            question,
            context,
            collection,
        } => {
            backend
                .ask(&Question {
                    question: question.clone(),
                    collection: collection.clone(),
                    fresh,
                    overrides: Overrides {
                        prompt_version: options.prompt_version.clone(),
                        model: options.model.clone(),
                        context: context.clone(),
                    },
                })
                .await
        }
        Input::Chat {
            model,
            messages,
            max_tokens,
            temperature,
        } => {
            backend
                .chat(ChatRequest {
                    model: options.model.clone().unwrap_or_else(|| model.clone()),
                    messages: messages.clone(),
                    max_tokens: *max_tokens,
                    temperature: Some(temperature.unwrap_or(0.0)),
                    cache: fresh.then_some(CacheDirective::NoStore),
                    ..ChatRequest::default()
                })
                .await
        }
    };
    let outcome = match answered {
        Ok(outcome) => outcome,
        Err(e) => {
            return Attempt {
                pass: false,
                failure: Some(format!("no answer: {e}")),
                score: None,
                judge_unparsable: false,
                judge_cost_micro_usd: 0,
                outcome: Outcome::default(),
            };
        }
    };
    let mut failure = None;
    let mut score = None;
    let mut judge_unparsable = false;
    let mut judge_cost_micro_usd = 0;
    for assertion in &case.assertions {
        let check = match assertion.check(&outcome) {
            Some(check) => check,
            None => {
                let scored = scored(case, assertion, &outcome, backend, judge).await;
                judge_unparsable |= scored.unparsable;
                judge_cost_micro_usd += scored.cost_micro_usd;
                scored.check
            }
        };
        score = score.or(check.score);
        if !check.pass && failure.is_none() {
            failure = Some(format!("{}: {}", assertion.kind(), check.message));
        }
    }
    Attempt {
        pass: failure.is_none(),
        failure,
        score,
        judge_unparsable,
        judge_cost_micro_usd,
        outcome,
    }
}

/// A scored assertion's check, whether the judge's reply failed to parse, and what the
/// judge's call cost.
struct Scored {
    check: Check,
    unparsable: bool,
    cost_micro_usd: u64,
}

impl From<Check> for Scored {
    fn from(check: Check) -> Self {
        Scored {
            check,
            unparsable: false,
            cost_micro_usd: 0,
        }
    }
}

/// Scores a `similar` or `judge` assertion.
async fn scored(
    case: &Case,
    assertion: &Assertion,
    outcome: &Outcome,
    backend: &dyn Backend,
    judge: Option<&Judge<'_>>,
) -> Scored {
    let fail = |message: String| -> Scored {
        Check {
            pass: false,
            message,
            score: None,
        }
        .into()
    };
    match assertion {
        Assertion::Similar { value, .. } => {
            let Some(reference) = value.as_ref().or(case.reference.as_ref()) else {
                return fail("no reference".into());
            };
            match backend
                .embed(vec![outcome.answer.clone(), reference.clone()])
                .await
            {
                Ok(vectors) if vectors.len() == 2 => {
                    let similarity =
                        f64::from(crate::models::embedder::cosine(&vectors[0], &vectors[1]));
                    assertion.against_score(similarity, &outcome.answer).into()
                }
                Ok(_) => fail("the embedding model returned no vectors".into()),
                Err(e) => fail(format!("cannot embed: {e}")),
            }
        }
        Assertion::Judge { rubric, .. } => {
            let Some(judge) = judge else {
                return fail("no judge model".into());
            };
            if let Some(why) = judge.refuses(outcome) {
                return fail(why);
            }
            match judge
                .rubric(
                    &case.question(),
                    case.reference.as_deref(),
                    &outcome.answer,
                    rubric.as_deref(),
                )
                .await
            {
                Ok(verdict) => {
                    let mut scored: Scored = match verdict.headline() {
                        Some(score) => assertion
                            .against_score(f64::from(score), &outcome.answer)
                            .into(),
                        None => {
                            let mut failed = fail(format!(
                                "the judge's reply is unparsable (not counted as a pass): {:?}",
                                excerpt(verdict.unparsable.as_deref().unwrap_or_default())
                            ));
                            failed.unparsable = true;
                            failed
                        }
                    };
                    scored.cost_micro_usd = verdict.cost_micro_usd;
                    scored
                }
                Err(e) => fail(format!("judge call failed: {e}")),
            }
        }
        _ => fail("not a scored assertion".into()),
    }
}
