//! Sluice: a WebAssembly-sandboxed mapping host for ticket integrations.
//!
//! Code map, in the order data flows:
//! - [`cli`]: the `host` commands; [`config`]: the YAML file.
//! - [`app`]: builds the server from a config and runs it until shutdown.
//! - [`api`]: the ticket API over HTTP (axum), behind bearer tokens.
//! - [`ingress`]: `POST /hooks/{provider}` — verification, dedupe, inbox.
//! - [`metrics`]: Prometheus counters and the mapper-call histogram.
//! - [`worker`]: maps stored deliveries and applies their actions, with
//!   retries and a dead letter.
//! - [`queue`]: what both workers share as leased queues (retry schedule,
//!   lease renewal).
//! - [`outbound`]: the host's one HTTP client — the live `provider-api`
//!   (a mapper's requests to its provider, with the configured base URL
//!   and credentials) — and the outbound worker, which sends the outbox's
//!   changes with each provider's `map-from-ticket-event`.
//! - [`reload`]: hot reload — where each provider's component comes from,
//!   the watcher, the canary, the registry of versions serving.
//! - [`mapper`]: the wasm runtime — one engine, components checked against
//!   the `sluice:mapper` world, a fresh sandboxed store per call, limits,
//!   the cache of precompiled artifacts.
//! - [`action`]: the canonical ticket actions and their JSON rendering;
//!   [`change`]: the ticket changes offered to outbound rules and the
//!   requests they answer with.
//! - [`people`]: the people directory mappers look people up in
//!   (`find-person`): stored, seeded from the config, held in memory.
//! - [`resolve`]: ticket resolution rules that need no storage (branches).
//! - [`tickets`]: applying actions — validation, resolution, status and RACI
//!   rules, history and outbox rows, one transaction per delivery.
//! - [`sync`]: two-way sync rules per provider — direction, conflict
//!   policies and their decision table, field mappings for the mapper.
//! - [`sweeper`]: the stale-ticket sweeper — rules on a schedule, notices
//!   recorded once per period as `stale` changes through the outbox.
//! - [`schedule`]: periodic ticks — scheduled pulls and reconciliation as
//!   `TICK` deliveries through the inbox, once per period — and the
//!   leader's loop that runs them and the sweeper on one replica.
//! - [`retention`]: the background task that drops old delivery bodies.
//! - [`store`]: SQLite and PostgreSQL through sqlx; the only module that
//!   knows SQL.
//! - [`fixture`]: `host test-mapper` — fixture files, comparison, reports;
//!   also the hot-reload canary.
//! - [`scaffold`]: `host new-mapper` — a new mapper project per language.
//! - [`shadow`]: `host replay --shadow` — stored deliveries through a
//!   candidate mapper, compared with the live output, nothing applied.

pub mod action;
pub mod api;
pub mod app;
pub mod change;
pub mod cli;
pub mod config;
pub mod fixture;
pub mod ingress;
pub mod mapper;
pub mod metrics;
pub mod outbound;
pub mod people;
pub mod queue;
pub mod redacted;
pub mod reload;
pub mod resolve;
pub mod retention;
pub mod scaffold;
pub mod schedule;
pub mod shadow;
pub mod store;
pub mod sweeper;
pub mod sync;
pub mod tickets;
pub mod worker;
