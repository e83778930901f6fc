//! The HTTP plumbing shared by the remote providers: one reqwest client per provider, JSON
//! posts, upstream error bodies and `Retry-After`, and server-sent-event streams that are
//! checked (status, content type) before the first event is handed out.

use std::sync::Once;
use std::time::{Duration, SystemTime};

use eventsource_stream::{Event, Eventsource};
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ProviderError;
use crate::config::RemoteProviderConfig;

pub(crate) type EventStream = BoxStream<'static, Result<Event, ProviderError>>;

/// reqwest is built without a default TLS crypto provider (to avoid a second one, aws-lc, in
/// the build); ring is installed once per process before any client is made.
pub fn install_tls_provider() {
    static CRYPTO: Once = Once::new();
    CRYPTO.call_once(|| {
        // Ignoring the result: it only fails when a provider is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A header carrying a secret (an API key): marked sensitive, so the HTTP stack never prints it.
pub(crate) fn secret_header(value: &str) -> Result<HeaderValue, ProviderError> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| ProviderError::InvalidRequest("API key contains invalid characters".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

pub(crate) struct HttpUpstream {
    client: reqwest::Client,
    base_url: String,
    timeout: Duration,
}

impl HttpUpstream {
    pub(crate) fn new(
        config: &RemoteProviderConfig,
        headers: HeaderMap,
    ) -> Result<Self, ProviderError> {
        install_tls_provider();
        let timeout = Duration::from_secs(config.timeout_secs);
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .build()
            .map_err(|e| ProviderError::Connect(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            client,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    async fn post(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<reqwest::Response, ProviderError> {
        let response = self
            .client
            .post(format!("{}{}", self.base_url, path))
            .json(body)
            .send()
            .await
            .map_err(|e| ProviderError::from_reqwest(e, self.timeout))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(upstream_error(response).await)
    }

    pub(crate) async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ProviderError> {
        let response = self.post(path, body).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ProviderError::from_reqwest(e, self.timeout))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ProviderError::Malformed(format!("{e}: {}", preview(&bytes))))
    }

    pub(crate) async fn post_sse(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<EventStream, ProviderError> {
        let response = self.post(path, body).await?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !content_type.starts_with("text/event-stream") {
            let bytes = response.bytes().await.unwrap_or_default();
            return Err(ProviderError::Malformed(format!(
                "expected an event stream, got content type `{content_type}`: {}",
                preview(&bytes)
            )));
        }
        let timeout = self.timeout;
        Ok(response
            .bytes_stream()
            .eventsource()
            .map(move |item| {
                item.map_err(|e| match e {
                    eventsource_stream::EventStreamError::Transport(e) => {
                        match ProviderError::from_reqwest(e, timeout) {
                            ProviderError::Timeout(t) => ProviderError::Timeout(t),
                            other => ProviderError::StreamCut(other.to_string()),
                        }
                    }
                    other => ProviderError::StreamCut(other.to_string()),
                })
            })
            .boxed())
    }
}

async fn upstream_error(response: reqwest::Response) -> ProviderError {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let retry_after = super::retry_after::from_headers(&headers, SystemTime::now());
    let bytes = response.bytes().await.unwrap_or_default();
    // OpenAI: {"error":{"message":..}}; Anthropic: {"type":"error","error":{"message":..}}.
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| preview(&bytes));
    // The upstream's own id of the failed request, which its support asks for.
    let message = match upstream_request_id(&headers) {
        Some(id) => format!("{message} (upstream request id {id})"),
        None => message,
    };
    ProviderError::Upstream {
        status,
        message,
        retry_after,
    }
}

/// OpenAI sends `x-request-id`, Anthropic `request-id`.
fn upstream_request_id(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "request-id"]
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok())
        .map(|id| id.chars().take(128).collect())
}

fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
