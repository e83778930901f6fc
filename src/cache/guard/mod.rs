//! The semantic cache's guard: two questions close in embedding space may still ask for
//! different information. Embeddings place "open" near "closed", "immediate family" near
//! "extended family", "order 48213" near "order 48231"; a cached answer served across such a
//! difference is a wrong answer with a citation. So a match is served only when the two
//! questions *align*: every content word of each has an equivalent in the other, and they agree
//! on numbers, negation, the question word, the direction of every "from"/"to", the order of
//! their participants and the voice. Anything else is a difference, and uncertain means miss:
//! a refused paraphrase costs one generation, a served near-miss a wrong answer.
//!
//! Equivalence is decided by grammar and a general lexicon, never by a list of word pairs:
//! the same word or a form of it (`approved` / `approve`), a misspelling of it (a word the
//! lexicon does not know, one or two edits from one it does), or a WordNet synonym in a common
//! sense or derivation (`vacation` / `holiday`, `reimburse` / `reimbursement`). See
//! `docs/semantic-cache.md` for the measurements behind each rule.

mod lexicon;
mod tokens;

use std::fmt;
use std::sync::Arc;

pub use lexicon::{Lexicon, LexiconError, WordClass};
use tokens::{Kind, Token, tokenize};

/// Why the guard refused a match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// A number, amount, date or ID differs (`48213` / `48231`, `two` / `three`).
    Numbers,
    /// One question is negated and the other is not.
    Negation,
    /// One asks about an obligation ("must I", "do I need to") and the other does not.
    Obligation,
    /// They ask a different question word (`who` / `when`).
    QuestionWord,
    /// A content word of one question has no equivalent in the other, which has none
    /// unmatched: an added or dropped qualifier ("for part-time staff").
    Unmatched(String),
    /// Each question has a word the other lacks: an antonym, another name, another qualifier
    /// ("dental" / "vision")… or a synonym the lexicon does not know ("swap" / "exchange").
    Substituted(String, String),
    /// The same word goes the other way (`from` / `to`).
    Direction(String),
    /// The same participants in other roles ("can I ask my manager" / "can my manager ask
    /// me", "London to Paris" / "Paris to London").
    Roles,
    /// One question is passive and the other active ("who approves" / "who is approved").
    Voice,
}

impl Difference {
    /// Whether words alone cannot settle it: a substitution may be a synonym the lexicon lacks,
    /// another question word may ask for the same thing ("when does it start" / "what is the
    /// start date"). Only these may be put to a verifier; every other difference is final.
    pub fn needs_judgement(&self) -> bool {
        matches!(self, Difference::Substituted(..) | Difference::QuestionWord)
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Numbers => f.write_str("numbers differ"),
            Difference::Negation => f.write_str("negation differs"),
            Difference::Obligation => f.write_str("obligation differs"),
            Difference::QuestionWord => f.write_str("question word differs"),
            Difference::Unmatched(word) => write!(f, "unmatched word: {word}"),
            Difference::Substituted(a, b) => write!(f, "substituted words: {a} / {b}"),
            Difference::Direction(word) => write!(f, "direction differs: {word}"),
            Difference::Roles => f.write_str("roles differ"),
            Difference::Voice => f.write_str("voice differs"),
        }
    }
}

/// Forms of `get` that make a passive ("what gets reimbursed"); as verbs they are content.
const GET: &[&str] = &["get", "gets", "got", "gotten", "getting"];

/// Prefixes that negate the word they are put before (`unencrypted`, `non-refundable`): a
/// word and its prefixed form are opposites, never a typo of each other.
const NEGATING_PREFIXES: &[&str] = &[
    "un", "non", "in", "im", "il", "ir", "dis", "de", "mis", "anti",
];

/// Words shorter than this are never taken for misspellings (`HR` / `IR`, `bus` / `bug`).
const MIN_TYPO_LEN: usize = 4;

pub struct Guard {
    lexicon: Arc<Lexicon>,
}

/// One question's words with what the comparison needs of them.
struct Parsed {
    tokens: Vec<Token>,
    /// Indices of the content words.
    content: Vec<usize>,
    /// Each content word's lemmas (itself when the lexicon knows none).
    lemmas: Vec<Vec<String>>,
    /// Each content word's class.
    classes: Vec<WordClass>,
    /// Whether each content word can be a verb ("share", "get"), for finding its subject.
    verbs: Vec<bool>,
    passive: bool,
}

