//! What a KV run records about itself besides the clerks' ops.
//!
//! * **World events**, always: every fault switched on or off (partitions
//!   with their sides, one-way cuts, heals, loss, duplication and delay),
//!   every crash, restart, disconnection, nemesis action and role change,
//!   at its virtual time. They go into the history (see
//!   [`crate::check::history::Event`]) for the timeline to draw. A run has
//!   a few hundred of them at most.
//! * **The per-server trace**, only when tracing is on: besides the world
//!   events, what each server's Raft reports (votes, appends with their
//!   index ranges, commits, rare situations), every entry each server
//!   applies, and every message to or from a server that was lost, cut,
//!   delayed or duplicated (the network's [`FaultHook`](crate::net::FaultHook)
//!   sees them all). Kept in memory as small fixed-size records; names and
//!   text are made only when the trace is written.
//!
//! Recording reads nothing the run depends on and draws no random number,
//! so a run is the same with and without it (same trace hash).
//!
//! The trace's file form is JSON lines ([`TraceLine`], one event a line, in
//! order of time), with a readable text form ([`render_text`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::check::history::{self, kinds, Event, Op};
use crate::net::FrameKind;
use crate::raft::{RaftEvent, Role};

/// Virtual ns since the simulation started (0 outside one).
pub fn sim_now_ns() -> u64 {
    madsim::time::TimeHandle::try_current().map_or(0, |t| t.elapsed().as_nanos() as u64)
}

/// What became of a message that did not simply arrive once, on time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgFate {
    /// Lost to the loss rate.
    Lost,
    /// Dropped at send: the link was cut.
    Cut,
    /// Dropped on arrival: the link was cut while it was in flight.
    CutOnArrival,
    /// Delivered after `delay_us`, and a second copy after `dup_us` if
    /// duplicated.
    Delivered { delay_us: u32, dup_us: Option<u32> },
    /// Held back until the network let it go (a late message).
    Held,
    /// Delivered after `delay_us`, and a copy again after `replay_us`.
    Replayed { delay_us: u32, replay_us: u32 },
}

/// One record of the trace, compact (no strings).
#[derive(Clone, Copy, Debug)]
enum What {
    Raft { server: u16, event: RaftEvent },
    Apply { server: u16, index: u64, term: u64, clerk: u64, seq: u64, cmd: Cmd },
    Msg { src: u32, dst: u32, reply: bool, service: u16, fate: MsgFate },
}

/// What an applied entry was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// A clerk request (its clerk id and number in the record).
    Request,
    /// An empty entry: a Raft's own no-op.
    Noop,
    /// Bytes that are no request.
    Undecodable,
}

#[derive(Clone, Copy, Debug)]
struct Rec {
    at_ns: u64,
    what: What,
}

#[derive(Default)]
struct State {
    /// Op time 0 in simulation ns (the KV cluster's start).
    origin_ns: u64,
    /// World events, at simulation ns.
    events: Vec<Event>,
    /// The trace, when tracing.
    trace: Option<Vec<Rec>>,
    /// Clerk id -> clerk index (for naming applied requests).
    clerks: HashMap<u64, u64>,
    /// Records in a trace since released.
    released: usize,
}

/// A run's log of world events and, optionally, its trace. Clones share it.
#[derive(Clone, Default)]
pub struct RunLog {
    /// Fixed at creation, read without the lock.
    tracing: bool,
    state: Arc<Mutex<State>>,
}

fn ip_word(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(v6) => u128::from(v6) as u32,
    }
}

