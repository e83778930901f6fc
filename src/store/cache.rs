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
    /// Row id, for `askacme cache forget`; 0 before it is stored.
    pub id: i64,
    pub request_id: String,
    pub created_at_ms: i64,
    pub scope: String,
    pub session_id: Option<String>,
    pub question: String,
    pub matched_question: String,
    pub similarity: f32,
    pub decision: String,
    /// Why a served match was flagged as a probable wrong answer (a thumbs-down, a rephrase).
    pub flag_reason: Option<String>,
}

/// The guards' verdicts (`policy:stage:reason` and how many), the questions the assistant
/// logged, and the personal values redacted from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardStats {
    pub questions: u64,
    pub redactions: u64,
    pub verdicts: Vec<(String, u64)>,
}

/// The semantic cache's decisions and flags, for `askacme stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SemanticStats {
    pub served: u64,
    pub refused: u64,
    pub flagged: u64,
}

impl SemanticStats {
    /// Share of served matches flagged as wrong: a lower bound of the false-hit rate (not
    /// every wrong answer gets a thumbs-down).
    pub fn flagged_rate(&self) -> f64 {
        self.flagged as f64 / self.served.max(1) as f64
    }
}

/// Requests of one cache outcome (`exact`, `semantic`, `miss`, `bypass`, or `not asked` for
/// rows the cache is not consulted for, such as a question's embedding), for `askacme stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOutcome {
    pub cache: String,
    pub requests: u64,
    pub cost_micro_usd: u64,
    pub saved_micro_usd: u64,
}

/// Which near matches to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitFilter {
    All,
    Flagged,
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

    /// Whether `question` is still an entry of `scope` (`askacme cache forget` may have removed
    /// it while a server held it in memory).
    pub async fn semantic_entry_exists(
        &self,
        scope: &str,
        question: &str,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM semantic_entries WHERE scope = ? AND question = ?")
            .bind(scope)
            .bind(question)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Stores an answered question of `scope`; false when it was forgotten there and so not
    /// stored.
    pub async fn add_semantic_entry(
        &self,
        scope: &str,
        entry: &SemanticEntry,
        created_at_ms: i64,
    ) -> Result<bool, StoreError> {
        // A question forgotten in this scope is not offered to similar questions again.
        let done = sqlx::query(
            "INSERT OR REPLACE INTO semantic_entries (scope, question, embedding, answer_key, \
             created_at_ms) SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM \
             semantic_forgotten WHERE scope = ? AND question = ?)",
        )
        .bind(scope)
        .bind(&entry.question)
        .bind(super::encode_vector(&entry.embedding))
        .bind(&entry.answer_key)
        .bind(created_at_ms)
        .bind(scope)
        .bind(&entry.question)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn record_semantic_hit(&self, hit: &SemanticHit) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO semantic_hits (request_id, created_at_ms, scope, session_id, question, \
             matched_question, similarity, decision) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&hit.request_id)
        .bind(hit.created_at_ms)
        .bind(&hit.scope)
        .bind(&hit.session_id)
        .bind(&hit.question)
        .bind(&hit.matched_question)
        .bind(hit.similarity)
        .bind(&hit.decision)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The most recent near matches, newest first.
    pub async fn semantic_hits(
        &self,
        filter: HitFilter,
        limit: u32,
    ) -> Result<Vec<SemanticHit>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM semantic_hits WHERE ? = 0 OR flagged_at_ms IS NOT NULL \
             ORDER BY created_at_ms DESC, id DESC LIMIT ?",
        )
        .bind(filter == HitFilter::Flagged)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(semantic_hit).collect()
    }

    pub async fn semantic_hit(&self, id: i64) -> Result<Option<SemanticHit>, StoreError> {
        let row = sqlx::query("SELECT * FROM semantic_hits WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(semantic_hit).transpose()
    }

    /// Flags the served match of `request_id` as a probable wrong answer; returns whether there
    /// was one to flag. The first reason is kept.
    pub async fn flag_semantic_hit(
        &self,
        request_id: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE semantic_hits SET flagged_at_ms = ?, flag_reason = ? WHERE request_id = ? \
             AND decision = 'served' AND flagged_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(reason)
        .bind(request_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes the cached question that hit `id` matched from its scope's semantic cache, for
    /// good: answered again, it is not offered to similar questions (its exact-cache entry
    /// still answers the identical question). Returns the hit and whether an entry was removed
    /// (not when it was already gone), or `None` when there is no such hit.
    pub async fn forget_semantic_match(
        &self,
        id: i64,
        now_ms: i64,
    ) -> Result<Option<(SemanticHit, bool)>, StoreError> {
        let Some(hit) = self.semantic_hit(id).await? else {
            return Ok(None);
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT OR IGNORE INTO semantic_forgotten (scope, question, forgotten_at_ms) \
             VALUES (?, ?, ?)",
        )
        .bind(&hit.scope)
        .bind(&hit.matched_question)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM semantic_entries WHERE scope = ? AND question = ?")
            .bind(&hit.scope)
            .bind(&hit.matched_question)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some((hit, done.rows_affected() > 0)))
    }

    /// A match recorded as served whose answer had left the exact cache by the time it was
    /// fetched: it was not served after all.
    pub async fn unserve_semantic_hit(&self, request_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE semantic_hits SET decision = 'answer expired' WHERE request_id = ? \
             AND decision = 'served'",
        )
        .bind(request_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn cache_outcomes(&self) -> Result<Vec<CacheOutcome>, StoreError> {
        let rows = sqlx::query(
            "SELECT COALESCE(cache, 'not asked') AS outcome, COUNT(*) AS requests, \
             COALESCE(SUM(cost_micro_usd), 0) AS cost, COALESCE(SUM(saved_micro_usd), 0) AS saved \
             FROM requests GROUP BY outcome ORDER BY outcome",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CacheOutcome {
                    cache: row.try_get("outcome")?,
                    requests: super::get_u64(row, "requests")?,
                    cost_micro_usd: super::get_u64(row, "cost")?,
                    saved_micro_usd: super::get_u64(row, "saved")?,
                })
            })
            .collect()
    }

    /// What the guards did, over the whole log, for `askacme stats`.
    pub async fn guard_stats(&self) -> Result<GuardStats, StoreError> {
        let questions = sqlx::query(
            "SELECT COUNT(*) AS questions, COALESCE(SUM(redactions), 0) AS redactions \
             FROM requests WHERE endpoint = '/v1/ask' AND instr(id, '.') = 0",
        )
        .fetch_one(&self.pool)
        .await?;
        let verdicts = sqlx::query(
            "SELECT guard, COUNT(*) AS n FROM requests WHERE guard IS NOT NULL \
             GROUP BY guard ORDER BY guard",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("guard")?, super::get_u64(row, "n")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(GuardStats {
            questions: super::get_u64(&questions, "questions")?,
            redactions: super::get_u64(&questions, "redactions")?,
            verdicts,
        })
    }

    pub async fn semantic_stats(&self) -> Result<SemanticStats, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FILTER (WHERE decision = 'served') AS served, \
             COUNT(*) FILTER (WHERE decision <> 'served') AS refused, \
             COUNT(*) FILTER (WHERE flagged_at_ms IS NOT NULL) AS flagged FROM semantic_hits",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(SemanticStats {
            served: super::get_u64(&row, "served")?,
            refused: super::get_u64(&row, "refused")?,
            flagged: super::get_u64(&row, "flagged")?,
        })
    }

    pub async fn record_feedback(&self, feedback: &Feedback) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO feedback (request_id, created_at_ms, rating, comment, escalated, rater) \
             VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (request_id) DO UPDATE SET created_at_ms = excluded.created_at_ms, \
             rating = excluded.rating, comment = excluded.comment, \
             escalated = MAX(feedback.escalated, excluded.escalated), rater = excluded.rater",
        )
        .bind(&feedback.request_id)
        .bind(feedback.created_at_ms)
        .bind(if feedback.helpful { "up" } else { "down" })
        .bind(&feedback.comment)
        .bind(feedback.escalated)
        .bind(&feedback.rater)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A rating of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub request_id: String,
    pub created_at_ms: i64,
    /// Thumbs up (`true`) or down.
    pub helpful: bool,
    pub comment: Option<String>,
    pub escalated: bool,
    /// Who rated: the key's name, `master`, or the signed-in user.
    pub rater: Option<String>,
}

