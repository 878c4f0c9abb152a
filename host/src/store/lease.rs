//! The leased-queue pattern the inbox and the outbox share: a claim marks
//! rows `processing` under a fresh token until `now + lease`; only the
//! token's holder renews the lease or records the outcome (fencing); a
//! crashed holder's rows become claimable when the lease runs out. Times
//! come from PostgreSQL's clock when several replicas share a database.

use sqlx::AssertSqlSafe;

use super::{Backend, Store, StoreError};

/// Which leased queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// `deliveries`: the inbox.
    Inbox,
    /// `outbox`: changes to send.
    Outbox,
}

impl Queue {
    fn table(self) -> &'static str {
        match self {
            Queue::Inbox => "deliveries",
            Queue::Outbox => "outbox",
        }
    }
}

/// A stored-time clock in SQL; see [`Store::clock`].
pub(super) struct Clock {
    pub now: String,
    pub until: String,
    /// Always true; mentions the parameters the expressions above do not,
    /// so every bound parameter is used on both backends.
    pub unused: String,
}

pub(super) fn new_claim_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Store {
    /// Extends the lease of the rows of `queue` that `claim_token` still
    /// holds; returns how many it holds. A claim another worker took over
    /// after the lease ran out is not extended.
    pub async fn renew_lease(
        &self,
        queue: Queue,
        claim_token: &str,
        lease: std::time::Duration,
    ) -> Result<u64, StoreError> {
        let Clock { now, until, unused } = self.clock(1, 2, 4);
        // Audited: only the clock's SQL, a table name and constants are
        // spliced in.
        let sql = format!(
            "UPDATE {table} SET next_attempt_at = {until} \
             WHERE claim_token = $3 AND status = 'processing' AND ({now} IS NOT NULL OR TRUE) AND {unused}",
            table = queue.table(),
        );
        let (now_arg, until_arg, millis) = Self::clock_args(lease);
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(now_arg)
            .bind(until_arg)
            .bind(claim_token)
            .bind(millis)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }

    /// "now" and "now + lease" as stored times, in SQL, from the
    /// parameters `$now` and `$until` (this host's clock, text) and
    /// `$millis` (the lease): PostgreSQL takes its own clock, so replicas
    /// whose clocks disagree still agree on leases; SQLite (one host per
    /// file) takes this host's.
    pub(super) fn clock(&self, now: usize, until: usize, millis: usize) -> Clock {
        match self.backend {
            Backend::Postgres => {
                const FORMAT: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'";
                Clock {
                    now: format!("to_char(clock_timestamp() AT TIME ZONE 'UTC', {FORMAT})"),
                    until: format!(
                        "to_char((clock_timestamp() + ${millis} * interval '1 millisecond') \
                         AT TIME ZONE 'UTC', {FORMAT})"
                    ),
                    unused: format!("${now} = ${now} AND ${until} = ${until}"),
                }
            }
            Backend::Sqlite => Clock {
                now: format!("${now}"),
                until: format!("${until}"),
                unused: format!("${millis} = ${millis}"),
            },
        }
    }

    /// The values of [`Store::clock`]'s parameters: now, now + lease (this
    /// host's clock) and the lease in milliseconds.
    pub(super) fn clock_args(lease: std::time::Duration) -> (String, String, i64) {
        let now = chrono::Utc::now();
        let delta = chrono::TimeDelta::from_std(lease).unwrap_or(chrono::TimeDelta::MAX);
        let until = now.checked_add_signed(delta).unwrap_or(now);
        (
            super::timestamp(now),
            super::timestamp(until),
            i64::try_from(lease.as_millis()).unwrap_or(i64::MAX),
        )
    }
}
