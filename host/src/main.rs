//! The `host` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: see the workspace manifest.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    host::cli::main()
}
