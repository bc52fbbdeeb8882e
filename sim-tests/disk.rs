//! The disk model and the faults beyond the network: unsynced writes lost
//! at a crash, torn writes, latent corruption, paused servers, clock drift.
//! Recovery never panics and never uses a record whose checksum fails; a
//! driver that answers before its state is durable, and a recovery that
//! ignores checksums, are caught by a campaign.

use std::sync::Arc;
use std::time::Duration;

use kvraft::campaign::exec::{run, Customize, RunOptions};
use kvraft::campaign::report::RunReport;
use kvraft::sim::failure::FailureClass;
use kvraft::campaign::spec::{Action, NemesisEvent, RunSpec, Workload, WriteMoment, WriteTarget};
use kvraft::campaign::swarm::swarm_spec;
use kvraft::raft::message::{Entry, HardState};
use kvraft::raft::persister::{Damage, DiskConfig, DiskTamper, StorageError, WriteKind};
use kvraft::raft::{MakeArgs, Persister};
use kvraft::sim::fleet::DiskFaults;
use kvraft::sim::kv_cluster::KvOptions;
use kvraft::sim::rafts::RaftKind;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

const LIMIT: Option<Duration> = Some(Duration::from_secs(600));

fn ent(term: u64, cmd: &str) -> Entry {
    Entry { term, command: cmd.as_bytes().to_vec() }
}

/// Runs `f` in a fresh simulation (the disk's sync sleeps in virtual time).
fn sim<T: Send + 'static, F: std::future::Future<Output = T> + 'static>(f: impl FnOnce() -> F + Send + 'static) -> T {
    std::thread::spawn(move || madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default()).block_on(f()))
        .join()
        .unwrap()
}

#[test]
fn a_crash_keeps_what_was_synced_and_loses_the_rest() {
    let (rec, report) = sim(|| async {
        let p = Persister::with_disk(DiskConfig { sync_us: (500, 500), lose_unsynced: true });
        p.save_hard_state(&HardState { term: 3, voted_for: Some(1) });
        p.append_log(&[ent(1, "a"), ent(2, "b")]);
        let t = std::time::Instant::now();
        p.sync_to(p.written()).await;
        // madsim's timers sleep at least 1 ms.
        assert!(t.elapsed() >= Duration::from_micros(500) && t.elapsed() < Duration::from_micros(1100), "{:?}", t.elapsed());
        p.append_log(&[ent(3, "c")]);
        p.save_hard_state(&HardState { term: 4, voted_for: None });
        let (next, report) = p.crash(false, false, &mut StdRng::seed_from_u64(1));
        (next.recover().unwrap(), report)
    });
    assert_eq!(rec.hard_state, HardState { term: 3, voted_for: Some(1) });
    assert_eq!(rec.log, vec![ent(1, "a"), ent(2, "b")]);
    assert_eq!((report.writes_lost, report.torn, report.corrupted), (2, false, false));
    // A disk told to keep unsynced writes loses nothing.
    let p = Persister::with_disk(DiskConfig { sync_us: (500, 500), lose_unsynced: false });
    p.append_log(&[ent(1, "a")]);
    let (next, report) = p.crash(false, false, &mut StdRng::seed_from_u64(1));
    assert_eq!((next.recover().unwrap().log.len(), report.writes_lost), (1, 0));
}

#[test]
fn a_torn_write_is_dropped_and_the_log_goes_on_after_it() {
    let torn_seen = sim(|| async {
        let mut torn_seen = 0;
        for seed in 0..50 {
            let p = Persister::new();
            p.append_log(&[ent(1, "a")]);
            p.sync_to(p.written()).await;
            p.append_log(&[ent(1, "a long entry that the crash will tear somewhere")]);
            let (torn, report) = p.crash(true, false, &mut StdRng::seed_from_u64(seed));
            let st = torn.raw_state();
            if report.torn {
                torn_seen += 1;
                assert!(matches!(st.damage, Some(Damage::TornTail { record: 1 })), "seed {seed}: {:?}", st.damage);
            }
            assert_eq!(st.log.len(), 1, "seed {seed}");
            // Reading the log cut the torn tail off: later writes follow the
            // last good record, and the next recovery finds nothing wrong.
            torn.append_log(&[ent(2, "b")]);
            let rec = torn.recover().unwrap();
            assert_eq!(rec.log, vec![ent(1, "a"), ent(2, "b")], "seed {seed}");
            assert_eq!(torn.damage(), None);
        }
        torn_seen
    });
    assert!(torn_seen > 40, "{torn_seen}");
}

