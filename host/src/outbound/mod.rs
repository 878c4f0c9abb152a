//! Outbound: everything Sluice sends to providers, through the host's one
//! HTTP client.
//!
//! - `client`: [`ProviderApis`] — per provider (and per extra API a
//!   request names with `Sluice-Api`), the base URL (every path must stay
//!   under it), the credentials the host adds, the timeout and the
//!   response cap; the live `provider-api` (GETs cached) and the outbound
//!   sends (uncached) both go through it, and a provider allowed to read
//!   tickets reaches the ticket API's `GET /v1/tickets` through a
//!   [`TicketReader`].
//! - `document`: [`Documents`] — what the host reads for itself (an OIDC
//!   issuer's JWKS), with no credentials.
//! - `feed`: an outbox row's history row read back as the `TicketChange`
//!   its provider's rules are offered.
//! - `worker`: [`OutboundWorker`] — claims due outbox rows (a leased queue
//!   like the inbox, in ticket order per provider), maps them with the
//!   provider's `map-from-ticket-event`, sends the requests with an
//!   idempotency key, retries transient failures with backoff that honours
//!   `Retry-After`, dead-letters after `outbound.max_attempts`, records
//!   every attempt, and turns captures into mirror links and echo ids.

mod client;
mod document;
pub mod feed;
mod worker;

pub use client::{ProviderApiError, ProviderApis, TicketReader};
pub use document::{DocumentError, Documents};
pub use feed::{FeedError, change_of, view};
pub use worker::{OutboundPolicy, OutboundWorker, idempotency_key};
