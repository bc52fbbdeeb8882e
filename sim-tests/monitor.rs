//! The monitor's checks can fail. Each test breaks one property on purpose,
//! through the seams a user's Raft would use (a wrapper around `MakeRaft`
//! that alters, skips or repeats an apply, or reports a second leader, or
//! lies about its log; a server that changes one replica), runs it through
//! the one executor, and asserts the run fails naming that property, with
//! the seed and the reproduce command in the message.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use kvraft::campaign::exec::{self, Customize, RunOptions};
use kvraft::campaign::report::RunReport;
use kvraft::sim::failure::{Failure, FailureClass};
use kvraft::campaign::spec::{Action, NemesisEvent, RunSpec, Workload};
use kvraft::campaign::swarm::swarm_spec;
use kvraft::kv::{Bug, KvOp, KvRequest, KvStateMachine, Tamper};
use kvraft::raft::{self, ApplyMsg, Consensus, Index, MakeArgs, RaftEvent, Role, Situation, Term};
use kvraft::sim::kv_cluster::KvOptions;
use kvraft::sim::property::Property;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

const LIMIT: Option<Duration> = Some(Duration::from_secs(600));

/// A small swarm run: `servers` servers, 3 clerks on 3 keys for 3 s, a
/// reliable network and disks that never corrupt, and the given nemesis
/// events.
fn small(seed: u64, servers: usize, events: Vec<NemesisEvent>) -> RunSpec {
    let mut s = swarm_spec(seed);
    s.servers = servers;
    s.clients = 3;
    s.workload = Workload::Swarm { keys: 3, run_ms: 3000, ops_per_client: None };
    s.faults = Default::default();
    // Disks that do not corrupt (a server may refuse to boot on one).
    s.disk.corrupt_rate = 0.0;
    s.nemesis = Some(events);
    s.bound_ms = 5000.0;
    s
}

fn isolate_leader_at(times: &[u64]) -> Vec<NemesisEvent> {
    times
        .iter()
        .flat_map(|t| {
            [NemesisEvent { at_ms: *t, action: Action::IsolateLeader }, NemesisEvent { at_ms: t + 600, action: Action::Heal }]
        })
        .collect()
}

type ApplyHook =
    Arc<dyn Fn(usize, Arc<dyn Consensus>, UnboundedReceiver<ApplyMsg>, UnboundedSender<ApplyMsg>) -> BoxFuture<'static, ()> + Send + Sync>;
type EventHook = Arc<dyn Fn(usize, RaftEvent) -> Vec<RaftEvent> + Send + Sync>;
type StateHook = Arc<dyn Fn(usize, (Term, bool)) -> (Term, bool) + Send + Sync>;
type LogHook = Arc<dyn Fn(usize, Option<Vec<Term>>) -> Option<Vec<Term>> + Send + Sync>;
type BootHook = Arc<dyn Fn(usize, raft::EventSink) + Send + Sync>;

/// How the wrapped Raft departs from this crate's (each hook optional).
#[derive(Clone, Default)]
struct Hooks {
    /// Carries the apply stream from the Raft to the service.
    apply: Option<ApplyHook>,
    /// Rewrites each event the Raft reports.
    events: Option<EventHook>,
    /// Reports no events at all (the monitor must poll).
    silent: bool,
    state: Option<StateHook>,
    log_terms: Option<LogHook>,
    /// Called at each boot with the server and its event sink.
    at_boot: Option<BootHook>,
}

/// This crate's Raft, seen through `hooks`.
struct Wrapped {
    inner: Arc<dyn Consensus>,
    me: usize,
    hooks: Hooks,
}

impl Consensus for Wrapped {
    fn start(&self, command: Vec<u8>) -> Option<(Index, Term)> {
        self.inner.start(command)
    }
    fn state(&self) -> (Term, bool) {
        let s = self.inner.state();
        self.hooks.state.as_ref().map_or(s, |f| f(self.me, s))
    }
    fn kill(&self) {
        self.inner.kill()
    }
    fn reports_events(&self) -> bool {
        !self.hooks.silent && self.inner.reports_events()
    }
    fn log_terms(&self, upto: Index) -> Option<Vec<Term>> {
        let t = self.inner.log_terms(upto);
        match &self.hooks.log_terms {
            Some(f) => f(self.me, t),
            None => t,
        }
    }
}

