//! kill -9 under load, then restart: every acknowledged delivery is applied
//! exactly once, nothing acknowledged is lost, nothing is half-applied.

use host::store::Store;

use crate::helpers::{
    CommentLoad, assert_comments_applied_once, bitbucket_fixture, component, post_bitbucket,
    start_host, until_inbox_empty,
};

const DELIVERIES: usize = 1_000;
const KILL_AFTER: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sluice.db");
    let created = bitbucket_fixture("pr_created_other_branch.json");
    let config = dir.path().join("sluice.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\ndatabase: \"{}\"\ndelivery: {{retry_base_ms: 20, retry_max_ms: 200, lease_ms: 300}}\nproviders:\n  bitbucket:\n    verify: {{secret: bb-secret-0123456789}}\n    mapper: \"{}\"\n    mapper_config: {}\n",
            db.display(),
            component("bitbucket-mapper").display(),
            created["config"]
        ),
    )
    .unwrap();

    let mut host = start_host(&config, &[]);
    // The PR's ticket exists before the comments arrive.
    let first = post_bitbucket(
        &reqwest::Client::new(),
        &format!("http://{}", host.addr),
        "pullrequest:created",
        created["delivery"]["body"].to_string().into_bytes(),
        "?wait=true",
    )
    .await
    .unwrap();
    assert!(first.status().is_success());

    // A bounded load of comments, 8 in flight; the host dies part way.
    let load = CommentLoad::start(&format!("http://{}", host.addr), DELIVERIES);
    assert!(
        load.until("acknowledgements", |l| l.acks() >= KILL_AFTER)
            .await
    );
    host.child.kill().unwrap(); // SIGKILL
    host.child.wait().unwrap();
    let acked = load.finish().await;
    eprintln!(
        "{} of {DELIVERIES} acknowledged before the kill",
        acked.len()
    );
    assert!(
        acked.len() >= KILL_AFTER && acked.len() < DELIVERIES,
        "{} acknowledged",
        acked.len()
    );

    // Restart on the same database and let the worker finish.
    let mut host = start_host(&config, &[]);
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    until_inbox_empty(&store, 60).await;
    host.child.kill().unwrap();
    host.child.wait().unwrap();
    assert_comments_applied_once(&store, &acked).await;
    drop(host);
}

mod outbound {
    //! kill -9 while the outbound worker sends, then restart: every change
    //! reaches the provider, and only what was in flight at the kill (at
    //! most one claimed batch) is sent twice — each time with the same
    //! idempotency key, so a provider that honours it applies it once.

    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use axum::Router;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use hmac::{Hmac, Mac};
    use serde_json::{Value, json};
    use sha2::Sha256;

    use crate::db::{TestDb, conformance};
    use crate::helpers::{component, start_host};

    const CHANGES: usize = 300;
    const SECRET: &str = "relay-secret-0123456789";
    /// Rows one claim takes: the most that can be in flight at a kill.
    const BATCH: usize = 64;

    /// Idempotency keys received, in order.
    type Keys = Arc<Mutex<Vec<String>>>;

    async fn record(State(keys): State<Keys>, headers: HeaderMap) -> axum::Json<Value> {
        // A provider that takes a little time, so the kill lands mid-send.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let mut keys = keys.lock().unwrap();
        keys.push(key);
        axum::Json(json!({"id": format!("R-{}", keys.len())}))
    }

    conformance!(kill_9_mid_send_loses_nothing_and_resends_only_what_was_in_flight);

    async fn kill_9_mid_send_loses_nothing_and_resends_only_what_was_in_flight(db: TestDb) {
        let keys: Keys = Arc::default();
        let app = Router::new()
            .fallback(axum::routing::post(record))
            .with_state(keys.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("sluice.yaml");
        let relay = component("relay-guest");
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:0\ndatabase: \"{}\"\ndelivery: {{retry_base_ms: 20, retry_max_ms: 200, lease_ms: 300}}\nproviders:\n  left:\n    verify: {{preset: github, secret: {SECRET}}}\n    mapper: \"{relay}\"\n  right:\n    verify: {{preset: github, secret: {SECRET}}}\n    mapper: \"{relay}\"\n    api: {{base_url: \"{api}\"}}\n    outbound: {{retry_base_ms: 20, retry_max_ms: 200}}\n",
                db.url,
                relay = relay.display(),
            ),
        )
        .unwrap();

