//! Outbound, end to end: real signed webhooks into `host serve` (in
//! process), the change feed, the outbound worker, and recording provider
//! APIs on loopback that answer as a provider would — and, for the two-way
//! tests, call back into the host with a signed webhook about what was
//! just created, as the provider's own webhooks do.
//!
//! Both providers here run the `relay` test guest (a plain two-way
//! mapper), so these tests are about the host: order, retries, captures,
//! anti-loop and idempotency. The Slack and Asana mappers have their own.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use host::app::App;
use host::config::Config;
use host::store::{ErrorCode, OutboxFilter, OutboxStatus};
use serde_json::{Value, json};

use crate::db::{TestDb, conformance};
use crate::helpers::{Running, component};

const ADMIN: &str = "admin-token-0123456789abcdef";
const SECRET: &str = "relay-secret-0123456789";

/// One request a recording provider received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Value,
}

/// How a recording provider answers.
#[derive(Clone, Default)]
struct Behaviour {
    /// Answer this many requests with 503 and `Retry-After: 0` first.
    unavailable: usize,
    /// Answer every request with this status (a 4xx) while set.
    refuse_with: Option<u16>,
    /// After creating a comment, tell the host about it with a signed
    /// webhook to `{host}/hooks/{name}`, as the provider's own webhook
    /// would (the echo the anti-loop layers must catch).
    call_back: Option<(String, String)>,
}

/// A provider's API on loopback that records every request.
#[derive(Clone)]
struct Recorder {
    received: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    next_id: Arc<AtomicUsize>,
    prefix: &'static str,
    http: reqwest::Client,
}

impl Recorder {
    async fn start(prefix: &'static str) -> (String, Recorder) {
        let r = Recorder {
            received: Arc::default(),
            behaviour: Arc::default(),
            next_id: Arc::new(AtomicUsize::new(1)),
            prefix,
            http: reqwest::Client::new(),
        };
        let app = Router::new().fallback(record).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, r)
    }

    fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.behaviour.lock().unwrap());
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn count(&self, pred: impl Fn(&Received) -> bool) -> usize {
        self.received().iter().filter(|r| pred(r)).count()
    }
}

async fn record(
    State(r): State<Recorder>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let path = uri.path().to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    r.received.lock().unwrap().push(Received {
        method: method.to_string(),
        path: path.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: body.clone(),
    });
    let behaviour = {
        let mut b = r.behaviour.lock().unwrap();
        let out = b.clone();
        b.unavailable = b.unavailable.saturating_sub(1);
        out
    };
    if behaviour.unavailable > 0 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "0")],
            "try later",
        )
            .into_response();
    }
    if let Some(status) = behaviour.refuse_with {
        return (
            StatusCode::from_u16(status).unwrap(),
            r#"{"error":"refused"}"#,
        )
            .into_response();
    }
    let id = format!("{}-{}", r.prefix, r.next_id.fetch_add(1, Ordering::SeqCst));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let (["records", record, "comments"], Some((host, name))) =
        (parts.as_slice(), &behaviour.call_back)
    {
        // The provider reports the new comment by webhook, right after
        // answering (or even before the host has read the answer).
        let hook = json!({"event": "comment", "record": record, "id": id,
                          "text": body["text"], "author": "relay-user@example.com"});
        let (http, url) = (r.http.clone(), format!("{host}/hooks/{name}"));
        tokio::spawn(async move {
            let _ = signed(&http, &url, &hook).await;
        });
    }
    axum::Json(json!({"id": id})).into_response()
}

/// POSTs `body` to a relay provider's hook, signed (`x-hub-signature-256`).
async fn signed(http: &reqwest::Client, url: &str, body: &Value) -> reqwest::Result<Value> {
    let body = body.to_string().into_bytes();
    http.post(url)
        .header(
            "x-hub-signature-256",
            crate::helpers::sha256_signature(SECRET, &body),
        )
        .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
        .header("x-github-event", "relay")
        .body(body)
        .send()
        .await?
        .json()
        .await
}

