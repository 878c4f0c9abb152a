//! Bearer tokens with read and admin scopes, compared in constant time.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::ApiState;
use super::error::ApiError;
use crate::config::Scope;

/// The configured tokens.
#[derive(Default)]
pub struct Tokens {
    tokens: Vec<(String, SecretString, Scope)>,
}

impl Tokens {
    pub fn new(tokens: impl IntoIterator<Item = (String, SecretString, Scope)>) -> Self {
        Tokens {
            tokens: tokens.into_iter().collect(),
        }
    }

    /// The scope of `presented`; every token is compared, so timing says
    /// nothing about which one (or how much of one) matched.
    fn scope_of(&self, presented: &[u8]) -> Option<(&str, Scope)> {
        let mut found = None;
        for (name, secret, scope) in &self.tokens {
            if bool::from(secret.expose_secret().as_bytes().ct_eq(presented)) {
                found = Some((name.as_str(), *scope));
            }
        }
        found
    }
}

/// A caller holding any valid token.
pub struct Reader;

/// A caller holding an admin token.
pub struct Admin {
    /// The token's name: the actor of API changes when none is given.
    pub name: String,
}

fn scope(parts: &Parts, tokens: &Arc<Tokens>) -> Result<(String, Scope), ApiError> {
    let presented = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    tokens
        .scope_of(presented.trim().as_bytes())
        .map(|(name, scope)| (name.to_owned(), scope))
        .ok_or(ApiError::Unauthorized)
}

impl FromRequestParts<ApiState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        scope(parts, &state.tokens).map(|_| Reader)
    }
}

impl FromRequestParts<ApiState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        match scope(parts, &state.tokens)? {
            (name, Scope::Admin) => Ok(Admin { name }),
            (_, Scope::Read) => Err(ApiError::Forbidden),
        }
    }
}
