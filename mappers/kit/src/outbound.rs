//! Building outbound requests and reading a change's links: what every
//! two-way provider's `map-from-ticket-event` starts from.

use serde_json::Value;

use crate::{Capture, CaptureKind, Header, Link, OutboundRequest, TicketChange};

/// An [`OutboundRequest`] under construction:
/// `request("POST", "/chat.postMessage").json(&body).echo("/ts", "C1:").build()`.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    request: OutboundRequest,
}

/// A request with `method` (upper-cased) to `path`, relative to the
/// provider's API base URL.
pub fn request(method: &str, path: impl Into<String>) -> RequestBuilder {
    RequestBuilder {
        request: OutboundRequest {
            method: method.to_ascii_uppercase(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
            captures: Vec::new(),
        },
    }
}

impl RequestBuilder {
    /// A JSON body, with its `content-type`.
    pub fn json(mut self, body: &Value) -> Self {
        self.request.body = body.to_string().into_bytes();
        self.header("content-type", "application/json; charset=utf-8")
    }

    /// Adds a header (the name lower-cased).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request.headers.push(Header {
            name: name.to_ascii_lowercase(),
            value: value.to_owned(),
        });
        self
    }

    /// Sends the request to the provider's extra API `name`
    /// (`api.extra.<name>` in the host's config) instead of its own.
    pub fn api(self, name: &str) -> Self {
        self.header(crate::API_HEADER, name)
    }

    /// The id at `pointer` of the answer is the provider's mirror of the
    /// ticket: the host links it.
    pub fn mirror(self, pointer: &str) -> Self {
        self.capture(CaptureKind::Mirror, pointer, "")
    }

    /// `prefix` + the id at `pointer` of the answer is a record made on the
    /// ticket's behalf: its webhook is dropped as our own echo.
    pub fn echo(self, pointer: &str, prefix: &str) -> Self {
        self.capture(CaptureKind::Echo, pointer, prefix)
    }

    pub fn capture(mut self, kind: CaptureKind, pointer: &str, prefix: &str) -> Self {
        self.request.captures.push(Capture {
            kind,
            pointer: pointer.to_owned(),
            prefix: prefix.to_owned(),
        });
        self
    }

    pub fn build(self) -> OutboundRequest {
        self.request
    }
}

/// The external ids `provider` has linked to the change's ticket, oldest
/// first.
pub fn links_of<'c>(change: &'c TicketChange, provider: &'c str) -> impl Iterator<Item = &'c str> {
    change
        .links
        .iter()
        .filter(move |l: &&Link| l.provider == provider)
        .map(|l| l.external_id.as_str())
}

/// The oldest external id `provider` has linked to the change's ticket.
pub fn first_link<'c>(change: &'c TicketChange, provider: &'c str) -> Option<&'c str> {
    links_of(change, provider).next()
}

/// The guid of the change's ticket (none for a digest).
pub fn change_guid(change: &TicketChange) -> Option<&str> {
    change.ticket.as_ref().map(|t| t.guid.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChangeKind, Link};
    use serde_json::json;

    fn change(links: &[(&str, &str)]) -> TicketChange {
        TicketChange {
            id: "1".into(),
            provider: "asana".into(),
            at: "2026-01-01T00:00:00Z".into(),
            origin: None,
            ticket: None,
            links: links
                .iter()
                .map(|(p, id)| Link {
                    provider: (*p).into(),
                    external_id: (*id).into(),
                })
                .collect(),
            what: ChangeKind::Updated(Vec::new()),
        }
    }

    #[test]
    fn builder_sets_json_body_header_and_captures() {
        let r = request("post", "/chat.postMessage")
            .json(&json!({"channel": "C1"}))
            .echo("/ts", "C1:")
            .mirror("/data/gid")
            .build();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/chat.postMessage");
        assert_eq!(r.body, br#"{"channel":"C1"}"#);
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.headers[0].name, "content-type");
        assert_eq!(r.captures.len(), 2);
        assert_eq!(r.captures[0].kind, CaptureKind::Echo);
        assert_eq!(r.captures[0].prefix, "C1:");
        assert_eq!(r.captures[1].kind, CaptureKind::Mirror);
        assert_eq!(r.captures[1].prefix, "");
    }

    #[test]
    fn an_extra_api_is_named_by_the_sluice_api_header() {
        let r = request("GET", "/directory/v1/org/1/users")
            .api("y360")
            .build();
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.headers[0].name, "sluice-api");
        assert_eq!(r.headers[0].value, "y360");
    }

    #[test]
    fn links_are_filtered_by_provider_in_order() {
        let c = change(&[("asana", "1"), ("slack", "C1:1.2"), ("asana", "2")]);
        assert_eq!(links_of(&c, "asana").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(first_link(&c, "slack"), Some("C1:1.2"));
        assert_eq!(first_link(&c, "jira"), None);
    }
}
