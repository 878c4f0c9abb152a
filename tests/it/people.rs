//! The people directory and mapper state, end to end: the config's people
//! seeded, `/v1/people` edits seen by the next mapping, and a provider's
//! state advanced only by deliveries that apply — through the real worker
//! and the hostile guest's `cursor` and `person` modes.

use std::path::Path;

use host::app::App;
use host::config::Config;
use host::store::{DeliveryStatus, NewDelivery};
use host::worker::Worker;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::db::{TestDb, conformance};
use crate::helpers::component;

const ADMIN: &str = "admin-token-0123456789abcdef";
const READ: &str = "read-token-0123456789abcdefg";

fn config(db: &TestDb, mode: &str) -> Config {
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{}\"\napi:\n  tokens:\n    - {{name: ops, token: {ADMIN}, scope: admin}}\n    - {{name: ro, token: {READ}, scope: read}}\n\
         delivery: {{max_attempts: 5, retry_base_ms: 10, retry_max_ms: 20}}\n\
         providers:\n  hostile:\n    verify: {{preset: gitlab, secret: gl-secret-0123456789}}\n    replay_dedupe: false\n    mapper: \"{}\"\n    mapper_config: {{mode: {mode}}}\n\
         people:\n  - email: Ann@Example.com\n    name: Ann Lee\n    identities: {{hostile: ann-h, github: annl}}\n",
        db.url,
        component("hostile-guest").display()
    );
    Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap()
}

/// Stores a delivery for the `hostile` provider, as ingress would.
async fn store_delivery(db: &TestDb, body: &[u8]) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    db.store
        .insert_delivery(&NewDelivery {
            encoded: None,
            id: &id,
            provider: "hostile",
            dedupe_key: &id,
            body_key: None,
            method: "POST",
            path: "/hooks/hostile",
            headers: &[],
            body,
            received_at: &host::store::now(),
        })
        .await
        .unwrap();
    id
}

async fn status(db: &TestDb, id: &str) -> String {
    db.delivery(id)
        .await
        .unwrap()
        .unwrap()
        .status
        .as_str()
        .to_owned()
}

async fn cursor(db: &TestDb) -> Option<String> {
    db.store
        .mapper_state(&["hostile"])
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.key == "cursor")
        .map(|e| e.value)
}

async fn worker(db: &TestDb, mode: &str) -> Worker {
    host::app::worker(&config(db, mode), db.store.clone())
        .await
        .unwrap()
        .unwrap()
}

/// Each applied delivery moves the cursor on from where the last left it;
/// one that maps with no action still commits its move; a failed mapping
/// leaves it where it was.
async fn a_cursor_advances_only_with_deliveries_that_apply(db: TestDb) {
    let w = worker(&db, "cursor").await;
    let stop = CancellationToken::new();
    for expected in ["1", "2"] {
        let id = store_delivery(&db, b"go").await;
        w.drain(&stop).await.unwrap();
        assert_eq!(status(&db, &id).await, "applied");
        assert_eq!(cursor(&db).await.as_deref(), Some(expected));
    }
    let failed = store_delivery(&db, b"fail").await;
    w.drain(&stop).await.unwrap();
    assert_eq!(status(&db, &failed).await, "failed");
    assert_eq!(
        cursor(&db).await.as_deref(),
        Some("2"),
        "a failed mapping wrote"
    );

    let empty = store_delivery(&db, b"empty").await;
    w.drain(&stop).await.unwrap();
    let row = db.delivery(&empty).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.reason.map(|r| r.as_str())),
        ("ignored", Some("filtered"))
    );
    assert_eq!(cursor(&db).await.as_deref(), Some("3"));

    // A replay of an applied delivery changes nothing, its state included.
    let again = w
        .process_now(&empty, host::store::Reclaim::Any)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.status, DeliveryStatus::Ignored);
    assert_eq!(cursor(&db).await.as_deref(), Some("3"));
}

