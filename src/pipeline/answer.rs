//! Generate and cite: the prompt rendered with the retrieved sources, one completion through
//! the gateway, then the answer's `[n]` markers mapped to the sources they name.

use super::citations;
use crate::gateway::GatewayError;
use crate::gateway::{Completion, Gateway, RequestContext};
use crate::kb::search::Hit;
use crate::prompts::{AnswerContext, Prompt, PromptError, Registry, TemplateSource};
use crate::providers::types::{ChatRequest, Message, Role};
use crate::safety::Canary;

/// What the prompt tells the model to say when the sources lack the answer; also the
/// assistant's own answer when retrieval finds nothing close enough to ask a model.
pub const NO_INFORMATION: &str = "I don't have that information.";

/// The prompt's reply to requests that are not about the company.
pub const OFF_TOPIC: &str = "I can only help with questions about Acme Corp policies.";

/// Phrases by which a model declines (lower case, straight apostrophes).
const DECLINES: &[&str] = &[
    "don't have that information",
    "do not have that information",
    "not specified in the sources",
    "not mentioned in the sources",
    "not provided in the sources",
    "not specified in the given sources",
    "not mentioned in the given sources",
    "not provided in the given sources",
    "not specified in the provided sources",
    "not mentioned in the provided sources",
    "sources do not contain",
    "sources don't contain",
];

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

pub struct Generation<'a> {
    pub registry: &'a Registry,
    pub prompt: &'a Prompt,
    pub model: &'a str,
    pub question: &'a str,
    pub category: &'a str,
    pub department: Option<&'a str>,
    pub hits: &'a [Hit],
    /// Added to the system prompt; an answer that repeats it leaked the prompt.
    pub canary: Option<&'a Canary>,
}

pub async fn generate(
    gateway: &Gateway,
    generation: Generation<'_>,
    ctx: &RequestContext,
) -> Result<Completion, AnswerError> {
    Ok(gateway.complete(request(generation)?, ctx).await?)
}

/// The chat request for a generation: the prompt's system text (with the canary), and its
/// template rendered with the sources and the question.
pub fn request(generation: Generation<'_>) -> Result<ChatRequest, AnswerError> {
    let sources = generation
        .hits
        .iter()
        .enumerate()
        .map(|(i, hit)| TemplateSource {
            n: i + 1,
            title: &hit.chunk.title,
            path: &hit.chunk.document_path,
            heading: &hit.chunk.chunk.heading_path,
            text: &hit.chunk.chunk.text,
        })
        .collect();
    let user = generation.registry.render(
        generation.prompt,
        &AnswerContext {
            question: generation.question,
            sources,
            category: generation.category,
            department: generation.department,
        },
    )?;
    let mut system = generation.prompt.system.clone();
    if let Some(canary) = generation.canary {
        system.push('\n');
        system.push_str(&canary.marker());
    }
    Ok(ChatRequest {
        model: generation.model.to_owned(),
        messages: vec![
            Message::new(Role::System, system),
            Message::new(Role::User, user),
        ],
        temperature: Some(generation.prompt.temperature),
        max_tokens: generation.prompt.max_tokens,
        ..ChatRequest::default()
    })
}

/// If the model declined, the assistant's canonical reply: the off-topic refusal or "no
/// information". Declines often come wrapped in a guess ("not specified in the sources, but
/// probably…"), which must not reach the user.
pub fn decline(answer: &str) -> Option<&'static str> {
    let answer = answer.to_lowercase().replace('\u{2019}', "'");
    if answer.contains("can only help with questions about acme") {
        Some(OFF_TOPIC)
    } else if DECLINES.iter().any(|phrase| answer.contains(phrase)) {
        Some(NO_INFORMATION)
    } else {
        None
    }
}

/// The answer with its citation markers renumbered in order of first use (`[3] … [1]` becomes
/// `[1] … [2]`), and the 0-based indexes of the cited sources in that order. Markers that name
/// no source are removed; brackets that are not citations (`[see below]`) are left alone.
/// Every form `citations::markers` reads (`[1, 2]`, `[1-3]`, `[Source 1]`, …) is understood.
pub fn renumber_citations(answer: &str, sources: usize) -> (String, Vec<usize>) {
    let mut cited: Vec<usize> = Vec::new();
    let mut out = String::with_capacity(answer.len());
    let mut last = 0;
    for marker in citations::markers(answer) {
        out.push_str(&answer[last..marker.span.start]);
        last = marker.span.end;
        for n in marker
            .numbers
            .into_iter()
            .filter(|n| (1..=sources).contains(n))
        {
            let index = n - 1;
            let position = match cited.iter().position(|&c| c == index) {
                Some(p) => p,
                None => {
                    cited.push(index);
                    cited.len() - 1
                }
            };
            out.push_str(&format!("[{}]", position + 1));
        }
    }
    out.push_str(&answer[last..]);
    (tidy(&out), cited)
}

/// Removed markers leave a space before punctuation or doubled spaces behind.
fn tidy(text: &str) -> String {
    let mut out = text.replace("  ", " ");
    for punctuation in [".", ",", ";", ":"] {
        out = out.replace(&format!(" {punctuation}"), punctuation);
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_are_renumbered_in_order_of_first_use() {
        let (text, cited) =
            renumber_citations("Leave is 20 weeks [3]. Notice is 8 weeks [1][3].", 4);
        assert_eq!(text, "Leave is 20 weeks [1]. Notice is 8 weeks [2][1].");
        assert_eq!(cited, vec![2, 0]);
    }

    #[test]
    fn unusual_citation_forms_are_read_and_bad_ones_dropped() {
        let (text, cited) = renumber_citations("A [Source 2]. B [1, 2]. C [9]. D [see below].", 2);
        assert_eq!(text, "A [1]. B [2][1]. C. D [see below].");
        assert_eq!(cited, vec![1, 0]);
        let (text, cited) = renumber_citations("Unclosed [1 and a [ bracket", 2);
        assert_eq!(text, "Unclosed [1 and a [ bracket");
        assert!(cited.is_empty());
        let (text, cited) = renumber_citations("A [1-3]. B (Source 2). C [source 1, 2]. D (1).", 3);
        assert_eq!(text, "A [1][2][3]. B [2]. C [1][2]. D (1).");
        assert_eq!(cited, vec![0, 1, 2]);
    }

    #[test]
    fn declines_are_recognised_and_replaced_by_the_canonical_reply() {
        assert_eq!(
            decline("I don\u{2019}t have that information."),
            Some(NO_INFORMATION)
        );
        assert_eq!(
            decline("Sorry, I do not have that information in the sources."),
            Some(NO_INFORMATION)
        );
        assert_eq!(
            decline("It is not specified in the sources, but it is likely casual [1]."),
            Some(NO_INFORMATION)
        );
        assert_eq!(
            decline("I can only help with questions about Acme Corp policies. Knock knock!"),
            Some(OFF_TOPIC)
        );
        assert_eq!(decline("Parental leave is 20 weeks [1]."), None);
    }
}
