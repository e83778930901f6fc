//! Input and output guards, for the assistant and for gateway traffic.
//!
//! Everything here is a check over text (and, for the learned detector, over an embedding the
//! caller already has): no model calls, no I/O, so the input guard costs well under a
//! millisecond and can run before anything else, cache lookups included. An LLM check, where
//! one is configured, is the caller's to make.
//!
//! - [`InputGuard`]: prompt injection and jailbreaks (normalised text against the known
//!   families, then the learned detector), harmful and off-topic requests, personal data.
//! - [`OutputGuard`]: a leaked system prompt (canary token, long verbatim overlap), personal
//!   data that came from neither the question nor the sources, banned patterns.
//! - [`stream::SentenceGate`]: releases streamed text a sentence at a time, so output checks
//!   see each sentence before the user does.

pub mod content;
pub mod injection;
pub mod learned;
pub mod normalize;
pub mod output;
pub mod pii;
pub mod rules;
pub mod stream;

use serde::{Deserialize, Serialize};

pub use crate::config::PiiAction;
pub use output::{Canary, OutputGuard, Shown};
pub use pii::{PiiDetector, PiiKind, Redaction};

use content::ContentRules;
use injection::InjectionRules;
use learned::InjectionHead;

/// The assistant's refusal of a request that is not about the company, or is harmful.
pub const REFUSAL: &str = "I can only help with Acme-related questions.";
/// The reply to someone who says they want to hurt themselves: not a bare refusal.
pub const SELF_HARM_REPLY: &str = "I'm sorry you're going through this. You don't have to face it alone: \
please contact the Employee Assistance Program (confidential, 24/7) or, if you are in danger, \
call your local emergency number now. In the US you can call or text 988 (Suicide & Crisis \
Lifeline); elsewhere, findahelpline.com lists free, confidential lines.";
/// The reply when an answer failed an output check.
pub const OUTPUT_REFUSAL: &str =
    "I wasn't able to generate a safe response. Please contact support.";

#[derive(Debug, thiserror::Error)]
pub enum SafetyError {
    #[error("a safety pattern does not compile: {0}")]
    Pattern(String),
    #[error("injection detector {path}: {detail}")]
    Head { path: String, detail: String },
}

/// Why a check blocked (or flagged) a text. Serialized snake_case, as `/v1/ask`'s
/// `filter.reason` and the log's reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    InstructionOverride,
    FakeRole,
    PromptExtraction,
    RolePlay,
    DeveloperMode,
    PayloadSplitting,
    /// The learned detector (trained on public jailbreak, injection and harmful-request sets)
    /// scored the text over its threshold.
    LearnedAttack,
    SelfHarm,
    Violence,
    Harassment,
    Illegal,
    Hate,
    OffTopic,
    /// A request for other people's personal data or for secrets.
    PersonalDataRequest,
    /// Personal data in a request whose policy is to block it.
    Pii,
    /// The system prompt's canary token, or a long run of its words, in an answer.
    SystemPromptLeak,
    /// Personal data in an answer that neither the question nor the sources hold.
    PiiLeak,
    /// A configured banned pattern.
    Policy,
    /// A figure or name in the answer that its sources do not support.
    Ungrounded,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InstructionOverride => "instruction_override",
            Reason::FakeRole => "fake_role",
            Reason::PromptExtraction => "prompt_extraction",
            Reason::RolePlay => "role_play",
            Reason::DeveloperMode => "developer_mode",
            Reason::PayloadSplitting => "payload_splitting",
            Reason::LearnedAttack => "learned_attack",
            Reason::SelfHarm => "self_harm",
            Reason::Violence => "violence",
            Reason::Harassment => "harassment",
            Reason::Illegal => "illegal",
            Reason::Hate => "hate",
            Reason::OffTopic => "off_topic",
            Reason::PersonalDataRequest => "personal_data_request",
            Reason::Pii => "pii",
            Reason::SystemPromptLeak => "system_prompt_leak",
            Reason::PiiLeak => "pii_leak",
            Reason::Policy => "policy",
            Reason::Ungrounded => "ungrounded",
        }
    }

    /// Whether the reason is an attack on the model (as opposed to a request it must not
    /// serve): what `stats` counts as the injection rate.
    pub fn is_injection(self) -> bool {
        matches!(
            self,
            Reason::InstructionOverride
                | Reason::FakeRole
                | Reason::PromptExtraction
                | Reason::RolePlay
                | Reason::DeveloperMode
                | Reason::PayloadSplitting
                | Reason::LearnedAttack
        )
    }

    /// What the assistant says instead of answering.
    pub fn reply(self) -> &'static str {
        match self {
            Reason::SelfHarm => SELF_HARM_REPLY,
            Reason::SystemPromptLeak | Reason::PiiLeak | Reason::Policy | Reason::Ungrounded => {
                OUTPUT_REFUSAL
            }
            _ => REFUSAL,
        }
    }
}

