//! The key/value service: [`ops`] (requests, replies, the replicated state
//! machine with its duplicate table), [`server`] (on top of Raft) and
//! [`clerk`] (the client); [`broken`] holds the deliberately broken servers
//! that show the harness catches bugs, kept behind one seam.

pub mod broken;
pub mod clerk;
pub mod ops;
pub mod server;

pub use clerk::{Answer, Clerk, ClerkConfig};
pub use ops::{Applied, KvOp, KvReply, KvRequest, KvStateMachine, LogPosition, KV_SERVICE};
pub use broken::{Bug, Tamper};
pub use server::{KvEvent, KvEventSink, KvServer, ServerConfig};
