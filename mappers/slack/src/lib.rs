//! Slack mapping rules, both ways.
//!
//! Inbound, seed 000's Slack rows. Events API deliveries (JSON, `type`
//! `event_callback`): a configured reaction on a message creates a ticket
//! from it (`reaction_ticket`: the text is read with `conversations.history`,
//! since reactions carry none; the ticket's external id is `{channel}:{ts}`,
//! so thread replies resolve to it), another approves the linked ticket's
//! sign-off (`reaction_approve`); a reply in a linked thread is a comment
//! (`thread_reply`, its id `{channel}:{ts}` so our own replies come back as
//! echoes); a DM to the bot containing the create phrase creates a ticket
//! (`dm_create`). Interactivity (a form-encoded `payload`, `block_actions`):
//! the Approve/Reject buttons of our sign-off DMs record the clicking user's
//! sign-off for the ticket, activity and role the button's `value` carries
//! (`approval_approve`, `approval_reject`). Users are Slack ids: their
//! e-mail comes from the people directory (identity `{provider}:{id}`),
//! else `users.info` (`user.profile.email`, which needs the
//! `users:read.email` scope); nobody with an e-mail is a config error naming
//! the user. Our own bot's messages and reactions are ignored.
//!
//! Outbound: a resolve posts to the configured channel and, when the ticket
//! came from a Slack message (a link `{channel}:{ts}`), replies in its
//! thread; both messages are captured as echoes. A sign-off requested of
//! someone with a Slack account (directory identity, else
//! `users.lookupByEmail`) is a DM with Approve/Reject buttons whose clicks
//! come back as the inbound rows above. The stale-ticket sweeper's notices
//! (`stale` changes) are seed 2's messages: a `direct` one is a DM to the
//! ticket's assignee (else requester), found by e-mail like a sign-off's,
//! and someone Slack does not know is a config error naming the e-mail (the
//! outbox row fails: reported, not skipped); a `digest` is one message to
//! `digest_channel` listing every ticket. Nothing else is sent. Slack answers
//! errors with HTTP 200 and `"ok": false`: set the provider's
//! `outbound.ok_pointer` to `/ok`.
//!
//! Config keys (all optional): `provider` (the name Slack is configured
//! under, for links and directory identities; default `slack`),
//! `bot_user_id` (our bot, besides `authorizations[0].user_id`),
//! `ticket_reaction` (default `ticket`), `approve_reaction` (default
//! `white_check_mark`), `approve_activity` (default `Development`),
//! `approve_role` (`R`, `A`, `C` or `I`; default `C`), `create_phrase`
//! (default `create ticket`), `ticket_type` (default `TASK`),
//! `default_priority` (default `MEDIUM`), `channel` (a channel id for
//! resolve notices and the default digest channel; unset: only the thread
//! reply), `digest_channel` (a channel id for the sweeper's digests;
//! default `channel`), `ticket_url` (the link a stale notice's title
//! carries, `{guid}` replaced by the ticket's guid, e.g.
//! `https://tickets.example.com/t/{guid}`; unset: no link), `username` and
//! `icon_emoji` (the seed's `codebase cop` and `:cop:` on stale notices;
//! they need the `chat:write.customize` scope; unset: the app's own).

mod inbound;
mod outbound;
mod stale;

use mapper_kit::{
    Delivery, Guest, MapError, MapResult, OutboundRequest, Priority, RaciRole, TicketChange,
    bad_config, config_priority, config_str, get_json, internal, parse_config, parse_role,
    person_by_identity, query_escape,
};
use serde_json::Value;

struct Slack;

mapper_kit::bindings::export!(Slack with_types_in mapper_kit::bindings);

impl Guest for Slack {
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

/// The mapper config, with defaults.
struct Config {
    provider: String,
    bot_user_id: Option<String>,
    ticket_reaction: String,
    approve_reaction: String,
    approve_activity: String,
    approve_role: RaciRole,
    create_phrase: String,
    ticket_type: String,
    priority: Priority,
    channel: Option<String>,
    digest_channel: Option<String>,
    ticket_url: Option<String>,
    username: Option<String>,
    icon_emoji: Option<String>,
}

impl Config {
    fn parse(text: &str) -> Result<Config, MapError> {
        let v = parse_config(text)?;
        let s = |key: &str, default: &str| config_str(&v, key, default).to_owned();
        let role = config_str(&v, "approve_role", "C");
        let opt = |key: &str| v[key].as_str().filter(|c| !c.is_empty()).map(str::to_owned);
        Ok(Config {
            provider: s("provider", "slack"),
            bot_user_id: v["bot_user_id"].as_str().map(str::to_owned),
            ticket_reaction: s("ticket_reaction", "ticket"),
            approve_reaction: s("approve_reaction", "white_check_mark"),
            approve_activity: s("approve_activity", "Development"),
            approve_role: parse_role(role).ok_or_else(|| {
                bad_config(format!(
                    "mapper_config.approve_role is `{role}`; expected R, A, C or I"
                ))
            })?,
            create_phrase: s("create_phrase", "create ticket").to_lowercase(),
            ticket_type: s("ticket_type", "TASK"),
            priority: config_priority(&v, "default_priority", Priority::Medium)?,
            channel: opt("channel"),
            digest_channel: opt("digest_channel"),
            ticket_url: opt("ticket_url"),
            username: opt("username"),
            icon_emoji: opt("icon_emoji"),
        })
    }
}

/// A Web API answer (HTTP 200 either way): its body when `ok`, else the
/// error code Slack named.
fn web_api(path: &str) -> Result<Result<Value, String>, MapError> {
    let answer = get_json(path)?;
    if answer["ok"] == true {
        return Ok(Ok(answer));
    }
    let code = answer["error"].as_str().unwrap_or("no error code");
    Ok(Err(code.to_owned()))
}

/// The e-mail of Slack user `user`: the people directory, else `users.info`.
fn email_of(cfg: &Config, user: &str) -> Result<String, MapError> {
    if let Some(person) = person_by_identity(&cfg.provider, user) {
        return Ok(person.email);
    }
    let path = format!("/users.info?user={}", query_escape(user));
    let missing = || {
        bad_config(format!(
            "no e-mail for slack user `{user}`: add them to the people directory \
             (identity {}:{user}) or grant the Slack app `users:read.email`",
            cfg.provider
        ))
    };
    match web_api(&path)? {
        Ok(answer) => answer
            .pointer("/user/profile/email")
            .and_then(Value::as_str)
            .filter(|e| e.contains('@'))
            .map(str::to_owned)
            .ok_or_else(missing),
        Err(code) if code == "user_not_found" => Err(missing()),
        Err(code) => Err(internal(format!("GET {path}: Slack answered `{code}`"))),
    }
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
