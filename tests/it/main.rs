//! Sluice's integration suite: the real runtime, the real `host` binary and
//! real components built from `mappers/` and `tests/guests/`.

mod helpers;
mod mappers;
mod runtime;
mod test_mapper;
