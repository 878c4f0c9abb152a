//! Field updates through the ticket API (the seed's `update_ticket`):
//! validated like actions, recorded in history as one `update` change with
//! each field's old and new value, offered to every outbound provider.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::apply::{Applier, ApplyError, ApplyInput};
use super::validate::ValidationError;
use crate::action::{Action, Priority, TicketRef};
use crate::store::{Store, TicketRow, now};

/// Fields to change; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct TicketUpdate {
    pub subject: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub priority: Option<Priority>,
    pub ticket_type: Option<String>,
    pub assignee: Option<String>,
    pub labels: Option<Vec<String>>,
    /// Custom fields to set; an empty value clears one. Fields not named
    /// are left alone.
    pub fields: BTreeMap<String, String>,
}

impl Applier {
    /// Applies `update` to ticket `guid` as `actor`; returns the ticket.
    pub async fn update(
        &self,
        store: &Store,
        guid: &str,
        update: &TicketUpdate,
        actor: &str,
    ) -> Result<TicketRow, ApplyError> {
        let new_fields = self.check_update(update, actor)?;
        let mut tx = store.begin().await?;
        let mut t = tx
            .ticket_for_update(guid)
            .await?
            .ok_or_else(|| ApplyError::NotFound(guid.to_owned()))?;
        let mut fields = Map::new();
        let mut set = |name: &str, slot: &mut String, new: &Option<String>| {
            if let Some(new) = new
                && slot != new
            {
                fields.insert(name.into(), json!({"from": slot, "to": new}));
                *slot = new.clone();
            }
        };
        set("subject", &mut t.subject, &update.subject);
        set("description", &mut t.description, &update.description);
        let before = t.status.clone();
        set("status", &mut t.status, &update.status);
        let status_moved = t.status != before;
        set("ticket_type", &mut t.ticket_type, &update.ticket_type);
        set(
            "priority",
            &mut t.priority,
            &update.priority.map(|p| p.as_str().to_owned()),
        );
        if let Some(a) = &update.assignee
            && t.assignee.as_ref() != Some(a)
        {
            fields.insert("assignee".into(), json!({"from": t.assignee, "to": a}));
            t.assignee = Some(a.clone());
        }
        if let Some(l) = &update.labels
            && &t.labels != l
        {
            fields.insert("labels".into(), json!({"from": t.labels, "to": l}));
            t.labels = l.clone();
        }
        // Recorded as a provider's `set_fields` is: `fields.<name>`.
        for (name, value) in new_fields {
            let old = t.fields.get(&name).cloned();
            let new = (!value.is_empty()).then_some(value);
            if old == new {
                continue;
            }
            fields.insert(format!("fields.{name}"), json!({"from": old, "to": new}));
            match new {
                Some(v) => t.fields.insert(name, v),
                None => t.fields.remove(&name),
            };
        }
        if fields.is_empty() {
            return Ok(t);
        }
        let at = now();
        t.updated_at = at.clone();
        if status_moved {
            t.status_changed_at = Some(at.clone());
        }
        tx.update_ticket(&t).await?;
        let change = json!({"action": "update", "ticket_guid": guid, "fields": Value::Object(fields), "changed_by": actor});
        let input = ApplyInput {
            delivery_id: None,
            origin: None,
            mapper_hash: None,
            actions: &[],
            state: &[],
        };
        self.record_change(&mut tx, &input, guid, "update", change, Some(actor), &at)
            .await?;
        tx.commit().await?;
        Ok(t)
    }

    /// Runs the action rules over the update's fields, so the API and the
    /// mappers obey one set of rules; returns the custom fields as the
    /// rules normalise them (trimmed, stray control characters dropped).
    fn check_update(
        &self,
        u: &TicketUpdate,
        actor: &str,
    ) -> Result<Vec<(String, String)>, ApplyError> {
        let r = TicketRef {
            guid: Some("update".into()),
            ..TicketRef::default()
        };
        // A status change probes the actor too: the history records it
        // whichever fields change.
        let mut probe = vec![Action::StatusChange {
            ticket: r.clone(),
            status: u
                .status
                .clone()
                .unwrap_or_else(|| self.workflow.initial().to_owned()),
            changed_by: actor.into(),
        }];
        if let Some(a) = &u.assignee {
            probe.push(Action::Assign {
                ticket: r.clone(),
                assigned_to: a.clone(),
                assigned_by: actor.into(),
            });
        }
        if !u.fields.is_empty() {
            probe.push(Action::SetFields {
                ticket: r.clone(),
                fields: u.fields.clone().into_iter().collect(),
                changed_by: actor.into(),
            });
        }
        probe.push(Action::Create {
            subject: u.subject.clone().unwrap_or_else(|| "unchanged".into()),
            description: u.description.clone().unwrap_or_default(),
            priority: Priority::Low,
            ticket_type: u.ticket_type.clone().unwrap_or_else(|| "unchanged".into()),
            requested_by: None,
            external_id: None,
            labels: u.labels.clone().unwrap_or_default(),
        });
        let checked = super::validate::validate(&probe, &self.workflow)
            .map_err(|e: ValidationError| ApplyError::Invalid(e))?;
        Ok(checked
            .into_iter()
            .find_map(|a| match a {
                Action::SetFields { fields, .. } => Some(fields),
                _ => None,
            })
            .unwrap_or_default())
    }
}
