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
        let delivery_statuses = [
            DeliveryStatus::Pending,
            DeliveryStatus::Processing,
            DeliveryStatus::Retrying,
            DeliveryStatus::Failed,
        ];
        // Audited: the statuses are the enum's constants.
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT status, COUNT(*) AS n FROM deliveries WHERE status IN ({}) AND provider = $1 \
             GROUP BY status",
            DeliveryStatus::sql_list(&delivery_statuses)
        )))
        .bind(provider)
        .fetch_all(pool)
        .await?;
        let mut counts = ProviderCounts::default();
        for r in &rows {
            let status: String = r.try_get("status")?;
            if let Some(s) = DeliveryStatus::parse(&status) {
                counts.deliveries.push((s, r.try_get("n")?));
            }
        }
        let outbox_statuses = [
            OutboxStatus::Pending,
            OutboxStatus::Processing,
            OutboxStatus::Retrying,
            OutboxStatus::Failed,
            OutboxStatus::Dead,
        ];
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT status, COUNT(*) AS n FROM outbox WHERE status IN ({}) AND provider = $1 \
             GROUP BY status",
            OutboxStatus::sql_list(&outbox_statuses)
        )))
        .bind(provider)
        .fetch_all(pool)
        .await?;
        for r in &rows {
            let status: String = r.try_get("status")?;
            if let Some(s) = OutboxStatus::parse(&status) {
                counts.outbox.push((s, r.try_get("n")?));
            }
        }
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
}
