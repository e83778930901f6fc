//! The `openai` and `anthropic` providers through the gateway, against fake upstreams: plain and
//! streamed answers, tool calls, cached-token usage and cost, and upstream faults mapped to the
//! right gateway errors.

use serde_json::{Value, json};

use crate::harness::{App, Fake, request_id, sse_events};

const BEHAVIOURS: &[&str] = &[
    "ok",
    "tool",
    "cached",
    "err-500",
    "err-503",
    "err-429",
    "err-401",
    "err-400",
    "malformed",
    "hang",
    "stream-cut",
    "stream-error",
    "err-529",
];

async fn app() -> (App, Fake) {
    let (fake, addr) = Fake::spawn().await;
    let mut toml = format!(
        "[providers.fakeai]\nkind = \"openai\"\nbase_url = \"http://{addr}/v1\"\napi_key = \"sk-test\"\ntimeout_secs = 1\n\
         [providers.fakeclaude]\nkind = \"anthropic\"\nbase_url = \"http://{addr}\"\napi_key = \"ak-test\"\ntimeout_secs = 1\n\
         [providers.nowhere]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\n\
         [deployments.unreachable]\nprovider = \"nowhere\"\nmodel = \"ok\"\n\
         [router]\nmax_attempts = 1\n"
    );
    for b in BEHAVIOURS {
        toml.push_str(&format!(
            "[deployments.openai-{b}]\nprovider = \"fakeai\"\nmodel = \"{b}\"\nprice = {{ input = 2.5, cached_input = 1.25, output = 10 }}\n\
             [deployments.claude-{b}]\nprovider = \"fakeclaude\"\nmodel = \"{b}\"\nprice = {{ input = 3, cached_input = 0.3, cache_write = 3.75, output = 15 }}\n"
        ));
    }
    (App::spawn(&toml).await, fake)
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How long is parental leave?"}]})
}

fn streamed(model: &str) -> Value {
    let mut body = chat(model);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    body
}

/// Content, tool-call argument text, finish reason and usage assembled from an SSE body.
struct Assembled {
    content: String,
    tool_arguments: String,
    tool_name: Option<String>,
    finish: Option<String>,
    usage: Option<Value>,
    done: bool,
    error: Option<Value>,
}

fn assemble(body: &str) -> Assembled {
    let mut out = Assembled {
        content: String::new(),
        tool_arguments: String::new(),
        tool_name: None,
        finish: None,
        usage: None,
        done: false,
        error: None,
    };
    for (event, data) in sse_events(body) {
        if data == "[DONE]" {
            out.done = true;
            continue;
        }
        let value: Value = serde_json::from_str(&data).unwrap();
        if event == "error" {
            out.error = Some(value);
            continue;
        }
        if !value["usage"].is_null() {
            out.usage = Some(value["usage"].clone());
        }
        for choice in value["choices"].as_array().unwrap() {
            if let Some(text) = choice["delta"]["content"].as_str() {
                out.content.push_str(text);
            }
            for call in choice["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(name) = call["function"]["name"].as_str() {
                    out.tool_name = Some(name.to_owned());
                }
                out.tool_arguments
                    .push_str(call["function"]["arguments"].as_str().unwrap_or_default());
            }
            if let Some(finish) = choice["finish_reason"].as_str() {
                out.finish = Some(finish.to_owned());
            }
        }
    }
    out
}

