//! Client histories: the operations clients issued against the key/value
//! service, with the (virtual) times they were called and returned, plus
//! their JSON form, validation, a recorder usable from async client code, and
//! a generator of legal random histories for tests and benchmarks.
//!
//! An operation whose `return_ns` is `None` is *pending*: the client never
//! learned its outcome, so it may have taken effect at any point after its
//! call, or never.
//!
//! Besides the ops, a history may carry facts the checker ignores but a
//! person reading a failure needs: per op, the server that answered it and
//! the term and log index at which it was applied; the run spec that
//! produced it (`spec`, opaque JSON); and what happened around the clients
//! (`events`: partitions, crashes, fault switches, leaders), each at a
//! virtual time (see [`Event`]). All of them are optional, so older files
//! load unchanged.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The three key/value operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    Get,
    Put,
    Append,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Put => "put",
            OpKind::Append => "append",
        }
    }
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub client: u64,
    pub kind: OpKind,
    pub key: String,
    /// The argument of a put or append; `""` for a get.
    pub value: String,
    /// The value a get returned; `None` for put/append and for pending ops.
    pub output: Option<String>,
    pub call_ns: u64,
    /// `None` = pending: may or may not have taken effect.
    pub return_ns: Option<u64>,
    /// The server that answered (the one the successful attempt went to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<u64>,
    /// The Raft term and log index at which the op was applied, when the
    /// answer says (an answer from a duplicate table, or one a broken
    /// server made up without the log, has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

impl Op {
    /// An op without server-side facts.
    pub fn new(
        client: u64,
        kind: OpKind,
        key: impl Into<String>,
        value: impl Into<String>,
        output: Option<String>,
        call_ns: u64,
        return_ns: Option<u64>,
    ) -> Op {
        Op { client, kind, key: key.into(), value: value.into(), output, call_ns, return_ns, server: None, term: None, index: None }
    }

    pub fn is_pending(&self) -> bool {
        self.return_ns.is_none()
    }
}

/// Something that happened around the clients during a run, at a virtual
/// time (ns since the run started, as op times): a fault switched on or
/// off, a server crashed, a leader was elected. The checker ignores
/// events; the timeline draws them. `kind` is one of [`kinds`] (unknown
/// kinds are kept and shown as plain marks); the other fields are used by
/// the kinds that say so.
///
/// Every fact the timeline draws has a typed field (`role`, `duration_ms`,
/// `faults`); `detail` is only words for a person. Files written before
/// those fields existed said them in `detail` ("leader", "500 ms", "loss
/// 10/5%"): they are read into the typed fields once, as the file is
/// loaded, and only then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "EventFile")]
pub struct Event {
    pub at_ns: u64,
    pub kind: String,
    /// The server it concerns (crash, restart, disconnect, connect, role,
    /// pause, resume, disk_stall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<u64>,
    /// The term (role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// The role the server took (role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// How long, in ms of virtual time: the server freezes (pause), no sync
    /// it starts ends sooner (disk_stall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The loss, duplication and delay in force from now on (faults); all
    /// zero when every such fault is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<NetFaults>,
    /// The sides of a partition: servers in different groups cannot reach
    /// each other; a server in no group reaches nobody.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Vec<u64>>,
    /// Directed links (from, to) cut, one way each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<[u64; 2]>,
    /// Words for a person, shown as they are and never read by a program:
    /// the boot of a restart, what a crash lost, why a server was cut off,
    /// the action of a nemesis event, a phase.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// An [`Event`] as a file holds it: the same fields, before the facts
/// older files wrote as words are read into the typed ones.
#[derive(Deserialize)]
struct EventFile {
    at_ns: u64,
    kind: String,
    #[serde(default)]
    server: Option<u64>,
    #[serde(default)]
    term: Option<u64>,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    duration_ms: Option<u64>,
    #[serde(default)]
    faults: Option<NetFaults>,
    #[serde(default)]
    groups: Vec<Vec<u64>>,
    #[serde(default)]
    links: Vec<[u64; 2]>,
    #[serde(default)]
    detail: String,
}

impl From<EventFile> for Event {
    fn from(f: EventFile) -> Event {
        let mut e = Event {
            at_ns: f.at_ns,
            kind: f.kind,
            server: f.server,
            term: f.term,
            role: f.role,
            duration_ms: f.duration_ms,
            faults: f.faults,
            groups: f.groups,
            links: f.links,
            detail: f.detail,
        };
        e.upgrade();
        e
    }
}

impl Event {
    pub fn new(at_ns: u64, kind: &str) -> Event {
        Event {
            at_ns,
            kind: kind.to_string(),
            server: None,
            term: None,
            role: None,
            duration_ms: None,
            faults: None,
            groups: Vec::new(),
            links: Vec::new(),
            detail: String::new(),
        }
    }
    pub fn server(mut self, s: u64) -> Event {
        self.server = Some(s);
        self
    }
    pub fn term(mut self, t: u64) -> Event {
        self.term = Some(t);
        self
    }
    pub fn role(mut self, r: Role) -> Event {
        self.role = Some(r);
        self
    }
    pub fn duration_ms(mut self, ms: u64) -> Event {
        self.duration_ms = Some(ms);
        self
    }
    pub fn faults(mut self, f: NetFaults) -> Event {
        self.faults = Some(f);
        self
    }
    pub fn detail(mut self, d: impl Into<String>) -> Event {
        self.detail = d.into();
        self
    }

