//! The store conformance suite: every test runs on SQLite and PostgreSQL,
//! through the real `Applier` and `Store`.

use std::collections::BTreeMap;
use std::sync::Arc;

use host::action::{Action, Priority, RaciRole, SignoffStatus, TicketRef};
use host::store::TicketFilter;
use host::tickets::{Applier, ApplyError, ApplyInput, ApplyOutcome, raci};

use crate::db::{TestDb, conformance};

conformance!(
    the_checkpointer_copies_the_log_beside_the_writer,
    resolution_follows_guid_link_branch_and_earlier_create,
    a_second_create_of_one_record_returns_the_first_ticket,
    applying_a_delivery_twice_changes_nothing,
    a_delivery_applies_whole_or_not_at_all,
    raci_signoffs_upsert_and_report_fully_signed,
    repeated_facts_leave_no_history,
    history_records_who_what_where_and_which_mapper,
    outbox_rows_skip_the_origin,
    find_filters_and_pages,
    concurrent_deliveries_on_one_ticket_lose_nothing,
    a_batch_commits_together_and_a_bad_delivery_only_costs_its_speed,
    a_transaction_reads_its_own_ticket_changes_and_writes_them_at_commit,
    claims_are_fenced_and_only_the_holder_renews_or_finishes,
    deferred_rows_are_seen_by_the_transaction_and_stored_at_commit,
    a_batch_checks_its_comment_ids_and_echoes_at_once,
    bodies_are_stored_compressed_and_read_back_as_received,
);

fn by_guid(g: &str) -> TicketRef {
    TicketRef {
        guid: Some(g.into()),
        ..TicketRef::default()
    }
}

fn by_external(e: &str) -> TicketRef {
    TicketRef {
        external_id: Some(e.into()),
        ..TicketRef::default()
    }
}

fn by_branch(b: &str) -> TicketRef {
    TicketRef {
        branch: Some(b.into()),
        ..TicketRef::default()
    }
}

fn create(subject: &str, external_id: Option<&str>) -> Action {
    Action::Create {
        subject: subject.into(),
        description: "described".into(),
        priority: Priority::High,
        ticket_type: "FEATURE".into(),
        requested_by: Some("ann@technocore.co.za".into()),
        external_id: external_id.map(Into::into),
        labels: vec!["bitbucket".into()],
    }
}

fn status(t: TicketRef, s: &str) -> Action {
    Action::StatusChange {
        ticket: t,
        status: s.into(),
        changed_by: "ann@technocore.co.za".into(),
    }
}

fn comment(t: TicketRef, text: &str, id: Option<&str>) -> Action {
    Action::Comment {
        ticket: t,
        comment: text.into(),
        commented_by: "michael@technocore.co.za".into(),
        external_comment_id: id.map(Into::into),
    }
}

fn signoff(t: TicketRef, role: RaciRole, email: &str, s: SignoffStatus) -> Action {
    Action::Signoff {
        ticket: t,
        activity: "Development".into(),
        role,
        email: email.into(),
        signoff_status: s,
    }
}

async fn apply(
    db: &TestDb,
    delivery: Option<&str>,
    actions: &[Action],
) -> Result<ApplyOutcome, ApplyError> {
    let applier = Applier {
        outbound: vec!["slack".into(), "bitbucket".into()],
        ..Applier::default()
    };
    applier
        .apply(
            db,
            ApplyInput {
                delivery_id: delivery,
                origin: Some("bitbucket"),
                mapper_hash: Some("abc123hash"),
                actions,
                state: &[],
            },
        )
        .await
}

async fn new_ticket(db: &TestDb, external_id: Option<&str>) -> String {
    let out = apply(db, None, &[create("Login page", external_id)])
        .await
        .unwrap();
    out.actions[0].ticket_guid.clone()
}

async fn resolution_follows_guid_link_branch_and_earlier_create(db: TestDb) {
    let guid = new_ticket(&db, Some("technocore/axion#42")).await;
    apply(
        &db,
        None,
        &[status(by_external("technocore/axion#42"), "TRIAGED")],
    )
    .await
    .unwrap();
    assert_eq!(db.ticket(&guid).await.unwrap().unwrap().status, "TRIAGED");
    apply(
        &db,
        None,
        &[status(
            by_branch(&format!("feat/ticket-{guid}")),
            "IN_PROGRESS",
        )],
    )
    .await
    .unwrap();
    assert_eq!(
        db.ticket(&guid).await.unwrap().unwrap().status,
        "IN_PROGRESS"
    );
    // A guid that does not exist falls through to the next field.
    let both = TicketRef {
        guid: Some("nope".into()),
        external_id: Some("technocore/axion#42".into()),
        ..TicketRef::default()
    };
    apply(&db, None, &[status(both, "QA")]).await.unwrap();
    assert_eq!(db.ticket(&guid).await.unwrap().unwrap().status, "QA");

    // create then link_pr in one delivery; the PR's `repo#id` becomes a link.
    let out = apply(
        &db,
        None,
        &[
            create("No ticket branch", None),
            Action::LinkPr {
                ticket: TicketRef {
                    from_action: Some(0),
                    ..TicketRef::default()
                },
                pr_id: "7".into(),
                repo: "technocore/axion".into(),
                url: None,
            },
        ],
    )
    .await
    .unwrap();
    let created = &out.actions[0].ticket_guid;
    assert_eq!(&out.actions[1].ticket_guid, created);
    assert_eq!(db.pr_links(created).await.unwrap().len(), 1);
    apply(
        &db,
        None,
        &[status(by_external("technocore/axion#7"), "TRIAGED")],
    )
    .await
    .unwrap();
    assert_eq!(db.ticket(created).await.unwrap().unwrap().status, "TRIAGED");

    let err = apply(&db, None, &[status(by_branch("feat/ticket-missing"), "QA")])
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        err.to_string(),
        "action 0 (status_change): no ticket found for branch `feat/ticket-missing`"
    );
}

