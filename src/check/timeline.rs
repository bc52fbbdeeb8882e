//! A self-contained HTML page showing a history on a timeline: one lane per
//! client, each op a bar from call to return (pending ops open-ended to the
//! right), the failing key's ops highlighted, and a summary of the verdict
//! with the longest linearized prefix the checker found.
//!
//! The page has two views: an overview of every op over virtual time
//! (capped for very large histories), and, when the history is not
//! linearizable, a detail view of the failing key alone, in which time is
//! compressed to the order of events so that every bar is wide enough to be
//! labelled.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use super::checker::{describe_op, Verdict};
use super::history::{History, Op, OpKind};

/// At most this many ops are drawn in the overview (the failing key's are
/// always drawn).
const OVERVIEW_MAX_OPS: usize = 20_000;
/// At most this many ops of the failing key are drawn in the detail view.
const DETAIL_MAX_OPS: usize = 3_000;
/// At most this many prefix entries are listed.
const PREFIX_MAX: usize = 5_000;

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
    if op.return_ns.is_none() {
        t.push_str("\npending: may or may not have taken effect");
    }
    t
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
.lane-name { position: sticky; left: 0; z-index: 2; display: inline-block; width: 80px; height: 21px; background: #f0f0f0;
  border-right: 1px solid #ccc; font-size: 11px; line-height: 21px; padding-left: 4px; box-sizing: border-box; }
.op { position: absolute; top: 3px; height: 15px; box-sizing: border-box; border: 1px solid #555; border-radius: 2px;
  font-size: 10px; line-height: 13px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; padding: 0 2px; min-width: 2px; }
.op.get { background: #bcd7f5; }
.op.put { background: #f6cf9e; }
.op.append { background: #b9e4b9; }
.op.pending { border-style: dashed; border-right: none; opacity: .75;
  -webkit-mask-image: linear-gradient(to right, #000 70%, transparent); mask-image: linear-gradient(to right, #000 70%, transparent); }
.op.fk { border: 2px solid #cf222e; }
.op.dim { opacity: .35; }
.op.stuck { background: #ff8182; border: 2px solid #82071e; }
.op .ord { font-weight: bold; color: #0550ae; margin-right: 3px; }
.op:hover { z-index: 5; overflow: visible; box-shadow: 0 0 3px #000; }
ol.prefix { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
ol.prefix li.stuck { color: #cf222e; font-weight: bold; list-style: none; margin-left: -1.5em; }
.note { color: #666; }
.lane.axis { height: 18px; border-bottom: 1px solid #999; }
.op.tick { border: none; border-left: 1px solid #999; border-radius: 0; background: none; overflow: visible; font-size: 10px; color: #555; padding-left: 2px; top: 2px; }
button { font-size: 12px; }
"#;

const SCRIPT: &str = r#"
function zoom(id, f) {
  var c = document.getElementById(id);
  var w = parseFloat(c.getAttribute('data-w')) * f;
  if (w < 400) w = 400;
  if (w > 2000000) w = 2000000;
  c.setAttribute('data-w', w);
  var s = w / parseFloat(c.getAttribute('data-base'));
  c.style.width = (w + 80) + 'px';
  var ops = c.querySelectorAll('.op');
  for (var i = 0; i < ops.length; i++) {
    var o = ops[i];
    o.style.left = (80 + parseFloat(o.getAttribute('data-x')) * s) + 'px';
    o.style.width = Math.max(2, parseFloat(o.getAttribute('data-dx')) * s) + 'px';
  }
}
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

/// Renders one chart: lanes per client. `width` is the initial pixel width
/// of the time axis; positions are in units of `base` (= width initially).
fn chart(out: &mut String, id: &str, bars: &[Bar], width: f64, ticks: &[(f64, String)]) {
    let mut lanes: BTreeMap<u64, Vec<&Bar>> = BTreeMap::new();
    for b in bars {
        lanes.entry(b.op.client).or_default().push(b);
    }
    let _ = write!(
        out,
        "<div><button onclick=\"zoom('{id}',1.5)\">zoom in</button> <button onclick=\"zoom('{id}',1/1.5)\">zoom out</button></div>\n\
         <div class=\"scroll\"><div class=\"chart\" id=\"{id}\" data-w=\"{width}\" data-base=\"{width}\" style=\"width:{}px\">\n",
        width + 80.0
    );
    // The time axis: ticks drawn as zero-width "ops" so that zooming moves them.
    out.push_str("<div class=\"lane axis\"><span class=\"lane-name\">time</span>");
    for (x, text) in ticks {
        let _ = write!(
            out,
            "<div class=\"op tick\" data-x=\"{x:.2}\" data-dx=\"0\" style=\"left:{:.1}px;width:2px\">{}</div>",
            80.0 + x,
            escape_html(text)
        );
    }
    out.push_str("</div>\n");
    for (client, bars) in lanes {
        let _ = write!(out, "<div class=\"lane\"><span class=\"lane-name\">client {client}</span>");
        for b in bars {
            let ord = match b.order {
                Some(k) => format!("<span class=\"ord\">{}</span>", k + 1),
                None => String::new(),
            };
            let _ = write!(
                out,
                "<div class=\"op {}\" data-x=\"{:.2}\" data-dx=\"{:.2}\" style=\"left:{:.1}px;width:{:.1}px\" title=\"{}\">{}{}</div>",
                b.classes,
                b.x,
                b.dx,
                80.0 + b.x,
                b.dx.max(2.0),
                escape_html(&tooltip(b.id, b.op)),
                ord,
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
                let _ = write!(
                    out,
                    "<tr><td>stuck at</td><td class=\"bad\">#{} {}</td></tr>",
                    s.0,
                    escape_html(&describe_op(s.1))
                );
            }
        }
    }
    let _ = write!(out, "<tr><td>states explored</td><td>{}</td></tr>", verdict.states_explored);
    out.push_str("</table>\n");
    out.push_str(
        "<p class=\"legend\"><span><i style=\"background:#bcd7f5\"></i>get</span><span><i style=\"background:#f6cf9e\"></i>put</span>\
         <span><i style=\"background:#b9e4b9\"></i>append</span><span><i style=\"border-style:dashed\"></i>pending (open-ended)</span>\
         <span><i style=\"border:2px solid #cf222e\"></i>failing key</span><span><i style=\"background:#ff8182\"></i>could not be linearized</span>\
         <span><b style=\"color:#0550ae\">n</b> position in the linearized prefix</span></p>\n<p class=\"note\">Hover a bar for the full op.</p>\n",
    );

    let order: HashMap<usize, usize> =
        detail.map(|d| d.linearized_prefix.iter().enumerate().map(|(k, &id)| (id, k)).collect()).unwrap_or_default();
    let stuck = detail.and_then(|d| d.stuck_op);

    // Detail view of the failing key, in event-order time.
    if let (Some(d), Some(fk)) = (detail, failing_key.as_deref()) {
        let _ = writeln!(out, "<h2>Failing key {}</h2>", escape_html(&format!("{fk:?}")));
        out.push_str("<p class=\"note\">Time here is compressed to the order of calls and returns (tick labels: virtual time).</p>\n");
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
        let end = times.len() as f64 + 3.0;
        let bars: Vec<Bar> = shown
            .iter()
            .map(|&i| {
                let o = &ops[i];
                let x = rank(o.call_ns);
                let x2 = match o.return_ns {
                    Some(r) => rank(r) + 1.0,
                    None => end,
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
        let step = ((times.len() as f64 / 20.0).ceil() as usize).max(1);
        let ticks: Vec<(f64, String)> =
            times.iter().enumerate().step_by(step).map(|(k, t)| (k as f64 * unit, format!("{t}"))).collect();
        chart(&mut out, "detail", &bars, end * unit, &ticks);

        let _ = writeln!(
            out,
            "<h2>Longest linearized prefix ({} ops)</h2>\n<p class=\"note\">The longest sequence of this key's ops that the search could put in a legal order; the op after it could not be placed.</p>\n<ol class=\"prefix\">",
            d.linearized_prefix.len()
        );
        for &id in d.linearized_prefix.iter().take(PREFIX_MAX) {
            if let Some(o) = ops.get(id) {
                let _ = writeln!(out, "<li>#{id} {}</li>", escape_html(&describe_op(o)));
            }
        }
        if d.linearized_prefix.len() > PREFIX_MAX {
            let _ = writeln!(out, "<li class=\"note\">… {} more</li>", d.linearized_prefix.len() - PREFIX_MAX);
        }
        if let Some(o) = stuck.and_then(|s| ops.get(s)) {
            let _ =
                writeln!(out, "<li class=\"stuck\">✗ then #{} {}</li>", stuck.unwrap(), escape_html(&describe_op(o)));
        }
        out.push_str("</ol>\n");
    }

    // Overview of everything, over virtual time.
    out.push_str("<h2>All ops</h2>\n");
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
    if chosen.is_empty() {
        out.push_str("<p class=\"note\">No ops.</p>\n");
    } else {
        let t0 = chosen.iter().map(|&i| ops[i].call_ns).min().unwrap_or(0);
        let t1 =
            chosen.iter().map(|&i| ops[i].return_ns.unwrap_or(ops[i].call_ns).max(ops[i].call_ns)).max().unwrap_or(t0);
        let span = (t1 - t0).max(1) as f64 * 1.03;
        let lanes = chosen.iter().map(|&i| ops[i].client).collect::<BTreeSet<_>>().len().max(1);
        let per_lane = chosen.len() as f64 / lanes as f64;
        let width = (per_lane * 40.0).clamp(1200.0, 60000.0);
        let scale = width / span;
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
        let _ = writeln!(out, "<p class=\"note\">Virtual time {t0} to {t1} (ns).</p>");
        let ticks: Vec<(f64, String)> = (0..10)
            .map(|k| {
                let t = t0 as f64 + span * k as f64 / 10.0;
                ((t - t0 as f64) * scale, format!("{}", t.round() as u64))
            })
            .collect();
        chart(&mut out, "overview", &bars, width, &ticks);
    }
    out.push_str("</body></html>\n");
    out
}
