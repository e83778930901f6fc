//! `askacme.toml`: typed sections, embedded defaults and start-up validation.
//!
//! The built-in defaults (`default.toml`, local models and SQLite) are parsed first and the user's
//! file is laid over them table by table, so the program runs with no file at all and a file only
//! says what differs. Every error names the offending key, e.g. `aliases.strong[0]: unknown deployment`.

mod gateway;
mod price;
mod safety;
mod secret;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use gateway::{
    AliasConfig, AliasRoute, AuthConfig, AutoConfig, AutoExample, BreakerConfig, Difficulty,
    RouterConfig, WeightedAlias,
};
pub use price::{UsdPerMtok, format_usd_micro, parse_usd_micro};
pub use safety::{GuardrailConfig, PiiAction, SafetyConfig};
pub use secret::Secret;

const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// Why a configuration could not be loaded; the message always names the file or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub kb: KbConfig,
    pub prompts: PromptsConfig,
    pub assistant: AssistantConfig,
    pub classifier: ClassifierConfig,
    pub providers: BTreeMap<String, ProviderConfig>,
    pub deployments: BTreeMap<String, DeploymentConfig>,
    pub aliases: BTreeMap<String, AliasConfig>,
    pub router: RouterConfig,
    pub breaker: BreakerConfig,
    pub auth: AuthConfig,
    pub auto: AutoConfig,
    pub cache: CacheConfig,
    pub safety: SafetyConfig,
    /// Guardrail policies for gateway traffic, by name.
    pub guardrails: BTreeMap<String, GuardrailConfig>,
    pub eval: EvalConfig,
    pub telemetry: TelemetryConfig,
}

/// Traces over OTLP (metrics are always on, at `/metrics`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// An OTLP/HTTP collector (`http://host:4318`): spans go to `<endpoint>/v1/traces` as
    /// OTLP JSON. Empty: no traces, at no cost.
    pub otlp_endpoint: String,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Put the messages sent to and received from models on their spans
    /// (`gen_ai.input.messages`, `gen_ai.output.messages`). Off: they may hold personal data.
    pub capture_content: bool,
    /// How often queued spans are posted, in milliseconds.
    pub export_interval_ms: u64,
}

/// The exact response cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    pub enabled: bool,
    /// How long an entry is served.
    pub ttl_secs: u64,
    /// Cache only requests whose answer is deterministic (temperature 0).
    pub only_deterministic: bool,
    /// Entries kept in memory in front of the database (0: none).
    pub memory_entries: usize,
    /// Serve the assistant's cached answer to a similar question (same scope, guard passed).
    pub semantic: bool,
    /// Cosine similarity of the two questions' embeddings at which the guard is consulted.
    pub semantic_threshold: f32,
    /// The WordNet database the guard reads (`wordnet-base`'s directory). Missing, the
    /// semantic cache is off: without it the guard cannot check roles or voice.
    pub semantic_lexicon: PathBuf,
    /// A model (alias or deployment) asked, with a one-word yes/no prompt, about matches the
    /// guard cannot settle by words alone; empty: none, such matches are refused.
    pub semantic_verify_model: String,
}

/// Where Debian's `wordnet-base` puts the WordNet 3.0 database.
pub const DEFAULT_LEXICON: &str = "/usr/share/wordnet";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address `askacme serve` listens on unless `--listen` says otherwise.
    pub listen: SocketAddr,
    /// Request bodies above this size are refused with 413.
    pub max_body_bytes: usize,
    /// Models (aliases or deployments) `serve` loads before it reports ready.
    #[serde(default)]
    pub warm_up: Vec<String>,
    /// Who may read `GET /metrics`; unset means `master` when `[auth]` is on, else `none`.
    #[serde(default)]
    pub metrics_auth: Option<MetricsAuth>,
}

/// Protection of `GET /metrics`: `none` (anyone who can reach the port, e.g. a Prometheus on a
/// private network) or `master` (the master key, as `Authorization: Bearer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAuth {
    None,
    Master,
}