#[test]
fn a_corrupt_synced_record_stops_recovery_with_a_clear_error() {
    let p = Persister::with_disk(DiskConfig { sync_us: (1, 1), lose_unsynced: false });
    p.save_hard_state(&HardState { term: 2, voted_for: Some(0) });
    p.append_log(&[ent(1, "a"), ent(2, "b"), ent(2, "c")]);
    let mut found = 0;
    for seed in 0..20 {
        let (bad, report) = p.crash(false, true, &mut StdRng::seed_from_u64(seed));
        assert!(report.corrupted);
        match bad.recover() {
            Err(StorageError::Corrupt { record, records, reason }) => {
                found += 1;
                assert!(record < records && records == 4, "{record} of {records}");
                let msg = StorageError::Corrupt { record, records, reason }.to_string();
                assert!(msg.contains("corrupt") && msg.contains(&format!("record {record} of 4")), "{msg}");
            }
            other => panic!("seed {seed}: a corrupt record must not recover: {other:?}"),
        }
        // Ignoring checksums hands back what the flipped bit made of it.
        bad.tamper(DiskTamper { ignore_checksums: true, ..Default::default() });
        assert!(!matches!(bad.raw_state().damage, Some(Damage::Corrupt { reason, .. }) if reason == "checksum mismatch"));
    }
    assert_eq!(found, 20);
}

proptest! {
    /// Whatever bytes the disk holds (arbitrary payloads in well-framed
    /// records, bits flipped in synced records, torn tails), recovery
    /// answers (Ok or Err naming what is wrong), never panics, and never
    /// returns a log longer than what was written.
    #[test]
    fn recovery_never_panics_on_garbage(
        entries in proptest::collection::vec(("[a-z]{0,12}", 1u64..5), 0..8),
        garbage in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..4),
        seed in any::<u64>(),
    ) {
        let p = Persister::with_disk(DiskConfig { sync_us: (1, 1), lose_unsynced: false });
        p.save_hard_state(&HardState { term: 9, voted_for: None });
        let es: Vec<Entry> = entries.iter().map(|(c, t)| ent(*t, c)).collect();
        p.append_log(&es);
        let (mut q, _) = p.crash(seed % 2 == 0, seed % 3 == 0, &mut StdRng::seed_from_u64(seed));
        let mut raw_entries = 0;
        for (k, (as_entry, bytes)) in garbage.iter().enumerate() {
            if *as_entry {
                q.append_raw_log([bytes.clone()]);
                raw_entries += 1;
            } else {
                q.save_raw_hard_state(bytes.clone());
            }
            let (next, _) = q.crash(k % 2 == 0, k % 3 == 0, &mut StdRng::seed_from_u64(seed ^ k as u64));
            q = next;
        }
        match q.recover() {
            Ok(r) => prop_assert!(r.log.len() <= es.len() + raw_entries),
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains("corrupt") || msg.contains("does not decode"), "{}", msg);
            }
        }
    }
}

/// A swarm run on `raft` with `disk`, the rest of its mix from the seed.
fn swarm(seed: u64, raft: RaftKind, disk: DiskFaults) -> RunSpec {
    RunSpec { disk, ..swarm_spec(seed).with_raft(raft) }
}

/// Every boot's disk handed to `f` before the Raft reads it.
fn on_each_disk(f: fn(&Persister)) -> Customize {
    Arc::new(move |o: &mut KvOptions| {
        let base = o.make_raft.clone();
        o.make_raft = Arc::new(move |a: MakeArgs| {
            f(&a.persister);
            base(a)
        });
    })
}

/// The first of seeds 1..=n whose run fails, with its report.
fn first_failure(n: u64, spec: impl Fn(u64) -> RunSpec, customize: &Customize) -> Option<RunReport> {
    (1..=n).map(|s| run(&spec(s), &RunOptions::limit(LIMIT).customized(customize.clone()))).find(|r| !r.passed)
}

