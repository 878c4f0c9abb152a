//! The people directory (`/v1/people`: list, show, put, delete; writes
//! need the admin scope) and each provider's mapper state
//! (`GET /v1/providers/{provider}/state`, read scope). A write reloads this
//! process's in-memory directory before it answers, so the next mapping
//! sees it.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::ObjectBuilder;

use super::ApiState;
use super::auth::{Admin, Reader};
use super::error::{ApiError, ErrorBody};
use super::openapi::{field, text};
use super::params::{Key, body};
use crate::people::{NAME_MAX, check_email, check_identity};
use crate::store::{PersonRow, PutPerson, StateEntry};

/// One line without control characters.
const NO_CONTROL: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";
const NO_CONTROL_NONEMPTY: &str = r"^[^\u0000-\u001F\u007F-\u009F]+$";

fn person_name() -> ObjectBuilder {
    field(text(true, NO_CONTROL, Some(NAME_MAX)), None)
}
fn identity_provider() -> ObjectBuilder {
    field(
        text(false, "^[a-z0-9_-]{1,64}$", None),
        Some("the provider's configured name, e.g. `github`"),
    )
}
fn identity_id() -> ObjectBuilder {
    field(
        text(false, NO_CONTROL_NONEMPTY, Some(200)).min_length(Some(1)),
        Some("their id there: a login, an account id, a user id"),
    )
}

/// One person of the directory.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Person)]
pub struct PersonView {
    /// Lower-case.
    pub email: String,
    pub name: Option<String>,
    pub identities: Vec<IdentityView>,
    pub updated_at: String,
}

/// Their id at one provider.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Identity)]
pub struct IdentityView {
    #[schema(schema_with = identity_provider)]
    pub provider: String,
    #[schema(schema_with = identity_id)]
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeoplePage {
    pub items: Vec<PersonView>,
}

/// `PUT /v1/people/{email}`: the person's whole record.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    #[serde(default)]
    #[schema(schema_with = person_name)]
    pub name: Option<String>,
    #[serde(default)]
    pub identities: Vec<IdentityView>,
}

/// `GET /v1/providers/{provider}/state`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProviderState)]
pub struct StateView {
    pub provider: String,
    pub entries: Vec<StateEntryView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = StateEntry)]
pub struct StateEntryView {
    pub key: String,
    pub value: String,
    pub updated_at: String,
}

impl From<PersonRow> for PersonView {
    fn from(p: PersonRow) -> Self {
        PersonView {
            email: p.email,
            name: p.name,
            identities: p
                .identities
                .into_iter()
                .map(|(provider, id)| IdentityView { provider, id })
                .collect(),
            updated_at: p.updated_at,
        }
    }
}

#[utoipa::path(
    get,
    tag = "people",
    path = "/v1/people",
    operation_id = "listPeople",
    summary = "The people directory: each person's e-mail, name and id at each provider",
    responses(
        (status = 200, description = "every person, by e-mail", body = PeoplePage),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
    )
)]
pub async fn list(_: Reader, State(state): State<ApiState>) -> Result<Json<PeoplePage>, ApiError> {
    let items = state
        .store
        .people()
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(PeoplePage { items }))
}

#[utoipa::path(
    get,
    tag = "people",
    path = "/v1/people/{email}",
    operation_id = "showPerson",
    summary = "One person of the directory",
    params(("email" = String, Path, description = "the person's e-mail (any case)", max_length = 254, pattern = r"^[^@\s\u0000-\u001F\u007F-\u009F]+@[^@\s\u0000-\u001F\u007F-\u009F]+$")),
    responses(
        (status = 200, description = "the person", body = PersonView),
        (status = 404, description = "nobody with this e-mail", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
    )
)]
pub async fn show(
    _: Reader,
    State(state): State<ApiState>,
    Key(email): Key,
) -> Result<Json<PersonView>, ApiError> {
    match state.store.person(&email).await? {
        Some(p) => Ok(Json(p.into())),
        None => Err(no_person(&email)),
    }
}

