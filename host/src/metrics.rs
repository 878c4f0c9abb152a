//! Prometheus metrics, rendered by hand in the text exposition format:
//! a few counters and one histogram do not need a metrics framework.
//!
//! - `sluice_deliveries_total{provider,outcome}`: `accepted`, `duplicate`,
//!   `applied`, `ignored`, `failed`, `retried`, `dead`;
//! - `sluice_verification_failures_total{provider}`;
//! - `sluice_mapper_call_seconds{provider}`: a histogram;
//! - `sluice_inbox_commits_total`, `sluice_inbox_rows_total`: group
//!   commits of the inbox and the deliveries they stored (rows per commit
//!   is the batching the load achieved);
//! - `sluice_inbox_depth`: deliveries pending or processing (read at scrape);
//! - `sluice_outbound_total{provider,outcome}`: outbox rows ended `sent`,
//!   `ignored`, `failed`, `retried`, `dead`;
//! - `sluice_outbound_errors_total{provider,code}`: outbox rows that ended
//!   a turn failed, retrying or dead, by error code (`auth_failed`,
//!   `not_found`, `rate_limited`, `validation_failed`, `conflict`,
//!   `unavailable`, `refused`, `mapping_failed`);
//! - `sluice_outbound_request_seconds{provider}`: a histogram of each
//!   request sent to a provider (answer or no answer);
//! - `sluice_outbox_depth`: outbox rows pending, retrying or being sent;
//! - `sluice_sweeper_notices_total{rule,kind}`: notices the sweeper
//!   recorded (`direct`, `digest`);
//! - `sluice_sync_conflicts_total{provider,policy}`: fields an inbound
//!   action and the ticket had both moved since they last synced, by the
//!   policy that decided them.
//! - `sluice_leader`: 1 while this replica leads the periodic work (ticks
//!   and the sweeper), else 0.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::store::ErrorCode;

/// Upper bounds of the mapper-call histogram, in seconds.
const BUCKETS: [f64; 11] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.1, 1.0,
];

