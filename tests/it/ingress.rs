//! `POST /hooks/{provider}` over real HTTP with real signatures: every
//! verification scheme with good, bad, stale and missing signatures,
//! duplicates, oversize bodies, handshakes — and what is stored.

use std::path::Path;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use host::app::App;
use host::config::Config;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::db::{TestDb, conformance};

const CONFIG: &str = r#"
listen: 127.0.0.1:0
database: "{db}"
providers:
  github: {verify: {secret: gh-secret-0123456789}}
  bitbucket: {verify: {secret: bb-secret-0123456789}, body_limit: 1024}
  slack: {verify: {secret: slack-secret-0123456789}}
  pagerduty: {verify: {secret: pd-secret-0123456789}}
  pachca: {verify: {secret: pachca-secret-0123456789}}
  servicenow: {verify: {secret: sn-secret-0123456789}}
  tracker: {verify: {secret: tracker-token-0123}}
  gitlab: {verify: {secret: gitlab-token-0123456789}}
  calendar: {verify: {preset: google, secret: channel-token-0123}}
  yt: {verify: {preset: tracker, secret: yt-token-0123456789, header: X-Tracker-Token}, dedupe: {body_field: /issue/key}}
  asana: {verify: {secret: asana-handshake-token}}
"#;

struct Hooks {
    base: String,
    http: reqwest::Client,
    running: crate::helpers::Running,
    db: TestDb,
}

