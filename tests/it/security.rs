//! What an attacker holding part of the system can do with it, tried over
//! real HTTP: a read token reading verification secrets back, a mapper
//! logging them, a captured body replayed under a new delivery id, a
//! `?wait=true` duplicate re-running a delivery, weak configuration.

use std::path::Path;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use host::app::App;
use host::config::Config;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Sha256;

use crate::db::{TestDb, conformance};
use crate::helpers::{Running, component, fixtures};

const ADMIN: &str = "admin-token-0123456789abcdef";
const READ: &str = "read-token-0123456789abcdef";
const BB_SECRET: &str = "bb-secret-0123456789";

/// One token per token-scheme provider; each must never be read back.
const GITLAB_TOKEN: &str = "gitlab-token-5f2b9c0e41";
const GOOGLE_TOKEN: &str = "google-channel-token-8d1e";
const TRACKER_TOKEN: &str = "tracker-token-3a7c66f0b2";
const GMAIL_TOKEN: &str = "gmail-push-token-9e0d4b17";
const ASANA_TOKEN: &str = "asana-handshake-token-77c1";
const ASANA_HOOK_SECRET: &str = "asana-hook-secret-from-asana";

/// One webhook request: path and query, headers, body.
type Send<'a> = (String, Vec<(&'a str, &'a str)>, &'a [u8]);

struct Server {
    base: String,
    http: reqwest::Client,
    running: Running,
    db: TestDb,
}

async fn spawn(db: TestDb) -> Server {
    spawn_with(db, 32).await
}

async fn spawn_with(db: TestDb, max_waiting: usize) -> Server {
    let echo = component("hostile-guest");
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{db}\"\napi:\n  tokens:\n    - {{name: ops, token: {ADMIN}, scope: admin}}\n    - {{name: dashboard, token: {READ}, scope: read}}\n\
         delivery: {{retry_base_ms: 20, retry_max_ms: 100, max_waiting: {max_waiting}}}\n\
         providers:\n\
         \x20 bitbucket:\n    verify: {{secret: {BB_SECRET}}}\n    mapper: \"{bb}\"\n    mapper_config: {directory}\n\
         \x20 gitlab:\n    verify: {{secret: {GITLAB_TOKEN}}}\n    mapper: \"{echo}\"\n    mapper_config: {{mode: echo_request}}\n\
         \x20 calendar:\n    verify: {{preset: google, secret: {GOOGLE_TOKEN}}}\n    mapper: \"{echo}\"\n    mapper_config: {{mode: echo_request}}\n\
         \x20 tracker:\n    verify: {{secret: {TRACKER_TOKEN}}}\n    mapper: \"{echo}\"\n    mapper_config: {{mode: echo_request}}\n\
         \x20 gmail:\n    verify: {{secret: {GMAIL_TOKEN}}}\n    mapper: \"{echo}\"\n    mapper_config: {{mode: echo_request}}\n\
         \x20 asana:\n    verify: {{secret: {ASANA_TOKEN}}}\n    mapper: \"{echo}\"\n    mapper_config: {{mode: echo_request}}\n",
        db = db.url,
        bb = component("bitbucket-mapper").display(),
        echo = echo.display(),
        directory = fixture("pr_approved_completes.json")["config"],
    );
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let (base, running) = Running::start(app);
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