async fn a_second_create_of_one_record_returns_the_first_ticket(db: TestDb) {
    let first = new_ticket(&db, Some("ASANA-1")).await;
    let out = apply(&db, None, &[create("Login page again", Some("ASANA-1"))])
        .await
        .unwrap();
    assert_eq!(out.actions[0].ticket_guid, first);
    assert!(!out.actions[0].changed);
    let page = db
        .find(&TicketFilter {
            limit: 10,
            ..TicketFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

async fn applying_a_delivery_twice_changes_nothing(db: TestDb) {
    let guid = new_ticket(&db, None).await;
    let actions = [
        comment(by_guid(&guid), "hello", None),
        status(by_guid(&guid), "QA"),
    ];
    let first = apply(&db, Some("delivery-1"), &actions).await.unwrap();
    assert!(!first.replayed);
    let before = db.history(&guid, None, 100).await.unwrap().len();
    let second = apply(&db, Some("delivery-1"), &actions).await.unwrap();
    assert!(second.replayed);
    assert_eq!(second.actions, first.actions);
    assert_eq!(db.history(&guid, None, 100).await.unwrap().len(), before);
    assert_eq!(db.comments(&guid).await.unwrap().len(), 1);
}

async fn a_delivery_applies_whole_or_not_at_all(db: TestDb) {
    let actions = [
        create("Half applied?", Some("X-1")),
        comment(by_guid("no-such-ticket"), "orphan", None),
    ];
    let err = apply(&db, Some("d-half"), &actions).await.unwrap_err();
    assert!(
        matches!(err, ApplyError::Unresolved { index: 1, .. }),
        "{err}"
    );
    let page = db
        .find(&TicketFilter {
            limit: 10,
            ..TicketFilter::default()
        })
        .await
        .unwrap();
    assert!(
        page.items.is_empty(),
        "the create of a failed delivery was kept"
    );

    // An invalid action refuses the whole list before anything is written.
    let err = apply(
        &db,
        None,
        &[create("ok", None), status(by_guid("x"), "DONE")],
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("action 1 (status_change): field `status`"),
        "{err}"
    );
    assert!(!err.is_retryable());
}

async fn raci_signoffs_upsert_and_report_fully_signed(db: TestDb) {
    let guid = new_ticket(&db, None).await;
    let t = || by_guid(&guid);
    use RaciRole::*;
    use SignoffStatus::*;
    apply(
        &db,
        None,
        &[
            signoff(t(), Consulted, "michael@x.io", Pending),
            signoff(t(), Consulted, "priya@x.io", Pending),
        ],
    )
    .await
    .unwrap();
    let signed = |db: &TestDb| {
        let db = db.store.clone();
        let guid = guid.clone();
        async move { raci::fully_signed(&db.signoffs(&guid).await.unwrap()) }
    };
    assert_eq!(
        signed(&db).await,
        BTreeMap::from([("Development".into(), false)])
    );
    apply(
        &db,
        None,
        &[signoff(t(), Consulted, "michael@x.io", Approved)],
    )
    .await
    .unwrap();
    apply(
        &db,
        None,
        &[
            signoff(t(), Consulted, "priya@x.io", Approved),
            signoff(t(), Accountable, "priya@x.io", Approved),
        ],
    )
    .await
    .unwrap();
    assert!(signed(&db).await["Development"]);
    // One entry per (ticket, activity, role, email): a later one updates it.
    apply(
        &db,
        None,
        &[signoff(t(), Consulted, "michael@x.io", Rejected)],
    )
    .await
    .unwrap();
    let all = db.signoffs(&guid).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(
        all.iter()
            .find(|s| s.email == "michael@x.io")
            .unwrap()
            .status,
        "REJECTED"
    );
    assert!(!signed(&db).await["Development"]);
}

async fn repeated_facts_leave_no_history(db: TestDb) {
    let guid = new_ticket(&db, None).await;
    let t = || by_guid(&guid);
    // Facts that do not contradict each other (a status change and an
    // escalation both set the status, so repeating one undoes the other).
    let facts = [
        signoff(t(), RaciRole::Consulted, "m@x.io", SignoffStatus::Pending),
        Action::Assign {
            ticket: t(),
            assigned_to: "m@x.io".into(),
            assigned_by: "a@x.io".into(),
        },
        Action::LinkPr {
            ticket: t(),
            pr_id: "9".into(),
            repo: "o/r".into(),
            url: None,
        },
        comment(t(), "once", Some("comment:17")),
        Action::Escalate {
            ticket: t(),
            escalated_by: "ci".into(),
            reason: Some("red".into()),
        },
    ];
    let first = apply(&db, None, &facts).await.unwrap();
    assert!(first.actions.iter().all(|a| a.changed), "{first:?}");
    let again = apply(&db, None, &facts).await.unwrap();
    assert!(again.actions.iter().all(|a| !a.changed), "{again:?}");
    let history = db.history(&guid, None, 100).await.unwrap();
    assert_eq!(history.len(), 1 + facts.len());
    assert_eq!(db.comments(&guid).await.unwrap().len(), 1);
    let t = db.ticket(&guid).await.unwrap().unwrap();
    assert_eq!(
        (t.status.as_str(), t.assignee.as_deref()),
        ("ESCALATED", Some("m@x.io"))
    );

    let to_qa = [status(by_guid(&guid), "QA")];
    assert!(apply(&db, None, &to_qa).await.unwrap().actions[0].changed);
    assert!(!apply(&db, None, &to_qa).await.unwrap().actions[0].changed);

    let resolve = [Action::Resolve {
        ticket: by_guid(&guid),
        resolved_by: "m@x.io".into(),
    }];
    assert!(apply(&db, None, &resolve).await.unwrap().actions[0].changed);
    assert!(!apply(&db, None, &resolve).await.unwrap().actions[0].changed);
    let t = db.ticket(&guid).await.unwrap().unwrap();
    assert_eq!(
        (t.status.as_str(), t.resolved_by.as_deref()),
        ("RESOLVED", Some("m@x.io"))
    );
}

async fn history_records_who_what_where_and_which_mapper(db: TestDb) {
    let guid = new_ticket(&db, Some("EXT-9")).await;
    apply(
        &db,
        Some("d-77"),
        &[
            status(by_external("EXT-9"), "ON_HOLD"),
            Action::Escalate {
                ticket: by_external("EXT-9"),
                escalated_by: "bitbucket-pipelines".into(),
                reason: Some("Build failed".into()),
            },
        ],
    )
    .await
    .unwrap();
    let h = db.history(&guid, None, 100).await.unwrap();
    let kinds: Vec<_> = h.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["create", "status_change", "escalate"]);
    let status_row = &h[1];
    assert_eq!(status_row.actor.as_deref(), Some("ann@technocore.co.za"));
    assert_eq!(status_row.origin.as_deref(), Some("bitbucket"));
    assert_eq!(status_row.delivery_id.as_deref(), Some("d-77"));
    assert_eq!(status_row.mapper_hash.as_deref(), Some("abc123hash"));
    let change: serde_json::Value = serde_json::from_str(&status_row.change).unwrap();
    assert_eq!(
        change,
        serde_json::json!({"action": "status_change", "ticket_guid": guid, "status": "ON_HOLD",
                           "changed_by": "ann@technocore.co.za", "from_status": "NEW"})
    );
    let t = db.ticket(&guid).await.unwrap().unwrap();
    assert_eq!(t.status, "ESCALATED");
    assert_eq!(t.escalation_reason.as_deref(), Some("Build failed"));
    assert!(t.escalated_at.is_some());
    // Paging through history.
    let after = db.history(&guid, Some(h[0].id), 1).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].kind, "status_change");
}

