//! Versioned prompts, treated as code: one file per version (`prompts/<name>/<version>.toml`),
//! reviewed like code, the live version chosen in config (`[prompts.active]`), so a rollback is
//! a one-line config change. The repository's prompts are built into the binary; files in
//! `[prompts] dir` add versions or replace a built-in one of the same name and version.
//!
//! Templates are minijinja with strict undefined behaviour, and every template is rendered
//! once with a sample context at load: a typo in a variable name stops start-up, not a request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

use crate::config::PromptsConfig;

/// `(name, version, file text)` of the prompts shipped in the binary.
const BUILT_IN: &[(&str, &str, &str)] = &[
    (
        "ask_acme",
        "v1",
        include_str!("../../prompts/ask_acme/v1.toml"),
    ),
    (
        "ask_acme",
        "v2",
        include_str!("../../prompts/ask_acme/v2.toml"),
    ),
    (
        "ask_acme",
        "v3",
        include_str!("../../prompts/ask_acme/v3.toml"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("{path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("prompt {prompt}: {message}")]
    Invalid { prompt: String, message: String },
    #[error("config key `prompts.active.{name}`: no prompt {name}@{version}")]
    MissingActive { name: String, version: String },
    #[error("unknown prompt `{0}`")]
    Unknown(String),
    #[error("rendering prompt {id}: {message}")]
    Render { id: String, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptFile {
    version: String,
    owner: String,
    last_updated: String,
    #[serde(default)]
    description: String,
    model: String,
    temperature: f32,
    #[serde(default)]
    max_tokens: Option<u32>,
    system: String,
    template: String,
}

#[derive(Debug, Clone)]
pub struct Prompt {
    pub name: String,
    pub version: String,
    pub owner: String,
    pub last_updated: String,
    pub description: String,
    /// Alias or deployment the prompt was written and evaluated for.
    pub model: String,
    pub temperature: f32,
    pub max_tokens: Option<u32>,
    pub system: String,
    /// Where it came from: `built-in` or a file path.
    pub origin: String,
    /// The file as written, for `prompts show` and `prompts diff`.
    pub text: String,
}

impl Prompt {
    /// `name@version`, as recorded on request-log rows.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// One source as the answering template sees it.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateSource<'a> {
    pub n: usize,
    pub title: &'a str,
    pub path: &'a str,
    pub heading: &'a str,
    pub text: &'a str,
}

/// Everything the `ask_acme` template may use.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerContext<'a> {
    pub question: &'a str,
    pub sources: Vec<TemplateSource<'a>>,
    pub category: &'a str,
    pub department: Option<&'a str>,
}

pub struct Registry {
    prompts: BTreeMap<(String, String), Prompt>,
    active: BTreeMap<String, String>,
    templates: Environment<'static>,
}

impl Registry {
    pub fn load(config: &PromptsConfig) -> Result<Self, PromptError> {
        let mut files: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
        for (name, version, text) in BUILT_IN {
            files.insert(
                (name.to_string(), version.to_string()),
                ("built-in".to_owned(), text.to_string()),
            );
        }
        for (name, version, path) in prompt_files(&config.dir)? {
            let text = std::fs::read_to_string(&path).map_err(|error| PromptError::Read {
                path: path.clone(),
                error,
            })?;
            files.insert((name, version), (path.display().to_string(), text));
        }
        let mut registry = Self {
            prompts: BTreeMap::new(),
            active: config.active.clone(),
            templates: Environment::new(),
        };
        registry
            .templates
            .set_undefined_behavior(UndefinedBehavior::Strict);
        for ((name, version), (origin, text)) in files {
            registry.add(name, version, origin, text)?;
        }
        for (name, version) in &registry.active {
            if !registry
                .prompts
                .contains_key(&(name.clone(), version.clone()))
            {
                return Err(PromptError::MissingActive {
                    name: name.clone(),
                    version: version.clone(),
                });
            }
        }
        Ok(registry)
    }

    fn add(
        &mut self,
        name: String,
        version: String,
        origin: String,
        text: String,
    ) -> Result<(), PromptError> {
        let label = format!("{name}@{version} ({origin})");
        let invalid = |message: String| PromptError::Invalid {
            prompt: label.clone(),
            message,
        };
        let file: PromptFile = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if file.version != version {
            return Err(invalid(format!(
                "`version = \"{}\"` does not match the file name `{version}.toml`",
                file.version
            )));
        }
        if !is_iso_date(&file.last_updated) {
            return Err(invalid(format!(
                "`last_updated = \"{}\"` is not a YYYY-MM-DD date",
                file.last_updated
            )));
        }
        if !(0.0..=2.0).contains(&file.temperature) {
            return Err(invalid("`temperature` must be between 0 and 2".into()));
        }
        for (key, value) in [
            ("owner", &file.owner),
            ("model", &file.model),
            ("system", &file.system),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(format!("`{key}` must not be empty")));
            }
        }
        let id = format!("{name}@{version}");
        self.templates
            .add_template_owned(id.clone(), file.template)
            .map_err(|e| invalid(format!("template: {e}")))?;
        let prompt = Prompt {
            name,
            version,
            owner: file.owner,
            last_updated: file.last_updated,
            description: file.description,
            model: file.model,
            temperature: file.temperature,
            max_tokens: file.max_tokens,
            system: file.system.trim().to_owned(),
            origin,
            text,
        };
        // A template that uses a variable the pipeline does not provide fails here, at load.
        self.render(&prompt, &sample_context())
            .map_err(|e| invalid(e.to_string()))?;
        self.prompts
            .insert((prompt.name.clone(), prompt.version.clone()), prompt);
        Ok(())
    }

    /// Every prompt version, by name then version, with whether it is the active one.
    pub fn list(&self) -> impl Iterator<Item = (&Prompt, bool)> {
        self.prompts.values().map(|p| {
            let active = self.active.get(&p.name) == Some(&p.version);
            (p, active)
        })
    }

    pub fn active(&self, name: &str) -> Result<&Prompt, PromptError> {
        let version = self
            .active
            .get(name)
            .ok_or_else(|| PromptError::Unknown(name.to_owned()))?;
        self.get(name, version)
    }

    pub fn get(&self, name: &str, version: &str) -> Result<&Prompt, PromptError> {
        self.prompts
            .get(&(name.to_owned(), version.to_owned()))
            .ok_or_else(|| PromptError::Unknown(format!("{name}@{version}")))
    }

    /// The user message for `prompt`, from its template.
    pub fn render(&self, prompt: &Prompt, context: &AnswerContext) -> Result<String, PromptError> {
        let id = prompt.id();
        let render_err = |e: minijinja::Error| PromptError::Render {
            id: id.clone(),
            message: format!("{e:#}"),
        };
        let template = self.templates.get_template(&id).map_err(render_err)?;
        Ok(template
            .render(context)
            .map_err(render_err)?
            .trim()
            .to_owned())
    }
}

fn sample_context() -> AnswerContext<'static> {
    AnswerContext {
        question: "How long is parental leave?",
        sources: vec![TemplateSource {
            n: 1,
            title: "Parental leave",
            path: "hr/parental-leave.md",
            heading: "Parental leave > Entitlement",
            text: "The primary caregiver gets 20 weeks.",
        }],
        category: "policy_lookup",
        department: Some("hr"),
    }
}

/// `(name, version, path)` of every `<dir>/<name>/<version>.toml`; no folder, no files.
fn prompt_files(dir: &Path) -> Result<Vec<(String, String, PathBuf)>, PromptError> {
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |error| PromptError::Read { path, error }
    };
    let mut found = Vec::new();
    if !dir.is_dir() {
        return Ok(found);
    }
    for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let folder = entry.map_err(read_err(dir))?.path();
        let Some(name) = folder.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !folder.is_dir() || name.starts_with('.') {
            continue;
        }
        for file in std::fs::read_dir(&folder).map_err(read_err(&folder))? {
            let path = file.map_err(read_err(&folder))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            if let Some(version) = path.file_stem().and_then(|s| s.to_str()) {
                found.push((name.to_owned(), version.to_owned(), path.clone()));
            }
        }
    }
    Ok(found)
}

