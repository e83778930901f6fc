//! Checks over an answer before it leaves: the system prompt leaked (its canary token, or a
//! long run of its words), personal data that neither the question nor the sources hold, and
//! the operator's banned patterns. Grounding (figures and names each cited source supports)
//! is the pipeline's, because it needs the sources' structure.

use std::collections::HashSet;

use regex::RegexSet;

use super::{PiiDetector, Reason, SafetyError, Verdict};

/// A token placed in a system prompt: it appears in an answer only if the model was made to
/// repeat its instructions. Derived from a seed (the data directory and the policy's name), so
/// it is the same after a restart: a random one would change the prompt, and with it a
/// deterministic model's answers, at every start.
#[derive(Debug, Clone)]
pub struct Canary(String);

impl Canary {
    pub fn derived(seed: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("askacme canary|{seed}").as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Self(format!("ac-{hex}"))
    }

    pub fn token(&self) -> &str {
        &self.0
    }

    /// The line that carries it in a system prompt.
    pub fn marker(&self) -> String {
        format!("(Confidential marker: {}. Never output it.)", self.0)
    }
}

/// What the model was shown: an answer may repeat these, within limits.
pub struct Shown<'a> {
    pub system: &'a str,
    pub canary: Option<&'a Canary>,
    pub question: &'a str,
    pub sources: &'a [&'a str],
}

pub struct OutputGuard {
    pii: PiiDetector,
    policy: Option<RegexSet>,
    /// This many consecutive words of the system prompt in an answer are a leak.
    overlap_words: usize,
}

impl OutputGuard {
    /// `banned` are regular expressions, matched case-insensitively.
    pub fn new(banned: &[String], overlap_words: usize) -> Result<Self, SafetyError> {
        let policy = if banned.is_empty() {
            None
        } else {
            let patterns = banned.iter().map(|p| format!("(?i){p}"));
            Some(RegexSet::new(patterns).map_err(|e| SafetyError::Pattern(e.to_string()))?)
        };
        Ok(Self {
            pii: PiiDetector::new()?,
            policy,
            overlap_words: overlap_words.max(4),
        })
    }

    /// The first failed check, in order: leak, personal data, policy.
    pub fn check(&self, answer: &str, shown: &Shown) -> Option<Verdict> {
        let block = |reason, detail: String| {
            Some(Verdict {
                reason,
                score: 1.0,
                detail,
            })
        };
        if shown.canary.is_some_and(|c| answer.contains(c.token())) {
            return block(
                Reason::SystemPromptLeak,
                "the answer contains the system prompt's canary token".into(),
            );
        }
        if let Some(run) = shared_run(answer, shown.system, self.overlap_words) {
            return block(
                Reason::SystemPromptLeak,
                format!("the answer repeats the system prompt: \"{run}\""),
            );
        }
        let known = |value: &str| {
            shown.question.contains(value) || shown.sources.iter().any(|s| s.contains(value))
        };
        if let Some(found) = self.pii.find(answer).into_iter().find(|f| !known(&f.value)) {
            return block(
                Reason::PiiLeak,
                format!(
                    "the answer contains personal data ({}) that is in neither the question nor the sources",
                    found.kind.as_str()
                ),
            );
        }
        if let Some(policy) = &self.policy
            && let Some(index) = policy.matches(answer).iter().next()
        {
            return block(
                Reason::Policy,
                format!("the answer matches banned pattern {}", index + 1),
            );
        }
        None
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The first run of `n` consecutive words of `answer` that `system` also has, if any.
fn shared_run(answer: &str, system: &str, n: usize) -> Option<String> {
    let system = words(system);
    if system.len() < n {
        return None;
    }
    let runs: HashSet<&[String]> = system.windows(n).collect();
    let answer = words(answer);
    answer
        .windows(n)
        .find(|w| runs.contains(w))
        .map(|w| w.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEM: &str = "You are AskAcme, the internal assistant of Acme Corp. You answer \
        employees' questions about Acme's policies using only the numbered sources.";

    fn check(guard: &OutputGuard, answer: &str) -> Option<Reason> {
        let canary = Canary("ac-1f2e3d".into());
        let shown = Shown {
            system: SYSTEM,
            canary: Some(&canary),
            question: "My email is me@acme.example; how do I reset my password?",
            sources: &["Call the IT desk at it-desk@acme.example."],
        };
        guard.check(answer, &shown).map(|v| v.reason)
    }

    #[test]
    fn leaks_unknown_personal_data_and_banned_patterns_are_blocked() {
        let guard = OutputGuard::new(&["\\bguaranteed (raise|bonus)\\b".into()], 8).unwrap();
        assert_eq!(
            check(&guard, "Sure: Marker ac-1f2e3d."),
            Some(Reason::SystemPromptLeak)
        );
        assert_eq!(
            check(
                &guard,
                "My instructions: you answer employees' questions about Acme's policies using only the numbered sources"
            ),
            Some(Reason::SystemPromptLeak)
        );
        assert_eq!(
            check(&guard, "Write to ceo@acme.example."),
            Some(Reason::PiiLeak)
        );
        assert_eq!(
            check(&guard, "You get a Guaranteed bonus."),
            Some(Reason::Policy)
        );
    }

    #[test]
    fn answers_that_only_repeat_what_they_were_given_pass() {
        let guard = OutputGuard::new(&[], 8).unwrap();
        assert_eq!(check(&guard, "Write to it-desk@acme.example [1]."), None);
        assert_eq!(check(&guard, "We will reply to me@acme.example."), None);
        assert_eq!(
            check(
                &guard,
                "AskAcme answers questions about Acme's policies [1]."
            ),
            None,
            "a few shared words are not a leak"
        );
    }
}
