//! Unit and property tests of the synchronous Raft state machine
//! ([`kvraft::raft::core::RaftCore`]), with no network and no runtime.
//!
//! The unit tests drive one core (or a few) by hand and check each rule of the
//! protocol. The property tests run a deterministic in-memory cluster of 3 or
//! 5 cores under a random schedule of ticks, deliveries, drops, duplicates,
//! reorderings, proposals, crashes and partitions, persisting every `Ready`
//! before its messages leave (as `raft::node` does), and check Raft's safety
//! invariants after every step and liveness once the faults stop.
//!
//! Checked after every step: one leader per term, elected by a majority of
//! persisted votes; at most one vote per server and term, across reboots;
//! persisted state (hard state and log) equal to memory after each Ready, and
//! replies promise only what is persisted; Log Matching; terms increasing along
//! each log; applies 1, 2, 3, … per boot, all servers' applied sequences
//! prefixes of one another (State Machine Safety), of proposed commands only,
//! each once; every committed entry stored on a majority; Leader Completeness;
//! a leader advances its commit index only to an entry of its own term. After
//! the faults: a leader emerges and every server applies the same commands.
//! The cluster model and its checks are in `support/raft_model.rs`.
//!
//! Run: `cargo test --release --test suite -- raft_core::`. A failing long
//! seeded run prints n, seed and profile; replay it with
//! `RAFT_CORE_REPLAY=n,seed,profile cargo test --release --test suite -- raft_core::replay --ignored --nocapture`.

use kvraft::raft::core::{Config, RaftCore, Ready, Role};
use kvraft::raft::message::*;
use proptest::collection::vec;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::raft_model::*;

// ===================================================================
// Helpers
// ===================================================================

/// Deterministic timers: every election timeout is exactly 5 ticks.
fn cfg_fixed() -> Config {
    Config { heartbeat_ticks: 2, election_ticks: 5..6, max_batch: 64, ..Config::default() }
}

/// Randomized timers and small batches, for the cluster property tests; half
/// the runs also retransmit unacknowledged AppendEntries between heartbeats.
fn cfg_random(seed: u64) -> Config {
    let retransmit_ticks = if seed % 2 == 0 { 2 } else { 1000 };
    Config { heartbeat_ticks: 3, election_ticks: 7..14, max_batch: 3, retransmit_ticks, async_persistence: false }
}

fn ent(term: Term, cmd: &str) -> Entry {
    Entry { term, command: cmd.as_bytes().to_vec() }
}

/// A log with these terms; entry i (from 1) has command "c{i}".
fn log_of(terms: &[Term]) -> Vec<Entry> {
    terms.iter().enumerate().map(|(i, t)| Entry { term: *t, command: format!("c{}", i + 1).into_bytes() }).collect()
}

fn core_log(c: &RaftCore) -> Vec<Entry> {
    (1..=c.last_index()).map(|i| c.entry(i).expect("entry within last_index").clone()).collect()
}

fn fresh(id: PeerId, n: usize) -> RaftCore {
    RaftCore::new(id, n, cfg_fixed(), HardState::default(), vec![], 1)
}

fn vote(term: Term, candidate: PeerId, last_log_index: Index, last_log_term: Term) -> Request {
    Request::Vote(VoteArgs { term, candidate, last_log_index, last_log_term })
}

fn append(term: Term, leader: PeerId, prev: Index, prev_term: Term, entries: Vec<Entry>, commit: Index) -> Request {
    Request::Append(AppendArgs {
        term,
        leader,
        prev_log_index: prev,
        prev_log_term: prev_term,
        entries,
        leader_commit: commit,
    })
}

fn append_args(req: &Request) -> &AppendArgs {
    match req {
        Request::Append(a) => a,
        other => panic!("expected AppendEntries, got {other:?}"),
    }
}

fn vote_reply(r: Response) -> VoteReply {
    match r {
        Response::Vote(v) => v,
        other => panic!("expected a vote reply, got {other:?}"),
    }
}

fn append_reply(r: Response) -> AppendReply {
    match r {
        Response::Append(a) => a,
        other => panic!("expected an append reply, got {other:?}"),
    }
}

fn ack(c: &mut RaftCore, peer: PeerId, match_index: Index) {
    let term = c.term();
    c.step_response(
        peer,
        Response::Append(AppendReply { term, success: true, match_index, conflict_index: 0, conflict_term: None }),
    );
}

fn nack(c: &mut RaftCore, peer: PeerId, conflict_index: Index, conflict_term: Option<Term>) {
    let term = c.term();
    c.step_response(
        peer,
        Response::Append(AppendReply { term, success: false, match_index: 0, conflict_index, conflict_term }),
    );
}

fn grant(c: &mut RaftCore, peer: PeerId, term: Term, granted: bool) {
    c.step_response(peer, Response::Vote(VoteReply { term, granted }));
}

/// Ticks `c` until its term grows (it campaigns); returns the Ready of that tick.
fn tick_until_campaign(c: &mut RaftCore) -> Ready {
    let term = c.term();
    for _ in 0..1000 {
        c.tick();
        if c.term() > term {
            return c.take_ready();
        }
    }
    panic!("server {} never campaigned", c.id());
}

/// Server 0 of `n`, recovered with `hs_term` and `log`, elected leader of the
/// next term by votes of servers 1..=n/2. Its Ready (heartbeats) is not taken.
fn make_leader(n: usize, hs_term: Term, log: Vec<Entry>) -> RaftCore {
    let mut c = RaftCore::new(0, n, cfg_fixed(), HardState { term: hs_term, voted_for: None }, log, 7);
    tick_until_campaign(&mut c);
    let t = c.term();
    for p in 1..=n / 2 {
        grant(&mut c, p, t, true);
    }
    assert!(c.is_leader());
    c
}

fn apply_msgs(entries: &[(Index, Term, &str)]) -> Vec<ApplyMsg> {
    entries.iter().map(|(i, t, c)| ApplyMsg { index: *i, term: *t, command: c.as_bytes().to_vec() }).collect()
}

/// Property tests run 10 times fewer cases in unoptimized builds.
const SCALE: u32 = if cfg!(debug_assertions) { 10 } else { 1 };

// ===================================================================
// Unit tests: elections
// ===================================================================

#[test]
fn single_server_elects_itself_and_commits_at_once() {
    let mut c = fresh(0, 1);
    assert_eq!(c.role(), Role::Follower);
    assert!(c.take_ready() == Ready::default());
    for _ in 0..4 {
        c.tick();
        assert_eq!(c.role(), Role::Follower);
        assert!(c.take_ready() == Ready::default());
    }
    c.tick();
    assert!(c.is_leader());
    assert_eq!((c.term(), c.leader(), c.voted_for()), (1, Some(0), Some(0)));
    let r = c.take_ready();
    assert_eq!(r.hard_state, Some(HardState { term: 1, voted_for: Some(0) }));
    assert!(r.messages.is_empty() && r.committed.is_empty() && r.truncate_from.is_none());

    assert_eq!(c.propose(b"x".to_vec()), Some((1, 1)));
    assert_eq!(c.commit_index(), 1);
    let r = c.take_ready();
    assert_eq!(r.hard_state, None);
    assert_eq!(r.truncate_from, Some(1));
    assert_eq!(r.append, vec![ent(1, "x")]);
    assert_eq!(r.committed, apply_msgs(&[(1, 1, "x")]));
    assert!(r.messages.is_empty());

    assert_eq!(c.propose(b"y".to_vec()), Some((2, 1)));
    assert_eq!(c.propose(b"z".to_vec()), Some((3, 1)));
    let r = c.take_ready();
    assert_eq!(r.truncate_from, Some(2));
    assert_eq!(r.append, vec![ent(1, "y"), ent(1, "z")]);
    assert_eq!(r.committed, apply_msgs(&[(2, 1, "y"), (3, 1, "z")]));
    assert!(c.take_ready() == Ready::default());

    for _ in 0..100 {
        c.tick();
    }
    assert!(c.is_leader() && c.term() == 1);
    assert!(c.take_ready() == Ready::default());
}

