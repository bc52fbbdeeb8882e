//! Draws a [`Timeline`] as one self-contained HTML page: the summary, the
//! failing key's detail view and the overview, each chart with its zoom
//! buttons; the style sheet and the script are `timeline.css` and
//! `timeline.js` beside this file.

use std::fmt::Write as _;

use super::escape_html;
use super::model::{
    secs, Bar, Chart, DetailView, KeyMark, MarkKind, Overview, Span, SpanKind, Summary, Timeline, World, PREFIX_MAX,
};
use crate::check::checker::describe_op;
use crate::check::history::{Op, OpKind};

const STYLE: &str = include_str!("timeline.css");
const SCRIPT: &str = include_str!("timeline.js");

/// Width of the lane names, px (as in the style sheet and the script).
const NAME_W: f64 = 80.0;

/// Up to 8 servers get a colour of their own; others share by id mod 8.
const SERVER_COLOURS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

fn server_colour(s: u64) -> &'static str {
    SERVER_COLOURS[(s % 8) as usize]
}

/// The page.
pub fn page(t: &Timeline) -> String {
    let ops = t.summary.ops.min(super::model::OVERVIEW_MAX_OPS);
    let mut out = String::with_capacity(4096 + ops * 300);
    let title = escape_html(&t.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>\n{STYLE}</style><script>\n{SCRIPT}</script></head><body>\n"
    );
    let _ = writeln!(out, "<h1>{title}</h1>");
    summary(&mut out, &t.summary);
    if let Some(spec) = &t.spec {
        let _ = writeln!(out, "<details><summary>the run spec that produced this history</summary><pre class=\"spec\">{}</pre></details>", escape_html(spec));
    }
    legend(&mut out, t.world.is_some());
    if let Some(d) = &t.detail {
        detail_view(&mut out, d);
    }
    overview(&mut out, &t.overview, t.world.as_ref());
    out.push_str("</body></html>\n");
    out
}

fn summary(out: &mut String, s: &Summary) {
    out.push_str("<table class=\"summary\">");
    let _ = write!(out, "<tr><td>scenario</td><td>{}</td></tr>", escape_html(&s.scenario));
    let _ = write!(out, "<tr><td>seed</td><td>{}</td></tr>", s.seed);
    let _ = write!(out, "<tr><td>ops</td><td>{} ({} pending) by {} clients on {} keys</td></tr>", s.ops, s.pending, s.clients, s.keys);
    if let Some(w) = &s.world {
        let _ = write!(
            out,
            "<tr><td>world</td><td>{} events: {} servers, {} partitions or cuts, {} crashes, {} terms with a leader</td></tr>",
            w.events, w.servers, w.partitions_or_cuts, w.crashes, w.terms_with_a_leader
        );
    }
    match &s.failure {
        None => out.push_str("<tr><td>verdict</td><td class=\"ok\">linearizable</td></tr>"),
        Some(f) => {
            out.push_str("<tr><td>verdict</td><td class=\"bad\">NOT linearizable</td></tr>");
            let _ = write!(out, "<tr><td>failing key</td><td>{}</td></tr>", escape_html(&format!("{:?}", f.key)));
            if !f.all_keys.is_empty() {
                let list: Vec<String> = f.all_keys.iter().map(|k| format!("{k:?}")).collect();
                let _ = write!(out, "<tr><td>all failing keys</td><td>{}</td></tr>", escape_html(&shorten(&list.join(", "), 2000)));
            }
            if let Some(search) = &f.search {
                let _ = write!(
                    out,
                    "<tr><td>search</td><td>linearized at most {} of the {} ops on the key ({} states explored)</td></tr>",
                    search.linearized, search.key_ops, search.states_explored
                );
                if let Some((id, op)) = &search.stuck {
                    let answered = match (op.server, op.index) {
                        (Some(srv), Some(i)) => format!(" — answered by server {srv}, applied at index {i}"),
                        (Some(srv), None) => format!(" — answered by server {srv} with no log position"),
                        _ => String::new(),
                    };
                    let _ = write!(
                        out,
                        "<tr><td>stuck at</td><td class=\"bad\">#{id} {}{}</td></tr>",
                        escape_html(&describe_op(op)),
                        escape_html(&answered)
                    );
                }
            }
        }
    }
    let _ = write!(out, "<tr><td>states explored</td><td>{}</td></tr>", s.states_explored);
    out.push_str("</table>\n");
}

