//! The outbound worker: claims due outbox rows, asks the provider's
//! `map-from-ticket-event` what to send, sends it, and records every
//! attempt, the captures (mirror links, echo ids) and how the row ended —
//! with retries and a dead letter, like the delivery worker.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::ProviderApis;
use super::feed::{FeedError, change_of};
use crate::change::{CaptureKind, OutboundRequest, TicketChange};
use crate::mapper::{ApiFailure, ApiRequest, ApiResponse, Services};
use crate::metrics::Metrics;
use crate::queue::{RetryPolicy, hold_lease, retry_transient};
use crate::reload::{MapperRegistry, ProviderMapper};
use crate::store::{
    ErrorCode, NewSynced, OutboxAttempt, OutboxFinish, OutboxRow, OutboxStatus, Queue, Store,
    StoreError, SyncSource, now,
};
use crate::tickets::Applier;

/// Rows claimed per batch.
const BATCH: u32 = 64;
/// Rows sent at once (each row's requests go one after another).
const CONCURRENT_ROWS: usize = 32;
/// Bytes of a response kept with its attempt.
const EXCERPT: usize = 512;

/// How one provider's changes are sent.
#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    pub retry: RetryPolicy,
    /// Header for each request's idempotency key; empty for none.
    pub idempotency_header: String,
    /// A JSON pointer that must be `true` in a 2xx answer for it to count
    /// as success (Slack answers errors with 200 and `"ok": false`).
    pub ok_pointer: Option<String>,
}

#[derive(Clone)]
pub struct OutboundWorker {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    applier: Arc<Applier>,
    mappers: MapperRegistry,
    apis: ProviderApis,
    policies: BTreeMap<String, OutboundPolicy>,
    lease: Duration,
    metrics: Arc<Metrics>,
    wake: Notify,
    people: Option<Arc<dyn crate::mapper::People>>,
}

/// How one row's turn ended.
struct Ending {
    status: OutboxStatus,
    error: Option<String>,
    error_code: Option<ErrorCode>,
    next_attempt_at: Option<String>,
    mapper_hash: Option<String>,
    requests: Option<String>,
    sent: i64,
    refund: bool,
    attempts: Vec<OutboxAttempt>,
    /// Ids captured from 2xx answers.
    captures: Vec<(CaptureKind, String)>,
    /// Once sent: the ticket's values of the fields the change touched,
    /// remembered as last synced with a provider that syncs both ways.
    synced: Vec<(String, Option<String>)>,
}

impl OutboundWorker {
    pub fn new(
        store: Store,
        applier: Arc<Applier>,
        mappers: MapperRegistry,
        apis: ProviderApis,
        policies: BTreeMap<String, OutboundPolicy>,
        lease: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        OutboundWorker {
            inner: Arc::new(Inner {
                store,
                applier,
                mappers,
                apis,
                policies,
                lease,
                metrics,
                wake: Notify::new(),
                people: None,
            }),
        }
    }

