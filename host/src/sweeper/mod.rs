//! The stale-ticket sweeper (seed 2): on each rule's schedule, finds the
//! tickets its filter matches and records a notice per ticket (`direct`,
//! to the assignee) and per digest tick (`digest`, every matching ticket)
//! as a `stale` history row offered to the outbound providers through the
//! outbox — so retries, dead letters and the outbox API apply, and the
//! providers' mappers word the messages.
//!
//! Once per period: each notice is remembered per (rule, kind, ticket,
//! schedule tick) in the same transaction as its history and outbox rows,
//! so a rerun, a restart or a second replica records nothing twice. On
//! PostgreSQL one replica leads (an advisory lock, `schedule::lead`); on
//! SQLite there is one host. Every sweep takes `now`, so tests drive it with a clock of their
//! own. Knows nothing of HTTP or SQL.

pub mod rules;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::change::{ChangeKind, NoticeKind, StaleNotice};
use crate::metrics::Metrics;
use crate::outbound::feed::view;
use crate::store::{NewHistory, NewNotice, Store, StoreError, TicketRow, timestamp};
pub use rules::{Rule, SweeperConfig};

/// The `actor` of the sweeper's history rows.
pub const ACTOR: &str = "sweeper";

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("{key}: {message}")]
    Config { key: String, message: String },
    #[error("ticket store")]
    Store(#[from] StoreError),
}

/// A notice due now.
#[derive(Debug, Clone)]
pub struct Notice {
    pub rule: String,
    pub kind: NoticeKind,
    /// The schedule tick it belongs to.
    pub period: DateTime<Utc>,
    /// One ticket for `direct`; every matching ticket for `digest`.
    pub tickets: Vec<TicketRow>,
    /// The outbound providers offered it.
    pub providers: Vec<String>,
}

impl Notice {
    /// Who a direct notice is for: the assignee, else the requester (the
    /// seed's reporter); `None` for a digest or a ticket with neither.
    pub fn recipient(&self) -> Option<&str> {
        match self.kind {
            NoticeKind::Digest => None,
            NoticeKind::Direct => self
                .tickets
                .first()
                .and_then(|t| t.assignee.as_deref().or(t.requested_by.as_deref())),
        }
    }
}

/// When a rule fires next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTimes {
    pub rule: String,
    pub next_direct: Option<DateTime<Utc>>,
    pub next_digest: Option<DateTime<Utc>>,
}

/// The sweeper: its rules and whom they tell.
#[derive(Clone)]
pub struct Sweeper {
    rules: Vec<Rule>,
    /// Every provider with `outbound`: a rule without `providers` tells them all.
    outbound: Vec<String>,
    catch_up: chrono::Duration,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Sweeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sweeper")
            .field("rules", &self.rules)
            .field("outbound", &self.outbound)
            .finish_non_exhaustive()
    }
}

fn kind_name(k: NoticeKind) -> &'static str {
    match k {
        NoticeKind::Direct => "direct",
        NoticeKind::Digest => "digest",
    }
}

