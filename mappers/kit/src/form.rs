//! `application/x-www-form-urlencoded` bodies (Slack's interactivity
//! posts its JSON in a `payload` field) and percent-encoding for query
//! strings of `provider-api` paths.

use serde_json::Value;

use crate::{Delivery, MapError, malformed};

/// The decoded value of field `name` of a form-encoded body, if present.
/// `+` is a space; invalid escapes are kept as written.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

/// The JSON in the form field `payload` of the delivery's body.
pub fn form_payload(delivery: &Delivery) -> Result<Value, MapError> {
    let text = form_field(&delivery.body, "payload")
        .ok_or_else(|| malformed("form body has no `payload` field"))?;
    serde_json::from_str(&text)
        .map_err(|e| malformed(format!("form field `payload` is not JSON: {e}")))
}

/// Whether the delivery's body is form-encoded (by its `content-type`).
pub fn is_form(delivery: &Delivery) -> bool {
    crate::header(delivery, "content-type").is_some_and(|v| {
        v.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    })
}

pub(crate) fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match (
                    raw.get(i + 1).copied().and_then(hex),
                    raw.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes `value` for a query string: everything but RFC 3986's
/// unreserved characters.
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_and_decoded() {
        let body = b"a=1&payload=%7B%22type%22%3A+%22block_actions%22%7D&b";
        assert_eq!(
            form_field(body, "payload").as_deref(),
            Some(r#"{"type": "block_actions"}"#)
        );
        assert_eq!(form_field(body, "a").as_deref(), Some("1"));
        assert_eq!(form_field(body, "b").as_deref(), Some(""));
        assert_eq!(form_field(body, "c"), None);
    }

    #[test]
    fn bad_escapes_are_kept() {
        assert_eq!(form_field(b"x=100%&y=%zz%4", "x").as_deref(), Some("100%"));
        assert_eq!(form_field(b"x=100%&y=%zz%4", "y").as_deref(), Some("%zz%4"));
        assert_eq!(
            form_field("x=caf%C3%A9".as_bytes(), "x").as_deref(),
            Some("café")
        );
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(query_escape("ann+x@example.com"), "ann%2Bx%40example.com");
        assert_eq!(query_escape("1700.000100"), "1700.000100");
    }
}
