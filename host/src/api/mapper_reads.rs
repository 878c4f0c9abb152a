//! The ticket API's `GET /v1/tickets`, answered in process for mappers
//! (`Sluice-Api: tickets` on a `provider-api` request of a provider whose
//! config says `api.read_tickets: true`): the route's own filter parsing
//! (`field.<name>=` included), its response types and its error bodies,
//! so a mapper reads exactly what an API client would. No token is asked
//! for: the operator's `read_tickets` is the permission, and the outbound
//! client that routes here lets nothing but this one read through.

use axum::response::IntoResponse;

use super::tickets::find_page;
use crate::mapper::ApiResponse;
use crate::outbound::TicketReader;
use crate::store::Store;

/// Error bodies are a few hundred bytes; anything larger is not ours.
const ERROR_BODY_MAX: usize = 64 << 10;

/// The store's tickets as `GET /v1/tickets` serves them.
pub struct MapperTickets {
    store: Store,
}

impl MapperTickets {
    pub fn new(store: Store) -> Self {
        MapperTickets { store }
    }
}

#[async_trait::async_trait]
impl TicketReader for MapperTickets {
    async fn find(&self, query: Option<&str>) -> ApiResponse {
        let json = vec![("content-type".to_owned(), "application/json".to_owned())];
        match find_page(&self.store, query.map(str::to_owned)).await {
            Ok(page) => match serde_json::to_vec(&page) {
                Ok(body) => ApiResponse {
                    status: 200,
                    headers: json,
                    body,
                },
                // Strings and maps of strings always serialise; kept as an
                // answer rather than a panic on a server path all the same.
                Err(_) => ApiResponse {
                    status: 500,
                    headers: Vec::new(),
                    body: Vec::new(),
                },
            },
            Err(e) => {
                // The route's own rendering: the status it picks, the body
                // it writes, a store failure logged once there.
                let response = e.into_response();
                let status = response.status().as_u16();
                let body = axum::body::to_bytes(response.into_body(), ERROR_BODY_MAX)
                    .await
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                ApiResponse {
                    status,
                    headers: json,
                    body,
                }
            }
        }
    }
}
