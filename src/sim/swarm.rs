//! Swarm testing: each seed draws its own fault mix (cluster size, clients,
//! keys, loss, duplication, delays, partition style, crash rate) and its own
//! nemesis schedule, outside the simulation, from a generator seeded by the
//! seed; then clerks do random Get/Put/Append while a nemesis task applies
//! the schedule's events.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::task::JoinHandle;

use super::kv_cluster::{KvCluster, KvOptions, TestClerk};
use super::raft_cluster::rand_u64;
use super::spec::{Action, Faults, NemesisEvent, PartitionStyle, RunSpec, Workload, LIVENESS_MS};
use crate::kv::Bug;

/// The name swarm runs go by.
pub const SWARM: &str = "swarm";

// Distinct streams for the mix and the schedule, so that a spec with an
// edited mix still gets a schedule of its own seed.
const MIX_STREAM: u64 = 0x5357_4152_4d5f_4d49; // "SWARM_MI"
const SCHEDULE_STREAM: u64 = 0x5357_4152_4d5f_5343; // "SWARM_SC"

fn rate(rng: &mut StdRng, p_zero: f64, max: f64) -> f64 {
    if rng.gen_bool(p_zero) {
        0.0
    } else {
        // Two decimals: short in reports and spec files.
        (rng.gen_range(0.01..max) * 100.0).round() / 100.0
    }
}

/// The swarm spec of `seed`: its fault mix, with the schedule left implicit.
pub fn swarm_spec(seed: u64) -> RunSpec {
    let mut rng = StdRng::seed_from_u64(seed ^ MIX_STREAM);
    let servers = *[3usize, 5, 7].choose(&mut rng).unwrap();
    let clients = rng.gen_range(1..=15);
    // Half the seeds use few keys, so that clerks contend on them.
    let keys = if rng.gen_bool(0.5) { rng.gen_range(1..=10) } else { rng.gen_range(1..=100) };
    let request_loss = rate(&mut rng, 0.3, 0.3);
    let reply_loss = rate(&mut rng, 0.3, 0.3);
    let duplicate_rate = rate(&mut rng, 0.4, 0.5);
    let delay_ms = if rng.gen_bool(0.4) {
        [0, 0]
    } else {
        let lo = rng.gen_range(0..=10);
        [lo, lo + rng.gen_range(1..=60)]
    };
    let long_reordering = rng.gen_bool(0.15);
    let partition = *[
        PartitionStyle::None,
        PartitionStyle::Halves,
        PartitionStyle::Leader,
        PartitionStyle::OneWay,
        PartitionStyle::Bridge,
        PartitionStyle::Mixed,
    ]
    .choose(&mut rng)
    .unwrap();
    let crash_rate = if rng.gen_bool(0.35) { 0.0 } else { (rng.gen_range(0.05..0.6f64) * 100.0).round() / 100.0 };
    let run_ms = rng.gen_range(3..=8) * 1000;
    let faults = Faults { request_loss, reply_loss, duplicate_rate, delay_ms, long_reordering };
    let mut spec = RunSpec {
        scenario: SWARM.to_string(),
        seed,
        servers,
        clients,
        workload: Workload::Swarm { keys, run_ms, ops_per_client: None },
        faults,
        partition,
        crash_rate,
        nemesis: None,
        bug: Bug::None,
        bound_ms: 0.0,
        liveness_ms: LIVENESS_MS,
        inject_nondeterminism: false,
    };
    spec.bound_ms = swarm_bound_ms(&spec);
    spec
}

/// The ms/op bound of a swarm mix. A clerk waits out lost requests and
/// replies (150 ms per attempt, on its own RPCs and on Raft's), delays,
/// long reordering (up to 2.2 s per reply), each crash or partition (an
/// election), and stretches with no majority up (see [`outage_ms`]). Runs
/// with few ops have noisy means, so the bound is wide: on seeds 1000-12999
/// the slowest run reached 0.45 of it (a mix without nemesis events), the
/// median 0.05; mixes with events or long reordering at most 0.36.
pub fn swarm_bound_ms(spec: &RunSpec) -> f64 {
    let f = &spec.faults;
    let loss = 1.0 - (1.0 - f.request_loss) * (1.0 - f.reply_loss);
    let mut b = 100.0 + 8000.0 * loss + 3.0 * f.delay_ms[1] as f64;
    if f.long_reordering {
        b += 7000.0;
    }
    let run_s = spec.run_ms() as f64 / 1000.0;
    b += 2000.0 * schedule(spec).len() as f64 / run_s;
    b += 2.0 * outage_ms(spec).0 as f64;
    b.round()
}

