//! Hot reload and start-up, measured (DESIGN.md "Performance budgets"):
//!
//! - start-up with every built-in mapper (Bitbucket and GitHub, each with
//!   its fixtures as the canary): the mapper part alone (engine, load,
//!   canary) and the whole `App::build` (store opened and migrated,
//!   listener bound, mappers loaded), cold (an empty artifact cache) and
//!   from the cache;
//! - reload latency: from writing a new release of the Bitbucket component
//!   (written elsewhere and renamed into the watched folder, as a deploy
//!   does) to the registry serving its hash — a never-seen release (compiled
//!   by cranelift) and a release seen before (from the cache), with the
//!   default 50 ms debounce included.
//!
//! Medians (with min and max) over several runs; not a criterion bench
//! because each sample is a whole start or reload, and the figures are
//! compared with budgets stated as single numbers.
//!
//! Run: `./scripts/build-components && cargo bench -p host --bench reload`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use host::app::App;
use host::config::Config;
use host::reload::Reloader;

const RUNS: usize = 9;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn component(name: &str) -> Vec<u8> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let wasm = target.join(format!("wasm32-wasip2/component/{name}.wasm"));
    std::fs::read(&wasm)
        .unwrap_or_else(|e| panic!("{}: {e} (run ./scripts/build-components)", wasm.display()))
}

/// A mappers folder with both built-in mappers and their fixtures, and a
/// config naming it; `cache` is the artifact cache folder.
fn deploy(dir: &Path, cache: &Path) -> Config {
    let mappers = dir.join("mappers");
    for (provider, package) in [
        ("bitbucket", "bitbucket_mapper"),
        ("github", "github_mapper"),
    ] {
        let fixtures = mappers.join(format!("{provider}.fixtures"));
        std::fs::create_dir_all(&fixtures).expect("mkdir");
        for e in std::fs::read_dir(workspace().join("mappers").join(provider).join("fixtures"))
            .expect("fixtures")
        {
            let p = e.expect("entry").path();
            std::fs::copy(&p, fixtures.join(p.file_name().expect("name"))).expect("copy");
        }
        std::fs::write(mappers.join(format!("{provider}.wasm")), component(package))
            .expect("write");
    }
    let directory: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            workspace().join("mappers/bitbucket/fixtures/pr_created_other_branch.json"),
        )
        .expect("fixture"),
    )
    .expect("json");
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{}\"\nmappers:\n  dir: mappers\n  cache_dir: \"{}\"\nproviders:\n  bitbucket:\n    verify: {{secret: s-0123456789abcdef}}\n    mapper_config: {}\n  github:\n    verify: {{secret: s-0123456789abcdef}}\n",
        dir.join("sluice.db").display(),
        cache.display(),
        directory["config"]
    );
    let path = dir.join("sluice.yaml");
    std::fs::write(&path, yaml).expect("config");
    Config::load(&path).expect("config loads")
}

/// A new release of the same rules: a custom section makes new content.
fn release(bytes: &[u8], n: usize) -> Vec<u8> {
    let name = b"bench-release";
    let tag = n.to_string();
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    out.push(payload.len() as u8);
    out.extend(payload);
    out
}

