//! The host's one HTTP client, and every request Sluice makes to a
//! provider through it: the live `provider-api` (a mapper's reads while it
//! maps) and the outbound worker's sends, both made by the host with the
//! provider's base URL and credentials from the config.
//!
//! The mapper names a method, a path relative to the base URL, headers and
//! a body; the host checks the request stays under the base URL (same
//! scheme, host, port and path prefix, after dot segments are resolved),
//! refuses headers that carry credentials or framing, adds the configured
//! credentials itself (the component never sees them), follows redirects
//! only within the base URL's origin, and caps time and response size.
//! Successful GET answers are cached for a configured time and up to a
//! configured number of bytes, so a burst of deliveries about one pull
//! request reads it once and a few large answers cannot grow the host.
//!
//! Mapping runs on a blocking thread; a call blocks that thread on the
//! host's async client through the runtime handle.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, Url};
use secrecy::ExposeSecret;
use thiserror::Error;

use crate::config::{Config, ProviderApiConfig};
use crate::mapper::{ApiFailure, ApiRequest, ApiResponse, NoProviderApi, ProviderApi};

/// Headers a mapper may not set: the host owns credentials, routing and
/// framing.
const FORBIDDEN_HEADERS: [&str; 11] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
];

/// Redirects followed within the base URL's origin.
const MAX_REDIRECTS: usize = 5;

/// GET answers kept per provider at most; the oldest goes first.

#[derive(Debug, Error)]
pub enum ProviderApiError {
    #[error("providers.{provider}.api.base_url: {reason}")]
    BaseUrl { provider: String, reason: String },
    #[error("providers.{provider}.api.{field}: {reason}")]
    Header {
        provider: String,
        field: String,
        reason: String,
    },
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// Every provider's API access; cheap to clone.
#[derive(Clone, Default)]
pub struct ProviderApis {
    by_provider: Arc<BTreeMap<String, Arc<ProviderClient>>>,
}

impl ProviderApis {
    /// One client per provider with an `api` block, sharing one HTTP
    /// connection pool; errors name the config field at fault.
    pub fn from_config(config: &Config) -> Result<ProviderApis, ProviderApiError> {
        let configured: Vec<_> = config
            .providers
            .iter()
            .filter_map(|(name, p)| p.api.as_ref().map(|a| (name, a)))
            .collect();
        if configured.is_empty() {
            return Ok(ProviderApis::default());
        }
        let client = http_client()?;
        let mut by_provider = BTreeMap::new();
        for (name, api) in configured {
            let c = ProviderClient::new(name, api, client.clone())?;
            by_provider.insert(name.clone(), Arc::new(c));
        }
        Ok(ProviderApis {
            by_provider: Arc::new(by_provider),
        })
    }

    /// Whether `provider` has an `api` block.
    pub fn has(&self, provider: &str) -> bool {
        self.by_provider.contains_key(provider)
    }

