//! Deliveries: list, show (raw delivery, mapper output, error, the history
//! it produced) and replay — one or many, e.g. after a mapper fix. Replay
//! never applies a delivery twice: the action engine remembers applied
//! delivery ids.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::{Admin, Reader};
use super::error::{ApiError, ErrorBody};
use super::params::Key;
use crate::store::{DeliveryFilter, DeliveryRow, DeliveryStatus, IgnoreReason};
use crate::worker::OutcomeReport;

/// Query of `GET /v1/deliveries` and `POST /v1/deliveries/replay` (which
/// needs `status`).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    provider: Option<String>,
    #[param(value_type = Option<DeliveryStatus>)]
    status: Option<String>,
    received_after: Option<String>,
    received_before: Option<String>,
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// `next` of the previous page, as it was returned.
    #[param(pattern = "^[^/]+/")]
    cursor: Option<String>,
}

/// A stored delivery, without its body.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliverySummary {
    pub id: String,
    pub provider: String,
    pub dedupe_key: String,
    pub method: String,
    pub path: String,
    pub received_at: String,
    pub status: DeliveryStatus,
    /// Why an `ignored` delivery was ignored.
    pub reason: Option<IgnoreReason>,
    pub attempts: i64,
    pub event_type: Option<String>,
    pub mapper_hash: Option<String>,
    pub error: Option<String>,
}

/// The whole delivery: raw headers and body (text when it is UTF-8, else
/// `body_base64`), the mapper's output and the history it produced.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub summary: DeliverySummary,
    /// `[name, value]` pairs as received (names lower-cased; verification
    /// tokens `[redacted]`).
    #[schema(value_type = Vec<Vec<String>>)]
    pub headers: Vec<(String, String)>,
    /// The body, when it is UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub body: Option<String>,
    /// The body, base64, when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub body_base64: Option<String>,
    /// The mapper's output and what it applied: `event_type`, the
    /// canonical `actions`, `applied`.
    #[schema(value_type = Option<Object>)]
    pub output: Value,
    pub history: Vec<HistoryRef>,
}

/// A history row a delivery produced.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryRef {
    pub id: i64,
    pub ticket_guid: String,
    pub kind: String,
    pub at: String,
}

/// `GET /v1/deliveries/{id}`: the delivery, and when retention dropped its
/// body.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryShown {
    #[serde(flatten)]
    pub delivery: DeliveryDetail,
    /// Set, and the body empty, once retention dropped the body: an empty
    /// `body` is then not what the sender sent.
    pub body_dropped_at: Option<String>,
}

/// One page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliverySummary>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next: Option<String>,
}

/// What a replay of many did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    pub replayed: usize,
    pub outcomes: Vec<OutcomeReport>,
    /// Pass as `cursor` to replay the next page; null on the last page.
    pub next: Option<String>,
}

fn filter(q: Result<Query<DeliveryQuery>, QueryRejection>) -> Result<DeliveryFilter, ApiError> {
    let q = super::params::query(q)?;
    let status = q
        .status
        .as_deref()
        .map(str::parse::<DeliveryStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid("status", e))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 500"));
    }
    Ok(DeliveryFilter {
        provider: q.provider,
        status,
        received_after: q.received_after,
        received_before: q.received_before,
        limit,
        cursor: super::params::cursor(q.cursor)?,
    })
}

pub fn summary(d: &DeliveryRow) -> DeliverySummary {
    DeliverySummary {
        id: d.id.clone(),
        provider: d.provider.clone(),
        dedupe_key: d.dedupe_key.clone(),
        method: d.method.clone(),
        path: d.path.clone(),
        received_at: d.received_at.clone(),
        status: d.status,
        reason: d.reason,
        attempts: d.attempts,
        event_type: d.event_type.clone(),
        mapper_hash: d.mapper_hash.clone(),
        error: d.last_error.clone(),
    }
}

pub fn detail(d: &DeliveryRow, history: &[crate::store::HistoryRow]) -> DeliveryDetail {
    let (body, body_base64) = match std::str::from_utf8(&d.body) {
        Ok(text) => (Some(text.to_owned()), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(&d.body)),
        ),
    };
    DeliveryDetail {
        summary: summary(d),
        headers: d.headers.clone(),
        body,
        body_base64,
        output: d
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or(Value::Null),
        history: history
            .iter()
            .map(|h| HistoryRef {
                id: h.id,
                ticket_guid: h.ticket_guid.clone(),
                kind: h.kind.clone(),
                at: h.at.clone(),
            })
            .collect(),
    }
}

