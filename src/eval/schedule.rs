//! Scheduled suites (`[[eval.schedule]]`) inside `askacme serve`: each job runs when its last
//! scheduled run is older than `every`, by the one instance holding the job's lease in the
//! database, bypassing the caches (a drift canary must reach the provider). With `models`, a
//! job runs once per model, and a pass rate more than `drift_margin` below that model's first
//! scheduled run is drift: a provider's silent model update shows up here.

use serde::Serialize;

use super::backend::Backend;
use super::judge::Judge;
use super::runner::{self, RunOptions, Trigger};
use super::suite::{Suite, SuiteError};
use crate::config::Config;
use crate::store::{Database, EvalRunRow, StoreError, now_ms};

/// How long a job's lease holds: longer than any run we expect (a `golden` run with the judge
/// on the local model takes about half an hour), so a second instance does not start the same
/// job while the first still runs it; after a crash, the job waits this long.
const LEASE_MS: i64 = 6 * 60 * 60 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("eval.schedule[{index}].suite: {error}")]
    Suite { index: usize, error: SuiteError },
    #[error("eval.schedule[{index}].judge: the suite has `judge` assertions; set `judge = true`")]
    NeedsJudge { index: usize },
}

struct Job {
    suite: Suite,
    model: Option<String>,
    every_ms: i64,
    judge: bool,
    drift_margin: f64,
}

impl Job {
    fn name(&self) -> String {
        format!(
            "schedule:{}@{}",
            self.suite.name,
            self.model.as_deref().unwrap_or("routes")
        )
    }
}

pub struct Scheduler {
    jobs: Vec<Job>,
    /// This process, as a lease holder.
    holder: String,
}

/// The drift canary's figures for one suite and model.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Drift {
    pub suite: String,
    pub model: Option<String>,
    /// The first scheduled run's pass rate.
    pub baseline: f64,
    pub latest: f64,
    pub latest_at_ms: i64,
    pub drifted: bool,
}

fn pass_rate(run: &EvalRunRow) -> f64 {
    f64::from(run.cases_passed) / f64::from(run.cases.max(1))
}

impl Scheduler {
    /// Every scheduled suite loaded now: a missing or broken suite stops start-up.
    pub fn from_config(config: &Config) -> Result<Self, ScheduleError> {
        let mut jobs = Vec::new();
        for (index, schedule) in config.eval.schedule.iter().enumerate() {
            let suite = Suite::for_assistant(&schedule.suite, config)
                .map_err(|error| ScheduleError::Suite { index, error })?;
            if suite.needs_judge() && !schedule.judge {
                return Err(ScheduleError::NeedsJudge { index });
            }
            let models: Vec<Option<String>> = if schedule.models.is_empty() {
                vec![None]
            } else {
                schedule.models.iter().cloned().map(Some).collect()
            };
            for model in models {
                jobs.push(Job {
                    suite: suite.clone(),
                    model,
                    every_ms: schedule.every_ms(),
                    judge: schedule.judge,
                    drift_margin: schedule.drift_margin,
                });
            }
        }
        Ok(Self {
            jobs,
            holder: format!("instance_{}", uuid::Uuid::now_v7().simple()),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Runs the jobs that are due and whose lease this instance gets; returns the runs made.
    pub async fn run_due(
        &self,
        db: &Database,
        backend: &dyn Backend,
        judge: &Judge<'_>,
    ) -> Result<Vec<EvalRunRow>, StoreError> {
        let mut made = Vec::new();
        for job in &self.jobs {
            let runs = db
                .scheduled_runs(&job.suite.name, job.model.as_deref())
                .await?;
            let now = now_ms();
            let due = runs
                .as_ref()
                .is_none_or(|(_, latest)| now - latest.started_at_ms >= job.every_ms);
            if !due
                || !db
                    .take_lease(&job.name(), &self.holder, now, now + LEASE_MS)
                    .await?
            {
                continue;
            }
            // Another instance may have run it between our look and our lease: look again.
            let runs = db
                .scheduled_runs(&job.suite.name, job.model.as_deref())
                .await?;
            if runs
                .as_ref()
                .is_some_and(|(_, latest)| now_ms() - latest.started_at_ms < job.every_ms)
            {
                continue;
            }
            let options = RunOptions {
                model: job.model.clone(),
                trigger: Trigger::Schedule,
                ..RunOptions::default()
            };
            let report = match runner::run(
                &job.suite,
                backend,
                job.judge.then_some(judge),
                &options,
            )
            .await
            {
                Ok(report) => report,
                Err(e) => {
                    tracing::warn!(job = job.name(), error = %e, "scheduled suite cannot run");
                    continue;
                }
            };
            let (run, results) = report.rows();
            db.record_eval_run(&run, &results).await?;
            let baseline = runs.map_or(pass_rate(&run), |(first, _)| pass_rate(&first));
            let latest = pass_rate(&run);
            if latest < baseline - job.drift_margin {
                tracing::warn!(
                    suite = job.suite.name,
                    model = job.model.as_deref().unwrap_or("routes"),
                    baseline,
                    latest,
                    "drift: the scheduled suite's pass rate fell below its first run's"
                );
            } else {
                tracing::info!(job = job.name(), pass_rate = latest, "scheduled suite ran");
            }
            made.push(run);
        }
        Ok(made)
    }
}

/// The drift canaries' state: every scheduled suite and model with a run.
pub async fn drift(db: &Database, config: &Config) -> Result<Vec<Drift>, StoreError> {
    let mut out = Vec::new();
    for schedule in &config.eval.schedule {
        let models: Vec<Option<&str>> = if schedule.models.is_empty() {
            vec![None]
        } else {
            schedule.models.iter().map(|m| Some(m.as_str())).collect()
        };
        for model in models {
            if let Some((first, latest)) = db.scheduled_runs(&schedule.suite, model).await? {
                let (baseline, now) = (pass_rate(&first), pass_rate(&latest));
                out.push(Drift {
                    suite: schedule.suite.clone(),
                    model: model.map(str::to_owned),
                    baseline,
                    latest: now,
                    latest_at_ms: latest.started_at_ms,
                    drifted: now < baseline - schedule.drift_margin,
                });
            }
        }
    }
    Ok(out)
}
