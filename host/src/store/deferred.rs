//! Rows a transaction writes late, many at once: comments, outbox rows
//! and (on SQLite) history.
//!
//! A batch of deliveries on one ticket — a busy PR's comments — used to
//! cost four statements per delivery (the comment's duplicate check and
//! insert, the echo check, the history insert). On SQLite every statement
//! is a hop to the connection's thread and back, and those hops, not the
//! commit, capped the single writer. Here the checks are answered for the
//! whole batch by one query on SQLite ([`Tx::prefetch_comment_ids`]), and the
//! inserts wait in the transaction and go out as one multi-row statement
//! per table when it commits — or earlier, before any statement that might
//! read those tables ([`Tx::conn`]): the rest of the store sees every row
//! the transaction wrote, as before.
//!
//! History ids are needed at once (outbox rows and sync records point at
//! them). PostgreSQL's come from the insert, which stays immediate there.
//! SQLite's are handed out from its `AUTOINCREMENT` counter: a write
//! transaction takes the database's write lock when it begins
//! ([`super::Store::begin`]), so no one else — not even another process on
//! the same file — can take the next id between reading the counter and
//! writing the rows.

use std::collections::{HashMap, HashSet};

use sqlx::{AssertSqlSafe, Row};

use super::query::{Null, pad, padded_chunks, padded_values, params, value_rows};
use super::rows::NewHistory;
use super::{Backend, OutboxStatus, StoreError, Tx};

/// Rows per multi-row statement: 256 rows of 9 columns stay far below
/// either engine's parameter limit.
const CHUNK: usize = 256;

/// The types of an inserted history row's columns (`id` first), for
/// padding rows.
const HISTORY_NULLS: [Null; 9] = [
    Null::Int,
    Null::Text,
    Null::Text,
    Null::Text,
    Null::Text,
    Null::Text,
    Null::Text,
    Null::Text,
    Null::Text,
];

/// The types of an inserted outbox row's columns (`history_id` first), for
/// padding rows.
const OUTBOX_NULLS: [Null; 7] = [
    Null::Int,
    Null::Text,
    Null::Text,
    Null::Text,
    Null::Text,
    Null::Text,
    Null::Text,
];

/// What a transaction has not written yet, and what it knows of the rows
/// it checks for.
#[derive(Default)]
pub(super) struct Deferred {
    history: Vec<HistoryInsert>,
    outbox: Vec<OutboxInsert>,
    comments: Vec<CommentInsert>,
    /// SQLite: the id the next history row gets.
    next_history_id: Option<i64>,
    /// `(origin, comment id)` → whether such a comment is stored (or
    /// waiting here to be).
    comment_ids: HashMap<(Option<String>, String), bool>,
    /// `(provider, record id)` → whether it is one of the host's own.
    echoes: HashMap<(String, String), bool>,
}

struct HistoryInsert {
    id: i64,
    ticket_guid: String,
    kind: String,
    change: String,
    actor: Option<String>,
    origin: Option<String>,
    delivery_id: Option<String>,
    mapper_hash: Option<String>,
    at: String,
}

struct OutboxInsert {
    history_id: i64,
    provider: String,
    ticket_guid: String,
    at: String,
}

struct CommentInsert {
    ticket_guid: String,
    body: String,
    author: String,
    origin: Option<String>,
    external_id: Option<String>,
    at: String,
}

impl Deferred {
    fn is_empty(&self) -> bool {
        self.history.is_empty() && self.outbox.is_empty() && self.comments.is_empty()
    }
}