impl RunLog {
    /// A log; with `trace`, the per-server trace is recorded too.
    pub fn new(trace: bool) -> RunLog {
        let log = RunLog { tracing: trace, state: Arc::default() };
        if trace {
            log.lock().trace = Some(Vec::with_capacity(1 << 12));
        }
        log
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn tracing(&self) -> bool {
        self.tracing
    }

    /// Frees the trace's records (the run is over and its trace written
    /// or not needed); [`RunLog::trace_len`] still says how many there were.
    pub fn release_trace(&self) {
        let mut s = self.lock();
        let n = s.trace.as_ref().map_or(0, Vec::len);
        s.released = n;
        s.trace = None;
    }

    /// Op times count from now.
    pub fn set_origin(&self) {
        self.lock().origin_ns = sim_now_ns();
    }

    /// Clerk `index` has the id `id` in its requests.
    pub fn clerk(&self, id: u64, index: u64) {
        self.lock().clerks.insert(id, index);
    }

    /// Records a world event (its `at_ns` is set to now).
    pub fn event(&self, mut e: Event) {
        e.at_ns = sim_now_ns();
        self.lock().events.push(e);
    }

    /// Records what server `server`'s Raft reported: role changes as world
    /// events, the rest in the trace.
    pub fn raft(&self, server: usize, event: &RaftEvent) {
        if !self.tracing && !matches!(event, RaftEvent::Role { .. }) {
            return;
        }
        let at_ns = sim_now_ns();
        let mut s = self.lock();
        if let RaftEvent::Role { term, role } = *event {
            let role = match role {
                Role::Leader => history::Role::Leader,
                Role::Candidate => history::Role::Candidate,
                Role::Follower => history::Role::Follower,
            };
            s.events.push(Event::new(at_ns, kinds::ROLE).server(server as u64).term(term).role(role));
            return;
        }
        if let Some(t) = &mut s.trace {
            t.push(Rec { at_ns, what: What::Raft { server: server as u16, event: *event } });
        }
    }

    /// Server `server` applied the entry at `index` of `term`: `request`
    /// is (clerk id, request number) when it is a clerk request.
    pub fn apply(&self, server: usize, index: u64, term: u64, cmd: Cmd, request: (u64, u64)) {
        if !self.tracing {
            return;
        }
        let at_ns = sim_now_ns();
        if let Some(t) = &mut self.lock().trace {
            let (clerk, seq) = request;
            t.push(Rec { at_ns, what: What::Apply { server: server as u16, index, term, clerk, seq, cmd } });
        }
    }

    /// A message from `src` to `dst` met `fate`.
    pub fn message(&self, src: IpAddr, dst: IpAddr, kind: FrameKind, service: u16, fate: MsgFate) {
        if !self.tracing {
            return;
        }
        let at_ns = sim_now_ns();
        if let Some(t) = &mut self.lock().trace {
            let what = What::Msg { src: ip_word(src), dst: ip_word(dst), reply: kind == FrameKind::Reply, service, fate };
            t.push(Rec { at_ns, what });
        }
    }

    /// The world events, in op time (ns since the cluster started; earlier
    /// ones at 0).
    pub fn events(&self) -> Vec<Event> {
        let s = self.lock();
        s.events.iter().map(|e| Event { at_ns: e.at_ns.saturating_sub(s.origin_ns), ..e.clone() }).collect()
    }

    /// Records in the trace so far (0 when not tracing).
    pub fn trace_len(&self) -> usize {
        let s = self.lock();
        s.trace.as_ref().map_or(s.released, Vec::len)
    }

    /// The trace as lines, in order of time (world events included), in op
    /// time; None when not tracing. `hosts` names a host ("s2", "c4");
    /// `ops` (the history) names applied requests.
    pub fn trace_lines(&self, hosts: &dyn Fn(IpAddr) -> String, ops: &[Op]) -> Option<Vec<TraceLine>> {
        let s = self.lock();
        let recs = s.trace.as_ref()?;
        let origin = s.origin_ns;
        let at = |ns: u64| ns.saturating_sub(origin);
        // The k-th op of clerk c is its request number k (numbers start at 1).
        let mut by_clerk: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            by_clerk.entry(op.client).or_default().push(i);
        }
        let host_names: Mutex<HashMap<u32, String>> = Mutex::new(HashMap::new());
        let name = |w: u32| -> String {
            host_names
                .lock()
                .unwrap()
                .entry(w)
                .or_insert_with(|| hosts(IpAddr::V4(std::net::Ipv4Addr::from(w))))
                .clone()
        };
        let mut lines = Vec::with_capacity(recs.len() + s.events.len());
        let mut ev = s.events.iter().peekable();
        for r in recs {
            while let Some(e) = ev.next_if(|e| e.at_ns <= r.at_ns) {
                lines.push(TraceLine::of_event(at(e.at_ns), e));
            }
            let (server, what) = match r.what {
                What::Raft { server, event } => (Some(server as u64), raft_what(&event)),
                What::Apply { server, index, term, clerk, seq, cmd } => {
                    let op = match cmd {
                        Cmd::Noop => "no-op".to_string(),
                        Cmd::Undecodable => "undecodable entry".to_string(),
                        Cmd::Request => match s.clerks.get(&clerk) {
                            Some(&c) => {
                                let op = by_clerk.get(&c).and_then(|v| v.get((seq as usize).wrapping_sub(1))).map(|&i| (i, &ops[i]));
                                match op {
                                    Some((i, o)) => format!("c{c} #{seq}: op {i} {}", short_op(o)),
                                    None => format!("c{c} #{seq}"),
                                }
                            }
                            None => format!("clerk {clerk:x} #{seq} (not recorded)"),
                        },
                    };
                    (Some(server as u64), TraceWhat::Apply { index, term, op })
                }
                What::Msg { src, dst, reply, service, fate } => {
                    let (from, to) = (name(src), name(dst));
                    // The server end names the line (the sender if both are).
                    let server = server_number(&from).or_else(|| server_number(&to));
                    let (fate, delay_us, dup_us) = match fate {
                        MsgFate::Lost => ("lost", None, None),
                        MsgFate::Cut => ("cut", None, None),
                        MsgFate::CutOnArrival => ("cut_on_arrival", None, None),
                        MsgFate::Delivered { delay_us, dup_us: None } => ("delayed", Some(delay_us as u64), None),
                        MsgFate::Delivered { delay_us, dup_us: Some(d) } => ("duplicated", Some(delay_us as u64), Some(d as u64)),
                        MsgFate::Held => ("held", None, None),
                        MsgFate::Replayed { delay_us, replay_us } => ("replayed", Some(delay_us as u64), Some(replay_us as u64)),
                    };
                    let what = TraceWhat::Msg {
                        from,
                        to,
                        msg: if reply { "reply" } else { "request" }.to_string(),
                        service: service_name(service),
                        fate: fate.to_string(),
                        delay_us,
                        dup_us,
                    };
                    (server, what)
                }
            };
            lines.push(TraceLine { at_ns: at(r.at_ns), server, what });
        }
        for e in ev {
            lines.push(TraceLine::of_event(at(e.at_ns), e));
        }
        Some(lines)
    }
}

