//! `sluice-load`: load from outside against running `host serve`
//! processes — signed Bitbucket PR comments on one ticket, the way
//! operators see it: acknowledged while the worker processes, and a
//! backlog that must not grow.
//!
//! - `sustain --rates 2000,3000,…`: each offered rate in turn for
//!   `--duration` seconds (open loop): ack p50/p99, processed/s, the inbox
//!   depth's growth; the highest rate whose backlog stayed flat, and the
//!   highest that also kept the ack p99 within 25 ms.
//! - `closed [--wait]`: every connection back to back (wrk-like): ack/s and
//!   latency; `--wait` asks `?wait=true`; `--drain` then times the backlog
//!   to empty.
//!
//! `scripts/load` starts the hosts (SQLite; PostgreSQL with one and two
//! replicas) and runs these.

mod bodies;
mod scrape;
mod traffic;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use bodies::Bodies;
use scrape::Sample;
use traffic::{Run, Target};

#[derive(Parser)]
#[command(name = "sluice-load", about = "Signed webhook load against host serve")]
struct Cli {
    /// A host's base URL (repeat for replicas sharing a database).
    #[arg(long = "url", required = true)]
    urls: Vec<String>,
    /// The Bitbucket provider's `verify.secret`.
    #[arg(long, default_value = "bb-secret-0123456789")]
    secret: String,
    /// The Bitbucket mapper's fixture folder.
    #[arg(long, default_value = "mappers/bitbucket/fixtures")]
    fixtures: PathBuf,
    /// A host's process id, to report its memory (repeat per host).
    #[arg(long = "pid")]
    pids: Vec<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Offered rates in turn, open loop; stops after the first whose
    /// backlog grew.
    Sustain {
        /// Deliveries per second, in increasing order.
        #[arg(long, value_delimiter = ',', required = true)]
        rates: Vec<f64>,
        /// Seconds per rate.
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// Seconds at the start of each rate not judged (warm-up).
        #[arg(long, default_value_t = 5)]
        warmup: u64,
        #[arg(long, short = 'c', default_value_t = 64)]
        connections: usize,
        /// Try every rate even after one failed.
        #[arg(long)]
        keep_going: bool,
    },
    /// Every connection back to back for a while.
    Closed {
        #[arg(long, default_value_t = 10)]
        duration: u64,
        #[arg(long, short = 'c', default_value_t = 64)]
        connections: usize,
        /// `?wait=true`: each answer waits for the delivery's outcome.
        #[arg(long)]
        wait: bool,
        /// Then wait for the inbox to empty and report the drain rate.
        #[arg(long)]
        drain: bool,
    },
}

/// Growth of the backlog over a judged window, as a share of what was
/// offered in it, above which the backlog is not flat.
const GROWTH_LIMIT: f64 = 0.02;

/// The acknowledgement p99 an operator's target asks of a flat rate
/// (5,000/s on two cores with p99 ≤ 25 ms): the summary names the highest
/// flat rate that met it too.
const P99_TARGET_MS: f64 = 25.0;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Two threads: enough for 10k requests/s, and leaves the host the rest
    // of a small machine.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let bodies = Bodies::load(&cli.fixtures, &cli.secret)?;
    let urls: Vec<String> = cli
        .urls
        .iter()
        .map(|u| u.trim_end_matches('/').to_owned())
        .collect();
    let target = Target {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(60))
            .build()?,
        urls: Arc::new(urls),
        bodies: Arc::new(bodies),
        sent: Arc::default(),
    };
    // The ticket the comments land on.
    let pr = target.bodies.pull_request();
    target
        .conn(0)
        .post(&pr, true)
        .await
        .map_err(anyhow::Error::msg)
        .context("cannot create the pull request's ticket")?;
    match cli.command {
        Command::Sustain {
            rates,
            duration,
            warmup,
            connections,
            keep_going,
        } => {
            sustain(
                &target,
                &cli.pids,
                &rates,
                Duration::from_secs(duration),
                Duration::from_secs(warmup),
                connections,
                keep_going,
            )
            .await
        }
        Command::Closed {
            duration,
            connections,
            wait,
            drain,
        } => {
            closed(
                &target,
                &cli.pids,
                Duration::from_secs(duration),
                connections,
                wait,
                drain,
            )
            .await
        }
    }
}

