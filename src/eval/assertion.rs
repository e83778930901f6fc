//! Assertions: what a case's answer must satisfy, each failing with a message that says what
//! was expected and what came. The deterministic ones are checked here; `similar` (an
//! embedding) and `judge` (a model) are scored by the runner and compared here.

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::pipeline::Status;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Assertion {
    /// The answer contains `value` (case-sensitive).
    Contains {
        value: String,
    },
    /// The answer contains `value`, ignoring case.
    Icontains {
        value: String,
    },
    /// The answer does not contain `value`, ignoring case.
    NotContains {
        value: String,
    },
    /// The answer matches the regular expression.
    Regex {
        value: String,
    },
    /// The answer starts with `value` (leading whitespace ignored).
    StartsWith {
        value: String,
    },
    /// The assistant's status (`success`, `no_answer`, `filtered`, …).
    Status {
        value: Status,
    },
    /// The assistant answered `no_answer`.
    NoAnswer,
    /// A cited source's path or heading contains `value`.
    Cites {
        value: String,
    },
    /// At most this many words.
    MaxWords {
        value: usize,
    },
    /// The answer (or a fenced block in it) is JSON.
    IsJson,
    /// The answer is JSON valid against the schema (the subset in `json_schema`).
    JsonSchema {
        value: Value,
    },
    /// Cosine similarity of the answer's embedding to the reference's (the case's
    /// `reference`, or `value`) at least `threshold`.
    Similar {
        #[serde(default)]
        value: Option<String>,
        threshold: f32,
    },
    MaxCostUsd {
        value: f64,
    },
    MaxLatencyMs {
        value: f64,
    },
    /// No figure or name in the answer that its cited sources lack.
    Grounded,
    /// The judge's score (1–5) on the rubric (correctness against the reference by default)
    /// at least `threshold`.
    Judge {
        #[serde(default)]
        rubric: Option<String>,
        threshold: f64,
    },
}

/// What a case produced, as the assertions see it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub answer: String,
    /// `None` for gateway cases.
    pub status: Option<Status>,
    /// Paths and headings of the cited sources.
    pub cited: Vec<CitedSource>,
    /// Figures and names the grounding check found in no cited source.
    pub ungrounded: Vec<String>,
    /// The model (alias or deployment) that answered, if one did.
    pub model: Option<String>,
    /// `name@version` of the assistant's prompt that answered.
    pub prompt_version: Option<String>,
    /// The deployment that answered, when known (in process).
    pub deployment: Option<String>,
    pub cost_micro_usd: u64,
    pub latency_ms: f64,
    pub request_id: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CitedSource {
    pub path: String,
    pub heading: String,
}

/// A checked assertion: passed or the reason it failed; the score where there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub pass: bool,
    pub message: String,
    pub score: Option<f64>,
}

impl Check {
    fn of(pass: bool, failure: impl FnOnce() -> String) -> Check {
        Check {
            pass,
            message: if pass { String::new() } else { failure() },
            score: None,
        }
    }
}

