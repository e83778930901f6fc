//! Personal data and secrets in text: e-mail addresses, phone numbers, US social security
//! numbers, payment cards, IBANs, API keys and other secrets.
//!
//! Each kind is found by its shape and then checked where a checksum or a rule exists, so a
//! number that merely looks like one is left alone: a card number must pass Luhn, an IBAN
//! mod 97, an SSN must avoid the ranges never issued (area 000, 666 and 900–999, group 00,
//! serial 0000); a secret is a known key prefix, or a long token mixing cases and digits whose
//! entropy is too high for a word or an id.
//!
//! [`Redaction`] replaces each value by a numbered placeholder (`[EMAIL_1]`), the same one for
//! the same value within a request, and can put the values back into a reply.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::SafetyError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Phone,
    Ssn,
    Card,
    Iban,
    Secret,
}

impl PiiKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::Ssn => "ssn",
            PiiKind::Card => "card",
            PiiKind::Iban => "iban",
            PiiKind::Secret => "secret",
        }
    }

    fn placeholder(self, n: usize) -> String {
        format!("[{}_{n}]", self.as_str().to_uppercase())
    }
}

/// One value found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
    pub value: String,
}

/// Known secret prefixes: OpenAI, Anthropic, GitHub, AWS, Slack, Google, GitLab, Stripe, and
/// PEM private keys.
const SECRET_PREFIXES: &str = r"\b(sk-(ant-|proj-)?[A-Za-z0-9_\-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|AKIA[0-9A-Z]{16}|xox[abprs]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{35}|glpat-[A-Za-z0-9_\-]{20}|(sk|rk|pk)_(live|test)_[A-Za-z0-9]{16,})|-----BEGIN [A-Z ]*PRIVATE KEY-----";
/// A token long enough to be a generated secret.
const MIN_SECRET_CHARS: usize = 24;
/// Bits per character above which a mixed token is random, not a word or an id.
const MIN_SECRET_ENTROPY: f64 = 4.0;

pub struct PiiDetector {
    patterns: Vec<(PiiKind, Regex)>,
    token: Regex,
}

