//! Stale-ticket sweeper notices → Slack messages, with seed 2's texts.
//!
//! A `direct` notice is a DM to the ticket's assignee (its requester when
//! unassigned); a `digest` is one message to `digest_channel` (default
//! `channel`) with an attachment per ticket. Texts follow the seed: the
//! `stale` rule (and any ticket outside QA/DEPLOYED) says "Review old
//! ticket" with the whole days since `updated_at`; a QA ticket says "QA is
//! overdue" and a DEPLOYED one "Ticket is done", with the whole days since
//! `status_changed_at`. Days are counted up to the change's `at` (when the
//! sweeper matched), never the clock, so a retried notice says the same.

use mapper_kit::{
    MapError, NoticeKind, OutboundRequest, StaleNotice, Ticket, TicketChange, bad_config,
    identity_of, person_by_email, request, whole_days,
};
use serde_json::{Value, json};

use crate::outbound::slack_user;
use crate::{Config, escape};

/// Slack renders at most 100 attachments per message.
const MAX_ATTACHMENTS: usize = 100;

pub(crate) fn map(
    change: &TicketChange,
    cfg: &Config,
    notice: &StaleNotice,
) -> Result<Vec<OutboundRequest>, MapError> {
    match notice.kind {
        NoticeKind::Direct => direct(change, cfg, notice),
        NoticeKind::Digest => digest(change, cfg, notice),
    }
}

/// Who a notice about `t` is for: the assignee, else the requester.
fn recipient(t: &Ticket) -> Option<&str> {
    t.assignee
        .as_deref()
        .or(t.requested_by.as_deref())
        .filter(|e| !e.is_empty())
}

fn direct(
    change: &TicketChange,
    cfg: &Config,
    notice: &StaleNotice,
) -> Result<Vec<OutboundRequest>, MapError> {
    let Some(ticket) = notice.tickets.first().or(change.ticket.as_ref()) else {
        return Ok(Vec::new());
    };
    let Some(email) = recipient(ticket) else {
        return Err(bad_config(format!(
            "stale notice `{}` for ticket {}: it has neither assignee nor requester to tell",
            notice.rule, ticket.guid
        )));
    };
    // Reported, not skipped: the outbox row fails naming who is missing.
    let user = slack_user(cfg, email)?.ok_or_else(|| {
        bad_config(format!(
            "stale notice `{}` for ticket {}: nobody on Slack with e-mail `{email}`; add \
             them to the people directory (identity {}:<Slack user id>)",
            notice.rule, ticket.guid, cfg.provider
        ))
    })?;
    let texts = Texts::of(&notice.rule, ticket, &change.at, cfg);
    let attachment = texts.attachment(&format!("<@{user}>"));
    let mut body = json!({
        "channel": user,
        "text": texts.fallback,
        "attachments": [attachment],
        "unfurl_links": false,
    });
    dress(&mut body, cfg);
    Ok(vec![
        request("POST", "/chat.postMessage").json(&body).build(),
    ])
}

