//! Webhook ingress. So far: authenticity ([`verify`], with a typestate
//! `Unverified` → `Verified`), dedupe keys ([`dedupe`]) and the
//! per-provider presets ([`presets`]). The route, the durable inbox and the
//! worker come next.

pub mod dedupe;
pub mod presets;
pub mod verify;

#[cfg(test)]
mod tests;