fn legend(out: &mut String, world: bool) {
    out.push_str(
        "<p class=\"legend\"><span><i style=\"background:#bcd7f5\"></i>get</span><span><i style=\"background:#f6cf9e\"></i>put</span>\
         <span><i style=\"background:#b9e4b9\"></i>append</span><span><i style=\"border-style:dashed\"></i>pending (open-ended)</span>\
         <span><i style=\"border:2px solid #cf222e\"></i>failing key</span><span><i style=\"background:#ff8182\"></i>could not be linearized</span>\
         <span><b style=\"color:#0550ae\">n</b> position in the linearized prefix</span>\
         <span><b style=\"background:#1f77b4;color:#fff;padding:0 2px\">s0</b> server that answered, through the log</span>\
         <span><b style=\"color:#d62728;border:1px dashed #d62728;padding:0 1px\">s1</b> answered with no log position</span></p>\n",
    );
    if world {
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
}

fn detail_view(out: &mut String, d: &DetailView) {
    let _ = writeln!(out, "<h2 id=\"failing\">Failing key {}</h2>", escape_html(&format!("{:?}", d.key)));
    out.push_str("<p class=\"note\">Time here is compressed to the order of calls and returns (tick labels: virtual time); the world's bands are placed between the calls and returns they fall between.</p>\n");
    if d.shown < d.key_ops {
        let _ = writeln!(out, "<p class=\"note\">Showing the first {} of {} ops.</p>", d.shown, d.key_ops);
    }
    chart(out, &d.chart);
    let _ = writeln!(
        out,
        "<h2>Longest linearized prefix ({} ops)</h2>\n<p class=\"note\">The longest sequence of this key's ops that the search could put in a legal order; the op after it could not be placed.</p>\n<ol class=\"prefix\">",
        d.prefix_len
    );
    for (id, o) in &d.prefix {
        let _ = writeln!(out, "<li>#{id} {}{}</li>", escape_html(&describe_op(o)), escape_html(&answered_by(o)));
    }
    if d.prefix_len > PREFIX_MAX {
        let _ = writeln!(out, "<li class=\"note\">… {} more</li>", d.prefix_len - PREFIX_MAX);
    }
    if let Some((id, o)) = &d.stuck {
        let _ = writeln!(out, "<li class=\"stuck\">✗ then #{id} {}{}</li>", escape_html(&describe_op(o)), escape_html(&answered_by(o)));
    }
    out.push_str("</ol>\n");
}

fn overview(out: &mut String, o: &Overview, world: Option<&World>) {
    out.push_str("<h2 id=\"all\">All ops</h2>\n");
    if o.capped {
        let _ = writeln!(out, "<p class=\"note\">{} ops: showing {} (all of the failing key's, then the earliest others).</p>", o.ops, o.shown);
    }
    let Some(c) = &o.chart else {
        out.push_str("<p class=\"note\">No ops.</p>\n");
        return;
    };
    let _ = writeln!(out, "<p class=\"note\">Virtual time {} to {}.</p>", secs(c.from_ns, 6), secs(c.to_ns, 6));
    chart(out, c);
    if let Some(w) = world {
        notes(out, w);
    }
}

/// " — server 2, index 7, term 3" for an op whose server is known.
fn answered_by(o: &Op) -> String {
    match (o.server, o.index, o.term) {
        (Some(s), Some(i), Some(t)) => format!(" — server {s}, index {i}, term {t}"),
        (Some(s), _, _) => format!(" — server {s}, no log position"),
        _ => String::new(),
    }
}

/// The other events (nemesis actions, phases, ...) as a list.
fn notes(out: &mut String, w: &World) {
    if w.notes.is_empty() {
        return;
    }
    let _ = writeln!(out, "<details><summary>{} other events (nemesis actions, phases, clerk links)</summary><ul class=\"note\">", w.notes.len());
    for n in w.notes.iter().take(2000) {
        let on = n.server.map(|s| format!(" (server {s})")).unwrap_or_default();
        let _ = writeln!(out, "<li>{} {}{on}: {}</li>", secs(n.at_ns, 6), escape_html(&n.kind), escape_html(&n.text));
    }
    out.push_str("</ul></details>\n");
}

/// One chart: the zoom buttons, the bands and lines across every lane, the
/// time axis, the world's lanes (if any), then a lane per client.
fn chart(out: &mut String, c: &Chart) {
    let (id, width) = (c.id.as_str(), c.width);
    let _ = write!(
        out,
        "<div><button onclick=\"zoom('{id}',1.5)\">zoom in</button> <button onclick=\"zoom('{id}',1/1.5)\">zoom out</button></div>\n\
         <div class=\"scroll\"><div class=\"chart\" id=\"{id}\" data-w=\"{width}\" data-base=\"{width}\" style=\"width:{}px\">\n",
        width + NAME_W
    );
    if let Some(w) = &c.world {
        overlays(out, c, w);
    }
    out.push_str("<div class=\"lane axis\"><span class=\"lane-name\">time</span>");
    for t in &c.ticks {
        let _ = write!(
            out,
            "<div class=\"tick{}\" data-x=\"{:.2}\" style=\"left:{:.1}px\">{}</div>",
            if t.shown { "" } else { " hidden" },
            t.x,
            NAME_W + t.x,
            escape_html(&t.label)
        );
    }
    out.push_str("</div>\n");
    if let Some(w) = &c.world {
        world_lanes(out, c, w);
    }
    for lane in &c.lanes {
        let _ = write!(out, "<div class=\"lane\"><span class=\"lane-name\">client {}</span>", lane.client);
        for b in &lane.bars {
            bar(out, b);
        }
        out.push_str("</div>\n");
    }
    out.push_str("</div></div>\n");
}

/// Bands across every lane, under everything else.
fn overlays(out: &mut String, c: &Chart, w: &World) {
    for sp in w.net.iter().chain(&w.faults) {
        let x = c.x(sp.from);
        let dx = (c.x(sp.to) - x).max(2.0);
        let _ = write!(
            out,
            "<div class=\"overlay {}\" data-x=\"{x:.2}\" data-dx=\"{dx:.2}\" style=\"left:{:.1}px;width:{dx:.1}px\"></div>",
            span_class(sp.kind),
            NAME_W + x
        );
    }
    for m in &w.marks {
        let x = c.x(m.at);
        let class = match m.kind {
            MarkKind::Crash => "crash",
            MarkKind::Restart => "restart",
        };
        let _ = write!(out, "<div class=\"overlay {class}\" data-x=\"{x:.2}\" style=\"left:{:.1}px\"></div>", NAME_W + x);
    }
    out.push('\n');
}

fn world_lanes(out: &mut String, c: &Chart, w: &World) {
    out.push_str("<div class=\"lane world\" title=\"partitions, one-way cuts and servers cut off\"><span class=\"lane-name\">network</span>");
    for sp in &w.net {
        band(out, c, sp, "", None);
    }
    out.push_str("</div>\n");
    out.push_str("<div class=\"lane world\" title=\"message loss, duplication and delay\"><span class=\"lane-name\">loss/dup/delay</span>");
    for sp in &w.faults {
        band(out, c, sp, "", None);
    }
    out.push_str("</div>\n");
    let rows = w.leader_rows.max(1);
    let _ = write!(out, "<div class=\"lane world\" style=\"height:{}px\" title=\"leaders by term\"><span class=\"lane-name\">leaders</span>", rows * 18);
    for l in &w.leaders {
        let style = format!("background:{}", server_colour(l.server));
        band(out, c, &l.span, &style, Some(2.0 + l.row as f64 * 18.0));
    }
    out.push_str("</div>\n");
    let last = w.servers.last().map(|l| l.server);
    for lane in &w.servers {
        let s = lane.server;
        let sep = if Some(s) == last { " sep" } else { "" };
        let _ = write!(out, "<div class=\"lane world{sep}\"><span class=\"lane-name\"><b style=\"color:{}\">■</b> server {s}</span>", server_colour(s));
        for sp in &lane.spans {
            let style = if matches!(sp.kind, SpanKind::Led { .. }) { format!("background:{}", server_colour(s)) } else { String::new() };
            band(out, c, sp, &style, None);
        }
        out.push_str("</div>\n");
    }
}

/// The CSS class of a span, on a server's lane (a leadership there is the
/// thin "ld" bar; on the leader lane it is a "lead" band).
fn span_class(kind: SpanKind) -> String {
    match kind {
        SpanKind::Net => "net".into(),
        SpanKind::Faults => "faults".into(),
        SpanKind::Side(k) => format!("side{}", k % 4),
        SpanKind::Alone => "alone".into(),
        SpanKind::Cut => "cut".into(),
        SpanKind::CutOff => "off".into(),
        SpanKind::Down | SpanKind::Paused => "down".into(),
        SpanKind::DiskStall => "stall".into(),
        SpanKind::Led { .. } => "ld".into(),
    }
}

fn band(out: &mut String, c: &Chart, sp: &Span, style: &str, top: Option<f64>) {
    let x = c.x(sp.from);
    let dx = (c.x(sp.to) - x).max(2.0);
    // On the leader lane (the only one with rows) a leadership is a band.
    let class = if top.is_some() { "lead".to_string() } else { span_class(sp.kind) };
    let top = top.map_or(String::new(), |t| format!("top:{t}px;"));
    let _ = write!(
        out,
        "<div class=\"band {class}\" data-x=\"{x:.2}\" data-dx=\"{dx:.2}\" style=\"left:{:.1}px;width:{dx:.1}px;{top}{style}\" title=\"{}\">{}</div>",
        NAME_W + x,
        escape_html(&sp.title),
        escape_html(&sp.label)
    );
}

fn bar(out: &mut String, b: &Bar) {
    let mut classes = b.op.kind.as_str().to_string();
    if b.pending {
        classes.push_str(" pending");
    }
    match b.key {
        KeyMark::Failing => classes.push_str(" fk"),
        KeyMark::Other => classes.push_str(" dim"),
        KeyMark::Plain => {}
    }
    if b.stuck {
        classes.push_str(" stuck");
    }
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
        "<div class=\"op {classes}\" data-x=\"{:.2}\" data-dx=\"{:.2}\" style=\"left:{:.1}px;width:{:.1}px\" title=\"{}\">{ord}{srv}{}</div>",
        b.x,
        b.dx,
        NAME_W + b.x,
        b.dx.max(2.0),
        escape_html(&tooltip(b.id, &b.op)),
        escape_html(&label(&b.op))
    );
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
        let _ = write!(t, ", returned at {} ({:.1} ms)", secs(r, 6), r.saturating_sub(op.call_ns) as f64 / 1e6);
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
