//! The guard's lexicon: Princeton WordNet 3.0, read from its database files (Debian's
//! `wordnet-base`, `/usr/share/wordnet`). It answers three questions about English words, none
//! of them tuned to our data: is this a word at all (so a misspelling can be told from a
//! different word), are two words forms of one lemma ("approved" / "approve"), and are two
//! lemmas synonyms in one of their common senses or derived from each other ("vacation" /
//! "holiday", "reimburse" / "reimbursement"). Antonyms ("open" / "closed"), co-hyponyms
//! ("dental" / "vision") and names ("Germany" / "France") are none of these, which is what
//! makes a substituted word block a match.
//!
//! WordNet 3.0 licence: permission to use, copy, modify and distribute for any purpose without
//! fee, with Princeton's copyright notice (see `/usr/share/doc/wordnet-base/copyright`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Senses beyond this rank (WordNet lists a lemma's senses most frequent first) do not make
/// two words synonyms: "leave" and "allow" share only a rare sense, "holiday" and "vacation"
/// their first.
const MAX_SENSE_RANK: usize = 3;

#[derive(Debug, thiserror::Error)]
#[error("cannot read the WordNet lexicon {path}: {source}")]
pub struct LexiconError {
    path: PathBuf,
    source: std::io::Error,
}

/// What a word mostly is, for telling participants from actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordClass {
    Noun,
    Verb,
    /// An adjective or adverb.
    Other,
    /// Not in the lexicon: a name, a product, a misspelling.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pos {
    Noun,
    Verb,
    Adjective,
    Adverb,
}

impl Pos {
    const ALL: [Pos; 4] = [Pos::Noun, Pos::Verb, Pos::Adjective, Pos::Adverb];

    fn file_suffix(self) -> &'static str {
        match self {
            Pos::Noun => "noun",
            Pos::Verb => "verb",
            Pos::Adjective => "adj",
            Pos::Adverb => "adv",
        }
    }

    fn from_letter(letter: &str) -> Option<Self> {
        match letter {
            "n" => Some(Pos::Noun),
            "v" => Some(Pos::Verb),
            // `s`: an adjective satellite, an adjective for our purposes.
            "a" | "s" => Some(Pos::Adjective),
            "r" => Some(Pos::Adverb),
            _ => None,
        }
    }

    /// WordNet's `morphy` detachment rules: the suffixes an inflected form may end in, and
    /// what replaces each.
    fn detachments(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Pos::Noun => &[
                ("s", ""),
                ("ses", "s"),
                ("xes", "x"),
                ("zes", "z"),
                ("ches", "ch"),
                ("shes", "sh"),
                ("men", "man"),
                ("ies", "y"),
            ],
            Pos::Verb => &[
                ("s", ""),
                ("ies", "y"),
                ("es", "e"),
                ("es", ""),
                ("ed", "e"),
                ("ed", ""),
                ("ing", "e"),
                ("ing", ""),
            ],
            Pos::Adjective => &[("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
            Pos::Adverb => &[],
        }
    }
}

/// A synset: its part of speech and byte offset in `data.<pos>`.
type SynsetId = (Pos, u32);

#[derive(Default)]
pub struct Lexicon {
    /// Each lemma's senses per part of speech, most frequent first.
    senses: HashMap<String, Vec<SynsetId>>,
    /// Irregular forms (`went` → `go`), per part of speech.
    exceptions: HashMap<(Pos, String), Vec<String>>,
    /// Lemma pairs WordNet marks as derivationally related or pertaining (both orders).
    derived: HashSet<(String, String)>,
}

