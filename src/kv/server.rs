//! The KV server: hands each request to Raft and answers only once that op
//! comes back committed at the index Raft gave it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};

use super::broken::Tamper;
use super::ops::{KvReply, KvRequest, KvStateMachine, LogPosition, KV_SERVICE};
use crate::net::{decode, encode, Transport};
use crate::raft::{ApplyMsg, Consensus, Index};

#[derive(Clone)]
pub struct ServerConfig {
    /// How long a request waits for its op to commit before answering Timeout.
    pub commit_wait: Duration,
    /// How often leadership is checked for waiting requests.
    pub leadership_poll: Duration,
    /// A deliberately broken server's deviation (tests only; None for the
    /// real service).
    pub tamper: Option<Arc<dyn Tamper>>,
    /// Where the server reports what it does (for a harness; optional).
    pub events: Option<KvEventSink>,
}

/// What a KV server reports as it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvEvent {
    /// The committed entry at `index` was applied: a request of `client`
    /// numbered `seq`, which the duplicate table found new (`fresh`: a Put
    /// or Append changed the data) or a repeat (it changed nothing). An
    /// empty or undecodable entry reports no `Applied`.
    Applied { index: Index, client: u64, seq: u64, fresh: bool },
    /// A request was answered from the duplicate table at once, without Raft.
    AnsweredFromTable,
    /// A waiting request was told WrongLeader because another entry
    /// committed at the index Raft had given it.
    IndexTaken,
}

/// Where a KV server reports [`KvEvent`]s; called synchronously, in order.
pub type KvEventSink = Arc<dyn Fn(KvEvent) + Send + Sync>;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { commit_wait: Duration::from_millis(1000), leadership_poll: Duration::from_millis(10), tamper: None, events: None }
    }
}

struct Waiter {
    client: u64,
    seq: u64,
    tx: oneshot::Sender<KvReply>,
}

struct Inner {
    sm: KvStateMachine,
    waiters: BTreeMap<Index, Waiter>,
    last_applied: Index,
    killed: bool,
}

/// A KV server on the current node. Clones share the server.
#[derive(Clone)]
pub struct KvServer {
    inner: Arc<Mutex<Inner>>,
    raft: Arc<dyn Consensus>,
}

impl KvServer {
    /// Starts the server: registers the KV service on `transport` and applies
    /// what Raft delivers on `apply_rx`.
    pub fn start(
        transport: &Transport,
        raft: Arc<dyn Consensus>,
        mut apply_rx: mpsc::UnboundedReceiver<ApplyMsg>,
        cfg: ServerConfig,
    ) -> KvServer {
        let inner = Arc::new(Mutex::new(Inner { sm: KvStateMachine::default(), waiters: BTreeMap::new(), last_applied: 0, killed: false }));
        let server = KvServer { inner: inner.clone(), raft: raft.clone() };

        let s = server.clone();
        let cfg2 = cfg.clone();
        transport.register(
            KV_SERVICE,
            Arc::new(move |from: SocketAddr, body: Vec<u8>| {
                let s = s.clone();
                let cfg = cfg2.clone();
                async move {
                    let req: KvRequest = match decode(&body, "kv request") {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::warn!(%from, error = %e, "dropping a kv request");
                            return None;
                        }
                    };
                    let reply = s.handle(req, &cfg).await?;
                    Some(encode(&reply))
                }
                .boxed()
            }),
        );

