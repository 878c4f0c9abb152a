//! Webhook authenticity: a delivery starts [`Unverified`] and becomes
//! [`Verified`] only through [`Verifier::verify`], so nothing downstream can
//! take an unchecked body by mistake.
//!
//! Schemes (DESIGN.md "Ingress"; PROVIDERS.md for each provider):
//! - HMAC-SHA256 over the raw body, hex or base64, an optional prefix such
//!   as `sha256=`, optionally several signatures in one header (PagerDuty's
//!   `v1=a,v1=b`), optionally with a body timestamp window (Pachca);
//! - HMAC over a template with a timestamp header and a tolerance (Slack's
//!   `v0:{timestamp}:{body}`);
//! - a shared token in a header or a query parameter.
//!
//! Every comparison is constant-time. Errors say which header or parameter
//! failed and never echo a secret or a computed signature.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

/// How a signature is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

/// One verification scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// HMAC-SHA256 of the raw body in `header`.
    HmacBody {
        header: String,
        encoding: Encoding,
        /// Stripped before decoding, e.g. `sha256=` or `v1=`.
        prefix: Option<String>,
        /// The header may carry several comma-separated signatures; any
        /// matching one is enough (secret rotation).
        multiple: bool,
        /// A top-level body field holding a Unix timestamp that must be
        /// within `tolerance` of now (Pachca's `webhook_timestamp`).
        body_timestamp: Option<(String, Duration)>,
    },
    /// HMAC-SHA256 of `template` with `{timestamp}` and `{body}` filled in.
    HmacTimestamped {
        header: String,
        timestamp_header: String,
        template: String,
        prefix: Option<String>,
        tolerance: Duration,
    },
    /// The secret itself, in a header or a query parameter.
    Token {
        header: Option<String>,
        query: Option<String>,
    },
}

/// Why a delivery was refused. Every variant answers 401.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("missing header `{0}`")]
    MissingHeader(String),
    #[error("missing token in header `{header}` or query parameter `{query}`")]
    MissingToken { header: String, query: String },
    #[error("header `{0}` is not a signature in the expected encoding")]
    Malformed(String),
    #[error("signature in `{0}` does not match")]
    Mismatch(String),
    #[error("timestamp in `{0}` is outside the tolerance window")]
    Stale(String),
}

/// A request as received, not yet trusted. `Debug` shows header names and
/// the body's size: the values hold the very tokens being checked.
#[derive(Clone, Copy)]
pub struct Unverified<'r> {
    /// Names lower-cased.
    pub headers: &'r [(String, String)],
    /// The raw query string, without `?`.
    pub query: &'r str,
    pub body: &'r [u8],
}

impl std::fmt::Debug for Unverified<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unverified")
            .field("headers", &crate::redacted::HeaderNames(self.headers))
            .field("body", &crate::redacted::Bytes(self.body.len()))
            .finish_non_exhaustive()
    }
}

/// Proof that a request passed its provider's scheme.
#[derive(Debug)]
pub struct Verified<'r> {
    request: Unverified<'r>,
}

impl<'r> Verified<'r> {
    pub fn headers(&self) -> &'r [(String, String)] {
        self.request.headers
    }

    pub fn body(&self) -> &'r [u8] {
        self.request.body
    }
}

/// A scheme with its secret.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub scheme: Scheme,
    pub secret: SecretString,
}

impl<'r> Unverified<'r> {
    fn header(&self, name: &str) -> Option<&'r str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }
}

