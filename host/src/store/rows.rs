//! Row types and the read queries.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::query::Filtered;
use super::{Backend, Store, StoreError};

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRow {
    pub guid: String,
    pub subject: String,
    pub description: String,
    pub status: String,
    pub priority: String,
    pub ticket_type: String,
    pub assignee: Option<String>,
    pub requested_by: Option<String>,
    pub labels: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub escalated_at: Option<String>,
    pub escalated_by: Option<String>,
    pub escalation_reason: Option<String>,
    /// Custom fields, by name.
    pub fields: std::collections::BTreeMap<String, String>,
    /// When it entered its status; `None`: it never moved.
    pub status_changed_at: Option<String>,
}

impl TicketRow {
    /// When the ticket entered its current status.
    pub fn status_since(&self) -> &str {
        self.status_changed_at
            .as_deref()
            .unwrap_or(&self.created_at)
    }
}

pub(super) const TICKET_COLUMNS: &str = "guid, subject, description, status, priority, ticket_type, \
     assignee, requested_by, labels, created_at, updated_at, resolved_at, resolved_by, \
     escalated_at, escalated_by, escalation_reason, fields, status_changed_at";

impl TicketRow {
    pub(super) fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let labels: String = row.try_get("labels")?;
        let labels = serde_json::from_str(&labels).map_err(|e| StoreError::Corrupt {
            column: "tickets.labels",
            reason: e.to_string(),
        })?;
        Ok(TicketRow {
            guid: row.try_get("guid")?,
            subject: row.try_get("subject")?,
            description: row.try_get("description")?,
            status: row.try_get("status")?,
            priority: row.try_get("priority")?,
            ticket_type: row.try_get("ticket_type")?,
            assignee: row.try_get("assignee")?,
            requested_by: row.try_get("requested_by")?,
            labels,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            resolved_at: row.try_get("resolved_at")?,
            resolved_by: row.try_get("resolved_by")?,
            escalated_at: row.try_get("escalated_at")?,
            escalated_by: row.try_get("escalated_by")?,
            escalation_reason: row.try_get("escalation_reason")?,
            fields: {
                let fields: String = row.try_get("fields")?;
                serde_json::from_str(&fields).map_err(|e| StoreError::Corrupt {
                    column: "tickets.fields",
                    reason: e.to_string(),
                })?
            },
            status_changed_at: row.try_get("status_changed_at")?,
        })
    }
}

/// A history row to append.
#[derive(Debug, Clone)]
pub struct NewHistory<'a> {
    pub ticket_guid: &'a str,
    pub kind: &'a str,
    /// Canonical JSON of the change.
    pub change: String,
    pub actor: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub delivery_id: Option<&'a str>,
    pub mapper_hash: Option<&'a str>,
    pub at: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub id: i64,
    pub ticket_guid: String,
    pub kind: String,
    pub change: String,
    pub actor: Option<String>,
    pub origin: Option<String>,
    pub delivery_id: Option<String>,
    pub mapper_hash: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: i64,
    pub body: String,
    pub author: String,
    pub origin: Option<String>,
    pub external_id: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signoff {
    pub activity: String,
    pub role: String,
    pub email: String,
    pub status: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrLink {
    pub repo: String,
    pub pr_id: String,
    pub url: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub provider: String,
    pub external_id: String,
    pub created_at: String,
}

pub(super) fn history_row(r: &AnyRow) -> Result<HistoryRow, StoreError> {
    Ok(HistoryRow {
        id: r.try_get("id")?,
        ticket_guid: r.try_get("ticket_guid")?,
        kind: r.try_get("kind")?,
        change: r.try_get("change")?,
        actor: r.try_get("actor")?,
        origin: r.try_get("origin")?,
        delivery_id: r.try_get("delivery_id")?,
        mapper_hash: r.try_get("mapper_hash")?,
        at: r.try_get("at")?,
    })
}

/// Filters for [`Store::find`]; every set field must match.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<String>,
    pub assignee: Option<String>,
    /// Linked to a record of this provider.
    pub provider: Option<String>,
    /// Linked to a record with this id (of `provider`, when given).
    pub external_id: Option<String>,
    /// Case-insensitive substring of subject or description.
    pub text: Option<String>,
    pub updated_after: Option<String>,
    pub updated_before: Option<String>,
    /// Custom fields `(name, value)`, every one must match; an empty value
    /// matches a ticket without the field.
    pub fields: Vec<(String, String)>,
    pub limit: u32,
    /// From the previous page's `next`.
    pub cursor: Option<String>,
}

/// One page of results, newest change first.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next: Option<String>,
}

impl Store {
    pub async fn ticket(&self, guid: &str) -> Result<Option<TicketRow>, StoreError> {
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE guid = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(guid)
            .fetch_optional(self.read_pool())
            .await?;
        row.as_ref().map(TicketRow::from_row).transpose()
    }