impl Lexicon {
    /// No lexicon (what `shared` falls back to): `is_empty` says so, and the semantic cache
    /// turns itself off.
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.senses.is_empty()
    }

    /// The lexicon in `dir`, read once per process (it is immutable, ~30 MB of text to parse)
    /// and shared; empty, with a warning, when it cannot be read.
    pub fn shared(dir: &Path) -> Arc<Self> {
        static LOADED: Mutex<BTreeMap<PathBuf, Arc<Lexicon>>> = Mutex::new(BTreeMap::new());
        // Loading cannot panic; should a lock ever be poisoned, the map is still sound.
        let mut loaded = LOADED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loaded
            .entry(dir.to_owned())
            .or_insert_with(|| {
                Arc::new(Self::load(dir).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "the semantic cache's guard has no lexicon");
                    Self::empty()
                }))
            })
            .clone()
    }

    /// Reads the WordNet database in `dir`.
    pub fn load(dir: &Path) -> Result<Self, LexiconError> {
        let read = |name: String| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| LexiconError { path, source })
        };
        let mut lexicon = Lexicon::default();
        for pos in Pos::ALL {
            lexicon.read_index(pos, &read(format!("index.{}", pos.file_suffix()))?);
            lexicon.read_exceptions(pos, &read(format!("{}.exc", pos.file_suffix()))?);
        }
        let mut members: HashMap<SynsetId, Vec<String>> = HashMap::new();
        let mut links: Vec<(String, SynsetId, usize)> = Vec::new();
        for pos in Pos::ALL {
            read_data(
                pos,
                &read(format!("data.{}", pos.file_suffix()))?,
                &mut members,
                &mut links,
            );
        }
        for (source, target, word) in links {
            if let Some(target) = members.get(&target).and_then(|m| m.get(word))
                && *target != source
            {
                lexicon.derived.insert((source.clone(), target.clone()));
                lexicon.derived.insert((target.clone(), source));
            }
        }
        Ok(lexicon)
    }

    /// `index.<pos>`: `lemma pos synset_cnt p_cnt [ptr_symbol…] sense_cnt tagsense_cnt
    /// synset_offset…`, senses most frequent first.
    fn read_index(&mut self, pos: Pos, text: &str) {
        for line in text.lines().filter(|l| !l.starts_with(' ')) {
            let fields: Vec<&str> = line.split_ascii_whitespace().collect();
            let (Some(lemma), Some(count)) = (fields.first(), fields.get(2)) else {
                continue;
            };
            let Ok(count) = count.parse::<usize>() else {
                continue;
            };
            let offsets = &fields[fields.len().saturating_sub(count)..];
            let senses = self.senses.entry(lemma.replace('_', " ")).or_default();
            senses.extend(
                offsets
                    .iter()
                    .filter_map(|o| o.parse::<u32>().ok())
                    .map(|o| (pos, o)),
            );
        }
    }

    /// `<pos>.exc`: `inflected base…`.
    fn read_exceptions(&mut self, pos: Pos, text: &str) {
        for line in text.lines() {
            let mut words = line.split_ascii_whitespace();
            if let Some(inflected) = words.next() {
                let bases: Vec<String> = words.map(|w| w.replace('_', " ")).collect();
                self.exceptions.insert((pos, inflected.to_owned()), bases);
            }
        }
    }

    /// Whether `word` (lower case) is an English word, itself or inflected.
    pub fn knows(&self, word: &str) -> bool {
        !self.lemmas(word).is_empty()
    }

    /// What `word` mostly is, by how many senses WordNet gives it as a noun and as a verb
    /// ("manager": a noun; "see", "approve": verbs; "share": a noun).
    pub fn word_class(&self, word: &str) -> WordClass {
        let senses = |pos: Pos| {
            self.lemmas_of(pos, word)
                .iter()
                .filter_map(|lemma| self.senses.get(lemma))
                .map(|senses| senses.iter().filter(|(p, _)| *p == pos).count())
                .max()
                .unwrap_or(0)
        };
        let (nouns, verbs) = (senses(Pos::Noun), senses(Pos::Verb));
        if !self.knows(word) {
            WordClass::Unknown
        } else if verbs > nouns {
            WordClass::Verb
        } else if nouns > 0 {
            WordClass::Noun
        } else {
            WordClass::Other
        }
    }

    /// Whether `word` has a sense as a verb.
    pub fn can_be_verb(&self, word: &str) -> bool {
        !self.lemmas_of(Pos::Verb, word).is_empty()
    }

    /// Whether `word` is an inflected form of a verb other than its `-s` and `-ing` forms
    /// (`approved`, `paid`, `taken`): a participle, when it follows a form of `be`.
    pub fn is_participle(&self, word: &str) -> bool {
        !word.ends_with("ing")
            && !word.ends_with('s')
            && self.lemmas_of(Pos::Verb, word).iter().any(|l| l != word)
    }

    /// `"er"` or `"est"` when `word` is an adjective's comparative or superlative (`longer`,
    /// `latest`), as WordNet's rules and exceptions make it.
    pub fn degree(&self, word: &str) -> Option<&'static str> {
        let inflected = self
            .lemmas_of(Pos::Adjective, word)
            .iter()
            .any(|l| l != word);
        ["est", "er"]
            .into_iter()
            .find(|suffix| inflected && word.ends_with(suffix))
    }

    /// Whether `phrase` ("sign up", "pay back") is a WordNet lemma.
    pub fn knows_phrase(&self, phrase: &str) -> bool {
        self.senses.contains_key(phrase)
    }

    /// The lemmas `word` (lower case) can be a form of, over every part of speech (WordNet's
    /// `morphy`: the exception lists, then the detachment rules, keeping what the index has).
    pub fn lemmas(&self, word: &str) -> Vec<String> {
        let mut lemmas: Vec<String> = Pos::ALL
            .into_iter()
            .flat_map(|pos| self.lemmas_of(pos, word))
            .collect();
        lemmas.sort();
        lemmas.dedup();
        lemmas
    }

    fn lemmas_of(&self, pos: Pos, word: &str) -> Vec<String> {
        let mut found = Vec::new();
        if self.has(pos, word) {
            found.push(word.to_owned());
        }
        if let Some(bases) = self.exceptions.get(&(pos, word.to_owned())) {
            found.extend(bases.iter().filter(|b| self.has(pos, b)).cloned());
        }
        for (suffix, replacement) in pos.detachments() {
            if let Some(stem) = word.strip_suffix(suffix)
                && !stem.is_empty()
            {
                let base = format!("{stem}{replacement}");
                if self.has(pos, &base) {
                    found.push(base);
                }
            }
        }
        found
    }

    fn has(&self, pos: Pos, lemma: &str) -> bool {
        self.senses
            .get(lemma)
            .is_some_and(|senses| senses.iter().any(|(p, _)| *p == pos))
    }

    /// Whether two lemmas name the same thing in one of their common senses, or one is derived
    /// from the other.
    pub fn related(&self, a: &str, b: &str) -> bool {
        if self.derived.contains(&(a.to_owned(), b.to_owned())) {
            return true;
        }
        let common = |lemma: &str| -> Vec<SynsetId> {
            let Some(senses) = self.senses.get(lemma) else {
                return Vec::new();
            };
            Pos::ALL
                .into_iter()
                .flat_map(|pos| {
                    senses
                        .iter()
                        .filter(move |(p, _)| *p == pos)
                        .take(MAX_SENSE_RANK)
                })
                .copied()
                .collect()
        };
        let of_a = common(a);
        common(b).iter().any(|synset| of_a.contains(synset))
    }
}

