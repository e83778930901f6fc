//! The production figures `askacme stats` and the admin dashboard show, read from hourly sums
//! (daily, for the questions) instead of the raw rows, so that a page costs about the same over
//! a million rows as over a thousand. Triggers keep the sums (migration `0012_rollups.sql`) in
//! the same transaction as every write to `answers`, `feedback` and `requests`; a window's
//! first, partial hour (day) is read from the raw rows through the same views the triggers use,
//! so a window's figures are exact but for its latency percentiles, which come from cumulative
//! histograms.

use std::fmt::Write;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{Database, StoreError, get_u64};

/// The upper bounds of the latency histograms, in milliseconds: 1, 1.5, 2, 3, 5 and 7 in each
/// decade from 0.1 ms to 70 s (the rollup tables' `le_…` columns, in this order).
pub const LATENCY_BOUNDS_MS: [f64; 36] = [
    0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0,
    70.0, 100.0, 150.0, 200.0, 300.0, 500.0, 700.0, 1000.0, 1500.0, 2000.0, 3000.0, 5000.0, 7000.0,
    10000.0, 15000.0, 20000.0, 30000.0, 50000.0, 70000.0,
];

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// The UTC day (`YYYY-MM-DD`) of a rollup row's `hour`.
const DAY_OF_HOUR: &str = "strftime('%Y-%m-%d', hour * 3600, 'unixepoch')";

/// The column counting what took at most `bound` ms: `le_0p15` for 0.15.
fn bucket_column(bound: f64) -> String {
    format!("le_{bound}").replace('.', "p")
}

/// `SUM(le_0p1) AS le_0p1, …` (with `sum`), or `le_0p1, …`.
fn bucket_columns(sum: bool) -> String {
    let mut out = String::new();
    for bound in LATENCY_BOUNDS_MS {
        let column = bucket_column(bound);
        let sep = if out.is_empty() { "" } else { ", " };
        let _ = if sum {
            write!(out, "{sep}SUM({column}) AS {column}")
        } else {
            write!(out, "{sep}{column}")
        };
    }
    out
}

/// The first whole `unit` at or after `since_ms`, in units: the window reads the sums from
/// there on and the raw rows before it.
fn first_whole(since_ms: i64, unit: i64) -> i64 {
    since_ms.div_euclid(unit) + i64::from(since_ms.rem_euclid(unit) != 0)
}

/// A cumulative latency histogram over `LATENCY_BOUNDS_MS`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// How many took at most each bound.
    pub at_most: Vec<u64>,
    pub count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            at_most: vec![0; LATENCY_BOUNDS_MS.len()],
            count: 0,
        }
    }
}

impl Histogram {
    fn from_row(row: &SqliteRow, count: u64) -> Result<Self, StoreError> {
        let mut at_most = Vec::with_capacity(LATENCY_BOUNDS_MS.len());
        for bound in LATENCY_BOUNDS_MS {
            let column = bucket_column(bound);
            at_most.push(
                row.try_get::<Option<i64>, _>(column.as_str())?
                    .unwrap_or(0)
                    .max(0) as u64,
            );
        }
        Ok(Self { at_most, count })
    }

    fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.at_most.iter_mut().zip(&other.at_most) {
            *mine += theirs;
        }
        self.count += other.count;
    }

    /// The histogram of `values` (ms).
    #[cfg(test)]
    pub fn of(values: &[f64]) -> Self {
        Self {
            at_most: LATENCY_BOUNDS_MS
                .iter()
                .map(|&bound| values.iter().filter(|&&v| v <= bound).count() as u64)
                .collect(),
            count: values.len() as u64,
        }
    }

    /// The `q` quantile, interpolated linearly within its bucket (as Prometheus'
    /// `histogram_quantile` does); the last bound when it lies beyond; 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = q.clamp(0.0, 1.0) * self.count as f64;
        let (mut lower, mut below) = (0.0, 0u64);
        for (&upper, &at_most) in LATENCY_BOUNDS_MS.iter().zip(&self.at_most) {
            if at_most as f64 >= rank && at_most > below {
                let share = (rank - below as f64) / (at_most - below) as f64;
                return lower + (upper - lower) * share.clamp(0.0, 1.0);
            }
            (lower, below) = (upper, at_most);
        }
        lower
    }
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
    /// The group a cell belongs to.
    fn of(self, cell: &AnswerCell) -> &str {
        match self {
            Grouping::All => "all",
            Grouping::Day => &cell.day,
            Grouping::PromptVersion => &cell.prompt_version,
            Grouping::Model => &cell.model,
            Grouping::Category => &cell.category,
            Grouping::Key => &cell.key_id,
        }
    }
}

