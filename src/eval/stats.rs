//! Production figures over the assistant's recorded answers, for `askacme stats` and
//! `GET /admin/stats` (one implementation): answer / no_answer / filtered rates, thumbs-up,
//! rephrase and escalation rates, cache hit rates, spend and spend saved, latency
//! percentiles, and the questions most often left unanswered (knowledge gaps for the
//! documents' owners). Evaluation runs are left out.

use std::fmt::Write;

use serde::Serialize;

use crate::store::{AnswerGroup, Database, Grouping, StoreError, now_ms};

/// How many unanswered questions the report lists.
const TOP_UNANSWERED: u32 = 10;

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
    pub top_unanswered: Vec<Unanswered>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unanswered {
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
        .top_unanswered(since_ms, TOP_UNANSWERED)
        .await?
        .into_iter()
        .map(|(question, times)| Unanswered { question, times })
        .collect();
    Ok(StatsReport {
        since_ms,
        groups,
        top_unanswered,
    })
}

/// The start of a window ending now.
pub fn since(window_ms: i64) -> i64 {
    now_ms().saturating_sub(window_ms)
}

fn figures(mut counts: AnswerGroup) -> GroupFigures {
    let share = |n: u64| n as f64 / counts.answers.max(1) as f64;
    let rated = counts.thumbs_up + counts.thumbs_down;
    counts.latencies_ms.sort_unstable_by(|a, b| a.total_cmp(b));
    let percentile = |q: f64| {
        let n = counts.latencies_ms.len();
        counts
            .latencies_ms
            .get(((n as f64 * q) as usize).min(n.saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    GroupFigures {
        answer_rate: share(counts.success),
        no_answer_rate: share(counts.no_answer),
        filtered_rate: share(counts.filtered + counts.output_filtered),
        thumbs_up_rate: (rated > 0).then(|| counts.thumbs_up as f64 / rated as f64),
        rephrase_rate: share(counts.rephrased),
        escalation_rate: share(counts.escalated),
        exact_hit_rate: share(counts.exact_hits),
        semantic_hit_rate: share(counts.semantic_hits),
        latency_p50_ms: percentile(0.5),
        latency_p95_ms: percentile(0.95),
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
            latencies_ms: vec![40.0, 10.0, 30.0, 20.0],
            ..AnswerGroup::default()
        });
        assert_eq!(
            (g.answer_rate, g.no_answer_rate, g.filtered_rate),
            (0.5, 0.25, 0.25)
        );
        assert_eq!(g.thumbs_up_rate, Some(0.5));
        assert_eq!(g.rephrase_rate, 0.25);
        assert_eq!((g.latency_p50_ms, g.latency_p95_ms), (30.0, 40.0));
        assert_eq!(figures(AnswerGroup::default()).thumbs_up_rate, None);
    }
}
