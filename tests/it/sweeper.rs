//! The stale-ticket sweeper against real stores: seed 2's rules on a
//! controlled clock, once per period across reruns, restarts and two
//! PostgreSQL replicas, and its notices read back through the feed.

use chrono::{DateTime, Utc};
use host::change::{ChangeKind, NoticeKind};
use host::store::{OutboxFilter, Store, TicketRow};
use host::sweeper::{Sweeper, SweeperConfig};

use crate::db;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn ticket(guid: &str, status: &str, updated: &str, status_since: Option<&str>) -> TicketRow {
    TicketRow {
        guid: guid.into(),
        subject: format!("ticket {guid}"),
        description: String::new(),
        status: status.into(),
        priority: "MEDIUM".into(),
        ticket_type: "TASK".into(),
        assignee: Some("ana".into()),
        requested_by: Some("bo".into()),
        labels: Vec::new(),
        created_at: "2026-01-01T00:00:00.000000Z".into(),
        updated_at: updated.into(),
        resolved_at: None,
        resolved_by: None,
        escalated_at: None,
        escalated_by: None,
        escalation_reason: None,
        fields: Default::default(),
        status_changed_at: status_since.map(str::to_owned),
    }
}

/// Tickets of known ages on Monday 2026-06-01: one untouched 70 days, one
/// fresh, one in QA 10 days, one closed long ago.
async fn seed(store: &Store) {
    let mut tx = store.begin().await.unwrap();
    for t in [
        ticket("old", "OPEN", "2026-03-23T09:00:00.000000Z", None),
        ticket("fresh", "OPEN", "2026-05-30T09:00:00.000000Z", None),
        ticket(
            "qa",
            "QA",
            "2026-05-22T09:00:00.000000Z",
            Some("2026-05-22T09:00:00.000000Z"),
        ),
        ticket("done", "CLOSED", "2025-01-01T09:00:00.000000Z", None),
    ] {
        tx.insert_ticket(&t).await.unwrap();
    }
    tx.commit().await.unwrap();
}

fn sweeper() -> Sweeper {
    Sweeper::new(&SweeperConfig::default(), vec!["slack".into()]).unwrap()
}

async fn outbox(store: &Store) -> Vec<host::store::OutboxRow> {
    store
        .find_outbox(&OutboxFilter {
            limit: 100,
            ..OutboxFilter::default()
        })
        .await
        .unwrap()
        .items
}

/// (rule, kind, first ticket) of each notice, sorted.
fn names(notices: &[host::sweeper::Notice]) -> Vec<(String, NoticeKind, String)> {
    let mut v: Vec<_> = notices
        .iter()
        .map(|n| (n.rule.clone(), n.kind, n.tickets[0].guid.clone()))
        .collect();
    v.sort_by(|a, b| (&a.0, a.2.as_str()).cmp(&(&b.0, b.2.as_str())));
    v
}

