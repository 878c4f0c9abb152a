//! Every built-in mapper (and the Python example) passes every fixture
//! shipped beside it, run the way mapper authors and CI run them: through
//! `host test-mapper`.

use std::path::Path;
use std::process::Command;

use crate::helpers::{component, fixtures, workspace};

fn all_fixtures_pass(mapper: &str) {
    fixtures_pass(
        &component(&format!("{mapper}-mapper")),
        &fixtures(mapper),
        10,
    );
}

fn fixtures_pass(wasm: &Path, dir: &Path, at_least: usize) {
    let mapper = wasm.display();
    let count = std::fs::read_dir(dir)
        .expect("fixtures folder")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .count();
    assert!(count >= at_least, "{mapper}: only {count} fixtures");
    let out = Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("test-mapper")
        .arg(wasm)
        .arg(dir)
        .output()
        .expect("run host");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{mapper}:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.ends_with(&format!("{count} passed, 0 failed\n")),
        "{stdout}"
    );
}

#[test]
fn bitbucket_fixtures_pass() {
    all_fixtures_pass("bitbucket");
}

#[test]
fn github_fixtures_pass() {
    all_fixtures_pass("github");
}

#[test]
fn gitlab_fixtures_pass() {
    all_fixtures_pass("gitlab");
}

/// A Python component (componentize-py: ~18 MB, an extra export of its own)
/// runs under the same world, fixtures and limits; its uncaught exception
/// reaches the report with the traceback's last line.
#[test]
fn python_example_fixtures_pass() {
    let dir = workspace().join("examples/python-mapper/fixtures");
    fixtures_pass(&component("uptime-mapper"), &dir, 8);
}
