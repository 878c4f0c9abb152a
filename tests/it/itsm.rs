//! Seed 004's ITSM round trips with the built-in Jira, PagerDuty and
//! ServiceNow mappers, each hop exactly once: a PagerDuty incident
//! triggered opens a ticket, the host opens its Jira issue and links it by
//! the issue id, Jira resolving the issue resolves the ticket and the
//! ticket's PagerDuty incident; the echoes of our own writes (the issue we
//! created, the incident we resolved) are ignored. And a ServiceNow
//! incident inserted by the business rule opens a ticket whose comment
//! goes back as a work note. Real signed webhooks into `host serve` (in
//! process); each provider's API is a recording server on loopback.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use host::app::App;
use host::config::Config;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::db::{TestDb, conformance};
use crate::fake_api::{Call, FakeApi};
use crate::helpers::{Running, component, fixtures};

const ADMIN: &str = "admin-token-0123456789abcdef";
const PD_SECRET: &str = "pd-secret-0123456789";
const JIRA_SECRET: &str = "jira-secret-0123456789";
const SN_SECRET: &str = "sn-secret-0123456789";
const INCIDENT: &str = "Q1ABCDEF";
const ISSUE: &str = "10042";
const SYS_ID: &str = "9d385017c611228701d22104cc95c371";

/// Jira's REST API as the mapper uses it: a created issue gets id 10042.
fn jira(call: &Call, _n: usize) -> (StatusCode, Value) {
    match (call.method.as_str(), call.path.as_str()) {
        ("POST", "/rest/api/3/issue") => (
            StatusCode::CREATED,
            json!({"id": ISSUE, "key": "OPS-17", "self": "https://acme.atlassian.net/rest/api/3/issue/10042"}),
        ),
        _ => (StatusCode::NO_CONTENT, Value::Null),
    }
}

/// PagerDuty's REST API: every write answers the incident.
fn pagerduty(call: &Call, _n: usize) -> Value {
    json!({"incident": {"id": INCIDENT, "status": call.body["incident"]["status"]}})
}

/// ServiceNow's Table API: every write answers the record.
fn servicenow(_call: &Call, _n: usize) -> Value {
    json!({"result": {"sys_id": SYS_ID, "number": "INC0010042"}})
}

struct Itsm {
    base: String,
    http: reqwest::Client,
    running: Running,
    db: TestDb,
}

fn fixture(mapper: &str, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures(mapper).join(name)).unwrap()).unwrap()
}

/// A provider block: the built-in mapper, its fixtures' config with
/// `extra` merged in, its API on `url`, outbound on.
fn provider(name: &str, secret: &str, config_from: &str, extra: Value, url: &str) -> String {
    let mut config = fixture(name, config_from)["config"].clone();
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    // Field mappings live in the provider's `sync:` block, from which the
    // host hands them to the mapper (checked) under the same key.
    let mappings = config
        .as_object_mut()
        .unwrap()
        .remove("mappings")
        .map(|m| format!("    sync: {{mappings: {m}}}\n"))
        .unwrap_or_default();
    format!(
        r#"  {name}:
    verify: {{secret: {secret}}}
    mapper: "{mapper}"
    mapper_config: {config}
    api: {{base_url: "{url}"}}
    outbound: {{retry_base_ms: 10, retry_max_ms: 50}}
{mappings}"#,
        mapper = component(&format!("{name}-mapper")).display(),
    )
}

async fn start(db: TestDb, providers: &[String]) -> Itsm {
    let yaml = format!(
        r#"listen: 127.0.0.1:0
database: "{db}"
api:
  tokens:
    - {{name: ops, token: {ADMIN}, scope: admin}}
delivery: {{retry_base_ms: 10, retry_max_ms: 50}}
providers:
{providers}"#,
        db = db.url,
        providers = providers.concat(),
    );
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let (base, running) = Running::start(app);
    Itsm {
        base,
        http: reqwest::Client::new(),
        running,
        db,
    }
}

