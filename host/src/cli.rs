//! The `host` command line.
//!
//! Exit status: 0 success; 1 a test case failed; 2 the command could not
//! run (unreadable mapper, not a component of our world, bad arguments).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Config;
use crate::fixture::report::{self, Format};
use crate::fixture::{RunOptions, collect_files, run_case, update_expectation};
use crate::mapper::{ArtifactCache, ArtifactKey, EngineSettings, Limits, MapperEngine};
use crate::resolve::{BranchConvention, DEFAULT_BRANCH_PATTERN};

#[derive(Debug, Parser)]
#[command(
    name = "host",
    version,
    about = "Sluice: a WebAssembly-sandboxed mapping host for ticket integrations"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server from a YAML config: webhooks, the worker, hot reload, the API.
    Serve(ConfigArgs),
    /// Validate a config file.
    Check(ConfigArgs),
    /// Run a mapper component against fixture files.
    TestMapper(TestMapperArgs),
    /// Start a new mapper in Rust, Python or JavaScript: sources, a build
    /// script, starter fixtures that pass, and a README of next steps.
    NewMapper(NewMapperArgs),
    /// Print a curl command sending a fixture's delivery (or a body file)
    /// to the server, signed as the provider would sign it.
    Sign(SignArgs),
    /// List, show and replay stored deliveries.
    Deliveries {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        command: DeliveriesCommand,
    },
    /// List, show and retry outbound changes (the outbox).
    Outbox {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Run the stale-ticket sweeper once now; `--dry-run` prints what it
    /// would send and records nothing.
    Sweep(SweepArgs),
    /// Load every provider's mapper as `serve` would (artifact cache, world
    /// check, canary fixtures) and print each version, or why it was refused.
    Mappers(ConfigArgs),
    /// Run stored deliveries through a candidate mapper and report where
    /// its actions differ from the live version's; applies nothing.
    Replay(ReplayArgs),
}

