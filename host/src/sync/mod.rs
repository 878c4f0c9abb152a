//! Two-way sync rules per provider (`providers.<p>.sync`): which way
//! changes flow, which conflict policy decides a field both sides moved,
//! and the field mappings handed to the provider's mapper.
//!
//! This module is pure: the config's shape and validation, the rules the
//! action engine and the worker ask ([`SyncRules`]), and the decision
//! table ([`decide`]). The conflict state itself is in `store::conflicts`,
//! its use at apply time in `tickets::conflicts`.

mod config;
mod decide;

pub use config::{
    Context as SyncContext, Direction, FieldMappingConfig, FieldTable, MappingsConfig, Policy,
    SyncConfig, misplaced,
};
pub use decide::{Decision, FieldKind, decide, merge_text};

use std::collections::{BTreeMap, HashMap};

/// The ticket fields sync tracks, besides `fields.<name>`.
pub const FIELDS: [&str; 7] = [
    "status",
    "priority",
    "subject",
    "description",
    "assignee",
    "labels",
    "ticket_type",
];

/// Whether `name` is a field a policy may name: one of [`FIELDS`] or
/// `fields.<name>` (a custom field).
pub fn is_field(name: &str) -> bool {
    FIELDS.contains(&name)
        || name
            .strip_prefix("fields.")
            .is_some_and(|rest| !rest.is_empty())
}

/// One provider's rules, as the config sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSync {
    pub direction: Direction,
    /// Whether the host keeps this provider's conflict state: it has a
    /// `sync:` block, or it is two-way (inbound and outbound).
    pub tracked: bool,
    pub policy: Policy,
    pub fields: BTreeMap<String, Policy>,
}

/// Every provider's rules. A provider not listed syncs both ways (as far
/// as its config allows) and keeps no conflict state.
#[derive(Debug, Clone, Default)]
pub struct SyncRules {
    providers: HashMap<String, ProviderSync>,
}

impl SyncRules {
    pub fn new(providers: HashMap<String, ProviderSync>) -> SyncRules {
        SyncRules { providers }
    }

    /// Whether `provider`'s deliveries are applied (`inbound` or
    /// `bidirectional`); the others are stored and ignored.
    pub fn accepts_inbound(&self, provider: &str) -> bool {
        self.providers
            .get(provider)
            .is_none_or(|p| p.direction.inbound())
    }

    /// Whether the host keeps `provider`'s last-synced values and applies
    /// its conflict policies.
    pub fn tracked(&self, provider: &str) -> bool {
        self.providers.get(provider).is_some_and(|p| p.tracked)
    }

    /// The policy for `field` of `provider`: the field's own, else the
    /// provider's, else `external`.
    pub fn policy(&self, provider: &str, field: &str) -> Policy {
        self.providers
            .get(provider)
            .map(|p| p.fields.get(field).copied().unwrap_or(p.policy))
            .unwrap_or_default()
    }

    /// The direction in effect for `provider`.
    pub fn direction(&self, provider: &str) -> Direction {
        self.providers
            .get(provider)
            .map(|p| p.direction)
            .unwrap_or_default()
    }
}
