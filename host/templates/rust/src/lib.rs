//! The {{name}} mapper: {{name}} webhooks to Sluice ticket actions.
//!
//! Made by `host new-mapper`. Replace the starter events below with your
//! provider's, one fixture per rule in fixtures/, and run ./build.sh and
//! `host test-mapper {{name}}.wasm fixtures` until every case passes.

// The bindings of wit/mapper.wit: `Guest` to implement, the types the world
// uses (`Delivery`, `Mapped`, `MapError`, ...) here, every WIT type under
// `sluice::mapper::types`, the host imports under `sluice::mapper::host`.
wit_bindgen::generate!({ path: "wit", world: "mapper" });

use serde_json::Value;
use sluice::mapper::host::{LogLevel, log};
use sluice::mapper::types::{
    Action, AddComment, Assign, CreateTicket, Escalate, LinkPr, MapErrorKind, Priority, RaciRole,
    Resolve, Signoff, SignoffStatus, StatusChange, TicketRef,
};

struct Mapper;

export!(Mapper);

fn error(kind: MapErrorKind, message: impl Into<String>) -> MapError {
    MapError {
        kind,
        message: message.into(),
    }
}

/// The string at a JSON pointer (`/issue/title`), or a malformed-payload
/// error naming the field (`issue.title`).
fn text(body: &Value, pointer: &str) -> Result<String, MapError> {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            let field = pointer.trim_start_matches('/').replace('/', ".");
            error(
                MapErrorKind::MalformedPayload,
                format!("missing field `{field}`"),
            )
        })
}

/// The email `user_directory` gives a {{name}} user, or a bad-config error.
fn email(config: &Value, user: &str) -> Result<String, MapError> {
    config
        .pointer(&format!("/user_directory/{user}"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            error(
                MapErrorKind::BadConfig,
                format!("user `{user}` is not in user_directory"),
            )
        })
}

fn ticket(body: &Value) -> Result<TicketRef, MapError> {
    Ok(TicketRef {
        guid: None,
        external_id: Some(format!("{{name}}:{}", text(body, "/issue/id")?)),
        branch: None,
        from_action: None,
    })
}

impl Guest for Mapper {
    fn map_to_ticket_event(delivery: Delivery, config: String) -> Result<Mapped, MapError> {
        let body: Value = serde_json::from_slice(&delivery.body).map_err(|e| {
            error(
                MapErrorKind::MalformedPayload,
                format!("body is not JSON: {e}"),
            )
        })?;
        let config: Value = serde_json::from_str(&config).unwrap_or(Value::Null);
        let event = text(&body, "/event")?;
        if event == "ping" {
            return Ok(Mapped {
                event_type: "ping".into(),
                actions: Vec::new(),
            });
        }
        log(LogLevel::Debug, &event);
        let by = || email(&config, &text(&body, "/actor")?);
        let action = match event.as_str() {
            "issue.opened" => Action::Create(CreateTicket {
                subject: text(&body, "/issue/title")?,
                description: text(&body, "/issue/body").unwrap_or_default(),
                priority: match body.pointer("/issue/priority").and_then(Value::as_str) {
                    Some("critical") => Priority::Critical,
                    Some("high") => Priority::High,
                    Some("low") => Priority::Low,
                    _ => Priority::Medium,
                },
                ticket_type: "TASK".into(),
                requested_by: Some(by()?),
                external_id: Some(format!("{{name}}:{}", text(&body, "/issue/id")?)),
                labels: vec!["{{name}}".into()],
            }),
            "issue.moved" => Action::StatusChange(StatusChange {
                ticket: ticket(&body)?,
                status: text(&body, "/issue/status")?,
                changed_by: by()?,
            }),
            "issue.commented" => Action::Comment(AddComment {
                ticket: ticket(&body)?,
                comment: text(&body, "/comment/text")?,
                commented_by: by()?,
                external_comment_id: text(&body, "/comment/id").ok(),
            }),
            "issue.assigned" => Action::Assign(Assign {
                ticket: ticket(&body)?,
                assigned_to: email(&config, &text(&body, "/assignee")?)?,
                assigned_by: by()?,
            }),
            "review.submitted" => Action::Signoff(Signoff {
                ticket: ticket(&body)?,
                activity: "Development".into(),
                role: RaciRole::Accountable,
                email: by()?,
                signoff_status: if text(&body, "/review/state")? == "approved" {
                    SignoffStatus::Approved
                } else {
                    SignoffStatus::Rejected
                },
            }),
            // The branch names the ticket under the host's branch convention.
            "pull_request.opened" => Action::LinkPr(LinkPr {
                ticket: TicketRef {
                    guid: None,
                    external_id: None,
                    branch: Some(text(&body, "/pull_request/branch")?),
                    from_action: None,
                },
                pr_id: text(&body, "/pull_request/id")?,
                repo: text(&body, "/pull_request/repo")?,
                url: text(&body, "/pull_request/url").ok(),
            }),
            "issue.closed" => Action::Resolve(Resolve {
                ticket: ticket(&body)?,
                resolved_by: by()?,
            }),
            "issue.escalated" => Action::Escalate(Escalate {
                ticket: ticket(&body)?,
                escalated_by: by()?,
                reason: text(&body, "/reason").ok(),
            }),
            other => {
                return Err(error(
                    MapErrorKind::UnsupportedEvent,
                    format!("{{name}} event `{other}` is not mapped"),
                ));
            }
        };
        Ok(Mapped {
            event_type: event.replace('.', "_"),
            actions: vec![action],
        })
    }

    // Outbound sync (ticket changes to {{name}}) is not written yet: no requests.
    fn map_from_ticket_event(
        _change: TicketChange,
        _config: String,
    ) -> Result<Vec<OutboundRequest>, MapError> {
        Ok(Vec::new())
    }
}
