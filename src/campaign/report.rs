//! What a run reports: its figures, the faults that fired, how it failed (a
//! failure class, for "fails the same way"), a one-line description of its
//! mix; and a campaign's summary table.

use std::collections::BTreeMap;

use serde::Serialize;

use super::spec::{self, Focus, PartitionStyle, RunSpec, Workload};
use crate::kv::Bug;
use crate::sim::failure::{Failure, FailureClass};
use crate::sim::kv_cluster::{KvCluster, RunFigures};
use crate::sim::monitor::MonitorReport;

/// Faults that fired in a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FaultCounts {
    pub requests_dropped: u64,
    pub replies_dropped: u64,
    pub duplicated: u64,
    pub delayed: u64,
    pub partitions: u64,
    pub crashes: u64,
    /// Unsynced writes lost at crashes.
    pub writes_lost: u64,
    /// Crashes that tore the write in progress.
    pub torn_writes: u64,
    /// Boots that found a corrupt record (a latent sector error) and
    /// refused to start.
    pub corrupt_found: u64,
    pub pauses: u64,
    /// Messages held back past an election and let go late.
    pub held: u64,
    /// Messages replayed seconds later.
    pub replayed: u64,
    /// The largest ratio between two servers' clock rates (1: no drift).
    pub drift: f64,
}

impl FaultCounts {
    /// Every count as (name, table header, table width, value), in the
    /// order reports and the campaign table show them.
    pub fn entries(&self) -> [(&'static str, &'static str, usize, String); 13] {
        let n = |v: u64| v.to_string();
        [
            ("requests_dropped", "req drop", 8, n(self.requests_dropped)),
            ("replies_dropped", "rep drop", 8, n(self.replies_dropped)),
            ("duplicated", "dup", 8, n(self.duplicated)),
            ("delayed", "delayed", 8, n(self.delayed)),
            ("partitions", "parts", 6, n(self.partitions)),
            ("crashes", "crashes", 7, n(self.crashes)),
            ("writes_lost", "lost wr", 7, n(self.writes_lost)),
            ("torn_writes", "torn", 5, n(self.torn_writes)),
            ("corrupt_found", "corrupt", 7, n(self.corrupt_found)),
            ("pauses", "pauses", 6, n(self.pauses)),
            ("held", "held", 5, n(self.held)),
            ("replayed", "replay", 6, n(self.replayed)),
            ("drift", "drift", 5, format!("{:.2}", self.drift)),
        ]
    }

    /// Adds another run's counts (the drift: the largest).
    pub fn add(&mut self, o: &FaultCounts) {
        self.requests_dropped += o.requests_dropped;
        self.replies_dropped += o.replies_dropped;
        self.duplicated += o.duplicated;
        self.delayed += o.delayed;
        self.partitions += o.partitions;
        self.crashes += o.crashes;
        self.writes_lost += o.writes_lost;
        self.torn_writes += o.torn_writes;
        self.corrupt_found += o.corrupt_found;
        self.pauses += o.pauses;
        self.held += o.held;
        self.replayed += o.replayed;
        self.drift = self.drift.max(o.drift);
    }
}

