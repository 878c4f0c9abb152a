//! OIDC bearer tokens on webhook deliveries: a Pub/Sub push subscription
//! with authentication sends `Authorization: Bearer <JWT>`, signed by
//! Google (RS256) for the subscription's service account.
//!
//! A token passes when its header names RS256 and a key (`kid`) of the
//! configured JWKS, its signature verifies with that key, `aud` is the
//! configured audience, `iss` one of the accepted issuers, `exp` and `iat`
//! are within the leeway of now, and `email` is the configured service
//! account with `email_verified` true. The algorithm is read from the
//! token's header by us and must be RS256 before any key is used, so
//! `alg: none` and HS256-with-the-public-key confusion never reach a
//! signature check.
//!
//! Keys are fetched from the JWKS URL through the host's HTTP client
//! (`outbound::Documents`) and cached by `kid`. A token naming a key not in
//! the cache re-reads the JWKS — at most once per `refresh_secs`, one fetch
//! at a time — so forged key ids cannot make the host hammer the issuer,
//! while a rotation is picked up by the first token signed with the new key.
//!
//! Errors say which check failed and never echo the token.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::OidcConfig;
use crate::outbound::Documents;

/// Why a token was refused. Every variant answers 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OidcError {
    #[error("missing bearer token in header `Authorization`")]
    MissingToken,
    #[error("the bearer token in `Authorization` is not a JWT")]
    Malformed,
    #[error("the bearer token's algorithm `{0}` is not RS256")]
    Algorithm(String),
    #[error("the bearer token names no key (`kid`)")]
    NoKeyId,
    #[error("the bearer token's key `{0}` is not among the issuer's keys")]
    UnknownKey(String),
    #[error("cannot read the issuer's keys: {0}")]
    Jwks(String),
    #[error("the bearer token's signature does not match")]
    Signature,
    #[error("the bearer token has expired (`exp`)")]
    Expired,
    #[error("the bearer token is issued in the future (`iat`)")]
    IssuedInFuture,
    #[error("the bearer token's audience (`aud`) is not the configured one")]
    Audience,
    #[error("the bearer token's issuer (`iss`) is not accepted")]
    Issuer,
    #[error("the bearer token's `email` is not the configured service account")]
    Email,
    #[error("the bearer token's `email` is not verified (`email_verified`)")]
    EmailUnverified,
    #[error("the bearer token lacks claim `{0}`")]
    MissingClaim(String),
}

/// One provider's token check, with its cached keys.
pub struct Oidc {
    jwks_url: String,
    audience: String,
    email: String,
    issuers: Vec<String>,
    leeway: u64,
    refresh: Duration,
    documents: Documents,
    keys: RwLock<Keys>,
    /// One JWKS fetch at a time: requests with an unknown kid queue here
    /// and find the keys the first one fetched.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    /// The last fetch attempt, successful or not.
    fetched_at: Option<Instant>,
}

/// The claims checked besides `aud`, `iss` (jsonwebtoken checks those).
#[derive(Deserialize)]
struct Claims {
    exp: Option<i64>,
    iat: Option<i64>,
    email: Option<String>,
    email_verified: Option<serde_json::Value>,
}

/// What the token's header says, read by us: jsonwebtoken refuses to parse
/// `alg: none`, and that refusal should name the algorithm.
#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
}

/// Longest `kid` quoted back in an error: it is the sender's text.
const KID_QUOTED_MAX: usize = 64;