#[test]
fn candidate_requests_votes_after_election_timeout() {
    let mut c = RaftCore::new(0, 3, cfg_fixed(), HardState { term: 2, voted_for: None }, log_of(&[1, 1, 2]), 1);
    for _ in 0..4 {
        c.tick();
        assert!(c.take_ready() == Ready::default(), "no messages before the timeout");
    }
    c.tick();
    assert_eq!(c.role(), Role::Candidate);
    assert_eq!((c.term(), c.voted_for(), c.leader()), (3, Some(0), None));
    let r = c.take_ready();
    assert_eq!(r.hard_state, Some(HardState { term: 3, voted_for: Some(0) }));
    assert_eq!(r.messages, vec![(1, vote(3, 0, 3, 2)), (2, vote(3, 0, 3, 2))]);
    // No votes: after another timeout it tries again in the next term.
    for _ in 0..5 {
        c.tick();
    }
    assert_eq!((c.role(), c.term()), (Role::Candidate, 4));
    let r = c.take_ready();
    assert_eq!(r.hard_state, Some(HardState { term: 4, voted_for: Some(0) }));
    assert_eq!(r.messages, vec![(1, vote(4, 0, 3, 2)), (2, vote(4, 0, 3, 2))]);
}

#[test]
fn vote_granted_at_most_once_per_term() {
    let mut f = fresh(1, 3);
    let r = vote_reply(f.step_request(0, vote(1, 0, 0, 0)));
    assert_eq!(r, VoteReply { term: 1, granted: true });
    assert_eq!(f.take_ready().hard_state, Some(HardState { term: 1, voted_for: Some(0) }));
    // The same candidate again (a duplicated request): granted, nothing new to persist.
    assert!(vote_reply(f.step_request(0, vote(1, 0, 0, 0))).granted);
    assert_eq!(f.take_ready().hard_state, None);
    // Another candidate in the same term: denied, even with a longer log.
    let r = vote_reply(f.step_request(2, vote(1, 2, 5, 1)));
    assert_eq!(r, VoteReply { term: 1, granted: false });
    assert_eq!(f.voted_for(), Some(0));
    assert!(f.take_ready().hard_state.is_none());
    // A new term frees the vote.
    assert!(vote_reply(f.step_request(2, vote(2, 2, 0, 0))).granted);
    assert_eq!(f.take_ready().hard_state, Some(HardState { term: 2, voted_for: Some(2) }));
}

#[test]
fn vote_denied_for_stale_term() {
    let mut f = RaftCore::new(1, 3, cfg_fixed(), HardState { term: 5, voted_for: None }, vec![], 1);
    let r = vote_reply(f.step_request(0, vote(4, 0, 10, 4)));
    assert_eq!(r, VoteReply { term: 5, granted: false });
    assert_eq!((f.term(), f.voted_for()), (5, None));
    // Nothing to persist or send; the refusal is reported (for traces).
    let ready = f.take_ready();
    assert_eq!(ready.events, vec![RaftEvent::Vote { term: 4, candidate: 0, granted: false }]);
    assert_eq!(Ready { events: Vec::new(), ..ready }, Ready::default());
}

#[test]
fn vote_denied_if_candidate_log_not_up_to_date() {
    let mut f = RaftCore::new(1, 3, cfg_fixed(), HardState { term: 3, voted_for: None }, log_of(&[1, 1, 3]), 1);
    // Lower last term but a longer log: denied; the new term is adopted anyway.
    let r = vote_reply(f.step_request(0, vote(4, 0, 10, 2)));
    assert_eq!(r, VoteReply { term: 4, granted: false });
    assert_eq!((f.term(), f.voted_for(), f.role()), (4, None, Role::Follower));
    assert_eq!(f.take_ready().hard_state, Some(HardState { term: 4, voted_for: None }));
    // Same last term, shorter log: denied.
    assert!(!vote_reply(f.step_request(2, vote(4, 2, 2, 3))).granted);
    // Same last term, same length: granted.
    assert!(vote_reply(f.step_request(2, vote(4, 2, 3, 3))).granted);
    assert_eq!(f.take_ready().hard_state, Some(HardState { term: 4, voted_for: Some(2) }));
    // Higher last term, shorter log: granted (in a new term).
    assert!(vote_reply(f.step_request(0, vote(5, 0, 1, 4))).granted);
    assert_eq!(f.take_ready().hard_state, Some(HardState { term: 5, voted_for: Some(0) }));
}

#[test]
fn candidate_becomes_leader_on_majority() {
    let mut c = fresh(0, 3);
    tick_until_campaign(&mut c);
    assert_eq!((c.role(), c.term()), (Role::Candidate, 1));
    grant(&mut c, 1, 1, false);
    assert_eq!(c.role(), Role::Candidate, "a denial is not a vote");
    grant(&mut c, 1, 1, true);
    assert!(c.is_leader());
    assert_eq!(c.leader(), Some(0));
    let r = c.take_ready();
    assert_eq!(r.hard_state, None, "the vote for itself was persisted when it campaigned");
    // Leadership is announced at once with heartbeats.
    assert_eq!(r.messages, vec![(1, append(1, 0, 0, 0, vec![], 0)), (2, append(1, 0, 0, 0, vec![], 0))]);
    // A late vote changes nothing.
    grant(&mut c, 2, 1, true);
    assert!(c.is_leader() && c.take_ready() == Ready::default());
}

#[test]
fn votes_counted_once_and_only_for_the_current_term() {
    let mut c = fresh(0, 5);
    tick_until_campaign(&mut c);
    grant(&mut c, 1, 1, true);
    grant(&mut c, 1, 1, true); // duplicated reply
    assert_eq!(c.role(), Role::Candidate, "2 of 5 is no majority");
    tick_until_campaign(&mut c);
    assert_eq!(c.term(), 2);
    grant(&mut c, 1, 1, true); // late replies from the previous election
    grant(&mut c, 2, 1, true);
    grant(&mut c, 3, 1, true);
    assert_eq!(c.role(), Role::Candidate, "votes of term 1 do not count in term 2");
    grant(&mut c, 1, 2, true);
    assert_eq!(c.role(), Role::Candidate);
    grant(&mut c, 2, 2, true);
    assert!(c.is_leader());
}

#[test]
fn steps_down_on_higher_term_in_any_message() {
    type Input = Box<dyn Fn(&mut RaftCore)>;
    let inputs: Vec<(&str, Input)> = vec![
        ("vote reply", Box::new(|c: &mut RaftCore| grant(c, 1, 5, false))),
        (
            "append reply",
            Box::new(|c: &mut RaftCore| {
                c.step_response(
                    1,
                    Response::Append(AppendReply {
                        term: 5,
                        success: false,
                        match_index: 0,
                        conflict_index: 0,
                        conflict_term: None,
                    }),
                )
            }),
        ),
        ("vote request", Box::new(|c: &mut RaftCore| assert!(!vote_reply(c.step_request(2, vote(5, 2, 0, 0))).granted))),
        ("append request", Box::new(|c: &mut RaftCore| assert!(append_reply(c.step_request(2, append(5, 2, 0, 0, vec![], 0))).success))),
    ];
    for (what, input) in &inputs {
        // As leader (with an entry, so that the vote request's empty log is behind)…
        let mut l = make_leader(3, 0, vec![]);
        l.propose(b"a".to_vec()).unwrap();
        l.take_ready();
        input(&mut l);
        assert_eq!(l.role(), Role::Follower, "leader did not step down on a {what}");
        assert_eq!((l.term(), l.voted_for()), (5, None), "{what}");
        assert_eq!(l.take_ready().hard_state, Some(HardState { term: 5, voted_for: None }), "{what}");
        assert!(l.propose(b"b".to_vec()).is_none(), "{what}: a follower takes no proposals");
        // …and as candidate.
        let mut c = RaftCore::new(0, 3, cfg_fixed(), HardState::default(), log_of(&[1]), 3);
        tick_until_campaign(&mut c);
        input(&mut c);
        assert_eq!((c.role(), c.term(), c.voted_for()), (Role::Follower, 5, None), "candidate, {what}");
    }
    // The leader of a higher term is recorded as leader.
    let mut l = make_leader(3, 0, vec![]);
    l.step_request(2, append(5, 2, 0, 0, vec![], 0));
    assert_eq!(l.leader(), Some(2));
}

