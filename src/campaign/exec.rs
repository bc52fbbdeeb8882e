//! The executor: [`run`] runs one spec in a fresh simulation (on a thread
//! of its own) and returns its report; [`run_all`] runs many over worker
//! threads. Every spec takes the same path, one way: prepared once (its
//! nemesis schedule drawn, its mix and replay command), simulated (build
//! the cluster, the workload with the nemesis alongside, the liveness
//! phase, convergence, the history's check), concluded into its report
//! (what it reached, and its [`Failure`], if any, as data). Failures are
//! caught and reported, not raised. With
//! tracing on, a failing run writes its per-server trace next to its
//! history, and its report carries the slice of the trace before the
//! failure.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::catalog::{self, replay_command};
use super::report::{describe_mix, RunReport};
use super::spec::{NemesisEvent, RunSpec};
use super::workload::{self, Liveness};
use super::{nemesis, verify};
use crate::check::history::History;
use crate::check::Verdict;
use crate::sim::context;
use crate::sim::failure::{Failure, FailureClass};
use crate::sim::kv_cluster::{KvCluster, KvOptions, RunFigures};
use crate::sim::trace::{self, TraceLine};

/// Events of the trace shown before a failure in a report.
pub const SLICE_EVENTS: usize = 20;

/// How to run a spec, beyond the spec itself.
#[derive(Clone)]
pub struct RunOptions {
    /// A hung run becomes a failure after this much virtual time.
    pub time_limit: Option<Duration>,
    /// A run still going after this much wall time fails as hung (see
    /// [`FailureClass::Hung`]): the guard for a step that never returns, which stops
    /// virtual time with it, so no virtual limit can. The run's thread is
    /// left behind (it cannot be stopped); the campaign goes on.
    pub wall_limit: Option<Duration>,
    /// Run twice; a different trace hash (or failure) is a failure.
    pub check_determinism: bool,
    /// Record the per-server trace; a failing run writes it next to its
    /// history (`<scenario>-<seed>.trace.jsonl`, and `.txt`).
    pub trace: bool,
    /// Also write the trace here (JSON lines, and the text form at
    /// `FILE.txt`), pass or fail. Implies `trace`.
    pub trace_out: Option<PathBuf>,
    /// A change to the cluster (see [`Customize`]).
    pub customize: Option<Customize>,
    /// Write no history, timeline or trace files (shrink candidates: they
    /// would overwrite those of the failure being shrunk).
    pub no_files: bool,
}

impl Default for RunOptions {
    /// No virtual-time limit, the wall-time limit [`WALL_LIMIT`], nothing else.
    fn default() -> Self {
        RunOptions {
            time_limit: None,
            check_determinism: false,
            wall_limit: Some(WALL_LIMIT),
            trace: false,
            trace_out: None,
            customize: None,
            no_files: false,
        }
    }
}

impl RunOptions {
    /// The defaults with a virtual-time limit.
    pub fn limit(time_limit: Option<Duration>) -> RunOptions {
        RunOptions { time_limit, ..Default::default() }
    }

    /// With `check_determinism` set to `on`.
    pub fn determinism(self, on: bool) -> RunOptions {
        RunOptions { check_determinism: on, ..self }
    }

    /// On a cluster changed by `customize`.
    pub fn customized(self, customize: Customize) -> RunOptions {
        RunOptions { customize: Some(customize), ..self }
    }

    /// On a cluster changed by `customize`, if any.
    pub fn customized_opt(self, customize: Option<Customize>) -> RunOptions {
        RunOptions { customize, ..self }
    }

    fn tracing(&self) -> bool {
        self.trace || self.trace_out.is_some()
    }
}

/// An op may stay pending at most the run's planned length (every fault
/// begins and ends within it) plus this, in virtual time: then the run fails
/// as a liveness failure. A Raft that never elects a leader fails in about a
/// minute of virtual time instead of running to the time limit.
pub const OP_DEADLINE_MARGIN: Duration = Duration::from_secs(60);

/// The wall-time limit of a campaign's runs: a run takes well under ten
/// seconds of wall time (the longest swarm runs, 40 virtual seconds, about
/// three), so one still going after two minutes is stuck, not slow.
pub const WALL_LIMIT: Duration = Duration::from_secs(120);

/// What a run produced inside the simulation.
struct Outcome {
    /// The monitor's violation that ended the run at the step that found
    /// it (then nothing below was checked, and the history is partial).
    violation: Option<Failure>,
    /// The history's check (None: a run ended by a violation).
    verdict: Option<Verdict>,
    figures: RunFigures,
    history: Option<PathBuf>,
    liveness: Result<Liveness, Failure>,
    convergence_ms: u64,
    trace_hash: u64,
}

