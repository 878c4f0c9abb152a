//! The live `provider-api`: the GitHub mapper reads a pull request's
//! reviews from a recording server on loopback standing in for
//! api.github.com, through the real host, with credentials from the config.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use host::app::App;
use host::config::Config;
use serde_json::Value;
use sha2::Sha256;

use crate::db::TestDb;
use crate::helpers::{component, fixtures};

/// What the stand-in API saw.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
    accept: Option<String>,
}

type Answer = Arc<dyn Fn(&str) -> Response + Send + Sync>;

#[derive(Clone)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Answer,
    delay: Duration,
}

async fn record(State(r): State<Recorder>, uri: Uri, headers: HeaderMap) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    r.seen.lock().unwrap().push(Seen {
        path: uri.path().to_owned(),
        authorization: header("authorization"),
        accept: header("accept"),
    });
    // A slow provider, on purpose: the host's timeout and the guest's
    // time limit are what is under test.
    tokio::time::sleep(r.delay).await;
    (r.answer)(uri.path())
}

/// A recording API on an ephemeral loopback port.
async fn stand_in(answer: Answer, delay: Duration) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new().fallback(record).with_state(Recorder {
        seen: seen.clone(),
        answer,
        delay,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures("github").join(name)).unwrap()).unwrap()
}

/// The reviews the fixture recorded, served for its PR.
fn reviews() -> Answer {
    let body =
        fixture("pr_review_approved_completes.json")["api"][0]["response"]["body"].to_string();
    Arc::new(move |path: &str| {
        if path == "/repos/technocore/axion/pulls/42/reviews" {
            ([("content-type", "application/json")], body.clone()).into_response()
        } else {
            StatusCode::NOT_FOUND.into_response()
        }
    })
}

/// A host serving GitHub with its API at `api_base`; `delivery` is the
/// `delivery:` block's body, `extra` more `api:` keys.
fn config(database: &str, api_base: &str, delivery: &str, extra: &str) -> Config {
    let directory = fixture("pr_review_approved_completes.json")["config"].to_string();
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{database}\"\ndelivery: {{{delivery}}}\n\
         providers:\n  github:\n    verify: {{secret: gh-secret-0123456789}}\n    mapper: \"{}\"\n    mapper_config: {directory}\n\
         \x20   api:\n      base_url: \"{api_base}\"\n      auth: {{bearer: gh-api-token}}\n{extra}",
        component("github-mapper").display()
    );
    Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap()
}

struct Host {
    base: String,
    http: reqwest::Client,
    running: crate::helpers::Running,
    db: TestDb,
}

async fn host(db: TestDb, api_base: &str, extra: &str) -> Host {
    // The second attempt comes 100–200 ms after the first: a `?wait=true`
    // answer a lane's claim overtook (it then reports the stored outcome)
    // still reports the first attempt on a loaded machine, where 5–10 ms
    // let the lane reach the second.
    let config = config(
        &db.url,
        api_base,
        "max_attempts: 2, retry_base_ms: 200, retry_max_ms: 400",
        extra,
    );
    let app = App::build(&config).await.unwrap();
    let (base, running) = crate::helpers::Running::start(app);
    Host {
        base,
        http: reqwest::Client::new(),
        running,
        db,
    }
}

impl Host {
    /// Sends a fixture's delivery, signed, with a fresh delivery id, and
    /// waits for its outcome.
    async fn send(&self, name: &str) -> Value {
        let f = fixture(name);
        let body = f["delivery"]["body"].to_string().into_bytes();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"gh-secret-0123456789").unwrap();
        mac.update(&body);
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let resp = self
            .http
            .post(format!("{}/hooks/github?wait=true", self.base))
            .header(
                "x-github-event",
                f["delivery"]["headers"]["X-GitHub-Event"].as_str().unwrap(),
            )
            .header("x-hub-signature-256", sig)
            .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    async fn stop(self) {
        self.running.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_are_read_with_the_configured_credentials_and_cached() {
    let (api, seen) = stand_in(reviews(), Duration::ZERO).await;
    let h = host(crate::db::sqlite().await, &api, "").await;
    let opened = h.send("pr_opened_other_branch.json").await;
    assert_eq!(opened["status"], "applied", "{opened}");
    let guid = opened["applied"][0]["ticket_guid"]
        .as_str()
        .unwrap()
        .to_owned();

    let approved = h.send("pr_review_approved_completes.json").await;
    assert_eq!(approved["status"], "applied", "{approved}");
    let signoffs = h.db.signoffs(&guid).await.unwrap();
    assert!(
        signoffs.iter().any(|s| s.role == "A"
            && s.email == "priya@technocore.co.za"
            && s.status == "APPROVED"),
        "the reviews the API returned complete the set: {signoffs:?}"
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].path, "/repos/technocore/axion/pulls/42/reviews");
        // The host adds the credentials; the mapper never had them.
        assert_eq!(
            seen[0].authorization.as_deref(),
            Some("Bearer gh-api-token")
        );
        assert_eq!(
            seen[0].accept.as_deref(),
            Some("application/vnd.github+json")
        );
    }