/// Two deliveries mapped in one batch both read cursor 0 and both write 1:
/// one wins, the other retries, maps again on the new value and writes 2.
/// On a loaded machine the lane may apply one before it maps the other;
/// then both apply in turn. Either way no write is lost: the cursor ends
/// at 2.
async fn racing_writers_one_wins_and_the_other_retries(db: TestDb) {
    let w = worker(&db, "cursor").await;
    let a = store_delivery(&db, b"a").await;
    let b = store_delivery(&db, b"b").await;
    let stop = CancellationToken::new();
    w.drain(&stop).await.unwrap();
    let mut ends = vec![status(&db, &a).await, status(&db, &b).await];
    ends.sort();
    if ends == ["applied", "applied"] {
        assert_eq!(cursor(&db).await.as_deref(), Some("2"), "a write was lost");
        return;
    }
    assert_eq!(ends, ["applied", "retrying"]);
    assert_eq!(cursor(&db).await.as_deref(), Some("1"));
    let loser = if status(&db, &a).await == "retrying" {
        &a
    } else {
        &b
    };
    let row = db.delivery(loser).await.unwrap().unwrap();
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or("")
            .contains("mapper state `cursor`"),
        "{:?}",
        row.last_error
    );
    // Due after its backoff (10–20 ms): processed now it maps again.
    let outcome = w
        .process_now(loser, host::store::Reclaim::Any)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.status, DeliveryStatus::Applied);
    assert_eq!(cursor(&db).await.as_deref(), Some("2"));
}

/// The store's compare-and-set on its own: a stale expectation loses.
async fn state_writes_are_compare_and_set(db: TestDb) {
    use host::mapper::StateWrite;
    let set = |expected: Option<&str>, value: Option<&str>| StateWrite {
        key: "k".into(),
        expected: expected.map(Into::into),
        value: value.map(Into::into),
    };
    let mut tx = db.store.begin().await.unwrap();
    assert_eq!(
        tx.commit_state("p", &[set(None, Some("1"))]).await.unwrap(),
        None
    );
    tx.commit().await.unwrap();
    let mut tx = db.store.begin().await.unwrap();
    assert_eq!(
        tx.commit_state("p", &[set(None, Some("x"))]).await.unwrap(),
        Some("k".into())
    );
    assert_eq!(
        tx.commit_state("p", &[set(Some("0"), Some("x"))])
            .await
            .unwrap(),
        Some("k".into())
    );
    assert_eq!(
        tx.commit_state("p", &[set(Some("1"), Some("2"))])
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        tx.commit_state("p", &[set(Some("2"), None)]).await.unwrap(),
        None
    );
    assert_eq!(
        tx.commit_state("p", &[set(None, None)]).await.unwrap(),
        None
    );
    tx.commit().await.unwrap();
    assert!(db.store.mapper_state(&["p"]).await.unwrap().is_empty());
}

