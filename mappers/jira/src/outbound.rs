//! Ticket changes → Jira REST API v3 calls on the linked issues.

use mapper_kit::{
    Action, ChangeKind, FieldChange, MapError, OutboundRequest, Ticket, TicketChange, bad_config,
    get_json, identity_of, links_of, person_by_email, priority_named, query_escape, request,
};
use serde_json::{Map, Value, json};

use crate::{Config, PROVIDER, adf, issue_path};

pub(crate) fn map(change: &TicketChange, cfg: &Config) -> Result<Vec<OutboundRequest>, MapError> {
    let issues: Vec<&str> = links_of(change, &change.provider).collect();
    let from_elsewhere = change.origin.as_deref() != Some(change.provider.as_str());
    match (&change.what, &change.ticket) {
        (ChangeKind::Applied(Action::Create(_)), Some(ticket))
            if from_elsewhere && issues.is_empty() =>
        {
            created(cfg, ticket)
        }
        (ChangeKind::Applied(Action::StatusChange(s)), _) => {
            transitions(&issues, &cfg.mappings.status_out(&s.status)?)
        }
        (ChangeKind::Applied(Action::Resolve(_)), _) => {
            transitions(&issues, &cfg.mappings.status_out("RESOLVED")?)
        }
        // Jira has no escalation of its own: only a mapped status says it.
        (ChangeKind::Applied(Action::Escalate(_)), _)
            if cfg.mappings.status.contains_key("ESCALATED") =>
        {
            transitions(&issues, &cfg.mappings.status_out("ESCALATED")?)
        }
        (ChangeKind::Applied(Action::Comment(c)), _) if from_elsewhere => Ok(issues
            .iter()
            .map(|id| {
                let text = format!("{}\n\n— {}", c.comment, c.commented_by);
                request("POST", format!("{}/comment", issue_path(id)))
                    .json(&json!({"body": adf::doc(&text)}))
                    .echo("/id", "")
                    .build()
            })
            .collect()),
        (ChangeKind::Applied(Action::Assign(a)), _) => assigned(&issues, &a.assigned_to),
        (ChangeKind::Updated(changes), _) => updated(cfg, &issues, changes),
        _ => Ok(Vec::new()),
    }
}

/// A new issue mirroring the ticket.
fn created(cfg: &Config, ticket: &Ticket) -> Result<Vec<OutboundRequest>, MapError> {
    // Jira creates issues in a project.
    let project = cfg.mappings.required_default("project")?;
    let issue_type = cfg.mappings.default("issue_type").unwrap_or("Task");
    let mut fields = Map::new();
    fields.insert("project".into(), json!({"key": project}));
    fields.insert("issuetype".into(), json!({"name": issue_type}));
    fields.insert("summary".into(), json!(ticket.subject));
    fields.insert("description".into(), adf::doc(&ticket.description));
    fields.insert(
        "priority".into(),
        json!({"name": cfg.mappings.priority_out(ticket.priority)?}),
    );
    for f in &ticket.fields {
        if let Some((field, value)) = cfg.mappings.field_out(&f.name, &f.value)? {
            fields.insert(field, json!(value));
        }
    }
    Ok(vec![
        request("POST", "/rest/api/3/issue")
            .json(&json!({"fields": fields}))
            .mirror("/id")
            .build(),
    ])
}

