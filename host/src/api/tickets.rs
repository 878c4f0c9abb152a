//! Ticket handlers: find, find-first, get, create, update, add note, history.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::{Admin, Reader};
use super::error::ApiError;
use super::params::{Key, body, query};
use crate::action::{Action, Priority, TicketRef};
use crate::store::{HistoryRow, TicketFilter, TicketRow};
use crate::tickets::{ApplyInput, ApplyOutcome, TicketUpdate, raci};

/// Query of `GET /v1/tickets` and `/v1/tickets/first`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindQuery {
    status: Option<String>,
    assignee: Option<String>,
    /// Tickets linked to a record of this provider (with `external_id`: to
    /// that record).
    provider: Option<String>,
    /// Tickets linked to a record with this id.
    external_id: Option<String>,
    /// Case-insensitive text in subject or description.
    q: Option<String>,
    updated_after: Option<String>,
    updated_before: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    subject: String,
    #[serde(default)]
    description: String,
    #[serde(default = "medium")]
    priority: String,
    #[serde(default = "task")]
    ticket_type: String,
    requested_by: Option<String>,
    external_id: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    subject: Option<String>,
    description: Option<String>,
    status: Option<String>,
    priority: Option<String>,
    ticket_type: Option<String>,
    assignee: Option<String>,
    labels: Option<Vec<String>>,
    /// Who made the change; defaults to the token's name.
    changed_by: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    comment: String,
    /// Defaults to the token's name.
    author: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

fn medium() -> String {
    "MEDIUM".into()
}
fn task() -> String {
    "TASK".into()
}

fn filter(q: FindQuery, default_limit: u32) -> Result<TicketFilter, ApiError> {
    for (field, value) in [
        ("updated_after", &q.updated_after),
        ("updated_before", &q.updated_before),
    ] {
        if let Some(v) = value
            && chrono::DateTime::parse_from_rfc3339(v).is_err()
        {
            return Err(ApiError::invalid(
                field,
                format!("`{v}` is not an RFC 3339 time"),
            ));
        }
    }
    let limit = q.limit.unwrap_or(default_limit);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 500"));
    }
    // Stored times are UTC with microseconds; normalise so text order holds.
    let norm = |v: Option<String>| {
        v.and_then(|v| chrono::DateTime::parse_from_rfc3339(&v).ok())
            .map(|t| {
                t.with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            })
    };
    Ok(TicketFilter {
        status: q.status,
        assignee: q.assignee,
        provider: q.provider,
        external_id: q.external_id,
        text: q.q,
        updated_after: norm(q.updated_after),
        updated_before: norm(q.updated_before),
        limit,
        cursor: super::params::cursor(q.cursor)?,
    })
}

pub fn ticket_json(t: &TicketRow) -> Value {
    json!({
        "guid": t.guid,
        "subject": t.subject,
        "description": t.description,
        "status": t.status,
        "priority": t.priority,
        "ticket_type": t.ticket_type,
        "assignee": t.assignee,
        "requested_by": t.requested_by,
        "labels": t.labels,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "resolved_at": t.resolved_at,
        "resolved_by": t.resolved_by,
        "escalated_at": t.escalated_at,
        "escalated_by": t.escalated_by,
        "escalation_reason": t.escalation_reason,
    })
}

fn history_json(h: &HistoryRow) -> Value {
    json!({
        "id": h.id,
        "kind": h.kind,
        "change": serde_json::from_str::<Value>(&h.change).unwrap_or(Value::Null),
        "actor": h.actor,
        "origin": h.origin,
        "delivery_id": h.delivery_id,
        "mapper_hash": h.mapper_hash,
        "at": h.at,
    })
}

