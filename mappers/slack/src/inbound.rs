//! Events API deliveries and interactivity payloads → ticket actions.

use mapper_kit::{
    Action, CreateTicket, Delivery, Fields, MapError, MapResult, SignoffStatus, comment,
    first_line, form_payload, guid_ref, ignored, internal, is_form, json_body, malformed, mapped,
    parse_role, query_escape, signoff, ticket_ref, unsupported,
};
use serde_json::Value;

use crate::{Config, email_of, web_api};

/// Longest subject taken from a message; the rest stays in the description.
const SUBJECT_MAX_CHARS: usize = 200;

pub(crate) fn map(delivery: &Delivery, cfg: &Config) -> MapResult {
    // Interactivity posts a form; the Events API posts JSON.
    if is_form(delivery) || delivery.body.starts_with(b"payload=") {
        return interaction(cfg, &form_payload(delivery)?);
    }
    let body = json_body(delivery)?;
    match body.str_at("/type")? {
        // Answered by the host before the mapper is asked; harmless here.
        "url_verification" => ignored("url_verification"),
        "app_rate_limited" => ignored("app_rate_limited"),
        "event_callback" => Event::new(cfg, &body)?.map(),
        other => Err(unsupported(format!(
            "slack envelope type `{other}` is not mapped"
        ))),
    }
}

/// One `event_callback`.
struct Event<'a> {
    cfg: &'a Config,
    ev: &'a Value,
    /// Our bot's user ids: the installation's and the configured one.
    bots: Vec<&'a str>,
}

impl<'a> Event<'a> {
    fn new(cfg: &'a Config, body: &'a Value) -> Result<Self, MapError> {
        let mut bots: Vec<&str> = cfg.bot_user_id.iter().map(String::as_str).collect();
        if let Some(id) = body.opt_str("/authorizations/0/user_id")? {
            bots.push(id);
        }
        Ok(Event {
            cfg,
            ev: body.req("/event")?,
            bots,
        })
    }

    fn is_bot(&self, user: &str) -> bool {
        self.bots.contains(&user)
    }

    fn map(&self) -> MapResult {
        match self.ev.str_at("/type")? {
            "reaction_added" => self.reaction(),
            "message" => self.message(),
            // A mention arrives as a `message` too; a removed reaction
            // takes nothing back.
            "app_mention" => ignored("app_mention"),
            "reaction_removed" => ignored("reaction_removed"),
            other => Err(unsupported(format!("slack event `{other}` is not mapped"))),
        }
    }

    fn reaction(&self) -> MapResult {
        let user = self.ev.str_at("/user")?;
        if self.is_bot(user) {
            return ignored("own_reaction");
        }
        if self.ev.str_at("/item/type")? != "message" {
            return ignored("reaction_not_on_message");
        }
        // `+1::skin-tone-2` is `+1` with a skin tone.
        let raw = self.ev.str_at("/reaction")?;
        let name = raw.split("::").next().unwrap_or(raw);
        if name == self.cfg.ticket_reaction {
            self.reaction_ticket(user)
        } else if name == self.cfg.approve_reaction {
            self.reaction_approve(user)
        } else {
            ignored("reaction_other")
        }
    }

    /// The reacted message becomes a ticket; its text is read from the
    /// channel's history.
    fn reaction_ticket(&self, user: &str) -> MapResult {
        let channel = self.ev.str_at("/item/channel")?;
        let ts = self.ev.str_at("/item/ts")?;
        let text = message_text(channel, ts)?;
        let requested_by = email_of(self.cfg, user)?;
        // The seed's row: the channel is the description; a message longer
        // than its subject keeps its whole text there too.
        let description = if subject(&text, channel) == text.trim() {
            channel.to_owned()
        } else {
            format!("{channel}\n\n{}", text.trim())
        };
        let create = self.create(&text, description, requested_by, channel, ts);
        mapped("reaction_ticket", vec![create])
    }

    fn reaction_approve(&self, user: &str) -> MapResult {
        let channel = self.ev.str_at("/item/channel")?;
        let ts = self.ev.str_at("/item/ts")?;
        let ticket = ticket_ref(Some(format!("{channel}:{ts}")), None);
        let email = email_of(self.cfg, user)?;
        let action = signoff(
            &ticket,
            &self.cfg.approve_activity,
            self.cfg.approve_role,
            email,
            SignoffStatus::Approved,
        );
        mapped("reaction_approve", vec![action])
    }

