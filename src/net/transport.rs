//! Request/reply RPC over a madsim [`Endpoint`].

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use madsim::net::Endpoint;
use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::oneshot;

use super::{decode, encode, FaultHook, Frame, FrameKind};

/// The datagram tag all frames use.
pub const RPC_TAG: u64 = 0x6b76;

/// The id of a one-way answer's frame (see [`Transport::answer`]); calls
/// and notifications number their frames from 1.
const ONE_WAY_ANSWER: u64 = 0;

/// Concurrent receive loops per endpoint.
const RECEIVERS: usize = 32;

/// Why a call produced no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("message does not decode as {what}: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("no handler for service {0}")]
    NoService(u16),
    #[error("network error: {0}")]
    Io(String),
}

/// Serves one service: gets the caller's address and the request body,
/// returns the reply body (None: send no reply, the caller times out).
pub type Handler = Arc<dyn Fn(SocketAddr, Vec<u8>) -> BoxFuture<'static, Option<Vec<u8>>> + Send + Sync>;

/// Rewrites the body of a frame arriving at an endpoint (see
/// [`Transport::rewrite_arrivals`]): its kind, its service, the body.
pub type Rewrite = Arc<dyn Fn(FrameKind, u16, &mut Vec<u8>) + Send + Sync>;

/// One node's RPC endpoint: it calls others and serves registered services.
///
/// Replies are matched to calls by request id; a reply that arrives after its
/// call gave up (or a second copy of one) finds no waiter and is dropped at
/// once, so nothing piles up in the endpoint's mailbox.
pub struct Transport {
    ep: Endpoint,
    addr: SocketAddr,
    hook: Arc<dyn FaultHook>,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Vec<u8>>>>,
    handlers: Mutex<BTreeMap<u16, Handler>>,
    rewrite: OnceLock<Rewrite>,
}

impl Transport {
    /// Binds `addr` on the current node and starts its receive loop there.
    pub async fn bind(addr: SocketAddr, hook: Arc<dyn FaultHook>) -> std::io::Result<Arc<Self>> {
        let ep = Endpoint::bind(addr).await?;
        let addr = ep.local_addr()?;
        let t = Arc::new(Transport {
            ep,
            addr,
            hook,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            handlers: Mutex::new(BTreeMap::new()),
            rewrite: OnceLock::new(),
        });
        // madsim charges every receive at least 1 ms of virtual time, so one
        // receive loop would cap a node at ~1000 messages per virtual second.
        // Several loops wait on the same mailbox, as a real server's threads
        // would. They hold only a weak reference so that dropping the last
        // handle (or killing the node) ends them.
        for _ in 0..RECEIVERS {
            Self::spawn_receiver(Arc::downgrade(&t));
        }
        Ok(t)
    }

