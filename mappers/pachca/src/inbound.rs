//! Pachca webhook payloads → ticket actions.

use mapper_kit::{
    Action, Assign, CreateTicket, Delivery, Field, Fields, MapResult, Resolve, SetFields,
    StatusChange, comment, created_by, first_line, guid_ref, ignored, json_body, malformed, mapped,
    ticket_ref,
};
use serde_json::Value;

use crate::{ButtonAction, Config, no_email, user};

/// Longest subject taken from a message; the whole text stays in the
/// description.
const SUBJECT_MAX_CHARS: usize = 200;

pub(crate) fn map(delivery: &Delivery, cfg: &Config) -> MapResult {
    let body = json_body(delivery)?;
    match body.str_at("/type")? {
        "message" => message(cfg, &body),
        "button" => button(cfg, &body),
        // Reactions, forms, members, link previews, calls: the seed maps
        // none of them.
        other => ignored(&format!("{other}_event")),
    }
}

fn message(cfg: &Config, m: &Value) -> MapResult {
    let event = m.str_at("/event")?;
    if event != "new" {
        // An edit or a deletion changes nothing already filed.
        return ignored(&format!("message_{event}"));
    }
    // A service message (someone joined, the chat was renamed) has no
    // author.
    let author = match m.pointer("/user_id") {
        None | Some(Value::Null) => None,
        Some(_) => Some(m.id_at("/user_id")?),
    };
    let Some(author) = author.filter(|a| a != "0") else {
        return ignored("service_message");
    };
    if cfg.is_bot(&author) {
        return ignored("own_message");
    }
    let id = m.id_at("/id")?;
    let text = m.opt_str("/content")?.unwrap_or("");
    let thread_root = match m.pointer("/thread") {
        None | Some(Value::Null) => None,
        Some(_) => Some(m.id_at("/thread/message_id")?),
    };
    if thread_root.is_none() && m.opt_str("/entity_type")? == Some("thread") {
        return Err(malformed(
            "field `/thread` is missing on a message in a thread",
        ));
    }
    let chat = m.id_at("/chat_id")?;
    if thread_root.is_none()
        && cfg
            .chat_ids
            .as_ref()
            .is_some_and(|chats| !chats.contains(&chat))
    {
        return ignored("message_other_chat");
    }
    if thread_root.is_some() && text.trim().is_empty() {
        // A file alone in the thread: nothing to say on the ticket.
        return ignored("thread_file");
    }
    let who = user(cfg, &author)?;
    if who.bot {
        return ignored("bot_message");
    }
    let email = who.email.ok_or_else(|| no_email(cfg, &author))?;
    if let Some(root) = thread_root {
        let ticket = ticket_ref(Some(root), None);
        return mapped(
            "thread_reply",
            vec![comment(&ticket, text.trim().to_owned(), email, Some(id))],
        );
    }
    let subject =
        first_line(text, SUBJECT_MAX_CHARS).unwrap_or_else(|| format!("Сообщение в Пачке #{id}"));
    let field = |name: &str, value: &str| Field {
        name: name.to_owned(),
        value: value.to_owned(),
    };
    let actions = vec![
        Action::Create(CreateTicket {
            subject,
            description: text.trim().to_owned(),
            priority: cfg.priority,
            ticket_type: cfg.ticket_type.clone(),
            requested_by: Some(email.clone()),
            external_id: Some(id.clone()),
            labels: vec!["pachca".into()],
        }),
        Action::SetFields(SetFields {
            ticket: created_by(0),
            fields: vec![
                field("pachca_message_id", &id),
                field("pachca_user_id", &author),
                field("pachca_chat_id", &chat),
            ],
            changed_by: email,
        }),
    ];
    mapped("message_created", actions)
}

/// A click on a button the outbound rules posted: its `data` is
/// `{"ticket_guid", "action", "status"}` (`ticket_guid` names the ticket
/// the reply is about; «Мои заявки» does not need it, but it tells our
/// buttons from another bot's all the same).
fn button(cfg: &Config, b: &Value) -> MapResult {
    let user_id = b.id_at("/user_id")?;
    if cfg.is_bot(&user_id) {
        return ignored("own_button");
    }
    let raw = b.opt_str("/data")?.unwrap_or("");
    // Another bot's buttons in the same chat carry data of their own.
    let Ok(data) = serde_json::from_str::<Value>(raw) else {
        return ignored("button_other");
    };
    let Some(guid) = data["ticket_guid"].as_str().filter(|g| !g.is_empty()) else {
        return ignored("button_other");
    };
    let action = ButtonAction::parse(data["action"].as_str(), data["status"].as_str())
        .map_err(|why| malformed(format!("field `/data` (`{raw}`): {why}")))?;
    if action == ButtonAction::MyRequests {
        // Whoever clicks reads their own requests: no ticket changes, so
        // no e-mail is needed.
        return crate::requests::my_requests(cfg, b, &user_id);
    }
    let email = user(cfg, &user_id)?
        .email
        .ok_or_else(|| no_email(cfg, &user_id))?;
    let ticket = guid_ref(guid);
    let status = |status: &str| {
        Action::StatusChange(StatusChange {
            ticket: ticket.clone(),
            status: status.to_owned(),
            changed_by: email.clone(),
        })
    };
    let actions = match &action {
        ButtonAction::Take => vec![
            Action::Assign(Assign {
                ticket: ticket.clone(),
                assigned_to: email.clone(),
                assigned_by: email.clone(),
            }),
            status(&cfg.take_status),
        ],
        ButtonAction::Resolve => vec![Action::Resolve(Resolve {
            ticket: ticket.clone(),
            resolved_by: email.clone(),
        })],
        ButtonAction::Status(s) => vec![status(s)],
        ButtonAction::MyRequests => Vec::new(),
    };
    mapped(&format!("button_{}", action.name()), actions)
}
