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
//! there is one) gets a message with the issue's key and link and the
//! buttons. A comment made elsewhere (a Tracker comment) is posted into
//! the thread as the seed's "🔔 Добавлен комментарий:\nАвтор: {name}\n{text}",
//! each `@login` replaced by the Pachca user's mention (see
//! [`outbound::mentions`]). Both messages are captured as echoes. A ticket
//! with no Pachca message sends nothing. A status change made anywhere but
//! in Pachca (a Tracker transition, the ticket API) is announced in the
//! thread as "🔄 Статус: {name}" (an echo too); Pachca's own buttons are
//! not announced back (the host offers no change to its origin).
//!
//! «Мои заявки» (`button_my_requests`): the clicker's open tickets — read
//! from the host's tickets (`Sluice-Api: tickets`, `GET
//! /v1/tickets?field.pachca_user_id=…`, which the operator allows with
//! `api.read_tickets: true`), statuses outside `closed_statuses` — are
//! posted as one message where the button was clicked (`POST /messages`
//! to the click's chat, a thread's own chat included) while mapping; the
//! click changes no ticket, so the delivery ends `ignored: filtered`. The
//! mapper state key `my_requests:{trigger_id}`, committed with that
//! outcome, keeps a retried mapping of the same click from posting again.
//!
//! Config keys (all optional): `provider` (default `pachca`),
//! `tracker_provider` (default `tracker`), `bot_user_id` (the seed's
//! `BOT_USER_ID`), `chat_ids` (chats whose messages open tickets; unset:
//! every chat the bot is in), `email_domain` (the seed's
//! `PACHCA_EMAIL_DOMAIN`: a Tracker login's e-mail is `login@domain` when
//! the directory has none), `y360_org_id` (the seed's `Y360_ORG_ID`: a
//! login neither the directory nor `login@email_domain` finds in Pachca is
//! looked up in the Yandex 360 directory, through the provider's extra API
//! `y360_api`, default `y360`), `tracker_url` (default
//! `https://tracker.yandex.ru`), `take_status` (default `IN_PROGRESS`),
//! `buttons` (a list of `{"text", "action": "take" | "resolve" | "status" |
//! "my_requests", "status"}`; default «Взять в работу», «Решено» and «Мои
//! заявки»), `status_names` (ticket status → the name notices and lists
//! show, over Russian defaults: NEW «Новая», IN_PROGRESS «В работе», …),
//! `closed_statuses` (statuses «Мои заявки» leaves out; default RESOLVED,
//! CLOSED, CANCELLED), `ticket_type` (default `TASK`), `default_priority`
//! (default `MEDIUM`).

mod inbound;
mod outbound;
mod requests;
mod y360;

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
    /// List the clicker's open tickets where they clicked.
    MyRequests,
}

impl ButtonAction {
    fn name(&self) -> &'static str {
        match self {
            ButtonAction::Take => "take",
            ButtonAction::Resolve => "resolve",
            ButtonAction::Status(_) => "status",
            ButtonAction::MyRequests => "my_requests",
        }
    }

    /// The action a button's `action` names; a `status` button needs its
    /// `status`, given by `status`.
    fn parse(action: Option<&str>, status: Option<&str>) -> Result<ButtonAction, &'static str> {
        match action {
            Some("take") => Ok(ButtonAction::Take),
            Some("resolve") => Ok(ButtonAction::Resolve),
            Some("my_requests") => Ok(ButtonAction::MyRequests),
            Some("status") => match status.filter(|s| !s.is_empty()) {
                Some(s) => Ok(ButtonAction::Status(s.to_owned())),
                None => Err("a `status` button needs `status`"),
            },
            _ => Err("`action` must be take, resolve, status or my_requests"),
        }
    }
}