#[test]
fn a_driver_that_answers_before_its_state_is_durable_is_caught_within_50_seeds() {
    // Syncs return at once and the writes become durable a latency later:
    // votes and acknowledgements go out before they would survive a crash.
    // A slow disk (syncs of 20-60 ms, as swarm draws in one seed in ten)
    // and frequent crashes, some aimed at the leader: the window between
    // an answer and its durability is wide, and crashes land in it.
    let disk = DiskFaults { sync_us: (20_000, 60_000), lose_unsynced: true, torn_rate: 0.5, corrupt_rate: 0.0 };
    let broken = on_each_disk(|p| p.tamper(DiskTamper { ack_before_durable: true, ..Default::default() }));
    let spec = |s: u64, raft: RaftKind| {
        let mut spec = swarm(s, raft, disk);
        spec.crash_rate = spec.crash_rate.max(0.5);
        spec.targeted_rate = spec.targeted_rate.max(0.5);
        spec.nemesis = None;
        spec.bound_ms *= 4.0;
        spec
    };
    for raft in RaftKind::SHIPPED {
        let r = first_failure(50, |s| spec(s, raft), &broken)
            .unwrap_or_else(|| panic!("{}: 50 swarm seeds missed a driver that answers before its state is durable", raft.name()));
        let f = r.failure.as_ref().unwrap();
        println!("{}: caught at seed {}: {f}", raft.name(), r.seed);
        // Lost acknowledged state breaks a safety property or the history,
        // trips an assertion of the Raft itself (raft-rs), or leaves a
        // leader sure a follower holds entries it lost, backing off for
        // ever (a liveness failure).
        assert!(
            matches!(
                f.class.clone(),
                FailureClass::Safety(_) | FailureClass::NotLinearizable | FailureClass::Panic(_) | FailureClass::Liveness
            ),
            "{f}"
        );
        // The same seed with an honest disk passes.
        let ok = run(&spec(r.seed, raft), &RunOptions::limit(LIMIT));
        assert!(ok.passed, "{:?}", ok.failure);
    }
}

#[test]
fn a_commit_before_the_leaders_copy_is_durable_fails_commit_crashes_and_rewrites_at_once() {
    // The same broken driver, through the scenarios aimed at it: a leader
    // left with a bare majority and a stalled disk crashes the moment it
    // commits, while the followers that hold the entry are cut off (in
    // `rewrites`, a leader whose log the one before had just rewritten).
    // A leader that counts its own unsynced copy loses a committed entry
    // the first time it is caught; both Rafts, within 3 seeds (`rewrites`
    // catches such a leader in about 80% of its events).
    let broken = on_each_disk(|p| p.tamper(DiskTamper { ack_before_durable: true, ..Default::default() }));
    for scenario in ["commit_crashes", "rewrites"] {
        for raft in RaftKind::SHIPPED {
            let spec = |seed| kvraft::campaign::catalog::spec_for(scenario, seed, None).unwrap().with_raft(raft);
            let r = first_failure(3, spec, &broken)
                .unwrap_or_else(|| panic!("{}: {scenario} missed a leader that commits on an unsynced copy", raft.name()));
            let f = r.failure.as_ref().unwrap();
            println!("{} {scenario} seed {}: {f}", raft.name(), r.seed);
            assert!(matches!(f.class.clone(), FailureClass::Safety(_) | FailureClass::NotLinearizable | FailureClass::Panic(_)), "{f}");
            let ok = run(&spec(r.seed), &RunOptions::limit(LIMIT));
            assert!(ok.passed, "{} {scenario}: {:?}", raft.name(), ok.failure);
            // Honest, it was caught as the broken one was (in `rewrites`
            // the entry it commits is on its disk by then: nothing is lost).
            if scenario == "commit_crashes" {
                assert!(ok.faults.crashes >= 5 && ok.faults.writes_lost > 0, "{} {scenario}: {:?}", raft.name(), ok.faults);
            } else {
                assert!(ok.coverage["rewritten_leader_caught"] >= 1 && ok.faults.crashes >= 1, "{} {scenario}: {:?}", raft.name(), ok.coverage);
            }
        }
    }
}

