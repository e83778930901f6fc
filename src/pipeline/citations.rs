//! Citation markers, read one way for every stage that needs them: the citation stage renumbers
//! them and returns the cited sources, grounding skips them (a marker is neither a figure nor a
//! name). Models write citations in several forms; all of these are markers:
//! `[1]`, `[1][2]`, `[1, 2]`, `[1-3]`, `[Source 1]`, `[source 1, 2]`, `[Sources 1 and 2]`,
//! `(Source 1)`. A bare `(1)` is not one (it is as often a list item), nor is `[see below]`.

use std::ops::Range;

/// Longest text between the brackets of a marker; longer brackets are prose.
const MAX_INNER: usize = 40;
/// A range `[a-b]` wider than this is not a citation (and would expand to too many numbers).
const MAX_RANGE: usize = 20;
/// Sources are numbered from 1 up to `kb.top_k` (at most 50); a bigger number is a year or an
/// amount in brackets (`[2020-2023]`), not a citation.
const MAX_SOURCE: usize = 99;

/// A citation marker in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// Byte range of the marker, brackets included.
    pub span: Range<usize>,
    /// The source numbers it names, 1-based as written, in order (a range expanded).
    pub numbers: Vec<usize>,
}

/// Every marker in `text`, in order.
pub fn markers(text: &str) -> Vec<Marker> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find(['[', '(']) {
        let open = from + offset;
        let (closing, needs_prefix) = if text[open..].starts_with('[') {
            (']', false)
        } else {
            (')', true)
        };
        let inner_start = open + 1;
        // Only the next `MAX_INNER` bytes are searched, so a long text with many brackets
        // stays linear.
        let marker = text[inner_start..]
            .char_indices()
            .take_while(|&(i, _)| i <= MAX_INNER)
            .find(|&(_, c)| c == closing)
            .map(|(len, _)| len)
            .and_then(|len| {
                let numbers = parse_inner(&text[inner_start..inner_start + len], needs_prefix)?;
                Some(Marker {
                    span: open..inner_start + len + 1,
                    numbers,
                })
            });
        match marker {
            Some(marker) => {
                from = marker.span.end;
                found.push(marker);
            }
            None => from = inner_start,
        }
    }
    found
}

/// The text with every marker removed.
pub fn strip(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for marker in markers(text) {
        out.push_str(&text[last..marker.span.start]);
        out.push(' ');
        last = marker.span.end;
    }
    out.push_str(&text[last..]);
    out
}

/// `1, 2`, `1-3`, `Source 1`, `sources 1 and 2`; `None` when the text is not a citation.
fn parse_inner(inner: &str, needs_prefix: bool) -> Option<Vec<usize>> {
    let inner = inner.trim();
    let unprefixed = strip_prefix_ignore_case(inner, "sources")
        .or_else(|| strip_prefix_ignore_case(inner, "source"));
    let list = match unprefixed {
        Some(rest) => rest,
        None if needs_prefix => return None,
        None => inner,
    };
    let mut numbers = Vec::new();
    for item in list.split([',', ';']).flat_map(|part| part.split(" and ")) {
        let item = item.trim();
        let item = strip_prefix_ignore_case(item, "source").unwrap_or(item);
        if let Some((low, high)) = item.split_once(['-', '\u{2013}']) {
            let (low, high) = (number(low)?, number(high)?);
            if high < low || high - low > MAX_RANGE {
                return None;
            }
            numbers.extend(low..=high);
        } else {
            numbers.push(number(item)?);
        }
    }
    (!numbers.is_empty()).then_some(numbers)
}

fn number(text: &str) -> Option<usize> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&n| n <= MAX_SOURCE)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(prefix))
        .and_then(|_| s.get(prefix.len()..))
        .map(str::trim_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_form_is_a_marker() {
        for (text, expected) in [
            ("20 weeks [1].", vec![vec![1]]),
            ("20 weeks [1][2].", vec![vec![1], vec![2]]),
            ("20 weeks [1, 2].", vec![vec![1, 2]]),
            ("20 weeks [1-3].", vec![vec![1, 2, 3]]),
            ("20 weeks [1\u{2013}2].", vec![vec![1, 2]]),
            ("20 weeks [Source 1].", vec![vec![1]]),
            ("20 weeks [source 1, 2].", vec![vec![1, 2]]),
            ("20 weeks [Sources 1 and 3].", vec![vec![1, 3]]),
            ("20 weeks (Source 1).", vec![vec![1]]),
            ("20 weeks (source 2, 3).", vec![vec![2, 3]]),
            ("a marker with no source [9].", vec![vec![9]]),
        ] {
            let found: Vec<Vec<usize>> = markers(text).into_iter().map(|m| m.numbers).collect();
            assert_eq!(found, expected, "{text}");
        }
    }

    #[test]
    fn brackets_that_are_not_citations_are_left_alone() {
        for text in [
            "a list item (1) and (2)",
            "see [below]",
            "an empty [] pair",
            "[Source] without a number",
            "a reversed [3-1] range",
            "a huge [1-500] range",
            "years [2020-2023] in brackets",
            "an amount [250000]",
            "unclosed [1 and a [ bracket",
            "a [1, x] mix",
            "(5 days)",
        ] {
            assert!(markers(text).is_empty(), "{text}: {:?}", markers(text));
        }
    }

    #[test]
    fn spans_cover_the_marker_and_strip_removes_it() {
        let text = "Leave is 20 weeks [Source 1] (Source 2).";
        let found = markers(text);
        assert_eq!(&text[found[0].span.clone()], "[Source 1]");
        assert_eq!(&text[found[1].span.clone()], "(Source 2)");
        assert_eq!(strip(text), "Leave is 20 weeks    .");
    }
}
