//! GGUF text generation with llama.cpp (through `llama-cpp-2`).
//!
//! A model is loaded once (memory-mapped) and served by a fixed pool of worker threads, each
//! owning one llama.cpp context, so up to `max_concurrent` generations run at once and the rest
//! wait in a queue. Work never runs on the async runtime: callers get a channel of events, and a
//! caller that drops it stops its generation at the next token.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, OnceLock};
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

use super::lookup;
use super::pool::Pool;
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
    /// Keep the evaluation of the leading chat turns a prompt shares with what the context
    /// holds, and evaluate only the rest.
    pub reuse_prefix: bool,
    /// Greedy answers: up to this many tokens guessed by prompt lookup are checked per decode
    /// call (0 = one token per call).
    pub draft_tokens: u32,
}

#[derive(Debug, Clone, PartialEq)]
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
    /// Tokens guessed by prompt lookup and checked by the model, and how many of them it kept.
    pub drafted_tokens: u32,
    pub accepted_tokens: u32,
    /// Decode calls after the prompt; without drafting, one per completion token but the
    /// last when the answer ends at `max_tokens` or a stop sequence.
    pub decode_calls: u32,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    /// llama.cpp's own counters for the same generation (`llama_perf_context`), for comparison.
    /// llama.cpp counts every batch of more than one token as prompt evaluation, so with
    /// drafting the decode calls that checked guesses are in its prefill figures.
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

/// What a worker's context holds, as the pool sees it: the turns of the last prompt it served.
type Served = Vec<ChatTurn>;

pub struct GgufGenerator {
    pool: Arc<Pool<Job, Served>>,
}

impl Drop for GgufGenerator {
    fn drop(&mut self) {
        self.pool.close();
    }
}

/// What serving `turns` on a worker whose last prompt was `served` is worth: the leading turns
/// its context can reuse, less the ones it holds beyond them and would throw away (another
/// conversation's history, which an idle worker holding nothing could spare).
fn reuse_score(turns: &[ChatTurn], served: &Served) -> i64 {
    let shared = common_prefix(turns, served);
    let lost = served.len() - shared;
    i64::try_from(shared).unwrap_or(i64::MAX) - i64::try_from(lost).unwrap_or(i64::MAX)
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

        let pool = Arc::new(Pool::new(options.max_concurrent));
        let threads = if options.threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            options.threads
        };
        let (ready_tx, ready_rx) = std_mpsc::channel::<Result<(), String>>();
        for worker in 0..options.max_concurrent {
            let (model, template, worker_pool, ready) = (
                model.clone(),
                template.clone(),
                pool.clone(),
                ready_tx.clone(),
            );
            let options = options.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("llama-{worker}"))
                .spawn(move || {
                    let seat = Seat {
                        pool: &worker_pool,
                        index: worker,
                    };
                    worker_loop(backend, &model, &template, &seat, &options, threads, ready);
                });
            if let Err(e) = spawned {
                pool.close();
                return Err(load_err(format!("cannot start worker thread: {e}")));
            }
        }
        drop(ready_tx);
        let generator = Self { pool };
        for _ in 0..options.max_concurrent {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                // Dropping `generator` closes the pool, so the started workers end too.
                Ok(Err(message)) => return Err(load_err(message)),
                Err(_) => return Err(load_err("worker thread died while starting".into())),
            }
        }
        Ok(generator)
    }

    /// Queues a generation; events arrive on the returned channel until `Done` or `Failed`.
    pub fn generate(
        &self,
        turns: Vec<ChatTurn>,
        params: SamplingParams,
    ) -> mpsc::Receiver<GenerationEvent> {
        let (events, receiver) = mpsc::channel(64);
        let job = Job {
            turns,
            params,
            events,
        };
        let submitted = self
            .pool
            .submit(job, |job, served| reuse_score(&job.turns, served));
        if let Err(job) = submitted {
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

/// A worker's place in the pool; it leaves the pool however its thread ends, a panic included.
struct Seat<'p> {
    pool: &'p Pool<Job, Served>,
    index: usize,
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        self.pool.leave(self.index);
    }
}

fn worker_loop(
    backend: &LlamaBackend,
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    seat: &Seat<'_>,
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
    let mut held = Held::default();
    // `None` once the generator was dropped.
    while let Some(job) = seat.pool.next(seat.index) {
        let events = job.events.clone();
        let mut served = job.turns.clone();
        let outcome = run(model, template, &mut ctx, options, job, &mut held);
        if outcome.is_err() {
            // What the context holds after a failure is unknown: start afresh.
            ctx.clear_kv_cache();
            held = Held::default();
            served.clear();
        }
        let final_event = match outcome {
            Ok(Some(stats)) => Some(GenerationEvent::Done(stats)),
            Ok(None) => None, // the caller went away
            Err(e) => Some(GenerationEvent::Failed(e)),
        };
        // Room for the last event first, so a caller slow to read cannot hold this worker once
        // it counts as idle; idle, with what the context now holds, before the caller hears the
        // end, so its next request (a conversation's next turn) can come back to this context.
        let permit = final_event
            .as_ref()
            .and_then(|_| futures::executor::block_on(events.reserve()).ok());
        seat.pool.finished(seat.index, served);
        if let (Some(event), Some(permit)) = (final_event, permit) {
            permit.send(event);
        }
    }
}

