//! The nemesis: fault events at virtual times (partitions of many shapes,
//! crashes, restarts, heals, and protocol-aware events that pick the leader
//! or a lagging server as they happen). A spec's schedule is its explicit
//! list or the one its seed, partition style and rates generate; here it is
//! also applied to a running cluster.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use tokio::task::JoinHandle;

use super::spec::{Action, Focus, NemesisEvent, PartitionStyle, RunSpec, Workload, WriteTarget};
use crate::check::history::kinds;
use crate::sim::kv_cluster::KvCluster;
use crate::raft::persister::WriteKind;
use crate::sim::traps::{AppendTrap, CommitTrap, RewriteTrap, WriteMoment, WriteTrap};

mod steps;
use steps::*;

// The schedule's own streams (see the swarm generator's mix stream): the
// targeted events draw from one of their own, so that adding them left the
// rest of every seed's schedule as it was.
const SCHEDULE_STREAM: u64 = 0x5357_4152_4d5f_5343; // "SWARM_SC"
const TARGETED_STREAM: u64 = 0x5357_4152_4d5f_5447; // "SWARM_TG"
const REWRITE_STREAM: u64 = 0x5357_4152_4d5f_5257; // "SWARM_RW"
const WRITE_STREAM: u64 = 0x5357_4152_4d5f_5752; // "SWARM_WR"
const LATE_STREAM: u64 = 0x5357_4152_4d5f_4c54; // "SWARM_LT"

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
        arrivals(&mut rng, spec.crash_rate, run_ms, |rng, at| {
            let server = rng.gen_range(0..n);
            let down = rng.gen_range(200..3000);
            ev.push(NemesisEvent { at_ms: at, action: Action::Crash { server } });
            if at + down < run_ms {
                ev.push(NemesisEvent { at_ms: at + down, action: Action::Restart { server } });
            }
        });
    }
    if spec.targeted_rate > 0.0 && spec.focus == Focus::None {
        targeted(&mut StdRng::seed_from_u64(spec.seed ^ TARGETED_STREAM), spec.targeted_rate, n, run_ms, &mut ev);
        // Rewritten logs, as one more kind of targeted event (a fifth of
        // them), from a stream of its own.
        let mut rng = StdRng::seed_from_u64(spec.seed ^ REWRITE_STREAM);
        arrivals(&mut rng, spec.targeted_rate / 4.0, run_ms, |rng, at| {
            let action = Action::CrashRewrittenOnCommit { down_ms: rng.gen_range(50..1000) };
            ev.push(NemesisEvent { at_ms: at, action });
        });
    }
    if spec.targeted_rate > 0.0 {
        // A focused spec has one family at four times its rate, and no
        // other; else each family below at a quarter of the rate.
        let rate = |family: Focus| match spec.focus {
            Focus::None => spec.targeted_rate / 4.0,
            f if f == family => spec.targeted_rate,
            _ => 0.0,
        };
        // Crashes at durable-state writes, as many again, from a stream
        // of their own.
        let mut rng = StdRng::seed_from_u64(spec.seed ^ WRITE_STREAM);
        arrivals(&mut rng, rate(Focus::Writes), run_ms, |rng, at| write_crashes(rng, at, n, &mut ev));
        // Late messages, leaders that come back and votes let go a term
        // late, as many again, from a stream of their own.
        let mut rng = StdRng::seed_from_u64(spec.seed ^ LATE_STREAM);
        arrivals(&mut rng, rate(Focus::Late), run_ms, |rng, at| {
            let hold_pct = rng.gen_range(2..=10) * 10;
            let action = match rng.gen_range(0..3) {
                0 => Action::LateMessages { hold_pct, restart: rng.gen_bool(0.5) },
                1 => Action::LeaderReturns { hold_pct: if rng.gen_bool(0.3) { 0 } else { hold_pct } },
                _ => Action::StaleVotes,
            };
            ev.push(NemesisEvent { at_ms: at, action });
        });
    }
    ev.sort_by_key(|e| e.at_ms);
    ev
}

