//! The `local` provider: llama.cpp generation and candle embeddings in this process. Models load
//! on first use (or at start-up through `warm_up`) and stay loaded.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::Map;
use tokio::sync::{OnceCell, mpsc};

use super::types::{
    ChatChunk, ChatRequest, ChatResponse, Choice, ChunkChoice, Delta, Embeddings, FinishReason,
    Message, Role, Usage, new_completion_id, unix_now,
};
use super::{ChunkStream, Provider, ProviderError};
use crate::config::LocalProviderConfig;
use crate::models::catalog::ModelKind;
use crate::models::embedder::{BertEmbedder, Embedder};
use crate::models::generator::{
    ChatTurn, GenerateError, GenerationEvent, GenerationStats, GeneratorOptions, GgufGenerator,
    SamplingParams, StopCause,
};
use crate::models::resolve_model_path;

type Slot<T> = Arc<OnceCell<Arc<T>>>;

pub struct LocalProvider {
    options: GeneratorOptions,
    models_dir: PathBuf,
    generators: Mutex<HashMap<String, Slot<GgufGenerator>>>,
    embedders: Mutex<HashMap<String, Slot<dyn Embedder>>>,
}

impl LocalProvider {
    pub fn new(config: &LocalProviderConfig, models_dir: PathBuf) -> Self {
        Self {
            options: GeneratorOptions {
                threads: config.threads,
                max_concurrent: config.max_concurrent,
                context_tokens: config.context_tokens,
                batch_tokens: config.batch_tokens,
                reuse_prefix: config.reuse_prefix,
                draft_tokens: config.draft_tokens,
            },
            models_dir,
            generators: Mutex::new(HashMap::new()),
            embedders: Mutex::new(HashMap::new()),
        }
    }

    /// Loads a model ahead of its first request; the kind is taken from the catalog (paths are GGUF).
    pub async fn warm_up(&self, model: &str) -> Result<(), ProviderError> {
        match crate::models::catalog::find(model).map(|e| e.kind) {
            Some(ModelKind::Embedding) => self.embedder(model).await.map(drop),
            _ => self.generator(model).await.map(drop),
        }
    }

    async fn generator(&self, model: &str) -> Result<Arc<GgufGenerator>, ProviderError> {
        let slot = slot(&self.generators, model);
        let path = resolve_model_path(model, &self.models_dir, ModelKind::Generation)
            .map_err(ProviderError::ModelUnavailable)?;
        let options = self.options.clone();
        slot.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || GgufGenerator::load(&path, &options).map(Arc::new))
                .await
                .map_err(|e| ProviderError::Inference(format!("model loading panicked: {e}")))?
                .map_err(|e| ProviderError::ModelUnavailable(e.to_string()))
        })
        .await
        .cloned()
    }

    async fn embedder(&self, model: &str) -> Result<Arc<dyn Embedder>, ProviderError> {
        let slot = slot(&self.embedders, model);
        let path = resolve_model_path(model, &self.models_dir, ModelKind::Embedding)
            .map_err(ProviderError::ModelUnavailable)?;
        slot.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || {
                BertEmbedder::load(&path).map(|e| Arc::new(e) as Arc<dyn Embedder>)
            })
            .await
            .map_err(|e| ProviderError::Inference(format!("model loading panicked: {e}")))?
            .map_err(|e| ProviderError::ModelUnavailable(e.to_string()))
        })
        .await
        .cloned()
    }

    async fn start(
        &self,
        request: &ChatRequest,
    ) -> Result<mpsc::Receiver<GenerationEvent>, ProviderError> {
        if request.tools.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(ProviderError::Unsupported(
                "local models do not support tool calling; route tool requests to an OpenAI or Anthropic deployment".into(),
            ));
        }
        let generator = self.generator(&request.model).await?;
        let turns = request
            .messages
            .iter()
            .map(|m| ChatTurn {
                role: match m.role {
                    Role::Developer => "system".to_owned(),
                    role => role.as_str().to_owned(),
                },
                content: m.text(),
            })
            .collect();
        let params = SamplingParams {
            temperature: request.temperature.unwrap_or(1.0),
            top_p: request.top_p.unwrap_or(1.0),
            max_tokens: request.max_output_tokens(),
            stop: request.stop_sequences(),
            seed: request.seed.map_or_else(random_seed, |s| s as u32),
            json: request
                .extra
                .get("response_format")
                .and_then(|f| f["type"].as_str())
                .is_some_and(|t| t == "json_object" || t == "json_schema"),
        };
        Ok(generator.generate(turns, params))
    }
}

