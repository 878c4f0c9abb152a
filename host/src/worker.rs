//! The delivery worker: claims stored deliveries, maps them with the
//! provider's component, and applies the actions — retrying what may
//! succeed later (a ticket whose `create` is still on the way, a busy
//! database) with exponential backoff and jitter, and dead-lettering after
//! a configured number of attempts. One worker per host processes one
//! delivery at a time, which keeps per-ticket order.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::action::Mapped;
use crate::mapper::{Delivery, LoadedMapper, NoProviderApi};
use crate::metrics::Metrics;
use crate::reload::MapperRegistry;
use crate::store::{DeliveryRow, Finish, Store, StoreError};
use crate::tickets::{Applier, ApplyInput};

/// A provider's mapper and its `mapper_config`.
#[derive(Clone)]
pub struct ProviderMapper {
    pub mapper: LoadedMapper,
    /// JSON text.
    pub config: String,
}

/// When to try again.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    pub base: Duration,
    pub max_delay: Duration,
    /// How long a claim lasts; a crashed host's claims expire after it.
    pub lease: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(600),
            lease: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter: a delay in [d/2, d] where
    /// d = base * 2^(attempt-1), capped.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let d = exp.min(self.max_delay);
        let jitter = rand_fraction();
        d / 2 + d.mul_f64(jitter / 2.0)
    }
}

fn rand_fraction() -> f64 {
    // Jitter needs no cryptographic randomness: a fresh uuid's bits will do.
    let bits = uuid::Uuid::new_v4().as_u128() as u64;
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// How processing a delivery ended; also the `?wait=true` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: &'static str,
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
}

impl Worker {
    pub fn new(
        store: Store,
        applier: Arc<Applier>,
        mappers: MapperRegistry,
        policy: RetryPolicy,
        metrics: Arc<Metrics>,
    ) -> Self {
        Worker {
            store,
            applier,
            mappers,
            policy,
            wake: Arc::new(Notify::new()),
            metrics,
        }
    }

    /// Providers with a mapper version serving.
    pub fn providers(&self) -> Vec<String> {
        self.mappers.providers()
    }

