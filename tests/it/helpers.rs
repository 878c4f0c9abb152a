//! Locating (and, when missing, building) components and the workspace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use host::store::{DeliveryFilter, DeliveryRow, DeliveryStatus, Store, TicketFilter};
use serde_json::Value;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                workspace().join(p)
            }
        })
        .unwrap_or_else(|| workspace().join("target"))
}

/// The component named `package` (a workspace package such as
/// `bitbucket-mapper`, or `uptime-mapper`, the Python example). The test
/// script builds every component first; when one is missing the same
/// script runs here, so `cargo test` alone works too.
pub fn component(package: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let file = target_dir()
        .join("wasm32-wasip2/component")
        .join(format!("{}.wasm", package.replace('-', "_")));
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if !file.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace())
            .args([
                "build",
                "--profile",
                "component",
                "--target",
                "wasm32-wasip2",
                "-p",
                package,
            ])
            .status()
            .expect("run cargo");
        assert!(status.success(), "building component {package} failed");
    }
    file
}

/// The fixtures folder of a built-in mapper.
pub fn fixtures(mapper: &str) -> PathBuf {
    workspace().join("mappers").join(mapper).join("fixtures")
}

/// Copies a folder (one level deep) into a fresh temporary folder.
pub fn copy_dir(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(from).expect("read fixtures") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
        }
    }
    dir
}

/// A running `host serve` process and the address it logged.
pub struct HostProcess {
    pub child: std::process::Child,
    pub addr: String,
    /// The rest of its stderr, line by line.
    pub log: std::sync::mpsc::Receiver<String>,
}

/// A test that fails mid-way must not leave its host serving (and polling
/// its database) for the rest of the suite: the host is killed with the
/// handle, unless the test already stopped it.
impl Drop for HostProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `host serve --config CONFIG` with `env` and waits (up to 30 s)
/// for the address it logs.
pub fn start_host(config: &Path, env: &[(&str, &str)]) -> HostProcess {
    use std::io::{BufRead, BufReader};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
    cmd.args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn host serve");
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("host serve logged its address");
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
    };
    HostProcess {
        child,
        addr,
        log: rx,
    }
}

/// An `App` serving in this process on its ephemeral loopback port, until
/// [`Running::stop`].
pub struct Running {
    shutdown: tokio_util::sync::CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Serves `app`; returns its base URL and the handle that stops it.
    pub fn start(app: host::app::App) -> (String, Running) {
        let base = format!("http://{}", app.local_addr().expect("bound address"));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let token = shutdown.clone();
        let server = tokio::spawn(async move { app.run(token).await.expect("app runs") });
        (base, Running { shutdown, server })
    }

    /// Stops intake, drains in-flight work and waits for the app to end.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.expect("app task");
    }
}

/// A fixture of the built-in Bitbucket mapper.
pub fn bitbucket_fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures("bitbucket").join(name)).unwrap())
        .unwrap()
}

