//! Conflict policies at apply time. Before an inbound action from a
//! tracked provider changes a field, the field's last-synced value, ours
//! and theirs go through `sync::decide`: an unmoved value (our own echo)
//! is dropped, a move of theirs alone is applied, and when both moved the
//! provider's policy keeps ours (and pushes it back), takes theirs,
//! merges, or records a conflict. After the change, theirs is remembered
//! as last synced, with the delivery and change that carried it.
//!
//! Also here: a ticket's fields read and written by sync name, and a
//! conflict's resolution through the API.

use serde::Serialize;
use serde_json::{Value, json};

use super::apply::{Applier, ApplyError, ApplyInput};
use crate::action::{Action, Priority, TicketRef};
use crate::store::{
    ConflictResolved, ConflictRow, ConflictState, NewConflict, NewHistory, NewSynced, Resolution,
    Store, StoreError, SyncSource, TicketRow, Tx, now,
};
use crate::sync::{Decision, FieldKind, Policy, decide};

/// The actor of the changes sync makes itself (a push back).
pub const SYNC_ACTOR: &str = "sluice-sync";

/// A field both sides moved, and what its policy made of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FieldConflict {
    pub field: String,
    pub policy: Policy,
    /// The conflict recorded for a person (`manual`, or a `merge` the
    /// field cannot do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_id: Option<i64>,
}

