//! PagerDuty mapping rules, both ways (Webhooks v3, REST API v2).
//!
//! Inbound (`event.event_type`): `incident.triggered` creates an INCIDENT
//! ticket linked to the incident id; `acknowledged` moves it to the status
//! `mappings.status` gives `acknowledged` and assigns it to whoever
//! acknowledged; `unacknowledged` and `reopened` move it back to the
//! status of `triggered`; `escalated` escalates; `resolved` resolves;
//! `annotated` (a note) comments, with the note id for echo dropping;
//! `reassigned` and `delegated` assign to the first assignee;
//! `priority_updated` updates the priority. A change made by our own API
//! user (`bot_user_id`) is ignored, and so is `pagey.ping`. The host's
//! reconcile tick (`TICK /tick/reconcile/{incident id}`) reads
//! `GET /incidents/{id}` and answers its status, title, priority and
//! assignee. Users are PagerDuty ids: the people directory (identity
//! `pagerduty`), then `user_directory`, then `GET /users/{id}`.
//!
//! Outbound: a ticket created elsewhere opens an incident on
//! `mappings.defaults.service_id` (captured as the mirror); a status whose
//! mapped PagerDuty status is `acknowledged` or `resolved`, and a resolve,
//! `PUT /incidents/{id}` that status; a comment from elsewhere is a note
//! (its id captured as an echo). PagerDuty's writes need a `From` header
//! naming a user's e-mail: `from_email`.
//!
//! Config keys: `bot_user_id`, `from_email`, `user_directory`, `mappings`
//! (status: workflow status → `triggered`/`acknowledged`/`resolved`, default
//! NEW/IN_PROGRESS/RESOLVED; priority: ticket priority → priority name,
//! default P1–P4; defaults: `service_id`, `urgency`).

mod inbound;
mod outbound;

use mapper_kit::{
    Delivery, Guest, MapError, MapResult, Mappings, OutboundRequest, TicketChange, UserDirectory,
    get_json, parse_config,
};
use serde_json::Value;

struct PagerDuty;

mapper_kit::bindings::export!(PagerDuty with_types_in mapper_kit::bindings);

impl Guest for PagerDuty {
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

/// The identity provider name of PagerDuty users in the people directory.
const PROVIDER: &str = "pagerduty";

/// Ticket status → PagerDuty status, when the config maps none.
const DEFAULT_STATUS: [(&str, &str); 3] = [
    ("NEW", "triggered"),
    ("IN_PROGRESS", "acknowledged"),
    ("RESOLVED", "resolved"),
];

/// Ticket priority → PagerDuty priority name, when the config maps none.
const DEFAULT_PRIORITY: [(&str, &str); 4] = [
    ("critical", "P1"),
    ("high", "P2"),
    ("medium", "P3"),
    ("low", "P4"),
];

/// The mapper config, with defaults.
pub(crate) struct Config {
    bot_user_id: Option<String>,
    from_email: Option<String>,
    mappings: Mappings,
}

impl Config {
    fn parse(v: &Value) -> Result<Config, MapError> {
        let opt = |key: &str| v[key].as_str().filter(|c| !c.is_empty()).map(str::to_owned);
        Ok(Config {
            bot_user_id: opt("bot_user_id"),
            from_email: opt("from_email"),
            mappings: Mappings::from_config(
                v,
                Mappings::new("PagerDuty")
                    .with_status(&DEFAULT_STATUS)
                    .with_priority(&DEFAULT_PRIORITY),
            )?,
        })
    }
}

/// The e-mail of PagerDuty user `id` (`name` for the error): the people
/// directory, then `user_directory`, then `GET /users/{id}`.
pub(crate) fn email_of(users: &UserDirectory, id: &str, name: &str) -> Result<String, MapError> {
    match users.email(&[id], name) {
        Ok(email) => Ok(email),
        Err(not_found) => match get_json(&format!("/users/{id}")) {
            Ok(answer) => answer
                .pointer("/user/email")
                .and_then(Value::as_str)
                .filter(|e| e.contains('@'))
                .map(str::to_owned)
                .ok_or(not_found),
            // No API configured, or it failed: the directory is the fix.
            Err(_) => Err(not_found),
        },
    }
}
