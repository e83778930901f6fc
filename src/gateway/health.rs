//! Per-deployment health: a circuit breaker and a retry budget, both over sliding windows of
//! one-second buckets. The breaker keeps the router away from a failing deployment (and lets one
//! probe through after a cooldown); the budget caps retries at a share of recent first attempts,
//! so many callers retrying at once cannot turn an outage into a thundering herd.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{BreakerConfig, RouterConfig};

/// Two counters per second over the last `len` seconds.
#[derive(Debug)]
struct SlidingCounts {
    /// `(second, a, b)`, indexed by `second % len`; a bucket from an older second is stale.
    buckets: Vec<(u64, u64, u64)>,
}

impl SlidingCounts {
    fn new(window_secs: u64) -> Self {
        Self {
            buckets: vec![(u64::MAX, 0, 0); window_secs.max(1) as usize],
        }
    }

    fn add(&mut self, second: u64, a: u64, b: u64) {
        let len = self.buckets.len() as u64;
        let bucket = &mut self.buckets[(second % len) as usize];
        if bucket.0 != second {
            *bucket = (second, 0, 0);
        }
        bucket.1 += a;
        bucket.2 += b;
    }

    fn totals(&self, second: u64) -> (u64, u64) {
        let len = self.buckets.len() as u64;
        self.buckets
            .iter()
            .filter(|(s, _, _)| *s != u64::MAX && *s <= second && second - *s < len)
            .fold((0, 0), |(a, b), (_, x, y)| (a + x, b + y))
    }

    fn clear(&mut self) {
        self.buckets.fill((u64::MAX, 0, 0));
    }
}

/// `at + wait`, never panicking: config validation bounds every wait, so the fallback (no wait)
/// is only reached by a value from another instance that is out of range.
fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait).unwrap_or(at)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// Gauge value for metrics: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }
}

#[derive(Debug)]
enum Breaker {
    Closed,
    /// `adopted`: opened because another instance reported the deployment failing.
    Open {
        until: Instant,
        adopted: bool,
    },
    /// One probe is out; another is allowed only if it has not reported within a cooldown
    /// (its caller went away), so a lost probe cannot wedge the breaker half-open.
    HalfOpen {
        probe_sent: Instant,
    },
}

/// Whether a deployment may be called now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// The breaker is open (or its probe is out); it may admit again after this long.
    Refused {
        retry_in: Duration,
    },
}

struct Inner {
    breaker: Breaker,
    /// Breaker window: (successes, failures).
    outcomes: SlidingCounts,
    /// Retry budget window: (first attempts, retries).
    attempts: SlidingCounts,
}

/// Lifetime counters, for metrics.
#[derive(Debug, Default)]
pub struct Counters {
    pub successes: AtomicU64,
    pub failures: AtomicU64,
    pub retries: AtomicU64,
    pub retries_refused: AtomicU64,
    pub skipped_open: AtomicU64,
    /// Breaker transitions, by the state entered.
    pub entered_closed: AtomicU64,
    pub entered_half_open: AtomicU64,
    pub entered_open: AtomicU64,
}

pub struct DeploymentHealth {
    inner: Mutex<Inner>,
    epoch: Instant,
    breaker: BreakerConfig,
    budget_ratio: f64,
    budget_min: u64,
    pub counters: Counters,
}

/// What `GET /admin/providers` shows of a deployment.
#[derive(Debug, Clone, Serialize)]
pub struct HealthSnapshot {
    pub state: BreakerState,
    pub window_successes: u64,
    pub window_failures: u64,
    /// Seconds until an open breaker admits a probe.
    pub retry_in_secs: Option<f64>,
    pub budget_first_attempts: u64,
    pub budget_retries: u64,
    pub budget_retries_allowed: u64,
    pub total_successes: u64,
    pub total_failures: u64,
    pub total_retries: u64,
    pub total_retries_refused: u64,
    pub total_skipped_open: u64,
    /// How often the breaker entered each state since start.
    pub total_closed: u64,
    pub total_half_opened: u64,
    pub total_opened: u64,
}

