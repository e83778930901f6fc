//! Every client mistake gets the right 4xx with an OpenAI-style error body, and the server stays up.

use serde_json::Value;

use crate::harness::App;

enum Body {
    Text(&'static str),
    Bytes(Vec<u8>),
}

#[tokio::test]
async fn malformed_requests_get_the_right_4xx_and_the_server_stays_up() {
    let app = App::spawn("").await;
    let big = format!(
        "{{\"model\":\"tiny\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "x".repeat(10 * 1024 * 1024)
    );
    let chat = "/v1/chat/completions";
    let cases: Vec<(&str, &str, &str, Body, u16)> = vec![
        (
            "invalid JSON",
            "POST",
            chat,
            Body::Text("{\"model\": "),
            400,
        ),
        ("empty body", "POST", chat, Body::Text(""), 400),
        (
            "JSON array instead of object",
            "POST",
            chat,
            Body::Text("[]"),
            400,
        ),
        (
            "trailing garbage",
            "POST",
            chat,
            Body::Text(
                "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]} x",
            ),
            400,
        ),
        (
            "invalid UTF-8",
            "POST",
            chat,
            Body::Bytes(
                b"{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}"
                    .to_vec(),
            ),
            400,
        ),
        (
            "messages is a string",
            "POST",
            chat,
            Body::Text("{\"model\":\"tiny\",\"messages\":\"hi\"}"),
            400,
        ),
        (
            "missing messages",
            "POST",
            chat,
            Body::Text("{\"model\":\"tiny\"}"),
            400,
        ),
        (
            "missing model",
            "POST",
            chat,
            Body::Text("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"),
            400,
        ),
        (
            "empty messages",
            "POST",
            chat,
            Body::Text("{\"model\":\"tiny\",\"messages\":[]}"),
            400,
        ),
        (
            "unknown role",
            "POST",
            chat,
            Body::Text(
                "{\"model\":\"tiny\",\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}",
            ),
            400,
        ),
        (
            "content is a number",
            "POST",
            chat,
            Body::Text("{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":5}]}"),
            400,
        ),
        (
            "user message without content",
            "POST",
            chat,
            Body::Text("{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\"}]}"),
            400,
        ),
        (
            "tool message without tool_call_id",
            "POST",
            chat,
            Body::Text("{\"model\":\"tiny\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}"),
            400,
        ),
        (
            "negative max_tokens",
            "POST",
            chat,
            Body::Text(
                "{\"model\":\"tiny\",\"max_tokens\":-5,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
            ),
            400,
        ),
        (
            "zero max_tokens",
            "POST",
            chat,
            Body::Text(
                "{\"model\":\"tiny\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
            ),
            400,
        ),
        (
            "temperature out of range",
            "POST",
            chat,
            Body::Text(
                "{\"model\":\"tiny\",\"temperature\":7,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
            ),
            400,
        ),
        (
            "temperature as string",
            "POST",
            chat,
            Body::Text(
                "{\"model\":\"tiny\",\"temperature\":\"hot\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
            ),
            400,
        ),
        (
            "n greater than one",
            "POST",
            chat,
            Body::Text(
                "{\"model\":\"tiny\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
            ),
            400,
        ),
        (
            "five stop sequences",
            "POST",
            chat,
            Body::Text(
                "{\"model\":\"tiny\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"],\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
            ),
            400,
        ),
        (
            "unknown model",
            "POST",
            chat,
            Body::Text(
                "{\"model\":\"gpt-17\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
            ),
            404,
        ),
        (
            "10 MB body",
            "POST",
            chat,
            Body::Bytes(big.into_bytes()),
            413,
        ),
        ("GET on a POST route", "GET", chat, Body::Text(""), 405),
        (
            "unknown route",
            "POST",
            "/v1/nothing",
            Body::Text("{}"),
            404,
        ),
        (
            "embeddings with empty input list",
            "POST",
            "/v1/embeddings",
            Body::Text("{\"model\":\"embed\",\"input\":[]}"),
            400,
        ),
        (
            "embeddings with empty string",
            "POST",
            "/v1/embeddings",
            Body::Text("{\"model\":\"embed\",\"input\":[\"\"]}"),
            400,
        ),
        (
            "embeddings with bad encoding_format",
            "POST",
            "/v1/embeddings",
            Body::Text("{\"model\":\"embed\",\"input\":\"a\",\"encoding_format\":\"hex\"}"),
            400,
        ),
        (
            "embeddings with unknown model",
            "POST",
            "/v1/embeddings",
            Body::Text("{\"model\":\"nope\",\"input\":\"a\"}"),
            404,
        ),
    ];
    assert!(cases.len() >= 15);
    for (name, method, path, body, status) in cases {
        let bytes = match body {
            Body::Text(t) => t.as_bytes().to_vec(),
            Body::Bytes(b) => b,
        };
        let request = app
            .http
            .request(method.parse().unwrap(), format!("{}{path}", app.base));
        let response = request
            .header("content-type", "application/json")
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
        assert!(response.headers().contains_key("x-request-id"), "{name}");
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{name}: body is not JSON: {e}"));
        let error = &body["error"];
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}: {body}"
        );
        assert!(error["type"].as_str().is_some(), "{name}: {body}");
        let health = app
            .http
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200, "server down after {name}");
    }
}

#[tokio::test]
async fn wrong_type_errors_name_the_field() {
    let app = App::spawn("").await;
    let response = app
        .http
        .post(format!("{}/v1/chat/completions", app.base))
        .body("{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":-1}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "no content type needed");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["param"], "max_tokens", "{body}");
}
