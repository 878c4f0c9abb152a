//! `ApiError`: the one place that picks HTTP status codes. Every error body
//! has one shape: `{"error": {"code": "...", "message": "...", "field": "..."}}`
//! (`field` only when one input is at fault; `file` naming a missing mapper
//! file with 503 `mapper_absent`, which also carries `Retry-After`, as do
//! 503 `overloaded` and `timeout`). 5xx bodies are generic; the
//! cause is logged once, here.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use thiserror::Error;
use utoipa::ToSchema;

use crate::store::StoreError;
use crate::tickets::ApplyError;

#[derive(Debug, Error)]
pub enum ApiError {
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("this token may only read")]
    Forbidden,
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// Well-formed, but the host's current state (its configuration) does
    /// not allow it.
    #[error("{0}")]
    Conflict(String),
    #[error("webhook refused: {0}")]
    BadSignature(String),
    #[error("body is over the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("ticket store unavailable")]
    Store(#[from] StoreError),
    /// The provider's mapper file is missing: refused before anything is
    /// stored, so the sender retries and nothing is lost.
    #[error(
        "the mapper for provider `{provider}` ({file}) is missing; deliveries are refused until it is back"
    )]
    MapperAbsent { provider: String, file: String },
    /// `server.max_concurrent_requests` are in flight: refused at once,
    /// not queued, so a flood cannot grow the host's memory or latency.
    #[error("too many requests in flight; try again shortly")]
    Overloaded,
    /// The request outlived `server.request_timeout_ms`.
    #[error("the request took too long; try again shortly")]
    Timeout,
    /// The body did not arrive within `server.body_read_timeout_ms`.
    #[error("the request body was not received in time")]
    BodyTimeout,
}

/// Every error response's body.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// The input at fault, with `invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
    /// With `mapper_absent`: the missing mapper file.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub file: Option<String>,
}

/// What went wrong, for programs; `message` says it for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    Invalid,
    Conflict,
    BadSignature,
    TooLarge,
    Unavailable,
    MapperAbsent,
    Internal,
    Overloaded,
    Timeout,
    BodyTimeout,
}

/// Seconds a sender is asked to wait before redelivering to a provider
/// whose mapper file is missing.
pub const MAPPER_ABSENT_RETRY_AFTER: &str = "60";

/// Seconds a client is asked to wait after an overload or a timeout: both
/// are passing, and a webhook sender's redelivery is what recovers them.
pub const BUSY_RETRY_AFTER: &str = "1";

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Invalid(v) => ApiError::Invalid {
                field: v.field.to_owned(),
                message: format!("`{}` {}", v.field, v.reason),
            },
            ApplyError::Unresolved { reference, .. } => {
                ApiError::NotFound(format!("no ticket found for {reference}"))
            }
            ApplyError::NotFound(guid) => ApiError::NotFound(format!("no ticket `{guid}`")),
            e @ ApplyError::EchoPending { .. } => ApiError::Conflict(e.to_string()),
            c @ ApplyError::StateConflict { .. } => ApiError::Conflict(c.to_string()),
            e @ ApplyError::NotOpen(_) => ApiError::Conflict(e.to_string()),
            ApplyError::Store(s) => ApiError::Store(s),
        }
    }
}

impl From<crate::ingress::handshake::HandshakeError> for ApiError {
    fn from(e: crate::ingress::handshake::HandshakeError) -> Self {
        match e {
            crate::ingress::handshake::HandshakeError::Store(s) => ApiError::Store(s),
            other => ApiError::BadSignature(other.to_string()),
        }
    }
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::Invalid),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            ApiError::BadSignature(_) => (StatusCode::UNAUTHORIZED, ErrorCode::BadSignature),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge),
            ApiError::Store(e) if e.is_transient() => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable)
            }
            ApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
            ApiError::MapperAbsent { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::MapperAbsent)
            }
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Overloaded),
            ApiError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Timeout),
            ApiError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, ErrorCode::BodyTimeout),
        };
        let message = match &self {
            ApiError::Store(e) => {
                tracing::error!(error = %e, source = ?std::error::Error::source(e), "ticket API store error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                field: match &self {
                    ApiError::Invalid { field, .. } => Some(field.clone()),
                    _ => None,
                },
                file: match &self {
                    ApiError::MapperAbsent { file, .. } => Some(file.clone()),
                    _ => None,
                },
            },
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        let retry_after = match &self {
            ApiError::MapperAbsent { .. } => Some(MAPPER_ABSENT_RETRY_AFTER),
            ApiError::Overloaded | ApiError::Timeout => Some(BUSY_RETRY_AFTER),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
        }
        // The client may still be sending the body: the connection is not
        // worth keeping.
        if matches!(self, ApiError::BodyTimeout) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
