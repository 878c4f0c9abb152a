//! Actions applied per second: one delivery per transaction against
//! batches of deliveries per transaction, on SQLite (WAL,
//! `synchronous=FULL`) and on PostgreSQL, side by side in one run.
//!
//! Each delivery carries 3 actions on one of 100 tickets (a comment, a
//! sign-off, a status change): the shape of a busy PR review. Every
//! configuration runs 3 trials of a fixed count; the median is printed,
//! with the cost of one trivial statement on each backend, which is where
//! most of the time goes.
//!
//! Run: `cargo bench -p host --bench apply` (PostgreSQL from
//! `SLUICE_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`;
//! `./scripts/ensure-postgres` starts it).

use std::time::{Duration, Instant};

use host::action::{Action, Priority, RaciRole, SignoffStatus, TicketRef};
use host::store::Store;
use host::tickets::{Applier, ApplyInput};
use sqlx::{AssertSqlSafe, Connection, Executor};

const TICKETS: usize = 100;
const DELIVERIES: usize = 2_000;
const TRIALS: usize = 3;
const BATCH: usize = 64;

fn delivery(i: usize, guids: &[String]) -> Vec<Action> {
    let ticket = TicketRef {
        guid: Some(guids[i % guids.len()].clone()),
        ..TicketRef::default()
    };
    vec![
        Action::Comment {
            ticket: ticket.clone(),
            comment: format!("review comment {i}"),
            commented_by: "michael@technocore.co.za".into(),
            external_comment_id: Some(format!("comment:{i}")),
        },
        Action::Signoff {
            ticket: ticket.clone(),
            activity: "Development".into(),
            role: RaciRole::Consulted,
            email: format!("reviewer{}@technocore.co.za", i % 7),
            signoff_status: if i.is_multiple_of(2) {
                SignoffStatus::Approved
            } else {
                SignoffStatus::Pending
            },
        },
        Action::StatusChange {
            ticket,
            status: if i.is_multiple_of(2) {
                "QA".into()
            } else {
                "IN_PROGRESS".into()
            },
            changed_by: "ann@technocore.co.za".into(),
        },
    ]
}

async fn seed(store: &Store, applier: &Applier) -> Vec<String> {
    let mut guids = Vec::new();
    for i in 0..TICKETS {
        let create = [Action::Create {
            subject: format!("ticket {i}"),
            description: "benchmark".into(),
            priority: Priority::Medium,
            ticket_type: "FEATURE".into(),
            requested_by: None,
            external_id: None,
            labels: vec![],
        }];
        let out = applier
            .apply(
                store,
                ApplyInput {
                    delivery_id: None,
                    origin: None,
                    mapper_hash: None,
                    actions: &create,
                    state: &[],
                },
            )
            .await
            .expect("seed");
        guids.push(out.actions[0].ticket_guid.clone());
    }
    guids
}

/// Deliveries per second for one trial.
async fn trial(
    store: &Store,
    applier: &Applier,
    guids: &[String],
    batch: usize,
    trial: usize,
) -> f64 {
    let deliveries: Vec<(String, Vec<Action>)> = (0..DELIVERIES)
        .map(|i| (format!("t{trial}-b{batch}-{i}"), delivery(i, guids)))
        .collect();
    let started = Instant::now();
    for chunk in deliveries.chunks(batch) {
        let inputs: Vec<ApplyInput<'_>> = chunk
            .iter()
            .map(|(id, actions)| ApplyInput {
                delivery_id: Some(id),
                origin: Some("bitbucket"),
                mapper_hash: Some("bench"),
                actions,
                state: &[],
            })
            .collect();
        if batch == 1 {
            applier.apply(store, inputs[0]).await.expect("apply");
        } else {
            for r in applier.apply_batch(store, &inputs).await {
                r.expect("apply");
            }
        }
    }
    DELIVERIES as f64 / started.elapsed().as_secs_f64()
}

async fn statement_cost(url: &str) -> Duration {
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    for _ in 0..200 {
        conn.execute("SELECT 1").await.expect("select");
    }
    let n = 2_000;
    let started = Instant::now();
    for _ in 0..n {
        conn.execute("SELECT 1").await.expect("select");
    }
    started.elapsed() / n
}

async fn run(label: &str, url: &str) {
    let store = Store::open(url).await.expect("open store");
    let applier = Applier::default();
    let guids = seed(&store, &applier).await;
    for batch in [1, BATCH] {
        let mut rates = Vec::new();
        for t in 0..TRIALS {
            rates.push(trial(&store, &applier, &guids, batch, t).await);
        }
        rates.sort_by(f64::total_cmp);
        let median = rates[TRIALS / 2];
        println!(
            "{label:<10} {:<22} median {:>7.0} deliveries/s = {:>7.0} actions/s  (trials: {})",
            if batch == 1 {
                "1 delivery / tx".to_owned()
            } else {
                format!("{batch} deliveries / tx")
            },
            median,
            median * 3.0,
            rates
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let conn_url = if url.starts_with("postgres") {
        url.to_owned()
    } else {
        format!("sqlite://{url}")
    };
    println!(
        "{label:<10} one `SELECT 1` round trip: {:.1} µs",
        statement_cost(&conn_url).await.as_secs_f64() * 1e6
    );
    store.close().await;
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to configure.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = dir.path().join("bench.db");
        run("sqlite", sqlite.to_str().expect("utf-8 path")).await;

        let admin = std::env::var("SLUICE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("sluice_bench_{}", std::process::id());
        let mut conn = sqlx::AnyConnection::connect(&admin)
            .await
            .expect("PostgreSQL reachable");
        conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create database");
        let url = format!(
            "{}/{name}",
            admin.rsplit_once('/').expect("URL with a database").0
        );
        run("postgres", &url).await;
        conn.execute(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
            .await
            .expect("drop database");
    });
}
