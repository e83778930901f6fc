//! Guardrail policies on gateway traffic (`[guardrails.NAME]`), attached to the model names
//! callers ask for and to virtual keys. Local and fast, like LiteLLM's guardrails without the
//! extra service: the same rules as the assistant's guards.
//!
//! Before the call: the user's messages against the injection (and, if asked, content) rules;
//! a block is a 400 `content_filter` error naming the guardrail. For each attempt, personal
//! data is handled by where the deployment runs: redacted (or refused) before it leaves for a
//! remote provider, kept for a local model, by default. A canary token is added to the system
//! message. After the call: a reply that repeats the canary or a long run of the system
//! message, holds personal data no message of the request holds, or matches a banned pattern
//! is withheld: its content is emptied and `finish_reason` is `content_filter`. Redacted
//! values are put back into the reply the caller sees.

use std::sync::Arc;

use futures::StreamExt;

use crate::config::{Config, GuardrailConfig, PiiAction};
use crate::providers::ChunkStream;
use crate::providers::types::{
    ChatChunk, ChatRequest, ChatResponse, ChunkChoice, Content, Delta, FinishReason, Message, Role,
};
use crate::safety::stream::SentenceGate;
use crate::safety::{
    Canary, InputChecks, InputGuard, OutputGuard, Reason, Redaction, SafetyError, Shown, Verdict,
};

use super::GatewayError;

pub struct Guardrails {
    guard: InputGuard,
    policies: Vec<Arc<Policy>>,
}

pub struct Policy {
    pub name: String,
    config: GuardrailConfig,
    output: OutputGuard,
    canary: Canary,
}

/// A request as one deployment receives it, and the redaction its reply is restored with.
pub struct Prepared {
    pub request: ChatRequest,
    pub redaction: Redaction,
}

impl Prepared {
    /// A request no guardrail applies to: sent as it is, nothing to restore.
    pub fn plain(request: ChatRequest) -> Self {
        Self {
            request,
            redaction: Redaction::new(),
        }
    }
}

impl Guardrails {
    /// `None` when no guardrail is configured.
    pub fn from_config(config: &Config) -> Result<Option<Self>, SafetyError> {
        if config.guardrails.is_empty() {
            return Ok(None);
        }
        let policies = config
            .guardrails
            .iter()
            .map(|(name, guardrail)| {
                Ok(Arc::new(Policy {
                    name: name.clone(),
                    output: OutputGuard::new(
                        &guardrail.banned_patterns,
                        config.safety.leak_overlap_words,
                    )?,
                    canary: Canary::derived(&config.canary_seed(&format!("guardrail {name}"))),
                    config: guardrail.clone(),
                }))
            })
            .collect::<Result<Vec<_>, SafetyError>>()?;
        Ok(Some(Self {
            guard: InputGuard::new(None)?,
            policies,
        }))
    }

    /// The first policy attached to the model name or to the caller's key name.
    pub fn policy(&self, model: &str, key_name: Option<&str>) -> Option<&Arc<Policy>> {
        self.policies.iter().find(|p| {
            p.config.models.iter().any(|m| m == model)
                || key_name.is_some_and(|k| p.config.keys.iter().any(|n| n == k))
        })
    }

    /// The input rules over the user's messages.
    pub fn check_input(&self, policy: &Policy, request: &ChatRequest) -> Result<(), GatewayError> {
        let checks = InputChecks {
            injection: policy.config.injection,
            content: policy.config.content,
        };
        for message in request.messages.iter().filter(|m| m.role == Role::User) {
            if let Some(verdict) = self.guard.check_text(&message.text(), checks) {
                return Err(policy.blocked("input", verdict));
            }
        }
        // `block` refuses personal data wherever the request would go: a fallback must not
        // turn a refusal into a call.
        if policy.config.pii == PiiAction::Block || policy.config.pii_local == PiiAction::Block {
            for message in &request.messages {
                let mut unused = Redaction::new();
                if let Err(verdict) =
                    self.guard
                        .check_pii(&message.text(), PiiAction::Block, &mut unused)
                {
                    return Err(policy.blocked("input", verdict));
                }
            }
        }
        Ok(())
    }

