//! The judge at work: over a suite's reference answers (`askacme eval judge`: rubric scores
//! per case with their spread over repeats, and pairwise verdicts against a baseline with
//! position consistency and length bias) and over human-labelled answers (`--calibrate`:
//! accuracy and Cohen's κ against the labels).

use std::fmt::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::agreement::cohen_kappa;
use super::assertion::excerpt;
use super::backend::{Backend, BackendError, Question};
use super::judge::{Judge, PairOutcome};
use super::suite::{Input, Suite, SuiteError};
use crate::pipeline::Overrides;

/// A rubric correctness score at or above this is a "good" answer.
pub const GOOD_SCORE: u8 = 4;

/// Answers whose lengths differ by less than this share are "of similar length".
const SIMILAR_LENGTH: f64 = 0.2;

#[derive(Debug, thiserror::Error)]
pub enum JudgingError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Suite(#[from] SuiteError),
    #[error("{path}: {message}")]
    Calibration { path: String, message: String },
    #[error("{0}")]
    SelfJudging(String),
}

// ---- calibration ----

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalibrationFile {
    item: Vec<CalibrationItem>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationItem {
    pub id: String,
    pub question: String,
    pub reference: String,
    pub answer: String,
    pub label: Label,
    /// The labeller's own 1–5 score.
    pub score: u8,
    #[serde(default)]
    pub why: String,
    #[serde(default)]
    pub doc: String,
    /// Style of a good answer, or the kind of mistake in a bad one.
    #[serde(default)]
    pub kind: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    Good,
    Bad,
}

pub struct CalibrationSet {
    pub items: Vec<CalibrationItem>,
}

impl CalibrationSet {
    pub fn load(path: &Path) -> Result<Self, JudgingError> {
        let invalid = |message: String| JudgingError::Calibration {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
        let file: CalibrationFile = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        for item in &file.item {
            if !(1..=5).contains(&item.score) {
                return Err(invalid(format!("item {}: score must be 1-5", item.id)));
            }
        }
        Ok(Self { items: file.item })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CalibrationVerdict {
    pub id: String,
    pub kind: String,
    pub label: Label,
    /// `None`: the judge's reply did not parse.
    pub judged: Option<Label>,
    pub correctness: Option<u8>,
    pub reason: String,
    /// The judge's raw reply, when it did not parse.
    pub unparsable: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CalibrationReport {
    pub judge: String,
    pub items: usize,
    pub unparsable: usize,
    /// Share of parsed verdicts that match the human label.
    pub accuracy: f64,
    /// Cohen's κ between the judge and the labels (parsed verdicts only).
    pub kappa: Option<f64>,
    /// Mean |judge correctness − human score| over parsed verdicts.
    pub mean_score_error: f64,
    pub verdicts: Vec<CalibrationVerdict>,
    pub cost_micro_usd: u64,
}

pub async fn calibrate(
    set: &CalibrationSet,
    judge: &Judge<'_>,
) -> Result<CalibrationReport, JudgingError> {
    let mut verdicts = Vec::with_capacity(set.items.len());
    let mut cost_micro_usd = 0;
    let mut score_error = 0.0;
    for item in &set.items {
        let verdict = judge
            .rubric(&item.question, Some(&item.reference), &item.answer, None)
            .await?;
        cost_micro_usd += verdict.cost_micro_usd;
        if let Some(score) = verdict.correctness {
            score_error += f64::from(score.abs_diff(item.score));
        }
        verdicts.push(CalibrationVerdict {
            id: item.id.clone(),
            kind: item.kind.clone(),
            label: item.label,
            judged: verdict.correctness.map(|s| {
                if s >= GOOD_SCORE {
                    Label::Good
                } else {
                    Label::Bad
                }
            }),
            correctness: verdict.correctness,
            reason: verdict.reason,
            unparsable: verdict.unparsable,
        });
    }
    let parsed: Vec<&CalibrationVerdict> = verdicts.iter().filter(|v| v.judged.is_some()).collect();
    let agreeing = parsed.iter().filter(|v| v.judged == Some(v.label)).count();
    let code = |l: Label| Some(u32::from(l == Label::Good));
    let kappa = cohen_kappa(
        &parsed.iter().map(|v| code(v.label)).collect::<Vec<_>>(),
        &parsed
            .iter()
            .map(|v| v.judged.and_then(code))
            .collect::<Vec<_>>(),
    );
    Ok(CalibrationReport {
        judge: judge.model.clone(),
        items: verdicts.len(),
        unparsable: verdicts.len() - parsed.len(),
        accuracy: agreeing as f64 / parsed.len().max(1) as f64,
        kappa,
        mean_score_error: score_error / parsed.len().max(1) as f64,
        verdicts,
        cost_micro_usd,
    })
}

pub fn calibration_table(report: &CalibrationReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "judge {} on {} human-labelled answers",
        report.judge, report.items
    );
    let mut kinds: Vec<&str> = report.verdicts.iter().map(|v| v.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let _ = writeln!(
        out,
        "{:<28} {:>6} {:>8} {:>11}",
        "kind", "items", "agreed", "unparsable"
    );
    for kind in kinds {
        let of: Vec<&CalibrationVerdict> =
            report.verdicts.iter().filter(|v| v.kind == kind).collect();
        let _ = writeln!(
            out,
            "{:<28} {:>6} {:>8} {:>11}",
            kind,
            of.len(),
            of.iter().filter(|v| v.judged == Some(v.label)).count(),
            of.iter().filter(|v| v.judged.is_none()).count()
        );
    }
    let _ = writeln!(
        out,
        "\naccuracy {:.1}% · Cohen's κ {} · mean |score − human| {:.2} · {} unparsable (not counted) · cost ${:.6}",
        100.0 * report.accuracy,
        report.kappa.map_or("n/a".into(), |k| format!("{k:.3}")),
        report.mean_score_error,
        report.unparsable,
        report.cost_micro_usd as f64 / 1e6
    );
    let _ = writeln!(out, "\ndisagreements:");
    for v in report.verdicts.iter().filter(|v| v.judged != Some(v.label)) {
        let _ = writeln!(
            out,
            "  {} ({}): human {:?}, judge {} — {}",
            v.id,
            v.kind,
            v.label,
            v.correctness.map_or("unparsable".into(), |s| s.to_string()),
            excerpt(v.unparsable.as_deref().unwrap_or(&v.reason))
        );
    }
    out
}

// ---- a suite judged ----

#[derive(Debug, Clone, Serialize)]
pub struct JudgedCase {
    pub id: String,
    pub answer: String,
    /// Correctness over the repeats (`None` where unparsable).
    pub correctness: Vec<Option<u8>>,
    pub completeness: Vec<Option<u8>>,
    pub conciseness: Vec<Option<u8>>,
    pub baseline_answer: Option<String>,
    pub pair: Option<PairOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JudgeReport {
    pub suite: String,
    pub judge: String,
    pub candidate: String,
    pub baseline: Option<String>,
    pub repeat: u32,
    pub cases: Vec<JudgedCase>,
    pub cost_micro_usd: u64,
}

impl JudgeReport {
    fn pairs(&self) -> impl Iterator<Item = (&JudgedCase, PairOutcome)> {
        self.cases.iter().filter_map(|c| c.pair.map(|p| (c, p)))
    }

    /// Share of parsed pairs whose verdict did not change with the order.
    pub fn position_consistency(&self) -> Option<f64> {
        let parsed: Vec<PairOutcome> = self
            .pairs()
            .map(|(_, p)| p)
            .filter(|p| *p != PairOutcome::Unparsable)
            .collect();
        let consistent = parsed
            .iter()
            .filter(|p| **p != PairOutcome::PositionInconsistent)
            .count();
        (!parsed.is_empty()).then(|| consistent as f64 / parsed.len() as f64)
    }

    /// Among decisive pairs of clearly different length, how often the longer answer won; and
    /// the candidate's win rate among decisive pairs of similar length.
    pub fn length_bias(&self) -> (Option<f64>, Option<f64>) {
        let (mut longer_won, mut different) = (0usize, 0usize);
        let (mut candidate_won, mut similar) = (0usize, 0usize);
        for (case, pair) in self.pairs() {
            let candidate_wins = match pair {
                PairOutcome::CandidateWins => true,
                PairOutcome::BaselineWins => false,
                _ => continue,
            };
            let a = case.answer.chars().count() as f64;
            let b = case
                .baseline_answer
                .as_deref()
                .unwrap_or_default()
                .chars()
                .count() as f64;
            if (a - b).abs() / a.max(b).max(1.0) < SIMILAR_LENGTH {
                similar += 1;
                candidate_won += usize::from(candidate_wins);
            } else {
                different += 1;
                longer_won += usize::from(candidate_wins == (a > b));
            }
        }
        let share = |n: usize, of: usize| (of > 0).then(|| n as f64 / of as f64);
        (share(longer_won, different), share(candidate_won, similar))
    }
}

pub async fn judge_suite(
    suite: &Suite,
    backend: &dyn Backend,
    judge: &Judge<'_>,
    candidate: &str,
    baseline: Option<&str>,
    repeat: u32,
) -> Result<JudgeReport, JudgingError> {
    let mut cases = Vec::new();
    let mut cost_micro_usd = 0;
    for case in &suite.cases {
        let (
            Input::Ask {
                question,
                context,
                collection,
            },
            Some(reference),
        ) = (&case.input, &case.reference)
        else {
            continue;
        };
        let answer = |version: &str| Question {
            question: question.clone(),
            collection: collection.clone(),
            fresh: false,
            overrides: Overrides {
                prompt_version: Some(version.to_owned()),
                model: None,
                context: context.clone(),
            },
        };
        let answered = backend.ask(&answer(candidate)).await?;
        cost_micro_usd += answered.cost_micro_usd;
        if let Some(why) = judge.refuses(&answered) {
            return Err(JudgingError::SelfJudging(why));
        }
        let mut judged = JudgedCase {
            id: case.id.clone(),
            answer: answered.answer.clone(),
            correctness: Vec::new(),
            completeness: Vec::new(),
            conciseness: Vec::new(),
            baseline_answer: None,
            pair: None,
        };
        for _ in 0..repeat.max(1) {
            let verdict = judge
                .rubric(question, Some(reference), &answered.answer, None)
                .await?;
            cost_micro_usd += verdict.cost_micro_usd;
            judged.correctness.push(verdict.correctness);
            judged.completeness.push(verdict.completeness);
            judged.conciseness.push(verdict.conciseness);
        }
        if let Some(baseline) = baseline {
            let other = backend.ask(&answer(baseline)).await?;
            cost_micro_usd += other.cost_micro_usd;
            if let Some(why) = judge.refuses(&other) {
                return Err(JudgingError::SelfJudging(why));
            }
            let pair = judge
                .pairwise(question, Some(reference), &answered.answer, &other.answer)
                .await?;
            cost_micro_usd += pair.cost_micro_usd;
            judged.pair = Some(pair.outcome());
            judged.baseline_answer = Some(other.answer);
        }
        cases.push(judged);
    }
    Ok(JudgeReport {
        suite: suite.name.clone(),
        judge: judge.model.clone(),
        candidate: candidate.to_owned(),
        baseline: baseline.map(str::to_owned),
        repeat: repeat.max(1),
        cases,
        cost_micro_usd,
    })
}

/// Mean and standard deviation of the parsed scores, and how many did not parse.
fn spread(scores: &[Option<u8>]) -> (Option<f64>, f64, usize) {
    let parsed: Vec<f64> = scores.iter().flatten().map(|&s| f64::from(s)).collect();
    if parsed.is_empty() {
        return (None, 0.0, scores.len());
    }
    let mean = parsed.iter().sum::<f64>() / parsed.len() as f64;
    let variance = parsed.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / parsed.len() as f64;
    (Some(mean), variance.sqrt(), scores.len() - parsed.len())
}

pub fn judge_table(report: &JudgeReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "suite {} · candidate {} · baseline {} · judge {} · repeat {}",
        report.suite,
        report.candidate,
        report.baseline.as_deref().unwrap_or("-"),
        report.judge,
        report.repeat
    );
    let width = report
        .cases
        .iter()
        .map(|c| c.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{:<width$}  {:>11}  {:>5}  {:>12}  {:>11}  {:>10}  pairwise",
        "case", "correctness", "±sd", "completeness", "conciseness", "unparsable"
    );
    let mut totals = [Vec::new(), Vec::new(), Vec::new()];
    let mut unparsable = 0;
    for case in &report.cases {
        let (correct, sd, bad) = spread(&case.correctness);
        let (complete, _, _) = spread(&case.completeness);
        let (concise, _, _) = spread(&case.conciseness);
        unparsable += bad;
        for (total, value) in totals.iter_mut().zip([correct, complete, concise]) {
            total.extend(value);
        }
        let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
        let _ = writeln!(
            out,
            "{:<width$}  {:>11}  {:>5.2}  {:>12}  {:>11}  {:>10}  {}",
            case.id,
            show(correct),
            sd,
            show(complete),
            show(concise),
            bad,
            case.pair
                .map(|p| serde_json::to_value(p)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default())
                .unwrap_or_default()
        );
    }
    let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let _ = writeln!(
        out,
        "\nmeans: correctness {:.2}, completeness {:.2}, conciseness {:.2}; {} judge replies unparsable (not counted); cost ${:.6}",
        mean(&totals[0]),
        mean(&totals[1]),
        mean(&totals[2]),
        unparsable,
        report.cost_micro_usd as f64 / 1e6
    );
    if report.baseline.is_some() {
        let count = |o: PairOutcome| report.pairs().filter(|(_, p)| *p == o).count();
        let (longer, similar) = report.length_bias();
        let pct = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{:.0}%", 100.0 * v));
        let _ = writeln!(
            out,
            "pairwise (both orders): candidate wins {}, ties {}, baseline wins {}, position-inconsistent {} (counted as ties), unparsable {}; position consistency {}; longer answer won {} of decisive pairs of different length; candidate win rate among pairs of similar length {}",
            count(PairOutcome::CandidateWins),
            count(PairOutcome::Tie),
            count(PairOutcome::BaselineWins),
            count(PairOutcome::PositionInconsistent),
            count(PairOutcome::Unparsable),
            pct(report.position_consistency()),
            pct(longer),
            pct(similar)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(answer: &str, baseline: &str, pair: PairOutcome) -> JudgedCase {
        JudgedCase {
            id: "c".into(),
            answer: answer.into(),
            correctness: vec![Some(5), Some(3), None],
            completeness: vec![],
            conciseness: vec![],
            baseline_answer: Some(baseline.into()),
            pair: Some(pair),
        }
    }

    #[test]
    fn position_consistency_and_length_bias_are_counted_over_parsed_pairs() {
        let long = "a much longer answer with many extra words in it";
        let report = JudgeReport {
            suite: "s".into(),
            judge: "j".into(),
            candidate: "v2".into(),
            baseline: Some("v1".into()),
            repeat: 1,
            cost_micro_usd: 0,
            cases: vec![
                case(long, "short", PairOutcome::CandidateWins),
                case("short", long, PairOutcome::CandidateWins),
                case("same size", "size same", PairOutcome::BaselineWins),
                case("x", "y", PairOutcome::PositionInconsistent),
                case("x", "y", PairOutcome::Unparsable),
            ],
        };
        assert_eq!(report.position_consistency(), Some(0.75));
        assert_eq!(report.length_bias(), (Some(0.5), Some(0.0)));
        assert_eq!(spread(&report.cases[0].correctness), (Some(4.0), 1.0, 1));
    }

    #[test]
    fn the_calibration_set_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("evals/judge_calibration.toml");
        let set = CalibrationSet::load(&path).unwrap();
        assert!(set.items.len() >= 40);
        let good = set.items.iter().filter(|i| i.label == Label::Good).count();
        assert!(good >= 20 && set.items.len() - good >= 20);
    }
}
