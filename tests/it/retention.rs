//! Retention of raw delivery bodies, on both backends, with the clock
//! passed in: old bodies of processed deliveries are emptied and marked,
//! newer ones and those still pending keep theirs, a dropped body is not
//! dropped again, and a run never drops more than its batch.

use std::time::Duration;

use chrono::{DateTime, Utc};
use host::store::{NewDelivery, timestamp};

use crate::db::{TestDb, conformance};

const DAY: Duration = Duration::from_secs(86_400);
const KEEP: Duration = Duration::from_secs(30 * 86_400);

fn now() -> DateTime<Utc> {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

/// Stores a delivery received `age` before [`now`], in `status`.
async fn delivery(db: &TestDb, id: &str, age: Duration, status: &str) {
    let received_at = timestamp(now() - chrono::Duration::from_std(age).unwrap());
    db.insert_delivery(&NewDelivery {
        encoded: None,
        id,
        provider: "gitlab",
        dedupe_key: id,
        body_key: None,
        method: "POST",
        path: "/hooks/gitlab",
        headers: &[],
        body: payload(id).as_bytes(),
        received_at: &received_at,
    })
    .await
    .unwrap();
    db.execute(&format!(
        "UPDATE deliveries SET status = '{status}' WHERE id = '{id}'"
    ))
    .await;
}

/// Long enough to be stored compressed, so a dropped body must reset the
/// encoding too.
fn payload(id: &str) -> String {
    format!(
        "{{\"id\": \"{id}\", \"text\": \"{}\"}}",
        "words ".repeat(100)
    )
}

async fn body(db: &TestDb, id: &str) -> Vec<u8> {
    db.delivery(id).await.unwrap().unwrap().body
}

async fn old_bodies_are_dropped_once_and_the_rest_kept(db: TestDb) {
    delivery(&db, "old-applied", 40 * DAY, "applied").await;
    delivery(&db, "old-failed", 31 * DAY, "failed").await;
    delivery(&db, "old-pending", 40 * DAY, "pending").await;
    delivery(&db, "new-applied", 10 * DAY, "applied").await;
    delivery(&db, "edge", 30 * DAY - Duration::from_secs(1), "applied").await;

    let dropped = db.drop_delivery_bodies(now(), KEEP, 100).await.unwrap();
    assert_eq!(dropped, 2);
    for id in ["old-applied", "old-failed"] {
        assert!(body(&db, id).await.is_empty(), "{id} kept its body");
        assert_eq!(
            db.body_dropped_at(id).await.unwrap(),
            Some(timestamp(now())),
            "{id}"
        );
        // The row stays, with its outcome.
        assert!(db.delivery(id).await.unwrap().is_some());
    }
    for id in ["old-pending", "new-applied", "edge"] {
        assert_eq!(body(&db, id).await, payload(id).as_bytes());
        assert_eq!(db.body_dropped_at(id).await.unwrap(), None, "{id}");
    }

    // An hour later: nothing more is old enough, and the dropped ones keep
    // the time they were dropped.
    let later = now() + chrono::Duration::hours(1);
    assert_eq!(db.drop_delivery_bodies(later, KEEP, 100).await.unwrap(), 1);
    assert!(body(&db, "edge").await.is_empty());
    assert_eq!(
        db.body_dropped_at("old-applied").await.unwrap(),
        Some(timestamp(now()))
    );
    assert_eq!(db.drop_delivery_bodies(later, KEEP, 100).await.unwrap(), 0);
}

async fn a_run_drops_at_most_its_batch_oldest_first(db: TestDb) {
    for i in 0..5u32 {
        delivery(&db, &format!("d{i}"), (50 - i) * DAY, "applied").await;
    }
    let mut runs = Vec::new();
    loop {
        let n = db.drop_delivery_bodies(now(), KEEP, 2).await.unwrap();
        runs.push(n);
        if n == 0 {
            break;
        }
        assert!(runs.len() <= 5, "runs never end: {runs:?}");
        if runs.len() == 1 {
            // The two oldest went first.
            for i in 0..5 {
                let id = format!("d{i}");
                assert_eq!(body(&db, &id).await.is_empty(), i < 2, "{id}");
            }
        }
    }
    assert_eq!(runs, [2, 2, 1, 0]);
}

conformance!(
    old_bodies_are_dropped_once_and_the_rest_kept,
    a_run_drops_at_most_its_batch_oldest_first,
);

/// The deliveries API says when a body was dropped (and `null` before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deliveries_api_shows_a_dropped_body() {
    const READ: &str = "read-token-0123456789abcdef";
    let db = crate::db::sqlite().await;
    delivery(&db, "old", 40 * DAY, "applied").await;
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{}\"\nretention: {{delivery_body_days: 0}}\n\
         api:\n  tokens:\n    - {{name: dashboard, token: {READ}, scope: read}}\n",
        db.url
    );
    let config =
        host::config::Config::parse(&yaml, std::path::Path::new("/c.yaml"), |_| None).unwrap();
    let app = host::app::App::build(&config).await.unwrap();
    let (base, running) = crate::helpers::Running::start(app);
    let show = || async {
        reqwest::Client::new()
            .get(format!("{base}/v1/deliveries/old"))
            .bearer_auth(READ)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let before = show().await;
    assert_eq!(before["body_dropped_at"], serde_json::Value::Null);
    assert_eq!(before["body"], payload("old"));
    db.drop_delivery_bodies(now(), KEEP, 10).await.unwrap();
    let after = show().await;
    assert_eq!(after["body_dropped_at"], timestamp(now()));
    assert_eq!(after["body"], "");
    running.stop().await;
}
