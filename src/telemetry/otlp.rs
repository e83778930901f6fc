//! Traces over OTLP/HTTP with the JSON encoding, when `[telemetry] otlp_endpoint` is set: a
//! `tracing` layer turns each closed span of ours (the request, each pipeline stage, each model
//! call) into an OTLP span, and a task posts them in batches to `<endpoint>/v1/traces`.
//! Off by default, and then free: no layer is installed, so the stages' debug spans stay
//! disabled at their call sites.
//!
//! Our own small exporter rather than `opentelemetry-otlp`: that one brings a second HTTP
//! client stack and protobuf code; OTLP/HTTP JSON is a documented encoding every collector
//! accepts, and this one speaks it through the reqwest client we already have.
//!
//! Span conventions, as in `tracing-opentelemetry`: the field `otel.name` names the span,
//! `otel.kind` is `server` or `client` (else internal), `error.type` marks it failed. A root
//! span with a `traceparent` field (the W3C header of the incoming request) joins that trace.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Spans waiting for the exporter at most; beyond it they are dropped (counted, and the count
/// logged with the next export): tracing must never slow or stall a request.
const QUEUE: usize = 8192;

/// Spans dropped because the queue was full, since the last export.
static DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Spans per POST at most.
const BATCH: usize = 512;

static CAPTURE_CONTENT: AtomicBool = AtomicBool::new(false);

/// Whether spans of model calls may carry the messages (`telemetry.capture_content`).
pub fn capture_content() -> bool {
    CAPTURE_CONTENT.load(Ordering::Relaxed)
}

enum Command {
    Span(Box<FinishedSpan>),
    Flush(oneshot::Sender<()>),
}

/// The layer to add to the subscriber, and the exporter to run on the runtime.
pub fn pipeline(
    endpoint: &str,
    service_name: &str,
    capture: bool,
    interval: Duration,
) -> (OtlpLayer, Exporter) {
    CAPTURE_CONTENT.store(capture, Ordering::Relaxed);
    let (sender, receiver) = mpsc::channel(QUEUE);
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    (
        OtlpLayer {
            sender: sender.clone(),
        },
        Exporter {
            receiver,
            sender,
            url,
            service_name: service_name.to_owned(),
            interval,
        },
    )
}

pub struct OtlpLayer {
    sender: mpsc::Sender<Command>,
}

/// Posts the spans; `handle` flushes it.
pub struct Exporter {
    receiver: mpsc::Receiver<Command>,
    sender: mpsc::Sender<Command>,
    url: String,
    service_name: String,
    interval: Duration,
}

/// Flushes the exporter (at shutdown: spans still queued are posted before the process exits).
#[derive(Clone)]
pub struct ExporterHandle(mpsc::Sender<Command>);

impl ExporterHandle {
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.0.send(Command::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        }
    }
}

impl Exporter {
    pub fn handle(&self) -> ExporterHandle {
        ExporterHandle(self.sender.clone())
    }

    /// Runs until every sender is gone: batches spans for up to `interval` (or `BATCH` of
    /// them) and posts each batch once with `client`; a collector that is down costs the
    /// batch, not the requests.
    pub async fn run(mut self, client: reqwest::Client) {
        drop(self.sender);
        let mut batch: Vec<FinishedSpan> = Vec::new();
        let mut ticker = tokio::time::interval(self.interval);
        loop {
            let flushed = tokio::select! {
                command = self.receiver.recv() => match command {
                    Some(Command::Span(span)) => {
                        batch.push(*span);
                        if batch.len() < BATCH {
                            continue;
                        }
                        None
                    }
                    Some(Command::Flush(done)) => Some(done),
                    None => {
                        post(&client, &self.url, &self.service_name, &mut batch).await;
                        return;
                    }
                },
                _ = ticker.tick() => None,
            };
            post(&client, &self.url, &self.service_name, &mut batch).await;
            if let Some(done) = flushed {
                let _ = done.send(());
            }
        }
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    service_name: &str,
    batch: &mut Vec<FinishedSpan>,
) {
    let dropped = DROPPED.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        tracing::warn!(spans = dropped, "OTLP queue full: spans dropped");
    }
    if batch.is_empty() {
        return;
    }
    let spans: Vec<Value> = batch.drain(..).map(|s| s.to_json()).collect();
    let count = spans.len();
    let body = json!({
        "resourceSpans": [{
            "resource": {"attributes": [attribute("service.name", &AttributeValue::Text(service_name.to_owned()))]},
            "scopeSpans": [{
                "scope": {"name": "askacme", "version": env!("CARGO_PKG_VERSION")},
                "spans": spans,
            }],
        }],
    });
    let sent = client
        .post(url)
        .timeout(Duration::from_secs(10))
        .json(&body)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    if let Err(e) = sent {
        // Events are not exported (only spans are), so this cannot feed back into the queue.
        tracing::warn!(spans = count, url, error = %e, "OTLP export failed; these spans are lost");
    }
}

