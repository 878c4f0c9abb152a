//! The inline path: a delivery whose mapping is pure — no provider API
//! call, no mapper state — is mapped by the request that brought it and
//! applied in the inbox's own transaction, so one commit (one fsync)
//! stores, applies and settles a whole group of deliveries, and each
//! delivery's row is written once instead of three times (stored,
//! claimed, finished).
//!
//! Everything else — a mapping that calls the API or reads state, one that
//! fails, a duplicate, an apply that fails — is stored `pending` as before
//! and the worker's lanes process it; nothing is decided differently, only
//! earlier. Order: a provider's deliveries are settled inline only while its
//! lane has nothing waiting ([`Backlog`]), so a newer delivery never
//! overtakes an older one still queued.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use super::{Outcome, Worker, ignored};
use crate::action::{MapErrorKind, Mapped};
use crate::mapper::{Delivery, NoProviderApi, Services, StateView};
use crate::store::{
    DeliveryStatus, IgnoreReason, InboxEntry, Inline, Settle, StoreError, Stored, Tx,
};
use crate::tickets::ApplyInput;

/// What a request's mapping made of its delivery, carried to the inbox
/// writer with the entry.
pub struct Premapped {
    /// The mapper version's content hash.
    hash: String,
    verdict: Verdict,
}

enum Verdict {
    Mapped(Mapped),
    /// An event the mapper does not map: `ignored: unsupported_event`.
    Unsupported(String),
}

/// Per provider, whether deliveries may be waiting in its lane: each
/// delivery stored `pending` bumps a generation; a lane's claim that
/// found nothing clears the generations it saw before claiming. A
/// provider is clear when every generation is cleared, and unknown (not
/// clear) until its lane first finds nothing — at start-up a backlog may
/// be waiting.
#[derive(Default)]
pub(crate) struct Backlog {
    gens: Mutex<HashMap<String, Gens>>,
}

#[derive(Clone, Copy)]
struct Gens {
    stored: u64,
    cleared: u64,
}

const UNKNOWN: Gens = Gens {
    stored: 1,
    cleared: 0,
};

impl Backlog {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Gens>> {
        // Plain counters: a poisoned lock still holds valid values.
        self.gens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A delivery of `provider` is about to be stored `pending`. Called
    /// before its commit, so a claim that cannot see it yet cannot clear
    /// it either.
    pub(crate) fn stored(&self, provider: &str) {
        self.lock()
            .entry(provider.to_owned())
            .or_insert(UNKNOWN)
            .stored += 1;
    }

    /// Whether nothing of `provider` is known to wait.
    pub(crate) fn clear(&self, provider: &str) -> bool {
        self.lock()
            .get(provider)
            .is_some_and(|g| g.stored == g.cleared)
    }

    /// The generation a lane's claim starts at.
    pub(crate) fn seen(&self, provider: &str) -> u64 {
        self.lock()
            .entry(provider.to_owned())
            .or_insert(UNKNOWN)
            .stored
    }

    /// The lane's claim that started at `seen` found nothing due.
    pub(crate) fn drained(&self, provider: &str, seen: u64) {
        let mut gens = self.lock();
        let g = gens.entry(provider.to_owned()).or_insert(UNKNOWN);
        g.cleared = g.cleared.max(seen);
    }
}

impl Worker {
    /// Maps `entry` now if it may be settled inline: the inline path is
    /// on, the provider's lane has nothing waiting, a version serves and
    /// the provider takes deliveries in. `None` leaves it to the worker,
    /// which maps it again (a mapping that called the API or touched
    /// state is discarded: the worker's call gets both).
    pub async fn premap(&self, entry: &InboxEntry) -> Option<Arc<dyn Any + Send + Sync>> {
        if !self.inline || !self.backlog.clear(&entry.provider) {
            return None;
        }
        let pm = self.mappers.get(&entry.provider)?;
        if !self.applier.sync.accepts_inbound(&entry.provider) {
            return None;
        }
        let services = Services {
            people: self.people().await,
            state: StateView::default(),
        };
        let delivery = Delivery {
            provider: entry.provider.clone(),
            method: entry.method.clone(),
            path: entry.path.clone(),
            headers: entry.headers.clone(),
            body: entry.body.to_vec(),
            received_at: entry.received_at.clone(),
        };
        let outcome = pm
            .mapper
            .map_inbound_async(&delivery, &pm.config, Box::new(NoProviderApi), services)
            .await;
        self.metrics
            .mapper_call(&entry.provider, outcome.report.elapsed);
        if outcome.report.api_calls > 0 || outcome.report.state_used {
            return None;
        }
        let verdict = match outcome.result {
            Ok(Ok(mapped)) => Verdict::Mapped(mapped),
            Ok(Err(e)) if e.kind == MapErrorKind::UnsupportedEvent => {
                Verdict::Unsupported(e.to_string())
            }
            // Failures are recorded by the worker, with its retries.
            _ => return None,
        };
        Some(Arc::new(Premapped {
            hash: pm.mapper.content_hash().to_owned(),
            verdict,
        }))
    }