/// One short line naming the mix, e.g.
/// `s5 c7 k23 loss 12/5% dup 30% delay 2-40ms lr part bridge crash 0.2/s 14 ev`.
pub fn describe_mix(spec: &RunSpec) -> String {
    let f = &spec.faults;
    let pct = |x: f64| (x * 100.0).round() as u64;
    let mut s = format!("s{} c{}", spec.servers, spec.clients);
    if let Workload::Swarm { keys, run_ms, ops_per_client } = &spec.workload {
        s += &format!(" k{keys} {}s", *run_ms as f64 / 1000.0);
        if let Some(n) = ops_per_client {
            s += &format!(" {n}op");
        }
    }
    if f.request_loss > 0.0 || f.reply_loss > 0.0 {
        s += &format!(" loss {}/{}%", pct(f.request_loss), pct(f.reply_loss));
    }
    if f.duplicate_rate > 0.0 {
        s += &format!(" dup {}%", pct(f.duplicate_rate));
    }
    if f.delay_ms[1] > 0 {
        s += &format!(" delay {}-{}ms", f.delay_ms[0], f.delay_ms[1]);
    }
    if f.long_reordering {
        s += " lr";
    }
    match &spec.nemesis {
        None => {
            if spec.partition != PartitionStyle::None {
                s += &format!(" part {}", spec.partition.name());
            }
            if spec.crash_rate > 0.0 {
                s += &format!(" crash {}/s", spec.crash_rate);
            }
            if matches!(spec.workload, Workload::Swarm { .. }) {
                s += &format!(" {} ev", schedule(spec).len());
            }
        }
        Some(ev) => s += &format!(" {} ev (explicit)", ev.len()),
    }
    if spec.bug != Bug::None {
        s += &format!(" bug {}", super::spec::bug_to_str(spec.bug));
    }
    s
}

/// Two random non-empty groups of `servers` (needs at least 2).
fn split(rng: &mut StdRng, servers: &mut [usize]) -> (Vec<usize>, Vec<usize>) {
    servers.shuffle(rng);
    let k = rng.gen_range(1..servers.len());
    let (mut a, mut b) = (servers[..k].to_vec(), servers[k..].to_vec());
    a.sort_unstable();
    b.sort_unstable();
    (a, b)
}

fn partition_action(rng: &mut StdRng, style: PartitionStyle, n: usize) -> Option<Action> {
    let style = if style == PartitionStyle::Mixed {
        *[PartitionStyle::Halves, PartitionStyle::Leader, PartitionStyle::OneWay, PartitionStyle::Bridge].choose(rng).unwrap()
    } else {
        style
    };
    let mut all: Vec<usize> = (0..n).collect();
    match style {
        PartitionStyle::None | PartitionStyle::Mixed => None,
        _ if n < 2 => None,
        PartitionStyle::Halves => {
            let (a, b) = split(rng, &mut all);
            Some(Action::Partition { a, b })
        }
        PartitionStyle::Leader => Some(Action::IsolateLeader),
        PartitionStyle::OneWay => {
            let cuts = rng.gen_range(1..=n);
            let mut links = Vec::new();
            for _ in 0..cuts {
                let (x, y) = (rng.gen_range(0..n), rng.gen_range(0..n));
                if x != y && !links.contains(&(x, y)) {
                    links.push((x, y));
                }
            }
            if links.is_empty() {
                links.push((0, 1));
            }
            Some(Action::CutOneWay { links })
        }
        PartitionStyle::Bridge if n < 3 => {
            let (a, b) = split(rng, &mut all);
            Some(Action::Partition { a, b })
        }
        PartitionStyle::Bridge => {
            all.shuffle(rng);
            let bridge = all[0];
            let (a, b) = split(rng, &mut all[1..]);
            Some(Action::Bridge { bridge, a, b })
        }
    }
}

