//! The `mapper` world's bindings — the current one (`sluice:mapper@0.2.0`,
//! from `wit/`) and the 0.1.0 world components built before it still
//! implement (a frozen copy in `host/wit/v0_1/`) — and the conversions
//! between their generated types and the host's own ([`crate::action`],
//! [`crate::change`], [`super::Delivery`]).
//!
//! The types both versions share have the same shape, so one macro writes
//! their conversions for each; what differs (the action variant, the
//! ticket, the change, the outbound request) is converted by hand.

use crate::action::{self, Action, MapErrorKind, Priority, RaciRole, SignoffStatus, TicketRef};
use crate::change::{self, Capture, CaptureKind, ChangeKind, OutboundRequest, TicketChange};

/// `sluice:mapper@0.2.0`, the world of `wit/mapper.wit`.
pub mod v2 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "mapper",
        // Calls run on async wasmtime so a wall-clock deadline can cancel
        // them anywhere, a WASI sleep or a provider API that never answers
        // included; `provider-api` awaits its HTTP answer instead of
        // blocking a thread.
        imports: { "sluice:mapper/host.provider-api": async },
        exports: { default: async },
    });
}

/// `sluice:mapper@0.1.0`: loaded and converted for, never extended.
pub mod v1 {
    wasmtime::component::bindgen!({
        path: "wit/v0_1",
        world: "mapper",
        imports: { "sluice:mapper/host.provider-api": async },
        exports: { default: async },
    });
}

pub use v1::sluice::mapper::host as host_api_v1;
pub use v1::sluice::mapper::types as wit_v1;
pub use v2::sluice::mapper::host as host_api;
pub use v2::sluice::mapper::types as wit;