impl Oidc {
    pub fn new(c: &OidcConfig) -> Self {
        Oidc {
            jwks_url: c.jwks_url.clone(),
            audience: c.audience.clone(),
            email: c.email.clone(),
            issuers: c.issuers.clone(),
            leeway: c.leeway_secs,
            refresh: Duration::from_secs(c.refresh_secs),
            documents: Documents::default(),
            keys: RwLock::new(Keys::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Checks the bearer token among `headers` (names lower-cased); `now`
    /// is Unix seconds.
    pub async fn verify(&self, headers: &[(String, String)], now: i64) -> Result<(), OidcError> {
        let token = bearer(headers).ok_or(OidcError::MissingToken)?;
        let header = read_header(token)?;
        match header.alg.as_deref() {
            Some("RS256") => {}
            other => return Err(OidcError::Algorithm(other.unwrap_or("").to_owned())),
        }
        let kid = header.kid.ok_or(OidcError::NoKeyId)?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&self.issuers);
        validation.set_required_spec_claims(&["aud", "iss"]);
        // Times are checked below against the caller's clock.
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| classify(e.kind()))?
            .claims;
        let exp = claims
            .exp
            .ok_or_else(|| OidcError::MissingClaim("exp".into()))?;
        let leeway = i64::try_from(self.leeway).unwrap_or(i64::MAX);
        if exp.saturating_add(leeway) < now {
            return Err(OidcError::Expired);
        }
        let iat = claims
            .iat
            .ok_or_else(|| OidcError::MissingClaim("iat".into()))?;
        if iat > now.saturating_add(leeway) {
            return Err(OidcError::IssuedInFuture);
        }
        let email = claims
            .email
            .ok_or_else(|| OidcError::MissingClaim("email".into()))?;
        if !email.eq_ignore_ascii_case(&self.email) {
            return Err(OidcError::Email);
        }
        // Google writes a boolean; some issuers write the string "true".
        let verified = match claims.email_verified {
            Some(serde_json::Value::Bool(b)) => b,
            Some(serde_json::Value::String(s)) => s == "true",
            _ => false,
        };
        if !verified {
            return Err(OidcError::EmailUnverified);
        }
        Ok(())
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_kid
            .get(kid)
            .cloned()
    }

    /// The key `kid`, from the cache or, when the last fetch is older than
    /// `refresh`, from a new read of the JWKS.
    async fn key(&self, kid: &str) -> Result<DecodingKey, OidcError> {
        if let Some(k) = self.cached(kid) {
            return Ok(k);
        }
        let unknown = || {
            let quoted: String = kid
                .chars()
                .filter(|c| !c.is_control())
                .take(KID_QUOTED_MAX)
                .collect();
            OidcError::UnknownKey(quoted)
        };
        let _one_at_a_time = self.fetching.lock().await;
        if let Some(k) = self.cached(kid) {
            return Ok(k);
        }
        let recent = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.refresh);
        if recent {
            return Err(unknown());
        }
        let fetched = self.fetch().await;
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A failed fetch counts too: an unreachable issuer is not asked
        // again for every request.
        keys.fetched_at = Some(Instant::now());
        keys.by_kid = fetched?;
        keys.by_kid.get(kid).cloned().ok_or_else(unknown)
    }

    /// The RSA keys of the JWKS, by `kid`; keys of other types or
    /// algorithms are skipped.
    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, OidcError> {
        let body = self
            .documents
            .get(&self.jwks_url)
            .await
            .map_err(|e| OidcError::Jwks(e.to_string()))?;
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| OidcError::Jwks(format!("not a JWK set: {e}")))?;
        let keys: HashMap<String, DecodingKey> = set
            .keys
            .iter()
            .filter(|k| matches!(k.algorithm, AlgorithmParameters::RSA(_)))
            .filter_map(|k| {
                let kid = k.common.key_id.clone()?;
                DecodingKey::from_jwk(k).ok().map(|d| (kid, d))
            })
            .collect();
        tracing::debug!(url = %self.jwks_url, keys = keys.len(), "OIDC signing keys fetched");
        Ok(keys)
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(headers: &[(String, String)]) -> Option<&str> {
    let value = headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .map(|(_, v)| v.trim())?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn read_header(token: &str) -> Result<Header, OidcError> {
    let first = token.split('.').next().ok_or(OidcError::Malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first.trim_end_matches('='))
        .map_err(|_| OidcError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| OidcError::Malformed)
}

fn classify(kind: &ErrorKind) -> OidcError {
    match kind {
        ErrorKind::InvalidSignature => OidcError::Signature,
        ErrorKind::InvalidAudience => OidcError::Audience,
        ErrorKind::InvalidIssuer => OidcError::Issuer,
        ErrorKind::ExpiredSignature => OidcError::Expired,
        ErrorKind::MissingRequiredClaim(c) => OidcError::MissingClaim(c.clone()),
        _ => OidcError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(value: &str) -> Vec<(String, String)> {
        vec![("authorization".into(), value.into())]
    }

    #[test]
    fn bearer_tokens_are_read_from_authorization() {
        assert_eq!(bearer(&h("Bearer abc.def.ghi")), Some("abc.def.ghi"));
        assert_eq!(bearer(&h("bearer  x")), Some("x"));
        assert_eq!(bearer(&h("Basic x")), None);
        assert_eq!(bearer(&h("Bearer ")), None);
        assert_eq!(bearer(&[]), None);
    }

    #[test]
    fn the_algorithm_is_read_before_any_key() {
        let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let none = format!("{}.{}.", enc(r#"{"alg":"none"}"#), enc("{}"));
        assert_eq!(read_header(&none).unwrap().alg.as_deref(), Some("none"));
        assert_eq!(read_header("%%%.x.y").err(), Some(OidcError::Malformed));
    }
}
