//! The request log writer. Recording a row is a channel send; a background task batches rows into
//! one SQLite transaction each, so logging never sits on a request's critical path. The writer
//! lingers up to `LINGER` after the first row of a batch so that, under load, one commit covers
//! many requests instead of each request paying for its own; `flush` writes at once.
//!
//! A row is never dropped silently. The queue is bounded (`QUEUE` rows); a row that finds it
//! full, or whose write still fails after `WRITE_ATTEMPTS` tries, goes to the spill file
//! (`<data dir>/request-log.spill.jsonl`, one JSON row per line), which is written back to the
//! database when the writer starts and after every batch that succeeds while it is not empty.
//! A spill file rather than back-pressure, because rows are recorded from `Drop` (a caller that
//! hung up), where waiting for room is not possible. Every process on the data directory may
//! spill: appends and claims take an OS lock on `request-log.spill.lock`, and a writer claims
//! the file by renaming it before writing it back, deleting it only once the rows are in.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Database, RequestRecord};

/// Rows written per transaction at most; bounded so a burst does not hold the write lock long.
const BATCH: usize = 256;
/// How long a row may wait for others to share its commit.
const LINGER: Duration = Duration::from_millis(20);
/// Rows waiting for the writer at most; beyond it, rows go to the spill file.
const QUEUE: usize = 16_384;
/// Tries of a batch (the database busy or briefly unavailable) before it is written row by row.
const WRITE_ATTEMPTS: u32 = 3;
const RETRY_DELAY: Duration = Duration::from_millis(100);

enum Command {
    Record(Box<RequestRecord>),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct RequestLog {
    commands: mpsc::Sender<Command>,
    db: Database,
    spill: Arc<Spill>,
}

/// What a row tells the metrics: a cache hit and what it saved, a guard's verdict. (Model
/// calls are counted where they are made, which knows the operation; redactions where the
/// question is guarded, which sees every question, not only those that call a model.)
fn observe(row: &RequestRecord) {
    use crate::telemetry::metrics;
    if let Some(guard) = &row.guard {
        let mut parts = guard.splitn(3, ':');
        let (policy, stage, reason) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        metrics::guard_verdict(policy, stage, reason);
    }
    if let Some(kind) = row
        .cache
        .as_deref()
        .filter(|c| matches!(*c, "exact" | "semantic"))
    {
        metrics::cache_hit(kind, row.saved_micro_usd);
    }
}

impl RequestLog {
    /// Starts the (supervised) writer task on the current runtime. `spill` is where rows that
    /// cannot be written go; `None` keeps them only in the error log (tests, in-memory use).
    pub fn start(db: Database, spill: Option<PathBuf>) -> Self {
        let (commands, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let spill = Arc::new(Spill { path: spill });
        let writer_db = db.clone();
        let writer_spill = spill.clone();
        crate::tasks::supervise("request-log writer", move || {
            writer(writer_db.clone(), receiver.clone(), writer_spill.clone())
        });
        Self {
            commands,
            db,
            spill,
        }
    }

    pub fn record(&self, row: RequestRecord) {
        observe(&row);
        if let Err(e) = self.commands.try_send(Command::Record(Box::new(row))) {
            let (mpsc::error::TrySendError::Full(command)
            | mpsc::error::TrySendError::Closed(command)) = e;
            if let Command::Record(row) = command {
                self.spill
                    .append_soon(vec![*row], "the request log queue is full");
            }
        }
    }

    /// Waits until every row recorded before this call is in the database.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }
}

/// The file rows go to when the database cannot take them.
struct Spill {
    path: Option<PathBuf>,
}

impl Spill {
    /// Appends from a request thread without blocking it: file I/O goes to the blocking pool.
    fn append_soon(self: &Arc<Self>, rows: Vec<RequestRecord>, why: &'static str) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let spill = self.clone();
                runtime.spawn_blocking(move || spill.append(&rows, why));
            }
            Err(_) => self.append(&rows, why),
        }
    }