/// Each issue through the transition that leads to `target`: Jira moves
/// issues only along its workflow's transitions, so the ones the issue
/// offers now are read and the one whose target status is `target` taken.
fn transitions(issues: &[&str], target: &str) -> Result<Vec<OutboundRequest>, MapError> {
    let mut out = Vec::new();
    for id in issues {
        let path = format!("{}/transitions", issue_path(id));
        let offered = get_json(&path)?;
        let list = offered["transitions"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        let found = list.iter().find(|t| {
            t.pointer("/to/name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(target))
        });
        if let Some(t) = found {
            let tid = t.get("id").cloned().unwrap_or(Value::Null);
            out.push(
                request("POST", path)
                    .json(&json!({"transition": {"id": tid}}))
                    .build(),
            );
            continue;
        }
        // No transition leads there: fine when the issue is there already
        // (someone moved it in Jira too), else the workflow needs one.
        let now = get_json(&format!("{}?fields=status", issue_path(id)))?;
        let current = now.pointer("/fields/status/name").and_then(Value::as_str);
        if current.is_some_and(|c| c.eq_ignore_ascii_case(target)) {
            continue;
        }
        let names: Vec<&str> = list
            .iter()
            .filter_map(|t| t.pointer("/to/name").and_then(Value::as_str))
            .collect();
        return Err(bad_config(format!(
            "Jira issue {id} offers no transition to `{target}` (from `{}`; it offers {}): \
             check mappings.status against the project's workflow",
            current.unwrap_or("?"),
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        )));
    }
    Ok(out)
}

/// Each issue assigned to the Jira account of the person with `email`.
fn assigned(issues: &[&str], email: &str) -> Result<Vec<OutboundRequest>, MapError> {
    if issues.is_empty() {
        return Ok(Vec::new());
    }
    let account = match person_by_email(email)
        .as_ref()
        .and_then(|p| identity_of(p, PROVIDER))
    {
        Some(id) => id.to_owned(),
        None => search_account(email)?,
    };
    Ok(issues
        .iter()
        .map(|id| {
            request("PUT", format!("{}/assignee", issue_path(id)))
                .json(&json!({"accountId": account}))
                .build()
        })
        .collect())
}

/// The account Jira's user search finds by `email` (when the user lets
/// their e-mail be seen), for someone the people directory has no `jira`
/// identity of.
fn search_account(email: &str) -> Result<String, MapError> {
    let found = get_json(&format!(
        "/rest/api/3/user/search?query={}",
        query_escape(email)
    ))?;
    found
        .as_array()
        .and_then(|users| {
            users.iter().find(|u| {
                u["emailAddress"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
        })
        .and_then(|u| u["accountId"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            bad_config(format!(
                "no Jira accountId for `{email}`: add a `{PROVIDER}` identity to that person \
                 in the people directory"
            ))
        })
}

/// Field edits (through the API, or a provider's `update`/`set-fields`):
/// the plain fields in one `PUT` of each issue, a status through its
/// transition, an assignee by account.
fn updated(
    cfg: &Config,
    issues: &[&str],
    changes: &[FieldChange],
) -> Result<Vec<OutboundRequest>, MapError> {
    let mut fields = Map::new();
    let mut out = Vec::new();
    for c in changes {
        let new = c.new_value.as_deref();
        match c.field.as_str() {
            "subject" => {
                fields.insert("summary".into(), json!(new.unwrap_or("")));
            }
            "description" => {
                fields.insert("description".into(), adf::doc(new.unwrap_or("")));
            }
            "priority" => {
                if let Some(p) = new.and_then(priority_named) {
                    fields.insert(
                        "priority".into(),
                        json!({"name": cfg.mappings.priority_out(p)?}),
                    );
                }
            }
            "labels" => {
                // Labels come as a JSON list; Jira's cannot hold spaces.
                let labels: Vec<String> = new
                    .and_then(|l| serde_json::from_str::<Vec<String>>(l).ok())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|l| l.replace(' ', "_"))
                    .collect();
                fields.insert("labels".into(), json!(labels));
            }
            "status" => {
                if let Some(s) = new {
                    out.extend(transitions(issues, &cfg.mappings.status_out(s)?)?);
                }
            }
            "assignee" => {
                if let Some(a) = new {
                    out.extend(assigned(issues, a)?);
                }
            }
            other => {
                if let Some(name) = other.strip_prefix("fields.")
                    && let Some((field, value)) = cfg.mappings.field_out(name, new.unwrap_or(""))?
                {
                    // An emptied ticket field clears the Jira field.
                    let value = if value.is_empty() {
                        Value::Null
                    } else {
                        json!(value)
                    };
                    fields.insert(field, value);
                }
            }
        }
    }
    if !fields.is_empty() {
        let body = json!({"fields": fields});
        for id in issues {
            out.insert(0, request("PUT", issue_path(id)).json(&body).build());
        }
    }
    Ok(out)
}
