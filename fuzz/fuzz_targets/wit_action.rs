//! The conversions from the guest's WIT values to the host's own
//! (`host::mapper::bindings`: `wit::Mapped` → `action::Mapped`,
//! `wit::MapError` → `action::MapError`, and `Delivery` → `wit::Delivery`).
//!
//! Guest values are built by hand from the fuzzer's bytes, as a hostile
//! mapper could return them, or, when the input is JSON (a fixture's
//! expected actions), from the actions it holds. The oracle is a rendering
//! of the WIT value written here from the WIT docs: converting then
//! rendering with the host must give the same JSON, so a dropped or
//! swapped field shows.

#![no_main]

use arbitrary::{Result, Unstructured};
use host::action::{self, Action, Mapped, Priority, RaciRole, SignoffStatus, TicketRef};
use host::mapper::{Delivery, wit};
use host::tickets::Workflow;
use host::tickets::validate::validate;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use sluice_fuzz::{decode_action, json_actions, opt_text, text};

fuzz_target!(|data: &[u8]| {
    if let Some(values) = json_actions(data) {
        let actions = values
            .iter()
            .filter_map(decode_action)
            .map(|a| to_wit(&a))
            .collect();
        check_mapped(wit::Mapped {
            event_type: "json".into(),
            actions,
        });
        return;
    }
    let mut u = Unstructured::new(data);
    let Ok((mapped, error, delivery)) = inputs(&mut u) else {
        return;
    };
    check_mapped(mapped);

    let kind = match error.kind {
        wit::MapErrorKind::MalformedPayload => "malformed_payload",
        wit::MapErrorKind::UnsupportedEvent => "unsupported_event",
        wit::MapErrorKind::BadConfig => "bad_config",
        wit::MapErrorKind::Internal => "internal",
    };
    let message = error.message.clone();
    let host_error = action::MapError::from(error);
    assert_eq!(host_error.kind.as_str(), kind);
    assert_eq!(host_error.message, message);
    assert_eq!(host_error.to_string(), format!("{kind}: {message}"));

    let guest = wit::Delivery::from(&delivery);
    assert_eq!(guest.provider, delivery.provider);
    assert_eq!(guest.method, delivery.method);
    assert_eq!(guest.path, delivery.path);
    assert_eq!(guest.body, delivery.body);
    assert_eq!(guest.received_at, delivery.received_at);
    let headers: Vec<(String, String)> = guest
        .headers
        .into_iter()
        .map(|h| (h.name, h.value))
        .collect();
    assert_eq!(headers, delivery.headers);
});

fn check_mapped(mapped: wit::Mapped) {
    let want = json!({
        "event_type": mapped.event_type,
        "actions": mapped.actions.iter().map(render).collect::<Vec<_>>(),
    });
    let host: Mapped = mapped.into();
    assert_eq!(host.to_json(), want);
    for a in &host.actions {
        assert_eq!(decode_action(&a.to_json()).as_ref(), Some(a));
    }
    let _ = validate(&host.actions, &Workflow::default());
}

fn inputs(u: &mut Unstructured<'_>) -> Result<(wit::Mapped, wit::MapError, Delivery)> {
    let event_type = text(u)?;
    let n = u.int_in_range(0..=6)?;
    let actions = (0..n).map(|_| wit_action(u)).collect::<Result<_>>()?;
    let error = wit::MapError {
        kind: *u.choose(&[
            wit::MapErrorKind::MalformedPayload,
            wit::MapErrorKind::UnsupportedEvent,
            wit::MapErrorKind::BadConfig,
            wit::MapErrorKind::Internal,
        ])?,
        message: text(u)?,
    };
    let delivery = Delivery {
        provider: text(u)?,
        method: text(u)?,
        path: text(u)?,
        headers: u.arbitrary()?,
        body: u.arbitrary()?,
        received_at: text(u)?,
    };
    Ok((
        wit::Mapped {
            event_type,
            actions,
        },
        error,
        delivery,
    ))
}

