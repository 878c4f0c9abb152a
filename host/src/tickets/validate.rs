//! Action validation: pure, table-tested.
//!
//! Rules (errors name the action's index and field):
//! - every required field is present and, trimmed, non-empty;
//! - `status` is one of the configured workflow's statuses;
//! - e-mail fields (`signoff.email`, `assign.assigned_to`,
//!   `create.requested_by`) look like `local@domain.tld`;
//! - lengths: subject 512 characters, description and comment 64 KiB, labels
//!   32 of 64 characters each, every other text 256 characters;
//! - control characters: NUL is refused everywhere (PostgreSQL text cannot
//!   hold it). Single-line fields refuse every control character.
//!   Multi-line fields (description, comment) keep tab, line feed and
//!   carriage return and drop every other control character — providers do
//!   send stray ANSI escapes and form feeds in free text, and refusing a
//!   whole delivery for them would lose the rest of it;
//! - `from_action` names an earlier `create` of the same list; a ticket
//!   reference names at least one way to find the ticket.

use thiserror::Error;

use crate::action::{Action, TicketRef};

/// The default workflow, in order.
pub const DEFAULT_STATUSES: [&str; 10] = [
    "NEW",
    "TRIAGED",
    "IN_PROGRESS",
    "ON_HOLD",
    "ESCALATED",
    "QA",
    "DEPLOYED",
    "RESOLVED",
    "CLOSED",
    "CANCELLED",
];

const SUBJECT_MAX: usize = 512;
/// Longest description, comment or custom field value, in characters.
pub const TEXT_MAX: usize = 64 << 10;
const FIELD_MAX: usize = 256;
const LABELS_MAX: usize = 32;
const LABEL_MAX: usize = 64;
/// Custom fields one action may set, and the length of a field name.
pub const FIELDS_MAX: usize = 64;
pub const FIELD_NAME_MAX: usize = 64;

/// The statuses a ticket may take; the first is a new ticket's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    statuses: Vec<String>,
}

impl Workflow {
    pub fn new(statuses: Vec<String>) -> Option<Self> {
        (!statuses.is_empty()).then_some(Workflow { statuses })
    }

    pub fn initial(&self) -> &str {
        // Never empty: `new` refuses an empty list and the default has ten.
        self.statuses.first().map(String::as_str).unwrap_or("NEW")
    }

    pub fn contains(&self, status: &str) -> bool {
        self.statuses.iter().any(|s| s == status)
    }

    pub fn statuses(&self) -> &[String] {
        &self.statuses
    }
}

