//! Seed 3's service desk end to end, with the built-in Pachca and Tracker
//! mappers: a Pachca message opens a ticket, the ticket becomes a Tracker
//! issue (queue, tag, custom fields), the issue's link and the buttons are
//! posted in the message's new thread, a Tracker comment with an `@login`
//! reaches the thread with the Pachca mention, a thread reply becomes a
//! Tracker comment whose trigger echo is dropped, and a button click moves
//! the ticket and the issue. Real signed webhooks (Pachca's HMAC with its
//! `webhook_timestamp`, Tracker's shared token) into `host serve` (in
//! process); the Pachca and Tracker APIs are recording servers on loopback.
//! Every hop is counted: each happens once. The host is stopped and a new
//! one started on the same database halfway, with a delivery stored but
//! not yet mapped: nothing is lost.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::Method;
use hmac::{Hmac, Mac};
use host::app::App;
use host::config::Config;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::db::{TestDb, conformance};
use crate::fake_api::{Call, FakeApi};
use crate::helpers::{Running, component};

const ADMIN: &str = "admin-token-0123456789abcdef";
const PACHCA_SECRET: &str = "pachca-signing-0123456789";
const TRACKER_TOKEN: &str = "tracker-trigger-0123456789";
const BOT: u64 = 1000;
const CHAT: u64 = 9012;
const ROOT: u64 = 1_245_817;
const THREAD: u64 = 70_001;
const MESSAGE_FIELD: &str = "66aa43bfc941f16869268d41--pachcaMessageId";
const USER_FIELD: &str = "66aa43bfc941f16869268d41--pachcaUserId";

/// Pachca's API as the mapper uses it.
fn pachca(call: &Call, n: usize) -> Value {
    let user = |id: u64, first: &str, last: &str, nick: &str, email: &str| json!({"id": id, "first_name": first, "last_name": last, "nickname": nick, "email": email, "bot": false});
    let olga = user(2345, "Ольга", "Иванова", "olga", "olga.ivanova@bnovo.ru");
    let sergey = user(
        3456,
        "Сергей",
        "Кузнецов",
        "sergey",
        "sergey.kuznetsov@bnovo.ru",
    );
    let ivan = user(4001, "Иван", "Петров", "ivan", "ivan.petrov@bnovo.ru");
    let anna = user(4002, "Анна", "Смирнова", "anna", "anna.smirnova@bnovo.ru");
    match (call.method.as_str(), call.path.as_str()) {
        ("GET", "/users/2345") => json!({"data": olga}),
        ("GET", "/users/3456") => json!({"data": sergey}),
        ("GET", p) if p.starts_with("/users?query=") => {
            let q = p.trim_start_matches("/users?query=").replace("%40", "@");
            let found: Vec<&Value> = [&olga, &sergey, &ivan, &anna]
                .into_iter()
                .filter(|u| u["email"] == q.as_str())
                .collect();
            json!({"data": found})
        }
        ("POST", p) if p == format!("/messages/{ROOT}/thread") => {
            json!({"data": {"id": THREAD, "chat_id": THREAD, "message_id": ROOT, "message_chat_id": CHAT}})
        }
        ("POST", "/messages") => json!({"data": {"id": 1_300_000 + n, "chat_id": THREAD}}),
        _ => json!({"data": null}),
    }
}

/// Tracker's API as the mapper uses it.
fn tracker(call: &Call, n: usize) -> Value {
    match (call.method.as_str(), call.path.as_str()) {
        ("POST", "/issues") => json!({"key": "SERVICEDESK-12", "id": "6571a0c2d3e4f5a6b7c8d9e0"}),
        ("POST", p) if p.ends_with("/comments") => {
            json!({"id": 600 + n, "text": call.body["text"]})
        }
        _ => json!([]),
    }
}

struct Desk {
    base: String,
    http: reqwest::Client,
    running: Running,
    db: TestDb,
    yaml: String,
}