/// The result of one run (the `--json` line).
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub scenario: String,
    pub seed: u64,
    pub passed: bool,
    pub failure: Option<Failure>,
    pub ops: usize,
    pub ms_per_op: f64,
    pub virtual_ms: u64,
    pub linearizable: bool,
    pub faults: FaultCounts,
    pub history: Option<String>,
    /// The run's parameters in one short line (see [`describe_mix`]).
    pub mix: String,
    /// The ms/op bound the run was held to.
    pub bound_ms: f64,
    /// Virtual ms from the final heal until every clerk completed a new op
    /// (None if the liveness phase failed or was not reached).
    pub liveness_ms: Option<u64>,
    /// The liveness window, virtual ms.
    pub liveness_window_ms: u64,
    /// Virtual ms after the liveness phase until every replica had applied
    /// up to the same index (None if not reached).
    pub convergence_ms: Option<u64>,
    /// How often the run reached each rare situation (kind -> count).
    pub coverage: BTreeMap<String, u64>,
    /// What the monitor saw (leaderships checked for completeness, terms).
    pub monitor: Option<MonitorReport>,
    /// Raft's messages (requests and replies of every service but the KV
    /// one) and their bytes, and the entries committed (applied anywhere).
    pub raft_msgs: u64,
    pub raft_bytes: u64,
    pub committed: u64,
    /// The most Raft messages and bytes the run's efficiency bound allows
    /// for what it committed in its virtual time (see
    /// [`efficiency_bound`](super::verify::efficiency_bound)): how close a
    /// run came to failing as inefficient.
    pub raft_bound: (u64, u64),
    /// The KV service's messages (clerks' requests and servers' replies,
    /// as sent, before any is lost): what the clerks cost the network.
    #[serde(default)]
    pub kv_msgs: u64,
    /// Hash of every message event and the history (0 if the run panicked).
    pub trace_hash: u64,
    /// The per-server trace file written for this run, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Events in the trace (0 when not tracing).
    #[serde(skip_serializing_if = "is_zero_usize")]
    pub trace_events: usize,
    /// On a failure with a trace: the servers it involves (empty: all) and
    /// the trace's last events before it, as text lines.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trace_focus: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trace_slice: Vec<String>,
    /// The command that replays this run.
    pub reproduce: String,
    /// Everything that determines the run.
    #[serde(skip)]
    pub spec: RunSpec,
}

fn is_zero_usize(x: &usize) -> bool {
    *x == 0
}

impl RunReport {
    /// A report for `spec` before (or without) running it: nothing passed
    /// yet; `mix` describes it (see [`describe_mix`]).
    pub fn pending(spec: &RunSpec, reproduce: String, mix: String) -> RunReport {
        RunReport {
            scenario: spec.scenario.clone(),
            seed: spec.seed,
            passed: false,
            failure: None,
            ops: 0,
            ms_per_op: 0.0,
            virtual_ms: 0,
            linearizable: false,
            faults: FaultCounts::default(),
            history: None,
            mix,
            bound_ms: spec.bound_ms,
            liveness_ms: None,
            liveness_window_ms: spec.liveness_ms,
            convergence_ms: None,
            coverage: BTreeMap::new(),
            monitor: None,
            raft_msgs: 0,
            raft_bytes: 0,
            committed: 0,
            raft_bound: (0, 0),
            kv_msgs: 0,
            trace_hash: 0,
            trace: None,
            trace_events: 0,
            trace_focus: Vec::new(),
            trace_slice: Vec::new(),
            reproduce,
            spec: spec.clone(),
        }
    }

    /// Takes in what `cluster` counted up to now (ops completed, the
    /// monitor's report and coverage, the network's messages): what even a
    /// run that stopped midway reached, no clock needed.
    pub fn observed(&mut self, cluster: &KvCluster) {
        self.ops = cluster.history().ops.iter().filter(|o| !o.is_pending()).count();
        let m = cluster.monitor_report();
        self.coverage = m.coverage.clone();
        self.committed = m.committed;
        self.monitor = Some(m);
        let stats = cluster.network().stats();
        (self.raft_msgs, self.raft_bytes) = stats.frames_except(crate::kv::KV_SERVICE);
        self.kv_msgs = stats.frames_of(crate::kv::KV_SERVICE).0;
    }

    /// Takes in the run's figures up to its end or its failure, and its
    /// trace hash.
    pub fn reached(&mut self, f: &RunFigures, trace_hash: u64) {
        self.ops = f.ops;
        self.ms_per_op = f.mean_ms_per_op;
        self.virtual_ms = f.virtual_ms;
        self.trace_hash = trace_hash;
        self.faults = FaultCounts {
            requests_dropped: f.net.requests_dropped,
            replies_dropped: f.net.replies_dropped,
            duplicated: f.net.duplicated,
            delayed: f.net.delayed + f.net.long_delayed,
            partitions: f.partitions,
            crashes: f.crashes,
            writes_lost: f.disk.writes_lost,
            torn_writes: f.disk.torn_writes,
            corrupt_found: f.disk.corrupt_found,
            pauses: f.pauses,
            held: f.net.held,
            replayed: f.net.replayed,
            drift: f.drift,
        };
    }
}

