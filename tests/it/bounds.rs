//! The server bounds itself: a client sending its body slowly (or not at
//! all) gets 408 within the body deadline while others are served; requests
//! over `max_concurrent_requests` get 503 with `Retry-After` at once; a
//! PostgreSQL that stops answering fails webhooks within the configured
//! timeouts, and the host recovers when it answers again.
//!
//! Requests are made slow by the client (a body that never completes),
//! never by sleeping in the server.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use host::app::App;
use host::config::Config;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::db;
use crate::helpers::Running;

const TOKEN: &str = "gitlab-token-0123456789";

/// A host with one provider (`gitlab`, no mapper: deliveries are stored
/// and wait) and `extra` appended to its config.
async fn spawn(database: &str, extra: &str) -> (SocketAddr, Running) {
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{database}\"\n\
         providers:\n  gitlab:\n    verify: {{secret: {TOKEN}}}\n{extra}"
    );
    let config = Config::parse(&yaml, Path::new("/config.yaml"), |_| None).unwrap();
    let app = App::build(&config).await.unwrap();
    let addr = app.local_addr().unwrap();
    let (_, running) = Running::start(app);
    (addr, running)
}

/// Opens a connection and sends a webhook's head announcing `length`
/// body bytes, then `sent` of them.
async fn slow_request(addr: SocketAddr, length: usize, sent: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /hooks/gitlab HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Gitlab-Token: {TOKEN}\r\nX-Gitlab-Event-UUID: slow-{}\r\nContent-Length: {length}\r\n\r\n",
        uuid::Uuid::new_v4().simple()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(sent).await.unwrap();
    stream
}

/// The status of the response on `stream`, or `None` when the host closed
/// the connection without one.
async fn status_of(stream: &mut TcpStream) -> Option<u16> {
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !response.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&response);
    line.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

async fn webhook(http: &reqwest::Client, addr: SocketAddr, id: &str) -> reqwest::Response {
    http.post(format!("http://{addr}/hooks/gitlab"))
        .header("X-Gitlab-Token", TOKEN)
        .header("X-Gitlab-Event-UUID", id)
        .header("Content-Type", "application/json")
        .body(format!(r#"{{"object_kind": "note", "id": "{id}"}}"#))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_gets_408_within_the_body_deadline_while_others_are_served() {
    let db = db::sqlite().await;
    let (addr, running) = spawn(
        &db.url,
        "server: {body_read_timeout_ms: 1000, request_timeout_ms: 10000}\n",
    )
    .await;
    let started = Instant::now();
    // One client trickles a byte every 50 ms (its 200 bytes would take 10
    // s), another sends 5 bytes and stops.
    let trickling = tokio::spawn(async move {
        let mut stream = slow_request(addr, 200, b"{").await;
        let (mut read, mut write) = stream.split();
        let trickle = async {
            for _ in 0..199 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if write.write_all(b" ").await.is_err() {
                    break;
                }
            }
            std::future::pending::<()>().await;
        };
        let mut response = Vec::new();
        tokio::select! {
            _ = trickle => unreachable!(),
            _ = read.read_to_end(&mut response) => {}
        }
        let line = String::from_utf8_lossy(&response).into_owned();
        (line, started.elapsed())
    });
    let stopped = tokio::spawn(async move {
        let mut stream = slow_request(addr, 200, b"{\"a\":").await;
        (status_of(&mut stream).await, started.elapsed())
    });

    // Meanwhile others are served at once.
    let http = reqwest::Client::new();
    let health = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let accepted = webhook(&http, addr, "fast-1").await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    assert!(
        !trickling.is_finished() && !stopped.is_finished(),
        "the slow clients were answered before the others: {:?}",
        started.elapsed()
    );

    let (response, trickle_took) = tokio::time::timeout(Duration::from_secs(5), trickling)
        .await
        .expect("the trickling client is answered within the deadline")
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("\"body_timeout\""), "{response}");
    let (status, stop_took) = tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("the stopped client is answered within the deadline")
        .unwrap();
    assert_eq!(status, Some(408));
    for took in [trickle_took, stop_took] {
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(3000),
            "answered after {took:?} with a 1 s body deadline"
        );
    }
    eprintln!(
        "slow bodies answered 408 after {trickle_took:?} (trickling), {stop_took:?} (stopped)"
    );
    // Neither slow delivery was stored.
    assert_eq!(db.count_deliveries("gitlab").await.unwrap(), 1);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_cap_get_503_with_retry_after_at_once() {
    let db = db::sqlite().await;
    let (addr, running) = spawn(
        &db.url,
        "server: {max_concurrent_requests: 3, body_read_timeout_ms: 20000, request_timeout_ms: 20000}\n",
    )
    .await;
    // Three requests whose bodies never complete hold the three permits.
    let mut slow = Vec::new();
    for _ in 0..3 {
        slow.push(slow_request(addr, 100, b"{").await);
    }
    let http = reqwest::Client::new();
    let health = || http.get(format!("http://{addr}/healthz")).send();
    // They take their permits once their heads are parsed: poll until the
    // cap shows. A health check holds a permit while it is answered, so a
    // slow request whose head is parsed just then is refused (answered, or
    // closed) instead of holding one, and the cap could never fill: such a
    // request is sent again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for stream in &mut slow {
            let mut buf = [0u8; 64];
            match stream.try_read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                _ => *stream = slow_request(addr, 100, b"{").await,
            }
        }
        if health().await.unwrap().status() == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(Instant::now() < deadline, "the cap never filled");
        tokio::task::yield_now().await;
    }
    // Every further request, webhook or API, is refused at once.
    let started = Instant::now();
    let extra = futures::future::join_all((0..4).map(|i| {
        let http = http.clone();
        async move {
            if i % 2 == 0 {
                webhook(&http, addr, &format!("over-{i}")).await
            } else {
                http.get(format!("http://{addr}/healthz"))
                    .send()
                    .await
                    .unwrap()
            }
        }
    }))
    .await;
    for response in extra {
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "overloaded", "{body}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refusals took {:?}",
        started.elapsed()
    );
    assert_eq!(db.count_deliveries("gitlab").await.unwrap(), 0);

    // The slow clients go away: their permits come back.
    drop(slow);
    let deadline = Instant::now() + Duration::from_secs(5);
    while health().await.unwrap().status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "permits were not returned");
        tokio::task::yield_now().await;
    }
    assert_eq!(
        webhook(&http, addr, "after").await.status(),
        StatusCode::ACCEPTED
    );
    running.stop().await;
}

