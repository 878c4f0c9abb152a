//! The outbox: one row per (change, outbound provider), written with the
//! change; a leased queue like the inbox, claimed per provider in ticket
//! order, with every request the worker sent kept as an attempt.

use sqlx::{AssertSqlSafe, Row};

use super::lease::{Clock, new_claim_token};
use super::query::{Filtered, params, value_rows};
use super::rows::{HistoryRow, TICKET_COLUMNS, TicketRow, history_row};
use super::status::{ErrorCode, OutboxStatus};
use super::{Page, Store, StoreError, Tx};

/// A queued change for one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub history_id: i64,
    pub provider: String,
    /// `None` for a change of no one ticket (a sweeper digest).
    pub ticket_guid: Option<String>,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    /// The class of `last_error`, when a request or the mapper failed.
    pub error_code: Option<ErrorCode>,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub updated_at: Option<String>,
    pub claim_token: Option<String>,
    pub mapper_hash: Option<String>,
    /// The mapper's requests (JSON), kept once made so a retry sends the
    /// same ones; `None` until the mapper ran.
    pub requests: Option<String>,
    /// How many of `requests` were answered with a 2xx.
    pub sent_requests: i64,
}

/// One request the outbound worker sent, and what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxAttempt {
    pub outbox_id: i64,
    pub attempt: i64,
    pub request_index: i64,
    pub method: String,
    /// Path and query relative to the base URL: no host, no credentials.
    pub path: String,
    /// `None` when no answer came (timeout, connection).
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub error_code: Option<ErrorCode>,
    /// The start of the response body, for the operator.
    pub response_excerpt: Option<String>,
    pub duration_ms: i64,
    pub at: String,
}

/// How a claimed outbox row ended (or when to try it again).
#[derive(Debug, Clone)]
pub struct OutboxFinish<'a> {
    pub id: i64,
    pub claim_token: &'a str,
    pub status: OutboxStatus,
    pub last_error: Option<&'a str>,
    pub error_code: Option<ErrorCode>,
    pub next_attempt_at: Option<&'a str>,
    pub mapper_hash: Option<&'a str>,
    pub requests: Option<&'a str>,
    pub sent_requests: i64,
    /// The claim was no attempt (no mapper version served, the store
    /// failed): take back the attempt it counted.
    pub refund_attempt: bool,
}

/// Filters for [`Store::find_outbox`].
#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    pub provider: Option<String>,
    pub status: Option<OutboxStatus>,
    pub ticket_guid: Option<String>,
    pub error_code: Option<ErrorCode>,
    pub limit: u32,
    /// A previous page's `next`: the last row id seen.
    pub cursor: Option<String>,
}

const OUTBOX_COLUMNS: &str = "id, history_id, provider, ticket_guid, status, attempts, \
     next_attempt_at, last_error, error_code, created_at, sent_at, updated_at, claim_token, mapper_hash, \
     requests, sent_requests";

/// Rows per multi-row statement.
const CHUNK: usize = 256;

fn outbox_row(r: &sqlx::any::AnyRow) -> Result<OutboxRow, StoreError> {
    let status: String = r.try_get("status")?;
    Ok(OutboxRow {
        id: r.try_get("id")?,
        history_id: r.try_get("history_id")?,
        provider: r.try_get("provider")?,
        ticket_guid: r.try_get("ticket_guid")?,
        status: OutboxStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
            column: "outbox.status",
            reason: format!("unknown status `{status}`"),
        })?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        error_code: error_code(r)?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
        updated_at: r.try_get("updated_at")?,
        claim_token: r.try_get("claim_token")?,
        mapper_hash: r.try_get("mapper_hash")?,
        requests: r.try_get("requests")?,
        sent_requests: r.try_get("sent_requests")?,
    })
}

pub(super) fn error_code(r: &sqlx::any::AnyRow) -> Result<Option<ErrorCode>, StoreError> {
    let code: Option<String> = r.try_get("error_code")?;
    code.map(|c| {
        ErrorCode::parse(&c).ok_or_else(|| StoreError::Corrupt {
            column: "error_code",
            reason: format!("unknown error code `{c}`"),
        })
    })
    .transpose()
}

