//! Running one call: a fresh `Store`, limits armed, the outcome classified.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use super::Delivery;
use super::bindings::{self, v1, v2, wit, wit_v1};
use super::engine::{EPOCH_TICK, LoadedMapper, Pre};
use super::error::{MapperError, boxed};
use super::sandbox::{ApiClock, ProviderApi, Sandbox};
use super::services::{Services, StateWrite};
use crate::action::{MapError, Mapped};
use crate::change::{OutboundRequest, TicketChange};

/// Fuel given to a metered call; the epoch deadline, not fuel, stops it.
const FUEL: u64 = u64::MAX / 2;
/// Epoch ticks between a running guest's yields to the executor (10 ms):
/// a long computation does not hold a runtime thread for its whole limit.
const YIELD_TICKS: u64 = 5;
/// How many non-blank stderr lines a trap error carries: enough for a
/// Python traceback's exception line under componentize-py's own epilogue.
const STDERR_TAIL: usize = 8;

/// Where a guest log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Stdout,
    Stderr,
}

impl LogSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LogSource::Trace => "trace",
            LogSource::Debug => "debug",
            LogSource::Info => "info",
            LogSource::Warn => "warn",
            LogSource::Error => "error",
            LogSource::Stdout => "stdout",
            LogSource::Stderr => "stderr",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub source: LogSource,
    pub text: String,
}

/// What a call cost and said, whatever its result.
#[derive(Debug, Clone, Default)]
pub struct CallReport {
    /// Instantiation and execution.
    pub elapsed: Duration,
    /// Fuel consumed (≈ wasm instructions), when the engine meters fuel.
    pub fuel: Option<u64>,
    /// Peak linear memory of every instance of the call together: what
    /// the memory limit is measured against.
    pub memory_bytes: usize,
    pub api_calls: u32,
    /// `provider-api` calls that failed in a way worth retrying later: a
    /// timeout, no connection, 429 or a 5xx answer. A mapping error after
    /// one is likely the provider's passing trouble, not the delivery's.
    pub api_transient_failures: u32,
    pub logs: Vec<LogLine>,
    /// The `state-set`s the call made, for the caller to commit with its
    /// outcome (and to drop with a failure).
    pub state_writes: Vec<StateWrite>,
    /// The call read or wrote its provider's state.
    pub state_used: bool,
}

impl CallReport {
    /// Writes the guest's log lines to the host's log, tagged with the
    /// provider and the mapper version; stdout is info, stderr warn.
    fn emit(&self, provider: &str, hash: &str) {
        let mapper = hash.get(..12).unwrap_or(hash);
        for line in &self.logs {
            let (source, text) = (line.source.as_str(), escape_controls(&line.text));
            match line.source {
                LogSource::Trace => {
                    tracing::trace!(target: "guest", provider, mapper, source, "{text}")
                }
                LogSource::Debug => {
                    tracing::debug!(target: "guest", provider, mapper, source, "{text}")
                }
                LogSource::Info | LogSource::Stdout => {
                    tracing::info!(target: "guest", provider, mapper, source, "{text}")
                }
                LogSource::Warn | LogSource::Stderr => {
                    tracing::warn!(target: "guest", provider, mapper, source, "{text}")
                }
                LogSource::Error => {
                    tracing::error!(target: "guest", provider, mapper, source, "{text}")
                }
            }
        }
    }
}

/// A guest's text with control characters escaped (`\n`, `\u{1b}`, …):
/// a guest must not be able to end its log line and forge another, or
/// drive an operator's terminal.
pub(crate) fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The mapper's answer (its own `map-error` included) or the host's verdict.
pub type MapResult<T> = Result<Result<T, MapError>, MapperError>;

#[derive(Debug)]
pub struct CallOutcome<T> {
    pub result: MapResult<T>,
    pub report: CallReport,
}

/// An instance of either world version, for one call.
enum Instance {
    V2(v2::Mapper),
    V1(v1::Mapper),
}

type GuestResult<T> = wasmtime::Result<Result<T, MapError>>;

/// One export call on an instance, as a future borrowing the call's store.
type CallFuture<'a, T> = Pin<Box<dyn Future<Output = GuestResult<T>> + Send + 'a>>;

/// Why the watchdog ended a call.
enum Cut {
    /// The guest's own time ran out while it waited in WASI (a sleep).
    Guest,
    /// The whole call, `provider-api` waits included, ran out.
    WallClock,
}