fn wrap(hooks: Hooks) -> Customize {
    Arc::new(move |o: &mut KvOptions| {
        let (base, hooks) = (o.make_raft.clone(), hooks.clone());
        o.make_raft = Arc::new(move |mut a: MakeArgs| {
            let me = a.me;
            let mut tap = None;
            if let Some(f) = hooks.apply.clone() {
                let (tx, rx) = unbounded_channel();
                tap = Some((f, rx, std::mem::replace(&mut a.apply_tx, tx)));
            }
            let boot_sink = a.events.clone();
            if hooks.silent {
                a.events = raft::no_events();
            } else if let Some(f) = hooks.events.clone() {
                let sink = a.events.clone();
                a.events = Arc::new(move |e| f(me, e).into_iter().for_each(|x| sink(x)));
            }
            let inner = base(a)?;
            if let Some((f, rx, out)) = tap {
                tokio::spawn(f(me, inner.clone(), rx, out));
            }
            if let Some(f) = &hooks.at_boot {
                f(me, boot_sink);
            }
            Ok(Arc::new(Wrapped { inner, me, hooks: hooks.clone() }) as Arc<dyn Consensus>)
        });
    })
}

/// Rewrites the apply stream of server `on` with `f` (index -> what to deliver instead).
fn rewrite_applies(on: usize, f: impl Fn(ApplyMsg, &mut Vec<ApplyMsg>) -> Vec<ApplyMsg> + Send + Sync + Clone + 'static) -> ApplyHook {
    Arc::new(move |me, _raft, mut rx, out| {
        let f = f.clone();
        async move {
            let mut seen = Vec::new();
            while let Some(m) = rx.recv().await {
                let deliver = if me == on { f(m.clone(), &mut seen) } else { vec![m.clone()] };
                seen.push(m);
                for x in deliver {
                    let _ = out.send(x);
                }
            }
        }
        .boxed()
    })
}

/// This crate's Raft with its reported events rewritten by `events`.
fn rewrite_events(events: EventHook) -> Customize {
    wrap(Hooks { events: Some(events), ..Default::default() })
}

fn run(spec: &RunSpec, customize: Option<Customize>) -> RunReport {
    exec::run(spec, &RunOptions::limit(LIMIT).customized_opt(customize))
}

/// Asserts the run failed on `p`, with everything a reader needs.
fn assert_violation(r: &RunReport, p: Property, mentions: &[&str]) {
    let f = r.failure.as_ref().unwrap_or_else(|| panic!("the run passed, but {} was broken on purpose", p.name()));
    assert_eq!(f.class, FailureClass::Safety(p), "{f}");
    assert!(f.to_string().starts_with(&format!("safety: {}: ", p.name())), "{f}");
    // Found inside the run, at a virtual time; a Raft property names the
    // servers it caught, as data.
    assert!(f.at_s.is_some_and(|t| t > 0.0), "{f:?}");
    let raft_property = !matches!(p, Property::ExactlyOnce | Property::Convergence);
    assert!(!raft_property || !f.servers.is_empty(), "a broken {} names no servers: {f:?}", p.name());
    for m in mentions {
        assert!(f.detail.contains(m), "the message should mention {m:?}: {f}");
    }
    // The report keeps what happened up to the violation.
    assert!(r.virtual_ms > 0 && r.trace_hash != 0 && r.raft_msgs > 0, "a failed run's report lost its figures: {r:?}");
    println!("{}: {f}", p.name());
}

#[test]
fn correct_runs_pass_the_monitor() {
    // The same runs as below, unbroken, pass: the failures below are the
    // hooks' doing.
    for (spec, elections) in [(small(1, 3, Vec::new()), 1), (small(2, 5, isolate_leader_at(&[800, 1800])), 3)] {
        let r = run(&spec, Some(wrap(Hooks::default())));
        assert!(r.passed, "{:?}", r.failure);
        let m = r.monitor.as_ref().expect("monitor report");
        // Every leadership after the first found entries committed before it.
        assert!(m.terms_led >= elections && m.completeness_checked >= elections - 1, "{m:?}");
        assert_eq!(r.coverage["election_won"], m.terms_led);
    }
}