#[test]
fn candidate_steps_down_for_a_leader_of_its_term_and_leader_ignores_stale_terms() {
    let mut c = fresh(0, 3);
    tick_until_campaign(&mut c);
    let r = append_reply(c.step_request(1, append(1, 1, 0, 0, vec![], 0)));
    assert!(r.success && r.term == 1);
    assert_eq!((c.role(), c.leader(), c.voted_for()), (Role::Follower, Some(1), Some(0)));

    let mut l = make_leader(3, 3, vec![]); // leader of term 4
    l.take_ready();
    let r = append_reply(l.step_request(1, append(3, 1, 0, 0, vec![ent(3, "old")], 0)));
    assert_eq!((r.success, r.term), (false, 4));
    let r = vote_reply(l.step_request(1, vote(4, 1, 9, 4)));
    assert_eq!(r, VoteReply { term: 4, granted: false }, "the leader voted for itself in its term");
    grant(&mut l, 1, 3, false);
    assert!(l.is_leader() && l.term() == 4 && l.last_index() == 0);
}

// ===================================================================
// Unit tests: AppendEntries
// ===================================================================

#[test]
fn append_prev_mismatch_returns_conflict_info() {
    let mut f = RaftCore::new(1, 3, cfg_fixed(), HardState { term: 3, voted_for: None }, log_of(&[1, 1, 2, 2, 2]), 1);
    // prev beyond the end of the log: retry from just after it.
    let r = append_reply(f.step_request(0, append(3, 0, 7, 3, vec![ent(3, "x")], 0)));
    assert_eq!((r.success, r.term, r.conflict_index, r.conflict_term), (false, 3, 6, None));
    // prev's term differs: report that term and its first index.
    let r = append_reply(f.step_request(0, append(3, 0, 4, 3, vec![ent(3, "x")], 0)));
    assert_eq!((r.success, r.conflict_index, r.conflict_term), (false, 3, Some(2)));
    let r = append_reply(f.step_request(0, append(3, 0, 2, 3, vec![], 0)));
    assert_eq!((r.success, r.conflict_index, r.conflict_term), (false, 1, Some(1)));
    // A rejection changes nothing in the log.
    assert_eq!(core_log(&f), log_of(&[1, 1, 2, 2, 2]));
    assert!(f.take_ready() == Ready::default());
}

#[test]
fn leader_backs_up_using_conflict_info() {
    // Leader of term 5 with terms [1,1,3,3,4]; heartbeats start at next = 6.
    let mut l = make_leader(3, 4, log_of(&[1, 1, 3, 3, 4]));
    assert_eq!(l.term(), 5);
    let r = l.take_ready();
    assert_eq!(append_args(&r.messages[0].1).prev_log_index, 5);
    let resend = |l: &mut RaftCore| {
        let r = l.take_ready();
        assert_eq!(r.messages.len(), 1, "the reply triggers exactly one resend: {:?}", r.messages);
        let (to, req) = r.messages.into_iter().next().unwrap();
        assert_eq!(to, 1);
        let a = append_args(&req).clone();
        assert_eq!(a.prev_log_term, l.term_at(a.prev_log_index).unwrap());
        assert_eq!(a.entries, core_log(l)[a.prev_log_index as usize..]);
        a.prev_log_index
    };
    // The follower's conflicting term 2 is unknown to the leader: skip it all.
    nack(&mut l, 1, 3, Some(2));
    assert_eq!(resend(&mut l), 2);
    // Term 3 is known: resume right after the leader's last entry of term 3.
    nack(&mut l, 1, 2, Some(3));
    assert_eq!(resend(&mut l), 4);
    // The follower's log is short: resume at its end.
    nack(&mut l, 1, 2, None);
    assert_eq!(resend(&mut l), 1);
    // Never back up below what is known to match (a late rejection after
    // an acknowledgement of 1..=3).
    ack(&mut l, 1, 3);
    l.take_ready();
    nack(&mut l, 1, 1, None);
    assert_eq!(resend(&mut l), 3);
}

#[test]
fn fast_backup_converges_in_two_round_trips() {
    let mut l = make_leader(3, 4, log_of(&[1, 1, 3, 3, 4]));
    let leader_log = vec![ent(1, "c1"), ent(1, "c2"), ent(3, "c3"), ent(3, "c4"), ent(4, "c5")];
    assert_eq!(core_log(&l), leader_log);
    let mut f = RaftCore::new(1, 3, cfg_fixed(), HardState { term: 4, voted_for: None }, log_of(&[1, 1, 2, 2, 2]), 2);
    let mut msgs: Vec<Request> =
        l.take_ready().messages.into_iter().filter(|(to, _)| *to == 1).map(|(_, r)| r).collect();
    let mut trips = 0;
    let mut truncated = None;
    while let Some(req) = msgs.pop() {
        trips += 1;
        assert!(trips <= 2, "more than two round trips");
        let resp = f.step_request(0, req);
        let fr = f.take_ready();
        truncated = truncated.or(fr.truncate_from);
        l.step_response(1, resp);
        msgs.extend(l.take_ready().messages.into_iter().filter(|(to, _)| *to == 1).map(|(_, r)| r));
    }
    assert_eq!(core_log(&f), leader_log);
    assert_eq!(truncated, Some(3));
}

#[test]
fn conflicting_suffix_is_truncated() {
    let mut f = RaftCore::new(1, 3, cfg_fixed(), HardState { term: 2, voted_for: None }, log_of(&[1, 1, 2, 2]), 1);
    let r = append_reply(f.step_request(0, append(3, 0, 2, 1, vec![ent(3, "a"), ent(3, "b")], 0)));
    assert!(r.success);
    assert_eq!(r.match_index, 4);
    assert_eq!(core_log(&f), vec![ent(1, "c1"), ent(1, "c2"), ent(3, "a"), ent(3, "b")]);
    let ready = f.take_ready();
    assert_eq!(ready.hard_state, Some(HardState { term: 3, voted_for: None }));
    assert_eq!(ready.truncate_from, Some(3));
    assert_eq!(ready.append, vec![ent(3, "a"), ent(3, "b")]);

    // Entries that match are kept; the log is cut at the first conflict only,
    // and the whole stale tail goes even if longer than what is sent.
    let mut f = RaftCore::new(1, 3, cfg_fixed(), HardState { term: 2, voted_for: None }, log_of(&[1, 1, 2, 2, 2]), 1);
    let r = append_reply(f.step_request(0, append(3, 0, 1, 1, vec![ent(1, "c2"), ent(3, "x")], 0)));
    assert_eq!((r.success, r.match_index), (true, 3));
    assert_eq!(core_log(&f), vec![ent(1, "c1"), ent(1, "c2"), ent(3, "x")]);
    let ready = f.take_ready();
    assert_eq!((ready.truncate_from, ready.append), (Some(3), vec![ent(3, "x")]));
}