impl Guard {
    pub fn new(lexicon: Arc<Lexicon>) -> Self {
        Self { lexicon }
    }

    /// The first difference that makes `a` and `b` different questions, if any.
    pub fn difference(&self, a: &str, b: &str) -> Option<Difference> {
        let (a, b) = (self.parse(a), self.parse(b));
        if a.numbers() != b.numbers() {
            return Some(Difference::Numbers);
        }
        if a.count(Kind::Negation) != b.count(Kind::Negation) {
            return Some(Difference::Negation);
        }
        if (a.count(Kind::Obligation) > 0) != (b.count(Kind::Obligation) > 0) {
            return Some(Difference::Obligation);
        }
        let a_to_b = match (self.align(&a, &b), self.align(&b, &a)) {
            (Ok(a_to_b), Ok(_)) => a_to_b,
            (Err(x), Err(y)) => return Some(Difference::Substituted(x, y)),
            (Err(word), Ok(_)) | (Ok(_), Err(word)) => return Some(Difference::Unmatched(word)),
        };
        let (qa, qb) = (a.question_words(), b.question_words());
        directions(&a, &b, &a_to_b)
            .or_else(|| roles(&a, &b, &a_to_b))
            .or_else(|| (a.passive != b.passive).then_some(Difference::Voice))
            // "Tell me the rate" asks what "What is the rate?" asks.
            .or_else(|| {
                (!qa.is_empty() && !qb.is_empty() && qa != qb).then_some(Difference::QuestionWord)
            })
    }

    fn parse(&self, text: &str) -> Parsed {
        let tokens = tokenize(text, |word| self.lexicon.knows(word));
        let content: Vec<usize> = (0..tokens.len())
            .filter(|&i| tokens[i].kind == Kind::Content)
            .collect();
        let lemmas = content
            .iter()
            .map(|&i| {
                let lemmas = self.lexicon.lemmas(&tokens[i].text);
                if lemmas.is_empty() {
                    vec![tokens[i].text.clone()]
                } else {
                    lemmas
                }
            })
            .collect();
        let classes = content
            .iter()
            .map(|&i| self.lexicon.word_class(&tokens[i].text))
            .collect();
        let verbs = content
            .iter()
            .map(|&i| self.lexicon.can_be_verb(&tokens[i].text))
            .collect();
        // Passive: a form of `be`/`get` followed, at most one word later, by a participle, or
        // later by an agent (`is Timothy hurt by Madison`).
        let passive = (0..tokens.len()).any(|i| {
            let after = &tokens[i + 1..];
            (tokens[i].kind == Kind::Be || GET.contains(&tokens[i].text.as_str()))
                && (after
                    .iter()
                    .take(2)
                    .any(|t| t.kind == Kind::Content && self.lexicon.is_participle(&t.text))
                    || after.iter().any(|t| t.text == "by"))
        });
        Parsed {
            tokens,
            content,
            lemmas,
            classes,
            verbs,
            passive,
        }
    }

    /// For each content word of `from` (by position in `from.content`), the position in
    /// `to.content` of its equivalent; else the first word without one. Among
    /// several equivalents the next one in order is preferred, so repeated words ("from the
    /// London office to the Berlin office") align in order.
    fn align(&self, from: &Parsed, to: &Parsed) -> Result<Vec<usize>, String> {
        let mut aligned: Vec<usize> = Vec::with_capacity(from.content.len());
        let mut consumed = false;
        for (i, &at) in from.content.iter().enumerate() {
            if std::mem::take(&mut consumed) {
                // The second word of a phrase or compound matched with the first.
                aligned.push(aligned.last().copied().unwrap_or(0));
                continue;
            }
            let word = &from.tokens[at].text;
            let candidates: Vec<usize> = (0..to.content.len())
                .filter(|&j| self.equivalent(word, &from.lemmas[i], to, j))
                .collect();
            let after = aligned.last().copied();
            let single = candidates
                .iter()
                .find(|&&j| after.is_none_or(|last| j > last))
                .or(candidates.first())
                .copied()
                .or_else(|| two_words_in(word, to))
                .or_else(|| self.phrase_in(&from.lemmas[i], to));
            let found = match single {
                Some(j) => Some(j),
                None => self.two_words_from(from, i, to).inspect(|_| {
                    consumed = from.content.get(i + 1) == Some(&(at + 1));
                }),
            };
            match found {
                Some(j) => aligned.push(j),
                None => return Err(word.clone()),
            }
        }
        Ok(aligned)
    }

