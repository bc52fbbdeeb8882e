//! The simulation harness: the simulated network and its faults, cluster
//! control, and what runs print. Reaches Raft only through
//! [`crate::raft::Consensus`] and [`crate::raft::MakeRaft`].

pub mod network;
pub mod raft_cluster;
pub mod report;
