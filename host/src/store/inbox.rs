//! The inbox: every verified delivery, raw, committed before the 2xx.

use sqlx::{AssertSqlSafe, Row};

use crate::redacted::{Bytes, HeaderNames};

use super::body;
use super::lease::{Clock, Queue, new_claim_token};
use super::query::{Filtered, Null, list_for, pad, padded_chunks, padded_values, params, rows_for};
use super::status::{DeliveryStatus, IgnoreReason};
use super::{Store, StoreError};

/// A verified delivery to store. Its `Debug` shows sizes and header names,
/// never a body or a header value.
#[derive(Clone)]
pub struct NewDelivery<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    pub dedupe_key: &'a str,
    /// The second key of providers whose delivery id is not signed: the
    /// body's hash, so a captured body resent under a new id is a
    /// duplicate too.
    pub body_key: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    /// `body` as the store keeps it, when the caller encoded it already
    /// (ingress does, so the single writer does not); `None`: the store
    /// encodes it.
    pub encoded: Option<body::Encoded<'a>>,
    pub received_at: &'a str,
}

impl NewDelivery<'_> {
    /// The bytes to store and their encoding.
    fn stored_body(&self) -> (std::borrow::Cow<'_, [u8]>, body::Encoding) {
        match self.encoded {
            Some(e) => (std::borrow::Cow::Borrowed(e.bytes), e.encoding),
            None => body::encode(self.body),
        }
    }
}

/// A fresh delivery id: a UUIDv7 in lowercase hex. Time-ordered, so the
/// inbox's primary-key index grows at its right edge: a random (v4) id
/// dirtied a random index page per stored delivery, one more page written
/// to the WAL and synced at every commit. The 74 random bits keep ids
/// unguessable; nothing may read a time out of them (`received_at` is the
/// time).
pub fn new_delivery_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The outcome of storing a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The delivery's id: the new one, or the first one with this key.
    pub id: String,
    /// A delivery with the same (provider, dedupe key) was stored before.
    pub duplicate: bool,
}

/// A stored delivery. Its `Debug` shows sizes and header names, never a
/// body or a header value.
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: String,
    pub provider: String,
    pub dedupe_key: String,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub received_at: String,
    pub status: DeliveryStatus,
    /// Why it was ignored, for [`DeliveryStatus::Ignored`].
    pub reason: Option<IgnoreReason>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub mapper_hash: Option<String>,
    pub event_type: Option<String>,
    /// The mapper's output and what it applied, JSON.
    pub output: Option<String>,
    /// The token of the claim that holds it (set while `processing`):
    /// renewing its lease and finishing it need this token.
    pub claim_token: Option<String>,
}

impl std::fmt::Debug for NewDelivery<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDelivery")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("method", &self.method)
            .field("headers", &HeaderNames(self.headers))
            .field("body", &Bytes(self.body.len()))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DeliveryRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryRow")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("method", &self.method)
            .field("headers", &HeaderNames(&self.headers))
            .field("body", &Bytes(self.body.len()))
            .field("status", &self.status)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// Which deliveries [`Store::claim_delivery`] may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reclaim {
    /// Any not being processed: an operator's replay.
    Any,
    /// Only one still pending: a `?wait=true` request.
    Pending,
}

/// Filters for [`Store::find_deliveries`].
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub provider: Option<String>,
    pub status: Option<DeliveryStatus>,
    pub received_after: Option<String>,
    pub received_before: Option<String>,
    pub limit: u32,
    pub cursor: Option<String>,
}

/// How a processed delivery ended (or when to try it again).
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    /// Any status but `processing`; `pending` and `retrying` are due at
    /// `next_attempt_at`.
    pub status: DeliveryStatus,
    pub reason: Option<IgnoreReason>,
    /// The claim was no attempt (no mapper version served): take back the
    /// attempt it counted.
    pub refund_attempt: bool,
    /// The claim this outcome belongs to; a row claimed since by another
    /// worker is not written.
    pub claim_token: Option<&'a str>,
    pub last_error: Option<&'a str>,
    pub mapper_hash: Option<&'a str>,
    pub event_type: Option<&'a str>,
    pub output: Option<&'a str>,
    pub next_attempt_at: Option<&'a str>,
}

