//! The assistant: `Assistant::handle` takes a question through every stage, top to bottom:
//! input check → embed → classify → retrieve → route → generate (through the gateway; with a
//! cascade, a failing cheap answer is asked again of the strong tier) → grounding → citations
//! → answer. Each stage is a module with one entry point, runs in its own tracing
//! span, and reports its latency in the answer.

pub mod answer;
pub mod cascade;
pub mod citations;
pub mod classify;
pub mod grounding;
pub mod retrieve;
pub mod route;
pub mod safety;
pub mod verify;

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::cache::semantic::{Lookup, Probe, SemanticCache, Verifier};
use crate::cache::{self, CacheDirective, CacheStatus, ResponseCache};
use crate::config::{AssistantConfig, Category, Config};
use crate::gateway::GatewayError;
use crate::gateway::{Gateway, RequestContext};
use crate::kb::embed::{GatewayEmbedder, TextEmbedder, passage};
use crate::kb::search::{FusionSettings, Hit, Retriever, SearchError};
use crate::models::embedder::cosine;
use crate::prompts::{PromptError, Registry};
use crate::store::{Database, SemanticEntry, now_ms};
use answer::{AnswerError, Generation};
use classify::Classifier;
use retrieve::Scope;
use verify::ModelVerifier;

/// How long a snippet of a source is, in characters.
const SNIPPET_CHARS: usize = 240;
/// A question in the same conversation this soon after a semantically served answer, and at
/// least this similar to the question it answered, is a rephrase: the served answer missed.
const REPHRASE_WINDOW_MS: i64 = 10 * 60 * 1000;
const REPHRASE_SIMILARITY: f32 = 0.7;

