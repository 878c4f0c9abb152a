//! Deliveries: list, show (raw delivery, mapper output, error, the history
//! it produced) and replay — one or many, e.g. after a mapper fix. Replay
//! never applies a delivery twice: the action engine remembers applied
//! delivery ids.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::{Admin, Reader};
use super::error::ApiError;
use super::params::Key;
use crate::store::{DeliveryFilter, DeliveryRow, DeliveryStatus};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    provider: Option<String>,
    status: Option<String>,
    received_after: Option<String>,
    received_before: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
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

pub fn summary(d: &DeliveryRow) -> Value {
    json!({
        "id": d.id,
        "provider": d.provider,
        "dedupe_key": d.dedupe_key,
        "method": d.method,
        "path": d.path,
        "received_at": d.received_at,
        "status": d.status,
        "reason": d.reason,
        "attempts": d.attempts,
        "event_type": d.event_type,
        "mapper_hash": d.mapper_hash,
        "error": d.last_error,
    })
}

/// The whole delivery: raw headers and body (text when it is UTF-8, else
/// `body_base64`), the mapper's output and the history it produced.
pub fn detail(d: &DeliveryRow, history: &[crate::store::HistoryRow]) -> Value {
    let mut v = summary(d);
    v["headers"] = json!(d.headers);
    match std::str::from_utf8(&d.body) {
        Ok(text) => v["body"] = json!(text),
        Err(_) => {
            v["body_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(&d.body))
        }
    }
    v["output"] = d
        .output
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok())
        .unwrap_or(Value::Null);
    v["history"] = history
        .iter()
        .map(|h| json!({"id": h.id, "ticket_guid": h.ticket_guid, "kind": h.kind, "at": h.at}))
        .collect();
    v
}

pub async fn list(
    _: Reader,
    State(state): State<ApiState>,
    q: Result<Query<DeliveryQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let page = state.store.find_deliveries(&filter(q)?).await?;
    Ok(Json(json!({
        "items": page.items.iter().map(summary).collect::<Vec<_>>(),
        "next": page.next,
    })))
}

pub async fn show(
    _: Reader,
    State(state): State<ApiState>,
    Key(id): Key,
) -> Result<Json<Value>, ApiError> {
    let d = state
        .store
        .delivery(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no delivery `{id}`")))?;
    let history = state.store.history_of_delivery(&id).await?;
    let mut v = detail(&d, &history);
    // Set when retention emptied the body: an empty `body` is then not
    // what the sender sent.
    v["body_dropped_at"] = json!(state.store.body_dropped_at(&id).await?);
    Ok(Json(v))
}

pub async fn replay_one(
    _: Admin,
    State(state): State<ApiState>,
    Key(id): Key,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(replay(&state, &id).await?))
}

/// Replays every delivery matching the filter (default: failed and dead
/// ones are what an operator replays; the filter must name a status).
pub async fn replay_many(
    _: Admin,
    State(state): State<ApiState>,
    q: Result<Query<DeliveryQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(
        json!({"replayed": outcomes.len(), "outcomes": outcomes, "next": page.next}),
    ))
}

async fn replay(state: &ApiState, id: &str) -> Result<Value, ApiError> {
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
        Some(outcome) => Ok(outcome.to_json(id)),
        None => Ok(
            json!({"delivery_id": id, "status": d.status, "error": "being processed; try again"}),
        ),
    }
}
