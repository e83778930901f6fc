//! Who may call, what, how often and for how much: API keys (a master key and virtual keys
//! stored hashed), per-key model allow-lists, requests- and tokens-per-minute limits, and hard
//! budgets held before a call and settled from its actual usage.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::GatewayError;
use super::limits::{Decision, LimitKind, LimitStore};
use crate::config::format_usd_micro;
use crate::store::{Database, KeyRecord, NewKey};

/// Who is calling, once the key was checked.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Auth is off: everyone is served, nothing is limited.
    Open,
    /// The master key: every model, no limits.
    Master,
    Key(Arc<KeyRecord>),
    /// A person the company's SSO proxy signed in (`auth.user_header`), using the web chat:
    /// no key, so no key's limits.
    Person(Arc<str>),
}

impl Caller {
    /// What the request log records as the caller.
    pub fn key_id(&self) -> Option<String> {
        match self {
            Caller::Open => None,
            Caller::Master => Some("master".into()),
            Caller::Key(key) => Some(key.id.clone()),
            Caller::Person(name) => Some(format!("user:{name}")),
        }
    }

    /// The person signed in by the SSO proxy.
    pub fn user(&self) -> Option<&str> {
        match self {
            Caller::Person(name) => Some(name),
            _ => None,
        }
    }

    pub fn is_master(&self) -> bool {
        matches!(self, Caller::Master)
    }

    fn key(&self) -> Option<&KeyRecord> {
        match self {
            Caller::Key(key) => Some(key),
            _ => None,
        }
    }
}

/// What a call asks to hold before it is sent.
pub struct HoldRequest<'a> {
    /// The hold is stored under the request's id, which its log row releases it by.
    pub request_id: &'a str,
    /// When the hold lapses if no log row released it (the request's deadline).
    pub expires_at_ms: i64,
    pub estimated_tokens: u64,
    pub worst_cost_micro_usd: u64,
}

/// What one upstream call holds: budget (released, and the actual cost booked, when the call's
/// log row is written, so it must go on the row) and tokens admitted on an estimate (the rest
/// booked by `book_tokens` once the provider reports usage).
pub struct Hold {
    pub reserved_micro_usd: u64,
    tokens: Option<TokenBooking>,
}

struct TokenBooking {
    access: Arc<Access>,
    key_id: String,
    tpm: u64,
    estimated: u64,
}

impl Hold {
    /// A hold on nothing, for callers without limits.
    pub(super) fn none() -> Self {
        Self {
            reserved_micro_usd: 0,
            tokens: None,
        }
    }

    /// Charges the tokens the call used beyond the estimate it was admitted on. Failures are
    /// logged, not returned: the caller already has the answer it paid for.
    pub async fn book_tokens(self, used: u64) {
        let Some(booking) = self.tokens else { return };
        if used <= booking.estimated {
            return;
        }
        let key = format!("{}:tpm", booking.key_id);
        if let Err(e) = booking
            .access
            .limits
            .charge(&key, booking.tpm, used - booking.estimated, true)
            .await
        {
            tracing::error!(key_id = booking.key_id, error = %e, "cannot book tokens");
        }
    }
}

pub struct Access {
    enabled: bool,
    master_hash: Option<String>,
    db: Database,
    limits: Arc<dyn LimitStore>,
    /// Valid keys seen recently, by hash, with when they were read: saves a database read per
    /// request; a revocation takes effect within `key_cache_ttl`.
    key_cache: Mutex<HashMap<String, (Instant, Arc<KeyRecord>)>>,
    key_cache_ttl: Duration,
    /// Budget reservations from this process go one at a time: SQLite serialises writers
    /// anyway, and queueing here is cheaper than its busy-wait sleeps when connections collide.
    spend_writes: tokio::sync::Mutex<()>,
}

/// How often expired budget holds are looked for (besides the key's own, which every
/// reservation releases first).
const HOLD_SWEEP: Duration = Duration::from_secs(5);

/// Keys kept at most; past it the cache starts afresh (a bound, not an eviction policy:
/// deployments have far fewer keys).
const KEY_CACHE_MAX: usize = 10_000;

