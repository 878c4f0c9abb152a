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

/// Codebase, pulled: pages, the cursor's filter, status and people
/// mapping, reconciliation, what is ignored and the errors, from recorded
/// API answers.
#[test]
fn codebase_fixtures_pass() {
    all_fixtures_pass("codebase");
}

#[test]
fn github_fixtures_pass() {
    all_fixtures_pass("github");
}

/// Slack, both ways: every inbound row of seed 000 (events and
/// interactivity), the resolve notice and sign-off DM, what is ignored.
#[test]
fn slack_fixtures_pass() {
    all_fixtures_pass("slack");
}

/// Asana, both ways: every inbound row of seed 000, the outbound task
/// completion, section move, story and mirror task.
#[test]
fn asana_fixtures_pass() {
    all_fixtures_pass("asana");
}

#[test]
fn gitlab_fixtures_pass() {
    all_fixtures_pass("gitlab");
}

/// Google: Gmail over Pub/Sub, Calendar and Drive channels, Sheets and
/// Forms through the Apps Script contract — each row, what is ignored,
/// the cursors kept in the mapper state.
#[test]
fn google_fixtures_pass() {
    all_fixtures_pass("google");
}

/// Jira, both ways: issue created/updated (status, resolve, escalate,
/// priority, summary, description, assignee, custom fields), comments,
/// reconcile ticks; create with ADF, transitions, comment, assign, PUT.
#[test]
fn jira_fixtures_pass() {
    all_fixtures_pass("jira");
}

/// PagerDuty, both ways: every v3 incident event, reconcile ticks; create,
/// acknowledge/resolve, notes.
#[test]
fn pagerduty_fixtures_pass() {
    all_fixtures_pass("pagerduty");
}

/// ServiceNow, both ways: the business rule's inserts, updates and work
/// notes, reconcile ticks; Table API create, state, work notes, assign.
#[test]
fn servicenow_fixtures_pass() {
    all_fixtures_pass("servicenow");
}

/// Pachca, both ways (seed 3): a message opens a ticket, a thread reply
/// comments, the buttons, what is ignored (the bot's own, other bots',
/// service messages, edits); the reply with the Tracker link and buttons,
/// a Tracker comment with its `@login`s as Pachca mentions.
#[test]
fn pachca_fixtures_pass() {
    all_fixtures_pass("pachca");
}

/// Tracker, both ways (seed 3): the trigger's comment and status events,
/// what is ignored; the issue (queue, tag, custom fields), comments and
/// transitions.
#[test]
fn tracker_fixtures_pass() {
    all_fixtures_pass("tracker");
}

/// A Python component (componentize-py: ~18 MB, an extra export of its own)
/// runs under the same world, fixtures and limits; its uncaught exception
/// reaches the report with the traceback's last line.
#[test]
fn python_example_fixtures_pass() {
    let dir = workspace().join("examples/python-mapper/fixtures");
    fixtures_pass(&component("uptime-mapper"), &dir, 8);
}

/// A JavaScript component (jco: ~11 MB, StarlingMonkey inside) runs under
/// the same world, fixtures and limits.
#[test]
fn javascript_example_fixtures_pass() {
    let dir = workspace().join("examples/js-mapper/fixtures");
    fixtures_pass(&component("pagerduty-js-mapper"), &dir, 12);
}

/// An accidental JavaScript bug (a TypeError, not a map-error) reaches the
/// author as `internal` with its message and its line in app.js, through
/// the guard the build appends — not as a trap into generated glue.
#[test]
fn a_javascript_bug_reports_its_message_and_line_in_app_js() {
    let app = workspace().join("examples/js-mapper/app.js");
    let source = std::fs::read_to_string(&app).expect("app.js");
    let line = source
        .lines()
        .position(|l| l.contains("data.priority.summary ==="))
        .expect("the unguarded line")
        + 1;
    let fixture = workspace().join("examples/js-mapper/fixtures/error_priority_cleared.json");
    let out = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["test-mapper", "--format", "json"])
        .arg(component("pagerduty-js-mapper"))
        .arg(&fixture)
        .output()
        .expect("run host");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    let output = &report["cases"][0]["output"];
    assert_eq!(output["error"], "internal", "{report:#}");
    let message = output["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("TypeError: "), "{message}");
    assert!(
        message.contains(&format!("app.js:{line}:")),
        "line {line}: {message}"
    );
}
