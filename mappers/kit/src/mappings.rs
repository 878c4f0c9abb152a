//! Field mappings between the ticket and a provider's record: status,
//! priority, custom fields and provider-side constants, as the host hands
//! them to a mapper under the config key `mappings` (it has checked their
//! shape, and that the provider side of each map is unambiguous, so every
//! map reads both ways).
//!
//! ```yaml
//! mappings:
//!   status: {NEW: "To Do", RESOLVED: "Done"}          # workflow status → provider status
//!   priority: {critical: "Highest", low: "Low"}       # ticket priority → provider priority
//!   fields:                                           # ticket custom field → provider field
//!     customer: customfield_10050
//!     severity: {field: impact, values: {"SEV-1": "1 - Critical"}}
//!   defaults: {project: OPS, issue_type: Incident}    # provider-side constants
//! ```
//!
//! A map the config leaves out is the mapper's own default (given to
//! [`Mappings::from_config`]); a map the config gives replaces that default
//! whole. A value a map has no entry for is a `bad-config` error naming the
//! map and the value, so the operator knows which entry to add.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{MapError, Priority, bad_config};

/// One custom field's mapping: the provider's field and, optionally, a
/// translation of its values (absent: values pass as they are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMapping {
    /// The provider's name of the field, e.g. `customfield_10050`.
    pub field: String,
    /// Ticket value → provider value; empty: no translation.
    pub values: BTreeMap<String, String>,
}

/// A provider's field mappings, with the mapper's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mappings {
    /// The provider's name for messages, e.g. `Jira`.
    provider: &'static str,
    status: BTreeMap<String, String>,
    priority: BTreeMap<String, String>,
    fields: BTreeMap<String, FieldMapping>,
    defaults: BTreeMap<String, String>,
}

/// The four priorities, as mapping keys.
const PRIORITIES: [(Priority, &str); 4] = [
    (Priority::Low, "low"),
    (Priority::Medium, "medium"),
    (Priority::High, "high"),
    (Priority::Critical, "critical"),
];

fn priority_key(p: Priority) -> &'static str {
    PRIORITIES
        .iter()
        .find(|(q, _)| *q == p)
        .map_or("medium", |(_, k)| k)
}

/// The priority a ticket-side text names (`HIGH`, `high`), if any.
pub fn parse_priority(text: &str) -> Option<Priority> {
    PRIORITIES
        .iter()
        .find(|(_, k)| k.eq_ignore_ascii_case(text))
        .map(|(p, _)| *p)
}

/// The upper-case name of a priority, as tickets render it.
pub fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::Low => "LOW",
        Priority::Medium => "MEDIUM",
        Priority::High => "HIGH",
        Priority::Critical => "CRITICAL",
    }
}

fn pairs(list: &[(&str, &str)]) -> BTreeMap<String, String> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A `{key: "value"}` map at `mappings.<name>`; `None` when absent.
fn string_map(v: &Value, path: &str) -> Result<Option<BTreeMap<String, String>>, MapError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                // Constants such as a numeric urgency read as their text.
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                _ => Err(bad_config(format!("{path}.{k} must be a string"))),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        _ => Err(bad_config(format!("{path} must be a map of strings"))),
    }
}

impl Mappings {
    /// Reads `config.mappings`; `status` and `priority` default to the
    /// mapper's own maps when the config has none.
    pub fn from_config(
        config: &Value,
        provider: &'static str,
        default_status: &[(&str, &str)],
        default_priority: &[(&str, &str)],
    ) -> Result<Mappings, MapError> {
        let absent = Value::Null;
        let m = match config.get("mappings") {
            None | Some(Value::Null) => &absent,
            Some(v @ Value::Object(_)) => v,
            Some(_) => return Err(bad_config("mappings must be a map")),
        };
        let status =
            string_map(&m["status"], "mappings.status")?.unwrap_or_else(|| pairs(default_status));
        let priority = string_map(&m["priority"], "mappings.priority")?
            .unwrap_or_else(|| pairs(default_priority));
        let defaults = string_map(&m["defaults"], "mappings.defaults")?.unwrap_or_default();
        let mut fields = BTreeMap::new();
        match &m["fields"] {
            Value::Null => {}
            Value::Object(map) => {
                for (name, spec) in map {
                    let path = format!("mappings.fields.{name}");
                    let mapping = match spec {
                        Value::String(field) => FieldMapping {
                            field: field.clone(),
                            values: BTreeMap::new(),
                        },
                        Value::Object(o) => FieldMapping {
                            field: o
                                .get("field")
                                .and_then(Value::as_str)
                                .ok_or_else(|| {
                                    bad_config(format!("{path}.field must be a string"))
                                })?
                                .to_owned(),
                            values: string_map(
                                o.get("values").unwrap_or(&Value::Null),
                                &format!("{path}.values"),
                            )?
                            .unwrap_or_default(),
                        },
                        _ => {
                            return Err(bad_config(format!(
                                "{path} must be a field name or {{field, values}}"
                            )));
                        }
                    };
                    fields.insert(name.clone(), mapping);
                }
            }
            _ => return Err(bad_config("mappings.fields must be a map")),
        }
        Ok(Mappings {
            provider,
            status,
            priority,
            fields,
            defaults,
        })
    }

