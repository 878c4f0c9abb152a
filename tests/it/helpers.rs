//! Locating (and, when missing, building) components and the workspace.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                workspace().join(p)
            }
        })
        .unwrap_or_else(|| workspace().join("target"))
}

/// The component named `package` (a workspace package such as
/// `bitbucket-mapper`, or `uptime-mapper`, the Python example). The test
/// script builds every component first; when one is missing the same
/// script runs here, so `cargo test` alone works too.
pub fn component(package: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let file = target_dir()
        .join("wasm32-wasip2/component")
        .join(format!("{}.wasm", package.replace('-', "_")));
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if !file.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace())
            .args([
                "build",
                "--profile",
                "component",
                "--target",
                "wasm32-wasip2",
                "-p",
                package,
            ])
            .status()
            .expect("run cargo");
        assert!(status.success(), "building component {package} failed");
    }
    file
}

/// The fixtures folder of a built-in mapper.
pub fn fixtures(mapper: &str) -> PathBuf {
    workspace().join("mappers").join(mapper).join("fixtures")
}

/// Copies a folder (one level deep) into a fresh temporary folder.
pub fn copy_dir(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(from).expect("read fixtures") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
        }
    }
    dir
}

/// A running `host serve` process and the address it logged.
pub struct HostProcess {
    pub child: std::process::Child,
    pub addr: String,
    /// The rest of its stderr, line by line.
    pub log: std::sync::mpsc::Receiver<String>,
}

/// Starts `host serve --config CONFIG` with `env` and waits (up to 30 s)
/// for the address it logs.
pub fn start_host(config: &Path, env: &[(&str, &str)]) -> HostProcess {
    use std::io::{BufRead, BufReader};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
    cmd.args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn host serve");
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("host serve logged its address");
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
    };
    HostProcess {
        child,
        addr,
        log: rx,
    }
}

/// An `App` serving in this process on its ephemeral loopback port, until
/// [`Running::stop`].
pub struct Running {
    shutdown: tokio_util::sync::CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Serves `app`; returns its base URL and the handle that stops it.
    pub fn start(app: host::app::App) -> (String, Running) {
        let base = format!("http://{}", app.local_addr().expect("bound address"));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let token = shutdown.clone();
        let server = tokio::spawn(async move { app.run(token).await.expect("app runs") });
        (base, Running { shutdown, server })
    }

    /// Stops intake, drains in-flight work and waits for the app to end.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.expect("app task");
    }
}
