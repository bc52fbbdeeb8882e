//! A raft-rs [`Storage`] whose hard state, conf state and log live in the
//! harness's [`Persister`], so that they survive a crash. Reads are served
//! from a decoded copy in memory; every change is written to the persister
//! at once, and is durable once the driver's sync of it returns (the
//! driver sends nothing that depends on it before).
//!
//! On the persister:
//! - the hard-state blob is `"RRS1"`, the length of the protobuf `HardState`
//!   as a little-endian u32, that `HardState`, then the protobuf `ConfState`;
//! - log record i is the protobuf `Entry` of index i + 1 (the log is never
//!   compacted, so it always starts at index 1).

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

use crate::raft::persister::Damage;
use crate::raft::Persister;

/// Tag at the start of the hard-state blob (format version 1).
const MAGIC: &[u8; 4] = b"RRS1";

/// Why stored state could not be recovered or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("persisted raft-rs state is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
    #[error("entries to append start at index {first}, but the log ends at {last}")]
    Gap { first: u64, last: u64 },
    #[error("would truncate committed entries: from index {from}, commit index {commit}")]
    TruncateCommitted { from: u64, commit: u64 },
}

/// A raft-rs log store backed by a [`Persister`].
pub struct PersistedStorage {
    persister: Persister,
    hard_state: HardState,
    conf_state: ConfState,
    /// `entries[i]` has index i + 1.
    entries: Vec<Entry>,
    /// Times a conflicting suffix was dropped (for coverage).
    pub truncations: u64,
}

fn encode<M: protobuf::Message>(m: &M, what: &'static str) -> Result<Vec<u8>, StoreError> {
    m.write_to_bytes().map_err(|e| StoreError::Encode { what, reason: e.to_string() })
}

fn corrupt(msg: impl Into<String>) -> StoreError {
    StoreError::Corrupt(msg.into())
}

impl PersistedStorage {
    /// Recovers what `persister` holds. An empty persister is a fresh server
    /// whose configuration is `voters` (raft ids); that configuration is
    /// written at once. Anything that does not decode, or does not hang
    /// together (indexes out of order, a commit index past the log, no
    /// voters), is an error.
    pub fn recover(persister: Persister, voters: &[u64]) -> Result<Self, StoreError> {
        let raw = persister.raw_state();
        // A torn last write was never synced: dropping it is safe. A corrupt
        // record may have held acknowledged state: refuse to start.
        if let Some(Damage::Corrupt { record, records, reason }) = &raw.damage {
            return Err(corrupt(format!(
                "write-ahead log record {record} of {records} is corrupt ({reason}); refusing to start on state that may have lost acknowledged writes"
            )));
        }
        if raw.hard_state.is_empty() {
            if !raw.log.is_empty() {
                return Err(corrupt(format!("{} log records but no hard state", raw.log.len())));
            }
            let mut s = PersistedStorage {
                persister,
                hard_state: HardState::default(),
                conf_state: ConfState::default(),
                entries: Vec::new(),
                truncations: 0,
            };
            s.conf_state.set_voters(voters.to_vec());
            s.save_blob()?;
            return Ok(s);
        }
        let (hard_state, conf_state) = decode_blob(&raw.hard_state)?;
        let mut entries = Vec::with_capacity(raw.log.len());
        for (i, rec) in raw.log.iter().enumerate() {
            let e = Entry::parse_from_bytes(rec)
                .map_err(|err| corrupt(format!("log record {i} does not decode as an Entry: {err}")))?;
            let want = i as u64 + 1;
            if e.index != want {
                return Err(corrupt(format!("log record {i} holds index {}, expected {want}", e.index)));
            }
            if let Some(prev) = entries.last().map(|p: &Entry| p.term) {
                if e.term < prev {
                    return Err(corrupt(format!("term goes down at index {want}: {} after {prev}", e.term)));
                }
            }
            entries.push(e);
        }
        let last = entries.len() as u64;
        if hard_state.commit > last {
            return Err(corrupt(format!("commit index {} is past the last index {last}", hard_state.commit)));
        }
        if let Some(e) = entries.last() {
            if e.term > hard_state.term {
                return Err(corrupt(format!("last entry has term {} > current term {}", e.term, hard_state.term)));
            }
        }
        if conf_state.voters.is_empty() {
            return Err(corrupt("conf state has no voters"));
        }
        Ok(PersistedStorage { persister, hard_state, conf_state, entries, truncations: 0 })
    }

