//! PagerDuty webhooks (v3) and reconcile ticks → ticket actions.

use mapper_kit::{
    Action, Assign, CreateTicket, Delivery, Escalate, Fields, MapError, MapResult, Priority,
    RECONCILE_EVENT, RECONCILE_MISSING_EVENT, Resolve, StatusChange, TicketRef, UpdateTicket,
    UserDirectory, comment, get_json_or_missing, ignored, json_body, mapped, reconcile_target,
    ticket_ref, unsupported,
};
use serde_json::Value;

use crate::{Config, PROVIDER, email_of};

/// Who did it when PagerDuty names no user (an integration, an automatic
/// escalation).
const AUTOMATION: &str = "pagerduty";

pub(crate) fn map(delivery: &Delivery, cfg: &Config, raw: &Value) -> MapResult {
    let users = UserDirectory::from_config(raw, PROVIDER)?;
    if let Some(id) = reconcile_target(delivery) {
        return reconcile(cfg, &users, &id);
    }
    let body = json_body(delivery)?;
    let event = body.req("/event")?;
    let kind = event.str_at("/event_type")?;
    if kind == "pagey.ping" {
        return ignored("ping");
    }
    let name = kind.strip_prefix("incident.").unwrap_or(kind).to_owned();
    let event_type = format!("incident_{name}");
    let agent = match event.pointer("/agent") {
        Some(a) if a.is_object() => Some(a),
        _ => None,
    };
    let agent_id = agent.map(|a| a.str_at("/id")).transpose()?;
    // Our own API user's writes come back as webhooks: the ticket already
    // has them.
    if agent_id.is_some() && agent_id == cfg.bot_user_id.as_deref() {
        return ignored(&event_type);
    }
    let ctx = Ctx {
        cfg,
        users: &users,
        data: event.req("/data")?,
        agent,
    };
    let actions = match name.as_str() {
        "triggered" => vec![ctx.create()?],
        "acknowledged" => {
            let by = ctx.actor()?;
            let ticket = ctx.incident()?;
            vec![
                status_change(&ticket, &cfg.mappings.status_in("acknowledged")?, &by),
                Action::Assign(Assign {
                    ticket,
                    assigned_to: by.clone(),
                    assigned_by: by,
                }),
            ]
        }
        "unacknowledged" | "reopened" => vec![status_change(
            &ctx.incident()?,
            &cfg.mappings.status_in("triggered")?,
            &ctx.actor()?,
        )],
        "escalated" => vec![Action::Escalate(Escalate {
            ticket: ctx.incident()?,
            escalated_by: ctx.actor()?,
            reason: ctx
                .data
                .opt_str("/escalation_policy/summary")?
                .map(|p| format!("escalation policy {p}")),
        })],
        "resolved" => vec![Action::Resolve(Resolve {
            ticket: ctx.incident()?,
            resolved_by: ctx.actor()?,
        })],
        "annotated" => vec![comment(
            &ticket_ref(Some(ctx.data.id_at("/incident/id")?), None),
            ctx.data.str_at("/content")?.to_owned(),
            ctx.actor()?,
            Some(ctx.data.id_at("/id")?),
        )],
        "reassigned" | "delegated" => match ctx.assignee()? {
            Some(to) => vec![Action::Assign(Assign {
                ticket: ctx.incident()?,
                assigned_to: to,
                assigned_by: ctx.actor()?,
            })],
            // Delegated to a policy nobody has picked up yet.
            None => Vec::new(),
        },
        "priority_updated" => match ctx.priority()? {
            Some(p) => vec![Action::Update(UpdateTicket {
                ticket: ctx.incident()?,
                subject: None,
                description: None,
                priority: Some(p),
                ticket_type: None,
                changed_by: ctx.actor()?,
            })],
            // A cleared priority: the ticket keeps its own.
            None => Vec::new(),
        },
        _ => return Err(unsupported(format!("PagerDuty event type `{kind}`"))),
    };
    mapped(&event_type, actions)
}

fn status_change(ticket: &TicketRef, status: &str, by: &str) -> Action {
    Action::StatusChange(StatusChange {
        ticket: ticket.clone(),
        status: status.to_owned(),
        changed_by: by.to_owned(),
    })
}

