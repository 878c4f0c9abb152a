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
//!
//! The second flow adds what issue 13 finished: a Tracker `@login` only
//! the Yandex 360 directory knows (a third recording server, reached
//! through Pachca's extra API `y360` with its own token), a Tracker status
//! change told once in the thread, «Взять в работу» setting the Tracker
//! assignee once, and «Мои заявки» listing exactly the clicker's open
//! tickets from the host's own tickets, once even when replayed.

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
const Y360_ORG: &str = "5551234";
const Y360_TOKEN: &str = "OAuth y360-oauth-token-0123456789";

/// The second and third requests of the second flow, and their threads.
const ROOT2: u64 = 1_245_901;
const THREAD2: u64 = 70_002;
const ROOT3: u64 = 1_245_950;
const THREAD3: u64 = 70_003;

/// The thread Pachca keeps for a root message.
fn thread_of(root: u64) -> u64 {
    match root {
        ROOT2 => THREAD2,
        ROOT3 => THREAD3,
        _ => THREAD,
    }
}

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
    // Her Yandex login is `m.orlova`: only Yandex 360 knows the two are one.
    let maria = user(4010, "Мария", "Орлова", "maria", "maria.orlova@bnovo.ru");
    match (call.method.as_str(), call.path.as_str()) {
        ("GET", "/users/2345") => json!({"data": olga}),
        ("GET", "/users/3456") => json!({"data": sergey}),
        ("GET", p) if p.starts_with("/users?query=") => {
            let q = p.trim_start_matches("/users?query=").replace("%40", "@");
            let found: Vec<&Value> = [&olga, &sergey, &ivan, &anna, &maria]
                .into_iter()
                .filter(|u| u["email"] == q.as_str())
                .collect();
            json!({"data": found})
        }
        ("POST", p) if p.starts_with("/messages/") && p.ends_with("/thread") => {
            let root: u64 = p["/messages/".len()..p.len() - "/thread".len()]
                .parse()
                .unwrap();
            let thread = thread_of(root);
            json!({"data": {"id": thread, "chat_id": thread, "message_id": root, "message_chat_id": CHAT}})
        }
        ("POST", "/messages") => json!({"data": {"id": 1_300_000 + n, "chat_id": THREAD}}),
        _ => json!({"data": null}),
    }
}

/// Tracker's API as the mapper uses it: each Pachca message's issue has
/// its own key.
fn tracker(call: &Call, n: usize) -> Value {
    match (call.method.as_str(), call.path.as_str()) {
        ("POST", "/issues") => {
            let number = match call.body[MESSAGE_FIELD].as_str() {
                Some(m) if m == ROOT2.to_string() => 13,
                Some(m) if m == ROOT3.to_string() => 14,
                _ => 12,
            };
            json!({"key": format!("SERVICEDESK-{number}"), "id": format!("6571a0c2d3e4f5a6b7c8d9{number}")})
        }
        ("POST", p) if p.ends_with("/comments") => {
            json!({"id": 600 + n, "text": call.body["text"]})
        }
        ("PATCH", p) if p.starts_with("/issues/") => json!({"key": &p["/issues/".len()..]}),
        _ => json!([]),
    }
}

/// The Yandex 360 directory: the organisation's users, one page.
fn y360(call: &Call, _: usize) -> Value {
    let users = json!([
        {"id": "1130000001", "nickname": "m.orlova", "email": "maria.orlova@bnovo.ru", "aliases": [],
         "name": {"first": "Мария", "last": "Орлова"}, "isRobot": false, "isDismissed": false},
        {"id": "1130000002", "nickname": "ivan.petrov", "email": "ivan.petrov@bnovo.ru", "aliases": [],
         "name": {"first": "Иван", "last": "Петров"}, "isRobot": false, "isDismissed": false},
    ]);
    if call
        .path
        .starts_with(&format!("/directory/v1/org/{Y360_ORG}/users?"))
    {
        json!({"users": users, "page": 1, "pages": 1, "perPage": 1000, "total": 2})
    } else {
        json!({"code": 5, "message": "not found"})
    }
}

struct Desk {
    base: String,
    http: reqwest::Client,
    running: Running,
    db: TestDb,
    yaml: String,
}