fn bitbucket_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(BB_SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Server {
    async fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (StatusCode, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.body(body.to_vec()).send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A Bitbucket delivery of `body` with its signature, under `request_id`.
    async fn bitbucket(
        &self,
        event: &str,
        body: &[u8],
        request_id: &str,
        query: &str,
    ) -> (StatusCode, Value) {
        let sig = bitbucket_signature(body);
        self.post(
            &format!("/hooks/bitbucket{query}"),
            &[
                ("x-event-key", event),
                ("x-hub-signature", &sig),
                ("x-request-uuid", request_id),
            ],
            body,
        )
        .await
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    async fn until_settled(&self, id: &str) -> host::store::DeliveryRow {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let row = self.db.delivery(id).await.unwrap().unwrap();
            if row.status != "pending" && row.status != "processing" {
                return row;
            }
            assert!(
                Instant::now() < deadline,
                "delivery {id} stuck at {}",
                row.status
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_requests_over_the_limit_get_the_plain_answer() {
    let s = spawn_with(crate::db::sqlite().await, 0).await;
    let f = fixture("pr_created_other_branch.json");
    let body = f["delivery"]["body"].to_string().into_bytes();
    let event = f["delivery"]["headers"]["X-Event-Key"].as_str().unwrap();
    let (status, ack) = s.bitbucket(event, &body, "req-1", "?wait=true").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{ack}");
    assert_eq!(ack["duplicate"], false);
    // The worker still processes it.
    let row = s.until_settled(ack["delivery_id"].as_str().unwrap()).await;
    assert_eq!(row.status, "applied");
    s.running.stop().await;
}

conformance!(
    verification_tokens_are_never_stored_served_or_mapped,
    a_replayed_body_under_a_new_delivery_id_is_a_duplicate,
    a_duplicate_with_wait_answers_the_stored_outcome_without_reprocessing,
    rows_stored_before_redaction_are_redacted_when_the_store_opens,
);

async fn verification_tokens_are_never_stored_served_or_mapped(db: TestDb) {
    let s = spawn(db).await;
    // Every token scheme, each the way its provider sends it.
    let (status, handshake) = s
        .post(
            &format!("/hooks/asana?token={ASANA_TOKEN}"),
            &[("x-hook-secret", ASANA_HOOK_SECRET)],
            b"",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{handshake}");
    let asana_body = br#"{"events":[]}"#;
    let asana_sig = {
        let mut mac = Hmac::<Sha256>::new_from_slice(ASANA_HOOK_SECRET.as_bytes()).unwrap();
        mac.update(asana_body);
        hex::encode(mac.finalize().into_bytes())
    };
    let sends: Vec<Send> = vec![
        (
            "/hooks/gitlab".into(),
            vec![
                ("x-gitlab-token", GITLAB_TOKEN),
                ("x-gitlab-event-uuid", "u1"),
            ],
            b"{\"object_kind\":\"push\"}",
        ),
        (
            "/hooks/calendar".into(),
            vec![
                ("x-goog-channel-token", GOOGLE_TOKEN),
                ("x-goog-channel-id", "c1"),
                ("x-goog-message-number", "1"),
            ],
            b"",
        ),
        (
            "/hooks/tracker".into(),
            vec![("x-sluice-token", TRACKER_TOKEN)],
            b"{\"issue\":\"Q-1\"}",
        ),
        (
            format!("/hooks/tracker?token={TRACKER_TOKEN}&wait=false"),
            vec![],
            b"{\"issue\":\"Q-2\"}",
        ),
        (
            format!("/hooks/gmail?token={GMAIL_TOKEN}"),
            vec![],
            b"{\"message\":{\"messageId\":\"m1\"}}",
        ),
        (
            format!("/hooks/asana?token={ASANA_TOKEN}"),
            vec![("x-hook-signature", asana_sig.as_str())],
            asana_body,
        ),
    ];
    let mut ids = Vec::new();
    for (path, headers, body) in &sends {
        let (status, ack) = s.post(path, headers, body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{path}: {ack}");
        ids.push(ack["delivery_id"].as_str().unwrap().to_owned());
    }
    let secrets = [
        GITLAB_TOKEN,
        GOOGLE_TOKEN,
        TRACKER_TOKEN,
        GMAIL_TOKEN,
        ASANA_TOKEN,
        ASANA_HOOK_SECRET,
    ];
    let leaks = |what: &str, text: &str| {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{what} carries a verification secret: {text}"
            );
        }
    };
    // What the mapper saw (it logs its headers and writes them into the
    // ticket it creates), what is stored, and what a read token reads.
    for (id, (path, ..)) in ids.iter().zip(&sends) {
        let row = s.until_settled(id).await;
        assert_eq!(row.status, "applied", "{path}: {:?}", row.last_error);
        leaks("the stored path", &row.path);
        leaks(
            "the stored headers",
            &format!(
                "{:?}",
                row.headers
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
            ),
        );
        let (status, shown) = s.get(READ, &format!("/v1/deliveries/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        leaks("GET /v1/deliveries/{id}", &shown);
        let shown: Value = serde_json::from_str(&shown).unwrap();
        let guid = shown["history"][0]["ticket_guid"].as_str().unwrap();
        let ticket = s.db.ticket(guid).await.unwrap().unwrap();
        leaks("what the mapper saw", &ticket.description);
        // The shape stays visible: the header or parameter, redacted.
        assert!(
            ticket.description.contains("[redacted]"),
            "{path}: no redaction marker in {}",
            ticket.description
        );
    }
    let (_, list) = s.get(READ, "/v1/deliveries?limit=100").await;
    leaks("GET /v1/deliveries", &list);
    // Signatures are no secret: kept for debugging.
    let asana_row = s.db.delivery(ids.last().unwrap()).await.unwrap().unwrap();
    assert!(
        asana_row
            .headers
            .iter()
            .any(|(k, v)| k == "x-hook-signature" && *v == asana_sig)
    );
    s.running.stop().await;
}

/// Sends a Bitbucket fixture's delivery, signed, under a fresh request id,
/// and waits for its outcome.
async fn step(s: &Server, name: &str) -> Value {
    let f = fixture(name);
    let event = f["delivery"]["headers"]["X-Event-Key"].as_str().unwrap();
    let body = f["delivery"]["body"].to_string().into_bytes();
    let id = uuid::Uuid::new_v4().to_string();
    let (status, out) = s.bitbucket(event, &body, &id, "?wait=true").await;
    assert_eq!(status, StatusCode::OK, "{name}: {out}");
    out
}

async fn reviewer_status(s: &Server, guid: &str, email: &str) -> String {
    s.db.signoffs(guid)
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.role == "C" && x.email == email)
        .unwrap()
        .status
}

async fn a_replayed_body_under_a_new_delivery_id_is_a_duplicate(db: TestDb) {
    let s = spawn(db).await;
    let created = step(&s, "pr_created_other_branch.json").await;
    assert_eq!(created["status"], "applied", "{created}");
    let guid = created["applied"][0]["ticket_guid"]
        .as_str()
        .unwrap()
        .to_owned();
    let approved = step(&s, "pr_approved_partial.json").await;
    assert_eq!(approved["status"], "applied", "{approved}");
    let unapproved = step(&s, "pr_unapproved.json").await;
    assert_eq!(unapproved["status"], "applied", "{unapproved}");
    let michael = "michael@technocore.co.za";
    assert_eq!(reviewer_status(&s, &guid, michael).await, "PENDING");

    // The captured approval, resent with its valid signature under a
    // fresh delivery id: the first delivery's id, nothing applied again.
    let f = fixture("pr_approved_partial.json");
    let (status, replay) = s
        .bitbucket(
            f["delivery"]["headers"]["X-Event-Key"].as_str().unwrap(),
            &f["delivery"]["body"].to_string().into_bytes(),
            "fresh-id-never-seen",
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!(replay["duplicate"], true);
    assert_eq!(replay["delivery_id"], approved["delivery_id"]);
    assert_eq!(
        reviewer_status(&s, &guid, michael).await,
        "PENDING",
        "the replay rolled the sign-off back"
    );
    assert_eq!(s.db.count_deliveries("bitbucket").await.unwrap(), 3);
    s.running.stop().await;
}

async fn a_duplicate_with_wait_answers_the_stored_outcome_without_reprocessing(db: TestDb) {
    let s = spawn(db).await;
    let f = fixture("pr_created_other_branch.json");
    let body = f["delivery"]["body"].to_string().into_bytes();
    let event = f["delivery"]["headers"]["X-Event-Key"].as_str().unwrap();
    let (_, first) = s.bitbucket(event, &body, "req-1", "?wait=true").await;
    assert_eq!(first["status"], "applied", "{first}");
    let id = first["delivery_id"].as_str().unwrap();
    let before = s.db.delivery(id).await.unwrap().unwrap();
    for _ in 0..3 {
        let (status, again) = s.bitbucket(event, &body, "req-1", "?wait=true").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(again["duplicate"], true, "{again}");
        assert_eq!(again["status"], "applied");
        assert_eq!(again["delivery_id"], id);
    }
    let after = s.db.delivery(id).await.unwrap().unwrap();
    assert_eq!(
        after.attempts, before.attempts,
        "a duplicate re-ran the delivery"
    );
    s.running.stop().await;
}

async fn rows_stored_before_redaction_are_redacted_when_the_store_opens(db: TestDb) {
    // A row as an earlier version stored it: the token in the path and a
    // header, not yet marked redacted.
    let headers = vec![
        ("x-sluice-token".to_owned(), TRACKER_TOKEN.to_owned()),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    db.insert_delivery(&host::store::NewDelivery {
        encoded: None,
        id: "old-1",
        provider: "tracker",
        dedupe_key: "k1",
        body_key: None,
        method: "POST",
        path: &format!("/hooks/tracker?token={TRACKER_TOKEN}"),
        headers: &headers,
        body: b"{}",
        received_at: "2026-01-01T00:00:00.000000Z",
    })
    .await
    .unwrap();
    db.mark_unredacted("old-1").await;
    let s = spawn(db).await;
    let row = s.db.delivery("old-1").await.unwrap().unwrap();
    assert_eq!(row.path, "/hooks/tracker?token=[redacted]");
    assert_eq!(
        row.headers[0],
        ("x-sluice-token".to_owned(), "[redacted]".to_owned())
    );
    assert_eq!(row.headers[1].1, "application/json");
    let (_, shown) = s.get(READ, "/v1/deliveries/old-1").await;
    assert!(!shown.contains(TRACKER_TOKEN), "{shown}");
    s.running.stop().await;
}

#[test]
fn check_refuses_an_empty_webhook_secret_and_plain_http_apis() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.yaml");
    std::fs::write(
        &path,
        "database: x.db\nproviders:\n  gitlab:\n    verify: {secret: \"${GL_SECRET}\"}\n",
    )
    .unwrap();
    let check = |secret: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_host"))
            .args(["check", "--config"])
            .arg(&path)
            .env("GL_SECRET", secret)
            .output()
            .unwrap()
    };
    // `GL_SECRET=` is set, and empty: refused, naming the key.
    let empty = check("");
    assert_eq!(empty.status.code(), Some(2));
    let err = String::from_utf8_lossy(&empty.stderr);
    assert!(
        err.contains("providers.gitlab.verify.secret: must be at least 16 characters"),
        "{err}"
    );
    assert!(check("a-long-enough-gitlab-secret").status.success());

    std::fs::write(
        &path,
        "database: x.db\nproviders:\n  jira:\n    verify: {secret: jira-secret-0123456789}\n    api: {base_url: \"http://jira.internal\"}\n",
    )
    .unwrap();
    let plain = check("");
    assert_eq!(plain.status.code(), Some(2));
    let err = String::from_utf8_lossy(&plain.stderr);
    assert!(
        err.contains("providers.jira.api.base_url: `http://jira.internal` must use https"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_a_listener_of_their_own() {
    let db = crate::db::sqlite().await;
    let yaml = format!(
        "listen: 127.0.0.1:0\nmetrics_listen: 127.0.0.1:0\ndatabase: \"{}\"\n",
        db.url
    );
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let metrics = format!("http://{}/metrics", app.metrics_addr().unwrap());
    let (base, running) = Running::start(app);
    let http = reqwest::Client::new();
    let scraped = http.get(&metrics).send().await.unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(scraped.text().await.unwrap().contains("sluice_inbox_depth"));
    // The API's listener no longer answers it.
    let api = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    running.stop().await;
}
