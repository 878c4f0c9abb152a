//! The inbox: every verified delivery, raw, committed before the 2xx.

use sqlx::Row;

use super::{Store, StoreError};

/// A verified delivery to store.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    pub dedupe_key: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub received_at: &'a str,
}

/// The outcome of storing a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The delivery's id: the new one, or the first one with this key.
    pub id: String,
    /// A delivery with the same (provider, dedupe key) was stored before.
    pub duplicate: bool,
}

/// A stored delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: String,
    pub provider: String,
    pub dedupe_key: String,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub received_at: String,
    pub status: String,
    pub attempts: i64,
}

impl Store {
    /// Stores a delivery unless its (provider, dedupe key) is stored
    /// already; returns once the row is committed.
    pub async fn insert_delivery(&self, d: &NewDelivery<'_>) -> Result<Stored, StoreError> {
        let headers = serde_json::to_string(d.headers).unwrap_or_else(|_| "[]".into());
        let done = sqlx::query(
            "INSERT INTO deliveries (id, provider, dedupe_key, method, path, headers, body, received_at, \
             status, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $8) \
             ON CONFLICT (provider, dedupe_key) DO NOTHING",
        )
        .bind(d.id)
        .bind(d.provider)
        .bind(d.dedupe_key)
        .bind(d.method)
        .bind(d.path)
        .bind(headers)
        .bind(d.body)
        .bind(d.received_at)
        .execute(&self.write)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(Stored {
                id: d.id.to_owned(),
                duplicate: false,
            });
        }
        let row = sqlx::query("SELECT id FROM deliveries WHERE provider = $1 AND dedupe_key = $2")
            .bind(d.provider)
            .bind(d.dedupe_key)
            .fetch_one(&self.write)
            .await?;
        Ok(Stored {
            id: row.try_get("id")?,
            duplicate: true,
        })
    }

    pub async fn delivery(&self, id: &str) -> Result<Option<DeliveryRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, provider, dedupe_key, method, path, headers, body, received_at, status, attempts \
             FROM deliveries WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.read_pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let headers: String = r.try_get("headers")?;
        Ok(Some(DeliveryRow {
            id: r.try_get("id")?,
            provider: r.try_get("provider")?,
            dedupe_key: r.try_get("dedupe_key")?,
            method: r.try_get("method")?,
            path: r.try_get("path")?,
            headers: serde_json::from_str(&headers).map_err(|e| StoreError::Corrupt {
                column: "deliveries.headers",
                reason: e.to_string(),
            })?,
            body: r.try_get("body")?,
            received_at: r.try_get("received_at")?,
            status: r.try_get("status")?,
            attempts: r.try_get("attempts")?,
        }))
    }

    /// How many deliveries a provider has stored.
    pub async fn count_deliveries(&self, provider: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE provider = $1")
            .bind(provider)
            .fetch_one(self.read_pool())
            .await?;
        Ok(row.try_get("n")?)
    }
}
