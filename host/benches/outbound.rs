//! Outbound throughput on loopback: changes delivered per second to a
//! receiver (one provider, then three that also tell each other about the
//! mirrors they created), the cost an outbound provider adds to applying
//! inbound actions, and the process's memory.
//!
//! The changes are applied to a SQLite file (WAL, `synchronous=FULL`)
//! before the host starts, so the timing is the outbound worker alone:
//! from `App::run` until the outbox is empty. The receiver is an axum
//! server in the same process answering `{"id": …}` at once, as a
//! provider's create would. Each provider runs the `relay` test guest.
//!
//! Run: `./scripts/build-components && cargo bench -p host --bench outbound [RUNS]`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use host::action::{Action, Priority};
use host::app::App;
use host::config::Config;
use host::tickets::ApplyInput;
use tokio_util::sync::CancellationToken;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn relay() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join("wasm32-wasip2/component/relay_guest.wasm")
}

async fn receiver() -> (String, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let counter = n.clone();
    let app = axum::Router::new().fallback(move || {
        let id = counter.fetch_add(1, Ordering::Relaxed);
        async move { axum::Json(serde_json::json!({"id": format!("R-{id}")})) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, n)
}

fn config(dir: &Path, receiver: &str, outbound: usize) -> Config {
    let mut yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{}\"\nproviders:\n  left:\n    verify: {{preset: github, secret: relay-secret-0123456789}}\n    mapper: \"{}\"\n",
        dir.join("outbound.db").display(),
        relay().display()
    );
    for i in 0..outbound {
        yaml.push_str(&format!(
            "  out{i}:\n    verify: {{preset: github, secret: relay-secret-0123456789}}\n    mapper: \"{}\"\n    api: {{base_url: \"{receiver}\"}}\n    outbound: {{}}\n",
            relay().display()
        ));
    }
    Config::parse(&yaml, Path::new("/outbound.yaml"), |_| None).expect("config")
}

/// Applies `tickets` creates from `left`, in batches as the worker would;
/// returns the time it took.
async fn apply_creates(config: &Config, tickets: usize) -> Duration {
    let store = host::app::open_store(config).await.expect("store");
    let applier = config.applier();
    let actions: Vec<Vec<Action>> = (0..tickets)
        .map(|i| {
            vec![Action::Create {
                subject: format!("change {i}"),
                description: String::new(),
                priority: Priority::Medium,
                ticket_type: "TASK".into(),
                requested_by: None,
                external_id: Some(format!("L-{i}")),
                labels: vec![],
            }]
        })
        .collect();
    let ids: Vec<String> = (0..tickets).map(|i| format!("d{i}")).collect();
    let started = Instant::now();
    for chunk in actions.iter().zip(&ids).collect::<Vec<_>>().chunks(64) {
        let inputs: Vec<ApplyInput<'_>> = chunk
            .iter()
            .map(|(a, id)| ApplyInput {
                delivery_id: Some(id),
                origin: Some("left"),
                mapper_hash: None,
                actions: a,
                state: &[],
            })
            .collect();
        for r in applier.apply_batch(&store, &inputs).await {
            r.expect("applied");
        }
    }
    let took = started.elapsed();
    store.close().await;
    took
}

/// Rows sent per second by the outbound worker, draining what `tickets`
/// creates queued for `outbound` providers.
async fn drain(tickets: usize, outbound: usize) -> (usize, Duration, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, received) = receiver().await;
    let config = config(dir.path(), &url, outbound);
    apply_creates(&config, tickets).await;
    let app = App::build(&config).await.expect("app");
    let store = app.store().clone();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let started = Instant::now();
    let server = tokio::spawn(async move { app.run(token).await.expect("run") });
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if store.outbox_depth().await.expect("depth") == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "no drain");
    }
    let took = started.elapsed();
    shutdown.cancel();
    server.await.expect("app task");
    (received.load(Ordering::Relaxed), took, tickets)
}

fn rss_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for (tickets, outbound) in [(5_000, 1), (1_000, 3)] {
            let mut rates = Vec::new();
            for _ in 0..runs {
                let (sent, took, _) = drain(tickets, outbound).await;
                rates.push(sent as f64 / took.as_secs_f64());
                println!(
                    "outbound: {tickets} tickets, {outbound} provider(s): {sent} requests in {:.2} s = {:.0}/s",
                    took.as_secs_f64(),
                    sent as f64 / took.as_secs_f64()
                );
            }
            println!(
                "outbound: {outbound} provider(s): median {:.0} requests/s over {runs} runs",
                median(rates)
            );
        }
        // What an outbound provider adds to applying inbound actions: the
        // outbox rows written in the same transaction.
        let (url, _) = receiver().await;
        for outbound in [0, 1, 3] {
            let mut rates = Vec::new();
            for _ in 0..runs {
                let dir = tempfile::tempdir().expect("tempdir");
                let took = apply_creates(&config(dir.path(), &url, outbound), 3_000).await;
                rates.push(3_000.0 / took.as_secs_f64());
            }
            println!(
                "inbound apply with {outbound} outbound provider(s): median {:.0} creates/s over {runs} runs",
                median(rates)
            );
        }
    });
    println!(
        "memory: peak RSS {:.0} MiB, now {:.0} MiB",
        rss_mib("VmHWM:"),
        rss_mib("VmRSS:")
    );
}
