//! The Raft core's in-memory cluster model, for the property tests of
//! `raft_core`: cores wired through a network that can lose, duplicate,
//! delay and reorder messages, crash and restart, each server's durable
//! state kept the way `raft::node` keeps it, and Raft's invariants checked
//! after every step (see `raft_core`'s header for the list).

use std::collections::{HashMap, HashSet, VecDeque};

use kvraft::raft::core::{Config, RaftCore, Ready, Role};
use kvraft::raft::message::*;

pub(crate) fn core_terms(c: &RaftCore) -> Vec<Term> {
    (1..=c.last_index()).map(|i| c.term_at(i).unwrap()).collect()
}

pub(crate) fn terms(log: &[Entry]) -> Vec<Term> {
    log.iter().map(|e| e.term).collect()
}

pub(crate) fn log_equals(c: &RaftCore, log: &[Entry]) -> bool {
    c.last_index() == log.len() as Index && log.iter().enumerate().all(|(i, e)| c.entry(i as Index + 1) == Some(e))
}

/// A server's durable state, updated from each Ready the way `raft::node`
/// updates its `Persister`: save the hard state, keep the first
/// `truncate_from - 1` entries, then append.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Store {
    pub(crate) hs: HardState,
    pub(crate) log: Vec<Entry>,
}

impl Store {
    pub(crate) fn persist(&mut self, r: &Ready) -> Result<(), String> {
        if let Some(hs) = r.hard_state {
            self.hs = hs;
        }
        match r.truncate_from {
            Some(from) => {
                if from == 0 || from as usize - 1 > self.log.len() {
                    return Err(format!(
                        "Ready truncates from {from} but only {} entries are persisted: appending would leave a gap",
                        self.log.len()
                    ));
                }
                self.log.truncate(from as usize - 1);
                self.log.extend(r.append.iter().cloned());
            }
            None if !r.append.is_empty() => return Err("Ready appends entries without truncate_from".into()),
            None => {}
        }
        Ok(())
    }

    pub(crate) fn boot(&self, id: PeerId, n: usize, cfg: Config, seed: u64) -> RaftCore {
        RaftCore::new(id, n, cfg, self.hs, self.log.clone(), seed)
    }
}

// ===================================================================
// The in-memory cluster
// ===================================================================

#[derive(Clone, Debug)]
pub(crate) enum Payload {
    Req(Request),
    Resp(Response),
}

#[derive(Clone, Debug)]
pub(crate) struct Msg {
    pub(crate) from: PeerId,
    pub(crate) to: PeerId,
    pub(crate) payload: Payload,
}

pub(crate) struct Server {
    pub(crate) core: RaftCore,
    pub(crate) store: Store,
    pub(crate) up: bool,
    pub(crate) boot: u64,
    /// What this server applied in its current boot (must be indices 1, 2, …).
    pub(crate) applied: Vec<ApplyMsg>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Stats {
    pub(crate) steps: u64,
    pub(crate) steps_with_leader: u64,
    pub(crate) delivered: u64,
    pub(crate) proposals_accepted: u64,
    pub(crate) crashes: u64,
    pub(crate) restarts: u64,
    /// Readys that removed persisted entries.
    pub(crate) truncations: u64,
    /// Entries applied by a server that had restarted at least once.
    pub(crate) reapplied: u64,
}

/// A cluster of cores wired through an in-memory network that can lose,
/// duplicate and reorder messages, with Raft's invariants checked as it runs.
pub(crate) struct Cluster {
    pub(crate) n: usize,
    pub(crate) cfg: Config,
    pub(crate) seed: u64,
    pub(crate) servers: Vec<Server>,
    pub(crate) net: VecDeque<Msg>,
    /// The last messages delivered, for late duplicates.
    pub(crate) delivered_log: VecDeque<Msg>,
    /// Servers talk only within the same group.
    pub(crate) group: Vec<u8>,