/// The answers of one UTC day, model, key, prompt version and category: what every grouping
/// is folded from, so that a page showing several groupings reads the sums once.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerCell {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// `(none)` when no model was called.
    pub model: String,
    /// `(none)` without a key.
    pub key_id: String,
    pub prompt_version: String,
    pub category: String,
    pub figures: AnswerGroup,
}

/// `cells` grouped `by`, in the order of the groups' names.
pub fn group_cells(cells: &[AnswerCell], by: Grouping) -> Vec<AnswerGroup> {
    let mut groups: std::collections::BTreeMap<&str, AnswerGroup> = Default::default();
    for cell in cells {
        let name = by.of(cell);
        groups
            .entry(name)
            .or_insert_with(|| AnswerGroup {
                group: name.to_owned(),
                ..AnswerGroup::default()
            })
            .add(&cell.figures);
    }
    groups.into_values().filter(|g| g.answers > 0).collect()
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
    #[serde(skip)]
    pub latency: Histogram,
}

impl AnswerGroup {
    fn add(&mut self, other: &AnswerGroup) {
        self.answers += other.answers;
        self.success += other.success;
        self.no_answer += other.no_answer;
        self.filtered += other.filtered;
        self.output_filtered += other.output_filtered;
        self.thumbs_up += other.thumbs_up;
        self.thumbs_down += other.thumbs_down;
        self.rephrased += other.rephrased;
        self.escalated += other.escalated;
        self.exact_hits += other.exact_hits;
        self.semantic_hits += other.semantic_hits;
        self.cost_micro_usd += other.cost_micro_usd;
        self.saved_micro_usd += other.saved_micro_usd;
        self.latency.add(&other.latency);
    }
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

/// `answer_rollup`'s summed columns, in the order of its sums.
const ANSWER_COUNTS: [&str; 13] = [
    "answers",
    "success",
    "no_answer",
    "filtered",
    "output_filtered",
    "thumbs_up",
    "thumbs_down",
    "rephrased",
    "escalated",
    "exact_hits",
    "semantic_hits",
    "cost_micro_usd",
    "saved_micro_usd",
];

impl Database {
    /// Production answers since `since_ms`, grouped.
    pub async fn answer_stats(
        &self,
        since_ms: i64,
        by: Grouping,
    ) -> Result<Vec<AnswerGroup>, StoreError> {
        Ok(group_cells(&self.answer_cells(since_ms).await?, by))
    }

