//! The simulation harness: the simulated network and its faults, cluster
//! control (Raft alone, and the KV service), client histories and their
//! linearizability checker, and what runs print. Reaches Raft only through
//! [`crate::raft::Consensus`] and [`crate::raft::MakeRaft`].

pub mod bench;
pub mod campaign;
pub mod check_cmd;
pub mod checker;
pub mod edn;
pub mod history;
pub mod kv_cluster;
pub mod network;
pub mod raft_cluster;
pub mod report;
pub mod scenario;
pub mod shrink;
pub mod spec;
pub mod swarm;
pub mod timeline;
