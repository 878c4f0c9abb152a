//! The decision table: given the value a field last synced with a
//! provider, ours now and theirs in an inbound action, what to do.
//!
//! A side "moved" when its value differs from the last-synced one. Only
//! when both moved, to different values, does the policy decide. An
//! inbound value equal to the last-synced one did not move — the echo of
//! our own write, or a repeat — so it is never a conflict and never
//! overwrites a newer value of ours. Without a last-synced value there is
//! no telling who moved, and theirs is taken (as before sync existed).

use super::Policy;

/// A field's value as sync compares it: `None` is empty (no assignee, an
/// unset custom field); labels are a sorted JSON array.
pub type Value = Option<String>;

/// How a field's values combine under `merge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text (`subject`, `description`): both, separated.
    Text,
    /// A set (`labels`): the union.
    Set,
    /// Anything else: cannot be merged.
    Scalar,
}

impl FieldKind {
    pub fn of(field: &str) -> FieldKind {
        match field {
            "subject" | "description" => FieldKind::Text,
            "labels" => FieldKind::Set,
            _ => FieldKind::Scalar,
        }
    }
}

/// What to do with one field of an inbound action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Both sides hold the same value: nothing to apply; it is synced.
    Agree,
    /// Theirs has not moved since the last sync: keep ours, apply nothing.
    Unmoved,
    /// Apply theirs.
    TakeExternal,
    /// Keep ours and push it back to the provider (`local`).
    KeepLocal,
    /// Apply this combination of both and push it to the provider (`merge`).
    Merged(Value),
    /// Apply neither; record a conflict (`manual`, or a `merge` the field
    /// cannot do).
    Conflict,
}

/// The table. `last` is `None` when nothing was synced yet.
pub fn decide(
    field: FieldKind,
    policy: Policy,
    last: Option<&Value>,
    local: &Value,
    external: &Value,
) -> Decision {
    if local == external {
        return Decision::Agree;
    }
    let Some(last) = last else {
        return Decision::TakeExternal;
    };
    if external == last {
        return Decision::Unmoved;
    }
    if local == last {
        return Decision::TakeExternal;
    }
    match (policy, field) {
        (Policy::External, _) => Decision::TakeExternal,
        (Policy::Local, _) => Decision::KeepLocal,
        (Policy::Manual, _) | (Policy::Merge, FieldKind::Scalar) => Decision::Conflict,
        (Policy::Merge, FieldKind::Text) => Decision::Merged(merge_text(local, external)),
        (Policy::Merge, FieldKind::Set) => match union(local, external) {
            Some(v) => Decision::Merged(Some(v)),
            // A set that is not a JSON array cannot be merged.
            None => Decision::Conflict,
        },
    }
}

/// Ours, a line `---`, theirs; an empty side adds nothing.
pub fn merge_text(local: &Value, external: &Value) -> Value {
    match (local.as_deref(), external.as_deref()) {
        (Some(l), Some(e)) if !l.is_empty() && !e.is_empty() => Some(format!("{l}\n---\n{e}")),
        (Some(l), _) if !l.is_empty() => Some(l.to_owned()),
        _ => external.clone(),
    }
}

/// The union of two sets (JSON arrays of strings), sorted.
fn union(local: &Value, external: &Value) -> Option<String> {
    let read = |v: &Value| -> Option<Vec<String>> {
        match v {
            None => Some(Vec::new()),
            Some(text) => serde_json::from_str(text).ok(),
        }
    };
    let mut all = read(local)?;
    all.extend(read(external)?);
    all.sort();
    all.dedup();
    serde_json::to_string(&all).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::*;
    use FieldKind::*;
    use Policy::*;

    fn v(s: &str) -> Value {
        Some(s.to_owned())
    }

    #[test]
    fn the_table() {
        // (kind, policy, last, local, external, decision)
        let cases: Vec<(FieldKind, Policy, Option<Value>, Value, Value, Decision)> = vec![
            // Same value on both sides: nothing to decide, any policy.
            (Scalar, Manual, Some(v("NEW")), v("QA"), v("QA"), Agree),
            (Scalar, Local, None, v("QA"), v("QA"), Agree),
            // Nothing synced yet: theirs.
            (Scalar, Manual, None, v("NEW"), v("QA"), TakeExternal),
            (Scalar, Local, None, v("NEW"), v("QA"), TakeExternal),
            // Theirs did not move (our echo): keep ours whatever the policy.
            (Scalar, External, Some(v("QA")), v("DONE"), v("QA"), Unmoved),
            (Scalar, Manual, Some(v("QA")), v("DONE"), v("QA"), Unmoved),
            (Text, Merge, Some(v("a")), v("b"), v("a"), Unmoved),
            // Only theirs moved: theirs, whatever the policy.
            (
                Scalar,
                Local,
                Some(v("NEW")),
                v("NEW"),
                v("QA"),
                TakeExternal,
            ),
            (
                Scalar,
                Manual,
                Some(v("NEW")),
                v("NEW"),
                v("QA"),
                TakeExternal,
            ),
            (
                Scalar,
                Merge,
                Some(v("NEW")),
                v("NEW"),
                v("QA"),
                TakeExternal,
            ),
            // Both moved, apart: the policy.
            (
                Scalar,
                External,
                Some(v("NEW")),
                v("QA"),
                v("DONE"),
                TakeExternal,
            ),
            (Scalar, Local, Some(v("NEW")), v("QA"), v("DONE"), KeepLocal),
            (Scalar, Manual, Some(v("NEW")), v("QA"), v("DONE"), Conflict),
            (Scalar, Merge, Some(v("NEW")), v("QA"), v("DONE"), Conflict),
            (
                Text,
                Merge,
                Some(v("old")),
                v("ours"),
                v("theirs"),
                Merged(v("ours\n---\ntheirs")),
            ),
            (
                Set,
                Merge,
                Some(v(r#"["a"]"#)),
                v(r#"["a","c"]"#),
                v(r#"["b"]"#),
                Merged(v(r#"["a","b","c"]"#)),
            ),
            (
                Set,
                Merge,
                Some(v("[]")),
                v("not json"),
                v(r#"["b"]"#),
                Conflict,
            ),
            // Emptied on one side counts as a move.
            (Scalar, Manual, Some(v("ann")), None, v("bob"), Conflict),
            (Scalar, Local, Some(v("ann")), v("cat"), None, KeepLocal),
            (
                Text,
                Merge,
                Some(v("x")),
                v(""),
                v("theirs"),
                Merged(v("theirs")),
            ),
        ];
        for (i, (kind, policy, last, local, external, want)) in cases.into_iter().enumerate() {
            let got = decide(kind, policy, last.as_ref(), &local, &external);
            assert_eq!(
                got, want,
                "case {i}: {kind:?} {policy:?} {last:?} {local:?} {external:?}"
            );
        }
    }

    #[test]
    fn kinds_by_field() {
        assert_eq!(FieldKind::of("subject"), Text);
        assert_eq!(FieldKind::of("description"), Text);
        assert_eq!(FieldKind::of("labels"), Set);
        assert_eq!(FieldKind::of("status"), Scalar);
        assert_eq!(FieldKind::of("fields.customer"), Scalar);
    }
}