/// A loopback TCP proxy that can be paused: while paused it accepts and
/// reads but forwards nothing, like a database host that stopped
/// answering; resumed, it forwards what it held.
struct Proxy {
    addr: SocketAddr,
    paused: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (paused, watch) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let watch = watch.clone();
                let upstream = upstream.clone();
                connections.spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (from_client, to_client) = client.into_split();
                    let (from_server, to_server) = server.into_split();
                    tokio::join!(
                        pump(from_client, to_server, watch.clone()),
                        pump(from_server, to_client, watch)
                    );
                });
            }
        });
        Proxy { addr, paused, task }
    }

    fn pause(&self, paused: bool) {
        self.paused.send_replace(paused);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Dropping the JoinSet with the task ends every connection.
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut paused: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if paused.wait_for(|p| !*p).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// `url` with its `host:port` replaced by `addr`, and the `host:port` it had.
fn through(url: &str, addr: SocketAddr) -> (String, String) {
    let (scheme_user, rest) = url.split_once('@').expect("the URL names a user");
    let (host_port, path) = rest.split_once('/').expect("the URL names a database");
    (format!("{scheme_user}@{addr}/{path}"), host_port.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_postgres_fails_webhooks_fast_and_the_host_recovers() {
    let db = db::postgres().await;
    let (_, upstream) = through(&db.url, "127.0.0.1:1".parse().unwrap());
    let proxy = Proxy::start(upstream).await;
    let (url, _) = through(&db.url, proxy.addr);
    let (addr, running) = spawn(
        &url,
        "database_acquire_timeout_ms: 500\ndatabase_statement_timeout_ms: 1000\n\
         server: {request_timeout_ms: 2000, body_read_timeout_ms: 1000}\n",
    )
    .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    assert_eq!(
        webhook(&http, addr, "before").await.status(),
        StatusCode::ACCEPTED
    );

    proxy.pause(true);
    for path in ["/hooks/gitlab", "/readyz"] {
        let started = Instant::now();
        let response = if path == "/readyz" {
            http.get(format!("http://{addr}{path}"))
                .send()
                .await
                .unwrap()
        } else {
            webhook(&http, addr, "during").await
        };
        let took = started.elapsed();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(
            took < Duration::from_secs(3),
            "{path} took {took:?} against a black hole"
        );
        eprintln!("black-holed database: {path} answered 503 after {took:?}");
    }

    // Answering again, it serves again; the delivery refused during the
    // outage, sent again, is stored once (it may have been committed just
    // as its request gave up: then this is a duplicate, 200).
    proxy.pause(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = webhook(&http, addr, "during").await.status();
        if status == StatusCode::ACCEPTED || status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: still {status}");
        tokio::task::yield_now().await;
    }
    assert_eq!(
        webhook(&http, addr, "after").await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(db.count_deliveries("gitlab").await.unwrap(), 3);
    running.stop().await;
    drop(proxy);
}
