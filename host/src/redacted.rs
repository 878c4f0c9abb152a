//! `Debug` views that show a request's shape without its content: header
//! names without values, a body's size without its bytes. Types holding
//! deliveries or API traffic implement `Debug` through these, so a stray
//! `{:?}` in a log line leaks no token, signature or payload.

use std::fmt;

/// Header names without their values.
pub struct HeaderNames<'a>(pub &'a [(String, String)]);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

/// A body's size.
pub struct Bytes(pub usize);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_show_names_and_sizes_only() {
        let headers = vec![("x-gitlab-token".to_owned(), "s3cret".to_owned())];
        let shown = format!("{:?} {:?}", HeaderNames(&headers), Bytes(12));
        assert_eq!(shown, r#"["x-gitlab-token"] <12 bytes>"#);
    }
}