#[test]
fn state_machine_safety_catches_an_altered_apply() {
    // Server 1 applies index 2's command again in place of index 3's.
    let hook = rewrite_applies(1, |mut m, seen| {
        if m.index == 3 {
            m.command = seen[1].command.clone();
        }
        vec![m]
    });
    let r = run(&small(3, 3, Vec::new()), Some(wrap(Hooks { apply: Some(hook), ..Default::default() })));
    assert_violation(&r, Property::StateMachineSafety, &["index 3:", "server 1 (boot 1)", "clerk"]);
}

#[test]
fn state_machine_safety_catches_a_skipped_and_a_repeated_apply() {
    let skip = rewrite_applies(2, |m, _| if m.index == 4 { vec![] } else { vec![m] });
    let r = run(&small(4, 3, Vec::new()), Some(wrap(Hooks { apply: Some(skip), ..Default::default() })));
    assert_violation(&r, Property::StateMachineSafety, &["server 2 (boot 1) applied index 5", "index 4 was due"]);
    let repeat = rewrite_applies(0, |m, _| if m.index == 5 { vec![m.clone(), m] } else { vec![m] });
    let r = run(&small(4, 3, Vec::new()), Some(wrap(Hooks { apply: Some(repeat), ..Default::default() })));
    assert_violation(&r, Property::StateMachineSafety, &["server 0 (boot 1) applied index 5", "index 6 was due"]);
}

#[test]
fn election_safety_catches_a_second_leader_reported() {
    // Server 2 claims to lead every term it follows, and says so when asked.
    let claimed: Arc<Mutex<Option<Term>>> = Arc::new(Mutex::new(None));
    let claim = claimed.clone();
    let events: EventHook = Arc::new(move |me, e| match e {
        RaftEvent::Role { term, role } if me == 2 => {
            let lie = role == Role::Follower && term > 0;
            *claim.lock().unwrap() = lie.then_some(term);
            if lie {
                vec![e, RaftEvent::Role { term, role: Role::Leader }]
            } else {
                vec![e]
            }
        }
        e => vec![e],
    });
    let state: StateHook = Arc::new(move |me, (term, leader)| (term, leader || (me == 2 && *claimed.lock().unwrap() == Some(term))));
    let hooks = Hooks { events: Some(events), state: Some(state), ..Default::default() };
    let r = run(&small(5, 3, isolate_leader_at(&[800])), Some(wrap(hooks)));
    assert_violation(&r, Property::ElectionSafety, &["both lead term", "(boot 1)"]);
}

#[test]
fn reported_state_catches_a_leader_that_never_reports_stepping_down() {
    // Role changes to follower go unreported: the last reported role of a
    // deposed leader stays leader while state() says otherwise (and a
    // second leader of a later term would look like no violation at all).
    let events: EventHook = Arc::new(|_, e| match e {
        RaftEvent::Role { role: Role::Follower, .. } => vec![],
        e => vec![e],
    });
    // Seed 5's disk and drift as swarm drew them before it drew focused
    // seeds: the run in which a deposed leader shows it first.
    let mut spec = small(5, 3, isolate_leader_at(&[800]));
    spec.disk = kvraft::sim::fleet::DiskFaults { sync_us: (6700, 7700), lose_unsynced: true, torn_rate: 0.24, corrupt_rate: 0.0 };
    spec.clock_drift = 2.06;
    let r = run(&spec, Some(rewrite_events(events)));
    // Caught at the first step that shows it: state() answering otherwise,
    // or a follower's situation reported by what still looks like a leader.
    assert_violation(&r, Property::ReportedState, &["last reported role was Leader"]);
}

#[test]
fn reported_state_catches_a_commit_index_reported_twice() {
    let events: EventHook = Arc::new(|_, e| match e {
        RaftEvent::Committed { .. } => vec![e, e],
        e => vec![e],
    });
    let r = run(&small(5, 3, vec![]), Some(rewrite_events(events)));
    assert_violation(&r, Property::ReportedState, &["reported its commit index advancing to", "it only grows"]);
}

#[test]
fn reported_state_catches_a_situation_reported_in_the_wrong_role() {
    // A split vote counted when a follower (not a candidate) times out.
    let events: EventHook = Arc::new(|_, e| match e {
        RaftEvent::Role { role: Role::Follower, term } if term > 0 => vec![e, RaftEvent::Situation(Situation::SplitVote)],
        e => vec![e],
    });
    let r = run(&small(5, 3, isolate_leader_at(&[800])), Some(rewrite_events(events)));
    assert_violation(&r, Property::ReportedState, &["reported situation split_vote while its last reported role was Follower", "only to a Candidate"]);
}

