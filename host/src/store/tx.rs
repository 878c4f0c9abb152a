//! Write transactions: every change to tickets goes through a [`Tx`].

use std::collections::{BTreeSet, HashMap};

use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::deferred::Deferred;
use super::query::{Null, list_for, pad, padded_chunks, padded_values};
use super::rows::{TICKET_COLUMNS, TicketRow};
use super::{Backend, StoreError};

/// Rows per multi-row statement: far below either engine's parameter limit.
const CHUNK: usize = 256;

/// One write transaction. Dropped without [`Tx::commit`], it rolls back.
///
/// Statements, not commits, are what a busy worker pays for (one thread
/// hop each on SQLite), and a batch often touches one ticket many times:
/// so a transaction remembers the tickets and links it has read or
/// written, and writes each changed ticket once, at commit. On PostgreSQL
/// the first read locks the row (`FOR UPDATE`) for the whole transaction,
/// so the remembered row stays the truth until commit.
pub struct Tx {
    pub(super) tx: Transaction<'static, Any>,
    pub(super) backend: Backend,
    tickets: HashMap<String, TicketRow>,
    /// Tickets changed in memory since they were read, written at commit.
    dirty: BTreeSet<String>,
    links: HashMap<(String, String), String>,
    /// Rows written late, many at once ([`Deferred`]).
    pub(super) deferred: Deferred,
    /// Deliveries this transaction stored: none of them has an `applied`
    /// record yet, so [`Tx::applied_many`] need not look theirs up.
    pub(super) stored_here: std::collections::HashSet<String>,
}

impl Tx {
    pub(super) fn new(tx: Transaction<'static, Any>, backend: Backend) -> Self {
        Tx {
            tx,
            backend,
            tickets: HashMap::new(),
            dirty: BTreeSet::new(),
            links: HashMap::new(),
            deferred: Deferred::default(),
            stored_here: std::collections::HashSet::new(),
        }
    }

    /// The transaction's connection, for the other store modules, once
    /// the deferred rows are written (their statements may read them).
    pub(super) async fn conn(&mut self) -> Result<&mut sqlx::AnyConnection, StoreError> {
        self.flush().await?;
        Ok(&mut self.tx)
    }

