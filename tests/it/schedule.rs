//! Periodic ticks against real stores on a controlled clock: a scheduled
//! pull ticks once per period across reruns, restarts and two PostgreSQL
//! replicas; reconciliation ticks each open linked ticket once per
//! interval; no sender can make a tick; the Codebase mapper pulls end to
//! end from a recording Codebase API; and killing the PostgreSQL leader
//! (a real `host serve`, kill -9) moves the periodic work to the other.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use host::config::Config;
use host::schedule::Ticker;
use host::store::{DeliveryRow, DeliveryStatus, Store, TicketRow};
use serde_json::{Value, json};

use crate::db::{self, TestDb, conformance};
use crate::fake_api::{Call, FakeApi};
use crate::helpers::{Running, all_deliveries, component, start_host, until_done};

const ADMIN: &str = "admin-token-0123456789abcdef";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The ticker of a config whose `providers:` block is `providers`.
fn ticker(providers: &str) -> Ticker {
    config(&format!("providers:\n{providers}"))
        .ticker()
        .unwrap()
        .expect("ticks configured")
}

fn config(yaml: &str) -> Config {
    Config::parse(yaml, std::path::Path::new("sluice.yaml"), |_| None).unwrap()
}

const PULL: &str = "  codebase:\n    schedule:\n      - {name: pull, cron: \"0 * * * *\"}\n      - {name: nightly, cron: \"0 2 * * *\", timezone: Europe/Berlin}\n";

async fn ticks(store: &Store) -> Vec<DeliveryRow> {
    all_deliveries(store)
        .await
        .into_iter()
        .filter(|d| d.method == "TICK")
        .collect()
}

async fn a_schedule_ticks_once_per_period(db: TestDb) {
    let first = ticker(PULL);
    let t = first.tick(&db, at("2026-06-01T09:30:00Z")).await.unwrap();
    // The hourly pull's 09:00 and the nightly's 02:00 Berlin (00:00 UTC).
    let mut got: Vec<_> = t.iter().map(|t| (t.path.as_str(), t.period)).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("/tick/nightly", at("2026-06-01T00:00:00Z")),
            ("/tick/pull", at("2026-06-01T09:00:00Z"))
        ]
    );
    let stored = ticks(&db).await;
    assert_eq!(stored.len(), 2);
    for d in &stored {
        assert_eq!(d.provider, "codebase");
        assert!(d.body.is_empty() && d.headers.is_empty(), "{d:?}");
        assert_eq!(d.status, DeliveryStatus::Pending);
    }

    // A rerun within the period, and a restarted host (a new ticker with
    // no memory): nothing more.
    assert!(
        first
            .tick(&db, at("2026-06-01T09:59:59Z"))
            .await
            .unwrap()
            .is_empty()
    );
    let restarted = ticker(PULL);
    assert!(
        restarted
            .tick(&db, at("2026-06-01T09:45:00Z"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(ticks(&db).await.len(), 2);

    // The next hour ticks the pull once more, the nightly not.
    let next = restarted
        .tick(&db, at("2026-06-01T10:00:00Z"))
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].path, "/tick/pull");
    assert_eq!(ticks(&db).await.len(), 3);
}

/// Tickets: `open` and `wip` open and linked to codebase (`wip` twice),
/// `done` resolved, `other` linked to another provider only.
async fn linked_tickets(store: &Store) {
    let mut tx = store.begin().await.unwrap();
    let at = "2026-05-01T09:00:00.000000Z";
    for (guid, status) in [
        ("open", "NEW"),
        ("wip", "IN_PROGRESS"),
        ("done", "RESOLVED"),
        ("other", "NEW"),
    ] {
        tx.insert_ticket(&TicketRow {
            guid: guid.into(),
            subject: guid.into(),
            description: String::new(),
            status: status.into(),
            priority: "MEDIUM".into(),
            ticket_type: "TASK".into(),
            assignee: None,
            requested_by: None,
            labels: Vec::new(),
            created_at: at.into(),
            updated_at: at.into(),
            resolved_at: None,
            resolved_by: None,
            escalated_at: None,
            escalated_by: None,
            escalation_reason: None,
            fields: Default::default(),
            status_changed_at: None,
        })
        .await
        .unwrap();
    }
    for (provider, id, guid) in [
        ("codebase", "17", "open"),
        ("codebase", "bi/41 #2", "wip"),
        ("codebase", "bi/42", "wip"),
        ("codebase", "5", "done"),
        ("jira", "OPS-1", "other"),
    ] {
        tx.link(provider, id, guid, at).await.unwrap();
    }
    tx.commit().await.unwrap();
}

