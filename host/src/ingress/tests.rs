//! Verification against known vectors: GitHub's and Slack's documented
//! examples, and signatures computed outside Rust (Python's `hmac`) for
//! the other schemes.

use secrecy::SecretString;

use super::presets::{PRESETS, preset};
use super::verify::{Unverified, Verifier, VerifyError};

const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const SLACK_SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
const PD_BODY: &str = r#"{"event":{"id":"01","event_type":"incident.triggered"}}"#;
const PD_NEW: &str = "604508848d767e67e102c6a2440a1229552d10c09ef67bfe4054306c28accc19";
const PD_OLD: &str = "9eb6923f07a4d5a711b3cf6d77274c6051e41d0d62ab83495663233fb2a151fb";
const PACHCA_BODY: &str =
    r#"{"type":"message","event":"new","id":1,"webhook_timestamp":1763800000}"#;
const PACHCA_SIG: &str = "42b406e1ffe522b231ddeabd6c147b2a7d5d8ac14430f391e72d18674fcc8239";

/// Header pairs as ingress keeps them, for tests.
pub(crate) fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

struct Case {
    name: &'static str,
    provider: &'static str,
    secret: &'static str,
    headers: Vec<(&'static str, String)>,
    query: &'static str,
    body: &'static str,
    now: i64,
    want: Result<(), VerifyError>,
}

fn case(
    name: &'static str,
    provider: &'static str,
    secret: &'static str,
    headers: Vec<(&'static str, String)>,
    body: &'static str,
) -> Case {
    Case {
        name,
        provider,
        secret,
        headers,
        query: "",
        body,
        now: 1_531_420_618,
        want: Ok(()),
    }
}

fn run(c: Case) {
    let verifier = Verifier {
        scheme: preset(c.provider).expect("preset").scheme,
        secret: SecretString::from(c.secret),
    };
    let headers: Vec<(String, String)> = c
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    let request = Unverified {
        headers: &headers,
        query: c.query,
        body: c.body.as_bytes(),
    };
    let got = verifier
        .verify(request, c.now)
        .map(|v| assert_eq!(v.body(), c.body.as_bytes()));
    assert_eq!(got, c.want, "{}", c.name);
}

#[test]
fn hmac_body_schemes() {
    let gh = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".to_owned();
    let secret = "It's a Secret to Everybody";
    let cases = vec![
        case(
            "github: documented example",
            "github",
            secret,
            vec![("X-Hub-Signature-256", gh.clone())],
            "Hello, World!",
        ),
        Case {
            want: Err(VerifyError::Mismatch("X-Hub-Signature-256".into())),
            ..case(
                "github: body changed",
                "github",
                secret,
                vec![("X-Hub-Signature-256", gh.clone())],
                "Hello, World?",
            )
        },
        Case {
            want: Err(VerifyError::Mismatch("X-Hub-Signature-256".into())),
            ..case(
                "github: wrong secret",
                "github",
                "another secret",
                vec![("X-Hub-Signature-256", gh.clone())],
                "Hello, World!",
            )
        },
        Case {
            want: Err(VerifyError::MissingHeader("X-Hub-Signature-256".into())),
            ..case(
                "github: unsigned",
                "github",
                secret,
                vec![],
                "Hello, World!",
            )
        },
        Case {
            want: Err(VerifyError::Malformed("X-Hub-Signature-256".into())),
            ..case(
                "github: no prefix",
                "github",
                secret,
                vec![("X-Hub-Signature-256", gh[7..].to_owned())],
                "Hello, World!",
            )
        },
        case(
            "bitbucket: same scheme, X-Hub-Signature",
            "bitbucket",
            secret,
            vec![("X-Hub-Signature", gh.clone())],
            "Hello, World!",
        ),
        case(
            "jira: same scheme",
            "jira",
            secret,
            vec![("X-Hub-Signature", gh.clone())],
            "Hello, World!",
        ),
        case(
            "pagerduty: new and old secrets, new matches",
            "pagerduty",
            "pd-secret-new",
            vec![("X-PagerDuty-Signature", format!("v1={PD_OLD},v1={PD_NEW}"))],
            PD_BODY,
        ),
        case(
            "pagerduty: old secret still listed",
            "pagerduty",
            "pd-secret-old",
            vec![("X-PagerDuty-Signature", format!("v1={PD_OLD}, v1={PD_NEW}"))],
            PD_BODY,
        ),
        Case {
            want: Err(VerifyError::Mismatch("X-PagerDuty-Signature".into())),
            ..case(
                "pagerduty: neither",
                "pagerduty",
                "other",
                vec![("X-PagerDuty-Signature", format!("v1={PD_OLD},v1={PD_NEW}"))],
                PD_BODY,
            )
        },
        case(
            "servicenow: base64",
            "servicenow",
            "sn-secret",
            vec![(
                "X-Sluice-Signature",
                "UgEGa4L9hfVsctG7/tCbpouE5wKupzbV6QebxSsRs14=".into(),
            )],
            r#"{"number":"INC0010001","state":"2"}"#,
        ),
        Case {
            now: 1_763_800_030,
            ..case(
                "pachca: within 60 s",
                "pachca",
                "pachca-secret",
                vec![("Pachca-Signature", PACHCA_SIG.into())],
                PACHCA_BODY,
            )
        },
        Case {
            now: 1_763_800_061,
            want: Err(VerifyError::Stale("webhook_timestamp".into())),
            ..case(
                "pachca: replayed late",
                "pachca",
                "pachca-secret",
                vec![("Pachca-Signature", PACHCA_SIG.into())],
                PACHCA_BODY,
            )
        },
    ];
    for c in cases {
        run(c);
    }
}

#[test]
fn slack_timestamped_signature() {
    let ts = ("X-Slack-Request-Timestamp", "1531420618".to_owned());
    let sig = ("X-Slack-Signature", SLACK_SIG.to_owned());
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let cases = vec![
        case(
            "documented example",
            "slack",
            secret,
            vec![ts.clone(), sig.clone()],
            SLACK_BODY,
        ),
        Case {
            now: 1_531_420_618 + 299,
            ..case(
                "4m59s later",
                "slack",
                secret,
                vec![ts.clone(), sig.clone()],
                SLACK_BODY,
            )
        },
        Case {
            now: 1_531_420_618 + 301,
            want: Err(VerifyError::Stale("X-Slack-Request-Timestamp".into())),
            ..case(
                "replayed 5 minutes later",
                "slack",
                secret,
                vec![ts.clone(), sig.clone()],
                SLACK_BODY,
            )
        },
        Case {
            want: Err(VerifyError::Mismatch("X-Slack-Signature".into())),
            ..case(
                "timestamp swapped",
                "slack",
                secret,
                vec![
                    ("X-Slack-Request-Timestamp", "1531420619".into()),
                    sig.clone(),
                ],
                SLACK_BODY,
            )
        },
        Case {
            want: Err(VerifyError::MissingHeader(
                "X-Slack-Request-Timestamp".into(),
            )),
            ..case(
                "no timestamp",
                "slack",
                secret,
                vec![sig.clone()],
                SLACK_BODY,
            )
        },
        Case {
            want: Err(VerifyError::MissingHeader("X-Slack-Signature".into())),
            ..case(
                "no signature",
                "slack",
                secret,
                vec![ts.clone()],
                SLACK_BODY,
            )
        },
    ];
    for c in cases {
        run(c);
    }
}

#[test]
fn shared_tokens_in_headers_or_query() {
    let secret = "tracker-token-123";
    let cases = vec![
        case(
            "tracker: header",
            "tracker",
            secret,
            vec![("X-Sluice-Token", secret.into())],
            "{}",
        ),
        Case {
            query: "a=1&token=tracker-token-123",
            ..case("tracker: query", "tracker", secret, vec![], "{}")
        },
        Case {
            query: "token=tracker%2Dtoken%2D123",
            ..case(
                "tracker: query, percent-encoded",
                "tracker",
                secret,
                vec![],
                "{}",
            )
        },
        Case {
            query: "token=guess",
            want: Err(VerifyError::Mismatch("X-Sluice-Token".into())),
            ..case("tracker: wrong", "tracker", secret, vec![], "{}")
        },
        Case {
            want: Err(VerifyError::MissingToken {
                header: "X-Sluice-Token".into(),
                query: "token".into(),
            }),
            ..case("tracker: none", "tracker", secret, vec![], "{}")
        },
        case(
            "gitlab: header",
            "gitlab",
            secret,
            vec![("X-Gitlab-Token", secret.into())],
            "{}",
        ),
        case(
            "google: channel token, empty body",
            "google",
            secret,
            vec![("X-Goog-Channel-Token", secret.into())],
            "",
        ),
        Case {
            query: "token=tracker-token-123",
            ..case("gmail: push endpoint token", "gmail", secret, vec![], "{}")
        },
        // A base64 token holds `+`: it compares as written, not as a space.
        Case {
            query: "token=ab+cd/ef==",
            ..case("gmail: `+` in a token", "gmail", "ab+cd/ef==", vec![], "{}")
        },
        Case {
            query: "token=ab%2Bcd%2Fef%3D%3D",
            ..case(
                "gmail: `+` percent-encoded",
                "gmail",
                "ab+cd/ef==",
                vec![],
                "{}",
            )
        },
        Case {
            query: "token=ab%20cd",
            want: Err(VerifyError::Mismatch("token".into())),
            ..case(
                "gmail: a space is not a `+`",
                "gmail",
                "ab+cd",
                vec![],
                "{}",
            )
        },
        // A prefix or an extension of the secret is as wrong as a guess.
        Case {
            query: "token=tracker-token-12",
            want: Err(VerifyError::Mismatch("X-Sluice-Token".into())),
            ..case("tracker: prefix", "tracker", secret, vec![], "{}")
        },
        Case {
            query: "token=tracker-token-1234",
            want: Err(VerifyError::Mismatch("X-Sluice-Token".into())),
            ..case("tracker: longer", "tracker", secret, vec![], "{}")
        },
    ];
    for c in cases {
        run(c);
    }
}

#[test]
fn debug_output_shows_no_token_or_body() {
    let headers = vec![("x-gitlab-token".to_owned(), "glpat-s3cret".to_owned())];
    let request = Unverified {
        headers: &headers,
        query: "token=q-s3cret",
        body: b"{\"password\":\"hunter2\"}",
    };
    let shown = format!("{request:?}");
    for secret in ["glpat-s3cret", "q-s3cret", "hunter2"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains("x-gitlab-token"), "{shown}");
}

#[test]
fn every_preset_is_complete() {
    for name in PRESETS {
        assert!(preset(name).is_some(), "{name}");
    }
    assert!(preset("myspace").is_none());
}
