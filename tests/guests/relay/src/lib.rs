//! A plain two-way mapper for the outbound end-to-end tests, speaking a
//! made-up provider's JSON: every provider configured with it is a
//! "system with records", so two of them sync with each other.
//!
//! Inbound (`{"event": ...}` bodies):
//! - `create` `{subject, record}` → `create` linked to the record;
//! - `comment` `{record, id, text, author}` → `comment` with the provider's
//!   comment id (so the host can drop its own echoes);
//! - `resolve` `{record, by}` → `resolve`;
//! - `status` `{record, status, by}` → `status-change`;
//! - `update` `{record, by, subject?, description?, priority?}` → `update`;
//! - `assign` `{record, assignee, by}` → `assign`;
//! - `fields` `{record, fields: {name: value}, by}` → `set-fields`;
//! - anything by the configured `bot` author is ignored (the third
//!   anti-loop layer; off unless `bot` is set).
//!
//! Outbound, for the provider the change names:
//! - a ticket created elsewhere with no record here → `POST /records`,
//!   capturing `/id` as the mirror;
//! - a comment → `POST /records/{record}/comments` (the ticket's record
//!   here), capturing `/id` as an echo;
//! - a resolve → `POST /records/{record}/resolve`;
//! - a `linked` change (another provider's mirror) → `POST
//!   /records/{record}/links` naming it;
//! - a status change, an assignment or field edits (`updated`) → `PATCH
//!   /records/{record}` with the new values by field name;
//! - nothing for a ticket with no record here, or anything else.

use mapper_kit::{
    Action, AddComment, Assign, Capture, CaptureKind, ChangeKind, CreateTicket, Delivery, Field,
    Fields, Guest, MapError, MapResult, OutboundRequest, Priority, Resolve, SetFields,
    StatusChange, TicketChange, TicketRef, UpdateTicket, ignored, json_body, mapped, parse_config,
};
use serde_json::{Value, json};

struct Relay;

mapper_kit::bindings::export!(Relay with_types_in mapper_kit::bindings);

fn by_record(record: &str) -> TicketRef {
    TicketRef {
        guid: None,
        external_id: Some(record.to_owned()),
        branch: None,
        from_action: None,
    }
}

fn priority(name: &str) -> Result<Priority, MapError> {
    match name {
        "LOW" => Ok(Priority::Low),
        "MEDIUM" => Ok(Priority::Medium),
        "HIGH" => Ok(Priority::High),
        "CRITICAL" => Ok(Priority::Critical),
        other => Err(mapper_kit::malformed(format!("priority `{other}`"))),
    }
}

fn post(path: String, body: Value, capture: Option<(CaptureKind, &str)>) -> OutboundRequest {
    request("POST", path, body, capture)
}

fn request(
    method: &str,
    path: String,
    body: Value,
    capture: Option<(CaptureKind, &str)>,
) -> OutboundRequest {
    OutboundRequest {
        method: method.into(),
        path,
        headers: vec![mapper_kit::Header {
            name: "content-type".into(),
            value: "application/json".into(),
        }],
        body: body.to_string().into_bytes(),
        captures: capture
            .map(|(kind, pointer)| Capture {
                kind,
                pointer: pointer.into(),
                prefix: String::new(),
            })
            .into_iter()
            .collect(),
    }
}

