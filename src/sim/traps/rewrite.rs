//! The rewrite trap: walks a server whose log a new leader has just
//! rewritten into leading on a slow disk and committing its first entry
//! (the `CrashRewrittenOnCommit` nemesis), with the commit trap to catch
//! that commit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{CommitTrap, Kit, Trap};
use crate::check::history::{kinds, Event};
use crate::raft::{self, Index, Persister};
use crate::sim::addr::server_addr;
use crate::sim::monitor::{Monitor, Reached};
use crate::sim::network::SimNetwork;
use crate::sim::trace::RunLog;

/// Walks a server whose log a new leader has just rewritten into leading
/// on a slow disk and committing its first entry (see
/// [`RewriteTrap::watch`]): a server that counts a rewritten entry, or the
/// one after it, as durable before it is counts its own first entry as
/// leader towards a commit it cannot back.
pub struct RewriteTrap {
    phase: Mutex<Rewrite>,
    /// Rung at each step forward.
    moved: tokio::sync::Notify,
    net: Arc<SimNetwork>,
    log: RunLog,
    monitor: Monitor,
    commit_trap: Arc<CommitTrap>,
}

/// Where a [`RewriteTrap`] is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Rewrite {
    Off,
    /// Waiting for a leader's AppendEntries to replace entries of
    /// `victim`'s log.
    Watch { victim: usize },
    /// They were, in the step under way; the entries appended then name
    /// the leader (a Raft that reports no appends leaves it to
    /// [`RewriteTrap::rewritten`] to cut off whoever leads).
    Replaced { victim: usize },
    /// `rewriter`, the leader that did, was cut off from everyone in that
    /// step; waiting for `victim` to lead.
    Cut { victim: usize, rewriter: usize },
    /// `victim` leads and its disk stalls; waiting for its first entry.
    Leads { victim: usize },
    /// Its first entry went in at `index`, and the commit trap waits for it.
    Armed { victim: usize, index: Index },
}

/// How long the disk of a rewritten server stalls once it leads.
const REWRITE_STALL: Duration = Duration::from_millis(300);

impl RewriteTrap {
    /// The trap, off; `commit_trap` catches the rewritten server's first
    /// commit.
    pub fn new(kit: &Kit, commit_trap: Arc<CommitTrap>) -> Self {
        RewriteTrap {
            phase: Mutex::new(Rewrite::Off),
            moved: tokio::sync::Notify::new(),
            net: kit.net.clone(),
            log: kit.log.clone(),
            monitor: kit.monitor.clone(),
            commit_trap,
        }
    }

    /// Starts watching server `victim` for a leader's AppendEntries that
    /// replaces entries of its log. In the step it does, that leader is cut
    /// off from everyone; when `victim` then leads, its disk stalls for
    /// 300 ms in the step it becomes leader, and the first entry it takes
    /// from a clerk arms the commit trap (see [`CommitTrap::catch_leader`]).
    /// [`RewriteTrap::rewritten`] and [`RewriteTrap::catch_commit`] wait
    /// for the steps; [`RewriteTrap::stop`] ends the watch. (A Raft that
    /// reports no conflict truncations is never caught.)
    pub fn watch(&self, victim: usize) {
        *self.phase.lock().unwrap() = Rewrite::Watch { victim };
    }

    /// Ends the watch of [`RewriteTrap::watch`] wherever it is.
    pub fn stop(&self) {
        *self.phase.lock().unwrap() = Rewrite::Off;
    }