/// SHA-256 of a key, hex: what the database stores and looks keys up by.
pub fn hash_key(key: &str) -> String {
    format!("{:x}", Sha256::digest(key.as_bytes()))
}

/// A new virtual key: the secret (shown once) and its record to store.
pub fn new_key(
    name: &str,
    rpm: Option<u64>,
    tpm: Option<u64>,
    budget_micro_usd: Option<u64>,
    models: Option<Vec<String>>,
) -> (String, NewKey) {
    // v4 UUIDs come from the OS's CSPRNG: 244 random bits over the two.
    let secret = format!(
        "sk-acme-{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let record = NewKey {
        id: format!("key_{}", uuid::Uuid::now_v7().simple()),
        name: name.to_owned(),
        key_hash: hash_key(&secret),
        key_prefix: secret[..14].to_owned(),
        rpm,
        tpm,
        budget_micro_usd,
        models,
    };
    (secret, record)
}

impl Access {
    pub fn new(
        enabled: bool,
        master_key: Option<&str>,
        key_cache_ttl: Duration,
        db: Database,
        limits: Arc<dyn LimitStore>,
    ) -> Self {
        Self {
            enabled,
            master_hash: master_key.map(hash_key),
            db,
            limits,
            key_cache: Mutex::new(HashMap::new()),
            key_cache_ttl,
            spend_writes: tokio::sync::Mutex::new(()),
        }
    }

    fn cached_key(&self, hash: &str) -> Option<Arc<KeyRecord>> {
        let cache = self.key_cache.lock().ok()?;
        let (read_at, key) = cache.get(hash)?;
        (read_at.elapsed() < self.key_cache_ttl).then(|| key.clone())
    }