    fn message(&self) -> MapResult {
        let subtype = self.ev.opt_str("/subtype")?;
        if subtype == Some("bot_message") || !self.ev["bot_id"].is_null() {
            return ignored("bot_message");
        }
        // Edits, deletions, joins and the like; a reply also sent to the
        // channel is still a reply.
        if subtype.is_some_and(|s| s != "thread_broadcast") {
            return ignored("message_other");
        }
        let user = self.ev.str_at("/user")?;
        if self.is_bot(user) {
            return ignored("own_message");
        }
        let channel = self.ev.str_at("/channel")?;
        let ts = self.ev.str_at("/ts")?;
        let text = self.ev.opt_str("/text")?.unwrap_or("");
        if let Some(parent) = self.ev.opt_str("/thread_ts")?
            && parent != ts
        {
            let ticket = ticket_ref(Some(format!("{channel}:{parent}")), None);
            let by = email_of(self.cfg, user)?;
            let id = Some(format!("{channel}:{ts}"));
            return mapped(
                "thread_reply",
                vec![comment(&ticket, text.to_owned(), by, id)],
            );
        }
        if self.ev.opt_str("/channel_type")? != Some("im") {
            return ignored("message");
        }
        if !text.to_lowercase().contains(&self.cfg.create_phrase) {
            return ignored("dm");
        }
        let by = email_of(self.cfg, user)?;
        let create = self.create(text, text.trim().to_owned(), by, channel, ts);
        mapped("dm_create", vec![create])
    }

    /// A ticket from message `text`, linked as `{channel}:{ts}`.
    fn create(
        &self,
        text: &str,
        description: String,
        requested_by: String,
        channel: &str,
        ts: &str,
    ) -> Action {
        Action::Create(CreateTicket {
            subject: subject(text, channel),
            description,
            priority: self.cfg.priority,
            ticket_type: self.cfg.ticket_type.clone(),
            requested_by: Some(requested_by),
            external_id: Some(format!("{channel}:{ts}")),
            labels: vec!["slack".into()],
        })
    }
}

/// The text of message `ts` in `channel`, read with `conversations.history`.
fn message_text(channel: &str, ts: &str) -> Result<String, MapError> {
    let path = format!(
        "/conversations.history?channel={}&latest={}&inclusive=true&limit=1",
        query_escape(channel),
        query_escape(ts)
    );
    let answer =
        web_api(&path)?.map_err(|code| internal(format!("GET {path}: Slack answered `{code}`")))?;
    let messages = answer["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let message = messages
        .iter()
        .find(|m| m["ts"].as_str() == Some(ts))
        .ok_or_else(|| internal(format!("GET {path}: message {ts} is not in the answer")))?;
    Ok(message["text"].as_str().unwrap_or("").to_owned())
}

/// The message's first line, shortened; a message with no text is named
/// by its channel.
fn subject(text: &str, channel: &str) -> String {
    first_line(text, SUBJECT_MAX_CHARS).unwrap_or_else(|| format!("Slack message in {channel}"))
}

/// An interactivity payload: our sign-off buttons.
fn interaction(cfg: &Config, payload: &Value) -> MapResult {
    if payload.str_at("/type")? != "block_actions" {
        // Shortcuts, modal submissions: nothing of ours.
        return ignored("interaction");
    }
    let Some((i, action)) = payload.list("/actions")?.iter().enumerate().find(|(_, a)| {
        matches!(
            a["action_id"].as_str(),
            Some("approval_approve" | "approval_reject")
        )
    }) else {
        return ignored("block_action");
    };
    let (event_type, status) = match action["action_id"].as_str() {
        Some("approval_approve") => ("approval_approve", SignoffStatus::Approved),
        _ => ("approval_reject", SignoffStatus::Rejected),
    };
    let field = format!("/actions/{i}/value");
    let raw = payload.str_at(&field)?;
    let context: Value = serde_json::from_str(raw)
        .map_err(|e| malformed(format!("field `payload{field}` is not JSON: {e}")))?;
    let guid = context
        .str_at("/ticket_guid")
        .map_err(|e| in_value(&field, e))?;
    let activity = context
        .str_at("/activity")
        .map_err(|e| in_value(&field, e))?;
    let role_text = context.str_at("/role").map_err(|e| in_value(&field, e))?;
    let role = parse_role(role_text).ok_or_else(|| {
        malformed(format!(
            "field `payload{field}`: role `{role_text}` is not R, A, C or I"
        ))
    })?;
    let user = payload.str_at("/user/id")?;
    let email = email_of(cfg, user)?;
    let action = signoff(&guid_ref(guid), activity, role, email, status);
    mapped(event_type, vec![action])
}

/// An error about the button value's JSON, naming where it sits.
fn in_value(field: &str, e: MapError) -> MapError {
    malformed(format!("field `payload{field}`: {}", e.message))
}