async fn outbox_rows_skip_the_origin(db: TestDb) {
    let guid = new_ticket(&db, None).await;
    apply(&db, None, &[comment(by_guid(&guid), "to slack only", None)])
        .await
        .unwrap();
    let pending = db
        .find_outbox(&host::store::OutboxFilter {
            status: Some(host::store::OutboxStatus::Pending),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .items;
    // Two changes (create, comment), each for slack only: bitbucket is the origin.
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().all(|o| o.provider == "slack"), "{pending:?}");
}

async fn find_filters_and_pages(db: TestDb) {
    let mut guids = Vec::new();
    for i in 0..7 {
        let g = new_ticket(&db, Some(&format!("F-{i}"))).await;
        if i % 2 == 0 {
            apply(&db, None, &[status(by_guid(&g), "QA")])
                .await
                .unwrap();
        }
        guids.push(g);
    }
    apply(
        &db,
        None,
        &[Action::Assign {
            ticket: by_guid(&guids[3]),
            assigned_to: "bob@x.io".into(),
            assigned_by: "a@x.io".into(),
        }],
    )
    .await
    .unwrap();
    apply(&db, None, &[comment(by_guid(&guids[5]), "x", None)])
        .await
        .unwrap();
    let find = |f: TicketFilter| {
        let store = db.store.clone();
        async move {
            store
                .find(&TicketFilter { limit: 100, ..f })
                .await
                .unwrap()
                .items
        }
    };
    assert_eq!(
        find(TicketFilter {
            status: Some("QA".into()),
            ..TicketFilter::default()
        })
        .await
        .len(),
        4
    );
    let assigned = find(TicketFilter {
        assignee: Some("bob@x.io".into()),
        ..TicketFilter::default()
    })
    .await;
    assert_eq!(
        assigned.iter().map(|t| &t.guid).collect::<Vec<_>>(),
        [&guids[3]]
    );
    let linked = find(TicketFilter {
        provider: Some("bitbucket".into()),
        external_id: Some("F-5".into()),
        ..TicketFilter::default()
    })
    .await;
    assert_eq!(linked[0].guid, guids[5]);
    assert_eq!(
        find(TicketFilter {
            text: Some("LOGIN".into()),
            ..TicketFilter::default()
        })
        .await
        .len(),
        7
    );
    assert_eq!(
        find(TicketFilter {
            text: Some("50%".into()),
            ..TicketFilter::default()
        })
        .await
        .len(),
        0
    );

    // Pages of 3 cover every ticket once, newest change first.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = db
            .find(&TicketFilter {
                limit: 3,
                cursor: cursor.clone(),
                ..TicketFilter::default()
            })
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|t| t.updated_at.clone() + &t.guid));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted);
    let newest = find(TicketFilter::default()).await;
    let after = find(TicketFilter {
        updated_after: Some(newest[3].updated_at.clone()),
        ..TicketFilter::default()
    })
    .await;
    assert_eq!(after.len(), 3);
}