/// POSTs a Bitbucket delivery to `base` (`http://host:port`), signed, with
/// a fresh request id; `query` is empty or starts with `?`.
pub async fn post_bitbucket(
    http: &reqwest::Client,
    base: &str,
    event: &str,
    body: Vec<u8>,
    query: &str,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{base}/hooks/bitbucket{query}"))
        .header("x-event-key", event)
        .header("x-hub-signature", bitbucket_signature(&body))
        .header("x-request-uuid", uuid::Uuid::new_v4().to_string())
        .body(body)
        .timeout(Duration::from_secs(20))
        .send()
        .await
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`: the
/// signature header GitHub and Bitbucket send.
pub fn sha256_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The `x-hub-signature` of a Bitbucket delivery signed with the suite's
/// secret (`bb-secret-0123456789`).
pub fn bitbucket_signature(body: &[u8]) -> String {
    sha256_signature("bb-secret-0123456789", body)
}

/// Every stored delivery, page by page.
pub async fn all_deliveries(store: &Store) -> Vec<DeliveryRow> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .find_deliveries(&DeliveryFilter {
                limit: 500,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        all.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    all
}

/// Waits (up to 30 s) for delivery `id` to end; returns it.
pub async fn until_done(store: &Store, id: &str) -> DeliveryRow {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = store
            .delivery(id)
            .await
            .unwrap()
            .expect("the tick is stored");
        if matches!(
            d.status,
            DeliveryStatus::Applied | DeliveryStatus::Ignored | DeliveryStatus::Failed
        ) {
            return d;
        }
        assert!(Instant::now() < deadline, "tick {id} still {:?}", d.status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until no delivery waits (pending, retrying or processing), within
/// `secs`.
pub async fn until_inbox_empty(store: &Store, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let depth = store.inbox_depth().await.unwrap();
        if depth == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{depth} deliveries still waiting after {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stores an empty GitHub delivery `id` under `dedupe_key`, pending; it
/// must be new.
pub async fn store_github_delivery(store: &Store, id: &str, dedupe_key: &str) {
    let stored = store
        .insert_delivery(&host::store::NewDelivery {
            encoded: None,
            id,
            provider: "github",
            dedupe_key,
            body_key: None,
            method: "POST",
            path: "/hooks/github",
            headers: &[],
            body: b"{}",
            received_at: &host::store::now(),
        })
        .await
        .unwrap();
    assert!(!stored.duplicate, "{id} was stored before");
}

/// [`until_inbox_empty`] for a host process: when deliveries are still
/// waiting after `secs`, the panic says which (status, attempts, last
/// error and mapper version, grouped), whether the host still runs, what
/// the database's sessions are doing, and ends with its last log lines, so a failure in CI explains itself without a rerun.
pub async fn until_host_drains(db: &crate::db::TestDb, secs: u64, host: &mut HostProcess) {
    let store = &db.store;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut log = std::collections::VecDeque::new();
    loop {
        while let Ok(line) = host.log.try_recv() {
            if log.len() == 60 {
                log.pop_front();
            }
            log.push_back(line);
        }
        let depth = store.inbox_depth().await.unwrap();
        if depth == 0 {
            return;
        }
        if Instant::now() >= deadline {
            let mut groups = std::collections::BTreeMap::<String, usize>::new();
            for d in all_deliveries(store).await {
                // What `inbox_depth` counts.
                if !DeliveryStatus::CLAIMABLE.contains(&d.status) {
                    continue;
                }
                let key = format!(
                    "{:?} attempts={} mapper={:?} error={:?}",
                    d.status, d.attempts, d.mapper_hash, d.last_error
                );
                *groups.entry(key).or_default() += 1;
            }
            let groups: Vec<String> = groups.iter().map(|(k, n)| format!("{n} × {k}")).collect();
            let log: Vec<String> = log.into_iter().collect();
            let alive = match host.child.try_wait() {
                Ok(None) => "still running".to_owned(),
                Ok(Some(status)) => format!("exited ({status})"),
                Err(e) => format!("unknown ({e})"),
            };
            panic!(
                "{depth} deliveries still waiting after {secs} s; the host is {alive}:\n{}\nthe database's sessions:\n{}\nthe host's last log lines:\n{}",
                groups.join("\n"),
                db.sessions().await.join("\n"),
                log.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// After a load of comments (external ids `comment:N`) on the one PR
/// ticket: every stored delivery is applied (none failed, dead or
/// waiting), every acknowledged comment is there exactly once, no comment
/// twice, and each has one history row.
pub async fn assert_comments_applied_once(store: &Store, acked: &BTreeSet<String>) {
    let all = all_deliveries(store).await;
    assert!(
        all.iter().all(|d| d.status == DeliveryStatus::Applied),
        "{:?}",
        all.iter()
            .filter(|d| d.status != DeliveryStatus::Applied)
            .map(|d| (&d.status, &d.last_error))
            .collect::<Vec<_>>()
    );
    let tickets = store
        .find(&TicketFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .items;
    assert_eq!(tickets.len(), 1);
    let comments = store.comments(&tickets[0].guid).await.unwrap();
    let mut seen: BTreeMap<String, usize> = Default::default();
    for c in &comments {
        *seen
            .entry(c.external_id.clone().unwrap_or_default())
            .or_default() += 1;
    }
    assert!(
        seen.values().all(|n| *n == 1),
        "duplicated: {:?}",
        seen.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    let missing: Vec<_> = acked.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    // Stored = the PR + every comment delivery that reached the inbox
    // (acknowledged, or committed while its answer was lost).
    assert_eq!(comments.len() + 1, all.len());
    let history = store.history(&tickets[0].guid, None, 10_000).await.unwrap();
    assert_eq!(
        history.iter().filter(|h| h.kind == "comment").count(),
        comments.len()
    );
}

/// Deliveries a [`CommentLoad`] has in flight at once.
const LANES: usize = 8;

/// `total` signed comments (external ids `comment:N`) on the PR of
/// `pr_created_other_branch.json`, over real HTTP, `LANES` at a time.
/// A refused one (a 5xx, or no answer) is not acknowledged and not sent
/// again.
pub struct CommentLoad {
    acked: Arc<Mutex<BTreeSet<String>>>,
    acks: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    lanes: Vec<tokio::task::JoinHandle<()>>,
}

impl CommentLoad {
    pub fn start(base: &str, total: usize) -> CommentLoad {
        CommentLoad::start_at(base, 10_000, total)
    }

    /// As [`CommentLoad::start`], with comment ids `first..first + total`:
    /// successive loads on one database use disjoint ranges.
    pub fn start_at(base: &str, first: usize, total: usize) -> CommentLoad {
        let comment = bitbucket_fixture("pr_comment.json");
        let http = reqwest::Client::new();
        let (acked, acks, refused) = Default::default();
        let mut load = CommentLoad {
            acked,
            acks,
            refused,
            lanes: Vec::new(),
        };
        for lane in 0..LANES {
            let (acked, acks, refused) =
                (load.acked.clone(), load.acks.clone(), load.refused.clone());
            let (http, base) = (http.clone(), base.to_owned());
            let mut body = comment["delivery"]["body"].clone();
            load.lanes.push(tokio::spawn(async move {
                for i in (lane..total).step_by(LANES) {
                    body["comment"]["id"] = Value::from(first + i);
                    body["comment"]["content"]["raw"] = Value::from(format!("load comment {i}"));
                    let body = body.to_string().into_bytes();
                    match post_bitbucket(&http, &base, "pullrequest:comment_created", body, "")
                        .await
                    {
                        Ok(r) if r.status().is_success() => {
                            acked
                                .lock()
                                .unwrap()
                                .insert(format!("comment:{}", first + i));
                            acks.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => {
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }));
        }
        load
    }

    pub fn acks(&self) -> usize {
        self.acks.load(Ordering::SeqCst)
    }

    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// Polls until `pred` holds, within 60 s; false if the load ended first.
    pub async fn until(&self, what: &str, pred: impl Fn(&CommentLoad) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if pred(self) {
                return true;
            }
            if self.lanes.iter().all(|l| l.is_finished()) {
                return pred(self);
            }
            assert!(Instant::now() < deadline, "load: no {what} within 60 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for every lane; the acknowledged comments' external ids.
    pub async fn finish(self) -> BTreeSet<String> {
        for lane in self.lanes {
            lane.await.unwrap();
        }
        self.acked.lock().unwrap().clone()
    }
}