    /// Writes the changed tickets, then commits.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        self.flush().await?;
        for guid in std::mem::take(&mut self.dirty) {
            if let Some(t) = self.tickets.get(&guid) {
                write_ticket(&mut self.tx, t).await?;
            }
        }
        Ok(self.tx.commit().await?)
    }

    /// The recorded results of those of `ids` applied already.
    pub async fn applied_many(
        &mut self,
        ids: &[&str],
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let mut out = std::collections::HashMap::new();
        let ids: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| !self.stored_here.contains(*id))
            .collect();
        for chunk in padded_chunks(self.backend, &ids, CHUNK) {
            // Audited: only numbered placeholders are spliced in.
            let sql = format!(
                "SELECT delivery_id, result FROM applied WHERE delivery_id IN ({})",
                list_for(self.backend, chunk.shape)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk.rows {
                q = q.bind(*id);
            }
            // A NULL in the list matches nothing.
            q = pad(q, chunk.padding(), &[Null::Text]);
            for row in q.fetch_all(&mut *self.tx).await? {
                out.insert(row.try_get("delivery_id")?, row.try_get("result")?);
            }
        }
        Ok(out)
    }

    /// Marks deliveries applied: `(delivery id, result JSON, time)`, one
    /// multi-row INSERT per chunk.
    pub async fn mark_applied(&mut self, rows: &[(&str, &str, &str)]) -> Result<(), StoreError> {
        for chunk in padded_chunks(self.backend, rows, CHUNK) {
            // Audited: only numbered placeholders are spliced in.
            let sql = format!(
                "INSERT INTO applied (delivery_id, result, at) {}",
                padded_values(self.backend, chunk.shape, 3)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (id, result, at) in chunk.rows {
                q = q.bind(*id).bind(*result).bind(*at);
            }
            q = pad(q, chunk.padding(), &[Null::Text; 3]);
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// The ticket, locked for this transaction on PostgreSQL (SQLite's
    /// single writer needs no row lock); as this transaction last left it.
    pub async fn ticket_for_update(&mut self, guid: &str) -> Result<Option<TicketRow>, StoreError> {
        if let Some(t) = self.tickets.get(guid) {
            return Ok(Some(t.clone()));
        }
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE guid = $1{lock}");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(guid)
            .fetch_optional(&mut *self.tx)
            .await?;
        let ticket = row.as_ref().map(TicketRow::from_row).transpose()?;
        if let Some(t) = &ticket {
            self.tickets.insert(t.guid.clone(), t.clone());
        }
        Ok(ticket)
    }

    /// The ticket linked to a provider's record.
    /// Whether `provider` has linked any record to a ticket.
    pub async fn links_any(&mut self, provider: &str) -> Result<bool, StoreError> {
        if self.links.keys().any(|(p, _)| p == provider) {
            return Ok(true);
        }
        let row = sqlx::query("SELECT 1 AS one FROM links WHERE provider = $1 LIMIT 1")
            .bind(provider)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.is_some())
    }

    pub async fn linked_ticket(
        &mut self,
        provider: &str,
        external_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let key = (provider.to_owned(), external_id.to_owned());
        if let Some(guid) = self.links.get(&key) {
            return Ok(Some(guid.clone()));
        }
        let row =
            sqlx::query("SELECT ticket_guid FROM links WHERE provider = $1 AND external_id = $2")
                .bind(provider)
                .bind(external_id)
                .fetch_optional(&mut *self.tx)
                .await?;
        let guid: Option<String> = row.map(|r| r.try_get("ticket_guid")).transpose()?;
        if let Some(g) = &guid {
            self.links.insert(key, g.clone());
        }
        Ok(guid)
    }

    /// Links a provider's record to `guid` unless it is linked already;
    /// returns the ticket it is linked to either way. On PostgreSQL a
    /// concurrent insert of the same link waits for the other transaction
    /// and then sees its row.
    pub async fn link(
        &mut self,
        provider: &str,
        external_id: &str,
        guid: &str,
        at: &str,
    ) -> Result<String, StoreError> {
        // Links never change once made: one seen in this transaction is
        // the answer.
        if let Some(linked) = self
            .links
            .get(&(provider.to_owned(), external_id.to_owned()))
        {
            return Ok(linked.clone());
        }
        sqlx::query(
            "INSERT INTO links (provider, external_id, ticket_guid, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (provider, external_id) DO NOTHING",
        )
        .bind(provider)
        .bind(external_id)
        .bind(guid)
        .bind(at)
        .execute(&mut *self.tx)
        .await?;
        self.linked_ticket(provider, external_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                column: "links",
                reason: format!("link ({provider}, {external_id}) vanished"),
            })
    }

    pub async fn insert_ticket(&mut self, t: &TicketRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO tickets ({TICKET_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        );
        bind_ticket(sqlx::query(AssertSqlSafe(sql)), t)
            .execute(&mut *self.tx)
            .await?;
        self.tickets.insert(t.guid.clone(), t.clone());
        Ok(())
    }

    /// Records the ticket's new state; written once, at commit.
    pub async fn update_ticket(&mut self, t: &TicketRow) -> Result<(), StoreError> {
        self.tickets.insert(t.guid.clone(), t.clone());
        self.dirty.insert(t.guid.clone());
        Ok(())
    }

    /// Whether a comment of ticket `guid` is being sent to `provider` now
    /// (claimed, its answer not recorded yet): only a comment sent can
    /// come back as a comment.
    pub async fn comment_in_flight(
        &mut self,
        provider: &str,
        guid: &str,
    ) -> Result<bool, StoreError> {
        self.flush().await?;
        let row = sqlx::query(
            "SELECT 1 AS one FROM outbox o JOIN history h ON h.id = o.history_id \
             WHERE o.provider = $1 AND o.ticket_guid = $2 AND o.status = 'processing' \
             AND h.kind = 'comment' LIMIT 1",
        )
        .bind(provider)
        .bind(guid)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.is_some())
    }

    /// Sets a sign-off; true when that changed anything.
    pub async fn upsert_signoff(
        &mut self,
        guid: &str,
        activity: &str,
        role: &str,
        email: &str,
        status: &str,
        at: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO signoffs (ticket_guid, activity, role, email, status, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (ticket_guid, activity, role, email) \
             DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at \
             WHERE signoffs.status <> excluded.status",
        )
        .bind(guid)
        .bind(activity)
        .bind(role)
        .bind(email)
        .bind(status)
        .bind(at)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Links a PR; true when it was not linked before. A PR already linked
    /// to another ticket stays with that ticket.
    pub async fn insert_pr_link(
        &mut self,
        guid: &str,
        repo: &str,
        pr_id: &str,
        url: Option<&str>,
        at: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO pr_links (repo, pr_id, ticket_guid, url, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (repo, pr_id) DO NOTHING",
        )
        .bind(repo)
        .bind(pr_id)
        .bind(guid)
        .bind(url)
        .bind(at)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

async fn write_ticket(tx: &mut Transaction<'static, Any>, t: &TicketRow) -> Result<(), StoreError> {
    let sql = "UPDATE tickets SET subject = $2, description = $3, status = $4, priority = $5, \
               ticket_type = $6, assignee = $7, requested_by = $8, labels = $9, created_at = $10, \
               updated_at = $11, resolved_at = $12, resolved_by = $13, escalated_at = $14, \
               escalated_by = $15, escalation_reason = $16, fields = $17, \
               status_changed_at = $18 WHERE guid = $1";
    bind_ticket(sqlx::query(sql), t).execute(&mut **tx).await?;
    Ok(())
}

fn bind_ticket<'q>(
    q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    t: &'q TicketRow,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    q.bind(&t.guid)
        .bind(&t.subject)
        .bind(&t.description)
        .bind(&t.status)
        .bind(&t.priority)
        .bind(&t.ticket_type)
        .bind(&t.assignee)
        .bind(&t.requested_by)
        .bind(serde_json::to_string(&t.labels).unwrap_or_else(|_| "[]".into()))
        .bind(&t.created_at)
        .bind(&t.updated_at)
        .bind(&t.resolved_at)
        .bind(&t.resolved_by)
        .bind(&t.escalated_at)
        .bind(&t.escalated_by)
        .bind(&t.escalation_reason)
        .bind(serde_json::to_string(&t.fields).unwrap_or_else(|_| "{}".into()))
        .bind(&t.status_changed_at)
}
