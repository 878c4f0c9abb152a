//! The watcher: file-system events on the mapper folders, debounced per
//! provider, each burst ending in one [`Reloader::reload`] on a blocking
//! thread.
//!
//! Folders are watched, not files: an editor that saves by writing a
//! temporary file and renaming it over the old one, or a `mv` into place,
//! replaces the inode a file watch would follow, while a folder watch sees
//! the new name arrive and needs no re-arming. Events are matched to
//! providers by path: the component itself, anything in its fixtures
//! folder, or a Kubernetes-style `..data` symlink swap in its folder (which
//! replaces every file at once). Reads (including our own) are ignored.
//! A component known to be whole — closed after writing (`cp`, an in-place
//! save) or renamed into place (`mv`, an editor's atomic save) — is read
//! at once; any other change (a write still going on, fixtures copied
//! file by file) waits for `debounce` of quiet. A half-written file that
//! slips through only fails its compile, is refused, and the write's next
//! event loads it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{ReloadError, Reloader};

/// How long a component that is known to be whole waits: just enough to
/// coalesce the events of one rename or close.
const SETTLED: std::time::Duration = std::time::Duration::from_millis(2);

/// A watch set up on every mapper folder, events buffered until [`Watch::run`].
pub struct Watch {
    watcher: RecommendedWatcher,
    events: UnboundedReceiver<notify::Result<Event>>,
    watched: BTreeSet<PathBuf>,
}

