//! Hot reload of mapper components: where each provider's component comes
//! from, the pipeline a new version goes through, and the registry that
//! serves the current one.
//!
//! A version goes live only through [`Reloader::reload`]: read the file →
//! compile (or take the precompiled artifact from the cache) and check the
//! world → run the canary fixtures shipped beside it → swap it into the
//! [`MapperRegistry`]. Any failure refuses that release — logged, counted,
//! kept with its reason for the mappers API — and the version serving
//! before keeps serving. Start-up loads every provider through the same
//! function; [`watch`] calls it when files change. This module knows
//! neither wasmtime (that is `mapper`) nor axum (that is `api`/`ingress`).

mod canary;
mod registry;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

pub use canary::{CanaryReport, CanaryResults, CaseFailure, FailureInfo};
pub use registry::{
    Availability, MapperEntry, MapperListing, MapperRegistry, MapperState, Origin, ProviderMapper,
    ProviderState, Refusal, RefusalInfo, Version, VersionInfo,
};

use crate::config::Config;
use crate::mapper::{
    ArtifactCache, ArtifactKey, CacheError, EngineSettings, Limits, MapperEngine, MapperError,
};
use crate::metrics::Metrics;

#[derive(Debug, Error)]
pub enum ReloadError {
    #[error("cannot start the wasm engine")]
    Engine(#[source] MapperError),
    #[error("mappers.dir {path}: not a folder")]
    NoFolder { path: PathBuf },
    /// The artifact cache folder is not this host's alone.
    #[error(transparent)]
    Cache(CacheError),
    #[error("cannot start the mapper file watcher")]
    Watcher(#[source] notify::Error),
    #[error("cannot watch {path} for mapper changes")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

/// Where one provider's mapper comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapperSource {
    pub provider: String,
    /// The component file.
    pub wasm: PathBuf,
    /// Canary fixtures: `{stem}.fixtures/` beside the file unless configured.
    pub fixtures: PathBuf,
    /// The provider's `mapper_config`, with `sync.mappings` as `mappings`; JSON text.
    pub config: String,
}

/// Every provider's mapper source: its own `mapper:` file, else
/// `{mappers.dir}/{provider}.wasm`; providers with neither have none.
pub fn sources(config: &Config) -> Vec<MapperSource> {
    config
        .providers
        .iter()
        .filter_map(|(name, p)| {
            let wasm = match (&p.mapper, &config.mappers.dir) {
                (Some(file), _) => file.clone(),
                (None, Some(dir)) => dir.join(format!("{name}.wasm")),
                (None, None) => return None,
            };
            let fixtures = p.fixtures.clone().unwrap_or_else(|| fixtures_beside(&wasm));
            Some(MapperSource {
                provider: name.clone(),
                wasm,
                fixtures,
                config: p.mapper_config_json().to_string(),
            })
        })
        .collect()
}

/// `a/bitbucket.wasm` → `a/bitbucket.fixtures`.
fn fixtures_beside(wasm: &Path) -> PathBuf {
    let stem = wasm
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    wasm.with_file_name(format!("{stem}.fixtures"))
}

/// `config`'s artifact cache: `mappers.cache_dir`, else the default folder;
/// `Ok(Ok(None))` when there is neither. A folder someone else could write
/// is an error: the host does not start over it. A key that cannot be had
/// (`Ok(Err)`) only turns the cache off — logged here — since the cache
/// only saves time; `host check` reports it.
pub fn artifact_cache(
    config: &Config,
) -> Result<Result<Option<ArtifactCache>, CacheError>, ReloadError> {
    let Some(dir) = config
        .mappers
        .cache_dir
        .clone()
        .or_else(ArtifactCache::default_dir)
    else {
        return Ok(Ok(None));
    };
    ArtifactCache::check_folder(&dir).map_err(ReloadError::Cache)?;
    let key = config
        .mappers
        .cache_key_file
        .clone()
        .or_else(ArtifactKey::default_file)
        .ok_or(CacheError::NoKeyFile)
        .and_then(|path| ArtifactKey::load_or_create(&path));
    if let Err(e) = &key {
        tracing::warn!(error = %e, "artifact cache off: every mapper is compiled");
    }
    Ok(key.map(|key| Some(ArtifactCache::new(dir, key))))
}

/// What one [`Reloader::reload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new version serves.
    Swapped { hash: String },
    /// The file holds the version already serving.
    Unchanged,
    /// The release was refused; the previous version (if any) serves.
    Refused { reason: String },
    /// The file is missing; the provider is not served.
    Absent,
}

/// The reload pipeline and the registry it feeds.
pub struct Reloader {
    engine: Option<MapperEngine>,
    cache: Option<ArtifactCache>,
    /// Why there is no cache although there is a folder for one.
    cache_off: Option<Arc<CacheError>>,
    registry: MapperRegistry,
    metrics: Arc<Metrics>,
    sources: Vec<MapperSource>,
    debounce: Duration,
    mappers_dir: Option<PathBuf>,
}

impl Reloader {
    /// The pipeline for `config`'s providers; loads nothing yet. No engine
    /// is started when no provider has a mapper source.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Result<Self, ReloadError> {
        let sources = sources(config);
        if let Some(dir) = &config.mappers.dir
            && !dir.is_dir()
        {
            return Err(ReloadError::NoFolder { path: dir.clone() });
        }
        let engine = if sources.is_empty() {
            None
        } else {
            Some(
                MapperEngine::new(EngineSettings {
                    branches: config.branches(),
                    limits: Limits {
                        wall_clock: Duration::from_millis(config.mappers.wall_clock_ms),
                        ..Limits::default()
                    },
                    ..EngineSettings::default()
                })
                .map_err(ReloadError::Engine)?,
            )
        };
        // Without a mapper there is nothing to cache, nor a folder to check.
        let cache = if sources.is_empty() {
            Ok(None)
        } else {
            artifact_cache(config)?
        };
        let (cache, cache_off) = match cache {
            Ok(cache) => (cache, None),
            Err(e) => (None, Some(Arc::new(e))),
        };
        Ok(Reloader {
            engine,
            cache,
            cache_off,
            registry: MapperRegistry::new(&sources),
            metrics,
            sources,
            debounce: Duration::from_millis(config.mappers.debounce_ms),
            mappers_dir: config.mappers.dir.clone(),
        })
    }

