//! The steps of the nemeses aimed at elections across crashes and at
//! late messages (`crash_at_write`, `split_vote`, `late_messages`,
//! `leader_returns`): what each does after it fires, as the task
//! [`super::apply`] returns.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;

use super::restart_after;
use crate::raft::persister::WriteKind;
use crate::sim::kv_cluster::KvCluster;
use crate::sim::monitor::Reached;
use crate::sim::traps::{AppendTrap, WriteMoment, WriteTrap};

/// How long after it begins holding messages a `late_messages`
/// cuts the leader off (messages of its term are held meanwhile).
pub(super) const LATE_CUT_AFTER: Duration = Duration::from_millis(200);

/// While a new leader is being elected, `late_messages` and
/// `leader_returns` hold back this many times fewer messages
/// than before (some of that election's own messages still arrive late).
pub(super) const ELECTION_HOLD_DIVISOR: f64 = 4.0;

/// How long the server a `late_messages` restarts is down.
pub(super) const LATE_RESTART_DOWN_MS: u64 = 20;

/// How long a `late_messages` lasts at most.
pub(super) const LATE_WAIT: Duration = Duration::from_secs(4);

/// How long a `leader_returns` tries to bring its leader back.
pub(super) const RETURN_WAIT: Duration = Duration::from_secs(5);

