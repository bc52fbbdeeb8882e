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
//!
//! The page is made in two steps: [`build_timeline`] turns the history and
//! its verdict into a [`Timeline`] (the lanes, spans, bars and axes the
//! page draws, as data: [`model`]), then the `html` module draws that; the
//! page's style sheet and script are `timeline.css` and `timeline.js`.

use std::fmt::Write as _;
use std::path::Path;

use super::checker::Verdict;
use super::history::History;

mod html;
pub mod model;
mod world;

pub use model::{build_timeline, Timeline};

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

/// The timeline page as a string (see [`write_timeline_html`]).
pub fn render_timeline_html(history: &History, verdict: &Verdict) -> String {
    html::page(&build_timeline(history, verdict))
}

/// Writes the timeline page for `history` checked with result `verdict`.
pub fn write_timeline_html(history: &History, verdict: &Verdict, path: &Path) -> std::io::Result<()> {
    std::fs::write(path, render_timeline_html(history, verdict))
}
