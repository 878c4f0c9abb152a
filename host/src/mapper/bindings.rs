//! The one `bindgen!` of the `mapper` world, and conversions between its
//! generated types and the host's own ([`crate::action`], [`super::Delivery`]).

use crate::action::{self, Action, MapErrorKind, Priority, RaciRole, SignoffStatus, TicketRef};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "mapper",
});

pub use self::sluice::mapper::host as host_api;
pub use self::sluice::mapper::types as wit;

impl From<&super::Delivery> for wit::Delivery {
    fn from(d: &super::Delivery) -> Self {
        wit::Delivery {
            provider: d.provider.clone(),
            method: d.method.clone(),
            path: d.path.clone(),
            headers: d
                .headers
                .iter()
                .map(|(name, value)| wit::Header {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            body: d.body.clone(),
            received_at: d.received_at.clone(),
        }
    }
}

impl From<wit::Mapped> for action::Mapped {
    fn from(m: wit::Mapped) -> Self {
        action::Mapped {
            event_type: m.event_type,
            actions: m.actions.into_iter().map(Action::from).collect(),
        }
    }
}

impl From<wit::MapError> for action::MapError {
    fn from(e: wit::MapError) -> Self {
        let kind = match e.kind {
            wit::MapErrorKind::MalformedPayload => MapErrorKind::MalformedPayload,
            wit::MapErrorKind::UnsupportedEvent => MapErrorKind::UnsupportedEvent,
            wit::MapErrorKind::BadConfig => MapErrorKind::BadConfig,
            wit::MapErrorKind::Internal => MapErrorKind::Internal,
        };
        action::MapError {
            kind,
            message: e.message,
        }
    }
}

impl From<wit::TicketRef> for TicketRef {
    fn from(t: wit::TicketRef) -> Self {
        TicketRef {
            guid: t.guid,
            external_id: t.external_id,
            branch: t.branch,
            from_action: t.from_action,
        }
    }
}

impl From<wit::Priority> for Priority {
    fn from(p: wit::Priority) -> Self {
        match p {
            wit::Priority::Low => Priority::Low,
            wit::Priority::Medium => Priority::Medium,
            wit::Priority::High => Priority::High,
            wit::Priority::Critical => Priority::Critical,
        }
    }
}

impl From<wit::RaciRole> for RaciRole {
    fn from(r: wit::RaciRole) -> Self {
        match r {
            wit::RaciRole::Responsible => RaciRole::Responsible,
            wit::RaciRole::Accountable => RaciRole::Accountable,
            wit::RaciRole::Consulted => RaciRole::Consulted,
            wit::RaciRole::Informed => RaciRole::Informed,
        }
    }
}

impl From<wit::SignoffStatus> for SignoffStatus {
    fn from(s: wit::SignoffStatus) -> Self {
        match s {
            wit::SignoffStatus::Pending => SignoffStatus::Pending,
            wit::SignoffStatus::Approved => SignoffStatus::Approved,
            wit::SignoffStatus::Rejected => SignoffStatus::Rejected,
        }
    }
}

impl From<wit::Action> for Action {
    fn from(a: wit::Action) -> Self {
        match a {
            wit::Action::Create(c) => Action::Create {
                subject: c.subject,
                description: c.description,
                priority: c.priority.into(),
                ticket_type: c.ticket_type,
                requested_by: c.requested_by,
                external_id: c.external_id,
                labels: c.labels,
            },
            wit::Action::StatusChange(s) => Action::StatusChange {
                ticket: s.ticket.into(),
                status: s.status,
                changed_by: s.changed_by,
            },
            wit::Action::Comment(c) => Action::Comment {
                ticket: c.ticket.into(),
                comment: c.comment,
                commented_by: c.commented_by,
                external_comment_id: c.external_comment_id,
            },
            wit::Action::Assign(a) => Action::Assign {
                ticket: a.ticket.into(),
                assigned_to: a.assigned_to,
                assigned_by: a.assigned_by,
            },
            wit::Action::Signoff(s) => Action::Signoff {
                ticket: s.ticket.into(),
                activity: s.activity,
                role: s.role.into(),
                email: s.email,
                signoff_status: s.signoff_status.into(),
            },
            wit::Action::LinkPr(l) => Action::LinkPr {
                ticket: l.ticket.into(),
                pr_id: l.pr_id,
                repo: l.repo,
                url: l.url,
            },
            wit::Action::Resolve(r) => Action::Resolve {
                ticket: r.ticket.into(),
                resolved_by: r.resolved_by,
            },
            wit::Action::Escalate(e) => Action::Escalate {
                ticket: e.ticket.into(),
                escalated_by: e.escalated_by,
                reason: e.reason,
            },
        }
    }
}
