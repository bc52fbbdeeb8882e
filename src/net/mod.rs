//! The RPC transport: request/reply framing over madsim datagram endpoints,
//! request ids, timeouts, and the [`FaultHook`] through which the simulation
//! drops, delays, duplicates and holds back messages.
//!
//! Everything that crosses the network is serialised to bytes here, so byte
//! counts are real and a message that does not decode is an error, not a panic.

mod fault;
mod frame;
mod transport;

pub use fault::{Fate, FaultHook, FrameKind, NoFaults, Release, Releaser};
pub use frame::{decode, encode, Frame};
pub use transport::{Handler, Rewrite, RpcError, Transport, RPC_TAG};