impl Assertion {
    /// The assertion's `type`, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Assertion::Contains { .. } => "contains",
            Assertion::Icontains { .. } => "icontains",
            Assertion::NotContains { .. } => "not_contains",
            Assertion::Regex { .. } => "regex",
            Assertion::StartsWith { .. } => "starts_with",
            Assertion::Status { .. } => "status",
            Assertion::NoAnswer => "no_answer",
            Assertion::Cites { .. } => "cites",
            Assertion::MaxWords { .. } => "max_words",
            Assertion::IsJson => "is_json",
            Assertion::JsonSchema { .. } => "json_schema",
            Assertion::Similar { .. } => "similar",
            Assertion::MaxCostUsd { .. } => "max_cost_usd",
            Assertion::MaxLatencyMs { .. } => "max_latency_ms",
            Assertion::Grounded => "grounded",
            Assertion::Judge { .. } => "judge",
        }
    }

    /// Checked at load: `ask` says whether the case asks the assistant (statuses, citations
    /// and grounding exist only there).
    pub(crate) fn validate(&self, ask: bool, has_reference: bool) -> Result<(), String> {
        match self {
            Assertion::Status { .. }
            | Assertion::NoAnswer
            | Assertion::Cites { .. }
            | Assertion::Grounded
                if !ask =>
            {
                Err("applies to assistant questions, not gateway cases".into())
            }
            Assertion::Regex { value } => Regex::new(value).map(drop).map_err(|e| e.to_string()),
            Assertion::JsonSchema { value } => check_schema(value),
            Assertion::Similar { value, threshold } => {
                if !(0.0..=1.0).contains(threshold) {
                    Err("`threshold` must be between 0 and 1".into())
                } else if value.is_none() && !has_reference {
                    Err("needs `value` or the case's `reference`".into())
                } else {
                    Ok(())
                }
            }
            Assertion::Judge { rubric, threshold } => {
                if !(1.0..=5.0).contains(threshold) {
                    Err("`threshold` must be between 1 and 5".into())
                } else if rubric.is_none() && !has_reference {
                    Err("needs the case's `reference` (or a `rubric`)".into())
                } else {
                    Ok(())
                }
            }
            Assertion::MaxCostUsd { value } | Assertion::MaxLatencyMs { value }
                if !(value.is_finite() && *value >= 0.0) =>
            {
                Err("`value` must be a non-negative number".into())
            }
            _ => Ok(()),
        }
    }

    /// Checks a deterministic assertion; `None` for `similar` and `judge`, which need a
    /// score from the runner (`against_score`).
    pub fn check(&self, outcome: &Outcome) -> Option<Check> {
        let answer = outcome.answer.as_str();
        let said = || format!("the answer was {:?}", excerpt(answer));
        Some(match self {
            Assertion::Contains { value } => Check::of(answer.contains(value.as_str()), || {
                format!("expected to contain {value:?}; {}", said())
            }),
            Assertion::Icontains { value } => Check::of(
                answer.to_lowercase().contains(&value.to_lowercase()),
                || format!("expected to contain {value:?} (any case); {}", said()),
            ),
            Assertion::NotContains { value } => Check::of(
                !answer.to_lowercase().contains(&value.to_lowercase()),
                || format!("expected not to contain {value:?}; {}", said()),
            ),
            Assertion::Regex { value } => {
                let matched = Regex::new(value).is_ok_and(|re| re.is_match(answer));
                Check::of(matched, || {
                    format!("expected to match /{value}/; {}", said())
                })
            }
            Assertion::StartsWith { value } => {
                Check::of(answer.trim_start().starts_with(value.as_str()), || {
                    format!("expected to start with {value:?}; {}", said())
                })
            }
            Assertion::Status { value } => Check::of(outcome.status == Some(*value), || {
                format!(
                    "expected status {}, got {}; {}",
                    value.as_str(),
                    outcome.status.map_or("none", Status::as_str),
                    said()
                )
            }),
            Assertion::NoAnswer => Check::of(outcome.status == Some(Status::NoAnswer), || {
                format!(
                    "expected no_answer, got {}; {}",
                    outcome.status.map_or("none", Status::as_str),
                    said()
                )
            }),
            Assertion::Cites { value } => Check::of(
                outcome
                    .cited
                    .iter()
                    .any(|s| s.path.contains(value.as_str()) || s.heading.contains(value.as_str())),
                || {
                    let cited: Vec<&str> = outcome.cited.iter().map(|s| s.path.as_str()).collect();
                    format!(
                        "expected a citation of {value:?}, cited {cited:?}; {}",
                        said()
                    )
                },
            ),
            Assertion::MaxWords { value } => {
                let words = answer.split_whitespace().count();
                Check::of(words <= *value, || {
                    format!("expected at most {value} words, got {words}")
                })
            }
            Assertion::IsJson => Check::of(parse_json(answer).is_some(), || {
                format!("expected JSON; {}", said())
            }),
            Assertion::JsonSchema { value } => match parse_json(answer) {
                None => Check::of(false, || format!("expected JSON; {}", said())),
                Some(json) => {
                    let errors = validate_json(value, &json, "$");
                    Check::of(errors.is_empty(), || {
                        format!("JSON does not match the schema: {}", errors.join("; "))
                    })
                }
            },
            Assertion::MaxCostUsd { value } => {
                let cost = outcome.cost_micro_usd as f64 / 1e6;
                Check::of(cost <= *value, || {
                    format!("expected at most ${value}, cost ${cost:.6}")
                })
            }
            Assertion::MaxLatencyMs { value } => Check::of(outcome.latency_ms <= *value, || {
                format!(
                    "expected at most {value} ms, took {:.0} ms",
                    outcome.latency_ms
                )
            }),
            Assertion::Grounded => Check::of(outcome.ungrounded.is_empty(), || {
                format!(
                    "not in the cited sources: {}",
                    outcome.ungrounded.join(", ")
                )
            }),
            Assertion::Similar { .. } | Assertion::Judge { .. } => return None,
        })
    }

    /// Compares a `similar` or `judge` score with the threshold.
    pub fn against_score(&self, score: f64, answer: &str) -> Check {
        let (threshold, what) = match self {
            Assertion::Similar { threshold, .. } => (f64::from(*threshold), "similarity"),
            Assertion::Judge { threshold, .. } => (*threshold, "judge score"),
            _ => (0.0, "score"),
        };
        let pass = score >= threshold;
        Check {
            pass,
            message: if pass {
                String::new()
            } else {
                format!(
                    "{what} {score:.2} below {threshold}; the answer was {:?}",
                    excerpt(answer)
                )
            },
            score: Some(score),
        }
    }
}

