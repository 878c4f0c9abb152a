//! The traffic: the Bitbucket fixtures' pull request (the ticket every
//! comment lands on) and its comment, each copy made distinct (comment id
//! and text) and signed as Bitbucket signs (`X-Hub-Signature`, HMAC-SHA256
//! of the body).
//!
//! The generator shares the machine with the host it measures, so a
//! comment costs it as little as it can: the comment's JSON is serialized
//! once with a marker where the id goes, and each copy is that text with
//! the marker replaced — no JSON tree cloned and written out per request.

use std::path::Path;

use anyhow::{Context, bail};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// Stands for the comment id in the template; long enough that no
/// fixture holds it by chance (checked at load).
const MARKER_ID: u64 = 7_700_770_077_007_700_770;

/// One signed delivery, ready to post.
pub struct Signed {
    pub event: &'static str,
    pub signature: String,
    pub request_uuid: String,
    pub body: Bytes,
}

/// Makes signed deliveries; cheap to share between connections.
pub struct Bodies {
    secret: Vec<u8>,
    pull_request: Value,
    /// The comment's body with `marker` where its id goes.
    comment: String,
    /// [`MARKER_ID`] as text.
    marker: String,
    /// Comment ids start here: a run on a database that holds an earlier
    /// run's comments sends no duplicates (the body is a dedupe key).
    base: u64,
}

impl Bodies {
    /// From `fixtures` (the Bitbucket mapper's fixture folder).
    pub fn load(fixtures: &Path, secret: &str) -> anyhow::Result<Bodies> {
        let read = |name: &str| -> anyhow::Result<Value> {
            let path = fixtures.join(name);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read fixture `{}`", path.display()))?;
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("fixture `{}` is not JSON", path.display()))?;
            Ok(v["delivery"]["body"].clone())
        };
        let base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() % 1_000_000)
            .unwrap_or(0)
            * 1_000_000;
        let mut comment = read("pr_comment.json")?;
        comment["comment"]["id"] = Value::from(MARKER_ID);
        comment["comment"]["content"]["raw"] = Value::from(format!("load comment {MARKER_ID}"));
        let comment = comment.to_string();
        let marker = MARKER_ID.to_string();
        if comment.matches(&marker).count() != 2 {
            bail!("the comment fixture already holds the text {marker}");
        }
        Ok(Bodies {
            secret: secret.as_bytes().to_vec(),
            pull_request: read("pr_created_other_branch.json")?,
            comment,
            marker,
            base,
        })
    }

    /// The pull request the comments are about: posting it creates the
    /// ticket (a duplicate after the first time).
    pub fn pull_request(&self) -> Signed {
        self.signed(
            "pullrequest:created",
            self.pull_request.to_string(),
            "00000000-0000-4000-8000-000000000000".into(),
        )
    }

    /// The `n`-th comment of this run.
    pub fn comment(&self, n: u64) -> Signed {
        let id = self.base + n;
        self.signed(
            "pullrequest:comment_created",
            self.comment.replace(&self.marker, &id.to_string()),
            format!(
                "{:08x}-0000-4000-8000-{:012x}",
                id >> 48,
                id & 0xffff_ffff_ffff
            ),
        )
    }

    fn signed(&self, event: &'static str, body: String, request_uuid: String) -> Signed {
        Signed {
            event,
            signature: sign(&self.secret, body.as_bytes()),
            request_uuid,
            body: Bytes::from(body),
        }
    }
}

/// Bitbucket's signature header value.
fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_comment_is_the_fixture_with_its_own_id_and_a_valid_signature() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappers/bitbucket/fixtures");
        let bodies = Bodies::load(&fixtures, "s3cret").expect("fixtures load");
        let (a, b) = (bodies.comment(1), bodies.comment(2));
        let v: Value = serde_json::from_slice(&a.body).expect("the body is JSON");
        let id = bodies.base + 1;
        assert_eq!(v["comment"]["id"], Value::from(id));
        assert_eq!(
            v["comment"]["content"]["raw"],
            Value::from(format!("load comment {id}"))
        );
        assert_ne!(a.body, b.body);
        assert_ne!(a.request_uuid, b.request_uuid);
        assert_eq!(a.signature, sign(b"s3cret", &a.body));
        assert!(a.signature.starts_with("sha256="));
    }
}
