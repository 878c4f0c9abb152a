//! The artifact cache as a way into the sandbox, closed: real components
//! compiled into a real cache folder, then artifacts forged, renamed, key
//! files and folders exposed on disk, and the host made to load them —
//! through the library, `host check`, `host mappers` and `App::build`.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hmac::{Hmac, Mac};
use host::app::App;
use host::config::Config;
use host::fixture::{RunOptions, run_case};
use host::mapper::{
    ArtifactCache, ArtifactKey, EngineSettings, LoadOrigin, LoadedMapper, MapperEngine,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{component, fixtures};

/// The cache file layout, as an attacker who read the source knows it:
/// magic, SHA-256 of the artifact, tag, artifact.
const MAGIC: &[u8] = b"SLUICEA2";
const HEADER: usize = MAGIC.len() + 32 + 32;

fn engine() -> MapperEngine {
    MapperEngine::new(EngineSettings {
        max_instances: 4,
        ..EngineSettings::default()
    })
    .unwrap()
}

fn read(package: &str) -> Vec<u8> {
    std::fs::read(component(package)).unwrap()
}

/// The cache file of the component `bytes` (the only one whose name starts
/// with its content hash).
fn artifact_file(cache: &Path, bytes: &[u8]) -> PathBuf {
    let hash = host::mapper::content_hash(bytes);
    let found: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&hash))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

/// `mapper` is the Bitbucket mapper: it maps a Bitbucket fixture as the
/// fixture expects (the GitHub mapper's code would not).
fn assert_maps_bitbucket(mapper: &LoadedMapper) {
    let case = fixtures("bitbucket").join("pr_created_other_branch.json");
    let result = run_case(
        mapper,
        &case,
        &RunOptions {
            provider: "bitbucket".into(),
        },
    );
    assert!(result.passed(), "{:?}", result.outcome);
}

#[test]
fn a_forged_artifact_is_removed_and_the_component_compiled_again() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("cache");
    let ours = ArtifactCache::new(
        &folder,
        ArtifactKey::load_or_create(&dir.path().join("ours.key")).unwrap(),
    );
    let theirs = ArtifactCache::new(
        &folder,
        ArtifactKey::load_or_create(&dir.path().join("theirs.key")).unwrap(),
    );
    let engine = engine();
    let (bitbucket, github) = (read("bitbucket-mapper"), read("github-mapper"));

    // Another host's artifact of the right component, under its own name:
    // sound, but not vouched for by this host's key.
    let m = engine.load_cached(&bitbucket, Some(&theirs)).unwrap();
    assert_eq!(m.origin(), LoadOrigin::Compiled);
    let target = artifact_file(&folder, &bitbucket);
    let planted = std::fs::read(&target).unwrap();
    let m = engine.load_cached(&bitbucket, Some(&ours)).unwrap();
    assert_eq!(m.origin(), LoadOrigin::Compiled);
    assert_ne!(std::fs::read(&target).unwrap(), planted);
    assert_maps_bitbucket(&m);

    // The GitHub mapper's real machine code with a sound digest and a tag
    // made as the host makes it, but with a key the attacker chose.
    engine.load_cached(&github, Some(&ours)).unwrap();
    let code = std::fs::read(artifact_file(&folder, &github)).unwrap()[HEADER..].to_vec();
    let name = target.file_name().unwrap().to_string_lossy().into_owned();
    let digest = Sha256::digest(&code);
    let mut tag = Hmac::<Sha256>::new_from_slice(&[0x5a; 32]).unwrap();
    tag.update(b"sluice artifact v2\0");
    tag.update(name.as_bytes());
    tag.update(b"\0");
    tag.update(&digest);
    let mut forged = MAGIC.to_vec();
    forged.extend_from_slice(&digest);
    forged.extend_from_slice(&tag.finalize().into_bytes());
    forged.extend_from_slice(&code);
    std::fs::write(&target, &forged).unwrap();

    let m = engine.load_cached(&bitbucket, Some(&ours)).unwrap();
    assert_eq!(m.origin(), LoadOrigin::Compiled, "the forgery was loaded");
    assert_eq!(m.content_hash(), host::mapper::content_hash(&bitbucket));
    assert_maps_bitbucket(&m);
    // Replaced by a sound artifact, which the next load takes.
    assert_ne!(std::fs::read(&target).unwrap(), forged);
    let m = engine.load_cached(&bitbucket, Some(&ours)).unwrap();
    assert_eq!(m.origin(), LoadOrigin::Cached);
    assert_maps_bitbucket(&m);
}

