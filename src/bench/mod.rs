//! Benchmarks (`kvraft bench`): the project's speed figures, each from a benchmark run.
//! Virtual-time figures are exact for their seed; wall-clock figures are
//! medians over repeated runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde::Serialize;

use crate::campaign::catalog;
use crate::campaign::exec::{self, RunOptions};
use crate::campaign::spec::bug_to_str;
use crate::campaign::swarm::swarm_spec;
use crate::kv::Bug;
use crate::campaign::exec::run_all;
use crate::campaign::workload::{run_generic, GenericSpec};
use crate::check::history::{gen, History, OpKind};
use crate::check::check_history;
use crate::sim::context;
use crate::sim::addr::{clerk_addr, server_addr};
use crate::sim::kv_cluster::KvCluster;
use crate::sim::network::SimNetwork;
use crate::net::{FaultHook, Transport};
use crate::kv::KV_SERVICE;
use crate::sim::kv_cluster::KvOptions;
use crate::sim::fleet::DiskFaults;
use crate::sim::rafts::RaftKind;

/// The seed of every simulated benchmark.
pub const BENCH_SEED: u64 = 1;

#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    pub clerks: usize,
    pub ops_per_s: f64,
    pub raft_msgs_per_op: f64,
    pub mean_ms_per_op: f64,
    /// ops_per_s / (clerks x ops_per_s at 1 clerk).
    pub scaling_efficiency: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct UnderFaults {
    pub workload: String,
    pub ms_per_op: f64,
    pub ms_per_op_with_duplication: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckerFigure {
    pub name: String,
    pub ops: usize,
    pub wall_ms: f64,
    pub linearizable: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct CampaignMemory {
    pub scenario: String,
    pub rss_mb_after_50: f64,
    pub rss_mb_after_200: f64,
    pub grows: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub null_rtt_ms: f64,
    /// The floor of the simulator itself: messages per wall second of two
    /// madsim nodes bouncing an empty datagram back and forth on one
    /// thread, with none of this crate's transport, faults or checks.
    pub madsim_floor_msgs_per_s: f64,
    /// The Raft-dependent figures, for each Raft the harness knows.
    pub rafts: Vec<RaftFigures>,
    pub suite_wall_s: Option<f64>,
    pub sim_speedup: f64,
    pub checker: Vec<CheckerFigure>,
    /// Peak memory the checker itself added while checking the 1M-op
    /// history (already parsed), in MB; None where the kernel cannot reset
    /// the peak counter.
    pub checker_1m_peak_mb: Option<f64>,
    pub checker_peak_rss_mb: f64,
    pub peak_rss_mb: Option<CampaignMemory>,
    /// For each deliberately broken server: how soon a swarm campaign fails.
    pub time_to_first_failure: Vec<FirstFailure>,
}

/// The figures that depend on the Raft, for one Raft.
#[derive(Clone, Debug, Serialize)]
pub struct RaftFigures {
    pub raft: String,
    pub speed_ms_per_op: f64,
    pub floor_ratio: f64,
    pub throughput: Vec<Throughput>,
    pub under_faults: UnderFaults,
    /// Swarm seeds run per wall minute (200 seeds, 2 jobs).
    pub swarm_seeds_per_min: f64,
    /// The engine figure of those 200 seeds: messages sent (Raft and KV,
    /// each counted once whatever the network did with it) per second of
    /// one thread's wall time, to set against the simulator's own floor
    /// ([`BenchReport::madsim_floor_msgs_per_s`]).
    pub swarm_msgs_per_thread_s: f64,
    /// Virtual seconds simulated per second of one thread's wall time, in
    /// those 200 seeds.
    pub swarm_virtual_s_per_thread_s: f64,
    /// What the disk model costs: the figures above are taken with the
    /// default disk (1 ms syncs); these with an instant disk.
    pub instant_disk: DiskCost,
}

/// The speed figures with an instant disk (every write durable at once), to
/// set against the same figures with 1 ms syncs.
#[derive(Clone, Debug, Serialize)]
pub struct DiskCost {
    pub speed_ms_per_op: f64,
    pub floor_ratio: f64,
    pub throughput: Vec<Throughput>,
}

/// How soon a swarm campaign finds a deliberately broken server: from each
/// of several start seeds, the seeds run (one at a time) until the first
/// that fails, and the wall seconds that took.
#[derive(Clone, Debug, Serialize)]
pub struct FirstFailure {
    pub bug: String,
    /// Per start seed: (start, seeds run including the failing one, wall s,
    /// the failure class); None if no seed of the window failed.
    pub runs: Vec<(u64, Option<u64>, f64, Option<String>)>,
    pub median_seeds: Option<f64>,
    pub median_wall_s: f64,
}

/// Which figures to take (the slow ones can be skipped).
#[derive(Clone, Debug, Default)]
pub struct BenchOptions {
    pub skip_suite: bool,
    pub skip_memory: bool,
    /// Skip time to first failure (it runs swarm seeds until failures).
    pub skip_ttff: bool,
    /// Wall-clock repetitions per checker figure (median taken).
    pub repeats: usize,
    /// The Rafts to measure (all the harness knows when empty).
    pub rafts: Vec<RaftKind>,
}

/// The disk of every benchmark but the instant-disk ones: the default disk
/// model (1 ms syncs).
fn bench_disk() -> DiskFaults {
    DiskFaults::default()
}

/// A disk whose writes are durable at once.
fn instant_disk() -> DiskFaults {
    DiskFaults { sync_us: (0, 0), ..DiskFaults::default() }
}

/// Runs `f` in a fresh simulation with `seed` on a thread of its own.
pub fn simulate<T: Send + 'static, F: std::future::Future<Output = T> + 'static>(
    seed: u64,
    f: impl FnOnce() -> F + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        context::enter_quiet_run(format!("kvraft bench (seed {seed})"));
        let rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
        rt.block_on(f())
    })
    .join()
    .unwrap_or_else(|_| panic!("benchmark simulation failed: {}", context::take_panic().map(|f| f.to_string()).unwrap_or_default()))
}