impl Guest for Relay {
    fn map_to_ticket_event(delivery: Delivery, config: String) -> MapResult {
        let config = parse_config(&config)?;
        let body = json_body(&delivery)?;
        let bot = config.get("bot").and_then(Value::as_str);
        if bot.is_some() && body.opt_str("/author")? == bot {
            return ignored("own_bot");
        }
        match body.str_at("/event")? {
            "create" => mapped(
                "record_created",
                vec![Action::Create(CreateTicket {
                    subject: body.str_at("/subject")?.to_owned(),
                    description: String::new(),
                    priority: Priority::Medium,
                    ticket_type: "TASK".into(),
                    requested_by: None,
                    external_id: Some(body.id_at("/record")?),
                    labels: vec![],
                })],
            ),
            "comment" => mapped(
                "comment_added",
                vec![Action::Comment(AddComment {
                    ticket: by_record(&body.id_at("/record")?),
                    comment: body.str_at("/text")?.to_owned(),
                    commented_by: body.str_at("/author")?.to_owned(),
                    external_comment_id: Some(body.id_at("/id")?),
                })],
            ),
            "resolve" => mapped(
                "record_resolved",
                vec![Action::Resolve(Resolve {
                    ticket: by_record(&body.id_at("/record")?),
                    resolved_by: body.str_at("/by")?.to_owned(),
                })],
            ),
            "status" => mapped(
                "status_changed",
                vec![Action::StatusChange(StatusChange {
                    ticket: by_record(&body.id_at("/record")?),
                    status: body.str_at("/status")?.to_owned(),
                    changed_by: body.str_at("/by")?.to_owned(),
                })],
            ),
            "update" => mapped(
                "record_updated",
                vec![Action::Update(UpdateTicket {
                    ticket: by_record(&body.id_at("/record")?),
                    subject: body.opt_str("/subject")?.map(str::to_owned),
                    description: body.opt_str("/description")?.map(str::to_owned),
                    priority: body.opt_str("/priority")?.map(priority).transpose()?,
                    ticket_type: None,
                    changed_by: body.str_at("/by")?.to_owned(),
                })],
            ),
            "assign" => mapped(
                "record_assigned",
                vec![Action::Assign(Assign {
                    ticket: by_record(&body.id_at("/record")?),
                    assigned_to: body.str_at("/assignee")?.to_owned(),
                    assigned_by: body.str_at("/by")?.to_owned(),
                })],
            ),
            "fields" => mapped(
                "record_fields",
                vec![Action::SetFields(SetFields {
                    ticket: by_record(&body.id_at("/record")?),
                    fields: body
                        .req("/fields")?
                        .as_object()
                        .ok_or_else(|| mapper_kit::malformed("`/fields` is not an object"))?
                        .iter()
                        .map(|(name, v)| Field {
                            name: name.clone(),
                            value: v.as_str().unwrap_or_default().to_owned(),
                        })
                        .collect(),
                    changed_by: body.str_at("/by")?.to_owned(),
                })],
            ),
            other => Err(mapper_kit::unsupported(format!("event `{other}`"))),
        }
    }

    fn map_from_ticket_event(
        change: TicketChange,
        _config: String,
    ) -> Result<Vec<OutboundRequest>, MapError> {
        let Some(ticket) = &change.ticket else {
            return Ok(vec![]);
        };
        let record = change
            .links
            .iter()
            .find(|l| l.provider == change.provider)
            .map(|l| l.external_id.clone());
        let request = match (&change.what, record) {
            (ChangeKind::Applied(Action::Create(_)), None) => post(
                "/records".into(),
                json!({"subject": ticket.subject, "guid": ticket.guid}),
                Some((CaptureKind::Mirror, "/id")),
            ),
            (ChangeKind::Applied(Action::Comment(c)), Some(record)) => post(
                format!("/records/{record}/comments"),
                json!({"text": c.comment, "author": c.commented_by}),
                Some((CaptureKind::Echo, "/id")),
            ),
            (ChangeKind::Applied(Action::Resolve(r)), Some(record)) => post(
                format!("/records/{record}/resolve"),
                json!({"by": r.resolved_by}),
                None,
            ),
            (ChangeKind::Applied(Action::StatusChange(c)), Some(record)) => request(
                "PATCH",
                format!("/records/{record}"),
                json!({"status": c.status}),
                None,
            ),
            (ChangeKind::Applied(Action::Assign(a)), Some(record)) => request(
                "PATCH",
                format!("/records/{record}"),
                json!({"assignee": a.assigned_to}),
                None,
            ),
            (ChangeKind::Updated(changes), Some(record)) => {
                let fields: serde_json::Map<String, Value> = changes
                    .iter()
                    .map(|c| (c.field.clone(), json!(c.new_value)))
                    .collect();
                request(
                    "PATCH",
                    format!("/records/{record}"),
                    Value::Object(fields),
                    None,
                )
            }
            (ChangeKind::Linked(l), Some(record)) => post(
                format!("/records/{record}/links"),
                json!({"provider": l.provider, "external_id": l.external_id}),
                None,
            ),
            _ => return Ok(vec![]),
        };
        Ok(vec![request])
    }
}