/// Conversions for the types both worlds define alike.
macro_rules! shared_types {
    ($w:ident, from_host { $($from_host:tt)* }, into_host { $($into_host:tt)* }) => {
        impl From<&crate::mapper::Delivery> for $w::Delivery {
            fn from(d: &crate::mapper::Delivery) -> Self {
                $w::Delivery {
                    provider: d.provider.clone(),
                    method: d.method.clone(),
                    path: d.path.clone(),
                    headers: d
                        .headers
                        .iter()
                        .map(|(name, value)| $w::Header {
                            name: name.clone(),
                            value: value.clone(),
                        })
                        .collect(),
                    body: d.body.clone(),
                    received_at: d.received_at.clone(),
                }
            }
        }

        impl From<$w::MapError> for action::MapError {
            fn from(e: $w::MapError) -> Self {
                let kind = match e.kind {
                    $w::MapErrorKind::MalformedPayload => MapErrorKind::MalformedPayload,
                    $w::MapErrorKind::UnsupportedEvent => MapErrorKind::UnsupportedEvent,
                    $w::MapErrorKind::BadConfig => MapErrorKind::BadConfig,
                    $w::MapErrorKind::Internal => MapErrorKind::Internal,
                };
                action::MapError {
                    kind,
                    message: e.message,
                }
            }
        }

        impl From<$w::TicketRef> for TicketRef {
            fn from(t: $w::TicketRef) -> Self {
                TicketRef {
                    guid: t.guid,
                    external_id: t.external_id,
                    branch: t.branch,
                    from_action: t.from_action,
                }
            }
        }

        impl From<&TicketRef> for $w::TicketRef {
            fn from(t: &TicketRef) -> Self {
                $w::TicketRef {
                    guid: t.guid.clone(),
                    external_id: t.external_id.clone(),
                    branch: t.branch.clone(),
                    from_action: t.from_action,
                }
            }
        }

        impl From<$w::Priority> for Priority {
            fn from(p: $w::Priority) -> Self {
                match p {
                    $w::Priority::Low => Priority::Low,
                    $w::Priority::Medium => Priority::Medium,
                    $w::Priority::High => Priority::High,
                    $w::Priority::Critical => Priority::Critical,
                }
            }
        }

        impl From<Priority> for $w::Priority {
            fn from(p: Priority) -> Self {
                match p {
                    Priority::Low => $w::Priority::Low,
                    Priority::Medium => $w::Priority::Medium,
                    Priority::High => $w::Priority::High,
                    Priority::Critical => $w::Priority::Critical,
                }
            }
        }

        impl From<$w::RaciRole> for RaciRole {
            fn from(r: $w::RaciRole) -> Self {
                match r {
                    $w::RaciRole::Responsible => RaciRole::Responsible,
                    $w::RaciRole::Accountable => RaciRole::Accountable,
                    $w::RaciRole::Consulted => RaciRole::Consulted,
                    $w::RaciRole::Informed => RaciRole::Informed,
                }
            }
        }

        impl From<RaciRole> for $w::RaciRole {
            fn from(r: RaciRole) -> Self {
                match r {
                    RaciRole::Responsible => $w::RaciRole::Responsible,
                    RaciRole::Accountable => $w::RaciRole::Accountable,
                    RaciRole::Consulted => $w::RaciRole::Consulted,
                    RaciRole::Informed => $w::RaciRole::Informed,
                }
            }
        }

        impl From<$w::SignoffStatus> for SignoffStatus {
            fn from(s: $w::SignoffStatus) -> Self {
                match s {
                    $w::SignoffStatus::Pending => SignoffStatus::Pending,
                    $w::SignoffStatus::Approved => SignoffStatus::Approved,
                    $w::SignoffStatus::Rejected => SignoffStatus::Rejected,
                }
            }
        }

        impl From<SignoffStatus> for $w::SignoffStatus {
            fn from(s: SignoffStatus) -> Self {
                match s {
                    SignoffStatus::Pending => $w::SignoffStatus::Pending,
                    SignoffStatus::Approved => $w::SignoffStatus::Approved,
                    SignoffStatus::Rejected => $w::SignoffStatus::Rejected,
                }
            }
        }

        impl From<&change::FieldChange> for $w::FieldChange {
            fn from(f: &change::FieldChange) -> Self {
                $w::FieldChange {
                    field: f.field.clone(),
                    old_value: f.old_value.clone(),
                    new_value: f.new_value.clone(),
                }
            }
        }

        impl From<change::NoticeKind> for $w::NoticeKind {
            fn from(k: change::NoticeKind) -> Self {
                match k {
                    change::NoticeKind::Direct => $w::NoticeKind::Direct,
                    change::NoticeKind::Digest => $w::NoticeKind::Digest,
                }
            }
        }

        impl From<$w::ApiRequest> for crate::mapper::ApiRequest {
            fn from(r: $w::ApiRequest) -> Self {
                crate::mapper::ApiRequest {
                    method: r.method,
                    path: r.path,
                    headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
                    body: r.body,
                }
            }
        }

        impl From<crate::mapper::ApiResponse> for $w::ApiResponse {
            fn from(r: crate::mapper::ApiResponse) -> Self {
                $w::ApiResponse {
                    status: r.status,
                    headers: r
                        .headers
                        .into_iter()
                        .map(|(name, value)| $w::Header { name, value })
                        .collect(),
                    body: r.body,
                }
            }
        }

        impl From<crate::mapper::ApiFailure> for $w::ApiError {
            fn from(e: crate::mapper::ApiFailure) -> Self {
                match e {
                    crate::mapper::ApiFailure::Denied(m) => $w::ApiError::Denied(m),
                    crate::mapper::ApiFailure::BudgetExhausted => $w::ApiError::BudgetExhausted,
                    crate::mapper::ApiFailure::Timeout => $w::ApiError::Timeout,
                    crate::mapper::ApiFailure::TooLarge => $w::ApiError::TooLarge,
                    crate::mapper::ApiFailure::Unavailable(m) => $w::ApiError::Unavailable(m),
                }
            }
        }

        /// The action as this world names it; `None` when it cannot.
        pub(super) fn wit_action(a: &Action) -> Option<$w::Action> {
                Some(match a {
                    Action::Create {
                        subject,
                        description,
                        priority,
                        ticket_type,
                        requested_by,
                        external_id,
                        labels,
                    } => $w::Action::Create($w::CreateTicket {
                        subject: subject.clone(),
                        description: description.clone(),
                        priority: (*priority).into(),
                        ticket_type: ticket_type.clone(),
                        requested_by: requested_by.clone(),
                        external_id: external_id.clone(),
                        labels: labels.clone(),
                    }),
                    Action::StatusChange {
                        ticket,
                        status,
                        changed_by,
                    } => $w::Action::StatusChange($w::StatusChange {
                        ticket: ticket.into(),
                        status: status.clone(),
                        changed_by: changed_by.clone(),
                    }),
                    Action::Comment {
                        ticket,
                        comment,
                        commented_by,
                        external_comment_id,
                    } => $w::Action::Comment($w::AddComment {
                        ticket: ticket.into(),
                        comment: comment.clone(),
                        commented_by: commented_by.clone(),
                        external_comment_id: external_comment_id.clone(),
                    }),
                    Action::Assign {
                        ticket,
                        assigned_to,
                        assigned_by,
                    } => $w::Action::Assign($w::Assign {
                        ticket: ticket.into(),
                        assigned_to: assigned_to.clone(),
                        assigned_by: assigned_by.clone(),
                    }),
                    Action::Signoff {
                        ticket,
                        activity,
                        role,
                        email,
                        signoff_status,
                    } => $w::Action::Signoff($w::Signoff {
                        ticket: ticket.into(),
                        activity: activity.clone(),
                        role: (*role).into(),
                        email: email.clone(),
                        signoff_status: (*signoff_status).into(),
                    }),
                    Action::LinkPr {
                        ticket,
                        pr_id,
                        repo,
                        url,
                    } => $w::Action::LinkPr($w::LinkPr {
                        ticket: ticket.into(),
                        pr_id: pr_id.clone(),
                        repo: repo.clone(),
                        url: url.clone(),
                    }),
                    Action::Resolve {
                        ticket,
                        resolved_by,
                    } => $w::Action::Resolve($w::Resolve {
                        ticket: ticket.into(),
                        resolved_by: resolved_by.clone(),
                    }),
                    Action::Escalate {
                        ticket,
                        escalated_by,
                        reason,
                    } => $w::Action::Escalate($w::Escalate {
                        ticket: ticket.into(),
                        escalated_by: escalated_by.clone(),
                        reason: reason.clone(),
                    }),
                    $($from_host)*
                })
        }

        impl From<$w::Action> for Action {
            fn from(a: $w::Action) -> Self {
                match a {
                    $w::Action::Create(c) => Action::Create {
                        subject: c.subject,
                        description: c.description,
                        priority: c.priority.into(),
                        ticket_type: c.ticket_type,
                        requested_by: c.requested_by,
                        external_id: c.external_id,
                        labels: c.labels,
                    },
                    $w::Action::StatusChange(s) => Action::StatusChange {
                        ticket: s.ticket.into(),
                        status: s.status,
                        changed_by: s.changed_by,
                    },
                    $w::Action::Comment(c) => Action::Comment {
                        ticket: c.ticket.into(),
                        comment: c.comment,
                        commented_by: c.commented_by,
                        external_comment_id: c.external_comment_id,
                    },
                    $w::Action::Assign(a) => Action::Assign {
                        ticket: a.ticket.into(),
                        assigned_to: a.assigned_to,
                        assigned_by: a.assigned_by,
                    },
                    $w::Action::Signoff(s) => Action::Signoff {
                        ticket: s.ticket.into(),
                        activity: s.activity,
                        role: s.role.into(),
                        email: s.email,
                        signoff_status: s.signoff_status.into(),
                    },
                    $w::Action::LinkPr(l) => Action::LinkPr {
                        ticket: l.ticket.into(),
                        pr_id: l.pr_id,
                        repo: l.repo,
                        url: l.url,
                    },
                    $w::Action::Resolve(r) => Action::Resolve {
                        ticket: r.ticket.into(),
                        resolved_by: r.resolved_by,
                    },
                    $w::Action::Escalate(e) => Action::Escalate {
                        ticket: e.ticket.into(),
                        escalated_by: e.escalated_by,
                        reason: e.reason,
                    },
                    $($into_host)*
                }
            }
        }

        impl From<$w::Mapped> for action::Mapped {
            fn from(m: $w::Mapped) -> Self {
                action::Mapped {
                    event_type: m.event_type,
                    actions: m.actions.into_iter().map(Action::from).collect(),
                }
            }
        }
    };
}

