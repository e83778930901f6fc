//! Conversations: a follow-up ("And for the secondary caregiver?", "How often must I change
//! it?") depends on the question before it; retrieval and the model need it as a standalone
//! question. A model named by `assistant.rewrite_model` rewrites it (one short call through the
//! gateway); without one, or when its rewrite is unusable, rules do: a fragment is completed
//! with the previous question ("How long is parental leave for the secondary caregiver?"), a
//! pronoun is replaced by the previous question's subject ("How often must I change the
//! password?"). A question that stands alone is left as it is, without any call.

use std::sync::LazyLock;

use regex::Regex;

use crate::gateway::{Gateway, GatewayError, RequestContext};
use crate::providers::types::{ChatRequest, Message, Role};

/// Words that open a follow-up fragment ("and for part-timers?", "what about contractors?").
static CONNECTOR: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(?:and|but|also|or|so|then)?\s*(?:what|how)\s+about\s+|^\s*(?:and|but|also|or)\s+(?:what|how)\s+(?:if|for)\s+|^\s*(?:and|but|also|or)\s+|^\s*(?:same|the same)\s+for\s+",
    )
    .ok()
});

/// A pronoun that points back: the first one is replaced by the previous subject.
static POINTER: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)\b(it|its|this|that|they|them|these|those)\b").ok());

/// "It" that points nowhere: "is it true that …", "is it possible to …".
static DUMMY_IT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)\bit\s+(?:is\s+|'s\s+)?(?:true|possible|okay|ok|allowed|necessary|required|mandatory|normal|common|fine|likely)\b|\bthat\s+(?:i|we|you|my|our|the|a)\b")
        .ok()
});

/// The question words and verb that open a question about a subject: what is left after them
/// ("the password length", "parental leave") is the subject a pronoun stands for.
static SUBJECT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:what|how\s+long|how\s+much|how\s+many\s+\w+|when|where|who|which)\s*(?:'s|’s|\s+is|\s+are|\s+was|\s+were|\s+does|\s+do)\s+(?P<subject>.+?)\s*\??\s*$")
        .ok()
});

/// Words that start a clause: a fragment without one is completed with the previous question.
const VERBS_AND_QUESTION_WORDS: &[&str] = &[
    "what", "how", "when", "where", "who", "whom", "which", "why", "is", "are", "was", "were",
    "do", "does", "did", "can", "could", "may", "might", "must", "should", "would", "will",
    "shall", "have", "has", "had", "get", "gets", "need", "needs",
];

/// The longest standalone question a rewrite may return, in characters.
const MAX_REWRITE_CHARS: usize = 400;

/// Whether `question` needs the conversation to be understood.
pub fn is_follow_up(question: &str) -> bool {
    matches(&CONNECTOR, question) || points_back(question)
}

fn matches(pattern: &LazyLock<Option<Regex>>, text: &str) -> bool {
    pattern.as_ref().is_some_and(|re| re.is_match(text))
}

fn points_back(question: &str) -> bool {
    let words = question.split_whitespace().count();
    words <= 12 && matches(&POINTER, question) && !matches(&DUMMY_IT, question)
}

/// The follow-up as a standalone question, by rule, given the previous standalone question.
pub fn rewrite_by_rule(question: &str, previous: &str) -> String {
    let question = question.trim();
    let previous_stem = previous.trim().trim_end_matches(['?', '.', '!']).trim_end();
    if let Some(found) = CONNECTOR.as_ref().and_then(|re| re.find(question)) {
        let fragment = question[found.end()..]
            .trim()
            .trim_end_matches(['?', '.', '!']);
        if !fragment.is_empty() && !is_clause(fragment) {
            let joiner = if starts_with_preposition(fragment) {
                " "
            } else {
                " for "
            };
            return format!("{previous_stem}{joiner}{fragment}?");
        }
        let clause = capitalise(fragment);
        return rewrite_pointer(&format!("{clause}?"), previous).unwrap_or(clause + "?");
    }
    rewrite_pointer(question, previous)
        .unwrap_or_else(|| format!("{question} (following up on: {previous})"))
}

/// Replaces the first pronoun by the previous question's subject, when it has one.
fn rewrite_pointer(question: &str, previous: &str) -> Option<String> {
    let subject = SUBJECT
        .as_ref()?
        .captures(previous)?
        .name("subject")?
        .as_str();
    let subject = thing(subject);
    let pointer = POINTER.as_ref()?.find(question)?;
    // Asked in the first person, "the password" is "my password", as a person would say it.
    let subject = match subject.strip_prefix("the ") {
        Some(rest) if speaks_of_self(question) => format!("my {rest}"),
        _ => subject.to_owned(),
    };
    let subject = if pointer.as_str().eq_ignore_ascii_case("its") {
        format!("{subject}'s")
    } else {
        subject
    };
    Some(format!(
        "{}{}{}",
        &question[..pointer.start()],
        subject,
        &question[pointer.end()..]
    ))
}