fn server_number(host: &str) -> Option<u64> {
    host.strip_prefix('s')?.parse().ok()
}

fn service_name(service: u16) -> String {
    match service {
        crate::raft::RAFT_SERVICE => "raft".to_string(),
        crate::kv::KV_SERVICE => "kv".to_string(),
        crate::raft_rs::RAFT_RS_SERVICE => "raft-rs".to_string(),
        s => format!("service {s}"),
    }
}

fn short_op(o: &Op) -> String {
    let v: String = o.value.chars().take(24).collect();
    match o.kind {
        crate::check::OpKind::Get => format!("get {}", o.key),
        k => format!("{k} {} {v:?}", o.key),
    }
}

fn raft_what(e: &RaftEvent) -> TraceWhat {
    match *e {
        RaftEvent::Role { term, role } => TraceWhat::Role { term, role: format!("{role:?}").to_lowercase() },
        RaftEvent::Situation(s) => TraceWhat::Situation { situation: s.name().to_string() },
        RaftEvent::Vote { term, candidate, granted } => TraceWhat::Vote { term, candidate: candidate as u64, granted },
        RaftEvent::Appended { term, leader, from, to } => TraceWhat::Append { term, leader: leader as u64, from, to },
        RaftEvent::Committed { index } => TraceWhat::Commit { index },
    }
}

/// One line of a trace file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceLine {
    /// Virtual ns since the cluster started (the history's clock).
    pub at_ns: u64,
    /// The server it happened on (for a message, its server end: the
    /// sender if both ends are servers); absent for the network's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<u64>,
    #[serde(flatten)]
    pub what: TraceWhat,
}

/// What a trace line says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceWhat {
    /// The server took `role` (leader, candidate, follower) in `term`.
    Role { term: u64, role: String },
    /// The server answered `candidate`'s vote request of `term`.
    Vote { term: u64, candidate: u64, granted: bool },
    /// Entries `from..=to` appended, from `leader` of `term`.
    Append { term: u64, leader: u64, from: u64, to: u64 },
    /// The commit index advanced to `index`.
    Commit { index: u64 },
    /// The entry at `index` (of `term`) applied; `op` says what it was.
    Apply { index: u64, term: u64, op: String },
    /// A rare situation the Raft reported.
    Situation { situation: String },
    Crash,
    Restart {
        #[serde(default)]
        detail: String,
    },
    Disconnect,
    Connect,
    /// A message lost, cut, delayed or duplicated (`fate`), with its delay
    /// and the delay of the second copy, in µs.
    Msg {
        from: String,
        to: String,
        msg: String,
        service: String,
        fate: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delay_us: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dup_us: Option<u64>,
    },
    Partition { groups: Vec<Vec<u64>> },
    Cut { links: Vec<[u64; 2]> },
    Heal,
    Faults {
        #[serde(default)]
        detail: String,
    },
    Nemesis {
        #[serde(default)]
        detail: String,
    },
    ClerkLinks {
        #[serde(default)]
        detail: String,
    },
    Phase {
        #[serde(default)]
        detail: String,
    },
    /// A world event of another kind.
    Other {
        #[serde(default)]
        what: String,
        #[serde(default)]
        detail: String,
    },
}