    /// What the event says in words: its typed facts, then `detail`, e.g.
    /// `leader`, `500 ms`, `300 ms, as it leads with a rewritten log`,
    /// `loss 10/5% dup 30%`.
    pub fn text(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(r) = self.role {
            parts.push(r.as_str().to_string());
        }
        if let Some(ms) = self.duration_ms {
            parts.push(format!("{ms} ms"));
        }
        if let Some(f) = self.faults.filter(|f| !f.is_off()) {
            parts.push(f.to_string());
        }
        if !self.detail.is_empty() {
            parts.push(self.detail.clone());
        }
        parts.join(", ")
    }

    /// Reads the facts that files written before the typed fields said in
    /// `detail` into those fields, for the kinds that had them: a role
    /// event's role, a pause's or disk stall's "<n> ms" (what follows
    /// ", " stays as words), a faults event's rates. The words read are
    /// taken out of `detail`; words it cannot read stay there, and the
    /// field stays empty. Does nothing to an event that has the field.
    fn upgrade(&mut self) {
        match self.kind.as_str() {
            kinds::ROLE if self.role.is_none() => {
                if let Some(r) = Role::parse(self.detail.trim()) {
                    self.role = Some(r);
                    self.detail.clear();
                }
            }
            kinds::PAUSE | kinds::DISK_STALL if self.duration_ms.is_none() => {
                let (head, rest) = match self.detail.split_once(", ") {
                    Some((h, r)) => (h, r),
                    None => (self.detail.as_str(), ""),
                };
                if let Some(ms) = head.strip_suffix(" ms").and_then(|n| n.parse::<u64>().ok()) {
                    self.duration_ms = Some(ms);
                    self.detail = rest.to_string();
                }
            }
            kinds::FAULTS if self.faults.is_none() => {
                if let Some(f) = NetFaults::parse(&self.detail) {
                    self.faults = Some(f);
                    self.detail.clear();
                }
            }
            _ => {}
        }
    }
}

/// The role a Raft server takes in a term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leader,
    Candidate,
    Follower,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Candidate => "candidate",
            Role::Follower => "follower",
        }
    }

    /// The role named exactly so (as [`Role::as_str`] spells it).
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Leader, Role::Candidate, Role::Follower].into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Loss, duplication and delay of the messages between servers and clerks,
/// in whole percent and ms (what a faults event switches to). Zero fields
/// are left out of a file, so "every fault off" is `{}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetFaults {
    /// Percent of requests lost.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub request_loss_pct: u64,
    /// Percent of replies lost.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reply_loss_pct: u64,
    /// Percent of messages delivered twice.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duplicate_pct: u64,
    /// Each request held back between these ms; `None` when not delayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<[u64; 2]>,
    /// Replies held back long, reordering them (labrpc's LongReordering).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub long_reordering: bool,
    /// Percent of messages of which a copy is replayed seconds later.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replay_pct: u64,
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}

