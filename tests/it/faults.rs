//! Transient store faults retry, they never fail: PostgreSQL sessions
//! killed under load (a failover), a SQLite disk that fills under load and
//! then has room again. Afterwards every acknowledged delivery is applied
//! exactly once and none is `failed` or `dead`. And the classification
//! behind it, on errors the real engines raise.

use std::path::{Path, PathBuf};

use host::app::App;
use host::config::Config;
use host::store::{DeliveryStatus, Store, StoreError};
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor, Row};

use crate::helpers::{
    CommentLoad, Running, all_deliveries, assert_comments_applied_once, bitbucket_fixture,
    component, post_bitbucket, until_inbox_empty,
};

/// The app on `database`, with quick retries, a short lease (a batch whose
/// outcome could not be recorded is taken back soon) and two attempts: a
/// store fault that counted as an attempt would dead-letter at once.
/// `inline: false` leaves every delivery to the worker's lanes.
async fn serve(database: &str, inline: bool) -> (String, Running) {
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{database}\"\ndelivery: {{max_attempts: 2, retry_base_ms: 20, retry_max_ms: 200, lease_ms: 500, inline: {inline}}}\nproviders:\n  bitbucket:\n    verify: {{secret: bb-secret-0123456789}}\n    mapper: \"{}\"\n    mapper_config: {}\n",
        component("bitbucket-mapper").display(),
        bitbucket_fixture("pr_created_other_branch.json")["config"]
    );
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    Running::start(App::build(&config).await.unwrap())
}

