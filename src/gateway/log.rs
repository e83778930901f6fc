//! The request log writer. Recording a row is a channel send; a background task batches rows into
//! one SQLite transaction each, so logging never sits on a request's critical path. The writer
//! lingers up to `LINGER` after the first row of a batch so that, under load, one commit covers
//! many requests instead of each request paying for its own; `flush` writes at once.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Database, RequestRecord};

/// Rows written per transaction at most; bounded so a burst does not hold the write lock long.
const BATCH: usize = 256;
/// How long a row may wait for others to share its commit.
const LINGER: Duration = Duration::from_millis(20);

enum Command {
    Record(Box<RequestRecord>),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct RequestLog {
    commands: mpsc::UnboundedSender<Command>,
    db: Database,
}

impl RequestLog {
    /// Starts the writer task on the current runtime.
    pub fn start(db: Database) -> Self {
        let (commands, receiver) = mpsc::unbounded_channel();
        tokio::spawn(writer(db.clone(), receiver));
        Self { commands, db }
    }

    pub fn record(&self, row: RequestRecord) {
        if self.commands.send(Command::Record(Box::new(row))).is_err() {
            tracing::error!("request log writer has stopped; a row was not recorded");
        }
    }

    /// Waits until every row recorded before this call is in the database.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }
}

async fn writer(db: Database, mut receiver: mpsc::UnboundedReceiver<Command>) {
    let mut rows = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    while let Some(first) = receiver.recv().await {
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Record(row) => rows.push(*row),
                Command::Flush(done) => flushes.push(done),
            }
            if rows.len() >= BATCH || !flushes.is_empty() {
                break;
            }
            next = tokio::time::timeout_at(deadline, receiver.recv())
                .await
                .ok()
                .flatten();
        }
        if !rows.is_empty() {
            write(&db, &rows).await;
            rows.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// One transaction for the batch; if that fails, row by row, so a bad row loses only itself.
async fn write(db: &Database, rows: &[RequestRecord]) {
    if let Err(e) = db.insert_requests(rows).await {
        tracing::warn!(error = %e, rows = rows.len(), "request log batch failed; writing rows one by one");
        for row in rows {
            if let Err(e) = db.insert_requests(std::slice::from_ref(row)).await {
                tracing::error!(error = %e, id = %row.id, "cannot write request log row");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> RequestRecord {
        RequestRecord {
            created_at_ms: 1,
            prompt_tokens: 1,
            completion_tokens: 1,
            latency_ms: 1.0,
            provider_latency_ms: 0.5,
            ..RequestRecord::new(id, "/v1/chat/completions", "fast")
        }
    }

    #[tokio::test]
    async fn a_bad_row_does_not_lose_the_rest_of_its_batch() {
        let path =
            std::env::temp_dir().join(format!("askacme-log-{}.db", uuid::Uuid::now_v7().simple()));
        let db = Database::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let log = RequestLog::start(db.clone());
        log.record(row("a"));
        log.flush().await;
        // The duplicate fails the batch transaction; the rows beside it must still be written.
        log.record(row("b"));
        log.record(row("a"));
        log.record(row("c"));
        log.flush().await;
        let ids: Vec<String> = db
            .recent_requests(10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        for id in ["a", "b", "c"] {
            assert!(ids.contains(&id.to_string()), "{id} missing from {ids:?}");
        }
        let _ = std::fs::remove_file(path);
    }
}