    pub fn registry(&self) -> &MapperRegistry {
        &self.registry
    }

    pub fn sources(&self) -> &[MapperSource] {
        &self.sources
    }

    /// Why the artifact cache is off, when a key problem turned it off.
    pub fn cache_off(&self) -> Option<Arc<CacheError>> {
        self.cache_off.clone()
    }

    /// Loads every provider's mapper; the start-up path, the same one a
    /// reload takes. Blocking.
    pub fn load_all(&self) -> Vec<(String, ReloadOutcome)> {
        self.sources
            .iter()
            .map(|s| (s.provider.clone(), self.reload(&s.provider)))
            .collect()
    }

    /// Reads `provider`'s file and, if it holds a new version that compiles,
    /// implements the world and passes every canary fixture, swaps it in.
    /// Blocking (compiles and runs guests): call it off the async threads.
    pub fn reload(&self, provider: &str) -> ReloadOutcome {
        let (Some(source), Some(engine)) = (
            self.sources.iter().find(|s| s.provider == provider),
            &self.engine,
        ) else {
            return ReloadOutcome::Absent;
        };
        let now = crate::store::now();
        let bytes = match std::fs::read(&source.wasm) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.registry.remove(provider, &now) {
                    tracing::warn!(provider, file = %source.wasm.display(), "mapper file removed: provider no longer served");
                    self.metrics.mapper_reload(provider, "removed");
                } else {
                    tracing::debug!(provider, file = %source.wasm.display(), "no mapper file");
                }
                return ReloadOutcome::Absent;
            }
            Err(e) => {
                let reason = format!("{}: cannot read: {e}", source.wasm.display());
                return self.refuse(source, None, reason, None, &now);
            }
        };
        let hash = crate::mapper::content_hash(&bytes);
        if self.registry.current_hash(provider).as_deref() == Some(hash.as_str()) {
            return ReloadOutcome::Unchanged;
        }
        let mapper = match engine.load_cached(&bytes, self.cache.as_ref()) {
            Ok(m) => m,
            Err(e) => {
                let reason = format!("{}: {}", source.wasm.display(), chain(&e));
                return self.refuse(source, Some(hash), reason, None, &now);
            }
        };
        let canary = canary::run(&mapper, provider, &source.fixtures);
        if !canary.passed_all() {
            let reason = format!("{}: {}", source.wasm.display(), canary.summary());
            return self.refuse(source, Some(hash), reason, Some(canary), &now);
        }
        tracing::info!(
            provider,
            mapper = %&hash[..12],
            origin = mapper.origin().as_str(),
            load_ms = mapper.load_time().as_secs_f64() * 1e3,
            fixtures = canary.total,
            "mapper version serving"
        );
        self.registry.swap(
            provider,
            Version {
                mapper: ProviderMapper {
                    mapper,
                    config: source.config.clone(),
                },
                loaded_at: now,
                canary,
            },
        );
        self.metrics.mapper_reload(provider, "loaded");
        ReloadOutcome::Swapped { hash }
    }

    fn refuse(
        &self,
        source: &MapperSource,
        hash: Option<String>,
        reason: String,
        canary: Option<CanaryReport>,
        now: &str,
    ) -> ReloadOutcome {
        let provider = source.provider.as_str();
        let serving = self.registry.current_hash(provider);
        tracing::warn!(
            provider,
            mapper = hash.as_deref().map(|h| &h[..12]).unwrap_or("-"),
            serving = serving.as_deref().map(|h| &h[..12]).unwrap_or("none"),
            reason = %reason,
            "mapper release refused"
        );
        self.metrics.mapper_reload(provider, "refused");
        self.registry.refuse(
            provider,
            Refusal {
                hash,
                at: now.to_owned(),
                reason: reason.clone(),
                canary,
            },
        );
        ReloadOutcome::Refused { reason }
    }
}

