//! The assistant's answers as production signals: one row per answer, what followed it
//! (rephrased, escalated), its feedback, and the blinded items and ratings of human evaluation.
//! The figures over them are `rollup`'s.

use sqlx::Row;

use super::{Database, StoreError, get_u64, to_i64};

/// One answer (`answers`).
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerRow {
    pub request_id: String,
    pub created_at_ms: i64,
    pub endpoint: String,
    pub key_id: Option<String>,
    pub session_id: Option<String>,
    pub user: Option<String>,
    /// Personal data redacted.
    pub question: String,
    pub answer: String,
    pub status: String,
    pub category: String,
    pub prompt_version: String,
    pub model: Option<String>,
    pub cache: String,
    pub cost_micro_usd: u64,
    pub saved_micro_usd: u64,
    pub latency_ms: f64,
    /// The question asked for a human.
    pub escalated: bool,
    /// A later question asked the same again (read only; `mark_rephrased` sets it).
    pub rephrased: bool,
    /// The standalone question a follow-up was rewritten into and answered as.
    pub standalone: Option<String>,
    /// Milliseconds per pipeline stage, as a JSON object.
    pub stage_latency_json: Option<String>,
}

/// One rating, with the question it rates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FeedbackItem {
    pub request_id: String,
    /// `up` or `down`.
    pub rating: String,
    pub comment: Option<String>,
    pub escalated: bool,
    pub question: String,
    pub created_at_ms: i64,
}

/// One earlier turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationTurn {
    /// As asked (redacted).
    pub question: String,
    /// What it was answered as, when it was a follow-up.
    pub standalone: Option<String>,
    pub status: String,
}

impl ConversationTurn {
    /// The question as it stands alone: the rewrite of a follow-up, else the question.
    pub fn standalone_question(&self) -> &str {
        self.standalone.as_deref().unwrap_or(&self.question)
    }
}

/// One rater's rating of one sampled item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanRating {
    pub item_id: String,
    pub rater: String,
    /// 1–5.
    pub rating: u8,
    pub comment: Option<String>,
}

// Production figures leave out evaluation runs, which answer through `eval/…` endpoints
// (`endpoint NOT LIKE 'eval/%'` in the queries below).