    pub async fn comments(&self, guid: &str) -> Result<Vec<Comment>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, body, author, origin, external_id, at FROM comments \
             WHERE ticket_guid = $1 ORDER BY id",
        )
        .bind(guid)
        .fetch_all(self.read_pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Comment {
                    id: r.try_get("id")?,
                    body: r.try_get("body")?,
                    author: r.try_get("author")?,
                    origin: r.try_get("origin")?,
                    external_id: r.try_get("external_id")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    pub async fn signoffs(&self, guid: &str) -> Result<Vec<Signoff>, StoreError> {
        let rows = sqlx::query(
            "SELECT activity, role, email, status, updated_at FROM signoffs \
             WHERE ticket_guid = $1 ORDER BY activity, role, email",
        )
        .bind(guid)
        .fetch_all(self.read_pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Signoff {
                    activity: r.try_get("activity")?,
                    role: r.try_get("role")?,
                    email: r.try_get("email")?,
                    status: r.try_get("status")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    pub async fn pr_links(&self, guid: &str) -> Result<Vec<PrLink>, StoreError> {
        let rows = sqlx::query(
            "SELECT repo, pr_id, url, created_at FROM pr_links WHERE ticket_guid = $1 \
             ORDER BY created_at, repo, pr_id",
        )
        .bind(guid)
        .fetch_all(self.read_pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PrLink {
                    repo: r.try_get("repo")?,
                    pr_id: r.try_get("pr_id")?,
                    url: r.try_get("url")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn links(&self, guid: &str) -> Result<Vec<Link>, StoreError> {
        let rows = sqlx::query(
            "SELECT provider, external_id, created_at FROM links WHERE ticket_guid = $1 \
             ORDER BY provider, external_id",
        )
        .bind(guid)
        .fetch_all(self.read_pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Link {
                    provider: r.try_get("provider")?,
                    external_id: r.try_get("external_id")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// The links of each of `guids` (a page of found tickets) in one
    /// query, each ticket's in the order [`Store::links`] gives; a ticket
    /// with none is absent from the map.
    pub async fn links_by_ticket(
        &self,
        guids: &[String],
    ) -> Result<std::collections::BTreeMap<String, Vec<Link>>, StoreError> {
        let mut out: std::collections::BTreeMap<String, Vec<Link>> = Default::default();
        if guids.is_empty() {
            return Ok(out);
        }
        let sql = format!(
            "SELECT ticket_guid, provider, external_id, created_at FROM links \
             WHERE ticket_guid IN ({}) ORDER BY ticket_guid, provider, external_id",
            super::query::params(1, guids.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for g in guids {
            q = q.bind(g.as_str());
        }
        for r in q.fetch_all(self.read_pool()).await? {
            out.entry(r.try_get("ticket_guid")?)
                .or_default()
                .push(Link {
                    provider: r.try_get("provider")?,
                    external_id: r.try_get("external_id")?,
                    created_at: r.try_get("created_at")?,
                });
        }
        Ok(out)
    }

    /// The ticket's history, oldest first, after history id `after`.
    pub async fn history(
        &self,
        guid: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, ticket_guid, kind, change, actor, origin, delivery_id, mapper_hash, at \
             FROM history WHERE ticket_guid = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(guid)
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit))
        .fetch_all(self.read_pool())
        .await?;
        rows.iter().map(history_row).collect()
    }

    /// Tickets matching `filter`, most recently updated first, one page.
    pub async fn find(&self, filter: &TicketFilter) -> Result<Page<TicketRow>, StoreError> {
        let mut q = Filtered::new(format!("SELECT {TICKET_COLUMNS} FROM tickets t"));
        if let Some(s) = &filter.status {
            q.and(" AND t.status = {}", s.clone());
        }
        if let Some(a) = &filter.assignee {
            q.and(" AND t.assignee = {}", a.clone());
        }
        if filter.provider.is_some() || filter.external_id.is_some() {
            q.sql(" AND EXISTS (SELECT 1 FROM links l WHERE l.ticket_guid = t.guid");
            if let Some(provider) = &filter.provider {
                q.and(" AND l.provider = {}", provider.clone());
            }
            if let Some(external_id) = &filter.external_id {
                q.and(" AND l.external_id = {}", external_id.clone());
            }
            q.sql(")");
        }
        if let Some(text) = &filter.text {
            let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
            q.and(
                " AND (LOWER(t.subject) LIKE {} ESCAPE '\\'",
                pattern.clone(),
            );
            q.and(" OR LOWER(t.description) LIKE {} ESCAPE '\\')", pattern);
        }
        for (name, value) in &filter.fields {
            // `fields` is a JSON object of strings; names are snake_case
            // (validated), so they are safe in SQLite's JSON path too.
            let extract = match self.backend {
                Backend::Sqlite => " AND json_extract(t.fields, '$.' || {})",
                Backend::Postgres => " AND (CAST(t.fields AS JSONB) ->> CAST({} AS TEXT))",
            };
            q.and(extract, name.clone());
            if value.is_empty() {
                q.sql(" IS NULL");
            } else {
                q.and(" = {}", value.clone());
            }
        }
        if let Some(after) = &filter.updated_after {
            q.and(" AND t.updated_at > {}", after.clone());
        }
        if let Some(before) = &filter.updated_before {
            q.and(" AND t.updated_at < {}", before.clone());
        }
        q.page(
            self.read_pool(),
            ("t.updated_at", "t.guid"),
            filter.cursor.as_deref(),
            filter.limit,
            TicketRow::from_row,
            |t| format!("{}/{}", t.updated_at, t.guid),
        )
        .await
    }
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
