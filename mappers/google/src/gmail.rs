//! Gmail: a Pub/Sub push announces `{emailAddress, historyId}` (base64 in
//! `message.data`). The new messages are read with `history.list` from the
//! cursor stored in the provider's state and `messages.get`; each one that
//! passes the filters opens a ticket — subject, plain-text body, the
//! sender as requester — with the sender's I sign-off for Outcome
//! Monitoring (seed 000's "Gmail Sender"). The cursor moves to the
//! mailbox's history id in the same commit as the tickets.
//!
//! The first notification of a mailbox has no cursor to read from: it
//! stores one and maps nothing (mail from then on is read). A cursor Gmail
//! no longer knows (404: history is kept about a week) is reset the same
//! way. A notification older than the cursor (Pub/Sub does not keep order)
//! changes nothing.

use base64::Engine as _;
use mapper_kit::{
    Action, CreateTicket, Delivery, Fields, LogLevel, MapError, MapResult, RaciRole, SignoffStatus,
    TicketRef, email_in_author, ignored, internal, log, malformed, mapped, query_escape, signoff,
    state_get,
};
use serde_json::Value;

use crate::api::{get_unless_gone, set_state};
use crate::text::{Section, any_in, clip};

const EVENT: &str = "email_received";
/// History pages read per notification (each is one API call).
const MAX_PAGES: usize = 3;
/// Longest description kept from a message body.
const MAX_BODY_CHARS: usize = 20_000;

pub fn map(_delivery: &Delivery, body: &Value, config: &Value) -> MapResult {
    let cfg = Section::new("gmail", config)?;
    let note = announced(body)?;
    let mailbox = note
        .str_at("/emailAddress")
        .map_err(|_| malformed("`message.data` has no string `emailAddress`"))?;
    let pushed = history_id(note.get("historyId")).ok_or_else(|| {
        malformed("`message.data` has no `historyId` (a number or numeric string)")
    })?;
    let key = format!("gmail:{mailbox}:history");
    let stored = state_get(&key);
    let Some(cursor) = stored.as_deref().and_then(|c| c.parse::<u64>().ok()) else {
        set(&key, pushed, stored.as_deref())?;
        return ignored(EVENT);
    };
    if pushed <= cursor {
        return ignored(EVENT);
    }
    let user = query_escape(cfg.str("user", mailbox)?);
    let label = cfg.str("label", "INBOX")?;
    let max = usize::try_from(cfg.int("max_messages", 10)?.max(1)).unwrap_or(1);

    let Some(history) = read_history(&user, cursor, label, max)? else {
        log(
            LogLevel::Warn,
            &format!("gmail history of {mailbox} from {cursor} is gone; reading from {pushed} on"),
        );
        set(&key, pushed, stored.as_deref())?;
        return ignored(EVENT);
    };
    let mut actions = Vec::new();
    for id in &history.messages {
        let path = format!(
            "/gmail/v1/users/{user}/messages/{}?format=full",
            query_escape(id)
        );
        let Some(message) = get_unless_gone(&path)? else {
            continue; // deleted since: nothing to open a ticket for
        };
        if let Some(m) = Mail::read(&message, &cfg, mailbox)? {
            m.actions(id, &cfg, &mut actions)?;
        }
    }
    set(&key, history.next_cursor.max(cursor), stored.as_deref())?;
    mapped(EVENT, actions)
}

/// The `{emailAddress, historyId}` of `message.data`.
fn announced(body: &Value) -> Result<Value, MapError> {
    let data = body.str_at("/message/data")?.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(data))
        .map_err(|_| malformed("body field `message.data` is not base64"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| malformed(format!("body field `message.data` is not base64 JSON: {e}")))
}

