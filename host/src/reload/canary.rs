//! The canary: a candidate version runs the fixtures shipped beside it
//! (`{provider}.fixtures/`) through `host test-mapper`'s own runner, and
//! is swapped in only if every one passes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

use crate::fixture::{RunOptions, collect_files, run_case};
use crate::mapper::LoadedMapper;

/// How a version did on its fixtures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CanaryReport {
    /// The fixtures folder; `None` when the mapper ships none.
    pub folder: Option<PathBuf>,
    pub total: usize,
    pub passed: usize,
    pub failures: Vec<CaseFailure>,
    pub elapsed: Duration,
}

/// One failing fixture and why (a differing field, a trap, an unreadable file).
#[derive(Debug, Clone, PartialEq)]
pub struct CaseFailure {
    pub file: PathBuf,
    pub reasons: Vec<String>,
}

impl CanaryReport {
    pub fn passed_all(&self) -> bool {
        self.failures.is_empty()
    }

    /// `canary failed 2 of 21 fixtures: a.json: actions[0].role: ...; b.json: ...`
    pub fn summary(&self) -> String {
        let cases: Vec<String> = self
            .failures
            .iter()
            .map(|f| {
                let name = f
                    .file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| f.file.display().to_string());
                format!("{name}: {}", f.reasons.join(", "))
            })
            .collect();
        format!(
            "canary failed {} of {} fixtures: {}",
            self.failures.len(),
            self.total,
            cases.join("; ")
        )
    }

    /// As the API shows it.
    pub fn results(&self) -> CanaryResults {
        CanaryResults {
            folder: self.folder.as_ref().map(|f| f.display().to_string()),
            total: self.total,
            passed: self.passed,
            failed: self.failures.len(),
            ms: self.elapsed.as_secs_f64() * 1e3,
            failures: self
                .failures
                .iter()
                .map(|f| FailureInfo {
                    file: f.file.display().to_string(),
                    reasons: f.reasons.clone(),
                })
                .collect(),
        }
    }
}

/// Fixture results of the canary run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CanaryResults {
    /// The fixtures folder; null when the mapper ships none.
    pub folder: Option<String>,
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub ms: f64,
    pub failures: Vec<FailureInfo>,
}

/// One failing fixture and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FailureInfo {
    pub file: String,
    pub reasons: Vec<String>,
}

/// Runs every fixture under `folder` against `mapper`. No folder means no
/// canary: the version passes with zero cases (and the API shows that).
/// Blocking: call it off the async threads.
pub fn run(mapper: &LoadedMapper, provider: &str, folder: &Path) -> CanaryReport {
    let started = Instant::now();
    if !folder.is_dir() {
        return CanaryReport::default();
    }
    let mut report = CanaryReport {
        folder: Some(folder.to_owned()),
        ..CanaryReport::default()
    };
    let files = match collect_files(&[folder.to_owned()]) {
        Ok(f) => f,
        Err(e) => {
            // An unreadable fixtures folder is a failed canary, not a pass.
            report.total = 1;
            report.failures.push(CaseFailure {
                file: folder.to_owned(),
                reasons: vec![e.to_string()],
            });
            report.elapsed = started.elapsed();
            return report;
        }
    };
    let opts = RunOptions {
        provider: provider.to_owned(),
    };
    for file in files {
        let case = run_case(mapper, &file, &opts);
        report.total += 1;
        match case.outcome {
            crate::fixture::Outcome::Passed => report.passed += 1,
            crate::fixture::Outcome::Failed(reasons) => {
                report.failures.push(CaseFailure { file, reasons })
            }
        }
    }
    report.elapsed = started.elapsed();
    report
}
