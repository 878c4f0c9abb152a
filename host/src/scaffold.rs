//! `host new-mapper`: a new mapper project in Rust, Python or JavaScript
//! that builds and passes its starter fixtures out of the box.
//!
//! The templates are compiled into the binary (`host/templates/`), with the
//! host's own `wit/mapper.wit`, so a project made by a host targets the
//! world that host serves: a new WIT version is picked up by every template
//! at once. The JavaScript toolchain (jco and componentize-js, pinned in
//! `package.json` and `package-lock.json`) and the guard that reports a
//! bug's message are the ones `examples/js-mapper` is built with.
//! This module writes files only; it knows no wasm runtime.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// The language of a new mapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

#[derive(Debug, Error)]
pub enum ScaffoldError {
    #[error(
        "mapper name `{0}`: use lower-case letters, digits, `-` and `_`, starting with a letter (it becomes the provider name and the file names)"
    )]
    BadName(String),
    #[error("{0} already exists and is not empty: choose another --dir")]
    NotEmpty(PathBuf),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One file of a template: its path in the project and its text, with
/// `{{name}}` (and `{{crate}}`, the name with `_` for `-`) to fill in.
struct Template {
    path: &'static str,
    text: &'static str,
    executable: bool,
}

const fn file(path: &'static str, text: &'static str) -> Template {
    Template {
        path,
        text,
        executable: false,
    }
}

const fn script(path: &'static str, text: &'static str) -> Template {
    Template {
        path,
        text,
        executable: true,
    }
}

const WIT: &str = include_str!("../../wit/mapper.wit");

const FIXTURES: &[Template] = &[
    file(
        "fixtures/create.json",
        include_str!("../templates/fixtures/create.json"),
    ),
    file(
        "fixtures/status_change.json",
        include_str!("../templates/fixtures/status_change.json"),
    ),
    file(
        "fixtures/comment.json",
        include_str!("../templates/fixtures/comment.json"),
    ),
    file(
        "fixtures/assign.json",
        include_str!("../templates/fixtures/assign.json"),
    ),
    file(
        "fixtures/signoff.json",
        include_str!("../templates/fixtures/signoff.json"),
    ),
    file(
        "fixtures/link_pr.json",
        include_str!("../templates/fixtures/link_pr.json"),
    ),
    file(
        "fixtures/resolve.json",
        include_str!("../templates/fixtures/resolve.json"),
    ),
    file(
        "fixtures/escalate.json",
        include_str!("../templates/fixtures/escalate.json"),
    ),
    file(
        "fixtures/ignored_ping.json",
        include_str!("../templates/fixtures/ignored_ping.json"),
    ),
    file(
        "fixtures/error_unknown_event.json",
        include_str!("../templates/fixtures/error_unknown_event.json"),
    ),
    file(
        "fixtures/error_missing_field.json",
        include_str!("../templates/fixtures/error_missing_field.json"),
    ),
    file(
        "fixtures/error_user_not_in_directory.json",
        include_str!("../templates/fixtures/error_user_not_in_directory.json"),
    ),
];

const RUST: &[Template] = &[
    file("Cargo.toml", include_str!("../templates/rust/Cargo.toml")),
    file("src/lib.rs", include_str!("../templates/rust/src/lib.rs")),
    script("build.sh", include_str!("../templates/rust/build.sh")),
    file("README.md", include_str!("../templates/rust/README.md")),
    file(".gitignore", include_str!("../templates/rust/.gitignore")),
];

const PYTHON: &[Template] = &[
    file("app.py", include_str!("../templates/python/app.py")),
    script("build.sh", include_str!("../templates/python/build.sh")),
    file("README.md", include_str!("../templates/python/README.md")),
    file(".gitignore", include_str!("../templates/python/.gitignore")),
];

/// The example's package files, with its package name replaced: one place
/// pins the JavaScript toolchain.
const JS_PACKAGE_NAME: &str = "pagerduty-js-mapper";

