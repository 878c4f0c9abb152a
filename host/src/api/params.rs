//! Turning a request's path, query string and JSON body into typed input:
//! every rejection is an `ApiError` (a 404 for a path that names nothing,
//! a 422 naming the input otherwise), never a 400 or 500 of axum's own
//! shape.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;

use super::error::ApiError;

pub fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::invalid("query", e.body_text()))
}

pub fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(b)| b)
        .map_err(|e| ApiError::invalid("body", e.body_text()))
}

/// A page cursor as the caller sent it, when it has the shape of a `next`
/// this API returns; the store trusts what passes.
pub fn cursor(c: Option<String>) -> Result<Option<String>, ApiError> {
    match c {
        Some(c) if crate::store::cursor_position(&c).is_none() => Err(ApiError::invalid(
            "cursor",
            "is not a cursor this API returned (`next` of a previous page)",
        )),
        c => Ok(c),
    }
}

/// The key a path names (a ticket's guid, a delivery's id). No stored key
/// holds a NUL or invalid UTF-8 (PostgreSQL text cannot hold a NUL), so a
/// path with one names nothing: 404, before any query.
pub struct Key(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Key {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(key)) if !key.contains('\0') => Ok(Key(key)),
            _ => Err(ApiError::NotFound(
                "the path names nothing that is stored".into(),
            )),
        }
    }
}
