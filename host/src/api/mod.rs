//! The ticket API (axum): the seed's TicketSystemService verbs over HTTP,
//! behind bearer tokens. With `ingress`, the only code that knows axum.
//!
//! `GET /v1/openapi.json` describes every route; it needs no token. It is
//! generated from the handlers' `#[utoipa::path]` attributes and the types
//! they name (`openapi.rs`), with the configured workflow filled in, and
//! `scripts/api-check` holds the server to it (schemathesis).

mod auth;
mod bounds;
mod conflicts;
mod deliveries;
mod error;
mod mapper_reads;
mod mappers;
pub mod openapi;
mod outbox;
mod params;
mod people;
mod providers;
mod sweeper;
mod tickets;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use serde::Serialize;
use utoipa::ToSchema;

pub use auth::Tokens;
pub use bounds::bounded;
pub use deliveries::{detail as delivery_detail, summary as delivery_summary};
pub use error::{ApiError, ErrorBody};
pub use mapper_reads::MapperTickets;
pub use outbox::{detail as outbox_detail, summary as outbox_summary};

use crate::store::Store;
use crate::tickets::Applier;

/// What every handler may use.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub applier: Arc<Applier>,
    pub tokens: Arc<Tokens>,
    /// For replays; absent when no provider has a mapper.
    pub worker: Option<crate::worker::Worker>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The mapper versions serving; absent when no provider has a mapper.
    pub mappers: Option<crate::reload::MapperRegistry>,
    /// The people directory mappers read; reloaded after each write.
    pub people: crate::people::Directory,
    /// The configured providers' names.
    pub providers: Arc<std::collections::BTreeSet<String>>,
    /// The stale-ticket sweeper; absent when `sweeper:` is not set.
    pub sweeper: Option<Arc<crate::sweeper::Sweeper>>,
}

/// The routes of the API. Each handler carries its `#[utoipa::path]`
/// description and is listed in `openapi::ApiDoc`.
pub fn router(state: ApiState) -> Router {
    let doc: Arc<str> = openapi::document(&state.applier.workflow)
        .to_string()
        .into();
    Router::new()
        .route("/v1/tickets", get(tickets::find).post(tickets::create))
        .route("/v1/tickets/first", get(tickets::find_first))
        .route(
            "/v1/tickets/{guid}",
            get(tickets::get).patch(tickets::update),
        )
        .route("/v1/tickets/{guid}/notes", post(tickets::add_note))
        .route("/v1/tickets/{guid}/history", get(tickets::history))
        .route("/v1/deliveries", get(deliveries::list))
        .route("/v1/deliveries/replay", post(deliveries::replay_many))
        .route("/v1/deliveries/{id}", get(deliveries::show))
        .route("/v1/deliveries/{id}/replay", post(deliveries::replay_one))
        .route("/v1/mappers", get(mappers::list))
        .route("/v1/people", get(people::list))
        .route(
            "/v1/people/{email}",
            get(people::show).put(people::put).delete(people::delete),
        )
        .route(
            "/v1/providers/{provider}/state",
            get(people::provider_state),
        )
        .route("/v1/sweeper", get(sweeper::show))
        .route("/v1/providers", get(providers::list))
        .route("/v1/conflicts", get(conflicts::list))
        .route("/v1/conflicts/{id}", get(conflicts::show))
        .route("/v1/conflicts/{id}/resolve", post(conflicts::resolve))
        .route("/v1/outbox", get(outbox::list))
        .route("/v1/outbox/retry", post(outbox::retry_many))
        .route("/v1/outbox/{id}", get(outbox::show))
        .route("/v1/outbox/{id}/retry", post(outbox::retry_one))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
        .merge(
            Router::new()
                .route("/v1/openapi.json", get(openapi_json))
                .with_state(doc),
        )
}

/// `GET /metrics`: merged into the API's router, or served alone on the
/// `metrics_listen` address so the scrape port can stay inside the
/// cluster while the API and webhooks face the world.
pub fn metrics_router(state: ApiState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

#[utoipa::path(
    get,
    tag = "service",
    path = "/v1/openapi.json",
    operation_id = "openapi",
    summary = "This document",
    security(()),
    responses((status = 200, description = "OpenAPI 3.1", body = Object))
)]
async fn openapi_json(State(doc): State<Arc<str>>) -> impl axum::response::IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.to_string(),
    )
}

#[utoipa::path(
    get,
    tag = "service",
    path = "/healthz",
    operation_id = "healthz",
    summary = "Liveness",
    security(()),
    responses((status = 200, description = "ok", body = String, content_type = "text/plain"))
)]
async fn healthz() -> &'static str {
    "ok"
}

/// The readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub database: Database,
    /// The providers with a mapper.
    pub mappers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Database {
    Ok,
    Unreachable,
}

/// Ready when the database answers; reports the loaded mappers.
#[utoipa::path(
    get,
    tag = "service",
    path = "/readyz",
    operation_id = "readyz",
    summary = "Readiness: the database answers",
    security(()),
    responses(
        (status = 200, description = "ready", body = Readiness),
        (status = 503, description = "the database is unreachable", body = Readiness),
    )
)]
async fn readyz(State(state): State<ApiState>) -> (StatusCode, axum::Json<Readiness>) {
    let mappers: Vec<String> = state.worker.iter().flat_map(|w| w.providers()).collect();
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(Readiness {
                ready: true,
                database: Database::Ok,
                mappers,
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(Readiness {
                    ready: false,
                    database: Database::Unreachable,
                    mappers,
                }),
            )
        }
    }
}

/// Prometheus text exposition; unauthenticated like `/healthz`, and free of
/// secrets (provider names and counts only).
#[utoipa::path(
    get,
    tag = "service",
    path = "/metrics",
    operation_id = "metrics",
    summary = "Prometheus metrics (text exposition 0.0.4)",
    security(()),
    responses((status = 200, description = "the metrics", body = String, content_type = "text/plain"))
)]
async fn metrics(
    State(state): State<ApiState>,
) -> ([(header::HeaderName, &'static str); 1], String) {
    let depths = crate::metrics::Depths {
        inbox: state.store.inbox_depth().await.unwrap_or(-1),
        outbox: state.store.outbox_depth().await.unwrap_or(-1),
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(depths),
    )
}
