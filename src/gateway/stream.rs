//! A streamed completion as the gateway hands it out: chunks pass through, usage and the finish
//! reason are tracked, and when the stream ends, breaks, or is dropped by a caller that went
//! away, exactly one log row is written, the usage (partial, if cut) is booked to the caller's
//! budget and token limit, and the deployment's breaker learns how the stream ended.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::{Stream, StreamExt};

use super::GatewayError;
use super::access::Hold;
use super::health::DeploymentHealth;
use super::{Pricing, RequestLog, fail_row, fill_usage, millis};
use crate::cache::{CacheStatus, ResponseCache};
use crate::providers::types::{
    ChatChunk, ChatResponse, Choice, FinishReason, Message, Role, Usage,
};
use crate::providers::{ChunkStream, ProviderError};
use crate::store::{RequestRecord, RequestStatus};

/// What is settled when the stream is over.
pub(super) struct Settlement {
    pub pricing: Pricing,
    /// The deployment's breaker; `None` for a stream replayed from the cache.
    pub health: Option<Arc<DeploymentHealth>>,
    pub hold: Hold,
    /// Where a complete answer is stored, when the request is cacheable.
    pub store: Option<(Arc<ResponseCache>, String)>,
    /// The prompt's size as the limiter estimated it: billed when the provider never reports
    /// usage (the stream broke or the caller left before the usage chunk), because the
    /// upstream has read and charged the prompt all the same.
    pub prompt_estimate: u64,
    /// Set by the stream's guardrail when it stopped the reply.
    pub stopped: Option<super::guardrails::StreamStop>,
}

/// The streamed answer put back together, to cache it (and, with `telemetry.capture_content`,
/// put it on its span) once it completed. Tool calls and extra choices are not put together.
#[derive(Default)]
struct Assembled {
    id: String,
    created: u64,
    model: String,
    text: String,
    finish_reason: Option<FinishReason>,
    /// Tool calls or several choices: not replayable as plain text, so not cached.
    unusable: bool,
}

impl Assembled {
    fn observe(&mut self, chunk: &ChatChunk) {
        if self.id.is_empty() {
            self.id.clone_from(&chunk.id);
            self.created = chunk.created;
            self.model.clone_from(&chunk.model);
        }
        for choice in &chunk.choices {
            if choice.index != 0 || choice.delta.tool_calls.is_some() {
                self.unusable = true;
            }
            if let Some(text) = &choice.delta.content {
                self.text.push_str(text);
            }
            if choice.finish_reason.is_some() {
                self.finish_reason = choice.finish_reason;
            }
        }
    }

    fn response(self, usage: Usage) -> Option<ChatResponse> {
        (!self.unusable && self.finish_reason.is_some()).then(|| ChatResponse {
            id: self.id,
            object: "chat.completion".into(),
            created: self.created,
            model: self.model,
            choices: vec![Choice {
                index: 0,
                message: Message::new(Role::Assistant, self.text),
                finish_reason: self.finish_reason,
            }],
            usage: Some(usage),
            extra: serde_json::Map::new(),
        })
    }
}

pub(super) struct Tracker {
    log: RequestLog,
    row: RequestRecord,
    settlement: Settlement,
    request_started: Instant,
    provider_started: Instant,
    usage: Option<Usage>,
    /// Content-bearing chunks seen: the completion-token estimate when a stream breaks before
    /// the provider reported usage (providers send about one token per chunk).
    content_chunks: u64,
    finished: bool,
    assembled: Assembled,
    /// The call's span: it ends when the stream does.
    span: tracing::Span,
}

impl Tracker {
    pub(super) fn new(
        log: RequestLog,
        row: RequestRecord,
        settlement: Settlement,
        request_started: Instant,
        provider_started: Instant,
        span: tracing::Span,
    ) -> Self {
        Self {
            log,
            row,
            settlement,
            request_started,
            provider_started,
            usage: None,
            content_chunks: 0,
            finished: false,
            assembled: Assembled::default(),
            span,
        }
    }