#[tokio::test]
async fn openai_plain_answer_usage_and_exact_cost() {
    let (app, fake) = app().await;
    let response = app
        .post("/v1/chat/completions", chat("openai-cached"))
        .await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    assert!(response.headers().contains_key("x-askacme-overhead-ms"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Parental leave is 16 weeks."
    );
    assert_eq!(
        body["usage"]["prompt_tokens_details"]["cached_tokens"],
        1500
    );
    assert_eq!(
        body["system_fingerprint"], "fp_fake",
        "unknown upstream fields pass through"
    );
    let (headers, sent) = fake.last();
    assert_eq!(headers["authorization"], "Bearer sk-test");
    assert_eq!(
        sent["model"], "cached",
        "the deployment's upstream model name is sent"
    );
    assert_eq!(sent["messages"][0]["role"], "system");

    let row = app.log_row(&id).await;
    assert_eq!(row.deployment.as_deref(), Some("openai-cached"));
    assert_eq!(row.provider.as_deref(), Some("fakeai"));
    assert_eq!(
        (row.prompt_tokens, row.completion_tokens, row.cached_tokens),
        (2000, 300, 1500)
    );
    // 500 × $2.50 + 1500 × $1.25 + 300 × $10 per Mtok = 1250 + 1875 + 3000 µ$.
    assert_eq!(row.cost_micro_usd, 6125);
    assert_eq!(row.status, askacme::store::RequestStatus::Success);
}

#[tokio::test]
async fn openai_stream_relays_chunks_usage_and_done() {
    let (app, fake) = app().await;
    let response = app
        .post("/v1/chat/completions", streamed("openai-ok"))
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let id = request_id(&response);
    let out = assemble(&response.text().await.unwrap());
    assert_eq!(out.content, "Parental leave is 16 weeks.");
    assert_eq!(out.finish.as_deref(), Some("stop"));
    assert_eq!(out.usage.unwrap()["prompt_tokens"], 2000);
    assert!(out.done);
    assert_eq!(
        fake.last().1["stream_options"]["include_usage"],
        true,
        "usage is always requested upstream"
    );
    let row = app.log_row(&id).await;
    assert!(row.stream);
    assert_eq!(
        row.cost_micro_usd, 8000,
        "2000 × $2.50 + 300 × $10 per Mtok"
    );
}

/// Provider prompt-cache reads and writes are priced exactly when streamed, as when not:
/// OpenAI's `prompt_tokens_details.cached_tokens` in the final usage chunk, Anthropic's
/// `cache_read_input_tokens` / `cache_creation_input_tokens` in `message_start`.
#[tokio::test]
async fn cached_token_costs_are_exact_when_streamed() {
    let (app, _fake) = app().await;
    for (model, cached, written, cost) in [
        // 500 uncached × $2.50 + 1500 cached × $1.25 + 300 × $10 per Mtok.
        ("openai-cached", 1500, 0, 6125),
        // 10 uncached × $3 + 100 read × $0.30 + 20 written × $3.75 + 5 × $15 per Mtok.
        ("claude-ok", 100, 20, 210),
    ] {
        let response = app.post("/v1/chat/completions", streamed(model)).await;
        let id = request_id(&response);
        let out = assemble(&response.text().await.unwrap());
        assert!(out.done, "{model}");
        assert_eq!(
            out.usage.unwrap()["prompt_tokens_details"]["cached_tokens"],
            cached,
            "{model}"
        );
        let row = app.log_row(&id).await;
        assert_eq!(
            (row.cached_tokens, row.cache_write_tokens),
            (cached, written),
            "{model}"
        );
        assert_eq!(row.cost_micro_usd, cost, "{model}");
    }
}

#[tokio::test]
async fn stream_without_include_usage_gets_no_usage_chunk() {
    let (app, _fake) = app().await;
    let mut body = chat("openai-ok");
    body["stream"] = json!(true);
    let response = app.post("/v1/chat/completions", body).await;
    let text = response.text().await.unwrap();
    assert!(!text.contains("\"usage\""), "{text}");
    assert_eq!(assemble(&text).content, "Parental leave is 16 weeks.");
}

#[tokio::test]
async fn openai_tool_calls_pass_through_plain_and_streamed() {
    let (app, fake) = app().await;
    let mut body = chat("openai-tool");
    body["tools"] = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]);
    body["tool_choice"] = json!("auto");
    let response: Value = app
        .post("/v1/chat/completions", body.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(response["choices"][0]["finish_reason"], "tool_calls");
    let call = &response["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "lookup");
    assert_eq!(call["function"]["arguments"], "{\"q\":\"leave\"}");
    assert_eq!(
        fake.last().1["tools"],
        body["tools"],
        "tools are forwarded unchanged"
    );

    body["stream"] = json!(true);
    let out = assemble(
        &app.post("/v1/chat/completions", body)
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(out.tool_name.as_deref(), Some("lookup"));
    assert_eq!(out.tool_arguments, "{\"q\":\"leave\"}");
    assert_eq!(out.finish.as_deref(), Some("tool_calls"));
}

#[tokio::test]
async fn upstream_faults_map_to_gateway_errors() {
    let (app, _fake) = app().await;
    for (model, status, code) in [
        ("openai-err-500", 502, "upstream_error"),
        ("openai-err-503", 502, "upstream_error"),
        ("openai-err-429", 429, "upstream_rate_limited"),
        ("openai-err-401", 502, "upstream_auth_failed"),
        ("openai-err-400", 400, "upstream_rejected_request"),
        ("openai-malformed", 502, "upstream_bad_response"),
        ("openai-hang", 504, "upstream_timeout"),
        ("unreachable", 503, "upstream_unavailable"),
        ("claude-err-529", 502, "upstream_error"),
        ("claude-err-429", 429, "upstream_rate_limited"),
        ("claude-err-400", 400, "upstream_rejected_request"),
    ] {
        let response = app.post("/v1/chat/completions", chat(model)).await;
        assert_eq!(response.status(), status, "{model}");
        if status == 429 {
            assert_eq!(
                response.headers()["retry-after"],
                "7",
                "{model}: Retry-After is passed on"
            );
        }
        let id = request_id(&response);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{model}: {body}");
        let row = app.log_row(&id).await;
        assert_eq!(row.status, askacme::store::RequestStatus::Error);
        assert_eq!(row.http_status, status);
        assert!(row.error.is_some());
    }
}

#[tokio::test]
async fn upstream_fault_before_the_first_byte_of_a_stream_is_a_plain_error() {
    let (app, _fake) = app().await;
    let response = app
        .post("/v1/chat/completions", streamed("openai-err-500"))
        .await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "api_error");
}

#[tokio::test]
async fn a_cut_stream_ends_with_an_error_event_and_no_done() {
    let (app, _fake) = app().await;
    for model in [
        "openai-stream-cut",
        "claude-stream-cut",
        "claude-stream-error",
    ] {
        let response = app.post("/v1/chat/completions", streamed(model)).await;
        assert_eq!(response.status(), 200, "{model}: headers were already sent");
        let id = request_id(&response);
        let out = assemble(&response.text().await.unwrap());
        assert!(!out.done, "{model}: a cut stream must not look complete");
        assert!(out.error.is_some(), "{model}: error event expected");
        assert!(
            out.content.starts_with("Parental"),
            "{model}: content before the cut was relayed"
        );
        let row = app.log_row(&id).await;
        assert_eq!(row.status, askacme::store::RequestStatus::Error, "{model}");
        assert!(
            row.completion_tokens > 0,
            "{model}: partial usage is logged"
        );
        assert!(row.cost_micro_usd > 0, "{model}: and priced");
        // The upstream read the prompt and bills it, usage chunk or not.
        assert!(row.prompt_tokens > 0, "{model}: the prompt is never free");
        if model == "openai-stream-cut" {
            assert!(
                row.usage_estimated,
                "{model}: no usage arrived, so it is estimated"
            );
            // "Be brief." and the question: 9 + 27 characters / 3 + 4 per message.
            assert_eq!(
                row.prompt_tokens,
                3 + 4 + 9 + 4,
                "{model}: the limiter's estimate"
            );
        }
    }
}

#[tokio::test]
async fn anthropic_plain_answer_is_translated_with_cache_usage() {
    let (app, fake) = app().await;
    let response = app.post("/v1/chat/completions", chat("claude-ok")).await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Parental leave is 16 weeks."
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["usage"]["prompt_tokens"], 130,
        "input + cache reads + cache writes"
    );
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 100);
    let (headers, sent) = fake.last();
    assert_eq!(headers["x-api-key"], "ak-test");
    assert_eq!(sent["system"], "Be brief.");
    assert_eq!(sent["messages"].as_array().unwrap().len(), 1);
    assert!(
        sent["max_tokens"].as_u64().unwrap() > 0,
        "Anthropic requires max_tokens"
    );
    let row = app.log_row(&id).await;
    assert_eq!((row.cached_tokens, row.cache_write_tokens), (100, 20));
    // 10 × $3 + 100 × $0.30 + 20 × $3.75 + 5 × $15 per Mtok.
    assert_eq!(row.cost_micro_usd, 210);
}

