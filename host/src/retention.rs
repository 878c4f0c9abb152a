//! The retention task: every `retention.interval_secs` it drops the raw
//! bodies of at most `retention.batch_size` deliveries older than
//! `retention.delivery_body_days` (`Store::drop_delivery_bodies`). Batches
//! are bounded so that a first run over a large backlog never holds the
//! (SQLite: single) writer for long; it catches up one batch per run.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::RetentionConfig;
use crate::store::Store;

pub struct Retention {
    pub store: Store,
    /// How long a body is kept.
    pub keep: Duration,
    pub batch: u32,
    pub interval: Duration,
}

impl Retention {
    /// The task for `config`; `None` when bodies are kept forever.
    pub fn from_config(config: &RetentionConfig, store: Store) -> Option<Retention> {
        Some(Retention {
            store,
            keep: config.keep()?,
            batch: config.batch_size,
            interval: Duration::from_secs(config.interval_secs),
        })
    }

    /// Runs a batch at start and then every interval, until `shutdown`;
    /// a batch in flight is abandoned on shutdown (its transaction rolls
    /// back, and the next start does it again).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let batch = self
                .store
                .drop_delivery_bodies(chrono::Utc::now(), self.keep, self.batch);
            let result = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = batch => r,
            };
            match result {
                Ok(0) => {}
                Ok(n) => tracing::info!(dropped = n, "retention: delivery bodies dropped"),
                // Transient or not, the next run tries again.
                Err(e) => tracing::warn!(error = %e, "retention: cannot drop delivery bodies"),
            }
        }
    }
}
