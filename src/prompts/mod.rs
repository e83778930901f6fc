//! Versioned prompts, treated as code: one file per version (`prompts/<name>/<version>.toml`),
//! reviewed like code. The live version is `[prompts.active]` until `askacme prompts activate`
//! (gated by the prompt's suites) or `rollback` records another in the database; a running
//! server applies a recorded activation within seconds. The repository's prompts are built
//! into the binary; files in `[prompts] dir` add versions or replace a built-in one of the same
//! name and version.
//!
//! Templates are minijinja with strict undefined behaviour, and every template is rendered
//! once with a sample context at load: a typo in a variable name stops start-up, not a request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

use crate::config::PromptsConfig;
use crate::store::{Activation, ActivationAction};

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
    #[error("{0} has no earlier active version to roll back to")]
    NothingToRollBack(String),
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
    /// Suites (`evals/suites/<name>.toml`) a version must pass to be activated, besides
    /// `[prompts.gates]`.
    #[serde(default)]
    gates: Vec<String>,
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
    /// Suites this version names as its gate.
    pub gates: Vec<String>,
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
    /// `[prompts.active]`: what is live before any recorded activation.
    configured: BTreeMap<String, String>,
    /// What is live now: `configured` with the recorded activations applied. Read on every
    /// request; written when a poll finds a new activation.
    active: RwLock<BTreeMap<String, String>>,
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
            configured: config.active.clone(),
            active: RwLock::new(config.active.clone()),
            templates: Environment::new(),
        };
        registry
            .templates
            .set_undefined_behavior(UndefinedBehavior::Strict);
        for ((name, version), (origin, text)) in files {
            registry.add(name, version, origin, text)?;
        }
        for (name, version) in &registry.configured {
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
            gates: file.gates,
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
    pub fn list(&self) -> Vec<(&Prompt, bool)> {
        let active = self.active_versions();
        self.prompts
            .values()
            .map(|p| (p, active.get(&p.name) == Some(&p.version)))
            .collect()
    }

    pub fn active(&self, name: &str) -> Result<&Prompt, PromptError> {
        let version = self
            .active_versions()
            .get(name)
            .cloned()
            .ok_or_else(|| PromptError::Unknown(name.to_owned()))?;
        self.get(name, &version)
    }

    fn active_versions(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, String>> {
        // A panic while holding the lock cannot leave the map half-written (it is replaced
        // whole), so a poisoned lock is still good to read.
        self.active.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the recorded activations (oldest first) live over `[prompts.active]`. An
    /// activation of a version this binary does not have (its file was removed) is skipped
    /// with a warning: the server keeps answering with a version it has.
    pub fn apply(&self, activations: &[Activation]) {
        let mut active = self.configured.clone();
        let names: std::collections::BTreeSet<&String> =
            activations.iter().map(|a| &a.name).collect();
        for name in names {
            if let Some(version) = self.stack(name, activations).pop() {
                active.insert(name.clone(), version);
            }
        }
        *self.active.write().unwrap_or_else(|e| e.into_inner()) = active;
    }

    /// The versions of `name` that were made live, in order, with rollbacks undone: the last
    /// is live, the one before it is where a rollback goes. Starts with `[prompts.active]`.
    fn stack(&self, name: &str, activations: &[Activation]) -> Vec<String> {
        let mut stack: Vec<String> = self.configured.get(name).cloned().into_iter().collect();
        for activation in activations.iter().filter(|a| a.name == name) {
            if !self
                .prompts
                .contains_key(&(activation.name.clone(), activation.version.clone()))
            {
                tracing::warn!(
                    prompt = %format!("{}@{}", activation.name, activation.version),
                    "recorded activation of a prompt version this binary does not have: skipped"
                );
                continue;
            }
            match activation.action {
                ActivationAction::Activate | ActivationAction::Force => {
                    stack.push(activation.version.clone());
                }
                // A rollback row names the version it went back to: that is authoritative, so
                // instances that skipped a version (their files differ) still agree on it.
                ActivationAction::Rollback => {
                    match stack.iter().rposition(|v| *v == activation.version) {
                        Some(at) => stack.truncate(at + 1),
                        None => stack.push(activation.version.clone()),
                    }
                }
            }
        }
        stack
    }

    /// The version `askacme prompts rollback NAME` goes back to: the one live before the
    /// current one.
    pub fn rollback_target(
        &self,
        name: &str,
        activations: &[Activation],
    ) -> Result<&Prompt, PromptError> {
        let stack = self.stack(name, activations);
        match stack.len().checked_sub(2).and_then(|i| stack.get(i)) {
            Some(version) => self.get(name, version),
            None => Err(PromptError::NothingToRollBack(name.to_owned())),
        }
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
            gates: BTreeMap::new(),
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
        let listed: Vec<(String, bool)> = registry
            .list()
            .into_iter()
            .map(|(p, a)| (p.id(), a))
            .collect();
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
    fn activations_override_the_config_and_rollbacks_unwind_them() {
        let dir = dir_with(&[
            ("ask_acme/v4.toml", V4),
            ("ask_acme/v5.toml", &V4.replace("\"v4\"", "\"v5\"")),
        ]);
        let registry = Registry::load(&config(dir.clone(), &[("ask_acme", "v3")])).unwrap();
        let row = |version: &str, action| Activation {
            id: 0,
            name: "ask_acme".into(),
            version: version.into(),
            action,
            actor: "os:test".into(),
            activated_at_ms: 0,
            gate: String::new(),
            reason: None,
        };
        let live = |registry: &Registry| registry.active("ask_acme").unwrap().version.clone();
        let target = |registry: &Registry, rows: &[Activation]| {
            registry
                .rollback_target("ask_acme", rows)
                .map(|p| p.version.clone())
        };
        assert!(matches!(
            target(&registry, &[]),
            Err(PromptError::NothingToRollBack(_))
        ));
        let mut rows = vec![
            row("v4", ActivationAction::Activate),
            row("v5", ActivationAction::Force),
        ];
        registry.apply(&rows);
        assert_eq!(live(&registry), "v5");
        assert_eq!(target(&registry, &rows).unwrap(), "v4");
        rows.push(row("v4", ActivationAction::Rollback));
        registry.apply(&rows);
        assert_eq!(live(&registry), "v4");
        assert_eq!(
            target(&registry, &rows).unwrap(),
            "v3",
            "a second rollback goes further back"
        );
        rows.push(row("v3", ActivationAction::Rollback));
        registry.apply(&rows);
        assert_eq!(live(&registry), "v3");
        assert!(target(&registry, &rows).is_err());
        // An activation of a version this binary lacks is skipped, not fatal; a rollback
        // after it still lands where it says.
        registry.apply(&[
            row("v4", ActivationAction::Activate),
            row("v9", ActivationAction::Activate),
            row("v4", ActivationAction::Rollback),
        ]);
        assert_eq!(live(&registry), "v4", "the rollback row names v4");
        registry.apply(&[row("v9", ActivationAction::Activate)]);
        assert_eq!(live(&registry), "v3");
        let listed: Vec<String> = registry
            .list()
            .into_iter()
            .filter(|(_, active)| *active)
            .map(|(p, _)| p.id())
            .collect();
        assert_eq!(listed, ["ask_acme@v3"]);
        std::fs::remove_dir_all(dir).unwrap();
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