    fn spawn_receiver(weak: std::sync::Weak<Transport>) {
        tokio::spawn(async move {
            loop {
                let Some(t) = weak.upgrade() else { return };
                let ep = t.ep.clone();
                drop(t);
                let Ok((payload, from)) = ep.recv_from_raw(RPC_TAG).await else { return };
                let Some(t) = weak.upgrade() else { return };
                let Ok(bytes) = payload.downcast::<Vec<u8>>() else {
                    tracing::warn!(%from, "dropping a datagram that is not bytes");
                    continue;
                };
                t.receive(from, *bytes);
            }
        });
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Registers the handler of `service`, replacing any earlier one.
    pub fn register(&self, service: u16, handler: Handler) {
        self.handlers.lock().unwrap().insert(service, handler);
    }

    /// For tests that build a deliberately broken Raft around a correct
    /// one (through `MakeRaft`, on the endpoint it is given): from now on
    /// every frame that arrives here, and is not lost, has its body passed
    /// through `rewrite` before it is matched to its call or handed to its
    /// service, e.g. a reply's term changed so the Raft takes a reply of an
    /// earlier term for one of its own. Set once; an error if it already
    /// was.
    pub fn rewrite_arrivals(&self, rewrite: Rewrite) -> Result<(), String> {
        self.rewrite.set(rewrite).map_err(|_| format!("{}: arrivals are rewritten already", self.addr))
    }

    fn receive(self: &Arc<Self>, from: SocketAddr, bytes: Vec<u8>) {
        let mut frame: Frame = match decode(&bytes, "frame") {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(%from, error = %e, "dropping an undecodable frame");
                return;
            }
        };
        let kind = if frame.reply { FrameKind::Reply } else { FrameKind::Request };
        if !self.hook.on_arrive(from, self.addr, kind, frame.service) {
            return;
        }
        if let Some(rewrite) = self.rewrite.get() {
            rewrite(kind, frame.service, &mut frame.body);
        }
        // A one-way answer goes to the service's handler, like a request.
        if frame.reply && frame.id != ONE_WAY_ANSWER {
            let waiter = self.pending.lock().unwrap().remove(&frame.id);
            if let Some(tx) = waiter {
                let _ = tx.send(frame.body);
            }
            return;
        }
        let handler = self.handlers.lock().unwrap().get(&frame.service).cloned();
        let Some(handler) = handler else {
            tracing::debug!(%from, service = frame.service, "request for an unknown service");
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            let answered = frame.reply;
            if let Some(body) = handler(from, frame.body).await.filter(|_| !answered) {
                let reply = Frame { reply: true, id: frame.id, service: frame.service, body };
                this.send_frame(from, &reply).await;
            }
        });
    }

    /// Sends one frame through the fault hook: dropped, delayed, copied or
    /// held back (sent once released, if this node still runs then).
    async fn send_frame(&self, dst: SocketAddr, frame: &Frame) {
        let bytes = encode(frame);
        let kind = if frame.reply { FrameKind::Reply } else { FrameKind::Request };
        let fate = self.hook.on_send(self.addr, dst, kind, frame.service, bytes.len());
        if let Some(release) = fate.held {
            let ep = self.ep.clone();
            let bytes = bytes.clone();
            tokio::spawn(async move {
                release.wait().await;
                let _ = ep.send_to_raw(dst, RPC_TAG, Box::new(bytes)).await;
            });
        }
        for delay in fate.copies {
            if delay.is_zero() {
                // A send to a node that is down is lost, like any datagram.
                let _ = self.ep.send_to_raw(dst, RPC_TAG, Box::new(bytes.clone())).await;
            } else {
                let ep = self.ep.clone();
                let bytes = bytes.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = ep.send_to_raw(dst, RPC_TAG, Box::new(bytes)).await;
                });
            }
        }
    }

    /// Sends `body` to `service` at `dst` and waits up to `timeout` for the reply.
    pub async fn call_raw(&self, dst: SocketAddr, service: u16, body: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        // Removes the waiter however the call ends (reply, timeout, or the
        // caller's future being dropped), so late replies are discarded.
        struct Forget<'a>(&'a Transport, u64);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                self.0.pending.lock().unwrap().remove(&self.1);
            }
        }
        let _forget = Forget(self, id);
        self.send_frame(dst, &Frame { reply: false, id, service, body }).await;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            _ => Err(RpcError::Timeout(timeout)),
        }
    }

    /// Sends `body` to `service` at `dst` as a one-way message: a request
    /// frame that nobody waits on (the receiving handler should return None;
    /// a reply, if one comes, finds no waiter and is dropped). It goes
    /// through the fault hook like any request.
    pub async fn notify(&self, dst: SocketAddr, service: u16, body: Vec<u8>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.send_frame(dst, &Frame { reply: false, id, service, body }).await;
    }

    /// Sends `body` to `service` at `dst` as a one-way *answer* to a message
    /// received earlier: a reply frame that no call waits on, handed to the
    /// service's handler at `dst` like a request (its return is ignored).
    /// For a Raft whose responses are messages of their own (raft-rs's
    /// `MsgAppendResponse`, vote responses, ...): the fault hook sees a
    /// reply, so such a response meets the reply faults (reply loss, cuts
    /// of the return path) that an RPC reply would, and no more.
    pub async fn answer(&self, dst: SocketAddr, service: u16, body: Vec<u8>) {
        self.send_frame(dst, &Frame { reply: true, id: ONE_WAY_ANSWER, service, body }).await;
    }

    /// Typed call: serialises the request and decodes the reply.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        dst: SocketAddr,
        service: u16,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, RpcError> {
        let reply = self.call_raw(dst, service, encode(req), timeout).await?;
        decode(&reply, std::any::type_name::<Resp>())
    }

    /// Number of calls waiting for a reply (should stay bounded).
    pub fn pending_calls(&self) -> usize {
        self.pending.lock().unwrap().len()
    }
}
