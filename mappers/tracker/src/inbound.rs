//! The Tracker trigger's request body → ticket actions.

use mapper_kit::{
    Action, Delivery, Fields, MapError, MapResult, StatusChange, comment, ignored, json_body,
    malformed, mapped, ticket_ref,
};
use serde_json::Value;

use crate::Config;

pub(crate) fn map(delivery: &Delivery, cfg: &Config) -> MapResult {
    let body = json_body(delivery)?;
    let event = body.str_at("/event")?;
    match event {
        "comment_created" | "issueCommentEvent" => comment_created(cfg, &body),
        "status_changed" => status_changed(cfg, &body),
        // A trigger on other conditions (an issue created, a field edited):
        // nothing the seed maps.
        other => ignored(other),
    }
}

fn comment_created(cfg: &Config, body: &Value) -> MapResult {
    let key = body.str_at("/issue/key")?;
    let id = body.id_at("/comment/id")?;
    let author = login(body, "/comment/author")?;
    if cfg.bot_login.as_deref() == Some(author.as_str()) {
        return ignored("own_comment");
    }
    let text = body.opt_str("/comment/text")?.unwrap_or("").trim();
    if text.is_empty() {
        return ignored("empty_comment");
    }
    let ticket = ticket_ref(Some(key.to_owned()), None);
    let by = cfg.person(&author);
    mapped(
        "comment_created",
        vec![comment(&ticket, text.to_owned(), by, Some(id))],
    )
}

fn status_changed(cfg: &Config, body: &Value) -> MapResult {
    let key = body.str_at("/issue/key")?;
    // `{{issue.status.key}}` gives the key; a whole status object is read
    // too.
    let status = match body.req("/issue/status")? {
        Value::Object(_) => body.str_at("/issue/status/key")?,
        _ => body.str_at("/issue/status")?,
    };
    let Some(mapped_status) = cfg.status_of(status) else {
        return ignored("status_unmapped");
    };
    let actor = match body.pointer("/actor") {
        None | Some(Value::Null) => None,
        Some(_) => Some(login(body, "/actor")?),
    };
    let by = cfg.person(actor.as_deref().unwrap_or(""));
    mapped(
        "status_changed",
        vec![Action::StatusChange(StatusChange {
            ticket: ticket_ref(Some(key.to_owned()), None),
            status: mapped_status.to_owned(),
            changed_by: by,
        })],
    )
}

/// A Yandex login at `pointer`: the string the template puts there, or a
/// user object's `login` (its `id` when it has none).
fn login(body: &Value, pointer: &str) -> Result<String, MapError> {
    match body.req(pointer)? {
        Value::String(s) => Ok(s.trim().to_owned()),
        Value::Object(o) => match o.get("login").or_else(|| o.get("id")) {
            Some(Value::String(s)) => Ok(s.trim().to_owned()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(malformed(format!(
                "field `{pointer}` has neither `login` nor `id`"
            ))),
        },
        _ => Err(malformed(format!(
            "field `{pointer}` is neither a login nor a user"
        ))),
    }
}
