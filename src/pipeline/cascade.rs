//! Cascade validation: whether an answer from the cheap tier is good enough to return, or must
//! be asked again of the strong tier. Cheap when the fast tier suffices, never worse than the
//! strong tier alone: what fails here is exactly what the rest of the pipeline would turn into
//! a `no_answer` or an uncited answer.

use serde::{Deserialize, Serialize};

use super::{answer, grounding};

/// Why a cheap answer was escalated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    Empty,
    /// "I don't have that information" although retrieval found close sources.
    DeclinedDespiteConfidentRetrieval,
    NoCitation,
    /// Figures or names that no source shown to the model contains.
    Ungrounded,
}

impl EscalationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationReason::Empty => "empty",
            EscalationReason::DeclinedDespiteConfidentRetrieval => {
                "declined_despite_confident_retrieval"
            }
            EscalationReason::NoCitation => "no_citation",
            EscalationReason::Ungrounded => "ungrounded",
        }
    }
}

/// What the answer was checked against.
pub struct Evidence<'a> {
    /// The passages the model was shown, in prompt order.
    pub shown: &'a [&'a str],
    pub retrieval_confidence: f32,
    pub decline_confidence: f32,
}

pub fn failure(answer_text: &str, evidence: &Evidence<'_>) -> Option<EscalationReason> {
    let text = answer_text.trim();
    if text.is_empty() {
        return Some(EscalationReason::Empty);
    }
    match answer::decline(text) {
        Some(answer::NO_INFORMATION) => {
            return (evidence.retrieval_confidence >= evidence.decline_confidence)
                .then_some(EscalationReason::DeclinedDespiteConfidentRetrieval);
        }
        // An off-topic refusal is the right answer at any tier.
        Some(_) => return None,
        None => {}
    }
    let mut citations = super::release::Renumbering::new(evidence.shown.len());
    citations.sentence(text);
    if citations.is_empty() {
        return Some(EscalationReason::NoCitation);
    }
    if !grounding::ungrounded(text, evidence.shown).is_empty() {
        return Some(EscalationReason::Ungrounded);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "Parental leave\nEmployees get 20 weeks of parental leave at full pay.";

    fn check(answer: &str, confidence: f32) -> Option<EscalationReason> {
        failure(
            answer,
            &Evidence {
                shown: &[SOURCE],
                retrieval_confidence: confidence,
                decline_confidence: 0.5,
            },
        )
    }

    #[test]
    fn good_answers_pass_and_each_failure_is_named() {
        assert_eq!(check("20 weeks at full pay [1].", 0.7), None);
        assert_eq!(check("  ", 0.7), Some(EscalationReason::Empty));
        assert_eq!(
            check("20 weeks at full pay.", 0.7),
            Some(EscalationReason::NoCitation)
        );
        assert_eq!(
            check("16 weeks [1].", 0.7),
            Some(EscalationReason::Ungrounded)
        );
        assert_eq!(
            check("I don't have that information.", 0.7),
            Some(EscalationReason::DeclinedDespiteConfidentRetrieval)
        );
        assert_eq!(
            check("I don't have that information.", 0.4),
            None,
            "declining on weak retrieval is right"
        );
        assert_eq!(
            check(answer::OFF_TOPIC, 0.9),
            None,
            "an off-topic refusal is not a cheap-tier failure"
        );
    }
}
