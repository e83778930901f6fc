//! The attempt loop every gateway call goes through: walk the router's plan, skip deployments
//! whose breaker is open, fall over to the next deployment at once when one fails, retry the
//! last one left with backoff inside the retry budget and the request's deadline, and record
//! what happened on the log row. Failing over before retrying means a struggling upstream gets
//! no extra load and the caller no backoff while a healthy deployment is available.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::health::Admission;
use super::retry::{self, Failure};
use super::{Deployment, DeploymentFailure, Gateway, GatewayError};
use crate::providers::ProviderError;
use crate::store::RequestRecord;

/// Whether the loop reports a successful call to the breaker itself. A stream is only known to
/// have succeeded when it ends, so its tracker reports it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Settle {
    OnSuccess,
    ByCaller,
}

impl Gateway {
    /// Calls `call` on deployments of `model`'s plan until one succeeds, the caller is at fault,
    /// the plan runs out, or the deadline passes.
    pub(super) async fn with_failover<T, F, Fut>(
        &self,
        model: &str,
        deadline: Instant,
        settle: Settle,
        row: &mut RequestRecord,
        mut call: F,
    ) -> Result<(T, Arc<Deployment>), GatewayError>
    where
        F: FnMut(Arc<Deployment>) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut rng = fastrand::Rng::new();
        let plan = self
            .router
            .plan(model, &mut rng)
            .ok_or_else(|| GatewayError::UnknownModel(model.to_owned()))?;
        let mut trail: Vec<String> = Vec::new();
        let mut failures: Vec<DeploymentFailure> = Vec::new();
        let mut soonest_probe: Option<Duration> = None;
        for (index, candidate) in plan.iter().enumerate() {
            let Some(deployment) = self.deployments.get(&candidate.deployment).cloned() else {
                continue;
            };
            let alternative_left = plan[index + 1..].iter().any(|c| {
                self.deployments
                    .get(&c.deployment)
                    .is_some_and(|d| !d.health.refusing())
            });
            let health = &deployment.health;
            if let Admission::Refused { retry_in } = health.admit() {
                soonest_probe = Some(soonest_probe.map_or(retry_in, |s| s.min(retry_in)));
                trail.push(format!("{}: circuit open", deployment.name));
                continue;
            }
            health.first_attempt();
            deployment.stamp(row);
            row.route = Some(route_note(
                model,
                &deployment.name,
                candidate.reason.as_str(),
                &trail,
            ));
            let mut attempt = 1;
            loop {
                row.attempts += 1;
                let remaining = deadline.saturating_duration_since(Instant::now());
                let result = tokio::time::timeout(remaining, call(deployment.clone()))
                    .await
                    .unwrap_or(Err(ProviderError::Timeout(self.policy_deadline())));
                let error = match result {
                    Ok(value) => {
                        if settle == Settle::OnSuccess {
                            health.record(true);
                        }
                        if index > 0 {
                            crate::telemetry::metrics::fallback(model, &deployment.name);
                        }
                        return Ok((value, deployment));
                    }
                    Err(error) => error,
                };
                let failure = Failure::of(&error);
                health.record(failure == Failure::Caller);
                if failure == Failure::Caller || Instant::now() >= deadline {
                    failures.push(DeploymentFailure {
                        deployment: deployment.name.clone(),
                        error,
                    });
                    return Err(all_failed(model, failures));
                }
                tracing::info!(deployment = %deployment.name, attempt, error = %error, "upstream call failed");
                trail.push(format!("{}: {}", deployment.name, short(&error)));
                row.route = Some(route_note(
                    model,
                    &deployment.name,
                    candidate.reason.as_str(),
                    &trail,
                ));
                let retry_here = failure == Failure::Transient
                    && !alternative_left
                    && attempt < self.policy.max_attempts;
                let wait = retry_here
                    .then(|| {
                        retry::delay(&self.policy, attempt, retry::retry_after(&error), &mut rng)
                    })
                    .flatten()
                    .filter(|wait| {
                        Instant::now()
                            .checked_add(*wait)
                            .is_some_and(|t| t < deadline)
                    });
                failures.push(DeploymentFailure {
                    deployment: deployment.name.clone(),
                    error,
                });
                let Some(wait) = wait else { break };
                if !health.try_retry() {
                    trail.push(format!("{}: retry budget spent", deployment.name));
                    break;
                }
                tokio::time::sleep(wait).await;
                if health.admit() != Admission::Allowed {
                    break;
                }
                attempt += 1;
            }
        }
        row.route = Some(format!("{model}: no deployment left; {}", trail.join("; ")));
        if failures.is_empty() {
            return Err(GatewayError::NoHealthyDeployment {
                model: model.to_owned(),
                retry_in: soonest_probe.unwrap_or_default(),
            });
        }
        Err(all_failed(model, failures))
    }

    fn policy_deadline(&self) -> Duration {
        Duration::from_secs(self.policy.request_timeout_secs)
    }
}

/// The error of a request whose calls all failed: with one deployment tried, its last error
/// (its earlier attempts are in the route note); with several, every failed call kept.
fn all_failed(model: &str, mut failures: Vec<DeploymentFailure>) -> GatewayError {
    let one_deployment = failures
        .windows(2)
        .all(|pair| pair[0].deployment == pair[1].deployment);
    match failures.pop() {
        Some(DeploymentFailure { deployment, error }) if one_deployment => {
            GatewayError::Provider { deployment, error }
        }
        last => GatewayError::AllDeploymentsFailed {
            model: model.to_owned(),
            failures: failures.into_iter().chain(last).collect(),
        },
    }
}

/// `chat → b (weighted) after a: HTTP 503; a: HTTP 503`: the decision and what led to it.
fn route_note(model: &str, deployment: &str, reason: &str, trail: &[String]) -> String {
    let mut note = format!("{model} → {deployment} ({reason})");
    if !trail.is_empty() {
        note.push_str(" after ");
        note.push_str(&trail.join("; "));
    }
    note
}

fn short(error: &ProviderError) -> String {
    match error {
        ProviderError::Upstream { status, .. } => format!("HTTP {status}"),
        ProviderError::Timeout(_) => "timeout".into(),
        ProviderError::Connect(_) => "connect error".into(),
        ProviderError::Malformed(_) => "malformed response".into(),
        ProviderError::StreamCut(_) => "stream cut".into(),
        other => other.to_string(),
    }
}
