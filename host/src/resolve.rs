//! Ticket resolution rules that need no storage: the branch convention.
//!
//! A branch names a ticket when it matches the configured pattern, whose one
//! `{guid}` placeholder stands for the ticket guid (default
//! `feat/ticket-{guid}`). Mappers reach this through the `branch-ticket-guid`
//! import, so the convention lives in one place: the host's config.

use thiserror::Error;

/// The default branch convention.
pub const DEFAULT_BRANCH_PATTERN: &str = "feat/ticket-{guid}";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PatternError {
    #[error("branch pattern `{0}` must contain `{{guid}}` exactly once")]
    Placeholder(String),
}

/// A parsed branch pattern: the text before and after `{guid}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchConvention {
    prefix: String,
    suffix: String,
}

impl BranchConvention {
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let mut parts = pattern.split("{guid}");
        match (parts.next(), parts.next(), parts.next()) {
            (Some(prefix), Some(suffix), None) => Ok(BranchConvention {
                prefix: prefix.to_owned(),
                suffix: suffix.to_owned(),
            }),
            _ => Err(PatternError::Placeholder(pattern.to_owned())),
        }
    }

    /// The guid `branch` names, if it follows the convention. A guid is one
    /// or more ASCII letters, digits, `-` or `_`, so `feat/ticket-` alone or
    /// `feat/ticket-a/b` name nothing.
    pub fn guid_of<'b>(&self, branch: &'b str) -> Option<&'b str> {
        let guid = branch
            .strip_prefix(self.prefix.as_str())?
            .strip_suffix(self.suffix.as_str())?;
        let valid = !guid.is_empty()
            && guid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then_some(guid)
    }

    /// The branch name the convention gives a ticket.
    pub fn branch_for(&self, guid: &str) -> String {
        format!("{}{guid}{}", self.prefix, self.suffix)
    }
}

impl Default for BranchConvention {
    fn default() -> Self {
        // The default pattern has exactly one placeholder.
        BranchConvention {
            prefix: "feat/ticket-".into(),
            suffix: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matches_the_default_pattern() {
        assert_eq!(
            BranchConvention::default(),
            BranchConvention::parse(DEFAULT_BRANCH_PATTERN).unwrap()
        );
    }

    #[test]
    fn guid_of_follows_the_pattern() {
        let cases = [
            ("feat/ticket-{guid}", "feat/ticket-abc123", Some("abc123")),
            ("feat/ticket-{guid}", "feat/ticket-", None),
            ("feat/ticket-{guid}", "feat/ticket-a/b", None),
            ("feat/ticket-{guid}", "fix/ticket-abc", None),
            ("feat/ticket-{guid}", "main", None),
            ("{guid}-work", "T-42-work", Some("T-42")),
            ("{guid}-work", "-work", None),
        ];
        for (pattern, branch, want) in cases {
            let c = BranchConvention::parse(pattern).unwrap();
            assert_eq!(c.guid_of(branch), want, "{pattern} {branch}");
            if let Some(g) = want {
                assert_eq!(c.branch_for(g), branch);
            }
        }
    }

    #[test]
    fn pattern_needs_one_placeholder() {
        for bad in ["feat/ticket", "{guid}/{guid}"] {
            assert_eq!(
                BranchConvention::parse(bad),
                Err(PatternError::Placeholder(bad.into()))
            );
        }
    }
}
