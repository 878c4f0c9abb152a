//! The one wasmtime `Engine`, its epoch ticker, and loading components.

use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::WORLD;
use super::bindings::{v1, v2};
use super::cache::ArtifactCache;
use super::error::{MapperError, boxed};
use super::limits::Limits;
use super::sandbox::Sandbox;
use crate::resolve::BranchConvention;

/// How often the engine's epoch advances; the granularity of timeouts.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Bytes of each memory and table slot kept resident between calls.
const KEEP_RESIDENT: usize = 2 << 20;

/// Bytes of each fiber stack kept resident between calls: a mapper's
/// calls touch the top of the stack only.
const ASYNC_STACK_KEEP_RESIDENT: usize = 64 << 10;

/// Engine-wide settings, fixed when the engine is built.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub limits: Limits,
    /// Count fuel so each call reports the instructions it used (costs
    /// ~30% speed: for `host test-mapper`, not the server).
    pub fuel_metering: bool,
    /// Concurrent instances the pooling allocator keeps slots for.
    pub max_instances: u32,
    /// Pooling (the default) or wasmtime's on-demand allocator, kept for
    /// side-by-side benchmarks and hosts that cannot reserve the pool's
    /// virtual memory.
    pub pooling: bool,
    pub branches: BranchConvention,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            limits: Limits::default(),
            fuel_metering: false,
            max_instances: 64,
            pooling: true,
            branches: BranchConvention::default(),
        }
    }
}

/// The shared wasm engine. Cheap to clone.
#[derive(Clone)]
pub struct MapperEngine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    engine: Engine,
    linker: Linker<Sandbox>,
    settings: EngineSettings,
}

/// A compiled component checked against the world, ready to instantiate.
#[derive(Clone)]
pub struct LoadedMapper {
    pub(super) engine: MapperEngine,
    pub(super) pre: Pre,
    hash: String,
    size: usize,
    origin: LoadOrigin,
    load_time: Duration,
}

/// A component ready to instantiate, in the world version it was built for.
#[derive(Clone)]
pub(super) enum Pre {
    V2(v2::MapperPre<Sandbox>),
    /// Built against `sluice:mapper@0.1.0`; the host converts for it.
    V1(v1::MapperPre<Sandbox>),
}

/// Where a loaded component's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadOrigin {
    /// Compiled by cranelift in this process.
    Compiled,
    /// A precompiled artifact from the [`ArtifactCache`].
    Cached,
}

impl LoadOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadOrigin::Compiled => "compiled",
            LoadOrigin::Cached => "cache",
        }
    }
}

impl MapperEngine {
    pub fn new(settings: EngineSettings) -> Result<Self, MapperError> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(settings.max_instances)
            .total_core_instances(settings.max_instances * 16)
            .total_memories(settings.max_instances * 4)
            .total_tables(settings.max_instances * 8)
            .max_memory_size(settings.limits.memory_bytes)
            // Resetting a slot by scanning for dirty pages is what keeps a
            // fresh store per call cheap; the kernel may lack it.
            .pagemap_scan(Enabled::Auto)
            // Reset the first pages of a slot in place rather than giving
            // them back to the kernel: the next call would fault them in
            // again (a mapper touches its stack and heap start every call).
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            // Every call runs on its own fiber stack (async wasmtime);
            // one per instance slot.
            .total_stacks(settings.max_instances)
            .async_stack_keep_resident(ASYNC_STACK_KEEP_RESIDENT);

