//! The host's reconcile tick: for each open ticket linked to a provider
//! whose `sync.interval_secs` is set, a synthetic delivery with method
//! `TICK`, path `/tick/reconcile/{external id, percent-encoded}` and an
//! empty body. The mapper re-reads the record through `provider-api` and
//! answers its current values as actions (event [`RECONCILE_EVENT`]), or
//! no actions when the record is gone ([`RECONCILE_MISSING_EVENT`]); the
//! host's conflict logic turns unchanged values into no-ops.

use crate::Delivery;
use crate::form::percent_decode;

/// The event type of a reconcile tick's answer.
pub const RECONCILE_EVENT: &str = "reconcile";
/// The event type when the provider's record is gone (404).
pub const RECONCILE_MISSING_EVENT: &str = "reconcile_missing";

/// The external id a reconcile tick is about; `None` for any other
/// delivery (a webhook, a scheduled pull).
pub fn reconcile_target(delivery: &Delivery) -> Option<String> {
    if delivery.method != "TICK" {
        return None;
    }
    let raw = delivery.path.strip_prefix("/tick/reconcile/")?;
    let raw = raw.split('?').next().unwrap_or(raw);
    // `+` is a literal plus in a path, not a space.
    let id = percent_decode(raw.replace('+', "%2B").as_bytes());
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(method: &str, path: &str) -> Delivery {
        Delivery {
            provider: "jira".into(),
            method: method.into(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
            received_at: "2026-11-30T10:00:00Z".into(),
        }
    }

    #[test]
    fn reconcile_ticks_name_their_record() {
        assert_eq!(
            reconcile_target(&tick("TICK", "/tick/reconcile/10042")),
            Some("10042".to_owned())
        );
        assert_eq!(
            reconcile_target(&tick("TICK", "/tick/reconcile/a%2Fb+c")),
            Some("a/b+c".to_owned())
        );
        assert_eq!(reconcile_target(&tick("TICK", "/tick/reconcile/")), None);
        assert_eq!(reconcile_target(&tick("TICK", "/tick/nightly")), None);
        assert_eq!(reconcile_target(&tick("POST", "/tick/reconcile/1")), None);
    }
}
