//! The mapper runtime: the only module that knows wasmtime.
//!
//! One [`MapperEngine`] (one wasmtime `Engine`, pooling allocator, epoch
//! ticker) compiles components once into [`LoadedMapper`]s, each holding an
//! `InstancePre` checked against the `sluice:mapper/mapper` world. Every call
//! gets a fresh `Store` (no state leaks between deliveries) with WASI granted
//! and nothing else: no directories, environment, sockets or inherited stdio.
//! Per-call limits ([`Limits`]) bound memory, time, output, log volume and
//! `provider-api` calls; breaking one fails that call with a [`MapperError`]
//! and never the host. Compiled components are kept as precompiled
//! artifacts in an [`ArtifactCache`], so a restart does not compile again;
//! an artifact loads only under this host's [`ArtifactKey`].

mod bindings;
mod cache;
mod call;
mod engine;
mod error;
mod limits;
mod sandbox;
mod services;

/// The generated WIT types, whose conversions into [`crate::action`] live in
/// `bindings`. Public only so the fuzz crate (`fuzz/`, target `wit_action`)
/// can build guest values by hand; nothing else should name them.
#[doc(hidden)]
pub use bindings::wit;
pub use cache::{ArtifactCache, ArtifactKey, CacheError, Exposure};
pub use call::{CallOutcome, CallReport, LogLine, LogSource, MapResult};
pub use engine::{EngineSettings, LoadOrigin, LoadedMapper, MapperEngine, content_hash};
pub use error::MapperError;
pub use limits::Limits;
pub use sandbox::{API_HEADER, ApiFailure, ApiRequest, ApiResponse, NoProviderApi, ProviderApi};
pub use services::{
    People, Person, PersonKey, STATE_KEY_MAX, STATE_VALUE_MAX, Services, StateView, StateWrite,
};

/// The world every mapper component must implement. Components built
/// against `sluice:mapper/mapper@0.1.0` keep loading.
pub const WORLD: &str = "sluice:mapper/mapper@0.2.0";

/// A verified webhook delivery, as handed to `map-to-ticket-event`. Its
/// `Debug` shows header names and the body's size only.
#[derive(Clone, PartialEq, Eq)]
pub struct Delivery {
    pub provider: String,
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// RFC 3339, UTC.
    pub received_at: String,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("provider", &self.provider)
            .field("method", &self.method)
            .field("headers", &crate::redacted::HeaderNames(&self.headers))
            .field("body", &crate::redacted::Bytes(self.body.len()))
            .finish_non_exhaustive()
    }
}
