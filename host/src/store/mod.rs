//! The store: the only module that knows sqlx.
//!
//! SQLite (WAL, `synchronous=FULL`) is the embedded default; PostgreSQL is
//! the engine for several replicas. Both run through sqlx's `Any` driver
//! with the same SQL where the dialects agree and a per-backend branch where
//! they do not (row locks, upserts' `RETURNING`). Migrations are embedded,
//! one directory per dialect, and run at open.
//!
//! Writes go through [`Tx`], one transaction per unit of work. On SQLite the
//! write pool has one connection — the single writer — so write
//! transactions never race for the database lock; reads use their own pool.
//! On PostgreSQL a ticket is locked (`FOR UPDATE`) before it is changed.

mod body;
mod conflicts;
mod deferred;
mod fault;
mod group;
mod health;
mod inbox;
mod lease;
mod outbox;
mod people;
mod query;
mod retention;
mod rows;
mod schedule;
mod status;
mod sweeper;
mod tx;

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, AssertSqlSafe, Connection, Executor, Row};
use thiserror::Error;

pub use body::{Encoded, Encoding, encode_owned};
pub use conflicts::{
    ConflictFilter, ConflictResolved, ConflictRow, ConflictState, NewConflict, NewSynced,
    Resolution, SyncSource,
};
pub use group::{InboxEntry, InboxWriter, Inline, Unstarted, WriterTask};
pub use health::{ProviderCounts, RECENT_ATTEMPTS, RecentAttempt};
pub use inbox::{
    DeliveryFilter, DeliveryRow, Finish, NewDelivery, Reclaim, Settle, Stored, new_delivery_id,
};
pub use lease::Queue;
pub use outbox::{OutboxAttempt, OutboxFilter, OutboxFinish, OutboxRow};
pub use people::{NewPerson, PersonRow, PutPerson, StateEntry};
pub use query::cursor_position;
pub use rows::{
    Comment, HistoryRow, Link, NewHistory, Page, PrLink, Signoff, TicketFilter, TicketRow,
};
pub use schedule::OpenLink;
pub use status::{DeliveryStatus, ErrorCode, IgnoreReason, OutboxStatus};
pub use sweeper::{Leadership, NewNotice, NoticeSummary};
pub use tx::Tx;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open the database `{url}`")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot migrate the database")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database error")]
    Query(#[from] sqlx::Error),
    #[error("stored value in `{column}` is invalid: {reason}")]
    Corrupt {
        column: &'static str,
        reason: String,
    },
}

impl StoreError {
    /// A failure worth retrying, because the database, not the data, is in
    /// trouble: a lost or refused connection (failover, restart, too many
    /// connections), a full disk or an I/O error, lock contention, a
    /// serialization conflict or deadlock, or no pooled connection in time.
    /// The codes are in `fault.rs`.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Query(sqlx::Error::Database(db)) => fault::database_error(db.as_ref()),
            StoreError::Query(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Time bounds on the database, so that one that stops answering fails
/// requests quickly instead of holding them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbLimits {
    /// Longest wait for a pooled connection (including the check that an
    /// idle one is still alive).
    pub acquire_timeout: Duration,
    /// PostgreSQL's `statement_timeout` on every pooled connection; the
    /// migrations run without it (an index build on a large table may
    /// take longer). SQLite has its busy timeout instead.
    pub statement_timeout: Duration,
}

impl Default for DbLimits {
    fn default() -> Self {
        DbLimits {
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(15),
        }
    }
}

/// What a checkpoint found in SQLite's write-ahead log: its frames (pages
/// written since it last restarted) and how many of them are now in the
/// database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub log_frames: i64,
    pub checkpointed_frames: i64,
}

/// SQLite: the write connection's page cache, in KiB.
const WRITER_CACHE_KIB: u32 = 32 * 1024;
/// SQLite: each reader's page cache, in KiB (SQLite's default).
const READER_CACHE_KIB: u32 = 2_000;

