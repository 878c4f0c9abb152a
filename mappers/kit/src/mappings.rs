//! Field mappings between the ticket and a provider's record, from the
//! mapper config's `mappings` (the host validates them and hands them over
//! under that key): status, priority, custom fields and provider-side
//! defaults, each usable both ways.
//!
//! A value with no mapping is a `bad-config` error naming the mapping and
//! the value (``mappings.status has no entry for the Jira status `Waiting
//! for support` ``): the operator's table is incomplete, not the payload
//! wrong. A section the config leaves out takes the mapper's own defaults
//! (`Mappings::from_config`'s `fallback`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::{MapError, Priority, bad_config};

/// One provider's field mappings, ticket side → provider side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mappings {
    /// The provider's name in messages (`Jira`, `ServiceNow`).
    label: String,
    /// Workflow status → provider status.
    pub status: BTreeMap<String, String>,
    /// `low`/`medium`/`high`/`critical` → provider priority.
    pub priority: BTreeMap<String, String>,
    /// Ticket custom field → provider field (and, optionally, values).
    pub fields: BTreeMap<String, FieldMapping>,
    /// Provider-side constants (project key, issue type, service id…).
    pub defaults: BTreeMap<String, String>,
}

/// Where one ticket custom field goes at the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMapping {
    /// The provider's field name, e.g. `customfield_10050`.
    pub field: String,
    /// Ticket value → provider value; empty: values pass unchanged.
    pub values: BTreeMap<String, String>,
}

