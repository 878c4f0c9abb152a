//! What the periodic ticks read: the tickets linked to a provider that are
//! still open, one link each, for reconciliation ticks. The ticks
//! themselves are ordinary inbox rows (`inbox.rs`).

use sqlx::Row;

use super::{Store, StoreError};

/// A ticket linked to a provider, by the provider's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenLink {
    pub ticket_guid: String,
    /// The ticket's first (lowest) external id at the provider, when it
    /// has several.
    pub external_id: String,
}

impl Store {
    /// The tickets linked to `provider` whose status is not one of
    /// `closed`, each with one of its links, by ticket guid.
    pub async fn open_links(
        &self,
        provider: &str,
        closed: &[&str],
    ) -> Result<Vec<OpenLink>, StoreError> {
        let placeholders = super::query::params(2, closed.len());
        // Audited: only numbered placeholders are spliced in.
        let sql = format!(
            "SELECT l.ticket_guid, MIN(l.external_id) AS external_id FROM links l \
             JOIN tickets t ON t.guid = l.ticket_guid \
             WHERE l.provider = $1 AND t.status NOT IN ({placeholders}) \
             GROUP BY l.ticket_guid ORDER BY l.ticket_guid"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider);
        for s in closed {
            q = q.bind(*s);
        }
        q.fetch_all(self.read_pool())
            .await?
            .iter()
            .map(|r| {
                Ok(OpenLink {
                    ticket_guid: r.try_get("ticket_guid")?,
                    external_id: r.try_get("external_id")?,
                })
            })
            .collect()
    }
}