#[test]
fn late_shorter_append_does_not_truncate() {
    let mut f = fresh(1, 3);
    let full = append(1, 0, 0, 0, vec![ent(1, "a"), ent(1, "b"), ent(1, "c")], 0);
    let short = append(1, 0, 0, 0, vec![ent(1, "a")], 0);
    assert_eq!(append_reply(f.step_request(0, full.clone())).match_index, 3);
    f.take_ready();
    // The older, shorter AppendEntries arrives late.
    let r = append_reply(f.step_request(0, short));
    assert_eq!((r.success, r.match_index), (true, 1), "match_index covers only what this request vouched for");
    assert_eq!(f.last_index(), 3);
    let ready = f.take_ready();
    assert_eq!((ready.truncate_from, ready.append.len()), (None, 0));
    // It changed nothing, and the core says it was stale.
    assert_eq!(ready.events, vec![RaftEvent::Situation(Situation::StaleAppend)]);
    // A duplicate of the full one, and one overlapping the middle.
    assert_eq!(append_reply(f.step_request(0, full)).match_index, 3);
    assert_eq!(append_reply(f.step_request(0, append(1, 0, 1, 1, vec![ent(1, "b")], 0))).match_index, 2);
    assert_eq!(core_log(&f), vec![ent(1, "a"), ent(1, "b"), ent(1, "c")]);
    let ready = f.take_ready();
    assert!(ready.hard_state.is_none() && ready.truncate_from.is_none() && ready.messages.is_empty() && ready.committed.is_empty());
}

#[test]
fn leader_commit_capped_at_last_new_entry() {
    // Entry 3 (term 2) is stale: the new leader never vouched for it.
    let mut f = RaftCore::new(1, 3, cfg_fixed(), HardState { term: 2, voted_for: None }, log_of(&[1, 1, 2]), 1);
    let r = append_reply(f.step_request(0, append(3, 0, 1, 1, vec![], 3)));
    assert_eq!((r.success, r.match_index), (true, 1));
    assert_eq!(f.commit_index(), 1, "commit must not reach the unverified entries 2 and 3");
    assert_eq!(f.take_ready().committed, apply_msgs(&[(1, 1, "c1")]));
    let r = append_reply(f.step_request(0, append(3, 0, 2, 1, vec![], 3)));
    assert_eq!((r.success, f.commit_index()), (true, 2));
    assert_eq!(f.take_ready().committed, apply_msgs(&[(2, 1, "c2")]));
    // The leader's entry replaces the stale one and only then commits.
    append_reply(f.step_request(0, append(3, 0, 2, 1, vec![ent(3, "n")], 3)));
    assert_eq!(f.commit_index(), 3);
    assert_eq!(f.take_ready().committed, apply_msgs(&[(3, 3, "n")]));
    // The commit index never goes back.
    append_reply(f.step_request(0, append(3, 0, 0, 0, vec![], 1)));
    assert_eq!(f.commit_index(), 3);
    assert!(f.take_ready().committed.is_empty());

    // A late short AppendEntries with a high leader_commit commits only its own entries.
    let mut f = fresh(1, 3);
    f.step_request(0, append(1, 0, 0, 0, vec![ent(1, "a"), ent(1, "b"), ent(1, "c")], 0));
    f.step_request(0, append(1, 0, 0, 0, vec![ent(1, "a")], 3));
    assert_eq!(f.commit_index(), 1);
}

// ===================================================================
// Unit tests: commitment
// ===================================================================

#[test]
fn replies_from_an_earlier_term_are_ignored() {
    // s0 led term 1 and sent AppendEntries then; it leads again in term 3.
    let mut l = make_leader(3, 2, vec![]);
    assert_eq!(l.term(), 3);
    l.take_ready();
    ack(&mut l, 1, 0);
    ack(&mut l, 2, 0);
    assert_eq!(l.propose(b"x".to_vec()), Some((1, 3)));
    l.take_ready();
    let stale = |success| {
        Response::Append(AppendReply { term: 1, success, match_index: 1, conflict_index: 1, conflict_term: Some(1) })
    };
    // A late success from term 1 says nothing about today's entry 1.
    l.step_response(1, stale(true));
    l.step_response(2, stale(true));
    assert_eq!(l.commit_index(), 0, "replies of term 1 counted towards a commit in term 3");
    // A late rejection from term 1 neither backs up nor triggers a resend.
    l.step_response(1, stale(false));
    assert!(l.take_ready() == Ready::default());
    // A late vote of term 1 or 2 changes nothing either.
    grant(&mut l, 1, 2, true);
    assert!(l.is_leader() && l.take_ready() == Ready::default());
    ack(&mut l, 1, 1);
    assert_eq!(l.commit_index(), 1);
}

#[test]
fn leader_commits_only_current_term_entries_by_counting() {
    // Leader of term 4 (of 5 servers) with index 1 of term 1 and index 2 of term 2.
    let mut l = make_leader(5, 3, log_of(&[1, 2]));
    assert_eq!(l.term(), 4);
    l.take_ready();
    ack(&mut l, 1, 2);
    ack(&mut l, 2, 2);
    assert_eq!(l.commit_index(), 0, "index 2 (term 2) is on 3 of 5 servers but is not of the current term");
    assert!(l.take_ready().committed.is_empty());
    assert_eq!(l.propose(b"x".to_vec()), Some((3, 4)));
    ack(&mut l, 1, 3);
    assert_eq!(l.commit_index(), 0, "index 3 is on 2 of 5 servers");
    ack(&mut l, 2, 3);
    assert_eq!(l.commit_index(), 3, "a current-term entry on a majority commits everything below it");
    assert_eq!(l.take_ready().committed, apply_msgs(&[(1, 1, "c1"), (2, 2, "c2"), (3, 4, "x")]));
}

#[test]
fn commit_needs_a_majority_counted_with_exact_match_indices() {
    let mut l = make_leader(5, 0, vec![]);
    l.take_ready();
    for cmd in ["a", "b", "c"] {
        l.propose(cmd.as_bytes().to_vec()).unwrap();
    }
    ack(&mut l, 1, 3);
    ack(&mut l, 1, 3); // duplicated reply: still one server
    assert_eq!(l.commit_index(), 0);
    ack(&mut l, 2, 1);
    assert_eq!(l.commit_index(), 1);
    ack(&mut l, 2, 0); // late reply: match never goes back
    ack(&mut l, 3, 2);
    assert_eq!(l.commit_index(), 2);
    ack(&mut l, 4, 3);
    assert_eq!(l.commit_index(), 3);
}

/// Figure 8 of the Raft paper with real cores (5 servers), up to the point
/// where index 1 (term 1) is on a majority under leader s0 of term 3.
fn figure8_setup() -> Result<Cluster, String> {
    let mut c = Cluster::new(5, cfg_fixed(), 11);
    // (a) s0 leads term 1 and replicates "a" (index 1) to s1 only.
    elect(&mut c, 0)?;
    c.set_groups(&[0, 0, 1, 1, 1]);
    assert_eq!(c.propose(0)?, Some((1, 1)));
    c.deliver_all()?;
    assert_eq!(core_terms(c.core(1)), vec![1]);
    assert_eq!(core_terms(c.core(2)), Vec::<Term>::new());
    // (b) s0 crashes; s4 leads term 2 with s2 and s3, appends index 1 in term 2 and crashes.
    c.crash(0);
    elect(&mut c, 4)?;
    assert_eq!(c.core(4).term(), 2);
    assert_eq!(c.propose(4)?, Some((1, 2)));
    c.crash(4);
    // (c) s0 restarts, leads term 3 with s1 and s2, and replicates index 1 (term 1) to s2.
    c.restart(0)?;
    c.set_groups(&[0, 0, 0, 1, 1]);
    elect(&mut c, 0)?;
    assert_eq!(c.core(0).term(), 3);
    for s in 0..3 {
        assert_eq!(core_terms(c.core(s)), vec![1], "s{s}");
    }
    assert_eq!(c.core(0).commit_index(), 0, "an entry of term 1 on 3 of 5 servers is not committed in term 3");
    assert!(c.committed.is_empty());
    Ok(c)
}

