//! Prompt changes gated like code: `askacme prompts activate NAME VERSION` runs the suites
//! that gate the prompt against the candidate version and records the activation only when
//! they pass (or when forced, with the reason); a rollback needs no gate. Every gate run is
//! stored like any other run, with the trigger `gate`.

use super::backend::Backend;
use super::judge::Judge;
use super::runner::{self, RunError, RunOptions, SuiteReport, Trigger};
use super::suite::{Suite, SuiteError};
use crate::config::Config;
use crate::prompts::{PromptError, Registry};
use crate::store::{Activation, ActivationAction, Database, StoreError, now_ms};

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Suite(#[from] SuiteError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{prompt} is already the active version")]
    AlreadyActive { prompt: String },
    #[error(
        "{prompt} has no gating suites (`[prompts.gates]` or the file's `gates`): activate it with --force --reason"
    )]
    NoGates { prompt: String },
    #[error("--force needs --reason \"…\": the override is recorded")]
    ForceWithoutReason,
    #[error(
        "`{name}` is not the assistant's prompt (`assistant.prompt = \"{assistant}\"`): suites can only test the prompt the assistant answers with"
    )]
    NotTheAssistantsPrompt { name: String, assistant: String },
}

/// The suites that gate `name@version`: `[prompts.gates]` and the file's own `gates`.
pub fn gates(
    config: &Config,
    registry: &Registry,
    name: &str,
    version: &str,
) -> Result<Vec<String>, PromptError> {
    let prompt = registry.get(name, version)?;
    let mut suites: Vec<String> = config.prompts.gates.get(name).cloned().unwrap_or_default();
    for suite in &prompt.gates {
        if !suites.contains(suite) {
            suites.push(suite.clone());
        }
    }
    Ok(suites)
}

/// What `activate` did.
#[derive(Debug)]
pub struct Gated {
    pub reports: Vec<SuiteReport>,
    /// The activation was recorded.
    pub activated: bool,
    /// One line on the gate's result, as stored.
    pub summary: String,
}

pub struct Candidate<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// Who activates: the key or the OS user.
    pub actor: &'a str,
    /// `--force --reason`: activate even when the gate fails.
    pub force_reason: Option<&'a str>,
}

/// Runs the gate of `candidate` and, when it passes (or is forced), records the activation.
#[allow(clippy::too_many_arguments)]
pub async fn activate(
    config: &Config,
    registry: &Registry,
    db: &Database,
    backend: &dyn Backend,
    judge: Option<&Judge<'_>>,
    candidate: Candidate<'_>,
) -> Result<Gated, GateError> {
    if candidate.name != config.assistant.prompt {
        return Err(GateError::NotTheAssistantsPrompt {
            name: candidate.name.to_owned(),
            assistant: config.assistant.prompt.clone(),
        });
    }
    let prompt = registry.get(candidate.name, candidate.version)?;
    if candidate.force_reason.is_some_and(|r| r.trim().is_empty()) {
        return Err(GateError::ForceWithoutReason);
    }
    if registry
        .active(candidate.name)
        .is_ok_and(|active| active.version == candidate.version)
    {
        return Err(GateError::AlreadyActive {
            prompt: prompt.id(),
        });
    }
    let names = gates(config, registry, candidate.name, candidate.version)?;
    if names.is_empty() && candidate.force_reason.is_none() {
        return Err(GateError::NoGates {
            prompt: prompt.id(),
        });
    }
    // Every suite loads before any runs: a typo in the last one must not waste the first.
    let suites = names
        .iter()
        .map(|name| Suite::for_assistant(name, config))
        .collect::<Result<Vec<_>, _>>()?;
    let options = RunOptions {
        prompt_version: Some(candidate.version.to_owned()),
        trigger: Trigger::Gate,
        // A forced activation records the full result; otherwise the verdict is enough.
        stop_when_failed: candidate.force_reason.is_none(),
        ..RunOptions::default()
    };
    let mut reports = Vec::new();
    for suite in &suites {
        let report = runner::run(suite, backend, judge, &options).await?;
        let (run, results) = report.rows();
        db.record_eval_run(&run, &results).await?;
        let failed = !report.passed();
        reports.push(report);
        if failed && candidate.force_reason.is_none() {
            break;
        }
    }
    // No gate ran: nothing passed (a forced activation without gates is a force).
    let passed = !suites.is_empty()
        && reports.len() == suites.len()
        && reports.iter().all(SuiteReport::passed);
    let summary = reports
        .iter()
        .map(|r| {
            format!(
                "{} {}/{} {}",
                r.suite,
                r.cases_passed(),
                r.cases.len() + r.not_run,
                if r.passed() { "passed" } else { "failed" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let summary = if summary.is_empty() {
        "no gating suites".to_owned()
    } else {
        summary
    };
    let action = match (passed, candidate.force_reason) {
        (true, _) => ActivationAction::Activate,
        (false, Some(_)) => ActivationAction::Force,
        (false, None) => {
            return Ok(Gated {
                reports,
                activated: false,
                summary,
            });
        }
    };
    db.record_activation(&Activation {
        id: 0,
        name: candidate.name.to_owned(),
        version: candidate.version.to_owned(),
        action,
        actor: candidate.actor.to_owned(),
        activated_at_ms: now_ms(),
        gate: summary.clone(),
        reason: candidate.force_reason.map(str::to_owned),
    })
    .await?;
    Ok(Gated {
        reports,
        activated: true,
        summary,
    })
}

/// Records a rollback of `name` to the version live before the current one; no gate runs.
/// Returns that version.
pub async fn rollback(
    registry: &Registry,
    db: &Database,
    name: &str,
    actor: &str,
    reason: Option<&str>,
) -> Result<String, GateError> {
    let activations = db.activations(Some(name)).await?;
    let target = registry.rollback_target(name, &activations)?;
    db.record_activation(&Activation {
        id: 0,
        name: name.to_owned(),
        version: target.version.clone(),
        action: ActivationAction::Rollback,
        actor: actor.to_owned(),
        activated_at_ms: now_ms(),
        gate: "none (rollback)".into(),
        reason: reason.map(str::to_owned),
    })
    .await?;
    Ok(target.version.clone())
}
