//! The inline path: a pure mapping is applied with its delivery's own
//! commit, before the 2xx and before any lane runs; a mapping that calls
//! the provider's API or touches mapper state, and every delivery of a
//! provider whose lane may have work waiting, are left to the worker.
//!
//! The host's router is served without its worker running, so whatever
//! is settled when the answer comes was settled inline; the tests drive
//! the worker themselves (`Worker::drain`).

use std::path::Path;

use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use host::app::App;
use host::config::Config;

use crate::db::{TestDb, conformance};
use crate::fake_api::FakeApi;
use crate::helpers::component;

const ADMIN: &str = "admin-token-0123456789abcdef";
const SECRET: &str = "inline-secret-0123456789";

conformance!(
    pure_mappings_are_applied_with_their_own_commit,
    mappings_that_need_the_api_or_state_are_left_to_the_worker,
);

struct Host {
    base: String,
    http: reqwest::Client,
    app: App,
    _db: TestDb,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Providers: `ext` (the relay guest: pure), `api` (the hostile guest
/// calling the provider's API, answered by `api_url`), `state` (the
/// hostile guest advancing a state cursor). `delivery` is the YAML of the
/// `delivery:` block.
async fn start(db: TestDb, api_url: &str, delivery: &str) -> Host {
    let relay = component("relay-guest");
    let hostile = component("hostile-guest");
    let verify = format!("{{preset: github, secret: {SECRET}}}");
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{}\"\napi:\n  tokens:\n    - {{name: ops, token: {ADMIN}, scope: admin}}\ndelivery: {delivery}\nproviders:\n  ext:\n    verify: {verify}\n    mapper: \"{}\"\n  api:\n    verify: {verify}\n    mapper: \"{}\"\n    mapper_config: {{mode: hang_api}}\n    api: {{base_url: \"{api_url}\", timeout_ms: 2000}}\n  state:\n    verify: {verify}\n    mapper: \"{}\"\n    mapper_config: {{mode: cursor}}\n",
        db.url,
        relay.display(),
        hostile.display(),
        hostile.display(),
    );
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let router = app.router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Host {
        base,
        http: reqwest::Client::new(),
        app,
        _db: db,
        server,
    }
}

impl Host {
    /// A signed delivery to `provider`; its id, once acknowledged.
    async fn send(&self, provider: &str, body: Vec<u8>) -> String {
        let resp = self
            .http
            .post(format!("{}/hooks/{provider}", self.base))
            .header(
                "x-hub-signature-256",
                crate::helpers::sha256_signature(SECRET, &body),
            )
            .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
            .header("x-github-event", "relay")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let receipt: Value = resp.json().await.unwrap();
        receipt["delivery_id"].as_str().unwrap().to_owned()
    }

    async fn get(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
        resp.json().await.unwrap()
    }

    async fn delivery(&self, id: &str) -> Value {
        self.get(&format!("/v1/deliveries/{id}")).await
    }

