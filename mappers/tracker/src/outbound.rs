//! Ticket changes → Tracker API calls on the ticket's issue.

use mapper_kit::{
    Action, ChangeKind, CreateTicket, LogLevel, MapError, OutboundRequest, RequestBuilder,
    TicketChange, first_link, identity_of, log, person_by_email, request,
};
use serde_json::{Value, json};

use crate::Config;

pub(crate) fn map(change: &TicketChange, cfg: &Config) -> Result<Vec<OutboundRequest>, MapError> {
    let issue = first_link(change, &cfg.provider);
    let from_elsewhere = change.origin.as_deref() != Some(cfg.provider.as_str());
    let out = match (&change.what, issue) {
        (ChangeKind::Applied(Action::Create(c)), None) if wanted(cfg, change) => {
            vec![create_issue(change, cfg, c)]
        }
        (ChangeKind::Applied(Action::Comment(c)), Some(key)) if from_elsewhere => {
            let name = person_by_email(&c.commented_by)
                .and_then(|p| p.name)
                .unwrap_or_else(|| c.commented_by.clone());
            vec![
                with_org(cfg, request("POST", format!("/issues/{key}/comments")))
                    .json(&json!({"text": format!("{}\n\n— {name}", c.comment)}))
                    .echo("/id", "")
                    .build(),
            ]
        }
        (ChangeKind::Applied(Action::StatusChange(s)), Some(key)) if from_elsewhere => {
            transition(cfg, key, &s.status).into_iter().collect()
        }
        (ChangeKind::Applied(Action::Resolve(_)), Some(key)) if from_elsewhere => {
            transition(cfg, key, "RESOLVED").into_iter().collect()
        }
        // «Взять в работу» assigns the clicker: the issue follows.
        (ChangeKind::Applied(Action::Assign(a)), Some(key)) if from_elsewhere => {
            assign(cfg, key, &a.assigned_to).into_iter().collect()
        }
        // A status or assignee set through the ticket API moves the issue
        // the same way (a cleared assignee is left to Tracker).
        (ChangeKind::Updated(fields), Some(key)) => fields
            .iter()
            .filter_map(|f| match (f.field.as_str(), f.new_value.as_deref()) {
                ("status", Some(status)) => transition(cfg, key, status),
                ("assignee", Some(email)) => assign(cfg, key, email),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(out)
}

/// `PATCH /issues/{key}` setting the assignee to the person with e-mail
/// `email`: their `tracker` identity in the people directory, else the
/// e-mail's local part when it is in `email_domain` (the inverse of
/// inbound's `login@email_domain`; any domain when none is configured).
/// Someone with neither is not guessed at: nothing is sent.
fn assign(cfg: &Config, key: &str, email: &str) -> Option<OutboundRequest> {
    let Some(login) = login_of(cfg, email) else {
        log(
            LogLevel::Warn,
            &format!(
                "no Tracker login for {email}: add their `{}` identity to the people directory; {key} keeps its assignee",
                cfg.provider
            ),
        );
        return None;
    };
    Some(
        with_org(cfg, request("PATCH", format!("/issues/{key}")))
            .json(&json!({"assignee": login}))
            .build(),
    )
}

/// The Tracker login of the person with e-mail `email`.
fn login_of(cfg: &Config, email: &str) -> Option<String> {
    if let Some(person) = person_by_email(email)
        && let Some(login) = identity_of(&person, &cfg.provider)
    {
        return Some(login.to_owned());
    }
    let (local, domain) = email.rsplit_once('@')?;
    let ours = cfg
        .email_domain
        .as_deref()
        .is_none_or(|d| d.eq_ignore_ascii_case(domain));
    (ours && !local.is_empty()).then(|| local.to_owned())
}

/// Whether the created ticket gets an issue: it came from one of
/// `create_from`.
fn wanted(cfg: &Config, change: &TicketChange) -> bool {
    change
        .origin
        .as_ref()
        .is_some_and(|o| cfg.create_from.contains(o))
}

/// `POST /issues` in the queue, the issue's key captured as the mirror.
fn create_issue(change: &TicketChange, cfg: &Config, c: &CreateTicket) -> OutboundRequest {
    let mut body = json!({
        "queue": cfg.queue,
        "summary": c.subject,
        "description": c.description,
        "tags": cfg.tags,
    });
    if let Some(ticket) = &change.ticket {
        // Tracker refuses a second issue with the same `unique`: a create
        // sent twice (a crash before the answer was recorded) makes one.
        body["unique"] = json!(format!("sluice-{}", ticket.guid));
        let field = |name: &str| {
            ticket
                .fields
                .iter()
                .find(|f| f.name == name)
                .map(|f| Value::String(f.value.clone()))
        };
        for (id, name) in [
            (&cfg.message_id_field, "pachca_message_id"),
            (&cfg.user_id_field, "pachca_user_id"),
        ] {
            if let (Some(id), Some(value)) = (id, field(name)) {
                body[id.as_str()] = value;
            }
        }
    }
    with_org(cfg, request("POST", "/issues"))
        .json(&body)
        .mirror("/key")
        .build()
}

/// The transition bringing issue `key` to ticket status `status`, if one
/// is configured.
fn transition(cfg: &Config, key: &str, status: &str) -> Option<OutboundRequest> {
    let id = cfg.transition_to(status)?;
    Some(
        with_org(
            cfg,
            request("POST", format!("/issues/{key}/transitions/{id}/_execute")),
        )
        .json(&json!({}))
        .build(),
    )
}

/// The organisation header every Tracker API call needs.
fn with_org(cfg: &Config, r: RequestBuilder) -> RequestBuilder {
    match &cfg.org {
        Some((name, id)) => r.header(name, id),
        None => r,
    }
}
