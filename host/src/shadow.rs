//! Shadow replay: stored deliveries through a candidate mapper, compared
//! with what the live version produced — applying nothing. A team sees
//! what a rule change would do before they drop the file in.
//!
//! The live side is what the store recorded when the delivery was
//! processed (its canonical `event_type` and `actions`, or its error) and
//! the hash of the version that produced it; the candidate runs in the
//! same sandbox and limits as the server, with the provider's
//! `mapper_config`. Nothing is written: no ticket, history, delivery
//! status or outbox row changes.

use serde_json::{Value, json};

use crate::fixture::MatchMode;
use crate::fixture::compare::diff;
use crate::mapper::{Delivery, LoadedMapper, NoProviderApi, People, Services, StateView};
use crate::store::{DeliveryFilter, DeliveryRow, DeliveryStatus, Store, StoreError};

/// Which deliveries to replay.
#[derive(Debug, Clone)]
pub struct ShadowOptions {
    pub provider: String,
    /// RFC 3339: only deliveries received after it.
    pub since: Option<String>,
    pub limit: u32,
}

/// One delivery's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowRow {
    pub delivery_id: String,
    pub received_at: String,
    /// The delivery's status in the store.
    pub status: String,
    /// The hash of the version that produced the live output, if any did.
    pub live_mapper: Option<String>,
    pub verdict: Verdict,
    /// `path: live X, candidate Y`, one per differing field.
    pub differences: Vec<String>,
    pub live: Value,
    pub candidate: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Same event type and actions (or both refused it the same way).
    Same,
    /// Both mapped it, differently.
    Differs,
    /// The live version mapped it; the candidate fails on it.
    CandidateFails,
    /// The live version failed on it; the candidate maps it.
    CandidateMaps,
    /// Never mapped yet (pending): only the candidate's answer is shown.
    NotMappedLive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Same => "same",
            Verdict::Differs => "differs",
            Verdict::CandidateFails => "candidate_fails",
            Verdict::CandidateMaps => "candidate_maps",
            Verdict::NotMappedLive => "not_mapped_live",
        }
    }
}

impl ShadowRow {
    pub fn to_json(&self) -> Value {
        json!({
            "delivery_id": self.delivery_id,
            "received_at": self.received_at,
            "status": self.status,
            "live_mapper": self.live_mapper,
            "verdict": self.verdict.as_str(),
            "differences": self.differences,
            "live": self.live,
            "candidate": self.candidate,
        })
    }
}

/// Replays `opts`' deliveries (oldest first) through `candidate`; reads the
/// store, writes nothing.
pub async fn replay(
    store: &Store,
    candidate: &LoadedMapper,
    mapper_config: &str,
    opts: &ShadowOptions,
) -> Result<Vec<ShadowRow>, StoreError> {
    let page = store
        .find_deliveries(&DeliveryFilter {
            provider: Some(opts.provider.clone()),
            received_after: opts.since.clone(),
            limit: opts.limit,
            ..DeliveryFilter::default()
        })
        .await?;
    let mut rows = page.items;
    // The store lists newest first; a report reads better in arrival order.
    rows.reverse();
    // The candidate sees who is who and the provider's state as the live
    // mapper would now; its state writes are dropped.
    let people = crate::people::Directory::new();
    people.refresh(store).await?;
    let people: std::sync::Arc<dyn People> = std::sync::Arc::new(people);
    let state: std::collections::BTreeMap<String, String> = store
        .mapper_state(&[opts.provider.as_str()])
        .await?
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mapper = candidate.clone();
        let config = mapper_config.to_owned();
        let delivery = Delivery::from(&row);
        let services = Services {
            people: Some(people.clone()),
            state: StateView::new(state.clone()),
        };
        // Mapping is CPU-bound and synchronous: off the async threads.
        let result = tokio::task::spawn_blocking(move || {
            mapper
                .map_inbound_with(&delivery, &config, Box::new(NoProviderApi), services)
                .result
        })
        .await;
        let candidate_json = match result {
            Ok(Ok(Ok(mapped))) => mapped.to_json(),
            Ok(Ok(Err(e))) => json!({"error": e.kind.as_str(), "message": e.message}),
            Ok(Err(e)) => json!({"error": e.kind(), "message": e.to_string()}),
            Err(join) => json!({"error": "internal", "message": join.to_string()}),
        };
        out.push(compare(&row, candidate_json));
    }
    Ok(out)
}

/// The live side of `row`: its canonical output, else its error.
fn live_json(row: &DeliveryRow) -> Option<Value> {
    let output = row
        .output
        .as_deref()
        .and_then(|o| serde_json::from_str::<Value>(o).ok());
    match output {
        Some(o) if o.get("actions").is_some() => Some(json!({
            "event_type": o["event_type"],
            "actions": o["actions"],
        })),
        _ => match (&row.last_error, row.status) {
            (Some(e), DeliveryStatus::Failed | DeliveryStatus::Dead) => {
                Some(json!({"error": row.status, "message": e}))
            }
            _ => None,
        },
    }
}

fn compare(row: &DeliveryRow, candidate: Value) -> ShadowRow {
    let live = live_json(row);
    let candidate_failed = candidate.get("error").is_some();
    let (verdict, differences) = match &live {
        None => (Verdict::NotMappedLive, Vec::new()),
        Some(l) if l.get("error").is_some() => {
            if candidate_failed {
                (Verdict::Same, Vec::new())
            } else {
                (Verdict::CandidateMaps, Vec::new())
            }
        }
        Some(_) if candidate_failed => (Verdict::CandidateFails, Vec::new()),
        Some(l) => {
            let d: Vec<String> = diff(l, &candidate, MatchMode::Exact)
                .into_iter()
                .map(|d| {
                    let show = |v: &Option<Value>| {
                        v.as_ref()
                            .map(Value::to_string)
                            .unwrap_or_else(|| "(absent)".into())
                    };
                    let path = if d.path.is_empty() {
                        "(value)"
                    } else {
                        &d.path
                    };
                    format!(
                        "{path}: live {}, candidate {}",
                        show(&d.expected),
                        show(&d.actual)
                    )
                })
                .collect();
            if d.is_empty() {
                (Verdict::Same, d)
            } else {
                (Verdict::Differs, d)
            }
        }
    };
    ShadowRow {
        delivery_id: row.id.clone(),
        received_at: row.received_at.clone(),
        status: row.status.to_string(),
        live_mapper: row.mapper_hash.clone(),
        verdict,
        differences,
        live: live.unwrap_or(Value::Null),
        candidate,
    }
}

/// `N deliveries: N same, N differ, ...` for the report's last line.
pub fn summary(rows: &[ShadowRow]) -> String {
    let count = |v: Verdict| rows.iter().filter(|r| r.verdict == v).count();
    format!(
        "{} deliveries: {} same, {} differ, {} candidate fails, {} candidate maps, {} not mapped live",
        rows.len(),
        count(Verdict::Same),
        count(Verdict::Differs),
        count(Verdict::CandidateFails),
        count(Verdict::CandidateMaps),
        count(Verdict::NotMappedLive),
    )
}
