//! The `sluice:mapper` world's bindings for Rust mappers, and the helpers
//! every provider's rules need: reading the delivery, JSON fields with errors
//! that name their path, who is who (the host's people directory, then the
//! `user_directory` of the mapper config), and action constructors.
//!
//! Outbound rules build requests with [`request`] and read a change's
//! links with [`links_of`]; [`get_json`] and [`person_by_email`] /
//! [`person_by_identity`] read the provider's API and the people directory;
//! [`get_json_from`] / [`send_json_to`] reach the provider's extra APIs
//! (`Sluice-Api: <name>`; [`RequestBuilder::api`] for outbound requests) and
//! [`find_tickets`] the host's tickets (`Sluice-Api: tickets`);
//! [`form_payload`] decodes a form-encoded `payload` field; [`whole_days`]
//! counts the days between two RFC 3339 instants (a stale notice's ages);
//! [`Mappings`] reads the config's field mappings (status, priority, custom
//! fields, defaults) and translates values both ways; [`reconcile_target`]
//! tells the host's reconcile tick from a webhook.
//!
//! A mapper crate implements [`Guest`] and calls
//! `mapper_kit::bindings::export!(MyMapper with_types_in mapper_kit::bindings);`.

/// The generated bindings. They live in a module of their own because a
/// world-level export macro made public at the crate root collides with its
/// own re-export.
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "mapper",
        pub_export_macro: true,
        default_bindings_module: "mapper_kit::bindings",
    });
}

mod api;
mod form;
mod mappings;
mod outbound;
mod tick;
mod time;

pub use api::{
    API_HEADER, TICKETS_API, answer_str, api_error_text, find_tickets, get_json, get_json_from,
    get_json_or_missing, identity_of, person_by_email, person_by_identity, send_json, send_json_to,
};
pub use bindings::Guest;
pub use bindings::sluice::mapper::host::{
    LogLevel, branch_ticket_guid, find_person, log, provider_api, state_get, state_set,
};
pub use bindings::sluice::mapper::types::*;
pub use form::{form_field, form_payload, is_form, query_escape};
pub use mappings::{FieldMapping, Mappings, priority_key};
pub use outbound::{RequestBuilder, change_guid, first_link, links_of, request};
pub use tick::{RECONCILE_EVENT, RECONCILE_MISSING_EVENT, reconcile_target};
pub use time::{epoch_seconds, whole_days};

use serde_json::Value;

/// The result of inbound mapping.
pub type MapResult = Result<Mapped, MapError>;

pub fn malformed(message: impl Into<String>) -> MapError {
    MapError {
        kind: MapErrorKind::MalformedPayload,
        message: message.into(),
    }
}

pub fn unsupported(message: impl Into<String>) -> MapError {
    MapError {
        kind: MapErrorKind::UnsupportedEvent,
        message: message.into(),
    }
}

pub fn bad_config(message: impl Into<String>) -> MapError {
    MapError {
        kind: MapErrorKind::BadConfig,
        message: message.into(),
    }
}

pub fn internal(message: impl Into<String>) -> MapError {
    MapError {
        kind: MapErrorKind::Internal,
        message: message.into(),
    }
}

/// A mapped event with these actions.
pub fn mapped(event_type: &str, actions: Vec<Action>) -> MapResult {
    Ok(Mapped {
        event_type: event_type.to_owned(),
        actions,
    })
}

/// A deliberately ignored event.
pub fn ignored(event_type: &str) -> MapResult {
    mapped(event_type, Vec::new())
}

/// The first value of header `name` (lower-case).
pub fn header<'d>(delivery: &'d Delivery, name: &str) -> Option<&'d str> {
    delivery
        .headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value.as_str())
}

/// The body as JSON, or a malformed-payload error saying why not.
pub fn json_body(delivery: &Delivery) -> Result<Value, MapError> {
    serde_json::from_slice(&delivery.body).map_err(|e| malformed(format!("body is not JSON: {e}")))
}

/// The body decoded into a typed payload. Typed decoding skips what the
/// mapper does not read without building it, several times cheaper than a
/// `Value` for a large delivery; errors name the path, e.g.
/// `pullrequest.source.branch.name: missing field \`name\``.
pub fn typed_body<T: serde::de::DeserializeOwned>(delivery: &Delivery) -> Result<T, MapError> {
    // Tracking the path costs on every field, and nearly every body
    // decodes: decode plainly first, and again with the path only to
    // explain a failure.
    if let Ok(body) = serde_json::from_slice(&delivery.body) {
        return Ok(body);
    }
    let de = &mut serde_json::Deserializer::from_slice(&delivery.body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            malformed(format!("body is not JSON: {inner}"))
        } else {
            malformed(format!("body field `{path}`: {inner}"))
        }
    })
}

/// Parses the mapper config (JSON text; `{}` when the provider sets none).
pub fn parse_config(config: &str) -> Result<Value, MapError> {
    serde_json::from_str(config).map_err(|e| bad_config(format!("mapper_config is not JSON: {e}")))
}

