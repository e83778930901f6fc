//! Persistence: the embedded SQLite database (WAL) with its schema migrations. A leaf module
//! that knows rows, not policy.

mod answers;
mod cache;
mod eval;
mod keys;
mod rollup;

pub use answers::{AnswerRow, ConversationTurn, FeedbackItem, HumanRating};
pub use cache::{
    CacheOutcome, CacheRow, Feedback, GuardStats, HitFilter, SemanticEntry, SemanticHit,
    SemanticStats,
};
pub use eval::{Activation, ActivationAction, EvalResultRow, EvalRunRow};
pub use keys::{BudgetHold, KeyRecord, NewKey};
pub use rollup::{AnswerCell, AnswerGroup, DailyRequests, Grouping, Histogram, group_cells};

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Row};

/// Schema migrations, applied in order, each once, each in its own transaction.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/0001_requests.sql")),
    (2, include_str!("../../migrations/0002_knowledge_base.sql")),
    (3, include_str!("../../migrations/0003_retrieval.sql")),
    (
        4,
        include_str!("../../migrations/0004_gateway_reliability.sql"),
    ),
    (5, include_str!("../../migrations/0005_response_cache.sql")),
    (6, include_str!("../../migrations/0006_semantic_cache.sql")),
    (7, include_str!("../../migrations/0007_hardening.sql")),
    (
        8,
        include_str!("../../migrations/0008_semantic_monitoring.sql"),
    ),
    (9, include_str!("../../migrations/0009_guards.sql")),
    (10, include_str!("../../migrations/0010_evaluation.sql")),
    (11, include_str!("../../migrations/0011_conversations.sql")),
    (12, include_str!("../../migrations/0012_rollups.sql")),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {url}: {error}")]
    Open { url: String, error: sqlx::Error },
    #[error("cannot create the data directory {path}: {error}")]
    CreateDir { path: String, error: std::io::Error },
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("unreadable row: {0}")]
    Decode(String),
}

/// Milliseconds since the UNIX epoch: every stored time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How a request ended, as stored in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Success,
    /// Refused or failed: the `error` column says why.
    Error,
    /// The caller went away before the answer was complete.
    Cancelled,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Success => "success",
            RequestStatus::Error => "error",
            RequestStatus::Cancelled => "cancelled",
        }
    }
}

impl FromStr for RequestStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "success" => Ok(RequestStatus::Success),
            "error" => Ok(RequestStatus::Error),
            "cancelled" => Ok(RequestStatus::Cancelled),
            other => Err(format!("unknown request status `{other}`")),
        }
    }
}

/// One row of the `requests` table (serialisable for the log's spill file).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RequestRecord {
    pub id: String,
    pub created_at_ms: i64,
    pub key_id: Option<String>,
    pub endpoint: String,
    /// `name@version` of the assistant prompt that made the request, if any.
    pub prompt_version: Option<String>,
    pub requested_model: String,
    pub deployment: Option<String>,
    pub provider: Option<String>,
    pub stream: bool,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub cache_write_tokens: u64,
    pub cost_micro_usd: u64,
    pub latency_ms: f64,
    pub provider_latency_ms: f64,
    pub status: RequestStatus,
    pub http_status: u16,
    pub error: Option<String>,
    /// Upstream calls made (retries and fallbacks included); 0 when none was made.
    pub attempts: u32,
    /// The routing decision: `model → deployment (reason)`, and the failures that led to it.
    pub route: Option<String>,
    /// Budget held for the call; writing the row releases it and books `cost_micro_usd` to
    /// the key.
    pub held_micro_usd: u64,
    /// `exact` when served from the response cache.
    pub cache: Option<String>,
    /// What the cached answer cost when it was made: the money a hit saved.
    pub saved_micro_usd: u64,
    /// The conversation (`/v1/ask`'s `session_id`) and the end user (`user`) the caller named.
    pub session_id: Option<String>,
    pub user: Option<String>,
    /// The token counts are the gateway's estimate: the provider never reported usage.
    pub usage_estimated: bool,
    /// The guard that refused the request, `stage:reason` (`input:instruction_override`,
    /// `output:pii_leak`); `None` when none did.
    pub guard: Option<String>,
    /// Personal values redacted from the request before it was stored or sent on.
    pub redactions: u64,
}

impl RequestRecord {
    /// A successful row with nothing measured yet; the gateway fills in the rest.
    pub fn new(
        id: impl Into<String>,
        endpoint: impl Into<String>,
        requested_model: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            created_at_ms: now_ms(),
            key_id: None,
            endpoint: endpoint.into(),
            prompt_version: None,
            requested_model: requested_model.into(),
            deployment: None,
            provider: None,
            stream: false,
            prompt_tokens: 0,
            completion_tokens: 0,
            cached_tokens: 0,
            cache_write_tokens: 0,
            cost_micro_usd: 0,
            latency_ms: 0.0,
            provider_latency_ms: 0.0,
            status: RequestStatus::Success,
            http_status: 200,
            error: None,
            attempts: 0,
            route: None,
            held_micro_usd: 0,
            cache: None,
            saved_micro_usd: 0,
            session_id: None,
            user: None,
            usage_estimated: false,
            guard: None,
            redactions: 0,
        }
    }
}

