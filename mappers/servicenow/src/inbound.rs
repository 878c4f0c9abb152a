//! The business rule's deliveries and reconcile ticks → ticket actions.

use mapper_kit::{
    Action, Assign, CreateTicket, Delivery, Escalate, Field, Fields, MapError, MapResult, Priority,
    RECONCILE_EVENT, RECONCILE_MISSING_EVENT, Resolve, SetFields, StatusChange, TicketRef,
    UpdateTicket, UserDirectory, comment, created_by, get_json_or_missing, ignored, json_body,
    mapped, query_escape, reconcile_target, ticket_ref, unsupported,
};
use serde_json::Value;

use crate::{Config, PROVIDER, TABLE};

/// Who changed the ticket when ServiceNow names no user (a reconcile).
const AUTOMATION: &str = "servicenow";

pub(crate) fn map(delivery: &Delivery, cfg: &Config, raw: &Value) -> MapResult {
    let users = UserDirectory::from_config(raw, PROVIDER)?;
    if let Some(id) = reconcile_target(delivery) {
        return reconcile(cfg, &id);
    }
    let body = json_body(delivery)?;
    let event = body.str_at("/event")?;
    let table = body.opt_str("/table")?.unwrap_or("incident");
    if table != "incident" {
        return Err(unsupported(format!("ServiceNow table `{table}`")));
    }
    let by_us = body.opt_str("/updated_by")?.is_some()
        && body.opt_str("/updated_by")? == cfg.integration_user.as_deref();
    let ctx = Ctx {
        cfg,
        users: &users,
        body: &body,
        record: body.req("/record")?,
    };
    match event {
        "insert" if by_us => ignored("incident_created"),
        "insert" => ctx.inserted(),
        "update" if by_us => ignored("incident_updated"),
        "update" => ctx.updated(),
        other => Err(unsupported(format!(
            "ServiceNow business rule event `{other}`"
        ))),
    }
}

struct Ctx<'a> {
    cfg: &'a Config,
    users: &'a UserDirectory<'a>,
    body: &'a Value,
    record: &'a Value,
}

impl Ctx<'_> {
    fn incident(&self) -> Result<TicketRef, MapError> {
        Ok(ticket_ref(
            Some(self.body.str_at("/sys_id")?.to_owned()),
            None,
        ))
    }

    /// The e-mail of whoever made the change: the rule sends it, else the
    /// directories by user_name.
    fn actor(&self) -> Result<String, MapError> {
        if let Some(email) = self
            .body
            .opt_str("/user_email")?
            .filter(|e| e.contains('@'))
        {
            return Ok(email.to_owned());
        }
        let user = self.body.str_at("/updated_by")?;
        self.users.email(&[user], &format!("`{user}`"))
    }

    fn priority(&self) -> Result<Option<Priority>, MapError> {
        record_priority(self.cfg, self.record)
    }

    fn inserted(&self) -> MapResult {
        let number = self.body.opt_str("/number")?;
        let mut actions = vec![Action::Create(CreateTicket {
            subject: self.record.str_at("/short_description")?.to_owned(),
            description: self
                .record
                .opt_str("/description")?
                .unwrap_or("")
                .to_owned(),
            priority: self.priority()?.unwrap_or(Priority::Medium),
            ticket_type: "INCIDENT".into(),
            requested_by: self
                .record
                .opt_str("/caller_email")?
                .filter(|e| e.contains('@'))
                .map(str::to_owned),
            external_id: Some(self.body.str_at("/sys_id")?.to_owned()),
            labels: number.map_or(Vec::new(), |n| vec![n.to_owned()]),
        })];
        let custom = custom_fields(self.cfg, self.record)?;
        if !custom.is_empty() {
            actions.push(Action::SetFields(SetFields {
                ticket: created_by(0),
                fields: custom,
                changed_by: self.actor()?,
            }));
        }
        if let Some(to) = assignee(self.record)? {
            actions.push(Action::Assign(Assign {
                ticket: created_by(0),
                assigned_to: to,
                assigned_by: self.actor()?,
            }));
        }
        mapped("incident_created", actions)
    }

    fn updated(&self) -> MapResult {
        let ticket = self.incident()?;
        let by = self.actor()?;
        let mut event = "incident_updated";
        let mut actions = Vec::new();
        let mut update = UpdateTicket {
            ticket: ticket.clone(),
            subject: None,
            description: None,
            priority: None,
            ticket_type: None,
            changed_by: by.clone(),
        };
        let mut custom = Vec::new();
        let priority_field = self.cfg.priority_field();
        for changed in self.body.list("/changed")? {
            let Some(field) = changed.as_str() else {
                continue;
            };
            match field {
                "state" => {
                    let state = self.record.str_at("/state")?;
                    actions.push(match self.cfg.mappings.status_in(state)?.as_str() {
                        "RESOLVED" => {
                            event = "incident_resolved";
                            Action::Resolve(Resolve {
                                ticket: ticket.clone(),
                                resolved_by: by.clone(),
                            })
                        }
                        "ESCALATED" => {
                            event = "incident_escalated";
                            Action::Escalate(Escalate {
                                ticket: ticket.clone(),
                                escalated_by: by.clone(),
                                reason: Some(format!("ServiceNow state {state}")),
                            })
                        }
                        other => Action::StatusChange(StatusChange {
                            ticket: ticket.clone(),
                            status: other.to_owned(),
                            changed_by: by.clone(),
                        }),
                    });
                }
                "short_description" => {
                    update.subject = Some(self.record.str_at("/short_description")?.to_owned());
                }
                "description" => {
                    update.description = Some(
                        self.record
                            .opt_str("/description")?
                            .unwrap_or("")
                            .to_owned(),
                    );
                }
                "assigned_to" => {
                    // Unassigning leaves the ticket's assignee as it is.
                    if let Some(to) = assignee(self.record)? {
                        actions.push(Action::Assign(Assign {
                            ticket: ticket.clone(),
                            assigned_to: to,
                            assigned_by: by.clone(),
                        }));
                    }
                }
                f if f == priority_field => update.priority = self.priority()?,
                other => {
                    let value = self.record.opt_str(&format!("/{other}"))?.unwrap_or("");
                    if let Some((name, value)) = self.cfg.mappings.field_in(other, value)? {
                        custom.push(Field { name, value });
                    }
                }
            }
        }
        if update.subject.is_some() || update.description.is_some() || update.priority.is_some() {
            actions.push(Action::Update(update));
        }
        if !custom.is_empty() {
            actions.push(Action::SetFields(SetFields {
                ticket: ticket.clone(),
                fields: custom,
                changed_by: by.clone(),
            }));
        }
        for key in ["/work_note", "/comment"] {
            if let Some(text) = self.body.opt_str(key)?.filter(|t| !t.trim().is_empty()) {
                if actions.is_empty() {
                    event = "work_note_added";
                }
                actions.push(comment(&ticket, text.to_owned(), by.clone(), None));
            }
        }
        mapped(event, actions)
    }
}