async fn sustain(
    target: &Target,
    pids: &[u32],
    rates: &[f64],
    duration: Duration,
    warmup: Duration,
    connections: usize,
    keep_going: bool,
) -> anyhow::Result<()> {
    if warmup >= duration {
        bail!("--warmup must be shorter than --duration");
    }
    println!(
        "{:>8} {:>9} {:>8} {:>8} {:>8} {:>12} {:>9} {:>9} {:>8} {:>7}  verdict",
        "offered",
        "acked/s",
        "p50 ms",
        "p99 ms",
        "p99.9",
        "processed/s",
        "depth@wu",
        "depth@end",
        "rss MiB",
        "errors"
    );
    let mut best: Option<(f64, String)> = None;
    let mut best_within_target: Option<f64> = None;
    for &rate in rates {
        settle(target).await?;
        let sampler = Sampler::start(target.clone());
        let run = target.open(rate, duration, connections).await;
        let samples = sampler.stop().await?;
        let judged = window(&samples, warmup);
        let (Some(first), Some(last)) = (judged.first(), judged.last()) else {
            bail!("no metrics read during the run");
        };
        let secs = last.at.duration_since(first.at).as_secs_f64().max(1e-9);
        let processed = (last.applied - first.applied) / secs;
        let growth = last.depth - first.depth;
        let flat = growth <= GROWTH_LIMIT * rate * secs;
        let offered = run.ok_per_sec() >= 0.98 * rate;
        let errors = run.failed + (last.failed - samples[0].failed) as u64;
        let rss = memory_text(pids);
        let verdict = if errors > 0 {
            "errors"
        } else if !flat {
            "backlog grows"
        } else if !offered {
            "rate not reached"
        } else {
            "flat"
        };
        let row = format!(
            "{:>8.0} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>12.0} {:>9.0} {:>9.0} {:>8} {:>7}  {verdict}",
            rate,
            run.ok_per_sec(),
            run.percentile_ms(0.5),
            run.percentile_ms(0.99),
            run.percentile_ms(0.999),
            processed,
            first.depth,
            last.depth,
            rss,
            errors,
        );
        println!("{row}");
        if let Some(e) = &run.first_failure {
            println!("    first failure: {e}");
        }
        if verdict == "flat" {
            if run.percentile_ms(0.99) <= P99_TARGET_MS {
                best_within_target = Some(rate);
            }
            best = Some((rate, row));
        } else if !keep_going {
            break;
        }
    }
    match best {
        Some((rate, _)) => println!("highest flat rate: {rate:.0}/s"),
        None => println!("highest flat rate: none of those offered"),
    }
    match best_within_target {
        Some(rate) => println!("highest flat rate with ack p99 <= {P99_TARGET_MS} ms: {rate:.0}/s"),
        None => {
            println!("highest flat rate with ack p99 <= {P99_TARGET_MS} ms: none of those offered")
        }
    }
    Ok(())
}

async fn closed(
    target: &Target,
    pids: &[u32],
    duration: Duration,
    connections: usize,
    wait: bool,
    drain: bool,
) -> anyhow::Result<()> {
    let before = scrape::sample(&target.http, &target.urls).await?;
    let run = target.closed(duration, connections, wait).await;
    let at_end = scrape::sample(&target.http, &target.urls).await?;
    report_closed(&run, connections, wait);
    println!(
        "    processed while sending: {:.0}/s; backlog at the end {:.0}; rss {}",
        (at_end.applied - before.applied) / run.elapsed.as_secs_f64(),
        at_end.depth,
        memory_text(pids)
    );
    if drain {
        let done = settle(target).await?;
        let secs = done.at.duration_since(at_end.at).as_secs_f64();
        println!(
            "    drain: {:.0} waiting took {:.2} s: {:.0}/s",
            at_end.depth,
            secs,
            (done.applied - at_end.applied) / secs.max(1e-9)
        );
    }
    Ok(())
}

fn report_closed(run: &Run, connections: usize, wait: bool) {
    println!(
        "{} at {connections} connections: {:.0}/s answered 2xx over {:.1} s, p50 {:.2} ms, p99 {:.2} ms, {} failed, {} cut off at the end",
        if wait { "wait=true" } else { "acknowledged" },
        run.ok_per_sec(),
        run.elapsed.as_secs_f64(),
        run.percentile_ms(0.5),
        run.percentile_ms(0.99),
        run.failed,
        run.cut,
    );
    if let Some(e) = &run.first_failure {
        println!("    first failure: {e}");
    }
}

fn memory_text(pids: &[u32]) -> String {
    let m = scrape::memory(pids);
    if m.is_empty() {
        return "-".into();
    }
    m.iter()
        .map(|(now, peak)| format!("{now:.0}/{peak:.0}"))
        .collect::<Vec<_>>()
        .join("+")
}

/// Waits (up to 10 minutes) for the inbox to be empty; the reading then.
async fn settle(target: &Target) -> anyhow::Result<Sample> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        let s = scrape::sample(&target.http, &target.urls).await?;
        if s.depth == 0.0 {
            return Ok(s);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "the inbox did not empty in 10 minutes ({} waiting)",
                s.depth
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Samples from `warmup` on.
fn window(samples: &[Sample], warmup: Duration) -> Vec<Sample> {
    let Some(first) = samples.first() else {
        return Vec::new();
    };
    samples
        .iter()
        .filter(|s| s.at.duration_since(first.at) >= warmup)
        .copied()
        .collect()
}

/// Reads the hosts' metrics every second while a run goes on.
struct Sampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<Vec<Sample>>>,
}

impl Sampler {
    fn start(target: Target) -> Sampler {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut out = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => out.push(scrape::sample(&target.http, &target.urls).await?),
                }
            }
            out.push(scrape::sample(&target.http, &target.urls).await?);
            Ok(out)
        });
        Sampler { stop, task }
    }

    async fn stop(self) -> anyhow::Result<Vec<Sample>> {
        let _ = self.stop.send(());
        self.task.await.context("metrics sampler failed")?
    }
}
