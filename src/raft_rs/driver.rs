//! The async side of the adapter: one [`RawNode`] behind a mutex, a madsim
//! ticker, a one-way message service on the node's [`Transport`], an outbox
//! pumped by a task on the node, and the Ready loop that persists, sends and
//! applies in the order raft-rs 0.7 requires.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use protobuf::Message as _;
use rand::Rng;
use raft::eraftpb::{Entry, EntryType, Message, MessageType};
use raft::RawNode;
use tokio::sync::mpsc;

use super::storage::PersistedStorage;
use crate::net::Transport;
use crate::raft::{ApplyMsg, EventSink, PeerId, RaftEvent, Role, Situation};
use raft::StateRole;

/// A raft-rs message on its way out: to whom, its bytes, and whether it
/// answers a message received (then it travels as a one-way answer, see
/// [`Transport::answer`], and meets reply faults like our Raft's replies).
pub(crate) type Outgoing = (SocketAddr, Vec<u8>, bool);

/// Whether raft-rs sends a message of this type in answer to one it got.
fn is_response(t: MessageType) -> bool {
    matches!(
        t,
        MessageType::MsgAppendResponse
            | MessageType::MsgRequestVoteResponse
            | MessageType::MsgRequestPreVoteResponse
            | MessageType::MsgHeartbeatResponse
            | MessageType::MsgReadIndexResp
    )
}

/// The transport service id raft-rs messages travel on.
pub const RAFT_RS_SERVICE: u16 = 3;

/// raft-rs numbers nodes from 1; the harness from 0.
pub fn raft_id(me: PeerId) -> u64 {
    me as u64 + 1
}

/// The harness id of raft id `id`, if it is one of `n` servers.
pub fn peer_of(id: u64, n: usize) -> Option<PeerId> {
    (id >= 1 && id <= n as u64).then(|| id as usize - 1)
}

/// A Ready whose writes are not yet durable: its number, the write its
/// sync must reach, and the messages that wait for it.
pub(crate) struct Held {
    seq: usize,
    number: u64,
    messages: Vec<Message>,
}

/// Waits for the disk in the background, then settles, as long as there is
/// something to wait for.
pub(crate) fn settle(inner: &Arc<Mutex<Inner>>, held: Vec<Held>) {
    for h in held {
        let inner = inner.clone();
        tokio::spawn(async move {
            let mut next = vec![h];
            while let Some(h) = next.pop() {
                let persister = inner.lock().unwrap().raw.store().persister();
                persister.sync_to(h.seq).await;
                let more = inner.lock().unwrap().settled(h);
                next.extend(more);
            }
        });
    }
}

pub(crate) struct Inner {
    pub raw: RawNode<PersistedStorage>,
    pub me: PeerId,
    pub peers: Vec<SocketAddr>,
    apply_tx: mpsc::UnboundedSender<ApplyMsg>,
    /// Encoded messages for the pump task on this node.
    out_tx: mpsc::UnboundedSender<Outgoing>,
    /// Election timeout range in ticks, [min, max).
    election_ticks: (usize, usize),
    /// Test-only: leave raft-rs's unseeded timeouts alone.
    unseeded: bool,
    /// Where role changes and the situations seen from outside raft-rs go.
    events: EventSink,
    /// The (term, role) last reported, and storage truncations seen.
    reported: (u64, StateRole),
    truncations: u64,
    /// The commit index last reported.
    committed: u64,
    pub killed: bool,
}

impl Inner {
    pub fn new(
        raw: RawNode<PersistedStorage>,
        me: PeerId,
        peers: Vec<SocketAddr>,
        apply_tx: mpsc::UnboundedSender<ApplyMsg>,
        out_tx: mpsc::UnboundedSender<Outgoing>,
        election_ticks: (usize, usize),
        unseeded: bool,
        events: EventSink,
    ) -> Self {
        let reported = (raw.raft.term, raw.raft.state);
        // The commit index it recovers is news to the harness too: the
        // first report says it, before the applies up to it.
        let committed = 0;
        let mut inner = Inner {
            raw,
            me,
            peers,
            apply_tx,
            out_tx,
            election_ticks,
            unseeded,
            events,
            reported,
            truncations: 0,
            committed,
            killed: false,
        };
        inner.pin_election_timeout();
        inner
    }