/// The runs of a campaign that failed one way.
#[derive(Clone, Debug)]
pub struct ClassSummary<'a> {
    pub class: FailureClass,
    /// Runs that failed this way.
    pub count: usize,
    /// The first of them, in the campaign's order.
    pub first: &'a RunReport,
}

/// The failed runs grouped by [`FailureClass`], in order of first appearance.
pub fn failures_by_class(reports: &[RunReport]) -> Vec<ClassSummary<'_>> {
    let mut out: Vec<ClassSummary> = Vec::new();
    for r in reports.iter().filter(|r| !r.passed) {
        let Some(class) = r.failure.as_ref().map(|f| f.class.clone()) else { continue };
        match out.iter_mut().find(|c| c.class == class) {
            Some(c) => c.count += 1,
            None => out.push(ClassSummary { class, count: 1, first: r }),
        }
    }
    out
}

/// The failure classes as text: each with its count, its first run, the
/// command that reproduces that run and, if shrunk, where the shrunk spec is
/// (`shrunk`: class name -> a line about it).
pub fn render_classes(classes: &[ClassSummary], shrunk: &BTreeMap<String, String>) -> String {
    let mut out = String::from("failures by class:\n");
    for c in classes {
        let name = c.class.name();
        let runs = if c.count == 1 { "run" } else { "runs" };
        out += &format!("  {name}: {} {runs}; first: {} seed {}\n", c.count, c.first.scenario, c.first.seed);
        let failure: String = c.first.failure.as_ref().map(|f| f.to_string()).unwrap_or_default().chars().take(160).collect();
        out += &format!("    failure:   {failure}\n");
        out += &format!("    reproduce: {}\n", c.first.reproduce);
        if let Some(t) = &c.first.trace {
            out += &format!("    trace:     {t}\n");
        }
        if let Some(s) = shrunk.get(&name) {
            out += &format!("    shrunk:    {s}\n");
        }
    }
    out
}

/// One short line naming the mix of `spec`, whose nemesis fires `events`
/// events (see [`nemesis::within_run`](super::nemesis::within_run)), e.g.
/// `s5 c7 k23 loss 12/5% dup 30% delay 2-40ms lr part bridge crash 0.2/s 14 ev`.
pub fn describe_mix(spec: &RunSpec, events: usize) -> String {
    let f = &spec.faults;
    let pct = |x: f64| (x * 100.0).round() as u64;
    let mut s = format!("s{} c{}", spec.servers, spec.clients);
    if let Workload::Swarm { keys, run_ms, ops_per_client } = &spec.workload {
        s += &format!(" k{keys} {}s", *run_ms as f64 / 1000.0);
        if let Some(n) = ops_per_client {
            s += &format!(" {n}op");
        }
    }
    if f.request_loss > 0.0 || f.reply_loss > 0.0 {
        s += &format!(" loss {}/{}%", pct(f.request_loss), pct(f.reply_loss));
    }
    if f.duplicate_rate > 0.0 {
        s += &format!(" dup {}%", pct(f.duplicate_rate));
    }
    if f.delay_ms[1] > 0 {
        s += &format!(" delay {}-{}ms", f.delay_ms[0], f.delay_ms[1]);
    }
    if f.long_reordering {
        s += " lr";
    }
    match &spec.nemesis {
        None => {
            if spec.partition != PartitionStyle::None {
                s += &format!(" part {}", spec.partition.name());
            }
            if spec.crash_rate > 0.0 {
                s += &format!(" crash {}/s", spec.crash_rate);
            }
            if spec.targeted_rate > 0.0 {
                s += &format!(" targeted {}/s", spec.targeted_rate);
            }
            if spec.focus != Focus::None {
                s += &format!(" focus {}", spec.focus.name());
            }
            if matches!(spec.workload, Workload::Swarm { .. }) {
                s += &format!(" {events} ev");
            }
        }
        Some(ev) => s += &format!(" {} ev (explicit)", ev.len()),
    }
    if spec.bug != Bug::None {
        s += &format!(" bug {}", spec::bug_to_str(spec.bug));
    }
    let d = &spec.disk;
    if *d != crate::sim::fleet::DiskFaults::default() {
        let ms = |us: u64| us as f64 / 1000.0;
        s += &format!(" sync {}-{}ms", ms(d.sync_us.0), ms(d.sync_us.1));
        if d.torn_rate > 0.0 {
            s += &format!(" torn {}%", pct(d.torn_rate));
        }
        if d.corrupt_rate > 0.0 {
            s += &format!(" corrupt {}%", pct(d.corrupt_rate));
        }
        if !d.lose_unsynced {
            s += " keeps-unsynced";
        }
    }
    if spec.clock_drift > 1.0 {
        s += &format!(" drift {}", spec.clock_drift);
    }
    if !spec.raft.is_default() {
        s += &format!(" on {}", spec.raft.name());
    }
    s
}


