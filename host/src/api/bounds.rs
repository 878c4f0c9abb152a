//! The server's own bounds, one layer around every route: a cap on requests
//! in flight (503 `overloaded` over it, at once), a deadline on each
//! request (503 `timeout`) and a deadline on receiving its body (408
//! `body_timeout`). A slow-loris client therefore holds one permit for at
//! most the body deadline, and a database that stopped answering holds a
//! request for at most the request deadline.
//!
//! Written as one `axum::middleware` rather than tower-http's
//! `TimeoutLayer` and `RequestBodyTimeoutLayer`: those answer with empty
//! bodies rather than [`ApiError`]'s shape, and tower-http's body timeout
//! restarts on every frame, so a client sending a byte at a time never
//! trips it. Here the body deadline runs from the request's arrival to its
//! last byte.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use tokio::time::Sleep;

use super::ApiError;
use crate::config::ServerConfig;

/// The bounds of [`ServerConfig`], shared by every request.
#[derive(Clone)]
struct Bounds {
    permits: Arc<Semaphore>,
    request_timeout: Duration,
    body_read_timeout: Duration,
}

/// `router` with the bounds of `config` around every route.
pub fn bounded(router: Router, config: &ServerConfig) -> Router {
    let bounds = Bounds {
        permits: Arc::new(Semaphore::new(config.max_concurrent_requests)),
        request_timeout: Duration::from_millis(config.request_timeout_ms),
        body_read_timeout: Duration::from_millis(config.body_read_timeout_ms),
    };
    router.layer(middleware::from_fn_with_state(bounds, bound))
}

async fn bound(State(bounds): State<Bounds>, request: Request, next: Next) -> Response {
    // Held until the response is built: a request counts while its body is
    // read and its handler runs.
    let Ok(_permit) = bounds.permits.clone().try_acquire_owned() else {
        return ApiError::Overloaded.into_response();
    };
    let late = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(bounds.body_read_timeout)),
            late: late.clone(),
        })
    });
    let response = tokio::time::timeout(bounds.request_timeout, next.run(request)).await;
    // A late body decides the answer whatever the handler made of the
    // read error (ingress would call it too large, the JSON extractor
    // malformed).
    if late.load(Ordering::Acquire) {
        return ApiError::BodyTimeout.into_response();
    }
    match response {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeout_ms = bounds.request_timeout.as_millis(),
                "request timed out"
            );
            ApiError::Timeout.into_response()
        }
    }
}

/// A request body that fails once its deadline passes before its end.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    /// Set when the deadline cut the body short.
    late: Arc<AtomicBool>,
}

/// The body's deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within the body read timeout")]
struct BodyLate;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.inner.is_end_stream() {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.late.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(BodyLate.into())));
        }
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map_err(axum::BoxError::from)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handler that never finishes stands in for one stuck on a database
    /// that stopped answering: the deadline answers for it.
    #[tokio::test]
    async fn a_request_past_its_deadline_gets_503_timeout() {
        let config = ServerConfig {
            request_timeout_ms: 200,
            body_read_timeout_ms: 200,
            max_concurrent_requests: 4,
        };
        let router = Router::new().route(
            "/stuck",
            axum::routing::get(std::future::pending::<&'static str>),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server =
            tokio::spawn(async move { axum::serve(listener, bounded(router, &config)).await });
        let started = std::time::Instant::now();
        let response = reqwest::get(format!("http://{addr}/stuck")).await.unwrap();
        let took = started.elapsed();
        assert_eq!(response.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "timeout");
        assert!(took < Duration::from_secs(2), "answered after {took:?}");
        server.abort();
    }
}
