//! A question as the guard sees it: its words in order, each classified by the closed word
//! classes of English grammar (articles, auxiliaries, pronouns, question words, negators,
//! prepositions of direction) or as a number or a content word. Only the closed classes are
//! listed here; every open-class word (noun, verb, adjective, adverb) is content and must be
//! matched, so nothing depends on knowing which words happen to contrast.

/// What a word contributes to the question's meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Carries meaning: must have an equivalent in the other question.
    Content,
    /// A number, normalised (`250,000` → `250000`, `two` → `2`).
    Number(String),
    /// `not`, `no`, `never`, `n't`…
    Negation,
    /// `what` (= `which`), `who` (= `whom`), `whose`, `when`, `where`, `why`, `how`.
    QuestionWord(&'static str),
    /// `from`, `to`, `into`…: which way something goes ("from London to Paris").
    Direction(&'static str),
    /// The asker: `I`, `me`, `my`, `we`, `our`… A participant, but matched with itself only.
    Asker,
    /// A form of `be` (with one of `get`, passive voice is one followed by a participle).
    Be,
    /// `must`, `need`, `required`, `have to`: an obligation, which "can I" does not ask about.
    Obligation,
    /// Grammar without meaning of its own here: articles, auxiliaries, modals of possibility,
    /// the addressee, light prepositions, courtesy words.
    Neutral,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub text: String,
    pub kind: Kind,
}

/// Articles, auxiliaries, modals of permission and possibility (and their periphrases: "am I
/// allowed to", "is it possible to"), the addressee, light prepositions and conjunctions,
/// courtesy, and chat spellings of these (`u`, `ur`, `r`, `w/`).
const NEUTRAL: &[&str] = &[
    "a",
    "an",
    "the",
    "this",
    "that",
    "these",
    "those",
    "do",
    "does",
    "did",
    "done",
    "doing",
    "have",
    "has",
    "had",
    "having",
    "will",
    "would",
    "shall",
    "can",
    "could",
    "may",
    "might",
    "allowed",
    "permitted",
    "able",
    "possible",
    "you",
    "your",
    "yours",
    "u",
    "ur",
    "r",
    "it",
    "its",
    "there",
    "of",
    "for",
    "in",
    "on",
    "at",
    "by",
    "with",
    "w",
    "about",
    "as",
    "per",
    "via",
    "and",
    "or",
    "if",
    "than",
    "any",
    "some",
    "please",
    "pls",
    "plz",
    "thanks",
    "thank",
    "thx",
    "hi",
    "hey",
    "hello",
    "ok",
    "okay",
    "so",
    "just",
    "also",
    "actually",
    "really",
    "exactly",
    "currently",
    "tell",
    "know",
    "want",
    "wondering",
];
const OBLIGATIONS: &[&str] = &[
    "must",
    "need",
    "needs",
    "needed",
    "required",
    "require",
    "requires",
    "mandatory",
    "should",
];
/// Auxiliaries whose `n't` is often typed without the apostrophe (`dont`, `isnt`).
const NEGATABLE: &[&str] = &[
    "do", "does", "did", "is", "are", "was", "were", "have", "has", "had", "can", "could", "would",
    "should", "must", "need",
];
/// Words whose `'s` / `'m` / `'re` is often typed without the apostrophe (`whats`, `im`).
const CONTRACTED: &[&str] = &[
    "what", "who", "where", "when", "how", "that", "there", "it", "here", "i", "you", "we", "they",
];
/// Symbols that stand for a word next to a number: `$100` is `100 dollars`.
const UNIT_SYMBOLS: &[(char, &str)] = &[
    ('$', "dollar"),
    ('€', "euro"),
    ('£', "pound"),
    ('%', "percent"),
];
const BE: &[&str] = &["be", "is", "are", "am", "was", "were", "been", "being"];
const ASKER: &[&str] = &[
    "i",
    "me",
    "my",
    "mine",
    "myself",
    "we",
    "us",
    "our",
    "ours",
    "ourselves",
];
const NEGATIONS: &[&str] = &[
    "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without",
];
const QUESTION_WORDS: &[(&str, &str)] = &[
    ("what", "what"),
    ("which", "what"),
    ("who", "who"),
    ("whom", "who"),
    ("whose", "whose"),
    ("when", "when"),
    ("where", "where"),
    ("why", "why"),
    // "How do I…" and "What is the process to…", "How long" and "What is the length": the same
    // kind of question.
    ("how", "what"),
];
const DIRECTIONS: &[&str] = &["from", "to", "into", "onto", "toward", "towards"];
/// Cardinal number words, written as digits so "two weeks" and "2 weeks" agree.
const CARDINALS: &[(&str, &str)] = &[
    ("zero", "0"),
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
    ("eleven", "11"),
    ("twelve", "12"),
    ("fifteen", "15"),
    ("twenty", "20"),
    ("thirty", "30"),
    ("forty", "40"),
    ("fifty", "50"),
    ("hundred", "100"),
    ("thousand", "1000"),
    ("million", "1000000"),
];

/// The question's words in order, classified. Contractions are expanded (`don't` → `do` +
/// negation, `what's` → `what` + `is`, `manager's` → `manager`), hyphenated words split
/// (`full-time` → `full`, `time`) unless the lexicon (`known`) knows the word (`part-time`,
/// `e-mail` → `email`).
pub fn tokenize(text: &str, known: impl Fn(&str) -> bool) -> Vec<Token> {
    let text = text.replace(['\u{2019}', '\u{2018}'], "'");
    let mut tokens: Vec<Token> = Vec::new();
    for raw in split_words(&text) {
        // `US`, `IT`, `OR`: an acronym is a name, never the grammar word it spells.
        if raw.len() >= 2 && raw.chars().all(|c| c.is_ascii_uppercase()) {
            tokens.push(Token {
                text: raw.to_lowercase(),
                kind: Kind::Content,
            });
            continue;
        }
        let Expanded { word, negated, be } = expand_contraction(&raw.to_lowercase(), &known);
        if word.chars().any(|c| c.is_ascii_digit()) {
            tokens.push(classify(&word));
            tokens.extend(
                UNIT_SYMBOLS
                    .iter()
                    .filter(|(symbol, _)| word.contains(*symbol))
                    .map(|(_, unit)| classify(unit)),
            );
        } else if word.contains('-') {
            // `co-worker` / `coworker`, `check-in` / `checkin`: one word when the lexicon
            // knows it (hyphenated or not); `full-time` → `full`, `time` otherwise.
            let joined = word.replace('-', "");
            if known(&word) || known(&joined) {
                tokens.push(classify(&joined));
            } else {
                tokens.extend(word.split('-').filter(|p| !p.is_empty()).map(classify));
            }
        } else if word == "to"
            && tokens
                .last()
                .is_some_and(|t| matches!(t.text.as_str(), "have" | "has" | "had"))
        {
            // `have to`: an obligation, not a direction.
            if let Some(last) = tokens.last_mut() {
                last.kind = Kind::Obligation;
            }
        } else if !word.is_empty() {
            tokens.push(classify(&word));
        }
        if negated {
            tokens.push(Token {
                text: "n't".into(),
                kind: Kind::Negation,
            });
        }
        if be {
            tokens.push(Token {
                text: "is".into(),
                kind: Kind::Be,
            });
        }
    }
    tokens
}

/// Runs of letters, digits, apostrophes and hyphens; `.`, `,`, `/` and `:` inside numbers
/// (`1,000.50`, `24/7`, `9:30`), and `$`, `€`, `£`, `%`, `#` next to one (`$5`, `20%`, `#4521`)
/// are kept with it.
fn split_words(text: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut words = Vec::new();
    let mut start = None;
    for (i, &(at, c)) in chars.iter().enumerate() {
        let digit_around = |offset: isize| {
            chars
                .get(i.wrapping_add_signed(offset))
                .is_some_and(|(_, c)| c.is_ascii_digit())
        };
        let inside = c.is_alphanumeric()
            || c == '\''
            || c == '-'
            || (matches!(c, '.' | ',' | '/' | ':') && digit_around(-1) && digit_around(1))
            || (matches!(c, '$' | '€' | '£' | '%' | '#') && (digit_around(1) || digit_around(-1)));
        match (inside, start) {
            (true, None) => start = Some(at),
            (false, Some(s)) => {
                words.push(&text[s..at]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push(&text[s..]);
    }
    words
        .into_iter()
        .map(|w| w.trim_matches(|c| c == '\'' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// A number as compared: `250,000` = `250000`, `$5` = `5` (the unit is a word of its own),
/// `W-2` = `w2`; but `1-2` (a range) stays apart from `12`.
fn normalized_number(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let digit = |i: Option<usize>| {
        i.and_then(|i| chars.get(i))
            .is_some_and(char::is_ascii_digit)
    };
    chars
        .iter()
        .enumerate()
        .filter(|&(i, c)| match c {
            ',' | '$' | '€' | '£' | '%' | '#' => false,
            '-' => digit(i.checked_sub(1)) && digit(Some(i + 1)),
            _ => true,
        })
        .map(|(_, c)| *c)
        .collect()
}

/// A word with its contraction undone: `don't` → `do` + negation, `what's` → `what` + `is`,
/// `manager's` → `manager` (possessive), `I'm` → `i` + `am`; typed without the apostrophe too
/// (`dont`, `whats`, `im`) when the word is not one itself.
struct Expanded {
    word: String,
    negated: bool,
    /// A form of `be` was contracted into it.
    be: bool,
}

fn expand_contraction(word: &str, known: &impl Fn(&str) -> bool) -> Expanded {
    let expanded = |word: &str, negated, be| Expanded {
        word: word.to_owned(),
        negated,
        be,
    };
    // `cant` and `wont` are words too, but hardly ever in a question.
    match word {
        "cant" | "cannot" => return expanded("can", true, false),
        "wont" => return expanded("will", true, false),
        _ => {}
    }
    let apostrophe = word.contains('\'');
    if !apostrophe && !known(word) {
        if let Some(stem) = word.strip_suffix("nt")
            && NEGATABLE.contains(&stem)
        {
            return expanded(stem, true, false);
        }
        for suffix in ["s", "m", "re"] {
            if let Some(stem) = word.strip_suffix(suffix)
                && CONTRACTED.contains(&stem)
            {
                return expanded(stem, false, true);
            }
        }
    }
    if let Some(stem) = word.strip_suffix("n't") {
        let stem = match stem {
            "ca" => "can",
            "wo" => "will",
            "sha" => "shall",
            other => other,
        };
        return expanded(stem, true, false);
    }
    for suffix in ["'s", "'re", "'m", "'ve", "'ll", "'d"] {
        if let Some(stem) = word.strip_suffix(suffix) {
            // `'s` after a noun is a possessive; after `what`, `it`, `there`… it is `is`.
            let be =
                matches!(suffix, "'re" | "'m") || (suffix == "'s" && CONTRACTED.contains(&stem));
            return expanded(stem, false, be);
        }
    }
    expanded(&word.replace('\'', ""), false, false)
}

fn classify(word: &str) -> Token {
    let kind = if word.chars().any(|c| c.is_ascii_digit()) {
        Kind::Number(normalized_number(word))
    } else if let Some((_, digits)) = CARDINALS.iter().find(|(w, _)| *w == word) {
        Kind::Number((*digits).to_owned())
    } else if NEGATIONS.contains(&word) {
        Kind::Negation
    } else if let Some((_, canonical)) = QUESTION_WORDS.iter().find(|(w, _)| *w == word) {
        Kind::QuestionWord(canonical)
    } else if let Some(direction) = DIRECTIONS.iter().find(|d| **d == word) {
        Kind::Direction(direction)
    } else if ASKER.contains(&word) {
        Kind::Asker
    } else if BE.contains(&word) {
        Kind::Be
    } else if OBLIGATIONS.contains(&word) {
        Kind::Obligation
    } else if NEUTRAL.contains(&word) {
        Kind::Neutral
    } else {
        Kind::Content
    };
    Token {
        text: word.to_owned(),
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(String, Kind)> {
        tokenize(text, |w| w == "email")
            .into_iter()
            .map(|t| (t.text, t.kind))
            .collect()
    }

    #[test]
    fn words_are_split_expanded_and_classified() {
        let tokens = kinds("Don't I get $1,500 for my manager's full-time e-mail, 2 weeks?");
        let texts: Vec<&str> = tokens.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            texts,
            [
                "do", "n't", "i", "get", "$1,500", "dollar", "for", "my", "manager", "full",
                "time", "email", "2", "weeks"
            ]
        );
        assert_eq!(tokens[1].1, Kind::Negation);
        assert_eq!(tokens[2].1, Kind::Asker);
        assert_eq!(tokens[3].1, Kind::Content);
        assert_eq!(tokens[4].1, Kind::Number("1500".into()));
        assert_eq!(tokens[5].1, Kind::Content);
        assert_eq!(tokens[8].1, Kind::Content);
        assert_eq!(kinds("dont")[1].1, Kind::Negation);
        assert_eq!(kinds("whats")[0].1, Kind::QuestionWord("what"));
        assert_eq!(kinds("who's")[1].1, Kind::Be);
        assert_eq!(kinds("manager's").len(), 1, "a possessive is no `is`");
        assert_eq!(kinds("1-2")[0].1, Kind::Number("1-2".into()));
        assert_eq!(kinds("W-2")[0].1, Kind::Number("w2".into()));
        assert_eq!(kinds("IT")[0].1, Kind::Content, "an acronym, not `it`");
        assert_eq!(kinds("have to")[0].1, Kind::Obligation);
        assert_eq!(kinds("two")[0].1, Kind::Number("2".into()));
        assert_eq!(kinds("Whom")[0].1, Kind::QuestionWord("who"));
        assert_eq!(kinds("from")[0].1, Kind::Direction("from"));
        assert_eq!(kinds("can't")[1].1, Kind::Negation);
    }
}
