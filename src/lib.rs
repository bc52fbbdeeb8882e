//! kvraft: a Raft-replicated key/value service and the deterministic
//! simulation harness (on madsim) that tests it.
//!
//! Layers, each using only those before it: [`net`] (RPC transport),
//! [`raft`] (consensus), [`sim`] (simulated cluster, faults, checks).

pub mod net;
pub mod raft;
pub mod raft_rs;
pub mod kv;
pub mod sim;
