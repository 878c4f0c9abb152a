//! Reading the provider's API (`provider-api`) and the people directory
//! (`find-person`) with errors that say which call failed.

use serde_json::Value;

use crate::{
    ApiError, ApiRequest, Header, Identity, MapError, Person, PersonKey, find_person, internal,
    provider_api,
};

/// The request header that sends a `provider-api` request (or an outbound
/// request) to another of the provider's APIs: `sluice-api: <name>` for
/// the config's `api.extra.<name>`, or [`TICKETS_API`]. The host removes
/// it; a name the config does not have is denied.
pub const API_HEADER: &str = "sluice-api";

/// The reserved API of the host's own tickets: `GET /v1/tickets?…` as the
/// ticket API answers it, when the operator sets `api.read_tickets: true`.
pub const TICKETS_API: &str = "tickets";

/// GETs `path` (relative to the provider's API base URL) and parses the
/// answer as JSON. A failed call, a non-2xx status or a body that is not
/// JSON is an internal error naming the path; the host retries the
/// delivery when its API was down or slow.
pub fn get_json(path: &str) -> Result<Value, MapError> {
    send_json("GET", path, None)
}

/// Sends `method` to `path` with `body` as JSON (none: no body) and parses
/// the answer as JSON, with [`get_json`]'s errors. For the writes a
/// mapping needs before it can answer (Pachca's thread of a message).
pub fn send_json(method: &str, path: &str, body: Option<&Value>) -> Result<Value, MapError> {
    call_json(None, method, path, body)
}

/// [`get_json`] against the provider's extra API `api` (`api.extra.<api>`
/// in the host's config, e.g. a directory beside a chat); errors name it.
pub fn get_json_from(api: &str, path: &str) -> Result<Value, MapError> {
    call_json(Some(api), "GET", path, None)
}

/// [`send_json`] against the provider's extra API `api`.
pub fn send_json_to(
    api: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, MapError> {
    call_json(Some(api), method, path, body)
}

/// The host's tickets matching `query` (the query string of
/// `GET /v1/tickets`, e.g. `field.pachca_user_id=2345&limit=100`): one
/// page, `{"items": [...], "next"}`, as the ticket API serves it. Needs
/// `api.read_tickets: true` in the provider's config.
pub fn find_tickets(query: &str) -> Result<Value, MapError> {
    let path = if query.is_empty() {
        "/v1/tickets".to_owned()
    } else {
        format!("/v1/tickets?{query}")
    };
    call_json(Some(TICKETS_API), "GET", &path, None)
}

/// One `provider-api` call to `api` (none: the provider's own), its answer
/// as JSON; errors name the API, method and path.
fn call_json(
    api: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, MapError> {
    let mut headers = Vec::new();
    if let Some(api) = api {
        headers.push(Header {
            name: API_HEADER.into(),
            value: api.to_owned(),
        });
    }
    let body = match body {
        Some(b) => {
            headers.push(Header {
                name: "content-type".into(),
                value: "application/json; charset=utf-8".into(),
            });
            b.to_string().into_bytes()
        }
        None => Vec::new(),
    };
    let what = match api {
        Some(api) => format!("{method} {path} ({api})"),
        None => format!("{method} {path}"),
    };
    let response = provider_api(&ApiRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body,
    })
    .map_err(|e| internal(format!("{what} failed: {}", api_error_text(&e))))?;
    if !(200..300).contains(&response.status) {
        return Err(internal(format!(
            "{what} answered status {}",
            response.status
        )));
    }
    serde_json::from_slice(&response.body)
        .map_err(|e| internal(format!("{what}: answer is not JSON: {e}")))
}

/// GETs `path` like [`get_json`], but a 404 is `None`: the record is
/// gone (a reconcile tick of a deleted issue).
pub fn get_json_or_missing(path: &str) -> Result<Option<Value>, MapError> {
    let response = provider_api(&ApiRequest {
        method: "GET".into(),
        path: path.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    })
    .map_err(|e| internal(format!("GET {path} failed: {}", api_error_text(&e))))?;
    match response.status {
        404 => Ok(None),
        200..300 => serde_json::from_slice(&response.body)
            .map(Some)
            .map_err(|e| internal(format!("GET {path}: answer is not JSON: {e}"))),
        status => Err(internal(format!("GET {path} answered status {status}"))),
    }
}

/// Why `provider-api` gave no answer, for an error message.
pub fn api_error_text(e: &ApiError) -> String {
    match e {
        ApiError::Denied(why) => format!("denied: {why}"),
        ApiError::BudgetExhausted => "call budget exhausted".into(),
        ApiError::Timeout => "timed out".into(),
        ApiError::TooLarge => "response too large".into(),
        ApiError::Unavailable(why) => format!("unavailable: {why}"),
    }
}

/// The person of the directory with this e-mail (case-insensitive).
pub fn person_by_email(email: &str) -> Option<Person> {
    find_person(&PersonKey::Email(email.to_owned()))
}

/// The person of the directory `provider` knows by `id`.
pub fn person_by_identity(provider: &str, id: &str) -> Option<Person> {
    find_person(&PersonKey::Identity(Identity {
        provider: provider.to_owned(),
        id: id.to_owned(),
    }))
}

/// The person's id at `provider`, if the directory has one.
pub fn identity_of<'p>(person: &'p Person, provider: &str) -> Option<&'p str> {
    person
        .identities
        .iter()
        .find(|i| i.provider == provider)
        .map(|i| i.id.as_str())
}

/// A string at `pointer` of an API answer, or an internal error naming the
/// call (`what`, e.g. `GET /tasks/12`) and the field.
pub fn answer_str<'v>(answer: &'v Value, pointer: &str, what: &str) -> Result<&'v str, MapError> {
    answer
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| internal(format!("{what}: answer has no string at `{pointer}`")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identities_are_picked_by_provider() {
        let p = Person {
            email: "ann@x.io".into(),
            name: None,
            identities: vec![
                Identity {
                    provider: "github".into(),
                    id: "ann".into(),
                },
                Identity {
                    provider: "slack".into(),
                    id: "U1".into(),
                },
            ],
        };
        assert_eq!(identity_of(&p, "slack"), Some("U1"));
        assert_eq!(identity_of(&p, "asana"), None);
    }

    #[test]
    fn answer_fields_name_the_call() {
        let v = json!({"data": {"name": "x", "n": 1}});
        assert_eq!(answer_str(&v, "/data/name", "GET /tasks/1").unwrap(), "x");
        let e = answer_str(&v, "/data/n", "GET /tasks/1").unwrap_err();
        assert_eq!(e.message, "GET /tasks/1: answer has no string at `/data/n`");
    }
}