/// Ticks `s` until it campaigns, delivers everything, and repeats until it
/// is leader.
fn elect(c: &mut Cluster, s: PeerId) -> Result<(), String> {
    for _ in 0..10 {
        let term = c.core(s).term();
        for _ in 0..100 {
            c.tick(s)?;
            if c.core(s).term() > term {
                break;
            }
        }
        c.deliver_all()?;
        c.check()?;
        if c.core(s).is_leader() {
            return Ok(());
        }
    }
    Err(format!("s{s} was not elected:{}", c.summary()))
}

#[test]
fn figure8_old_term_entry_on_majority_can_still_be_overwritten() {
    let mut c = figure8_setup().unwrap();
    // (d) s0 crashes; s4 (last log term 2) wins term 4 with s1, s2, s3 and
    // overwrites index 1 everywhere: committing it in (c) would have been wrong.
    c.crash(0);
    c.restart(4).unwrap();
    c.set_groups(&[1, 0, 0, 0, 0]);
    elect(&mut c, 4).unwrap();
    assert_eq!(c.core(4).term(), 4);
    for s in 1..5 {
        assert_eq!(core_terms(c.core(s)), vec![2], "s{s}");
    }
    assert_eq!(c.propose(4).unwrap(), Some((2, 4)));
    c.deliver_all().unwrap();
    assert_eq!(c.core(4).commit_index(), 2);
    assert_eq!(terms(&c.committed), vec![2, 4]);
    c.check().unwrap();
}

#[test]
fn figure8_old_term_entry_commits_beneath_a_current_term_entry() {
    let mut c = figure8_setup().unwrap();
    assert_eq!(c.propose(0).unwrap(), Some((2, 3)));
    c.deliver_all().unwrap();
    assert_eq!(c.core(0).commit_index(), 2);
    assert_eq!(terms(&c.committed), vec![1, 3]);
    // Now s4 can never win, while s1 can, and holds both entries.
    c.crash(0);
    c.restart(4).unwrap();
    c.set_groups(&[1, 0, 0, 0, 0]);
    for _ in 0..60 {
        c.tick(4).unwrap();
        c.deliver_all().unwrap();
        c.check().unwrap();
        assert!(!c.core(4).is_leader(), "s4 lacks committed entries");
    }
    elect(&mut c, 1).unwrap();
    assert_eq!(core_terms(c.core(1)), vec![1, 3]);
}

// ===================================================================
// Unit tests: proposals and batching
// ===================================================================

#[test]
fn propose_sends_at_once_and_batches_while_in_flight() {
    let mut l = make_leader(3, 0, vec![]);
    let r = l.take_ready();
    assert_eq!(r.messages.len(), 2);
    ack(&mut l, 1, 0);
    ack(&mut l, 2, 0);
    assert!(l.take_ready() == Ready::default(), "nothing to send after the heartbeats are acknowledged");

    // A proposal goes out at once, with no tick.
    assert_eq!(l.propose(b"a".to_vec()), Some((1, 1)));
    let r = l.take_ready();
    assert_eq!((r.truncate_from, r.append.clone()), (Some(1), vec![ent(1, "a")]));
    assert_eq!(
        r.messages,
        vec![(1, append(1, 0, 0, 0, vec![ent(1, "a")], 0)), (2, append(1, 0, 0, 0, vec![ent(1, "a")], 0))]
    );

    // While those are in flight, further proposals wait…
    assert_eq!(l.propose(b"b".to_vec()), Some((2, 1)));
    assert_eq!(l.propose(b"c".to_vec()), Some((3, 1)));
    let r = l.take_ready();
    assert!(r.messages.is_empty(), "no new AppendEntries while one is in flight: {:?}", r.messages);
    assert_eq!((r.truncate_from, r.append), (Some(2), vec![ent(1, "b"), ent(1, "c")]));

    // …and leave together in one batch on the reply.
    ack(&mut l, 1, 1);
    assert_eq!(l.commit_index(), 1);
    let r = l.take_ready();
    assert_eq!(r.messages, vec![(1, append(1, 0, 1, 1, vec![ent(1, "b"), ent(1, "c")], 1))]);
    assert_eq!(r.committed, apply_msgs(&[(1, 1, "a")]));

    // Server 2's reply was lost: the heartbeat retransmits all it lacks.
    l.tick();
    assert!(l.take_ready().messages.is_empty());
    l.tick();
    let r = l.take_ready();
    assert_eq!(
        r.messages,
        vec![
            (1, append(1, 0, 1, 1, vec![ent(1, "b"), ent(1, "c")], 1)),
            (2, append(1, 0, 0, 0, vec![ent(1, "a"), ent(1, "b"), ent(1, "c")], 1)),
        ]
    );
    ack(&mut l, 2, 3);
    assert_eq!(l.commit_index(), 3);
    assert!(l.take_ready().messages.is_empty(), "server 2 is up to date");

    // A follower takes no proposals.
    let mut f = fresh(1, 3);
    assert_eq!(f.propose(b"x".to_vec()), None);
    assert_eq!(f.last_index(), 0);
    assert!(f.take_ready() == Ready::default());
}

#[test]
fn batches_are_bounded_by_max_batch() {
    let cfg = Config { max_batch: 2, ..cfg_fixed() };
    let mut l = RaftCore::new(0, 3, cfg, HardState::default(), vec![], 1);
    tick_until_campaign(&mut l);
    grant(&mut l, 1, 1, true);
    l.take_ready();
    for cmd in ["a", "b", "c", "d", "e"] {
        l.propose(cmd.as_bytes().to_vec());
    }
    l.take_ready();
    ack(&mut l, 1, 0);
    let r = l.take_ready();
    assert_eq!(append_args(&r.messages[0].1).entries, vec![ent(1, "a"), ent(1, "b")]);
    ack(&mut l, 1, 2);
    let r = l.take_ready();
    let a = append_args(&r.messages[0].1);
    assert_eq!((a.prev_log_index, a.entries.clone()), (2, vec![ent(1, "c"), ent(1, "d")]));
    ack(&mut l, 1, 4);
    let r = l.take_ready();
    assert_eq!(append_args(&r.messages[0].1).entries, vec![ent(1, "e")]);
    ack(&mut l, 1, 5);
    assert!(l.take_ready().messages.is_empty());
    assert_eq!(l.commit_index(), 5);
}

#[test]
fn unacknowledged_append_is_retransmitted_once_then_the_follower_is_probed() {
    let cfg = Config { heartbeat_ticks: 10, election_ticks: 20..21, max_batch: 64, retransmit_ticks: 3, async_persistence: false };
    let mut l = RaftCore::new(0, 3, cfg, HardState::default(), vec![], 1);
    tick_until_campaign(&mut l);
    grant(&mut l, 1, 1, true);
    l.take_ready();
    ack(&mut l, 1, 0);
    ack(&mut l, 2, 0);
    let cmds: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    l.propose(cmds[0].as_bytes().to_vec()).unwrap();
    assert_eq!(l.take_ready().messages.len(), 2);
    for c in &cmds[1..] {
        l.propose(c.as_bytes().to_vec()).unwrap();
    }
    ack(&mut l, 1, 1); // server 2's AppendEntries (or its reply) is lost
    assert_eq!(l.take_ready().messages.len(), 1, "the rest to server 1");
    ack(&mut l, 1, 10);
    let entries = |from: usize, to: usize| cmds[from..to].iter().map(|c| ent(1, c)).collect::<Vec<_>>();
    let all_to_2 = (2, append(1, 0, 0, 0, entries(0, 10), 10));
    assert_eq!(kvraft::raft::core::PROBE_AFTER, 2);
    assert_eq!(kvraft::raft::core::PROBE_BATCH, 8);
    let probe_2 = (2, append(1, 0, 0, 0, entries(0, 8), 10));
    let mut sent = vec![];
    for t in 1..=20 {
        l.tick();
        sent.push((t, l.take_ready().messages));
    }
    for (t, msgs) in sent {
        match t {
            // One retransmit before the heartbeat; then server 2 has left
            // PROBE_AFTER AppendEntries unanswered: no more retransmits.
            3 => assert_eq!(msgs, vec![all_to_2.clone()], "tick {t}: retransmit to the silent follower only"),
            // Heartbeats: server 1 is up to date; server 2 gets a probe of
            // at most PROBE_BATCH entries.
            10 | 20 => assert_eq!(
                msgs,
                vec![(1, append(1, 0, 10, 1, vec![], 10)), probe_2.clone()],
                "tick {t}: heartbeat to everyone, a short probe to the silent follower"
            ),
            _ => assert!(msgs.is_empty(), "tick {t}: {msgs:?}"),
        }
    }
    // Its answer to the probe ends it: the rest goes out at once.
    ack(&mut l, 2, 8);
    assert_eq!(l.take_ready().messages, vec![(2, append(1, 0, 8, 1, entries(8, 10), 10))]);
    // Once acknowledged, nothing more is retransmitted.
    ack(&mut l, 2, 10);
    for _ in 0..9 {
        l.tick();
        assert!(l.take_ready().messages.is_empty());
    }
}