/// Waits until `done` holds, at most `within`, polling every ms.
pub(super) async fn wait_for(cluster: &KvCluster, done: impl Fn(&KvCluster) -> bool, within: Duration) -> bool {
    let start = Instant::now();
    while !done(cluster) {
        if start.elapsed() >= within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

/// The steps of `late_messages` after the hold began: leader
/// `l` of term `t0` is cut off, and once a leader of a later term is up
/// and `l` has heard of it, that leader is cut off in turn, and the held
/// messages go the moment the election after it begins (a server's term
/// passes that leader's), with a server restarted just before if
/// `restart`: messages of two terms back reach its candidates.
pub(super) async fn late_messages(cluster: &KvCluster, l: usize, t0: u64, share: f64, restart: bool) {
    let start = Instant::now();
    let left = || LATE_WAIT.saturating_sub(start.elapsed());
    tokio::time::sleep(LATE_CUT_AFTER).await;
    isolate(cluster, l);
    // The election that follows must get through: fewer held.
    cluster.hold_messages(share / ELECTION_HOLD_DIVISOR);
    if !wait_for(cluster, |c| led_after(c, t0), left()).await {
        return;
    }
    cluster.connect_all();
    let heard = |c: &KvCluster| c.term(l).is_none_or(|t| t > t0);
    wait_for(cluster, heard, left()).await;
    let Some(l1) = cluster.leader() else { return };
    let Some(t1) = cluster.term(l1) else { return };
    isolate(cluster, l1);
    cluster.hold_messages(0.0);
    let others: Vec<usize> = (0..cluster.n()).filter(|i| *i != l1 && cluster.is_alive(*i)).collect();
    let back = if restart { others.choose(&mut madsim::rand::thread_rng()).copied() } else { None };
    if let Some(s) = back {
        cluster.shutdown_server(s);
        restart_after(cluster.clone(), vec![s], LATE_RESTART_DOWN_MS).await;
    }
    let electing = |c: &KvCluster| (0..c.n()).any(|i| c.term(i).is_some_and(|t| t > t1));
    wait_for(cluster, electing, left()).await;
    cluster.release_held();
    wait_for(cluster, |c| led_after(c, t1), left()).await;
}

/// How long each wait of a `stale_votes` lasts at most.
pub(super) const STALE_WAIT: Duration = Duration::from_secs(3);

/// The steps of `stale_votes`: leader `l` of term `t0` is cut off; the
/// first server to campaign is held deaf (every message to it held) until
/// it campaigns again, then its own messages are cut off, `l` rejoins and
/// the votes it was granted go, until another server leads (counted as
/// [`Reached::StaleVotesLetGo`] when it does in the deaf one's term).
pub(super) async fn stale_votes(cluster: &KvCluster, l: usize, t0: u64) {
    isolate(cluster, l);
    let first = |c: &KvCluster| (0..c.n()).find(|&i| i != l && c.term(i).is_some_and(|t| t > t0));
    if !wait_for(cluster, |c| first(c).is_some(), STALE_WAIT).await {
        return;
    }
    let Some(x) = first(cluster) else { return };
    let Some(t) = cluster.term(x) else { return };
    cluster.hold_messages_to(x);
    // Hearing nothing, only its own timeout raises its term: it campaigns again.
    if !wait_for(cluster, |c| c.term(x).is_none_or(|u| u > t), STALE_WAIT).await {
        return;
    }
    let Some(tx) = cluster.term(x) else { return };
    let others: Vec<usize> = (0..cluster.n()).filter(|&i| i != x).collect();
    cluster.connect_all();
    cluster.cut_links(&others.iter().map(|&o| (x, o)).collect::<Vec<_>>());
    cluster.release_held();
    let rival = |c: &KvCluster| others.iter().any(|&o| c.leads(o) && c.term(o).is_some_and(|u| u >= tx));
    if wait_for(cluster, rival, STALE_WAIT).await && others.iter().any(|&o| cluster.leads(o) && cluster.term(o) == Some(tx)) {
        cluster.reached(Reached::StaleVotesLetGo);
    }
}

/// Whether some server leads in a term after `t`.
pub(super) fn led_after(cluster: &KvCluster, t: u64) -> bool {
    cluster.leader().and_then(|x| cluster.term(x)).is_some_and(|u| u > t)
}

/// Cuts `l` off from the other servers (after healing every link).
pub(super) fn isolate(cluster: &KvCluster, l: usize) {
    let rest: Vec<usize> = (0..cluster.n()).filter(|i| *i != l).collect();
    cluster.connect_all();
    cluster.partition(&[l], &rest);
}

/// The steps of `leader_returns`: the leader caught with an entry
/// of its own and cut off; it rejoins once another leads, and the others'
/// leaders are cut off in turn until it leads again (counted as
/// [`Reached::LeaderReturned`]).
pub(super) async fn leader_returns(cluster: &KvCluster, append: &AppendTrap) {
    let start = Instant::now();
    let share = cluster.held_share();
    if share > 0.0 {
        // Messages of its first term are held a while before it is caught.
        tokio::time::sleep(LATE_CUT_AFTER).await;
    }
    let Some(v) = append.catch_leader(Duration::from_secs(1)).await else { return };
    if share > 0.0 {
        // The elections that follow must get through: fewer held.
        cluster.hold_messages(share / ELECTION_HOLD_DIVISOR);
    }
    let Some(t1) = cluster.term(v) else { return };
    if !wait_for(cluster, |c| led_after(c, t1), RETURN_WAIT).await {
        return;
    }
    // It rejoins: the new leader's entries overwrite its own.
    cluster.connect_server(v);
    while start.elapsed() < RETURN_WAIT {
        match cluster.leader() {
            Some(l) if l == v && cluster.term(v).is_some_and(|t| t > t1) => {
                cluster.reached(Reached::LeaderReturned);
                return;
            }
            Some(l) if l != v => {
                isolate(cluster, l);
                let t = cluster.term(l).unwrap_or(0);
                wait_for(cluster, |c| led_after(c, t), RETURN_WAIT.saturating_sub(start.elapsed())).await;
                cluster.connect_all();
            }
            _ => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

/// Every link between `a` and `b`, both ways.
pub(super) fn between(a: &[usize], b: &[usize]) -> Vec<(usize, usize)> {
    a.iter().flat_map(|x| b.iter().flat_map(move |y| [(*x, *y), (*y, *x)])).collect()
}

/// Crashes the first of `servers` caught writing `write` (at `moment`)
/// within `within`, and restarts it `down_ms` later.
pub(super) async fn crash_at_write(
    cluster: &KvCluster,
    trap: &WriteTrap,
    servers: Vec<usize>,
    (write, moment): (WriteKind, WriteMoment),
    within: Duration,
    down_ms: u64,
) {
    let Some(caught) = crash_caught_at_write(cluster, trap, servers, write, moment, within).await else { return };
    let (s, written) = caught;
    back_after(cluster, s, written.filter(|_| write == WriteKind::HardState), down_ms).await;
}

/// Crashes the first of `servers` caught writing `write` (at `moment`)
/// within `within`: the server and its term as it wrote.
pub(super) async fn crash_caught_at_write(
    cluster: &KvCluster,
    trap: &WriteTrap,
    servers: Vec<usize>,
    write: WriteKind,
    moment: WriteMoment,
    within: Duration,
) -> Option<(usize, Option<u64>)> {
    let disk = |i: usize| cluster.disk(i);
    let s = trap.catch(servers, write, moment, within, disk).await?;
    let written = cluster.term(s);
    cluster.shutdown_server(s);
    Some((s, written))
}

/// Restarts server `s` `down_ms` from now. Crashed at its hard state's
/// write in term `written`, it is counted
/// ([`Reached::RestartedInWrittenTerm`]) if it comes back while that term
/// is still the highest any server has reached.
pub(super) async fn back_after(cluster: &KvCluster, s: usize, written: Option<u64>, down_ms: u64) {
    restart_after(cluster.clone(), vec![s], down_ms).await;
    let highest = (0..cluster.n()).filter_map(|i| cluster.term(i)).max();
    if written.is_some() && highest <= written {
        cluster.reached(Reached::RestartedInWrittenTerm);
    }
}

/// How long the leader a `split_vote` deposes is down: well
/// under the shortest election timeout, so the sides' candidates campaign
/// from the same term.
pub(super) const SPLIT_LEADER_DOWN_MS: u64 = 50;

/// How long a `split_vote`'s sides stay split.
pub(super) const SPLIT_HOLD: Duration = Duration::from_millis(1500);

/// How long a `crash_at_write` waits for its write.
pub(super) const WRITE_WAIT: Duration = Duration::from_secs(3);