    /// This worker, lending outbound rules the people directory. Call it
    /// before the worker is cloned: a shared worker is left as it is.
    pub fn with_people(mut self, people: Arc<dyn crate::mapper::People>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.people = Some(people);
        }
        self
    }

    /// Tells the worker new changes are queued.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Sends due changes until `shutdown`; wakes on [`OutboundWorker::wake`],
    /// when a mapper version starts serving, and on a tick for retries.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut served = self.inner.mappers.served_signal();
        let tick = self
            .inner
            .policies
            .values()
            .map(|p| p.retry.base)
            .min()
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            match self.drain(&shutdown).await {
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "outbound worker: store unavailable; trying again");
                }
                Err(e) => tracing::error!(error = %e, "outbound worker: store error"),
                Ok(_) => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.inner.wake.notified() => {}
                _ = served.changed() => {}
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }

    /// Sends every change due now, batch by batch, until none is left or
    /// `shutdown` is cancelled; returns how many rows it handled.
    pub async fn drain(&self, shutdown: &CancellationToken) -> Result<usize, StoreError> {
        let mut done = 0;
        while !shutdown.is_cancelled() {
            // Providers with a version serving: a provider whose mapper is
            // missing keeps its rows pending, untouched.
            let serving = self.inner.mappers.providers();
            let providers: Vec<String> = self
                .inner
                .policies
                .keys()
                .filter(|p| serving.contains(p))
                .cloned()
                .collect();
            let rows = self
                .inner
                .store
                .claim_outbox(&providers, BATCH, self.inner.lease)
                .await?;
            if rows.is_empty() {
                return Ok(done);
            }
            done += rows.len();
            let tokens: Vec<String> = rows.iter().filter_map(|r| r.claim_token.clone()).collect();
            hold_lease(
                &self.inner.store,
                Queue::Outbox,
                &tokens,
                self.inner.lease,
                self.process(rows),
            )
            .await?;
        }
        Ok(done)
    }

    /// One claimed batch: build each row's change, map, send, record.
    async fn process(&self, rows: Vec<OutboxRow>) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let history_ids: Vec<i64> = rows.iter().map(|r| r.history_id).collect();
        let history: HashMap<i64, _> = store
            .history_rows(&history_ids)
            .await?
            .into_iter()
            .map(|h| (h.id, h))
            .collect();
        let mut guids: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.ticket_guid.as_deref())
            .collect();
        guids.sort_unstable();
        guids.dedup();
        let tickets: HashMap<String, _> = store
            .tickets(&guids)
            .await?
            .into_iter()
            .map(|t| (t.guid.clone(), t))
            .collect();
        let links = store.links_of(&guids).await?;

        let semaphore = Arc::new(Semaphore::new(CONCURRENT_ROWS));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, row) in rows.iter().enumerate() {
            let change = change_of(
                row,
                history.get(&row.history_id),
                row.ticket_guid.as_ref().and_then(|g| tickets.get(g)),
                &links,
            );
            let this = self.clone();
            let row = row.clone();
            let semaphore = semaphore.clone();
            tasks.spawn(async move {
                // The semaphore is never closed.
                let _permit = semaphore.acquire_owned().await;
                (index, this.handle(row, change).await)
            });
        }
        let mut endings: Vec<Option<Ending>> = (0..rows.len()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, ending)) => endings[index] = Some(ending),
                Err(e) => tracing::error!(error = %e, "outbound worker: a send task failed"),
            }
        }
        // A task that died leaves its row processing until its lease runs
        // out; it is then claimed again.
        let done: Vec<(&OutboxRow, Ending)> = rows
            .iter()
            .zip(endings)
            .filter_map(|(r, e)| e.map(|e| (r, e)))
            .collect();
        self.finish(&done).await
    }

    /// One row: its requests (stored, or from the mapper now), sent from
    /// the first not sent yet, one after another, stopping at a failure.
    async fn handle(&self, row: OutboxRow, change: Result<TicketChange, FeedError>) -> Ending {
        let provider = row.provider.clone();
        let mut ending = Ending {
            status: OutboxStatus::Sent,
            error: None,
            error_code: None,
            next_attempt_at: None,
            mapper_hash: row.mapper_hash.clone(),
            requests: row.requests.clone(),
            sent: row.sent_requests,
            refund: false,
            attempts: Vec::new(),
            captures: Vec::new(),
            synced: Vec::new(),
        };
        let change = match change {
            Ok(c) => c,
            Err(e) => return ending.failed(format!("cannot read the change: {e}"), None),
        };
        let requests: Vec<OutboundRequest> = match &row.requests {
            Some(stored) => match serde_json::from_str(stored) {
                Ok(r) => r,
                Err(e) => {
                    return ending.failed(format!("stored requests are unreadable: {e}"), None);
                }
            },
            None => match self.map(&row, &change).await {
                Mapped::Requests { hash, requests } => {
                    ending.mapper_hash = Some(hash);
                    ending.requests = serde_json::to_string(&requests).ok();
                    requests
                }
                Mapped::NoMapper => {
                    ending.status = OutboxStatus::Pending;
                    ending.refund = true;
                    ending.error = Some(format!(
                        "no mapper version is serving provider `{provider}`; the change waits for one"
                    ));
                    ending.next_attempt_at = Some(stamp_in(Duration::from_secs(1)));
                    return ending;
                }
                Mapped::Refused { hash, error } => {
                    ending.mapper_hash = Some(hash);
                    return ending.failed(error, Some(ErrorCode::MappingFailed));
                }
            },
        };
        if requests.is_empty() {
            ending.status = OutboxStatus::Ignored;
            return ending;
        }
        let policy = self
            .inner
            .policies
            .get(&provider)
            .cloned()
            .unwrap_or(OutboundPolicy {
                retry: RetryPolicy::default(),
                idempotency_header: String::new(),
                ok_pointer: None,
            });
        let start = usize::try_from(row.sent_requests).unwrap_or(0);
        for (index, request) in requests.iter().enumerate().skip(start) {
            let api_request = with_idempotency(request, &policy, row.id, index);
            let started = Instant::now();
            let answer = self.inner.apis.send(&provider, &api_request).await;
            let elapsed = started.elapsed();
            self.inner.metrics.outbound_request(&provider, elapsed);
            let verdict = judge(&answer, policy.ok_pointer.as_deref());
            ending.attempts.push(OutboxAttempt {
                outbox_id: row.id,
                attempt: row.attempts,
                request_index: index as i64,
                method: request.method.clone(),
                path: request.path.clone(),
                status_code: answer.as_ref().ok().map(|r| i64::from(r.status)),
                error: match (&answer, &verdict) {
                    (Err(e), _) => Some(describe_failure(e)),
                    (Ok(_), Verdict::Permanent(m, _) | Verdict::Transient(m, _, _)) => {
                        Some(m.clone())
                    }
                    (Ok(_), Verdict::Ok) => None,
                },
                error_code: verdict.code(),
                response_excerpt: answer.as_ref().ok().map(|r| excerpt(&r.body)),
                duration_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
                at: now(),
            });
            let what = format!("request {index} ({} {})", request.method, request.path);
            match verdict {
                Verdict::Ok => {
                    if let Ok(response) = &answer {
                        ending.captures.extend(captures(request, response));
                    }
                    ending.sent = index as i64 + 1;
                    // Progress mid-way is saved, so a crash or a retry
                    // resends only what did not go out. The last request's
                    // is saved by the finish.
                    if index + 1 < requests.len()
                        && let Some(stored) = &ending.requests
                        && let Some(token) = &row.claim_token
                    {
                        self.save_progress(row.id, token, stored, ending.sent).await;
                    }
                }
                Verdict::Permanent(m, code) => {
                    return ending.failed(format!("{what}: {m}"), Some(code));
                }
                Verdict::Transient(m, asked, code) => {
                    ending.error_code = Some(code);
                    let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
                    if attempts >= policy.retry.max_attempts {
                        ending.status = OutboxStatus::Dead;
                        ending.error =
                            Some(format!("gave up after {attempts} attempts: {what}: {m}"));
                    } else {
                        ending.status = OutboxStatus::Retrying;
                        ending.error = Some(format!("{what}: {m}"));
                        ending.next_attempt_at =
                            Some(stamp_in(policy.retry.delay_at_least(attempts, asked)));
                    }
                    return ending;
                }
            }
        }
        if let Some(ticket) = &change.ticket {
            ending.synced = self
                .inner
                .applier
                .synced_after_send(&provider, ticket, &change.what);
        }
        ending
    }

    /// The provider's outbound rules for this change, on a blocking thread.
    async fn map(&self, row: &OutboxRow, change: &TicketChange) -> Mapped {
        let Some(pm) = self.inner.mappers.get(&row.provider) else {
            return Mapped::NoMapper;
        };
        let api = self.inner.apis.session(&row.provider);
        let services = Services {
            people: self.inner.people.clone(),
            ..Services::default()
        };
        let provider = row.provider.clone();
        let change = change.clone();
        let metrics = self.inner.metrics.clone();
        let task = tokio::task::spawn_blocking(move || {
            let ProviderMapper { mapper, config } = pm;
            let outcome = mapper.map_outbound(&change, &provider, &config, api, services);
            metrics.mapper_call(&provider, outcome.report.elapsed);
            (mapper.content_hash().to_owned(), outcome.result)
        });
        match task.await {
            Ok((hash, Ok(Ok(requests)))) => Mapped::Requests { hash, requests },
            Ok((hash, Ok(Err(e)))) => Mapped::Refused {
                hash,
                error: format!("mapper refused the change: {e}"),
            },
            Ok((hash, Err(e))) => Mapped::Refused {
                hash,
                error: format!("mapper failed: {e}"),
            },
            Err(e) => Mapped::Refused {
                hash: String::new(),
                error: format!("mapper task failed: {e}"),
            },
        }
    }

    async fn save_progress(&self, id: i64, token: &str, requests: &str, sent: i64) {
        let saved = async {
            let mut tx = self.inner.store.begin().await?;
            tx.outbox_progress(id, token, requests, sent).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = saved {
            // Not fatal: a retry then resends from the last saved point.
            tracing::warn!(outbox = id, error = %e, "outbound worker: cannot save progress");
        }
    }

    /// Records how the rows ended, with their attempts and captures, in one
    /// transaction; fenced, so a row another worker took over is left to it.
    async fn finish(&self, done: &[(&OutboxRow, Ending)]) -> Result<(), StoreError> {
        retry_transient(
            "outbound worker: recording outcomes",
            |tries| Duration::from_millis(100 * u64::from(tries)),
            || self.try_finish(done),
        )
        .await?;
        for (row, ending) in done {
            let counted = match ending.status {
                OutboxStatus::Retrying => "retried",
                OutboxStatus::Pending => "waiting",
                other => other.as_str(),
            };
            self.inner.metrics.outbound(&row.provider, counted);
            if let Some(code) = ending.error_code {
                self.inner.metrics.outbound_error(&row.provider, code);
            }
            if matches!(ending.status, OutboxStatus::Failed | OutboxStatus::Dead) {
                tracing::warn!(
                    provider = %row.provider,
                    outbox = row.id,
                    status = %ending.status,
                    error = ending.error.as_deref().unwrap_or(""),
                    "outbound change not sent"
                );
            }
        }
        Ok(())
    }

    async fn try_finish(&self, done: &[(&OutboxRow, Ending)]) -> Result<(), StoreError> {
        let at = now();
        let finishes: Vec<OutboxFinish<'_>> = done
            .iter()
            .filter_map(|(row, e)| {
                Some(OutboxFinish {
                    id: row.id,
                    claim_token: row.claim_token.as_deref()?,
                    status: e.status,
                    last_error: e.error.as_deref(),
                    error_code: e.error_code,
                    next_attempt_at: e.next_attempt_at.as_deref(),
                    mapper_hash: e.mapper_hash.as_deref(),
                    requests: e.requests.as_deref(),
                    sent_requests: e.sent,
                    refund_attempt: e.refund,
                })
            })
            .collect();
        let mut tx = self.inner.store.begin().await?;
        let written = tx.finish_outbox(&finishes, &at).await?;
        if written.len() < finishes.len() {
            tracing::warn!(
                lost = finishes.len() - written.len(),
                "outbound worker: claims lost to another worker; their outcomes were not recorded"
            );
        }
        let mut attempts = Vec::new();
        let mut echoes: Vec<(&str, &str)> = Vec::new();
        let mut synced = Vec::new();
        for (row, ending) in done.iter().filter(|(r, _)| written.contains(&r.id)) {
            attempts.extend(ending.attempts.iter().cloned());
            if let (OutboxStatus::Sent, Some(guid)) = (ending.status, &row.ticket_guid) {
                synced.extend(ending.synced.iter().map(|(field, value)| NewSynced {
                    ticket_guid: guid,
                    provider: &row.provider,
                    field,
                    value: value.as_deref(),
                    source: SyncSource::Outbound,
                    delivery_id: None,
                    outbox_id: Some(row.id),
                    history_id: Some(row.history_id),
                    at: &at,
                }));
            }
            for (kind, id) in &ending.captures {
                match kind {
                    CaptureKind::Echo => echoes.push((&row.provider, id)),
                    CaptureKind::Mirror => {
                        let Some(guid) = &row.ticket_guid else {
                            continue;
                        };
                        let linked = self
                            .inner
                            .applier
                            .link_mirror(&mut tx, &row.provider, id, guid, &at)
                            .await?;
                        if !linked {
                            tracing::warn!(provider = %row.provider, external_id = %id, ticket = %guid,
                                "captured mirror is linked to another ticket; left there");
                        }
                    }
                }
            }
        }
        tx.insert_outbox_attempts(&attempts).await?;
        tx.remember_echoes(&echoes, &at).await?;
        tx.set_synced(&synced).await?;
        tx.commit().await
    }
}

