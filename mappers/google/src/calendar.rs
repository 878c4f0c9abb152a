//! Calendar: a channel notification (`X-Goog-Resource-State`: `sync`,
//! `exists`, `not_exists`) carries no data; the changed events are read
//! with an incremental `events.list` from the sync token in the provider's
//! state (a full listing when there is none, or Google answers 410 for an
//! expired one). An event linked to a ticket — its private extended
//! property `ticket_guid` — whose start is due escalates that ticket with
//! the event's summary as the reason (seed 000's SLA deadline).
//!
//! Google notifies when events change, not when they start, so a linked
//! event still in the future is remembered in the state (`pending`) and
//! escalated by the first notification or scheduled tick ([`tick`]) at or
//! after its start; one that started longer ago than `grace_hours` is
//! history and escalates nothing. A tick names no calendar, so the state
//! also lists the calendars with events waiting (`calendar:watched`).

use mapper_kit::{
    Action, Delivery, Escalate, LogLevel, MapError, MapResult, epoch_seconds, guid_ref, header,
    ignored, internal, log, malformed, mapped, query_escape, state_get,
};
use serde_json::{Value, json};

use crate::api::{get_unless_gone, set_state as write};
use crate::text::Section;

const EVENT: &str = "calendar_due";
/// Event pages read per notification.
const MAX_PAGES: usize = 5;
/// Largest pending list (or watched list) kept, as JSON (the state's
/// values are small).
const MAX_PENDING_BYTES: usize = 3500;
/// The state key listing the calendars with linked events waiting.
const WATCHED: &str = "calendar:watched";

/// A linked event not yet due.
struct Pending {
    id: String,
    guid: String,
    start: i64,
    summary: String,
}

pub fn map(delivery: &Delivery, uri: &str, config: &Value) -> MapResult {
    let cfg = Section::new("calendar", config)?;
    let state = header(delivery, "x-goog-resource-state")
        .ok_or_else(|| malformed("missing header `x-goog-resource-state`"))?;
    if !matches!(state, "sync" | "exists" | "not_exists") {
        return ignored("calendar_notification");
    }
    let calendar = calendar_id(uri).ok_or_else(|| {
        malformed(format!(
            "header `x-goog-resource-uri` names no calendar: `{uri}`"
        ))
    })?;
    let now = received_at(delivery)?;
    let property = cfg.str("ticket_property", "ticket_guid")?;
    let due = Due::new(&cfg)?;

    let sync_key = format!("calendar:{calendar}:sync");
    let stored_token = state_get(&sync_key);
    let mut pending = Waiting::read(calendar);

    let (events, token) = match list(calendar, stored_token.as_deref())? {
        Some(found) => found,
        None => {
            log(
                LogLevel::Info,
                &format!("calendar {calendar}: sync token expired, listing again"),
            );
            list(calendar, None)?.ok_or_else(|| {
                internal(format!(
                    "calendar `{calendar}`: events.list answered 404 or 410"
                ))
            })?
        }
    };
    for event in &events {
        let Some(id) = event.get("id").and_then(Value::as_str) else {
            continue;
        };
        pending.list.retain(|p| p.id != id);
        if event.get("status").and_then(Value::as_str) == Some("cancelled") {
            continue;
        }
        let linked = ["private", "shared"].iter().find_map(|scope| {
            event
                .pointer(&format!("/extendedProperties/{scope}/{property}"))
                .and_then(Value::as_str)
                .filter(|g| !g.trim().is_empty())
        });
        let (Some(guid), Some(start)) = (linked, start_of(event)) else {
            continue;
        };
        pending.list.push(Pending {
            id: id.to_owned(),
            guid: guid.trim().to_owned(),
            start,
            summary: event
                .get("summary")
                .and_then(Value::as_str)
                .unwrap_or("(no title)")
                .to_owned(),
        });
    }

    let actions = due.escalate(&mut pending.list, now);

    if let Some(t) = token.filter(|t| Some(t) != stored_token.as_ref()) {
        write(&sync_key, Some(&t), stored_token.as_deref())?;
    }
    let waits = pending.write()?;
    Watched::read().update(calendar, waits)?;
    mapped(EVENT, actions)
}