impl Tx {
    /// Writes what waits, history first (outbox rows point at it).
    pub(super) async fn flush(&mut self) -> Result<(), StoreError> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        let history = std::mem::take(&mut self.deferred.history);
        for chunk in padded_chunks(self.backend, &history, CHUNK) {
            // Audited: only numbered placeholders are spliced in.
            let sql = format!(
                "INSERT INTO history (id, ticket_guid, kind, change, actor, origin, delivery_id, mapper_hash, at) {}",
                padded_values(self.backend, chunk.shape, 9)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for h in chunk.rows {
                q = q
                    .bind(h.id)
                    .bind(&h.ticket_guid)
                    .bind(&h.kind)
                    .bind(&h.change)
                    .bind(&h.actor)
                    .bind(&h.origin)
                    .bind(&h.delivery_id)
                    .bind(&h.mapper_hash)
                    .bind(&h.at);
            }
            q = pad(q, chunk.padding(), &HISTORY_NULLS);
            q.execute(&mut *self.tx).await?;
        }
        let outbox = std::mem::take(&mut self.deferred.outbox);
        for chunk in padded_chunks(self.backend, &outbox, CHUNK) {
            // Audited: only numbered placeholders are spliced in.
            let sql = format!(
                "INSERT INTO outbox (history_id, provider, ticket_guid, status, created_at, next_attempt_at, updated_at) \
                 {} ON CONFLICT (history_id, provider) DO NOTHING",
                padded_values(self.backend, chunk.shape, 7)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for o in chunk.rows {
                q = q
                    .bind(o.history_id)
                    .bind(&o.provider)
                    .bind(&o.ticket_guid)
                    .bind(OutboxStatus::Pending.as_str())
                    .bind(&o.at)
                    .bind(&o.at)
                    .bind(&o.at);
            }
            q = pad(q, chunk.padding(), &OUTBOX_NULLS);
            q.execute(&mut *self.tx).await?;
        }
        let comments = std::mem::take(&mut self.deferred.comments);
        for chunk in padded_chunks(self.backend, &comments, CHUNK) {
            // Audited: only numbered placeholders are spliced in.
            let sql = format!(
                "INSERT INTO comments (ticket_guid, body, author, origin, external_id, at) {}",
                padded_values(self.backend, chunk.shape, 6)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for c in chunk.rows {
                q = q
                    .bind(&c.ticket_guid)
                    .bind(&c.body)
                    .bind(&c.author)
                    .bind(&c.origin)
                    .bind(&c.external_id)
                    .bind(&c.at);
            }
            q = pad(q, chunk.padding(), &[Null::Text; 6]);
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Appends a history row; returns its id. On SQLite the row is
    /// written with the transaction's other deferred rows.
    pub async fn append_history(&mut self, h: &NewHistory<'_>) -> Result<i64, StoreError> {
        if self.backend == Backend::Postgres {
            let row = sqlx::query(
                "INSERT INTO history (ticket_guid, kind, change, actor, origin, delivery_id, mapper_hash, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(h.ticket_guid)
            .bind(h.kind)
            .bind(&h.change)
            .bind(h.actor)
            .bind(h.origin)
            .bind(h.delivery_id)
            .bind(h.mapper_hash)
            .bind(h.at)
            .fetch_one(&mut *self.tx)
            .await?;
            return Ok(row.try_get("id")?);
        }
        let id = match self.deferred.next_history_id {
            Some(id) => id,
            None => {
                // AUTOINCREMENT's counter: above every id ever used, even
                // of rows deleted since (retention), which are never reused.
                let row = sqlx::query(
                    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'history'), 0) AS seq",
                )
                .fetch_one(&mut *self.tx)
                .await?;
                row.try_get::<i64, _>("seq")? + 1
            }
        };
        self.deferred.next_history_id = Some(id + 1);
        self.deferred.history.push(HistoryInsert {
            id,
            ticket_guid: h.ticket_guid.to_owned(),
            kind: h.kind.to_owned(),
            change: h.change.clone(),
            actor: h.actor.map(str::to_owned),
            origin: h.origin.map(str::to_owned),
            delivery_id: h.delivery_id.map(str::to_owned),
            mapper_hash: h.mapper_hash.map(str::to_owned),
            at: h.at.to_owned(),
        });
        Ok(id)
    }

    /// Queues a history row of ticket `guid` for a provider's outbound
    /// rules (written with the transaction's other deferred rows; a row
    /// already queued for that provider stays as it is).
    pub async fn enqueue_outbound(
        &mut self,
        history_id: i64,
        provider: &str,
        guid: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        self.deferred.outbox.push(OutboxInsert {
            history_id,
            provider: provider.to_owned(),
            ticket_guid: guid.to_owned(),
            at: at.to_owned(),
        });
        Ok(())
    }

    /// Learns, in one query per origin, which of these provider comment ids
    /// are stored already and which of them are the host's own records
    /// (echo captures), so that [`Tx::insert_comment`] and [`Tx::is_echo`]
    /// answer them without a statement each.
    ///
    /// SQLite only: there the single writer orders this transaction
    /// against every other, so what the query found stays true until
    /// commit. On PostgreSQL another replica may store the comment, or
    /// finish the send that made it an echo, in between; the checks stay
    /// one statement each there, made under the ticket's row lock and
    /// after the in-flight check (see the applier's echo check).
    pub async fn prefetch_comment_ids(&mut self, ids: &[(&str, &str)]) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        let mut by_origin: HashMap<&str, Vec<&str>> = HashMap::new();
        for (origin, id) in ids {
            let key = (Some((*origin).to_owned()), (*id).to_owned());
            if !self.deferred.comment_ids.contains_key(&key) {
                by_origin.entry(origin).or_default().push(id);
            }
        }
        for (origin, mut ids) in by_origin {
            ids.sort_unstable();
            ids.dedup();
            for chunk in padded_chunks(self.backend, &ids, CHUNK) {
                // One query for both questions: `$1` is the origin, the
                // ids are `$2…` in both halves.
                let list = params(2, chunk.shape);
                // Audited: only numbered placeholders are spliced in.
                let sql = format!(
                    "SELECT 'comment' AS kind, external_id AS id FROM comments \
                     WHERE origin = $1 AND external_id IN ({list}) \
                     UNION ALL SELECT 'echo' AS kind, external_id AS id FROM processed_external_ids \
                     WHERE provider = $1 AND external_id IN ({list})"
                );
                let mut q = sqlx::query(AssertSqlSafe(sql)).bind(origin);
                for id in chunk.rows {
                    q = q.bind(*id);
                }
                // A NULL in the list matches nothing.
                q = pad(q, chunk.padding(), &[Null::Text]);
                let mut stored = HashSet::new();
                let mut echoes = HashSet::new();
                for row in q.fetch_all(&mut *self.tx).await? {
                    let kind: String = row.try_get("kind")?;
                    let id: String = row.try_get("id")?;
                    match kind.as_str() {
                        "echo" => echoes.insert(id),
                        _ => stored.insert(id),
                    };
                }
                for id in chunk.rows {
                    let id = (*id).to_owned();
                    self.deferred
                        .comment_ids
                        .insert((Some(origin.to_owned()), id.clone()), stored.contains(&id));
                    self.deferred
                        .echoes
                        .insert((origin.to_owned(), id.clone()), echoes.contains(&id));
                }
            }
        }
        Ok(())
    }

    /// Whether `provider`'s record `external_id` is one the host made
    /// itself (an echo capture of an outbound request).
    pub async fn is_echo(&mut self, provider: &str, external_id: &str) -> Result<bool, StoreError> {
        if let Some(known) = self
            .deferred
            .echoes
            .get(&(provider.to_owned(), external_id.to_owned()))
        {
            return Ok(*known);
        }
        let row = sqlx::query(
            "SELECT 1 AS one FROM processed_external_ids WHERE provider = $1 AND external_id = $2",
        )
        .bind(provider)
        .bind(external_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.is_some())
    }

    /// Remembers records the host made at a provider (echo captures).
    pub async fn remember_echoes(
        &mut self,
        echoes: &[(&str, &str)],
        at: &str,
    ) -> Result<(), StoreError> {
        for chunk in echoes.chunks(CHUNK) {
            // Audited: only numbered placeholders are spliced in.
            let sql = format!(
                "INSERT INTO processed_external_ids (provider, external_id, at) VALUES {} \
                 ON CONFLICT (provider, external_id) DO NOTHING",
                value_rows(chunk.len(), 3)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (provider, id) in chunk {
                q = q.bind(*provider).bind(*id).bind(at);
            }
            q.execute(&mut *self.tx).await?;
        }
        for (provider, id) in echoes {
            self.deferred
                .echoes
                .insert(((*provider).to_owned(), (*id).to_owned()), true);
        }
        Ok(())
    }

    /// Adds a comment (written with the transaction's other deferred
    /// rows); false when this provider's comment id is already stored
    /// (an echo or a repeat), in this transaction or before it.
    pub async fn insert_comment(
        &mut self,
        guid: &str,
        body: &str,
        author: &str,
        origin: Option<&str>,
        external_id: Option<&str>,
        at: &str,
    ) -> Result<bool, StoreError> {
        if let Some(ext) = external_id {
            let key = (origin.map(str::to_owned), ext.to_owned());
            let seen = match self.deferred.comment_ids.get(&key) {
                Some(known) => *known,
                None => sqlx::query(
                    "SELECT 1 AS one FROM comments WHERE origin IS NOT DISTINCT FROM $1 AND external_id = $2",
                )
                .bind(origin)
                .bind(ext)
                .fetch_optional(&mut *self.tx)
                .await?
                .is_some(),
            };
            if seen {
                return Ok(false);
            }
            self.deferred.comment_ids.insert(key, true);
        }
        self.deferred.comments.push(CommentInsert {
            ticket_guid: guid.to_owned(),
            body: body.to_owned(),
            author: author.to_owned(),
            origin: origin.map(str::to_owned),
            external_id: external_id.map(str::to_owned),
            at: at.to_owned(),
        });
        Ok(true)
    }
}
