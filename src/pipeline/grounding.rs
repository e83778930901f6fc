//! Grounding: every figure and every name in an answer must be supported by the sources the
//! model was given, and a sentence that cites a source must be supported by *that* source.
//! Small models answer questions the sources do not cover by inventing something plausible
//! ("the relocation bonus is 2,000 EUR", "the payroll account is at Bank of America"), or by
//! borrowing a figure from an unrelated source ("reimburses 75 % of…" where 75 % belongs to
//! another benefit); such an answer is not grounded, and the assistant says it does not have
//! the information instead. What the question asserts ("the handbook says 52 weeks, confirm
//! it") is a claim to check, never evidence.
//!
//! Per sentence: its figures must all appear in the sources it cites. When they do not, but
//! they all appear together in one other source, the citation was wrong and is re-pointed
//! there; otherwise the figures are ungrounded. A sentence without a citation is checked
//! against all the sources. Names must appear in some source.
//!
//! Figures are compared as digit strings with thousands separators removed, so "1,000 EUR" in
//! the answer matches "1000 EUR" in a source. Names are capitalised words that do not start a
//! sentence. Citation markers are neither.

use std::sync::LazyLock;

use regex::Regex;

use super::citations;
use crate::safety::pii::strip_placeholders;
use crate::safety::stream::SentenceGate;

/// An answer after grounding: its citations (re-pointed where a sentence cited the wrong
/// source) and what no source supports.
#[derive(Debug, Clone, PartialEq)]
pub struct Grounded {
    pub answer: String,
    /// Figures and names no (cited) source supports, in order of appearance.
    pub ungrounded: Vec<String>,
}

/// Checks `answer` sentence by sentence against the `sources` it cites (1-based markers).
/// Names in `operator` (the system prompt: the company's own name, the assistant's) count as
/// grounded; its figures do not.
pub fn check(answer: &str, sources: &[&str], operator: &str) -> Grounded {
    let source_figures: Vec<Vec<String>> = sources.iter().map(|s| figures(s)).collect();
    let mut ungrounded: Vec<String> = Vec::new();
    let mut out = String::with_capacity(answer.len());
    let note = |missing: String, ungrounded: &mut Vec<String>| {
        if !ungrounded.contains(&missing) {
            ungrounded.push(missing);
        }
    };
    for sentence in sentences(answer) {
        let markers = citations::markers(&sentence);
        let cited: Vec<usize> = markers
            .iter()
            .flat_map(|m| m.numbers.iter())
            .filter(|&&n| n >= 1 && n <= sources.len())
            .map(|&n| n - 1)
            .collect();
        let plain = without_enumerators(&strip_placeholders(&citations::strip(&sentence)));
        let claimed = figures(&plain);
        let holds = |i: usize, figure: &String| source_figures[i].contains(figure);
        let supported_by_cited = |figure: &String| cited.iter().any(|&i| holds(i, figure));
        let mut sentence = sentence;
        if !cited.is_empty() && !claimed.iter().all(supported_by_cited) {
            let elsewhere = (0..sources.len())
                .find(|&i| !cited.contains(&i) && claimed.iter().all(|f| holds(i, f)));
            match elsewhere {
                Some(i) => sentence = repoint(&sentence, &markers, i + 1),
                None => claimed
                    .iter()
                    .filter(|f| !supported_by_cited(f))
                    .for_each(|f| note(f.clone(), &mut ungrounded)),
            }
        } else if cited.is_empty() {
            claimed
                .iter()
                .filter(|f| !(0..sources.len()).any(|i| holds(i, f)))
                .for_each(|f| note(f.clone(), &mut ungrounded));
        }
        for name in names(&plain) {
            if !operator.contains(name) && !sources.iter().any(|s| s.contains(name)) {
                note(name.to_owned(), &mut ungrounded);
            }
        }
        out.push_str(&sentence);
    }
    Grounded {
        answer: out,
        ungrounded,
    }
}

/// The figures and names in `answer` that no source supports (see [`check`]).
pub fn ungrounded(answer: &str, sources: &[&str]) -> Vec<String> {
    check(answer, sources, "").ungrounded
}