/// `data.<pos>`: `offset lex_filenum ss_type w_cnt word lex_id… p_cnt [ptr_symbol offset pos
/// source/target]… | gloss`. Collects each synset's words and its lexical derivation links
/// (`+` derivationally related, `\` pertainym / derived from adjective).
fn read_data(
    pos: Pos,
    text: &str,
    members: &mut HashMap<SynsetId, Vec<String>>,
    links: &mut Vec<(String, SynsetId, usize)>,
) {
    for line in text.lines().filter(|l| !l.starts_with(' ')) {
        let head = line.split(" | ").next().unwrap_or_default();
        let fields: Vec<&str> = head.split_ascii_whitespace().collect();
        let (Some(Ok(offset)), Some(Ok(count))) = (
            fields.first().map(|f| f.parse::<u32>()),
            fields.get(3).map(|f| usize::from_str_radix(f, 16)),
        ) else {
            continue;
        };
        let words: Vec<String> = (0..count)
            .filter_map(|i| fields.get(4 + 2 * i))
            .map(|w| {
                // Adjectives may carry a syntactic marker: `long(a)`.
                let w = w.split('(').next().unwrap_or(w);
                w.replace('_', " ").to_lowercase()
            })
            .collect();
        let pointers_at = 4 + 2 * count;
        let pointer_count = fields
            .get(pointers_at)
            .and_then(|c| c.parse::<usize>().ok())
            .unwrap_or(0);
        for p in 0..pointer_count {
            let at = pointers_at + 1 + 4 * p;
            let (Some(symbol), Some(target), Some(target_pos), Some(words_at)) = (
                fields.get(at),
                fields.get(at + 1).and_then(|o| o.parse::<u32>().ok()),
                fields.get(at + 2).and_then(|p| Pos::from_letter(p)),
                fields.get(at + 3),
            ) else {
                break;
            };
            if !matches!(*symbol, "+" | "\\") {
                continue;
            }
            let (Some(Ok(source)), Some(Ok(target_word))) = (
                words_at.get(..2).map(|h| usize::from_str_radix(h, 16)),
                words_at.get(2..).map(|h| usize::from_str_radix(h, 16)),
            ) else {
                continue;
            };
            if let (Some(source), true) = (
                source.checked_sub(1).and_then(|s| words.get(s)),
                target_word > 0,
            ) {
                links.push((source.clone(), (target_pos, target), target_word - 1));
            }
        }
        members.insert((pos, offset), words);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The machine's WordNet (scripts/setup.sh installs it), shared by every test.
    pub(crate) fn wordnet() -> Arc<Lexicon> {
        let wordnet = Lexicon::shared(Path::new(crate::config::DEFAULT_LEXICON));
        assert!(
            wordnet.knows("leave"),
            "WordNet is not installed: run scripts/setup.sh"
        );
        wordnet
    }

    #[test]
    fn forms_synonyms_and_derivations() {
        let wn = wordnet();
        assert!(wn.knows("employees") && wn.knows("went") && !wn.knows("vacaton"));
        assert_eq!(wn.lemmas("approved"), vec!["approve", "approved"]);
        assert!(wn.lemmas("went").contains(&"go".to_owned()));
        assert!(wn.related("vacation", "holiday"));
        assert!(wn.related("reimburse", "reimbursement"));
        for (a, b) in [
            ("open", "closed"),
            ("dental", "vision"),
            ("immediate", "extended"),
            ("before", "after"),
        ] {
            assert!(!wn.related(a, b), "{a} / {b}");
        }
        assert_eq!(wn.word_class("manager"), WordClass::Noun);
        assert_eq!(wn.word_class("approves"), WordClass::Verb);
        assert_eq!(wn.word_class("see"), WordClass::Verb);
        assert_eq!(wn.word_class("parental"), WordClass::Other);
        assert_eq!(wn.word_class("okta"), WordClass::Unknown);
        assert!(wn.knows_phrase("sign up"));
    }

    #[test]
    fn a_missing_lexicon_is_an_error_naming_the_file() {
        let Err(e) = Lexicon::load(Path::new("/nonexistent/wordnet")) else {
            panic!("loaded a lexicon from nowhere");
        };
        assert!(
            e.to_string().contains("/nonexistent/wordnet/index.noun"),
            "{e}"
        );
    }
}