const JS: &[Template] = &[
    file("app.js", include_str!("../templates/js/app.js")),
    script("build.sh", include_str!("../templates/js/build.sh")),
    file(
        "sluice-guard.js",
        include_str!("../../examples/js-mapper/sluice-guard.js"),
    ),
    file(
        "package.json",
        include_str!("../../examples/js-mapper/package.json"),
    ),
    file(
        "package-lock.json",
        include_str!("../../examples/js-mapper/package-lock.json"),
    ),
    file("README.md", include_str!("../templates/js/README.md")),
    file(".gitignore", include_str!("../templates/js/.gitignore")),
];

/// Writes a new `lang` mapper called `name` into `dir` (made if missing;
/// refused if it holds anything) and returns the files written, relative
/// to `dir`.
pub fn scaffold(name: &str, lang: Lang, dir: &Path) -> Result<Vec<PathBuf>, ScaffoldError> {
    check_name(name)?;
    let occupied = std::fs::read_dir(dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if occupied {
        return Err(ScaffoldError::NotEmpty(dir.to_owned()));
    }
    let own = match lang {
        Lang::Rust => RUST,
        Lang::Python => PYTHON,
        Lang::Js => JS,
    };
    let mut written = Vec::new();
    let wit = file("wit/mapper.wit", WIT);
    for t in own.iter().chain(FIXTURES).chain([&wit]) {
        let path = dir.join(t.path);
        let write_err = |source| ScaffoldError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_err)?;
        }
        std::fs::write(&path, fill(t.text, name)).map_err(write_err)?;
        if t.executable {
            set_executable(&path).map_err(write_err)?;
        }
        written.push(PathBuf::from(t.path));
    }
    Ok(written)
}

/// The command lines that build and test what [`scaffold`] wrote.
pub fn next_steps(name: &str, dir: &Path) -> String {
    format!(
        "cd {}\n./build.sh\nhost test-mapper {name}.wasm fixtures",
        dir.display()
    )
}

fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let mut chars = name.chars();
    let good = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.len() <= 64;
    if good {
        Ok(())
    } else {
        Err(ScaffoldError::BadName(name.to_owned()))
    }
}

fn fill(text: &str, name: &str) -> String {
    text.replace("{{name}}", name)
        .replace("{{crate}}", &name.replace('-', "_"))
        .replace(JS_PACKAGE_NAME, &format!("{name}-mapper"))
}

#[cfg(unix)]
fn set_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn set_executable(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_be_a_provider_or_a_file_are_refused() {
        for good in ["acme", "acme-desk", "desk_2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Acme", "2desk", "a/b", "a b", "../x", "acme.wasm"] {
            let err = check_name(bad).expect_err(bad).to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn every_placeholder_is_filled_and_the_project_is_complete() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            let dir = tempfile::tempdir().unwrap();
            let files = scaffold("acme-desk", lang, dir.path()).unwrap();
            for f in &files {
                let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
                assert!(
                    !text.contains("{{"),
                    "{lang:?} {}: a placeholder is left",
                    f.display()
                );
                assert!(!text.contains(JS_PACKAGE_NAME), "{lang:?} {}", f.display());
            }
            let fixtures = files.iter().filter(|f| f.starts_with("fixtures")).count();
            // One per action kind, one ignored event, three errors.
            assert_eq!(fixtures, 12, "{lang:?}");
            assert!(files.contains(&PathBuf::from("wit/mapper.wit")), "{lang:?}");
            assert!(files.contains(&PathBuf::from("README.md")), "{lang:?}");
            let build = std::fs::metadata(dir.path().join("build.sh")).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(build.permissions().mode() & 0o111, 0o111, "{lang:?}");
            }
            let _ = build;
        }
    }

    #[test]
    fn a_folder_with_something_in_it_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mine.txt"), "keep").unwrap();
        let err = scaffold("acme", Lang::Js, dir.path()).unwrap_err();
        assert!(matches!(err, ScaffoldError::NotEmpty(_)), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
