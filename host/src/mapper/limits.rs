//! Per-call limits, with safe defaults an operator may raise.

use std::time::Duration;

/// What one mapper call may use. Breaking a limit fails that call only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory of the whole component instance.
    pub memory_bytes: usize,
    /// Wall-clock time of guest execution, enforced by epoch interruption.
    pub timeout: Duration,
    /// Size of the call's output, measured as its canonical JSON rendering.
    pub output_bytes: usize,
    /// Number of actions one delivery may produce.
    pub max_actions: usize,
    /// Bytes the guest may write through `log`, stdout and stderr together.
    pub log_bytes: usize,
    /// `provider-api` calls one delivery may make.
    pub api_calls: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // Rust mappers use ~1 MiB; interpreters (componentize-py, jco)
            // need tens of MiB.
            memory_bytes: 128 << 20,
            timeout: Duration::from_secs(1),
            output_bytes: 1 << 20,
            max_actions: 256,
            log_bytes: 64 << 10,
            api_calls: 16,
        }
    }
}
