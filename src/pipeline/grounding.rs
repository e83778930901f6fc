//! Grounding: every figure and every name in an answer must appear in a source the model was
//! given (or, for names, in the question). Small models answer questions the sources do not
//! cover by inventing something plausible ("the relocation bonus is 2,000 EUR", "the payroll
//! account is at Bank of America"); such an answer is not grounded, and the assistant says it
//! does not have the information instead.
//!
//! Figures are compared as digit strings with thousands separators removed, so "1,000 EUR" in
//! the answer matches "1000 EUR" in a source. Names are capitalised words that do not start a
//! sentence. Citation markers are neither.

/// The figures and names in `answer` that appear in none of `sources`, in order of appearance.
pub fn ungrounded(answer: &str, question: &str, sources: &[&str]) -> Vec<String> {
    let answer = super::citations::strip(answer);
    let known: Vec<String> = sources.iter().flat_map(|s| figures(s)).collect();
    let mut missing: Vec<String> = Vec::new();
    for figure in figures(&answer) {
        if !known.contains(&figure) && !missing.contains(&figure) {
            missing.push(figure);
        }
    }
    for name in names(&answer) {
        let grounded = question.contains(name) || sources.iter().any(|s| s.contains(name));
        if !grounded && !missing.iter().any(|m| m == name) {
            missing.push(name.to_owned());
        }
    }
    missing
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
        ungrounded(answer, "", sources)
    }

    #[test]
    fn invented_names_are_found_and_names_from_sources_or_question_accepted() {
        let sources = ["Contracts above 250,000 EUR are signed by Elena Petrova, the CFO."];
        assert!(ungrounded("They are signed by Elena Petrova [1].", "", &sources).is_empty());
        assert_eq!(
            ungrounded(
                "Acme's payroll account is held by Bank of America [1].",
                "Which bank holds Acme's payroll account?",
                &sources
            ),
            vec!["Bank".to_owned(), "America".to_owned()]
        );
        assert!(
            ungrounded("Yes. Contracts need two signatures.", "", &sources).is_empty(),
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
                ungrounded(cited, "", &sources).is_empty(),
                "{cited}: {:?}",
                ungrounded(cited, "", &sources)
            );
        }
        assert_eq!(
            ungrounded_figures("Version 3.5.", &sources),
            vec!["3.5".to_owned()],
            "a sentence-ending dot is not part of the figure"
        );
    }
}