/// The ticket with its comments, sign-offs, `fully_signed`, PR links and
/// integration links.
async fn detail(state: &ApiState, guid: &str) -> Result<Value, ApiError> {
    let store = &state.store;
    let t = store
        .ticket(guid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no ticket `{guid}`")))?;
    let signoffs = store.signoffs(guid).await?;
    let mut v = ticket_json(&t);
    v["comments"] = store
        .comments(guid)
        .await?
        .iter()
        .map(|c| json!({"id": c.id, "comment": c.body, "commented_by": c.author, "origin": c.origin, "external_comment_id": c.external_id, "at": c.at}))
        .collect();
    v["signoffs"] = signoffs
        .iter()
        .map(|s| json!({"activity": s.activity, "role": s.role, "email": s.email, "signoff_status": s.status, "updated_at": s.updated_at}))
        .collect();
    v["fully_signed"] = json!(raci::fully_signed(&signoffs));
    v["pr_links"] = store
        .pr_links(guid)
        .await?
        .iter()
        .map(
            |p| json!({"repo": p.repo, "pr_id": p.pr_id, "url": p.url, "created_at": p.created_at}),
        )
        .collect();
    v["links"] = store
        .links(guid)
        .await?
        .iter()
        .map(|l| json!({"provider": l.provider, "external_id": l.external_id, "created_at": l.created_at}))
        .collect();
    Ok(v)
}

/// Applies one action made through the API (no delivery, no origin).
async fn apply_one(state: &ApiState, action: Action) -> Result<ApplyOutcome, ApiError> {
    let input = ApplyInput {
        delivery_id: None,
        origin: None,
        mapper_hash: None,
        actions: std::slice::from_ref(&action),
        state: &[],
    };
    Ok(state.applier.apply(&state.store, input).await?)
}

pub async fn find(
    _: Reader,
    State(state): State<ApiState>,
    q: Result<Query<FindQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let page = state.store.find(&filter(query(q)?, 50)?).await?;
    Ok(Json(json!({
        "items": page.items.iter().map(ticket_json).collect::<Vec<_>>(),
        "next": page.next,
    })))
}

pub async fn find_first(
    _: Reader,
    State(state): State<ApiState>,
    q: Result<Query<FindQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let mut f = filter(query(q)?, 1)?;
    f.limit = 1;
    let page = state.store.find(&f).await?;
    let t = page
        .items
        .first()
        .ok_or_else(|| ApiError::NotFound("no ticket matches".into()))?;
    Ok(Json(ticket_json(t)))
}

pub async fn get(
    _: Reader,
    State(state): State<ApiState>,
    Key(guid): Key,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(detail(&state, &guid).await?))
}

pub async fn create(
    admin: Admin,
    State(state): State<ApiState>,
    b: Result<Json<CreateBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let b = body(b)?;
    let priority = Priority::parse(&b.priority)
        .ok_or_else(|| ApiError::invalid("priority", "must be LOW, MEDIUM, HIGH or CRITICAL"))?;
    let action = Action::Create {
        subject: b.subject,
        description: b.description,
        priority,
        ticket_type: b.ticket_type,
        // The token's name stands in only when it is an address; a given
        // value is validated like any other.
        requested_by: b
            .requested_by
            .or_else(|| Some(admin.name).filter(|n| n.contains('@'))),
        external_id: b.external_id,
        labels: b.labels,
    };
    let out = apply_one(&state, action).await?;
    let guid = out
        .actions
        .first()
        .map(|a| a.ticket_guid.clone())
        .unwrap_or_default();
    let status = if out.actions.first().is_some_and(|a| a.changed) {
        StatusCode::CREATED
    } else {
        // The external id was linked already: the existing ticket.
        StatusCode::OK
    };
    let location = format!("/v1/tickets/{guid}");
    Ok((
        status,
        [(header::LOCATION, location)],
        Json(detail(&state, &guid).await?),
    ))
}

pub async fn update(
    admin: Admin,
    State(state): State<ApiState>,
    Key(guid): Key,
    b: Result<Json<UpdateBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let b = body(b)?;
    let priority = b
        .priority
        .as_deref()
        .map(|p| {
            Priority::parse(p).ok_or_else(|| {
                ApiError::invalid("priority", "must be LOW, MEDIUM, HIGH or CRITICAL")
            })
        })
        .transpose()?;
    let update = TicketUpdate {
        subject: b.subject,
        description: b.description,
        status: b.status,
        priority,
        ticket_type: b.ticket_type,
        assignee: b.assignee,
        labels: b.labels,
    };
    let actor = b.changed_by.unwrap_or(admin.name);
    state
        .applier
        .update(&state.store, &guid, &update, &actor)
        .await?;
    Ok(Json(detail(&state, &guid).await?))
}

pub async fn add_note(
    admin: Admin,
    State(state): State<ApiState>,
    Key(guid): Key,
    b: Result<Json<NoteBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let b = body(b)?;
    if state.store.ticket(&guid).await?.is_none() {
        return Err(ApiError::NotFound(format!("no ticket `{guid}`")));
    }
    let action = Action::Comment {
        ticket: TicketRef {
            guid: Some(guid.clone()),
            ..TicketRef::default()
        },
        comment: b.comment,
        commented_by: b.author.unwrap_or(admin.name),
        external_comment_id: None,
    };
    apply_one(&state, action).await?;
    Ok((StatusCode::CREATED, Json(detail(&state, &guid).await?)))
}

pub async fn history(
    _: Reader,
    State(state): State<ApiState>,
    Key(guid): Key,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    if state.store.ticket(&guid).await?.is_none() {
        return Err(ApiError::NotFound(format!("no ticket `{guid}`")));
    }
    let rows = state.store.history(&guid, q.after, limit).await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(json!({
        "items": rows.iter().map(history_json).collect::<Vec<_>>(),
        "next": next,
    })))
}
