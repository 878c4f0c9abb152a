//! Webhook to ticket, end to end: real signed Bitbucket deliveries (the
//! mapper's own fixture bodies) into the real server with the real
//! component, mapped, applied, retried and dead-lettered.

use std::path::Path;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use host::app::App;
use host::config::Config;
use host::store::TicketFilter;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Sha256;

use crate::db::{TestDb, conformance};
use crate::helpers::{component, fixtures};

struct Server {
    base: String,
    http: reqwest::Client,
    running: crate::helpers::Running,
    db: TestDb,
}

const ADMIN: &str = "admin-token-0123456789abcdef";

async fn spawn(db: TestDb, max_attempts: u32) -> Server {
    let directory = fixture("pr_approved_completes.json")["config"].to_string();
    spawn_with(db, max_attempts, &directory).await
}

fn config_yaml(db: &TestDb, max_attempts: u32, mapper_config: &str) -> String {
    format!(
        "listen: 127.0.0.1:0\ndatabase: \"{}\"\napi:\n  tokens:\n    - {{name: ops, token: {ADMIN}, scope: admin}}\ndelivery: {{max_attempts: {max_attempts}, retry_base_ms: 20, retry_max_ms: 100}}\nproviders:\n  bitbucket:\n    verify: {{secret: bb-secret-0123456789}}\n    mapper: \"{}\"\n    mapper_config: {mapper_config}\n",
        db.url,
        component("bitbucket-mapper").display()
    )
}

async fn spawn_with(db: TestDb, max_attempts: u32, mapper_config: &str) -> Server {
    let yaml = config_yaml(&db, max_attempts, mapper_config);
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let (base, running) = crate::helpers::Running::start(app);
    Server {
        base,
        http: reqwest::Client::new(),
        running,
        db,
    }
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures("bitbucket").join(name)).unwrap())
        .unwrap()
}

impl Server {
    /// Sends a fixture's delivery, signed, with a fresh request id.
    async fn send(&self, name: &str, query: &str) -> (StatusCode, Value) {
        let f = fixture(name);
        self.send_body(
            f["delivery"]["headers"]["X-Event-Key"].as_str().unwrap(),
            f["delivery"]["body"].to_string().into_bytes(),
            query,
        )
        .await
    }

    async fn send_body(&self, event: &str, body: Vec<u8>, query: &str) -> (StatusCode, Value) {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"bb-secret-0123456789").unwrap();
        mac.update(&body);
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let resp = self
            .http
            .post(format!("{}/hooks/bitbucket{query}", self.base))
            .header("x-event-key", event)
            .header("x-hub-signature", sig)
            .header("x-request-uuid", uuid::Uuid::new_v4().to_string())
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }

    /// Polls the stored delivery until `status`, within a deadline.
    async fn until(&self, id: &str, status: &str) -> host::store::DeliveryRow {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let row = self.db.delivery(id).await.unwrap().unwrap();
            if row.status == status {
                return row;
            }
            assert!(
                Instant::now() < deadline,
                "delivery {id} stuck at {} ({:?})",
                row.status,
                row.last_error
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) -> TestDb {
        self.running.stop().await;
        self.db
    }

    async fn admin_post(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    async fn admin_get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }
}

conformance!(
    a_webhook_becomes_a_ticket_and_later_events_find_it,
    a_delivery_before_its_ticket_is_retried_until_it_applies,
    unresolvable_deliveries_are_dead_lettered_with_the_error,
    mapping_errors_are_recorded_with_the_mapper_version,
    a_failed_delivery_is_replayed_after_the_config_is_fixed,
    metrics_and_readiness_report_what_happened,
    processing_abandoned_by_its_caller_leaves_no_claim_behind,
);

async fn a_webhook_becomes_a_ticket_and_later_events_find_it(db: TestDb) {
    let s = spawn(db, 8).await;
    let (status, created) = s.send("pr_created_other_branch.json", "?wait=true").await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["status"], "applied", "{created}");
    assert_eq!(created["event_type"], "pr_created");
    // The answer carries the canonical actions (the seed's sync_to_ticket result).
    assert_eq!(created["actions"][0]["action"], "create");
    assert_eq!(created["actions"][1]["from_action"], 0);
    let guid = created["applied"][0]["ticket_guid"]
        .as_str()
        .unwrap()
        .to_owned();

    let (_, approved) = s.send("pr_approved_completes.json", "?wait=true").await;
    assert_eq!(approved["status"], "applied", "{approved}");
    assert_eq!(approved["applied"][0]["ticket_guid"], guid.as_str());
    let signoffs = s.db.signoffs(&guid).await.unwrap();
    assert!(
        signoffs.iter().any(|x| x.role == "A"
            && x.email == "priya@technocore.co.za"
            && x.status == "APPROVED"),
        "{signoffs:?}"
    );

    // Without ?wait the delivery is acknowledged at once and applied by the worker.
    let (status, ack) = s.send("pr_merged.json", "").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let row = s
        .until(ack["delivery_id"].as_str().unwrap(), "applied")
        .await;
    assert_eq!(row.event_type.as_deref(), Some("pr_merged"));
    let t = s.db.ticket(&guid).await.unwrap().unwrap();
    assert_eq!(
        (t.status.as_str(), t.resolved_by.as_deref()),
        ("RESOLVED", Some("michael@technocore.co.za"))
    );
    let history = s.db.history(&guid, None, 100).await.unwrap();
    assert!(
        history
            .iter()
            .all(|h| h.origin.as_deref() == Some("bitbucket")
                && h.mapper_hash.is_some()
                && h.delivery_id.is_some())
    );
    s.stop().await;
}

