//! The canonical ticket-action model and its one JSON rendering.
//!
//! Mapper components return actions as WIT values; everything else in the
//! host — fixtures, `host test-mapper`, the history and the API — speaks the
//! JSON rendering defined here: the seed's dicts, snake_case field names,
//! enums upper-case, RACI roles as `R`/`A`/`C`/`I`, the ticket reference as
//! `ticket_guid` / `external_id` / `branch` / `from_action`, optional fields
//! omitted when absent. This module knows nothing of wasmtime or storage.

use serde_json::{Map, Value, json};

/// Which ticket an action applies to; the resolver tries the fields in
/// declaration order and uses the first that resolves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketRef {
    pub guid: Option<String>,
    pub external_id: Option<String>,
    pub branch: Option<String>,
    /// Index of an earlier `create` in the same action list.
    pub from_action: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaciRole {
    Responsible,
    Accountable,
    Consulted,
    Informed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignoffStatus {
    Pending,
    Approved,
    Rejected,
}

/// One ticket action, with the seed's required fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create {
        subject: String,
        description: String,
        priority: Priority,
        ticket_type: String,
        requested_by: Option<String>,
        external_id: Option<String>,
        labels: Vec<String>,
    },
    StatusChange {
        ticket: TicketRef,
        status: String,
        changed_by: String,
    },
    Comment {
        ticket: TicketRef,
        comment: String,
        commented_by: String,
        external_comment_id: Option<String>,
    },
    Assign {
        ticket: TicketRef,
        assigned_to: String,
        assigned_by: String,
    },
    Signoff {
        ticket: TicketRef,
        activity: String,
        role: RaciRole,
        email: String,
        signoff_status: SignoffStatus,
    },
    LinkPr {
        ticket: TicketRef,
        pr_id: String,
        repo: String,
        url: Option<String>,
    },
    Resolve {
        ticket: TicketRef,
        resolved_by: String,
    },
    Escalate {
        ticket: TicketRef,
        escalated_by: String,
        reason: Option<String>,
    },
    /// Custom fields set (an empty value clears one), in order.
    SetFields {
        ticket: TicketRef,
        fields: Vec<(String, String)>,
        changed_by: String,
    },
    /// The ticket's own fields as a provider edited its mirror; `None`
    /// leaves a field as it is.
    Update {
        ticket: TicketRef,
        subject: Option<String>,
        description: Option<String>,
        priority: Option<Priority>,
        ticket_type: Option<String>,
        changed_by: String,
    },
}

/// A mapper's answer to one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    pub event_type: String,
    /// Empty: the delivery is deliberately ignored.
    pub actions: Vec<Action>,
}

/// The kinds of `map-error` a mapper may return, as rendered in fixtures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapErrorKind {
    MalformedPayload,
    UnsupportedEvent,
    BadConfig,
    Internal,
}

/// A mapper's own, expected refusal of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapError {
    pub kind: MapErrorKind,
    pub message: String,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Critical,
    ];

    /// `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    pub fn parse(s: &str) -> Option<Priority> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "LOW",
            Priority::Medium => "MEDIUM",
            Priority::High => "HIGH",
            Priority::Critical => "CRITICAL",
        }
    }
}

impl RaciRole {
    pub fn as_str(self) -> &'static str {
        match self {
            RaciRole::Responsible => "R",
            RaciRole::Accountable => "A",
            RaciRole::Consulted => "C",
            RaciRole::Informed => "I",
        }
    }
}

impl SignoffStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SignoffStatus::Pending => "PENDING",
            SignoffStatus::Approved => "APPROVED",
            SignoffStatus::Rejected => "REJECTED",
        }
    }
}

