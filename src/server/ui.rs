//! The web chat (`GET /`) and the admin dashboard (`GET /admin`): pages and assets from `ui/`,
//! embedded in the binary so they work offline and need no build step, and `GET /ui/config`,
//! what a page needs to know before its first request.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::auth::trusted_user;
use super::error::ApiError;

/// Only this origin, no inline script: the pages load nothing from elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

/// `(name, content type, body)` of every asset.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "chat.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/chat.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/admin.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/charts.js"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/common.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/style.css"),
    ),
];

pub async fn chat() -> Response {
    page(include_str!("../../ui/index.html"))
}

pub async fn dashboard() -> Response {
    page(include_str!("../../ui/admin.html"))
}

fn page(html: &'static str) -> Response {
    embedded("text/html; charset=utf-8", html)
}

fn embedded(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A new binary may bring new pages: always ask, and let the ETag-free body be re-sent.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(asset, _, _)| *asset == name) {
        Some((_, content_type, body)) => embedded(content_type, body),
        None => ApiError::new(
            404,
            "invalid_request_error",
            "not_found",
            format!("no asset `{name}`"),
        )
        .into_response(),
    }
}

/// `GET /ui/config`: whether the page must ask for a key, who the SSO proxy signed in, and
/// whom to contact instead of the assistant.
pub async fn config(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let user = trusted_user(&state, &headers);
    axum::Json(json!({
        "needs_key": state.config.auth.enabled && user.is_none(),
        "user": user,
        "escalation_contact": state.config.assistant.escalation_contact,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_a_page_loads_is_embedded() {
        for page in [
            include_str!("../../ui/index.html"),
            include_str!("../../ui/admin.html"),
        ] {
            for (start, _) in page.match_indices("/assets/") {
                let name: String = page[start + "/assets/".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                    .collect();
                assert!(
                    ASSETS.iter().any(|(asset, _, _)| *asset == name),
                    "{name} is loaded but not embedded"
                );
            }
        }
    }
}