/// One check's decision to block, with the score behind it and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub reason: Reason,
    /// 1.0 for a rule; the detector's probability for the learned one.
    pub score: f32,
    pub detail: String,
}

/// Which input checks run.
#[derive(Debug, Clone, Copy)]
pub struct InputChecks {
    pub injection: bool,
    /// Harmful and off-topic requests.
    pub content: bool,
}

impl From<&crate::config::SafetyConfig> for InputChecks {
    fn from(settings: &crate::config::SafetyConfig) -> Self {
        Self {
            injection: settings.injection,
            content: settings.content,
        }
    }
}

/// The input guard's compiled rules and, when trained, the learned detector.
pub struct InputGuard {
    injection: InjectionRules,
    content: ContentRules,
    pii: PiiDetector,
    head: Option<InjectionHead>,
}

impl InputGuard {
    pub fn new(head: Option<InjectionHead>) -> Result<Self, SafetyError> {
        Ok(Self {
            injection: InjectionRules::new()?,
            content: ContentRules::new()?,
            pii: PiiDetector::new()?,
            head,
        })
    }

    pub fn pii(&self) -> &PiiDetector {
        &self.pii
    }

    pub fn has_learned_detector(&self) -> bool {
        self.head.is_some()
    }

    /// The rules over the text: the first block, injection families first.
    pub fn check_text(&self, text: &str, checks: InputChecks) -> Option<Verdict> {
        let views = normalize::views(text);
        if checks.injection
            && let Some(found) = self.injection.find(&views)
        {
            let detail = match found.encoding {
                Some(encoding) => format!(
                    "{} (found in {} text)",
                    found.reason.as_str(),
                    encoding.as_str()
                ),
                None => found.reason.as_str().to_owned(),
            };
            return Some(Verdict {
                reason: found.reason,
                score: 1.0,
                detail,
            });
        }
        if checks.content
            && let Some(reason) = self.content.find(&views)
        {
            return Some(Verdict {
                reason,
                score: 1.0,
                detail: reason.as_str().to_owned(),
            });
        }
        None
    }

    /// The learned detector's score for an embedding and its threshold, when it is trained.
    pub fn learned_score(&self, vector: &[f32]) -> Option<(f32, f32)> {
        let head = self.head.as_ref()?;
        Some((head.score(vector), head.threshold))
    }

    /// The learned detector over the text's embedding, when it is trained.
    pub fn check_embedding(&self, vector: &[f32]) -> Option<Verdict> {
        let head = self.head.as_ref()?;
        let score = head.score(vector);
        (score >= head.threshold).then(|| Verdict {
            reason: Reason::LearnedAttack,
            score,
            detail: format!(
                "learned detector scored {score:.2} (threshold {:.2})",
                head.threshold
            ),
        })
    }

    /// `text` with its personal data replaced by placeholders, as stored text must be.
    pub fn redacted(&self, text: &str) -> String {
        Redaction::new().redact(&self.pii, text)
    }

    /// Personal data in a request under `action`: `Ok(redacted text)` or the block.
    pub fn check_pii(
        &self,
        text: &str,
        action: PiiAction,
        redaction: &mut Redaction,
    ) -> Result<String, Verdict> {
        match action {
            PiiAction::Keep => Ok(text.to_owned()),
            PiiAction::Redact => Ok(redaction.redact(&self.pii, text)),
            PiiAction::Block => match self.pii.find(text).first() {
                None => Ok(text.to_owned()),
                Some(found) => Err(Verdict {
                    reason: Reason::Pii,
                    score: 1.0,
                    detail: format!(
                        "the request contains personal data ({})",
                        found.kind.as_str()
                    ),
                }),
            },
        }
    }
}
