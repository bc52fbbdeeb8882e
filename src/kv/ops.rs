//! The KV service's operations: what clerks send, what goes into the Raft
//! log, and the replicated state machine that applies them exactly once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The transport service id of the KV RPC.
pub const KV_SERVICE: u16 = 2;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    Get { key: String },
    Put { key: String, value: String },
    Append { key: String, value: String },
}

/// One clerk request; also the command a server puts into the Raft log.
/// `(client, seq)` identifies it across retries; they come first on the
/// wire, so a trace reads them without decoding the op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRequest {
    pub client: u64,
    pub seq: u64,
    pub op: KvOp,
}

/// Where in the Raft log a request was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPosition {
    pub term: u64,
    pub index: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvReply {
    /// Applied: a Get's value (Some, "" for a missing key) or None for
    /// Put/Append; and where in the log it was applied, when the answer
    /// came from applying it (None for an answer from the duplicate table).
    Ok(Option<String>, Option<LogPosition>),
    /// Not the leader, or lost leadership before the op committed: try another server.
    WrongLeader,
    /// The op did not commit in time (e.g. a leader cut off in a minority).
    Timeout,
}

/// What applying one committed request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// A Get's value (Some, "" for a missing key); None for Put/Append.
    pub reply: Option<String>,
    /// False when the duplicate table recognised a repeat: nothing changed.
    pub fresh: bool,
}

/// What one clerk last had applied: its highest sequence number and the reply.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Session {
    seq: u64,
    reply: Option<String>,
}

/// The replicated state: the key/value map and the duplicate table. Both are
/// rebuilt by replaying the log after a restart.
#[derive(Clone, Debug, Default)]
pub struct KvStateMachine {
    data: BTreeMap<String, String>,
    sessions: BTreeMap<u64, Session>,
}

impl KvStateMachine {
    /// The reply already given to `(client, seq)`, if it was applied and is
    /// the clerk's latest request.
    pub fn cached(&self, client: u64, seq: u64) -> Option<Option<String>> {
        self.sessions.get(&client).filter(|s| s.seq == seq).map(|s| s.reply.clone())
    }

    /// Applies a committed request once; a repeat gets the first reply and
    /// changes nothing.
    pub fn apply(&mut self, req: &KvRequest) -> Applied {
        if let Some(s) = self.sessions.get(&req.client) {
            if req.seq <= s.seq {
                // seq < s.seq: the clerk has moved on and will not read
                // this reply; it must still not be applied again.
                return Applied { reply: s.reply.clone(), fresh: false };
            }
        }
        let reply = match &req.op {
            KvOp::Get { key } => Some(self.get(key)),
            KvOp::Put { key, value } => {
                self.data.insert(key.clone(), value.clone());
                None
            }
            KvOp::Append { key, value } => {
                self.data.entry(key.clone()).or_default().push_str(value);
                None
            }
        };
        self.sessions.insert(req.client, Session { seq: req.seq, reply: reply.clone() });
        Applied { reply, fresh: true }
    }

    /// The value of `key` in this replica ("" if missing).
    pub fn get(&self, key: &str) -> String {
        self.data.get(key).cloned().unwrap_or_default()
    }

    /// Forgets every clerk's session (only a deliberately broken server
    /// does this: see [`super::broken`]).
    pub fn forget_sessions(&mut self) {
        self.sessions.clear();
    }

    /// The whole replicated state, for comparing replicas: every key with
    /// its value, and every clerk's session (highest applied number, reply).
    pub fn contents(&self) -> (Vec<(String, String)>, Vec<(u64, u64, Option<String>)>) {
        let data = self.data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let sessions = self.sessions.iter().map(|(c, s)| (*c, s.seq, s.reply.clone())).collect();
        (data, sessions)
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}