    /// Sends one outbound request to `provider`'s API (async, uncached).
    pub async fn send(
        &self,
        provider: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiFailure> {
        match self.by_provider.get(provider) {
            Some(c) => c.send(request).await,
            None => Err(ApiFailure::Unavailable(format!(
                "provider `{provider}` has no `api` block"
            ))),
        }
    }

    /// The API a mapper of `provider` gets for one delivery.
    pub fn session(&self, provider: &str) -> Box<dyn ProviderApi> {
        match self.by_provider.get(provider) {
            Some(c) => Box::new(Session { client: c.clone() }),
            None => Box::new(NoProviderApi),
        }
    }
}

/// The host's one HTTP client: a redirect is followed only within the
/// origin the request started at (credentials never travel elsewhere).
pub(super) fn http_client() -> Result<Client, ProviderApiError> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same_origin && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    Client::builder()
        .redirect(policy)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(ProviderApiError::Client)
}

struct ProviderClient {
    provider: String,
    client: Client,
    base: Url,
    /// Configured headers, credentials among them.
    headers: HeaderMap,
    timeout: Duration,
    max_response_bytes: usize,
    /// Successful GET answers by URL and headers, bounded in bytes and
    /// expiring after `api.cache_ttl_secs`; none when that is 0.
    cache: Option<Cache<String, ApiResponse>>,
}

impl ProviderClient {
    fn new(
        provider: &str,
        c: &ProviderApiConfig,
        client: Client,
    ) -> Result<Self, ProviderApiError> {
        let base_err = |reason: String| ProviderApiError::BaseUrl {
            provider: provider.to_owned(),
            reason,
        };
        let base = Url::parse(&c.base_url).map_err(|e| base_err(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(base_err("an http(s) URL with a host is needed".into()));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(base_err(
                "no query or fragment: paths are the mapper's".into(),
            ));
        }
        let header_err = |field: String, reason: String| ProviderApiError::Header {
            provider: provider.to_owned(),
            field,
            reason,
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &c.headers {
            let n = HeaderName::try_from(name.as_str())
                .map_err(|e| header_err(format!("headers.{name}"), e.to_string()))?;
            let v = HeaderValue::try_from(value.as_str())
                .map_err(|e| header_err(format!("headers.{name}"), e.to_string()))?;
            headers.insert(n, v);
        }
        if let Some(auth) = &c.auth {
            let (field, name, value) = match (&auth.bearer, &auth.basic, &auth.header) {
                (Some(token), None, None) => (
                    "auth.bearer",
                    "authorization".to_owned(),
                    format!("Bearer {}", token.expose_secret()),
                ),
                (None, Some(basic), None) => {
                    use base64::Engine as _;
                    let pair = format!("{}:{}", basic.username, basic.password.expose_secret());
                    (
                        "auth.basic",
                        "authorization".to_owned(),
                        format!(
                            "Basic {}",
                            base64::engine::general_purpose::STANDARD.encode(pair)
                        ),
                    )
                }
                (None, None, Some(h)) => (
                    "auth.header",
                    h.name.clone(),
                    h.value.expose_secret().to_owned(),
                ),
                _ => {
                    return Err(header_err(
                        "auth".into(),
                        "give exactly one of `bearer`, `basic`, `header`".into(),
                    ));
                }
            };
            // Errors name the field, never the value: it is a secret.
            let n = HeaderName::try_from(name.as_str())
                .map_err(|e| header_err(field.into(), e.to_string()))?;
            let mut v = HeaderValue::try_from(value)
                .map_err(|_| header_err(field.into(), "invalid characters".into()))?;
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        Ok(ProviderClient {
            provider: provider.to_owned(),
            client,
            base,
            headers,
            timeout: Duration::from_millis(c.timeout_ms),
            max_response_bytes: c.max_response_bytes,
            cache: (c.cache_ttl_secs > 0).then(|| get_cache(c.cache_max_bytes, c.cache_ttl_secs)),
        })
    }

    /// The absolute URL for a mapper's relative path, if it stays under
    /// the base URL.
    fn url_for(&self, path: &str) -> Result<Url, ApiFailure> {
        let denied = |why: &str| ApiFailure::Denied(format!("path `{path}`: {why}"));
        if !path.starts_with('/') || path.starts_with("//") {
            return Err(denied(
                "must start with a single `/` (relative to the base URL)",
            ));
        }
        if path.contains('\\') || path.contains('#') || path.chars().any(char::is_control) {
            return Err(denied(
                "backslashes, fragments and control characters are refused",
            ));
        }
        let joined = format!("{}{path}", self.base.as_str().trim_end_matches('/'));
        let url = Url::parse(&joined).map_err(|e| denied(&e.to_string()))?;
        let prefix = self.base.path().trim_end_matches('/');
        let under_base = url.path() == prefix
            || url
                .path()
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'));
        if url.origin() != self.base.origin() || !under_base {
            return Err(denied("leaves the provider's base URL"));
        }
        Ok(url)
    }

    /// The URL and headers for a request: under the base URL, the
    /// mapper's headers checked, the configured ones (credentials) added.
    fn prepare(&self, request: &ApiRequest) -> Result<(Url, HeaderMap), ApiFailure> {
        let url = self.url_for(&request.path)?;
        let mut headers = self.headers.clone();
        for (name, value) in &request.headers {
            let lower = name.to_ascii_lowercase();
            if FORBIDDEN_HEADERS.contains(&lower.as_str()) || self.headers.contains_key(&lower) {
                return Err(ApiFailure::Denied(format!(
                    "header `{name}` is set by the host"
                )));
            }
            let n = HeaderName::try_from(lower.as_str())
                .map_err(|_| ApiFailure::Denied(format!("header name `{name}`")))?;
            let v = HeaderValue::try_from(value.as_str())
                .map_err(|_| ApiFailure::Denied(format!("header `{name}`: invalid value")))?;
            headers.append(n, v);
        }
        Ok((url, headers))
    }

    /// Sends a request from async code, uncached (outbound writes), with
    /// the same confinement, credentials, timeout and size cap as
    /// `provider-api`.
    async fn send(&self, request: &ApiRequest) -> Result<ApiResponse, ApiFailure> {
        let method = parse_method(&request.method)?;
        let (url, headers) = self.prepare(request)?;
        let req = self
            .client
            .request(method, url)
            .headers(headers)
            .body(request.body.clone());
        tokio::time::timeout(self.timeout, fetch(req, self.max_response_bytes))
            .await
            .map_err(|_| ApiFailure::Timeout)?
    }

    async fn call(&self, request: &ApiRequest) -> Result<ApiResponse, ApiFailure> {
        let method = parse_method(&request.method)?;
        let (url, headers) = self.prepare(request)?;
        let cache = self.cache.as_ref().filter(|_| method == Method::GET);
        let key = cache.map(|_| cache_key(&url, &request.headers));
        if let (Some(cache), Some(key)) = (cache, &key)
            && let Some(hit) = cache.get(key)
        {
            return Ok(hit);
        }
        let req = self
            .client
            .request(method, url)
            .headers(headers)
            .body(request.body.clone());
        let max = self.max_response_bytes;
        // Awaited on the mapper call's fiber: the call's wall-clock
        // deadline cancels it by dropping this future.
        let response = tokio::time::timeout(self.timeout, fetch(req, max))
            .await
            .map_err(|_| ApiFailure::Timeout)
            .and_then(|r| r)
            .inspect_err(|e| {
                tracing::debug!(provider = %self.provider, error = ?e, "provider-api call failed");
            })?;
        if let (Some(cache), Some(key)) = (cache, key)
            && (200..300).contains(&response.status)
        {
            cache.insert(key, response.clone());
        }
        Ok(response)
    }
}

/// The methods a request may use.
fn parse_method(method: &str) -> Result<Method, ApiFailure> {
    Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .ok()
        .filter(|m| {
            matches!(
                *m,
                Method::GET
                    | Method::HEAD
                    | Method::POST
                    | Method::PUT
                    | Method::PATCH
                    | Method::DELETE
            )
        })
        .ok_or_else(|| ApiFailure::Denied(format!("method `{method}`")))
}

pub(super) async fn fetch(
    req: reqwest::RequestBuilder,
    max: usize,
) -> Result<ApiResponse, ApiFailure> {
    let mut response = req.send().await.map_err(|e| {
        if e.is_timeout() {
            ApiFailure::Timeout
        } else {
            // Without the URL: it is the provider's, but the error text
            // goes back to the component and into logs.
            ApiFailure::Unavailable(e.without_url().to_string())
        }
    })?;
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(ApiFailure::TooLarge);
    }
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| *name != "set-cookie")
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ApiFailure::Unavailable(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > max {
            return Err(ApiFailure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(ApiResponse {
        status,
        headers,
        body,
    })
}

/// A GET's identity: its URL and the headers the mapper chose (an
/// `Accept` can change the answer).
fn cache_key(url: &Url, headers: &[(String, String)]) -> String {
    let mut key = url.as_str().to_owned();
    let mut hs: Vec<String> = headers
        .iter()
        .map(|(n, v)| format!("{}:{v}", n.to_ascii_lowercase()))
        .collect();
    hs.sort();
    for h in hs {
        key.push('\n');
        key.push_str(&h);
    }
    key
}

/// The GET cache: weighed by the bytes an answer holds, so a few large
/// answers cannot hold more memory than `max_bytes`; entries expire after
/// `ttl_secs` and are then dropped, not only skipped.
fn get_cache(max_bytes: u64, ttl_secs: u64) -> Cache<String, ApiResponse> {
    Cache::builder()
        .max_capacity(max_bytes)
        .weigher(|key: &String, r: &ApiResponse| {
            let bytes = key.len()
                + r.body.len()
                + r.headers
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>();
            u32::try_from(bytes).unwrap_or(u32::MAX)
        })
        .time_to_live(Duration::from_secs(ttl_secs))
        .build()
}

/// One delivery's view of its provider's API.
struct Session {
    client: Arc<ProviderClient>,
}

#[async_trait::async_trait]
impl ProviderApi for Session {
    async fn call(&mut self, request: &ApiRequest) -> Result<ApiResponse, ApiFailure> {
        self.client.call(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> ProviderClient {
        let c = ProviderApiConfig {
            base_url: base.into(),
            auth: None,
            headers: BTreeMap::new(),
            timeout_ms: 1000,
            max_response_bytes: 1 << 20,
            cache_ttl_secs: 0,
            cache_max_bytes: 1 << 20,
        };
        ProviderClient::new("p", &c, Client::new()).expect("client")
    }

    #[test]
    fn paths_stay_under_the_base_url() {
        let c = client("https://jira.example.com/rest/api/2");
        assert_eq!(
            c.url_for("/issue/ABC-1?fields=status")
                .expect("ok")
                .as_str(),
            "https://jira.example.com/rest/api/2/issue/ABC-1?fields=status"
        );
        for bad in [
            "issue/1",
            "//evil.example/x",
            "/../../admin",
            "/%2e%2e/%2e%2e/admin",
            "/x#frag",
            "/x\\y",
            "@evil.example/x",
        ] {
            assert!(
                matches!(c.url_for(bad), Err(ApiFailure::Denied(_))),
                "{bad} should be denied, got {:?}",
                c.url_for(bad)
            );
        }
        // A base path is a prefix of whole segments, not of characters.
        let c = client("https://api.example.com/v1");
        assert!(c.url_for("/../v10/x").is_err());
    }

    #[test]
    fn the_cache_is_bounded_in_bytes_and_drops_expired_answers() {
        let answer = |bytes: usize| ApiResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: vec![b'x'; bytes],
        };
        let cache = get_cache(1 << 20, 60);
        for i in 0..64 {
            cache.insert(format!("k{i}"), answer(64 << 10));
        }
        cache.run_pending_tasks();
        // 64 answers of 64 KiB do not fit in 1 MiB: at most 16 stay.
        assert!(cache.entry_count() <= 16, "{}", cache.entry_count());
        assert!(cache.weighted_size() <= 1 << 20);

        let expiring = get_cache(1 << 20, 1);
        expiring.insert("k".into(), answer(10));
        assert!(expiring.get("k").is_some());
        // No sleep: expiry is checked against moka's clock, which a test
        // cannot move; instead prove the TTL is configured.
        assert_eq!(
            expiring.policy().time_to_live(),
            Some(Duration::from_secs(1))
        );
    }
}