    /// Production answers since `since_ms` by day, model, key, prompt version and category.
    pub async fn answer_cells(&self, since_ms: i64) -> Result<Vec<AnswerCell>, StoreError> {
        let counts = ANSWER_COUNTS.join(", ");
        let sums = ANSWER_COUNTS
            .iter()
            .map(|c| format!("SUM({c}) AS {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let buckets = bucket_columns(false);
        let sql = format!(
            "WITH rows AS (\
             SELECT hour, model, key_id, prompt_version, category, {counts}, {buckets} \
             FROM answer_rollup WHERE hour >= ?1 \
             UNION ALL \
             SELECT hour, model, key_id, prompt_version, category, {counts}, {buckets} \
             FROM answer_facts WHERE created_at_ms >= ?2 AND created_at_ms < ?1 * {HOUR_MS}) \
             SELECT {DAY_OF_HOUR} AS day, model, key_id, prompt_version, category, {sums}, \
             {bucket_sums} FROM rows GROUP BY day, model, key_id, prompt_version, category \
             HAVING SUM(answers) > 0",
            bucket_sums = bucket_columns(true),
        );
        // Every name spliced in is one of the constants above, never caller text.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(first_whole(since_ms, HOUR_MS))
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let count = |name: &str| get_u64(row, name);
                let answers = count("answers")?;
                Ok(AnswerCell {
                    day: row.try_get("day")?,
                    model: row.try_get("model")?,
                    key_id: row.try_get("key_id")?,
                    prompt_version: row.try_get("prompt_version")?,
                    category: row.try_get("category")?,
                    figures: AnswerGroup {
                        group: String::new(),
                        answers,
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
                        cost_micro_usd: count("cost_micro_usd")?,
                        saved_micro_usd: count("saved_micro_usd")?,
                        latency: Histogram::from_row(row, answers)?,
                    },
                })
            })
            .collect()
    }

