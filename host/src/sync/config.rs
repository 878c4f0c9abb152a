//! `providers.<p>.sync`: its shape, its defaults and its validation
//! (errors are `(key path, message)`, e.g.
//! `providers.jira.sync.mappings.status.DONE: not a workflow status`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::tickets::Workflow;

/// Which way changes flow between the tickets and one provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Neither: deliveries are stored and ignored, no change is sent.
    None,
    /// Deliveries are applied; the provider gets no outbox rows.
    Inbound,
    /// Changes are sent; deliveries are stored and ignored.
    Outbound,
    /// Both.
    #[default]
    Bidirectional,
}

impl Direction {
    pub fn inbound(self) -> bool {
        matches!(self, Direction::Inbound | Direction::Bidirectional)
    }

    pub fn outbound(self) -> bool {
        matches!(self, Direction::Outbound | Direction::Bidirectional)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::None => "none",
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Bidirectional => "bidirectional",
        }
    }
}

/// What decides a field both sides moved since it was last synced.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Keep ours and push it back to the provider.
    Local,
    /// Take theirs.
    #[default]
    External,
    /// Apply neither; record a conflict to resolve through the API.
    Manual,
    /// Text: both, separated by a `---` line; sets: the union; any other
    /// field: as `manual`.
    Merge,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Local => "local",
            Policy::External => "external",
            Policy::Manual => "manual",
            Policy::Merge => "merge",
        }
    }

    pub fn parse(s: &str) -> Option<Policy> {
        [
            Policy::Local,
            Policy::External,
            Policy::Manual,
            Policy::Merge,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// `providers.<p>.sync`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Default: `bidirectional`, as far as the provider is configured
    /// (without `outbound:` nothing is sent).
    pub direction: Option<Direction>,
    /// Every field's policy unless `conflicts` names the field.
    #[serde(default)]
    pub conflict: Policy,
    /// Per-field policies: `status`, `priority`, `subject`, `description`,
    /// `assignee`, `labels`, `ticket_type`, `fields.<name>`.
    #[serde(default)]
    pub conflicts: BTreeMap<String, Policy>,
    /// Periodic reconciliation, seconds; 0 or absent: off.
    #[serde(default)]
    pub interval_secs: u64,
    /// Field mappings, ticket side → provider side, handed to the mapper
    /// in its config JSON as `mappings`.
    pub mappings: Option<MappingsConfig>,
}

/// `providers.<p>.sync.mappings`. Sections left out are left out of the
/// mapper's config too, so the mapper uses its own defaults for them.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MappingsConfig {
    /// Workflow status → provider status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<BTreeMap<String, String>>,
    /// `low`, `medium`, `high`, `critical` → provider priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<BTreeMap<String, String>>,
    /// Ticket custom field → provider field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, FieldMappingConfig>>,
    /// Provider-side constants (project key, issue type, service id…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defaults: Option<BTreeMap<String, String>>,
}

/// A custom field's provider field: its name, or `{field, values}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged, expecting = "a provider field name, or {field, values}")]
pub enum FieldMappingConfig {
    Name(String),
    Table(FieldTable),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldTable {
    pub field: String,
    /// Ticket value → provider value.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

impl FieldMappingConfig {
    fn field(&self) -> &str {
        match self {
            FieldMappingConfig::Name(f) => f,
            FieldMappingConfig::Table(t) => &t.field,
        }
    }
}

const PRIORITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// What the provider's config says around its `sync:` block.
pub struct Context<'a> {
    pub workflow: &'a Workflow,
    pub has_outbound: bool,
    pub has_api: bool,
    pub mapper_config: &'a serde_json::Value,
}

impl SyncConfig {
    /// The direction in effect.
    pub fn direction(&self) -> Direction {
        self.direction.unwrap_or_default()
    }