async fn spawn(db: TestDb) -> Hooks {
    let yaml = CONFIG.replace("{db}", &db.url);
    let config = Config::parse(&yaml, Path::new("hooks.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let (base, running) = crate::helpers::Running::start(app);
    Hooks {
        base,
        http: reqwest::Client::new(),
        running,
        db,
    }
}

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    hex::encode(hmac_raw(secret, parts))
}

fn hmac_raw(secret: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

impl Hooks {
    async fn post(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: impl Into<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .body(body.into());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn stored(&self, provider: &str) -> i64 {
        self.db.count_deliveries(provider).await.unwrap()
    }

    async fn stop(self) {
        self.running.stop().await;
    }
}

conformance!(
    every_scheme_accepts_good_and_refuses_bad_stale_and_missing,
    a_stored_delivery_keeps_its_raw_bytes_and_headers,
    duplicates_are_acknowledged_once_and_stored_once,
    oversize_and_unknown_are_refused_with_nothing_stored,
    slack_url_verification_answers_the_challenge,
    configured_overrides_replace_the_preset,
    asana_handshake_needs_the_token_and_its_secret_signs_later_deliveries,
    gitlab_redeliveries_are_stored_once_by_idempotency_key,
);

async fn every_scheme_accepts_good_and_refuses_bad_stale_and_missing(db: TestDb) {
    let hooks = spawn(db).await;
    let now = chrono::Utc::now().timestamp();
    let body = br#"{"hello":"world"}"#.as_slice();
    let gh = format!("sha256={}", hmac_hex("gh-secret-0123456789", &[body]));
    let pd = format!(
        "v1={},v1={}",
        hmac_hex("old-secret", &[body]),
        hmac_hex("pd-secret-0123456789", &[body])
    );
    let sn =
        base64::engine::general_purpose::STANDARD.encode(hmac_raw("sn-secret-0123456789", &[body]));
    let slack_sig = |ts: i64, secret: &str| {
        format!(
            "v0={}",
            hmac_hex(secret, &[format!("v0:{ts}:").as_bytes(), body])
        )
    };
    let pachca_body =
        |ts: i64| format!(r#"{{"type":"message","event":"new","id":7,"webhook_timestamp":{ts}}}"#);
    let pachca_sig = |b: &str| hmac_hex("pachca-secret-0123456789", &[b.as_bytes()]);
    let fresh = pachca_body(now);
    let stale = pachca_body(now - 120);

    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, String)>,
        Vec<u8>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "github good",
            "/hooks/github",
            vec![
                ("x-hub-signature-256", gh.clone()),
                ("x-github-delivery", "d1".into()),
            ],
            body.to_vec(),
            StatusCode::ACCEPTED,
            "",
        ),
        (
            "github bad",
            "/hooks/github",
            vec![(
                "x-hub-signature-256",
                format!("sha256={}", hmac_hex("guess", &[body])),
            )],
            body.to_vec(),
            StatusCode::UNAUTHORIZED,
            "x-hub-signature-256",
        ),
        (
            "github missing",
            "/hooks/github",
            vec![],
            body.to_vec(),
            StatusCode::UNAUTHORIZED,
            "missing header `X-Hub-Signature-256`",
        ),
        (
            "bitbucket good",
            "/hooks/bitbucket",
            vec![(
                "x-hub-signature",
                format!("sha256={}", hmac_hex("bb-secret-0123456789", &[body])),
            )],
            body.to_vec(),
            StatusCode::ACCEPTED,
            "",
        ),
        (
            "bitbucket github's secret",
            "/hooks/bitbucket",
            vec![("x-hub-signature", gh.clone())],
            body.to_vec(),
            StatusCode::UNAUTHORIZED,
            "does not match",
        ),
        (
            "pagerduty rotated",
            "/hooks/pagerduty",
            vec![
                ("x-pagerduty-signature", pd.clone()),
                ("x-webhook-id", "w1".into()),
            ],
            body.to_vec(),
            StatusCode::ACCEPTED,
            "",
        ),
        (
            "servicenow base64",
            "/hooks/servicenow",
            vec![("x-sluice-signature", sn.clone())],
            body.to_vec(),
            StatusCode::ACCEPTED,
            "",
        ),
        (
            "servicenow hex is malformed",
            "/hooks/servicenow",
            vec![(
                "x-sluice-signature",
                hmac_hex("sn-secret-0123456789", &[body]),
            )],
            body.to_vec(),
            StatusCode::UNAUTHORIZED,
            "",
        ),
        (
            "slack good",
            "/hooks/slack",
            vec![
                ("x-slack-request-timestamp", now.to_string()),
                (
                    "x-slack-signature",
                    slack_sig(now, "slack-secret-0123456789"),
                ),
            ],
            body.to_vec(),
            StatusCode::ACCEPTED,
            "",
        ),
        (
            "slack stale",
            "/hooks/slack",
            vec![
                ("x-slack-request-timestamp", (now - 600).to_string()),
                (
                    "x-slack-signature",
                    slack_sig(now - 600, "slack-secret-0123456789"),
                ),
            ],
            body.to_vec(),
            StatusCode::UNAUTHORIZED,
            "outside the tolerance",
        ),
        (
            "slack forged",
            "/hooks/slack",
            vec![
                ("x-slack-request-timestamp", now.to_string()),
                ("x-slack-signature", slack_sig(now, "forger")),
            ],
            body.to_vec(),
            StatusCode::UNAUTHORIZED,
            "does not match",
        ),
        (
            "pachca fresh",
            "/hooks/pachca",
            vec![("pachca-signature", pachca_sig(&fresh))],
            fresh.clone().into_bytes(),
            StatusCode::ACCEPTED,
            "",
        ),
        (
            "pachca replayed",
            "/hooks/pachca",
            vec![("pachca-signature", pachca_sig(&stale))],
            stale.clone().into_bytes(),
            StatusCode::UNAUTHORIZED,
            "webhook_timestamp",
        ),
        (
            "tracker header token",
            "/hooks/tracker",
            vec![("x-sluice-token", "tracker-token-0123".into())],
            body.to_vec(),
            StatusCode::ACCEPTED,
            "",
        ),
        (
            "tracker query token",
            "/hooks/tracker?token=tracker-token-0123",
            vec![],
            br#"{"other":1}"#.to_vec(),
            StatusCode::ACCEPTED,
            "",
        ),
        (
            "tracker wrong token",
            "/hooks/tracker?token=nope",
            vec![],
            body.to_vec(),
            StatusCode::UNAUTHORIZED,
            "",
        ),
        (
            "calendar header-only delivery",
            "/hooks/calendar",
            vec![
                ("x-goog-channel-token", "channel-token-0123".into()),
                ("x-goog-channel-id", "ch".into()),
                ("x-goog-message-number", "1".into()),
            ],
            Vec::new(),
            StatusCode::ACCEPTED,
            "",
        ),
    ];
    let mut accepted: std::collections::BTreeMap<&str, i64> = Default::default();
    for (name, path, headers, body, want, message) in cases {
        let provider = path
            .trim_start_matches("/hooks/")
            .split('?')
            .next()
            .unwrap();
        let before = hooks.stored(provider).await;
        let (status, reply) = hooks.post(path, &headers, body).await;
        assert_eq!(status, want, "{name}: {reply}");
        if want == StatusCode::UNAUTHORIZED {
            assert_eq!(reply["error"]["code"], "bad_signature", "{name}");
            let text = reply["error"]["message"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase();
            assert!(
                text.contains(&message.to_ascii_lowercase()),
                "{name}: {text}"
            );
            assert_eq!(
                hooks.stored(provider).await,
                before,
                "{name}: a refused delivery left a trace"
            );
        } else {
            *accepted.entry(provider).or_default() += 1;
            assert_eq!(hooks.stored(provider).await, before + 1, "{name}");
        }
    }
    assert_eq!(accepted.values().sum::<i64>(), 9);
    hooks.stop().await;
}

async fn a_stored_delivery_keeps_its_raw_bytes_and_headers(db: TestDb) {
    let hooks = spawn(db).await;
    // Not UTF-8, not JSON: judging it is the mapper's job, not the door's.
    let body: Vec<u8> = vec![0xff, 0xfe, b'{', 0x00, b'}'];
    let sig = format!("sha256={}", hmac_hex("gh-secret-0123456789", &[&body]));
    let (status, reply) = hooks
        .post(
            "/hooks/github?x=1",
            &[
                ("x-hub-signature-256", sig),
                ("x-github-delivery", "raw-1".into()),
                ("X-GitHub-Event", "push".into()),
            ],
            body.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let id = reply["delivery_id"].as_str().unwrap();
    let d = hooks.db.delivery(id).await.unwrap().unwrap();
    assert_eq!(d.body, body);
    assert_eq!(
        (
            d.provider.as_str(),
            d.method.as_str(),
            d.path.as_str(),
            d.status.as_str()
        ),
        ("github", "POST", "/hooks/github?x=1", "pending")
    );
    assert_eq!(d.dedupe_key, "h:raw-1");
    assert!(
        d.headers
            .contains(&("x-github-event".into(), "push".into())),
        "{:?}",
        d.headers
    );
    hooks.stop().await;
}

async fn duplicates_are_acknowledged_once_and_stored_once(db: TestDb) {
    let hooks = spawn(db).await;
    let body = br#"{"action":"opened"}"#;
    let headers = [
        (
            "x-hub-signature-256",
            format!("sha256={}", hmac_hex("gh-secret-0123456789", &[body])),
        ),
        ("x-github-delivery", "dup-1".to_owned()),
    ];
    let (first, a) = hooks.post("/hooks/github", &headers, body.to_vec()).await;
    let (second, b) = hooks.post("/hooks/github", &headers, body.to_vec()).await;
    assert_eq!((first, second), (StatusCode::ACCEPTED, StatusCode::OK));
    assert_eq!(a["delivery_id"], b["delivery_id"]);
    assert_eq!(b["duplicate"], true);
    assert_eq!(hooks.stored("github").await, 1);

    // No id header (PagerDuty without X-Webhook-Id): the body hash decides.
    let pd = |b: &[u8]| {
        vec![(
            "x-pagerduty-signature",
            format!("v1={}", hmac_hex("pd-secret-0123456789", &[b])),
        )]
    };
    let (s1, _) = hooks
        .post("/hooks/pagerduty", &pd(b"{\"n\":1}"), b"{\"n\":1}".to_vec())
        .await;
    let (s2, _) = hooks
        .post("/hooks/pagerduty", &pd(b"{\"n\":1}"), b"{\"n\":1}".to_vec())
        .await;
    let (s3, _) = hooks
        .post("/hooks/pagerduty", &pd(b"{\"n\":2}"), b"{\"n\":2}".to_vec())
        .await;
    assert_eq!(
        (s1, s2, s3),
        (StatusCode::ACCEPTED, StatusCode::OK, StatusCode::ACCEPTED)
    );
    assert_eq!(hooks.stored("pagerduty").await, 2);
    hooks.stop().await;
}

async fn oversize_and_unknown_are_refused_with_nothing_stored(db: TestDb) {
    let hooks = spawn(db).await;
    let big = vec![b'x'; 2048];
    let sig = format!("sha256={}", hmac_hex("bb-secret-0123456789", &[&big]));
    let (status, reply) = hooks
        .post("/hooks/bitbucket", &[("x-hub-signature", sig)], big)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");
    assert_eq!(reply["error"]["code"], "too_large");
    assert_eq!(hooks.stored("bitbucket").await, 0);

    let (status, reply) = hooks.post("/hooks/myspace", &[], b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(reply["error"]["code"], "not_found");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("myspace")
    );
    hooks.stop().await;
}

async fn slack_url_verification_answers_the_challenge(db: TestDb) {
    let hooks = spawn(db).await;
    let now = chrono::Utc::now().timestamp();
    let body = br#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let sig = format!(
        "v0={}",
        hmac_hex(
            "slack-secret-0123456789",
            &[format!("v0:{now}:").as_bytes(), body]
        )
    );
    let (status, reply) = hooks
        .post(
            "/hooks/slack",
            &[
                ("x-slack-request-timestamp", now.to_string()),
                ("x-slack-signature", sig),
            ],
            body.to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        reply,
        json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );
    assert_eq!(hooks.stored("slack").await, 0);
    hooks.stop().await;
}

async fn configured_overrides_replace_the_preset(db: TestDb) {
    let hooks = spawn(db).await;
    let token = [("x-tracker-token", "yt-token-0123456789".to_owned())];
    // The preset's header no longer carries the token.
    let (status, _) = hooks
        .post(
            "/hooks/yt",
            &[("x-sluice-token", "yt-token-0123456789".into())],
            br#"{"issue":{"key":"Q-1"}}"#.to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (first, _) = hooks
        .post(
            "/hooks/yt",
            &token,
            br#"{"issue":{"key":"Q-1"},"n":1}"#.to_vec(),
        )
        .await;
    // A different body with the same issue key is the same delivery.
    let (second, reply) = hooks
        .post(
            "/hooks/yt",
            &token,
            br#"{"issue":{"key":"Q-1"},"n":2}"#.to_vec(),
        )
        .await;
    assert_eq!(
        (first, second),
        (StatusCode::ACCEPTED, StatusCode::OK),
        "{reply}"
    );
    let d = hooks
        .db
        .delivery(reply["delivery_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.dedupe_key, "f:Q-1");
    assert_eq!(hooks.stored("yt").await, 1);
    hooks.stop().await;
}

async fn asana_handshake_needs_the_token_and_its_secret_signs_later_deliveries(db: TestDb) {
    let hooks = spawn(db).await;
    let body =
        br#"{"events":[{"action":"changed","resource":{"gid":"1201","resource_type":"task"}}]}"#;
    let signed = |secret: &str| vec![("x-hook-signature", hmac_hex(secret, &[body]))];

    // Before any handshake no secret is known: refused, nothing stored.
    let (status, err) = hooks
        .post("/hooks/asana", &signed("s1"), body.as_slice())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no handshake"),
        "{err}"
    );

    // A handshake must carry the configured token.
    let handshake = |query: &'static str, secret: &'static str| {
        hooks
            .http
            .post(format!("{}/hooks/asana{query}", hooks.base))
            .header("x-hook-secret", secret)
            .send()
    };
    for query in ["", "?token=wrong-token"] {
        let resp = handshake(query, "forged").await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{query}");
    }
    assert!(
        hooks
            .db
            .handshake_secrets("asana")
            .await
            .unwrap()
            .is_empty()
    );

    // Accepted: the secret is echoed and stored.
    let resp = handshake("?token=asana-handshake-token", "s1")
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-hook-secret"], "s1");
    let (status, ack) = hooks
        .post("/hooks/asana", &signed("s1"), body.as_slice())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{ack}");

    // A second webhook brings its own secret; both sign.
    let resp = handshake("?token=asana-handshake-token", "s2")
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let other = br#"{"events":[]}"#;
    let (status, _) = hooks
        .post(
            "/hooks/asana",
            &[("x-hook-signature", hmac_hex("s2", &[other]))],
            other.as_slice(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = hooks
        .post("/hooks/asana", &signed("forged"), body.as_slice())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(hooks.stored("asana").await, 2);
    assert_eq!(
        hooks.db.handshake_secrets("asana").await.unwrap(),
        vec!["s1", "s2"]
    );

    // Another replica on the same database never saw the handshakes: it
    // finds the secrets in the store.
    let url = hooks.db.url.clone();
    let replica = {
        let yaml = CONFIG.replace("{db}", &url);
        let config = Config::parse(&yaml, Path::new("hooks.yaml"), |_| None).unwrap();
        crate::helpers::Running::start(App::build(&config).await.unwrap())
    };
    let third = br#"{"events":[{"action":"added"}]}"#;
    let resp = hooks
        .http
        .post(format!("{}/hooks/asana", replica.0))
        .header("x-hook-signature", hmac_hex("s1", &[third]))
        .body(third.as_slice())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);

    // The replica holds secrets now; a third webhook's handshake answered
    // by the first host still signs deliveries the replica receives.
    let resp = handshake("?token=asana-handshake-token", "s3")
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let fourth = br#"{"events":[{"action":"removed"}]}"#;
    let resp = hooks
        .http
        .post(format!("{}/hooks/asana", replica.0))
        .header("x-hook-signature", hmac_hex("s3", &[fourth]))
        .body(fourth.as_slice())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    replica.1.stop().await;
    hooks.stop().await;
}

/// GitLab resends an event (automatically, or "Resend request" by hand)
/// with the same `Idempotency-Key`; older GitLab sends only
/// `X-Gitlab-Event-UUID`. Either way a redelivery is stored once.
async fn gitlab_redeliveries_are_stored_once_by_idempotency_key(db: TestDb) {
    let hooks = spawn(db).await;
    let post = |key: Option<&str>, uuid: &str, body: &str| {
        let mut headers = vec![
            ("x-gitlab-token", "gitlab-token-0123456789".to_owned()),
            ("x-gitlab-event", "Note Hook".to_owned()),
            ("x-gitlab-event-uuid", uuid.to_owned()),
        ];
        if let Some(k) = key {
            headers.push(("idempotency-key", k.to_owned()));
        }
        let body = body.as_bytes().to_vec();
        let hooks = &hooks;
        async move { hooks.post("/hooks/gitlab", &headers, body).await }
    };
    let (first, a) = post(Some("idem-1"), "uuid-1", r#"{"n":1}"#).await;
    assert_eq!(first, StatusCode::ACCEPTED, "{a}");
    // The retry: same key; its event UUID and even its body may differ
    // (a resend renders the payload again), the key decides.
    let (again, b) = post(Some("idem-1"), "uuid-2", r#"{"n":1,"resent":true}"#).await;
    assert_eq!(again, StatusCode::OK, "{b}");
    assert_eq!(
        (b["duplicate"].clone(), b["delivery_id"].clone()),
        (json!(true), a["delivery_id"].clone())
    );
    // Another event: a new key.
    let (other, _) = post(Some("idem-2"), "uuid-3", r#"{"n":2}"#).await;
    assert_eq!(other, StatusCode::ACCEPTED);
    // Without the key, the event UUID dedupes.
    let (old, _) = post(None, "uuid-4", r#"{"n":3}"#).await;
    let (old_again, _) = post(None, "uuid-4", r#"{"n":3,"resent":true}"#).await;
    assert_eq!((old, old_again), (StatusCode::ACCEPTED, StatusCode::OK));
    assert_eq!(hooks.stored("gitlab").await, 3);
    hooks.stop().await;
}
