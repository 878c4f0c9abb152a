//! `GET /v1/providers`: each configured provider's connector health — is
//! its mapper serving, what waits in its inbox and outbox, when a change
//! last went out, the last error with its code, and one state an operator
//! (or a dashboard) reads at a glance:
//!
//! - `connected`: the latest requests to its API succeeded and nothing is
//!   stuck;
//! - `degraded`: some of the latest requests failed, or changes or
//!   deliveries are stuck in `failed`/`dead` waiting for a retry by hand;
//! - `failing`: every one of its latest requests failed;
//! - `idle`: nothing was sent to it yet (an inbound-only provider, or one
//!   whose changes have not come), and nothing is stuck.
//!
//! "Latest" is its last [`RECENT_ATTEMPTS`] requests, whatever their age:
//! a provider that gets one change a day is judged on the same evidence
//! as a busy one, and a quiet night does not turn an outage green.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Reader;
use super::error::{ApiError, ErrorBody};
use crate::store::{DeliveryStatus, ErrorCode, OutboxStatus, ProviderCounts, RECENT_ATTEMPTS};

/// A connector's state at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorState {
    Connected,
    Degraded,
    Failing,
    Idle,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderList {
    pub providers: Vec<ProviderHealth>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderHealth {
    pub name: String,
    pub state: ConnectorState,
    /// A mapper version is serving this provider.
    pub mapper_serving: bool,
    pub inbound: InboundHealth,
    /// Absent for a provider with no outbound sync.
    pub outbound: Option<OutboundHealth>,
}

/// Deliveries of this provider by where they are.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboundHealth {
    /// Pending, processing or retrying.
    pub backlog: i64,
    /// Failed: each waits for a replay.
    pub failed: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboundHealth {
    /// Outbox rows pending, being sent or retrying.
    pub backlog: i64,
    /// Rows failed or dead: each waits for a retry by hand.
    pub failed: i64,
    /// When the newest change that went out was sent.
    pub last_success_at: Option<String>,
    /// The latest failed request, if one of the latest requests failed.
    pub last_error: Option<LastError>,
    /// How many of the latest requests (at most 20) failed.
    pub recent_failures: usize,
    pub recent_requests: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LastError {
    pub at: String,
    pub code: Option<ErrorCode>,
    pub message: String,
}

#[utoipa::path(
    get,
    tag = "providers",
    path = "/v1/providers",
    operation_id = "listProviders",
    summary = "Each provider's connector health: state, backlogs, last success, last error",
    responses(
        (status = 200, description = "one entry per configured provider", body = ProviderList),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
    )
)]
pub async fn list(
    _: Reader,
    State(state): State<ApiState>,
) -> Result<Json<ProviderList>, ApiError> {
    let mut providers = Vec::with_capacity(state.providers.len());
    for name in state.providers.iter() {
        let counts = state.store.provider_counts(name).await?;
        let outbound = state.applier.outbound.iter().any(|p| p == name);
        let serving = state
            .mappers
            .as_ref()
            .is_some_and(|m| m.get(name).is_some());
        providers.push(health(name, serving, outbound, &counts));
    }
    Ok(Json(ProviderList { providers }))
}

/// One provider's health from its stored counts.
pub fn health(
    name: &str,
    mapper_serving: bool,
    outbound: bool,
    counts: &ProviderCounts,
) -> ProviderHealth {
    let deliveries = |wanted: &[DeliveryStatus]| -> i64 {
        counts
            .deliveries
            .iter()
            .filter(|(s, _)| wanted.contains(s))
            .map(|(_, n)| n)
            .sum()
    };
    let rows = |wanted: &[OutboxStatus]| -> i64 {
        counts
            .outbox
            .iter()
            .filter(|(s, _)| wanted.contains(s))
            .map(|(_, n)| n)
            .sum()
    };
    let inbound = InboundHealth {
        backlog: deliveries(&[
            DeliveryStatus::Pending,
            DeliveryStatus::Processing,
            DeliveryStatus::Retrying,
        ]),
        failed: deliveries(&[DeliveryStatus::Failed]),
    };
    let recent_failures = counts.recent.iter().filter(|a| a.error.is_some()).count();
    let last_error = counts.recent.iter().find_map(|a| {
        Some(LastError {
            at: a.at.clone(),
            code: a.error_code,
            message: a.error.clone()?,
        })
    });
    let outbound = outbound.then(|| OutboundHealth {
        backlog: rows(&OutboxStatus::OPEN),
        failed: rows(&[OutboxStatus::Failed, OutboxStatus::Dead]),
        last_success_at: counts.last_sent_at.clone(),
        last_error,
        recent_failures,
        recent_requests: counts.recent.len(),
    });
    let stuck = inbound.failed > 0 || outbound.as_ref().is_some_and(|o| o.failed > 0);
    let state = if !counts.recent.is_empty() && recent_failures == counts.recent.len() {
        ConnectorState::Failing
    } else if recent_failures > 0 || stuck {
        ConnectorState::Degraded
    } else if counts.recent.is_empty() && inbound.backlog == 0 {
        ConnectorState::Idle
    } else {
        ConnectorState::Connected
    };
    ProviderHealth {
        name: name.to_owned(),
        state,
        mapper_serving,
        inbound,
        outbound,
    }
}

// The window the doc comment names.
const _: () = assert!(RECENT_ATTEMPTS == 20);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RecentAttempt;

    fn attempt(ok: bool) -> RecentAttempt {
        RecentAttempt {
            at: "2026-11-30T10:00:00Z".into(),
            error: (!ok).then(|| "answered 401".into()),
            error_code: (!ok).then_some(ErrorCode::AuthFailed),
        }
    }

    fn state(recent: &[bool], outbox: &[(OutboxStatus, i64)], failed_in: i64) -> ConnectorState {
        let counts = ProviderCounts {
            deliveries: vec![(DeliveryStatus::Failed, failed_in)],
            outbox: outbox.to_vec(),
            recent: recent.iter().map(|ok| attempt(*ok)).collect(),
            last_sent_at: None,
        };
        health("jira", true, true, &counts).state
    }

    #[test]
    fn the_state_follows_the_latest_requests_and_what_is_stuck() {
        assert_eq!(state(&[], &[], 0), ConnectorState::Idle);
        assert_eq!(state(&[true, true], &[], 0), ConnectorState::Connected);
        assert_eq!(state(&[false, true], &[], 0), ConnectorState::Degraded);
        assert_eq!(state(&[true, false], &[], 0), ConnectorState::Degraded);
        assert_eq!(state(&[false, false], &[], 0), ConnectorState::Failing);
        assert_eq!(
            state(&[true], &[(OutboxStatus::Dead, 1)], 0),
            ConnectorState::Degraded
        );
        assert_eq!(state(&[], &[], 2), ConnectorState::Degraded);
        assert_eq!(
            state(&[], &[(OutboxStatus::Pending, 3)], 0),
            ConnectorState::Idle
        );
    }

    #[test]
    fn the_last_error_is_the_newest_failed_request() {
        let mut counts = ProviderCounts {
            recent: vec![attempt(true), attempt(false)],
            ..ProviderCounts::default()
        };
        counts.recent[1].at = "2026-11-30T09:00:00Z".into();
        let h = health("jira", true, true, &counts);
        let outbound = h.outbound.unwrap();
        let last = outbound.last_error.unwrap();
        assert_eq!(last.at, "2026-11-30T09:00:00Z");
        assert_eq!(last.code, Some(ErrorCode::AuthFailed));
        assert_eq!(outbound.recent_failures, 1);
        assert!(health("slack", false, false, &counts).outbound.is_none());
    }
}