#[utoipa::path(
    get,
    tag = "deliveries",
    path = "/v1/deliveries",
    operation_id = "listDeliveries",
    summary = "Stored deliveries, newest first",
    params(DeliveryQuery),
    responses(
        (status = 200, description = "one page", body = DeliveryPage),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 422, description = "invalid filter", body = ErrorBody),
    )
)]
pub async fn list(
    _: Reader,
    State(state): State<ApiState>,
    q: Result<Query<DeliveryQuery>, QueryRejection>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let page = state.store.find_deliveries(&filter(q)?).await?;
    Ok(Json(DeliveryPage {
        items: page.items.iter().map(summary).collect(),
        next: page.next,
    }))
}

#[utoipa::path(
    get,
    tag = "deliveries",
    path = "/v1/deliveries/{id}",
    operation_id = "showDelivery",
    summary = "A delivery: raw headers and body (`body`, or `body_base64` when not UTF-8; `body_dropped_at` is set, and the body empty, once retention dropped it), mapper output, error, and the history it produced",
    params(("id" = String, Path, description = "the delivery's id")),
    responses(
        (status = 200, description = "the delivery", body = DeliveryShown),
        (status = 404, description = "unknown delivery", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
    )
)]
pub async fn show(
    _: Reader,
    State(state): State<ApiState>,
    Key(id): Key,
) -> Result<Json<DeliveryShown>, ApiError> {
    let d = state
        .store
        .delivery(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no delivery `{id}`")))?;
    let history = state.store.history_of_delivery(&id).await?;
    Ok(Json(DeliveryShown {
        delivery: detail(&d, &history),
        body_dropped_at: state.store.body_dropped_at(&id).await?,
    }))
}

#[utoipa::path(
    post,
    tag = "deliveries",
    path = "/v1/deliveries/{id}/replay",
    operation_id = "replayDelivery",
    summary = "Map and apply a delivery again (admin); nothing already applied is applied twice",
    params(("id" = String, Path, description = "the delivery's id")),
    responses(
        (status = 200, description = "the outcome", body = OutcomeReport),
        (status = 403, description = "read token", body = ErrorBody),
        (status = 404, description = "unknown delivery", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 409, description = "the delivery's provider has no mapper configured (`conflict`)", body = ErrorBody),
    )
)]
pub async fn replay_one(
    _: Admin,
    State(state): State<ApiState>,
    Key(id): Key,
) -> Result<Json<OutcomeReport>, ApiError> {
    Ok(Json(replay(&state, &id).await?))
}

/// Replays every delivery matching the filter (default: failed and dead
/// ones are what an operator replays; the filter must name a status).
#[utoipa::path(
    post,
    tag = "deliveries",
    path = "/v1/deliveries/replay",
    operation_id = "replayDeliveries",
    summary = "Replay every delivery matching the filter (admin); `status` is required",
    params(DeliveryQuery),
    responses(
        (status = 200, description = "the outcomes", body = Replayed),
        (status = 403, description = "read token", body = ErrorBody),
        (status = 422, description = "invalid filter; `status` names the deliveries to replay", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 409, description = "the delivery's provider has no mapper configured (`conflict`)", body = ErrorBody),
    )
)]
pub async fn replay_many(
    _: Admin,
    State(state): State<ApiState>,
    q: Result<Query<DeliveryQuery>, QueryRejection>,
) -> Result<Json<Replayed>, ApiError> {
    let f = filter(q)?;
    if f.status.is_none() {
        return Err(ApiError::invalid(
            "status",
            "name the status to replay, e.g. `failed` or `dead`",
        ));
    }
    let page = state.store.find_deliveries(&f).await?;
    let mut outcomes = Vec::with_capacity(page.items.len());
    for d in &page.items {
        outcomes.push(replay(&state, &d.id).await?);
    }
    Ok(Json(Replayed {
        replayed: outcomes.len(),
        outcomes,
        next: page.next,
    }))
}

async fn replay(state: &ApiState, id: &str) -> Result<OutcomeReport, ApiError> {
    let d = state
        .store
        .delivery(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no delivery `{id}`")))?;
    let worker = state.worker.as_ref().ok_or_else(|| {
        ApiError::Conflict(format!(
            "provider `{}` has no mapper configured; nothing can map this delivery",
            d.provider
        ))
    })?;
    match worker.process_now(id, crate::store::Reclaim::Any).await? {
        Some(outcome) => Ok(outcome.report(id)),
        None => Ok(OutcomeReport::new(
            id,
            d.status,
            None,
            None,
            None,
            Some("being processed; try again"),
        )),
    }
}