/// How often the serving host checkpoints SQLite's write-ahead log.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    write: AnyPool,
    read: AnyPool,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates. `url` is a
    /// `postgres://` URL, a `sqlite:` URL, or a plain file path for SQLite.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_with(url, DbLimits::default()).await
    }

    /// [`Store::open`] with the given time bounds.
    pub async fn open_with(url: &str, limits: DbLimits) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalise(url);
        let open_err = |source| StoreError::Open {
            url: redact(&url),
            source,
        };
        let options = AnyConnectOptions::from_str(&url).map_err(open_err)?;
        let store = match backend {
            Backend::Sqlite => {
                // `cache`: the page cache of each connection, in KiB.
                let pool = |max: u32, cache: u32| {
                    AnyPoolOptions::new()
                        .max_connections(max)
                        // A file does not drop connections; a ping before
                        // each use would be one more hop to its thread.
                        .test_before_acquire(false)
                        .acquire_timeout(limits.acquire_timeout)
                        .after_release(outside_transaction)
                        .after_connect(move |conn, _| {
                            Box::pin(async move {
                                // Audited: a constant is spliced in.
                                conn.execute(AssertSqlSafe(format!(
                                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                                     PRAGMA temp_store = MEMORY; PRAGMA cache_size = -{cache};"
                                )))
                                .await
                                .map(drop)
                            })
                        })
                };
                // One writer: SQLite serialises writers anyway, and a
                // single connection turns lock contention into queueing.
                // A reader checkpoints beside it ([`Store::checkpoint`]), so
                // the writer's own checkpoint after a commit (SQLite's, at
                // 1,000 pages of log) finds the log copied already instead
                // of copying and syncing it while every write waits.
                // Its page cache holds the pages every commit touches (the
                // ticket, the indexes' right edges); SQLite's default sent
                // it back to the file for them.
                let write = pool(1, WRITER_CACHE_KIB)
                    .connect_with(options.clone())
                    .await
                    .map_err(open_err)?;
                let read = pool(8, READER_CACHE_KIB)
                    .connect_with(options)
                    .await
                    .map_err(open_err)?;
                Store {
                    backend,
                    write,
                    read,
                }
            }
            Backend::Postgres => {
                let statement_timeout = limits.statement_timeout.as_millis();
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(limits.acquire_timeout)
                    .after_release(outside_transaction)
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            conn.execute(AssertSqlSafe(format!(
                                "SET statement_timeout = {statement_timeout}"
                            )))
                            .await
                            .map(drop)
                        })
                    })
                    .connect_with(options)
                    .await
                    .map_err(open_err)?;
                Store {
                    backend,
                    write: pool.clone(),
                    read: pool,
                }
            }
        };
        store.migrate(limits).await?;
        Ok(store)
    }

    /// Runs the migrations on one connection; on PostgreSQL without the
    /// statement timeout, which is restored afterwards.
    async fn migrate(&self, limits: DbLimits) -> Result<(), StoreError> {
        let mut conn = self.write.acquire().await?;
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => {
                conn.execute("SET statement_timeout = 0").await?;
                &POSTGRES_MIGRATIONS
            }
        };
        migrator
            .run(&mut *conn)
            .await
            .map_err(StoreError::Migrate)?;
        if self.backend == Backend::Postgres {
            conn.execute(AssertSqlSafe(format!(
                "SET statement_timeout = {}",
                limits.statement_timeout.as_millis()
            )))
            .await?;
        }
        Ok(())
    }

    /// SQLite: copies what the write-ahead log holds into the database
    /// file, on a reader connection and without stopping the writer
    /// (`PASSIVE`: it copies what no reader still needs and never waits).
    /// The serving host runs it every [`CHECKPOINT_EVERY`]. `None` on
    /// PostgreSQL.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&self.read)
            .await?;
        Ok(Some(Checkpoint {
            log_frames: row.try_get(1)?,
            checkpointed_frames: row.try_get(2)?,
        }))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction. On SQLite it takes the database's
    /// write lock at once (`BEGIN IMMEDIATE`, waiting up to the busy
    /// timeout): a transaction that read first and wrote later could find
    /// another connection to the file (a `host` command beside `host
    /// serve`) had written in between, and fail at its first write; and
    /// history ids are handed out from what it reads ([`Tx::append_history`]).
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.write.begin().await?,
        };
        Ok(Tx::new(tx, self.backend))
    }

    pub(crate) fn read_pool(&self) -> &AnyPool {
        &self.read
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// Keeps a released connection only once it is outside any transaction.
///
/// A COMMIT or ROLLBACK that fails (SQLite's disk full or I/O error, which
/// may have ended the transaction already) leaves sqlx's count of open
/// transactions above zero. Such a connection would run the next
/// transaction as a savepoint inside a stale one that is never committed:
/// inbox writes reported stored, and acknowledged, that no other
/// connection ever sees. A dropped transaction's rollback is only queued,
/// so it is run (by the ping) before the count is read again; a connection
/// still counting a transaction is closed, and the pool opens a fresh one.
fn outside_transaction(
    conn: &mut sqlx::AnyConnection,
    _: sqlx::pool::PoolConnectionMetadata,
) -> Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        if !conn.is_in_transaction() {
            return Ok(true);
        }
        conn.ping().await?;
        Ok(!conn.is_in_transaction())
    })
}

