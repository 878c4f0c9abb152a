//! Ticket handlers: find, find-first, get, create, update, add note, history.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::{Admin, Reader};
use super::error::{ApiError, ErrorBody};
use super::openapi::{EMAIL, NOTE, ONE_LINE, TEXT, custom_fields, field, one_of, text};
use super::params::{Key, body, query};
use crate::action::{Action, Priority, TicketRef};
use crate::store::{HistoryRow, Store, TicketFilter, TicketRow};
use crate::tickets::validate::{FIELDS_MAX, TEXT_MAX, is_field_name};
use crate::tickets::{ApplyInput, ApplyOutcome, TicketUpdate, raci};

const PRIORITIES: [&str; 4] = ["LOW", "MEDIUM", "HIGH", "CRITICAL"];

/// Query of `GET /v1/tickets` and `/v1/tickets/first`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FindQuery {
    /// Workflow status, e.g. IN_PROGRESS.
    status: Option<String>,
    assignee: Option<String>,
    /// Tickets linked to a record of this provider.
    provider: Option<String>,
    /// Tickets linked to a record with this id (of `provider`, when given).
    external_id: Option<String>,
    /// Case-insensitive text in subject or description.
    q: Option<String>,
    #[param(format = DateTime)]
    updated_after: Option<String>,
    #[param(format = DateTime)]
    updated_before: Option<String>,
    /// Tickets per page (`/first` answers the first one).
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// `next` of the previous page, as it was returned.
    #[param(pattern = "^[^/]+/")]
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    #[schema(schema_with = subject)]
    subject: String,
    #[serde(default)]
    #[schema(schema_with = description)]
    description: String,
    #[serde(default = "medium")]
    #[schema(schema_with = create_priority)]
    priority: String,
    #[serde(default = "task")]
    #[schema(schema_with = create_ticket_type)]
    ticket_type: String,
    #[schema(schema_with = requested_by)]
    requested_by: Option<String>,
    #[schema(schema_with = external_id)]
    external_id: Option<String>,
    #[serde(default)]
    #[schema(schema_with = labels)]
    labels: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = fields)]
    fields: BTreeMap<String, String>,
}

/// Fields to change; an absent or null field is left as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    #[schema(schema_with = subject_or_null)]
    subject: Option<String>,
    #[schema(schema_with = description_or_null)]
    description: Option<String>,
    /// The served document lists the configured workflow's statuses
    /// (`openapi::document`).
    #[schema(schema_with = status_or_null)]
    status: Option<String>,
    #[schema(schema_with = priority_or_null)]
    priority: Option<String>,
    #[schema(schema_with = line_or_null)]
    ticket_type: Option<String>,
    #[schema(schema_with = assignee_or_null)]
    assignee: Option<String>,
    #[schema(schema_with = labels_or_null)]
    labels: Option<Vec<String>>,
    /// Fields not named are left as they are.
    #[schema(schema_with = fields_or_null)]
    fields: Option<BTreeMap<String, String>>,
    /// Who made the change; defaults to the token's name.
    #[schema(schema_with = changed_by_or_null)]
    changed_by: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    #[schema(schema_with = note)]
    comment: String,
    /// Defaults to the token's name.
    #[schema(schema_with = author_or_null)]
    author: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// `next` of the previous page.
    #[param(minimum = -9223372036854775808i64, maximum = 9223372036854775807i64)]
    after: Option<i64>,
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u32>,
}

// The request bodies' field schemas: the rules `tickets::validate`
// enforces, so schemathesis can hold the server to them.
const FREE_TEXT: &str = "free text, at most 65536 characters once trimmed; NUL is refused, other control characters but tab and line breaks are dropped";
const AN_EMAIL: &str = "an e-mail address: `local@domain.tld`, one line, no spaces";
const TOKEN_NAME: &str = "defaults to the token's name";