impl TraceLine {
    /// A world event as a trace line.
    pub fn of_event(at_ns: u64, e: &Event) -> TraceLine {
        let d = e.text();
        let what = match e.kind.as_str() {
            kinds::ROLE => TraceWhat::Role { term: e.term.unwrap_or(0), role: d },
            kinds::CRASH => TraceWhat::Crash,
            kinds::RESTART => TraceWhat::Restart { detail: d },
            kinds::DISCONNECT => TraceWhat::Disconnect,
            kinds::CONNECT => TraceWhat::Connect,
            kinds::PARTITION => TraceWhat::Partition { groups: e.groups.clone() },
            kinds::CUT => TraceWhat::Cut { links: e.links.clone() },
            kinds::HEAL => TraceWhat::Heal,
            kinds::FAULTS => TraceWhat::Faults { detail: d },
            kinds::NEMESIS => TraceWhat::Nemesis { detail: d },
            kinds::CLERK_LINKS => TraceWhat::ClerkLinks { detail: d },
            kinds::PHASE => TraceWhat::Phase { detail: d },
            k => TraceWhat::Other { what: k.to_string(), detail: d },
        };
        TraceLine { at_ns, server: e.server, what }
    }

    /// Whether this is a message line.
    pub fn is_message(&self) -> bool {
        matches!(self.what, TraceWhat::Msg { .. })
    }

    /// Whether it concerns server `s`: on it, or a message to or from it.
    pub fn concerns(&self, s: u64) -> bool {
        if self.server == Some(s) {
            return true;
        }
        match &self.what {
            TraceWhat::Msg { from, to, .. } => server_number(from) == Some(s) || server_number(to) == Some(s),
            _ => false,
        }
    }

    /// The line in the text form.
    pub fn text(&self) -> String {
        let who = match self.server {
            Some(s) => format!("s{s}"),
            None => "net".to_string(),
        };
        format!("{:>12.6} s  {who:<4} {}", self.at_ns as f64 / 1e9, self.what.describe())
    }
}

