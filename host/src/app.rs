//! Building and running the server: `App::build(config)` opens the store and
//! binds the listener; `app.run(shutdown)` serves until the token is
//! cancelled and every task has drained.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use secrecy::SecretString;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState, Tokens};
use crate::config::Config;
use crate::ingress::route::{self, IngressState, Provider};
use crate::store::{Store, StoreError};
use crate::tickets::Applier;

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
}

pub struct App {
    listener: TcpListener,
    state: ApiState,
    providers: Arc<BTreeMap<String, Provider>>,
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
        let providers = config
            .providers
            .iter()
            .filter_map(|(name, c)| Provider::from_config(name, c).map(|p| (name.clone(), p)))
            .collect();
        Ok(App {
            listener,
            providers: Arc::new(providers),
            state: ApiState {
                store,
                applier: Arc::new(applier),
                tokens: Arc::new(tokens),
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
        let ingress = IngressState {
            store: store.clone(),
            providers: self.providers,
        };
        let router = api::router(self.state).merge(route::router(ingress));
        let result = axum::serve(self.listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .map_err(AppError::Serve);
        store.close().await;
        result
    }
}
