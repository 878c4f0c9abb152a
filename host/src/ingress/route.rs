//! `POST /hooks/{provider}`: size limit, verification, handshakes, dedupe,
//! and the inbox row committed before the 2xx; 503 while the provider's
//! mapper file is missing.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::dedupe::{DedupeKey, body_key};
use super::handshake::{Handshake, HandshakeError, SECRET_HEADER};
use super::oidc::Oidc;
use super::presets::preset;
use super::redact::Redaction;
use super::verify::{Scheme, Unverified, Verifier};
use crate::api::{ApiError, ErrorBody};
use crate::config::{DedupeConfig, ProviderConfig};
use crate::metrics::Metrics;
use crate::reload::{Availability, MapperRegistry};
use crate::store::{DeliveryStatus, InboxEntry, InboxWriter, Reclaim, Store, encode_owned, now};
use crate::worker::{OutcomeReport, Worker};

/// One configured webhook sender.
pub struct Provider {
    pub name: String,
    /// The preset it follows (drives the handshakes).
    pub preset: String,
    pub verifier: Verifier,
    pub dedupe: DedupeKey,
    /// The body's hash is a second dedupe key (replayed captures).
    pub replay_dedupe: bool,
    /// What its deliveries must not keep (the verification token), worked
    /// out once from the scheme.
    pub redaction: Redaction,
    pub body_limit: usize,
    /// Signing secrets come from handshakes (Asana), not the config.
    pub handshake: Option<Handshake>,
    /// A bearer JWT checked on top of the scheme (Pub/Sub push).
    pub oidc: Option<Oidc>,
}

impl Provider {
    /// From the config, already validated (`Config::load`): the preset exists.
    /// `None` for a provider without `verify` (pulled, never pushed): it has
    /// no webhook route.
    pub fn from_config(name: &str, c: &ProviderConfig) -> Option<Provider> {
        let verify = c.verify.as_ref()?;
        let preset_name = verify.preset.clone().unwrap_or_else(|| name.to_owned());
        let p = preset(&preset_name)?;
        let mut scheme = p.scheme;
        match &mut scheme {
            Scheme::HmacBody { header, .. } => {
                if let Some(h) = &verify.header {
                    *header = h.clone();
                }
            }
            Scheme::HmacTimestamped {
                header, tolerance, ..
            } => {
                if let Some(h) = &verify.header {
                    *header = h.clone();
                }
                if let Some(t) = verify.tolerance_secs {
                    *tolerance = std::time::Duration::from_secs(t);
                }
            }
            Scheme::Token { header, query } => {
                if let Some(h) = &verify.header {
                    *header = Some(h.clone());
                }
                if let Some(q) = &verify.query {
                    *query = Some(q.clone());
                }
            }
        }
        let dedupe = match &c.dedupe {
            None => p.dedupe,
            Some(DedupeConfig {
                header: Some(h), ..
            }) => DedupeKey::Header(h.clone()),
            Some(DedupeConfig {
                headers: Some(hs), ..
            }) => DedupeKey::Headers(hs.clone()),
            Some(DedupeConfig {
                body_field: Some(f),
                ..
            }) => DedupeKey::BodyField(f.clone()),
            Some(DedupeConfig { .. }) => DedupeKey::BodyHash,
        };
        let handshake = (preset_name == "asana").then(|| {
            Handshake::new(
                SecretString::from(verify.secret.expose_secret().to_owned()),
                verify.query.clone(),
                scheme.clone(),
            )
        });
        let redaction = Redaction::new(&scheme, handshake.as_ref().map(Handshake::token_query));
        Some(Provider {
            name: name.to_owned(),
            redaction,
            handshake,
            preset: preset_name,
            verifier: Verifier {
                scheme,
                secret: SecretString::from(verify.secret.expose_secret().to_owned()),
            },
            dedupe,
            oidc: verify.oidc.as_ref().map(Oidc::new),
            replay_dedupe: c.replay_dedupe.unwrap_or(p.body_replays),
            body_limit: c.body_limit,
        })
    }
}

#[derive(Clone)]
pub struct IngressState {
    pub store: Store,
    /// The group-commit writer every delivery is stored through.
    pub inbox: InboxWriter,
    pub providers: Arc<BTreeMap<String, Provider>>,
    /// Absent when no provider has a mapper: deliveries are stored and wait.
    pub worker: Option<Worker>,
    pub metrics: Arc<Metrics>,
    /// Which providers' mapper files are missing (503 until they are back).
    pub mappers: Option<MapperRegistry>,
    /// Permits for `?wait=true` requests processing at once.
    pub waiting: Arc<tokio::sync::Semaphore>,
}

