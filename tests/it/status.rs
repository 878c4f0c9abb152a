//! A delivery's status tells the truth: ordinary traffic nobody maps ends
//! `ignored` with a reason, at once, instead of failing or being retried
//! into the dead-letter list; only a reference that could still resolve is
//! retried.

use std::path::Path;

use hmac::{Hmac, Mac};
use host::app::App;
use host::config::Config;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Sha256;

use crate::db::{TestDb, conformance};
use crate::helpers::{Running, component, fixtures};

const SECRET: &str = "bb-secret-0123456789";

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures("bitbucket").join(name)).unwrap())
        .unwrap()
}

async fn spawn(db: &TestDb) -> (String, Running) {
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{}\"\ndelivery: {{max_attempts: 8, retry_base_ms: 60000}}\nproviders:\n  bitbucket:\n    verify: {{secret: {SECRET}}}\n    mapper: \"{}\"\n    mapper_config: {}\n",
        db.url,
        component("bitbucket-mapper").display(),
        fixture("pr_approved_completes.json")["config"],
    );
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    Running::start(App::build(&config).await.unwrap())
}

/// Sends `body` as a Bitbucket `event` with `?wait=true`; the outcome.
async fn send(base: &str, event: &str, body: &[u8]) -> Value {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let resp = reqwest::Client::new()
        .post(format!("{base}/hooks/bitbucket?wait=true"))
        .header("x-event-key", event)
        .header(
            "x-hub-signature",
            format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        )
        .header("x-request-uuid", uuid::Uuid::new_v4().to_string())
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

/// The commit-pushed fixture's body with its branch renamed.
fn push_to(branch: &str) -> Vec<u8> {
    fixture("commit_pushed.json")["delivery"]["body"]
        .to_string()
        .replace("feat/ticket-abc123", branch)
        .into_bytes()
}

conformance!(ordinary_traffic_ends_ignored_with_a_reason_and_only_what_may_resolve_retries);

async fn ordinary_traffic_ends_ignored_with_a_reason_and_only_what_may_resolve_retries(db: TestDb) {
    let (base, running) = spawn(&db).await;
    let cases = [
        // An event the mapper does not map.
        (
            "repo:fork",
            br#"{"repository":{"full_name":"technocore/axion"}}"#.to_vec(),
            "ignored",
            Some("unsupported_event"),
        ),
        // A push to main names no ticket and never will.
        ("repo:push", push_to("main"), "ignored", Some("no_ticket")),
        // The mapper maps a branch deletion to nothing.
        (
            "repo:push",
            fixture("ignored_branch_deleted.json")["delivery"]["body"]
                .to_string()
                .into_bytes(),
            "ignored",
            Some("filtered"),
        ),
        // A branch of the convention whose ticket is not there yet may
        // still resolve: retried, not ignored.
        ("repo:push", push_to("feat/ticket-notyet"), "retrying", None),
    ];
    for (event, body, status, reason) in cases {
        let out = send(&base, event, &body).await;
        assert_eq!(out["status"], status, "{event}: {out}");
        assert_eq!(out["reason"].as_str(), reason, "{event}: {out}");
        let row = db
            .delivery(out["delivery_id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, status, "{row:?}");
        assert_eq!(row.reason.map(|r| r.as_str()), reason, "{row:?}");
        assert_eq!(row.attempts, 1, "{row:?}");
    }
    // The deliveries API filters by the new statuses and shows the reason.
    let page = db
        .find_deliveries(&host::store::DeliveryFilter {
            status: Some(host::store::DeliveryStatus::Ignored),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    assert!(page.items.iter().all(|d| d.reason.is_some()));
    running.stop().await;
}