#[test]
fn rewrites_walks_a_rewritten_server_into_leading_and_catches_its_first_commit() {
    // Each of the three events: a leader cut off with an entry of its own
    // rejoins; the next leader's AppendEntries replaces that entry and the
    // next leader is cut off at once; the rewritten server leads on a
    // stalled disk and is caught applying its first entry. It leads about
    // half the time on 3 servers (over seeds 1-20: ours 47 of 60 events,
    // raft-rs 30 of 60; raft-rs reports the truncation but not the append,
    // so there the nemesis cuts off whoever leads). Over seeds 1-10 at
    // least 12 of 30 must get there on each Raft; by chance none does.
    for raft in RaftKind::SHIPPED {
        let mut caught = 0;
        for seed in 1..=10 {
            let spec = kvraft::campaign::catalog::spec_for("rewrites", seed, None).unwrap().with_raft(raft);
            let r = run(&spec, &RunOptions::limit(LIMIT));
            assert!(r.passed, "{} seed {seed}: {:?}", raft.name(), r.failure);
            assert!(r.coverage["conflict_truncated"] >= 1, "{} seed {seed}: {:?}", raft.name(), r.coverage);
            caught += r.coverage["rewritten_leader_caught"];
        }
        println!("{}: caught {caught} of 30", raft.name());
        assert!(caught >= 12, "{}: only {caught} of the 30 events caught a rewritten leader at its first commit", raft.name());
    }
    // Without the nemesis the state is not reached by chance.
    let mut quiet = kvraft::campaign::catalog::spec_for("rewrites", 1, None).unwrap();
    quiet.nemesis = Some(Vec::new());
    let r = run(&quiet, &RunOptions::limit(LIMIT));
    assert!(r.passed, "{:?}", r.failure);
    assert_eq!(r.coverage["rewritten_leader_caught"], 0);
}

#[test]
fn a_recovery_that_ignores_checksums_is_caught() {
    // Every crash corrupts a synced record of one server; the recovery
    // uses whatever the flipped bit made of it.
    let disk = DiskFaults { sync_us: (500, 2000), lose_unsynced: true, torn_rate: 0.5, corrupt_rate: 1.0 };
    let broken = on_each_disk(|p| p.tamper(DiskTamper { ignore_checksums: true, ..Default::default() }));
    let crashy = |s: u64| {
        let mut spec = swarm(s, RaftKind::OURS, disk);
        spec.crash_rate = 0.5;
        spec.nemesis = None;
        spec
    };
    let r = first_failure(50, crashy, &broken).expect("50 seeds missed a recovery that ignores checksums");
    let f = r.failure.as_ref().unwrap();
    println!("caught at seed {}: {f}", r.seed);
    assert!(matches!(f.class.clone(), FailureClass::Safety(_) | FailureClass::NotLinearizable), "{f}");
    // The honest recovery refuses to start on the corrupt disk instead, and
    // the rest of the cluster carries on.
    let ok = run(&crashy(r.seed), &RunOptions::limit(LIMIT));
    assert!(ok.passed, "{:?}", ok.failure);
    assert!(ok.faults.corrupt_found >= 1, "{:?}", ok.faults);
    assert!(ok.coverage["corrupt_record_found"] >= 1);
}

/// A small run with `events`, on `raft`.
fn small(seed: u64, raft: RaftKind, events: Vec<NemesisEvent>) -> RunSpec {
    let mut s = swarm_spec(seed).with_raft(raft);
    s.servers = 5;
    s.clients = 4;
    s.workload = Workload::Swarm { keys: 3, run_ms: 6000, ops_per_client: None };
    s.faults = Default::default();
    s.disk = DiskFaults::default();
    s.clock_drift = 1.0;
    s.nemesis = Some(events);
    s.bound_ms = 5000.0;
    s
}

#[test]
fn a_paused_leader_wakes_up_stale_and_does_no_harm() {
    let events = vec![
        NemesisEvent { at_ms: 1000, action: Action::PauseLeader { ms: 2500 } },
        NemesisEvent { at_ms: 4200, action: Action::Pause { server: 1, ms: 800 } },
    ];
    for raft in RaftKind::SHIPPED {
        let r = run(&small(3, raft, events.clone()), &RunOptions::limit(LIMIT));
        assert!(r.passed, "{}: {:?}", raft.name(), r.failure);
        assert_eq!(r.faults.pauses, 2);
        assert!(r.coverage["paused_leader_resumed"] >= 1, "{}: {:?}", raft.name(), r.coverage);
        // A new leader took over while the old one slept.
        assert!(r.monitor.as_ref().unwrap().terms_led >= 2);
    }
}

#[test]
fn drifting_clocks_still_elect_and_serve() {
    for raft in RaftKind::SHIPPED {
        for seed in 1..=3 {
            let mut spec = small(seed, raft, vec![NemesisEvent { at_ms: 1500, action: Action::IsolateLeader }, NemesisEvent { at_ms: 3000, action: Action::Heal }]);
            spec.clock_drift = 2.5;
            let r = run(&spec, &RunOptions::limit(LIMIT));
            assert!(r.passed, "{} seed {seed}: {:?}", raft.name(), r.failure);
            assert!(r.faults.drift > 1.2 && r.faults.drift <= 2.5, "{}", r.faults.drift);
        }
    }
}