/// Reads JSON fields by pointer, naming the path in every error.
pub trait Fields {
    /// The value at `pointer` (RFC 6901, e.g. `/pullrequest/id`).
    fn req(&self, pointer: &str) -> Result<&Value, MapError>;
    /// A string at `pointer`; missing or null is an error.
    fn str_at(&self, pointer: &str) -> Result<&str, MapError>;
    /// A string at `pointer`, or `None` when missing or null.
    fn opt_str(&self, pointer: &str) -> Result<Option<&str>, MapError>;
    /// A string or number at `pointer`, rendered as text (ids).
    fn id_at(&self, pointer: &str) -> Result<String, MapError>;
    /// An array at `pointer`; missing or null is empty.
    fn list(&self, pointer: &str) -> Result<&[Value], MapError>;
}

impl Fields for Value {
    fn req(&self, pointer: &str) -> Result<&Value, MapError> {
        match self.pointer(pointer) {
            None | Some(Value::Null) => Err(malformed(format!("missing field `{pointer}`"))),
            Some(v) => Ok(v),
        }
    }

    fn str_at(&self, pointer: &str) -> Result<&str, MapError> {
        self.req(pointer)?
            .as_str()
            .ok_or_else(|| malformed(format!("field `{pointer}` is not a string")))
    }

    fn opt_str(&self, pointer: &str) -> Result<Option<&str>, MapError> {
        match self.pointer(pointer) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(malformed(format!("field `{pointer}` is not a string"))),
        }
    }

    fn id_at(&self, pointer: &str) -> Result<String, MapError> {
        match self.req(pointer)? {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(malformed(format!("field `{pointer}` is not an id"))),
        }
    }

    fn list(&self, pointer: &str) -> Result<&[Value], MapError> {
        match self.pointer(pointer) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(malformed(format!("field `{pointer}` is not a list"))),
        }
    }
}

/// Who a provider's user is, since the providers send no e-mail: first
/// the host's people directory (`find-person` by this provider's identity,
/// shared by every mapper), then `mapper_config.user_directory` (provider
/// user keys — login, nickname, account id, uuid — to e-mail addresses).
pub struct UserDirectory<'c> {
    entries: Option<&'c serde_json::Map<String, Value>>,
    provider: &'static str,
}

impl<'c> UserDirectory<'c> {
    pub fn from_config(config: &'c Value, provider: &'static str) -> Result<Self, MapError> {
        let entries = match config.get("user_directory") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => {
                return Err(bad_config(
                    "mapper_config.user_directory must map user keys to e-mail addresses",
                ));
            }
        };
        Ok(UserDirectory { entries, provider })
    }

    /// The e-mail of the user known by any of `keys` (tried in order, in
    /// the people directory, then in `user_directory`); `who` describes
    /// the user in the error.
    pub fn email(&self, keys: &[&str], who: &str) -> Result<String, MapError> {
        let keys: Vec<&str> = keys.iter().copied().filter(|k| !k.is_empty()).collect();
        if let Some(person) = keys.iter().find_map(|k| self.person(k)) {
            return Ok(person.email);
        }
        let found = self
            .entries
            .and_then(|m| keys.iter().find_map(|k| m.get(*k).and_then(Value::as_str)));
        found.map(str::to_owned).ok_or_else(|| {
            let tried: Vec<String> = keys
                .iter()
                .filter(|k| !k.is_empty())
                .map(|k| format!("`{k}`"))
                .collect();
            bad_config(format!(
                "no e-mail for {} user {who}: add one of {} to mapper_config.user_directory, \
                 or the person with that {} identity to the people directory",
                self.provider,
                tried.join(", "),
                self.provider,
            ))
        })
    }

    /// The people directory's person with this provider's id `key`.
    #[cfg(target_family = "wasm")]
    pub fn person(&self, key: &str) -> Option<Person> {
        find_person(&PersonKey::Identity(Identity {
            provider: self.provider.to_owned(),
            id: key.to_owned(),
        }))
    }

    /// Outside a component (the kit's own unit tests) there is no host.
    #[cfg(not(target_family = "wasm"))]
    pub fn person(&self, _key: &str) -> Option<Person> {
        None
    }
}

/// A reference by this provider's external id and, when known, a branch.
pub fn ticket_ref(external_id: Option<String>, branch: Option<String>) -> TicketRef {
    TicketRef {
        guid: None,
        external_id,
        branch,
        from_action: None,
    }
}

/// A reference by the ticket's own guid.
pub fn guid_ref(guid: &str) -> TicketRef {
    TicketRef {
        guid: Some(guid.to_owned()),
        external_id: None,
        branch: None,
        from_action: None,
    }
}

/// The RACI role a letter (`R`, `A`, `C`, `I`) or word (`responsible`, …)
/// names, case-insensitive.
pub fn parse_role(text: &str) -> Option<RaciRole> {
    match text.to_ascii_lowercase().as_str() {
        "r" | "responsible" => Some(RaciRole::Responsible),
        "a" | "accountable" => Some(RaciRole::Accountable),
        "c" | "consulted" => Some(RaciRole::Consulted),
        "i" | "informed" => Some(RaciRole::Informed),
        _ => None,
    }
}