impl NetFaults {
    /// Whether every fault is off.
    pub fn is_off(&self) -> bool {
        *self == NetFaults::default()
    }

    /// Reads the words [`NetFaults`]' `Display` writes (as older files have
    /// them in `detail`): `loss 10/5% dup 30% delay 0-27ms long-reordering`,
    /// any of them left out, "" for none. `None` for any other words.
    pub fn parse(s: &str) -> Option<NetFaults> {
        let mut f = NetFaults::default();
        let mut words = s.split_whitespace();
        let pct = |w: Option<&str>| w.and_then(|w| w.strip_suffix('%')).and_then(|n| n.parse::<u64>().ok());
        while let Some(w) = words.next() {
            match w {
                "loss" => {
                    let (req, rep) = words.next()?.split_once('/')?;
                    f.request_loss_pct = req.parse().ok()?;
                    f.reply_loss_pct = pct(Some(rep))?;
                }
                "dup" => f.duplicate_pct = pct(words.next())?,
                "delay" => {
                    let (lo, hi) = words.next()?.strip_suffix("ms")?.split_once('-')?;
                    f.delay_ms = Some([lo.parse().ok()?, hi.parse().ok()?]);
                }
                "long-reordering" => f.long_reordering = true,
                "replay" => f.replay_pct = pct(words.next())?,
                _ => return None,
            }
        }
        Some(f)
    }
}

impl std::fmt::Display for NetFaults {
    /// One short line, e.g. `loss 10/5% dup 30% delay 0-27ms
    /// long-reordering replay 2%`; empty when every fault is off.
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.request_loss_pct > 0 || self.reply_loss_pct > 0 {
            parts.push(format!("loss {}/{}%", self.request_loss_pct, self.reply_loss_pct));
        }
        if self.duplicate_pct > 0 {
            parts.push(format!("dup {}%", self.duplicate_pct));
        }
        if let Some([lo, hi]) = self.delay_ms {
            parts.push(format!("delay {lo}-{hi}ms"));
        }
        if self.long_reordering {
            parts.push("long-reordering".to_string());
        }
        if self.replay_pct > 0 {
            parts.push(format!("replay {}%", self.replay_pct));
        }
        out.write_str(&parts.join(" "))
    }
}

/// The event kinds a run writes and the timeline draws.
pub mod kinds {
    /// Servers split into `groups` (links between groups cut both ways,
    /// links within a group restored). Replaces the previous cuts between
    /// the servers.
    pub const PARTITION: &str = "partition";
    /// The directed `links` cut (in addition to what is cut already).
    pub const CUT: &str = "cut";
    /// Every link between servers restored and every server reconnected.
    pub const HEAL: &str = "heal";
    /// `server` cut off from everyone (clerks included), both ways.
    pub const DISCONNECT: &str = "disconnect";
    /// `server` no longer cut off from everyone (partitions stay).
    pub const CONNECT: &str = "connect";
    /// `server` crashed (its durable state kept).
    pub const CRASH: &str = "crash";
    /// `server` restarted from its durable state (`detail`: its boot).
    pub const RESTART: &str = "restart";
    /// `server` froze (no ticks, no receives), for `duration_ms`.
    pub const PAUSE: &str = "pause";
    /// `server` runs again after a pause.
    pub const RESUME: &str = "resume";
    /// Loss, duplication and delay from now on: `faults`, all zero when
    /// every such fault is off.
    pub const FAULTS: &str = "faults";
    /// `server` took `role` in `term`.
    pub const ROLE: &str = "role";
    /// A nemesis action fired (`detail`: which); its effects follow as
    /// events of their own.
    pub const NEMESIS: &str = "nemesis";
    /// The network began holding back a share of the messages (`detail`).
    pub const HOLD: &str = "hold";
    /// The messages held back were let go at once (`detail`: how many).
    pub const RELEASE: &str = "release";
    /// Which servers a clerk can reach changed (`detail`).
    pub const CLERK_LINKS: &str = "clerk_links";
    /// A phase of the run began (`detail`), e.g. the liveness phase.
    pub const PHASE: &str = "phase";
    /// `server`'s disk stalled: no sync it starts ends within `duration_ms`
    /// (`detail`: why, if it says).
    pub const DISK_STALL: &str = "disk_stall";
}