struct Ctx<'a> {
    cfg: &'a Config,
    users: &'a UserDirectory<'a>,
    /// An incident (or, for `annotated`, a note).
    data: &'a Value,
    agent: Option<&'a Value>,
}

impl Ctx<'_> {
    fn incident(&self) -> Result<TicketRef, MapError> {
        Ok(ticket_ref(Some(self.data.id_at("/id")?), None))
    }

    /// The e-mail of the user who acted, or `pagerduty` for automation.
    fn actor(&self) -> Result<String, MapError> {
        match self.agent {
            Some(a) if a.opt_str("/type")? != Some("service_reference") => {
                let id = a.str_at("/id")?;
                email_of(self.users, id, &who(a, id))
            }
            _ => Ok(AUTOMATION.to_owned()),
        }
    }

    /// The e-mail of the incident's first assignee, if it has one: the
    /// webhook's `assignees`, the REST API's `assignments[].assignee`.
    fn assignee(&self) -> Result<Option<String>, MapError> {
        let first = match self.data.list("/assignees")?.first() {
            Some(a) => Some(a),
            None => self
                .data
                .list("/assignments")?
                .first()
                .map(|a| a.req("/assignee"))
                .transpose()?,
        };
        first.map_or(Ok(None), |a| {
            let id = a.str_at("/id")?;
            email_of(self.users, id, &who(a, id)).map(Some)
        })
    }

    /// The incident's priority: its PagerDuty priority mapped back, else
    /// its urgency (`high` → HIGH, `low` → LOW); `None` with neither.
    fn priority(&self) -> Result<Option<Priority>, MapError> {
        incident_priority(self.cfg, self.data)
    }

    fn create(&self) -> Result<Action, MapError> {
        let service = self.data.opt_str("/service/summary")?;
        let url = self.data.opt_str("/html_url")?;
        let description = match (service, url) {
            (Some(s), Some(u)) => format!("{s}: {u}"),
            (Some(s), None) => s.to_owned(),
            (None, Some(u)) => u.to_owned(),
            (None, None) => String::new(),
        };
        Ok(Action::Create(CreateTicket {
            subject: self.data.str_at("/title")?.to_owned(),
            description,
            priority: self.priority()?.unwrap_or(Priority::Medium),
            ticket_type: "INCIDENT".into(),
            requested_by: None,
            external_id: Some(self.data.id_at("/id")?),
            labels: vec!["pagerduty".into()],
        }))
    }
}

fn incident_priority(cfg: &Config, incident: &Value) -> Result<Option<Priority>, MapError> {
    if let Some(p) = incident.opt_str("/priority/summary")? {
        return cfg.mappings.priority_in(p).map(Some);
    }
    Ok(match incident.opt_str("/urgency")? {
        Some("high") => Some(Priority::High),
        Some("low") => Some(Priority::Low),
        _ => None,
    })
}

/// A user reference's name for messages.
fn who(user: &Value, id: &str) -> String {
    match user.pointer("/summary").and_then(Value::as_str) {
        Some(name) => format!("`{id}` ({name})"),
        None => format!("`{id}`"),
    }
}

/// The incident as PagerDuty has it now: its status, title, priority and
/// assignee, for the host to compare with what it last synced.
fn reconcile(cfg: &Config, users: &UserDirectory, id: &str) -> MapResult {
    let Some(answer) = get_json_or_missing(&format!("/incidents/{id}"))? else {
        return ignored(RECONCILE_MISSING_EVENT);
    };
    let incident = answer.req("/incident")?;
    let ticket = ticket_ref(Some(id.to_owned()), None);
    let mut actions = vec![status_change(
        &ticket,
        &cfg.mappings.status_in(incident.str_at("/status")?)?,
        AUTOMATION,
    )];
    actions.push(Action::Update(UpdateTicket {
        ticket: ticket.clone(),
        subject: Some(incident.str_at("/title")?.to_owned()),
        description: None,
        priority: incident_priority(cfg, incident)?,
        ticket_type: None,
        changed_by: AUTOMATION.into(),
    }));
    let ctx = Ctx {
        cfg,
        users,
        data: incident,
        agent: None,
    };
    if let Some(to) = ctx.assignee()? {
        actions.push(Action::Assign(Assign {
            ticket,
            assigned_to: to,
            assigned_by: AUTOMATION.into(),
        }));
    }
    mapped(RECONCILE_EVENT, actions)
}