fn normalise(url: &str) -> (Backend, String) {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        (Backend::Postgres, url.to_owned())
    } else if url.starts_with("sqlite:") {
        (Backend::Sqlite, url.to_owned())
    } else {
        (Backend::Sqlite, format!("sqlite://{url}?mode=rwc"))
    }
}

/// The URL without its password — in the user info or in a `password` /
/// `sslpassword` query parameter — for errors and logs.
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &base[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &base[..scheme + 3], &base[at..]),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    let Some(query) = query else {
        return base;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _))
                if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword") =>
            {
                format!("{k}=***")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// Now, in the stored time format.
pub fn now() -> String {
    timestamp(chrono::Utc::now())
}

/// `t` in the stored time format (sortable as text).
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every SQLite connection, the writer's and the readers', runs with
    /// the settings the store's durability and speed rest on: a lost
    /// `synchronous = FULL` would acknowledge deliveries a power cut can
    /// lose, a lost `temp_store = MEMORY` sends statement journals to
    /// a temporary file (under load, more bytes than the log itself), and
    /// the writer's larger page cache keeps its commits out of the file.
    #[tokio::test]
    async fn sqlite_connections_keep_the_log_durable_and_statement_journals_in_memory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("s.db").to_string_lossy())
            .await
            .expect("open");
        async fn pragmas(conn: &mut sqlx::AnyConnection) -> (String, i64, i64, i64, i64) {
            let one = |sql: &'static str| sqlx::query(sql);
            let mode: String = one("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await
                .and_then(|r| r.try_get(0))
                .expect("journal_mode");
            let mut int = async |sql: &'static str| -> i64 {
                one(sql)
                    .fetch_one(&mut *conn)
                    .await
                    .and_then(|r| r.try_get(0))
                    .expect(sql)
            };
            (
                mode,
                int("PRAGMA synchronous").await,
                int("PRAGMA temp_store").await,
                int("PRAGMA foreign_keys").await,
                int("PRAGMA cache_size").await,
            )
        }
        // journal_mode, synchronous (2 = FULL), temp_store (2 = MEMORY),
        // foreign_keys, cache_size (negative: KiB).
        let want = ("wal".to_owned(), 2, 2, 1, -i64::from(WRITER_CACHE_KIB));
        let mut tx = store.begin().await.expect("begin");
        assert_eq!(
            pragmas(tx.conn().await.expect("conn")).await,
            want,
            "writer"
        );
        drop(tx);
        let mut reader = store.read_pool().acquire().await.expect("reader");
        let want = (want.0, want.1, want.2, want.3, -i64::from(READER_CACHE_KIB));
        assert_eq!(pragmas(&mut reader).await, want, "reader");
    }

    #[test]
    fn urls_select_the_backend() {
        assert_eq!(
            normalise("data/sluice.db"),
            (Backend::Sqlite, "sqlite://data/sluice.db?mode=rwc".into())
        );
        assert_eq!(normalise("sqlite::memory:").0, Backend::Sqlite);
        assert_eq!(normalise("postgres://u@h/db").0, Backend::Postgres);
    }

    #[test]
    fn lost_connections_and_pool_waits_are_transient() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        for e in [
            sqlx::Error::Io(io),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed,
        ] {
            assert!(StoreError::Query(e).is_transient());
        }
        for e in [
            StoreError::Query(sqlx::Error::RowNotFound),
            StoreError::Query(sqlx::Error::Protocol("bad message".into())),
            StoreError::Corrupt {
                column: "x",
                reason: "y".into(),
            },
        ] {
            assert!(!e.is_transient(), "{e:?}");
        }
    }

    #[test]
    fn passwords_never_reach_errors() {
        assert_eq!(
            redact("postgres://sluice:s3cret@db:5432/x"),
            "postgres://sluice:***@db:5432/x"
        );
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
        assert_eq!(
            redact("postgres://u@db/x?sslmode=require&password=s3cret&sslpassword=k3y"),
            "postgres://u@db/x?sslmode=require&password=***&sslpassword=***"
        );
        assert_eq!(
            redact("postgres://u:a@b@db/x?password=p"),
            "postgres://u:***@db/x?password=***"
        );
    }
}
