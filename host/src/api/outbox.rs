//! The outbox: list (by provider, status, ticket), show one row (the
//! change offered, the requests the mapper made, every attempt), and
//! retry — one failed or dead row, or all of them, e.g. after a mapper fix
//! or a provider outage. A retry keeps what was sent as sent: it resumes
//! at the first request not answered with a 2xx.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ApiState;
use super::auth::{Admin, Reader};
use super::error::ApiError;
use super::params::Key;
use crate::change::OutboundRequest;
use crate::store::{OutboxAttempt, OutboxFilter, OutboxRow, OutboxStatus};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    provider: Option<String>,
    status: Option<String>,
    ticket: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// One outbox row, as listed.
#[derive(Debug, Serialize)]
pub struct OutboxSummary {
    pub id: i64,
    pub provider: String,
    pub ticket_guid: Option<String>,
    pub history_id: i64,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub error: Option<String>,
    pub mapper_hash: Option<String>,
    /// Requests the mapper made, and how many of them were sent.
    pub requests: Option<usize>,
    pub sent_requests: i64,
}

#[derive(Debug, Serialize)]
pub struct OutboxPage {
    pub items: Vec<OutboxSummary>,
    pub next: Option<String>,
}

/// One request the worker sent, and what came back.
#[derive(Debug, Serialize)]
pub struct AttemptView {
    pub attempt: i64,
    pub request_index: i64,
    pub method: String,
    pub path: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    pub duration_ms: i64,
    pub at: String,
}

/// The whole row: the change offered, the requests, every attempt.
#[derive(Debug, Serialize)]
pub struct OutboxDetail {
    #[serde(flatten)]
    pub summary: OutboxSummary,
    /// The change as the provider's rules were offered it (the ticket as
    /// it is now); null when it cannot be read any more.
    pub change: Option<Value>,
    pub request_list: Vec<Value>,
    pub attempt_list: Vec<AttemptView>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RetryBody {
    /// Retry only this provider's rows; default: every provider's.
    provider: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RetryAnswer {
    /// The rows queued again.
    pub retried: Vec<i64>,
}

fn filter(q: Result<Query<OutboxQuery>, QueryRejection>) -> Result<OutboxFilter, ApiError> {
    let q = super::params::query(q)?;
    let status = q
        .status
        .as_deref()
        .map(str::parse::<OutboxStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid("status", e))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 500"));
    }
    if let Some(c) = &q.cursor
        && c.parse::<i64>().is_err()
    {
        return Err(ApiError::invalid(
            "cursor",
            "is not a cursor this API returned (`next` of a previous page)",
        ));
    }
    Ok(OutboxFilter {
        provider: q.provider,
        status,
        ticket_guid: q.ticket,
        limit,
        cursor: q.cursor,
    })
}

fn requests_of(row: &OutboxRow) -> Vec<OutboundRequest> {
    row.requests
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default()
}

pub fn summary(row: &OutboxRow) -> OutboxSummary {
    OutboxSummary {
        id: row.id,
        provider: row.provider.clone(),
        ticket_guid: row.ticket_guid.clone(),
        history_id: row.history_id,
        status: row.status,
        attempts: row.attempts,
        next_attempt_at: row.next_attempt_at.clone(),
        created_at: row.created_at.clone(),
        sent_at: row.sent_at.clone(),
        error: row.last_error.clone(),
        mapper_hash: row.mapper_hash.clone(),
        requests: row.requests.as_ref().map(|_| requests_of(row).len()),
        sent_requests: row.sent_requests,
    }
}

fn attempt_view(a: &OutboxAttempt) -> AttemptView {
    AttemptView {
        attempt: a.attempt,
        request_index: a.request_index,
        method: a.method.clone(),
        path: a.path.clone(),
        status_code: a.status_code,
        error: a.error.clone(),
        response_excerpt: a.response_excerpt.clone(),
        duration_ms: a.duration_ms,
        at: a.at.clone(),
    }
}

pub async fn list(
    _: Reader,
    State(state): State<ApiState>,
    q: Result<Query<OutboxQuery>, QueryRejection>,
) -> Result<Json<OutboxPage>, ApiError> {
    let page = state.store.find_outbox(&filter(q)?).await?;
    Ok(Json(OutboxPage {
        items: page.items.iter().map(summary).collect(),
        next: page.next,
    }))
}

/// The row `id` names, or 404.
async fn row(state: &ApiState, id: &str) -> Result<OutboxRow, ApiError> {
    let missing = || ApiError::NotFound(format!("no outbox row `{id}`"));
    let n: i64 = id.parse().map_err(|_| missing())?;
    state.store.outbox_row(n).await?.ok_or_else(missing)
}

pub async fn show(
    _: Reader,
    State(state): State<ApiState>,
    Key(id): Key,
) -> Result<Json<OutboxDetail>, ApiError> {
    Ok(Json(detail(&state.store, &row(&state, &id).await?).await?))
}

/// The row with its change, requests and attempts (the API's and the
/// CLI's `show`).
pub async fn detail(
    store: &crate::store::Store,
    row: &OutboxRow,
) -> Result<OutboxDetail, crate::store::StoreError> {
    let history = store.history_rows(&[row.history_id]).await?;
    let guids: Vec<&str> = row.ticket_guid.as_deref().into_iter().collect();
    let tickets = store.tickets(&guids).await?;
    let links = store.links_of(&guids).await?;
    let change = crate::outbound::change_of(row, history.first(), tickets.first(), &links)
        .ok()
        .map(|c| c.to_json());
    let attempts = store.outbox_attempts(row.id).await?;
    Ok(OutboxDetail {
        summary: summary(row),
        change,
        request_list: requests_of(row)
            .iter()
            .map(OutboundRequest::to_json)
            .collect(),
        attempt_list: attempts.iter().map(attempt_view).collect(),
    })
}

pub async fn retry_one(
    _: Admin,
    State(state): State<ApiState>,
    Key(id): Key,
) -> Result<Json<RetryAnswer>, ApiError> {
    let r = row(&state, &id).await?;
    if !matches!(r.status, OutboxStatus::Failed | OutboxStatus::Dead) {
        return Err(ApiError::Conflict(format!(
            "outbox row {} is `{}`; only failed or dead rows are retried",
            r.id, r.status
        )));
    }
    let retried = state.store.retry_outbox(&[r.id], None).await?;
    wake(&state);
    Ok(Json(RetryAnswer { retried }))
}

/// Every failed or dead row (of one provider, when the body names one).
pub async fn retry_many(
    _: Admin,
    State(state): State<ApiState>,
    body: axum::body::Bytes,
) -> Result<Json<RetryAnswer>, ApiError> {
    // The body is optional: none retries every provider's rows.
    let b: RetryBody = if body.iter().all(u8::is_ascii_whitespace) {
        RetryBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid("body", e.to_string()))?
    };
    let retried = state.store.retry_outbox(&[], b.provider.as_deref()).await?;
    wake(&state);
    Ok(Json(RetryAnswer { retried }))
}

fn wake(state: &ApiState) {
    if let Some(o) = state
        .worker
        .as_ref()
        .and_then(crate::worker::Worker::outbound)
    {
        o.wake();
    }
}
