//! The delivery worker: claims stored deliveries, maps them with the
//! provider's component, and applies the actions — retrying what may
//! succeed later (a ticket whose `create` is still on the way, a busy
//! database) with exponential backoff and jitter, and dead-lettering after
//! a configured number of attempts. One worker per host claims batches,
//! maps a batch in parallel and applies it in arrival order, which keeps
//! per-ticket order.

mod inline;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::action::{MapError, MapErrorKind, Mapped};
use crate::mapper::{Delivery, People, ProviderApi, Services, StateView, StateWrite};
use crate::metrics::Metrics;
use crate::outbound::ProviderApis;
use crate::people::Directory;
use crate::queue::{RetryPolicy, hold_lease, retry_transient};
use crate::reload::{MapperRegistry, ProviderMapper, chain};
use crate::store::{
    DeliveryRow, DeliveryStatus, Finish, IgnoreReason, Queue, Reclaim, Store, StoreError,
};
use crate::tickets::{Applier, ApplyError, ApplyInput, ApplyOutcome};

/// How processing a delivery ended; also the `?wait=true` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: DeliveryStatus,
    /// Why, for [`DeliveryStatus::Ignored`].
    pub reason: Option<IgnoreReason>,
    pub event_type: Option<String>,
    /// `{"event_type", "actions": [...canonical...], "applied": [...]}`.
    pub output: Option<Value>,
    pub error: Option<String>,
}

#[derive(Clone)]
pub struct Worker {
    store: Store,
    applier: Arc<Applier>,
    /// The version serving each provider now; swapped by hot reload.
    mappers: MapperRegistry,
    policy: RetryPolicy,
    /// Bumped by [`Worker::wake`]; every lane watches it.
    wake: Arc<watch::Sender<u64>>,
    metrics: Arc<Metrics>,
    apis: ProviderApis,
    /// Woken when a batch applied changes: their outbox rows are due.
    outbound: Option<crate::outbound::OutboundWorker>,
    /// The people directory mappers look people up in (`find-person`).
    people: Option<Directory>,
    /// Settle pure mappings in the inbox's transaction (`inline.rs`).
    inline: bool,
    /// Which providers' lanes may have deliveries waiting.
    backlog: Arc<inline::Backlog>,
}

impl Worker {
    pub fn new(
        store: Store,
        applier: Arc<Applier>,
        mappers: MapperRegistry,
        policy: RetryPolicy,
        metrics: Arc<Metrics>,
        apis: ProviderApis,
    ) -> Self {
        Worker {
            store,
            applier,
            mappers,
            policy,
            wake: Arc::new(watch::Sender::new(0)),
            metrics,
            apis,
            outbound: None,
            people: None,
            inline: true,
            backlog: Arc::default(),
        }
    }

    /// This worker, with the inline path on or off (`delivery.inline`).
    pub fn with_inline(mut self, on: bool) -> Self {
        self.inline = on;
        self
    }

    /// This worker, lending mappers the people directory.
    pub fn with_people(mut self, people: Directory) -> Self {
        self.people = Some(people);
        self
    }

    /// This worker, waking `outbound` whenever it applied changes.
    pub fn with_outbound(mut self, outbound: crate::outbound::OutboundWorker) -> Self {
        self.outbound = Some(outbound);
        self
    }

    /// The outbound worker it wakes, if any provider sends outbound.
    pub fn outbound(&self) -> Option<crate::outbound::OutboundWorker> {
        self.outbound.clone()
    }

    /// Providers with a mapper version serving.
    pub fn providers(&self) -> Vec<String> {
        self.mappers.providers()
    }

