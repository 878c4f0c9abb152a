//! What the host lends a mapper call beyond `provider-api`: the people
//! directory (`person`) and the provider's state (`state-get` /
//! `state-set`). A call sees a snapshot of the state and its own writes;
//! the writes come back in the [`super::CallReport`] and are committed by
//! the caller with the delivery's outcome, never before.

use std::collections::BTreeMap;
use std::sync::Arc;

/// One person of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub email: String,
    pub name: Option<String>,
    /// `(provider, id)` pairs.
    pub identities: Vec<(String, String)>,
}

/// How a mapper looks a person up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonKey {
    /// Case-insensitive.
    Email(String),
    Identity {
        provider: String,
        id: String,
    },
}

/// The people directory as a mapper call sees it.
pub trait People: Send + Sync {
    fn find(&self, key: &PersonKey) -> Option<Person>;
}

/// Largest state key and value a mapper may store.
pub const STATE_KEY_MAX: usize = 128;
pub const STATE_VALUE_MAX: usize = 4 << 10;

/// A provider's state for one call: the values read at its start and the
/// writes it made, in order.
#[derive(Debug, Clone, Default)]
pub struct StateView {
    values: BTreeMap<String, String>,
    writes: Vec<StateWrite>,
    /// The call read or wrote a key: a mapping whose view was not read
    /// from the store (the inline path's) is only valid without this.
    used: bool,
}

/// One compare-and-set the call made and saw succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateWrite {
    pub key: String,
    /// What the call saw before writing: the committing side checks it
    /// again, so two calls racing on one key cannot both win.
    pub expected: Option<String>,
    /// `None` deletes.
    pub value: Option<String>,
}

impl StateView {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        StateView {
            values,
            writes: Vec::new(),
            used: false,
        }
    }

    /// The value under `key`, as the call sees it; marks the view used.
    pub fn read(&mut self, key: &str) -> Option<&str> {
        self.used = true;
        self.values.get(key).map(String::as_str)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Whether the call read or wrote any key.
    pub fn used(&self) -> bool {
        self.used
    }

    /// Compare-and-set against this call's view; oversize keys or values
    /// are refused like a mismatch.
    pub fn set(&mut self, key: String, value: Option<String>, expected: Option<&str>) -> bool {
        self.used = true;
        if key.is_empty()
            || key.len() > STATE_KEY_MAX
            || value.as_ref().is_some_and(|v| v.len() > STATE_VALUE_MAX)
            || self.get(&key) != expected
        {
            return false;
        }
        self.writes.push(StateWrite {
            key: key.clone(),
            expected: expected.map(str::to_owned),
            value: value.clone(),
        });
        match value {
            Some(v) => self.values.insert(key, v),
            None => self.values.remove(&key),
        };
        true
    }

    pub fn take_writes(&mut self) -> Vec<StateWrite> {
        std::mem::take(&mut self.writes)
    }
}

/// Everything a call may look up besides its provider's API.
#[derive(Clone, Default)]
pub struct Services {
    pub people: Option<Arc<dyn People>>,
    pub state: StateView,
}

impl Services {
    pub(super) fn find_person(&self, key: &PersonKey) -> Option<Person> {
        self.people.as_ref().and_then(|p| p.find(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_compare_and_set_within_a_call() {
        let mut s = StateView::new(BTreeMap::from([("cursor".into(), "10".into())]));
        assert!(!s.set("cursor".into(), Some("12".into()), Some("9")));
        assert!(s.set("cursor".into(), Some("12".into()), Some("10")));
        assert_eq!(s.get("cursor"), Some("12"));
        assert!(s.set("new".into(), Some("a".into()), None));
        assert!(!s.set("new".into(), Some("b".into()), None));
        assert!(s.set("new".into(), None, Some("a")));
        assert_eq!(s.get("new"), None);
        assert!(!s.set("x".repeat(STATE_KEY_MAX + 1), Some("v".into()), None));
        assert_eq!(s.take_writes().len(), 3);
    }
}
