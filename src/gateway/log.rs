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
            if let Err(e) = db.insert_requests(&rows).await {
                tracing::error!(error = %e, rows = rows.len(), "cannot write request log rows");
            }
            rows.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}
