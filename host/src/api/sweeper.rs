//! `GET /v1/sweeper`: the stale-ticket sweeper's rules, when each fires
//! next, and the last notices each recorded. Read scope: rule names,
//! filters and counts, no ticket content.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Reader;
use super::error::{ApiError, ErrorBody};
use crate::store::timestamp;

/// The sweeper's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct SweeperListing {
    /// False when the config has no `sweeper:`.
    pub enabled: bool,
    pub rules: Vec<SweeperRule>,
}

/// One rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct SweeperRule {
    pub name: String,
    /// The direct notices' cron expression.
    pub schedule: String,
    pub direct: bool,
    /// The digest's cron expression; absent: no digest.
    pub digest_schedule: Option<String>,
    /// RFC 3339 UTC; absent when the rule sends no direct notices.
    pub next_direct: Option<String>,
    pub next_digest: Option<String>,
    /// The latest period each kind of notice was recorded for.
    pub last: Vec<SweeperResult>,
}

/// The notices of one kind recorded for a rule's latest period.
#[derive(Debug, Serialize, ToSchema)]
pub struct SweeperResult {
    /// `direct` or `digest`.
    pub kind: String,
    /// The schedule tick, RFC 3339 UTC.
    pub period: String,
    pub notices: i64,
    pub tickets: i64,
    /// When the last of them was recorded.
    pub at: String,
}

#[utoipa::path(
    get,
    tag = "sweeper",
    path = "/v1/sweeper",
    operation_id = "showSweeper",
    summary = "The stale-ticket sweeper: its rules, their next runs, the last notices each recorded",
    responses(
        (status = 200, description = "the sweeper's rules", body = SweeperListing),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
    )
)]
pub async fn show(
    _: Reader,
    State(state): State<ApiState>,
) -> Result<Json<SweeperListing>, ApiError> {
    let Some(sweeper) = &state.sweeper else {
        return Ok(Json(SweeperListing {
            enabled: false,
            rules: Vec::new(),
        }));
    };
    let summaries = state.store.notice_summaries().await?;
    let now = chrono::Utc::now();
    let times = sweeper.times(now);
    let rules = sweeper
        .rules()
        .iter()
        .zip(times)
        .map(|(r, t)| SweeperRule {
            name: r.name.clone(),
            schedule: r.schedule.expression().to_owned(),
            direct: r.direct,
            digest_schedule: r.digest.as_ref().map(|d| d.expression().to_owned()),
            next_direct: t.next_direct.map(timestamp),
            next_digest: t.next_digest.map(timestamp),
            last: summaries
                .iter()
                .filter(|s| s.rule == r.name)
                .map(|s| SweeperResult {
                    kind: s.kind.clone(),
                    period: s.period.clone(),
                    notices: s.notices,
                    tickets: s.tickets,
                    at: s.at.clone(),
                })
                .collect(),
        })
        .collect();
    Ok(Json(SweeperListing {
        enabled: true,
        rules,
    }))
}