fn ticket(u: &mut Unstructured<'_>) -> Result<wit::TicketRef> {
    Ok(wit::TicketRef {
        guid: opt_text(u)?,
        external_id: opt_text(u)?,
        branch: opt_text(u)?,
        // Any u32: a guest may name an index far past the list.
        from_action: u.arbitrary()?,
    })
}

fn wit_action(u: &mut Unstructured<'_>) -> Result<wit::Action> {
    Ok(match u.int_in_range(0..=9)? {
        8 => wit::Action::SetFields(wit::SetFields {
            ticket: ticket(u)?,
            fields: {
                let n = u.int_in_range(0..=4)?;
                (0..n)
                    .map(|_| {
                        Ok(wit::Field {
                            name: text(u)?,
                            value: text(u)?,
                        })
                    })
                    .collect::<Result<_>>()?
            },
            changed_by: text(u)?,
        }),
        9 => wit::Action::Update(wit::UpdateTicket {
            ticket: ticket(u)?,
            subject: opt_text(u)?,
            description: opt_text(u)?,
            priority: if u.arbitrary()? {
                Some(*u.choose(&[
                    wit::Priority::Low,
                    wit::Priority::Medium,
                    wit::Priority::High,
                    wit::Priority::Critical,
                ])?)
            } else {
                None
            },
            ticket_type: opt_text(u)?,
            changed_by: text(u)?,
        }),
        0 => wit::Action::Create(wit::CreateTicket {
            subject: text(u)?,
            description: text(u)?,
            priority: *u.choose(&[
                wit::Priority::Low,
                wit::Priority::Medium,
                wit::Priority::High,
                wit::Priority::Critical,
            ])?,
            ticket_type: text(u)?,
            requested_by: opt_text(u)?,
            external_id: opt_text(u)?,
            labels: {
                let n = u.int_in_range(0..=4)?;
                (0..n).map(|_| text(u)).collect::<Result<_>>()?
            },
        }),
        1 => wit::Action::StatusChange(wit::StatusChange {
            ticket: ticket(u)?,
            status: text(u)?,
            changed_by: text(u)?,
        }),
        2 => wit::Action::Comment(wit::AddComment {
            ticket: ticket(u)?,
            comment: text(u)?,
            commented_by: text(u)?,
            external_comment_id: opt_text(u)?,
        }),
        3 => wit::Action::Assign(wit::Assign {
            ticket: ticket(u)?,
            assigned_to: text(u)?,
            assigned_by: text(u)?,
        }),
        4 => wit::Action::Signoff(wit::Signoff {
            ticket: ticket(u)?,
            activity: text(u)?,
            role: *u.choose(&[
                wit::RaciRole::Responsible,
                wit::RaciRole::Accountable,
                wit::RaciRole::Consulted,
                wit::RaciRole::Informed,
            ])?,
            email: text(u)?,
            signoff_status: *u.choose(&[
                wit::SignoffStatus::Pending,
                wit::SignoffStatus::Approved,
                wit::SignoffStatus::Rejected,
            ])?,
        }),
        5 => wit::Action::LinkPr(wit::LinkPr {
            ticket: ticket(u)?,
            pr_id: text(u)?,
            repo: text(u)?,
            url: opt_text(u)?,
        }),
        6 => wit::Action::Resolve(wit::Resolve {
            ticket: ticket(u)?,
            resolved_by: text(u)?,
        }),
        _ => wit::Action::Escalate(wit::Escalate {
            ticket: ticket(u)?,
            escalated_by: text(u)?,
            reason: opt_text(u)?,
        }),
    })
}