async fn concurrent_deliveries_on_one_ticket_lose_nothing(db: TestDb) {
    let guid = new_ticket(&db, None).await;
    let db = Arc::new(db);
    let n = 40;
    let mut tasks = Vec::new();
    for i in 0..n {
        let db = db.clone();
        let guid = guid.clone();
        tasks.push(tokio::spawn(async move {
            let s = if i % 2 == 0 { "IN_PROGRESS" } else { "QA" };
            let actions = [
                comment(
                    by_guid(&guid),
                    &format!("comment {i}"),
                    Some(&format!("c-{i}")),
                ),
                status(by_guid(&guid), s),
            ];
            let delivery = format!("concurrent-{i}");
            // A transient conflict is retried, as the worker will.
            for _ in 0..20 {
                match apply(&db, Some(&delivery), &actions).await {
                    Ok(out) => return out,
                    Err(e) if e.is_retryable() => continue,
                    Err(e) => panic!("{e:?}"),
                }
            }
            panic!("delivery {i} kept conflicting");
        }));
    }
    let mut status_changes = 0;
    for t in tasks {
        let out = t.await.unwrap();
        status_changes += usize::from(out.actions[1].changed);
    }
    assert_eq!(db.comments(&guid).await.unwrap().len(), n);
    let history = db.history(&guid, None, 1000).await.unwrap();
    assert_eq!(history.len(), 1 + n + status_changes);
    // The history replays to the stored status: no update was lost.
    let last_status = history
        .iter()
        .rev()
        .find(|h| h.kind == "status_change")
        .map(|h| {
            let v: serde_json::Value = serde_json::from_str(&h.change).unwrap();
            v["status"].as_str().unwrap().to_owned()
        });
    assert_eq!(
        Some(db.ticket(&guid).await.unwrap().unwrap().status),
        last_status
    );
}

async fn a_batch_commits_together_and_a_bad_delivery_only_costs_its_speed(db: TestDb) {
    let guid = new_ticket(&db, None).await;
    let applier = Applier::default();
    let good = |i: usize| [comment(by_guid(&guid), &format!("batched {i}"), None)];
    let (a, b, c) = (
        &good(1),
        &[comment(by_guid("missing"), "lost?", None)],
        &good(3),
    );
    fn input<'a>(id: &'a str, actions: &'a [Action]) -> ApplyInput<'a> {
        ApplyInput {
            delivery_id: Some(id),
            origin: Some("bitbucket"),
            mapper_hash: None,
            actions,
            state: &[],
        }
    }

    let all_good = applier
        .apply_batch(&db, &[input("b-1", a), input("b-3", c)])
        .await;
    assert!(all_good.iter().all(Result::is_ok), "{all_good:?}");
    assert_eq!(db.comments(&guid).await.unwrap().len(), 2);

    let mixed = applier
        .apply_batch(&db, &[input("m-1", a), input("m-2", b), input("m-3", c)])
        .await;
    assert!(mixed[0].is_ok() && mixed[2].is_ok(), "{mixed:?}");
    assert!(
        matches!(mixed[1], Err(ApplyError::Unresolved { .. })),
        "{mixed:?}"
    );
    assert_eq!(db.comments(&guid).await.unwrap().len(), 4);

    // Replaying a whole batch changes nothing.
    let again = applier
        .apply_batch(&db, &[input("m-1", a), input("m-3", c)])
        .await;
    assert!(
        again.iter().all(|r| r.as_ref().is_ok_and(|o| o.replayed)),
        "{again:?}"
    );
    assert_eq!(db.comments(&guid).await.unwrap().len(), 4);
}