struct Hub {
    base: String,
    http: reqwest::Client,
    running: Running,
    db: TestDb,
}

/// A host with two two-way relay providers, `left` and `right`, sending to
/// the given recorders.
async fn hub(db: TestDb, left: &str, right: &str, extra: &str) -> Hub {
    let relay = component("relay-guest");
    let provider = |name: &str, url: &str| {
        format!(
            "  {name}:\n    verify: {{preset: github, secret: {SECRET}}}\n    mapper: \"{}\"\n    api: {{base_url: \"{url}\", timeout_ms: 2000}}\n    outbound: {{retry_base_ms: 10, retry_max_ms: 50, max_attempts: 4{extra}}}\n",
            relay.display()
        )
    };
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{}\"\napi:\n  tokens:\n    - {{name: ops, token: {ADMIN}, scope: admin}}\ndelivery: {{retry_base_ms: 10, retry_max_ms: 50, lease_ms: 5000}}\nproviders:\n{}{}",
        db.url,
        provider("left", left),
        provider("right", right),
    );
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let (base, running) = Running::start(app);
    Hub {
        base,
        http: reqwest::Client::new(),
        running,
        db,
    }
}

impl Hub {
    async fn send(&self, provider: &str, body: Value) -> Value {
        signed(
            &self.http,
            &format!("{}/hooks/{provider}?wait=true", self.base),
            &body,
        )
        .await
        .unwrap()
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    /// Waits until every outbox row has ended (none pending, retrying or
    /// being sent) and `done` holds.
    async fn settle(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let open = self.db.outbox_depth().await.unwrap();
            if open == 0 && done() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {open} outbox rows still open"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn rows(&self, provider: &str) -> Vec<host::store::OutboxRow> {
        let mut rows = self
            .db
            .find_outbox(&OutboxFilter {
                provider: Some(provider.into()),
                limit: 500,
                ..Default::default()
            })
            .await
            .unwrap()
            .items;
        rows.reverse();
        rows
    }

    async fn stop(self) -> TestDb {
        self.running.stop().await;
        self.db
    }
}

conformance!(
    a_change_goes_out_once_with_its_idempotency_key_and_its_mirror_is_linked,
    transient_failures_retry_and_a_refusal_fails_until_retried,
    a_ticket_s_changes_go_out_in_order,
    ping_pong_comments_arrive_once_and_nothing_loops,
    a_failing_connector_shows_its_error_code_and_its_state,
);

async fn a_change_goes_out_once_with_its_idempotency_key_and_its_mirror_is_linked(db: TestDb) {
    let (left_url, left) = Recorder::start("L").await;
    let (right_url, right) = Recorder::start("R").await;
    let hub = hub(db, &left_url, &right_url, "").await;

    let out = hub
        .send(
            "left",
            json!({"event": "create", "subject": "Printer on fire", "record": "L-100"}),
        )
        .await;
    assert_eq!(out["status"], "applied", "{out}");
    let guid = out["applied"][0]["ticket_guid"]
        .as_str()
        .unwrap()
        .to_owned();

    hub.settle("the create and its link", || {
        left.count(|r| r.path.ends_with("/links")) == 1
    })
    .await;

    // Right got the create once, with the change's idempotency key; left,
    // where it came from, got no create.
    let creates: Vec<Received> = right
        .received()
        .into_iter()
        .filter(|r| r.path == "/records")
        .collect();
    assert_eq!(creates.len(), 1, "{creates:?}");
    assert_eq!(creates[0].method, "POST");
    assert_eq!(creates[0].body["subject"], "Printer on fire");
    let rows = hub.rows("right").await;
    assert_eq!(
        creates[0].headers.get("idempotency-key"),
        Some(&format!("sluice-{}-0", rows[0].id))
    );
    assert_eq!(left.count(|r| r.path == "/records"), 0);

    // The captured id is right's mirror of the ticket, and left was told.
    let ticket = hub.get(&format!("/v1/tickets/{guid}")).await;
    let links: Vec<(String, String)> = ticket["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["provider"].as_str().unwrap().to_owned(),
                l["external_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(links.contains(&("right".into(), "R-1".into())), "{links:?}");
    let told = left.received();
    let told = told.iter().find(|r| r.path.ends_with("/links")).unwrap();
    assert_eq!(told.path, "/records/L-100/links");
    assert_eq!(
        told.body,
        json!({"provider": "right", "external_id": "R-1"})
    );

    // The outbox API shows the row, its change, its request and its attempt.
    let list = hub.get("/v1/outbox?provider=right").await;
    assert_eq!(list["items"][0]["status"], "sent", "{list}");
    let id = list["items"][0]["id"].as_i64().unwrap();
    let detail = hub.get(&format!("/v1/outbox/{id}")).await;
    assert_eq!(detail["change"]["what"]["action"]["action"], "create");
    assert_eq!(detail["request_list"][0]["path"], "/records");
    assert_eq!(detail["attempt_list"][0]["status_code"], 200);
    assert!(
        detail["attempt_list"][0]["response_excerpt"]
            .as_str()
            .unwrap()
            .contains("R-1")
    );
    hub.stop().await;
}

async fn transient_failures_retry_and_a_refusal_fails_until_retried(db: TestDb) {
    let (left_url, _left) = Recorder::start("L").await;
    let (right_url, right) = Recorder::start("R").await;
    right.set(|b| b.unavailable = 2);
    let hub = hub(db, &left_url, &right_url, "").await;

    hub.send(
        "left",
        json!({"event": "create", "subject": "first", "record": "L-1"}),
    )
    .await;
    hub.settle("three tries", || right.count(|r| r.path == "/records") == 3)
        .await;
    let row = hub.rows("right").await.remove(0);
    assert_eq!(row.status, OutboxStatus::Sent);
    assert_eq!(row.attempts, 3);
    let detail = hub.get(&format!("/v1/outbox/{}", row.id)).await;
    let codes: Vec<i64> = detail["attempt_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![503, 503, 200]);
    // Every try carried the same key: a provider that honours it applies
    // the create once.
    let keys: Vec<String> = right
        .received()
        .iter()
        .map(|r| r.headers["idempotency-key"].clone())
        .collect();
    assert!(keys.windows(2).all(|w| w[0] == w[1]), "{keys:?}");

    // A refusal (4xx) is not retried: the row fails, naming the answer.
    right.set(|b| b.refuse_with = Some(400));
    hub.send(
        "left",
        json!({"event": "create", "subject": "second", "record": "L-2"}),
    )
    .await;
    hub.settle("the refusal", || right.count(|r| r.path == "/records") == 4)
        .await;
    let failed = hub.rows("right").await.pop().unwrap();
    assert_eq!(failed.status, OutboxStatus::Failed);
    let error = failed.last_error.clone().unwrap();
    assert!(
        error.contains("request 0 (POST /records): answered 400"),
        "{error}"
    );

    // Fixed on the provider's side, a retry through the API sends it.
    right.set(|b| b.refuse_with = None);
    let (status, answer) = hub
        .post(&format!("/v1/outbox/{}/retry", failed.id), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["retried"], json!([failed.id]));
    hub.settle("the retry", || right.count(|r| r.path == "/records") == 5)
        .await;
    let row = hub.db.outbox_row(failed.id).await.unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::Sent);
    // A sent row is not retried again.
    let (status, _) = hub
        .post(&format!("/v1/outbox/{}/retry", failed.id), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // The bulk retry's body is optional, but one that is there must be
    // JSON: blanks alone are refused, naming the body.
    let blank = hub
        .http
        .post(format!("{}/v1/outbox/retry", hub.base))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("\t")
        .send()
        .await
        .unwrap();
    assert_eq!(blank.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = blank.json().await.unwrap();
    assert!(body.to_string().contains("body"), "{body}");
    let (status, answer) = hub.post("/v1/outbox/retry", None).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"retried": []})));
    hub.stop().await;
}

async fn a_ticket_s_changes_go_out_in_order(db: TestDb) {
    let (left_url, _left) = Recorder::start("L").await;
    let (right_url, right) = Recorder::start("R").await;
    // The create fails twice before it goes through: its comments must
    // wait behind it, not overtake it.
    right.set(|b| b.unavailable = 2);
    let hub = hub(db, &left_url, &right_url, "").await;
    hub.send(
        "left",
        json!({"event": "create", "subject": "ordered", "record": "L-9"}),
    )
    .await;
    for i in 0..20 {
        let out = hub
            .send(
                "left",
                json!({"event": "comment", "record": "L-9", "id": format!("c{i}"),
                       "text": format!("comment {i}"), "author": "ann@example.com"}),
            )
            .await;
        assert_eq!(out["status"], "applied", "{out}");
    }
    hub.settle("20 comments", || {
        right.count(|r| r.path.ends_with("/comments")) == 20
    })
    .await;
    let paths: Vec<String> = right
        .received()
        .iter()
        .filter(|r| r.body.get("text").is_some() || r.path == "/records")
        .map(|r| {
            r.body["text"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| r.path.clone())
        })
        .collect();
    let mut want = vec!["/records".to_owned(); 3];
    want.extend((0..20).map(|i| format!("comment {i}")));
    assert_eq!(paths, want);
    // The comments went to the record the create made.
    assert!(
        right
            .received()
            .iter()
            .filter(|r| r.path.ends_with("/comments"))
            .all(|r| r.path == "/records/R-1/comments")
    );
    hub.stop().await;
}

async fn ping_pong_comments_arrive_once_and_nothing_loops(db: TestDb) {
    const N: usize = 100;
    let (left_url, left) = Recorder::start("L").await;
    let (right_url, right) = Recorder::start("R").await;
    let hub = hub(db, &left_url, &right_url, "").await;
    // Both providers call back about every comment created on their side.
    left.set(|b| b.call_back = Some((hub.base.clone(), "left".into())));
    right.set(|b| b.call_back = Some((hub.base.clone(), "right".into())));

    let out = hub
        .send(
            "left",
            json!({"event": "create", "subject": "ping pong", "record": "L-1"}),
        )
        .await;
    let guid = out["applied"][0]["ticket_guid"]
        .as_str()
        .unwrap()
        .to_owned();
    hub.settle("the mirror", || right.count(|r| r.path == "/records") == 1)
        .await;

    // Comments typed on the left, one after another as people do.
    for i in 0..N {
        let out = hub
            .send(
                "left",
                json!({"event": "comment", "record": "L-1", "id": format!("left-{i}"),
                       "text": format!("ping {i}"), "author": "ann@example.com"}),
            )
            .await;
        assert_eq!(out["status"], "applied", "{out}");
    }
    // Right's webhooks about the comments the host made there must all
    // come back and be recognised as echoes before the count is final.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let echoes = host_echoes(&hub, "right").await;
        if echoes == N && hub.db.outbox_depth().await.unwrap() == 0 {
            break;
        }
        if Instant::now() >= deadline {
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for d in crate::helpers::all_deliveries(&hub.db).await {
                *seen
                    .entry(format!(
                        "{} {} {:?} {:?}",
                        d.provider, d.status, d.reason, d.last_error
                    ))
                    .or_default() += 1;
            }
            panic!(
                "{echoes} of {N} echoes recognised; outbox open: {}; deliveries: {seen:#?}; right got {} comments",
                hub.db.outbox_depth().await.unwrap(),
                right.count(|r| r.path.ends_with("/comments"))
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Each comment arrived exactly once on the right, none went back left,
    // and the ticket holds each once.
    assert_eq!(right.count(|r| r.path.ends_with("/comments")), N);
    assert_eq!(left.count(|r| r.path.ends_with("/comments")), 0);
    let comments = hub.db.comments(&guid).await.unwrap();
    assert_eq!(comments.len(), N, "{:?}", comments.len());
    let texts: Vec<&str> = comments.iter().map(|c| c.body.as_str()).collect();
    let want: Vec<String> = (0..N).map(|i| format!("ping {i}")).collect();
    assert_eq!(texts, want);
    hub.stop().await;
}

/// Deliveries of `provider` ignored as echoes.
async fn host_echoes(hub: &Hub, provider: &str) -> usize {
    crate::helpers::all_deliveries(&hub.db)
        .await
        .iter()
        .filter(|d| {
            d.provider == provider
                && d.status == host::store::DeliveryStatus::Ignored
                && d.reason == Some(host::store::IgnoreReason::Echo)
        })
        .count()
}

/// Issue 14's structured errors and connector health: a refusal is
/// classified (`auth_failed`), filterable, counted, and turns the
/// connector `failing`; after the fix it is `degraded` (the failure is
/// still among its latest requests) with its last success.
async fn a_failing_connector_shows_its_error_code_and_its_state(db: TestDb) {
    let (left_url, _left) = Recorder::start("L").await;
    let (right_url, right) = Recorder::start("R").await;
    right.set(|b| b.refuse_with = Some(401));
    let hub = hub(db, &left_url, &right_url, "").await;
    let providers = hub.get("/v1/providers").await;
    let state = |v: &Value, name: &str| {
        v["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(state(&providers, "right")["state"], "idle", "{providers}");

    hub.send(
        "left",
        json!({"event": "create", "subject": "first", "record": "L-1"}),
    )
    .await;
    hub.settle("the refusal", || right.count(|r| r.path == "/records") == 1)
        .await;
    let failed = hub.rows("right").await.pop().unwrap();
    assert_eq!(failed.status, OutboxStatus::Failed);
    assert_eq!(failed.error_code, Some(ErrorCode::AuthFailed));
    let listed = hub.get("/v1/outbox?error_code=auth_failed").await;
    assert_eq!(listed["items"][0]["id"], failed.id, "{listed}");
    assert_eq!(listed["items"][0]["error_code"], "auth_failed");
    let none = hub.get("/v1/outbox?error_code=not_found").await;
    assert_eq!(none["items"], json!([]));
    let detail = hub.get(&format!("/v1/outbox/{}", failed.id)).await;
    assert_eq!(detail["attempt_list"][0]["error_code"], "auth_failed");

    let providers = hub.get("/v1/providers").await;
    let right_health = state(&providers, "right");
    assert_eq!(right_health["state"], "failing", "{providers}");
    assert_eq!(right_health["mapper_serving"], true);
    assert_eq!(right_health["outbound"]["failed"], 1);
    assert_eq!(
        right_health["outbound"]["last_error"]["code"],
        "auth_failed"
    );
    assert!(
        right_health["outbound"]["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("answered 401")
    );
    assert_eq!(right_health["outbound"]["last_success_at"], Value::Null);
    let metrics = hub
        .http
        .get(format!("{}/metrics", hub.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"sluice_outbound_errors_total{provider="right",code="auth_failed"} 1"#),
        "{metrics}"
    );

    // Fixed: the retry goes out; the failure is still among the latest
    // requests, so the connector is degraded, not connected, until it
    // ages out of the window.
    right.set(|b| b.refuse_with = None);
    let (status, _) = hub
        .post(&format!("/v1/outbox/{}/retry", failed.id), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    hub.settle("the retry", || right.count(|r| r.path == "/records") == 2)
        .await;
    let providers = hub.get("/v1/providers").await;
    let right_health = state(&providers, "right");
    assert_eq!(right_health["state"], "degraded", "{providers}");
    assert_eq!(right_health["outbound"]["failed"], 0);
    assert_eq!(right_health["outbound"]["recent_failures"], 1);
    assert_eq!(right_health["outbound"]["recent_requests"], 2);
    assert!(right_health["outbound"]["last_success_at"].is_string());
    let row = hub.db.outbox_row(failed.id).await.unwrap().unwrap();
    assert_eq!((row.status, row.error_code), (OutboxStatus::Sent, None));
    hub.stop().await;
}