    // ----- what the checker remembers -----
    /// The leader seen in each term (Election Safety).
    pub(crate) leader_of_term: HashMap<Term, PeerId>,
    /// The committed log as applied anywhere: index i at [i - 1].
    pub(crate) committed: Vec<Entry>,
    /// For each committed index, the lowest term of a server seen with it
    /// committed: the entry was committed in this term or earlier, so every
    /// leader of this term or later must hold it (Leader Completeness).
    pub(crate) commit_term: Vec<Term>,
    pub(crate) committed_cmds: HashSet<Vec<u8>>,
    /// The vote each server persisted in each term, across boots.
    pub(crate) votes: HashMap<(PeerId, Term), PeerId>,
    pub(crate) proposed: HashSet<Vec<u8>>,
    /// Each server's commit index at the last check (in its current boot).
    pub(crate) last_commit: Vec<Index>,
    pub(crate) next_cmd: u64,
    pub(crate) stats: Stats,
}

pub(crate) fn boot_seed(seed: u64, s: PeerId, boot: u64) -> u64 {
    seed ^ ((s as u64 + 1) << 40) ^ boot.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl Cluster {
    pub(crate) fn new(n: usize, cfg: Config, seed: u64) -> Self {
        let servers = (0..n)
            .map(|s| Server {
                core: RaftCore::new(s, n, cfg.clone(), HardState::default(), vec![], boot_seed(seed, s, 0)),
                store: Store::default(),
                up: true,
                boot: 0,
                applied: vec![],
            })
            .collect();
        Cluster {
            n,
            cfg,
            seed,
            servers,
            net: VecDeque::new(),
            delivered_log: VecDeque::new(),
            group: vec![0; n],
            leader_of_term: HashMap::new(),
            committed: vec![],
            commit_term: vec![],
            committed_cmds: HashSet::new(),
            votes: HashMap::new(),
            proposed: HashSet::new(),
            last_commit: vec![0; n],
            next_cmd: 0,
            stats: Stats::default(),
        }
    }

    pub(crate) fn core(&self, s: PeerId) -> &RaftCore {
        &self.servers[s].core
    }

    pub(crate) fn summary(&self) -> String {
        (0..self.n)
            .map(|s| {
                let v = &self.servers[s];
                let c = &v.core;
                format!(
                    "\n  s{s}: {} {:?} term {} voted {:?} log {:?} commit {}",
                    if v.up { "up  " } else { "DOWN" },
                    c.role(),
                    c.term(),
                    c.voted_for(),
                    core_terms(c),
                    c.commit_index()
                )
            })
            .collect::<String>()
            + &format!("\n  groups {:?}, {} messages in flight", self.group, self.net.len())
    }

    /// Carries out `s`'s Ready like the driver: persist, then send, then apply.
    pub(crate) fn process(&mut self, s: PeerId) -> Result<(), String> {
        let ready = self.servers[s].core.take_ready();
        let hs_now = self.servers[s].core.hard_state();

        // 1. Persist.
        if let Some(hs) = ready.hard_state {
            let old = self.servers[s].store.hs;
            ensure!(hs == hs_now, "s{s}: Ready's hard state {hs:?} is not the current one {hs_now:?}");
            ensure!(hs.term >= old.term, "s{s}: persisted term went back from {} to {}", old.term, hs.term);
            ensure!(
                hs.term > old.term || old.voted_for.is_none() || old.voted_for == hs.voted_for,
                "s{s}: changed its vote within term {}: {:?} -> {:?}",
                hs.term,
                old.voted_for,
                hs.voted_for
            );
            if let Some(v) = hs.voted_for {
                let prev = *self.votes.entry((s, hs.term)).or_insert(v);
                ensure!(prev == v, "s{s} voted for both s{prev} and s{v} in term {} (across boots)", hs.term);
            }
        }
        if let Some(from) = ready.truncate_from {
            if (from as usize) <= self.servers[s].store.log.len() {
                self.stats.truncations += 1;
            }
        }
        self.servers[s].store.persist(&ready).map_err(|e| format!("s{s}: {e}"))?;
        let srv = &self.servers[s];
        ensure!(
            srv.store.hs == hs_now,
            "s{s}: persisted hard state {:?} != in-memory {:?} (a change was not in the Ready)",
            srv.store.hs,
            hs_now
        );
        ensure!(
            log_equals(&srv.core, &srv.store.log),
            "s{s}: persisted log {:?} != in-memory log {:?}",
            terms(&srv.store.log),
            core_terms(&srv.core)
        );

        // 2. Send.
        let c = &srv.core;
        for (to, req) in ready.messages {
            ensure!(to < self.n && to != s, "s{s} sends to s{to}");
            match &req {
                Request::Vote(a) => ensure!(
                    a.candidate == s && a.term == c.term() && c.role() == Role::Candidate,
                    "s{s} ({:?}, term {}) sent {a:?}",
                    c.role(),
                    c.term()
                ),
                Request::Append(a) => {
                    ensure!(
                        a.leader == s && a.term == c.term() && c.is_leader() && a.leader_commit <= c.commit_index(),
                        "s{s} ({:?}, term {}, commit {}) sent {a:?}",
                        c.role(),
                        c.term(),
                        c.commit_index()
                    );
                    ensure!(c.term_at(a.prev_log_index) == Some(a.prev_log_term), "s{s}: wrong prev_log_term in {a:?}");
                    ensure!(a.entries.len() <= self.cfg.max_batch, "s{s}: batch of {} > max_batch", a.entries.len());
                    for (k, e) in a.entries.iter().enumerate() {
                        ensure!(c.entry(a.prev_log_index + 1 + k as Index) == Some(e), "s{s}: sent entries not in its log");
                    }
                }
            }
            self.net.push_back(Msg { from: s, to, payload: Payload::Req(req) });
        }

        // 3. Apply.
        for m in ready.committed {
            self.apply(s, m)?;
        }
        Ok(())
    }

    pub(crate) fn apply(&mut self, s: PeerId, m: ApplyMsg) -> Result<(), String> {
        let srv = &self.servers[s];
        let want = srv.applied.len() as Index + 1;
        ensure!(m.index == want, "s{s} (boot {}) applied index {} but {want} was next", srv.boot, m.index);
        ensure!(m.index <= srv.core.commit_index(), "s{s} applied {} beyond its commit index", m.index);
        let e = Entry { term: m.term, command: m.command.clone() };
        ensure!(srv.core.entry(m.index) == Some(&e), "s{s} applied {m:?}, which is not in its log");
        let i = m.index as usize;
        if i <= self.committed.len() {
            ensure!(
                self.committed[i - 1] == e,
                "State Machine Safety: s{s} applied {e:?} at index {i}, where {:?} was applied before",
                self.committed[i - 1]
            );
        } else {
            ensure!(self.proposed.contains(&e.command), "s{s} applied a command never proposed: {e:?}");
            ensure!(self.committed_cmds.insert(e.command.clone()), "command {e:?} committed at two indices");
            self.committed.push(e);
            self.commit_term.push(Term::MAX);
        }
        if srv.boot > 0 {
            self.stats.reapplied += 1;
        }
        self.servers[s].applied.push(m);
        Ok(())
    }

    /// The invariants that must hold between steps.
    pub(crate) fn check(&mut self) -> Result<(), String> {
        for s in 0..self.n {
            let srv = &self.servers[s];
            let c = &srv.core;
            let mut prev = 0;
            for i in 1..=c.last_index() {
                let t = c.term_at(i).unwrap();
                ensure!(t >= 1 && t >= prev, "s{s}: log terms not increasing: {:?}", core_terms(c));
                prev = t;
            }
            ensure!(c.last_term() <= c.term(), "s{s}: log has term {} > current term {}", c.last_term(), c.term());
            ensure!(c.commit_index() <= c.last_index(), "s{s}: commit {} beyond log end", c.commit_index());
            if !srv.up {
                continue; // a crashed server's last state stays in the log checks below
            }
            ensure!(
                srv.applied.len() as Index == c.commit_index(),
                "s{s}: commit index {} but {} applied after take_ready",
                c.commit_index(),
                srv.applied.len()
            );
            for i in 0..c.commit_index() as usize {
                self.commit_term[i] = self.commit_term[i].min(c.term());
            }
            if c.is_leader() {
                let t = c.term();
                let l = *self.leader_of_term.entry(t).or_insert(s);
                ensure!(l == s, "Election Safety: s{l} and s{s} both leader in term {t}");
                let voters = (0..self.n).filter(|v| self.votes.get(&(*v, t)) == Some(&s)).count();
                ensure!(
                    voters * 2 > self.n,
                    "s{s} is leader of term {t} with only {voters} persisted votes of {}",
                    self.n
                );
                // Figure 2: a leader moves its commit index only to an entry
                // of its own term (older ones commit beneath it).
                if c.commit_index() > self.last_commit[s] {
                    ensure!(
                        c.term_at(c.commit_index()) == Some(t),
                        "leader s{s} of term {t} advanced its commit index to {}, an entry of term {:?}",
                        c.commit_index(),
                        c.term_at(c.commit_index())
                    );
                }
            }
            self.last_commit[s] = c.commit_index();
        }
        // Every committed entry stays durably stored on a majority (holding the
        // last one implies holding all, by Log Matching, checked below).
        if let Some(last) = self.committed.last() {
            let i = self.committed.len() - 1;
            let holders = (0..self.n).filter(|&s| self.servers[s].store.log.get(i) == Some(last)).count();
            ensure!(
                holders * 2 > self.n,
                "committed entry {} ({last:?}) is stored on only {holders} of {} servers",
                i + 1,
                self.n
            );
        }
        // Log Matching: same index and term => identical logs up to there.
        for a in 0..self.n {
            for b in a + 1..self.n {
                let (ca, cb) = (&self.servers[a].core, &self.servers[b].core);
                let mut j = ca.last_index().min(cb.last_index());
                while j > 0 && ca.term_at(j) != cb.term_at(j) {
                    j -= 1;
                }
                for i in 1..=j {
                    ensure!(
                        ca.entry(i) == cb.entry(i),
                        "Log Matching: s{a} and s{b} agree on the term at index {j} but differ at {i}: {:?} vs {:?}",
                        ca.entry(i),
                        cb.entry(i)
                    );
                }
            }
        }
        // Leader Completeness.
        for s in 0..self.n {
            let srv = &self.servers[s];
            if !srv.up || !srv.core.is_leader() {
                continue;
            }
            let t = srv.core.term();
            for (i, e) in self.committed.iter().enumerate() {
                if self.commit_term[i] <= t {
                    ensure!(
                        srv.core.entry(i as Index + 1) == Some(e),
                        "Leader Completeness: leader s{s} of term {t} lacks entry {} ({e:?}) committed by term {}",
                        i + 1,
                        self.commit_term[i]
                    );
                }
            }
        }
        Ok(())
    }

    // ----- actions -----

    pub(crate) fn tick(&mut self, s: PeerId) -> Result<(), String> {
        if !self.servers[s].up {
            return Ok(());
        }
        self.servers[s].core.tick();
        self.process(s)
    }

    pub(crate) fn propose(&mut self, s: PeerId) -> Result<Option<(Index, Term)>, String> {
        if !self.servers[s].up {
            return Ok(None);
        }
        let cmd = format!("cmd{}", self.next_cmd).into_bytes();
        self.next_cmd += 1;
        self.proposed.insert(cmd.clone());
        let c = &mut self.servers[s].core;
        let (was_leader, last, term) = (c.is_leader(), c.last_index(), c.term());
        let r = c.propose(cmd.clone());
        match r {
            Some((i, t)) => {
                ensure!(was_leader, "s{s} accepted a proposal while not leader");
                ensure!(i == last + 1 && t == term, "s{s}: propose returned ({i}, {t}), expected ({}, {term})", last + 1);
                ensure!(c.entry(i) == Some(&Entry { term: t, command: cmd }), "s{s}: proposal not in its log");
                self.stats.proposals_accepted += 1;
            }
            None => ensure!(!was_leader && c.last_index() == last, "s{s}: leader refused a proposal"),
        }
        self.process(s)?;
        Ok(r)
    }

    /// Proposes at a leader if there is one (the `k`th of them), else at `k % n`.
    pub(crate) fn propose_any(&mut self, k: usize) -> Result<(), String> {
        let leaders: Vec<PeerId> = (0..self.n).filter(|&s| self.servers[s].up && self.core(s).is_leader()).collect();
        let s = if leaders.is_empty() { k % self.n } else { leaders[k % leaders.len()] };
        self.propose(s).map(|_| ())
    }

    pub(crate) fn deliver_at(&mut self, k: usize, duplicate: bool) -> Result<(), String> {
        if self.net.is_empty() {
            return Ok(());
        }
        let k = k % self.net.len();
        let m = if duplicate { self.net[k].clone() } else { self.net.remove(k).unwrap() };
        self.deliver(m)
    }

    pub(crate) fn drop_at(&mut self, k: usize) {
        if !self.net.is_empty() {
            let k = k % self.net.len();
            self.net.remove(k);
        }
    }

    pub(crate) fn deliver(&mut self, m: Msg) -> Result<(), String> {
        let (from, to) = (m.from, m.to);
        if !self.servers[to].up || !self.servers[from].up || self.group[from] != self.group[to] {
            return Ok(()); // lost
        }
        self.stats.delivered += 1;
        if self.delivered_log.len() == 64 {
            self.delivered_log.pop_front();
        }
        self.delivered_log.push_back(m.clone());
        match m.payload {
            Payload::Req(req) => {
                let resp = self.servers[to].core.step_request(from, req.clone());
                self.process(to)?;
                // A response may only promise what is already persisted.
                let srv = &self.servers[to];
                match (&req, &resp) {
                    (Request::Vote(a), Response::Vote(r)) => {
                        ensure!(r.term == srv.core.term() && r.term >= a.term, "s{to}: vote reply {r:?} to {a:?}");
                        if r.granted {
                            ensure!(
                                r.term == a.term && srv.store.hs == HardState { term: a.term, voted_for: Some(from) },
                                "s{to} granted {a:?} but persisted {:?}",
                                srv.store.hs
                            );
                        }
                    }
                    (Request::Append(a), Response::Append(r)) => {
                        ensure!(r.term == srv.core.term() && r.term >= a.term, "s{to}: append reply {r:?}");
                        if r.success {
                            let end = a.prev_log_index + a.entries.len() as Index;
                            ensure!(r.match_index == end, "s{to}: match_index {} for an append ending at {end}", r.match_index);
                            let log = &srv.store.log;
                            ensure!(
                                log.len() as Index >= end
                                    && (a.prev_log_index == 0 || log[a.prev_log_index as usize - 1].term == a.prev_log_term)
                                    && log[a.prev_log_index as usize..end as usize] == a.entries[..],
                                "s{to} acknowledged entries it has not persisted"
                            );
                        }
                    }
                    _ => return Err(format!("s{to} answered {req:?} with {resp:?}")),
                }
                self.net.push_back(Msg { from: to, to: from, payload: Payload::Resp(resp) });
            }
            Payload::Resp(resp) => {
                self.servers[to].core.step_response(from, resp);
                self.process(to)?;
            }
        }
        Ok(())
    }

    /// Delivers everything in flight, oldest first, including what that sends.
    pub(crate) fn deliver_all(&mut self) -> Result<(), String> {
        let mut budget = 20_000;
        while let Some(m) = self.net.pop_front() {
            self.deliver(m)?;
            budget -= 1;
            ensure!(budget > 0, "message storm: 20000 deliveries without quiescence{}", self.summary());
        }
        Ok(())
    }

    /// The server stops: volatile state and messages to/from it are lost.
    pub(crate) fn crash(&mut self, s: PeerId) {
        if self.servers[s].up {
            self.servers[s].up = false;
            self.net.retain(|m| m.from != s && m.to != s);
            self.delivered_log.retain(|m| m.from != s && m.to != s);
            self.stats.crashes += 1;
        }
    }

    /// Boots `s` again from its store (crashing it first if it is up).
    pub(crate) fn restart(&mut self, s: PeerId) -> Result<(), String> {
        self.crash(s);
        let boot = self.servers[s].boot + 1;
        let seed = boot_seed(self.seed, s, boot);
        let srv = &mut self.servers[s];
        srv.core = srv.store.boot(s, self.n, self.cfg.clone(), seed);
        srv.boot = boot;
        srv.applied.clear();
        self.last_commit[s] = 0;
        srv.up = true;
        self.stats.restarts += 1;
        let c = &srv.core;
        ensure!(c.hard_state() == srv.store.hs, "s{s}: rebooted with {:?}, stored {:?}", c.hard_state(), srv.store.hs);
        ensure!(log_equals(c, &srv.store.log), "s{s}: rebooted log differs from the stored one");
        ensure!(c.role() == Role::Follower && c.commit_index() == 0, "s{s}: rebooted as {:?}", c.role());
        self.process(s)
    }

    pub(crate) fn set_groups(&mut self, groups: &[u8]) {
        self.group.copy_from_slice(groups);
    }

    pub(crate) fn heal(&mut self) {
        self.group = vec![0; self.n];
    }

    pub(crate) fn act(&mut self, a: &Action) -> Result<(), String> {
        let n = self.n;
        match *a {
            Action::Tick(s) => self.tick(s % n)?,
            Action::TickAll => {
                for s in 0..n {
                    self.tick(s)?;
                }
            }
            Action::Deliver(k) => self.deliver_at(k, false)?,
            Action::Replay(k) => {
                if !self.delivered_log.is_empty() {
                    let m = self.delivered_log[k % self.delivered_log.len()].clone();
                    self.deliver(m)?;
                }
            }
            Action::DeliverRecent(k) => {
                let len = self.net.len();
                if len > 0 {
                    self.deliver_at(len - 1 - k % len.min(4), false)?;
                }
            }
            Action::Duplicate(k) => self.deliver_at(k, true)?,
            Action::Drop(k) => self.drop_at(k),
            Action::Propose(k) => self.propose_any(k)?,
            Action::Crash(s) => self.crash(s % n),
            Action::Restart(k) => {
                // Reboot a crashed server if there is one, else reboot a running one.
                let down: Vec<PeerId> = (0..n).filter(|&s| !self.servers[s].up).collect();
                let s = if down.is_empty() { k % n } else { down[k % down.len()] };
                self.restart(s)?
            }
            Action::Partition(mask) => {
                let groups: Vec<u8> = (0..n).map(|s| (mask >> s) & 1).collect();
                self.set_groups(&groups);
            }
            Action::Heal => self.heal(),
        }
        self.stats.steps += 1;
        if (0..n).any(|s| self.servers[s].up && self.core(s).is_leader()) {
            self.stats.steps_with_leader += 1;
        }
        Ok(())
    }

    /// Ends the faults: heals the network, restarts crashed servers, then
    /// ticks everyone and delivers everything until one leader has committed
    /// an entry of its term on every server, and checks all servers applied
    /// the same commands.
    pub(crate) fn settle(&mut self) -> Result<(), String> {
        self.heal();
        for s in 0..self.n {
            if !self.servers[s].up {
                self.restart(s)?;
            }
        }
        self.check()?;
        const ROUNDS: usize = 400;
        for _ in 0..ROUNDS {
            for s in 0..self.n {
                self.tick(s)?;
            }
            self.deliver_all()?;
            self.check()?;
            let leaders: Vec<PeerId> = (0..self.n).filter(|&s| self.core(s).is_leader()).collect();
            let &[l] = &leaders[..] else { continue };
            let lc = self.core(l);
            if lc.last_term() != lc.term() {
                // Entries of earlier terms commit only beneath one of this term.
                self.propose(l)?;
                continue;
            }
            let last = lc.last_index();
            if (0..self.n).all(|s| self.core(s).commit_index() == last && self.core(s).last_index() == last) {
                ensure!(self.committed.len() as Index == last, "settled at {last} but {} committed", self.committed.len());
                for s in 0..self.n {
                    ensure!(log_equals(self.core(s), &self.committed), "s{s}'s log differs after settling");
                    let cmds: Vec<&Vec<u8>> = self.servers[s].applied.iter().map(|m| &m.command).collect();
                    let want: Vec<&Vec<u8>> = self.committed.iter().map(|e| &e.command).collect();
                    ensure!(cmds == want, "s{s} applied different commands after settling");
                }
                return Ok(());
            }
        }
        Err(format!("no agreement after {ROUNDS} rounds of reliable delivery:{}", self.summary()))
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Action {
    Tick(usize),
    TickAll,
    /// Deliver the in-flight message at this position (mod the queue length):
    /// random positions reorder.
    Deliver(usize),
    /// Deliver one of the 4 newest messages in flight (old ones linger).
    DeliverRecent(usize),
    /// Deliver again one of the last messages delivered: a duplicate that
    /// arrives arbitrarily late.
    Replay(usize),
    /// Deliver a copy and keep the message in flight.
    Duplicate(usize),
    Drop(usize),
    /// Propose at a leader (or at a random server if there is none).
    Propose(usize),
    /// Crash a server: it stays down until restarted.
    Crash(usize),
    /// Reboot a crashed server from its store (or, if none is down, crash
    /// and reboot a running one).
    Restart(usize),
    /// Split the servers in two groups by this bit mask.
    Partition(u8),
    Heal,
}
