//! The outbound half of the mapper contract, in the host's own types: a
//! ticket change offered to a provider's rules ([`TicketChange`]) and the
//! requests they answer with ([`OutboundRequest`]), with their JSON
//! rendering for fixtures, the outbox API and the CLI. Like [`crate::action`]
//! it knows nothing of wasmtime or storage.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::action::{Action, Priority};

/// A change offered to one provider's outbound rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketChange {
    /// Unique per (change, provider) and stable across retries.
    pub id: String,
    /// The provider whose rules are asked.
    pub provider: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// The provider whose delivery (or capture) caused it; `None` for the
    /// API and the sweeper.
    pub origin: Option<String>,
    /// The ticket after the change; `None` for a digest.
    pub ticket: Option<TicketView>,
    /// Every provider's links on the ticket, oldest first.
    pub links: Vec<LinkView>,
    pub what: ChangeKind,
}

/// A ticket as mappers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketView {
    pub guid: String,
    pub subject: String,
    pub description: String,
    pub status: String,
    pub priority: Priority,
    pub ticket_type: String,
    pub assignee: Option<String>,
    pub requested_by: Option<String>,
    pub labels: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub resolved_at: Option<String>,
    pub escalated_at: Option<String>,
    pub status_changed_at: String,
    /// Custom fields, in name order.
    pub fields: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkView {
    pub provider: String,
    pub external_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Direct,
    Digest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleNotice {
    pub rule: String,
    pub kind: NoticeKind,
    pub tickets: Vec<TicketView>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// An action was applied; its ticket reference is the resolved guid.
    Applied(Action),
    /// Fields changed through the API or a provider's `update`/`set_fields`.
    Updated(Vec<FieldChange>),
    Stale(StaleNotice),
    /// A provider's mirror of the ticket was linked.
    Linked(LinkView),
}

/// What a captured id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureKind {
    /// The provider's mirror of the ticket: linked to it.
    Mirror,
    /// A record made on the ticket's behalf: its webhook is our echo.
    Echo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    pub kind: CaptureKind,
    /// RFC 6901 JSON pointer into the response body.
    pub pointer: String,
    /// Put before the captured value; empty for none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
}

impl Capture {
    /// The id this capture takes from an answer's body: the string or
    /// number at its pointer, after its prefix; `None` when there is none
    /// (an empty string counts as none).
    pub fn read(&self, body: &Value) -> Option<String> {
        let value = match body.pointer(&self.pointer)? {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Some(format!("{}{value}", self.prefix))
    }
}

/// A request for the provider's API, relative to its base URL.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRequest {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default, with = "body_text")]
    pub body: Vec<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub captures: Vec<Capture>,
}

impl std::fmt::Debug for OutboundRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &crate::redacted::HeaderNames(&self.headers))
            .field("body", &crate::redacted::Bytes(self.body.len()))
            .field("captures", &self.captures)
            .finish()
    }
}

/// Request bodies as stored and shown: UTF-8 text as a string, anything
/// else as `{"base64": "..."}`.
mod body_text {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(body) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(
                    "base64",
                    &base64::engine::general_purpose::STANDARD.encode(body),
                )?;
                m.end()
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Text(String),
        Binary { base64: String },
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Stored::deserialize(d)? {
            Stored::Text(t) => Ok(t.into_bytes()),
            Stored::Binary { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl OutboundRequest {
    /// The fixture and API rendering: `{"method", "path", "headers":
    /// {name: value}, "body": <JSON value when the body is JSON, else
    /// text>, "captures": [...]}`, empty parts omitted.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("method".into(), json!(self.method));
        m.insert("path".into(), json!(self.path));
        if !self.headers.is_empty() {
            let headers: Map<String, Value> = self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            m.insert("headers".into(), Value::Object(headers));
        }
        if !self.body.is_empty() {
            let body = serde_json::from_slice::<Value>(&self.body).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&self.body).into_owned())
            });
            m.insert("body".into(), body);
        }
        if !self.captures.is_empty() {
            m.insert("captures".into(), json!(self.captures));
        }
        Value::Object(m)
    }
}

impl TicketView {
    pub fn to_json(&self) -> Value {
        let fields: Map<String, Value> = self
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        json!({
            "guid": self.guid,
            "subject": self.subject,
            "description": self.description,
            "status": self.status,
            "priority": self.priority.as_str(),
            "ticket_type": self.ticket_type,
            "assignee": self.assignee,
            "requested_by": self.requested_by,
            "labels": self.labels,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "resolved_at": self.resolved_at,
            "escalated_at": self.escalated_at,
            "status_changed_at": self.status_changed_at,
            "fields": fields,
        })
    }
}

impl ChangeKind {
    /// `applied`, `updated`, `stale` or `linked`.
    pub fn name(&self) -> &'static str {
        match self {
            ChangeKind::Applied(_) => "applied",
            ChangeKind::Updated(_) => "updated",
            ChangeKind::Stale(_) => "stale",
            ChangeKind::Linked(_) => "linked",
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            ChangeKind::Applied(a) => json!({"kind": "applied", "action": a.to_json()}),
            ChangeKind::Updated(fields) => json!({"kind": "updated", "fields": fields}),
            ChangeKind::Stale(n) => json!({
                "kind": "stale",
                "rule": n.rule,
                "notice": n.kind,
                "tickets": n.tickets.iter().map(TicketView::to_json).collect::<Vec<_>>(),
            }),
            ChangeKind::Linked(l) => {
                json!({"kind": "linked", "provider": l.provider, "external_id": l.external_id})
            }
        }
    }
}

