//! Suites: `evals/suites/<name>.toml`, a `[suite]` header and `[[case]]`s, each with the
//! assertions its answer must satisfy (docs/evaluation.md has the format). A suite is checked
//! whole at load (unique ids, known assertion types, regexes that compile, schemas we can
//! apply, thresholds in range), so a typo fails before any model is called, naming the file
//! and the case.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::assertion::Assertion;
use crate::providers::types::{Message, Role};

/// The suites shipped in the binary, so `askacme prompts activate` finds its gate from any
/// working directory. A file of the same name in `[eval] suites_dir` replaces one.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "regression",
        include_str!("../../evals/suites/regression.toml"),
    ),
    ("golden", include_str!("../../evals/suites/golden.toml")),
    (
        "known-failures",
        include_str!("../../evals/suites/known-failures.toml"),
    ),
    (
        "gateway-smoke",
        include_str!("../../evals/suites/gateway-smoke.toml"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("{path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("suite {origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error(
        "suite {suite} tests prompt `{prompt}`, but the assistant answers with `{assistant}` (`assistant.prompt`)"
    )]
    OtherPrompt {
        suite: String,
        prompt: String,
        assistant: String,
    },
    #[error("no suite `{name}` (built in: {built_in}; or a file {dir}/{name}.toml)")]
    Unknown {
        name: String,
        built_in: String,
        dir: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    suite: Header,
    #[serde(default, rename = "case")]
    cases: Vec<CaseFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    name: String,
    #[serde(default)]
    description: String,
    /// The prompt its assistant cases answer with (the assistant's prompt when absent).
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default = "one")]
    min_pass_rate: f64,
    #[serde(default = "one_time")]
    repeat: u32,
}

fn one() -> f64 {
    1.0
}

fn one_time() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    id: String,
    #[serde(default)]
    question: Option<String>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    collection: Option<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    messages: Vec<CaseMessage>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default, rename = "assert")]
    assertions: Vec<Assertion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseMessage {
    role: Role,
    content: String,
}

#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub description: String,
    pub prompt: Option<String>,
    /// Each case must pass at least this share of its attempts.
    pub min_pass_rate: f64,
    pub repeat: u32,
    pub cases: Vec<Case>,
    /// `built-in` or the file's path.
    pub origin: String,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    pub input: Input,
    pub reference: Option<String>,
    pub tags: Vec<String>,
    pub assertions: Vec<Assertion>,
}

/// What a case sends.
#[derive(Debug, Clone)]
pub enum Input {
    /// A question to the assistant; with `context`, that text is the only source (retrieval
    /// is skipped).
    Ask {
        question: String,
        context: Option<String>,
        collection: Option<String>,
    },
    /// A chat completion through the gateway.
    Chat {
        model: String,
        messages: Vec<Message>,
        max_tokens: Option<u32>,
        temperature: Option<f32>,
    },
}

impl Case {
    /// The question (or the last user message) the case asks.
    pub fn question(&self) -> String {
        match &self.input {
            Input::Ask { question, .. } => question.clone(),
            Input::Chat { messages, .. } => messages
                .iter()
                .rev()
                .find(|m| m.role == Role::User)
                .map(Message::text)
                .unwrap_or_default(),
        }
    }

    pub fn is_ask(&self) -> bool {
        matches!(self.input, Input::Ask { .. })
    }
}

impl Suite {
    /// The suite called `name`: `<dir>/<name>.toml` if it exists, else the built-in one.
    /// The suite called `name`, checked against the assistant's prompt.
    pub fn for_assistant(name: &str, config: &crate::config::Config) -> Result<Suite, SuiteError> {
        let suite = Suite::resolve(name, &config.eval.suites_dir)?;
        suite.check_prompt(&config.assistant.prompt)?;
        Ok(suite)
    }

    pub fn named(name: &str, dir: &Path) -> Result<Suite, SuiteError> {
        let path = dir.join(format!("{name}.toml"));
        if path.is_file() {
            return Suite::from_file(&path);
        }
        match BUILT_IN.iter().find(|(n, _)| *n == name) {
            Some((_, text)) => Suite::parse(text, &format!("{name} (built-in)")),
            None => Err(SuiteError::Unknown {
                name: name.to_owned(),
                built_in: BUILT_IN
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
                dir: dir.display().to_string(),
            }),
        }
    }