impl MapErrorKind {
    pub const ALL: [MapErrorKind; 4] = [
        MapErrorKind::MalformedPayload,
        MapErrorKind::UnsupportedEvent,
        MapErrorKind::BadConfig,
        MapErrorKind::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MapErrorKind::MalformedPayload => "malformed_payload",
            MapErrorKind::UnsupportedEvent => "unsupported_event",
            MapErrorKind::BadConfig => "bad_config",
            MapErrorKind::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> Option<MapErrorKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for MapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl Action {
    /// The `action` tag of the rendering, e.g. `status_change`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Create { .. } => "create",
            Action::StatusChange { .. } => "status_change",
            Action::Comment { .. } => "comment",
            Action::Assign { .. } => "assign",
            Action::Signoff { .. } => "signoff",
            Action::LinkPr { .. } => "link_pr",
            Action::Resolve { .. } => "resolve",
            Action::Escalate { .. } => "escalate",
            Action::SetFields { .. } => "set_fields",
            Action::Update { .. } => "update",
        }
    }

    /// The ticket this action names; `None` for `create`.
    pub fn ticket(&self) -> Option<&TicketRef> {
        match self {
            Action::Create { .. } => None,
            Action::StatusChange { ticket, .. }
            | Action::Comment { ticket, .. }
            | Action::Assign { ticket, .. }
            | Action::Signoff { ticket, .. }
            | Action::LinkPr { ticket, .. }
            | Action::Resolve { ticket, .. }
            | Action::Escalate { ticket, .. }
            | Action::SetFields { ticket, .. }
            | Action::Update { ticket, .. } => Some(ticket),
        }
    }

    /// The ticket this action names, to rewrite; `None` for `create`.
    pub fn ticket_mut(&mut self) -> Option<&mut TicketRef> {
        match self {
            Action::Create { .. } => None,
            Action::StatusChange { ticket, .. }
            | Action::Comment { ticket, .. }
            | Action::Assign { ticket, .. }
            | Action::Signoff { ticket, .. }
            | Action::LinkPr { ticket, .. }
            | Action::Resolve { ticket, .. }
            | Action::Escalate { ticket, .. }
            | Action::SetFields { ticket, .. }
            | Action::Update { ticket, .. } => Some(ticket),
        }
    }

    /// The canonical JSON rendering: `{"action": "...", <ticket ref>, <fields>}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("action".into(), json!(self.name()));
        if let Some(t) = self.ticket() {
            put_opt(&mut m, "ticket_guid", &t.guid);
            put_opt(&mut m, "external_id", &t.external_id);
            put_opt(&mut m, "branch", &t.branch);
            if let Some(i) = t.from_action {
                m.insert("from_action".into(), json!(i));
            }
        }
        match self {
            Action::Create {
                subject,
                description,
                priority,
                ticket_type,
                requested_by,
                external_id,
                labels,
            } => {
                put(&mut m, "subject", subject);
                put(&mut m, "description", description);
                put(&mut m, "priority", priority.as_str());
                put(&mut m, "ticket_type", ticket_type);
                put_opt(&mut m, "requested_by", requested_by);
                put_opt(&mut m, "external_id", external_id);
                if !labels.is_empty() {
                    m.insert("labels".into(), json!(labels));
                }
            }
            Action::StatusChange {
                status, changed_by, ..
            } => {
                put(&mut m, "status", status);
                put(&mut m, "changed_by", changed_by);
            }
            Action::Comment {
                comment,
                commented_by,
                external_comment_id,
                ..
            } => {
                put(&mut m, "comment", comment);
                put(&mut m, "commented_by", commented_by);
                put_opt(&mut m, "external_comment_id", external_comment_id);
            }
            Action::Assign {
                assigned_to,
                assigned_by,
                ..
            } => {
                put(&mut m, "assigned_to", assigned_to);
                put(&mut m, "assigned_by", assigned_by);
            }
            Action::Signoff {
                activity,
                role,
                email,
                signoff_status,
                ..
            } => {
                put(&mut m, "activity", activity);
                put(&mut m, "role", role.as_str());
                put(&mut m, "email", email);
                put(&mut m, "signoff_status", signoff_status.as_str());
            }
            Action::LinkPr {
                pr_id, repo, url, ..
            } => {
                put(&mut m, "pr_id", pr_id);
                put(&mut m, "repo", repo);
                put_opt(&mut m, "url", url);
            }
            Action::Resolve { resolved_by, .. } => put(&mut m, "resolved_by", resolved_by),
            Action::Escalate {
                escalated_by,
                reason,
                ..
            } => {
                put(&mut m, "escalated_by", escalated_by);
                put_opt(&mut m, "reason", reason);
            }
            Action::SetFields {
                fields, changed_by, ..
            } => {
                let fields: Map<String, Value> = fields
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                m.insert("fields".into(), Value::Object(fields));
                put(&mut m, "changed_by", changed_by);
            }
            Action::Update {
                subject,
                description,
                priority,
                ticket_type,
                changed_by,
                ..
            } => {
                put_opt(&mut m, "subject", subject);
                put_opt(&mut m, "description", description);
                if let Some(p) = priority {
                    put(&mut m, "priority", p.as_str());
                }
                put_opt(&mut m, "ticket_type", ticket_type);
                put(&mut m, "changed_by", changed_by);
            }
        }
        Value::Object(m)
    }
}