fn digest(
    change: &TicketChange,
    cfg: &Config,
    notice: &StaleNotice,
) -> Result<Vec<OutboundRequest>, MapError> {
    if notice.tickets.is_empty() {
        return Ok(Vec::new());
    }
    let channel = cfg
        .digest_channel
        .as_ref()
        .or(cfg.channel.as_ref())
        .ok_or_else(|| {
            bad_config(format!(
                "stale digest `{}`: set mapper_config.digest_channel (or channel) to the Slack \
             channel id it goes to",
                notice.rule
            ))
        })?;
    let mut attachments: Vec<Value> = notice
        .tickets
        .iter()
        .take(MAX_ATTACHMENTS)
        .map(|t| {
            // The directory only: one API call per ticket could exhaust the
            // call budget of a long digest.
            let who = recipient(t).map_or_else(
                || "nobody".to_owned(),
                |email| {
                    person_by_email(email)
                        .as_ref()
                        .and_then(|p| identity_of(p, &cfg.provider))
                        .map_or_else(|| escape(email), |id| format!("<@{id}>"))
                },
            );
            Texts::of(&notice.rule, t, &change.at, cfg).attachment(&who)
        })
        .collect();
    let more = notice.tickets.len().saturating_sub(MAX_ATTACHMENTS);
    let count = notice.tickets.len();
    let mut text = format!(
        "{} ({}): {count} ticket{}",
        digest_heading(&notice.rule),
        escape(&notice.rule),
        if count == 1 { "" } else { "s" }
    );
    if more > 0 {
        text.push_str(&format!(", the first {MAX_ATTACHMENTS} shown"));
        attachments.truncate(MAX_ATTACHMENTS);
    }
    let mut body = json!({
        "channel": channel,
        "text": text,
        "attachments": attachments,
        "unfurl_links": false,
    });
    dress(&mut body, cfg);
    Ok(vec![
        request("POST", "/chat.postMessage").json(&body).build(),
    ])
}

fn digest_heading(rule: &str) -> &'static str {
    match rule {
        "qa_overdue" => "Weekly digest: tickets waiting in QA or Deployed",
        "stale" => "Weekly digest: old tickets to review",
        _ => "Weekly digest: stale tickets",
    }
}

/// The seed's `username` and `icon_emoji`, when configured (Slack needs the
/// `chat:write.customize` scope for them).
fn dress(body: &mut Value, cfg: &Config) {
    if let Some(u) = &cfg.username {
        body["username"] = json!(u);
    }
    if let Some(i) = &cfg.icon_emoji {
        body["icon_emoji"] = json!(i);
    }
}

/// Seed 2's message parts for one ticket.
struct Texts {
    fallback: String,
    pretext: &'static str,
    title: String,
    link: Option<String>,
    /// The body after "Hey, {who}: ".
    body: String,
}

impl Texts {
    fn of(rule: &str, t: &Ticket, at: &str, cfg: &Config) -> Texts {
        let link = cfg
            .ticket_url
            .as_ref()
            .map(|template| template.replace("{guid}", &t.guid));
        let suffix = link.as_ref().map(|l| format!(" - {l}")).unwrap_or_default();
        let subject = escape(&t.subject);
        let id = escape(&t.guid);
        let days = |since: &str| whole_days(since, at).unwrap_or(0).max(0);
        let (fallback, pretext, body) = match t.status.as_str() {
            "QA" if rule != "stale" => (
                format!("Please QA ticket #{id}: {subject}{suffix}"),
                "QA is overdue",
                format!(
                    "The QA status for this ticket has not been updated for over {} days{suffix}",
                    days(&t.status_changed_at)
                ),
            ),
            "DEPLOYED" if rule != "stale" => (
                format!("Please mark ticket #{id} as Done: {subject}{suffix}"),
                "Ticket is done",
                format!(
                    "The ticket has been deployed {} days ago. Please review it{suffix}",
                    days(&t.status_changed_at)
                ),
            ),
            _ => (
                format!("Please review old Ticket #{id}: {subject}{suffix}"),
                "Review old ticket",
                format!(
                    "The ticket has not been updated for over {} days, please check if it is \
                     still valid{suffix}",
                    days(&t.updated_at)
                ),
            ),
        };
        Texts {
            fallback,
            pretext,
            title: format!("Ticket #{id}: {subject}"),
            link,
            body,
        }
    }

    /// The seed's attachment, addressed to `who` (a `<@U…>` mention or an
    /// e-mail).
    fn attachment(&self, who: &str) -> Value {
        let mut a = json!({
            "fallback": self.fallback,
            "pretext": self.pretext,
            "title": self.title,
            "text": format!("Hey, {who}: {}", self.body),
            "color": "danger",
        });
        if let Some(link) = &self.link {
            a["title_link"] = json!(link);
        }
        a
    }
}