/// The letter of a RACI role.
pub fn role_letter(role: RaciRole) -> &'static str {
    match role {
        RaciRole::Responsible => "R",
        RaciRole::Accountable => "A",
        RaciRole::Consulted => "C",
        RaciRole::Informed => "I",
    }
}

/// "The ticket created (or found) by action `index` of this list."
pub fn created_by(index: u32) -> TicketRef {
    TicketRef {
        guid: None,
        external_id: None,
        branch: None,
        from_action: Some(index),
    }
}

pub fn signoff(
    ticket: &TicketRef,
    activity: &str,
    role: RaciRole,
    email: String,
    status: SignoffStatus,
) -> Action {
    Action::Signoff(Signoff {
        ticket: ticket.clone(),
        activity: activity.to_owned(),
        role,
        email,
        signoff_status: status,
    })
}

pub fn comment(ticket: &TicketRef, text: String, by: String, id: Option<String>) -> Action {
    Action::Comment(AddComment {
        ticket: ticket.clone(),
        comment: text,
        commented_by: by,
        external_comment_id: id,
    })
}

/// `Name <email>` → `email`, as git writes authors.
pub fn email_in_author(raw: &str) -> Option<&str> {
    let start = raw.rfind('<')? + 1;
    let end = start + raw[start..].find('>')?;
    let email = raw[start..end].trim();
    email.contains('@').then_some(email)
}

/// The priority a ticket names (`LOW` … `CRITICAL`, as tickets and their
/// field changes render it), if any.
pub fn priority_named(name: &str) -> Option<Priority> {
    match name {
        "LOW" => Some(Priority::Low),
        "MEDIUM" => Some(Priority::Medium),
        "HIGH" => Some(Priority::High),
        "CRITICAL" => Some(Priority::Critical),
        _ => None,
    }
}

/// The priority named by `mapper_config.<key>` (`LOW` … `CRITICAL`), else `default`.
pub fn config_priority(config: &Value, key: &str, default: Priority) -> Result<Priority, MapError> {
    match config.get(key).and_then(Value::as_str) {
        None => Ok(default),
        Some(name) => priority_named(name).ok_or_else(|| {
            bad_config(format!(
                "mapper_config.{key} is `{name}`; expected LOW, MEDIUM, HIGH or CRITICAL"
            ))
        }),
    }
}

/// An id given as a non-empty string or a number (Asana's gids, Pachca's
/// numeric ids), as text.
pub fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The message's first line, trimmed and cut to `max_chars` (with `…`);
/// `None` for a message with no visible text.
pub fn first_line(text: &str, max_chars: usize) -> Option<String> {
    let line = text.trim().lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return None;
    }
    if line.chars().count() <= max_chars {
        return Some(line.to_owned());
    }
    let cut: String = line.chars().take(max_chars.saturating_sub(1)).collect();
    Some(format!("{}…", cut.trim_end()))
}

/// A string from the mapper config, else `default`.
pub fn config_str<'c>(config: &'c Value, key: &str, default: &'c str) -> &'c str {
    config.get(key).and_then(Value::as_str).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_read_letters_and_words() {
        for role in [
            RaciRole::Responsible,
            RaciRole::Accountable,
            RaciRole::Consulted,
            RaciRole::Informed,
        ] {
            assert_eq!(parse_role(role_letter(role)), Some(role));
        }
        assert_eq!(parse_role("consulted"), Some(RaciRole::Consulted));
        assert_eq!(parse_role("x"), None);
    }

    #[test]
    fn author_emails() {
        assert_eq!(email_in_author("Ann Lee <ann@x.io>"), Some("ann@x.io"));
        assert_eq!(email_in_author("Ann Lee"), None);
        assert_eq!(email_in_author("<not-an-email>"), None);
    }

    #[test]
    fn fields_name_their_path() {
        let v = json!({"a": {"b": 1, "s": "x", "n": null}});
        assert_eq!(v.id_at("/a/b").unwrap(), "1");
        assert_eq!(v.str_at("/a/s").unwrap(), "x");
        assert_eq!(v.opt_str("/a/n").unwrap(), None);
        assert!(
            v.str_at("/a/b")
                .unwrap_err()
                .message
                .contains("`/a/b` is not a string")
        );
        assert!(
            v.req("/a/zz")
                .unwrap_err()
                .message
                .contains("missing field `/a/zz`")
        );
    }

    #[test]
    fn directory_errors_say_what_to_add() {
        let cfg = json!({"user_directory": {"ann": "ann@x.io"}});
        let dir = UserDirectory::from_config(&cfg, "github").unwrap();
        assert_eq!(dir.email(&["zed", "ann"], "ann").unwrap(), "ann@x.io");
        let e = dir.email(&["bob", ""], "Bob").unwrap_err();
        assert_eq!(e.kind, MapErrorKind::BadConfig);
        assert!(
            e.message
                .contains("add one of `bob` to mapper_config.user_directory")
        );
    }
}