const ECHO_SERVICE: u16 = 99;

/// Mean virtual round trip of an empty RPC, clerk node to server node.
pub fn null_rtt_ms() -> f64 {
    simulate(BENCH_SEED, || async {
        let net: Arc<dyn FaultHook> = Arc::new(SimNetwork::new());
        let handle = madsim::runtime::Handle::current();
        let (srv, cli) = (server_addr(0), clerk_addr(0));
        let n2 = net.clone();
        let server = handle.create_node().name("echo").ip(srv.ip()).build();
        // The echo server runs (and keeps its transport) until the simulation ends.
        let _server_task = server.spawn(async move {
            let t = Transport::bind(srv, n2).await.expect("bind echo server");
            t.register(ECHO_SERVICE, Arc::new(|_from: SocketAddr, body: Vec<u8>| async move { Some(body) }.boxed()));
            futures::future::pending::<()>().await;
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let client = handle.create_node().name("client").ip(cli.ip()).build();
        client
            .spawn(async move {
                let t = Transport::bind(cli, net).await.expect("bind client");
                let n = 1000;
                let start = Instant::now();
                for _ in 0..n {
                    t.call_raw(srv, ECHO_SERVICE, Vec::new(), Duration::from_secs(1)).await.expect("echo reply");
                }
                start.elapsed().as_secs_f64() * 1000.0 / n as f64
            })
            .await
            .expect("client node")
    })
}

/// The simulator's floor: two nodes on raw madsim endpoints bounce an
/// empty datagram `n` times; messages per wall second (the simulation timed
/// from outside, where the clock is the real one; its set-up is two nodes
/// and 10 ms of virtual time).
pub fn madsim_floor_msgs_per_s(n: u64) -> f64 {
    let wall = Instant::now();
    simulate(BENCH_SEED, move || async move {
        let handle = madsim::runtime::Handle::current();
        let (a, b) = (server_addr(0), server_addr(1));
        let echo = handle.create_node().name("echo").ip(b.ip()).build();
        let _echo_task = echo.spawn(async move {
            let ep = madsim::net::Endpoint::bind(b).await.expect("bind echo");
            while let Ok((msg, from)) = ep.recv_from_raw(0).await {
                if ep.send_to_raw(from, 0, msg).await.is_err() {
                    return;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let client = handle.create_node().name("client").ip(a.ip()).build();
        client
            .spawn(async move {
                let ep = madsim::net::Endpoint::bind(a).await.expect("bind client");
                for _ in 0..n {
                    ep.send_to_raw(b, 0, Box::new(Vec::<u8>::new())).await.expect("send");
                    ep.recv_from_raw(0).await.expect("echo");
                }
            })
            .await
            .expect("client node")
    });
    2.0 * n as f64 / wall.elapsed().as_secs_f64()
}

/// speed_4a's workload: 3 servers, reliable, one clerk, 1000 sequential appends.
pub fn speed_ms_per_op(raft: RaftKind, disk: DiskFaults) -> f64 {
    simulate(BENCH_SEED, move || async move {
        let opts = KvOptions { disk, ..KvOptions::new(3, false).raft(raft) };
        let cluster = KvCluster::with_options(opts, "bench_speed").await;
        let mut ck = cluster.make_client(&cluster.all()).await;
        ck.get("x").await;
        let start = Instant::now();
        for i in 0..1000 {
            ck.append("x", &format!("x 0 {i} y")).await;
        }
        start.elapsed().as_secs_f64()
    }) * 1000.0
        / 1000.0
}

/// `clerks` closed-loop clerks on 5 reliable servers for 5 virtual seconds.
pub fn throughput(raft: RaftKind, clerks: usize, disk: DiskFaults) -> (f64, f64, f64) {
    simulate(BENCH_SEED, move || async move {
        let window = Duration::from_secs(5);
        let opts = KvOptions { disk, ..KvOptions::new(5, false).raft(raft) };
        let cluster = KvCluster::with_options(opts, "bench_throughput").await;
        let mut cks = Vec::with_capacity(clerks);
        for _ in 0..clerks {
            cks.push(cluster.make_client(&cluster.all()).await);
        }
        // Warm up: a leader exists and every clerk knows it.
        let warm: Vec<_> = cks
            .into_iter()
            .map(|mut ck| {
                tokio::spawn(async move {
                    let _ = ck.get("warm").await;
                    ck
                })
            })
            .collect();
        let mut cks = Vec::new();
        for w in warm {
            cks.push(w.await.expect("warm-up task"));
        }
        let raft0 = cluster.network().stats().frames_except(KV_SERVICE).0;
        let start = Instant::now();
        let tasks: Vec<_> = cks
            .into_iter()
            .enumerate()
            .map(|(k, mut ck)| {
                tokio::spawn(async move {
                    let (mut n, mut lat) = (0u64, 0f64);
                    let key = format!("k{k}");
                    while start.elapsed() < window {
                        let t = Instant::now();
                        ck.append(&key, "x").await;
                        if start.elapsed() <= window {
                            n += 1;
                            lat += t.elapsed().as_secs_f64() * 1000.0;
                        }
                    }
                    (n, lat)
                })
            })
            .collect();
        let (mut ops, mut lat) = (0u64, 0f64);
        for t in tasks {
            let (n, l) = t.await.expect("clerk task");
            ops += n;
            lat += l;
        }
        let raft = cluster.network().stats().frames_except(KV_SERVICE).0 - raft0;
        let ops_f = ops.max(1) as f64;
        (ops as f64 / window.as_secs_f64(), raft as f64 / ops_f, lat / ops_f)
    })
}

/// Mean virtual ms per op of persist_partition_unreliable_4a's workload.
fn persist_partition_unreliable(raft: RaftKind, dup: f64) -> f64 {
    simulate(BENCH_SEED, move || async move {
        let mut spec = GenericSpec { raft, ..GenericSpec::new(5, 5, true, true, true, false) };
        spec.duplicate_rate = dup;
        run_generic("bench_under_faults", &spec).await.figures().mean_ms_per_op
    })
}

/// Virtual seconds simulated per wall second on the hardest catalogue scenario.
pub fn sim_speedup() -> f64 {
    let spec = catalog::find("linearizable").expect("the linearizable scenario exists").spec(BENCH_SEED);
    let wall = Instant::now();
    let r = exec::run(&spec, &RunOptions::limit(None));
    // Instant::now() outside a simulation is the real clock.
    let w = wall.elapsed().as_secs_f64();
    r.virtual_ms as f64 / 1000.0 / w
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Makes a legal history illegal: a completed Get in the middle reads a
/// value nobody wrote.
fn break_history(h: &mut History) {
    let mid = h.ops.len() / 2;
    let i = (mid..h.ops.len()).chain(0..mid).find(|i| h.ops[*i].kind == OpKind::Get && h.ops[*i].return_ns.is_some());
    if let Some(i) = i {
        h.ops[i].output = Some("never written".to_string());
    }
}

fn checker_figure(name: &str, cfg: gen::GenConfig, illegal: bool, repeats: usize) -> CheckerFigure {
    let mut h = gen::generate(&cfg);
    if illegal {
        break_history(&mut h);
    }
    let json = h.to_json_string();
    let mut times = Vec::new();
    let mut linearizable = true;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let parsed = History::from_json_str(&json).expect("generated history parses");
        let v = check_history(&parsed.ops);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        linearizable = v.linearizable;
    }
    CheckerFigure { name: name.to_string(), ops: h.ops.len(), wall_ms: median(times), linearizable }
}

/// Resident set size now, and its peak, in MB (Linux /proc).
pub fn rss_mb() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The checker figures (wall-clock, median of `repeats`).
pub fn checker_figures(repeats: usize) -> Vec<CheckerFigure> {
    let g = |ops, keys, clients| gen::GenConfig { ops, keys, clients, seed: 7, ..Default::default() };
    let mut out = vec![
        checker_figure("10k ops, 10 keys, 10 clients", g(10_000, 10, 10), false, repeats),
        checker_figure("10k ops, 10 keys, 10 clients, illegal", g(10_000, 10, 10), true, repeats),
        checker_figure("10k ops, 10 keys, 50 clients", g(10_000, 10, 50), false, repeats),
        checker_figure("10k ops, 1 key, 10 clients", g(10_000, 1, 10), false, repeats),
        checker_figure("10k ops, 1 key, 10 clients, illegal", g(10_000, 1, 10), true, repeats),
        checker_figure(
            "10k ops, 10 keys, 10% of writes pending",
            gen::GenConfig { pending_writes: 0.1, ..g(10_000, 10, 10) },
            false,
            repeats,
        ),
        checker_figure("100k ops, 100 keys, 10 clients", g(100_000, 100, 10), false, repeats),
    ];
    out.push(checker_figure("1M ops, 1000 keys, 10 clients", g(1_000_000, 1000, 10), false, 1));
    // The worst case known: more than 64 ops in flight on one key. Once
    // each (they take seconds). With 10% of the writes pending as well it
    // takes minutes (BENCHMARKS.md, issue 28), too long for `bench`.
    out.push(checker_figure("3k ops, 1 key, 100 clients", g(3_000, 1, 100), false, 1));
    out.push(checker_figure("3k ops, 1 key, 100 clients, illegal", g(3_000, 1, 100), true, 1));
    out
}

/// Peak MB the checker adds on a parsed 1M-op history: resets the kernel's
/// peak-RSS counter (Linux `clear_refs` 5) after parsing, so the input's own
/// memory is not counted.
pub fn checker_1m_peak_mb() -> Option<f64> {
    let h = gen::generate(&gen::GenConfig { ops: 1_000_000, keys: 1000, clients: 10, seed: 7, ..Default::default() });
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    let base = rss_mb().0;
    let v = check_history(&h.ops);
    let peak = rss_mb().1;
    assert!(v.linearizable, "the generated 1M-op history is legal");
    Some(peak - base)
}

/// Takes every figure.
pub fn run(opts: &BenchOptions, progress: &dyn Fn(&str)) -> BenchReport {
    // The memory figures first, while the process has allocated little:
    // the checker's peak (its counter reset first), then whether a
    // campaign's memory grows from run to run.
    progress("checker");
    let checker_1m_peak_mb = checker_1m_peak_mb();
    let checker = checker_figures(opts.repeats.max(1));
    let checker_peak_rss_mb = rss_mb().1;
    let peak_rss_mb = if opts.skip_memory {
        None
    } else {
        progress("campaign memory (200 seeds)");
        let sc = catalog::find("unreliable").expect("scenario");
        let runs = |from: u64, n: u64| -> Vec<_> { (from..from + n).map(|s| sc.spec(s)).collect() };
        run_all(&runs(1, 50), 2, &RunOptions::limit(None), &|_| {});
        let after_50 = rss_mb().0;
        run_all(&runs(51, 150), 2, &RunOptions::limit(None), &|_| {});
        let after_200 = rss_mb().0;
        Some(CampaignMemory {
            scenario: sc.name.to_string(),
            rss_mb_after_50: after_50,
            rss_mb_after_200: after_200,
            // Allow allocator noise; a leak of retained replies or histories
            // would grow with every run.
            grows: after_200 > after_50 * 1.25 + 16.0,
        })
    };
    progress("null round trip");
    let null_rtt_ms = null_rtt_ms();
    progress("the simulator's floor");
    let madsim_floor_msgs_per_s = median((0..3).map(|_| madsim_floor_msgs_per_s(200_000)).collect());
    let kinds = if opts.rafts.is_empty() { RaftKind::all() } else { opts.rafts.clone() };
    let rafts: Vec<RaftFigures> = kinds.into_iter().map(|raft| raft_figures(raft, null_rtt_ms, progress)).collect();
    progress("simulation speed");
    let sim_speedup = median((0..3).map(|_| sim_speedup()).collect());
    let suite_wall_s = if opts.skip_suite {
        None
    } else {
        progress("ported suite wall time");
        suite_wall_s()
    };
    let time_to_first_failure = if opts.skip_ttff {
        Vec::new()
    } else {
        [Bug::LocalGet, Bug::NoDedup]
            .into_iter()
            .map(|b| {
                progress(&format!("time to first failure, {}", bug_to_str(b)));
                first_failure(b, &TTFF_STARTS, TTFF_WINDOW)
            })
            .collect()
    };
    BenchReport {
        null_rtt_ms,
        madsim_floor_msgs_per_s,
        rafts,
        suite_wall_s,
        sim_speedup,
        checker,
        checker_1m_peak_mb,
        checker_peak_rss_mb,
        peak_rss_mb,
        time_to_first_failure,
    }
}

/// The Raft-dependent figures of `raft`.
fn raft_figures(raft: RaftKind, null_rtt_ms: f64, progress: &dyn Fn(&str)) -> RaftFigures {
    let r = raft.name();
    progress(&format!("{r}: speed_4a workload"));
    let speed = speed_ms_per_op(raft, bench_disk());
    let rows = throughput_rows(raft, &[1, 10, 100, 1000], bench_disk(), &|c| {
        progress(&format!("{r}: throughput, {c} clerks"))
    });
    progress(&format!("{r}: instant disk"));
    let instant_speed = speed_ms_per_op(raft, instant_disk());
    let instant_disk = DiskCost {
        speed_ms_per_op: instant_speed,
        floor_ratio: instant_speed / (2.0 * null_rtt_ms),
        throughput: throughput_rows(raft, &[1, 100], instant_disk(), &|_| {}),
    };
    progress(&format!("{r}: under faults"));
    let plain = persist_partition_unreliable(raft, 0.0);
    let dup = persist_partition_unreliable(raft, 0.3);
    progress(&format!("{r}: swarm seeds per minute (200 seeds)"));
    let swarm = swarm_speed(raft, 200);
    RaftFigures {
        raft: r.to_string(),
        speed_ms_per_op: speed,
        floor_ratio: speed / (2.0 * null_rtt_ms),
        throughput: rows,
        under_faults: UnderFaults {
            workload: "persist_partition_unreliable_4a (5 clerks, 5 servers)".to_string(),
            ms_per_op: plain,
            ms_per_op_with_duplication: dup,
        },
        swarm_seeds_per_min: swarm.seeds_per_min,
        swarm_msgs_per_thread_s: swarm.msgs_per_thread_s,
        swarm_virtual_s_per_thread_s: swarm.virtual_s_per_thread_s,
        instant_disk,
    }
}

/// Throughput at each number of clerks; scaling against the first row.
fn throughput_rows(raft: RaftKind, clerks: &[usize], disk: DiskFaults, progress: &dyn Fn(usize)) -> Vec<Throughput> {
    let mut rows: Vec<Throughput> = Vec::new();
    for &clerks in clerks {
        progress(clerks);
        let (ops_per_s, raft_msgs_per_op, mean_ms_per_op) = throughput(raft, clerks, disk);
        let base = rows.first().map_or(ops_per_s / clerks as f64, |t| t.ops_per_s / t.clerks as f64);
        rows.push(Throughput {
            clerks,
            ops_per_s,
            raft_msgs_per_op,
            mean_ms_per_op,
            scaling_efficiency: ops_per_s / (clerks as f64 * base),
        });
    }
    rows
}

/// How fast a swarm campaign goes: `n` seeds from 1 on 2 jobs.
pub struct SwarmSpeed {
    pub seeds_per_min: f64,
    /// Messages sent (Raft and KV) per second of one thread's wall time.
    pub msgs_per_thread_s: f64,
    /// Virtual seconds per second of one thread's wall time.
    pub virtual_s_per_thread_s: f64,
}

/// See [`SwarmSpeed`].
pub fn swarm_speed(raft: RaftKind, n: u64) -> SwarmSpeed {
    const JOBS: usize = 2;
    let specs: Vec<_> = (1..=n).map(|s| swarm_spec(s).with_raft(raft)).collect();
    let t = Instant::now();
    let reports = run_all(&specs, JOBS, &RunOptions::limit(Some(Duration::from_secs(600))), &|_| {});
    let wall = t.elapsed().as_secs_f64();
    let thread_s = wall * JOBS as f64;
    let msgs: u64 = reports.iter().map(|r| r.raft_msgs + r.kv_msgs).sum();
    let virtual_s: f64 = reports.iter().map(|r| r.virtual_ms as f64 / 1000.0).sum();
    SwarmSpeed { seeds_per_min: n as f64 * 60.0 / wall, msgs_per_thread_s: msgs as f64 / thread_s, virtual_s_per_thread_s: virtual_s / thread_s }
}

/// The start seeds of [`first_failure`], far apart.
pub const TTFF_STARTS: [u64; 5] = [1, 10_001, 20_001, 30_001, 40_001];
/// Seeds tried from each start before giving up.
pub const TTFF_WINDOW: u64 = 200;

/// Time to first failure of `bug` under swarm: from each start, seeds run
/// one at a time until one fails.
pub fn first_failure(bug: Bug, starts: &[u64], window: u64) -> FirstFailure {
    let mut runs = Vec::new();
    for &start in starts {
        let t = Instant::now();
        let mut found = None;
        for k in 0..window {
            let spec = swarm_spec(start + k).with_bug(bug);
            let r = exec::run(&spec, &RunOptions::limit(Some(Duration::from_secs(600))));
            if let Some(f) = &r.failure {
                found = Some((k + 1, f.class.name()));
                break;
            }
        }
        runs.push((start, found.as_ref().map(|(n, _)| *n), t.elapsed().as_secs_f64(), found.map(|(_, c)| c)));
    }
    let seeds: Vec<f64> = runs.iter().filter_map(|r| r.1.map(|n| n as f64)).collect();
    FirstFailure {
        bug: bug_to_str(bug).to_string(),
        median_seeds: (seeds.len() == runs.len()).then(|| median(seeds)),
        median_wall_s: median(runs.iter().map(|r| r.2).collect()),
        runs,
    }
}

/// Wall seconds of the ported suite (3A-3C and 4A), release, one seed each:
/// builds first, then times the run alone.
pub fn suite_wall_s() -> Option<f64> {
    let args = ["test", "--release", "--test", "suite"];
    let built = std::process::Command::new("cargo").args(args).arg("--no-run").output().ok()?;
    if !built.status.success() {
        return None;
    }
    let t = Instant::now();
    let out = std::process::Command::new("cargo")
        .args(args)
        .args(["--", "raft_3a::", "raft_3b::", "raft_3c::", "kv_4a::"])
        .env("MADSIM_TEST_SEED", "1")
        .output()
        .ok()?;
    out.status.success().then(|| t.elapsed().as_secs_f64())
}

/// The report as a table.
pub fn render(r: &BenchReport) -> String {
    let mut s = String::new();
    s += &format!("null_rtt_ms            {:.2}\n", r.null_rtt_ms);
    s += &format!("madsim_floor           {:.0} msgs per wall s (two bare nodes, one thread)\n", r.madsim_floor_msgs_per_s);
    for f in &r.rafts {
        s += &format!("--- {} ---\n", f.raft);
        s += &format!("speed_ms_per_op        {:.2}\n", f.speed_ms_per_op);
        s += &format!("floor_ratio            {:.3}   (goal <= 1.15)\n", f.floor_ratio);
        s += "throughput             clerks   ops/s   raft msgs/op   ms/op   scaling\n";
        for t in &f.throughput {
            s += &format!(
                "                       {:>6} {:>8.0} {:>13.2} {:>7.1} {:>8.2}\n",
                t.clerks, t.ops_per_s, t.raft_msgs_per_op, t.mean_ms_per_op, t.scaling_efficiency
            );
        }
        s += &format!(
            "under_faults           {:.1} ms/op; with 30% duplication {:.1} ms/op ({})\n",
            f.under_faults.ms_per_op, f.under_faults.ms_per_op_with_duplication, f.under_faults.workload
        );
        s += &format!("swarm_seeds_per_min    {:.0} (200 seeds, 2 jobs)\n", f.swarm_seeds_per_min);
        s += &format!(
            "swarm engine           {:.0} msgs and {:.0} virtual s per thread-second ({:.1}x the simulator's floor per message)\n",
            f.swarm_msgs_per_thread_s,
            f.swarm_virtual_s_per_thread_s,
            r.madsim_floor_msgs_per_s / f.swarm_msgs_per_thread_s
        );
        let d = &f.instant_disk;
        s += &format!(
            "instant disk           speed {:.2} ms/op, floor ratio {:.3} (above: 1 ms syncs)\n",
            d.speed_ms_per_op, d.floor_ratio
        );
        for t in &d.throughput {
            s += &format!(
                "                       {:>6} {:>8.0} {:>13.2} {:>7.1}\n",
                t.clerks, t.ops_per_s, t.raft_msgs_per_op, t.mean_ms_per_op
            );
        }
    }
    s += "---\n";
    s += &format!(
        "suite_wall_s           {}\n",
        r.suite_wall_s.map_or("not measured".to_string(), |w| format!("{w:.1}   (goal < 60)"))
    );
    s += &format!("sim_speedup            {:.0}x (virtual s per wall s, scenario linearizable)\n", r.sim_speedup);
    s += "checker                wall ms   ops       verdict\n";
    for c in &r.checker {
        s += &format!(
            "  {:<40} {:>8.2} {:>8} {}\n",
            c.name,
            c.wall_ms,
            c.ops,
            if c.linearizable { "linearizable" } else { "NOT linearizable" }
        );
    }
    s += &format!(
        "checker_1m_peak_mb     {}   (goal < 200)\n",
        r.checker_1m_peak_mb.map_or("not measured".to_string(), |m| format!("{m:.0}"))
    );
    s += &format!("process peak rss mb    {:.0} (everything above, inputs included)\n", r.checker_peak_rss_mb);
    for f in &r.time_to_first_failure {
        let per: Vec<String> = f
            .runs
            .iter()
            .map(|(start, n, w, c)| match n {
                Some(n) => format!("from {start}: {n} seeds, {w:.2} s ({})", c.as_deref().unwrap_or("")),
                None => format!("from {start}: none in {TTFF_WINDOW} seeds ({w:.1} s)"),
            })
            .collect();
        s += &format!(
            "time_to_first_failure  {:<10} median {} seeds, {:.2} s wall; {}\n",
            f.bug,
            f.median_seeds.map_or("-".to_string(), |m| format!("{m:.0}")),
            f.median_wall_s,
            per.join("; ")
        );
    }
    if let Some(m) = &r.peak_rss_mb {
        s += &format!(
            "peak_rss_mb            {:.0} after 50 seeds, {:.0} after 200 seeds of {} (grows: {})\n",
            m.rss_mb_after_50, m.rss_mb_after_200, m.scenario, m.grows
        );
    }
    s
}
