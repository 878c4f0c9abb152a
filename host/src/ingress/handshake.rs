//! Asana's `X-Hook-Secret` handshake, and verification with the secrets it
//! established.
//!
//! Asana makes up a webhook's signing key itself and hands it over once,
//! in a POST carrying `X-Hook-Secret` while the webhook is being created;
//! the endpoint proves itself by echoing the header. Anyone could send
//! such a POST, so the host accepts a handshake only when it carries the
//! configured `verify.secret` as a token (query parameter `token` unless
//! `verify.query` says otherwise): the webhook's target URL is registered
//! as `…/hooks/asana?token=…`. Each accepted secret is stored (one per
//! webhook: a workspace usually has several) and every later delivery's
//! `X-Hook-Signature` must match one of them.
//!
//! Secrets are cached in memory and re-read from the store when nothing
//! matches, so a handshake answered by another replica is seen too.

use std::sync::RwLock;

use secrecy::{ExposeSecret, SecretString};

use super::verify::{Scheme, Unverified, Verified, Verifier, VerifyError};
use crate::store::{Store, StoreError};

/// The handshake header, as received (names are lower-cased).
pub const SECRET_HEADER: &str = "x-hook-secret";

/// Why a handshake or a delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("no handshake has completed for this provider yet: no signing secret is known")]
    NoSecret,
    #[error("`X-Hook-Secret` is empty or too long")]
    BadSecret,
    #[error("cannot read or store handshake secrets")]
    Store(#[from] StoreError),
}

/// A provider whose signing secrets come from handshakes.
pub struct Handshake {
    /// Checks the configured token on the handshake request.
    token: Verifier,
    /// How deliveries are signed (with a handshake secret).
    signature: Scheme,
    secrets: RwLock<Vec<SecretString>>,
}

impl Handshake {
    pub fn new(token: SecretString, query: Option<String>, signature: Scheme) -> Self {
        Handshake {
            token: Verifier {
                scheme: Scheme::Token {
                    header: None,
                    query: Some(query.unwrap_or_else(|| "token".into())),
                },
                secret: token,
            },
            signature,
            secrets: RwLock::new(Vec::new()),
        }
    }

    /// The query parameter that carries the configured token.
    pub fn token_query(&self) -> &str {
        match &self.token.scheme {
            Scheme::Token { query: Some(q), .. } => q,
            // `new` always builds a query token.
            _ => "token",
        }
    }

    /// The secret a request offers in a handshake, if it is one.
    pub fn offered<'r>(request: &Unverified<'r>) -> Option<&'r str> {
        request
            .headers
            .iter()
            .find(|(n, _)| n == SECRET_HEADER)
            .map(|(_, v)| v.as_str())
    }

    /// Accepts a handshake: checks the token, stores the secret.
    pub async fn accept(
        &self,
        store: &Store,
        provider: &str,
        request: Unverified<'_>,
        secret: &str,
        now: i64,
    ) -> Result<(), HandshakeError> {
        self.token.verify(request, now)?;
        if secret.is_empty() || secret.len() > 512 {
            return Err(HandshakeError::BadSecret);
        }
        store.add_handshake_secret(provider, secret).await?;
        self.write().push(SecretString::from(secret.to_owned()));
        Ok(())
    }

    /// Verifies a delivery against every known secret, re-reading them
    /// from the store once if none matches — also when some are known: a
    /// second webhook's handshake may have been answered by another replica.
    pub async fn verify<'r>(
        &self,
        store: &Store,
        provider: &str,
        request: Unverified<'r>,
        now: i64,
    ) -> Result<Verified<'r>, HandshakeError> {
        if let Some(Ok(v)) = self.try_known(request, now) {
            return Ok(v);
        }
        let stored = store.handshake_secrets(provider).await?;
        *self.write() = stored.into_iter().map(SecretString::from).collect();
        self.try_known(request, now)
            .unwrap_or(Err(HandshakeError::NoSecret))
    }

    /// `None` when no secret is known; else the first match, or the last
    /// secret's refusal.
    fn try_known<'r>(
        &self,
        request: Unverified<'r>,
        now: i64,
    ) -> Option<Result<Verified<'r>, HandshakeError>> {
        let secrets = self.secrets.read().unwrap_or_else(|p| p.into_inner());
        let mut last = None;
        for secret in secrets.iter() {
            let verifier = Verifier {
                scheme: self.signature.clone(),
                secret: SecretString::from(secret.expose_secret().to_owned()),
            };
            match verifier.verify(request, now) {
                Ok(v) => return Some(Ok(v)),
                Err(e) => last = Some(Err(e.into())),
            }
        }
        last
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<SecretString>> {
        self.secrets.write().unwrap_or_else(|p| p.into_inner())
    }
}
