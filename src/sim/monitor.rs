//! The monitor: looks inside every run at the boundary the harness owns (the
//! apply stream, the `Consensus` trait, the events a Raft or the KV server
//! may report) and checks Raft's safety properties at the step where they
//! could break, plus exactly-once application and, at the end of a KV run,
//! convergence of the replicas. It also counts which rare situations the
//! run reached (coverage). It works for any Raft behind `MakeRaft`: what a
//! Raft does not report is polled, what it cannot answer is skipped and
//! said so, and what it does report is held against what it answers (the
//! checks rest on it).
//!
//! A violation fails the run at once, as a typed
//! [`Failure`](super::failure::Failure) of class `Safety(property)` that
//! names the servers, term and index it involves, and says in words what
//! each server did (boots, terms, the commands) and when.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};

use serde::Serialize;

use super::context;
use super::failure::Failure;
use super::property::Property;
use super::trace::RunLog;
use crate::kv::{KvEvent, KvEventSink};
use crate::raft::{ApplyMsg, Consensus, EventSink, Index, PeerId, RaftEvent, Role, Situation, Term};

/// How often [`Monitor::start_polling`] polls.
pub const POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// Situations a run can reach, counted per run (see [`Monitor::coverage`]).
/// Raft-internal ones come only from a Raft that reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reached {
    /// A server became leader.
    ElectionWon,
    /// A situation the Raft itself reported.
    Raft(Situation),
    /// A request answered from the duplicate table without going to Raft.
    DedupOnSubmit,
    /// A committed request the duplicate table recognised as a repeat.
    DedupOnApply,
    /// WrongLeader because another op committed at the request's index.
    IndexTaken,
    /// A server restarted with a non-empty log to replay.
    RestartReplaysLog,
    /// A crash lost writes that were not yet synced.
    UnsyncedWritesLost,
    /// A server booted on a log whose last write the crash had torn.
    TornTailRecovered,
    /// A server booted on a log with a corrupt record (a latent sector error).
    CorruptRecordFound,
    /// A paused leader woke up (stale, most likely).
    PausedLeaderResumed,
    /// A server whose log a new leader had just rewritten led next, on a
    /// stalled disk, and was caught the moment it applied its first entry
    /// (the nemesis `crash_rewritten_on_commit`).
    RewrittenLeaderCaught,
    /// A server crashed at a write of its hard state (term and vote) came
    /// back while that term was still the highest any server had reached:
    /// inside the election or term it had voted in (nemeses
    /// `crash_at_write` and `split_vote`).
    RestartedInWrittenTerm,
    /// A leader cut off with an entry of its own, overwritten by the next
    /// leader, led again in a later term (the nemesis `leader_returns`).
    LeaderReturned,
    /// A candidate's votes were let go a term late while another server
    /// led its new term (the nemesis `stale_votes`).
    StaleVotesLetGo,
    /// Near miss: a server became leader while the last entry committed
    /// in an earlier term was in the logs of exactly a bare majority of
    /// the servers (as their Rafts list them, [`Consensus::log_terms`]):
    /// every server without it could have won only with a vote from one
    /// that has it, so the election's safety hung on each of those
    /// refusing (a voter that skips the log check elects a leader without
    /// a committed entry here).
    BareMajorityAtElection,
    /// Near miss: two candidates of one term each came within one vote of
    /// a majority, counting its own vote and the grants reported (a Raft
    /// that reports its votes): one more vote to the loser, from a voter
    /// that forgot its vote, and the term has two leaders.
    RivalsOneVoteApart,
}

impl Reached {
    /// Every kind, in report order.
    pub fn all() -> Vec<Reached> {
        let mut v = vec![Reached::ElectionWon];
        v.extend(Situation::ALL.into_iter().map(Reached::Raft));
        v.extend([Reached::DedupOnSubmit, Reached::DedupOnApply, Reached::IndexTaken, Reached::RestartReplaysLog]);
        v.extend([Reached::UnsyncedWritesLost, Reached::TornTailRecovered, Reached::CorruptRecordFound, Reached::PausedLeaderResumed]);
        v.push(Reached::RewrittenLeaderCaught);
        v.push(Reached::RestartedInWrittenTerm);
        v.push(Reached::LeaderReturned);
        v.push(Reached::StaleVotesLetGo);
        v.extend([Reached::BareMajorityAtElection, Reached::RivalsOneVoteApart]);
        v
    }

