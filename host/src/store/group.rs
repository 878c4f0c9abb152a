//! Group commit for the inbox: one writer stores every delivery that
//! arrived while the previous batch was committing, in one transaction.
//!
//! A commit per request caps SQLite (WAL, `synchronous=FULL`) at about one
//! fsync per delivery; sharing commits lets throughput grow with load while
//! an idle host still commits each delivery at once (no timer: a batch is
//! whatever queued during the last commit). Each request is answered only
//! after its row is committed.

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::{Encoded, Encoding, NewDelivery, Store, StoreError, Stored, Tx};
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
    /// `body` as the store keeps it ([`super::encode_owned`]), made by the
    /// request rather than the writer.
    pub stored_body: (Bytes, Encoding),
    pub received_at: String,
    /// What the inline path made of it before it was stored (opaque to
    /// the store: only the [`Inline`] hook reads it).
    pub premapped: Option<Arc<dyn Any + Send + Sync>>,
}

/// Work committed with a batch of stored deliveries: the worker's inline
/// path, which settles some of them in the inbox's own transaction.
#[async_trait::async_trait]
pub trait Inline: Send + Sync {
    /// Inside the batch's transaction, after its rows are stored:
    /// `batch` pairs each entry with how it was stored. An error rolls
    /// the batch back, and the writer stores it again without the hook.
    async fn within(
        &self,
        tx: &mut Tx,
        batch: &[(&InboxEntry, &Stored)],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
    /// The batch [`Inline::within`] saw is committed.
    fn committed(&self);
    /// A batch of these providers' deliveries is about to be stored
    /// without the hook, every delivery `pending`.
    fn unsettled(&self, providers: &[&str]);
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
            encoded: Some(Encoded {
                bytes: &self.stored_body.0,
                encoding: self.stored_body.1,
            }),
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
/// writer ends when every handle is dropped, after its last commit.
#[derive(Clone)]
pub struct InboxWriter {
    jobs: mpsc::Sender<Job>,
}

/// The writer's queue before the writer starts: what
/// [`InboxWriter::channel`] hands back beside the handle.
pub struct Unstarted {
    rx: mpsc::Receiver<Job>,
}

/// A running writer; [`WriterTask::finished`] waits for its last commit.
pub struct WriterTask {
    done: oneshot::Receiver<()>,
}

impl WriterTask {
    /// Waits until every handle is dropped and the last batch committed.
    pub async fn finished(self) {
        // An error only says the writer ended without saying so: a panic,
        // which its thread or task reported already.
        let _ = self.done.await;
    }
}

impl InboxWriter {
    /// Starts the writer on `store`: [`InboxWriter::channel`] then
    /// [`Unstarted::start`].
    pub fn spawn(
        store: Store,
        metrics: Arc<Metrics>,
        inline: Option<Arc<dyn Inline>>,
    ) -> (InboxWriter, WriterTask) {
        let (writer, unstarted) = Self::channel();
        (writer, unstarted.start(store, metrics, inline))
    }

    /// A handle whose deliveries queue until [`Unstarted::start`].
    pub fn channel() -> (InboxWriter, Unstarted) {
        let (jobs, rx) = mpsc::channel(QUEUE);
        (InboxWriter { jobs }, Unstarted { rx })
    }

    /// Deliveries waiting for the writer (not counting the batch it is
    /// committing).
    pub fn queued(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
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

impl Unstarted {
    /// Starts committing what queued and what comes. On SQLite the writer
    /// runs on a thread of its own (`sluice-inbox`, its own single-threaded
    /// runtime): each commit is several hops to the connection's thread,
    /// and on the shared runtime every hop waited behind requests being
    /// parsed and verified, so the acknowledgement's latency grew with the
    /// load it was meant to absorb (open loop at 4,500/s on one machine:
    /// p99 55 ms on the shared runtime, 22 ms on its own thread; on a
    /// noisier one, within its noise). PostgreSQL's connections
    /// belong to the runtime that opened them; there it is a task.
    pub fn start(
        self,
        store: Store,
        metrics: Arc<Metrics>,
        inline: Option<Arc<dyn Inline>>,
    ) -> WriterTask {
        let (done_tx, done) = oneshot::channel();
        if store.backend() == super::Backend::Sqlite {
            let thread = std::thread::Builder::new()
                .name("sluice-inbox".into())
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt.block_on(write_loop(store, self.rx, metrics, inline)),
                        // Dropping the queue fails every request with the
                        // store closed: nothing is acknowledged unstored.
                        Err(e) => {
                            tracing::error!(error = %e, "cannot start the inbox writer's runtime")
                        }
                    }
                    let _ = done_tx.send(());
                });
            if let Err(e) = thread {
                tracing::error!(error = %e, "cannot start the inbox writer's thread");
            }
        } else {
            tokio::spawn(async move {
                write_loop(store, self.rx, metrics, inline).await;
                let _ = done_tx.send(());
            });
        }
        WriterTask { done }
    }
}

async fn write_loop(
    store: Store,
    mut rx: mpsc::Receiver<Job>,
    metrics: Arc<Metrics>,
    inline: Option<Arc<dyn Inline>>,
) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        match commit(&store, &jobs, inline.as_deref()).await {
            Ok(stored) => {
                metrics.inbox_commit(jobs.len());
                for (job, s) in jobs.drain(..).zip(stored) {
                    // The request may have gone (client hung up); its row
                    // is stored all the same and will be processed.
                    let _ = job.reply.send(Ok(s));
                }
            }
            Err(e) => {
                // One at a time, so each request gets its own verdict and
                // one bad row does not refuse its neighbours.
                tracing::warn!(error = %e, rows = jobs.len(), "inbox batch failed; storing one by one");
                if let Some(inline) = &inline {
                    inline.unsettled(&providers(&jobs));
                }
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

/// Stores one batch in one transaction, with the inline hook's work.
async fn commit(
    store: &Store,
    jobs: &[Job],
    inline: Option<&dyn Inline>,
) -> Result<Vec<Stored>, StoreError> {
    let batch: Vec<NewDelivery<'_>> = jobs.iter().map(|j| j.entry.as_new()).collect();
    let mut tx = store.begin().await?;
    let stored = tx.insert_deliveries(&batch).await?;
    let Some(inline) = inline else {
        tx.commit().await?;
        return Ok(stored);
    };
    let pairs: Vec<(&InboxEntry, &Stored)> = jobs.iter().map(|j| &j.entry).zip(&stored).collect();
    match inline.within(&mut tx, &pairs).await {
        Ok(()) => {
            tx.commit().await?;
            inline.committed();
            Ok(stored)
        }
        Err(e) => {
            // Rolled back: stored again as it came, for the worker (an
            // apply that failed is the worker's to retry or record).
            drop(tx);
            tracing::debug!(error = %e, rows = jobs.len(), "inline processing failed; the batch waits for the worker");
            inline.unsettled(&providers(jobs));
            store.insert_deliveries(&batch).await
        }
    }
}

fn providers(jobs: &[Job]) -> Vec<&str> {
    let mut p: Vec<&str> = jobs.iter().map(|j| j.entry.provider.as_str()).collect();
    p.sort_unstable();
    p.dedup();
    p
}
