//! `askacme export finetune`: well-rated answers as OpenAI chat fine-tuning JSONL (system
//! prompt, the sources and question as the prompt renders them, the answer), for distilling
//! the strong model's behaviour into a cheaper one. The stored question and answer are already
//! redacted; the sources are retrieved again at export time (answers do not store them), so
//! after a knowledge-base change an example carries today's sources.

use serde_json::json;

use crate::gateway::{RequestContext, new_request_id};
use crate::pipeline::{AskError, Assistant};
use crate::providers::types::{Message, Role};
use crate::store::{Database, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ask(#[from] AskError),
}

/// What an export produced.
pub struct Exported {
    /// One JSON object per line.
    pub lines: Vec<String>,
    /// Answers left out because their prompt version is no longer known.
    pub skipped: usize,
}

pub async fn finetune(
    assistant: &Assistant,
    db: &Database,
    rating: &str,
    since_ms: i64,
    model: Option<&str>,
) -> Result<Exported, ExportError> {
    let ctx = RequestContext::new(new_request_id(), "eval/export");
    let mut lines = Vec::new();
    let mut skipped = 0;
    for answer in db.rated_answers(rating, since_ms, model).await? {
        let Some(version) = answer.prompt_version.split_once('@').map(|(_, v)| v) else {
            skipped += 1;
            continue;
        };
        let mut messages = match assistant
            .prompt_messages(&answer.question, version, &ctx)
            .await
        {
            Ok(messages) => messages,
            Err(AskError::Prompt(_)) => {
                skipped += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        messages.push(Message::new(Role::Assistant, answer.answer.clone()));
        let messages: Vec<_> = messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.text()}))
            .collect();
        lines.push(json!({ "messages": messages }).to_string());
    }
    Ok(Exported { lines, skipped })
}
