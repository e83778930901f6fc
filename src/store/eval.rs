//! Evaluation rows: suite runs with their per-attempt results, and prompt activations.

use sqlx::Row;

use super::{Database, StoreError, get_u64, to_i64};

/// One stored suite run (`eval_runs`).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRunRow {
    pub id: String,
    pub suite: String,
    pub prompt_version: Option<String>,
    pub model: Option<String>,
    /// `cli`, `gate`, `schedule`.
    pub trigger: String,
    pub repeat: u32,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub cases: u32,
    pub cases_passed: u32,
    pub passed: bool,
    pub cost_micro_usd: u64,
}

/// One attempt at one case (`eval_results`).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResultRow {
    pub case_id: String,
    pub attempt: u32,
    pub pass: bool,
    pub score: Option<f64>,
    pub failure: Option<String>,
    pub status: Option<String>,
    pub answer: String,
    pub cost_micro_usd: u64,
    pub latency_ms: f64,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationAction {
    /// The gate passed.
    Activate,
    /// The gate was overridden (`--force --reason`).
    Force,
    /// Back to the previous version, without a gate.
    Rollback,
}

impl ActivationAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivationAction::Activate => "activate",
            ActivationAction::Force => "force",
            ActivationAction::Rollback => "rollback",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "activate" => Ok(ActivationAction::Activate),
            "force" => Ok(ActivationAction::Force),
            "rollback" => Ok(ActivationAction::Rollback),
            other => Err(StoreError::Decode(format!(
                "unknown activation action `{other}`"
            ))),
        }
    }
}

/// One row of `prompt_activations`.
#[derive(Debug, Clone, PartialEq)]
pub struct Activation {
    pub id: i64,
    pub name: String,
    pub version: String,
    pub action: ActivationAction,
    pub actor: String,
    pub activated_at_ms: i64,
    pub gate: String,
    pub reason: Option<String>,
}

impl Database {
    /// Stores a run and all its results in one transaction: a run is recorded whole or not at
    /// all.
    pub async fn record_eval_run(
        &self,
        run: &EvalRunRow,
        results: &[EvalResultRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO eval_runs (id, suite, prompt_version, model, trigger, repeat, \
             started_at_ms, finished_at_ms, cases, cases_passed, passed, cost_micro_usd) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&run.id)
        .bind(&run.suite)
        .bind(&run.prompt_version)
        .bind(&run.model)
        .bind(&run.trigger)
        .bind(run.repeat)
        .bind(run.started_at_ms)
        .bind(run.finished_at_ms)
        .bind(run.cases)
        .bind(run.cases_passed)
        .bind(run.passed)
        .bind(to_i64(run.cost_micro_usd))
        .execute(&mut *tx)
        .await?;
        for result in results {
            sqlx::query(
                "INSERT INTO eval_results (run_id, case_id, attempt, pass, score, failure, \
                 status, answer, cost_micro_usd, latency_ms, created_at_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&run.id)
            .bind(&result.case_id)
            .bind(result.attempt)
            .bind(result.pass)
            .bind(result.score)
            .bind(&result.failure)
            .bind(&result.status)
            .bind(&result.answer)
            .bind(to_i64(result.cost_micro_usd))
            .bind(result.latency_ms)
            .bind(result.created_at_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The latest runs, newest first, of `suite` or of every suite.
    pub async fn eval_runs(
        &self,
        suite: Option<&str>,
        limit: u32,
    ) -> Result<Vec<EvalRunRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM eval_runs WHERE (?1 IS NULL OR suite = ?1) \
             ORDER BY started_at_ms DESC, id DESC LIMIT ?2",
        )
        .bind(suite)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(eval_run).collect()
    }

    pub async fn eval_results(&self, run_id: &str) -> Result<Vec<EvalResultRow>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM eval_results WHERE run_id = ? ORDER BY case_id, attempt")
                .bind(run_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(EvalResultRow {
                    case_id: row.try_get("case_id")?,
                    attempt: row.try_get("attempt")?,
                    pass: row.try_get("pass")?,
                    score: row.try_get("score")?,
                    failure: row.try_get("failure")?,
                    status: row.try_get("status")?,
                    answer: row.try_get("answer")?,
                    cost_micro_usd: get_u64(row, "cost_micro_usd")?,
                    latency_ms: row.try_get("latency_ms")?,
                    created_at_ms: row.try_get("created_at_ms")?,
                })
            })
            .collect()
    }

