//! What the inbox worker and the outbound worker share as leased queues
//! (the SQL half is `store::Queue`): the retry schedule, and holding a
//! claim's lease while its work runs.

use std::future::Future;
use std::time::Duration;

use crate::store::{Queue, Store, StoreError};

/// Tries at recording a batch's outcomes before leaving them to the lease.
pub const FINISH_TRIES: u32 = 3;

/// When to try again.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts before a row is dead-lettered.
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
    /// Exponential backoff with jitter: a delay in [d/2, d] where
    /// d = base * 2^(attempt-1), capped.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let d = exp.min(self.max_delay);
        let jitter = rand_fraction();
        d / 2 + d.mul_f64(jitter / 2.0)
    }

    /// The delay before attempt `attempt + 1`, at least what the other
    /// side asked for (`Retry-After`), never more than an hour for it.
    pub fn delay_at_least(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let own = self.delay(attempt);
        match asked {
            Some(a) => own.max(a.min(Duration::from_secs(3600))),
            None => own,
        }
    }
}

fn rand_fraction() -> f64 {
    // Jitter needs no cryptographic randomness: a fresh uuid's bits will do.
    let bits = uuid::Uuid::new_v4().as_u128() as u64;
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs `work` while renewing the lease of the claims `tokens` hold every
/// third of `lease`, so slow work (a slow provider, a large backlog on one
/// ticket) is not taken over by another worker mid-way; renewal stops as
/// soon as the work is done. A renewal that fails is logged: the lease may
/// then run out, and the fence keeps the other worker's outcome.
///
/// The renewal runs beside the work, never instead of it. The work's own
/// transaction may hold what a renewal needs — on PostgreSQL the claimed
/// rows' locks (a finish that has written them but not committed), on
/// SQLite the one write connection — and a renewal that stopped the work
/// while it waited would wait for the work: the lane stalled until the
/// statement timeout (15 s) or the pool's acquire timeout (5 s) broke the
/// knot, again at the next renewal.
pub async fn hold_lease<T>(
    store: &Store,
    queue: Queue,
    tokens: &[String],
    lease: Duration,
    work: impl Future<Output = T>,
) -> T {
    let renewal = renew_until_dropped(store, queue, tokens, lease);
    tokio::pin!(work, renewal);
    tokio::select! {
        out = &mut work => out,
        never = &mut renewal => match never {},
    }
}

/// Renews the leases of `tokens` every third of `lease`, until dropped.
async fn renew_until_dropped(
    store: &Store,
    queue: Queue,
    tokens: &[String],
    lease: Duration,
) -> std::convert::Infallible {
    let mut tokens: Vec<&String> = tokens.iter().collect();
    tokens.sort();
    tokens.dedup();
    let every = (lease / 3).max(Duration::from_millis(10));
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    // A renewal that outlasts its period is not followed by a burst.
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        renew.tick().await;
        for token in &tokens {
            if let Err(e) = store.renew_lease(queue, token, lease).await {
                tracing::warn!(error = %e, ?queue, "cannot renew a lease");
            }
        }
    }
}

/// Runs `op`, and again after a transient store fault (a dropped
/// connection is usually replaced at once), at most [`FINISH_TRIES`]
/// times in all, pausing `pause(n)` after the n-th failure. If it still
/// fails, the claimed rows stay `processing` until their lease runs out
/// and are claimed again.
pub async fn retry_transient<T, Fut>(
    what: &str,
    pause: impl Fn(u32) -> Duration,
    mut op: impl FnMut() -> Fut,
) -> Result<T, StoreError>
where
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut tries = 1;
    loop {
        match op().await {
            Err(e) if e.is_transient() && tries < FINISH_TRIES => {
                tracing::warn!(error = %e, tries, "{what} failed; trying again");
                tokio::time::sleep(pause(tries)).await;
                tries += 1;
            }
            done => return done,
        }
    }
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

    #[test]
    fn retry_after_is_honoured_but_bounded() {
        let p = RetryPolicy {
            base: Duration::from_millis(10),
            ..RetryPolicy::default()
        };
        assert_eq!(
            p.delay_at_least(1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert!(p.delay_at_least(1, None) <= Duration::from_millis(10));
        assert_eq!(
            p.delay_at_least(1, Some(Duration::from_secs(86_400))),
            Duration::from_secs(3600)
        );
    }
}