/// A scheduled tick (`TICK /tick/{name}`, any name): escalates the
/// remembered events of every watched calendar whose start has come, with
/// no API call — the pending list holds all an escalation needs, and any
/// change to an event reaches it through a notification first. Escalated
/// events leave the list, so each escalates once.
pub fn tick(delivery: &Delivery, config: &Value) -> MapResult {
    let cfg = Section::new("calendar", config)?;
    let due = Due::new(&cfg)?;
    let now = received_at(delivery)?;
    let mut watched = Watched::read();
    if watched.ids.is_empty() {
        return ignored("calendar_nothing_watched");
    }
    let mut actions = Vec::new();
    for calendar in watched.ids.clone() {
        let mut pending = Waiting::read(&calendar);
        actions.extend(due.escalate(&mut pending.list, now));
        let waits = pending.write()?;
        watched.update(&calendar, waits)?;
    }
    if actions.is_empty() {
        return ignored("calendar_nothing_due");
    }
    mapped(EVENT, actions)
}

/// The delivery's `received-at`, in seconds: "now" for the due check.
fn received_at(delivery: &Delivery) -> Result<i64, MapError> {
    epoch_seconds(&delivery.received_at).ok_or_else(|| {
        internal(format!(
            "received-at `{}` is not RFC 3339",
            delivery.received_at
        ))
    })
}

/// When a remembered event is due, and what escalating it says.
struct Due<'c> {
    /// Seconds before the start an event is due.
    lead: i64,
    /// Seconds after the start an event is history.
    grace: i64,
    by: &'c str,
}

impl<'c> Due<'c> {
    fn new(cfg: &Section<'c>) -> Result<Self, MapError> {
        Ok(Due {
            lead: cfg.int("lead_minutes", 0)? * 60,
            grace: cfg.int("grace_hours", 24)? * 3600,
            by: cfg.str("escalated_by", "google-calendar")?,
        })
    }

    /// Escalates the events of `pending` due at `now` and takes them (and
    /// those long past) off the list; the rest wait.
    fn escalate(&self, pending: &mut Vec<Pending>, now: i64) -> Vec<Action> {
        let mut actions = Vec::new();
        pending.retain(|p| {
            if p.start - self.lead > now {
                return true; // not due yet: wait for a later notification or tick
            }
            if p.start >= now - self.grace {
                actions.push(Action::Escalate(Escalate {
                    ticket: guid_ref(&p.guid),
                    escalated_by: self.by.to_owned(),
                    reason: Some(p.summary.clone()),
                }));
            }
            false
        });
        actions
    }
}

/// One calendar's pending list, as read from the state.
struct Waiting {
    key: String,
    stored: Option<String>,
    list: Vec<Pending>,
}

impl Waiting {
    fn read(calendar: &str) -> Self {
        let key = format!("calendar:{calendar}:pending");
        let stored = state_get(&key);
        let list = read_pending(stored.as_deref());
        Waiting { key, stored, list }
    }

    /// Stores the list when it changed; whether events still wait.
    fn write(mut self) -> Result<bool, MapError> {
        let text = write_pending(&mut self.list);
        if text != self.stored {
            write(&self.key, text.as_deref(), self.stored.as_deref())?;
        }
        Ok(text.is_some())
    }
}

/// The calendars with events waiting (state `calendar:watched`, a JSON
/// list of ids).
struct Watched {
    stored: Option<String>,
    ids: Vec<String>,
}

impl Watched {
    fn read() -> Self {
        let stored = state_get(WATCHED);
        let ids = stored
            .as_deref()
            .and_then(|t| serde_json::from_str::<Vec<String>>(t).ok())
            .unwrap_or_default();
        Watched { stored, ids }
    }