impl Database {
    pub async fn record_answer(&self, row: &AnswerRow) -> Result<(), StoreError> {
        sqlx::query(
            // An upsert rather than a REPLACE, so that the rollups' update triggers see a
            // recorded-again answer on any connection (a REPLACE's delete needs a pragma).
            "INSERT INTO answers (request_id, created_at_ms, endpoint, key_id, \
             session_id, user, question, answer, status, category, prompt_version, model, \
             cache, cost_micro_usd, saved_micro_usd, latency_ms, escalated, standalone, \
             stage_latency_json) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (request_id) DO UPDATE SET created_at_ms = excluded.created_at_ms, \
             endpoint = excluded.endpoint, key_id = excluded.key_id, \
             session_id = excluded.session_id, user = excluded.user, \
             question = excluded.question, answer = excluded.answer, status = excluded.status, \
             category = excluded.category, prompt_version = excluded.prompt_version, \
             model = excluded.model, cache = excluded.cache, \
             cost_micro_usd = excluded.cost_micro_usd, \
             saved_micro_usd = excluded.saved_micro_usd, latency_ms = excluded.latency_ms, \
             rephrased_at_ms = NULL, escalated = excluded.escalated, \
             standalone = excluded.standalone, stage_latency_json = excluded.stage_latency_json",
        )
        .bind(&row.request_id)
        .bind(row.created_at_ms)
        .bind(&row.endpoint)
        .bind(&row.key_id)
        .bind(&row.session_id)
        .bind(&row.user)
        .bind(&row.question)
        .bind(&row.answer)
        .bind(&row.status)
        .bind(&row.category)
        .bind(&row.prompt_version)
        .bind(&row.model)
        .bind(&row.cache)
        .bind(to_i64(row.cost_micro_usd))
        .bind(to_i64(row.saved_micro_usd))
        .bind(row.latency_ms)
        .bind(row.escalated)
        .bind(&row.standalone)
        .bind(&row.stage_latency_json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest `limit` turns of a conversation since `since_ms`, newest first.
    pub async fn conversation(
        &self,
        session_id: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<ConversationTurn>, StoreError> {
        let rows = sqlx::query(
            "SELECT question, standalone, status FROM answers \
             WHERE session_id = ? AND created_at_ms >= ? \
             ORDER BY created_at_ms DESC, request_id DESC LIMIT ?",
        )
        .bind(session_id)
        .bind(since_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConversationTurn {
                    question: r.try_get(0)?,
                    standalone: r.try_get(1)?,
                    status: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// Deletes the answers (questions, answers and the conversations they make) recorded
    /// before `before_ms`, with their feedback; returns how many answers went.
    pub async fn forget_answers_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM feedback WHERE request_id IN \
             (SELECT request_id FROM answers WHERE created_at_ms < ?)",
        )
        .bind(before_ms)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM answers WHERE created_at_ms < ?")
            .bind(before_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // The triggers took the answers out of the sums; the questions' own text goes too:
        // emptied sums are deleted, and on the cutoff's day, the only one partly forgotten, a
        // question keeps the first spelling still asked.
        sqlx::query("DELETE FROM question_rollup WHERE answers <= 0")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE question_rollup SET question = COALESCE((SELECT MIN(a.question) \
             FROM answers a WHERE a.created_at_ms >= question_rollup.day * 86400000 \
             AND a.created_at_ms < (question_rollup.day + 1) * 86400000 \
             AND a.status = question_rollup.status AND a.endpoint NOT LIKE 'eval/%' \
             AND lower(trim(a.question)) = question_rollup.question_key), question) \
             WHERE day = ?",
        )
        .bind(before_ms.div_euclid(86_400_000))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// The answer given just before `request_id` in its conversation (or, without one, to
    /// the same user) since `since_ms`: `(request_id, question, cache)`.
    pub async fn previous_answer(
        &self,
        session_id: Option<&str>,
        user: Option<&str>,
        request_id: &str,
        since_ms: i64,
    ) -> Result<Option<(String, String, String)>, StoreError> {
        let (column, value) = match (session_id, user) {
            (Some(session), _) => ("session_id", session),
            (None, Some(user)) => ("user", user),
            (None, None) => return Ok(None),
        };
        // `column` is one of two names above, never caller text.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT request_id, question, cache FROM answers WHERE {column} = ? \
             AND created_at_ms >= ? AND request_id != ? \
             ORDER BY created_at_ms DESC, request_id DESC LIMIT 1"
        )))
        .bind(value)
        .bind(since_ms)
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .transpose()
    }

    pub async fn mark_rephrased(&self, request_id: &str, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE answers SET rephrased_at_ms = COALESCE(rephrased_at_ms, ?) WHERE request_id = ?",
        )
        .bind(at_ms)
        .bind(request_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn answer(&self, request_id: &str) -> Result<Option<AnswerRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM answers WHERE request_id = ?")
            .bind(request_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(answer_row).transpose()
    }

    /// The latest feedback since `since_ms`, newest first, with the question it rates.
    pub async fn recent_feedback(
        &self,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<FeedbackItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.request_id, f.rating, f.comment, f.created_at_ms, f.escalated, \
             COALESCE(a.question, '') AS question FROM feedback f \
             LEFT JOIN answers a ON a.request_id = f.request_id \
             WHERE f.created_at_ms >= ? ORDER BY f.created_at_ms DESC, f.rowid DESC LIMIT ?",
        )
        .bind(since_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FeedbackItem {
                    request_id: r.try_get("request_id")?,
                    rating: r.try_get("rating")?,
                    comment: r.try_get("comment")?,
                    escalated: r.try_get("escalated")?,
                    question: r.try_get("question")?,
                    created_at_ms: r.try_get("created_at_ms")?,
                })
            })
            .collect()
    }

