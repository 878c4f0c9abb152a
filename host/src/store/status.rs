//! A delivery's and an outbox row's status, and why a delivery was
//! ignored: one enum each for code and SQL. The lifecycles in
//! ARCHITECTURE.md ("Delivery lifecycle", "Outbox lifecycle") name who
//! moves each status.

use std::fmt;

use serde::{Deserialize, Serialize};

/// For an enum whose variants are stored as text: `ALL`, `as_str`,
/// `parse`, `FromStr` (an error listing the names) and `Display`; with
/// `sql`, also `sql` and `sql_list`, its names as SQL constants (the
/// statuses spliced into queries are these constants, never input).
macro_rules! names {
    ($ty:ident, $what:literal, sql, { $($v:ident => $s:literal),+ $(,)? }) => {
        names!($ty, $what, { $($v => $s),+ });

        impl $ty {
            /// `'a', 'b'` for an SQL `IN (…)`.
            pub(crate) fn sql_list(items: &[$ty]) -> String {
                items
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
    };
    ($ty:ident, $what:literal, { $($v:ident => $s:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: [$ty; [$($s),+].len()] = [$($ty::$v),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$v => $s),+
                }
            }

            pub fn parse(s: &str) -> Option<$ty> {
                Self::ALL.into_iter().find(|x| x.as_str() == s)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::parse(s).ok_or_else(|| {
                    let all: Vec<&str> = $ty::ALL.iter().map(|x| x.as_str()).collect();
                    format!("`{s}` is not {}; one of {}", $what, all.join(", "))
                })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

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

names!(DeliveryStatus, "a delivery status", sql, {
    Pending => "pending",
    Processing => "processing",
    Retrying => "retrying",
    Applied => "applied",
    Ignored => "ignored",
    Failed => "failed",
    Dead => "dead",
});

impl DeliveryStatus {
    /// Statuses a worker may claim (with `Processing` only once its lease
    /// has expired).
    pub const CLAIMABLE: [DeliveryStatus; 3] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Retrying,
        DeliveryStatus::Processing,
    ];
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
    /// Its provider's `sync.direction` takes nothing in (`outbound` or
    /// `none`): stored, not mapped.
    SyncDirection,
}

names!(IgnoreReason, "an ignore reason", {
    UnsupportedEvent => "unsupported_event",
    NoTicket => "no_ticket",
    Echo => "echo",
    Bot => "bot",
    Filtered => "filtered",
    SyncDirection => "sync_direction",
});

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

names!(OutboxStatus, "an outbox status", sql, {
    Pending => "pending",
    Processing => "processing",
    Retrying => "retrying",
    Sent => "sent",
    Ignored => "ignored",
    Failed => "failed",
    Dead => "dead",
});

/// Why an outbound request failed, as a stable code an operator (and an
/// alert) can act on without reading the provider's message: shown on the
/// outbox row and each attempt, counted in
/// `sluice_outbound_errors_total{provider, code}`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
// Named apart from the API's own error codes (`api::error::ErrorCode`):
// the OpenAPI document names a schema by its type's name.
#[schema(as = OutboundErrorCode)]
pub enum ErrorCode {
    /// 401/403, or an API's own "bad token" answer: fix the credentials.
    AuthFailed,
    /// 404/410: the record is gone on the provider's side.
    NotFound,
    /// 429: the provider throttles; retried after its `Retry-After`.
    RateLimited,
    /// 400/422 and other 4xx: the provider refused the request's content
    /// (a field it does not know, a value it does not accept).
    ValidationFailed,
    /// 409/412: the record changed under the request.
    Conflict,
    /// 5xx, a timeout, a refused connection, an answer over the size cap:
    /// the provider is down or slow; retried.
    Unavailable,
    /// The host refused the request before sending it (a path leaving the
    /// provider's base URL, the call budget spent).
    Refused,
    /// The mapper refused or failed on the change: no request was made.
    MappingFailed,
}

names!(ErrorCode, "an error code", {
    AuthFailed => "auth_failed",
    NotFound => "not_found",
    RateLimited => "rate_limited",
    ValidationFailed => "validation_failed",
    Conflict => "conflict",
    Unavailable => "unavailable",
    Refused => "refused",
    MappingFailed => "mapping_failed",
});

impl ErrorCode {
    /// The code of an HTTP answer that was not a success.
    pub fn of_status(status: u16) -> ErrorCode {
        match status {
            401 | 403 => ErrorCode::AuthFailed,
            404 | 410 => ErrorCode::NotFound,
            409 | 412 => ErrorCode::Conflict,
            429 => ErrorCode::RateLimited,
            500..=599 => ErrorCode::Unavailable,
            _ => ErrorCode::ValidationFailed,
        }
    }

    /// The code of an API that answers errors with 200 and a name (Slack's
    /// `{"ok": false, "error": "invalid_auth"}`), read from the name's usual
    /// words; anything else is a refused request's content.
    pub fn of_error_name(name: &str) -> ErrorCode {
        let n = name.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
        if has(&[
            "auth",
            "token",
            "permission",
            "scope",
            "forbidden",
            "access_denied",
        ]) {
            ErrorCode::AuthFailed
        } else if has(&["not_found", "notfound", "no_such", "deleted", "archived"]) {
            ErrorCode::NotFound
        } else if has(&["ratelimit", "rate_limit", "too_many", "limit_exceeded"]) {
            ErrorCode::RateLimited
        } else if has(&["conflict", "already"]) {
            ErrorCode::Conflict
        } else {
            ErrorCode::ValidationFailed
        }
    }
}

impl OutboxStatus {
    /// Statuses a worker may claim (`Processing` only once its lease ran
    /// out); the same ones hold back later rows of the ticket.
    pub const OPEN: [OutboxStatus; 3] = [
        OutboxStatus::Pending,
        OutboxStatus::Retrying,
        OutboxStatus::Processing,
    ];
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
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
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

    #[test]
    fn http_statuses_and_error_names_have_codes() {
        let cases = [
            (401, ErrorCode::AuthFailed),
            (403, ErrorCode::AuthFailed),
            (404, ErrorCode::NotFound),
            (409, ErrorCode::Conflict),
            (422, ErrorCode::ValidationFailed),
            (400, ErrorCode::ValidationFailed),
            (429, ErrorCode::RateLimited),
            (503, ErrorCode::Unavailable),
        ];
        for (status, code) in cases {
            assert_eq!(ErrorCode::of_status(status), code, "{status}");
        }
        let names = [
            ("invalid_auth", ErrorCode::AuthFailed),
            ("not_authed", ErrorCode::AuthFailed),
            ("missing_scope", ErrorCode::AuthFailed),
            ("channel_not_found", ErrorCode::NotFound),
            ("is_archived", ErrorCode::NotFound),
            ("ratelimited", ErrorCode::RateLimited),
            ("already_reacted", ErrorCode::Conflict),
            ("invalid_blocks", ErrorCode::ValidationFailed),
        ];
        for (name, code) in names {
            assert_eq!(ErrorCode::of_error_name(name), code, "{name}");
        }
    }
}
