//! How a delivery's body is kept in `deliveries.body`: LZ4-compressed when
//! that makes it smaller, as received otherwise; `deliveries.body_encoding`
//! says which.
//!
//! Why: webhook payloads are JSON, and a typical one (a Bitbucket PR
//! comment, ~6 KiB) does not fit a 4 KiB SQLite page, so each stored row
//! took a page and an overflow page — two WAL frames written, checksummed
//! and fsynced per delivery. Compressed (~1.7 KiB) two rows share a page.
//! LZ4 rather than a stronger codec: it costs a few microseconds a body,
//! and its pure-Rust implementation needs no `unsafe` and no C build.
//! Callers never see the encoding: bodies go in and come out as received.

use std::borrow::Cow;

use super::StoreError;

/// `deliveries.body_encoding`. `None` in the column is [`Encoding::Identity`]
/// (every row written before the column existed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The bytes as received.
    Identity,
    /// An LZ4 block with the original length in front (little-endian u32).
    Lz4,
}

/// Bodies above this are stored as received: the length an LZ4 body
/// declares is checked against it before anything is allocated, so a
/// damaged row cannot ask for gigabytes.
const MAX_ENCODED_LEN: usize = 256 << 20;

/// Below this, compression rarely pays for its length prefix.
const MIN_ENCODED_LEN: usize = 256;

impl Encoding {
    /// The column's value.
    pub fn as_column(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Lz4 => Some("lz4"),
        }
    }

    fn from_column(value: Option<&str>) -> Result<Encoding, StoreError> {
        match value {
            None => Ok(Encoding::Identity),
            Some("lz4") => Ok(Encoding::Lz4),
            Some(other) => Err(StoreError::Corrupt {
                column: "deliveries.body_encoding",
                reason: format!("unknown encoding `{other}`"),
            }),
        }
    }
}

/// A body already encoded for the store, by a caller that can afford the
/// work where the single writer cannot (ingress, on the request's thread).
#[derive(Clone, Copy)]
pub struct Encoded<'a> {
    pub bytes: &'a [u8],
    pub encoding: Encoding,
}

/// [`encode`], owned: for a body that waits in a queue before it is stored.
pub fn encode_owned(body: &bytes::Bytes) -> (bytes::Bytes, Encoding) {
    match encode(body) {
        (Cow::Owned(packed), encoding) => (bytes::Bytes::from(packed), encoding),
        (Cow::Borrowed(_), encoding) => (body.clone(), encoding),
    }
}

/// The bytes to store for `body`, and how they are encoded.
pub fn encode(body: &[u8]) -> (Cow<'_, [u8]>, Encoding) {
    if body.len() < MIN_ENCODED_LEN || body.len() > MAX_ENCODED_LEN {
        return (Cow::Borrowed(body), Encoding::Identity);
    }
    let packed = lz4_flex::block::compress_prepend_size(body);
    if packed.len() >= body.len() {
        return (Cow::Borrowed(body), Encoding::Identity);
    }
    (Cow::Owned(packed), Encoding::Lz4)
}

/// The body as received, from the stored bytes and the encoding column.
pub fn decode(stored: Vec<u8>, encoding: Option<&str>) -> Result<Vec<u8>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        column: "deliveries.body",
        reason,
    };
    match Encoding::from_column(encoding)? {
        Encoding::Identity => Ok(stored),
        Encoding::Lz4 => {
            let (declared, block) = lz4_flex::block::uncompressed_size(&stored)
                .map_err(|_| corrupt("an lz4 body shorter than its length prefix".into()))?;
            if declared > MAX_ENCODED_LEN {
                return Err(corrupt(format!(
                    "an lz4 body declares {declared} bytes, over the {MAX_ENCODED_LEN} ever encoded"
                )));
            }
            lz4_flex::block::decompress(block, declared)
                .map_err(|e| corrupt(format!("an lz4 body does not decode: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_body(n: usize) -> Vec<u8> {
        let mut s = String::from("{\"comments\":[");
        for i in 0..n {
            s.push_str(&format!(
                "{{\"id\":{i},\"content\":{{\"raw\":\"comment {i}\"}},\"user\":\"someone\"}},"
            ));
        }
        s.push_str("{}]}");
        s.into_bytes()
    }

    #[test]
    fn json_is_compressed_and_comes_back_as_received() {
        let body = json_body(100);
        let (stored, encoding) = encode(&body);
        assert_eq!(encoding, Encoding::Lz4);
        assert!(
            stored.len() * 2 < body.len(),
            "{} of {}",
            stored.len(),
            body.len()
        );
        let back = decode(stored.into_owned(), encoding.as_column()).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn small_or_incompressible_bodies_are_kept_as_received() {
        let small = b"{\"a\":1}".to_vec();
        assert_eq!(encode(&small).1, Encoding::Identity);
        // Bytes without repeats do not shrink.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                // xorshift64: no repeats for LZ4 to find.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let (stored, encoding) = encode(&noise);
        assert_eq!(encoding, Encoding::Identity);
        assert_eq!(&*stored, &noise[..]);
        assert_eq!(decode(noise.clone(), None).unwrap(), noise);
    }

    #[test]
    fn damaged_rows_name_the_column_instead_of_allocating() {
        let err = decode(vec![1, 2], Some("lz4")).unwrap_err().to_string();
        assert!(err.contains("deliveries.body"), "{err}");
        // Declares 4 GiB - 1.
        let err = decode(vec![0xff, 0xff, 0xff, 0xff, 0], Some("lz4"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("declares"), "{err}");
        let err = decode(vec![10, 0, 0, 0, 0xff], Some("lz4"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not decode"), "{err}");
        let err = decode(vec![], Some("zstd")).unwrap_err().to_string();
        assert!(err.contains("deliveries.body_encoding"), "{err}");
    }
}