#[test]
fn reported_state_catches_an_apply_never_reported_committed() {
    // Followers' commits go unreported (the leader's still are).
    let leading: Arc<Mutex<Vec<bool>>> = Arc::new(Mutex::new(vec![false; 3]));
    let events: EventHook = Arc::new(move |me, e| {
        let mut l = leading.lock().unwrap();
        match e {
            RaftEvent::Role { role, .. } => {
                l[me] = role == Role::Leader;
                vec![e]
            }
            RaftEvent::Committed { .. } if !l[me] => vec![],
            e => vec![e],
        }
    });
    let r = run(&small(5, 3, vec![]), Some(rewrite_events(events)));
    assert_violation(&r, Property::ReportedState, &["applied index 1, beyond the commit index it last reported (0)"]);
}

#[test]
fn reported_state_catches_a_term_that_goes_back() {
    let events: EventHook = Arc::new(|_, e| match e {
        RaftEvent::Role { term, role: Role::Follower } if term > 1 => vec![e, RaftEvent::Role { term: term - 1, role: Role::Follower }],
        e => vec![e],
    });
    let r = run(&small(5, 3, isolate_leader_at(&[800])), Some(rewrite_events(events)));
    assert_violation(&r, Property::ReportedState, &["terms never go back"]);
}

#[test]
fn election_safety_catches_a_leader_of_the_same_term_after_a_reboot() {
    // A server that led a term claims it again after its crash, as one that
    // forgot its vote would.
    let led: Arc<Mutex<Vec<Term>>> = Arc::new(Mutex::new(vec![0; 3]));
    let record = led.clone();
    let events: EventHook = Arc::new(move |me, e| {
        if let RaftEvent::Role { term, role: Role::Leader } = e {
            record.lock().unwrap()[me] = term;
        }
        vec![e]
    });
    let at_boot: BootHook = Arc::new(move |me, sink| {
        let term = led.lock().unwrap()[me];
        if term > 0 {
            // Once the boot is under way (the monitor learns of it when
            // `MakeRaft` returns).
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                sink(RaftEvent::Role { term, role: Role::Leader });
            });
        }
    });
    let crash = vec![NemesisEvent { at_ms: 800, action: Action::CrashLeader { down_ms: 300 } }];
    let hooks = Hooks { events: Some(events), at_boot: Some(at_boot), ..Default::default() };
    let r = run(&small(7, 3, crash), Some(wrap(hooks)));
    assert_violation(&r, Property::ElectionSafety, &["in boot 1 and again in boot 2"]);
}

#[test]
fn election_safety_polls_a_raft_that_reports_nothing() {
    // No events at all; server 1 says it leads whatever term it is in.
    let state: StateHook = Arc::new(|me, (term, leader)| (term, leader || (me == 1 && term > 0)));
    let hooks = Hooks { silent: true, state: Some(state), ..Default::default() };
    let r = run(&small(6, 3, isolate_leader_at(&[800, 1800])), Some(wrap(hooks)));
    assert_violation(&r, Property::ElectionSafety, &["both lead term"]);
    // Silent but honest: polling finds no second leader, and still counts
    // the elections it saw.
    let r = run(&small(6, 3, isolate_leader_at(&[800, 1800])), Some(wrap(Hooks { silent: true, ..Default::default() })));
    assert!(r.passed, "{:?}", r.failure);
    assert!(r.coverage["election_won"] >= 2, "{:?}", r.coverage);
}

#[test]
fn leader_completeness_catches_a_leader_missing_a_committed_entry() {
    // Every server's log, as it lists it beyond index 1, has the wrong
    // term there: the first leader elected after something committed is
    // caught. (Asked for index 1 alone, as at its first apply, it answers
    // right: the majority behind that commit is not what is tested here.)
    let log: LogHook = Arc::new(|_, t| {
        t.map(|mut v| {
            if v.len() >= 2 {
                v[0] += 1;
            }
            v
        })
    });
    let r = run(&small(7, 3, isolate_leader_at(&[800])), Some(wrap(Hooks { log_terms: Some(log), ..Default::default() })));
    assert_violation(&r, Property::LeaderCompleteness, &["became leader of term", "index 1 was committed in an earlier term"]);
    // A Raft that cannot list its log is not checked, and the report says so.
    let log: LogHook = Arc::new(|_, _| None);
    let r = run(&small(7, 3, isolate_leader_at(&[800])), Some(wrap(Hooks { log_terms: Some(log), ..Default::default() })));
    assert!(r.passed, "{:?}", r.failure);
    let m = r.monitor.unwrap();
    assert!(m.completeness_skipped >= 1 && m.completeness_checked == 0, "{m:?}");
}