impl Sweeper {
    pub fn new(cfg: &SweeperConfig, outbound: Vec<String>) -> Result<Sweeper, SweepError> {
        let rules = cfg
            .rules()
            .map_err(|(key, message)| SweepError::Config { key, message })?;
        Ok(Sweeper {
            rules,
            outbound,
            catch_up: chrono::Duration::hours(i64::from(cfg.catch_up_hours)),
            metrics: None,
        })
    }

    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Sweeper {
        self.metrics = Some(metrics);
        self
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Each rule's next ticks after `now`.
    pub fn times(&self, now: DateTime<Utc>) -> Vec<RuleTimes> {
        self.rules
            .iter()
            .map(|r| RuleTimes {
                rule: r.name.clone(),
                next_direct: r.direct.then(|| r.schedule.next_tick(now)).flatten(),
                next_digest: r.digest.as_ref().and_then(|d| d.next_tick(now)),
            })
            .collect()
    }

    /// The latest tick of `schedule` at or before `now`, unless it is older
    /// than the catch-up window (a tick missed long ago is not sent late).
    fn due_tick(&self, schedule: &rules::Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        schedule
            .last_tick(now)
            .filter(|t| now - *t <= self.catch_up)
    }

    /// The notices due at `now` that no one recorded yet: what a sweep
    /// would send (`host sweep --dry-run`).
    pub async fn plan(&self, store: &Store, now: DateTime<Utc>) -> Result<Vec<Notice>, SweepError> {
        let mut out = Vec::new();
        for r in &self.rules {
            let direct = if r.direct {
                self.due_tick(&r.schedule, now)
            } else {
                None
            };
            let digest = r.digest.as_ref().and_then(|d| self.due_tick(d, now));
            if direct.is_none() && digest.is_none() {
                continue;
            }
            let providers = r.providers.clone().unwrap_or_else(|| self.outbound.clone());
            let matching: Vec<TicketRow> = store
                .sweep_candidates(&r.filter.status_in, &r.filter.status_not_in)
                .await?
                .into_iter()
                .filter(|t| r.filter.matches(t, now))
                .collect();
            if let Some(period) = direct {
                let p = timestamp(period);
                for t in &matching {
                    if !store
                        .notice_recorded(&r.name, "direct", Some(&t.guid), &p)
                        .await?
                    {
                        out.push(Notice {
                            rule: r.name.clone(),
                            kind: NoticeKind::Direct,
                            period,
                            tickets: vec![t.clone()],
                            providers: providers.clone(),
                        });
                    }
                }
            }
            if let Some(period) = digest
                && !matching.is_empty()
                && !store
                    .notice_recorded(&r.name, "digest", None, &timestamp(period))
                    .await?
            {
                out.push(Notice {
                    rule: r.name.clone(),
                    kind: NoticeKind::Digest,
                    period,
                    tickets: matching,
                    providers,
                });
            }
        }
        Ok(out)
    }

    /// Records every notice due at `now`: a `stale` history row and its
    /// outbox rows, each in one transaction with the memory of the notice.
    /// Returns the notices recorded by this call (not those someone else
    /// recorded first).
    pub async fn sweep(
        &self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<Vec<Notice>, SweepError> {
        let at = timestamp(now);
        let mut recorded = Vec::new();
        for n in self.plan(store, now).await? {
            // A digest has no single ticket, but a history row needs one:
            // it is filed under its first (longest untouched) ticket, and
            // its outbox rows carry no ticket (see ARCHITECTURE.md).
            let Some(first) = n.tickets.first() else {
                continue;
            };
            let change = ChangeKind::Stale(StaleNotice {
                rule: n.rule.clone(),
                kind: n.kind,
                tickets: n.tickets.iter().map(view).collect(),
            })
            .to_json();
            let mut tx = store.begin().await?;
            let history_id = tx
                .append_history(&NewHistory {
                    ticket_guid: &first.guid,
                    kind: "stale",
                    change: change.to_string(),
                    actor: Some(ACTOR),
                    origin: None,
                    delivery_id: None,
                    mapper_hash: None,
                    at: &at,
                })
                .await?;
            let ticket = match n.kind {
                NoticeKind::Direct => Some(first.guid.as_str()),
                NoticeKind::Digest => None,
            };
            let fresh = tx
                .record_notice(&NewNotice {
                    rule: &n.rule,
                    kind: kind_name(n.kind),
                    ticket_guid: ticket,
                    period: &timestamp(n.period),
                    history_id,
                    tickets: i64::try_from(n.tickets.len()).unwrap_or(i64::MAX),
                    at: &at,
                })
                .await?;
            if !fresh {
                // Recorded meanwhile by another replica: dropping the
                // transaction rolls the history row back.
                continue;
            }
            for p in &n.providers {
                match ticket {
                    Some(guid) => tx.enqueue_outbound(history_id, p, guid, &at).await?,
                    None => tx.enqueue_untied(history_id, p, &at).await?,
                }
            }
            tx.commit().await?;
            if let Some(m) = &self.metrics {
                m.sweeper_notice(&n.rule, kind_name(n.kind));
            }
            tracing::info!(
                rule = %n.rule,
                kind = kind_name(n.kind),
                tickets = n.tickets.len(),
                history = history_id,
                "sweeper notice recorded"
            );
            recorded.push(n);
        }
        Ok(recorded)
    }
}

/// The text `host sweep` prints: one line per notice, then a total.
pub fn render(notices: &[Notice], now: DateTime<Utc>, dry_run: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let verb = if dry_run { "would send" } else { "recorded" };
    for n in notices {
        let period = timestamp(n.period);
        let to = n.providers.join(",");
        match n.kind {
            NoticeKind::Direct => {
                let Some(t) = n.tickets.first() else { continue };
                let days = rules::whole_days(&t.updated_at, now).unwrap_or_default();
                let in_status = rules::whole_days(t.status_since(), now).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{} direct  {} {} \"{}\" untouched {days}d, in status {in_status}d -> {} via [{to}] (period {period})",
                    n.rule,
                    t.guid,
                    t.status,
                    t.subject,
                    n.recipient().unwrap_or("(no assignee or requester)"),
                );
            }
            NoticeKind::Digest => {
                let _ = writeln!(
                    out,
                    "{} digest  {} tickets via [{to}] (period {period})",
                    n.rule,
                    n.tickets.len()
                );
                for t in &n.tickets {
                    let _ = writeln!(out, "    {} {} \"{}\"", t.guid, t.status, t.subject);
                }
            }
        }
    }
    let _ = writeln!(out, "{verb} {} notices", notices.len());
    out
}