impl LoadedMapper {
    /// Runs `map-to-ticket-event` on a fresh instance, with no people
    /// directory and empty state. Blocking: call it from a blocking thread
    /// (or outside any async runtime); async code awaits
    /// [`LoadedMapper::map_inbound_async`].
    pub fn map_inbound(
        &self,
        delivery: &Delivery,
        config: &str,
        api: Box<dyn ProviderApi>,
    ) -> CallOutcome<Mapped> {
        self.map_inbound_with(delivery, config, api, Services::default())
    }

    /// [`LoadedMapper::map_inbound`] with the people directory and the
    /// provider's state.
    pub fn map_inbound_with(
        &self,
        delivery: &Delivery,
        config: &str,
        api: Box<dyn ProviderApi>,
        services: Services,
    ) -> CallOutcome<Mapped> {
        block_on(self.map_inbound_async(delivery, config, api, services))
    }

    /// [`LoadedMapper::map_inbound_with`] for async code: the call runs on
    /// a fiber, yields to the executor every few milliseconds of guest
    /// time, and is cancelled wherever it is once its wall clock
    /// (`Limits::wall_clock`) runs out.
    pub async fn map_inbound_async(
        &self,
        delivery: &Delivery,
        config: &str,
        api: Box<dyn ProviderApi>,
        services: Services,
    ) -> CallOutcome<Mapped> {
        let provider = &delivery.provider;
        let limits = &self.engine.settings().limits;
        let config = config.to_owned();
        let offered = match &self.pre {
            Pre::V2(_) => Offered::V2(wit::Delivery::from(delivery)),
            Pre::V1(_) => Offered::V1(wit_v1::Delivery::from(delivery)),
        };
        let (result, report) = self
            .run(api, services, move |instance, store| {
                Box::pin(async move {
                    match (instance, &offered) {
                        (Instance::V2(m), Offered::V2(d)) => m
                            .call_map_to_ticket_event(store, d, &config)
                            .await
                            .map(|r| r.map(Mapped::from).map_err(MapError::from)),
                        (Instance::V1(m), Offered::V1(d)) => m
                            .call_map_to_ticket_event(store, d, &config)
                            .await
                            .map(|r| r.map(Mapped::from).map_err(MapError::from)),
                        // The offer was made for this component's own version.
                        _ => Err(wasmtime::format_err!("world version mismatch")),
                    }
                })
            })
            .await;
        report.emit(provider, self.content_hash());
        let result = result.and_then(|r| match r {
            Ok(mapped) => {
                check_output(&mapped, limits)?;
                Ok(Ok(mapped))
            }
            Err(e) => Ok(Err(e)),
        });
        CallOutcome { result, report }
    }

    /// Runs `map-from-ticket-event` for `provider` on a fresh instance: the
    /// requests to send, in order. A change the component's world version
    /// cannot express (a `linked` change for a 0.1.0 component) is answered
    /// with no requests without calling it. Blocking, like `map_inbound`.
    pub fn map_outbound(
        &self,
        change: &TicketChange,
        provider: &str,
        config: &str,
        api: Box<dyn ProviderApi>,
        services: Services,
    ) -> CallOutcome<Vec<OutboundRequest>> {
        block_on(self.map_outbound_async(change, provider, config, api, services))
    }

    /// [`LoadedMapper::map_outbound`] for async code, under the same
    /// wall-clock deadline as [`LoadedMapper::map_inbound_async`].
    pub async fn map_outbound_async(
        &self,
        change: &TicketChange,
        provider: &str,
        config: &str,
        api: Box<dyn ProviderApi>,
        services: Services,
    ) -> CallOutcome<Vec<OutboundRequest>> {
        let limits = &self.engine.settings().limits;
        let offered = match &self.pre {
            Pre::V2(_) => bindings::change_v2(change).map(Offered::V2),
            Pre::V1(_) => bindings::change_v1(change, provider).map(Offered::V1),
        };
        let Some(offered) = offered else {
            return CallOutcome {
                result: Ok(Ok(Vec::new())),
                report: CallReport::default(),
            };
        };
        let config = config.to_owned();
        let (result, report) = self
            .run(api, services, move |instance, store| {
                Box::pin(async move {
                    match (instance, &offered) {
                        (Instance::V2(m), Offered::V2(c)) => m
                            .call_map_from_ticket_event(store, c, &config)
                            .await
                            .map(|r| r.map(requests).map_err(MapError::from)),
                        (Instance::V1(m), Offered::V1(c)) => m
                            .call_map_from_ticket_event(store, c, &config)
                            .await
                            .map(|r| r.map(requests).map_err(MapError::from)),
                        // The offer was made for this component's own version.
                        _ => Err(wasmtime::format_err!("world version mismatch")),
                    }
                })
            })
            .await;
        report.emit(provider, self.content_hash());
        let result = result.and_then(|r| match r {
            Ok(requests) => {
                check_requests(&requests, limits)?;
                Ok(Ok(requests))
            }
            Err(e) => Ok(Err(e)),
        });
        CallOutcome { result, report }
    }