/// Gmail writes history ids as strings in some answers, numbers in others.
fn history_id(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn set(key: &str, value: u64, expected: Option<&str>) -> Result<(), MapError> {
    set_state(key, Some(&value.to_string()), expected)
}

struct History {
    /// Added messages in history order, each once.
    messages: Vec<String>,
    /// Where the next notification reads from.
    next_cursor: u64,
}

/// The messages added since `cursor` carrying `label`, at most `max`
/// (whole history records: the cursor then stops after the last one read,
/// and the rest is read on the next notification); `None` when Gmail no
/// longer has history from `cursor`.
fn read_history(
    user: &str,
    cursor: u64,
    label: &str,
    max: usize,
) -> Result<Option<History>, MapError> {
    let mut messages: Vec<String> = Vec::new();
    let mut page: Option<String> = None;
    let mut next_cursor = cursor;
    for _ in 0..MAX_PAGES {
        let mut path = format!(
            "/gmail/v1/users/{user}/history?startHistoryId={cursor}&historyTypes=messageAdded"
        );
        if !label.is_empty() {
            path.push_str(&format!("&labelId={}", query_escape(label)));
        }
        if let Some(p) = &page {
            path.push_str(&format!("&pageToken={}", query_escape(p)));
        }
        let Some(answer) = get_unless_gone(&path)? else {
            return Ok(None);
        };
        for record in answer
            .list("/history")
            .map_err(|e| internal(format!("GET {path}: {}", e.message)))?
        {
            let added: Vec<String> = record
                .get("messagesAdded")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|a| {
                    label.is_empty()
                        || a.pointer("/message/labelIds")
                            .and_then(Value::as_array)
                            .is_some_and(|ls| ls.iter().any(|l| l == label))
                })
                .filter_map(|a| a.pointer("/message/id").and_then(Value::as_str))
                .filter(|id| !messages.iter().any(|m| m == id))
                .map(str::to_owned)
                .collect();
            if !messages.is_empty() && messages.len() + added.len() > max {
                // The rest waits: read from this record on next time.
                return Ok(Some(History {
                    messages,
                    next_cursor,
                }));
            }
            messages.extend(added);
            if let Some(id) = history_id(record.get("id")) {
                next_cursor = next_cursor.max(id);
            }
        }
        match answer.get("nextPageToken").and_then(Value::as_str) {
            Some(p) if !p.is_empty() => page = Some(p.to_owned()),
            // The last page: the mailbox's history id is where the next
            // notification reads from. With pages left unread (the page
            // limit), the last record read is.
            _ => {
                next_cursor =
                    next_cursor.max(history_id(answer.get("historyId")).unwrap_or(cursor));
                break;
            }
        }
    }
    Ok(Some(History {
        messages,
        next_cursor,
    }))
}

/// One received message, as a ticket will say it.
struct Mail {
    subject: String,
    sender: String,
    body: String,
}

impl Mail {
    /// The message, or `None` when a filter, an auto-reply or the mailbox
    /// itself as sender rules it out.
    fn read(message: &Value, cfg: &Section, mailbox: &str) -> Result<Option<Mail>, MapError> {
        let header = |name: &str| {
            message
                .pointer("/payload/headers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|h| {
                    h.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .and_then(|h| h.get("value").and_then(Value::as_str))
                .unwrap_or("")
        };
        let from = header("From");
        let sender = email_in_author(from)
            .unwrap_or(from)
            .trim()
            .to_ascii_lowercase();
        if !sender.contains('@') {
            let id = message.get("id").and_then(Value::as_str).unwrap_or("?");
            return Err(internal(format!(
                "gmail message {id} has no sender address in `From`"
            )));
        }
        let subject = header("Subject").trim().to_owned();
        // Out-of-office answers and the mailbox's own mail open nothing.
        let auto = header("Auto-Submitted");
        if (!auto.is_empty() && !auto.eq_ignore_ascii_case("no"))
            || sender.eq_ignore_ascii_case(mailbox)
        {
            return Ok(None);
        }
        if !any_in(from, &cfg.strings("from")?) || !any_in(&subject, &cfg.strings("subject")?) {
            return Ok(None);
        }
        let body = message
            .get("payload")
            .and_then(plain_text)
            .or_else(|| {
                message
                    .get("snippet")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        Ok(Some(Mail {
            subject: if subject.is_empty() {
                "(no subject)".into()
            } else {
                clip(&subject, 250)
            },
            sender,
            body: clip(&body.replace("\r\n", "\n"), MAX_BODY_CHARS),
        }))
    }

    fn actions(self, id: &str, cfg: &Section, out: &mut Vec<Action>) -> Result<(), MapError> {
        let index = u32::try_from(out.len()).unwrap_or(u32::MAX);
        out.push(Action::Create(CreateTicket {
            subject: self.subject,
            description: self.body,
            priority: cfg.priority("priority")?,
            ticket_type: cfg.str("ticket_type", "SUPPORT")?.to_owned(),
            requested_by: Some(self.sender.clone()),
            external_id: Some(id.to_owned()),
            labels: vec!["gmail".into()],
        }));
        let ticket = TicketRef {
            guid: None,
            external_id: Some(id.to_owned()),
            branch: None,
            from_action: Some(index),
        };
        out.push(signoff(
            &ticket,
            cfg.str("activity", "Outcome Monitoring")?,
            RaciRole::Informed,
            self.sender,
            SignoffStatus::Pending,
        ));
        Ok(())
    }
}

/// The first `text/plain` part of a message payload, decoded.
fn plain_text(part: &Value) -> Option<String> {
    let mime = part.get("mimeType").and_then(Value::as_str).unwrap_or("");
    if mime.eq_ignore_ascii_case("text/plain") {
        let data = part.pointer("/body/data").and_then(Value::as_str)?;
        let bytes = base64::engine::general_purpose::URL_SAFE
            .decode(data)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(data))
            .ok()?;
        return Some(String::from_utf8_lossy(&bytes).into_owned());
    }
    part.get("parts")
        .and_then(Value::as_array)?
        .iter()
        .find_map(plain_text)
}
