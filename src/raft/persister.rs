//! Durable storage for Raft's state, owned by the cluster and handed to each
//! boot of a node (as in 6.5840), so that state survives a crash.

use std::sync::{Arc, Mutex};

use super::message::{Entry, HardState};
use crate::net::{decode, encode, RpcError};

#[derive(Clone, Debug, Default)]
struct Stored {
    hard_state: Vec<u8>,
    /// Encoded log entries; position i holds index i + 1. Stored entry by
    /// entry so that appending costs the new entries only, like a WAL.
    entries: Vec<Vec<u8>>,
    bytes: usize,
}

/// A handle to one server's durable state. Clones share the same storage.
#[derive(Clone, Debug, Default)]
pub struct Persister(Arc<Mutex<Stored>>);

/// What a restarted server recovers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub hard_state: HardState,
    pub log: Vec<Entry>,
}

/// The stored bytes as they are, for a Raft that encodes its own state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawState {
    /// Empty if never saved.
    pub hard_state: Vec<u8>,
    /// Log records in order; position i holds index i + 1.
    pub log: Vec<Vec<u8>>,
}

impl Persister {
    pub fn new() -> Self {
        Self::default()
    }

    /// An independent copy: a crashed server keeps writing (if at all) to the
    /// old handle, the restarted one gets the copy.
    pub fn copy(&self) -> Self {
        Persister(Arc::new(Mutex::new(self.0.lock().unwrap().clone())))
    }

    pub fn save_hard_state(&self, hs: &HardState) {
        let mut s = self.0.lock().unwrap();
        let b = encode(hs);
        s.bytes = s.bytes - s.hard_state.len() + b.len();
        s.hard_state = b;
    }

    /// Keeps the first `len` entries (indices 1..=len) and drops the rest.
    pub fn truncate_log(&self, len: usize) {
        let mut s = self.0.lock().unwrap();
        if len < s.entries.len() {
            let removed: usize = s.entries[len..].iter().map(Vec::len).sum();
            s.entries.truncate(len);
            s.bytes -= removed;
        }
    }

    pub fn append_log<'a>(&self, entries: impl IntoIterator<Item = &'a Entry>) {
        let mut s = self.0.lock().unwrap();
        for e in entries {
            let b = encode(e);
            s.bytes += b.len();
            s.entries.push(b);
        }
    }

    /// Bytes of Raft state stored (6.5840's RaftStateSize).
    pub fn raft_state_size(&self) -> usize {
        self.0.lock().unwrap().bytes
    }

    pub fn log_len(&self) -> usize {
        self.0.lock().unwrap().entries.len()
    }

    /// Replaces the hard-state blob with `bytes` as they are. For a Raft with
    /// an encoding of its own (see [`raw_state`](Self::raw_state)); this
    /// crate's Raft uses [`save_hard_state`](Self::save_hard_state).
    pub fn save_raw_hard_state(&self, bytes: Vec<u8>) {
        let mut s = self.0.lock().unwrap();
        s.bytes = s.bytes - s.hard_state.len() + bytes.len();
        s.hard_state = bytes;
    }

    /// Appends log records as they are (record i of the whole log is meant
    /// to hold index i + 1). [`truncate_log`](Self::truncate_log) and
    /// [`log_len`](Self::log_len) count these records too.
    pub fn append_raw_log(&self, records: impl IntoIterator<Item = Vec<u8>>) {
        let mut s = self.0.lock().unwrap();
        for b in records {
            s.bytes += b.len();
            s.entries.push(b);
        }
    }

    /// The stored hard-state blob and log records, undecoded.
    pub fn raw_state(&self) -> RawState {
        let s = self.0.lock().unwrap();
        RawState { hard_state: s.hard_state.clone(), log: s.entries.clone() }
    }

    /// Decodes the stored state; an empty store recovers as a fresh server.
    pub fn recover(&self) -> Result<Recovered, RpcError> {
        let s = self.0.lock().unwrap();
        let hard_state = if s.hard_state.is_empty() {
            HardState::default()
        } else {
            decode(&s.hard_state, "persisted hard state")?
        };
        let log = s
            .entries
            .iter()
            .map(|b| decode(b, "persisted log entry"))
            .collect::<Result<Vec<Entry>, _>>()?;
        Ok(Recovered { hard_state, log })
    }
}
