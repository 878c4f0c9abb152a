//! The YAML configuration: one file, secrets from the environment.
//!
//! `${NAME}` (and the seed's `$environment_NAME$`) anywhere in the file is
//! replaced by the environment variable before parsing; an unset variable
//! is an error naming it and its line. Unknown keys are errors naming
//! their path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;
use thiserror::Error;

use crate::resolve::{BranchConvention, DEFAULT_BRANCH_PATTERN};
use crate::tickets::Workflow;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{path}: cannot read")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: environment variable `{name}` is not set")]
    MissingEnv {
        path: PathBuf,
        line: usize,
        name: String,
    },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Serve `/metrics` on this address instead of `listen` (which then
    /// has no `/metrics`).
    pub metrics_listen: Option<String>,
    /// A SQLite file path (the embedded default) or a `postgres://` URL.
    #[serde(default = "default_database")]
    pub database: String,
    /// Longest wait for a free database connection (both backends): a
    /// database that stopped answering fails requests in this time
    /// instead of holding them.
    #[serde(default = "default_database_acquire_timeout_ms")]
    pub database_acquire_timeout_ms: u64,
    /// PostgreSQL's `statement_timeout` for every connection the host
    /// opens (migrations excepted): a statement stuck on locks or a slow
    /// plan is cancelled by the server.
    #[serde(default = "default_database_statement_timeout_ms")]
    pub database_statement_timeout_ms: u64,
    /// Bounds on every HTTP request.
    #[serde(default)]
    pub server: ServerConfig,
    /// How long stored deliveries keep their raw body.
    #[serde(default)]
    pub retention: RetentionConfig,
    #[serde(default)]
    pub tickets: TicketsConfig,
    #[serde(default)]
    pub api: ApiConfig,
    /// Webhook senders by name; `POST /hooks/{name}` receives for each.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// Where mapper components come from and how they are reloaded.
    #[serde(default)]
    pub mappers: MappersConfig,
    /// The people directory's seed: written to the store at start-up (each
    /// replacing the stored person of that e-mail); `/v1/people` edits the
    /// rest.
    #[serde(default)]
    pub people: Vec<PersonConfig>,
    /// The stale-ticket sweeper; absent: off. Present without `rules`:
    /// seed 2's rules.
    pub sweeper: Option<crate::sweeper::SweeperConfig>,
}

/// One person of the people directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonConfig {
    pub email: String,
    pub name: Option<String>,
    /// Their id at each provider, by provider name: a GitHub login, a
    /// Bitbucket account id, a Slack user id, …
    #[serde(default)]
    pub identities: BTreeMap<String, String>,
}

/// Bounds on the HTTP server, so that slow or too many clients cannot
/// hold it: each request has a deadline, its body another, and requests
/// over the cap are refused at once rather than queued.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// A request's whole life, body and handler (`?wait=true` and replays
    /// included); over it: 503 with `Retry-After`.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// From the request's headers to the last byte of its body; over it:
    /// 408 (a client sending its body slowly, or not at all).
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Requests handled at once; more get 503 with `Retry-After`.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            request_timeout_ms: default_request_timeout_ms(),
            body_read_timeout_ms: default_body_read_timeout_ms(),
            max_concurrent_requests: default_max_concurrent_requests(),
        }
    }
}

fn default_request_timeout_ms() -> u64 {
    30_000
}
fn default_body_read_timeout_ms() -> u64 {
    10_000
}
fn default_max_concurrent_requests() -> usize {
    512
}
fn default_database_acquire_timeout_ms() -> u64 {
    5_000
}
fn default_database_statement_timeout_ms() -> u64 {
    15_000
}

/// Raw delivery bodies are dropped (emptied, the row and its
/// `body_dropped_at` kept) once they are older than `delivery_body_days`,
/// by a background task working in bounded batches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days a delivery's body is kept; 0 keeps bodies forever.
    #[serde(default = "default_delivery_body_days")]
    pub delivery_body_days: u32,
    /// Most bodies dropped in one run.
    #[serde(default = "default_retention_batch")]
    pub batch_size: u32,
    /// Time between runs.
    #[serde(default = "default_retention_interval_secs")]
    pub interval_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            delivery_body_days: default_delivery_body_days(),
            batch_size: default_retention_batch(),
            interval_secs: default_retention_interval_secs(),
        }
    }
}

impl RetentionConfig {
    /// How long bodies are kept; `None` when forever.
    pub fn keep(&self) -> Option<std::time::Duration> {
        (self.delivery_body_days > 0)
            .then(|| std::time::Duration::from_secs(u64::from(self.delivery_body_days) * 86_400))
    }

    /// One line for `host check`.
    pub fn describe(&self) -> String {
        match self.keep() {
            Some(_) => format!(
                "retention: delivery bodies kept {} days, then dropped (at most {} every {} s)",
                self.delivery_body_days, self.batch_size, self.interval_secs
            ),
            None => "retention: delivery bodies kept forever".into(),
        }
    }
}

fn default_delivery_body_days() -> u32 {
    30
}
fn default_retention_batch() -> u32 {
    1_000
}
fn default_retention_interval_secs() -> u64 {
    60
}