    pub fn name(self) -> &'static str {
        match self {
            Reached::ElectionWon => "election_won",
            Reached::Raft(s) => s.name(),
            Reached::DedupOnSubmit => "dedup_on_submit",
            Reached::DedupOnApply => "dedup_on_apply",
            Reached::IndexTaken => "index_taken",
            Reached::RestartReplaysLog => "restart_replays_log",
            Reached::UnsyncedWritesLost => "unsynced_writes_lost",
            Reached::TornTailRecovered => "torn_tail_recovered",
            Reached::CorruptRecordFound => "corrupt_record_found",
            Reached::PausedLeaderResumed => "paused_leader_resumed",
            Reached::RewrittenLeaderCaught => "rewritten_leader_caught",
            Reached::RestartedInWrittenTerm => "restarted_in_written_term",
            Reached::LeaderReturned => "leader_returned",
            Reached::StaleVotesLetGo => "stale_votes_let_go",
            Reached::BareMajorityAtElection => "bare_majority_at_election",
            Reached::RivalsOneVoteApart => "rivals_one_vote_apart",
        }
    }
}

/// Shows a command in a violation message.
pub type ShowCommand = Arc<dyn Fn(&[u8]) -> String + Send + Sync>;

/// The first apply of one index: it is committed, with this term and command.
struct Committed {
    term: Term,
    command: Vec<u8>,
    server: usize,
    boot: u64,
    /// The lowest term any server was in when it applied this index (its
    /// `state()` at the apply). The entry was committed in this term or an
    /// earlier one: a server learns that an entry is committed from a
    /// leader of its own term, and that leader committed it in its term or
    /// learned it from an earlier one; terms never go back. A leader of a
    /// term above this bound must hold the entry (leader completeness).
    committed_by: Term,
}

struct ServerView {
    boot: u64,
    /// The next index this boot must apply.
    next: Index,
    /// Weak: the Raft's event sink holds the monitor, so a strong
    /// reference would make a cycle that outlives the run.
    raft: Option<Weak<dyn Consensus>>,
    /// Leaderships of this boot already seen (term), for polling.
    led: Option<Term>,
    /// The last role and term this boot reported (a Raft that reports
    /// events), and the highest commit index it reported.
    role: Option<(Term, Role)>,
    commit: Index,
    /// (clerk, request number) -> index of its fresh apply, this boot.
    fresh: HashMap<(u64, u64), Index>,
    /// What a reported situation says of an entry this boot will apply:
    /// index -> (the term it must come before, the situation). Checked at
    /// the apply; dropped when the role changes first.
    claims: BTreeMap<Index, (Term, Situation)>,
    /// A vote refused for the candidate's log was reported: the next vote
    /// reported must be a refusal.
    refusal_due: bool,
    /// A step down on a reply was reported in this term: the next role
    /// reported must be a follower's of a later term.
    step_down_from: Option<Term>,
}

impl ServerView {
    fn new(boot: u64) -> ServerView {
        ServerView {
            boot,
            next: 1,
            raft: None,
            led: None,
            role: None,
            commit: 0,
            fresh: HashMap::new(),
            claims: BTreeMap::new(),
            refusal_due: false,
            step_down_from: None,
        }
    }
}

impl State {
    /// A vote granted to `candidate` in `term` was reported: are two
    /// candidates of that term now within one vote of a majority each?
    fn granted(&mut self, term: Term, candidate: PeerId) {
        let t = self.votes.entry(term).or_default();
        *t.entry(candidate).or_default() += 1;
        // Each candidate's own vote, and the grants reported.
        let near = self.servers.len() as u64 / 2;
        if term > self.rivals_seen && t.values().filter(|g| **g + 1 >= near).count() >= 2 {
            self.rivals_seen = term;
            *self.coverage.entry(Reached::RivalsOneVoteApart).or_default() += 1;
        }
        // Only recent terms can still change.
        while self.votes.len() > 8 {
            self.votes.pop_first();
        }
    }
}