fn is_iso_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let numeric = |p: &str, len: usize| p.len() == len && p.bytes().all(|b| b.is_ascii_digit());
    matches!(parts.as_slice(), [y, m, d] if numeric(y, 4) && numeric(m, 2) && numeric(d, 2))
        && matches!(s[5..7].parse::<u8>(), Ok(1..=12))
        && matches!(s[8..10].parse::<u8>(), Ok(1..=31))
}

/// A line diff of `old` and `new` (longest common subsequence): unchanged lines start with
/// two spaces, removed ones with `- `, added ones with `+ `.
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("askacme-prompts-{}", uuid::Uuid::now_v7().simple()));
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn config(dir: PathBuf, active: &[(&str, &str)]) -> PromptsConfig {
        PromptsConfig {
            dir,
            active: active
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    const V4: &str = r#"
version = "v4"
owner = "me"
last_updated = "2026-11-28"
model = "fast"
temperature = 0.2
system = "Be brief."
template = "Q: {{ question }} ({{ sources | length }} sources)"
"#;

    #[test]
    fn built_in_prompt_renders_sources_after_the_static_rules() {
        let registry = Registry::load(&config(
            PathBuf::from("/nonexistent"),
            &[("ask_acme", "v3")],
        ))
        .unwrap();
        let prompt = registry.active("ask_acme").unwrap();
        assert_eq!(prompt.id(), "ask_acme@v3");
        assert!(prompt.system.contains("I don't have that information"));
        let text = registry.render(prompt, &sample_context()).unwrap();
        let source = text.find("[1] Parental leave").unwrap();
        assert!(source < text.find("Question: How long").unwrap(), "{text}");
        assert!(text.contains("20 weeks"));
    }

    #[test]
    fn files_add_versions_and_config_picks_the_active_one() {
        let dir = dir_with(&[("ask_acme/v4.toml", V4)]);
        let registry = Registry::load(&config(dir.clone(), &[("ask_acme", "v4")])).unwrap();
        let active = registry.active("ask_acme").unwrap();
        assert_eq!(
            (active.version.as_str(), active.model.as_str()),
            ("v4", "fast")
        );
        assert_eq!(
            registry.render(active, &sample_context()).unwrap(),
            "Q: How long is parental leave? (1 sources)"
        );
        let listed: Vec<(String, bool)> = registry.list().map(|(p, a)| (p.id(), a)).collect();
        assert_eq!(
            listed,
            vec![
                ("ask_acme@v1".into(), false),
                ("ask_acme@v2".into(), false),
                ("ask_acme@v3".into(), false),
                ("ask_acme@v4".into(), true)
            ]
        );
        let err = Registry::load(&config(dir.clone(), &[("ask_acme", "v5")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("prompts.active.ask_acme"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_prompt_files_are_refused_at_load_with_the_reason() {
        let cases = [
            (
                V4.replace("version = \"v4\"", "version = \"v9\""),
                "file name",
            ),
            (V4.replace("2026-11-28", "28/11/2026"), "YYYY-MM-DD"),
            (V4.replace("{{ question }}", "{{ questoin }}"), "undefined"),
            (V4.replace("{{ question }}", "{{ question "), "template"),
            (V4.replace("owner = \"me\"", "owner = \"\""), "owner"),
            (format!("{V4}\nextra = 1"), "unknown field"),
        ];
        for (text, why) in cases {
            let dir = dir_with(&[("ask_acme/v4.toml", &text)]);
            let err = Registry::load(&config(dir.clone(), &[("ask_acme", "v1")]))
                .err()
                .unwrap_or_else(|| panic!("accepted a prompt with a bad {why}"))
                .to_string();
            assert!(
                err.contains(why) && err.contains("ask_acme@v4"),
                "{why}: {err}"
            );
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn diff_marks_removed_and_added_lines() {
        assert_eq!(diff("a\nb\nc\n", "a\nc\nd\n"), "  a\n- b\n  c\n+ d\n");
        assert_eq!(diff("same\n", "same\n"), "  same\n");
        assert_eq!(
            diff("x\nold\ny\n", "x\nnew\ny\n"),
            "  x\n- old\n+ new\n  y\n"
        );
    }
}
