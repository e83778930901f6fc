//! Production figures over the assistant's recorded answers, for `askacme stats` and
//! `GET /admin/stats` (one implementation): answer / no_answer / filtered rates, thumbs-up,
//! rephrase and escalation rates, cache hit rates, spend and spend saved, latency
//! percentiles (interpolated in the store's histograms), and the questions most often left
//! unanswered (knowledge gaps for the documents' owners). Evaluation runs are left out.

use std::fmt::Write;

use serde::Serialize;

use crate::store::{
    AnswerGroup, DailyRequests, Database, FeedbackItem, Grouping, HitFilter, StoreError,
    group_cells, now_ms,
};

/// How many questions (asked most, unanswered most) a report lists.
const TOP_QUESTIONS: u32 = 10;

/// How many recent ratings, evaluation runs and near matches the dashboard lists.
const RECENT: u32 = 20;

/// `day`, `prompt_version`, `model`, `category`, `key`.
pub fn parse_grouping(text: &str) -> Result<Grouping, String> {
    Ok(match text {
        "all" => Grouping::All,
        "day" => Grouping::Day,
        "prompt_version" | "prompt" => Grouping::PromptVersion,
        "model" => Grouping::Model,
        "category" => Grouping::Category,
        "key" => Grouping::Key,
        other => {
            return Err(format!(
                "unknown grouping `{other}` (day, prompt_version, model, category, key)"
            ));
        }
    })
}

