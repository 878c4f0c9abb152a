//! Seed 000's PR flow to its end, with the built-in mappers: a ticket is
//! opened, a pull request on its branch requests the reviewers' sign-offs
//! (a Slack DM with Approve/Reject buttons each), the approvals complete
//! the set (A APPROVED, `fully_signed`), the merge resolves the ticket, and
//! the resolve reaches Slack (a message in the channel) and Asana (the
//! ticket's task, created by the host when the ticket was, is completed) —
//! each exactly once. Real signed webhooks into `host serve` (in process);
//! the Slack, Asana and GitHub APIs are recording servers on loopback
//! answering as those APIs do.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::Method;
use hmac::{Hmac, Mac};
use host::app::App;
use host::config::Config;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::db::{TestDb, conformance};
use crate::fake_api::{Call, FakeApi};
use crate::helpers::{Running, component, fixtures};

const ADMIN: &str = "admin-token-0123456789abcdef";
const BB_SECRET: &str = "bb-secret-0123456789";
const GH_SECRET: &str = "gh-secret-0123456789";
const CHANNEL: &str = "C0AXIONALR";
const PROJECT: &str = "1203000000000001";

/// Slack's Web API as the mapper uses it.
fn slack(call: &Call, n: usize) -> Value {
    if call.path.starts_with("/users.lookupByEmail") {
        let email = call.path.split("email=").nth(1).unwrap_or("");
        return json!({"ok": true, "user": {"id": format!("U{}", email.len()), "profile": {"email": email}}});
    }
    if call.path == "/chat.postMessage" {
        return json!({"ok": true, "channel": call.body["channel"], "ts": format!("1700000000.{n:06}")});
    }
    json!({"ok": true})
}

/// Asana's API as the mapper uses it.
fn asana(call: &Call, n: usize) -> Value {
    match (call.method.as_str(), call.path.as_str()) {
        ("POST", "/tasks") => {
            json!({"data": {"gid": format!("1209{n:012}"), "name": call.body["data"]["name"]}})
        }
        (_, p) if p.starts_with("/tasks/") => {
            json!({"data": {"gid": p.trim_start_matches("/tasks/"), "completed": true}})
        }
        _ => json!({"data": {}}),
    }
}

struct Flow {
    base: String,
    http: reqwest::Client,
    running: Running,
    db: TestDb,
}

async fn flow(db: TestDb, slack_url: &str, asana_url: &str, github_url: &str) -> Flow {
    let bb_directory = fixture("bitbucket", "pr_created_ticket_branch.json")["config"].to_string();
    let gh_directory = fixture("github", "pr_opened_ticket_branch.json")["config"].to_string();
    let yaml = format!(
        r#"listen: 127.0.0.1:0
database: "{db}"
api:
  tokens:
    - {{name: ops, token: {ADMIN}, scope: admin}}
delivery: {{retry_base_ms: 10, retry_max_ms: 50}}
providers:
  bitbucket:
    verify: {{secret: {BB_SECRET}}}
    mapper: "{bb}"
    mapper_config: {bb_directory}
  github:
    verify: {{secret: {GH_SECRET}}}
    mapper: "{gh}"
    mapper_config: {gh_directory}
    api: {{base_url: "{github_url}"}}
  slack:
    verify: {{secret: slack-signing-0123456789}}
    mapper: "{slack}"
    mapper_config: {{channel: {CHANNEL}, bot_user_id: U0SLUICEBOT}}
    api: {{base_url: "{slack_url}"}}
    outbound: {{ok_pointer: /ok, retry_base_ms: 10, retry_max_ms: 50}}
  asana:
    verify: {{secret: asana-handshake-0123456789}}
    mapper: "{asana}"
    mapper_config: {{project_gid: "{PROJECT}", bot_user_gid: "1201999999999999"}}
    api: {{base_url: "{asana_url}"}}
    outbound: {{retry_base_ms: 10, retry_max_ms: 50}}
"#,
        db = db.url,
        bb = component("bitbucket-mapper").display(),
        gh = component("github-mapper").display(),
        slack = component("slack-mapper").display(),
        asana = component("asana-mapper").display(),
    );
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let (base, running) = Running::start(app);
    Flow {
        base,
        http: reqwest::Client::new(),
        running,
        db,
    }
}

fn fixture(mapper: &str, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures(mapper).join(name)).unwrap()).unwrap()
}

impl Flow {
    /// Sends a mapper fixture's delivery with the ticket's branch in place
    /// of the fixture's, signed as the provider signs, and waits for its
    /// outcome.
    async fn send(&self, mapper: &str, name: &str, guid: &str) -> Value {
        let f = fixture(mapper, name);
        let body = f["delivery"]["body"]
            .to_string()
            .replace("feat/ticket-abc123", &format!("feat/ticket-{guid}"))
            .into_bytes();
        let (secret, header, prefix) = match mapper {
            "bitbucket" => (BB_SECRET, "x-hub-signature", "sha256="),
            _ => (GH_SECRET, "x-hub-signature-256", "sha256="),
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&body);
        let mut req = self
            .http
            .post(format!("{}/hooks/{mapper}?wait=true", self.base))
            .header(
                header,
                format!("{prefix}{}", hex::encode(mac.finalize().into_bytes())),
            );
        for (k, v) in f["delivery"]["headers"].as_object().unwrap() {
            let k = k.to_ascii_lowercase();
            if k.starts_with("x-hub-signature") || k == "x-request-uuid" || k == "x-github-delivery"
            {
                continue;
            }
            req = req.header(k, v.as_str().unwrap());
        }
        let id = uuid::Uuid::new_v4().to_string();
        let out: Value = req
            .header("x-request-uuid", &id)
            .header("x-github-delivery", &id)
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(out["status"], "applied", "{name}: {out}");
        out
    }

