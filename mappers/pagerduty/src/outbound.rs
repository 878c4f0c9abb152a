//! Ticket changes → PagerDuty REST API calls on the linked incidents.

use mapper_kit::{
    Action, ChangeKind, MapError, OutboundRequest, Priority, TicketChange, bad_config, links_of,
    priority_named, request,
};
use serde_json::{Value, json};

use crate::Config;

pub(crate) fn map(change: &TicketChange, cfg: &Config) -> Result<Vec<OutboundRequest>, MapError> {
    let incidents: Vec<&str> = links_of(change, &change.provider).collect();
    let from_elsewhere = change.origin.as_deref() != Some(change.provider.as_str());
    match &change.what {
        ChangeKind::Applied(Action::Create(c)) if from_elsewhere && incidents.is_empty() => {
            // PagerDuty opens incidents on a service.
            let service = cfg.mappings.required_default("service_id")?;
            let urgency = match cfg.mappings.default("urgency") {
                Some(u) => u.to_owned(),
                None if matches!(c.priority, Priority::Critical | Priority::High) => "high".into(),
                None => "low".into(),
            };
            let guid = change.ticket.as_ref().map_or("", |t| t.guid.as_str());
            let details = format!("{}\n\nSluice ticket {guid}", c.description);
            let body = json!({"incident": {
                "type": "incident",
                "title": c.subject,
                "service": {"id": service, "type": "service_reference"},
                "urgency": urgency,
                "body": {"type": "incident_body", "details": details.trim_start()},
            }});
            Ok(vec![
                write(cfg, "POST", "/incidents".into(), &body)?
                    .mirror("/incident/id")
                    .build(),
            ])
        }
        ChangeKind::Applied(Action::Resolve(_)) => set_status(cfg, &incidents, "resolved"),
        ChangeKind::Applied(Action::StatusChange(s)) => moved(cfg, &incidents, &s.status),
        ChangeKind::Updated(fields) => {
            let mut out = Vec::new();
            for f in fields {
                match (f.field.as_str(), f.new_value.as_deref()) {
                    ("status", Some(status)) => out.extend(moved(cfg, &incidents, status)?),
                    ("priority", Some(p)) => {
                        out.extend(reprioritised(cfg, &incidents, priority_named(p))?)
                    }
                    _ => {}
                }
            }
            Ok(out)
        }
        ChangeKind::Applied(Action::Comment(c)) if from_elsewhere => incidents
            .iter()
            .map(|id| {
                let content = format!("{}\n\n— {}", c.comment, c.commented_by);
                Ok(write(
                    cfg,
                    "POST",
                    format!("/incidents/{id}/notes"),
                    &json!({"note": {"content": content}}),
                )?
                .echo("/note/id", "")
                .build())
            })
            .collect(),
        _ => Ok(Vec::new()),
    }
}

/// A status change: PagerDuty takes `acknowledged` and `resolved`; an
/// incident cannot be sent back to `triggered`, so that sends nothing.
fn moved(cfg: &Config, incidents: &[&str], status: &str) -> Result<Vec<OutboundRequest>, MapError> {
    match cfg.mappings.status_out(status)?.as_str() {
        s @ ("acknowledged" | "resolved") => set_status(cfg, incidents, s),
        _ => Ok(Vec::new()),
    }
}

fn set_status(
    cfg: &Config,
    incidents: &[&str],
    status: &str,
) -> Result<Vec<OutboundRequest>, MapError> {
    incidents
        .iter()
        .map(|id| {
            let body = json!({"incident": {"type": "incident_reference", "status": status}});
            Ok(write(cfg, "PUT", format!("/incidents/{id}"), &body)?.build())
        })
        .collect()
}

/// A new priority: the incident's urgency (`high` for critical and high,
/// else `low`), since a PagerDuty priority is set by an account-specific
/// id the ticket does not know.
fn reprioritised(
    cfg: &Config,
    incidents: &[&str],
    priority: Option<Priority>,
) -> Result<Vec<OutboundRequest>, MapError> {
    let Some(p) = priority else {
        return Ok(Vec::new());
    };
    let urgency = if matches!(p, Priority::Critical | Priority::High) {
        "high"
    } else {
        "low"
    };
    incidents
        .iter()
        .map(|id| {
            let body = json!({"incident": {"type": "incident_reference", "urgency": urgency}});
            Ok(write(cfg, "PUT", format!("/incidents/{id}"), &body)?.build())
        })
        .collect()
}

/// A write: PagerDuty wants the acting user's e-mail in `From`.
fn write(
    cfg: &Config,
    method: &str,
    path: String,
    body: &Value,
) -> Result<mapper_kit::RequestBuilder, MapError> {
    let from = cfg.from_email.as_deref().ok_or_else(|| {
        bad_config("mapper_config.from_email is not set: PagerDuty writes need a user's e-mail in the `From` header")
    })?;
    Ok(request(method, path)
        .json(body)
        .header("from", from)
        .header("accept", "application/vnd.pagerduty+json;version=2"))
}
