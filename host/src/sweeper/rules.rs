//! The sweeper's configuration (`sweeper:` in the YAML): rules, each a
//! ticket filter, a schedule and what to send, with seed 2's rules as the
//! default, and the pure parts of a sweep — which tickets a rule matches at
//! a given moment, and which schedule tick a moment belongs to. Knows
//! nothing of storage or providers.

use std::str::FromStr as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::Deserialize;

use crate::store::TicketRow;

/// `sweeper:`: present turns the sweeper on; its rules default to seed 2's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweeperConfig {
    /// The IANA time zone every schedule is read in (`Europe/Berlin`).
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// How late a missed tick (the host was down) is still caught up.
    #[serde(default = "default_catch_up_hours")]
    pub catch_up_hours: u32,
    #[serde(default = "default_rules")]
    pub rules: Vec<RuleConfig>,
}

impl Default for SweeperConfig {
    fn default() -> Self {
        SweeperConfig {
            time_zone: default_time_zone(),
            catch_up_hours: default_catch_up_hours(),
            rules: default_rules(),
        }
    }
}

/// One rule: which tickets, when, and what to send about them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique; named in notices, metrics and the sweeper API.
    pub name: String,
    #[serde(default)]
    pub filter: FilterConfig,
    /// When direct notices go out: a cron expression (5 fields, or 6 with
    /// seconds first) in `time_zone`.
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Tell each ticket's assignee (its requester when unassigned).
    #[serde(default = "yes")]
    pub direct: bool,
    /// A digest of every matching ticket, on its own schedule.
    pub digest: Option<DigestConfig>,
    /// The outbound providers told; absent: every provider with `outbound`.
    pub providers: Option<Vec<String>>,
}

/// The digest of a rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// A cron expression in `time_zone`; the seed: Mondays.
    #[serde(default = "default_digest_schedule")]
    pub schedule: String,
}

/// Which tickets a rule matches; every set condition must hold.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// The ticket's status is one of these.
    #[serde(default)]
    pub status_in: Vec<String>,
    /// The ticket's status is none of these.
    #[serde(default)]
    pub status_not_in: Vec<String>,
    /// More than this many whole days since the ticket was last updated
    /// (the seed's `(now - updated_at).days > 60`).
    pub untouched_over_days: Option<u32>,
    /// More than this many whole days in its current status.
    pub in_status_over_days: Option<u32>,
    /// The ticket carries every one of these labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Custom fields that must hold exactly these values.
    #[serde(default)]
    pub fields: std::collections::BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}
fn default_time_zone() -> String {
    "UTC".into()
}
fn default_catch_up_hours() -> u32 {
    24
}
fn default_schedule() -> String {
    // Every weekday morning, as the seed's cron job ran.
    "0 9 * * MON-FRI".into()
}
fn default_digest_schedule() -> String {
    "0 9 * * MON".into()
}

/// Seed 2's two queries: tickets not done and untouched for over 60 days,
/// and tickets waiting in QA or DEPLOYED for over 7 days; each tells the
/// assignee and goes into Monday's digest.
pub fn default_rules() -> Vec<RuleConfig> {
    let rule = |name: &str, filter: FilterConfig| RuleConfig {
        name: name.into(),
        filter,
        schedule: default_schedule(),
        direct: true,
        digest: Some(DigestConfig {
            schedule: default_digest_schedule(),
        }),
        providers: None,
    };
    vec![
        rule(
            "stale",
            FilterConfig {
                status_not_in: vec!["RESOLVED".into(), "CLOSED".into(), "CANCELLED".into()],
                untouched_over_days: Some(60),
                ..FilterConfig::default()
            },
        ),
        rule(
            "qa_overdue",
            FilterConfig {
                status_in: vec!["QA".into(), "DEPLOYED".into()],
                in_status_over_days: Some(7),
                ..FilterConfig::default()
            },
        ),
    ]
}

/// A parsed schedule: a cron expression read in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
    expr: String,
}

impl Schedule {
    pub fn parse(expr: &str, tz: Tz) -> Result<Schedule, String> {
        let cron =
            Cron::from_str(expr).map_err(|e| format!("`{expr}` is not a cron expression: {e}"))?;
        Ok(Schedule {
            cron,
            tz,
            expr: expr.to_owned(),
        })
    }