    /// The provider's status for a workflow status.
    pub fn status_out(&self, status: &str) -> Result<&str, MapError> {
        self.status
            .get(status)
            .map(String::as_str)
            .ok_or_else(|| self.missing("status", "ticket status", status))
    }

    /// Whether a workflow status has a provider status.
    pub fn has_status(&self, status: &str) -> bool {
        self.status.contains_key(status)
    }

    /// The workflow status for a provider's status.
    pub fn status_in(&self, provider_status: &str) -> Result<&str, MapError> {
        inverse(&self.status, provider_status).ok_or_else(|| {
            self.missing(
                "status",
                &format!("{} status", self.provider),
                provider_status,
            )
        })
    }

    /// The provider's priority for a ticket priority.
    pub fn priority_out(&self, priority: Priority) -> Result<&str, MapError> {
        let key = priority_key(priority);
        self.priority
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| self.missing("priority", "ticket priority", key))
    }

    /// The ticket priority for a provider's priority.
    pub fn priority_in(&self, provider_priority: &str) -> Result<Priority, MapError> {
        inverse(&self.priority, provider_priority)
            .and_then(parse_priority)
            .ok_or_else(|| {
                self.missing(
                    "priority",
                    &format!("{} priority", self.provider),
                    provider_priority,
                )
            })
    }

    /// The provider field and value for a ticket custom field's value;
    /// `None` when the field is not mapped.
    pub fn field_out(&self, name: &str, value: &str) -> Result<Option<(&str, String)>, MapError> {
        let Some(m) = self.fields.get(name) else {
            return Ok(None);
        };
        if m.values.is_empty() || value.is_empty() {
            return Ok(Some((m.field.as_str(), value.to_owned())));
        }
        match m.values.get(value) {
            Some(v) => Ok(Some((m.field.as_str(), v.clone()))),
            None => Err(self.missing(
                &format!("fields.{name}.values"),
                &format!("ticket field `{name}` value"),
                value,
            )),
        }
    }

    /// The ticket custom field and value for a provider field's value;
    /// `None` when no ticket field maps to that provider field.
    pub fn field_in(
        &self,
        provider_field: &str,
        value: &str,
    ) -> Result<Option<(&str, String)>, MapError> {
        let Some((name, m)) = self.fields.iter().find(|(_, m)| m.field == provider_field) else {
            return Ok(None);
        };
        if m.values.is_empty() || value.is_empty() {
            return Ok(Some((name.as_str(), value.to_owned())));
        }
        match inverse(&m.values, value) {
            Some(v) => Ok(Some((name.as_str(), v.to_owned()))),
            None => Err(self.missing(
                &format!("fields.{name}.values"),
                &format!("{} field `{provider_field}` value", self.provider),
                value,
            )),
        }
    }

    /// Every mapped custom field: ticket name → provider field.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .map(|(k, m)| (k.as_str(), m.field.as_str()))
    }

    /// A provider-side constant of `mappings.defaults`.
    pub fn default(&self, name: &str) -> Option<&str> {
        self.defaults
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A provider-side constant the mapper cannot do without.
    pub fn required_default(&self, name: &str, why: &str) -> Result<&str, MapError> {
        self.default(name)
            .ok_or_else(|| bad_config(format!("mappings.defaults.{name} is not set: {why}")))
    }

    /// Every provider-side constant, by name.
    pub fn defaults(&self) -> impl Iterator<Item = (&str, &str)> {
        self.defaults.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn missing(&self, map: &str, what: &str, value: &str) -> MapError {
        bad_config(format!(
            "mappings.{map} has no entry for the {what} `{value}`"
        ))
    }
}

/// The key whose value is `value`: exact first, then ignoring ASCII case
/// (providers are loose about the case of their own names).
fn inverse<'m>(map: &'m BTreeMap<String, String>, value: &str) -> Option<&'m str> {
    map.iter()
        .find(|(_, v)| *v == value)
        .or_else(|| map.iter().find(|(_, v)| v.eq_ignore_ascii_case(value)))
        .map(|(k, _)| k.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapErrorKind;
    use serde_json::json;

    fn jira(config: Value) -> Mappings {
        Mappings::from_config(
            &config,
            "Jira",
            &[("NEW", "To Do"), ("RESOLVED", "Done")],
            &[("high", "High"), ("low", "Low")],
        )
        .unwrap()
    }

    #[test]
    fn defaults_apply_when_the_config_has_no_map() {
        let m = jira(json!({}));
        assert_eq!(m.status_out("RESOLVED").unwrap(), "Done");
        assert_eq!(m.status_in("to do").unwrap(), "NEW");
        assert_eq!(m.priority_in("High").unwrap(), Priority::High);
        assert_eq!(m.priority_out(Priority::Low).unwrap(), "Low");
        assert_eq!(m.default("project"), None);
    }

    #[test]
    fn a_configured_map_replaces_the_default_and_misses_name_map_and_value() {
        let m = jira(json!({"mappings": {"status": {"IN_PROGRESS": "Doing"}}}));
        assert_eq!(m.status_in("Doing").unwrap(), "IN_PROGRESS");
        let e = m.status_in("Waiting for support").unwrap_err();
        assert_eq!(e.kind, MapErrorKind::BadConfig);
        assert_eq!(
            e.message,
            "mappings.status has no entry for the Jira status `Waiting for support`"
        );
        let e = m.status_out("RESOLVED").unwrap_err();
        assert_eq!(
            e.message,
            "mappings.status has no entry for the ticket status `RESOLVED`"
        );
        assert!(
            m.priority_out(Priority::Critical)
                .unwrap_err()
                .message
                .contains("`critical`")
        );
    }

    #[test]
    fn fields_translate_both_ways() {
        let m = jira(json!({"mappings": {
            "fields": {
                "customer": "customfield_10050",
                "severity": {"field": "impact", "values": {"SEV-1": "1 - Critical"}},
            },
            "defaults": {"project": "OPS", "urgency": 2},
        }}));
        assert_eq!(
            m.field_out("customer", "ACME").unwrap(),
            Some(("customfield_10050", "ACME".to_owned()))
        );
        assert_eq!(
            m.field_out("severity", "SEV-1").unwrap(),
            Some(("impact", "1 - Critical".to_owned()))
        );
        assert_eq!(m.field_out("other", "x").unwrap(), None);
        assert_eq!(
            m.field_in("impact", "1 - Critical").unwrap(),
            Some(("severity", "SEV-1".to_owned()))
        );
        let e = m.field_in("impact", "5 - Planning").unwrap_err();
        assert!(
            e.message.contains("mappings.fields.severity.values"),
            "{}",
            e.message
        );
        assert_eq!(m.field_in("nope", "x").unwrap(), None);
        assert_eq!(m.default("project"), Some("OPS"));
        assert_eq!(m.default("urgency"), Some("2"));
        assert!(
            m.required_default("service_id", "needed to create incidents")
                .unwrap_err()
                .message
                .starts_with("mappings.defaults.service_id is not set")
        );
    }

    #[test]
    fn wrong_shapes_are_config_errors() {
        for bad in [
            json!({"mappings": []}),
            json!({"mappings": {"status": ["x"]}}),
            json!({"mappings": {"fields": {"a": 1}}}),
            json!({"mappings": {"priority": {"high": {}}}}),
        ] {
            let e = Mappings::from_config(&bad, "Jira", &[], &[]).unwrap_err();
            assert_eq!(e.kind, MapErrorKind::BadConfig);
        }
    }
}
