//! Precompiled component artifacts on disk, so a restart (or a reload of a
//! version seen before) does not run cranelift again.
//!
//! An artifact is keyed by the component's SHA-256 content hash and by the
//! engine's compatibility hash (wasmtime's version and every engine setting
//! that shapes the machine code: pooling, epochs, fuel, features). A file is
//! `{content_hash}-{engine_key}.cwasm` holding a small header — a magic tag
//! and the SHA-256 of the artifact bytes — then the bytes of
//! `Component::serialize`. Files are written to a temporary name and renamed
//! into place, so a reader never sees half an artifact; nothing rewrites a
//! file in place.
//!
//! Loading an artifact is wasmtime's `unsafe` `Component::deserialize`: the
//! bytes become executable code without validation. That is the one
//! `unsafe` call in the workspace (see [`deserialize`]); it is sound only
//! because the cache directory belongs to this host. The cache is an
//! optimisation: any failure to read or write it is logged and the
//! component is compiled instead.

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Marks a file as one of ours, and its layout version.
const MAGIC: &[u8; 8] = b"SLUICEA1";
const HEADER: usize = MAGIC.len() + 32;

/// A directory of precompiled artifacts. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactCache {
    /// Uses `dir`, created on the first write.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ArtifactCache { dir: dir.into() }
    }

    /// `$XDG_CACHE_HOME/sluice/artifacts`, else `$HOME/.cache/sluice/artifacts`;
    /// `None` when neither variable is set.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })?;
        Some(base.join("sluice").join("artifacts"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding `content_hash`'s artifact for `engine`.
    pub fn path_for(&self, engine: &Engine, content_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{content_hash}-{:016x}.cwasm", engine_key(engine)))
    }

    /// The cached artifact of `content_hash` for `engine`, if there is a
    /// sound one. A missing file is `None`; a damaged or incompatible one is
    /// logged, removed and `None`.
    pub(super) fn get(&self, engine: &Engine, content_hash: &str) -> Option<Component> {
        let path = self.path_for(engine, content_hash);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "artifact cache: cannot read");
                return None;
            }
        };
        let artifact = match check(&bytes) {
            Ok(a) => a,
            Err(why) => {
                tracing::warn!(path = %path.display(), why, "artifact cache: damaged artifact, recompiling");
                let _ = std::fs::remove_file(&path);
                return None;
            }
        };
        match deserialize(engine, artifact) {
            Ok(c) => Some(c),
            Err(e) => {
                // wasmtime's own header check refused it (another version
                // or other settings slipped past the key): recompile.
                tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "artifact cache: incompatible artifact, recompiling");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores `component`'s artifact under `content_hash`; failures are
    /// logged, never returned: the cache only saves time.
    pub(super) fn put(&self, engine: &Engine, content_hash: &str, component: &Component) {
        let path = self.path_for(engine, content_hash);
        if path.exists() {
            return;
        }
        let artifact = match component.serialize() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "artifact cache: cannot serialize");
                return;
            }
        };
        if let Err(e) = self.write(&path, &artifact) {
            tracing::warn!(path = %path.display(), error = %e, "artifact cache: cannot write");
        }
    }

    fn write(&self, path: &Path, artifact: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self
            .dir
            .join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&Sha256::digest(artifact))?;
            f.write_all(artifact)?;
            f.sync_all()?;
            // Rename is atomic: a reader sees no file or a whole one.
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// The engine's compatibility hash: wasmtime's version and the settings
/// that shape compiled code. `DefaultHasher::new()` is SipHash with fixed
/// keys, stable for one build of the host; a rebuilt host that hashes
/// differently only recompiles once.
fn engine_key(engine: &Engine) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}

/// The artifact inside a cache file, once its magic and digest match.
fn check(bytes: &[u8]) -> Result<&[u8], &'static str> {
    if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
        return Err("no sluice artifact header");
    }
    let (digest, artifact) = bytes[MAGIC.len()..].split_at(32);
    if Sha256::digest(artifact).as_slice() != digest {
        return Err("digest mismatch (truncated or altered)");
    }
    Ok(artifact)
}

/// Turns artifact bytes back into a component without compiling.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` trusts its input to be an artifact
    // that wasmtime produced, since it maps the bytes as executable code.
    // These bytes are: the file was written by `ArtifactCache::put` from
    // `Component::serialize`, into a directory this host owns, under a
    // temporary name and then renamed (never rewritten in place); we read
    // it fully into memory (no mapping another process could change under
    // us) and checked the SHA-256 the writer recorded, so a truncated or
    // corrupted file is refused above. wasmtime then checks its own header:
    // the wasmtime version, target and engine settings must match this
    // engine's, or it returns an error instead of loading. What this cannot
    // defend against is someone with write access to the cache directory
    // forging an artifact — which is why the directory must be the host's
    // own (ARCHITECTURE.md, "Artifact cache").
    unsafe { Component::deserialize(engine, artifact) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_refuses_foreign_truncated_and_altered_files() {
        let artifact = b"pretend machine code".to_vec();
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&Sha256::digest(&artifact));
        file.extend_from_slice(&artifact);
        assert_eq!(check(&file), Ok(artifact.as_slice()));

        assert!(check(b"\0asm\x0d\0\x01\0").is_err());
        assert!(check(&file[..file.len() - 1]).is_err());
        let mut altered = file.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(
            check(&altered),
            Err("digest mismatch (truncated or altered)")
        );
    }
}