    /// The request as a deployment receives it: the canary in its system message and its
    /// personal data redacted when the policy says so for a remote (or a local) deployment.
    pub fn prepare(&self, policy: &Policy, request: &ChatRequest, remote: bool) -> Prepared {
        let action = if remote {
            policy.config.pii
        } else {
            policy.config.pii_local
        };
        let mut request = request.clone();
        let mut redaction = Redaction::new();
        if action == PiiAction::Redact {
            for message in &mut request.messages {
                match &mut message.content {
                    Some(Content::Text(text)) => *text = redaction.redact(self.guard.pii(), text),
                    Some(Content::Parts(parts)) => {
                        for part in parts {
                            if let Some(serde_json::Value::String(text)) = part.get_mut("text") {
                                *text = redaction.redact(self.guard.pii(), text);
                            }
                        }
                    }
                    None => {}
                }
            }
        }
        if policy.config.canary {
            let marker = policy.canary.marker();
            match request.messages.iter_mut().find(|m| m.role == Role::System) {
                Some(system) => {
                    let text = format!("{}\n{marker}", system.text());
                    system.content = Some(Content::Text(text));
                }
                None => request
                    .messages
                    .insert(0, Message::new(Role::System, marker)),
            }
        }
        Prepared { request, redaction }
    }
}

/// What a reply is checked against: the caller's own request.
struct Said {
    system: String,
    all: String,
}

impl Said {
    fn of(request: &ChatRequest) -> Self {
        let join = |messages: Vec<&Message>| {
            messages
                .into_iter()
                .map(Message::text)
                .collect::<Vec<_>>()
                .join("\n")
        };
        Self {
            system: join(
                request
                    .messages
                    .iter()
                    .filter(|m| m.role == Role::System)
                    .collect(),
            ),
            all: join(request.messages.iter().collect()),
        }
    }
}

impl Policy {
    fn check_text(&self, text: &str, said: &Said) -> Option<Verdict> {
        let shown = Shown {
            system: &said.system,
            canary: self.config.canary.then_some(&self.canary),
            question: &said.all,
            sources: &[],
        };
        self.output
            .check(text, &shown)
            .filter(|v| self.config.pii_leak || v.reason != Reason::PiiLeak)
    }

    /// Checks a reply against the request the caller sent (`original`); puts redacted values
    /// back. Returns the verdict when the reply was withheld.
    pub fn check_output(
        &self,
        original: &ChatRequest,
        redaction: &Redaction,
        response: &mut ChatResponse,
    ) -> Option<Verdict> {
        let said = Said::of(original);
        let mut withheld = None;
        for choice in &mut response.choices {
            let text = redaction.restore(&choice.message.text());
            match self.check_text(&text, &said) {
                Some(verdict) => {
                    choice.message.content = Some(Content::Text(String::new()));
                    choice.finish_reason = Some(FinishReason::ContentFilter);
                    withheld = Some(verdict);
                }
                None if !redaction.is_empty() => {
                    choice.message.content = Some(Content::Text(text));
                }
                None => {}
            }
        }
        withheld
    }

    /// A stream whose text is released a sentence at a time, each checked first (with what
    /// was released before it, so a leak split over sentences is seen). A sentence that fails
    /// is never sent: the caller gets an empty chunk whose `finish_reason` is
    /// `content_filter`, then only the upstream's usage (the rest is read and dropped, so the
    /// request is billed what it cost). Only the first choice's text is checked; tool-call
    /// deltas pass.
    pub fn guard_stream(
        self: Arc<Self>,
        original: &ChatRequest,
        redaction: Redaction,
        chunks: ChunkStream,
        stopped: StreamStop,
    ) -> ChunkStream {
        let guard = StreamGuard {
            said: Said::of(original),
            policy: self,
            redaction,
            gate: SentenceGate::new(),
            released: String::new(),
            header: Default::default(),
            stopped,
        };
        futures::stream::unfold((chunks, guard), |(mut chunks, mut guard)| async move {
            loop {
                let mut chunk = match chunks.next().await {
                    Some(Ok(chunk)) => chunk,
                    Some(Err(e)) if !guard.is_stopped() => return Some((Err(e), (chunks, guard))),
                    Some(Err(_)) => return None,
                    None if guard.is_stopped() => return None,
                    None => {
                        // Upstream ended without a finish chunk: what is left, checked; the
                        // stream's own end handling says how it ended.
                        let rest = guard.gate.finish()?;
                        let chunk = guard.release(guard.empty_chunk(), &rest);
                        return Some((Ok(chunk), (chunks, guard)));
                    }
                };
                if guard.is_stopped() {
                    if chunk.usage.is_some() {
                        chunk.choices.clear();
                        return Some((Ok(chunk), (chunks, guard)));
                    }
                    continue;
                }
                guard.header = (
                    chunk.id.clone(),
                    chunk.object.clone(),
                    chunk.created,
                    chunk.model.clone(),
                );
                let Some(first) = chunk.choices.first_mut() else {
                    return Some((Ok(chunk), (chunks, guard)));
                };
                let delta = first.delta.content.take().unwrap_or_default();
                let mut text: String = guard.gate.push(&delta).concat();
                if first.finish_reason.is_some() {
                    text.extend(guard.gate.finish());
                }
                let chunk = guard.release(chunk, &text);
                return Some((Ok(chunk), (chunks, guard)));
            }
        })
        .boxed()
    }