async fn a_delivery_before_its_ticket_is_retried_until_it_applies(db: TestDb) {
    let s = spawn(db, 50).await;
    // The approval arrives before the PR's create.
    let (_, early) = s.send("pr_approved_partial.json", "?wait=true").await;
    assert_eq!(early["status"], "retrying", "{early}");
    assert!(
        early["error"].as_str().unwrap().contains("no ticket found"),
        "{early}"
    );
    let (_, created) = s.send("pr_created_other_branch.json", "?wait=true").await;
    assert_eq!(created["status"], "applied", "{created}");
    let row = s
        .until(early["delivery_id"].as_str().unwrap(), "applied")
        .await;
    assert!(row.attempts >= 2, "{row:?}");
    let guid = created["applied"][0]["ticket_guid"].as_str().unwrap();
    assert!(
        s.db.signoffs(guid)
            .await
            .unwrap()
            .iter()
            .any(|x| x.email == "michael@technocore.co.za" && x.status == "APPROVED")
    );
    s.stop().await;
}

async fn unresolvable_deliveries_are_dead_lettered_with_the_error(db: TestDb) {
    let s = spawn(db, 3).await;
    let (_, reply) = s.send("pr_comment.json", "").await;
    let row = s
        .until(reply["delivery_id"].as_str().unwrap(), "dead")
        .await;
    assert_eq!(row.attempts, 3);
    let error = row.last_error.unwrap();
    assert!(
        error.contains("gave up after 3 attempts") && error.contains("no ticket found"),
        "{error}"
    );
    // The raw delivery is kept for replay.
    assert!(!row.body.is_empty());
    let none =
        s.db.find(&TicketFilter {
            limit: 10,
            ..TicketFilter::default()
        })
        .await
        .unwrap();
    assert!(none.items.is_empty());
    s.stop().await;
}

