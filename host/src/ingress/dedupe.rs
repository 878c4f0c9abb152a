//! Dedupe keys: what makes two deliveries "the same delivery". A provider's
//! retry carries the same key and is answered 200 without being processed
//! again.

use sha2::{Digest, Sha256};

/// Where a provider's delivery id is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DedupeKey {
    /// A delivery-id header (`X-GitHub-Delivery`, `X-Request-UUID`, ...).
    Header(String),
    /// Several headers together (Google's channel id + message number:
    /// those deliveries have no body).
    Headers(Vec<String>),
    /// The first of these headers present (GitLab's `Idempotency-Key`,
    /// stable across retries, else the older `X-Gitlab-Event-UUID`).
    FirstHeader(Vec<String>),
    /// A JSON pointer into the body (Slack `/event_id`, Pub/Sub
    /// `/message/messageId`).
    BodyField(String),
    /// The SHA-256 of the body, for providers that send no id.
    BodyHash,
}

impl DedupeKey {
    /// The key of one delivery. When the configured header or field is
    /// absent (a Slack interactivity payload has no `event_id`), the body
    /// hash stands in, prefixed so the two kinds never collide.
    pub fn extract(&self, headers: &[(String, String)], body: &[u8]) -> String {
        let header = |name: &str| {
            let name = name.to_ascii_lowercase();
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let found = match self {
            DedupeKey::Header(h) => header(h).map(|v| format!("h:{v}")),
            DedupeKey::Headers(hs) => hs
                .iter()
                .map(|h| header(h))
                .collect::<Option<Vec<_>>>()
                .map(|vs| format!("h:{}", vs.join("/"))),
            DedupeKey::FirstHeader(hs) => {
                hs.iter().find_map(|h| header(h)).map(|v| format!("h:{v}"))
            }
            DedupeKey::BodyField(pointer) => serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| match v.pointer(pointer)? {
                    serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .map(|v| format!("f:{v}")),
            DedupeKey::BodyHash => None,
        };
        found.unwrap_or_else(|| body_hash(body))
    }
}

/// The body-hash dedupe key, the fallback when a delivery carries no id.
pub fn body_hash(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

/// The second key that makes a replayed body a duplicate: the first 128
/// bits of its SHA-256, as hex. Half the length of [`body_hash`], because it
/// is indexed for every delivery of the providers that use it and the index
/// is on the acknowledgement's path; 128 bits are ample against accidental
/// collisions, and a forged collision would need a valid signature too.
pub fn body_key(body: &[u8]) -> String {
    hex::encode(&Sha256::digest(body)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingress::tests::h;

    #[test]
    fn keys_come_from_headers_fields_or_the_body() {
        let body = br#"{"event_id":"Ev123","message":{"messageId":42}}"#;
        let hash = format!("sha256:{}", hex::encode(Sha256::digest(body)));
        let headers = h(&[
            ("x-github-delivery", "abc"),
            ("x-goog-channel-id", "ch1"),
            ("x-goog-message-number", "7"),
        ]);
        let cases = [
            (
                DedupeKey::Header("X-GitHub-Delivery".into()),
                "h:abc".to_owned(),
            ),
            (
                DedupeKey::Headers(vec![
                    "X-Goog-Channel-ID".into(),
                    "X-Goog-Message-Number".into(),
                ]),
                "h:ch1/7".to_owned(),
            ),
            (
                DedupeKey::BodyField("/event_id".into()),
                "f:Ev123".to_owned(),
            ),
            (
                DedupeKey::BodyField("/message/messageId".into()),
                "f:42".to_owned(),
            ),
            (
                DedupeKey::FirstHeader(vec!["Idempotency-Key".into(), "X-GitHub-Delivery".into()]),
                "h:abc".to_owned(),
            ),
            (DedupeKey::BodyHash, hash.clone()),
            // Absent id: the body hash stands in.
            (DedupeKey::Header("X-Request-UUID".into()), hash.clone()),
            (DedupeKey::BodyField("/nope".into()), hash),
        ];
        for (key, want) in cases {
            assert_eq!(key.extract(&headers, body), want, "{key:?}");
        }
    }
}
