//! Durable storage for Raft's state, owned by the cluster and handed to each
//! boot of a node (as in 6.5840), modelled as a disk.
//!
//! The disk is a write-ahead log of records, each framed by its length and a
//! CRC-32 of its contents. Writes land in a volatile buffer and return at
//! once; [`sync_to`](Persister::sync_to) makes them durable after a virtual
//! latency drawn from the disk's range. A crash keeps only what was synced
//! (unless the disk is told to keep everything), and may leave a torn prefix
//! of the next write or a corrupt byte in a synced record (a latent sector
//! error): see [`Persister::crash`]. Recovery replays the records up to the
//! first that does not check out and says what it found ([`Damage`]); it
//! never panics and never hands back a record whose checksum fails.
//!
//! Two record formats share the log: this crate's Raft stores its
//! [`HardState`] and [`Entry`]s ([`save_hard_state`](Persister::save_hard_state),
//! [`append_log`](Persister::append_log), [`recover`](Persister::recover));
//! another Raft stores bytes of its own encoding
//! ([`save_raw_hard_state`](Persister::save_raw_hard_state),
//! [`append_raw_log`](Persister::append_raw_log), [`raw_state`](Persister::raw_state)).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use super::message::{Entry, HardState};
use crate::net::{decode, encode};

/// How a server's disk behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskConfig {
    /// Each sync takes a latency drawn uniformly from this range (µs; in a
    /// madsim simulation at least 1 ms, its timers' floor).
    pub sync_us: (u64, u64),
    /// A crash loses every write not yet synced (false: everything written
    /// survives, as if each write were synced at once).
    pub lose_unsynced: bool,
}

impl Default for DiskConfig {
    /// A 1 ms sync; a crash loses what was not synced.
    fn default() -> Self {
        DiskConfig { sync_us: (1000, 1000), lose_unsynced: true }
    }
}

impl DiskConfig {
    /// The latency of one sync, drawn from `sync_us`.
    fn sync_latency(&self) -> Duration {
        let (lo, hi) = self.sync_us;
        Duration::from_micros(if lo < hi { madsim::rand::thread_rng().gen_range(lo..=hi) } else { lo })
    }
}

/// What a crash did to the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Writes not yet synced, lost.
    pub writes_lost: u64,
    /// The first of them was kept as a torn prefix.
    pub torn: bool,
    /// A synced record was corrupted (a latent sector error).
    pub corrupted: bool,
}

/// What recovery found wrong in the log, if anything. Records from the bad
/// one on are not replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The last record is cut short: a write the crash interrupted. It was
    /// never synced, so nothing was acknowledged on it; dropping it is safe.
    TornTail { record: usize },
    /// A complete record whose checksum fails (or a cut record that is not
    /// the last): the disk corrupted data that may have been synced and
    /// acknowledged.
    Corrupt { record: usize, records: usize, reason: String },
}

/// Why a recovery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("record {record} of {records} in the write-ahead log is corrupt ({reason}); refusing to start on state that may have lost acknowledged writes")]
    Corrupt { record: usize, records: usize, reason: String },
    #[error("persisted {what} does not decode: {reason}")]
    Decode { what: &'static str, reason: String },
}

/// What a restarted server recovers (this crate's format).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub hard_state: HardState,
    pub log: Vec<Entry>,
    /// A torn last write, dropped (see [`Damage::TornTail`]).
    pub torn_tail: bool,
}

/// The stored state as bytes, for a Raft that encodes its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawState {
    /// Empty if never saved.
    pub hard_state: Vec<u8>,
    /// Log records in order; position i holds index i + 1.
    pub log: Vec<Vec<u8>>,
    /// What was wrong in the log, if anything.
    pub damage: Option<Damage>,
}

const HEADER: usize = 8;
const HARD_STATE: u8 = 1;
const APPEND: u8 = 2;
const TRUNCATE: u8 = 3;

/// One record: length of the payload and its CRC-32, then the payload (a
/// kind byte and the data).
fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(1 + data.len());
    payload.push(kind);
    payload.extend_from_slice(data);
    let mut r = Vec::with_capacity(HEADER + payload.len());
    r.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    r.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    r.extend_from_slice(&payload);
    r
}

