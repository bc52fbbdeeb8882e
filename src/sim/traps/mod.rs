//! Protocol-moment traps: nemeses that act in the very step a server
//! reaches a moment of the protocol (a leader takes an entry, a server
//! applies beyond an index, a leader's AppendEntries rewrites a log),
//! which no schedule of faults can hit but by luck.
//!
//! Each trap is a [`Trap`] in a file of its own: the moments it watches
//! are its hooks, and when one fires it acts on the cluster in that same
//! step, through what the harness owns (the network, the run log and the
//! monitor of its [`Kit`], the server's disk). A nemesis arms it, and waits
//! for it, through the trap's own calls, finding it with [`Traps::get`]
//! (`KvCluster::trap`). [`standard`] is the one place the traps are
//! registered: a new one is a new file here and a line there.
//!
//! The cluster wraps every Raft it boots in a [`Traps::wrap`] (its
//! `start`) and calls [`Traps::event`] and [`Traps::applied`] on the
//! server's event and apply paths: a trap reaches a Raft only through
//! [`Consensus`], [`MakeRaft`] and what it reports, as the rest of the
//! simulation does.

use std::any::Any;
use std::sync::Arc;

use super::monitor::Monitor;
use super::network::SimNetwork;
use super::trace::RunLog;
use crate::raft::persister::WriteKind;
use crate::raft::{ApplyMsg, Consensus, Index, MakeArgs, MakeRaft, Persister, RaftEvent, Term};

pub mod append;
pub mod commit;
pub mod rewrite;
pub mod write;

pub use append::AppendTrap;
pub use commit::CommitTrap;
pub use rewrite::RewriteTrap;
pub use write::{WriteMoment, WriteTrap};

/// A protocol-moment trap. What it watches: the hooks below, each called on
/// server `server`'s own path in the step the moment happens, with the
/// server's disk (`disk`, the [`Persister`] its Raft was given). When it
/// fires: in that hook, acting on the cluster through the disk and what it
/// was built with (see [`Kit`]), before anything else can happen. A hook a
/// trap does not override does nothing; none may block or call back into
/// the Raft (they run inside its step).
pub trait Trap: Any + Send + Sync {
    /// `start` on the server took a command and gave out `index`: the
    /// leader appended it, and nothing has been sent yet.
    fn started(&self, _server: usize, _disk: &Persister, _index: Index) {}

    /// The server's Raft reported `e` (see [`crate::raft::EventSink`]),
    /// before the monitor sees it.
    fn event(&self, _server: usize, _disk: &Persister, _e: &RaftEvent) {}

    /// The server applied `m`: after the monitor checked it, before the KV
    /// server sees it.
    fn applied(&self, _server: usize, _disk: &Persister, _m: &ApplyMsg) {}

    /// The server's Raft wrote `kind` to its disk, which now holds `end`
    /// records (see [`crate::raft::persister::WriteHook`]); not yet synced.
    fn written(&self, _server: usize, _disk: &Persister, _kind: WriteKind, _end: usize) {}
}

/// What of the harness a trap is built with.
#[derive(Clone)]
pub struct Kit {
    /// The cluster's network (to cut a server off, say).
    pub net: Arc<SimNetwork>,
    /// The run's log: a trap that fires records a world event.
    pub log: RunLog,
    /// The monitor (to note a situation a trap reached).
    pub monitor: Monitor,
    /// How many servers the cluster has.
    pub servers: usize,
}

/// The traps every KV cluster has: the one place they are registered.
pub fn standard(kit: &Kit) -> Traps {
    // The hooks are called in this order.
    let commit = Arc::new(CommitTrap::new(kit));
    let rewrite = Arc::new(RewriteTrap::new(kit, commit.clone()));
    let append = Arc::new(AppendTrap::new(kit));
    let write = Arc::new(WriteTrap::new(kit));
    Traps(Arc::new(vec![commit, rewrite, append, write]))
}

/// A cluster's traps, in the order their hooks are called. Clones share them.
#[derive(Clone)]
pub struct Traps(Arc<Vec<Arc<dyn Trap>>>);

impl Traps {
    /// The trap of type `T`, if it is one of these.
    pub fn get<T: Trap>(&self) -> Option<Arc<T>> {
        self.0.iter().find_map(|t| {
            let any: Arc<dyn Any + Send + Sync> = t.clone();
            any.downcast::<T>().ok()
        })
    }

    /// Calls every trap's [`Trap::started`].
    pub fn started(&self, server: usize, disk: &Persister, index: Index) {
        for t in self.0.iter() {
            t.started(server, disk, index);
        }
    }

    /// Calls every trap's [`Trap::event`].
    pub fn event(&self, server: usize, disk: &Persister, e: &RaftEvent) {
        for t in self.0.iter() {
            t.event(server, disk, e);
        }
    }

    /// Calls every trap's [`Trap::applied`].
    pub fn applied(&self, server: usize, disk: &Persister, m: &ApplyMsg) {
        for t in self.0.iter() {
            t.applied(server, disk, m);
        }
    }

    /// Calls every trap's [`Trap::written`].
    pub fn written(&self, server: usize, disk: &Persister, kind: WriteKind, end: usize) {
        for t in self.0.iter() {
            t.written(server, disk, kind, end);
        }
    }

    /// `make`, with every Raft it makes seen through these traps: each
    /// index its `start` gives out goes to [`Traps::started`], each write to
    /// its disk to [`Traps::written`].
    pub fn wrap(&self, make: MakeRaft) -> MakeRaft {
        let traps = self.clone();
        Arc::new(move |a: MakeArgs| {
            let (me, disk) = (a.me, a.persister.clone());
            let watch = traps.clone();
            disk.on_write(Arc::new(move |d: &Persister, kind, end| watch.written(me, d, kind, end)));
            let inner = make(a)?;
            Ok(Arc::new(Trapped { inner, me, disk, traps: traps.clone() }) as Arc<dyn Consensus>)
        })
    }
}

/// A Raft seen through the traps; everything else passes through.
struct Trapped {
    inner: Arc<dyn Consensus>,
    me: usize,
    /// The disk its Raft was given.
    disk: Persister,
    traps: Traps,
}

impl Consensus for Trapped {
    fn start(&self, command: Vec<u8>) -> Option<(Index, Term)> {
        let r = self.inner.start(command);
        if let Some((index, _)) = r {
            self.traps.started(self.me, &self.disk, index);
        }
        r
    }
    fn state(&self) -> (Term, bool) {
        self.inner.state()
    }
    fn kill(&self) {
        self.inner.kill()
    }
    fn reports_events(&self) -> bool {
        self.inner.reports_events()
    }
    fn log_terms(&self, upto: Index) -> Option<Vec<Term>> {
        self.inner.log_terms(upto)
    }
}
