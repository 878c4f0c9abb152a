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
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::{Admin, Reader};
use super::error::{ApiError, ErrorBody};
use super::params::Key;
use crate::change::OutboundRequest;
use crate::store::{ErrorCode, OutboxAttempt, OutboxFilter, OutboxRow, OutboxStatus};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    provider: Option<String>,
    #[param(value_type = Option<OutboxStatus>)]
    status: Option<String>,
    /// Rows of this ticket (its guid).
    ticket: Option<String>,
    /// Rows whose last failure has this code.
    #[param(value_type = Option<ErrorCode>)]
    error_code: Option<String>,
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// `next` of the previous page, as it was returned.
    #[param(pattern = "^-?[0-9]{1,18}$")]
    cursor: Option<String>,
}

/// One outbox row, as listed.
#[derive(Debug, Serialize, ToSchema)]
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
    /// The class of `error`: what an operator does about it.
    pub error_code: Option<ErrorCode>,
    pub mapper_hash: Option<String>,
    /// Requests the mapper made, and how many of them were sent.
    pub requests: Option<usize>,
    pub sent_requests: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxPage {
    pub items: Vec<OutboxSummary>,
    pub next: Option<String>,
}

/// One request the worker sent, and what came back.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub attempt: i64,
    pub request_index: i64,
    pub method: String,
    pub path: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub error_code: Option<ErrorCode>,
    pub response_excerpt: Option<String>,
    pub duration_ms: i64,
    pub at: String,
}

/// The whole row: the change offered, the requests, every attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxDetail {
    #[serde(flatten)]
    pub summary: OutboxSummary,
    /// The change as the provider's rules were offered it (the ticket as
    /// it is now); null when it cannot be read any more.
    #[schema(value_type = Option<Object>)]
    pub change: Option<Value>,
    /// The requests the mapper made, in order.
    #[schema(value_type = Vec<Object>)]
    pub request_list: Vec<Value>,
    pub attempt_list: Vec<AttemptView>,
}

#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryBody {
    /// Retry only this provider's rows; default: every provider's.
    provider: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
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
    let error_code = q
        .error_code
        .as_deref()
        .map(str::parse::<ErrorCode>)
        .transpose()
        .map_err(|e| ApiError::invalid("error_code", e))?;
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
        error_code,
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
        error_code: row.error_code,
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
        error_code: a.error_code,
        response_excerpt: a.response_excerpt.clone(),
        duration_ms: a.duration_ms,
        at: a.at.clone(),
    }
}

#[utoipa::path(
    get,
    tag = "outbox",
    path = "/v1/outbox",
    operation_id = "listOutbox",
    summary = "Outbox rows, newest first",
    params(OutboxQuery),
    responses(
        (status = 200, description = "one page", body = OutboxPage),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 422, description = "invalid filter", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    get,
    tag = "outbox",
    path = "/v1/outbox/{id}",
    operation_id = "showOutbox",
    summary = "An outbox row: the change offered, the requests the mapper made, every attempt",
    params(("id" = String, Path, description = "the outbox row's id")),
    responses(
        (status = 200, description = "the row", body = OutboxDetail),
        (status = 404, description = "unknown outbox row", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    post,
    tag = "outbox",
    path = "/v1/outbox/{id}/retry",
    operation_id = "retryOutboxRow",
    summary = "Queue a failed or dead row again (admin); what was sent stays sent",
    params(("id" = String, Path, description = "the outbox row's id")),
    responses(
        (status = 200, description = "the rows queued again", body = RetryAnswer),
        (status = 403, description = "read token", body = ErrorBody),
        (status = 404, description = "unknown outbox row", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 409, description = "the row is neither failed nor dead (`conflict`)", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    post,
    tag = "outbox",
    path = "/v1/outbox/retry",
    operation_id = "retryOutbox",
    summary = "Queue every failed or dead row again (admin), of one provider when the body names one",
    request_body(content = RetryBody, description = "optional: no body retries every provider's rows"),
    responses(
        (status = 200, description = "the rows queued again", body = RetryAnswer),
        (status = 403, description = "read token", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 422, description = "the body is not a retry filter", body = ErrorBody),
    )
)]
pub async fn retry_many(
    _: Admin,
    State(state): State<ApiState>,
    body: axum::body::Bytes,
) -> Result<Json<RetryAnswer>, ApiError> {
    // The body is optional: none retries every provider's rows. A body
    // that is there must be the JSON object described (blanks alone are
    // not JSON).
    let b: RetryBody = if body.is_empty() {
        RetryBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid("body", e.to_string()))?
    };
    let retried = state.store.retry_outbox(&[], b.provider.as_deref()).await?;
    wake(&state);
    Ok(Json(RetryAnswer { retried }))
}

/// Tells the outbound worker (if any) that changes are queued.
pub(super) fn wake(state: &ApiState) {
    if let Some(o) = state
        .worker
        .as_ref()
        .and_then(crate::worker::Worker::outbound)
    {
        o.wake();
    }
}