/// Mapper components: a watched folder, the artifact cache, hot reload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappersConfig {
    /// A folder holding `{provider}.wasm` (and, optionally, a
    /// `{provider}.fixtures/` folder of canary fixtures beside it) for each
    /// configured provider that names no `mapper:` of its own. Relative to
    /// the config file.
    pub dir: Option<PathBuf>,
    /// Where precompiled artifacts are kept; default
    /// `$XDG_CACHE_HOME/sluice/artifacts` (or `~/.cache/sluice/artifacts`).
    /// Relative to the config file. Refused when it is a symbolic link,
    /// others than its owner may write it, or another user owns it.
    pub cache_dir: Option<PathBuf>,
    /// The secret that vouches for cached artifacts: 32 random bytes,
    /// made (mode 0600) on first use. Kept outside `cache_dir` so that
    /// whoever can write the cache cannot choose it. Default
    /// `$XDG_DATA_HOME/sluice/artifact.key` (or
    /// `~/.local/share/sluice/artifact.key`). Relative to the config file.
    pub cache_key_file: Option<PathBuf>,
    /// Watch mapper files and swap in new versions while serving.
    #[serde(default = "yes")]
    pub watch: bool,
    /// Quiet time after the last change to a mapper's files before it is
    /// loaded: lets a copy or an editor's save finish.
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
    /// Wall-clock cap on one mapper call, `provider-api` waits included:
    /// a call still running (asleep, or waiting on an API that does not
    /// answer) is cancelled and its delivery fails (retried when it was
    /// waiting on the API).
    #[serde(default = "default_wall_clock_ms")]
    pub wall_clock_ms: u64,
}

impl Default for MappersConfig {
    fn default() -> Self {
        MappersConfig {
            dir: None,
            cache_dir: None,
            cache_key_file: None,
            watch: true,
            debounce_ms: default_debounce_ms(),
            wall_clock_ms: default_wall_clock_ms(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_wall_clock_ms() -> u64 {
    30_000
}

fn default_debounce_ms() -> u64 {
    50
}

/// Retries of deliveries whose actions cannot apply yet.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Attempts before a delivery is dead-lettered.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt, with jitter.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// How long a worker's claim on a delivery lasts; after a crash, its
    /// claims are taken over once this passes.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// `?wait=true` requests processed at once; more get the plain 202
    /// and their delivery is processed by the worker as usual.
    #[serde(default = "default_max_waiting")]
    pub max_waiting: usize,
    /// Map a delivery whose mapping needs neither the provider's API nor
    /// mapper state in the request that brought it, and apply it in the
    /// inbox's own commit (the inline path). Off: every delivery goes
    /// through the worker's lanes. Default: on for SQLite, off for
    /// PostgreSQL (where the apply's ticket locks would hold the
    /// acknowledgement of every delivery about a busy ticket).
    #[serde(default)]
    pub inline: Option<bool>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_attempts: default_max_attempts(),
            retry_base_ms: default_retry_base_ms(),
            retry_max_ms: default_retry_max_ms(),
            lease_ms: default_lease_ms(),
            max_waiting: default_max_waiting(),
            inline: None,
        }
    }
}

fn default_max_attempts() -> u32 {
    8
}
fn default_retry_base_ms() -> u64 {
    1_000
}
fn default_retry_max_ms() -> u64 {
    600_000
}
fn default_lease_ms() -> u64 {
    60_000
}
fn default_max_waiting() -> usize {
    32
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// How its webhooks are verified. Absent: the provider sends none (it
    /// is pulled on a `schedule`), and `POST /hooks/{name}` answers 404.
    pub verify: Option<VerifyConfig>,
    /// Where the delivery id is; default: the preset's.
    pub dedupe: Option<DedupeConfig>,
    /// Treat a body already received under another delivery id as a
    /// duplicate (a replayed capture). Default: on for the presets whose
    /// delivery-id header is not signed (bitbucket, github, gitlab, jira,
    /// pagerduty), off for the rest.
    pub replay_dedupe: Option<bool>,
    /// Largest body accepted, in bytes (413 above).
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// The mapper component (`.wasm`); relative paths are relative to the
    /// config file's folder. Without one, deliveries are stored and wait.
    pub mapper: Option<PathBuf>,
    /// Canary fixtures a new version of the mapper must pass before it
    /// serves; default: the `{name}.fixtures/` folder beside the `.wasm`.
    /// Relative to the config file.
    pub fixtures: Option<PathBuf>,
    /// Passed to the mapper as JSON text.
    #[serde(default = "empty_object")]
    pub mapper_config: serde_json::Value,
    /// The provider's API, for the mapper's `provider-api` calls; without
    /// it those calls answer `unavailable`.
    pub api: Option<ProviderApiConfig>,
    /// Outbound sync: every ticket change is offered to this provider's
    /// `map-from-ticket-event`, and the requests it answers are sent to
    /// `api.base_url` with `api`'s credentials. Absent: inbound only.
    pub outbound: Option<OutboundConfig>,
    /// Scheduled pulls: each entry delivers a `TICK` (path `/tick/{name}`)
    /// to the mapper through the inbox, once per period.
    #[serde(default)]
    pub schedule: Vec<crate::schedule::ScheduleConfig>,
    /// Two-way sync: direction, conflict policies, field mappings, and the
    /// reconciliation interval.
    pub sync: Option<crate::sync::SyncConfig>,
}

impl ProviderConfig {
    /// The config JSON its mapper is given: `mapper_config`, with the
    /// checked `sync.mappings` under the key `mappings`.
    pub fn mapper_config_json(&self) -> serde_json::Value {
        let mut config = self.mapper_config.clone();
        if let Some(m) = self.sync.as_ref().and_then(|s| s.mappings.as_ref())
            && let Some(object) = config.as_object_mut()
        {
            object.insert("mappings".into(), m.to_json());
        }
        config
    }

    /// The sync direction in effect: `sync.direction`, else both ways as
    /// far as the provider is configured.
    pub fn direction(&self) -> crate::sync::Direction {
        self.sync
            .as_ref()
            .map(crate::sync::SyncConfig::direction)
            .unwrap_or_default()
    }

