//! Building and running the server: `App::build(config)` opens the store and
//! binds the listener; `app.run(shutdown)` serves until the token is
//! cancelled and every task has drained.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{self, ApiState, Tokens};
use crate::config::{Config, ServerConfig};
use crate::ingress::route::{self, IngressState, Provider};
use crate::mapper::{CacheError, MapperError};
use crate::metrics::Metrics;
use crate::outbound::{OutboundPolicy, OutboundWorker};
use crate::outbound::{ProviderApiError, ProviderApis};
use crate::people::Directory;
use crate::queue::RetryPolicy;
use crate::reload::watch::Watch;
use crate::reload::{Availability, ReloadError, Reloader};
use crate::retention::Retention;
use crate::schedule::lead::Pace;
use crate::store::{DbLimits, InboxWriter, Store, StoreError};
use crate::tickets::Applier;
use crate::worker::Worker;

#[derive(Debug, Error)]
pub enum AppError {
    #[error("cannot open the ticket store")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server failed")]
    Serve(#[source] std::io::Error),
    #[error("provider `{provider}`: cannot load mapper {path}")]
    Mapper {
        provider: String,
        path: String,
        #[source]
        source: MapperError,
    },
    #[error(transparent)]
    ProviderApi(#[from] ProviderApiError),
    #[error("provider `{provider}`: mapper {path} refused: {reason}")]
    MapperRefused {
        provider: String,
        path: String,
        reason: String,
    },
    #[error("mapper reload")]
    Reload(#[source] ReloadError),
    #[error("sweeper")]
    Sweeper(#[from] crate::sweeper::SweepError),
    #[error("schedules")]
    Ticks(#[from] crate::schedule::TickError),
    #[error("artifact cache off")]
    CacheOff(#[source] Arc<CacheError>),
}

/// Loads every configured provider's mapper through the reload pipeline
/// (the artifact cache, the world check, the canary) without watching:
/// for `host check`, `host mappers` and the command-line replay. A release
/// that is refused leaves its provider without a version; [`check_mappers`]
/// turns that into an error.
pub fn load_mappers(config: &Config) -> Result<Arc<Reloader>, AppError> {
    start_mappers(config, Arc::default(), false).map(|(r, _)| r)
}

/// Every provider with a mapper source has a version serving, or the
/// error naming the provider, the file and why.
pub fn check_mappers(reloader: &Reloader) -> Result<usize, AppError> {
    let mut serving = 0;
    for s in reloader.registry().states() {
        let path = s.file.display().to_string();
        match s.availability {
            Availability::Serving => serving += 1,
            Availability::Absent { file } => {
                return Err(AppError::Mapper {
                    provider: s.provider,
                    path,
                    source: MapperError::Read {
                        path: file,
                        source: std::io::Error::from(std::io::ErrorKind::NotFound),
                    },
                });
            }
            Availability::Waiting => {
                return Err(AppError::MapperRefused {
                    provider: s.provider,
                    path,
                    reason: s.refused.unwrap_or_else(|| "refused".into()),
                });
            }
        }
    }
    Ok(serving)
}

/// The artifact cache is on, or the error saying why not (its key file is
/// exposed, or cannot be made): for `host check`, as `serve` only logs it
/// and compiles every mapper.
pub fn check_cache(reloader: &Reloader) -> Result<(), AppError> {
    reloader
        .cache_off()
        .map_or(Ok(()), |e| Err(AppError::CacheOff(e)))
}

/// The reloader for `config`, every mapper loaded once; with `watch`, the
/// watch is set up before that first load, so no change is missed.
fn start_mappers(
    config: &Config,
    metrics: Arc<Metrics>,
    watch: bool,
) -> Result<(Arc<Reloader>, Option<Watch>), AppError> {
    let reloader = Arc::new(Reloader::new(config, metrics).map_err(AppError::Reload)?);
    let watch = if watch && config.mappers.watch && !reloader.sources().is_empty() {
        Some(Watch::new(&reloader).map_err(AppError::Reload)?)
    } else {
        None
    };
    reloader.load_all();
    Ok((reloader, watch))
}

/// The delivery worker for `config`'s mappers; `None` when no provider
/// has a mapper source.
pub async fn worker(config: &Config, store: Store) -> Result<Option<Worker>, AppError> {
    let applier = config.applier();
    let reloader = load_mappers(config)?;
    let people = Directory::seed(&store, &config.people).await?;
    build_worker(
        config,
        store,
        Arc::new(applier),
        Arc::default(),
        &reloader,
        people,
    )
}

fn build_worker(
    config: &Config,
    store: Store,
    applier: Arc<Applier>,
    metrics: Arc<Metrics>,
    reloader: &Reloader,
    people: Directory,
) -> Result<Option<Worker>, AppError> {
    if reloader.sources().is_empty() {
        return Ok(None);
    }
    let policy = RetryPolicy {
        max_attempts: config.delivery.max_attempts,
        base: Duration::from_millis(config.delivery.retry_base_ms),
        max_delay: Duration::from_millis(config.delivery.retry_max_ms),
        lease: Duration::from_millis(config.delivery.lease_ms),
    };
    // A provider with `api.read_tickets` reads the store as the ticket
    // API's `GET /v1/tickets` would answer.
    let apis = ProviderApis::from_config(config)?
        .with_tickets(Arc::new(crate::api::MapperTickets::new(store.clone())));
    let worker = Worker::new(
        store.clone(),
        applier.clone(),
        reloader.registry().clone(),
        policy,
        metrics.clone(),
        apis.clone(),
    )
    .with_people(people.clone())
    .with_inline(
        config
            .delivery
            .inline
            .unwrap_or(store.backend() == crate::store::Backend::Sqlite),
    );
    let outbound = outbound_worker(config, store, applier, metrics, reloader, apis)
        .map(|o| o.with_people(Arc::new(people)));
    Ok(Some(match outbound {
        Some(o) => worker.with_outbound(o),
        None => worker,
    }))
}

/// The outbound worker, when a provider is configured for outbound.
fn outbound_worker(
    config: &Config,
    store: Store,
    applier: Arc<Applier>,
    metrics: Arc<Metrics>,
    reloader: &Reloader,
    apis: ProviderApis,
) -> Option<OutboundWorker> {
    let policies: BTreeMap<String, OutboundPolicy> = config
        .providers
        .iter()
        .filter_map(|(name, p)| {
            let o = p.outbound.as_ref()?;
            Some((
                name.clone(),
                OutboundPolicy {
                    retry: RetryPolicy {
                        max_attempts: o.max_attempts,
                        base: Duration::from_millis(o.retry_base_ms),
                        max_delay: Duration::from_millis(o.retry_max_ms),
                        lease: Duration::from_millis(config.delivery.lease_ms),
                    },
                    idempotency_header: o.idempotency_header.clone(),
                    ok_pointer: o.ok_pointer.clone(),
                },
            ))
        })
        .collect();
    if policies.is_empty() {
        return None;
    }
    Some(OutboundWorker::new(
        store,
        applier,
        reloader.registry().clone(),
        apis,
        policies,
        Duration::from_millis(config.delivery.lease_ms),
        metrics,
    ))
}

/// Every configured webhook sender.
fn providers(config: &Config) -> BTreeMap<String, Provider> {
    config
        .providers
        .iter()
        .filter_map(|(name, c)| Provider::from_config(name, c).map(|p| (name.clone(), p)))
        .collect()
}

/// Opens and migrates the store, then redacts verification secrets from
/// rows stored before ingress did (see `ingress::redact`): whatever reads
/// deliveries next — the API, the CLI, a mapper — sees none.
pub async fn open_store(config: &Config) -> Result<Store, AppError> {
    open_store_for(config, &providers(config)).await
}

/// [`open_store`] with the webhook senders already built from `config`.
async fn open_store_for(
    config: &Config,
    providers: &BTreeMap<String, Provider>,
) -> Result<Store, AppError> {
    let limits = DbLimits {
        acquire_timeout: Duration::from_millis(config.database_acquire_timeout_ms),
        statement_timeout: Duration::from_millis(config.database_statement_timeout_ms),
    };
    let store = Store::open_with(&config.database, limits).await?;
    crate::ingress::redact::redact_stored(&store, providers).await?;
    Ok(store)
}

/// The API's routes, `/metrics` unless it has a listener of its own, and
/// the webhook route, inside the server bounds.
fn routes(
    state: ApiState,
    ingress: IngressState,
    metrics_inline: bool,
    server: &ServerConfig,
) -> axum::Router {
    let mut router = api::router(state.clone());
    if metrics_inline {
        router = router.merge(api::metrics_router(state));
    }
    api::bounded(router.merge(route::router(ingress)), server)
}

pub struct App {
    listener: TcpListener,
    state: ApiState,
    providers: Arc<BTreeMap<String, Provider>>,
    worker: Option<Worker>,
    reloader: Arc<Reloader>,
    watch: Option<Watch>,
    max_waiting: usize,
    server: ServerConfig,
    retention: Option<Retention>,
    /// The leader's periodic work: ticks and the sweeper.
    periodic: crate::schedule::lead::Periodic,
    /// `/metrics` on its own listener, when `metrics_listen` is set.
    metrics_listener: Option<TcpListener>,
}

impl App {
    pub async fn build(config: &Config) -> Result<App, AppError> {
        let providers = providers(config);
        let store = open_store_for(config, &providers).await?;
        let applier = config.applier();
        let tokens = Tokens::new(config.api.tokens.iter().map(|t| {
            (
                t.name.clone(),
                SecretString::from(secrecy::ExposeSecret::expose_secret(&t.token).to_owned()),
                t.scope,
            )
        }));
        let listener =
            TcpListener::bind(&config.listen)
                .await
                .map_err(|source| AppError::Bind {
                    addr: config.listen.clone(),
                    source,
                })?;
        let metrics_listener = match &config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| AppError::Bind {
                        addr: addr.clone(),
                        source,
                    })?,
            ),
            None => None,
        };
        let applier = Arc::new(applier);
        let metrics = Arc::new(Metrics::default());
        let (reloader, watch) = start_mappers(config, metrics.clone(), true)?;
        let people = Directory::seed(&store, &config.people).await?;
        let worker = build_worker(
            config,
            store.clone(),
            applier.clone(),
            metrics.clone(),
            &reloader,
            people.clone(),
        )?;
        let mappers = (!reloader.sources().is_empty()).then(|| reloader.registry().clone());
        let sweeper = config
            .sweeper()?
            .map(|s| Arc::new(s.with_metrics(metrics.clone())));
        let ticker = config.ticker()?.map(|t| {
            Arc::new(match &worker {
                Some(w) => t.with_worker(w.clone()),
                None => t,
            })
        });
        Ok(App {
            periodic: crate::schedule::lead::Periodic {
                sweeper: sweeper.clone(),
                ticker,
                metrics: Some(metrics.clone()),
            },
            listener,
            providers: Arc::new(providers),
            worker: worker.clone(),
            reloader,
            watch,
            max_waiting: config.delivery.max_waiting,
            server: config.server.clone(),
            retention: Retention::from_config(&config.retention, store.clone()),
            metrics_listener,
            state: ApiState {
                metrics,
                store,
                applier,
                tokens: Arc::new(tokens),
                worker,
                mappers,
                people,
                providers: Arc::new(config.providers.keys().cloned().collect()),
                sweeper,
            },
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Where `/metrics` is served when `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// The delivery worker, when a provider has a mapper: for tests that
    /// serve [`App::router`] and drive the worker themselves.
    pub fn worker(&self) -> Option<&Worker> {
        self.worker.as_ref()
    }

    /// The mapper versions serving, for tests and benchmarks.
    pub fn mappers(&self) -> &crate::reload::MapperRegistry {
        self.reloader.registry()
    }

    /// Every route the listener serves, composed as `run` composes them
    /// (with `/metrics`), for tests that inspect the routes. Its webhook
    /// route stores through an inbox writer of its own, which ends when
    /// the router is dropped.
    pub fn router(&self) -> axum::Router {
        let (inbox, _) = InboxWriter::spawn(
            self.state.store.clone(),
            self.state.metrics.clone(),
            self.worker.as_ref().map(Worker::inline_hook),
        );
        let ingress = IngressState {
            metrics: self.state.metrics.clone(),
            store: self.state.store.clone(),
            inbox,
            providers: self.providers.clone(),
            worker: self.worker.clone(),
            mappers: self.state.mappers.clone(),
            waiting: Arc::new(tokio::sync::Semaphore::new(self.max_waiting)),
        };
        routes(self.state.clone(), ingress, true, &self.server)
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests
    /// finish and closes the store.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let store = self.state.store.clone();
        let (inbox, inbox_task) = InboxWriter::spawn(
            store.clone(),
            self.state.metrics.clone(),
            self.worker.as_ref().map(Worker::inline_hook),
        );
        let ingress = IngressState {
            metrics: self.state.metrics.clone(),
            store: store.clone(),
            inbox,
            providers: self.providers,
            worker: self.worker.clone(),
            mappers: self.state.mappers.clone(),
            waiting: Arc::new(tokio::sync::Semaphore::new(self.max_waiting)),
        };
        // Every background task runs on one tracker, so shutdown waits for
        // all of them and a task that failed or panicked is logged, not
        // dropped with its handle.
        let tracker = TaskTracker::new();
        let mut tasks: Vec<(&'static str, JoinHandle<Result<(), String>>)> = Vec::new();
        if let Some(o) = self.worker.as_ref().and_then(Worker::outbound) {
            let stop = shutdown.clone();
            tasks.push((
                "outbound worker",
                tracker.spawn(async move {
                    o.run(stop).await;
                    Ok(())
                }),
            ));
        }
        if let Some(w) = self.worker {
            let stop = shutdown.clone();
            tasks.push((
                "delivery worker",
                tracker.spawn(async move {
                    w.run(stop).await;
                    Ok(())
                }),
            ));
        }
        if let Some(w) = self.watch {
            let (reloader, stop) = (self.reloader.clone(), shutdown.clone());
            tasks.push((
                "mapper watcher",
                tracker.spawn(async move {
                    w.run(reloader, stop).await;
                    Ok(())
                }),
            ));
        }
        if !self.periodic.is_empty() {
            let (stop, store, periodic) = (shutdown.clone(), store.clone(), self.periodic);
            tasks.push((
                "periodic work",
                tracker.spawn(async move {
                    periodic.run(store, Pace::default(), stop).await;
                    Ok(())
                }),
            ));
        }
        if store.backend() == crate::store::Backend::Sqlite {
            let (stop, store) = (shutdown.clone(), store.clone());
            tasks.push((
                "checkpointer",
                tracker.spawn(async move {
                    checkpoint(store, stop).await;
                    Ok(())
                }),
            ));
        }
        if let Some(r) = self.retention {
            let stop = shutdown.clone();
            tasks.push((
                "retention",
                tracker.spawn(async move {
                    r.run(stop).await;
                    Ok(())
                }),
            ));
        }
        let metrics_inline = match self.metrics_listener {
            Some(listener) => {
                let stop = shutdown.clone();
                let metrics_router = api::metrics_router(self.state.clone());
                tasks.push((
                    "metrics listener",
                    tracker.spawn(async move {
                        axum::serve(listener, metrics_router)
                            .with_graceful_shutdown(async move { stop.cancelled().await })
                            .await
                            .map_err(|e| e.to_string())
                    }),
                ));
                false
            }
            None => true,
        };
        tracker.close();
        let router = routes(self.state, ingress, metrics_inline, &self.server);
        let serve_shutdown = shutdown.clone();
        let result = axum::serve(self.listener, router)
            .with_graceful_shutdown(async move { serve_shutdown.cancelled().await })
            .await
            .map_err(AppError::Serve);
        // The server stopped (or failed): stop every task, and wait for them.
        shutdown.cancel();
        for (name, task) in tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(task = name, error = %e, "task failed"),
                Err(e) => {
                    tracing::error!(task = name, error = %e, "task panicked or was cancelled")
                }
            }
        }
        tracker.wait().await;
        // Every request handler is gone with the server, and with them the
        // writer's handles: it ends after committing what it holds.
        inbox_task.finished().await;
        store.close().await;
        result
    }
}

/// Checkpoints SQLite's write-ahead log beside the writer, which never
/// does (see `store::Store::open_with`), until `shutdown`.
async fn checkpoint(store: Store, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(crate::store::CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Err(e) = store.checkpoint().await {
            tracing::warn!(error = %e, "cannot checkpoint the write-ahead log");
        }
    }
}