    fn append(&self, rows: &[RequestRecord], why: &str) {
        let Some(path) = &self.path else {
            for row in rows {
                tracing::error!(id = %row.id, why, "request log row lost: no spill file");
            }
            return;
        };
        let written = Self::locked(path).and_then(|_lock| {
            let mut lines = Vec::new();
            for row in rows {
                serde_json::to_writer(&mut lines, row)?;
                lines.push(b'\n');
            }
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            file.write_all(&lines)?;
            file.sync_data()
        });
        match written {
            Ok(()) => {
                tracing::warn!(rows = rows.len(), path = %path.display(), why, "request log rows spilled to file")
            }
            Err(e) => {
                for row in rows {
                    tracing::error!(id = %row.id, why, error = %e, "request log row lost: cannot write the spill file");
                }
            }
        }
    }

    /// The exclusive lock every process takes to append to or claim the spill file.
    fn locked(path: &std::path::Path) -> std::io::Result<std::fs::File> {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.with_extension("lock"))?;
        lock.lock()?;
        Ok(lock)
    }

    /// Claims the spilled rows: the file is renamed (so appends start a new one) and read. The
    /// claimed file is removed by `release` once its rows are back in the database; if this
    /// process dies first, the next writer to start picks the claimed file up.
    fn claim(&self, include_orphans: bool) -> Vec<(PathBuf, Vec<RequestRecord>)> {
        let Some(path) = &self.path else {
            return Vec::new();
        };
        let mut claimed = Vec::new();
        if include_orphans {
            claimed.extend(orphaned_claims(path));
        }
        let renamed = Self::locked(path).and_then(|_lock| {
            if !path.exists() {
                return Ok(None);
            }
            let claim = path.with_extension(format!("{}.replaying", uuid::Uuid::now_v7().simple()));
            std::fs::rename(path, &claim)?;
            Ok(Some(claim))
        });
        match renamed {
            Ok(Some(claim)) => claimed.push(claim),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot claim the request log spill file"),
        }
        claimed
            .into_iter()
            .map(|claim| {
                let rows = read_rows(&claim);
                (claim, rows)
            })
            .collect()
    }

    fn has_rows(&self) -> bool {
        self.path
            .as_ref()
            .is_some_and(|p| p.metadata().is_ok_and(|m| m.len() > 0))
    }
}

/// Claimed files left by a writer that died while writing them back.
fn orphaned_claims(path: &std::path::Path) -> Vec<PathBuf> {
    let (Some(dir), Some(stem)) = (path.parent(), path.file_stem().and_then(|s| s.to_str())) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{stem}.")) && n.ends_with(".replaying"))
        })
        .collect()
}

fn read_rows(path: &std::path::Path) -> Vec<RequestRecord> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        match line.map(|l| serde_json::from_str::<RequestRecord>(&l)) {
            Ok(Ok(row)) => rows.push(row),
            Ok(Err(e)) => {
                tracing::error!(error = %e, path = %path.display(), "unreadable line in a request log spill file; skipped")
            }
            Err(e) => {
                tracing::error!(error = %e, path = %path.display(), "cannot read a request log spill file")
            }
        }
    }
    rows
}

