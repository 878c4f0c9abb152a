//! «Мои заявки»: the clicker's open tickets, posted as one message where
//! the button was clicked.
//!
//! The tickets come from the host (`Sluice-Api: tickets`,
//! `GET /v1/tickets?field.pachca_user_id=…`: the tickets their messages
//! opened), read and posted while mapping the click — there is no ticket
//! change to hang an outbound request on. A mapping may run more than once
//! (its apply retried after a store fault, a replay), so the click's state
//! key `my_requests:{trigger_id}` is checked first and written after the
//! post; it commits with the delivery's outcome. The window left: a post
//! whose mapping's outcome never commits (the host dies in between) is
//! posted again by the retry — at least once, as every send is.

use mapper_kit::{
    Fields, MapError, MapResult, find_tickets, id_text, ignored, internal, query_escape, send_json,
    state_get, state_set,
};
use serde_json::{Value, json};

use crate::Config;

/// The event a click is recorded as; it maps to no action.
const EVENT: &str = "button_my_requests";

/// Tickets listed at most; the rest are counted.
const LIST_MAX: usize = 20;

/// Tickets read per page, and pages read at most (three calls of the
/// call's sixteen): someone with more than 300 tickets sees the open ones
/// among their 300 most recently updated.
const PAGE_SIZE: u32 = 100;
const PAGES_MAX: usize = 3;

/// State keys are at most 128 bytes.
const TRIGGER_MAX: usize = 100;

/// The custom field the inbound rules set on a ticket from a message.
const USER_FIELD: &str = "pachca_user_id";

pub(crate) fn my_requests(cfg: &Config, click: &Value, user_id: &str) -> MapResult {
    let key = click_key(click, user_id)?;
    if state_get(&key).is_some() {
        // This click's list is posted already: a retried mapping.
        return ignored(EVENT);
    }
    let chat = click.id_at("/chat_id")?;
    let (open, more) = open_tickets(cfg, user_id)?;
    let content = listing(cfg, &open, more);
    // `discussion` with any chat id posts into that chat, a thread's own
    // chat included: the list lands where the button was.
    let entity = chat.parse::<u64>().map_or(json!(chat), |n| json!(n));
    let answer = send_json(
        "POST",
        "/messages",
        Some(
            &json!({"message": {"entity_type": "discussion", "entity_id": entity, "content": content}}),
        ),
    )?;
    let posted = answer
        .pointer("/data/id")
        .and_then(id_text)
        .ok_or_else(|| internal("POST /messages: answer has no `/data/id`"))?;
    // Lost only to a mapping of this same click racing this one; either
    // way the list is posted.
    state_set(&key, Some(posted.as_str()), None);
    ignored(EVENT)
}

/// The click's state key: Pachca's `trigger_id` is one per click.
fn click_key(click: &Value, user_id: &str) -> Result<String, MapError> {
    let trigger = match click.opt_str("/trigger_id")? {
        Some(t) if !t.trim().is_empty() => t.trim().chars().take(TRIGGER_MAX).collect(),
        // Without one: the message, the user and the second they clicked.
        _ => format!(
            "{}-{user_id}-{}",
            click.id_at("/message_id")?,
            click
                .pointer("/webhook_timestamp")
                .and_then(id_text)
                .unwrap_or_default()
        ),
    };
    Ok(format!("my_requests:{trigger}"))
}

/// The user's tickets whose status is not closed, most recently updated
/// first, at most [`LIST_MAX`]; and how many more there are.
fn open_tickets(cfg: &Config, user_id: &str) -> Result<(Vec<Value>, usize), MapError> {
    let mut open = Vec::new();
    let mut more = 0;
    let mut cursor: Option<String> = None;
    for _ in 0..PAGES_MAX {
        let mut query = format!(
            "field.{USER_FIELD}={}&limit={PAGE_SIZE}",
            query_escape(user_id)
        );
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={}", query_escape(c)));
        }
        let page = find_tickets(&query)?;
        let items = page["items"]
            .as_array()
            .ok_or_else(|| internal("GET /v1/tickets (tickets): answer has no `items`"))?;
        for t in items {
            let status = t["status"].as_str().unwrap_or_default();
            if cfg.closed_statuses.iter().any(|c| c == status) {
                continue;
            }
            if open.len() < LIST_MAX {
                open.push(t.clone());
            } else {
                more += 1;
            }
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    Ok((open, more))
}

/// The message: one line per ticket — its Tracker issue's link when it
/// has one, its subject and its status.
fn listing(cfg: &Config, open: &[Value], more: usize) -> String {
    if open.is_empty() {
        return "📋 У вас нет открытых заявок.".into();
    }
    let mut out = format!("📋 Ваши открытые заявки ({}):", open.len() + more);
    for t in open {
        let issue = t["links"].as_array().and_then(|links| {
            links
                .iter()
                .find(|l| l["provider"].as_str() == Some(cfg.tracker_provider.as_str()))
                .and_then(|l| l["external_id"].as_str())
        });
        let subject = t["subject"].as_str().unwrap_or_default();
        let status = cfg.status_name(t["status"].as_str().unwrap_or_default());
        out.push_str("\n• ");
        if let Some(key) = issue {
            out.push_str(&cfg.issue_link(key));
            out.push(' ');
        }
        out.push_str(&format!("{subject} — {status}"));
    }
    if more > 0 {
        out.push_str(&format!("\n…и ещё {more}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(subject: &str, status: &str, issue: Option<&str>) -> Value {
        let mut links = vec![json!({"provider": "pachca", "external_id": "1"})];
        if let Some(key) = issue {
            links.push(json!({"provider": "tracker", "external_id": key}));
        }
        json!({"subject": subject, "status": status, "links": links})
    }

    #[test]
    fn the_list_names_each_ticket_its_issue_and_status() {
        let cfg = Config::parse(r#"{"status_names": {"ON_HOLD": "Ждём ответа"}}"#).expect("config");
        let open = [
            ticket("Не работает VPN", "IN_PROGRESS", Some("SERVICEDESK-12")),
            ticket("Нужен доступ", "ON_HOLD", None),
        ];
        assert_eq!(
            listing(&cfg, &open, 0),
            "📋 Ваши открытые заявки (2):\n\
             • [SERVICEDESK-12](https://tracker.yandex.ru/SERVICEDESK-12) Не работает VPN — В работе\n\
             • Нужен доступ — Ждём ответа"
        );
        assert_eq!(
            listing(&cfg, &open[..1], 3),
            "📋 Ваши открытые заявки (4):\n\
             • [SERVICEDESK-12](https://tracker.yandex.ru/SERVICEDESK-12) Не работает VPN — В работе\n\
             …и ещё 3"
        );
        assert_eq!(listing(&cfg, &[], 0), "📋 У вас нет открытых заявок.");
    }

    #[test]
    fn a_click_is_keyed_by_its_trigger() {
        let click = json!({"trigger_id": "a1b2", "message_id": 5, "webhook_timestamp": 9});
        assert_eq!(click_key(&click, "2345").expect("key"), "my_requests:a1b2");
        let click = json!({"message_id": 5, "webhook_timestamp": 9});
        assert_eq!(
            click_key(&click, "2345").expect("key"),
            "my_requests:5-2345-9"
        );
    }
}
