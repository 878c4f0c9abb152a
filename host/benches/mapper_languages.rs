//! The same mapper in Rust, Python and JavaScript on the same delivery:
//! the starters `host new-mapper` writes, which implement the same rules,
//! on their `create.json` fixture. Prints, per language, the component's
//! size, its compile time, and p50/p99 of single calls (a fresh `Store`
//! each, the server's engine settings: no fuel metering).
//!
//! Run: `./scripts/try-new-mapper && cargo bench -p host --bench mapper_languages`
//! (try-new-mapper leaves the starters as `starter_{rust,python,js}.wasm`
//! beside the other components).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use host::mapper::{Delivery, EngineSettings, LoadedMapper, MapperEngine, NoProviderApi};
use serde_json::Value;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn component(name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join(format!("wasm32-wasip2/component/{name}.wasm"))
}

/// The starters' `create.json`, with the provider name they were made with.
fn fixture() -> (Delivery, String) {
    let path = workspace().join("host/templates/fixtures/create.json");
    let text = std::fs::read_to_string(path)
        .expect("fixture")
        .replace("{{name}}", "acme");
    let doc: Value = serde_json::from_str(&text).expect("json");
    let delivery = Delivery {
        provider: "acme".into(),
        method: "POST".into(),
        path: "/hooks/acme".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: doc["delivery"]["body"].to_string().into_bytes(),
        received_at: "2026-11-20T09:12:45Z".into(),
    };
    (delivery, doc["config"].to_string())
}

fn call(mapper: &LoadedMapper, delivery: &Delivery, config: &str) {
    let outcome = mapper.map_inbound(delivery, config, Box::new(NoProviderApi));
    assert!(matches!(outcome.result, Ok(Ok(_))), "{:?}", outcome.result);
}

fn main() {
    let (delivery, config) = fixture();
    let engine = MapperEngine::new(EngineSettings::default()).expect("engine");
    for lang in ["rust", "python", "js"] {
        let wasm = component(&format!("starter_{lang}"));
        let mapper = engine.load_file(&wasm).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run ./scripts/try-new-mapper first)",
                wasm.display()
            )
        });
        for _ in 0..100 {
            call(&mapper, &delivery, &config);
        }
        let mut samples: Vec<Duration> = (0..2_000)
            .map(|_| {
                let t = Instant::now();
                call(&mapper, &delivery, &config);
                t.elapsed()
            })
            .collect();
        samples.sort();
        let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;
        println!(
            "{lang:<6}: {:>5.1} MB, compiled in {:>6.0} ms, call p50 {:.3} ms, p99 {:.3} ms ({} calls)",
            mapper.size() as f64 / 1e6,
            mapper.load_time().as_secs_f64() * 1e3,
            at(0.50),
            at(0.99),
            samples.len()
        );
    }
}
