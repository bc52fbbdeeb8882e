//! The executor: runs one spec in a fresh simulation (on a thread of its
//! own) and returns its report. Every spec takes the same path: build the
//! cluster, run the spec's workload (the nemesis alongside), the liveness
//! phase, the checks. Failures are caught and reported, not raised.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::catalog::reproduce_command;
use super::report::{describe_mix, FaultCounts, RunReport};
use super::spec::{RunSpec, Workload};
use super::verify::{self, CONVERGENCE_MS};
use super::workload::{self, key_name, liveness_phase, GenericSpec, Liveness};
use crate::sim::context;
use crate::sim::kv_cluster::{KvCluster, KvOptions, RunFigures};

/// What a run produced inside the simulation.
struct Outcome {
    verdict_linearizable: bool,
    failing_key: Option<String>,
    figures: RunFigures,
    history: Option<PathBuf>,
    liveness: Result<Liveness, String>,
    convergence_ms: u64,
    trace_hash: u64,
}

/// The whole run inside the simulation: workload, liveness phase,
/// convergence, history check. The cluster goes into `seen` as soon as it
/// exists, so a run that fails midway still reports what it reached.
async fn execute(spec: RunSpec, customize: Option<Customize>, seen: Arc<Mutex<Option<KvCluster>>>) -> Outcome {
    let window = Duration::from_millis(spec.liveness_ms);
    let mut opts = KvOptions::new(spec.servers, false).raft(spec.raft);
    opts.bug = spec.bug;
    opts.faults = Some(spec.faults.to_config());
    opts.disk = spec.disk;
    opts.clock_drift = spec.clock_drift;
    if let Some(c) = &customize {
        c(&mut opts);
    }
    let cfg = KvCluster::with_options(opts, &spec.scenario).await;
    *seen.lock().unwrap() = Some(cfg.clone());
    if spec.inject_nondeterminism {
        cfg.network().inject_unseeded_delay();
    }
    let (clerks, key_of): (_, Box<dyn Fn(usize) -> String>) = match &spec.workload {
        Workload::Generic { .. } => {
            let g = GenericSpec::from_run(&spec).expect("a generic workload");
            let clerks = workload::generic(&cfg, &g).await;
            // Handles for uniformity with swarm clerks, which may be mid-op.
            let clerks = clerks.into_iter().map(|ck| tokio::spawn(async move { ck })).collect();
            let n = spec.clients;
            (clerks, Box::new(move |k| (k % n).to_string()))
        }
        Workload::Swarm { keys, .. } => {
            let keys = *keys;
            cfg.begin(&format!("Test: swarm {}", describe_mix(&spec)));
            (workload::random_ops(&cfg, &spec).await, Box::new(move |k| key_name(k % keys)))
        }
    };
    let liveness = liveness_phase(&cfg, clerks, key_of, window).await;
    // A stuck cluster cannot converge: report the liveness failure instead.
    let convergence_ms = match liveness {
        Ok(_) => cfg.converge(Duration::from_millis(CONVERGENCE_MS)).await,
        Err(_) => 0,
    };
    let (verdict, path) = verify::linearizability(&cfg);
    let outcome = Outcome {
        verdict_linearizable: verdict.linearizable,
        failing_key: verdict.failing_key,
        figures: cfg.figures(),
        history: path,
        liveness,
        convergence_ms,
        trace_hash: cfg.trace_hash(),
    };
    cfg.shutdown().await;
    outcome
}

/// A change to the cluster a spec describes, e.g. a deliberately broken
/// Raft wrapped around `MakeRaft`: for tests that show a check can fail.
/// It is not part of the spec, so such a run replays only from its test.
pub type Customize = Arc<dyn Fn(&mut KvOptions) + Send + Sync>;

/// Runs `spec` in a fresh simulation on this thread (failures are caught
/// and reported, not raised).
pub fn run_spec(spec: &RunSpec, time_limit: Option<Duration>) -> RunReport {
    run_spec_with(spec, time_limit, None)
}

/// As [`run_spec`], on a cluster changed by `customize`.
pub fn run_spec_with(spec: &RunSpec, time_limit: Option<Duration>, customize: Option<Customize>) -> RunReport {
    let reproduce = reproduce_command(spec);
    context::enter_quiet_run(reproduce.clone());
    let mut rt = madsim::runtime::Runtime::with_seed_and_config(spec.seed, madsim::Config::default());
    if let Some(limit) = time_limit {
        rt.set_time_limit(limit);
    }
    let owned = spec.clone();
    let seen = Arc::new(Mutex::new(None));
    let outcome = catch_unwind(AssertUnwindSafe(|| rt.block_on(execute(owned, customize, seen.clone()))));
    let panic = context::take_panic();
    let mut r = RunReport::pending(spec, reproduce);
    if let Some(cfg) = seen.lock().unwrap().take() {
        // What a run that stopped midway reached (no clock needed).
        r.ops = cfg.history().ops.iter().filter(|o| !o.is_pending()).count();
        let m = cfg.monitor_report();
        r.coverage = m.coverage.clone();
        r.committed = m.committed;
        r.monitor = Some(m);
        (r.raft_msgs, r.raft_bytes) = cfg.network().stats().frames_except(crate::kv::KV_SERVICE);
    }
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
                writes_lost: f.disk.writes_lost,
                torn_writes: f.disk.torn_writes,
                corrupt_found: f.disk.corrupt_found,
                pauses: f.pauses,
                drift: f.drift,
            };
            r.liveness_ms = o.liveness.as_ref().ok().and_then(|l| l.ms);
            r.convergence_ms = Some(o.convergence_ms);
            // Safety first: a wrong answer matters more than a stuck or slow run.
            if !o.verdict_linearizable {
                r.failure = Some(format!("not linearizable (key {:?})", o.failing_key.unwrap_or_default()));
            } else if let Err(e) = o.liveness {
                r.failure = Some(e);
            } else if f.mean_ms_per_op > spec.bound_ms {
                r.failure = Some(format!("too slow: {:.1} ms/op > {} ms/op", f.mean_ms_per_op, spec.bound_ms));
            } else if let Some(e) = verify::efficiency(spec, r.raft_msgs, r.raft_bytes, r.committed, f.virtual_ms as f64 / 1000.0) {
                r.failure = Some(e);
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
    run_isolated_with(spec, time_limit, check_determinism, None)
}

/// As [`run_spec_isolated`], on a cluster changed by `customize`.
pub fn run_isolated_with(
    spec: &RunSpec,
    time_limit: Option<Duration>,
    check_determinism: bool,
    customize: Option<Customize>,
) -> RunReport {
    let once = || {
        std::thread::scope(|s| s.spawn(|| run_spec_with(spec, time_limit, customize.clone())).join()).unwrap_or_else(|_| {
            let mut r = RunReport::pending(spec, reproduce_command(spec));
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

