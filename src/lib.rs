//! kvraft: a Raft-replicated key/value service and the deterministic
//! simulation harness (on madsim) that tests it.
//!
//! Layers, each using only those before it: [`net`] (RPC transport),
//! [`raft`] (consensus) and [`raft_rs`] (tikv's raft-rs behind the same
//! interface), [`kv`] (the service); [`check`] (the
//! linearizability checker, which needs nothing else of the crate); [`sim`]
//! (the simulated world: network, faults, clusters); [`campaign`] (run specs,
//! their executor, campaigns, shrinking, reports); [`bench`] (the speed
//! figures); [`cli`] (the command line, for this crate's `kvraft` and for a
//! user's own binary).

pub mod net;
pub mod raft;
pub mod raft_rs;
pub mod kv;
pub mod check;
pub mod sim;
pub mod campaign;
pub mod bench;
pub mod cli;
