//! Sync conflicts: fields a provider and the ticket both moved since they
//! last synced, that their policy (`manual`, or a `merge` the field cannot
//! do) left to a person. List (by state, ticket, provider), show one, and
//! resolve (admin): our value, theirs, or a value given — applied as a
//! ticket change, which reaches the providers through the outbox.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::{Admin, Reader};
use super::error::{ApiError, ErrorBody};
use super::params::Key;
use crate::store::{ConflictFilter, ConflictRow, ConflictState, Resolution};
use crate::sync::Policy;
use crate::tickets::Choice;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConflictQuery {
    #[param(value_type = Option<ConflictState>)]
    state: Option<String>,
    /// Conflicts of this ticket (its guid).
    ticket: Option<String>,
    provider: Option<String>,
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// `next` of the previous page, as it was returned.
    #[param(pattern = "^-?[0-9]{1,18}$")]
    cursor: Option<String>,
}

/// One conflict.
#[derive(Debug, Serialize, ToSchema)]
pub struct Conflict {
    pub id: i64,
    pub ticket_guid: String,
    pub provider: String,
    /// `status`, `priority`, `subject`, `description`, `assignee`,
    /// `labels` (a JSON array), `ticket_type` or `fields.<name>`.
    pub field: String,
    pub policy: Policy,
    /// The value both sides last agreed on.
    pub base_value: Option<String>,
    /// Ours when the provider's change came.
    pub local_value: Option<String>,
    /// The provider's.
    pub external_value: Option<String>,
    /// The delivery that brought the provider's value.
    pub delivery_id: Option<String>,
    pub state: ConflictState,
    pub created_at: String,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub resolution: Option<Resolution>,
    pub resolved_value: Option<String>,
    /// The ticket change the resolution made (history row id).
    pub history_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConflictPage {
    pub items: Vec<Conflict>,
    pub next: Option<String>,
}

/// Which value wins: one side's, or a value of the resolver's.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ResolveBody {
    Choose(ChooseSide),
    Value(GiveValue),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChooseSide {
    pub choose: Side,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The ticket's value when the conflict was met, pushed to the provider.
    Local,
    /// The provider's value, applied to the ticket.
    External,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiveValue {
    /// Checked as the field's actions are (a workflow status, a priority,
    /// an assignee's e-mail, a JSON array for labels…); empty unsets a
    /// custom field.
    #[schema(max_length = 65536)]
    pub value: String,
}

fn view(c: ConflictRow) -> Conflict {
    Conflict {
        id: c.id,
        ticket_guid: c.ticket_guid,
        provider: c.provider,
        field: c.field,
        policy: c.policy,
        base_value: c.base_value,
        local_value: c.local_value,
        external_value: c.external_value,
        delivery_id: c.delivery_id,
        state: c.state,
        created_at: c.created_at,
        resolved_at: c.resolved_at,
        resolved_by: c.resolved_by,
        resolution: c.resolution,
        resolved_value: c.resolved_value,
        history_id: c.history_id,
    }
}

fn filter(q: Result<Query<ConflictQuery>, QueryRejection>) -> Result<ConflictFilter, ApiError> {
    let q = super::params::query(q)?;
    let state = match q.state.as_deref() {
        None => None,
        Some("open") => Some(ConflictState::Open),
        Some("resolved") => Some(ConflictState::Resolved),
        Some(other) => {
            return Err(ApiError::invalid(
                "state",
                format!("`{other}` is not a conflict state; one of open, resolved"),
            ));
        }
    };
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
    Ok(ConflictFilter {
        state,
        ticket_guid: q.ticket,
        provider: q.provider,
        cursor: q.cursor,
        limit,
    })
}

#[utoipa::path(
    get,
    tag = "conflicts",
    path = "/v1/conflicts",
    operation_id = "listConflicts",
    summary = "Sync conflicts, newest first",
    params(ConflictQuery),
    responses(
        (status = 200, description = "one page", body = ConflictPage),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 422, description = "invalid filter", body = ErrorBody),
    )
)]
pub async fn list(
    _: Reader,
    State(state): State<ApiState>,
    q: Result<Query<ConflictQuery>, QueryRejection>,
) -> Result<Json<ConflictPage>, ApiError> {
    let page = state.store.find_conflicts(&filter(q)?).await?;
    Ok(Json(ConflictPage {
        items: page.items.into_iter().map(view).collect(),
        next: page.next,
    }))
}

/// The conflict `id` names, or 404.
async fn conflict(state: &ApiState, id: &str) -> Result<ConflictRow, ApiError> {
    let missing = || ApiError::NotFound(format!("no conflict `{id}`"));
    let n: i64 = id.parse().map_err(|_| missing())?;
    state.store.conflict(n).await?.ok_or_else(missing)
}

#[utoipa::path(
    get,
    tag = "conflicts",
    path = "/v1/conflicts/{id}",
    operation_id = "showConflict",
    summary = "A sync conflict: the field, the three values, how it was resolved",
    params(("id" = String, Path, description = "the conflict's id")),
    responses(
        (status = 200, description = "the conflict", body = Conflict),
        (status = 404, description = "unknown conflict", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
    )
)]
pub async fn show(
    _: Reader,
    State(state): State<ApiState>,
    Key(id): Key,
) -> Result<Json<Conflict>, ApiError> {
    Ok(Json(view(conflict(&state, &id).await?)))
}

#[utoipa::path(
    post,
    tag = "conflicts",
    path = "/v1/conflicts/{id}/resolve",
    operation_id = "resolveConflict",
    summary = "Resolve an open conflict (admin): ours, theirs, or a value; applied as a ticket change",
    params(("id" = String, Path, description = "the conflict's id")),
    request_body = ResolveBody,
    responses(
        (status = 200, description = "the conflict, resolved", body = Conflict),
        (status = 403, description = "read token", body = ErrorBody),
        (status = 404, description = "unknown conflict, or its ticket is gone", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 409, description = "the conflict is resolved already (`conflict`)", body = ErrorBody),
        (status = 422, description = "the body is neither a side nor a value valid for the field", body = ErrorBody),
    )
)]
pub async fn resolve(
    admin: Admin,
    State(state): State<ApiState>,
    Key(id): Key,
    body: Result<Json<ResolveBody>, JsonRejection>,
) -> Result<Json<Conflict>, ApiError> {
    let c = conflict(&state, &id).await?;
    let body = super::params::body(body)?;
    let choice = match body {
        ResolveBody::Choose(ChooseSide {
            choose: Side::Local,
        }) => Choice::Local,
        ResolveBody::Choose(ChooseSide {
            choose: Side::External,
        }) => Choice::External,
        ResolveBody::Value(GiveValue { value }) => Choice::Value(value),
    };
    let resolved = state
        .applier
        .resolve_conflict(&state.store, c.id, &choice, &admin.name)
        .await?;
    super::outbox::wake(&state);
    Ok(Json(view(resolved)))
}