/// A GitHub delivery for the inbox writer.
fn inbox_entry(id: String, dedupe_key: String) -> host::store::InboxEntry {
    host::store::InboxEntry {
        id,
        provider: "github".into(),
        dedupe_key,
        body_key: None,
        method: "POST".into(),
        path: "/hooks/github".into(),
        headers: vec![("x-github-event".into(), "push".into())],
        body: bytes::Bytes::from_static(b"{}"),
        stored_body: host::store::encode_owned(&bytes::Bytes::from_static(b"{}")),
        received_at: host::store::now(),
        premapped: None,
    }
}

/// Group commit: requests that arrive while the writer is busy share one
/// transaction, duplicates (stored before, or earlier in the same batch)
/// are answered with the first delivery's id, and every request gets its
/// own answer. Every request is queued before the writer starts, which
/// makes the batching deterministic.
async fn concurrent_deliveries_share_one_commit(db: TestDb) {
    use host::metrics::Metrics;
    use host::store::{InboxEntry, InboxWriter};

    crate::helpers::store_github_delivery(&db.store, "earlier", "seen-before").await;

    let metrics = Arc::new(Metrics::default());
    let (writer, unstarted) = InboxWriter::channel();
    let mut entries: Vec<InboxEntry> = (0..100)
        .map(|i| inbox_entry(format!("d{i}"), format!("k{i}")))
        .collect();
    entries.push(inbox_entry("again".into(), "seen-before".into()));
    entries.push(inbox_entry("k5-twice".into(), "k5".into()));
    // A replayed body: another delivery id, the same body key.
    let replayed = |id: &str, key: &str| InboxEntry {
        body_key: Some("sha256:same-body".into()),
        ..inbox_entry(id.into(), key.into())
    };
    entries.push(replayed("first-body", "kb1"));
    entries.push(replayed("same-body-new-id", "kb2"));
    let queued = entries.len();
    let calls: Vec<_> = entries
        .into_iter()
        .map(|e| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.store(e).await })
        })
        .collect();
    while writer.queued() < queued {
        tokio::task::yield_now().await;
    }
    let task = unstarted.start(db.store.clone(), metrics.clone(), None);
    let results = futures::future::join_all(calls).await;
    let results: Vec<_> = results.into_iter().map(|r| r.unwrap().unwrap()).collect();
    for (i, r) in results.iter().take(100).enumerate() {
        assert_eq!(
            (r.id.as_str(), r.duplicate),
            (format!("d{i}").as_str(), false)
        );
    }
    assert_eq!(
        (results[100].id.as_str(), results[100].duplicate),
        ("earlier", true)
    );
    assert_eq!(
        (results[101].id.as_str(), results[101].duplicate),
        ("d5", true)
    );
    assert_eq!(
        (results[102].id.as_str(), results[102].duplicate),
        ("first-body", false)
    );
    assert_eq!(
        (results[103].id.as_str(), results[103].duplicate),
        ("first-body", true)
    );
    drop(writer);
    task.finished().await;

    assert_eq!(db.count_deliveries("github").await.unwrap(), 102);
    let text = metrics.render(host::metrics::Depths::default());
    assert!(
        text.lines().any(|l| l == "sluice_inbox_commits_total 1"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l == "sluice_inbox_rows_total 104"),
        "{text}"
    );
}

#[tokio::test]
async fn sqlite_concurrent_deliveries_share_one_commit() {
    concurrent_deliveries_share_one_commit(crate::db::sqlite().await).await
}

/// On SQLite the inbox writer runs on a thread of its own, so a delivery
/// is committed and answered while the runtime requests run on is busy:
/// here that runtime's only thread blocks until the answer comes, which a
/// writer running as a task on it would never give.
#[tokio::test]
async fn sqlite_the_inbox_writer_answers_while_the_request_runtime_is_blocked() {
    use host::metrics::Metrics;
    use host::store::InboxWriter;

    let db = crate::db::sqlite().await;
    let (writer, task) = InboxWriter::spawn(db.store.clone(), Arc::new(Metrics::default()), None);
    // The first commit takes the one write connection over to the writer.
    let first = writer
        .store(inbox_entry("first".into(), "k1".into()))
        .await
        .unwrap();
    assert!(!first.duplicate);
    let (answer, answered) = std::sync::mpsc::channel();
    let sender = writer.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = answer.send(rt.block_on(sender.store(inbox_entry("second".into(), "k2".into()))));
    });
    // Blocks this test's runtime (one thread) until the writer answers.
    let second = answered
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the writer answered while the request runtime was blocked")
        .unwrap();
    assert_eq!((second.id.as_str(), second.duplicate), ("second", false));
    drop(writer);
    task.finished().await;
    assert_eq!(db.count_deliveries("github").await.unwrap(), 2);
}