async fn reconciliation_ticks_each_open_linked_ticket_once_per_interval(db: TestDb) {
    linked_tickets(&db).await;
    let providers = "  codebase:\n    schedule: [{name: pull, every_secs: 300}]\n    api: {base_url: \"http://127.0.0.1:9\"}\n    sync: {interval_secs: 600}\n";
    let now = at("2026-06-01T09:31:00Z");
    let t = ticker(providers).tick(&db, now).await.unwrap();
    let mut paths: Vec<_> = t.iter().map(|t| t.path.as_str()).collect();
    paths.sort_unstable();
    // One per open ticket (its first link), the id percent-encoded; the
    // resolved ticket and the other provider's none.
    assert_eq!(
        paths,
        vec![
            "/tick/pull",
            "/tick/reconcile/17",
            "/tick/reconcile/bi%2F41%20%232"
        ]
    );
    let reconcile = t.iter().find(|t| t.path.ends_with("/17")).unwrap();
    assert_eq!(reconcile.period, at("2026-06-01T09:30:00Z"));

    // A restart in the same interval: nothing; the next interval: again.
    assert!(
        ticker(providers)
            .tick(&db, at("2026-06-01T09:34:59Z"))
            .await
            .unwrap()
            .is_empty()
    );
    let later = ticker(providers)
        .tick(&db, at("2026-06-01T09:40:00Z"))
        .await
        .unwrap();
    assert_eq!(later.len(), 3, "{later:?}");
    assert_eq!(ticks(&db).await.len(), 6);
}

