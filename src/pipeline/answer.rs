//! Generate: the prompt rendered with the retrieved sources, and one completion (or one
//! stream) through the gateway; and the model's ways of declining.

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

#[derive(Clone, Copy)]
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

impl<'a> Generation<'a> {
    /// The same generation from another model (a cascade's strong tier).
    pub fn with_model(self, model: &'a str) -> Self {
        Self { model, ..self }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
