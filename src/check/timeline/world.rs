//! What a history's events say about the run around the clients, as
//! intervals of virtual time: the network's faults, loss/duplication/delay,
//! leaders by term, and per server its side of a partition, its crashes,
//! pauses, disk stalls and leaderships. Read from the typed fields of the
//! events only (never from their words).

use std::collections::{BTreeMap, BTreeSet};

use crate::check::history::{kinds, Event, NetFaults, Role};

/// Virtual time in seconds, e.g. `1.234 s`, with `digits` decimals.
pub fn secs(ns: u64, digits: usize) -> String {
    format!("{:.*} s", digits, ns as f64 / 1e9)
}

/// The run around the clients, over virtual time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct World {
    /// Network faults between servers (partitions, one-way cuts, servers cut
    /// off): the network lane, and bands across every lane.
    pub net: Vec<Span>,
    /// Loss, duplication or delay on.
    pub faults: Vec<Span>,
    /// Leaderships, by start; overlapping ones (a stale leader in a minority
    /// and the new one) are in different rows.
    pub leaders: Vec<Leadership>,
    /// Rows of the leader lane.
    pub leader_rows: usize,
    /// One lane per server, by id.
    pub servers: Vec<ServerLane>,
    /// Crashes and restarts, drawn as lines across every lane.
    pub marks: Vec<Mark>,
    /// Events drawn as no interval (nemesis actions, phases, clerk links,
    /// unknown kinds, events missing the fact they need): listed.
    pub notes: Vec<Note>,
}

/// An interval of a lane, with the words shown on it and on hovering it.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub from: u64,
    pub to: u64,
    pub kind: SpanKind,
    pub label: String,
    pub title: String,
}

/// What a [`Span`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// Network faults between servers (the network lane).
    Net,
    /// Loss, duplication or delay on.
    Faults,
    /// The server is on side `k` of a partition (0 is side A), with others.
    Side(usize),
    /// The server is alone: on a side of its own, or in no group.
    Alone,
    /// Some one-way links from or to the server are cut.
    Cut,
    /// The server is cut off from everyone.
    CutOff,
    /// The server is down (crashed).
    Down,
    /// The server is frozen.
    Paused,
    /// The server's disk stalled.
    DiskStall,
    /// The server led `term`.
    Led { term: u64 },
}

/// A server leading a term, in a row of the leader lane.
#[derive(Clone, Debug, PartialEq)]
pub struct Leadership {
    pub server: u64,
    pub term: u64,
    pub row: usize,
    pub span: Span,
}

/// A server's lane.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerLane {
    pub server: u64,
    pub spans: Vec<Span>,
}

/// An instant drawn across every lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub at: u64,
    pub server: u64,
    pub kind: MarkKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkKind {
    Crash,
    Restart,
}

/// An event listed rather than drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub at_ns: u64,
    pub kind: String,
    pub server: Option<u64>,
    /// The event in words ([`Event::text`]).
    pub text: String,
}

impl Note {
    fn of(e: &Event) -> Note {
        Note { at_ns: e.at_ns, kind: e.kind.clone(), server: e.server, text: e.text() }
    }
}

fn set_text(v: &BTreeSet<u64>) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

fn side_letter(k: usize) -> char {
    (b'A' + (k % 26) as u8) as char
}

/// A span whose title ends with its time range.
fn span(from: u64, to: u64, kind: SpanKind, label: String, title: String) -> Span {
    let title = format!("{title}\nfrom {} to {}", secs(from, 6), secs(to, 6));
    Span { from, to: to.max(from), kind, label, title }
}

/// The links between servers while walking the events.
#[derive(Default, Clone, PartialEq)]
struct Net {
    groups: Vec<Vec<u64>>,
    cuts: BTreeSet<(u64, u64)>,
    off: BTreeSet<u64>,
}

/// How the links look from one server: its span's kind, label and title.
type ServerView = (SpanKind, String, String);

