//! The per-call store data: what a guest can touch while it runs.
//!
//! WASI is granted with no capability; stdout and stderr go to one capped
//! in-memory log shared with the `log` import; memory growth is checked by a
//! limiter that remembers a refusal (so an out-of-memory trap is reported as
//! such); `provider-api` goes through a [`ProviderApi`] behind a call budget.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{host_api, host_api_v1, wit, wit_v1};
use super::call::{LogLine, LogSource};
use super::services::{PersonKey, Services};
use crate::resolve::BranchConvention;

/// A request a mapper makes to its provider's API, relative to the base URL.
/// `Debug` of it and of [`ApiResponse`] shows header names and sizes only.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &crate::redacted::HeaderNames(&self.headers))
            .field("body", &crate::redacted::Bytes(self.body.len()))
            .finish()
    }
}

impl std::fmt::Debug for ApiResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiResponse")
            .field("status", &self.status)
            .field("headers", &crate::redacted::HeaderNames(&self.headers))
            .field("body", &crate::redacted::Bytes(self.body.len()))
            .finish()
    }
}

/// Why a `provider-api` call got no response; mirrors the WIT `api-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiFailure {
    Denied(String),
    BudgetExhausted,
    Timeout,
    TooLarge,
    Unavailable(String),
}

/// The request header a mapper names one of its provider's APIs with:
/// `Sluice-Api: y360` for `api.extra.y360`, `Sluice-Api: tickets` for the
/// host's tickets. Absent, a request goes to the provider's own API. The
/// host removes it before anything is sent.
pub const API_HEADER: &str = "sluice-api";

impl ApiRequest {
    /// Removes the [`API_HEADER`] and returns the API it names; `None`
    /// for the provider's own. Named twice, or empty, it is refused: which
    /// credentials a request carries must not be a guess.
    pub fn take_api(&mut self) -> Result<Option<String>, ApiFailure> {
        let mut named: Vec<String> = Vec::new();
        self.headers.retain(|(name, value)| {
            let ours = name.eq_ignore_ascii_case(API_HEADER);
            if ours {
                named.push(value.trim().to_owned());
            }
            !ours
        });
        match named.as_slice() {
            [] => Ok(None),
            [name] if !name.is_empty() => Ok(Some(name.clone())),
            [_] => Err(ApiFailure::Denied("header `sluice-api` is empty".into())),
            _ => Err(ApiFailure::Denied(
                "header `sluice-api` is given more than once".into(),
            )),
        }
    }
}

impl ApiResponse {
    /// An answer worth trying again later: 429 or a 5xx. Mapping and
    /// outbound sending both retry on it.
    pub fn is_transient(&self) -> bool {
        self.status == 429 || self.status >= 500
    }
}

impl ApiFailure {
    /// No answer, for a reason that may pass: a timeout or no connection.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiFailure::Timeout | ApiFailure::Unavailable(_))
    }
}

/// Answers a mapper's `provider-api` calls: the live HTTP client in the
/// server, recorded fixture answers in `host test-mapper`. Async: a call
/// waiting on the network holds no thread, and the call's wall-clock
/// deadline cancels it by dropping the future.
#[async_trait::async_trait]
pub trait ProviderApi: Send {
    async fn call(&mut self, request: &ApiRequest) -> Result<ApiResponse, ApiFailure>;
}

/// For callers that give a mapper no API access at all.
pub struct NoProviderApi;

#[async_trait::async_trait]
impl ProviderApi for NoProviderApi {
    async fn call(&mut self, _request: &ApiRequest) -> Result<ApiResponse, ApiFailure> {
        Err(ApiFailure::Unavailable(
            "no provider API is configured for this call".into(),
        ))
    }
}