impl ServerConfig {
    /// Whether `/metrics` needs the master key, given whether auth is on.
    pub fn metrics_need_master(&self, auth_enabled: bool) -> bool {
        match self.metrics_auth {
            Some(MetricsAuth::Master) => true,
            Some(MetricsAuth::None) => false,
            None => auth_enabled,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Where the database and models live; resolved from `$ASKACME_HOME` or
    /// `~/.local/share/askacme` when absent.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH`; empty means `sqlite://<data_dir>/askacme.db`.
    #[serde(default)]
    pub database_url: String,
    /// Empty means `<data_dir>/models`.
    #[serde(default)]
    pub models_dir: String,
    /// `redis://HOST:PORT[/DB]`: rate-limit counters shared by every instance. Empty keeps them
    /// in this process (right for a single instance).
    #[serde(default)]
    pub redis_url: Secret,
}

/// The knowledge base: how documents are split, embedded and searched.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KbConfig {
    /// Longest chunk, in bytes of text; sections above it are split at paragraph boundaries.
    pub chunk_max_chars: usize,
    /// How much consecutive pieces of one long section overlap.
    pub chunk_overlap_chars: usize,
    /// Alias or deployment that embeds chunks and questions.
    pub embedding_model: String,
    /// Chunks a search returns (and the assistant puts in the prompt).
    pub top_k: usize,
    /// Candidates each retriever (BM25, dense) contributes before fusion.
    pub candidates: usize,
    /// Reciprocal-rank-fusion constant.
    pub rrf_k: f32,
    /// Second-stage ranking of the fused hits.
    pub rerank: RerankMode,
    /// How many fused hits the re-ranker scores (then `top_k` are kept).
    pub rerank_candidates: usize,
    /// Each source put in the prompt is cut to its this many sentences closest to the
    /// question (in their order); 0 sends whole chunks.
    pub passage_sentences: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RerankMode {
    None,
    /// Score each candidate by its sentence closest to the question (MiniLM).
    Embedding,
}

/// Versioned prompts: `<dir>/<name>/<version>.toml`, and which version of each is live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptsConfig {
    /// Folder of prompt files, besides the ones built into the binary (relative to the
    /// working directory); a missing folder is not an error.
    pub dir: PathBuf,
    /// Prompt name → active version, until an activation is recorded.
    pub active: BTreeMap<String, String>,
    /// Prompt name → suites a version must pass to be activated.
    #[serde(default)]
    pub gates: BTreeMap<String, Vec<String>>,
}

/// `[eval]`: where suites live, who judges, and what runs on a schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Folder of suite files besides the built-in ones (relative to the working directory).
    pub suites_dir: PathBuf,
    pub judge: JudgeConfig,
    /// How often `askacme serve` looks for a scheduled suite that is due.
    pub schedule_poll_secs: u64,
    #[serde(default)]
    pub schedule: Vec<ScheduleConfig>,
}

/// `[[eval.schedule]]`: a suite `askacme serve` runs every `every` (one instance at a time,
/// by a lease in the database), once per model in `models` (the drift canary: each run is
/// compared with the first), or with the routes when `models` is empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub suite: String,
    /// `7d`, `12h`, `30m`.
    pub every: String,
    /// Grade `judge` assertions (a suite with them needs this).
    #[serde(default)]
    pub judge: bool,
    #[serde(default)]
    pub models: Vec<String>,
    /// A pass rate this far below the first run's is drift.
    #[serde(default = "default_drift_margin")]
    pub drift_margin: f64,
}

fn default_drift_margin() -> f64 {
    0.1
}

impl ScheduleConfig {
    /// `every` in milliseconds (validated at load).
    pub fn every_ms(&self) -> i64 {
        parse_duration_ms(&self.every).unwrap_or(i64::MAX)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    /// Alias or deployment that grades answers.
    pub model: String,
    /// Let the judge grade answers of its own model.
    pub allow_self_judging: bool,
}

/// The question categories the classifier assigns and routes are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    PolicyLookup,
    Faq,
    Schedule,
    Comparison,
    Analysis,
    MultiStep,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::PolicyLookup,
        Category::Faq,
        Category::Schedule,
        Category::Comparison,
        Category::Analysis,
        Category::MultiStep,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::PolicyLookup => "policy_lookup",
            Category::Faq => "faq",
            Category::Schedule => "schedule",
            Category::Comparison => "comparison",
            Category::Analysis => "analysis",
            Category::MultiStep => "multi_step",
        }
    }
}

/// The `/v1/ask` pipeline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssistantConfig {
    /// Name of the prompt the assistant answers with (its version comes from `prompts.active`).
    pub prompt: String,
    /// Retrieval confidence (best question–chunk cosine similarity) below which the answer is
    /// `no_answer` without calling a model.
    pub min_confidence: f32,
    /// Longer questions are refused with 400.
    pub max_question_chars: usize,
    /// Category → model alias or deployment; categories not listed use the prompt's model.
    #[serde(default)]
    pub routes: BTreeMap<Category, String>,
    /// Answers from a cheap tier that fail validation are asked again of a stronger one.
    #[serde(default)]
    pub cascade: Option<CascadeConfig>,
    /// A question within this many seconds of the previous one in its conversation (or from
    /// the same user), at least `rephrase_similarity` similar and not the same words, marks
    /// the previous answer rephrased.
    pub rephrase_window_secs: u64,
    pub rephrase_similarity: f32,
    /// A question containing one of these (any case) asks for a human: its answer is marked
    /// escalated.
    pub escalation_phrases: Vec<String>,
    /// Who to contact instead, shown by the web chat's "contact HR / a human" button.
    pub escalation_contact: String,
    /// A follow-up is read against its conversation's turns of the last this many seconds.
    pub conversation_window_secs: u64,
    /// How many earlier turns a follow-up's rewrite sees.
    pub conversation_turns: u32,
    /// Answers (and the conversations they make) older than this many days are deleted;
    /// 0 keeps them.
    pub conversation_retention_days: u64,
    /// Alias or deployment that rewrites follow-ups into standalone questions; empty: rules.
    #[serde(default)]
    pub rewrite_model: String,
}