    /// Whether ticket changes are sent to it: `outbound:` is set and its
    /// direction sends.
    pub fn sends(&self) -> bool {
        self.outbound.is_some() && self.direction().outbound()
    }
}

/// How changes are sent to one provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// Offer this provider the changes its own deliveries caused too (a
    /// confirmation reply in the same chat). Off: a change never goes
    /// back where it came from.
    #[serde(default)]
    pub own_changes: bool,
    /// Attempts before a change is dead-lettered.
    #[serde(default = "default_outbound_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt, with jitter, unless the
    /// provider's `Retry-After` asks for longer.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// The header carrying each request's idempotency key
    /// (`sluice-{outbox id}-{request index}`); empty: none is sent.
    #[serde(default = "default_idempotency_header")]
    pub idempotency_header: String,
    /// A JSON pointer that must hold `true` in a 2xx answer for the
    /// request to count as sent, for APIs that report errors with 200
    /// (Slack: `/ok`). Absent: any 2xx is success.
    pub ok_pointer: Option<String>,
}

fn default_outbound_max_attempts() -> u32 {
    10
}
fn default_idempotency_header() -> String {
    "Idempotency-Key".into()
}

/// Where a mapper's `provider-api` requests go, and with what credentials.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderApiConfig {
    /// e.g. `https://api.github.com`; mapper paths are appended to it and
    /// may not leave it.
    pub base_url: String,
    /// Credentials the host adds to every request.
    pub auth: Option<ApiAuth>,
    /// Fixed headers for every request (e.g. `Accept`).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Per request, redirects included.
    #[serde(default = "default_api_timeout_ms")]
    pub timeout_ms: u64,
    /// Larger answers fail the call with `too-large`.
    #[serde(default = "default_api_max_response_bytes")]
    pub max_response_bytes: usize,
    /// How long a successful GET answer is reused; 0 turns caching off.
    #[serde(default = "default_api_cache_ttl_secs")]
    pub cache_ttl_secs: u64,
    /// Bytes of cached GET answers kept at most (bodies, headers, keys).
    #[serde(default = "default_api_cache_max_bytes")]
    pub cache_max_bytes: u64,
    /// More APIs the provider's mapper may call, by name (a directory
    /// beside the chat's own API): each with its own base URL, credentials,
    /// timeout, size cap and cache. A mapper picks one with the request
    /// header `Sluice-Api: <name>`; without it a request goes to this
    /// block's `base_url`. Names are lower-case letters, digits, `_` and
    /// `-`; `tickets` is reserved. An extra API has no `extra` or
    /// `read_tickets` of its own.
    #[serde(default)]
    pub extra: BTreeMap<String, ProviderApiConfig>,
    /// Let the mapper read the host's tickets (`Sluice-Api: tickets`,
    /// `GET /v1/tickets?…`, answered in process as the ticket API answers
    /// it). Off by default: a mapper reads every ticket with it.
    #[serde(default)]
    pub read_tickets: bool,
}

/// The `Sluice-Api` name reserved for the host's own tickets.
pub const TICKETS_API: &str = "tickets";

impl ProviderApiConfig {
    /// The shape checks of an `api` block (and of each of its `extra`
    /// APIs), each error naming its key under `key` (`providers.p.api`).
    fn validate(&self, key: &str, nested: bool) -> Result<(), (String, String)> {
        check_base_url(&self.base_url).map_err(|m| (format!("{key}.base_url"), m))?;
        if nested && !self.extra.is_empty() {
            return Err((
                format!("{key}.extra"),
                "extra APIs do not nest: list every one under the provider's `api.extra`".into(),
            ));
        }
        if nested && self.read_tickets {
            return Err((
                format!("{key}.read_tickets"),
                "belongs on the provider's `api` block, not on an extra API".into(),
            ));
        }
        for (name, extra) in &self.extra {
            let at = format!("{key}.extra.{name}");
            if name == TICKETS_API {
                return Err((
                    at,
                    "`tickets` is reserved for the host's tickets (`read_tickets: true`)".into(),
                ));
            }
            let valid = !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !valid {
                return Err((
                    at,
                    "API names are 1 to 64 lower-case letters, digits, `_` and `-`".into(),
                ));
            }
            extra.validate(&at, true)?;
        }
        Ok(())
    }
}

/// Credentials for a provider's API: exactly one of the fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiAuth {
    /// `Authorization: Bearer …`.
    pub bearer: Option<SecretString>,
    /// `Authorization: Basic …` (Jira, ServiceNow).
    pub basic: Option<BasicAuth>,
    /// Any header, e.g. PagerDuty's `Authorization: Token token=…` or an
    /// `X-Api-Key`.
    pub header: Option<HeaderAuth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: SecretString,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderAuth {
    pub name: String,
    pub value: SecretString,
}

fn default_api_timeout_ms() -> u64 {
    5_000
}
fn default_api_max_response_bytes() -> usize {
    1 << 20
}
fn default_api_cache_ttl_secs() -> u64 {
    30
}
fn default_api_cache_max_bytes() -> u64 {
    16 << 20
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// A verification preset (see `ingress::presets`); default: the
    /// provider's own name.
    pub preset: Option<String>,
    pub secret: SecretString,
    /// Overrides the preset's signature or token header.
    pub header: Option<String>,
    /// Overrides the token's query parameter (token presets).
    pub query: Option<String>,
    /// Overrides the timestamp tolerance, in seconds.
    pub tolerance_secs: Option<u64>,
    /// An OIDC JWT in `Authorization: Bearer`, checked on top of the
    /// preset's scheme (Pub/Sub push subscriptions with authentication).
    pub oidc: Option<OidcConfig>,
}

