//! Rows of the exact response cache.

use sqlx::Row;

use super::{Database, StoreError, to_i64};

/// A cached response as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
                cost_micro_usd: super::get_u64(&row, "cost_micro_usd")?,
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

/// A question the semantic cache knows, with its embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct SemanticEntry {
    pub question: String,
    pub embedding: Vec<f32>,
    pub answer_key: String,
}

/// A near match the semantic cache considered, served or refused.
#[derive(Debug, Clone, PartialEq)]
pub struct SemanticHit {
    pub request_id: String,
    pub created_at_ms: i64,
    pub question: String,
    pub matched_question: String,
    pub similarity: f32,
    pub decision: String,
}

impl Database {
    pub async fn semantic_entries(&self, scope: &str) -> Result<Vec<SemanticEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT question, embedding, answer_key FROM semantic_entries WHERE scope = ?",
        )
        .bind(scope)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let blob: Vec<u8> = row.try_get("embedding")?;
                Ok(SemanticEntry {
                    question: row.try_get("question")?,
                    embedding: super::decode_vector(Some(&blob))?,
                    answer_key: row.try_get("answer_key")?,
                })
            })
            .collect()
    }

    pub async fn add_semantic_entry(
        &self,
        scope: &str,
        entry: &SemanticEntry,
        created_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO semantic_entries (scope, question, embedding, answer_key, \
             created_at_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(scope)
        .bind(&entry.question)
        .bind(super::encode_vector(&entry.embedding))
        .bind(&entry.answer_key)
        .bind(created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn record_semantic_hit(&self, hit: &SemanticHit) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO semantic_hits (request_id, created_at_ms, question, matched_question, \
             similarity, decision) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&hit.request_id)
        .bind(hit.created_at_ms)
        .bind(&hit.question)
        .bind(&hit.matched_question)
        .bind(hit.similarity)
        .bind(&hit.decision)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The most recent near matches, newest first.
    pub async fn semantic_hits(&self, limit: u32) -> Result<Vec<SemanticHit>, StoreError> {
        let rows = sqlx::query("SELECT * FROM semantic_hits ORDER BY created_at_ms DESC LIMIT ?")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SemanticHit {
                    request_id: row.try_get("request_id")?,
                    created_at_ms: row.try_get("created_at_ms")?,
                    question: row.try_get("question")?,
                    matched_question: row.try_get("matched_question")?,
                    similarity: row.try_get("similarity")?,
                    decision: row.try_get("decision")?,
                })
            })
            .collect()
    }
}