/// What a write to the disk holds, by kind (the harness sees kinds, never
/// a Raft's contents): its hard state (term, vote), log entries appended,
/// or the log cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteKind {
    HardState,
    Append,
    Truncate,
}

impl WriteKind {
    pub fn name(self) -> &'static str {
        match self {
            WriteKind::HardState => "hard_state",
            WriteKind::Append => "append",
            WriteKind::Truncate => "truncate",
        }
    }
}

/// Called after every write a Raft makes, with the disk, the write's kind
/// and the number of records written so far (the write's end, for
/// [`durable_len`](Persister::durable_len)). The harness's hook: it may
/// stall the disk or act on the world, but not write to this disk.
pub type WriteHook = Arc<dyn Fn(&Persister, WriteKind, usize) + Send + Sync>;

#[derive(Clone, Default)]
struct WriteHookSlot(Option<WriteHook>);

impl std::fmt::Debug for WriteHookSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "WriteHook" } else { "None" })
    }
}

#[derive(Clone, Debug, Default)]
struct Disk {
    cfg: DiskConfig,
    /// Every record written, in order.
    records: Vec<Vec<u8>>,
    /// `records[..durable]` are durable.
    durable: usize,
    /// Test-only breakage (see [`DiskTamper`]).
    tamper: DiskTamper,
    /// A stall (a fault the harness injects): no sync started before this
    /// moment ends before it.
    stalled_until: Option<std::time::Instant>,
    /// The harness's hook on writes (see [`WriteHook`]).
    on_write: WriteHookSlot,
}

/// The one test-only seam of the disk: ways to break it on purpose, to show
/// the harness catches them. A real server never sets any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskTamper {
    /// A sync returns at once and the writes become durable a latency later,
    /// so whatever waits for a sync answers before its state is durable.
    pub ack_before_durable: bool,
    /// Recovery uses records whose checksum fails.
    pub ignore_checksums: bool,
}

impl Disk {
    fn write(&mut self, r: Vec<u8>) {
        self.records.push(r);
        if !self.cfg.lose_unsynced {
            self.durable = self.records.len();
        }
    }

    /// A sync of the writes up to `target` completed (those a crash has
    /// not taken meanwhile).
    /// How long the next sync takes: the latency drawn, or longer while
    /// the disk is stalled.
    fn sync_delay(&self) -> Duration {
        let drawn = self.cfg.sync_latency();
        match self.stalled_until {
            Some(t) => drawn.max(t.saturating_duration_since(std::time::Instant::now())),
            None => drawn,
        }
    }

    fn synced(&mut self, target: usize) {
        self.durable = self.durable.max(target.min(self.records.len()));
    }

    /// Replays the log.
    fn replay(&self) -> RawState {
        self.replay_checking(!self.tamper.ignore_checksums)
    }

    /// Replays the log, checking checksums or not.
    fn replay_checking(&self, checksums: bool) -> RawState {
        let mut st = RawState::default();
        let n = self.records.len();
        for (i, r) in self.records.iter().enumerate() {
            let declared = if r.len() >= HEADER { u32::from_le_bytes(r[0..4].try_into().unwrap()) as usize } else { usize::MAX };
            let complete = r.len() >= HEADER && r.len() == HEADER + declared;
            if !complete {
                st.damage = Some(if i + 1 == n {
                    Damage::TornTail { record: i }
                } else {
                    Damage::Corrupt { record: i, records: n, reason: "cut short before the end of the log".into() }
                });
                return st;
            }
            let payload = &r[HEADER..];
            let crc = u32::from_le_bytes(r[4..8].try_into().unwrap());
            if checksums && crc32fast::hash(payload) != crc {
                st.damage = Some(Damage::Corrupt { record: i, records: n, reason: "checksum mismatch".into() });
                return st;
            }
            let (kind, data) = match payload.split_first() {
                Some((k, d)) => (*k, d),
                None => (0, &[][..]),
            };
            match kind {
                HARD_STATE => st.hard_state = data.to_vec(),
                APPEND => st.log.push(data.to_vec()),
                TRUNCATE => match <[u8; 8]>::try_from(data) {
                    Ok(len) => st.log.truncate(u64::from_le_bytes(len) as usize),
                    Err(_) => {
                        let reason = format!("a truncate record of {} bytes, not 8", data.len());
                        st.damage = Some(Damage::Corrupt { record: i, records: n, reason });
                        return st;
                    }
                },
                _ => {
                    st.damage = Some(Damage::Corrupt { record: i, records: n, reason: format!("unknown record kind {kind}") });
                    return st;
                }
            }
        }
        st
    }
}