/// Who must have signed a delivery's bearer token (RS256 only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Where the issuer publishes its signing keys; default Google's.
    #[serde(default = "default_jwks_url")]
    pub jwks_url: String,
    /// The token's `aud`: the push subscription's audience (by default
    /// Google uses the push endpoint's URL).
    pub audience: String,
    /// The service account the subscription pushes as: the token's
    /// `email`, which must also be `email_verified`.
    pub email: String,
    /// Accepted `iss` values; default Google's two spellings.
    #[serde(default = "default_issuers")]
    pub issuers: Vec<String>,
    /// Clock skew allowed on `exp` and `iat`, in seconds.
    #[serde(default = "default_oidc_leeway")]
    pub leeway_secs: u64,
    /// A token naming a key the host does not know makes it re-read the
    /// JWKS at most once per this many seconds, so forged key ids cannot
    /// make it hammer the issuer.
    #[serde(default = "default_jwks_refresh")]
    pub refresh_secs: u64,
}

fn default_jwks_url() -> String {
    "https://www.googleapis.com/oauth2/v3/certs".into()
}
fn default_issuers() -> Vec<String> {
    vec![
        "https://accounts.google.com".into(),
        "accounts.google.com".into(),
    ]
}
fn default_oidc_leeway() -> u64 {
    60
}
fn default_jwks_refresh() -> u64 {
    60
}

