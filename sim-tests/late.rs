//! Late and replayed messages, and leaders that come back (issue 26): the
//! faults fire and both shipped Rafts pass them. (What they catch is
//! measured on the catalogue of classic bugs, `scripts/bug-catalogue.sh`.)

use std::time::Duration;

use kvraft::campaign::exec::{run, RunOptions};
use kvraft::campaign::spec::{Action, NemesisEvent, RunSpec, Workload};
use kvraft::campaign::swarm::swarm_spec;
use kvraft::sim::fleet::DiskFaults;
use kvraft::sim::rafts::RaftKind;

const LIMIT: Option<Duration> = Some(Duration::from_secs(600));

/// A swarm seed's spec with no faults but `events` (and `replay_rate`).
fn quiet(seed: u64, raft: RaftKind, servers: usize, events: Vec<NemesisEvent>) -> RunSpec {
    let mut s = swarm_spec(seed).with_raft(raft);
    s.servers = servers;
    s.clients = 5;
    s.workload = Workload::Swarm { keys: 3, run_ms: 12000, ops_per_client: None };
    s.faults = Default::default();
    s.disk = DiskFaults::default();
    s.clock_drift = 1.0;
    s.nemesis = Some(events);
    s.bound_ms = 8000.0;
    s
}

fn every(gap_ms: u64, count: u64, action: impl Fn(u64) -> Action) -> Vec<NemesisEvent> {
    (0..count).map(|k| NemesisEvent { at_ms: 600 + gap_ms * k, action: action(k) }).collect()
}

fn late(k: u64) -> Action {
    Action::LateMessages { hold_pct: 50 + 10 * (k % 5), restart: k % 2 == 1 }
}

/// The same moments without holding anything: the leader cut off, all
/// healed a second later.
fn plain_isolations(gap_ms: u64, count: u64) -> Vec<NemesisEvent> {
    (0..count)
        .flat_map(|k| {
            let at = 600 + gap_ms * k;
            [NemesisEvent { at_ms: at + 200, action: Action::IsolateLeader }, NemesisEvent { at_ms: at + 1200, action: Action::Heal }]
        })
        .collect()
}

#[test]
fn late_messages_fire_and_both_rafts_pass_them() {
    for raft in RaftKind::ALL {
        for seed in 1..=4u64 {
            let r = run(&quiet(seed, raft, 3 + 2 * (seed as usize % 2), every(3500, 3, late)), &RunOptions::limit(LIMIT));
            assert!(r.passed, "{} seed {seed}: {:?}", raft.name(), r.failure);
            assert!(r.faults.held >= 20, "{} seed {seed}: {:?}", raft.name(), r.faults);
            // A new leader was elected while messages were held, each time.
            let led = r.monitor.as_ref().unwrap().terms_led;
            assert!(led >= 3, "{} seed {seed}: {led} terms led", raft.name());
        }
    }
}

/// Replayed copies arrive seconds late (a request to its handler, a reply
/// dropped unless its call still waits); both shipped Rafts pass them,
/// and runs without replays replay nothing.
#[test]
fn replayed_messages_fire_and_both_rafts_pass_them() {
    for raft in RaftKind::ALL {
        for seed in 1..=4u64 {
            let mut spec = quiet(seed, raft, 5, plain_isolations(3500, 3));
            let r = run(&spec, &RunOptions::limit(LIMIT));
            assert!(r.passed && r.faults.replayed == 0, "{} seed {seed}: {:?} {:?}", raft.name(), r.failure, r.faults);
            spec.faults.replay_rate = 0.05;
            let r = run(&spec, &RunOptions::limit(LIMIT));
            assert!(r.passed, "{} seed {seed}: {:?}", raft.name(), r.failure);
            assert!(r.faults.replayed >= 50, "{} seed {seed}: {:?}", raft.name(), r.faults);
        }
    }
}

/// A leader cut off with an entry of its own, overwritten, leads again,
/// and the messages held since its first term arrive then: both shipped
/// Rafts pass, the leader comes back in most events, and messages were
/// held only when asked.
#[test]
fn leaders_come_back_and_their_old_messages_with_them() {
    let returns = |hold_pct: u64| every(3500, 3, move |_| Action::LeaderReturns { hold_pct });
    for raft in RaftKind::ALL {
        let mut returned = 0;
        for seed in 1..=4u64 {
            let n = 3 + 2 * (seed as usize % 2);
            let hold = if seed % 2 == 0 { 0 } else { 60 };
            let r = run(&quiet(seed, raft, n, returns(hold)), &RunOptions::limit(LIMIT));
            assert!(r.passed, "{} seed {seed}: {:?}", raft.name(), r.failure);
            assert_eq!(r.faults.held > 0, hold > 0, "{} seed {seed}: {:?}", raft.name(), r.faults);
            returned += r.coverage["leader_returned"];
        }
        println!("{}: a leader came back {returned} times in 12 events", raft.name());
        assert!(returned >= 6, "{}: {returned} of 12", raft.name());
    }
}
