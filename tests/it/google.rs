//! Google end to end, with the built-in Google mapper behind `host serve`
//! (in process) and Google's APIs as recording servers on loopback:
//! a Gmail Pub/Sub push carrying a real OIDC JWT (RS256, keys from a JWKS
//! on loopback) opens a ticket with the sender as requester and their I
//! sign-off; a header-only Calendar notification with its channel token
//! escalates that ticket with the due event's summary; an Apps Script
//! form post signed with HMAC opens another ticket. Redeliveries (the
//! same Pub/Sub message id, the same channel message number) are stored
//! once.

use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use host::app::App;
use host::config::Config;
use host::store::DeliveryStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::db::{TestDb, conformance};
use crate::fake_api::{Call, FakeApi};
use crate::helpers::{Running, component, until_done};
use crate::oidc::{AUDIENCE, KEY_A_PEM, PUSH_EMAIL, PUSH_TOKEN, claims, jwks, push_body, token};

const ADMIN: &str = "admin-token-0123456789abcdef";
const CHANNEL_TOKEN: &str = "calendar-channel-token-0123456789";
const SCRIPT_SECRET: &str = "apps-script-secret-0123456789";
const MAILBOX: &str = "support@axion.test";
const CALENDAR: &str = "c_sla%40group.calendar.google.com";

/// Gmail's API: one new message since the cursor.
fn gmail(call: &Call, _: usize) -> Value {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE.encode(s);
    if call.path.contains("/history?") {
        return json!({
            "history": [{"id": "1005", "messagesAdded": [{"message": {"id": "18c2f0a1", "threadId": "18c2f0a1", "labelIds": ["INBOX", "UNREAD"]}}]}],
            "historyId": "1010"
        });
    }
    if call.path.contains("/messages/18c2f0a1") {
        return json!({
            "id": "18c2f0a1", "threadId": "18c2f0a1", "labelIds": ["INBOX", "UNREAD"],
            "payload": {
                "mimeType": "text/plain",
                "headers": [
                    {"name": "From", "value": "Ann Lee <ann@customer.io>"},
                    {"name": "Subject", "value": "Invoice export fails"}
                ],
                "body": {"data": b64("The export answers 500 since this morning.")}
            }
        });
    }
    json!({})
}

/// Calendar's API: one event linked to `guid`, started a minute ago.
fn calendar(guid: &Mutex<String>) -> impl Fn(&Call, usize) -> Value + Send + Sync + 'static {
    let start = chrono::Utc::now() - chrono::Duration::minutes(1);
    calendar_event(guid.lock().unwrap().clone(), start)
}

/// Calendar's API: one event linked to `guid`, starting at `start`.
fn calendar_event(
    guid: String,
    start: chrono::DateTime<chrono::Utc>,
) -> impl Fn(&Call, usize) -> Value + Send + Sync + 'static {
    let start = start.to_rfc3339();
    move |call, _| {
        if !call
            .path
            .starts_with(&format!("/calendar/v3/calendars/{CALENDAR}/events"))
        {
            return json!({});
        }
        json!({
            "items": [{
                "id": "sla01", "status": "confirmed", "summary": "SLA deadline: invoice export",
                "start": {"dateTime": start}, "end": {"dateTime": start},
                "extendedProperties": {"private": {"ticket_guid": guid}}
            }],
            "nextSyncToken": "sync-2"
        })
    }
}

struct Google {
    base: String,
    http: reqwest::Client,
    running: Running,
    db: TestDb,
}