    // The same PR again: its reviews come from the GET cache.
    let again = h.send("pr_review_approved_completes.json").await;
    assert_eq!(again["status"], "applied", "{again}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_origin_is_not_followed() {
    let (elsewhere, stolen) = stand_in(reviews(), Duration::ZERO).await;
    let target = format!("{elsewhere}/collect");
    let redirect: Answer = Arc::new(move |_: &str| {
        (StatusCode::FOUND, [("location", target.clone())]).into_response()
    });
    let (api, seen) = stand_in(redirect, Duration::ZERO).await;
    let h = host(crate::db::sqlite().await, &api, "").await;
    let opened = h.send("pr_opened_other_branch.json").await;
    assert_eq!(opened["status"], "applied", "{opened}");
    // An approval whose reviews read fails keeps the reviewer's C
    // sign-off; whether it completes the set (A) is left undecided.
    let approved = h.send("pr_review_approved_completes.json").await;
    assert_eq!(approved["status"], "applied", "{approved}");
    let roles: Vec<&str> = approved["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["C"]);
    // A PR comment needs the PR read: the 3xx fails it.
    let out = h.send("pr_issue_comment.json").await;
    assert_eq!(out["status"], "failed", "{out}");
    assert!(out["error"].as_str().unwrap().contains("302"), "{out}");
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert!(
        stolen.lock().unwrap().is_empty(),
        "credentials left the origin"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_is_retried_then_dead_lettered() {
    // A port that was free a moment ago: connections are refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let h = host(crate::db::sqlite().await, &closed, "").await;
    let out = h.send("pr_issue_comment.json").await;
    // The first attempt's answer: retried later, not failed.
    assert_eq!(out["status"], "retrying", "{out}");
    assert!(
        out["error"].as_str().unwrap().contains("unavailable"),
        "{out}"
    );
    let id = out["delivery_id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let row = h.db.delivery(id).await.unwrap().unwrap();
        if row.status == "dead" {
            assert_eq!(row.attempts, 2);
            assert!(row.last_error.unwrap().contains("gave up after 2 attempts"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stuck at {}",
            row.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_on_the_api_does_not_count_against_the_guest_time_limit() {
    // 1.2 s of API latency against the mapper's 1 s limit: the guest's own
    // time is microseconds, so the call succeeds.
    let (api, _) = stand_in(reviews(), Duration::from_millis(1200)).await;
    let h = host(crate::db::sqlite().await, &api, "      timeout_ms: 5000\n").await;
    let opened = h.send("pr_opened_other_branch.json").await;
    assert_eq!(opened["status"], "applied", "{opened}");
    let out = h.send("pr_review_approved_completes.json").await;
    assert_eq!(out["status"], "applied", "{out}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_api_times_out_at_the_configured_limit() {
    let (api, _) = stand_in(reviews(), Duration::from_secs(3)).await;
    let h = host(crate::db::sqlite().await, &api, "      timeout_ms: 200\n").await;
    let out = h.send("pr_issue_comment.json").await;
    assert_eq!(out["status"], "retrying", "{out}");
    assert!(
        out["error"].as_str().unwrap().contains("timed out"),
        "{out}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_is_renewed_while_a_slow_api_holds_the_delivery() {
    // A 150 ms lease and an API that takes 1.2 s: without renewal, a second
    // replica would take the delivery over mid-call and process it again.
    let (api, seen) = stand_in(reviews(), Duration::from_millis(1200)).await;
    let delivery = "max_attempts: 5, retry_base_ms: 10, retry_max_ms: 20, lease_ms: 150";
    let extra = "      timeout_ms: 5000\n      cache_ttl_secs: 0\n";
    let db = crate::db::postgres().await;
    let replica = {
        let config = config(&db.url, &api, delivery, extra);
        crate::helpers::Running::start(App::build(&config).await.unwrap())
    };
    let h = {
        let config = config(&db.url, &api, delivery, extra);
        let (base, running) = crate::helpers::Running::start(App::build(&config).await.unwrap());
        Host {
            base,
            http: reqwest::Client::new(),
            running,
            db,
        }
    };
    let opened = h.send("pr_opened_other_branch.json").await;
    assert_eq!(opened["status"], "applied", "{opened}");
    let out = h.send("pr_review_approved_completes.json").await;
    assert_eq!(out["status"], "applied", "{out}");
    let row =
        h.db.delivery(out["delivery_id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(row.attempts, 1, "taken over by the replica: {row:?}");
    let calls = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.path.ends_with("/reviews"))
        .count();
    assert_eq!(calls, 1, "the reviews were read by both replicas");
    replica.1.stop().await;
    h.stop().await;
}