/// A spec made ready to run, once, before its simulation starts: what
/// the run needs from the spec is derived here and handed down, and
/// nothing below derives it again.
struct Prepared {
    /// The spec with its schedule written out (the history keeps it).
    spec: RunSpec,
    /// The nemesis events that fire (drawn from the seed for a swarm run).
    schedule: Vec<NemesisEvent>,
    /// The run's mix in one line (see [`describe_mix`]).
    mix: String,
    /// The command that replays the run.
    reproduce: String,
}

impl Prepared {
    fn new(spec: &RunSpec) -> Prepared {
        let schedule = nemesis::within_run(spec);
        let mix = describe_mix(spec, schedule.len());
        Prepared { reproduce: replay_command(spec), spec: nemesis::written_out(spec, schedule.clone()), schedule, mix }
    }

    /// A report of the run before it runs.
    fn pending(&self) -> RunReport {
        RunReport::pending(&self.spec, self.reproduce.clone(), self.mix.clone())
    }

    /// The report of a run that made none itself (it hung, or its thread
    /// could not start or panicked): it failed as `failure` says.
    fn failed(&self, failure: Failure) -> RunReport {
        let mut r = self.pending();
        r.failure = Some(failure);
        r
    }
}

/// The whole run inside the simulation: workload, liveness phase,
/// convergence, history check, ended early by a violation the monitor
/// records. The cluster goes into `seen` as soon as it exists, so a run
/// that fails midway (a panic) still reports what it reached.
async fn execute(run: Arc<Prepared>, customize: Option<Customize>, trace: bool, seen: Arc<Mutex<Option<KvCluster>>>) -> Outcome {
    let spec = &run.spec;
    let mut opts = KvOptions::new(spec.servers, false).raft(spec.raft);
    opts.bug = spec.bug;
    opts.faults = Some(spec.faults.to_config());
    opts.disk = spec.disk;
    opts.clock_drift = spec.clock_drift;
    opts.trace = trace;
    opts.op_deadline = Some(Duration::from_millis(spec.run_ms()) + OP_DEADLINE_MARGIN);
    if let Some(c) = &customize {
        c(&mut opts);
    }
    let cluster = KvCluster::with_options(opts, &spec.scenario).await;
    *seen.lock().unwrap() = Some(cluster.clone());
    tokio::select! {
        o = run_and_check(&run, &cluster) => o,
        // The run ends at the violation, with the figures it reached.
        () = cluster.stopped() => Outcome {
            violation: cluster.violation(),
            verdict: None,
            figures: cluster.figures(),
            history: None,
            liveness: Err(Failure::liveness("the run ended at a violation")),
            convergence_ms: 0,
            trace_hash: cluster.trace_hash(),
        },
    }
}

/// The workload (the nemesis alongside), the liveness phase, convergence
/// and the history's check.
async fn run_and_check(run: &Prepared, cluster: &KvCluster) -> Outcome {
    let spec = &run.spec;
    let cluster = cluster.clone();
    // The history says what produced it: the spec, its schedule written out.
    if let Ok(v) = serde_json::to_value(spec) {
        cluster.set_spec(v);
    }
    if spec.inject_nondeterminism {
        cluster.network().inject_unseeded_delay();
    }
    let ran = workload::run(&cluster, spec, run.schedule.clone(), &run.mix).await;
    let (verdict, path) = verify::linearizability(&cluster);
    let outcome = Outcome {
        violation: None,
        verdict: Some(verdict),
        figures: cluster.figures(),
        history: path,
        liveness: ran.liveness,
        convergence_ms: ran.convergence_ms,
        trace_hash: cluster.trace_hash(),
    };
    cluster.shutdown().await;
    outcome
}

/// A change to the cluster a spec describes, e.g. a deliberately broken
/// Raft wrapped around `MakeRaft`: for tests that show a check can fail.
/// It is not part of the spec, so such a run replays only from its test.
pub type Customize = Arc<dyn Fn(&mut KvOptions) + Send + Sync>;

/// Simulates the prepared `run` once, on this thread, as `opts` say
/// (`check_determinism` and `wall_limit` are for [`run`]).
fn run_here(run: &Arc<Prepared>, opts: &RunOptions) -> RunReport {
    context::enter_quiet_run(run.reproduce.clone());
    context::set_no_files(opts.no_files);
    let mut rt = madsim::runtime::Runtime::with_seed_and_config(run.spec.seed, madsim::Config::default());
    if let Some(limit) = opts.time_limit {
        rt.set_time_limit(limit);
    }
    let seen = Arc::new(Mutex::new(None));
    let (customize, tracing) = (opts.customize.clone(), opts.tracing());
    let outcome = catch_unwind(AssertUnwindSafe(|| rt.block_on(execute(run.clone(), customize, tracing, seen.clone()))));
    let panic = context::take_panic();
    let built = seen.lock().unwrap().take();
    let (mut r, verdict) = conclude(run, outcome.ok(), panic, built.as_ref());
    if let (true, Some(cluster)) = (tracing, &built) {
        r.trace_events = cluster.run_log().trace_len();
        // Lines (names, text) are made only for a trace that is written.
        if !r.passed || opts.trace_out.is_some() {
            if let Some(lines) = cluster.trace_lines() {
                write_trace(&mut r, opts, &cluster.history(), verdict.as_ref(), &lines);
            }
        }
        cluster.run_log().release_trace();
    }
    r
}