struct State {
    show: ShowCommand,
    servers: Vec<ServerView>,
    committed: Vec<Committed>,
    leaders: BTreeMap<Term, (usize, u64)>,
    /// Votes granted, as reported: term -> candidate -> grants; and the
    /// last term found with two candidates one vote apart.
    votes: BTreeMap<Term, BTreeMap<PeerId, u64>>,
    rivals_seen: Term,
    coverage: BTreeMap<Reached, u64>,
    completeness_checked: u64,
    completeness_skipped: u64,
    /// The committed prefix length as of the previous polling round.
    committed_at_last_poll: usize,
    violation: Option<Failure>,
    /// Where role changes and the rest of what Rafts report are recorded.
    log: Option<RunLog>,
}

/// What the monitor found, for the run's report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MonitorReport {
    /// Kind -> how often the run reached it (every kind listed, 0 included).
    pub coverage: BTreeMap<String, u64>,
    /// Leaderships whose log was checked for completeness, and those that
    /// could not be (the Raft cannot list its log).
    pub completeness_checked: u64,
    pub completeness_skipped: u64,
    /// Terms that had a leader.
    pub terms_led: u64,
    /// Highest index applied anywhere.
    pub committed: u64,
}

/// One run's monitor. Clones share it.
#[derive(Clone)]
pub struct Monitor(Arc<Mutex<State>>, Arc<tokio::sync::Notify>);

impl Monitor {
    /// A monitor for `n` servers; `show` renders commands in messages.
    pub fn new(n: usize, show: ShowCommand) -> Monitor {
        Monitor(Arc::new(Mutex::new(State {
            show,
            servers: (0..n).map(|_| ServerView::new(0)).collect(),
            committed: Vec::new(),
            leaders: BTreeMap::new(),
            votes: BTreeMap::new(),
            rivals_seen: 0,
            coverage: BTreeMap::new(),
            completeness_checked: 0,
            completeness_skipped: 0,
            committed_at_last_poll: 0,
            violation: None,
            log: None,
        })), Arc::new(tokio::sync::Notify::new()))
    }

    /// Records what every Raft reports (role changes, and in a trace the
    /// rest) in `log`, for sinks made from now on.
    pub fn set_log(&self, log: RunLog) {
        self.lock().log = Some(log);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A violation panics while holding the lock; later steps still see
        // the state (and the first violation).
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a violation and fails the run here. Inside a campaign run
    /// (quiet), as data: the first violation is kept and [`stopped`]
    /// (Self::stopped) wakes the executor, which ends the run at once with
    /// what it reached; the step that found it returns. Elsewhere (a test
    /// of its own), by raising it in the task that took the step.
    fn violated(&self, mut s: std::sync::MutexGuard<'_, State>, failure: Failure) {
        if s.violation.is_none() {
            s.violation = Some(failure.clone());
        }
        drop(s);
        if context::is_quiet() {
            self.1.notify_one();
            return;
        }
        failure.raise()
    }

    /// Completes once a violation was recorded in a campaign run (see
    /// [`violated`](Self::violated)).
    pub async fn stopped(&self) {
        self.1.notified().await
    }

    /// The first violation, if any (the run has already failed with it).
    pub fn violation(&self) -> Option<Failure> {
        self.lock().violation.clone()
    }

    /// Server `server` starts boot number `boot` with `raft` (made with the
    /// sink of [`raft_events`](Self::raft_events) for this boot);
    /// `log_to_replay` says whether its durable state holds log entries.
    pub fn boot(&self, server: usize, boot: u64, raft: Arc<dyn Consensus>, log_to_replay: bool) {
        let mut s = self.lock();
        let v = &mut s.servers[server];
        if v.boot != boot {
            *v = ServerView::new(boot);
        }
        v.raft = Some(Arc::downgrade(&raft));
        if boot > 1 && log_to_replay {
            *s.coverage.entry(Reached::RestartReplaysLog).or_default() += 1;
        }
    }

    /// Counts a situation the harness itself saw (a crash losing writes, a
    /// torn tail, a paused leader).
    pub fn note(&self, r: Reached) {
        *self.lock().coverage.entry(r).or_default() += 1;
    }

    /// The sink a Raft of server `server`, boot `boot`, reports events to.
    /// The boot begins here: what the Raft reports while it is being made
    /// (a commit index it recovered, say) counts.
    pub fn raft_events(&self, server: usize, boot: u64) -> EventSink {
        let m = self.clone();
        let log = {
            let mut s = self.lock();
            s.servers[server] = ServerView::new(boot);
            s.log.clone()
        };
        Arc::new(move |e| {
            if let Some(log) = &log {
                log.raft(server, &e);
            }
            match e {
                RaftEvent::Role { term, role } => {
                    m.reported_role(server, boot, term, role);
                    if role == Role::Leader {
                        let upto = m.lock().committed.len();
                        m.leader(server, boot, term, upto);
                    }
                }
                RaftEvent::Committed { index } => m.reported_commit(server, boot, index),
                RaftEvent::Situation(x) => {
                    m.reported_situation(server, boot, x);
                    *m.lock().coverage.entry(Reached::Raft(x)).or_default() += 1;
                }
                RaftEvent::Vote { term, candidate, granted } => m.reported_vote(server, boot, term, candidate, granted),
                RaftEvent::Appended { .. } => {}
            }
        })
    }

    /// The state, locked, if boot `boot` is server `server`'s current one
    /// (what an earlier boot still reports is not checked).
    fn in_boot(&self, server: usize, boot: u64) -> Option<std::sync::MutexGuard<'_, State>> {
        let s = self.lock();
        (s.servers[server].boot == boot).then_some(s)
    }

