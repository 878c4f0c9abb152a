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
//! A provider may have more APIs than its own (`api.extra.<name>`: a
//! directory beside a chat), and may be let read the host's tickets
//! (`api.read_tickets`). A request names which with the `Sluice-Api`
//! header ([`crate::mapper::API_HEADER`]); the host removes it and sends the request with
//! that API's base URL, credentials, timeout, size cap and cache — an
//! unknown name is refused, never sent with the provider's own
//! credentials. `tickets` is answered in process by a [`TicketReader`]
//! (the ticket API's `GET /v1/tickets`), read-only.
//!
//! A mapper's call awaits the host's async client on the call's fiber.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, Url};
use secrecy::ExposeSecret;
use thiserror::Error;

use crate::config::{Config, ProviderApiConfig, TICKETS_API};
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

#[derive(Debug, Error)]
pub enum ProviderApiError {
    /// `key` is the API block's path, e.g. `providers.pachca.api` or
    /// `providers.pachca.api.extra.y360`.
    #[error("{key}.base_url: {reason}")]
    BaseUrl { key: String, reason: String },
    #[error("{key}.{field}: {reason}")]
    Header {
        key: String,
        field: String,
        reason: String,
    },
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// The host's tickets as a mapper may read them: `GET /v1/tickets?{query}`
/// answered as the ticket API answers it (the same filters, the same JSON,
/// the same errors). The ticket API implements it, so this module stays
/// out of its filters and types; the app hands it in
/// ([`ProviderApis::with_tickets`]).
#[async_trait::async_trait]
pub trait TicketReader: Send + Sync {
    /// The status and JSON body of `GET /v1/tickets?{query}`.
    async fn find(&self, query: Option<&str>) -> ApiResponse;
}

/// Every provider's API access; cheap to clone.
#[derive(Clone, Default)]
pub struct ProviderApis {
    by_provider: Arc<BTreeMap<String, Arc<ProviderEntry>>>,
    tickets: Option<Arc<dyn TicketReader>>,
}

/// One provider's APIs: its own, its named extras, and whether it may read
/// the host's tickets.
struct ProviderEntry {
    provider: String,
    own: Arc<ProviderClient>,
    extra: BTreeMap<String, Arc<ProviderClient>>,
    read_tickets: bool,
    /// The tickets API's answers are capped like the provider's own.
    max_response_bytes: usize,
}

/// Where a request goes, once its `Sluice-Api` header is read.
enum Route {
    Client(Arc<ProviderClient>),
    Tickets(Arc<dyn TicketReader>),
}

impl ProviderApis {
    /// One client per provider with an `api` block (and one per extra
    /// API), sharing one HTTP connection pool; errors name the config key
    /// at fault.
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
            let key = format!("providers.{name}.api");
            let own = Arc::new(ProviderClient::new(name, &key, api, client.clone())?);
            let mut extra = BTreeMap::new();
            for (api_name, e) in &api.extra {
                let key = format!("{key}.extra.{api_name}");
                let c = ProviderClient::new(name, &key, e, client.clone())?;
                extra.insert(api_name.clone(), Arc::new(c));
            }
            let entry = ProviderEntry {
                provider: name.clone(),
                own,
                extra,
                read_tickets: api.read_tickets,
                max_response_bytes: api.max_response_bytes,
            };
            by_provider.insert(name.clone(), Arc::new(entry));
        }
        Ok(ProviderApis {
            by_provider: Arc::new(by_provider),
            tickets: None,
        })
    }

    /// Answers `Sluice-Api: tickets` from `reader`, for the providers
    /// whose config says `api.read_tickets: true`.
    pub fn with_tickets(mut self, reader: Arc<dyn TicketReader>) -> Self {
        self.tickets = Some(reader);
        self
    }

    /// Whether `provider` has an `api` block.
    pub fn has(&self, provider: &str) -> bool {
        self.by_provider.contains_key(provider)
    }

    /// Sends one outbound request to `provider`'s API (async, uncached):
    /// its own, or the extra API its `Sluice-Api` header names. The
    /// tickets API is for reads while mapping, never a send.
    pub async fn send(
        &self,
        provider: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiFailure> {
        let Some(entry) = self.by_provider.get(provider) else {
            return Err(ApiFailure::Unavailable(format!(
                "provider `{provider}` has no `api` block"
            )));
        };
        let mut request = request.clone();
        match entry.route(&mut request, self.tickets.as_ref())? {
            Route::Client(c) => c.send(&request).await,
            Route::Tickets(_) => Err(ApiFailure::Denied(
                "the tickets API is read while mapping (`provider-api`), not sent to".into(),
            )),
        }
    }

    /// The API a mapper of `provider` gets for one delivery.
    pub fn session(&self, provider: &str) -> Box<dyn ProviderApi> {
        match self.by_provider.get(provider) {
            Some(entry) => Box::new(Session {
                entry: entry.clone(),
                tickets: self.tickets.clone(),
            }),
            None => Box::new(NoProviderApi),
        }
    }
}

