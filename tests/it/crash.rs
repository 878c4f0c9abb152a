//! kill -9 under load, then restart: every acknowledged delivery is applied
//! exactly once, nothing acknowledged is lost, nothing is half-applied.

use host::store::Store;

use crate::helpers::{
    CommentLoad, assert_comments_applied_once, bitbucket_fixture, component, post_bitbucket,
    start_host, until_inbox_empty,
};

const DELIVERIES: usize = 1_000;
const KILL_AFTER: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sluice.db");
    let created = bitbucket_fixture("pr_created_other_branch.json");
    let config = dir.path().join("sluice.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\ndatabase: \"{}\"\ndelivery: {{retry_base_ms: 20, retry_max_ms: 200, lease_ms: 300}}\nproviders:\n  bitbucket:\n    verify: {{secret: bb-secret-0123456789}}\n    mapper: \"{}\"\n    mapper_config: {}\n",
            db.display(),
            component("bitbucket-mapper").display(),
            created["config"]
        ),
    )
    .unwrap();

    let mut host = start_host(&config, &[]);
    // The PR's ticket exists before the comments arrive.
    let first = post_bitbucket(
        &reqwest::Client::new(),
        &format!("http://{}", host.addr),
        "pullrequest:created",
        created["delivery"]["body"].to_string().into_bytes(),
        "?wait=true",
    )
    .await
    .unwrap();
    assert!(first.status().is_success());

    // A bounded load of comments, 8 in flight; the host dies part way.
    let load = CommentLoad::start(&format!("http://{}", host.addr), DELIVERIES);
    assert!(
        load.until("acknowledgements", |l| l.acks() >= KILL_AFTER)
            .await
    );
    host.child.kill().unwrap(); // SIGKILL
    host.child.wait().unwrap();
    let acked = load.finish().await;
    eprintln!(
        "{} of {DELIVERIES} acknowledged before the kill",
        acked.len()
    );
    assert!(
        acked.len() >= KILL_AFTER && acked.len() < DELIVERIES,
        "{} acknowledged",
        acked.len()
    );

    // Restart on the same database and let the worker finish.
    let mut host = start_host(&config, &[]);
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    until_inbox_empty(&store, 60).await;
    host.child.kill().unwrap();
    host.child.wait().unwrap();
    assert_comments_applied_once(&store, &acked).await;
    drop(host.log);
}