    /// Tells the worker new deliveries are stored.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Processes due deliveries until `shutdown`; wakes on [`Worker::wake`]
    /// and, for retries that came due, every retry base delay (10 ms to 1 s).
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.drain().await {
                tracing::error!(error = %e, "delivery worker: store error");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.policy.base.clamp(Duration::from_millis(10), Duration::from_secs(1))) => {}
            }
        }
    }

    /// Processes every delivery that is due now; returns how many.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let providers = self.mappers.providers();
        let mut done = 0;
        loop {
            let now = chrono::Utc::now();
            let claimed = self
                .store
                .claim_deliveries(&providers, 32, &stamp(now), &stamp(now + self.lease()))
                .await?;
            if claimed.is_empty() {
                return Ok(done);
            }
            for row in claimed {
                self.process(row).await?;
                done += 1;
            }
        }
    }

    /// Processes one delivery now (for `?wait=true` and replay), unless
    /// another worker holds it; `None` then.
    pub async fn process_now(&self, id: &str) -> Result<Option<Outcome>, StoreError> {
        let lease_until = stamp(chrono::Utc::now() + self.lease());
        match self.store.claim_delivery(id, &lease_until).await? {
            Some(row) => self.process(row).await.map(Some),
            None => Ok(None),
        }
    }

    fn lease(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std(self.policy.lease).unwrap_or(chrono::TimeDelta::seconds(60))
    }

    async fn process(&self, row: DeliveryRow) -> Result<Outcome, StoreError> {
        // One clone of the current version: the whole call, and the hash
        // recorded below, belong to it even if a reload swaps meanwhile.
        let Some(pm) = self.mappers.get(&row.provider) else {
            // No version serves (its file was removed, or no release passed
            // its canary yet): the delivery waits, and is claimed again
            // once a version serves.
            let outcome = Outcome {
                status: "pending",
                event_type: None,
                output: None,
                error: Some(format!(
                    "no mapper version is serving provider `{}`; the delivery waits for one",
                    row.provider
                )),
            };
            let now = stamp(chrono::Utc::now());
            return self.finish(&row, None, outcome, Some(now.as_str())).await;
        };
        let hash = pm.mapper.content_hash().to_owned();
        let delivery = Delivery {
            provider: row.provider.clone(),
            method: row.method.clone(),
            path: row.path.clone(),
            headers: row.headers.clone(),
            body: row.body.clone(),
            received_at: row.received_at.clone(),
        };
        let mapper = pm.mapper.clone();
        let config = pm.config.clone();
        // Mapping is CPU-bound and synchronous: off the async threads.
        let call = tokio::task::spawn_blocking(move || {
            let outcome = mapper.map_inbound(&delivery, &config, Box::new(NoProviderApi));
            (outcome.result, outcome.report.elapsed)
        })
        .await
        .map(|(result, elapsed)| {
            self.metrics.mapper_call(&row.provider, elapsed);
            result
        });
        let mapped = match call {
            Ok(Ok(Ok(mapped))) => mapped,
            Ok(Ok(Err(map_error))) => {
                let outcome = failed(None, format!("mapper refused the delivery: {map_error}"));
                return self.finish(&row, Some(&hash), outcome, None).await;
            }
            Ok(Err(mapper_error)) => {
                tracing::warn!(provider = %row.provider, delivery = %row.id, error = %mapper_error, "mapper failed");
                let outcome = failed(None, format!("mapper failed: {mapper_error}"));
                return self.finish(&row, Some(&hash), outcome, None).await;
            }
            Err(join) => {
                let outcome = failed(None, format!("mapper task failed: {join}"));
                return self.finish(&row, Some(&hash), outcome, None).await;
            }
        };
        let mut output = mapped.to_json();
        if mapped.actions.is_empty() {
            let outcome = Outcome {
                status: "ignored",
                event_type: Some(mapped.event_type.clone()),
                output: Some(output),
                error: None,
            };
            return self.finish(&row, Some(&hash), outcome, None).await;
        }
        let applied = self
            .applier
            .apply(
                &self.store,
                ApplyInput {
                    delivery_id: Some(&row.id),
                    origin: Some(&row.provider),
                    mapper_hash: Some(&hash),
                    actions: &mapped.actions,
                },
            )
            .await;
        match applied {
            Ok(out) => {
                output["applied"] = serde_json::to_value(&out.actions).unwrap_or(Value::Null);
                let outcome = Outcome {
                    status: "applied",
                    event_type: Some(mapped.event_type.clone()),
                    output: Some(output),
                    error: None,
                };
                self.finish(&row, Some(&hash), outcome, None).await
            }
            Err(e) if e.is_retryable() => {
                self.retry(&row, &hash, &mapped, output, e.to_string())
                    .await
            }
            Err(e) => {
                let outcome = failed(Some(&mapped), e.to_string());
                self.finish(
                    &row,
                    Some(&hash),
                    Outcome {
                        output: Some(output),
                        ..outcome
                    },
                    None,
                )
                .await
            }
        }
    }

    async fn retry(
        &self,
        row: &DeliveryRow,
        hash: &str,
        mapped: &Mapped,
        output: Value,
        error: String,
    ) -> Result<Outcome, StoreError> {
        let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
        if attempts >= self.policy.max_attempts {
            let outcome = Outcome {
                status: "dead",
                event_type: Some(mapped.event_type.clone()),
                output: Some(output),
                error: Some(format!("gave up after {attempts} attempts: {error}")),
            };
            tracing::warn!(provider = %row.provider, delivery = %row.id, error = %error, "delivery dead-lettered");
            return self.finish(row, Some(hash), outcome, None).await;
        }
        let delay = chrono::TimeDelta::from_std(self.policy.delay(attempts)).unwrap_or_default();
        let at = stamp(chrono::Utc::now() + delay);
        let outcome = Outcome {
            status: "pending",
            event_type: Some(mapped.event_type.clone()),
            output: Some(output),
            error: Some(error),
        };
        self.finish(row, Some(hash), outcome, Some(&at)).await
    }

    async fn finish(
        &self,
        row: &DeliveryRow,
        hash: Option<&str>,
        outcome: Outcome,
        next_attempt_at: Option<&str>,
    ) -> Result<Outcome, StoreError> {
        let output = outcome.output.as_ref().map(Value::to_string);
        let counted = match outcome.status {
            "pending" => "retried",
            other => other,
        };
        self.metrics.delivery(&row.provider, counted);
        self.store
            .finish_delivery(
                &row.id,
                &Finish {
                    status: outcome.status,
                    last_error: outcome.error.as_deref(),
                    mapper_hash: hash,
                    event_type: outcome.event_type.as_deref(),
                    output: output.as_deref(),
                    next_attempt_at,
                },
            )
            .await?;
        Ok(outcome)
    }
}

fn failed(mapped: Option<&Mapped>, error: String) -> Outcome {
    Outcome {
        status: "failed",
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
    status: &str,
    event_type: Option<&str>,
    output: Option<&Value>,
    error: Option<&str>,
) -> Value {
    let mut v = json!({"delivery_id": delivery_id, "status": status});
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let p = RetryPolicy::default();
        for attempt in 1..=12 {
            let full = (p.base * (1 << (attempt - 1))).min(p.max_delay);
            for _ in 0..50 {
                let d = p.delay(attempt);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d:?} not in [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
        assert!(p.delay(40) <= p.max_delay);
    }
}