fn semantic_hit(row: &sqlx::sqlite::SqliteRow) -> Result<SemanticHit, StoreError> {
    Ok(SemanticHit {
        id: row.try_get("id")?,
        request_id: row.try_get("request_id")?,
        created_at_ms: row.try_get("created_at_ms")?,
        scope: row.try_get("scope")?,
        session_id: row.try_get("session_id")?,
        question: row.try_get("question")?,
        matched_question: row.try_get("matched_question")?,
        similarity: row.try_get("similarity")?,
        decision: row.try_get("decision")?,
        flag_reason: row.try_get("flag_reason")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_forgotten_question_is_not_offered_to_similar_questions_again() {
        let dir = std::env::temp_dir().join(format!("askacme-forget-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Database::open(&format!("sqlite://{}", dir.join("db.sqlite").display()))
            .await
            .unwrap();
        let entry = SemanticEntry {
            question: "How long is parental leave?".into(),
            embedding: vec![1.0, 0.0],
            answer_key: "key".into(),
        };
        assert!(db.add_semantic_entry("scope", &entry, 1).await.unwrap());
        let hit = SemanticHit {
            id: 0,
            request_id: "req_1".into(),
            created_at_ms: 2,
            scope: "scope".into(),
            session_id: None,
            question: "How long is the parental leave?".into(),
            matched_question: entry.question.clone(),
            similarity: 0.97,
            decision: "served".into(),
            flag_reason: None,
        };
        db.record_semantic_hit(&hit).await.unwrap();
        let id = db.semantic_hits(HitFilter::All, 1).await.unwrap()[0].id;
        let (_, removed) = db.forget_semantic_match(id, 3).await.unwrap().unwrap();
        assert!(removed);
        assert!(
            !db.semantic_entry_exists("scope", &entry.question)
                .await
                .unwrap()
        );
        // Answered anew (its exact entry expired): still not a semantic entry in that scope,
        // but one in another scope (a new knowledge-base generation) is.
        assert!(!db.add_semantic_entry("scope", &entry, 4).await.unwrap());
        assert!(
            !db.semantic_entry_exists("scope", &entry.question)
                .await
                .unwrap()
        );
        assert!(db.add_semantic_entry("other", &entry, 4).await.unwrap());
        assert!(
            db.semantic_entry_exists("other", &entry.question)
                .await
                .unwrap()
        );
        let (_, removed) = db.forget_semantic_match(id, 5).await.unwrap().unwrap();
        assert!(!removed, "already gone");
        assert!(
            db.forget_semantic_match(id + 100, 5)
                .await
                .unwrap()
                .is_none()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