/// Where the delivery id is: exactly one of the fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupeConfig {
    /// A delivery-id header.
    pub header: Option<String>,
    /// Several headers together.
    pub headers: Option<Vec<String>>,
    /// A JSON pointer into the body, e.g. `/event_id`.
    pub body_field: Option<String>,
    /// The SHA-256 of the body.
    #[serde(default)]
    pub body_hash: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketsConfig {
    /// Workflow statuses in order; the first is a new ticket's.
    pub workflow: Option<Vec<String>>,
    /// Branch convention, one `{guid}` placeholder.
    pub branch_pattern: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    #[serde(default)]
    pub tokens: Vec<ApiToken>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who holds the token, for logs.
    pub name: String,
    pub token: SecretString,
    pub scope: Scope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read tickets, history, deliveries.
    Read,
    /// Everything `read` may, and write.
    Admin,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_body_limit() -> usize {
    1 << 20
}

fn default_database() -> String {
    "sluice.db".into()
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path, |name| std::env::var(name).ok())
    }

    /// Parses `text` (read from `path`), taking variables from `env`.
    pub fn parse(
        text: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let expanded = expand(text, &env).map_err(|(line, name)| ConfigError::MissingEnv {
            path: path.to_owned(),
            line,
            name,
        })?;
        let de = serde_yaml_ng::Deserializer::from_str(&expanded);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let message = e.into_inner().to_string();
            // The YAML error may already start with the key; say it once.
            let message = match message.split_once(": ") {
                Some((prefix, rest)) if key.starts_with(prefix) => rest.to_owned(),
                _ => message,
            };
            ConfigError::Invalid {
                path: path.to_owned(),
                key,
                message,
            }
        })?;
        let mut config = config;
        config.validate(path)?;
        // Mapper paths are relative to the config file.
        let base = path.parent().unwrap_or(Path::new("."));
        let absolute = |p: &mut Option<PathBuf>| {
            if let Some(m) = p.as_ref()
                && m.is_relative()
            {
                *p = Some(base.join(m));
            }
        };
        for p in config.providers.values_mut() {
            absolute(&mut p.mapper);
            absolute(&mut p.fixtures);
        }
        absolute(&mut config.mappers.dir);
        absolute(&mut config.mappers.cache_dir);
        absolute(&mut config.mappers.cache_key_file);
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        use secrecy::ExposeSecret;
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.into(),
            message,
        };
        if let Some(w) = &self.tickets.workflow
            && w.is_empty()
        {
            return Err(invalid(
                "tickets.workflow",
                "needs at least one status".into(),
            ));
        }
        BranchConvention::parse(self.branch_pattern())
            .map_err(|e| invalid("tickets.branch_pattern", e.to_string()))?;
        let mut emails = std::collections::BTreeSet::new();
        let mut ids = BTreeMap::new();
        for (i, person) in self.people.iter().enumerate() {
            if let Err(why) = crate::people::check_email(&person.email) {
                return Err(invalid(&format!("people[{i}].email"), why));
            }
            if !emails.insert(person.email.to_lowercase()) {
                return Err(invalid(
                    &format!("people[{i}].email"),
                    format!("`{}` is listed twice", person.email),
                ));
            }
            for (provider, id) in &person.identities {
                let key = format!("people[{i}].identities.{provider}");
                if let Err(why) = crate::people::check_identity(provider, id) {
                    return Err(invalid(&key, why));
                }
                if let Some(other) = ids.insert((provider, id), &person.email) {
                    return Err(invalid(
                        &key,
                        format!("`{id}` is also {other}'s {provider} identity"),
                    ));
                }
            }
        }
        if let Some(sw) = &self.sweeper {
            sw.rules()
                .map_err(|(key, message)| invalid(&key, message))?;
            for (i, r) in sw.rules.iter().enumerate() {
                for (j, p) in r.providers.iter().flatten().enumerate() {
                    if self.providers.get(p).is_none_or(|c| c.outbound.is_none()) {
                        return Err(invalid(
                            &format!("sweeper.rules[{i}].providers[{j}]"),
                            format!("`{p}` is not a provider with `outbound`"),
                        ));
                    }
                }
            }
        }
        for (name, p) in &self.providers {
            let Some(verify) = &p.verify else {
                if p.schedule.is_empty() {
                    return Err(invalid(
                        &format!("providers.{name}"),
                        "needs `verify` (its webhooks) or a `schedule` (pulled instead)".into(),
                    ));
                }
                continue;
            };
            let preset = verify.preset.as_deref().unwrap_or(name);
            if crate::ingress::presets::preset(preset).is_none() {
                let key = if verify.preset.is_some() {
                    format!("providers.{name}.verify.preset")
                } else {
                    format!("providers.{name}")
                };
                return Err(invalid(
                    &key,
                    format!(
                        "no verification preset `{preset}`; set `verify.preset` to one of {}",
                        crate::ingress::presets::PRESETS.join(", ")
                    ),
                ));
            }
            if let Some(d) = &p.dedupe {
                let set = usize::from(d.header.is_some())
                    + usize::from(d.headers.is_some())
                    + usize::from(d.body_field.is_some())
                    + usize::from(d.body_hash);
                if set != 1 {
                    return Err(invalid(
                        &format!("providers.{name}.dedupe"),
                        "set exactly one of `header`, `headers`, `body_field`, `body_hash: true`"
                            .into(),
                    ));
                }
            }
            if !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                return Err(invalid(
                    &format!("providers.{name}"),
                    "provider names are lower-case letters, digits, `_` and `-`".into(),
                ));
            }
        }
        let workflow = self.workflow();
        for (name, p) in &self.providers {
            p.validate(name)
                .map_err(|(key, message)| invalid(&key, message))?;
            if let Some(sync) = &p.sync {
                let cx = crate::sync::SyncContext {
                    workflow: &workflow,
                    has_outbound: p.outbound.is_some(),
                    has_api: p.api.is_some(),
                    mapper_config: &p.mapper_config,
                };
                sync.validate(name, &cx)
                    .map_err(|(key, message)| invalid(&key, message))?;
            } else if p.mapper_config.get("mappings").is_some() {
                let (key, message) = crate::sync::misplaced(name);
                return Err(invalid(&key, message));
            }
        }
        match self.ticker() {
            Err(crate::schedule::TickError::Config { key, message }) => {
                return Err(invalid(&key, message));
            }
            Err(e) => return Err(invalid("providers", e.to_string())),
            Ok(_) => {}
        }
        let positive = [
            ("server.request_timeout_ms", self.server.request_timeout_ms),
            (
                "server.body_read_timeout_ms",
                self.server.body_read_timeout_ms,
            ),
            (
                "server.max_concurrent_requests",
                self.server.max_concurrent_requests as u64,
            ),
            (
                "database_acquire_timeout_ms",
                self.database_acquire_timeout_ms,
            ),
            (
                "database_statement_timeout_ms",
                self.database_statement_timeout_ms,
            ),
            ("retention.batch_size", u64::from(self.retention.batch_size)),
            ("mappers.wall_clock_ms", self.mappers.wall_clock_ms),
            ("retention.interval_secs", self.retention.interval_secs),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(invalid(key, "must be greater than 0".into()));
        }
        // The request deadline covers the body: a longer body deadline
        // would never fire, and slow senders would get 503 instead of 408.
        if self.server.body_read_timeout_ms > self.server.request_timeout_ms {
            return Err(invalid(
                "server.body_read_timeout_ms",
                "must not exceed `server.request_timeout_ms`".into(),
            ));
        }
        for (i, t) in self.api.tokens.iter().enumerate() {
            if t.token.expose_secret().len() < 16 {
                return Err(invalid(
                    &format!("api.tokens[{i}].token"),
                    "must be at least 16 characters".into(),
                ));
            }
        }
        Ok(())
    }

    pub fn branch_pattern(&self) -> &str {
        self.tickets
            .branch_pattern
            .as_deref()
            .unwrap_or(DEFAULT_BRANCH_PATTERN)
    }

    pub fn workflow(&self) -> Workflow {
        self.tickets
            .workflow
            .clone()
            .and_then(Workflow::new)
            .unwrap_or_default()
    }

    pub fn branches(&self) -> BranchConvention {
        BranchConvention::parse(self.branch_pattern()).unwrap_or_default()
    }

    /// The action engine for this config: its workflow, its branch
    /// convention, and the providers configured for outbound.
    pub fn applier(&self) -> crate::tickets::Applier {
        let outbound = |own: bool| {
            self.providers
                .iter()
                .filter(|(_, p)| p.sends())
                .filter(|(_, p)| p.outbound.as_ref().is_some_and(|o| !own || o.own_changes))
                .map(|(name, _)| name.clone())
                .collect()
        };
        crate::tickets::Applier {
            workflow: self.workflow(),
            branches: self.branches(),
            outbound: outbound(false),
            own_changes: outbound(true),
            sync: std::sync::Arc::new(self.sync_rules()),
        }
    }

    /// Each provider's sync rules. The host keeps conflict state for a
    /// provider with a `sync:` block, or one that is two-way.
    pub fn sync_rules(&self) -> crate::sync::SyncRules {
        let providers = self
            .providers
            .iter()
            .map(|(name, p)| {
                let direction = p.direction();
                let two_way = direction.inbound() && p.sends();
                let rules = crate::sync::ProviderSync {
                    direction,
                    tracked: direction.inbound() && (p.sync.is_some() || two_way),
                    policy: p.sync.as_ref().map(|s| s.conflict).unwrap_or_default(),
                    fields: p
                        .sync
                        .as_ref()
                        .map(|s| s.conflicts.clone())
                        .unwrap_or_default(),
                };
                (name.clone(), rules)
            })
            .collect();
        crate::sync::SyncRules::new(providers)
    }
}

impl Config {
    /// The sweeper, when `sweeper:` is set; its rules tell every provider
    /// with `outbound` unless they name their own.
    pub fn sweeper(&self) -> Result<Option<crate::sweeper::Sweeper>, crate::sweeper::SweepError> {
        let Some(cfg) = &self.sweeper else {
            return Ok(None);
        };
        crate::sweeper::Sweeper::new(cfg, self.applier().outbound).map(Some)
    }

