//! Performance baselines: what a campaign's runs cost, per scenario, to hold
//! a later version of the same Raft to.
//!
//! The figures: mean ms per op, Raft messages and bytes per committed
//! entry, the KV service's messages per op, and leader elections per run.
//! Virtual time is deterministic, so the figures of given scenarios and
//! seeds are exact, not noisy. A change that alters the schedule at all
//! (any change to what the servers do) sends every run down another path,
//! which moves the figures of a scenario over 20 seeds about as much as
//! another group of 20 seeds does (BENCHMARKS.md: from 0.2% for a
//! fault-free scenario to 13% for the ms/op of `rewrites`); each
//! scenario's tolerance is set from that. A change that makes the service
//! slower without making it wrong (resending later, backing up one entry
//! at a time, waiting for syncs it need not, retrying the wrong server or
//! too eagerly) moves them more, and the tolerance catches it where no
//! ms/op bound of a single run could. Elections are the steadiest figure:
//! a fault-free scenario elects exactly one leader per run, whatever the
//! seeds, so a Raft whose leaders step down for no reason (a vote request
//! of their own term, say) shows there first.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::report::RunReport;

/// What the runs of one scenario cost, together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub runs: usize,
    /// Completed ops, over all the runs.
    pub ops: usize,
    /// Mean virtual ms per completed op, over all the runs' ops.
    pub ms_per_op: f64,
    /// Raft messages (requests and replies) per entry committed.
    pub msgs_per_entry: f64,
    /// Their bytes per entry committed.
    pub bytes_per_entry: f64,
    /// Terms that had a leader, per run.
    pub elections_per_run: f64,
    /// The KV service's messages (clerks' requests and servers' replies)
    /// per completed op: a clerk that retries too eagerly, or a server
    /// that makes it, shows here. 0 in a baseline written before it was
    /// measured, and then not checked.
    #[serde(default)]
    pub kv_msgs_per_op: f64,
    /// This scenario's own tolerance, if its figures move more than most
    /// when the schedule changes (partitions at random moments, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
}

/// A baseline: scenario -> figures, over seeds 1..=`seeds`, for one Raft.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// The Raft measured (`ours`, `raft-rs`).
    pub raft: String,
    pub seeds: u64,
    /// How much higher (a fraction) a figure may be before it counts as a
    /// regression.
    pub tolerance: f64,
    pub scenarios: BTreeMap<String, Figures>,
}

/// The figures of `reports`, by scenario. Failed runs count too (their ops
/// and messages happened).
pub fn measure(reports: &[RunReport]) -> BTreeMap<String, Figures> {
    let mut by: BTreeMap<String, Vec<&RunReport>> = BTreeMap::new();
    for r in reports {
        by.entry(r.scenario.clone()).or_default().push(r);
    }
    by.into_iter()
        .map(|(name, rs)| {
            let ops: usize = rs.iter().map(|r| r.ops).sum();
            let ms: f64 = rs.iter().map(|r| r.ms_per_op * r.ops as f64).sum();
            let msgs: u64 = rs.iter().map(|r| r.raft_msgs).sum();
            let bytes: u64 = rs.iter().map(|r| r.raft_bytes).sum();
            let entries: u64 = rs.iter().map(|r| r.committed).sum();
            let elections: u64 = rs.iter().map(|r| r.monitor.as_ref().map_or(0, |m| m.terms_led)).sum();
            let kv_msgs: u64 = rs.iter().map(|r| r.kv_msgs).sum();
            let per_entry = |x: u64| if entries == 0 { 0.0 } else { x as f64 / entries as f64 };
            let f = Figures {
                runs: rs.len(),
                ops,
                ms_per_op: if ops == 0 { 0.0 } else { ms / ops as f64 },
                msgs_per_entry: per_entry(msgs),
                bytes_per_entry: per_entry(bytes),
                elections_per_run: elections as f64 / rs.len() as f64,
                kv_msgs_per_op: if ops == 0 { 0.0 } else { kv_msgs as f64 / ops as f64 },
                tolerance: None,
            };
            (name, f)
        })
        .collect()
}

