//! The fuzzer alone, as one test: a short default campaign plus a swarm
//! campaign, through the executor, with every check a campaign makes (the
//! monitor's safety properties, convergence, linearizability, liveness,
//! ms/op and efficiency bounds) and none of the suite's own tests. It is
//! what the harness does for a user's Raft, which has none of this crate's
//! unit tests; `scripts/mutants.sh` uses it to score the fuzzer alone.
//! `FUZZ_GATE_SWARM=N` sets the swarm seeds (default 150). It stops at the
//! first batch of runs with a failure.

use std::time::Duration;

use kvraft::campaign::catalog;
use kvraft::campaign::run::run_specs;
use kvraft::campaign::swarm::swarm_spec;

#[test]
fn fuzz_gate() {
    let swarm: u64 = std::env::var("FUZZ_GATE_SWARM").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    let mut specs = Vec::new();
    for seed in 1..=2 {
        specs.extend(catalog::catalog().into_iter().filter(|s| s.default).map(|s| s.spec(seed)));
    }
    specs.extend((1..=swarm).map(swarm_spec));
    // In batches, stopping at the first batch with a failure: finding one
    // is the gate's whole answer.
    let mut runs = 0;
    let mut failed: Vec<String> = Vec::new();
    for batch in specs.chunks(8) {
        let reports = run_specs(batch, 2, Some(Duration::from_secs(600)), false, &|_| {});
        runs += reports.len();
        failed.extend(
            reports
                .iter()
                .filter(|r| !r.passed)
                .map(|r| format!("{} seed {}: {}", r.scenario, r.seed, r.failure.as_deref().unwrap_or(""))),
        );
        if !failed.is_empty() {
            break;
        }
    }
    println!("fuzz gate: {runs} of {} runs, {} failed", specs.len(), failed.len());
    assert!(failed.is_empty(), "the fuzzer found failures:\n{}", failed.join("\n"));
}
