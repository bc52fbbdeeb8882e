//! Campaigns: many run specs over worker threads, each run on a fresh
//! thread by the executor, results in the order of the specs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::exec::{run_isolated_opts, RunOptions};
use super::report::RunReport;
use super::spec::RunSpec;

/// Runs every spec on `jobs` threads (each run on a fresh thread, failing
/// as hung after [`super::exec::WALL_LIMIT`] of wall time); with `check_determinism`
/// each twice. Results come back in the order of `specs`.
pub fn run_specs(
    specs: &[RunSpec],
    jobs: usize,
    time_limit: Option<Duration>,
    check_determinism: bool,
    progress: &(dyn Fn(&RunReport) + Sync),
) -> Vec<RunReport> {
    run_specs_opts(specs, jobs, &RunOptions { time_limit, check_determinism, ..Default::default() }, progress)
}

/// As [`run_specs`], every run as `opts` say.
pub fn run_specs_opts(specs: &[RunSpec], jobs: usize, opts: &RunOptions, progress: &(dyn Fn(&RunReport) + Sync)) -> Vec<RunReport> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<RunReport>>> = Mutex::new(vec![None; specs.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(spec) = specs.get(i) else { return };
                let r = run_isolated_opts(spec, opts);
                progress(&r);
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    results.into_inner().unwrap().into_iter().map(|r| r.expect("every run reports")).collect()
}

