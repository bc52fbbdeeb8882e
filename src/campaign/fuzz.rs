//! Campaigns, as a library: a [`Campaign`] plans runs (scenarios or swarm
//! over [`Seeds`], a Raft, a bug; a baseline's runs; specs as they are),
//! runs them over worker threads (each on a fresh thread, by the executor),
//! and returns an [`Outcome`]: the reports in planned order, the summary,
//! the failures by class, the first of each class shrunk, the figures
//! against a baseline. The CLI's `fuzz`, the fuzz gate and tests are its
//! users; they parse and print.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::baseline::{self, Baseline};
use super::exec::{run, run_all, RunOptions};
use super::guided::{self, Guide, GuideOptions};
use super::regressions::{Regression, RegressionFile};
use super::report::{self, ClassSummary, RunReport};
use super::shrink::{self, ShrinkOptions};
use super::spec::{self, RunSpec};
use super::{catalog, swarm, verify};
use crate::kv::Bug;
use crate::sim::failure::FailureClass;
use crate::sim::rafts::RaftKind;

/// Which seeds a campaign runs: `count` seeds from `start`, or of those
/// only shard `i` of `n` (seeds start+i, start+i+n, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seeds {
    pub start: u64,
    pub count: u64,
    /// (i, n): only shard i (0-based) of n.
    pub shard: Option<(u64, u64)>,
}

impl Seeds {
    /// `count` seeds from `start`.
    pub fn range(start: u64, count: u64) -> Seeds {
        Seeds { start, count, shard: None }
    }

    /// The seeds, in order; an error if there are none or they run past
    /// `u64::MAX`.
    pub fn list(&self) -> Result<Vec<u64>, String> {
        if self.count == 0 {
            return Err("0 seeds: a campaign needs at least 1".to_string());
        }
        if self.start.checked_add(self.count - 1).is_none() {
            return Err(format!("start {} with {} seeds: the last seed is past {}", self.start, self.count, u64::MAX));
        }
        let (i, n) = self.shard.unwrap_or((0, 1));
        if n == 0 || i >= n {
            return Err(format!("shard {i}/{n}: need 0 <= I < N"));
        }
        let seeds: Vec<u64> = (0..self.count).filter(|k| k % n == i).map(|k| self.start + k).collect();
        if seeds.is_empty() {
            return Err(format!("shard {i}/{n} of {} seeds selects none of them", self.count));
        }
        Ok(seeds)
    }
}

/// A campaign: the runs it plans (scenarios or swarm over seeds, on a
/// Raft, with or without a deliberate bug, plus any specs given as they
/// are), how each is run, and on how many threads. The CLI's `fuzz`, the
/// fuzz gate and tests all run campaigns through it.
#[derive(Clone)]
pub struct Campaign {
    specs: Vec<RunSpec>,
    opts: RunOptions,
    jobs: usize,
    /// Run in batches of this many and stop after the first batch with a
    /// failure (None: run everything).
    stop_batch: Option<usize>,
    /// Guided swarm seeds (and the guide), run after `specs`, each planned
    /// as the runs before it finish.
    guided: Option<(Guide, Vec<u64>)>,
}

impl Campaign {
    /// A campaign of no runs yet, each run as `opts` say, `jobs` at once.
    pub fn new(opts: RunOptions, jobs: usize) -> Campaign {
        Campaign { specs: Vec::new(), opts, jobs: jobs.max(1), stop_batch: None, guided: None }
    }

    /// The default campaign's scenarios: the catalogue's default ones and swarm.
    pub fn default_scenarios() -> Vec<String> {
        let mut names: Vec<String> = catalog::catalog().into_iter().filter(|s| s.default).map(|s| s.name.to_string()).collect();
        names.push(swarm::SWARM.to_string());
        names
    }

    /// Adds every scenario of `names` (see `kvraft list`; "swarm" draws a
    /// mix per seed) for every seed of `seeds`, seed by seed, on `raft`,
    /// with `bug` in every server if given.
    pub fn scenarios(mut self, names: &[String], seeds: &Seeds, raft: RaftKind, bug: Option<Bug>) -> Result<Campaign, String> {
        for seed in seeds.list()? {
            for name in names {
                self.specs.push(catalog::spec_for(name, seed, bug)?.with_raft(raft));
            }
        }
        Ok(self)
    }

