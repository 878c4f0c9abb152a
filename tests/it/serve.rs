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
    let mut host = crate::helpers::start_host(&path, &[("SLUICE_TEST_TOKEN", TOKEN)]);
    let addr = host.addr.clone();
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
        .args(["-TERM", &host.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = host.child.wait().unwrap();
    assert!(status.success(), "host serve exited with {status}");
}

/// A test's host dies with its handle: a test that fails before stopping
/// its host leaves nothing serving for the rest of the suite.
#[test]
fn a_hosts_handle_dropped_mid_test_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let host = crate::helpers::start_host(&path, &[("SLUICE_TEST_TOKEN", TOKEN)]);
    let proc_dir = std::path::PathBuf::from(format!("/proc/{}", host.child.id()));
    assert!(proc_dir.exists());
    drop(host);
    assert!(
        !proc_dir.exists(),
        "host serve still runs after its handle was dropped"
    );
}

/// The example config, as `./scripts/run` serves it: the built-in mappers
/// and their canary fixtures in a `mappers/` folder beside the config.
fn example_setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let ws = crate::helpers::workspace();
    let dir = tempfile::tempdir().unwrap();
    let yaml = std::fs::read_to_string(ws.join("examples/sluice.yaml"))
        .unwrap()
        .replace("listen: 127.0.0.1:8080", "listen: 127.0.0.1:0")
        .replace(
            "database: sluice.db",
            &format!("database: {}", dir.path().join("sluice.db").display()),
        );
    let config = dir.path().join("sluice.yaml");
    std::fs::write(&config, yaml).unwrap();
    let mappers = dir.path().join("mappers");
    std::fs::create_dir(&mappers).unwrap();
    for name in ["bitbucket", "github"] {
        let wasm = crate::helpers::component(&format!("{name}-mapper"));
        std::fs::copy(wasm, mappers.join(format!("{name}.wasm"))).unwrap();
        let fixtures = mappers.join(format!("{name}.fixtures"));
        std::fs::create_dir(&fixtures).unwrap();
        for entry in std::fs::read_dir(crate::helpers::fixtures(name)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, fixtures.join(path.file_name().unwrap())).unwrap();
        }
    }
    (dir, config)
}

const EXAMPLE_ENV: [(&str, &str); 4] = [
    ("SLUICE_ADMIN_TOKEN", TOKEN),
    ("SLUICE_READ_TOKEN", "read-token-0123456789abcdef"),
    ("BITBUCKET_WEBHOOK_SECRET", "bitbucket-secret-0123456789"),
    ("GITHUB_WEBHOOK_SECRET", "github-secret-0123456789"),
];

/// Splits the single-quoted words `host sign` prints.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut in_word = false;
    for c in line.chars() {
        match c {
            c if escaped => {
                word.push(c);
                escaped = false;
            }
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            ' ' if !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            '\\' if !quoted => escaped = true,
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_config_serves_the_built_in_mappers_and_sign_prints_a_working_request() {
    let (_dir, config) = example_setup();
    let check = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["check", "--config"])
        .arg(&config)
        .envs(EXAMPLE_ENV)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(stdout.contains("2 mappers loaded"), "{stdout}");
    // The example's bounds and retention are the defaults, and shown.
    assert!(
        stdout.contains(
            "retention: delivery bodies kept 30 days, then dropped (at most 1000 every 60 s)"
        ),
        "{stdout}"
    );

    let mut host = crate::helpers::start_host(&config, &EXAMPLE_ENV);
    let fixture = crate::helpers::fixtures("bitbucket").join("pr_created_other_branch.json");
    let signed = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["sign", "--provider", "bitbucket", "--wait", "--config"])
        .arg(&config)
        .args(["--url", &format!("http://{}", host.addr)])
        .arg(&fixture)
        .envs(EXAMPLE_ENV)
        .output()
        .unwrap();
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let line = String::from_utf8(signed.stdout).unwrap();
    // curl -sS -X POST URL (-H 'Name: value')* --data-binary BODY
    let words = shell_words(line.trim());
    assert_eq!(&words[..4], ["curl", "-sS", "-X", "POST"], "{line}");
    let mut request = reqwest::Client::new().post(&words[4]);
    let mut rest = words[5..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().unwrap();
        match flag.as_str() {
            "-H" => {
                let (name, v) = value.split_once(": ").unwrap();
                request = request.header(name, v);
            }
            "--data-binary" => request = request.body(value.clone()),
            other => panic!("unexpected curl flag {other} in {line}"),
        }
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let outcome: serde_json::Value = response.json().await.unwrap();
    assert_eq!(outcome["status"], "applied", "{outcome}");
    assert_eq!(outcome["applied"][0]["action"], "create", "{outcome}");

    let kill = Command::new("kill")
        .args(["-TERM", &host.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(host.child.wait().unwrap().success());
}

#[test]
fn check_loads_every_mapper_and_names_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = crate::helpers::component("bitbucket-mapper");
    let path = write_config(
        dir.path(),
        &format!(
            "providers:\n  bitbucket:\n    verify: {{secret: s-0123456789abcdef}}\n    mapper: \"{}\"\n  github:\n    verify: {{secret: s-0123456789abcdef}}\n    mapper: missing.wasm\n",
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