// ===================================================================
// Unit tests: take_ready and restart
// ===================================================================

#[test]
fn ready_hard_state_only_when_term_or_vote_changes() {
    let mut f = fresh(1, 3);
    assert!(f.take_ready() == Ready::default());
    f.step_request(0, append(1, 0, 0, 0, vec![], 0));
    assert_eq!(f.take_ready().hard_state, Some(HardState { term: 1, voted_for: None }));
    f.step_request(0, append(1, 0, 0, 0, vec![], 0));
    assert_eq!(f.take_ready().hard_state, None);
    assert!(vote_reply(f.step_request(2, vote(1, 2, 0, 0))).granted);
    assert_eq!(f.take_ready().hard_state, Some(HardState { term: 1, voted_for: Some(2) }));
    assert!(vote_reply(f.step_request(2, vote(1, 2, 0, 0))).granted);
    assert_eq!(f.take_ready().hard_state, None);
    f.step_request(0, append(1, 0, 0, 0, vec![], 0));
    assert_eq!(f.take_ready().hard_state, None);
    tick_until_campaign(&mut f);
    assert_eq!(f.hard_state(), HardState { term: 2, voted_for: Some(1) });
    assert!(f.take_ready().hard_state.is_none(), "already taken with the campaign");
}

#[test]
fn ready_log_changes_accumulate_exactly() {
    // Two steps without take_ready: an append, then a truncation below it.
    let mut f = fresh(1, 3);
    let five: Vec<Entry> = ["a", "b", "c", "d", "e"].iter().map(|c| ent(1, c)).collect();
    f.step_request(0, append(1, 0, 0, 0, five.clone(), 0));
    f.step_request(2, append(2, 2, 2, 1, vec![ent(2, "x")], 0));
    let r = f.take_ready();
    assert_eq!(r.truncate_from, Some(1));
    assert_eq!(r.append, vec![ent(1, "a"), ent(1, "b"), ent(2, "x")]);
    let mut store = Store::default();
    store.persist(&r).unwrap();
    assert_eq!(store.log, core_log(&f));

    // The same with a take_ready in between: the truncation is reported alone.
    let mut f = fresh(1, 3);
    let mut store = Store::default();
    f.step_request(0, append(1, 0, 0, 0, five, 0));
    store.persist(&f.take_ready()).unwrap();
    assert_eq!(store.log.len(), 5);
    f.step_request(2, append(2, 2, 2, 1, vec![ent(2, "x")], 0));
    let r = f.take_ready();
    assert_eq!((r.truncate_from, r.append.clone()), (Some(3), vec![ent(2, "x")]));
    store.persist(&r).unwrap();
    assert_eq!(store.log, core_log(&f));
    f.step_request(2, append(2, 2, 3, 2, vec![ent(2, "y")], 0));
    let r = f.take_ready();
    assert_eq!((r.truncate_from, r.append.clone()), (Some(4), vec![ent(2, "y")]));
    store.persist(&r).unwrap();
    assert_eq!(store.log, core_log(&f));
    assert!(f.take_ready() == Ready::default());
}

#[test]
fn committed_entries_in_order_exactly_once() {
    let mut f = fresh(1, 3);
    let four: Vec<Entry> = ["a", "b", "c", "d"].iter().map(|c| ent(1, c)).collect();
    f.step_request(0, append(1, 0, 0, 0, four.clone(), 2));
    assert_eq!(f.take_ready().committed, apply_msgs(&[(1, 1, "a"), (2, 1, "b")]));
    f.step_request(0, append(1, 0, 4, 1, vec![], 4));
    assert_eq!(f.take_ready().committed, apply_msgs(&[(3, 1, "c"), (4, 1, "d")]));
    f.step_request(0, append(1, 0, 4, 1, vec![], 4));
    f.step_request(0, append(1, 0, 0, 0, four, 4));
    assert!(f.take_ready().committed.is_empty());
    // Two commit advances between take_ready calls come out once, in order.
    f.step_request(0, append(1, 0, 4, 1, vec![ent(1, "e"), ent(1, "f")], 5));
    f.step_request(0, append(1, 0, 6, 1, vec![], 6));
    assert_eq!(f.take_ready().committed, apply_msgs(&[(5, 1, "e"), (6, 1, "f")]));
}

#[test]
fn restart_from_persisted_state_recovers_term_vote_and_log() {
    // A follower through appends, a truncation and a vote, persisting each Ready.
    let mut f = fresh(1, 3);
    let mut store = Store::default();
    let steps = vec![
        (0, append(1, 0, 0, 0, vec![ent(1, "a"), ent(1, "b"), ent(1, "c")], 1)),
        (2, vote(2, 2, 3, 1)),
        (2, append(2, 2, 1, 1, vec![ent(2, "x")], 1)),
        (0, vote(3, 0, 3, 1)), // denied: behind; the term is adopted
    ];
    for (from, req) in steps {
        f.step_request(from, req);
        store.persist(&f.take_ready()).unwrap();
    }
    let g = store.boot(1, 3, cfg_fixed(), 99);
    assert_eq!(store.hs, HardState { term: 3, voted_for: None });
    assert_eq!(g.hard_state(), f.hard_state());
    assert_eq!(core_log(&g), vec![ent(1, "a"), ent(2, "x")]);
    assert_eq!(core_log(&g), core_log(&f));
    assert_eq!((g.role(), g.commit_index(), g.leader()), (Role::Follower, 0, None));

    // A whole cluster: commit, reboot everyone, and re-apply from index 1.
    let mut c = Cluster::new(3, cfg_fixed(), 5);
    elect(&mut c, 0).unwrap();
    for _ in 0..3 {
        c.propose(0).unwrap().unwrap();
    }
    c.deliver_all().unwrap();
    for _ in 0..2 {
        c.tick(0).unwrap();
    }
    c.deliver_all().unwrap();
    for s in 0..3 {
        assert_eq!(c.core(s).commit_index(), 3, "s{s}");
    }
    for s in 0..3 {
        let (hs, log) = (c.core(s).hard_state(), core_log(c.core(s)));
        c.restart(s).unwrap();
        assert_eq!(c.core(s).hard_state(), hs, "s{s}");
        assert_eq!(core_log(c.core(s)), log, "s{s}");
        assert_eq!((c.core(s).role(), c.core(s).commit_index()), (Role::Follower, 0));
    }
    // A restarted voter remembers its vote of term 1.
    assert_eq!(c.core(1).hard_state(), HardState { term: 1, voted_for: Some(0) });
    assert!(!vote_reply(c.servers[1].core.step_request(2, vote(1, 2, 3, 1))).granted);
    c.process(1).unwrap();
    // A new leader, and each server applies 1, 2, 3, 4 again in this boot.
    elect(&mut c, 1).unwrap();
    c.propose(1).unwrap().unwrap();
    c.deliver_all().unwrap();
    for _ in 0..2 {
        c.tick(1).unwrap();
    }
    c.deliver_all().unwrap();
    c.check().unwrap();
    let want: Vec<Vec<u8>> = (0..4).map(|i| format!("cmd{i}").into_bytes()).collect();
    for s in 0..3 {
        let got: Vec<(Index, Vec<u8>)> = c.servers[s].applied.iter().map(|m| (m.index, m.command.clone())).collect();
        assert_eq!(got, want.iter().cloned().enumerate().map(|(i, w)| (i as Index + 1, w)).collect::<Vec<_>>(), "s{s}");
    }
}