async fn desk(db: TestDb, pachca_url: &str, tracker_url: &str, y360_url: &str) -> Desk {
    let yaml = format!(
        r#"listen: 127.0.0.1:0
database: "{db}"
api:
  tokens:
    - {{name: ops, token: {ADMIN}, scope: admin}}
delivery: {{retry_base_ms: 10, retry_max_ms: 50}}
people:
  - {{email: sergey.kuznetsov@bnovo.ru, name: Сергей Кузнецов, identities: {{tracker: skuznetsov}}}}
providers:
  pachca:
    verify: {{secret: {PACHCA_SECRET}}}
    mapper: "{pachca}"
    mapper_config: {{bot_user_id: {BOT}, chat_ids: [{CHAT}], email_domain: bnovo.ru, y360_org_id: "{Y360_ORG}"}}
    api:
      base_url: "{pachca_url}"
      auth: {{bearer: pachca-api-token-0123456789}}
      read_tickets: true
      extra:
        y360: {{base_url: "{y360_url}", auth: {{header: {{name: Authorization, value: "{Y360_TOKEN}"}}}}}}
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

conformance!(
    a_pachca_request_runs_through_tracker_and_back_once,
    my_requests_status_notices_the_assignee_and_yandex_360_once_each,
);

async fn a_pachca_request_runs_through_tracker_and_back_once(db: TestDb) {
    let (pachca_url, pachca_api) = FakeApi::start(pachca).await;
    let (tracker_url, tracker_api) = FakeApi::start(tracker).await;
    let (y360_url, y360_api) = FakeApi::start(y360).await;
    let desk = desk(db, &pachca_url, &tracker_url, &y360_url).await;

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
    assert_eq!(buttons.len(), 3, "{reply}");
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

    // Every hop once: one issue, one comment, the assignee and one
    // transition; two messages and their thread lookups in Pachca; the
    // Tracker comment on the ticket once, nothing failed. `@anna.smirnova`
    // was found as login@email_domain: Yandex 360 was not asked.
    assert_eq!(tracker_api.all().len(), 4, "{:?}", tracker_api.all());
    assert_eq!(y360_api.all().len(), 0, "{:?}", y360_api.all());
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

/// The messages posted to Pachca (not the thread lookups), in order.
fn posts(api: &FakeApi) -> Vec<Call> {
    api.calls("POST", "/messages")
        .into_iter()
        .filter(|c| c.path == "/messages")
        .collect()
}

/// The data of the button labelled `text` on the reply posted in `thread`.
fn button(api: &FakeApi, thread: u64, text: &str) -> String {
    let reply = posts(api)
        .into_iter()
        .find(|c| {
            c.body["message"]["entity_id"] == thread && c.body["message"]["buttons"].is_array()
        })
        .unwrap_or_else(|| panic!("no reply with buttons in thread {thread}"));
    reply.body["message"]["buttons"][0]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["text"] == text)
        .and_then(|b| b["data"].as_str())
        .unwrap_or_else(|| panic!("no button {text}: {:?}", reply.body))
        .to_owned()
}

fn click(data: &str, user: u64, chat: u64, trigger: &str) -> Value {
    json!({"type": "button", "event": "click", "message_id": 1_300_002, "trigger_id": trigger,
           "data": data, "user_id": user, "chat_id": chat})
}

async fn my_requests_status_notices_the_assignee_and_yandex_360_once_each(db: TestDb) {
    let (pachca_url, pachca_api) = FakeApi::start(pachca).await;
    let (tracker_url, tracker_api) = FakeApi::start(tracker).await;
    let (y360_url, y360_api) = FakeApi::start(y360).await;
    let desk = desk(db, &pachca_url, &tracker_url, &y360_url).await;

    // Two requests from Ольга (2345), one from Сергей (3456): three
    // tickets, three issues, three replies.
    let mut guids = Vec::new();
    for (id, user, text) in [
        (ROOT, 2345, "Не работает VPN в офисе"),
        (ROOT2, 2345, "Не печатает принтер"),
        (ROOT3, 3456, "Нужен доступ к CRM"),
    ] {
        let out = desk.pachca(message(id, user, text, false), true).await;
        assert_eq!(out["status"], "applied", "{out}");
        guids.push(
            out["applied"][0]["ticket_guid"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        desk.settle().await;
    }
    assert_eq!(tracker_api.calls("POST", "/issues").len(), 3);
    assert_eq!(posts(&pachca_api).len(), 3);

    // Tracker resolves the printer's issue: the ticket is resolved and
    // its thread told, once; nothing goes back to Tracker.
    let out = desk
        .tracker(
            json!({"event": "status_changed",
                   "issue": {"key": "SERVICEDESK-13", "status": "resolved"}, "actor": "ivan.petrov"}),
            true,
        )
        .await;
    assert_eq!(out["status"], "applied", "{out}");
    desk.settle().await;
    let ticket = desk.api(&format!("/v1/tickets/{}", guids[1])).await;
    assert_eq!(ticket["status"], "RESOLVED", "{ticket}");
    let notices: Vec<Call> = posts(&pachca_api)
        .into_iter()
        .filter(|c| {
            c.body["message"]["content"]
                .as_str()
                .is_some_and(|t| t.starts_with("🔄"))
        })
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].body["message"]["content"], "🔄 Статус: Решена");
    assert_eq!(notices[0].body["message"]["entity_id"], THREAD2);

    // A Tracker comment mentioning `m.orlova`: `m.orlova@bnovo.ru` is no
    // Pachca user, Yandex 360 says the login is maria.orlova@bnovo.ru, and
    // that is Мария in Pachca.
    let out = desk
        .tracker(
            json!({"event": "comment_created",
                   "issue": {"key": "SERVICEDESK-12", "status": "open"},
                   "comment": {"id": 777, "text": "@m.orlova, посмотри, пожалуйста.", "author": "ivan.petrov"}}),
            true,
        )
        .await;
    assert_eq!(out["status"], "applied", "{out}");
    desk.settle().await;
    let comment = posts(&pachca_api).pop().unwrap();
    assert_eq!(
        comment.body["message"]["content"],
        "🔔 Добавлен комментарий:\nАвтор: Иван Петров\n@maria, посмотри, пожалуйста."
    );
    assert_eq!(comment.body["message"]["entity_id"], THREAD);
    // Yandex 360 was asked once, with its own token and no routing header;
    // Pachca never saw that token, nor the routing header.
    let directory = y360_api.all();
    assert_eq!(directory.len(), 1, "{directory:?}");
    assert_eq!(
        directory[0].path,
        format!("/directory/v1/org/{Y360_ORG}/users?perPage=1000&page=1")
    );
    assert_eq!(directory[0].header("authorization"), Some(Y360_TOKEN));
    assert_eq!(directory[0].header("sluice-api"), None);
    for call in pachca_api.all() {
        assert_eq!(
            call.header("authorization"),
            Some("Bearer pachca-api-token-0123456789"),
            "{call:?}"
        );
        assert_eq!(call.header("sluice-api"), None, "{call:?}");
    }

    // «Взять в работу» on the VPN request, by Сергей: the issue's assignee
    // is his Tracker login from the people directory, set once; no status
    // notice goes back to Pachca, where the click came from.
    let take = button(&pachca_api, THREAD, "Взять в работу");
    let out = desk
        .pachca(click(&take, 3456, THREAD, "take-1"), true)
        .await;
    assert_eq!(out["status"], "applied", "{out}");
    desk.settle().await;
    let assigned = tracker_api.calls("PATCH", "/issues/");
    assert_eq!(assigned.len(), 1, "{assigned:?}");
    assert_eq!(assigned[0].path, "/issues/SERVICEDESK-12");
    assert_eq!(assigned[0].body, json!({"assignee": "skuznetsov"}));
    assert_eq!(
        tracker_api
            .calls(
                "POST",
                "/issues/SERVICEDESK-12/transitions/inProgress/_execute"
            )
            .len(),
        1
    );
    let posted = posts(&pachca_api).len();
    assert_eq!(posted, 5, "{:?}", posts(&pachca_api));

    // «Мои заявки» by Ольга in the VPN request's thread: her open tickets
    // only — the VPN one (in progress, with its issue), not her resolved
    // printer, not Сергей's CRM access — posted once where she clicked.
    let mine = button(&pachca_api, THREAD, "Мои заявки");
    let out = desk
        .pachca(click(&mine, 2345, THREAD, "mine-1"), true)
        .await;
    assert_eq!(
        (out["status"].as_str(), out["reason"].as_str()),
        (Some("ignored"), Some("filtered")),
        "{out}"
    );
    assert_eq!(out["event_type"], "button_my_requests", "{out}");
    let list = posts(&pachca_api);
    assert_eq!(list.len(), posted + 1, "{list:?}");
    let list = &list[posted].body["message"];
    assert_eq!(list["entity_type"], "discussion");
    assert_eq!(list["entity_id"], THREAD);
    assert_eq!(
        list["content"],
        "📋 Ваши открытые заявки (1):\n• [SERVICEDESK-12](https://tracker.yandex.ru/SERVICEDESK-12) Не работает VPN в офисе — В работе"
    );
    let state = desk.api("/v1/providers/pachca/state").await;
    assert!(state.to_string().contains("my_requests:mine-1"), "{state}");

    // The click replayed (its mapping runs again): the state key says the
    // list is posted, and nothing more is.
    let id = out["delivery_id"].as_str().unwrap();
    let replayed: Value = desk
        .http
        .post(format!("{}/v1/deliveries/{id}/replay", desk.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replayed["status"], "ignored", "{replayed}");
    assert_eq!(posts(&pachca_api).len(), posted + 1);

    // Every hop once: three issues, one assignee, one transition in
    // Tracker; three replies, one status notice, one comment and one list
    // in Pachca; one directory read; nothing failed.
    assert_eq!(tracker_api.all().len(), 5, "{:?}", tracker_api.all());
    assert_eq!(y360_api.all().len(), 1);
    let failed = desk.api("/v1/outbox?status=failed").await;
    assert_eq!(failed["items"], json!([]), "{failed}");
    let failed = desk.api("/v1/deliveries?status=failed").await;
    assert_eq!(failed["items"], json!([]), "{failed}");
    desk.running.stop().await;
}
