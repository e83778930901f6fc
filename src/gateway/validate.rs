//! Checks of a chat request that JSON types alone cannot express. Each failure names the field,
//! the way OpenAI's `param` does, and becomes a 400.

use super::GatewayError;
use crate::providers::types::{ChatRequest, Role};

/// OpenAI accepts at most four stop sequences.
const MAX_STOP_SEQUENCES: usize = 4;

pub fn chat_request(request: &ChatRequest) -> Result<(), GatewayError> {
    if request.model.trim().is_empty() {
        return Err(GatewayError::invalid("`model` must not be empty", "model"));
    }
    if request.messages.is_empty() {
        return Err(GatewayError::invalid(
            "`messages` must contain at least one message",
            "messages",
        ));
    }
    for (i, message) in request.messages.iter().enumerate() {
        let has_content = message.content.is_some();
        let has_tool_calls = message.tool_calls.as_ref().is_some_and(|c| !c.is_empty());
        match message.role {
            Role::Assistant if !has_content && !has_tool_calls => {
                return Err(GatewayError::invalid(
                    format!("messages[{i}]: an assistant message needs `content` or `tool_calls`"),
                    format!("messages[{i}].content"),
                ));
            }
            Role::Tool if message.tool_call_id.is_none() => {
                return Err(GatewayError::invalid(
                    format!("messages[{i}]: a tool message needs `tool_call_id`"),
                    format!("messages[{i}].tool_call_id"),
                ));
            }
            Role::System | Role::Developer | Role::User | Role::Tool if !has_content => {
                return Err(GatewayError::invalid(
                    format!(
                        "messages[{i}]: a {} message needs `content`",
                        message.role.as_str()
                    ),
                    format!("messages[{i}].content"),
                ));
            }
            _ => {}
        }
    }
    if let Some(t) = request.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(GatewayError::invalid(
            format!("`temperature` must be between 0 and 2, got {t}"),
            "temperature",
        ));
    }
    if let Some(p) = request.top_p
        && !(p > 0.0 && p <= 1.0)
    {
        return Err(GatewayError::invalid(
            format!("`top_p` must be in (0, 1], got {p}"),
            "top_p",
        ));
    }
    for (name, value) in [
        ("max_tokens", request.max_tokens),
        ("max_completion_tokens", request.max_completion_tokens),
    ] {
        if value == Some(0) {
            return Err(GatewayError::invalid(
                format!("`{name}` must be at least 1"),
                name,
            ));
        }
    }
    if request.n.is_some_and(|n| n != 1) {
        return Err(GatewayError::invalid("only `n = 1` is supported", "n"));
    }
    let stops = request.stop_sequences();
    if stops.len() > MAX_STOP_SEQUENCES {
        return Err(GatewayError::invalid(
            format!("at most {MAX_STOP_SEQUENCES} stop sequences are allowed"),
            "stop",
        ));
    }
    if stops.iter().any(String::is_empty) {
        return Err(GatewayError::invalid(
            "stop sequences must not be empty",
            "stop",
        ));
    }
    if request.stream_options.is_some() && !request.is_stream() {
        return Err(GatewayError::invalid(
            "`stream_options` is only allowed when `stream` is true",
            "stream_options",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: serde_json::Value) -> Result<(), String> {
        let request: ChatRequest = serde_json::from_value(body).map_err(|e| e.to_string())?;
        chat_request(&request).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_an_ordinary_request() {
        check(json!({"model": "fast", "messages": [{"role": "user", "content": "hi"}], "temperature": 0})).unwrap();
    }

    #[test]
    fn rejects_what_types_allow_but_openai_does_not() {
        let user = json!([{"role": "user", "content": "hi"}]);
        for (body, needle) in [
            (json!({"model": "fast", "messages": []}), "messages"),
            (json!({"model": "", "messages": user}), "model"),
            (
                json!({"model": "fast", "messages": user, "temperature": 2.5}),
                "temperature",
            ),
            (
                json!({"model": "fast", "messages": user, "top_p": 0}),
                "top_p",
            ),
            (
                json!({"model": "fast", "messages": user, "max_tokens": 0}),
                "max_tokens",
            ),
            (json!({"model": "fast", "messages": user, "n": 3}), "n"),
            (
                json!({"model": "fast", "messages": user, "stop": ["a", "b", "c", "d", "e"]}),
                "stop",
            ),
            (
                json!({"model": "fast", "messages": [{"role": "user"}]}),
                "content",
            ),
            (
                json!({"model": "fast", "messages": [{"role": "tool", "content": "x"}]}),
                "tool_call_id",
            ),
            (
                json!({"model": "fast", "messages": user, "stream_options": {"include_usage": true}}),
                "stream",
            ),
        ] {
            let err = check(body.clone()).unwrap_err();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }
}