const DELIVERY_COLUMNS: &str = "id, provider, dedupe_key, method, path, headers, body, body_encoding, \
     received_at, status, reason, attempts, last_error, mapper_hash, event_type, output, claim_token";

/// Rows per multi-row statement: 256 rows of up to 14 parameters stay far
/// below SQLite's and PostgreSQL's parameter limits.
const INSERT_CHUNK: usize = 256;

/// The types of an inserted delivery's columns, for padding rows.
const DELIVERY_INSERT_NULLS: [Null; 14] = [
    Null::Text, // id
    Null::Text, // provider
    Null::Text, // dedupe_key
    Null::Text, // method
    Null::Text, // path
    Null::Text, // headers
    Null::Blob, // body
    Null::Text, // received_at
    Null::Text, // status
    Null::Int,  // attempts
    Null::Text, // next_attempt_at
    Null::Text, // body_key
    Null::Int,  // redacted
    Null::Text, // body_encoding
];

/// The types of a finished delivery's `VALUES` columns, for padding rows:
/// `column9` is the attempt refunded (0 or 1).
const FINISH_NULLS: [Null; 10] = [
    Null::Text,
    Null::Text,
    Null::Text,
    Null::Text,
    Null::Text,
    Null::Text,
    Null::Text,
    Null::Text,
    Null::Int,
    Null::Text,
];

fn headers_json(headers: &[(String, String)]) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".into())
}

/// The id of the delivery an insert collided with: the same dedupe key or,
/// for a replayed body, the same body key — the earliest if both.
async fn first_of<'e, E>(db: E, d: &NewDelivery<'_>) -> Result<String, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query(
        "SELECT id FROM deliveries WHERE provider = $1 AND (dedupe_key = $2 OR body_key = $3) \
         ORDER BY received_at, id LIMIT 1",
    )
    .bind(d.provider)
    .bind(d.dedupe_key)
    .bind(d.body_key)
    .fetch_one(db)
    .await?;
    Ok(row.try_get("id")?)
}

fn delivery_row(r: &sqlx::any::AnyRow) -> Result<DeliveryRow, StoreError> {
    let headers: String = r.try_get("headers")?;
    Ok(DeliveryRow {
        id: r.try_get("id")?,
        provider: r.try_get("provider")?,
        dedupe_key: r.try_get("dedupe_key")?,
        method: r.try_get("method")?,
        path: r.try_get("path")?,
        headers: serde_json::from_str(&headers).map_err(|e| StoreError::Corrupt {
            column: "deliveries.headers",
            reason: e.to_string(),
        })?,
        body: body::decode(
            r.try_get("body")?,
            r.try_get::<Option<String>, _>("body_encoding")?.as_deref(),
        )?,
        received_at: r.try_get("received_at")?,
        status: {
            let s: String = r.try_get("status")?;
            DeliveryStatus::parse(&s).ok_or_else(|| StoreError::Corrupt {
                column: "deliveries.status",
                reason: format!("unknown status `{s}`"),
            })?
        },
        reason: r
            .try_get::<Option<String>, _>("reason")?
            .as_deref()
            .and_then(IgnoreReason::parse),
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        mapper_hash: r.try_get("mapper_hash")?,
        event_type: r.try_get("event_type")?,
        output: r.try_get("output")?,
        claim_token: r.try_get("claim_token")?,
    })
}

