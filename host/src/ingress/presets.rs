//! Per-provider presets: the verification scheme and dedupe key each
//! provider's webhooks need (PROVIDERS.md). A provider's config names a
//! preset and may override any part of it.

use std::time::Duration;

use super::dedupe::DedupeKey;
use super::verify::{Encoding, Scheme};

/// A provider's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    pub scheme: Scheme,
    pub dedupe: DedupeKey,
    /// The delivery id is a header the signature does not cover, so a
    /// captured body and signature can be resent under a fresh id: the
    /// body's hash is a second dedupe key (`replay_dedupe` turns it off).
    pub body_replays: bool,
}

fn hmac_body(header: &str, encoding: Encoding, prefix: Option<&str>) -> Scheme {
    Scheme::HmacBody {
        header: header.into(),
        encoding,
        prefix: prefix.map(Into::into),
        multiple: false,
        body_timestamp: None,
    }
}

fn header(name: &str) -> DedupeKey {
    DedupeKey::Header(name.into())
}

/// Header carrying our own signature where the sender is a script we
/// write (ServiceNow business rules, Google Apps Script).
pub const OWN_SIGNATURE_HEADER: &str = "X-Sluice-Signature";
/// Header or query parameter carrying a shared token we configure.
pub const OWN_TOKEN_HEADER: &str = "X-Sluice-Token";

/// The preset called `name`, if there is one.
pub fn preset(name: &str) -> Option<Preset> {
    let p = match name {
        "bitbucket" => Preset {
            scheme: hmac_body("X-Hub-Signature", Encoding::Hex, Some("sha256=")),
            dedupe: header("X-Request-UUID"),
            body_replays: true,
        },
        "github" => Preset {
            scheme: hmac_body("X-Hub-Signature-256", Encoding::Hex, Some("sha256=")),
            dedupe: header("X-GitHub-Delivery"),
            body_replays: true,
        },
        "gitlab" => Preset {
            scheme: Scheme::Token {
                header: Some("X-Gitlab-Token".into()),
                query: None,
            },
            // `Idempotency-Key` is the same on every retry of one event,
            // manual ones included; older GitLab sends only the event UUID.
            dedupe: DedupeKey::FirstHeader(vec![
                "Idempotency-Key".into(),
                "X-Gitlab-Event-UUID".into(),
            ]),
            body_replays: true,
        },
        "slack" => Preset {
            scheme: Scheme::HmacTimestamped {
                header: "X-Slack-Signature".into(),
                timestamp_header: "X-Slack-Request-Timestamp".into(),
                template: "v0:{timestamp}:{body}".into(),
                prefix: Some("v0=".into()),
                tolerance: Duration::from_secs(300),
            },
            dedupe: DedupeKey::BodyField("/event_id".into()),
            body_replays: false,
        },
        "asana" => Preset {
            scheme: hmac_body("X-Hook-Signature", Encoding::Hex, None),
            dedupe: DedupeKey::BodyHash,
            body_replays: false,
        },
        "pachca" => Preset {
            scheme: Scheme::HmacBody {
                header: "Pachca-Signature".into(),
                encoding: Encoding::Hex,
                prefix: None,
                multiple: false,
                body_timestamp: Some(("webhook_timestamp".into(), Duration::from_secs(60))),
            },
            dedupe: DedupeKey::BodyHash,
            body_replays: false,
        },
        "pagerduty" => Preset {
            scheme: Scheme::HmacBody {
                header: "X-PagerDuty-Signature".into(),
                encoding: Encoding::Hex,
                prefix: Some("v1=".into()),
                multiple: true,
                body_timestamp: None,
            },
            dedupe: header("X-Webhook-Id"),
            body_replays: true,
        },
        "jira" => Preset {
            scheme: hmac_body("X-Hub-Signature", Encoding::Hex, Some("sha256=")),
            dedupe: header("X-Atlassian-Webhook-Identifier"),
            body_replays: true,
        },
        "servicenow" | "apps_script" => Preset {
            scheme: hmac_body(OWN_SIGNATURE_HEADER, Encoding::Base64, None),
            dedupe: DedupeKey::BodyHash,
            body_replays: false,
        },
        "tracker" => Preset {
            scheme: Scheme::Token {
                header: Some(OWN_TOKEN_HEADER.into()),
                query: Some("token".into()),
            },
            dedupe: DedupeKey::BodyHash,
            body_replays: false,
        },
        // Calendar and Drive push notifications: no body, our channel token.
        "google" => Preset {
            scheme: Scheme::Token {
                header: Some("X-Goog-Channel-Token".into()),
                query: None,
            },
            dedupe: DedupeKey::Headers(vec![
                "X-Goog-Channel-ID".into(),
                "X-Goog-Message-Number".into(),
            ]),
            body_replays: false,
        },
        // Gmail through a Pub/Sub push subscription whose endpoint carries
        // `?token=`.
        "gmail" => Preset {
            scheme: Scheme::Token {
                header: None,
                query: Some("token".into()),
            },
            dedupe: DedupeKey::BodyField("/message/messageId".into()),
            body_replays: false,
        },
        _ => return None,
    };
    Some(p)
}

/// Every preset name.
pub const PRESETS: [&str; 13] = [
    "bitbucket",
    "github",
    "gitlab",
    "slack",
    "asana",
    "pachca",
    "pagerduty",
    "jira",
    "servicenow",
    "apps_script",
    "tracker",
    "google",
    "gmail",
];