    /// The questions asked most often since `since_ms` (with `status` only, when given),
    /// folded by case and surrounding space: `(question, times)`.
    pub async fn top_questions(
        &self,
        since_ms: i64,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH rows AS (\
             SELECT question_key, question, answers FROM question_rollup \
             WHERE day >= ?1 AND (?3 IS NULL OR status = ?3) \
             UNION ALL \
             SELECT lower(trim(question)), question, 1 FROM answers \
             WHERE created_at_ms >= ?2 AND created_at_ms < ?1 * {DAY_MS} \
             AND (?3 IS NULL OR status = ?3) AND endpoint NOT LIKE 'eval/%') \
             SELECT MIN(question) AS question, SUM(answers) AS n FROM rows \
             GROUP BY question_key HAVING n > 0 ORDER BY n DESC, question LIMIT ?4"
        )))
        .bind(first_whole(since_ms, DAY_MS))
        .bind(since_ms)
        .bind(status)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("question")?, get_u64(r, "n")?)))
            .collect()
    }

    /// Each pipeline stage's latency histogram over the production answers since `since_ms`
    /// in which it ran, by stage name.
    pub async fn stage_latencies(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(String, Histogram)>, StoreError> {
        let buckets = bucket_columns(false);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH rows AS (\
             SELECT stage, answers, {buckets} FROM stage_rollup WHERE hour >= ?1 \
             UNION ALL \
             SELECT stage, 1, {buckets} FROM stage_facts \
             WHERE created_at_ms >= ?2 AND created_at_ms < ?1 * {HOUR_MS}) \
             SELECT stage, SUM(answers) AS answers, {bucket_sums} FROM rows \
             GROUP BY stage HAVING SUM(answers) > 0 ORDER BY stage",
            bucket_sums = bucket_columns(true),
        )))
        .bind(first_whole(since_ms, HOUR_MS))
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let answers = get_u64(r, "answers")?;
                Ok((r.try_get("stage")?, Histogram::from_row(r, answers)?))
            })
            .collect()
    }

    /// Gateway calls (every model request, the assistant's included) and their cost per UTC
    /// day and requested model since `since_ms`.
    pub async fn requests_by_day(&self, since_ms: i64) -> Result<Vec<DailyRequests>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH rows AS (\
             SELECT hour, model, requests, cost_micro_usd FROM request_rollup WHERE hour >= ?1 \
             UNION ALL \
             SELECT created_at_ms / {HOUR_MS}, requested_model, 1, cost_micro_usd FROM requests \
             WHERE created_at_ms >= ?2 AND created_at_ms < ?1 * {HOUR_MS}) \
             SELECT {DAY_OF_HOUR} AS day, model, SUM(requests) AS n, SUM(cost_micro_usd) AS cost \
             FROM rows GROUP BY day, model HAVING n > 0 ORDER BY day, model"
        )))
        .bind(first_whole(since_ms, HOUR_MS))
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AnswerRow, Feedback, RequestRecord, now_ms};

    /// The figures of every grouping, straight from the raw rows (the definition the sums
    /// must keep).
    async fn raw_answer_stats(db: &Database, since_ms: i64, by: Grouping) -> Vec<AnswerGroup> {
        let group = match by {
            Grouping::All => "'all'",
            Grouping::Day => "strftime('%Y-%m-%d', a.created_at_ms / 1000, 'unixepoch')",
            Grouping::PromptVersion => "a.prompt_version",
            Grouping::Model => "COALESCE(a.model, '(none)')",
            Grouping::Category => "a.category",
            Grouping::Key => "COALESCE(a.key_id, '(none)')",
        };
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
             GROUP BY grp ORDER BY grp"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(since_ms)
            .fetch_all(&db.pool)
            .await
            .unwrap();
        rows.iter()
            .map(|row| {
                let count =
                    |name: &str| row.try_get::<Option<i64>, _>(name).unwrap().unwrap_or(0) as u64;
                let latencies: Vec<f64> = row
                    .try_get::<String, _>("latencies")
                    .unwrap()
                    .split(',')
                    .map(|v| v.parse().unwrap())
                    .collect();
                AnswerGroup {
                    group: row.try_get("grp").unwrap(),
                    answers: count("answers"),
                    success: count("success"),
                    no_answer: count("no_answer"),
                    filtered: count("filtered"),
                    output_filtered: count("output_filtered"),
                    thumbs_up: count("thumbs_up"),
                    thumbs_down: count("thumbs_down"),
                    rephrased: count("rephrased"),
                    escalated: count("escalated"),
                    exact_hits: count("exact_hits"),
                    semantic_hits: count("semantic_hits"),
                    cost_micro_usd: count("cost"),
                    saved_micro_usd: count("saved"),
                    latency: Histogram::of(&latencies),
                }
            })
            .collect()
    }

    /// Answers over five hours written every way they can be (insert, recorded again before
    /// and after feedback as another model, hour and escalation, feedback given then changed or
    /// given before the answer, rephrase, an answer deleted before its feedback, a REPLACE,
    /// retention), requests beside them: every window, aligned to the hour or not, reads from
    /// the sums what the raw rows say.
    #[tokio::test]
    async fn the_sums_match_the_raw_rows_through_every_kind_of_write() {
        let dir =
            std::env::temp_dir().join(format!("askacme-rollup-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Database::open(&format!("sqlite://{}", dir.join("r.db").display()))
            .await
            .unwrap();
        let base = (now_ms() / DAY_MS - 3) * DAY_MS + 22 * HOUR_MS; // five hours over midnight
        let answer = |i: i64| AnswerRow {
            request_id: format!("a{i}"),
            created_at_ms: base + i * 4_321_000 % (5 * HOUR_MS),
            endpoint: if i % 11 == 0 {
                "eval/ask".into()
            } else {
                "/v1/ask".into()
            },
            key_id: (i % 3 != 0).then(|| format!("k{}", i % 3)),
            session_id: None,
            user: None,
            question: [
                "How long is leave?",
                " how long is LEAVE? ",
                "Password length?",
            ][(i % 3) as usize]
                .into(),
            answer: "A.".into(),
            status: ["success", "no_answer", "filtered", "output_filtered"][(i % 4) as usize]
                .into(),
            category: ["faq", "policy"][(i % 2) as usize].into(),
            prompt_version: format!("ask@v{}", i % 2 + 1),
            model: (i % 5 != 0).then(|| ["strong", "fast"][(i % 2) as usize].into()),
            cache: ["miss", "exact", "semantic", "bypass"][(i % 4) as usize].into(),
            cost_micro_usd: (i * 37 % 500) as u64,
            saved_micro_usd: (i * 11 % 90) as u64,
            latency_ms: (i * 997 % 12_000) as f64 + 0.5,
            escalated: i % 7 == 0,
            rephrased: false,
            standalone: None,
            stage_latency_json: match i % 4 {
                0 => None,
                1 => Some("not json".into()),
                _ => Some(format!(
                    "{{\"retrieve\":{}.5,\"generate\":{},\"cache\":0}}",
                    i % 9,
                    i * 101
                )),
            },
        };
        for i in 0..80 {
            db.record_answer(&answer(i)).await.unwrap();
        }
        for i in (0..80).step_by(9) {
            // Recorded again (REPLACE), as something else.
            let again = AnswerRow {
                status: "success".into(),
                latency_ms: 42.0,
                ..answer(i)
            };
            db.record_answer(&again).await.unwrap();
        }
        for i in (0..80).step_by(3) {
            let feedback = |helpful, escalated| Feedback {
                request_id: format!("a{i}"),
                created_at_ms: base,
                helpful,
                comment: None,
                escalated,
                rater: None,
            };
            db.record_feedback(&feedback(i % 2 == 0, i % 4 == 0))
                .await
                .unwrap();
            if i % 5 == 0 {
                // Changed: the upsert turns into an update.
                db.record_feedback(&feedback(i % 2 != 0, true))
                    .await
                    .unwrap();
            }
        }
        for i in (0..80).step_by(4) {
            db.mark_rephrased(&format!("a{i}"), base).await.unwrap();
        }
        // Rated, then recorded again as another model, hour and escalation.
        for i in (0..80).step_by(6) {
            let again = AnswerRow {
                model: Some("other".into()),
                created_at_ms: base + (i + 1) * 1_234_567 % (5 * HOUR_MS),
                escalated: i % 12 != 0,
                ..answer(i)
            };
            db.record_answer(&again).await.unwrap();
        }
        // Rated before it was recorded.
        let late = Feedback {
            request_id: "a80".into(),
            created_at_ms: base,
            helpful: true,
            comment: None,
            escalated: true,
            rater: None,
        };
        db.record_feedback(&late).await.unwrap();
        db.record_answer(&answer(80)).await.unwrap();
        // Gone before its feedback; replaced by a writer with a REPLACE.
        sqlx::query("DELETE FROM answers WHERE request_id = 'a21'")
            .execute(&db.pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT OR REPLACE INTO answers SELECT * FROM answers WHERE request_id = 'a33'",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        // A spelling only a forgotten answer has (it sorts first).
        let forgotten = AnswerRow {
            question: "  HOW LONG IS LEAVE?".into(),
            status: "success".into(),
            created_at_ms: base + 60_000,
            ..answer(81)
        };
        db.record_answer(&forgotten).await.unwrap();
        db.forget_answers_before(base + HOUR_MS / 2).await.unwrap();
        let (emptied,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM question_rollup WHERE answers <= 0")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(emptied, 0, "forgotten questions leave no text behind");
        let (stale,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM question_rollup q WHERE q.question != (SELECT MIN(a.question) \
             FROM answers a WHERE a.created_at_ms / 86400000 = q.day AND a.status = q.status \
             AND lower(trim(a.question)) = q.question_key AND a.endpoint NOT LIKE 'eval/%')",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(stale, 0, "no spelling only a forgotten answer had");
        let requests: Vec<_> = (0..50)
            .map(|i| RequestRecord {
                created_at_ms: base + i * 997_000 % (5 * HOUR_MS),
                cost_micro_usd: i as u64 * 3,
                ..RequestRecord::new(
                    format!("r{i}"),
                    "/v1/chat/completions",
                    ["m1", "m2"][i as usize % 2],
                )
            })
            .collect();
        db.insert_requests(&requests).await.unwrap();

        for since in [
            base - DAY_MS,
            base + HOUR_MS,
            base + 90 * 60_000,
            base + 3 * HOUR_MS + 1,
        ] {
            for by in [
                Grouping::All,
                Grouping::Day,
                Grouping::PromptVersion,
                Grouping::Model,
                Grouping::Category,
                Grouping::Key,
            ] {
                assert_eq!(
                    db.answer_stats(since, by).await.unwrap(),
                    raw_answer_stats(&db, since, by).await,
                    "since {since} by {by:?}"
                );
            }
            for status in [None, Some("no_answer")] {
                let expected: Vec<(String, u64)> = sqlx::query_as::<_, (String, i64)>(
                    "SELECT MIN(question), COUNT(*) AS n FROM answers WHERE created_at_ms >= ?1 \
                     AND (?2 IS NULL OR status = ?2) AND endpoint NOT LIKE 'eval/%' \
                     GROUP BY lower(trim(question)) ORDER BY n DESC, 1",
                )
                .bind(since)
                .bind(status)
                .fetch_all(&db.pool)
                .await
                .unwrap()
                .into_iter()
                .map(|(q, n)| (q, n as u64))
                .collect();
                assert!(!expected.is_empty());
                assert_eq!(
                    db.top_questions(since, status, 10).await.unwrap(),
                    expected,
                    "since {since}"
                );
            }
            let raw_requests: Vec<DailyRequests> = sqlx::query_as::<_, (String, String, i64, i64)>(
                "SELECT strftime('%Y-%m-%d', created_at_ms / 1000, 'unixepoch') AS day, \
                 requested_model, COUNT(*), SUM(cost_micro_usd) FROM requests \
                 WHERE created_at_ms >= ? GROUP BY 1, 2 ORDER BY 1, 2",
            )
            .bind(since)
            .fetch_all(&db.pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(day, model, n, cost)| DailyRequests {
                day,
                model,
                requests: n as u64,
                cost_micro_usd: cost as u64,
            })
            .collect();
            assert!(!raw_requests.is_empty());
            assert_eq!(db.requests_by_day(since).await.unwrap(), raw_requests);
            let mut stages: Vec<(String, Vec<f64>)> = Vec::new();
            let recorded: Vec<(String,)> = sqlx::query_as(
                "SELECT stage_latency_json FROM answers WHERE created_at_ms >= ? \
                 AND endpoint NOT LIKE 'eval/%' AND stage_latency_json IS NOT NULL",
            )
            .bind(since)
            .fetch_all(&db.pool)
            .await
            .unwrap();
            for (json,) in recorded {
                let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&json) else {
                    continue;
                };
                for (stage, ms) in map {
                    let ms = ms.as_f64().unwrap();
                    if ms <= 0.0 {
                        continue;
                    }
                    match stages.iter_mut().find(|(s, _)| *s == stage) {
                        Some((_, v)) => v.push(ms),
                        None => stages.push((stage, vec![ms])),
                    }
                }
            }
            stages.sort_by(|a, b| a.0.cmp(&b.0));
            let expected: Vec<_> = stages
                .into_iter()
                .map(|(s, v)| (s, Histogram::of(&v)))
                .collect();
            assert!(!expected.is_empty());
            assert_eq!(
                db.stage_latencies(since).await.unwrap(),
                expected,
                "since {since}"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn quantiles_interpolate_within_the_bucket_and_stop_at_the_last_bound() {
        let h = Histogram::of(&[1200.0, 1400.0, 1800.0, 2500.0]);
        // Ranks 2 of 4 in 1000–1500 (both there), 3.8 in 2000–3000 (the only one there).
        assert_eq!(h.quantile(0.5), 1500.0);
        assert!(
            (h.quantile(0.95) - 2800.0).abs() < 1e-6,
            "{}",
            h.quantile(0.95)
        );
        assert!((Histogram::of(&[0.05]).quantile(0.5) - 0.05).abs() < 1e-9);
        assert_eq!(Histogram::of(&[90_000.0]).quantile(0.5), 70_000.0);
        assert_eq!(Histogram::default().quantile(0.5), 0.0);
    }

    #[test]
    fn windows_read_whole_units_from_the_first_one_after_their_start() {
        assert_eq!(first_whole(7_200_000, HOUR_MS), 2);
        assert_eq!(first_whole(7_200_001, HOUR_MS), 3);
        assert_eq!(bucket_column(0.15), "le_0p15");
        assert_eq!(bucket_column(70_000.0), "le_70000");
    }
}
