//! Campaigns: the catalogue of KV scenarios, running one scenario for one
//! seed in a fresh simulation (failures caught, not fatal), and running many
//! seeds across worker threads with a summary table.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use super::report;
use super::scenario::{run_generic, GenericSpec};
use crate::kv::Bug;

/// One runnable scenario.
#[derive(Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub spec: GenericSpec,
    /// Mean virtual ms per completed op that the scenario must stay under.
    pub bound_ms: f64,
    /// Part of the default campaign (the deliberately broken ones are not).
    pub default: bool,
}

fn sc(name: &'static str, about: &'static str, spec: GenericSpec, bound_ms: f64) -> Scenario {
    Scenario { name, about, spec, bound_ms, default: true }
}

/// Every scenario, in a fixed order.
pub fn catalog() -> Vec<Scenario> {
    let g = GenericSpec::new;
    let mut dup = g(5, 5, true, true, true, false);
    dup.duplicate_rate = 0.3;
    let mut one_way = g(5, 5, false, false, true, false);
    one_way.one_way = true;
    let mut local_get = g(5, 5, false, false, true, true);
    (local_get.bug, local_get.inline_checks) = (Bug::LocalGet, false);
    let mut no_dedup = g(5, 5, true, false, false, false);
    (no_dedup.bug, no_dedup.inline_checks) = (Bug::NoDedup, false);
    vec![
        sc("basic", "1 clerk, 5 servers, reliable network", g(1, 5, false, false, false, false), 45.0),
        sc("concurrent", "5 clerks, 5 servers, reliable network", g(5, 5, false, false, false, false), 60.0),
        sc("unreliable", "5 clerks; 10% of requests and replies lost, delays 0-27 ms", g(5, 5, true, false, false, false), 200.0),
        sc("partitions", "5 clerks; servers split in two at random every ~1 s", g(5, 5, false, false, true, false), 150.0),
        sc("restarts", "5 clerks; all servers crash and restart between rounds", g(5, 5, false, true, false, false), 100.0),
        sc("restarts_unreliable", "5 clerks; crashes and a lossy network", g(5, 5, true, true, false, false), 300.0),
        sc("partitions_restarts_unreliable", "5 clerks; partitions, crashes, loss", g(5, 5, true, true, true, false), 500.0),
        sc("linearizable", "15 clerks, 7 servers, random keys with puts; partitions, crashes, loss", g(15, 7, true, true, true, true), 600.0),
        sc("duplication", "5 clerks; 30% of messages delivered twice, plus loss, partitions, crashes", dup, 600.0),
        sc("one_way", "5 clerks; random one-way link cuts between servers", one_way, 300.0),
        Scenario {
            default: false,
            ..sc("broken_local_get", "a broken server that answers Get from its local map (must fail)", local_get, 150.0)
        },
        Scenario {
            default: false,
            ..sc("broken_no_dedup", "a broken server without a duplicate table (must fail)", no_dedup, 200.0)
        },
    ]
}

pub fn find(name: &str) -> Option<Scenario> {
    catalog().into_iter().find(|s| s.name == name)
}

/// Faults that fired in a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FaultCounts {
    pub requests_dropped: u64,
    pub replies_dropped: u64,
    pub duplicated: u64,
    pub delayed: u64,
    pub partitions: u64,
    pub crashes: u64,
}

/// The result of one run (the `--json` line).
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub scenario: String,
    pub seed: u64,
    pub passed: bool,
    pub failure: Option<String>,
    pub ops: usize,
    pub ms_per_op: f64,
    pub virtual_ms: u64,
    pub linearizable: bool,
    pub faults: FaultCounts,
    pub history: Option<String>,
}

impl RunReport {
    pub fn reproduce(&self) -> String {
        format!("cargo run --release -- run {} --seed {}", self.scenario, self.seed)
    }
}

