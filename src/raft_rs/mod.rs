//! tikv's raft-rs (crate `raft` 0.7) run behind this crate's [`Consensus`]
//! interface, so that the harness can test a Raft nobody here wrote: its
//! state lives in the harness's [`Persister`](crate::raft::Persister), its
//! one-way protobuf messages travel over the node's [`Transport`] on
//! [`RAFT_RS_SERVICE`] (so every simulated fault applies to them), and its
//! clock is a madsim timer.
//!
//! Differences from this crate's Raft that a service must know:
//! - raft-rs appends an empty entry whenever a node becomes leader. It is
//!   delivered like any committed entry, as an [`ApplyMsg`] with an EMPTY
//!   `command`, so applied indexes stay 1, 2, 3, ... without gaps; a service
//!   must treat an empty command as a no-op. The first command of a fresh
//!   cluster therefore lands at index 2, not 1.
//! - Raft ids are server ids + 1 (raft-rs reserves 0 for "none").
//! - Pre-vote is on, check-quorum is off (as in this crate's Raft): a
//!   leader cut off from a majority goes on leading its minority, commits
//!   nothing there, and steps down when it hears of a later term. The KV
//!   service reads through the log, not from a leader's lease, so it needs
//!   no check-quorum. With it on, loss and long reordering made raft-rs
//!   leaders step down again and again, and runs took up to three times
//!   as long per op (seeds 40010386 and 40011351 in
//!   `sim-tests/regressions.json`).
//! - The log is never compacted and membership never changes.
//! - It reports its role and term changes, and the rare situations visible
//!   from outside raft-rs (a candidate campaigning again, a leader elected
//!   with entries beyond its commit index, a follower dropping a
//!   conflicting suffix), and lists its log's terms for the harness.
//!
//! Runs are reproducible from the madsim seed: raft-rs's own random
//! election timeout (drawn from an OS-seeded generator) is replaced by one
//! from madsim's generator before it is ever read (see
//! `driver::Inner::pin_election_timeout`), and raft-rs logs to a discarding
//! logger, so it reads no clock.

mod driver;
pub mod storage;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raft::StateRole;
use tokio::sync::mpsc;

pub use driver::{peer_of, raft_id, RAFT_RS_SERVICE};
use driver::Inner;
use storage::PersistedStorage;

use crate::net::Transport;
use crate::raft::{ApplyMsg, Consensus, EventSink, Index, MakeArgs, MakeRaft, PeerId, Persister, Term};

/// Timing of the adapter, in ticks of `tick`.
#[derive(Clone, Debug)]
pub struct RaftRsConfig {
    pub tick: Duration,
    /// Election timeouts are drawn from [election_ticks, 2 * election_ticks).
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// Most bytes of entries in one append message (at least one entry goes).
    pub max_size_per_msg: u64,
    pub max_inflight_msgs: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// Test-only: keep raft-rs's own (OS-seeded) election timeouts, to show
    /// that the determinism check catches them.
    #[doc(hidden)]
    pub unseeded_election_timeouts: bool,
}

impl Default for RaftRsConfig {
    fn default() -> Self {
        // 10 ms ticks: elections after 300-600 ms, heartbeats every 100 ms,
        // like this crate's Raft.
        RaftRsConfig {
            tick: Duration::from_millis(10),
            election_ticks: 30,
            heartbeat_ticks: 10,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            pre_vote: true,
            check_quorum: false,
            unseeded_election_timeouts: false,
        }
    }
}

/// A server's role, as raft-rs sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// One raft-rs server on a madsim node. Clones share the server.
#[derive(Clone)]
pub struct RaftRsNode {
    inner: Arc<Mutex<Inner>>,
}

/// raft-rs behind a [`MakeRaft`], with the default [`RaftRsConfig`].
pub fn make() -> MakeRaft {
    make_with(RaftRsConfig::default())
}

/// raft-rs behind a [`MakeRaft`], with the given timing.
pub fn make_with(cfg: RaftRsConfig) -> MakeRaft {
    Arc::new(move |a: MakeArgs| {
        let cfg = RaftRsConfig { tick: a.local_time(cfg.tick), ..cfg.clone() };
        RaftRsNode::start(a.transport, a.peers, a.me, a.persister, a.apply_tx, a.events, &cfg)
            .map(|n| Arc::new(n) as Arc<dyn Consensus>)
            .map_err(|e| format!("server {}: {e}", a.me))
    })
}