impl Store {
    /// Stores a delivery unless its (provider, dedupe key) is stored
    /// already; returns once the row is committed.
    pub async fn insert_delivery(&self, d: &NewDelivery<'_>) -> Result<Stored, StoreError> {
        let headers = headers_json(d.headers);
        let (stored_body, encoding) = d.stored_body();
        let done = sqlx::query(
            "INSERT INTO deliveries (id, provider, dedupe_key, method, path, headers, body, received_at, \
             status, attempts, next_attempt_at, body_key, redacted, body_encoding) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10, 0, $8, $9, 1, $11) \
             ON CONFLICT DO NOTHING",
        )
        .bind(d.id)
        .bind(d.provider)
        .bind(d.dedupe_key)
        .bind(d.method)
        .bind(d.path)
        .bind(headers)
        .bind(&*stored_body)
        .bind(d.received_at)
        .bind(d.body_key)
        .bind(DeliveryStatus::Pending.as_str())
        .bind(encoding.as_column())
        .execute(&self.write)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(Stored {
                id: d.id.to_owned(),
                duplicate: false,
            });
        }
        Ok(Stored {
            id: first_of(&self.write, d).await?,
            duplicate: true,
        })
    }

    /// Stores a batch of deliveries in one transaction — one commit, one
    /// fsync — skipping those whose (provider, dedupe key) is stored
    /// already or comes earlier in the batch. Results are in input order.
    pub async fn insert_deliveries(
        &self,
        batch: &[NewDelivery<'_>],
    ) -> Result<Vec<Stored>, StoreError> {
        let mut tx = self.begin().await?;
        let stored = tx.insert_deliveries(batch).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Providers that have rows stored before ingress redacted secrets.
    pub async fn unredacted_providers(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT provider FROM deliveries WHERE redacted = 0")
            .fetch_all(&self.write)
            .await?;
        rows.iter()
            .map(|r| r.try_get("provider").map_err(StoreError::from))
            .collect()
    }

    /// Rewrites the path and headers of `provider`'s unredacted rows with
    /// `redact(path, headers)` and marks them redacted, a chunk per
    /// transaction. Returns how many rows it rewrote.
    pub async fn redact_deliveries(
        &self,
        provider: &str,
        redact: impl Fn(&str, &[(String, String)]) -> (String, Vec<(String, String)>),
    ) -> Result<u64, StoreError> {
        let mut done = 0;
        loop {
            let mut tx = self.write.begin().await?;
            let rows = sqlx::query(
                "SELECT id, path, headers FROM deliveries WHERE provider = $1 AND redacted = 0 \
                 ORDER BY id LIMIT 500",
            )
            .bind(provider)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                return Ok(done);
            }
            for r in &rows {
                let id: String = r.try_get("id")?;
                let path: String = r.try_get("path")?;
                let headers: String = r.try_get("headers")?;
                let headers: Vec<(String, String)> =
                    serde_json::from_str(&headers).map_err(|e| StoreError::Corrupt {
                        column: "deliveries.headers",
                        reason: e.to_string(),
                    })?;
                let (path, headers) = redact(&path, &headers);
                sqlx::query(
                    "UPDATE deliveries SET path = $1, headers = $2, redacted = 1 WHERE id = $3",
                )
                .bind(path)
                .bind(headers_json(&headers))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            done += rows.len() as u64;
        }
    }

    pub async fn delivery(&self, id: &str) -> Result<Option<DeliveryRow>, StoreError> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.read_pool())
            .await?;
        row.as_ref().map(delivery_row).transpose()
    }

    /// Claims up to `limit` deliveries of `providers` that are due (pending
    /// or retrying and due, or processing with an expired lease after a
    /// crash), oldest first: marks them processing under a fresh claim
    /// token for `lease`, and counts the attempt. Times come from the
    /// database's clock on PostgreSQL (replicas' clocks may disagree) and
    /// from this host's on SQLite (one host per file). On PostgreSQL
    /// concurrent hosts skip each other's rows.
    pub async fn claim_deliveries(
        &self,
        providers: &[String],
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        if providers.is_empty() {
            return Ok(Vec::new());
        }
        let skip = match self.backend {
            super::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            super::Backend::Sqlite => "",
        };
        let Clock { now, until, unused } = self.clock(1, 2, 5);
        // Audited: only placeholders, the clock's SQL and constants are
        // spliced in.
        let sql = format!(
            "UPDATE deliveries SET status = {processing}, attempts = attempts + 1, \
             next_attempt_at = {until}, claim_token = $4 \
             WHERE id IN (SELECT id FROM deliveries WHERE status IN ({claimable}) \
             AND next_attempt_at <= {now} AND provider IN ({}) AND {unused} \
             ORDER BY received_at, id LIMIT $3{skip}) \
             RETURNING {DELIVERY_COLUMNS}",
            params(6, providers.len()),
            processing = DeliveryStatus::Processing.sql(),
            claimable = DeliveryStatus::sql_list(&DeliveryStatus::CLAIMABLE),
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
        let mut out = rows
            .iter()
            .map(delivery_row)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| (&a.received_at, &a.id).cmp(&(&b.received_at, &b.id)));
        Ok(out)
    }

    /// Extends the lease of the deliveries `claim_token` still holds;
    /// returns how many it holds. A claim another worker took over after
    /// the lease ran out is not extended.
    pub async fn renew_claim(
        &self,
        claim_token: &str,
        lease: std::time::Duration,
    ) -> Result<u64, StoreError> {
        self.renew_lease(Queue::Inbox, claim_token, lease).await
    }

    /// Claims one delivery by id unless it is being processed right now:
    /// in any other state for a replay ([`Reclaim::Any`]), only while it
    /// waits for its first processing for `?wait=true` ([`Reclaim::Pending`]:
    /// a request never re-runs a delivery someone else has finished).
    pub async fn claim_delivery(
        &self,
        id: &str,
        lease: std::time::Duration,
        which: Reclaim,
    ) -> Result<Option<DeliveryRow>, StoreError> {
        let processing = DeliveryStatus::Processing.sql();
        let states = match which {
            Reclaim::Any => format!("status <> {processing}"),
            Reclaim::Pending => format!("status = {}", DeliveryStatus::Pending.sql()),
        };
        let Clock { now, until, unused } = self.clock(4, 2, 5);
        // Audited: only the clock's SQL and constants are spliced in.
        let sql = format!(
            "UPDATE deliveries SET status = {processing}, attempts = attempts + 1, \
             next_attempt_at = {until}, claim_token = $3 \
             WHERE id = $1 AND {states} AND ({now} IS NOT NULL OR TRUE) AND {unused} RETURNING {DELIVERY_COLUMNS}"
        );
        let (now_arg, until_arg, millis) = Self::clock_args(lease);
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(until_arg)
            .bind(new_claim_token())
            .bind(now_arg)
            .bind(millis)
            .fetch_optional(&self.write)
            .await?;
        row.as_ref().map(delivery_row).transpose()
    }

    /// Records how several deliveries ended: one UPDATE joined to a VALUES
    /// list per chunk, in one transaction. Only rows still `processing`
    /// under the same claim token are written: a claim that lost its lease
    /// to another worker records nothing, and running it again after a
    /// commit whose answer was lost (a dropped connection) changes nothing
    /// and refunds no attempt twice. Returns how many were written.
    pub async fn finish_deliveries(
        &self,
        finished: &[(&str, Finish<'_>)],
    ) -> Result<u64, StoreError> {
        let mut fenced = 0;
        let mut tx = self.write.begin().await?;
        for chunk in padded_chunks(self.backend, finished, INSERT_CHUNK) {
            // Audited: only numbered placeholders and a constant are
            // spliced in. VALUES columns are `column1`… in both dialects.
            let sql = format!(
                "UPDATE deliveries SET status = v.column2, last_error = v.column3, \
                 mapper_hash = v.column4, event_type = v.column5, output = v.column6, \
                 next_attempt_at = v.column7, reason = v.column8, \
                 attempts = deliveries.attempts - v.column9, claim_token = NULL \
                 FROM (VALUES {}) AS v WHERE deliveries.id = v.column1 \
                 AND deliveries.claim_token = v.column10 AND deliveries.status = {processing}",
                rows_for(self.backend, chunk.shape, 10),
                processing = DeliveryStatus::Processing.sql(),
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (id, f) in chunk.rows {
                q = q
                    .bind(*id)
                    .bind(f.status.as_str())
                    .bind(f.last_error)
                    .bind(f.mapper_hash)
                    .bind(f.event_type)
                    .bind(f.output)
                    .bind(f.next_attempt_at)
                    .bind(f.reason.map(IgnoreReason::as_str))
                    .bind(i64::from(f.refund_attempt))
                    .bind(f.claim_token);
            }
            // A padding row's NULL id matches no delivery.
            q = pad(q, chunk.padding(), &FINISH_NULLS);
            fenced += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(fenced)
    }

    /// Deliveries matching `filter`, newest first, one page.
    pub async fn find_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<super::Page<DeliveryRow>, StoreError> {
        let mut q = Filtered::new(format!("SELECT {DELIVERY_COLUMNS} FROM deliveries"));
        if let Some(p) = &filter.provider {
            q.and(" AND provider = {}", p.clone());
        }
        if let Some(s) = filter.status {
            q.and(" AND status = {}", s.as_str().to_owned());
        }
        if let Some(t) = &filter.received_after {
            q.and(" AND received_at > {}", t.clone());
        }
        if let Some(t) = &filter.received_before {
            q.and(" AND received_at < {}", t.clone());
        }
        q.page(
            self.read_pool(),
            ("received_at", "id"),
            filter.cursor.as_deref(),
            filter.limit,
            delivery_row,
            |d| format!("{}/{}", d.received_at, d.id),
        )
        .await
    }

    /// The history rows a delivery produced.
    pub async fn history_of_delivery(
        &self,
        id: &str,
    ) -> Result<Vec<super::HistoryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, ticket_guid, kind, change, actor, origin, delivery_id, mapper_hash, at \
             FROM history WHERE delivery_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.read_pool())
        .await?;
        rows.iter().map(super::rows::history_row).collect()
    }

    /// Deliveries waiting or being processed.
    pub async fn inbox_depth(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM deliveries WHERE status IN ({})",
            DeliveryStatus::sql_list(&DeliveryStatus::CLAIMABLE)
        )))
        .fetch_one(self.read_pool())
        .await?;
        Ok(row.try_get("n")?)
    }

    /// One round trip to the database, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1 AS one")
            .fetch_one(self.read_pool())
            .await?;
        Ok(())
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

