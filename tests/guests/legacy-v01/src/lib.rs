//! A mapper built against the frozen `sluice:mapper@0.1.0` world (the copy
//! the host keeps in `host/wit/v0_1`): it must keep loading and mapping
//! after the world moved on.
//!
//! Inbound: any delivery becomes one `create` whose subject is the body.
//! Outbound: one `POST /echo` request per change, whose body lists the
//! links it was given and the kind of change, capturing `/id` as the
//! created mirror's id (0.1.0's only capture).

// The generated glue of a wide record has many arguments.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ path: "../../../host/wit/v0_1", world: "mapper" });

use sluice::mapper::types::*;

struct Legacy;

export!(Legacy);

impl Guest for Legacy {
    fn map_to_ticket_event(delivery: Delivery, _config: String) -> Result<Mapped, MapError> {
        Ok(Mapped {
            event_type: "legacy_event".into(),
            actions: vec![Action::Create(CreateTicket {
                subject: String::from_utf8_lossy(&delivery.body).into_owned(),
                description: String::new(),
                priority: Priority::Low,
                ticket_type: "TASK".into(),
                requested_by: None,
                external_id: None,
                labels: vec![],
            })],
        })
    }

    fn map_from_ticket_event(
        change: TicketChange,
        _config: String,
    ) -> Result<Vec<OutboundRequest>, MapError> {
        let kind = match change.what {
            ChangeKind::Applied(_) => "applied",
            ChangeKind::Updated(_) => "updated",
            ChangeKind::Stale(_) => "stale",
        };
        let body = format!("{kind} {}", change.links.join(","));
        Ok(vec![OutboundRequest {
            method: "POST".into(),
            path: "/echo".into(),
            headers: vec![],
            body: body.into_bytes(),
            capture_external_id: Some("/id".into()),
        }])
    }
}