/// Crash points at durable-state writes, at `at`: half the time an
/// election split around a hub crashed at its vote (`split_vote`); else an
/// election (the leader cut off) in which a voter, or any server, is
/// crashed at its hard state's write; else a crash at a log append or
/// truncation of any server. Each comes back within the same election or
/// term (a few ms to a few hundred).
fn write_crashes(rng: &mut StdRng, at: u64, n: usize, ev: &mut Vec<NemesisEvent>) {
    let moment = if rng.gen_bool(0.5) { WriteMoment::Before } else { WriteMoment::After };
    match rng.gen_range(0..4) {
        0 | 1 if n >= 3 => ev.push(NemesisEvent { at_ms: at, action: Action::SplitVote { moment, down_ms: rng.gen_range(5..300) } }),
        0..=2 => {
            let target = if rng.gen_bool(0.7) { WriteTarget::Voter } else { WriteTarget::Any };
            let action = Action::CrashAtWrite { write: WriteKind::HardState, moment, target, down_ms: rng.gen_range(5..300) };
            ev.push(NemesisEvent { at_ms: at, action: Action::IsolateLeader });
            ev.push(NemesisEvent { at_ms: at + 1, action });
            ev.push(NemesisEvent { at_ms: at + rng.gen_range(800..2000), action: Action::Heal });
        }
        _ => {
            let write = if rng.gen_bool(0.7) { WriteKind::Append } else { WriteKind::Truncate };
            let target = *[WriteTarget::Voter, WriteTarget::Leader, WriteTarget::Any].choose(rng).unwrap();
            let action = Action::CrashAtWrite { write, moment, target, down_ms: rng.gen_range(20..1000) };
            ev.push(NemesisEvent { at_ms: at, action });
        }
    }
}

/// Protocol-aware events arriving as a Poisson process at `rate` per second.
fn targeted(rng: &mut StdRng, rate: f64, n: usize, run_ms: u64, ev: &mut Vec<NemesisEvent>) {
    arrivals(rng, rate, run_ms, |rng, at| {
        match rng.gen_range(0..8) {
            0 => ev.push(NemesisEvent { at_ms: at, action: Action::CrashLeader { down_ms: rng.gen_range(100..2500) } }),
            1 => {
                // Each leader in turn loses the entry it appends next: after
                // the first, that is a new leader's first entry of its term,
                // which no other server will ever hold.
                let mut at = at;
                for _ in 0..rng.gen_range(2..=4) {
                    let down_ms = rng.gen_range(500..2500);
                    ev.push(NemesisEvent { at_ms: at, action: Action::CrashLeaderAfterAppend { down_ms } });
                    at += rng.gen_range(400..1200);
                }
            }
            2 if n >= 3 => {
                // Figure 8: a minority with the leader crashes and comes back
                // quickly, a few times in a row, so that leaders with
                // entries nobody else has come and go.
                let mut at = at;
                for _ in 0..rng.gen_range(2..=4) {
                    let down_ms = rng.gen_range(50..600);
                    ev.push(NemesisEvent { at_ms: at, action: Action::CrashMinorityWithLeader { down_ms } });
                    at += down_ms + rng.gen_range(100..700);
                }
            }
            3 if n >= 3 => {
                ev.push(NemesisEvent { at_ms: at, action: Action::LeaderMinority });
                ev.push(NemesisEvent { at_ms: at + rng.gen_range(300..2500), action: Action::Heal });
            }
            4 => {
                // Cut off the leader long enough for the others to move on,
                // heal, and restart whoever is then catching up.
                let heal = at + rng.gen_range(500..2000);
                ev.push(NemesisEvent { at_ms: at, action: Action::IsolateLeader });
                ev.push(NemesisEvent { at_ms: heal, action: Action::Heal });
                ev.push(NemesisEvent { at_ms: heal + rng.gen_range(20..300), action: Action::RestartLagging });
            }
            5 => ev.push(NemesisEvent { at_ms: at, action: Action::PauseLeader { ms: rng.gen_range(200..3000) } }),
            6 => ev.push(NemesisEvent { at_ms: at, action: Action::CrashLeaderOnCommit { down_ms: rng.gen_range(50..1000) } }),
            _ => ev.push(NemesisEvent { at_ms: at, action: Action::RestartLagging }),
        }
    });
}

