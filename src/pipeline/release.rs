//! Release: the output guard, sentence by sentence. The model's text is cut into sentences
//! (`SentenceGate`); each is released only after the checks pass on it — leaks, personal data
//! and banned patterns over the text so far, a decline, then grounding against the sources it
//! cites — with its citations renumbered in order of first use. The first sentence that fails
//! stops the answer: what replaces it is the canonical reply, never a partial answer that
//! looks complete. A streamed answer and a whole one go through the same steps, so the
//! deltas of a stream concatenate to the answer the same question gets unstreamed.

use std::time::{Duration, Instant};

use super::{answer, grounding};
use crate::safety::stream::SentenceGate;
use crate::safety::{OutputGuard, Redaction, Shown, Verdict};

/// Why the answer stopped before its end.
#[derive(Debug, Clone)]
pub enum Stop {
    /// The output guard refused the text (`output_filtered`).
    Filtered(Verdict),
    /// The model declined: the canonical reply stands for the whole answer.
    Declined(&'static str),
    /// A sentence states figures or names its sources do not hold (`no_answer`).
    Ungrounded(Vec<String>),
}

/// What became of one sentence.
#[derive(Debug)]
pub enum Step {
    /// Shown to the user: the text to append (restored personal values, renumbered
    /// citations) and whether it cites a source not cited before.
    Released {
        delta: String,
        new_citation: bool,
    },
    /// Nothing to show (whitespace only).
    Nothing,
    Stopped(Stop),
}

/// Time spent in each check, summed over the sentences.
#[derive(Debug, Default, Clone, Copy)]
pub struct CheckTime {
    pub output_guard: Duration,
    pub grounding: Duration,
    pub citations: Duration,
}

pub struct Release<'a> {
    guard: &'a OutputGuard,
    shown: Shown<'a>,
    redaction: &'a Redaction,
    gate: SentenceGate,
    /// The model's text so far (redacted, as the model wrote it): leak and decline checks
    /// look at all of it, since a leak can span sentences.
    seen: String,
    /// What the user has been shown, personal values still redacted (as the answer is stored
    /// and cached).
    released: String,
    /// Whitespace after the last released sentence, shown only with the next one so the
    /// answer never ends in it.
    pending_space: String,
    citations: Renumbering,
    stopped: Option<Stop>,
    pub time: CheckTime,
}

impl<'a> Release<'a> {
    pub fn new(guard: &'a OutputGuard, shown: Shown<'a>, redaction: &'a Redaction) -> Self {
        Self {
            guard,
            citations: Renumbering::new(shown.sources.len()),
            shown,
            redaction,
            gate: SentenceGate::new(),
            seen: String::new(),
            released: String::new(),
            pending_space: String::new(),
            stopped: None,
            time: CheckTime::default(),
        }
    }

    /// Adds streamed text; returns the steps of the sentences it completed. After a stop,
    /// further text is ignored.
    pub fn push(&mut self, delta: &str) -> Vec<Step> {
        if self.stopped.is_some() {
            return Vec::new();
        }
        let sentences = self.gate.push(delta);
        self.steps(sentences)
    }

    /// The end of the text: the last, unterminated sentence.
    pub fn finish(&mut self) -> Vec<Step> {
        if self.stopped.is_some() {
            return Vec::new();
        }
        let rest: Vec<String> = self.gate.finish().into_iter().collect();
        self.steps(rest)
    }

    fn steps(&mut self, sentences: Vec<String>) -> Vec<Step> {
        let mut steps = Vec::new();
        for sentence in sentences {
            let step = self.sentence(&sentence);
            let stopped = matches!(step, Step::Stopped(_));
            steps.push(step);
            if stopped {
                break;
            }
        }
        steps
    }

