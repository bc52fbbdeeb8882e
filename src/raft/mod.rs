//! Consensus: the Raft state machine ([`core`]), its async driver ([`node`]),
//! durable state ([`persister`], the simulated disk every Raft is given) and
//! messages. The harness and the KV service reach a Raft only through
//! [`Consensus`] and [`MakeRaft`] (this one's is [`make`]), so another Raft
//! can be plugged in behind the same interface.

pub mod core;
pub mod message;
pub mod node;
pub mod persister;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

pub use message::{ApplyMsg, Index, PeerId, RaftEvent, Role, Situation, Term};
pub use node::{NodeConfig, RaftNode, RAFT_SERVICE};
pub use persister::Persister;

use crate::net::Transport;

/// What the service and the tester need of a Raft server (6.5840's interface).
pub trait Consensus: Send + Sync + 'static {
    /// Proposes `command`; returns at once with (index, term) if this server
    /// believes it is the leader, None otherwise. No promise it commits.
    fn start(&self, command: Vec<u8>) -> Option<(Index, Term)>;
    /// (current term, whether this server believes it is the leader).
    fn state(&self) -> (Term, bool);
    /// Stops the server: it answers nothing and applies nothing more.
    fn kill(&self);

    // What follows is optional: a Raft that cannot answer keeps the
    // defaults, and the harness checks less (and says so).

    /// Whether this Raft reports every change of its role or term, as it
    /// happens, through [`MakeArgs::events`]. If not, the harness polls
    /// [`state`](Self::state) of every server every 10 ms of virtual time.
    /// If so, the harness holds it to its reports: at each apply, the entry
    /// must have been reported committed and [`state`](Self::state) must
    /// answer the last role and term reported (events are reported before
    /// the applies of the step that caused them); a report says what
    /// changed (a role report changes the role or the term, a commit report
    /// advances the commit index), and terms and commit indexes never go
    /// back; a situation is reported in the role it happens in, before any
    /// role change it causes; and what it says shows (see [`Situation`]:
    /// the entry a leader's situation is about is applied with an earlier
    /// term, a vote refused for the candidate's log is reported just before
    /// the refusal's [`RaftEvent::Vote`], for a request of the voter's own
    /// term).
    fn reports_events(&self) -> bool {
        false
    }

    /// The terms of this server's log entries at indexes 1..=`upto` (fewer
    /// if its log is shorter), or None if this Raft cannot tell. The harness
    /// uses it to check leader completeness.
    fn log_terms(&self, _upto: Index) -> Option<Vec<Term>> {
        None
    }

    /// The term of this server's log entry at `index`: `Some(None)` if its
    /// log has no entry there, None if this Raft cannot tell (as
    /// [`log_terms`](Self::log_terms)). The harness asks it of every
    /// server at each index's first apply, to check that the entry is on a
    /// majority of logs; the default goes through `log_terms`, so a Raft
    /// that lists its log may answer this in O(1) instead.
    fn log_term(&self, index: Index) -> Option<Option<Term>> {
        let terms = self.log_terms(index)?;
        Some(index.checked_sub(1).and_then(|i| terms.get(i as usize).copied()))
    }
}

/// Where a Raft reports what happens to it (see [`RaftEvent`]). It is called
/// synchronously, in order, and must not call back into the Raft.
pub type EventSink = Arc<dyn Fn(RaftEvent) + Send + Sync>;

/// A sink that drops every event.
pub fn no_events() -> EventSink {
    Arc::new(|_| {})
}

/// Everything a Raft implementation is given at boot.
pub struct MakeArgs {
    /// This node's RPC endpoint (Raft registers its service on it).
    pub transport: Arc<Transport>,
    /// The servers' addresses, indexed by server id.
    pub peers: Vec<SocketAddr>,
    pub me: PeerId,
    pub persister: Persister,
    pub apply_tx: mpsc::UnboundedSender<ApplyMsg>,
    /// Where to report role and term changes and rare situations (optional:
    /// a Raft that reports nothing may ignore it).
    pub events: EventSink,
    /// How fast this node's clock runs against true time (1: exactly; the
    /// harness draws it to simulate drift). A Raft scales its timers by it:
    /// a period of d on this node's clock is d / clock_rate of true time.
    pub clock_rate: f64,
}

impl MakeArgs {
    /// How long a period of `d` on this node's clock lasts in true time
    /// (`d / clock_rate`): what a Raft sets its timers to.
    pub fn local_time(&self, d: Duration) -> Duration {
        d.div_f64(self.clock_rate.max(0.01))
    }
}

/// Builds a Raft server on the current node.
pub type MakeRaft = Arc<dyn Fn(MakeArgs) -> Result<Arc<dyn Consensus>, String> + Send + Sync>;

/// This crate's Raft as a [`MakeRaft`].
pub fn make() -> MakeRaft {
    Arc::new(|a: MakeArgs| {
        let mut cfg = NodeConfig::default();
        cfg.tick = a.local_time(cfg.tick);
        RaftNode::make(a.transport, a.peers, a.me, a.persister, a.apply_tx, a.events, cfg)
            .map(|n| Arc::new(n) as Arc<dyn Consensus>)
            .map_err(|e| format!("server {}: {e}", a.me))
    })
}
