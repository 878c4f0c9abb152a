//! The sandbox holds against a hostile component: each misbehaviour fails
//! its own call with a typed error and the same engine keeps serving.

use std::sync::Arc;
use std::time::Duration;

use host::action::{Action, MapErrorKind};
use host::mapper::{
    ApiFailure, ApiRequest, ApiResponse, Delivery, EngineSettings, Limits, LoadedMapper, LogSource,
    MapperEngine, MapperError, NoProviderApi, ProviderApi,
};

use crate::helpers::component;

fn engine(timeout: Duration) -> MapperEngine {
    MapperEngine::new(EngineSettings {
        limits: Limits {
            memory_bytes: 32 << 20,
            timeout,
            ..Limits::default()
        },
        ..EngineSettings::default()
    })
    .expect("engine")
}

fn hostile(engine: &MapperEngine) -> LoadedMapper {
    engine
        .load_file(&component("hostile-guest"))
        .expect("hostile guest loads")
}

fn delivery() -> Delivery {
    Delivery {
        provider: "hostile".into(),
        method: "POST".into(),
        path: "/hooks/hostile".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: br#"{"hello":"world"}"#.to_vec(),
        received_at: "2026-01-01T00:00:00Z".into(),
    }
}

fn call(mapper: &LoadedMapper, mode: &str) -> host::mapper::CallOutcome<host::action::Mapped> {
    mapper.map_inbound(
        &delivery(),
        &format!(r#"{{"mode":"{mode}"}}"#),
        Box::new(NoProviderApi),
    )
}

/// The comment text of a successful one-action answer.
fn note(mapper: &LoadedMapper, mode: &str) -> String {
    let outcome = call(mapper, mode);
    match outcome.result {
        Ok(Ok(m)) => match m.actions.as_slice() {
            [Action::Comment { comment, .. }] => comment.clone(),
            other => panic!("{mode}: unexpected actions {other:?}"),
        },
        other => panic!("{mode}: unexpected result {other:?}"),
    }
}

fn assert_still_serves(mapper: &LoadedMapper) {
    assert_eq!(note(mapper, "ok"), "17 bytes");
}

#[test]
fn each_misbehaviour_fails_only_its_call() {
    let engine = engine(Duration::from_millis(200));
    let mapper = hostile(&engine);
    let cases: [(&str, &str); 7] = [
        ("loop", "timeout"),
        ("memory", "memory_limit"),
        ("recursion", "stack_overflow"),
        ("huge_output", "output_too_large"),
        ("many_actions", "too_many_actions"),
        ("stdout_flood", "log_limit"),
        ("log_flood", "log_limit"),
    ];
    for (mode, kind) in cases {
        let outcome = call(&mapper, mode);
        match outcome.result {
            Err(e) => assert_eq!(e.kind(), kind, "{mode}: {e}"),
            Ok(r) => panic!("{mode}: expected {kind}, got {r:?}"),
        }
        assert_still_serves(&mapper);
    }
}

#[test]
fn a_panic_is_a_trap_carrying_the_guests_own_message() {
    let engine = engine(Duration::from_secs(1));
    let mapper = hostile(&engine);
    let err = call(&mapper, "panic").result.expect_err("panic traps");
    assert!(matches!(err, MapperError::Trap { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("boom: the hostile mapper gave up on purpose"),
        "{text}"
    );
    assert_still_serves(&mapper);
}

#[test]
fn a_map_error_is_the_mappers_answer_and_its_stderr_is_kept() {
    let engine = engine(Duration::from_secs(1));
    let mapper = hostile(&engine);
    let outcome = call(&mapper, "stderr_then_error");
    let err = outcome
        .result
        .expect("no host error")
        .expect_err("map error");
    assert_eq!(err.kind, MapErrorKind::Internal);
    assert_eq!(err.message, "refused");
    assert!(
        outcome
            .report
            .logs
            .iter()
            .any(|l| l.source == LogSource::Stderr && l.text == "hostile: about to refuse")
    );
}

#[test]
fn every_call_gets_a_fresh_instance() {
    let engine = engine(Duration::from_secs(1));
    let mapper = hostile(&engine);
    for _ in 0..3 {
        assert_eq!(note(&mapper, "calls"), "1", "state leaked between calls");
    }
}

#[test]
fn the_guest_sees_no_environment_files_or_network() {
    let engine = engine(Duration::from_secs(1));
    let mapper = hostile(&engine);
    assert_eq!(note(&mapper, "escape"), "env=0 args=0 fs=false net=false");
}

struct AlwaysOk;

#[async_trait::async_trait]
impl ProviderApi for AlwaysOk {
    async fn call(&mut self, _request: &ApiRequest) -> Result<ApiResponse, ApiFailure> {
        Ok(ApiResponse {
            status: 200,
            headers: Vec::new(),
            body: b"{}".to_vec(),
        })
    }
}

#[test]
fn provider_api_calls_are_budgeted_per_call() {
    let engine = MapperEngine::new(EngineSettings {
        limits: Limits {
            api_calls: 5,
            ..Limits::default()
        },
        ..EngineSettings::default()
    })
    .expect("engine");
    let mapper = hostile(&engine);
    for _ in 0..2 {
        let outcome =
            mapper.map_inbound(&delivery(), r#"{"mode":"api_budget"}"#, Box::new(AlwaysOk));
        let mapped = outcome.result.expect("ok").expect("mapped");
        let [Action::Comment { comment, .. }] = mapped.actions.as_slice() else {
            panic!("{mapped:?}")
        };
        assert_eq!(comment, "answered=5 then=budget_exhausted");
        assert_eq!(outcome.report.api_calls, 5);
    }
}

/// An API that never answers, like a provider behind a black hole.
struct NeverAnswers;

#[async_trait::async_trait]
impl ProviderApi for NeverAnswers {
    async fn call(&mut self, _request: &ApiRequest) -> Result<ApiResponse, ApiFailure> {
        std::future::pending().await
    }
}

#[test]
fn a_guest_asleep_in_wasi_is_cut_at_its_time_limit() {
    // No wasm runs while the guest waits in `poll`, so the epoch deadline
    // alone would leave it asleep for its hour.
    let engine = engine(Duration::from_millis(200));
    let mapper = hostile(&engine);
    let err = call(&mapper, "sleep").result.expect_err("cut");
    assert_eq!(err.kind(), "timeout", "{err}");
    assert_still_serves(&mapper);
}

#[test]
fn a_provider_api_that_never_answers_is_cut_at_the_wall_clock() {
    let engine = MapperEngine::new(EngineSettings {
        limits: Limits {
            wall_clock: Duration::from_millis(300),
            ..Limits::default()
        },
        ..EngineSettings::default()
    })
    .expect("engine");
    let mapper = hostile(&engine);
    let outcome = mapper.map_inbound(
        &delivery(),
        r#"{"mode":"hang_api"}"#,
        Box::new(NeverAnswers),
    );
    let err = outcome.result.expect_err("cut");
    assert!(
        matches!(err, MapperError::WallClock { limit_ms: 300 }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("wall-clock limit of 300 ms"),
        "{err}"
    );
    // Cut while waiting on the API: the provider's trouble, retried.
    assert_eq!(outcome.report.api_calls, 1);
    assert_eq!(outcome.report.api_transient_failures, 1);
    assert_still_serves(&mapper);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cut_by_the_wall_clock_hold_no_thread_meanwhile() {
    // Eight calls waiting on a dead API and eight asleep, on a runtime of
    // two threads: a call that still held its thread would starve the
    // healthy calls started after them.
    let engine = MapperEngine::new(EngineSettings {
        limits: Limits {
            timeout: Duration::from_secs(20),
            wall_clock: Duration::from_secs(20),
            ..Limits::default()
        },
        ..EngineSettings::default()
    })
    .expect("engine");
    let mapper = Arc::new(hostile(&engine));
    let mut stuck = Vec::new();
    for mode in ["hang_api", "sleep"].repeat(8) {
        let mapper = mapper.clone();
        stuck.push(tokio::spawn(async move {
            let config = format!(r#"{{"mode":"{mode}"}}"#);
            mapper
                .map_inbound_async(
                    &delivery(),
                    &config,
                    Box::new(NeverAnswers),
                    Default::default(),
                )
                .await
                .result
                .map(|_| ())
        }));
    }
    for _ in 0..20 {
        let outcome = mapper
            .map_inbound_async(
                &delivery(),
                r#"{"mode":"ok"}"#,
                Box::new(NoProviderApi),
                Default::default(),
            )
            .await;
        assert!(matches!(outcome.result, Ok(Ok(_))), "{:?}", outcome.result);
    }
    assert!(
        stuck.iter().all(|t| !t.is_finished()),
        "a stuck call ended early"
    );
    for t in stuck {
        t.abort();
    }
}

#[test]
fn a_runaway_call_does_not_hold_up_other_calls() {
    let engine = engine(Duration::from_secs(5));
    let mapper = Arc::new(hostile(&engine));
    let runaway = {
        let mapper = mapper.clone();
        std::thread::spawn(move || call(&mapper, "loop").result.map(|_| ()))
    };
    for _ in 0..20 {
        assert_still_serves(&mapper);
    }
    assert!(
        !runaway.is_finished(),
        "the runaway call ended before its 5 s deadline"
    );
    let err = runaway.join().expect("thread").expect_err("times out");
    assert_eq!(err.kind(), "timeout");
}

#[test]
fn components_of_another_world_are_refused_by_name() {
    let engine = engine(Duration::from_secs(1));
    let err = engine
        .load_file(&component("other-world-guest"))
        .err()
        .expect("refused");
    assert_eq!(err.kind(), "wrong_world");
    assert!(
        err.to_string().contains("sluice:mapper/mapper@0.2.0"),
        "{err}"
    );

    let core_module = b"\0asm\x01\0\0\0";
    assert_eq!(
        engine.load(core_module).err().expect("refused").kind(),
        "core_module"
    );
    assert_eq!(
        engine.load(b"hello").err().expect("refused").kind(),
        "not_wasm"
    );
}

#[test]
fn a_component_built_against_0_1_keeps_loading_and_mapping_both_ways() {
    use host::change::{
        CaptureKind, ChangeKind, LinkView, OutboundRequest, TicketChange, TicketView,
    };
    let engine = engine(Duration::from_secs(1));
    let legacy = engine
        .load_file(&component("legacy-v01-guest"))
        .expect("a 0.1.0 component loads");
    assert_eq!(legacy.world_version(), "0.1.0");
    assert_eq!(hostile(&engine).world_version(), "0.2.0");

    let mapped = legacy
        .map_inbound(&delivery(), "{}", Box::new(NoProviderApi))
        .result
        .expect("no trap")
        .expect("mapped");
    assert!(
        matches!(mapped.actions.as_slice(), [Action::Create { subject, .. }] if subject == r#"{"hello":"world"}"#),
        "{mapped:?}"
    );

    let ticket = TicketView::from_json(&serde_json::json!({"guid": "abc"})).expect("ticket");
    let change = |what| TicketChange {
        id: "7".into(),
        provider: "legacy".into(),
        at: "2026-01-01T00:00:00.000000Z".into(),
        origin: Some("github".into()),
        ticket: Some(ticket.clone()),
        links: vec![
            LinkView {
                provider: "legacy".into(),
                external_id: "L-1".into(),
            },
            LinkView {
                provider: "tracker".into(),
                external_id: "SUP-1".into(),
            },
        ],
        what,
    };
    let resolve = ChangeKind::Applied(Action::Resolve {
        ticket: host::action::TicketRef {
            guid: Some("abc".into()),
            ..Default::default()
        },
        resolved_by: "ann@example.com".into(),
    });
    let requests = legacy
        .map_outbound(
            &change(resolve),
            "legacy",
            "{}",
            Box::new(NoProviderApi),
            Default::default(),
        )
        .result
        .expect("no trap")
        .expect("requests");
    // A 0.1.0 component sees its own provider's links only, and its one
    // capture is the mirror's id.
    assert_eq!(
        requests,
        vec![OutboundRequest {
            method: "POST".into(),
            path: "/echo".into(),
            headers: vec![],
            body: b"applied L-1".to_vec(),
            captures: vec![host::change::Capture {
                kind: CaptureKind::Mirror,
                pointer: "/id".into(),
                prefix: String::new(),
            }],
        }]
    );
    // A change 0.1.0 cannot name is answered with nothing, without a call.
    let linked = legacy.map_outbound(
        &change(ChangeKind::Linked(LinkView {
            provider: "tracker".into(),
            external_id: "SUP-1".into(),
        })),
        "legacy",
        "{}",
        Box::new(NoProviderApi),
        Default::default(),
    );
    assert_eq!(linked.result.expect("no trap").expect("requests"), vec![]);
    assert_eq!(linked.report.elapsed, Duration::ZERO);
}

/// Each call reports its peak linear memory, what the memory limit is
/// measured against: a few pages for a quiet call, up to the limit for a
/// hoarder that is stopped there.
#[test]
fn a_call_reports_its_peak_linear_memory() {
    let engine = engine(Duration::from_secs(1));
    let mapper = hostile(&engine);
    let quiet = call(&mapper, "ok");
    assert!(quiet.result.is_ok(), "{:?}", quiet.result);
    assert!(
        quiet.report.memory_bytes >= 64 << 10,
        "{}",
        quiet.report.memory_bytes
    );
    let hoard = call(&mapper, "memory");
    assert!(matches!(hoard.result, Err(MapperError::MemoryLimit { .. })));
    assert!(hoard.report.memory_bytes > quiet.report.memory_bytes);
    assert!(
        hoard.report.memory_bytes <= 32 << 20,
        "{}",
        hoard.report.memory_bytes
    );
}