/// The cascade: an answer from `from` without a citation, with figures or names no source
/// holds, or declining although retrieval was confident, is retried once on `to`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CascadeConfig {
    pub from: String,
    pub to: String,
    /// Retrieval confidence at or above which a "no information" answer counts as a failure.
    pub decline_confidence: f32,
}

/// Question classification: keyword rules first, then the nearest centroid of labelled examples.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// A centroid decides only when the question is at least this similar to it.
    pub min_similarity: f32,
    #[serde(default)]
    pub rules: Vec<ClassifierRule>,
    #[serde(default)]
    pub examples: Vec<ClassifierExample>,
}

/// A question containing any keyword (case-insensitive) gets the category and/or department.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierRule {
    pub keywords: Vec<String>,
    #[serde(default)]
    pub category: Option<Category>,
    #[serde(default)]
    pub department: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierExample {
    pub text: String,
    pub category: Category,
    pub department: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderConfig {
    Openai(RemoteProviderConfig),
    Anthropic(RemoteProviderConfig),
    Local(LocalProviderConfig),
}

/// An HTTP provider: OpenAI-compatible or Anthropic Messages API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteProviderConfig {
    /// e.g. `https://api.openai.com/v1` or `https://api.anthropic.com`.
    pub base_url: String,
    /// A literal key or `env::NAME`, read from the environment at start-up.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Whole-request timeout (for streams: until the last byte).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Anthropic requires `max_tokens`; used when the caller sends none.
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: u32,
    /// Anthropic only: mark the system prompt as a prompt-cache breakpoint
    /// (`cache_control: {type: ephemeral}`), billed at `cache_write` once and `cached_input`
    /// on later requests with the same prefix.
    #[serde(default)]
    pub cache_system_prompt: bool,
}

fn default_timeout_secs() -> u64 {
    120
}
fn default_connect_timeout_secs() -> u64 {
    5
}
fn default_max_tokens() -> u32 {
    4096
}

/// llama.cpp generation and candle embeddings in this process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalProviderConfig {
    /// CPU threads per generation; 0 = all cores.
    pub threads: usize,
    /// Generations running at once per model (one llama.cpp context each); more wait in line.
    pub max_concurrent: usize,
    /// Context window per generation (prompt + answer), in tokens.
    pub context_tokens: u32,
    /// Prompt tokens evaluated per llama.cpp batch.
    pub batch_tokens: u32,
    /// Keep each context's evaluated tokens between generations and evaluate only what
    /// differs from the last prompt (the system prompt and chat template are the same for
    /// every question): prefill is what a local answer's first text waits for.
    #[serde(default = "safety::yes")]
    pub reuse_prefix: bool,
    /// Greedy answers: up to this many next tokens are guessed from the prompt and the answer
    /// so far (prompt-lookup decoding) and checked by the model in one batch; only guesses the
    /// model would pick itself are kept. 0 (the default) decodes one token per call: on the
    /// 2-core machine of docs/benchmarks.md a checked guess cost most of a decode call, and
    /// unkept guesses cost more than kept ones saved.
    #[serde(default)]
    pub draft_tokens: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// Name of an entry in `[providers]`.
    pub provider: String,
    /// Upstream model name; for `local`, a catalog name (`askacme models list`) or a path to a GGUF file.
    pub model: String,
    #[serde(default)]
    pub price: PriceConfig,
}

/// USD per million tokens. Cached input and cache writes default to the input price.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    #[serde(default)]
    pub input: UsdPerMtok,
    #[serde(default)]
    pub cached_input: Option<UsdPerMtok>,
    #[serde(default)]
    pub cache_write: Option<UsdPerMtok>,
    #[serde(default)]
    pub output: UsdPerMtok,
}

