//! Raft's consensus logic as a plain synchronous state machine.
//!
//! Inputs: [`RaftCore::tick`], [`RaftCore::step_request`],
//! [`RaftCore::step_response`], [`RaftCore::propose`]. Outputs, collected by
//! [`RaftCore::take_ready`]: what to persist, the requests to send, and the
//! newly committed entries to apply. The caller must persist a [`Ready`]'s
//! state before it sends its messages or returns a response produced in the
//! same step. No I/O, no clock, no global randomness: the core is tested
//! without a network and can be driven by any transport.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::message::*;
pub use super::message::Role;

/// Timing and batching parameters, in ticks of the driver's clock.
#[derive(Clone, Debug)]
pub struct Config {
    /// A leader sends heartbeats every this many ticks.
    pub heartbeat_ticks: u32,
    /// A follower starts an election after a random number of ticks in this
    /// range without hearing from a leader.
    pub election_ticks: std::ops::Range<u32>,
    /// At most this many entries in one AppendEntries.
    pub max_batch: usize,
    /// An AppendEntries unanswered for this many ticks is presumed lost and
    /// sent again, without waiting for the next heartbeat.
    pub retransmit_ticks: u32,
    /// The driver makes a Ready's log entries durable after the step that
    /// produced it and says so with [`RaftCore::persisted`]; until then a
    /// leader does not count its own copy of them towards a commit. Off:
    /// every Ready is durable the moment it is taken (the core's unit tests;
    /// [`super::node`] always turns it on, its disk syncs take time).
    pub async_persistence: bool,
}

impl Default for Config {
    fn default() -> Self {
        // With a 10 ms tick: heartbeats every 100 ms (the 6.5840 limit is 10/s)
        // and elections after 300-600 ms of silence.
        Config { heartbeat_ticks: 10, election_ticks: 30..60, max_batch: 1024, retransmit_ticks: 5, async_persistence: false }
    }
}

/// The leader's view of one follower.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    /// Next index to send.
    next: Index,
    /// Highest index known to be replicated there.
    matched: Index,
    /// An AppendEntries is outstanding: new proposals wait for its reply (or
    /// the next heartbeat) and are then sent together, one batch per trip.
    inflight: bool,
    /// The tick at which the outstanding AppendEntries was sent.
    sent_at: u64,
    /// The last index the most recent AppendEntries carried: until a reply
    /// acknowledges it, that message is the one outstanding, and replies to
    /// older ones start nothing new (so copies never multiply).
    sent_upto: Index,
    /// AppendEntries sent since the follower last answered anything. From
    /// [`PROBE_AFTER`] on, the follower is presumed unreachable (crashed,
    /// cut off, or this leader is stale) and is only *probed*: one
    /// AppendEntries of at most [`PROBE_BATCH`] entries per heartbeat, no
    /// retransmits, until it answers; its answer ends the probe and the
    /// rest of what it lacks goes out at once. So a leader cut off with a
    /// long uncommitted tail sends a few entries per heartbeat, not its
    /// whole window every retransmit (etcd/raft's and raft-rs's probe state
    /// work the same way). A probe carries entries so that a follower that
    /// comes back takes them, and the commit index, in the same step that
    /// makes it follow this leader.
    silent: u32,
}

/// A follower that left this many AppendEntries unanswered is probed (see
/// [`Progress::silent`]): the first send and one retransmit carry a whole
/// batch.
pub const PROBE_AFTER: u32 = 2;

/// At most this many entries in a probe.
pub const PROBE_BATCH: usize = 8;

impl Progress {
    fn probing(&self) -> bool {
        self.silent >= PROBE_AFTER
    }
}

/// What the driver must do after a step, in this order: persist, send, apply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Persist this hard state.
    pub hard_state: Option<HardState>,
    /// Persisted log: keep entries with index < `truncate_from`…
    pub truncate_from: Option<Index>,
    /// …then append these, starting right after the kept prefix.
    pub append: Vec<Entry>,
    /// Requests to send.
    pub messages: Vec<(PeerId, Request)>,
    /// Newly committed entries to apply, in index order.
    pub committed: Vec<ApplyMsg>,
    /// Role changes, votes, appends, commits and rare situations, in the
    /// order they happened (for a harness; nothing depends on them).
    pub events: Vec<RaftEvent>,
}