/// Names of the default workflow's statuses, as Pachca users read them.
const STATUS_NAMES: [(&str, &str); 10] = [
    ("NEW", "Новая"),
    ("TRIAGED", "Разобрана"),
    ("IN_PROGRESS", "В работе"),
    ("ON_HOLD", "Ожидание"),
    ("QA", "Проверка"),
    ("DEPLOYED", "Выпущена"),
    ("ESCALATED", "Эскалирована"),
    ("RESOLVED", "Решена"),
    ("CLOSED", "Закрыта"),
    ("CANCELLED", "Отменена"),
];

/// The statuses «Мои заявки» leaves out by default.
const CLOSED_STATUSES: [&str; 3] = ["RESOLVED", "CLOSED", "CANCELLED"];

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
    /// The Yandex 360 organisation whose directory resolves logins.
    y360_org_id: Option<String>,
    /// The provider's extra API that reaches Yandex 360.
    y360_api: String,
    tracker_url: String,
    take_status: String,
    buttons: Vec<Button>,
    /// Ticket status → its name in notices and lists.
    status_names: Vec<(String, String)>,
    closed_statuses: Vec<String>,
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
        let y360_org_id = match &v["y360_org_id"] {
            Value::Null => None,
            // An unset `${Y360_ORG_ID}` left empty: no directory.
            Value::String(s) if s.trim().is_empty() => None,
            other => Some(
                id_text(other)
                    .map(|id| id.trim().to_owned())
                    .filter(|id| id.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| {
                        bad_config("mapper_config.y360_org_id must be an organisation id (digits)")
                    })?,
            ),
        };
        let mut status_names: Vec<(String, String)> = STATUS_NAMES
            .iter()
            .map(|(k, n)| ((*k).to_owned(), (*n).to_owned()))
            .collect();
        match &v["status_names"] {
            Value::Null => {}
            Value::Object(names) => {
                for (status, name) in names {
                    let name = name
                        .as_str()
                        .filter(|n| !n.trim().is_empty())
                        .ok_or_else(|| {
                            bad_config(format!(
                                "mapper_config.status_names.{status} must be a name"
                            ))
                        })?;
                    status_names.retain(|(k, _)| k != status);
                    status_names.push((status.clone(), name.to_owned()));
                }
            }
            _ => {
                return Err(bad_config(
                    "mapper_config.status_names must map statuses to names",
                ));
            }
        }
        let closed_statuses = match &v["closed_statuses"] {
            Value::Null => CLOSED_STATUSES.iter().map(|s| (*s).to_owned()).collect(),
            Value::Array(list) => list
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad_config("mapper_config.closed_statuses must list statuses"))?,
            _ => {
                return Err(bad_config(
                    "mapper_config.closed_statuses must list statuses",
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
            y360_org_id,
            y360_api: s("y360_api", "y360"),
            tracker_url: s("tracker_url", "https://tracker.yandex.ru")
                .trim_end_matches('/')
                .to_owned(),
            take_status: s("take_status", "IN_PROGRESS"),
            buttons: buttons(&v["buttons"])?,
            status_names,
            closed_statuses,
            ticket_type: s("ticket_type", "TASK"),
            priority: config_priority(&v, "default_priority", Priority::Medium)?,
        })
    }

    fn is_bot(&self, user: &str) -> bool {
        self.bot_user_id.as_deref() == Some(user)
    }

    /// The name of ticket status `status` for people; the status itself
    /// when none is configured.
    fn status_name<'a>(&'a self, status: &'a str) -> &'a str {
        self.status_names
            .iter()
            .find(|(k, _)| k == status)
            .map_or(status, |(_, n)| n.as_str())
    }

    /// A Tracker issue's link, as messages show it.
    fn issue_link(&self, key: &str) -> String {
        format!("[{key}]({}/{key})", self.tracker_url)
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
            Button {
                text: "Мои заявки".into(),
                action: ButtonAction::MyRequests,
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
            let action =
                ButtonAction::parse(b["action"].as_str(), b["status"].as_str()).map_err(at)?;
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
