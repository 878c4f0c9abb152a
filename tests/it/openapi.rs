//! The served OpenAPI description against the routes the host serves:
//! every route and every method on it is described, and nothing described
//! is missing from the router.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use host::app::App;
use host::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The paths an axum router serves. axum has no listing API, but its
/// `Debug` output (axum is pinned, `=0.8.9`) shows each route's path as
/// `RouteId(n): "/path"`, the routes first (`path_router`), then its own
/// fallback's (`fallback_router`), which are left out.
fn router_paths(router: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    let routes = debug.split("fallback_router:").next().unwrap_or_default();
    let mut paths = BTreeSet::new();
    let mut rest = routes;
    while let Some(at) = rest.find("RouteId(") {
        rest = &rest[at + "RouteId(".len()..];
        let Some(open) = rest.find("): \"/") else {
            continue;
        };
        // Only a path right after the id: `RouteId(3): "/v1/..."`.
        if !rest[..open].chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let path = &rest[open + "): \"".len()..];
        let Some(end) = path.find('"') else { break };
        let path = &path[..end];
        if !path.contains("__private__axum") {
            paths.insert(path.to_owned());
        }
    }
    paths
}

/// The methods a path serves: a request with a method no route takes is
/// answered 405 with the route's `Allow` header. HEAD comes with GET.
async fn served_methods(http: &reqwest::Client, base: &str, path: &str) -> BTreeSet<String> {
    // Path parameters get a value; the methods do not depend on it.
    let concrete: String = path
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "x"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    let probe = Method::from_bytes(b"PROBE").unwrap();
    let resp = http
        .request(probe, format!("{base}{concrete}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::METHOD_NOT_ALLOWED,
        "{path}: a method no route serves should be refused with 405"
    );
    let allow = resp
        .headers()
        .get("allow")
        .unwrap_or_else(|| panic!("{path}: 405 without an Allow header"))
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    let mut methods: BTreeSet<String> = allow
        .split(',')
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    if methods.contains("get") {
        methods.remove("head");
    }
    methods
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_route_is_described() {
    let db = crate::db::sqlite().await;
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{}\"\napi:\n  tokens:\n    - {{name: ops, token: \"${{ADMIN}}\", scope: admin}}\nproviders:\n  tracker:\n    verify: {{secret: \"${{TRACKER}}\", header: X-Sluice-Token}}\n",
        db.url
    );
    let config = Config::parse(&yaml, Path::new("test.yaml"), |name| match name {
        "ADMIN" => Some("admin-token-0123456789abcdef".into()),
        "TRACKER" => Some("tracker-token-0123456789".into()),
        _ => None,
    })
    .unwrap();
    let app = App::build(&config).await.unwrap();
    let router = app.router();
    let paths = router_paths(&router);
    for known in [
        "/v1/tickets",
        "/v1/tickets/{guid}",
        "/hooks/{provider}",
        "/metrics",
    ] {
        assert!(
            paths.contains(known),
            "the router listing lacks {known}: has axum's Debug output changed? {paths:?}"
        );
    }

    // Serve exactly the router that was listed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::new();

    let resp = http
        .get(format!("{base}/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.unwrap();
    let described: BTreeMap<String, BTreeSet<String>> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| {
                    [
                        "get", "put", "post", "delete", "options", "head", "patch", "trace",
                    ]
                    .contains(&k.as_str())
                })
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect();

    let mut served = BTreeMap::new();
    for path in &paths {
        served.insert(path.clone(), served_methods(&http, &base, path).await);
    }
    let undescribed: Vec<String> = served
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .iter()
                .filter(|m| !described.get(path).is_some_and(|d| d.contains(*m)))
                .map(move |m| format!("{} {path}", m.to_ascii_uppercase()))
        })
        .collect();
    assert!(
        undescribed.is_empty(),
        "served but not in the OpenAPI description (add `#[utoipa::path]` to the handler and list it in `api::openapi::ApiDoc`): {undescribed:?}"
    );
    let unserved: Vec<String> = described
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .iter()
                .filter(|m| !served.get(path).is_some_and(|s| s.contains(*m)))
                .map(move |m| format!("{} {path}", m.to_ascii_uppercase()))
        })
        .collect();
    assert!(
        unserved.is_empty(),
        "described but not served: {unserved:?}"
    );
    server.abort();
    app.store().close().await;
}

#[test]
fn the_listing_reads_every_route_of_a_router() {
    // The parser itself, on a router with a nested and a merged route:
    // a route added anywhere shows up.
    let router: axum::Router = axum::Router::new()
        .route("/a", axum::routing::get(|| async { "a" }))
        .nest(
            "/n",
            axum::Router::new().route("/{id}", axum::routing::post(|| async { "b" })),
        )
        .merge(axum::Router::new().route("/c", axum::routing::put(|| async { "c" })));
    assert_eq!(
        router_paths(&router),
        BTreeSet::from(["/a".to_owned(), "/n/{id}".to_owned(), "/c".to_owned()])
    );
}
