//! The assistant: `Assistant::handle` takes a question through every stage, top to bottom:
//! input guard (length, rules, personal data, then the learned detector on the embedding) →
//! conversation (a follow-up becomes a standalone question) → classify → cache (exact, then
//! semantic) → retrieve → route → generate (through the gateway, streamed when the caller
//! streams; with a cascade, a failing cheap answer is asked again of the strong tier) → output
//! guard sentence by sentence (leaks, personal data, policy, grounding per cited source,
//! citations) → cache put → answer. Each stage runs in its own tracing span and reports its
//! latency in the answer; a streamed answer's sentences go out as they pass the output guard.

pub mod answer;
pub mod cascade;
pub mod citations;
pub mod classify;
pub mod conversation;
pub mod grounding;
pub mod release;
pub mod retrieve;
pub mod route;
pub mod safety;
pub mod verify;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::cache::semantic::{Lookup, Probe, SemanticCache, Verifier};
use crate::cache::{self, CacheDirective, CacheStatus, ResponseCache};
use crate::config::{AssistantConfig, Category, Config, SafetyConfig};
use crate::gateway::GatewayError;
use crate::gateway::{Gateway, ModelWait, RequestContext};
use crate::kb::embed::{GatewayEmbedder, TextEmbedder, passage};
use crate::kb::search::{FusionSettings, Hit, Retriever, SearchError};
use crate::models::embedder::cosine;
use crate::prompts::{PromptError, Registry};
use crate::providers::types::{ChatRequest, StreamOptions};
use crate::safety::learned::InjectionHead;
use crate::safety::{
    Canary, InputGuard, OutputGuard, Reason, Redaction, SafetyError, Shown, Verdict,
};
use crate::store::{AnswerRow, ConversationTurn, Database, SemanticEntry, now_ms};
use answer::{AnswerError, Generation};
use classify::{Classification, Classifier};
use release::{Release, Step, Stop};
use retrieve::Scope;
use verify::ModelVerifier;

/// The guard policy name of the assistant's own guards on log rows (`assistant:input:…`);
/// gateway guardrails use their `[guardrails.NAME]`.
pub const ASSISTANT_POLICY: &str = "assistant";

/// How long a snippet of a source is, in characters.
const SNIPPET_CHARS: usize = 240;

#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error("retrieval: {0}")]
    Search(#[from] SearchError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Safety(#[from] SafetyError),
}

impl From<AnswerError> for AskError {
    fn from(error: AnswerError) -> Self {
        match error {
            AnswerError::Prompt(e) => AskError::Prompt(e),
            AnswerError::Gateway(e) => AskError::Gateway(e),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Escalation {
    /// The tier whose answer failed validation.
    pub from: String,
    pub reason: cascade::EscalationReason,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheMatch {
    pub question: String,
    pub similarity: f32,
}

/// A cached answer about to be served: how it was found and what it saves.
struct CachedAnswer {
    status: CacheStatus,
    saved_micro_usd: u64,
    matched: Option<CacheMatch>,
}

/// `POST /v1/ask`'s body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AskRequest {
    pub question: String,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// Search only this collection (`hr`, `it`, …).
    #[serde(default)]
    pub collection: Option<String>,
    /// `"no-store"`: neither read nor write the response cache.
    #[serde(default)]
    pub cache: Option<CacheDirective>,
    /// Server-sent events as the answer is written (the HTTP layer's choice; the pipeline
    /// streams when it is handed somewhere to send them).
    #[serde(default)]
    pub stream: bool,
}

/// What a streamed answer sends as it goes; the finished `AskResponse` (or the error) comes
/// last, from the caller.
#[derive(Debug, Clone)]
pub enum AskEvent {
    /// Text that passed the output guard, to append to what was shown.
    Delta(String),
    /// Every source cited so far, numbered as the text cites them.
    Sources(Vec<Source>),
}

/// Where a streamed answer's events go.
pub type Events = tokio::sync::mpsc::UnboundedSender<AskEvent>;

/// What an evaluation changes about how a question is answered: another version of the
/// assistant's prompt than the live one, another model than the route's, or a fixed context
/// as the only source (retrieval and the answer cache are skipped). Not part of the HTTP API.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub prompt_version: Option<String>,
    pub model: Option<String>,
    pub context: Option<String>,
}

impl AskRequest {
    pub fn new(question: impl Into<String>) -> Self {
        Self {
            question: question.into(),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// An answer grounded in the returned sources.
    Success,
    /// The knowledge base does not hold the answer (retrieval too weak, the model said so, or
    /// the answer stated what its sources do not).
    NoAnswer,
    /// The input guard refused the question (`filter` says why).
    Filtered,
    /// The output guard refused the answer (`filter` says why).
    OutputFiltered,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::NoAnswer => "no_answer",
            Status::Filtered => "filtered",
            Status::OutputFiltered => "output_filtered",
        }
    }
}

/// Which guard refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardStage {
    Input,
    Output,
}

impl GuardStage {
    pub fn as_str(self) -> &'static str {
        match self {
            GuardStage::Input => "input",
            GuardStage::Output => "output",
        }
    }
}

/// `/v1/ask`'s `filter`: which guard refused, why, and the detail.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Filter {
    pub stage: GuardStage,
    pub reason: Reason,
    pub detail: String,
    /// 1.0 for a rule; the detector's probability for the learned one.
    pub score: f32,
}

