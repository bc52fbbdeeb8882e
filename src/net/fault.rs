//! The hook where simulated faults act on every message the transport sends.

use std::net::SocketAddr;
use std::time::Duration;

/// Whether a frame is a request or the reply to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    Request,
    Reply,
}

/// What happens to one message: one entry per copy delivered, each with the
/// extra delay before it is handed to the network. Empty means dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fate {
    pub copies: Vec<Duration>,
}

impl Fate {
    pub fn deliver() -> Self {
        Fate { copies: vec![Duration::ZERO] }
    }
    pub fn drop() -> Self {
        Fate { copies: Vec::new() }
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