#[tokio::test]
async fn seed_rules_notify_once_per_period_through_the_outbox() {
    let db = db::sqlite().await;
    seed(&db).await;
    let monday = at("2026-06-01T09:30:00Z");
    let sent = sweeper().sweep(&db, monday).await.unwrap();
    assert_eq!(
        names(&sent),
        vec![
            ("qa_overdue".into(), NoticeKind::Direct, "qa".into()),
            ("qa_overdue".into(), NoticeKind::Digest, "qa".into()),
            ("stale".into(), NoticeKind::Direct, "old".into()),
            ("stale".into(), NoticeKind::Digest, "old".into()),
        ]
    );
    let rows = outbox(&db).await;
    assert_eq!(rows.len(), 4);
    // A digest is of no one ticket: its outbox row has none.
    assert_eq!(rows.iter().filter(|r| r.ticket_guid.is_none()).count(), 2);

    // The feed offers each as a `stale` change.
    let history = db
        .history_rows(&rows.iter().map(|r| r.history_id).collect::<Vec<_>>())
        .await
        .unwrap();
    for row in &rows {
        let h = history.iter().find(|h| h.id == row.history_id).unwrap();
        let ticket = match &row.ticket_guid {
            Some(g) => db.ticket(g).await.unwrap(),
            None => None,
        };
        let change = host::outbound::feed::change_of(row, Some(h), ticket.as_ref(), &[]).unwrap();
        let ChangeKind::Stale(n) = &change.what else {
            panic!("{:?} is not a stale change", change.what)
        };
        match n.kind {
            NoticeKind::Direct => {
                assert_eq!(change.ticket.as_ref().unwrap().guid, n.tickets[0].guid)
            }
            NoticeKind::Digest => assert!(change.ticket.is_none()),
        }
        assert_eq!(n.tickets.len(), 1, "{}", n.rule);
    }

    // A rerun, and a restarted sweeper later in the same period: nothing.
    assert!(sweeper().sweep(&db, monday).await.unwrap().is_empty());
    let restarted = sweeper();
    assert!(
        restarted
            .plan(&db, at("2026-06-01T15:00:00Z"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        restarted
            .sweep(&db, at("2026-06-01T15:00:00Z"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(outbox(&db).await.len(), 4);

    // The stale ticket is touched; Tuesday's period tells only the QA
    // ticket's assignee, and no digest goes out (Mondays only).
    let mut tx = db.begin().await.unwrap();
    let mut old = tx.ticket_for_update("old").await.unwrap().unwrap();
    old.updated_at = "2026-06-01T16:00:00.000000Z".into();
    tx.update_ticket(&old).await.unwrap();
    tx.commit().await.unwrap();
    let tuesday = sweeper()
        .sweep(&db, at("2026-06-02T09:05:00Z"))
        .await
        .unwrap();
    assert_eq!(
        names(&tuesday),
        vec![("qa_overdue".into(), NoticeKind::Direct, "qa".into())]
    );
    assert_eq!(outbox(&db).await.len(), 5);
}

#[tokio::test]
async fn a_tick_missed_beyond_the_catch_up_window_is_not_sent_late() {
    let db = db::sqlite().await;
    seed(&db).await;
    // Saturday: the last weekday tick was Friday 09:00, over 24 hours ago;
    // Monday's digest is five days old.
    let saturday = at("2026-06-06T12:00:00Z");
    assert!(sweeper().plan(&db, saturday).await.unwrap().is_empty());
}

#[tokio::test]
async fn two_postgres_replicas_record_each_notice_once_and_one_leads() {
    let db = db::postgres().await;
    seed(&db).await;
    let other = Store::open(&db.url).await.unwrap();
    let monday = at("2026-06-01T09:30:00Z");
    let (a, b) = tokio::join!(
        async { sweeper().sweep(&db, monday).await.unwrap() },
        async { sweeper().sweep(&other, monday).await.unwrap() }
    );
    assert_eq!(a.len() + b.len(), 4, "a: {a:?}\nb: {b:?}");
    assert_eq!(outbox(&db).await.len(), 4);

    // One leader at a time; leadership moves when the leader goes.
    let first = db
        .try_lead()
        .await
        .unwrap()
        .expect("the first replica leads");
    assert!(other.try_lead().await.unwrap().is_none());
    first.release().await;
    let second = other.try_lead().await.unwrap();
    assert!(second.is_some(), "leadership moved to the other replica");
    second.unwrap().release().await;
    other.close().await;
}

/// A config serving `database` with the built-in Slack mapper (API at
/// `slack_url`) and seed 2's sweeper rules.
fn config_yaml(database: &str, slack_url: &str) -> String {
    config_with(database, slack_url, "{}")
}

/// The same with `sweeper` as the `sweeper:` block (flow YAML).
fn config_with(database: &str, slack_url: &str, sweeper: &str) -> String {
    format!(
        r#"listen: 127.0.0.1:0
database: "{database}"
api:
  tokens:
    - {{name: ops, token: {ADMIN}, scope: admin}}
sweeper: {sweeper}
providers:
  slack:
    verify: {{secret: slack-signing-0123456789}}
    mapper: "{slack}"
    mapper_config: {{channel: {CHANNEL}, ticket_url: "https://tickets.example.com/t/{{guid}}"}}
    api: {{base_url: "{slack_url}"}}
    outbound: {{ok_pointer: /ok, retry_base_ms: 10, retry_max_ms: 50}}
"#,
        slack = crate::helpers::component("slack-mapper").display(),
    )
}

const ADMIN: &str = "admin-token-0123456789abcdef";
const CHANNEL: &str = "C0AXIONALR";

#[tokio::test]
async fn sweep_dry_run_prints_what_would_be_sent_and_writes_nothing() {
    let db = db::sqlite().await;
    seed(&db.store).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.yaml");
    std::fs::write(&config, config_yaml(&db.url, "http://127.0.0.1:9")).unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_host"))
            .args(["sweep", "--config"])
            .arg(&config)
            .args(["--dry-run", "--at", "2026-06-01T09:30:00Z"])
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "stale direct  old OPEN \"ticket old\" untouched 70d",
        "-> ana via [slack]",
        "qa_overdue direct  qa QA \"ticket qa\"",
        "in status 10d",
        "stale digest  1 tickets via [slack]",
        "qa_overdue digest  1 tickets via [slack]",
        "would send 4 notices",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains("fresh") && !text.contains("done"), "{text}");
    // Nothing recorded: no outbox rows, and the same notices are still due.
    assert!(outbox(&db.store).await.is_empty());
    assert_eq!(
        sweeper()
            .plan(&db.store, at("2026-06-01T09:30:00Z"))
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(String::from_utf8(run().stdout).unwrap(), text);
}

/// A recording Slack Web API on loopback: every `chat.postMessage` body,
/// `users.lookupByEmail` answering `U` + the e-mail's length.
async fn recording_slack() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    use axum::extract::State;
    use serde_json::{Value, json};
    type Posts = std::sync::Arc<std::sync::Mutex<Vec<Value>>>;
    async fn answer(
        State(posts): State<Posts>,
        uri: axum::http::Uri,
        body: axum::body::Bytes,
    ) -> axum::Json<Value> {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
        if let Some(email) = path.strip_prefix("/users.lookupByEmail?email=") {
            return axum::Json(json!({"ok": true, "user": {"id": format!("U{}", email.len())}}));
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut posts = posts.lock().unwrap();
        posts.push(body.clone());
        axum::Json(
            json!({"ok": true, "channel": body["channel"], "ts": format!("1700000000.{:06}", posts.len())}),
        )
    }
    let posts = Posts::default();
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(posts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, posts)
}

#[tokio::test]
async fn get_sweeper_shows_rules_next_runs_and_last_results() {
    let db = db::sqlite().await;
    seed_2030(&db.store).await;
    sweeper()
        .sweep(&db.store, at("2030-06-03T09:30:00Z"))
        .await
        .unwrap();
    let (slack_url, _posts) = recording_slack().await;
    let yaml = config_yaml(&db.url, &slack_url);
    let config =
        host::config::Config::parse(&yaml, std::path::Path::new("/config.yaml"), |_| None).unwrap();
    let (base, running) =
        crate::helpers::Running::start(host::app::App::build(&config).await.unwrap());
    let http = reqwest::Client::new();
    let unauthorized = http.get(format!("{base}/v1/sweeper")).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    let v: serde_json::Value = http
        .get(format!("{base}/v1/sweeper"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["enabled"], true);
    let rules = v["rules"].as_array().unwrap();
    let names: Vec<_> = rules.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["stale", "qa_overdue"]);
    let stale = &rules[0];
    assert_eq!(stale["schedule"], "0 9 * * MON-FRI");
    assert_eq!(stale["digest_schedule"], "0 9 * * MON");
    assert_eq!(stale["direct"], true);
    // Next runs are in the future, at 09:00 UTC, the digest on a Monday.
    let now = Utc::now();
    for key in ["next_direct", "next_digest"] {
        let next = at(stale[key].as_str().unwrap());
        assert!(next > now, "{key} {next} is not after {now}");
        assert_eq!(next.format("%H:%M").to_string(), "09:00");
    }
    assert_eq!(
        at(stale["next_digest"].as_str().unwrap())
            .format("%a")
            .to_string(),
        "Mon"
    );
    // The last results: the swept Monday's period, one direct notice and one digest.
    let mut last: Vec<_> = stale["last"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap().to_owned(),
                l["period"].as_str().unwrap().to_owned(),
                l["notices"].as_i64().unwrap(),
                l["tickets"].as_i64().unwrap(),
            )
        })
        .collect();
    last.sort();
    assert_eq!(
        last,
        [
            (
                "digest".to_owned(),
                "2030-06-03T09:00:00.000000Z".to_owned(),
                1,
                1
            ),
            (
                "direct".to_owned(),
                "2030-06-03T09:00:00.000000Z".to_owned(),
                1,
                1
            ),
        ]
    );
    running.stop().await;
}

/// Tickets of known ages in 2030, so the host's own sweeps on today's
/// clock find none of them stale: only the test's sweep does.
async fn seed_2030(store: &Store) {
    seed_at(store, at("2030-06-03T09:30:00Z")).await;
}

/// One ticket untouched 70 days before `now`, one touched the day before,
/// both assigned to ana@example.com.
async fn seed_at(store: &Store, now: DateTime<Utc>) {
    let days_ago = |d: i64| host::store::timestamp(now - chrono::Duration::days(d));
    let mut tx = store.begin().await.unwrap();
    let mut old = ticket("old30", "OPEN", &days_ago(70), None);
    old.assignee = Some("ana@example.com".into());
    let mut fresh = ticket("fresh30", "OPEN", &days_ago(1), None);
    fresh.assignee = Some("ana@example.com".into());
    for t in [old, fresh] {
        tx.insert_ticket(&t).await.unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn stale_notices_reach_slack_once_as_a_dm_and_in_the_channel() {
    use host::store::OutboxStatus;
    let db = db::sqlite().await;
    // The outbound worker sends rows due by the wall clock, so this sweep
    // runs now: a daily tick at midnight UTC, caught up all day, with the
    // host's own sweeper loop sharing the period (whichever sweeps first
    // records the notices; the other finds the key taken).
    let now = Utc::now();
    seed_at(&db.store, now).await;
    let (slack_url, posts) = recording_slack().await;
    let rules = r#"{rules: [{name: stale, schedule: "0 0 * * *", digest: {schedule: "0 0 * * *"},
      filter: {status_not_in: [RESOLVED, CLOSED, CANCELLED], untouched_over_days: 60}}]}"#;
    let yaml = config_with(&db.url, &slack_url, rules);
    let config =
        host::config::Config::parse(&yaml, std::path::Path::new("/config.yaml"), |_| None).unwrap();
    let sweeper = config.sweeper().unwrap().unwrap();
    let (_base, running) =
        crate::helpers::Running::start(host::app::App::build(&config).await.unwrap());
    sweeper.sweep(&db.store, now).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let rows = outbox(&db.store).await;
        if rows.len() == 2 && rows.iter().all(|r| r.status == OutboxStatus::Sent) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "outbox not sent: {rows:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // A rerun of the same period records nothing, so nothing more is sent.
    assert!(sweeper.sweep(&db.store, now).await.unwrap().is_empty());
    running.stop().await;
    let posts = posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 2, "{posts:#?}");
    let dm = posts.iter().find(|p| p["channel"] != CHANNEL).unwrap();
    // U + len("ana%40example.com"), the id users.lookupByEmail answered.
    assert_eq!(dm["channel"], "U17");
    let a = &dm["attachments"][0];
    assert_eq!(a["pretext"], "Review old ticket");
    assert_eq!(a["title"], "Ticket #old30: ticket old30");
    assert_eq!(a["title_link"], "https://tickets.example.com/t/old30");
    assert_eq!(
        a["text"],
        "Hey, <@U17>: The ticket has not been updated for over 70 days, please check if it is \
         still valid - https://tickets.example.com/t/old30"
    );
    let digest = posts.iter().find(|p| p["channel"] == CHANNEL).unwrap();
    assert_eq!(digest["attachments"].as_array().unwrap().len(), 1);
    assert_eq!(
        digest["attachments"][0]["title"],
        "Ticket #old30: ticket old30"
    );
}
