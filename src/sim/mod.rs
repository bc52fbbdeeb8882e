//! The simulated world: its hosts' addresses ([`addr`]), the network and
//! its fault model ([`network`]), the servers' nodes with their one crash
//! and restart path ([`fleet`]), a cluster of Raft servers
//! ([`raft_cluster`], 6.5840's Raft tester) and of KV servers
//! ([`kv_cluster`], its KV tester) with their recorded clerks
//! ([`test_clerk`]), the protocol-moment traps a nemesis arms ([`traps`]),
//! and what a running simulation says about itself ([`context`]); the
//! [`monitor`] checks Raft's safety properties inside every run and counts
//! the rare situations it reached, by [`property`]; a run's [`failure`]
//! is typed data from where it is found to the report; [`rafts`] names
//! the Rafts it can run;
//! [`trace`] records what happened around the clients (faults, crashes,
//! leaders) and, when asked, a per-server trace. It runs things and hands
//! results up; checking and reporting them is the campaign's job.
//! Reaches a Raft only through [`crate::raft::Consensus`] and
//! [`crate::raft::MakeRaft`], and the disk it hands every Raft, the
//! [`crate::raft::persister::Persister`] (whose crashes it simulates).

pub mod addr;
pub mod context;
pub mod failure;
pub mod fleet;
pub mod kv_cluster;
pub mod monitor;
pub mod network;
pub mod property;
pub mod raft_cluster;
pub mod rafts;
pub mod test_clerk;
pub mod trace;
pub mod traps;
