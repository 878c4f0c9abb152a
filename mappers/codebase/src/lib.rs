//! Codebase mapping rules (seed 2's source). Codebase is pulled, not
//! pushed: the host delivers a `TICK` on the provider's `schedule`, and on
//! each one this mapper reads the project's tickets through `provider-api`
//! (the host adds the basic auth: `account/username` and the API key),
//! page by page (`/{project}/tickets.json?page=N`, Codebase answers 404
//! past the last page), and mirrors every ticket updated since its cursor:
//! `create` linked by the Codebase ticket id (a known id finds its linked
//! ticket), `status_change` to the mapped workflow status, and `assign`
//! when the ticket has an assignee. Unchanged facts change nothing, so a
//! ticket seen again costs nothing; tickets not updated since the cursor
//! are not mapped at all.
//!
//! The cursor (mapper state `cursor`) is the latest `updated_at` seen and
//! the ids updated at that very second, so a ticket updated in the second
//! the last pull ran is neither lost nor mapped twice. It is written with
//! the delivery's outcome: a pull that fails leaves it where it was.
//!
//! A reconciliation tick (`/tick/reconcile/{ticket id}`) reads that one
//! ticket (`?query=id:{id}`) and answers its status and assignee (event
//! type `reconcile`; `reconcile_missing` when Codebase no longer has it).
//!
//! People: Codebase answers usernames. The e-mail comes from the people
//! directory (identity `codebase`: username), then
//! `mapper_config.user_directory`, then Codebase's own user list
//! (`/users.json`, read once per tick when needed).
//!
//! Config keys: `project` (required: the project's permalink), `query` (a
//! Codebase ticket search narrowing the pull, e.g. `milestone:"Current
//! week/sprint"`), `statuses` (Codebase status name → workflow status, over
//! the defaults below), `priorities` (Codebase priority name → `LOW` …
//! `CRITICAL`), `default_priority` (`MEDIUM`), `ticket_url` (a link put in
//! a created ticket's description, `{id}` replaced), `actor` (who status
//! changes and assignments are by, default `codebase`), `max_pages` (10,
//! at most 14: the host's call budget), `user_directory`.

use mapper_kit::{
    Action, Assign, CreateTicket, Delivery, Fields, Guest, MapError, MapResult, OutboundRequest,
    Priority, StatusChange, TicketChange, UserDirectory, bad_config, config_priority, config_str,
    ignored, internal, malformed, mapped, parse_config, provider_api, query_escape, state_get,
    state_set, ticket_ref, unsupported,
};
use serde_json::{Value, json};

struct Codebase;

mapper_kit::bindings::export!(Codebase with_types_in mapper_kit::bindings);

/// The mapper-state key of the pull's cursor.
const CURSOR: &str = "cursor";

/// Codebase's usual statuses and what they are in the default workflow.
const STATUSES: [(&str, &str); 10] = [
    ("New", "NEW"),
    ("Accepted", "TRIAGED"),
    ("In Progress", "IN_PROGRESS"),
    ("On Hold", "ON_HOLD"),
    ("QA", "QA"),
    ("Deployed", "DEPLOYED"),
    ("Done", "RESOLVED"),
    ("Completed", "RESOLVED"),
    ("Closed", "CLOSED"),
    ("Invalid", "CANCELLED"),
];

impl Guest for Codebase {
    fn map_to_ticket_event(delivery: Delivery, config: String) -> MapResult {
        let config = parse_config(&config)?;
        if delivery.method != "TICK" {
            return Err(unsupported(format!(
                "codebase is pulled on a schedule; a {} delivery is not mapped",
                delivery.method
            )));
        }
        let pull = Pull::new(&config)?;
        match delivery.path.strip_prefix("/tick/reconcile/") {
            Some(id) => pull.reconcile(id),
            None => pull.pull(),
        }
    }

    fn map_from_ticket_event(
        _change: TicketChange,
        _config: String,
    ) -> Result<Vec<OutboundRequest>, MapError> {
        // Mirroring is one way: nothing is written to Codebase.
        Ok(Vec::new())
    }
}

/// One tick's work.
struct Pull<'c> {
    config: &'c Value,
    project: &'c str,
    users: UserDirectory<'c>,
    /// Codebase's user list, read at most once per tick.
    account_users: std::cell::OnceCell<Vec<Value>>,
}