    /// raft-rs redraws its randomized election timeout from rand 0.8's
    /// thread RNG (OS-seeded, outside madsim's control) in `Raft::reset`,
    /// which every `become_*` and the constructor call. `reset` also zeroes
    /// `election_elapsed`, and nothing in raft-rs raises it again before the
    /// call (tick, step, propose, ...) returns; the timeout is read only by
    /// the next `tick_election`. So after every call, whenever
    /// `election_elapsed` is 0, the timeout is replaced by one drawn from
    /// madsim's seeded generator, before anything can read the unseeded
    /// one. `election_elapsed` is also zeroed without a reset (a message
    /// from the leader, a vote granted, a leader's quorum check); redrawing
    /// then too is harmless: the timeout stays uniform over the range since
    /// the last time the timer restarted. Whether a redraw happens depends
    /// only on seeded state, so the sequence of draws is reproducible.
    fn pin_election_timeout(&mut self) {
        if self.raw.raft.election_elapsed == 0 && !self.unseeded {
            let (lo, hi) = self.election_ticks;
            let t = madsim::rand::thread_rng().gen_range(lo..hi);
            self.raw.raft.set_randomized_election_timeout(t);
        }
    }

    /// Called after every call into the RawNode; returns what waits for
    /// the disk (hand it to [`settle`]).
    pub fn after_call(&mut self) -> Vec<Held> {
        self.pin_election_timeout();
        let held = self.process();
        self.report();
        held
    }

    /// Reports role and term changes, commit index advances, and the
    /// situations visible from outside raft-rs: a candidate campaigning again (split vote), a new
    /// leader holding entries beyond its commit index besides its own empty
    /// entry, a follower dropping a conflicting suffix.
    fn report(&mut self) {
        if self.killed {
            return;
        }
        let now = (self.raw.raft.term, self.raw.raft.state);
        if now != self.reported {
            let was = std::mem::replace(&mut self.reported, now);
            let role = |r: StateRole| match r {
                StateRole::Leader => Role::Leader,
                StateRole::Candidate | StateRole::PreCandidate => Role::Candidate,
                StateRole::Follower => Role::Follower,
            };
            // A pre-candidate is a candidate to the harness: going from one
            // to the other in the same term is no new role.
            if (was.0, role(was.1)) != (now.0, role(now.1)) {
                (self.events)(RaftEvent::Role { term: now.0, role: role(now.1) });
            }
            // A candidate whose election timed out campaigns again: with
            // pre-vote (on in this adapter; off by default in raft-rs) it
            // first turns pre-candidate.
            if was.1 == StateRole::Candidate && matches!(now.1, StateRole::Candidate | StateRole::PreCandidate) {
                (self.events)(RaftEvent::Situation(Situation::SplitVote));
            }
            if now.1 == StateRole::Leader {
                let log = &self.raw.raft.raft_log;
                if log.last_index() > log.committed + 1 {
                    (self.events)(RaftEvent::Situation(Situation::LeaderWithUncommitted));
                }
            }
        }
        let t = self.raw.store().truncations;
        for _ in self.truncations..t {
            (self.events)(RaftEvent::Situation(Situation::ConflictTruncated));
        }
        self.truncations = t;
        let c = self.raw.raft.raft_log.committed;
        if c > self.committed {
            self.committed = c;
            (self.events)(RaftEvent::Committed { index: c });
        }
    }

    /// Handles every pending Ready, in the order raft-rs 0.7 asks for when
    /// persistence is asynchronous: a leader's messages go at once (raft
    /// thesis 10.2.1); entries and hard state are written (readable by
    /// raft-rs through its Storage at once, durable after a sync); committed
    /// entries are applied; the Ready is handed back with
    /// `advance_append_async`. Its persisted messages (votes, append
    /// responses) wait until everything written so far is durable, and
    /// only then does raft-rs learn it is persisted (`on_persist_ready`, in
    /// `settled`), so a leader counts its own entries only once they are.
    /// Returns what waits for the disk.
    pub fn process(&mut self) -> Vec<Held> {
        let mut held = Vec::new();
        while !self.killed && self.raw.has_ready() {
            let mut rd = self.raw.ready();
            self.send_all(rd.take_messages());
            // The log is never compacted, so no snapshot is ever sent.
            if !rd.snapshot().is_empty() {
                self.fail("raft-rs produced a snapshot, which this adapter never makes");
                return held;
            }
            if let Err(e) = self.raw.mut_store().append(rd.entries()) {
                self.fail(&format!("persisting entries: {e}"));
                return held;
            }
            if let Some(hs) = rd.hs() {
                if let Err(e) = self.raw.mut_store().set_hard_state(hs.clone()) {
                    self.fail(&format!("persisting the hard state: {e}"));
                    return held;
                }
            }
            let persisted = rd.take_persisted_messages();
            self.apply(rd.take_committed_entries());
            let number = rd.number();
            self.raw.advance_append_async(rd);
            self.raw.advance_apply();
            // Settled once durable (at once, by the settling task, if this
            // Ready wrote nothing left to sync).
            held.push(Held { seq: self.raw.store().written(), number, messages: persisted });
        }
        held
    }

