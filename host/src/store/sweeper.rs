//! The sweeper's tables: the notices it recorded (once per rule, kind,
//! ticket and period), the tickets it considers, and on PostgreSQL the
//! advisory lock that makes one replica the leader of the periodic work
//! (the sweeper and the ticks, `schedule::lead`).

use sqlx::{AssertSqlSafe, Connection as _, Row};

use super::query::params;
use super::rows::{TICKET_COLUMNS, TicketRow};
use super::{Backend, Store, StoreError, Tx};

/// The advisory lock key of the periodic work's leader: any fixed number no other
/// part of the host uses (`sluice-sw` in ASCII).
const LEADER_KEY: i64 = 0x736c_7569_6365_7377;

/// A notice to remember, written with its history row.
#[derive(Debug, Clone)]
pub struct NewNotice<'a> {
    pub rule: &'a str,
    /// `direct` or `digest`.
    pub kind: &'a str,
    /// The ticket told about; `None` for a digest.
    pub ticket_guid: Option<&'a str>,
    /// The schedule tick, RFC 3339 UTC.
    pub period: &'a str,
    pub history_id: i64,
    pub tickets: i64,
    pub at: &'a str,
}

/// The latest period a rule sent notices of one kind for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeSummary {
    pub rule: String,
    pub kind: String,
    pub period: String,
    /// Notices recorded for that period.
    pub notices: i64,
    /// Tickets they covered.
    pub tickets: i64,
    pub at: String,
}

impl Tx {
    /// Remembers a notice; `false` when this (rule, kind, ticket, period)
    /// was already recorded — by an earlier run or another replica — and
    /// the caller must drop the transaction.
    pub async fn record_notice(&mut self, n: &NewNotice<'_>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO sweeper_notices (rule, kind, ticket_guid, period, history_id, tickets, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (rule, kind, ticket_guid, period) DO NOTHING",
        )
        .bind(n.rule)
        .bind(n.kind)
        .bind(n.ticket_guid.unwrap_or(""))
        .bind(n.period)
        .bind(n.history_id)
        .bind(n.tickets)
        .bind(n.at)
        .execute(self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Queues a history row of no one ticket (a digest) for a provider:
    /// its outbox row has no ticket, so it waits in no ticket's line.
    pub async fn enqueue_untied(
        &mut self,
        history_id: i64,
        provider: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO outbox (history_id, provider, ticket_guid, status, created_at, next_attempt_at, updated_at) \
             VALUES ($1, $2, NULL, $3, $4, $4, $4) ON CONFLICT (history_id, provider) DO NOTHING",
        )
        .bind(history_id)
        .bind(provider)
        .bind(super::OutboxStatus::Pending.as_str())
        .bind(at)
        .execute(self.conn().await?)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Tickets whose status is in `status_in` (any, when empty) and not in
    /// `status_not_in`, oldest update first: the candidates a rule's
    /// filter then narrows.
    pub async fn sweep_candidates(
        &self,
        status_in: &[String],
        status_not_in: &[String],
    ) -> Result<Vec<TicketRow>, StoreError> {
        let mut conds = Vec::new();
        let mut next = 1;
        if !status_in.is_empty() {
            conds.push(format!("status IN ({})", params(next, status_in.len())));
            next += status_in.len();
        }
        if !status_not_in.is_empty() {
            conds.push(format!(
                "status NOT IN ({})",
                params(next, status_not_in.len())
            ));
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        // Audited: only numbered placeholders and constants are spliced in.
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets{filter} ORDER BY updated_at, guid");
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for s in status_in.iter().chain(status_not_in) {
            q = q.bind(s);
        }
        q.fetch_all(self.read_pool())
            .await?
            .iter()
            .map(TicketRow::from_row)
            .collect()
    }

    /// Whether (rule, kind, ticket, period) was recorded already.
    pub async fn notice_recorded(
        &self,
        rule: &str,
        kind: &str,
        ticket_guid: Option<&str>,
        period: &str,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM sweeper_notices \
             WHERE rule = $1 AND kind = $2 AND ticket_guid = $3 AND period = $4",
        )
        .bind(rule)
        .bind(kind)
        .bind(ticket_guid.unwrap_or(""))
        .bind(period)
        .fetch_optional(self.read_pool())
        .await?;
        Ok(row.is_some())
    }

    /// Per rule and kind, the latest period notices were sent for.
    pub async fn notice_summaries(&self) -> Result<Vec<NoticeSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT n.rule, n.kind, n.period, COUNT(*) AS notices, CAST(SUM(n.tickets) AS BIGINT) AS tickets, \
             MAX(n.at) AS at FROM sweeper_notices n \
             WHERE n.period = (SELECT MAX(m.period) FROM sweeper_notices m \
             WHERE m.rule = n.rule AND m.kind = n.kind) \
             GROUP BY n.rule, n.kind, n.period ORDER BY n.rule, n.kind",
        )
        .fetch_all(self.read_pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NoticeSummary {
                    rule: r.try_get("rule")?,
                    kind: r.try_get("kind")?,
                    period: r.try_get("period")?,
                    notices: r.try_get("notices")?,
                    tickets: r.try_get("tickets")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// Tries to become the leader of the periodic work (sweeper, ticks). On PostgreSQL a session-level
    /// advisory lock, held by the returned connection: leadership lasts as
    /// long as that connection, so it moves to another replica when this
    /// one dies (the server ends its session) or drops the [`Leadership`].
    /// On SQLite there is one host: always the leader.
    pub async fn try_lead(&self) -> Result<Option<Leadership>, StoreError> {
        match self.backend {
            Backend::Sqlite => Ok(Some(Leadership { conn: None })),
            Backend::Postgres => {
                // Detached from the pool: the pool would hand a
                // lock-holding connection to other work.
                let mut conn = self.write.acquire().await?.detach();
                let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS led")
                    .bind(LEADER_KEY)
                    .fetch_one(&mut conn)
                    .await?;
                let led: bool = row.try_get("led")?;
                if led {
                    Ok(Some(Leadership { conn: Some(conn) }))
                } else {
                    conn.close().await?;
                    Ok(None)
                }
            }
        }
    }
}

/// Held while this host leads the periodic work.
pub struct Leadership {
    conn: Option<sqlx::AnyConnection>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("advisory_lock", &self.conn.is_some())
            .finish()
    }
}

impl Leadership {
    /// Whether the lock is still held (its connection answers).
    pub async fn holds(&mut self) -> bool {
        match &mut self.conn {
            None => true,
            Some(c) => c.ping().await.is_ok(),
        }
    }

    /// Gives leadership up now: unlocks before closing, since the server
    /// ends a closed session (and frees its locks) only a moment later.
    pub async fn release(self) {
        if let Some(mut c) = self.conn {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1) AS unlocked")
                .bind(LEADER_KEY)
                .fetch_one(&mut c)
                .await;
            let _ = c.close().await;
        }
    }
}