    /// Server `server` (boot `boot`) reports being `role` in `term`: terms
    /// never go back within a boot.
    fn reported_role(&self, server: usize, boot: u64, term: Term, role: Role) {
        let Some(mut s) = self.in_boot(server, boot) else { return };
        let v = &mut s.servers[server];
        if let Some((was, was_role)) = v.role.filter(|(t, _)| *t > term) {
            let what = format!("server {server} (boot {boot}) reported becoming {role:?} in term {term} after being {was_role:?} in term {was}: terms never go back");
            return self.violated(s, Failure::safety(Property::ReportedState, what).servers([server as u64]).term(term));
        }
        if v.role == Some((term, role)) {
            let what = format!(
                "server {server} (boot {boot}) reported becoming {role:?} in term {term}, which it already was: a report says what changed"
            );
            return self.violated(s, Failure::safety(Property::ReportedState, what).servers([server as u64]));
        }
        if let Some(from) = v.step_down_from.take().filter(|&from| term <= from || role != Role::Follower) {
            let what = format!(
                "server {server} (boot {boot}) reported {} in term {from}, then became {role:?} in term {term}: it steps down to follower of the higher term the reply carried",
                Situation::SteppedDownOnReply.name()
            );
            return self.violated(s, Failure::safety(Property::ReportedState, what).servers([server as u64]));
        }
        v.role = Some((term, role));
        v.claims.clear();
    }

    /// Server `server` (boot `boot`) reports situation `x`: in the role it
    /// happens in (before any role change it causes), so that the coverage
    /// table counts what happened. A server that has reported no role in
    /// this boot is a follower.
    fn reported_situation(&self, server: usize, boot: u64, x: Situation) {
        let Some(mut s) = self.in_boot(server, boot) else { return };
        let (term, role) = s.servers[server].role.unwrap_or((0, Role::Follower));
        let allowed: &[Role] = match x {
            Situation::SplitVote => &[Role::Candidate],
            Situation::LeaderWithUncommitted | Situation::BackupSkippedTerm | Situation::OldTermCommittedBeneath => &[Role::Leader],
            Situation::ConflictTruncated | Situation::StaleAppend => &[Role::Follower],
            Situation::SteppedDownOnReply => &[Role::Leader, Role::Candidate],
            Situation::StaleTermAppendRefused | Situation::VoteRefusedLogBehind => &[Role::Follower, Role::Candidate, Role::Leader],
        };
        if !allowed.contains(&role) {
            let what = format!(
                "server {server} (boot {boot}) reported situation {} while its last reported role was {role:?} in term {term}: it happens only to a {}",
                x.name(),
                allowed.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(" or ")
            );
            return self.violated(s, Failure::safety(Property::ReportedState, what).servers([server as u64]));
        }
        let v = &mut s.servers[server];
        match x {
            // Both say the first entry beyond the commit index (as last
            // reported: a commit this causes is reported after it) is of an
            // earlier term; its apply shows its term.
            Situation::LeaderWithUncommitted | Situation::OldTermCommittedBeneath => {
                v.claims.insert(v.commit + 1, (term, x));
            }
            Situation::VoteRefusedLogBehind => v.refusal_due = true,
            Situation::SteppedDownOnReply => v.step_down_from = Some(term),
            _ => {}
        }
    }

