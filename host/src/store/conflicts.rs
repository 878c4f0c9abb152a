//! Two-way sync's tables (migration 0011): `sync_state`, the value each
//! (ticket, provider, field) last synced with its provenance, and
//! `conflicts`, the fields both sides moved that a policy left to a person.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::query::Filtered;
use super::{Page, Store, StoreError, Tx};

/// Where a last-synced value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncSource {
    /// An inbound action from the provider, applied.
    Inbound,
    /// An outbox row to the provider, sent.
    Outbound,
    /// A conflict resolved through the API.
    Resolution,
}

impl SyncSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncSource::Inbound => "inbound",
            SyncSource::Outbound => "outbound",
            SyncSource::Resolution => "resolution",
        }
    }
}

/// A value to remember as last synced.
#[derive(Debug, Clone)]
pub struct NewSynced<'a> {
    pub ticket_guid: &'a str,
    pub provider: &'a str,
    pub field: &'a str,
    pub value: Option<&'a str>,
    pub source: SyncSource,
    pub delivery_id: Option<&'a str>,
    pub outbox_id: Option<i64>,
    pub history_id: Option<i64>,
    pub at: &'a str,
}

/// Whether a conflict still waits for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictState {
    Open,
    Resolved,
}

impl ConflictState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictState::Open => "open",
            ConflictState::Resolved => "resolved",
        }
    }

    fn parse(s: &str) -> Option<ConflictState> {
        match s {
            "open" => Some(ConflictState::Open),
            "resolved" => Some(ConflictState::Resolved),
            _ => None,
        }
    }
}

/// How a conflict was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Our value, pushed to the provider.
    Local,
    /// The provider's value, applied to the ticket.
    External,
    /// A value given by the resolver, applied to the ticket.
    Value,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Local => "local",
            Resolution::External => "external",
            Resolution::Value => "value",
        }
    }

    fn parse(s: &str) -> Option<Resolution> {
        match s {
            "local" => Some(Resolution::Local),
            "external" => Some(Resolution::External),
            "value" => Some(Resolution::Value),
            _ => None,
        }
    }
}

/// A conflict to record.
#[derive(Debug, Clone)]
pub struct NewConflict<'a> {
    pub ticket_guid: &'a str,
    pub provider: &'a str,
    pub field: &'a str,
    pub policy: crate::sync::Policy,
    pub base_value: Option<&'a str>,
    pub local_value: Option<&'a str>,
    pub external_value: Option<&'a str>,
    pub delivery_id: Option<&'a str>,
    pub at: &'a str,
}

/// A stored conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictRow {
    pub id: i64,
    pub ticket_guid: String,
    pub provider: String,
    pub field: String,
    pub policy: crate::sync::Policy,
    pub base_value: Option<String>,
    pub local_value: Option<String>,
    pub external_value: Option<String>,
    pub delivery_id: Option<String>,
    pub state: ConflictState,
    pub created_at: String,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub resolution: Option<Resolution>,
    pub resolved_value: Option<String>,
    pub history_id: Option<i64>,
}

/// Which conflicts to list.
#[derive(Debug, Clone, Default)]
pub struct ConflictFilter {
    pub state: Option<ConflictState>,
    pub ticket_guid: Option<String>,
    pub provider: Option<String>,
    /// The previous page's `next`.
    pub cursor: Option<String>,
    pub limit: u32,
}

/// How a conflict ended, to record.
#[derive(Debug, Clone)]
pub struct ConflictResolved<'a> {
    pub id: i64,
    pub resolution: Resolution,
    pub value: Option<&'a str>,
    pub by: &'a str,
    pub history_id: Option<i64>,
    pub at: &'a str,
}

const CONFLICT_COLUMNS: &str = "id, ticket_guid, provider, field, policy, base_value, local_value, \
     external_value, delivery_id, state, created_at, resolved_at, resolved_by, resolution, \
     resolved_value, history_id";

