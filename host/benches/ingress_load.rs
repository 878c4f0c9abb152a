//! A load generator on loopback: signed webhooks into a real server on a
//! SQLite file (WAL, `synchronous=FULL`).
//!
//! - acknowledged: 64 connections post 20,000 GitHub-signed deliveries
//!   (no mapper: ack only) — deliveries/s and p50/p99 ack latency;
//! - fully processed: 3,000 Bitbucket PR comments on one ticket through the
//!   Bitbucket component — from the first post until the inbox is empty.
//!
//! Run: `./scripts/build-components && cargo bench -p host --bench ingress_load`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use host::app::App;
use host::config::Config;
use serde_json::Value;
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

const CONNECTIONS: usize = 64;
const ACK_REQUESTS: usize = 20_000;
const PROCESSED: usize = 3_000;

fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac key");
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

async fn start(
    dir: &Path,
) -> (
    String,
    CancellationToken,
    tokio::task::JoinHandle<()>,
    host::store::Store,
) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let mapper = target.join("wasm32-wasip2/component/bitbucket_mapper.wasm");
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{}\"\nproviders:\n  github: {{verify: {{secret: gh-secret-0123456789}}}}\n  bitbucket:\n    verify: {{secret: bb-secret-0123456789}}\n    mapper: \"{}\"\n    mapper_config: {}\n",
        dir.join("load.db").display(),
        mapper.display(),
        fixture("pr_created_other_branch.json")["config"]
    );
    let config = Config::parse(&yaml, Path::new("/load.yaml"), |_| None).expect("config");
    let app = App::build(&config).await.expect("app");
    let addr = app.local_addr().expect("addr").to_string();
    let store = app.store().clone();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let handle = tokio::spawn(async move { app.run(token).await.expect("run") });
    (addr, shutdown, handle, store)
}

async fn acknowledged(addr: &str) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .expect("client");
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut lanes = Vec::new();
    for _ in 0..CONNECTIONS {
        let (http, next, addr) = (http.clone(), next.clone(), addr.to_owned());
        lanes.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= ACK_REQUESTS {
                    return latencies;
                }
                let body = format!(r#"{{"action":"opened","number":{i},"repository":{{"full_name":"technocore/axion"}}}}"#);
                let t = Instant::now();
                let resp = http
                    .post(format!("http://{addr}/hooks/github"))
                    .header("x-hub-signature-256", sign(b"gh-secret-0123456789", body.as_bytes()))
                    // Random like GitHub's own: a sequential id would make the
                    // dedupe index cheaper than any real provider's.
                    .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
                    .header("x-github-event", "pull_request")
                    .body(body)
                    .send()
                    .await
                    .expect("post");
                assert!(resp.status().is_success(), "{}", resp.status());
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::new();
    for l in lanes {
        all.extend(l.await.expect("lane"));
    }
    let elapsed = started.elapsed();
    all.sort();
    let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "acknowledged: {:.0} deliveries/s over {CONNECTIONS} connections ({ACK_REQUESTS} in {:.2} s); ack latency p50 {:.2} ms, p99 {:.2} ms",
        ACK_REQUESTS as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        at(0.5),
        at(0.99)
    );
}

async fn processed(addr: &str, store: &host::store::Store) {
    let http = reqwest::Client::new();
    let created = fixture("pr_created_other_branch.json");
    let body = created["delivery"]["body"].to_string();
    let resp = http
        .post(format!("http://{addr}/hooks/bitbucket?wait=true"))
        .header("x-event-key", "pullrequest:created")
        .header(
            "x-hub-signature",
            sign(b"bb-secret-0123456789", body.as_bytes()),
        )
        .header("x-request-uuid", "load-create")
        .body(body)
        .send()
        .await
        .expect("create");
    assert!(resp.status().is_success());
    let template = fixture("pr_comment.json")["delivery"]["body"].clone();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut lanes = Vec::new();
    for _ in 0..CONNECTIONS {
        let (http, next, addr, mut body) = (
            http.clone(),
            next.clone(),
            addr.to_owned(),
            template.clone(),
        );
        lanes.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= PROCESSED {
                    return;
                }
                body["comment"]["id"] = Value::from(100_000 + i);
                let text = body.to_string();
                let resp = http
                    .post(format!("http://{addr}/hooks/bitbucket"))
                    .header("x-event-key", "pullrequest:comment_created")
                    .header(
                        "x-hub-signature",
                        sign(b"bb-secret-0123456789", text.as_bytes()),
                    )
                    .header("x-request-uuid", format!("load-comment-{i}"))
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
    let acked = started.elapsed();
    // Done when no Bitbucket delivery waits (the GitHub ones of the first
    // phase have no mapper and wait forever).
    let waiting = |status: host::store::DeliveryStatus| {
        let store = store.clone();
        async move {
            let filter = host::store::DeliveryFilter {
                provider: Some("bitbucket".into()),
                status: Some(status),
                limit: 1,
                ..Default::default()
            };
            !store
                .find_deliveries(&filter)
                .await
                .expect("find")
                .items
                .is_empty()
        }
    };
    use host::store::DeliveryStatus::{Pending, Processing, Retrying};
    while waiting(Pending).await || waiting(Processing).await || waiting(Retrying).await {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let done = started.elapsed();
    println!(
        "fully processed: {:.0} deliveries/s ({PROCESSED} mapped, applied, history written in {:.2} s; all acknowledged after {:.2} s)",
        PROCESSED as f64 / done.as_secs_f64(),
        done.as_secs_f64(),
        acked.as_secs_f64()
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (addr, shutdown, handle, store) = start(dir.path()).await;
        acknowledged(&addr).await;
        processed(&addr, &store).await;
        shutdown.cancel();
        handle.await.expect("server");
    });
}