/// One group's figures; rates are shares of the group's answers.
#[derive(Debug, Clone, Serialize)]
pub struct GroupFigures {
    #[serde(flatten)]
    pub counts: AnswerGroup,
    pub answer_rate: f64,
    pub no_answer_rate: f64,
    pub filtered_rate: f64,
    /// Thumbs up among rated answers (`None` when none was rated).
    pub thumbs_up_rate: Option<f64>,
    pub rephrase_rate: f64,
    pub escalation_rate: f64,
    pub exact_hit_rate: f64,
    pub semantic_hit_rate: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatsReport {
    pub since_ms: i64,
    pub groups: Vec<GroupFigures>,
    pub top_unanswered: Vec<QuestionCount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuestionCount {
    pub question: String,
    pub times: u64,
}

pub async fn report(db: &Database, since_ms: i64, by: Grouping) -> Result<StatsReport, StoreError> {
    let groups = db
        .answer_stats(since_ms, by)
        .await?
        .into_iter()
        .map(figures)
        .collect();
    let top_unanswered = db
        .top_questions(since_ms, Some("no_answer"), TOP_QUESTIONS)
        .await?
        .into_iter()
        .map(|(question, times)| QuestionCount { question, times })
        .collect();
    Ok(StatsReport {
        since_ms,
        groups,
        top_unanswered,
    })
}

/// The admin dashboard's figures (`GET /admin/dashboard`, `askacme stats --dashboard`): the
/// report grouped every way, gateway calls per day, latency per stage, what people ask, rate
/// and say, evaluation runs and the semantic cache's near matches.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub since_ms: i64,
    pub summary: Option<GroupFigures>,
    pub by_day: Vec<GroupFigures>,
    pub by_model: Vec<GroupFigures>,
    pub by_key: Vec<GroupFigures>,
    pub by_prompt_version: Vec<GroupFigures>,
    pub requests_by_day: Vec<DailyRequests>,
    pub stages: Vec<StageFigures>,
    pub top_questions: Vec<QuestionCount>,
    pub top_unanswered: Vec<QuestionCount>,
    pub feedback: Vec<FeedbackItem>,
    pub eval_runs: Vec<EvalRun>,
    pub semantic_matches: Vec<NearMatch>,
}

/// One pipeline stage's latency percentiles, over the answers in which it ran.
#[derive(Debug, Clone, Serialize)]
pub struct StageFigures {
    pub stage: String,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalRun {
    pub run_id: String,
    pub suite: String,
    pub prompt_version: Option<String>,
    pub model: Option<String>,
    pub started_at_ms: i64,
    pub cases: u32,
    pub passed: u32,
    pub pass_rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NearMatch {
    pub request_id: String,
    pub question: String,
    pub matched_question: String,
    pub similarity: f32,
    pub served: bool,
    /// `served`, or why the guard refused.
    pub reason: String,
    pub flagged: bool,
    pub created_at_ms: i64,
}

pub async fn dashboard(db: &Database, since_ms: i64) -> Result<Dashboard, StoreError> {
    // Two chains of reads side by side, the two heaviest first: at most two of the pool's
    // connections, so the gateway's writes never queue behind a dashboard.
    let answers = async {
        Ok::<_, StoreError>((
            db.answer_cells(since_ms).await?,
            db.top_questions(since_ms, Some("no_answer"), TOP_QUESTIONS)
                .await?,
            db.requests_by_day(since_ms).await?,
            db.eval_runs(None, RECENT).await?,
        ))
    };
    let questions = async {
        Ok::<_, StoreError>((
            db.top_questions(since_ms, None, TOP_QUESTIONS).await?,
            db.stage_latencies(since_ms).await?,
            db.recent_feedback(since_ms, RECENT).await?,
            db.semantic_hits(HitFilter::All, RECENT).await?,
        ))
    };
    let ((cells, unanswered, requests_by_day, runs), (top, stages, feedback, hits)) =
        tokio::try_join!(answers, questions)?;
    let grouped = |by| group_cells(&cells, by).into_iter().map(figures).collect();
    let listed = |rows: Vec<(String, u64)>| {
        rows.into_iter()
            .map(|(question, times)| QuestionCount { question, times })
            .collect()
    };
    let runs = runs
        .into_iter()
        .filter(|run| run.started_at_ms >= since_ms)
        .map(|run| EvalRun {
            pass_rate: f64::from(run.cases_passed) / f64::from(run.cases.max(1)),
            run_id: run.id,
            suite: run.suite,
            prompt_version: run.prompt_version,
            model: run.model,
            started_at_ms: run.started_at_ms,
            cases: run.cases,
            passed: run.cases_passed,
        })
        .collect();
    let matches = hits
        .into_iter()
        .filter(|hit| hit.created_at_ms >= since_ms)
        .map(|hit| NearMatch {
            served: hit.decision == "served",
            flagged: hit.flag_reason.is_some(),
            request_id: hit.request_id,
            question: hit.question,
            matched_question: hit.matched_question,
            similarity: hit.similarity,
            reason: hit.decision,
            created_at_ms: hit.created_at_ms,
        })
        .collect();
    let summary: Vec<GroupFigures> = grouped(Grouping::All);
    Ok(Dashboard {
        since_ms,
        summary: summary.into_iter().next(),
        by_day: grouped(Grouping::Day),
        by_model: grouped(Grouping::Model),
        by_key: grouped(Grouping::Key),
        by_prompt_version: grouped(Grouping::PromptVersion),
        requests_by_day,
        stages: stages
            .into_iter()
            .map(|(stage, latency)| StageFigures {
                stage,
                p50_ms: latency.quantile(0.5),
                p95_ms: latency.quantile(0.95),
            })
            .collect(),
        top_questions: listed(top),
        top_unanswered: listed(unanswered),
        feedback,
        eval_runs: runs,
        semantic_matches: matches,
    })
}

/// The start of a window ending now.
pub fn since(window_ms: i64) -> i64 {
    now_ms().saturating_sub(window_ms)
}

fn figures(counts: AnswerGroup) -> GroupFigures {
    let share = |n: u64| n as f64 / counts.answers.max(1) as f64;
    let rated = counts.thumbs_up + counts.thumbs_down;
    GroupFigures {
        answer_rate: share(counts.success),
        no_answer_rate: share(counts.no_answer),
        filtered_rate: share(counts.filtered + counts.output_filtered),
        thumbs_up_rate: (rated > 0).then(|| counts.thumbs_up as f64 / rated as f64),
        rephrase_rate: share(counts.rephrased),
        escalation_rate: share(counts.escalated),
        exact_hit_rate: share(counts.exact_hits),
        semantic_hit_rate: share(counts.semantic_hits),
        latency_p50_ms: counts.latency.quantile(0.5),
        latency_p95_ms: counts.latency.quantile(0.95),
        counts,
    }
}

pub fn table(report: &StatsReport) -> String {
    let mut out = String::new();
    let width = report
        .groups
        .iter()
        .map(|g| g.counts.group.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "{:<width$} {:>8} {:>7} {:>7} {:>7} {:>6} {:>8} {:>8} {:>6} {:>6} {:>11} {:>11} {:>8} {:>8}",
        "group",
        "answers",
        "answer",
        "no_ans",
        "filter",
        "up",
        "rephrase",
        "escalate",
        "exact",
        "sem.",
        "spend USD",
        "saved USD",
        "p50 ms",
        "p95 ms"
    );
    let pct = |v: f64| format!("{:.1}%", 100.0 * v);
    for g in &report.groups {
        let _ = writeln!(
            out,
            "{:<width$} {:>8} {:>7} {:>7} {:>7} {:>6} {:>8} {:>8} {:>6} {:>6} {:>11.6} {:>11.6} {:>8.0} {:>8.0}",
            g.counts.group,
            g.counts.answers,
            pct(g.answer_rate),
            pct(g.no_answer_rate),
            pct(g.filtered_rate),
            g.thumbs_up_rate.map_or("-".into(), pct),
            pct(g.rephrase_rate),
            pct(g.escalation_rate),
            pct(g.exact_hit_rate),
            pct(g.semantic_hit_rate),
            g.counts.cost_micro_usd as f64 / 1e6,
            g.counts.saved_micro_usd as f64 / 1e6,
            g.latency_p50_ms,
            g.latency_p95_ms
        );
    }
    if !report.top_unanswered.is_empty() {
        let _ = writeln!(out, "\ntop unanswered questions (knowledge gaps):");
        for u in &report.top_unanswered {
            let _ = writeln!(out, "  {:>5}× {}", u.times, u.question);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Histogram;

    #[test]
    fn durations_and_groupings_parse_or_say_why_not() {
        use crate::config::parse_duration_ms;
        assert_eq!(parse_duration_ms("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_duration_ms("90s"), Ok(90_000));
        assert!(parse_duration_ms("7").unwrap_err().contains("unit"));
        assert!(parse_duration_ms("7w").unwrap_err().contains("`w`"));
        assert!(parse_duration_ms("99999999999999999d").is_err());
        assert_eq!(parse_grouping("model"), Ok(Grouping::Model));
        assert!(parse_grouping("colour").is_err());
    }

    #[test]
    fn rates_are_shares_of_the_group_and_thumbs_of_the_rated() {
        let g = figures(AnswerGroup {
            group: "all".into(),
            answers: 4,
            success: 2,
            no_answer: 1,
            filtered: 1,
            thumbs_up: 1,
            thumbs_down: 1,
            rephrased: 1,
            latency: Histogram::of(&[40.0, 10.0, 30.0, 20.0]),
            ..AnswerGroup::default()
        });
        assert_eq!(
            (g.answer_rate, g.no_answer_rate, g.filtered_rate),
            (0.5, 0.25, 0.25)
        );
        assert_eq!(g.thumbs_up_rate, Some(0.5));
        assert_eq!(g.rephrase_rate, 0.25);
        // Interpolated within the histogram's buckets (15–20 ms, 30–50 ms).
        assert_eq!(g.latency_p50_ms, 20.0);
        assert!(
            (g.latency_p95_ms - 46.0).abs() < 1e-6,
            "{}",
            g.latency_p95_ms
        );
        assert_eq!(figures(AnswerGroup::default()).thumbs_up_rate, None);
    }
}