    /// Production answers since `since_ms`, oldest first (for human rating samples).
    pub async fn production_answers(&self, since_ms: i64) -> Result<Vec<AnswerRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM answers WHERE created_at_ms >= ? AND endpoint NOT LIKE 'eval/%' \
             ORDER BY created_at_ms, request_id",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(answer_row).collect()
    }

    /// Successful production answers rated `rating` (`up` or `down`) since `since_ms`, of
    /// `model` when given, oldest first.
    pub async fn rated_answers(
        &self,
        rating: &str,
        since_ms: i64,
        model: Option<&str>,
    ) -> Result<Vec<AnswerRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.* FROM answers a JOIN feedback f ON f.request_id = a.request_id \
             WHERE f.rating = ? AND a.status = 'success' AND a.created_at_ms >= ? \
             AND (? IS NULL OR a.model = ?) AND a.endpoint NOT LIKE 'eval/%' \
             ORDER BY a.created_at_ms, a.request_id",
        )
        .bind(rating)
        .bind(since_ms)
        .bind(model)
        .bind(model)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(answer_row).collect()
    }

    /// Records a sample's blinded items (`item_id → request_id`).
    pub async fn record_human_items(
        &self,
        items: &[(String, String)],
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (item_id, request_id) in items {
            sqlx::query(
                "INSERT OR IGNORE INTO human_items (item_id, request_id, sampled_at_ms) VALUES (?, ?, ?)",
            )
            .bind(item_id)
            .bind(request_id)
            .bind(at_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores ratings in one transaction; an unknown item id fails the whole import (`Err`
    /// holds it).
    pub async fn record_human_ratings(
        &self,
        ratings: &[HumanRating],
        at_ms: i64,
    ) -> Result<Result<(), String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        for rating in ratings {
            let known: Option<String> =
                sqlx::query_scalar("SELECT item_id FROM human_items WHERE item_id = ?")
                    .bind(&rating.item_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if known.is_none() {
                return Ok(Err(rating.item_id.clone()));
            }
            sqlx::query(
                "INSERT OR REPLACE INTO human_ratings (item_id, rater, rating, comment, imported_at_ms) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&rating.item_id)
            .bind(&rating.rater)
            .bind(i64::from(rating.rating))
            .bind(&rating.comment)
            .bind(at_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Every imported rating.
    pub async fn human_ratings(&self) -> Result<Vec<HumanRating>, StoreError> {
        let rows = sqlx::query(
            "SELECT item_id, rater, rating, comment FROM human_ratings ORDER BY item_id, rater",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let rating: i64 = r.try_get("rating")?;
                Ok(HumanRating {
                    item_id: r.try_get("item_id")?,
                    rater: r.try_get("rater")?,
                    rating: rating.clamp(1, 5) as u8,
                    comment: r.try_get("comment")?,
                })
            })
            .collect()
    }

    /// The answer behind a human-rating item.
    pub async fn human_item_answer(&self, item_id: &str) -> Result<Option<AnswerRow>, StoreError> {
        let row = sqlx::query(
            "SELECT a.* FROM human_items h JOIN answers a ON a.request_id = h.request_id \
             WHERE h.item_id = ?",
        )
        .bind(item_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(answer_row).transpose()
    }
}

fn answer_row(row: &sqlx::sqlite::SqliteRow) -> Result<AnswerRow, StoreError> {
    Ok(AnswerRow {
        request_id: row.try_get("request_id")?,
        created_at_ms: row.try_get("created_at_ms")?,
        endpoint: row.try_get("endpoint")?,
        key_id: row.try_get("key_id")?,
        session_id: row.try_get("session_id")?,
        user: row.try_get("user")?,
        question: row.try_get("question")?,
        answer: row.try_get("answer")?,
        status: row.try_get("status")?,
        category: row.try_get("category")?,
        prompt_version: row.try_get("prompt_version")?,
        model: row.try_get("model")?,
        cache: row.try_get("cache")?,
        cost_micro_usd: get_u64(row, "cost_micro_usd")?,
        saved_micro_usd: get_u64(row, "saved_micro_usd")?,
        latency_ms: row.try_get("latency_ms")?,
        escalated: row.try_get("escalated")?,
        rephrased: row.try_get::<Option<i64>, _>("rephrased_at_ms")?.is_some(),
        standalone: row.try_get("standalone")?,
        stage_latency_json: row.try_get("stage_latency_json")?,
    })
}
