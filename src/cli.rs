//! The kvraft command line as a library entry point: fuzz campaigns over
//! the simulated KV scenarios and swarm mixes, single reproducible runs (by
//! name and seed, or from a spec file), shrinking a failing run, the
//! history checker, the benchmarks and the per-server trace printer.
//!
//! This crate's `kvraft` binary is `main_with(&[])`. A user's crate gets the
//! same commands for its own Raft with a binary of a few lines:
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     kvraft::cli::main_with(&[kvraft::sim::rafts::RaftInfo {
//!         name: "mine",
//!         about: "my Raft",
//!         make: my_crate::make,
//!         appends_at_election: false,
//!     }])
//! }
//! ```
//!
//! Each subcommand is one `Command` variant and one arm in [`run_with`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use crate::kv::Bug;
use crate::campaign::baseline::{self, Baseline};
use crate::campaign::fuzz::{self, Campaign, Outcome, Seeds};
use crate::campaign::guided::GuideOptions;
use crate::campaign::report;
use crate::campaign::shrink::{self, ShrinkOptions};
use crate::campaign::spec::{self, RunSpec};
use crate::campaign::{catalog, nemesis, swarm, RunOptions};
use crate::sim::trace;
use crate::sim::context;
use crate::sim::rafts::{self, RaftInfo, RaftKind};

#[derive(Parser)]
#[command(name = "kvraft", about = "Deterministic simulation harness for a Raft key/value service", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// List the scenarios, one line each.
    List,
    /// Run one scenario with one seed (or a spec file) and print its report.
    Run(RunArgs),
    /// Run a campaign: scenarios x seeds, with a summary table.
    Fuzz(FuzzArgs),
    /// Search for a smaller run that fails the same way; print it as a spec.
    Shrink(ShrinkArgs),
    /// Check history files (JSON or Jepsen EDN) for linearizability.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write an HTML timeline (`<file name>.html`) into DIR for every
        /// history that is not linearizable.
        #[arg(long, value_name = "DIR")]
        timeline: Option<PathBuf>,
    },
    /// Measure the speed figures (see BENCHMARKS.md).
    Bench(BenchArgs),
    /// Print a trace file (as `run --trace` writes) in its text form.
    Trace(TraceArgs),
}

#[derive(clap::Args)]
struct TraceArgs {
    /// A trace file (JSON lines).
    file: PathBuf,
    /// Only the events on this server (and messages to or from it); repeatable.
    #[arg(long = "server")]
    servers: Vec<u64>,
    /// Leave out the message lines.
    #[arg(long)]
    no_messages: bool,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Skip suite_wall_s (it runs the ported suite through cargo).
    #[arg(long)]
    skip_suite: bool,
    /// Skip peak_rss_mb (a 200-seed campaign).
    #[arg(long)]
    skip_memory: bool,
    /// Skip time to first failure of the deliberately broken servers.
    #[arg(long)]
    skip_ttff: bool,
    /// Measure only this Raft (ours, raft-rs, or one this binary registered); repeatable. Default: every registered Raft, side by side.
    #[arg(long = "raft", value_parser = RaftKind::parse)]
    rafts: Vec<RaftKind>,
    /// Wall-clock repetitions per checker figure (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
}

fn bench(args: BenchArgs) -> Result<bool, String> {
    use crate::bench;
    let opts = bench::BenchOptions {
        skip_suite: args.skip_suite,
        skip_memory: args.skip_memory,
        skip_ttff: args.skip_ttff,
        repeats: args.repeats,
        rafts: args.rafts,
    };
    let quiet = args.json;
    let report = bench::run(&opts, &|step| {
        if !quiet {
            eprintln!("bench: {step} ...");
        }
    });
    if args.json {
        println!("{}", serde_json::to_string(&report).map_err(|e| e.to_string())?);
    } else {
        print!("{}", bench::render(&report));
    }
    Ok(true)
}

/// Which run: a scenario and a seed, or a spec file.
#[derive(clap::Args)]
struct Target {
    /// A scenario of `kvraft list` (or "swarm").
    scenario: Option<String>,
    /// The seed (with a spec file: replaces the file's seed).
    #[arg(long)]
    seed: Option<u64>,
    /// A run spec file (JSON), as `--save-failures`, `shrink` or `run --print-spec` write.
    #[arg(long, conflicts_with = "scenario")]
    spec: Option<PathBuf>,
    /// A deliberately broken server: local-get or no-dedup.
    #[arg(long, value_parser = spec::parse_bug)]
    bug: Option<Bug>,
    /// The Raft the servers run: ours, raft-rs, or one this binary registered (with a spec file: replaces the file's).
    #[arg(long, value_parser = RaftKind::parse)]
    raft: Option<RaftKind>,
    /// Virtual-time limit of a run, in seconds.
    #[arg(long, default_value_t = DEFAULT_TIME_LIMIT_S)]
    time_limit: u64,
}

/// A hung run becomes a failure ("time limit exceeded") instead of a hung campaign.
const DEFAULT_TIME_LIMIT_S: u64 = 600;

/// ... and one whose virtual time stands still, a failure "hung" after this
/// much wall time (`fuzz --wall-limit`; `run` and `shrink` always use it).
const DEFAULT_WALL_LIMIT_S: u64 = crate::campaign::exec::WALL_LIMIT.as_secs();

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// Print the report as one JSON line.
    #[arg(long)]
    json: bool,
    /// Run twice and fail if the two traces differ.
    #[arg(long)]
    check_determinism: bool,
    /// Print the run's spec (JSON) instead of running it.
    #[arg(long)]
    print_spec: bool,
    /// Record the run's per-server trace and write it to FILE (JSON lines)
    /// and FILE.txt (text). A failing run writes its trace anyway, next to
    /// its history.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
}