    /// Waits up to `within` for the watch to reach a phase `done` accepts.
    async fn phase(&self, within: Duration, done: impl Fn(Rewrite) -> bool) -> Option<Rewrite> {
        let deadline = Instant::now() + within;
        loop {
            let phase = *self.phase.lock().unwrap();
            if done(phase) {
                return Some(phase);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if phase == Rewrite::Off || tokio::time::timeout(left, self.moved.notified()).await.is_err() {
                return None;
            }
        }
    }

    /// Waits up to `within` for the watched server's log to be rewritten;
    /// the leader that did it (now cut off from everyone). `leader` says
    /// which server leads now (as `KvCluster::leader` does), asked only if
    /// no report named the leader that rewrote the log.
    pub async fn rewritten(&self, within: Duration, leader: impl FnOnce() -> Option<usize>) -> Option<usize> {
        match self.phase(within, |p| matches!(p, Rewrite::Replaced { .. } | Rewrite::Cut { .. })).await? {
            Rewrite::Cut { rewriter, .. } => Some(rewriter),
            Rewrite::Replaced { victim } => {
                // No append named the leader (that step is over): whoever
                // leads now did it.
                let rewriter = leader().filter(|l| *l != victim)?;
                *self.phase.lock().unwrap() = self.cut(victim, rewriter, "entries of its leader");
                Some(rewriter)
            }
            _ => None,
        }
    }

    /// Waits up to `within` for the rewritten server to lead and apply its
    /// first entry, which cuts it off from everyone in that step. Whether
    /// it was caught; the watch ends either way.
    pub async fn catch_commit(&self, within: Duration) -> bool {
        let start = Instant::now();
        let armed = self.phase(within, |p| matches!(p, Rewrite::Armed { .. })).await.is_some();
        let caught = armed && {
            let left = within.saturating_sub(start.elapsed());
            self.commit_trap.sprung(left).await
        };
        if caught {
            self.monitor.note(Reached::RewrittenLeaderCaught);
        }
        *self.phase.lock().unwrap() = Rewrite::Off;
        self.commit_trap.disarm();
        caught
    }

    /// Cuts `rewriter` off from everyone, for replacing entries of
    /// `victim`'s log with `what`; the phase that follows.
    fn cut(&self, victim: usize, rewriter: usize, what: &str) -> Rewrite {
        self.net.disconnect(server_addr(rewriter).ip());
        let detail = format!("caught the moment {what} replaced the end of server {victim}'s log");
        self.log.event(Event::new(0, kinds::DISCONNECT).server(rewriter as u64).detail(detail));
        self.moved.notify_one();
        Rewrite::Cut { victim, rewriter }
    }
}

impl Trap for RewriteTrap {
    /// Walks the watch on: a conflict truncation on the victim, the append
    /// that did it, the victim leading (its disk then stalls).
    fn event(&self, server: usize, persister: &Persister, e: &raft::RaftEvent) {
        use raft::{RaftEvent, Role, Situation};
        let mut phase = self.phase.lock().unwrap();
        match (*phase, e) {
            (Rewrite::Watch { victim }, RaftEvent::Situation(Situation::ConflictTruncated)) if victim == server => {
                *phase = Rewrite::Replaced { victim };
                self.moved.notify_one();
            }
            (Rewrite::Replaced { victim }, RaftEvent::Appended { leader, from, to, .. }) if victim == server => {
                *phase = self.cut(victim, *leader, &format!("its entries {from}..={to}"));
            }
            (Rewrite::Cut { victim, .. }, RaftEvent::Role { role: Role::Leader, .. }) if victim == server => {
                persister.stall(REWRITE_STALL);
                let ms = u64::try_from(REWRITE_STALL.as_millis()).unwrap_or(u64::MAX);
                let e = Event::new(0, kinds::DISK_STALL).server(victim as u64).duration_ms(ms).detail("as it leads with a rewritten log");
                self.log.event(e);
                *phase = Rewrite::Leads { victim };
                self.moved.notify_one();
            }
            _ => {}
        }
    }

    /// The victim, leading, took its first entry: arms the commit trap
    /// beyond the entry before it.
    fn started(&self, server: usize, _disk: &Persister, index: Index) {
        let mut phase = self.phase.lock().unwrap();
        if *phase == (Rewrite::Leads { victim: server }) {
            self.commit_trap.arm(server, index - 1);
            *phase = Rewrite::Armed { victim: server, index };
            self.moved.notify_one();
        }
    }
}