impl ProviderEntry {
    /// Which API `request` is for; its `Sluice-Api` header is removed.
    fn route(
        &self,
        request: &mut ApiRequest,
        tickets: Option<&Arc<dyn TicketReader>>,
    ) -> Result<Route, ApiFailure> {
        let Some(name) = request.take_api()? else {
            return Ok(Route::Client(self.own.clone()));
        };
        if name == TICKETS_API {
            return match tickets.filter(|_| self.read_tickets) {
                Some(reader) => Ok(Route::Tickets(reader.clone())),
                None => Err(ApiFailure::Denied(format!(
                    "provider `{}` may not read tickets (`api.read_tickets` is off)",
                    self.provider
                ))),
            };
        }
        match self.extra.get(&name) {
            Some(c) => Ok(Route::Client(c.clone())),
            None => Err(ApiFailure::Denied(format!(
                "no API named `{name}` for provider `{}`",
                self.provider
            ))),
        }
    }
}

/// The one request the tickets API answers: `GET /v1/tickets` with any
/// query; everything else is refused, since it is a read of the store.
async fn read_tickets(
    reader: &dyn TicketReader,
    request: &ApiRequest,
    max: usize,
) -> Result<ApiResponse, ApiFailure> {
    let (path, query) = match request.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (request.path.as_str(), None),
    };
    if !request.method.eq_ignore_ascii_case("GET") || path != "/v1/tickets" {
        return Err(ApiFailure::Denied(format!(
            "the tickets API is read-only: it answers `GET /v1/tickets?…`, not `{} {path}`",
            request.method
        )));
    }
    let answer = reader.find(query).await;
    if answer.body.len() > max {
        return Err(ApiFailure::TooLarge);
    }
    Ok(answer)
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
    /// `key` names the config block in errors (`providers.p.api`,
    /// `providers.p.api.extra.y360`).
    fn new(
        provider: &str,
        key: &str,
        c: &ProviderApiConfig,
        client: Client,
    ) -> Result<Self, ProviderApiError> {
        let base_err = |reason: String| ProviderApiError::BaseUrl {
            key: key.to_owned(),
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
            key: key.to_owned(),
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

/// One delivery's view of its provider's APIs. The call budget is the
/// sandbox's, shared by every API a call reaches.
struct Session {
    entry: Arc<ProviderEntry>,
    tickets: Option<Arc<dyn TicketReader>>,
}

#[async_trait::async_trait]
impl ProviderApi for Session {
    async fn call(&mut self, request: &ApiRequest) -> Result<ApiResponse, ApiFailure> {
        let mut request = request.clone();
        match self.entry.route(&mut request, self.tickets.as_ref())? {
            Route::Client(c) => c.call(&request).await,
            Route::Tickets(reader) => {
                read_tickets(reader.as_ref(), &request, self.entry.max_response_bytes).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapper::API_HEADER;

    fn client(base: &str) -> ProviderClient {
        let c = ProviderApiConfig {
            base_url: base.into(),
            auth: None,
            headers: BTreeMap::new(),
            timeout_ms: 1000,
            max_response_bytes: 1 << 20,
            cache_ttl_secs: 0,
            cache_max_bytes: 1 << 20,
            extra: BTreeMap::new(),
            read_tickets: false,
        };
        ProviderClient::new("p", "providers.p.api", &c, Client::new()).expect("client")
    }

    /// Pachca with a Y360 directory beside it; `read_tickets` as given.
    fn apis(read_tickets: bool) -> ProviderApis {
        let yaml = format!(
            "providers:\n  pachca:\n    verify: {{secret: pachca-secret-0123456789}}\n    api:\n      base_url: https://api.pachca.com/api/shared/v1\n      auth: {{bearer: pachca-token-0123456789}}\n      read_tickets: {read_tickets}\n      extra:\n        y360: {{base_url: https://api360.yandex.net, auth: {{header: {{name: Authorization, value: OAuth y360-token-0123456789}}}}}}\n"
        );
        let config =
            Config::parse(&yaml, std::path::Path::new("/sluice.yaml"), |_| None).expect("config");
        ProviderApis::from_config(&config).expect("apis")
    }

    fn get(path: &str, api: Option<&str>) -> ApiRequest {
        ApiRequest {
            method: "GET".into(),
            path: path.into(),
            headers: api
                .map(|a| vec![("Sluice-Api".to_owned(), a.to_owned())])
                .into_iter()
                .flatten()
                .chain([("accept".to_owned(), "application/json".to_owned())])
                .collect(),
            body: Vec::new(),
        }
    }

    fn route(apis: &ProviderApis, request: &mut ApiRequest) -> Result<Route, ApiFailure> {
        apis.by_provider["pachca"].route(request, apis.tickets.as_ref())
    }

    /// The URL and credentials a routed request would be sent with.
    fn sent(apis: &ProviderApis, mut request: ApiRequest) -> (String, String, ApiRequest) {
        let Ok(Route::Client(c)) = route(apis, &mut request) else {
            panic!("not routed to an HTTP API");
        };
        let (url, headers) = c.prepare(&request).expect("prepared");
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (url.to_string(), auth, request)
    }

    #[test]
    fn the_sluice_api_header_picks_the_api_and_its_credentials_and_is_removed() {
        let apis = apis(false);
        let (url, auth, own) = sent(&apis, get("/users/1", None));
        assert_eq!(url, "https://api.pachca.com/api/shared/v1/users/1");
        assert_eq!(auth, "Bearer pachca-token-0123456789");
        assert_eq!(own.headers.len(), 1);

        let (url, auth, y360) = sent(
            &apis,
            get(
                "/directory/v1/org/42/users?perPage=1000&page=1",
                Some("y360"),
            ),
        );
        assert_eq!(
            url,
            "https://api360.yandex.net/directory/v1/org/42/users?perPage=1000&page=1"
        );
        assert_eq!(auth, "OAuth y360-token-0123456789");
        // Stripped: the provider never sees our routing header.
        assert!(
            y360.headers
                .iter()
                .all(|(n, _)| !n.eq_ignore_ascii_case(API_HEADER)),
            "{:?}",
            y360.headers
        );
        // A path may not leave the extra API's base URL either.
        let mut escape = get("//api.pachca.com/users", Some("y360"));
        let Ok(Route::Client(c)) = route(&apis, &mut escape) else {
            panic!("routed");
        };
        assert!(matches!(c.prepare(&escape), Err(ApiFailure::Denied(_))));
    }

    #[test]
    fn an_extra_apis_config_errors_name_its_key() {
        let yaml = "providers:\n  pachca:\n    verify: {secret: pachca-secret-0123456789}\n    api:\n      base_url: https://api.pachca.com\n      extra:\n        y360: {base_url: https://api360.yandex.net, auth: {header: {name: \"bad name\", value: x}}}\n";
        let config =
            Config::parse(yaml, std::path::Path::new("/sluice.yaml"), |_| None).expect("config");
        let e = ProviderApis::from_config(&config).err().expect("refused");
        assert_eq!(
            e.to_string(),
            "providers.pachca.api.extra.y360.auth.header: invalid HTTP header name"
        );
    }

    #[test]
    fn an_unknown_or_ambiguous_api_name_is_denied() {
        let apis = apis(false);
        let denied = |mut r: ApiRequest| match route(&apis, &mut r) {
            Err(ApiFailure::Denied(why)) => why,
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("routed"),
        };
        assert_eq!(
            denied(get("/x", Some("jira"))),
            "no API named `jira` for provider `pachca`"
        );
        let mut twice = get("/x", Some("y360"));
        twice.headers.push(("sluice-api".into(), "y360".into()));
        assert!(denied(twice).contains("more than once"));
        assert!(denied(get("/x", Some(" "))).contains("empty"));
    }

    #[tokio::test]
    async fn the_tickets_api_is_off_by_default_and_read_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("t.db");
        let store = crate::store::Store::open(db.to_str().expect("utf-8"))
            .await
            .expect("store");
        let reader: Arc<dyn TicketReader> = Arc::new(crate::api::MapperTickets::new(store));

        // Off: the name is refused even with a reader in the host.
        let off = apis(false).with_tickets(reader.clone());
        let mut session = off.session("pachca");
        let answer = session.call(&get("/v1/tickets", Some("tickets"))).await;
        assert_eq!(
            answer,
            Err(ApiFailure::Denied(
                "provider `pachca` may not read tickets (`api.read_tickets` is off)".into()
            ))
        );

        let on = apis(true).with_tickets(reader);
        let mut session = on.session("pachca");
        let page = session
            .call(&get(
                "/v1/tickets?field.pachca_user_id=2345&status=NEW",
                Some("tickets"),
            ))
            .await
            .expect("answered");
        assert_eq!(page.status, 200);
        let body: serde_json::Value = serde_json::from_slice(&page.body).expect("json");
        assert_eq!(body, serde_json::json!({"items": [], "next": null}));
        // The route's own validation, and its error body.
        let bad = session
            .call(&get("/v1/tickets?field.Bad=1", Some("tickets")))
            .await
            .expect("answered");
        assert_eq!(bad.status, 422);
        let body: serde_json::Value = serde_json::from_slice(&bad.body).expect("json");
        assert_eq!(body["error"]["field"], "field.Bad");
        // Nothing but `GET /v1/tickets` is answered.
        for (method, path) in [
            ("POST", "/v1/tickets"),
            ("PATCH", "/v1/tickets"),
            ("GET", "/v1/tickets/first"),
            ("GET", "/v1/tickets/abc/history"),
            ("GET", "/v1/deliveries"),
        ] {
            let mut r = get(path, Some("tickets"));
            r.method = method.into();
            assert!(
                matches!(session.call(&r).await, Err(ApiFailure::Denied(_))),
                "{method} {path}"
            );
        }
        // And never as an outbound send.
        assert!(matches!(
            on.send("pachca", &get("/v1/tickets", Some("tickets")))
                .await,
            Err(ApiFailure::Denied(_))
        ));
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
