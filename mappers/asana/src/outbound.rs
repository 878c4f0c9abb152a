//! Ticket changes → Asana API calls on the linked tasks.

use mapper_kit::{Action, ChangeKind, MapError, OutboundRequest, TicketChange, links_of, request};
use serde_json::json;

use crate::Config;

pub(crate) fn map(change: &TicketChange, cfg: &Config) -> Result<Vec<OutboundRequest>, MapError> {
    let tasks: Vec<&str> = links_of(change, &change.provider).collect();
    let from_elsewhere = change.origin.as_deref() != Some(change.provider.as_str());
    let out = match &change.what {
        ChangeKind::Applied(Action::Resolve(_)) => tasks
            .iter()
            .map(|task| {
                request("PUT", format!("/tasks/{task}"))
                    .json(&json!({"data": {"completed": true}}))
                    .build()
            })
            .collect(),
        ChangeKind::Applied(Action::StatusChange(s)) => moved(cfg, &tasks, &s.status),
        // A status set through the ticket API moves the task the same way.
        ChangeKind::Updated(fields) => fields
            .iter()
            .filter(|f| f.field == "status")
            .filter_map(|f| f.new_value.as_deref())
            .flat_map(|status| moved(cfg, &tasks, status))
            .collect(),
        ChangeKind::Applied(Action::Comment(c)) if from_elsewhere => tasks
            .iter()
            .map(|task| {
                let text = format!("{}\n\n— {}", c.comment, c.commented_by);
                request("POST", format!("/tasks/{task}/stories"))
                    .json(&json!({"data": {"text": text}}))
                    .echo("/data/gid", "")
                    .build()
            })
            .collect(),
        ChangeKind::Applied(Action::Create(c)) if from_elsewhere && tasks.is_empty() => {
            match (&cfg.project_gid, &change.ticket) {
                (Some(project), Some(ticket)) => vec![
                    request("POST", "/tasks")
                        .json(&json!({"data": {
                            "name": c.subject,
                            "notes": format!("{}\n\nSluice ticket {}", c.description, ticket.guid),
                            "projects": [project],
                        }}))
                        .mirror("/data/gid")
                        .build(),
                ],
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    Ok(out)
}

/// Each task into the section configured for `status`, if one is.
fn moved(cfg: &Config, tasks: &[&str], status: &str) -> Vec<OutboundRequest> {
    let Some(section) = cfg.section_for(status) else {
        return Vec::new();
    };
    tasks
        .iter()
        .map(|task| {
            request("POST", format!("/sections/{section}/addTask"))
                .json(&json!({"data": {"task": task}}))
                .build()
        })
        .collect()
}