/// An error and its sources, `: `-joined: a refusal's reason must say why
/// (e.g. which import is missing), not only that it failed; a store
/// error's own message is generic too.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        Config::parse(yaml, Path::new("/etc/sluice/sluice.yaml"), |_| None).unwrap()
    }

    #[test]
    fn sources_come_from_the_provider_or_the_mappers_folder() {
        let c = config(
            "mappers: {dir: mappers}\nproviders:\n  bitbucket:\n    verify: {secret: s-0123456789abcdef}\n  github:\n    verify: {secret: s-0123456789abcdef}\n    mapper: /opt/gh.wasm\n    mapper_config: {a: 1}\n  slack:\n    verify: {secret: s-0123456789abcdef}\n    mapper: slack.wasm\n    fixtures: tests/slack\n",
        );
        let got = sources(&c);
        let want = [
            (
                "bitbucket",
                "/etc/sluice/mappers/bitbucket.wasm",
                "/etc/sluice/mappers/bitbucket.fixtures",
                "{}",
            ),
            ("github", "/opt/gh.wasm", "/opt/gh.fixtures", r#"{"a":1}"#),
            (
                "slack",
                "/etc/sluice/slack.wasm",
                "/etc/sluice/tests/slack",
                "{}",
            ),
        ];
        assert_eq!(got.len(), want.len());
        for (s, (provider, wasm, fixtures, cfg)) in got.iter().zip(want) {
            assert_eq!(s.provider, provider);
            assert_eq!(s.wasm, Path::new(wasm));
            assert_eq!(s.fixtures, Path::new(fixtures));
            assert_eq!(s.config, cfg);
        }
        let none = config("providers:\n  bitbucket:\n    verify: {secret: s-0123456789abcdef}\n");
        assert!(sources(&none).is_empty());
    }

    #[test]
    fn errors_keep_their_causes_in_the_reason() {
        let e = MapperError::Read {
            path: "/x/a.wasm".into(),
            source: std::io::Error::other("disk on fire"),
        };
        assert_eq!(chain(&e), "cannot read mapper /x/a.wasm: disk on fire");
    }
}