#[derive(clap::Args)]
struct FuzzArgs {
    /// Scenarios to run (default: all of the default campaign).
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// Swarm testing: each seed draws its own fault mix (same as --scenario swarm).
    #[arg(long)]
    swarm: bool,
    /// Search that learns, in place of plain swarm: a spec whose run
    /// reached something rare (a coverage kind at a count few runs
    /// reached, or close to a bound) is kept and mutated by later seeds
    /// (half of them; the rest draw fresh swarm mixes). A failing mutant's
    /// spec is saved next to its history.
    #[arg(long)]
    guided: bool,
    /// Stop after the first batch of 10 runs with a failure (with
    /// --guided: plan no more seeds once a run failed).
    #[arg(long)]
    stop_at_failure: bool,
    /// Seeds per scenario (at least 1).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    start: u64,
    /// Run only shard I of N: seeds start+I, start+I+N, ... (0-based I).
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// A deliberately broken server in every run: local-get or no-dedup.
    #[arg(long, value_parser = spec::parse_bug)]
    bug: Option<Bug>,
    /// The Raft every run's servers run: ours (default), raft-rs, or one this binary registered.
    #[arg(long, value_parser = RaftKind::parse, default_value = "ours")]
    raft: RaftKind,
    /// Run each seed twice and fail it if the two traces differ.
    #[arg(long)]
    check_determinism: bool,
    /// Append every failing run's spec to this regressions file (JSON).
    #[arg(long)]
    save_failures: Option<PathBuf>,
    /// Virtual-time limit per run, in seconds.
    #[arg(long, default_value_t = DEFAULT_TIME_LIMIT_S)]
    time_limit: u64,
    /// Wall-time limit per run, in seconds: a run still going then fails
    /// as hung and the campaign goes on.
    #[arg(long, default_value_t = DEFAULT_WALL_LIMIT_S)]
    wall_limit: u64,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Print each run's report as a JSON line instead of the progress bar.
    #[arg(long)]
    json: bool,
    /// Record every run's per-server trace; failing runs write theirs next
    /// to their history.
    #[arg(long)]
    trace: bool,
    /// Shrink the first failing run of each failure class and write the
    /// shrunk spec to a file (the summary prints where).
    #[arg(long)]
    shrink: bool,
    /// Most runs each --shrink may spend.
    #[arg(long, default_value_t = 60)]
    shrink_budget: usize,
    /// Run the scenarios and seeds of this performance baseline (JSON, as
    /// --save-baseline writes) and fail if a scenario's ms/op, Raft
    /// messages or bytes per entry, or leader elections per run exceed the
    /// baseline's by more than its tolerance.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["scenarios", "swarm", "guided", "seeds", "start", "shard", "bug", "save_baseline"])]
    baseline: Option<PathBuf>,
    /// Write this campaign's ms/op, Raft messages and bytes per entry and
    /// leader elections per run, by scenario, as a performance baseline to
    /// hold later versions to.
    #[arg(long, value_name = "FILE")]
    save_baseline: Option<PathBuf>,
    /// The tolerance --save-baseline writes (a fraction: 0.05 = 5%).
    #[arg(long, default_value_t = 0.05, requires = "save_baseline")]
    tolerance: f64,
}

