//! What connector health is read from: a provider's queue counts (inbox
//! and outbox) and its latest outbound attempts. Each query stays on an
//! index (`deliveries_due`, `outbox_due`) or reads newest-first with a
//! limit, so `GET /v1/providers` costs the same on a store of years.

use sqlx::{AssertSqlSafe, Row};

use super::status::{DeliveryStatus, ErrorCode, OutboxStatus};
use super::{Store, StoreError};

/// How many of a provider's latest attempts judge its connection.
pub const RECENT_ATTEMPTS: i64 = 20;

/// A provider's queues and latest attempts, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderCounts {
    /// Deliveries by status, for the open and failed statuses.
    pub deliveries: Vec<(DeliveryStatus, i64)>,
    /// Outbox rows by status, for the open, failed and dead statuses.
    pub outbox: Vec<(OutboxStatus, i64)>,
    /// Newest first, at most [`RECENT_ATTEMPTS`].
    pub recent: Vec<RecentAttempt>,
    /// When the newest row that went out was sent.
    pub last_sent_at: Option<String>,
}

/// One of the latest requests sent to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentAttempt {
    pub at: String,
    /// `None`: it succeeded.
    pub error: Option<String>,
    pub error_code: Option<ErrorCode>,
}

impl Store {
    pub async fn provider_counts(&self, provider: &str) -> Result<ProviderCounts, StoreError> {
        let pool = self.read_pool();
        let mut counts = ProviderCounts::default();
        let delivery_statuses = [
            DeliveryStatus::Pending,
            DeliveryStatus::Processing,
            DeliveryStatus::Retrying,
            DeliveryStatus::Failed,
        ];
        let rows = self
            .count_by_status(
                "deliveries",
                &DeliveryStatus::sql_list(&delivery_statuses),
                provider,
            )
            .await?;
        counts.deliveries = rows
            .into_iter()
            .filter_map(|(s, n)| Some((DeliveryStatus::parse(&s)?, n)))
            .collect();
        let outbox_statuses = [
            OutboxStatus::Pending,
            OutboxStatus::Processing,
            OutboxStatus::Retrying,
            OutboxStatus::Failed,
            OutboxStatus::Dead,
        ];
        let rows = self
            .count_by_status(
                "outbox",
                &OutboxStatus::sql_list(&outbox_statuses),
                provider,
            )
            .await?;
        counts.outbox = rows
            .into_iter()
            .filter_map(|(s, n)| Some((OutboxStatus::parse(&s)?, n)))
            .collect();
        let rows = sqlx::query(
            "SELECT a.at, a.error, a.error_code FROM outbox_attempts a \
             JOIN outbox o ON o.id = a.outbox_id WHERE o.provider = $1 \
             ORDER BY a.id DESC LIMIT $2",
        )
        .bind(provider)
        .bind(RECENT_ATTEMPTS)
        .fetch_all(pool)
        .await?;
        for r in &rows {
            counts.recent.push(RecentAttempt {
                at: r.try_get("at")?,
                error: r.try_get("error")?,
                error_code: super::outbox::error_code(r)?,
            });
        }
        counts.last_sent_at = sqlx::query(AssertSqlSafe(format!(
            "SELECT sent_at FROM outbox WHERE status = {} AND provider = $1 \
             ORDER BY id DESC LIMIT 1",
            OutboxStatus::Sent.sql()
        )))
        .bind(provider)
        .fetch_optional(pool)
        .await?
        .map(|r| r.try_get("sent_at"))
        .transpose()?
        .flatten();
        Ok(counts)
    }

    /// `(status, count)` of `provider`'s rows of `table` whose status is
    /// in `statuses` (an `sql_list` of the enum's constants).
    async fn count_by_status(
        &self,
        table: &'static str,
        statuses: &str,
        provider: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        // Audited: a table name and the enum's constants, never input.
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT status, COUNT(*) AS n FROM {table} WHERE status IN ({statuses}) \
             AND provider = $1 GROUP BY status"
        )))
        .bind(provider)
        .fetch_all(self.read_pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }
}
