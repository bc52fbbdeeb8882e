//! Raft's messages and log entries, as they go over the wire and to disk.

use serde::{Deserialize, Serialize};

/// Index of a log entry; the log starts at 1 (0 is the empty prefix).
pub type Index = u64;
pub type Term = u64;
/// A server's position in the peer list.
pub type PeerId = usize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub command: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteArgs {
    pub term: Term,
    pub candidate: PeerId,
    pub last_log_index: Index,
    pub last_log_term: Term,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteReply {
    pub term: Term,
    pub granted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendArgs {
    pub term: Term,
    pub leader: PeerId,
    pub prev_log_index: Index,
    pub prev_log_term: Term,
    pub entries: Vec<Entry>,
    pub leader_commit: Index,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendReply {
    pub term: Term,
    pub success: bool,
    /// On success: the follower's log matches the leader's up to here. The
    /// reply carries it so that a late or duplicated reply is still exact.
    pub match_index: Index,
    /// On failure: where the leader should retry from (fast backup).
    pub conflict_index: Index,
    /// On failure: the term of the follower's conflicting entry, if any.
    pub conflict_term: Option<Term>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Vote(VoteArgs),
    Append(AppendArgs),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Vote(VoteReply),
    Append(AppendReply),
}

/// The state Raft must persist before answering anything that depends on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<PeerId>,
}

/// A committed entry handed to the service, in log order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyMsg {
    pub index: Index,
    pub term: Term,
    pub command: Vec<u8>,
}
