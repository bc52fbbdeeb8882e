//! The fuzzer alone, as one test: a short default campaign plus a swarm
//! campaign (and 20 swarm seeds on raft-rs), plus the must-pass runs of
//! `regressions.json` (the fuzzer's corpus: mixes that once raised a false
//! alarm, each a rare mix a correct Raft passes and a wasteful or slow one
//! may not), through the executor, with every check a campaign makes (the
//! monitor's safety properties, convergence, linearizability, liveness,
//! ms/op and efficiency bounds, and every kind of rare situation reached at
//! least once) and none of the suite's own tests; then the
//! same Raft held to its performance baseline (`perf-baseline.json`: a few
//! catalogue scenarios over 20 seeds each, their ms/op and Raft messages and
//! bytes per entry within the baseline's tolerance; see
//! `kvraft::campaign::baseline`).
//! It is what the harness does for a user's Raft, which has none of this
//! crate's unit tests; `scripts/mutants.sh` uses it to score the fuzzer
//! alone.
//!
//! `FUZZ_GATE_SWARM=N` sets the swarm seeds (default 150; with fewer, the
//! coverage check is skipped). It stops at the
//! first batch of runs with a failure. `FUZZ_GATE_BLESS=1` measures the
//! baseline's scenarios anew and rewrites the file (after a change that is
//! meant to move them), keeping its seeds and tolerance.

use std::path::Path;
use std::time::Duration;

use kvraft::campaign::baseline::{self, Baseline};
use kvraft::campaign::regressions::{Expect, RegressionFile};
use kvraft::campaign::report::{self, RunReport};
use kvraft::campaign::swarm::SWARM;
use kvraft::campaign::{Campaign, RunOptions, Seeds};
use kvraft::sim::rafts::RaftKind;

const LIMIT: Option<Duration> = Some(Duration::from_secs(600));

/// A run still going after this much wall time fails the gate as hung (a
/// step that never returns): the gate's runs take under 5 s each, even on
/// a loaded machine, and a hang must fail the gate well before
/// cargo-mutants' own timeout (a minute) would, even when every run hangs:
/// at most two rounds of [`BATCH`] runs on two threads.
const WALL_LIMIT: Duration = Duration::from_secs(15);

/// Runs started together; the gate stops after the first batch with a
/// failure.
const BATCH: usize = 4;

/// A campaign of the gate's: both limits, two runs at once.
fn campaign() -> Campaign {
    Campaign::new(RunOptions { time_limit: LIMIT, wall_limit: Some(WALL_LIMIT), ..Default::default() }, 2)
}

/// Swarm seeds run on our Raft, unless `FUZZ_GATE_SWARM` says otherwise.
const DEFAULT_SWARM: u64 = 150;

/// Swarm seeds run on raft-rs.
const RAFT_RS_SWARM: u64 = 20;

#[test]
fn fuzz_gate() {
    let swarm_seeds: u64 = std::env::var("FUZZ_GATE_SWARM").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_SWARM);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sim-tests/regressions.json");
    let corpus = RegressionFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let catalog: Vec<String> = Campaign::default_scenarios().into_iter().filter(|n| n != SWARM).collect();
    let swarm = [SWARM.to_string()];
    let ours = RaftKind::OURS;
    let gate = campaign()
        .scenarios(&catalog, &Seeds::range(1, 2), ours, None)
        .and_then(|c| c.scenarios(&swarm, &Seeds::range(1, swarm_seeds), ours, None))
        // The crate's other Raft too: its storage is this crate's disk.
        .and_then(|c| c.scenarios(&swarm, &Seeds::range(1, RAFT_RS_SWARM), RaftKind::RAFT_RS, None))
        .unwrap_or_else(|e| panic!("{e}"))
        // The corpus: every run the regressions file expects to pass (the
        // entries that expect a failure run deliberately broken servers).
        .specs(corpus.entries.into_iter().filter(|e| e.expect == Expect::Pass).map(|e| e.spec))
        // Finding one failure is the gate's whole answer.
        .stop_at_first_failing_batch(BATCH);
    let outcome = gate.run(&|_| {});
    let (all, failed) = (&outcome.reports, outcome.failure_lines());
    println!("fuzz gate: {} of {} runs, {} failed", all.len(), outcome.planned, failed.len());
    assert!(failed.is_empty(), "the fuzzer found failures:\n{}", failed.join("\n"));
    // A campaign that never reached a rare situation proves nothing about
    // it (and this crate's Raft reports every kind it reaches; raft-rs,
    // which reports fewer, must not make up for it). Fewer swarm seeds than
    // the default may not reach them all.
    if swarm_seeds >= DEFAULT_SWARM {
        let ours: Vec<RunReport> = all.iter().filter(|r| r.spec.raft == RaftKind::OURS).cloned().collect();
        let never: Vec<String> = report::coverage(&ours).into_iter().filter(|r| r.runs == 0).map(|r| r.kind).collect();
        assert!(never.is_empty(), "the gate's campaign on our Raft never reached: {never:?}");
    }
    performance();
}

/// The baseline's scenarios over its seeds, against its figures.
fn performance() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sim-tests/perf-baseline.json");
    let mut base: Baseline = baseline::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let outcome = campaign().baseline(&base).unwrap_or_else(|e| panic!("{}: {e}", path.display())).run(&|_| {});
    let failed = outcome.failure_lines();
    assert!(failed.is_empty(), "the fuzzer found failures:\n{}", failed.join("\n"));
    let now = baseline::measure(&outcome.reports);
    for (name, f) in &now {
        println!("performance {}", baseline::render_row(name, f, &base.scenarios[name]));
    }
    if std::env::var_os("FUZZ_GATE_BLESS").is_some() {
        // New figures, each scenario keeping its own tolerance.
        base.scenarios = now
            .into_iter()
            .map(|(name, f)| {
                let tolerance = base.scenarios[&name].tolerance;
                (name, baseline::Figures { tolerance, ..f })
            })
            .collect();
        baseline::save(&base, &path).unwrap_or_else(|e| panic!("{e}"));
        println!("wrote {}", path.display());
        return;
    }
    let worse = baseline::regressions(&base, &now);
    assert!(
        worse.is_empty(),
        "slower than the baseline (tolerance {:.0}% unless a scenario says otherwise):\n{}",
        base.tolerance * 100.0,
        worse.join("\n")
    );
}
