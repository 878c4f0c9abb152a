//! Databases for tests: a SQLite file in a temporary folder, or a fresh
//! PostgreSQL database on the server `.ci/run` makes sure is running
//! (`SLUICE_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`).

use std::ops::Deref;

use host::store::Store;
use sqlx::{AssertSqlSafe, Connection, Executor, Row};

pub struct TestDb {
    pub store: Store,
    /// What a config's `database` would say to reach this database.
    pub url: String,
    _sqlite_dir: Option<tempfile::TempDir>,
    postgres_db: Option<String>,
}

impl Deref for TestDb {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("SLUICE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn with_database(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("database URL has a path");
    format!("{base}/{db}")
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db");
    let url = path.to_str().unwrap().to_owned();
    let store = Store::open(&url).await.unwrap();
    TestDb {
        store,
        url,
        _sqlite_dir: Some(dir),
        postgres_db: None,
    }
}

pub async fn postgres() -> TestDb {
    sqlx::any::install_default_drivers();
    let name = format!("sluice_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::AnyConnection::connect(&postgres_admin_url())
        .await
        .expect("PostgreSQL reachable (./.ci/run starts it; set SLUICE_TEST_POSTGRES to point elsewhere)");
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    admin.close().await.unwrap();
    let url = with_database(&postgres_admin_url(), &name);
    let store = Store::open(&url).await.unwrap();
    TestDb {
        store,
        url,
        _sqlite_dir: None,
        postgres_db: Some(name),
    }
}

impl TestDb {
    /// The PostgreSQL database's name; `None` on SQLite.
    pub fn postgres_name(&self) -> Option<&str> {
        self.postgres_db.as_deref()
    }

    /// A connection of its own to this database, beside the store's pools.
    async fn connect(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        let url = if self.postgres_db.is_some() {
            self.url.clone()
        } else {
            format!("sqlite://{}", self.url)
        };
        sqlx::AnyConnection::connect(&url).await.unwrap()
    }

    /// Runs `sql` on its own connection: for setting up rows as an older
    /// version of the host would have left them.
    pub async fn execute(&self, sql: &str) {
        let mut conn = self.connect().await;
        conn.execute(AssertSqlSafe(sql.to_owned())).await.unwrap();
        conn.close().await.unwrap();
    }

    /// A delivery's body as stored, with its `body_encoding`: what the
    /// store wrote, beneath what it reads back.
    pub async fn stored_body(&self, id: &str) -> (Vec<u8>, Option<String>) {
        let mut conn = self.connect().await;
        let row = sqlx::query("SELECT body, body_encoding FROM deliveries WHERE id = $1")
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let stored = (row.get("body"), row.get("body_encoding"));
        conn.close().await.unwrap();
        stored
    }

    /// PostgreSQL: every other session on this database, one line each
    /// (state, what it waits on, how long its transaction has run, its
    /// statement): what a stalled drain needs to see. Empty on SQLite.
    pub async fn sessions(&self) -> Vec<String> {
        let Some(name) = &self.postgres_db else {
            return Vec::new();
        };
        let mut conn = self.connect().await;
        let rows = sqlx::query(
            "SELECT pid::TEXT AS pid, COALESCE(state, '') AS state, \
             COALESCE(wait_event_type || ':' || wait_event, '') AS waits, \
             COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - xact_start)::TEXT, '') AS xact_s, \
             LEFT(COALESCE(query, ''), 160) AS query \
             FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        rows.iter()
            .map(|r| {
                let get = |c: &str| r.get::<String, _>(c);
                format!(
                    "pid {} {} waits={} xact={}s: {}",
                    get("pid"),
                    get("state"),
                    get("waits"),
                    get("xact_s"),
                    get("query")
                )
            })
            .collect()
    }

    /// Marks a delivery as stored before ingress redacted secrets.
    pub async fn mark_unredacted(&self, id: &str) {
        self.execute(&format!(
            "UPDATE deliveries SET redacted = 0 WHERE id = '{id}'"
        ))
        .await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.postgres_db.take() else {
            return;
        };
        // Drop needs its own runtime: the test's may be shutting down, or be
        // a current-thread runtime blocked right here. The store's pool
        // belongs to the test's runtime and is not touched: `FORCE` ends
        // its sessions.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut admin) = sqlx::AnyConnection::connect(&postgres_admin_url()).await {
                    let _ = admin
                        .execute(AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Runs each named test body against SQLite and PostgreSQL.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::db::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::db::postgres().await).await
                }
            )*
        }
    };
}
pub(crate) use conformance;
