//! `MapperRegistry`: the version of each provider's mapper that serves
//! now, the last release refused, and whether the file is there at all.
//!
//! Readers (`get`) take a clone of the current version under a short read
//! lock and never hold the lock while mapping: a swap replaces the map
//! entry, and a call already holding the old clone finishes on the old
//! version — whole, since a `ProviderMapper` is one component and one
//! config.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::MapperSource;
use super::canary::{CanaryReport, CanaryResults};
use crate::mapper::LoadOrigin;

/// A provider's mapper and its `mapper_config`: what a delivery is mapped
/// with, and a change sent with.
#[derive(Clone)]
pub struct ProviderMapper {
    pub mapper: crate::mapper::LoadedMapper,
    /// JSON text.
    pub config: String,
}

/// The shared registry. Cheap to clone.
#[derive(Clone, Default)]
pub struct MapperRegistry {
    inner: Arc<RwLock<BTreeMap<String, Entry>>>,
    /// Counts versions that started serving, so the workers pick up the
    /// work that waited for one at once rather than on their next tick.
    served: Arc<tokio::sync::watch::Sender<u64>>,
}

/// A version that passed its checks and serves.
#[derive(Clone)]
pub struct Version {
    pub mapper: ProviderMapper,
    /// RFC 3339, UTC.
    pub loaded_at: String,
    pub canary: CanaryReport,
}

/// A release that was not swapped in, and why.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// `None` when the file could not even be read.
    pub hash: Option<String>,
    pub at: String,
    pub reason: String,
    pub canary: Option<CanaryReport>,
}

/// Whether a provider's route can take deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// A version serves.
    Serving,
    /// The file is there but no version passed its checks yet: deliveries
    /// are stored and wait for one.
    Waiting,
    /// The mapper file is missing (removed, or never deployed).
    Absent { file: PathBuf },
}

/// One provider's state, for `host check`.
#[derive(Debug, Clone)]
pub struct ProviderState {
    pub provider: String,
    pub file: PathBuf,
    pub availability: Availability,
    /// Why the last release was refused, if one was.
    pub refused: Option<String>,
}

struct Entry {
    wasm: PathBuf,
    fixtures: PathBuf,
    current: Option<Version>,
    refused: Option<Refusal>,
    /// Since when the file is missing.
    absent_since: Option<String>,
}