/// Words that name a property of a thing: "the password length" asks about the password,
/// and a later "change it" means the password, not its length.
const PROPERTIES: &[&str] = &[
    "length",
    "size",
    "limit",
    "minimum",
    "maximum",
    "duration",
    "number",
    "amount",
    "count",
    "cost",
    "price",
    "rate",
    "deadline",
    "frequency",
    "format",
    "requirement",
    "requirements",
];

/// The thing a subject is about: "the password length" → "the password", "the length of
/// the password" → "the password".
fn thing(subject: &str) -> &str {
    let words: Vec<&str> = subject.split_whitespace().collect();
    let is_property = |w: &str| PROPERTIES.contains(&w.to_lowercase().as_str());
    if let Some(of) = subject.to_lowercase().find(" of ")
        && let (Some(before), Some(after)) = (subject.get(..of), subject.get(of + " of ".len()..))
        && before.split_whitespace().any(is_property)
    {
        return after.trim_start();
    }
    match words.split_last() {
        Some((last, rest)) if is_property(last) && rest.len() >= 2 => {
            subject[..subject.len() - last.len()].trim_end()
        }
        _ => subject,
    }
}

fn speaks_of_self(question: &str) -> bool {
    question
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .any(|w| matches!(w, "I" | "I'm" | "I've" | "me" | "my" | "My"))
}

fn is_clause(fragment: &str) -> bool {
    fragment
        .split_whitespace()
        .any(|w| VERBS_AND_QUESTION_WORDS.contains(&w.to_lowercase().as_str()))
}

fn starts_with_preposition(fragment: &str) -> bool {
    const PREPOSITIONS: &[&str] = &[
        "for", "in", "at", "on", "with", "without", "during", "after", "before", "if", "when",
        "outside", "inside", "from", "to", "under", "over", "while",
    ];
    fragment
        .split_whitespace()
        .next()
        .is_some_and(|w| PREPOSITIONS.contains(&w.to_lowercase().as_str()))
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Asks `model` to rewrite the follow-up given the conversation (oldest turn first). `None`
/// when its reply is not one plausible question: the caller falls back to the rules.
pub async fn rewrite_by_model(
    gateway: &Gateway,
    model: &str,
    history: &[&str],
    question: &str,
    ctx: &RequestContext,
) -> Result<Option<String>, GatewayError> {
    let mut conversation = String::new();
    for earlier in history {
        conversation.push_str("Employee: ");
        conversation.push_str(earlier);
        conversation.push('\n');
    }
    let request = ChatRequest {
        model: model.to_owned(),
        messages: vec![
            Message::new(
                Role::System,
                "Rewrite the employee's last question so that it can be understood without \
                 the conversation: replace pronouns and fill in what is left out, from the \
                 earlier questions. Keep its meaning and wording otherwise. Reply with the \
                 rewritten question only.",
            ),
            Message::new(
                Role::User,
                format!("{conversation}Last question: {question}\nRewritten question:"),
            ),
        ],
        temperature: Some(0.0),
        max_tokens: Some(64),
        ..ChatRequest::default()
    };
    let completion = gateway.complete(request, ctx).await?;
    let reply = completion.response.text();
    let reply = reply
        .trim()
        .trim_start_matches("Rewritten question:")
        .trim()
        .trim_matches('"');
    let usable = !reply.is_empty()
        && reply.len() <= MAX_REWRITE_CHARS
        && !reply.contains('\n')
        && reply.ends_with('?');
    Ok(usable.then(|| reply.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_questions_are_not_follow_ups() {
        for question in [
            "How long is parental leave?",
            "What's the password length?",
            "Is it true that parental leave is 20 weeks?",
            "Can I carry over unused vacation days into next year?",
            "Who approves expense reports above 500 EUR?",
        ] {
            assert!(!is_follow_up(question), "{question}");
        }
    }

    #[test]
    fn fragments_are_completed_with_the_previous_question() {
        let previous = "How long is parental leave?";
        assert_eq!(
            rewrite_by_rule("And for the secondary caregiver?", previous),
            "How long is parental leave for the secondary caregiver?"
        );
        assert_eq!(
            rewrite_by_rule("What about part-timers?", previous),
            "How long is parental leave for part-timers?"
        );
        assert_eq!(
            rewrite_by_rule("and in Germany?", previous),
            "How long is parental leave in Germany?"
        );
    }

    #[test]
    fn a_pronoun_becomes_the_previous_subject() {
        let previous = "What's the password length?";
        assert!(is_follow_up("How often must I change it?"));
        assert_eq!(
            rewrite_by_rule("How often must I change it?", previous),
            "How often must I change my password?",
            "it is the password, not its length"
        );
        assert_eq!(
            rewrite_by_rule("Who sets it?", "What is the length of the notice period?"),
            "Who sets the notice period?"
        );
        assert_eq!(
            rewrite_by_rule("And who approves it?", "What is the travel policy?"),
            "Who approves the travel policy?"
        );
        // No subject to take: the previous question goes along, so retrieval sees it.
        assert_eq!(
            rewrite_by_rule("Where do I send it?", "Can I expense a laptop?"),
            "Where do I send it? (following up on: Can I expense a laptop?)"
        );
    }
}