    async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.db.outbox_depth().await.unwrap() > 0 {
            assert!(Instant::now() < deadline, "the outbox does not drain");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.running.stop().await;
    }
}

conformance!(
    a_bitbucket_pr_flow_ends_in_slack_and_asana_once,
    a_github_pr_flow_ends_in_slack_and_asana_once,
);

async fn a_bitbucket_pr_flow_ends_in_slack_and_asana_once(db: TestDb) {
    pr_flow(
        db,
        "bitbucket",
        [
            "pr_created_ticket_branch.json",
            "pr_approved_partial.json",
            "pr_approved_completes.json",
            "pr_merged.json",
        ],
    )
    .await;
}

async fn a_github_pr_flow_ends_in_slack_and_asana_once(db: TestDb) {
    pr_flow(
        db,
        "github",
        [
            "pr_opened_ticket_branch.json",
            "pr_review_approved_partial.json",
            "pr_review_approved_completes.json",
            "pr_merged.json",
        ],
    )
    .await;
}

async fn pr_flow(db: TestDb, mapper: &str, steps: [&str; 4]) {
    let (slack_url, slack_api) = FakeApi::start(slack).await;
    let (asana_url, asana_api) = FakeApi::start(asana).await;
    // GitHub's reviews API answers from the approval fixtures' recordings.
    let recorded: BTreeMap<String, Value> = steps
        .iter()
        .filter(|_| mapper == "github")
        .filter_map(|s| fixture("github", s)["api"].as_array().cloned())
        .flatten()
        .filter_map(|a| {
            Some((
                a["request"]["path"].as_str()?.to_owned(),
                a["response"]["body"].clone(),
            ))
        })
        .collect();
    let (github_url, _github_api) =
        FakeApi::start(move |call, _| recorded.get(&call.path).cloned().unwrap_or(Value::Null))
            .await;
    let flow = flow(db, &slack_url, &asana_url, &github_url).await;

    // The ticket is opened; the host makes its Asana task.
    let ticket = flow
        .api(
            Method::POST,
            "/v1/tickets",
            Some(json!({"subject": "Export invoices as CSV", "ticket_type": "FEATURE"})),
        )
        .await;
    let guid = ticket["guid"].as_str().unwrap().to_owned();
    flow.settle().await;
    let task_posts = asana_api.calls("POST", "/tasks");
    assert_eq!(task_posts.len(), 1, "{task_posts:?}");
    assert_eq!(task_posts[0].body["data"]["projects"], json!([PROJECT]));

    // The PR, its approvals, its merge.
    let [opened, partial, completes, merged] = steps;
    flow.send(mapper, opened, &guid).await;
    flow.settle().await;
    // Each pending reviewer got one DM with the buttons.
    let dms: Vec<Call> = slack_api
        .calls("POST", "/chat.postMessage")
        .into_iter()
        .filter(|c| c.body["channel"] != CHANNEL)
        .collect();
    assert_eq!(dms.len(), 2, "{dms:?}");
    for dm in &dms {
        let text = dm.body.to_string();
        assert!(
            text.contains("approval_approve") && text.contains("approval_reject"),
            "{text}"
        );
        assert!(text.contains(&guid), "{text}");
    }
    flow.send(mapper, partial, &guid).await;
    flow.send(mapper, completes, &guid).await;
    let detail = flow
        .api(Method::GET, &format!("/v1/tickets/{guid}"), None)
        .await;
    assert_eq!(detail["fully_signed"]["Development"], true, "{detail}");
    flow.send(mapper, merged, &guid).await;
    flow.settle().await;

    let detail = flow
        .api(Method::GET, &format!("/v1/tickets/{guid}"), None)
        .await;
    assert_eq!(detail["status"], "RESOLVED");
    // One message in the channel, naming the ticket.
    let notices = slack_api
        .calls("POST", "/chat.postMessage")
        .into_iter()
        .filter(|c| c.body["channel"] == CHANNEL)
        .collect::<Vec<_>>();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0]
            .body
            .to_string()
            .contains("Export invoices as CSV")
    );
    // The ticket's Asana task completed, once.
    let gid = detail["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["provider"] == "asana")
        .unwrap()["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let completions = asana_api.calls("PUT", &format!("/tasks/{gid}"));
    assert_eq!(completions.len(), 1, "{completions:?}");
    assert_eq!(completions[0].body["data"]["completed"], true);
    // Nothing failed on the way.
    let failed = flow
        .api(Method::GET, "/v1/outbox?status=failed", None)
        .await;
    assert_eq!(failed["items"], json!([]), "{failed}");
    flow.stop().await;
}