    /// The disk made `h`'s writes durable: tell raft-rs, send what waited,
    /// and handle what that made possible.
    pub fn settled(&mut self, h: Held) -> Vec<Held> {
        if self.killed {
            return Vec::new();
        }
        self.raw.on_persist_ready(h.number);
        self.send_all(h.messages);
        let held = self.process();
        self.report();
        held
    }

    /// Stops this server for good after a storage failure (fail-stop beats
    /// running on with a log raft-rs believes durable but is not).
    fn fail(&mut self, what: &str) {
        tracing::error!(server = self.me, "raft-rs adapter stops: {what}");
        self.killed = true;
    }

    fn send_all(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            let Some(to) = peer_of(m.to, self.peers.len()) else {
                tracing::warn!(server = self.me, to = m.to, "raft-rs addressed a message to an unknown node");
                continue;
            };
            let answer = is_response(m.get_msg_type());
            match m.write_to_bytes() {
                Ok(bytes) => {
                    let _ = self.out_tx.send((self.peers[to], bytes, answer));
                }
                Err(e) => tracing::error!(server = self.me, error = %e, "cannot encode a raft-rs message"),
            }
        }
    }

    /// Hands committed entries to the service, in index order. Entries
    /// without a command (the empty entry a new leader appends, or a
    /// configuration change) are delivered with an empty command, so that
    /// applied indexes have no gaps.
    fn apply(&mut self, entries: Vec<Entry>) {
        for e in entries {
            if self.killed {
                return;
            }
            let command = match e.get_entry_type() {
                EntryType::EntryNormal => e.data.to_vec(),
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    // Nothing here proposes membership changes, so this can
                    // only be the (empty) entry raft-rs appends to leave a
                    // joint configuration, which never arises either.
                    tracing::warn!(server = self.me, index = e.index, "ignoring a configuration-change entry");
                    Vec::new()
                }
            };
            let _ = self.apply_tx.send(ApplyMsg { index: e.index, term: e.term, command });
        }
    }

    /// Steps a message that arrived from server `from`.
    fn receive(&mut self, from: PeerId, m: Message) {
        let n = self.peers.len();
        if m.from != raft_id(from) || peer_of(m.to, n) != Some(self.me) {
            tracing::warn!(server = self.me, from, m.from, m.to, "dropping a misaddressed raft-rs message");
            return;
        }
        if m.get_msg_type() == MessageType::MsgSnapshot {
            // Never sent by a peer of ours (no compaction).
            tracing::warn!(server = self.me, from, "dropping a raft-rs snapshot message");
            return;
        }
        if let Err(e) = self.raw.step(m) {
            tracing::debug!(server = self.me, from, error = %e, "raft-rs refused a message");
        }
    }
}

/// Starts the tasks of one server on the current node: the message service,
/// the outbox pump and the ticker.
pub(crate) fn spawn(
    inner: Arc<Mutex<Inner>>,
    transport: Arc<Transport>,
    mut out_rx: mpsc::UnboundedReceiver<Outgoing>,
    tick: Duration,
) {
    let peers = inner.lock().unwrap().peers.clone();

    // Incoming messages: one-way, so the handler never replies.
    let svc = inner.clone();
    transport.register(
        RAFT_RS_SERVICE,
        Arc::new(move |from: SocketAddr, body: Vec<u8>| {
            let from_id = peers.iter().position(|a| a.ip() == from.ip());
            let inner = svc.clone();
            async move {
                let m = match Message::parse_from_bytes(&body) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(%from, error = %e, "dropping an undecodable raft-rs message");
                        return None;
                    }
                };
                let Some(from_id) = from_id else {
                    tracing::warn!(%from, "dropping a raft-rs message from a non-peer");
                    return None;
                };
                let mut g = inner.lock().unwrap();
                if !g.killed {
                    g.receive(from_id, m);
                    let held = g.after_call();
                    settle(&inner, held);
                }
                None
            }
            .boxed()
        }),
    );

    // Outgoing messages: a task each, so that one send's virtual latency
    // holds up no other. Runs on this node, so it dies with it.
    let pump_inner = inner.clone();
    tokio::spawn(async move {
        while let Some((dst, bytes, answer)) = out_rx.recv().await {
            if pump_inner.lock().unwrap().killed {
                return;
            }
            let t = transport.clone();
            if answer {
                tokio::spawn(async move { t.answer(dst, RAFT_RS_SERVICE, bytes).await });
            } else {
                tokio::spawn(async move { t.notify(dst, RAFT_RS_SERVICE, bytes).await });
            }
        }
    });

    // The clock.
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        loop {
            interval.tick().await;
            let mut g = inner.lock().unwrap();
            if g.killed {
                return;
            }
            g.raw.tick();
            let held = g.after_call();
            settle(&inner, held);
        }
    });
}
