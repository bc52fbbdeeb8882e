//! The thin async driver that runs a [`RaftCore`] on a node: a ticker, the
//! RPC service for incoming requests, a task per outgoing request, and the
//! apply channel. All I/O happens here; all decisions happen in the core.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::mpsc;

use super::core::{Config, RaftCore, Ready};
use super::message::*;
use super::persister::{Persister, StorageError};
use super::{Consensus, EventSink};
use crate::net::{decode, encode, Transport};

/// The transport service id of Raft's RPCs.
pub const RAFT_SERVICE: u16 = 1;

/// Driver settings.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub tick: Duration,
    pub rpc_timeout: Duration,
    pub core: Config,
}

impl Default for NodeConfig {
    fn default() -> Self {
        // Replies may be held back for up to 2.2 s by long reordering; a
        // timeout past that lets late replies still count.
        NodeConfig { tick: Duration::from_millis(10), rpc_timeout: Duration::from_millis(2500), core: Config::default() }
    }
}

struct Inner {
    core: RaftCore,
    persister: Persister,
    apply_tx: mpsc::UnboundedSender<ApplyMsg>,
    out_tx: mpsc::UnboundedSender<(PeerId, Request)>,
    events: EventSink,
    killed: bool,
}

/// What a step left waiting for the disk: everything written up to write
/// `seq` (the log up to `index`, of `term`) must be durable before the
/// `late` messages go.
struct Pending {
    seq: usize,
    index: Index,
    term: Term,
    late: Vec<(PeerId, Request)>,
}

impl Inner {
    /// Carries out a Ready in the order Raft needs. Its state is written at
    /// once and synced in the background; what depends on it waits: vote
    /// requests (every message but a leader's AppendEntries) go only once
    /// everything written so far is durable (as do answers, see the request
    /// handler), and the core counts its own new entries towards a commit
    /// only then (`persisted`). A leader's AppendEntries go at once, in
    /// parallel with its own write (the Raft thesis, 10.2.1). Committed
    /// entries are applied at once: a majority holds them durably.
    fn process(&mut self) -> Option<Pending> {
        let Ready { hard_state, truncate_from, append, messages, committed, events } = self.core.take_ready();
        let wrote = hard_state.is_some() || truncate_from.is_some();
        if let Some(hs) = hard_state {
            self.persister.save_hard_state(&hs);
        }
        if let Some(from) = truncate_from {
            self.persister.truncate_log(from as usize - 1);
            self.persister.append_log(&append);
        }
        for e in events {
            (self.events)(e);
        }
        let seq = self.persister.written();
        // A vote request follows its own write of term and vote, so it
        // always waits; (the settling task sends it in the same instant if
        // nothing is left to sync).
        let (early, late): (Vec<_>, Vec<_>) = messages.into_iter().partition(|(_, m)| matches!(m, Request::Append(_)));
        for m in early {
            let _ = self.out_tx.send(m);
        }
        for c in committed {
            let _ = self.apply_tx.send(c);
        }
        // Something to wait for: this step's writes, or messages held back
        // behind earlier ones.
        let index = self.core.last_index();
        (wrote || !late.is_empty()).then(|| Pending { seq, index, term: self.core.term_at(index).unwrap_or(0), late })
    }

    /// The disk made `p`'s writes durable: let the core count them, send
    /// what waited for them, and carry out what that made possible.
    fn settled(&mut self, p: Pending) -> Option<Pending> {
        if self.killed {
            return None;
        }
        // Unless a conflict replaced those entries meanwhile.
        if self.core.term_at(p.index) == Some(p.term) {
            self.core.persisted(p.index);
        }
        for m in p.late {
            let _ = self.out_tx.send(m);
        }
        self.process()
    }
}

/// Waits for the disk in the background, then settles, as long as there is
/// something to wait for.
fn settle(inner: &Arc<Mutex<Inner>>, pending: Option<Pending>) {
    let Some(p) = pending else { return };
    let inner = inner.clone();
    tokio::spawn(async move {
        let mut next = Some(p);
        while let Some(p) = next {
            let persister = inner.lock().unwrap().persister.clone();
            persister.sync_to(p.seq).await;
            next = inner.lock().unwrap().settled(p);
        }
    });
}

/// A running Raft server. Clones share the server.
#[derive(Clone)]
pub struct RaftNode {
    inner: Arc<Mutex<Inner>>,
}