#[tokio::test]
async fn postgres_concurrent_deliveries_share_one_commit() {
    concurrent_deliveries_share_one_commit(crate::db::postgres().await).await
}

/// A transaction keeps the tickets it touched and writes each changed one
/// once, at commit: reads inside it see the change, the store sees it only
/// after commit, and a transaction dropped without commit leaves nothing.
async fn a_transaction_reads_its_own_ticket_changes_and_writes_them_at_commit(db: TestDb) {
    let guid = new_ticket(&db, Some("EXT-9")).await;
    let mut tx = db.begin().await.unwrap();
    let mut t = tx.ticket_for_update(&guid).await.unwrap().unwrap();
    t.status = "IN_PROGRESS".into();
    tx.update_ticket(&t).await.unwrap();
    t.assignee = Some("ann@example.com".into());
    tx.update_ticket(&t).await.unwrap();
    let seen = tx.ticket_for_update(&guid).await.unwrap().unwrap();
    assert_eq!(
        (seen.status.as_str(), seen.assignee.as_deref()),
        ("IN_PROGRESS", Some("ann@example.com"))
    );
    assert_eq!(
        tx.linked_ticket("bitbucket", "EXT-9")
            .await
            .unwrap()
            .as_deref(),
        Some(guid.as_str())
    );
    drop(tx);
    assert_eq!(db.ticket(&guid).await.unwrap().unwrap().status, "NEW");

    let mut tx = db.begin().await.unwrap();
    let mut t = tx.ticket_for_update(&guid).await.unwrap().unwrap();
    t.status = "QA".into();
    tx.update_ticket(&t).await.unwrap();
    tx.commit().await.unwrap();
    let stored = db.ticket(&guid).await.unwrap().unwrap();
    assert_eq!((stored.status.as_str(), stored.assignee), ("QA", None));
}