/// The guest value a mapper would return for `a`.
fn to_wit(a: &Action) -> wit::Action {
    let t = |t: &TicketRef| wit::TicketRef {
        guid: t.guid.clone(),
        external_id: t.external_id.clone(),
        branch: t.branch.clone(),
        from_action: t.from_action,
    };
    match a.clone() {
        Action::Create {
            subject,
            description,
            priority,
            ticket_type,
            requested_by,
            external_id,
            labels,
        } => wit::Action::Create(wit::CreateTicket {
            subject,
            description,
            priority: match priority {
                Priority::Low => wit::Priority::Low,
                Priority::Medium => wit::Priority::Medium,
                Priority::High => wit::Priority::High,
                Priority::Critical => wit::Priority::Critical,
            },
            ticket_type,
            requested_by,
            external_id,
            labels,
        }),
        Action::StatusChange {
            ticket,
            status,
            changed_by,
        } => wit::Action::StatusChange(wit::StatusChange {
            ticket: t(&ticket),
            status,
            changed_by,
        }),
        Action::Comment {
            ticket,
            comment,
            commented_by,
            external_comment_id,
        } => wit::Action::Comment(wit::AddComment {
            ticket: t(&ticket),
            comment,
            commented_by,
            external_comment_id,
        }),
        Action::Assign {
            ticket,
            assigned_to,
            assigned_by,
        } => wit::Action::Assign(wit::Assign {
            ticket: t(&ticket),
            assigned_to,
            assigned_by,
        }),
        Action::Signoff {
            ticket,
            activity,
            role,
            email,
            signoff_status,
        } => wit::Action::Signoff(wit::Signoff {
            ticket: t(&ticket),
            activity,
            role: match role {
                RaciRole::Responsible => wit::RaciRole::Responsible,
                RaciRole::Accountable => wit::RaciRole::Accountable,
                RaciRole::Consulted => wit::RaciRole::Consulted,
                RaciRole::Informed => wit::RaciRole::Informed,
            },
            email,
            signoff_status: match signoff_status {
                SignoffStatus::Pending => wit::SignoffStatus::Pending,
                SignoffStatus::Approved => wit::SignoffStatus::Approved,
                SignoffStatus::Rejected => wit::SignoffStatus::Rejected,
            },
        }),
        Action::LinkPr {
            ticket,
            pr_id,
            repo,
            url,
        } => wit::Action::LinkPr(wit::LinkPr {
            ticket: t(&ticket),
            pr_id,
            repo,
            url,
        }),
        Action::Resolve {
            ticket,
            resolved_by,
        } => wit::Action::Resolve(wit::Resolve {
            ticket: t(&ticket),
            resolved_by,
        }),
        Action::Escalate {
            ticket,
            escalated_by,
            reason,
        } => wit::Action::Escalate(wit::Escalate {
            ticket: t(&ticket),
            escalated_by,
            reason,
        }),
        Action::SetFields {
            ticket,
            fields,
            changed_by,
        } => wit::Action::SetFields(wit::SetFields {
            ticket: t(&ticket),
            fields: fields
                .into_iter()
                .map(|(name, value)| wit::Field { name, value })
                .collect(),
            changed_by,
        }),
        Action::Update {
            ticket,
            subject,
            description,
            priority,
            ticket_type,
            changed_by,
        } => wit::Action::Update(wit::UpdateTicket {
            ticket: t(&ticket),
            subject,
            description,
            priority: priority.map(|p| match p {
                Priority::Low => wit::Priority::Low,
                Priority::Medium => wit::Priority::Medium,
                Priority::High => wit::Priority::High,
                Priority::Critical => wit::Priority::Critical,
            }),
            ticket_type,
            changed_by,
        }),
    }
}