impl Default for FuzzArgs {
    fn default() -> Self {
        FuzzArgs {
            scenarios: Vec::new(),
            swarm: false,
            guided: false,
            stop_at_failure: false,
            seeds: 3,
            start: 1,
            shard: None,
            bug: None,
            raft: RaftKind::OURS,
            check_determinism: false,
            save_failures: None,
            time_limit: DEFAULT_TIME_LIMIT_S,
            wall_limit: DEFAULT_WALL_LIMIT_S,
            jobs: None,
            json: false,
            trace: false,
            shrink: false,
            shrink_budget: 60,
            baseline: None,
            save_baseline: None,
            tolerance: 0.05,
        }
    }
}

#[derive(clap::Args)]
struct ShrinkArgs {
    #[command(flatten)]
    target: Target,
    /// Most runs to spend on the search.
    #[arg(long, default_value_t = 150)]
    budget: usize,
    /// Write the shrunk spec here (default: stdout, with the summary on stderr).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Candidate runs at once (the result does not depend on it).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Also try each reduction under this many other seeds when the run's
    /// own seed stops failing (0 keeps the seed).
    #[arg(long, default_value_t = 2)]
    reseed: u64,
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("shard '{s}' is not of the form I/N"))?;
    let i: u64 = i.trim().parse().map_err(|_| format!("shard index '{i}' is not a number"))?;
    let n: u64 = n.trim().parse().map_err(|_| format!("shard count '{n}' is not a number"))?;
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 <= I < N"));
    }
    Ok((i, n))
}

impl Target {
    fn resolve(&self, command: &str) -> Result<RunSpec, String> {
        let spec = match (&self.scenario, &self.spec) {
            (Some(_), Some(_)) => return Err(format!("{command}: give a scenario or --spec FILE, not both")),
            (None, Some(path)) => {
                let mut s = RunSpec::load(path)?;
                if let Some(seed) = self.seed {
                    s.seed = seed;
                }
                s
            }
            (Some(name), None) => {
                let seed = self.seed.ok_or_else(|| format!("{command}: --seed N is required with scenario '{name}'"))?;
                catalog::spec_for(name, seed, None)?
            }
            (None, None) => {
                return Err(format!("{command}: name a scenario (see `kvraft list`) and --seed N, or give --spec FILE"))
            }
        };
        let spec = match self.bug {
            Some(b) => spec.with_bug(b),
            None => spec,
        };
        Ok(match self.raft {
            Some(r) => spec.with_raft(r),
            None => spec,
        })
    }

    fn limit(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.time_limit))
    }
}

fn run(args: RunArgs) -> Result<bool, String> {
    let spec = args.target.resolve("run")?;
    if args.print_spec {
        println!("{}", nemesis::materialize(&spec).to_json_pretty());
        return Ok(true);
    }
    let opts = RunOptions {
        time_limit: args.target.limit(),
        check_determinism: args.check_determinism,
        trace_out: args.trace.clone(),
        ..Default::default()
    };
    let (mut r, differs) = fuzz::run_traced_on_failure(&spec, &opts);
    if let Some(d) = differs {
        eprintln!("kvraft: {d}");
    }
    if let Some(path) = &args.target.spec {
        r.reproduce = format!("{} run --spec {}", context::cli_command(), path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string(&r).unwrap_or_default());
    } else {
        print!("{}", report::render_report(&r));
    }
    Ok(r.passed)
}

/// The campaign `args` describe: a baseline's runs, or scenarios over seeds.
fn plan(args: &FuzzArgs, base: Option<&Baseline>) -> Result<Campaign, String> {
    let opts = RunOptions {
        time_limit: Some(Duration::from_secs(args.time_limit)),
        check_determinism: args.check_determinism,
        trace: args.trace,
        wall_limit: Some(Duration::from_secs(args.wall_limit.max(1))),
        ..Default::default()
    };
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let campaign = Campaign::new(opts, jobs);
    if let Some(b) = base {
        return campaign.baseline(b);
    }
    let campaign = if args.stop_at_failure { campaign.stop_at_first_failing_batch(10) } else { campaign };
    let mut names: Vec<String> = args.scenarios.clone();
    if args.swarm && !args.guided && !names.iter().any(|n| n == swarm::SWARM) {
        names.push(swarm::SWARM.to_string());
    }
    if names.is_empty() && !args.guided {
        names = Campaign::default_scenarios();
    }
    let seeds = Seeds { start: args.start, count: args.seeds, shard: args.shard };
    let campaign = campaign.scenarios(&names, &seeds, args.raft, args.bug).map_err(|e| format!("fuzz: {e}"))?;
    if !args.guided {
        return Ok(campaign);
    }
    campaign.guided(&seeds, args.raft, args.bug, GuideOptions::default()).map_err(|e| format!("fuzz: {e}"))
}

