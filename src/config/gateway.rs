//! The gateway's reliability and access sections: aliases with weights and fallbacks, the
//! retry policy, circuit breakers, and authentication.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{ConfigError, check_range};

/// An alias: the deployments that share its traffic and where to go when they all fail.
///
/// Written either as a plain list, `fast = ["a", "b"]` (tried in order: `a` serves, `b` is the
/// fallback), or as a table with weights and a fallback chain:
/// `chat = { deployments = ["a", "b"], weights = [3, 1], fallback = ["backup"] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AliasConfig {
    Ordered(Vec<String>),
    Weighted(WeightedAlias),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedAlias {
    /// Deployments that share the alias's traffic.
    pub deployments: Vec<String>,
    /// Relative share of each deployment (same length as `deployments`); equal when absent.
    #[serde(default)]
    pub weights: Vec<u32>,
    /// Aliases or deployments tried, in order, when every deployment above failed or is open.
    #[serde(default)]
    pub fallback: Vec<String>,
}

/// An alias in one shape: weighted primaries and an ordered fallback chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRoute {
    pub primaries: Vec<(String, u32)>,
    pub fallback: Vec<String>,
}

impl AliasConfig {
    pub fn route(&self) -> AliasRoute {
        match self {
            AliasConfig::Ordered(list) => AliasRoute {
                primaries: list.first().map(|d| (d.clone(), 1)).into_iter().collect(),
                fallback: list.iter().skip(1).cloned().collect(),
            },
            AliasConfig::Weighted(w) => AliasRoute {
                primaries: w
                    .deployments
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (d.clone(), w.weights.get(i).copied().unwrap_or(1)))
                    .collect(),
                fallback: w.fallback.clone(),
            },
        }
    }
}

/// Retries, deadline and the retry budget.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// Deadline for one request across all its attempts, fallbacks and backoff sleeps.
    pub request_timeout_secs: u64,
    /// Calls to the last deployment left in a request's plan (1 = no retry). While another
    /// deployment is available a failure moves there at once instead.
    pub max_attempts: u32,
    /// Backoff before retry n is a uniform random wait in [0, min(max, base·2ⁿ⁻¹)] ("full jitter").
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// A `Retry-After` longer than this sends the request to the next deployment instead of waiting.
    pub max_retry_after_secs: u64,
    /// Retries of one deployment may be at most this share of its recent first attempts…
    pub retry_budget_ratio: f64,
    /// …plus this many, so a quiet deployment can still be retried.
    pub retry_budget_min: u32,
    /// What "recent" means for the retry budget.
    pub retry_budget_window_secs: u64,
}

/// Per-deployment circuit breakers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Failure share over the window at which the breaker opens.
    pub failure_rate: f64,
    /// Fewer outcomes than this in the window never open the breaker.
    pub min_requests: u32,
    pub window_secs: u64,
    /// How long an open breaker refuses traffic before letting one probe through.
    pub cooldown_secs: u64,
}

/// The `auto` model: a nearest-centroid difficulty classifier over labelled examples.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoConfig {
    /// Alias or deployment that embeds the examples and the requests.
    pub embedding_model: String,
    /// Where easy requests go…
    pub easy: String,
    /// …and where hard ones go.
    pub hard: String,
    /// Labelled requests; both difficulties are needed. None: `auto` is not offered.
    #[serde(default)]
    pub examples: Vec<AutoExample>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoExample {
    pub text: String,
    pub difficulty: Difficulty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    Easy,
    Hard,
}

impl Difficulty {
    pub fn as_str(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Hard => "hard",
        }
    }
}

/// Who may call the API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// When false every request is served without a key.
    pub enabled: bool,
    /// A literal key or `env::NAME`; serves every model without limits and opens `/admin`.
    #[serde(default)]
    pub master_key: Option<super::Secret>,
    /// How long a valid key is trusted without reading the database again (0 = every
    /// request reads it); a revocation reaches running servers within this time.
    pub key_cache_ms: u64,
    /// A header set by the company's SSO proxy naming the signed-in person (e.g.
    /// `x-forwarded-user`): the web chat's requests carrying it need no key. Empty: off. Only
    /// for a server that is reached through that proxy alone, which must strip the header
    /// from what clients send.
    pub user_header: String,
}