/// Every way `now` is worse than `base`: a figure above the baseline's by
/// more than the tolerance (the scenario's own, else the baseline's; for
/// elections, also by more than one election over all the runs), fewer ops
/// completed than the baseline's by more than it, or a scenario not
/// measured. Empty: no regression.
pub fn regressions(base: &Baseline, now: &BTreeMap<String, Figures>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, b) in &base.scenarios {
        let limit = 1.0 + b.tolerance.unwrap_or(base.tolerance);
        let Some(n) = now.get(name) else {
            out.push(format!("{name}: not measured"));
            continue;
        };
        // (now, baseline, decimals, what); a baseline figure of 0 was not
        // measured (kv messages, in a file older than that figure).
        let figures = [
            (n.ms_per_op, b.ms_per_op, 2, "ms/op"),
            (n.msgs_per_entry, b.msgs_per_entry, 3, "raft messages per entry"),
            (n.bytes_per_entry, b.bytes_per_entry, 1, "raft bytes per entry"),
            (n.kv_msgs_per_op, b.kv_msgs_per_op, 2, "kv messages per op"),
        ];
        for (now, was, dec, what) in figures {
            if was > 0.0 && now > was * limit {
                out.push(format!("{name}: {now:.dec$} {what}, baseline {was:.dec$} (+{:.1}%)", pct(now, was)));
            }
        }
        let (now, was) = (n.elections_per_run, b.elections_per_run);
        if now > was * limit && (now - was) * n.runs as f64 > 1.0 + 1e-9 {
            out.push(format!("{name}: {now:.3} leader elections per run, baseline {was:.3} (+{:.1}%)", pct(now, was)));
        }
        if (n.ops as f64) * limit < b.ops as f64 {
            out.push(format!("{name}: {} ops completed, baseline {}", n.ops, b.ops));
        }
    }
    out
}

/// One line: scenario `name`'s figures `now` beside the baseline's `was`.
pub fn render_row(name: &str, now: &Figures, was: &Figures) -> String {
    format!(
        "{name:<32} {:>8.2} ms/op (baseline {:.2}), {:>7.3} raft msgs/entry (baseline {:.3}), {:>8.1} bytes/entry (baseline {:.1}), {:>6.2} kv msgs/op (baseline {:.2}), {:>6.2} elections/run (baseline {:.2}), {} ops",
        now.ms_per_op,
        was.ms_per_op,
        now.msgs_per_entry,
        was.msgs_per_entry,
        now.bytes_per_entry,
        was.bytes_per_entry,
        now.kv_msgs_per_op,
        was.kv_msgs_per_op,
        now.elections_per_run,
        was.elections_per_run,
        now.ops
    )
}

fn pct(now: f64, base: f64) -> f64 {
    (now / base - 1.0) * 100.0
}

/// Reads a baseline file, with an error naming the file and what is wrong.
pub fn load(path: &Path) -> Result<Baseline, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("baseline {}: {e}", path.display()))?;
    let b: Baseline = serde_json::from_str(&text).map_err(|e| format!("baseline {}: {e}", path.display()))?;
    let sound = |t: f64| t >= 0.0 && t.is_finite();
    if !sound(b.tolerance) || b.scenarios.values().any(|f| !f.tolerance.is_none_or(sound)) || b.seeds == 0 || b.scenarios.is_empty() {
        return Err(format!("baseline {}: needs seeds >= 1, tolerances >= 0 and at least one scenario", path.display()));
    }
    Ok(b)
}

/// Writes `b` to `path` as JSON.
pub fn save(b: &Baseline, path: &Path) -> Result<(), String> {
    let text = serde_json::to_string_pretty(b).map_err(|e| format!("baseline: {e}"))?;
    std::fs::write(path, text + "\n").map_err(|e| format!("baseline {}: {e}", path.display()))
}