impl TicketChange {
    /// `{"id", "at", "origin", "ticket", "links", "what"}`: the outbox API's
    /// and the outbound fixtures' rendering.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "provider": self.provider,
            "at": self.at,
            "origin": self.origin,
            "ticket": self.ticket.as_ref().map(TicketView::to_json),
            "links": self.links,
            "what": self.what.to_json(),
        })
    }
}

impl TicketChange {
    /// Reads the rendering of [`TicketChange::to_json`] back, as outbound
    /// fixtures write it: everything but `what` may be left out (a ticket's
    /// missing fields take plain defaults, `provider` is `default_provider`).
    /// Errors name the key at fault.
    pub fn from_json(v: &Value, default_provider: &str) -> Result<TicketChange, String> {
        let obj = v.as_object().ok_or("`change` must be an object")?;
        let text = |o: &Map<String, Value>, k: &str| -> Result<Option<String>, String> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("`{k}` must be a string")),
            }
        };
        let ticket = match obj.get("ticket") {
            None | Some(Value::Null) => None,
            Some(t) => Some(TicketView::from_json(t).map_err(|e| format!("change.ticket: {e}"))?),
        };
        let links: Vec<LinkView> = match obj.get("links") {
            None => Vec::new(),
            Some(l) => serde_json::from_value(l.clone()).map_err(|e| {
                format!("change.links: {e} (a list of {{\"provider\", \"external_id\"}})")
            })?,
        };
        let what = obj.get("what").ok_or("`change.what` is missing")?;
        let kind = what
            .get("kind")
            .and_then(Value::as_str)
            .ok_or("`change.what.kind` must be one of applied, updated, stale, linked")?;
        let what = match kind {
            "applied" => ChangeKind::Applied(
                Action::from_json(what.get("action").unwrap_or(&Value::Null))
                    .ok_or("`change.what.action` is not an action in the canonical rendering")?,
            ),
            "updated" => ChangeKind::Updated(
                serde_json::from_value(what.get("fields").cloned().unwrap_or(Value::Null))
                    .map_err(|e| format!("change.what.fields: {e}"))?,
            ),
            "linked" => ChangeKind::Linked(LinkView {
                provider: text(what.as_object().ok_or("`what`")?, "provider")?
                    .ok_or("`change.what.provider` is missing")?,
                external_id: text(what.as_object().ok_or("`what`")?, "external_id")?
                    .ok_or("`change.what.external_id` is missing")?,
            }),
            "stale" => ChangeKind::Stale(StaleNotice {
                rule: text(what.as_object().ok_or("`what`")?, "rule")?
                    .ok_or("`change.what.rule` is missing")?,
                kind: serde_json::from_value(what.get("notice").cloned().unwrap_or(Value::Null))
                    .map_err(|e| format!("change.what.notice: {e}"))?,
                tickets: what
                    .get("tickets")
                    .and_then(Value::as_array)
                    .map(|ts| ts.iter().map(TicketView::from_json).collect())
                    .transpose()
                    .map_err(|e| format!("change.what.tickets: {e}"))?
                    .unwrap_or_default(),
            }),
            other => return Err(format!("`change.what.kind` `{other}` is not a change kind")),
        };
        Ok(TicketChange {
            id: text(obj, "id")?.unwrap_or_else(|| "1".into()),
            provider: text(obj, "provider")?.unwrap_or_else(|| default_provider.to_owned()),
            at: text(obj, "at")?.unwrap_or_else(|| "2026-01-01T00:00:00.000000Z".into()),
            origin: text(obj, "origin")?,
            ticket,
            links,
            what,
        })
    }
}

impl TicketView {
    /// A ticket from its rendering; missing fields take plain defaults
    /// (status `NEW`, priority `MEDIUM`, times at the epoch of fixtures).
    pub fn from_json(v: &Value) -> Result<TicketView, String> {
        let o = v.as_object().ok_or("must be an object")?;
        let text = |k: &str| -> Result<Option<String>, String> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("`{k}` must be a string")),
            }
        };
        let epoch = || "2026-01-01T00:00:00.000000Z".to_owned();
        let created_at = text("created_at")?.unwrap_or_else(epoch);
        Ok(TicketView {
            guid: text("guid")?.ok_or("`guid` is missing")?,
            subject: text("subject")?.unwrap_or_default(),
            description: text("description")?.unwrap_or_default(),
            status: text("status")?.unwrap_or_else(|| "NEW".into()),
            priority: match text("priority")? {
                Some(p) => Priority::parse(&p).ok_or(format!(
                    "`priority` `{p}` is not LOW, MEDIUM, HIGH or CRITICAL"
                ))?,
                None => Priority::Medium,
            },
            ticket_type: text("ticket_type")?.unwrap_or_else(|| "TASK".into()),
            assignee: text("assignee")?,
            requested_by: text("requested_by")?,
            labels: match o.get("labels") {
                None => Vec::new(),
                Some(l) => serde_json::from_value(l.clone())
                    .map_err(|_| "`labels` must be a list of strings".to_owned())?,
            },
            updated_at: text("updated_at")?.unwrap_or_else(|| created_at.clone()),
            resolved_at: text("resolved_at")?,
            escalated_at: text("escalated_at")?,
            status_changed_at: text("status_changed_at")?.unwrap_or_else(|| created_at.clone()),
            created_at,
            fields: match o.get("fields") {
                None => Vec::new(),
                Some(Value::Object(f)) => f
                    .iter()
                    .map(|(k, v)| {
                        v.as_str()
                            .map(|s| (k.clone(), s.to_owned()))
                            .ok_or(format!("`fields.{k}` must be a string"))
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err("`fields` must be an object of strings".into()),
            },
        })
    }
}
