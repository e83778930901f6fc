//! The semantic cache's verifier: a model asked, in one word, whether two questions ask for the
//! same information. Only matches the guard could not settle by words alone reach it (a
//! substituted word, another question word); numbers, negation, directions, roles, added
//! qualifiers stay refused whatever a model says. The call goes through the gateway (logged,
//! priced, and cached exactly, so a pair is judged once).

use std::sync::Arc;

use async_trait::async_trait;

use crate::cache::semantic::Verifier;
use crate::gateway::{Gateway, RequestContext, new_request_id};
use crate::providers::types::{ChatRequest, Message, Role};

const INSTRUCTIONS: &str = "You check whether two questions asked to a company assistant \
ask for exactly the same information, so that one correct answer fully answers both. Answer \
\"no\" if they differ in any way that could change the answer: a different person, role, \
place, product, amount, date, time, condition, direction or scope, or opposite actions or \
states. Answer \"yes\" only if they are the same question in other words. Reply with one word: \
yes or no.";

pub struct ModelVerifier {
    gateway: Arc<Gateway>,
    model: String,
    /// The request the check belongs to; `None`: each check is a request of its own.
    ctx: Option<RequestContext>,
}

impl ModelVerifier {
    pub fn new(gateway: Arc<Gateway>, model: String) -> Self {
        Self {
            gateway,
            model,
            ctx: None,
        }
    }

    /// The same verifier, logging its calls under `ctx`'s request.
    pub fn within(&self, ctx: &RequestContext) -> Self {
        Self {
            gateway: self.gateway.clone(),
            model: self.model.clone(),
            ctx: Some(ctx.child("verify", "assistant.verify")),
        }
    }
}

#[async_trait]
impl Verifier for ModelVerifier {
    async fn same_question(&self, a: &str, b: &str) -> Option<bool> {
        let request = ChatRequest {
            model: self.model.clone(),
            messages: vec![
                Message::new(Role::System, INSTRUCTIONS.to_owned()),
                Message::new(
                    Role::User,
                    format!("Question 1: {a}\nQuestion 2: {b}\nSame question? yes or no:"),
                ),
            ],
            temperature: Some(0.0),
            max_tokens: Some(2),
            ..ChatRequest::default()
        };
        let ctx = match &self.ctx {
            Some(ctx) => ctx.clone(),
            None => RequestContext::new(new_request_id(), "assistant.verify"),
        };
        match self.gateway.complete(request, &ctx).await {
            Ok(completion) => verdict(&completion.response.text()),
            Err(e) => {
                tracing::warn!(error = %e, "semantic cache verifier failed: refusing the match");
                None
            }
        }
    }
}

/// `yes` / `no` as the first word, whatever the case and punctuation; anything else is no
/// verdict.
fn verdict(reply: &str) -> Option<bool> {
    let first = reply
        .split_whitespace()
        .next()?
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    match first.as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_yes_or_a_no_is_a_verdict() {
        assert_eq!(verdict("Yes."), Some(true));
        assert_eq!(verdict(" no, they differ"), Some(false));
        assert_eq!(verdict("\"YES\""), Some(true));
        assert_eq!(verdict("Maybe"), None);
        assert_eq!(verdict(""), None);
    }
}