/// A handle to one server's durable state. Clones share the same disk.
#[derive(Clone, Debug, Default)]
pub struct Persister(Arc<Mutex<Disk>>);

impl Persister {
    /// An empty disk with the default [`DiskConfig`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty disk that behaves as `cfg` says.
    pub fn with_disk(cfg: DiskConfig) -> Self {
        let mut disk = Disk::default();
        disk.cfg = cfg;
        Persister(Arc::new(Mutex::new(disk)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Disk> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The disk a server finds when it boots again after a crash: what was
    /// synced; with `torn`, also a prefix of the first unsynced write; with
    /// `corrupt`, one synced record with a byte flipped. The crashed
    /// instance keeps writing (if at all) to the old handle.
    pub fn crash(&self, torn: bool, corrupt: bool, rng: &mut impl Rng) -> (Persister, CrashReport) {
        let d = self.lock();
        let mut records = d.records[..d.durable].to_vec();
        let mut report = CrashReport { writes_lost: (d.records.len() - d.durable) as u64, ..Default::default() };
        if torn {
            if let Some(next) = d.records.get(d.durable) {
                // Anything from none of it to all but its last byte.
                let keep = rng.gen_range(0..next.len());
                if keep > 0 {
                    records.push(next[..keep].to_vec());
                    report.torn = true;
                }
            }
        }
        if corrupt && d.durable > 0 {
            let r = &mut records[rng.gen_range(0..d.durable)];
            if r.len() > HEADER {
                let at = rng.gen_range(HEADER..r.len());
                r[at] ^= 1 << rng.gen_range(0..8);
                report.corrupted = true;
            }
        }
        let durable = records.len();
        let disk = Disk { cfg: d.cfg, records, durable, ..Disk::default() };
        (Persister(Arc::new(Mutex::new(disk))), report)
    }

    /// An independent copy of everything written, synced or not.
    pub fn copy(&self) -> Self {
        Persister(Arc::new(Mutex::new(self.lock().clone())))
    }

    /// How many writes so far (synced or not): pass to [`sync_to`](Self::sync_to).
    pub fn written(&self) -> usize {
        self.lock().records.len()
    }

    /// Returns once every write up to `seq` (and everything written before
    /// this call) is durable: one sync, a latency drawn from the disk's
    /// range. A crash in the meantime leaves them unsynced.
    pub async fn sync_to(&self, seq: usize) {
        let (target, latency, early) = {
            let d = self.lock();
            if d.durable >= seq {
                return;
            }
            (d.records.len().max(seq), d.sync_delay(), d.tamper.ack_before_durable)
        };
        if latency.is_zero() {
            // An instant disk (benchmarks compare against it).
            self.lock().synced(target);
            return;
        }
        let this = self.clone();
        let settle = async move {
            tokio::time::sleep(latency).await;
            this.lock().synced(target);
        };
        if early {
            tokio::spawn(settle);
        } else {
            settle.await;
        }
    }

    /// Calls the harness's hook, if any, on a write of `kind` (the disk's
    /// lock is not held).
    fn wrote(&self, kind: WriteKind) {
        let (hook, end) = {
            let d = self.lock();
            (d.on_write.0.clone(), d.records.len())
        };
        if let Some(h) = hook {
            h(self, kind, end);
        }
    }

    /// The harness watches this disk's writes with `hook` (see [`WriteHook`]).
    pub fn on_write(&self, hook: WriteHook) {
        self.lock().on_write = WriteHookSlot(Some(hook));
    }

    /// How many of the records written are durable.
    pub fn durable_len(&self) -> usize {
        self.lock().durable
    }

    pub fn save_hard_state(&self, hs: &HardState) {
        self.save_raw_hard_state(encode(hs));
    }

    /// Keeps the first `len` log records (indices 1..=len) and drops the rest.
    pub fn truncate_log(&self, len: usize) {
        self.lock().write(frame(TRUNCATE, &(len as u64).to_le_bytes()));
        self.wrote(WriteKind::Truncate);
    }

    pub fn append_log<'a>(&self, entries: impl IntoIterator<Item = &'a Entry>) {
        let before = {
            let mut d = self.lock();
            let before = d.records.len();
            for e in entries {
                d.write(frame(APPEND, &encode(e)));
            }
            before
        };
        if self.written() > before {
            self.wrote(WriteKind::Append);
        }
    }

    /// Replaces the hard state with `bytes` as they are (for a Raft with an
    /// encoding of its own; see [`raw_state`](Self::raw_state)).
    pub fn save_raw_hard_state(&self, bytes: Vec<u8>) {
        self.lock().write(frame(HARD_STATE, &bytes));
        self.wrote(WriteKind::HardState);
    }

    /// Appends log records as they are (record i of the whole log is meant
    /// to hold index i + 1). [`truncate_log`](Self::truncate_log) and
    /// [`log_len`](Self::log_len) count these records too.
    pub fn append_raw_log(&self, records: impl IntoIterator<Item = Vec<u8>>) {
        let before = {
            let mut d = self.lock();
            let before = d.records.len();
            for r in records {
                d.write(frame(APPEND, &r));
            }
            before
        };
        if self.written() > before {
            self.wrote(WriteKind::Append);
        }
    }

    /// The state as stored, undecoded, with what recovery found wrong. A
    /// torn last record is cut off the log as it is read (as opening a
    /// write-ahead log truncates it), so later writes follow the last good
    /// record.
    pub fn raw_state(&self) -> RawState {
        let mut d = self.lock();
        let st = d.replay();
        if let Some(Damage::TornTail { record }) = st.damage {
            d.records.truncate(record);
            d.durable = d.durable.min(record);
        }
        st
    }

    /// What recovery would find wrong, without repairing anything.
    pub fn damage(&self) -> Option<Damage> {
        self.lock().replay().damage
    }

    /// Bytes of Raft state stored (6.5840's RaftStateSize): the hard state
    /// and the log as they stand, not the records that led there.
    pub fn raft_state_size(&self) -> usize {
        let st = self.lock().replay();
        st.hard_state.len() + st.log.iter().map(Vec::len).sum::<usize>()
    }

    pub fn log_len(&self) -> usize {
        self.lock().replay().log.len()
    }

    /// Decodes the stored state (this crate's format); an empty disk
    /// recovers as a fresh server. A torn last write is dropped; a corrupt
    /// record is an error (see [`StorageError::Corrupt`]).
    pub fn recover(&self) -> Result<Recovered, StorageError> {
        let st = self.raw_state();
        let torn_tail = match st.damage {
            Some(Damage::Corrupt { record, records, reason }) => return Err(StorageError::Corrupt { record, records, reason }),
            Some(Damage::TornTail { .. }) => true,
            None => false,
        };
        let dec = |what, e: crate::net::RpcError| StorageError::Decode { what, reason: e.to_string() };
        let hard_state = if st.hard_state.is_empty() {
            HardState::default()
        } else {
            decode(&st.hard_state, "persisted hard state").map_err(|e| dec("hard state", e))?
        };
        let log = st
            .log
            .iter()
            .map(|b| decode(b, "persisted log entry").map_err(|e| dec("log entry", e)))
            .collect::<Result<Vec<Entry>, _>>()?;
        Ok(Recovered { hard_state, log, torn_tail })
    }

    /// Test-only: breaks this disk on purpose (see [`DiskTamper`]).
    #[doc(hidden)]
    pub fn tamper(&self, t: DiskTamper) {
        self.lock().tamper = t;
    }

    /// The disk stalls for `d` (a fault the harness injects, as a real
    /// disk's fsync now and then takes hundreds of milliseconds): no sync
    /// started meanwhile ends before `d` from now.
    pub fn stall(&self, d: Duration) {
        self.lock().stalled_until = Some(std::time::Instant::now() + d);
    }

    /// Whether the disk holds a corrupt record (checksums checked whatever
    /// the tamper says): the harness's own view of the disk.
    pub fn holds_corruption(&self) -> bool {
        matches!(self.lock().replay_checking(true).damage, Some(Damage::Corrupt { .. }))
    }
}
