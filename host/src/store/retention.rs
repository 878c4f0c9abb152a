//! Retention of raw delivery bodies: once older than the configured time a
//! body is emptied and `body_dropped_at` set; the row, its outcome and its
//! history links stay.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};

use super::{DeliveryStatus, Store, StoreError, timestamp};

impl Store {
    /// Empties the bodies of at most `limit` deliveries received before
    /// `now - keep`, oldest first, and returns how many it emptied.
    /// Deliveries still waiting to be processed (`pending`, `retrying`,
    /// `processing`) keep their body whatever their age: the worker needs
    /// it. `now` is
    /// a parameter so that tests can move the clock.
    pub async fn drop_delivery_bodies(
        &self,
        now: DateTime<Utc>,
        keep: Duration,
        limit: u32,
    ) -> Result<u64, StoreError> {
        // A retention too long for chrono's range keeps everything.
        let Some(cutoff) = chrono::Duration::from_std(keep)
            .ok()
            .and_then(|k| now.checked_sub_signed(k))
        else {
            return Ok(0);
        };
        // Audited: only the status enum's constants are spliced in.
        let sql = format!(
            "UPDATE deliveries SET body = $1, body_encoding = NULL, body_dropped_at = $2 \
             WHERE id IN (SELECT id FROM deliveries \
                          WHERE body_dropped_at IS NULL AND received_at < $3 \
                          AND status NOT IN ({}) \
                          ORDER BY received_at LIMIT $4)",
            DeliveryStatus::sql_list(&DeliveryStatus::CLAIMABLE)
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(Vec::<u8>::new())
            .bind(timestamp(now))
            .bind(timestamp(cutoff))
            .bind(i64::from(limit))
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }

    /// When the delivery's body was dropped by retention, if it was.
    pub async fn body_dropped_at(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT body_dropped_at FROM deliveries WHERE id = $1")
            .bind(id)
            .fetch_optional(self.read_pool())
            .await?;
        match row {
            Some(r) => Ok(r.try_get("body_dropped_at")?),
            None => Ok(None),
        }
    }
}