    /// Adds guided swarm seeds (see [`super::guided`]): each seed's spec is
    /// planned from what the runs of the seeds `opts.lag` or more before it
    /// reached: a fresh swarm mix, or a mutant of a spec kept for reaching
    /// something rare. They run after any other planned runs; a campaign
    /// that stops at a failing batch plans no more seeds after a failure.
    pub fn guided(mut self, seeds: &Seeds, raft: RaftKind, bug: Option<Bug>, opts: GuideOptions) -> Result<Campaign, String> {
        if !(0.0..=1.0).contains(&opts.fresh) {
            return Err(format!("guided: a fresh share of {}: need 0 to 1", opts.fresh));
        }
        self.guided = Some((Guide::new(opts, raft, bug), seeds.list()?));
        Ok(self)
    }

    /// Adds runs as they are (a corpus, the entries of a regressions file).
    pub fn specs(mut self, specs: impl IntoIterator<Item = RunSpec>) -> Campaign {
        self.specs.extend(specs);
        self
    }

    /// Adds the runs of a performance baseline: its scenarios over its
    /// seeds, on its Raft.
    pub fn baseline(self, b: &Baseline) -> Result<Campaign, String> {
        let raft = RaftKind::parse(&b.raft).map_err(|e| format!("the baseline's Raft: {e}"))?;
        if let Some(bad) = b.scenarios.keys().find(|n| catalog::spec_for(n, 1, None).is_err()) {
            return Err(format!("no scenario named '{bad}' (kvraft list)"));
        }
        let names: Vec<String> = b.scenarios.keys().cloned().collect();
        self.scenarios(&names, &Seeds::range(1, b.seeds), raft, None)
    }

    /// Runs in batches of `batch` and stops after the first batch with a
    /// failure: for a gate, whose whole answer is whether it found one.
    pub fn stop_at_first_failing_batch(mut self, batch: usize) -> Campaign {
        self.stop_batch = Some(batch.max(1));
        self
    }

    /// The runs planned, in order (guided seeds are planned as they run).
    pub fn planned(&self) -> &[RunSpec] {
        &self.specs
    }

    /// How many runs the campaign will make if it does not stop early.
    pub fn planned_runs(&self) -> usize {
        self.specs.len() + self.guided.as_ref().map_or(0, |(_, seeds)| seeds.len())
    }

    /// Runs the campaign, calling `progress` with each report as it comes.
    pub fn run(&self, progress: &(dyn Fn(&RunReport) + Sync)) -> Outcome {
        let started = std::time::Instant::now();
        let batch = self.stop_batch.unwrap_or(self.specs.len().max(1));
        let mut reports = Vec::new();
        let stopped = |reports: &[RunReport]| self.stop_batch.is_some() && reports.iter().any(|r| !r.passed);
        for specs in self.specs.chunks(batch) {
            reports.extend(run_all(specs, self.jobs, &self.opts, progress));
            if stopped(&reports) {
                break;
            }
        }
        let mut guided = None;
        if let Some((guide, seeds)) = self.guided.as_ref().filter(|_| !stopped(&reports)) {
            let (ran, learned) = guided::run_guided(guide.clone(), seeds, self.jobs, &self.opts, self.stop_batch.is_some(), progress);
            reports.extend(ran);
            guided = Some(learned);
        }
        Outcome {
            reports,
            planned: self.planned_runs(),
            guided,
            wall_s: started.elapsed().as_secs_f64(),
            jobs: self.jobs,
            check_determinism: self.opts.check_determinism,
            time_limit: self.opts.time_limit,
        }
    }
}

/// What a campaign did: every run's report, in the planned order.
pub struct Outcome {
    pub reports: Vec<RunReport>,
    /// Runs planned (more than were run if the campaign stopped early).
    pub planned: usize,
    pub wall_s: f64,
    pub jobs: usize,
    pub check_determinism: bool,
    time_limit: Option<Duration>,
    /// What a guided campaign learned (its corpus at the end).
    pub guided: Option<Guide>,
}

/// Failed runs the summary lists one by one (the classes cover the rest).
pub const LISTED: usize = 20;

