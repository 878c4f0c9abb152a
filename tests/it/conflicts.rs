//! Two-way sync, end to end: sync direction, and each conflict policy with
//! both sides editing the same field between syncs. Real signed webhooks
//! into `host serve` (in process) from the `relay` test guest (a made-up
//! two-way provider, `ext`), its API a recording server on loopback that
//! can be told to refuse the host's writes — which is how a local change
//! stays unsynced while the provider changes the field too.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use host::app::App;
use host::config::Config;
use serde_json::{Value, json};

use crate::db::{TestDb, conformance};
use crate::fake_api::FakeApi;
use crate::helpers::{Running, component};

const ADMIN: &str = "admin-token-0123456789abcdef";
const READ: &str = "read-token-0123456789abcdef";
const SECRET: &str = "relay-secret-0123456789";

struct Sync {
    base: String,
    http: reqwest::Client,
    running: Running,
    db: TestDb,
    api: FakeApi,
    /// While set, the provider's API answers the host's writes with 422.
    refuse: Arc<AtomicBool>,
}

/// A host with one relay provider, `ext`, whose `sync:` block is `sync`
/// (YAML flow style; empty for none) and `outbound:` present or not.
async fn start(db: TestDb, sync: &str, outbound: bool) -> Sync {
    let refuse = Arc::new(AtomicBool::new(false));
    let refusing = refuse.clone();
    let (url, api) = FakeApi::start_with_status(move |call, n| {
        if call.method != "GET" && refusing.load(Ordering::SeqCst) {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "refused"}),
            );
        }
        match (call.method.as_str(), call.path.as_str()) {
            ("POST", "/records") => (StatusCode::OK, json!({"id": format!("R{n}")})),
            _ => (StatusCode::OK, json!({"ok": true})),
        }
    })
    .await;
    let mut provider = format!(
        "  ext:\n    verify: {{preset: github, secret: {SECRET}}}\n    mapper: \"{}\"\n    api: {{base_url: \"{url}\", timeout_ms: 2000}}\n",
        component("relay-guest").display()
    );
    if outbound {
        provider.push_str("    outbound: {retry_base_ms: 10, retry_max_ms: 50, max_attempts: 3}\n");
    }
    if !sync.is_empty() {
        provider.push_str(&format!("    sync: {sync}\n"));
    }
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{}\"\napi:\n  tokens:\n    - {{name: ops, token: {ADMIN}, scope: admin}}\n    - {{name: viewer, token: {READ}, scope: read}}\ndelivery: {{retry_base_ms: 10, retry_max_ms: 50}}\nproviders:\n{provider}",
        db.url
    );
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let (base, running) = Running::start(app);
    Sync {
        base,
        http: reqwest::Client::new(),
        running,
        db,
        api,
        refuse,
    }
}

