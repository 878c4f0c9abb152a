//! One mapper call with a fresh `Store`: the Bitbucket component on its
//! ~7 KB `pullrequest:approved` fixture, epoch deadline on, pooling against
//! on-demand allocation side by side. After criterion's estimate, a
//! percentile pass prints p50/p99 over many single calls, since the budget
//! is stated in percentiles.
//!
//! Run: `./scripts/build-components && cargo bench -p host --bench mapper_call`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::Criterion;
use host::mapper::{Delivery, EngineSettings, LoadedMapper, MapperEngine, NoProviderApi};
use serde_json::Value;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(pooling: bool) -> LoadedMapper {
    load_component("bitbucket_mapper", pooling)
}

fn load_component(name: &str, pooling: bool) -> LoadedMapper {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let wasm = target.join(format!("wasm32-wasip2/component/{name}.wasm"));
    let engine = MapperEngine::new(EngineSettings {
        pooling,
        ..EngineSettings::default()
    })
    .expect("engine");
    engine
        .load_file(&wasm)
        .unwrap_or_else(|e| panic!("{}: {e} (run ./scripts/build-components)", wasm.display()))
}

fn fixture() -> (Delivery, String) {
    let path = workspace().join("mappers/bitbucket/fixtures/pr_approved_partial.json");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    let headers = doc["delivery"]["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let delivery = Delivery {
        provider: "bitbucket".into(),
        method: "POST".into(),
        path: "/hooks/bitbucket".into(),
        headers,
        body: doc["delivery"]["body"].to_string().into_bytes(),
        received_at: "2026-11-20T09:12:45Z".into(),
    };
    (delivery, doc["config"].to_string())
}

fn call(mapper: &LoadedMapper, delivery: &Delivery, config: &str) {
    let outcome = mapper.map_inbound(delivery, config, Box::new(NoProviderApi));
    assert!(matches!(outcome.result, Ok(Ok(_))), "{:?}", outcome.result);
}

fn percentiles(label: &str, mapper: &LoadedMapper, delivery: &Delivery, config: &str) {
    for _ in 0..2_000 {
        call(mapper, delivery, config);
    }
    let mut samples: Vec<Duration> = (0..20_000)
        .map(|_| {
            let t = Instant::now();
            call(mapper, delivery, config);
            t.elapsed()
        })
        .collect();
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e6;
    println!(
        "{label}: body {} B, p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs ({} calls)",
        delivery.body.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0),
        samples.len()
    );
}

fn main() {
    let (delivery, config) = fixture();
    let pooled = load(true);
    let on_demand = load(false);
    // The fixed cost of a call: a guest that parses nothing.
    let empty = load_component("hostile_guest", true);
    let empty_config = r#"{"mode":"ok"}"#;

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("mapper_call");
    group.bench_function("pooling", |b| b.iter(|| call(&pooled, &delivery, &config)));
    group.bench_function("on_demand", |b| {
        b.iter(|| call(&on_demand, &delivery, &config))
    });
    group.bench_function("fixed_cost", |b| {
        b.iter(|| call(&empty, &delivery, empty_config))
    });
    group.finish();
    c.final_summary();

    percentiles("pooling  ", &pooled, &delivery, &config);
    percentiles("on-demand", &on_demand, &delivery, &config);
    percentiles("fixed    ", &empty, &delivery, empty_config);
}