impl MapperRegistry {
    /// One entry per source, none serving yet.
    pub(super) fn new(sources: &[MapperSource]) -> Self {
        let entries = sources
            .iter()
            .map(|s| {
                (
                    s.provider.clone(),
                    Entry {
                        wasm: s.wasm.clone(),
                        fixtures: s.fixtures.clone(),
                        current: None,
                        refused: None,
                        absent_since: None,
                    },
                )
            })
            .collect();
        MapperRegistry {
            inner: Arc::new(RwLock::new(entries)),
            served: Arc::default(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        // A panic under the lock leaves whole entries behind: every write
        // below replaces fields, none is left half-done.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Entry>> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The version serving `provider` now: a clone, so a call keeps the
    /// whole version it started with across a swap.
    pub fn get(&self, provider: &str) -> Option<ProviderMapper> {
        self.read()
            .get(provider)
            .and_then(|e| e.current.as_ref())
            .map(|v| v.mapper.clone())
    }

    /// Providers with a version serving.
    pub fn providers(&self) -> Vec<String> {
        self.read()
            .iter()
            .filter(|(_, e)| e.current.is_some())
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// The content hash serving `provider`, if any.
    pub fn current_hash(&self, provider: &str) -> Option<String> {
        self.read()
            .get(provider)
            .and_then(|e| e.current.as_ref())
            .map(|v| v.mapper.mapper.content_hash().to_owned())
    }

    /// Whether `provider`'s route can take deliveries; `None` for a
    /// provider with no mapper source (its deliveries are stored and wait).
    pub fn availability(&self, provider: &str) -> Option<Availability> {
        self.read().get(provider).map(Entry::availability)
    }

    /// Every provider's state, in name order.
    pub fn states(&self) -> Vec<ProviderState> {
        self.read()
            .iter()
            .map(|(provider, e)| ProviderState {
                provider: provider.clone(),
                file: e.wasm.clone(),
                availability: e.availability(),
                refused: e.refused.as_ref().map(|r| r.reason.clone()),
            })
            .collect()
    }

    /// Makes `version` the one serving `provider`, atomically for readers.
    /// A signal that fires each time a version starts serving; each
    /// worker holds its own, so a swap while it was busy is remembered for
    /// its next wait.
    pub fn served_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.served.subscribe()
    }

    pub(super) fn swap(&self, provider: &str, version: Version) {
        if let Some(e) = self.write().get_mut(provider) {
            e.current = Some(version);
            e.absent_since = None;
        }
        self.served.send_modify(|n| *n += 1);
    }

    pub(super) fn refuse(&self, provider: &str, refusal: Refusal) {
        if let Some(e) = self.write().get_mut(provider) {
            e.refused = Some(refusal);
            e.absent_since = None;
        }
    }

    /// The file is gone: stop serving `provider`. Returns whether a
    /// version was serving until now.
    pub(super) fn remove(&self, provider: &str, at: &str) -> bool {
        let mut map = self.write();
        let Some(e) = map.get_mut(provider) else {
            return false;
        };
        if e.absent_since.is_none() {
            e.absent_since = Some(at.to_owned());
        }
        e.current.take().is_some()
    }

    /// The `GET /v1/mappers` (and `host mappers`) listing.
    pub fn listing(&self) -> MapperListing {
        let map = self.read();
        let mappers = map
            .iter()
            .map(|(provider, e)| {
                let state = if e.current.is_some() {
                    MapperState::Serving
                } else if e.absent_since.is_some() {
                    MapperState::Absent
                } else {
                    MapperState::Waiting
                };
                MapperEntry {
                    provider: provider.clone(),
                    state,
                    file: display(&e.wasm),
                    fixtures: display(&e.fixtures),
                    version: e.current.as_ref().map(Version::info),
                    last_refused: e.refused.as_ref().map(Refusal::info),
                    absent_since: e.absent_since.clone(),
                }
            })
            .collect();
        MapperListing { mappers }
    }

    /// [`listing`](Self::listing) as JSON, for the CLI and benchmarks.
    pub fn to_json(&self) -> Value {
        // A listing is strings, numbers and lists: it always serialises.
        serde_json::to_value(self.listing()).unwrap_or_default()
    }
}

/// Each provider's mapper.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MapperListing {
    pub mappers: Vec<MapperEntry>,
}

/// One provider's mapper: the version serving, the last release refused.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Mapper)]
pub struct MapperEntry {
    pub provider: String,
    pub state: MapperState,
    pub file: String,
    pub fixtures: String,
    pub version: Option<VersionInfo>,
    pub last_refused: Option<RefusalInfo>,
    #[schema(format = DateTime)]
    pub absent_since: Option<String>,
}

/// serving: a version maps deliveries; waiting: the file is there but no
/// release passed its checks yet (deliveries are stored and wait); absent:
/// the file is missing (webhooks get 503 with Retry-After).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MapperState {
    Serving,
    Waiting,
    Absent,
}

/// The version serving.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VersionInfo {
    /// SHA-256 of the component, recorded with every delivery and history
    /// row it produces.
    pub hash: String,
    pub size: usize,
    #[schema(format = DateTime)]
    pub loaded_at: String,
    pub origin: Origin,
    pub load_ms: f64,
    pub canary: CanaryResults,
}

/// Where the version's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Compiled,
    Cache,
}

/// The last release refused, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefusalInfo {
    /// Null when the file could not even be read.
    pub hash: Option<String>,
    #[schema(format = DateTime)]
    pub at: String,
    pub reason: String,
    pub canary: Option<CanaryResults>,
}

impl Entry {
    fn availability(&self) -> Availability {
        if self.current.is_some() {
            Availability::Serving
        } else if self.absent_since.is_some() {
            Availability::Absent {
                file: self.wasm.clone(),
            }
        } else {
            Availability::Waiting
        }
    }
}

impl Version {
    fn info(&self) -> VersionInfo {
        let m = &self.mapper.mapper;
        VersionInfo {
            hash: m.content_hash().to_owned(),
            size: m.size(),
            loaded_at: self.loaded_at.clone(),
            origin: match m.origin() {
                LoadOrigin::Compiled => Origin::Compiled,
                LoadOrigin::Cached => Origin::Cache,
            },
            load_ms: m.load_time().as_secs_f64() * 1e3,
            canary: self.canary.results(),
        }
    }
}

impl Refusal {
    fn info(&self) -> RefusalInfo {
        RefusalInfo {
            hash: self.hash.clone(),
            at: self.at.clone(),
            reason: self.reason.clone(),
            canary: self.canary.as_ref().map(CanaryReport::results),
        }
    }
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
