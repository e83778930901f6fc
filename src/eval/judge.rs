//! LLM-as-judge, with its known biases controlled: a verdict is parsed from a JSON reply and a
//! reply that does not parse is reported as unparsable, never counted as a pass; pairwise
//! verdicts are asked in both orders and one that flips with the order is a
//! position-inconsistent tie. Judge calls go through the gateway like any other (logged,
//! priced, cached), and the judge must not be the candidate's own model unless allowed.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::backend::{Backend, BackendError};
use crate::config::Config;
use crate::providers::types::{ChatRequest, Message, Role};

/// Longest judge reply: a JSON object with a one-line reason. A judge that loops inside its
/// reason (the 1.5B model did once in 82 calibration verdicts, at 160 and at 320 tokens) is
/// cut here, and its reply, no longer JSON, is unparsable.
const JUDGE_MAX_TOKENS: u32 = 160;

const SYSTEM: &str = "You grade answers given by Acme Corp's internal assistant to employees' \
questions. The reference answer is correct. Judge only agreement with the reference: a longer \
answer is not a better one. Reply with one JSON object and nothing else.";

pub struct Judge<'a> {
    backend: &'a dyn Backend,
    pub model: String,
    /// `None`: the judge may grade any model's answers.
    pub self_judging: Option<SelfJudging>,
}

/// The rubric scores of one answer, or why there are none.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RubricVerdict {
    pub correctness: Option<u8>,
    pub completeness: Option<u8>,
    pub conciseness: Option<u8>,
    /// A custom rubric's score.
    pub score: Option<u8>,
    pub reason: String,
    /// The reply was not the JSON asked for: the raw reply, for the report.
    pub unparsable: Option<String>,
    pub cost_micro_usd: u64,
}

impl RubricVerdict {
    /// The score a `judge` assertion compares: the custom rubric's, else correctness.
    pub fn headline(&self) -> Option<u8> {
        self.score.or(self.correctness)
    }
}

/// Which of two answers a judge preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Preference {
    First,
    Second,
    Tie,
}

/// A pairwise comparison asked in both orders.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PairVerdict {
    /// Candidate shown first.
    pub candidate_first: Option<Preference>,
    /// Baseline shown first (already mapped back: `First` means the candidate won).
    pub baseline_first: Option<Preference>,
    pub cost_micro_usd: u64,
}

/// The combined verdict of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PairOutcome {
    CandidateWins,
    BaselineWins,
    /// Both orders said tie.
    Tie,
    /// The verdict changed with the order: counted as a tie, and reported.
    PositionInconsistent,
    Unparsable,
}

impl PairVerdict {
    pub fn outcome(&self) -> PairOutcome {
        match (self.candidate_first, self.baseline_first) {
            (Some(a), Some(b)) if a == b => match a {
                Preference::First => PairOutcome::CandidateWins,
                Preference::Second => PairOutcome::BaselineWins,
                Preference::Tie => PairOutcome::Tie,
            },
            (Some(_), Some(_)) => PairOutcome::PositionInconsistent,
            _ => PairOutcome::Unparsable,
        }
    }
}

/// The judge may not grade answers of its own model (models rate their own answers higher)
/// unless `eval.judge.allow_self_judging` says so.
#[derive(Debug, Clone)]
pub struct SelfJudging {
    /// Deployments behind each alias.
    aliases: BTreeMap<String, Vec<String>>,
}

impl SelfJudging {
    /// `None` when self-judging is allowed.
    pub fn from_config(config: &Config) -> Option<Self> {
        (!config.eval.judge.allow_self_judging).then(|| Self {
            aliases: config
                .aliases
                .iter()
                .map(|(name, alias)| {
                    let deployments = alias.route().primaries.into_iter().map(|(d, _)| d);
                    (name.clone(), deployments.collect())
                })
                .collect(),
        })
    }

    fn deployments(&self, name: &str) -> Vec<String> {
        self.aliases
            .get(name)
            .cloned()
            .unwrap_or_else(|| vec![name.to_owned()])
    }

