//! Group commit for the inbox: one writer task stores every delivery that
//! arrived while the previous batch was committing, in one transaction.
//!
//! A commit per request caps SQLite (WAL, `synchronous=FULL`) at about one
//! fsync per delivery; sharing commits lets throughput grow with load while
//! an idle host still commits each delivery at once (no timer: a batch is
//! whatever queued during the last commit). Each request is answered only
//! after its row is committed.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{NewDelivery, Store, StoreError, Stored};
use crate::metrics::Metrics;

/// Deliveries taken into one transaction at most.
const MAX_BATCH: usize = 512;
/// Requests waiting for the writer before senders wait too (backpressure).
const QUEUE: usize = 4096;

/// A verified delivery to store, owned so it can wait in the queue; its
/// `Debug` is [`NewDelivery`]'s (no body, no header values).
#[derive(Clone)]
pub struct InboxEntry {
    pub id: String,
    pub provider: String,
    pub dedupe_key: String,
    /// See [`NewDelivery::body_key`].
    pub body_key: Option<String>,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub received_at: String,
}

impl InboxEntry {
    fn as_new(&self) -> NewDelivery<'_> {
        NewDelivery {
            id: &self.id,
            provider: &self.provider,
            dedupe_key: &self.dedupe_key,
            body_key: self.body_key.as_deref(),
            method: &self.method,
            path: &self.path,
            headers: &self.headers,
            body: &self.body,
            received_at: &self.received_at,
        }
    }
}

impl std::fmt::Debug for InboxEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_new().fmt(f)
    }
}

struct Job {
    entry: InboxEntry,
    reply: oneshot::Sender<Result<Stored, StoreError>>,
}

/// The handle requests store deliveries through; cheap to clone. The
/// writer task ends when every handle is dropped, after its last commit.
#[derive(Clone)]
pub struct InboxWriter {
    jobs: mpsc::Sender<Job>,
}

impl InboxWriter {
    /// Starts the writer task on `store`.
    pub fn spawn(store: Store, metrics: Arc<Metrics>) -> (InboxWriter, JoinHandle<()>) {
        let (jobs, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_loop(store, rx, metrics));
        (InboxWriter { jobs }, task)
    }

    /// Stores `entry`; returns once its row is committed (or found to be a
    /// duplicate).
    pub async fn store(&self, entry: InboxEntry) -> Result<Stored, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { entry, reply })
            .await
            .map_err(|_| StoreError::Query(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| StoreError::Query(sqlx::Error::PoolClosed))?
    }
}

async fn write_loop(store: Store, mut rx: mpsc::Receiver<Job>, metrics: Arc<Metrics>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let batch: Vec<NewDelivery<'_>> = jobs.iter().map(|j| j.entry.as_new()).collect();
        match store.insert_deliveries(&batch).await {
            Ok(stored) => {
                drop(batch);
                metrics.inbox_commit(jobs.len());
                for (job, s) in jobs.drain(..).zip(stored) {
                    // The request may have gone (client hung up); its row
                    // is stored all the same and will be processed.
                    let _ = job.reply.send(Ok(s));
                }
            }
            Err(e) => {
                drop(batch);
                // One at a time, so each request gets its own verdict and
                // one bad row does not refuse its neighbours.
                tracing::warn!(error = %e, rows = jobs.len(), "inbox batch failed; storing one by one");
                for job in jobs.drain(..) {
                    let result = store.insert_delivery(&job.entry.as_new()).await;
                    if result.is_ok() {
                        metrics.inbox_commit(1);
                    }
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}