impl Tx {
    /// The last-synced values of `guid` with `provider`, by field.
    pub async fn synced_values(
        &mut self,
        guid: &str,
        provider: &str,
    ) -> Result<HashMap<String, Option<String>>, StoreError> {
        let rows = sqlx::query(
            "SELECT field, value FROM sync_state WHERE ticket_guid = $1 AND provider = $2",
        )
        .bind(guid)
        .bind(provider)
        .fetch_all(self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("field")?, r.try_get("value")?)))
            .collect()
    }

    /// Remembers values as last synced, replacing what each field held.
    pub async fn set_synced(&mut self, values: &[NewSynced<'_>]) -> Result<(), StoreError> {
        for v in values {
            sqlx::query(
                "INSERT INTO sync_state (ticket_guid, provider, field, value, source, delivery_id, \
                 outbox_id, history_id, synced_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (ticket_guid, provider, field) DO UPDATE SET value = excluded.value, \
                 source = excluded.source, delivery_id = excluded.delivery_id, \
                 outbox_id = excluded.outbox_id, history_id = excluded.history_id, \
                 synced_at = excluded.synced_at",
            )
            .bind(v.ticket_guid)
            .bind(v.provider)
            .bind(v.field)
            .bind(v.value)
            .bind(v.source.as_str())
            .bind(v.delivery_id)
            .bind(v.outbox_id)
            .bind(v.history_id)
            .bind(v.at)
            .execute(self.conn().await?)
            .await?;
        }
        Ok(())
    }

    pub async fn insert_conflict(&mut self, c: &NewConflict<'_>) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO conflicts (ticket_guid, provider, field, policy, base_value, local_value, \
             external_value, delivery_id, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(c.ticket_guid)
        .bind(c.provider)
        .bind(c.field)
        .bind(c.policy.as_str())
        .bind(c.base_value)
        .bind(c.local_value)
        .bind(c.external_value)
        .bind(c.delivery_id)
        .bind(ConflictState::Open.as_str())
        .bind(c.at)
        .fetch_one(self.conn().await?)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Conflict `id` inside the transaction.
    pub async fn conflict(&mut self, id: i64) -> Result<Option<ConflictRow>, StoreError> {
        let sql = format!("SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.conn().await?)
            .await?;
        row.as_ref().map(conflict_row).transpose()
    }

    /// Marks an open conflict resolved; `false` when it was not open any
    /// more (resolved by someone else first).
    pub async fn resolve_conflict(&mut self, r: &ConflictResolved<'_>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE conflicts SET state = $1, resolution = $2, resolved_value = $3, \
             resolved_by = $4, history_id = $5, resolved_at = $6 WHERE id = $7 AND state = $8",
        )
        .bind(ConflictState::Resolved.as_str())
        .bind(r.resolution.as_str())
        .bind(r.value)
        .bind(r.by)
        .bind(r.history_id)
        .bind(r.at)
        .bind(r.id)
        .bind(ConflictState::Open.as_str())
        .execute(self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    pub async fn conflict(&self, id: i64) -> Result<Option<ConflictRow>, StoreError> {
        let sql = format!("SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.read_pool())
            .await?;
        row.as_ref().map(conflict_row).transpose()
    }

    /// Conflicts matching `filter`, newest first, one page.
    pub async fn find_conflicts(
        &self,
        filter: &ConflictFilter,
    ) -> Result<Page<ConflictRow>, StoreError> {
        let mut q = Filtered::new(format!("SELECT {CONFLICT_COLUMNS} FROM conflicts"));
        if let Some(s) = filter.state {
            q.and(" AND state = {}", s.as_str().to_owned());
        }
        if let Some(g) = &filter.ticket_guid {
            q.and(" AND ticket_guid = {}", g.clone());
        }
        if let Some(p) = &filter.provider {
            q.and(" AND provider = {}", p.clone());
        }
        q.page_by_id(
            self.read_pool(),
            filter.cursor.as_deref(),
            filter.limit,
            conflict_row,
            |c| c.id,
        )
        .await
    }

    /// The last-synced values of `guid` with `provider`, by field.
    pub async fn synced_values(
        &self,
        guid: &str,
        provider: &str,
    ) -> Result<HashMap<String, Option<String>>, StoreError> {
        let rows = sqlx::query(
            "SELECT field, value FROM sync_state WHERE ticket_guid = $1 AND provider = $2",
        )
        .bind(guid)
        .bind(provider)
        .fetch_all(self.read_pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("field")?, r.try_get("value")?)))
            .collect()
    }
}

fn conflict_row(r: &AnyRow) -> Result<ConflictRow, StoreError> {
    let corrupt = |column: &'static str, value: &str| StoreError::Corrupt {
        column,
        reason: format!("`{value}` is not a known value"),
    };
    let policy: String = r.try_get("policy")?;
    let state: String = r.try_get("state")?;
    let resolution: Option<String> = r.try_get("resolution")?;
    Ok(ConflictRow {
        id: r.try_get("id")?,
        ticket_guid: r.try_get("ticket_guid")?,
        provider: r.try_get("provider")?,
        field: r.try_get("field")?,
        policy: crate::sync::Policy::parse(&policy)
            .ok_or_else(|| corrupt("conflicts.policy", &policy))?,
        base_value: r.try_get("base_value")?,
        local_value: r.try_get("local_value")?,
        external_value: r.try_get("external_value")?,
        delivery_id: r.try_get("delivery_id")?,
        state: ConflictState::parse(&state).ok_or_else(|| corrupt("conflicts.state", &state))?,
        created_at: r.try_get("created_at")?,
        resolved_at: r.try_get("resolved_at")?,
        resolved_by: r.try_get("resolved_by")?,
        resolution: match resolution {
            Some(s) => {
                Some(Resolution::parse(&s).ok_or_else(|| corrupt("conflicts.resolution", &s))?)
            }
            None => None,
        },
        resolved_value: r.try_get("resolved_value")?,
        history_id: r.try_get("history_id")?,
    })
}
