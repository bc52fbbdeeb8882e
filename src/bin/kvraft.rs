//! The kvraft command: fuzz campaigns over the simulated KV scenarios, single
//! reproducible runs, and the history checker.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kvraft::sim::campaign::{self, RunReport, Scenario};

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
    /// Run one scenario with one seed and print its report.
    Run {
        scenario: String,
        #[arg(long)]
        seed: u64,
        /// Print the report as one JSON line.
        #[arg(long)]
        json: bool,
        /// Virtual-time limit of the run, in seconds.
        #[arg(long)]
        time_limit: Option<u64>,
    },
    /// Run a campaign: scenarios x seeds, with a summary table.
    Fuzz(FuzzArgs),
    /// Check history files (JSON or Jepsen EDN) for linearizability.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(clap::Args, Default)]
struct FuzzArgs {
    /// Scenarios to run (default: all of the default campaign).
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// Seeds per scenario.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    start: u64,
    /// Run only shard I of N: seeds start+I, start+I+N, ... (0-based I).
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Virtual-time limit per run, in seconds.
    #[arg(long)]
    time_limit: Option<u64>,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Print each run's report as a JSON line instead of the progress bar.
    #[arg(long)]
    json: bool,
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

fn scenario(name: &str) -> Result<Scenario, String> {
    campaign::find(name).ok_or_else(|| {
        let names: Vec<&str> = campaign::catalog().iter().map(|s| s.name).collect();
        format!("unknown scenario '{name}'; known: {}", names.join(", "))
    })
}

fn print_report(r: &RunReport) {
    println!("scenario      {}", r.scenario);
    println!("seed          {}", r.seed);
    println!("result        {}", if r.passed { "passed".to_string() } else { format!("FAILED: {}", r.failure.as_deref().unwrap_or("")) });
    println!("ops           {}", r.ops);
    println!("ms/op         {:.2} (virtual)", r.ms_per_op);
    println!("virtual time  {} ms", r.virtual_ms);
    println!("linearizable  {}", r.linearizable);
    let f = &r.faults;
    println!(
        "faults        requests_dropped={} replies_dropped={} duplicated={} delayed={} partitions={} crashes={}",
        f.requests_dropped, f.replies_dropped, f.duplicated, f.delayed, f.partitions, f.crashes
    );
    if let Some(h) = &r.history {
        println!("history       {h}");
    }
    if !r.passed {
        println!("reproduce     {}", r.reproduce());
    }
}

fn fuzz(args: FuzzArgs) -> Result<bool, String> {
    let scenarios: Vec<Scenario> = if args.scenarios.is_empty() {
        campaign::catalog().into_iter().filter(|s| s.default).collect()
    } else {
        args.scenarios.iter().map(|n| scenario(n)).collect::<Result<_, _>>()?
    };
    let (shard_i, shard_n) = args.shard.unwrap_or((0, 1));
    let seeds: Vec<u64> = (0..args.seeds)
        .map(|k| args.start + k)
        .filter(|s| (s - args.start) % shard_n == shard_i)
        .collect();
    let runs: Vec<(Scenario, u64)> =
        seeds.iter().flat_map(|seed| scenarios.iter().map(move |sc| (sc.clone(), *seed))).collect();
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let time_limit = args.time_limit.map(Duration::from_secs);
    let started = Instant::now();
    let bar = if args.json { ProgressBar::hidden() } else { ProgressBar::new(runs.len() as u64) };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} runs {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let failures = std::sync::atomic::AtomicUsize::new(0);
    let reports = campaign::run_many(&runs, jobs, time_limit, &|r| {
        if !r.passed {
            failures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        if args.json {
            println!("{}", serde_json::to_string(r).unwrap_or_default());
        }
        bar.set_message(format!("{} failed", failures.load(std::sync::atomic::Ordering::SeqCst)));
        bar.inc(1);
    });
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let rows = campaign::summarize(&reports);
    print!("{}", campaign::render_table(&rows));
    println!(
        "{} runs in {:.1} s wall ({:.0} seeds/min), {} jobs",
        reports.len(),
        wall,
        reports.len() as f64 * 60.0 / wall.max(1e-9),
        jobs
    );
    let failed: Vec<&RunReport> = reports.iter().filter(|r| !r.passed).collect();
    for r in &failed {
        println!("FAILED {} seed {}: {}", r.scenario, r.seed, r.failure.as_deref().unwrap_or(""));
        println!("  reproduce: {}", r.reproduce());
    }
    println!("{} passed, {} failed", reports.len() - failed.len(), failed.len());
    Ok(failed.is_empty())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Fuzz(FuzzArgs { seeds: 3, start: 1, ..Default::default() })) {
        Command::List => {
            for s in campaign::catalog() {
                let tag = if s.default { "" } else { " [not in the default campaign]" };
                println!("{:<32} {} (bound {} ms/op){tag}", s.name, s.about, s.bound_ms);
            }
            Ok(true)
        }
        Command::Run { scenario: name, seed, json, time_limit } => scenario(&name).map(|sc| {
            let r = campaign::run_one(&sc, seed, time_limit.map(Duration::from_secs));
            if json {
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
            } else {
                print_report(&r);
            }
            r.passed
        }),
        Command::Fuzz(args) => fuzz(args),
        Command::Check { files } => {
            let code = kvraft::sim::check_cmd::run_check(&files);
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