async fn claims_are_fenced_and_only_the_holder_renews_or_finishes(db: TestDb) {
    use host::store::{DeliveryStatus, Finish};
    use std::time::Duration;

    crate::helpers::store_github_delivery(&db.store, "d1", "d1").await;
    let providers = ["github".to_owned()];
    // A first worker claims it with a lease that has already run out...
    let first = db
        .claim_deliveries(&providers, 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let first_token = first[0].claim_token.clone().unwrap();
    // ...so a second worker takes it over, under another token.
    let second = db
        .claim_deliveries(&providers, 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    let second_token = second[0].claim_token.clone().unwrap();
    assert_ne!(first_token, second_token);
    assert_eq!(second[0].attempts, 2);
    // The second worker's lease runs: nobody else can claim it now.
    assert!(
        db.claim_deliveries(&providers, 10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );

    // The first worker can neither renew nor finish what it lost.
    assert_eq!(
        db.renew_claim(&first_token, Duration::from_secs(60))
            .await
            .unwrap(),
        0
    );
    fn finish(token: &str, status: DeliveryStatus) -> (&'static str, Finish<'_>) {
        (
            "d1",
            Finish {
                status,
                reason: None,
                refund_attempt: false,
                claim_token: Some(token),
                last_error: None,
                mapper_hash: None,
                event_type: None,
                output: None,
                next_attempt_at: None,
            },
        )
    }
    let written = db
        .finish_deliveries(&[finish(&first_token, DeliveryStatus::Failed)])
        .await
        .unwrap();
    assert_eq!(written, 0);
    assert_eq!(
        db.delivery("d1").await.unwrap().unwrap().status,
        "processing"
    );

    // The holder renews and finishes.
    assert_eq!(
        db.renew_claim(&second_token, Duration::from_secs(60))
            .await
            .unwrap(),
        1
    );
    let written = db
        .finish_deliveries(&[finish(&second_token, DeliveryStatus::Applied)])
        .await
        .unwrap();
    assert_eq!(written, 1);
    let row = db.delivery("d1").await.unwrap().unwrap();
    assert_eq!(row.status, "applied");
    assert_eq!(row.claim_token, None);
}

/// `Store::checkpoint` (which the serving host runs beside the writer)
/// copies the whole write-ahead log into the database while the writer
/// goes on, so the writer's own checkpoint after a commit finds nothing
/// left to copy; PostgreSQL has no log of ours to checkpoint.
async fn the_checkpointer_copies_the_log_beside_the_writer(db: TestDb) {
    use host::store::NewDelivery;

    let store = |id: String, body: Vec<u8>| {
        let db = &db;
        async move {
            db.insert_delivery(&NewDelivery {
                encoded: None,
                id: &id,
                provider: "github",
                dedupe_key: &id,
                body_key: None,
                method: "POST",
                path: "/hooks/github",
                headers: &[],
                body: &body,
                received_at: &host::store::now(),
            })
            .await
            .unwrap()
        }
    };
    // ~2 MiB through the writer: below SQLite's own checkpoint (1,000
    // pages), so only the checkpointer can have copied it. Bytes without
    // repeats, which the store keeps as they are (it compresses the rest).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut noise = || -> Vec<u8> {
        (0..64 << 10)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    };
    for i in 0..32 {
        store(format!("big-{i}"), noise()).await;
    }
    let Some(done) = db.checkpoint().await.unwrap() else {
        assert_eq!(db.backend(), host::store::Backend::Postgres);
        return;
    };
    assert!(done.log_frames >= 500, "{done:?}");
    assert_eq!(done.checkpointed_frames, done.log_frames, "{done:?}");
    // The writer goes on meanwhile and after.
    assert!(!store("after".into(), b"{}".to_vec()).await.duplicate);
}

/// Comments, outbox rows and (on SQLite) history are written late, many at
/// once: the ids handed out are the rows' ids, a statement of the same
/// transaction that needs the rows (a notice pointing at a history row)
/// finds them, a dropped transaction leaves none, and an id once used is
/// not handed out again after its row is deleted.
async fn deferred_rows_are_seen_by_the_transaction_and_stored_at_commit(db: TestDb) {
    use host::store::{NewHistory, NewNotice};

    let guid = new_ticket(&db, None).await;
    let before = db.history(&guid, None, 50).await.unwrap().len();
    let history = |kind: &'static str, at: &'static str| NewHistory {
        ticket_guid: "",
        kind,
        change: format!("{{\"kind\":\"{kind}\"}}"),
        actor: Some("ann@example.com"),
        origin: Some("bitbucket"),
        delivery_id: None,
        mapper_hash: None,
        at,
    };
    let at = "2026-11-30T10:00:00.000000Z";

    // Dropped: nothing of it stays.
    let mut tx = db.begin().await.unwrap();
    let h = tx
        .append_history(&NewHistory {
            ticket_guid: &guid,
            ..history("comment", at)
        })
        .await
        .unwrap();
    assert!(
        tx.insert_comment(&guid, "gone", "ann", Some("bitbucket"), Some("c-0"), at)
            .await
            .unwrap()
    );
    drop(tx);
    assert_eq!(db.comments(&guid).await.unwrap().len(), 0);
    assert!(db.history_rows(&[h]).await.unwrap().is_empty());

    let mut tx = db.begin().await.unwrap();
    let h1 = tx
        .append_history(&NewHistory {
            ticket_guid: &guid,
            ..history("comment", at)
        })
        .await
        .unwrap();
    let h2 = tx
        .append_history(&NewHistory {
            ticket_guid: &guid,
            ..history("status_change", at)
        })
        .await
        .unwrap();
    // SQLite hands the dropped transaction's id out again (nothing was
    // stored under it); PostgreSQL's sequence does not.
    assert!(h1 >= h && h2 > h1, "{h} {h1} {h2}");
    tx.enqueue_outbound(h1, "slack", &guid, at).await.unwrap();
    for (id, fresh) in [("c-1", true), ("c-1", false), ("c-2", true)] {
        assert_eq!(
            tx.insert_comment(&guid, id, "ann", Some("bitbucket"), Some(id), at)
                .await
                .unwrap(),
            fresh,
            "{id}"
        );
    }
    // The notice's history id must exist when it is inserted.
    let noticed = tx
        .record_notice(&NewNotice {
            rule: "stale",
            kind: "direct",
            ticket_guid: Some(&guid),
            period: at,
            history_id: h2,
            tickets: 1,
            at,
        })
        .await
        .unwrap();
    assert!(noticed);
    tx.commit().await.unwrap();

    let rows = db.history_rows(&[h1, h2]).await.unwrap();
    let kinds: Vec<(i64, &str)> = rows.iter().map(|r| (r.id, r.kind.as_str())).collect();
    assert_eq!(kinds, vec![(h1, "comment"), (h2, "status_change")]);
    assert_eq!(db.history(&guid, None, 50).await.unwrap().len(), before + 2);
    let bodies: Vec<String> = db
        .comments(&guid)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.body)
        .collect();
    assert_eq!(bodies, vec!["c-1", "c-2"]);
    let outbox = db
        .find_outbox(&host::store::OutboxFilter {
            ticket_guid: Some(guid.clone()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        outbox
            .items
            .iter()
            .any(|o| o.history_id == h1 && o.provider == "slack"),
        "{outbox:?}"
    );

    // The newest row deleted (as retention may), its id is not reused.
    db.execute(&format!(
        "DELETE FROM sweeper_notices WHERE history_id = {h2}"
    ))
    .await;
    db.execute(&format!("DELETE FROM history WHERE id = {h2}"))
        .await;
    let mut tx = db.begin().await.unwrap();
    let h3 = tx
        .append_history(&NewHistory {
            ticket_guid: &guid,
            ..history("comment", at)
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(h3 > h2, "{h3} reuses an id at or below {h2}");
    assert_eq!(db.history_rows(&[h3]).await.unwrap().len(), 1);
}

/// A batch learns at once which provider comment ids are stored already
/// and which are the host's own records; comments of the batch itself
/// count too.
async fn a_batch_checks_its_comment_ids_and_echoes_at_once(db: TestDb) {
    let guid = new_ticket(&db, None).await;
    let at = "2026-11-30T10:00:00.000000Z";
    let mut tx = db.begin().await.unwrap();
    tx.insert_comment(&guid, "old", "ann", Some("bitbucket"), Some("old"), at)
        .await
        .unwrap();
    tx.remember_echoes(&[("bitbucket", "ours")], at)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = db.begin().await.unwrap();
    tx.prefetch_comment_ids(&[
        ("bitbucket", "old"),
        ("bitbucket", "new"),
        ("bitbucket", "ours"),
        ("slack", "old"),
    ])
    .await
    .unwrap();
    assert!(tx.is_echo("bitbucket", "ours").await.unwrap());
    assert!(!tx.is_echo("bitbucket", "new").await.unwrap());
    assert!(!tx.is_echo("slack", "ours").await.unwrap());
    let mut stored = Vec::new();
    for (origin, id) in [
        ("bitbucket", "old"),
        ("bitbucket", "new"),
        ("bitbucket", "new"),
        ("slack", "old"),
    ] {
        stored.push(
            tx.insert_comment(&guid, id, "ann", Some(origin), Some(id), at)
                .await
                .unwrap(),
        );
    }
    assert_eq!(stored, vec![false, true, false, true]);
    tx.remember_echoes(&[("bitbucket", "later")], at)
        .await
        .unwrap();
    assert!(tx.is_echo("bitbucket", "later").await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(db.comments(&guid).await.unwrap().len(), 3);
}

/// A delivery's body is stored compressed when that makes it smaller and
/// read back as received, whichever path wrote it (one at a time, or a
/// group commit's batch); a row as an older version left it (no encoding)
/// reads as it was; delivery ids are time-ordered.
async fn bodies_are_stored_compressed_and_read_back_as_received(db: TestDb) {
    use host::store::{NewDelivery, new_delivery_id};

    let big = format!("{{\"comment\": \"{}\"}}", "a long comment ".repeat(200));
    let small = "{\"id\": 1}";
    let ids: Vec<String> = (0..3).map(|_| new_delivery_id()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ids, "ids are made in time order");
    let rows = [
        (ids[0].clone(), big.clone()),
        (ids[1].clone(), big.clone()),
        (ids[2].clone(), small.to_owned()),
    ];
    fn as_new((id, body): &(String, String)) -> NewDelivery<'_> {
        NewDelivery {
            encoded: None,
            id: id.as_str(),
            provider: "bitbucket",
            dedupe_key: id.as_str(),
            body_key: None,
            method: "POST",
            path: "/hooks/bitbucket",
            headers: &[],
            body: body.as_bytes(),
            received_at: "2026-12-01T10:00:00.000000Z",
        }
    }
    db.insert_delivery(&as_new(&rows[0])).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    let batch: Vec<NewDelivery<'_>> = rows[1..].iter().map(as_new).collect();
    tx.insert_deliveries(&batch).await.unwrap();
    tx.commit().await.unwrap();

    for (id, body) in &rows {
        let row = db.delivery(id).await.unwrap().unwrap();
        assert_eq!(row.body, body.as_bytes(), "{id}");
    }
    for (id, _) in &rows[..2] {
        let (stored, encoding) = db.stored_body(id).await;
        assert_eq!(encoding.as_deref(), Some("lz4"), "{id}");
        assert!(stored.len() * 4 < big.len(), "{id}: {} bytes", stored.len());
    }
    let (stored, encoding) = db.stored_body(&ids[2]).await;
    assert_eq!((stored.as_slice(), encoding), (small.as_bytes(), None));

    // Written before bodies were encoded: as received, no encoding.
    let old = if db.postgres_name().is_some() {
        "'\\x6f6c64'::bytea"
    } else {
        "X'6f6c64'"
    };
    db.execute(&format!(
        "UPDATE deliveries SET body = {old}, body_encoding = NULL WHERE id = '{}'",
        ids[0]
    ))
    .await;
    assert_eq!(db.delivery(&ids[0]).await.unwrap().unwrap().body, b"old");
}