impl DeploymentHealth {
    pub fn new(breaker: &BreakerConfig, router: &RouterConfig) -> Self {
        Self {
            inner: Mutex::new(Inner {
                breaker: Breaker::Closed,
                outcomes: SlidingCounts::new(breaker.window_secs),
                attempts: SlidingCounts::new(router.retry_budget_window_secs),
            }),
            epoch: Instant::now(),
            breaker: breaker.clone(),
            budget_ratio: router.retry_budget_ratio,
            budget_min: u64::from(router.retry_budget_min),
            counters: Counters::default(),
        }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the counters inconsistent in a way that
        // matters more than refusing all traffic would, so a poisoned lock is used as is.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks the breaker for a call. An open breaker past its cooldown turns half-open and
    /// admits this caller as its probe.
    pub fn admit(&self) -> Admission {
        let now = Instant::now();
        let cooldown = Duration::from_secs(self.breaker.cooldown_secs);
        let mut inner = self.lock();
        let admission = match inner.breaker {
            Breaker::Closed => Admission::Allowed,
            Breaker::Open { until, .. } if now < until => Admission::Refused {
                retry_in: until - now,
            },
            Breaker::HalfOpen { probe_sent } if now < later(probe_sent, cooldown) => {
                Admission::Refused {
                    retry_in: later(probe_sent, cooldown) - now,
                }
            }
            Breaker::Open { .. } | Breaker::HalfOpen { .. } => {
                self.enter(&mut inner, Breaker::HalfOpen { probe_sent: now });
                Admission::Allowed
            }
        };
        if admission != Admission::Allowed {
            self.counters.skipped_open.fetch_add(1, Ordering::Relaxed);
        }
        admission
    }

    /// Opens the breaker here for one cooldown from `now`.
    fn trip(&self, inner: &mut Inner, now: Instant) {
        let until = later(now, Duration::from_secs(self.breaker.cooldown_secs));
        self.enter(
            inner,
            Breaker::Open {
                until,
                adopted: false,
            },
        );
    }

    /// Moves the breaker to `breaker`, counting the transition.
    fn enter(&self, inner: &mut Inner, breaker: Breaker) {
        let counter = match breaker {
            Breaker::Closed => &self.counters.entered_closed,
            Breaker::HalfOpen { .. } => &self.counters.entered_half_open,
            Breaker::Open { .. } => &self.counters.entered_open,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        inner.breaker = breaker;
    }

    /// Whether `admit` would refuse now (without `admit`'s side effect of starting a probe).
    pub fn refusing(&self) -> bool {
        let now = Instant::now();
        let cooldown = Duration::from_secs(self.breaker.cooldown_secs);
        match self.lock().breaker {
            Breaker::Closed => false,
            Breaker::Open { until, .. } => now < until,
            Breaker::HalfOpen { probe_sent } => now < later(probe_sent, cooldown),
        }
    }

    /// Reports how a call ended. Only upstream trouble counts as a failure; a request the
    /// upstream rejected as malformed says nothing about its health.
    pub fn record(&self, healthy: bool) {
        let counter = if healthy {
            &self.counters.successes
        } else {
            &self.counters.failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let second = self.second(now);
        let mut inner = self.lock();
        match inner.breaker {
            Breaker::HalfOpen { .. } => {
                if healthy {
                    self.enter(&mut inner, Breaker::Closed);
                    inner.outcomes.clear();
                } else {
                    self.trip(&mut inner, now);
                }
            }
            // Late reports of calls admitted before the breaker opened change nothing.
            Breaker::Open { .. } => {}
            Breaker::Closed => {
                let (ok, failed) = if healthy { (1, 0) } else { (0, 1) };
                inner.outcomes.add(second, ok, failed);
                let (successes, failures) = inner.outcomes.totals(second);
                let total = successes + failures;
                if total >= u64::from(self.breaker.min_requests)
                    && failures as f64 >= self.breaker.failure_rate * total as f64
                {
                    self.trip(&mut inner, now);
                    tracing::warn!(failures, total, "circuit breaker opened");
                }
            }
        }
    }

    /// How long this instance's own open breaker stays open, to tell other instances; `None`
    /// when closed, half-open, or open only because another instance said so.
    pub fn opened_here(&self) -> Option<Duration> {
        match self.lock().breaker {
            Breaker::Open {
                until,
                adopted: false,
            } => until.checked_duration_since(Instant::now()),
            _ => None,
        }
    }

    /// Another instance found this deployment failing: a closed breaker opens for `remaining`
    /// (then probes on its own); one already open or probing is left alone.
    pub fn adopt_open(&self, remaining: Duration) {
        let mut inner = self.lock();
        if matches!(inner.breaker, Breaker::Closed) {
            let until = later(Instant::now(), remaining);
            self.enter(
                &mut inner,
                Breaker::Open {
                    until,
                    adopted: true,
                },
            );
            tracing::warn!(?remaining, "circuit breaker opened by another instance");
        }
    }

    /// Counts a request's first call to this deployment (the base of the retry budget).
    pub fn first_attempt(&self) {
        let second = self.second(Instant::now());
        self.lock().attempts.add(second, 1, 0);
    }

    /// Takes one retry from the budget, or says no.
    pub fn try_retry(&self) -> bool {
        let second = self.second(Instant::now());
        let mut inner = self.lock();
        let (firsts, retries) = inner.attempts.totals(second);
        if retries < self.allowed_retries(firsts) {
            inner.attempts.add(second, 0, 1);
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            self.counters
                .retries_refused
                .fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    fn allowed_retries(&self, first_attempts: u64) -> u64 {
        self.budget_min + (self.budget_ratio * first_attempts as f64).floor() as u64
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        let now = Instant::now();
        let second = self.second(now);
        let inner = self.lock();
        let (state, retry_in) = match inner.breaker {
            Breaker::Closed => (BreakerState::Closed, None),
            Breaker::Open { until, .. } => (
                BreakerState::Open,
                Some(until.saturating_duration_since(now).as_secs_f64()),
            ),
            Breaker::HalfOpen { .. } => (BreakerState::HalfOpen, None),
        };
        let (window_successes, window_failures) = inner.outcomes.totals(second);
        let (firsts, retries) = inner.attempts.totals(second);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        HealthSnapshot {
            state,
            window_successes,
            window_failures,
            retry_in_secs: retry_in,
            budget_first_attempts: firsts,
            budget_retries: retries,
            budget_retries_allowed: self.allowed_retries(firsts),
            total_successes: load(&self.counters.successes),
            total_failures: load(&self.counters.failures),
            total_retries: load(&self.counters.retries),
            total_retries_refused: load(&self.counters.retries_refused),
            total_skipped_open: load(&self.counters.skipped_open),
            total_closed: load(&self.counters.entered_closed),
            total_half_opened: load(&self.counters.entered_half_open),
            total_opened: load(&self.counters.entered_open),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(min_requests: u32, cooldown_secs: u64) -> DeploymentHealth {
        let config = crate::config::Config::load(None).unwrap();
        let breaker = BreakerConfig {
            failure_rate: 0.5,
            min_requests,
            window_secs: 30,
            cooldown_secs,
        };
        DeploymentHealth::new(&breaker, &config.router)
    }

    #[test]
    fn opens_at_the_failure_rate_only_after_min_requests() {
        let h = health(4, 60);
        h.record(false);
        h.record(false);
        h.record(false);
        assert_eq!(h.admit(), Admission::Allowed, "3 outcomes < min_requests");
        h.record(true);
        // 3 failures of 4 = 75% ≥ 50%: open.
        assert!(matches!(h.admit(), Admission::Refused { .. }));
        assert_eq!(h.snapshot().state, BreakerState::Open);
    }

    #[test]
    fn stays_closed_below_the_failure_rate() {
        let h = health(4, 60);
        for healthy in [true, true, false, true, true, false, true] {
            h.record(healthy);
        }
        assert_eq!(h.admit(), Admission::Allowed);
    }

    #[test]
    fn half_open_probe_closes_on_success_and_reopens_on_failure() {
        let h = health(1, 60);
        h.record(false);
        assert_eq!(h.snapshot().state, BreakerState::Open);
        // Pretend the cooldown passed.
        h.lock().breaker = Breaker::Open {
            until: Instant::now(),
            adopted: false,
        };
        assert_eq!(h.admit(), Admission::Allowed, "the probe");
        assert_eq!(h.snapshot().state, BreakerState::HalfOpen);
        assert!(
            matches!(h.admit(), Admission::Refused { .. }),
            "one probe at a time"
        );
        h.record(false);
        assert_eq!(h.snapshot().state, BreakerState::Open, "failed probe");
        h.lock().breaker = Breaker::Open {
            until: Instant::now(),
            adopted: false,
        };
        assert_eq!(h.admit(), Admission::Allowed);
        h.record(true);
        assert_eq!(h.snapshot().state, BreakerState::Closed, "good probe");
        assert_eq!(h.snapshot().window_failures, 0, "window starts afresh");
    }

    #[test]
    fn only_breakers_opened_here_are_shared_and_adoption_does_not_override_a_probe() {
        let h = health(1, 60);
        assert_eq!(h.opened_here(), None);
        h.record(false);
        assert!(h.opened_here().unwrap() > Duration::from_secs(59));

        let other = health(1, 60);
        other.adopt_open(Duration::from_secs(5));
        assert!(matches!(other.admit(), Admission::Refused { .. }));
        assert_eq!(other.opened_here(), None, "not re-published as its own");

        let probing = health(1, 60);
        probing.record(false);
        probing.lock().breaker = Breaker::Open {
            until: Instant::now(),
            adopted: false,
        };
        assert_eq!(probing.admit(), Admission::Allowed);
        probing.adopt_open(Duration::from_secs(5));
        assert_eq!(probing.snapshot().state, BreakerState::HalfOpen);
    }

    #[test]
    fn retry_budget_is_a_share_of_first_attempts_plus_a_floor() {
        let config = crate::config::Config::load(None).unwrap();
        let mut router = config.router.clone();
        router.retry_budget_ratio = 0.2;
        router.retry_budget_min = 2;
        let h = DeploymentHealth::new(&config.breaker, &router);
        for _ in 0..10 {
            h.first_attempt();
        }
        // 2 + 0.2 × 10 = 4 retries.
        let granted = (0..10).filter(|_| h.try_retry()).count();
        assert_eq!(granted, 4);
        assert_eq!(h.snapshot().total_retries_refused, 6);
    }

    #[test]
    fn sliding_counts_forget_old_seconds() {
        let mut counts = SlidingCounts::new(3);
        counts.add(10, 1, 0);
        counts.add(11, 1, 1);
        assert_eq!(counts.totals(12), (2, 1));
        assert_eq!(counts.totals(13), (1, 1), "second 10 left the window");
        counts.add(14, 0, 5);
        assert_eq!(counts.totals(14), (0, 5));
    }
}