/// The report of a run: what it reached (its figures up to its end or its
/// failure) and how it failed, if it did: at a violation or a panic that
/// ended it (`outcome` None: a panic), or by the checks of a run that ran
/// to its end. Also the history's verdict, if it was checked.
fn conclude(
    run: &Prepared,
    outcome: Option<Outcome>,
    panic: Option<Failure>,
    built: Option<&KvCluster>,
) -> (RunReport, Option<Verdict>) {
    let mut r = run.pending();
    if let Some(cluster) = built {
        r.observed(cluster);
    }
    // Its figures up to its end, or up to the panic that ended it (the
    // simulation is gone: its clock stopped at the panic).
    let figures = match (&outcome, built) {
        (Some(o), _) => Some((o.figures.clone(), o.trace_hash)),
        (None, Some(c)) => Some((c.figures_until(context::take_panic_at().unwrap_or(std::time::Instant::now())), c.trace_hash())),
        (None, None) => None,
    };
    if let Some((f, trace_hash)) = &figures {
        r.reached(f, *trace_hash);
        r.raft_bound = verify::efficiency_bound(&run.spec, r.committed, f.virtual_ms as f64 / 1000.0);
    }
    let Some(o) = outcome else {
        // A violation the monitor recorded comes first: a panic after it (a
        // step that went on) is its fallout.
        r.failure = Some(built.and_then(|c| c.violation()).or(panic).unwrap_or_else(|| Failure::panic("panicked")));
        return (r, None);
    };
    let f = &o.figures;
    r.history = o.history.map(|p| p.display().to_string());
    if let Some(v) = o.violation {
        // Ended at the step that broke a property: nothing else was checked.
        r.failure = Some(v);
        return (r, None);
    }
    let v = o.verdict.expect("a run that ran to its end checked its history");
    r.linearizable = v.linearizable;
    r.liveness_ms = o.liveness.as_ref().ok().and_then(|l| l.ms);
    r.convergence_ms = Some(o.convergence_ms);
    r.failure = verify::judge(&run.spec, &r, f, &v, o.liveness.err());
    r.passed = r.failure.is_none();
    (r, Some(v))
}

/// Writes a traced run's trace where `opts` and the outcome say, and puts
/// the slice before a failure into the report.
fn write_trace(r: &mut RunReport, opts: &RunOptions, history: &History, verdict: Option<&Verdict>, lines: &[TraceLine]) {
    r.trace_events = lines.len();
    let mut targets: Vec<PathBuf> = Vec::new();
    if !r.passed {
        if let Some(dir) = verify::history_dir(true).filter(|_| !opts.no_files) {
            let _ = std::fs::create_dir_all(&dir);
            targets.push(dir.join(format!("{}-{}.trace.jsonl", r.scenario.replace("::", "."), r.seed)));
        }
        let (servers, until) = failure_focus(r, history, verdict, lines);
        r.trace_slice = trace::slice(lines, &servers, until, SLICE_EVENTS);
        r.trace_focus = servers;
    }
    // The file asked for last, so the report names it.
    targets.extend(opts.trace_out.iter().cloned());
    for path in targets {
        match trace::write_trace(lines, &path) {
            Ok(()) => r.trace = Some(path.display().to_string()),
            Err(e) => eprintln!("could not write the trace {}: {e}", path.display()),
        }
    }
}