/// The PR whose ticket the comments land on, applied before the load.
async fn create_pr(base: &str) {
    let created = bitbucket_fixture("pr_created_other_branch.json");
    let body = created["delivery"]["body"].to_string().into_bytes();
    let resp = post_bitbucket(
        &reqwest::Client::new(),
        base,
        "pullrequest:created",
        body,
        "?wait=true",
    )
    .await
    .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_killed_under_load_lose_and_fail_nothing() {
    let db = crate::db::postgres().await;
    let name = db.postgres_name().unwrap().to_owned();
    let (base, running) = serve(&db.url, true).await;
    create_pr(&base).await;

    let load = CommentLoad::start(&base, 600);
    let mut admin = AnyConnection::connect(&crate::db::postgres_admin_url())
        .await
        .unwrap();
    // Every session of the host's database, the worker's among them, ends
    // as in a failover; ten times while the load runs.
    let kill = format!(
        "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    );
    let mut killed = 0;
    let mut rounds = 0;
    for round in 1..=10 {
        if !load
            .until("acknowledgements", |l| l.acks() >= round * 40)
            .await
        {
            break;
        }
        let rows = sqlx::query(AssertSqlSafe(kill.clone()))
            .fetch_all(&mut admin)
            .await
            .unwrap();
        killed += rows.iter().filter(|r| r.get::<bool, _>("killed")).count();
        rounds += 1;
    }
    admin.close().await.unwrap();
    let refused = load.refused();
    let acked = load.finish().await;
    eprintln!(
        "{} acknowledged, {refused} refused; {killed} sessions killed in {rounds} rounds",
        acked.len()
    );
    assert!(
        rounds >= 3 && killed > 0,
        "{rounds} rounds, {killed} killed"
    );

    // A fresh handle: the test's own pool lost its sessions too.
    let store = Store::open(&db.url).await.unwrap();
    until_inbox_empty(&store, 60).await;
    running.stop().await;
    assert_comments_applied_once(&store, &acked).await;
    store.close().await;
}

/// A tmpfs of `mib` MiB mounted on a temporary folder, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mib: u32) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(SmallDisk { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Appends to `ballast` until the disk is full, then gives `keep`
    /// bytes back; the ballast's size.
    fn fill(&self, keep: u64) -> u64 {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("ballast"))
            .unwrap();
        for size in [1 << 20, 64 << 10, 4 << 10, 512] {
            let chunk = vec![0u8; size];
            loop {
                match file.write(&chunk) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                    Err(e) => panic!("filling the disk: {e}"),
                }
            }
        }
        let size = file.metadata().unwrap().len().saturating_sub(keep);
        file.set_len(size).unwrap();
        size
    }

    fn free(&self) {
        std::fs::remove_file(self.path("ballast")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a pool's last connection may still hold the file open.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_under_load_loses_and_fails_nothing() {
    let disk = match SmallDisk::mount(64) {
        Ok(disk) => disk,
        Err(e) => {
            eprintln!(
                "SKIPPED sqlite_disk_full_under_load: cannot mount a tmpfs here ({e}); \
                 the classification of SQLITE_FULL is covered by store::fault's unit tests"
            );
            return;
        }
    };
    let path = disk.path("sluice.db");
    let path = path.to_str().unwrap();
    // The worker's claims, applies and finishes meeting the full disk are
    // what this tests: the inline path (whose commit is the inbox's own,
    // refused as a whole) would leave the lanes nothing to do.
    let (base, running) = serve(path, false).await;
    let store = Store::open(path).await.unwrap();
    create_pr(&base).await;

    // Most of the disk is taken before the load, so that filling the rest
    // takes a moment, not the whole load.
    disk.fill(8 << 20);
    let load = CommentLoad::start(&base, 2_000);
    assert!(load.until("acknowledgements", |l| l.acks() >= 100).await);
    let filled = disk.fill(0);
    let acks_when_full = load.acks();
    let waiting = all_deliveries(&store)
        .await
        .iter()
        .filter(|d| d.status != DeliveryStatus::Applied)
        .count();
    // The disk stays full until requests are refused for it (the inbox
    // cannot store them); the worker's claims, applies and finishes fail
    // meanwhile.
    let refused_before = load.refused();
    let full = load
        .until("refusals", |l| l.refused() >= refused_before + 40)
        .await;
    disk.fill(0);
    // Read by another connection: what was acknowledged is committed.
    let acks = load.acks();
    let stored = all_deliveries(&store).await;
    assert!(
        stored.len() > acks,
        "{acks} acknowledged, {} stored (the PR among them)",
        stored.len()
    );
    let failed: Vec<_> = stored
        .into_iter()
        .filter(|d| matches!(d.status, DeliveryStatus::Failed | DeliveryStatus::Dead))
        .map(|d| (d.status, d.last_error))
        .collect();
    assert!(
        failed.is_empty(),
        "failed while the disk was full: {failed:?}"
    );
    disk.free();

    let refused = load.refused();
    let acked = load.finish().await;
    eprintln!(
        "{} acknowledged ({acks_when_full} before the disk filled), {refused} refused; \
         {filled} bytes of ballast; {waiting} deliveries waiting when the disk filled",
        acked.len()
    );
    assert!(full, "the full disk refused too few requests: {refused}");
    assert!(
        waiting > 0,
        "the worker had caught up before the disk filled: nothing was tested"
    );

    until_inbox_empty(&store, 60).await;
    running.stop().await;
    assert_comments_applied_once(&store, &acked).await;
    store.close().await;
}

/// The error `sql` raises on `conn`, as the store reports it.
async fn raised(conn: &mut AnyConnection, sql: &str) -> StoreError {
    StoreError::Query(
        conn.execute(AssertSqlSafe(sql.to_owned()))
            .await
            .unwrap_err(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_errors_are_classified_by_sqlstate() {
    let db = crate::db::postgres().await;
    let mut conn = AnyConnection::connect(&db.url).await.unwrap();
    let cases = [
        ("57P01", true),
        ("57P02", true),
        ("57P03", true),
        ("08006", true),
        ("08000", true),
        ("53300", true),
        ("53100", true),
        ("53200", true),
        ("25006", true),
        ("40001", true),
        ("40P01", true),
        ("23505", false),
        ("42601", false),
        ("22001", false),
    ];
    for (code, transient) in cases {
        let e = raised(
            &mut conn,
            &format!("DO $$ BEGIN RAISE EXCEPTION 'fault' USING ERRCODE = '{code}'; END $$"),
        )
        .await;
        assert_eq!(e.is_transient(), transient, "{code}: {e:?}");
    }
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_busy_is_transient_and_a_constraint_is_not() {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let mut holder = AnyConnection::connect(&url).await.unwrap();
    let mut other = AnyConnection::connect(&url).await.unwrap();
    holder
        .execute("CREATE TABLE t (x INTEGER UNIQUE); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    other.execute("PRAGMA busy_timeout = 0").await.unwrap();
    let busy = raised(&mut other, "BEGIN IMMEDIATE").await;
    assert!(busy.is_transient(), "{busy:?}");
    holder.execute("ROLLBACK").await.unwrap();
    let unique = raised(&mut other, "INSERT INTO t VALUES (1)").await;
    assert!(!unique.is_transient(), "{unique:?}");
}