mod shared_v2 {
    use super::*;
    shared_types!(wit,
        from_host {
            Action::SetFields {
                ticket,
                fields,
                changed_by,
            } => wit::Action::SetFields(wit::SetFields {
                ticket: ticket.into(),
                fields: fields
                    .iter()
                    .map(|(name, value)| wit::Field {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                changed_by: changed_by.clone(),
            }),
            Action::Update {
                ticket,
                subject,
                description,
                priority,
                ticket_type,
                changed_by,
            } => wit::Action::Update(wit::UpdateTicket {
                ticket: ticket.into(),
                subject: subject.clone(),
                description: description.clone(),
                priority: priority.map(Into::into),
                ticket_type: ticket_type.clone(),
                changed_by: changed_by.clone(),
            }),
        },
        into_host {
            wit::Action::SetFields(s) => Action::SetFields {
                ticket: s.ticket.into(),
                fields: last_of_each(s.fields.into_iter().map(|f| (f.name, f.value))),
                changed_by: s.changed_by,
            },
            wit::Action::Update(u) => Action::Update {
                ticket: u.ticket.into(),
                subject: u.subject,
                description: u.description,
                priority: u.priority.map(Into::into),
                ticket_type: u.ticket_type,
                changed_by: u.changed_by,
            },
        }
    );
}

mod shared_v1 {
    use super::*;
    // 0.1.0 cannot name the actions 0.2.0 added.
    shared_types!(wit_v1,
        from_host { Action::SetFields { .. } | Action::Update { .. } => return None, },
        into_host {}
    );
}

/// Fields named more than once keep their last value, in the place of the
/// first: what setting them in order leaves, and what the JSON rendering
/// (an object) can say.
fn last_of_each(fields: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in fields {
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => out.push((name, value)),
        }
    }
    out
}

impl From<&change::TicketView> for wit::Ticket {
    fn from(t: &change::TicketView) -> Self {
        wit::Ticket {
            guid: t.guid.clone(),
            subject: t.subject.clone(),
            description: t.description.clone(),
            status: t.status.clone(),
            priority: t.priority.into(),
            ticket_type: t.ticket_type.clone(),
            assignee: t.assignee.clone(),
            requested_by: t.requested_by.clone(),
            labels: t.labels.clone(),
            created_at: t.created_at.clone(),
            updated_at: t.updated_at.clone(),
            resolved_at: t.resolved_at.clone(),
            escalated_at: t.escalated_at.clone(),
            status_changed_at: t.status_changed_at.clone(),
            fields: t
                .fields
                .iter()
                .map(|(name, value)| wit::Field {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        }
    }
}

impl From<&change::TicketView> for wit_v1::Ticket {
    fn from(t: &change::TicketView) -> Self {
        wit_v1::Ticket {
            guid: t.guid.clone(),
            subject: t.subject.clone(),
            description: t.description.clone(),
            status: t.status.clone(),
            priority: t.priority.into(),
            ticket_type: t.ticket_type.clone(),
            assignee: t.assignee.clone(),
            requested_by: t.requested_by.clone(),
            labels: t.labels.clone(),
            created_at: t.created_at.clone(),
            updated_at: t.updated_at.clone(),
            resolved_at: t.resolved_at.clone(),
            escalated_at: t.escalated_at.clone(),
        }
    }
}

/// The change as a 0.2.0 component sees it. Every action has a 0.2.0
/// name, so this is `None` only for an action added after 0.2.0.
pub fn change_v2(c: &TicketChange) -> Option<wit::TicketChange> {
    {
        let what = match &c.what {
            ChangeKind::Applied(a) => wit::ChangeKind::Applied(shared_v2::wit_action(a)?),
            ChangeKind::Updated(fields) => {
                wit::ChangeKind::Updated(fields.iter().map(Into::into).collect())
            }
            ChangeKind::Stale(n) => wit::ChangeKind::Stale(wit::StaleNotice {
                rule: n.rule.clone(),
                kind: n.kind.into(),
                tickets: n.tickets.iter().map(Into::into).collect(),
            }),
            ChangeKind::Linked(l) => wit::ChangeKind::Linked(wit::Link {
                provider: l.provider.clone(),
                external_id: l.external_id.clone(),
            }),
        };
        Some(wit::TicketChange {
            id: c.id.clone(),
            provider: c.provider.clone(),
            at: c.at.clone(),
            origin: c.origin.clone(),
            ticket: c.ticket.as_ref().map(Into::into),
            links: c
                .links
                .iter()
                .map(|l| wit::Link {
                    provider: l.provider.clone(),
                    external_id: l.external_id.clone(),
                })
                .collect(),
            what,
        })
    }
}

/// The change as a 0.1.0 component sees it, for `provider`: its own links
/// only, and nothing for what 0.1.0 cannot name (a link, a field edit
/// action) — the host then sends nothing.
pub fn change_v1(c: &TicketChange, provider: &str) -> Option<wit_v1::TicketChange> {
    let what = match &c.what {
        ChangeKind::Applied(a) => wit_v1::ChangeKind::Applied(shared_v1::wit_action(a)?),
        ChangeKind::Updated(fields) => {
            wit_v1::ChangeKind::Updated(fields.iter().map(Into::into).collect())
        }
        ChangeKind::Stale(n) => wit_v1::ChangeKind::Stale(wit_v1::StaleNotice {
            rule: n.rule.clone(),
            kind: n.kind.into(),
            tickets: n.tickets.iter().map(Into::into).collect(),
        }),
        ChangeKind::Linked(_) => return None,
    };
    Some(wit_v1::TicketChange {
        id: c.id.clone(),
        at: c.at.clone(),
        origin: c.origin.clone(),
        ticket: c.ticket.as_ref().map(Into::into),
        links: c
            .links
            .iter()
            .filter(|l| l.provider == provider)
            .map(|l| l.external_id.clone())
            .collect(),
        what,
    })
}

impl From<wit::OutboundRequest> for OutboundRequest {
    fn from(r: wit::OutboundRequest) -> Self {
        OutboundRequest {
            method: r.method,
            path: r.path,
            headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: r.body,
            captures: r
                .captures
                .into_iter()
                .map(|c| Capture {
                    kind: match c.kind {
                        wit::CaptureKind::Mirror => CaptureKind::Mirror,
                        wit::CaptureKind::Echo => CaptureKind::Echo,
                    },
                    pointer: c.pointer,
                    prefix: c.prefix,
                })
                .collect(),
        }
    }
}

impl From<wit_v1::OutboundRequest> for OutboundRequest {
    fn from(r: wit_v1::OutboundRequest) -> Self {
        OutboundRequest {
            method: r.method,
            path: r.path,
            headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: r.body,
            // 0.1.0's one capture is the created mirror's id.
            captures: r
                .capture_external_id
                .into_iter()
                .map(|pointer| Capture {
                    kind: CaptureKind::Mirror,
                    pointer,
                    prefix: String::new(),
                })
                .collect(),
        }
    }
}

impl From<wit::Person> for crate::mapper::Person {
    fn from(p: wit::Person) -> Self {
        crate::mapper::Person {
            email: p.email,
            name: p.name,
            identities: p
                .identities
                .into_iter()
                .map(|i| (i.provider, i.id))
                .collect(),
        }
    }
}

impl From<&crate::mapper::Person> for wit::Person {
    fn from(p: &crate::mapper::Person) -> Self {
        wit::Person {
            email: p.email.clone(),
            name: p.name.clone(),
            identities: p
                .identities
                .iter()
                .map(|(provider, id)| wit::Identity {
                    provider: provider.clone(),
                    id: id.clone(),
                })
                .collect(),
        }
    }
}