fn subject() -> ObjectBuilder {
    field(
        text(false, ONE_LINE, Some(512)),
        Some("one line with a visible character"),
    )
}
fn subject_or_null() -> ObjectBuilder {
    field(text(true, ONE_LINE, Some(512)), None)
}
fn description() -> ObjectBuilder {
    field(text(false, TEXT, None), Some(FREE_TEXT))
}
fn description_or_null() -> ObjectBuilder {
    field(text(true, TEXT, None), Some(FREE_TEXT))
}
fn create_priority() -> ObjectBuilder {
    field(
        one_of(false, &PRIORITIES).default(Some("MEDIUM".into())),
        None,
    )
}
fn priority_or_null() -> ObjectBuilder {
    field(one_of(true, &PRIORITIES), None)
}
fn create_ticket_type() -> ObjectBuilder {
    field(
        text(false, ONE_LINE, Some(256)).default(Some("TASK".into())),
        None,
    )
}
fn line_or_null() -> ObjectBuilder {
    field(text(true, ONE_LINE, Some(256)), None)
}
fn status_or_null() -> ObjectBuilder {
    field(
        text(true, ONE_LINE, Some(256)),
        Some("one of the configured workflow's statuses (the `enum` as served)"),
    )
}
fn requested_by() -> ObjectBuilder {
    field(
        text(true, EMAIL, Some(256)),
        Some(
            "an e-mail address: `local@domain.tld`, one line, no spaces; default: the token's name when it is one; null: the default",
        ),
    )
}
fn assignee_or_null() -> ObjectBuilder {
    field(text(true, EMAIL, Some(256)), Some(AN_EMAIL))
}
fn external_id() -> ObjectBuilder {
    field(
        text(true, ONE_LINE, Some(256)),
        Some(
            "links the ticket under provider `api`; a second create with it returns the first ticket (200); null: none",
        ),
    )
}
fn labels() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    super::openapi::labels(false)
}
fn labels_or_null() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    super::openapi::labels(true)
}
fn fields() -> ObjectBuilder {
    custom_fields(false)
}
fn fields_or_null() -> ObjectBuilder {
    custom_fields(true)
}
fn changed_by_or_null() -> ObjectBuilder {
    field(text(true, ONE_LINE, Some(256)), Some(TOKEN_NAME))
}
fn author_or_null() -> ObjectBuilder {
    field(text(true, ONE_LINE, Some(256)), Some(TOKEN_NAME))
}
fn note() -> ObjectBuilder {
    field(
        text(false, NOTE, None),
        Some(
            "free text with a visible character, at most 65536 characters once trimmed; NUL is refused, other control characters but tab and line breaks are dropped",
        ),
    )
}

fn medium() -> String {
    "MEDIUM".into()
}
fn task() -> String {
    "TASK".into()
}

/// The prefix of a custom-field filter's query parameter: `field.<name>`.
const FIELD_PARAM: &str = "field.";

/// Splits the query string into the custom-field filters
/// (`field.<name>=<value>`, checked here: every error names its
/// parameter) and the rest, read as a [`FindQuery`].
fn find_query(raw: Option<String>) -> Result<(FindQuery, Vec<(String, String)>), ApiError> {
    let raw = raw.unwrap_or_default();
    let mut fields = Vec::new();
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let Some(name) = key.strip_prefix(FIELD_PARAM) else {
            rest.append_pair(&key, &value);
            continue;
        };
        if !is_field_name(name) {
            return Err(ApiError::invalid(
                &key,
                format!(
                    "`{name}` is not a field name (snake_case ASCII starting with a letter, at most 64 characters)"
                ),
            ));
        }
        if value.chars().count() > TEXT_MAX {
            return Err(ApiError::invalid(
                &key,
                format!("is longer than {TEXT_MAX} characters"),
            ));
        }
        fields.push((name.to_owned(), value.trim().to_owned()));
    }
    if fields.len() > FIELDS_MAX {
        return Err(ApiError::invalid(
            FIELD_PARAM,
            format!("{} field filters, over {FIELDS_MAX}", fields.len()),
        ));
    }
    let uri: axum::http::Uri = format!("/?{}", rest.finish())
        .parse()
        .map_err(|_| ApiError::invalid("query", "is not a query string"))?;
    Ok((query(Query::try_from_uri(&uri))?, fields))
}

fn filter(
    q: FindQuery,
    fields: Vec<(String, String)>,
    default_limit: u32,
) -> Result<TicketFilter, ApiError> {
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
        fields,
        limit,
        cursor: super::params::cursor(q.cursor)?,
    })
}

/// How the find routes filter by custom fields, for the served document
/// (a parameter per field name cannot be listed).
const FIND_FIELDS: &str = "Also `field.<name>=<value>` for each custom field to match (several combine with AND, and with the other filters); an empty value matches tickets without the field. A name is snake_case ASCII starting with a letter, at most 64 characters; at most 64 such filters. An invalid one is a 422 whose `error.field` is the parameter, e.g. `field.Bad`.";

