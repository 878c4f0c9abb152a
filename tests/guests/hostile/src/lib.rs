//! A mapper that misbehaves on request. The mapper config names the
//! behaviour (`{"mode": "loop"}`); the host's sandbox tests drive every
//! mode and check that only that call fails.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};

use mapper_kit::{
    Action, ApiError, ApiRequest, CreateTicket, Delivery, Guest, LogLevel, MapError, MapResult,
    OutboundRequest, Priority, TicketChange, comment, mapped, ticket_ref,
};

struct Hostile;

mapper_kit::bindings::export!(Hostile with_types_in mapper_kit::bindings);

/// Survives between calls only if the host reuses an instance.
static CALLS: AtomicU32 = AtomicU32::new(0);

fn note(text: String) -> Action {
    comment(
        &ticket_ref(None, Some("feat/ticket-t1".into())),
        text,
        "hostile@example.com".into(),
        None,
    )
}

/// A new ticket: needs no ticket to exist, so it applies anywhere.
fn ticket(subject: String) -> Action {
    Action::Create(CreateTicket {
        subject,
        description: String::new(),
        priority: Priority::Low,
        ticket_type: "TASK".into(),
        requested_by: None,
        external_id: None,
        labels: Vec::new(),
    })
}

fn mode(config: &str) -> &str {
    // No JSON parser on purpose: keep this guest tiny and obvious.
    config
        .split('"')
        .skip_while(|s| *s != "mode")
        .nth(2)
        .unwrap_or("ok")
}

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    // black_box defeats tail-call and constant folding.
    black_box(depth) + recurse(black_box(depth + 1))
}

impl Guest for Hostile {
    fn map_to_ticket_event(delivery: Delivery, config: String) -> MapResult {
        let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        match mode(&config) {
            "ok" => mapped("ok", vec![note(format!("{} bytes", delivery.body.len()))]),
            "calls" => mapped("calls", vec![note(calls.to_string())]),
            "loop" => loop {
                black_box(calls);
            },
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "recursion" => mapped("never", vec![note(recurse(0).to_string())]),
            // Blocks in WASI (`wasi:clocks` subscribe + `poll`): no wasm
            // runs, so only a wall-clock deadline can end it.
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                mapped("slept", vec![note("woke".into())])
            }
            // One provider-api call; the host's test API never answers it.
            "hang_api" => {
                let request = ApiRequest {
                    method: "GET".into(),
                    path: "/hang".into(),
                    headers: Vec::new(),
                    body: Vec::new(),
                };
                let answer = match mapper_kit::provider_api(&request) {
                    Ok(r) => format!("status {}", r.status),
                    Err(e) => format!("{e:?}"),
                };
                mapped("api", vec![note(answer)])
            }
            "panic" => panic!("boom: the hostile mapper gave up on purpose"),
            "huge_output" => {
                let big = "x".repeat(20_000);
                mapped("huge", (0..100).map(|_| note(big.clone())).collect())
            }
            "many_actions" => mapped("many", (0..300).map(|i| note(i.to_string())).collect()),
            "stdout_flood" => loop {
                println!("flooding the host's log with a line that never ends {calls}");
            },
            "log_flood" => {
                for i in 0..10_000 {
                    mapper_kit::log(LogLevel::Info, &format!("log line {i} {}", "y".repeat(100)));
                }
                mapped("logged", Vec::new())
            }
            "api_budget" => {
                let mut answered = 0;
                let mut first_error = String::from("none");
                for i in 0..100 {
                    let request = ApiRequest {
                        method: "GET".into(),
                        path: format!("/items/{i}"),
                        headers: Vec::new(),
                        body: Vec::new(),
                    };
                    match mapper_kit::provider_api(&request) {
                        Ok(_) => answered += 1,
                        Err(e) => {
                            first_error = match e {
                                ApiError::BudgetExhausted => "budget_exhausted".into(),
                                other => format!("{other:?}"),
                            };
                            break;
                        }
                    }
                }
                mapped(
                    "api",
                    vec![note(format!("answered={answered} then={first_error}"))],
                )
            }
            "escape" => {
                // Everything a sandboxed guest must not see or reach.
                let env = std::env::vars().count();
                let args = std::env::args().count();
                let fs = std::fs::read_dir("/").is_ok() || std::fs::read("/etc/passwd").is_ok();
                let net = std::net::TcpStream::connect("127.0.0.1:5432").is_ok();
                mapped(
                    "escape",
                    vec![note(format!("env={env} args={args} fs={fs} net={net}"))],
                )
            }
            "stderr_then_error" => {
                eprintln!("hostile: about to refuse");
                Err(MapError {
                    kind: mapper_kit::MapErrorKind::Internal,
                    message: "refused".into(),
                })
            }
            "echo_request" => {
                // What a careless mapper might do with its input: log every
                // header and put the path and headers into a ticket.
                let mut seen = format!("path={}", delivery.path);
                for h in &delivery.headers {
                    mapper_kit::log(LogLevel::Info, &format!("header {}: {}", h.name, h.value));
                    seen.push_str(&format!("\n{}: {}", h.name, h.value));
                }
                mapped(
                    "echo",
                    vec![Action::Create(CreateTicket {
                        subject: "what the mapper saw".into(),
                        description: seen,
                        priority: Priority::Low,
                        ticket_type: "TASK".into(),
                        requested_by: None,
                        external_id: None,
                        labels: Vec::new(),
                    })],
                )
            }
            "cursor" => {
                // Advances state `cursor` by one; a body of `fail` refuses
                // after the write (which must then not stick), `empty`
                // advances without an action.
                let seen = mapper_kit::state_get("cursor");
                let next = seen.as_deref().map_or(0, |v| v.parse::<u64>().unwrap_or(0)) + 1;
                let won = mapper_kit::state_set("cursor", Some(&next.to_string()), seen.as_deref());
                match delivery.body.as_slice() {
                    b"fail" => Err(mapper_kit::internal("refused after writing")),
                    b"empty" => mapped("cursor", Vec::new()),
                    _ => mapped("cursor", vec![ticket(format!("cursor {next} won={won}"))]),
                }
            }
            "person" => {
                // Looks the body up as a `hostile` identity, then as an e-mail.
                let key = String::from_utf8_lossy(&delivery.body).into_owned();
                let person = mapper_kit::find_person(&mapper_kit::PersonKey::Identity(
                    mapper_kit::Identity {
                        provider: "hostile".into(),
                        id: key.clone(),
                    },
                ))
                .or_else(|| mapper_kit::find_person(&mapper_kit::PersonKey::Email(key.clone())));
                match person {
                    Some(p) => mapped(
                        "person",
                        vec![ticket(format!(
                            "{} {}",
                            p.email,
                            p.name.unwrap_or_default()
                        ))],
                    ),
                    None => Err(mapper_kit::bad_config(format!("nobody is `{key}`"))),
                }
            }
            other => Err(mapper_kit::bad_config(format!("unknown mode `{other}`"))),
        }
    }

    fn map_from_ticket_event(
        _change: TicketChange,
        _config: String,
    ) -> Result<Vec<OutboundRequest>, MapError> {
        Ok(Vec::new())
    }
}
