//! The ticket API over real HTTP on 127.0.0.1, on SQLite and PostgreSQL.

use std::path::Path;

use host::action::{Action, RaciRole, SignoffStatus, TicketRef};
use host::app::App;
use host::config::Config;
use host::tickets::{Applier, ApplyInput};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::db::{TestDb, conformance};

const ADMIN: &str = "admin-token-0123456789abcdef";
const READ: &str = "read-token-0123456789abcdef";

struct TestApp {
    base: String,
    http: reqwest::Client,
    running: crate::helpers::Running,
    db: TestDb,
}

async fn spawn_app(db: TestDb) -> TestApp {
    let yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: \"{}\"\napi:\n  tokens:\n    - {{name: ops, token: \"${{ADMIN}}\", scope: admin}}\n    - {{name: dashboard, token: \"${{READ}}\", scope: read}}\n",
        db.url
    );
    let config = Config::parse(&yaml, Path::new("test.yaml"), |name| match name {
        "ADMIN" => Some(ADMIN.into()),
        "READ" => Some(READ.into()),
        _ => None,
    })
    .unwrap();
    let app = App::build(&config).await.unwrap();
    let (base, running) = crate::helpers::Running::start(app);
    TestApp {
        base,
        http: reqwest::Client::new(),
        running,
        db,
    }
}

