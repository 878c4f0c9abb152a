//! Hot reload, end to end: a real server on a watched mappers folder, real
//! components built from the workspace copied, renamed, overwritten and
//! removed on disk, real signed deliveries, and the store checked for which
//! version mapped each one. Also the artifact cache across processes,
//! `host mappers`, and `host replay --shadow`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use host::app::App;
use host::config::Config;
use host::store::{NewDelivery, TicketFilter};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::db::{TestDb, conformance};
use crate::helpers::{component, copy_dir, fixtures};

const ADMIN: &str = "admin-token-0123456789abcdef";

/// A folder laid out as an operator deploys mappers into it.
struct Deploy {
    dir: tempfile::TempDir,
}

impl Deploy {
    /// `mappers/bitbucket.wasm` (the built-in mapper) with its fixtures in
    /// `mappers/bitbucket.fixtures/`, and an empty artifact cache.
    fn new() -> Self {
        let d = Deploy {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(d.mappers()).unwrap();
        let fx = copy_dir(&fixtures("bitbucket"));
        let target = d.mappers().join("bitbucket.fixtures");
        std::fs::create_dir(&target).unwrap();
        for e in std::fs::read_dir(fx.path()).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, target.join(p.file_name().unwrap())).unwrap();
        }
        d
    }

    fn mappers(&self) -> PathBuf {
        self.dir.path().join("mappers")
    }

    fn wasm(&self) -> PathBuf {
        self.mappers().join("bitbucket.wasm")
    }

    /// Replaces the mapper the way `mv` and most deploy tools do: write
    /// elsewhere, rename over.
    fn install(&self, bytes: &[u8]) {
        let tmp = self.dir.path().join("incoming.wasm");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, self.wasm()).unwrap();
    }

    /// Overwrites the mapper in place, as `cp` does.
    fn overwrite(&self, bytes: &[u8]) {
        std::fs::write(self.wasm(), bytes).unwrap();
    }

    fn yaml(&self, db: &str) -> String {
        format!(
            "listen: 127.0.0.1:0\ndatabase: \"{db}\"\napi:\n  tokens:\n    - {{name: ops, token: {ADMIN}, scope: admin}}\ndelivery: {{max_attempts: 20, retry_base_ms: 20, retry_max_ms: 100}}\nmappers:\n  dir: mappers\n  cache_dir: cache\n  cache_key_file: artifact.key\n  debounce_ms: 20\nproviders:\n  bitbucket:\n    verify: {{secret: bb-secret-0123456789}}\n    mapper_config: {}\n",
            directory()
        )
    }

    fn config(&self, db: &str) -> Config {
        let path = self.dir.path().join("sluice.yaml");
        std::fs::write(&path, self.yaml(db)).unwrap();
        Config::load(&path).unwrap()
    }
}

/// The user directory the Bitbucket fixtures are written against.
fn directory() -> String {
    let f: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures("bitbucket").join("pr_created_other_branch.json"))
            .unwrap(),
    )
    .unwrap();
    f["config"].to_string()
}

fn bitbucket() -> Vec<u8> {
    std::fs::read(component("bitbucket-mapper")).unwrap()
}

/// The same component with a custom section appended: another file, another
/// content hash, the same behaviour — a new release of the same rules.
pub(crate) fn release(bytes: &[u8], tag: &str) -> Vec<u8> {
    let name = b"sluice-test-release";
    let mut payload = leb(name.len());
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0); // custom section id
    out.extend(leb(payload.len()));
    out.extend(payload);
    out
}

fn leb(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct Server {
    base: String,
    http: reqwest::Client,
    running: crate::helpers::Running,
    mappers: host::reload::MapperRegistry,
    db: TestDb,
}

async fn spawn(deploy: &Deploy, db: TestDb) -> Server {
    let config = deploy.config(&db.url);
    let app = App::build(&config).await.unwrap();
    let mappers = app.mappers().clone();
    let (base, running) = crate::helpers::Running::start(app);
    Server {
        base,
        http: reqwest::Client::new(),
        running,
        mappers,
        db,
    }
}

/// A Bitbucket "PR created" delivery for PR `pr`: a new ticket each.
fn pr_created(pr: u64) -> Vec<u8> {
    let mut f: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures("bitbucket").join("pr_created_other_branch.json"))
            .unwrap(),
    )
    .unwrap();
    f["delivery"]["body"]["pullrequest"]["id"] = pr.into();
    f["delivery"]["body"].to_string().into_bytes()
}