    async fn run<T: Send>(
        &self,
        api: Box<dyn ProviderApi>,
        services: Services,
        call: impl for<'a> FnOnce(Instance, &'a mut Store<Sandbox>) -> CallFuture<'a, T> + Send,
    ) -> (Result<Result<T, MapError>, MapperError>, CallReport) {
        let settings = self.engine.settings();
        let limits = &settings.limits;
        let started = Instant::now();
        let sandbox = Sandbox::new(
            limits.memory_bytes,
            limits.log_bytes,
            limits.api_calls,
            api,
            settings.branches.clone(),
            services,
        );
        let api_clock = sandbox.api_clock.clone();
        let mut store = Store::new(self.engine.engine(), sandbox);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(deadline_ticks(limits.timeout).min(YIELD_TICKS));
        // The limit is on the guest's own time: waits on `provider-api`
        // (bounded by its own timeout, the call budget and the wall clock)
        // extend the deadline. Between checks the guest yields to the
        // executor, so a long computation shares its thread.
        let timeout = limits.timeout;
        store.epoch_deadline_callback(move |ctx| {
            let guest = started
                .elapsed()
                .saturating_sub(ctx.data().api_clock.elapsed());
            Ok(match timeout.checked_sub(guest) {
                Some(left) if !left.is_zero() => {
                    UpdateDeadline::Yield(deadline_ticks(left).min(YIELD_TICKS))
                }
                _ => UpdateDeadline::Interrupt,
            })
        });
        if settings.fuel_metering {
            // Setting fuel cannot fail when the engine meters fuel.
            let _ = store.set_fuel(FUEL);
        }

        let pre = &self.pre;
        let guest = async {
            let instance = match pre {
                Pre::V2(pre) => pre.instantiate_async(&mut store).await.map(Instance::V2),
                Pre::V1(pre) => pre.instantiate_async(&mut store).await.map(Instance::V1),
            };
            match instance {
                Ok(instance) => call(instance, &mut store).await.map_err(|e| (e, false)),
                Err(e) => Err((e, true)),
            }
        };
        // Epoch interruption stops guest code; the watchdog stops
        // everything else — a guest asleep in a WASI poll, an API that
        // never answers — by dropping the call where it waits.
        let outcome = tokio::select! {
            biased;
            done = guest => Ok(done),
            cut = watchdog(started, &api_clock, limits.timeout, limits.wall_clock) => Err(cut),
        };
        let result = match outcome {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err((e, instantiating))) => Err(classify(e, &store, limits, instantiating)),
            Err(Cut::Guest) => Err(MapperError::Timeout {
                limit_ms: limits.timeout.as_millis(),
            }),
            Err(Cut::WallClock) => Err(MapperError::WallClock {
                limit_ms: limits.wall_clock.as_millis(),
            }),
        };
        let result = match result {
            // A guest that hit the log limit but returned anyway still
            // broke the limit; its output is not trusted.
            Ok(_) if store.data().log.exceeded() => Err(MapperError::LogLimit {
                limit_bytes: limits.log_bytes,
            }),
            other => other,
        };
        let fuel = settings
            .fuel_metering
            .then(|| store.get_fuel().map(|left| FUEL - left).ok())
            .flatten();
        // A call cut while it waited on the API ends in the provider's
        // passing trouble, like an API timeout.
        let cut_in_api = u32::from(api_clock.in_flight());
        let report = CallReport {
            elapsed: started.elapsed(),
            fuel,
            memory_bytes: store.data().limiter.memory_used(),
            api_calls: store.data().api_calls,
            api_transient_failures: store.data().api_transient_failures + cut_in_api,
            logs: store.data().log.take_lines(),
            state_writes: store.data_mut().services.state.take_writes(),
            state_used: store.data().services.state.used(),
        };
        (result, report)
    }
}

/// Drives an async call to its end from synchronous code: on the
/// runtime this thread belongs to when it may block (a multi-thread
/// runtime's worker or blocking thread), else on a thread of its own
/// (inside a current-thread runtime, whose one thread must not block), or
/// on wasmtime-wasi's own runtime outside any.
fn block_on<F: Future + Send>(call: F) -> F::Output
where
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(call))
        }
        Ok(_) => std::thread::scope(|s| {
            s.spawn(|| wasmtime_wasi::runtime::in_tokio(call))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
        Err(_) => wasmtime_wasi::runtime::in_tokio(call),
    }
}

