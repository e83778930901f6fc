//! Prompt-lookup drafting for greedy decoding.
//!
//! An answer grounded in sources copies their phrases ("16 weeks of fully paid parental leave"),
//! so the next few tokens of a greedy answer can often be guessed by finding where its last few
//! tokens occurred before, in the prompt or in the answer so far, and proposing what followed
//! there. The model then checks the guesses in one batch, which reads the weights once: where
//! decoding one token is bound by reading them, a few more tokens in the batch cost little, and
//! every kept guess saves a decode call. Where the arithmetic is the bound (a slow CPU with fast
//! memory), each checked guess costs nearly a prompt token, and unkept guesses cost more than
//! kept ones save (docs/benchmarks.md measures both). A guess is kept only if it is the token
//! the model itself picks there, so drafting changes how fast a greedy answer comes, not which
//! tokens it picks, up to rounding: a batch of several tokens may take other kernels than one
//! token, which can flip a near-tie between two tokens.

/// The shortest run of tokens whose earlier occurrence is trusted as a guide: a single token
/// ("the", ",") occurs everywhere and predicts nothing.
const MIN_MATCH: usize = 2;
/// Longer matches are tried first: they are likelier to continue the same way.
const MAX_MATCH: usize = 4;

/// Up to `max_len` tokens that followed the latest earlier occurrence of the longest suffix of
/// `history` (between [`MIN_MATCH`] and [`MAX_MATCH`] tokens) that occurred before; empty when
/// none did.
pub fn draft<T: PartialEq>(history: &[T], max_len: usize) -> &[T] {
    if max_len == 0 {
        return &[];
    }
    for len in (MIN_MATCH..=MAX_MATCH.min(history.len().saturating_sub(1))).rev() {
        let suffix_start = history.len() - len;
        let suffix = &history[suffix_start..];
        // The latest occurrence that ends before the suffix begins to repeat itself.
        let found = (0..suffix_start)
            .rev()
            .find(|&start| &history[start..start + len] == suffix);
        if let Some(start) = found {
            let from = start + len;
            return &history[from..(from + max_len).min(history.len())];
        }
    }
    &[]
}

#[cfg(test)]
mod tests {
    use super::draft;

    fn words(text: &str) -> Vec<&str> {
        text.split(' ').collect()
    }

    #[test]
    fn the_words_after_an_earlier_occurrence_are_proposed() {
        let history = words("staff receive 16 weeks of paid leave . answer : staff receive 16");
        assert_eq!(draft(&history, 3), ["weeks", "of", "paid"]);
        // Cut at the end of what is known.
        let history = words("a b c d a b");
        assert_eq!(draft(&history, 10), ["c", "d", "a", "b"]);
    }

    #[test]
    fn the_longest_and_latest_match_wins() {
        // "x b c" occurs twice; the longer match "x b c" beats the later "b c".
        let history = words("x b c one y b c two x b c");
        assert_eq!(draft(&history, 1), ["one"]);
        let history = words("b c one b c two q b c");
        assert_eq!(draft(&history, 1), ["two"]);
    }

    #[test]
    fn nothing_is_proposed_without_a_match_of_two_tokens() {
        assert!(draft(&words("a b c d e"), 4).is_empty());
        assert!(
            draft(&words("a b c a"), 4).is_empty(),
            "one token predicts nothing"
        );
        assert!(draft(&words("a b a b"), 0).is_empty());
        assert!(draft::<&str>(&[], 4).is_empty());
        assert!(draft(&words("a"), 4).is_empty());
    }
}
