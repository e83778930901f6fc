//! GGUF text generation with llama.cpp (through `llama-cpp-2`).
//!
//! A model is loaded once (memory-mapped) and served by a fixed pool of worker threads, each
//! owning one llama.cpp context, so up to `max_concurrent` generations run at once and the rest
//! wait in a queue. Work never runs on the async runtime: callers get a channel of events, and a
//! caller that drops it stops its generation at the next token.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use super::stop::StopScanner;

#[derive(Debug, Clone, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot load {path}: {message}")]
    Load { path: String, message: String },
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Inference(String),
}

#[derive(Debug, Clone)]
pub struct GeneratorOptions {
    pub threads: usize,
    pub max_concurrent: usize,
    pub context_tokens: u32,
    pub batch_tokens: u32,
    /// Evaluate only the part of a prompt that differs from what the context holds.
    pub reuse_prefix: bool,
}

#[derive(Debug, Clone)]
pub struct ChatTurn {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone)]
pub struct SamplingParams {
    /// 0 means greedy decoding (deterministic).
    pub temperature: f32,
    pub top_p: f32,
    /// None: until the context window is full.
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    pub seed: u32,
    /// Constrain the output to one JSON value (a llama.cpp grammar): the local answer to
    /// `response_format: json_object` / `json_schema` (the schema itself is not enforced).
    pub json: bool,
}

/// JSON as a GBNF grammar (after llama.cpp's `grammars/json.gbnf`): an object at the root,
/// whitespace bounded so a model cannot pad forever.
const JSON_GRAMMAR: &str = r#"
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
ws     ::= | " " | "\n" [ \t]{0,20}
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// End-of-generation token or a stop sequence.
    Stop,
    /// `max_tokens` or the context window reached.
    Length,
}

/// Counts and timings of one generation (prefill = prompt evaluation, decode = answer tokens).
#[derive(Debug, Clone, Copy)]
pub struct GenerationStats {
    pub cause: StopCause,
    pub prompt_tokens: u32,
    /// Prompt tokens whose evaluation was kept from the previous generation.
    pub reused_tokens: u32,
    pub completion_tokens: u32,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    /// llama.cpp's own counters for the same generation (`llama_perf_context`), for comparison.
    pub llama_cpp: LlamaPerf,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct LlamaPerf {
    pub prompt_tokens: i32,
    pub prefill_ms: f64,
    pub decode_tokens: i32,
    pub decode_ms: f64,
}

impl LlamaPerf {
    pub fn prefill_tokens_per_sec(&self) -> f64 {
        per_sec(self.prompt_tokens.max(0).unsigned_abs(), self.prefill_ms)
    }
    pub fn decode_tokens_per_sec(&self) -> f64 {
        per_sec(self.decode_tokens.max(0).unsigned_abs(), self.decode_ms)
    }
}

impl GenerationStats {
    pub fn prefill_tokens_per_sec(&self) -> f64 {
        per_sec(self.prompt_tokens, self.prefill_ms)
    }
    pub fn decode_tokens_per_sec(&self) -> f64 {
        per_sec(self.completion_tokens, self.decode_ms)
    }
}

fn per_sec(tokens: u32, ms: f64) -> f64 {
    if ms > 0.0 {
        f64::from(tokens) * 1000.0 / ms
    } else {
        0.0
    }
}

#[derive(Debug, Clone)]
pub enum GenerationEvent {
    Text(String),
    Done(GenerationStats),
    Failed(GenerateError),
}

struct Job {
    turns: Vec<ChatTurn>,
    params: SamplingParams,
    events: mpsc::Sender<GenerationEvent>,
}

pub struct GgufGenerator {
    jobs: std_mpsc::Sender<Job>,
}

fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

impl GgufGenerator {
    /// Loads the model and starts the workers; blocking (seconds for a large file).
    pub fn load(path: &Path, options: &GeneratorOptions) -> Result<Self, GenerateError> {
        let load_err = |message: String| GenerateError::Load {
            path: path.display().to_string(),
            message,
        };
        if !path.is_file() {
            return Err(load_err("no such file".into()));
        }
        let backend = backend().map_err(load_err)?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| load_err(format!("not a loadable GGUF model: {e}")))?;
        let model = Arc::new(model);
        let template = model
            .chat_template(None)
            .or_else(|_| LlamaChatTemplate::new("chatml"))
            .map_err(|e| load_err(format!("chat template: {e}")))?;
        let template = Arc::new(template);