#[tokio::test]
async fn anthropic_tool_use_becomes_tool_calls() {
    let (app, fake) = app().await;
    let mut body = chat("claude-tool");
    body["tools"] = json!([{"type": "function", "function": {"name": "lookup", "description": "search", "parameters": {"type": "object"}}}]);
    let response: Value = app
        .post("/v1/chat/completions", body.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(response["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(response["choices"][0]["message"]["content"], "Let me look.");
    let call = &response["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "toolu_1");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"q": "leave"})
    );
    assert_eq!(
        fake.last().1["tools"][0]["input_schema"],
        json!({"type": "object"})
    );

    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = app.post("/v1/chat/completions", body).await;
    let id = request_id(&response);
    let out = assemble(&response.text().await.unwrap());
    assert_eq!(out.content, "Parental leave is 16 weeks.");
    assert_eq!(out.tool_name.as_deref(), Some("lookup"));
    assert_eq!(out.tool_arguments, "{\"q\":\"leave\"}");
    assert_eq!(out.finish.as_deref(), Some("tool_calls"));
    let usage = out.usage.unwrap();
    assert_eq!(usage["prompt_tokens"], 130);
    assert_eq!(usage["completion_tokens"], 5);
    assert!(out.done);
    assert_eq!(
        app.log_row(&id).await.cost_micro_usd,
        210,
        "streamed usage is priced like plain usage"
    );
}

#[tokio::test]
async fn openai_embeddings_are_relayed_in_input_order() {
    let (app, _fake) = app().await;
    let response = app
        .post(
            "/v1/embeddings",
            json!({"model": "openai-ok", "input": ["a", "b", "c"]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (i, item) in data.iter().enumerate() {
        assert_eq!(item["index"], i);
        assert_eq!(item["embedding"][0], i as f64);
    }
    assert_eq!(body["usage"]["prompt_tokens"], 12);
    let err = app
        .post(
            "/v1/embeddings",
            json!({"model": "claude-ok", "input": "a"}),
        )
        .await;
    assert_eq!(
        err.status(),
        400,
        "Anthropic has no embeddings: a clear client error"
    );
}

#[tokio::test]
async fn models_lists_aliases_and_deployments() {
    let (app, _fake) = app().await;
    let body: Value = app
        .http
        .get(format!("{}/v1/models", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for expected in [
        "strong",
        "fast",
        "embed",
        "openai-ok",
        "claude-tool",
        "qwen2.5-coder-1.5b",
    ] {
        assert!(ids.contains(&expected), "{expected} missing from {ids:?}");
    }
}