fn fuzz(args: FuzzArgs) -> Result<bool, String> {
    let base = match &args.baseline {
        Some(path) => {
            let b = baseline::load(path)?;
            if b.raft != args.raft.name() {
                return Err(format!("baseline {}: measured on Raft '{}', this campaign runs '{}' (--raft)", path.display(), b.raft, args.raft.name()));
            }
            Some(b)
        }
        None => None,
    };
    if args.save_baseline.is_some() && (args.start != 1 || args.shard.is_some() || args.bug.is_some() || args.guided) {
        return Err("--save-baseline measures seeds 1..=--seeds of correct servers: it takes no --start, --shard, --bug or --guided".into());
    }
    if !(args.tolerance >= 0.0 && args.tolerance.is_finite()) {
        return Err(format!("--tolerance {}: needs a fraction >= 0", args.tolerance));
    }
    let campaign = plan(&args, base.as_ref()).map_err(|e| match &args.baseline {
        Some(p) => format!("baseline {}: {e}", p.display()),
        None => e,
    })?;
    let bar = if args.json { ProgressBar::hidden() } else { ProgressBar::new(campaign.planned_runs() as u64) };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} runs {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let failures = AtomicUsize::new(0);
    let outcome = campaign.run(&|r| {
        if !r.passed {
            failures.fetch_add(1, Ordering::SeqCst);
        }
        if args.json {
            println!("{}", serde_json::to_string(r).unwrap_or_default());
        }
        bar.set_message(format!("{} failed", failures.load(Ordering::SeqCst)));
        bar.inc(1);
    });
    bar.finish_and_clear();
    print!("{}", outcome.summary());
    let failed = outcome.failed().len();
    if failed > 0 {
        let shrunk = if args.shrink { outcome.shrink_classes(args.shrink_budget) } else { Default::default() };
        println!();
        print!("{}", report::render_classes(&outcome.classes(), &shrunk));
    }
    println!("{} passed, {failed} failed", outcome.reports.len() - failed);
    let slower = match &base {
        Some(b) => print_against(&outcome, b),
        None => Vec::new(),
    };
    if let Some(path) = &args.save_baseline {
        if failed > 0 {
            println!("did not write {}: a baseline of failing runs would hold later versions to them", path.display());
        } else {
            let scenarios = baseline::measure(&outcome.reports);
            let b = Baseline { raft: args.raft.name().to_string(), seeds: args.seeds, tolerance: args.tolerance, scenarios };
            baseline::save(&b, path)?;
            println!("wrote the performance baseline to {}", path.display());
        }
    }
    if let Some(path) = &args.save_failures {
        let n = outcome.save_failures(path)?;
        if n > 0 {
            println!("saved {n} failing spec(s) to {}", path.display());
        }
    }
    Ok(failed == 0 && slower.is_empty())
}

/// Prints the campaign against baseline `b`; returns what got worse.
fn print_against(outcome: &Outcome, b: &Baseline) -> Vec<String> {
    let (rows, slower) = outcome.against(b);
    println!();
    for row in rows {
        println!("{row}");
    }
    for s in &slower {
        println!("SLOWER {s}");
    }
    let own = if b.scenarios.values().any(|f| f.tolerance.is_some()) { ", or the scenario's own" } else { "" };
    let verdict = if slower.is_empty() { "within the baseline" } else { "slower than the baseline" };
    println!("performance: {verdict} (tolerance {:.0}%{own})", b.tolerance * 100.0);
    slower
}

fn trace_cmd(args: TraceArgs) -> Result<bool, String> {
    let lines = trace::load_trace(&args.file)?;
    let shown: Vec<trace::TraceLine> = lines
        .into_iter()
        .filter(|l| args.servers.is_empty() || l.server.is_none() || args.servers.iter().any(|s| l.concerns(*s)))
        .filter(|l| !(args.no_messages && l.is_message()))
        .collect();
    print!("{}", trace::render_text(&shown));
    Ok(true)
}