fn slot<T: ?Sized>(map: &Mutex<HashMap<String, Slot<T>>>, model: &str) -> Slot<T> {
    // A poisoned lock only means another thread panicked while inserting; the map is still valid.
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    map.entry(model.to_owned()).or_default().clone()
}

fn random_seed() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

fn finish_reason(cause: StopCause) -> FinishReason {
    match cause {
        StopCause::Stop => FinishReason::Stop,
        StopCause::Length => FinishReason::Length,
    }
}

fn usage(stats: &GenerationStats) -> Usage {
    Usage::new(
        stats.prompt_tokens.into(),
        stats.completion_tokens.into(),
        stats.reused_tokens.into(),
        0,
    )
}

fn generation_error(error: GenerateError) -> ProviderError {
    match error {
        GenerateError::InvalidRequest(m) => ProviderError::InvalidRequest(m),
        GenerateError::Load { .. } => ProviderError::ModelUnavailable(error.to_string()),
        GenerateError::Inference(m) => ProviderError::Inference(m),
    }
}

#[async_trait]
impl Provider for LocalProvider {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let mut events = self.start(request).await?;
        let mut text = String::new();
        while let Some(event) = events.recv().await {
            match event {
                GenerationEvent::Text(piece) => text.push_str(&piece),
                GenerationEvent::Failed(e) => return Err(generation_error(e)),
                GenerationEvent::Done(stats) => {
                    tracing::debug!(
                        prefill_tps = stats.prefill_tokens_per_sec(),
                        decode_tps = stats.decode_tokens_per_sec(),
                        "local generation"
                    );
                    return Ok(ChatResponse {
                        id: new_completion_id(),
                        object: "chat.completion".into(),
                        created: unix_now(),
                        model: request.model.clone(),
                        choices: vec![Choice {
                            index: 0,
                            message: Message::new(Role::Assistant, text),
                            finish_reason: Some(finish_reason(stats.cause)),
                        }],
                        usage: Some(usage(&stats)),
                        extra: Map::new(),
                    });
                }
            }
        }
        Err(ProviderError::Inference(
            "generation ended without a result".into(),
        ))
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        let events = self.start(request).await?;
        let id = new_completion_id();
        let model = request.model.clone();
        let created = unix_now();
        let chunk = move |delta: Delta,
                          finish_reason: Option<FinishReason>,
                          usage: Option<Usage>| ChatChunk {
            id: id.clone(),
            object: "chat.completion.chunk".into(),
            created,
            model: model.clone(),
            choices: if usage.is_some() {
                Vec::new()
            } else {
                vec![ChunkChoice {
                    index: 0,
                    delta,
                    finish_reason,
                }]
            },
            usage,
        };
        let first = chunk(
            Delta {
                role: Some(Role::Assistant),
                ..Delta::default()
            },
            None,
            None,
        );
        let rest = tokio_stream::wrappers::ReceiverStream::new(events).flat_map(move |event| {
            let items: Vec<Result<ChatChunk, ProviderError>> = match event {
                GenerationEvent::Text(piece) => {
                    vec![Ok(chunk(
                        Delta {
                            content: Some(piece),
                            ..Delta::default()
                        },
                        None,
                        None,
                    ))]
                }
                GenerationEvent::Done(stats) => vec![
                    Ok(chunk(
                        Delta::default(),
                        Some(finish_reason(stats.cause)),
                        None,
                    )),
                    Ok(chunk(Delta::default(), None, Some(usage(&stats)))),
                ],
                GenerationEvent::Failed(e) => vec![Err(generation_error(e))],
            };
            futures::stream::iter(items)
        });
        Ok(futures::stream::once(async { Ok(first) })
            .chain(rest)
            .boxed())
    }

    async fn embed(&self, model: &str, inputs: &[String]) -> Result<Embeddings, ProviderError> {
        let embedder = self.embedder(model).await?;
        let inputs = inputs.to_vec();
        let (vectors, prompt_tokens) = tokio::task::spawn_blocking(move || embedder.embed(&inputs))
            .await
            .map_err(|e| ProviderError::Inference(format!("embedding panicked: {e}")))?
            .map_err(|e| ProviderError::Inference(e.to_string()))?;
        Ok(Embeddings {
            vectors,
            prompt_tokens,
        })
    }
}
