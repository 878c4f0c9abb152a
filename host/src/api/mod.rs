//! The ticket API (axum): the seed's TicketSystemService verbs over HTTP,
//! behind bearer tokens. With `ingress`, the only code that knows axum.
//!
//! `GET /v1/openapi.json` describes every route; it needs no token.

mod auth;
mod deliveries;
mod error;
mod tickets;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use auth::Tokens;
pub use deliveries::{detail as delivery_json, summary as delivery_summary_json};
pub use error::ApiError;

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
}

/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/tickets", get(tickets::find).post(tickets::create))
        .route("/v1/tickets/first", get(tickets::find_first))
        .route(
            "/v1/tickets/{guid}",
            get(tickets::get).patch(tickets::update),
        )
        .route(
            "/v1/tickets/{guid}/notes",
            axum::routing::post(tickets::add_note),
        )
        .route("/v1/tickets/{guid}/history", get(tickets::history))
        .route("/v1/deliveries", get(deliveries::list))
        .route(
            "/v1/deliveries/replay",
            axum::routing::post(deliveries::replay_many),
        )
        .route("/v1/deliveries/{id}", get(deliveries::show))
        .route(
            "/v1/deliveries/{id}/replay",
            axum::routing::post(deliveries::replay_one),
        )
        .route("/v1/openapi.json", get(openapi))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

async fn openapi() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}