pub fn router(state: IngressState) -> Router {
    // The route's limit is the largest provider's; each provider's own is
    // checked in the handler, so every refusal has the same JSON shape.
    let limit = state
        .providers
        .values()
        .map(|p| p.body_limit)
        .max()
        .unwrap_or(1 << 20);
    Router::new()
        .route("/hooks/{provider}", post(receive))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// The answer to a delivery stored (202) or received before (200).
#[derive(Debug, Serialize, ToSchema)]
pub struct Receipt {
    pub delivery_id: String,
    pub duplicate: bool,
}

/// Slack's `url_verification`, answered with its challenge.
#[derive(Debug, Serialize, ToSchema)]
pub struct Challenge {
    #[schema(value_type = Object)]
    pub challenge: Value,
}

/// A webhook's body: whatever the provider sends, in any content type.
/// A description only.
pub struct Payload;

impl utoipa::PartialSchema for Payload {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Payload {}

/// What a 200 answers: a duplicate's receipt, the outcome (`?wait=true`)
/// or Slack's challenge. A description only (the handler builds each
/// one): `anyOf`, since a receipt's fields are among an outcome's.
pub struct Answered;

impl utoipa::PartialSchema for Answered {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, Ref};
        AnyOfBuilder::new()
            .item(Ref::from_schema_name(Receipt::name()))
            .item(Ref::from_schema_name(OutcomeReport::name()))
            .item(Ref::from_schema_name(Challenge::name()))
            .into()
    }
}

impl ToSchema for Answered {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push((Receipt::name().into(), Receipt::schema()));
        schemas.push((OutcomeReport::name().into(), OutcomeReport::schema()));
        schemas.push((Challenge::name().into(), Challenge::schema()));
        <OutcomeReport as ToSchema>::schemas(schemas);
    }
}