/// Upper bounds of the outbound-request histogram, in seconds.
const HTTP_BUCKETS: [f64; 11] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 10.0,
];

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    deliveries: BTreeMap<(String, &'static str), u64>,
    verification_failures: BTreeMap<String, u64>,
    mapper_calls: BTreeMap<String, Histogram>,
    inbox_commits: u64,
    inbox_rows: u64,
    mapper_reloads: BTreeMap<(String, &'static str), u64>,
    outbound: BTreeMap<(String, &'static str), u64>,
    outbound_errors: BTreeMap<(String, ErrorCode), u64>,
    outbound_requests: BTreeMap<String, Histogram<{ HTTP_BUCKETS.len() }>>,
    sweeper_notices: BTreeMap<(String, &'static str), u64>,
    sync_conflicts: BTreeMap<(String, &'static str), u64>,
    leader: bool,
}

struct Histogram<const N: usize = { BUCKETS.len() }> {
    buckets: [u64; N],
    count: u64,
    sum: f64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            buckets: [0; N],
            count: 0,
            sum: 0.0,
        }
    }
}

impl<const N: usize> Histogram<N> {
    fn observe(&mut self, bounds: &[f64; N], secs: f64) {
        for (i, bound) in bounds.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    fn render(&self, out: &mut String, name: &str, provider: &str, bounds: &[f64; N]) {
        let p = esc(provider);
        for (bound, n) in bounds.iter().zip(self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{provider=\"{p}\",le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{provider=\"{p}\",le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{provider=\"{p}\"}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{provider=\"{p}\"}} {}", self.count);
    }
}

/// Gauges read from the store at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Depths {
    pub inbox: i64,
    pub outbox: i64,
}

impl Metrics {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        // A panic while counting leaves valid counters behind.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn delivery(&self, provider: &str, outcome: &'static str) {
        *self
            .inner()
            .deliveries
            .entry((provider.to_owned(), outcome))
            .or_default() += 1;
    }

    pub fn verification_failed(&self, provider: &str) {
        *self
            .inner()
            .verification_failures
            .entry(provider.to_owned())
            .or_default() += 1;
    }

    pub fn inbox_commit(&self, rows: usize) {
        let mut inner = self.inner();
        inner.inbox_commits += 1;
        inner.inbox_rows += rows as u64;
    }

    pub fn mapper_call(&self, provider: &str, elapsed: Duration) {
        self.inner()
            .mapper_calls
            .entry(provider.to_owned())
            .or_default()
            .observe(&BUCKETS, elapsed.as_secs_f64());
    }

    /// An outbox row of `provider` ended with `outcome`.
    pub fn outbound(&self, provider: &str, outcome: &'static str) {
        *self
            .inner()
            .outbound
            .entry((provider.to_owned(), outcome))
            .or_default() += 1;
    }

    /// An outbox row of `provider` ended a turn with an error of `code`.
    pub fn outbound_error(&self, provider: &str, code: ErrorCode) {
        *self
            .inner()
            .outbound_errors
            .entry((provider.to_owned(), code))
            .or_default() += 1;
    }

    /// One request sent to `provider`'s API took `elapsed`.
    pub fn outbound_request(&self, provider: &str, elapsed: Duration) {
        self.inner()
            .outbound_requests
            .entry(provider.to_owned())
            .or_default()
            .observe(&HTTP_BUCKETS, elapsed.as_secs_f64());
    }

    /// The sweeper recorded a notice of `rule`.
    pub fn sweeper_notice(&self, rule: &str, kind: &'static str) {
        *self
            .inner()
            .sweeper_notices
            .entry((rule.to_owned(), kind))
            .or_default() += 1;
    }

    /// Whether this replica leads the periodic work now.
    pub fn set_leader(&self, leads: bool) {
        self.inner().leader = leads;
    }

    /// A reload of `provider`'s mapper ended with `outcome`.
    /// A field both sides moved, decided by `policy`.
    pub fn sync_conflict(&self, provider: &str, policy: &'static str) {
        *self
            .inner()
            .sync_conflicts
            .entry((provider.to_owned(), policy))
            .or_default() += 1;
    }

    pub fn mapper_reload(&self, provider: &str, outcome: &'static str) {
        *self
            .inner()
            .mapper_reloads
            .entry((provider.to_owned(), outcome))
            .or_default() += 1;
    }

    /// The exposition text; the depths are read by the caller at scrape.
    pub fn render(&self, depths: Depths) -> String {
        let inner = self.inner();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP sluice_deliveries_total Webhook deliveries by provider and outcome."
        );
        let _ = writeln!(out, "# TYPE sluice_deliveries_total counter");
        for ((provider, outcome), n) in &inner.deliveries {
            let _ = writeln!(
                out,
                "sluice_deliveries_total{{provider=\"{}\",outcome=\"{outcome}\"}} {n}",
                esc(provider)
            );
        }
        let _ = writeln!(
            out,
            "# HELP sluice_verification_failures_total Webhooks refused for their signature or token."
        );
        let _ = writeln!(out, "# TYPE sluice_verification_failures_total counter");
        for (provider, n) in &inner.verification_failures {
            let _ = writeln!(
                out,
                "sluice_verification_failures_total{{provider=\"{}\"}} {n}",
                esc(provider)
            );
        }
        let _ = writeln!(
            out,
            "# HELP sluice_mapper_call_seconds Time of one mapper call, fresh instance included."
        );
        let _ = writeln!(out, "# TYPE sluice_mapper_call_seconds histogram");
        for (provider, h) in &inner.mapper_calls {
            h.render(&mut out, "sluice_mapper_call_seconds", provider, &BUCKETS);
        }
        let _ = writeln!(
            out,
            "# HELP sluice_inbox_commits_total Inbox transactions committed (group commits)."
        );
        let _ = writeln!(out, "# TYPE sluice_inbox_commits_total counter");
        let _ = writeln!(out, "sluice_inbox_commits_total {}", inner.inbox_commits);
        let _ = writeln!(
            out,
            "# HELP sluice_inbox_rows_total Deliveries stored by those commits."
        );
        let _ = writeln!(out, "# TYPE sluice_inbox_rows_total counter");
        let _ = writeln!(out, "sluice_inbox_rows_total {}", inner.inbox_rows);
        let _ = writeln!(
            out,
            "# HELP sluice_mapper_reloads_total Mapper versions loaded, releases refused, files removed."
        );
        let _ = writeln!(out, "# TYPE sluice_mapper_reloads_total counter");
        for ((provider, outcome), n) in &inner.mapper_reloads {
            let _ = writeln!(
                out,
                "sluice_mapper_reloads_total{{provider=\"{}\",outcome=\"{outcome}\"}} {n}",
                esc(provider)
            );
        }
        let _ = writeln!(
            out,
            "# HELP sluice_inbox_depth Deliveries pending or being processed."
        );
        let _ = writeln!(out, "# TYPE sluice_inbox_depth gauge");
        let _ = writeln!(out, "sluice_inbox_depth {}", depths.inbox);
        let _ = writeln!(
            out,
            "# HELP sluice_outbound_total Outbox rows by provider and how they ended."
        );
        let _ = writeln!(out, "# TYPE sluice_outbound_total counter");
        for ((provider, outcome), n) in &inner.outbound {
            let _ = writeln!(
                out,
                "sluice_outbound_total{{provider=\"{}\",outcome=\"{outcome}\"}} {n}",
                esc(provider)
            );
        }
        let _ = writeln!(
            out,
            "# HELP sluice_outbound_errors_total Outbox turns that ended in an error, by provider and code."
        );
        let _ = writeln!(out, "# TYPE sluice_outbound_errors_total counter");
        for ((provider, code), n) in &inner.outbound_errors {
            let _ = writeln!(
                out,
                "sluice_outbound_errors_total{{provider=\"{}\",code=\"{code}\"}} {n}",
                esc(provider)
            );
        }
        let _ = writeln!(
            out,
            "# HELP sluice_outbound_request_seconds Time of one request to a provider's API."
        );
        let _ = writeln!(out, "# TYPE sluice_outbound_request_seconds histogram");
        for (provider, h) in &inner.outbound_requests {
            h.render(
                &mut out,
                "sluice_outbound_request_seconds",
                provider,
                &HTTP_BUCKETS,
            );
        }
        let _ = writeln!(
            out,
            "# HELP sluice_outbox_depth Outbox rows pending, retrying or being sent."
        );
        let _ = writeln!(out, "# TYPE sluice_outbox_depth gauge");
        let _ = writeln!(out, "sluice_outbox_depth {}", depths.outbox);
        let _ = writeln!(
            out,
            "# HELP sluice_sweeper_notices_total Notices the stale-ticket sweeper recorded."
        );
        let _ = writeln!(out, "# TYPE sluice_sweeper_notices_total counter");
        for ((rule, kind), n) in &inner.sweeper_notices {
            let _ = writeln!(
                out,
                "sluice_sweeper_notices_total{{rule=\"{}\",kind=\"{kind}\"}} {n}",
                esc(rule)
            );
        }
        let _ = writeln!(
            out,
            "# HELP sluice_sync_conflicts_total Fields both sides moved since they last synced, by policy."
        );
        let _ = writeln!(out, "# TYPE sluice_sync_conflicts_total counter");
        for ((provider, policy), n) in &inner.sync_conflicts {
            let _ = writeln!(
                out,
                "sluice_sync_conflicts_total{{provider=\"{}\",policy=\"{policy}\"}} {n}",
                esc(provider)
            );
        }
        let _ = writeln!(
            out,
            "# HELP sluice_leader 1 while this replica leads the periodic work (ticks, sweeper)."
        );
        let _ = writeln!(out, "# TYPE sluice_leader gauge");
        let _ = writeln!(out, "sluice_leader {}", u8::from(inner.leader));
        out
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.delivery("github", "applied");
        m.delivery("github", "applied");
        m.verification_failed("slack");
        m.mapper_call("github", Duration::from_micros(80));
        m.mapper_call("github", Duration::from_millis(3));
        m.inbox_commit(3);
        m.inbox_commit(1);
        m.mapper_reload("github", "refused");
        m.outbound("slack", "sent");
        m.sweeper_notice("stale", "direct");
        m.outbound_request("slack", Duration::from_millis(3));
        let text = m.render(Depths {
            inbox: 4,
            outbox: 2,
        });
        for line in [
            r#"sluice_deliveries_total{provider="github",outcome="applied"} 2"#,
            r#"sluice_verification_failures_total{provider="slack"} 1"#,
            r#"sluice_mapper_call_seconds_bucket{provider="github",le="0.00005"} 0"#,
            r#"sluice_mapper_call_seconds_bucket{provider="github",le="0.0001"} 1"#,
            r#"sluice_mapper_call_seconds_bucket{provider="github",le="0.005"} 2"#,
            r#"sluice_mapper_call_seconds_bucket{provider="github",le="+Inf"} 2"#,
            r#"sluice_mapper_call_seconds_count{provider="github"} 2"#,
            "sluice_inbox_depth 4",
            "sluice_inbox_commits_total 2",
            "sluice_inbox_rows_total 4",
            r#"sluice_mapper_reloads_total{provider="github",outcome="refused"} 1"#,
            r#"sluice_outbound_total{provider="slack",outcome="sent"} 1"#,
            r#"sluice_sweeper_notices_total{rule="stale",kind="direct"} 1"#,
            r#"sluice_outbound_request_seconds_bucket{provider="slack",le="0.0025"} 0"#,
            r#"sluice_outbound_request_seconds_bucket{provider="slack",le="0.005"} 1"#,
            "sluice_outbox_depth 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }
}