impl Default for Workflow {
    fn default() -> Self {
        Workflow {
            statuses: DEFAULT_STATUSES.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// Why an action is invalid.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("action {index} ({action}): field `{field}` {reason}")]
pub struct ValidationError {
    pub index: usize,
    pub action: &'static str,
    pub field: &'static str,
    pub reason: String,
}

/// Validates `actions` and returns them normalised (text trimmed of
/// surrounding whitespace, stray control characters dropped from
/// multi-line text).
pub fn validate(actions: &[Action], workflow: &Workflow) -> Result<Vec<Action>, ValidationError> {
    let mut out = Vec::with_capacity(actions.len());
    for (index, action) in actions.iter().enumerate() {
        let mut a = action.clone();
        let name = a.name();
        let err = |field: &'static str, reason: String| ValidationError {
            index,
            action: name,
            field,
            reason,
        };
        if let Some(t) = a.ticket() {
            check_ref(t, actions, index).map_err(|(f, r)| err(f, r))?;
        }
        let check =
            |field, value: &mut String, kind| check_text(value, kind).map_err(|r| err(field, r));
        match &mut a {
            Action::Create {
                subject,
                description,
                ticket_type,
                requested_by,
                external_id,
                labels,
                ..
            } => {
                check("subject", subject, Kind::Subject)?;
                check(
                    "description",
                    description,
                    Kind::Multiline { required: false },
                )?;
                check("ticket_type", ticket_type, Kind::Line)?;
                if let Some(r) = requested_by {
                    check("requested_by", r, Kind::Email)?;
                }
                if let Some(e) = external_id {
                    check("external_id", e, Kind::Line)?;
                }
                if labels.len() > LABELS_MAX {
                    return Err(err(
                        "labels",
                        format!("has {} labels, over {LABELS_MAX}", labels.len()),
                    ));
                }
                for l in labels.iter_mut() {
                    check_text(l, Kind::Label).map_err(|r| err("labels", r))?;
                }
            }
            Action::StatusChange {
                status, changed_by, ..
            } => {
                check("status", status, Kind::Line)?;
                if !workflow.contains(status) {
                    return Err(err(
                        "status",
                        format!(
                            "`{status}` is not in the workflow ({})",
                            workflow.statuses().join(", ")
                        ),
                    ));
                }
                check("changed_by", changed_by, Kind::Line)?;
            }
            Action::Comment {
                comment,
                commented_by,
                external_comment_id,
                ..
            } => {
                check("comment", comment, Kind::Multiline { required: true })?;
                check("commented_by", commented_by, Kind::Line)?;
                if let Some(c) = external_comment_id {
                    check("external_comment_id", c, Kind::Line)?;
                }
            }
            Action::Assign {
                assigned_to,
                assigned_by,
                ..
            } => {
                check("assigned_to", assigned_to, Kind::Email)?;
                check("assigned_by", assigned_by, Kind::Line)?;
            }
            Action::Signoff {
                activity, email, ..
            } => {
                check("activity", activity, Kind::Line)?;
                check("email", email, Kind::Email)?;
            }
            Action::LinkPr {
                pr_id, repo, url, ..
            } => {
                check("pr_id", pr_id, Kind::Line)?;
                check("repo", repo, Kind::Line)?;
                if let Some(u) = url {
                    check_text(u, Kind::Url).map_err(|r| err("url", r))?;
                }
            }
            Action::Resolve { resolved_by, .. } => check("resolved_by", resolved_by, Kind::Line)?,
            Action::Escalate {
                escalated_by,
                reason,
                ..
            } => {
                check("escalated_by", escalated_by, Kind::Line)?;
                if let Some(r) = reason {
                    check_text(r, Kind::Multiline { required: false })
                        .map_err(|e| err("reason", e))?;
                }
            }
            Action::SetFields {
                fields, changed_by, ..
            } => {
                if fields.is_empty() {
                    return Err(err("fields", "is empty".into()));
                }
                if fields.len() > FIELDS_MAX {
                    return Err(err(
                        "fields",
                        format!("has {} fields, over {FIELDS_MAX}", fields.len()),
                    ));
                }
                for (name, value) in fields.iter_mut() {
                    if !is_field_name(name) {
                        return Err(err(
                            "fields",
                            format!(
                                "`{name}` is not a field name (snake_case ASCII, at most {FIELD_NAME_MAX} characters)"
                            ),
                        ));
                    }
                    check_text(value, Kind::Multiline { required: false })
                        .map_err(|r| err("fields", format!("`{name}` {r}")))?;
                }
                check("changed_by", changed_by, Kind::Line)?;
            }
            Action::Update {
                subject,
                description,
                ticket_type,
                changed_by,
                priority,
                ..
            } => {
                if subject.is_none()
                    && description.is_none()
                    && ticket_type.is_none()
                    && priority.is_none()
                {
                    return Err(err(
                        "subject",
                        "and every other field are absent: nothing to update".into(),
                    ));
                }
                if let Some(v) = subject {
                    check("subject", v, Kind::Subject)?;
                }
                if let Some(v) = description {
                    check("description", v, Kind::Multiline { required: false })?;
                }
                if let Some(v) = ticket_type {
                    check("ticket_type", v, Kind::Line)?;
                }
                check("changed_by", changed_by, Kind::Line)?;
            }
        }
        out.push(a);
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Kind {
    Subject,
    Line,
    Label,
    Email,
    Url,
    Multiline { required: bool },
}

/// Custom field names: snake_case ASCII, so they read the same in every
/// provider's config, in the API and in a mapper.
pub fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= FIELD_NAME_MAX
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn check_ref(
    t: &TicketRef,
    actions: &[Action],
    index: usize,
) -> Result<(), (&'static str, String)> {
    let empty = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
    if empty(&t.guid) && empty(&t.external_id) && empty(&t.branch) && t.from_action.is_none() {
        return Err((
            "ticket",
            "names no ticket: set ticket_guid, external_id, branch or from_action".into(),
        ));
    }
    if let Some(i) = t.from_action {
        let ok =
            (i as usize) < index && matches!(actions.get(i as usize), Some(Action::Create { .. }));
        if !ok {
            return Err((
                "from_action",
                format!("{i} is not an earlier `create` in this list"),
            ));
        }
    }
    for (field, value) in [
        ("ticket_guid", &t.guid),
        ("external_id", &t.external_id),
        ("branch", &t.branch),
    ] {
        if let Some(v) = value
            && (v.len() > FIELD_MAX || v.chars().any(char::is_control))
        {
            return Err((
                field,
                format!("must be one line of at most {FIELD_MAX} characters"),
            ));
        }
    }
    Ok(())
}

fn check_text(value: &mut String, kind: Kind) -> Result<(), String> {
    if value.contains('\0') {
        return Err("contains a NUL character".into());
    }
    if let Kind::Multiline { .. } = kind {
        if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            *value = value
                .chars()
                .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
                .collect();
        }
    } else if value.chars().any(char::is_control) {
        return Err("contains a control character; it must be one line".into());
    }
    let trimmed = value.trim();
    if trimmed.len() != value.len() {
        *value = trimmed.to_owned();
    }
    let required = !matches!(kind, Kind::Multiline { required: false });
    if required && value.is_empty() {
        return Err("is empty".into());
    }
    let max = match kind {
        Kind::Subject => SUBJECT_MAX,
        Kind::Multiline { .. } => TEXT_MAX,
        Kind::Label => LABEL_MAX,
        Kind::Url => 2048,
        Kind::Line | Kind::Email => FIELD_MAX,
    };
    let len = value.chars().count();
    if len > max {
        return Err(format!("is {len} characters, over {max}"));
    }
    if let Kind::Email = kind
        && !is_email(value)
    {
        return Err(format!("`{value}` is not an e-mail address"));
    }
    Ok(())
}

/// `local@domain.tld`: one `@`, no spaces, a dot inside the domain.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !s.contains(char::is_whitespace)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{Priority, RaciRole, SignoffStatus};

    fn guid(g: &str) -> TicketRef {
        TicketRef {
            guid: Some(g.into()),
            ..TicketRef::default()
        }
    }

    fn create(subject: &str) -> Action {
        Action::Create {
            subject: subject.into(),
            description: "d".into(),
            priority: Priority::Low,
            ticket_type: "BUG".into(),
            requested_by: None,
            external_id: None,
            labels: vec![],
        }
    }

    fn signoff(email: &str) -> Action {
        Action::Signoff {
            ticket: guid("t1"),
            activity: "Development".into(),
            role: RaciRole::Consulted,
            email: email.into(),
            signoff_status: SignoffStatus::Approved,
        }
    }

    fn status(s: &str) -> Action {
        Action::StatusChange {
            ticket: guid("t1"),
            status: s.into(),
            changed_by: "a@b.co".into(),
        }
    }

    fn comment(text: &str) -> Action {
        Action::Comment {
            ticket: guid("t1"),
            comment: text.into(),
            commented_by: "ci".into(),
            external_comment_id: None,
        }
    }

    #[test]
    fn refusals_name_index_and_field() {
        let wf = Workflow::default();
        let cases: Vec<(Vec<Action>, &str)> = vec![
            (
                vec![create("  ")],
                "action 0 (create): field `subject` is empty",
            ),
            (
                vec![create("ok"), signoff("not-an-email")],
                "action 1 (signoff): field `email` `not-an-email` is not an e-mail address",
            ),
            (
                vec![signoff("a@localhost")],
                "field `email` `a@localhost` is not an e-mail address",
            ),
            (
                vec![status("DONE")],
                "action 0 (status_change): field `status` `DONE` is not in the workflow",
            ),
            (
                vec![comment("nul\0here")],
                "field `comment` contains a NUL character",
            ),
            (
                vec![create("two\nlines")],
                "field `subject` contains a control character",
            ),
            (
                vec![create(&"x".repeat(513))],
                "field `subject` is 513 characters, over 512",
            ),
            (
                vec![Action::Resolve {
                    ticket: TicketRef::default(),
                    resolved_by: "x".into(),
                }],
                "field `ticket` names no ticket",
            ),
            (
                vec![Action::Resolve {
                    ticket: TicketRef {
                        from_action: Some(0),
                        ..TicketRef::default()
                    },
                    resolved_by: "x".into(),
                }],
                "field `from_action` 0 is not an earlier `create`",
            ),
            (
                vec![
                    status("NEW"),
                    Action::Resolve {
                        ticket: TicketRef {
                            from_action: Some(0),
                            ..TicketRef::default()
                        },
                        resolved_by: "x".into(),
                    },
                ],
                "action 1 (resolve): field `from_action` 0 is not an earlier `create`",
            ),
        ];
        for (actions, want) in cases {
            let got = validate(&actions, &wf).expect_err(want).to_string();
            assert!(got.contains(want), "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn valid_lists_pass_normalised() {
        let wf = Workflow::default();
        let actions = vec![
            create("  Login bug "),
            Action::LinkPr {
                ticket: TicketRef {
                    from_action: Some(0),
                    ..TicketRef::default()
                },
                pr_id: "7".into(),
                repo: "o/r".into(),
                url: None,
            },
            comment("line one\n\x1b[31mred\x1b[0m\ttab\x0c"),
            status("IN_PROGRESS"),
            signoff("ann@technocore.co.za"),
        ];
        let out = validate(&actions, &wf).expect("valid");
        let Action::Create { subject, .. } = &out[0] else {
            panic!()
        };
        assert_eq!(subject, "Login bug");
        let Action::Comment { comment, .. } = &out[2] else {
            panic!()
        };
        assert_eq!(comment, "line one\n[31mred[0m\ttab");
    }

    #[test]
    fn custom_workflows_replace_the_default() {
        let wf = Workflow::new(vec!["OPEN".into(), "DONE".into()]).unwrap();
        assert!(validate(&[status("DONE")], &wf).is_ok());
        assert!(validate(&[status("IN_PROGRESS")], &wf).is_err());
        assert_eq!(wf.initial(), "OPEN");
        assert!(Workflow::new(vec![]).is_none());
    }
}