        let host = start_host(&config, &[]);
        let http = reqwest::Client::new();
        // Every change acknowledged and applied before the kill: what is
        // at stake is the outbox. A 503 (a store fault under load: the
        // request is not stored, or stored and not yet applied) is sent
        // again under the same delivery id, as a provider redelivers;
        // then the inbox is drained before the kill.
        for i in 0..CHANGES {
            let body = json!({"event": "create", "subject": format!("change {i}"), "record": format!("L-{i}")})
                .to_string();
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(body.as_bytes());
            let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            let delivery = uuid::Uuid::new_v4().to_string();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let resp = http
                    .post(format!("http://{}/hooks/left?wait=true", host.addr))
                    .header("x-hub-signature-256", &signature)
                    .header("x-github-delivery", &delivery)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                let out: Value = resp.json().await.unwrap();
                if status != reqwest::StatusCode::SERVICE_UNAVAILABLE {
                    // Applied now, or (a resend) the stored delivery's
                    // state: the drain below waits for it.
                    assert!(status.is_success(), "{status}: {out}");
                    break;
                }
                assert!(Instant::now() < deadline, "still refused: {out}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        crate::helpers::until_inbox_empty(&db, 30).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while keys.lock().unwrap().len() < CHANGES / 3 {
            assert!(
                Instant::now() < deadline,
                "the outbound worker sends nothing"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut host = host;
        host.child.kill().unwrap(); // SIGKILL
        host.child.wait().unwrap();
        let sent_before = keys.lock().unwrap().len();

        let mut host = start_host(&config, &[]);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let open = db.outbox_depth().await.unwrap();
            if open == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{open} outbox rows still open");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        host.child.kill().unwrap();
        host.child.wait().unwrap();

        let keys = keys.lock().unwrap().clone();
        let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
        for k in &keys {
            *per_key.entry(k.as_str()).or_default() += 1;
        }
        let duplicates = keys.len() - per_key.len();
        eprintln!(
            "{sent_before} requests before the kill, {} in all, {} changes, {duplicates} sent twice",
            keys.len(),
            per_key.len()
        );
        // Nothing lost: every change reached the provider, each under its
        // own key.
        assert_eq!(per_key.len(), CHANGES);
        assert!(per_key.keys().all(|k| k.starts_with("sluice-")));
        // Only what was in flight is sent again.
        assert!(duplicates <= BATCH, "{duplicates} sent twice");
        assert!(per_key.values().all(|n| *n <= 2));
        // Every row ended sent.
        let rows = db
            .find_outbox(&host::store::OutboxFilter {
                provider: Some("right".into()),
                limit: 500,
                ..Default::default()
            })
            .await
            .unwrap()
            .items;
        assert_eq!(rows.len(), CHANGES);
        assert!(
            rows.iter()
                .all(|r| r.status == host::store::OutboxStatus::Sent)
        );
        drop(host);
    }
}

/// Comments each cycle of the chaos series offers; the kill comes first.
const CHAOS_PER_CYCLE: usize = 400;

/// The chaos series on SQLite: `SLUICE_CHAOS_KILLS` kills (default 3; the
/// `scripts/chaos` series runs 20).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kill_9_series_on_sqlite() {
    let kills = kills_from_env("SLUICE_CHAOS_KILLS", 3);
    chaos(crate::db::sqlite().await, kills).await;
}

/// The chaos series on PostgreSQL: `SLUICE_CHAOS_PG_KILLS` kills (default
/// 2; the `scripts/chaos` series runs 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kill_9_series_on_postgres() {
    let kills = kills_from_env("SLUICE_CHAOS_PG_KILLS", 2);
    chaos(crate::db::postgres().await, kills).await;
}

fn kills_from_env(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{var}={v:?} is not a count of kills")),
        Err(_) => default,
    }
}

/// A random number below `n`: each kill lands somewhere else.
fn below(n: u64) -> u64 {
    (uuid::Uuid::new_v4().as_u128() % u128::from(n)) as u64
}

