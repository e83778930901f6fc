//! Stop sequences over a token stream. Text that could be the start of a stop sequence is held
//! back until it is clear either way, so a stop sequence is never emitted (not even half of it)
//! and streamed output is exactly the non-streamed output.

pub struct StopScanner {
    stops: Vec<String>,
    pending: String,
}

impl StopScanner {
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            pending: String::new(),
        }
    }

    /// Adds generated text; returns the text now safe to emit and whether a stop sequence was hit
    /// (everything from the stop sequence on is dropped).
    pub fn push(&mut self, text: &str) -> (String, bool) {
        self.pending.push_str(text);
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()))
            .min()
        {
            let emit = self.pending[..at].to_owned();
            self.pending.clear();
            return (emit, true);
        }
        let hold = self
            .stops
            .iter()
            .map(|s| partial_match_len(&self.pending, s))
            .max()
            .unwrap_or(0);
        let cut = self.pending.len() - hold;
        let rest = self.pending.split_off(cut);
        (std::mem::replace(&mut self.pending, rest), false)
    }

    /// Whatever is still held back when generation ends without a stop sequence.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `stop`.
fn partial_match_len(text: &str, stop: &str) -> usize {
    (1..stop.len())
        .rev()
        .filter(|&n| stop.is_char_boundary(n))
        .find(|&n| text.ends_with(&stop[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut scanner = StopScanner::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = String::new();
        for piece in pieces {
            let (emit, stopped) = scanner.push(piece);
            out.push_str(&emit);
            if stopped {
                return (out, true);
            }
        }
        out.push_str(&scanner.finish());
        (out, false)
    }

    #[test]
    fn stop_split_across_pieces_is_never_emitted() {
        assert_eq!(
            run(&["\nUser:"], &["Hello", "\nUs", "er:", " more"]),
            ("Hello".into(), true)
        );
    }

    #[test]
    fn held_text_is_released_when_it_turns_out_harmless() {
        assert_eq!(
            run(&["END"], &["the E", "ND", "ING"]),
            ("the ".into(), true)
        );
        assert_eq!(run(&["END"], &["the E", "ast"]), ("the East".into(), false));
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        assert_eq!(run(&["b", "a"], &["xxab"]), ("xx".into(), true));
    }

    #[test]
    fn no_stops_passes_everything() {
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
        assert_eq!(run(&[""], &["a"]), ("a".into(), false));
    }

    #[test]
    fn multibyte_prefixes_are_handled() {
        assert_eq!(
            run(&["€x"], &["price 5€", "y"]),
            ("price 5€y".into(), false)
        );
        assert_eq!(run(&["€x"], &["price 5€", "x"]), ("price 5".into(), true));
    }
}