        let (jobs, queue) = std_mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let threads = if options.threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            options.threads
        };
        let (ready_tx, ready_rx) = std_mpsc::channel::<Result<(), String>>();
        for worker in 0..options.max_concurrent {
            let (model, template, queue, ready) = (
                model.clone(),
                template.clone(),
                queue.clone(),
                ready_tx.clone(),
            );
            let options = options.clone();
            std::thread::Builder::new()
                .name(format!("llama-{worker}"))
                .spawn(move || {
                    worker_loop(backend, &model, &template, &queue, &options, threads, ready)
                })
                .map_err(|e| load_err(format!("cannot start worker thread: {e}")))?;
        }
        drop(ready_tx);
        for _ in 0..options.max_concurrent {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(message)) => return Err(load_err(message)),
                Err(_) => return Err(load_err("worker thread died while starting".into())),
            }
        }
        Ok(Self { jobs })
    }

    /// Queues a generation; events arrive on the returned channel until `Done` or `Failed`.
    pub fn generate(
        &self,
        turns: Vec<ChatTurn>,
        params: SamplingParams,
    ) -> mpsc::Receiver<GenerationEvent> {
        let (events, receiver) = mpsc::channel(64);
        if let Err(std_mpsc::SendError(job)) = self.jobs.send(Job {
            turns,
            params,
            events,
        }) {
            // Only possible if every worker died; tell the caller instead of hanging.
            let _ = job
                .events
                .try_send(GenerationEvent::Failed(GenerateError::Inference(
                    "no generation worker is running".into(),
                )));
        }
        receiver
    }
}

fn worker_loop(
    backend: &LlamaBackend,
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    queue: &Mutex<std_mpsc::Receiver<Job>>,
    options: &GeneratorOptions,
    threads: usize,
    ready: std_mpsc::Sender<Result<(), String>>,
) {
    let threads = i32::try_from(threads).unwrap_or(i32::MAX);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(options.context_tokens))
        .with_n_batch(options.batch_tokens)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_no_perf(false);
    let mut ctx = match model.new_context(backend, params) {
        Ok(ctx) => {
            let _ = ready.send(Ok(()));
            ctx
        }
        Err(e) => {
            let _ = ready.send(Err(format!("cannot create a llama.cpp context: {e}")));
            return;
        }
    };
    drop(ready);
    // The tokens whose keys and values the context holds, in position order.
    let mut evaluated: Vec<LlamaToken> = Vec::new();
    loop {
        // The lock is held only while waiting for the next job.
        let job = match queue.lock() {
            Ok(queue) => match queue.recv() {
                Ok(job) => job,
                Err(_) => return, // the generator was dropped
            },
            Err(_) => return,
        };
        let events = job.events.clone();
        let final_event = match run(model, template, &mut ctx, options, job, &mut evaluated) {
            Ok(Some(stats)) => GenerationEvent::Done(stats),
            Ok(None) => continue, // the caller went away
            Err(e) => {
                // What the context holds after a failure is unknown: start afresh.
                ctx.clear_kv_cache();
                evaluated.clear();
                GenerationEvent::Failed(e)
            }
        };
        let _ = events.blocking_send(final_event);
    }
}