    fn observe(&mut self, chunk: &ChatChunk) {
        if self.settlement.store.is_some() || crate::telemetry::otlp::capture_content() {
            self.assembled.observe(chunk);
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for choice in &chunk.choices {
            if choice.delta.content.as_ref().is_some_and(|c| !c.is_empty())
                || choice.delta.tool_calls.is_some()
            {
                if self.content_chunks == 0 && self.settlement.health.is_some() {
                    crate::telemetry::metrics::time_to_first_token(
                        self.row.provider.as_deref().unwrap_or_default(),
                        &self.row.requested_model,
                        self.provider_started.elapsed().as_secs_f64(),
                    );
                }
                self.content_chunks += 1;
            }
            if choice.finish_reason.is_some() {
                self.finished = true;
            }
        }
    }

    fn usage_so_far(&self) -> Usage {
        self.usage.unwrap_or_else(|| {
            Usage::new(self.settlement.prompt_estimate, self.content_chunks, 0, 0)
        })
    }

    fn write(mut self, status: RequestStatus, error: Option<&GatewayError>) {
        if self.usage.is_none() {
            self.row.usage_estimated = true;
        }
        let usage = self.usage_so_far();
        let cost = self.settlement.pricing.cost_micro_usd(&usage);
        fill_usage(&mut self.row, &usage, cost);
        // A broken stream counts against the upstream; a caller that hung up says nothing
        // about it either way (counted as a success, it would close a half-open breaker on a
        // probe that never finished).
        if let Some(health) = &self.settlement.health
            && status != RequestStatus::Cancelled
        {
            health.record(status == RequestStatus::Success);
        }
        let response = (status == RequestStatus::Success)
            .then(|| std::mem::take(&mut self.assembled).response(usage))
            .flatten();
        if let Some(response) = &response {
            super::capture_output(&self.span, &response.choices);
        }
        if let Some((cache, key)) = self.settlement.store.take()
            && let Some(response) = &response
            && let Ok(body) = serde_json::to_string(response)
        {
            cache.put(key, "chat", body, cost);
        }
        let hold = self.settlement.hold;
        let tokens = usage.prompt_tokens + usage.completion_tokens;
        // Drop cannot wait, so the token booking runs on its own (the budget is booked with
        // the row); without a runtime (process exit) there is nobody left to bill.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(hold.book_tokens(tokens));
        }
        self.row.status = status;
        if let Some(label) = self.settlement.stopped.as_ref().and_then(|s| s.get()) {
            self.row.guard = Some(label.clone());
        }
        if let Some(error) = error {
            fail_row(&mut self.row, error);
        }
        self.row.provider_latency_ms = millis(self.provider_started.elapsed());
        self.row.latency_ms = millis(self.request_started.elapsed());
        super::observe_operation(&self.row, "chat", &self.span);
        self.log.record(self.row);
    }
}

pub struct CompletionStream {
    chunks: ChunkStream,
    /// The deployment's prices, for callers that report the cost themselves.
    pricing: Pricing,
    /// `Some` until the row is written; then the stream is over.
    tracker: Option<Tracker>,
    include_usage: bool,
    deployment: String,
    cache: CacheStatus,
}

impl CompletionStream {
    pub(super) fn new(
        chunks: ChunkStream,
        tracker: Tracker,
        include_usage: bool,
        deployment: String,
        cache: CacheStatus,
    ) -> Self {
        Self {
            chunks,
            pricing: tracker.settlement.pricing,
            tracker: Some(tracker),
            include_usage,
            deployment,
            cache,
        }
    }

    /// Whether the stream replays a cached answer.
    pub fn cache_status(&self) -> CacheStatus {
        self.cache
    }

    /// The deployment that streams (`cache` for a replayed answer).
    pub fn deployment(&self) -> &str {
        &self.deployment
    }

    /// What `usage` costs at this deployment's prices.
    pub fn cost_micro_usd(&self, usage: &Usage) -> u64 {
        self.pricing.cost_micro_usd(usage)
    }

    /// The usage so far as the request log will bill it if the stream is dropped now: the
    /// provider's figures when it sent them, else the estimate (prompt as admitted, one token
    /// per content chunk).
    pub fn usage_so_far(&self) -> Usage {
        self.tracker
            .as_ref()
            .map_or_else(Usage::default, Tracker::usage_so_far)
    }
}

impl Stream for CompletionStream {
    type Item = Result<ChatChunk, GatewayError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let Some(tracker) = this.tracker.as_mut() else {
                return Poll::Ready(None);
            };
            let item = match this.chunks.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(item) => item,
            };
            match item {
                Some(Ok(mut chunk)) => {
                    tracker.observe(&chunk);
                    if !this.include_usage {
                        if chunk.choices.is_empty() && chunk.usage.is_some() {
                            continue; // the usage-only chunk the caller did not ask for
                        }
                        chunk.usage = None;
                    }
                    return Poll::Ready(Some(Ok(chunk)));
                }
                Some(Err(source)) => {
                    let error = GatewayError::Provider {
                        deployment: this.deployment.clone(),
                        error: source,
                    };
                    if let Some(tracker) = this.tracker.take() {
                        tracker.write(RequestStatus::Error, Some(&error));
                    }
                    return Poll::Ready(Some(Err(error)));
                }
                None => {
                    let Some(tracker) = this.tracker.take() else {
                        return Poll::Ready(None);
                    };
                    if tracker.finished {
                        tracker.write(RequestStatus::Success, None);
                        return Poll::Ready(None);
                    }
                    // Every provider ends a complete answer with a finish reason.
                    let error = GatewayError::Provider {
                        deployment: this.deployment.clone(),
                        error: ProviderError::StreamCut(
                            "stream ended without a finish reason".into(),
                        ),
                    };
                    tracker.write(RequestStatus::Error, Some(&error));
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }
}

impl Drop for CompletionStream {
    fn drop(&mut self) {
        if let Some(tracker) = self.tracker.take() {
            tracker.write(RequestStatus::Cancelled, None);
        }
    }
}
