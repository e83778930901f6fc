//! The semantic cache's guard: two questions close in embedding space may still need different
//! answers. "Order 48213" and "order 48231" embed almost identically; so do "full-time" and
//! "part-time", "reimbursed" and "not reimbursed". A cached answer is served for a similar
//! question only if none of these differ: numbers and IDs, dates, names, negation, and
//! contrasting qualifiers.

use std::collections::BTreeSet;

/// Why the guard refused a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// A number, amount or ID differs (`48213`/`48231`, `HR-104`/`HR-101`).
    Numbers,
    /// A month or weekday differs.
    Dates,
    /// A proper name differs (`Germany`/`France`, `Slack`/`Dropbox`).
    Names,
    /// One question is negated and the other is not.
    Negation,
    /// A contrasting qualifier differs (`full-time`/`part-time`, `before`/`after`).
    Qualifiers,
}

impl Difference {
    pub fn as_str(self) -> &'static str {
        match self {
            Difference::Numbers => "numbers differ",
            Difference::Dates => "dates differ",
            Difference::Names => "names differ",
            Difference::Negation => "negation differs",
            Difference::Qualifiers => "qualifiers differ",
        }
    }
}

const NEGATIONS: &[&str] = &[
    "not",
    "no",
    "never",
    "without",
    "cannot",
    "can't",
    "don't",
    "doesn't",
    "isn't",
    "aren't",
    "won't",
    "shouldn't",
    "mustn't",
    "wasn't",
    "weren't",
    "didn't",
    "nobody",
    "nothing",
    "none",
];

const DATES: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    // Not "may": far more often the verb; the month, capitalised mid-sentence, counts as a name.
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "today",
    "tomorrow",
    "yesterday",
];

/// Who or what a rule applies to. Questions differ when they use different words of a group
/// ("full-time" / "part-time"), and also when only one of them uses any: "how long is parental
/// leave" and "… for part-time employees" may have different answers. That refuses some true
/// paraphrases ("meals on business trips" / "meals when travelling"); a refused paraphrase
/// costs one model call, a wrong answer costs trust. Compared with a plural `s` dropped.
const SCOPES: &[&[&str]] = &[
    &["full", "part"],
    &["domestic", "international", "abroad"],
    &[
        "contractor",
        "employee",
        "intern",
        "freelancer",
        "consultant",
    ],
    &["new", "departing", "leaving", "existing"],
    &["permanent", "temporary"],
    &["internal", "external"],
    &["weekday", "weekend"],
    &["paid", "unpaid"],
    &["senior", "junior"],
    &["manager", "director"],
    &["economy", "business"],
];

/// Opposite actions and bounds. These words also fill paraphrases ("am I allowed to…"), so
/// here questions differ only when both use a word of the group and the words differ.
const OPPOSITES: &[&[&str]] = &[
    &["before", "after", "during"],
    &["maximum", "minimum", "max", "min"],
    &["onboard", "offboard"],
    &["first", "last"],
    &["increase", "decrease", "raise", "lower"],
    &["public", "private"],
    &["inbound", "outbound", "incoming", "outgoing"],
    &["request", "cancel", "extend", "approve", "reject"],
    &["add", "remove", "delete"],
    &["enable", "disable"],
    &["open", "close"],
    &["start", "stop", "end"],
    &["reset", "change"],
    &["allowed", "forbidden", "prohibited"],
];

/// The first difference that makes `a` and `b` different questions, if any.
pub fn difference(a: &str, b: &str) -> Option<Difference> {
    let (a, b) = (Features::of(a), Features::of(b));
    if a.numbers != b.numbers {
        Some(Difference::Numbers)
    } else if a.dates != b.dates {
        Some(Difference::Dates)
    } else if a.names != b.names {
        Some(Difference::Names)
    } else if a.negated != b.negated {
        Some(Difference::Negation)
    } else if contrasted(&a.words, &b.words) {
        Some(Difference::Qualifiers)
    } else {
        None
    }
}

