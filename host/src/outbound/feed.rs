//! The change feed: a history row, read back as the [`TicketChange`] an
//! outbox row offers its provider — the ticket as it is now, every
//! provider's links on it, and what changed.

use serde_json::Value;

use crate::action::{Action, Priority};
use crate::change::{
    ChangeKind, FieldChange, LinkView, NoticeKind, StaleNotice, TicketChange, TicketView,
};
use crate::store::{HistoryRow, OutboxRow, TicketRow};

/// Why a row's change cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("history row {0} is gone")]
    MissingHistory(i64),
    #[error("ticket `{0}` is gone")]
    MissingTicket(String),
    #[error("history row {id}: {reason}")]
    Unreadable { id: i64, reason: String },
}

/// The change of outbox row `row`, from its history row, its ticket and
/// the ticket's links.
pub fn change_of(
    row: &OutboxRow,
    history: Option<&HistoryRow>,
    ticket: Option<&TicketRow>,
    links: &[(String, String, String)],
) -> Result<TicketChange, FeedError> {
    let h = history.ok_or(FeedError::MissingHistory(row.history_id))?;
    let ticket = match &row.ticket_guid {
        Some(guid) => Some(view(
            ticket.ok_or_else(|| FeedError::MissingTicket(guid.clone()))?,
        )),
        None => None,
    };
    let links = links
        .iter()
        .filter(|(guid, _, _)| Some(guid) == row.ticket_guid.as_ref())
        .map(|(_, provider, external_id)| LinkView {
            provider: provider.clone(),
            external_id: external_id.clone(),
        })
        .collect();
    Ok(TicketChange {
        id: format!("{}", row.id),
        provider: row.provider.clone(),
        at: h.at.clone(),
        origin: h.origin.clone(),
        ticket,
        links,
        what: kind_of(h)?,
    })
}

/// What a history row says happened.
fn kind_of(h: &HistoryRow) -> Result<ChangeKind, FeedError> {
    let unreadable = |reason: &str| FeedError::Unreadable {
        id: h.id,
        reason: reason.to_owned(),
    };
    let change: Value = serde_json::from_str(&h.change).map_err(|e| unreadable(&e.to_string()))?;
    match h.kind.as_str() {
        "update" => {
            let fields = change
                .get("fields")
                .and_then(Value::as_object)
                .ok_or_else(|| unreadable("an update without `fields`"))?;
            Ok(ChangeKind::Updated(
                fields
                    .iter()
                    .map(|(field, v)| FieldChange {
                        field: field.clone(),
                        old_value: text_of(&v["from"]),
                        new_value: text_of(&v["to"]),
                    })
                    .collect(),
            ))
        }
        "link" => Ok(ChangeKind::Linked(LinkView {
            provider: change["provider"]
                .as_str()
                .ok_or_else(|| unreadable("a link without `provider`"))?
                .to_owned(),
            external_id: change["external_id"]
                .as_str()
                .ok_or_else(|| unreadable("a link without `external_id`"))?
                .to_owned(),
        })),
        // A sweeper notice keeps its tickets as they were when it was
        // swept: the days it counts are the days of that moment.
        "stale" => Ok(ChangeKind::Stale(StaleNotice {
            rule: change["rule"]
                .as_str()
                .ok_or_else(|| unreadable("a stale notice without `rule`"))?
                .to_owned(),
            kind: serde_json::from_value::<NoticeKind>(change["notice"].clone())
                .map_err(|e| unreadable(&format!("a stale notice's `notice`: {e}")))?,
            tickets: change["tickets"]
                .as_array()
                .ok_or_else(|| unreadable("a stale notice without `tickets`"))?
                .iter()
                .map(TicketView::from_json)
                .collect::<Result<_, _>>()
                .map_err(|e| unreadable(&format!("a stale notice's tickets: {e}")))?,
        })),
        _ => Action::from_json(&change)
            .map(ChangeKind::Applied)
            .ok_or_else(|| unreadable(&format!("`{}` is not an action", h.kind))),
    }
}

/// A field's value as text: strings as they are, lists and numbers as JSON.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A stored ticket as mappers see it.
pub fn view(t: &TicketRow) -> TicketView {
    TicketView {
        guid: t.guid.clone(),
        subject: t.subject.clone(),
        description: t.description.clone(),
        status: t.status.clone(),
        priority: Priority::parse(&t.priority).unwrap_or(Priority::Medium),
        ticket_type: t.ticket_type.clone(),
        assignee: t.assignee.clone(),
        requested_by: t.requested_by.clone(),
        labels: t.labels.clone(),
        created_at: t.created_at.clone(),
        updated_at: t.updated_at.clone(),
        resolved_at: t.resolved_at.clone(),
        escalated_at: t.escalated_at.clone(),
        status_changed_at: t.status_since().to_owned(),
        fields: t
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}