pub struct RaftCore {
    id: PeerId,
    n: usize,
    cfg: Config,
    rng: StdRng,

    // Persistent state.
    term: Term,
    voted_for: Option<PeerId>,
    /// log[0] is a sentinel (term 0) so that index i lives at log[i].
    log: Vec<Entry>,

    // Volatile state.
    role: Role,
    leader: Option<PeerId>,
    commit: Index,
    applied: Index,
    /// Entries up to here are durable on this server (with async
    /// persistence; otherwise the whole log is, once taken).
    durable: Index,
    elapsed: u32,
    election_timeout: u32,
    /// Ticks since boot.
    now: u64,
    votes: Vec<bool>,
    progress: Vec<Progress>,

    // Output not yet taken.
    hard_dirty: bool,
    /// Lowest log index changed since the last `take_ready`.
    unstable_from: Option<Index>,
    messages: Vec<(PeerId, Request)>,
    events: Vec<RaftEvent>,
}

impl RaftCore {
    /// A server `id` of `n`, recovering `hard_state` and `log` (entries from
    /// index 1). `seed` drives its randomized election timeouts.
    pub fn new(id: PeerId, n: usize, cfg: Config, hard_state: HardState, log: Vec<Entry>, seed: u64) -> Self {
        assert!(id < n, "server id {id} out of range for {n} servers");
        let mut full = Vec::with_capacity(log.len() + 1);
        full.push(Entry { term: 0, command: Vec::new() });
        full.extend(log);
        let mut core = RaftCore {
            id,
            n,
            cfg,
            rng: StdRng::seed_from_u64(seed),
            term: hard_state.term,
            voted_for: hard_state.voted_for,
            log: full,
            role: Role::Follower,
            leader: None,
            commit: 0,
            applied: 0,
            durable: 0,
            elapsed: 0,
            election_timeout: 0,
            now: 0,
            votes: vec![false; n],
            progress: vec![Progress::default(); n],
            hard_dirty: false,
            unstable_from: None,
            messages: Vec::new(),
            events: Vec::new(),
        };
        // The recovered log is durable.
        core.durable = core.last_index();
        core.reset_election_timer();
        core
    }

    // ----- queries -----

