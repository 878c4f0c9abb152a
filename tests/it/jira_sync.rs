//! Issue 14 end to end with the built-in Jira mapper: an issue synced to
//! a ticket, then both sides change the same field before the next sync —
//! the ticket through the ticket API, Jira in a `jira:issue_updated`
//! webhook with a changelog — under each conflict policy; and the
//! reconcile tick catching a change Jira sent no webhook for. Real signed
//! webhooks (the jira preset) into `host serve` (in process); Jira's REST
//! API a recording server on loopback that can be told to refuse writes,
//! which is how a local change stays unsynced while Jira changes the field.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use host::app::App;
use host::config::Config;
use host::schedule::Ticker;
use host::store::DeliveryStatus;
use serde_json::{Value, json};

use crate::db::{TestDb, conformance};
use crate::fake_api::FakeApi;
use crate::helpers::{Running, component, fixtures};

const ADMIN: &str = "admin-token-0123456789abcdef";
const SECRET: &str = "jira-secret-0123456789";
const ISSUE: &str = "10042";
/// A year and a day: the host's own ticker ticks once, at start (before
/// any ticket exists); the test ticks past intervals of its choosing
/// (past, so their deliveries are due at once).
const INTERVAL: u64 = 31_622_400;

struct JiraSync {
    base: String,
    http: reqwest::Client,
    running: Running,
    db: TestDb,
    config: Config,
    api: FakeApi,
    /// While set, Jira answers the host's writes with 422.
    refuse: Arc<AtomicBool>,
    /// What `GET /rest/api/3/issue/{id}` answers.
    issue: Arc<Mutex<Value>>,
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures("jira").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A host with the Jira mapper, two-way, whose `sync.conflict` is `policy`.
async fn start(db: TestDb, policy: &str) -> JiraSync {
    let refuse = Arc::new(AtomicBool::new(false));
    let issue = Arc::new(Mutex::new(Value::Null));
    let (refusing, current) = (refuse.clone(), issue.clone());
    let (url, api) = FakeApi::start_with_status(move |call, _| {
        if call.method == "GET" {
            return match current.lock().unwrap().clone() {
                Value::Null => (StatusCode::NOT_FOUND, json!({"errorMessages": ["gone"]})),
                issue => (StatusCode::OK, issue),
            };
        }
        if refusing.load(Ordering::SeqCst) {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"errorMessages": ["refused"]}),
            );
        }
        (StatusCode::NO_CONTENT, Value::Null)
    })
    .await;
    let yaml = format!(
        r#"listen: 127.0.0.1:0
database: "{db}"
api:
  tokens:
    - {{name: ops, token: {ADMIN}, scope: admin}}
delivery: {{retry_base_ms: 10, retry_max_ms: 50}}
providers:
  jira:
    verify: {{preset: jira, secret: {SECRET}}}
    mapper: "{wasm}"
    mapper_config: {mapper_config}
    api: {{base_url: "{url}", timeout_ms: 2000, cache_ttl_secs: 0}}
    outbound: {{retry_base_ms: 10, retry_max_ms: 50, max_attempts: 2}}
    sync:
      conflict: {policy}
      interval_secs: {INTERVAL}
      mappings:
        fields: {{customer: customfield_10050}}
        defaults: {{project: OPS, issue_type: Incident}}
"#,
        db = db.url,
        wasm = component("jira-mapper").display(),
        mapper_config = json!({
            "bot_account_id": "712020:1f2e3d4c-sluice-bot",
            "user_directory": {
                "5b10ac8d82e05b22cc7d4ef5": "ann@example.com",
                "5b10a2844c20165700ede21c": "ben@example.com"
            }
        }),
    );
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let (base, running) = Running::start(app);
    JiraSync {
        base,
        http: reqwest::Client::new(),
        running,
        db,
        config,
        api,
        refuse,
        issue,
    }
}