#[derive(Clone)]
pub struct Database {
    pool: SqlitePool,
}

impl Database {
    /// Opens (creating if needed) the database at a `sqlite://PATH` URL and migrates it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let open_err = |error| StoreError::Open {
            url: url.to_owned(),
            error,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            // A REPLACE then fires the delete triggers that keep the rollups (`rollup`); the
            // application's own writes are upserts, which need no pragma.
            .pragma("recursive_triggers", "ON");
        if let Some(parent) = options
            .get_filename()
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|error| StoreError::CreateDir {
                path: parent.display().to_string(),
                error,
            })?;
        }
        // Migrate on one connection before the pool exists. Migrating through the pool could
        // spread the steps over several connections, and a connection whose schema was read
        // before a later `ALTER TABLE` prepares `SELECT *` with the old columns: SQLite then
        // re-prepares the statement with the new ones under sqlx's feet.
        let mut connection = SqliteConnection::connect_with(&options)
            .await
            .map_err(open_err)?;
        migrate(&mut connection).await?;
        connection.close().await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        Ok(Self { pool })
    }

    /// Inserts rows in one transaction, all or none, and books each row's cost to its key's
    /// spend (releasing what the request held of the key's budget) in the same transaction.
    pub async fn insert_requests(&self, rows: &[RequestRecord]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for row in rows {
            sqlx::query(
                "INSERT INTO requests (id, created_at_ms, key_id, endpoint, requested_model, deployment, provider, \
                 stream, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, cost_micro_usd, \
                 latency_ms, provider_latency_ms, status, http_status, error, prompt_version, attempts, route, \
                 held_micro_usd, cache, saved_micro_usd, session_id, user, usage_estimated, guard, redactions) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&row.id)
            .bind(row.created_at_ms)
            .bind(&row.key_id)
            .bind(&row.endpoint)
            .bind(&row.requested_model)
            .bind(&row.deployment)
            .bind(&row.provider)
            .bind(row.stream)
            .bind(to_i64(row.prompt_tokens))
            .bind(to_i64(row.completion_tokens))
            .bind(to_i64(row.cached_tokens))
            .bind(to_i64(row.cache_write_tokens))
            .bind(to_i64(row.cost_micro_usd))
            .bind(row.latency_ms)
            .bind(row.provider_latency_ms)
            .bind(row.status.as_str())
            .bind(i64::from(row.http_status))
            .bind(&row.error)
            .bind(&row.prompt_version)
            .bind(i64::from(row.attempts))
            .bind(&row.route)
            .bind(to_i64(row.held_micro_usd))
            .bind(&row.cache)
            .bind(to_i64(row.saved_micro_usd))
            .bind(&row.session_id)
            .bind(&row.user)
            .bind(row.usage_estimated)
            .bind(&row.guard)
            .bind(to_i64(row.redactions))
            .execute(&mut *tx)
            .await?;
            if let Some(key_id) = &row.key_id
                && (row.cost_micro_usd > 0 || row.held_micro_usd > 0)
            {
                keys::book_spend(&mut tx, &row.id, key_id, row.cost_micro_usd).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The most recent rows, newest first.
    pub async fn recent_requests(&self, limit: u32) -> Result<Vec<RequestRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM requests ORDER BY created_at_ms DESC, id DESC LIMIT ?")
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(decode_request).collect()
    }

    pub async fn request(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM requests WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_request).transpose()
    }

    #[cfg(test)]
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Cheap round trip for readiness checks.
    /// Runs a script of SQL statements in one transaction: for tools that generate data (the
    /// dashboard benchmark's million-row log), never for anything a request says.
    pub async fn execute_script(&self, sql: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // The script is the caller's own text, not request data.
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// A document as the knowledge base stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRecord {
    pub root: String,
    pub path: String,
    pub collection: String,
    pub title: String,
    pub content_sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRecord {
    pub ordinal: u32,
    /// Headings joined with " > ".
    pub heading_path: String,
    pub text: String,
    pub span: std::ops::Range<usize>,
    /// Unit-length embedding of the chunk as the retriever sees it; empty when not embedded.
    pub embedding: Vec<f32>,
    /// Why ingest flagged the chunk as carrying instructions aimed at a model (indirect
    /// prompt injection); `None` for ordinary text.
    pub flagged: Option<String>,
}

/// A stored chunk with the document it belongs to, for retrieval and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChunk {
    pub id: i64,
    pub document_path: String,
    pub collection: String,
    pub title: String,
    pub chunk: ChunkRecord,
}

fn stored_chunk(r: &sqlx::sqlite::SqliteRow) -> Result<StoredChunk, StoreError> {
    let offset = |name: &str| -> Result<usize, StoreError> {
        Ok(usize::try_from(get_u64(r, name)?).unwrap_or(usize::MAX))
    };
    Ok(StoredChunk {
        id: r.try_get("id")?,
        document_path: r.try_get("path")?,
        collection: r.try_get("collection")?,
        title: r.try_get("title")?,
        chunk: ChunkRecord {
            ordinal: get_int(r, "ordinal")?,
            heading_path: r.try_get("heading_path")?,
            text: r.try_get("text")?,
            span: offset("span_start")?..offset("span_end")?,
            embedding: decode_vector(r.try_get::<Option<Vec<u8>>, _>("embedding")?.as_deref())?,
            flagged: r.try_get("flagged")?,
        },
    })
}

impl Database {
    /// `path → content_sha256` of the documents ingested from `root`.
    pub async fn document_hashes(
        &self,
        root: &str,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let rows = sqlx::query("SELECT path, content_sha256 FROM documents WHERE root = ?")
            .bind(root)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("path")?, r.try_get("content_sha256")?)))
            .collect()
    }

    /// Replaces a document and all its chunks in one transaction: readers see the old version
    /// or the new one, never a mix.
    pub async fn replace_document(
        &self,
        document: &DocumentRecord,
        chunks: &[ChunkRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM documents WHERE root = ? AND path = ?")
            .bind(&document.root)
            .bind(&document.path)
            .execute(&mut *tx)
            .await?;
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO documents (root, path, collection, title, content_sha256, bytes, ingested_at_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&document.root)
        .bind(&document.path)
        .bind(&document.collection)
        .bind(&document.title)
        .bind(&document.content_sha256)
        .bind(to_i64(document.bytes))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        for chunk in chunks {
            sqlx::query(
                "INSERT INTO chunks (document_id, ordinal, heading_path, text, span_start, span_end, embedding, flagged) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(i64::from(chunk.ordinal))
            .bind(&chunk.heading_path)
            .bind(&chunk.text)
            .bind(to_i64(chunk.span.start as u64))
            .bind(to_i64(chunk.span.end as u64))
            .bind(encode_vector(&chunk.embedding))
            .bind(&chunk.flagged)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes documents (and, by cascade, their chunks).
    pub async fn delete_documents(&self, root: &str, paths: &[String]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for path in paths {
            sqlx::query("DELETE FROM documents WHERE root = ? AND path = ?")
                .bind(root)
                .bind(path)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every stored chunk, in document and chunk order.
    pub async fn all_chunks(&self) -> Result<Vec<StoredChunk>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.id, d.path, d.collection, d.title, c.ordinal, c.heading_path, c.text, c.span_start, c.span_end, c.embedding, c.flagged \
             FROM chunks c JOIN documents d ON d.id = c.document_id ORDER BY d.root, d.path, c.ordinal",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_chunk).collect()
    }

    /// The chunks (without embeddings) of the document that holds chunk `id`, in the order of
    /// their spans; empty when there is no such chunk.
    pub async fn document_chunks(&self, id: i64) -> Result<Vec<StoredChunk>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.id, d.path, d.collection, d.title, c.ordinal, c.heading_path, c.text, c.span_start, c.span_end, NULL AS embedding, c.flagged \
             FROM chunks c JOIN documents d ON d.id = c.document_id \
             WHERE c.document_id = (SELECT document_id FROM chunks WHERE id = ?) \
             ORDER BY c.span_start, c.ordinal",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_chunk).collect()
    }

    /// Replaces stored chunk embeddings, all in one transaction.
    pub async fn set_embeddings(&self, updates: &[(i64, Vec<f32>)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (id, vector) in updates {
            sqlx::query("UPDATE chunks SET embedding = ? WHERE id = ?")
                .bind(encode_vector(vector))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        // New vectors make every search index built before them stale.
        sqlx::query(
            "UPDATE kb_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The knowledge base's generation: it moves whenever a document is added, replaced or deleted.
    pub async fn kb_generation(&self) -> Result<i64, StoreError> {
        let value: String =
            sqlx::query_scalar("SELECT value FROM kb_meta WHERE key = 'generation'")
                .fetch_one(&self.pool)
                .await?;
        value
            .parse()
            .map_err(|_| StoreError::Decode(format!("kb generation `{value}`")))
    }

    pub async fn kb_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM kb_meta WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn set_kb_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO kb_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

async fn migrate(connection: &mut SqliteConnection) -> Result<(), StoreError> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        .execute(&mut *connection)
        .await?;
    for &(version, sql) in MIGRATIONS {
        let mut tx = connection.begin().await?;
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        if applied.is_none() {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_migrations (version) VALUES (?)")
                .bind(version)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Vectors are stored as little-endian f32s: compact and independent of the host.
fn encode_vector(vector: &[f32]) -> Option<Vec<u8>> {
    (!vector.is_empty()).then(|| vector.iter().flat_map(|x| x.to_le_bytes()).collect())
}

fn decode_vector(bytes: Option<&[u8]>) -> Result<Vec<f32>, StoreError> {
    let Some(bytes) = bytes else {
        return Ok(Vec::new());
    };
    if bytes.len() % 4 != 0 {
        return Err(StoreError::Decode(format!(
            "embedding of {} bytes is not a whole number of f32s",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A count or amount column (stored as INTEGER, never negative on purpose) as `u64`.
fn get_u64(row: &sqlx::sqlite::SqliteRow, name: &str) -> Result<u64, StoreError> {
    Ok(row.try_get::<i64, _>(name)?.max(0) as u64)
}

/// A nullable count or amount column as `Option<u64>`.
fn get_opt_u64(row: &sqlx::sqlite::SqliteRow, name: &str) -> Result<Option<u64>, StoreError> {
    Ok(row
        .try_get::<Option<i64>, _>(name)?
        .map(|v| v.max(0) as u64))
}

/// An INTEGER column that must fit `T` (a status code, an ordinal).
fn get_int<T: TryFrom<i64>>(row: &sqlx::sqlite::SqliteRow, name: &str) -> Result<T, StoreError>
where
    T::Error: std::fmt::Display,
{
    T::try_from(row.try_get::<i64, _>(name)?)
        .map_err(|e| StoreError::Decode(format!("{name}: {e}")))
}

fn decode_request(row: &sqlx::sqlite::SqliteRow) -> Result<RequestRecord, StoreError> {
    let count = |name: &str| get_u64(row, name);
    let status: String = row.try_get("status")?;
    Ok(RequestRecord {
        id: row.try_get("id")?,
        created_at_ms: row.try_get("created_at_ms")?,
        key_id: row.try_get("key_id")?,
        endpoint: row.try_get("endpoint")?,
        prompt_version: row.try_get("prompt_version")?,
        requested_model: row.try_get("requested_model")?,
        deployment: row.try_get("deployment")?,
        provider: row.try_get("provider")?,
        stream: row.try_get("stream")?,
        prompt_tokens: count("prompt_tokens")?,
        completion_tokens: count("completion_tokens")?,
        cached_tokens: count("cached_tokens")?,
        cache_write_tokens: count("cache_write_tokens")?,
        cost_micro_usd: count("cost_micro_usd")?,
        latency_ms: row.try_get("latency_ms")?,
        provider_latency_ms: row.try_get("provider_latency_ms")?,
        status: status.parse().map_err(StoreError::Decode)?,
        http_status: get_int(row, "http_status")?,
        error: row.try_get("error")?,
        attempts: get_int(row, "attempts")?,
        route: row.try_get("route")?,
        held_micro_usd: count("held_micro_usd")?,
        cache: row.try_get("cache")?,
        saved_micro_usd: count("saved_micro_usd")?,
        session_id: row.try_get("session_id")?,
        user: row.try_get("user")?,
        usage_estimated: row.try_get("usage_estimated")?,
        guard: row.try_get("guard")?,
        redactions: count("redactions")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database left by an earlier release (migrations 1 and 2 only) opens, gains the new
    /// columns, and every pooled connection reads rows with them.
    #[tokio::test]
    async fn an_older_database_is_migrated_and_read_with_the_new_columns() {
        let dir =
            std::env::temp_dir().join(format!("askacme-store-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("old.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        let mut old = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY); \
             INSERT INTO schema_migrations VALUES (1), (2);",
        )
        .execute(&mut old)
        .await
        .unwrap();
        for &(_, sql) in &MIGRATIONS[..2] {
            sqlx::raw_sql(sql).execute(&mut old).await.unwrap();
        }
        old.close().await.unwrap();

        let db = Database::open(&url).await.unwrap();
        let row = RequestRecord {
            created_at_ms: 1,
            prompt_version: Some("ask_acme@v3".into()),
            prompt_tokens: 1,
            completion_tokens: 1,
            latency_ms: 1.0,
            provider_latency_ms: 0.5,
            ..RequestRecord::new("req_1", "/v1/ask", "strong")
        };
        db.insert_requests(std::slice::from_ref(&row))
            .await
            .unwrap();
        // Concurrent reads spread over the pool's connections.
        let reads = (0..8).map(|_| db.request("req_1"));
        for read in futures::future::join_all(reads).await {
            assert_eq!(read.unwrap().as_ref(), Some(&row));
        }
        assert_eq!(db.kb_generation().await.unwrap(), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