impl Net {
    /// The network lane's label and title, if anything is cut.
    fn label(&self, down: &BTreeSet<u64>) -> Option<(String, String)> {
        let mut parts = Vec::new();
        let mut title = Vec::new();
        if !self.groups.is_empty() {
            let sides: Vec<String> = self
                .groups
                .iter()
                .enumerate()
                .map(|(k, g)| format!("{}: {{{}}}", side_letter(k), set_text(&g.iter().copied().collect())))
                .collect();
            parts.push(sides.join(" | "));
            title.push(format!("partition: {}; servers on different sides cannot reach each other", sides.join(" | ")));
        }
        if !self.cuts.is_empty() {
            let l: Vec<String> = self.cuts.iter().map(|(a, b)| format!("{a}→{b}")).collect();
            let shown = if l.len() > 6 { format!("{} … ({} links)", l[..6].join(" "), l.len()) } else { l.join(" ") };
            parts.push(format!("cut {shown}"));
            title.push(format!("one-way cuts (from→to): {}", l.join(" ")));
        }
        let off: BTreeSet<u64> = self.off.difference(down).copied().collect();
        if !off.is_empty() {
            parts.push(format!("s{} cut off", set_text(&off)));
            title.push(format!("cut off from everyone: server {}", set_text(&off)));
        }
        (!parts.is_empty()).then(|| (parts.join("; "), title.join("\n")))
    }

    /// Server s's side of a partition, if there is one.
    fn side(&self, s: u64, label: &mut Vec<String>, title: &mut Vec<String>) -> Option<SpanKind> {
        if self.groups.is_empty() {
            return None;
        }
        Some(match self.groups.iter().position(|g| g.contains(&s)) {
            Some(k) if self.groups[k].len() > 1 => {
                label.push(format!("side {}", side_letter(k)));
                title.push(format!("side {} of the partition ({{{}}})", side_letter(k), set_text(&self.groups[k].iter().copied().collect())));
                SpanKind::Side(k)
            }
            Some(k) => {
                label.push(format!("alone ({})", side_letter(k)));
                title.push("alone on its side of the partition".to_string());
                SpanKind::Alone
            }
            None => {
                label.push("alone".to_string());
                title.push("in no group of the partition: reaches no server".to_string());
                SpanKind::Alone
            }
        })
    }

    /// Server s's view of the links, if anything about them is cut.
    fn server(&self, s: u64) -> Option<ServerView> {
        let mut label = Vec::new();
        let mut title = Vec::new();
        let mut kind = self.side(s, &mut label, &mut title);
        let to: BTreeSet<u64> = self.cuts.iter().filter(|(a, _)| *a == s).map(|(_, b)| *b).collect();
        let from: BTreeSet<u64> = self.cuts.iter().filter(|(_, b)| *b == s).map(|(a, _)| *a).collect();
        if !to.is_empty() || !from.is_empty() {
            let mut l = String::new();
            if !to.is_empty() {
                l.push_str(&format!("↛{}", set_text(&to)));
                title.push(format!("cannot send to {}", set_text(&to)));
            }
            if !from.is_empty() {
                l.push_str(&format!("{}↚{}", if l.is_empty() { "" } else { " " }, set_text(&from)));
                title.push(format!("cannot hear from {}", set_text(&from)));
            }
            label.push(l);
            kind.get_or_insert(SpanKind::Cut);
        }
        if self.off.contains(&s) {
            label.push("cut off".to_string());
            kind = Some(SpanKind::CutOff);
            title.push("cut off from everyone, clerks included".to_string());
        }
        kind.map(|k| (k, label.join(" "), title.join("; ")))
    }
}

/// The state while walking the events in order of time.
struct Walk {
    end: u64,
    servers: BTreeMap<u64, Vec<Span>>,
    marks: Vec<Mark>,
    notes: Vec<Note>,
    net_spans: Vec<Span>,
    fault_spans: Vec<Span>,
    net: Net,
    down: BTreeSet<u64>,
    faults: NetFaults,
    /// Open intervals: start and what they show.
    net_open: Option<(u64, (String, String))>,
    faults_open: Option<(u64, NetFaults)>,
    side_open: BTreeMap<u64, (u64, ServerView)>,
    down_open: BTreeMap<u64, u64>,
    paused_open: BTreeMap<u64, (u64, String)>,
    lead_open: BTreeMap<u64, (u64, u64)>,
    /// Leaderships ended: (from, to, server, term).
    leads: Vec<(u64, u64, u64, u64)>,
}

impl Walk {
    fn new(servers: &BTreeSet<u64>, end: u64) -> Walk {
        Walk {
            end,
            servers: servers.iter().map(|s| (*s, Vec::new())).collect(),
            marks: Vec::new(),
            notes: Vec::new(),
            net_spans: Vec::new(),
            fault_spans: Vec::new(),
            net: Net::default(),
            down: BTreeSet::new(),
            faults: NetFaults::default(),
            net_open: None,
            faults_open: None,
            side_open: BTreeMap::new(),
            down_open: BTreeMap::new(),
            paused_open: BTreeMap::new(),
            lead_open: BTreeMap::new(),
            leads: Vec::new(),
        }
    }

    fn lane(&mut self, s: u64) -> &mut Vec<Span> {
        self.servers.entry(s).or_default()
    }