    pub fn id(&self) -> PeerId {
        self.id
    }
    pub fn term(&self) -> Term {
        self.term
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
    pub fn leader(&self) -> Option<PeerId> {
        self.leader
    }
    pub fn voted_for(&self) -> Option<PeerId> {
        self.voted_for
    }
    pub fn commit_index(&self) -> Index {
        self.commit
    }
    pub fn last_index(&self) -> Index {
        (self.log.len() - 1) as Index
    }
    pub fn last_term(&self) -> Term {
        self.log.last().map_or(0, |e| e.term)
    }
    /// Term of the entry at `index`, if the log has it.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        self.log.get(index as usize).map(|e| e.term)
    }
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index == 0 {
            return None;
        }
        self.log.get(index as usize)
    }
    pub fn hard_state(&self) -> HardState {
        HardState { term: self.term, voted_for: self.voted_for }
    }

    // ----- inputs -----

    /// One tick of the driver's clock.
    pub fn tick(&mut self) {
        self.elapsed += 1;
        self.now += 1;
        match self.role {
            Role::Leader => {
                if self.elapsed >= self.cfg.heartbeat_ticks {
                    self.elapsed = 0;
                    // Heartbeats also retransmit whatever is unacknowledged
                    // (or probe a silent follower).
                    for peer in self.peers() {
                        self.send_append(peer);
                    }
                } else {
                    let last = self.last_index();
                    let limit = self.cfg.retransmit_ticks as u64;
                    for peer in self.peers() {
                        let pr = self.progress[peer];
                        if !pr.probing() && pr.inflight && pr.next <= last && self.now - pr.sent_at >= limit {
                            self.send_append(peer);
                        }
                    }
                }
            }
            Role::Follower | Role::Candidate => {
                if self.elapsed >= self.election_timeout {
                    if self.role == Role::Candidate {
                        self.note(Situation::SplitVote);
                    }
                    self.campaign();
                }
            }
        }
    }

    /// Appends `command` if this server is leader and starts replicating it
    /// at once. Returns its (index, term), or None if not leader.
    pub fn propose(&mut self, command: Vec<u8>) -> Option<(Index, Term)> {
        if self.role != Role::Leader {
            return None;
        }
        self.log.push(Entry { term: self.term, command });
        let index = self.last_index();
        self.mark_unstable(index);
        self.events.push(RaftEvent::Appended { term: self.term, leader: self.id, from: index, to: index });
        // Alone, the leader's own copy is a majority (once durable).
        self.maybe_commit();
        for peer in self.peers() {
            if !self.progress[peer].inflight {
                self.send_append(peer);
            }
        }
        Some((index, self.term))
    }

    /// Handles a request from `from` and returns the response to send back
    /// (after persisting the Ready of this step). `from` is another
    /// server's id: the driver drops whatever comes from anyone else.
    pub fn step_request(&mut self, from: PeerId, req: Request) -> Response {
        debug_assert!(from < self.n && from != self.id, "a request from {from}, not a peer of {}", self.id);
        match req {
            Request::Vote(args) => Response::Vote(self.handle_vote(from, args)),
            Request::Append(args) => Response::Append(self.handle_append(from, args)),
        }
    }

    /// Handles the response `from` (another server's id) sent to one of our
    /// requests. Responses may be late, duplicated or reordered: each is
    /// judged on its own content.
    pub fn step_response(&mut self, from: PeerId, resp: Response) {
        debug_assert!(from < self.n && from != self.id, "a response from {from}, not a peer of {}", self.id);
        match resp {
            Response::Vote(r) => {
                if r.term > self.term {
                    // A late reply may reach a server that already stepped down.
                    if self.role != Role::Follower {
                        self.note(Situation::SteppedDownOnReply);
                    }
                    self.become_follower(r.term, None);
                } else if self.role == Role::Candidate && r.term == self.term && r.granted {
                    self.votes[from] = true;
                    if self.votes.iter().filter(|v| **v).count() * 2 > self.n {
                        self.become_leader();
                    }
                }
            }
            Response::Append(r) => {
                if r.term > self.term {
                    if self.role != Role::Follower {
                        self.note(Situation::SteppedDownOnReply);
                    }
                    self.become_follower(r.term, None);
                    return;
                }
                if self.role != Role::Leader || r.term != self.term {
                    return;
                }
                let last = self.last_index();
                let pr = &mut self.progress[from];
                // It answers (this reply may be late or a copy, but it can
                // be reached): replicate to it again.
                pr.silent = 0;
                if r.success {
                    pr.matched = pr.matched.max(r.match_index.min(last));
                    pr.next = pr.next.max(pr.matched + 1);
                    if pr.matched >= pr.sent_upto {
                        pr.inflight = false;
                    }
                    self.maybe_commit();
                } else {
                    pr.inflight = false;
                    let mut next = r.conflict_index;
                    if let Some(ct) = r.conflict_term {
                        // If we have entries of that term, skip to just after
                        // our last one; otherwise skip the follower's whole term.
                        match self.last_index_of_term(ct) {
                            Some(i) => next = i + 1,
                            None => self.note(Situation::BackupSkippedTerm),
                        }
                    }
                    let pr = &mut self.progress[from];
                    pr.next = next.clamp(pr.matched + 1, last + 1);
                }
                let pr = self.progress[from];
                if !pr.inflight && pr.next <= last {
                    self.send_append(from);
                }
            }
        }
    }

    /// The driver made every entry up to `index` durable (with
    /// [`Config::async_persistence`]); a leader may now count them.
    pub fn persisted(&mut self, index: Index) {
        self.durable = self.durable.max(index.min(self.last_index()));
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    /// Takes the output accumulated since the last call.
    pub fn take_ready(&mut self) -> Ready {
        let mut ready = Ready::default();
        if self.hard_dirty {
            self.hard_dirty = false;
            ready.hard_state = Some(self.hard_state());
        }
        if let Some(from) = self.unstable_from.take() {
            ready.truncate_from = Some(from);
            ready.append = self.log[from as usize..].to_vec();
        }
        ready.messages = std::mem::take(&mut self.messages);
        ready.events = std::mem::take(&mut self.events);
        ready.committed = (self.applied + 1..=self.commit)
            .map(|i| {
                let e = &self.log[i as usize];
                ApplyMsg { index: i, term: e.term, command: e.command.clone() }
            })
            .collect();
        self.applied = self.commit;
        ready
    }

    // ----- handlers -----

    /// A vote request from `from` (the candidate is whoever sent it).
    fn handle_vote(&mut self, from: PeerId, a: VoteArgs) -> VoteReply {
        if a.term > self.term {
            self.become_follower(a.term, None);
        }
        let up_to_date = a.last_log_term > self.last_term()
            || (a.last_log_term == self.last_term() && a.last_log_index >= self.last_index());
        let granted = a.term == self.term && self.voted_for.is_none_or(|v| v == from) && up_to_date;
        if a.term == self.term && !up_to_date {
            self.note(Situation::VoteRefusedLogBehind);
        }
        self.events.push(RaftEvent::Vote { term: a.term, candidate: from, granted });
        if granted {
            if self.voted_for != Some(from) {
                self.voted_for = Some(from);
                self.hard_dirty = true;
            }
            self.elapsed = 0;
        }
        VoteReply { term: self.term, granted }
    }

    fn handle_append(&mut self, from: PeerId, a: AppendArgs) -> AppendReply {
        let fail = |term, conflict_index, conflict_term| AppendReply {
            term,
            success: false,
            match_index: 0,
            conflict_index,
            conflict_term,
        };
        if a.term < self.term {
            self.note(Situation::StaleTermAppendRefused);
            return fail(self.term, 0, None);
        }
        self.become_follower(a.term, Some(from));
        self.elapsed = 0;

        if a.prev_log_index > self.last_index() {
            return fail(self.term, self.last_index() + 1, None);
        }
        let prev_term = self.log[a.prev_log_index as usize].term;
        if prev_term != a.prev_log_term {
            return fail(self.term, self.first_index_of_term(prev_term), Some(prev_term));
        }
        // Append what is new; truncate only at a real conflict, so a late or
        // duplicated AppendEntries never removes entries a newer one added.
        let mut index = a.prev_log_index;
        let mut appended: Option<Index> = None;
        for e in a.entries {
            index += 1;
            match self.log.get(index as usize) {
                Some(existing) if existing.term == e.term => {}
                Some(_) => {
                    assert!(index > self.commit, "leader {from} conflicts with committed entry {index}");
                    self.note(Situation::ConflictTruncated);
                    self.log.truncate(index as usize);
                    self.durable = self.durable.min(index - 1);
                    self.log.push(e);
                    self.mark_unstable(index);
                    appended.get_or_insert(index);
                }
                None => {
                    self.log.push(e);
                    self.mark_unstable(index);
                    appended.get_or_insert(index);
                }
            }
        }
        if let Some(first) = appended {
            self.events.push(RaftEvent::Appended { term: a.term, leader: from, from: first, to: index });
        }
        if self.term_at(index + 1) == Some(a.term) {
            // Entries of this same leader lie beyond what it carried: a
            // newer AppendEntries already brought them (and this one
            // brought nothing new).
            self.note(Situation::StaleAppend);
        }
        // `index` is the last entry this leader vouched for.
        let commit = a.leader_commit.min(index);
        if commit > self.commit {
            self.commit = commit;
            self.events.push(RaftEvent::Committed { index: commit });
        }
        AppendReply { term: self.term, success: true, match_index: index, conflict_index: 0, conflict_term: None }
    }

    // ----- transitions -----

    fn campaign(&mut self) {
        self.term += 1;
        self.role = Role::Candidate;
        self.events.push(RaftEvent::Role { term: self.term, role: Role::Candidate });
        self.leader = None;
        self.voted_for = Some(self.id);
        self.hard_dirty = true;
        self.votes = vec![false; self.n];
        self.votes[self.id] = true;
        self.reset_election_timer();
        if self.n == 1 {
            self.become_leader();
            return;
        }
        let args = VoteArgs {
            term: self.term,
            candidate: self.id,
            last_log_index: self.last_index(),
            last_log_term: self.last_term(),
        };
        for peer in self.peers() {
            self.messages.push((peer, Request::Vote(args.clone())));
        }
    }

    fn become_follower(&mut self, term: Term, leader: Option<PeerId>) {
        let changed = term > self.term || self.role != Role::Follower;
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.hard_dirty = true;
        }
        if self.role != Role::Follower {
            self.role = Role::Follower;
            self.reset_election_timer();
        }
        if changed {
            self.events.push(RaftEvent::Role { term: self.term, role: Role::Follower });
        }
        self.leader = leader;
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.elapsed = 0;
        let last = self.last_index();
        self.events.push(RaftEvent::Role { term: self.term, role: Role::Leader });
        if last > self.commit {
            self.note(Situation::LeaderWithUncommitted);
        }
        for (i, pr) in self.progress.iter_mut().enumerate() {
            *pr = Progress { next: last + 1, matched: if i == self.id { last } else { 0 }, inflight: false, sent_at: 0, sent_upto: 0, silent: 0 };
        }
        tracing::debug!(id = self.id, term = self.term, "became leader");
        // Announce leadership at once rather than at the next heartbeat.
        for peer in self.peers() {
            self.send_append(peer);
        }
    }

    // ----- helpers -----

    fn peers(&self) -> impl Iterator<Item = PeerId> {
        let (id, n) = (self.id, self.n);
        (0..n).filter(move |p| *p != id)
    }

    fn reset_election_timer(&mut self) {
        self.elapsed = 0;
        let r = self.cfg.election_ticks.clone();
        self.election_timeout = if r.is_empty() { r.start.max(1) } else { self.rng.gen_range(r) };
    }

    fn note(&mut self, s: Situation) {
        self.events.push(RaftEvent::Situation(s));
    }

    fn mark_unstable(&mut self, index: Index) {
        self.unstable_from = Some(self.unstable_from.map_or(index, |u| u.min(index)));
    }

    /// Sends `peer` what it lacks from its next index on: at most
    /// [`Config::max_batch`] entries, or [`PROBE_BATCH`] if it is silent.
    fn send_append(&mut self, peer: PeerId) {
        let last = self.last_index();
        let pr = &mut self.progress[peer];
        let next = pr.next.clamp(1, last + 1);
        let prev = next - 1;
        let batch = if pr.probing() { PROBE_BATCH.min(self.cfg.max_batch) } else { self.cfg.max_batch };
        let end = (last as usize + 1).min(next as usize + batch);
        pr.silent = pr.silent.saturating_add(1);
        pr.inflight = true;
        pr.sent_at = self.now;
        pr.sent_upto = prev + (end - next as usize) as Index;
        let args = AppendArgs {
            term: self.term,
            leader: self.id,
            prev_log_index: prev,
            prev_log_term: self.log[prev as usize].term,
            entries: self.log[next as usize..end].to_vec(),
            leader_commit: self.commit,
        };
        self.messages.push((peer, Request::Append(args)));
    }

    /// Commits the highest index replicated on a majority, if it is of the
    /// current term (an older entry commits only beneath one of these:
    /// Figure 8 of the Raft paper).
    fn maybe_commit(&mut self) {
        let mut matched: Vec<Index> = self.progress.iter().map(|p| p.matched).collect();
        // Its own copy counts once it is durable.
        matched[self.id] = if self.cfg.async_persistence { self.durable.min(self.last_index()) } else { self.last_index() };
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let n = matched[self.n / 2];
        if n > self.commit && self.log[n as usize].term == self.term {
            if self.log[self.commit as usize + 1].term < self.term {
                self.note(Situation::OldTermCommittedBeneath);
            }
            self.commit = n;
            self.events.push(RaftEvent::Committed { index: n });
        }
    }

    /// The last index of `term` in the log, if it has any (terms never
    /// decrease along the log; `term` is at least 1).
    fn last_index_of_term(&self, term: Term) -> Option<Index> {
        let end = self.log.partition_point(|e| e.term <= term);
        (self.log[end - 1].term == term).then_some((end - 1) as Index)
    }

    /// The first index of `term` in the log, which holds it (terms never
    /// decrease along the log, and the sentinel's term 0 is below it).
    fn first_index_of_term(&self, term: Term) -> Index {
        self.log.partition_point(|e| e.term < term) as Index
    }
}