#[test]
fn an_artifact_renamed_to_stand_for_another_component_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("cache");
    let key = ArtifactKey::load_or_create(&dir.path().join("artifact.key")).unwrap();
    let cache = ArtifactCache::new(&folder, key);
    let engine = engine();
    let (bitbucket, github) = (read("bitbucket-mapper"), read("github-mapper"));
    for bytes in [&bitbucket, &github] {
        let m = engine.load_cached(bytes, Some(&cache)).unwrap();
        assert_eq!(m.origin(), LoadOrigin::Compiled);
    }
    // Both are this host's own, soundly tagged; one is moved over the other.
    let target = artifact_file(&folder, &bitbucket);
    std::fs::rename(artifact_file(&folder, &github), &target).unwrap();

    let m = engine.load_cached(&bitbucket, Some(&cache)).unwrap();
    assert_eq!(
        m.origin(),
        LoadOrigin::Compiled,
        "the renamed artifact was loaded"
    );
    assert_maps_bitbucket(&m);
    let m = engine.load_cached(&bitbucket, Some(&cache)).unwrap();
    assert_eq!(m.origin(), LoadOrigin::Cached);
    assert_maps_bitbucket(&m);
}

/// A deployment of the Bitbucket mapper (no canary fixtures) whose config
/// names its cache folder and key file inside `dir`.
fn deploy(dir: &Path) -> PathBuf {
    std::fs::copy(component("bitbucket-mapper"), dir.join("bitbucket.wasm")).unwrap();
    let path = dir.join("sluice.yaml");
    std::fs::write(
        &path,
        format!(
            "listen: 127.0.0.1:0\ndatabase: \"{}\"\nmappers:\n  cache_dir: cache\n  cache_key_file: keys/artifact.key\nproviders:\n  bitbucket:\n    verify: {{secret: s-0123456789abcdef}}\n    mapper: bitbucket.wasm\n",
            dir.join("sluice.db").display()
        ),
    )
    .unwrap();
    path
}

fn host(command: &str, config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host"))
        .args([command, "--config"])
        .arg(config)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o777
}

/// `host mappers`' origin of the Bitbucket version serving.
fn origin(config: &Path) -> String {
    let out = host("mappers", config);
    assert!(out.status.success(), "{}", stderr(&out));
    let listing: Value = serde_json::from_slice(&out.stdout).unwrap();
    let origin = &listing["mappers"][0]["version"]["origin"];
    origin.as_str().unwrap().to_owned()
}

#[test]
fn the_key_file_is_made_private_and_an_exposed_one_turns_the_cache_off_and_fails_check() {
    let dir = tempfile::tempdir().unwrap();
    let config = deploy(dir.path());
    let key = dir.path().join("keys/artifact.key");

    let out = host("check", &config);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(key.parent().unwrap()), 0o700);
    assert_eq!(mode(&dir.path().join("cache")), 0o700);
    assert_eq!(origin(&config), "cache");

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = host("check", &config);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "artifact cache off: mappers.cache_key_file {}: others than its owner may read or write it (mode 644)",
            key.display()
        )),
        "{err}"
    );
    // Serving goes on without the cache: the key might be known to others.
    assert_eq!(origin(&config), "compiled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_folder_others_could_write_or_a_link_is_refused_by_check_and_serve() {
    type Expose = fn(&Path);
    let cases: [(&str, Expose, &str); 2] = [
        (
            "world-writable",
            |cache| {
                std::fs::create_dir(cache).unwrap();
                std::fs::set_permissions(cache, std::fs::Permissions::from_mode(0o777)).unwrap();
            },
            "others than its owner may write it (mode 777)",
        ),
        (
            "a symbolic link",
            |cache| {
                let real = cache.with_file_name("real-cache");
                std::fs::create_dir(&real).unwrap();
                std::os::unix::fs::symlink(&real, cache).unwrap();
            },
            "is a symbolic link",
        ),
    ];
    for (what, expose, problem) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = deploy(dir.path());
        let cache = dir.path().join("cache");
        expose(&cache);
        let want = format!("mappers.cache_dir {}: {problem}", cache.display());

        let out = host("check", &config);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", stderr(&out));
        assert!(stderr(&out).contains(&want), "{what}: {}", stderr(&out));

        let refused = App::build(&Config::load(&config).unwrap()).await.err();
        let err = format!("{:#}", anyhow::Error::from(refused.expect(what)));
        assert!(err.contains(&want), "{what}: {err}");
    }
}
