//! Jira webhooks and reconcile ticks → ticket actions.

use mapper_kit::{
    Action, Assign, CreateTicket, Delivery, Escalate, Field, Fields, LogLevel, MapError, MapResult,
    Priority, RECONCILE_EVENT, RECONCILE_MISSING_EVENT, Resolve, SetFields, StatusChange,
    TicketRef, UpdateTicket, UserDirectory, comment, created_by, get_json_or_missing, ignored,
    json_body, log, mapped, query_escape, reconcile_target, ticket_ref, unsupported,
};
use serde_json::Value;

use crate::{Config, PROVIDER, adf, issue_path};

/// Who changed the ticket when Jira names no user (a reconcile).
const AUTOMATION: &str = "jira";

pub(crate) fn map(delivery: &Delivery, cfg: &Config, raw: &Value) -> MapResult {
    let users = UserDirectory::from_config(raw, PROVIDER)?;
    if let Some(id) = reconcile_target(delivery) {
        return reconcile(cfg, &users, &id);
    }
    let body = json_body(delivery)?;
    let event = body.str_at("/webhookEvent")?;
    let ctx = Ctx {
        cfg,
        users: &users,
        body: &body,
    };
    match event {
        "jira:issue_created" => ctx.created(),
        "jira:issue_updated" => ctx.updated(),
        "comment_created" => ctx.commented(),
        other => Err(unsupported(format!("Jira webhook event `{other}`"))),
    }
}

struct Ctx<'a> {
    cfg: &'a Config,
    users: &'a UserDirectory<'a>,
    body: &'a Value,
}

impl Ctx<'_> {
    /// Whether `user` (a user object) is our own integration user.
    fn is_bot(&self, user: &Value) -> bool {
        let id = user.pointer("/accountId").and_then(Value::as_str);
        id.is_some() && id == self.cfg.bot_account_id.as_deref()
    }

    fn issue(&self) -> Result<TicketRef, MapError> {
        Ok(ticket_ref(Some(self.body.id_at("/issue/id")?), None))
    }

    fn created(&self) -> MapResult {
        const EVENT: &str = "issue_created";
        if self.is_bot(self.body.req("/user")?) {
            return ignored(EVENT);
        }
        let issue = self.body.req("/issue")?;
        let fields = issue.req("/fields")?;
        let priority = match fields.opt_str("/priority/name")? {
            Some(p) => self.cfg.mappings.priority_in(p)?,
            None => Priority::Medium,
        };
        let ticket_type = fields
            .opt_str("/issuetype/name")?
            .map_or("TASK".to_owned(), |t| {
                t.to_ascii_uppercase().replace(' ', "_")
            });
        let labels = fields
            .list("/labels")?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        let mut actions = vec![Action::Create(CreateTicket {
            subject: fields.str_at("/summary")?.to_owned(),
            description: adf::text(fields.get("description").unwrap_or(&Value::Null)),
            priority,
            ticket_type,
            requested_by: fields.get("reporter").and_then(|r| self.optional_email(r)),
            external_id: Some(issue.id_at("/id")?),
            labels,
        })];
        let by = self.actor()?;
        let custom = custom_fields(self.cfg, fields)?;
        if !custom.is_empty() {
            actions.push(Action::SetFields(SetFields {
                ticket: created_by(0),
                fields: custom,
                changed_by: by.clone(),
            }));
        }
        if let Some(to) = fields.get("assignee").and_then(|a| self.optional_email(a)) {
            actions.push(Action::Assign(Assign {
                ticket: created_by(0),
                assigned_to: to,
                assigned_by: by,
            }));
        }
        mapped(EVENT, actions)
    }

    fn updated(&self) -> MapResult {
        if self.is_bot(self.body.req("/user")?) {
            return ignored("issue_updated");
        }
        // A comment raises `jira:issue_updated` too; `comment_created`
        // carries it with its id.
        if let Some(kind) = self.body.opt_str("/issue_event_type_name")?
            && kind.starts_with("issue_comment")
        {
            return ignored("issue_commented");
        }
        let ticket = self.issue()?;
        let by = self.actor()?;
        let mut event = "issue_updated";
        let mut actions = Vec::new();
        let mut update = UpdateTicket {
            ticket: ticket.clone(),
            subject: None,
            description: None,
            priority: None,
            ticket_type: None,
            changed_by: by.clone(),
        };
        let mut custom = Vec::new();
        for item in self.body.list("/changelog/items")? {
            let field = item.str_at("/field")?;
            let to = item.opt_str("/toString")?;
            match field {
                "status" => {
                    let status = self.cfg.mappings.status_in(item.str_at("/toString")?)?;
                    actions.push(match status.as_str() {
                        "RESOLVED" => {
                            event = "issue_resolved";
                            Action::Resolve(Resolve {
                                ticket: ticket.clone(),
                                resolved_by: by.clone(),
                            })
                        }
                        "ESCALATED" => {
                            event = "issue_escalated";
                            Action::Escalate(Escalate {
                                ticket: ticket.clone(),
                                escalated_by: by.clone(),
                                reason: Some(format!("Jira status {}", item.str_at("/toString")?)),
                            })
                        }
                        other => Action::StatusChange(StatusChange {
                            ticket: ticket.clone(),
                            status: other.to_owned(),
                            changed_by: by.clone(),
                        }),
                    });
                }
                "priority" => {
                    if let Some(p) = to {
                        update.priority = Some(self.cfg.mappings.priority_in(p)?);
                    }
                }
                "summary" => update.subject = to.map(str::to_owned),
                "description" => {
                    // The changelog's text may be cut short; the issue has it whole.
                    update.description =
                        Some(match self.body.pointer("/issue/fields/description") {
                            Some(d) if !d.is_null() => adf::text(d),
                            _ => to.unwrap_or("").to_owned(),
                        });
                }
                "assignee" => {
                    // Unassigning leaves the ticket's assignee as it is.
                    if let Some(account) = item.opt_str("/to")? {
                        let user = self.body.pointer("/issue/fields/assignee");
                        let email = match user {
                            Some(u) if u["accountId"].as_str() == Some(account) => self.email(u)?,
                            _ => self.users.email(&[account], &format!("`{account}`"))?,
                        };
                        actions.push(Action::Assign(Assign {
                            ticket: ticket.clone(),
                            assigned_to: email,
                            assigned_by: by.clone(),
                        }));
                    }
                }
                _ => {
                    let id = item.opt_str("/fieldId")?.unwrap_or(field);
                    if let Some((name, value)) = self.cfg.mappings.field_in(id, to.unwrap_or(""))? {
                        custom.push(Field { name, value });
                    }
                }
            }
        }
        if update.subject.is_some() || update.description.is_some() || update.priority.is_some() {
            actions.push(Action::Update(update));
        }
        if !custom.is_empty() {
            actions.push(Action::SetFields(SetFields {
                ticket,
                fields: custom,
                changed_by: by,
            }));
        }
        mapped(event, actions)
    }

    fn commented(&self) -> MapResult {
        const EVENT: &str = "comment_created";
        let c = self.body.req("/comment")?;
        let author = c.req("/author")?;
        if self.is_bot(author) {
            return ignored(EVENT);
        }
        mapped(
            EVENT,
            vec![comment(
                &self.issue()?,
                adf::text(c.req("/body")?),
                self.email(author)?,
                Some(c.id_at("/id")?),
            )],
        )
    }

    /// The e-mail of whoever made the change (the webhook's `user`).
    fn actor(&self) -> Result<String, MapError> {
        self.email(self.body.req("/user")?)
    }

    /// The e-mail of a Jira user object: the directories by account id,
    /// then the `emailAddress` Jira shares when the user allows it.
    fn email(&self, user: &Value) -> Result<String, MapError> {
        let id = user.str_at("/accountId")?;
        let name = user.pointer("/displayName").and_then(Value::as_str);
        let who = name.map_or(format!("`{id}`"), |n| format!("`{id}` ({n})"));
        self.users.email(&[id], &who).or_else(|not_found| {
            user.pointer("/emailAddress")
                .and_then(Value::as_str)
                .filter(|e| e.contains('@'))
                .map(str::to_owned)
                .ok_or(not_found)
        })
    }

    /// An optional person (a reporter, an assignee on creation): unknown
    /// ones are left out rather than failing the whole issue.
    fn optional_email(&self, user: &Value) -> Option<String> {
        if user.is_null() {
            return None;
        }
        match self.email(user) {
            Ok(email) => Some(email),
            Err(e) => {
                log(LogLevel::Warn, &e.message);
                None
            }
        }
    }
}

