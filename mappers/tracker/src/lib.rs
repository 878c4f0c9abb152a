//! Yandex Tracker mapping rules, both ways: the issue side of seed 3's
//! service desk.
//!
//! Inbound: Tracker has no webhooks of its own, only triggers whose "HTTP
//! request" action posts a body we write (the template is in
//! `docs/pachca-tracker.md`), authenticated by a shared token (`?token=` or
//! `X-Sluice-Token`, checked by the host). `{"event": "comment_created",
//! "issue": {"key"}, "comment": {"id", "text", "author"}}` is a comment on
//! the ticket linked to the issue (`comment_created`; its id the comment's,
//! so the comments the host itself made come back `ignored: echo`);
//! `{"event": "status_changed", "issue": {"key", "status"}, "actor"}` is a
//! status change through `status_map` (`status_changed`; a Tracker status
//! the map lacks is ignored). The seed's `issueCommentEvent` is read as
//! `comment_created`; other events, comments by `bot_login` and empty
//! comments are ignored. A Yandex login's e-mail is the people directory's
//! (identity `{provider}:{login}`), else `login@{email_domain}`, else the
//! login itself stands for the person.
//!
//! Outbound: a ticket created from one of `create_from` (default: Pachca)
//! becomes an issue in `queue` (`POST /issues`: summary, description, the
//! `tags`, `unique` = the ticket's guid so a resent create makes no second
//! issue, and the custom fields `message_id_field` / `user_id_field`
//! holding the ticket's `pachca_message_id` / `pachca_user_id`), captured
//! as the ticket's mirror (its key). A comment made elsewhere becomes an
//! issue comment (`POST /issues/{key}/comments`, an echo); a status change
//! (applied, a resolve, or through the ticket API) executes the transition
//! `transitions` names for the status; an assignment (Pachca's «Взять в
//! работу», or through the ticket API) sets the assignee
//! (`PATCH /issues/{key}`, `{"assignee": login}`: the person's `tracker`
//! identity in the people directory, else the e-mail's local part when the
//! e-mail is in `email_domain`; else nothing is sent, with a warning).
//! Every request carries `X-Org-ID` (`org_id`) or `X-Cloud-Org-ID`
//! (`cloud_org_id`) when configured.
//!
//! Config keys (all optional): `provider` (default `tracker`), `queue`
//! (the seed's `TRACKER_QUEUE`, default `SERVICEDESK`), `tags` (default
//! `["Создана в Пачке"]`), `create_from` (default `["pachca"]`),
//! `message_id_field`, `user_id_field` (Tracker field ids, e.g.
//! `66aa43bfc941f16869268d41--pachcaMessageId`), `status_map` (Tracker
//! status key → ticket status; default open → NEW, inProgress →
//! IN_PROGRESS, needInfo → ON_HOLD, resolved → RESOLVED, closed → CLOSED),
//! `transitions` (ticket status → transition id; default: the Tracker
//! status key `status_map` gives it, which is the transition's id in
//! queues whose transitions are named after their statuses),
//! `email_domain`, `bot_login` (the API user's login), `org_id`,
//! `cloud_org_id` (the seed's `TRACKER_ORG_ID`).

mod inbound;
mod outbound;

use mapper_kit::{
    Delivery, Guest, MapError, MapResult, OutboundRequest, TicketChange, bad_config, config_str,
    parse_config, person_by_identity,
};
use serde_json::Value;

struct Tracker;

mapper_kit::bindings::export!(Tracker with_types_in mapper_kit::bindings);

