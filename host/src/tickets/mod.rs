//! Applying actions to the ticket store: validation, resolution, the
//! per-action rules (status, RACI, comments, links), history and outbox —
//! all of one delivery in one transaction, or none of it — and, for
//! providers that sync both ways, the conflict policies.

mod apply;
mod conflicts;
pub mod raci;
mod update;
pub mod validate;

pub use apply::{API_ORIGIN, AppliedAction, Applier, ApplyError, ApplyInput, ApplyOutcome};
pub use conflicts::{Choice, FieldConflict, SYNC_ACTOR, field_value};
pub use update::TicketUpdate;
pub use validate::{ValidationError, Workflow};