/// The answer's sentences, each with its trailing citation and whitespace.
fn sentences(answer: &str) -> Vec<String> {
    let mut gate = SentenceGate::new();
    let mut out = gate.push(answer);
    out.extend(gate.finish());
    out
}

/// The sentence with its first marker citing `n` and its other markers removed.
fn repoint(sentence: &str, markers: &[citations::Marker], n: usize) -> String {
    let mut out = String::with_capacity(sentence.len());
    let mut last = 0;
    for (k, marker) in markers.iter().enumerate() {
        out.push_str(&sentence[last..marker.span.start]);
        if k == 0 {
            out.push_str(&format!("[{n}]"));
        }
        last = marker.span.end;
    }
    out.push_str(&sentence[last..]);
    out
}

/// Capitalised words (possessive `'s` removed) that are not the first word of a sentence.
fn names(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut sentence_start = true;
    for raw in text.split_whitespace() {
        let word = raw.trim_matches(|c: char| !c.is_alphanumeric());
        let word = word
            .strip_suffix("'s")
            .or_else(|| word.strip_suffix("\u{2019}s"))
            .unwrap_or(word);
        let capitalised = word.chars().next().is_some_and(char::is_uppercase)
            && word.chars().count() >= 3
            && word.chars().all(char::is_alphabetic);
        if capitalised && !sentence_start {
            out.push(word);
        }
        sentence_start = raw.ends_with(['.', '!', '?', ':']);
    }
    out
}

/// A list's item numbers ("1. Sign in", "2) Connect" at the start of a line) are layout, not
/// figures a source must hold: they are blanked before figures are read.
fn without_enumerators(text: &str) -> String {
    static ENUMERATOR: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"(?m)^(\s*)\d{1,2}[.)](\s|$)").ok());
    match ENUMERATOR.as_ref() {
        Some(re) => re.replace_all(text, "$1 $2").into_owned(),
        None => text.to_owned(),
    }
}