async fn mapping_errors_are_recorded_with_the_mapper_version(db: TestDb) {
    let s = spawn(db, 8).await;
    let (status, reply) = s
        .send_body(
            "pullrequest:approved",
            b"<html>not json</html>".to_vec(),
            "?wait=true",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["status"], "failed", "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("malformed_payload: body is not JSON"),
        "{reply}"
    );
    let row =
        s.db.delivery(reply["delivery_id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(row.status, "failed");
    assert_eq!(row.mapper_hash.as_deref().map(str::len), Some(64));
    assert_eq!(row.body, b"<html>not json</html>");

    let (_, ignored) = s
        .send("ignored_pipeline_in_progress.json", "?wait=true")
        .await;
    assert_eq!(
        (ignored["status"].as_str(), ignored["event_type"].as_str()),
        (Some("ignored"), Some("pipeline_pending"))
    );
    s.stop().await;
}

async fn a_failed_delivery_is_replayed_after_the_config_is_fixed(db: TestDb) {
    // Michael is missing from the directory: the mapper refuses (bad_config).
    let s = spawn_with(
        db,
        8,
        r#"{"user_directory": {"ann": "ann@technocore.co.za"}}"#,
    )
    .await;
    let (_, failed) = s.send("pr_created_other_branch.json", "?wait=true").await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("bad_config"),
        "{failed}"
    );
    let id = failed["delivery_id"].as_str().unwrap().to_owned();

    let (status, list) = s
        .admin_get("/v1/deliveries?provider=bitbucket&status=failed")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"][0]["id"], id.as_str());
    let (_, shown) = s.admin_get(&format!("/v1/deliveries/{id}")).await;
    assert!(
        shown["body"]
            .as_str()
            .unwrap()
            .contains("login-remember-me")
    );
    assert!(
        shown["error"].as_str().unwrap().contains("michael"),
        "{shown}"
    );
    let db = s.stop().await;

    // The operator fixes the directory and restarts; replay applies it.
    let s = spawn(db, 8).await;
    let (status, replayed) = s.admin_post(&format!("/v1/deliveries/{id}/replay")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replayed["status"], "applied", "{replayed}");
    let guid = replayed["applied"][0]["ticket_guid"]
        .as_str()
        .unwrap()
        .to_owned();
    let history = s.db.history(&guid, None, 100).await.unwrap().len();

    // Replaying again, one or many, applies nothing twice.
    let (_, again) = s.admin_post("/v1/deliveries/replay?status=applied").await;
    assert_eq!(again["replayed"], 1, "{again}");
    assert_eq!(s.db.history(&guid, None, 100).await.unwrap().len(), history);
    let (_, shown) = s.admin_get(&format!("/v1/deliveries/{id}")).await;
    assert_eq!(shown["history"].as_array().unwrap().len(), history);
    let tickets =
        s.db.find(&TicketFilter {
            limit: 10,
            ..TicketFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(tickets.items.len(), 1);

    // The same, from the command line.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.yaml");
    let directory = fixture("pr_approved_completes.json")["config"].to_string();
    std::fs::write(&config, config_yaml(&s.db, 8, &directory)).unwrap();
    let host = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_host"))
            .args(["deliveries", "--config"])
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = host(&["list", "--status", "applied"]);
    assert!(listed.contains(&id), "{listed}");
    let shown: Value = serde_json::from_str(&host(&["show", &id])).unwrap();
    assert_eq!(shown["status"], "applied");
    let replayed: Value = serde_json::from_str(host(&["replay", &id]).trim()).unwrap();
    assert_eq!(replayed["status"], "applied");
    assert_eq!(s.db.history(&guid, None, 100).await.unwrap().len(), history);
    s.stop().await;
}

async fn metrics_and_readiness_report_what_happened(db: TestDb) {
    let s = spawn(db, 8).await;
    let (_, applied) = s.send("pr_created_other_branch.json", "?wait=true").await;
    assert_eq!(applied["status"], "applied");
    let forged = s
        .http
        .post(format!("{}/hooks/bitbucket", s.base))
        .header("x-hub-signature", "sha256=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let resp = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    for line in [
        r#"sluice_deliveries_total{provider="bitbucket",outcome="accepted"} 1"#,
        r#"sluice_deliveries_total{provider="bitbucket",outcome="applied"} 1"#,
        r#"sluice_verification_failures_total{provider="bitbucket"} 1"#,
        r#"sluice_mapper_call_seconds_count{provider="bitbucket"} 1"#,
        "sluice_inbox_depth 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }
    assert!(!text.contains("bb-secret-0123456789"));

    let resp = s
        .http
        .get(format!("{}/readyz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ready: Value = resp.json().await.unwrap();
    assert_eq!(
        ready,
        serde_json::json!({"ready": true, "database": "ok", "mappers": ["bitbucket"]})
    );
    s.stop().await;
}

/// A `?wait=true` request (or a replay) whose caller goes away mid-way — a
/// client hanging up, a deadline — still finishes its delivery. Before, the
/// dropped request left its claim behind: the delivery sat `processing`,
/// counted in `sluice_inbox_depth` and out of every lane's reach, until the
/// lease ran out (a minute by default), which looked like a worker draining
/// ten times slower after `?wait=true` traffic.
async fn processing_abandoned_by_its_caller_leaves_no_claim_behind(db: TestDb) {
    use host::store::{DeliveryStatus, NewDelivery, Reclaim};
    let created = fixture("pr_created_other_branch.json");
    let yaml = config_yaml(&db, 8, &created["config"].to_string());
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    // No lane runs: only the work the caller started can finish the delivery.
    let worker = host::app::worker(&config, db.store.clone())
        .await
        .unwrap()
        .unwrap();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let body = created["delivery"]["body"].to_string();
    db.store
        .insert_delivery(&NewDelivery {
            encoded: None,
            id: &id,
            provider: "bitbucket",
            dedupe_key: &id,
            body_key: None,
            method: "POST",
            path: "/hooks/bitbucket",
            headers: &[("x-event-key".into(), "pullrequest:created".into())],
            body: body.as_bytes(),
            received_at: &host::store::now(),
        })
        .await
        .unwrap();
    {
        // The caller is polled until the delivery is claimed, then dropped,
        // as the server drops a handler whose client hung up.
        let call = worker.process_now(&id, Reclaim::Pending);
        tokio::pin!(call);
        loop {
            if let std::task::Poll::Ready(done) = futures::poll!(&mut call) {
                done.unwrap();
                break;
            }
            let row = stored(&db, &id).await;
            if row.status != DeliveryStatus::Pending {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let row = loop {
        let row = stored(&db, &id).await;
        if row.status != DeliveryStatus::Processing {
            break row;
        }
        assert!(
            Instant::now() < deadline,
            "the abandoned claim is still held (claim token {:?})",
            row.claim_token
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(row.status, DeliveryStatus::Applied, "{:?}", row.last_error);
    assert_eq!(row.claim_token, None);
    assert_eq!(row.attempts, 1);
}

async fn stored(db: &TestDb, id: &str) -> host::store::DeliveryRow {
    db.delivery(id).await.unwrap().unwrap()
}
