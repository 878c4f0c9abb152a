//! Verification secrets stop at ingress. A token scheme's secret arrives in
//! the request itself (`X-Gitlab-Token`, `X-Goog-Channel-Token`,
//! `X-Sluice-Token`, `?token=` for Tracker, Gmail and Asana's webhook URL);
//! once the request is verified the value has done its job, and anyone who
//! could read it back — a read token on the deliveries API, a mapper that
//! logs its headers — could forge deliveries with it. So the value is
//! replaced by [`REDACTED`] before the delivery is stored: the header or
//! parameter stays visible (the shape helps debugging), the secret does not.
//!
//! Signature headers (HMACs) are kept: they prove one body only and cannot
//! sign another. Credentials that no provider's scheme needs but a proxy or
//! a misconfigured sender may add (`Authorization`, `Cookie`) are redacted
//! for every provider: no mapping needs them.
//!
//! Rows stored by earlier versions are redacted by [`redact_stored`] when
//! the store is opened for serving.

use std::collections::BTreeMap;

use super::presets::{PRESETS, preset};
use super::route::Provider;
use super::verify::Scheme;
use crate::store::{Store, StoreError};

/// What a redacted value reads as.
pub const REDACTED: &str = "[redacted]";

/// Headers redacted for every provider (lower-case).
const ALWAYS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-hook-secret",
];

/// The header names and query parameters whose values are secrets, for one
/// provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redaction {
    /// Lower-case.
    headers: Vec<String>,
    query: Vec<String>,
}

impl Redaction {
    /// What `scheme` carries in the clear; `handshake_query` is the token
    /// parameter of a handshake provider's webhook URL (Asana).
    pub fn new(scheme: &Scheme, handshake_query: Option<&str>) -> Self {
        let mut r = Redaction {
            headers: ALWAYS.iter().map(|h| (*h).to_owned()).collect(),
            query: Vec::new(),
        };
        if let Scheme::Token { header, query } = scheme {
            r.headers
                .extend(header.iter().map(|h| h.to_ascii_lowercase()));
            r.query.extend(query.iter().cloned());
        }
        r.query.extend(handshake_query.map(str::to_owned));
        r.normalised()
    }

    /// For rows of a provider no longer configured: every preset's token
    /// header and parameter.
    pub fn every_preset() -> Self {
        let mut r = Redaction::new(
            &Scheme::Token {
                header: None,
                query: Some("token".into()),
            },
            None,
        );
        for p in PRESETS.iter().filter_map(|name| preset(name)) {
            let one = Redaction::new(&p.scheme, None);
            r.headers.extend(one.headers);
            r.query.extend(one.query);
        }
        r.normalised()
    }

    /// Each name once, in order.
    fn normalised(mut self) -> Self {
        self.headers.sort();
        self.headers.dedup();
        self.query.sort();
        self.query.dedup();
        self
    }

    /// `headers` (names lower-cased) with secret values replaced.
    pub fn headers(&self, headers: &[(String, String)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(name, value)| {
                if self.headers.iter().any(|h| h == name) {
                    (name.clone(), REDACTED.to_owned())
                } else {
                    (name.clone(), value.clone())
                }
            })
            .collect()
    }

    /// A path with its query, secret parameters' values replaced; every
    /// other byte kept as received.
    pub fn path(&self, path_and_query: &str) -> String {
        let Some((path, query)) = path_and_query.split_once('?') else {
            return path_and_query.to_owned();
        };
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| {
                let name = pair.split_once('=').map_or(pair, |(k, _)| k);
                let decoded = super::verify::percent_decode(name);
                if self.query.contains(&decoded) {
                    format!("{name}={REDACTED}")
                } else {
                    pair.to_owned()
                }
            })
            .collect();
        format!("{path}?{}", pairs.join("&"))
    }
}

/// Redacts the rows stored before redaction at ingress existed (or by an
/// older replica): each configured provider's with its own redaction, any
/// other provider's with every preset's. Returns how many rows it changed.
pub async fn redact_stored(
    store: &Store,
    providers: &BTreeMap<String, Provider>,
) -> Result<u64, StoreError> {
    let fallback = Redaction::every_preset();
    let mut changed = 0;
    for provider in store.unredacted_providers().await? {
        let redaction = providers
            .get(&provider)
            .map_or_else(|| fallback.clone(), |p| p.redaction.clone());
        changed += store
            .redact_deliveries(&provider, |path, headers| {
                (redaction.path(path), redaction.headers(headers))
            })
            .await?;
    }
    if changed > 0 {
        tracing::info!(
            rows = changed,
            "verification secrets redacted from stored deliveries"
        );
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingress::tests::h;

    #[test]
    fn token_headers_and_parameters_are_redacted_signatures_kept() {
        let token = Redaction::new(
            &Scheme::Token {
                header: Some("X-Sluice-Token".into()),
                query: Some("token".into()),
            },
            None,
        );
        assert_eq!(
            token.headers(&h(&[
                ("x-sluice-token", "s3cret"),
                ("authorization", "Bearer x"),
                ("x-request-id", "1"),
            ])),
            h(&[
                ("x-sluice-token", REDACTED),
                ("authorization", REDACTED),
                ("x-request-id", "1"),
            ])
        );
        assert_eq!(
            token.path("/hooks/tracker?wait=true&token=s3cret&x=1"),
            "/hooks/tracker?wait=true&token=[redacted]&x=1"
        );
        // An encoded name is still the parameter.
        assert_eq!(
            token.path("/hooks/tracker?%74oken=s3cret"),
            "/hooks/tracker?%74oken=[redacted]"
        );
        assert_eq!(token.path("/hooks/tracker"), "/hooks/tracker");

        let hmac = Redaction::new(&preset("github").map(|p| p.scheme).unwrap(), None);
        let signed = h(&[("x-hub-signature-256", "sha256=abc")]);
        assert_eq!(hmac.headers(&signed), signed);
        assert_eq!(hmac.path("/hooks/github?token=x"), "/hooks/github?token=x");

        let asana = Redaction::new(&preset("asana").map(|p| p.scheme).unwrap(), Some("token"));
        assert_eq!(
            asana.path("/hooks/asana?token=t"),
            "/hooks/asana?token=[redacted]"
        );
    }

    #[test]
    fn the_fallback_covers_every_token_preset() {
        let all = Redaction::every_preset();
        let headers = h(&[
            ("x-gitlab-token", "a"),
            ("x-goog-channel-token", "b"),
            ("x-sluice-token", "c"),
        ]);
        assert!(all.headers(&headers).iter().all(|(_, v)| v == REDACTED));
        assert_eq!(all.path("/h?token=a"), "/h?token=[redacted]");
    }
}