async fn start(db: TestDb, jwks_url: &str, gmail_url: &str, calendar_url: &str) -> Google {
    let yaml = format!(
        r#"listen: 127.0.0.1:0
database: "{db}"
api:
  tokens:
    - {{name: ops, token: {ADMIN}, scope: admin}}
delivery: {{retry_base_ms: 10, retry_max_ms: 50}}
providers:
  gmail:
    verify:
      secret: {PUSH_TOKEN}
      oidc: {{jwks_url: "{jwks_url}/certs", audience: "{AUDIENCE}", email: {PUSH_EMAIL}}}
    mapper: "{wasm}"
    api: {{base_url: "{gmail_url}"}}
  calendar:
    verify: {{preset: google, secret: {CHANNEL_TOKEN}}}
    mapper: "{wasm}"
    api: {{base_url: "{calendar_url}"}}
  forms:
    verify: {{preset: apps_script, secret: {SCRIPT_SECRET}}}
    mapper: "{wasm}"
"#,
        db = db.url,
        wasm = component("google-mapper").display(),
    );
    let config = Config::parse(&yaml, Path::new("/google.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let (base, running) = Running::start(app);
    Google {
        base,
        http: reqwest::Client::new(),
        running,
        db,
    }
}

impl Google {
    async fn gmail_push(&self, message_id: &str, history_id: u64) -> (StatusCode, Value) {
        let jwt = token(KEY_A_PEM, "key-a", &claims(chrono::Utc::now().timestamp()));
        let resp = self
            .http
            .post(format!(
                "{}/hooks/gmail?token={PUSH_TOKEN}&wait=true",
                self.base
            ))
            .bearer_auth(jwt)
            .header("content-type", "application/json")
            .body(push_body(message_id, MAILBOX, history_id))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    async fn calendar_notification(&self, number: u32) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}/hooks/calendar?wait=true", self.base))
            .header("x-goog-channel-id", "sluice-calendar-01")
            .header("x-goog-channel-token", CHANNEL_TOKEN)
            .header("x-goog-message-number", number.to_string())
            .header("x-goog-resource-id", "ret08u3rv24htgh289g")
            .header(
                "x-goog-resource-uri",
                format!(
                    "https://www.googleapis.com/calendar/v3/calendars/{CALENDAR}/events?alt=json"
                ),
            )
            .header("x-goog-resource-state", "exists")
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    async fn form_post(&self, body: &Value) -> Value {
        let body = body.to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(SCRIPT_SECRET.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        self.http
            .post(format!("{}/hooks/forms?wait=true", self.base))
            .header("x-sluice-signature", signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn ticket(&self, guid: &str) -> Value {
        self.http
            .get(format!("{}/v1/tickets/{guid}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

conformance!(
    gmail_calendar_and_forms_reach_tickets,
    a_tick_escalates_a_calendar_event_once_when_its_start_comes
);

async fn gmail_calendar_and_forms_reach_tickets(db: TestDb) {
    let (jwks_url, _jwks) = FakeApi::start(|_: &Call, _| jwks(false)).await;
    let (gmail_url, gmail_api) = FakeApi::start(gmail).await;
    let guid_seen = Arc::new(Mutex::new(String::new()));
    let g = guid_seen.clone();
    let (calendar_url, calendar_api) =
        FakeApi::start(move |call: &Call, n| calendar(&g)(call, n)).await;
    let google = start(db, &jwks_url, &gmail_url, &calendar_url).await;

    // The mailbox's first push only sets the cursor.
    let (status, first) = google.gmail_push("pubsub-1", 1000).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["status"], "ignored", "{first}");
    assert!(gmail_api.calls("GET", "/").is_empty());
    let state: Value = google
        .http
        .get(format!("{}/v1/providers/gmail/state", google.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(state.to_string().contains("1000"), "{state}");

    // The next reads history from it: a ticket with requester and sign-off.
    let (status, second) = google.gmail_push("pubsub-2", 1010).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["status"], "applied", "{second}");
    assert_eq!(second["event_type"], "email_received");
    let history = gmail_api.calls("GET", "/gmail/v1/users/support%40axion.test/history");
    assert_eq!(history.len(), 1);
    assert!(
        history[0].path.contains("startHistoryId=1000"),
        "{:?}",
        history[0].path
    );
    let guid = second["applied"][0]["ticket_guid"]
        .as_str()
        .unwrap()
        .to_owned();
    let ticket = google.ticket(&guid).await;
    assert_eq!(ticket["subject"], "Invoice export fails", "{ticket}");
    assert_eq!(ticket["requested_by"], "ann@customer.io");
    assert_eq!(
        ticket["signoffs"][0]["activity"], "Outcome Monitoring",
        "{ticket}"
    );
    assert_eq!(ticket["signoffs"][0]["role"], "I");
    assert_eq!(ticket["signoffs"][0]["email"], "ann@customer.io");

    // Pub/Sub redelivers the same message: stored once, not mapped again.
    let (status, again) = google.gmail_push("pubsub-2", 1010).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(
        gmail_api
            .calls("GET", "/gmail/v1/users/support%40axion.test/history")
            .len(),
        1
    );

    // A push without the token's signature is refused.
    let resp = google
        .http
        .post(format!("{}/hooks/gmail?token={PUSH_TOKEN}", google.base))
        .body(push_body("pubsub-3", MAILBOX, 1020))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Calendar: the linked event is due, the ticket escalates.
    *guid_seen.lock().unwrap() = guid.clone();
    let (status, due) = google.calendar_notification(7).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(due["status"], "applied", "{due}");
    assert_eq!(due["event_type"], "calendar_due");
    assert_eq!(due["actions"][0]["reason"], "SLA deadline: invoice export");
    let ticket = google.ticket(&guid).await;
    assert_eq!(ticket["status"], "ESCALATED", "{ticket}");
    assert_eq!(calendar_api.calls("GET", "/calendar/v3/").len(), 1);
    // The same channel message again: a duplicate.
    let (status, again) = google.calendar_notification(7).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(calendar_api.calls("GET", "/calendar/v3/").len(), 1);

    // An Apps Script form submission opens a ticket from its answers.
    let form = json!({
        "source": "forms", "event": "submit", "id": "5b1c3e4a", "at": "2026-11-30T09:02:00.000Z",
        "form": {"id": "1FAIpQLSd", "title": "IT request"},
        "response": {"id": "2_ABaOn", "respondent": "priya@customer.io"},
        "answers": {"Subject": "New laptop", "Description": "The old one no longer charges.", "Priority": "High"}
    });
    let created = google.form_post(&form).await;
    assert_eq!(created["status"], "applied", "{created}");
    assert_eq!(created["event_type"], "form_submitted");
    let form_guid = created["applied"][0]["ticket_guid"].as_str().unwrap();
    let ticket = google.ticket(form_guid).await;
    assert_eq!(ticket["subject"], "New laptop", "{ticket}");
    assert_eq!(ticket["priority"], "HIGH");
    assert_eq!(ticket["requested_by"], "priya@customer.io");

    google.running.stop().await;
}

/// A linked event still ahead at its notification is escalated by the
/// first `calendar_due` tick at or after its start, without reading
/// Calendar again, and by that tick only. The test's ticker (the
/// calendar's `schedule`, every second) stands in for the host's loop so
/// the test sets each tick's clock; the host's worker maps the ticks, each
/// once its time has come.
async fn a_tick_escalates_a_calendar_event_once_when_its_start_comes(db: TestDb) {
    let (jwks_url, _jwks) = FakeApi::start(|_: &Call, _| jwks(false)).await;
    let (gmail_url, _gmail) = FakeApi::start(gmail).await;
    let event: Arc<Mutex<(String, chrono::DateTime<chrono::Utc>)>> =
        Arc::new(Mutex::new((String::new(), chrono::Utc::now())));
    let e = event.clone();
    let (calendar_url, calendar_api) = FakeApi::start(move |call: &Call, n| {
        let (guid, start) = e.lock().unwrap().clone();
        calendar_event(guid, start)(call, n)
    })
    .await;
    let google = start(db, &jwks_url, &gmail_url, &calendar_url).await;
    let created: Value = google
        .http
        .post(format!("{}/v1/tickets", google.base))
        .bearer_auth(ADMIN)
        .json(&json!({"subject": "Invoice export SLA", "priority": "HIGH"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket = created["guid"].as_str().unwrap().to_owned();
    // The event starts on a whole second shortly ahead.
    let now = chrono::Utc::now().timestamp();
    let start_at = chrono::DateTime::from_timestamp(now + 3, 0).unwrap();
    *event.lock().unwrap() = (ticket.clone(), start_at);

    // The notification sees the event ahead: nothing escalates yet.
    let (status, seen) = google.calendar_notification(1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["status"], "ignored", "{seen}");
    assert_eq!(calendar_api.calls("GET", "/calendar/v3/").len(), 1);

    let ticker = Config::parse(
        "providers:\n  calendar:\n    schedule: [{name: calendar_due, every_secs: 1}]\n",
        Path::new("/ticks.yaml"),
        |_| None,
    )
    .unwrap()
    .ticker()
    .unwrap()
    .unwrap();
    let tick = |secs: i64| {
        let (ticker, db) = (&ticker, &google.db);
        async move {
            let stored = ticker
                .tick(db, start_at + chrono::Duration::seconds(secs))
                .await
                .unwrap();
            assert_eq!(stored.len(), 1, "one calendar_due tick at start{secs:+} s");
            assert_eq!(stored[0].path, "/tick/calendar_due");
            until_done(db, &stored[0].delivery_id).await
        }
    };
    // A second before the start: nothing due.
    let early = tick(-1).await;
    assert_eq!(
        early.status,
        DeliveryStatus::Ignored,
        "{:?}",
        early.last_error
    );
    assert_eq!(early.event_type.as_deref(), Some("calendar_nothing_due"));
    assert_eq!(google.ticket(&ticket).await["status"], "NEW");
    // At the start: escalated, with no Calendar call.
    let due = tick(0).await;
    assert_eq!(due.status, DeliveryStatus::Applied, "{:?}", due.last_error);
    assert_eq!(due.event_type.as_deref(), Some("calendar_due"));
    let escalated = google.ticket(&ticket).await;
    assert_eq!(escalated["status"], "ESCALATED", "{escalated}");
    assert_eq!(calendar_api.calls("GET", "/calendar/v3/").len(), 1);
    // The next tick: the event is no longer waiting.
    let later = tick(1).await;
    assert_eq!(
        later.status,
        DeliveryStatus::Ignored,
        "{:?}",
        later.last_error
    );
    assert_eq!(
        later.event_type.as_deref(),
        Some("calendar_nothing_watched")
    );

    google.running.stop().await;
}