/// What the mapper made of a change.
enum Mapped {
    NoMapper,
    Requests {
        hash: String,
        requests: Vec<OutboundRequest>,
    },
    Refused {
        hash: String,
        error: String,
    },
}

impl Ending {
    fn failed(mut self, error: String, code: Option<ErrorCode>) -> Ending {
        self.status = OutboxStatus::Failed;
        self.error = Some(error);
        self.error_code = code;
        self.next_attempt_at = None;
        self
    }
}

/// How an answer counts.
enum Verdict {
    Ok,
    /// Worth trying again later (timeout, connection, 429, 5xx), with the
    /// delay the provider asked for.
    Transient(String, Option<Duration>, ErrorCode),
    /// Not worth repeating: a 4xx, a refused request, an `ok: false`.
    Permanent(String, ErrorCode),
}

impl Verdict {
    fn code(&self) -> Option<ErrorCode> {
        match self {
            Verdict::Ok => None,
            Verdict::Transient(_, _, c) | Verdict::Permanent(_, c) => Some(*c),
        }
    }
}

fn judge(answer: &Result<ApiResponse, ApiFailure>, ok_pointer: Option<&str>) -> Verdict {
    match answer {
        Err(e) if e.is_transient() => {
            Verdict::Transient(describe_failure(e), None, failure_code(e))
        }
        Err(e) => Verdict::Permanent(describe_failure(e), failure_code(e)),
        Ok(r) if r.is_transient() => Verdict::Transient(
            format!("answered {}: {}", r.status, excerpt(&r.body)),
            retry_after(&r.headers),
            ErrorCode::of_status(r.status),
        ),
        Ok(r) if !(200..300).contains(&r.status) => Verdict::Permanent(
            format!("answered {}: {}", r.status, excerpt(&r.body)),
            ErrorCode::of_status(r.status),
        ),
        Ok(r) => match ok_pointer {
            Some(pointer) => {
                let body = serde_json::from_slice::<serde_json::Value>(&r.body).ok();
                let ok = body
                    .as_ref()
                    .and_then(|v| v.pointer(pointer).and_then(serde_json::Value::as_bool))
                    == Some(true);
                if ok {
                    Verdict::Ok
                } else {
                    // Such APIs name the error beside the flag (Slack:
                    // `{"ok": false, "error": "invalid_auth"}`).
                    let parent = pointer.rsplit_once('/').map_or("", |(p, _)| p);
                    let name = body
                        .as_ref()
                        .and_then(|v| v.pointer(parent)?.get("error")?.as_str().map(str::to_owned));
                    Verdict::Permanent(
                        format!(
                            "answered {} without `{pointer}` true: {}",
                            r.status,
                            excerpt(&r.body)
                        ),
                        name.as_deref()
                            .map_or(ErrorCode::ValidationFailed, ErrorCode::of_error_name),
                    )
                }
            }
            None => Verdict::Ok,
        },
    }
}