    fn save_blob(&self) -> Result<(), StoreError> {
        let hs = encode(&self.hard_state, "hard state")?;
        let cs = encode(&self.conf_state, "conf state")?;
        let mut blob = Vec::with_capacity(8 + hs.len() + cs.len());
        blob.extend_from_slice(MAGIC);
        blob.extend_from_slice(&(hs.len() as u32).to_le_bytes());
        blob.extend_from_slice(&hs);
        blob.extend_from_slice(&cs);
        self.persister.save_raw_hard_state(blob);
        Ok(())
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    pub fn set_hard_state(&mut self, hs: HardState) -> Result<(), StoreError> {
        self.hard_state = hs;
        self.save_blob()
    }

    /// Appends `ents`, first dropping whatever the log holds from
    /// `ents[0].index` on (a leader overwriting a follower's suffix).
    pub fn append(&mut self, ents: &[Entry]) -> Result<(), StoreError> {
        let Some(first) = ents.first().map(|e| e.index) else { return Ok(()) };
        let last = self.last();
        if first == 0 || first > last + 1 {
            return Err(StoreError::Gap { first, last });
        }
        for (k, e) in ents.iter().enumerate() {
            if e.index != first + k as u64 {
                return Err(StoreError::Gap { first: e.index, last: first + k as u64 - 1 });
            }
        }
        if first <= self.hard_state.commit {
            return Err(StoreError::TruncateCommitted { from: first, commit: self.hard_state.commit });
        }
        let records = ents.iter().map(|e| encode(e, "log entry")).collect::<Result<Vec<_>, _>>()?;
        let keep = (first - 1) as usize;
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.persister.truncate_log(keep);
            self.truncations += 1;
        }
        self.entries.extend_from_slice(ents);
        self.persister.append_raw_log(records);
        Ok(())
    }

    /// The disk under this storage (to sync it).
    pub fn persister(&self) -> Persister {
        self.persister.clone()
    }

    /// Writes so far (see [`Persister::written`]).
    pub fn written(&self) -> usize {
        self.persister.written()
    }

    /// Index of the last entry (0 if the log is empty).
    pub fn last(&self) -> u64 {
        self.entries.len() as u64
    }

    /// The entry at `index`, if the log has it.
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        if index == 0 {
            return None;
        }
        self.entries.get(index as usize - 1)
    }
}

fn decode_blob(blob: &[u8]) -> Result<(HardState, ConfState), StoreError> {
    if blob.len() < 8 || &blob[..4] != MAGIC {
        return Err(corrupt("hard-state blob lacks the RRS1 header"));
    }
    let n = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
    let rest = &blob[8..];
    if n > rest.len() {
        return Err(corrupt(format!("hard state claims {n} bytes, only {} stored", rest.len())));
    }
    let hs = HardState::parse_from_bytes(&rest[..n])
        .map_err(|e| corrupt(format!("hard state does not decode: {e}")))?;
    let cs = ConfState::parse_from_bytes(&rest[n..])
        .map_err(|e| corrupt(format!("conf state does not decode: {e}")))?;
    Ok((hs, cs))
}

fn store_err(e: StorageError) -> raft::Error {
    raft::Error::Store(e)
}

impl Storage for PersistedStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(self.hard_state.clone(), self.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low == 0 {
            return Err(store_err(StorageError::Compacted));
        }
        if high > self.last() + 1 || low > high {
            // raft-rs never asks for this; an error beats MemStorage's panic.
            return Err(store_err(StorageError::Unavailable));
        }
        let max = max_size.into().unwrap_or(u64::MAX);
        let mut out = Vec::new();
        let mut size = 0u64;
        for e in &self.entries[(low - 1) as usize..(high - 1) as usize] {
            size += u64::from(e.compute_size());
            // Always at least one entry, as the trait requires.
            if !out.is_empty() && size > max {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == 0 {
            return Ok(0);
        }
        self.entry(idx).map(|e| e.term).ok_or(store_err(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // The log is never compacted, so raft-rs never needs one.
        Err(store_err(StorageError::SnapshotTemporarilyUnavailable))
    }
}