/// A ticket as found.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ticket {
    pub guid: String,
    pub subject: String,
    pub description: String,
    pub status: String,
    #[schema(schema_with = priority)]
    pub priority: String,
    pub ticket_type: String,
    pub assignee: Option<String>,
    pub requested_by: Option<String>,
    pub labels: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub escalated_at: Option<String>,
    pub escalated_by: Option<String>,
    pub escalation_reason: Option<String>,
    /// When the ticket entered its current status.
    #[schema(format = DateTime)]
    pub status_changed_at: String,
    /// Custom fields, by name (set by providers' `set_fields` actions and
    /// the API).
    pub fields: std::collections::BTreeMap<String, String>,
    /// The ticket's records at providers (a Tracker issue key, the Pachca
    /// message it came from), oldest provider name first.
    pub links: Vec<Link>,
}

fn priority() -> ObjectBuilder {
    field(one_of(false, &PRIORITIES), None)
}

impl Ticket {
    /// The ticket as served, with its links.
    fn new(t: &TicketRow, links: Vec<crate::store::Link>) -> Self {
        Ticket {
            guid: t.guid.clone(),
            subject: t.subject.clone(),
            description: t.description.clone(),
            status: t.status.clone(),
            priority: t.priority.clone(),
            ticket_type: t.ticket_type.clone(),
            assignee: t.assignee.clone(),
            requested_by: t.requested_by.clone(),
            labels: t.labels.clone(),
            created_at: t.created_at.clone(),
            updated_at: t.updated_at.clone(),
            resolved_at: t.resolved_at.clone(),
            resolved_by: t.resolved_by.clone(),
            escalated_at: t.escalated_at.clone(),
            escalated_by: t.escalated_by.clone(),
            escalation_reason: t.escalation_reason.clone(),
            status_changed_at: t.status_since().to_owned(),
            fields: t.fields.clone(),
            links: links
                .into_iter()
                .map(|l| Link {
                    provider: l.provider,
                    external_id: l.external_id,
                    created_at: l.created_at,
                })
                .collect(),
        }
    }
}

/// The ticket (with its integration links) and its comments, sign-offs,
/// `fully_signed` and PR links.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub ticket: Ticket,
    pub comments: Vec<Comment>,
    pub signoffs: Vec<Signoff>,
    /// Per activity: at least one A, every A and C APPROVED, none REJECTED.
    pub fully_signed: std::collections::BTreeMap<String, bool>,
    pub pr_links: Vec<PrLink>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Comment {
    pub id: i64,
    pub comment: String,
    pub commented_by: String,
    pub origin: Option<String>,
    pub external_comment_id: Option<String>,
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Signoff {
    pub activity: String,
    #[schema(schema_with = role)]
    pub role: String,
    pub email: String,
    #[schema(schema_with = signoff_status)]
    pub signoff_status: String,
    pub updated_at: String,
}

fn role() -> ObjectBuilder {
    field(one_of(false, &["R", "A", "C", "I"]), None)
}
fn signoff_status() -> ObjectBuilder {
    field(one_of(false, &["PENDING", "APPROVED", "REJECTED"]), None)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PrLink {
    pub repo: String,
    pub pr_id: String,
    pub url: Option<String>,
    pub created_at: String,
}

/// The ticket's record at a provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct Link {
    pub provider: String,
    pub external_id: String,
    pub created_at: String,
}

/// One page of tickets.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketPage {
    pub items: Vec<Ticket>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub id: i64,
    /// Action name, or `update`.
    pub kind: String,
    /// The canonical action JSON with the resolved `ticket_guid`;
    /// `from_status` on status changes; `fields` with from/to on updates.
    #[schema(value_type = Object)]
    pub change: Value,
    pub actor: Option<String>,
    pub origin: Option<String>,
    pub delivery_id: Option<String>,
    pub mapper_hash: Option<String>,
    pub at: String,
}

impl From<&HistoryRow> for HistoryEntry {
    fn from(h: &HistoryRow) -> Self {
        HistoryEntry {
            id: h.id,
            kind: h.kind.clone(),
            change: serde_json::from_str::<Value>(&h.change).unwrap_or(Value::Null),
            actor: h.actor.clone(),
            origin: h.origin.clone(),
            delivery_id: h.delivery_id.clone(),
            mapper_hash: h.mapper_hash.clone(),
            at: h.at.clone(),
        }
    }
}

/// One page of a ticket's history, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    pub items: Vec<HistoryEntry>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<i64>,
}

