//! Sluice's integration suite: the real runtime, the real `host` binary and
//! real components built from `mappers/` and `tests/guests/`.

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod api;
mod bounds;
mod cache;
mod conflicts;
mod crash;
mod db;
mod fake_api;
mod faults;
mod flow;
mod google;
mod helpers;
mod ingress;
mod inline;
mod itsm;
mod jira_sync;
mod liveness;
mod mappers;
mod oidc;
mod openapi;
mod outbound;
mod pachca_tracker;
mod people;
mod provider_api;
mod reload;
mod retention;
mod runtime;
mod schedule;
mod security;
mod serve;
mod status;
mod store;
mod sweeper;
mod test_mapper;
mod worker;
