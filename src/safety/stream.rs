//! Output checks on a stream: text is held back until a sentence is complete, checked, and
//! only then released, so a sentence that fails a check is never shown, not even in part.

/// Buffers streamed text and hands out complete sentences.
#[derive(Debug, Default)]
pub struct SentenceGate {
    pending: String,
}

impl SentenceGate {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a delta; returns the sentences it completed (with their trailing whitespace),
    /// possibly none.
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        self.pending.push_str(delta);
        let mut out = Vec::new();
        while let Some(end) = sentence_end(&self.pending) {
            let rest = self.pending.split_off(end);
            out.push(std::mem::replace(&mut self.pending, rest));
        }
        out
    }

    /// What is left when the stream ends: the last, unterminated sentence.
    pub fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }
}

/// The byte index just after the first sentence end that is followed by whitespace (so
/// "3.5 days" and "e.g." inside a word are not ends): `.`, `!`, `?` or a newline, with any
/// closing citation (`[2]`), quote or bracket and the whitespace after it.
fn sentence_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\n' {
            return Some(i + 1);
        }
        if matches!(b, b'.' | b'!' | b'?') {
            let mut j = i + 1;
            while j < bytes.len() && matches!(bytes[j], b')' | b'"' | b'\'' | b']') {
                j += 1;
            }
            // A citation right after the full stop ("… 20 weeks. [1]") belongs to it.
            if j < bytes.len()
                && bytes[j] == b' '
                && text[j + 1..].starts_with('[')
                && let Some(close) = text[j + 1..].find(']')
            {
                j = j + 1 + close + 1;
            }
            if j < bytes.len() && bytes[j].is_ascii_whitespace() {
                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                return Some(j);
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_released_whole_and_the_rest_at_the_end() {
        let mut gate = SentenceGate::new();
        assert!(gate.push("Parental leave is 2").is_empty());
        assert!(
            gate.push("0.5 weeks").is_empty(),
            "a decimal point is not an end"
        );
        assert_eq!(
            gate.push(" [1]. It is paid. Apply"),
            ["Parental leave is 20.5 weeks [1]. ", "It is paid. "]
        );
        assert_eq!(gate.push(" early!\nThanks"), ["Apply early!\n"]);
        assert_eq!(gate.finish().as_deref(), Some("Thanks"));
        assert_eq!(gate.finish(), None);
    }
}