/// The record's priority (or the field `priority_field` names) mapped
/// back; `None` when empty.
fn record_priority(cfg: &Config, record: &Value) -> Result<Option<Priority>, MapError> {
    match record.opt_str(&format!("/{}", cfg.priority_field()))? {
        Some(p) if !p.is_empty() => cfg.mappings.priority_in(p).map(Some),
        _ => Ok(None),
    }
}

/// The assignee's e-mail, when the record has one.
fn assignee(record: &Value) -> Result<Option<String>, MapError> {
    let email = match record.opt_str("/assigned_to_email")? {
        Some(e) => Some(e),
        // The Table API's dot-walked name for the same value.
        None => record.opt_str("/assigned_to.email")?,
    };
    Ok(email.filter(|e| e.contains('@')).map(str::to_owned))
}

/// The mapped custom fields a record carries, as ticket fields.
fn custom_fields(cfg: &Config, record: &Value) -> Result<Vec<Field>, MapError> {
    let mut out = Vec::new();
    for m in cfg.mappings.fields.values() {
        let Some(value) = record.get(&m.field).and_then(Value::as_str) else {
            continue;
        };
        if let Some((name, value)) = cfg.mappings.field_in(&m.field, value)? {
            out.push(Field { name, value });
        }
    }
    Ok(out)
}

/// The incident as ServiceNow has it now (display values), for the host
/// to compare with what it last synced.
fn reconcile(cfg: &Config, sys_id: &str) -> MapResult {
    let mut wanted = vec![
        "sys_id",
        "state",
        "short_description",
        "description",
        cfg.priority_field(),
        "assigned_to.email",
    ];
    wanted.extend(cfg.mappings.fields.values().map(|m| m.field.as_str()));
    let wanted: Vec<String> = wanted.into_iter().map(query_escape).collect();
    let path = format!(
        "{TABLE}/{sys_id}?sysparm_display_value=true&sysparm_exclude_reference_link=true&sysparm_fields={}",
        wanted.join(",")
    );
    let Some(answer) = get_json_or_missing(&path)? else {
        return ignored(RECONCILE_MISSING_EVENT);
    };
    let record = answer.req("/result")?;
    let ticket = ticket_ref(Some(sys_id.to_owned()), None);
    let mut actions = vec![Action::StatusChange(StatusChange {
        ticket: ticket.clone(),
        status: cfg.mappings.status_in(record.str_at("/state")?)?,
        changed_by: AUTOMATION.into(),
    })];
    actions.push(Action::Update(UpdateTicket {
        ticket: ticket.clone(),
        subject: Some(record.str_at("/short_description")?.to_owned()),
        description: Some(record.opt_str("/description")?.unwrap_or("").to_owned()),
        priority: record_priority(cfg, record)?,
        ticket_type: None,
        changed_by: AUTOMATION.into(),
    }));
    if let Some(to) = assignee(record)? {
        actions.push(Action::Assign(Assign {
            ticket: ticket.clone(),
            assigned_to: to,
            assigned_by: AUTOMATION.into(),
        }));
    }
    let custom = custom_fields(cfg, record)?;
    if !custom.is_empty() {
        actions.push(Action::SetFields(SetFields {
            ticket,
            fields: custom,
            changed_by: AUTOMATION.into(),
        }));
    }
    mapped(RECONCILE_EVENT, actions)
}
