//! Per-call limits, with safe defaults an operator may raise.

use std::time::Duration;

/// What one mapper call may use. Breaking a limit fails that call only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory of the whole component instance.
    pub memory_bytes: usize,
    /// Time of the guest's own execution (its code and its WASI waits, not
    /// `provider-api`), enforced by epoch interruption and the call's
    /// watchdog.
    pub timeout: Duration,
    /// Wall-clock time of the whole call, `provider-api` waits included:
    /// the call is cancelled wherever it is when this runs out.
    pub wall_clock: Duration,
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
            // 16 API calls of a few hundred ms each fit; 16 of 5 s do not.
            wall_clock: Duration::from_secs(30),
            output_bytes: 1 << 20,
            max_actions: 256,
            log_bytes: 64 << 10,
            api_calls: 16,
        }
    }
}