/// Numbers in `text`: runs of digits, joined across `,` or `.` when digits follow (so "1,000"
/// and "0.30" are one figure each), with the separators of thousands dropped.
fn figures(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut figure = String::new();
        while i < chars.len() {
            let c = chars[i];
            let joins =
                (c == ',' || c == '.') && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
            if c.is_ascii_digit() {
                figure.push(c);
            } else if joins {
                if c == '.' {
                    figure.push('.');
                }
            } else {
                break;
            }
            i += 1;
        }
        out.push(figure);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ungrounded_figures(answer: &str, sources: &[&str]) -> Vec<String> {
        ungrounded(answer, sources)
    }

    /// Seen in a `golden` run: a numbered list of steps was refused as four ungrounded
    /// figures ("1" to "4").
    #[test]
    fn list_item_numbers_are_not_figures() {
        let sources = [
            "VPN: sign in with your Acme account and approve the MFA prompt. Sessions last 12 hours.",
        ];
        let answer = "To set up the VPN, follow these steps:\n1. Sign in with your Acme account and approve the MFA prompt [1].\n2. Sessions last 12 hours [1].\n3) Sessions last 14 hours [1].";
        assert_eq!(ungrounded(answer, &sources), vec!["14".to_owned()]);
        assert_eq!(
            ungrounded("Leave is 3. weeks long [1].", &sources),
            vec!["3".to_owned()],
            "a figure inside a sentence is still a figure"
        );
    }

    #[test]
    fn invented_names_are_found_and_only_sources_count_as_evidence() {
        let sources = ["Contracts above 250,000 EUR are signed by Elena Petrova, the CFO."];
        assert!(ungrounded("They are signed by Elena Petrova [1].", &sources).is_empty());
        assert_eq!(
            ungrounded(
                "Acme's payroll account is held by Bank of America [1].",
                &sources
            ),
            vec!["Bank".to_owned(), "America".to_owned()]
        );
        assert_eq!(
            ungrounded(
                // Asked as "The handbook says John Miller signs contracts; confirm it."
                "Yes, contracts are signed by John Miller [1].",
                &sources
            ),
            vec!["John".to_owned(), "Miller".to_owned()],
            "a name the question asserts is not evidence"
        );
        assert!(
            ungrounded("Yes. Contracts need two signatures.", &sources).is_empty(),
            "words that start a sentence are not names"
        );
    }

    #[test]
    fn invented_figures_are_found_and_reformatted_ones_accepted() {
        let sources = [
            "Claims above 1000 EUR need Finance approval within 30 days.",
            "Mileage is 0.30 EUR per km.",
        ];
        assert!(
            ungrounded_figures("Claims above 1,000 EUR need approval [1][2].", &sources).is_empty()
        );
        assert!(ungrounded_figures("Mileage: 0.30 EUR per km [2].", &sources).is_empty());
        assert_eq!(
            ungrounded_figures(
                "The bonus is 2,000 EUR, paid in 30 days or 45 [1].",
                &sources
            ),
            vec!["2000".to_owned(), "45".to_owned()]
        );
        assert!(ungrounded_figures("No figures here [7].", &sources).is_empty());
        // Every form the citation stage reads is a marker here too, not a figure or a name.
        for cited in [
            "Claims above 1000 EUR need approval [1].",
            "Claims above 1000 EUR need approval [1][2].",
            "Claims above 1000 EUR need approval [1, 2].",
            "Claims above 1000 EUR need approval [1-3].",
            "Claims above 1000 EUR need approval [Source 1].",
            "Claims above 1000 EUR need approval [source 1, 2].",
            "Claims above 1000 EUR need approval (Source 1).",
            "Claims above 1000 EUR need approval [Source 9].",
        ] {
            assert!(
                ungrounded(cited, &sources).is_empty(),
                "{cited}: {:?}",
                ungrounded(cited, &sources)
            );
        }
        assert_eq!(
            ungrounded_figures("Yes, parental leave is 52 weeks [1].", &sources),
            vec!["52".to_owned()],
            "a figure the question asserts is not evidence"
        );
        assert!(
            ungrounded_figures("We will write to [EMAIL_1] within 30 days [1].", &sources)
                .is_empty(),
            "a redaction placeholder is not a figure"
        );
        assert_eq!(
            ungrounded_figures("Version 3.5.", &sources),
            vec!["3.5".to_owned()],
            "a sentence-ending dot is not part of the figure"
        );
    }

    #[test]
    fn names_the_system_prompt_gives_are_grounded_and_its_figures_are_not() {
        let sources = ["Employees qualify after six months of service."];
        let system = "You are AskAcme, the internal assistant of Acme Corp. Answer in 3 sentences.";
        let answer = "You qualify after working at Acme Corp for six months [1].";
        assert!(check(answer, &sources, system).ungrounded.is_empty());
        assert_eq!(ungrounded(answer, &sources), ["Acme", "Corp"]);
        assert_eq!(
            check("You get 3 weeks [1].", &sources, system).ungrounded,
            ["3"]
        );
    }

    #[test]
    fn a_figure_must_be_in_the_source_its_sentence_cites() {
        let sources = [
            "How to apply: tell your manager 8 weeks before the leave starts.",
            "Paid leave: the primary caregiver gets 20 weeks at full pay.",
            "Gym membership: Acme reimburses 75% of the fee.",
        ];
        let repointed = check(
            "Primary caregivers get 20 weeks [1]. Apply 8 weeks ahead [1].",
            &sources,
            "",
        );
        assert!(repointed.ungrounded.is_empty(), "{repointed:?}");
        assert_eq!(
            repointed.answer, "Primary caregivers get 20 weeks [2]. Apply 8 weeks ahead [1].",
            "the wrong chunk of the right document is re-pointed"
        );
        let borrowed = check(
            "Acme reimburses 75% of childcare and 20 weeks of leave [2].",
            &sources,
            "",
        );
        assert_eq!(
            borrowed.ungrounded,
            vec!["75".to_owned()],
            "figures found in different sources, none cited, are not support"
        );
    }
}