async fn detail(state: &ApiState, guid: &str) -> Result<TicketDetail, ApiError> {
    let store = &state.store;
    let t = store
        .ticket(guid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no ticket `{guid}`")))?;
    let signoffs = store.signoffs(guid).await?;
    let comments = store
        .comments(guid)
        .await?
        .into_iter()
        .map(|c| Comment {
            id: c.id,
            comment: c.body,
            commented_by: c.author,
            origin: c.origin,
            external_comment_id: c.external_id,
            at: c.at,
        })
        .collect();
    let pr_links = store
        .pr_links(guid)
        .await?
        .into_iter()
        .map(|p| PrLink {
            repo: p.repo,
            pr_id: p.pr_id,
            url: p.url,
            created_at: p.created_at,
        })
        .collect();
    let links = store.links(guid).await?;
    Ok(TicketDetail {
        ticket: Ticket::new(&t, links),
        comments,
        fully_signed: raci::fully_signed(&signoffs),
        signoffs: signoffs
            .into_iter()
            .map(|s| Signoff {
                activity: s.activity,
                role: s.role,
                email: s.email,
                signoff_status: s.status,
                updated_at: s.updated_at,
            })
            .collect(),
        pr_links,
    })
}

/// Applies actions made through the API (no delivery, no origin), in one
/// transaction.
async fn apply_actions(state: &ApiState, actions: &[Action]) -> Result<ApplyOutcome, ApiError> {
    let input = ApplyInput {
        delivery_id: None,
        origin: None,
        mapper_hash: None,
        actions,
        state: &[],
    };
    let out = state.applier.apply(&state.store, input).await?;
    super::outbox::wake(state);
    Ok(out)
}

#[utoipa::path(
    get,
    tag = "tickets",
    path = "/v1/tickets",
    operation_id = "findTickets",
    summary = "Find tickets, most recently updated first",
    description = FIND_FIELDS,
    params(FindQuery),
    responses(
        (status = 200, description = "one page", body = TicketPage),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 422, description = "an input is invalid; `error.field` names it", body = ErrorBody),
    )
)]
pub async fn find(
    _: Reader,
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<TicketPage>, ApiError> {
    Ok(Json(find_page(&state.store, raw).await?))
}

/// `GET /v1/tickets?{raw}`: the route's whole answer, for the handler and
/// for mappers reading tickets in process (`mapper_reads`).
pub(super) async fn find_page(store: &Store, raw: Option<String>) -> Result<TicketPage, ApiError> {
    let (q, fields) = find_query(raw)?;
    let page = store.find(&filter(q, fields, 50)?).await?;
    Ok(TicketPage {
        items: with_links(store, &page.items).await?,
        next: page.next,
    })
}

/// Found tickets as served: each with its links, read in one query.
async fn with_links(store: &Store, rows: &[TicketRow]) -> Result<Vec<Ticket>, ApiError> {
    let guids: Vec<String> = rows.iter().map(|t| t.guid.clone()).collect();
    let mut links = store.links_by_ticket(&guids).await?;
    Ok(rows
        .iter()
        .map(|t| Ticket::new(t, links.remove(&t.guid).unwrap_or_default()))
        .collect())
}

#[utoipa::path(
    get,
    tag = "tickets",
    path = "/v1/tickets/first",
    operation_id = "findFirstTicket",
    summary = "The first ticket matching the filters",
    description = FIND_FIELDS,
    params(FindQuery),
    responses(
        (status = 200, description = "the ticket", body = Ticket),
        (status = 404, description = "no ticket matches", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 422, description = "an input is invalid; `error.field` names it", body = ErrorBody),
    )
)]
pub async fn find_first(
    _: Reader,
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Ticket>, ApiError> {
    let (q, fields) = find_query(raw)?;
    let mut f = filter(q, fields, 1)?;
    f.limit = 1;
    let page = state.store.find(&f).await?;
    let first = page
        .items
        .first()
        .ok_or_else(|| ApiError::NotFound("no ticket matches".into()))?;
    let links = state.store.links(&first.guid).await?;
    Ok(Json(Ticket::new(first, links)))
}

#[utoipa::path(
    get,
    tag = "tickets",
    path = "/v1/tickets/{guid}",
    operation_id = "getTicket",
    summary = "A ticket with its comments, sign-offs, fully_signed, PR links and links",
    params(("guid" = String, Path, description = "the ticket's guid")),
    responses(
        (status = 200, description = "the ticket", body = TicketDetail),
        (status = 404, description = "unknown ticket", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
    )
)]
pub async fn get(
    _: Reader,
    State(state): State<ApiState>,
    Key(guid): Key,
) -> Result<Json<TicketDetail>, ApiError> {
    Ok(Json(detail(&state, &guid).await?))
}