#[test]
fn committed_on_a_majority_catches_an_entry_applied_while_on_a_minority() {
    // Servers 1 and 2 list every entry with another term than it has: at
    // the first apply anywhere only server 0's log holds the entry.
    let log: LogHook = Arc::new(|me, t| {
        t.map(|mut v| {
            if let Some(x) = v.last_mut().filter(|_| me != 0) {
                *x += 1;
            }
            v
        })
    });
    let r = run(&small(7, 3, vec![]), Some(wrap(Hooks { log_terms: Some(log), ..Default::default() })));
    assert_violation(&r, Property::CommittedOnMajority, &["the first apply of that index", "only 1 of 3 servers' logs held it"]);
    // The same wrapper listing every log as it is passes. (One liar of
    // three is no legal case: the leader may commit with the liar's ack
    // before the third server has the entry, and which follower acks first
    // is the schedule's choice.)
    let log: LogHook = Arc::new(|_, t| t);
    let r = run(&small(7, 3, vec![]), Some(wrap(Hooks { log_terms: Some(log), ..Default::default() })));
    assert!(r.passed, "{:?}", r.failure);
}

/// Puts a key no clerk wrote into its replica, once.
struct Ghost;

impl Tamper for Ghost {
    fn before_apply(&self, _req: &KvRequest, sm: &mut KvStateMachine) {
        sm.apply(&KvRequest { client: 0xdead, seq: 1, op: KvOp::Put { key: "ghost".into(), value: "boo".into() } });
    }
}

#[test]
fn convergence_catches_replicas_that_differ() {
    let customize: Customize = Arc::new(|o: &mut KvOptions| o.tamper_one = Some((2, Arc::new(Ghost))));
    let r = run(&small(8, 3, Vec::new()), Some(customize));
    assert_violation(&r, Property::Convergence, &["hold different data", "key \"ghost\""]);
}

#[test]
fn convergence_catches_a_replica_that_falls_behind() {
    // Followers hand committed entries to their service slowly (one per 300
    // ms), in order and complete; the leader at once. The followers fall
    // behind and cannot catch up within the bound.
    let slow: ApplyHook = Arc::new(|_me, raft, mut rx, out| {
        async move {
            let queue = Arc::new(Mutex::new(std::collections::VecDeque::new()));
            let q = queue.clone();
            tokio::spawn(async move {
                loop {
                    let lead = raft.state().1;
                    tokio::time::sleep(Duration::from_millis(if lead { 1 } else { 300 })).await;
                    let mut q = q.lock().unwrap();
                    while let Some(m) = q.pop_front() {
                        let _ = out.send(m);
                        if !lead {
                            break;
                        }
                    }
                }
            });
            while let Some(m) = rx.recv().await {
                queue.lock().unwrap().push_back(m);
            }
        }
        .boxed()
    });
    let r = run(&small(9, 3, Vec::new()), Some(wrap(Hooks { apply: Some(slow), ..Default::default() })));
    assert_violation(&r, Property::Convergence, &["have not applied up to the same index", "3000 ms after the run ended"]);
}

#[test]
fn exactly_once_catches_a_server_without_a_duplicate_table() {
    let mut spec = small(10, 3, Vec::new()).with_bug(Bug::NoDedup);
    spec.faults.duplicate_rate = 0.3;
    let r = run(&spec, None);
    assert_violation(&r, Property::ExactlyOnce, &["applied request #", "twice as new"]);
}

/// This crate's Raft, plus a task that sends `per_ms` junk Raft messages to
/// every peer each virtual millisecond: a Raft that floods the network.
fn flooding(per_ms: usize) -> Customize {
    Arc::new(move |o: &mut KvOptions| {
        let base = o.make_raft.clone();
        o.make_raft = Arc::new(move |a: MakeArgs| {
            let (transport, peers, me) = (a.transport.clone(), a.peers.clone(), a.me);
            let inner = base(a)?;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    for (i, p) in peers.iter().enumerate() {
                        for _ in 0..per_ms {
                            if i != me {
                                // A task each: madsim charges every send 1 ms.
                                let (t, p) = (transport.clone(), *p);
                                tokio::spawn(async move { t.notify(p, raft::RAFT_SERVICE, vec![0xff]).await });
                            }
                        }
                    }
                }
            });
            Ok(inner)
        });
    })
}