/// Runs one generation; `Ok(None)` when the caller dropped its receiver.
fn run(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    ctx: &mut LlamaContext<'_>,
    options: &GeneratorOptions,
    job: Job,
    held: &mut Held,
) -> Result<Option<GenerationStats>, GenerateError> {
    let Job {
        turns,
        params,
        events,
    } = job;
    let conversation = turns.iter().any(|turn| turn.role == "assistant");
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

    let turn_ends = turn_ends(model, template, &messages, conversation, &tokens)?;
    let reused = keep_turns(ctx, held, &tokens, &turn_ends, options.reuse_prefix);
    ctx.reset_timings();
    let prefill_start = Instant::now();
    let batch_size = options.batch_tokens as usize;
    let mut batch = LlamaBatch::new(batch_size.max(1), 1);
    let last = tokens.len() - 1;
    let mut turn_start = reused;
    for &turn_end in turn_ends.iter().filter(|&&end| end > reused) {
        for chunk_start in (turn_start..turn_end).step_by(batch_size.max(1)) {
            let chunk = &tokens[chunk_start..(chunk_start + batch_size).min(turn_end)];
            batch.clear();
            for (offset, token) in chunk.iter().enumerate() {
                let pos = chunk_start + offset;
                batch
                    .add(*token, pos as i32, &[0], pos == last)
                    .map_err(|e| GenerateError::Inference(e.to_string()))?;
            }
            ctx.decode(&mut batch)
                .map_err(|e| GenerateError::Inference(format!("prompt evaluation: {e}")))?;
            held.tokens.extend_from_slice(chunk);
        }
        held.turn_ends.push(turn_end);
        turn_start = turn_end;
    }
    let prefill_ms = prefill_start.elapsed().as_secs_f64() * 1000.0;

    let mut samplers = Vec::new();
    if params.json {
        samplers.push(
            LlamaSampler::grammar(model, JSON_GRAMMAR, "root")
                .map_err(|e| GenerateError::Inference(format!("JSON grammar: {e}")))?,
        );
    }
    let greedy = params.temperature <= 0.0;
    if greedy {
        samplers.push(LlamaSampler::greedy());
    } else {
        samplers.push(LlamaSampler::top_p(params.top_p, 1));
        samplers.push(LlamaSampler::temp(params.temperature));
        samplers.push(LlamaSampler::dist(params.seed));
    }
    // A guess can be checked only against a choice that depends on the logits alone: greedy,
    // without a grammar (whose state advances with every token it accepts); and rejected
    // guesses must be dropped from the context, which a recurrent model's state cannot do.
    let max_draft = if greedy && !params.json && !model.is_recurrent() && !model.is_hybrid() {
        (options.draft_tokens as usize).min(batch_size.saturating_sub(1))
    } else {
        0
    };
    let mut sampler = LlamaSampler::chain_simple(samplers);
    let mut stops = StopScanner::new(params.stop);
    let mut pending_bytes = Vec::new();
    let (mut completion_tokens, mut drafted_tokens, mut accepted_tokens) = (0u32, 0u32, 0u32);
    let mut decode_calls = 0u32;
    // Tokens the model picked that are not yet handled; the last is not yet evaluated.
    let mut chosen = vec![sampler.sample(ctx, batch.n_tokens() - 1)];
    let decode_start = Instant::now();
    let cause = 'generation: loop {
        for &token in &chosen {
            if completion_tokens >= max_tokens {
                break 'generation StopCause::Length;
            }
            if vocab.is_eog(token) {
                break 'generation StopCause::Stop;
            }
            completion_tokens += 1;
            pending_bytes.extend(vocab.token_to_piece(token, false, None));
            let text = take_valid_utf8(&mut pending_bytes);
            let (emit, stopped) = stops.push(&text);
            if !emit.is_empty() && events.blocking_send(GenerationEvent::Text(emit)).is_err() {
                return Ok(None);
            }
            if stopped {
                break 'generation StopCause::Stop;
            }
        }
        if completion_tokens >= max_tokens {
            break StopCause::Length;
        }
        // Evaluate the newest token together with guesses at the ones after it, looked up in
        // all the context then holds: the prompt and the answer so far.
        let position = held.tokens.len();
        held.tokens.push(chosen[chosen.len() - 1]);
        let room = (max_tokens - completion_tokens) as usize;
        let guesses = lookup::draft(&held.tokens, max_draft.min(room)).to_vec();
        batch.clear();
        for (offset, token) in held.tokens[position..].iter().chain(&guesses).enumerate() {
            batch
                .add(*token, (position + offset) as i32, &[0], true)
                .map_err(|e| GenerateError::Inference(e.to_string()))?;
        }
        ctx.decode(&mut batch)
            .map_err(|e| GenerateError::Inference(format!("decode: {e}")))?;
        decode_calls += 1;
        drafted_tokens += guesses.len() as u32;
        // The model's pick after each position, for as long as it agrees with the guesses.
        chosen.clear();
        for index in 0..=guesses.len() {
            let next = sampler.sample(ctx, index as i32);
            chosen.push(next);
            if guesses.get(index) != Some(&next) {
                break;
            }
        }
        let kept = chosen.len() - 1;
        accepted_tokens += kept as u32;
        held.tokens.extend_from_slice(&guesses[..kept]);
        if kept < guesses.len() {
            forget_from(ctx, held.tokens.len())?;
        }
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
        drafted_tokens,
        accepted_tokens,
        decode_calls,
        prefill_ms,
        decode_ms: decode_start.elapsed().as_secs_f64() * 1000.0,
    }))
}