/// The servers a failure involves (empty: every server) and the op time
/// it happened at. A broken property names its servers and stops the run
/// at the step where it broke (the end of the trace); a history that is
/// not linearizable is stuck at an op: its server and those that answered
/// the key's ops just before it; anything else: the whole cluster at the
/// end of the run.
fn failure_focus(r: &RunReport, history: &History, verdict: Option<&Verdict>, lines: &[TraceLine]) -> (Vec<u64>, u64) {
    let end = lines.last().map_or(0, |l| l.at_ns);
    let Some(failure) = &r.failure else { return (Vec::new(), end) };
    match failure.class {
        FailureClass::Safety(_) => (failure.servers.clone(), end),
        FailureClass::NotLinearizable => {
            let Some(d) = verdict.and_then(|v| v.detail.as_ref()) else { return (Vec::new(), end) };
            let Some(stuck) = d.stuck_op.and_then(|i| history.ops.get(i)) else { return (Vec::new(), end) };
            let until = stuck.return_ns.unwrap_or(stuck.call_ns);
            let mut before: Vec<&crate::check::Op> =
                d.ops.iter().filter_map(|&i| history.ops.get(i)).filter(|o| o.return_ns.is_some_and(|t| t < until)).collect();
            before.sort_by_key(|o| o.return_ns);
            let mut servers: Vec<u64> =
                stuck.server.into_iter().chain(before.iter().rev().take(3).filter_map(|o| o.server)).collect();
            servers.sort_unstable();
            servers.dedup();
            (servers, until)
        }
        _ => (Vec::new(), end),
    }
}

/// Runs `spec` in a fresh simulation, on a thread of its own (madsim keeps
/// per-thread state), as `opts` say, and reports it: failures are caught
/// and reported, not raised. The one way to run a spec.
pub fn run(spec: &RunSpec, opts: &RunOptions) -> RunReport {
    let run = Arc::new(Prepared::new(spec));
    let panicked = || run.failed(Failure::panic("the run's thread panicked"));
    let once = || match opts.wall_limit {
        None => std::thread::scope(|s| s.spawn(|| run_here(&run, opts)).join()).unwrap_or_else(|_| panicked()),
        Some(limit) => run_watched(&run, opts, limit),
    };
    let mut r = once();
    if opts.check_determinism {
        let again = once();
        if (again.trace_hash, &again.failure) != (r.trace_hash, &r.failure) {
            r.passed = false;
            let show = |f: &Option<Failure>| f.as_ref().map_or("none".to_string(), |f| f.to_string());
            r.failure = Some(Failure::nondeterminism(format!(
                "two runs of the same spec differ: trace hash {:016x} then {:016x}; failure {} then {}",
                r.trace_hash,
                again.trace_hash,
                show(&r.failure),
                show(&again.failure)
            )));
        }
    }
    if !r.passed && !opts.no_files {
        save_spec(&run.spec, &mut r);
    }
    r
}

/// A failed run whose spec no scenario name and seed gives (a guided
/// mutant, an edited spec): its spec goes next to its history, and its
/// reproduce command runs that file.
fn save_spec(spec: &RunSpec, r: &mut RunReport) {
    if catalog::replay_by_name(spec).is_some() {
        return;
    }
    let Some(dir) = verify::history_dir(true) else { return };
    let path = dir.join(format!("{}-{}.spec.json", spec.scenario.replace("::", "."), spec.seed));
    let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, spec.to_json_pretty() + "\n"));
    match written {
        Ok(()) => r.reproduce = format!("{} run --spec {}", crate::sim::context::cli_command(), path.display()),
        Err(e) => eprintln!("could not write the failing run's spec {}: {e}", path.display()),
    }
}

/// Runs every spec on `jobs` threads, each as [`run`] does (on a fresh
/// thread, failing as hung after `opts.wall_limit` of wall time; with
/// `opts.check_determinism`, twice), calling `progress` with each report as
/// it comes. Results come back in the order of `specs`.
pub fn run_all(specs: &[RunSpec], jobs: usize, opts: &RunOptions, progress: &(dyn Fn(&RunReport) + Sync)) -> Vec<RunReport> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<RunReport>>> = Mutex::new(vec![None; specs.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(spec) = specs.get(i) else { return };
                let r = run(spec, opts);
                progress(&r);
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    results.into_inner().unwrap().into_iter().map(|r| r.expect("every run reports")).collect()
}


/// Runs `run` on a thread of its own and waits at most `limit` of wall
/// time for it: a run still going then is reported as hung, and its
/// thread, which nothing can stop, is left to spin.
fn run_watched(run: &Arc<Prepared>, opts: &RunOptions, limit: Duration) -> RunReport {
    let (tx, rx) = std::sync::mpsc::channel();
    let (owned, owned_opts) = (run.clone(), opts.clone());
    let name = format!("run {} {}", run.spec.scenario, run.spec.seed);
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let _ = tx.send(run_here(&owned, &owned_opts));
    });
    if let Err(e) = spawned {
        return run.failed(Failure::panic(format!("could not start the run's thread: {e}")));
    }
    match rx.recv_timeout(limit) {
        Ok(r) => r,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => run.failed(Failure::panic("the run's thread panicked")),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => run.failed(Failure::hung(format!(
            "the run did not finish in {} s of wall time (a run takes seconds): a step that never returns stops \
             virtual time with it; the run's thread was left running",
            limit.as_secs()
        ))),
    }
}