#[test]
fn efficiency_bound_catches_a_raft_that_floods() {
    let spec = small(11, 3, Vec::new());
    let r = run(&spec, Some(flooding(1)));
    let f = r.failure.as_ref().expect("a flooding Raft must fail the run");
    assert_eq!(f.class.clone(), FailureClass::Inefficient, "{f}");
    assert!(f.detail.contains("committed entries") && f.detail.contains("the bound for this mix"), "{f}");
    println!("{f}");
    // The same run without the flood stays well inside the bound.
    let ok = run(&spec, None);
    assert!(ok.passed, "{:?}", ok.failure);
    let (msgs, bytes) = kvraft::campaign::verify::efficiency_bound(&spec, ok.committed, ok.virtual_ms as f64 / 1000.0);
    assert!(ok.raft_msgs * 2 < msgs && ok.raft_bytes * 2 < bytes, "{} of {msgs}, {} of {bytes}", ok.raft_msgs, ok.raft_bytes);
}

#[test]
fn message_budget_stops_a_run_that_floods() {
    // A tight budget, so the test stays quick: 5,000 messages plus 5,000 a
    // second; the flood sends 20,000 a second.
    let flood = flooding(10);
    let customize: Customize = Arc::new(move |o: &mut KvOptions| {
        flood(o);
        o.budget = Some(kvraft::sim::network::Budget { base: 5_000, per_s: 5_000, ..Default::default() });
    });
    let r = run(&small(12, 3, Vec::new()), Some(customize));
    let f = r.failure.as_ref().expect("the budget must stop the run");
    assert_eq!(f.class.clone(), FailureClass::Budget, "{f}");
    assert!(f.detail.contains("messages sent in") && f.detail.contains("the run was stopped"), "{f}");
    println!("{f}");
    // Bytes: a budget of 10 KB plus 10 KB a second stops even a correct
    // run (its three clerks and servers send more).
    let customize: Customize = Arc::new(|o: &mut KvOptions| {
        o.budget = Some(kvraft::sim::network::Budget { bytes_base: 10_000, bytes_per_s: 10_000, ..Default::default() });
    });
    let r = run(&small(12, 3, Vec::new()), Some(customize));
    let f = r.failure.as_ref().expect("the bytes budget must stop the run");
    assert_eq!(f.class.clone(), FailureClass::Budget, "{f}");
    assert!(f.detail.contains("bytes sent in") && f.detail.contains("budget 10000 + 10000 per s"), "{f}");
    println!("{f}");
}

#[test]
fn reported_state_catches_a_leader_situation_its_applies_contradict() {
    // Every new leader claims uncommitted entries of earlier terms, even
    // the first one, whose log is empty: the first entry it then applies
    // beyond its commit index is of its own term.
    let events: EventHook = Arc::new(|_, e| match e {
        RaftEvent::Role { role: Role::Leader, .. } => vec![e, RaftEvent::Situation(Situation::LeaderWithUncommitted)],
        e => vec![e],
    });
    let r = run(&small(5, 3, vec![]), Some(rewrite_events(events)));
    assert_violation(&r, Property::ReportedState, &["reported leader_with_uncommitted in term 1", "the entry at index 1", "applied index 1 of term 1"]);
}

#[test]
fn reported_state_catches_a_vote_refused_for_the_log_then_granted() {
    // Every vote granted is also counted as refused for the candidate's log.
    let events: EventHook = Arc::new(|_, e| match e {
        RaftEvent::Vote { granted: true, .. } => vec![RaftEvent::Situation(Situation::VoteRefusedLogBehind), e],
        e => vec![e],
    });
    let r = run(&small(5, 3, vec![]), Some(rewrite_events(events)));
    assert_violation(&r, Property::ReportedState, &["reported vote_refused_log_behind and then granted its vote in term 1"]);
}

#[test]
fn reported_state_catches_a_step_down_on_a_reply_that_is_no_step_down() {
    // A candidate counts a step down on a reply just as it wins instead.
    let events: EventHook = Arc::new(|_, e| match e {
        RaftEvent::Role { role: Role::Leader, .. } => vec![RaftEvent::Situation(Situation::SteppedDownOnReply), e],
        e => vec![e],
    });
    let r = run(&small(5, 3, vec![]), Some(rewrite_events(events)));
    assert_violation(&r, Property::ReportedState, &["reported stepped_down_on_reply in term 1, then became Leader in term 1"]);
}

