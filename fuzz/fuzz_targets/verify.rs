//! Webhook verification (`host::ingress::verify`, every preset in
//! `host::ingress::presets`, with the config's overrides applied the way
//! `Provider::from_config` does).
//!
//! Properties: verifying any request never panics; a request carrying
//! exactly what `Verifier::sign` produced verifies (a round trip), also
//! with unrelated headers and query parameters after it; the same request
//! checked with another secret is refused.

#![no_main]

use host::config::{ProviderConfig, VerifyConfig};
use host::ingress::handshake::Handshake;
use host::ingress::presets::PRESETS;
use host::ingress::route::Provider;
use host::ingress::verify::{Scheme, Unverified, Verifier, VerifyError};
use libfuzzer_sys::fuzz_target;
use secrecy::{ExposeSecret, SecretString};
use sluice_fuzz::percent_encode;

/// A request as text, so seeds are readable and easy to add:
///
/// ```text
/// github 1531420618 token=abc&x=1    <- preset, now (Unix seconds), query
/// It's a Secret to Everybody         <- the configured secret
/// @header: X-Other-Signature         <- optional overrides: @header, @query, @tolerance
/// X-Hub-Signature-256: sha256=7571…  <- request headers
///                                    <- an empty line
/// Hello, World!                      <- the body, any bytes
/// ```
///
/// A first word that names no preset picks one by its length, so every
/// input reaches some scheme.
#[derive(Debug, Default)]
struct Input {
    preset: &'static str,
    now: i64,
    query_string: String,
    secret: String,
    header: Option<String>,
    query: Option<String>,
    tolerance_secs: Option<u64>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Input {
    fn parse(data: &[u8]) -> Option<Input> {
        let split = data.windows(2).position(|w| w == b"\n\n");
        let (head, body) = match split {
            Some(i) => (&data[..i], &data[i + 2..]),
            None => (data, &[][..]),
        };
        let head = std::str::from_utf8(head).ok()?;
        let mut lines = head.split('\n');
        let mut first = lines.next()?.splitn(3, ' ');
        let word = first.next().unwrap_or("");
        let preset = PRESETS
            .iter()
            .find(|p| **p == word)
            .unwrap_or(&PRESETS[word.len() % PRESETS.len()]);
        let mut input = Input {
            preset,
            now: first.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            query_string: first.next().unwrap_or("").to_owned(),
            secret: lines.next().unwrap_or("").to_owned(),
            body: body.to_vec(),
            ..Input::default()
        };
        for line in lines {
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match name {
                "@header" => input.header = Some(value),
                "@query" => input.query = Some(value),
                "@tolerance" => input.tolerance_secs = value.parse().ok(),
                _ => input.headers.push((name.to_owned(), value)),
            }
        }
        Some(input)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let config = ProviderConfig {
        verify: Some(VerifyConfig {
            preset: Some(input.preset.to_owned()),
            secret: SecretString::from(input.secret.clone()),
            header: input.header.clone(),
            query: input.query.clone(),
            tolerance_secs: input.tolerance_secs,
            oidc: None,
        }),
        dedupe: None,
        replay_dedupe: None,
        body_limit: 1 << 20,
        mapper: None,
        fixtures: None,
        mapper_config: serde_json::Value::Null,
        api: None,
        outbound: None,
        schedule: Vec::new(),
        sync: None,
    };
    // Every name in PRESETS is a preset.
    let provider = Provider::from_config("fuzz", &config).expect("a preset from PRESETS");
    let verifier = &provider.verifier;

    // Any request: refused or accepted, never a panic. Names are
    // lower-cased as the ingress route does.
    let headers: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    let request = Unverified {
        headers: &headers,
        query: &input.query_string,
        body: &input.body,
    };
    let _ = verifier.verify(request, input.now);
    let _ = provider.dedupe.extract(&headers, &input.body);
    let _ = Handshake::offered(&request);

    round_trip(verifier, &input);
});

/// What `sign` produces verifies; another secret does not.
fn round_trip(verifier: &Verifier, input: &Input) {
    let body_timestamp = match &verifier.scheme {
        Scheme::HmacBody { body_timestamp, .. } => body_timestamp.clone(),
        Scheme::HmacTimestamped {
            header,
            timestamp_header,
            ..
        } => {
            // A `verify.header` naming the timestamp header makes one
            // header carry two values; no sender can satisfy that.
            if header.eq_ignore_ascii_case(timestamp_header) {
                return;
            }
            None
        }
        Scheme::Token { .. } => None,
    };
    let signature = verifier.sign(&input.body, input.now);
    let mut headers: Vec<(String, String)> = signature
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    // Unrelated headers after the signature's, as a proxy might add.
    headers.extend(
        input
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone())),
    );
    let mut query = String::new();
    if let Some((k, v)) = &signature.query {
        query = format!("{}={}", percent_encode(k), percent_encode(v));
        if !input.query_string.is_empty() {
            query.push('&');
            query.push_str(&input.query_string);
        }
    }
    let request = Unverified {
        headers: &headers,
        query: &query,
        body: &input.body,
    };
    let got = verifier.verify(request, input.now);
    match &body_timestamp {
        // The body's own timestamp may be out of its window, which `sign`
        // leaves alone: only that refusal is allowed.
        Some((field, _)) => assert!(
            match &got {
                Ok(_) => true,
                Err(VerifyError::Stale(f)) => f == field,
                Err(_) => false,
            },
            "signed request refused: {got:?}\nscheme {:?}",
            verifier.scheme
        ),
        None => assert!(
            got.is_ok(),
            "signed request refused: {got:?}\nscheme {:?}\nsignature {signature:?}",
            verifier.scheme
        ),
    }
    if let Ok(verified) = got {
        assert_eq!(verified.body(), input.body.as_slice());
    }

    let other = Verifier {
        scheme: verifier.scheme.clone(),
        secret: SecretString::from(format!("{}x", verifier.secret.expose_secret())),
    };
    assert!(
        other.verify(request, input.now).is_err(),
        "a request signed with another secret was accepted\nscheme {:?}",
        verifier.scheme
    );
}