    fn equivalent(&self, word: &str, lemmas: &[String], other: &Parsed, j: usize) -> bool {
        let other_word = &other.tokens[other.content[j]].text;
        let other_lemmas = &other.lemmas[j];
        // `co-worker` / `coworker`.
        if word == other_word || word.replace('-', "") == other_word.replace('-', "") {
            return true;
        }
        if negated_form(word, other_word) {
            // `encrypted` / `unencrypted`.
            return false;
        }
        let same_lemma = lemmas.iter().any(|l| other_lemmas.contains(l));
        if same_lemma && self.lexicon.degree(word) != self.lexicon.degree(other_word) {
            // One adjective at two degrees: `long` / `longest`.
            return false;
        }
        same_lemma
            || self.misspelt(word, other_word)
            || lemmas
                .iter()
                .any(|l| other_lemmas.iter().any(|o| self.lexicon.related(l, o)))
    }

    /// Content word `i` of `from` and the word after it, as one: a compound written apart
    /// ("hard drive" / "harddrive") or a phrase the lexicon knows that is equivalent to a word
    /// of `to` ("pay back" / "repay", "sign up" / "register").
    fn two_words_from(&self, from: &Parsed, i: usize, to: &Parsed) -> Option<usize> {
        let next = &from.tokens.get(from.content[i] + 1)?.text;
        let compound = format!("{}{next}", from.tokens[from.content[i]].text);
        let phrases: Vec<String> = from.lemmas[i]
            .iter()
            .map(|lemma| format!("{lemma} {next}"))
            .filter(|phrase| self.lexicon.knows_phrase(phrase))
            .collect();
        (0..to.content.len()).find(|&j| {
            to.tokens[to.content[j]].text == compound
                || phrases
                    .iter()
                    .any(|p| to.lemmas[j].iter().any(|o| self.lexicon.related(p, o)))
        })
    }

    /// A phrase of `to` ("turn on") equivalent to a word with `lemmas` ("enable").
    fn phrase_in(&self, lemmas: &[String], to: &Parsed) -> Option<usize> {
        (0..to.content.len()).find(|&j| {
            let Some(next) = to.tokens.get(to.content[j] + 1) else {
                return false;
            };
            to.lemmas[j].iter().any(|first| {
                let phrase = format!("{first} {}", next.text);
                self.lexicon.knows_phrase(&phrase)
                    && lemmas.iter().any(|l| self.lexicon.related(l, &phrase))
            })
        })
    }

    /// One of the two is a word the lexicon knows and the other is not, one edit (two for
    /// long words) away: a typo, not a different word. Two unknown words (names: `Kowalski` /
    /// `Kowalsky`) are never taken for each other.
    fn misspelt(&self, a: &str, b: &str) -> bool {
        let shorter = a.chars().count().min(b.chars().count());
        if shorter < MIN_TYPO_LEN || self.lexicon.knows(a) == self.lexicon.knows(b) {
            return false;
        }
        let allowed = if shorter >= 8 { 2 } else { 1 };
        edit_distance(a, b) <= allowed
    }
}

impl Parsed {
    fn numbers(&self) -> Vec<&str> {
        let mut numbers: Vec<&str> = self
            .tokens
            .iter()
            .filter_map(|t| match &t.kind {
                Kind::Number(n) => Some(n.as_str()),
                _ => None,
            })
            .collect();
        // In order: "Is CS 101 a prerequisite for CS 201?" is not the reverse question.
        numbers.dedup();
        numbers
    }

    fn count(&self, kind: Kind) -> usize {
        self.tokens.iter().filter(|t| t.kind == kind).count()
    }

