//! Every test of the crate, in one binary (one link instead of nine): the
//! ported 6.5840 suites, the harness's own tests and the checker's. Filter
//! by module, e.g. `cargo test --release --test suite -- kv_4a::`.

mod checker;
mod disk;
mod kv_4a;
mod kv_more;
mod monitor;
mod raft_3a;
mod raft_3b;
mod raft_3c;
mod raft_core;
mod raft_rs;
mod regressions;
mod tool;