/// A recorded run: which scenario and seed produced it, its operations, and
/// optionally the spec that produced it and what happened around the clients.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct History {
    pub scenario: String,
    pub seed: u64,
    /// The run spec (whatever JSON the producer wrote; this module does not
    /// interpret it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<serde_json::Value>,
    pub ops: Vec<Op>,
    /// In order of time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}

/// Why a history could not be loaded or is not well formed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: line {line}, column {column}: invalid history JSON: {message}")]
    Json { path: String, line: usize, column: usize, message: String },
    #[error("{path}: op {index}: {reason}")]
    Invalid { path: String, index: usize, reason: String },
    #[error("{path}: line {line}: {reason}")]
    Edn { path: String, line: usize, reason: String },
    #[error("{path}: no operations")]
    Empty { path: String },
}

impl HistoryError {
    fn with_path(self, p: &str) -> Self {
        match self {
            HistoryError::Io { source, .. } => HistoryError::Io { path: p.to_string(), source },
            HistoryError::Json { line, column, message, .. } => {
                HistoryError::Json { path: p.to_string(), line, column, message }
            }
            HistoryError::Invalid { index, reason, .. } => HistoryError::Invalid { path: p.to_string(), index, reason },
            HistoryError::Edn { line, reason, .. } => HistoryError::Edn { path: p.to_string(), line, reason },
            HistoryError::Empty { .. } => HistoryError::Empty { path: p.to_string() },
        }
    }
}

/// Checks that every op is well formed: a returned get has an output, put and
/// append have none, a pending op has none, and no op returns before it was
/// called. Returns the first problem found.
pub fn validate_ops(ops: &[Op]) -> Result<(), (usize, String)> {
    for (i, op) in ops.iter().enumerate() {
        if let Some(r) = op.return_ns {
            if r < op.call_ns {
                return Err((i, format!("returns at {r} ns, before its call at {} ns", op.call_ns)));
            }
        }
        match op.kind {
            OpKind::Get => {
                if op.return_ns.is_some() && op.output.is_none() {
                    return Err((i, "get returned but has no output".to_string()));
                }
                if op.return_ns.is_none() && op.output.is_some() {
                    return Err((i, "pending get (no return) has an output".to_string()));
                }
                if !op.value.is_empty() {
                    return Err((i, "get has a non-empty value argument".to_string()));
                }
            }
            OpKind::Put | OpKind::Append => {
                if op.output.is_some() {
                    return Err((i, format!("{} has an output (only gets have one)", op.kind)));
                }
            }
        }
    }
    Ok(())
}

impl History {
    pub fn new(scenario: impl Into<String>, seed: u64, ops: Vec<Op>) -> Self {
        History { scenario: scenario.into(), seed, spec: None, ops, events: Vec::new() }
    }

    /// Validates the ops (see [`validate_ops`]).
    pub fn validate(&self) -> Result<(), HistoryError> {
        validate_ops(&self.ops).map_err(|(index, reason)| HistoryError::Invalid {
            path: "<history>".to_string(),
            index,
            reason,
        })
    }

    /// The history as pretty-enough JSON: one op per line.
    pub fn to_json_string(&self) -> String {
        // One op per line keeps files diffable and readable while staying
        // exactly the documented format.
        let mut s = String::with_capacity(64 + self.ops.len() * 128);
        s.push_str("{\"scenario\": ");
        s.push_str(&serde_json::to_string(&self.scenario).expect("string serialises"));
        s.push_str(", \"seed\": ");
        s.push_str(&self.seed.to_string());
        if let Some(spec) = &self.spec {
            s.push_str(",\n\"spec\": ");
            s.push_str(&serde_json::to_string(spec).expect("a JSON value serialises"));
        }
        s.push_str(", \"ops\": [");
        for (i, op) in self.ops.iter().enumerate() {
            s.push_str(if i == 0 { "\n  " } else { ",\n  " });
            s.push_str(&serde_json::to_string(op).expect("op serialises"));
        }
        s.push_str(if self.ops.is_empty() { "]" } else { "\n]" });
        if !self.events.is_empty() {
            s.push_str(", \"events\": [");
            for (i, e) in self.events.iter().enumerate() {
                s.push_str(if i == 0 { "\n  " } else { ",\n  " });
                s.push_str(&serde_json::to_string(e).expect("event serialises"));
            }
            s.push_str("\n]");
        }
        s.push_str("}\n");
        s
    }