/// The nemesis events of a swarm spec: its explicit list, or the one its
/// seed, partition style and crash rate generate. Sorted by time.
pub fn schedule(spec: &RunSpec) -> Vec<NemesisEvent> {
    if let Some(ev) = &spec.nemesis {
        let mut ev = ev.clone();
        ev.sort_by_key(|e| e.at_ms);
        return ev;
    }
    let Workload::Swarm { run_ms, .. } = spec.workload else { return Vec::new() };
    let mut rng = StdRng::seed_from_u64(spec.seed ^ SCHEDULE_STREAM);
    let n = spec.servers;
    let mut ev = Vec::new();
    if spec.partition != PartitionStyle::None {
        let mut t = rng.gen_range(300..1500);
        while t < run_ms {
            let Some(action) = partition_action(&mut rng, spec.partition, n) else { break };
            ev.push(NemesisEvent { at_ms: t, action });
            let hold = rng.gen_range(300..2500);
            // Most partitions heal before the next; some are replaced outright.
            if rng.gen_bool(0.7) && t + hold < run_ms {
                ev.push(NemesisEvent { at_ms: t + hold, action: Action::Heal });
            }
            t += hold + rng.gen_range(0..1000);
        }
    }
    if spec.crash_rate > 0.0 {
        let mut t = 0.0f64;
        loop {
            // Exponential gaps: crashes arrive as a Poisson process.
            let u: f64 = rng.gen_range(1e-9..1.0);
            t += -u.ln() / spec.crash_rate * 1000.0;
            if t >= run_ms as f64 {
                break;
            }
            let server = rng.gen_range(0..n);
            let down = rng.gen_range(200..3000);
            let at = t as u64;
            ev.push(NemesisEvent { at_ms: at, action: Action::Crash { server } });
            if at + down < run_ms {
                ev.push(NemesisEvent { at_ms: at + down, action: Action::Restart { server } });
            }
        }
    }
    ev.sort_by_key(|e| e.at_ms);
    ev
}

/// The longest stretch of virtual ms in which the schedule leaves no
/// majority of servers up and connected (an isolated leader or a one-way cut
/// counts as leaving the rest connected; a bridge joins its side to the
/// larger one), and the total of such stretches.
pub fn outage_ms(spec: &RunSpec) -> (u64, u64) {
    let n = spec.servers;
    let majority = n / 2 + 1;
    let run_ms = spec.run_ms();
    let mut up = vec![true; n];
    // The group of each server (0 or 1); all in group 0 when healed.
    let mut group = vec![0u8; n];
    let (mut longest, mut total, mut since): (u64, u64, Option<u64>) = (0, 0, None);
    for e in schedule(spec).iter().filter(|e| e.at_ms < run_ms) {
        match &e.action {
            Action::Partition { b, .. } | Action::Bridge { b, .. } => {
                group.iter_mut().for_each(|g| *g = 0);
                for x in b {
                    group[*x] = 1;
                }
                if let Action::Bridge { bridge, a, .. } = &e.action {
                    // The bridge reaches both sides: count it with the larger.
                    group[*bridge] = u8::from(b.len() > a.len());
                }
            }
            Action::IsolateLeader | Action::CutOneWay { .. } | Action::Heal => group.iter_mut().for_each(|g| *g = 0),
            Action::Crash { server } => up[*server] = false,
            Action::Restart { server } => up[*server] = true,
        }
        let best = (0..2u8).map(|g| (0..n).filter(|i| up[*i] && group[*i] == g).count()).max().unwrap_or(0);
        match (best >= majority, since) {
            (false, None) => since = Some(e.at_ms),
            (true, Some(t)) => {
                longest = longest.max(e.at_ms - t);
                total += e.at_ms - t;
                since = None;
            }
            _ => {}
        }
    }
    if let Some(t) = since {
        longest = longest.max(run_ms - t);
        total += run_ms - t;
    }
    (longest, total)
}