/// One row of the summary table.
#[derive(Clone, Debug, Serialize)]
pub struct SummaryRow {
    pub scenario: String,
    pub seeds: usize,
    pub passed: usize,
    pub failed: usize,
    pub ops: usize,
    pub median_ms_per_op: f64,
    pub max_ms_per_op: f64,
    /// Slowest liveness phase (virtual ms from heal to every clerk's new op).
    pub max_liveness_ms: u64,
    pub faults: FaultCounts,
}

/// Aggregates reports per scenario, in order of first appearance.
pub fn summarize(reports: &[RunReport]) -> Vec<SummaryRow> {
    let mut names: Vec<&str> = Vec::new();
    for r in reports {
        if !names.contains(&r.scenario.as_str()) {
            names.push(&r.scenario);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let rs: Vec<&RunReport> = reports.iter().filter(|r| r.scenario == name).collect();
            let mut ms: Vec<f64> = rs.iter().filter(|r| r.ops > 0).map(|r| r.ms_per_op).collect();
            ms.sort_by(|a, b| a.total_cmp(b));
            let mut faults = FaultCounts::default();
            for r in &rs {
                faults.add(&r.faults);
            }
            SummaryRow {
                scenario: name.to_string(),
                seeds: rs.len(),
                passed: rs.iter().filter(|r| r.passed).count(),
                failed: rs.iter().filter(|r| !r.passed).count(),
                ops: rs.iter().map(|r| r.ops).sum(),
                median_ms_per_op: if ms.is_empty() { 0.0 } else { ms[ms.len() / 2] },
                max_ms_per_op: ms.last().copied().unwrap_or(0.0),
                max_liveness_ms: rs.iter().filter_map(|r| r.liveness_ms).max().unwrap_or(0),
                faults,
            }
        })
        .collect()
}

/// The summary as an aligned text table, one column per fault kind.
pub fn render_table(rows: &[SummaryRow]) -> String {
    let faults = |f: &FaultCounts, header: bool| -> String {
        f.entries().iter().map(|(_, h, w, v)| format!(" {:>w$}", if header { *h } else { v.as_str() }, w = *w)).collect()
    };
    let mut out = format!(
        "{:<31} {:>5} {:>6} {:>6} {:>8} {:>9} {:>9} {:>8}{}\n",
        "scenario",
        "seeds",
        "passed",
        "failed",
        "ops",
        "med ms/op",
        "max ms/op",
        "live ms",
        faults(&FaultCounts::default(), true)
    );
    for r in rows {
        out += &format!(
            "{:<31} {:>5} {:>6} {:>6} {:>8} {:>9.1} {:>9.1} {:>8}{}\n",
            r.scenario,
            r.seeds,
            r.passed,
            r.failed,
            r.ops,
            r.median_ms_per_op,
            r.max_ms_per_op,
            r.max_liveness_ms,
            faults(&r.faults, false)
        );
    }
    out
}