/// kill -9 `kills` times under mixed load — signed comments from 8
/// concurrent senders, the worker applying them, and the mapper file in
/// the watched folder rewritten just before each kill so a hot reload
/// (debounce, canary, swap) is in flight — restarting on the same
/// database each time; then one last start drains the inbox. Every
/// acknowledged comment is applied exactly once, with one history row,
/// and no delivery is left waiting, failed or half-applied.
async fn chaos(db: crate::db::TestDb, kills: usize) {
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let created = bitbucket_fixture("pr_created_other_branch.json");
    let mappers = dir.path().join("mappers");
    std::fs::create_dir_all(mappers.join("bitbucket.fixtures")).unwrap();
    let fixtures = crate::helpers::fixtures("bitbucket");
    for e in std::fs::read_dir(&fixtures).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(
            &p,
            mappers
                .join("bitbucket.fixtures")
                .join(p.file_name().unwrap()),
        )
        .unwrap();
    }
    let original = std::fs::read(component("bitbucket-mapper")).unwrap();
    let wasm = mappers.join("bitbucket.wasm");
    std::fs::write(&wasm, &original).unwrap();
    let config = dir.path().join("sluice.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\ndatabase: \"{}\"\ndelivery: {{retry_base_ms: 20, retry_max_ms: 200, lease_ms: 300}}\nmappers:\n  dir: mappers\n  cache_dir: cache\n  cache_key_file: artifact.key\n  debounce_ms: 10\nproviders:\n  bitbucket:\n    verify: {{secret: bb-secret-0123456789}}\n    mapper_config: {}\n",
            db.url, created["config"]
        ),
    )
    .unwrap();

    // Each phase's time goes to stderr, which a failing run shows: a slow
    // phase says where a stall was.
    let phase = |what: String| eprintln!("chaos: {:6.2} s {what}", started.elapsed().as_secs_f64());
    let host = start_host(&config, &[]);
    phase("first host serving".into());
    let first = post_bitbucket(
        &reqwest::Client::new(),
        &format!("http://{}", host.addr),
        "pullrequest:created",
        created["delivery"]["body"].to_string().into_bytes(),
        "?wait=true",
    )
    .await
    .unwrap();
    assert!(first.status().is_success());

    let mut acked = std::collections::BTreeSet::new();
    let mut host = Some(host);
    for kill in 0..kills {
        let mut running = match host.take() {
            Some(h) => h,
            None => start_host(&config, &[]),
        };
        phase(format!("cycle {kill}: host serving"));
        let load = CommentLoad::start_at(
            &format!("http://{}", running.addr),
            10_000 + kill * CHAOS_PER_CYCLE,
            CHAOS_PER_CYCLE,
        );
        // Somewhere in the stream: after 10 to 80 acknowledgements …
        let at = 10 + below(70) as usize;
        load.until("acknowledgements", |l| l.acks() >= at).await;
        phase(format!("cycle {kill}: {} acknowledged", load.acks()));
        // … a new release lands in the watched folder (renamed over, or
        // overwritten in place as `cp` does) …
        let bytes = crate::reload::release(&original, &format!("chaos-{kill}"));
        if kill % 2 == 0 {
            let tmp = dir.path().join("incoming.wasm");
            std::fs::write(&tmp, &bytes).unwrap();
            std::fs::rename(&tmp, &wasm).unwrap();
        } else {
            std::fs::write(&wasm, &bytes).unwrap();
        }
        // … and the host dies 0–60 ms later: before, during or after the
        // reload, mid-batch, mid-request.
        tokio::time::sleep(std::time::Duration::from_millis(below(60))).await;
        running.child.kill().unwrap(); // SIGKILL
        running.child.wait().unwrap();
        phase(format!("cycle {kill}: killed"));
        acked.extend(load.finish().await);
        phase(format!("cycle {kill}: load ended"));
    }

    // The last start drains what the kills left.
    let mut host = match host.take() {
        Some(h) => h,
        None => start_host(&config, &[]),
    };
    phase("last host serving".into());
    crate::helpers::until_host_drains(&db, 120, &mut host).await;
    phase("drained".into());
    host.child.kill().unwrap();
    host.child.wait().unwrap();
    let all = crate::helpers::all_deliveries(&db.store).await;
    assert_comments_applied_once(&db.store, &acked).await;
    // The releases were loaded: a restart picks up the file the kill
    // interrupted, if the hot reload had not already swapped it in.
    let versions: std::collections::BTreeSet<_> =
        all.iter().filter_map(|d| d.mapper_hash.clone()).collect();
    if kills >= 2 {
        assert!(versions.len() >= 2, "one mapper version mapped everything");
    }
    eprintln!(
        "chaos: {kills} kills, {} comments acknowledged, {} deliveries stored and applied once each by {} mapper versions, 0 duplicates, {:.1} s",
        acked.len(),
        all.len(),
        versions.len(),
        started.elapsed().as_secs_f64()
    );
}
