//! The ticket API (axum): the seed's TicketSystemService verbs over HTTP,
//! behind bearer tokens. With `ingress`, the only code that knows axum.
//!
//! `GET /v1/openapi.json` describes every route; it needs no token. It is
//! `openapi.json` with the configured workflow filled in, and
//! `scripts/api-check` holds the server to it (schemathesis).

mod auth;
mod bounds;
mod deliveries;
mod error;
mod mappers;
mod outbox;
mod params;
mod people;
mod tickets;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use auth::Tokens;
pub use bounds::bounded;
pub use deliveries::{detail as delivery_json, summary as delivery_summary_json};
pub use error::ApiError;
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
}

/// The OpenAPI 3.1 description of this API, before [`openapi_document`]
/// fills in the configuration.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The description as served: `OPENAPI` with the statuses an update may
/// set, which are the configured workflow's (or null: unchanged).
pub fn openapi_document(workflow: &crate::tickets::Workflow) -> String {
    const STATUS: &str = "/paths/~1v1~1tickets~1{guid}/patch/requestBody/content/application~1json/schema/properties/status";
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(OPENAPI) else {
        // `OPENAPI` is a constant the unit test below parses.
        return OPENAPI.to_owned();
    };
    if let Some(status) = doc.pointer_mut(STATUS) {
        let mut statuses = serde_json::json!(workflow.statuses());
        if let Some(list) = statuses.as_array_mut() {
            list.push(serde_json::Value::Null);
        }
        status["enum"] = statuses;
    }
    doc.to_string()
}

pub fn router(state: ApiState) -> Router {
    let openapi: Arc<str> = openapi_document(&state.applier.workflow).into();
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
        .route("/v1/outbox", get(outbox::list))
        .route("/v1/outbox/retry", axum::routing::post(outbox::retry_many))
        .route("/v1/outbox/{id}", get(outbox::show))
        .route(
            "/v1/outbox/{id}/retry",
            axum::routing::post(outbox::retry_one),
        )
        .route(
            "/v1/openapi.json",
            get(move || {
                let doc = openapi.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        doc.to_string(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// `GET /metrics`: merged into the API's router, or served alone on the
/// `metrics_listen` address so the scrape port can stay inside the
/// cluster while the API and webhooks face the world.
pub fn metrics_router(state: ApiState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Ready when the database answers; reports the loaded mappers.
async fn readyz(
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    let mappers: Vec<String> = state.worker.iter().flat_map(|w| w.providers()).collect();
    match state.store.ping().await {
        Ok(()) => (
            axum::http::StatusCode::OK,
            axum::Json(serde_json::json!({"ready": true, "database": "ok", "mappers": mappers})),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(
                    serde_json::json!({"ready": false, "database": "unreachable", "mappers": mappers}),
                ),
            )
        }
    }
}

/// Prometheus text exposition; unauthenticated like `/healthz`, and free of
/// secrets (provider names and counts only).
async fn metrics(
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let depths = crate::metrics::Depths {
        inbox: state.store.inbox_depth().await.unwrap_or(-1),
        outbox: state.store.outbox_depth().await.unwrap_or(-1),
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(depths),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_served_description_lists_the_configured_workflow() {
        let workflow =
            crate::tickets::Workflow::new(vec!["OPEN".into(), "DONE".into()]).expect("not empty");
        let doc: serde_json::Value =
            serde_json::from_str(&super::openapi_document(&workflow)).expect("JSON");
        let status = &doc["paths"]["/v1/tickets/{guid}"]["patch"]["requestBody"]["content"]["application/json"]
            ["schema"]["properties"]["status"];
        assert_eq!(status["enum"], serde_json::json!(["OPEN", "DONE", null]));
    }
}