impl TestApp {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(READ), None)
            .await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(ADMIN), Some(body))
            .await
    }

    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PATCH, path, Some(ADMIN), Some(body))
            .await
    }

    async fn create(&self, subject: &str) -> String {
        let (status, t) = self
            .post(
                "/v1/tickets",
                json!({"subject": subject, "priority": "HIGH"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{t}");
        t["guid"].as_str().unwrap().to_owned()
    }

    async fn stop(self) {
        self.running.stop().await;
        drop(self.db);
    }
}

conformance!(
    tokens_guard_every_route_but_the_description,
    tickets_are_created_read_and_linked_once,
    errors_have_one_shape_and_name_the_field,
    updates_and_notes_are_recorded_in_history,
    find_filters_and_pages_over_http,
    detail_reports_fully_signed_per_activity,
    malformed_cursors_and_nul_bytes_are_never_a_server_error,
    linked_filters_take_a_provider_or_an_external_id_alone,
    replaying_without_a_mapper_is_a_conflict,
    custom_fields_are_set_rendered_and_found,
);

async fn tokens_guard_every_route_but_the_description(db: TestDb) {
    let app = spawn_app(db).await;
    let (status, body) = app
        .call(reqwest::Method::GET, "/v1/tickets", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = app
        .call(
            reqwest::Method::GET,
            "/v1/tickets",
            Some("wrong-token-0123456789abcdef"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let resp = app
        .http
        .get(format!("{}/v1/tickets", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");

    let (status, body) = app
        .call(
            reqwest::Method::POST,
            "/v1/tickets",
            Some(READ),
            Some(json!({"subject": "x"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, _) = app.get("/v1/tickets").await;
    assert_eq!(status, StatusCode::OK);

    let (status, doc) = app
        .call(reqwest::Method::GET, "/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/tickets",
        "/v1/tickets/first",
        "/v1/tickets/{guid}",
        "/v1/tickets/{guid}/notes",
        "/v1/tickets/{guid}/history",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
    app.stop().await;
}

async fn tickets_are_created_read_and_linked_once(db: TestDb) {
    let app = spawn_app(db).await;
    let resp = app
        .http
        .post(format!("{}/v1/tickets", app.base))
        .bearer_auth(ADMIN)
        .json(&json!({"subject": "Printer on fire", "description": "3rd floor", "priority": "CRITICAL",
                      "ticket_type": "INCIDENT", "requested_by": "ann@technocore.co.za",
                      "external_id": "HELP-1", "labels": ["ops"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = resp.json().await.unwrap();
    let guid = created["guid"].as_str().unwrap();
    assert_eq!(location, format!("/v1/tickets/{guid}"));
    assert_eq!(created["status"], "NEW");
    assert_eq!(created["links"][0]["provider"], "api");

    let (status, got) = app.get(&location).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            got["subject"].as_str(),
            got["priority"].as_str(),
            got["ticket_type"].as_str(),
            got["labels"].clone()
        ),
        (
            Some("Printer on fire"),
            Some("CRITICAL"),
            Some("INCIDENT"),
            json!(["ops"])
        )
    );

    let (status, again) = app
        .post(
            "/v1/tickets",
            json!({"subject": "Printer on fire again", "external_id": "HELP-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["guid"], guid);
    app.stop().await;
}

async fn errors_have_one_shape_and_name_the_field(db: TestDb) {
    let app = spawn_app(db).await;
    let guid = app.create("Shape").await;
    let cases = [
        (
            app.get("/v1/tickets/nope").await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            app.post("/v1/tickets", json!({"subject": "x", "priority": "URGENT"}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("priority"),
        ),
        (
            app.post("/v1/tickets", json!({"subject": "  "})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("subject"),
        ),
        (
            app.post("/v1/tickets", json!({"subject": "x", "colour": "red"}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("body"),
        ),
        (
            app.patch(&format!("/v1/tickets/{guid}"), json!({"status": "DONE"}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("status"),
        ),
        (
            app.patch(&format!("/v1/tickets/{guid}"), json!({"assignee": "bob"}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("assigned_to"),
        ),
        (
            app.patch("/v1/tickets/nope", json!({"status": "QA"})).await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            app.get("/v1/tickets?limit=0").await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("limit"),
        ),
        (
            app.get("/v1/tickets?updated_after=yesterday").await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("updated_after"),
        ),
        (
            app.get("/v1/tickets/nope/history").await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            app.patch(
                &format!("/v1/tickets/{guid}"),
                json!({"subject": "y", "changed_by": "\u{7}bell"}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("changed_by"),
        ),
        (
            app.post(
                "/v1/tickets",
                json!({"subject": "x", "requested_by": "ops"}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("requested_by"),
        ),
    ];
    for ((status, body), want_status, code, field) in cases {
        assert_eq!(status, want_status, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert_eq!(body["error"]["field"].as_str(), field, "{body}");
    }
    app.stop().await;
}

async fn updates_and_notes_are_recorded_in_history(db: TestDb) {
    let app = spawn_app(db).await;
    let guid = app.create("Track me").await;
    let (status, t) = app
        .patch(
            &format!("/v1/tickets/{guid}"),
            json!({"status": "IN_PROGRESS", "assignee": "bob@technocore.co.za", "priority": "LOW"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(
        (
            t["status"].as_str(),
            t["assignee"].as_str(),
            t["priority"].as_str()
        ),
        (
            Some("IN_PROGRESS"),
            Some("bob@technocore.co.za"),
            Some("LOW")
        )
    );
    let (status, t) = app
        .post(
            &format!("/v1/tickets/{guid}/notes"),
            json!({"comment": "Called the vendor", "author": "ann@technocore.co.za"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(t["comments"][0]["comment"], "Called the vendor");

    let (_, h) = app.get(&format!("/v1/tickets/{guid}/history")).await;
    let items = h["items"].as_array().unwrap();
    let kinds: Vec<_> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["create", "update", "comment"]);
    assert_eq!(items[1]["actor"], "ops");
    assert_eq!(
        items[1]["change"]["fields"]["status"],
        json!({"from": "NEW", "to": "IN_PROGRESS"})
    );
    assert_eq!(
        items[1]["change"]["fields"]["priority"],
        json!({"from": "HIGH", "to": "LOW"})
    );
    assert!(items.iter().all(|i| i["origin"].is_null()));

    // Paging: `next` is the last id of a full page.
    let (_, first) = app
        .get(&format!("/v1/tickets/{guid}/history?limit=2"))
        .await;
    let next = first["next"].as_i64().unwrap();
    let (_, rest) = app
        .get(&format!("/v1/tickets/{guid}/history?after={next}"))
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next"], Value::Null);

    // An update that changes nothing records nothing.
    app.patch(
        &format!("/v1/tickets/{guid}"),
        json!({"status": "IN_PROGRESS"}),
    )
    .await;
    let (_, h) = app.get(&format!("/v1/tickets/{guid}/history")).await;
    assert_eq!(h["items"].as_array().unwrap().len(), 3);
    app.stop().await;
}

async fn find_filters_and_pages_over_http(db: TestDb) {
    let app = spawn_app(db).await;
    let mut guids = Vec::new();
    for i in 0..5 {
        guids.push(app.create(&format!("Disk {i} full")).await);
    }
    app.patch(
        &format!("/v1/tickets/{}", guids[1]),
        json!({"status": "QA"}),
    )
    .await;
    let (_, page) = app.get("/v1/tickets?status=QA").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["guid"], guids[1].as_str());
    let (_, page) = app.get("/v1/tickets?q=disk%203").await;
    assert_eq!(page["items"][0]["guid"], guids[3].as_str());

    let mut seen = Vec::new();
    let mut url = "/v1/tickets?limit=2".to_owned();
    loop {
        let (status, page) = app.get(&url).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["guid"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => url = format!("/v1/tickets?limit=2&cursor={}", urlencode(next)),
            None => break,
        }
    }
    seen.sort();
    let mut all = guids.clone();
    all.sort();
    assert_eq!(seen, all);

    let (status, first) = app.get("/v1/tickets/first?status=QA").await;
    assert_eq!(
        (status, first["guid"].as_str()),
        (StatusCode::OK, Some(guids[1].as_str()))
    );
    let (status, _) = app.get("/v1/tickets/first?status=CLOSED").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn detail_reports_fully_signed_per_activity(db: TestDb) {
    let app = spawn_app(db).await;
    let guid = app.create("Sign me").await;
    let t = TicketRef {
        guid: Some(guid.clone()),
        ..TicketRef::default()
    };
    let signoff = |role, email: &str, s| Action::Signoff {
        ticket: t.clone(),
        activity: "Development".into(),
        role,
        email: email.into(),
        signoff_status: s,
    };
    let actions = [
        signoff(
            RaciRole::Consulted,
            "michael@technocore.co.za",
            SignoffStatus::Approved,
        ),
        signoff(
            RaciRole::Accountable,
            "priya@technocore.co.za",
            SignoffStatus::Approved,
        ),
        Action::Signoff {
            ticket: t.clone(),
            activity: "Outcome Monitoring".into(),
            role: RaciRole::Consulted,
            email: "ops@technocore.co.za".into(),
            signoff_status: SignoffStatus::Pending,
        },
    ];
    Applier::default()
        .apply(
            &app.db,
            ApplyInput {
                delivery_id: None,
                origin: Some("bitbucket"),
                mapper_hash: None,
                actions: &actions,
                state: &[],
            },
        )
        .await
        .unwrap();
    let (_, d) = app.get(&format!("/v1/tickets/{guid}")).await;
    assert_eq!(
        d["fully_signed"],
        json!({"Development": true, "Outcome Monitoring": false})
    );
    assert_eq!(d["signoffs"].as_array().unwrap().len(), 3);
    app.stop().await;
}

async fn malformed_cursors_and_nul_bytes_are_never_a_server_error(db: TestDb) {
    let app = spawn_app(db).await;
    let guid = app.create("Cursor").await;
    // A cursor without the `{at}/{id}` shape of a `next`: the caller's
    // mistake, on every paginated route.
    for (method, path) in [
        (reqwest::Method::GET, "/v1/tickets?cursor=nope"),
        (reqwest::Method::GET, "/v1/tickets?cursor="),
        (reqwest::Method::GET, "/v1/deliveries?cursor=nope"),
        (reqwest::Method::GET, "/v1/deliveries?cursor=/id"),
        (
            reqwest::Method::POST,
            "/v1/deliveries/replay?status=failed&cursor=nope",
        ),
    ] {
        let (status, body) = app.call(method, path, Some(ADMIN), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert_eq!(body["error"]["field"], "cursor", "{path}: {body}");
    }
    // No stored text holds a NUL (PostgreSQL text cannot): a filter with
    // one matches nothing, a path with one names nothing.
    for path in [
        "/v1/tickets?status=%00",
        "/v1/tickets?q=a%00",
        "/v1/tickets?cursor=2026-01-01T00:00:00Z%2F%00",
        "/v1/deliveries?provider=%00",
        "/v1/deliveries?cursor=%00%2Fid",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!({"items": [], "next": null})),
            "{path}"
        );
    }
    for (method, path) in [
        (reqwest::Method::GET, "/v1/tickets/first?assignee=%00"),
        (reqwest::Method::GET, "/v1/tickets/a%00"),
        (reqwest::Method::GET, "/v1/tickets/a%00/history"),
        (reqwest::Method::GET, "/v1/tickets/%FF"),
        (reqwest::Method::GET, "/v1/deliveries/a%00"),
        (reqwest::Method::POST, "/v1/deliveries/a%00/replay"),
    ] {
        let (status, body) = app.call(method, path, Some(ADMIN), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
    }
    let (status, body) = app.patch("/v1/tickets/a%00", json!({"subject": "x"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app
        .post("/v1/tickets/a%00/notes", json!({"comment": "x"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // No stored provider holds a NUL: an outbox retry naming one retries
    // nothing (PostgreSQL would refuse the parameter).
    let (status, body) = app
        .post("/v1/outbox/retry", json!({"provider": "a\0"}))
        .await;
    assert_eq!(
        (status, body["retried"].clone()),
        (StatusCode::OK, json!([])),
        "{body}"
    );
    let (status, _) = app.get(&format!("/v1/tickets/{guid}")).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

async fn linked_filters_take_a_provider_or_an_external_id_alone(db: TestDb) {
    let app = spawn_app(db).await;
    let (_, linked) = app
        .post(
            "/v1/tickets",
            json!({"subject": "Linked", "external_id": "HELP-7"}),
        )
        .await;
    app.create("Not linked").await;
    for path in [
        "/v1/tickets?provider=api",
        "/v1/tickets?external_id=HELP-7",
        "/v1/tickets?provider=api&external_id=HELP-7",
    ] {
        let (status, page) = app.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        let guids: Vec<_> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["guid"].clone())
            .collect();
        assert_eq!(guids, [linked["guid"].clone()], "{path}");
    }
    let (status, first) = app.get("/v1/tickets/first?external_id=HELP-7").await;
    assert_eq!((status, &first["guid"]), (StatusCode::OK, &linked["guid"]));
    let (_, none) = app.get("/v1/tickets?provider=jira").await;
    assert_eq!(none["items"], json!([]));
    app.stop().await;
}

async fn replaying_without_a_mapper_is_a_conflict(db: TestDb) {
    let app = spawn_app(db).await;
    app.db
        .insert_delivery(&host::store::NewDelivery {
            encoded: None,
            id: "d-1",
            provider: "tracker",
            dedupe_key: "d-1",
            body_key: None,
            method: "POST",
            path: "/hooks/tracker",
            headers: &[],
            body: b"{}",
            received_at: &host::store::now(),
        })
        .await
        .unwrap();
    for path in [
        "/v1/deliveries/d-1/replay",
        "/v1/deliveries/replay?status=pending",
    ] {
        let (status, body) = app
            .call(reqwest::Method::POST, path, Some(ADMIN), None)
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("conflict")),
            "{path}: {body}"
        );
    }
    app.stop().await;
}

/// Seed 3's search: tickets by custom field (the Pachca user's open
/// requests), set through the API's create and update bodies.
async fn custom_fields_are_set_rendered_and_found(db: TestDb) {
    let app = spawn_app(db).await;
    let (status, mine) = app
        .post(
            "/v1/tickets",
            json!({"subject": "VPN down", "fields": {"pachca_user_id": "2345", "queue": "SERVICEDESK"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    assert_eq!(
        mine["fields"],
        json!({"pachca_user_id": "2345", "queue": "SERVICEDESK"})
    );
    let guid = mine["guid"].as_str().unwrap().to_owned();
    let (_, other) = app
        .post(
            "/v1/tickets",
            json!({"subject": "Printer", "fields": {"pachca_user_id": "9999", "queue": "SERVICEDESK"}}),
        )
        .await;
    let bare = app.create("No fields").await;
    let guids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["guid"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, page) = app.get("/v1/tickets?field.pachca_user_id=2345").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(guids(&page), std::slice::from_ref(&guid));
    assert_eq!(page["items"][0]["fields"]["queue"], "SERVICEDESK");
    // Several combine with AND, and with the other filters.
    let (_, page) = app
        .get("/v1/tickets?field.queue=SERVICEDESK&field.pachca_user_id=9999&status=NEW")
        .await;
    assert_eq!(guids(&page), [other["guid"].as_str().unwrap().to_owned()]);
    let (_, page) = app
        .get("/v1/tickets?field.queue=SERVICEDESK&field.pachca_user_id=9999&status=RESOLVED")
        .await;
    assert_eq!(guids(&page), Vec::<String>::new());
    let (_, page) = app.get("/v1/tickets?field.queue=SERVICEDESK&limit=1").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["next"].is_string(), "{page}");
    // An empty value: tickets without the field.
    let (_, page) = app.get("/v1/tickets?field.queue=").await;
    assert_eq!(guids(&page), std::slice::from_ref(&bare));
    let (status, first) = app
        .get(&format!(
            "/v1/tickets/first?field.pachca_user_id={}",
            urlencode("2345")
        ))
        .await;
    assert_eq!((status, &first["guid"]), (StatusCode::OK, &json!(guid)));

    // An update sets, changes and (with an empty value) clears fields,
    // leaving the others; history records each.
    let (status, t) = app
        .patch(
            &format!("/v1/tickets/{guid}"),
            json!({"fields": {"pachca_user_id": "", "tracker_key": "SERVICEDESK-12"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(
        t["fields"],
        json!({"queue": "SERVICEDESK", "tracker_key": "SERVICEDESK-12"})
    );
    let (_, history) = app.get(&format!("/v1/tickets/{guid}/history")).await;
    let last = history["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last["change"]["fields"],
        json!({
            "fields.pachca_user_id": {"from": "2345", "to": null},
            "fields.tracker_key": {"from": null, "to": "SERVICEDESK-12"},
        }),
        "{history}"
    );
    let (_, page) = app
        .get("/v1/tickets?field.tracker_key=SERVICEDESK-12")
        .await;
    assert_eq!(guids(&page), std::slice::from_ref(&guid));

    // Bad names and values: a 422 naming the parameter or body field.
    for (path, field) in [
        ("/v1/tickets?field.Bad-Name=x", "field.Bad-Name"),
        ("/v1/tickets?field.=x", "field."),
        ("/v1/tickets/first?field.9lives=x", "field.9lives"),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }
    let many: Vec<String> = (0..65).map(|i| format!("field.f{i}=x")).collect();
    let (status, body) = app.get(&format!("/v1/tickets?{}", many.join("&"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "field.", "{body}");
    let (status, body) = app.get("/v1/tickets?nope=1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    for body in [
        json!({"subject": "x", "fields": {"Bad": "x"}}),
        json!({"subject": "x", "fields": {"ok": "nul\u{0}"}}),
    ] {
        let (status, err) = app.post("/v1/tickets", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(err["error"]["field"], "fields", "{err}");
    }
    let (status, err) = app
        .patch(
            &format!("/v1/tickets/{guid}"),
            json!({"fields": {"a-b": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["field"], "fields", "{err}");
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