impl JiraSync {
    /// A Jira webhook body, signed as Jira signs it, processed before the
    /// answer.
    async fn send(&self, body: &Value) -> Value {
        let body = body.to_string().into_bytes();
        self.http
            .post(format!("{}/hooks/jira?wait=true", self.base))
            .header("content-type", "application/json")
            .header(
                "x-hub-signature",
                crate::helpers::sha256_signature(SECRET, &body),
            )
            .header(
                "x-atlassian-webhook-identifier",
                uuid::Uuid::new_v4().to_string(),
            )
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
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn ticket(&self, guid: &str) -> Value {
        self.get(&format!("/v1/tickets/{guid}")).await
    }

    async fn history_len(&self, guid: &str) -> usize {
        let h = self.get(&format!("/v1/tickets/{guid}/history")).await;
        h["items"].as_array().unwrap().len()
    }

    /// Waits until no outbox row is pending, retrying or being sent.
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.db.outbox_depth().await.unwrap() > 0 {
            assert!(Instant::now() < deadline, "the outbox does not drain");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The bodies of the `PUT`s of the issue Jira received.
    fn puts(&self) -> Vec<Value> {
        self.api
            .calls("PUT", &format!("/rest/api/3/issue/{ISSUE}"))
            .into_iter()
            .map(|c| c.body)
            .collect()
    }

    /// Jira's new issue 10042 → a ticket (priority HIGH, the fixture's
    /// description), every field synced at creation. Its guid.
    async fn synced_issue(&self) -> String {
        let created = self
            .send(&fixture("issue_created.json")["delivery"]["body"])
            .await;
        assert_eq!(created["status"], "applied", "{created}");
        let guid = created["applied"][0]["ticket_guid"]
            .as_str()
            .unwrap()
            .to_owned();
        self.settle().await;
        // It came from Jira: nothing goes back.
        assert!(self.api.all().is_empty(), "{:?}", self.api.all());
        guid
    }

    /// Our side changes the ticket while Jira refuses the write, so the
    /// change stays unsynced.
    async fn change_here(&self, guid: &str, change: Value) {
        self.refuse.store(true, Ordering::SeqCst);
        let (status, answer) = self
            .call(
                reqwest::Method::PATCH,
                &format!("/v1/tickets/{guid}"),
                Some(change),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        self.settle().await;
        self.refuse.store(false, Ordering::SeqCst);
    }

    /// Jira's `jira:issue_updated` by Ann with this changelog item, the
    /// issue's description being `description`.
    async fn change_there(&self, item: Value, description: &str) -> Value {
        let mut body = fixture("issue_updated_fields.json")["delivery"]["body"].clone();
        body["changelog"]["items"] = json!([item]);
        body["issue"]["fields"]["description"] = json!(description);
        let out = self.send(&body).await;
        assert_eq!(out["status"], "applied", "{out}");
        out
    }

    /// Priority High → Highest in Jira, after ours moved High → LOW.
    async fn priority_moved_both_ways(&self) -> (String, Value) {
        let guid = self.synced_issue().await;
        self.change_here(
            &guid,
            json!({"priority": "LOW", "changed_by": "bob@example.com"}),
        )
        .await;
        assert_eq!(
            self.puts(),
            vec![json!({"fields": {"priority": {"name": "Low"}}})]
        );
        let out = self
            .change_there(
                json!({"fieldtype": "jira", "field": "priority", "fieldId": "priority",
                       "from": "2", "fromString": "High", "to": "1", "toString": "Highest"}),
                "Since the 14:02 deploy, EU checkout answers 502.",
            )
            .await;
        (guid, out)
    }

    /// Stores the reconcile ticks of the interval holding `now` through
    /// the host's own ticker config, and waits until each is mapped.
    async fn reconcile_at(&self, now: &str) -> Vec<String> {
        let ticker: Ticker = self.config.ticker().unwrap().expect("ticks configured");
        let now: DateTime<Utc> = DateTime::parse_from_rfc3339(now).unwrap().into();
        let ticks = ticker.tick(&self.db, now).await.unwrap();
        let mut events = Vec::new();
        for t in ticks {
            assert_eq!(t.path, format!("/tick/reconcile/{ISSUE}"));
            let deadline = Instant::now() + Duration::from_secs(30);
            let d = loop {
                let d = self.db.delivery(&t.delivery_id).await.unwrap().unwrap();
                if matches!(
                    d.status,
                    DeliveryStatus::Applied | DeliveryStatus::Ignored | DeliveryStatus::Failed
                ) {
                    break d;
                }
                assert!(Instant::now() < deadline, "tick still {:?}", d.status);
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            assert_ne!(d.status, DeliveryStatus::Failed, "{:?}", d.last_error);
            events.push(d.event_type.unwrap_or_default());
        }
        events
    }

    async fn stop(self) {
        self.running.stop().await;
    }
}

/// The plain text of an ADF document: its text nodes, hard breaks as
/// newlines, paragraphs as blank lines.
fn adf_text(doc: &Value) -> String {
    let para = |p: &Value| -> String {
        p["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| match n["type"].as_str() {
                Some("hardBreak") => "\n".to_owned(),
                _ => n["text"].as_str().unwrap().to_owned(),
            })
            .collect()
    };
    let paras: Vec<String> = doc["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(para)
        .collect();
    paras.join("\n\n")
}

conformance!(
    external_policy_takes_jiras_value,
    local_policy_keeps_ours_and_puts_it_back_to_jira,
    manual_policy_records_a_conflict_resolved_through_the_api,
    merge_policy_joins_both_descriptions_and_sends_them_to_jira,
    reconcile_tick_catches_a_missed_webhook_once,
);

async fn external_policy_takes_jiras_value(db: TestDb) {
    let s = start(db, "external").await;
    let (guid, out) = s.priority_moved_both_ways().await;
    assert_eq!(
        out["applied"][0]["conflicts"],
        json!([{"field": "priority", "policy": "external"}]),
        "{out}"
    );
    assert_eq!(s.ticket(&guid).await["priority"], "CRITICAL");
    s.settle().await;
    // Theirs came from Jira: nothing more went to it.
    assert_eq!(s.puts().len(), 1, "{:?}", s.api.all());
    assert_eq!(s.get("/v1/conflicts").await["items"], json!([]));
    s.stop().await;
}

async fn local_policy_keeps_ours_and_puts_it_back_to_jira(db: TestDb) {
    let s = start(db, "local").await;
    let (guid, out) = s.priority_moved_both_ways().await;
    assert_eq!(out["applied"][0]["changed"], false, "{out}");
    assert_eq!(
        out["applied"][0]["conflicts"],
        json!([{"field": "priority", "policy": "local"}]),
        "{out}"
    );
    assert_eq!(s.ticket(&guid).await["priority"], "LOW");
    s.settle().await;
    // Ours went back to Jira, once, as Jira takes an edit.
    assert_eq!(
        s.puts(),
        vec![
            json!({"fields": {"priority": {"name": "Low"}}}),
            json!({"fields": {"priority": {"name": "Low"}}})
        ]
    );
    assert_eq!(s.get("/v1/conflicts").await["items"], json!([]));
    s.stop().await;
}

async fn manual_policy_records_a_conflict_resolved_through_the_api(db: TestDb) {
    let s = start(db, "manual").await;
    let (guid, out) = s.priority_moved_both_ways().await;
    let id = out["applied"][0]["conflicts"][0]["conflict_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no conflict in {out}"));
    // Neither value applied until someone chooses.
    assert_eq!(s.ticket(&guid).await["priority"], "LOW");
    let open = s
        .get(&format!(
            "/v1/conflicts?state=open&ticket={guid}&provider=jira"
        ))
        .await;
    assert_eq!(open["items"].as_array().unwrap().len(), 1, "{open}");
    let c = &open["items"][0];
    assert_eq!(c["id"], id);
    assert_eq!(c["field"], "priority");
    assert_eq!(c["policy"], "manual");
    assert_eq!(c["base_value"], "HIGH", "{c}");
    assert_eq!(c["local_value"], "LOW", "{c}");
    assert_eq!(c["external_value"], "CRITICAL", "{c}");
    assert_eq!(c["delivery_id"], out["delivery_id"]);
    s.settle().await;
    assert_eq!(s.puts().len(), 1, "{:?}", s.api.all());

    let (status, resolved) = s
        .call(
            reqwest::Method::POST,
            &format!("/v1/conflicts/{id}/resolve"),
            Some(json!({"choose": "external"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["state"], "resolved");
    assert_eq!(resolved["resolution"], "external");
    assert_eq!(resolved["resolved_by"], "ops");
    assert_eq!(s.ticket(&guid).await["priority"], "CRITICAL");
    assert_eq!(s.get("/v1/conflicts?state=open").await["items"], json!([]));
    s.settle().await;
    // Jira's own value: nothing to send it.
    assert_eq!(s.puts().len(), 1, "{:?}", s.api.all());
    s.stop().await;
}

async fn merge_policy_joins_both_descriptions_and_sends_them_to_jira(db: TestDb) {
    let s = start(db, "merge").await;
    let guid = s.synced_issue().await;
    s.change_here(
        &guid,
        json!({"description": "Rolled back the deploy", "changed_by": "bob@example.com"}),
    )
    .await;
    assert_eq!(s.puts().len(), 1, "{:?}", s.api.all());
    let out = s
        .change_there(
            json!({"fieldtype": "jira", "field": "description", "fieldId": "description",
                   "from": null, "fromString": "Since the 14:02 deploy", "to": null,
                   "toString": "Failing over to the US"}),
            "Failing over to the US region",
        )
        .await;
    assert_eq!(
        out["applied"][0]["conflicts"],
        json!([{"field": "description", "policy": "merge"}]),
        "{out}"
    );
    let merged = "Rolled back the deploy\n---\nFailing over to the US region";
    assert_eq!(s.ticket(&guid).await["description"], merged);
    s.settle().await;
    // Both texts went to Jira, as a document.
    let puts = s.puts();
    assert_eq!(puts.len(), 2, "{:?}", s.api.all());
    assert_eq!(adf_text(&puts[1]["fields"]["description"]), merged);
    assert_eq!(
        puts[1]["fields"].as_object().unwrap().len(),
        1,
        "{}",
        puts[1]
    );
    assert_eq!(s.get("/v1/conflicts").await["items"], json!([]));
    s.stop().await;
}

async fn reconcile_tick_catches_a_missed_webhook_once(db: TestDb) {
    let s = start(db, "external").await;
    let guid = s.synced_issue().await;
    assert_eq!(s.ticket(&guid).await["status"], "NEW");
    // In Jira the issue moves to In Progress; no webhook comes.
    let mut issue = fixture("issue_created.json")["delivery"]["body"]["issue"].clone();
    issue["fields"]["status"] = json!({"name": "In Progress"});
    *s.issue.lock().unwrap() = issue;

    let before = s.history_len(&guid).await;
    let events = s.reconcile_at("2020-06-01T00:00:00Z").await;
    assert_eq!(events, vec!["reconcile"]);
    let ticket = s.ticket(&guid).await;
    assert_eq!(ticket["status"], "IN_PROGRESS", "{ticket}");
    // Only the status moved: everything else read back is as synced.
    assert_eq!(ticket["priority"], "HIGH");
    assert_eq!(ticket["assignee"], "ann@example.com");
    let after = s.history_len(&guid).await;
    assert_eq!(
        after,
        before + 1,
        "{}",
        s.get(&format!("/v1/tickets/{guid}/history")).await
    );
    let reads = s
        .api
        .calls("GET", &format!("/rest/api/3/issue/{ISSUE}?fields="));
    assert_eq!(reads.len(), 1, "{:?}", s.api.all());

    // The next interval, nothing new in Jira: read again, nothing changes.
    let events = s.reconcile_at("2022-06-01T00:00:00Z").await;
    assert_eq!(events, vec!["reconcile"]);
    assert_eq!(s.api.calls("GET", "/rest/api/3/issue/").len(), 2);
    assert_eq!(s.history_len(&guid).await, after);
    s.settle().await;
    // It came from Jira: nothing went back.
    assert!(
        s.api.all().iter().all(|c| c.method == "GET"),
        "{:?}",
        s.api.all()
    );

    // The issue gone: nothing to do, and said so.
    *s.issue.lock().unwrap() = Value::Null;
    let events = s.reconcile_at("2024-06-01T00:00:00Z").await;
    assert_eq!(events, vec!["reconcile_missing"]);
    assert_eq!(s.ticket(&guid).await["status"], "IN_PROGRESS");
    s.stop().await;
}
