//! `[safety]` (the assistant's guards) and `[guardrails.NAME]` (policies for gateway traffic).

use serde::{Deserialize, Serialize};

/// What to do with personal data in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiAction {
    /// Replace each value by a placeholder (`[EMAIL_1]`) before the text goes on; put the
    /// values back in the reply the caller sees.
    #[default]
    Redact,
    /// Refuse the request.
    Block,
    /// Let it through unchanged.
    Keep,
}

/// The assistant's input and output guards.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyConfig {
    /// Prompt injection and jailbreak rules (and the learned detector, when trained).
    pub injection: bool,
    /// Harmful and off-topic requests.
    pub content: bool,
    /// Personal data in questions: redacted before anything stores or sends them, by default.
    pub pii: PiiAction,
    /// The learned detector's head (`askacme safety train` writes it); empty:
    /// `<models_dir>/safety/injection-head.json`. Absent, the rules run alone.
    pub learned_head: String,
    /// Put a canary token in the system prompt and refuse answers that repeat it.
    pub canary: bool,
    /// An answer that repeats this many consecutive words of the system prompt leaks it.
    pub leak_overlap_words: usize,
    /// Regular expressions an answer must not match (case-insensitive).
    pub banned_patterns: Vec<String>,
    /// Chunks flagged at ingest as carrying instructions for the model are left out of
    /// retrieval (`askacme kb flagged` lists them); off: they reach the model among the
    /// numbered sources, which the prompt tells it never to take instructions from.
    pub quarantine_flagged: bool,
}

/// A guardrail policy for `/v1/chat/completions` traffic, attached to model names (aliases or
/// deployments, as the caller names them) and to virtual keys (by name).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailConfig {
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub keys: Vec<String>,
    /// Injection and jailbreak rules over the user's messages.
    #[serde(default = "yes")]
    pub injection: bool,
    /// Harmful and off-topic rules (off by default: gateway callers have their own topics).
    #[serde(default)]
    pub content: bool,
    /// Personal data in messages sent to a remote provider (OpenAI, Anthropic).
    #[serde(default)]
    pub pii: PiiAction,
    /// Personal data in messages sent to a local model.
    #[serde(default = "keep")]
    pub pii_local: PiiAction,
    /// Add a canary token to the system message and block replies that repeat it or a long
    /// run of the system message.
    #[serde(default = "yes")]
    pub canary: bool,
    /// Block replies holding personal data that no message of the request holds.
    #[serde(default = "yes")]
    pub pii_leak: bool,
    #[serde(default)]
    pub banned_patterns: Vec<String>,
}

pub(super) fn yes() -> bool {
    true
}

fn keep() -> PiiAction {
    PiiAction::Keep
}