impl Sync {
    /// A signed delivery from `ext`, processed before the answer.
    async fn send(&self, body: Value) -> Value {
        let body = body.to_string().into_bytes();
        self.http
            .post(format!("{}/hooks/ext?wait=true", self.base))
            .header(
                "x-hub-signature-256",
                crate::helpers::sha256_signature(SECRET, &body),
            )
            .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
            .header("x-github-event", "relay")
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, ADMIN, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn patch_ticket(&self, guid: &str, body: Value) {
        let (status, answer) = self
            .call(
                reqwest::Method::PATCH,
                &format!("/v1/tickets/{guid}"),
                ADMIN,
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }

    async fn ticket(&self, guid: &str) -> Value {
        self.get(&format!("/v1/tickets/{guid}")).await
    }

    /// Waits until no outbox row is pending, retrying or being sent.
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.db.outbox_depth().await.unwrap() > 0 {
            assert!(Instant::now() < deadline, "the outbox does not drain");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The PATCHes of record `record` the provider received.
    fn patches(&self, record: &str) -> Vec<Value> {
        self.api
            .calls("PATCH", &format!("/records/{record}"))
            .into_iter()
            .map(|c| c.body)
            .collect()
    }

    /// A ticket made by the provider's record `R1`, whose `status` was
    /// last synced as IN_PROGRESS, then moved to QA on our side while the
    /// provider refused the write (so it stays unsynced).
    async fn status_moved_here(&self) -> String {
        let created = self
            .send(json!({"event": "create", "subject": "Printer on fire", "record": "R1"}))
            .await;
        assert_eq!(created["status"], "applied", "{created}");
        let guid = created["applied"][0]["ticket_guid"]
            .as_str()
            .unwrap()
            .to_owned();
        let moved = self
            .send(json!({"event": "status", "record": "R1", "status": "IN_PROGRESS", "by": "ann@example.com"}))
            .await;
        assert_eq!(moved["applied"][0]["changed"], true, "{moved}");
        self.refuse.store(true, Ordering::SeqCst);
        self.patch_ticket(
            &guid,
            json!({"status": "QA", "changed_by": "bob@example.com"}),
        )
        .await;
        self.settle().await;
        self.refuse.store(false, Ordering::SeqCst);
        assert_eq!(self.patches("R1"), vec![json!({"status": "QA"})]);
        guid
    }

    async fn stop(self) {
        self.running.stop().await;
    }
}

conformance!(
    external_policy_takes_theirs_when_both_moved,
    local_policy_keeps_ours_and_pushes_it_back,
    manual_policy_records_a_conflict_resolved_through_the_api,
    merge_policy_joins_text_and_falls_back_to_manual,
    an_echo_of_our_own_write_is_never_a_conflict,
    inbound_only_providers_get_no_outbox_rows,
    outbound_only_providers_deliveries_are_ignored,
);

async fn external_policy_takes_theirs_when_both_moved(db: TestDb) {
    let s = start(db, "{conflict: external}", true).await;
    let guid = s.status_moved_here().await;
    let out = s
        .send(json!({"event": "status", "record": "R1", "status": "RESOLVED", "by": "ann@example.com"}))
        .await;
    assert_eq!(out["status"], "applied", "{out}");
    assert_eq!(
        out["applied"][0]["conflicts"],
        json!([{"field": "status", "policy": "external"}])
    );
    assert_eq!(s.ticket(&guid).await["status"], "RESOLVED");
    s.settle().await;
    // Theirs came from them: nothing goes back.
    assert_eq!(s.patches("R1").len(), 1);
    let open = s.get("/v1/conflicts?state=open").await;
    assert_eq!(open["items"], json!([]));
    s.stop().await;
}

async fn local_policy_keeps_ours_and_pushes_it_back(db: TestDb) {
    let s = start(db, "{conflict: local}", true).await;
    let guid = s.status_moved_here().await;
    let out = s
        .send(json!({"event": "status", "record": "R1", "status": "RESOLVED", "by": "ann@example.com"}))
        .await;
    assert_eq!(out["status"], "applied", "{out}");
    assert_eq!(out["applied"][0]["changed"], false);
    assert_eq!(
        out["applied"][0]["conflicts"],
        json!([{"field": "status", "policy": "local"}])
    );
    assert_eq!(s.ticket(&guid).await["status"], "QA");
    s.settle().await;
    // Ours went back to them, once, as an ordinary outbox row.
    assert_eq!(
        s.patches("R1"),
        vec![json!({"status": "QA"}), json!({"status": "QA"})]
    );
    let pushed = s.api.calls("PATCH", "/records/R1").pop().unwrap();
    assert!(
        pushed
            .header("idempotency-key")
            .is_some_and(|k| k.starts_with("sluice-")),
        "{pushed:?}"
    );
    // The push back is in the ticket's history, with the delivery that
    // caused it.
    let history = s.get(&format!("/v1/tickets/{guid}/history")).await;
    let pushed = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["change"]["push_back"].is_object())
        .cloned()
        .unwrap_or_else(|| panic!("no push back in {history}"));
    assert_eq!(pushed["change"]["push_back"]["provider"], "ext");
    assert_eq!(
        pushed["change"]["fields"]["status"],
        json!({"from": "RESOLVED", "to": "QA"})
    );
    // Their echo of our value is no move at all.
    let echo = s
        .send(json!({"event": "status", "record": "R1", "status": "QA", "by": "ann@example.com"}))
        .await;
    assert_eq!(echo["applied"][0]["changed"], false, "{echo}");
    assert!(echo["applied"][0]["conflicts"].is_null(), "{echo}");
    s.stop().await;
}

async fn manual_policy_records_a_conflict_resolved_through_the_api(db: TestDb) {
    let s = start(
        db,
        "{conflict: external, conflicts: {status: manual}}",
        true,
    )
    .await;
    let guid = s.status_moved_here().await;
    let out = s
        .send(json!({"event": "status", "record": "R1", "status": "RESOLVED", "by": "ann@example.com"}))
        .await;
    // Processed, not failed, though nothing applied.
    assert_eq!(out["status"], "applied", "{out}");
    let id = out["applied"][0]["conflicts"][0]["conflict_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no conflict in {out}"));
    assert_eq!(s.ticket(&guid).await["status"], "QA");

    let open = s
        .get(&format!(
            "/v1/conflicts?state=open&ticket={guid}&provider=ext"
        ))
        .await;
    assert_eq!(open["items"].as_array().unwrap().len(), 1, "{open}");
    let c = &open["items"][0];
    assert_eq!(c["id"], id);
    assert_eq!(c["field"], "status");
    assert_eq!(c["policy"], "manual");
    assert_eq!(c["base_value"], "IN_PROGRESS");
    assert_eq!(c["local_value"], "QA");
    assert_eq!(c["external_value"], "RESOLVED");
    assert_eq!(c["delivery_id"], out["delivery_id"]);
    assert_eq!(c["state"], "open");
    assert_eq!(
        s.get("/v1/conflicts?state=resolved").await["items"],
        json!([])
    );
    // The same value again (another event saying it) is no new
    // conflict: it has not moved since.
    let again = s
        .send(json!({"event": "status", "record": "R1", "status": "RESOLVED", "by": "carl@example.com"}))
        .await;
    assert!(again["applied"][0]["conflicts"].is_null(), "{again}");

    // Read tokens may look, not resolve; bodies are one of the two shapes.
    let path = format!("/v1/conflicts/{id}/resolve");
    let body = json!({"choose": "external"});
    let (status, _) = s
        .call(reqwest::Method::POST, &path, READ, Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in [
        json!({"choose": "both"}),
        json!({"choose": "local", "value": "x"}),
        json!({}),
    ] {
        let (status, answer) = s
            .call(reqwest::Method::POST, &path, ADMIN, Some(bad.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {answer}");
    }
    let (status, answer) = s
        .call(
            reqwest::Method::POST,
            &path,
            ADMIN,
            Some(json!({"value": "NOT_A_STATUS"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");

    let (status, resolved) = s
        .call(reqwest::Method::POST, &path, ADMIN, Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["state"], "resolved");
    assert_eq!(resolved["resolution"], "external");
    assert_eq!(resolved["resolved_by"], "ops");
    assert_eq!(resolved["resolved_value"], "RESOLVED");
    assert!(resolved["resolved_at"].is_string());
    assert_eq!(s.ticket(&guid).await["status"], "RESOLVED");
    let (status, _) = s
        .call(reqwest::Method::POST, &path, ADMIN, Some(body))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = s
        .call(
            reqwest::Method::POST,
            "/v1/conflicts/999999/resolve",
            ADMIN,
            Some(json!({"choose": "local"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let shown = s.get(&format!("/v1/conflicts/{id}")).await;
    assert_eq!(shown["history_id"], resolved["history_id"]);
    s.stop().await;
}

async fn merge_policy_joins_text_and_falls_back_to_manual(db: TestDb) {
    let s = start(db, "{conflict: merge}", true).await;
    let created = s
        .send(json!({"event": "create", "subject": "Printer on fire", "record": "R1"}))
        .await;
    let guid = created["applied"][0]["ticket_guid"]
        .as_str()
        .unwrap()
        .to_owned();
    s.send(json!({"event": "update", "record": "R1", "description": "Tray 2 smokes", "by": "ann@example.com"}))
        .await;
    s.refuse.store(true, Ordering::SeqCst);
    s.patch_ticket(
        &guid,
        json!({"description": "Unplugged it", "priority": "HIGH", "changed_by": "bob@example.com"}),
    )
    .await;
    s.settle().await;
    s.refuse.store(false, Ordering::SeqCst);
    let out = s
        .send(json!({"event": "update", "record": "R1", "description": "Fire brigade called", "priority": "CRITICAL", "by": "ann@example.com"}))
        .await;
    assert_eq!(out["status"], "applied", "{out}");
    let conflicts = out["applied"][0]["conflicts"].as_array().unwrap().clone();
    assert_eq!(conflicts.len(), 2, "{out}");
    let ticket = s.ticket(&guid).await;
    // Text: both, separated.
    assert_eq!(
        ticket["description"],
        "Unplugged it\n---\nFire brigade called"
    );
    // A priority cannot be merged: as manual.
    assert_eq!(ticket["priority"], "HIGH");
    let open = s.get("/v1/conflicts?state=open").await;
    assert_eq!(open["items"].as_array().unwrap().len(), 1, "{open}");
    assert_eq!(open["items"][0]["field"], "priority");
    assert_eq!(open["items"][0]["policy"], "merge");
    s.settle().await;
    // The merged text went back to them.
    let last = s.patches("R1").pop().unwrap();
    assert_eq!(
        last,
        json!({"description": "Unplugged it\n---\nFire brigade called"})
    );
    // A value of the resolver's own.
    let id = open["items"][0]["id"].as_i64().unwrap();
    let (status, resolved) = s
        .call(
            reqwest::Method::POST,
            &format!("/v1/conflicts/{id}/resolve"),
            ADMIN,
            Some(json!({"value": "medium"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["resolution"], "value");
    assert_eq!(s.ticket(&guid).await["priority"], "MEDIUM");
    s.settle().await;
    assert_eq!(
        s.patches("R1").pop().unwrap(),
        json!({"priority": "MEDIUM"})
    );
    s.stop().await;
}

async fn an_echo_of_our_own_write_is_never_a_conflict(db: TestDb) {
    let s = start(db, "{conflict: manual}", true).await;
    let created = s
        .send(json!({"event": "create", "subject": "Printer on fire", "record": "R1"}))
        .await;
    let guid = created["applied"][0]["ticket_guid"]
        .as_str()
        .unwrap()
        .to_owned();
    s.send(json!({"event": "status", "record": "R1", "status": "IN_PROGRESS", "by": "ann@example.com"}))
        .await;
    // Ours reaches them: QA is synced.
    s.patch_ticket(
        &guid,
        json!({"status": "QA", "changed_by": "bob@example.com"}),
    )
    .await;
    s.settle().await;
    assert_eq!(s.patches("R1"), vec![json!({"status": "QA"})]);
    // We move on before their webhook about our write arrives.
    s.refuse.store(true, Ordering::SeqCst);
    s.patch_ticket(
        &guid,
        json!({"status": "DEPLOYED", "changed_by": "bob@example.com"}),
    )
    .await;
    s.settle().await;
    let echo = s
        .send(
            json!({"event": "status", "record": "R1", "status": "QA", "by": "sluice@example.com"}),
        )
        .await;
    assert_eq!(echo["status"], "applied", "{echo}");
    assert_eq!(echo["applied"][0]["changed"], false);
    assert!(echo["applied"][0]["conflicts"].is_null(), "{echo}");
    // Not reverted, and no conflict recorded.
    assert_eq!(s.ticket(&guid).await["status"], "DEPLOYED");
    assert_eq!(s.get("/v1/conflicts").await["items"], json!([]));
    s.stop().await;
}

async fn inbound_only_providers_get_no_outbox_rows(db: TestDb) {
    let s = start(db, "{direction: inbound}", true).await;
    let (status, ticket) = s
        .call(
            reqwest::Method::POST,
            "/v1/tickets",
            ADMIN,
            Some(json!({"subject": "Made here", "ticket_type": "TASK"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let created = s
        .send(json!({"event": "create", "subject": "Made there", "record": "R7"}))
        .await;
    assert_eq!(created["status"], "applied", "{created}");
    let guid = created["applied"][0]["ticket_guid"].as_str().unwrap();
    s.patch_ticket(
        guid,
        json!({"status": "QA", "changed_by": "bob@example.com"}),
    )
    .await;
    assert_eq!(s.get("/v1/outbox").await["items"], json!([]));
    assert!(s.api.all().is_empty());
    s.stop().await;
}

async fn outbound_only_providers_deliveries_are_ignored(db: TestDb) {
    let s = start(db, "{direction: outbound}", true).await;
    let out = s
        .send(json!({"event": "create", "subject": "Made there", "record": "R7"}))
        .await;
    assert_eq!(out["status"], "ignored", "{out}");
    assert_eq!(out["reason"], "sync_direction");
    // Stored, and listed by its reason.
    let listed = s.get("/v1/deliveries?provider=ext").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["items"][0]["reason"], "sync_direction");
    assert_eq!(s.get("/v1/tickets").await["items"], json!([]));
    // Changes still go out.
    let (status, _) = s
        .call(
            reqwest::Method::POST,
            "/v1/tickets",
            ADMIN,
            Some(json!({"subject": "Made here", "ticket_type": "TASK"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    s.settle().await;
    assert_eq!(s.api.calls("POST", "/records").len(), 1);
    s.stop().await;
}
