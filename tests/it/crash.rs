//! kill -9 under load, then restart: every acknowledged delivery is applied
//! exactly once, nothing acknowledged is lost, nothing is half-applied.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use host::store::{DeliveryFilter, Store};
use serde_json::Value;
use sha2::Sha256;

use crate::helpers::{component, fixtures, start_host};

const DELIVERIES: usize = 1_000;
const KILL_AFTER: usize = 100;

fn signed(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(b"bb-secret-0123456789").unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sluice.db");
    let created: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures("bitbucket").join("pr_created_other_branch.json"))
            .unwrap(),
    )
    .unwrap();
    let comment: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures("bitbucket").join("pr_comment.json")).unwrap(),
    )
    .unwrap();
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
    let http = reqwest::Client::new();
    let post = move |addr: String, event: &'static str, body: Vec<u8>, wait: bool| {
        let http = http.clone();
        async move {
            let url = format!(
                "http://{addr}/hooks/bitbucket{}",
                if wait { "?wait=true" } else { "" }
            );
            http.post(url)
                .header("x-event-key", event)
                .header("x-hub-signature", signed(&body))
                .header("x-request-uuid", uuid::Uuid::new_v4().to_string())
                .body(body)
                .timeout(Duration::from_secs(10))
                .send()
                .await
        }
    };
    // The PR's ticket exists before the comments arrive.
    let first = post(
        host.addr.clone(),
        "pullrequest:created",
        created["delivery"]["body"].to_string().into_bytes(),
        true,
    )
    .await
    .unwrap();
    assert!(first.status().is_success());

    // A bounded load of comments, 8 in flight; the host dies part way.
    let acked = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for lane in 0..8 {
        let (acked, count, addr, post) = (
            acked.clone(),
            count.clone(),
            host.addr.clone(),
            post.clone(),
        );
        let mut body = comment["delivery"]["body"].clone();
        load.push(tokio::spawn(async move {
            for i in (lane..DELIVERIES).step_by(8) {
                body["comment"]["id"] = Value::from(10_000 + i);
                body["comment"]["content"]["raw"] = Value::from(format!("load comment {i}"));
                match post(
                    addr.clone(),
                    "pullrequest:comment_created",
                    body.to_string().into_bytes(),
                    false,
                )
                .await
                {
                    Ok(r) if r.status().is_success() => {
                        acked
                            .lock()
                            .unwrap()
                            .insert(format!("comment:{}", 10_000 + i));
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => return,
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "load did not reach {KILL_AFTER} acknowledgements"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    host.child.kill().unwrap(); // SIGKILL
    host.child.wait().unwrap();
    for l in load {
        l.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
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
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let depth = store.inbox_depth().await.unwrap();
        if depth == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{depth} deliveries still waiting after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    host.child.kill().unwrap();
    host.child.wait().unwrap();

    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .find_deliveries(&DeliveryFilter {
                limit: 500,
                cursor: cursor.clone(),
                ..DeliveryFilter::default()
            })
            .await
            .unwrap();
        all.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let stored = all.len();
    assert!(
        all.iter().all(|d| d.status == "applied"),
        "{:?}",
        all.iter()
            .filter(|d| d.status != "applied")
            .map(|d| (&d.status, &d.last_error))
            .collect::<Vec<_>>()
    );
    let ticket = store
        .find(&host::store::TicketFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .items;
    assert_eq!(ticket.len(), 1);
    let comments = store.comments(&ticket[0].guid).await.unwrap();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for c in &comments {
        *seen
            .entry(c.external_id.clone().unwrap_or_default())
            .or_default() += 1;
    }
    // Exactly once: no comment twice; every acknowledged one present.
    assert!(
        seen.values().all(|n| *n == 1),
        "duplicated: {:?}",
        seen.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    let missing: Vec<_> = acked.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    // Stored = the PR + every comment delivery that reached the inbox
    // (acknowledged, or committed just before the kill).
    assert_eq!(comments.len() + 1, stored);
    let history = store.history(&ticket[0].guid, None, 10_000).await.unwrap();
    assert_eq!(
        history.iter().filter(|h| h.kind == "comment").count(),
        comments.len()
    );
    drop(host.log);
}
