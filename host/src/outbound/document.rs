//! Documents the host reads for itself — an OIDC issuer's signing keys
//! (JWKS) — through the host's one HTTP client: no credentials sent, a
//! redirect followed only within the URL's origin, time and size capped.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::{Client, Url};

use super::client::{fetch, http_client};
use crate::mapper::ApiFailure;

/// Largest document read.
const MAX_DOCUMENT_BYTES: usize = 256 << 10;
/// Time allowed for one fetch, connection included.
const DOCUMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a document could not be read. The URL is the operator's own
/// config, so it may be named.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("`{0}` is not a URL")]
    Url(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("GET {url}: {failure}")]
    Failed { url: String, failure: String },
    #[error("GET {url} answered status {status}")]
    Status { url: String, status: u16 },
}

/// Reads documents by URL; the client is built on first use, so a
/// provider that never needs one builds none.
#[derive(Default)]
pub struct Documents {
    client: OnceLock<Result<Client, String>>,
}

impl Documents {
    /// The body of a 2xx answer to a GET of `url`.
    pub async fn get(&self, url: &str) -> Result<Vec<u8>, DocumentError> {
        let parsed = Url::parse(url).map_err(|_| DocumentError::Url(url.to_owned()))?;
        let client = self
            .client
            .get_or_init(|| http_client().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| DocumentError::Client(e.clone()))?;
        let failed = |failure: String| DocumentError::Failed {
            url: url.to_owned(),
            failure,
        };
        let response = tokio::time::timeout(
            DOCUMENT_TIMEOUT,
            fetch(client.get(parsed), MAX_DOCUMENT_BYTES),
        )
        .await
        .map_err(|_| failed("timed out".into()))?
        .map_err(|e| {
            failed(match e {
                ApiFailure::TooLarge => format!("larger than {MAX_DOCUMENT_BYTES} bytes"),
                ApiFailure::Timeout => "timed out".into(),
                ApiFailure::Unavailable(why) | ApiFailure::Denied(why) => why,
                ApiFailure::BudgetExhausted => "refused".into(),
            })
        })?;
        if !(200..300).contains(&response.status) {
            return Err(DocumentError::Status {
                url: url.to_owned(),
                status: response.status,
            });
        }
        Ok(response.body)
    }
}