conformance!(
    a_schedule_ticks_once_per_period,
    reconciliation_ticks_each_open_linked_ticket_once_per_interval
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_replicas_tick_once() {
    let db = db::postgres().await;
    linked_tickets(&db).await;
    let other = Store::open(&db.url).await.unwrap();
    let providers = "  codebase:\n    schedule: [{name: pull, every_secs: 60}]\n    api: {base_url: \"http://127.0.0.1:9\"}\n    sync: {interval_secs: 60}\n";
    let now = at("2026-06-01T09:30:30Z");
    for round in 0..5 {
        let (a, b) = (ticker(providers), ticker(providers));
        let (ta, tb) = tokio::join!(async { a.tick(&db, now).await.unwrap() }, async {
            b.tick(&other, now).await.unwrap()
        });
        let expected = if round == 0 { 3 } else { 0 };
        assert_eq!(ta.len() + tb.len(), expected, "a: {ta:?}\nb: {tb:?}");
    }
    assert_eq!(ticks(&db).await.len(), 3);
    other.close().await;
}

#[test]
fn schedules_are_checked_naming_the_key() {
    let err = |providers: &str| {
        Config::parse(
            &format!("providers:\n{providers}"),
            std::path::Path::new("sluice.yaml"),
            |_| None,
        )
        .unwrap_err()
        .to_string()
    };
    assert_eq!(
        err("  codebase:\n    schedule: [{name: pull, every_secs: 5, cron: \"* * * * *\"}]\n"),
        "sluice.yaml: providers.codebase.schedule[0]: set exactly one of `cron` and `every_secs`"
    );
    assert_eq!(
        err("  codebase:\n    schedule: [{name: reconcile, every_secs: 5}]\n"),
        "sluice.yaml: providers.codebase.schedule[0].name: `reconcile` is reserved for `sync.interval_secs`' ticks"
    );
    assert_eq!(
        err(
            "  codebase:\n    schedule: [{name: pull, cron: \"0 9 * * *\", timezone: Moon/Base}]\n"
        ),
        "sluice.yaml: providers.codebase.schedule[0].timezone: `Moon/Base` is not an IANA time zone"
    );
    assert_eq!(
        err("  codebase:\n    mapper_config: {}\n"),
        "sluice.yaml: providers.codebase: needs `verify` (its webhooks) or a `schedule` (pulled instead)"
    );
}

/// Codebase's API as the mapper reads it: the project's tickets, 2 a page
/// (404 past the last), its users; every call recorded.
#[derive(Clone, Default)]
struct Codebase {
    tickets: Arc<Mutex<Vec<Value>>>,
}

impl Codebase {
    fn ticket(id: u64, status: &str, assignee: &str, updated: &str) -> Value {
        json!({"ticket": {
            "ticket_id": id, "summary": format!("Codebase ticket {id}"), "ticket_type": "Bug",
            "assignee": assignee, "reporter": "codebase-user-63", "assignee_id": 7, "reporter_id": 63,
            "status": {"id": 1, "name": status, "treat_as_closed": false},
            "priority": {"name": "High"}, "category": {"name": "Backend"},
            "milestone": {"id": 31, "name": "Current week/sprint", "deadline": null, "status": "active"},
            "updated_at": updated, "created_at": "2026-03-02T08:15:00Z", "deadline": null, "tags": ""
        }})
    }

    fn set(&self, tickets: Vec<Value>) {
        *self.tickets.lock().unwrap() = tickets;
    }

    fn answer(&self, call: &Call) -> (axum::http::StatusCode, Value) {
        use axum::http::StatusCode;
        let path = call.path.as_str();
        if path == "/users.json" {
            return (
                StatusCode::OK,
                json!([{"user": {"username": "codebase-user-63", "email_address": "bo@project-a.com"}},
                       {"user": {"username": "codebase-user-7", "email_address": "ana@project-a.com"}}]),
            );
        }
        let Some(page) = path
            .strip_prefix("/bi/tickets.json?page=")
            .and_then(|p| p.parse::<usize>().ok())
        else {
            return (StatusCode::NOT_FOUND, json!({"error": "Not Found"}));
        };
        let all = self.tickets.lock().unwrap().clone();
        let chunk: Vec<Value> = all
            .chunks(2)
            .nth(page - 1)
            .map(<[Value]>::to_vec)
            .unwrap_or_default();
        if chunk.is_empty() {
            (StatusCode::NOT_FOUND, json!({"error": "Not Found"}))
        } else {
            (StatusCode::OK, Value::Array(chunk))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_codebase_mapper_pulls_pages_keeps_its_cursor_and_mirrors_tickets() {
    let db = db::sqlite().await;
    let codebase = Codebase::default();
    codebase.set(vec![
        Codebase::ticket(41, "In Progress", "codebase-user-7", "2026-05-30T14:02:11Z"),
        Codebase::ticket(17, "New", "codebase-user-7", "2026-03-20T09:00:00Z"),
        Codebase::ticket(52, "QA", "codebase-user-63", "2026-05-21T16:45:00Z"),
    ]);
    let api = codebase.clone();
    let (url, fake) = FakeApi::start_with_status(move |call, _| api.answer(call)).await;
    // A schedule of a year, so the host's own loop ticks once (now) and
    // the test's later ticks are periods of its choosing.
    let yaml = format!(
        r#"listen: 127.0.0.1:0
database: "{db}"
api:
  tokens:
    - {{name: ops, token: {ADMIN}, scope: admin}}
people:
  - {{email: ana@project-a.com, identities: {{codebase: codebase-user-7}}}}
providers:
  codebase:
    mapper: "{wasm}"
    mapper_config: {{project: bi}}
    schedule: [{{name: pull, every_secs: 31622400}}]
    api:
      base_url: "{url}"
      auth: {{basic: {{username: project-a/codebase-user-7, password: mysecretcodebasekey}}}}
      cache_ttl_secs: 0
"#,
        db = db.url,
        wasm = component("codebase-mapper").display(),
    );
    let cfg = config(&yaml);
    let app = host::app::App::build(&cfg).await.unwrap();
    let (base, running) = Running::start(app);

    // The host's first tick: every page read with basic auth, each ticket
    // mirrored.
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        if let Some(t) = ticks(&db).await.first() {
            break t.id.clone();
        }
        assert!(Instant::now() < deadline, "the host did not tick");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let d = until_done(&db, &first).await;
    assert_eq!(d.status, DeliveryStatus::Applied, "{:?}", d.last_error);
    assert_eq!(d.event_type.as_deref(), Some("tickets_pulled"));
    let pages: Vec<String> = fake
        .calls("GET", "/bi/tickets.json")
        .iter()
        .map(|c| c.path.clone())
        .collect();
    assert_eq!(
        pages,
        vec![
            "/bi/tickets.json?page=1",
            "/bi/tickets.json?page=2",
            "/bi/tickets.json?page=3"
        ]
    );
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "project-a/codebase-user-7:mysecretcodebasekey"
        )
    );
    for c in fake.all() {
        assert_eq!(
            c.header("authorization"),
            Some(basic.as_str()),
            "{}",
            c.path
        );
    }
    let http = reqwest::Client::new();
    let ticket_of = |id: &str| {
        let (http, base) = (http.clone(), base.clone());
        let id = id.to_owned();
        async move {
            let found: Value = http
                .get(format!(
                    "{base}/v1/tickets?provider=codebase&external_id={id}"
                ))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            found["items"][0].clone()
        }
    };
    let t41 = ticket_of("41").await;
    assert_eq!(t41["status"], "IN_PROGRESS", "{t41}");
    assert_eq!(t41["assignee"], "ana@project-a.com");
    assert_eq!(t41["priority"], "HIGH");
    // Someone the directory does not know comes from Codebase's users.
    assert_eq!(ticket_of("52").await["assignee"], "bo@project-a.com");
    assert_eq!(ticket_of("17").await["status"], "NEW");

    // The cursor is the latest update seen.
    let cursor: Value = serde_json::from_str(
        &db.mapper_state(&["codebase"])
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.key == "cursor")
            .expect("a cursor")
            .value,
    )
    .unwrap();
    assert_eq!(
        cursor,
        json!({"updated_at": "2026-05-30T14:02:11Z", "ids": ["41"]})
    );

    // Codebase changes: 41 goes to QA, 60 is new. The next tick mirrors
    // those two only.
    codebase.set(vec![
        Codebase::ticket(41, "QA", "codebase-user-63", "2026-06-01T08:00:00Z"),
        Codebase::ticket(17, "New", "codebase-user-7", "2026-03-20T09:00:00Z"),
        Codebase::ticket(52, "QA", "codebase-user-63", "2026-05-21T16:45:00Z"),
        Codebase::ticket(60, "New", "codebase-user-7", "2026-06-01T08:00:00Z"),
    ]);
    let test_ticker = cfg.ticker().unwrap().unwrap();
    let now = Utc::now();
    let year = chrono::Duration::days(366);
    // Periods before the host's own (whose tick already ran), in order.
    let second = test_ticker.tick(&db, now - year - year).await.unwrap();
    assert_eq!(second.len(), 1);
    let d = until_done(&db, &second[0].delivery_id).await;
    assert_eq!(d.status, DeliveryStatus::Applied, "{:?}", d.last_error);
    let output: Value = serde_json::from_str(d.output.as_deref().unwrap()).unwrap();
    let actions = output["actions"].as_array().unwrap();
    let touched: Vec<&str> = actions
        .iter()
        .filter_map(|a| a["external_id"].as_str())
        .collect();
    assert!(
        touched.iter().all(|id| *id == "41" || *id == "60"),
        "{touched:?}"
    );
    let t41 = ticket_of("41").await;
    assert_eq!(t41["status"], "QA");
    assert_eq!(t41["assignee"], "bo@project-a.com");
    assert_eq!(ticket_of("60").await["status"], "NEW");

    // No change since: the next tick maps nothing and applies nothing.
    let guid = t41["guid"].as_str().unwrap().to_owned();
    let history_before = db.history(&guid, None, 1000).await.unwrap().len();
    let third = test_ticker.tick(&db, now - year).await.unwrap();
    let d = until_done(&db, &third[0].delivery_id).await;
    assert_eq!(d.status, DeliveryStatus::Ignored, "{:?}", d.last_error);
    assert_eq!(d.event_type.as_deref(), Some("no_changes"));
    assert_eq!(
        db.history(&guid, None, 1000).await.unwrap().len(),
        history_before
    );
    // Every tick is a delivery of the inbox, listed by the API.
    let listed: Value = http
        .get(format!("{base}/v1/deliveries?provider=codebase"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 3, "{listed}");

    // A pulled provider has no webhook route, and no sender makes a TICK.
    let pushed = http
        .post(format!("{base}/hooks/codebase"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 404);
    let tick = http
        .request(
            reqwest::Method::from_bytes(b"TICK").unwrap(),
            format!("{base}/hooks/codebase"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(tick.status(), 405);
    running.stop().await;
}

/// `sluice_leader` of a running host.
async fn leads(http: &reqwest::Client, addr: &str) -> bool {
    let Ok(r) = http.get(format!("http://{addr}/metrics")).send().await else {
        return false;
    };
    r.text()
        .await
        .unwrap_or_default()
        .lines()
        .any(|l| l == "sluice_leader 1")
}

async fn until(what: &str, secs: u64, mut pred: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !pred().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_postgres_leader_moves_ticks_and_sweeps_to_the_other_replica() {
    let db = db::postgres().await;
    // A ticket untouched for long: the sweeper has work every second.
    let mut tx = db.begin().await.unwrap();
    tx.insert_ticket(&TicketRow {
        guid: "old".into(),
        subject: "old".into(),
        description: String::new(),
        status: "NEW".into(),
        priority: "MEDIUM".into(),
        ticket_type: "TASK".into(),
        assignee: Some("ana@project-a.com".into()),
        requested_by: None,
        labels: Vec::new(),
        created_at: "2025-01-01T00:00:00.000000Z".into(),
        updated_at: "2025-01-01T00:00:00.000000Z".into(),
        resolved_at: None,
        resolved_by: None,
        escalated_at: None,
        escalated_by: None,
        escalation_reason: None,
        fields: Default::default(),
        status_changed_at: None,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (url, _fake) = FakeApi::start_with_status(|_, _| {
        (
            axum::http::StatusCode::NOT_FOUND,
            json!({"error": "Not Found"}),
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.yaml");
    std::fs::write(
        &config,
        format!(
            r#"listen: 127.0.0.1:0
database: "{db}"
sweeper:
  rules:
    - {{name: stale, schedule: "* * * * * *", filter: {{untouched_over_days: 60}}}}
providers:
  codebase:
    mapper: "{wasm}"
    mapper_config: {{project: bi}}
    schedule: [{{name: pull, every_secs: 1}}]
    api: {{base_url: "{url}"}}
"#,
            db = db.url,
            wasm = component("codebase-mapper").display(),
        ),
    )
    .unwrap();
    let http = reqwest::Client::new();
    let mut a = start_host(&config, &[]);
    until("the first replica to lead", 30, async || {
        leads(&http, &a.addr).await
    })
    .await;
    let b = start_host(&config, &[]);
    // The second replica is up and follows.
    until("the second replica to serve", 30, async || {
        http.get(format!("http://{}/metrics", b.addr))
            .send()
            .await
            .is_ok()
    })
    .await;
    assert!(!leads(&http, &b.addr).await);
    until("a tick processed", 30, async || {
        ticks(&db)
            .await
            .iter()
            .any(|t| t.status == DeliveryStatus::Ignored)
    })
    .await;

    a.child.kill().unwrap(); // SIGKILL: its session, and its lock, end with it.
    a.child.wait().unwrap();
    let killed = host::store::timestamp(Utc::now());

    until("the other replica to lead", 30, async || {
        leads(&http, &b.addr).await
    })
    .await;
    until("a tick after the kill, processed", 30, async || {
        ticks(&db)
            .await
            .iter()
            .any(|t| t.received_at > killed && t.status == DeliveryStatus::Ignored)
    })
    .await;
    until("a sweep after the kill", 30, async || {
        db.notice_summaries()
            .await
            .unwrap()
            .iter()
            .any(|s| s.at > killed)
    })
    .await;
    // Still once per period: one tick per second at most.
    let all = ticks(&db).await;
    let mut keys: Vec<&str> = all.iter().map(|t| t.dedupe_key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), all.len());

    let mut b = b;
    b.child.kill().unwrap();
    b.child.wait().unwrap();
}