/// The first 160 characters of an answer, for failure messages.
pub fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(160) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// The answer as JSON: the whole text, or the body of a fenced code block (models often fence
/// their JSON).
pub fn parse_json(text: &str) -> Option<Value> {
    let text = text.trim();
    if let Ok(value) = serde_json::from_str(text) {
        return Some(value);
    }
    let fenced = text.split("```").nth(1)?;
    let body = fenced.strip_prefix("json").unwrap_or(fenced);
    serde_json::from_str(body.trim()).ok()
}

/// The JSON Schema keywords we apply; a schema using another is refused at load rather than
/// silently half-checked.
const SCHEMA_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
    "description",
    "title",
];

const SCHEMA_TYPES: &[&str] = &[
    "object", "array", "string", "number", "integer", "boolean", "null",
];

fn check_schema(schema: &Value) -> Result<(), String> {
    let Value::Object(map) = schema else {
        return Err("a schema is an object".into());
    };
    for (key, value) in map {
        if !SCHEMA_KEYWORDS.contains(&key.as_str()) {
            return Err(format!(
                "schema keyword `{key}` is not supported (supported: {})",
                SCHEMA_KEYWORDS.join(", ")
            ));
        }
        match key.as_str() {
            "type" => {
                let types: Vec<&Value> = match value {
                    Value::Array(many) => many.iter().collect(),
                    one => vec![one],
                };
                for t in types {
                    if !t.as_str().is_some_and(|t| SCHEMA_TYPES.contains(&t)) {
                        return Err(format!("unknown schema type {t}"));
                    }
                }
            }
            "properties" => {
                let Value::Object(properties) = value else {
                    return Err("`properties` is an object".into());
                };
                properties.values().try_for_each(check_schema)?;
            }
            "items" => check_schema(value)?,
            "additionalProperties" if !value.is_boolean() => check_schema(value)?,
            "pattern" => {
                Regex::new(value.as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every way `value` breaks `schema`, each with its JSON path.
fn validate_json(schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let Value::Object(schema) = schema else {
        return errors;
    };
    if let Some(expected) = schema.get("type") {
        let allowed: Vec<&str> = match expected {
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            one => one.as_str().into_iter().collect(),
        };
        if !allowed.iter().any(|t| has_type(value, t)) {
            errors.push(format!("{path}: expected {}", allowed.join(" or ")));
            return errors;
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.contains(value)
    {
        errors.push(format!(
            "{path}: not one of {}",
            Value::Array(options.clone())
        ));
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        errors.push(format!("{path}: expected {constant}"));
    }
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    if let Some(n) = value.as_f64() {
        if bound("minimum").is_some_and(|min| n < min) {
            errors.push(format!("{path}: below the minimum"));
        }
        if bound("maximum").is_some_and(|max| n > max) {
            errors.push(format!("{path}: above the maximum"));
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as f64;
        if bound("minLength").is_some_and(|min| len < min) {
            errors.push(format!("{path}: shorter than minLength"));
        }
        if bound("maxLength").is_some_and(|max| len > max) {
            errors.push(format!("{path}: longer than maxLength"));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && !Regex::new(pattern).is_ok_and(|re| re.is_match(s))
        {
            errors.push(format!("{path}: does not match /{pattern}/"));
        }
    }
    if let Value::Array(items) = value {
        let len = items.len() as f64;
        if bound("minItems").is_some_and(|min| len < min) {
            errors.push(format!("{path}: fewer than minItems"));
        }
        if bound("maxItems").is_some_and(|max| len > max) {
            errors.push(format!("{path}: more than maxItems"));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                errors.extend(validate_json(item_schema, item, &format!("{path}[{i}]")));
            }
        }
    }
    if let Value::Object(object) = value {
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(key) {
                errors.push(format!("{path}: missing required `{key}`"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, item) in object {
            let child = format!("{path}.{key}");
            match (
                properties.and_then(|p| p.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(property), _) => errors.extend(validate_json(property, item, &child)),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!(
                        "{child}: not allowed (additionalProperties: false)"
                    ));
                }
                (None, Some(extra @ Value::Object(_))) => {
                    errors.extend(validate_json(extra, item, &child));
                }
                (None, _) => {}
            }
        }
    }
    errors
}

fn has_type(value: &Value, expected: &str) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answered(text: &str) -> Outcome {
        Outcome {
            answer: text.into(),
            status: Some(Status::Success),
            cited: vec![CitedSource {
                path: "hr/parental-leave.md".into(),
                heading: "Parental leave > Entitlement".into(),
            }],
            ..Outcome::default()
        }
    }

    fn check(assertion: Value, outcome: &Outcome) -> Check {
        let assertion: Assertion = serde_json::from_value(assertion).unwrap();
        assertion.check(outcome).unwrap()
    }

    #[test]
    fn text_assertions_pass_and_fail_with_what_came() {
        let outcome = answered("Primary caregivers get 20 weeks [1].");
        assert!(check(json!({"type": "contains", "value": "20 weeks"}), &outcome).pass);
        let failed = check(json!({"type": "contains", "value": "20 Weeks"}), &outcome);
        assert!(!failed.pass);
        assert!(
            failed.message.contains("20 weeks [1]"),
            "{}",
            failed.message
        );
        assert!(check(json!({"type": "icontains", "value": "PRIMARY"}), &outcome).pass);
        assert!(
            !check(
                json!({"type": "not_contains", "value": "primary"}),
                &outcome
            )
            .pass
        );
        assert!(check(json!({"type": "regex", "value": r"\b20 weeks\b"}), &outcome).pass);
        assert!(check(json!({"type": "starts_with", "value": "Primary"}), &outcome).pass);
        assert!(check(json!({"type": "max_words", "value": 6}), &outcome).pass);
        assert!(!check(json!({"type": "max_words", "value": 5}), &outcome).pass);
    }

    #[test]
    fn assistant_assertions_read_status_citations_and_grounding() {
        let mut outcome = answered("Twenty weeks [1].");
        assert!(check(json!({"type": "status", "value": "success"}), &outcome).pass);
        assert!(!check(json!({"type": "no_answer"}), &outcome).pass);
        assert!(
            check(
                json!({"type": "cites", "value": "parental-leave.md"}),
                &outcome
            )
            .pass
        );
        assert!(check(json!({"type": "cites", "value": "Entitlement"}), &outcome).pass);
        let other = check(
            json!({"type": "cites", "value": "it/passwords.md"}),
            &outcome,
        );
        assert!(!other.pass && other.message.contains("hr/parental-leave.md"));
        assert!(check(json!({"type": "grounded"}), &outcome).pass);
        outcome.ungrounded = vec!["30 weeks".into()];
        let ungrounded = check(json!({"type": "grounded"}), &outcome);
        assert!(!ungrounded.pass && ungrounded.message.contains("30 weeks"));
        outcome.status = Some(Status::NoAnswer);
        assert!(check(json!({"type": "no_answer"}), &outcome).pass);
        outcome.cost_micro_usd = 1500;
        assert!(check(json!({"type": "max_cost_usd", "value": 0.002}), &outcome).pass);
        assert!(!check(json!({"type": "max_cost_usd", "value": 0.001}), &outcome).pass);
    }

    #[test]
    fn json_assertions_read_fenced_json_and_apply_the_schema() {
        let schema = json!({"type": "object", "required": ["ok", "items"],
            "additionalProperties": false,
            "properties": {"ok": {"type": "boolean"},
                           "items": {"type": "array", "items": {"type": "integer", "minimum": 0}}}});
        let good = answered("```json\n{\"ok\": true, \"items\": [1, 2]}\n```");
        assert!(check(json!({"type": "is_json"}), &good).pass);
        assert!(check(json!({"type": "json_schema", "value": schema}), &good).pass);
        let bad = answered(r#"{"ok": "yes", "items": [1, -2], "extra": 1}"#);
        let failed = check(json!({"type": "json_schema", "value": schema}), &bad);
        assert!(!failed.pass);
        for part in [
            "$.ok: expected boolean",
            "$.items[1]: below",
            "$.extra: not allowed",
        ] {
            assert!(failed.message.contains(part), "{part}: {}", failed.message);
        }
        let missing = check(
            json!({"type": "json_schema", "value": schema}),
            &answered("{}"),
        );
        assert!(
            missing.message.contains("missing required `ok`"),
            "{}",
            missing.message
        );
        assert!(!check(json!({"type": "is_json"}), &answered("yes")).pass);
        assert!(check_schema(&json!({"type": "object", "oneOf": []})).is_err());
    }

    #[test]
    fn scores_are_compared_with_the_threshold() {
        let judge: Assertion =
            serde_json::from_value(json!({"type": "judge", "threshold": 4})).unwrap();
        assert!(judge.against_score(4.0, "a").pass);
        let low = judge.against_score(3.0, "a");
        assert!(!low.pass && low.message.contains("judge score 3.00 below 4"));
        assert_eq!(low.score, Some(3.0));
        assert!(judge.check(&answered("a")).is_none());
    }
}