impl Outcome {
    /// For a test: Ok if every run passed; otherwise, for each failure
    /// class, how many runs failed that way, the first one's seed and
    /// failure, and the command that reproduces it.
    ///
    /// ```ignore
    /// #[test]
    /// fn swarm_passes_on_mine() {
    ///     let mine = kvraft::sim::rafts::register(MINE).unwrap();
    ///     // Reproduce commands name the binary made with `cli::main_with`.
    ///     kvraft::sim::context::set_cli_command("sim");
    ///     let outcome = Campaign::new(RunOptions::limit(None), 2)
    ///         .scenarios(&["swarm".to_string()], &Seeds::range(1, 200), mine, None)
    ///         .unwrap()
    ///         .run(&|_| {});
    ///     if let Err(e) = outcome.verdict() {
    ///         panic!("{e}");
    ///     }
    /// }
    /// ```
    pub fn verdict(&self) -> Result<(), String> {
        let classes = self.classes();
        if classes.is_empty() {
            return Ok(());
        }
        let mut out = format!("{} of {} runs failed:", self.failed().len(), self.reports.len());
        for c in classes {
            let f = c.first.failure.as_ref().map(|f| f.to_string()).unwrap_or_default();
            out += &format!(
                "\n- {} ({} runs); first: {} seed {}: {f}\n  reproduce: {}",
                c.class, c.count, c.first.scenario, c.first.seed, c.first.reproduce
            );
        }
        Err(out)
    }

    /// The runs that failed.
    pub fn failed(&self) -> Vec<&RunReport> {
        self.reports.iter().filter(|r| !r.passed).collect()
    }

    /// Whether every run passed.
    pub fn passed(&self) -> bool {
        self.reports.iter().all(|r| r.passed)
    }

    /// The failed runs grouped by failure class, in order of first appearance.
    pub fn classes(&self) -> Vec<ClassSummary<'_>> {
        report::failures_by_class(&self.reports)
    }

    /// Each failed run as one line: scenario, seed, failure.
    pub fn failure_lines(&self) -> Vec<String> {
        let show = |r: &RunReport| r.failure.as_ref().map(|f| f.to_string()).unwrap_or_default();
        self.failed().iter().map(|r| format!("{} seed {}: {}", r.scenario, r.seed, show(r))).collect()
    }

    /// The campaign's summary: the table by scenario, coverage, speed, and
    /// the first [`LISTED`] failed runs with their mix and reproduce command.
    pub fn summary(&self) -> String {
        let n = self.reports.len();
        let mut out = report::render_table(&report::summarize(&self.reports));
        out += "\n";
        out += &report::render_coverage(&report::coverage(&self.reports), n);
        out += "\n";
        let twice = if self.check_determinism { ", each run twice (--check-determinism)" } else { "" };
        let per_min = n as f64 * 60.0 / self.wall_s.max(1e-9);
        out += &format!("{n} runs in {:.1} s wall ({per_min:.0} seeds/min), {} jobs{twice}\n", self.wall_s, self.jobs);
        if let Some(g) = &self.guided {
            out += &format!("guided: {} runs mutated a kept spec; {} specs kept for something rare, {} in the corpus at the end\n", g.mutated, g.kept, g.corpus_len());
            let top: Vec<String> = g.kept_for().into_iter().take(8).map(|(f, n)| format!("{f} ({n})")).collect();
            if !top.is_empty() {
                out += &format!("  kept for: {}\n", top.join(", "));
            }
        }
        out += &format!(
            "liveness: after the final heal every clerk must complete a new op within {} ms of virtual time\n",
            spec::LIVENESS_MS
        );
        let failed = self.failed();
        for (r, line) in failed.iter().zip(self.failure_lines()).take(LISTED) {
            out += &format!("FAILED {line}\n  mix: {}\n  reproduce: {}\n", r.mix, r.reproduce);
        }
        if failed.len() > LISTED {
            out += &format!("... and {} more failed runs (--json prints every run)\n", failed.len() - LISTED);
        }
        out
    }

    /// Shrinks the first failing run of each class (see [`shrink_first`]),
    /// at most `budget` runs each: class name -> where its shrunk spec is,
    /// or why there is none.
    pub fn shrink_classes(&self, budget: usize) -> BTreeMap<String, String> {
        self.classes().iter().map(|c| (c.class.name(), shrink_first(c.first, budget, self.jobs, self.time_limit).to_string())).collect()
    }

    /// The campaign's figures against a performance baseline: a row per
    /// scenario, and the figures that got worse beyond the tolerance.
    pub fn against(&self, b: &Baseline) -> (Vec<String>, Vec<String>) {
        let now = baseline::measure(&self.reports);
        let rows = now.iter().filter_map(|(name, f)| b.scenarios.get(name).map(|was| baseline::render_row(name, f, was))).collect();
        (rows, baseline::regressions(b, &now))
    }

    /// Appends every failed run to the regressions file at `path`; how many.
    pub fn save_failures(&self, path: &Path) -> Result<usize, String> {
        let failed = self.failed();
        if failed.is_empty() {
            return Ok(0);
        }
        RegressionFile::append(path, failed.iter().map(|r| Regression::of_failure(r)).collect())
    }
}

