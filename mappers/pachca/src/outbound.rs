//! Ticket changes → Pachca messages in the thread of the message the
//! ticket came from: the issue's reply with the buttons, comments made
//! elsewhere, and status changes made elsewhere.

use mapper_kit::{
    Action, AddComment, ChangeKind, Link, MapError, OutboundRequest, TicketChange, first_link,
    get_json, id_text, internal, person_by_email, person_by_identity, query_escape, request,
    send_json,
};
use serde_json::{Value, json};

use crate::y360::Y360;
use crate::{ButtonAction, Config};

/// Most distinct `@login`s looked up in one comment: each may cost two API
/// calls (the `login@email_domain` guess, then the Yandex 360 e-mail's
/// Pachca user), the directory's pages two more once, the thread and the
/// author two; a mapping has sixteen.
const MENTIONS_MAX: usize = 5;

pub(crate) fn map(change: &TicketChange, cfg: &Config) -> Result<Vec<OutboundRequest>, MapError> {
    let Some(root) = first_link(change, &cfg.provider) else {
        // Not a ticket from a Pachca message: there is no thread to talk in.
        return Ok(Vec::new());
    };
    let from_elsewhere = change.origin.as_deref() != Some(cfg.provider.as_str());
    match &change.what {
        ChangeKind::Linked(link) if link.provider == cfg.tracker_provider => {
            Ok(vec![issue_reply(change, cfg, root, link)?])
        }
        ChangeKind::Applied(Action::Comment(c)) if from_elsewhere => {
            Ok(vec![comment_posted(cfg, root, c)?])
        }
        // A status moved in Tracker (or through the ticket API) is told in
        // the thread; Pachca's own buttons are not offered back here.
        ChangeKind::Applied(Action::StatusChange(s)) if from_elsewhere => {
            Ok(vec![status_notice(cfg, root, &s.status)?])
        }
        ChangeKind::Applied(Action::Resolve(_)) if from_elsewhere => {
            Ok(vec![status_notice(cfg, root, "RESOLVED")?])
        }
        ChangeKind::Updated(fields) if from_elsewhere => {
            match fields
                .iter()
                .find(|f| f.field == "status")
                .and_then(|f| f.new_value.as_deref())
            {
                Some(status) => Ok(vec![status_notice(cfg, root, status)?]),
                None => Ok(Vec::new()),
            }
        }
        _ => Ok(Vec::new()),
    }
}

/// "🔄 Статус: {name}" in the thread.
fn status_notice(cfg: &Config, root: &str, status: &str) -> Result<OutboundRequest, MapError> {
    let content = format!("🔄 Статус: {}", cfg.status_name(status));
    Ok(post_in_thread(
        thread_of(root)?,
        json!({"content": content}),
    ))
}

/// The reply to the original message: the issue's key and link, and the
/// buttons, in the message's thread.
fn issue_reply(
    change: &TicketChange,
    cfg: &Config,
    root: &str,
    link: &Link,
) -> Result<OutboundRequest, MapError> {
    let Some(ticket) = &change.ticket else {
        return Err(internal("a `linked` change without its ticket"));
    };
    let content = format!(
        "Заявка зарегистрирована: {}\n{}",
        cfg.issue_link(&link.external_id),
        ticket.subject
    );
    let buttons: Vec<Value> = cfg
        .buttons
        .iter()
        .map(|b| {
            let mut data = json!({"ticket_guid": ticket.guid, "action": b.action.name()});
            if let ButtonAction::Status(s) = &b.action {
                data["status"] = json!(s);
            }
            json!({"text": b.text, "data": data.to_string()})
        })
        .collect();
    Ok(post_in_thread(
        thread_of(root)?,
        json!({"content": content, "buttons": [buttons]}),
    ))
}

/// The seed's notice of a comment made elsewhere, in the thread.
fn comment_posted(cfg: &Config, root: &str, c: &AddComment) -> Result<OutboundRequest, MapError> {
    let author = display_name(&c.commented_by)?;
    let text = mentions(cfg, &c.comment)?;
    let content = format!("🔔 Добавлен комментарий:\nАвтор: {author}\n{text}");
    Ok(post_in_thread(
        thread_of(root)?,
        json!({"content": content}),
    ))
}

/// `POST /messages` into thread `thread`, remembered as our echo.
fn post_in_thread(thread: String, mut message: Value) -> OutboundRequest {
    message["entity_type"] = json!("thread");
    message["entity_id"] = json!(thread.parse::<u64>().map_or(json!(thread), |n| json!(n)));
    request("POST", "/messages")
        .json(&json!({"message": message}))
        .echo("/data/id", "")
        .build()
}

/// The id of message `root`'s thread. Pachca answers the existing thread
/// when the message has one, so asking again is harmless (a retried
/// change, a later comment).
fn thread_of(root: &str) -> Result<String, MapError> {
    let path = format!("/messages/{root}/thread");
    let answer = send_json("POST", &path, None)?;
    answer
        .pointer("/data/id")
        .and_then(id_text)
        .ok_or_else(|| internal(format!("POST {path}: answer has no `/data/id`")))
}