/// The mapped custom fields an issue's `fields` carries, as ticket fields.
fn custom_fields(cfg: &Config, fields: &Value) -> Result<Vec<Field>, MapError> {
    let mut out = Vec::new();
    for m in cfg.mappings.fields.values() {
        let Some(value) = fields.get(&m.field).and_then(field_text) else {
            continue;
        };
        if let Some((name, value)) = cfg.mappings.field_in(&m.field, &value)? {
            out.push(Field { name, value });
        }
    }
    Ok(out)
}

/// A field's value as text: a string, a number, an option (`value`) or a
/// named object (`name`); null is none.
fn field_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => o
            .get("value")
            .or_else(|| o.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

/// The issue as Jira has it now, for the host to compare with what it
/// last synced.
fn reconcile(cfg: &Config, users: &UserDirectory, id: &str) -> MapResult {
    let mut wanted = vec!["summary", "description", "status", "priority", "assignee"];
    wanted.extend(cfg.mappings.fields.values().map(|m| m.field.as_str()));
    let wanted: Vec<String> = wanted.into_iter().map(query_escape).collect();
    let path = format!("{}?fields={}", issue_path(id), wanted.join(","));
    let Some(issue) = get_json_or_missing(&path)? else {
        return ignored(RECONCILE_MISSING_EVENT);
    };
    let fields = issue.req("/fields")?;
    let ticket = ticket_ref(Some(id.to_owned()), None);
    let mut actions = vec![Action::StatusChange(StatusChange {
        ticket: ticket.clone(),
        status: cfg.mappings.status_in(fields.str_at("/status/name")?)?,
        changed_by: AUTOMATION.into(),
    })];
    actions.push(Action::Update(UpdateTicket {
        ticket: ticket.clone(),
        subject: Some(fields.str_at("/summary")?.to_owned()),
        description: Some(adf::text(fields.get("description").unwrap_or(&Value::Null))),
        priority: fields
            .opt_str("/priority/name")?
            .map(|p| cfg.mappings.priority_in(p))
            .transpose()?,
        ticket_type: None,
        changed_by: AUTOMATION.into(),
    }));
    let body = Value::Null;
    let ctx = Ctx {
        cfg,
        users,
        body: &body,
    };
    if let Some(to) = fields.get("assignee").and_then(|a| ctx.optional_email(a)) {
        actions.push(Action::Assign(Assign {
            ticket: ticket.clone(),
            assigned_to: to,
            assigned_by: AUTOMATION.into(),
        }));
    }
    let custom = custom_fields(cfg, fields)?;
    if !custom.is_empty() {
        actions.push(Action::SetFields(SetFields {
            ticket,
            fields: custom,
            changed_by: AUTOMATION.into(),
        }));
    }
    mapped(RECONCILE_EVENT, actions)
}
