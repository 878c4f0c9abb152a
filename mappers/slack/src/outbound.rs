//! Ticket changes → Slack Web API calls: resolve notices, sign-off DMs
//! and (in `stale`) the sweeper's notices.

use mapper_kit::{
    Action, ChangeKind, MapError, OutboundRequest, Resolve, Signoff, SignoffStatus, TicketChange,
    first_link, identity_of, internal, person_by_email, query_escape, request, role_letter,
};
use serde_json::{Value, json};

use crate::{Config, escape, web_api};

pub(crate) fn map(change: &TicketChange, cfg: &Config) -> Result<Vec<OutboundRequest>, MapError> {
    match &change.what {
        ChangeKind::Applied(Action::Resolve(r)) => Ok(resolved(change, cfg, r)),
        ChangeKind::Applied(Action::Signoff(s)) if s.signoff_status == SignoffStatus::Pending => {
            signoff_requested(change, cfg, s)
        }
        ChangeKind::Stale(notice) => crate::stale::map(change, cfg, notice),
        _ => Ok(Vec::new()),
    }
}

/// A notice in the configured channel, and a reply in the thread of the
/// message the ticket came from.
fn resolved(change: &TicketChange, cfg: &Config, r: &Resolve) -> Vec<OutboundRequest> {
    let Some(ticket) = &change.ticket else {
        return Vec::new();
    };
    let text = format!(
        ":white_check_mark: Ticket resolved: *{}* ({}), by {}",
        escape(&ticket.subject),
        escape(&ticket.guid),
        escape(&r.resolved_by)
    );
    let mut out = Vec::new();
    if let Some(channel) = &cfg.channel {
        out.push(post_message(
            channel,
            json!({"channel": channel, "text": text, "unfurl_links": false}),
        ));
    }
    if let Some((channel, ts)) =
        first_link(change, &change.provider).and_then(|l| l.split_once(':'))
    {
        out.push(post_message(
            channel,
            json!({"channel": channel, "thread_ts": ts, "text": text, "unfurl_links": false}),
        ));
    }
    out
}

/// `chat.postMessage` in `channel`, remembered as our echo `{channel}:{ts}`.
fn post_message(channel: &str, body: Value) -> OutboundRequest {
    request("POST", "/chat.postMessage")
        .json(&body)
        .echo("/ts", &format!("{channel}:"))
        .build()
}

/// A DM with Approve/Reject buttons to the person asked to sign off, when
/// they have a Slack account.
fn signoff_requested(
    change: &TicketChange,
    cfg: &Config,
    s: &Signoff,
) -> Result<Vec<OutboundRequest>, MapError> {
    let Some(ticket) = &change.ticket else {
        return Ok(Vec::new());
    };
    let Some(user) = slack_user(cfg, &s.email)? else {
        return Ok(Vec::new());
    };
    let role = role_letter(s.role);
    // The click comes back as `approval_approve`/`approval_reject` with this
    // value: the context the sign-off is recorded for.
    let value =
        json!({"ticket_guid": ticket.guid, "activity": s.activity, "role": role}).to_string();
    let text = format!(
        "Sign-off requested: *{}* ({}), {} as {}",
        escape(&ticket.subject),
        escape(&ticket.guid),
        escape(&s.activity),
        role
    );
    let button = |action_id: &str, label: &str, style: &str| {
        json!({
            "type": "button",
            "action_id": action_id,
            "text": {"type": "plain_text", "text": label},
            "style": style,
            "value": value,
        })
    };
    let body = json!({
        "channel": user,
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "actions", "block_id": "sluice_signoff", "elements": [
                button("approval_approve", "Approve", "primary"),
                button("approval_reject", "Reject", "danger"),
            ]},
        ],
    });
    // No echo capture: the answer's channel is the DM's id, not the user
    // id we post to, and the DM's buttons come back as interactivity, which
    // is no echo.
    Ok(vec![
        request("POST", "/chat.postMessage").json(&body).build(),
    ])
}

/// The Slack user id of `email`: the people directory, else
/// `users.lookupByEmail`; `None` when Slack knows nobody by it.
pub(crate) fn slack_user(cfg: &Config, email: &str) -> Result<Option<String>, MapError> {
    if let Some(id) = person_by_email(email)
        .as_ref()
        .and_then(|p| identity_of(p, &cfg.provider))
    {
        return Ok(Some(id.to_owned()));
    }
    let path = format!("/users.lookupByEmail?email={}", query_escape(email));
    match web_api(&path)? {
        Ok(answer) => Ok(answer
            .pointer("/user/id")
            .and_then(Value::as_str)
            .map(str::to_owned)),
        Err(code) if code == "users_not_found" => Ok(None),
        Err(code) => Err(internal(format!("GET {path}: Slack answered `{code}`"))),
    }
}