fn failure_code(e: &ApiFailure) -> ErrorCode {
    match e {
        ApiFailure::Denied(_) | ApiFailure::BudgetExhausted => ErrorCode::Refused,
        ApiFailure::Timeout | ApiFailure::TooLarge | ApiFailure::Unavailable(_) => {
            ErrorCode::Unavailable
        }
    }
}

fn describe_failure(e: &ApiFailure) -> String {
    match e {
        ApiFailure::Denied(m) => format!("refused by the host: {m}"),
        ApiFailure::BudgetExhausted => "call budget exhausted".into(),
        ApiFailure::Timeout => "no answer within the timeout".into(),
        ApiFailure::TooLarge => "the answer exceeded the size cap".into(),
        ApiFailure::Unavailable(m) => format!("unavailable: {m}"),
    }
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
    let value = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))?
        .1
        .trim()
        .to_owned();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(&value).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

/// The request as sent: the mapper's, plus the idempotency key unless the
/// mapper set that header itself.
fn with_idempotency(
    r: &OutboundRequest,
    policy: &OutboundPolicy,
    outbox_id: i64,
    index: usize,
) -> ApiRequest {
    let mut headers = r.headers.clone();
    let name = &policy.idempotency_header;
    if !name.is_empty() && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
        headers.push((name.clone(), idempotency_key(outbox_id, index)));
    }
    ApiRequest {
        method: r.method.clone(),
        path: r.path.clone(),
        headers,
        body: r.body.clone(),
    }
}