    /// Why `judge` may not grade an answer of `candidate`'s, if it may not.
    pub fn refusal(&self, judge: &str, candidate: &str) -> Option<String> {
        let theirs = self.deployments(candidate);
        let shared = self
            .deployments(judge)
            .into_iter()
            .find(|d| theirs.contains(d))?;
        Some(format!(
            "the judge `{judge}` would grade answers of its own model (`{candidate}`, deployment \
             `{shared}`), and models rate their own answers higher: set `eval.judge.model` to \
             another model, or `eval.judge.allow_self_judging = true`"
        ))
    }
}

impl<'a> Judge<'a> {
    pub fn new(
        backend: &'a dyn Backend,
        model: impl Into<String>,
        self_judging: Option<SelfJudging>,
    ) -> Self {
        Self {
            backend,
            model: model.into(),
            self_judging,
        }
    }

    /// Why this judge may not grade `outcome` (its own model's answer), if it may not: by
    /// the model asked for and by the deployment that answered.
    pub fn refuses(&self, outcome: &super::assertion::Outcome) -> Option<String> {
        let guard = self.self_judging.as_ref()?;
        [&outcome.model, &outcome.deployment]
            .into_iter()
            .flatten()
            .find_map(|model| guard.refusal(&self.model, model))
    }

    /// The judge `[eval.judge]` configures.
    pub fn from_config(backend: &'a dyn Backend, config: &Config) -> Self {
        Self {
            backend,
            model: config.eval.judge.model.clone(),
            self_judging: SelfJudging::from_config(config),
        }
    }

    async fn ask(&self, prompt: String) -> Result<(String, u64), BackendError> {
        let mut request = ChatRequest {
            model: self.model.clone(),
            messages: vec![
                Message::new(Role::System, SYSTEM),
                Message::new(Role::User, prompt),
            ],
            temperature: Some(0.0),
            max_tokens: Some(JUDGE_MAX_TOKENS),
            ..ChatRequest::default()
        };
        request
            .extra
            .insert("response_format".into(), json!({"type": "json_object"}));
        let outcome = self.backend.chat(request).await?;
        Ok((outcome.answer, outcome.cost_micro_usd))
    }

    /// Scores `answer` against `reference` for correctness, completeness and conciseness, or
    /// on a custom `rubric`.
    pub async fn rubric(
        &self,
        question: &str,
        reference: Option<&str>,
        answer: &str,
        rubric: Option<&str>,
    ) -> Result<RubricVerdict, BackendError> {
        let reference = reference
            .map(|r| format!("Reference answer (correct): {r}\n"))
            .unwrap_or_default();
        let prompt = match rubric {
            None => format!(
                "Question: {question}\n{reference}Answer to grade: {answer}\n\n\
                 Score the answer from 1 to 5 on each criterion:\n\
                 - correctness: 5 = everything it states agrees with the reference; 3 = partly \
                 right; 1 = wrong, or contradicts the reference. Saying it does not know scores 1 \
                 when the reference answers the question, and 5 when the reference also says so.\n\
                 - completeness: 5 = gives everything the question needs from the reference; \
                 1 = misses the main point.\n\
                 - conciseness: 5 = nothing unneeded; 1 = mostly filler.\n\
                 Reply exactly in this form: {{\"correctness\": <1-5>, \"completeness\": <1-5>, \
                 \"conciseness\": <1-5>, \"reason\": \"<one line>\"}}"
            ),
            Some(rubric) => format!(
                "Question: {question}\n{reference}Answer to grade: {answer}\n\n\
                 Criterion: {rubric}\nScore the answer from 1 (fails the criterion) to 5 (fully \
                 meets it). Reply exactly in this form: {{\"score\": <1-5>, \"reason\": \"<one \
                 line>\"}}"
            ),
        };
        let (reply, cost_micro_usd) = self.ask(prompt).await?;
        let mut verdict = RubricVerdict {
            correctness: None,
            completeness: None,
            conciseness: None,
            score: None,
            reason: String::new(),
            unparsable: None,
            cost_micro_usd,
        };
        let parsed = json_object(&reply);
        let field = |key: &str| parsed.as_ref().and_then(|v| score(&v[key]));
        if rubric.is_some() {
            verdict.score = field("score");
        } else {
            verdict.correctness = field("correctness");
            verdict.completeness = field("completeness");
            verdict.conciseness = field("conciseness");
        }
        verdict.reason = parsed
            .as_ref()
            .and_then(|v| v["reason"].as_str())
            .unwrap_or_default()
            .to_owned();
        if verdict.headline().is_none() {
            verdict.unparsable = Some(reply);
        }
        Ok(verdict)
    }