fn write_or_print(out: Option<&Path>, text: &str) -> Result<(), String> {
    match out {
        Some(p) => std::fs::write(p, text).map_err(|e| format!("{}: cannot write: {e}", p.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn shrink_cmd(args: ShrinkArgs) -> Result<bool, String> {
    let spec = args.target.resolve("shrink")?;
    let opts = ShrinkOptions {
        budget: args.budget.max(1),
        time_limit: args.target.limit(),
        jobs: args.jobs.max(1),
        reseed: args.reseed,
    };
    // With the spec on stdout, everything else goes to stderr.
    let say = |s: &str| {
        if args.out.is_some() {
            println!("{s}");
        } else {
            eprintln!("{s}");
        }
    };
    let o = match shrink::shrink(&spec, &opts, &|s| say(s)) {
        Ok(o) => o,
        Err(e) => {
            say(&format!("shrink: {e}"));
            return Ok(false);
        }
    };
    let json = o.shrunk.to_json_pretty() + "\n";
    // The file must replay on its own: parse it back and run it once more.
    let reread = RunSpec::from_json_str(&json, "the shrunk spec")?;
    let replay = crate::campaign::run(&reread, &RunOptions::limit(opts.time_limit));
    let same = replay.failure.as_ref().map(|f| &f.class) == Some(&o.class);
    write_or_print(args.out.as_deref(), &json)?;
    say(&format!("failure class: {}", o.class.name()));
    say(&format!("runs: {} of a budget of {} (plus one replay of the result)", o.runs, o.budget));
    say(&format!("from: {} ({} ops)", o.original_report.mix, o.original_report.ops));
    say(&format!("to:   {} ({} ops)", o.shrunk_report.mix, o.shrunk_report.ops));
    for line in o.summary() {
        say(&format!("  {line}"));
    }
    say(&format!("replay of the shrunk spec: {}", replay.failure.as_ref().map_or("passed".to_string(), |f| f.to_string())));
    if let Some(p) = &args.out {
        say(&format!("spec written to {}; replay with: {} run --spec {}", p.display(), context::cli_command(), p.display()));
    }
    if !same {
        return Err("the shrunk spec did not fail the same way on replay (nondeterminism?)".to_string());
    }
    Ok(true)
}

fn list() -> Result<bool, String> {
    for s in catalog::catalog() {
        let tag = if s.default { "" } else { " [not in the default campaign]" };
        let bound = s.bound_ms().map_or("bound per seed's schedule".to_string(), |b| format!("bound {b} ms/op"));
        println!("{:<32} {} ({bound}){tag}", s.name, s.about);
    }
    println!(
        "{:<32} random Get/Put/Append under a fault mix drawn from each seed (bound per mix)",
        swarm::SWARM
    );
    Ok(true)
}

/// Runs the command line (the process's arguments) with `rafts`
/// registered beside the shipped ones, so that `--raft` and run specs can
/// name them; reproduce commands name this binary. The exit code: 0 when
/// everything passed, 1 when a run failed, 2 for bad input.
pub fn main_with(rafts: &[RaftInfo]) -> ExitCode {
    context::set_cli_command(&std::env::args().next().unwrap_or_default());
    // Output piped into `head` and the like: end quietly when the reader
    // goes, as command-line tools do, rather than panic on the next print.
    #[cfg(unix)]
    // SAFETY: sets the process's SIGPIPE disposition back to the default,
    // before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    run_with(rafts, std::env::args_os())
}

/// The command line with these arguments (the first is the program's
/// name), `rafts` registered beside the shipped ones; what [`main_with`]
/// runs, callable in-process (a test of a user's crate, say). Bad
/// arguments print clap's message and give exit code 2; nothing here
/// exits the process.
pub fn run_with<I, T>(rafts: &[RaftInfo], args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    for info in rafts {
        if let Err(e) = rafts::register(*info) {
            eprintln!("kvraft: {e}");
            return ExitCode::from(2);
        }
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let result = match cli.command.unwrap_or(Command::Fuzz(FuzzArgs::default())) {
        Command::List => list(),
        Command::Run(args) => run(args),
        Command::Fuzz(args) => fuzz(args),
        Command::Shrink(args) => shrink_cmd(args),
        Command::Bench(args) => bench(args),
        Command::Trace(args) => trace_cmd(args),
        Command::Check { files, timeline } => {
            if let Some(dir) = &timeline {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    eprintln!("kvraft: check --timeline {}: {e}", dir.display());
                    return ExitCode::from(2);
                }
            }
            let code = crate::check::cmd::run_check_with(&files, timeline.as_deref());
            return ExitCode::from(code.clamp(0, 255) as u8);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("kvraft: {e}");
            ExitCode::from(2)
        }
    }
}
