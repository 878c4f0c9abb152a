//! Jira Cloud / Jira Service Management mapping rules, both ways (admin
//! webhooks in, REST API v3 out).
//!
//! Inbound (`webhookEvent`): `jira:issue_created` creates a ticket linked
//! to the issue id (never the key: keys change when an issue moves), with
//! its mapped custom fields; `jira:issue_updated` reads the `changelog`:
//! a status (mapped back through `mappings.status`; one mapped to RESOLVED
//! resolves the ticket, one mapped to ESCALATED escalates it, any other is
//! a status change), the priority, the summary and description (`update`),
//! the assignee (`assign`) and mapped custom fields (`set-fields`);
//! `comment_created` comments, with the comment id for echo dropping. The
//! `jira:issue_updated` Jira also raises for a comment is ignored (the
//! comment event carries it). Whatever our own integration user
//! (`bot_account_id`) did is ignored. The host's reconcile tick (`TICK
//! /tick/reconcile/{issue id}`) reads `GET /rest/api/3/issue/{id}` and
//! answers its current values. Users are account ids: the people directory
//! (identity `jira`), then `user_directory`, then the payload's
//! `emailAddress` when Jira shares it.
//!
//! Outbound: a ticket created elsewhere becomes an issue in
//! `mappings.defaults.project` of type `mappings.defaults.issue_type`
//! (default `Task`), its description in Atlassian Document Format, its id
//! captured as the mirror; a status change (a resolve, an escalation whose
//! status is mapped) transitions the issue: the transitions it offers are
//! read, and the one leading to the mapped status taken; a comment from
//! elsewhere is posted (its id captured as an echo); an assignment sets
//! the assignee by the accountId of the person's `jira` identity in the
//! people directory; edits of subject, description, priority, labels and
//! mapped custom fields `PUT` the issue.
//!
//! Config keys: `bot_account_id`, `user_directory`, `mappings` (status:
//! default NEW/IN_PROGRESS/RESOLVED ↔ To Do/In Progress/Done; priority:
//! default critical/high/medium/low ↔ Highest/High/Medium/Low; fields;
//! defaults: `project`, `issue_type`).

mod adf;
mod inbound;
mod outbound;

use mapper_kit::{
    Delivery, Guest, MapError, MapResult, Mappings, OutboundRequest, TicketChange, parse_config,
};
use serde_json::Value;

struct Jira;

mapper_kit::bindings::export!(Jira with_types_in mapper_kit::bindings);

impl Guest for Jira {
    fn map_to_ticket_event(delivery: Delivery, config: String) -> MapResult {
        let raw = parse_config(&config)?;
        inbound::map(&delivery, &Config::parse(&raw)?, &raw)
    }

    fn map_from_ticket_event(
        change: TicketChange,
        config: String,
    ) -> Result<Vec<OutboundRequest>, MapError> {
        let raw = parse_config(&config)?;
        outbound::map(&change, &Config::parse(&raw)?)
    }
}

/// The identity provider name of Jira users in the people directory.
const PROVIDER: &str = "jira";

/// Ticket status → Jira status, when the config maps none.
const DEFAULT_STATUS: [(&str, &str); 3] = [
    ("NEW", "To Do"),
    ("IN_PROGRESS", "In Progress"),
    ("RESOLVED", "Done"),
];

/// Ticket priority → Jira priority, when the config maps none.
const DEFAULT_PRIORITY: [(&str, &str); 4] = [
    ("critical", "Highest"),
    ("high", "High"),
    ("medium", "Medium"),
    ("low", "Low"),
];

/// Where an issue lives in the REST API.
fn issue_path(id: &str) -> String {
    format!("/rest/api/3/issue/{id}")
}

/// The mapper config, with defaults.
pub(crate) struct Config {
    bot_account_id: Option<String>,
    mappings: Mappings,
}

impl Config {
    fn parse(v: &Value) -> Result<Config, MapError> {
        Ok(Config {
            bot_account_id: v["bot_account_id"]
                .as_str()
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            mappings: Mappings::from_config(
                v,
                Mappings::new("Jira")
                    .with_status(&DEFAULT_STATUS)
                    .with_priority(&DEFAULT_PRIORITY),
            )?,
        })
    }
}
