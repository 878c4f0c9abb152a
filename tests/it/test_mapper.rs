//! `host test-mapper` as mapper authors and CI use it: diffs, exit codes,
//! formats, `--update`, and clear errors for bad inputs.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::helpers::{component, copy_dir, fixtures};

fn host(args: &[&Path]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
    cmd.arg("test-mapper");
    for a in args {
        cmd.arg(a);
    }
    cmd.output().expect("run host")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn edit(file: &Path, f: impl FnOnce(&mut Value)) {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    f(&mut doc);
    std::fs::write(file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

fn fixture_count(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn an_edited_expectation_prints_a_diff_naming_the_field_and_fails() {
    let wasm = component("bitbucket-mapper");
    let dir = copy_dir(&fixtures("bitbucket"));
    let n = fixture_count(dir.path());
    let file = dir.path().join("pr_approved_partial.json");
    edit(&file, |d| {
        d["expect"]["actions"][0]["signoff_status"] = json!("REJECTED")
    });

    let out = host(&[&wasm, dir.path()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL "), "{text}");
    assert!(
        text.contains(r#"actions[0].signoff_status: expected "REJECTED", got "APPROVED""#),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("{} passed, 1 failed\n", n - 1)),
        "{text}"
    );
}

#[test]
fn update_rewrites_the_expectation_and_the_rerun_passes() {
    let wasm = component("bitbucket-mapper");
    let dir = copy_dir(&fixtures("bitbucket"));
    let file = dir.path().join("pr_merged.json");
    edit(&file, |d| {
        d["expect"]["actions"][0]["resolved_by"] = json!("nobody@example.com")
    });

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
    let out = cmd
        .arg("test-mapper")
        .arg(&wasm)
        .arg(&file)
        .arg("--update")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(
        doc["expect"]["actions"][0]["resolved_by"],
        "michael@technocore.co.za"
    );
    // Everything else in the file is kept, in order.
    let keys: Vec<_> = doc.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["description", "delivery", "config", "expect"]);

    let again = host(&[&wasm, &file]);
    assert!(again.status.success(), "{}", stdout(&again));
}

#[test]
fn subset_matching_compares_only_the_listed_fields() {
    let wasm = component("bitbucket-mapper");
    let dir = copy_dir(&fixtures("bitbucket"));
    let file = dir.path().join("pr_created_other_branch.json");
    edit(&file, |d| {
        d["match"] = json!("subset");
        d["expect"] = json!({"actions": [
            {"action": "create", "ticket_type": "FEATURE"},
            {"action": "link_pr", "from_action": 0},
            {"role": "R"},
            {"role": "C", "signoff_status": "PENDING"}
        ]});
    });
    let out = host(&[&wasm, &file]);
    assert!(out.status.success(), "{}", stdout(&out));

    // A listed field that differs still fails.
    edit(&file, |d| {
        d["expect"]["actions"][0]["ticket_type"] = json!("BUG")
    });
    let out = host(&[&wasm, &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains(r#"actions[0].ticket_type: expected "BUG", got "FEATURE""#));
}

#[test]
fn a_fixture_that_is_not_json_is_reported_with_file_line_and_column() {
    let wasm = component("bitbucket-mapper");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.json");
    std::fs::write(
        &file,
        "{\n  \"delivery\": {\n    \"body\": {\"a\": 1,}\n  }\n}\n",
    )
    .unwrap();
    let out = host(&[&wasm, dir.path()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("broken.json:3:21: trailing comma"), "{text}");
    assert!(text.ends_with("0 passed, 1 failed\n"), "{text}");
}

#[test]
fn a_component_importing_wasi_http_is_refused_naming_the_import_and_the_flag() {
    let wasm = component("foreign-import-guest");
    let out = host(&[&wasm, &fixtures("bitbucket")]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("component imports wasi:http/handler@0.3.0, which the host does not provide"),
        "{err}"
    );
    assert!(err.contains("--disable http"), "{err}");
    assert!(!err.contains("resource implementation is missing"), "{err}");
}

/// The second run of a component takes its machine code from the artifact
/// cache; every case shows its memory, and a summary line its budget use.
#[test]
fn a_second_run_loads_the_compiled_component_from_the_cache() {
    let wasm = component("bitbucket-mapper");
    let cache = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_host"))
            .arg("test-mapper")
            .args(extra)
            .arg(&wasm)
            .arg(fixtures("bitbucket"))
            .output()
            .expect("run host");
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        stdout(&out)
    };
    let dir = cache.path().join("artifacts");
    let dir = dir.to_str().unwrap();
    let first = run(&["--cache-dir", dir]);
    let second = run(&["--cache-dir", dir]);
    let summary = |text: &str| {
        text.lines()
            .find(|l| l.contains(" cases, p50 "))
            .unwrap_or_else(|| panic!("no summary line in {text}"))
            .to_owned()
    };
    assert!(summary(&first).contains("; compiled "), "{first}");
    assert!(
        summary(&second).contains("; loaded from cache "),
        "{second}"
    );
    assert!(std::fs::read_dir(dir).unwrap().count() > 0);
    let uncached = run(&["--no-cache"]);
    assert!(summary(&uncached).contains("; compiled "), "{uncached}");

    let count = fixture_count(&fixtures("bitbucket"));
    let line = summary(&second);
    assert!(line.contains(&format!(": {count} cases, p50 ")), "{line}");
    assert!(
        line.contains(" max fuel ") && line.contains(" max memory "),
        "{line}"
    );
    let first_case = second.lines().next().unwrap_or_default();
    assert!(
        first_case.contains(" fuel, ") && first_case.contains(" MiB)"),
        "{first_case}"
    );
}

#[test]
fn a_component_of_another_world_is_refused_without_a_panic() {
    let wasm = component("other-world-guest");
    let out = host(&[&wasm, &fixtures("bitbucket")]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("does not implement the sluice:mapper/mapper@0.2.0 world"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let not_wasm = dir.path().join("mapper.wasm");
    std::fs::write(&not_wasm, "not wasm").unwrap();
    let out = host(&[&not_wasm, &fixtures("bitbucket")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a WebAssembly file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn json_and_junit_reports_for_ci() {
    let wasm = component("bitbucket-mapper");
    let dir = copy_dir(&fixtures("bitbucket"));
    let n = fixture_count(dir.path());
    edit(&dir.path().join("pr_merged.json"), |d| {
        d["expect"]["event_type"] = json!("merged")
    });

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
    let out = cmd
        .arg("test-mapper")
        .arg(&wasm)
        .arg(dir.path())
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["passed"], n - 1);
    assert_eq!(report["failed"], 1);
    let failed: Vec<_> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("pr_merged.json")
    );
    assert_eq!(
        failed[0]["failures"][0],
        r#"event_type: expected "merged", got "pr_merged""#
    );
    assert!(failed[0]["fuel"].as_u64().unwrap() > 0);

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
    let out = cmd
        .arg("test-mapper")
        .arg(&wasm)
        .arg(dir.path())
        .args(["--format", "junit"])
        .output()
        .unwrap();
    let xml = stdout(&out);
    assert!(
        xml.contains(&format!(r#"tests="{n}" failures="1""#)),
        "{xml}"
    );
    assert!(xml.contains(r#"<failure message="event_type: expected &quot;merged&quot;, got &quot;pr_merged&quot;">"#), "{xml}");
}

#[test]
fn an_unrecorded_provider_api_request_fails_the_case_and_names_it() {
    let wasm = component("hostile-guest");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api.json");
    let fixture = json!({
        "delivery": {"body": {}},
        "config": {"mode": "api_budget"},
        "api": [{"request": {"method": "GET", "path": "/items/0"}, "response": {"body": {"id": 0}}}],
        "expect": {"ignored": true}
    });
    std::fs::write(&file, fixture.to_string()).unwrap();
    let out = host(&[&wasm, &file]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("provider-api: no recorded answer for GET /items/1"),
        "{text}"
    );
    assert!(!text.contains("GET /items/0"), "{text}");
}

#[test]
fn host_errors_can_be_expected_by_kind() {
    let wasm = component("hostile-guest");
    let dir = tempfile::tempdir().unwrap();
    for (mode, kind) in [
        ("loop", "timeout"),
        ("panic", "trap"),
        ("memory", "memory_limit"),
    ] {
        let fixture = json!({
            "description": format!("{mode} fails with {kind}"),
            "delivery": {"body": {}},
            "config": {"mode": mode},
            "expect": {"error": kind}
        });
        std::fs::write(dir.path().join(format!("{mode}.json")), fixture.to_string()).unwrap();
    }
    let out = host(&[&wasm, dir.path()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.ends_with("3 passed, 0 failed\n"), "{text}");
}

#[test]
fn limits_are_set_from_the_command_line() {
    let wasm = component("hostile-guest");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("loop.json");
    let fixture = json!({
        "delivery": {"body": {}},
        "config": {"mode": "loop"},
        "expect": {"error": "timeout", "message": "time limit of 50 ms"}
    });
    std::fs::write(&file, fixture.to_string()).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
    let out = cmd
        .arg("test-mapper")
        .arg(&wasm)
        .arg(&file)
        .args(["--timeout-ms", "50"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn guest_output_reaches_the_host_log_tagged_with_provider_and_version() {
    let wasm = component("hostile-guest");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stderr.json");
    let fixture = json!({
        "delivery": {"provider": "acme", "body": {}},
        "config": {"mode": "stderr_then_error"},
        "expect": {"error": "internal", "message": "refused"}
    });
    std::fs::write(&file, fixture.to_string()).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
    let out = cmd
        .env("RUST_LOG", "guest=warn")
        .arg("test-mapper")
        .arg(&wasm)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    let log = stderr(&out);
    let line = log
        .lines()
        .find(|l| l.contains("hostile: about to refuse"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("provider=\"acme\"")
            && line.contains("source=\"stderr\"")
            && line.contains("mapper="),
        "{line}"
    );
}
