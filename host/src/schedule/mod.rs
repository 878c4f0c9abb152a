//! Periodic ticks: synthetic deliveries the host makes for a provider's
//! mapper, so a provider without webhooks is pulled (`schedule:`) and a
//! provider's linked tickets are reconciled (`sync.interval_secs`).
//!
//! A tick is an ordinary inbox row — method `TICK`, path `/tick/{name}` or
//! `/tick/reconcile/{external id, percent-encoded}`, no headers, empty
//! body — so it is durable, processed by the delivery worker, retried,
//! recorded and replayable like any delivery, and listed by
//! `/v1/deliveries`. Its dedupe key names the period (`tick:{name}:{period}`,
//! `tick:reconcile:{period}:{ticket guid}`): the inbox's unique
//! (provider, dedupe key) makes a rerun, a restart or a second replica a
//! duplicate, so each (provider, schedule, period) ticks once. Ingress
//! stores only `POST`s: no sender can make a `TICK`.
//!
//! Every tick takes `now`; nothing here reads the clock. The leader loop
//! (`lead.rs`) drives it on PostgreSQL's advisory lock, with the sweeper.

pub mod config;
pub mod lead;

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::store::{NewDelivery, Store, StoreError, timestamp};
use crate::worker::Worker;
pub use config::{Cadence, Pull, RECONCILE, ScheduleConfig};

/// The method of every tick; ingress never stores it.
pub const TICK: &str = "TICK";

/// Statuses of a ticket no longer reconciled.
pub const CLOSED: [&str; 3] = ["RESOLVED", "CLOSED", "CANCELLED"];

/// What an external id keeps unescaped in a tick's path: RFC 3986's
/// unreserved characters.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error("{key}: {message}")]
    Config { key: String, message: String },
    #[error("ticket store")]
    Store(#[from] StoreError),
}

/// One provider's periodic work.
#[derive(Debug, Clone)]
struct ProviderTicks {
    provider: String,
    pulls: Vec<Pull>,
    /// Seconds between reconciliations.
    reconcile: Option<i64>,
}

/// A tick stored by this call (not one stored before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    pub provider: String,
    pub path: String,
    pub period: DateTime<Utc>,
    pub delivery_id: String,
}

/// When a provider's schedule ticks next (for the listing and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextTick {
    pub provider: String,
    pub name: String,
    pub next: Option<DateTime<Utc>>,
}

/// Every provider's schedules and reconciliation interval.
pub struct Ticker {
    providers: Vec<ProviderTicks>,
    /// Per (provider, schedule) the last period this process stored or
    /// found stored: the next poll within it writes nothing.
    done: Mutex<BTreeMap<(String, String), DateTime<Utc>>>,
    worker: Option<Worker>,
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticker")
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

impl Ticker {
    /// From each provider's `schedule` and `sync.interval_secs` (given as
    /// the interval); `None` when no provider has either.
    pub fn new<'a>(
        providers: impl IntoIterator<Item = (&'a str, &'a [ScheduleConfig], Option<u64>)>,
    ) -> Result<Option<Ticker>, TickError> {
        let mut out = Vec::new();
        for (name, schedule, interval) in providers {
            let pulls = config::pulls(name, schedule)
                .map_err(|(key, message)| TickError::Config { key, message })?;
            let reconcile = match interval {
                None | Some(0) => None,
                Some(secs) => Some(config::every(secs).map_err(|message| TickError::Config {
                    key: format!("providers.{name}.sync.interval_secs"),
                    message,
                })?),
            };
            if !pulls.is_empty() || reconcile.is_some() {
                out.push(ProviderTicks {
                    provider: name.to_owned(),
                    pulls,
                    reconcile,
                });
            }
        }
        Ok((!out.is_empty()).then(|| Ticker {
            providers: out,
            done: Mutex::default(),
            worker: None,
        }))
    }