/// Stable across retries and restarts: the row and the request's index.
pub fn idempotency_key(outbox_id: i64, index: usize) -> String {
    format!("sluice-{outbox_id}-{index}")
}

/// The ids a 2xx answer's body holds at the request's capture pointers.
fn captures(request: &OutboundRequest, response: &ApiResponse) -> Vec<(CaptureKind, String)> {
    if request.captures.is_empty() {
        return Vec::new();
    }
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&response.body) else {
        tracing::warn!(path = %request.path, "outbound answer is not JSON; nothing captured");
        return Vec::new();
    };
    request
        .captures
        .iter()
        .filter_map(|c| Some((c.kind, c.read(&body)?)))
        .collect()
}

fn excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(EXCERPT)];
    String::from_utf8_lossy(cut).into_owned()
}

fn stamp_in(d: Duration) -> String {
    let t = chrono::Utc::now() + chrono::TimeDelta::from_std(d).unwrap_or_default();
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::Capture;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> ApiResponse {
        ApiResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn answers_are_judged_transient_or_permanent() {
        assert!(matches!(
            judge(&Ok(answer(201, &[], "{}")), None),
            Verdict::Ok
        ));
        assert!(matches!(
            judge(&Ok(answer(429, &[("Retry-After", "7")], "")), None),
            Verdict::Transient(_, Some(d), ErrorCode::RateLimited) if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            judge(&Ok(answer(503, &[], "")), None),
            Verdict::Transient(_, None, ErrorCode::Unavailable)
        ));
        assert!(matches!(
            judge(&Err(ApiFailure::Timeout), None),
            Verdict::Transient(_, _, ErrorCode::Unavailable)
        ));
        assert!(matches!(
            judge(&Ok(answer(404, &[], "nope")), None),
            Verdict::Permanent(m, ErrorCode::NotFound) if m.contains("404") && m.contains("nope")
        ));
        assert!(matches!(
            judge(&Err(ApiFailure::Denied("path".into())), None),
            Verdict::Permanent(_, ErrorCode::Refused)
        ));
        assert!(matches!(
            judge(&Ok(answer(401, &[], "")), None),
            Verdict::Permanent(_, ErrorCode::AuthFailed)
        ));
        assert!(matches!(
            judge(&Ok(answer(422, &[], "")), None),
            Verdict::Permanent(_, ErrorCode::ValidationFailed)
        ));
        assert!(matches!(
            judge(&Ok(answer(409, &[], "")), None),
            Verdict::Permanent(_, ErrorCode::Conflict)
        ));
        // Slack's errors come with 200.
        assert!(matches!(
            judge(&Ok(answer(200, &[], r#"{"ok":false,"error":"channel_not_found"}"#)), Some("/ok")),
            Verdict::Permanent(m, ErrorCode::NotFound) if m.contains("channel_not_found")
        ));
        assert!(matches!(
            judge(
                &Ok(answer(200, &[], r#"{"ok":false,"error":"invalid_auth"}"#)),
                Some("/ok")
            ),
            Verdict::Permanent(_, ErrorCode::AuthFailed)
        ));
        assert!(matches!(
            judge(&Ok(answer(200, &[], r#"{"ok":true}"#)), Some("/ok")),
            Verdict::Ok
        ));
    }

    #[test]
    fn captures_read_strings_and_numbers_with_a_prefix() {
        let request = OutboundRequest {
            method: "POST".into(),
            path: "/chat.postMessage".into(),
            headers: vec![],
            body: vec![],
            captures: vec![
                Capture {
                    kind: CaptureKind::Echo,
                    pointer: "/ts".into(),
                    prefix: "C1:".into(),
                },
                Capture {
                    kind: CaptureKind::Mirror,
                    pointer: "/data/gid".into(),
                    prefix: String::new(),
                },
                Capture {
                    kind: CaptureKind::Echo,
                    pointer: "/missing".into(),
                    prefix: String::new(),
                },
            ],
        };
        let got = captures(
            &request,
            &answer(200, &[], r#"{"ts": "1700.2", "data": {"gid": 1209}}"#),
        );
        assert_eq!(
            got,
            vec![
                (CaptureKind::Echo, "C1:1700.2".to_owned()),
                (CaptureKind::Mirror, "1209".to_owned())
            ]
        );
    }

    #[test]
    fn the_idempotency_key_is_added_unless_the_mapper_set_one() {
        let policy = OutboundPolicy {
            retry: RetryPolicy::default(),
            idempotency_header: "Idempotency-Key".into(),
            ok_pointer: None,
        };
        let mut r = OutboundRequest {
            method: "POST".into(),
            path: "/x".into(),
            headers: vec![],
            body: vec![],
            captures: vec![],
        };
        let sent = with_idempotency(&r, &policy, 42, 1);
        assert_eq!(
            sent.headers,
            vec![("Idempotency-Key".to_owned(), "sluice-42-1".to_owned())]
        );
        r.headers.push(("idempotency-key".into(), "mine".into()));
        assert_eq!(with_idempotency(&r, &policy, 42, 1).headers.len(), 1);
    }
}