async fn desk(db: TestDb, pachca_url: &str, tracker_url: &str) -> Desk {
    let yaml = format!(
        r#"listen: 127.0.0.1:0
database: "{db}"
api:
  tokens:
    - {{name: ops, token: {ADMIN}, scope: admin}}
delivery: {{retry_base_ms: 10, retry_max_ms: 50}}
providers:
  pachca:
    verify: {{secret: {PACHCA_SECRET}}}
    mapper: "{pachca}"
    mapper_config: {{bot_user_id: {BOT}, chat_ids: [{CHAT}], email_domain: bnovo.ru}}
    api: {{base_url: "{pachca_url}", auth: {{bearer: pachca-api-token-0123456789}}}}
    outbound: {{retry_base_ms: 10, retry_max_ms: 50}}
  tracker:
    verify: {{secret: {TRACKER_TOKEN}}}
    mapper: "{tracker}"
    mapper_config:
      queue: SERVICEDESK
      email_domain: bnovo.ru
      org_id: "7654321"
      message_id_field: "{MESSAGE_FIELD}"
      user_id_field: "{USER_FIELD}"
    api: {{base_url: "{tracker_url}", auth: {{header: {{name: Authorization, value: "OAuth tracker-api-token-0123456789"}}}}}}
    outbound: {{retry_base_ms: 10, retry_max_ms: 50}}
"#,
        db = db.url,
        pachca = component("pachca-mapper").display(),
        tracker = component("tracker-mapper").display(),
    );
    let (base, running) = serve(&yaml).await;
    Desk {
        base,
        http: reqwest::Client::new(),
        running,
        db,
        yaml,
    }
}

async fn serve(yaml: &str) -> (String, Running) {
    let config = Config::parse(yaml, Path::new("/config.yaml"), |_| None).unwrap();
    Running::start(App::build(&config).await.unwrap())
}