    fn sentence(&mut self, sentence: &str) -> Step {
        self.seen.push_str(sentence);
        // Whitespace around a sentence is shown between sentences only: how the stream was
        // cut into pieces decides whether it comes before or after one.
        let content = sentence.trim();
        if content.is_empty() {
            if !self.released.is_empty() {
                self.pending_space.push_str(sentence);
            }
            return Step::Nothing;
        }
        let leading = &sentence[..sentence.len() - sentence.trim_start().len()];
        let trailing = &sentence[sentence.trim_end().len()..];
        if !self.released.is_empty() {
            self.pending_space.push_str(leading);
        }
        let started = Instant::now();
        let verdict = self
            .guard
            .check(&self.redaction.restore(&self.seen), &self.shown);
        self.time.output_guard += started.elapsed();
        if let Some(verdict) = verdict {
            return self.stop(Stop::Filtered(verdict));
        }
        if let Some(reply) = answer::decline(&self.seen) {
            return self.stop(Stop::Declined(reply));
        }
        let started = Instant::now();
        let grounded = grounding::check(content, self.shown.sources, self.shown.system);
        self.time.grounding += started.elapsed();
        if !grounded.ungrounded.is_empty() {
            return self.stop(Stop::Ungrounded(grounded.ungrounded));
        }
        let started = Instant::now();
        let before = self.citations.cited.len();
        let renumbered = self.citations.sentence(&grounded.answer);
        self.time.citations += started.elapsed();
        let mut text = std::mem::take(&mut self.pending_space);
        if self.released.is_empty() {
            text.clear();
        }
        text.push_str(&renumbered);
        self.released.push_str(&text);
        self.pending_space = trailing.to_owned();
        Step::Released {
            delta: self.redaction.restore(&text),
            new_citation: self.citations.cited.len() > before,
        }
    }

    fn stop(&mut self, stop: Stop) -> Step {
        self.stopped = Some(stop.clone());
        Step::Stopped(stop)
    }

    /// Why the answer stopped, if it did.
    pub fn stopped(&self) -> Option<&Stop> {
        self.stopped.as_ref()
    }

    /// Everything the model wrote so far (what was released and what stopped it).
    pub fn text(&self) -> &str {
        &self.seen
    }

    /// The answer as released so far, personal values redacted.
    pub fn released(&self) -> &str {
        &self.released
    }

    /// The 0-based indexes of the cited sources, in the order the answer numbers them.
    pub fn cited(&self) -> &[usize] {
        &self.citations.cited
    }
}

/// Citation markers renumbered in order of first use across sentences (`[3] … [1]` becomes
/// `[1] … [2]`). Markers that name no source are removed; brackets that are not citations
/// (`[see below]`) are left alone. Every form `citations::markers` reads (`[1, 2]`, `[1-3]`,
/// `[Source 1]`, …) is understood.
pub struct Renumbering {
    sources: usize,
    cited: Vec<usize>,
}

impl Renumbering {
    pub fn new(sources: usize) -> Self {
        Self {
            sources,
            cited: Vec::new(),
        }
    }

    /// Whether nothing was cited yet.
    pub fn is_empty(&self) -> bool {
        self.cited.is_empty()
    }

    /// One sentence (or any text) with its markers renumbered.
    pub fn sentence(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for marker in super::citations::markers(text) {
            out.push_str(&text[last..marker.span.start]);
            last = marker.span.end;
            for n in marker
                .numbers
                .into_iter()
                .filter(|n| (1..=self.sources).contains(n))
            {
                let index = n - 1;
                let position = match self.cited.iter().position(|&c| c == index) {
                    Some(p) => p,
                    None => {
                        self.cited.push(index);
                        self.cited.len() - 1
                    }
                };
                out.push_str(&format!("[{}]", position + 1));
            }
        }
        out.push_str(&text[last..]);
        tidy(&out)
    }
}

