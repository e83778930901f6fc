//! The assistant's answers as production signals: one row per answer, what followed it
//! (rephrased, escalated), the figures `askacme stats` and `/admin/stats` show, and the blinded
//! items and ratings of human evaluation.

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

/// Gateway calls of one day and model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DailyRequests {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub model: String,
    pub requests: u64,
    pub cost_micro_usd: u64,
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

/// How `answer_stats` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    All,
    Day,
    PromptVersion,
    Model,
    Category,
    Key,
}

impl Grouping {
    fn column(self) -> &'static str {
        match self {
            Grouping::All => "'all'",
            Grouping::Day => "strftime('%Y-%m-%d', a.created_at_ms / 1000, 'unixepoch')",
            Grouping::PromptVersion => "a.prompt_version",
            Grouping::Model => "COALESCE(a.model, '(none)')",
            Grouping::Category => "a.category",
            Grouping::Key => "COALESCE(a.key_id, '(none)')",
        }
    }
}

/// The figures of one group of answers.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AnswerGroup {
    pub group: String,
    pub answers: u64,
    pub success: u64,
    pub no_answer: u64,
    pub filtered: u64,
    pub output_filtered: u64,
    pub thumbs_up: u64,
    pub thumbs_down: u64,
    pub rephrased: u64,
    pub escalated: u64,
    pub exact_hits: u64,
    pub semantic_hits: u64,
    pub cost_micro_usd: u64,
    pub saved_micro_usd: u64,
    /// Every answer's latency, for percentiles.
    #[serde(skip)]
    pub latencies_ms: Vec<f64>,
}

// Production figures leave out evaluation runs, which answer through `eval/…` endpoints
// (`endpoint NOT LIKE 'eval/%'` in the queries below).

impl Database {
    pub async fn record_answer(&self, row: &AnswerRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO answers (request_id, created_at_ms, endpoint, key_id, \
             session_id, user, question, answer, status, category, prompt_version, model, \
             cache, cost_micro_usd, saved_micro_usd, latency_ms, escalated, standalone, \
             stage_latency_json) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

    /// Production answers since `since_ms`, grouped.
    pub async fn answer_stats(
        &self,
        since_ms: i64,
        by: Grouping,
    ) -> Result<Vec<AnswerGroup>, StoreError> {
        let sql = format!(
            "SELECT {group} AS grp, COUNT(*) AS answers, \
             SUM(a.status = 'success') AS success, SUM(a.status = 'no_answer') AS no_answer, \
             SUM(a.status = 'filtered') AS filtered, \
             SUM(a.status = 'output_filtered') AS output_filtered, \
             SUM(f.rating = 'up') AS thumbs_up, SUM(f.rating = 'down') AS thumbs_down, \
             SUM(a.rephrased_at_ms IS NOT NULL) AS rephrased, \
             SUM(a.escalated = 1 OR COALESCE(f.escalated, 0) = 1) AS escalated, \
             SUM(a.cache = 'exact') AS exact_hits, SUM(a.cache = 'semantic') AS semantic_hits, \
             SUM(a.cost_micro_usd) AS cost, SUM(a.saved_micro_usd) AS saved, \
             GROUP_CONCAT(a.latency_ms) AS latencies \
             FROM answers a LEFT JOIN feedback f ON f.request_id = a.request_id \
             WHERE a.created_at_ms >= ? AND a.endpoint NOT LIKE 'eval/%' \
             GROUP BY grp ORDER BY grp",
            group = by.column()
        );
        // The grouping expression is one of `Grouping::column`'s constants.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let count = |name: &str| -> Result<u64, StoreError> {
                    Ok(row.try_get::<Option<i64>, _>(name)?.unwrap_or(0).max(0) as u64)
                };
                let latencies: Option<String> = row.try_get("latencies")?;
                Ok(AnswerGroup {
                    group: row.try_get("grp")?,
                    answers: count("answers")?,
                    success: count("success")?,
                    no_answer: count("no_answer")?,
                    filtered: count("filtered")?,
                    output_filtered: count("output_filtered")?,
                    thumbs_up: count("thumbs_up")?,
                    thumbs_down: count("thumbs_down")?,
                    rephrased: count("rephrased")?,
                    escalated: count("escalated")?,
                    exact_hits: count("exact_hits")?,
                    semantic_hits: count("semantic_hits")?,
                    cost_micro_usd: count("cost")?,
                    saved_micro_usd: count("saved")?,
                    latencies_ms: latencies
                        .unwrap_or_default()
                        .split(',')
                        .filter_map(|v| v.parse().ok())
                        .collect(),
                })
            })
            .collect()
    }

    /// The questions most often answered `no_answer` since `since_ms`: knowledge gaps.
    /// The questions asked most often since `since_ms` (with `status` only, when given),
    /// folded by case and surrounding space: `(question, times)`.
    pub async fn top_questions(
        &self,
        since_ms: i64,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT MIN(question) AS question, COUNT(*) AS n FROM answers \
             WHERE (?1 IS NULL OR status = ?1) AND created_at_ms >= ?2 \
             AND endpoint NOT LIKE 'eval/%' \
             GROUP BY lower(trim(question)) ORDER BY n DESC, question LIMIT ?3",
        )
        .bind(status)
        .bind(since_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("question")?, get_u64(r, "n")?)))
            .collect()
    }

    /// Every production answer's per-stage latencies since `since_ms` (JSON objects).
    pub async fn stage_latencies(&self, since_ms: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT stage_latency_json FROM answers WHERE created_at_ms >= ? \
             AND endpoint NOT LIKE 'eval/%' AND stage_latency_json IS NOT NULL",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
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

    /// Gateway calls (every model request, the assistant's included) and their cost per UTC
    /// day and requested model since `since_ms`.
    pub async fn requests_by_day(&self, since_ms: i64) -> Result<Vec<DailyRequests>, StoreError> {
        let rows = sqlx::query(
            "SELECT strftime('%Y-%m-%d', created_at_ms / 1000, 'unixepoch') AS day, \
             requested_model AS model, COUNT(*) AS n, SUM(cost_micro_usd) AS cost \
             FROM requests WHERE created_at_ms >= ? GROUP BY day, model ORDER BY day, model",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DailyRequests {
                    day: r.try_get("day")?,
                    model: r.try_get("model")?,
                    requests: get_u64(r, "n")?,
                    cost_micro_usd: get_u64(r, "cost")?,
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