    /// Server `server` (boot `boot`) reports its answer to `candidate`'s
    /// request for a vote in `term`: a vote refused for the candidate's log
    /// is reported just before that refusal.
    fn reported_vote(&self, server: usize, boot: u64, term: Term, candidate: PeerId, granted: bool) {
        let Some(mut s) = self.in_boot(server, boot) else { return };
        let v = &mut s.servers[server];
        let due = std::mem::take(&mut v.refusal_due);
        if due && granted {
            let what = format!(
                "server {server} (boot {boot}) reported {} and then granted its vote in term {term} to server {candidate}",
                Situation::VoteRefusedLogBehind.name()
            );
            return self.violated(s, Failure::safety(Property::ReportedState, what).servers([server as u64]));
        }
        // A request of an earlier term is refused for its term, whatever
        // the log (one of a later term makes the voter adopt it first).
        if let Some((own, _)) = v.role.filter(|(own, _)| due && *own != term) {
            let what = format!(
                "server {server} (boot {boot}) reported {} for a request of term {term} while in term {own}: only a request of its own term is refused for the log",
                Situation::VoteRefusedLogBehind.name()
            );
            return self.violated(s, Failure::safety(Property::ReportedState, what).servers([server as u64]));
        }
        if granted {
            s.granted(term, candidate);
        }
    }

    /// Server `server` (boot `boot`) reports its commit index advanced to
    /// `index`: it only grows within a boot.
    fn reported_commit(&self, server: usize, boot: u64, index: Index) {
        let Some(mut s) = self.in_boot(server, boot) else { return };
        let v = &mut s.servers[server];
        if index <= v.commit {
            let what = format!("server {server} (boot {boot}) reported its commit index advancing to {index} after reporting {}: it only grows", v.commit);
            return self.violated(s, Failure::safety(Property::ReportedState, what).servers([server as u64]));
        }
        v.commit = index;
    }

    /// Whether server `server` (boot `boot`), applying `index`, reported it
    /// committed and answers `state()` with the role and term it last
    /// reported. Asked at its applies (events come synchronously with the
    /// step that caused them, before its applies), so no extra task
    /// disturbs the run's schedule.
    fn check_reported(&self, server: usize, boot: u64, index: Index, raft: &dyn Consensus) {
        let (term, leader) = raft.state();
        let s = self.lock();
        let v = &s.servers[server];
        if index > v.commit {
            let what = format!("server {server} (boot {boot}) applied index {index}, beyond the commit index it last reported ({})", v.commit);
            return self.violated(s, Failure::safety(Property::ReportedState, what).servers([server as u64]));
        }
        let reported = v.role;
        let agrees = match reported {
            Some((t, role)) => t == term && (role == Role::Leader) == leader,
            None => !leader,
        };
        if !agrees {
            let said = reported.map_or("nothing yet".to_string(), |(t, r)| format!("{r:?} in term {t}"));
            let is = if leader { "leader" } else { "not leader" };
            let what = format!("server {server} (boot {boot}) answers state() = term {term}, {is}, but its last reported role was {said}");
            return self.violated(s, Failure::safety(Property::ReportedState, what).servers([server as u64]));
        }
    }

    /// The sink the KV server of server `server`, boot `boot`, reports to.
    pub fn kv_events(&self, server: usize, boot: u64) -> KvEventSink {
        let m = self.clone();
        Arc::new(move |e| m.kv_event(server, boot, e))
    }