async fn writer(
    db: Database,
    receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Command>>>,
    spill: Arc<Spill>,
) {
    let mut receiver = receiver.lock().await;
    write_back_spilled(&db, &spill, true).await;
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
            if write(&db, &rows, &spill).await && spill.has_rows() {
                write_back_spilled(&db, &spill, false).await;
            }
            rows.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Writes the spilled rows back; those that still fail are spilled again. A row whose id is
/// already in the database was written after all (its commit was reported failed, or another
/// writer got there first) and is dropped as a duplicate.
async fn write_back_spilled(db: &Database, spill: &Arc<Spill>, include_orphans: bool) {
    let claiming = spill.clone();
    let claims = tokio::task::spawn_blocking(move || claiming.claim(include_orphans))
        .await
        .unwrap_or_default();
    for (claim, rows) in claims {
        tracing::info!(rows = rows.len(), "writing spilled request log rows back");
        let mut failed = Vec::new();
        for row in rows {
            if written(db, &row.id).await {
                continue;
            }
            if let Err(e) = db.insert_requests(std::slice::from_ref(&row)).await
                && !written(db, &row.id).await
            {
                tracing::warn!(id = %row.id, error = %e, "spilled request log row still cannot be written");
                failed.push(row);
            }
        }
        if !failed.is_empty() {
            let spill = spill.clone();
            let _ =
                tokio::task::spawn_blocking(move || spill.append(&failed, "still failing")).await;
        }
        if let Err(e) = std::fs::remove_file(&claim) {
            tracing::error!(error = %e, path = %claim.display(), "cannot remove a written-back spill file");
        }
    }
}

async fn written(db: &Database, id: &str) -> bool {
    matches!(db.request(id).await, Ok(Some(_)))
}

/// One transaction for the batch, tried `WRITE_ATTEMPTS` times; if it keeps failing, row by
/// row, so a bad row costs only itself, and what still fails is spilled. True when everything
/// reached the database.
async fn write(db: &Database, rows: &[RequestRecord], spill: &Arc<Spill>) -> bool {
    let mut error = None;
    for attempt in 0..WRITE_ATTEMPTS {
        match db.insert_requests(rows).await {
            Ok(()) => return true,
            Err(e) => error = Some(e),
        }
        if attempt + 1 < WRITE_ATTEMPTS {
            tokio::time::sleep(RETRY_DELAY * 2u32.pow(attempt)).await;
        }
    }
    if let Some(e) = error {
        tracing::warn!(error = %e, rows = rows.len(), "request log batch failed; writing rows one by one");
    }
    let mut failed = Vec::new();
    for row in rows {
        if let Err(e) = db.insert_requests(std::slice::from_ref(row)).await {
            tracing::error!(error = %e, id = %row.id, "cannot write request log row");
            failed.push(row.clone());
        }
    }
    if failed.is_empty() {
        return true;
    }
    let spill = spill.clone();
    let _ =
        tokio::task::spawn_blocking(move || spill.append(&failed, "the database refused the row"))
            .await;
    false
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

    fn temp_path(what: &str) -> PathBuf {
        std::env::temp_dir().join(format!("askacme-{what}-{}", uuid::Uuid::now_v7().simple()))
    }

    async fn ids(db: &Database) -> Vec<String> {
        db.recent_requests(10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    }

    #[tokio::test]
    async fn a_bad_row_does_not_lose_the_rest_of_its_batch() {
        let path = temp_path("log.db");
        let db = Database::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let log = RequestLog::start(db.clone(), None);
        log.record(row("a"));
        log.flush().await;
        // The duplicate fails the batch transaction; the rows beside it must still be written.
        log.record(row("b"));
        log.record(row("a"));
        log.record(row("c"));
        log.flush().await;
        let ids = ids(&db).await;
        assert_eq!(ids.len(), 3, "{ids:?}");
        for id in ["a", "b", "c"] {
            assert!(ids.contains(&id.to_string()), "{id} missing from {ids:?}");
        }
        let _ = std::fs::remove_file(path);
    }

    /// A row the database refuses is kept in the spill file, and written back by the next
    /// writer once the database takes it.
    #[tokio::test]
    async fn a_refused_row_is_spilled_and_written_back_later() {
        let dir = temp_path("spill");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("askacme.db");
        let spill = dir.join("request-log.spill.jsonl");
        let db = Database::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        // A trigger makes the database refuse row "x" for now.
        sqlx::raw_sql(
            "CREATE TRIGGER refuse_x BEFORE INSERT ON requests WHEN NEW.id = 'x' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .execute(db.pool())
        .await
        .unwrap();
        let log = RequestLog::start(db.clone(), Some(spill.clone()));
        log.record(row("x"));
        log.record(row("y"));
        log.flush().await;
        assert_eq!(ids(&db).await, vec!["y".to_string()]);
        let spilled = std::fs::read_to_string(&spill).unwrap();
        assert!(spilled.contains("\"id\":\"x\""), "{spilled}");

        sqlx::raw_sql("DROP TRIGGER refuse_x")
            .execute(db.pool())
            .await
            .unwrap();
        let restarted = RequestLog::start(db.clone(), Some(spill.clone()));
        restarted.flush().await;
        let mut ids = ids(&db).await;
        ids.sort();
        assert_eq!(ids, vec!["x".to_string(), "y".to_string()]);
        assert!(
            !spill.exists(),
            "the spill file is emptied once its rows are written"
        );
        assert!(
            orphaned_claims(&spill).is_empty(),
            "no claimed file is left behind"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
