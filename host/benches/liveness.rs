//! A healthy provider's latency beside hostile ones: a server on a SQLite
//! file with the Bitbucket component (healthy), a mapper that sleeps in
//! WASI (`gitlab`, cut at its 1 s guest limit) and a mapper whose
//! provider API never answers (`tracker`, cut at a 5 s wall clock, then
//! retried). The healthy provider gets a steady stream of PR comments
//! (8 connections, 250/s for 8 s); each delivery's latency is from its
//! receipt to its `applied` record (both in the database). Quiet: the
//! hostile providers send nothing; hostile: 64 deliveries of each are
//! stored first and 16/s more keep coming.
//!
//! Run: `./scripts/build-components && cargo bench -p host --bench liveness [-- RUNS]`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use host::app::App;
use host::config::Config;
use serde_json::Value;
use sha2::Sha256;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

const RATE: u64 = 250;
const SECONDS: u64 = 8;
const CONNECTIONS: u64 = 8;
const HOSTILE_BACKLOG: usize = 64;
const HOSTILE_RATE: u64 = 16;

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(b"bb-secret-0123456789").expect("hmac key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> Value {
    let path = workspace().join("mappers/bitbucket/fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

/// Accepts connections and never answers.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

async fn post_hostile(http: &reqwest::Client, addr: &str, i: usize) {
    let body = format!(r#"{{"n":{i}}}"#);
    let _ = http
        .post(format!("http://{addr}/hooks/gitlab"))
        .header("x-gitlab-token", "gitlab-token-0123456789")
        .header("x-gitlab-event-uuid", uuid::Uuid::new_v4().to_string())
        .body(body.clone())
        .send()
        .await;
    let _ = http
        .post(format!(
            "http://{addr}/hooks/tracker?token=tracker-token-0123456789"
        ))
        .body(body)
        .send()
        .await;
}

/// One run: healthy latencies in ms, sorted.
async fn run(hostile: bool) -> Vec<f64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let components = target.join("wasm32-wasip2/component");
    let db = dir.path().join("liveness.db");
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{db}\"\nmappers: {{wall_clock_ms: 5000}}\n\
         delivery: {{retry_base_ms: 50, retry_max_ms: 200}}\nproviders:\n\
         \x20 bitbucket:\n    verify: {{secret: bb-secret-0123456789}}\n    mapper: \"{bb}\"\n    mapper_config: {cfg}\n\
         \x20 gitlab:\n    verify: {{secret: gitlab-token-0123456789}}\n    mapper: \"{hostile}\"\n    mapper_config: {{mode: sleep}}\n\
         \x20 tracker:\n    verify: {{secret: tracker-token-0123456789}}\n    mapper: \"{hostile}\"\n    mapper_config: {{mode: hang_api}}\n\
         \x20   api: {{base_url: \"{hole}\", timeout_ms: 60000}}\n",
        db = db.display(),
        bb = components.join("bitbucket_mapper.wasm").display(),
        cfg = fixture("pr_created_other_branch.json")["config"],
        hostile = components.join("hostile_guest.wasm").display(),
        hole = black_hole().await,
    );
    let config = Config::parse(&yaml, Path::new("/liveness.yaml"), |_| None).expect("config");
    let app = App::build(&config).await.expect("app");
    let addr = app.local_addr().expect("addr").to_string();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let server = tokio::spawn(async move { app.run(token).await.expect("run") });
    let http = reqwest::Client::new();

    let created = fixture("pr_created_other_branch.json")["delivery"]["body"].to_string();
    let resp = http
        .post(format!("http://{addr}/hooks/bitbucket?wait=true"))
        .header("x-event-key", "pullrequest:created")
        .header("x-hub-signature", sign(created.as_bytes()))
        .header("x-request-uuid", "create")
        .body(created)
        .send()
        .await
        .expect("create");
    assert!(resp.status().is_success());

    let stop_hostile = Arc::new(AtomicBool::new(false));
    let mut background = None;
    if hostile {
        for i in 0..HOSTILE_BACKLOG {
            post_hostile(&http, &addr, i).await;
        }
        let (http, addr, stop) = (http.clone(), addr.clone(), stop_hostile.clone());
        background = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / HOSTILE_RATE));
            let mut i = HOSTILE_BACKLOG;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                post_hostile(&http, &addr, i).await;
                i += 1;
            }
        }));
    }

    // The healthy stream: each connection posts at RATE / CONNECTIONS.
    let template = fixture("pr_comment.json")["delivery"]["body"].clone();
    let total = RATE * SECONDS;
    let mut lanes = Vec::new();
    for lane in 0..CONNECTIONS {
        let (http, addr, mut body) = (http.clone(), addr.clone(), template.clone());
        lanes.push(tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_micros(1_000_000 * CONNECTIONS / RATE));
            for i in (lane..total).step_by(CONNECTIONS as usize) {
                tick.tick().await;
                body["comment"]["id"] = Value::from(100_000 + i);
                let text = body.to_string();
                let resp = http
                    .post(format!("http://{addr}/hooks/bitbucket"))
                    .header("x-event-key", "pullrequest:comment_created")
                    .header("x-hub-signature", sign(text.as_bytes()))
                    .header("x-request-uuid", format!("comment-{i}"))
                    .body(text)
                    .send()
                    .await
                    .expect("post");
                assert!(resp.status().is_success());
            }
        }));
    }
    for l in lanes {
        l.await.expect("lane");
    }
    stop_hostile.store(true, Ordering::Relaxed);
    if let Some(b) = background {
        b.await.expect("hostile sender");
    }

    // Every healthy delivery applied, within a minute.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("read db");
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let rows = sqlx::query(
            "SELECT d.received_at, a.at FROM deliveries d JOIN applied a ON a.delivery_id = d.id \
             WHERE d.provider = 'bitbucket'",
        )
        .fetch_all(&pool)
        .await
        .expect("query");
        if rows.len() as u64 > total || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        rows.len() as u64 > total,
        "healthy deliveries not all applied"
    );
    let mut latencies: Vec<f64> = rows
        .iter()
        .map(|r| {
            let t = |col: usize| {
                chrono::DateTime::parse_from_rfc3339(&r.get::<String, _>(col)).expect("time")
            };
            (t(1) - t(0)).num_microseconds().unwrap_or(0) as f64 / 1e3
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    pool.close().await;
    shutdown.cancel();
    server.await.expect("server");
    latencies
}

fn at(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut summary = Vec::new();
    for n in 0..runs {
        for hostile in [false, true] {
            let l = rt.block_on(run(hostile));
            let (p50, p99) = (at(&l, 0.5), at(&l, 0.99));
            let name = if hostile { "hostile" } else { "quiet" };
            println!(
                "run {n} {name:>7}: {} healthy deliveries, receipt to applied p50 {p50:.1} ms, p99 {p99:.1} ms",
                l.len()
            );
            summary.push((hostile, p50, p99));
        }
    }
    let median = |hostile: bool, pick: fn(&(bool, f64, f64)) -> f64| {
        let mut v: Vec<f64> = summary
            .iter()
            .filter(|s| s.0 == hostile)
            .map(pick)
            .collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "medians of {runs} runs: quiet p50 {:.1} ms p99 {:.1} ms; hostile p50 {:.1} ms p99 {:.1} ms",
        median(false, |s| s.1),
        median(false, |s| s.2),
        median(true, |s| s.1),
        median(true, |s| s.2)
    );
}