#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print the notices due now; record and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Sweep as if it were this moment (RFC 3339) instead of now.
    #[arg(long)]
    pub at: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The candidate component (`.wasm`).
    #[arg(long, required = true)]
    pub shadow: PathBuf,
    /// The provider whose stored deliveries are replayed.
    #[arg(long)]
    pub provider: String,
    /// Only deliveries received after this time (RFC 3339, UTC).
    #[arg(long)]
    pub since: Option<String>,
    /// The newest N deliveries (reported oldest first).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// `text`: one line per delivery and its differences; `json`: one
    /// object per line.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ShadowFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ShadowFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// Newest first, one JSON object a line.
    List {
        #[arg(long)]
        provider: Option<String>,
        #[arg(long)]
        status: Option<crate::store::DeliveryStatus>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The raw delivery, the mapper's output, the error and the history it produced.
    Show { id: String },
    /// Map and apply again (nothing already applied is applied twice).
    Replay {
        /// Delivery ids; or use --status (and --provider) to pick them.
        ids: Vec<String>,
        #[arg(long)]
        provider: Option<String>,
        #[arg(long)]
        status: Option<crate::store::DeliveryStatus>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Newest first, one JSON object a line.
    List {
        #[arg(long)]
        provider: Option<String>,
        #[arg(long)]
        status: Option<crate::store::OutboxStatus>,
        /// A ticket's guid.
        #[arg(long)]
        ticket: Option<String>,
        /// Rows whose last failure has this code (e.g. `auth_failed`).
        #[arg(long)]
        error_code: Option<crate::store::ErrorCode>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The change offered, the requests the mapper made, every attempt.
    Show { id: i64 },
    /// Queue failed or dead rows again (a running host sends them within
    /// its retry tick); resumes at the first request not sent.
    Retry {
        /// Outbox ids; none: every failed or dead row (of --provider).
        ids: Vec<i64>,
        #[arg(long)]
        provider: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// The YAML config file.
    #[arg(long, short, default_value = "sluice.yaml")]
    pub config: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The provider: its verification scheme and secret come from the config.
    #[arg(long)]
    pub provider: String,
    /// A fixture file (its delivery's headers and body) or a raw body file.
    pub file: PathBuf,
    /// The server's base URL (default: from `listen`).
    #[arg(long)]
    pub url: Option<String>,
    /// Ask the server to answer with the applied actions (`?wait=true`).
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, clap::Args)]
pub struct NewMapperArgs {
    /// The mapper's name: the provider it maps, and its file names.
    pub name: String,
    /// The language to write it in.
    #[arg(long, value_enum)]
    pub lang: crate::scaffold::Lang,
    /// Where to put it (default: ./NAME); must be empty or missing.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct TestMapperArgs {
    /// The mapper component (`.wasm`).
    pub mapper: PathBuf,
    /// Fixture files or folders (searched recursively for `.json`).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Rewrite each fixture's `expect` with the mapper's current output.
    #[arg(long)]
    pub update: bool,
    /// Provider name for fixtures that name none (default: the file name,
    /// less `.wasm` and a `_mapper` suffix).
    #[arg(long)]
    pub provider: Option<String>,
    /// The branch convention `branch-ticket-guid` applies.
    #[arg(long, default_value = DEFAULT_BRANCH_PATTERN)]
    pub branch_pattern: String,
    /// Per-call time limit.
    #[arg(long, default_value_t = Limits::default().timeout.as_millis() as u64)]
    pub timeout_ms: u64,
    /// Per-call linear memory limit.
    #[arg(long, default_value_t = Limits::default().memory_bytes >> 20)]
    pub memory_mib: usize,
    /// Folder of precompiled components, so a second run of the same
    /// component skips the compile (default: the host's,
    /// `$XDG_CACHE_HOME/sluice/artifacts`); tagged with the host's key.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Compile the component; read and write no precompiled artifact.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // test-mapper shows a failing case's guest output in its report, so the
    // guest's lines stay out of its log unless asked for with RUST_LOG.
    init_tracing(match cli.command {
        Command::TestMapper(_) => "warn,guest=off",
        Command::Serve(_) | Command::Check(_) => "info",
        Command::Deliveries { .. }
        | Command::Outbox { .. }
        | Command::NewMapper(_)
        | Command::Sign(_)
        | Command::Mappers(_)
        | Command::Sweep(_)
        | Command::Replay(_) => "warn",
    });
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::TestMapper(args) => test_mapper(args),
        Command::NewMapper(args) => {
            let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
            let files = crate::scaffold::scaffold(&args.name, args.lang, &dir)?;
            println!("wrote {} files into {}; next:", files.len(), dir.display());
            println!("{}", crate::scaffold::next_steps(&args.name, &dir));
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => {
            let config = Config::load(&args.config)?;
            crate::outbound::ProviderApis::from_config(&config)?;
            let mappers = crate::app::load_mappers(&config)?;
            let loaded = crate::app::check_mappers(&mappers)?;
            crate::app::check_cache(&mappers)?;
            println!(
                "{}: ok ({} providers, {} mappers loaded)",
                args.config.display(),
                config.providers.len(),
                loaded
            );
            let server = &config.server;
            println!(
                "server: requests time out after {} ms, bodies after {} ms, at most {} at once; database waits {} ms for a connection, statements {} ms (PostgreSQL)",
                server.request_timeout_ms,
                server.body_read_timeout_ms,
                server.max_concurrent_requests,
                config.database_acquire_timeout_ms,
                config.database_statement_timeout_ms,
            );
            println!("{}", config.retention.describe());
            Ok(ExitCode::SUCCESS)
        }
        Command::Mappers(args) => {
            let config = Config::load(&args.config)?;
            let mappers = crate::app::load_mappers(&config)?;
            println!("{:#}", mappers.registry().to_json());
            Ok(if crate::app::check_mappers(&mappers).is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Replay(args) => shadow(args),
        Command::Sweep(args) => sweep(args),
        Command::Serve(args) => serve(args),
        Command::Sign(args) => sign(args),
        Command::Deliveries { config, command } => deliveries(config, command),
        Command::Outbox { config, command } => outbox(config, command),
    }
}

fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config.config)?;
    let Some(sweeper) = config.sweeper()? else {
        anyhow::bail!("{}: no `sweeper:` configured", args.config.config.display());
    };
    let now = match &args.at {
        Some(at) => chrono::DateTime::parse_from_rfc3339(at)
            .with_context(|| format!("--at `{at}` is not an RFC 3339 time"))?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = crate::app::open_store(&config).await?;
        let notices = if args.dry_run {
            sweeper.plan(&store, now).await?
        } else {
            sweeper.sweep(&store, now).await?
        };
        print!("{}", crate::sweeper::render(&notices, now, args.dry_run));
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn outbox(args: ConfigArgs, command: OutboxCommand) -> anyhow::Result<ExitCode> {
    use crate::store::OutboxFilter;
    let config = Config::load(&args.config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = crate::app::open_store(&config).await?;
        match command {
            OutboxCommand::List {
                provider,
                status,
                ticket,
                error_code,
                limit,
            } => {
                let page = store
                    .find_outbox(&OutboxFilter {
                        provider,
                        status,
                        ticket_guid: ticket,
                        error_code,
                        limit,
                        cursor: None,
                    })
                    .await?;
                for row in &page.items {
                    println!(
                        "{}",
                        serde_json::to_string(&crate::api::outbox_summary(row))?
                    );
                }
            }
            OutboxCommand::Show { id } => {
                let row = store
                    .outbox_row(id)
                    .await?
                    .with_context(|| format!("no outbox row {id}"))?;
                let detail = crate::api::outbox_detail(&store, &row).await?;
                println!("{}", serde_json::to_string_pretty(&detail)?);
            }
            OutboxCommand::Retry { ids, provider } => {
                let retried = store.retry_outbox(&ids, provider.as_deref()).await?;
                println!("{}", serde_json::json!({"retried": retried}));
            }
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn deliveries(args: ConfigArgs, command: DeliveriesCommand) -> anyhow::Result<ExitCode> {
    use crate::store::DeliveryFilter;
    let config = Config::load(&args.config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = crate::app::open_store(&config).await?;
        match command {
            DeliveriesCommand::List { provider, status, limit } => {
                let page = store
                    .find_deliveries(&DeliveryFilter { provider, status, limit, ..DeliveryFilter::default() })
                    .await?;
                for d in &page.items {
                    println!("{}", serde_json::to_string(&crate::api::delivery_summary(d))?);
                }
            }
            DeliveriesCommand::Show { id } => {
                let d = store
                    .delivery(&id)
                    .await?
                    .with_context(|| format!("no delivery `{id}`"))?;
                let history = store.history_of_delivery(&id).await?;
                println!("{}", serde_json::to_string_pretty(&crate::api::delivery_detail(&d, &history))?);
            }
            DeliveriesCommand::Replay { mut ids, provider, status, limit } => {
                if ids.is_empty() {
                    let status = status.context("name delivery ids, or --status (e.g. failed) to pick them")?;
                    let page = store
                        .find_deliveries(&DeliveryFilter { provider, status: Some(status), limit, ..DeliveryFilter::default() })
                        .await?;
                    ids = page.items.into_iter().map(|d| d.id).collect();
                }
                let worker = crate::app::worker(&config, store.clone()).await?
                    .context("no provider in the config has a mapper")?;
                for id in ids {
                    match worker.process_now(&id, crate::store::Reclaim::Any).await? {
                        Some(outcome) => println!("{}", serde_json::to_string(&outcome.report(&id))?),
                        None => println!("{}", serde_json::json!({"delivery_id": id, "error": "not found, or being processed"})),
                    }
                }
            }
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    use crate::ingress::dedupe::DedupeKey;
    use crate::ingress::route::Provider;
    let config = Config::load(&args.config.config)?;
    let provider = config
        .providers
        .get(&args.provider)
        .and_then(|c| Provider::from_config(&args.provider, c))
        .with_context(|| {
            format!(
                "{}: no provider `{}` is configured",
                args.config.config.display(),
                args.provider
            )
        })?;
    anyhow::ensure!(
        provider.handshake.is_none(),
        "provider `{}` signs with a secret from its handshake, which only the provider knows",
        args.provider
    );
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let (mut headers, body) =
        sample(&bytes).with_context(|| format!("{}: not a fixture", args.file.display()))?;
    // A fresh delivery id, so sending the sample twice is two deliveries.
    if let DedupeKey::Header(h) = &provider.dedupe {
        set_header(&mut headers, h, &uuid::Uuid::new_v4().to_string());
    }
    let signature = provider
        .verifier
        .sign(&body, chrono::Utc::now().timestamp());
    for (name, value) in &signature.headers {
        set_header(&mut headers, name, value);
    }
    let base = args
        .url
        .unwrap_or_else(|| format!("http://{}", config.listen.replace("0.0.0.0", "127.0.0.1")));
    let mut query = Vec::new();
    if let Some((k, v)) = &signature.query {
        query.push(format!("{k}={v}"));
    }
    if args.wait {
        query.push("wait=true".into());
    }
    let mut url = format!("{}/hooks/{}", base.trim_end_matches('/'), args.provider);
    if !query.is_empty() {
        url = format!("{url}?{}", query.join("&"));
    }
    let body =
        String::from_utf8(body).context("the body is not UTF-8 text: curl it from a file")?;
    let mut line = format!("curl -sS -X POST {}", shell_quote(&url));
    for (name, value) in &headers {
        line.push_str(&format!(" -H {}", shell_quote(&format!("{name}: {value}"))));
    }
    line.push_str(&format!(" --data-binary {}", shell_quote(&body)));
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

type Headers = Vec<(String, String)>;

/// A fixture's delivery headers and body (as the fixture runner sends
/// it), or the whole file as a JSON body.
fn sample(bytes: &[u8]) -> anyhow::Result<(Headers, Vec<u8>)> {
    let json: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    let Some(delivery) = json.as_ref().and_then(|v| v.get("delivery")) else {
        let headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        return Ok((headers, bytes.to_vec()));
    };
    let headers = delivery
        .get("headers")
        .and_then(|h| h.as_object())
        .map(|h| {
            h.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let body = match delivery.get("body") {
        Some(serde_json::Value::String(s)) => s.clone().into_bytes(),
        Some(v) => serde_json::to_vec(v)?,
        None => anyhow::bail!("`delivery.body` is missing"),
    };
    Ok((headers, body))
}

fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    headers.push((name.to_owned(), value.to_owned()));
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn shadow(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    use crate::shadow::{ShadowOptions, replay, summary};
    let config = Config::load(&args.config.config)?;
    let provider = config.providers.get(&args.provider).with_context(|| {
        format!(
            "{}: no provider `{}` is configured",
            args.config.config.display(),
            args.provider
        )
    })?;
    // The server's engine settings, so the candidate runs as it would live.
    let engine = MapperEngine::new(EngineSettings {
        branches: config.branches(),
        max_instances: 4,
        ..EngineSettings::default()
    })?;
    // A key problem is logged by `artifact_cache`; the candidate compiles.
    let cache = crate::reload::artifact_cache(&config)?.ok().flatten();
    let bytes = std::fs::read(&args.shadow)
        .with_context(|| format!("{}: cannot read", args.shadow.display()))?;
    let candidate = engine
        .load_cached(&bytes, cache.as_ref())
        .with_context(|| format!("{}", args.shadow.display()))?;
    let opts = ShadowOptions {
        provider: args.provider.clone(),
        since: args.since.clone(),
        limit: args.limit,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let rows = runtime.block_on(async {
        let store = crate::app::open_store(&config).await?;
        let rows = replay(
            &store,
            &candidate,
            &provider.mapper_config_json().to_string(),
            &opts,
        )
        .await;
        store.close().await;
        anyhow::Ok(rows?)
    })?;
    println!(
        "candidate {} ({})",
        &candidate.content_hash()[..12],
        args.shadow.display()
    );
    for row in &rows {
        match args.format {
            ShadowFormat::Json => println!("{}", row.to_json()),
            ShadowFormat::Text => {
                let live = row
                    .live_mapper
                    .as_deref()
                    .map_or("-", |h| &h[..h.len().min(12)]);
                println!(
                    "{:<16} {} {} (live {live}, {})",
                    row.verdict.as_str().to_uppercase(),
                    row.delivery_id,
                    row.received_at,
                    row.status
                );
                for d in &row.differences {
                    println!("    {d}");
                }
                if matches!(
                    row.verdict,
                    crate::shadow::Verdict::CandidateFails | crate::shadow::Verdict::CandidateMaps
                ) {
                    println!("    live: {}\n    candidate: {}", row.live, row.candidate);
                }
            }
        }
    }
    println!("{}", summary(&rows));
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let app = App::build(&config).await?;
        if let Some(addr) = app.local_addr() {
            tracing::info!(%addr, database = %crate::store::redact(&config.database), "serving");
        }
        let shutdown = CancellationToken::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            trigger.cancel();
        });
        app.run(shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn test_mapper(args: TestMapperArgs) -> anyhow::Result<ExitCode> {
    let branches = BranchConvention::parse(&args.branch_pattern).context("--branch-pattern")?;
    let limits = Limits {
        timeout: Duration::from_millis(args.timeout_ms),
        memory_bytes: args.memory_mib << 20,
        ..Limits::default()
    };
    let engine = MapperEngine::new(EngineSettings {
        limits,
        fuel_metering: true,
        max_instances: 4,
        branches,
        ..EngineSettings::default()
    })?;
    let cache = if args.no_cache {
        None
    } else {
        test_cache(args.cache_dir.clone())
    };
    let mapper = engine
        .load_file_cached(&args.mapper, cache.as_ref())
        .with_context(|| format!("{}", args.mapper.display()))?;
    let files = collect_files(&args.paths)?;
    let opts = RunOptions {
        provider: args
            .provider
            .clone()
            .unwrap_or_else(|| provider_name(&args.mapper)),
    };

    let started = Instant::now();
    let results: Vec<_> = files.iter().map(|f| run_case(&mapper, f, &opts)).collect();
    let total = started.elapsed();

    if args.update {
        for r in results.iter().filter(|r| !r.passed()) {
            if let Some(actual) = &r.actual {
                update_expectation(&r.file, actual)?;
                eprintln!("updated {}", r.file.display());
            }
        }
    }
    let info = report::MapperInfo {
        label: args.mapper.display().to_string(),
        size: mapper.size(),
        origin: mapper.origin().as_str(),
        load_time: mapper.load_time(),
    };
    print!("{}", report::render(args.format, &info, &results, total));
    let failed = results
        .iter()
        .any(|r| !r.passed() && (!args.update || r.actual.is_none()));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The artifact cache test-mapper uses: `dir`, else the host's default
/// folder, under the host's key. The cache only saves time, so a folder or
/// key it cannot use is a warning and a compile, not a failed run.
fn test_cache(dir: Option<PathBuf>) -> Option<ArtifactCache> {
    let dir = dir.or_else(ArtifactCache::default_dir)?;
    let key = ArtifactCache::check_folder(&dir).and_then(|()| {
        ArtifactKey::default_file()
            .ok_or(crate::mapper::CacheError::NoKeyFile)
            .and_then(|path| ArtifactKey::load_or_create(&path))
    });
    match key {
        Ok(key) => Some(ArtifactCache::new(dir, key)),
        Err(e) => {
            tracing::warn!(error = %e, "artifact cache off: the component is compiled");
            None
        }
    }
}

/// `mappers/bitbucket_mapper.wasm` → `bitbucket`.
fn provider_name(mapper: &Path) -> String {
    let stem = mapper
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("mapper");
    stem.strip_suffix("_mapper")
        .or_else(|| stem.strip_suffix("-mapper"))
        .unwrap_or(stem)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_name_comes_from_the_file() {
        for (file, want) in [
            ("a/bitbucket_mapper.wasm", "bitbucket"),
            ("github-mapper.wasm", "github"),
            ("slack.wasm", "slack"),
        ] {
            assert_eq!(provider_name(Path::new(file)), want);
        }
    }
}
