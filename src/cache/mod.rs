//! The exact response cache: the first and cheapest cost control. A response is stored under a
//! SHA-256 of everything that shapes it (the canonical request with the resolved route, or for
//! the assistant the prompt version and the knowledge base's generation) and served again to an
//! identical request while it lives. By default only deterministic requests (temperature 0) are
//! cached; callers opt out per request with `cache-control: no-store` or `"cache": "no-store"`.
//!
//! Entries live in SQLite (shared by every process on the database), or in Redis when
//! `storage.redis_url` is set (shared by every instance on it), with a small in-memory front
//! that trusts an entry for at most `MEMORY_MAX_AGE`, so a purge from the CLI reaches running
//! servers within that time.

pub mod guard;
pub mod semantic;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::CacheConfig;
pub use crate::providers::types::CacheDirective;
use crate::providers::types::ChatRequest;
use crate::store::{CacheRow, Database, now_ms};

/// How long the in-memory front serves an entry without asking the database again.
const MEMORY_MAX_AGE: Duration = Duration::from_secs(10);

/// Where an answer came from, as `x-askacme-cache` and the `cache` fields report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheStatus {
    /// Served from the cache: the same request was answered before.
    Exact,
    /// Served the answer of a similar question (the assistant only).
    Semantic,
    /// Looked up, not found; the answer was stored if it succeeded.
    Miss,
    /// Not cacheable: not deterministic, opted out, or the cache is off.
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Exact => "exact",
            CacheStatus::Semantic => "semantic",
            CacheStatus::Miss => "miss",
            CacheStatus::Bypass => "bypass",
        }
    }
}

/// Where entries live behind the memory front.
#[derive(Clone)]
pub enum Store {
    Database(Database),
    Redis(redis::aio::ConnectionManager),
}

const REDIS_PREFIX: &str = "askacme:cache:";
/// Keys `SCAN` looks at per step of a purge.
const REDIS_SCAN_COUNT: usize = 500;

impl Store {
    async fn get(&self, key: &str, now_ms: i64) -> Result<Option<CacheRow>, String> {
        match self {
            Store::Database(db) => db.cache_get(key, now_ms).await.map_err(|e| e.to_string()),
            Store::Redis(redis) => {
                let mut redis = redis.clone();
                let json: Option<String> = redis::cmd("GET")
                    .arg(format!("{REDIS_PREFIX}{key}"))
                    .query_async(&mut redis)
                    .await
                    .map_err(|e| e.to_string())?;
                let row = json
                    .map(|j| serde_json::from_str::<CacheRow>(&j))
                    .transpose()
                    .map_err(|e| e.to_string())?;
                Ok(row.filter(|r| r.expires_at_ms > now_ms))
            }
        }
    }

