//! Virtual API keys: stored by hash, with their limits, allowed models and spend. Budget
//! reservations are single conditional `UPDATE`s, so every process sharing the database sees
//! one budget and no two requests can both take its last dollar.

use sqlx::Row;

use super::{Database, StoreError};

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
    value.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

fn opt_u64(row: &sqlx::sqlite::SqliteRow, name: &str) -> Result<Option<u64>, StoreError> {
    Ok(row
        .try_get::<Option<i64>, _>(name)?
        .map(|v| v.max(0) as u64))
}

fn decode_key(row: &sqlx::sqlite::SqliteRow) -> Result<KeyRecord, StoreError> {
    let models: Option<String> = row.try_get("models")?;
    Ok(KeyRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        key_prefix: row.try_get("key_prefix")?,
        created_at_ms: row.try_get("created_at_ms")?,
        revoked_at_ms: row.try_get("revoked_at_ms")?,
        rpm: opt_u64(row, "rpm")?,
        tpm: opt_u64(row, "tpm")?,
        budget_micro_usd: opt_u64(row, "budget_micro_usd")?,
        spent_micro_usd: row.try_get::<i64, _>("spent_micro_usd")?.max(0) as u64,
        reserved_micro_usd: row.try_get::<i64, _>("reserved_micro_usd")?.max(0) as u64,
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

    /// Holds `amount` of the key's budget for a request in flight, if spent + held + amount
    /// stays within the budget. Keys without a budget always succeed.
    pub async fn reserve_spend(&self, key_id: &str, amount: u64) -> Result<bool, StoreError> {
        let amount = i64::try_from(amount).unwrap_or(i64::MAX);
        let done = sqlx::query(
            "UPDATE api_keys SET reserved_micro_usd = reserved_micro_usd + ?2 \
             WHERE id = ?1 AND (budget_micro_usd IS NULL \
                OR spent_micro_usd + reserved_micro_usd + ?2 <= budget_micro_usd)",
        )
        .bind(key_id)
        .bind(amount)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// Releases a request's reservation and books what it actually cost, inside the transaction
/// that writes its log row.
pub(super) async fn book_spend(
    tx: &mut sqlx::SqliteConnection,
    key_id: &str,
    reserved: u64,
    actual: u64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE api_keys SET reserved_micro_usd = MAX(0, reserved_micro_usd - ?2), \
         spent_micro_usd = spent_micro_usd + ?3 WHERE id = ?1",
    )
    .bind(key_id)
    .bind(i64::try_from(reserved).unwrap_or(i64::MAX))
    .bind(i64::try_from(actual).unwrap_or(i64::MAX))
    .execute(tx)
    .await?;
    Ok(())
}
