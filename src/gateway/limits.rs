//! Per-minute rate limits (requests and tokens) as GCRA, the generic cell rate algorithm: one
//! number per limit (the "theoretical arrival time"), bursts up to the whole minute's allowance,
//! then a steady refill. The same arithmetic runs in this process or as one Lua script in Redis,
//! so several instances sharing a Redis enforce one limit together.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::config::Secret;

const MINUTE_US: f64 = 60_000_000.0;

/// Which per-minute limit a decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Requests,
    Tokens,
}

/// The outcome of charging a limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    /// Units that could still be charged right now.
    pub remaining: u64,
    /// When refused: how long until the charge would fit.
    pub retry_after: Duration,
    /// How long until the allowance is whole again.
    pub reset: Duration,
}

impl Decision {
    /// From the GCRA state after the call: `backlog_us` is how far the arrival time runs ahead
    /// of now (0 = full allowance left).
    fn new(allowed: bool, limit: u64, backlog_us: f64, retry_after_us: f64) -> Self {
        let interval = MINUTE_US / limit as f64;
        // The epsilon absorbs float error: 60 s / 7 · 7 must leave exactly 0, not -1 or 0.999….
        let remaining = ((MINUTE_US - backlog_us.max(0.0)) / interval + 1e-6)
            .floor()
            .max(0.0) as u64;
        Self {
            allowed,
            limit,
            remaining: remaining.min(limit),
            retry_after: Duration::from_micros(retry_after_us.max(0.0).ceil() as u64),
            reset: Duration::from_micros(backlog_us.max(0.0).ceil() as u64),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("rate-limit store: {0}")]
pub struct LimitError(pub String);

/// Where GCRA state lives.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Charges `cost` units against `limit` per minute under `key`. A charge that does not fit
    /// is refused and changes nothing, unless `force` (usage already spent, booked after the
    /// fact): then it is taken anyway and later charges wait longer.
    async fn charge(
        &self,
        key: &str,
        limit: u64,
        cost: u64,
        force: bool,
    ) -> Result<Decision, LimitError>;
}

/// GCRA on one arrival time; returns (allowed, new arrival time to store, decision).
fn gcra(stored_tat: f64, now: f64, limit: u64, cost: u64, force: bool) -> (bool, f64, Decision) {
    let interval = MINUTE_US / limit.max(1) as f64;
    let tat = stored_tat.max(now);
    let new_tat = tat + cost as f64 * interval;
    let allow_at = new_tat - MINUTE_US;
    if allow_at > now && !force {
        return (
            false,
            tat,
            Decision::new(false, limit, tat - now, allow_at - now),
        );
    }
    (
        true,
        new_tat,
        Decision::new(true, limit, new_tat - now, 0.0),
    )
}

/// One process's limits.
#[derive(Default)]
pub struct MemoryLimits {
    arrival: Mutex<HashMap<String, f64>>,
}

fn now_us() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_micros() as f64)
}

#[async_trait]
impl LimitStore for MemoryLimits {
    async fn charge(
        &self,
        key: &str,
        limit: u64,
        cost: u64,
        force: bool,
    ) -> Result<Decision, LimitError> {
        let now = now_us();
        let mut arrival = self
            .arrival
            .lock()
            .map_err(|_| LimitError("lock poisoned".into()))?;
        let stored = arrival.get(key).copied().unwrap_or(0.0);
        let (allowed, tat, decision) = gcra(stored, now, limit, cost, force);
        if allowed {
            arrival.insert(key.to_owned(), tat);
        }
        Ok(decision)
    }
}

/// The same GCRA as `gcra`, run atomically inside Redis on Redis's clock, so instances on
/// different machines agree. Floats travel as strings: Redis truncates Lua numbers to integers.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local force = ARGV[3] == '1'
local minute = 60000000
local interval = minute / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allow_at = new_tat - minute
if allow_at > now and not force then
  return {0, tostring(tat - now), tostring(allow_at - now)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, tostring(new_tat - now), '0'}
";

pub struct RedisLimits {
    connection: redis::aio::ConnectionManager,
    script: redis::Script,
}

impl RedisLimits {
    pub async fn connect(url: &Secret) -> Result<Self, LimitError> {
        let client = redis::Client::open(url.expose()).map_err(|e| LimitError(e.to_string()))?;
        let connection = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| LimitError(format!("cannot connect to {}: {e}", url.redacted_url())))?;
        Ok(Self {
            connection,
            script: redis::Script::new(GCRA_LUA),
        })
    }
}

#[async_trait]
impl LimitStore for RedisLimits {
    async fn charge(
        &self,
        key: &str,
        limit: u64,
        cost: u64,
        force: bool,
    ) -> Result<Decision, LimitError> {
        let mut connection = self.connection.clone();
        let (allowed, backlog, retry_after): (i64, String, String) = self
            .script
            .key(format!("askacme:ratelimit:{key}"))
            .arg(limit.max(1))
            .arg(cost)
            .arg(if force { "1" } else { "0" })
            .invoke_async(&mut connection)
            .await
            .map_err(|e| LimitError(e.to_string()))?;
        let number = |s: &str| {
            s.parse::<f64>()
                .map_err(|e| LimitError(format!("{s}: {e}")))
        };
        Ok(Decision::new(
            allowed == 1,
            limit,
            number(&backlog)?,
            number(&retry_after)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_exactly_the_limit_is_allowed_then_refused_until_refill() {
        let now = 1e12;
        let mut tat = 0.0;
        for i in 0..7 {
            let (allowed, next, decision) = gcra(tat, now, 7, 1, false);
            assert!(allowed, "request {}", i + 1);
            assert_eq!(decision.remaining, 6 - i);
            tat = next;
        }
        let (allowed, unchanged, decision) = gcra(tat, now, 7, 1, false);
        assert!(!allowed, "the 8th within the minute");
        assert_eq!(unchanged, tat, "a refusal charges nothing");
        // One request's share of the minute: 60 s / 7.
        assert_eq!(decision.retry_after.as_millis(), 8571);
        let later = now + 8_571_429.0;
        assert!(
            gcra(tat, later, 7, 1, false).0,
            "allowed once a slot refilled"
        );
    }

    #[test]
    fn forced_charges_go_into_debt_and_delay_later_ones() {
        let now = 1e12;
        let (_, tat, decision) = gcra(0.0, now, 1000, 1500, true);
        assert_eq!(decision.remaining, 0);
        let (allowed, _, refused) = gcra(tat, now + 10e6, 1000, 1, false);
        assert!(!allowed, "still paying off the debt after 10 s");
        assert!(refused.retry_after > Duration::from_secs(19));
    }

    #[tokio::test]
    async fn memory_store_keeps_keys_apart() {
        let limits = MemoryLimits::default();
        assert!(limits.charge("a", 1, 1, false).await.unwrap().allowed);
        assert!(!limits.charge("a", 1, 1, false).await.unwrap().allowed);
        assert!(limits.charge("b", 1, 1, false).await.unwrap().allowed);
    }
}