/// Where the last pull stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    updated_at: String,
    /// Seconds since the epoch of `updated_at`.
    at: i64,
    /// The tickets updated at exactly `at`, already mapped.
    ids: Vec<String>,
}

impl Cursor {
    fn read(text: &str) -> Option<Cursor> {
        let v: Value = serde_json::from_str(text).ok()?;
        let updated_at = v.get("updated_at")?.as_str()?.to_owned();
        let ids = v
            .get("ids")?
            .as_array()?
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect();
        Some(Cursor {
            at: mapper_kit::epoch_seconds(&updated_at)?,
            updated_at,
            ids,
        })
    }

    fn text(&self) -> String {
        json!({"updated_at": self.updated_at, "ids": self.ids}).to_string()
    }

    /// Whether a ticket updated at `at` is news to this cursor.
    fn is_new(&self, at: i64, id: &str) -> bool {
        at > self.at || (at == self.at && !self.ids.iter().any(|i| i == id))
    }
}

/// One Codebase ticket, as the pull reads it.
struct Ticket<'v> {
    raw: &'v Value,
    id: String,
    at: i64,
}

impl<'c> Pull<'c> {
    fn new(config: &'c Value) -> Result<Pull<'c>, MapError> {
        let project = config
            .get("project")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty() && !p.contains(['/', '?', '#']))
            .ok_or_else(|| {
                bad_config("mapper_config.project must name the Codebase project (its permalink)")
            })?;
        Ok(Pull {
            config,
            project,
            users: UserDirectory::from_config(config, "codebase")?,
            account_users: std::cell::OnceCell::new(),
        })
    }