/// Runs `sc` with `seed` in a fresh simulation on this thread.
pub fn run_one(sc: &Scenario, seed: u64, time_limit: Option<Duration>) -> RunReport {
    let reproduce = format!("cargo run --release -- run {} --seed {seed}", sc.name);
    report::enter_quiet_run(reproduce);
    let mut rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    if let Some(limit) = time_limit {
        rt.set_time_limit(limit);
    }
    let spec = sc.spec.clone();
    let name = sc.name;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async move {
            let cfg = run_generic(name, &spec).await;
            let (verdict, path) = cfg.verify();
            (verdict, cfg.figures(), path)
        })
    }));
    let panic = report::take_panic();
    let mut r = RunReport {
        scenario: sc.name.to_string(),
        seed,
        passed: false,
        failure: None,
        ops: 0,
        ms_per_op: 0.0,
        virtual_ms: 0,
        linearizable: false,
        faults: FaultCounts::default(),
        history: None,
    };
    match outcome {
        Ok((verdict, f, path)) => {
            r.ops = f.ops;
            r.ms_per_op = f.mean_ms_per_op;
            r.virtual_ms = f.virtual_ms;
            r.linearizable = verdict.linearizable;
            r.history = path.map(|p: PathBuf| p.display().to_string());
            r.faults = FaultCounts {
                requests_dropped: f.net.requests_dropped,
                replies_dropped: f.net.replies_dropped,
                duplicated: f.net.duplicated,
                delayed: f.net.delayed + f.net.long_delayed,
                partitions: f.partitions,
                crashes: f.crashes,
            };
            if !verdict.linearizable {
                r.failure = Some(format!("not linearizable (key {:?})", verdict.failing_key.unwrap_or_default()));
            } else if f.mean_ms_per_op > sc.bound_ms {
                r.failure = Some(format!("too slow: {:.1} ms/op > {} ms/op", f.mean_ms_per_op, sc.bound_ms));
            } else {
                r.passed = true;
            }
        }
        Err(_) => {
            r.failure = Some(panic.unwrap_or_else(|| "panicked".to_string()));
        }
    }
    r
}

/// Runs every (scenario, seed) pair on `jobs` threads; `progress` is called
/// after each run. Results come back in the order of `runs`.
pub fn run_many(
    runs: &[(Scenario, u64)],
    jobs: usize,
    time_limit: Option<Duration>,
    progress: &(dyn Fn(&RunReport) + Sync),
) -> Vec<RunReport> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<RunReport>>> = Mutex::new(vec![None; runs.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((sc, seed)) = runs.get(i) else { return };
                // Each run gets a thread of its own: madsim keeps per-thread state.
                let r = std::thread::scope(|s2| s2.spawn(|| run_one(sc, *seed, time_limit)).join())
                    .unwrap_or_else(|_| RunReport {
                        scenario: sc.name.to_string(),
                        seed: *seed,
                        passed: false,
                        failure: Some("the run's thread panicked".to_string()),
                        ops: 0,
                        ms_per_op: 0.0,
                        virtual_ms: 0,
                        linearizable: false,
                        faults: FaultCounts::default(),
                        history: None,
                    });
                progress(&r);
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    results.into_inner().unwrap().into_iter().map(|r| r.expect("every run reports")).collect()
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
    pub faults: FaultCounts,
}

/// Aggregates reports per scenario, in catalogue order.
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
                faults.requests_dropped += r.faults.requests_dropped;
                faults.replies_dropped += r.faults.replies_dropped;
                faults.duplicated += r.faults.duplicated;
                faults.delayed += r.faults.delayed;
                faults.partitions += r.faults.partitions;
                faults.crashes += r.faults.crashes;
            }
            SummaryRow {
                scenario: name.to_string(),
                seeds: rs.len(),
                passed: rs.iter().filter(|r| r.passed).count(),
                failed: rs.iter().filter(|r| !r.passed).count(),
                ops: rs.iter().map(|r| r.ops).sum(),
                median_ms_per_op: if ms.is_empty() { 0.0 } else { ms[ms.len() / 2] },
                max_ms_per_op: ms.last().copied().unwrap_or(0.0),
                faults,
            }
        })
        .collect()
}

/// The summary as an aligned text table.
pub fn render_table(rows: &[SummaryRow]) -> String {
    let mut out = format!(
        "{:<32} {:>5} {:>6} {:>6} {:>8} {:>9} {:>9}  {}\n",
        "scenario", "seeds", "passed", "failed", "ops", "med ms/op", "max ms/op", "faults fired (req drop / reply drop / dup / delayed / partitions / crashes)"
    );
    for r in rows {
        let f = &r.faults;
        out += &format!(
            "{:<32} {:>5} {:>6} {:>6} {:>8} {:>9.1} {:>9.1}  {} / {} / {} / {} / {} / {}\n",
            r.scenario,
            r.seeds,
            r.passed,
            r.failed,
            r.ops,
            r.median_ms_per_op,
            r.max_ms_per_op,
            f.requests_dropped,
            f.replies_dropped,
            f.duplicated,
            f.delayed,
            f.partitions,
            f.crashes
        );
    }
    out
}
