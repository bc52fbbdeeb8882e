//! The key/value service: [`ops`] (requests, replies, the replicated state
//! machine with its duplicate table), [`server`] (on top of Raft) and
//! [`clerk`] (the client).

pub mod clerk;
pub mod ops;
pub mod server;

pub use clerk::{Clerk, ClerkConfig};
pub use ops::{KvOp, KvReply, KvRequest, KvStateMachine, KV_SERVICE};
pub use server::{Bug, KvServer, ServerConfig};