    /// The ticks of every provider with a `schedule` or a
    /// `sync.interval_secs`; `None` when none has.
    pub fn ticker(&self) -> Result<Option<crate::schedule::Ticker>, crate::schedule::TickError> {
        crate::schedule::Ticker::new(self.providers.iter().map(|(name, p)| {
            let interval = p.sync.as_ref().map(|s| s.interval_secs);
            (name.as_str(), p.schedule.as_slice(), interval)
        }))
    }
}

/// Shortest webhook secret or token accepted: an empty `GL_SECRET=` or a
/// guessable word must not verify anything.
pub const MIN_SECRET_LEN: usize = 16;

impl ProviderConfig {
    /// The checks that keep a provider from being weaker than it looks;
    /// the error is (key path, message).
    fn validate(&self, name: &str) -> Result<(), (String, String)> {
        use secrecy::ExposeSecret;
        // An empty secret signs for anyone (HMAC with an empty key is
        // public; an empty token is presented by sending nothing), and a
        // short one is guessed: blanks do not count towards the length.
        if let Some(verify) = &self.verify
            && verify.secret.expose_secret().trim().chars().count() < MIN_SECRET_LEN
        {
            return Err((
                format!("providers.{name}.verify.secret"),
                format!("must be at least {MIN_SECRET_LEN} characters (is the variable empty?)"),
            ));
        }
        if let Some(api) = &self.api {
            api.validate(&format!("providers.{name}.api"), false)?;
        }
        if let Some(oidc) = self.verify.as_ref().and_then(|v| v.oidc.as_ref()) {
            let key = |k: &str| format!("providers.{name}.verify.oidc.{k}");
            check_base_url(&oidc.jwks_url).map_err(|m| (key("jwks_url"), m))?;
            for (k, v) in [("audience", &oidc.audience), ("email", &oidc.email)] {
                if v.trim().is_empty() {
                    return Err((key(k), "must not be empty".into()));
                }
            }
            if oidc.issuers.iter().all(|i| i.trim().is_empty()) {
                return Err((key("issuers"), "must name at least one issuer".into()));
            }
        }
        if let Some(out) = &self.outbound {
            if self.api.is_none() {
                return Err((
                    format!("providers.{name}.outbound"),
                    "needs an `api` block: outbound requests go to `api.base_url` with its credentials"
                        .into(),
                ));
            }
            if out.max_attempts == 0 {
                return Err((
                    format!("providers.{name}.outbound.max_attempts"),
                    "must be at least 1".into(),
                ));
            }
            if let Some(p) = &out.ok_pointer
                && !p.starts_with('/')
            {
                return Err((
                    format!("providers.{name}.outbound.ok_pointer"),
                    format!("`{p}` is not a JSON pointer (it starts with `/`)"),
                ));
            }
            let h = &out.idempotency_header;
            if !h.is_empty() && reqwest::header::HeaderName::try_from(h.as_str()).is_err() {
                return Err((
                    format!("providers.{name}.outbound.idempotency_header"),
                    format!("`{h}` is not a header name"),
                ));
            }
        }
        Ok(())
    }
}

/// A provider API's base URL must be `https`, except on loopback (a local
/// test server): credentials never cross a network in the clear.
fn check_base_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let loopback = host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "`{url}` must use https (plain http is allowed on loopback only)"
                ))
            }
        }
        other => Err(format!("`{url}`: scheme `{other}` is not http or https")),
    }
}

/// Replaces `${NAME}` and `$environment_NAME$`; the error is (line, name).
fn expand(text: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some((start, name, end)) = next_var(rest) {
            out.push_str(&rest[..start]);
            // Comments are not configuration: leave their variables alone.
            if rest[..start].contains('#') {
                out.push_str(&rest[start..end]);
            } else {
                let value = env(name).ok_or_else(|| (n + 1, name.to_owned()))?;
                out.push_str(&value);
            }
            rest = &rest[end..];
        }
        out.push_str(rest);
        out.push('\n');
    }
    Ok(out)
}

