//! A self-contained HTML page showing a history on a timeline: one lane per
//! client, each op a bar from call to return (pending ops open-ended to the
//! right) marked with the server that answered it, the failing key's ops
//! highlighted, and a summary of the verdict with the longest linearized
//! prefix the checker found.
//!
//! When the history carries world events (see
//! [`Event`](super::history::Event)), the page also draws the run around
//! the clients: network faults (partitions with their sides, one-way cuts,
//! servers cut off) and loss, duplication and delay as bands across every
//! lane; a lane of leaders by term; one lane per server with its side of a
//! partition, its crashes and its leaderships; crashes and restarts as
//! lines across every lane. Hovering any bar or band shows its details.
//!
//! The page has two views: an overview of every op over virtual time
//! (capped for very large histories), and, when the history is not
//! linearizable, a detail view of the failing key alone, in which time is
//! compressed to the order of events so that every bar is wide enough to be
//! labelled. Tick labels are thinned so that they never overlap, at any zoom.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use super::checker::{describe_op, Verdict};
use super::history::{kinds, Event, History, NetFaults, Op, OpKind, Role};

/// At most this many ops are drawn in the overview (the failing key's are
/// always drawn).
const OVERVIEW_MAX_OPS: usize = 20_000;
/// At most this many ops of the failing key are drawn in the detail view.
const DETAIL_MAX_OPS: usize = 3_000;
/// At most this many prefix entries are listed.
const PREFIX_MAX: usize = 5_000;
/// Width of the lane names, px.
const NAME_W: f64 = 80.0;
/// Approximate width of one character of a tick label (10 px font), px.
const TICK_CHAR_W: f64 = 6.2;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let head: String = s.chars().take(max / 2).collect();
        let tail: String = {
            let v: Vec<char> = s.chars().collect();
            v[v.len() - (max - max / 2 - 1)..].iter().collect()
        };
        format!("{head}…{tail}")
    }
}

/// Virtual time in seconds, e.g. `1.234 s`, with `digits` decimals.
fn secs(ns: u64, digits: usize) -> String {
    format!("{:.*} s", digits, ns as f64 / 1e9)
}

/// A short label for an op bar.
fn label(op: &Op) -> String {
    match op.kind {
        OpKind::Get => match &op.output {
            Some(o) => format!("get {} → {:?}", op.key, shorten(o, 24)),
            None => format!("get {} → ?", op.key),
        },
        k => format!("{k} {} {:?}", op.key, shorten(&op.value, 24)),
    }
}

fn tooltip(id: usize, op: &Op) -> String {
    let mut t = format!("#{id} {}", describe_op(op));
    let _ = write!(t, "\ncalled at {}", secs(op.call_ns, 6));
    if let Some(r) = op.return_ns {
        let _ = write!(t, ", returned at {} ({:.1} ms)", secs(r, 6), (r - op.call_ns) as f64 / 1e6);
    }
    match (op.server, op.term, op.index) {
        (Some(s), Some(term), Some(index)) => {
            let _ = write!(t, "\nanswered by server {s}; applied at log index {index} in term {term}");
        }
        (Some(s), _, _) => {
            let _ = write!(t, "\nanswered by server {s}, which gave no log position (a duplicate-table answer, or none through the log)");
        }
        _ => {}
    }
    if op.return_ns.is_none() {
        t.push_str("\npending: may or may not have taken effect");
    }
    t
}

/// Up to 8 servers get a colour of their own; others share by id mod 8.
const SERVER_COLOURS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

fn server_colour(s: u64) -> &'static str {
    SERVER_COLOURS[(s % 8) as usize]
}