    /// A suite by name or by path (an argument ending `.toml` or holding a `/`).
    pub fn resolve(argument: &str, dir: &Path) -> Result<Suite, SuiteError> {
        if argument.ends_with(".toml") || argument.contains('/') {
            Suite::from_file(Path::new(argument))
        } else {
            Suite::named(argument, dir)
        }
    }

    pub fn from_file(path: &Path) -> Result<Suite, SuiteError> {
        let text = std::fs::read_to_string(path).map_err(|error| SuiteError::Read {
            path: path.to_owned(),
            error,
        })?;
        Suite::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Suite, SuiteError> {
        let invalid = |message: String| SuiteError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        let file: SuiteFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let header = file.suite;
        if header.name.trim().is_empty() {
            return Err(invalid("`suite.name` must not be empty".into()));
        }
        if !(0.0..=1.0).contains(&header.min_pass_rate) {
            return Err(invalid(
                "`suite.min_pass_rate` must be between 0 and 1".into(),
            ));
        }
        if !(1..=100).contains(&header.repeat) {
            return Err(invalid("`suite.repeat` must be between 1 and 100".into()));
        }
        if file.cases.is_empty() {
            return Err(invalid("no `[[case]]`".into()));
        }
        let mut ids = BTreeSet::new();
        let mut cases = Vec::with_capacity(file.cases.len());
        for case in file.cases {
            let label = format!("case `{}`", case.id);
            if case.id.trim().is_empty() {
                return Err(invalid("a case has an empty `id`".into()));
            }
            if !ids.insert(case.id.clone()) {
                return Err(invalid(format!("{label}: the id is used twice")));
            }
            let case = Case::from_file(case).map_err(|m| invalid(format!("{label}: {m}")))?;
            cases.push(case);
        }
        Ok(Suite {
            name: header.name,
            description: header.description,
            prompt: header.prompt,
            min_pass_rate: header.min_pass_rate,
            repeat: header.repeat,
            cases,
            origin: origin.to_owned(),
        })
    }

    /// A suite written for another prompt than the assistant's cannot test it.
    pub fn check_prompt(&self, assistant_prompt: &str) -> Result<(), SuiteError> {
        match &self.prompt {
            Some(prompt) if prompt != assistant_prompt && self.asks_the_assistant() => {
                Err(SuiteError::OtherPrompt {
                    suite: self.name.clone(),
                    prompt: prompt.clone(),
                    assistant: assistant_prompt.to_owned(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Whether any case asks the assistant (and so depends on a prompt version).
    pub fn asks_the_assistant(&self) -> bool {
        self.cases.iter().any(Case::is_ask)
    }

    /// Whether any case needs the judge model.
    pub fn needs_judge(&self) -> bool {
        self.cases
            .iter()
            .flat_map(|c| &c.assertions)
            .any(|a| matches!(a, Assertion::Judge { .. }))
    }
}

impl Case {
    fn from_file(file: CaseFile) -> Result<Case, String> {
        let input = match (file.question, file.model) {
            (Some(question), None) => {
                if !file.messages.is_empty() || file.max_tokens.is_some() {
                    return Err(
                        "`messages` and `max_tokens` belong to gateway cases (`model` + `messages`), not questions".into(),
                    );
                }
                if question.trim().is_empty() {
                    return Err("`question` is empty".into());
                }
                if file.context.as_ref().is_some_and(|c| c.trim().is_empty()) {
                    return Err("`context` is empty".into());
                }
                Input::Ask {
                    question,
                    context: file.context,
                    collection: file.collection,
                }
            }
            (None, Some(model)) => {
                if file.messages.is_empty() {
                    return Err("a gateway case (`model`) needs `messages`".into());
                }
                if file.context.is_some() || file.collection.is_some() {
                    return Err(
                        "`context` and `collection` belong to questions, not gateway cases".into(),
                    );
                }
                Input::Chat {
                    model,
                    messages: file
                        .messages
                        .into_iter()
                        .map(|m| Message::new(m.role, m.content))
                        .collect(),
                    max_tokens: file.max_tokens,
                    temperature: file.temperature,
                }
            }
            (Some(_), Some(_)) => {
                return Err("has both `question` (the assistant) and `model` (the gateway)".into());
            }
            (None, None) => return Err("needs a `question`, or `model` and `messages`".into()),
        };
        if file.assertions.is_empty() {
            return Err("has no assertions (`assert = [...]`)".into());
        }
        let ask = matches!(input, Input::Ask { .. });
        for assertion in &file.assertions {
            assertion
                .validate(ask, file.reference.is_some())
                .map_err(|m| format!("assertion `{}`: {m}", assertion.kind()))?;
        }
        Ok(Case {
            id: file.id,
            input,
            reference: file.reference,
            tags: file.tags,
            assertions: file.assertions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[suite]
name = "demo"
repeat = 3

[[case]]
id = "leave"
question = "How long is parental leave?"
reference = "20 weeks."
assert = [
  { type = "contains", value = "20 weeks" },
  { type = "status", value = "success" },
  { type = "similar", threshold = 0.8 },
  { type = "judge", threshold = 4 },
]

[[case]]
id = "json"
model = "fast"
messages = [{ role = "user", content = "Reply {}" }]
assert = [{ type = "is_json" }, { type = "json_schema", value = { type = "object" } }]
"#;

    #[test]
    fn a_suite_loads_with_both_kinds_of_case() {
        let suite = Suite::parse(GOOD, "demo.toml").unwrap();
        assert_eq!((suite.name.as_str(), suite.repeat), ("demo", 3));
        assert_eq!(suite.min_pass_rate, 1.0);
        assert!(suite.cases[0].is_ask() && !suite.cases[1].is_ask());
        assert_eq!(suite.cases[1].question(), "Reply {}");
        assert!(suite.needs_judge() && suite.asks_the_assistant());
    }

    #[test]
    fn mistakes_are_refused_naming_the_case_and_the_reason() {
        let cases = [
            (
                GOOD.replace("id = \"json\"", "id = \"leave\""),
                "used twice",
            ),
            (GOOD.replace("\"contains\"", "\"contians\""), "contians"),
            (
                GOOD.replace(
                    "{ type = \"similar\", threshold = 0.8 }",
                    "{ type = \"regex\", value = \"(\" }",
                ),
                "regex",
            ),
            (GOOD.replace("threshold = 4", "threshold = 7"), "1 and 5"),
            (GOOD.replace("reference = \"20 weeks.\"\n", ""), "reference"),
            (GOOD.replace("model = \"fast\"", ""), "needs a `question`"),
            (
                GOOD.replace(
                    "{ type = \"is_json\" }",
                    "{ type = \"cites\", value = \"x.md\" }",
                ),
                "gateway",
            ),
            (GOOD.replace("repeat = 3", "repeat = 0"), "repeat"),
            (
                GOOD.replace(
                    "value = { type = \"object\" }",
                    "value = { type = \"objekt\" }",
                ),
                "objekt",
            ),
            (
                GOOD.replace("value = \"success\"", "value = \"great\""),
                "great",
            ),
        ];
        for (text, why) in cases {
            let err = Suite::parse(&text, "demo.toml").unwrap_err().to_string();
            assert!(
                err.contains(why) && err.contains("demo.toml"),
                "{why}: {err}"
            );
        }
    }

    #[test]
    fn the_shipped_suites_load() {
        for (name, _) in BUILT_IN {
            let suite = Suite::named(name, Path::new("/nonexistent")).unwrap();
            assert_eq!(&suite.name, name);
        }
        let regression = Suite::named("regression", Path::new("/nonexistent")).unwrap();
        assert!(regression.cases.len() >= 33, "{}", regression.cases.len());
        let golden = Suite::named("golden", Path::new("/nonexistent")).unwrap();
        assert!(golden.cases.len() >= 100, "{}", golden.cases.len());
        assert!(Suite::named("nope", Path::new("/nonexistent")).is_err());
    }
}