/// The config's shape: a field is a name or `{field, values}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    status: Option<BTreeMap<String, String>>,
    priority: Option<BTreeMap<String, String>>,
    fields: Option<BTreeMap<String, RawField>>,
    defaults: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawField {
    Name(String),
    Table(RawTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    field: String,
    #[serde(default)]
    values: BTreeMap<String, String>,
}

impl Mappings {
    /// Empty mappings for a provider called `label` in messages; add the
    /// mapper's defaults with [`Mappings::with_status`] and friends.
    pub fn new(label: &str) -> Mappings {
        Mappings {
            label: label.to_owned(),
            ..<Mappings as Default>::default()
        }
    }

    pub fn with_status(mut self, pairs: &[(&str, &str)]) -> Mappings {
        self.status = own(pairs);
        self
    }

    pub fn with_priority(mut self, pairs: &[(&str, &str)]) -> Mappings {
        self.priority = own(pairs);
        self
    }

    pub fn with_defaults(mut self, pairs: &[(&str, &str)]) -> Mappings {
        self.defaults = own(pairs);
        self
    }

    /// The mappings of a mapper config (`config["mappings"]`); each section
    /// the config leaves out (or all, without `mappings`) is `fallback`'s.
    pub fn from_config(config: &Value, fallback: Mappings) -> Result<Mappings, MapError> {
        let Some(raw) = config.get("mappings").filter(|v| !v.is_null()) else {
            return Ok(fallback);
        };
        let raw: Raw = serde_path_to_error::deserialize(raw).map_err(|e| {
            let path = e.path().to_string();
            bad_config(format!("mappings.{path}: {}", e.into_inner()))
        })?;
        let fields = raw.fields.map(|f| {
            f.into_iter()
                .map(|(name, f)| {
                    let mapping = match f {
                        RawField::Name(field) => FieldMapping {
                            field,
                            values: BTreeMap::new(),
                        },
                        RawField::Table(RawTable { field, values }) => {
                            FieldMapping { field, values }
                        }
                    };
                    (name, mapping)
                })
                .collect()
        });
        Ok(Mappings {
            status: raw.status.unwrap_or(fallback.status),
            priority: raw.priority.unwrap_or(fallback.priority),
            fields: fields.unwrap_or(fallback.fields),
            defaults: raw.defaults.unwrap_or(fallback.defaults),
            label: fallback.label,
        })
    }

    /// The provider status for a workflow status.
    pub fn status_out(&self, status: &str) -> Result<String, MapError> {
        forward(&self.status, status)
            .ok_or_else(|| missing("mappings.status", "the ticket status", status))
    }

    /// The workflow status for a provider status.
    pub fn status_in(&self, status: &str) -> Result<String, MapError> {
        backward(&self.status, status).ok_or_else(|| {
            missing(
                "mappings.status",
                &format!("the {} status", self.label),
                status,
            )
        })
    }

    /// The provider priority for a ticket priority.
    pub fn priority_out(&self, priority: Priority) -> Result<String, MapError> {
        let key = priority_key(priority);
        forward(&self.priority, key)
            .ok_or_else(|| missing("mappings.priority", "the ticket priority", key))
    }

    /// The ticket priority for a provider priority.
    pub fn priority_in(&self, priority: &str) -> Result<Priority, MapError> {
        backward(&self.priority, priority)
            .and_then(|k| parse_priority(&k))
            .ok_or_else(|| {
                missing(
                    "mappings.priority",
                    &format!("the {} priority", self.label),
                    priority,
                )
            })
    }

    /// Ticket custom field `name` with `value` → (provider field, provider
    /// value); `None` when the field is not mapped (it stays on our side).
    pub fn field_out(&self, name: &str, value: &str) -> Result<Option<(String, String)>, MapError> {
        let Some(m) = self.fields.get(name) else {
            return Ok(None);
        };
        if m.values.is_empty() {
            return Ok(Some((m.field.clone(), value.to_owned())));
        }
        forward(&m.values, value)
            .map(|v| Some((m.field.clone(), v)))
            .ok_or_else(|| {
                missing(
                    &format!("mappings.fields.{name}.values"),
                    "the ticket value",
                    value,
                )
            })
    }

    /// Provider field `field` with `value` → (ticket custom field, ticket
    /// value); `None` when no ticket field maps to it.
    pub fn field_in(&self, field: &str, value: &str) -> Result<Option<(String, String)>, MapError> {
        let Some((name, m)) = self.fields.iter().find(|(_, m)| m.field == field) else {
            return Ok(None);
        };
        if m.values.is_empty() {
            return Ok(Some((name.clone(), value.to_owned())));
        }
        backward(&m.values, value)
            .map(|v| Some((name.clone(), v)))
            .ok_or_else(|| {
                missing(
                    &format!("mappings.fields.{name}.values"),
                    &format!("the {} `{field}` value", self.label),
                    value,
                )
            })
    }

    /// A provider-side constant, e.g. `default("project")`.
    pub fn default(&self, name: &str) -> Option<&str> {
        self.defaults.get(name).map(String::as_str)
    }

    /// A provider-side constant the mapper cannot do without.
    pub fn required_default(&self, name: &str) -> Result<&str, MapError> {
        self.default(name)
            .ok_or_else(|| bad_config(format!("mappings.defaults has no `{name}`")))
    }
}

/// `low`…`critical`: the keys of `mappings.priority`.
pub fn priority_key(p: Priority) -> &'static str {
    match p {
        Priority::Low => "low",
        Priority::Medium => "medium",
        Priority::High => "high",
        Priority::Critical => "critical",
    }
}

fn parse_priority(key: &str) -> Option<Priority> {
    match key.to_ascii_lowercase().as_str() {
        "low" => Some(Priority::Low),
        "medium" => Some(Priority::Medium),
        "high" => Some(Priority::High),
        "critical" => Some(Priority::Critical),
        _ => None,
    }
}

