//! One delivery's actions, applied in one transaction.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use thiserror::Error;

use super::validate::{ValidationError, Workflow, validate};
use crate::action::{Action, TicketRef};
use crate::mapper::StateWrite;
use crate::resolve::BranchConvention;
use crate::store::{NewHistory, Store, StoreError, TicketRow, Tx, now};

/// The link-table provider for records linked through the ticket API.
pub const API_ORIGIN: &str = "api";

/// Applies actions with the configured workflow, branch convention and
/// outbound providers.
#[derive(Debug, Clone, Default)]
pub struct Applier {
    pub workflow: Workflow,
    pub branches: BranchConvention,
    /// Providers whose outbound rules get an outbox row per change.
    pub outbound: Vec<String>,
    /// Those of them whose rules see their own changes too (a confirmation
    /// in the same chat): `outbound.own_changes`.
    pub own_changes: Vec<String>,
    /// Each provider's sync direction and conflict policies.
    pub sync: std::sync::Arc<crate::sync::SyncRules>,
}

#[derive(Debug, Clone, Copy)]
pub struct ApplyInput<'a> {
    /// Applying the same delivery id twice changes nothing the second time.
    pub delivery_id: Option<&'a str>,
    /// The provider the actions came from; `None` for the API.
    pub origin: Option<&'a str>,
    pub mapper_hash: Option<&'a str>,
    pub actions: &'a [Action],
    /// The mapping's `state-set`s for `origin`'s mapper state: committed
    /// in this delivery's transaction, each a compare-and-set, or none is.
    pub state: &'a [StateWrite],
}

/// A delivery's `applied` row: id, result JSON, time.
type AppliedRecord<'i> = (&'i str, String, String);

/// What one action did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedAction {
    pub index: usize,
    pub action: String,
    pub ticket_guid: String,
    /// False when the ticket already said so (a repeated fact).
    pub changed: bool,
    pub history_id: Option<i64>,
    /// Dropped as the echo of a record the host itself made at the
    /// provider (a comment it posted, reported back by a webhook).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub echo: bool,
    /// Fields the provider and the ticket both moved since they last
    /// synced, and what the policy did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<super::FieldConflict>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub actions: Vec<AppliedAction>,
    /// The delivery had been applied before; nothing changed now.
    pub replayed: bool,
}

#[derive(Debug, Error)]
pub enum ApplyError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("action {index} ({action}): no ticket found for {reference}")]
    Unresolved {
        index: usize,
        action: &'static str,
        reference: String,
        /// The ticket may still appear: a branch of the convention whose
        /// ticket is not there yet, an external id of a provider that
        /// links records (its `create` may be on the way).
        may_appear: bool,
    },
    #[error("no ticket `{0}`")]
    NotFound(String),
    /// A conflict resolved already (perhaps by someone else just now).
    #[error("conflict {0} is not open")]
    NotOpen(i64),
    /// A comment from a provider the host is sending a comment of this
    /// ticket to right now: it may be the echo of that request, whose
    /// answer (and echo id) is not recorded yet, so it waits for that.
    #[error(
        "action {index}: a comment of this ticket is being sent to `{provider}`; waiting to tell its echo from a new comment"
    )]
    EchoPending { index: usize, provider: String },
    /// The mapper state changed since the mapping read it (another
    /// delivery of the provider wrote the key first): mapped again later,
    /// it sees the new value.
    #[error("mapper state `{key}` of `{provider}` changed while the delivery was mapped")]
    StateConflict { provider: String, key: String },
    #[error("ticket store")]
    Store(#[from] StoreError),
}

impl ApplyError {
    /// Worth retrying later: the ticket may not exist yet (its `create` is
    /// still on the way), or the database was briefly unavailable.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApplyError::Unresolved { may_appear, .. } => *may_appear,
            ApplyError::EchoPending { .. } => true,
            ApplyError::StateConflict { .. } => true,
            ApplyError::Store(e) => e.is_transient(),
            ApplyError::Invalid(_) | ApplyError::NotFound(_) | ApplyError::NotOpen(_) => false,
        }
    }
}

impl ApplyError {
    /// The delivery names no ticket that exists or ever could: there is
    /// nothing to apply, now or later.
    pub fn names_no_ticket(&self) -> bool {
        matches!(
            self,
            ApplyError::Unresolved {
                may_appear: false,
                ..
            }
        )
    }
}

