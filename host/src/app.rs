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
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState, Tokens};
use crate::config::Config;
use crate::ingress::route::{self, IngressState, Provider};
use crate::mapper::{EngineSettings, MapperEngine, MapperError};
use crate::metrics::Metrics;
use crate::provider_api::{ProviderApiError, ProviderApis};
use crate::store::{InboxWriter, Store, StoreError};
use crate::tickets::Applier;
use crate::worker::{ProviderMapper, RetryPolicy, Worker};

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
    #[error("cannot start the wasm engine")]
    Engine(#[source] MapperError),
    #[error(transparent)]
    ProviderApi(#[from] ProviderApiError),
}

/// Loads every configured provider's mapper; errors name the provider and
/// the file.
pub fn load_mappers(config: &Config) -> Result<BTreeMap<String, ProviderMapper>, AppError> {
    let mut out = BTreeMap::new();
    if config.providers.values().all(|p| p.mapper.is_none()) {
        return Ok(out);
    }
    let engine = MapperEngine::new(EngineSettings {
        branches: config.branches(),
        ..EngineSettings::default()
    })
    .map_err(AppError::Engine)?;
    for (name, p) in &config.providers {
        let Some(path) = &p.mapper else { continue };
        let mapper = engine.load_file(path).map_err(|source| AppError::Mapper {
            provider: name.clone(),
            path: path.display().to_string(),
            source,
        })?;
        tracing::info!(provider = %name, mapper = %&mapper.content_hash()[..12], "mapper loaded");
        out.insert(
            name.clone(),
            ProviderMapper {
                mapper,
                config: p.mapper_config.to_string(),
            },
        );
    }
    Ok(out)
}

/// The delivery worker for `config`'s mappers; `None` when no provider
/// has one.
pub fn worker(config: &Config, store: Store) -> Result<Option<Worker>, AppError> {
    let applier = Applier {
        workflow: config.workflow(),
        branches: config.branches(),
        outbound: Vec::new(),
    };
    build_worker(config, store, Arc::new(applier), Arc::default())
}

fn build_worker(
    config: &Config,
    store: Store,
    applier: Arc<Applier>,
    metrics: Arc<Metrics>,
) -> Result<Option<Worker>, AppError> {
    let mappers = load_mappers(config)?;
    if mappers.is_empty() {
        return Ok(None);
    }
    let policy = RetryPolicy {
        max_attempts: config.delivery.max_attempts,
        base: Duration::from_millis(config.delivery.retry_base_ms),
        max_delay: Duration::from_millis(config.delivery.retry_max_ms),
        lease: Duration::from_millis(config.delivery.lease_ms),
    };
    let apis = ProviderApis::from_config(config)?;
    Ok(Some(Worker::new(
        store, applier, mappers, policy, metrics, apis,
    )))
}

pub struct App {
    listener: TcpListener,
    state: ApiState,
    providers: Arc<BTreeMap<String, Provider>>,
    worker: Option<Worker>,
}

impl App {
    pub async fn build(config: &Config) -> Result<App, AppError> {
        let store = Store::open(&config.database).await?;
        let applier = Applier {
            workflow: config.workflow(),
            branches: config.branches(),
            outbound: Vec::new(),
        };
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
        let applier = Arc::new(applier);
        let metrics = Arc::new(Metrics::default());
        let worker = build_worker(config, store.clone(), applier.clone(), metrics.clone())?;
        let providers = config
            .providers
            .iter()
            .filter_map(|(name, c)| Provider::from_config(name, c).map(|p| (name.clone(), p)))
            .collect();
        Ok(App {
            listener,
            providers: Arc::new(providers),
            worker: worker.clone(),
            state: ApiState {
                metrics,
                store,
                applier,
                tokens: Arc::new(tokens),
                worker,
            },
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests
    /// finish and closes the store.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let store = self.state.store.clone();
        let (inbox, inbox_task) = InboxWriter::spawn(store.clone(), self.state.metrics.clone());
        let ingress = IngressState {
            metrics: self.state.metrics.clone(),
            store: store.clone(),
            inbox,
            providers: self.providers,
            worker: self.worker.clone(),
        };
        let worker = self.worker.map(|w| tokio::spawn(w.run(shutdown.clone())));
        let router = api::router(self.state).merge(route::router(ingress));
        let serve_shutdown = shutdown.clone();
        let result = axum::serve(self.listener, router)
            .with_graceful_shutdown(async move { serve_shutdown.cancelled().await })
            .await
            .map_err(AppError::Serve);
        // The server stopped (or failed): stop and drain the worker too.
        shutdown.cancel();
        if let Some(w) = worker {
            let _ = w.await;
        }
        // Every request handler is gone with the server, and with them the
        // writer's handles: it ends after committing what it holds.
        let _ = inbox_task.await;
        store.close().await;
        result
    }
}