    fn question_words(&self) -> Vec<&'static str> {
        let mut words: Vec<&'static str> = self
            .tokens
            .iter()
            .filter_map(|t| match t.kind {
                Kind::QuestionWord(w) => Some(w),
                _ => None,
            })
            .collect();
        words.sort_unstable();
        words.dedup();
        words
    }

    /// The direction word governing the content word at token index `at`: the nearest one
    /// before it with only grammar words (articles, pronouns) in between.
    fn direction_of(&self, at: usize) -> Option<&'static str> {
        self.tokens[..at]
            .iter()
            .rev()
            .take_while(|t| !matches!(t.kind, Kind::Content | Kind::Number(_)))
            .find_map(|t| match t.kind {
                Kind::Direction(d) => Some(d),
                _ => None,
            })
    }

    /// Whether content word `i` names a participant: a noun, a name, or anything unknown.
    fn is_participant(&self, i: usize) -> bool {
        matches!(self.classes[i], WordClass::Noun | WordClass::Unknown)
    }

    /// The token index of the first word referring to the asker.
    fn asker(&self) -> Option<usize> {
        self.tokens.iter().position(|t| t.kind == Kind::Asker)
    }

    /// Whether an action or a direction stands between token indices `x` and `y`: then the
    /// two are in different roles, not one noun phrase ("guest wifi password").
    fn separated(&self, x: usize, y: usize) -> bool {
        (x.min(y) + 1..x.max(y)).any(|t| match self.tokens[t].kind {
            Kind::Direction(_) => true,
            Kind::Content => self
                .content_position(t)
                .is_some_and(|i| self.classes[i] == WordClass::Verb),
            _ => false,
        })
    }

    /// The position in `content` of the content word at token index `t`.
    fn content_position(&self, t: usize) -> Option<usize> {
        self.content.binary_search(&t).ok()
    }

    /// The participant acting as the subject of the verb at content position `i`: the
    /// nearest participant (or the asker) before it with only grammar in between.
    fn subject_of(&self, i: usize) -> Option<Participant> {
        for t in (0..self.content[i]).rev() {
            match self.tokens[t].kind {
                Kind::Asker => return Some(Participant::Asker),
                Kind::Content => {
                    let c = self.content_position(t)?;
                    return self.is_participant(c).then_some(Participant::Word(c));
                }
                Kind::Neutral | Kind::Be | Kind::Obligation | Kind::Negation => {}
                _ => return None,
            }
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Participant {
    Asker,
    /// A content word, by position in `content`.
    Word(usize),
}

/// Aligned words governed by different direction words: "from my account" / "to my account".
fn directions(a: &Parsed, b: &Parsed, a_to_b: &[usize]) -> Option<Difference> {
    a.content.iter().zip(a_to_b).find_map(|(&at, &j)| {
        match (a.direction_of(at), b.direction_of(b.content[j])) {
            (Some(x), Some(y)) if x != y => Some(Difference::Direction(a.tokens[at].text.clone())),
            _ => None,
        }
    })
}

/// The participants both questions share must keep their roles: the same subject for each
/// shared verb, and no two participants with an action or direction between them swapped.
fn roles(a: &Parsed, b: &Parsed, a_to_b: &[usize]) -> Option<Difference> {
    for (i, &j) in a_to_b.iter().enumerate() {
        if !a.verbs[i] {
            continue;
        }
        let same = match (a.subject_of(i), b.subject_of(j)) {
            (Some(Participant::Asker), Some(Participant::Asker)) | (None, _) | (_, None) => true,
            (Some(Participant::Word(x)), Some(Participant::Word(y))) => a_to_b[x] == y,
            _ => false,
        };
        if !same {
            return Some(Difference::Roles);
        }
    }
    // Token positions, in a and in b, of each shared participant.
    let mut shared: Vec<(usize, usize)> = (0..a.content.len())
        .filter(|&i| a.is_participant(i))
        .map(|i| (a.content[i], b.content[a_to_b[i]]))
        .collect();
    if let (Some(x), Some(y)) = (a.asker(), b.asker()) {
        shared.push((x, y));
    }
    for (n, &(x1, y1)) in shared.iter().enumerate() {
        for &(x2, y2) in &shared[n + 1..] {
            let swapped = (x1 < x2) != (y1 < y2) && y1 != y2;
            if swapped && a.separated(x1, x2) && b.separated(y1, y2) {
                return Some(Difference::Roles);
            }
        }
    }
    None
}

/// `login` against `log in`: two adjacent words of `other` that make up `word`. Returns the
/// first of them that is a content word.
fn two_words_in(word: &str, other: &Parsed) -> Option<usize> {
    other.tokens.windows(2).enumerate().find_map(|(i, pair)| {
        (format!("{}{}", pair[0].text, pair[1].text) == word)
            .then(|| other.content.iter().position(|&c| c == i || c == i + 1))
            .flatten()
    })
}

/// Whether one word is the other with a negating prefix (`unencrypted`, `non-refundable`).
fn negated_form(a: &str, b: &str) -> bool {
    let prefixed = |long: &str, short: &str| {
        NEGATING_PREFIXES
            .iter()
            .any(|p| long.strip_prefix(p) == Some(short))
    };
    prefixed(a, b) || prefixed(b, a)
}

/// Damerau–Levenshtein distance (optimal string alignment): a swap of two neighbours is one
/// edit, as in the commonest typos.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 2 {
        // More than any typo allowance: no need to fill the table.
        return a.len().abs_diff(b.len());
    }
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard::new(lexicon::tests::wordnet())
    }

    #[test]
    fn near_misses_are_told_apart() {
        let guard = guard();
        for (a, b, why) in [
            (
                "Status of order 48213?",
                "Status of order 48231?",
                Difference::Numbers,
            ),
            (
                "Which expenses are reimbursed?",
                "Which expenses are not reimbursed?",
                Difference::Negation,
            ),
            (
                "Is the office open on Mondays?",
                "Is the office closed on Mondays?",
                Difference::Substituted("open".into(), "closed".into()),
            ),
            (
                "How much bereavement leave for an immediate family member?",
                "How much bereavement leave for an extended family member?",
                Difference::Substituted("immediate".into(), "extended".into()),
            ),
            (
                "How long is parental leave?",
                "How long is parental leave for part-time staff?",
                Difference::Unmatched("parttime".into()),
            ),
            (
                "Is dental insurance included?",
                "Is vision insurance included?",
                Difference::Substituted("dental".into(), "vision".into()),
            ),
            (
                "Can I transfer money to my savings account?",
                "Can I transfer money from my savings account?",
                Difference::Direction("savings".into()),
            ),
            (
                "How much is a flight from London to Paris?",
                "How much is a flight from Paris to London?",
                Difference::Direction("london".into()),
            ),
            (
                "Can I ask my manager for a reference?",
                "Can my manager ask me for a reference?",
                Difference::Roles,
            ),
            (
                "Who approves expense claims?",
                "When are expense claims approved?",
                Difference::QuestionWord,
            ),
            (
                "How many days of leave do I get?",
                "How many days of leave does my manager get?",
                Difference::Unmatched("manager".into()),
            ),
        ] {
            assert_eq!(guard.difference(a, b), Some(why.clone()), "{a} / {b}");
            assert!(guard.difference(b, a).is_some(), "{b} / {a}");
        }
        for (a, b) in [
            (
                "Who's approved for remote work?",
                "Who approves remote work?",
            ),
            ("Who is paid overtime?", "Who pays overtime?"),
            ("Is the fee £50?", "Is the fee €50?"),
            ("Does it take 1-2 days?", "Does it take 12 days?"),
            ("Is Kowalski on the team?", "Is Kowalsky on the team?"),
        ] {
            assert!(guard.difference(a, b).is_some(), "{a} / {b}");
            assert!(guard.difference(b, a).is_some(), "{b} / {a}");
        }
    }

    #[test]
    fn paraphrases_and_retypes_pass() {
        let guard = guard();
        for (a, b) in [
            (
                "How many vacation days do I get?",
                "How many holiday days do I get?",
            ),
            (
                "Which expenses are reimbursed?",
                "which expense is reimbursed",
            ),
            ("How do I reset my password?", "how do i reset my pasword??"),
            (
                "Contracts above 250,000 EUR?",
                "Contracts above 250000 EUR?",
            ),
            ("Can I get two weeks off?", "can I get 2 weeks off"),
            ("How do I login to the VPN?", "How do I log in to the VPN?"),
            ("Don't I need approval?", "Do I not need approval?"),
            ("Where is my order?", "where are my orders"),
            ("Is the discount 20%?", "is the discount 20 percent"),
            ("Can I date a co-worker?", "can i date a coworker?"),
        ] {
            assert_eq!(guard.difference(a, b), None, "{a} / {b}");
            assert_eq!(guard.difference(b, a), None, "{b} / {a}");
        }
    }

    #[test]
    fn typos_are_one_or_two_edits() {
        assert_eq!(edit_distance("recieve", "receive"), 1);
        assert_eq!(edit_distance("vacaton", "vacation"), 1);
        assert_eq!(edit_distance("reimbursment", "reimbursement"), 1);
        assert_eq!(edit_distance("abc", "xyz"), 3);
    }
}