impl Filter {
    fn new(stage: GuardStage, verdict: Verdict) -> Self {
        Self {
            stage,
            reason: verdict.reason,
            detail: verdict.detail,
            score: verdict.score,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    /// The number the answer cites it by (`[n]`).
    pub n: usize,
    /// The chunk's id: `GET /v1/sources/{id}` shows it in its document.
    pub id: i64,
    pub title: String,
    pub path: String,
    pub collection: String,
    pub heading: String,
    pub snippet: String,
    /// Fused retrieval score (reciprocal rank fusion).
    pub score: f32,
    /// Cosine similarity between question and chunk, when the dense retriever found it.
    pub similarity: Option<f32>,
    /// Whether the answer cites it; uncited sources are listed only when nothing was cited.
    pub cited: bool,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct AskUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// Milliseconds spent in each stage; 0 for a stage that did not run.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct StageLatency {
    pub input_guard: f64,
    pub embed: f64,
    pub classify: f64,
    pub retrieve: f64,
    pub route: f64,
    pub generate: f64,
    pub output_guard: f64,
    pub grounding: f64,
    pub citations: f64,
    /// Reading the conversation and rewriting a follow-up (embedding it included).
    #[serde(default)]
    pub conversation: f64,
}

impl StageLatency {
    /// `(stage, milliseconds)` of every stage, named as serialised.
    pub fn stages(&self) -> [(&'static str, f64); 10] {
        [
            ("input_guard", self.input_guard),
            ("embed", self.embed),
            ("conversation", self.conversation),
            ("classify", self.classify),
            ("retrieve", self.retrieve),
            ("route", self.route),
            ("generate", self.generate),
            ("output_guard", self.output_guard),
            ("grounding", self.grounding),
            ("citations", self.citations),
        ]
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AskResponse {
    pub answer: String,
    pub status: Status,
    pub sources: Vec<Source>,
    pub category: Category,
    pub department: Option<String>,
    /// Collection searched; `None` means all.
    pub collection: Option<String>,
    /// Best question–chunk similarity: what the no-answer threshold is compared with.
    pub retrieval_confidence: f32,
    /// Figures and names in the model's answer that no source contains; when there are any,
    /// the answer was replaced by `no_answer`.
    pub ungrounded: Vec<String>,
    /// Alias or deployment that answered; `None` when no model was called.
    pub model: Option<String>,
    /// Set when the cascade found the cheap tier's answer wanting and asked the strong tier.
    pub escalation: Option<Escalation>,
    pub deployment: Option<String>,
    pub prompt_version: String,
    pub cache: CacheStatus,
    /// For a semantic hit: the earlier question whose answer this is, and how similar it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_match: Option<CacheMatch>,
    /// A follow-up in a conversation is answered as this standalone question; `None` when the
    /// question stood alone.
    #[serde(default)]
    pub standalone_question: Option<String>,
    /// Set when a guard refused (`status` `filtered` or `output_filtered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    pub usage: AskUsage,
    pub cost_micro_usd: u64,
    pub cost_usd: f64,
    /// What a cache hit saved (the answer's original cost); recorded, not in the API body.
    #[serde(skip)]
    pub saved_micro_usd: u64,
    pub latency_ms: f64,
    pub stage_latency_ms: StageLatency,
    pub request_id: String,
}

impl AskResponse {
    /// `no_answer` with nothing spent: where every answer starts.
    fn unanswered(
        prompt: &crate::prompts::Prompt,
        classification: &Classification,
        ctx: &RequestContext,
    ) -> Self {
        Self {
            answer: answer::NO_INFORMATION.to_owned(),
            status: Status::NoAnswer,
            sources: Vec::new(),
            category: classification.category,
            department: classification.department.clone(),
            collection: None,
            retrieval_confidence: 0.0,
            ungrounded: Vec::new(),
            model: None,
            escalation: None,
            deployment: None,
            prompt_version: prompt.id(),
            cache: CacheStatus::Miss,
            cache_match: None,
            standalone_question: None,
            filter: None,
            usage: AskUsage::default(),
            cost_micro_usd: 0,
            cost_usd: 0.0,
            saved_micro_usd: 0,
            latency_ms: 0.0,
            stage_latency_ms: StageLatency::default(),
            request_id: ctx.request_id.clone(),
        }
    }

    fn with_filter(mut self, stage: GuardStage, verdict: Verdict) -> Self {
        self.filter = Some(Filter::new(stage, verdict));
        self
    }
}

pub struct Assistant {
    gateway: Arc<Gateway>,
    embedder: Arc<dyn TextEmbedder>,
    retriever: Retriever,
    classifier: Classifier,
    prompts: Arc<Registry>,
    config: AssistantConfig,
    retrieval: retrieve::Settings,
    db: Database,
    cache: Arc<ResponseCache>,
    /// `None` when `cache.semantic` (or the cache) is off.
    semantic: Option<SemanticCache>,
    /// `None` unless `cache.semantic_verify_model` names one.
    verifier: Option<ModelVerifier>,
    input_guard: InputGuard,
    output_guard: OutputGuard,
    safety: SafetyConfig,
    /// In the system prompt unless `safety.canary` is off: an answer that repeats it has
    /// leaked the instructions.
    canary: Option<Canary>,
    /// Hash of every setting that shapes an answer, part of each cache key: a changed route,
    /// threshold or retrieval setting retires the cached answers.
    fingerprint: String,
}

/// A question on its way through the stages: the text they see (personal data redacted), its
/// embedding, the map back to the user's own values, and the stage clock.
struct Turn {
    question: String,
    /// Set when the question was a follow-up: the standalone question `question` now is.
    standalone: Option<String>,
    vector: Vec<f32>,
    redaction: Redaction,
    stages: StageLatency,
    /// When the last finished stage ended.
    clock: Instant,
}

impl Turn {
    /// Ends a stage: its latency goes in `slot`.
    fn lap(&mut self, slot: fn(&mut StageLatency) -> &mut f64) {
        *slot(&mut self.stages) = self.clock.elapsed().as_secs_f64() * 1000.0;
        self.clock = Instant::now();
    }

    /// The answer as the user sees it: their redacted values put back, and the standalone
    /// question it answers.
    fn shown(&self, mut response: AskResponse) -> AskResponse {
        if !self.redaction.is_empty() {
            response.answer = self.redaction.restore(&response.answer);
        }
        response.standalone_question = self.standalone.as_ref().map(|s| self.redaction.restore(s));
        response
    }
}

/// Where a streamed answer's events go; `None` for an answer returned whole.
struct Emitter<'a> {
    events: Option<&'a Events>,
    /// Whether any text went out: an answer given without a model call (a cache hit, a
    /// refusal) is sent whole at the end.
    sent: bool,
    /// Where the wait on models before the first event goes (`RequestContext::model_wait`).
    model_wait: ModelWait,
    /// The wait on models before generation began (the embedding), and when it began.
    generating: Option<(Duration, Instant)>,
}

impl<'a> Emitter<'a> {
    fn new(events: Option<&'a Events>, ctx: &RequestContext) -> Self {
        Self {
            events,
            sent: false,
            model_wait: ctx.model_wait.clone(),
            generating: None,
        }
    }

    fn streaming(&self) -> bool {
        self.events.is_some()
    }

    /// Generation begins now, after `waited` on the embedding model.
    fn generation_starts(&mut self, waited_ms: f64) {
        let waited = Duration::try_from_secs_f64(waited_ms / 1000.0).unwrap_or_default();
        self.generating = Some((waited, Instant::now()));
    }

    fn send(&mut self, event: AskEvent) {
        if let Some(events) = self.events {
            if let Some((embedding, since)) = self.generating.take() {
                // The first event since generation began; set before it goes, as the server
                // reads it when it receives the event.
                self.model_wait.set(embedding + since.elapsed());
            }
            // A closed channel means the caller left; the server drops this work with it.
            let _ = events.send(event);
        }
    }

    /// Sends the released sentences, and the cited sources whenever a new one is cited.
    fn steps(&mut self, steps: Vec<Step>, release: &Release, hits: &[Hit]) {
        for step in steps {
            if let Step::Released {
                delta,
                new_citation,
            } = step
            {
                self.sent = true;
                self.send(AskEvent::Delta(delta));
                if new_citation {
                    self.send(AskEvent::Sources(cite(hits, release.cited())));
                }
            }
        }
    }

    /// The whole answer, if nothing of it was streamed.
    fn rest(&mut self, response: &AskResponse) {
        if self.sent || !self.streaming() {
            return;
        }
        let waited = response.stage_latency_ms.embed + response.stage_latency_ms.generate;
        self.model_wait
            .set(Duration::try_from_secs_f64(waited / 1000.0).unwrap_or_default());
        self.generating = None;
        self.sent = true;
        self.send(AskEvent::Delta(response.answer.clone()));
        if !response.sources.is_empty() {
            self.send(AskEvent::Sources(response.sources.clone()));
        }
    }
}

/// What the caller asked, kept for the answer's record.
struct Asked {
    question: String,
    session_id: Option<String>,
    user: Option<String>,
}

/// Where a question's answer may be cached: the scope similar questions share, and the exact
/// key. `None` when the request may not use the cache.
struct CacheSlot {
    scope: String,
    key: String,
}

impl Assistant {
    /// Embeds the classifier's examples (through the gateway, so the embedding model must be
    /// available). `prompts` comes loaded and validated at start-up.
    pub async fn new(
        config: &Config,
        gateway: Arc<Gateway>,
        db: Database,
        prompts: Arc<Registry>,
    ) -> Result<Self, AskError> {
        prompts.active(&config.assistant.prompt)?;
        let embedder: Arc<dyn TextEmbedder> = Arc::new(GatewayEmbedder::new(
            gateway.clone(),
            config.kb.embedding_model.clone(),
        ));
        let ctx = RequestContext::new(crate::gateway::new_request_id(), "assistant.start");
        let classifier = Classifier::new(&config.classifier, embedder.as_ref(), &ctx).await?;
        let retriever = Retriever::new(
            db.clone(),
            embedder.clone(),
            FusionSettings {
                candidates: config.kb.candidates,
                rrf_k: config.kb.rrf_k,
            },
            config.safety.quarantine_flagged,
        );
        let fingerprint = cache::ask_key(&[&format!(
            "{:?}|{:?}|{:?}|{:?}",
            config.assistant, config.kb, config.classifier, config.safety
        )]);
        let semantic = SemanticCache::from_config(&db, &config.cache).await;
        let verifier = (!config.cache.semantic_verify_model.is_empty()).then(|| {
            ModelVerifier::new(gateway.clone(), config.cache.semantic_verify_model.clone())
        });
        let head = if config.safety.injection {
            InjectionHead::load(Path::new(&config.safety.learned_head))?
        } else {
            None
        };
        if head.is_none() && config.safety.injection {
            tracing::info!(
                path = config.safety.learned_head,
                "no learned injection detector (run `askacme safety train`): the input guard's rules run alone"
            );
        }
        Ok(Self {
            cache: gateway.cache().clone(),
            semantic,
            verifier,
            db,
            fingerprint,
            gateway,
            embedder,
            retriever,
            classifier,
            prompts,
            config: config.assistant.clone(),
            retrieval: retrieve::Settings {
                top_k: config.kb.top_k,
                rerank: config.kb.rerank,
                rerank_candidates: config.kb.rerank_candidates,
                passage_sentences: config.kb.passage_sentences,
            },
            input_guard: InputGuard::new(head)?,
            output_guard: OutputGuard::new(
                &config.safety.banned_patterns,
                config.safety.leak_overlap_words,
            )?,
            canary: config
                .safety
                .canary
                .then(|| Canary::derived(&config.canary_seed("assistant"))),
            safety: config.safety.clone(),
        })
    }

    pub fn retriever(&self) -> &Retriever {
        &self.retriever
    }

    /// Answers a question, stage by stage: input guard → classify → cache (exact, then
    /// semantic) → retrieve → route → generate → output guard → cache put.
    pub async fn handle(
        &self,
        request: AskRequest,
        ctx: &RequestContext,
    ) -> Result<AskResponse, AskError> {
        self.handle_with(request, &Overrides::default(), ctx).await
    }

    /// `handle`, with an evaluation's overrides. The answer is recorded (`answers`) with what
    /// it says about the one before it: asked again in other words, the previous answer in the
    /// conversation is marked rephrased.
    pub async fn handle_with(
        &self,
        request: AskRequest,
        overrides: &Overrides,
        ctx: &RequestContext,
    ) -> Result<AskResponse, AskError> {
        self.run(request, overrides, Emitter::new(None, ctx), ctx)
            .await
    }

    /// `handle`, streamed: each sentence goes to `events` once the output guard passed it,
    /// with the sources it cites; the finished answer is returned as `handle` returns it.
    /// Dropping the future (the caller left) stops the model's stream, which is logged
    /// `cancelled` and billed what it used.
    pub async fn handle_streamed(
        &self,
        request: AskRequest,
        ctx: &RequestContext,
        events: Events,
    ) -> Result<AskResponse, AskError> {
        let emitter = Emitter::new(Some(&events), ctx);
        self.run(request, &Overrides::default(), emitter, ctx).await
    }

    async fn run(
        &self,
        request: AskRequest,
        overrides: &Overrides,
        mut emitter: Emitter<'_>,
        ctx: &RequestContext,
    ) -> Result<AskResponse, AskError> {
        let asked = Asked {
            question: request.question.clone(),
            session_id: request.session_id.clone(),
            user: request.user.clone(),
        };
        let (response, vector) = self.answer(request, overrides, &mut emitter, ctx).await?;
        emitter.rest(&response);
        self.record_answer(&asked, &response, &vector, ctx).await;
        Ok(response)
    }

    /// The messages a model would be sent for `question` with `prompt_version` today (its
    /// sources retrieved now), without the canary: a fine-tuning example's prompt.
    pub async fn prompt_messages(
        &self,
        question: &str,
        prompt_version: &str,
        ctx: &RequestContext,
    ) -> Result<Vec<crate::providers::types::Message>, AskError> {
        let prompt = self.prompts.get(&self.config.prompt, prompt_version)?;
        let vector = self
            .embedder
            .embed(vec![question.to_owned()], &ctx.child("embed", ctx.endpoint))
            .await?
            .pop()
            .unwrap_or_default();
        let classification = self.classifier.classify(question, &vector);
        let scope = match &classification.department {
            Some(department) => Scope::Department(department),
            None => Scope::All,
        };
        let retrieved = retrieve::retrieve(
            &self.retriever,
            question,
            &vector,
            scope,
            self.retrieval,
            ctx,
        )
        .await?;
        let request = answer::request(Generation {
            registry: &self.prompts,
            prompt,
            model: &prompt.model,
            question,
            category: classification.category.as_str(),
            department: classification.department.as_deref(),
            hits: &retrieved.retrieval.hits,
            canary: None,
        })?;
        Ok(request.messages)
    }

    /// The stages; returns the answer and the question's embedding (empty when the input
    /// guard refused it before it was embedded).
    async fn answer(
        &self,
        request: AskRequest,
        overrides: &Overrides,
        emitter: &mut Emitter<'_>,
        ctx: &RequestContext,
    ) -> Result<(AskResponse, Vec<f32>), AskError> {
        let prompt = match &overrides.prompt_version {
            Some(version) => self.prompts.get(&self.config.prompt, version)?,
            None => self.prompts.active(&self.config.prompt)?,
        };
        // Every log row of this question (embedding, re-rank, answer) names the prompt version,
        // the conversation and the user; a `no-store` question keeps its model calls out of
        // the gateway's cache too, not only its answer out of the assistant's.
        let ctx = &RequestContext {
            prompt_version: Some(prompt.id()),
            configured_model: true,
            session_id: request.session_id.clone(),
            user: request.user.clone(),
            cache: request.cache.or(ctx.cache),
            ..ctx.clone()
        };
        let mut turn = match self.guard_input(&request, ctx).await? {
            Ok(turn) => turn,
            Err((verdict, stages)) => {
                return Ok((self.refuse(verdict, stages, prompt, ctx), Vec::new()));
            }
        };
        let redactions = turn.redaction.len() as u64;
        if redactions > 0 {
            // Counted here, once per question, whether or not a model is called after.
            crate::telemetry::metrics::redactions(redactions);
        }
        let ctx = &RequestContext {
            redactions,
            ..ctx.clone()
        };
        self.follow_up(&request, &mut turn, ctx).await?;

        let classification = {
            let _span = tracing::debug_span!("classify").entered();
            self.classifier.classify(&turn.question, &turn.vector)
        };
        turn.lap(|s| &mut s.classify);

        // A fixed context or another model than the routes' is not what the cache's scope
        // describes: such answers neither read nor fill it.
        let slot = if overrides.context.is_some() || overrides.model.is_some() {
            None
        } else {
            self.cache_slot(&request, prompt, &turn, ctx).await?
        };
        if let Some(answer) = self.cached(slot.as_ref(), &turn, ctx).await {
            return Ok((turn.shown(answer), turn.vector));
        }

        let mut response = AskResponse::unanswered(prompt, &classification, ctx);
        response.cache = if slot.is_some() {
            CacheStatus::Miss
        } else {
            CacheStatus::Bypass
        };
        let retrieved = match &overrides.context {
            Some(context) => retrieve::fixed(context),
            None => {
                self.retrieve(&request, &classification, &mut turn, ctx)
                    .await?
            }
        };
        response.collection.clone_from(&retrieved.collection);
        response.retrieval_confidence = retrieved.retrieval.confidence;
        let hits = retrieved.retrieval.hits;
        if hits.is_empty() || retrieved.retrieval.confidence < self.config.min_confidence {
            tracing::debug!(
                confidence = retrieved.retrieval.confidence,
                "below min_confidence: no model call"
            );
            let shown = turn.shown(finish(response, turn.stages, ctx));
            return Ok((shown, turn.vector));
        }

        let model = {
            let _span = tracing::debug_span!("route").entered();
            match &overrides.model {
                Some(model) => model.as_str(),
                None => {
                    route::model_for(&self.config.routes, classification.category, &prompt.model)
                }
            }
        };
        turn.lap(|s| &mut s.route);

        let shown = shown_passages(&hits);
        let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
        let (redaction, original_question) = (
            turn.redaction.clone(),
            turn.redaction.restore(&turn.question),
        );
        let checked = Shown {
            system: &prompt.system,
            canary: self.canary.as_ref(),
            question: &original_question,
            sources: &shown,
        };
        let mut release = Release::new(&self.output_guard, checked, &redaction);
        let generation = Generation {
            registry: &self.prompts,
            prompt,
            model,
            question: &turn.question,
            category: classification.category.as_str(),
            department: classification.department.as_deref(),
            hits: &hits,
            canary: self.canary.as_ref(),
        };
        emitter.generation_starts(turn.stages.embed);
        if emitter.streaming() && !self.cascades_from(model) {
            let request = answer::request(generation)?;
            self.stream_answer(request, &hits, &mut release, emitter, &mut response, ctx)
                .instrument(tracing::debug_span!("generate", model, stream = true))
                .await?;
        } else {
            let text = self
                .generate(generation, &shown, &mut response, ctx)
                .await?;
            let mut steps = release.push(&text);
            steps.extend(release.finish());
            emitter.steps(steps, &release, &hits);
        }
        turn.lap(|s| &mut s.generate);
        self.settle(&release, &hits, &mut turn, &mut response, ctx);
        let checks = release.time;
        let [guard, grounding, citations] =
            [checks.output_guard, checks.grounding, checks.citations]
                .map(|d| d.as_secs_f64() * 1000.0);
        turn.stages.output_guard = guard;
        turn.stages.grounding = grounding;
        turn.stages.citations = citations;
        turn.stages.generate = (turn.stages.generate - guard - grounding - citations).max(0.0);

        let response = finish(response, turn.stages, ctx);
        if let Some(slot) = slot {
            self.cache_put(slot, &turn, &response).await;
        }
        Ok((turn.shown(response), turn.vector))
    }

    /// Stores the answer (question and answer redacted) and marks what it says about the one
    /// before it. A failure here is logged, never the caller's problem: the answer stands. It
    /// runs before the answer is returned (a row insert, and an embedding only when the
    /// conversation has an earlier answer) so that feedback on it finds it at once.
    async fn record_answer(
        &self,
        asked: &Asked,
        response: &AskResponse,
        vector: &[f32],
        ctx: &RequestContext,
    ) {
        crate::telemetry::metrics::answer(response.status.as_str());
        for (stage, ms) in response.stage_latency_ms.stages() {
            if ms > 0.0 {
                crate::telemetry::metrics::stage(stage, ms / 1000.0);
            }
        }
        let question = self.input_guard.redacted(&asked.question);
        let lowered = question.to_lowercase();
        let row = AnswerRow {
            request_id: ctx.request_id.clone(),
            created_at_ms: now_ms(),
            endpoint: ctx.endpoint.to_owned(),
            key_id: ctx.caller.key_id(),
            session_id: asked.session_id.clone(),
            user: asked.user.clone(),
            answer: self.input_guard.redacted(&response.answer),
            status: response.status.as_str().to_owned(),
            category: response.category.as_str().to_owned(),
            prompt_version: response.prompt_version.clone(),
            model: response.model.clone(),
            cache: response.cache.as_str().to_owned(),
            cost_micro_usd: response.cost_micro_usd,
            saved_micro_usd: response.saved_micro_usd,
            latency_ms: response.latency_ms,
            rephrased: false,
            standalone: response
                .standalone_question
                .as_deref()
                .map(|s| self.input_guard.redacted(s)),
            stage_latency_json: serde_json::to_string(&response.stage_latency_ms).ok(),
            escalated: self
                .config
                .escalation_phrases
                .iter()
                .any(|p| lowered.contains(&p.to_lowercase())),
            question,
        };
        if let Err(e) = self.db.record_answer(&row).await {
            tracing::warn!(error = %e, "cannot record the answer");
            return;
        }
        if !vector.is_empty() {
            self.mark_rephrase(&row, vector, ctx).await;
        }
    }

    /// The previous answer in the conversation (or to the same user), within the window, was
    /// asked again in other words: it probably missed. A served semantic match is flagged for
    /// review too (`askacme cache hits --semantic --flagged`).
    async fn mark_rephrase(&self, row: &AnswerRow, vector: &[f32], ctx: &RequestContext) {
        let since = now_ms() - (self.config.rephrase_window_secs * 1000) as i64;
        let previous = self
            .db
            .previous_answer(
                row.session_id.as_deref(),
                row.user.as_deref(),
                &row.request_id,
                since,
            )
            .await;
        let Ok(Some((previous_id, previous_question, cache))) = previous else {
            return;
        };
        let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
        if same(&previous_question, &row.question) {
            return;
        }
        let embedded = self
            .embedder
            .embed(
                vec![previous_question],
                &ctx.child("rephrase-embed", ctx.endpoint),
            )
            .await;
        let Some(previous) = embedded.ok().and_then(|mut v| v.pop()) else {
            return;
        };
        if cosine(&previous, vector) < self.config.rephrase_similarity {
            return;
        }
        let at = now_ms();
        if let Err(e) = self.db.mark_rephrased(&previous_id, at).await {
            tracing::warn!(error = %e, "cannot mark a rephrased answer");
        }
        if cache == CacheStatus::Semantic.as_str() {
            let reason = format!("rephrased as \"{}\"", row.question);
            if let Err(e) = self.db.flag_semantic_hit(&previous_id, &reason, at).await {
                tracing::warn!(error = %e, "cannot flag a semantic match");
            }
        }
    }

    /// The input guard: length, the rules, personal data, then (needing the embedding) the
    /// learned detector. `Err` carries the block.
    async fn guard_input(
        &self,
        request: &AskRequest,
        ctx: &RequestContext,
    ) -> Result<Result<Turn, (Verdict, StageLatency)>, AskError> {
        let mut turn = Turn {
            question: String::new(),
            standalone: None,
            vector: Vec::new(),
            redaction: Redaction::new(),
            stages: StageLatency::default(),
            clock: Instant::now(),
        };
        let question = safety::check_length(&request.question, self.config.max_question_chars)?;
        if let Some(collection) = &request.collection {
            self.check_collection(collection).await?;
        }
        let guarded = {
            let _span = tracing::debug_span!("input_guard").entered();
            safety::guard(&self.input_guard, &self.safety, &question)
        };
        let guarded = match guarded {
            Ok(guarded) => guarded,
            Err(verdict) => {
                turn.lap(|s| &mut s.input_guard);
                return Ok(Err((verdict, turn.stages)));
            }
        };
        turn.question = guarded.question;
        turn.redaction = guarded.redaction;
        turn.lap(|s| &mut s.input_guard);

        turn.vector = self
            .embedder
            .embed(
                vec![turn.question.clone()],
                &ctx.child("embed", ctx.endpoint),
            )
            .instrument(tracing::debug_span!("embed"))
            .await?
            .pop()
            .unwrap_or_default();
        turn.lap(|s| &mut s.embed);
        if self.safety.injection
            && let Some(verdict) = self.input_guard.check_embedding(&turn.vector)
        {
            return Ok(Err((verdict, turn.stages)));
        }
        Ok(Ok(turn))
    }

    /// The reply to a blocked question, and the log row that records the block.
    fn refuse(
        &self,
        verdict: Verdict,
        stages: StageLatency,
        prompt: &crate::prompts::Prompt,
        ctx: &RequestContext,
    ) -> AskResponse {
        tracing::info!(
            stage = "input",
            reason = verdict.reason.as_str(),
            score = verdict.score,
            detail = verdict.detail,
            "input guard: filtered"
        );
        let mut response = AskResponse::unanswered(prompt, &Classification::default(), ctx);
        response.status = Status::Filtered;
        response.answer = verdict.reason.reply().to_owned();
        response.cache = CacheStatus::Bypass;
        let response = finish(response, stages, ctx);
        self.record_guard(GuardStage::Input, &verdict, &response, ctx, ctx);
        response.with_filter(GuardStage::Input, verdict)
    }

    /// Records a guard's block on a log row of its own (`<id>` for the input guard, which
    /// answers instead of any model; `<id>.guard` after a model answered).
    fn record_guard(
        &self,
        stage: GuardStage,
        verdict: &Verdict,
        response: &AskResponse,
        ctx: &RequestContext,
        row_ctx: &RequestContext,
    ) {
        let mut row = row_ctx.new_row(response.model.as_deref().unwrap_or_default(), false);
        row.guard = Some(format!(
            "{ASSISTANT_POLICY}:{}:{}",
            stage.as_str(),
            verdict.reason.as_str()
        ));
        row.route = Some(format!("{} → {} guard", ctx.endpoint, stage.as_str()));
        row.latency_ms = response.latency_ms;
        self.gateway.request_log().record(row);
    }

    /// The cache slot of this question, when the request may use the cache: what an answer
    /// depends on besides the question (prompt version, knowledge-base generation, collection,
    /// settings) is the scope; the folded question in it is the exact key.
    async fn cache_slot(
        &self,
        request: &AskRequest,
        prompt: &crate::prompts::Prompt,
        turn: &Turn,
        ctx: &RequestContext,
    ) -> Result<Option<CacheSlot>, AskError> {
        let directive = request.cache.or(ctx.cache);
        if !self.cache.applies(prompt.temperature == 0.0, directive) {
            return Ok(None);
        }
        let generation = self.db.kb_generation().await.map_err(SearchError::from)?;
        // A follow-up's answer is its conversation's: another conversation's "and for
        // part-timers?" is about something else.
        let conversation = match (&turn.standalone, &request.session_id) {
            (Some(_), Some(session)) => session.as_str(),
            _ => "",
        };
        let scope = cache::ask_key(&[
            &prompt.id(),
            &generation.to_string(),
            request.collection.as_deref().unwrap_or(""),
            &self.fingerprint,
            conversation,
        ]);
        let question = turn.question.split_whitespace().collect::<Vec<_>>();
        let key = cache::ask_key(&[&scope, &question.join(" ").to_lowercase()]);
        Ok(Some(CacheSlot { scope, key }))
    }

    /// The exact cache, then the semantic one (whose lookup also flags a rephrased answer).
    async fn cached(
        &self,
        slot: Option<&CacheSlot>,
        turn: &Turn,
        ctx: &RequestContext,
    ) -> Option<AskResponse> {
        if let Some(slot) = slot
            && let Some(hit) = self.cache.get(&slot.key).await
            && let Ok(answer) = serde_json::from_str::<AskResponse>(&hit.body)
        {
            let hit = CachedAnswer {
                status: CacheStatus::Exact,
                saved_micro_usd: hit.cost_micro_usd,
                matched: None,
            };
            return Some(self.replay(answer, hit, ctx));
        }
        let (slot, semantic) = (slot?, self.semantic.as_ref()?);
        self.semantic_hit(semantic, &slot.scope, turn, ctx).await
    }

    async fn retrieve(
        &self,
        request: &AskRequest,
        classification: &Classification,
        turn: &mut Turn,
        ctx: &RequestContext,
    ) -> Result<retrieve::Retrieved, AskError> {
        let scope = match (&request.collection, &classification.department) {
            (Some(collection), _) => Scope::Collection(collection),
            (None, Some(department)) => Scope::Department(department),
            (None, None) => Scope::All,
        };
        let retrieved = retrieve::retrieve(
            &self.retriever,
            &turn.question,
            &turn.vector,
            scope,
            self.retrieval,
            ctx,
        )
        .instrument(tracing::debug_span!("retrieve"))
        .await?;
        turn.lap(|s| &mut s.retrieve);
        Ok(retrieved)
    }

    /// Whether a cascade checks this model's answers (and so needs each whole).
    fn cascades_from(&self, model: &str) -> bool {
        self.config
            .cascade
            .as_ref()
            .is_some_and(|c| c.from == model)
    }

    /// One completion through the gateway (and, with a cascade, a second from the strong tier
    /// when the cheap one's answer fails validation); the model, cost and usage go on the
    /// response. Returns the answer's text.
    async fn generate(
        &self,
        generation: Generation<'_>,
        shown: &[&str],
        response: &mut AskResponse,
        ctx: &RequestContext,
    ) -> Result<String, AskError> {
        let mut model = generation.model;
        let mut completion = answer::generate(&self.gateway, generation.with_model(model), ctx)
            .instrument(tracing::debug_span!("generate", model))
            .await?;
        let mut cost_micro_usd = completion.cost_micro_usd;
        let mut usage = completion.response.usage.unwrap_or_default();
        if let Some(cascade) = self.config.cascade.as_ref().filter(|c| c.from == model) {
            let evidence = cascade::Evidence {
                shown,
                retrieval_confidence: response.retrieval_confidence,
                decline_confidence: cascade.decline_confidence,
            };
            if let Some(reason) = cascade::failure(&completion.response.text(), &evidence) {
                tracing::info!(from = model, to = %cascade.to, reason = reason.as_str(), "cascade: escalating");
                let escalated = ctx.child("escalate", ctx.endpoint);
                completion = answer::generate(
                    &self.gateway,
                    generation.with_model(&cascade.to),
                    &escalated,
                )
                .instrument(tracing::debug_span!("generate", model = cascade.to))
                .await?;
                let second = completion.response.usage.unwrap_or_default();
                usage.prompt_tokens += second.prompt_tokens;
                usage.completion_tokens += second.completion_tokens;
                usage.total_tokens += second.total_tokens;
                cost_micro_usd += completion.cost_micro_usd;
                response.escalation = Some(Escalation {
                    from: model.to_owned(),
                    reason,
                });
                model = &cascade.to;
            }
        }
        bill(
            response,
            model,
            &completion.deployment,
            &usage,
            cost_micro_usd,
        );
        Ok(completion.response.text().trim().to_owned())
    }

    /// The answer streamed from the gateway, each sentence released (and sent) as the output
    /// guard passes it. The first sentence that fails stops the stream: the rest would not
    /// be shown, and the gateway logs the call `cancelled` with what it used.
    async fn stream_answer(
        &self,
        mut request: ChatRequest,
        hits: &[Hit],
        release: &mut Release<'_>,
        emitter: &mut Emitter<'_>,
        response: &mut AskResponse,
        ctx: &RequestContext,
    ) -> Result<(), AskError> {
        let model = request.model.clone();
        request.stream = Some(true);
        request.stream_options = Some(StreamOptions {
            include_usage: true,
        });
        let mut stream = self.gateway.stream(request, ctx).await?;
        let mut usage = None;
        while release.stopped().is_none() {
            let Some(chunk) = stream.next().await else {
                let steps = release.finish();
                emitter.steps(steps, release, hits);
                break;
            };
            let chunk = chunk?;
            usage = chunk.usage.or(usage);
            for text in chunk
                .choices
                .iter()
                .filter_map(|c| c.delta.content.as_deref())
            {
                let steps = release.push(text);
                emitter.steps(steps, release, hits);
            }
        }
        let usage = usage.unwrap_or_else(|| stream.usage_so_far());
        let cost = stream.cost_micro_usd(&usage);
        bill(response, &model, stream.deployment(), &usage, cost);
        Ok(())
    }

    /// The answer after the output guard: the released text with its cited sources, or the
    /// reply that replaces it (and the guard's log row) when a sentence stopped it.
    fn settle(
        &self,
        release: &Release,
        hits: &[Hit],
        turn: &mut Turn,
        response: &mut AskResponse,
        ctx: &RequestContext,
    ) {
        let row_ctx = ctx.child("guard", ctx.endpoint);
        match release.stopped() {
            Some(Stop::Filtered(verdict)) => {
                tracing::warn!(
                    stage = "output",
                    reason = verdict.reason.as_str(),
                    detail = verdict.detail,
                    answer = release.text(),
                    "output guard: filtered"
                );
                response.status = Status::OutputFiltered;
                response.answer = verdict.reason.reply().to_owned();
                let snapshot = finish(response.clone(), turn.stages, ctx);
                self.record_guard(GuardStage::Output, verdict, &snapshot, ctx, &row_ctx);
                response.filter = Some(Filter::new(GuardStage::Output, verdict.clone()));
            }
            Some(Stop::Declined(reply)) => response.answer = (*reply).to_owned(),
            Some(Stop::Ungrounded(ungrounded)) => {
                tracing::warn!(
                    ?ungrounded,
                    answer = release.text(),
                    "answer states figures or names its cited sources do not hold; answered no_answer"
                );
                let verdict = Verdict {
                    reason: Reason::Ungrounded,
                    score: 1.0,
                    detail: format!("not in the cited sources: {}", ungrounded.join(", ")),
                };
                let snapshot = finish(response.clone(), turn.stages, ctx);
                self.record_guard(GuardStage::Output, &verdict, &snapshot, ctx, &row_ctx);
                response.ungrounded.clone_from(ungrounded);
            }
            None if release.released().is_empty() => {}
            None => {
                response.sources = cite(hits, release.cited());
                response.answer = release.released().to_owned();
                response.status = Status::Success;
            }
        }
    }

    /// A follow-up in a conversation becomes the standalone question it stands for (by the
    /// rewrite model, else by rule), embedded afresh; a question that stands alone, or the
    /// first of its conversation, is left as it is.
    async fn follow_up(
        &self,
        request: &AskRequest,
        turn: &mut Turn,
        ctx: &RequestContext,
    ) -> Result<(), AskError> {
        let Some(session) = &request.session_id else {
            return Ok(());
        };
        if !conversation::is_follow_up(&turn.question) {
            return Ok(());
        }
        let since = now_ms() - (self.config.conversation_window_secs * 1000) as i64;
        let history = match self
            .db
            .conversation(session, since, self.config.conversation_turns)
            .await
        {
            Ok(history) => history,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the conversation; answering the question alone");
                return Ok(());
            }
        };
        let Some(previous) = history.first() else {
            return Ok(());
        };
        let mut standalone = None;
        if !self.config.rewrite_model.is_empty() {
            let earlier: Vec<&str> = history
                .iter()
                .rev()
                .map(ConversationTurn::standalone_question)
                .collect();
            let rewritten = conversation::rewrite_by_model(
                &self.gateway,
                &self.config.rewrite_model,
                &earlier,
                &turn.question,
                &ctx.child("rewrite", ctx.endpoint),
            )
            .instrument(tracing::debug_span!("rewrite"))
            .await;
            match rewritten {
                Ok(rewritten) => standalone = rewritten,
                Err(e) => tracing::warn!(error = %e, "follow-up rewrite failed; rewriting by rule"),
            }
        }
        let standalone = standalone.unwrap_or_else(|| {
            conversation::rewrite_by_rule(&turn.question, previous.standalone_question())
        });
        tracing::debug!(question = turn.question, standalone, "follow-up rewritten");
        turn.vector = self
            .embedder
            .embed(
                vec![standalone.clone()],
                &ctx.child("embed-standalone", ctx.endpoint),
            )
            .await?
            .pop()
            .unwrap_or_default();
        turn.question.clone_from(&standalone);
        turn.standalone = Some(standalone);
        turn.lap(|s| &mut s.conversation);
        Ok(())
    }

    /// Stores a finished answer: exactly, and (a success only) for similar questions.
    async fn cache_put(&self, slot: CacheSlot, turn: &Turn, answer: &AskResponse) {
        if !matches!(answer.status, Status::Success | Status::NoAnswer) {
            return;
        }
        let Ok(body) = serde_json::to_string(answer) else {
            return;
        };
        self.cache
            .put(slot.key.clone(), "ask", body, answer.cost_micro_usd);
        // Only real answers are offered to similar questions; a `no_answer` is cheap to
        // reproduce and a wrong reason to refuse a different question.
        if let (Some(semantic), Status::Success) = (&self.semantic, answer.status) {
            let entry = SemanticEntry {
                question: turn.question.clone(),
                embedding: turn.vector.clone(),
                answer_key: slot.key,
            };
            semantic.add(&slot.scope, entry).await;
        }
    }

    /// The answer of a similar question asked before, if the semantic cache finds one whose
    /// difference the guard accepts and its answer is still cached.
    async fn semantic_hit(
        &self,
        semantic: &SemanticCache,
        scope: &str,
        turn: &Turn,
        ctx: &RequestContext,
    ) -> Option<AskResponse> {
        let verifier = self.verifier.as_ref().map(|v| v.within(ctx));
        let lookup = semantic
            .lookup(
                &Probe {
                    scope,
                    question: &turn.question,
                    vector: &turn.vector,
                    request_id: &ctx.request_id,
                    session_id: ctx.session_id.as_deref(),
                },
                verifier.as_ref().map(|v| v as &dyn Verifier),
            )
            .await;
        let Lookup::Served {
            answer_key,
            matched_question,
            similarity,
        } = lookup
        else {
            return None;
        };
        let Some(hit) = self.cache.get(&answer_key).await else {
            // The answer left the exact cache (TTL) since the question was: it was not served.
            if let Err(e) = self.db.unserve_semantic_hit(&ctx.request_id).await {
                tracing::warn!(error = %e, "cannot correct a semantic cache decision");
            }
            return None;
        };
        let answer = serde_json::from_str::<AskResponse>(&hit.body).ok()?;
        let hit = CachedAnswer {
            status: CacheStatus::Semantic,
            saved_micro_usd: hit.cost_micro_usd,
            matched: Some(CacheMatch {
                question: matched_question,
                similarity,
            }),
        };
        Some(self.replay(answer, hit, ctx))
    }

    /// A cached answer for this request: its own id and latency, nothing spent, and a log row
    /// that records the hit and what it saved.
    fn replay(
        &self,
        mut answer: AskResponse,
        hit: CachedAnswer,
        ctx: &RequestContext,
    ) -> AskResponse {
        answer.cache = hit.status;
        answer.cache_match = hit.matched;
        answer.request_id.clone_from(&ctx.request_id);
        answer.usage = AskUsage::default();
        answer.cost_micro_usd = 0;
        answer.cost_usd = 0.0;
        answer.saved_micro_usd = hit.saved_micro_usd;
        answer.stage_latency_ms = StageLatency::default();
        answer.latency_ms = ctx.started.elapsed().as_secs_f64() * 1000.0;
        let mut row = ctx.new_row(answer.model.as_deref().unwrap_or_default(), false);
        row.cache = Some(hit.status.as_str().to_owned());
        row.saved_micro_usd = hit.saved_micro_usd;
        row.route = Some(format!("{} → response cache", ctx.endpoint));
        row.latency_ms = answer.latency_ms;
        self.gateway.request_log().record(row);
        answer
    }

    async fn check_collection(&self, collection: &str) -> Result<(), AskError> {
        let known = self.retriever.collections().await?;
        if known.contains(collection) {
            return Ok(());
        }
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        Err(GatewayError::invalid(
            format!(
                "unknown collection `{collection}`; the knowledge base has: {}",
                if known.is_empty() {
                    "nothing yet (run `askacme ingest`)".to_owned()
                } else {
                    known.join(", ")
                }
            ),
            "collection",
        )
        .into())
    }
}

/// What the model is shown of each hit: titles and headings as well as the text.
fn shown_passages(hits: &[Hit]) -> Vec<String> {
    hits.iter()
        .map(|h| {
            passage(
                &h.chunk.title,
                &h.chunk.chunk.heading_path,
                &h.chunk.chunk.text,
            )
        })
        .collect()
}

/// The sources to return: the cited ones, numbered as the renumbered answer cites them; when
/// the model cited nothing, every source it was given, marked uncited.
fn cite(hits: &[Hit], cited: &[usize]) -> Vec<Source> {
    let source = |n: usize, hit: &Hit, cited: bool| Source {
        n,
        id: hit.chunk.id,
        title: hit.chunk.title.clone(),
        path: hit.chunk.document_path.clone(),
        collection: hit.chunk.collection.clone(),
        heading: hit.chunk.chunk.heading_path.clone(),
        snippet: snippet(&hit.chunk.chunk.text),
        score: hit.score,
        similarity: hit.similarity,
        cited,
    };
    if cited.is_empty() {
        return hits
            .iter()
            .enumerate()
            .map(|(i, hit)| source(i + 1, hit, false))
            .collect();
    }
    cited
        .iter()
        .enumerate()
        .map(|(i, &index)| source(i + 1, &hits[index], true))
        .collect()
}

fn snippet(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(SNIPPET_CHARS) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", text[..end].trim_end()),
    }
}

/// Puts what answering cost on the response.
fn bill(
    response: &mut AskResponse,
    model: &str,
    deployment: &str,
    usage: &crate::providers::types::Usage,
    cost_micro_usd: u64,
) {
    response.model = Some(model.to_owned());
    response.deployment = Some(deployment.to_owned());
    response.usage = AskUsage {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        total_tokens: usage.total_tokens,
    };
    response.cost_micro_usd = cost_micro_usd;
    response.cost_usd = cost_micro_usd as f64 / 1e6;
}

/// Stamps the stage and total latencies on a response that is ready.
fn finish(mut response: AskResponse, stages: StageLatency, ctx: &RequestContext) -> AskResponse {
    response.stage_latency_ms = stages;
    response.latency_ms = ctx.started.elapsed().as_secs_f64() * 1000.0;
    response
}