#[derive(Debug, Clone, PartialEq)]
enum AttributeValue {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

fn attribute(key: &str, value: &AttributeValue) -> Value {
    let value = match value {
        AttributeValue::Text(s) => json!({ "stringValue": s }),
        // OTLP/JSON writes 64-bit integers as strings.
        AttributeValue::Int(i) => json!({ "intValue": i.to_string() }),
        AttributeValue::Float(f) => json!({ "doubleValue": f }),
        AttributeValue::Bool(b) => json!({ "boolValue": b }),
    };
    json!({ "key": key, "value": value })
}

/// A span as it is being recorded, kept in the span's extensions.
struct SpanData {
    trace_id: u128,
    span_id: u64,
    parent_span_id: Option<u64>,
    name: String,
    kind: u8,
    start: SystemTime,
    attributes: Vec<(String, AttributeValue)>,
    error: Option<String>,
}

struct FinishedSpan {
    data: SpanData,
    end: SystemTime,
}

impl FinishedSpan {
    fn to_json(&self) -> Value {
        let nanos = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
                .to_string()
        };
        let d = &self.data;
        let mut span = json!({
            "traceId": format!("{:032x}", d.trace_id),
            "spanId": format!("{:016x}", d.span_id),
            "name": d.name,
            "kind": d.kind,
            "startTimeUnixNano": nanos(d.start),
            "endTimeUnixNano": nanos(self.end),
            "attributes": d.attributes.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>(),
            "status": match &d.error {
                // STATUS_CODE_ERROR
                Some(message) => json!({"code": 2, "message": message}),
                None => json!({"code": 0}),
            },
        });
        if let Some(parent) = d.parent_span_id {
            span["parentSpanId"] = json!(format!("{parent:016x}"));
        }
        span
    }
}

/// OTLP span kinds.
const KIND_INTERNAL: u8 = 1;
const KIND_SERVER: u8 = 2;
const KIND_CLIENT: u8 = 3;

impl Visit for SpanData {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "otel.name" => self.name = value.to_owned(),
            "otel.kind" => {
                self.kind = match value {
                    "server" => KIND_SERVER,
                    "client" => KIND_CLIENT,
                    _ => KIND_INTERNAL,
                }
            }
            "traceparent" => {
                if self.parent_span_id.is_none()
                    && let Some((trace_id, parent)) = parse_traceparent(value)
                {
                    self.trace_id = trace_id;
                    self.parent_span_id = Some(parent);
                }
            }
            name => {
                if name == "error.type" {
                    self.error = Some(value.to_owned());
                }
                self.set(name, AttributeValue::Text(value.to_owned()));
            }
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), AttributeValue::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(
            field.name(),
            AttributeValue::Int(i64::try_from(value).unwrap_or(i64::MAX)),
        );
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), AttributeValue::Float(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), AttributeValue::Bool(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

impl SpanData {
    fn set(&mut self, key: &str, value: AttributeValue) {
        match self.attributes.iter_mut().find(|(k, _)| k == key) {
            Some((_, existing)) => *existing = value,
            None => self.attributes.push((key.to_owned(), value)),
        }
    }
}

/// `00-<trace id>-<parent id>-<flags>`.
fn parse_traceparent(header: &str) -> Option<(u128, u64)> {
    let mut parts = header.trim().split('-');
    let (version, trace, parent) = (parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || trace.len() != 32 || parent.len() != 16 {
        return None;
    }
    let trace = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
    let parent = u64::from_str_radix(parent, 16).ok().filter(|p| *p != 0)?;
    Some((trace, parent))
}

fn nonzero_u64() -> u64 {
    fastrand::u64(1..)
}

impl<S> Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span.parent().and_then(|parent| {
            parent
                .extensions()
                .get::<SpanData>()
                .map(|p| (p.trace_id, p.span_id))
        });
        let mut data = SpanData {
            trace_id: parent.map_or_else(|| fastrand::u128(1..), |(trace, _)| trace),
            span_id: nonzero_u64(),
            parent_span_id: parent.map(|(_, span)| span),
            name: attrs.metadata().name().to_owned(),
            kind: KIND_INTERNAL,
            start: SystemTime::now(),
            attributes: Vec::new(),
            error: None,
        };
        attrs.record(&mut data);
        span.extensions_mut().insert(data);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(data) = span.extensions_mut().get_mut::<SpanData>()
        {
            values.record(data);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(data) = span.extensions_mut().remove::<SpanData>() else {
            return;
        };
        let finished = FinishedSpan {
            data,
            end: SystemTime::now(),
        };
        // A full queue drops the span: tracing must not hold a request up.
        if self
            .sender
            .try_send(Command::Span(Box::new(finished)))
            .is_err()
        {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w3c_traceparent_headers_are_read_and_bad_ones_ignored() {
        assert_eq!(
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some((0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7))
        );
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-xyz-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn spans_are_encoded_as_otlp_json() {
        let span = FinishedSpan {
            data: SpanData {
                trace_id: 0xab,
                span_id: 0xcd,
                parent_span_id: Some(0xef),
                name: "chat strong".into(),
                kind: KIND_CLIENT,
                start: UNIX_EPOCH + Duration::from_nanos(1_000),
                attributes: vec![
                    ("gen_ai.usage.input_tokens".into(), AttributeValue::Int(12)),
                    (
                        "gen_ai.request.model".into(),
                        AttributeValue::Text("strong".into()),
                    ),
                ],
                error: Some("timeout".into()),
            },
            end: UNIX_EPOCH + Duration::from_nanos(3_000),
        };
        let json = span.to_json();
        assert_eq!(json["traceId"], "000000000000000000000000000000ab");
        assert_eq!(json["spanId"], "00000000000000cd");
        assert_eq!(json["parentSpanId"], "00000000000000ef");
        assert_eq!(json["kind"], 3);
        assert_eq!(json["startTimeUnixNano"], "1000");
        assert_eq!(json["endTimeUnixNano"], "3000");
        assert_eq!(
            json["attributes"][0],
            json!({"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}})
        );
        assert_eq!(json["status"], json!({"code": 2, "message": "timeout"}));
    }
}
