//! Every built-in mapper passes every fixture shipped beside it, run the way
//! mapper authors and CI run them: through `host test-mapper`.

use std::process::Command;

use crate::helpers::{component, fixtures};

fn all_fixtures_pass(mapper: &str) {
    let wasm = component(&format!("{mapper}-mapper"));
    let dir = fixtures(mapper);
    let count = std::fs::read_dir(&dir)
        .expect("fixtures folder")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .count();
    assert!(count > 10, "{mapper}: only {count} fixtures");
    let out = Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("test-mapper")
        .arg(&wasm)
        .arg(&dir)
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