impl PiiDetector {
    pub fn new() -> Result<Self, SafetyError> {
        let compile = |p: &str| Regex::new(p).map_err(|e| SafetyError::Pattern(e.to_string()));
        Ok(Self {
            patterns: vec![
                (PiiKind::Secret, compile(SECRET_PREFIXES)?),
                (
                    PiiKind::Email,
                    compile(
                        r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b",
                    )?,
                ),
                (
                    PiiKind::Iban,
                    compile(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")?,
                ),
                (PiiKind::Ssn, compile(r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b")?),
                (PiiKind::Card, compile(r"\b[0-9](?:[ \-]?[0-9]){12,18}\b")?),
                (
                    PiiKind::Phone,
                    compile(
                        r"(?:\+[0-9]{1,3}[ .\-]?)?(?:\([0-9]{1,4}\)[ .\-]?)?\b[0-9]{2,4}[ .\-][0-9]{2,4}[ .\-]?[0-9]{2,4}(?:[ .\-][0-9]{2,4})?\b",
                    )?,
                ),
            ],
            token: compile(r"[A-Za-z0-9+/_\-=]{24,}")?,
        })
    }

    /// Every value found, in text order, without overlaps (the first kind above wins).
    pub fn find(&self, text: &str) -> Vec<Found> {
        let mut found: Vec<Found> = Vec::new();
        let free = |found: &[Found], start: usize, end: usize| {
            found.iter().all(|f| end <= f.start || start >= f.end)
        };
        for (kind, pattern) in &self.patterns {
            for m in pattern.find_iter(text) {
                if free(&found, m.start(), m.end()) && valid(*kind, m.as_str()) {
                    found.push(Found {
                        kind: *kind,
                        start: m.start(),
                        end: m.end(),
                        value: m.as_str().to_owned(),
                    });
                }
            }
        }
        for m in self.token.find_iter(text) {
            if free(&found, m.start(), m.end()) && random_token(m.as_str()) {
                found.push(Found {
                    kind: PiiKind::Secret,
                    start: m.start(),
                    end: m.end(),
                    value: m.as_str().to_owned(),
                });
            }
        }
        found.sort_by_key(|f| f.start);
        found
    }
}

/// The ASCII digits of a value (the patterns match no other digits).
fn digits(text: &str) -> Vec<u32> {
    text.chars()
        .filter(char::is_ascii_digit)
        .filter_map(|c| c.to_digit(10))
        .collect()
}

fn valid(kind: PiiKind, value: &str) -> bool {
    match kind {
        PiiKind::Ssn => valid_ssn(value),
        PiiKind::Card => valid_card(value),
        PiiKind::Iban => valid_iban(value),
        PiiKind::Phone => (9..=15).contains(&digits(value).len()) && !looks_like_date(value),
        PiiKind::Email | PiiKind::Secret => true,
    }
}

/// The Social Security Administration never issues area 000, 666 or 900–999, group 00 or
/// serial 0000.
fn valid_ssn(value: &str) -> bool {
    let d = digits(value);
    if d.len() != 9 {
        return false;
    }
    let number = |range: std::ops::Range<usize>| d[range].iter().fold(0, |n, x| n * 10 + x);
    let (area, group, serial) = (number(0..3), number(3..5), number(5..9));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// 13–19 digits, a known first digit (Amex/Diners 3, Visa 4, Mastercard 2/5, Discover 6) and
/// the Luhn checksum.
fn valid_card(value: &str) -> bool {
    let d = digits(value);
    if !(13..=19).contains(&d.len()) || !matches!(d[0], 2..=6) {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let doubled = x * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 13616: move the first four characters to the end, letters as 10–35, mod 97 == 1.
fn valid_iban(value: &str) -> bool {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) || !compact.is_ascii() {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let Some(value) = c.to_digit(36) else {
            return false;
        };
        for digit in value.to_string().chars().filter_map(|d| d.to_digit(10)) {
            remainder = (remainder * 10 + digit) % 97;
        }
    }
    remainder == 1
}

/// `2026-12-02`, `12.02.2026`: a date is not a phone number.
fn looks_like_date(value: &str) -> bool {
    let parts: Vec<&str> = value.split(['-', '.', '/', ' ']).collect();
    parts.len() == 3
        && parts.iter().any(|p| p.len() == 4)
        && parts.iter().filter(|p| p.len() == 2).count() == 2
}

/// Mixed upper, lower and digits, and high character entropy: a generated key, not a word.
fn random_token(token: &str) -> bool {
    if token.len() < MIN_SECRET_CHARS {
        return false;
    }
    let has = |f: fn(&char) -> bool| token.chars().any(|c| f(&c));
    if !(has(char::is_ascii_uppercase)
        && has(char::is_ascii_lowercase)
        && has(char::is_ascii_digit))
    {
        return false;
    }
    let mut counts: BTreeMap<char, usize> = BTreeMap::new();
    for c in token.chars() {
        *counts.entry(c).or_default() += 1;
    }
    let n = token.chars().count() as f64;
    let entropy: f64 = counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum();
    entropy >= MIN_SECRET_ENTROPY
}

/// `text` without the placeholders a [`Redaction`] writes (`[EMAIL_1]`): they are not
/// figures or names.
pub fn strip_placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let placeholder = after.find(']').filter(|&close| {
            after[..close].split_once('_').is_some_and(|(kind, n)| {
                !kind.is_empty()
                    && kind.bytes().all(|b| b.is_ascii_uppercase())
                    && !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
            })
        });
        match placeholder {
            Some(close) => rest = &after[close + 1..],
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A text with its personal data replaced by placeholders, and the map back.
#[derive(Debug, Clone, Default)]
pub struct Redaction {
    /// `(placeholder, original)`, in order of first appearance.
    values: Vec<(String, String)>,
    counts: BTreeMap<PiiKind, usize>,
}

impl Redaction {
    pub fn new() -> Self {
        Self::default()
    }

    /// `text` with every value found replaced; a value seen before in this request gets the
    /// placeholder it got then.
    pub fn redact(&mut self, detector: &PiiDetector, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for found in detector.find(text) {
            out.push_str(&text[at..found.start]);
            let placeholder = match self.values.iter().find(|(_, v)| *v == found.value) {
                Some((p, _)) => p.clone(),
                None => {
                    let n = self.counts.entry(found.kind).or_default();
                    *n += 1;
                    let p = found.kind.placeholder(*n);
                    self.values.push((p.clone(), found.value.clone()));
                    p
                }
            };
            out.push_str(&placeholder);
            at = found.end;
        }
        out.push_str(&text[at..]);
        out
    }

    /// The placeholders in a reply replaced by the values they stand for.
    pub fn restore(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (placeholder, value) in &self.values {
            out = out.replace(placeholder, value);
        }
        out
    }

    /// How many distinct values were redacted.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<PiiKind> {
        PiiDetector::new()
            .unwrap()
            .find(text)
            .into_iter()
            .map(|f| f.kind)
            .collect()
    }

    #[test]
    fn each_kind_is_found_and_checksums_reject_look_alikes() {
        use PiiKind::*;
        assert_eq!(kinds("write to jane.doe@acme.example today"), [Email]);
        assert_eq!(
            kinds("call +1 415 555 0132 or (030) 1234 5678"),
            [Phone, Phone]
        );
        assert_eq!(kinds("SSN 123-45-6789"), [Ssn]);
        for never_issued in [
            "000-12-3456",
            "666-12-3456",
            "912-12-3456",
            "123-00-4567",
            "123-45-0000",
        ] {
            assert!(
                kinds(never_issued).iter().all(|k| *k != Ssn),
                "{never_issued}"
            );
        }
        assert_eq!(kinds("card 4111 1111 1111 1111"), [Card]);
        assert!(
            !kinds("card 4111 1111 1111 1112").contains(&Card),
            "Luhn fails"
        );
        assert_eq!(kinds("IBAN GB82 WEST 1234 5698 7654 32 please"), [Iban]);
        assert!(
            !kinds("GB82 WEST 1234 5698 7654 33").contains(&Iban),
            "mod 97 fails"
        );
        assert_eq!(kinds("key sk-proj-abcdefghijklmnop1234"), [Secret]);
        assert_eq!(kinds("AKIAIOSFODNN7EXAMPLE"), [Secret]);
        assert_eq!(kinds("token: aZ3kLm9Qx2Rt7Vb1Np5Wc8Yd4Hf6"), [Secret]);
    }

    #[test]
    fn ordinary_numbers_and_words_are_not_personal_data() {
        for text in [
            "Employees get 25 days of leave from 2026-01-01.",
            "Expenses over 1,500 EUR need approval; see policy HR-2024-07.",
            "The internationalization_configuration_file is long but a word.",
            "Call extension 4411.",
        ] {
            assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
        }
    }

    #[test]
    fn digits_of_other_scripts_are_not_numbers_and_never_panic() {
        for text in [
            "१२३-४५-६७८९",
            "GB８２WEST12345698765432",
            "٤١١١ ١١١١ ١١١١ ١١١١",
        ] {
            assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
        }
    }

    /// Placeholders left by a redaction, for checks that must not read them as figures.
    #[test]
    fn placeholders_are_recognised() {
        assert_eq!(
            strip_placeholders("Mail [EMAIL_1] or call [PHONE_12]."),
            "Mail  or call ."
        );
    }

    #[test]
    fn redaction_is_consistent_and_reversible() {
        let detector = PiiDetector::new().unwrap();
        let mut redaction = Redaction::new();
        let text = "I am a@x.io; mail a@x.io or b@y.io.";
        let redacted = redaction.redact(&detector, text);
        assert_eq!(redacted, "I am [EMAIL_1]; mail [EMAIL_1] or [EMAIL_2].");
        assert_eq!(redaction.len(), 2);
        assert_eq!(
            redaction.restore("We wrote to [EMAIL_2]."),
            "We wrote to b@y.io."
        );
    }
}
