//! Campaigns: the catalogue of KV scenarios, running one run spec (a
//! scenario or a swarm mix, with its seed) in a fresh simulation with a
//! liveness phase at the end (failures caught, not fatal), and running many
//! across worker threads with a summary table.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use super::kv_cluster::RunFigures;
use super::report;
use super::scenario::{liveness_phase, run_generic_clerks, GenericSpec, Liveness};
use super::spec::{self, RunSpec, Workload};
use super::swarm;
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
    /// The run's parameters in one short line (see `swarm::describe_mix`).
    pub mix: String,
    /// The ms/op bound the run was held to.
    pub bound_ms: f64,
    /// Virtual ms from the final heal until every clerk completed a new op
    /// (None if the liveness phase failed or was not reached).
    pub liveness_ms: Option<u64>,
    /// The liveness window, virtual ms.
    pub liveness_window_ms: u64,
    /// Hash of every message event and the history (0 if the run panicked).
    pub trace_hash: u64,
    /// The command that replays this run.
    pub reproduce: String,
    /// Everything that determines the run.
    #[serde(skip)]
    pub spec: RunSpec,
}

impl RunReport {
    pub fn reproduce(&self) -> String {
        self.reproduce.clone()
    }
}

/// How a run failed, for "fails the same way".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureClass {
    NotLinearizable,
    Liveness,
    TooSlow,
    Nondeterminism,
    /// A panic (an assertion in the workload, a time limit), by the start
    /// of its message.
    Panic(String),
}

impl FailureClass {
    /// Classifies a report's failure message.
    pub fn of(failure: &str) -> FailureClass {
        if failure.starts_with("not linearizable") {
            FailureClass::NotLinearizable
        } else if failure.starts_with("liveness:") {
            FailureClass::Liveness
        } else if failure.starts_with("too slow:") {
            FailureClass::TooSlow
        } else if failure.starts_with("nondeterminism:") {
            FailureClass::Nondeterminism
        } else {
            FailureClass::Panic(panic_prefix(failure))
        }
    }

    pub fn name(&self) -> String {
        match self {
            FailureClass::NotLinearizable => "not linearizable".to_string(),
            FailureClass::Liveness => "liveness".to_string(),
            FailureClass::TooSlow => "too slow".to_string(),
            FailureClass::Nondeterminism => "nondeterminism".to_string(),
            FailureClass::Panic(p) => format!("panic: {p}"),
        }
    }
}

/// The start of a panic message with what varies between runs blanked: the
/// source location dropped, every number replaced by `N`, at most 48
/// characters (e.g. `N missing element x N N y in Append result x N N`).
pub fn panic_prefix(msg: &str) -> String {
    let msg = msg.split(" (at ").next().unwrap_or(msg);
    let mut out = String::new();
    let mut in_number = false;
    for c in msg.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
        if out.chars().count() >= 48 {
            break;
        }
    }
    out.trim_end().to_string()
}

/// The spec of a named run: a catalogue scenario or "swarm", with `seed`
/// and a deliberate bug (None: as the scenario has it).
pub fn spec_for(name: &str, seed: u64, bug: Option<Bug>) -> Result<RunSpec, String> {
    let spec = if name == swarm::SWARM {
        swarm::swarm_spec(seed)
    } else {
        let sc = find(name).ok_or_else(|| {
            let mut names: Vec<&str> = catalog().iter().map(|s| s.name).collect();
            names.push(swarm::SWARM);
            format!("unknown scenario '{name}'; known: {}", names.join(", "))
        })?;
        RunSpec::from_scenario(&sc, seed)
    };
    Ok(match bug {
        Some(b) => spec.with_bug(b),
        None => spec,
    })
}

