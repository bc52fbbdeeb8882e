//! The test clerk: a [`Clerk`] whose every op goes into the run's
//! recorded history, with its call and return times, the server that
//! answered and where in the log it was applied. A
//! [`KvCluster`](super::kv_cluster::KvCluster) makes them
//! (`make_client`), each on a node of its own.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::failure::Failure;
use crate::check::history::{OpKind, Recorder};
use crate::kv::{Answer, Clerk, KvOp};
use crate::raft::{Index, Term};

/// One clerk in this many (the last of each group: clerks 3, 7, 11, ...)
/// makes its ops through the clerk's public calls (`get`, `put`, `append`),
/// as an application would, so that every run with four clerks or more
/// exercises them; the others use [`Clerk::call_answer`], which also says
/// who answered and where the op was applied.
pub const PUBLIC_CALLS_EVERY: usize = 4;

/// A clerk whose every op is recorded in the cluster's history, with the
/// server that answered it and where in the log it was applied (except for
/// the clerks that use the public calls: see [`PUBLIC_CALLS_EVERY`]).
pub struct TestClerk {
    pub(super) clerk: Clerk,
    /// Which clerk of the cluster it is (0, 1, ...).
    pub(super) index: usize,
    pub(super) recorder: Recorder,
    /// When the run's op times start.
    pub(super) t0: Instant,
    /// Server addresses by server id.
    pub(super) servers: Vec<SocketAddr>,
    /// See [`KvOptions::op_deadline`](super::kv_cluster::KvOptions::op_deadline).
    pub(super) deadline: Option<Duration>,
}

impl TestClerk {
    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// Which clerk of the cluster it is (0, 1, ...): its node is at
    /// [`clerk_addr`](super::addr::clerk_addr) of it.
    pub fn index(&self) -> usize {
        self.index
    }

    async fn op(&mut self, kind: OpKind, op: KvOp, key: &str, value: &str) -> Option<String> {
        let called = self.now_ns();
        let id = self.recorder.call(self.index as u64, kind, key.to_string(), value.to_string(), called);
        let (index, deadline) = (self.index, self.deadline);
        let answer = self.answer(op);
        let (value, server, at) = match deadline {
            None => answer.await,
            Some(d) => match tokio::time::timeout(d, answer).await {
                Ok(a) => a,
                Err(_) => Failure::liveness(format!(
                    "clerk {index}'s {kind:?} of key {key:?}, called at {:.3} s, still pending {} s later (virtual time), the most an op may take in this run",
                    called as f64 / 1e9,
                    d.as_secs_f64()
                ))
                .raise(),
            },
        };
        let returned = self.now_ns();
        // Every answer comes from a server, over the network: an op that
        // took no virtual time was answered by no one (and a workload whose
        // ops take no time never lets time move on).
        assert!(returned > called, "clerk {index}'s {kind:?} of key {key:?} returned at {:.3} s in no virtual time: no server can have answered it", called as f64 / 1e9);
        self.recorder.ret_from(id, value.clone(), returned, server, at);
        value
    }

    /// Carries out `op`: its result, and (but for the clerks that use the
    /// public calls) the server that answered and where it was applied.
    async fn answer(&mut self, op: KvOp) -> (Option<String>, Option<u64>, Option<(Term, Index)>) {
        if self.index % PUBLIC_CALLS_EVERY == PUBLIC_CALLS_EVERY - 1 {
            // As an application calls a clerk: no word of who answered.
            let value = match op {
                KvOp::Get { key } => Some(self.clerk.get(&key).await),
                KvOp::Put { key, value } => {
                    self.clerk.put(&key, &value).await;
                    None
                }
                KvOp::Append { key, value } => {
                    self.clerk.append(&key, &value).await;
                    None
                }
            };
            return (value, None, None);
        }
        let Answer { value, server, at } = self.clerk.call_answer(op).await;
        let server = self.servers.iter().position(|a| *a == server).map(|i| i as u64);
        (value, server, at.map(|p| (p.term, p.index)))
    }

    /// Gets `key`'s value ("" if it has none), recorded.
    pub async fn get(&mut self, key: &str) -> String {
        self.op(OpKind::Get, KvOp::Get { key: key.to_string() }, key, "").await.unwrap_or_default()
    }

    /// Puts `value` at `key`, recorded.
    pub async fn put(&mut self, key: &str, value: &str) {
        self.op(OpKind::Put, KvOp::Put { key: key.to_string(), value: value.to_string() }, key, value).await;
    }

    /// Appends `value` to `key`'s value, recorded.
    pub async fn append(&mut self, key: &str, value: &str) {
        self.op(OpKind::Append, KvOp::Append { key: key.to_string(), value: value.to_string() }, key, value).await;
    }
}
