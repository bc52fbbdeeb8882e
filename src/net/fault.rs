//! The hook where simulated faults act on every message the transport sends.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Whether a frame is a request or the reply to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    Request,
    Reply,
}

/// What happens to one message: one entry per copy delivered, each with the
/// extra delay before it is handed to the network, and a copy held back
/// until a [`Release`] lets it go, if any. No copies and none held means
/// dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fate {
    pub copies: Vec<Duration>,
    pub held: Option<Release>,
}

impl Fate {
    pub fn deliver() -> Self {
        Fate { copies: vec![Duration::ZERO], held: None }
    }
    pub fn drop() -> Self {
        Fate::default()
    }
}

/// What a held message waits for: the network lets every message held
/// on one [`Releaser`] go at once (late messages: held past an election,
/// say, and delivered in the next term). (A flag and a `Notify`, not a
/// `watch` channel: tokio's `watch` picks among its wakers at random, which
/// would make the order the messages go in differ from run to run.)
#[derive(Clone, Debug)]
pub struct Release(Arc<(AtomicBool, tokio::sync::Notify)>);

impl PartialEq for Release {
    fn eq(&self, o: &Self) -> bool {
        Arc::ptr_eq(&self.0, &o.0)
    }
}

impl Eq for Release {}

impl Release {
    /// Returns once the message may go.
    pub async fn wait(self) {
        let (released, notify) = &*self.0;
        loop {
            // Registered before the check, so a release in between wakes it.
            let woken = notify.notified();
            if released.load(Ordering::SeqCst) {
                return;
            }
            woken.await;
        }
    }
}

/// Lets go the messages held on its [`Release`]s (a new one has let
/// nothing go yet).
#[derive(Debug, Default)]
pub struct Releaser(Release);

impl Default for Release {
    fn default() -> Self {
        Release(Arc::new((AtomicBool::new(false), tokio::sync::Notify::new())))
    }
}

impl Releaser {
    /// The release its messages wait for.
    pub fn release_of(&self) -> Release {
        self.0.clone()
    }

    /// Lets every message held on it go now, in the order they were held.
    pub fn release(&self) {
        let (released, notify) = &*self.0 .0;
        released.store(true, Ordering::SeqCst);
        notify.notify_waiters();
    }
}

/// Decides the fate of each message. The transport asks on send (loss, delay,
/// duplication) and again on arrival (a link cut while the message was in
/// flight loses it, as a real partition would).
pub trait FaultHook: Send + Sync + 'static {
    /// Called once per message the transport sends, with its encoded size.
    fn on_send(&self, src: SocketAddr, dst: SocketAddr, kind: FrameKind, service: u16, bytes: usize) -> Fate;
    /// Called when a message for `service` arrives; false drops it.
    fn on_arrive(&self, src: SocketAddr, dst: SocketAddr, kind: FrameKind, service: u16) -> bool;
}

/// A perfect network: every message delivered once, no extra delay.
pub struct NoFaults;

impl FaultHook for NoFaults {
    fn on_send(&self, _: SocketAddr, _: SocketAddr, _: FrameKind, _: u16, _: usize) -> Fate {
        Fate::deliver()
    }
    fn on_arrive(&self, _: SocketAddr, _: SocketAddr, _: FrameKind, _: u16) -> bool {
        true
    }
}