/// Whether the two texts differ in a scope word or use opposite words.
fn contrasted(a: &BTreeSet<String>, b: &BTreeSet<String>) -> bool {
    let used = |group: &[&'static str], words: &BTreeSet<String>| -> BTreeSet<&'static str> {
        group
            .iter()
            .copied()
            .filter(|w| words.contains(*w))
            .collect()
    };
    let scope_differs = SCOPES.iter().any(|g| used(g, a) != used(g, b));
    let opposite = OPPOSITES.iter().any(|g| {
        let (in_a, in_b) = (used(g, a), used(g, b));
        !in_a.is_empty() && !in_b.is_empty() && in_a != in_b
    });
    scope_differs || opposite
}

struct Features {
    numbers: BTreeSet<String>,
    dates: BTreeSet<String>,
    names: BTreeSet<String>,
    negated: bool,
    /// Every word of the text, singular, to find contrasts in.
    words: BTreeSet<String>,
}

impl Features {
    fn of(text: &str) -> Self {
        let mut features = Features {
            numbers: BTreeSet::new(),
            dates: BTreeSet::new(),
            names: BTreeSet::new(),
            negated: false,
            words: BTreeSet::new(),
        };
        let mut sentence_start = true;
        for raw in text.split_whitespace() {
            let word = raw.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-');
            let word = word.trim_matches('\'');
            if word.is_empty() {
                continue;
            }
            let lower = word.to_lowercase().replace('\u{2019}', "'");
            if word.chars().any(|c| c.is_ascii_digit()) {
                // `250,000` and `250000` are the same number; `HR-104` is an ID.
                features
                    .numbers
                    .insert(lower.chars().filter(|c| *c != ',').collect());
            } else if DATES.contains(&lower.as_str()) {
                features.dates.insert(lower.clone());
            } else if !sentence_start
                && word != "I"
                && word.chars().next().is_some_and(char::is_uppercase)
            {
                features.names.insert(singular(&lower));
            }
            if NEGATIONS.contains(&lower.as_str()) || lower.ends_with("n't") {
                features.negated = true;
            }
            features.words.extend(lower.split('-').map(singular));
            sentence_start = raw.ends_with(['.', '?', '!']);
        }
        features
    }
}

fn singular(word: &str) -> String {
    match word.strip_suffix('s') {
        Some(stem) if stem.len() > 2 && !stem.ends_with('s') => stem.to_owned(),
        _ => word.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_told_apart() {
        for (a, b, why) in [
            (
                "Status of order 48213?",
                "Status of order 48231?",
                Difference::Numbers,
            ),
            (
                "Contracts above 250,000 EUR?",
                "Contracts above 25,000 EUR?",
                Difference::Numbers,
            ),
            (
                "What does HR-104 say?",
                "What does HR-101 say?",
                Difference::Numbers,
            ),
            ("Open on Monday?", "Open on Saturday?", Difference::Dates),
            ("Trips to Germany?", "Trips to France?", Difference::Names),
            (
                "Which expenses are reimbursed?",
                "Which expenses are not reimbursed?",
                Difference::Negation,
            ),
            (
                "Can't I work abroad?",
                "Can I work abroad?",
                Difference::Negation,
            ),
            (
                "Days for full-time staff?",
                "Days for part-time staff?",
                Difference::Qualifiers,
            ),
            (
                "Can contractors use it?",
                "Can employees use it?",
                Difference::Qualifiers,
            ),
            ("Is leave paid?", "Is leave unpaid?", Difference::Qualifiers),
            (
                "How do I reset my password?",
                "How do I change my password?",
                Difference::Qualifiers,
            ),
            (
                "How long is parental leave?",
                "How long is parental leave for part-time staff?",
                Difference::Qualifiers,
            ),
        ] {
            assert_eq!(difference(a, b), Some(why), "{a} / {b}");
        }
    }

    #[test]
    fn paraphrases_pass() {
        for (a, b) in [
            (
                "How long is parental leave?",
                "What is the length of parental leave?",
            ),
            (
                "Can I use ChatGPT for work?",
                "Am I allowed to use ChatGPT at work?",
            ),
            (
                "Can contractors use the VPN?",
                "May a contractor use the VPN?",
            ),
            (
                "Contracts above 250,000 EUR?",
                "Contracts above 250000 EUR?",
            ),
            ("Who signs? I need to know.", "Who signs? Tell me."),
        ] {
            assert_eq!(difference(a, b), None, "{a} / {b}");
        }
    }
}
