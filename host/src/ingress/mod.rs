//! Webhook ingress: `POST /hooks/{provider}` ([`route`]), authenticity
//! ([`verify`], a typestate `Unverified` → `Verified`), dedupe keys
//! ([`dedupe`]), the per-provider presets ([`presets`]), Asana's
//! secret handshake ([`handshake`]) and OIDC bearer tokens ([`oidc`], Pub/Sub push). A verified
//! delivery is committed to the inbox before the 2xx. With `api`, the only
//! code that knows axum. Stored deliveries are mapped and applied by
//! [`crate::worker`].

pub mod dedupe;
pub mod handshake;
pub mod oidc;
pub mod presets;
pub mod redact;
pub mod route;
pub mod verify;

#[cfg(test)]
pub(crate) mod tests;