    /// Writes [`History::to_json_string`] to `path`.
    pub fn write_json(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.to_json_string())
    }

    /// Parses and validates a history from JSON text.
    pub fn from_json_str(text: &str) -> Result<History, HistoryError> {
        Self::from_json_str_named(text, "<json>")
    }

    /// Like [`History::from_json_str`], naming `name` in errors.
    pub fn from_json_str_named(text: &str, name: &str) -> Result<History, HistoryError> {
        let h: History = serde_json::from_str(text).map_err(|e| HistoryError::Json {
            path: name.to_string(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        h.validate().map_err(|e| e.with_path(name))?;
        Ok(h)
    }

    /// Reads, parses and validates a JSON history file; errors name the file.
    pub fn load_json(path: impl AsRef<Path>) -> Result<History, HistoryError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Io { path: name.clone(), source })?;
        Self::from_json_str_named(&text, &name)
    }
}

/// serde_json appends " at line L column C"; we report those separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Identifies an operation started with [`Recorder::call`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpId(pub usize);

/// Collects a history from concurrent (async) clients. Cheap to clone; all
/// clones share one history.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    ops: Arc<Mutex<Vec<Op>>>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Op>> {
        // A panic elsewhere while holding the lock leaves the Vec intact.
        self.ops.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the call of an operation; it stays pending until [`Recorder::ret`].
    pub fn call(
        &self,
        client: u64,
        kind: OpKind,
        key: impl Into<String>,
        value: impl Into<String>,
        now_ns: u64,
    ) -> OpId {
        let mut ops = self.lock();
        ops.push(Op::new(client, kind, key, value, None, now_ns, None));
        OpId(ops.len() - 1)
    }

    /// Records the return of `id` with the value a get read (`None` for
    /// put/append). Unknown ids are ignored.
    pub fn ret(&self, id: OpId, output: Option<String>, now_ns: u64) {
        self.ret_from(id, output, now_ns, None, None);
    }

    /// As [`Recorder::ret`], with the server that answered and, if it said,
    /// the (term, index) at which the op was applied.
    pub fn ret_from(&self, id: OpId, output: Option<String>, now_ns: u64, server: Option<u64>, applied: Option<(u64, u64)>) {
        let mut ops = self.lock();
        if let Some(op) = ops.get_mut(id.0) {
            op.return_ns = Some(now_ns.max(op.call_ns));
            op.output = if op.kind == OpKind::Get { Some(output.unwrap_or_default()) } else { None };
            op.server = server;
            (op.term, op.index) = (applied.map(|a| a.0), applied.map(|a| a.1));
        }
    }

    /// The ops so far; those not returned are pending.
    pub fn snapshot(&self) -> Vec<Op> {
        self.lock().clone()
    }

    /// The ops so far as a [`History`].
    pub fn history(&self, scenario: impl Into<String>, seed: u64) -> History {
        History::new(scenario, seed, self.snapshot())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Generation of legal random histories (for tests and benchmarks): a real
/// sequential execution of a key/value store, with each op's effect at a
/// random point inside its [call, return] interval.
pub mod gen {
    use super::*;

    /// Parameters of [`generate`].
    #[derive(Clone, Debug)]
    pub struct GenConfig {
        pub ops: usize,
        pub keys: usize,
        pub clients: usize,
        pub seed: u64,
        /// Probability that a put/append never returns (pending); half of
        /// those take effect at some time after their call, half never do.
        pub pending_writes: f64,
        /// Probability that a get never returns.
        pub pending_gets: f64,
        /// Relative weights of get, put, append.
        pub weights: [u32; 3],
        /// Probability that a written value is one of the short values
        /// "a", "b", "ab" instead of a unique one (so values repeat).
        pub repeat_values: f64,
        /// Probability that an op is slow: in flight 50 to 100 times longer
        /// than usual (like a client stuck behind a partition).
        pub slow_ops: f64,
    }

    impl Default for GenConfig {
        fn default() -> Self {
            GenConfig {
                ops: 1000,
                keys: 10,
                clients: 10,
                seed: 1,
                pending_writes: 0.0,
                pending_gets: 0.0,
                weights: [50, 20, 30],
                repeat_values: 0.05,
                slow_ops: 0.0,
            }
        }
    }

    /// A small deterministic PRNG (splitmix64).
    #[derive(Clone, Debug)]
    pub struct Rng(pub u64);

    impl Rng {
        pub fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        /// Uniform in `0..n` (n > 0).
        pub fn below(&mut self, n: u64) -> u64 {
            ((self.next_u64() as u128 * n as u128) >> 64) as u64
        }
        pub fn chance(&mut self, p: f64) -> bool {
            ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
        }
    }

    /// Generates a legal history. Ops are ordered by call time.
    pub fn generate(cfg: &GenConfig) -> History {
        let mut rng = Rng(cfg.seed ^ 0x5EED_0000_0000_0000);
        let clients = cfg.clients.max(1);
        let keys = cfg.keys.max(1);
        let wsum: u32 = cfg.weights.iter().sum::<u32>().max(1);
        // (client next-free time) per client; pick the earliest client each time.
        let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<(u64, usize)>> =
            (0..clients).map(|c| std::cmp::Reverse((rng.below(50), c))).collect();
        let mut seq = vec![0u64; clients];
        let mut ops = Vec::with_capacity(cfg.ops);
        // (effect time, op index) for ops that take effect.
        let mut effects: Vec<(u64, usize)> = Vec::with_capacity(cfg.ops);
        while ops.len() < cfg.ops {
            let std::cmp::Reverse((t, c)) = heap.pop().expect("clients");
            let call = t + rng.below(20);
            let mut dur = 1 + rng.below(100);
            if cfg.slow_ops > 0.0 && rng.chance(cfg.slow_ops) {
                dur *= 50 + rng.below(51);
            }
            let w = rng.below(wsum as u64) as u32;
            let kind = if w < cfg.weights[0] {
                OpKind::Get
            } else if w < cfg.weights[0] + cfg.weights[1] {
                OpKind::Put
            } else {
                OpKind::Append
            };
            let key = format!("k{}", rng.below(keys as u64));
            let value = match kind {
                OpKind::Get => String::new(),
                _ => {
                    if rng.chance(cfg.repeat_values) {
                        ["a", "b", "ab"][rng.below(3) as usize].to_string()
                    } else {
                        format!("x{c}.{}y", seq[c])
                    }
                }
            };
            seq[c] += 1;
            let pending = match kind {
                OpKind::Get => rng.chance(cfg.pending_gets),
                _ => rng.chance(cfg.pending_writes),
            };
            let idx = ops.len();
            if pending {
                if kind != OpKind::Get && rng.below(2) == 0 {
                    effects.push((call + rng.below(dur * 20 + 1), idx));
                }
            } else {
                effects.push((call + rng.below(dur + 1), idx));
            }
            ops.push(Op::new(c as u64, kind, key, value, None, call, if pending { None } else { Some(call + dur) }));
            heap.push(std::cmp::Reverse((call + dur, c)));
        }
        effects.sort_unstable();
        let mut store: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        for &(_, i) in &effects {
            let op = &mut ops[i];
            match op.kind {
                OpKind::Get => op.output = Some(store.get(&op.key).cloned().unwrap_or_default()),
                OpKind::Put => {
                    store.insert(op.key.clone(), op.value.clone());
                }
                OpKind::Append => store.entry(op.key.clone()).or_default().push_str(&op.value),
            }
        }
        ops.sort_by_key(|o| o.call_ns);
        History::new(
            format!("generated ops={} keys={} clients={} seed={}", cfg.ops, cfg.keys, cfg.clients, cfg.seed),
            cfg.seed,
            ops,
        )
    }
}