#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error("retrieval: {0}")]
    Search(#[from] SearchError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
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

/// The question after the input check, and its embedding.
struct Prepared {
    question: String,
    vector: Vec<f32>,
    stages: StageLatency,
    /// When the last finished stage ended.
    clock: Instant,
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
    /// The knowledge base does not hold the answer (retrieval too weak, or the model said so).
    NoAnswer,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    /// The number the answer cites it by (`[n]`).
    pub n: usize,
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
    pub input_check: f64,
    pub embed: f64,
    pub classify: f64,
    pub retrieve: f64,
    pub route: f64,
    pub generate: f64,
    pub grounding: f64,
    pub citations: f64,
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
    pub usage: AskUsage,
    pub cost_micro_usd: u64,
    pub cost_usd: f64,
    pub latency_ms: f64,
    pub stage_latency_ms: StageLatency,
    pub request_id: String,
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
    /// Hash of every setting that shapes an answer, part of each cache key: a changed route,
    /// threshold or retrieval setting retires the cached answers.
    fingerprint: String,
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
        );
        let fingerprint = cache::ask_key(&[&format!(
            "{:?}|{:?}|{:?}",
            config.assistant, config.kb, config.classifier
        )]);
        let semantic = SemanticCache::from_config(&db, &config.cache).await;
        let verifier = (!config.cache.semantic_verify_model.is_empty()).then(|| {
            ModelVerifier::new(gateway.clone(), config.cache.semantic_verify_model.clone())
        });
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
            },
        })
    }

    pub fn retriever(&self) -> &Retriever {
        &self.retriever
    }

    /// Answers a question: from the response cache when the same question was answered with
    /// the same prompt version, knowledge-base generation and settings, else through the
    /// pipeline (and the answer is cached).
    pub async fn handle(
        &self,
        request: AskRequest,
        ctx: &RequestContext,
    ) -> Result<AskResponse, AskError> {
        let prompt = self.prompts.active(&self.config.prompt)?;
        let cacheable = self
            .cache
            .applies(prompt.temperature == 0.0, request.cache.or(ctx.cache));
        // Every log row of this question (embedding, re-rank, answer) names the prompt version,
        // the conversation and the user.
        let ctx = &RequestContext {
            prompt_version: Some(prompt.id()),
            configured_model: true,
            session_id: request.session_id.clone(),
            user: request.user.clone(),
            ..ctx.clone()
        };
        // What an answer depends on besides the question: only the same scope can match.
        let scope = if cacheable {
            let generation = self.db.kb_generation().await.map_err(SearchError::from)?;
            Some(cache::ask_key(&[
                &prompt.id(),
                &generation.to_string(),
                request.collection.as_deref().unwrap_or(""),
                &self.fingerprint,
            ]))
        } else {
            None
        };
        let key = scope.as_ref().map(|scope| {
            let question = request.question.split_whitespace().collect::<Vec<_>>();
            cache::ask_key(&[scope, &question.join(" ").to_lowercase()])
        });
        if let Some(key) = &key
            && let Some(hit) = self.cache.get(key).await
            && let Ok(answer) = serde_json::from_str::<AskResponse>(&hit.body)
        {
            let hit = CachedAnswer {
                status: CacheStatus::Exact,
                saved_micro_usd: hit.cost_micro_usd,
                matched: None,
            };
            return Ok(self.replay(answer, hit, ctx));
        }
        let prepared = self.prepare(&request, ctx).await?;
        if let (Some(_), Some(session_id)) = (&self.semantic, &request.session_id) {
            self.flag_rephrase(session_id, &prepared, ctx).await;
        }
        if let (Some(scope), Some(semantic)) = (&scope, &self.semantic)
            && let Some(answer) = self.semantic_hit(semantic, scope, &prepared, ctx).await
        {
            return Ok(answer);
        }
        let (question, vector) = (prepared.question.clone(), prepared.vector.clone());
        let mut answer = self.answer(request, prepared, prompt, ctx).await?;
        answer.cache = if key.is_some() {
            CacheStatus::Miss
        } else {
            CacheStatus::Bypass
        };
        if let Some(key) = key
            && matches!(answer.status, Status::Success | Status::NoAnswer)
            && let Ok(body) = serde_json::to_string(&answer)
        {
            self.cache
                .put(key.clone(), "ask", body, answer.cost_micro_usd);
            // Only real answers are offered to similar questions; a `no_answer` is cheap to
            // reproduce and a wrong reason to refuse a different question.
            if let (Some(scope), Some(semantic), Status::Success) =
                (&scope, &self.semantic, answer.status)
            {
                let entry = SemanticEntry {
                    question,
                    embedding: vector,
                    answer_key: key,
                };
                semantic.add(scope, entry).await;
            }
        }
        Ok(answer)
    }

    /// The answer of a similar question asked before, if the semantic cache finds one whose
    /// difference the guard accepts and its answer is still cached.
    async fn semantic_hit(
        &self,
        semantic: &SemanticCache,
        scope: &str,
        prepared: &Prepared,
        ctx: &RequestContext,
    ) -> Option<AskResponse> {
        let verifier = self.verifier.as_ref().map(|v| v.within(ctx));
        let lookup = semantic
            .lookup(
                &Probe {
                    scope,
                    question: &prepared.question,
                    vector: &prepared.vector,
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

    /// A question asked again in other words right after an answer served from a similar
    /// question, in the same conversation, says that answer missed: the match is flagged for
    /// review (`askacme cache hits --semantic --flagged`).
    async fn flag_rephrase(&self, session_id: &str, prepared: &Prepared, ctx: &RequestContext) {
        let since = now_ms() - REPHRASE_WINDOW_MS;
        let Ok(Some(served)) = self.db.last_served_in_session(session_id, since).await else {
            return;
        };
        let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
        if same(&served.question, &prepared.question) {
            return;
        }
        let embedded = self
            .embedder
            .embed(
                vec![served.question.clone()],
                &ctx.child("rephrase-embed", ctx.endpoint),
            )
            .await;
        let Some(previous) = embedded.ok().and_then(|mut v| v.pop()) else {
            return;
        };
        if cosine(&previous, &prepared.vector) >= REPHRASE_SIMILARITY {
            let reason = format!("rephrased as \"{}\"", prepared.question);
            if let Err(e) = self
                .db
                .flag_semantic_hit(&served.request_id, &reason, now_ms())
                .await
            {
                tracing::warn!(error = %e, "cannot flag a semantic match");
            }
        }
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

    /// Input check and the question's embedding: what both the semantic cache and the rest of
    /// the pipeline need.
    async fn prepare(
        &self,
        request: &AskRequest,
        ctx: &RequestContext,
    ) -> Result<Prepared, AskError> {
        let mut stages = StageLatency::default();
        let mut clock = Instant::now();
        let mut lap = |slot: &mut f64| {
            *slot = clock.elapsed().as_secs_f64() * 1000.0;
            clock = Instant::now();
        };

        let question = {
            let _span = tracing::debug_span!("input_check").entered();
            safety::check_input(&request.question, self.config.max_question_chars)?
        };
        if let Some(collection) = &request.collection {
            self.check_collection(collection).await?;
        }
        lap(&mut stages.input_check);

        let vector = self
            .embedder
            .embed(vec![question.clone()], &ctx.child("embed", ctx.endpoint))
            .instrument(tracing::debug_span!("embed"))
            .await?
            .pop()
            .unwrap_or_default();
        lap(&mut stages.embed);
        Ok(Prepared {
            question,
            vector,
            stages,
            clock,
        })
    }

    async fn answer(
        &self,
        request: AskRequest,
        prepared: Prepared,
        prompt: &crate::prompts::Prompt,
        ctx: &RequestContext,
    ) -> Result<AskResponse, AskError> {
        let Prepared {
            question,
            vector,
            mut stages,
            mut clock,
        } = prepared;
        let mut lap = |slot: &mut f64| {
            *slot = clock.elapsed().as_secs_f64() * 1000.0;
            clock = Instant::now();
        };

        let classification = {
            let _span = tracing::debug_span!("classify").entered();
            self.classifier.classify(&question, &vector)
        };
        lap(&mut stages.classify);

        let scope = match (&request.collection, &classification.department) {
            (Some(collection), _) => Scope::Collection(collection),
            (None, Some(department)) => Scope::Department(department),
            (None, None) => Scope::All,
        };
        let retrieved = retrieve::retrieve(
            &self.retriever,
            &question,
            &vector,
            scope,
            self.retrieval,
            &ctx.child("rerank", ctx.endpoint),
        )
        .instrument(tracing::debug_span!("retrieve"))
        .await?;
        lap(&mut stages.retrieve);

        let mut response = AskResponse {
            answer: answer::NO_INFORMATION.to_owned(),
            status: Status::NoAnswer,
            sources: Vec::new(),
            category: classification.category,
            department: classification.department.clone(),
            collection: retrieved.collection,
            retrieval_confidence: retrieved.retrieval.confidence,
            ungrounded: Vec::new(),
            model: None,
            escalation: None,
            deployment: None,
            prompt_version: prompt.id(),
            cache: CacheStatus::Miss,
            cache_match: None,
            usage: AskUsage::default(),
            cost_micro_usd: 0,
            cost_usd: 0.0,
            latency_ms: 0.0,
            stage_latency_ms: StageLatency::default(),
            request_id: ctx.request_id.clone(),
        };
        let hits = retrieved.retrieval.hits;
        if hits.is_empty() || retrieved.retrieval.confidence < self.config.min_confidence {
            tracing::debug!(
                confidence = retrieved.retrieval.confidence,
                "below min_confidence: no model call"
            );
            return Ok(finish(response, stages, ctx));
        }

        let model = {
            let _span = tracing::debug_span!("route").entered();
            route::model_for(&self.config.routes, classification.category, &prompt.model)
        };
        lap(&mut stages.route);

        // What the model is shown: titles and headings as well as the text.
        let shown: Vec<String> = hits
            .iter()
            .map(|h| {
                passage(
                    &h.chunk.title,
                    &h.chunk.chunk.heading_path,
                    &h.chunk.chunk.text,
                )
            })
            .collect();
        let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
        let generation = |model| Generation {
            registry: &self.prompts,
            prompt,
            model,
            question: &question,
            category: classification.category.as_str(),
            department: classification.department.as_deref(),
            hits: &hits,
        };
        let mut completion = answer::generate(&self.gateway, generation(model), ctx)
            .instrument(tracing::debug_span!("generate", model))
            .await?;
        let mut model = model;
        let mut cost_micro_usd = completion.cost_micro_usd;
        let mut usage = completion.response.usage.unwrap_or_default();
        if let Some(cascade) = self.config.cascade.as_ref().filter(|c| c.from == model) {
            let evidence = cascade::Evidence {
                question: &question,
                shown: &shown,
                retrieval_confidence: retrieved.retrieval.confidence,
                decline_confidence: cascade.decline_confidence,
            };
            if let Some(reason) = cascade::failure(&completion.response.text(), &evidence) {
                tracing::info!(from = model, to = %cascade.to, reason = reason.as_str(), "cascade: escalating");
                let escalated = ctx.child("escalate", ctx.endpoint);
                completion = answer::generate(&self.gateway, generation(&cascade.to), &escalated)
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
        lap(&mut stages.generate);

        let text = completion.response.text();
        response.model = Some(model.to_owned());
        response.deployment = Some(completion.deployment.clone());
        response.usage = AskUsage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
        };
        response.cost_micro_usd = cost_micro_usd;
        response.cost_usd = cost_micro_usd as f64 / 1e6;
        let text = text.trim();
        if let Some(reply) = answer::decline(text) {
            response.answer = reply.to_owned();
            return Ok(finish(response, stages, ctx));
        }
        if text.is_empty() {
            return Ok(finish(response, stages, ctx));
        }

        response.ungrounded = {
            let _span = tracing::debug_span!("grounding").entered();
            grounding::ungrounded(text, &question, &shown)
        };
        lap(&mut stages.grounding);
        if !response.ungrounded.is_empty() {
            tracing::warn!(
                ungrounded = ?response.ungrounded,
                answer = text,
                "answer states figures or names no source contains; answered no_answer"
            );
            return Ok(finish(response, stages, ctx));
        }

        {
            let _span = tracing::debug_span!("citations").entered();
            let (answer, cited) = answer::renumber_citations(text, hits.len());
            response.sources = cite(&hits, &cited);
            response.answer = answer;
            response.status = Status::Success;
        }
        lap(&mut stages.citations);
        Ok(finish(response, stages, ctx))
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

/// The sources to return: the cited ones, numbered as the renumbered answer cites them; when
/// the model cited nothing, every source it was given, marked uncited.
fn cite(hits: &[Hit], cited: &[usize]) -> Vec<Source> {
    let source = |n: usize, hit: &Hit, cited: bool| Source {
        n,
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

/// Stamps the stage and total latencies on a response that is ready.
fn finish(mut response: AskResponse, stages: StageLatency, ctx: &RequestContext) -> AskResponse {
    response.stage_latency_ms = stages;
    response.latency_ms = ctx.started.elapsed().as_secs_f64() * 1000.0;
    response
}
