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
use super::persister::Persister;
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

impl Inner {
    /// Carries out a Ready in the order Raft needs: persist, then send, then
    /// apply (events are reported once the state they follow is durable).
    fn process(&mut self) {
        let Ready { hard_state, truncate_from, append, messages, committed, events } = self.core.take_ready();
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
        for m in messages {
            let _ = self.out_tx.send(m);
        }
        for c in committed {
            let _ = self.apply_tx.send(c);
        }
    }
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
    ) -> Result<RaftNode, crate::net::RpcError> {
        let rec = persister.recover()?;
        let seed = madsim::rand::random::<u64>();
        let core = RaftCore::new(me, peers.len(), cfg.core.clone(), rec.hard_state, rec.log, seed);
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
                let from_id = peer_ids.iter().find(|(a, _)| a.ip() == from.ip()).map(|(_, i)| *i);
                async move {
                    let from_id = from_id?;
                    let req: Request = match decode(&body, "raft request") {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::warn!(%from, error = %e, "dropping a raft request");
                            return None;
                        }
                    };
                    let mut g = inner.lock().unwrap();
                    if g.killed {
                        return None;
                    }
                    let resp = g.core.step_request(from_id, req);
                    g.process();
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
                    g.process();
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
                g.process();
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
        g.process();
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
}