    fn blocked(&self, stage: &str, verdict: Verdict) -> GatewayError {
        GatewayError::ContentFilter {
            guardrail: self.name.clone(),
            stage: stage.to_owned(),
            verdict,
        }
    }

    /// `name:stage:reason`, for the `x-askacme-guardrail` header and the log row.
    pub fn label(&self, stage: &str, verdict: &Verdict) -> String {
        format!("{}:{stage}:{}", self.name, verdict.reason.as_str())
    }
}

/// Where a guarded stream says why it stopped (`name:output:reason`, as `Policy::label`), for
/// the request's log row, written when the stream ends.
pub type StreamStop = Arc<std::sync::OnceLock<String>>;

/// A guarded stream's state: the text held back and the text released so far.
struct StreamGuard {
    policy: Arc<Policy>,
    said: Said,
    redaction: Redaction,
    gate: SentenceGate,
    released: String,
    /// The last chunk's id, object, created and model, for a chunk the guard adds.
    header: (String, String, u64, String),
    /// Set when a sentence failed: nothing more is released.
    stopped: StreamStop,
}

impl StreamGuard {
    fn is_stopped(&self) -> bool {
        self.stopped.get().is_some()
    }

    /// A chunk with nothing in it, from the same stream as the last one.
    fn empty_chunk(&self) -> ChatChunk {
        let (id, object, created, model) = self.header.clone();
        ChatChunk {
            id,
            object,
            created,
            model,
            choices: Vec::new(),
            usage: None,
        }
    }

    /// `chunk` carrying `text` (redacted values restored) when it passes, else an empty chunk
    /// that ends the stream with `content_filter`.
    fn release(&mut self, mut chunk: ChatChunk, text: &str) -> ChatChunk {
        if chunk.choices.is_empty() {
            chunk.choices.push(ChunkChoice {
                index: 0,
                delta: Delta::default(),
                finish_reason: None,
            });
        }
        let text = self.redaction.restore(text);
        let candidate = format!("{}{text}", self.released);
        if !text.is_empty()
            && let Some(verdict) = self.policy.check_text(&candidate, &self.said)
        {
            tracing::warn!(
                guardrail = self.policy.name,
                reason = verdict.reason.as_str(),
                detail = verdict.detail,
                "guardrail stopped a stream"
            );
            let _ = self.stopped.set(self.policy.label("output", &verdict));
            chunk.choices.truncate(1);
            chunk.choices[0].delta = Delta::default();
            chunk.choices[0].finish_reason = Some(FinishReason::ContentFilter);
            chunk.usage = None;
            return chunk;
        }
        self.released = candidate;
        if let Some(first) = chunk.choices.first_mut() {
            first.delta.content = (!text.is_empty()).then_some(text);
        }
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guardrails(pii: &str) -> Guardrails {
        let config = Config::from_toml_str(&format!(
            "[guardrails.strict]\nmodels = [\"strong\"]\npii = \"{pii}\"\n"
        ))
        .unwrap();
        Guardrails::from_config(&config).unwrap().unwrap()
    }

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            model: "strong".into(),
            messages: vec![Message::new(Role::User, text)],
            ..ChatRequest::default()
        }
    }

    #[test]
    fn personal_data_is_redacted_for_remote_deployments_and_kept_for_local_ones() {
        let guardrails = guardrails("redact");
        let policy = guardrails.policy("strong", None).unwrap();
        assert!(
            guardrails.policy("fast", None).is_none(),
            "not attached to `fast`"
        );
        let asked = request("Mail jane@acme.example");
        let remote = guardrails.prepare(policy, &asked, true);
        assert_eq!(remote.request.messages[1].text(), "Mail [EMAIL_1]");
        assert!(
            remote.request.messages[0]
                .text()
                .contains("Confidential marker")
        );
        let local = guardrails.prepare(policy, &asked, false);
        assert_eq!(local.request.messages[1].text(), "Mail jane@acme.example");
    }

    #[test]
    fn block_refuses_personal_data_before_any_attempt() {
        let guardrails = guardrails("block");
        let policy = guardrails.policy("strong", None).unwrap();
        let error = guardrails
            .check_input(policy, &request("My SSN is 123-45-6789"))
            .unwrap_err();
        assert_eq!(error.http_status(), 400);
        assert!(error.to_string().contains("personal data (ssn)"), "{error}");
        assert!(
            guardrails
                .check_input(policy, &request("How long is leave?"))
                .is_ok()
        );
    }
}
