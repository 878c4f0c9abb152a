//! Applying actions to the ticket store: validation, resolution, the
//! per-action rules (status, RACI, comments, links), history and outbox —
//! all of one delivery in one transaction, or none of it.

mod apply;
pub mod raci;
mod update;
pub mod validate;

pub use apply::{API_ORIGIN, AppliedAction, Applier, ApplyError, ApplyInput, ApplyOutcome};
pub use update::TicketUpdate;
pub use validate::{ValidationError, Workflow};