/// The spec with its schedule written out (so events can be removed).
pub fn materialize(spec: &RunSpec) -> RunSpec {
    let mut s = spec.clone();
    if let Workload::Swarm { run_ms, .. } = s.workload {
        // Events at or after the end of the run never fire: leave them out.
        s.nemesis = Some(schedule(spec).into_iter().filter(|e| e.at_ms < run_ms).collect());
    }
    s
}

/// Applies one nemesis action to the cluster.
async fn apply(cfg: &KvCluster, action: &Action) {
    let n = cfg.n();
    match action {
        Action::Partition { a, b } => {
            cfg.connect_all();
            cfg.partition(a, b);
        }
        Action::IsolateLeader => {
            let l = cfg.leader().unwrap_or(0);
            let rest: Vec<usize> = (0..n).filter(|i| *i != l).collect();
            cfg.connect_all();
            cfg.partition(&[l], &rest);
        }
        Action::CutOneWay { links } => {
            cfg.connect_all();
            cfg.cut_links(links);
        }
        Action::Bridge { a, b, .. } => {
            cfg.connect_all();
            let links: Vec<(usize, usize)> = a.iter().flat_map(|x| b.iter().flat_map(move |y| [(*x, *y), (*y, *x)])).collect();
            cfg.cut_links(&links);
        }
        Action::Heal => cfg.connect_all(),
        Action::Crash { server } => {
            if cfg.is_alive(*server) {
                cfg.shutdown_server(*server);
            }
        }
        Action::Restart { server } => {
            if !cfg.is_alive(*server) {
                cfg.start_server(*server).await;
                cfg.connect_server(*server);
            }
        }
    }
}

/// The key clerk `k` appends to in the liveness phase.
pub fn key_name(k: usize) -> String {
    format!("k{k}")
}

/// Runs the swarm workload of `spec` up to the end of its run time: clerks
/// do random ops while the nemesis applies the schedule. Returns the cluster
/// and the clerks (each handed back when its current op finishes).
pub async fn run_swarm(spec: &RunSpec) -> (KvCluster, Vec<JoinHandle<TestClerk>>) {
    let Workload::Swarm { keys, run_ms, ops_per_client } = spec.workload else {
        panic!("run_swarm needs a swarm workload");
    };
    let mut opts = KvOptions::new(spec.servers, false);
    opts.bug = spec.bug;
    opts.faults = Some(spec.faults.to_config());
    let cfg = KvCluster::with_options(opts, &spec.scenario).await;
    if spec.inject_nondeterminism {
        cfg.network().inject_unseeded_delay();
    }
    cfg.begin(&format!("Test: swarm {}", describe_mix(spec)));
    // Events at or after the end of the run would never fire.
    let events: Vec<NemesisEvent> = schedule(spec).into_iter().filter(|e| e.at_ms < run_ms).collect();
    // Start once a first leader is elected (or after 10 s without one), so
    // the first election does not count as the workload's latency: the
    // clerks run closed loops, and in short runs that one second would
    // dominate the mean ms/op.
    let wait_from = Instant::now();
    while cfg.leader().is_none() && wait_from.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut clerks = Vec::new();
    for c in 0..spec.clients {
        let mut ck = cfg.make_client(&cfg.all()).await;
        let done = done.clone();
        clerks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !done.load(Ordering::SeqCst) && ops_per_client.is_none_or(|m| n < m) {
                let key = key_name(rand_u64() as usize % keys);
                // Unique values let the checker tell every write apart.
                let value = format!("c{c}n{n}.");
                match rand_u64() % 100 {
                    0..=44 => {
                        ck.get(&key).await;
                    }
                    45..=64 => ck.put(&key, &value).await,
                    _ => ck.append(&key, &value).await,
                }
                n += 1;
            }
            ck
        }));
    }
    let nemesis = {
        let cfg = cfg.clone();
        tokio::spawn(async move {
            for e in events {
                let at = start + Duration::from_millis(e.at_ms);
                tokio::time::sleep_until(at).await;
                apply(&cfg, &e.action).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(run_ms)).await;
    done.store(true, Ordering::SeqCst);
    // Every event is due before now; a restart in progress finishes first.
    nemesis.await.expect("nemesis task");
    (cfg, clerks)
}