#[test]
fn op_deadline_fails_a_run_whose_ops_never_complete() {
    // No server applies anything: every op waits for ever. A lab-style
    // workload (`basic`: three rounds of 5 s) waits for its ops, so the run
    // fails a minute (virtual) after its planned 15 s, long before the time
    // limit.
    let none: ApplyHook = Arc::new(|_, _raft, mut rx, _out| async move { while rx.recv().await.is_some() {} }.boxed());
    let spec = kvraft::campaign::catalog::spec_for("basic", 13, None).unwrap();
    let r = run(&spec, Some(wrap(Hooks { apply: Some(none), ..Default::default() })));
    let f = r.failure.as_ref().expect("ops that never complete must fail the run");
    assert_eq!(f.class.clone(), FailureClass::Liveness, "{f}");
    assert!(f.detail.contains("still pending 75 s later (virtual time)"), "{f}");
    println!("{f}");
}

/// This crate's Raft, whose `start` never returns once it has taken
/// `after` commands (the thread sleeps for good, as a step caught in an
/// endless loop would spin): virtual time stops with it.
struct StuckStart {
    inner: Arc<dyn Consensus>,
    after: usize,
    taken: Mutex<usize>,
}

impl Consensus for StuckStart {
    fn start(&self, command: Vec<u8>) -> Option<(Index, Term)> {
        let n = {
            let mut taken = self.taken.lock().unwrap();
            *taken += 1;
            *taken
        };
        if n > self.after {
            loop {
                std::thread::park();
            }
        }
        self.inner.start(command)
    }
    fn state(&self) -> (Term, bool) {
        self.inner.state()
    }
    fn kill(&self) {
        self.inner.kill()
    }
    fn reports_events(&self) -> bool {
        self.inner.reports_events()
    }
    fn log_terms(&self, upto: Index) -> Option<Vec<Term>> {
        self.inner.log_terms(upto)
    }
}

#[test]
fn wall_limit_fails_a_run_whose_step_never_returns() {
    let customize: Customize = Arc::new(|o: &mut KvOptions| {
        let base = o.make_raft.clone();
        o.make_raft = Arc::new(move |a: MakeArgs| {
            let inner = base(a)?;
            Ok(Arc::new(StuckStart { inner, after: 20, taken: Mutex::new(0) }) as Arc<dyn Consensus>)
        });
    });
    let opts = RunOptions { time_limit: LIMIT, wall_limit: Some(Duration::from_secs(2)), customize: Some(customize), ..Default::default() };
    let r = exec::run(&small(14, 3, Vec::new()), &opts);
    let f = r.failure.as_ref().expect("a run stuck in a step must fail as hung");
    assert_eq!(f.class.clone(), FailureClass::Hung, "{f}");
    assert!(f.detail.contains("did not finish in 2 s of wall time"), "{f}");
    assert!(r.reproduce.contains("--spec") || r.reproduce.contains("--seed 14"), "{}", r.reproduce);
    println!("{f}");
    // The same run, its steps all returning, passes inside the same limit.
    let opts = RunOptions { time_limit: LIMIT, wall_limit: Some(Duration::from_secs(2)), ..Default::default() };
    let ok = exec::run(&small(14, 3, Vec::new()), &opts);
    assert!(ok.passed, "{:?}", ok.failure);
}

#[test]
fn reported_state_catches_a_role_reported_again_unchanged() {
    // Every follower that hears from its leader reports being a follower
    // of that term again.
    let events: EventHook = Arc::new(|_, e| match e {
        RaftEvent::Appended { term, .. } => vec![e, RaftEvent::Role { term, role: Role::Follower }],
        e => vec![e],
    });
    let r = run(&small(5, 3, vec![]), Some(rewrite_events(events)));
    assert_violation(&r, Property::ReportedState, &["reported becoming Follower in term 1, which it already was"]);
}

