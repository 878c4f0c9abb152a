//! The leader's loop: one replica at a time runs the periodic work — the
//! ticks (every second) and the sweeper (every minute). On PostgreSQL the
//! leader holds an advisory lock on a connection of its own
//! (`Store::try_lead`); when it dies its session ends, the lock is freed,
//! and a follower, trying every few seconds, takes over and starts at once.
//! On SQLite the one host leads. Each piece of work is once-per-period by
//! itself (the inbox's dedupe key, `sweeper_notices`), so two leaders
//! overlapping for a moment record nothing twice.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Ticker;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::sweeper::Sweeper;

/// How often the leader's loop runs.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Between two polls of the ticks (a tick is stored within this of its time).
    pub tick: Duration,
    /// Between two sweeps.
    pub sweep: Duration,
    /// Between a follower's attempts to take the lead.
    pub follow: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            tick: Duration::from_secs(1),
            sweep: Duration::from_secs(60),
            follow: Duration::from_secs(3),
        }
    }
}

/// The periodic work the leader does.
#[derive(Clone, Default)]
pub struct Periodic {
    pub sweeper: Option<Arc<Sweeper>>,
    pub ticker: Option<Arc<Ticker>>,
    pub metrics: Option<Arc<Metrics>>,
}

impl Periodic {
    /// Whether there is anything to lead.
    pub fn is_empty(&self) -> bool {
        self.sweeper.is_none() && self.ticker.is_none()
    }

    /// Leads when it can, and does the work at `pace` while it leads, until
    /// `shutdown`; then gives the lead up.
    pub async fn run(self, store: Store, pace: Pace, shutdown: CancellationToken) {
        let mut lead = None;
        let mut next_sweep = Instant::now();
        loop {
            if lead.is_none() {
                match store.try_lead().await {
                    Ok(Some(l)) => {
                        tracing::info!("leading the periodic work");
                        lead = Some(l);
                        // A new leader catches up at once.
                        next_sweep = Instant::now();
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot take the lead"),
                }
            }
            if let Some(l) = lead.as_mut() {
                if l.holds().await {
                    self.work(&store, pace, &mut next_sweep).await;
                } else {
                    tracing::warn!("lost the lead");
                    lead = None;
                }
            }
            if let Some(m) = &self.metrics {
                m.set_leader(lead.is_some());
            }
            let wait = if lead.is_some() {
                pace.tick
            } else {
                pace.follow
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        if let Some(l) = lead {
            l.release().await;
        }
    }

    async fn work(&self, store: &Store, pace: Pace, next_sweep: &mut Instant) {
        if let Some(t) = &self.ticker
            && let Err(e) = t.tick(store, Utc::now()).await
        {
            tracing::warn!(error = %e, "ticks failed");
        }
        if let Some(s) = &self.sweeper
            && Instant::now() >= *next_sweep
        {
            if let Err(e) = s.sweep(store, Utc::now()).await {
                tracing::warn!(error = %e, "sweep failed");
            }
            *next_sweep = Instant::now() + pace.sweep;
        }
    }
}