    fn max_pages(&self) -> Result<u32, MapError> {
        match self.config.get("max_pages") {
            None | Some(Value::Null) => Ok(10),
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=14).contains(n))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad_config("mapper_config.max_pages must be 1 to 14")),
        }
    }

    /// The scheduled pull: every ticket updated since the cursor.
    fn pull(&self) -> MapResult {
        let old = state_get(CURSOR);
        let cursor = old.as_deref().and_then(Cursor::read);
        let query = match self.config.get("query").and_then(Value::as_str) {
            Some(q) if !q.is_empty() => format!("&query={}", query_escape(q)),
            _ => String::new(),
        };
        let mut pages = Vec::new();
        for page in 1..=self.max_pages()? {
            let path = format!("/{}/tickets.json?page={page}{query}", self.project);
            match self.get(&path)? {
                // Past the last page.
                None => break,
                Some(Value::Array(items)) if items.is_empty() => break,
                Some(Value::Array(items)) => pages.push((path, items)),
                Some(_) => return Err(malformed(format!("GET {path}: answer is not a list"))),
            }
        }
        let mut news = Vec::new();
        for (path, items) in &pages {
            for (i, item) in items.iter().enumerate() {
                let t = ticket(item)
                    .map_err(|e| malformed(format!("GET {path}: ticket [{i}]: {}", e.message)))?;
                if cursor.as_ref().is_none_or(|c| c.is_new(t.at, &t.id)) {
                    news.push(t);
                }
            }
        }
        // Oldest first, so the history reads in Codebase's order.
        news.sort_by_key(|t| (t.at, num(&t.id)));
        news.dedup_by(|a, b| a.id == b.id);
        let mut actions = Vec::new();
        for t in &news {
            self.mirror(t, true, &mut actions)?;
        }
        if let Some(next) = advance(cursor, &news) {
            state_set(CURSOR, Some(next.text().as_str()), old.as_deref());
        }
        if actions.is_empty() {
            return ignored("no_changes");
        }
        mapped("tickets_pulled", actions)
    }

    /// A reconciliation tick: the ticket's current status and assignee.
    fn reconcile(&self, escaped: &str) -> MapResult {
        let id = percent_decode(escaped)
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| malformed(format!("`{escaped}` is not a Codebase ticket id")))?;
        let path = format!(
            "/{}/tickets.json?query={}",
            self.project,
            query_escape(&format!("id:{id}"))
        );
        let items = match self.get(&path)? {
            Some(Value::Array(items)) => items,
            None => return ignored("reconcile_missing"),
            Some(_) => return Err(malformed(format!("GET {path}: answer is not a list"))),
        };
        let mut found = None;
        for (i, item) in items.iter().enumerate() {
            let t = ticket(item)
                .map_err(|e| malformed(format!("GET {path}: ticket [{i}]: {}", e.message)))?;
            if t.id == id {
                found = Some(t);
            }
        }
        let Some(t) = found else {
            return ignored("reconcile_missing");
        };
        let mut actions = Vec::new();
        self.mirror(&t, false, &mut actions)?;
        mapped("reconcile", actions)
    }

    /// The actions that make the ticket say what Codebase says.
    fn mirror(&self, t: &Ticket<'_>, create: bool, out: &mut Vec<Action>) -> Result<(), MapError> {
        let raw = t.raw;
        let actor = config_str(self.config, "actor", "codebase").to_owned();
        let reference = ticket_ref(Some(t.id.clone()), None);
        if create {
            let summary = raw.str_at("/summary")?;
            let link = match self.config.get("ticket_url").and_then(Value::as_str) {
                Some(u) => format!(" - {}", u.replace("{id}", &t.id)),
                None => String::new(),
            };
            let requested_by = match raw.opt_str("/reporter")? {
                Some(r) => self.email(r).ok(),
                None => None,
            };
            out.push(Action::Create(CreateTicket {
                subject: summary.to_owned(),
                description: format!("Codebase ticket #{}: {summary}{link}", t.id),
                priority: self.priority(raw)?,
                ticket_type: ticket_type(raw.opt_str("/ticket_type")?),
                requested_by,
                external_id: Some(t.id.clone()),
                labels: vec!["codebase".into()],
            }));
        }
        out.push(Action::StatusChange(StatusChange {
            ticket: reference.clone(),
            status: self.status(raw)?,
            changed_by: actor.clone(),
        }));
        if let Some(who) = raw.opt_str("/assignee")?.filter(|a| !a.is_empty()) {
            out.push(Action::Assign(Assign {
                ticket: reference,
                assigned_to: self.email(who)?,
                assigned_by: actor,
            }));
        }
        Ok(())
    }

    /// The workflow status of the ticket's Codebase status.
    fn status(&self, raw: &Value) -> Result<String, MapError> {
        let name = raw.str_at("/status/name")?;
        if let Some(s) = self
            .config
            .get("statuses")
            .and_then(|m| m.get(name))
            .and_then(Value::as_str)
        {
            return Ok(s.to_owned());
        }
        if let Some((_, s)) = STATUSES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Ok((*s).to_owned());
        }
        // A status of its own that Codebase treats as closed is closed.
        if raw.pointer("/status/treat_as_closed") == Some(&Value::Bool(true)) {
            return Ok("CLOSED".into());
        }
        Err(bad_config(format!(
            "mapper_config.statuses has no entry for the Codebase status `{name}`"
        )))
    }

    fn priority(&self, raw: &Value) -> Result<Priority, MapError> {
        let default = config_priority(self.config, "default_priority", Priority::Medium)?;
        let Some(name) = raw.opt_str("/priority/name")? else {
            return Ok(default);
        };
        let configured = self
            .config
            .get("priorities")
            .and_then(|m| m.get(name))
            .and_then(Value::as_str);
        let word = configured.unwrap_or(name).to_ascii_uppercase();
        Ok(match word.as_str() {
            "CRITICAL" | "URGENT" => Priority::Critical,
            "HIGH" => Priority::High,
            "NORMAL" | "MEDIUM" => Priority::Medium,
            "LOW" => Priority::Low,
            _ if configured.is_some() => {
                return Err(bad_config(format!(
                    "mapper_config.priorities.{name} is `{word}`; expected LOW, MEDIUM, HIGH or CRITICAL"
                )));
            }
            _ => default,
        })
    }

    /// The e-mail of Codebase user `username`.
    fn email(&self, username: &str) -> Result<String, MapError> {
        if let Ok(e) = self.users.email(&[username], &format!("`{username}`")) {
            return Ok(e);
        }
        let users = match self.account_users.get() {
            Some(u) => u,
            None => {
                let list = match self.get("/users.json")? {
                    Some(Value::Array(list)) => list,
                    _ => Vec::new(),
                };
                self.account_users.get_or_init(|| list)
            }
        };
        users
            .iter()
            .filter_map(|u| u.get("user"))
            .find(|u| u.get("username").and_then(Value::as_str) == Some(username))
            .and_then(|u| u.get("email_address").and_then(Value::as_str))
            .filter(|e| e.contains('@'))
            .map(str::to_owned)
            .ok_or_else(|| {
                bad_config(format!(
                    "no e-mail for codebase user `{username}`: add `{username}` to \
                     mapper_config.user_directory, or the person with that codebase identity \
                     to the people directory"
                ))
            })
    }

    /// GETs `path` as JSON; `None` for a 404.
    fn get(&self, path: &str) -> Result<Option<Value>, MapError> {
        let response = provider_api(&mapper_kit::ApiRequest {
            method: "GET".into(),
            path: path.to_owned(),
            headers: vec![mapper_kit::Header {
                name: "accept".into(),
                value: "application/json".into(),
            }],
            body: Vec::new(),
        })
        .map_err(|e| {
            internal(format!(
                "GET {path} failed: {}",
                mapper_kit::api_error_text(&e)
            ))
        })?;
        if response.status == 404 {
            return Ok(None);
        }
        if !(200..300).contains(&response.status) {
            return Err(internal(format!(
                "GET {path} answered status {}",
                response.status
            )));
        }
        serde_json::from_slice(&response.body)
            .map(Some)
            .map_err(|e| internal(format!("GET {path}: answer is not JSON: {e}")))
    }
}