#[test]
fn reported_state_catches_a_vote_refused_for_the_log_in_another_term() {
    // Every refused vote is also counted as refused for the candidate's
    // log, those refused for their stale term included.
    let events: EventHook = Arc::new(|_, e| match e {
        RaftEvent::Vote { granted: false, .. } => vec![RaftEvent::Situation(Situation::VoteRefusedLogBehind), e],
        e => vec![e],
    });
    // A stale vote request needs a swarm mix that delays one past a new
    // term: the first of a few seeds that has one is caught.
    let (seed, r) = (1..=20)
        .map(|seed| (seed, run(&swarm_spec(seed), Some(rewrite_events(events.clone())))))
        .find(|(_, r)| !r.passed)
        .expect("20 swarm seeds, none caught reporting a stale request's refusal as one for the log");
    assert_violation(&r, Property::ReportedState, &["reported vote_refused_log_behind for a request of term", "only a request of its own term is refused for the log"]);
    // The swarm run itself passes.
    assert!(run(&swarm_spec(seed), None).passed);
}

/// A Raft seen from outside at one moment: a term, leadership, a log.
struct Fixed {
    term: Term,
    leader: bool,
    log: Vec<Term>,
}

impl Consensus for Fixed {
    fn start(&self, _: Vec<u8>) -> Option<(Index, Term)> {
        None
    }
    fn state(&self) -> (Term, bool) {
        (self.term, self.leader)
    }
    fn kill(&self) {}
    fn log_terms(&self, upto: Index) -> Option<Vec<Term>> {
        Some(self.log.iter().take(upto as usize).copied().collect())
    }
}

/// Leader completeness as the Raft paper states it (section 5.4): an entry
/// committed in a term is in the log of every leader of a *higher* term. A
/// leader of a lower term elected later in time, by a vote granted before
/// that commit and delivered after it, need not hold it (swarm seed
/// 10010381: server 0 granted server 2 its vote for term 1, the reply was
/// held back while server 0 won term 2 and committed index 1, then the late
/// grant made server 2 leader of term 1 with an empty log). A leader of a
/// higher term without it is still caught.
#[test]
fn leader_completeness_binds_only_leaders_of_later_terms() {
    use kvraft::sim::monitor::Monitor;
    let check = |leader_term: Term| -> Option<Failure> {
        let mut rt = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
        rt.set_time_limit(Duration::from_secs(5));
        rt.block_on(async move {
            let m = Monitor::new(3, Arc::new(|c: &[u8]| format!("{c:?}")));
            // Server 0 leads term 2 and applies index 1 of term 2 in term 2.
            // (The monitor holds Rafts weakly: these live to the end.)
            let events0 = m.raft_events(0, 1);
            let s0: Arc<dyn Consensus> = Arc::new(Fixed { term: 2, leader: true, log: vec![2] });
            m.boot(0, 1, s0.clone(), false);
            events0(RaftEvent::Role { term: 2, role: Role::Leader });
            events0(RaftEvent::Committed { index: 1 });
            m.apply(0, 1, &ApplyMsg { index: 1, term: 2, command: b"x".to_vec() });
            // Then server 2, its log empty, becomes leader of `leader_term`.
            let events = m.raft_events(2, 1);
            let s2: Arc<dyn Consensus> = Arc::new(Fixed { term: leader_term, leader: true, log: vec![] });
            m.boot(2, 1, s2.clone(), false);
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                events(RaftEvent::Role { term: leader_term, role: Role::Leader })
            }));
            assert!(checked.is_ok());
            // The check runs once the step that made it leader is over.
            tokio::time::sleep(Duration::from_millis(1)).await;
            drop((s0, s2));
            m.violation()
        })
    };
    // Term 1 (lower than the commit's term 2), while server 0 still leads
    // term 2: legal, for election safety too (two leaders, two terms).
    assert_eq!(check(1), None, "a leader of an earlier term need not hold what a later term committed");
    // Term 2 is the committing term itself: server 0 leads it, so a second
    // leader there is an election safety matter, not this one. Term 3: caught.
    let v = std::thread::spawn(move || {
        std::panic::catch_unwind(|| check(3)).err().and_then(|e| e.downcast_ref::<Failure>().cloned())
    })
    .join()
    .unwrap();
    let v = v.expect("a leader of term 3 without index 1 (committed in term 2) is a violation");
    assert_eq!(v.class, FailureClass::Safety(Property::LeaderCompleteness), "{v}");
    assert_eq!((v.servers.clone(), v.term, v.index), (vec![0, 2], Some(3), Some(1)), "{v}");
    assert!(v.detail.contains("became leader of term 3"), "{v}");
}