    /// Checks the block of provider `name`; the error is (key path, message).
    pub fn validate(&self, name: &str, cx: &Context<'_>) -> Result<(), (String, String)> {
        let key = |rest: &str| format!("providers.{name}.sync.{rest}");
        if let Some(d) = self.direction
            && d.outbound()
            && !(cx.has_outbound && cx.has_api)
        {
            return Err((
                key("direction"),
                format!(
                    "`{}` needs the provider's `outbound:` and `api:` blocks",
                    d.as_str()
                ),
            ));
        }
        for field in self.conflicts.keys() {
            if !super::is_field(field) {
                return Err((
                    key(&format!("conflicts.{field}")),
                    format!(
                        "not a field; one of {}, or fields.<name>",
                        super::FIELDS.join(", ")
                    ),
                ));
            }
        }
        if self.interval_secs > 0 && !cx.has_api {
            return Err((
                key("interval_secs"),
                "reconciliation reads the provider's records: it needs the provider's `api:` block"
                    .into(),
            ));
        }
        if cx.mapper_config.get("mappings").is_some() {
            return Err(misplaced(name));
        }
        if let Some(m) = &self.mappings {
            m.validate(&key("mappings"), cx.workflow)?;
        }
        Ok(())
    }
}

impl MappingsConfig {
    fn validate(&self, at: &str, workflow: &Workflow) -> Result<(), (String, String)> {
        if let Some(status) = &self.status {
            for k in status.keys() {
                if !workflow.contains(k) {
                    return Err((
                        format!("{at}.status.{k}"),
                        format!(
                            "not a workflow status; one of {}",
                            workflow.statuses().join(", ")
                        ),
                    ));
                }
            }
            one_to_one(&format!("{at}.status"), status)?;
        }
        if let Some(priority) = &self.priority {
            for k in priority.keys() {
                if !PRIORITIES.contains(&k.as_str()) {
                    return Err((
                        format!("{at}.priority.{k}"),
                        format!("not a priority; one of {}", PRIORITIES.join(", ")),
                    ));
                }
            }
            one_to_one(&format!("{at}.priority"), priority)?;
        }
        if let Some(fields) = &self.fields {
            let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
            for (name, f) in fields {
                let here = format!("{at}.fields.{name}");
                if name.trim().is_empty() {
                    return Err((here, "a field name must not be empty".into()));
                }
                if f.field().trim().is_empty() {
                    return Err((here, "the provider field must not be empty".into()));
                }
                if let Some(other) = seen.insert(f.field(), name) {
                    return Err((
                        format!("{at}.fields"),
                        format!(
                            "`{other}` and `{name}` both map to the provider field `{}`",
                            f.field()
                        ),
                    ));
                }
                if let FieldMappingConfig::Table(t) = f {
                    one_to_one(&format!("{here}.values"), &t.values)?;
                }
            }
        }
        if let Some(defaults) = &self.defaults {
            for (k, v) in defaults {
                if v.trim().is_empty() {
                    return Err((format!("{at}.defaults.{k}"), "must not be empty".into()));
                }
            }
        }
        Ok(())
    }

    /// The mappings as the mapper reads them (`mappings` in its config).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// `mapper_config.mappings` would bypass the checks.
pub fn misplaced(name: &str) -> (String, String) {
    (
        format!("providers.{name}.mapper_config.mappings"),
        format!(
            "field mappings belong in `providers.{name}.sync.mappings`, where they are checked"
        ),
    )
}

/// Every value non-empty, and no two keys mapping to one value (the map
/// must be usable backwards, for what comes in).
fn one_to_one(at: &str, map: &BTreeMap<String, String>) -> Result<(), (String, String)> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in map {
        if v.trim().is_empty() {
            return Err((format!("{at}.{k}"), "must not be empty".into()));
        }
        if let Some(other) = seen.insert(v, k) {
            return Err((
                at.to_owned(),
                format!(
                    "`{other}` and `{k}` both map to `{v}`; the provider's value would not say which"
                ),
            ));
        }
    }
    Ok(())
}
