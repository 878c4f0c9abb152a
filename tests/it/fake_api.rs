//! A provider's API on loopback for end-to-end tests: it records every call
//! (method, path with query, headers, JSON body) and answers with a function
//! of the call, as the real API would. One shared stand-in, so each
//! two-way test only writes the answers its provider gives.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::Value;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header names lower-cased, values as sent (non-UTF-8 values dropped).
    pub headers: Vec<(String, String)>,
    /// The body as JSON; `Value::Null` when it is not JSON.
    pub body: Value,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the API answers: a status and a JSON body.
pub type Reply = (StatusCode, Value);

type Answer = dyn Fn(&Call, usize) -> Reply + Send + Sync;

/// The recording server. `n` passed to the answer counts calls from 1.
#[derive(Clone)]
pub struct FakeApi {
    calls: Arc<Mutex<Vec<Call>>>,
    n: Arc<AtomicUsize>,
    answer: Arc<Answer>,
}

impl FakeApi {
    /// Starts a server answering 200 with `answer`'s JSON; returns its base URL.
    pub async fn start(
        answer: impl Fn(&Call, usize) -> Value + Send + Sync + 'static,
    ) -> (String, FakeApi) {
        Self::start_with_status(move |call, n| (StatusCode::OK, answer(call, n))).await
    }

    /// Starts a server whose answer chooses the status as well.
    pub async fn start_with_status(
        answer: impl Fn(&Call, usize) -> Reply + Send + Sync + 'static,
    ) -> (String, FakeApi) {
        let api = FakeApi {
            calls: Arc::default(),
            n: Arc::new(AtomicUsize::new(1)),
            answer: Arc::new(answer),
        };
        let app = Router::new().fallback(serve).with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, api)
    }

    /// The calls with this method whose path starts with `path_start`.
    pub fn calls(&self, method: &str, path_start: &str) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.method == method && c.path.starts_with(path_start))
            .cloned()
            .collect()
    }

    /// Every call so far, in arrival order.
    pub fn all(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

async fn serve(
    State(api): State<FakeApi>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let call = Call {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers: headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let n = api.n.fetch_add(1, Ordering::SeqCst);
    let (status, answer) = (api.answer)(&call, n);
    api.calls.lock().unwrap().push(call);
    (status, axum::Json(answer))
}
