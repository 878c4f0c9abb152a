//! Webhook ingress: `POST /hooks/{provider}` ([`route`]), authenticity
//! ([`verify`], a typestate `Unverified` → `Verified`), dedupe keys
//! ([`dedupe`]) and the per-provider presets ([`presets`]). A verified
//! delivery is committed to the inbox before the 2xx. With `api`, the only
//! code that knows axum. The worker that maps and applies stored
//! deliveries comes next.

pub mod dedupe;
pub mod presets;
pub mod route;
pub mod verify;

#[cfg(test)]
mod tests;
