//! What every source's rules share: config values with errors naming
//! their key, and matching text.

use mapper_kit::{MapError, Priority, bad_config, config_priority};
use serde_json::Value;

/// Reads one section of `mapper_config` (`gmail`, `calendar`, …).
pub struct Section<'c> {
    pub name: &'static str,
    pub value: &'c Value,
}

impl<'c> Section<'c> {
    pub fn new(name: &'static str, value: &'c Value) -> Result<Self, MapError> {
        if !matches!(value, Value::Null | Value::Object(_)) {
            return Err(bad_config(format!(
                "mapper_config.{name} must be an object"
            )));
        }
        Ok(Section { name, value })
    }

    /// A string key, else `default`.
    pub fn str(&self, key: &str, default: &'c str) -> Result<&'c str, MapError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(self.bad(key, "a string")),
        }
    }

    /// A whole-number key, else `default`.
    pub fn int(&self, key: &str, default: i64) -> Result<i64, MapError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_i64().ok_or_else(|| self.bad(key, "a whole number")),
        }
    }

    /// A list of strings (a single string counts as a list of one).
    pub fn strings(&self, key: &str) -> Result<Vec<&'c str>, MapError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.as_str()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().ok_or_else(|| self.bad(key, "a list of strings")))
                .collect(),
            Some(_) => Err(self.bad(key, "a list of strings")),
        }
    }

    /// The priority named by `key`, else `MEDIUM`.
    pub fn priority(&self, key: &str) -> Result<Priority, MapError> {
        config_priority(self.value, key, Priority::Medium).map_err(|e| {
            bad_config(e.message.replacen(
                "mapper_config.",
                &format!("mapper_config.{}.", self.name),
                1,
            ))
        })
    }

    fn bad(&self, key: &str, what: &str) -> MapError {
        bad_config(format!("mapper_config.{}.{key} must be {what}", self.name))
    }
}

/// Whether any of `needles` is in `hay`, ignoring case; no needles match
/// everything.
pub fn any_in(hay: &str, needles: &[&str]) -> bool {
    let hay = hay.to_lowercase();
    needles.is_empty() || needles.iter().any(|n| hay.contains(&n.to_lowercase()))
}

/// The priority a form answer names (`low`, `High`, …), if it names one.
pub fn parse_priority(text: &str) -> Option<Priority> {
    match text.trim().to_ascii_uppercase().as_str() {
        "LOW" => Some(Priority::Low),
        "MEDIUM" | "NORMAL" => Some(Priority::Medium),
        "HIGH" => Some(Priority::High),
        "CRITICAL" | "URGENT" => Some(Priority::Critical),
        _ => None,
    }
}

/// `text` cut to at most `max` characters, with `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sections_name_their_keys() {
        let v = json!({"from": ["@a.io"], "label": 3, "max": "x"});
        let s = Section::new("gmail", &v).unwrap();
        assert_eq!(s.strings("from").unwrap(), vec!["@a.io"]);
        assert_eq!(s.str("other", "d").unwrap(), "d");
        assert_eq!(
            s.str("label", "INBOX").unwrap_err().message,
            "mapper_config.gmail.label must be a string"
        );
        assert!(s.int("max", 1).is_err());
        assert!(Section::new("gmail", &json!([])).is_err());
    }

    #[test]
    fn matching_ignores_case() {
        assert!(any_in("Ann <ANN@Customer.io>", &["@customer.io"]));
        assert!(any_in("x", &[]));
        assert!(!any_in("x", &["y"]));
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(parse_priority(" high "), Some(Priority::High));
    }
}
