//! Google mapping rules: one component for every Google source, each
//! recognised by the delivery's shape, so one `.wasm` serves the three
//! providers a Google setup configures (each with its own verification):
//!
//! - a Pub/Sub push body (`message.data`) is Gmail ([`gmail`]; preset
//!   `gmail`, OIDC-verified);
//! - a header-only channel notification (`X-Goog-Resource-URI`) is
//!   Calendar or Drive, by the resource's API ([`calendar`], [`drive`];
//!   preset `google`);
//! - our Apps Script contract's body (`source: sheets | forms`) is a sheet
//!   edit or a form submission ([`apps_script`]; preset `apps_script`);
//! - a scheduled `TICK` (`providers.<p>.schedule`, any name) escalates the
//!   Calendar events remembered as pending whose start has come
//!   ([`calendar::tick`]).
//!
//! Deliveries carry ids, not data: the rules read the rest through
//! `provider-api` from a cursor kept in the provider's mapper state (the
//! Gmail history id, the Calendar sync token, the Drive page token). Those
//! paths are rooted at the API's host (`/gmail/v1/…`, `/calendar/v3/…`,
//! `/drive/v3/…`): `api.base_url` is `https://gmail.googleapis.com` for
//! Gmail and `https://www.googleapis.com` for Calendar and Drive.
//!
//! Config (`mapper_config`), one section per source, every key optional:
//! - `gmail`: `label` (a message must carry it; default `INBOX`), `from`
//!   and `subject` (lists of case-insensitive substrings, any of which must
//!   match; empty: any), `ticket_type` (`SUPPORT`), `priority` (`MEDIUM`),
//!   `max_messages` (per notification, 10), `activity` (`Outcome
//!   Monitoring`: the sender's I sign-off);
//! - `calendar`: `ticket_property` (the event's private extended property
//!   naming the ticket guid; default `ticket_guid`), `lead_minutes` (an
//!   event is due this long before its start; 0), `grace_hours` (an event
//!   that started longer ago than this is history, not due; 24),
//!   `escalated_by` (`google-calendar`);
//! - `drive`: `ticket_property` (the file's app or user property naming
//!   the guid; `ticket_guid`), `commented_by` (`google-drive`, when the
//!   sharer is not known);
//! - `sheets`: `ticket_column` (the header of the column holding the guid;
//!   `Ticket`), `commented_by` (`google-sheets`);
//! - `forms`: `fields` (ticket field → question title: `subject`
//!   `Subject`, `description` `Description`, `priority` `Priority`,
//!   `ticket_type` `Type`, `requested_by` `Email`), `ticket_type`
//!   (`REQUEST`), `priority` (`MEDIUM`).

mod api;
mod apps_script;
mod calendar;
mod drive;
mod gmail;
mod text;

use mapper_kit::{
    Delivery, Guest, MapError, MapResult, OutboundRequest, TicketChange, header, json_body,
    malformed, parse_config, unsupported,
};
use serde_json::Value;

struct Google;

mapper_kit::bindings::export!(Google with_types_in mapper_kit::bindings);

impl Guest for Google {
    fn map_to_ticket_event(delivery: Delivery, config: String) -> MapResult {
        let config = parse_config(&config)?;
        if delivery.method == "TICK" {
            return calendar::tick(&delivery, section(&config, "calendar"));
        }
        if let Some(uri) = header(&delivery, "x-goog-resource-uri") {
            return if uri.contains("/calendar/") {
                calendar::map(&delivery, uri, section(&config, "calendar"))
            } else if uri.contains("/drive/") {
                drive::map(&delivery, section(&config, "drive"))
            } else {
                Err(unsupported(format!(
                    "header `x-goog-resource-uri` names no Calendar or Drive resource: `{uri}`"
                )))
            };
        }
        let body = json_body(&delivery)?;
        if body.pointer("/message/data").is_some() {
            return gmail::map(&delivery, &body, section(&config, "gmail"));
        }
        match body.get("source").and_then(Value::as_str) {
            Some("sheets") => apps_script::sheet_edit(&body, section(&config, "sheets")),
            Some("forms") => apps_script::form_submit(&body, section(&config, "forms")),
            Some(other) => Err(unsupported(format!(
                "Apps Script source `{other}` is not mapped (expected `sheets` or `forms`)"
            ))),
            None => Err(malformed(
                "not a Google delivery: no header `x-goog-resource-uri`, no body field \
                 `message.data` (Pub/Sub) and no `source` (Apps Script)",
            )),
        }
    }

    fn map_from_ticket_event(
        _change: TicketChange,
        _config: String,
    ) -> Result<Vec<OutboundRequest>, MapError> {
        // Google is inbound only: nothing is sent back.
        Ok(Vec::new())
    }
}

/// A config section, `null` when absent.
fn section<'c>(config: &'c Value, name: &str) -> &'c Value {
    config.get(name).unwrap_or(&Value::Null)
}