/// What a call is offered, in its component's world version.
enum Offered<V2, V1> {
    V2(V2),
    V1(V1),
}

/// The host's form of a component's outbound requests.
fn requests<R: Into<OutboundRequest>>(reqs: Vec<R>) -> Vec<OutboundRequest> {
    reqs.into_iter().map(Into::into).collect()
}

/// Ends when the call's guest time (wall time less `provider-api` waits)
/// or its wall clock runs out; sleeps until the nearer of the two.
async fn watchdog(started: Instant, api: &ApiClock, timeout: Duration, wall: Duration) -> Cut {
    loop {
        let total = started.elapsed();
        let guest = total.saturating_sub(api.elapsed());
        if total >= wall {
            return Cut::WallClock;
        }
        if guest >= timeout {
            return Cut::Guest;
        }
        tokio::time::sleep((wall - total).min(timeout - guest)).await;
    }
}

/// Ticks until the deadline; one extra tick because the first may come at once.
fn deadline_ticks(timeout: Duration) -> u64 {
    let ticks = timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
    u64::try_from(ticks).unwrap_or(u64::MAX - 1) + 1
}

/// Turns a failed instantiation or call into the host's verdict.
fn classify(
    e: wasmtime::Error,
    store: &Store<Sandbox>,
    limits: &super::Limits,
    instantiating: bool,
) -> MapperError {
    let data = store.data();
    // Limit refusals first: a guest denied memory usually dies of an
    // `unreachable` in its allocator, which says nothing of the cause.
    if data.limiter.memory_refused {
        return MapperError::MemoryLimit {
            limit_bytes: limits.memory_bytes,
        };
    }
    if data.log.exceeded() {
        return MapperError::LogLimit {
            limit_bytes: limits.log_bytes,
        };
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => MapperError::Timeout {
            limit_ms: limits.timeout.as_millis(),
        },
        Some(Trap::StackOverflow) => MapperError::StackOverflow,
        Some(trap) => MapperError::Trap {
            message: trap.to_string(),
            stderr_tail: stderr_tail(&data.log),
        },
        None if instantiating => MapperError::Instantiate { source: boxed(e) },
        None => MapperError::Trap {
            message: format!("{e:#}"),
            stderr_tail: stderr_tail(&data.log),
        },
    }
}

fn stderr_tail(log: &super::sandbox::GuestLog) -> Vec<String> {
    let lines: Vec<String> = log
        .peek_stderr()
        .into_iter()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let skip = lines.len().saturating_sub(STDERR_TAIL);
    lines.into_iter().skip(skip).collect()
}

fn check_requests(requests: &[OutboundRequest], limits: &super::Limits) -> Result<(), MapperError> {
    if requests.len() > limits.max_actions {
        return Err(MapperError::TooManyActions {
            count: requests.len(),
            limit: limits.max_actions,
        });
    }
    let bytes: usize = requests
        .iter()
        .map(|r| {
            r.method.len()
                + r.path.len()
                + r.body.len()
                + r.headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>()
        })
        .sum();
    if bytes > limits.output_bytes {
        return Err(MapperError::OutputTooLarge {
            bytes,
            limit_bytes: limits.output_bytes,
        });
    }
    Ok(())
}

fn check_output(mapped: &Mapped, limits: &super::Limits) -> Result<(), MapperError> {
    if mapped.actions.len() > limits.max_actions {
        return Err(MapperError::TooManyActions {
            count: mapped.actions.len(),
            limit: limits.max_actions,
        });
    }
    let bytes = mapped.to_json().to_string().len();
    if bytes > limits.output_bytes {
        return Err(MapperError::OutputTooLarge {
            bytes,
            limit_bytes: limits.output_bytes,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn guest_text_cannot_forge_log_lines() {
        let cases = [
            ("plain text, “quoted”", "plain text, “quoted”"),
            (
                "ok\n2026-11-30T00:00:00Z INFO forged",
                "ok\\n2026-11-30T00:00:00Z INFO forged",
            ),
            ("a\r\tb", "a\\r\\tb"),
            ("\u{1b}[31mred", "\\u{1b}[31mred"),
            ("line\u{2028}sep", "line\\u{2028}sep"),
        ];
        for (text, want) in cases {
            assert_eq!(escape_controls(text), want, "{text:?}");
        }
    }
}