/// Events arriving as a Poisson process at `rate` per second (exponential
/// gaps drawn from `rng`) until `run_ms`: `at` is called at each arrival's
/// ms, with `rng` to draw the event from.
fn arrivals(rng: &mut StdRng, rate: f64, run_ms: u64, mut at: impl FnMut(&mut StdRng, u64)) {
    let mut t = 0.0f64;
    loop {
        let u: f64 = rng.gen_range(1e-9..1.0);
        t += -u.ln() / rate * 1000.0;
        if t >= run_ms as f64 {
            return;
        }
        at(rng, t as u64);
    }
}

/// How many servers `action` takes down without naming them (the leader and
/// companions), for [`outage_ms`].
fn anonymous_down(action: &Action, n: usize) -> usize {
    match action {
        Action::CrashLeader { .. }
        | Action::CrashLeaderAfterAppend { .. }
        | Action::CrashLeaderOnCommit { .. }
        | Action::CrashRewrittenOnCommit { .. }
        | Action::CrashAtWrite { .. }
        | Action::SplitVote { .. } => 1,
        Action::Pause { .. } | Action::PauseLeader { .. } => 1,
        Action::CrashMinorityWithLeader { .. } => ((n - 1) / 2).max(1),
        _ => 0,
    }
}

/// How long `action` leaves no side a majority, from when it fires: a
/// leader caught at a commit crashes and the servers that hold the entry
/// are cut off from the rest until it has restarted, and, with an even
/// number of servers, for [`COMMIT_HOLD`] more (each side is then half).
/// The catch may come up to a few seconds after the action fires; the
/// stretch is counted from the action, its length exact.
fn blackout_ms(action: &Action, n: usize) -> Option<u64> {
    match action {
        Action::CrashLeaderOnCommit { down_ms } | Action::CrashRewrittenOnCommit { down_ms } => {
            Some(down_ms + if n % 2 == 0 { COMMIT_HOLD.as_millis() as u64 } else { 0 })
        }
        // While the sides are split, a side has a majority only with the
        // hub, which is down a while, and elections there are contended.
        Action::SplitVote { .. } => Some(SPLIT_HOLD.as_millis() as u64),
        // Messages held back, elections among the rest, leaders cut off in
        // turn: as if no side had a majority, for as long as each may last.
        Action::LateMessages { .. } => Some(LATE_WAIT.as_millis() as u64),
        Action::LeaderReturns { .. } => Some(RETURN_WAIT.as_millis() as u64),
        Action::StaleVotes => Some(3 * STALE_WAIT.as_millis() as u64),
        _ => None,
    }
}

/// A majority back for less than this may elect no leader before it is lost
/// again (elections start after 300-600 ms of silence, and candidates that
/// time out together split the vote): [`outage_ms`] joins stretches without
/// a majority that are closer than this.
pub const RECOVERY_MS: u64 = 1000;

/// Stretches without a majority, as [`outage_ms`] finds them.
#[derive(Default)]
struct Outages {
    since: Option<u64>,
    stretches: Vec<(u64, u64)>,
}

impl Outages {
    /// At `at_ms` a majority is up and connected, or not.
    fn step(&mut self, at_ms: u64, majority: bool) {
        match (majority, self.since) {
            (false, None) => self.since = Some(at_ms),
            (true, Some(t)) => {
                self.stretches.push((t, at_ms));
                self.since = None;
            }
            _ => {}
        }
    }

    /// The longest stretch and the total, once stretches closer than
    /// [`RECOVERY_MS`] are joined; `end` closes a stretch still open.
    fn finish(mut self, end: u64) -> (u64, u64) {
        if let Some(t) = self.since.take() {
            self.stretches.push((t, end));
        }
        let mut joined: Vec<(u64, u64)> = Vec::new();
        for (a, b) in self.stretches {
            match joined.last_mut() {
                Some(last) if a < last.1 + RECOVERY_MS => last.1 = last.1.max(b),
                _ => joined.push((a, b)),
            }
        }
        (joined.iter().map(|(a, b)| b - a).max().unwrap_or(0), joined.iter().map(|(a, b)| b - a).sum())
    }
}

