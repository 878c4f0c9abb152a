//! `host serve` and `host check` as operators run them: the real binary, a
//! YAML config with secrets from the environment, SIGTERM to stop.

use std::process::Command;

const TOKEN: &str = "admin-token-0123456789abcdef";

fn write_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("sluice.yaml");
    let db = dir.join("sluice.db");
    std::fs::write(
        &path,
        format!(
            "# Sluice test config\nlisten: 127.0.0.1:0\ndatabase: {}\napi:\n  tokens:\n    - name: ops\n      token: ${{SLUICE_TEST_TOKEN}}\n      scope: admin\n{extra}",
            db.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn check_accepts_a_good_config_and_names_what_is_wrong_in_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let ok = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["check", "--config"])
        .arg(&path)
        .env("SLUICE_TEST_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let unset = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["check", "--config"])
        .arg(&path)
        .env_remove("SLUICE_TEST_TOKEN")
        .output()
        .unwrap();
    assert_eq!(unset.status.code(), Some(2));
    let err = String::from_utf8_lossy(&unset.stderr);
    assert!(
        err.contains("sluice.yaml:7: environment variable `SLUICE_TEST_TOKEN` is not set"),
        "{err}"
    );

    let path = write_config(dir.path(), "tickets:\n  workflw: [NEW]\n");
    let bad = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["check", "--config"])
        .arg(&path)
        .env("SLUICE_TEST_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("tickets.workflw: unknown field `workflw`"),
        "{err}"
    );
    assert!(
        !err.contains(TOKEN),
        "a secret reached the error output: {err}"
    );
}

#[test]
fn serve_answers_on_its_port_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let host = crate::helpers::start_host(&path, &[("SLUICE_TEST_TOKEN", TOKEN)]);
    let (mut child, addr) = (host.child, host.addr);
    let log: Vec<String> = host.log.try_iter().collect();
    assert!(
        log.iter().all(|l| !l.contains(TOKEN)),
        "a secret reached the log: {log:?}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (health, tickets) = rt.block_on(async {
        let http = reqwest::Client::new();
        let health = http
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap()
            .status();
        let tickets = http
            .get(format!("http://{addr}/v1/tickets"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status();
        (health, tickets)
    });
    assert_eq!((health.as_u16(), tickets.as_u16()), (200, 200));
    assert!(
        dir.path().join("sluice.db").exists(),
        "the SQLite file was not created"
    );

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "host serve exited with {status}");
}

#[test]
fn the_example_config_is_valid() {
    let example = crate::helpers::workspace().join("examples/sluice.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["check", "--config"])
        .arg(&example)
        .env("SLUICE_ADMIN_TOKEN", TOKEN)
        .env("SLUICE_READ_TOKEN", "read-token-0123456789abcdef")
        .env("BITBUCKET_WEBHOOK_SECRET", "bitbucket-secret")
        .env("GITHUB_WEBHOOK_SECRET", "github-secret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_loads_every_mapper_and_names_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = crate::helpers::component("bitbucket-mapper");
    let path = write_config(
        dir.path(),
        &format!(
            "providers:\n  bitbucket:\n    verify: {{secret: s}}\n    mapper: \"{}\"\n  github:\n    verify: {{secret: s}}\n    mapper: missing.wasm\n",
            good.display()
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["check", "--config"])
        .arg(&path)
        .env("SLUICE_TEST_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let missing = dir.path().join("missing.wasm");
    assert!(
        err.contains(&format!(
            "provider `github`: cannot load mapper {}",
            missing.display()
        )),
        "{err}"
    );
}