impl Applier {
    pub async fn apply(
        &self,
        store: &Store,
        input: ApplyInput<'_>,
    ) -> Result<ApplyOutcome, ApplyError> {
        let actions = validate(input.actions, &self.workflow)?;
        let mut tx = store.begin().await?;
        let previous = match input.delivery_id {
            Some(id) => tx.applied_many(&[id]).await?.remove(id),
            None => None,
        };
        let (outcome, record) = self.apply_in(&mut tx, input, &actions, previous).await?;
        if let Some((id, result, at)) = record {
            tx.mark_applied(&[(id, result.as_str(), at.as_str())])
                .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Applies several deliveries in one transaction — one commit (one
    /// fsync) for all of them, which is what makes a busy inbox fast. If
    /// any delivery fails, the shared transaction is rolled back and each
    /// delivery is applied on its own, so one bad delivery costs the batch
    /// its speed, never its correctness. Results are in input order.
    pub async fn apply_batch(
        &self,
        store: &Store,
        inputs: &[ApplyInput<'_>],
    ) -> Vec<Result<ApplyOutcome, ApplyError>> {
        match self.try_batch(store, inputs).await {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(_) => {
                let mut out = Vec::with_capacity(inputs.len());
                for input in inputs {
                    out.push(self.apply(store, *input).await);
                }
                out
            }
        }
    }

    async fn try_batch(
        &self,
        store: &Store,
        inputs: &[ApplyInput<'_>],
    ) -> Result<Vec<ApplyOutcome>, ApplyError> {
        let mut tx = store.begin().await?;
        let out = self.apply_within(&mut tx, inputs).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Applies several deliveries inside `tx`, which the caller commits
    /// (the inline path commits them with the inbox rows they came in):
    /// the first failure fails them all.
    pub async fn apply_within(
        &self,
        tx: &mut Tx,
        inputs: &[ApplyInput<'_>],
    ) -> Result<Vec<ApplyOutcome>, ApplyError> {
        // Statements, not commits, are the cost here: one lookup of the
        // deliveries applied before, one of the provider comment ids seen
        // before and one insert of the new records serve the whole batch.
        let ids: Vec<&str> = inputs.iter().filter_map(|i| i.delivery_id).collect();
        let mut previous = tx.applied_many(&ids).await?;
        let comment_ids: Vec<(&str, &str)> = inputs
            .iter()
            .filter_map(|i| i.origin.map(|o| (o, i.actions)))
            .flat_map(|(origin, actions)| {
                actions.iter().filter_map(move |a| match a {
                    Action::Comment {
                        external_comment_id: Some(id),
                        ..
                    } => Some((origin, id.as_str())),
                    _ => None,
                })
            })
            .collect();
        tx.prefetch_comment_ids(&comment_ids).await?;
        let mut out = Vec::with_capacity(inputs.len());
        let mut records = Vec::with_capacity(inputs.len());
        for input in inputs {
            let actions = validate(input.actions, &self.workflow)?;
            let before = input.delivery_id.and_then(|id| previous.remove(id));
            let (outcome, record) = self.apply_in(tx, *input, &actions, before).await?;
            out.push(outcome);
            records.extend(record);
        }
        let rows: Vec<(&str, &str, &str)> = records
            .iter()
            .map(|(id, result, at)| (*id, result.as_str(), at.as_str()))
            .collect();
        tx.mark_applied(&rows).await?;
        Ok(out)
    }

    /// One delivery's validated actions inside `tx`, given what the
    /// `applied` table holds for it; commits nothing. Returns the record
    /// the caller stores to mark the delivery applied (none for the API,
    /// or when it was applied before).
    async fn apply_in<'i>(
        &self,
        tx: &mut Tx,
        input: ApplyInput<'i>,
        actions: &[Action],
        previous: Option<String>,
    ) -> Result<(ApplyOutcome, Option<AppliedRecord<'i>>), ApplyError> {
        let tx = &mut *tx;
        if let Some(previous) = previous {
            let actions = serde_json::from_str(&previous).map_err(|e| StoreError::Corrupt {
                column: "applied.result",
                reason: e.to_string(),
            })?;
            return Ok((
                ApplyOutcome {
                    actions,
                    replayed: true,
                },
                None,
            ));
        }
        if let (Some(provider), false) = (input.origin, input.state.is_empty())
            && let Some(key) = tx.commit_state(provider, input.state).await?
        {
            return Err(ApplyError::StateConflict {
                provider: provider.to_owned(),
                key,
            });
        }
        let at = now();
        let mut created: Vec<Option<String>> = vec![None; actions.len()];
        let mut out = Vec::with_capacity(actions.len());
        for (index, action) in actions.iter().enumerate() {
            let applied = match action {
                Action::Create {
                    subject,
                    description,
                    priority,
                    ticket_type,
                    requested_by,
                    external_id,
                    labels,
                } => {
                    let ticket = TicketRow {
                        guid: uuid::Uuid::new_v4().simple().to_string(),
                        subject: subject.clone(),
                        description: description.clone(),
                        status: self.workflow.initial().to_owned(),
                        priority: priority.as_str().to_owned(),
                        ticket_type: ticket_type.clone(),
                        assignee: None,
                        requested_by: requested_by.clone(),
                        labels: labels.clone(),
                        created_at: at.clone(),
                        updated_at: at.clone(),
                        resolved_at: None,
                        resolved_by: None,
                        escalated_at: None,
                        escalated_by: None,
                        escalation_reason: None,
                        fields: Default::default(),
                        status_changed_at: None,
                    };
                    let (guid, id) = self
                        .create(tx, &input, action, ticket, external_id.as_deref(), &at)
                        .await?;
                    (guid, id, false, Vec::new())
                }
                _ => {
                    let reference = action.ticket().cloned().unwrap_or_default();
                    let Some(ticket) = self.resolve(tx, &reference, &created, input.origin).await?
                    else {
                        return Err(ApplyError::Unresolved {
                            index,
                            action: action.name(),
                            reference: describe(&reference),
                            may_appear: self.may_appear(tx, &reference, input.origin).await?,
                        });
                    };
                    if self
                        .is_echo(tx, action, input.origin, &ticket.guid, index)
                        .await?
                    {
                        (ticket.guid, None, true, Vec::new())
                    } else {
                        let (guid, id, moved) =
                            self.change(tx, &input, action, ticket, &at).await?;
                        (guid, id, false, moved)
                    }
                }
            };
            let (guid, history_id, echo, conflicts) = applied;
            created[index] = Some(guid.clone());
            out.push(AppliedAction {
                index,
                action: action.name().to_owned(),
                ticket_guid: guid,
                changed: history_id.is_some(),
                history_id,
                echo,
                conflicts,
            });
        }
        let record = input.delivery_id.map(|id| {
            let result = serde_json::to_string(&out).unwrap_or_else(|_| "[]".into());
            (id, result, at)
        });
        Ok((
            ApplyOutcome {
                actions: out,
                replayed: false,
            },
            record,
        ))
    }

    /// Anti-loop, second layer: a comment whose provider id is one the host
    /// made itself (an outbound echo capture) is our own comment coming
    /// back. A provider may report the comment before the host recorded
    /// its answer: while a comment of this ticket is being sent to that
    /// provider, an unknown comment id from it waits
    /// ([`ApplyError::EchoPending`]).
    async fn is_echo(
        &self,
        tx: &mut Tx,
        action: &Action,
        origin: Option<&str>,
        guid: &str,
        index: usize,
    ) -> Result<bool, ApplyError> {
        let (
            Action::Comment {
                external_comment_id: Some(id),
                ..
            },
            Some(origin),
        ) = (action, origin)
        else {
            return Ok(false);
        };
        // In-flight first: the send's outcome and its echo id commit
        // together, so a send that is not in flight any more has its echo
        // id visible to the next statement, while the other order could
        // miss both (the send finishing between the two reads).
        if self.outbound.iter().any(|p| p == origin) && tx.comment_in_flight(origin, guid).await? {
            return Err(ApplyError::EchoPending {
                index,
                provider: origin.to_owned(),
            });
        }
        Ok(tx.is_echo(origin, id).await?)
    }

    /// guid → integration link → branch convention → earlier `create`.
    async fn resolve(
        &self,
        tx: &mut Tx,
        r: &TicketRef,
        created: &[Option<String>],
        origin: Option<&str>,
    ) -> Result<Option<TicketRow>, StoreError> {
        if let Some(guid) = &r.guid
            && let Some(t) = tx.ticket_for_update(guid).await?
        {
            return Ok(Some(t));
        }
        if let Some(ext) = &r.external_id
            && let Some(guid) = tx.linked_ticket(origin.unwrap_or(API_ORIGIN), ext).await?
            && let Some(t) = tx.ticket_for_update(&guid).await?
        {
            return Ok(Some(t));
        }
        if let Some(guid) = r.branch.as_deref().and_then(|b| self.branches.guid_of(b))
            && let Some(t) = tx.ticket_for_update(guid).await?
        {
            return Ok(Some(t));
        }
        if let Some(guid) = r
            .from_action
            .and_then(|i| created.get(i as usize).cloned().flatten())
        {
            return tx.ticket_for_update(&guid).await;
        }
        Ok(None)
    }

    /// Whether an unresolved reference could still resolve later: its
    /// branch follows the convention (the ticket it names may be created
    /// yet), or it has an external id and its provider links records (the
    /// `create` that links this one may be on the way). A guid that names
    /// no ticket, a branch outside the convention, an id of a provider with
    /// no links or an earlier action that created nothing never will.
    async fn may_appear(
        &self,
        tx: &mut Tx,
        r: &TicketRef,
        origin: Option<&str>,
    ) -> Result<bool, StoreError> {
        if r.branch
            .as_deref()
            .and_then(|b| self.branches.guid_of(b))
            .is_some()
        {
            return Ok(true);
        }
        if r.external_id.is_some() {
            return tx.links_any(origin.unwrap_or(API_ORIGIN)).await;
        }
        Ok(false)
    }

    /// Inserts a new ticket, or finds the one already linked to the same
    /// external record.
    async fn create(
        &self,
        tx: &mut Tx,
        input: &ApplyInput<'_>,
        action: &Action,
        ticket: TicketRow,
        external_id: Option<&str>,
        at: &str,
    ) -> Result<(String, Option<i64>), ApplyError> {
        if let Some(ext) = external_id {
            // The link first: a concurrent create of the same record waits
            // here for the other transaction and then finds its ticket.
            let linked = tx
                .link(input.origin.unwrap_or(API_ORIGIN), ext, &ticket.guid, at)
                .await?;
            if linked != ticket.guid {
                return Ok((linked, None));
            }
        }
        tx.insert_ticket(&ticket).await?;
        let mut change = action.to_json();
        change["ticket_guid"] = Value::String(ticket.guid.clone());
        let id = self
            .record_change(
                tx,
                input,
                &ticket.guid,
                action.name(),
                change,
                ticket.requested_by.as_deref(),
                at,
            )
            .await?;
        self.synced_at_create(tx, input, &ticket, id, at).await?;
        Ok((ticket.guid, Some(id)))
    }

    /// Applies a ticket-level action — through the conflict policies when
    /// it comes from a tracked provider; the history id when it changed
    /// anything, and the fields both sides had moved.
    async fn change(
        &self,
        tx: &mut Tx,
        input: &ApplyInput<'_>,
        action: &Action,
        t: TicketRow,
        at: &str,
    ) -> Result<(String, Option<i64>, Vec<super::FieldConflict>), ApplyError> {
        let Some(provider) = input.origin.filter(|p| self.sync.tracked(p)) else {
            let (guid, id) = self.change_inner(tx, input, action, t, at).await?;
            return Ok((guid, id, Vec::new()));
        };
        let gate = self.gate(tx, provider, action, &t).await?;
        let (guid, id) = match &gate.action {
            Some(a) => self.change_inner(tx, input, a, t, at).await?,
            None => (t.guid.clone(), None),
        };
        let moved = self
            .after_gate(tx, input, provider, &guid, gate, id, at)
            .await?;
        Ok((guid, id, moved))
    }

    /// Applies a ticket-level action; the history id when it changed anything.
    async fn change_inner(
        &self,
        tx: &mut Tx,
        input: &ApplyInput<'_>,
        action: &Action,
        mut t: TicketRow,
        at: &str,
    ) -> Result<(String, Option<i64>), ApplyError> {
        let guid = t.guid.clone();
        let mut extra: Option<(&str, Value)> = None;
        let (changed, actor): (bool, Option<&str>) = match action {
            // Creates never reach here (see `create`); nothing to change.
            Action::Create { .. } => (false, None),
            Action::StatusChange {
                status, changed_by, ..
            } => {
                let changed = t.status != *status;
                if changed {
                    extra = Some(("from_status", Value::String(t.status.clone())));
                    set_status(&mut t, status, at);
                }
                (changed, Some(changed_by))
            }
            Action::Comment {
                comment,
                commented_by,
                external_comment_id,
                ..
            } => {
                let added = tx
                    .insert_comment(
                        &guid,
                        comment,
                        commented_by,
                        input.origin,
                        external_comment_id.as_deref(),
                        at,
                    )
                    .await?;
                (added, Some(commented_by))
            }
            Action::Assign {
                assigned_to,
                assigned_by,
                ..
            } => {
                let changed = t.assignee.as_deref() != Some(assigned_to.as_str());
                if changed {
                    t.assignee = Some(assigned_to.clone());
                }
                (changed, Some(assigned_by))
            }
            Action::Signoff {
                activity,
                role,
                email,
                signoff_status,
                ..
            } => {
                let changed = tx
                    .upsert_signoff(
                        &guid,
                        activity,
                        role.as_str(),
                        email,
                        signoff_status.as_str(),
                        at,
                    )
                    .await?;
                (changed, Some(email))
            }
            Action::LinkPr {
                pr_id, repo, url, ..
            } => {
                let added = tx
                    .insert_pr_link(&guid, repo, pr_id, url.as_deref(), at)
                    .await?;
                // Later events of this PR may name it by `repo#id` alone.
                if let Some(origin) = input.origin {
                    tx.link(origin, &format!("{repo}#{pr_id}"), &guid, at)
                        .await?;
                }
                (added, None)
            }
            Action::Resolve { resolved_by, .. } => {
                let changed = t.resolved_at.is_none() || t.status != "RESOLVED";
                if changed {
                    if self.workflow.contains("RESOLVED") {
                        set_status(&mut t, "RESOLVED", at);
                    }
                    t.resolved_at = Some(at.to_owned());
                    t.resolved_by = Some(resolved_by.clone());
                }
                (changed, Some(resolved_by))
            }
            Action::Escalate {
                escalated_by,
                reason,
                ..
            } => {
                let same = t.escalated_at.is_some()
                    && t.escalated_by.as_deref() == Some(escalated_by.as_str())
                    && t.escalation_reason == *reason
                    && (t.status == "ESCALATED" || !self.workflow.contains("ESCALATED"));
                if !same {
                    if self.workflow.contains("ESCALATED") {
                        set_status(&mut t, "ESCALATED", at);
                    }
                    t.escalated_at = Some(at.to_owned());
                    t.escalated_by = Some(escalated_by.clone());
                    t.escalation_reason = reason.clone();
                }
                (!same, Some(escalated_by))
            }
            // Field edits are recorded as the API records its own: one
            // `update` change with each field's old and new value, which is
            // what outbound rules see (`updated`).
            Action::SetFields {
                fields, changed_by, ..
            } => {
                let mut diff = Map::new();
                for (name, value) in fields {
                    let old = t.fields.get(name).cloned();
                    let new = (!value.is_empty()).then(|| value.clone());
                    if old == new {
                        continue;
                    }
                    diff.insert(format!("fields.{name}"), json!({"from": old, "to": new}));
                    match new {
                        Some(v) => t.fields.insert(name.clone(), v),
                        None => t.fields.remove(name),
                    };
                }
                return self.record_update(tx, input, t, diff, changed_by, at).await;
            }
            Action::Update {
                subject,
                description,
                priority,
                ticket_type,
                changed_by,
                ..
            } => {
                let mut diff = Map::new();
                let mut set = |name: &str, slot: &mut String, new: Option<&str>| {
                    if let Some(new) = new
                        && slot != new
                    {
                        diff.insert(name.into(), json!({"from": slot, "to": new}));
                        *slot = new.to_owned();
                    }
                };
                set("subject", &mut t.subject, subject.as_deref());
                set("description", &mut t.description, description.as_deref());
                set("ticket_type", &mut t.ticket_type, ticket_type.as_deref());
                set("priority", &mut t.priority, priority.map(|p| p.as_str()));
                return self.record_update(tx, input, t, diff, changed_by, at).await;
            }
        };
        if !changed {
            return Ok((guid, None));
        }
        t.updated_at = at.to_owned();
        tx.update_ticket(&t).await?;
        let resolved = with_guid(action, &guid);
        let mut change = resolved.to_json();
        if let Some((key, value)) = extra {
            change[key] = value;
        }
        let id = self
            .record_change(tx, input, &guid, action.name(), change, actor, at)
            .await?;
        Ok((guid, Some(id)))
    }

    /// Writes the ticket and one `update` history row with `diff`'s
    /// `{field: {from, to}}` — nothing when the diff is empty.
    async fn record_update(
        &self,
        tx: &mut Tx,
        input: &ApplyInput<'_>,
        mut t: TicketRow,
        diff: Map<String, Value>,
        actor: &str,
        at: &str,
    ) -> Result<(String, Option<i64>), ApplyError> {
        let guid = t.guid.clone();
        if diff.is_empty() {
            return Ok((guid, None));
        }
        t.updated_at = at.to_owned();
        tx.update_ticket(&t).await?;
        let change = json!({"action": "update", "ticket_guid": guid, "fields": Value::Object(diff), "changed_by": actor});
        let id = self
            .record_change(tx, input, &guid, "update", change, Some(actor), at)
            .await?;
        Ok((guid, Some(id)))
    }

    /// Appends a history row of `kind` and its outbox rows.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn record_change(
        &self,
        tx: &mut Tx,
        input: &ApplyInput<'_>,
        guid: &str,
        kind: &str,
        change: Value,
        actor: Option<&str>,
        at: &str,
    ) -> Result<i64, StoreError> {
        let id = tx
            .append_history(&NewHistory {
                ticket_guid: guid,
                kind,
                change: change.to_string(),
                actor,
                origin: input.origin,
                delivery_id: input.delivery_id,
                mapper_hash: input.mapper_hash,
                at,
            })
            .await?;
        // Anti-loop, first layer: a change goes back to its origin only
        // when that provider's rules ask for their own changes.
        for provider in self
            .outbound
            .iter()
            .filter(|p| Some(p.as_str()) != input.origin || self.own_changes.contains(p))
        {
            tx.enqueue_outbound(id, provider, guid, at).await?;
        }
        Ok(id)
    }
}

/// Moves the ticket to `status`, remembering when.
pub(super) fn set_status(t: &mut TicketRow, status: &str, at: &str) {
    if t.status != status {
        t.status = status.to_owned();
        t.status_changed_at = Some(at.to_owned());
    }
}

/// The action with its ticket reference replaced by the resolved guid.
fn with_guid(action: &Action, guid: &str) -> Action {
    let mut a = action.clone();
    if let Some(t) = a.ticket_mut() {
        *t = TicketRef {
            guid: Some(guid.to_owned()),
            ..TicketRef::default()
        };
    }
    a
}

fn describe(r: &TicketRef) -> String {
    let mut parts = Vec::new();
    if let Some(g) = &r.guid {
        parts.push(format!("ticket_guid `{g}`"));
    }
    if let Some(e) = &r.external_id {
        parts.push(format!("external_id `{e}`"));
    }
    if let Some(b) = &r.branch {
        parts.push(format!("branch `{b}`"));
    }
    if let Some(i) = r.from_action {
        parts.push(format!("from_action {i}"));
    }
    parts.join(", ")
}

impl Applier {
    /// Links `provider`'s record `external_id` to ticket `guid` as the
    /// ticket's mirror there (an outbound capture), and records a `link`
    /// change, which the other providers are offered as `linked`. Nothing
    /// happens when the record is linked already; a record linked to
    /// another ticket stays with it (false).
    pub async fn link_mirror(
        &self,
        tx: &mut Tx,
        provider: &str,
        external_id: &str,
        guid: &str,
        at: &str,
    ) -> Result<bool, StoreError> {
        if let Some(linked) = tx.linked_ticket(provider, external_id).await? {
            return Ok(linked == guid);
        }
        if tx.link(provider, external_id, guid, at).await? != guid {
            return Ok(false);
        }
        let input = ApplyInput {
            delivery_id: None,
            origin: Some(provider),
            mapper_hash: None,
            actions: &[],
            state: &[],
        };
        let change = json!({"action": "link", "ticket_guid": guid, "provider": provider, "external_id": external_id});
        self.record_change(tx, &input, guid, "link", change, None, at)
            .await?;
        Ok(true)
    }
}
