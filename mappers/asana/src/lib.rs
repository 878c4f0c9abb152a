//! Asana mapping rules, both ways.
//!
//! Inbound, seed 000's Asana rows. A delivery is `{"events": [...]}` of
//! ids, not data, so each row reads what it needs through `provider-api`:
//! a task added to a project is `task_created` (GET `/tasks/{gid}`: name →
//! subject, notes → description, the task gid as external id); a task
//! added to a section is `task_moved` (GET `/sections/{gid}`: its name →
//! status by the section map); `completed` changing to true is
//! `task_completed` (GET the task: a subtask's completion is a
//! `subtask_completed` comment on its parent's ticket, a task's a resolve by
//! its assignee); a new assignee is `task_assigned` (GET `/users/{gid}` for
//! the e-mail; assign, and the assignee's R sign-off requested); a
//! `comment_added` story is `story_added` (GET `/stories/{gid}`: a comment
//! whose id is the story gid, so our own stories come back as echoes); a
//! deleted task is `task_deleted` (status `CANCELLED`). RACI as seed 000
//! says: the assignee is R, the project owner A (requested when a task is
//! created: GET `/projects/{gid}` for the owner). One delivery may carry
//! several events, mapped in order into one action list (an event about a
//! task created earlier in the same delivery refers to that `create`); an
//! empty batch (a heartbeat) and events by our own bot user are ignored.
//! E-mails come from the people directory (identity `{provider}:{gid}`),
//! else GET `/users/{gid}`.
//!
//! Outbound, for each Asana task linked to the ticket: a resolve completes
//! it (PUT `/tasks/{gid}`); a status change (applied, or through the ticket
//! API) moves it to the section configured for the status (POST
//! `/sections/{section}/addTask`); a comment made elsewhere becomes a story
//! (POST `/tasks/{gid}/stories`, remembered as an echo). With `project_gid`
//! set, a ticket created elsewhere gets a task in that project (POST
//! `/tasks`, linked as the ticket's mirror). A ticket with no Asana task
//! sends nothing else.
//!
//! Config keys (all optional): `provider` (the name Asana is configured
//! under, for links and directory identities; default `asana`),
//! `bot_user_gid` (our API user: its events are ignored), `section_status`
//! (section name → status, case-insensitive; default seed 000's: New,
//! Triaged, In Progress, On Hold, Escalated, Resolved, Done / Closed),
//! `activity` (the assignee's R sign-off; default `Development`),
//! `owner_activities` (the project owner's A sign-offs; default
//! `[activity]`, `[]` for none), `automation_actor` (who acted when Asana
//! names nobody; default `asana`), `ticket_type` (default `TASK`),
//! `default_priority` (default `MEDIUM`), `sections` (status → section gid,
//! for outbound moves), `project_gid` (outbound task creation).

mod inbound;
mod outbound;

use mapper_kit::{
    Delivery, Guest, MapError, MapResult, OutboundRequest, Priority, TicketChange, bad_config,
    config_priority, config_str, get_json, id_text, parse_config, person_by_identity,
};
use serde_json::{Map, Value};

struct Asana;

mapper_kit::bindings::export!(Asana with_types_in mapper_kit::bindings);

impl Guest for Asana {
    fn map_to_ticket_event(delivery: Delivery, config: String) -> MapResult {
        inbound::map(&delivery, &Config::parse(&config)?)
    }

    fn map_from_ticket_event(
        change: TicketChange,
        config: String,
    ) -> Result<Vec<OutboundRequest>, MapError> {
        outbound::map(&change, &Config::parse(&config)?)
    }
}

/// Seed 000's section → status map.
const SECTION_STATUS: [(&str, &str); 9] = [
    ("new", "NEW"),
    ("triaged", "TRIAGED"),
    ("in progress", "IN_PROGRESS"),
    ("on hold", "ON_HOLD"),
    ("escalated", "ESCALATED"),
    ("resolved", "RESOLVED"),
    ("done", "CLOSED"),
    ("closed", "CLOSED"),
    ("done / closed", "CLOSED"),
];

/// The mapper config, with defaults.
struct Config {
    provider: String,
    bot_user_gid: Option<String>,
    /// Lower-case section name → status.
    section_status: Vec<(String, String)>,
    activity: String,
    owner_activities: Vec<String>,
    automation_actor: String,
    ticket_type: String,
    priority: Priority,
    /// Status → section gid.
    sections: Map<String, Value>,
    project_gid: Option<String>,
}

impl Config {
    fn parse(text: &str) -> Result<Config, MapError> {
        let v = parse_config(text)?;
        let s = |key: &str, default: &str| config_str(&v, key, default).to_owned();
        let activity = s("activity", "Development");
        let section_status = match &v["section_status"] {
            Value::Null => SECTION_STATUS
                .iter()
                .map(|(k, s)| ((*k).to_owned(), (*s).to_owned()))
                .collect(),
            Value::Object(m) => m
                .iter()
                .map(|(k, s)| match s.as_str() {
                    Some(s) => Ok((k.trim().to_lowercase(), s.to_owned())),
                    None => Err(bad_config(format!(
                        "mapper_config.section_status.{k} must be a status name"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(bad_config(
                    "mapper_config.section_status must map section names to statuses",
                ));
            }
        };
        let owner_activities = match &v["owner_activities"] {
            Value::Null => vec![activity.clone()],
            Value::Array(list) => list
                .iter()
                .map(|a| a.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    bad_config("mapper_config.owner_activities must be a list of activity names")
                })?,
            _ => {
                return Err(bad_config(
                    "mapper_config.owner_activities must be a list of activity names",
                ));
            }
        };
        let sections = match &v["sections"] {
            Value::Null => Map::new(),
            Value::Object(m) => m.clone(),
            _ => {
                return Err(bad_config(
                    "mapper_config.sections must map statuses to section gids",
                ));
            }
        };
        Ok(Config {
            provider: s("provider", "asana"),
            bot_user_gid: id_text(&v["bot_user_gid"]),
            section_status,
            activity,
            owner_activities,
            automation_actor: s("automation_actor", "asana"),
            ticket_type: s("ticket_type", "TASK"),
            priority: config_priority(&v, "default_priority", Priority::Medium)?,
            sections,
            project_gid: id_text(&v["project_gid"]),
        })
    }

    /// The status a section of this name stands for.
    fn status_of(&self, section: &str) -> Option<&str> {
        let key = section.trim().to_lowercase();
        self.section_status
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, status)| status.as_str())
    }

    /// The section gid configured for a status.
    fn section_for(&self, status: &str) -> Option<String> {
        id_text(self.sections.get(status)?)
    }
}

/// The e-mail of Asana user `user`: the people directory, else
/// GET `/users/{gid}`.
fn email_of(cfg: &Config, user: &str) -> Result<String, MapError> {
    if let Some(person) = person_by_identity(&cfg.provider, user) {
        return Ok(person.email);
    }
    let answer = get_json(&format!("/users/{user}"))?;
    answer
        .pointer("/data/email")
        .and_then(Value::as_str)
        .filter(|e| e.contains('@'))
        .map(str::to_owned)
        .ok_or_else(|| {
            bad_config(format!(
                "no e-mail for asana user `{user}`: add them to the people directory \
                 (identity {}:{user}) or use a token that can read users' e-mail",
                cfg.provider
            ))
        })
}