/// Who wrote a comment, for people: the directory's name for the e-mail,
/// else the Pachca user's with that e-mail, else the e-mail (or the stable
/// name an automation goes by).
fn display_name(email: &str) -> Result<String, MapError> {
    if let Some(name) = person_by_email(email).and_then(|p| p.name) {
        return Ok(name);
    }
    if email.contains('@')
        && let Some(user) = pachca_user(email, |u| same_email(u, email))?
    {
        let name = full_name(&user);
        if !name.is_empty() {
            return Ok(name);
        }
    }
    Ok(email.to_owned())
}

/// `text` with each `@login` of a Yandex user replaced by the Pachca
/// user's mention (see [`mention_of`] for the order the sources are
/// tried in). A login found nowhere stays as written.
pub(crate) fn mentions(cfg: &Config, text: &str) -> Result<String, MapError> {
    let mut out = String::with_capacity(text.len());
    let mut looked_up: Vec<(String, Option<String>)> = Vec::new();
    let mut directory = Y360::default();
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let (before, from_at) = rest.split_at(at);
        out.push_str(before);
        let login_len = login_length(&from_at[1..]);
        // An e-mail's `@` follows a word character; a mention's does not.
        let in_word = out
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '_');
        if login_len == 0 || in_word {
            out.push('@');
            rest = &from_at[1..];
            continue;
        }
        let login = &from_at[1..=login_len];
        let mention = match looked_up.iter().find(|(l, _)| l == login) {
            Some((_, m)) => m.clone(),
            None if looked_up.len() < MENTIONS_MAX => {
                let m = mention_of(cfg, &mut directory, login)?;
                looked_up.push((login.to_owned(), m.clone()));
                m
            }
            None => None,
        };
        match mention {
            Some(m) => out.push_str(&m),
            None => {
                out.push('@');
                out.push_str(login);
            }
        }
        rest = &from_at[1 + login_len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The length of the Yandex login at the start of `s`: letters, digits,
/// `.`, `-`, `_`, not ending in a `.` (the end of a sentence).
fn login_length(s: &str) -> usize {
    let n = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        .map_or(s.len(), |(i, _)| i);
    s[..n].trim_end_matches('.').len()
}

/// The Pachca mention of Yandex login `login`, if a Pachca user is found.
/// The login's e-mail, in this order: the people directory's (identity
/// `{tracker_provider}:{login}`: the operator's word, used alone);
/// `login@{email_domain}` when Pachca has a user with it (a guess Pachca
/// confirms costs one call); the Yandex 360 directory's, when
/// `y360_org_id` is set (the fact, for logins that are not their
/// address's local part). The Pachca user is found with `GET
/// /users?query=` by that e-mail; with neither `email_domain` nor the
/// directory configured, by the login itself (nickname, or the e-mail's
/// local part).
fn mention_of(cfg: &Config, directory: &mut Y360, login: &str) -> Result<Option<String>, MapError> {
    if let Some(person) = person_by_identity(&cfg.tracker_provider, login) {
        let email = person.email;
        return Ok(pachca_user(&email, |u| same_email(u, &email))?.and_then(|u| mention(&u)));
    }
    if let Some(domain) = &cfg.email_domain {
        let email = format!("{login}@{domain}");
        if let Some(u) = pachca_user(&email, |u| same_email(u, &email))? {
            return Ok(mention(&u));
        }
    }
    if let Some(email) = directory.email_of(cfg, login)? {
        return Ok(pachca_user(&email, |u| same_email(u, &email))?.and_then(|u| mention(&u)));
    }
    if cfg.email_domain.is_some() || cfg.y360_org_id.is_some() {
        return Ok(None);
    }
    let user = pachca_user(login, |u| {
        u["nickname"].as_str() == Some(login)
            || u["email"]
                .as_str()
                .and_then(|e| e.split_once('@'))
                .is_some_and(|(local, _)| local.eq_ignore_ascii_case(login))
    })?;
    Ok(user.and_then(|u| mention(&u)))
}

/// How a Pachca user is mentioned: `@nickname`, else their name.
fn mention(user: &Value) -> Option<String> {
    match user["nickname"].as_str().filter(|n| !n.is_empty()) {
        Some(nick) => Some(format!("@{nick}")),
        None => Some(full_name(user)).filter(|n| !n.is_empty()),
    }
}

/// The first user `GET /users?query={query}` lists that `matches`.
fn pachca_user(query: &str, matches: impl Fn(&Value) -> bool) -> Result<Option<Value>, MapError> {
    let answer = get_json(&format!("/users?query={}", query_escape(query)))?;
    Ok(answer["data"]
        .as_array()
        .and_then(|users| users.iter().find(|u| matches(u)))
        .cloned())
}

fn same_email(user: &Value, email: &str) -> bool {
    user["email"]
        .as_str()
        .is_some_and(|e| e.eq_ignore_ascii_case(email))
}

fn full_name(user: &Value) -> String {
    let part = |k: &str| user[k].as_str().unwrap_or("").trim().to_owned();
    format!("{} {}", part("first_name"), part("last_name"))
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::login_length;

    #[test]
    fn logins_end_before_punctuation() {
        assert_eq!(login_length("ivan.petrov, hi"), 11);
        assert_eq!(login_length("ivan.petrov."), 11);
        assert_eq!(login_length("a-b_c!"), 5);
        assert_eq!(login_length(" x"), 0);
    }
}
