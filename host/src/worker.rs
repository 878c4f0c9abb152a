//! The delivery worker: claims stored deliveries, maps them with the
//! provider's component, and applies the actions — retrying what may
//! succeed later (a ticket whose `create` is still on the way, a busy
//! database) with exponential backoff and jitter, and dead-lettering after
//! a configured number of attempts. One worker per host claims batches,
//! maps a batch in parallel and applies it in arrival order, which keeps
//! per-ticket order.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::action::{MapError, MapErrorKind, Mapped};
use crate::mapper::{Delivery, People, ProviderApi, Services, StateView, StateWrite};
use crate::metrics::Metrics;
use crate::outbound::ProviderApis;
use crate::people::Directory;
use crate::queue::{RetryPolicy, hold_lease};
use crate::reload::{MapperRegistry, ProviderMapper, chain};
use crate::store::{
    DeliveryRow, DeliveryStatus, Finish, IgnoreReason, Queue, Reclaim, Store, StoreError,
};
use crate::tickets::{Applier, ApplyError, ApplyInput};

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
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    apis: ProviderApis,
    /// Woken when a batch applied changes: their outbox rows are due.
    outbound: Option<crate::outbound::OutboundWorker>,
    /// The people directory mappers look people up in (`find-person`).
    people: Option<Directory>,
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
            wake: Arc::new(Notify::new()),
            metrics,
            apis,
            outbound: None,
            people: None,
        }
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
        self.wake.notify_one();
    }

    /// Processes due deliveries until `shutdown`; wakes on [`Worker::wake`],
    /// when a mapper version starts serving, and, for retries that came
    /// due, every retry base delay (10 ms to 1 s).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut served = self.mappers.served_signal();
        loop {
            // A claim or a finish that failed leaves every delivery
            // claimable (a claim that did not commit claimed nothing; a
            // claimed one's lease expires): the next round takes them.
            match self.drain(&shutdown).await {
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "delivery worker: store unavailable; trying again");
                }
                Err(e) => tracing::error!(error = %e, "delivery worker: store error"),
                Ok(_) => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = served.changed() => {}
                _ = tokio::time::sleep(self.policy.base.clamp(Duration::from_millis(10), Duration::from_secs(1))) => {}
            }
        }
    }

    /// Processes every delivery that is due now, batch by batch, until none
    /// is left or `shutdown` is cancelled (the batch in hand is finished:
    /// shutdown never waits for the backlog); returns how many.
    pub async fn drain(&self, shutdown: &CancellationToken) -> Result<usize, StoreError> {
        let mut done = 0;
        while !shutdown.is_cancelled() {
            // Asked again every batch: a provider whose mapper went away
            // mid-drain stops being claimed, so its rows wait untouched.
            let providers = self.mappers.providers();
            let claimed = self
                .store
                .claim_deliveries(&providers, BATCH, self.policy.lease)
                .await?;
            if claimed.is_empty() {
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
    pub async fn process_now(
        &self,
        id: &str,
        which: Reclaim,
    ) -> Result<Option<Outcome>, StoreError> {
        match self
            .store
            .claim_delivery(id, self.policy.lease, which)
            .await?
        {
            Some(row) => Ok(self.process_leased(vec![row]).await?.pop()),
            None => Ok(None),
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
                    let mut output = mapped.to_json();
                    match applied.next() {
                        Some(Ok(_)) if mapped.actions.is_empty() => (
                            Outcome {
                                output: Some(output),
                                ..ignored(Some(mapped), IgnoreReason::Filtered, None)
                            },
                            None,
                        ),
                        Some(Ok(out)) => {
                            output["applied"] =
                                serde_json::to_value(&out.actions).unwrap_or(Value::Null);
                            (
                                Outcome {
                                    status: DeliveryStatus::Applied,
                                    reason: None,
                                    event_type: Some(mapped.event_type.clone()),
                                    output: Some(output),
                                    error: None,
                                },
                                None,
                            )
                        }
                        Some(Err(ApplyError::Store(e))) if e.is_transient() => {
                            refund = true;
                            self.store_fault(row, &mapped.event_type, output, &e)
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

    /// Records the outcomes, trying a transient store fault again a few
    /// times (a dropped connection is usually replaced at once). If it
    /// still fails the deliveries stay `processing` until their lease
    /// expires and are claimed again: those applied already are found in
    /// the `applied` table and change nothing the second time.
    async fn finish(&self, finished: &[(&str, Finish<'_>)]) -> Result<u64, StoreError> {
        let mut tries = 1;
        loop {
            match self.store.finish_deliveries(finished).await {
                Err(e) if e.is_transient() && tries < FINISH_TRIES => {
                    tracing::warn!(error = %e, tries, "recording outcomes failed; trying again");
                    let pause = self.policy.delay(tries).min(Duration::from_secs(1));
                    tokio::time::sleep(pause).await;
                    tries += 1;
                }
                done => return done,
            }
        }
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

    /// Runs every delivery through its provider's mapper, spread over the
    /// cores on blocking threads (mapping is CPU-bound and synchronous).
    /// Results are in input order, each with the hash of the version that
    /// produced it and the state writes it made. Each call gets the people
    /// directory and its provider's state as read once for the batch (one
    /// query): two deliveries of a batch that write one key race, and the
    /// compare-and-set at apply lets one win.
    async fn map_all(&self, rows: &[DeliveryRow]) -> Result<Vec<Mapped3>, StoreError> {
        if let Some(people) = &self.people
            && let Err(e) = people.refresh_if_stale(&self.store).await
        {
            // The copy in hand still serves; the next batch tries again.
            tracing::warn!(error = %e, "people directory not reloaded");
        }
        let people = self
            .people
            .clone()
            .map(|p| -> std::sync::Arc<dyn People> { std::sync::Arc::new(p) });
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
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let per_thread = rows.len().div_ceil(threads).max(1);
        let mut tasks = Vec::new();
        for chunk in rows.chunks(per_thread) {
            let jobs: Vec<Job> = chunk
                .iter()
                .map(|row| {
                    let delivery = Delivery::from(row);
                    // One clone of the version serving now: the whole
                    // call, and the hash recorded, belong to it even if
                    // a reload swaps meanwhile.
                    let mapper = self.mappers.get(&row.provider);
                    let services = Services {
                        people: people.clone(),
                        state: StateView::new(
                            state.get(&row.provider).cloned().unwrap_or_default(),
                        ),
                    };
                    (delivery, mapper, self.apis.session(&row.provider), services)
                })
                .collect();
            let n = jobs.len();
            let metrics = self.metrics.clone();
            let task = tokio::task::spawn_blocking(move || {
                jobs.into_iter()
                    .map(|(delivery, pm, api, services)| {
                        map_one(&delivery, pm, api, services, &metrics)
                    })
                    .collect::<Vec<_>>()
            });
            tasks.push((n, task));
        }
        let mut out = Vec::with_capacity(rows.len());
        for (n, task) in tasks {
            match task.await {
                Ok(results) => out.extend(results),
                Err(join) => out.extend((0..n).map(|_| {
                    let failed = Mapping::Failed(format!("mapper task failed: {join}"));
                    (None, failed, Vec::new())
                })),
            }
        }
        Ok(out)
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

/// Deliveries claimed, mapped and applied together.
const BATCH: u32 = 64;

/// Tries at recording a batch's outcomes before leaving them to the lease.
const FINISH_TRIES: u32 = 3;

/// One mapper call to make: the delivery, the version serving its
/// provider, an API session and the services lent to the call.
type Job = (
    Delivery,
    Option<ProviderMapper>,
    Box<dyn ProviderApi>,
    Services,
);

/// One delivery's mapping: the version's hash, the verdict, and the
/// state writes to commit with it.
type Mapped3 = (Option<String>, Mapping, Vec<StateWrite>);

/// What a mapper made of one delivery.
enum Mapping {
    NoMapper,
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

fn map_one(
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
        .map_inbound_with(delivery, &pm.config, api, services);
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
    /// The `?wait=true` body.
    pub fn to_json(&self, delivery_id: &str) -> Value {
        outcome_json(
            delivery_id,
            self.status,
            self.reason,
            self.event_type.as_deref(),
            self.output.as_ref(),
            self.error.as_deref(),
        )
    }
}

/// `{"delivery_id", "status", "event_type", "actions", "applied", "error"}`,
/// absent parts omitted: the answer for a delivery just processed and for
/// one read back from the store.
pub fn outcome_json(
    delivery_id: &str,
    status: DeliveryStatus,
    reason: Option<IgnoreReason>,
    event_type: Option<&str>,
    output: Option<&Value>,
    error: Option<&str>,
) -> Value {
    let mut v = json!({"delivery_id": delivery_id, "status": status});
    if let Some(r) = reason {
        v["reason"] = json!(r);
    }
    if let Some(e) = event_type {
        v["event_type"] = json!(e);
    }
    if let Some(o) = output.filter(|o| !o.is_null()) {
        v["actions"] = o["actions"].clone();
        if !o["applied"].is_null() {
            v["applied"] = o["applied"].clone();
        }
    }
    if let Some(e) = error {
        v["error"] = json!(e);
    }
    v
}