/// Runs one generation; `Ok(None)` when the caller dropped its receiver.
fn run(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    ctx: &mut LlamaContext<'_>,
    options: &GeneratorOptions,
    job: Job,
    evaluated: &mut Vec<LlamaToken>,
) -> Result<Option<GenerationStats>, GenerateError> {
    let Job {
        turns,
        params,
        events,
    } = job;
    let messages = turns
        .into_iter()
        .map(|t| LlamaChatMessage::new(t.role, t.content))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            GenerateError::InvalidRequest("messages must not contain NUL characters".into())
        })?;
    let prompt = model
        .apply_chat_template(template, &messages, true)
        .map_err(|e| GenerateError::Inference(format!("chat template: {e}")))?;
    let vocab = model.vocab();
    let tokens = vocab.tokenize(prompt.as_bytes(), true, true);
    let n_ctx = options.context_tokens as usize;
    if tokens.len() >= n_ctx {
        return Err(GenerateError::InvalidRequest(format!(
            "the prompt has {} tokens but the model's context window is {n_ctx}",
            tokens.len()
        )));
    }
    let budget = (n_ctx - tokens.len()) as u32;
    let max_tokens = params.max_tokens.map_or(budget, |m| m.min(budget));

    let reused = keep_prefix(ctx, evaluated, &tokens, options.reuse_prefix);
    ctx.reset_timings();
    let prefill_start = Instant::now();
    let batch_size = options.batch_tokens as usize;
    let mut batch = LlamaBatch::new(batch_size.max(1), 1);
    let last = tokens.len() - 1;
    for (chunk_index, chunk) in tokens[reused..].chunks(batch_size).enumerate() {
        batch.clear();
        for (offset, token) in chunk.iter().enumerate() {
            let pos = reused + chunk_index * batch_size + offset;
            batch
                .add(*token, pos as i32, &[0], pos == last)
                .map_err(|e| GenerateError::Inference(e.to_string()))?;
        }
        ctx.decode(&mut batch)
            .map_err(|e| GenerateError::Inference(format!("prompt evaluation: {e}")))?;
        evaluated.extend_from_slice(chunk);
    }
    let prefill_ms = prefill_start.elapsed().as_secs_f64() * 1000.0;

    let mut samplers = Vec::new();
    if params.json {
        samplers.push(
            LlamaSampler::grammar(model, JSON_GRAMMAR, "root")
                .map_err(|e| GenerateError::Inference(format!("JSON grammar: {e}")))?,
        );
    }
    if params.temperature <= 0.0 {
        samplers.push(LlamaSampler::greedy());
    } else {
        samplers.push(LlamaSampler::top_p(params.top_p, 1));
        samplers.push(LlamaSampler::temp(params.temperature));
        samplers.push(LlamaSampler::dist(params.seed));
    }
    let mut sampler = LlamaSampler::chain_simple(samplers);
    let mut stops = StopScanner::new(params.stop);
    let mut pending_bytes = Vec::new();
    let mut completion_tokens = 0u32;
    let mut position = tokens.len() as i32;
    let mut logits_index = batch.n_tokens() - 1;
    let decode_start = Instant::now();
    let cause = loop {
        if completion_tokens >= max_tokens {
            break StopCause::Length;
        }
        let token = sampler.sample(ctx, logits_index);
        if vocab.is_eog(token) {
            break StopCause::Stop;
        }
        completion_tokens += 1;
        pending_bytes.extend(vocab.token_to_piece(token, false, None));
        let text = take_valid_utf8(&mut pending_bytes);
        let (emit, stopped) = stops.push(&text);
        if !emit.is_empty() && events.blocking_send(GenerationEvent::Text(emit)).is_err() {
            return Ok(None);
        }
        if stopped {
            break StopCause::Stop;
        }
        batch.clear();
        batch
            .add(token, position, &[0], true)
            .map_err(|e| GenerateError::Inference(e.to_string()))?;
        ctx.decode(&mut batch)
            .map_err(|e| GenerateError::Inference(format!("decode: {e}")))?;
        evaluated.push(token);
        position += 1;
        logits_index = 0;
    };
    let rest = stops.finish();
    if !rest.is_empty() && events.blocking_send(GenerationEvent::Text(rest)).is_err() {
        return Ok(None);
    }
    let timings = ctx.timings();
    Ok(Some(GenerationStats {
        llama_cpp: LlamaPerf {
            prompt_tokens: timings.n_p_eval(),
            prefill_ms: timings.t_p_eval_ms(),
            decode_tokens: timings.n_eval(),
            decode_ms: timings.t_eval_ms(),
        },
        cause,
        prompt_tokens: tokens.len() as u32,
        reused_tokens: reused as u32,
        completion_tokens,
        prefill_ms,
        decode_ms: decode_start.elapsed().as_secs_f64() * 1000.0,
    }))
}

/// Takes the longest valid UTF-8 prefix; a character split across tokens waits for its rest.
/// Keeps the context's keys and values for the longest prefix `tokens` shares with what it
/// holds (`evaluated`), drops the rest, and returns that prefix's length: the prompt is then
/// evaluated from there. At least the last prompt token is always evaluated again, since its
/// logits pick the first answer token. Without reuse, or when llama.cpp cannot drop part of
/// a sequence, everything is dropped and 0 is returned.
fn keep_prefix(
    ctx: &mut LlamaContext<'_>,
    evaluated: &mut Vec<LlamaToken>,
    tokens: &[LlamaToken],
    reuse: bool,
) -> usize {
    let shared = if reuse {
        common_prefix(evaluated, tokens).min(tokens.len().saturating_sub(1))
    } else {
        0
    };
    let kept = shared > 0
        && u32::try_from(shared)
            .ok()
            .and_then(|from| ctx.clear_kv_cache_seq(Some(0), Some(from), None).ok())
            .unwrap_or(false);
    if kept {
        evaluated.truncate(shared);
        shared
    } else {
        ctx.clear_kv_cache();
        evaluated.clear();
        0
    }
}

fn common_prefix<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn take_valid_utf8(bytes: &mut Vec<u8>) -> String {
    let valid = match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        // An invalid sequence (not merely an unfinished one) is replaced rather than held forever.
        Err(e) if e.error_len().is_some() => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            bytes.clear();
            return text;
        }
        Err(e) => e.valid_up_to(),
    };
    let rest = bytes.split_off(valid);
    String::from_utf8(std::mem::replace(bytes, rest)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::take_valid_utf8;

    #[test]
    fn split_characters_wait_for_their_last_byte() {
        let euro = "€".as_bytes();
        let mut pending = vec![b'a', euro[0], euro[1]];
        assert_eq!(take_valid_utf8(&mut pending), "a");
        pending.push(euro[2]);
        assert_eq!(take_valid_utf8(&mut pending), "€");
        assert!(pending.is_empty());
    }
}