    fn kv_event(&self, server: usize, boot: u64, e: KvEvent) {
        let mut s = self.lock();
        match e {
            KvEvent::AnsweredFromTable => *s.coverage.entry(Reached::DedupOnSubmit).or_default() += 1,
            KvEvent::IndexTaken => *s.coverage.entry(Reached::IndexTaken).or_default() += 1,
            KvEvent::Applied { fresh: false, .. } => *s.coverage.entry(Reached::DedupOnApply).or_default() += 1,
            KvEvent::Applied { index, client, seq, fresh: true } => {
                let v = &mut s.servers[server];
                if v.boot != boot {
                    return;
                }
                if let Some(first) = v.fresh.insert((client, seq), index) {
                    let show = |s: &State, i: Index| {
                        s.committed.get(i as usize - 1).map_or("?".to_string(), |c| (s.show)(&c.command))
                    };
                    let what = format!(
                        "server {server} (boot {boot}) applied request #{seq} of clerk {client:x} twice as new (a write changes the data both times): at index {first} ({}) and at index {index} ({})",
                        show(&s, first),
                        show(&s, index)
                    );
                    return self.violated(s, Failure::safety(Property::ExactlyOnce, what).servers([server as u64]).index(index));
                }
            }
        }
    }

    /// Server `server` (boot `boot`) applied `m`: checks it against every
    /// earlier apply of every server and boot, and its place in this boot;
    /// and that a Raft reporting events answers `state()` as it reported.
    pub fn apply(&self, server: usize, boot: u64, m: &ApplyMsg) {
        let Some(raft) = self.in_boot(server, boot).map(|s| s.servers[server].raft.as_ref().and_then(Weak::upgrade)) else {
            return;
        };
        // The term the applier is in now: the entry was committed in it or
        // earlier (see `Committed::committed_by`). A Raft already dropped
        // gives no bound.
        let applier_term = raft.as_ref().map_or(Term::MAX, |r| r.state().0);
        if let Some(raft) = raft.filter(|r| r.reports_events()) {
            self.check_reported(server, boot, m.index, &*raft);
        }
        let mut s = self.lock();
        let v = &mut s.servers[server];
        if v.boot != boot {
            return;
        }
        let expect = v.next;
        if m.index != expect {
            let what = format!(
                "server {server} (boot {boot}) applied index {} (term {}, {}) where index {expect} was due: applies must come 1, 2, 3, ... with no gap and no repeat",
                m.index,
                m.term,
                (s.show)(&m.command)
            );
            return self.violated(s, Failure::safety(Property::StateMachineSafety, what).servers([server as u64]).index(m.index));
        }
        v.next += 1;
        if let Some((before, x)) = v.claims.remove(&m.index).filter(|(t, _)| m.term >= *t) {
            let what = format!(
                "server {server} (boot {boot}) reported {} in term {before}, which says the entry at index {}, the first beyond its commit index, is of an earlier term; it applied index {} of term {} ({})",
                x.name(),
                m.index,
                m.index,
                m.term,
                (s.show)(&m.command)
            );
            return self.violated(s, Failure::safety(Property::ReportedState, what).servers([server as u64]));
        }
        let i = m.index as usize - 1;
        if let Some(c) = s.committed.get_mut(i) {
            c.committed_by = c.committed_by.min(applier_term);
            let c = &s.committed[i];
            if c.term != m.term || c.command != m.command {
                let what = format!(
                    "index {}: server {} (boot {}) applied term {} {} but server {server} (boot {boot}) applied term {} {}",
                    m.index,
                    c.server,
                    c.boot,
                    c.term,
                    (s.show)(&c.command),
                    m.term,
                    (s.show)(&m.command)
                );
                let servers = [c.server as u64, server as u64];
                return self.violated(s, Failure::safety(Property::StateMachineSafety, what).servers(servers).index(m.index));
            }
        } else {
            debug_assert_eq!(i, s.committed.len());
            s.committed.push(Committed { term: m.term, command: m.command.clone(), server, boot, committed_by: applier_term });
            let rafts: Vec<Option<Arc<dyn Consensus>>> = s.servers.iter().map(|v| v.raft.as_ref().and_then(Weak::upgrade)).collect();
            drop(s);
            self.check_on_majority(server, boot, m, rafts);
        }
    }