pub(super) fn validate_router(router: &RouterConfig) -> Result<(), ConfigError> {
    check_range(
        "router.request_timeout_secs",
        router.request_timeout_secs,
        1..=3600,
    )?;
    check_range("router.max_attempts", router.max_attempts, 1..=10)?;
    check_range("router.backoff_base_ms", router.backoff_base_ms, 0..=60_000)?;
    check_range(
        "router.backoff_max_ms",
        router.backoff_max_ms,
        router.backoff_base_ms..=600_000,
    )?;
    check_range(
        "router.max_retry_after_secs",
        router.max_retry_after_secs,
        0..=3600,
    )?;
    check_range(
        "router.retry_budget_ratio",
        router.retry_budget_ratio,
        0.0..=10.0,
    )?;
    check_range(
        "router.retry_budget_min",
        router.retry_budget_min,
        0..=10_000,
    )?;
    check_range(
        "router.retry_budget_window_secs",
        router.retry_budget_window_secs,
        1..=3600,
    )
}

pub(super) fn validate_breaker(breaker: &BreakerConfig) -> Result<(), ConfigError> {
    // (0, 1]: a rate of 0 would open on the first outcome. Written so that NaN fails too.
    if !(breaker.failure_rate > 0.0 && breaker.failure_rate <= 1.0) {
        return Err(ConfigError::invalid(
            "breaker.failure_rate",
            format!("must be in (0, 1] (is {})", breaker.failure_rate),
        ));
    }
    check_range("breaker.min_requests", breaker.min_requests, 1..=1_000_000)?;
    check_range("breaker.window_secs", breaker.window_secs, 1..=3600)?;
    check_range("breaker.cooldown_secs", breaker.cooldown_secs, 1..=86_400)
}

/// Every target names a deployment (primaries) or an alias or deployment (fallback), weights
/// match, and no fallback chain leads back to where it started.
pub(super) fn validate_aliases(
    aliases: &BTreeMap<String, AliasConfig>,
    deployments: &BTreeSet<&str>,
) -> Result<(), ConfigError> {
    for (alias, config) in aliases {
        let key = format!("aliases.{alias}");
        if deployments.contains(alias.as_str()) {
            return Err(ConfigError::invalid(
                key,
                "has the same name as a deployment; pick another name",
            ));
        }
        let (primaries, fallback_key) = match config {
            AliasConfig::Ordered(list) => (list.as_slice(), None),
            AliasConfig::Weighted(w) => {
                if !w.weights.is_empty() && w.weights.len() != w.deployments.len() {
                    return Err(ConfigError::invalid(
                        format!("{key}.weights"),
                        "must give one weight per deployment",
                    ));
                }
                if !w.weights.is_empty() && w.weights.iter().all(|&x| x == 0) {
                    return Err(ConfigError::invalid(
                        format!("{key}.weights"),
                        "at least one weight must be positive",
                    ));
                }
                (w.deployments.as_slice(), Some(format!("{key}.fallback")))
            }
        };
        if primaries.is_empty() {
            return Err(ConfigError::invalid(
                key,
                "must list at least one deployment",
            ));
        }
        let primaries_key = match config {
            AliasConfig::Ordered(_) => key.clone(),
            AliasConfig::Weighted(_) => format!("{key}.deployments"),
        };
        for (i, target) in primaries.iter().enumerate() {
            if !deployments.contains(target.as_str()) {
                return Err(ConfigError::invalid(
                    format!("{primaries_key}[{i}]"),
                    format!("unknown deployment `{target}`"),
                ));
            }
        }
        if let (AliasConfig::Weighted(w), Some(fallback_key)) = (config, fallback_key) {
            for (i, target) in w.fallback.iter().enumerate() {
                if !deployments.contains(target.as_str()) && !aliases.contains_key(target) {
                    return Err(ConfigError::invalid(
                        format!("{fallback_key}[{i}]"),
                        format!("`{target}` is neither an alias nor a deployment"),
                    ));
                }
            }
        }
    }
    for alias in aliases.keys() {
        let mut path = vec![alias.as_str()];
        check_cycle(aliases, &mut path)?;
    }
    Ok(())
}

fn check_cycle<'a>(
    aliases: &'a BTreeMap<String, AliasConfig>,
    path: &mut Vec<&'a str>,
) -> Result<(), ConfigError> {
    let Some(current) = path.last().and_then(|a| aliases.get(*a)) else {
        return Ok(());
    };
    let AliasConfig::Weighted(w) = current else {
        return Ok(());
    };
    for next in &w.fallback {
        if !aliases.contains_key(next) {
            continue;
        }
        if path.contains(&next.as_str()) {
            return Err(ConfigError::invalid(
                format!("aliases.{}.fallback", path[0]),
                format!("fallback chain loops: {} → {next}", path.join(" → ")),
            ));
        }
        path.push(next);
        check_cycle(aliases, path)?;
        path.pop();
    }
    Ok(())
}