fn own(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn forward(map: &BTreeMap<String, String>, key: &str) -> Option<String> {
    map.get(key).cloned()
}

/// The host refuses maps whose provider side is ambiguous, so the first
/// key found is the only one.
fn backward(map: &BTreeMap<String, String>, value: &str) -> Option<String> {
    map.iter()
        .find(|(_, v)| *v == value)
        .map(|(k, _)| k.clone())
}

fn missing(mapping: &str, what: &str, value: &str) -> MapError {
    bad_config(format!("{mapping} has no entry for {what} `{value}`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapErrorKind;
    use serde_json::json;

    fn jira() -> Mappings {
        let config = json!({"mappings": {
            "status": {"NEW": "To Do", "IN_PROGRESS": "In Progress", "RESOLVED": "Done"},
            "fields": {
                "customer": "customfield_10050",
                "severity": {"field": "impact", "values": {"SEV-1": "1 - Critical"}}
            },
            "defaults": {"project": "OPS"}
        }});
        let fallback = Mappings::new("Jira")
            .with_priority(&[("high", "High"), ("low", "Low")])
            .with_status(&[("NEW", "Open")]);
        Mappings::from_config(&config, fallback).unwrap()
    }

    #[test]
    fn status_maps_both_ways_and_names_a_missing_value() {
        let m = jira();
        assert_eq!(m.status_out("IN_PROGRESS").unwrap(), "In Progress");
        assert_eq!(m.status_in("Done").unwrap(), "RESOLVED");
        let e = m.status_in("Waiting for support").unwrap_err();
        assert_eq!(e.kind, MapErrorKind::BadConfig);
        assert_eq!(
            e.message,
            "mappings.status has no entry for the Jira status `Waiting for support`"
        );
        assert_eq!(
            m.status_out("QA").unwrap_err().message,
            "mappings.status has no entry for the ticket status `QA`"
        );
    }

    #[test]
    fn absent_sections_take_the_mappers_defaults() {
        let m = jira();
        // `priority` was not in the config: the fallback's.
        assert_eq!(m.priority_out(Priority::High).unwrap(), "High");
        assert_eq!(m.priority_in("Low").unwrap(), Priority::Low);
        assert!(
            m.priority_in("Highest")
                .unwrap_err()
                .message
                .contains("mappings.priority has no entry for the Jira priority `Highest`")
        );
        // `status` was: the config's replaces the fallback's whole.
        assert!(m.status_in("Open").is_err());
        let none = Mappings::from_config(
            &json!({}),
            Mappings::new("Jira").with_status(&[("NEW", "Open")]),
        )
        .unwrap();
        assert_eq!(none.status_out("NEW").unwrap(), "Open");
    }

    #[test]
    fn custom_fields_rename_and_translate() {
        let m = jira();
        assert_eq!(
            m.field_out("customer", "ACME").unwrap(),
            Some(("customfield_10050".into(), "ACME".into()))
        );
        assert_eq!(
            m.field_out("severity", "SEV-1").unwrap(),
            Some(("impact".into(), "1 - Critical".into()))
        );
        assert_eq!(
            m.field_in("impact", "1 - Critical").unwrap(),
            Some(("severity".into(), "SEV-1".into()))
        );
        assert_eq!(m.field_out("unmapped", "x").unwrap(), None);
        assert_eq!(m.field_in("summary", "x").unwrap(), None);
        assert_eq!(
            m.field_in("impact", "9 - Odd").unwrap_err().message,
            "mappings.fields.severity.values has no entry for the Jira `impact` value `9 - Odd`"
        );
        assert_eq!(m.default("project"), Some("OPS"));
        assert!(m.required_default("issue_type").is_err());
    }

    #[test]
    fn a_bad_shape_names_its_path() {
        let e = Mappings::from_config(
            &json!({"mappings": {"status": {"NEW": 3}}}),
            Mappings::new("Jira"),
        )
        .unwrap_err();
        assert_eq!(e.kind, MapErrorKind::BadConfig);
        assert!(
            e.message.starts_with("mappings.status.NEW:"),
            "{}",
            e.message
        );
        let e = Mappings::from_config(&json!({"mappings": {"colour": {}}}), Mappings::new("Jira"))
            .unwrap_err();
        assert!(
            e.message.contains("unknown field `colour`"),
            "{}",
            e.message
        );
    }
}