const STYLE: &str = r#"
body { font: 13px/1.4 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 20px; margin: 0 0 8px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
table.summary td { padding: 1px 12px 1px 0; vertical-align: top; }
.ok { color: #1a7f37; font-weight: bold; }
.bad { color: #cf222e; font-weight: bold; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 22px; height: 10px; margin-right: 4px; vertical-align: middle; border: 1px solid #555; }
.scroll { overflow-x: auto; border: 1px solid #ccc; background: #fafafa; }
.chart { position: relative; }
.lane { position: relative; height: 22px; border-bottom: 1px solid #eee; }
.lane.world { height: 18px; background: rgba(255,255,255,.55); }
.lane.sep { border-bottom: 2px solid #bbb; }
.lane-name { position: sticky; left: 0; z-index: 4; display: inline-block; width: 80px; height: 100%; background: #f0f0f0;
  border-right: 1px solid #ccc; font-size: 11px; line-height: 18px; padding-left: 4px; box-sizing: border-box; vertical-align: top; }
.lane:not(.world) .lane-name { line-height: 21px; }
.op { position: absolute; top: 3px; height: 15px; box-sizing: border-box; border: 1px solid #555; border-radius: 2px;
  font-size: 10px; line-height: 13px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; padding: 0 2px; min-width: 2px; z-index: 2; }
.op.get { background: #bcd7f5; }
.op.put { background: #f6cf9e; }
.op.append { background: #b9e4b9; }
.op.pending { border-style: dashed; border-right: none; opacity: .75;
  -webkit-mask-image: linear-gradient(to right, #000 70%, transparent); mask-image: linear-gradient(to right, #000 70%, transparent); }
.op.fk { border: 2px solid #cf222e; }
.op.dim { opacity: .35; }
.op.stuck { background: #ff8182; border: 2px solid #82071e; }
.op .ord { font-weight: bold; color: #0550ae; margin-right: 3px; }
.op .srv { display: inline-block; color: #fff; font-weight: bold; border-radius: 2px; padding: 0 2px; margin-right: 3px; line-height: 11px; }
.op .srv.nolog { background: #fff; border: 1px dashed; padding: 0 1px; }
.op:hover, .band:hover { z-index: 6; overflow: visible; box-shadow: 0 0 3px #000; }
.band { position: absolute; top: 2px; height: 14px; box-sizing: border-box; font-size: 10px; line-height: 12px; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; padding: 0 2px; border-radius: 2px; min-width: 2px; z-index: 2; }
.band.net { background: #e4d4f4; border: 1px solid #8250df; }
.band.faults { background: #fff1b8; border: 1px solid #bf8700; }
.band.lead { color: #fff; border: 1px solid #333; }
.band.side0 { background: #dbe9ff; border: 1px solid #6e9bd6; }
.band.side1 { background: #ffe3c2; border: 1px solid #d0913e; }
.band.side2 { background: #dff3da; border: 1px solid #62a855; }
.band.side3 { background: #f3dcef; border: 1px solid #b05aa2; }
.band.alone { background: #ddd; border: 1px solid #777; }
.band.cut { background: #efe6fb; border: 1px dashed #8250df; }
.band.off { background: #d0d0d0; border: 1px dashed #444; top: 1px; height: 16px; }
.band.down { top: 0; height: 18px; border: 1px solid #82071e; color: #fff; font-weight: bold; z-index: 3;
  background: repeating-linear-gradient(135deg, #cf222e 0 4px, #a40e26 4px 8px); }
.band.stall { top: 0; height: 5px; padding: 0; font-size: 0; border: 1px solid #9a6700; z-index: 4;
  background: repeating-linear-gradient(90deg, #d4a72c 0 3px, #fff8c5 3px 6px); }
.band.ld { top: 14px; height: 4px; padding: 0; border: none; background: #d4a72c; z-index: 3; }
.overlay { position: absolute; top: 18px; bottom: 0; pointer-events: none; z-index: 0; }
.overlay.net { background: rgba(130, 80, 223, .10); border-left: 1px solid rgba(130, 80, 223, .5); border-right: 1px solid rgba(130, 80, 223, .5); }
.overlay.faults { background: repeating-linear-gradient(45deg, rgba(191, 135, 0, .07) 0 6px, transparent 6px 12px); }
.overlay.crash { width: 0; border-left: 2px dashed rgba(207, 34, 46, .7); }
.overlay.restart { width: 0; border-left: 2px dashed rgba(26, 127, 55, .7); }
ol.prefix { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
ol.prefix li.stuck { color: #cf222e; font-weight: bold; list-style: none; margin-left: -1.5em; }
.note { color: #666; }
.lane.axis { height: 18px; border-bottom: 1px solid #999; background: #fafafa; z-index: 3; }
.tick { position: absolute; top: 2px; height: 14px; border-left: 1px solid #999; font-size: 10px; line-height: 14px; color: #555;
  padding-left: 2px; white-space: nowrap; }
.tick.hidden { display: none; }
pre.spec { font-size: 11px; background: #f6f8fa; padding: 6px; max-height: 300px; overflow: auto; }
button { font-size: 12px; }
"#;

const SCRIPT: &str = r#"
function place(c) {
  var s = parseFloat(c.getAttribute('data-w')) / parseFloat(c.getAttribute('data-base'));
  c.style.width = (parseFloat(c.getAttribute('data-w')) + 80) + 'px';
  var els = c.querySelectorAll('[data-x]');
  for (var i = 0; i < els.length; i++) {
    var o = els[i];
    o.style.left = (80 + parseFloat(o.getAttribute('data-x')) * s) + 'px';
    if (o.hasAttribute('data-dx')) o.style.width = Math.max(2, parseFloat(o.getAttribute('data-dx')) * s) + 'px';
  }
  thin(c);
}
// Hides every tick label that would overlap the one before it.
function thin(c) {
  var ticks = c.querySelectorAll('.tick');
  var right = -1e9;
  for (var i = 0; i < ticks.length; i++) {
    var t = ticks[i];
    t.classList.remove('hidden');
    var left = parseFloat(t.style.left);
    if (left < right + 8) { t.classList.add('hidden'); continue; }
    right = left + t.offsetWidth;
  }
}
function zoom(id, f) {
  var c = document.getElementById(id);
  var w = parseFloat(c.getAttribute('data-w')) * f;
  if (w < 400) w = 400;
  if (w > 2000000) w = 2000000;
  c.setAttribute('data-w', w);
  place(c);
}
window.addEventListener('load', function () {
  var cs = document.querySelectorAll('.chart');
  for (var i = 0; i < cs.length; i++) thin(cs[i]);
});
"#;

struct Bar<'a> {
    id: usize,
    op: &'a Op,
    /// Start and width in chart units.
    x: f64,
    dx: f64,
    classes: String,
    order: Option<usize>,
}

/// An interval of a world lane.
#[derive(Clone, Debug)]
struct Span {
    from: u64,
    to: u64,
    class: String,
    label: String,
    title: String,
    style: String,
}

/// What the history's events say about the run, as drawable intervals.
#[derive(Default)]
struct World {
    /// Network faults between servers (partitions, cuts, servers cut off).
    net: Vec<Span>,
    /// Loss, duplication, delay on.
    faults: Vec<Span>,
    /// Leaderships, with the row of the leader lane each goes in.
    leaders: Vec<(Span, usize)>,
    rows: usize,
    /// Per server: its side, cut-offs, crashes, leaderships.
    servers: BTreeMap<u64, Vec<Span>>,
    /// Crash and restart instants: (time, class, title).
    marks: Vec<(u64, &'static str, String)>,
    /// Events of kinds the page does not draw as intervals (nemesis
    /// actions, phases, clerk links, unknown kinds): listed under the chart.
    notes: Vec<Event>,
}

fn set_text(v: &BTreeSet<u64>) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

fn side_letter(k: usize) -> char {
    (b'A' + (k % 26) as u8) as char
}

/// Network state while walking the events.
#[derive(Default, Clone, PartialEq)]
struct Net {
    groups: Vec<Vec<u64>>,
    cuts: BTreeSet<(u64, u64)>,
    off: BTreeSet<u64>,
}

impl Net {
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

    /// Server s's view of the links: a label, a class and a title.
    fn server(&self, s: u64) -> Option<(String, String, String)> {
        let mut label = Vec::new();
        let mut title = Vec::new();
        let mut class = String::new();
        if !self.groups.is_empty() {
            match self.groups.iter().position(|g| g.contains(&s)) {
                Some(k) if self.groups[k].len() > 1 => {
                    label.push(format!("side {}", side_letter(k)));
                    class = format!("side{}", k % 4);
                    title.push(format!("side {} of the partition ({{{}}})", side_letter(k), set_text(&self.groups[k].iter().copied().collect())));
                }
                Some(k) => {
                    label.push(format!("alone ({})", side_letter(k)));
                    class = "alone".to_string();
                    title.push("alone on its side of the partition".to_string());
                }
                None => {
                    label.push("alone".to_string());
                    class = "alone".to_string();
                    title.push("in no group of the partition: reaches no server".to_string());
                }
            }
        }
        let to: BTreeSet<u64> = self.cuts.iter().filter(|(a, _)| *a == s).map(|(_, b)| *b).collect();
        let from: BTreeSet<u64> = self.cuts.iter().filter(|(_, b)| *b == s).map(|(a, _)| *a).collect();
        if !to.is_empty() || !from.is_empty() {
            let mut l = String::new();
            if !to.is_empty() {
                let _ = write!(l, "↛{}", set_text(&to));
                title.push(format!("cannot send to {}", set_text(&to)));
            }
            if !from.is_empty() {
                let _ = write!(l, "{}↚{}", if l.is_empty() { "" } else { " " }, set_text(&from));
                title.push(format!("cannot hear from {}", set_text(&from)));
            }
            label.push(l);
            if class.is_empty() {
                class = "cut".to_string();
            }
        }
        if self.off.contains(&s) {
            label.push("cut off".to_string());
            class = "off".to_string();
            title.push("cut off from everyone, clerks included".to_string());
        }
        (!label.is_empty()).then(|| (label.join(" "), class, title.join("; ")))
    }
}

impl World {
    /// Reads `events` (sorted by time) up to `end`; `servers` are the ids
    /// to give lanes (every server an event or op names).
    fn build(events: &[Event], servers: &BTreeSet<u64>, end: u64) -> World {
        let mut w = World::default();
        for s in servers {
            w.servers.insert(*s, Vec::new());
        }
        let mut events: Vec<&Event> = events.iter().collect();
        events.sort_by_key(|e| e.at_ns);
        let mut net = Net::default();
        let mut down: BTreeSet<u64> = BTreeSet::new();
        let mut faults = NetFaults::default();
        // Open intervals: start time and text.
        let mut net_open: Option<(u64, (String, String))> = None;
        let mut faults_open: Option<(u64, NetFaults)> = None;
        let mut side_open: BTreeMap<u64, (u64, (String, String, String))> = BTreeMap::new();
        let mut down_open: BTreeMap<u64, u64> = BTreeMap::new();
        let mut paused_open: BTreeMap<u64, (u64, String)> = BTreeMap::new();
        let mut lead_open: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        let mut leads: Vec<(u64, u64, u64, u64)> = Vec::new(); // (from, to, server, term)
        let close_lead = |lead_open: &mut BTreeMap<u64, (u64, u64)>, leads: &mut Vec<(u64, u64, u64, u64)>, s: u64, at: u64| {
            if let Some((from, term)) = lead_open.remove(&s) {
                leads.push((from, at, s, term));
            }
        };
        let mut i = 0;
        while i < events.len() {
            let at = events[i].at_ns.min(end);
            // Every event at this instant, then the state is compared.
            while i < events.len() && events[i].at_ns.min(end) == at {
                let e = events[i];
                i += 1;
                match e.kind.as_str() {
                    kinds::PARTITION => {
                        net.groups = e.groups.clone();
                        net.cuts.clear();
                    }
                    kinds::CUT => net.cuts.extend(e.links.iter().map(|[a, b]| (*a, *b))),
                    kinds::HEAL => net = Net::default(),
                    kinds::DISCONNECT => net.off.extend(e.server),
                    kinds::CONNECT => {
                        if let Some(s) = e.server {
                            net.off.remove(&s);
                        }
                    }
                    kinds::CRASH => {
                        if let Some(s) = e.server {
                            down.insert(s);
                            down_open.entry(s).or_insert(at);
                            close_lead(&mut lead_open, &mut leads, s, at);
                            w.marks.push((at, "crash", format!("server {s} crashed at {}", secs(at, 6))));
                            w.servers.entry(s).or_default();
                        }
                    }
                    kinds::RESTART => {
                        if let Some(s) = e.server {
                            down.remove(&s);
                            if let Some(from) = down_open.remove(&s) {
                                w.servers.entry(s).or_default().push(Span {
                                    from,
                                    to: at,
                                    class: "down".into(),
                                    label: "down".into(),
                                    title: format!("server {s} down from {} to {} ({})", secs(from, 6), secs(at, 6), e.detail),
                                    style: String::new(),
                                });
                            }
                            let what = if e.detail.is_empty() { String::new() } else { format!(" ({})", e.detail) };
                            w.marks.push((at, "restart", format!("server {s} restarted at {}{what}", secs(at, 6))));
                        }
                    }
                    kinds::PAUSE => {
                        if let Some(s) = e.server {
                            paused_open.insert(s, (at, e.text()));
                            w.servers.entry(s).or_default();
                        }
                    }
                    kinds::RESUME => {
                        if let Some(s) = e.server {
                            if let Some((from, how_long)) = paused_open.remove(&s) {
                                w.servers.entry(s).or_default().push(Span {
                                    from,
                                    to: at,
                                    class: "down".into(),
                                    label: "paused".into(),
                                    title: format!("server {s} paused from {} to {} ({how_long})", secs(from, 6), secs(at, 6)),
                                    style: String::new(),
                                });
                            }
                        }
                    }
                    kinds::DISK_STALL => {
                        // The server's syncs are held that long.
                        match (e.server, e.duration_ms) {
                            (Some(s), Some(ms)) => w.servers.entry(s).or_default().push(Span {
                                from: at,
                                to: at.saturating_add(ms.saturating_mul(1_000_000)).min(end).max(at),
                                class: "stall".into(),
                                label: "disk stalled".into(),
                                title: format!(
                                    "disk of server {s} stalled from {} for {ms} ms: no sync started meanwhile ends before then{}",
                                    secs(at, 6),
                                    if e.detail.is_empty() { String::new() } else { format!(" ({})", e.detail) }
                                ),
                                style: String::new(),
                            }),
                            _ => w.notes.push(e.clone()),
                        }
                    }
                    kinds::FAULTS => match e.faults {
                        Some(f) => faults = f,
                        None => w.notes.push(e.clone()),
                    },
                    kinds::ROLE => {
                        if let Some(s) = e.server {
                            close_lead(&mut lead_open, &mut leads, s, at);
                            if e.role == Some(Role::Leader) {
                                lead_open.insert(s, (at, e.term.unwrap_or(0)));
                            }
                            w.servers.entry(s).or_default();
                        }
                    }
                    _ => w.notes.push(e.clone()),
                }
            }
            // Network band.
            let now = net.label(&down);
            if net_open.as_ref().map(|o| &o.1) != now.as_ref() {
                if let Some((from, (label, title))) = net_open.take() {
                    w.net.push(span(from, at, "net", label, title));
                }
                net_open = now.map(|n| (at, n));
            }
            if faults_open.as_ref().map(|o| &o.1) != Some(&faults) {
                if let Some((from, f)) = faults_open.take() {
                    w.faults.push(span(from, at, "faults", f.to_string(), format!("faults on: {f}")));
                }
                if !faults.is_off() {
                    faults_open = Some((at, faults));
                }
            }
            let ids: Vec<u64> = w.servers.keys().copied().collect();
            for s in ids {
                let now = net.server(s);
                if side_open.get(&s).map(|o| &o.1) != now.as_ref() {
                    if let Some((from, (label, class, title))) = side_open.remove(&s) {
                        w.servers.entry(s).or_default().push(span(from, at, &class, label, title));
                    }
                    if let Some(n) = now {
                        side_open.insert(s, (at, n));
                    }
                }
            }
        }
        // Close what is still open at the end.
        if let Some((from, (label, title))) = net_open {
            w.net.push(span(from, end, "net", label, title));
        }
        if let Some((from, f)) = faults_open {
            w.faults.push(span(from, end, "faults", f.to_string(), format!("faults on: {f}")));
        }
        for (s, (from, (label, class, title))) in side_open {
            w.servers.entry(s).or_default().push(span(from, end, &class, label, title));
        }
        for (s, from) in down_open {
            w.servers.entry(s).or_default().push(Span {
                from,
                to: end,
                class: "down".into(),
                label: "down".into(),
                title: format!("server {s} down from {} to the end", secs(from, 6)),
                style: String::new(),
            });
        }
        let open: Vec<u64> = lead_open.keys().copied().collect();
        for s in open {
            close_lead(&mut lead_open, &mut leads, s, end);
        }
        // Leader lane: greedy rows, so that overlapping leaderships (a stale
        // leader in a minority and the new one) both show.
        leads.sort_unstable();
        let mut row_end: Vec<u64> = Vec::new();
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
            let colour = server_colour(s);
            let mut sp = span(from, to, "lead", format!("T{term} s{s}"), title.clone());
            sp.style = format!("background:{colour}");
            w.leaders.push((sp, row));
            let mut mine = span(from, to, "ld", String::new(), title);
            mine.style = format!("background:{colour}");
            w.servers.entry(s).or_default().push(mine);
        }
        w.rows = row_end.len();
        w
    }
}

fn span(from: u64, to: u64, class: &str, label: String, title: String) -> Span {
    let title = format!("{title}\nfrom {} to {}", secs(from, 6), secs(to, 6));
    Span { from, to: to.max(from), class: class.to_string(), label, title, style: String::new() }
}

/// How a chart maps virtual time to x (chart units, 0 = the start).
struct Axis<'a> {
    x: &'a dyn Fn(u64) -> f64,
    /// Tick candidates: (x, label), in order.
    ticks: Vec<(f64, String)>,
    width: f64,
}

fn band(out: &mut String, a: &Axis, sp: &Span, top: Option<f64>) {
    let x = (a.x)(sp.from);
    let dx = ((a.x)(sp.to) - x).max(2.0);
    let top = top.map_or(String::new(), |t| format!("top:{t}px;"));
    let _ = write!(
        out,
        "<div class=\"band {}\" data-x=\"{x:.2}\" data-dx=\"{dx:.2}\" style=\"left:{:.1}px;width:{dx:.1}px;{top}{}\" title=\"{}\">{}</div>",
        sp.class,
        NAME_W + x,
        sp.style,
        escape_html(&sp.title),
        escape_html(&sp.label)
    );
}

/// Keeps the tick candidates whose labels fit after the previous kept one.
fn thin_ticks(cands: &[(f64, String)]) -> Vec<(f64, String, bool)> {
    let mut right = f64::MIN;
    cands
        .iter()
        .map(|(x, t)| {
            let shown = *x >= right + 8.0;
            if shown {
                right = x + t.chars().count() as f64 * TICK_CHAR_W + 4.0;
            }
            (*x, t.clone(), shown)
        })
        .collect()
}

/// Renders one chart: the time axis, the world lanes and bands (if any),
/// then a lane per client.
fn chart(out: &mut String, id: &str, bars: &[Bar], axis: &Axis, world: Option<&World>) {
    let mut lanes: BTreeMap<u64, Vec<&Bar>> = BTreeMap::new();
    for b in bars {
        lanes.entry(b.op.client).or_default().push(b);
    }
    let width = axis.width;
    let _ = write!(
        out,
        "<div><button onclick=\"zoom('{id}',1.5)\">zoom in</button> <button onclick=\"zoom('{id}',1/1.5)\">zoom out</button></div>\n\
         <div class=\"scroll\"><div class=\"chart\" id=\"{id}\" data-w=\"{width}\" data-base=\"{width}\" style=\"width:{}px\">\n",
        width + NAME_W
    );
    // Bands across every lane, under everything else.
    if let Some(w) = world {
        for sp in w.net.iter().chain(&w.faults) {
            let x = (axis.x)(sp.from);
            let dx = ((axis.x)(sp.to) - x).max(2.0);
            let _ = write!(
                out,
                "<div class=\"overlay {}\" data-x=\"{x:.2}\" data-dx=\"{dx:.2}\" style=\"left:{:.1}px;width:{dx:.1}px\"></div>",
                sp.class,
                NAME_W + x
            );
        }
        for (at, class, _) in &w.marks {
            let x = (axis.x)(*at);
            let _ = write!(out, "<div class=\"overlay {class}\" data-x=\"{x:.2}\" style=\"left:{:.1}px\"></div>", NAME_W + x);
        }
        out.push('\n');
    }
    // The time axis.
    out.push_str("<div class=\"lane axis\"><span class=\"lane-name\">time</span>");
    for (x, text, shown) in thin_ticks(&axis.ticks) {
        let _ = write!(
            out,
            "<div class=\"tick{}\" data-x=\"{x:.2}\" style=\"left:{:.1}px\">{}</div>",
            if shown { "" } else { " hidden" },
            NAME_W + x,
            escape_html(&text)
        );
    }
    out.push_str("</div>\n");
    if let Some(w) = world {
        out.push_str("<div class=\"lane world\" title=\"partitions, one-way cuts and servers cut off\"><span class=\"lane-name\">network</span>");
        for sp in &w.net {
            band(out, axis, sp, None);
        }
        out.push_str("</div>\n");
        out.push_str("<div class=\"lane world\" title=\"message loss, duplication and delay\"><span class=\"lane-name\">loss/dup/delay</span>");
        for sp in &w.faults {
            band(out, axis, sp, None);
        }
        out.push_str("</div>\n");
        let rows = w.rows.max(1);
        let _ = write!(
            out,
            "<div class=\"lane world\" style=\"height:{}px\" title=\"leaders by term\"><span class=\"lane-name\">leaders</span>",
            rows * 18
        );
        for (sp, row) in &w.leaders {
            band(out, axis, sp, Some(2.0 + *row as f64 * 18.0));
        }
        out.push_str("</div>\n");
        let last = w.servers.keys().last().copied();
        for (s, spans) in &w.servers {
            let sep = if Some(*s) == last { " sep" } else { "" };
            let _ = write!(
                out,
                "<div class=\"lane world{sep}\"><span class=\"lane-name\"><b style=\"color:{}\">■</b> server {s}</span>",
                server_colour(*s)
            );
            for sp in spans {
                band(out, axis, sp, None);
            }
            out.push_str("</div>\n");
        }
    }
    for (client, bars) in lanes {
        let _ = write!(out, "<div class=\"lane\"><span class=\"lane-name\">client {client}</span>");
        for b in bars {
            let ord = match b.order {
                Some(k) => format!("<span class=\"ord\">{}</span>", k + 1),
                None => String::new(),
            };
            let srv = match (b.op.server, b.op.index) {
                (Some(s), Some(_)) => format!("<span class=\"srv\" style=\"background:{}\">s{s}</span>", server_colour(s)),
                (Some(s), None) => {
                    let c = server_colour(s);
                    format!("<span class=\"srv nolog\" style=\"color:{c};border-color:{c}\">s{s}</span>")
                }
                (None, _) => String::new(),
            };
            let _ = write!(
                out,
                "<div class=\"op {}\" data-x=\"{:.2}\" data-dx=\"{:.2}\" style=\"left:{:.1}px;width:{:.1}px\" title=\"{}\">{}{}{}</div>",
                b.classes,
                b.x,
                b.dx,
                NAME_W + b.x,
                b.dx.max(2.0),
                escape_html(&tooltip(b.id, b.op)),
                ord,
                srv,
                escape_html(&label(b.op))
            );
        }
        out.push_str("</div>\n");
    }
    out.push_str("</div></div>\n");
}

/// Writes the timeline page for `history` checked with result `verdict`.
pub fn write_timeline_html(history: &History, verdict: &Verdict, path: &Path) -> std::io::Result<()> {
    std::fs::write(path, render_timeline_html(history, verdict))
}

/// The other events (nemesis actions, phases, ...) as a list.
fn notes(out: &mut String, w: &World) {
    if w.notes.is_empty() {
        return;
    }
    let _ = writeln!(out, "<details><summary>{} other events (nemesis actions, phases, clerk links)</summary><ul class=\"note\">", w.notes.len());
    for e in w.notes.iter().take(2000) {
        let on = e.server.map(|s| format!(" (server {s})")).unwrap_or_default();
        let _ = writeln!(out, "<li>{} {}{on}: {}</li>", secs(e.at_ns, 6), escape_html(&e.kind), escape_html(&e.text()));
    }
    out.push_str("</ul></details>\n");
}

/// A "nice" step (1, 2 or 5 times a power of ten) of at least `min`.
fn nice_step(min: f64) -> f64 {
    let p = 10f64.powf(min.max(1e-9).log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= min {
            return m * p;
        }
    }
    10.0 * p
}

/// Decimals that tell ticks `step_ns` apart, in seconds.
fn digits_for(step_ns: f64) -> usize {
    let d = -(step_ns / 1e9).log10().floor();
    d.clamp(0.0, 9.0) as usize
}

/// The timeline page as a string (see [`write_timeline_html`]).
pub fn render_timeline_html(history: &History, verdict: &Verdict) -> String {
    let ops = &history.ops;
    let mut out = String::with_capacity(4096 + ops.len().min(OVERVIEW_MAX_OPS) * 300);
    let title = format!("kvraft history: {}", history.scenario);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style><script>{SCRIPT}</script></head><body>\n",
        escape_html(&title)
    );
    let _ = writeln!(out, "<h1>{}</h1>", escape_html(&title));

    let failing_key = verdict.failing_key.clone();
    let detail = verdict.detail.as_ref();
    let clients: BTreeSet<u64> = ops.iter().map(|o| o.client).collect();
    let keys: BTreeSet<&str> = ops.iter().map(|o| o.key.as_str()).collect();
    let pending = ops.iter().filter(|o| o.return_ns.is_none()).count();

    // The world, over the whole run.
    let end = ops
        .iter()
        .map(|o| o.return_ns.unwrap_or(o.call_ns).max(o.call_ns))
        .chain(history.events.iter().map(|e| e.at_ns))
        .max()
        .unwrap_or(0);
    let servers: BTreeSet<u64> = ops.iter().filter_map(|o| o.server).chain(history.events.iter().filter_map(|e| e.server)).collect();
    let world = World::build(&history.events, &servers, end);
    let world = (!history.events.is_empty()).then_some(world);

    // Summary.
    out.push_str("<table class=\"summary\">");
    let _ = write!(out, "<tr><td>scenario</td><td>{}</td></tr>", escape_html(&history.scenario));
    let _ = write!(out, "<tr><td>seed</td><td>{}</td></tr>", history.seed);
    let _ = write!(
        out,
        "<tr><td>ops</td><td>{} ({} pending) by {} clients on {} keys</td></tr>",
        ops.len(),
        pending,
        clients.len(),
        keys.len()
    );
    if !history.events.is_empty() {
        let crashes = history.events.iter().filter(|e| e.kind == kinds::CRASH).count();
        let parts = history.events.iter().filter(|e| e.kind == kinds::PARTITION || e.kind == kinds::CUT).count();
        let terms: BTreeSet<u64> =
            history.events.iter().filter(|e| e.kind == kinds::ROLE && e.role == Some(Role::Leader)).filter_map(|e| e.term).collect();
        let _ = write!(
            out,
            "<tr><td>world</td><td>{} events: {} servers, {} partitions or cuts, {} crashes, {} terms with a leader</td></tr>",
            history.events.len(),
            servers.len(),
            parts,
            crashes,
            terms.len()
        );
    }
    if verdict.linearizable {
        out.push_str("<tr><td>verdict</td><td class=\"ok\">linearizable</td></tr>");
    } else {
        out.push_str("<tr><td>verdict</td><td class=\"bad\">NOT linearizable</td></tr>");
        let _ = write!(
            out,
            "<tr><td>failing key</td><td>{}</td></tr>",
            escape_html(&format!("{:?}", failing_key.as_deref().unwrap_or("")))
        );
        if verdict.failing_keys.len() > 1 {
            let list: Vec<String> = verdict.failing_keys.iter().map(|k| format!("{k:?}")).collect();
            let _ = write!(
                out,
                "<tr><td>all failing keys</td><td>{}</td></tr>",
                escape_html(&shorten(&list.join(", "), 2000))
            );
        }
        if let Some(d) = detail {
            let _ = write!(
                out,
                "<tr><td>search</td><td>linearized at most {} of the {} ops on the key ({} states explored)</td></tr>",
                d.linearized_prefix.len(),
                d.ops.len(),
                d.states_explored
            );
            if let Some(s) = d.stuck_op.and_then(|s| ops.get(s).map(|o| (s, o))) {
                let answered = match (s.1.server, s.1.index) {
                    (Some(srv), Some(i)) => format!(" — answered by server {srv}, applied at index {i}"),
                    (Some(srv), None) => format!(" — answered by server {srv} with no log position"),
                    _ => String::new(),
                };
                let _ = write!(
                    out,
                    "<tr><td>stuck at</td><td class=\"bad\">#{} {}{}</td></tr>",
                    s.0,
                    escape_html(&describe_op(s.1)),
                    escape_html(&answered)
                );
            }
        }
    }
    let _ = write!(out, "<tr><td>states explored</td><td>{}</td></tr>", verdict.states_explored);
    out.push_str("</table>\n");
    if let Some(spec) = &history.spec {
        let text = serde_json::to_string_pretty(spec).unwrap_or_default();
        let _ = writeln!(out, "<details><summary>the run spec that produced this history</summary><pre class=\"spec\">{}</pre></details>", escape_html(&text));
    }
    out.push_str(
        "<p class=\"legend\"><span><i style=\"background:#bcd7f5\"></i>get</span><span><i style=\"background:#f6cf9e\"></i>put</span>\
         <span><i style=\"background:#b9e4b9\"></i>append</span><span><i style=\"border-style:dashed\"></i>pending (open-ended)</span>\
         <span><i style=\"border:2px solid #cf222e\"></i>failing key</span><span><i style=\"background:#ff8182\"></i>could not be linearized</span>\
         <span><b style=\"color:#0550ae\">n</b> position in the linearized prefix</span>\
         <span><b style=\"background:#1f77b4;color:#fff;padding:0 2px\">s0</b> server that answered, through the log</span>\
         <span><b style=\"color:#d62728;border:1px dashed #d62728;padding:0 1px\">s1</b> answered with no log position</span></p>\n",
    );
    if world.is_some() {
        out.push_str(
            "<p class=\"legend\"><span><i style=\"background:#e4d4f4;border-color:#8250df\"></i>partition / cut (band across all lanes)</span>\
             <span><i style=\"background:#fff1b8;border-color:#bf8700\"></i>loss, duplication or delay on</span>\
             <span><i style=\"background:#dbe9ff\"></i><i style=\"background:#ffe3c2\"></i>sides of a partition</span>\
             <span><i style=\"background:#cf222e\"></i>server down (red dashed line: crash, green: restart)</span>\
             <span><i style=\"background:#d4a72c;height:4px\"></i>leader</span>\
             <span><i style=\"background:repeating-linear-gradient(90deg,#d4a72c 0 3px,#fff8c5 3px 6px);height:5px;border-color:#9a6700\"></i>disk stalled</span></p>\n",
        );
    }
    out.push_str("<p class=\"note\">Hover a bar or band for details.</p>\n");

    let order: HashMap<usize, usize> =
        detail.map(|d| d.linearized_prefix.iter().enumerate().map(|(k, &id)| (id, k)).collect()).unwrap_or_default();
    let stuck = detail.and_then(|d| d.stuck_op);

    // Detail view of the failing key, in event-order time.
    if let (Some(d), Some(fk)) = (detail, failing_key.as_deref()) {
        let _ = writeln!(out, "<h2 id=\"failing\">Failing key {}</h2>", escape_html(&format!("{fk:?}")));
        out.push_str("<p class=\"note\">Time here is compressed to the order of calls and returns (tick labels: virtual time); the world's bands are placed between the calls and returns they fall between.</p>\n");
        let shown: Vec<usize> = d.ops.iter().copied().filter(|&i| i < ops.len()).take(DETAIL_MAX_OPS).collect();
        if shown.len() < d.ops.len() {
            let _ = writeln!(out, "<p class=\"note\">Showing the first {} of {} ops.</p>", shown.len(), d.ops.len());
        }
        // Compress time to the rank of distinct event times.
        let mut times: Vec<u64> = Vec::new();
        for &i in &shown {
            times.push(ops[i].call_ns);
            if let Some(r) = ops[i].return_ns {
                times.push(r);
            }
        }
        times.sort_unstable();
        times.dedup();
        let unit = 18.0;
        let rank = |t: u64| times.partition_point(|&x| x < t) as f64;
        let end_rank = times.len() as f64 + 3.0;
        let bars: Vec<Bar> = shown
            .iter()
            .map(|&i| {
                let o = &ops[i];
                let x = rank(o.call_ns);
                let x2 = match o.return_ns {
                    Some(r) => rank(r) + 1.0,
                    None => end_rank,
                };
                let mut classes = o.kind.as_str().to_string();
                if o.return_ns.is_none() {
                    classes.push_str(" pending");
                }
                if Some(i) == stuck {
                    classes.push_str(" stuck");
                }
                Bar { id: i, op: o, x: x * unit, dx: (x2 - x) * unit - 2.0, classes, order: order.get(&i).copied() }
            })
            .collect();
        // Every distinct time is a tick candidate (to 0.1 ms); labels that
        // would overlap the one before are hidden.
        let ticks: Vec<(f64, String)> = times.iter().enumerate().map(|(k, t)| (k as f64 * unit, secs(*t, 4))).collect();
        let last = times.last().copied().unwrap_or(0);
        let x = move |t: u64| if t > last { end_rank * unit } else { rank(t) * unit };
        // The world's spans cut to the key's stretch of time.
        let first = times.first().copied().unwrap_or(0);
        let clip = world.as_ref().map(|w| clip_world(w, first, last));
        chart(&mut out, "detail", &bars, &Axis { x: &x, ticks, width: end_rank * unit }, clip.as_ref());

        let _ = writeln!(
            out,
            "<h2>Longest linearized prefix ({} ops)</h2>\n<p class=\"note\">The longest sequence of this key's ops that the search could put in a legal order; the op after it could not be placed.</p>\n<ol class=\"prefix\">",
            d.linearized_prefix.len()
        );
        for &id in d.linearized_prefix.iter().take(PREFIX_MAX) {
            if let Some(o) = ops.get(id) {
                let _ = writeln!(out, "<li>#{id} {}{}</li>", escape_html(&describe_op(o)), escape_html(&answered_by(o)));
            }
        }
        if d.linearized_prefix.len() > PREFIX_MAX {
            let _ = writeln!(out, "<li class=\"note\">… {} more</li>", d.linearized_prefix.len() - PREFIX_MAX);
        }
        if let Some(o) = stuck.and_then(|s| ops.get(s)) {
            let _ = writeln!(
                out,
                "<li class=\"stuck\">✗ then #{} {}{}</li>",
                stuck.unwrap(),
                escape_html(&describe_op(o)),
                escape_html(&answered_by(o))
            );
        }
        out.push_str("</ol>\n");
    }

    // Overview of everything, over virtual time.
    out.push_str("<h2 id=\"all\">All ops</h2>\n");
    let mut chosen: Vec<usize> = Vec::new();
    if ops.len() <= OVERVIEW_MAX_OPS {
        chosen.extend(0..ops.len());
    } else {
        let fk: Option<&str> = failing_key.as_deref();
        chosen.extend((0..ops.len()).filter(|&i| Some(ops[i].key.as_str()) == fk));
        let room = OVERVIEW_MAX_OPS.saturating_sub(chosen.len());
        chosen.extend((0..ops.len()).filter(|&i| Some(ops[i].key.as_str()) != fk).take(room));
        chosen.sort_unstable();
        let _ = writeln!(
            out,
            "<p class=\"note\">{} ops: showing {} (all of the failing key's, then the earliest others).</p>",
            ops.len(),
            chosen.len()
        );
    }
    if chosen.is_empty() && world.is_none() {
        out.push_str("<p class=\"note\">No ops.</p>\n");
    } else {
        // The world's events before the first op are drawn from time 0.
        let t0 = if world.is_some() { 0 } else { chosen.iter().map(|&i| ops[i].call_ns).min().unwrap_or(0) };
        let t1 = if world.is_some() {
            end
        } else {
            chosen.iter().map(|&i| ops[i].return_ns.unwrap_or(ops[i].call_ns).max(ops[i].call_ns)).max().unwrap_or(t0)
        };
        let span_ns = (t1 - t0).max(1) as f64 * 1.03;
        let lanes = chosen.iter().map(|&i| ops[i].client).collect::<BTreeSet<_>>().len().max(1);
        let per_lane = chosen.len() as f64 / lanes as f64;
        let width = (per_lane * 40.0).clamp(1200.0, 60000.0);
        let scale = width / span_ns;
        let bars: Vec<Bar> = chosen
            .iter()
            .map(|&i| {
                let o = &ops[i];
                let x = (o.call_ns - t0) as f64 * scale;
                let x2 = match o.return_ns {
                    Some(r) => (r.max(o.call_ns) - t0) as f64 * scale,
                    None => width,
                };
                let mut classes = o.kind.as_str().to_string();
                if o.return_ns.is_none() {
                    classes.push_str(" pending");
                }
                if failing_key.as_deref() == Some(o.key.as_str()) {
                    classes.push_str(" fk");
                } else if failing_key.is_some() {
                    classes.push_str(" dim");
                }
                if Some(i) == stuck {
                    classes.push_str(" stuck");
                }
                Bar { id: i, op: o, x, dx: x2 - x, classes, order: order.get(&i).copied() }
            })
            .collect();
        let _ = writeln!(out, "<p class=\"note\">Virtual time {} to {}.</p>", secs(t0, 6), secs(t1, 6));
        // Tick candidates on round times, close enough that labels still
        // follow each other when zoomed in 4 times; the page shows only
        // those that do not overlap the one before, at every zoom.
        let label_w = 10.0 * TICK_CHAR_W + 8.0;
        let step = nice_step((label_w / (scale * 4.0)).max(1.0));
        let digits = digits_for(step);
        let mut ticks = Vec::new();
        let mut k = 0u64;
        while (k as f64 * step) <= span_ns && ticks.len() < 20_000 {
            let t = t0 as f64 + k as f64 * step;
            ticks.push(((t - t0 as f64) * scale, secs(t.round() as u64, digits)));
            k += 1;
        }
        let x = move |t: u64| (t.saturating_sub(t0)) as f64 * scale;
        chart(&mut out, "overview", &bars, &Axis { x: &x, ticks, width }, world.as_ref());
        if let Some(w) = &world {
            notes(&mut out, w);
        }
    }
    out.push_str("</body></html>\n");
    out
}

/// " — answered by server 2 at index 7" for an op whose server is known.
fn answered_by(o: &Op) -> String {
    match (o.server, o.index, o.term) {
        (Some(s), Some(i), Some(t)) => format!(" — server {s}, index {i}, term {t}"),
        (Some(s), _, _) => format!(" — server {s}, no log position"),
        _ => String::new(),
    }
}

/// The world's spans that overlap [from, to], and its marks within it.
fn clip_world(w: &World, from: u64, to: u64) -> World {
    let keep = |sp: &&Span| sp.to >= from && sp.from <= to;
    World {
        net: w.net.iter().filter(keep).cloned().collect(),
        faults: w.faults.iter().filter(keep).cloned().collect(),
        leaders: w.leaders.iter().filter(|(sp, _)| keep(&sp)).cloned().collect(),
        rows: w.rows,
        servers: w.servers.iter().map(|(s, v)| (*s, v.iter().filter(keep).cloned().collect())).collect(),
        marks: w.marks.iter().filter(|(t, _, _)| *t >= from && *t <= to).cloned().collect(),
        notes: Vec::new(),
    }
}