impl Watch {
    /// Watches the folders of `reloader`'s mapper files (and their fixtures
    /// folders). Set it up before the first load, so a change made while
    /// loading is not missed.
    pub fn new(reloader: &Reloader) -> Result<Self, ReloadError> {
        let (tx, events) = unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            // The receiver is gone only after shutdown: nothing to tell.
            let _ = tx.send(event);
        })
        .map_err(ReloadError::Watcher)?;
        let mut watch = Watch {
            watcher,
            events,
            watched: BTreeSet::new(),
        };
        let mut folders: BTreeSet<PathBuf> = reloader
            .sources
            .iter()
            .filter_map(|s| s.wasm.parent().map(Path::to_owned))
            .collect();
        folders.extend(reloader.mappers_dir.clone());
        for folder in folders {
            watch.add(&folder)?;
        }
        watch.add_fixture_folders(reloader);
        Ok(watch)
    }

    fn add(&mut self, folder: &Path) -> Result<(), ReloadError> {
        if self.watched.contains(folder) {
            return Ok(());
        }
        self.watcher
            .watch(folder, RecursiveMode::NonRecursive)
            .map_err(|source| ReloadError::Watch {
                path: folder.to_owned(),
                source,
            })?;
        self.watched.insert(folder.to_owned());
        Ok(())
    }

    /// Fixtures folders come and go with deployments: watch those that
    /// exist now (a missing one is picked up when its parent sees it).
    fn add_fixture_folders(&mut self, reloader: &Reloader) {
        for s in &reloader.sources {
            if s.fixtures.is_dir()
                && let Err(e) = self.add(&s.fixtures)
            {
                tracing::warn!(folder = %s.fixtures.display(), error = %e, "cannot watch fixtures folder");
            }
        }
    }

    /// Reloads providers as their files change, until `shutdown`.
    pub async fn run(mut self, reloader: Arc<Reloader>, shutdown: CancellationToken) {
        let mut due: BTreeMap<String, Instant> = BTreeMap::new();
        loop {
            let next = due.values().min().copied();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                event = self.events.recv() => match event {
                    None => break,
                    Some(Ok(event)) => {
                        if is_read(&event.kind) {
                            continue;
                        }
                        let now = Instant::now();
                        for (provider, complete) in affected(&reloader, &event) {
                            // A component written whole (closed after
                            // writing, or renamed into place) is read at
                            // once; anything else waits for quiet.
                            let settle = if complete { SETTLED } else { reloader.debounce };
                            due.insert(provider, now + settle);
                        }
                        if event.paths.iter().any(|p| p.is_dir()) {
                            self.add_fixture_folders(&reloader);
                        }
                    }
                    Some(Err(e)) => {
                        // Lost events (a queue overflow) may hide a change:
                        // look at every provider again.
                        tracing::warn!(error = %e, "mapper watcher error; rechecking every mapper");
                        let at = Instant::now() + reloader.debounce;
                        for s in &reloader.sources {
                            due.insert(s.provider.clone(), at);
                        }
                    }
                },
                _ = sleep_until(next), if next.is_some() => {
                    let now = Instant::now();
                    let ready: Vec<String> = due
                        .iter()
                        .filter(|(_, at)| **at <= now)
                        .map(|(p, _)| p.clone())
                        .collect();
                    for provider in ready {
                        due.remove(&provider);
                        let r = reloader.clone();
                        let p = provider.clone();
                        // Compiling and the canary are CPU-bound and
                        // synchronous: off the async threads.
                        if let Err(e) = tokio::task::spawn_blocking(move || r.reload(&p)).await {
                            tracing::error!(provider = %provider, error = %e, "mapper reload task failed");
                        }
                    }
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Opening or reading a file changes nothing; closing it after writing does.
fn is_read(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Access(a) if *a != AccessKind::Close(AccessMode::Write))
}

/// Whether `kind` says a file is whole: its writer closed it, or it was
/// renamed into place (`mv`, an editor's save, a deploy tool).
fn is_complete(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
    )
}

/// Providers whose component or fixtures `event` touches, and whether it
/// says their component file is now whole. Fixtures always wait for quiet:
/// a folder of them is copied file by file.
fn affected(reloader: &Reloader, event: &Event) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    let complete = is_complete(&event.kind);
    for path in &event.paths {
        // Kubernetes mounts swap a `..data` symlink to replace every file.
        let swap = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".."));
        for s in &reloader.sources {
            let wasm = path == &s.wasm || (swap && path.parent() == s.wasm.parent());
            if wasm || path.starts_with(&s.fixtures) {
                let whole = out.entry(s.provider.clone()).or_insert(true);
                *whole &= wasm && complete;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind};

    /// An event, its paths, and the providers it should mark (whole or not).
    type Case = (
        EventKind,
        &'static [&'static str],
        &'static [(&'static str, bool)],
    );

    fn reloader() -> Reloader {
        let yaml = "mappers: {dir: /srv/m}\nproviders:\n  bitbucket:\n    verify: {secret: s-0123456789abcdef}\n    mapper: /srv/m/bitbucket.wasm\n  github:\n    verify: {secret: s-0123456789abcdef}\n    mapper: /srv/m/github.wasm\n    fixtures: /srv/gh-fixtures\n";
        let mut config =
            crate::config::Config::parse(yaml, Path::new("/srv/sluice.yaml"), |_| None).unwrap();
        // No folder check: these tests only match paths.
        config.mappers.dir = None;
        Reloader::new(&config, Arc::default()).unwrap()
    }

    fn event(kind: EventKind, paths: &[&str]) -> Event {
        let mut e = Event::new(kind);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        e
    }

    #[test]
    fn events_map_to_providers_and_say_when_a_component_is_whole() {
        let r = reloader();
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let moved_in = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        let cases: [Case; 8] = [
            // `cp` over the file: data written, then closed.
            (write, &["/srv/m/bitbucket.wasm"], &[("bitbucket", false)]),
            (closed, &["/srv/m/bitbucket.wasm"], &[("bitbucket", true)]),
            // `mv` or an editor's save-by-rename.
            (moved_in, &["/srv/m/github.wasm"], &[("github", true)]),
            // Fixtures wait for quiet even when closed.
            (
                closed,
                &["/srv/m/bitbucket.fixtures/a.json"],
                &[("bitbucket", false)],
            ),
            (closed, &["/srv/gh-fixtures/b.json"], &[("github", false)]),
            // A Kubernetes `..data` swap replaces every file in the folder.
            (
                moved_in,
                &["/srv/m/..data"],
                &[("bitbucket", true), ("github", true)],
            ),
            (
                EventKind::Remove(RemoveKind::File),
                &["/srv/m/github.wasm"],
                &[("github", false)],
            ),
            // Editors' scratch files and other folders are nobody's.
            (
                EventKind::Create(CreateKind::File),
                &["/srv/m/.bitbucket.wasm.swp", "/srv/other/bitbucket.wasm"],
                &[],
            ),
        ];
        for (kind, paths, want) in cases {
            let got = affected(&r, &event(kind, paths));
            let want: BTreeMap<String, bool> =
                want.iter().map(|(p, w)| ((*p).to_owned(), *w)).collect();
            assert_eq!(got, want, "{kind:?} {paths:?}");
        }
        assert!(is_read(&EventKind::Access(AccessKind::Open(
            AccessMode::Read
        ))));
        assert!(!is_read(&closed));
    }
}