/// Elections, each with a `crash_at_write`: the leader is cut off, and a
/// server of `target` is crashed the moment its hard state (term and vote)
/// is durable (or just before), back 20 ms later, in the same election.
fn write_crashes(moment: WriteMoment, target: WriteTarget) -> Vec<NemesisEvent> {
    let action = Action::CrashAtWrite { write: WriteKind::HardState, moment, target, down_ms: 20 };
    (0..6)
        .flat_map(|k| {
            let at = 500 + 900 * k;
            [
                NemesisEvent { at_ms: at, action: Action::IsolateLeader },
                NemesisEvent { at_ms: at + 1, action: action.clone() },
                NemesisEvent { at_ms: at + 800, action: Action::Heal },
            ]
        })
        .collect()
}

/// Crash points at durable-state writes, through the disk the harness
/// owns (so for any Raft): each election, a server is crashed at its hard
/// state's write and comes back 20 ms later, inside the same election.
/// Caught before the write is durable, the write is lost at the crash;
/// both shipped Rafts keep every property through it.
#[test]
fn crashes_at_hard_state_writes_fire_and_both_rafts_pass_them() {
    for raft in RaftKind::SHIPPED {
        for (seed, moment, target) in [(1, WriteMoment::After, WriteTarget::Voter), (2, WriteMoment::Before, WriteTarget::Any), (3, WriteMoment::After, WriteTarget::Leader)] {
            let r = run(&small(seed, raft, write_crashes(moment, target)), &RunOptions::limit(LIMIT));
            let what = format!("{} seed {seed} {moment:?} {target:?}", raft.name());
            assert!(r.passed, "{what}: {:?}", r.failure);
            // A leader writes its hard state only when it steps down: it
            // may never, in a run this short.
            if target != WriteTarget::Leader {
                assert!(r.faults.crashes >= 3, "{what}: {:?}", r.faults);
            }
            if moment == WriteMoment::Before {
                assert!(r.faults.writes_lost >= 3, "caught before it was durable, the write must be lost: {what}: {:?}", r.faults);
            }
        }
    }
}

/// Elections split around a hub, each hub crashed at its vote's write
/// (`split_vote`, just `moment` it is durable) and back `down_ms` later.
fn split_votes(moment: WriteMoment, down_ms: u64) -> Vec<NemesisEvent> {
    (0..3).map(|k| NemesisEvent { at_ms: 600 + 1800 * k, action: Action::SplitVote { moment, down_ms } }).collect()
}

/// Our Raft, made to forget its vote (not its term) at every restart:
/// the vote of the term it was in is gone, as if never written.
fn forgets_its_vote() -> Customize {
    on_each_disk(|p| {
        if let Ok(r) = p.recover() {
            if r.hard_state.voted_for.is_some() {
                p.save_hard_state(&HardState { term: r.hard_state.term, voted_for: None });
            }
        }
    })
}

/// A server that forgets its vote at a restart votes twice in one term
/// when it comes back inside the election it voted in while the other
/// side's candidate still asks: `split_vote` brings exactly that about,
/// and two leaders of one term follow. The same specs with each split
/// vote replaced by a plain crash of the leader miss it. Both shipped
/// Rafts pass the split votes, and each time some hub comes back inside
/// the term it wrote.
#[test]
fn split_votes_catch_a_server_that_forgets_its_vote_at_restart() {
    let spec = |seed: u64, raft: RaftKind, events: Vec<NemesisEvent>| {
        let mut s = small(seed, raft, events);
        s.servers = 3 + 2 * (seed as usize % 2);
        s
    };
    let events = |seed: u64| {
        let moment = if seed.is_multiple_of(3) { WriteMoment::Before } else { WriteMoment::After };
        split_votes(moment, 5 + 20 * (seed % 4))
    };
    let mut caught = 0;
    for seed in 1..=20u64 {
        let r = run(&spec(seed, RaftKind::OURS, events(seed)), &RunOptions::limit(LIMIT).customized(forgets_its_vote()));
        if let Some(f) = &r.failure {
            println!("seed {seed}: {f}");
            assert!(matches!(f.class, FailureClass::Safety(_) | FailureClass::NotLinearizable), "{f}");
            caught += 1;
        }
        // The fault disabled: the leader crashes as often, with no split.
        let plain: Vec<NemesisEvent> =
            events(seed).iter().map(|e| NemesisEvent { at_ms: e.at_ms, action: Action::CrashLeader { down_ms: 50 } }).collect();
        let r = run(&spec(seed, RaftKind::OURS, plain), &RunOptions::limit(LIMIT).customized(forgets_its_vote()));
        assert!(r.passed, "seed {seed} without split votes: {:?}", r.failure);
    }
    println!("caught in {caught} of 20 seeds");
    assert!(caught >= 6, "split votes caught a server that forgets its vote in {caught} of 20 seeds");
    for raft in RaftKind::SHIPPED {
        let mut restarted_in_term = 0;
        for seed in 1..=10u64 {
            let r = run(&spec(seed, raft, events(seed)), &RunOptions::limit(LIMIT));
            assert!(r.passed, "{} seed {seed}: {:?}", raft.name(), r.failure);
            restarted_in_term += r.coverage["restarted_in_written_term"];
        }
        println!("{}: restarted in the written term {restarted_in_term} times", raft.name());
        assert!(restarted_in_term >= 10, "{}: {restarted_in_term}", raft.name());
    }
}