    /// Runs every lane until nothing is due.
    async fn drain(&self) -> usize {
        let worker = self.app.worker().expect("a worker");
        worker.drain(&CancellationToken::new()).await.unwrap()
    }
}

fn relay(body: Value) -> Vec<u8> {
    body.to_string().into_bytes()
}

async fn pure_mappings_are_applied_with_their_own_commit(db: TestDb) {
    let (api_url, _api) = FakeApi::start(|_, _| json!({"ok": true})).await;
    let host = start(
        db,
        &api_url,
        "{retry_base_ms: 10, retry_max_ms: 50, inline: true}",
    )
    .await;

    // Before its lane has run once, a provider may have a backlog from
    // before the start: nothing of it is settled ahead of that.
    let first = host
        .send(
            "ext",
            relay(json!({"event": "create", "subject": "Printer", "record": "R1"})),
        )
        .await;
    assert_eq!(host.delivery(&first).await["status"], "pending");
    assert_eq!(host.drain().await, 1);
    assert_eq!(host.delivery(&first).await["status"], "applied");

    // The lane found nothing waiting: the next delivery is mapped by its
    // request and applied in the commit that stores it, with no lane run.
    let comment = host
        .send(
            "ext",
            relay(json!({"event": "comment", "record": "R1", "id": "c1", "text": "toner is out", "author": "ann@example.com"})),
        )
        .await;
    let settled = host.delivery(&comment).await;
    assert_eq!(settled["status"], "applied", "{settled}");
    assert_eq!(settled["attempts"], 1, "{settled}");
    assert!(settled["mapper_hash"].is_string(), "{settled}");
    assert_eq!(
        settled["output"]["applied"][0]["action"], "comment",
        "{settled}"
    );
    let guid = settled["output"]["applied"][0]["ticket_guid"]
        .as_str()
        .unwrap()
        .to_owned();
    let ticket = host.get(&format!("/v1/tickets/{guid}")).await;
    let comments: Vec<&str> = ticket["comments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["comment"].as_str())
        .collect();
    assert_eq!(comments, ["toner is out"]);
    assert_eq!(host.drain().await, 0, "nothing was left for the worker");

    // An event the mapper does not map is settled inline as ignored.
    let unsupported = host.send("ext", relay(json!({"event": "bogus"}))).await;
    let ignored = host.delivery(&unsupported).await;
    assert_eq!(ignored["status"], "ignored", "{ignored}");
    assert_eq!(ignored["reason"], "unsupported_event", "{ignored}");

    // A delivery the mapper refuses is the worker's (it records the
    // failure); the provider's next delivery waits behind it rather than
    // overtaking it, and the lane then takes both in arrival order.
    let refused = host.send("ext", relay(json!({"event": "create"}))).await;
    let behind = host
        .send(
            "ext",
            relay(json!({"event": "comment", "record": "R1", "id": "c2", "text": "fixed", "author": "ann@example.com"})),
        )
        .await;
    assert_eq!(host.delivery(&refused).await["status"], "pending");
    assert_eq!(host.delivery(&behind).await["status"], "pending");
    assert_eq!(host.drain().await, 2);
    assert_eq!(host.delivery(&refused).await["status"], "failed");
    assert_eq!(host.delivery(&behind).await["status"], "applied");

    // Once the lane is empty again, inline resumes.
    let again = host
        .send(
            "ext",
            relay(json!({"event": "comment", "record": "R1", "id": "c3", "text": "thanks", "author": "ann@example.com"})),
        )
        .await;
    assert_eq!(host.delivery(&again).await["status"], "applied");

    // A redelivery is stored once and applied once.
    let history = host.get(&format!("/v1/tickets/{guid}/history")).await;
    let comments_in_history = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["kind"] == "comment")
        .count();
    assert_eq!(comments_in_history, 3, "{history}");
}

async fn mappings_that_need_the_api_or_state_are_left_to_the_worker(db: TestDb) {
    let (api_url, api) = FakeApi::start(|_, _| json!({"ok": true})).await;
    let host = start(
        db,
        &api_url,
        "{retry_base_ms: 10, retry_max_ms: 50, inline: true}",
    )
    .await;
    assert_eq!(host.drain().await, 0);

    // The mapping calls the provider's API: the request's attempt (which
    // got no API) is dropped, and the worker's call reaches the API.
    let calls = host.send("api", b"{}".to_vec()).await;
    let waiting = host.delivery(&calls).await;
    assert_eq!(waiting["status"], "pending", "{waiting}");
    assert_eq!(waiting["attempts"], 0, "{waiting}");
    assert!(api.calls("GET", "/hang").is_empty());
    host.drain().await;
    assert_eq!(api.calls("GET", "/hang").len(), 1);
    let mapped = host.delivery(&calls).await;
    assert!(
        mapped["output"].to_string().contains("status 200"),
        "{mapped}"
    );

    // The mapping reads and writes its state: the worker's call sees the
    // stored state and commits the write.
    let cursor = host.send("state", b"{}".to_vec()).await;
    assert_eq!(host.delivery(&cursor).await["status"], "pending");
    host.drain().await;
    let applied = host.delivery(&cursor).await;
    assert_eq!(applied["status"], "applied", "{applied}");
    let state = host.get("/v1/providers/state/state").await;
    assert!(state.to_string().contains("cursor"), "{state}");
}

/// Off by `delivery.inline: false`, and by default on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inline_path_can_be_turned_off() {
    let (api_url, _api) = FakeApi::start(|_, _| json!({"ok": true})).await;
    let off = "{retry_base_ms: 10, retry_max_ms: 50, inline: false}";
    let default = "{retry_base_ms: 10, retry_max_ms: 50}";
    for (db, delivery) in [
        (crate::db::sqlite().await, off),
        (crate::db::postgres().await, default),
    ] {
        let host = start(db, &api_url, delivery).await;
        assert_eq!(host.drain().await, 0);
        let id = host
            .send(
                "ext",
                relay(json!({"event": "create", "subject": "Printer", "record": "R1"})),
            )
            .await;
        assert_eq!(host.delivery(&id).await["status"], "pending", "{delivery}");
        assert_eq!(host.drain().await, 1);
        assert_eq!(host.delivery(&id).await["status"], "applied");
    }
}