// ===================================================================
// Property tests: single core against a model
// ===================================================================

proptest! {
    #![proptest_config(ProptestConfig { cases: 500 / SCALE, failure_persistence: None, ..ProptestConfig::default() })]

    /// RequestVote against the rule of Figure 2, for any state and request.
    #[test]
    fn prop_vote_rule(
        t0 in 0u64..6,
        v0 in prop::option::of(prop_oneof![Just(0usize), Just(2usize)]),
        incs in vec(0u64..2, 0..6),
        term in 0u64..8,
        cand in prop_oneof![Just(0usize), Just(2usize)],
        lli in 0u64..8,
        llt in 0u64..8,
    ) {
        let mut log_terms = vec![];
        let mut t = 1;
        for inc in incs {
            t += inc;
            if t > t0 { break; }
            log_terms.push(t);
        }
        let v0 = if t0 == 0 { None } else { v0 };
        let mut f = RaftCore::new(1, 3, cfg_fixed(), HardState { term: t0, voted_for: v0 }, log_of(&log_terms), 1);
        let (last_i, last_t) = (log_terms.len() as u64, log_terms.last().copied().unwrap_or(0));
        let r = vote_reply(f.step_request(cand, vote(term, cand, lli, llt)));

        let term_after = t0.max(term);
        let vote_before = if term > t0 { None } else { v0 };
        let up_to_date = llt > last_t || (llt == last_t && lli >= last_i);
        let granted = term >= t0 && vote_before.is_none_or(|v| v == cand) && up_to_date;
        prop_assert_eq!(r, VoteReply { term: term_after, granted });
        let hs_after = HardState { term: term_after, voted_for: if granted { Some(cand) } else { vote_before } };
        prop_assert_eq!(f.hard_state(), hs_after);
        let ready = f.take_ready();
        let changed = hs_after != HardState { term: t0, voted_for: v0 };
        prop_assert_eq!(ready.hard_state, if changed { Some(hs_after) } else { None });
        prop_assert_eq!(f.role(), Role::Follower);
    }

    /// A follower fed AppendEntries cut from one leader's log, in any order and
    /// with duplicates, behaves like a simple model of Figure 2's rules, and its
    /// persisted state always equals its memory.
    #[test]
    fn prop_follower_append_matches_model(
        leader_incs in vec(0u64..2, 0..12),
        common in 0usize..12,
        suffix_incs in vec(0u64..2, 0..6),
        ops in vec((0usize..20, 0usize..5, 0usize..20), 1..16),
    ) {
        // The leader's log uses even terms; the follower shares a prefix of it
        // and then diverges with odd terms (so Log Matching holds between them).
        let mut lead = vec![];
        let mut t = 2;
        for (i, inc) in leader_incs.iter().enumerate() {
            t += 2 * inc;
            lead.push(Entry { term: t, command: format!("L{}@{t}", i + 1).into_bytes() });
        }
        let p = common.min(lead.len());
        let mut model: Vec<Entry> = lead[..p].to_vec();
        let mut t = model.last().map_or(0, |e| e.term) + 1;
        for inc in &suffix_incs {
            let i = model.len() + 1;
            model.push(Entry { term: t, command: format!("F{i}@{t}").into_bytes() });
            t += 2 * inc;
        }
        let lt = lead.iter().chain(model.iter()).map(|e| e.term).max().unwrap_or(0) + 1;
        let f0 = model.last().map_or(0, |e| e.term);
        let mut f = RaftCore::new(1, 3, cfg_fixed(), HardState { term: f0, voted_for: None }, model.clone(), 3);
        let mut store = Store { hs: HardState { term: f0, voted_for: None }, log: model.clone() };
        let mut commit: Index = 0;
        let mut applied: Vec<ApplyMsg> = vec![];

        for (prev, m, lc) in ops {
            let prev = prev % (lead.len() + 1);
            let m = m.min(lead.len() - prev);
            let lc = (lc % (lead.len() + 1)) as Index;
            let prev_term = if prev == 0 { 0 } else { lead[prev - 1].term };
            let entries = lead[prev..prev + m].to_vec();
            let r = append_reply(f.step_request(0, append(lt, 0, prev as Index, prev_term, entries.clone(), lc)));

            // The model.
            let want = if prev > model.len() {
                AppendReply { term: lt, success: false, match_index: 0, conflict_index: model.len() as Index + 1, conflict_term: None }
            } else if prev > 0 && model[prev - 1].term != prev_term {
                let ct = model[prev - 1].term;
                let mut k = prev;
                while k > 1 && model[k - 2].term == ct { k -= 1; }
                AppendReply { term: lt, success: false, match_index: 0, conflict_index: k as Index, conflict_term: Some(ct) }
            } else {
                for (j, e) in entries.iter().enumerate() {
                    let idx = prev + j; // 0-based
                    if idx < model.len() {
                        if model[idx].term != e.term {
                            model.truncate(idx);
                            model.push(e.clone());
                        }
                    } else {
                        model.push(e.clone());
                    }
                }
                commit = commit.max(lc.min((prev + m) as Index));
                AppendReply { term: lt, success: true, match_index: (prev + m) as Index, conflict_index: 0, conflict_term: None }
            };
            prop_assert_eq!(r, want);
            prop_assert_eq!(core_log(&f), model.clone());
            prop_assert_eq!(f.commit_index(), commit);
            prop_assert_eq!((f.role(), f.leader(), f.term()), (Role::Follower, Some(0), lt));

            let ready = f.take_ready();
            store.persist(&ready).map_err(TestCaseError::fail)?;
            prop_assert_eq!(&store.log, &model);
            prop_assert_eq!(store.hs, HardState { term: lt, voted_for: None });
            for c in ready.committed {
                prop_assert_eq!(c.index, applied.len() as Index + 1);
                prop_assert_eq!(&lead[c.index as usize - 1].command, &c.command, "applied an entry not from the leader");
                applied.push(c);
            }
            prop_assert_eq!(applied.len() as Index, commit);
        }
        let g = store.boot(1, 3, cfg_fixed(), 4);
        prop_assert_eq!(core_log(&g), model);
        prop_assert_eq!(g.hard_state(), f.hard_state());
    }
}

// ===================================================================
// Property tests: the cluster under faults
// ===================================================================

/// Weights of Tick, TickAll, Deliver, Duplicate, Drop, Propose, Crash,
/// Restart, Partition, Heal, DeliverRecent and Replay in each workload profile.
const PROFILES: [[u32; 12]; 4] = [
    // Mixed.
    [25, 5, 45, 3, 4, 10, 1, 2, 2, 3, 0, 2],
    // Churn: few proposals, lossy, frequent partitions: many elections and
    // leaders whose old-term entries are left uncommitted (Figure 8).
    [30, 5, 35, 3, 15, 3, 1, 2, 3, 3, 0, 2],
    // Busy and lossy: many proposals, duplicates and drops, long batches.
    [20, 3, 35, 8, 12, 15, 2, 3, 1, 1, 0, 3],
    // Long delays: mostly the newest messages are delivered, so old requests
    // and replies linger across timeouts and elections before they arrive.
    [25, 5, 8, 4, 3, 10, 1, 2, 2, 2, 38, 3],
];

