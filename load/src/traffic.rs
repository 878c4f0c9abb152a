//! Sending: an open loop (a fixed offered rate, each request's latency
//! counted from when it was due, so a stalled server is not hidden by the
//! generator waiting for it — what wrk2 does) and a closed loop (each
//! connection sends its next request when the last is answered — what wrk
//! does).
//!
//! Each sending task keeps its own HTTP/1.1 connection ([`Conn`], hyper's
//! client connection without a pool), as wrk does: the generator shares
//! the machine with the host it measures, and a pooled client's per-request
//! bookkeeping (URL parsing, pool checkout) was a third of its CPU.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::bodies::{Bodies, Signed};

/// Where and how to post.
#[derive(Clone)]
pub struct Target {
    pub http: reqwest::Client,
    /// One or more hosts (replicas); connection `k` posts to `urls[k % n]`.
    pub urls: Arc<Vec<String>>,
    pub bodies: Arc<Bodies>,
    /// Comments sent so far by this process: each gets a distinct body.
    pub sent: Arc<AtomicU64>,
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Run {
    pub elapsed: Duration,
    /// Answered 2xx.
    pub ok: u64,
    /// Answered otherwise, or not at all.
    pub failed: u64,
    /// In flight when a closed loop ended, dropped unanswered.
    pub cut: u64,
    /// The first failure, to show.
    pub first_failure: Option<String>,
    latencies: Vec<Duration>,
}

impl Run {
    /// The `q`-quantile of the latencies (0 when nothing was answered), ms.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[i].as_secs_f64() * 1e3
    }

    /// Answered 2xx per second.
    pub fn ok_per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn merge(&mut self, other: Run) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.cut += other.cut;
        self.first_failure = self.first_failure.take().or(other.first_failure);
        self.latencies.extend(other.latencies);
    }
}

impl Target {
    /// A connection of task `k`'s own to host `k % n`.
    pub fn conn(&self, k: usize) -> Conn {
        Conn::new(&self.urls[k % self.urls.len()])
    }

    fn next_comment(&self) -> Signed {
        self.bodies
            .comment(self.sent.fetch_add(1, Ordering::Relaxed))
    }

    /// `rate` deliveries a second for `duration` over `connections`
    /// connections, each request due at its slot; a request sent late
    /// (every connection busy) counts its lateness in its latency.
    pub async fn open(&self, rate: f64, duration: Duration, connections: usize) -> Run {
        let start = Instant::now();
        let end = start + duration;
        let slots = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::with_capacity(connections);
        for k in 0..connections {
            let (target, slots) = (self.clone(), slots.clone());
            tasks.push(tokio::spawn(async move {
                let mut run = Run::default();
                let mut conn = target.conn(k);
                loop {
                    let slot = slots.fetch_add(1, Ordering::Relaxed);
                    let due = start + Duration::from_secs_f64(slot as f64 / rate);
                    if due >= end {
                        return run;
                    }
                    let d = target.next_comment();
                    tokio::time::sleep_until(due).await;
                    let answer = conn.post(&d, false).await;
                    run.record(due, answer);
                }
            }));
        }
        collect(start, tasks).await
    }

    /// Every connection sending back to back for `duration`. Requests
    /// still in flight at the end are dropped, their connections closed,
    /// as wrk does: a server must cope with clients that hang up.
    pub async fn closed(&self, duration: Duration, connections: usize, wait: bool) -> Run {
        let start = Instant::now();
        let end = start + duration;
        let mut tasks = Vec::with_capacity(connections);
        for k in 0..connections {
            let target = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut run = Run::default();
                let mut conn = target.conn(k);
                while Instant::now() < end {
                    let d = target.next_comment();
                    let sent = Instant::now();
                    match tokio::time::timeout_at(end, conn.post(&d, wait)).await {
                        Ok(answer) => run.record(sent, answer),
                        Err(_) => run.cut += 1,
                    }
                }
                run
            }));
        }
        collect(start, tasks).await
    }
}

/// One keep-alive HTTP/1.1 connection to one host, opened on first use
/// and again after it fails.
pub struct Conn {
    /// `host:port`, for connecting and the `Host` header.
    authority: String,
    send: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(url: &str) -> Conn {
        Conn {
            authority: url.strip_prefix("http://").unwrap_or(url).to_owned(),
            send: None,
        }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        let alive = match &mut self.send {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !alive {
            let stream = tokio::net::TcpStream::connect(&self.authority)
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", self.authority))?;
            stream
                .set_nodelay(true)
                .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
            let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake with {} failed: {e}", self.authority))?;
            tokio::spawn(async move {
                // Ends when the sender is dropped or the host hangs up;
                // the next request then reconnects.
                let _ = conn.await;
            });
            self.send = Some(send);
        }
        self.send.as_mut().ok_or_else(|| "no connection".to_owned())
    }

    /// Posts one delivery; `Err` names what went wrong.
    pub async fn post(&mut self, d: &Signed, wait: bool) -> Result<(), String> {
        let request = hyper::Request::post(if wait {
            "/hooks/bitbucket?wait=true"
        } else {
            "/hooks/bitbucket"
        })
        .header(HOST, &self.authority)
        .header(CONTENT_TYPE, "application/json")
        .header("x-event-key", d.event)
        .header("x-hub-signature", &d.signature)
        .header("x-request-uuid", &d.request_uuid)
        .body(Full::new(d.body.clone()))
        .map_err(|e| format!("cannot build the request: {e}"))?;
        let answer = self.sender().await?.send_request(request).await;
        let resp = match answer {
            Ok(resp) => resp,
            Err(e) => {
                self.send = None;
                return Err(format!("no answer: {e}"));
            }
        };
        let status = resp.status();
        let body = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                self.send = None;
                return Err(format!("no body: {e}"));
            }
        };
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
        }
    }
}

impl Run {
    fn record(&mut self, since: Instant, answer: Result<(), String>) {
        self.latencies.push(since.elapsed());
        match answer {
            Ok(()) => self.ok += 1,
            Err(e) => {
                self.failed += 1;
                self.first_failure.get_or_insert(e);
            }
        }
    }
}

async fn collect(start: Instant, tasks: Vec<tokio::task::JoinHandle<Run>>) -> Run {
    let mut all = Run::default();
    for t in tasks {
        match t.await {
            Ok(run) => all.merge(run),
            Err(e) => {
                all.failed += 1;
                all.first_failure
                    .get_or_insert(format!("connection task failed: {e}"));
            }
        }
    }
    all.elapsed = start.elapsed();
    all.latencies.sort_unstable();
    all
}