impl Store {
    /// Remembers a secret a provider handed over in a handshake.
    pub async fn add_handshake_secret(
        &self,
        provider: &str,
        secret: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO handshake_secrets (provider, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (provider, secret) DO NOTHING",
        )
        .bind(provider)
        .bind(secret)
        .bind(super::now())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Every handshake secret of `provider`, oldest first.
    pub async fn handshake_secrets(&self, provider: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT secret FROM handshake_secrets WHERE provider = $1 ORDER BY created_at, secret",
        )
        .bind(provider)
        .fetch_all(self.read_pool())
        .await?;
        rows.iter()
            .map(|r| r.try_get("secret").map_err(StoreError::from))
            .collect()
    }
}

/// A delivery stored new in this transaction, settled in it too (the
/// inline path): its outcome, as [`Finish`] records a worker's.
#[derive(Debug, Clone)]
pub struct Settle<'a> {
    pub id: &'a str,
    pub status: DeliveryStatus,
    pub reason: Option<IgnoreReason>,
    pub last_error: Option<&'a str>,
    pub mapper_hash: Option<&'a str>,
    pub event_type: Option<&'a str>,
    pub output: Option<&'a str>,
}

impl super::Tx {
    /// Stores deliveries as `pending` (see [`Store::insert_deliveries`]);
    /// commits nothing.
    pub async fn insert_deliveries(
        &mut self,
        batch: &[NewDelivery<'_>],
    ) -> Result<Vec<Stored>, StoreError> {
        let backend = self.backend;
        let tx = self.conn().await?;
        let mut inserted = std::collections::HashSet::new();
        for chunk in padded_chunks(backend, batch, INSERT_CHUNK) {
            // Audited: only numbered placeholders are spliced in.
            let sql = format!(
                "INSERT INTO deliveries (id, provider, dedupe_key, method, path, headers, body, \
                 received_at, status, attempts, next_attempt_at, body_key, redacted, body_encoding) \
                 {} ON CONFLICT DO NOTHING",
                padded_values(backend, chunk.shape, 14)
            );
            let bodies: Vec<_> = chunk.rows.iter().map(NewDelivery::stored_body).collect();
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (d, (stored_body, encoding)) in chunk.rows.iter().zip(&bodies) {
                q = q
                    .bind(d.id)
                    .bind(d.provider)
                    .bind(d.dedupe_key)
                    .bind(d.method)
                    .bind(d.path)
                    .bind(headers_json(d.headers))
                    .bind(&**stored_body)
                    .bind(d.received_at)
                    .bind(DeliveryStatus::Pending.as_str())
                    .bind(0_i64)
                    // Due at once.
                    .bind(d.received_at)
                    .bind(d.body_key)
                    // Ingress stores deliveries already redacted.
                    .bind(1_i64)
                    .bind(encoding.as_column());
            }
            q = pad(q, chunk.padding(), &DELIVERY_INSERT_NULLS);
            // No `RETURNING`: on SQLite each returned row is a message from
            // the connection's thread. Every row stored is the common case;
            // ids are fresh, so those of the chunk found afterwards are the
            // ones this statement stored.
            let done = q.execute(&mut *tx).await?;
            if done.rows_affected() == chunk.rows.len() as u64 {
                inserted.extend(chunk.rows.iter().map(|d| d.id.to_owned()));
                continue;
            }
            // Audited: only numbered placeholders are spliced in.
            let sql = format!(
                "SELECT id FROM deliveries WHERE id IN ({})",
                list_for(backend, chunk.shape)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for d in chunk.rows {
                q = q.bind(d.id);
            }
            q = pad(q, chunk.padding(), &[Null::Text]);
            for row in q.fetch_all(&mut *tx).await? {
                inserted.insert(row.try_get::<String, _>("id")?);
            }
        }
        let mut out = Vec::with_capacity(batch.len());
        for d in batch {
            if inserted.contains(d.id) {
                out.push(Stored {
                    id: d.id.to_owned(),
                    duplicate: false,
                });
                continue;
            }
            out.push(Stored {
                id: first_of(&mut *tx, d).await?,
                duplicate: true,
            });
        }
        self.stored_here.extend(inserted);
        Ok(out)
    }

    /// Records the outcomes of deliveries stored `pending` earlier in this
    /// transaction and processed in it: one attempt each, no claim.
    pub async fn settle_new(&mut self, settled: &[Settle<'_>]) -> Result<u64, StoreError> {
        let backend = self.backend;
        let tx = self.conn().await?;
        let mut done = 0;
        for chunk in padded_chunks(backend, settled, INSERT_CHUNK) {
            // Audited: only numbered placeholders and constants are
            // spliced in. VALUES columns are `column1`… in both dialects.
            let sql = format!(
                "UPDATE deliveries SET status = v.column2, last_error = v.column3, \
                 mapper_hash = v.column4, event_type = v.column5, output = v.column6, \
                 reason = v.column7, attempts = 1, next_attempt_at = NULL \
                 FROM (VALUES {}) AS v WHERE deliveries.id = v.column1 \
                 AND deliveries.status = {pending}",
                rows_for(backend, chunk.shape, 7),
                pending = DeliveryStatus::Pending.sql(),
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for d in chunk.rows {
                q = q
                    .bind(d.id)
                    .bind(d.status.as_str())
                    .bind(d.last_error)
                    .bind(d.mapper_hash)
                    .bind(d.event_type)
                    .bind(d.output)
                    .bind(d.reason.map(IgnoreReason::as_str));
            }
            // A padding row's NULL id matches no delivery.
            q = pad(q, chunk.padding(), &[Null::Text; 7]);
            done += q.execute(&mut *tx).await?.rows_affected();
        }
        Ok(done)
    }
}