fn make_action(kind: usize, x: u64) -> Action {
    match kind {
        0 => Action::Tick(x as usize % 5),
        1 => Action::TickAll,
        2 => Action::Deliver(x as usize % (1 << 16)),
        3 => Action::Duplicate(x as usize % (1 << 16)),
        4 => Action::Drop(x as usize % (1 << 16)),
        5 => Action::Propose(x as usize % 5),
        6 => Action::Crash(x as usize % 5),
        7 => Action::Restart(x as usize % 5),
        8 => Action::Partition(x as u8),
        9 => Action::Heal,
        10 => Action::DeliverRecent(x as usize % (1 << 16)),
        _ => Action::Replay(x as usize % (1 << 16)),
    }
}

fn action(profile: usize) -> BoxedStrategy<Action> {
    let arms = PROFILES[profile]
        .iter()
        .enumerate()
        .filter(|(_, w)| **w > 0)
        .map(|(kind, w)| (*w, (0u64..1 << 16).prop_map(move |x| make_action(kind, x)).boxed()))
        .collect::<Vec<_>>();
    prop::strategy::Union::new_weighted(arms).boxed()
}

/// A workload profile, a seed for the election timers, and a schedule.
fn schedule(max_len: usize) -> impl Strategy<Value = (usize, u64, Vec<Action>)> {
    (0..PROFILES.len(), any::<u64>())
        .prop_flat_map(move |(p, seed)| (Just(p), Just(seed), vec(action(p), 1..max_len)))
}

/// The same mix as [`action`], drawn from a seeded generator.
fn random_action(rng: &mut StdRng, profile: usize) -> Action {
    let w = PROFILES[profile];
    let mut r = rng.gen_range(0..w.iter().sum::<u32>());
    for (kind, wk) in w.iter().enumerate() {
        if r < *wk {
            return make_action(kind, rng.gen_range(0..1 << 16));
        }
        r -= wk;
    }
    unreachable!()
}

/// Runs `actions` on a fresh cluster, checking the invariants after every
/// step, then settles it and checks liveness.
fn run_schedule(n: usize, seed: u64, actions: &[Action]) -> Result<Cluster, String> {
    let mut c = Cluster::new(n, cfg_random(seed), seed);
    for (i, a) in actions.iter().enumerate() {
        c.act(a).and_then(|_| c.check()).map_err(|e| format!("step {i} ({a:?}): {e}{}", c.summary()))?;
    }
    c.settle().map_err(|e| format!("after {} steps, settling: {e}", actions.len()))?;
    Ok(c)
}

fn seeded_schedule(seed: u64, profile: usize, len: usize) -> Vec<Action> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| random_action(&mut rng, profile)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000 / SCALE,
        failure_persistence: None,
        max_shrink_iters: 5000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn prop_cluster3_safety_and_liveness((profile, seed, actions) in schedule(600)) {
        run_schedule(3, seed, &actions).map_err(|e| TestCaseError::fail(format!("profile {profile}: {e}")))?;
    }

    #[test]
    fn prop_cluster5_safety_and_liveness((profile, seed, actions) in schedule(600)) {
        run_schedule(5, seed, &actions).map_err(|e| TestCaseError::fail(format!("profile {profile}: {e}")))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200 / SCALE, failure_persistence: None, ..ProptestConfig::default() })]

    /// Longer runs from a seed: deeper histories than the shrinkable schedules.
    #[test]
    fn prop_cluster_long_seeded_schedules(seed in any::<u64>(), five in any::<bool>(), profile in 0..PROFILES.len()) {
        let n = if five { 5 } else { 3 };
        let actions = seeded_schedule(seed, profile, 5000);
        run_schedule(n, seed, &actions)
            .map_err(|e| TestCaseError::fail(format!("n={n} seed={seed} profile={profile}: {e}")))?;
    }
}

/// Replays one long seeded schedule: RAFT_CORE_REPLAY=n,seed,profile[,steps].
#[test]
#[ignore]
fn replay() {
    let spec = std::env::var("RAFT_CORE_REPLAY").expect("set RAFT_CORE_REPLAY=n,seed,profile[,steps]");
    let v: Vec<u64> = spec.split(',').map(|x| x.trim().parse().expect("a number")).collect();
    let (n, seed, profile) = (v[0] as usize, v[1], v[2] as usize);
    let steps = v.get(3).copied().unwrap_or(5000) as usize;
    match run_schedule(n, seed, &seeded_schedule(seed, profile, steps)) {
        Ok(c) => println!("ok: {:?}, {} committed{}", c.stats, c.committed.len(), c.summary()),
        Err(e) => panic!("{e}"),
    }
}

/// Guards against a vacuous schedule: the random runs really elect leaders,
/// commit, truncate, crash and re-apply.
#[test]
fn cluster_schedules_exercise_the_protocol() {
    let mut total = Stats::default();
    let (mut terms_led, mut commits) = (0, 0);
    for seed in 0..40u64 {
        let n = if seed % 2 == 0 { 3 } else { 5 };
        let profile = (seed / 2) as usize % PROFILES.len();
        let c = run_schedule(n, seed, &seeded_schedule(seed, profile, 1000))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        terms_led += c.leader_of_term.len();
        commits += c.committed.len();
        let s = &c.stats;
        total.steps += s.steps;
        total.steps_with_leader += s.steps_with_leader;
        total.delivered += s.delivered;
        total.proposals_accepted += s.proposals_accepted;
        total.crashes += s.crashes;
        total.restarts += s.restarts;
        total.truncations += s.truncations;
        total.reapplied += s.reapplied;
    }
    println!("40 schedules: {terms_led} terms with a leader, {commits} entries committed, {total:?}");
    assert!(terms_led >= 80, "too few elections: {terms_led}");
    assert!(commits >= 400, "too few commits: {commits}");
    assert!(total.truncations >= 20, "too few log truncations: {}", total.truncations);
    assert!(total.crashes >= 40 && total.restarts >= 40, "too few crashes: {total:?}");
    assert!(total.reapplied >= 100, "too few re-applies after restart: {}", total.reapplied);
}

#[test]
fn reports_votes_appends_and_commits() {
    // A follower: a vote granted, entries appended with their range, the
    // commit index advanced by a heartbeat.
    let mut f = fresh(1, 3);
    assert!(vote_reply(f.step_request(0, vote(1, 0, 0, 0))).granted);
    let votes: Vec<RaftEvent> = f.take_ready().events.into_iter().filter(|e| matches!(e, RaftEvent::Vote { .. })).collect();
    assert_eq!(votes, vec![RaftEvent::Vote { term: 1, candidate: 0, granted: true }]);
    assert!(append_reply(f.step_request(0, append(1, 0, 0, 0, vec![ent(1, "a"), ent(1, "b")], 0))).success);
    assert!(f.take_ready().events.contains(&RaftEvent::Appended { term: 1, leader: 0, from: 1, to: 2 }));
    // The same entries again append nothing; the commit index moves.
    assert!(append_reply(f.step_request(0, append(1, 0, 0, 0, vec![ent(1, "a"), ent(1, "b")], 2))).success);
    assert_eq!(f.take_ready().events, vec![RaftEvent::Committed { index: 2 }]);
    // A leader (alone): its own proposal is an append, and commits at once.
    let mut l = fresh(0, 1);
    while !l.is_leader() {
        l.tick();
    }
    l.take_ready();
    let (index, term) = l.propose(b"x".to_vec()).unwrap();
    let ev = l.take_ready().events;
    assert_eq!(ev, vec![RaftEvent::Appended { term, leader: 0, from: index, to: index }, RaftEvent::Committed { index }]);
}