    fn close_lead(&mut self, s: u64, at: u64) {
        if let Some((from, term)) = self.lead_open.remove(&s) {
            self.leads.push((from, at, s, term));
        }
    }

    /// Applies one event at `at` (its time, cut to the end).
    fn event(&mut self, e: &Event, at: u64) {
        match (e.kind.as_str(), e.server) {
            (kinds::PARTITION, _) => {
                self.net.groups = e.groups.clone();
                self.net.cuts.clear();
            }
            (kinds::CUT, _) => self.net.cuts.extend(e.links.iter().map(|[a, b]| (*a, *b))),
            (kinds::HEAL, _) => self.net = Net::default(),
            (kinds::DISCONNECT, _) => self.net.off.extend(e.server),
            (kinds::CONNECT, Some(s)) => {
                self.net.off.remove(&s);
            }
            (kinds::CONNECT, None) => {}
            (kinds::CRASH, Some(s)) => self.crash(s, at),
            (kinds::RESTART, Some(s)) => self.restart(s, at, &e.detail),
            (kinds::PAUSE, Some(s)) => {
                self.paused_open.insert(s, (at, e.text()));
                self.lane(s);
            }
            (kinds::RESUME, Some(s)) => self.resume(s, at),
            (kinds::DISK_STALL, Some(s)) => match e.duration_ms {
                Some(ms) => self.stall(s, at, ms, &e.detail),
                None => self.notes.push(Note::of(e)),
            },
            (kinds::FAULTS, _) => match e.faults {
                Some(f) => self.faults = f,
                None => self.notes.push(Note::of(e)),
            },
            (kinds::ROLE, Some(s)) => {
                self.close_lead(s, at);
                if e.role == Some(Role::Leader) {
                    self.lead_open.insert(s, (at, e.term.unwrap_or(0)));
                }
                self.lane(s);
            }
            (kinds::CRASH | kinds::RESTART | kinds::PAUSE | kinds::RESUME | kinds::ROLE, None) => {}
            _ => self.notes.push(Note::of(e)),
        }
    }

    fn crash(&mut self, s: u64, at: u64) {
        self.down.insert(s);
        self.down_open.entry(s).or_insert(at);
        self.close_lead(s, at);
        self.marks.push(Mark { at, server: s, kind: MarkKind::Crash });
        self.lane(s);
    }

    fn restart(&mut self, s: u64, at: u64, detail: &str) {
        self.down.remove(&s);
        if let Some(from) = self.down_open.remove(&s) {
            let title = format!("server {s} down from {} to {} ({detail})", secs(from, 6), secs(at, 6));
            self.lane(s).push(Span { from, to: at, kind: SpanKind::Down, label: "down".into(), title });
        }
        self.marks.push(Mark { at, server: s, kind: MarkKind::Restart });
    }

    fn resume(&mut self, s: u64, at: u64) {
        if let Some((from, how_long)) = self.paused_open.remove(&s) {
            let title = format!("server {s} paused from {} to {} ({how_long})", secs(from, 6), secs(at, 6));
            self.lane(s).push(Span { from, to: at, kind: SpanKind::Paused, label: "paused".into(), title });
        }
    }

    /// The server's syncs are held `ms`.
    fn stall(&mut self, s: u64, at: u64, ms: u64, why: &str) {
        let why = if why.is_empty() { String::new() } else { format!(" ({why})") };
        let title = format!("disk of server {s} stalled from {} for {ms} ms: no sync started meanwhile ends before then{why}", secs(at, 6));
        let to = at.saturating_add(ms.saturating_mul(1_000_000)).min(self.end).max(at);
        self.lane(s).push(Span { from: at, to, kind: SpanKind::DiskStall, label: "disk stalled".into(), title });
    }

    /// After every event of an instant: ends and starts the intervals whose
    /// state changed.
    fn settle(&mut self, at: u64) {
        let now = self.net.label(&self.down);
        if self.net_open.as_ref().map(|o| &o.1) != now.as_ref() {
            if let Some((from, (label, title))) = self.net_open.take() {
                self.net_spans.push(span(from, at, SpanKind::Net, label, title));
            }
            self.net_open = now.map(|n| (at, n));
        }
        if self.faults_open.as_ref().map(|o| &o.1) != Some(&self.faults) {
            if let Some((from, f)) = self.faults_open.take() {
                self.fault_spans.push(span(from, at, SpanKind::Faults, f.to_string(), format!("faults on: {f}")));
            }
            if !self.faults.is_off() {
                self.faults_open = Some((at, self.faults));
            }
        }
        let ids: Vec<u64> = self.servers.keys().copied().collect();
        for s in ids {
            let now = self.net.server(s);
            if self.side_open.get(&s).map(|o| &o.1) != now.as_ref() {
                if let Some((from, (kind, label, title))) = self.side_open.remove(&s) {
                    self.lane(s).push(span(from, at, kind, label, title));
                }
                if let Some(n) = now {
                    self.side_open.insert(s, (at, n));
                }
            }
        }
    }

