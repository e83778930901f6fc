//! Which failures may be retried, and how long to wait before trying again.

use std::time::Duration;

use crate::config::RouterConfig;
use crate::providers::ProviderError;

/// What a failed call means for the rest of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Transient upstream trouble (connect error, timeout, 429, 5xx, broken response): the same
    /// deployment may be retried, and it counts against the deployment's health.
    Transient,
    /// This deployment cannot serve (model missing, upstream refuses our credentials, local
    /// inference failed): go to the next one without retrying; counts against its health.
    Deployment,
    /// The request itself is at fault (4xx, unsupported feature): another attempt anywhere
    /// would fail the same way, so the caller gets the error now. Not a health failure.
    Caller,
}

impl Failure {
    pub fn of(error: &ProviderError) -> Self {
        match error {
            ProviderError::Connect(_)
            | ProviderError::Timeout(_)
            | ProviderError::Malformed(_)
            | ProviderError::StreamCut(_) => Failure::Transient,
            ProviderError::Upstream { status, .. } => match status {
                408 | 429 => Failure::Transient,
                s if *s >= 500 => Failure::Transient,
                401 | 403 | 404 => Failure::Deployment,
                _ => Failure::Caller,
            },
            ProviderError::ModelUnavailable(_) | ProviderError::Inference(_) => Failure::Deployment,
            ProviderError::Unsupported(_) | ProviderError::InvalidRequest(_) => Failure::Caller,
        }
    }
}

/// The wait before retry `retry` (1-based): the upstream's `Retry-After` when it sent one,
/// else a uniform random wait in `[0, min(max, base·2^(retry-1))]` ("full jitter", so callers
/// that failed together do not come back together). `None`: the upstream asks for a longer
/// wait than `max_retry_after_secs`, so the next deployment should be tried instead.
pub fn delay(
    policy: &RouterConfig,
    retry: u32,
    retry_after: Option<Duration>,
    rng: &mut fastrand::Rng,
) -> Option<Duration> {
    if let Some(wait) = retry_after {
        return (wait <= Duration::from_secs(policy.max_retry_after_secs)).then_some(wait);
    }
    let exponential = policy
        .backoff_base_ms
        .saturating_mul(1u64 << (retry.saturating_sub(1)).min(20));
    let cap = exponential.min(policy.backoff_max_ms);
    Some(Duration::from_millis(rng.u64(0..=cap)))
}

pub fn retry_after(error: &ProviderError) -> Option<Duration> {
    match error {
        ProviderError::Upstream { retry_after, .. } => *retry_after,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RouterConfig {
        let mut policy = crate::config::Config::load(None).unwrap().router;
        policy.backoff_base_ms = 100;
        policy.backoff_max_ms = 1000;
        policy.max_retry_after_secs = 5;
        policy
    }

    #[test]
    fn full_jitter_stays_under_the_exponential_cap() {
        let policy = policy();
        let mut rng = fastrand::Rng::with_seed(9);
        for (retry, cap) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (30, 1000),
        ] {
            let waits: Vec<u64> = (0..200)
                .map(|_| delay(&policy, retry, None, &mut rng).unwrap().as_millis() as u64)
                .collect();
            assert!(waits.iter().all(|&w| w <= cap), "retry {retry}: {waits:?}");
            // Jitter spreads the waits over the range instead of synchronising callers.
            assert!(waits.iter().any(|&w| w < cap / 4) && waits.iter().any(|&w| w > cap * 3 / 4));
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_limit() {
        let policy = policy();
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(
            delay(&policy, 1, Some(Duration::from_secs(2)), &mut rng),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            delay(&policy, 1, Some(Duration::from_secs(7)), &mut rng),
            None
        );
    }

    #[test]
    fn only_upstream_trouble_is_retried() {
        let upstream = |status| ProviderError::Upstream {
            status,
            message: String::new(),
            retry_after: None,
        };
        assert_eq!(Failure::of(&upstream(429)), Failure::Transient);
        assert_eq!(Failure::of(&upstream(503)), Failure::Transient);
        assert_eq!(Failure::of(&upstream(529)), Failure::Transient);
        assert_eq!(Failure::of(&upstream(400)), Failure::Caller);
        assert_eq!(Failure::of(&upstream(422)), Failure::Caller);
        assert_eq!(Failure::of(&upstream(401)), Failure::Deployment);
        assert_eq!(
            Failure::of(&ProviderError::Timeout(Duration::from_secs(1))),
            Failure::Transient
        );
        assert_eq!(
            Failure::of(&ProviderError::Malformed(String::new())),
            Failure::Transient
        );
    }
}