impl Store {
    /// Claims up to `limit` due rows of `providers`, oldest first, under a
    /// fresh claim token for `lease`, counting the attempt. Per ticket and
    /// provider only the oldest open row is claimable, so a provider gets
    /// a ticket's changes in order (a comment never before the create of
    /// its target). PostgreSQL replicas skip each other's rows.
    pub async fn claim_outbox(
        &self,
        providers: &[String],
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        if providers.is_empty() {
            return Ok(Vec::new());
        }
        let skip = match self.backend {
            super::Backend::Postgres => " FOR UPDATE OF o SKIP LOCKED",
            super::Backend::Sqlite => "",
        };
        let Clock { now, until, unused } = self.clock(1, 2, 5);
        let open = OutboxStatus::sql_list(&OutboxStatus::OPEN);
        // Audited: only placeholders, the clock's SQL and constants are
        // spliced in.
        let sql = format!(
            "UPDATE outbox SET status = {processing}, attempts = attempts + 1, \
             next_attempt_at = {until}, claim_token = $4, updated_at = {now} \
             WHERE id IN (SELECT o.id FROM outbox o WHERE o.status IN ({open}) \
             AND o.next_attempt_at <= {now} AND o.provider IN ({}) AND {unused} \
             AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.provider = o.provider \
             AND e.ticket_guid = o.ticket_guid AND e.id < o.id AND e.status IN ({open})) \
             ORDER BY o.id LIMIT $3{skip}) \
             RETURNING {OUTBOX_COLUMNS}",
            params(6, providers.len()),
            processing = OutboxStatus::Processing.sql(),
        );
        let (now_arg, until_arg, millis) = Self::clock_args(lease);
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(now_arg)
            .bind(until_arg)
            .bind(i64::from(limit))
            .bind(new_claim_token())
            .bind(millis);
        for p in providers {
            q = q.bind(p);
        }
        let rows = q.fetch_all(&self.write).await?;
        let mut out = rows.iter().map(outbox_row).collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    pub async fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.read_pool())
            .await?;
        row.as_ref().map(outbox_row).transpose()
    }

    /// Outbox rows matching `filter`, newest first, one page.
    pub async fn find_outbox(&self, filter: &OutboxFilter) -> Result<Page<OutboxRow>, StoreError> {
        let mut q = Filtered::new(format!("SELECT {OUTBOX_COLUMNS} FROM outbox"));
        if let Some(p) = &filter.provider {
            q.and(" AND provider = {}", p.clone());
        }
        if let Some(s) = filter.status {
            q.and(" AND status = {}", s.as_str().to_owned());
        }
        if let Some(g) = &filter.ticket_guid {
            q.and(" AND ticket_guid = {}", g.clone());
        }
        if let Some(c) = filter.error_code {
            q.and(" AND error_code = {}", c.as_str().to_owned());
        }
        q.page_by_id(
            self.read_pool(),
            filter.cursor.as_deref(),
            filter.limit,
            outbox_row,
            |r| r.id,
        )
        .await
    }

    /// The attempts recorded for outbox row `id`, oldest first.
    pub async fn outbox_attempts(&self, id: i64) -> Result<Vec<OutboxAttempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT outbox_id, attempt, request_index, method, path, status_code, error, \
             error_code, response_excerpt, duration_ms, at FROM outbox_attempts WHERE outbox_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.read_pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxAttempt {
                    outbox_id: r.try_get("outbox_id")?,
                    attempt: r.try_get("attempt")?,
                    request_index: r.try_get("request_index")?,
                    method: r.try_get("method")?,
                    path: r.try_get("path")?,
                    status_code: r.try_get("status_code")?,
                    error: r.try_get("error")?,
                    error_code: error_code(r)?,
                    response_excerpt: r.try_get("response_excerpt")?,
                    duration_ms: r.try_get("duration_ms")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// Puts failed or dead rows back in the queue, due now, keeping the
    /// requests already sent as sent (a retry resumes after them). `ids`
    /// empty: every failed or dead row of `provider` (or of all). Returns
    /// the ids queued again.
    pub async fn retry_outbox(
        &self,
        ids: &[i64],
        provider: Option<&str>,
    ) -> Result<Vec<i64>, StoreError> {
        // No stored provider name holds a NUL, and PostgreSQL would refuse
        // the parameter: such a filter matches nothing.
        if provider.is_some_and(|p| p.contains('\0')) {
            return Ok(Vec::new());
        }
        let retryable = OutboxStatus::sql_list(&[OutboxStatus::Failed, OutboxStatus::Dead]);
        let now = super::now();
        let mut sql = format!(
            "UPDATE outbox SET status = {pending}, attempts = 0, next_attempt_at = $1, \
             updated_at = $1, claim_token = NULL WHERE status IN ({retryable})",
            pending = OutboxStatus::Pending.sql(),
        );
        let mut args: Vec<String> = vec![now];
        if let Some(p) = provider {
            args.push(p.to_owned());
            sql.push_str(&format!(" AND provider = ${}", args.len()));
        }
        if !ids.is_empty() {
            sql.push_str(&format!(
                " AND id IN ({})",
                (0..ids.len())
                    .map(|i| format!("CAST(${} AS BIGINT)", args.len() + 1 + i))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            args.extend(ids.iter().map(i64::to_string));
        }
        sql.push_str(" RETURNING id");
        // Audited: constants and numbered placeholders only.
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for a in &args {
            query = query.bind(a);
        }
        let rows = query.fetch_all(&self.write).await?;
        let mut out = rows
            .iter()
            .map(|r| r.try_get::<i64, _>("id").map_err(StoreError::from))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_unstable();
        Ok(out)
    }

    /// Rows waiting or being sent.
    pub async fn outbox_depth(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM outbox WHERE status IN ({})",
            OutboxStatus::sql_list(&OutboxStatus::OPEN)
        )))
        .fetch_one(self.read_pool())
        .await?;
        Ok(row.try_get("n")?)
    }

    /// The history rows with these ids.
    pub async fn history_rows(&self, ids: &[i64]) -> Result<Vec<HistoryRow>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            // Audited: only numbered placeholders are spliced in.
            let sql = format!(
                "SELECT id, ticket_guid, kind, change, actor, origin, delivery_id, mapper_hash, at \
                 FROM history WHERE id IN ({})",
                params(1, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(self.read_pool()).await? {
                out.push(history_row(&r)?);
            }
        }
        Ok(out)
    }

    /// The tickets with these guids.
    pub async fn tickets(&self, guids: &[&str]) -> Result<Vec<TicketRow>, StoreError> {
        let mut out = Vec::with_capacity(guids.len());
        for chunk in guids.chunks(CHUNK) {
            // Audited: only numbered placeholders are spliced in.
            let sql = format!(
                "SELECT {TICKET_COLUMNS} FROM tickets WHERE guid IN ({})",
                params(1, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for g in chunk {
                q = q.bind(*g);
            }
            for r in q.fetch_all(self.read_pool()).await? {
                out.push(TicketRow::from_row(&r)?);
            }
        }
        Ok(out)
    }

    /// Every link of these tickets: `(guid, provider, external id)`, oldest
    /// first.
    pub async fn links_of(
        &self,
        guids: &[&str],
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut out = Vec::new();
        for chunk in guids.chunks(CHUNK) {
            // Audited: only numbered placeholders are spliced in.
            let sql = format!(
                "SELECT ticket_guid, provider, external_id FROM links WHERE ticket_guid IN ({}) \
                 ORDER BY created_at, provider, external_id",
                params(1, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for g in chunk {
                q = q.bind(*g);
            }
            for r in q.fetch_all(self.read_pool()).await? {
                out.push((
                    r.try_get("ticket_guid")?,
                    r.try_get("provider")?,
                    r.try_get("external_id")?,
                ));
            }
        }
        Ok(out)
    }
}

impl Tx {
    /// Records how claimed rows ended, fenced like the inbox: only rows
    /// still `processing` under the same token are written. Returns the ids
    /// written; the caller writes a row's attempts and captures only then.
    pub async fn finish_outbox(
        &mut self,
        finished: &[OutboxFinish<'_>],
        at: &str,
    ) -> Result<Vec<i64>, StoreError> {
        let mut written = Vec::with_capacity(finished.len());
        for f in finished {
            let sent_at = (f.status == OutboxStatus::Sent).then_some(at);
            let row = sqlx::query(
                "UPDATE outbox SET status = $1, last_error = $2, next_attempt_at = $3, \
                 mapper_hash = COALESCE($4, mapper_hash), requests = $5, sent_requests = $6, \
                 attempts = attempts - $7, sent_at = COALESCE($8, sent_at), updated_at = $9, \
                 claim_token = NULL, error_code = $12 \
                 WHERE id = $10 AND claim_token = $11 AND status = 'processing' RETURNING id",
            )
            .bind(f.status.as_str())
            .bind(f.last_error)
            .bind(f.next_attempt_at)
            .bind(f.mapper_hash)
            .bind(f.requests)
            .bind(f.sent_requests)
            .bind(i64::from(f.refund_attempt))
            .bind(sent_at)
            .bind(at)
            .bind(f.id)
            .bind(f.claim_token)
            .bind(f.error_code.map(ErrorCode::as_str))
            .fetch_optional(self.conn().await?)
            .await?;
            if let Some(r) = row {
                written.push(r.try_get("id")?);
            }
        }
        Ok(written)
    }

    /// Saves progress of a claimed row mid-way: `sent` requests of
    /// `requests` went out. Fenced by the claim token.
    pub async fn outbox_progress(
        &mut self,
        id: i64,
        claim_token: &str,
        requests: &str,
        sent: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET requests = $1, sent_requests = $2 \
             WHERE id = $3 AND claim_token = $4 AND status = 'processing'",
        )
        .bind(requests)
        .bind(sent)
        .bind(id)
        .bind(claim_token)
        .execute(self.conn().await?)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn insert_outbox_attempts(
        &mut self,
        attempts: &[OutboxAttempt],
    ) -> Result<(), StoreError> {
        for chunk in attempts.chunks(CHUNK) {
            // Audited: only numbered placeholders are spliced in.
            let sql = format!(
                "INSERT INTO outbox_attempts (outbox_id, attempt, request_index, method, path, \
                 status_code, error, error_code, response_excerpt, duration_ms, at) VALUES {}",
                value_rows(chunk.len(), 11)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for a in chunk {
                q = q
                    .bind(a.outbox_id)
                    .bind(a.attempt)
                    .bind(a.request_index)
                    .bind(&a.method)
                    .bind(&a.path)
                    .bind(a.status_code)
                    .bind(&a.error)
                    .bind(a.error_code.map(ErrorCode::as_str))
                    .bind(&a.response_excerpt)
                    .bind(a.duration_ms)
                    .bind(&a.at);
            }
            q.execute(self.conn().await?).await?;
        }
        Ok(())
    }
}
