//! `MapperError`: why loading a component or running a call failed.
//!
//! A mapper's own refusal of a delivery is not here: that is its WIT
//! `map-error` ([`crate::action::MapError`]). These are the host's verdicts:
//! the file is no component of our world, or the guest trapped, timed out,
//! ran out of memory or broke an output or log limit.

use std::path::PathBuf;

use thiserror::Error;

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, Error)]
pub enum MapperError {
    #[error("cannot read mapper {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a WebAssembly file (no `\\0asm` header)")]
    NotWasm,
    #[error(
        "a core WebAssembly module, not a component: build for wasm32-wasip2 or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    #[error("invalid component")]
    Compile {
        #[source]
        source: Source,
    },
    #[error("component does not implement the {world} world: {reason}")]
    WrongWorld { world: &'static str, reason: String },
    #[error(
        "component imports {}, which the host does not provide (a mapper may import only sluice:mapper and WASI's cli, clocks, random, io, filesystem and sockets, granted nothing): {fix}",
        imports.join(", ")
    )]
    ForeignImport {
        /// Every import outside what the host links, in the component's order.
        imports: Vec<String>,
        fix: &'static str,
    },
    #[error("cannot configure the wasm engine")]
    Engine {
        #[source]
        source: Source,
    },
    #[error("cannot instantiate the mapper")]
    Instantiate {
        #[source]
        source: Source,
    },
    #[error("mapper exceeded its time limit of {limit_ms} ms")]
    Timeout { limit_ms: u128 },
    #[error(
        "mapper call exceeded its wall-clock limit of {limit_ms} ms (provider-api waits included)"
    )]
    WallClock { limit_ms: u128 },
    #[error("mapper exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit { limit_bytes: usize },
    #[error("mapper overflowed its stack (unbounded recursion?)")]
    StackOverflow,
    #[error("mapper wrote more than its log limit of {limit_bytes} bytes")]
    LogLimit { limit_bytes: usize },
    #[error("mapper output is {bytes} bytes, over the limit of {limit_bytes}")]
    OutputTooLarge { bytes: usize, limit_bytes: usize },
    #[error("mapper returned {count} actions, over the limit of {limit}")]
    TooManyActions { count: usize, limit: usize },
    #[error("mapper trapped: {message}{}", stderr_suffix(.stderr_tail))]
    Trap {
        message: String,
        /// The last lines the guest wrote to stderr: usually its own panic
        /// or exception message.
        stderr_tail: Vec<String>,
    },
}

fn stderr_suffix(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; guest stderr: {}", tail.join(" | "))
    }
}

impl MapperError {
    /// Stable snake_case name, for metrics, JSON reports and fixtures.
    pub fn kind(&self) -> &'static str {
        match self {
            MapperError::Read { .. } => "read",
            MapperError::NotWasm => "not_wasm",
            MapperError::CoreModule => "core_module",
            MapperError::Compile { .. } => "compile",
            MapperError::WrongWorld { .. } => "wrong_world",
            MapperError::ForeignImport { .. } => "foreign_import",
            MapperError::Engine { .. } => "engine",
            MapperError::Instantiate { .. } => "instantiate",
            MapperError::Timeout { .. } => "timeout",
            MapperError::WallClock { .. } => "wall_clock",
            MapperError::MemoryLimit { .. } => "memory_limit",
            MapperError::StackOverflow => "stack_overflow",
            MapperError::LogLimit { .. } => "log_limit",
            MapperError::OutputTooLarge { .. } => "output_too_large",
            MapperError::TooManyActions { .. } => "too_many_actions",
            MapperError::Trap { .. } => "trap",
        }
    }
}

pub(super) fn boxed(e: wasmtime::Error) -> Source {
    e.into_boxed_dyn_error()
}
