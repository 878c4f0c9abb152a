//! One provider's hostile mapper or dead API cannot hold up another
//! provider's deliveries: each provider has its own worker lane, and every
//! mapper call is cut at its wall clock. Nor can a lane hold itself up:
//! its lease renewal never stops the batch it renews the lease for.

use std::path::Path;
use std::time::{Duration, Instant};

use host::app::App;
use host::config::Config;
use host::store::DeliveryStatus;

use crate::helpers::{
    CommentLoad, Running, all_deliveries, bitbucket_fixture, component, post_bitbucket,
};

const GITLAB_TOKEN: &str = "gitlab-token-0123456789";
const TRACKER_TOKEN: &str = "tracker-token-0123456789";
const HOSTILE: usize = 24;
const HEALTHY: usize = 300;

/// A loopback port that accepts connections and never answers: an API
/// behind a black hole.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_provider_does_not_hold_up_a_healthy_one() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-guest");
    let created = bitbucket_fixture("pr_created_other_branch.json");
    // gitlab's mapper sleeps (cut at its 1 s guest limit); tracker's waits
    // on an API that never answers (cut at the 4 s wall clock).
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{db}\"\n\
         mappers: {{wall_clock_ms: 4000}}\n\
         delivery: {{retry_base_ms: 20, retry_max_ms: 100}}\n\
         providers:\n\
         \x20 bitbucket:\n    verify: {{secret: bb-secret-0123456789}}\n    mapper: \"{bb}\"\n    mapper_config: {bb_config}\n\
         \x20 gitlab:\n    verify: {{secret: {GITLAB_TOKEN}}}\n    mapper: \"{hostile}\"\n    mapper_config: {{mode: sleep}}\n\
         \x20 tracker:\n    verify: {{secret: {TRACKER_TOKEN}}}\n    mapper: \"{hostile}\"\n    mapper_config: {{mode: hang_api}}\n\
         \x20   api: {{base_url: \"{hole}\", timeout_ms: 60000}}\n",
        db = dir.path().join("sluice.db").display(),
        bb = component("bitbucket-mapper").display(),
        bb_config = created["config"],
        hostile = hostile.display(),
        hole = black_hole().await,
    );
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let store = app.store().clone();
    let (base, running) = Running::start(app);
    let http = reqwest::Client::new();

    let first = post_bitbucket(
        &http,
        &base,
        "pullrequest:created",
        created["delivery"]["body"].to_string().into_bytes(),
        "?wait=true",
    )
    .await
    .unwrap();
    assert!(first.status().is_success());

    // The hostile backlog first: each batch of theirs takes seconds.
    for i in 0..HOSTILE {
        let body = format!(r#"{{"n":{i}}}"#);
        let r = http
            .post(format!("{base}/hooks/gitlab"))
            .header("x-gitlab-token", GITLAB_TOKEN)
            .header("x-gitlab-event-uuid", uuid::Uuid::new_v4().to_string())
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let r = http
            .post(format!("{base}/hooks/tracker?token={TRACKER_TOKEN}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }

    // Then the healthy provider's traffic: all of it is applied while the
    // hostile deliveries are still being worked through.
    let load = CommentLoad::start(&base, HEALTHY);
    let acked = load.finish().await;
    assert_eq!(acked.len(), HEALTHY);
    let deadline = Instant::now() + Duration::from_secs(60);
    let hostile_left = loop {
        let rows = all_deliveries(&store).await;
        let bitbucket_done = rows
            .iter()
            .filter(|r| r.provider == "bitbucket")
            .all(|r| r.status == DeliveryStatus::Applied);
        if bitbucket_done {
            break rows
                .iter()
                .filter(|r| r.provider == "tracker")
                .filter(|r| {
                    matches!(
                        r.status,
                        DeliveryStatus::Pending | DeliveryStatus::Processing
                    )
                })
                .count();
        }
        assert!(
            Instant::now() < deadline,
            "the healthy provider's deliveries were not all applied within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        hostile_left > 0,
        "the hostile backlog finished first: the test proves nothing"
    );

    // The cut calls end as the runtime's verdicts, each on its own lane.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = all_deliveries(&store).await;
        let sleepers: Vec<_> = rows.iter().filter(|r| r.provider == "gitlab").collect();
        let hangers: Vec<_> = rows.iter().filter(|r| r.provider == "tracker").collect();
        let sleepers_done = sleepers.iter().all(|r| r.status == DeliveryStatus::Failed);
        // Cut while waiting on the API: the provider's passing trouble,
        // retried (and tried again meanwhile), never failed.
        let hangers_cut = hangers.iter().all(|r| {
            r.status != DeliveryStatus::Failed
                && r.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("wall-clock limit of 4000 ms"))
        });
        if sleepers_done && hangers_cut {
            assert!(
                sleepers.iter().all(|r| r
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("time limit of 1000 ms"))),
                "{:?}",
                sleepers[0].last_error
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hostile deliveries not ended within 60 s: {:?}",
            rows.iter()
                .filter(|r| r.provider != "bitbucket")
                .map(|r| (&r.provider, r.status, &r.last_error))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
}

/// A lease renewal never stops the work it renews the lease for. The work
/// here is a finish that has written its claimed delivery and not yet
/// committed, as a lane's is; the renewal that comes due meanwhile waits
/// for that row's lock. The work goes on regardless — it commits once it
/// sees the renewal waiting — and the renewal then finds the row finished.
/// (When the renewal ran instead of the work, each waited for the other
/// until PostgreSQL's statement timeout cut the renewal, 15 s later, and
/// again at the next renewal: a lane stalled for minutes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_renewal_waiting_for_the_work_does_not_stop_it() {
    use host::queue::hold_lease;
    use host::store::Queue;
    use sqlx::{Connection, Executor};

    let db = crate::db::postgres().await;
    crate::helpers::store_github_delivery(&db.store, "d1", "d1").await;
    // A short lease: a renewal every 10 ms.
    let lease = Duration::from_millis(30);
    let claimed = db
        .claim_deliveries(&["github".to_owned()], 1, lease)
        .await
        .unwrap();
    let token = claimed[0].claim_token.clone().unwrap();
    let work = async {
        let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        conn.execute("BEGIN").await.unwrap();
        conn.execute("UPDATE deliveries SET status = 'applied' WHERE id = 'd1'")
            .await
            .unwrap();
        // Until a renewal waits for this transaction's lock on the row.
        while !db
            .sessions()
            .await
            .iter()
            .any(|s| s.contains("waits=Lock:"))
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        conn.execute("COMMIT").await.unwrap();
        conn.close().await.unwrap();
    };
    let held = tokio::time::timeout(
        Duration::from_secs(30),
        hold_lease(&db.store, Queue::Inbox, &[token], lease, work),
    )
    .await;
    assert!(held.is_ok(), "the work waited for its own lease renewal");
    let row = db.delivery("d1").await.unwrap().unwrap();
    assert_eq!(row.status, DeliveryStatus::Applied);
}