impl Config {
    /// Built-in defaults, overlaid with the file at `path` when given, then validated.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            None => Self::from_layers(None),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
                    path: path.to_owned(),
                    error,
                })?;
                Self::from_layers(Some((path, &text)))
            }
        }
    }

    /// Built-in defaults overlaid with the text of a config file (used by tests).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::from_layers(Some((Path::new("<string>"), text)))
    }

    fn from_layers(user: Option<(&Path, &str)>) -> Result<Self, ConfigError> {
        let parse = |path: &Path, text: &str| {
            text.parse::<toml::Table>()
                .map_err(|e| ConfigError::Syntax {
                    path: path.to_owned(),
                    message: e.to_string(),
                })
        };
        let mut table = parse(Path::new("<built-in defaults>"), DEFAULT_CONFIG)?;
        if let Some((path, text)) = user {
            overlay(&mut table, parse(path, text)?);
        }
        Self::from_table(table)
    }

    fn from_table(table: toml::Table) -> Result<Self, ConfigError> {
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| ConfigError::invalid(e.path().to_string(), e.inner().to_string()))?;
        config.resolve_paths();
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self) {
        let data_dir = self
            .storage
            .data_dir
            .clone()
            .unwrap_or_else(default_data_dir);
        if self.storage.database_url.is_empty() {
            self.storage.database_url =
                format!("sqlite://{}", data_dir.join("askacme.db").display());
        }
        if self.storage.models_dir.is_empty() {
            self.storage.models_dir = data_dir.join("models").display().to_string();
        }
        if self.safety.learned_head.is_empty() {
            self.safety.learned_head = Path::new(&self.storage.models_dir)
                .join("safety")
                .join("injection-head.json")
                .display()
                .to_string();
        }
        self.storage.data_dir = Some(data_dir);
    }

    fn validate(&self) -> Result<(), ConfigError> {
        // Every number has bounds: a value past them is a typo, and an unbounded one can
        // overflow instant arithmetic or size an allocation on the request path.
        check_range(
            "server.max_body_bytes",
            self.server.max_body_bytes,
            1024..=1 << 30,
        )?;
        check_range("kb.chunk_max_chars", self.kb.chunk_max_chars, 100..=100_000)?;
        if self.kb.chunk_overlap_chars >= self.kb.chunk_max_chars / 2 {
            return Err(ConfigError::invalid(
                "kb.chunk_overlap_chars",
                "must be less than half of kb.chunk_max_chars",
            ));
        }
        check_range("kb.top_k", self.kb.top_k, 1..=50)?;
        check_range(
            "assistant.rephrase_window_secs",
            self.assistant.rephrase_window_secs,
            1..=86_400,
        )?;
        check_range(
            "assistant.rephrase_similarity",
            self.assistant.rephrase_similarity,
            0.0..=1.0,
        )?;
        check_range(
            "kb.rerank_candidates",
            self.kb.rerank_candidates,
            self.kb.top_k..=1000,
        )?;
        check_range("kb.candidates", self.kb.candidates, 1..=10_000)?;
        check_range("kb.passage_sentences", self.kb.passage_sentences, 0..=100)?;
        check_range("kb.rrf_k", self.kb.rrf_k, 1.0..=10_000.0)?;
        self.check_model("kb.embedding_model", &self.kb.embedding_model)?;
        if !self.cache.semantic_verify_model.is_empty() {
            self.check_model(
                "cache.semantic_verify_model",
                &self.cache.semantic_verify_model,
            )?;
        }
        self.validate_safety()?;
        let endpoint = &self.telemetry.otlp_endpoint;
        if !endpoint.is_empty()
            && !endpoint.starts_with("http://")
            && !endpoint.starts_with("https://")
        {
            return Err(ConfigError::invalid(
                "telemetry.otlp_endpoint",
                "must be an http:// or https:// URL (the OTLP/HTTP collector), or empty",
            ));
        }
        check_range(
            "telemetry.export_interval_ms",
            self.telemetry.export_interval_ms,
            10..=60_000,
        )?;
        self.check_model("eval.judge.model", &self.eval.judge.model)?;
        check_range(
            "eval.schedule_poll_secs",
            self.eval.schedule_poll_secs,
            1..=86_400,
        )?;
        for (i, schedule) in self.eval.schedule.iter().enumerate() {
            let key = format!("eval.schedule[{i}]");
            let every = parse_duration_ms(&schedule.every)
                .map_err(|m| ConfigError::invalid(format!("{key}.every"), m))?;
            if every < 1000 {
                return Err(ConfigError::invalid(format!("{key}.every"), "at least 1s"));
            }
            check_range(
                &format!("{key}.drift_margin"),
                schedule.drift_margin,
                0.0..=1.0,
            )?;
            for (j, model) in schedule.models.iter().enumerate() {
                self.check_model(&format!("{key}.models[{j}]"), model)?;
            }
        }
        if !self.prompts.active.contains_key(&self.assistant.prompt) {
            return Err(ConfigError::invalid(
                "assistant.prompt",
                format!(
                    "no active version for prompt `{}` in [prompts.active]",
                    self.assistant.prompt
                ),
            ));
        }
        check_range(
            "assistant.min_confidence",
            self.assistant.min_confidence,
            0.0..=1.0,
        )?;
        check_range(
            "assistant.max_question_chars",
            self.assistant.max_question_chars,
            10..=100_000,
        )?;
        for (category, model) in &self.assistant.routes {
            self.check_model(&format!("assistant.routes.{}", category.as_str()), model)?;
        }
        if !self.assistant.rewrite_model.is_empty() {
            self.check_model("assistant.rewrite_model", &self.assistant.rewrite_model)?;
        }
        check_range(
            "assistant.conversation_window_secs",
            self.assistant.conversation_window_secs,
            1..=30 * 86_400,
        )?;
        check_range(
            "assistant.conversation_turns",
            self.assistant.conversation_turns,
            1..=20,
        )?;
        if let Some(cascade) = &self.assistant.cascade {
            self.check_model("assistant.cascade.from", &cascade.from)?;
            self.check_model("assistant.cascade.to", &cascade.to)?;
            if cascade.from == cascade.to {
                return Err(ConfigError::invalid(
                    "assistant.cascade.to",
                    "must differ from assistant.cascade.from",
                ));
            }
            check_range(
                "assistant.cascade.decline_confidence",
                cascade.decline_confidence,
                0.0..=1.0,
            )?;
        }
        check_range(
            "classifier.min_similarity",
            self.classifier.min_similarity,
            0.0..=1.0,
        )?;
        for (i, rule) in self.classifier.rules.iter().enumerate() {
            let key = format!("classifier.rules[{i}]");
            if rule.category.is_none() && rule.department.is_none() {
                return Err(ConfigError::invalid(
                    key,
                    "needs a category, a department or both",
                ));
            }
            if rule.keywords.iter().any(|k| k.trim().is_empty()) || rule.keywords.is_empty() {
                return Err(ConfigError::invalid(
                    format!("{key}.keywords"),
                    "must list non-empty keywords",
                ));
            }
        }
        if !self.storage.database_url.starts_with("sqlite:") {
            return Err(ConfigError::invalid(
                "storage.database_url",
                "only sqlite:// URLs are supported by this build",
            ));
        }
        for (name, provider) in &self.providers {
            match provider {
                ProviderConfig::Openai(remote) | ProviderConfig::Anthropic(remote) => {
                    let key = format!("providers.{name}");
                    reqwest::Url::parse(&remote.base_url).map_err(|e| {
                        ConfigError::invalid(format!("{key}.base_url"), format!("not a URL: {e}"))
                    })?;
                    let appended: &[&str] = match provider {
                        ProviderConfig::Anthropic(_) => &["/v1/messages", "/messages", "/v1"],
                        _ => &["/chat/completions", "/completions", "/embeddings"],
                    };
                    check_base_url_suffix(&format!("{key}.base_url"), &remote.base_url, appended)?;
                    if let Some(secret) = &remote.api_key {
                        secret
                            .resolve()
                            .map_err(|m| ConfigError::invalid(format!("{key}.api_key"), m))?;
                    }
                    check_range(
                        &format!("{key}.timeout_secs"),
                        remote.timeout_secs,
                        1..=3600,
                    )?;
                    check_range(
                        &format!("{key}.connect_timeout_secs"),
                        remote.connect_timeout_secs,
                        1..=300,
                    )?;
                    check_range(
                        &format!("{key}.default_max_tokens"),
                        remote.default_max_tokens,
                        1..=1_000_000,
                    )?;
                }
                ProviderConfig::Local(local) => {
                    let key = format!("providers.{name}");
                    check_range(&format!("{key}.threads"), local.threads, 0..=1024)?;
                    check_range(
                        &format!("{key}.max_concurrent"),
                        local.max_concurrent,
                        1..=64,
                    )?;
                    check_range(
                        &format!("{key}.context_tokens"),
                        local.context_tokens,
                        256..=1 << 20,
                    )?;
                    check_range(
                        &format!("{key}.batch_tokens"),
                        local.batch_tokens,
                        1..=1 << 16,
                    )?;
                    check_range(&format!("{key}.draft_tokens"), local.draft_tokens, 0..=64)?;
                }
            }
        }
        for (name, deployment) in &self.deployments {
            if !self.providers.contains_key(&deployment.provider) {
                let known: Vec<&str> = self.providers.keys().map(String::as_str).collect();
                return Err(ConfigError::invalid(
                    format!("deployments.{name}.provider"),
                    format!(
                        "unknown provider `{}` (defined: {})",
                        deployment.provider,
                        known.join(", ")
                    ),
                ));
            }
            if deployment.model.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("deployments.{name}.model"),
                    "must not be empty",
                ));
            }
        }
        for (i, model) in self.server.warm_up.iter().enumerate() {
            self.check_model(&format!("server.warm_up[{i}]"), model)?;
        }
        let deployments = self.deployments.keys().map(String::as_str).collect();
        gateway::validate_aliases(&self.aliases, &deployments)?;
        gateway::validate_router(&self.router)?;
        // A year at most: expiry times are computed in milliseconds.
        check_range("cache.ttl_secs", self.cache.ttl_secs, 1..=31_536_000)?;
        check_range(
            "cache.memory_entries",
            self.cache.memory_entries,
            0..=10_000_000,
        )?;
        check_range(
            "cache.semantic_threshold",
            self.cache.semantic_threshold,
            0.5..=1.0,
        )?;
        check_range("auth.key_cache_ms", self.auth.key_cache_ms, 0..=3_600_000)?;
        if self.aliases.contains_key("auto") || self.deployments.contains_key("auto") {
            return Err(ConfigError::invalid(
                "aliases.auto",
                "`auto` is the difficulty-routed model ([auto]); pick another name",
            ));
        }
        self.check_model("auto.embedding_model", &self.auto.embedding_model)?;
        self.check_model("auto.easy", &self.auto.easy)?;
        self.check_model("auto.hard", &self.auto.hard)?;
        let has = |d| self.auto.examples.iter().any(|e| e.difficulty == d);
        let both = has(Difficulty::Easy) && has(Difficulty::Hard);
        if !self.auto.examples.is_empty() && !both {
            return Err(ConfigError::invalid(
                "auto.examples",
                "needs examples of both difficulties, easy and hard",
            ));
        }
        gateway::validate_breaker(&self.breaker)?;
        let redis_url = self.storage.redis_url.expose();
        if !redis_url.is_empty() && !redis_url.starts_with("redis://") {
            return Err(ConfigError::invalid(
                "storage.redis_url",
                "must be empty or a redis:// URL",
            ));
        }
        if let Some(secret) = &self.auth.master_key {
            let key = secret
                .resolve()
                .map_err(|m| ConfigError::invalid("auth.master_key", m))?;
            if key.expose().len() < 16 {
                return Err(ConfigError::invalid(
                    "auth.master_key",
                    "must be at least 16 characters",
                ));
            }
        }
        if self.server.metrics_auth == Some(MetricsAuth::Master) && !self.auth.enabled {
            return Err(ConfigError::invalid(
                "server.metrics_auth",
                "\"master\" needs [auth] enabled = true and a master_key",
            ));
        }
        if self.auth.enabled && self.auth.master_key.is_none() {
            return Err(ConfigError::invalid(
                "auth.master_key",
                "is required when auth.enabled = true (virtual keys are created with it)",
            ));
        }
        Ok(())
    }

    fn check_model(&self, key: &str, model: &str) -> Result<(), ConfigError> {
        if self.aliases.contains_key(model) || self.deployments.contains_key(model) {
            Ok(())
        } else {
            Err(ConfigError::invalid(
                key,
                format!("`{model}` is neither an alias nor a deployment"),
            ))
        }
    }

    fn validate_safety(&self) -> Result<(), ConfigError> {
        check_range(
            "safety.leak_overlap_words",
            self.safety.leak_overlap_words,
            4..=1000,
        )?;
        check_patterns("safety.banned_patterns", &self.safety.banned_patterns)?;
        for (name, guardrail) in &self.guardrails {
            let key = format!("guardrails.{name}");
            if guardrail.models.is_empty() && guardrail.keys.is_empty() {
                return Err(ConfigError::invalid(
                    key,
                    "applies to nothing: list `models` (aliases or deployments) or `keys` (key names)",
                ));
            }
            for (i, model) in guardrail.models.iter().enumerate() {
                // `auto` is a name callers use too; the policy applies to what they asked for.
                if model != "auto" {
                    self.check_model(&format!("{key}.models[{i}]"), model)?;
                }
            }
            check_patterns(
                &format!("{key}.banned_patterns"),
                &guardrail.banned_patterns,
            )?;
        }
        Ok(())
    }

    /// What a policy's canary token is derived from: this installation's data directory and
    /// the policy's name (see `safety::Canary`).
    pub fn canary_seed(&self, policy: &str) -> String {
        let data_dir = self.storage.data_dir.as_deref().unwrap_or(Path::new(""));
        format!("{}|{policy}", data_dir.display())
    }

    pub fn models_dir(&self) -> PathBuf {
        PathBuf::from(&self.storage.models_dir)
    }
}