/// Config people are seeded; the API lists, shows, edits and deletes
/// them (admin for writes), and a mapping sees each edit at once.
async fn people_are_seeded_edited_and_found_by_mappers(db: TestDb) {
    let app = App::build(&config(&db, "person")).await.unwrap();
    let (base, running) = crate::helpers::Running::start(app);
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let mut r = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let resp = r.send().await.unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let send = |body: &'static str| {
        let url = format!("{base}/hooks/hostile?wait=true");
        let http = http.clone();
        async move {
            http.post(url)
                .header("x-gitlab-token", "gl-secret-0123456789")
                .header("x-gitlab-event-uuid", uuid::Uuid::new_v4().to_string())
                .body(body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    use reqwest::Method;

    let (s, list) = call(Method::GET, "/v1/people", READ, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"][0]["email"], "ann@example.com");
    assert_eq!(
        list["items"][0]["identities"],
        json!([{"provider": "github", "id": "annl"}, {"provider": "hostile", "id": "ann-h"}])
    );
    let out = send("ann-h").await;
    assert_eq!(out["status"], "applied", "{out}");
    assert_eq!(out["actions"][0]["subject"], "ann@example.com Ann Lee");

    // Unknown: the mapper's bad_config, a replayable failure.
    let out = send("bob-h").await;
    assert_eq!(out["status"], "failed");
    assert!(out["error"].as_str().unwrap().contains("nobody is `bob-h`"));

    let bob = json!({"name": "Bob", "identities": [{"provider": "hostile", "id": "bob-h"}]});
    let (s, _) = call(
        Method::PUT,
        "/v1/people/bob@example.com",
        READ,
        Some(bob.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, made) = call(
        Method::PUT,
        "/v1/people/bob@example.com",
        ADMIN,
        Some(bob.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let (s, _) = call(Method::PUT, "/v1/people/bob@example.com", ADMIN, Some(bob)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        send("bob-h").await["actions"][0]["subject"],
        "bob@example.com Bob"
    );

    // A control character is refused where the schema refuses it, even
    // at the end, where trimming would have hidden it.
    let (s, e) = call(
        Method::PUT,
        "/v1/people/bob@example.com",
        ADMIN,
        Some(json!({"name": "Bob\u{c}"})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name")),
        "{e}"
    );

    // An identity is one person's.
    let steal = json!({"identities": [{"provider": "hostile", "id": "ann-h"}]});
    let (s, e) = call(
        Method::PUT,
        "/v1/people/eve@example.com",
        ADMIN,
        Some(steal),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ann@example.com")
    );
    let (s, e) = call(
        Method::PUT,
        "/v1/people/not-an-email",
        ADMIN,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("email"))
    );

    let (s, e) = call(
        Method::PUT,
        "/v1/people/bob@example.com",
        ADMIN,
        Some(json!([])),
    )
    .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("body"))
    );
    let (s, shown) = call(Method::GET, "/v1/people/BOB@example.com", READ, None).await;
    assert_eq!((s, shown["name"].as_str()), (StatusCode::OK, Some("Bob")));
    let (s, _) = call(Method::DELETE, "/v1/people/bob@example.com", ADMIN, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(Method::DELETE, "/v1/people/bob@example.com", ADMIN, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(send("bob-h").await["status"], "failed");

    // The state API: read scope, configured providers only.
    let (s, st) = call(Method::GET, "/v1/providers/hostile/state", READ, None).await;
    assert_eq!(
        (s, st),
        (
            StatusCode::OK,
            json!({"provider": "hostile", "entries": []})
        )
    );
    let (s, _) = call(Method::GET, "/v1/providers/nobody/state", READ, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    running.stop().await;
}

/// The GitLab mapper over real HTTP (`X-Gitlab-Token`), with no
/// `user_directory`: every user comes from the people directory through
/// the kit's `find-person`; one found nowhere is a replayable failure
/// naming provider and id.
async fn gitlab_users_come_from_the_people_directory(db: TestDb) {
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{}\"\n\
         providers:\n  gitlab:\n    verify: {{secret: gl-secret-0123456789}}\n    mapper: \"{}\"\n\
         people:\n  - {{email: ann@technocore.co.za, identities: {{gitlab: ann}}}}\n  - {{email: michael@technocore.co.za, identities: {{gitlab: michael}}}}\n  - {{email: priya@technocore.co.za, identities: {{gitlab: \"4111\"}}}}\n",
        db.url,
        component("gitlab-mapper").display()
    );
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let (base, running) = crate::helpers::Running::start(app);
    let http = reqwest::Client::new();
    let send = |name: &str, token: &str| {
        let f: Value = serde_json::from_str(
            &std::fs::read_to_string(crate::helpers::fixtures("gitlab").join(name)).unwrap(),
        )
        .unwrap();
        let req = http
            .post(format!("{base}/hooks/gitlab?wait=true"))
            .header("x-gitlab-token", token)
            .header(
                "x-gitlab-event",
                f["delivery"]["headers"]["X-Gitlab-Event"].as_str().unwrap(),
            )
            .header("x-gitlab-event-uuid", uuid::Uuid::new_v4().to_string())
            .body(f["delivery"]["body"].to_string());
        async move {
            let resp = req.send().await.unwrap();
            (
                resp.status(),
                resp.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (s, _) = send("pr_created_other_branch.json", "wrong-secret-0123456789").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, out) = send("pr_created_other_branch.json", "gl-secret-0123456789").await;
    assert!(s.is_success(), "{s}");
    assert_eq!(out["status"], "applied", "{out}");
    let emails: Vec<&str> = out["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["email"].as_str().or(a["requested_by"].as_str()))
        .collect();
    // Priya is found by her numeric GitLab id.
    assert_eq!(
        emails,
        [
            "ann@technocore.co.za",
            "ann@technocore.co.za",
            "michael@technocore.co.za",
            "priya@technocore.co.za"
        ]
    );
    let (_, out) = send("error_user_not_in_directory.json", "gl-secret-0123456789").await;
    assert_eq!(out["status"], "failed");
    let error = out["error"].as_str().unwrap();
    assert!(error.contains("no e-mail for gitlab user `zoe`"), "{error}");
    assert!(error.contains("`4999`"), "{error}");
    running.stop().await;
}

conformance!(
    a_cursor_advances_only_with_deliveries_that_apply,
    racing_writers_one_wins_and_the_other_retries,
    state_writes_are_compare_and_set,
    people_are_seeded_edited_and_found_by_mappers,
    slack_users_missing_from_the_directory_are_asked_once,
    gitlab_users_come_from_the_people_directory,
);

/// A Slack user the people directory does not know is looked up with
/// Slack's `users.info` (the mapper's fallback), and the answer is cached
/// (the provider API's GET cache, `api.cache_ttl_secs`): a second DM by
/// the same user asks Slack nothing; a user the directory knows is never
/// asked about.
async fn slack_users_missing_from_the_directory_are_asked_once(db: TestDb) {
    use hmac::{Hmac, Mac};
    let (slack_url, slack) = crate::fake_api::FakeApi::start(|call, _| {
        let id = call.path.split("user=").nth(1).unwrap_or("");
        json!({"ok": true, "user": {"id": id, "profile": {"email": format!("{}@technocore.co.za", id.to_lowercase())}}})
    })
    .await;
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{}\"\n\
         providers:\n  slack:\n    verify: {{secret: slack-secret-0123456789}}\n    mapper: \"{}\"\n    mapper_config: {{channel: C0AXIONALR, bot_user_id: U0SLUICEBOT}}\n    api: {{base_url: \"{slack_url}\", cache_ttl_secs: 300}}\n\
         people:\n  - {{email: michael@technocore.co.za, identities: {{slack: U0MICHAEL1}}}}\n",
        db.url,
        component("slack-mapper").display()
    );
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let (base, running) = crate::helpers::Running::start(app);
    let http = reqwest::Client::new();
    let dm = |user: &str, n: u32| {
        let body = json!({
            "type": "event_callback", "team_id": "T0AXION01", "event_id": format!("Ev0DM{n:04}"),
            "authorizations": [{"user_id": "U0SLUICEBOT", "is_bot": true}],
            "event": {"type": "message", "channel_type": "im", "channel": "D0DM000001", "user": user,
                      "text": format!("create ticket: printer {n} jams"), "ts": format!("1764499700.{n:06}")}
        })
        .to_string();
        let ts = chrono::Utc::now().timestamp().to_string();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"slack-secret-0123456789").unwrap();
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        let req = http
            .post(format!("{base}/hooks/slack?wait=true"))
            .header("x-slack-request-timestamp", ts)
            .header(
                "x-slack-signature",
                format!("v0={}", hex::encode(mac.finalize().into_bytes())),
            )
            .header("content-type", "application/json")
            .body(body);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    for n in 1..=2 {
        let out = dm("U0ANN0001", n).await;
        assert_eq!(out["status"], "applied", "{out}");
        assert_eq!(
            out["actions"][0]["requested_by"], "u0ann0001@technocore.co.za",
            "{out}"
        );
    }
    assert_eq!(slack.calls("GET", "/users.info?user=U0ANN0001").len(), 1);
    let out = dm("U0MICHAEL1", 3).await;
    assert_eq!(
        out["actions"][0]["requested_by"], "michael@technocore.co.za",
        "{out}"
    );
    assert!(slack.calls("GET", "/users.info?user=U0MICHAEL1").is_empty());
    running.stop().await;
}