#[utoipa::path(
    post,
    tag = "webhooks",
    path = "/hooks/{provider}",
    operation_id = "receiveWebhook",
    summary = "Receive a provider's webhook",
    description = "Verified by the provider's configured scheme (signature, timestamped signature or shared token, and an OIDC bearer JWT when `verify.oidc` is set), stored raw in the inbox, then acknowledged. Slack's url_verification is answered with its challenge. `?wait=true` answers with the outcome once the delivery is processed.",
    security(()),
    params(("provider" = String, Path, description = "a provider configured under `providers:`")),
    request_body(content = inline(Payload), content_type = "*/*", description = "the provider's payload, as sent (may be empty)"),
    responses(
        (status = 202, description = "stored", body = Receipt),
        (status = 200, description = "a duplicate of a stored delivery, the outcome (`?wait=true`), or Slack's challenge", body = Answered),
        (status = 401, description = "verification failed (`bad_signature`); nothing stored", body = ErrorBody),
        (status = 404, description = "provider not configured", body = ErrorBody),
        (status = 408, description = "the body did not arrive within `server.body_read_timeout_ms` (`body_timeout`)", body = ErrorBody),
        (status = 413, description = "body over the provider's limit", body = ErrorBody),
        (status = 503, description = "the provider's mapper file is missing (`mapper_absent`, naming the file), too many requests in flight (`overloaded`), the request outlived its deadline (`timeout`) or the database is unreachable (`unavailable`); retry after the `Retry-After` seconds", body = ErrorBody),
    )
)]
pub(crate) async fn receive(
    State(state): State<IngressState>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let provider = state
        .providers
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no provider `{name}` is configured")))?;
    let body = match body {
        Ok(b) if b.len() <= provider.body_limit => b,
        Ok(_) | Err(BytesRejection::FailedToBufferBody(_)) => {
            return Err(ApiError::TooLarge {
                limit: provider.body_limit,
            });
        }
        Err(e) => return Err(ApiError::invalid("body", e.body_text())),
    };
    // Names lower-cased, values kept as sent; a header that is not valid
    // text is kept lossily rather than refused: the mapper judges content.
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let query = uri.query().unwrap_or("");
    let request = Unverified {
        headers: &headers,
        query,
        body: &body,
    };
    let now_secs = chrono::Utc::now().timestamp();
    let refused = |e: HandshakeError| {
        if !matches!(e, HandshakeError::Store(_)) {
            tracing::warn!(provider = %name, error = %e, "webhook refused");
            state.metrics.verification_failed(&name);
        }
        ApiError::from(e)
    };
    if let Some(handshake) = &provider.handshake
        && let Some(secret) = Handshake::offered(&request)
    {
        handshake
            .accept(&state.store, &name, request, secret, now_secs)
            .await
            .map_err(refused)?;
        tracing::info!(provider = %name, "handshake accepted; signing secret stored");
        return Ok((StatusCode::OK, [(SECRET_HEADER, secret.to_owned())]).into_response());
    }
    let verified = match &provider.handshake {
        Some(h) => h.verify(&state.store, &name, request, now_secs).await,
        None => provider
            .verifier
            .verify(request, now_secs)
            .map_err(HandshakeError::from),
    }
    .map_err(refused)?;
    if let Some(oidc) = &provider.oidc
        && let Err(e) = oidc.verify(verified.headers(), now_secs).await
    {
        tracing::warn!(provider = %name, error = %e, "webhook refused");
        state.metrics.verification_failed(&name);
        return Err(ApiError::BadSignature(e.to_string()));
    }

    // Slack proves the endpoint with a signed challenge, stored nowhere.
    if provider.preset == "slack"
        && let Ok(v) = serde_json::from_slice::<Value>(verified.body())
        && v["type"] == "url_verification"
    {
        let challenge = Challenge {
            challenge: v["challenge"].clone(),
        };
        return Ok(Json(challenge).into_response());
    }

    // A missing mapper file stops the route — after verification, so a
    // forged request still learns nothing, and before anything is stored:
    // the sender gets 503 with Retry-After and redelivers later. Deliveries
    // stored before the removal stay pending until a version serves again.
    if let Some(Availability::Absent { file }) =
        state.mappers.as_ref().and_then(|m| m.availability(&name))
    {
        let file = file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Err(ApiError::MapperAbsent {
            provider: name,
            file,
        });
    }
    let dedupe_key = provider.dedupe.extract(verified.headers(), verified.body());
    let body_key = provider.replay_dedupe.then(|| body_key(verified.body()));
    let id = crate::store::new_delivery_id();
    let path = match uri.query() {
        Some(q) => format!("{}?{q}", uri.path()),
        None => uri.path().to_owned(),
    };
    // The verification token has done its job: nothing downstream (the
    // store, the API, the mapper) gets to see it.
    let redaction = &provider.redaction;
    let mut entry = InboxEntry {
        id,
        provider: name.clone(),
        dedupe_key,
        body_key,
        method: method.as_str().to_owned(),
        path: redaction.path(&path),
        headers: redaction.headers(verified.headers()),
        stored_body: encode_owned(&body),
        body: body.clone(),
        received_at: now(),
        premapped: None,
    };
    // A pure mapping is made here and applied with the row's own commit
    // (the worker's inline path); anything else is the worker's.
    if let Some(worker) = &state.worker {
        entry.premapped = worker.premap(&entry).await;
    }
    // A premapped delivery the writer leaves pending wakes the worker
    // itself; one settled inline needs no lane.
    let premapped = entry.premapped.is_some();
    let stored = state.inbox.store(entry).await?;
    tracing::debug!(provider = %name, delivery = %stored.id, duplicate = stored.duplicate, "delivery stored");
    let counted = if stored.duplicate {
        "duplicate"
    } else {
        "accepted"
    };
    state.metrics.delivery(&name, counted);
    let wait = query.split('&').any(|p| p == "wait=true" || p == "wait=1");
    // Waiting requests are bounded: over the limit a request gets the plain
    // answer below, and the worker processes the delivery as any other.
    if wait
        && let Some(worker) = &state.worker
        && let Ok(_permit) = state.waiting.clone().try_acquire_owned()
    {
        // A duplicate answers its stored outcome: only an operator's
        // replay re-runs a delivery.
        let processed = if stored.duplicate {
            None
        } else {
            worker.process_now(&stored.id, Reclaim::Pending).await?
        };
        let outcome = match processed {
            Some(outcome) => outcome.report(&stored.id),
            // Another worker has it or had it: report what is stored.
            None => settled(&state.store, &stored.id, stored.duplicate).await?,
        };
        return Ok((StatusCode::OK, Json(outcome)).into_response());
    }
    if !stored.duplicate
        && !premapped
        && let Some(worker) = &state.worker
    {
        worker.wake();
    }
    let status = if stored.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(Receipt {
            delivery_id: stored.id,
            duplicate: stored.duplicate,
        }),
    )
        .into_response())
}

/// The stored outcome of a delivery, once no worker is processing it (or
/// after 10 s, as it stands then).
async fn settled(store: &Store, id: &str, duplicate: bool) -> Result<OutcomeReport, ApiError> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let row = store
            .delivery(id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no delivery `{id}`")))?;
        if row.status != DeliveryStatus::Processing || tokio::time::Instant::now() >= deadline {
            let output: Option<Value> = row
                .output
                .as_deref()
                .and_then(|o| serde_json::from_str(o).ok());
            let mut v = OutcomeReport::new(
                &row.id,
                row.status,
                row.reason,
                row.event_type.as_deref(),
                output.as_ref(),
                row.last_error.as_deref(),
            );
            v.duplicate = Some(duplicate);
            return Ok(v);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