    /// Which of `candidate` and `baseline` answers `question` better, asked with each shown
    /// first.
    pub async fn pairwise(
        &self,
        question: &str,
        reference: Option<&str>,
        candidate: &str,
        baseline: &str,
    ) -> Result<PairVerdict, BackendError> {
        let (first, first_cost) = self
            .prefer(question, reference, candidate, baseline)
            .await?;
        let (second, second_cost) = self
            .prefer(question, reference, baseline, candidate)
            .await?;
        let flip = |p: Preference| match p {
            Preference::First => Preference::Second,
            Preference::Second => Preference::First,
            Preference::Tie => Preference::Tie,
        };
        Ok(PairVerdict {
            candidate_first: first.ok(),
            baseline_first: second.ok().map(flip),
            cost_micro_usd: first_cost + second_cost,
        })
    }

    /// One order: `Err` holds an unparsable reply.
    async fn prefer(
        &self,
        question: &str,
        reference: Option<&str>,
        a: &str,
        b: &str,
    ) -> Result<(Result<Preference, String>, u64), BackendError> {
        let reference = reference
            .map(|r| format!("Reference answer (correct): {r}\n"))
            .unwrap_or_default();
        let prompt = format!(
            "Question: {question}\n{reference}Answer A: {a}\nAnswer B: {b}\n\n\
             Which answer is better: first more correct against the reference, then more \
             complete? Length alone does not make an answer better. Reply exactly in this form: \
             {{\"winner\": \"A\" or \"B\" or \"tie\", \"reason\": \"<one line>\"}}"
        );
        let (reply, cost) = self.ask(prompt).await?;
        let preference = json_object(&reply)
            .and_then(|v| v["winner"].as_str().map(str::to_lowercase))
            .and_then(|w| match w.trim() {
                "a" => Some(Preference::First),
                "b" => Some(Preference::Second),
                "tie" => Some(Preference::Tie),
                _ => None,
            })
            .ok_or(reply);
        Ok((preference, cost))
    }
}

/// The first JSON object in a reply (models wrap it in prose or code fences).
fn json_object(reply: &str) -> Option<Value> {
    let start = reply.find('{')?;
    let end = reply.rfind('}')?;
    let value: Value = serde_json::from_str(reply.get(start..=end)?).ok()?;
    value.is_object().then_some(value)
}

/// A score of 1–5: an integer (or a string holding one); anything else is no score, never a
/// guess.
fn score(value: &Value) -> Option<u8> {
    let n = match value {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (1..=5).contains(&n).then_some(n as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_read_strictly() {
        let v =
            json_object("Sure! ```json\n{\"correctness\": 4, \"reason\": \"ok\"}\n```").unwrap();
        assert_eq!(score(&v["correctness"]), Some(4));
        for bad in [
            json!(0),
            json!(6),
            json!(4.5),
            json!("four"),
            json!(null),
            json!(f64::NAN),
        ] {
            assert_eq!(score(&bad), None, "{bad}");
        }
        assert_eq!(score(&json!("5")), Some(5));
        assert!(json_object("no json here").is_none());
        assert!(json_object("[1, 2]").is_none());
    }

    #[test]
    fn a_verdict_that_flips_with_the_order_is_position_inconsistent() {
        let pair = |a, b| PairVerdict {
            candidate_first: a,
            baseline_first: b,
            cost_micro_usd: 0,
        };
        use Preference::*;
        assert_eq!(
            pair(Some(First), Some(First)).outcome(),
            PairOutcome::CandidateWins
        );
        assert_eq!(
            pair(Some(Second), Some(Second)).outcome(),
            PairOutcome::BaselineWins
        );
        assert_eq!(pair(Some(Tie), Some(Tie)).outcome(), PairOutcome::Tie);
        assert_eq!(
            pair(Some(First), Some(Second)).outcome(),
            PairOutcome::PositionInconsistent
        );
        assert_eq!(
            pair(Some(First), Some(Tie)).outcome(),
            PairOutcome::PositionInconsistent
        );
        assert_eq!(pair(None, Some(First)).outcome(), PairOutcome::Unparsable);
    }
}