    /// The cron expression as configured.
    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// The latest tick at or before `now`.
    pub fn last_tick(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&now.with_timezone(&self.tz), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The first tick after `now`.
    pub fn next_tick(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&now.with_timezone(&self.tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// A rule ready to sweep.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub filter: FilterConfig,
    pub schedule: Schedule,
    pub direct: bool,
    pub digest: Option<Schedule>,
    pub providers: Option<Vec<String>>,
}

impl SweeperConfig {
    /// The rules, parsed; errors name the key at fault (`sweeper.rules[1].schedule`).
    pub fn rules(&self) -> Result<Vec<Rule>, (String, String)> {
        let tz: Tz = self.time_zone.parse().map_err(|_| {
            (
                "sweeper.time_zone".to_owned(),
                format!("`{}` is not an IANA time zone", self.time_zone),
            )
        })?;
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::with_capacity(self.rules.len());
        for (i, r) in self.rules.iter().enumerate() {
            let key = |k: &str| format!("sweeper.rules[{i}].{k}");
            if r.name.trim().is_empty() {
                return Err((key("name"), "must not be empty".into()));
            }
            if !seen.insert(r.name.clone()) {
                return Err((key("name"), format!("`{}` names two rules", r.name)));
            }
            if !r.direct && r.digest.is_none() {
                return Err((
                    key("direct"),
                    "the rule sends nothing: set `direct: true` or a `digest`".into(),
                ));
            }
            let f = &r.filter;
            if f.status_in.is_empty()
                && f.status_not_in.is_empty()
                && f.untouched_over_days.is_none()
                && f.in_status_over_days.is_none()
                && f.labels.is_empty()
                && f.fields.is_empty()
            {
                return Err((
                    key("filter"),
                    "matches every ticket: set a condition".into(),
                ));
            }
            if let Some(s) = f.status_in.iter().find(|s| f.status_not_in.contains(s)) {
                return Err((
                    key("filter.status_in"),
                    format!("`{s}` is in both `status_in` and `status_not_in`"),
                ));
            }
            let schedule = Schedule::parse(&r.schedule, tz).map_err(|e| (key("schedule"), e))?;
            let digest = match &r.digest {
                Some(d) => Some(
                    Schedule::parse(&d.schedule, tz).map_err(|e| (key("digest.schedule"), e))?,
                ),
                None => None,
            };
            out.push(Rule {
                name: r.name.clone(),
                filter: r.filter.clone(),
                schedule,
                direct: r.direct,
                digest,
                providers: r.providers.clone(),
            });
        }
        Ok(out)
    }
}

impl FilterConfig {
    /// Whether ticket `t` matches at `now`. Unparseable times never match:
    /// a ticket the sweeper cannot date is not called stale.
    pub fn matches(&self, t: &TicketRow, now: DateTime<Utc>) -> bool {
        if !self.status_in.is_empty() && !self.status_in.contains(&t.status) {
            return false;
        }
        if self.status_not_in.contains(&t.status) {
            return false;
        }
        if let Some(n) = self.untouched_over_days
            && !over_days(&t.updated_at, now, n)
        {
            return false;
        }
        if let Some(n) = self.in_status_over_days
            && !over_days(t.status_since(), now, n)
        {
            return false;
        }
        if !self.labels.iter().all(|l| t.labels.contains(l)) {
            return false;
        }
        self.fields
            .iter()
            .all(|(k, v)| t.fields.get(k).is_some_and(|have| have == v))
    }
}

/// Whole days from `at` to `now`, as the seed counts them
/// (`timedelta.days`); `None` when `at` is not RFC 3339.
pub fn whole_days(at: &str, now: DateTime<Utc>) -> Option<i64> {
    let at = DateTime::parse_from_rfc3339(at).ok()?;
    Some(
        (now - at.with_timezone(&Utc))
            .num_seconds()
            .div_euclid(86_400),
    )
}

fn over_days(at: &str, now: DateTime<Utc>, n: u32) -> bool {
    whole_days(at, now).is_some_and(|d| d > i64::from(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(status: &str, updated: &str, status_since: Option<&str>) -> TicketRow {
        TicketRow {
            guid: "g".into(),
            subject: "s".into(),
            description: String::new(),
            status: status.into(),
            priority: "MEDIUM".into(),
            ticket_type: "TASK".into(),
            assignee: None,
            requested_by: None,
            labels: vec!["infra".into()],
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: updated.into(),
            resolved_at: None,
            resolved_by: None,
            escalated_at: None,
            escalated_by: None,
            escalation_reason: None,
            fields: Default::default(),
            status_changed_at: status_since.map(str::to_owned),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn seed_rules_match_as_the_seed_counts_days() {
        let rules = SweeperConfig::default().rules().unwrap();
        let (stale, qa) = (&rules[0].filter, &rules[1].filter);
        let now = at("2026-06-01T12:00:00Z");
        // (name, ticket, stale?, qa_overdue?)
        let cases = [
            // 61 whole days untouched: the seed's `.days > 60`.
            (
                "61 days open",
                ticket("OPEN", "2026-04-01T11:00:00Z", None),
                true,
                false,
            ),
            // 60 days and 23 hours is 60 whole days: not yet.
            (
                "60 days open",
                ticket("OPEN", "2026-04-01T13:00:00Z", None),
                false,
                false,
            ),
            (
                "old but closed",
                ticket("CLOSED", "2025-01-01T00:00:00Z", None),
                false,
                false,
            ),
            (
                "old cancelled",
                ticket("CANCELLED", "2025-01-01T00:00:00Z", None),
                false,
                false,
            ),
            (
                "QA 8 days",
                ticket("QA", "2026-05-31T00:00:00Z", Some("2026-05-24T11:00:00Z")),
                false,
                true,
            ),
            (
                "QA 7 days",
                ticket("QA", "2026-05-31T00:00:00Z", Some("2026-05-25T11:00:00Z")),
                false,
                false,
            ),
            (
                "DEPLOYED never moved, created long ago",
                ticket("DEPLOYED", "2026-05-31T00:00:00Z", None),
                false,
                true,
            ),
            ("no date", ticket("OPEN", "yesterday", None), false, false),
        ];
        for (name, t, want_stale, want_qa) in cases {
            assert_eq!(stale.matches(&t, now), want_stale, "{name}: stale");
            assert_eq!(qa.matches(&t, now), want_qa, "{name}: qa_overdue");
        }
    }

    #[test]
    fn labels_and_fields_narrow_a_rule() {
        let now = at("2026-06-01T12:00:00Z");
        let mut f = FilterConfig {
            labels: vec!["infra".into()],
            ..FilterConfig::default()
        };
        let mut t = ticket("OPEN", "2026-05-01T00:00:00Z", None);
        assert!(f.matches(&t, now));
        f.fields.insert("team".into(), "bi".into());
        assert!(!f.matches(&t, now));
        t.fields.insert("team".into(), "bi".into());
        assert!(f.matches(&t, now));
        f.labels.push("urgent".into());
        assert!(!f.matches(&t, now));
    }

    #[test]
    fn schedules_tick_in_their_time_zone() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let mondays = Schedule::parse("0 9 * * MON", tz).unwrap();
        // Monday 2026-06-01 09:00 in Berlin (summer) is 07:00 UTC.
        assert_eq!(
            mondays.last_tick(at("2026-06-03T12:00:00Z")),
            Some(at("2026-06-01T07:00:00Z"))
        );
        assert_eq!(
            mondays.last_tick(at("2026-06-01T07:00:00Z")),
            Some(at("2026-06-01T07:00:00Z"))
        );
        assert_eq!(
            mondays.next_tick(at("2026-06-01T07:00:00Z")),
            Some(at("2026-06-08T07:00:00Z"))
        );
    }

    #[test]
    fn invalid_rules_name_the_key() {
        let parse = |yaml: &str| -> (String, String) {
            let c: SweeperConfig = serde_yaml_ng::from_str(yaml).unwrap();
            c.rules().unwrap_err()
        };
        let cases = [
            ("time_zone: Mars/Olympus", "sweeper.time_zone"),
            (
                "rules: [{name: a, schedule: 'every day', filter: {labels: [x]}}]",
                "sweeper.rules[0].schedule",
            ),
            (
                "rules: [{name: a, filter: {labels: [x]}, digest: {schedule: '99 * * * *'}}]",
                "sweeper.rules[0].digest.schedule",
            ),
            ("rules: [{name: a}]", "sweeper.rules[0].filter"),
            (
                "rules: [{name: a, filter: {labels: [x]}}, {name: a, filter: {labels: [y]}}]",
                "sweeper.rules[1].name",
            ),
            (
                "rules: [{name: a, direct: false, filter: {labels: [x]}}]",
                "sweeper.rules[0].direct",
            ),
            (
                "rules: [{name: a, filter: {status_in: [QA], status_not_in: [QA]}}]",
                "sweeper.rules[0].filter.status_in",
            ),
        ];
        for (yaml, key) in cases {
            assert_eq!(parse(yaml).0, key, "{yaml}");
        }
    }
}