/// The shortest command that replays `spec`: by name and seed when the name
/// and seed generate exactly this spec, else from a spec file.
pub fn reproduce_command(spec: &RunSpec) -> String {
    let bug = if spec.bug == Bug::None { None } else { Some(spec.bug) };
    match spec_for(&spec.scenario, spec.seed, bug) {
        Ok(s) if s == *spec || (s.nemesis.is_none() && swarm::materialize(&s) == *spec) => {
            let bug_arg = bug.map(|b| format!(" --bug {}", spec::bug_to_str(b))).unwrap_or_default();
            format!("cargo run --release -- run {} --seed {}{bug_arg}", spec.scenario, spec.seed)
        }
        _ => "cargo run --release -- run --spec FILE (the spec saved by --save-failures or shrink --out)".to_string(),
    }
}

/// Runs `sc` with `seed` in a fresh simulation on this thread.
pub fn run_one(sc: &Scenario, seed: u64, time_limit: Option<Duration>) -> RunReport {
    run_spec(&RunSpec::from_scenario(sc, seed), time_limit)
}

/// What a run produced inside the simulation.
struct Outcome {
    verdict_linearizable: bool,
    failing_key: Option<String>,
    figures: RunFigures,
    history: Option<PathBuf>,
    liveness: Result<Liveness, String>,
    trace_hash: u64,
}

/// The whole run inside the simulation: workload, liveness phase, history check.
async fn execute(spec: RunSpec) -> Outcome {
    let window = Duration::from_millis(spec.liveness_ms);
    let (cfg, clerks, key_of): (_, _, Box<dyn Fn(usize) -> String>) = match spec.to_generic() {
        Some(g) => {
            let (cfg, clerks) = run_generic_clerks(&spec.scenario, &g).await;
            // Handles for uniformity with swarm clerks, which may be mid-op.
            let clerks = clerks.into_iter().map(|ck| tokio::spawn(async move { ck })).collect();
            let n = spec.clients;
            (cfg, clerks, Box::new(move |k| (k % n).to_string()))
        }
        None => {
            let (cfg, clerks) = swarm::run_swarm(&spec).await;
            let keys = match spec.workload {
                Workload::Swarm { keys, .. } => keys,
                Workload::Generic { .. } => 1,
            };
            (cfg, clerks, Box::new(move |k| swarm::key_name(k % keys)))
        }
    };
    let liveness = liveness_phase(&cfg, clerks, key_of, window).await;
    let (verdict, path) = cfg.verify();
    let outcome = Outcome {
        verdict_linearizable: verdict.linearizable,
        failing_key: verdict.failing_key,
        figures: cfg.figures(),
        history: path,
        liveness,
        trace_hash: cfg.trace_hash(),
    };
    cfg.shutdown().await;
    outcome
}

