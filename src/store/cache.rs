//! Rows of the exact response cache.

use sqlx::Row;

use super::{Database, StoreError, to_i64};

/// A cached response as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRow {
    pub key: String,
    pub kind: String,
    /// The response, as JSON.
    pub body: String,
    /// What producing it cost: the money each hit saves.
    pub cost_micro_usd: u64,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

impl Database {
    /// The entry under `key` unless it expired by `now_ms`.
    pub async fn cache_get(&self, key: &str, now_ms: i64) -> Result<Option<CacheRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM cache_entries WHERE key = ? AND expires_at_ms > ?")
            .bind(key)
            .bind(now_ms)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(CacheRow {
                key: row.try_get("key")?,
                kind: row.try_get("kind")?,
                body: row.try_get("body")?,
                cost_micro_usd: row.try_get::<i64, _>("cost_micro_usd")?.max(0) as u64,
                created_at_ms: row.try_get("created_at_ms")?,
                expires_at_ms: row.try_get("expires_at_ms")?,
            })
        })
        .transpose()
    }

    pub async fn cache_put(&self, entry: &CacheRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO cache_entries (key, kind, body, cost_micro_usd, created_at_ms, \
             expires_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&entry.key)
        .bind(&entry.kind)
        .bind(&entry.body)
        .bind(to_i64(entry.cost_micro_usd))
        .bind(entry.created_at_ms)
        .bind(entry.expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes expired entries and those created before `created_before_ms`; returns how many.
    pub async fn cache_purge(
        &self,
        now_ms: i64,
        created_before_ms: i64,
    ) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM cache_entries WHERE expires_at_ms <= ? OR created_at_ms < ?")
                .bind(now_ms)
                .bind(created_before_ms)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }
}
