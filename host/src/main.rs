//! The `host` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

fn main() -> ExitCode {
    host::cli::main()
}
