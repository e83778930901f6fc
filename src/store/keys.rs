//! Virtual API keys: stored by hash, with their limits, allowed models and spend. Budget
//! reservations are single conditional `UPDATE`s, so every process sharing the database sees
//! one budget and no two requests can both take its last dollar.

use sqlx::Row;

use super::{Database, StoreError, get_opt_u64, get_u64, now_ms, to_i64};

/// A key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub key_prefix: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub budget_micro_usd: Option<u64>,
    pub spent_micro_usd: u64,
    pub reserved_micro_usd: u64,
    /// Aliases/deployments the key may use; `None` means all.
    pub models: Option<Vec<String>>,
}

/// What `create_key` stores.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub name: String,
    pub key_hash: String,
    pub key_prefix: String,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub budget_micro_usd: Option<u64>,
    pub models: Option<Vec<String>>,
}

fn opt_i64(value: Option<u64>) -> Option<i64> {
    value.map(to_i64)
}

fn decode_key(row: &sqlx::sqlite::SqliteRow) -> Result<KeyRecord, StoreError> {
    let models: Option<String> = row.try_get("models")?;
    Ok(KeyRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        key_prefix: row.try_get("key_prefix")?,
        created_at_ms: row.try_get("created_at_ms")?,
        revoked_at_ms: row.try_get("revoked_at_ms")?,
        rpm: get_opt_u64(row, "rpm")?,
        tpm: get_opt_u64(row, "tpm")?,
        budget_micro_usd: get_opt_u64(row, "budget_micro_usd")?,
        spent_micro_usd: get_u64(row, "spent_micro_usd")?,
        reserved_micro_usd: get_u64(row, "reserved_micro_usd")?,
        models: models.map(|m| m.split(',').map(str::to_owned).collect()),
    })
}

impl Database {
    pub async fn create_key(&self, key: &NewKey, created_at_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (id, name, key_hash, key_prefix, created_at_ms, rpm, tpm, \
             budget_micro_usd, models) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.key_hash)
        .bind(&key.key_prefix)
        .bind(created_at_ms)
        .bind(opt_i64(key.rpm))
        .bind(opt_i64(key.tpm))
        .bind(opt_i64(key.budget_micro_usd))
        .bind(key.models.as_ref().map(|m| m.join(",")))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn key_by_hash(&self, key_hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = ?")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_key).transpose()
    }

    pub async fn key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_key).transpose()
    }

    /// Every key, oldest first.
    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_at_ms, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_key).collect()
    }

    /// Revokes the key with this id or name; false when none matched or it was already revoked.
    pub async fn revoke_key(&self, id_or_name: &str, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at_ms = ? WHERE (id = ? OR name = ?) AND revoked_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(id_or_name)
        .bind(id_or_name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Holds part of the key's budget for a request in flight, if spent + held + amount stays
    /// within the budget: one conditional `INSERT` of the hold (under the request's id, with
    /// its expiry), whose trigger adds it to the key's reserved amount. When the budget looks
    /// exhausted, the key's own expired holds are released and the reservation tried once
    /// more, so a crashed request's hold never refuses the key after its deadline. Keys without
    /// a budget always succeed.
    pub async fn reserve_spend(&self, hold: &BudgetHold<'_>) -> Result<bool, StoreError> {
        if self.reserve(hold).await? {
            return Ok(true);
        }
        let released = release_expired(&self.pool, now_ms(), Some(hold.key_id)).await?;
        Ok(released > 0 && self.reserve(hold).await?)
    }

    async fn reserve(&self, hold: &BudgetHold<'_>) -> Result<bool, StoreError> {
        let amount = to_i64(hold.amount_micro_usd);
        let done = sqlx::query(
            "INSERT INTO budget_holds (request_id, key_id, amount, expires_at_ms) \
             SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = ?2 \
                AND (budget_micro_usd IS NULL \
                     OR spent_micro_usd + reserved_micro_usd + ?3 <= budget_micro_usd))",
        )
        .bind(hold.request_id)
        .bind(hold.key_id)
        .bind(amount)
        .bind(hold.expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Releases every hold whose request's deadline has passed without its log row releasing
    /// it (the process died, or the row could not be written); returns how many.
    pub async fn release_expired_holds(&self, now_ms: i64) -> Result<u64, StoreError> {
        release_expired(&self.pool, now_ms, None).await
    }

    /// The expiry (ms since the epoch) of each of the key's holds not released yet.
    pub async fn open_holds(&self, key_id: &str) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT expires_at_ms FROM budget_holds WHERE key_id = ? ORDER BY expires_at_ms",
        )
        .bind(key_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// A budget hold to take.
#[derive(Debug, Clone, Copy)]
pub struct BudgetHold<'a> {
    pub request_id: &'a str,
    pub key_id: &'a str,
    pub amount_micro_usd: u64,
    pub expires_at_ms: i64,
}

/// Deletes the holds expired at `now_ms` (of one key, or of all); the delete trigger gives
/// their amounts back to the keys.
async fn release_expired(
    pool: &sqlx::SqlitePool,
    now_ms: i64,
    key_id: Option<&str>,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM budget_holds WHERE expires_at_ms <= ?1 AND (?2 IS NULL OR key_id = ?2)",
    )
    .bind(now_ms)
    .bind(key_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Releases a request's hold (unless it expired and was released already: the delete finds
/// nothing then, and its trigger gives nothing back) and books what the request actually
/// cost, inside the transaction that writes its log row.
pub(super) async fn book_spend(
    tx: &mut sqlx::SqliteConnection,
    request_id: &str,
    key_id: &str,
    actual: u64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM budget_holds WHERE request_id = ?")
        .bind(request_id)
        .execute(&mut *tx)
        .await?;
    if actual > 0 {
        sqlx::query("UPDATE api_keys SET spent_micro_usd = spent_micro_usd + ?2 WHERE id = ?1")
            .bind(key_id)
            .bind(to_i64(actual))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
