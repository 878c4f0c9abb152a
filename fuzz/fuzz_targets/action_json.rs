//! The canonical action JSON (`host::action::Action::to_json`,
//! `Mapped::to_json`) and action validation (`host::tickets::validate`),
//! which every mapper's output passes before it is applied.
//!
//! The host has no parser of that JSON, so the target decodes it with its
//! own (`sluice_fuzz::decode_action`, written from the module docs).
//! Input that is JSON (a fixture, a mapper's output) is decoded and must
//! render back to itself; any other input is read as fuzzer bytes that
//! build actions, whose rendering must decode back to them and survive
//! JSON text. Either way validation never panics, and validating its own
//! output changes nothing (normalising is idempotent).

#![no_main]

use arbitrary::Unstructured;
use host::action::{Action, MapErrorKind, Mapped};
use host::tickets::Workflow;
use host::tickets::validate::validate;
use libfuzzer_sys::fuzz_target;
use sluice_fuzz::{actions, decode_action, json_actions, map_error_kind, text};

fuzz_target!(|data: &[u8]| {
    if let Some(values) = json_actions(data) {
        let mut decoded = Vec::new();
        for v in &values {
            if let Some(a) = decode_action(v) {
                assert_eq!(&a.to_json(), v, "a decoded action renders differently");
                decoded.push(a);
            }
        }
        check_validation(&decoded);
        return;
    }
    let mut u = Unstructured::new(data);
    let (Ok(event_type), Ok(actions), Ok(kind)) =
        (text(&mut u), actions(&mut u), map_error_kind(&mut u))
    else {
        return;
    };
    assert_eq!(MapErrorKind::parse(kind.as_str()), Some(kind));

    let mapped = Mapped {
        event_type,
        actions,
    };
    let json = mapped.to_json();
    let reparsed: serde_json::Value =
        serde_json::from_str(&json.to_string()).expect("rendered JSON parses");
    assert_eq!(reparsed, json);
    assert_eq!(
        json["event_type"].as_str(),
        Some(mapped.event_type.as_str())
    );
    let rendered = json["actions"].as_array().expect("actions is a list");
    assert_eq!(rendered.len(), mapped.actions.len());
    for (a, v) in mapped.actions.iter().zip(rendered) {
        assert_eq!(v, &a.to_json());
        assert_eq!(v["action"].as_str(), Some(a.name()));
        assert_eq!(
            decode_action(v).as_ref(),
            Some(a),
            "rendering lost something: {v}"
        );
    }

    check_validation(&mapped.actions);
});

fn check_validation(actions: &[Action]) {
    let workflow = Workflow::default();
    if let Ok(valid) = validate(actions, &workflow) {
        assert_eq!(valid.len(), actions.len());
        let again = validate(&valid, &workflow);
        assert_eq!(again.as_ref(), Ok(&valid), "validation is not idempotent");
        for a in &valid {
            assert_eq!(decode_action(&a.to_json()).as_ref(), Some(a));
        }
    }
}
