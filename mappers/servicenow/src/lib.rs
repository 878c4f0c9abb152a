//! ServiceNow mapping rules, both ways.
//!
//! ServiceNow has no webhooks of its own: the business rule shipped in
//! `examples/servicenow/` (an *after* insert/update rule on `incident`)
//! posts our JSON, signed with HMAC-SHA256 (base64, header
//! `X-Sluice-Signature`: the host's `servicenow` verify preset):
//!
//! ```json
//! {"event": "insert" | "update", "table": "incident",
//!  "sys_id": "…", "number": "INC0010001",
//!  "updated_by": "<user_name>", "user_email": "<the actor's e-mail>",
//!  "changed": ["state", "priority", …],
//!  "record": {"short_description": "…", "description": "…",
//!             "state": "In Progress", "priority": "2 - High",
//!             "assigned_to_email": "…", "caller_email": "…",
//!             "<each mapped custom field>": "<display value>"},
//!  "work_note": "…", "comment": "…"}
//! ```
//!
//! Choice fields carry their display values (`In Progress`, `1 -
//! Critical`), which are what `mappings` name. Inbound: an insert creates
//! an INCIDENT ticket linked to the `sys_id`; an update maps each changed
//! field: `state` (mapped back through `mappings.status`; RESOLVED
//! resolves, ESCALATED escalates, others are status changes), the
//! priority, short description and description (`update`), the assignee
//! (`assign`), mapped custom fields (`set-fields`); a new work note or
//! additional comment is a comment. Changes by our integration user
//! (`integration_user`, the user_name the Table API calls run as) are
//! ignored: they are our own writes coming back. The host's reconcile tick
//! reads `GET /api/now/table/incident/{sys_id}`.
//!
//! Outbound (Table API): a ticket created elsewhere is a new incident
//! (`POST /api/now/table/incident`, its `sys_id` captured as the mirror)
//! with every `mappings.defaults` entry as a field (`caller_id`,
//! `category`, `assignment_group`…) except the mapper's own keys; a status
//! change or resolve sets `state` (resolving also `close_code` and
//! `close_notes`, which ServiceNow requires); a comment from elsewhere is
//! a work note; an assignment sets `assigned_to` to the person's
//! `servicenow` identity (a user sys_id); edits of subject, description,
//! priority and mapped fields update the record.
//!
//! Config keys: `integration_user`, `user_directory`, `mappings` (status:
//! default NEW/IN_PROGRESS/ON_HOLD/RESOLVED/CLOSED/CANCELLED ↔ New/In
//! Progress/On Hold/Resolved/Closed/Canceled; priority: default
//! critical/high/medium/low ↔ 1 - Critical/2 - High/3 - Moderate/4 - Low;
//! fields; defaults: `priority_field` (default `priority`: instances that
//! compute priority write `urgency` instead), `close_code` (default
//! `Solution provided`), anything else copied onto new incidents).

mod inbound;
mod outbound;

use mapper_kit::{
    Delivery, Guest, MapError, MapResult, Mappings, OutboundRequest, TicketChange, parse_config,
};
use serde_json::Value;

struct ServiceNow;

mapper_kit::bindings::export!(ServiceNow with_types_in mapper_kit::bindings);

impl Guest for ServiceNow {
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

/// The identity provider name of ServiceNow users in the people directory.
const PROVIDER: &str = "servicenow";

/// The incident table's records.
const TABLE: &str = "/api/now/table/incident";

/// Ticket status → incident state (display value), when the config maps none.
const DEFAULT_STATUS: [(&str, &str); 6] = [
    ("NEW", "New"),
    ("IN_PROGRESS", "In Progress"),
    ("ON_HOLD", "On Hold"),
    ("RESOLVED", "Resolved"),
    ("CLOSED", "Closed"),
    ("CANCELLED", "Canceled"),
];

/// Ticket priority → incident priority (display value), when the config
/// maps none.
const DEFAULT_PRIORITY: [(&str, &str); 4] = [
    ("critical", "1 - Critical"),
    ("high", "2 - High"),
    ("medium", "3 - Moderate"),
    ("low", "4 - Low"),
];

/// `mappings.defaults` keys the mapper reads itself, not copied onto new
/// incidents.
const OWN_DEFAULTS: [&str; 2] = ["priority_field", "close_code"];

/// The mapper config, with defaults.
pub(crate) struct Config {
    integration_user: Option<String>,
    mappings: Mappings,
}

impl Config {
    fn parse(v: &Value) -> Result<Config, MapError> {
        Ok(Config {
            integration_user: v["integration_user"]
                .as_str()
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            mappings: Mappings::from_config(
                v,
                Mappings::new("ServiceNow")
                    .with_status(&DEFAULT_STATUS)
                    .with_priority(&DEFAULT_PRIORITY),
            )?,
        })
    }

    /// The incident field the ticket's priority is written to.
    fn priority_field(&self) -> &str {
        self.mappings
            .default("priority_field")
            .unwrap_or("priority")
    }
}