impl RaftRsNode {
    /// Starts server `me` of `peers` on the current node, recovering from
    /// `persister`; committed entries arrive on `apply_tx` from index 1 on,
    /// in order, once per boot.
    pub fn start(
        transport: Arc<Transport>,
        peers: Vec<SocketAddr>,
        me: PeerId,
        persister: Persister,
        apply_tx: mpsc::UnboundedSender<ApplyMsg>,
        events: EventSink,
        cfg: &RaftRsConfig,
    ) -> Result<RaftRsNode, String> {
        if me >= peers.len() {
            return Err(format!("server id {me} out of range for {} peers", peers.len()));
        }
        let voters: Vec<u64> = (0..peers.len()).map(raft_id).collect();
        let store = PersistedStorage::recover(persister, &voters).map_err(|e| e.to_string())?;
        let election_ticks = (cfg.election_ticks, 2 * cfg.election_ticks);
        let config = raft::Config {
            id: raft_id(me),
            election_tick: cfg.election_ticks,
            heartbeat_tick: cfg.heartbeat_ticks,
            min_election_tick: election_ticks.0,
            max_election_tick: election_ticks.1,
            max_size_per_msg: cfg.max_size_per_msg,
            max_inflight_msgs: cfg.max_inflight_msgs,
            pre_vote: cfg.pre_vote,
            check_quorum: cfg.check_quorum,
            // Everything committed is applied again after a restart.
            applied: 0,
            ..Default::default()
        };
        config.validate().map_err(|e| format!("raft-rs config: {e}"))?;
        // raft-rs logs through slog; discarding keeps it quiet and keeps
        // timestamps (wall clock) out of the simulation.
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = raft::RawNode::new(&config, store, &logger).map_err(|e| format!("raft-rs: {e}"))?;
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let mut inner = Inner::new(raw, me, peers, apply_tx, out_tx, election_ticks, cfg.unseeded_election_timeouts, events);
        // Committed entries recovered from the persister are applied at once.
        let held = inner.after_call();
        let inner = Arc::new(Mutex::new(inner));
        driver::settle(&inner, held);
        driver::spawn(inner.clone(), transport, out_rx, cfg.tick);
        Ok(RaftRsNode { inner })
    }

    pub fn role(&self) -> Role {
        match self.inner.lock().unwrap().raw.raft.state {
            StateRole::Follower => Role::Follower,
            StateRole::PreCandidate => Role::PreCandidate,
            StateRole::Candidate => Role::Candidate,
            StateRole::Leader => Role::Leader,
        }
    }

    /// The server this one believes leads (harness id), if any.
    pub fn leader(&self) -> Option<PeerId> {
        let g = self.inner.lock().unwrap();
        peer_of(g.raw.raft.leader_id, g.peers.len())
    }

    pub fn term(&self) -> Term {
        self.inner.lock().unwrap().raw.raft.term
    }

    pub fn commit_index(&self) -> Index {
        self.inner.lock().unwrap().raw.raft.raft_log.committed
    }

    /// Index of the last entry in the (persisted) log.
    pub fn last_index(&self) -> Index {
        self.inner.lock().unwrap().raw.store().last()
    }

    /// (term, command) of the entry at `index`; the command is empty for
    /// entries that carry none.
    pub fn entry(&self, index: Index) -> Option<(Term, Vec<u8>)> {
        let g = self.inner.lock().unwrap();
        g.raw.store().entry(index).map(|e| (e.term, e.data.to_vec()))
    }

    pub fn is_killed(&self) -> bool {
        self.inner.lock().unwrap().killed
    }
}

impl Consensus for RaftRsNode {
    fn start(&self, command: Vec<u8>) -> Option<(Index, Term)> {
        let mut g = self.inner.lock().unwrap();
        if g.killed || g.raw.raft.state != StateRole::Leader {
            return None;
        }
        // raft-rs's propose does not say where the entry lands: a leader
        // appends it right after its last entry, in its current term.
        let at = (g.raw.raft.raft_log.last_index() + 1, g.raw.raft.term);
        let r = g.raw.propose(Vec::new(), command);
        let landed = g.raw.raft.raft_log.last_index();
        // Send the append messages now rather than at the next tick.
        let held = g.after_call();
        driver::settle(&self.inner, held);
        match r {
            Ok(()) if landed == at.0 => Some(at),
            Ok(()) => {
                tracing::error!(server = g.me, expected = at.0, landed, "a proposal landed at an unexpected index");
                None
            }
            Err(_) => None,
        }
    }

    fn state(&self) -> (Term, bool) {
        let g = self.inner.lock().unwrap();
        (g.raw.raft.term, !g.killed && g.raw.raft.state == StateRole::Leader)
    }

    fn kill(&self) {
        self.inner.lock().unwrap().killed = true;
    }

    fn reports_events(&self) -> bool {
        true
    }

    fn log_terms(&self, upto: Index) -> Option<Vec<Term>> {
        let g = self.inner.lock().unwrap();
        let store = g.raw.store();
        Some((1..=upto.min(store.last())).map(|i| store.entry(i).map_or(0, |e| e.term)).collect())
    }

    fn log_term(&self, index: Index) -> Option<Option<Term>> {
        let g = self.inner.lock().unwrap();
        let store = g.raw.store();
        Some((index >= 1 && index <= store.last()).then(|| store.entry(index).map_or(0, |e| e.term)))
    }
}