impl RaftNode {
    /// Starts server `me` of `peers` (addresses indexed by server id) on the
    /// current node, recovering from `persister`. Committed entries arrive on
    /// `apply_tx`, in order, exactly once per boot.
    pub fn make(
        transport: Arc<Transport>,
        peers: Vec<SocketAddr>,
        me: PeerId,
        persister: Persister,
        apply_tx: mpsc::UnboundedSender<ApplyMsg>,
        events: EventSink,
        cfg: NodeConfig,
    ) -> Result<RaftNode, StorageError> {
        let rec = persister.recover()?;
        let seed = madsim::rand::random::<u64>();
        let core_cfg = super::core::Config { async_persistence: true, ..cfg.core.clone() };
        let core = RaftCore::new(me, peers.len(), core_cfg, rec.hard_state, rec.log, seed);
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<(PeerId, Request)>();
        let inner = Arc::new(Mutex::new(Inner { core, persister, apply_tx, out_tx, events, killed: false }));
        let node = RaftNode { inner: inner.clone() };

        // Incoming requests: step the core, persist, then answer.
        let peer_ids: Vec<(SocketAddr, PeerId)> = peers.iter().copied().zip(0..).collect();
        let svc_inner = inner.clone();
        transport.register(
            RAFT_SERVICE,
            Arc::new(move |from: SocketAddr, body: Vec<u8>| {
                let inner = svc_inner.clone();
                // Only another server is a peer: the core takes it on trust.
                let from_id = peer_ids.iter().find(|(a, i)| a.ip() == from.ip() && *i != me).map(|(_, i)| *i);
                async move {
                    let from_id = from_id?;
                    let req: Request = match decode(&body, "raft request") {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::warn!(%from, error = %e, "dropping a raft request");
                            return None;
                        }
                    };
                    let (resp, persister, seq) = {
                        let mut g = inner.lock().unwrap();
                        if g.killed {
                            return None;
                        }
                        let resp = g.core.step_request(from_id, req);
                        let pending = g.process();
                        let seq = g.persister.written();
                        settle(&inner, pending);
                        (resp, g.persister.clone(), seq)
                    };
                    // The answer reflects everything written so far: it goes
                    // once that is durable.
                    persister.sync_to(seq).await;
                    if inner.lock().unwrap().killed {
                        return None;
                    }
                    Some(encode(&resp))
                }
                .boxed()
            }),
        );

        // Outgoing requests: one task per message, so peers are contacted
        // concurrently and a slow peer delays nobody else.
        let send_inner = inner.clone();
        let rpc_timeout = cfg.rpc_timeout;
        tokio::spawn(async move {
            while let Some((peer, req)) = out_rx.recv().await {
                let inner = send_inner.clone();
                let transport = transport.clone();
                let addr = peers[peer];
                tokio::spawn(async move {
                    let Ok(resp) = transport.call::<Request, Response>(addr, RAFT_SERVICE, &req, rpc_timeout).await else {
                        return;
                    };
                    let mut g = inner.lock().unwrap();
                    if g.killed {
                        return;
                    }
                    g.core.step_response(peer, resp);
                    let pending = g.process();
                    settle(&inner, pending);
                });
            }
        });

        // The clock.
        let tick_inner = inner.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(cfg.tick);
            loop {
                interval.tick().await;
                let mut g = tick_inner.lock().unwrap();
                if g.killed {
                    return;
                }
                g.core.tick();
                let pending = g.process();
                settle(&tick_inner, pending);
            }
        });
        Ok(node)
    }

    /// Runs `f` on the core (for tests and introspection).
    pub fn with_core<R>(&self, f: impl FnOnce(&RaftCore) -> R) -> R {
        f(&self.inner.lock().unwrap().core)
    }
}

impl Consensus for RaftNode {
    fn start(&self, command: Vec<u8>) -> Option<(Index, Term)> {
        let mut g = self.inner.lock().unwrap();
        if g.killed {
            return None;
        }
        let r = g.core.propose(command);
        let pending = g.process();
        settle(&self.inner, pending);
        r
    }

    fn state(&self) -> (Term, bool) {
        let g = self.inner.lock().unwrap();
        (g.core.term(), g.core.is_leader() && !g.killed)
    }

    fn kill(&self) {
        self.inner.lock().unwrap().killed = true;
    }

    fn reports_events(&self) -> bool {
        true
    }

    fn log_terms(&self, upto: Index) -> Option<Vec<Term>> {
        let g = self.inner.lock().unwrap();
        let last = g.core.last_index().min(upto);
        Some((1..=last).map(|i| g.core.term_at(i).unwrap_or(0)).collect())
    }

    fn log_term(&self, index: Index) -> Option<Option<Term>> {
        let g = self.inner.lock().unwrap();
        Some((index >= 1 && index <= g.core.last_index()).then(|| g.core.term_at(index).unwrap_or(0)))
    }
}
