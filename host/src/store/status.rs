//! A delivery's status, one enum for code and SQL: the lifecycle in
//! ARCHITECTURE.md ("Delivery lifecycle") names who moves each one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a delivery is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Stored, not processed yet (or waiting for a mapper version to serve).
    Pending,
    /// Claimed by a worker until its lease runs out.
    Processing,
    /// Failed transiently (a reference whose ticket may still come, a busy
    /// database, the provider's API down): tried again at `next_attempt_at`.
    Retrying,
    /// Its actions are applied.
    Applied,
    /// Nothing to do, with a [`IgnoreReason`].
    Ignored,
    /// The mapper's or the data's fault; replayable after a fix.
    Failed,
    /// Transient failures outlasted the retries; replayable.
    Dead,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 7] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Processing,
        DeliveryStatus::Retrying,
        DeliveryStatus::Applied,
        DeliveryStatus::Ignored,
        DeliveryStatus::Failed,
        DeliveryStatus::Dead,
    ];

    /// Statuses a worker may claim (with `Processing` only once its lease
    /// has expired).
    pub const CLAIMABLE: [DeliveryStatus; 3] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Retrying,
        DeliveryStatus::Processing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Processing => "processing",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Applied => "applied",
            DeliveryStatus::Ignored => "ignored",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// `'a', 'b'` for an SQL `IN (…)`: constants of this enum only.
    pub(crate) fn sql_list(statuses: &[DeliveryStatus]) -> String {
        statuses
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `'a'` for SQL.
    pub(crate) fn sql(self) -> String {
        format!("'{}'", self.as_str())
    }
}

impl std::str::FromStr for DeliveryStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeliveryStatus::parse(s).ok_or_else(|| {
            let all: Vec<&str> = DeliveryStatus::ALL.iter().map(|d| d.as_str()).collect();
            format!("`{s}` is not a delivery status; one of {}", all.join(", "))
        })
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for DeliveryStatus {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for DeliveryStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why a delivery was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IgnoreReason {
    /// The mapper does not map this kind of event (`unsupported-event`).
    UnsupportedEvent,
    /// It names no ticket that exists or could still be created: a branch
    /// outside the branch convention, an id of a provider with no links.
    NoTicket,
    /// It is about a record Sluice itself created.
    Echo,
    /// It was sent by the integration's own bot user.
    Bot,
    /// The mapper mapped it to no action.
    Filtered,
}

impl IgnoreReason {
    pub const ALL: [IgnoreReason; 5] = [
        IgnoreReason::UnsupportedEvent,
        IgnoreReason::NoTicket,
        IgnoreReason::Echo,
        IgnoreReason::Bot,
        IgnoreReason::Filtered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::UnsupportedEvent => "unsupported_event",
            IgnoreReason::NoTicket => "no_ticket",
            IgnoreReason::Echo => "echo",
            IgnoreReason::Bot => "bot",
            IgnoreReason::Filtered => "filtered",
        }
    }

    pub fn parse(s: &str) -> Option<IgnoreReason> {
        IgnoreReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Where an outbox row (one change for one provider) is in its lifecycle;
/// ARCHITECTURE.md ("Outbox lifecycle") names who moves each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting to be sent (behind this provider's earlier rows of the
    /// same ticket, if any).
    Pending,
    /// Claimed by an outbound worker until its lease runs out.
    Processing,
    /// A request failed transiently (timeout, connection, 429, 5xx): tried
    /// again at `next_attempt_at`, from the first request not sent.
    Retrying,
    /// Every request the mapper asked for was answered with a 2xx.
    Sent,
    /// The mapper asked for no request.
    Ignored,
    /// The mapper refused or failed, or the provider answered 4xx: retry
    /// by hand after a fix.
    Failed,
    /// Transient failures outlasted the retries; retry by hand.
    Dead,
}

impl OutboxStatus {
    pub const ALL: [OutboxStatus; 7] = [
        OutboxStatus::Pending,
        OutboxStatus::Processing,
        OutboxStatus::Retrying,
        OutboxStatus::Sent,
        OutboxStatus::Ignored,
        OutboxStatus::Failed,
        OutboxStatus::Dead,
    ];

    /// Statuses a worker may claim (`Processing` only once its lease ran
    /// out); the same ones hold back later rows of the ticket.
    pub const OPEN: [OutboxStatus; 3] = [
        OutboxStatus::Pending,
        OutboxStatus::Retrying,
        OutboxStatus::Processing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Processing => "processing",
            OutboxStatus::Retrying => "retrying",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Ignored => "ignored",
            OutboxStatus::Failed => "failed",
            OutboxStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<OutboxStatus> {
        OutboxStatus::ALL.into_iter().find(|d| d.as_str() == s)
    }

    pub(crate) fn sql_list(statuses: &[OutboxStatus]) -> String {
        statuses
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn sql(self) -> String {
        format!("'{}'", self.as_str())
    }
}

impl std::str::FromStr for OutboxStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutboxStatus::parse(s).ok_or_else(|| {
            let all: Vec<&str> = OutboxStatus::ALL.iter().map(|d| d.as_str()).collect();
            format!("`{s}` is not an outbox status; one of {}", all.join(", "))
        })
    }
}

impl fmt::Display for OutboxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for r in IgnoreReason::ALL {
            assert_eq!(IgnoreReason::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert_eq!(DeliveryStatus::parse("done"), None);
        for s in OutboxStatus::ALL {
            assert_eq!(OutboxStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
