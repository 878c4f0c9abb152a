//! Ticket changes → ServiceNow Table API calls on the linked incidents.

use mapper_kit::{
    Action, ChangeKind, FieldChange, MapError, OutboundRequest, Ticket, TicketChange, bad_config,
    get_json, identity_of, links_of, person_by_email, priority_named, query_escape, request,
};
use serde_json::{Map, Value, json};

use crate::{Config, OWN_DEFAULTS, PROVIDER, TABLE};

/// Choice fields are written by their display values, as `mappings` name
/// them; the answer is the record without reference links.
const DISPLAY: &str = "sysparm_input_display_value=true&sysparm_exclude_reference_link=true";

pub(crate) fn map(change: &TicketChange, cfg: &Config) -> Result<Vec<OutboundRequest>, MapError> {
    let records: Vec<&str> = links_of(change, &change.provider).collect();
    let from_elsewhere = change.origin.as_deref() != Some(change.provider.as_str());
    let mut fields = Map::new();
    match (&change.what, &change.ticket) {
        (ChangeKind::Applied(Action::Create(_)), Some(ticket))
            if from_elsewhere && records.is_empty() =>
        {
            return created(cfg, ticket);
        }
        (ChangeKind::Applied(Action::StatusChange(s)), _) => {
            state(cfg, &mut fields, &s.status, None)?
        }
        (ChangeKind::Applied(Action::Resolve(r)), _) => {
            state(cfg, &mut fields, "RESOLVED", Some(&r.resolved_by))?
        }
        (ChangeKind::Applied(Action::Escalate(_)), _)
            if cfg.mappings.status.contains_key("ESCALATED") =>
        {
            state(cfg, &mut fields, "ESCALATED", None)?
        }
        (ChangeKind::Applied(Action::Comment(c)), _) if from_elsewhere => {
            fields.insert(
                "work_notes".into(),
                json!(format!("{}\n\n— {}", c.comment, c.commented_by)),
            );
        }
        (ChangeKind::Applied(Action::Assign(a)), _) => {
            fields.insert("assigned_to".into(), json!(user_sys_id(&a.assigned_to)?));
        }
        (ChangeKind::Updated(changes), _) => updated(cfg, &mut fields, changes)?,
        _ => {}
    }
    if fields.is_empty() {
        return Ok(Vec::new());
    }
    let body = Value::Object(fields);
    Ok(records
        .iter()
        .map(|id| {
            request("PATCH", format!("{TABLE}/{id}?{DISPLAY}"))
                .json(&body)
                .build()
        })
        .collect())
}

/// A new incident mirroring the ticket.
fn created(cfg: &Config, ticket: &Ticket) -> Result<Vec<OutboundRequest>, MapError> {
    let mut fields = Map::new();
    for (name, value) in &cfg.mappings.defaults {
        if !OWN_DEFAULTS.contains(&name.as_str()) {
            fields.insert(name.clone(), json!(value));
        }
    }
    fields.insert("short_description".into(), json!(ticket.subject));
    fields.insert("description".into(), json!(ticket.description));
    fields.insert(
        cfg.priority_field().to_owned(),
        json!(cfg.mappings.priority_out(ticket.priority)?),
    );
    for f in &ticket.fields {
        if let Some((field, value)) = cfg.mappings.field_out(&f.name, &f.value)? {
            fields.insert(field, json!(value));
        }
    }
    Ok(vec![
        request("POST", format!("{TABLE}?{DISPLAY}"))
            .json(&Value::Object(fields))
            .mirror("/result/sys_id")
            .build(),
    ])
}

/// `state` for a workflow status; resolving also sets the close code and
/// notes ServiceNow requires of a resolved incident.
fn state(
    cfg: &Config,
    fields: &mut Map<String, Value>,
    status: &str,
    by: Option<&str>,
) -> Result<(), MapError> {
    fields.insert("state".into(), json!(cfg.mappings.status_out(status)?));
    if matches!(status, "RESOLVED" | "CLOSED") {
        let code = cfg
            .mappings
            .default("close_code")
            .unwrap_or("Solution provided");
        fields.insert("close_code".into(), json!(code));
        let notes = match by {
            Some(who) => format!("Resolved in Sluice by {who}"),
            None => "Resolved in Sluice".to_owned(),
        };
        fields.insert("close_notes".into(), json!(notes));
    }
    Ok(())
}

/// The sys_id of the ServiceNow user the person with `email` is: their
/// `servicenow` identity in the people directory, else the user table's
/// record with that e-mail.
fn user_sys_id(email: &str) -> Result<String, MapError> {
    if let Some(id) = person_by_email(email)
        .as_ref()
        .and_then(|p| identity_of(p, PROVIDER))
    {
        return Ok(id.to_owned());
    }
    let path = format!(
        "/api/now/table/sys_user?sysparm_query=email%3D{}&sysparm_fields=sys_id&sysparm_limit=1",
        query_escape(email)
    );
    get_json(&path)?
        .pointer("/result/0/sys_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            bad_config(format!(
                "no ServiceNow user for `{email}`: add a `{PROVIDER}` identity (the user's \
                 sys_id) to that person in the people directory"
            ))
        })
}

/// Field edits (through the API, or a provider's `update`/`set-fields`).
fn updated(
    cfg: &Config,
    fields: &mut Map<String, Value>,
    changes: &[FieldChange],
) -> Result<(), MapError> {
    for c in changes {
        let new = c.new_value.as_deref();
        match c.field.as_str() {
            "subject" => {
                fields.insert("short_description".into(), json!(new.unwrap_or("")));
            }
            "description" => {
                fields.insert("description".into(), json!(new.unwrap_or("")));
            }
            "priority" => {
                if let Some(p) = new.and_then(priority_named) {
                    fields.insert(
                        cfg.priority_field().to_owned(),
                        json!(cfg.mappings.priority_out(p)?),
                    );
                }
            }
            "status" => {
                if let Some(s) = new {
                    state(cfg, fields, s, None)?;
                }
            }
            "assignee" => {
                if let Some(a) = new {
                    fields.insert("assigned_to".into(), json!(user_sys_id(a)?));
                }
            }
            other => {
                if let Some(name) = other.strip_prefix("fields.")
                    && let Some((field, value)) = cfg.mappings.field_out(name, new.unwrap_or(""))?
                {
                    fields.insert(field, json!(value));
                }
            }
        }
    }
    Ok(())
}