impl Desk {
    /// Posts a Pachca webhook signed as Pachca signs it (a fresh
    /// `webhook_timestamp` in the body, its HMAC in `Pachca-Signature`).
    async fn pachca(&self, mut body: Value, wait: bool) -> Value {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        body["webhook_timestamp"] = json!(now.as_secs());
        let bytes = body.to_string().into_bytes();
        let mut mac = Hmac::<Sha256>::new_from_slice(PACHCA_SECRET.as_bytes()).unwrap();
        mac.update(&bytes);
        let wait = if wait { "?wait=true" } else { "" };
        self.http
            .post(format!("{}/hooks/pachca{wait}", self.base))
            .header("content-type", "application/json")
            .header("pachca-signature", hex::encode(mac.finalize().into_bytes()))
            .body(bytes)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Posts the Tracker trigger's request, with its shared token.
    async fn tracker(&self, body: Value, wait: bool) -> Value {
        let wait = if wait { "&wait=true" } else { "" };
        self.http
            .post(format!(
                "{}/hooks/tracker?token={TRACKER_TOKEN}{wait}",
                self.base
            ))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn api(&self, path: &str) -> Value {
        self.http
            .request(Method::GET, format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until every delivery is mapped and the outbox is empty.
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let busy = self.db.inbox_depth().await.unwrap() > 0
                || self.db.outbox_depth().await.unwrap() > 0;
            if !busy {
                return;
            }
            assert!(Instant::now() < deadline, "the work does not drain");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops this host and starts a new one on the same database.
    async fn restart(self) -> Desk {
        self.running.stop().await;
        let (base, running) = serve(&self.yaml).await;
        Desk {
            base,
            running,
            ..self
        }
    }
}

/// A message in the service-desk chat (a thread's message when `thread`).
fn message(id: u64, user: u64, content: &str, thread: bool) -> Value {
    let (chat, entity_type, thread_ref) = if thread {
        (
            THREAD,
            "thread",
            json!({"message_id": ROOT, "message_chat_id": CHAT}),
        )
    } else {
        (CHAT, "discussion", Value::Null)
    };
    json!({
        "type": "message", "event": "new", "id": id, "entity_type": entity_type,
        "entity_id": chat, "chat_id": chat, "content": content, "user_id": user,
        "created_at": "2026-11-30T09:00:00.000Z", "parent_message_id": null,
        "thread": thread_ref, "url": format!("https://app.pachca.com/chats/{chat}?message={id}"),
    })
}

conformance!(a_pachca_request_runs_through_tracker_and_back_once);

async fn a_pachca_request_runs_through_tracker_and_back_once(db: TestDb) {
    let (pachca_url, pachca_api) = FakeApi::start(pachca).await;
    let (tracker_url, tracker_api) = FakeApi::start(tracker).await;
    let desk = desk(db, &pachca_url, &tracker_url).await;

    // A message in the chat: a ticket, with the Pachca ids as its fields.
    let out = desk
        .pachca(
            message(
                ROOT,
                2345,
                "Не работает VPN в офисе\nС утра не подключается.",
                false,
            ),
            true,
        )
        .await;
    assert_eq!(out["status"], "applied", "{out}");
    assert_eq!(out["event_type"], "message_created", "{out}");
    let guid = out["applied"][0]["ticket_guid"]
        .as_str()
        .unwrap()
        .to_owned();
    desk.settle().await;

    // The Tracker issue: queue, tag, custom fields, the organisation and
    // the credentials the host adds.
    let issues = tracker_api.calls("POST", "/issues");
    assert_eq!(issues.len(), 1, "{issues:?}");
    let issue = &issues[0];
    assert_eq!(issue.body["queue"], "SERVICEDESK");
    assert_eq!(issue.body["summary"], "Не работает VPN в офисе");
    assert_eq!(issue.body["tags"], json!(["Создана в Пачке"]));
    assert_eq!(issue.body[MESSAGE_FIELD], ROOT.to_string());
    assert_eq!(issue.body[USER_FIELD], "2345");
    assert_eq!(issue.header("x-org-id"), Some("7654321"));
    assert_eq!(
        issue.header("authorization"),
        Some("OAuth tracker-api-token-0123456789")
    );
    let ticket = desk.api(&format!("/v1/tickets/{guid}")).await;
    assert_eq!(ticket["requested_by"], "olga.ivanova@bnovo.ru", "{ticket}");
    assert_eq!(ticket["fields"]["pachca_user_id"], "2345", "{ticket}");
    let links: Vec<(&str, &str)> = ticket["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["provider"].as_str().unwrap(),
                l["external_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(links.contains(&("tracker", "SERVICEDESK-12")), "{links:?}");
    // "My requests": found by the Pachca user's id.
    let mine = desk
        .api("/v1/tickets?field.pachca_user_id=2345&status=NEW")
        .await;
    assert_eq!(mine["items"][0]["guid"], guid.as_str(), "{mine}");

    // The reply in the message's new thread: the link and the buttons.
    assert_eq!(
        pachca_api
            .calls("POST", &format!("/messages/{ROOT}/thread"))
            .len(),
        1
    );
    let replies = pachca_api.calls("POST", "/messages");
    let replies: Vec<&Call> = replies.iter().filter(|c| c.path == "/messages").collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    let reply = &replies[0].body["message"];
    assert_eq!(reply["entity_type"], "thread");
    assert_eq!(reply["entity_id"], THREAD);
    let content = reply["content"].as_str().unwrap();
    assert!(
        content.contains("https://tracker.yandex.ru/SERVICEDESK-12"),
        "{content}"
    );
    let buttons = reply["buttons"][0].as_array().unwrap();
    assert_eq!(buttons.len(), 2, "{reply}");
    let take = buttons[0]["data"].as_str().unwrap().to_owned();
    assert!(take.contains(&guid) && take.contains("take"), "{take}");

    // A Tracker comment with an @login, stored, and the host restarted
    // before (or while) it is mapped: nothing is lost.
    let stored = desk
        .tracker(
            json!({"event": "comment_created",
                   "issue": {"key": "SERVICEDESK-12", "status": "open"},
                   "comment": {"id": 501, "text": "Проверил, @anna.smirnova посмотрит.", "author": "ivan.petrov"}}),
            false,
        )
        .await;
    assert!(stored["delivery_id"].is_string(), "{stored}");
    let desk = desk.restart().await;
    desk.settle().await;
    let posted: Vec<Call> = pachca_api
        .calls("POST", "/messages")
        .into_iter()
        .filter(|c| c.path == "/messages")
        .collect();
    assert_eq!(posted.len(), 2, "{posted:?}");
    assert_eq!(
        posted[1].body["message"]["content"],
        "🔔 Добавлен комментарий:\nАвтор: Иван Петров\nПроверил, @anna посмотрит."
    );
    assert_eq!(posted[1].body["message"]["entity_id"], THREAD);
    // The host's own message in the thread comes back from Pachca: ignored.
    let own = desk
        .pachca(
            message(1_300_777, BOT, "🔔 Добавлен комментарий:", true),
            true,
        )
        .await;
    assert_eq!(own["status"], "ignored", "{own}");

    // A reply in the thread: a Tracker comment, once.
    let out = desk
        .pachca(
            message(1_245_900, 2345, "Перезагрузила роутер, не помогло.", true),
            true,
        )
        .await;
    assert_eq!(out["event_type"], "thread_reply", "{out}");
    desk.settle().await;
    let comments = tracker_api.calls("POST", "/issues/SERVICEDESK-12/comments");
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(
        comments[0].body["text"]
            .as_str()
            .unwrap()
            .starts_with("Перезагрузила роутер, не помогло."),
        "{:?}",
        comments[0].body
    );
    // Tracker's trigger reports that comment (the fake API numbered it
    // 600 + its call number): our own echo.
    let created = tracker_api
        .all()
        .into_iter()
        .position(|c| c.path == "/issues/SERVICEDESK-12/comments")
        .unwrap();
    let echo = desk
        .tracker(
            json!({"event": "comment_created",
                   "issue": {"key": "SERVICEDESK-12", "status": "open"},
                   "comment": {"id": 600 + created + 1, "text": comments[0].body["text"], "author": "robot-servicedesk"}}),
            true,
        )
        .await;
    assert_eq!(
        (echo["status"].as_str(), echo["reason"].as_str()),
        (Some("ignored"), Some("echo")),
        "{echo}"
    );

    // «Взять в работу»: the ticket is assigned and in progress, and the
    // issue moves, once.
    let click = desk
        .pachca(
            json!({"type": "button", "event": "click", "message_id": 1_300_002,
                   "trigger_id": "a1b2c3d4", "data": take, "user_id": 3456, "chat_id": THREAD}),
            true,
        )
        .await;
    assert_eq!(click["status"], "applied", "{click}");
    desk.settle().await;
    let ticket = desk.api(&format!("/v1/tickets/{guid}")).await;
    assert_eq!(ticket["status"], "IN_PROGRESS", "{ticket}");
    assert_eq!(ticket["assignee"], "sergey.kuznetsov@bnovo.ru", "{ticket}");
    let moves = tracker_api.calls("POST", "/issues/SERVICEDESK-12/transitions/");
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(
        moves[0].path,
        "/issues/SERVICEDESK-12/transitions/inProgress/_execute"
    );

    // Every hop once: one issue, one comment, one transition; two
    // messages and their thread lookups in Pachca; the Tracker comment on
    // the ticket once, nothing failed.
    assert_eq!(tracker_api.all().len(), 3, "{:?}", tracker_api.all());
    let pachca_posts: Vec<Call> = pachca_api
        .calls("POST", "/messages")
        .into_iter()
        .filter(|c| c.path == "/messages")
        .collect();
    assert_eq!(pachca_posts.len(), 2, "{pachca_posts:?}");
    let notes = ticket["comments"].as_array().unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    let failed = desk.api("/v1/outbox?status=failed").await;
    assert_eq!(failed["items"], json!([]), "{failed}");
    let dead = desk.api("/v1/deliveries?status=failed").await;
    assert_eq!(dead["items"], json!([]), "{dead}");
    desk.running.stop().await;
}