#[utoipa::path(
    put,
    tag = "people",
    path = "/v1/people/{email}",
    operation_id = "putPerson",
    summary = "Create or replace a person: name and every identity (admin); mappers see it at once",
    params(("email" = String, Path, description = "the person's e-mail (any case)", max_length = 254, pattern = r"^[^@\s\u0000-\u001F\u007F-\u009F]+@[^@\s\u0000-\u001F\u007F-\u009F]+$")),
    request_body = PutBody,
    responses(
        (status = 200, description = "replaced", body = PersonView),
        (status = 201, description = "created", body = PersonView),
        (status = 409, description = "an identity belongs to another person", body = ErrorBody),
        (status = 422, description = "invalid e-mail, name or identity", body = ErrorBody),
        (status = 404, description = "the path names nothing", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 403, description = "read token", body = ErrorBody),
    )
)]
pub async fn put(
    _: Admin,
    State(state): State<ApiState>,
    Key(email): Key,
    b: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    check_email(&email).map_err(|why| ApiError::invalid("email", why))?;
    // serde takes a struct from a JSON array too (`[]` is "no fields"):
    // the body must be an object.
    let b = body(b)?;
    if !b.is_object() {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    let b: PutBody =
        serde_json::from_value(b).map_err(|e| ApiError::invalid("body", e.to_string()))?;
    // Judged as sent, before trimming, as the schema judges it: a name
    // ending in a form feed or a newline is refused, not trimmed clean.
    if let Some(n) = &b.name
        && (n.chars().count() > NAME_MAX || n.chars().any(char::is_control))
    {
        return Err(ApiError::invalid(
            "name",
            format!("must be at most {NAME_MAX} characters without control characters"),
        ));
    }
    let name = b
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    let mut identities = BTreeSet::new();
    for (i, ident) in b.identities.into_iter().enumerate() {
        check_identity(&ident.provider, &ident.id)
            .map_err(|why| ApiError::invalid(&format!("identities[{i}]"), why))?;
        identities.insert((ident.provider, ident.id));
    }
    let identities: Vec<(String, String)> = identities.into_iter().collect();
    let (status, row) = match state
        .store
        .put_person(&email, name.as_deref(), &identities)
        .await?
    {
        PutPerson::Created(row) => (StatusCode::CREATED, row),
        PutPerson::Updated(row) => (StatusCode::OK, row),
        PutPerson::IdentityTaken {
            provider,
            id,
            email,
        } => {
            return Err(ApiError::Conflict(format!(
                "the {provider} identity `{id}` belongs to {email}"
            )));
        }
    };
    state.people.refresh(&state.store).await?;
    // No `Location`: an e-mail may hold characters a header cannot carry
    // as they are, and the path is the one the caller just used.
    Ok((status, Json(PersonView::from(row))))
}

#[utoipa::path(
    delete,
    tag = "people",
    path = "/v1/people/{email}",
    operation_id = "deletePerson",
    summary = "Delete a person and their identities (admin)",
    params(("email" = String, Path, description = "the person's e-mail (any case)", max_length = 254, pattern = r"^[^@\s\u0000-\u001F\u007F-\u009F]+@[^@\s\u0000-\u001F\u007F-\u009F]+$")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "nobody with this e-mail", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
        (status = 403, description = "read token", body = ErrorBody),
    )
)]
pub async fn delete(
    _: Admin,
    State(state): State<ApiState>,
    Key(email): Key,
) -> Result<StatusCode, ApiError> {
    if !state.store.delete_person(&email).await? {
        return Err(no_person(&email));
    }
    state.people.refresh(&state.store).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    tag = "people",
    path = "/v1/providers/{provider}/state",
    operation_id = "showProviderState",
    summary = "A provider's mapper state (cursors, sync tokens), as its mapper's deliveries committed it",
    params(("provider" = String, Path, description = "a configured provider")),
    responses(
        (status = 200, description = "every key", body = StateView),
        (status = 404, description = "no such provider is configured", body = ErrorBody),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
    )
)]
pub async fn provider_state(
    _: Reader,
    State(state): State<ApiState>,
    Key(provider): Key,
) -> Result<Json<StateView>, ApiError> {
    if !state.providers.contains(&provider) {
        return Err(ApiError::NotFound(format!(
            "no provider `{provider}` is configured"
        )));
    }
    let entries = state
        .store
        .mapper_state(&[provider.as_str()])
        .await?
        .into_iter()
        .map(|e: StateEntry| StateEntryView {
            key: e.key,
            value: e.value,
            updated_at: e.updated_at,
        })
        .collect();
    Ok(Json(StateView { provider, entries }))
}

fn no_person(email: &str) -> ApiError {
    ApiError::NotFound(format!("no person with e-mail `{email}`"))
}