/// The next variable in `s`: (start, name, end).
fn next_var(s: &str) -> Option<(usize, &str, usize)> {
    let a = s.find("${").map(|i| (i, 2, "}"));
    let b = s.find("$environment_").map(|i| (i, 13, "$"));
    let (start, skip, close) = match (a, b) {
        (Some(a), Some(b)) => {
            if a.0 <= b.0 {
                a
            } else {
                b
            }
        }
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => return None,
    };
    let name_start = start + skip;
    let len = s[name_start..].find(close)?;
    let name = &s[name_start..name_start + len];
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid.then_some((start, name, name_start + len + close.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("sluice.yaml"), |name| match name {
            "ADMIN_TOKEN" => Some("admin-token-0123456789".into()),
            "READ" => Some("read-token-0123456789".into()),
            "SET_BUT_EMPTY" => Some(String::new()),
            _ => None,
        })
    }

    #[test]
    fn secrets_come_from_the_environment_in_both_spellings() {
        let c = parse(
            "database: x.db\napi:\n  tokens:\n    - {name: ops, token: \"${ADMIN_TOKEN}\", scope: admin}\n    - {name: ro, token: $environment_READ$, scope: read}\n",
        )
        .unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(
            c.api.tokens[0].token.expose_secret(),
            "admin-token-0123456789"
        );
        assert_eq!(
            c.api.tokens[1].token.expose_secret(),
            "read-token-0123456789"
        );
        assert_eq!(c.api.tokens[1].scope, Scope::Read);
        // Secrets stay out of Debug output.
        assert!(!format!("{c:?}").contains("admin-token"));
    }

    #[test]
    fn errors_name_the_variable_key_or_line() {
        let cases = [
            (
                "database: x\napi:\n  tokens:\n    - {name: a, token: \"${NOPE}\", scope: admin}\n",
                "sluice.yaml:4: environment variable `NOPE` is not set",
            ),
            (
                "databse: x\n",
                "sluice.yaml: databse: unknown field `databse`",
            ),
            (
                "api:\n  tokens:\n    - {name: a, token: \"${READ}\", scope: root}\n",
                "sluice.yaml: api.tokens[0].scope: unknown variant `root`",
            ),
            (
                "api:\n  tokens:\n    - {name: a, token: short, scope: read}\n",
                "sluice.yaml: api.tokens[0].token: must be at least 16 characters",
            ),
            (
                "tickets:\n  branch_pattern: feat/x\n",
                "sluice.yaml: tickets.branch_pattern: branch pattern `feat/x` must contain `{guid}`",
            ),
            (
                "server: {max_concurrent_requests: 0}\n",
                "sluice.yaml: server.max_concurrent_requests: must be greater than 0",
            ),
            (
                "server: {request_timeout_ms: 1000, body_read_timeout_ms: 2000}\n",
                "sluice.yaml: server.body_read_timeout_ms: must not exceed",
            ),
            (
                "database_statement_timeout_ms: 0\n",
                "sluice.yaml: database_statement_timeout_ms: must be greater than 0",
            ),
            (
                "retention: {batch_size: 0}\n",
                "sluice.yaml: retention.batch_size: must be greater than 0",
            ),
            (
                "tickets:\n  workflow: []\n",
                "sluice.yaml: tickets.workflow: needs at least one status",
            ),
            (
                "providers:\n  gitlab: {verify: {secret: \"\"}}\n",
                "sluice.yaml: providers.gitlab.verify.secret: must be at least 16 characters",
            ),
            (
                "providers:\n  github: {verify: {secret: short-secret}}\n",
                "sluice.yaml: providers.github.verify.secret: must be at least 16 characters",
            ),
            (
                "providers:\n  jira:\n    verify: {secret: jira-secret-0123456789}\n    api: {base_url: \"http://jira.example.com\"}\n",
                "sluice.yaml: providers.jira.api.base_url: `http://jira.example.com` must use https",
            ),
            (
                "providers:\n  jira:\n    verify: {secret: jira-secret-0123456789}\n    api: {base_url: \"ftp://127.0.0.1\"}\n",
                "sluice.yaml: providers.jira.api.base_url: `ftp://127.0.0.1`: scheme `ftp`",
            ),
            // Extra APIs: each checked like the provider's own, errors
            // naming the path.
            (
                "providers:\n  pachca:\n    verify: {secret: pachca-secret-0123456789}\n    api:\n      base_url: https://api.pachca.com\n      extra: {y360: {base_url: \"http://api360.yandex.net\"}}\n",
                "sluice.yaml: providers.pachca.api.extra.y360.base_url: `http://api360.yandex.net` must use https",
            ),
            (
                "providers:\n  pachca:\n    verify: {secret: pachca-secret-0123456789}\n    api:\n      base_url: https://api.pachca.com\n      extra: {tickets: {base_url: \"https://x.example\"}}\n",
                "sluice.yaml: providers.pachca.api.extra.tickets: `tickets` is reserved",
            ),
            (
                "providers:\n  pachca:\n    verify: {secret: pachca-secret-0123456789}\n    api:\n      base_url: https://api.pachca.com\n      extra: {Y360: {base_url: \"https://x.example\"}}\n",
                "sluice.yaml: providers.pachca.api.extra.Y360: API names are",
            ),
            (
                "providers:\n  pachca:\n    verify: {secret: pachca-secret-0123456789}\n    api:\n      base_url: https://api.pachca.com\n      extra: {y360: {base_url: \"https://x.example\", read_tickets: true}}\n",
                "sluice.yaml: providers.pachca.api.extra.y360.read_tickets: belongs on the provider's `api` block",
            ),
            (
                "providers:\n  pachca:\n    verify: {secret: pachca-secret-0123456789}\n    api:\n      base_url: https://api.pachca.com\n      extra: {y360: {base_url: \"https://x.example\", extra: {z: {base_url: \"https://z.example\"}}}}\n",
                "sluice.yaml: providers.pachca.api.extra.y360.extra: extra APIs do not nest",
            ),
            // Anyone can sign with an empty secret, or present an empty token.
            (
                "providers:\n  github:\n    verify: {secret: \"${SET_BUT_EMPTY}\"}\n",
                "sluice.yaml: providers.github.verify.secret: must be at least 16 characters",
            ),
            (
                "providers:\n  tracker:\n    verify: {secret: \"  \"}\n",
                "sluice.yaml: providers.tracker.verify.secret: must be at least 16 characters",
            ),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap_err().to_string();
            assert!(got.starts_with(want), "got {got:?}, want {want:?}");
        }
    }

    /// A Jira provider with `sync` (YAML, indented under `sync:`) and
    /// optionally `outbound:`.
    fn jira(sync: &str, outbound: bool, mapper_config: &str) -> String {
        format!(
            "providers:\n  jira:\n    verify: {{secret: jira-secret-0123456789}}\n    api: {{base_url: \"https://x.atlassian.net\"}}\n{}    mapper_config: {mapper_config}\n    sync:\n{sync}",
            if outbound { "    outbound: {}\n" } else { "" }
        )
    }

    #[test]
    fn sync_errors_name_their_path() {
        let cases = [
            (
                jira(
                    "      mappings:\n        status: {DONE: Done}\n",
                    true,
                    "{}",
                ),
                "sluice.yaml: providers.jira.sync.mappings.status.DONE: not a workflow status",
            ),
            (
                jira(
                    "      mappings:\n        priority: {urgent: P1}\n",
                    true,
                    "{}",
                ),
                "sluice.yaml: providers.jira.sync.mappings.priority.urgent: not a priority",
            ),
            (
                jira(
                    "      mappings:\n        status: {NEW: \"To Do\", TRIAGED: \"To Do\"}\n",
                    true,
                    "{}",
                ),
                "sluice.yaml: providers.jira.sync.mappings.status: `NEW` and `TRIAGED` both map to `To Do`",
            ),
            (
                jira(
                    "      mappings:\n        status: {NEW: \" \"}\n",
                    true,
                    "{}",
                ),
                "sluice.yaml: providers.jira.sync.mappings.status.NEW: must not be empty",
            ),
            (
                jira(
                    "      mappings:\n        fields:\n          severity: {field: impact, values: {SEV-1: \"1\", SEV-2: \"1\"}}\n",
                    true,
                    "{}",
                ),
                "sluice.yaml: providers.jira.sync.mappings.fields.severity.values: `SEV-1` and `SEV-2` both map to `1`",
            ),
            (
                jira(
                    "      mappings:\n        fields: {a: cf_1, b: cf_1}\n",
                    true,
                    "{}",
                ),
                "sluice.yaml: providers.jira.sync.mappings.fields: `a` and `b` both map to the provider field `cf_1`",
            ),
            (
                jira(
                    "      mappings:\n        defaults: {project: \"\"}\n",
                    true,
                    "{}",
                ),
                "sluice.yaml: providers.jira.sync.mappings.defaults.project: must not be empty",
            ),
            (
                jira("      direction: sideways\n", true, "{}"),
                "sluice.yaml: providers.jira.sync.direction: unknown variant `sideways`",
            ),
            (
                jira("      direction: bidirectional\n", false, "{}"),
                "sluice.yaml: providers.jira.sync.direction: `bidirectional` needs the provider's `outbound:` and `api:` blocks",
            ),
            (
                jira("      conflict: mine\n", true, "{}"),
                "sluice.yaml: providers.jira.sync.conflict: unknown variant `mine`",
            ),
            (
                jira("      conflicts: {colour: manual}\n", true, "{}"),
                "sluice.yaml: providers.jira.sync.conflicts.colour: not a field",
            ),
            (
                jira("      conflict: local\n", true, "{mappings: {}}"),
                "sluice.yaml: providers.jira.mapper_config.mappings: field mappings belong in `providers.jira.sync.mappings`",
            ),
            (
                jira("      mappings: {colour: {}}\n", true, "{}"),
                "sluice.yaml: providers.jira.sync.mappings.colour: unknown field `colour`",
            ),
        ];
        for (text, want) in cases {
            let got = parse(&text).unwrap_err().to_string();
            assert!(got.starts_with(want), "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn mappings_reach_the_mapper_config_and_direction_shapes_outbound() {
        let c = parse(&jira(
            "      direction: inbound\n      conflict: manual\n      conflicts: {description: merge, fields.customer: local}\n      interval_secs: 300\n      mappings:\n        status: {NEW: \"To Do\", RESOLVED: Done}\n        fields:\n          customer: customfield_10050\n          severity: {field: impact, values: {SEV-1: \"1 - Critical\"}}\n        defaults: {project: OPS}\n",
            true,
            "{site: x}",
        ))
        .unwrap();
        let p = &c.providers["jira"];
        assert_eq!(
            p.mapper_config_json(),
            serde_json::json!({"site": "x", "mappings": {
                "status": {"NEW": "To Do", "RESOLVED": "Done"},
                "fields": {"customer": "customfield_10050",
                           "severity": {"field": "impact", "values": {"SEV-1": "1 - Critical"}}},
                "defaults": {"project": "OPS"}
            }})
        );
        // Inbound only: configured for outbound, yet sent nothing.
        assert!(c.applier().outbound.is_empty());
        let rules = c.sync_rules();
        assert!(rules.accepts_inbound("jira") && rules.tracked("jira"));
        assert_eq!(rules.policy("jira", "status"), crate::sync::Policy::Manual);
        assert_eq!(
            rules.policy("jira", "description"),
            crate::sync::Policy::Merge
        );
        assert_eq!(
            rules.policy("jira", "fields.customer"),
            crate::sync::Policy::Local
        );
        // Without `sync:`: both ways as configured, external, untracked
        // unless two-way.
        let plain =
            parse("providers:\n  github:\n    verify: {secret: gh-secret-0123456789}\n").unwrap();
        let rules = plain.sync_rules();
        assert!(rules.accepts_inbound("github") && !rules.tracked("github"));
        let out = parse(&jira("      direction: outbound\n", true, "{}")).unwrap();
        assert_eq!(out.applier().outbound, vec!["jira".to_owned()]);
        assert!(!out.sync_rules().accepts_inbound("jira"));
    }

    #[test]
    fn provider_apis_on_loopback_may_use_plain_http() {
        for base in [
            "http://127.0.0.1:9000",
            "http://[::1]:9000/api",
            "http://localhost:1",
            "https://api.example.com",
        ] {
            let text = format!(
                "providers:\n  jira:\n    verify: {{secret: jira-secret-0123456789}}\n    api: {{base_url: \"{base}\"}}\n"
            );
            assert!(parse(&text).is_ok(), "{base} refused");
        }
    }

    #[test]
    fn defaults_make_an_empty_file_valid() {
        let c = parse("{}\n").unwrap();
        assert_eq!(c.database, "sluice.db");
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.workflow(), Workflow::default());
        assert_eq!(c.server.max_concurrent_requests, 512);
        assert_eq!(
            c.retention.keep(),
            Some(std::time::Duration::from_secs(30 * 86_400))
        );
        assert!(parse("# token: ${UNSET} in a comment\n{}\n").is_ok());
    }
}