    /// Wakes `worker` when ticks are stored, so they are mapped at once.
    pub fn with_worker(mut self, worker: Worker) -> Ticker {
        self.worker = Some(worker);
        self
    }

    /// Each schedule's next tick after `now`.
    pub fn next_ticks(&self, now: DateTime<Utc>) -> Vec<NextTick> {
        let mut out = Vec::new();
        for p in &self.providers {
            for pull in &p.pulls {
                out.push(NextTick {
                    provider: p.provider.clone(),
                    name: pull.name.clone(),
                    next: pull.cadence.next(now),
                });
            }
            if let Some(secs) = p.reconcile {
                out.push(NextTick {
                    provider: p.provider.clone(),
                    name: RECONCILE.into(),
                    next: Cadence::Every(secs).next(now),
                });
            }
        }
        out
    }

    /// Stores the ticks due at `now` that were not stored yet: each
    /// schedule's current period, and for a provider with reconciliation
    /// one tick per open linked ticket in the current interval. Returns the
    /// ticks this call stored.
    pub async fn tick(&self, store: &Store, now: DateTime<Utc>) -> Result<Vec<Tick>, TickError> {
        let received_at = timestamp(now);
        let mut stored = Vec::new();
        for p in &self.providers {
            for pull in &p.pulls {
                let Some(period) = pull.cadence.period(now) else {
                    continue;
                };
                if self.seen(&p.provider, &pull.name, period) {
                    continue;
                }
                let path = format!("/tick/{}", pull.name);
                let key = format!("tick:{}:{}", pull.name, timestamp(period));
                if let Some(t) = insert(store, &p.provider, &key, &path, &received_at).await? {
                    stored.push(Tick {
                        provider: p.provider.clone(),
                        path,
                        period,
                        delivery_id: t,
                    });
                }
                self.remember(&p.provider, &pull.name, period);
            }
            if let Some(secs) = p.reconcile {
                let Some(period) = Cadence::Every(secs).period(now) else {
                    continue;
                };
                if self.seen(&p.provider, RECONCILE, period) {
                    continue;
                }
                for link in store.open_links(&p.provider, &CLOSED).await? {
                    let path = format!(
                        "/tick/{RECONCILE}/{}",
                        utf8_percent_encode(&link.external_id, PATH_SEGMENT)
                    );
                    let key = format!(
                        "tick:{RECONCILE}:{}:{}",
                        timestamp(period),
                        link.ticket_guid
                    );
                    if let Some(t) = insert(store, &p.provider, &key, &path, &received_at).await? {
                        stored.push(Tick {
                            provider: p.provider.clone(),
                            path,
                            period,
                            delivery_id: t,
                        });
                    }
                }
                self.remember(&p.provider, RECONCILE, period);
            }
        }
        if !stored.is_empty() {
            tracing::info!(ticks = stored.len(), "ticks stored");
            if let Some(w) = &self.worker {
                w.wake();
            }
        }
        Ok(stored)
    }

    fn seen(&self, provider: &str, name: &str, period: DateTime<Utc>) -> bool {
        self.done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(provider.to_owned(), name.to_owned()))
            .is_some_and(|p| *p >= period)
    }

    fn remember(&self, provider: &str, name: &str, period: DateTime<Utc>) {
        self.done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((provider.to_owned(), name.to_owned()), period);
    }
}

/// Stores one tick; its id, or `None` when its key was stored before.
async fn insert(
    store: &Store,
    provider: &str,
    key: &str,
    path: &str,
    received_at: &str,
) -> Result<Option<String>, StoreError> {
    let id = crate::store::new_delivery_id();
    let s = store
        .insert_delivery(&NewDelivery {
            encoded: None,
            id: &id,
            provider,
            dedupe_key: key,
            body_key: None,
            method: TICK,
            path,
            headers: &[],
            body: &[],
            received_at,
        })
        .await?;
    Ok((!s.duplicate).then_some(s.id))
}