    fn cache_key(&self, hash: String, key: Arc<KeyRecord>) {
        if self.key_cache_ttl.is_zero() {
            return;
        }
        if let Ok(mut cache) = self.key_cache.lock() {
            if cache.len() >= KEY_CACHE_MAX {
                cache.clear();
            }
            cache.insert(hash, (Instant::now(), key));
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Checks the presented key. Revoked and unknown keys get the same 401, so the answer says
    /// nothing about which keys exist.
    pub async fn authenticate(&self, presented: Option<&str>) -> Result<Caller, GatewayError> {
        if !self.enabled {
            return Ok(Caller::Open);
        }
        let presented = presented.filter(|k| !k.is_empty()).ok_or_else(|| {
            GatewayError::Unauthorized(
                "missing API key: send `Authorization: Bearer <key>` or `x-api-key: <key>`".into(),
            )
        })?;
        let hash = hash_key(presented);
        if self.master_hash.as_deref() == Some(hash.as_str()) {
            return Ok(Caller::Master);
        }
        if let Some(key) = self.cached_key(&hash) {
            return Ok(Caller::Key(key));
        }
        match self.db.key_by_hash(&hash).await {
            Ok(Some(key)) if key.revoked_at_ms.is_none() => {
                let key = Arc::new(key);
                self.cache_key(hash, key.clone());
                Ok(Caller::Key(key))
            }
            Ok(_) => Err(GatewayError::Unauthorized(
                "invalid or revoked API key".into(),
            )),
            Err(e) => Err(GatewayError::Internal(format!("key lookup: {e}"))),
        }
    }

    /// Counts one request against the key's requests-per-minute limit.
    pub async fn admit_request(&self, caller: &Caller) -> Result<Option<Decision>, GatewayError> {
        let Some(key) = caller.key() else {
            return Ok(None);
        };
        let Some(rpm) = key.rpm else { return Ok(None) };
        let decision = self.charge(&format!("{}:rpm", key.id), rpm, 1).await?;
        if !decision.allowed {
            return Err(GatewayError::RateLimited {
                message: format!(
                    "key `{}` is over its limit of {rpm} requests per minute",
                    key.name
                ),
                kind: LimitKind::Requests,
                decision,
            });
        }
        Ok(Some(decision))
    }

    /// Where the key stands on tokens, for the `x-ratelimit-*-tokens` headers.
    pub async fn token_status(&self, caller: &Caller) -> Option<Decision> {
        let key = caller.key()?;
        let tpm = key.tpm?;
        self.limits
            .charge(&format!("{}:tpm", key.id), tpm, 0, false)
            .await
            .ok()
    }

    pub fn check_model(&self, caller: &Caller, model: &str) -> Result<(), GatewayError> {
        match caller.key().and_then(|k| k.models.as_ref().map(|m| (k, m))) {
            Some((key, models)) if !models.iter().any(|m| m == model) => {
                Err(GatewayError::Forbidden(format!(
                    "key `{}` may not use model `{model}` (allowed: {})",
                    key.name,
                    models.join(", ")
                )))
            }
            _ => Ok(()),
        }
    }

    /// Before an upstream call: the tokens-per-minute check on the prompt's estimated size, and
    /// the call's worst-case cost held against the key's budget.
    pub async fn hold(
        self: &Arc<Self>,
        caller: &Caller,
        request: HoldRequest<'_>,
    ) -> Result<Hold, GatewayError> {
        let Some(key) = caller.key() else {
            return Ok(Hold::none());
        };
        let HoldRequest {
            request_id,
            expires_at_ms,
            estimated_tokens,
            worst_cost_micro_usd,
        } = request;
        if let Some(tpm) = key.tpm {
            let decision = self
                .charge(&format!("{}:tpm", key.id), tpm, estimated_tokens)
                .await?;
            if !decision.allowed {
                return Err(GatewayError::RateLimited {
                    message: format!(
                        "key `{}` is over its limit of {tpm} tokens per minute",
                        key.name
                    ),
                    kind: LimitKind::Tokens,
                    decision,
                });
            }
        }
        // A call that cannot cost anything holds nothing (and leaves no hold row behind).
        let holds = key.budget_micro_usd.is_some() && worst_cost_micro_usd > 0;
        if holds {
            let held = {
                let _one_at_a_time = self.spend_writes.lock().await;
                let hold = crate::store::BudgetHold {
                    request_id,
                    key_id: &key.id,
                    amount_micro_usd: worst_cost_micro_usd,
                    expires_at_ms,
                };
                self.db.reserve_spend(&hold).await
            }
            .map_err(|e| GatewayError::Internal(format!("budget: {e}")))?;
            if !held {
                let current = self.db.key(&key.id).await.ok().flatten();
                let (spent, budget) = current
                    .map(|k| (k.spent_micro_usd + k.reserved_micro_usd, k.budget_micro_usd))
                    .unwrap_or((0, key.budget_micro_usd));
                return Err(GatewayError::BudgetExceeded(format!(
                    "key `{}` has spent or holds ${} of its ${} budget; this request could cost up to ${}",
                    key.name,
                    format_usd_micro(spent),
                    format_usd_micro(budget.unwrap_or(0)),
                    format_usd_micro(worst_cost_micro_usd)
                )));
            }
        }
        Ok(Hold {
            reserved_micro_usd: if holds { worst_cost_micro_usd } else { 0 },
            tokens: key.tpm.map(|tpm| TokenBooking {
                access: self.clone(),
                key_id: key.id.clone(),
                tpm,
                estimated: estimated_tokens,
            }),
        })
    }

    /// Releases the budget holds of requests whose deadline passed without their log row
    /// (a crashed process, a lost write).
    pub async fn release_expired_holds(&self) {
        match self.db.release_expired_holds(crate::store::now_ms()).await {
            Ok(0) => {}
            Ok(released) => tracing::warn!(released, "released expired budget holds"),
            Err(e) => tracing::warn!(error = %e, "cannot release expired budget holds"),
        }
    }

    /// Runs `release_expired_holds` every few seconds, for as long as the server runs.
    pub async fn sweep_expired_holds(self: Arc<Self>) {
        let mut tick = tokio::time::interval(HOLD_SWEEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.release_expired_holds().await;
        }
    }

    async fn charge(&self, key: &str, limit: u64, cost: u64) -> Result<Decision, GatewayError> {
        self.limits
            .charge(key, limit, cost, false)
            .await
            .map_err(|e| GatewayError::Unavailable(e.to_string()))
    }
}