/// Every pattern must compile as a regular expression.
fn check_patterns(key: &str, patterns: &[String]) -> Result<(), ConfigError> {
    for (i, pattern) in patterns.iter().enumerate() {
        regex::Regex::new(pattern)
            .map_err(|e| ConfigError::invalid(format!("{key}[{i}]"), e.to_string()))?;
    }
    Ok(())
}

/// `7d`, `24h`, `30m`, `90s` as milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}`: give a unit (d, h, m or s), e.g. 7d"))?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("`{text}`: not a number of days, hours, minutes or seconds"))?;
    let unit_ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1000,
        other => return Err(format!("`{text}`: unknown unit `{other}` (d, h, m or s)")),
    };
    n.checked_mul(unit_ms)
        .ok_or_else(|| format!("`{text}`: too long"))
}

/// A number outside `range` is refused, naming the key and the bounds (NaN is outside any).
pub(crate) fn check_range<T>(
    key: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display,
{
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!(
                "must be between {} and {} (is {value})",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// The gateway appends the endpoint path itself (OpenAI-compatible: `/chat/completions`,
/// `/embeddings` after the `/v1` base; Anthropic: `/v1/messages` after the host); a base URL
/// that already ends in it would call `…/chat/completions/chat/completions`.
fn check_base_url_suffix(key: &str, base_url: &str, appended: &[&str]) -> Result<(), ConfigError> {
    let trimmed = base_url.trim_end_matches('/');
    for suffix in appended {
        if let Some(base) = trimmed.strip_suffix(suffix) {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "`{base_url}` ends in `{suffix}`, which AskAcme adds itself; use `{base}` instead"
                ),
            ));
        }
    }
    Ok(())
}