    /// The inbox writer's hook for this worker's inline path.
    pub fn inline_hook(&self) -> Arc<dyn Inline> {
        Arc::new(Hook {
            worker: self.clone(),
            counts: Mutex::new(Vec::new()),
            left_pending: AtomicBool::new(false),
        })
    }
}

struct Hook {
    worker: Worker,
    /// The outcomes of the batch in hand, counted once it commits (and
    /// the outbound worker woken if it applied changes).
    counts: Mutex<Vec<(String, DeliveryStatus)>>,
    /// A premapped delivery of the batch was left pending (its lane had
    /// work waiting): its request woke no lane, so the commit does.
    left_pending: AtomicBool,
}

impl Hook {
    fn counts(&self) -> MutexGuard<'_, Vec<(String, DeliveryStatus)>> {
        // The writer task is its only user; a poisoned lock holds a list.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl Inline for Hook {
    async fn within(
        &self,
        tx: &mut Tx,
        batch: &[(&InboxEntry, &Stored)],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let w = &self.worker;
        // In arrival order: once one of a provider's deliveries is left
        // pending, the rest of the batch of that provider waits behind it.
        let mut plan: Vec<(&InboxEntry, &Stored, &Premapped)> = Vec::new();
        for (entry, stored) in batch {
            if stored.duplicate {
                continue;
            }
            let premapped = entry
                .premapped
                .as_deref()
                .and_then(|p| p.downcast_ref::<Premapped>());
            match premapped {
                Some(p) if w.backlog.clear(&entry.provider) => plan.push((entry, stored, p)),
                Some(_) => {
                    w.backlog.stored(&entry.provider);
                    self.left_pending.store(true, Ordering::Relaxed);
                }
                None => w.backlog.stored(&entry.provider),
            }
        }
        if plan.is_empty() {
            return Ok(());
        }
        let inputs: Vec<ApplyInput<'_>> = plan
            .iter()
            .filter_map(|(entry, stored, p)| match &p.verdict {
                Verdict::Mapped(m) if !m.actions.is_empty() => Some(ApplyInput {
                    delivery_id: Some(&stored.id),
                    origin: Some(&entry.provider),
                    mapper_hash: Some(&p.hash),
                    actions: &m.actions,
                    state: &[],
                }),
                _ => None,
            })
            .collect();
        let mut applied = w.applier.apply_within(tx, &inputs).await?.into_iter();
        drop(inputs);

        let mut outcomes: Vec<Outcome> = Vec::with_capacity(plan.len());
        for (entry, _, p) in &plan {
            outcomes.push(match &p.verdict {
                Verdict::Unsupported(e) => {
                    ignored(None, IgnoreReason::UnsupportedEvent, Some(e.clone()))
                }
                Verdict::Mapped(m) if m.actions.is_empty() => Outcome {
                    output: Some(m.to_json()),
                    ..ignored(Some(m), IgnoreReason::Filtered, None)
                },
                Verdict::Mapped(m) => {
                    let out = applied.next().ok_or("an applied delivery has no outcome")?;
                    w.applied_outcome(&entry.provider, m, out)
                }
            });
        }
        let outputs: Vec<Option<String>> = outcomes
            .iter()
            .map(|o| o.output.as_ref().map(Value::to_string))
            .collect();
        let settles: Vec<Settle<'_>> = plan
            .iter()
            .zip(outcomes.iter().zip(&outputs))
            .map(|((_, stored, p), (o, output))| Settle {
                id: &stored.id,
                status: o.status,
                reason: o.reason,
                last_error: o.error.as_deref(),
                mapper_hash: Some(&p.hash),
                event_type: o.event_type.as_deref(),
                output: output.as_deref(),
            })
            .collect();
        let settled = tx.settle_new(&settles).await?;
        if settled != settles.len() as u64 {
            return Err(StoreError::Corrupt {
                column: "deliveries.status",
                reason: format!(
                    "{} of {} deliveries stored in this transaction were not pending",
                    settles.len() as u64 - settled,
                    settles.len()
                ),
            }
            .into());
        }
        let mut counts = self.counts();
        counts.clear();
        for ((entry, _, _), o) in plan.iter().zip(&outcomes) {
            counts.push((entry.provider.clone(), o.status));
        }
        Ok(())
    }

    fn committed(&self) {
        if self.left_pending.swap(false, Ordering::Relaxed) {
            self.worker.wake();
        }
        let mut applied = false;
        for (provider, status) in self.counts().drain(..) {
            self.worker.metrics.delivery(&provider, status.as_str());
            applied |= status == DeliveryStatus::Applied;
        }
        if applied && let Some(o) = &self.worker.outbound {
            o.wake();
        }
    }

    fn unsettled(&self, providers: &[&str]) {
        self.counts().clear();
        // Their requests saw a premapped delivery and woke no lane: the
        // lanes' tick would find them, a wake finds them sooner.
        self.left_pending.store(false, Ordering::Relaxed);
        self.worker.wake();
        for provider in providers {
            self.worker.backlog.stored(provider);
        }
    }
}
