//! The YAML config loader (`host::config::Config::parse`), with variables
//! from an environment the input chooses.
//!
//! Input: the YAML text, optionally followed by a NUL byte and
//! `NAME=VALUE` lines for the environment. A variable not listed there is
//! set to a made-up value unless its name starts with `UNSET`, so seeds
//! such as `examples/sluice.yaml` load as they are.
//!
//! Properties: parsing never panics; a config that loads builds a
//! `Provider` for every provider (its preset exists) whose verifier
//! refuses a request signed with the empty secret, which anyone can
//! compute; and a branch convention that finds the guid in the branch it
//! names.

#![no_main]

use std::path::Path;

use host::config::Config;
use host::ingress::route::Provider;
use host::ingress::verify::{Unverified, Verifier};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

fuzz_target!(|data: &[u8]| {
    let (text, env) = match data.iter().rposition(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let (Ok(text), Ok(env)) = (std::str::from_utf8(text), std::str::from_utf8(env)) else {
        return;
    };
    let env: Vec<(&str, &str)> = env.lines().filter_map(|l| l.split_once('=')).collect();
    let lookup = |name: &str| {
        env.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| (!name.starts_with("UNSET")).then(|| format!("{name}-0123456789abcdef")))
    };
    let Ok(config) = Config::parse(text, Path::new("fuzz/sluice.yaml"), lookup) else {
        return;
    };
    for (name, p) in &config.providers {
        // A provider without `verify` is pulled on a schedule: no webhook route.
        let Some(provider) = Provider::from_config(name, p) else {
            assert!(
                p.verify.is_none(),
                "provider `{name}` loaded but builds no verifier"
            );
            continue;
        };
        let forger = Verifier {
            scheme: provider.verifier.scheme.clone(),
            secret: SecretString::from(""),
        };
        let now = 1_700_000_000;
        let body = br#"{"forged":true}"#;
        let signature = forger.sign(body, now);
        let headers: Vec<(String, String)> = signature
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        let query = signature
            .query
            .map(|(k, v)| format!("{k}={v}"))
            .unwrap_or_default();
        let request = Unverified {
            headers: &headers,
            query: &query,
            body,
        };
        assert!(
            provider.verifier.verify(request, now).is_err(),
            "provider `{name}` accepts a request signed with the empty secret"
        );
    }
    let workflow = config.workflow();
    assert!(workflow.contains(workflow.initial()));
    let branches = config.branches();
    let guid = "Ab-1_z";
    assert_eq!(branches.guid_of(&branches.branch_for(guid)), Some(guid));
    let _ = format!("{config:?}");
});