impl Action {
    /// Reads the canonical rendering back, as the history stores it
    /// (extra keys, such as a status change's `from_status`, are ignored);
    /// `None` when `v` is not an action.
    pub fn from_json(v: &Value) -> Option<Action> {
        let m = v.as_object()?;
        let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
        let req = |k: &str| text(k);
        let ticket = || TicketRef {
            guid: text("ticket_guid"),
            external_id: text("external_id"),
            branch: text("branch"),
            from_action: m
                .get("from_action")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok()),
        };
        let role = |k: &str| match m.get(k)?.as_str()? {
            "R" => Some(RaciRole::Responsible),
            "A" => Some(RaciRole::Accountable),
            "C" => Some(RaciRole::Consulted),
            "I" => Some(RaciRole::Informed),
            _ => None,
        };
        let signoff = |k: &str| match m.get(k)?.as_str()? {
            "PENDING" => Some(SignoffStatus::Pending),
            "APPROVED" => Some(SignoffStatus::Approved),
            "REJECTED" => Some(SignoffStatus::Rejected),
            _ => None,
        };
        let priority = |k: &str| m.get(k).and_then(Value::as_str).and_then(Priority::parse);
        Some(match m.get("action")?.as_str()? {
            "create" => Action::Create {
                subject: req("subject")?,
                description: req("description")?,
                priority: priority("priority")?,
                ticket_type: req("ticket_type")?,
                requested_by: text("requested_by"),
                external_id: text("external_id"),
                labels: m
                    .get("labels")
                    .and_then(Value::as_array)
                    .map(|l| {
                        l.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            "status_change" => Action::StatusChange {
                ticket: ticket(),
                status: req("status")?,
                changed_by: req("changed_by")?,
            },
            "comment" => Action::Comment {
                ticket: ticket(),
                comment: req("comment")?,
                commented_by: req("commented_by")?,
                external_comment_id: text("external_comment_id"),
            },
            "assign" => Action::Assign {
                ticket: ticket(),
                assigned_to: req("assigned_to")?,
                assigned_by: req("assigned_by")?,
            },
            "signoff" => Action::Signoff {
                ticket: ticket(),
                activity: req("activity")?,
                role: role("role")?,
                email: req("email")?,
                signoff_status: signoff("signoff_status")?,
            },
            "link_pr" => Action::LinkPr {
                ticket: ticket(),
                pr_id: req("pr_id")?,
                repo: req("repo")?,
                url: text("url"),
            },
            "resolve" => Action::Resolve {
                ticket: ticket(),
                resolved_by: req("resolved_by")?,
            },
            "escalate" => Action::Escalate {
                ticket: ticket(),
                escalated_by: req("escalated_by")?,
                reason: text("reason"),
            },
            "set_fields" => Action::SetFields {
                ticket: ticket(),
                fields: m
                    .get("fields")?
                    .as_object()?
                    .iter()
                    .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect::<Option<_>>()?,
                changed_by: req("changed_by")?,
            },
            "update" => Action::Update {
                ticket: ticket(),
                subject: text("subject"),
                description: text("description"),
                priority: priority("priority"),
                ticket_type: text("ticket_type"),
                changed_by: req("changed_by")?,
            },
            _ => return None,
        })
    }
}

impl Mapped {
    /// `{"event_type": ..., "actions": [...]}`.
    pub fn to_json(&self) -> Value {
        json!({
            "event_type": self.event_type,
            "actions": self.actions.iter().map(Action::to_json).collect::<Vec<_>>(),
        })
    }
}

fn put(m: &mut Map<String, Value>, key: &str, value: &str) {
    m.insert(key.into(), Value::String(value.to_owned()));
}

fn put_opt(m: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        put(m, key, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn branch(b: &str) -> TicketRef {
        TicketRef {
            branch: Some(b.into()),
            ..TicketRef::default()
        }
    }

    #[test]
    fn renders_the_seed_dicts() {
        let cases: Vec<(Action, Value)> = vec![
            (
                Action::Signoff {
                    ticket: TicketRef {
                        guid: Some("abc123".into()),
                        ..TicketRef::default()
                    },
                    activity: "Development".into(),
                    role: RaciRole::Consulted,
                    email: "a@b.c".into(),
                    signoff_status: SignoffStatus::Approved,
                },
                json!({"action": "signoff", "ticket_guid": "abc123", "activity": "Development",
                       "role": "C", "email": "a@b.c", "signoff_status": "APPROVED"}),
            ),
            (
                Action::Create {
                    subject: "s".into(),
                    description: "d".into(),
                    priority: Priority::High,
                    ticket_type: "FEATURE".into(),
                    requested_by: None,
                    external_id: Some("w/r#1".into()),
                    labels: vec![],
                },
                json!({"action": "create", "subject": "s", "description": "d",
                       "priority": "HIGH", "ticket_type": "FEATURE", "external_id": "w/r#1"}),
            ),
            (
                Action::LinkPr {
                    ticket: TicketRef {
                        from_action: Some(0),
                        ..TicketRef::default()
                    },
                    pr_id: "7".into(),
                    repo: "w/r".into(),
                    url: None,
                },
                json!({"action": "link_pr", "from_action": 0, "pr_id": "7", "repo": "w/r"}),
            ),
            (
                Action::Escalate {
                    ticket: branch("feat/ticket-x"),
                    escalated_by: "ci".into(),
                    reason: Some("build failed".into()),
                },
                json!({"action": "escalate", "branch": "feat/ticket-x", "escalated_by": "ci",
                       "reason": "build failed"}),
            ),
            (
                Action::SetFields {
                    ticket: branch("b"),
                    fields: vec![
                        ("tracker_key".into(), "SUP-1".into()),
                        ("a".into(), "".into()),
                    ],
                    changed_by: "bot".into(),
                },
                json!({"action": "set_fields", "branch": "b",
                       "fields": {"tracker_key": "SUP-1", "a": ""}, "changed_by": "bot"}),
            ),
            (
                Action::Update {
                    ticket: branch("b"),
                    subject: Some("new".into()),
                    description: None,
                    priority: Some(Priority::Critical),
                    ticket_type: None,
                    changed_by: "x@y.z".into(),
                },
                json!({"action": "update", "branch": "b", "subject": "new",
                       "priority": "CRITICAL", "changed_by": "x@y.z"}),
            ),
            (
                Action::StatusChange {
                    ticket: branch("b"),
                    status: "IN_PROGRESS".into(),
                    changed_by: "x@y.z".into(),
                },
                json!({"action": "status_change", "branch": "b", "status": "IN_PROGRESS",
                       "changed_by": "x@y.z"}),
            ),
        ];
        for (action, want) in cases {
            assert_eq!(action.to_json(), want, "{action:?}");
            assert_eq!(Action::from_json(&want), Some(action.clone()), "{want}");
        }
    }

    #[test]
    fn rendering_keeps_field_order_stable() {
        let a = Action::Resolve {
            ticket: branch("b"),
            resolved_by: "r@x.y".into(),
        };
        assert_eq!(
            serde_json::to_string(&a.to_json()).unwrap(),
            r#"{"action":"resolve","branch":"b","resolved_by":"r@x.y"}"#
        );
    }

    #[test]
    fn error_kinds_round_trip() {
        for k in MapErrorKind::ALL {
            assert_eq!(MapErrorKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(MapErrorKind::parse("nope"), None);
    }
}
