//! The nemesis: fault events at virtual times (partitions of many shapes,
//! crashes, restarts, heals). A spec's schedule is its explicit list or the
//! one its seed, partition style and crash rate generate; here it is also
//! applied to a running cluster.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::spec::{Action, NemesisEvent, PartitionStyle, RunSpec, Workload};
use crate::sim::kv_cluster::KvCluster;

// The schedule's own stream (see the swarm generator's mix stream).
const SCHEDULE_STREAM: u64 = 0x5357_4152_4d5f_5343; // "SWARM_SC"

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
pub async fn apply(cfg: &KvCluster, action: &Action) {
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


/// Applies `events` (sorted by time) at their times after `start`.
pub async fn run(cfg: KvCluster, events: Vec<NemesisEvent>, start: Instant) {
    for e in events {
        tokio::time::sleep_until(start + Duration::from_millis(e.at_ms)).await;
        apply(&cfg, &e.action).await;
    }
}