    /// The first apply of `m` anywhere (by `server`, boot `boot`): whether
    /// a majority of `rafts`' logs hold it (a server down, `None`, counted
    /// as holding it). See [`Property::CommittedOnMajority`].
    fn check_on_majority(&self, server: usize, boot: u64, m: &ApplyMsg, rafts: Vec<Option<Arc<dyn Consensus>>>) {
        let n = rafts.len();
        let mut lacking = Vec::new();
        for (j, raft) in rafts.iter().enumerate() {
            let Some(raft) = raft else { continue };
            match raft.log_term(m.index) {
                // The Raft cannot list its log: nothing to check.
                None => return,
                Some(Some(t)) if t == m.term => {}
                Some(other) => lacking.push((j, other)),
            }
        }
        if (n - lacking.len()) * 2 > n {
            return;
        }
        let s = self.lock();
        let has = lacking
            .iter()
            .map(|(j, t)| match t {
                Some(t) => format!("server {j} has an entry of term {t} there"),
                None => format!("server {j} has no entry there"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let what = format!(
            "server {server} (boot {boot}) applied index {} (term {}, {}), the first apply of that index, while only {} of {n} servers' logs held it ({has}; a server down counts as holding it)",
            m.index,
            m.term,
            (s.show)(&m.command),
            n - lacking.len(),
        );
        let servers: Vec<u64> = std::iter::once(server as u64).chain(lacking.iter().map(|(j, _)| *j as u64)).collect();
        self.violated(s, Failure::safety(Property::CommittedOnMajority, what).servers(servers).index(m.index).term(m.term));
    }

    /// For a Raft that reports no events: polls every server's state every
    /// [`POLL`] of virtual time, for the rest of the run.
    pub fn start_polling(&self) {
        let m = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(POLL).await;
                m.poll();
            }
        });
    }

    /// Reads every server's state, for a Raft that reports no events.
    pub fn poll(&self) {
        let rafts: Vec<(usize, u64, Arc<dyn Consensus>)> = {
            let s = self.lock();
            s.servers.iter().enumerate().filter_map(|(i, v)| v.raft.as_ref().and_then(Weak::upgrade).map(|r| (i, v.boot, r))).collect()
        };
        // Entries committed before the previous round were committed before
        // any leadership first seen in this round began.
        let upto = self.lock().committed_at_last_poll;
        for (i, boot, raft) in rafts {
            if raft.reports_events() {
                continue;
            }
            let (term, leader) = raft.state();
            let seen = self.lock().servers[i].led == Some(term);
            if leader && !seen {
                let log = {
                    let mut s = self.lock();
                    s.servers[i].led = Some(term);
                    s.log.clone()
                };
                if let Some(log) = log {
                    // Seen by polling: the role change happened within the last POLL.
                    log.raft(i, &RaftEvent::Role { term, role: Role::Leader });
                }
                self.leader(i, boot, term, upto);
            }
        }
        let mut s = self.lock();
        s.committed_at_last_poll = s.committed.len();
    }

    /// Server `server` (boot `boot`) leads `term`; entries 1..=`upto` were
    /// committed before it did.
    fn leader(&self, server: usize, boot: u64, term: Term, upto: usize) {
        let mut s = self.lock();
        if s.servers[server].boot != boot {
            return;
        }
        match s.leaders.get(&term) {
            Some(&(other, other_boot)) if other != server => {
                let what = format!("servers {other} (boot {other_boot}) and {server} (boot {boot}) both lead term {term}");
                let servers = [other as u64, server as u64];
                return self.violated(s, Failure::safety(Property::ElectionSafety, what).servers(servers).term(term));
            }
            // Leading again after a reboot needs a new election, in a new
            // term: the same term twice means a vote or term was forgotten
            // (say, not durable at the crash), and the two leaderships may
            // append different entries at the same index and term.
            Some(&(_, other_boot)) if other_boot != boot => {
                let what = format!("server {server} leads term {term} in boot {other_boot} and again in boot {boot}");
                return self.violated(s, Failure::safety(Property::ElectionSafety, what).servers([server as u64]).term(term));
            }
            Some(_) => return,
            None => {
                s.leaders.insert(term, (server, boot));
            }
        }
        *s.coverage.entry(Reached::ElectionWon).or_default() += 1;
        // Leader completeness binds only entries committed in terms below
        // this one. Of those applied before the election, the last one known
        // to be committed in an earlier term fixes the prefix: an entry is
        // committed no later, and in no later term, than those after it.
        let upto = s.committed[..upto].iter().rposition(|c| c.committed_by < term).map_or(0, |i| i + 1);
        if upto == 0 {
            // Nothing known to be committed in an earlier term: nothing to check.
            return;
        }
        let expected: Vec<Term> = s.committed[..upto].iter().map(|c| c.term).collect();
        let Some(raft) = s.servers[server].raft.as_ref().and_then(Weak::upgrade) else { return };
        drop(s);
        // The Raft may be in the middle of the step that made it leader (its
        // own lock held): ask it once that step is over. Its log holds the
        // committed prefix from then on, in a correct Raft.
        let m = self.clone();
        tokio::spawn(async move { m.check_completeness(server, boot, term, raft, expected) });
    }