fn default_data_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("ASKACME_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/askacme")
}

/// Lays `top` over `base`: tables merge key by key, any other value replaces.
fn overlay(base: &mut toml::Table, top: toml::Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(top_table)) => {
                overlay(base_table, top_table)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_without_a_file() {
        let config = Config::load(None).unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            config.aliases["strong"].route().primaries,
            vec![("qwen2.5-coder-1.5b".to_string(), 1)]
        );
        assert!(config.storage.database_url.starts_with("sqlite://"));
    }

    #[test]
    fn user_file_overlays_defaults() {
        let config = Config::from_toml_str(
            r#"
            [server]
            listen = "0.0.0.0:9000"
            [providers.openai]
            kind = "openai"
            base_url = "http://127.0.0.1:1/v1"
            [deployments.gpt]
            provider = "openai"
            model = "gpt-4o-mini"
            price = { input = 0.15, cached_input = 0.075, output = 0.6 }
            "#,
        )
        .unwrap();
        assert_eq!(config.server.listen.port(), 9000);
        assert_eq!(
            config.server.max_body_bytes, 4194304,
            "untouched keys keep their default"
        );
        assert!(
            config.deployments.contains_key("minilm"),
            "built-in deployments remain"
        );
        assert_eq!(config.deployments["gpt"].price.input.micro_usd(), 150_000);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[server]\nlisten = \"nope\"", "server.listen"),
            ("[server]\nlisen = \"127.0.0.1:1\"", "server"),
            ("[aliases]\nstrong = [\"missing\"]", "aliases.strong[0]"),
            (
                "[deployments.x]\nprovider = \"nowhere\"\nmodel = \"m\"",
                "deployments.x.provider",
            ),
            (
                "[deployments.x]\nprovider = \"local\"\nmodel = \"m\"\nprice = { input = -1 }",
                "deployments.x.price.input",
            ),
            (
                "[providers.o]\nkind = \"openai\"\nbase_url = \"not a url\"",
                "providers.o.base_url",
            ),
            (
                "[providers.o]\nkind = \"openai\"\nbase_url = \"http://x\"\napi_key = \"env::ASKACME_TEST_SURELY_UNSET\"",
                "providers.o.api_key",
            ),
            (
                "[providers.local]\nmax_concurrent = 0",
                "providers.local.max_concurrent",
            ),
            ("[providers.o]\nkind = \"bedrock\"", "providers.o"),
            ("[kb]\nchunk_overlap_chars = 900", "kb.chunk_overlap_chars"),
            ("[kb]\nchunk_max_chars = 10", "kb.chunk_max_chars"),
            ("[kb]\ntop_k = 0", "kb.top_k"),
            ("[kb]\nrerank = \"llm\"", "kb.rerank"),
            ("[kb]\nrerank_candidates = 2", "kb.rerank_candidates"),
            ("[kb]\npassage_sentences = 101", "kb.passage_sentences"),
            ("[kb]\nembedding_model = \"nope\"", "kb.embedding_model"),
            (
                "[cache]\nsemantic_verify_model = \"nope\"",
                "cache.semantic_verify_model",
            ),
            ("[assistant]\nprompt = \"nope\"", "assistant.prompt"),
            (
                "[assistant]\nmin_confidence = 2.0",
                "assistant.min_confidence",
            ),
            ("[assistant.routes]\nfaq = \"nope\"", "assistant.routes.faq"),
            (
                "[telemetry]\notlp_endpoint = \"grpc://collector:4317\"",
                "telemetry.otlp_endpoint",
            ),
            (
                "[assistant]\nrewrite_model = \"nope\"",
                "assistant.rewrite_model",
            ),
            (
                "[assistant]\nconversation_turns = 0",
                "assistant.conversation_turns",
            ),
            ("[assistant.routes]\ngossip = \"fast\"", "assistant.routes"),
            (
                "[assistant.cascade]\nfrom = \"fast\"\nto = \"fast\"\ndecline_confidence = 0.5",
                "assistant.cascade.to",
            ),
            (
                "[aliases.chat]\ndeployments = [\"minilm\"]\nweights = [1, 2]",
                "aliases.chat.weights",
            ),
            (
                "[aliases.chat]\ndeployments = [\"minilm\"]\nfallback = [\"nope\"]",
                "aliases.chat.fallback[0]",
            ),
            (
                "[aliases.a]\ndeployments = [\"minilm\"]\nfallback = [\"b\"]\n[aliases.b]\ndeployments = [\"minilm\"]\nfallback = [\"a\"]",
                "aliases.a.fallback",
            ),
            ("[router]\nmax_attempts = 0", "router.max_attempts"),
            // Values without an upper bound would overflow instants or size allocations.
            (
                "[router]\nrequest_timeout_secs = 9223372036854775807",
                "router.request_timeout_secs",
            ),
            (
                "[breaker]\ncooldown_secs = 9223372036854775807",
                "breaker.cooldown_secs",
            ),
            (
                "[breaker]\nwindow_secs = 1000000000000",
                "breaker.window_secs",
            ),
            (
                "[router]\nretry_budget_window_secs = 1000000000000",
                "router.retry_budget_window_secs",
            ),
            (
                "[router]\nbackoff_max_ms = 1000000000000",
                "router.backoff_max_ms",
            ),
            (
                "[router]\nmax_retry_after_secs = 1000000000000",
                "router.max_retry_after_secs",
            ),
            ("[cache]\nttl_secs = 1000000000000", "cache.ttl_secs"),
            ("[auth]\nkey_cache_ms = 1000000000000", "auth.key_cache_ms"),
            ("[kb]\nrrf_k = nan", "kb.rrf_k"),
            (
                "[providers.o]\nkind = \"openai\"\nbase_url = \"http://x/v1\"\ntimeout_secs = 100000000",
                "providers.o.timeout_secs",
            ),
            (
                "[providers.o]\nkind = \"openai\"\nbase_url = \"http://x/v1/chat/completions\"",
                "providers.o.base_url",
            ),
            (
                "[providers.a]\nkind = \"anthropic\"\nbase_url = \"https://api.anthropic.com/v1/messages/\"",
                "providers.a.base_url",
            ),
            (
                "[providers.a]\nkind = \"anthropic\"\nbase_url = \"https://api.anthropic.com/v1\"",
                "providers.a.base_url",
            ),
            ("[cache]\nttl_secs = 0", "cache.ttl_secs"),
            ("[auto]\nhard = \"nope\"", "auto.hard"),
            (
                "[auto]\nexamples = [{ text = \"x\", difficulty = \"easy\" }]",
                "auto.examples",
            ),
            ("[breaker]\nfailure_rate = 0.0", "breaker.failure_rate"),
            ("[auth]\nenabled = true", "auth.master_key"),
            ("[server]\nmetrics_auth = \"master\"", "server.metrics_auth"),
            ("[auth]\nmaster_key = \"short\"", "auth.master_key"),
            ("[storage]\nredis_url = \"http://x\"", "storage.redis_url"),
            (
                "[[classifier.rules]]\nkeywords = [\"x\"]",
                "classifier.rules[0]",
            ),
            (
                "[[classifier.examples]]\ntext = \"x\"\ncategory = \"chat\"\ndepartment = \"hr\"",
                "classifier.examples[0].category",
            ),
        ];
        for (text, key) in cases {
            let err = Config::from_toml_str(text).unwrap_err().to_string();
            assert!(
                err.contains(key),
                "error for {text:?} should name {key}: {err}"
            );
        }
    }

    #[test]
    fn example_file_is_valid_and_documents_every_default_key() {
        let example = include_str!("../../askacme.example.toml");
        Config::from_toml_str(example).unwrap();
        let defaults: toml::Table = DEFAULT_CONFIG.parse().unwrap();
        for (section, table) in &defaults {
            for key in table.as_table().unwrap().keys() {
                assert!(
                    example.contains(key.as_str()),
                    "askacme.example.toml does not mention {section}.{key}"
                );
            }
        }
        for key in [
            "data_dir",
            "api_key",
            "base_url",
            "timeout_secs",
            "connect_timeout_secs",
            "default_max_tokens",
            "cached_input",
            "cache_write",
            "cache_system_prompt",
        ] {
            assert!(
                example.contains(key),
                "askacme.example.toml does not document {key}"
            );
        }
    }

    #[test]
    fn syntax_errors_are_reported() {
        let err = Config::from_toml_str("[server\nlisten=1").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    }
}