    /// Lists `calendar` while events of it wait, and stores the list when
    /// that changed it. A calendar that does not fit is left out with a
    /// warning: its events are still escalated by its notifications.
    fn update(&mut self, calendar: &str, waits: bool) -> Result<(), MapError> {
        let listed = self.ids.iter().any(|c| c == calendar);
        if waits == listed {
            return Ok(());
        }
        if waits {
            self.ids.push(calendar.to_owned());
        } else {
            self.ids.retain(|c| c != calendar);
        }
        let text = (!self.ids.is_empty()).then(|| json!(self.ids).to_string());
        if text.as_ref().is_some_and(|t| t.len() > MAX_PENDING_BYTES) {
            self.ids.retain(|c| c != calendar);
            log(
                LogLevel::Warn,
                &format!("calendar {calendar}: too many calendars watched; ticks skip it"),
            );
            return Ok(());
        }
        write(WATCHED, text.as_deref(), self.stored.as_deref())?;
        self.stored = text;
        Ok(())
    }
}

/// `…/calendars/{id}/events…` → `{id}` (kept percent-encoded, as it goes
/// back into a path).
fn calendar_id(uri: &str) -> Option<&str> {
    let rest = &uri[uri.find("/calendars/")? + "/calendars/".len()..];
    let id = rest.split(['/', '?']).next()?;
    (!id.is_empty()).then_some(id)
}

/// When the event starts: `start.dateTime`, or an all-day event's
/// `start.date` at midnight UTC.
fn start_of(event: &Value) -> Option<i64> {
    if let Some(t) = event.pointer("/start/dateTime").and_then(Value::as_str) {
        return epoch_seconds(t);
    }
    let day = event.pointer("/start/date").and_then(Value::as_str)?;
    epoch_seconds(&format!("{day}T00:00:00Z"))
}

/// Every changed event since `token` (all events without one) and the
/// next sync token; `None` when Google no longer knows the token.
#[allow(clippy::type_complexity)]
fn list(
    calendar: &str,
    token: Option<&str>,
) -> Result<Option<(Vec<Value>, Option<String>)>, MapError> {
    let mut events = Vec::new();
    let mut page: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut path = format!("/calendar/v3/calendars/{calendar}/events?singleEvents=true");
        if let Some(t) = token {
            path.push_str(&format!("&syncToken={}", query_escape(t)));
        }
        if let Some(p) = &page {
            path.push_str(&format!("&pageToken={}", query_escape(p)));
        }
        let Some(answer) = get_unless_gone(&path)? else {
            return Ok(None);
        };
        events.extend(
            answer
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .cloned(),
        );
        match answer.get("nextPageToken").and_then(Value::as_str) {
            Some(p) if !p.is_empty() => page = Some(p.to_owned()),
            _ => {
                let next = answer
                    .get("nextSyncToken")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                return Ok(Some((events, next)));
            }
        }
    }
    // Pages left unread: keep the old token, so the next notification
    // lists these changes again (escalation is idempotent).
    Ok(Some((events, token.map(str::to_owned))))
}

fn read_pending(text: Option<&str>) -> Vec<Pending> {
    let Some(list) = text.and_then(|t| serde_json::from_str::<Value>(t).ok()) else {
        return Vec::new();
    };
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some(Pending {
                id: p.get("id")?.as_str()?.to_owned(),
                guid: p.get("guid")?.as_str()?.to_owned(),
                start: p.get("start")?.as_i64()?,
                summary: p.get("summary")?.as_str()?.to_owned(),
            })
        })
        .collect()
}

/// The pending list as stored (soonest first; the latest dropped, with a
/// warning, when it outgrows the state), `None` when empty.
fn write_pending(pending: &mut Vec<Pending>) -> Option<String> {
    pending.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.id.cmp(&b.id)));
    loop {
        if pending.is_empty() {
            return None;
        }
        let text = Value::Array(
            pending
                .iter()
                .map(
                    |p| json!({"guid": p.guid, "id": p.id, "start": p.start, "summary": p.summary}),
                )
                .collect(),
        )
        .to_string();
        if text.len() <= MAX_PENDING_BYTES {
            return Some(text);
        }
        if let Some(dropped) = pending.pop() {
            log(
                LogLevel::Warn,
                &format!(
                    "calendar: too many linked events waiting; event {} is not watched",
                    dropped.id
                ),
            );
        }
    }
}
