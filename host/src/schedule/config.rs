//! The configuration of a provider's periodic ticks: `schedule:` (scheduled
//! pulls, each a cron expression in a time zone or a fixed number of
//! seconds) and `sync.interval_secs` (reconciliation), parsed into the
//! [`Cadence`] a tick's period is computed from. Pure: knows nothing of
//! storage.

use chrono::{DateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::sweeper::rules::Schedule;

/// The path segment of reconciliation ticks (`/tick/reconcile/{id}`): no
/// schedule may take this name.
pub const RECONCILE: &str = "reconcile";

/// One entry of `providers.<p>.schedule`: a name and exactly one of `cron`
/// (with an optional `timezone`, default UTC) or `every_secs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// The tick's path is `/tick/{name}`: lower-case letters, digits, `_`, `-`.
    pub name: String,
    /// A cron expression (5 fields, or 6 with seconds first).
    pub cron: Option<String>,
    /// The IANA zone `cron` is read in; default UTC.
    pub timezone: Option<String>,
    /// A tick every this many seconds, periods aligned to the Unix epoch.
    pub every_secs: Option<u64>,
}

/// When ticks fall.
#[derive(Debug, Clone)]
pub enum Cadence {
    /// Boxed: a parsed cron is large, and most cadences are few.
    Cron(Box<Schedule>),
    /// Seconds between ticks.
    Every(i64),
}

impl Cadence {
    /// The period `now` belongs to: the latest tick at or before it.
    pub fn period(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Cadence::Cron(s) => s.last_tick(now),
            Cadence::Every(secs) => {
                let start = now.timestamp().div_euclid(*secs) * secs;
                Utc.timestamp_opt(start, 0).single()
            }
        }
    }

    /// The first tick after `now`.
    pub fn next(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Cadence::Cron(s) => s.next_tick(now),
            Cadence::Every(secs) => {
                let start = (now.timestamp().div_euclid(*secs) + 1) * secs;
                Utc.timestamp_opt(start, 0).single()
            }
        }
    }
}

/// A scheduled pull, parsed.
#[derive(Debug, Clone)]
pub struct Pull {
    pub name: String,
    pub cadence: Cadence,
}

/// Parses `providers.{provider}.schedule`; errors are (key path, message).
pub fn pulls(provider: &str, entries: &[ScheduleConfig]) -> Result<Vec<Pull>, (String, String)> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let key = |k: &str| format!("providers.{provider}.schedule[{i}].{k}");
        let name_ok = !e.name.is_empty()
            && e.name.len() <= 64
            && e.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_ok {
            return Err((
                key("name"),
                format!(
                    "`{}` is not a schedule name (1 to 64 lower-case letters, digits, `_`, `-`)",
                    e.name
                ),
            ));
        }
        if e.name == RECONCILE {
            return Err((
                key("name"),
                format!("`{RECONCILE}` is reserved for `sync.interval_secs`' ticks"),
            ));
        }
        if !seen.insert(e.name.as_str()) {
            return Err((key("name"), format!("`{}` names two schedules", e.name)));
        }
        let cadence = match (&e.cron, e.every_secs) {
            (Some(expr), None) => {
                let zone = e.timezone.as_deref().unwrap_or("UTC");
                let tz: Tz = zone.parse().map_err(|_| {
                    (
                        key("timezone"),
                        format!("`{zone}` is not an IANA time zone"),
                    )
                })?;
                Cadence::Cron(Box::new(
                    Schedule::parse(expr, tz).map_err(|m| (key("cron"), m))?,
                ))
            }
            (None, Some(secs)) => {
                if e.timezone.is_some() {
                    return Err((
                        key("timezone"),
                        "applies to `cron` only; `every_secs` counts from the Unix epoch".into(),
                    ));
                }
                Cadence::Every(every(secs).map_err(|m| (key("every_secs"), m))?)
            }
            _ => {
                return Err((
                    format!("providers.{provider}.schedule[{i}]"),
                    "set exactly one of `cron` and `every_secs`".into(),
                ));
            }
        };
        out.push(Pull {
            name: e.name.clone(),
            cadence,
        });
    }
    Ok(out)
}

/// A number of seconds between ticks: at least 1, at most a year.
pub fn every(secs: u64) -> Result<i64, String> {
    match i64::try_from(secs) {
        Ok(s) if (1..=366 * 86_400).contains(&s) => Ok(s),
        _ => Err(format!("{secs} is not between 1 and 31622400 seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn entry(name: &str, cron: Option<&str>, every_secs: Option<u64>) -> ScheduleConfig {
        ScheduleConfig {
            name: name.into(),
            cron: cron.map(Into::into),
            timezone: None,
            every_secs,
        }
    }

    #[test]
    fn periods_are_the_latest_tick_at_or_before_now() {
        let p = pulls(
            "codebase",
            &[
                entry("hourly", Some("0 * * * *"), None),
                entry("fast", None, Some(300)),
            ],
        )
        .unwrap();
        let now = at("2026-06-01T09:32:10Z");
        assert_eq!(p[0].cadence.period(now), Some(at("2026-06-01T09:00:00Z")));
        assert_eq!(p[0].cadence.next(now), Some(at("2026-06-01T10:00:00Z")));
        assert_eq!(p[1].cadence.period(now), Some(at("2026-06-01T09:30:00Z")));
        assert_eq!(p[1].cadence.next(now), Some(at("2026-06-01T09:35:00Z")));
        // A tick's own instant belongs to its period.
        assert_eq!(
            p[1].cadence.period(at("2026-06-01T09:35:00Z")),
            Some(at("2026-06-01T09:35:00Z"))
        );
    }

    #[test]
    fn a_cron_is_read_in_its_time_zone() {
        let mut e = entry("morning", Some("0 9 * * *"), None);
        e.timezone = Some("Europe/Berlin".into());
        let p = pulls("codebase", &[e]).unwrap();
        // 09:00 in Berlin is 07:00 UTC in summer.
        assert_eq!(
            p[0].cadence.period(at("2026-06-01T08:00:00Z")),
            Some(at("2026-06-01T07:00:00Z"))
        );
    }

    #[test]
    fn invalid_schedules_name_the_key() {
        let err = |entries: &[ScheduleConfig]| pulls("codebase", entries).unwrap_err();
        assert_eq!(
            err(&[entry("a", Some("0 * * * *"), Some(5))]).0,
            "providers.codebase.schedule[0]"
        );
        assert_eq!(
            err(&[entry("a", None, None)]).0,
            "providers.codebase.schedule[0]"
        );
        assert_eq!(
            err(&[entry("Pull Now", None, Some(5))]).0,
            "providers.codebase.schedule[0].name"
        );
        assert_eq!(
            err(&[entry("reconcile", None, Some(5))]).0,
            "providers.codebase.schedule[0].name"
        );
        assert_eq!(
            err(&[entry("a", None, Some(5)), entry("a", None, Some(6))]).0,
            "providers.codebase.schedule[1].name"
        );
        assert_eq!(
            err(&[entry("a", Some("not cron"), None)]).0,
            "providers.codebase.schedule[0].cron"
        );
        assert_eq!(
            err(&[entry("a", None, Some(0))]).0,
            "providers.codebase.schedule[0].every_secs"
        );
        let mut zoned = entry("a", Some("0 * * * *"), None);
        zoned.timezone = Some("Mars/Base".into());
        assert_eq!(err(&[zoned]).0, "providers.codebase.schedule[0].timezone");
    }
}