/// One run's report as aligned lines (what `kvraft run` prints).
pub fn render_report(r: &RunReport) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: String| s += &format!("{k:<13} {v}\n");
    line("scenario", r.scenario.clone());
    line("seed", r.seed.to_string());
    line("mix", r.mix.clone());
    line("result", if r.passed { "passed".to_string() } else { format!("FAILED: {}", r.failure.as_ref().map(|f| f.to_string()).unwrap_or_default()) });
    line("ops", r.ops.to_string());
    line("ms/op", format!("{:.2} (virtual; bound {} ms/op)", r.ms_per_op, r.bound_ms));
    line("virtual time", format!("{} ms", r.virtual_ms));
    // A run that stopped at a failure (a violation, a panic) never reached
    // its checks: its history was not checked.
    let checked = r.convergence_ms.is_some();
    line("linearizable", if checked { r.linearizable.to_string() } else { "not checked (the run stopped first)".to_string() });
    line(
        "liveness",
        match r.liveness_ms {
            Some(ms) => format!("every clerk completed a new op {ms} ms after the heal (window {} ms, virtual)", r.liveness_window_ms),
            None => format!("not shown (window {} ms, virtual)", r.liveness_window_ms),
        },
    );
    let faults: Vec<String> = r.faults.entries().iter().map(|(k, _, _, v)| format!("{k}={v}")).collect();
    line("faults", faults.join(" "));
    if let Some(m) = &r.monitor {
        let reached: Vec<String> = r.coverage.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k}={n}")).collect();
        line(
            "monitor",
            format!(
                "{} terms led; {} leaderships checked for completeness{}; replicas converged {}",
                m.terms_led,
                m.completeness_checked,
                if m.completeness_skipped > 0 {
                    format!(" ({} not: the Raft cannot list its log)", m.completeness_skipped)
                } else {
                    String::new()
                },
                r.convergence_ms.map_or("(not reached)".to_string(), |ms| format!("{ms} ms after the liveness phase"))
            ),
        );
        line("reached", reached.join(" "));
    }
    line("trace hash", format!("{:016x}", r.trace_hash));
    if let Some(h) = &r.history {
        line("history", h.clone());
        let html = std::path::Path::new(h).with_extension("html");
        if html.exists() {
            line("timeline", html.display().to_string());
        }
    }
    if let Some(t) = &r.trace {
        line("trace", format!("{t} ({} events; text form: {t}.txt)", r.trace_events));
    }
    if !r.passed {
        line("reproduce", r.reproduce.clone());
    }
    if !r.trace_slice.is_empty() {
        let who = if r.trace_focus.is_empty() {
            "every server".to_string()
        } else {
            r.trace_focus.iter().map(|s| format!("s{s}")).collect::<Vec<_>>().join(", ")
        };
        s += &format!("\nthe trace before the failure ({who}; messages counted, not listed):\n");
        for l in &r.trace_slice {
            s += l;
            s.push('\n');
        }
    }
    s
}

/// How often a campaign reached one rare situation.
#[derive(Clone, Debug, Serialize)]
pub struct CoverageRow {
    pub kind: String,
    /// Runs that reached it at least once.
    pub runs: usize,
    /// Times it happened, over all runs.
    pub total: u64,
}

/// Coverage summed over a campaign, one row per kind (every kind, reached
/// or not, in the monitor's order).
pub fn coverage(reports: &[RunReport]) -> Vec<CoverageRow> {
    let kinds: Vec<String> = crate::sim::monitor::Reached::all().into_iter().map(|k| k.name().to_string()).collect();
    kinds
        .into_iter()
        .map(|kind| {
            let counts: Vec<u64> = reports.iter().map(|r| r.coverage.get(&kind).copied().unwrap_or(0)).collect();
            CoverageRow { runs: counts.iter().filter(|c| **c > 0).count(), total: counts.iter().sum(), kind }
        })
        .collect()
}

/// The coverage table: each kind, the share of runs that reached it, and
/// how often it happened in all.
pub fn render_coverage(rows: &[CoverageRow], runs: usize) -> String {
    let mut out = format!("{:<28} {:>11} {:>7} {:>10}\n", "situation reached", "runs", "share", "times");
    for r in rows {
        let share = if runs == 0 { 0.0 } else { 100.0 * r.runs as f64 / runs as f64 };
        let mark = if r.runs == 0 { "  <- never reached" } else { "" };
        out += &format!("{:<28} {:>5} of {:<3} {:>6.1}% {:>10}{mark}\n", r.kind, r.runs, runs, share, r.total);
    }
    out
}