fn list(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

impl TraceWhat {
    /// In words.
    pub fn describe(&self) -> String {
        match self {
            TraceWhat::Role { term, role } => format!("{role} in term {term}"),
            TraceWhat::Vote { term, candidate, granted } => {
                format!("vote for s{candidate} in term {term}: {}", if *granted { "granted" } else { "refused" })
            }
            TraceWhat::Append { term, leader, from, to } => {
                let r = if from == to { format!("{from}") } else { format!("{from}..{to}") };
                format!("appended {r} (leader s{leader}, term {term})")
            }
            TraceWhat::Commit { index } => format!("commit index {index}"),
            TraceWhat::Apply { index, term, op } => format!("applied {index} (term {term}): {op}"),
            TraceWhat::Situation { situation } => format!("situation: {situation}"),
            TraceWhat::Crash => "CRASH".to_string(),
            TraceWhat::Restart { detail } => format!("RESTART {detail}").trim_end().to_string(),
            TraceWhat::Disconnect => "disconnected from everyone".to_string(),
            TraceWhat::Connect => "reconnected".to_string(),
            TraceWhat::Msg { from, to, msg, service, fate, delay_us, dup_us } => {
                let mut s = format!("{from} -> {to} {service} {msg} {}", fate.replace('_', " "));
                let ms = |us: u64| format!("{:.1} ms", us as f64 / 1000.0);
                match (fate.as_str(), delay_us, dup_us) {
                    ("delayed", Some(d), _) => {
                        let _ = write!(s, " {}", ms(*d));
                    }
                    ("duplicated", Some(d), Some(d2)) => {
                        let _ = write!(s, " (copies after {} and {})", ms(*d), ms(*d2));
                    }
                    ("replayed", Some(d), Some(d2)) => {
                        let _ = write!(s, " (after {}, again after {})", ms(*d), ms(*d2));
                    }
                    ("held", _, _) => s.push_str(" back until released"),
                    _ => {}
                }
                s
            }
            TraceWhat::Partition { groups } => {
                let sides: Vec<String> = groups.iter().map(|g| format!("{{{}}}", list(g))).collect();
                format!("partition {}", sides.join(" | "))
            }
            TraceWhat::Cut { links } => {
                let l: Vec<String> = links.iter().map(|[a, b]| format!("{a}->{b}")).collect();
                format!("cut one way {}", l.join(" "))
            }
            TraceWhat::Heal => "heal: every link between servers restored".to_string(),
            TraceWhat::Faults { detail } if detail.is_empty() => "faults off (no loss, duplication or delay)".to_string(),
            TraceWhat::Faults { detail } => format!("faults: {detail}"),
            TraceWhat::Nemesis { detail } => format!("nemesis: {detail}"),
            TraceWhat::ClerkLinks { detail } => format!("clerk links: {detail}"),
            TraceWhat::Phase { detail } => format!("phase: {detail}"),
            TraceWhat::Other { what, detail } => format!("{what} {detail}").trim_end().to_string(),
        }
    }
}

/// The trace as JSON lines.
pub fn to_jsonl(lines: &[TraceLine]) -> String {
    let mut out = String::with_capacity(lines.len() * 96);
    for l in lines {
        out.push_str(&serde_json::to_string(l).expect("a trace line serialises"));
        out.push('\n');
    }
    out
}

/// The readable text form: a header, then one event a line.
pub fn render_text(lines: &[TraceLine]) -> String {
    let mut out = String::with_capacity(lines.len() * 80 + 256);
    out.push_str("# time (virtual, since the cluster started)  server  event\n");
    out.push_str("# net: the network's events; messages name their ends (sN: server N, cN: clerk N)\n");
    for l in lines {
        out.push_str(&l.text());
        out.push('\n');
    }
    out
}

/// Writes the trace to `path` (JSON lines) and its text form to `path.txt`.
pub fn write_trace(lines: &[TraceLine], path: &Path) -> std::io::Result<()> {
    std::fs::write(path, to_jsonl(lines))?;
    std::fs::write(text_path(path), render_text(lines))
}

/// Where [`write_trace`] puts the text form.
pub fn text_path(path: &Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".txt");
    p.into()
}

/// Parses a trace file's text; errors name `name` and the line.
pub fn parse_trace(text: &str, name: &str) -> Result<Vec<TraceLine>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: TraceLine = serde_json::from_str(line).map_err(|e| {
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            format!("{name}: line {}, column {}: invalid trace line: {msg}", i + 1, e.column())
        })?;
        out.push(l);
    }
    Ok(out)
}

/// Reads a trace file (JSON lines).
pub fn load_trace(path: &Path) -> Result<Vec<TraceLine>, String> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
    parse_trace(&text, &name)
}

/// The slice of a trace around a failure: the last `n` events before
/// `until_ns` on the `servers` given (every server if empty), the
/// network's events included and messages left out, then one line per
/// server counting the messages lost, cut, delayed and duplicated in the
/// same stretch of time.
pub fn slice(lines: &[TraceLine], servers: &[u64], until_ns: u64, n: usize) -> Vec<String> {
    let involved = |l: &TraceLine| servers.is_empty() || servers.iter().any(|s| l.concerns(*s)) || l.server.is_none();
    let before: Vec<&TraceLine> = lines.iter().filter(|l| l.at_ns <= until_ns).collect();
    let picked: Vec<&TraceLine> =
        before.iter().rev().filter(|l| !l.is_message() && involved(l)).take(n).copied().collect::<Vec<_>>().into_iter().rev().collect();
    let mut out: Vec<String> = picked.iter().map(|l| l.text()).collect();
    let from = picked.first().map_or(0, |l| l.at_ns);
    let mut counts: std::collections::BTreeMap<u64, std::collections::BTreeMap<String, u64>> = Default::default();
    for l in before.iter().filter(|l| l.at_ns >= from) {
        if let (TraceWhat::Msg { fate, .. }, Some(s)) = (&l.what, l.server) {
            if servers.is_empty() || servers.contains(&s) || servers.iter().any(|x| l.concerns(*x)) {
                *counts.entry(s).or_default().entry(fate.replace('_', " ")).or_default() += 1;
            }
        }
    }
    for (s, c) in counts {
        let parts: Vec<String> = c.iter().map(|(f, k)| format!("{k} {f}")).collect();
        out.push(format!("{:>14}  s{s:<3} messages since {:.6} s: {}", "", from as f64 / 1e9, parts.join(", ")));
    }
    out
}