/// The longest stretch of virtual ms in which the schedule leaves no
/// majority of servers up and connected (an isolated leader or a leader's
/// minority leaves the rest connected, a one-way cut leaves all; a bridge
/// joins its side to the larger one; servers the nemesis picks as it goes,
/// like the leader, count against the larger side while they are down),
/// and the total of such stretches (a crash caught at a commit counts as
/// the stretch [`blackout_ms`] says). Two stretches less than
/// [`RECOVERY_MS`] apart count as one. When the spec's disks may corrupt a
/// record, one server counts as down from the first crash on: the disk
/// model corrupts at most one disk a run, at a crash, and a server that
/// finds the corruption refuses to start and stays down (swarm seed
/// 30008966: four servers, one of them stopped, the leader isolated every
/// second or two).
pub fn outage_ms(spec: &RunSpec) -> (u64, u64) {
    let n = spec.servers;
    let majority = n / 2 + 1;
    let run_ms = spec.run_ms();
    let mut up = vec![true; n];
    // The group of each server (0 or 1); all in group 0 when healed.
    let mut group = vec![0u8; n];
    // Servers down without a name (the leader and companions), or all n
    // while an action leaves no side a majority: (back at, how many).
    let mut anonymous: Vec<(u64, usize)> = Vec::new();
    // The schedule's events, plus a step where each such crash ends.
    let events: Vec<NemesisEvent> = schedule(spec).into_iter().filter(|e| e.at_ms < run_ms).collect();
    let mut steps: Vec<(u64, Option<&Action>)> = events.iter().map(|e| (e.at_ms, Some(&e.action))).collect();
    steps.extend(events.iter().filter_map(|e| e.action.down_ms().map(|d| (e.at_ms + d, None))).filter(|(t, _)| *t < run_ms));
    steps.extend(events.iter().filter_map(|e| blackout_ms(&e.action, n).map(|d| (e.at_ms + d, None))).filter(|(t, _)| *t < run_ms));
    steps.sort_by_key(|(t, _)| *t);
    // A disk can be corrupted only at a crash: from the first on, one
    // server may be lost for good.
    let lost_from = events.iter().find(|e| e.action.crashes()).map(|e| e.at_ms).filter(|_| spec.disk.corrupt_rate > 0.0);
    // Servers cut off without a name (the leader and companions).
    let mut cut = 0;
    let mut out = Outages::default();
    for (at_ms, action) in steps {
        anonymous.retain(|(back, _)| *back > at_ms);
        if let Some(action) = action {
            if let Some(d) = action.down_ms() {
                anonymous.push((at_ms + d, anonymous_down(action, n)));
            }
            if let Some(d) = blackout_ms(action, n) {
                // No side a majority: as if every server were out.
                anonymous.push((at_ms + d, n));
            }
            match action {
                Action::Partition { b, .. } | Action::Bridge { b, .. } => {
                    cut = 0;
                    group.iter_mut().for_each(|g| *g = 0);
                    for x in b {
                        group[*x] = 1;
                    }
                    if let Action::Bridge { bridge, a, .. } = action {
                        // The bridge reaches both sides: count it with the larger.
                        group[*bridge] = u8::from(b.len() > a.len());
                    }
                }
                Action::IsolateLeader | Action::LeaderMinority | Action::CutOneWay { .. } | Action::Heal => {
                    group.iter_mut().for_each(|g| *g = 0);
                    cut = match action {
                        Action::IsolateLeader => 1,
                        Action::LeaderMinority => ((n - 1) / 2).max(1),
                        _ => 0,
                    };
                }
                Action::Crash { server } => up[*server] = false,
                Action::Restart { server } => up[*server] = true,
                Action::CrashLeader { .. }
                | Action::CrashLeaderAfterAppend { .. }
                | Action::CrashLeaderOnCommit { .. }
                | Action::CrashRewrittenOnCommit { .. }
                | Action::CrashMinorityWithLeader { .. }
                | Action::RestartLagging
                | Action::Pause { .. }
                | Action::PauseLeader { .. }
                | Action::CrashAtWrite { .. }
                | Action::SplitVote { .. }
                | Action::LateMessages { .. }
                | Action::LeaderReturns { .. }
                | Action::StaleVotes => {}
            }
        }
        let down: usize = anonymous.iter().map(|(_, k)| k).sum();
        let lost = usize::from(lost_from.is_some_and(|t| t <= at_ms));
        let best = (0..2u8).map(|g| (0..n).filter(|i| up[*i] && group[*i] == g).count()).max().unwrap_or(0);
        out.step(at_ms, best.saturating_sub(down + lost + cut) >= majority);
    }
    out.finish(run_ms)
}