#[utoipa::path(
    post,
    tag = "tickets",
    path = "/v1/tickets",
    operation_id = "createTicket",
    summary = "Create a ticket (admin)",
    request_body = CreateBody,
    responses(
        (status = 201, description = "created", body = TicketDetail,
            headers(("location" = String, description = "the ticket's URL"))),
        (status = 200, description = "already linked: the existing ticket", body = TicketDetail,
            headers(("location" = String, description = "the ticket's URL"))),
        (status = 403, description = "read token", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 422, description = "an input is invalid; `error.field` names it", body = ErrorBody),
    )
)]
pub async fn create(
    admin: Admin,
    State(state): State<ApiState>,
    b: Result<Json<CreateBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let b = body(b)?;
    let priority = Priority::parse(&b.priority)
        .ok_or_else(|| ApiError::invalid("priority", "must be LOW, MEDIUM, HIGH or CRITICAL"))?;
    let admin_actor = admin.name.clone();
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
    let mut actions = vec![action];
    // The fields are set on the ticket the create made (or found), in the
    // same transaction; history records them as an update.
    if !b.fields.is_empty() {
        actions.push(Action::SetFields {
            ticket: TicketRef {
                from_action: Some(0),
                ..TicketRef::default()
            },
            fields: b.fields.into_iter().collect(),
            changed_by: admin_actor.clone(),
        });
    }
    let out = apply_actions(&state, &actions).await?;
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

#[utoipa::path(
    patch,
    tag = "tickets",
    path = "/v1/tickets/{guid}",
    operation_id = "updateTicket",
    summary = "Update fields (admin)",
    params(("guid" = String, Path, description = "the ticket's guid")),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "the updated ticket", body = TicketDetail),
        (status = 403, description = "read token", body = ErrorBody),
        (status = 404, description = "unknown ticket", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 422, description = "an input is invalid; `error.field` names it", body = ErrorBody),
    )
)]
pub async fn update(
    admin: Admin,
    State(state): State<ApiState>,
    Key(guid): Key,
    b: Result<Json<UpdateBody>, JsonRejection>,
) -> Result<Json<TicketDetail>, ApiError> {
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
        fields: b.fields.unwrap_or_default(),
    };
    let actor = b.changed_by.unwrap_or(admin.name);
    state
        .applier
        .update(&state.store, &guid, &update, &actor)
        .await?;
    super::outbox::wake(&state);
    Ok(Json(detail(&state, &guid).await?))
}

#[utoipa::path(
    post,
    tag = "tickets",
    path = "/v1/tickets/{guid}/notes",
    operation_id = "addNote",
    summary = "Add a note (admin)",
    params(("guid" = String, Path, description = "the ticket's guid")),
    request_body = NoteBody,
    responses(
        (status = 201, description = "the ticket with the note", body = TicketDetail),
        (status = 403, description = "read token", body = ErrorBody),
        (status = 404, description = "unknown ticket", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 422, description = "an input is invalid; `error.field` names it", body = ErrorBody),
    )
)]
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
    apply_actions(&state, std::slice::from_ref(&action)).await?;
    Ok((StatusCode::CREATED, Json(detail(&state, &guid).await?)))
}

#[utoipa::path(
    get,
    tag = "tickets",
    path = "/v1/tickets/{guid}/history",
    operation_id = "ticketHistory",
    summary = "The ticket's history, oldest first",
    params(("guid" = String, Path, description = "the ticket's guid"), HistoryQuery),
    responses(
        (status = 200, description = "one page", body = HistoryPage),
        (status = 404, description = "unknown ticket", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 422, description = "an input is invalid; `error.field` names it", body = ErrorBody),
    )
)]
pub async fn history(
    _: Reader,
    State(state): State<ApiState>,
    Key(guid): Key,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryPage>, ApiError> {
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
    Ok(Json(HistoryPage {
        items: rows.iter().map(HistoryEntry::from).collect(),
        next,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_filters_are_split_from_the_query_and_checked() {
        let (q, fields) = find_query(Some(
            "status=NEW&field.queue=SERVICE%20DESK&field.user_id=&limit=5".into(),
        ))
        .expect("valid");
        assert_eq!(q.status.as_deref(), Some("NEW"));
        assert_eq!(q.limit, Some(5));
        assert_eq!(
            fields,
            [
                ("queue".to_owned(), "SERVICE DESK".to_owned()),
                ("user_id".to_owned(), String::new())
            ]
        );
        let long = format!("field.queue={}", "x".repeat(TEXT_MAX + 1));
        let field_of = |raw: &str| match find_query(Some(raw.to_owned())) {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("{raw}: {other:?}"),
        };
        assert_eq!(field_of(&long), "field.queue");
        assert_eq!(field_of("field.Queue=x"), "field.Queue");
        assert_eq!(field_of("nope=1"), "query");
    }
}