    pub async fn record_activation(&self, activation: &Activation) -> Result<i64, StoreError> {
        let id = sqlx::query(
            "INSERT INTO prompt_activations (name, version, action, actor, activated_at_ms, \
             gate, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&activation.name)
        .bind(&activation.version)
        .bind(activation.action.as_str())
        .bind(&activation.actor)
        .bind(activation.activated_at_ms)
        .bind(&activation.gate)
        .bind(&activation.reason)
        .execute(&self.pool)
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    /// Every activation of `name` (or of every prompt), oldest first.
    pub async fn activations(&self, name: Option<&str>) -> Result<Vec<Activation>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM prompt_activations WHERE (?1 IS NULL OR name = ?1) ORDER BY id",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Activation {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    version: row.try_get("version")?,
                    action: ActivationAction::parse(row.try_get("action")?)?,
                    actor: row.try_get("actor")?,
                    activated_at_ms: row.try_get("activated_at_ms")?,
                    gate: row.try_get("gate")?,
                    reason: row.try_get("reason")?,
                })
            })
            .collect()
    }

    /// The id of the newest activation of any prompt (0 when none): a server polls it to
    /// notice an activation made by another process.
    pub async fn last_activation_id(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM prompt_activations")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

impl Database {
    /// Takes (or renews) the lease `name` for `holder` until `expires_at_ms`, unless another
    /// holder's lease is still valid at `now_ms`. Returns whether `holder` has it.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let taken = sqlx::query(
            "INSERT INTO eval_leases (name, holder, expires_at_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at_ms = excluded.expires_at_ms \
             WHERE eval_leases.expires_at_ms < ?4 OR eval_leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(expires_at_ms)
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken > 0)
    }

    /// The first and the latest scheduled run of `suite` with `model` (`None`: the routes).
    pub async fn scheduled_runs(
        &self,
        suite: &str,
        model: Option<&str>,
    ) -> Result<Option<(EvalRunRow, EvalRunRow)>, StoreError> {
        let query = |order: &'static str| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT * FROM eval_runs WHERE trigger = 'schedule' AND suite = ? AND model IS ? \
                 ORDER BY started_at_ms {order}, id {order} LIMIT 1"
            )))
        };
        let first = query("ASC")
            .bind(suite)
            .bind(model)
            .fetch_optional(&self.pool)
            .await?;
        let latest = query("DESC")
            .bind(suite)
            .bind(model)
            .fetch_optional(&self.pool)
            .await?;
        match (first, latest) {
            (Some(first), Some(latest)) => Ok(Some((eval_run(&first)?, eval_run(&latest)?))),
            _ => Ok(None),
        }
    }
}

fn eval_run(row: &sqlx::sqlite::SqliteRow) -> Result<EvalRunRow, StoreError> {
    Ok(EvalRunRow {
        id: row.try_get("id")?,
        suite: row.try_get("suite")?,
        prompt_version: row.try_get("prompt_version")?,
        model: row.try_get("model")?,
        trigger: row.try_get("trigger")?,
        repeat: row.try_get("repeat")?,
        started_at_ms: row.try_get("started_at_ms")?,
        finished_at_ms: row.try_get("finished_at_ms")?,
        cases: row.try_get("cases")?,
        cases_passed: row.try_get("cases_passed")?,
        passed: row.try_get("passed")?,
        cost_micro_usd: get_u64(row, "cost_micro_usd")?,
    })
}