impl Verifier {
    /// Checks `request`; `now` is Unix seconds.
    pub fn verify<'r>(
        &self,
        request: Unverified<'r>,
        now: i64,
    ) -> Result<Verified<'r>, VerifyError> {
        let secret = self.secret.expose_secret().as_bytes();
        match &self.scheme {
            Scheme::HmacBody {
                header,
                encoding,
                prefix,
                multiple,
                body_timestamp,
            } => {
                let value = request
                    .header(header)
                    .ok_or_else(|| VerifyError::MissingHeader(header.clone()))?;
                let expected = keyed(secret, &[request.body]);
                let candidates: Vec<&str> = if *multiple {
                    value.split(',').map(str::trim).collect()
                } else {
                    vec![value.trim()]
                };
                let mut any_decoded = false;
                let mut matched = false;
                for c in candidates {
                    let Some(sig) = strip(c, prefix.as_deref()).and_then(|s| decode(s, *encoding))
                    else {
                        continue;
                    };
                    any_decoded = true;
                    // Evaluate every candidate: no early exit on a match.
                    // `verify_slice` compares in constant time.
                    matched |= expected.clone().verify_slice(&sig).is_ok();
                }
                if !any_decoded {
                    return Err(VerifyError::Malformed(header.clone()));
                }
                if !matched {
                    return Err(VerifyError::Mismatch(header.clone()));
                }
                if let Some((field, tolerance)) = body_timestamp {
                    let ts = serde_json::from_slice::<serde_json::Value>(request.body)
                        .ok()
                        .and_then(|v| {
                            v.get(field)
                                .and_then(|t| t.as_i64().or_else(|| t.as_str()?.parse().ok()))
                        })
                        .ok_or_else(|| VerifyError::Stale(field.clone()))?;
                    check_window(ts, now, *tolerance, field)?;
                }
            }
            Scheme::HmacTimestamped {
                header,
                timestamp_header,
                template,
                prefix,
                tolerance,
            } => {
                let ts_text = request
                    .header(timestamp_header)
                    .ok_or_else(|| VerifyError::MissingHeader(timestamp_header.clone()))?;
                let ts: i64 = ts_text
                    .trim()
                    .parse()
                    .map_err(|_| VerifyError::Malformed(timestamp_header.clone()))?;
                // The window first: a replayed request is refused even with
                // a valid signature.
                check_window(ts, now, *tolerance, timestamp_header)?;
                let value = request
                    .header(header)
                    .ok_or_else(|| VerifyError::MissingHeader(header.clone()))?;
                let sig = strip(value.trim(), prefix.as_deref())
                    .and_then(|s| decode(s, Encoding::Hex))
                    .ok_or_else(|| VerifyError::Malformed(header.clone()))?;
                let (before, after) = template.split_once("{body}").unwrap_or((template, ""));
                let before = before.replace("{timestamp}", ts_text.trim());
                let after = after.replace("{timestamp}", ts_text.trim());
                let expected = keyed(secret, &[before.as_bytes(), request.body, after.as_bytes()]);
                if expected.verify_slice(&sig).is_err() {
                    return Err(VerifyError::Mismatch(header.clone()));
                }
            }
            Scheme::Token { header, query } => {
                let presented = header
                    .as_deref()
                    .and_then(|h| request.header(h).map(str::to_owned))
                    .or_else(|| query.as_deref().and_then(|q| request.query_param(q)))
                    .ok_or_else(|| VerifyError::MissingToken {
                        header: header.clone().unwrap_or_default(),
                        query: query.clone().unwrap_or_default(),
                    })?;
                // Digests of both sides have one length, so the comparison
                // says nothing about the secret's length either.
                let presented = Sha256::digest(presented.as_bytes());
                if !bool::from(presented.ct_eq(&Sha256::digest(secret))) {
                    let name = header.clone().or_else(|| query.clone()).unwrap_or_default();
                    return Err(VerifyError::Mismatch(name));
                }
            }
        }
        Ok(Verified { request })
    }
}

/// What a sender adds to a request so that [`Verifier::verify`] accepts it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signature {
    pub headers: Vec<(String, String)>,
    /// A query parameter (token schemes configured with one only).
    pub query: Option<(String, String)>,
}

impl Verifier {
    /// Signs `body` as the provider would at `now` (Unix seconds): for
    /// `host sign`, load generators and tests. A body-timestamp window
    /// (Pachca) is the body's own and is not touched.
    pub fn sign(&self, body: &[u8], now: i64) -> Signature {
        let secret = self.secret.expose_secret().as_bytes();
        let encode = |bytes: Vec<u8>, encoding: Encoding| match encoding {
            Encoding::Hex => hex::encode(bytes),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
        };
        match &self.scheme {
            Scheme::HmacBody {
                header,
                encoding,
                prefix,
                ..
            } => Signature {
                headers: vec![(
                    header.clone(),
                    format!(
                        "{}{}",
                        prefix.as_deref().unwrap_or(""),
                        encode(hmac(secret, &[body]), *encoding)
                    ),
                )],
                query: None,
            },
            Scheme::HmacTimestamped {
                header,
                timestamp_header,
                template,
                prefix,
                ..
            } => {
                let ts = now.to_string();
                let (before, after) = template.split_once("{body}").unwrap_or((template, ""));
                let before = before.replace("{timestamp}", &ts);
                let after = after.replace("{timestamp}", &ts);
                let mac = hmac(secret, &[before.as_bytes(), body, after.as_bytes()]);
                Signature {
                    headers: vec![
                        (timestamp_header.clone(), ts),
                        (
                            header.clone(),
                            format!("{}{}", prefix.as_deref().unwrap_or(""), hex::encode(mac)),
                        ),
                    ],
                    query: None,
                }
            }
            Scheme::Token { header, query } => {
                let token = self.secret.expose_secret().to_owned();
                match (header, query) {
                    (Some(h), _) => Signature {
                        headers: vec![(h.clone(), token)],
                        query: None,
                    },
                    (None, Some(q)) => Signature {
                        headers: Vec::new(),
                        query: Some((q.clone(), token)),
                    },
                    (None, None) => Signature::default(),
                }
            }
        }
    }
}

/// The HMAC state over `parts`, ready to verify a signature against.
fn keyed(secret: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for it,
    // and `KeyInit::new` needs a fixed-size array.
    let mut mac = HmacSha256::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for p in parts {
        mac.update(p);
    }
    mac
}

fn hmac(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    keyed(secret, parts).finalize().into_bytes().to_vec()
}

fn strip<'a>(value: &'a str, prefix: Option<&str>) -> Option<&'a str> {
    match prefix {
        Some(p) => value.strip_prefix(p),
        None => Some(value),
    }
}

fn decode(s: &str, encoding: Encoding) -> Option<Vec<u8>> {
    match encoding {
        Encoding::Hex => hex::decode(s).ok(),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.decode(s).ok(),
    }
}

fn check_window(ts: i64, now: i64, tolerance: Duration, name: &str) -> Result<(), VerifyError> {
    let skew = now.abs_diff(ts);
    if skew > tolerance.as_secs() {
        return Err(VerifyError::Stale(name.to_owned()));
    }
    Ok(())
}

/// Percent-decodes a query component. `+` stays `+`: webhook URLs are
/// written by hand or by the provider's UI, and a token holding `+`
/// (base64) must compare as written, not with a space in its place.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