fn stats(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{label:<58} median {:>8.2} ms   min {:>8.2}   max {:>8.2}   ({} runs)",
        ms(samples[samples.len() / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
}

fn start_up(rt: &tokio::runtime::Runtime) {
    let mut mappers_cold = Vec::new();
    let mut mappers_cached = Vec::new();
    let mut app_cold = Vec::new();
    let mut app_cached = Vec::new();
    let mut parts = Vec::new();
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("cache");
        let config = deploy(dir.path(), &cache);

        // Mappers alone: engine, read, compile or deserialize, world
        // check, canary fixtures.
        let started = Instant::now();
        let r = Reloader::new(&config, Arc::default()).expect("reloader");
        r.load_all();
        mappers_cold.push(started.elapsed());
        assert_eq!(r.registry().providers().len(), 2);
        drop(r);
        let started = Instant::now();
        let r = Reloader::new(&config, Arc::default()).expect("reloader");
        r.load_all();
        mappers_cached.push(started.elapsed());
        assert_eq!(r.registry().providers().len(), 2);
        parts.push(breakdown(&r));
        drop(r);

        // The whole App::build, on a fresh cache and then on the warm one.
        let _ = std::fs::remove_dir_all(&cache);
        let _ = std::fs::remove_file(dir.path().join("sluice.db"));
        let started = Instant::now();
        let app = rt.block_on(App::build(&config)).expect("app");
        app_cold.push(started.elapsed());
        drop(app);
        let started = Instant::now();
        let app = rt.block_on(App::build(&config)).expect("app");
        app_cached.push(started.elapsed());
        assert_eq!(app.mappers().providers().len(), 2);
        drop(app);
    }
    stats(
        "start-up, mappers only (2 built-in), cold cache",
        mappers_cold,
    );
    stats(
        "start-up, mappers only (2 built-in), from cache",
        mappers_cached,
    );
    stats(
        "start-up, App::build (store + mappers), cold cache",
        app_cold,
    );
    stats(
        "start-up, App::build (store + mappers), from cache",
        app_cached,
    );
    println!(
        "  from cache, last run, per mapper: {}",
        parts.last().map(String::as_str).unwrap_or("")
    );
}

/// `bitbucket: load 0.4 ms (cache), canary 21 fixtures 12.3 ms; ...`
fn breakdown(r: &Reloader) -> String {
    let listing = r.registry().to_json();
    let parts: Vec<String> = listing["mappers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let v = &m["version"];
            format!(
                "{}: load {:.2} ms ({}), canary {} fixtures {:.2} ms",
                m["provider"].as_str().unwrap_or(""),
                v["load_ms"].as_f64().unwrap_or(0.0),
                v["origin"].as_str().unwrap_or(""),
                v["canary"]["total"],
                v["canary"]["ms"].as_f64().unwrap_or(0.0)
            )
        })
        .collect();
    parts.join("; ")
}

fn reload(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = deploy(dir.path(), &dir.path().join("cache"));
    let original = component("bitbucket_mapper");
    println!("bitbucket component: {} KB", original.len() / 1024);
    let wasm = dir.path().join("mappers/bitbucket.wasm");
    rt.block_on(async {
        let app = App::build(&config).await.expect("app");
        let mappers = app.mappers().clone();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(app.run(shutdown.clone()));
        let mut fresh = Vec::new();
        let mut seen = Vec::new();
        let mut compile = Vec::new();
        let mut canary = Vec::new();
        let releases: Vec<Vec<u8>> = (0..RUNS).map(|n| release(&original, n)).collect();
        for (i, bytes) in releases.iter().enumerate() {
            fresh.push(install(&mappers, &wasm, bytes).await);
            let v = &mappers.to_json()["mappers"][0]["version"];
            compile.push(Duration::from_secs_f64(
                v["load_ms"].as_f64().unwrap_or(0.0) / 1e3,
            ));
            canary.push(Duration::from_secs_f64(
                v["canary"]["ms"].as_f64().unwrap_or(0.0) / 1e3,
            ));
            // Back to the previous release: its artifact is cached.
            let back = if i == 0 { &original } else { &releases[i - 1] };
            seen.push(install(&mappers, &wasm, back).await);
        }
        stats(
            "reload, file written -> serving, new release (compile)",
            fresh,
        );
        stats("  of which compile and world check", compile);
        stats("  of which canary (21 fixtures)", canary);
        stats(
            "reload, file written -> serving, release seen before (cache)",
            seen,
        );
        shutdown.cancel();
        let _ = server.await;
    });
}

/// Writes `bytes` beside the watched file, renames it over, and times
/// until the registry serves its hash.
async fn install(mappers: &host::reload::MapperRegistry, wasm: &Path, bytes: &[u8]) -> Duration {
    let want = host::mapper::content_hash(bytes);
    let tmp = wasm.with_extension("incoming");
    let started = Instant::now();
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, wasm).expect("rename");
    let deadline = started + Duration::from_secs(10);
    while mappers.current_hash("bitbucket").as_deref() != Some(want.as_str()) {
        assert!(Instant::now() < deadline, "release never served");
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    started.elapsed()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it once.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    start_up(&rt);
    reload(&rt);
}