/// Removed markers leave a space before punctuation or doubled spaces behind.
fn tidy(text: &str) -> String {
    let mut out = text.replace("  ", " ");
    for punctuation in [".", ",", ";", ":"] {
        out = out.replace(&format!(" {punctuation}"), punctuation);
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renumbered(text: &str, sources: usize) -> (String, Vec<usize>) {
        let mut renumbering = Renumbering::new(sources);
        let out = renumbering.sentence(text);
        (out, renumbering.cited)
    }

    #[test]
    fn citations_are_renumbered_in_order_of_first_use() {
        let (text, cited) = renumbered("Leave is 20 weeks [3]. Notice is 8 weeks [1][3].", 4);
        assert_eq!(text, "Leave is 20 weeks [1]. Notice is 8 weeks [2][1].");
        assert_eq!(cited, vec![2, 0]);
    }

    #[test]
    fn unusual_citation_forms_are_read_and_bad_ones_dropped() {
        let (text, cited) = renumbered("A [Source 2]. B [1, 2]. C [9]. D [see below].", 2);
        assert_eq!(text, "A [1]. B [2][1]. C. D [see below].");
        assert_eq!(cited, vec![1, 0]);
        let (text, cited) = renumbered("Unclosed [1 and a [ bracket", 2);
        assert_eq!(text, "Unclosed [1 and a [ bracket");
        assert!(cited.is_empty());
        let (text, cited) = renumbered("A [1-3]. B (Source 2). C [source 1, 2]. D (1).", 3);
        assert_eq!(text, "A [1][2][3]. B [2]. C [1][2]. D (1).");
        assert_eq!(cited, vec![0, 1, 2]);
    }

    const SOURCES: [&str; 2] = [
        "Paid leave: employees get 20 weeks of parental leave at full pay.",
        "How to apply: tell your manager 8 weeks ahead.",
    ];

    fn shown() -> Shown<'static> {
        Shown {
            system: "You are AskAcme.",
            canary: None,
            question: "How long is parental leave?",
            sources: &SOURCES,
        }
    }

    /// Feeds `text` in pieces of `piece` bytes (on char boundaries) and collects the deltas.
    fn stream(text: &str, piece: usize) -> (Vec<String>, Option<Stop>, Vec<usize>) {
        let guard = OutputGuard::new(&[], 12).unwrap();
        let redaction = Redaction::new();
        let mut release = Release::new(&guard, shown(), &redaction);
        let mut steps = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        for chunk in chars.chunks(piece) {
            steps.extend(release.push(&chunk.iter().collect::<String>()));
        }
        steps.extend(release.finish());
        let deltas = steps
            .into_iter()
            .filter_map(|s| match s {
                Step::Released { delta, .. } => Some(delta),
                _ => None,
            })
            .collect();
        (deltas, release.stopped().cloned(), release.cited().to_vec())
    }

    #[test]
    fn streamed_deltas_concatenate_to_the_whole_answer_whatever_the_pieces() {
        let text =
            "Parental leave is 20 weeks at full pay [2].  Tell your manager 8 weeks ahead [1].\n";
        let (whole, stop, cited) = stream(text, text.len());
        assert!(stop.is_none(), "{stop:?}");
        // Grounding re-points the first sentence to the source that holds its figure.
        assert_eq!(cited, vec![0, 1]);
        let whole = whole.concat();
        assert_eq!(
            whole,
            "Parental leave is 20 weeks at full pay [1].  Tell your manager 8 weeks ahead [2]."
        );
        for piece in [1, 3, 7] {
            let (deltas, _, _) = stream(text, piece);
            assert_eq!(deltas.len(), 2, "one delta per sentence");
            assert_eq!(deltas.concat(), whole, "pieces of {piece}");
        }
    }

    #[test]
    fn the_first_failing_sentence_stops_the_answer_and_is_never_released() {
        let (deltas, stop, _) = stream(
            "Parental leave is 20 weeks [1]. Part-timers get 75 % of it [1]. More text.",
            4,
        );
        assert_eq!(deltas, vec!["Parental leave is 20 weeks [1]."]);
        assert!(
            matches!(&stop, Some(Stop::Ungrounded(u)) if u == &["75"]),
            "{stop:?}"
        );
        let (deltas, stop, _) = stream(
            "It is not specified in the sources, but probably 20 weeks [1].",
            5,
        );
        assert!(
            deltas.is_empty(),
            "a decline wrapped in a guess: {deltas:?}"
        );
        assert!(matches!(stop, Some(Stop::Declined(answer::NO_INFORMATION))));
    }
}