impl Guest for Tracker {
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

/// The default workflow of a Tracker queue, as the ticket statuses it
/// stands for.
const STATUS_MAP: [(&str, &str); 5] = [
    ("open", "NEW"),
    ("inProgress", "IN_PROGRESS"),
    ("needInfo", "ON_HOLD"),
    ("resolved", "RESOLVED"),
    ("closed", "CLOSED"),
];

/// The mapper config, with defaults.
struct Config {
    provider: String,
    queue: String,
    tags: Vec<String>,
    create_from: Vec<String>,
    message_id_field: Option<String>,
    user_id_field: Option<String>,
    /// Tracker status key → ticket status.
    status_map: Vec<(String, String)>,
    /// Ticket status → transition id.
    transitions: Vec<(String, String)>,
    email_domain: Option<String>,
    bot_login: Option<String>,
    /// The organisation header: name and value.
    org: Option<(&'static str, String)>,
}

impl Config {
    fn parse(text: &str) -> Result<Config, MapError> {
        let v = parse_config(text)?;
        let s = |key: &str, default: &str| config_str(&v, key, default).to_owned();
        let opt = |key: &str| {
            v[key]
                .as_str()
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
        };
        let status_map = match &v["status_map"] {
            Value::Null => STATUS_MAP
                .iter()
                .map(|(k, s)| ((*k).to_owned(), (*s).to_owned()))
                .collect(),
            other => string_map(other, "status_map")?,
        };
        let transitions = match &v["transitions"] {
            Value::Null => {
                // The first Tracker status of each ticket status.
                let mut t: Vec<(String, String)> = Vec::new();
                for (key, status) in &status_map {
                    if !t.iter().any(|(s, _)| s == status) {
                        t.push((status.clone(), key.clone()));
                    }
                }
                t
            }
            other => string_map(other, "transitions")?,
        };
        let org = match (opt("org_id"), opt("cloud_org_id")) {
            (Some(id), _) => Some(("x-org-id", id)),
            (None, Some(id)) => Some(("x-cloud-org-id", id)),
            (None, None) => None,
        };
        Ok(Config {
            provider: s("provider", "tracker"),
            queue: s("queue", "SERVICEDESK"),
            tags: string_list(&v["tags"], "tags")?
                .unwrap_or_else(|| vec!["Создана в Пачке".into()]),
            create_from: string_list(&v["create_from"], "create_from")?
                .unwrap_or_else(|| vec!["pachca".into()]),
            message_id_field: opt("message_id_field"),
            user_id_field: opt("user_id_field"),
            status_map,
            transitions,
            email_domain: opt("email_domain").map(|d| d.trim_start_matches('@').to_owned()),
            bot_login: opt("bot_login"),
            org,
        })
    }

    /// The ticket status a Tracker status key stands for.
    fn status_of(&self, key: &str) -> Option<&str> {
        self.status_map
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, s)| s.as_str())
    }

    /// The transition that brings an issue to the ticket status `status`.
    fn transition_to(&self, status: &str) -> Option<&str> {
        self.transitions
            .iter()
            .find(|(s, _)| s == status)
            .map(|(_, t)| t.as_str())
    }

    /// Who Yandex login `login` is: the directory's e-mail, else
    /// `login@{email_domain}`, else the login; nobody named is the
    /// provider itself.
    fn person(&self, login: &str) -> String {
        if login.is_empty() {
            return self.provider.clone();
        }
        if let Some(person) = person_by_identity(&self.provider, login) {
            return person.email;
        }
        match &self.email_domain {
            Some(domain) => format!("{login}@{domain}"),
            None => login.to_owned(),
        }
    }
}

/// A config object of strings, in order.
fn string_map(v: &Value, key: &str) -> Result<Vec<(String, String)>, MapError> {
    let err = || bad_config(format!("mapper_config.{key} must map names to strings"));
    v.as_object()
        .ok_or_else(err)?
        .iter()
        .map(|(k, s)| Ok((k.clone(), s.as_str().ok_or_else(err)?.to_owned())))
        .collect()
}

/// A config list of strings; `None` when unset.
fn string_list(v: &Value, key: &str) -> Result<Option<Vec<String>>, MapError> {
    match v {
        Value::Null => Ok(None),
        Value::Array(list) => list
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| bad_config(format!("mapper_config.{key} must be a list of strings"))),
        _ => Err(bad_config(format!(
            "mapper_config.{key} must be a list of strings"
        ))),
    }
}