/// What a context's keys and values hold: tokens in position order, and where the chat turns
/// of the prompt they came from ended (each turn was evaluated in batches of its own).
#[derive(Default)]
struct Held {
    tokens: Vec<LlamaToken>,
    turn_ends: Vec<usize>,
}

/// Where each chat turn of the prompt ends in its tokens; the last end is the prompt's. In a
/// conversation (the prompt holds an answer already), the assistant's opening after the last
/// turn is a piece of its own, so the conversation's next prompt, where that turn is no longer
/// the last, can reuse it; otherwise the opening goes with the last turn and costs no decode
/// call of its own. A turn whose rendering alone does not tokenize to a prefix of the whole
/// prompt is no boundary.
///
/// The prompt is evaluated turn by turn, and only whole turns are reused: the rounding of a
/// batch's arithmetic depends on where batches start and end, so this makes a context's state
/// after a prompt a function of the prompt alone, never of what the context served before.
/// A greedy answer is then the same from a fresh context and from any reused one.
fn turn_ends(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    messages: &[LlamaChatMessage],
    conversation: bool,
    tokens: &[LlamaToken],
) -> Result<Vec<usize>, GenerateError> {
    let mut ends = Vec::with_capacity(messages.len() + 1);
    let last_boundary = if conversation {
        messages.len()
    } else {
        messages.len().saturating_sub(1)
    };
    for turns in 1..=last_boundary {
        let text = model
            .apply_chat_template(template, &messages[..turns], false)
            .map_err(|e| GenerateError::Inference(format!("chat template: {e}")))?;
        let prefix = model.vocab().tokenize(text.as_bytes(), true, true);
        // An empty rendering (a template that folds the system message into the next turn)
        // is no boundary either.
        let after_last = ends
            .last()
            .map_or(!prefix.is_empty(), |&end| prefix.len() > end);
        if after_last && prefix.len() < tokens.len() && tokens.starts_with(&prefix) {
            ends.push(prefix.len());
        }
    }
    ends.push(tokens.len());
    Ok(ends)
}

/// Keeps the context's keys and values for the leading turns `tokens` shares with what it
/// holds, evaluated at the same boundaries, drops the rest, and returns how many tokens were
/// kept: the prompt is evaluated from there. The last turn is always evaluated again, since
/// its last token's logits pick the first answer token. Without reuse, or when llama.cpp
/// cannot drop part of a sequence, everything is dropped and 0 is returned.
fn keep_turns(
    ctx: &mut LlamaContext<'_>,
    held: &mut Held,
    tokens: &[LlamaToken],
    turn_ends: &[usize],
    reuse: bool,
) -> usize {
    let shared = if reuse {
        let common = common_prefix(&held.tokens, tokens);
        held.turn_ends
            .iter()
            .zip(turn_ends)
            .take_while(|&(held_end, end)| held_end == end && *end <= common && *end < tokens.len())
            .count()
    } else {
        0
    };
    let kept = turn_ends[..shared].last().copied().unwrap_or(0);
    if kept > 0 && forget_from(ctx, kept).is_ok() {
        held.tokens.truncate(kept);
        held.turn_ends.truncate(shared);
        kept
    } else {
        ctx.clear_kv_cache();
        *held = Held::default();
        0
    }
}

/// Drops the context's keys and values from `position` on.
fn forget_from(ctx: &mut LlamaContext<'_>, position: usize) -> Result<(), GenerateError> {
    let dropped = u32::try_from(position)
        .ok()
        .and_then(|from| ctx.clear_kv_cache_seq(Some(0), Some(from), None).ok())
        .unwrap_or(false);
    if dropped {
        Ok(())
    } else {
        Err(GenerateError::Inference(format!(
            "llama.cpp could not drop the context's tokens from position {position}"
        )))
    }
}

fn common_prefix<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Takes the longest valid UTF-8 prefix; a character split across tokens waits for its rest.
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