/// The canonical rendering of a guest action, from the WIT and the
/// `host::action` docs: tag, ticket reference, then the fields.
fn render(a: &wit::Action) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    };
    let s = |v: &String| Some(json!(v));
    let o = |v: &Option<String>| v.as_ref().map(|v| json!(v));
    let name = match a {
        wit::Action::Create(_) => "create",
        wit::Action::StatusChange(_) => "status_change",
        wit::Action::Comment(_) => "comment",
        wit::Action::Assign(_) => "assign",
        wit::Action::Signoff(_) => "signoff",
        wit::Action::LinkPr(_) => "link_pr",
        wit::Action::Resolve(_) => "resolve",
        wit::Action::Escalate(_) => "escalate",
        wit::Action::SetFields(_) => "set_fields",
        wit::Action::Update(_) => "update",
    };
    put("action", Some(json!(name)));
    let ticket = match a {
        wit::Action::Create(_) => None,
        wit::Action::StatusChange(x) => Some(&x.ticket),
        wit::Action::Comment(x) => Some(&x.ticket),
        wit::Action::Assign(x) => Some(&x.ticket),
        wit::Action::Signoff(x) => Some(&x.ticket),
        wit::Action::LinkPr(x) => Some(&x.ticket),
        wit::Action::Resolve(x) => Some(&x.ticket),
        wit::Action::Escalate(x) => Some(&x.ticket),
        wit::Action::SetFields(x) => Some(&x.ticket),
        wit::Action::Update(x) => Some(&x.ticket),
    };
    if let Some(t) = ticket {
        put("ticket_guid", o(&t.guid));
        put("external_id", o(&t.external_id));
        put("branch", o(&t.branch));
        put("from_action", t.from_action.map(|i| json!(i)));
    }
    match a {
        wit::Action::Create(c) => {
            put("subject", s(&c.subject));
            put("description", s(&c.description));
            let priority = match c.priority {
                wit::Priority::Low => "LOW",
                wit::Priority::Medium => "MEDIUM",
                wit::Priority::High => "HIGH",
                wit::Priority::Critical => "CRITICAL",
            };
            put("priority", Some(json!(priority)));
            put("ticket_type", s(&c.ticket_type));
            put("requested_by", o(&c.requested_by));
            put("external_id", o(&c.external_id));
            put("labels", (!c.labels.is_empty()).then(|| json!(c.labels)));
        }
        wit::Action::StatusChange(x) => {
            put("status", s(&x.status));
            put("changed_by", s(&x.changed_by));
        }
        wit::Action::Comment(x) => {
            put("comment", s(&x.comment));
            put("commented_by", s(&x.commented_by));
            put("external_comment_id", o(&x.external_comment_id));
        }
        wit::Action::Assign(x) => {
            put("assigned_to", s(&x.assigned_to));
            put("assigned_by", s(&x.assigned_by));
        }
        wit::Action::Signoff(x) => {
            put("activity", s(&x.activity));
            let role = match x.role {
                wit::RaciRole::Responsible => "R",
                wit::RaciRole::Accountable => "A",
                wit::RaciRole::Consulted => "C",
                wit::RaciRole::Informed => "I",
            };
            put("role", Some(json!(role)));
            put("email", s(&x.email));
            let status = match x.signoff_status {
                wit::SignoffStatus::Pending => "PENDING",
                wit::SignoffStatus::Approved => "APPROVED",
                wit::SignoffStatus::Rejected => "REJECTED",
            };
            put("signoff_status", Some(json!(status)));
        }
        wit::Action::LinkPr(x) => {
            put("pr_id", s(&x.pr_id));
            put("repo", s(&x.repo));
            put("url", o(&x.url));
        }
        wit::Action::Resolve(x) => put("resolved_by", s(&x.resolved_by)),
        wit::Action::Escalate(x) => {
            put("escalated_by", s(&x.escalated_by));
            put("reason", o(&x.reason));
        }
        wit::Action::SetFields(x) => {
            // Later fields of one name win, in the place of the first.
            let mut fields = Map::new();
            for f in &x.fields {
                fields.insert(f.name.clone(), json!(f.value));
            }
            put("fields", Some(Value::Object(fields)));
            put("changed_by", s(&x.changed_by));
        }
        wit::Action::Update(x) => {
            put("subject", o(&x.subject));
            put("description", o(&x.description));
            let priority = x.priority.map(|p| match p {
                wit::Priority::Low => "LOW",
                wit::Priority::Medium => "MEDIUM",
                wit::Priority::High => "HIGH",
                wit::Priority::Critical => "CRITICAL",
            });
            put("priority", priority.map(|p| json!(p)));
            put("ticket_type", o(&x.ticket_type));
            put("changed_by", s(&x.changed_by));
        }
    }
    Value::Object(m)
}
