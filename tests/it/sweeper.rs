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