fn hmac(secret: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

impl Itsm {
    /// Sends a mapper fixture's delivery body, signed as the provider
    /// signs, and answers its outcome.
    async fn send(&self, mapper: &str, name: &str) -> Value {
        let body = fixture(mapper, name)["delivery"]["body"]
            .to_string()
            .into_bytes();
        let id = uuid::Uuid::new_v4().to_string();
        let req = self
            .http
            .post(format!("{}/hooks/{mapper}?wait=true", self.base))
            .header("content-type", "application/json");
        let req = match mapper {
            "pagerduty" => req
                .header(
                    "x-pagerduty-signature",
                    format!("v1={}", hex::encode(hmac(PD_SECRET, &body))),
                )
                .header("x-webhook-id", &id),
            "jira" => req
                .header(
                    "x-hub-signature",
                    format!("sha256={}", hex::encode(hmac(JIRA_SECRET, &body))),
                )
                .header("x-atlassian-webhook-identifier", &id),
            _ => req
                .header(
                    "x-sluice-signature",
                    base64::engine::general_purpose::STANDARD.encode(hmac(SN_SECRET, &body)),
                )
                .header("user-agent", "ServiceNow/1.0"),
        };
        req.body(body).send().await.unwrap().json().await.unwrap()
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

    /// The only ticket there is.
    async fn ticket(&self) -> Value {
        let list = self.api(Method::GET, "/v1/tickets", None).await;
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{list}");
        let guid = items[0]["guid"].as_str().unwrap();
        self.api(Method::GET, &format!("/v1/tickets/{guid}"), None)
            .await
    }

    async fn no_failures(&self) {
        let failed = self
            .api(Method::GET, "/v1/outbox?status=failed", None)
            .await;
        assert_eq!(failed["items"], json!([]), "{failed}");
        for status in ["failed", "dead"] {
            let bad = self
                .api(
                    Method::GET,
                    &format!("/v1/deliveries?status={status}"),
                    None,
                )
                .await;
            assert_eq!(bad["items"], json!([]), "{bad}");
        }
    }
}

fn link_of(ticket: &Value, provider: &str) -> Option<String> {
    ticket["links"]
        .as_array()?
        .iter()
        .find(|l| l["provider"] == provider)
        .and_then(|l| l["external_id"].as_str())
        .map(str::to_owned)
}

conformance!(
    a_pagerduty_incident_reaches_jira_and_jira_resolves_it_once,
    a_servicenow_incident_gets_the_tickets_comment_as_a_work_note,
);

async fn a_pagerduty_incident_reaches_jira_and_jira_resolves_it_once(db: TestDb) {
    let (jira_url, jira_api) = FakeApi::start_with_status(jira).await;
    let (pd_url, pd_api) = FakeApi::start(pagerduty).await;
    let itsm = start(
        db,
        &[
            provider(
                "pagerduty",
                PD_SECRET,
                "out_create_incident.json",
                json!({}),
                &pd_url,
            ),
            provider(
                "jira",
                JIRA_SECRET,
                "issue_resolved.json",
                json!({"mappings": {"defaults": {"project": "OPS", "issue_type": "Incident"}}}),
                &jira_url,
            ),
        ],
    )
    .await;

    // PagerDuty: an incident is triggered → a ticket linked to it.
    let out = itsm.send("pagerduty", "incident_triggered.json").await;
    assert_eq!(out["status"], "applied", "{out}");
    itsm.settle().await;
    let ticket = itsm.ticket().await;
    assert_eq!(ticket["priority"], "CRITICAL", "{ticket}");
    assert_eq!(link_of(&ticket, "pagerduty").as_deref(), Some(INCIDENT));

    // → one Jira issue in the configured project, linked by its id.
    let creates = jira_api.calls("POST", "/rest/api/3/issue");
    assert_eq!(creates.len(), 1, "{:?}", jira_api.all());
    let fields = &creates[0].body["fields"];
    assert_eq!(fields["project"]["key"], "OPS");
    assert_eq!(fields["issuetype"]["name"], "Incident");
    assert_eq!(fields["summary"], "checkout latency over 2 s");
    assert_eq!(fields["priority"]["name"], "Highest");
    assert_eq!(fields["description"]["type"], "doc");
    assert_eq!(link_of(&ticket, "jira").as_deref(), Some(ISSUE), "{ticket}");
    // Nothing went back to PagerDuty: the ticket came from there.
    assert_eq!(pd_api.all().len(), 0, "{:?}", pd_api.all());

    // Jira sends the issue we created back, made by our integration user.
    let out = itsm
        .send("jira", "ignored_own_bot_issue_created.json")
        .await;
    assert_eq!(out["status"], "ignored", "{out}");

    // Jira: the issue is resolved → the ticket is resolved …
    let out = itsm.send("jira", "issue_resolved.json").await;
    assert_eq!(out["status"], "applied", "{out}");
    itsm.settle().await;
    let ticket = itsm.ticket().await;
    assert_eq!(ticket["status"], "RESOLVED", "{ticket}");
    // … and its PagerDuty incident, once, as PagerDuty wants writes.
    let puts = pd_api.calls("PUT", &format!("/incidents/{INCIDENT}"));
    assert_eq!(puts.len(), 1, "{:?}", pd_api.all());
    assert_eq!(
        puts[0].body,
        json!({"incident": {"type": "incident_reference", "status": "resolved"}})
    );
    assert_eq!(puts[0].header("from"), Some("sluice-bot@example.com"));
    assert_eq!(pd_api.all().len(), 1, "{:?}", pd_api.all());

    // PagerDuty sends our resolution back: ignored, nothing more sent.
    let out = itsm.send("pagerduty", "ignored_own_bot_user.json").await;
    assert_eq!(out["status"], "ignored", "{out}");
    itsm.settle().await;
    assert_eq!(pd_api.all().len(), 1, "{:?}", pd_api.all());
    // Jira saw the create and nothing else: the resolve came from Jira.
    assert_eq!(jira_api.all().len(), 1, "{:?}", jira_api.all());
    itsm.no_failures().await;
    itsm.running.stop().await;
}

async fn a_servicenow_incident_gets_the_tickets_comment_as_a_work_note(db: TestDb) {
    let (sn_url, sn_api) = FakeApi::start(servicenow).await;
    let itsm = start(
        db,
        &[provider(
            "servicenow",
            SN_SECRET,
            "incident_created.json",
            json!({}),
            &sn_url,
        )],
    )
    .await;

    // The business rule posts an insert → a ticket linked by sys_id.
    let out = itsm.send("servicenow", "incident_created.json").await;
    assert_eq!(out["status"], "applied", "{out}");
    let ticket = itsm.ticket().await;
    let guid = ticket["guid"].as_str().unwrap().to_owned();
    assert_eq!(link_of(&ticket, "servicenow").as_deref(), Some(SYS_ID));
    assert_eq!(ticket["fields"]["severity"], "SEV-1", "{ticket}");
    itsm.settle().await;
    assert_eq!(sn_api.all().len(), 0, "{:?}", sn_api.all());

    // A comment on the ticket → one work note on the incident.
    itsm.api(
        Method::POST,
        &format!("/v1/tickets/{guid}/notes"),
        Some(json!({"comment": "Customer confirms it is back", "author": "ann@example.com"})),
    )
    .await;
    itsm.settle().await;
    let patches = sn_api.calls(
        "PATCH",
        &format!("/api/now/table/incident/{SYS_ID}?sysparm_input_display_value=true"),
    );
    assert_eq!(patches.len(), 1, "{:?}", sn_api.all());
    assert_eq!(
        patches[0].body,
        json!({"work_notes": "Customer confirms it is back\n\n— ann@example.com"})
    );

    // The rule reports our own work note back: ignored.
    let out = itsm
        .send("servicenow", "ignored_own_integration_user.json")
        .await;
    assert_eq!(out["status"], "ignored", "{out}");
    itsm.settle().await;
    assert_eq!(sn_api.all().len(), 1, "{:?}", sn_api.all());
    itsm.no_failures().await;
    itsm.running.stop().await;
}