        // The applier: applies committed ops in log order and wakes waiters.
        let applier = inner.clone();
        let (tamper, events) = (cfg.tamper.clone(), cfg.events.clone());
        tokio::spawn(async move {
            while let Some(m) = apply_rx.recv().await {
                // An empty entry is a Raft's own no-op (some Rafts append one
                // at each election); an undecodable one cannot come from this
                // service, but skipping it keeps every replica identical.
                let req: Option<KvRequest> = if m.command.is_empty() {
                    None
                } else {
                    decode(&m.command, "kv command")
                        .map_err(|e| tracing::error!(index = m.index, error = %e, "undecodable command in the log"))
                        .ok()
                };
                let mut g = applier.lock().unwrap();
                if g.killed {
                    return;
                }
                g.last_applied = m.index;
                let waiter = g.waiters.remove(&m.index);
                let Some(req) = req else {
                    if let Some(w) = waiter {
                        if let Some(ev) = &events {
                            ev(KvEvent::IndexTaken);
                        }
                        let _ = w.tx.send(KvReply::WrongLeader);
                    }
                    continue;
                };
                if let Some(t) = &tamper {
                    t.before_apply(&req, &mut g.sm);
                }
                let applied = g.sm.apply(&req);
                if let Some(ev) = &events {
                    ev(KvEvent::Applied { index: m.index, client: req.client, seq: req.seq, fresh: applied.fresh });
                }
                if let Some(w) = waiter {
                    let reply = if (w.client, w.seq) == (req.client, req.seq) {
                        KvReply::Ok(applied.reply, Some(LogPosition { term: m.term, index: m.index }))
                    } else {
                        if let Some(ev) = &events {
                            ev(KvEvent::IndexTaken);
                        }
                        KvReply::WrongLeader
                    };
                    let _ = w.tx.send(reply);
                }
            }
        });

        // Requests waiting on a server that is no longer leader may never be
        // answered by the log: tell their clerks to try elsewhere. (A server
        // leader again in a later term keeps its waiters: its log still holds
        // their entries unless they were replaced meanwhile, and the applier
        // answers WrongLeader for a replaced one.)
        let watcher = server.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(cfg.leadership_poll).await;
                let (_, leader) = watcher.raft.state();
                let mut g = watcher.inner.lock().unwrap();
                if g.killed {
                    return;
                }
                if !leader {
                    for w in std::mem::take(&mut g.waiters).into_values() {
                        let _ = w.tx.send(KvReply::WrongLeader);
                    }
                }
            }
        });
        server
    }

    async fn handle(&self, req: KvRequest, cfg: &ServerConfig) -> Option<KvReply> {
        let rx = {
            let mut g = self.inner.lock().unwrap();
            if g.killed {
                return None;
            }
            if let Some(t) = &cfg.tamper {
                if let Some(reply) = t.on_request(&req, &mut g.sm) {
                    return Some(reply);
                }
            }
            if let Some(reply) = g.sm.cached(req.client, req.seq) {
                if let Some(ev) = &cfg.events {
                    ev(KvEvent::AnsweredFromTable);
                }
                return Some(KvReply::Ok(reply, None));
            }
            let Some((index, _)) = self.raft.start(encode(&req)) else {
                return Some(KvReply::WrongLeader);
            };
            let (tx, rx) = oneshot::channel();
            if let Some(old) = g.waiters.insert(index, Waiter { client: req.client, seq: req.seq, tx }) {
                let _ = old.tx.send(KvReply::WrongLeader);
            }
            rx
        };
        match tokio::time::timeout(cfg.commit_wait, rx).await {
            Ok(Ok(reply)) => Some(reply),
            _ => Some(KvReply::Timeout),
        }
    }

    /// Stops answering and applying (the node is about to be killed).
    pub fn kill(&self) {
        let mut g = self.inner.lock().unwrap();
        g.killed = true;
        g.waiters.clear();
        drop(g);
        self.raft.kill();
    }

    pub fn last_applied(&self) -> Index {
        self.inner.lock().unwrap().last_applied
    }

    /// The replicated state (see [`KvStateMachine::contents`]) and the index
    /// it reflects.
    pub fn contents(&self) -> (Index, (Vec<(String, String)>, Vec<(u64, u64, Option<String>)>)) {
        let g = self.inner.lock().unwrap();
        (g.last_applied, g.sm.contents())
    }
}