/// `action` six times, 900 ms apart from 500 ms on.
fn six(action: Action) -> Vec<NemesisEvent> {
    (0..6).map(|k| NemesisEvent { at_ms: 500 + 900 * k, action: action.clone() }).collect()
}

/// Six crashes of a follower caught writing log entries, just before they
/// are durable, each back 20 ms later.
fn append_crashes(target: WriteTarget) -> Vec<NemesisEvent> {
    six(Action::CrashAtWrite { write: WriteKind::Append, moment: WriteMoment::Before, target, down_ms: 20 })
}

/// Crashes at log writes catch a driver that acknowledges entries before
/// they are durable: a follower crashed between its acknowledgement and
/// its sync comes back without entries its leader counted: a commit left
/// on a minority, or a leader resending for ever to a follower it believes
/// holds them. The same moments with the leader crashed instead
/// catch it far less often; both shipped Rafts pass the crashes with an
/// honest disk.
#[test]
fn crashes_at_log_writes_catch_a_driver_that_acknowledges_before_durable() {
    let broken = on_each_disk(|p| p.tamper(DiskTamper { ack_before_durable: true, ..Default::default() }));
    let spec = |seed: u64, raft: RaftKind, events: Vec<NemesisEvent>| {
        let mut s = small(seed, raft, events);
        s.servers = 3 + 2 * (seed as usize % 2);
        s.disk = DiskFaults { sync_us: (20_000, 60_000), lose_unsynced: true, torn_rate: 0.0, corrupt_rate: 0.0 };
        s
    };
    let (mut caught, mut plain) = (0, 0);
    for seed in 1..=10u64 {
        let r = run(&spec(seed, RaftKind::OURS, append_crashes(WriteTarget::Voter)), &RunOptions::limit(LIMIT).customized(broken.clone()));
        if let Some(f) = &r.failure {
            println!("seed {seed}: {f}");
            // Lost acknowledged entries break a property or the history,
            // or leave a leader resending to a follower it believes holds
            // them (the message budget or liveness stops that run).
            assert!(
                matches!(
                    f.class,
                    FailureClass::Safety(_) | FailureClass::NotLinearizable | FailureClass::Panic(_) | FailureClass::Budget | FailureClass::Liveness
                ),
                "{f}"
            );
            caught += 1;
        }
        let r = run(&spec(seed, RaftKind::OURS, six(Action::CrashLeader { down_ms: 20 })), &RunOptions::limit(LIMIT).customized(broken.clone()));
        plain += r.failure.is_some() as u32;
    }
    println!("crashes at log writes caught it in {caught} of 10 seeds, leader crashes at the same moments in {plain}");
    assert!(caught >= 8 && plain <= 4, "crashes at log writes: {caught} of 10; leader crashes: {plain}");
    for raft in RaftKind::SHIPPED {
        for seed in 1..=4u64 {
            let r = run(&spec(seed, raft, append_crashes(WriteTarget::Voter)), &RunOptions::limit(LIMIT));
            assert!(r.passed && r.faults.crashes >= 3, "{} seed {seed}: {:?} {:?}", raft.name(), r.failure, r.faults);
        }
    }
}