/// Reads one `{"ticket": {...}}` of a `tickets.json` answer.
fn ticket(item: &Value) -> Result<Ticket<'_>, MapError> {
    let raw = item.req("/ticket")?;
    let id = raw.id_at("/ticket_id")?;
    let updated = raw.str_at("/updated_at")?;
    let at = mapper_kit::epoch_seconds(updated)
        .ok_or_else(|| malformed(format!("`updated_at` `{updated}` is not an RFC 3339 time")))?;
    Ok(Ticket { raw, id, at })
}

/// The cursor after mapping `news` (sorted oldest first); `None` when
/// nothing new was seen.
fn advance(cursor: Option<Cursor>, news: &[Ticket<'_>]) -> Option<Cursor> {
    let last = news.last()?;
    let mut ids: Vec<String> = news
        .iter()
        .filter(|t| t.at == last.at)
        .map(|t| t.id.clone())
        .collect();
    if let Some(c) = cursor
        && c.at == last.at
    {
        ids.extend(c.ids);
    }
    ids.sort_by_key(|i| num(i));
    ids.dedup();
    let updated_at = last.raw.str_at("/updated_at").ok()?.to_owned();
    Some(Cursor {
        updated_at,
        at: last.at,
        ids,
    })
}

/// A ticket id's number, for ordering (ids are Codebase's integers).
fn num(id: &str) -> u64 {
    id.parse().unwrap_or(u64::MAX)
}

/// `Bug` → `BUG`, `Feature request` → `FEATURE_REQUEST`; none: `TASK`.
fn ticket_type(name: Option<&str>) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        None => "TASK".into(),
        Some(n) => n
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect(),
    }
}

/// Undoes the host's percent-encoding of a tick path's id.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, updated: &str) -> Value {
        json!({"ticket": {"ticket_id": id.parse::<u64>().unwrap(), "updated_at": updated}})
    }

    #[test]
    fn the_cursor_keeps_the_ids_of_its_last_second() {
        let (a, b) = (
            t("7", "2026-05-01T10:00:00Z"),
            t("9", "2026-05-01T10:00:00Z"),
        );
        let news = vec![ticket(&a).unwrap(), ticket(&b).unwrap()];
        let c = advance(None, &news).unwrap();
        assert_eq!(c.ids, vec!["7", "9"]);
        assert_eq!(Cursor::read(&c.text()), Some(c.clone()));
        assert!(!c.is_new(c.at, "7"));
        assert!(c.is_new(c.at, "8"));
        assert!(!c.is_new(c.at - 1, "8"));
        assert!(c.is_new(c.at + 1, "7"));
        // A later ticket in the same second joins the ids.
        let d = t("8", "2026-05-01T10:00:00Z");
        let c2 = advance(Some(c.clone()), &[ticket(&d).unwrap()]).unwrap();
        assert_eq!(c2.ids, vec!["7", "8", "9"]);
    }

    #[test]
    fn types_and_ids_read_as_the_host_wants() {
        assert_eq!(ticket_type(Some("Feature request")), "FEATURE_REQUEST");
        assert_eq!(ticket_type(None), "TASK");
        assert_eq!(percent_decode("12%2F3").as_deref(), Some("12/3"));
        assert_eq!(percent_decode("%zz"), None);
    }
}