    async fn put(&self, row: &CacheRow, now_ms: i64) -> Result<(), String> {
        match self {
            Store::Database(db) => db.cache_put(row).await.map_err(|e| e.to_string()),
            Store::Redis(redis) => {
                let mut redis = redis.clone();
                let json = serde_json::to_string(row).map_err(|e| e.to_string())?;
                let ttl_ms = (row.expires_at_ms - now_ms).max(1);
                redis::cmd("SET")
                    .arg(format!("{REDIS_PREFIX}{}", row.key))
                    .arg(json)
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async::<()>(&mut redis)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Deletes expired entries and those created before `created_before_ms`.
    async fn purge(&self, now_ms: i64, created_before_ms: i64) -> Result<u64, String> {
        match self {
            Store::Database(db) => db
                .cache_purge(now_ms, created_before_ms)
                .await
                .map_err(|e| e.to_string()),
            Store::Redis(redis) => {
                // Redis expires entries itself; what is left to delete is by age. `SCAN` walks
                // the keys in small steps and `UNLINK` frees them in the background: `KEYS` and
                // `DEL` would block the Redis that also serves rate limits and breakers.
                let mut redis = redis.clone();
                let mut cursor: u64 = 0;
                let mut purged = 0;
                loop {
                    let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(format!("{REDIS_PREFIX}*"))
                        .arg("COUNT")
                        .arg(REDIS_SCAN_COUNT)
                        .query_async(&mut redis)
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut stale = Vec::new();
                    for key in keys {
                        let row = match key.strip_prefix(REDIS_PREFIX) {
                            Some(short) => self.get(short, now_ms).await?,
                            None => continue,
                        };
                        if row.is_none_or(|row| row.created_at_ms < created_before_ms) {
                            stale.push(key);
                        }
                    }
                    if !stale.is_empty() {
                        let unlinked: u64 = redis::cmd("UNLINK")
                            .arg(&stale)
                            .query_async(&mut redis)
                            .await
                            .map_err(|e| e.to_string())?;
                        purged += unlinked;
                    }
                    if next == 0 {
                        return Ok(purged);
                    }
                    cursor = next;
                }
            }
        }
    }
}

pub struct ResponseCache {
    config: CacheConfig,
    store: Store,
    /// Recent entries with when they were stored (quick_cache: bounded, O(1) eviction);
    /// `None` when `cache.memory_entries` is 0.
    memory: Option<quick_cache::sync::Cache<String, (Instant, Arc<CacheRow>)>>,
    /// Each database write in flight holds a read guard; `flush` takes the write side, so it
    /// returns once they are all done.
    writes: Arc<tokio::sync::RwLock<()>>,
}

impl ResponseCache {
    pub fn new(config: CacheConfig, store: Store) -> Self {
        Self {
            memory: (config.memory_entries > 0)
                .then(|| quick_cache::sync::Cache::new(config.memory_entries)),
            config,
            store,
            writes: Arc::new(tokio::sync::RwLock::new(())),
        }
    }

    /// Deletes expired entries and those created before `created_before_ms` (all of them with
    /// `i64::MAX`); returns how many. This process's memory front is emptied too.
    pub async fn purge(&self, now_ms: i64, created_before_ms: i64) -> Result<u64, String> {
        if let Some(memory) = &self.memory {
            memory.clear();
        }
        self.store.purge(now_ms, created_before_ms).await
    }

    /// Waits until every entry stored so far is in the database (before a CLI exits).
    pub async fn flush(&self) {
        let _all_done = self.writes.write().await;
    }

    /// Whether a request may use the cache: the cache is on, the caller did not opt out, and
    /// the answer is deterministic (or the configuration caches sampled answers too).
    pub fn applies(&self, deterministic: bool, directive: Option<CacheDirective>) -> bool {
        self.config.enabled
            && directive != Some(CacheDirective::NoStore)
            && (deterministic || !self.config.only_deterministic)
    }

    pub async fn get(&self, key: &str) -> Option<Arc<CacheRow>> {
        let now = now_ms();
        if let Some((stored, row)) = self.memory.as_ref().and_then(|m| m.get(key))
            && stored.elapsed() < MEMORY_MAX_AGE
            && row.expires_at_ms > now
        {
            return Some(row);
        }
        match self.store.get(key, now).await {
            Ok(Some(row)) => {
                let row = Arc::new(row);
                self.remember(row.clone());
                Some(row)
            }
            Ok(None) => None,
            Err(e) => {
                // A cache that cannot be read is a miss, never a failed request.
                tracing::warn!(error = %e, "response cache read failed");
                None
            }
        }
    }

    /// Stores an answer: in memory at once (the next identical request hits), in the database
    /// off the request path.
    pub fn put(&self, key: String, kind: &str, body: String, cost_micro_usd: u64) {
        let created = now_ms();
        let row = Arc::new(CacheRow {
            key,
            kind: kind.to_owned(),
            body,
            cost_micro_usd,
            created_at_ms: created,
            expires_at_ms: created + (self.config.ttl_secs as i64).saturating_mul(1000),
        });
        self.remember(row.clone());
        let store = self.store.clone();
        let (Ok(runtime), Ok(in_flight)) = (
            tokio::runtime::Handle::try_current(),
            self.writes.clone().try_read_owned(),
        ) else {
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = store.put(&row, created).await {
                tracing::warn!(error = %e, "response cache write failed");
            }
            drop(in_flight);
        });
    }

    fn remember(&self, row: Arc<CacheRow>) {
        if let Some(memory) = &self.memory {
            memory.insert(row.key.clone(), (Instant::now(), row));
        }
    }
}

/// The cache key of a chat request: SHA-256 over the canonical JSON of everything that changes
/// the answer (messages, every sampling parameter, tools, response format, seed…) and the
/// resolved route; transport choices (`stream`, `stream_options`) and the caller's `user` tag
/// do not count, so a streamed request hits a plain one's entry.
pub fn chat_key(request: &ChatRequest, route: &str) -> String {
    let mut value = serde_json::to_value(request).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        for transport in ["stream", "stream_options", "user"] {
            map.remove(transport);
        }
    }
    key_of(&["chat/v1", route, &canonical(&value)])
}

/// The cache key of a question to the assistant.
pub fn ask_key(parts: &[&str]) -> String {
    let mut all = vec!["ask/v1"];
    all.extend_from_slice(parts);
    key_of(&all)
}

fn key_of(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        // Length-prefixed, so no two different part lists hash the same bytes.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// JSON with object keys sorted at every level: the same request always gives the same text,
/// whatever order its fields arrived in.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: Value) -> ChatRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn keys_follow_every_parameter_that_changes_the_answer_and_nothing_else() {
        let base = json_request(serde_json::json!({}));
        let same = chat_key(&base, "strong");
        let reordered = request(serde_json::json!({
            "temperature": 0.0,
            "messages": [{"content": "Hi", "role": "user"}],
            "model": "strong",
        }));
        assert_eq!(
            chat_key(&reordered, "strong"),
            same,
            "field order does not matter"
        );
        let streamed = json_request(
            serde_json::json!({"stream": true, "stream_options": {"include_usage": true}, "user": "u1"}),
        );
        assert_eq!(
            chat_key(&streamed, "strong"),
            same,
            "transport does not matter"
        );
        for change in [
            serde_json::json!({"temperature": 0.5}),
            serde_json::json!({"max_tokens": 10}),
            serde_json::json!({"top_p": 0.9}),
            serde_json::json!({"stop": ["\n"]}),
            serde_json::json!({"seed": 7}),
            serde_json::json!({"response_format": {"type": "json_object"}}),
            serde_json::json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}),
            serde_json::json!({"messages": [{"role": "user", "content": "Hi!"}]}),
        ] {
            assert_ne!(
                chat_key(&json_request(change.clone()), "strong"),
                same,
                "{change}"
            );
        }
        assert_ne!(
            chat_key(&base, "fast"),
            same,
            "the route is part of the key"
        );
    }

    /// A deterministic request with `overrides` laid over it.
    fn json_request(overrides: Value) -> ChatRequest {
        let mut body = serde_json::json!({
            "model": "strong",
            "messages": [{"role": "user", "content": "Hi"}],
            "temperature": 0.0,
        });
        for (k, v) in overrides.as_object().unwrap() {
            body[k] = v.clone();
        }
        request(body)
    }

    #[test]
    fn ask_keys_separate_their_parts() {
        assert_ne!(ask_key(&["ab", "c"]), ask_key(&["a", "bc"]));
        assert_eq!(ask_key(&["a", "b"]), ask_key(&["a", "b"]));
    }
}
