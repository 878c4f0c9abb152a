//! Pachca mapping rules, both ways: seed 3's service desk in a Pachca chat.
//!
//! Inbound (the bot's outgoing webhook; the host has checked
//! `Pachca-Signature` and the 60 s `webhook_timestamp` window). A new
//! message in a configured chat creates a ticket (`message_created`): the
//! first line is the subject, the text the description, the author the
//! requester, the message id the ticket's Pachca link, and the custom fields
//! `pachca_message_id`, `pachca_user_id` and `pachca_chat_id` are set (the
//! seed's search "my requests" is `GET /v1/tickets?field.pachca_user_id=…`).
//! A message in a thread is a comment on the ticket of the thread's root
//! message (`thread_reply`, its id the comment's, so the host's own thread
//! messages come back as echoes). A click on one of the buttons the
//! outbound rules post is `button_take` (assign to the clicking user and
//! move to `take_status`), `button_resolve` (resolve) or `button_status`
//! (the status the button names); the button's `data` carries the ticket's
//! guid. Ignored: the bot's own messages (`bot_user_id`), other bots'
//! (`GET /users/{id}` says `bot`), service messages (no author), edits and
//! deletions, messages in other chats, buttons of other bots, and every
//! other event type. Authors' e-mails come from the people directory
//! (identity `{provider}:{user_id}`), else `GET /users/{id}`.
//!
//! Outbound. When the ticket's Tracker issue is linked (`linked`, from the
//! Tracker rules' mirror capture), the reply: the original message's thread
//! (`POST /messages/{id}/thread`, which answers the existing thread when
//! there is one) gets a message with the key and link and the
//! buttons. A comment made elsewhere (a Tracker comment) is posted into
//! the thread as the seed's "🔔 Добавлен комментарий:\nАвтор: {name}\n{text}",
//! each `@login` replaced by the Pachca user's mention (see
//! [`outbound::mentions`]). Both messages are captured as echoes. A ticket
//! with no Pachca message sends nothing.
//!
//! Config keys (all optional): `provider` (default `pachca`),
//! `tracker_provider` (default `tracker`), `bot_user_id` (the seed's
//! `BOT_USER_ID`), `chat_ids` (chats whose messages open tickets; unset:
//! every chat the bot is in), `email_domain` (the seed's
//! `PACHCA_EMAIL_DOMAIN`: a Tracker login's e-mail is `login@domain` when
//! the directory has none), `tracker_url` (default
//! `https://tracker.yandex.ru`), `take_status` (default `IN_PROGRESS`),
//! `buttons` (a list of `{"text", "action": "take" | "resolve" | "status",
//! "status"}`; default «Взять в работу» and «Решено»), `ticket_type`
//! (default `TASK`), `default_priority` (default `MEDIUM`).

mod inbound;
mod outbound;

use mapper_kit::{
    Delivery, Guest, MapError, MapResult, OutboundRequest, Priority, TicketChange, bad_config,
    config_priority, config_str, get_json, id_text, parse_config, person_by_identity,
};
use serde_json::Value;

struct Pachca;

mapper_kit::bindings::export!(Pachca with_types_in mapper_kit::bindings);

impl Guest for Pachca {
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

/// What a button does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ButtonAction {
    /// Assign to whoever clicked, and move to `take_status`.
    Take,
    Resolve,
    Status(String),
}

impl ButtonAction {
    fn name(&self) -> &'static str {
        match self {
            ButtonAction::Take => "take",
            ButtonAction::Resolve => "resolve",
            ButtonAction::Status(_) => "status",
        }
    }
}

#[derive(Debug, Clone)]
struct Button {
    text: String,
    action: ButtonAction,
}

/// The mapper config, with defaults.
struct Config {
    provider: String,
    tracker_provider: String,
    bot_user_id: Option<String>,
    chat_ids: Option<Vec<String>>,
    email_domain: Option<String>,
    tracker_url: String,
    take_status: String,
    buttons: Vec<Button>,
    ticket_type: String,
    priority: Priority,
}