/// What shrinking a class's first failure came to.
#[derive(Clone, Debug)]
pub enum Shrunk {
    /// The shrunk spec, written to `path`, after `runs` runs; what was removed.
    Written { path: PathBuf, runs: usize, removed: Vec<String> },
    /// Why nothing was written.
    Not(String),
}

impl std::fmt::Display for Shrunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shrunk::Written { path, runs, removed } => {
                let removed = if removed.is_empty() { "nothing removed".to_string() } else { removed.join(", ") };
                let p = path.display();
                write!(f, "{p} ({runs} runs; {removed}); replay: {} run --spec {p}", crate::sim::context::cli_command())
            }
            Shrunk::Not(why) => f.write_str(why),
        }
    }
}

/// Shrinks the failing run `first` (at most `budget` runs, `jobs` at once)
/// and writes the shrunk spec to `shrunk-<class>.json` among the failures'
/// files (see [`verify::history_dir`]).
pub fn shrink_first(first: &RunReport, budget: usize, jobs: usize, time_limit: Option<Duration>) -> Shrunk {
    let Some(class) = first.failure.as_ref().map(|f| f.class.clone()) else {
        return Shrunk::Not("not shrunk: the run passed".to_string());
    };
    if class == FailureClass::Nondeterminism {
        return Shrunk::Not("not shrunk (a nondeterministic run does not fail the same way twice)".to_string());
    }
    let opts = ShrinkOptions { budget: budget.max(1), time_limit, jobs: jobs.max(1), reseed: 2 };
    let o = match shrink::shrink(&first.spec, &opts, &|_| {}) {
        Ok(o) => o,
        Err(e) => return Shrunk::Not(format!("not shrunk: {e}")),
    };
    if o.class != class {
        return Shrunk::Not(format!("not shrunk: the run failed as {} when run again", o.class));
    }
    let Some(dir) = verify::history_dir(true) else { return Shrunk::Not("not shrunk: nowhere to write".to_string()) };
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("shrunk-{}.json", class.slug()));
    if let Err(e) = std::fs::write(&path, o.shrunk.to_json_pretty() + "\n") {
        return Shrunk::Not(format!("not written: {}: {e}", path.display()));
    }
    Shrunk::Written { path, runs: o.runs, removed: o.summary() }
}

/// Runs `spec` as `opts` say; if it fails without a trace, replays it with
/// its trace recorded (recording changes nothing, so it is the same run:
/// the trace hash says so) and puts the trace into the report. The second
/// value says how the replay differed, if it did (a nondeterministic run
/// differs from any replay: nothing is compared).
pub fn run_traced_on_failure(spec: &RunSpec, opts: &RunOptions) -> (RunReport, Option<String>) {
    let mut r = run(spec, opts);
    let mut differs = None;
    if !r.passed && r.trace.is_none() {
        let traced = run(spec, &RunOptions { trace: true, check_determinism: false, ..opts.clone() });
        let nondeterministic = r.failure.as_ref().is_some_and(|f| f.class == FailureClass::Nondeterminism);
        if !nondeterministic && (traced.trace_hash, &traced.failure) != (r.trace_hash, &r.failure) {
            let show = traced.failure.as_ref().map_or("none".to_string(), |f| f.to_string());
            differs = Some(format!(
                "the traced replay differs from the run (trace hash {:016x} vs {:016x}; failure {show})",
                traced.trace_hash, r.trace_hash
            ));
        }
        (r.trace, r.trace_events, r.trace_focus, r.trace_slice) = (traced.trace, traced.trace_events, traced.trace_focus, traced.trace_slice);
    }
    (r, differs)
}