impl Server {
    async fn send(&self, body: Vec<u8>, query: &str) -> reqwest::Response {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"bb-secret-0123456789").unwrap();
        mac.update(&body);
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        self.http
            .post(format!("{}/hooks/bitbucket{query}", self.base))
            .header("x-event-key", "pullrequest:created")
            .header("x-hub-signature", sig)
            .header("x-request-uuid", uuid::Uuid::new_v4().to_string())
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Sends and returns the stored delivery id (202 expected).
    async fn deliver(&self, body: Vec<u8>) -> String {
        let resp = self.send(body, "").await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let v: Value = resp.json().await.unwrap();
        v["delivery_id"].as_str().unwrap().to_owned()
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    async fn listing(&self) -> Value {
        let (status, body) = self.get("/v1/mappers").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["mappers"][0].clone()
    }

    /// Polls `GET /v1/mappers` until `ok` holds for bitbucket's entry.
    async fn until_listing(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = self.listing().await;
            if ok(&m) {
                return m;
            }
            assert!(Instant::now() < deadline, "never {what}: {m:#}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Polls until every delivery in `ids` has settled as `status`.
    async fn until_all(&self, ids: &[String], status: &str) -> Vec<host::store::DeliveryRow> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut rows = Vec::new();
        for id in ids {
            loop {
                let row = self.db.delivery(id).await.unwrap().unwrap();
                if row.status == status {
                    rows.push(row);
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "delivery {id} stuck at {} ({:?})",
                    row.status,
                    row.last_error
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        rows
    }

    async fn stop(self) -> TestDb {
        self.running.stop().await;
        self.db
    }
}

conformance!(a_mapper_replaced_under_a_stream_maps_each_delivery_once_with_one_whole_version);

async fn a_mapper_replaced_under_a_stream_maps_each_delivery_once_with_one_whole_version(
    db: TestDb,
) {
    let deploy = Deploy::new();
    let old = bitbucket();
    let new = release(&old, "v2");
    let (old_hash, new_hash) = (hash(&old), hash(&new));
    deploy.install(&old);
    let s = spawn(&deploy, db).await;
    assert_eq!(s.mappers.current_hash("bitbucket"), Some(old_hash.clone()));

    // The first deliveries are mapped by the old version before any change.
    let mut ids = Vec::new();
    for pr in 0..5 {
        ids.push(s.deliver(pr_created(1000 + pr)).await);
    }
    s.until_all(&ids, "applied").await;

    // Replace the file while deliveries keep arriving.
    deploy.install(&new);
    for pr in 5..30 {
        ids.push(s.deliver(pr_created(1000 + pr)).await);
    }
    s.until_listing("served the new version", |m| {
        m["version"]["hash"] == new_hash.as_str()
    })
    .await;
    // Everything sent from now on can only meet the new version.
    let after_swap = ids.len();
    for pr in 30..40 {
        ids.push(s.deliver(pr_created(1000 + pr)).await);
    }
    let rows = s.until_all(&ids, "applied").await;

    let mut per_version = [0, 0];
    for (i, row) in rows.iter().enumerate() {
        let h = row.mapper_hash.as_deref().unwrap();
        assert!(h == old_hash || h == new_hash, "unknown version {h}");
        per_version[usize::from(h == new_hash)] += 1;
        if i < 5 {
            assert_eq!(h, old_hash, "delivery {i} was mapped before the change");
        }
        if i >= after_swap {
            assert_eq!(h, new_hash, "delivery {i} was sent after the swap");
        }
        // Exactly once and wholly by one version: one create with its
        // link and sign-offs, every history row from the same version as
        // the delivery's record.
        let history = s.db.history_of_delivery(&row.id).await.unwrap();
        assert_eq!(
            history.iter().filter(|h| h.kind == "create").count(),
            1,
            "{history:?}"
        );
        assert!(
            history.iter().all(|x| x.mapper_hash.as_deref() == Some(h)),
            "delivery {} mixes versions: {history:?}",
            row.id
        );
    }
    assert!(
        per_version[0] >= 5 && per_version[1] >= 10,
        "{per_version:?}"
    );
    let tickets =
        s.db.find(&TicketFilter {
            limit: 100,
            ..TicketFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(tickets.items.len(), ids.len(), "one ticket per delivery");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_failing_its_checks_is_refused_and_the_old_version_keeps_serving() {
    let deploy = Deploy::new();
    let good = bitbucket();
    deploy.install(&good);
    let s = spawn(&deploy, crate::db::sqlite().await).await;

    // A component of another world: refused at the world check.
    let foreign = std::fs::read(component("other-world-guest")).unwrap();
    deploy.overwrite(&foreign);
    let m = s
        .until_listing("refused the foreign component", |m| {
            m["last_refused"]["hash"] == hash(&foreign).as_str()
        })
        .await;
    let reason = m["last_refused"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("bitbucket.wasm") && reason.contains("does not implement"),
        "{reason}"
    );
    assert_eq!(m["state"], "serving");
    assert_eq!(m["version"]["hash"], hash(&good).as_str());

    // A component of our world whose rules break the shipped fixtures:
    // refused by the canary, which names the failing fixtures.
    let github = std::fs::read(component("github-mapper")).unwrap();
    deploy.overwrite(&github);
    let m = s
        .until_listing("refused the GitHub rules", |m| {
            m["last_refused"]["hash"] == hash(&github).as_str()
        })
        .await;
    let reason = m["last_refused"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("canary failed") && reason.contains("pr_approved_completes.json"),
        "{reason}"
    );
    let canary = &m["last_refused"]["canary"];
    assert_eq!(canary["total"], 22, "{canary}");
    assert!(canary["failed"].as_u64().unwrap() > 0, "{canary}");
    assert_eq!(m["version"]["hash"], hash(&good).as_str());
    assert_eq!(m["version"]["canary"]["passed"], 22);

    let (_, metrics) = s.get("/metrics").await;
    assert!(
        metrics.lines().any(
            |l| l == r#"sluice_mapper_reloads_total{provider="bitbucket",outcome="refused"} 2"#
        ),
        "{metrics}"
    );

    // The old version keeps serving, and records itself.
    let resp = s.send(pr_created(7), "?wait=true").await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "applied", "{v}");
    let row =
        s.db.delivery(v["delivery_id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(row.mapper_hash.as_deref(), Some(hash(&good).as_str()));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_mapper_stops_its_route_with_503_and_loses_no_stored_delivery() {
    let deploy = Deploy::new();
    let good = bitbucket();
    deploy.install(&good);
    let s = spawn(&deploy, crate::db::sqlite().await).await;

    std::fs::remove_file(deploy.wasm()).unwrap();
    let m = s
        .until_listing("noticed the removal", |m| m["state"] == "absent")
        .await;
    assert!(m["absent_since"].is_string(), "{m}");
    assert!(m["version"].is_null(), "{m}");

    // The route refuses, names the file, and asks the sender to come back.
    let resp = s.send(pr_created(1), "").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "60");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "mapper_absent", "{v}");
    assert_eq!(v["error"]["file"], "bitbucket.wasm", "{v}");
    let (_, readyz) = s.get("/readyz").await;
    let readyz: Value = serde_json::from_str(&readyz).unwrap();
    assert_eq!(readyz["mappers"], serde_json::json!([]), "{readyz}");

    // A delivery stored just before the removal stays pending...
    let stored =
        s.db.insert_delivery(&NewDelivery {
            encoded: None,
            id: "stored-before-removal",
            provider: "bitbucket",
            dedupe_key: "stored-before-removal",
            body_key: None,
            method: "POST",
            path: "/hooks/bitbucket",
            headers: &[("x-event-key".into(), "pullrequest:created".into())],
            body: &pr_created(2),
            received_at: &host::store::now(),
        })
        .await
        .unwrap();
    // ...even when someone asks for it to be processed now.
    let (status, body) = {
        let resp = s
            .http
            .post(format!("{}/v1/deliveries/{}/replay", s.base, stored.id))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    };
    assert_eq!(status, StatusCode::OK, "{body}");
    let row = s.db.delivery(&stored.id).await.unwrap().unwrap();
    assert_eq!(row.status, "pending", "{row:?}");
    assert!(
        row.last_error.as_deref().unwrap().contains("waits"),
        "{row:?}"
    );
    // Waiting for a mapper is no attempt: nothing counts towards the dead
    // letter while the provider has no version serving.
    assert_eq!(row.attempts, 0, "{row:?}");

    // The mapper comes back: the waiting delivery is mapped, and the
    // sender's redelivery is accepted.
    deploy.install(&good);
    s.until_listing("served again", |m| m["state"] == "serving")
        .await;
    let redelivered = s.deliver(pr_created(1)).await;
    let rows = s
        .until_all(&[stored.id.clone(), redelivered], "applied")
        .await;
    assert_eq!(rows[0].attempts, 1, "{:?}", rows[0]);
    assert!(
        rows.iter()
            .all(|r| r.mapper_hash.as_deref() == Some(hash(&good).as_str()))
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_refuses_a_bad_file_like_a_reload_and_deliveries_wait_for_a_good_one() {
    let deploy = Deploy::new();
    let foreign = std::fs::read(component("other-world-guest")).unwrap();
    deploy.install(&foreign);
    let s = spawn(&deploy, crate::db::sqlite().await).await;
    let m = s.listing().await;
    assert_eq!(m["state"], "waiting", "{m}");
    assert!(
        m["last_refused"]["reason"]
            .as_str()
            .unwrap()
            .contains("does not implement"),
        "{m}"
    );
    // The file is there, so the route stores deliveries; they wait.
    let id = s.deliver(pr_created(3)).await;
    assert_eq!(s.db.delivery(&id).await.unwrap().unwrap().status, "pending");

    let good = bitbucket();
    deploy.overwrite(&good);
    s.until_all(&[id], "applied").await;
    assert_eq!(s.mappers.current_hash("bitbucket"), Some(hash(&good)));
    s.stop().await;
}

/// `host mappers` for the config in `deploy`, parsed.
fn host_mappers(deploy: &Deploy) -> Value {
    let path = deploy.dir.path().join("sluice.yaml");
    std::fs::write(
        &path,
        deploy.yaml(deploy.dir.path().join("sluice.db").to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["mappers", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["mappers"][0].clone()
}

#[test]
fn a_restart_takes_the_compiled_artifact_from_the_cache() {
    let deploy = Deploy::new();
    let good = bitbucket();
    deploy.install(&good);

    let first = host_mappers(&deploy);
    assert_eq!(first["state"], "serving", "{first}");
    assert_eq!(first["version"]["hash"], hash(&good).as_str());
    assert_eq!(first["version"]["origin"], "compiled", "{first}");
    assert_eq!(first["version"]["canary"]["passed"], 22, "{first}");
    let cached: Vec<PathBuf> = std::fs::read_dir(deploy.dir.path().join("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let name = cached[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(&hash(&good)) && name.ends_with(".cwasm"),
        "{name}"
    );

    // Another process, the same content: no compile.
    let second = host_mappers(&deploy);
    assert_eq!(second["version"]["origin"], "cache", "{second}");
    assert_eq!(second["version"]["hash"], hash(&good).as_str());

    // A damaged artifact is not trusted: it is compiled again.
    let mut bytes = std::fs::read(&cached[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&cached[0], bytes).unwrap();
    let third = host_mappers(&deploy);
    assert_eq!(third["version"]["origin"], "compiled", "{third}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_replay_reports_what_a_candidate_would_change_and_applies_nothing() {
    let deploy = Deploy::new();
    deploy.install(&bitbucket());
    // `spawn` writes sluice.yaml naming this database: the CLI reads both.
    let s = spawn(&deploy, crate::db::sqlite().await).await;
    let mut ids = Vec::new();
    for pr in 0..3 {
        ids.push(s.deliver(pr_created(500 + pr)).await);
    }
    s.until_all(&ids, "applied").await;
    let history_before: usize = count_history(&s, &ids).await;
    let db = s.stop().await;

    let run_with = |candidate: &Path, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_host"))
            .args([
                "replay",
                "--format",
                "json",
                "--provider",
                "bitbucket",
                "--config",
            ])
            .arg(deploy.dir.path().join("sluice.yaml"))
            .arg("--shadow")
            .arg(candidate)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let rows: Vec<Value> = text
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (rows, text)
    };
    let run = |candidate: &Path| run_with(candidate, &[]);

    // A new release of the same rules changes nothing.
    let same = deploy.dir.path().join("same.wasm");
    std::fs::write(&same, release(&bitbucket(), "candidate")).unwrap();
    let (rows, text) = run(&same);
    assert_eq!(rows.len(), 3, "{text}");
    assert!(rows.iter().all(|r| r["verdict"] == "same"), "{text}");
    assert!(text.contains("3 deliveries: 3 same, 0 differ"), "{text}");
    assert_eq!(rows[0]["live_mapper"], hash(&bitbucket()).as_str());

    // --since and --limit pick the deliveries.
    let since = rows[0]["received_at"].as_str().unwrap().to_owned();
    let (later, text) = run_with(&same, &["--since", &since]);
    assert_eq!(later.len(), 2, "{text}");
    assert_eq!(later[0]["delivery_id"], rows[1]["delivery_id"], "{text}");
    let (newest, text) = run_with(&same, &["--limit", "1"]);
    assert_eq!(newest.len(), 1, "{text}");
    assert_eq!(newest[0]["delivery_id"], rows[2]["delivery_id"], "{text}");

    // Other rules: each delivery's differences, field by field.
    let (rows, text) = run(&component("hostile-guest"));
    assert!(rows.iter().all(|r| r["verdict"] == "differs"), "{text}");
    let diffs: Vec<&str> = rows[0]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        diffs.contains(&r#"event_type: live "pr_created", candidate "ok""#),
        "{diffs:?}"
    );

    // Nothing was applied or rewritten by either run.
    assert_eq!(count_history_db(&db, &ids).await, history_before);
    for id in &ids {
        let row = db.delivery(id).await.unwrap().unwrap();
        assert_eq!(row.status, "applied");
        assert_eq!(
            row.mapper_hash.as_deref(),
            Some(hash(&bitbucket()).as_str())
        );
    }
}

async fn count_history(s: &Server, ids: &[String]) -> usize {
    count_history_db(&s.db, ids).await
}

async fn count_history_db(db: &TestDb, ids: &[String]) -> usize {
    let mut n = 0;
    for id in ids {
        n += db.history_of_delivery(id).await.unwrap().len();
    }
    n
}

#[test]
fn a_call_in_flight_across_a_swap_finishes_wholly_on_its_version() {
    let deploy = Deploy::new();
    let old = bitbucket();
    let new = release(&old, "v2");
    deploy.install(&old);
    let config = deploy.config("unused.db");
    let reloader = host::reload::Reloader::new(&config, Default::default()).unwrap();
    reloader.load_all();
    // The worker's view of a delivery it has started on.
    let in_flight = reloader.registry().get("bitbucket").unwrap();

    deploy.install(&new);
    assert_eq!(
        reloader.reload("bitbucket"),
        host::reload::ReloadOutcome::Swapped { hash: hash(&new) }
    );
    assert_eq!(
        reloader.reload("bitbucket"),
        host::reload::ReloadOutcome::Unchanged
    );
    let now_serving = reloader.registry().get("bitbucket").unwrap();
    assert_eq!(now_serving.mapper.content_hash(), hash(&new));

    // The old clone still maps, as the old version, after the swap.
    assert_eq!(in_flight.mapper.content_hash(), hash(&old));
    let delivery = host::mapper::Delivery {
        provider: "bitbucket".into(),
        method: "POST".into(),
        path: "/hooks/bitbucket".into(),
        headers: vec![("x-event-key".into(), "pullrequest:created".into())],
        body: pr_created(9),
        received_at: "2026-11-22T00:00:00Z".into(),
    };
    let out = in_flight.mapper.map_inbound(
        &delivery,
        &in_flight.config,
        Box::new(host::mapper::NoProviderApi),
    );
    let mapped = out.result.unwrap().unwrap();
    assert_eq!(mapped.event_type, "pr_created");
}

#[test]
fn check_refuses_a_config_whose_mapper_fails_its_canary() {
    let deploy = Deploy::new();
    deploy.install(&std::fs::read(component("github-mapper")).unwrap());
    let path = deploy.dir.path().join("sluice.yaml");
    std::fs::write(&path, deploy.yaml("sluice.db")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("provider `bitbucket`: mapper")
            && err.contains("bitbucket.wasm refused")
            && err.contains("canary failed")
            && err.contains("pr_merged.json"),
        "{err}"
    );
}