/// The spec with its schedule written out (so events can be removed).
pub fn materialize(spec: &RunSpec) -> RunSpec {
    written_out(spec, within_run(spec))
}

/// The events of `spec`'s schedule that fire: those before the end of its
/// run (the executor draws them once, here, and hands them down).
pub fn within_run(spec: &RunSpec) -> Vec<NemesisEvent> {
    match spec.workload {
        Workload::Swarm { run_ms, .. } => schedule(spec).into_iter().filter(|e| e.at_ms < run_ms).collect(),
        Workload::Generic { .. } => Vec::new(),
    }
}

/// `spec` with `events` (its [`within_run`]) as its explicit schedule; a
/// generic workload's spec as it is (its faults come from its rounds).
pub fn written_out(spec: &RunSpec, events: Vec<NemesisEvent>) -> RunSpec {
    let mut s = spec.clone();
    if let Workload::Swarm { .. } = s.workload {
        s.nemesis = Some(events);
    }
    s
}

/// Applies one nemesis action to the cluster. What it leaves for later
/// (restarting the servers it crashed) runs as a task, returned.
pub async fn apply(cluster: &KvCluster, action: &Action) -> Option<JoinHandle<()>> {
    let n = cluster.n();
    let what = describe(action);
    cluster.note(kinds::NEMESIS, what);
    match action {
        Action::Partition { a, b } => {
            cluster.connect_all();
            cluster.partition(a, b);
        }
        Action::IsolateLeader => {
            let l = cluster.leader().unwrap_or(0);
            let rest: Vec<usize> = (0..n).filter(|i| *i != l).collect();
            cluster.connect_all();
            cluster.partition(&[l], &rest);
        }
        Action::CutOneWay { links } => {
            cluster.connect_all();
            cluster.cut_links(links);
        }
        Action::Bridge { a, b, .. } => {
            cluster.connect_all();
            cluster.cut_links(&between(a, b));
        }
        Action::Heal => cluster.connect_all(),
        Action::Crash { server } => {
            if cluster.is_alive(*server) {
                cluster.shutdown_server(*server);
            }
        }
        Action::Restart { server } => {
            if !cluster.is_alive(*server) {
                cluster.start_server(*server).await;
                cluster.connect_server(*server);
            }
        }
        Action::CrashLeader { down_ms } => {
            let l = cluster.leader()?;
            cluster.shutdown_server(l);
            return Some(tokio::spawn(restart_after(cluster.clone(), vec![l], *down_ms)));
        }
        Action::CrashLeaderAfterAppend { down_ms } => {
            let trap = cluster.trap::<AppendTrap>()?;
            let (cluster, down_ms) = (cluster.clone(), *down_ms);
            return Some(tokio::spawn(async move {
                if let Some(l) = trap.catch_leader(Duration::from_secs(1)).await {
                    // Cut off, it syncs the entry nobody else got; then it
                    // crashes, and the entry survives on its disk alone.
                    tokio::time::sleep(cluster.longest_sync() + Duration::from_millis(1)).await;
                    cluster.shutdown_server(l);
                    restart_after(cluster, vec![l], down_ms).await;
                }
            }));
        }
        Action::CrashLeaderOnCommit { down_ms } => {
            let trap = cluster.trap::<CommitTrap>()?;
            let l = cluster.leader()?;
            let (holders, cut) = bare_majority(cluster, l, &[]);
            // Its disk stalls: the followers' copies are durable first.
            cluster.stall_disk(l, COMMIT_STALL);
            let (cluster, down_ms) = (cluster.clone(), *down_ms);
            return Some(tokio::spawn(async move {
                if trap.catch_leader(l, Duration::from_secs(1)).await {
                    crash_caught(&cluster, l, holders, cut, down_ms).await;
                } else {
                    cluster.connect_all();
                }
            }));
        }
        Action::CrashRewrittenOnCommit { down_ms } => {
            let (append, rewrite) = (cluster.trap::<AppendTrap>()?, cluster.trap::<RewriteTrap>()?);
            let (cluster, down_ms) = (cluster.clone(), *down_ms);
            return Some(tokio::spawn(async move {
                // An entry nobody else has ends the log of a leader cut off.
                let Some(victim) = append.catch_leader(Duration::from_secs(1)).await else { return };
                // It rejoins the moment the others have a leader, most
                // often before that leader's first entry, which then
                // replaces the victim's last alone.
                let start = Instant::now();
                while cluster.leader().is_none_or(|l| l == victim) && start.elapsed() < REWRITE_WAIT {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                rewrite.watch(victim);
                cluster.connect_server(victim);
                let Some(rewriter) = rewrite.rewritten(REWRITE_WAIT, || cluster.leader()).await else {
                    rewrite.stop();
                    cluster.connect_all();
                    return;
                };
                let (holders, cut) = bare_majority(&cluster, victim, &[rewriter]);
                if rewrite.catch_commit(REWRITE_WAIT).await {
                    crash_caught(&cluster, victim, holders, cut, down_ms).await;
                } else {
                    cluster.connect_all();
                }
            }));
        }
        Action::CrashMinorityWithLeader { down_ms } => {
            let group = leader_and_minority(cluster)?;
            for s in &group {
                cluster.shutdown_server(*s);
            }
            return Some(tokio::spawn(restart_after(cluster.clone(), group, *down_ms)));
        }
        Action::RestartLagging => {
            let applied: Vec<(usize, u64)> = (0..n).filter_map(|i| cluster.applied(i).map(|a| (i, a))).collect();
            let top = applied.iter().map(|(_, a)| *a).max()?;
            let (lagging, at) = *applied.iter().min_by_key(|(i, a)| (*a, *i))?;
            if at < top {
                cluster.start_server(lagging).await;
                cluster.connect_server(lagging);
            }
        }
        Action::Pause { server, ms } => {
            let (cluster, server, ms) = (cluster.clone(), *server, *ms);
            return Some(tokio::spawn(async move { cluster.pause_server(server, ms).await }));
        }
        Action::PauseLeader { ms } => {
            let (cluster, l, ms) = (cluster.clone(), cluster.leader()?, *ms);
            return Some(tokio::spawn(async move { cluster.pause_server(l, ms).await }));
        }
        Action::LeaderMinority => {
            let minority = leader_and_minority(cluster)?;
            let rest: Vec<usize> = (0..n).filter(|i| !minority.contains(i)).collect();
            cluster.connect_all();
            cluster.partition(&minority, &rest);
        }
        Action::CrashAtWrite { write, moment, target, down_ms } => {
            let trap = cluster.trap::<WriteTrap>()?;
            let leader = cluster.leader();
            let servers: Vec<usize> = match target {
                WriteTarget::Leader => leader.into_iter().collect(),
                WriteTarget::Voter => (0..n).filter(|i| Some(*i) != leader && cluster.is_alive(*i)).collect(),
                WriteTarget::Any => (0..n).filter(|i| cluster.is_alive(*i)).collect(),
            };
            let (cluster, write, moment, down_ms) = (cluster.clone(), *write, *moment, *down_ms);
            return Some(tokio::spawn(async move {
                crash_at_write(&cluster, &trap, servers, (write, moment), WRITE_WAIT, down_ms).await;
            }));
        }
        Action::SplitVote { moment, down_ms } => {
            let trap = cluster.trap::<WriteTrap>()?;
            let l = cluster.leader()?;
            cluster.shutdown_server(l);
            let (cluster, moment, down_ms) = (cluster.clone(), *moment, *down_ms);
            return Some(tokio::spawn(async move {
                let start = Instant::now();
                restart_after(cluster.clone(), vec![l], SPLIT_LEADER_DOWN_MS).await;
                // What the old leader sent has landed by now. The hub holds
                // a shortest log (as its disk has it), so either side's
                // candidate is up to date enough for its vote.
                let mut others: Vec<usize> = (0..cluster.n()).collect();
                others.shuffle(&mut madsim::rand::thread_rng());
                let len = |i: &usize| cluster.disk(*i).log_len();
                let shortest = others.iter().map(len).min().unwrap_or(0);
                let hub = others.remove(others.iter().position(|i| len(i) == shortest).unwrap_or(0));
                let b = others.split_off(others.len() / 2);
                let a = others;
                cluster.connect_all();
                cluster.cut_links(&between(&a, &b));
                let wait = SPLIT_HOLD.saturating_sub(start.elapsed());
                if let Some((_, written)) = crash_caught_at_write(&cluster, &trap, vec![hub], WriteKind::HardState, moment, wait).await {
                    // The hub comes back on the other side: cut off from
                    // the side of the leader its vote made, if any.
                    if let Some(w) = cluster.leader() {
                        let side = if a.contains(&w) { &a } else { &b };
                        cluster.cut_links(&between(&[hub], side));
                    }
                    back_after(&cluster, hub, written, down_ms).await;
                }
                tokio::time::sleep(SPLIT_HOLD.saturating_sub(start.elapsed())).await;
                cluster.connect_all();
            }));
        }
        Action::LateMessages { hold_pct, restart } => {
            let l = cluster.leader()?;
            let t0 = cluster.term(l)?;
            let share = *hold_pct as f64 / 100.0;
            cluster.hold_messages(share);
            let (cluster, restart) = (cluster.clone(), *restart);
            return Some(tokio::spawn(async move {
                late_messages(&cluster, l, t0, share, restart).await;
                cluster.connect_all();
                cluster.release_held();
            }));
        }
        Action::LeaderReturns { hold_pct } => {
            let append = cluster.trap::<AppendTrap>()?;
            if *hold_pct > 0 {
                cluster.hold_messages(*hold_pct as f64 / 100.0);
            }
            let cluster = cluster.clone();
            return Some(tokio::spawn(async move {
                leader_returns(&cluster, &append).await;
                cluster.connect_all();
                cluster.release_held();
            }));
        }
        Action::StaleVotes => {
            let l = cluster.leader()?;
            let t0 = cluster.term(l)?;
            let cluster = cluster.clone();
            return Some(tokio::spawn(async move {
                stale_votes(&cluster, l, t0).await;
                cluster.connect_all();
                cluster.release_held();
            }));
        }
    }
    None
}

/// An action in a few words, e.g. `crash_leader (down 500 ms)`.
pub fn describe(action: &Action) -> String {
    let list = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let what = match action {
        Action::Partition { a, b } => format!("{{{}}} | {{{}}}", list(a), list(b)),
        Action::CutOneWay { links } => links.iter().map(|(x, y)| format!("{x}->{y}")).collect::<Vec<_>>().join(" "),
        Action::Bridge { bridge, a, b } => format!("{{{}}} | {{{}}}, {bridge} sees both", list(a), list(b)),
        Action::Crash { server } | Action::Restart { server } => format!("server {server}"),
        Action::CrashAtWrite { write, moment, target, down_ms } => {
            format!("{target:?} {moment:?} {} (down {down_ms} ms)", write.name()).to_lowercase()
        }
        Action::SplitVote { moment, down_ms } => format!("hub crashed {moment:?} its vote (down {down_ms} ms)").to_lowercase(),
        Action::LateMessages { hold_pct, restart: true } => format!("({hold_pct}% held, a server restarted as they go)"),
        Action::LateMessages { hold_pct, .. } | Action::LeaderReturns { hold_pct } => format!("({hold_pct}% held)"),
        a => a.down_ms().map_or(String::new(), |d| format!("(down {d} ms)")),
    };
    format!("{} {what}", action.kind()).trim_end().to_string()
}

/// Leaves `l` with a bare majority, so that its own copy of an entry is
/// one of those that make it committed: servers other than `l` are cut
/// off (`away` among them) until `l` and the rest are a bare majority. The
/// rest (the servers that may hold what `l` commits), and those cut off.
fn bare_majority(cluster: &KvCluster, l: usize, away: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let n = cluster.n();
    let mut others: Vec<usize> = (0..n).filter(|i| *i != l && !away.contains(i)).collect();
    others.shuffle(&mut madsim::rand::thread_rng());
    let mut cut = others.split_off((n / 2).min(others.len()));
    cut.extend_from_slice(away);
    cut.sort_unstable();
    let mut holders = others;
    holders.sort_unstable();
    cluster.connect_all();
    if !cut.is_empty() {
        cluster.partition(&cut, &with(holders.clone(), l));
    }
    (holders, cut)
}

/// `v` with `x`, sorted.
fn with(mut v: Vec<usize>, x: usize) -> Vec<usize> {
    v.push(x);
    v.sort_unstable();
    v
}

/// `l`, caught (cut off) the moment it applied an entry it committed with
/// `holders`, crashes; the holders are cut off in turn, so the majority
/// left (the servers `cut` before, and `l` once it restarts `down_ms`
/// later) has the entry only if `l`'s disk kept it. All heal a while after
/// the restart.
async fn crash_caught(cluster: &KvCluster, l: usize, holders: Vec<usize>, cut: Vec<usize>, down_ms: u64) {
    cluster.shutdown_server(l);
    cluster.connect_all();
    cluster.partition(&holders, &with(cut, l));
    restart_after(cluster.clone(), vec![l], down_ms).await;
    tokio::time::sleep(COMMIT_HOLD).await;
    cluster.connect_all();
}

/// How long each step of `crash_rewritten_on_commit` is waited for.
const REWRITE_WAIT: Duration = Duration::from_millis(2000);

/// The leader and other servers drawn at random, a minority in all.
fn leader_and_minority(cluster: &KvCluster) -> Option<Vec<usize>> {
    let l = cluster.leader()?;
    let mut others: Vec<usize> = (0..cluster.n()).filter(|i| *i != l).collect();
    others.shuffle(&mut madsim::rand::thread_rng());
    let mut group = vec![l];
    group.extend(others.into_iter().take(((cluster.n() - 1) / 2).saturating_sub(1)));
    group.sort_unstable();
    Some(group)
}

/// How long after the restart of a leader crashed at a commit the
/// followers that held the entry stay cut off.
const COMMIT_HOLD: Duration = Duration::from_millis(1000);

/// How long the disk of a leader to be crashed at a commit stalls (well
/// under the second the commit is waited for).
const COMMIT_STALL: Duration = Duration::from_millis(300);

/// Restarts `servers` (those still down) after `down_ms`.
async fn restart_after(cluster: KvCluster, servers: Vec<usize>, down_ms: u64) {
    tokio::time::sleep(Duration::from_millis(down_ms)).await;
    for s in servers {
        if !cluster.is_alive(s) {
            cluster.start_server(s).await;
            cluster.connect_server(s);
        }
    }
}

/// Applies `events` (sorted by time) at their times after `start`; returns
/// once every restart they left for later is done.
pub async fn run(cluster: KvCluster, events: Vec<NemesisEvent>, start: Instant) {
    let mut later = Vec::new();
    for e in events {
        tokio::time::sleep_until(start + Duration::from_millis(e.at_ms)).await;
        later.extend(apply(&cluster, &e.action).await);
    }
    for h in later {
        h.await.expect("nemesis task");
    }
}