        let mut config = Config::new();
        if settings.pooling {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        // Calls are async (`call.rs`): the call's wall-clock deadline can
        // cancel one anywhere, and a provider API wait holds no thread.
        config
            .epoch_interruption(true)
            .consume_fuel(settings.fuel_metering)
            .wasm_component_model(true);
        let engine = Engine::new(&config).map_err(|e| MapperError::Engine { source: boxed(e) })?;

        let mut linker = Linker::<Sandbox>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| MapperError::Engine { source: boxed(e) })?;
        // Both versions' host interfaces: their names differ by version, so
        // a 0.1.0 component links against its own.
        v2::Mapper::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |s| s)
            .map_err(|e| MapperError::Engine { source: boxed(e) })?;
        v1::Mapper::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |s| s)
            .map_err(|e| MapperError::Engine { source: boxed(e) })?;

        spawn_epoch_ticker(&engine).map_err(|e| MapperError::Engine {
            source: Box::new(e),
        })?;
        Ok(MapperEngine {
            inner: Arc::new(EngineInner {
                engine,
                linker,
                settings,
            }),
        })
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.inner.settings
    }

    pub(super) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Compiles `bytes` and checks it implements the mapper world.
    pub fn load(&self, bytes: &[u8]) -> Result<LoadedMapper, MapperError> {
        self.load_cached(bytes, None)
    }

    /// Like [`MapperEngine::load`], taking the machine code from `cache`
    /// when it holds this content for this engine, and storing it there
    /// after a compile. The world is checked either way.
    pub fn load_cached(
        &self,
        bytes: &[u8],
        cache: Option<&ArtifactCache>,
    ) -> Result<LoadedMapper, MapperError> {
        let started = Instant::now();
        check_header(bytes)?;
        let hash = content_hash(bytes);
        let engine = &self.inner.engine;
        let (component, origin) = match cache.and_then(|c| c.get(engine, &hash)) {
            Some(component) => (component, LoadOrigin::Cached),
            None => {
                let component = Component::new(engine, bytes)
                    .map_err(|e| MapperError::Compile { source: boxed(e) })?;
                (component, LoadOrigin::Compiled)
            }
        };
        check_imports(engine, &component)?;
        let wrong_world = |e: wasmtime::Error| MapperError::WrongWorld {
            world: WORLD,
            reason: format!("{e:#}"),
        };
        let instance_pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(wrong_world)?;
        // Checks the exports; extra exports (componentize-py adds one) are
        // fine. The current world first; a component it does not fit may
        // be one built against 0.1.0, and if that fails too the current
        // world's complaint is the useful one.
        let pre = match v2::MapperPre::new(instance_pre.clone()) {
            Ok(pre) => Pre::V2(pre),
            Err(current) => match v1::MapperPre::new(instance_pre) {
                Ok(pre) => Pre::V1(pre),
                Err(_) => return Err(wrong_world(current)),
            },
        };
        // Only a component of our world is worth keeping compiled.
        if let (Some(cache), LoadOrigin::Compiled) = (cache, origin) {
            cache.put(engine, &hash, &component);
        }
        Ok(LoadedMapper {
            engine: self.clone(),
            pre,
            hash,
            size: bytes.len(),
            origin,
            load_time: started.elapsed(),
        })
    }

    pub fn load_file(&self, path: &Path) -> Result<LoadedMapper, MapperError> {
        self.load_file_cached(path, None)
    }

    /// [`MapperEngine::load_cached`] of the file at `path`.
    pub fn load_file_cached(
        &self,
        path: &Path,
        cache: Option<&ArtifactCache>,
    ) -> Result<LoadedMapper, MapperError> {
        let bytes = std::fs::read(path).map_err(|source| MapperError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.load_cached(&bytes, cache)
    }
}

impl LoadedMapper {
    /// SHA-256 of the component bytes, hex: the version's identity.
    pub fn content_hash(&self) -> &str {
        &self.hash
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Compiled here or taken from the artifact cache.
    pub fn origin(&self) -> LoadOrigin {
        self.origin
    }

    /// The world version the component was built against, e.g. `0.2.0`.
    pub fn world_version(&self) -> &'static str {
        match self.pre {
            Pre::V2(_) => "0.2.0",
            Pre::V1(_) => "0.1.0",
        }
    }

    /// Time to compile (or deserialize) and check the component.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }
}

/// SHA-256 of a component's bytes, hex: a version's identity, recorded
/// with every delivery and history row it produces.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn check_header(bytes: &[u8]) -> Result<(), MapperError> {
    if bytes.get(0..4) != Some(b"\0asm".as_slice()) {
        return Err(MapperError::NotWasm);
    }
    // Bytes 6..8 are the "layer": 0 for core modules, 1 for components.
    if bytes.get(6..8) == Some([0, 0].as_slice()) {
        return Err(MapperError::CoreModule);
    }
    Ok(())
}

/// Interfaces a mapper may import besides the world's own: WASI's
/// command-line basics, which the sandbox links with nothing granted (no
/// directories, environment, arguments or network). Language runtimes
/// import them whether or not the code uses them — componentize-py even
/// sockets — so refusing them would refuse every Python or JS mapper.
const LINKED_PACKAGES: &[&str] = &[
    "sluice:mapper/",
    "wasi:io/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

/// Refuses a component importing an interface the host does not link
/// (`wasi:http`, `wasi:keyvalue`, another package), naming every such
/// import and the toolchain flag that removes it — instead of the linker's
/// "resource implementation is missing".
fn check_imports(engine: &Engine, component: &Component) -> Result<(), MapperError> {
    let foreign: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name)
        .filter(|name| !LINKED_PACKAGES.iter().any(|p| name.starts_with(p)))
        .map(str::to_owned)
        .collect();
    match foreign.first() {
        None => Ok(()),
        Some(first) => Err(MapperError::ForeignImport {
            fix: foreign_import_fix(first),
            imports: foreign,
        }),
    }
}

/// What removes an import, for the toolchains that add one unasked.
fn foreign_import_fix(import: &str) -> &'static str {
    if import.starts_with("wasi:http/") {
        "built with jco? it adds wasi:http unless told not to: `jco componentize --disable http` \
         (componentize-js 0.18 and later: `--disable http fetch-event`)"
    } else {
        "remove it from your WIT world and your code: a mapper reaches the outside \
         only through the sluice:mapper host imports"
    }
}

/// Advances the epoch every [`EPOCH_TICK`] for as long as the engine lives.
/// Without it no deadline fires, so failing to start it fails the engine.
fn spawn_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
}
