//! The fixture parser (`host::fixture::Fixture::parse` and
//! `Fixture::expectation`) and the comparison `host test-mapper` runs on
//! its expectation (`host::fixture::compare::diff`).
//!
//! Properties: parsing and decoding never panic; `diff` finds nothing
//! exactly when two values are equal, and a subset match finds nothing
//! where an exact one does.

#![no_main]

use std::path::Path;

use host::fixture::compare::diff;
use host::fixture::{Fixture, MatchMode};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz/fixture.json");
    let Ok(fixture) = Fixture::parse(text, path) else {
        return;
    };
    let _ = fixture.expectation(path);

    // The expectation against itself and against the other values the
    // fixture holds (config, body, recorded answers).
    let mut others = vec![
        fixture.expect.clone(),
        fixture.config.clone(),
        fixture.delivery.body.clone().unwrap_or(Value::Null),
    ];
    others.extend(fixture.api.iter().filter_map(|r| r.response.body.clone()));
    for actual in &others {
        let exact = diff(&fixture.expect, actual, MatchMode::Exact);
        assert_eq!(
            exact.is_empty(),
            fixture.expect == *actual,
            "diff disagrees with equality: {exact:?}"
        );
        let subset = diff(&fixture.expect, actual, MatchMode::Subset);
        assert!(
            !exact.is_empty() || subset.is_empty(),
            "subset differs where exact does not: {subset:?}"
        );
        for d in exact.iter().chain(&subset) {
            let _ = d.to_string();
        }
    }
});
