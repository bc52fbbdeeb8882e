//! Every test of the crate, in one binary (one link instead of nine): the
//! ported 6.5840 suites, the harness's own tests and the checker's. Filter
//! by module, e.g. `cargo test --release --test suite -- kv_4a::`.

/// Instantiates each named test once per Raft, as `ours::test` and
/// `raft_rs::test`, each calling `super::test(raft)`.
macro_rules! on_each_raft {
    ($($test:ident),* $(,)?) => {
        mod ours {
            use kvraft::sim::rafts::RaftKind;
            $(#[madsim::test] async fn $test() { super::$test(RaftKind::OURS).await })*
        }
        mod raft_rs {
            use kvraft::sim::rafts::RaftKind;
            $(#[madsim::test] async fn $test() { super::$test(RaftKind::RAFT_RS).await })*
        }
    };
}

/// The name the test harness knows a test by, for a test instantiated by
/// `on_each_raft!` in `module` (e.g. `kv_4a::ours::basic_4a`).
fn test_name(module: &str, raft: kvraft::sim::rafts::RaftKind, test: &str) -> String {
    // The module `on_each_raft!` made for it: the Raft's name as a Rust
    // identifier.
    let variant = raft.name().replace('-', "_");
    format!("{module}::{variant}::{test}")
}

#[macro_use]
mod support;

mod checker;
mod disk;
mod guided;
mod kv_4a;
mod kv_more;
mod late;
mod monitor;
mod raft_3a;
mod raft_3b;
mod raft_3c;
mod raft_core;
mod raft_rs;
mod regressions;
mod tool;