/// The store data of one call.
pub(super) struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: CallLimiter,
    pub(super) log: GuestLog,
    api: Box<dyn ProviderApi>,
    api_budget: u32,
    pub(super) api_calls: u32,
    /// Time spent waiting on `provider-api`, shared with the call's
    /// watchdog: not the guest's own time, but part of its wall clock.
    pub(super) api_clock: ApiClock,
    pub(super) api_transient_failures: u32,
    branches: BranchConvention,
    /// The people directory and this provider's state, with the call's
    /// own writes.
    pub(super) services: Services,
}

impl Sandbox {
    pub(super) fn new(
        memory_bytes: usize,
        log_bytes: usize,
        api_budget: u32,
        api: Box<dyn ProviderApi>,
        branches: BranchConvention,
        services: Services,
    ) -> Self {
        let log = GuestLog::new(log_bytes);
        // Nothing is granted: no preopened directory, no environment, no
        // arguments, no network (the builder's default socket check denies
        // every address), stdin empty.
        let wasi = WasiCtxBuilder::new()
            .stdout(GuestPipe::new(log.clone(), LogSource::Stdout))
            .stderr(GuestPipe::new(log.clone(), LogSource::Stderr))
            .build();
        Sandbox {
            wasi,
            table: ResourceTable::new(),
            limiter: CallLimiter::new(memory_bytes),
            log,
            api,
            api_budget,
            api_calls: 0,
            api_clock: ApiClock::default(),
            api_transient_failures: 0,
            branches,
            services,
        }
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit::Host for Sandbox {}
impl wit_v1::Host for Sandbox {}

impl Sandbox {
    fn log_line(&mut self, source: LogSource, message: String) {
        // Over the limit the line is dropped and the call will fail with
        // `LogLimit`; a guest cannot flood the host's log through here.
        self.log.push_line(source, message);
    }

    async fn call_api(&mut self, request: ApiRequest) -> Result<ApiResponse, ApiFailure> {
        if self.api_calls >= self.api_budget {
            return Err(ApiFailure::BudgetExhausted);
        }
        self.api_calls += 1;
        self.api_clock.start();
        let answer = self.api.call(&request).await;
        self.api_clock.stop();
        let transient = match &answer {
            Ok(r) => r.is_transient(),
            Err(e) => e.is_transient(),
        };
        self.api_transient_failures += u32::from(transient);
        answer
    }
}

fn log_source(level: host_api::LogLevel) -> LogSource {
    match level {
        host_api::LogLevel::Trace => LogSource::Trace,
        host_api::LogLevel::Debug => LogSource::Debug,
        host_api::LogLevel::Info => LogSource::Info,
        host_api::LogLevel::Warn => LogSource::Warn,
        host_api::LogLevel::Error => LogSource::Error,
    }
}

impl host_api::Host for Sandbox {
    fn log(&mut self, level: host_api::LogLevel, message: String) {
        self.log_line(log_source(level), message);
    }

    async fn provider_api(
        &mut self,
        request: wit::ApiRequest,
    ) -> Result<wit::ApiResponse, wit::ApiError> {
        self.call_api(request.into())
            .await
            .map(Into::into)
            .map_err(Into::into)
    }

    fn branch_ticket_guid(&mut self, branch: String) -> Option<String> {
        self.branches.guid_of(&branch).map(str::to_owned)
    }

    fn find_person(&mut self, key: wit::PersonKey) -> Option<wit::Person> {
        let key = match key {
            wit::PersonKey::Email(e) => PersonKey::Email(e),
            wit::PersonKey::Identity(i) => PersonKey::Identity {
                provider: i.provider,
                id: i.id,
            },
        };
        self.services.find_person(&key).as_ref().map(Into::into)
    }

    fn state_get(&mut self, key: String) -> Option<String> {
        self.services.state.read(&key).map(str::to_owned)
    }

    fn state_set(&mut self, key: String, value: Option<String>, expected: Option<String>) -> bool {
        self.services.state.set(key, value, expected.as_deref())
    }
}

/// 0.1.0 components: the same imports, minus what 0.2.0 added.
impl host_api_v1::Host for Sandbox {
    fn log(&mut self, level: host_api_v1::LogLevel, message: String) {
        let level = match level {
            host_api_v1::LogLevel::Trace => host_api::LogLevel::Trace,
            host_api_v1::LogLevel::Debug => host_api::LogLevel::Debug,
            host_api_v1::LogLevel::Info => host_api::LogLevel::Info,
            host_api_v1::LogLevel::Warn => host_api::LogLevel::Warn,
            host_api_v1::LogLevel::Error => host_api::LogLevel::Error,
        };
        self.log_line(log_source(level), message);
    }

    async fn provider_api(
        &mut self,
        request: wit_v1::ApiRequest,
    ) -> Result<wit_v1::ApiResponse, wit_v1::ApiError> {
        self.call_api(request.into())
            .await
            .map(Into::into)
            .map_err(Into::into)
    }

    fn branch_ticket_guid(&mut self, branch: String) -> Option<String> {
        self.branches.guid_of(&branch).map(str::to_owned)
    }
}

/// Time a call spent waiting on `provider-api`, readable from outside the
/// store while the call runs (by the watchdog in `call.rs`): the finished
/// waits, and the start of the one in flight.
#[derive(Clone, Default)]
pub(super) struct ApiClock {
    inner: Arc<Mutex<ApiTime>>,
}

#[derive(Default)]
struct ApiTime {
    done: std::time::Duration,
    since: Option<std::time::Instant>,
}

impl ApiClock {
    fn state(&self) -> MutexGuard<'_, ApiTime> {
        // Two plain fields: a poisoned lock still holds valid values.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start(&self) {
        self.state().since = Some(std::time::Instant::now());
    }

    fn stop(&self) {
        let mut s = self.state();
        if let Some(since) = s.since.take() {
            s.done += since.elapsed();
        }
    }

    /// Time waited so far, the call in flight included.
    pub(super) fn elapsed(&self) -> std::time::Duration {
        let s = self.state();
        s.done + s.since.map_or(std::time::Duration::ZERO, |t| t.elapsed())
    }

    /// Whether a call is waiting on the API right now.
    pub(super) fn in_flight(&self) -> bool {
        self.state().since.is_some()
    }
}

/// Caps linear memory and table growth, remembering a refusal so the host
/// can tell an out-of-memory abort from any other trap. The memory cap is
/// for the whole call: a component holds one linear memory per core
/// instance that defines one (componentize-py and jco output have several),
/// and each of them growing to the cap would multiply it.
pub(super) struct CallLimiter {
    memory_bytes: usize,
    /// Bytes of every memory of the store together.
    memory_used: usize,
    pub(super) memory_refused: bool,
}

impl CallLimiter {
    pub(super) fn new(memory_bytes: usize) -> Self {
        CallLimiter {
            memory_bytes,
            memory_used: 0,
            memory_refused: false,
        }
    }
}

impl CallLimiter {
    /// Bytes of linear memory the call's instances hold together: their
    /// peak too, since wasm memory never shrinks.
    pub(super) fn memory_used(&self) -> usize {
        self.memory_used
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Called for a memory's initial size too (`current` 0), so the sum
        // covers every memory from its creation.
        let total = (self.memory_used + desired).saturating_sub(current);
        let allowed = total <= self.memory_bytes;
        if allowed {
            self.memory_used = total;
        }
        self.memory_refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; 100k entries is far beyond any
        // real mapper and bounds a table bomb.
        Ok(desired <= 100_000)
    }
}

/// The guest's log for one call: `log` lines and stdout/stderr bytes, in
/// order, up to a byte budget shared by all three.
#[derive(Clone)]
pub(super) struct GuestLog {
    inner: Arc<Mutex<LogState>>,
}

struct LogState {
    budget: usize,
    used: usize,
    exceeded: bool,
    lines: Vec<LogLine>,
    /// Unterminated stdout/stderr text, per stream.
    partial: [Vec<u8>; 2],
}

impl GuestLog {
    fn new(budget: usize) -> Self {
        GuestLog {
            inner: Arc::new(Mutex::new(LogState {
                budget,
                used: 0,
                exceeded: false,
                lines: Vec::new(),
                partial: [Vec::new(), Vec::new()],
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, LogState> {
        // A poisoned lock only means a panic elsewhere mid-push; the log is
        // still a valid list of lines.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn charge(state: &mut LogState, bytes: usize) -> bool {
        if state.used + bytes > state.budget {
            state.exceeded = true;
            return false;
        }
        state.used += bytes;
        true
    }

    fn push_line(&self, source: LogSource, text: String) {
        let mut s = self.state();
        // A line costs its newline too: a flood of empty lines is charged.
        if Self::charge(&mut s, text.len() + 1) {
            s.lines.push(LogLine { source, text });
        }
    }

    /// Appends stream bytes; false once the budget is spent.
    fn write(&self, source: LogSource, bytes: &[u8]) -> bool {
        let mut s = self.state();
        if !Self::charge(&mut s, bytes.len()) {
            return false;
        }
        let slot = usize::from(source == LogSource::Stderr);
        s.partial[slot].extend_from_slice(bytes);
        while let Some(nl) = s.partial[slot].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = s.partial[slot].drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line[..nl]).into_owned();
            s.lines.push(LogLine { source, text });
        }
        true
    }

    pub(super) fn exceeded(&self) -> bool {
        self.state().exceeded
    }

    /// The stderr lines so far, an unterminated last line included.
    pub(super) fn peek_stderr(&self) -> Vec<String> {
        let s = self.state();
        let mut lines: Vec<String> = s
            .lines
            .iter()
            .filter(|l| l.source == LogSource::Stderr)
            .map(|l| l.text.clone())
            .collect();
        if !s.partial[1].is_empty() {
            lines.push(String::from_utf8_lossy(&s.partial[1]).into_owned());
        }
        lines
    }

    /// Every line, unterminated stream text included.
    pub(super) fn take_lines(&self) -> Vec<LogLine> {
        let mut s = self.state();
        for (slot, source) in [(0, LogSource::Stdout), (1, LogSource::Stderr)] {
            if !s.partial[slot].is_empty() {
                let text = String::from_utf8_lossy(&s.partial[slot]).into_owned();
                s.partial[slot].clear();
                s.lines.push(LogLine { source, text });
            }
        }
        std::mem::take(&mut s.lines)
    }
}

/// A guest's stdout or stderr, writing into the [`GuestLog`].
#[derive(Clone)]
struct GuestPipe {
    log: GuestLog,
    source: LogSource,
}

impl GuestPipe {
    fn new(log: GuestLog, source: LogSource) -> Self {
        GuestPipe { log, source }
    }
}

impl IsTerminal for GuestPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if self.log.write(self.source, &bytes) {
            Ok(())
        } else {
            // Trapping ends the flood at once; the call reports `LogLimit`.
            Err(StreamError::Trap(wasmtime::format_err!(
                "guest log volume limit exceeded"
            )))
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

#[async_trait::async_trait]
impl Pollable for GuestPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.log.write(self.source, buf) {
            Poll::Ready(Ok(buf.len()))
        } else {
            Poll::Ready(Err(io::Error::other("guest log volume limit exceeded")))
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cap_covers_every_memory_of_a_call() {
        let mib = 1 << 20;
        let mut limiter = CallLimiter::new(10 * mib);
        // Two memories created at 4 MiB each: 8 MiB in all.
        assert!(limiter.memory_growing(0, 4 * mib, None).unwrap());
        assert!(limiter.memory_growing(0, 4 * mib, None).unwrap());
        // The first growing to 6 MiB would make 10: allowed, exactly.
        assert!(limiter.memory_growing(4 * mib, 6 * mib, None).unwrap());
        // The second growing by one page more is over the cap, though it
        // alone would be far under it.
        assert!(
            !limiter
                .memory_growing(4 * mib, 4 * mib + 65_536, None)
                .unwrap()
        );
        assert!(limiter.memory_refused);
    }
}