    /// Tells the worker new deliveries are stored.
    pub fn wake(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Processes due deliveries until `shutdown`: one lane per provider
    /// with a mapper version serving, each claiming, mapping and applying
    /// its own provider's deliveries, so one provider's slow mapper or API
    /// delays no other provider. Lanes start when a version starts
    /// serving and end when none serves; each wakes on [`Worker::wake`]
    /// and, for retries that came due, every retry base delay (10 ms to
    /// 1 s). Returns once every lane finished its batch in hand.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut served = self.mappers.served_signal();
        let mut lanes: HashMap<String, JoinHandle<()>> = HashMap::new();
        loop {
            lanes.retain(|provider, lane| {
                let running = !lane.is_finished();
                if !running {
                    tracing::debug!(provider = %provider, "delivery lane ended");
                }
                running
            });
            for provider in self.mappers.providers() {
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    lanes.entry(provider.clone())
                {
                    slot.insert(tokio::spawn(self.clone().lane(provider, shutdown.clone())));
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = served.changed() => {}
                // A lane that ended on a passing absence is started again.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        for (provider, lane) in lanes {
            if let Err(e) = lane.await {
                tracing::error!(provider = %provider, error = %e, "delivery lane failed");
            }
        }
    }

    /// One provider's lane: drains its due deliveries, then waits for a
    /// wake or the retry tick; ends on shutdown or when no version of its
    /// mapper serves (its deliveries wait; [`Worker::run`] starts the lane
    /// again when one does).
    async fn lane(self, provider: String, shutdown: CancellationToken) {
        let mut wake = self.wake.subscribe();
        let tick = self
            .policy
            .base
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        while self.mappers.get(&provider).is_some() {
            // A claim or a finish that failed leaves every delivery
            // claimable (a claim that did not commit claimed nothing; a
            // claimed one's lease expires): the next round takes them.
            match self.drain_provider(&provider, &shutdown).await {
                Err(e) if e.is_transient() => {
                    tracing::warn!(provider = %provider, error = %e, "delivery worker: store unavailable; trying again");
                }
                Err(e) => {
                    tracing::error!(provider = %provider, error = %e, "delivery worker: store error")
                }
                Ok(_) => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.changed() => {}
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }

    /// Processes every delivery that is due now, every provider's lane at
    /// once, until none is left or `shutdown` is cancelled (the batches in
    /// hand are finished: shutdown never waits for the backlog); returns
    /// how many.
    pub async fn drain(&self, shutdown: &CancellationToken) -> Result<usize, StoreError> {
        let mut lanes = tokio::task::JoinSet::new();
        for provider in self.mappers.providers() {
            let (worker, shutdown) = (self.clone(), shutdown.clone());
            lanes.spawn(async move { worker.drain_provider(&provider, &shutdown).await });
        }
        let (mut done, mut failed) = (0, None);
        while let Some(lane) = lanes.join_next().await {
            match lane {
                Ok(Ok(n)) => done += n,
                Ok(Err(e)) => failed = failed.or(Some(e)),
                Err(e) => tracing::error!(error = %e, "delivery lane failed"),
            }
        }
        failed.map_or(Ok(done), Err)
    }

    /// Drains one provider's due deliveries, batch by batch.
    async fn drain_provider(
        &self,
        provider: &str,
        shutdown: &CancellationToken,
    ) -> Result<usize, StoreError> {
        let mut done = 0;
        let providers = [provider.to_owned()];
        // Asked again every batch: a mapper that went away mid-drain stops
        // the lane, so its rows wait untouched.
        while !shutdown.is_cancelled() && self.mappers.get(provider).is_some() {
            let seen = self.backlog.seen(provider);
            let claimed = self
                .store
                .claim_deliveries(&providers, BATCH, self.policy.lease)
                .await?;
            if claimed.is_empty() {
                // Nothing stored before the claim waits: newer deliveries
                // may be settled inline.
                self.backlog.drained(provider, seen);
                return Ok(done);
            }
            done += claimed.len();
            self.process_leased(claimed).await?;
        }
        Ok(done)
    }

    /// Processes one delivery now, unless another worker holds it (or, for
    /// [`Reclaim::Pending`], it is not waiting any more); `None` then.
    /// Replays take any state, `?wait=true` only a pending delivery.
    ///
    /// The claim and the processing run as a task of their own, which the
    /// caller only waits for: a request dropped mid-way (its client hung
    /// up, its deadline passed) must not leave its claim behind, or the
    /// delivery would sit `processing` — counted in the inbox depth, out
    /// of every lane's reach — until the lease ran out.
    pub async fn process_now(
        &self,
        id: &str,
        which: Reclaim,
    ) -> Result<Option<Outcome>, StoreError> {
        let (worker, owned) = (self.clone(), id.to_owned());
        let task = tokio::spawn(async move {
            let id = owned;
            match worker
                .store
                .claim_delivery(&id, worker.policy.lease, which)
                .await?
            {
                Some(row) => Ok(worker.process_leased(vec![row]).await?.pop()),
                None => Ok(None),
            }
        });
        match task.await {
            Ok(done) => done,
            // A panic: the claim's lease lets a lane take the delivery.
            Err(e) => {
                tracing::error!(delivery = %id, error = %e, "delivery processing task failed");
                Err(StoreError::Query(sqlx::Error::WorkerCrashed))
            }
        }
    }

    /// Processes claimed rows while renewing their lease (see
    /// [`hold_lease`]), so a slow batch is not taken over mid-way.
    async fn process_leased(&self, rows: Vec<DeliveryRow>) -> Result<Vec<Outcome>, StoreError> {
        let tokens: Vec<String> = rows.iter().filter_map(|r| r.claim_token.clone()).collect();
        hold_lease(
            &self.store,
            Queue::Inbox,
            &tokens,
            self.policy.lease,
            self.process_batch(rows),
        )
        .await
    }

    /// Maps claimed deliveries in parallel, applies their actions in order
    /// in one transaction, and records every outcome in another. Mapping
    /// is pure, so its order does not matter; applying in claim order
    /// (oldest first) keeps per-ticket order.
    async fn process_batch(&self, rows: Vec<DeliveryRow>) -> Result<Vec<Outcome>, StoreError> {
        let mapped = self.map_all(&rows).await?;
        // A mapping with state writes is applied even without actions (a
        // cursor moved past nothing to map): its writes commit with it.
        let inputs: Vec<ApplyInput<'_>> = rows
            .iter()
            .zip(&mapped)
            .filter_map(|(row, (hash, m, writes))| match m {
                Mapping::Mapped(mapped) if !mapped.actions.is_empty() || !writes.is_empty() => {
                    Some(ApplyInput {
                        delivery_id: Some(&row.id),
                        origin: Some(&row.provider),
                        mapper_hash: hash.as_deref(),
                        actions: &mapped.actions,
                        state: writes,
                    })
                }
                _ => None,
            })
            .collect();
        let mut applied = self
            .applier
            .apply_batch(&self.store, &inputs)
            .await
            .into_iter();
        drop(inputs);

        let mut outcomes = Vec::with_capacity(rows.len());
        let mut retry_at = Vec::with_capacity(rows.len());
        let mut refunds = Vec::with_capacity(rows.len());
        for (row, (_, m, writes)) in rows.iter().zip(mapped.iter()) {
            // A delivery that waits for a mapper, or for the store, has not
            // been tried: its claim does not count as an attempt.
            let mut refund = matches!(m, Mapping::NoMapper);
            let (outcome, at) = match m {
                // No version serves (its file was removed, or no release
                // passed its canary yet): the delivery waits, its attempt
                // not counted, and is claimed again once a version serves.
                Mapping::NoMapper => (
                    Outcome {
                        status: DeliveryStatus::Pending,
                        reason: None,
                        event_type: None,
                        output: None,
                        error: Some(format!(
                            "no mapper version is serving provider `{}`; the delivery waits for one",
                            row.provider
                        )),
                    },
                    Some(stamp(chrono::Utc::now())),
                ),
                Mapping::Direction => (
                    ignored(
                        None,
                        IgnoreReason::SyncDirection,
                        Some(format!(
                            "provider `{}` syncs with direction `{}`: its deliveries are stored, not applied",
                            row.provider,
                            self.applier.sync.direction(&row.provider).as_str()
                        )),
                    ),
                    None,
                ),
                // An event the mapper does not map is ordinary traffic, not
                // a failure to look at.
                Mapping::Refused(e) if e.kind == MapErrorKind::UnsupportedEvent => (
                    ignored(None, IgnoreReason::UnsupportedEvent, Some(e.to_string())),
                    None,
                ),
                Mapping::Refused(e) => (
                    failed(None, format!("mapper refused the delivery: {e}")),
                    None,
                ),
                Mapping::Failed(e) => {
                    tracing::warn!(provider = %row.provider, delivery = %row.id, error = %e, "mapper failed");
                    (failed(None, format!("mapper failed: {e}")), None)
                }
                Mapping::ApiTrouble(e) => self.retry(row, None, None, e.clone()),
                Mapping::Mapped(mapped) if mapped.actions.is_empty() && writes.is_empty() => (
                    Outcome {
                        output: Some(mapped.to_json()),
                        ..ignored(Some(mapped), IgnoreReason::Filtered, None)
                    },
                    None,
                ),
                Mapping::Mapped(mapped) => {
                    let output = mapped.to_json();
                    match applied.next() {
                        Some(Ok(out)) => (self.applied_outcome(&row.provider, mapped, out), None),
                        Some(Err(ApplyError::Store(e))) if e.is_transient() => {
                            refund = true;
                            self.store_fault(row, &mapped.event_type, output, &e)
                        }
                        // Waiting for the host's own send to finish is no
                        // fault of the delivery: not an attempt.
                        Some(Err(e @ ApplyError::EchoPending { .. })) => {
                            refund = true;
                            let delay = chrono::TimeDelta::from_std(self.policy.delay(1))
                                .unwrap_or_default();
                            (
                                Outcome {
                                    status: DeliveryStatus::Retrying,
                                    reason: None,
                                    event_type: Some(mapped.event_type.clone()),
                                    output: Some(output),
                                    error: Some(e.to_string()),
                                },
                                Some(stamp(chrono::Utc::now() + delay)),
                            )
                        }
                        Some(Err(e)) if e.is_retryable() => {
                            self.retry(row, Some(&mapped.event_type), Some(output), e.to_string())
                        }
                        // A reference no ticket can ever answer (a branch
                        // outside the convention, an id of a provider that
                        // links nothing): nothing to do, now or later.
                        Some(Err(e)) if e.names_no_ticket() => (
                            Outcome {
                                output: Some(output),
                                ..ignored(Some(mapped), IgnoreReason::NoTicket, Some(e.to_string()))
                            },
                            None,
                        ),
                        Some(Err(e)) => (
                            Outcome {
                                output: Some(output),
                                ..failed(Some(mapped), e.to_string())
                            },
                            None,
                        ),
                        // apply_batch answers every input; kept total anyway.
                        None => (failed(Some(mapped), "not applied".into()), None),
                    }
                }
            };
            let counted = match outcome.status {
                DeliveryStatus::Retrying => "retried",
                DeliveryStatus::Pending => "waiting",
                other => other.as_str(),
            };
            self.metrics.delivery(&row.provider, counted);
            outcomes.push(outcome);
            retry_at.push(at);
            refunds.push(refund);
        }

        let outputs: Vec<Option<String>> = outcomes
            .iter()
            .map(|o| o.output.as_ref().map(Value::to_string))
            .collect();
        let finished: Vec<(&str, Finish<'_>)> = rows
            .iter()
            .zip(&mapped)
            .zip(outcomes.iter().zip(&outputs).zip(&retry_at))
            .zip(&refunds)
            .map(|(((row, (hash, _, _)), ((o, output), at)), refund)| {
                (
                    row.id.as_str(),
                    Finish {
                        status: o.status,
                        reason: o.reason,
                        refund_attempt: *refund,
                        claim_token: row.claim_token.as_deref(),
                        last_error: o.error.as_deref(),
                        mapper_hash: hash.as_deref(),
                        event_type: o.event_type.as_deref(),
                        output: output.as_deref(),
                        next_attempt_at: at.as_deref(),
                    },
                )
            })
            .collect();
        let written = self.finish(&finished).await?;
        if let Some(o) = &self.outbound
            && outcomes.iter().any(|o| o.status == DeliveryStatus::Applied)
        {
            o.wake();
        }
        if written < finished.len() as u64 {
            // Their lease ran out and another worker claimed them: its
            // outcome, not this one, is recorded (the `applied` record keeps
            // the actions from applying twice).
            tracing::warn!(
                lost = finished.len() as u64 - written,
                "delivery worker: claims lost to another worker; their outcomes were not recorded"
            );
        }
        drop(finished);
        Ok(outcomes)
    }

    /// How a delivery whose actions were applied ends: `ignored: echo`
    /// when every action was our own record coming back, `ignored:
    /// filtered` when it had only state writes, else `applied`. Shared by
    /// the worker and the inline path.
    fn applied_outcome(&self, provider: &str, mapped: &Mapped, out: ApplyOutcome) -> Outcome {
        let mut output = mapped.to_json();
        output["applied"] = serde_json::to_value(&out.actions).unwrap_or(Value::Null);
        if !out.actions.is_empty() && out.actions.iter().all(|a| a.echo) {
            return Outcome {
                output: Some(output),
                ..ignored(Some(mapped), IgnoreReason::Echo, None)
            };
        }
        if mapped.actions.is_empty() {
            if let Some(o) = output.as_object_mut() {
                o.remove("applied");
            }
            return Outcome {
                output: Some(output),
                ..ignored(Some(mapped), IgnoreReason::Filtered, None)
            };
        }
        if !out.replayed {
            for c in out.actions.iter().flat_map(|a| &a.conflicts) {
                self.metrics.sync_conflict(provider, c.policy.as_str());
            }
        }
        Outcome {
            status: DeliveryStatus::Applied,
            reason: None,
            event_type: Some(mapped.event_type.clone()),
            output: Some(output),
            error: None,
        }
    }

    /// Records the outcomes, trying a transient store fault again a few
    /// times (a dropped connection is usually replaced at once). If it
    /// still fails the deliveries stay `processing` until their lease
    /// expires and are claimed again: those applied already are found in
    /// the `applied` table and change nothing the second time.
    async fn finish(&self, finished: &[(&str, Finish<'_>)]) -> Result<u64, StoreError> {
        retry_transient(
            "recording outcomes",
            |tries| self.policy.delay(tries).min(Duration::from_secs(1)),
            || self.store.finish_deliveries(finished),
        )
        .await
    }

    /// Tries again after a transient store fault (a lost connection, a
    /// full disk, a lock): the database's trouble, not the delivery's, so
    /// it never fails or dead-letters the delivery, and its attempt is
    /// refunded. The delay is the one of its current attempt: it does not
    /// grow while the store is down, so the backlog moves soon after the
    /// store is back.
    fn store_fault(
        &self,
        row: &DeliveryRow,
        event_type: &str,
        output: Value,
        error: &StoreError,
    ) -> (Outcome, Option<String>) {
        tracing::warn!(provider = %row.provider, delivery = %row.id, error = %error, "store unavailable; delivery retried");
        let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
        let delay = chrono::TimeDelta::from_std(self.policy.delay(attempts)).unwrap_or_default();
        let outcome = Outcome {
            status: DeliveryStatus::Retrying,
            reason: None,
            event_type: Some(event_type.to_owned()),
            output: Some(output),
            error: Some(format!("store unavailable: {}", chain(error))),
        };
        (outcome, Some(stamp(chrono::Utc::now() + delay)))
    }

    /// Runs every delivery through its provider's mapper, at most
    /// [`LANE_WIDTH`] at a time, each call a task of its own (a call
    /// waiting on its provider's API or cut by its wall clock holds no
    /// thread). Results are in input order, each with the hash of the
    /// version that produced it and the state writes it made. Each call
    /// gets the people directory and its provider's state as read once for
    /// the batch (one query): two deliveries of a batch that write one key
    /// race, and the compare-and-set at apply lets one win.
    async fn map_all(&self, rows: &[DeliveryRow]) -> Result<Vec<Mapped3>, StoreError> {
        let people = self.people().await;
        let mut providers: Vec<&str> = rows.iter().map(|r| r.provider.as_str()).collect();
        providers.sort_unstable();
        providers.dedup();
        let mut state: std::collections::HashMap<
            String,
            std::collections::BTreeMap<String, String>,
        > = std::collections::HashMap::new();
        for e in self.store.mapper_state(&providers).await? {
            state.entry(e.provider).or_default().insert(e.key, e.value);
        }
        let width = Arc::new(Semaphore::new(LANE_WIDTH));
        let tasks: Vec<_> = rows
            .iter()
            .map(|row| {
                let delivery = Delivery::from(row);
                // One clone of the version serving now: the whole call,
                // and the hash recorded, belong to it even if a reload
                // swaps meanwhile.
                let mapper = self.mappers.get(&row.provider);
                let direction = !self.applier.sync.accepts_inbound(&row.provider);
                let api = self.apis.session(&row.provider);
                let services = Services {
                    people: people.clone(),
                    state: StateView::new(state.get(&row.provider).cloned().unwrap_or_default()),
                };
                let metrics = self.metrics.clone();
                let width = width.clone();
                tokio::spawn(async move {
                    // The semaphore is never closed.
                    let _permit = width.acquire_owned().await;
                    // Stored for the record, never mapped: its provider
                    // takes nothing in.
                    if direction {
                        return (None, Mapping::Direction, Vec::new());
                    }
                    map_one(&delivery, mapper, api, services, &metrics).await
                })
            })
            .collect();
        let mut out = Vec::with_capacity(rows.len());
        for task in tasks {
            out.push(task.await.unwrap_or_else(|join| {
                let failed = Mapping::Failed(format!("mapper task failed: {join}"));
                (None, failed, Vec::new())
            }));
        }
        Ok(out)
    }

    /// The people directory for a round of mappings, reloaded first if
    /// it is stale (the batch's, or one inline mapping's).
    async fn people(&self) -> Option<Arc<dyn People>> {
        let people = self.people.as_ref()?;
        if let Err(e) = people.refresh_if_stale(&self.store).await {
            // The copy in hand still serves; the next round tries again.
            tracing::warn!(error = %e, "people directory not reloaded");
        }
        Some(Arc::new(people.clone()))
    }

    /// Retries later, or dead-letters once the attempts are used up.
    fn retry(
        &self,
        row: &DeliveryRow,
        event_type: Option<&str>,
        output: Option<Value>,
        error: String,
    ) -> (Outcome, Option<String>) {
        let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
        if attempts >= self.policy.max_attempts {
            tracing::warn!(provider = %row.provider, delivery = %row.id, error = %error, "delivery dead-lettered");
            let outcome = Outcome {
                status: DeliveryStatus::Dead,
                reason: None,
                event_type: event_type.map(str::to_owned),
                output,
                error: Some(format!("gave up after {attempts} attempts: {error}")),
            };
            return (outcome, None);
        }
        let delay = chrono::TimeDelta::from_std(self.policy.delay(attempts)).unwrap_or_default();
        let outcome = Outcome {
            status: DeliveryStatus::Retrying,
            reason: None,
            event_type: event_type.map(str::to_owned),
            output,
            error: Some(error),
        };
        (outcome, Some(stamp(chrono::Utc::now() + delay)))
    }
}

/// A stored delivery as a mapper sees it (the worker's and shadow
/// replay's input).
impl From<&DeliveryRow> for Delivery {
    fn from(row: &DeliveryRow) -> Self {
        Delivery {
            provider: row.provider.clone(),
            method: row.method.clone(),
            path: row.path.clone(),
            headers: row.headers.clone(),
            body: row.body.clone(),
            received_at: row.received_at.clone(),
        }
    }
}

/// Deliveries a lane claims, maps and applies together.
const BATCH: u32 = 64;

/// Mapper calls one lane runs at once: with the engine's 64 instance
/// slots, eight providers' lanes at full width fit.
const LANE_WIDTH: usize = 8;

/// One delivery's mapping: the version's hash, the verdict, and the
/// state writes to commit with it.
type Mapped3 = (Option<String>, Mapping, Vec<StateWrite>);

/// What a mapper made of one delivery.
enum Mapping {
    NoMapper,
    /// Its provider's `sync.direction` takes nothing in.
    Direction,
    /// The mapper's own verdict (`map-error`): malformed, unsupported, …
    Refused(MapError),
    /// The runtime's: trap, timeout, limit.
    Failed(String),
    /// Either of the above after the provider's API failed transiently
    /// (timeout, no connection, 429, 5xx): retried like an unresolved
    /// reference.
    ApiTrouble(String),
    Mapped(Mapped),
}

async fn map_one(
    delivery: &Delivery,
    pm: Option<ProviderMapper>,
    api: Box<dyn ProviderApi>,
    services: Services,
    metrics: &Metrics,
) -> Mapped3 {
    let Some(pm) = pm else {
        return (None, Mapping::NoMapper, Vec::new());
    };
    let hash = pm.mapper.content_hash().to_owned();
    let outcome = pm
        .mapper
        .map_inbound_async(delivery, &pm.config, api, services)
        .await;
    metrics.mapper_call(&delivery.provider, outcome.report.elapsed);
    let transient = outcome.report.api_transient_failures > 0;
    let mapping = match outcome.result {
        Ok(Ok(mapped)) => Mapping::Mapped(mapped),
        Ok(Err(e)) if transient => Mapping::ApiTrouble(format!("mapper refused the delivery: {e}")),
        Ok(Err(map_error)) => Mapping::Refused(map_error),
        Err(e) if transient => Mapping::ApiTrouble(format!("mapper failed: {e}")),
        Err(e) => Mapping::Failed(e.to_string()),
    };
    // Only a mapping that produced a result commits its writes.
    let writes = match &mapping {
        Mapping::Mapped(_) => outcome.report.state_writes,
        _ => Vec::new(),
    };
    (Some(hash), mapping, writes)
}

fn ignored(mapped: Option<&Mapped>, reason: IgnoreReason, detail: Option<String>) -> Outcome {
    Outcome {
        status: DeliveryStatus::Ignored,
        reason: Some(reason),
        event_type: mapped.map(|m| m.event_type.clone()),
        output: None,
        error: detail,
    }
}

fn failed(mapped: Option<&Mapped>, error: String) -> Outcome {
    Outcome {
        status: DeliveryStatus::Failed,
        reason: None,
        event_type: mapped.map(|m| m.event_type.clone()),
        output: None,
        error: Some(error),
    }
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl Outcome {
    /// The `?wait=true` and replay answer.
    pub fn report(&self, delivery_id: &str) -> OutcomeReport {
        OutcomeReport::new(
            delivery_id,
            self.status,
            self.reason,
            self.event_type.as_deref(),
            self.output.as_ref(),
            self.error.as_deref(),
        )
    }
}

/// What became of one delivery, absent parts omitted: the answer for a
/// delivery just processed (`?wait=true`, a replay) and for one read back
/// from the store.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Outcome)]
pub struct OutcomeReport {
    pub delivery_id: String,
    pub status: DeliveryStatus,
    /// Why an `ignored` delivery was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<IgnoreReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub event_type: Option<String>,
    /// The mapper's actions, in the canonical JSON rendering.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>, nullable = false)]
    pub actions: Option<Value>,
    /// Per action: the ticket's guid, whether it changed anything, the
    /// history row it wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>, nullable = false)]
    pub applied: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
    /// On a webhook's `?wait=true` answer read back from the store: whether
    /// the delivery had been received before.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub duplicate: Option<bool>,
}

impl OutcomeReport {
    /// From an outcome's parts; `output` is the stored
    /// `{"event_type", "actions", "applied"}`.
    pub fn new(
        delivery_id: &str,
        status: DeliveryStatus,
        reason: Option<IgnoreReason>,
        event_type: Option<&str>,
        output: Option<&Value>,
        error: Option<&str>,
    ) -> Self {
        let output = output.filter(|o| !o.is_null());
        OutcomeReport {
            delivery_id: delivery_id.to_owned(),
            status,
            reason,
            event_type: event_type.map(str::to_owned),
            actions: output.map(|o| o["actions"].clone()),
            applied: output
                .map(|o| o["applied"].clone())
                .filter(|a| !a.is_null()),
            error: error.map(str::to_owned),
            duplicate: None,
        }
    }
}