impl Config {
    fn parse(text: &str) -> Result<Config, MapError> {
        let v = parse_config(text)?;
        let s = |key: &str, default: &str| config_str(&v, key, default).to_owned();
        let chat_ids = match &v["chat_ids"] {
            Value::Null => None,
            Value::Array(list) => Some(
                list.iter()
                    .map(id_text)
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        bad_config("mapper_config.chat_ids must be a list of chat ids")
                    })?,
            ),
            _ => {
                return Err(bad_config(
                    "mapper_config.chat_ids must be a list of chat ids",
                ));
            }
        };
        Ok(Config {
            provider: s("provider", "pachca"),
            tracker_provider: s("tracker_provider", "tracker"),
            bot_user_id: id_text(&v["bot_user_id"]),
            chat_ids,
            email_domain: v["email_domain"]
                .as_str()
                .map(|d| d.trim().trim_start_matches('@').to_owned())
                .filter(|d| !d.is_empty()),
            tracker_url: s("tracker_url", "https://tracker.yandex.ru")
                .trim_end_matches('/')
                .to_owned(),
            take_status: s("take_status", "IN_PROGRESS"),
            buttons: buttons(&v["buttons"])?,
            ticket_type: s("ticket_type", "TASK"),
            priority: config_priority(&v, "default_priority", Priority::Medium)?,
        })
    }

    fn is_bot(&self, user: &str) -> bool {
        self.bot_user_id.as_deref() == Some(user)
    }
}

/// `mapper_config.buttons`, or the seed's two.
fn buttons(v: &Value) -> Result<Vec<Button>, MapError> {
    let Some(list) = v.as_array() else {
        if !v.is_null() {
            return Err(bad_config("mapper_config.buttons must be a list"));
        }
        return Ok(vec![
            Button {
                text: "Взять в работу".into(),
                action: ButtonAction::Take,
            },
            Button {
                text: "Решено".into(),
                action: ButtonAction::Resolve,
            },
        ]);
    };
    list.iter()
        .enumerate()
        .map(|(i, b)| {
            let at = |what: &str| bad_config(format!("mapper_config.buttons[{i}]: {what}"));
            let text = b["text"]
                .as_str()
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| at("`text` is missing"))?;
            let action = match b["action"].as_str() {
                Some("take") => ButtonAction::Take,
                Some("resolve") => ButtonAction::Resolve,
                Some("status") => ButtonAction::Status(
                    b["status"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| at("a `status` button needs `status`"))?
                        .to_owned(),
                ),
                _ => return Err(at("`action` must be take, resolve or status")),
            };
            Ok(Button {
                text: text.to_owned(),
                action,
            })
        })
        .collect()
}

/// A Pachca user as `GET /users/{id}` describes them.
struct User {
    email: Option<String>,
    bot: bool,
}

/// Pachca user `id`: the people directory first, else `GET /users/{id}`.
fn user(cfg: &Config, id: &str) -> Result<User, MapError> {
    if let Some(person) = person_by_identity(&cfg.provider, id) {
        return Ok(User {
            email: Some(person.email),
            bot: false,
        });
    }
    let answer = get_json(&format!("/users/{id}"))?;
    Ok(User {
        email: answer
            .pointer("/data/email")
            .and_then(Value::as_str)
            .filter(|e| e.contains('@'))
            .map(str::to_owned),
        bot: answer.pointer("/data/bot").and_then(Value::as_bool) == Some(true),
    })
}

/// The error for a person with no e-mail anywhere.
fn no_email(cfg: &Config, id: &str) -> MapError {
    bad_config(format!(
        "no e-mail for pachca user `{id}`: add them to the people directory \
         (identity {}:{id}) or give the bot's token the scope to read users",
        cfg.provider
    ))
}