    /// Whether the new leader's log holds the `expected` committed prefix
    /// (leader completeness), and whether only a bare majority of logs
    /// held its last entry (a near miss, counted).
    fn check_completeness(&self, server: usize, boot: u64, term: Term, raft: Arc<dyn Consensus>, expected: Vec<Term>) {
        let Some(got) = raft.log_terms(expected.len() as Index) else {
            self.lock().completeness_skipped += 1;
            return;
        };
        let mut s = self.lock();
        s.completeness_checked += 1;
        let first_bad = (0..expected.len()).find(|&i| got.get(i) != Some(&expected[i]));
        if let Some(i) = first_bad {
            let c = &s.committed[i];
            let has = match got.get(i) {
                Some(t) => format!("an entry of term {t} there"),
                None => format!("a log of only {} entries", got.len()),
            };
            let what = format!(
                "server {server} (boot {boot}) became leader of term {term} with {has}, but index {} was committed in an earlier term (term {} or before: a server applied it in that term), with term {} {} (first applied by server {}, boot {})",
                i + 1,
                s.committed[expected.len() - 1].committed_by.min(c.committed_by),
                c.term,
                (s.show)(&c.command),
                c.server,
                c.boot
            );
            let failure = Failure::safety(Property::LeaderCompleteness, what).servers([server as u64, c.server as u64]);
            return self.violated(s, failure.term(term).index(i as u64 + 1));
        }
        // How many logs hold the last of those entries (log matching: and
        // all before it)?
        let n = s.servers.len();
        let others: Vec<Arc<dyn Consensus>> =
            (0..n).filter(|&i| i != server).filter_map(|i| s.servers[i].raft.as_ref().and_then(Weak::upgrade)).collect();
        drop(s);
        let at = expected.len() as Index;
        let holders = 1 + others.iter().filter(|r| r.log_terms(at).is_some_and(|l| l.last() == expected.last() && l.len() == expected.len())).count();
        if holders == n / 2 + 1 {
            self.note(Reached::BareMajorityAtElection);
        }
    }

    /// Fails the run: clerks `a` and `b` have the same id, so the duplicate
    /// table would take one's requests for the other's repeats.
    pub fn clerks_share_id(&self, a: usize, b: usize, id: u64) {
        let s = self.lock();
        let what = format!("clerks {a} and {b} both have id {id:x}: the duplicate table cannot tell their requests apart");
        self.violated(s, Failure::safety(Property::ExactlyOnce, what))
    }

    /// Fails the run with a convergence violation (the KV cluster compares
    /// the replicas).
    pub fn diverged(&self, what: String, servers: Vec<u64>) {
        let s = self.lock();
        self.violated(s, Failure::safety(Property::Convergence, what).servers(servers))
    }

    /// What the monitor saw.
    pub fn report(&self) -> MonitorReport {
        let s = self.lock();
        MonitorReport {
            coverage: Reached::all()
                .into_iter()
                .map(|k| (k.name().to_string(), s.coverage.get(&k).copied().unwrap_or(0)))
                .collect(),
            completeness_checked: s.completeness_checked,
            completeness_skipped: s.completeness_skipped,
            terms_led: s.leaders.len() as u64,
            committed: s.committed.len() as u64,
        }
    }
}