/// A conflict to record: (field, policy, last synced, ours, theirs).
type PendingConflict = (
    String,
    Policy,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// What the gate made of one action.
#[derive(Debug, Default)]
pub(super) struct Gate {
    /// What to apply; `None`: nothing.
    pub action: Option<Action>,
    /// Fields and their value at the provider, to remember as last synced.
    synced: Vec<(String, Option<String>)>,
    /// Fields to push to the provider: (field, theirs, ours).
    push: Vec<(String, Option<String>, Option<String>)>,
    /// Conflicts to record.
    conflicts: Vec<PendingConflict>,
    /// Every field both sides moved.
    pub moved: Vec<FieldConflict>,
}

/// How a conflict is resolved through the API.
#[derive(Debug, Clone)]
pub enum Choice {
    Local,
    External,
    Value(String),
}

impl Applier {
    /// Runs `action` (from tracked `provider`) through the policies
    /// against ticket `t`.
    pub(super) async fn gate(
        &self,
        tx: &mut Tx,
        provider: &str,
        action: &Action,
        t: &TicketRow,
    ) -> Result<Gate, StoreError> {
        let incoming = self.incoming(action);
        if incoming.is_empty() {
            return Ok(Gate {
                action: Some(action.clone()),
                ..Gate::default()
            });
        }
        let last = tx.synced_values(&t.guid, provider).await?;
        let mut gate = Gate::default();
        let mut keep: Vec<(String, Option<String>)> = Vec::new();
        for (field, theirs) in incoming {
            let ours = field_value(t, &field);
            let policy = self.sync.policy(provider, &field);
            let before = last.get(&field);
            let decision = decide(FieldKind::of(&field), policy, before, &ours, &theirs);
            let both_moved = matches!(
                decision,
                Decision::KeepLocal | Decision::Merged(_) | Decision::Conflict
            ) || (decision == Decision::TakeExternal
                && before.is_some_and(|b| *b != ours));
            if both_moved {
                gate.moved.push(FieldConflict {
                    field: field.clone(),
                    policy,
                    conflict_id: None,
                });
            }
            match decision {
                Decision::Unmoved => {}
                Decision::Agree | Decision::TakeExternal => {
                    gate.synced.push((field.clone(), theirs.clone()));
                    keep.push((field, theirs));
                }
                Decision::KeepLocal => {
                    gate.synced.push((field.clone(), theirs.clone()));
                    gate.push.push((field, theirs, ours));
                }
                Decision::Merged(merged) => {
                    gate.synced.push((field.clone(), theirs.clone()));
                    gate.push.push((field.clone(), theirs, merged.clone()));
                    keep.push((field, merged));
                }
                Decision::Conflict => {
                    gate.synced.push((field.clone(), theirs.clone()));
                    let base = before.cloned().flatten();
                    gate.conflicts.push((field, policy, base, ours, theirs));
                }
            }
        }
        gate.action = narrow(action, &keep);
        Ok(gate)
    }

    /// After the gated action applied (history row `history_id`, if it
    /// changed anything): remembers theirs as last synced, pushes ours
    /// back, records the conflicts.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn after_gate(
        &self,
        tx: &mut Tx,
        input: &ApplyInput<'_>,
        provider: &str,
        guid: &str,
        mut gate: Gate,
        history_id: Option<i64>,
        at: &str,
    ) -> Result<Vec<FieldConflict>, StoreError> {
        let synced: Vec<NewSynced<'_>> = gate
            .synced
            .iter()
            .map(|(field, value)| NewSynced {
                ticket_guid: guid,
                provider,
                field,
                value: value.as_deref(),
                source: SyncSource::Inbound,
                delivery_id: input.delivery_id,
                outbox_id: None,
                history_id,
                at,
            })
            .collect();
        tx.set_synced(&synced).await?;
        if !gate.push.is_empty() {
            let mut fields = serde_json::Map::new();
            for (field, theirs, ours) in &gate.push {
                fields.insert(field.clone(), json!({"from": theirs, "to": ours}));
            }
            let change = json!({
                "action": "update",
                "ticket_guid": guid,
                "fields": Value::Object(fields),
                "changed_by": SYNC_ACTOR,
                "push_back": {"provider": provider, "delivery_id": input.delivery_id},
            });
            self.push_to(tx, guid, provider, change, input.delivery_id, at)
                .await?;
        }
        for (field, policy, base, ours, theirs) in &gate.conflicts {
            let id = tx
                .insert_conflict(&NewConflict {
                    ticket_guid: guid,
                    provider,
                    field,
                    policy: *policy,
                    base_value: base.as_deref(),
                    local_value: ours.as_deref(),
                    external_value: theirs.as_deref(),
                    delivery_id: input.delivery_id,
                    at,
                })
                .await?;
            if let Some(m) = gate.moved.iter_mut().find(|m| &m.field == field) {
                m.conflict_id = Some(id);
            }
        }
        Ok(gate.moved)
    }

    /// A history row (our own change, no origin) offered to `provider`
    /// alone: a value of ours it must take.
    async fn push_to(
        &self,
        tx: &mut Tx,
        guid: &str,
        provider: &str,
        change: Value,
        delivery_id: Option<&str>,
        at: &str,
    ) -> Result<i64, StoreError> {
        let id = tx
            .append_history(&NewHistory {
                ticket_guid: guid,
                kind: "update",
                change: change.to_string(),
                actor: Some(SYNC_ACTOR),
                origin: None,
                delivery_id,
                mapper_hash: None,
                at,
            })
            .await?;
        if self.outbound.iter().any(|p| p == provider) {
            tx.enqueue_outbound(id, provider, guid, at).await?;
        }
        Ok(id)
    }

    /// The fields an inbound action sets, with their values as sync
    /// compares them.
    fn incoming(&self, action: &Action) -> Vec<(String, Option<String>)> {
        match action {
            Action::StatusChange { status, .. } => vec![("status".into(), Some(status.clone()))],
            Action::Resolve { .. } if self.workflow.contains("RESOLVED") => {
                vec![("status".into(), Some("RESOLVED".into()))]
            }
            Action::Escalate { .. } if self.workflow.contains("ESCALATED") => {
                vec![("status".into(), Some("ESCALATED".into()))]
            }
            Action::Assign { assigned_to, .. } => {
                vec![("assignee".into(), Some(assigned_to.clone()))]
            }
            Action::Update {
                subject,
                description,
                priority,
                ticket_type,
                ..
            } => [
                ("subject", subject.clone()),
                ("description", description.clone()),
                ("priority", priority.map(|p| p.as_str().to_owned())),
                ("ticket_type", ticket_type.clone()),
            ]
            .into_iter()
            .filter_map(|(f, v)| Some((f.to_owned(), Some(v?))))
            .collect(),
            Action::SetFields { fields, .. } => fields
                .iter()
                .map(|(name, v)| (format!("fields.{name}"), (!v.is_empty()).then(|| v.clone())))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Values of a ticket's fields remembered as synced once a change of
    /// them reached `provider` (outbound).
    pub fn synced_after_send(
        &self,
        provider: &str,
        ticket: &crate::change::TicketView,
        what: &crate::change::ChangeKind,
    ) -> Vec<(String, Option<String>)> {
        use crate::change::ChangeKind;
        if !self.sync.tracked(provider) {
            return Vec::new();
        }
        let fields: Vec<String> = match what {
            ChangeKind::Applied(Action::Create { .. }) => {
                let mut all: Vec<String> = [
                    "status",
                    "priority",
                    "subject",
                    "description",
                    "ticket_type",
                    "labels",
                ]
                .map(String::from)
                .to_vec();
                all.extend(ticket.fields.iter().map(|(k, _)| format!("fields.{k}")));
                all
            }
            ChangeKind::Applied(
                Action::StatusChange { .. } | Action::Resolve { .. } | Action::Escalate { .. },
            ) => vec!["status".into()],
            ChangeKind::Applied(Action::Assign { .. }) => vec!["assignee".into()],
            ChangeKind::Applied(a @ (Action::Update { .. } | Action::SetFields { .. })) => {
                self.incoming(a).into_iter().map(|(f, _)| f).collect()
            }
            ChangeKind::Updated(changes) => changes
                .iter()
                .map(|c| c.field.clone())
                .filter(|f| crate::sync::is_field(f))
                .collect(),
            _ => Vec::new(),
        };
        fields
            .into_iter()
            .map(|f| {
                let v = view_value(ticket, &f);
                (f, v)
            })
            .collect()
    }

    /// Remembers, for a tracked provider's `create` that made ticket `t`,
    /// the values it came with.
    pub(super) async fn synced_at_create(
        &self,
        tx: &mut Tx,
        input: &ApplyInput<'_>,
        t: &TicketRow,
        history_id: i64,
        at: &str,
    ) -> Result<(), StoreError> {
        let Some(provider) = input.origin.filter(|p| self.sync.tracked(p)) else {
            return Ok(());
        };
        let values: Vec<(&str, Option<String>)> = [
            "subject",
            "description",
            "priority",
            "ticket_type",
            "labels",
        ]
        .into_iter()
        .map(|f| (f, field_value(t, f)))
        .collect();
        let rows: Vec<NewSynced<'_>> = values
            .iter()
            .map(|(field, value)| NewSynced {
                ticket_guid: &t.guid,
                provider,
                field,
                value: value.as_deref(),
                source: SyncSource::Inbound,
                delivery_id: input.delivery_id,
                outbox_id: None,
                history_id: Some(history_id),
                at,
            })
            .collect();
        tx.set_synced(&rows).await
    }

    /// Resolves open conflict `id` with `choice`, as `by`: the chosen
    /// value becomes a ticket change (offered to every outbound provider
    /// when the ticket's value changes; to the conflict's provider alone
    /// when the ticket already holds it and the provider does not).
    pub async fn resolve_conflict(
        &self,
        store: &Store,
        id: i64,
        choice: &Choice,
        by: &str,
    ) -> Result<ConflictRow, ApplyError> {
        let mut tx = store.begin().await?;
        let c = tx
            .conflict(id)
            .await?
            .ok_or_else(|| ApplyError::NotFound(format!("conflict {id}")))?;
        if c.state != ConflictState::Open {
            return Err(ApplyError::NotOpen(id));
        }
        let (resolution, value) = match choice {
            Choice::Local => (Resolution::Local, c.local_value.clone()),
            Choice::External => (Resolution::External, c.external_value.clone()),
            Choice::Value(v) => (Resolution::Value, self.checked_value(&c.field, v, by)?),
        };
        let mut t = tx
            .ticket_for_update(&c.ticket_guid)
            .await?
            .ok_or_else(|| ApplyError::NotFound(c.ticket_guid.clone()))?;
        let current = field_value(&t, &c.field);
        let at = now();
        let history_id = if current != value {
            set_field(&mut t, &c.field, value.clone(), &at);
            t.updated_at = at.clone();
            tx.update_ticket(&t).await?;
            let change = json!({
                "action": "update",
                "ticket_guid": t.guid,
                "fields": {c.field.clone(): {"from": current, "to": value}},
                "changed_by": by,
                "conflict": {"id": id, "provider": c.provider, "resolution": resolution},
            });
            // Theirs chosen: the provider holds it already (and it is its
            // last-synced value), so it goes to every other provider but
            // not back to it as an echo of its own write.
            let origin = (value == c.external_value).then_some(c.provider.as_str());
            let input = ApplyInput {
                delivery_id: None,
                origin,
                mapper_hash: None,
                actions: &[],
                state: &[],
            };
            Some(
                self.record_change(&mut tx, &input, &t.guid, "update", change, Some(by), &at)
                    .await?,
            )
        } else if value != c.external_value {
            let change = json!({
                "action": "update",
                "ticket_guid": t.guid,
                "fields": {c.field.clone(): {"from": c.external_value, "to": value}},
                "changed_by": by,
                "conflict": {"id": id, "provider": c.provider, "resolution": resolution},
            });
            Some(
                self.push_to(&mut tx, &t.guid, &c.provider, change, None, &at)
                    .await?,
            )
        } else {
            None
        };
        let resolved = tx
            .resolve_conflict(&ConflictResolved {
                id,
                resolution,
                value: value.as_deref(),
                by,
                history_id,
                at: &at,
            })
            .await?;
        if !resolved {
            return Err(ApplyError::NotOpen(id));
        }
        let row = tx.conflict(id).await?;
        tx.commit().await?;
        row.ok_or_else(|| ApplyError::NotFound(format!("conflict {id}")))
    }

    /// A value given for `field` by a person, checked by the action rules
    /// (a workflow status, a priority, an e-mail-like assignee, one-line
    /// subject…); empty unsets a custom field.
    fn checked_value(&self, field: &str, v: &str, by: &str) -> Result<Option<String>, ApplyError> {
        let r = TicketRef {
            guid: Some("conflict".into()),
            ..TicketRef::default()
        };
        let invalid = |message: String| {
            ApplyError::Invalid(super::ValidationError {
                index: 0,
                action: "resolve_conflict",
                field: "value",
                reason: message,
            })
        };
        let probe = match field {
            "status" => Action::StatusChange {
                ticket: r,
                status: v.to_owned(),
                changed_by: by.to_owned(),
            },
            "assignee" => Action::Assign {
                ticket: r,
                assigned_to: v.to_owned(),
                assigned_by: by.to_owned(),
            },
            "priority" => {
                let p = Priority::parse(&v.to_ascii_uppercase()).ok_or_else(|| {
                    invalid(format!("`{v}` is not LOW, MEDIUM, HIGH or CRITICAL"))
                })?;
                return Ok(Some(p.as_str().to_owned()));
            }
            "labels" => {
                let labels: Vec<String> = serde_json::from_str(v)
                    .map_err(|_| invalid("labels are a JSON array of strings".into()))?;
                Action::Create {
                    subject: "conflict".into(),
                    description: String::new(),
                    priority: Priority::Low,
                    ticket_type: "conflict".into(),
                    requested_by: None,
                    external_id: None,
                    labels,
                }
            }
            "subject" | "description" | "ticket_type" => Action::Update {
                ticket: r,
                subject: (field == "subject").then(|| v.to_owned()),
                description: (field == "description").then(|| v.to_owned()),
                priority: None,
                ticket_type: (field == "ticket_type").then(|| v.to_owned()),
                changed_by: by.to_owned(),
            },
            other => match other.strip_prefix("fields.") {
                Some(name) => Action::SetFields {
                    ticket: r,
                    fields: vec![(name.to_owned(), v.to_owned())],
                    changed_by: by.to_owned(),
                },
                None => return Err(invalid(format!("`{other}` is not a field sync knows"))),
            },
        };
        let checked = super::validate::validate(&[probe], &self.workflow)?;
        // Validation may clean a value (control characters): keep its form.
        let value = match checked.into_iter().next() {
            Some(Action::StatusChange { status, .. }) => status,
            Some(Action::Assign { assigned_to, .. }) => assigned_to,
            Some(Action::Create { labels, .. }) => {
                let mut labels = labels;
                labels.sort();
                serde_json::to_string(&labels).unwrap_or_default()
            }
            Some(Action::Update {
                subject,
                description,
                ticket_type,
                ..
            }) => subject.or(description).or(ticket_type).unwrap_or_default(),
            Some(Action::SetFields { fields, .. }) => fields
                .into_iter()
                .next()
                .map(|(_, v)| v)
                .unwrap_or_default(),
            _ => v.to_owned(),
        };
        Ok((!value.is_empty() || !field.starts_with("fields.")).then_some(value))
    }
}

/// `action` with only the fields in `keep` (values possibly replaced by a
/// merge); `None` when nothing is left to apply.
fn narrow(action: &Action, keep: &[(String, Option<String>)]) -> Option<Action> {
    let kept = |f: &str| keep.iter().find(|(k, _)| k == f).map(|(_, v)| v.clone());
    let mut a = action.clone();
    match &mut a {
        Action::StatusChange { .. }
        | Action::Resolve { .. }
        | Action::Escalate { .. }
        | Action::Assign { .. } => {
            let field = if matches!(a, Action::Assign { .. }) {
                "assignee"
            } else {
                "status"
            };
            kept(field).map(|_| a)
        }
        Action::Update {
            subject,
            description,
            priority,
            ticket_type,
            ..
        } => {
            *subject = kept("subject").flatten();
            *description = kept("description").flatten();
            *priority = kept("priority").flatten().and_then(|p| Priority::parse(&p));
            *ticket_type = kept("ticket_type").flatten();
            let any = subject.is_some()
                || description.is_some()
                || priority.is_some()
                || ticket_type.is_some();
            any.then_some(a)
        }
        Action::SetFields { fields, .. } => {
            fields.retain_mut(|(name, value)| match kept(&format!("fields.{name}")) {
                Some(v) => {
                    *value = v.unwrap_or_default();
                    true
                }
                None => false,
            });
            (!fields.is_empty()).then_some(a)
        }
        _ => Some(a),
    }
}

/// A ticket field by sync name; labels as a sorted JSON array.
pub fn field_value(t: &TicketRow, field: &str) -> Option<String> {
    match field {
        "status" => Some(t.status.clone()),
        "priority" => Some(t.priority.clone()),
        "subject" => Some(t.subject.clone()),
        "description" => Some(t.description.clone()),
        "ticket_type" => Some(t.ticket_type.clone()),
        "assignee" => t.assignee.clone(),
        "labels" => Some(labels_text(&t.labels)),
        other => other
            .strip_prefix("fields.")
            .and_then(|name| t.fields.get(name).cloned()),
    }
}

fn view_value(t: &crate::change::TicketView, field: &str) -> Option<String> {
    match field {
        "status" => Some(t.status.clone()),
        "priority" => Some(t.priority.as_str().to_owned()),
        "subject" => Some(t.subject.clone()),
        "description" => Some(t.description.clone()),
        "ticket_type" => Some(t.ticket_type.clone()),
        "assignee" => t.assignee.clone(),
        "labels" => Some(labels_text(&t.labels)),
        other => other.strip_prefix("fields.").and_then(|name| {
            t.fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }),
    }
}

/// Sets a ticket field by sync name (a checked value).
fn set_field(t: &mut TicketRow, field: &str, value: Option<String>, at: &str) {
    let text = value.clone().unwrap_or_default();
    match field {
        "status" => super::apply::set_status(t, &text, at),
        "priority" => t.priority = text,
        "subject" => t.subject = text,
        "description" => t.description = text,
        "ticket_type" => t.ticket_type = text,
        "assignee" => t.assignee = value,
        "labels" => t.labels = serde_json::from_str(&text).unwrap_or_default(),
        other => {
            if let Some(name) = other.strip_prefix("fields.") {
                match value {
                    Some(v) => t.fields.insert(name.to_owned(), v),
                    None => t.fields.remove(name),
                };
            }
        }
    }
}

fn labels_text(labels: &[String]) -> String {
    let mut sorted = labels.to_vec();
    sorted.sort();
    serde_json::to_string(&sorted).unwrap_or_else(|_| "[]".into())
}