/// Runs `spec` in a fresh simulation on this thread (failures are caught
/// and reported, not raised).
pub fn run_spec(spec: &RunSpec, time_limit: Option<Duration>) -> RunReport {
    let reproduce = reproduce_command(spec);
    report::enter_quiet_run(reproduce.clone());
    let mut rt = madsim::runtime::Runtime::with_seed_and_config(spec.seed, madsim::Config::default());
    if let Some(limit) = time_limit {
        rt.set_time_limit(limit);
    }
    let owned = spec.clone();
    let outcome = catch_unwind(AssertUnwindSafe(|| rt.block_on(execute(owned))));
    let panic = report::take_panic();
    let mut r = RunReport { reproduce, ..run_spec_placeholder(spec) };
    match outcome {
        Ok(o) => {
            let f = &o.figures;
            r.ops = f.ops;
            r.ms_per_op = f.mean_ms_per_op;
            r.virtual_ms = f.virtual_ms;
            r.linearizable = o.verdict_linearizable;
            r.history = o.history.map(|p| p.display().to_string());
            r.trace_hash = o.trace_hash;
            r.faults = FaultCounts {
                requests_dropped: f.net.requests_dropped,
                replies_dropped: f.net.replies_dropped,
                duplicated: f.net.duplicated,
                delayed: f.net.delayed + f.net.long_delayed,
                partitions: f.partitions,
                crashes: f.crashes,
            };
            r.liveness_ms = o.liveness.as_ref().ok().and_then(|l| l.ms);
            // Safety first: a wrong answer matters more than a stuck or slow run.
            if !o.verdict_linearizable {
                r.failure = Some(format!("not linearizable (key {:?})", o.failing_key.unwrap_or_default()));
            } else if let Err(e) = o.liveness {
                r.failure = Some(e);
            } else if f.mean_ms_per_op > spec.bound_ms {
                r.failure = Some(format!("too slow: {:.1} ms/op > {} ms/op", f.mean_ms_per_op, spec.bound_ms));
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

/// Runs `spec` on a thread of its own (madsim keeps per-thread state);
/// with `check_determinism`, twice, and a different trace is a failure.
pub fn run_spec_isolated(spec: &RunSpec, time_limit: Option<Duration>, check_determinism: bool) -> RunReport {
    let once = || {
        std::thread::scope(|s| s.spawn(|| run_spec(spec, time_limit)).join()).unwrap_or_else(|_| {
            let mut r = run_spec_placeholder(spec);
            r.failure = Some("the run's thread panicked".to_string());
            r
        })
    };
    let mut r = once();
    if check_determinism {
        let again = once();
        if (again.trace_hash, &again.failure) != (r.trace_hash, &r.failure) {
            r.passed = false;
            r.failure = Some(format!(
                "nondeterminism: two runs of the same spec differ: trace hash {:016x} then {:016x}; failure {:?} then {:?}",
                r.trace_hash, again.trace_hash, r.failure, again.failure
            ));
        }
    }
    r
}

/// A report for `spec` before (or without) running it: nothing passed yet.
fn run_spec_placeholder(spec: &RunSpec) -> RunReport {
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
        mix: swarm::describe_mix(spec),
        bound_ms: spec.bound_ms,
        liveness_ms: None,
        liveness_window_ms: spec.liveness_ms,
        trace_hash: 0,
        reproduce: reproduce_command(spec),
        spec: spec.clone(),
    }
}

/// Runs every (scenario, seed) pair on `jobs` threads; `progress` is called
/// after each run. Results come back in the order of `runs`.
pub fn run_many(
    runs: &[(Scenario, u64)],
    jobs: usize,
    time_limit: Option<Duration>,
    progress: &(dyn Fn(&RunReport) + Sync),
) -> Vec<RunReport> {
    let specs: Vec<RunSpec> = runs.iter().map(|(sc, seed)| RunSpec::from_scenario(sc, *seed)).collect();
    run_specs(&specs, jobs, time_limit, false, progress)
}

/// Runs every spec on `jobs` threads (each run on a fresh thread); with
/// `check_determinism` each twice. Results come back in the order of `specs`.
pub fn run_specs(
    specs: &[RunSpec],
    jobs: usize,
    time_limit: Option<Duration>,
    check_determinism: bool,
    progress: &(dyn Fn(&RunReport) + Sync),
) -> Vec<RunReport> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<RunReport>>> = Mutex::new(vec![None; specs.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(spec) = specs.get(i) else { return };
                let r = run_spec_isolated(spec, time_limit, check_determinism);
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
                max_liveness_ms: rs.iter().filter_map(|r| r.liveness_ms).max().unwrap_or(0),
                faults,
            }
        })
        .collect()
}

/// The summary as an aligned text table, one column per fault kind.
pub fn render_table(rows: &[SummaryRow]) -> String {
    let mut out = format!(
        "{:<31} {:>5} {:>6} {:>6} {:>8} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>8} {:>6} {:>7}\n",
        "scenario", "seeds", "passed", "failed", "ops", "med ms/op", "max ms/op", "live ms", "req drop", "rep drop", "dup", "delayed", "parts", "crashes"
    );
    for r in rows {
        let f = &r.faults;
        out += &format!(
            "{:<31} {:>5} {:>6} {:>6} {:>8} {:>9.1} {:>9.1} {:>8} {:>8} {:>8} {:>7} {:>8} {:>6} {:>7}\n",
            r.scenario,
            r.seeds,
            r.passed,
            r.failed,
            r.ops,
            r.median_ms_per_op,
            r.max_ms_per_op,
            r.max_liveness_ms,
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