    /// Closes what is still open at the end.
    fn finish(mut self) -> World {
        let end = self.end;
        if let Some((from, (label, title))) = self.net_open.take() {
            self.net_spans.push(span(from, end, SpanKind::Net, label, title));
        }
        if let Some((from, f)) = self.faults_open.take() {
            self.fault_spans.push(span(from, end, SpanKind::Faults, f.to_string(), format!("faults on: {f}")));
        }
        for (s, (from, (kind, label, title))) in std::mem::take(&mut self.side_open) {
            self.lane(s).push(span(from, end, kind, label, title));
        }
        for (s, from) in std::mem::take(&mut self.down_open) {
            let title = format!("server {s} down from {} to the end", secs(from, 6));
            self.lane(s).push(Span { from, to: end, kind: SpanKind::Down, label: "down".into(), title });
        }
        let open: Vec<u64> = self.lead_open.keys().copied().collect();
        for s in open {
            self.close_lead(s, end);
        }
        let (leaders, leader_rows) = self.leader_rows();
        World {
            net: self.net_spans,
            faults: self.fault_spans,
            leaders,
            leader_rows,
            servers: self.servers.into_iter().map(|(server, spans)| ServerLane { server, spans }).collect(),
            marks: self.marks,
            notes: self.notes,
        }
    }

    /// The leader lane: greedy rows, so that overlapping leaderships both
    /// show; each leadership is also drawn on its server's lane.
    fn leader_rows(&mut self) -> (Vec<Leadership>, usize) {
        let mut leads = std::mem::take(&mut self.leads);
        leads.sort_unstable();
        let mut row_end: Vec<u64> = Vec::new();
        let mut out = Vec::new();
        for (from, to, s, term) in leads {
            let row = match row_end.iter().position(|e| *e <= from) {
                Some(r) => r,
                None => {
                    row_end.push(0);
                    row_end.len() - 1
                }
            };
            row_end[row] = to.max(from.saturating_add(1));
            let title = format!("server {s} led term {term} from {} to {}", secs(from, 6), secs(to, 6));
            let sp = span(from, to, SpanKind::Led { term }, format!("T{term} s{s}"), title.clone());
            out.push(Leadership { server: s, term, row, span: sp });
            let mine = span(from, to, SpanKind::Led { term }, String::new(), title);
            self.lane(s).push(mine);
        }
        (out, row_end.len())
    }
}

impl World {
    /// Reads `events` (in any order; walked by time) up to `end` (later
    /// events count as at `end`); `servers` are the ids to give lanes
    /// (every server an event or op names gets one anyway).
    pub fn build(events: &[Event], servers: &BTreeSet<u64>, end: u64) -> World {
        let mut events: Vec<&Event> = events.iter().collect();
        events.sort_by_key(|e| e.at_ns);
        let mut walk = Walk::new(servers, end);
        let mut i = 0;
        while i < events.len() {
            let at = events[i].at_ns.min(end);
            // Every event at this instant, then the state is compared.
            while i < events.len() && events[i].at_ns.min(end) == at {
                walk.event(events[i], at);
                i += 1;
            }
            walk.settle(at);
        }
        walk.finish()
    }

    /// The spans that overlap [from, to] and the marks within it (no notes).
    pub fn clip(&self, from: u64, to: u64) -> World {
        let keep = |sp: &&Span| sp.to >= from && sp.from <= to;
        World {
            net: self.net.iter().filter(keep).cloned().collect(),
            faults: self.faults.iter().filter(keep).cloned().collect(),
            leaders: self.leaders.iter().filter(|l| keep(&&l.span)).cloned().collect(),
            leader_rows: self.leader_rows,
            servers: self
                .servers
                .iter()
                .map(|l| ServerLane { server: l.server, spans: l.spans.iter().filter(keep).cloned().collect() })
                .collect(),
            marks: self.marks.iter().filter(|m| m.at >= from && m.at <= to).copied().collect(),
            notes: Vec::new(),
        }
    }

    /// The lane of server `s`, if it has one.
    pub fn server(&self, s: u64) -> Option<&ServerLane> {
        self.servers.iter().find(|l| l.server == s)
    }
}
