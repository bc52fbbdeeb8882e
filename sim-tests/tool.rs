//! The harness as a tool: run specs (round trips and clear errors), swarm
//! mixes, the liveness phase and the ms/op bound (both can fail), the
//! determinism check (catches unseeded randomness), shrinking a broken
//! server's failure, and the CLI's exit codes and failure files.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use kvraft::kv::Bug;
use kvraft::campaign::catalog::{self, spec_for};
use kvraft::campaign::{run, RunOptions};
use kvraft::campaign::nemesis::{materialize, outage_ms, schedule, RECOVERY_MS};
use kvraft::campaign::regressions::RegressionFile;
use kvraft::campaign::report::describe_mix;
use kvraft::sim::failure::FailureClass;
use kvraft::campaign::shrink::{shrink, ShrinkOptions};
use kvraft::campaign::spec::{Action, Faults, NemesisEvent, PartitionStyle, RunSpec, Workload};
use kvraft::campaign::swarm::{self, swarm_spec};
use kvraft::campaign::workload::GenericSpec;
use kvraft::sim::property::Property;
use kvraft::sim::rafts::{self, RaftInfo, RaftKind};

const LIMIT: Option<Duration> = Some(Duration::from_secs(600));

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tool-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn kvraft(args: &[&str]) -> (i32, String, String) {
    kvraft_env(args, &[])
}

fn kvraft_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kvraft")).args(args).envs(env.iter().copied()).output().expect("run kvraft");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A small swarm spec with a given schedule, for exact control.
fn small_swarm(seed: u64, events: Vec<NemesisEvent>) -> RunSpec {
    let mut s = swarm_spec(seed);
    s.servers = 5;
    s.clients = 3;
    s.workload = Workload::Swarm { keys: 3, run_ms: 3000, ops_per_client: None };
    s.faults = Default::default();
    s.disk = Default::default();
    s.clock_drift = 1.0;
    s.nemesis = Some(events);
    s.bound_ms = 5000.0;
    s
}

#[test]
fn specs_round_trip_through_json() {
    for name in catalog::catalog().iter().map(|s| s.name).chain([swarm::SWARM]) {
        for seed in [1, 77] {
            let spec = materialize(&spec_for(name, seed, None).unwrap());
            let back = RunSpec::from_json_str(&spec.to_json_pretty(), "test").unwrap();
            assert_eq!(back, spec, "{name} seed {seed}");
        }
    }
    // A catalogue scenario through its spec keeps the scenario's parameters.
    let sc = catalog::find("duplication").unwrap();
    let g = GenericSpec::from_run(&sc.spec(3)).unwrap();
    assert_eq!((g.clients, g.servers, g.crash, g.partitions, g.duplicate_rate), (5, 5, true, true, 0.3));
    assert_eq!(g.faults.as_ref().unwrap().request_loss, 0.1);
}

#[test]
fn bad_specs_name_file_and_reason() {
    let good = materialize(&swarm_spec(5)).to_json_pretty();
    let cut = &good[..good.len() / 2];
    let e = RunSpec::from_json_str(cut, "cut.json").unwrap_err();
    assert!(e.starts_with("cut.json: line ") && e.contains("column"), "{e}");
    let e = RunSpec::from_json_str(&good.replace("\"servers\"", "\"serverz\""), "typo.json").unwrap_err();
    assert!(e.contains("typo.json") && e.contains("unknown field `serverz`"), "{e}");
    let e = RunSpec::from_json_str(&good.replace("\"bug\": \"none\"", "\"bug\": \"sloppy\""), "bug.json").unwrap_err();
    assert!(e.contains("unknown bug 'sloppy'"), "{e}");
    let mut s = swarm_spec(5);
    s.faults.reply_loss = 1.5;
    let e = RunSpec::from_json_str(&s.to_json_pretty(), "rate.json").unwrap_err();
    assert!(e.contains("rate.json") && e.contains("faults.reply_loss is 1.5"), "{e}");
    let s = small_swarm(5, vec![NemesisEvent { at_ms: 10, action: Action::Crash { server: 9 } }]);
    let e = RunSpec::from_json_str(&s.to_json_pretty(), "ev.json").unwrap_err();
    assert!(e.contains("nemesis[0]") && e.contains("server 9"), "{e}");
    let s = swarm_spec(5).with_raft(RaftKind::RAFT_RS).to_json_pretty();
    assert!(s.contains("\"raft\": \"raft-rs\""), "{s}");
    let e = RunSpec::from_json_str(&s.replace("\"raft\": \"raft-rs\"", "\"raft\": \"paxos\""), "raft.json").unwrap_err();
    assert!(e.contains("raft.json") && e.contains("unknown Raft 'paxos'; known: ours, raft-rs"), "{e}");
    let mut s = spec_for("partitions", 1, None).unwrap();
    s.partition = PartitionStyle::Bridge;
    assert!(s.validate().unwrap_err().contains("generic workload supports none, halves and one_way"));
}

#[test]
fn cli_rejects_bad_input_with_exit_2() {
    let p = tmp("broken.json");
    std::fs::write(&p, "{\"scenario\": \"swarm\",\n \"seed\": }").unwrap();
    let (code, _, err) = kvraft(&["run", "--spec", p.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(p.to_str().unwrap()) && err.contains("line 2, column"), "{err}");
    let (code, _, err) = kvraft(&["run", "--spec", tmp("missing.json").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
    let (code, _, err) = kvraft(&["run", "swarm"]);
    assert_eq!(code, 2);
    assert!(err.contains("--seed"), "{err}");
    let (code, _, err) = kvraft(&["fuzz", "--bug", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown bug 'nope'"), "{err}");
    // A campaign of no seeds is a mistake, not a clean run.
    let (code, _, err) = kvraft(&["fuzz", "--seeds", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--seeds") && err.contains("0"), "{err}");
    let (code, _, err) = kvraft(&["fuzz", "--seeds", "2", "--shard", "3/4"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("fuzz: shard 3/4 of 2 seeds selects none"), "{err}");
    let (code, _, err) = kvraft(&["fuzz", "--start", &u64::MAX.to_string(), "--seeds", "2"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the last seed is past"), "{err}");
    // A history with nothing in it is not "linearizable".
    for (name, text) in [("empty.edn", ""), ("blank.json", "  \n"), ("no-ops.json", "{\"scenario\": \"x\", \"seed\": 1, \"ops\": []}")] {
        let p = tmp(name);
        std::fs::write(&p, text).unwrap();
        let (code, out, err) = kvraft(&["check", p.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {out}{err}");
        assert!(out.contains(&format!("{}: error: no operations", p.display())), "{name}: {out}{err}");
    }
}

#[test]
fn swarm_mixes_are_per_seed_and_cover_every_knob() {
    assert_eq!(swarm_spec(42), swarm_spec(42));
    assert_eq!(schedule(&swarm_spec(42)), schedule(&swarm_spec(42)));
    let specs: Vec<RunSpec> = (1..=200).map(swarm_spec).collect();
    for n in [3, 4, 5, 7] {
        assert!(specs.iter().any(|s| s.servers == n), "no mix with {n} servers");
    }
    for p in [PartitionStyle::None, PartitionStyle::Halves, PartitionStyle::Leader, PartitionStyle::OneWay, PartitionStyle::Bridge, PartitionStyle::Mixed] {
        assert!(specs.iter().any(|s| s.partition == p), "no mix with partition style {p:?}");
    }
    assert!(specs.iter().all(|s| (1..=15).contains(&s.clients) && s.validate().is_ok()));
    assert!(specs.iter().any(|s| s.clients == 1) && specs.iter().any(|s| s.clients == 15));
    assert!(specs.iter().all(|s| s.faults.request_loss <= 0.3 && s.faults.reply_loss <= 0.3 && s.faults.duplicate_rate <= 0.5));
    assert!(specs.iter().any(|s| s.faults.long_reordering) && specs.iter().any(|s| s.crash_rate > 0.0));
    let kinds: std::collections::BTreeSet<&str> = specs.iter().flat_map(schedule).map(|e| e.action.kind()).collect();
    for k in ["partition", "isolate_leader", "cut_one_way", "bridge", "heal", "crash", "restart"] {
        assert!(kinds.contains(k), "no {k} event in 200 schedules");
    }
    let mixes: std::collections::BTreeSet<String> = specs.iter().map(|s| describe_mix(s, kvraft::campaign::nemesis::within_run(s).len())).collect();
    assert!(mixes.len() > 190, "only {} distinct mixes in 200 seeds", mixes.len());
}

#[test]
fn every_nemesis_action_fires_and_the_run_passes() {
    let ev = |at_ms, action| NemesisEvent { at_ms, action };
    let s = small_swarm(
        9,
        vec![
            ev(300, Action::Partition { a: vec![0, 1], b: vec![2, 3, 4] }),
            ev(800, Action::Heal),
            ev(900, Action::IsolateLeader),
            ev(1400, Action::CutOneWay { links: vec![(0, 1), (2, 3)] }),
            ev(1800, Action::Bridge { bridge: 2, a: vec![0, 1], b: vec![3, 4] }),
            ev(2200, Action::Crash { server: 1 }),
            ev(2300, Action::Crash { server: 3 }),
            ev(2600, Action::Restart { server: 1 }),
            // Server 3 stays down: the liveness phase must restart it.
        ],
    );
    let r = run(&s, &RunOptions::limit(LIMIT));
    assert!(r.passed, "{:?}", r.failure);
    assert_eq!(r.faults.partitions, 4, "partition, isolate, one-way, bridge");
    assert_eq!(r.faults.crashes, 2);
    assert!(r.ops > 20 && r.liveness_ms.is_some());
    // The protocol-aware ones, which pick their target as they fire.
    let s = small_swarm(
        9,
        vec![
            ev(300, Action::CrashLeader { down_ms: 400 }),
            ev(1200, Action::CrashLeaderAfterAppend { down_ms: 300 }),
            ev(2000, Action::CrashMinorityWithLeader { down_ms: 200 }),
            ev(2600, Action::LeaderMinority),
            ev(3400, Action::Heal),
            ev(3450, Action::RestartLagging),
            ev(3700, Action::PauseLeader { ms: 600 }),
            ev(4500, Action::Pause { server: 2, ms: 300 }),
        ],
    );
    let s = RunSpec { workload: Workload::Swarm { keys: 3, run_ms: 5000, ops_per_client: None }, ..s };
    let r = run(&s, &RunOptions::limit(LIMIT));
    assert!(r.passed, "{:?}", r.failure);
    // Crash leader, after append, a minority of two with the leader, the
    // lagging server's restart; the leader's minority.
    assert!(r.faults.crashes >= 5, "{:?}", r.faults);
    assert_eq!(r.faults.partitions, 1, "{:?}", r.faults);
    assert_eq!(r.faults.pauses, 2, "{:?}", r.faults);
    assert!(r.monitor.as_ref().unwrap().terms_led >= 4, "every crash of a leader elects another");
}

#[test]
fn liveness_and_speed_checks_can_fail() {
    // No op can finish within 1 ms of the heal (a round trip takes longer).
    let mut s = small_swarm(3, Vec::new());
    s.liveness_ms = 1;
    let r = run(&s, &RunOptions::limit(LIMIT));
    assert_eq!(r.failure.as_ref().map(|f| f.class.clone()), Some(FailureClass::Liveness), "{:?}", r.failure);
    assert!(r.failure.unwrap().detail.contains("within 1 ms"));
    // The same run is slower than 1 ms/op.
    let mut s = small_swarm(3, Vec::new());
    s.bound_ms = 1.0;
    let r = run(&s, &RunOptions::limit(LIMIT));
    assert_eq!(r.failure.as_ref().map(|f| f.class.clone()), Some(FailureClass::TooSlow), "{:?}", r.failure);
    // A catalogue scenario gets the liveness phase too.
    let r = run(&spec_for("basic", 2, None).unwrap(), &RunOptions::limit(LIMIT));
    assert!(r.passed && r.liveness_ms.is_some(), "{:?}", r.failure);
}

#[test]
fn outages_count_a_disk_that_may_stop_a_server_and_join_short_recoveries() {
    let at = |at_ms: u64, action: Action| NemesisEvent { at_ms, action };
    // Four servers; the leader isolated from 1.0 to 2.0 s and again from
    // 2.5 to 3.5 s (each time, the other three are a majority), after the
    // lagging server restarted at 0.5 s.
    let events = vec![
        at(500, Action::RestartLagging),
        at(1000, Action::IsolateLeader),
        at(2000, Action::Heal),
        at(2500, Action::IsolateLeader),
        at(3500, Action::Heal),
    ];
    let mut s = small_swarm(5, events.clone());
    s.servers = 4;
    s.workload = Workload::Swarm { keys: 3, run_ms: 6000, ops_per_client: None };
    assert_eq!(outage_ms(&s), (0, 0));
    // A disk that may corrupt a record at a crash may stop one server for
    // good: then the three left need every one of them, and each isolation
    // is an outage; the two, 500 ms apart (less than RECOVERY_MS), count
    // as one.
    s.disk.corrupt_rate = 0.3;
    assert!(RECOVERY_MS > 500);
    assert_eq!(outage_ms(&s), (2500, 2500));
    // Without a crash, no disk is corrupted.
    s.nemesis = Some(events[1..].to_vec());
    assert_eq!(outage_ms(&s), (0, 0));
    // Far enough apart, they stay two.
    s.nemesis = Some(vec![
        at(500, Action::RestartLagging),
        at(1000, Action::IsolateLeader),
        at(2000, Action::Heal),
        at(4000, Action::IsolateLeader),
        at(5000, Action::Heal),
    ]);
    assert_eq!(outage_ms(&s), (1000, 2000));
    // The swarm bound grows with the outage.
    let lossless = swarm::swarm_bound_ms(&s);
    s.disk.corrupt_rate = 0.0;
    assert!(lossless > swarm::swarm_bound_ms(&s) + 1000.0);
    // Under loss each event's election costs more: with half the round
    // trips lost, four times the 2,000 ms per event and run second
    // (5 events in 6 s), on top of what loss costs a mix without events.
    let (quiet, eventful) = {
        let mut q = s.clone();
        q.nemesis = Some(Vec::new());
        let before = (swarm::swarm_bound_ms(&q), swarm::swarm_bound_ms(&s));
        q.faults.reply_loss = 0.5;
        s.faults.reply_loss = 0.5;
        let after = (swarm::swarm_bound_ms(&q), swarm::swarm_bound_ms(&s));
        (after.0 - before.0, (after.1 - before.1) - (after.0 - before.0))
    };
    assert!(quiet > 0.0);
    assert!((eventful - 3.0 * 2000.0 * 5.0 / 6.0).abs() < 2.0, "{eventful}");
    s.faults.reply_loss = 0.0;
    // Two servers: an isolated leader leaves no majority.
    s.servers = 2;
    assert_eq!(outage_ms(&s), (1000, 2000));
    // A leader crashed at a commit, down 500 ms: the holders of the entry
    // and the rest are cut apart until it restarts (five servers), and a
    // second longer with four (each side is then half).
    s.nemesis = Some(vec![at(1000, Action::CrashLeaderOnCommit { down_ms: 500 })]);
    s.servers = 5;
    assert_eq!(outage_ms(&s), (500, 500));
    s.servers = 4;
    assert_eq!(outage_ms(&s), (1500, 1500));
}

#[test]
fn determinism_check_passes_seeded_runs_and_catches_unseeded_randomness() {
    let s = small_swarm(4, Vec::new());
    let r = run(&s, &RunOptions::limit(LIMIT).determinism(true));
    assert!(r.passed, "{:?}", r.failure);
    assert_ne!(r.trace_hash, 0);
    // The same spec by name and seed, and from its JSON, gives the same trace.
    let a = run(&spec_for("unreliable", 5, None).unwrap(), &RunOptions::limit(LIMIT));
    let json = spec_for("unreliable", 5, None).unwrap().to_json_pretty();
    let b = run(&RunSpec::from_json_str(&json, "t").unwrap(), &RunOptions::limit(LIMIT));
    assert_eq!(a.trace_hash, b.trace_hash);
    // One delay drawn from rand's OS-seeded generator: the two runs differ.
    let mut bad = s.clone();
    bad.inject_nondeterminism = true;
    let r = run(&bad, &RunOptions::limit(LIMIT).determinism(true));
    let f = r.failure.expect("an unseeded delay must be caught");
    assert!(f.to_string().starts_with("nondeterminism: two runs of the same spec differ"), "{f}");
    assert_eq!(f.class, FailureClass::Nondeterminism);
}

#[test]
fn swarm_finds_a_broken_server_and_shrink_reduces_it() {
    // Seeds 1-20 of the swarm with a server that answers Get locally.
    let failing: Vec<u64> = (1..=20)
        .filter(|seed| {
            let r = run(&spec_for(swarm::SWARM, *seed, Some(Bug::LocalGet)).unwrap(), &RunOptions::limit(LIMIT));
            r.failure.as_ref().map(|f| f.class.clone()) == Some(FailureClass::NotLinearizable)
        })
        .collect();
    assert!(!failing.is_empty(), "no swarm seed in 1..=20 caught the local-get bug");
    let spec = spec_for(swarm::SWARM, failing[0], Some(Bug::LocalGet)).unwrap();
    let o = shrink(&spec, &ShrinkOptions { budget: 60, time_limit: LIMIT, jobs: 2, reseed: 2 }, &|_| {}).unwrap();
    assert_eq!(o.class, FailureClass::NotLinearizable);
    assert!(o.runs <= 60);
    let size = |s: &RunSpec| (schedule(s).len() + s.clients, s.run_ms());
    assert!(size(&o.shrunk) < size(&o.original), "nothing removed: {:?}", o.summary());
    assert!(!o.summary().is_empty());
    // The printed spec replays and fails the same way.
    let back = RunSpec::from_json_str(&o.shrunk.to_json_pretty(), "shrunk").unwrap();
    let r = run(&back, &RunOptions::limit(LIMIT));
    assert_eq!(r.failure.as_ref().map(|f| f.class.clone()), Some(FailureClass::NotLinearizable));
    // A passing run has nothing to shrink.
    let ok = small_swarm(4, Vec::new());
    assert!(shrink(&ok, &ShrinkOptions { budget: 5, time_limit: LIMIT, jobs: 1, reseed: 0 }, &|_| {}).is_err());
}

#[test]
fn fuzz_saves_failures_that_replay() {
    let file = tmp("failures.json");
    let _ = std::fs::remove_file(&file);
    let f = file.to_str().unwrap();
    let args = ["fuzz", "--swarm", "--bug", "no-dedup", "--seeds", "6", "--jobs", "2", "--json", "--save-failures", f];
    let (code, out, err) = kvraft(&args);
    assert_eq!(code, 1, "failures must make the exit status 1: {out}{err}");
    let saved = RegressionFile::load(&file).unwrap();
    assert!(!saved.entries.is_empty());
    // A server without a duplicate table applies a retry twice: the monitor
    // stops the run there, or the history shows it.
    assert!(
        saved.entries.iter().all(|e| ["safety: exactly once", "not linearizable"].contains(&e.expect.name().as_str()) && e.spec.nemesis.is_some()),
        "{:?}",
        saved.entries.iter().map(|e| &e.expect).collect::<Vec<_>>()
    );
    // Appending again keeps names unique.
    let (code, _, _) = kvraft(&args);
    assert_eq!(code, 1);
    let again = RegressionFile::load(&file).unwrap();
    assert_eq!(again.entries.len(), 2 * saved.entries.len());
    // A saved spec replays from the file, with the same failure.
    let spec_file = tmp("one.json");
    std::fs::write(&spec_file, saved.entries[0].spec.to_json_pretty()).unwrap();
    let (code, out, _) = kvraft(&["run", "--spec", spec_file.to_str().unwrap()]);
    assert_eq!(code, 1);
    let want = format!("FAILED: {}: ", saved.entries[0].expect.name());
    assert!(out.contains(&want), "{out}");
    assert!(out.contains(&format!("run --spec {}", spec_file.display())), "{out}");
}

#[test]
fn panic_classes_ignore_what_varies() {
    use kvraft::sim::failure::Failure;
    let a = Failure::panic("0 missing element x 0 92 y in Append result x 0 0 yx 0 1 y (at src/sim/scenario.rs:95)").class;
    let b = Failure::panic("0 missing element x 0 10 y in Append result x 0 0 yx 0 1 yx 0 2 y (at src/sim/scenario.rs:95)").class;
    assert_eq!(a, b);
    assert_ne!(a, Failure::panic("get wrong value, key 3 (at src/sim/scenario.rs:200)").class);
    // A panic's words never make it another class.
    assert!(matches!(Failure::panic("not linearizable (key 3)").class, FailureClass::Panic(_)));
    assert!(matches!(Failure::panic("safety: leader completeness: x").class, FailureClass::Panic(_)));
}

#[test]
fn shards_split_seeds_without_overlap() {
    let seeds = |shard: &str| -> Vec<u64> {
        let (code, out, err) = kvraft(&["fuzz", "--swarm", "--seeds", "7", "--start", "100", "--shard", shard, "--json"]);
        assert_eq!(code, 0, "{err}");
        out.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seed"].as_u64().unwrap()).collect()
    };
    let (mut a, mut b) = (seeds("0/2"), seeds("1/2"));
    a.sort();
    b.sort();
    assert_eq!(a, vec![100, 102, 104, 106]);
    assert_eq!(b, vec![101, 103, 105]);
    a.extend(b);
    a.sort();
    assert_eq!(a, (100..107).collect::<Vec<_>>());
}

#[test]
fn default_campaign_reaches_every_situation() {
    // The README's main job: every default scenario and swarm, 3 seeds each.
    let mut specs = Vec::new();
    for seed in 1..=3 {
        for sc in catalog::catalog().into_iter().filter(|s| s.default) {
            specs.push(sc.spec(seed));
        }
        specs.push(swarm_spec(seed));
    }
    let reports = kvraft::campaign::exec::run_all(&specs, 2, &RunOptions::limit(LIMIT), &|_| {});
    assert!(reports.iter().all(|r| r.passed), "{:?}", reports.iter().filter_map(|r| r.failure.clone()).collect::<Vec<_>>());
    let rows = kvraft::campaign::report::coverage(&reports);
    assert_eq!(rows.len(), kvraft::sim::monitor::Reached::all().len(), "every kind has a row");
    let never: Vec<&str> = rows.iter().filter(|r| r.runs == 0).map(|r| r.kind.as_str()).collect();
    assert!(never.is_empty(), "the default campaign never reached: {never:?}");
}

#[test]
fn failures_by_class_counts_each_class_with_its_first_run() {
    use kvraft::campaign::report::{failures_by_class, render_classes, RunReport};
    use kvraft::sim::failure::Failure;
    let spec = swarm_spec(1);
    let report = |seed: u64, failure: Option<Failure>| {
        let mut s = spec.clone();
        s.seed = seed;
        let mut r = RunReport::pending(&s, format!("repro {seed}"), String::new());
        r.passed = failure.is_none();
        r.failure = failure;
        r
    };
    let reports = vec![
        report(1, None),
        report(2, Some(Failure::not_linearizable(Some("k1")))),
        report(3, Some(Failure::liveness("1 of 3 clerks completed no new op within 10000 ms"))),
        report(4, Some(Failure::not_linearizable(Some("k9")))),
        report(5, Some(Failure::safety(Property::ExactlyOnce, "server 1 (boot 1) applied request #3 twice as new"))),
        report(6, Some(Failure::too_slow(30.0, 1.0))),
        report(7, Some(Failure::inefficient("Raft sent 9 messages"))),
        report(8, Some(Failure::budget("9 messages sent"))),
        report(9, Some(Failure::panic("index out of bounds: the len is 3 but the index is 7 (at src/x.rs:1)"))),
        report(10, Some(Failure::safety(Property::ElectionSafety, "servers 0 and 2 both lead term 4").servers([0, 2]))),
    ];
    let classes = failures_by_class(&reports);
    let got: Vec<(String, usize, u64)> = classes.iter().map(|c| (c.class.name(), c.count, c.first.seed)).collect();
    assert_eq!(
        got,
        vec![
            ("not linearizable".to_string(), 2, 2),
            ("liveness".to_string(), 1, 3),
            ("safety: exactly once".to_string(), 1, 5),
            ("too slow".to_string(), 1, 6),
            ("inefficient".to_string(), 1, 7),
            ("budget exceeded".to_string(), 1, 8),
            (Failure::panic("index out of bounds: the len is 4 but the index is 9").class.name(), 1, 9),
            ("safety: election safety".to_string(), 1, 10),
        ]
    );
    let text = render_classes(&classes, &Default::default());
    assert!(text.contains("  not linearizable: 2 runs; first: swarm seed 2\n") && text.contains("reproduce: repro 2\n"), "{text}");
    assert_eq!(classes[2].class.slug(), "safety-exactly-once");
}

#[test]
fn fuzz_summary_groups_failures_by_class_and_shrinks_one_per_class() {
    let dir = tmp("by-class");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let args = ["fuzz", "--swarm", "--bug", "local-get", "--seeds", "12", "--jobs", "2", "--shrink", "--shrink-budget", "12", "--trace"];
    let (code, out, err) = kvraft_env(&args, &[("KVRAFT_HISTORY_DIR", d)]);
    assert_eq!(code, 1, "{out}{err}");
    let failed: Vec<u64> = out
        .lines()
        .filter_map(|l| l.strip_prefix("FAILED swarm seed "))
        .map(|l| l.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert!(!failed.is_empty(), "{out}");
    let classes = out.split("failures by class:\n").nth(1).unwrap_or_else(|| panic!("no classes in {out}"));
    let head = format!("  not linearizable: {} run{}; first: swarm seed {}\n", failed.len(), if failed.len() == 1 { "" } else { "s" }, failed[0]);
    assert!(classes.starts_with(&head), "{classes}");
    assert!(classes.contains(&format!("reproduce: cargo run --release -- run swarm --seed {} --bug local-get\n", failed[0])), "{classes}");
    // With --trace, the first run of the class wrote its trace.
    let trace = PathBuf::from(classes.split("trace:     ").nth(1).unwrap_or_else(|| panic!("{classes}")).lines().next().unwrap());
    assert_eq!(trace, dir.join(format!("swarm-{}.trace.jsonl", failed[0])));
    assert!(!kvraft::sim::trace::load_trace(&trace).unwrap().is_empty());
    // One class only: a broken local read is never anything else.
    assert_eq!(classes.lines().filter(|l| l.starts_with("  ") && !l.starts_with("    ")).count(), 1, "{classes}");
    // The shrunk spec is in a file that replays, failing the same way.
    let shrunk = classes.split("shrunk:    ").nth(1).unwrap_or_else(|| panic!("{classes}"));
    let path = PathBuf::from(shrunk.split(" (").next().unwrap());
    assert_eq!(path, dir.join("shrunk-not-linearizable.json"));
    let spec = RunSpec::load(&path).unwrap();
    let r = run(&spec, &RunOptions::limit(LIMIT));
    assert_eq!(r.failure.as_ref().map(|f| f.class.clone()), Some(FailureClass::NotLinearizable));
}

/// A run with every kind of world event and message fault, on a spec of
/// its own (so it stays the same whatever the swarm generator draws).
fn eventful(seed: u64) -> RunSpec {
    let ev = |at_ms, action| NemesisEvent { at_ms, action };
    let mut s = small_swarm(
        seed,
        vec![
            ev(300, Action::Partition { a: vec![0, 1], b: vec![2, 3, 4] }),
            ev(900, Action::CrashLeader { down_ms: 600 }),
            ev(1700, Action::CutOneWay { links: vec![(0, 1), (2, 3)] }),
            ev(2100, Action::Heal),
            ev(2200, Action::Crash { server: 3 }),
            ev(2600, Action::Restart { server: 3 }),
        ],
    );
    s.faults = Faults { request_loss: 0.1, reply_loss: 0.05, duplicate_rate: 0.2, delay_ms: [1, 20], long_reordering: false, replay_rate: 0.0 };
    s
}

#[test]
fn the_trace_is_written_parses_and_changes_nothing() {
    use kvraft::sim::trace::{load_trace, text_path, TraceWhat};
    let spec = eventful(21);
    let file = tmp("eventful.trace.jsonl");
    let _ = std::fs::remove_file(&file);
    let plain = run(&spec, &RunOptions::limit(LIMIT));
    let traced = run(&spec, &RunOptions { trace_out: Some(file.clone()), ..RunOptions::limit(LIMIT) });
    assert!(plain.passed && traced.passed, "{:?} {:?}", plain.failure, traced.failure);
    // Recording changes nothing: the same messages, fates, times and ops.
    assert_eq!(plain.trace_hash, traced.trace_hash);
    assert_eq!((plain.trace, plain.trace_events), (None, 0), "nothing recorded unless asked");
    assert_eq!(traced.trace.as_deref(), Some(file.to_str().unwrap()));
    let lines = load_trace(&file).unwrap();
    assert_eq!(lines.len(), traced.trace_events);
    assert!(lines.windows(2).all(|w| w[0].at_ns <= w[1].at_ns), "in order of time");
    let kind = |l: &kvraft::sim::trace::TraceLine| serde_json::to_value(l).unwrap()["kind"].as_str().unwrap().to_string();
    let kinds: std::collections::BTreeSet<String> = lines.iter().map(kind).collect();
    for k in ["role", "vote", "append", "commit", "apply", "msg", "crash", "restart", "partition", "cut", "heal", "faults", "nemesis", "phase"] {
        assert!(kinds.contains(k), "no {k} in the trace: {kinds:?}");
    }
    let fates: std::collections::BTreeSet<&str> =
        lines.iter().filter_map(|l| if let TraceWhat::Msg { fate, .. } = &l.what { Some(fate.as_str()) } else { None }).collect();
    for f in ["lost", "cut", "delayed", "duplicated"] {
        assert!(fates.contains(f), "no message {f}: {fates:?}");
    }
    // Every server has a stream; applies name the history's ops.
    for s in 0..5 {
        assert!(lines.iter().any(|l| l.server == Some(s) && matches!(l.what, TraceWhat::Apply { .. })), "server {s} applied nothing");
    }
    assert!(lines.iter().any(|l| matches!(&l.what, TraceWhat::Apply { op, .. } if op.contains(": op ") && op.starts_with('c'))));
    // The text form, one event a line after its header.
    let text = std::fs::read_to_string(text_path(&file)).unwrap();
    assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), lines.len());
    assert!(text.contains("CRASH") && text.contains("partition {0,1} | {2,3,4}") && text.contains("leader in term"), "{}", &text[..2000.min(text.len())]);
    // A file that does not parse: the error names the file and the line.
    let bad = tmp("bad.trace.jsonl");
    let good: String = std::fs::read_to_string(&file).unwrap().lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&bad, format!("{good}{{\"at_ns\": 1, \"kind\": \"role\"}}\n")).unwrap();
    let e = load_trace(&bad).unwrap_err();
    assert!(e.starts_with(&format!("{}: line 3, column", bad.display())) && e.contains("missing field"), "{e}");
    let (code, _, err) = kvraft(&["trace", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("line 3"), "{err}");
    // The CLI prints one server's part of a good one.
    let (code, out, _) = kvraft(&["trace", file.to_str().unwrap(), "--server", "3", "--no-messages"]);
    assert_eq!(code, 0);
    assert!(out.contains(" s3 ") && out.contains("CRASH") && !out.contains(" s1   applied") && !out.contains(" -> "), "{}", &out[..1500.min(out.len())]);
}

#[test]
fn a_known_run_has_its_spec_world_and_server_facts_in_its_history_and_timeline() {
    let dir = tmp("known-run");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = eventful(22);
    let spec_file = dir.join("spec.json");
    std::fs::write(&spec_file, spec.to_json_pretty()).unwrap();
    let trace_file = dir.join("t.jsonl");
    let env = [("KVRAFT_HISTORY_DIR", dir.to_str().unwrap())];
    let (code, plain, err) = kvraft_env(&["run", "--spec", spec_file.to_str().unwrap()], &env);
    assert_eq!(code, 0, "{plain}{err}");
    let (code, traced, err) = kvraft_env(&["run", "--spec", spec_file.to_str().unwrap(), "--trace", trace_file.to_str().unwrap()], &env);
    assert_eq!(code, 0, "{traced}{err}");
    // --trace gives the same run.
    let hash = |out: &str| out.lines().find(|l| l.starts_with("trace hash")).map(str::to_string);
    assert!(hash(&plain).is_some());
    assert_eq!(hash(&plain), hash(&traced));
    assert!(traced.contains(&format!("trace         {}", trace_file.display())), "{traced}");
    // The history says what produced it and what happened around the clients.
    let h = kvraft::check::History::load_json(dir.join("swarm-22.json")).unwrap();
    let back: RunSpec = serde_json::from_value(h.spec.clone().expect("the spec")).unwrap();
    assert_eq!(back, materialize(&spec));
    let kinds: std::collections::BTreeSet<&str> = h.events.iter().map(|e| e.kind.as_str()).collect();
    for k in ["faults", "role", "partition", "nemesis", "crash", "restart", "cut", "heal", "disconnect", "connect", "phase"] {
        assert!(kinds.contains(k), "no {k} event: {kinds:?}");
    }
    assert!(h.events.windows(2).all(|w| w[0].at_ns <= w[1].at_ns));
    let done: Vec<_> = h.ops.iter().filter(|o| o.return_ns.is_some()).collect();
    assert!(done.iter().all(|o| o.server.is_some_and(|s| s < 5)), "every completed op names its server");
    assert!(done.iter().filter(|o| o.index.is_some()).count() * 2 > done.len(), "most answers say where they were applied");
    // Same op, same log position on every op that has one: index -> term is a function.
    let mut at: std::collections::HashMap<u64, u64> = Default::default();
    for o in done.iter().filter(|o| o.index.is_some()) {
        assert_eq!(*at.entry(o.index.unwrap()).or_insert(o.term.unwrap()), o.term.unwrap());
    }
    // Its timeline draws the fault bands, the leader lane and the servers.
    let html = kvraft::check::timeline::render_timeline_html(&h, &kvraft::check::check_history(&h.ops));
    for part in ["class=\"band net\"", "class=\"overlay net\"", "A: {0,1} | B: {2,3,4}", "class=\"band faults\"", "class=\"band lead\"", "class=\"band down\"", "class=\"overlay crash\"", "leaders</span>", "server 4</span>", "class=\"srv\""] {
        assert!(html.contains(part), "the timeline has no {part}");
    }
    // Determinism holds with the trace on.
    let (code, out, err) = kvraft_env(&["run", "--spec", spec_file.to_str().unwrap(), "--check-determinism", "--trace", trace_file.to_str().unwrap()], &env);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_failing_run_writes_its_trace_and_shows_the_events_before_the_failure() {
    let dir = tmp("failing-run");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let env = [("KVRAFT_HISTORY_DIR", dir.to_str().unwrap())];
    // The first swarm seed a server that reads locally fails.
    let seed = (1..=20)
        .find(|seed| {
            let r = run(&spec_for(swarm::SWARM, *seed, Some(Bug::LocalGet)).unwrap(), &RunOptions::limit(LIMIT));
            r.failure.as_ref().map(|f| f.class.clone()) == Some(FailureClass::NotLinearizable)
        })
        .expect("a failing seed");
    let (code, out, err) = kvraft_env(&["run", "swarm", "--seed", &seed.to_string(), "--bug", "local-get"], &env);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.is_empty(), "the traced replay is the same run: {err}");
    let trace = dir.join(format!("swarm-{seed}.trace.jsonl"));
    assert!(out.contains(&format!("trace         {}", trace.display())), "{out}");
    let lines = kvraft::sim::trace::load_trace(&trace).unwrap();
    assert!(!lines.is_empty());
    assert!(dir.join(format!("swarm-{seed}.html")).exists() && dir.join(format!("swarm-{seed}.trace.jsonl.txt")).exists());
    // The slice: the last events before the stuck op returned, on the
    // servers that answered it and the key's ops before it.
    let slice = out.split("the trace before the failure (").nth(1).unwrap_or_else(|| panic!("no slice in {out}"));
    let who = slice.split(';').next().unwrap();
    assert!(who.starts_with('s'), "{who}");
    let events: Vec<&str> = slice.lines().skip(1).filter(|l| l.contains(" s  ")).collect();
    assert!(!events.is_empty() && events.len() <= 20, "{slice}");
    // And through the JSON report.
    let (_, json, _) = kvraft_env(&["run", "swarm", "--seed", &seed.to_string(), "--bug", "local-get", "--json"], &env);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert!(!v["trace_slice"].as_array().unwrap().is_empty() && !v["trace_focus"].as_array().unwrap().is_empty(), "{v}");
}

#[test]
fn failure_classes_are_stored_by_name_and_read_back() {
    use kvraft::sim::failure::{Failure, FailureClass};
    use kvraft::sim::property::Property;
    let mut all = FailureClass::expectable();
    all.extend([FailureClass::Hung, FailureClass::Nondeterminism, FailureClass::Panic("N missing element".to_string())]);
    assert_eq!(all.len(), Property::ALL.len() + 8);
    for c in &all {
        assert_eq!(FailureClass::from_name(&c.name()).as_ref(), Some(c), "{c}");
        let json = serde_json::to_string(c).unwrap();
        assert_eq!(&serde_json::from_str::<FailureClass>(&json).unwrap(), c, "{json}");
    }
    // Names are unique, so a stored class reads back as itself.
    let names: std::collections::BTreeSet<String> = all.iter().map(|c| c.name()).collect();
    assert_eq!(names.len(), all.len());
    let err = serde_json::from_str::<FailureClass>("\"too slowly\"").unwrap_err().to_string();
    assert!(err.contains("unknown failure class 'too slowly'") && err.contains("too slow"), "{err}");
    // A failure keeps what it involves as data, and says its class first.
    let f = Failure::safety(Property::ElectionSafety, "servers 2 and 0 both lead term 4").servers([2, 0, 2]).term(4);
    assert_eq!((f.servers.clone(), f.term, f.index), (vec![0, 2], Some(4), None));
    assert!(f.to_string().starts_with("safety: election safety: servers 2 and 0"), "{f}");
    let back: Failure = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
    assert_eq!(back, f);
    // Any other panic is classed by its start, numbers blanked.
    assert_eq!(Failure::panic("3 missing element x 1 2 (at src/a.rs:9)").class, FailureClass::Panic("N missing element x N N".to_string()));
}

#[test]
fn baseline_flags_slower_figures_and_bad_files() {
    use kvraft::campaign::baseline::{self, Baseline, Figures};
    let f = |ops: usize, ms: f64, msgs: f64| Figures {
        runs: 20,
        ops,
        ms_per_op: ms,
        msgs_per_entry: msgs,
        bytes_per_entry: 100.0 * msgs,
        elections_per_run: 1.0,
        kv_msgs_per_op: msgs / 2.0,
        tolerance: None,
    };
    let base = Baseline {
        raft: "ours".into(),
        seeds: 20,
        tolerance: 0.05,
        scenarios: [("a".to_string(), f(1000, 100.0, 4.0)), ("b".to_string(), f(1000, 50.0, 6.0))].into_iter().collect(),
    };
    // Within 5%: nothing; faster: nothing.
    let now = [("a".to_string(), f(990, 104.9, 4.19)), ("b".to_string(), f(1200, 40.0, 5.0))].into_iter().collect();
    assert!(baseline::regressions(&base, &now).is_empty());
    // Slower, more messages and bytes, fewer ops, a scenario missing: each
    // named.
    let now = [("a".to_string(), f(900, 105.5, 4.3))].into_iter().collect();
    let worse = baseline::regressions(&base, &now);
    assert_eq!(worse.len(), 6, "{worse:?}");
    assert!(worse[0].starts_with("a: 105.50 ms/op, baseline 100.00 (+5.5%)"), "{worse:?}");
    assert!(worse[1].starts_with("a: 4.300 raft messages per entry"), "{worse:?}");
    assert!(worse[2].starts_with("a: 430.0 raft bytes per entry, baseline 400.0"), "{worse:?}");
    assert!(worse[3].starts_with("a: 2.15 kv messages per op, baseline 2.00"), "{worse:?}");
    assert!(worse[4].starts_with("a: 900 ops completed, baseline 1000"), "{worse:?}");
    assert_eq!(worse[5], "b: not measured");
    // KV messages alone: a clerk that retries more for the same work.
    let chatty = [("a".to_string(), Figures { kv_msgs_per_op: 2.2, ..f(1000, 100.0, 4.0) }), ("b".to_string(), f(1000, 50.0, 6.0))].into_iter().collect();
    assert_eq!(baseline::regressions(&base, &chatty), vec!["a: 2.20 kv messages per op, baseline 2.00 (+10.0%)".to_string()]);
    // A baseline written before kv messages were measured does not check them.
    let mut older = base.clone();
    older.scenarios.values_mut().for_each(|s| s.kv_msgs_per_op = 0.0);
    assert!(baseline::regressions(&older, &chatty).is_empty());
    // Elections: more than the tolerance and more than one over the runs.
    let elections = |e: f64| [("a".to_string(), Figures { elections_per_run: e, ..f(1000, 100.0, 4.0) }), ("b".to_string(), f(1000, 50.0, 6.0))].into_iter().collect();
    // 21 elections in 20 runs (+5%, one more): within.
    assert!(baseline::regressions(&base, &elections(1.05)).is_empty());
    // 22 in 20: +10%, two more.
    assert_eq!(baseline::regressions(&base, &elections(1.1)), vec!["a: 1.100 leader elections per run, baseline 1.000 (+10.0%)".to_string()]);
    // A scenario's own tolerance counts instead of the baseline's.
    let mut wide = base.clone();
    wide.scenarios.get_mut("a").unwrap().tolerance = Some(0.2);
    let now = [("a".to_string(), f(990, 115.0, 4.7)), ("b".to_string(), f(1000, 50.0, 6.0))].into_iter().collect();
    assert!(baseline::regressions(&wide, &now).is_empty());
    assert_eq!(baseline::regressions(&base, &now).len(), 4);
    // Measured from reports: op-weighted ms/op, messages over entries.
    let mut r1 = kvraft::campaign::report::RunReport::pending(&swarm_spec(1), String::new(), String::new());
    (r1.scenario, r1.ops, r1.ms_per_op, r1.raft_msgs, r1.committed) = ("x".into(), 10, 10.0, 30, 10);
    let mut r2 = r1.clone();
    (r2.ops, r2.ms_per_op, r2.raft_msgs, r2.committed) = (30, 30.0, 70, 30);
    (r1.raft_bytes, r2.raft_bytes) = (1000, 3000);
    (r1.kv_msgs, r2.kv_msgs) = (25, 55);
    let led = |terms_led| Some(kvraft::sim::monitor::MonitorReport { terms_led, ..Default::default() });
    (r1.monitor, r2.monitor) = (led(1), led(4));
    let m = baseline::measure(&[r1, r2]);
    assert_eq!(m["x"], Figures { runs: 2, bytes_per_entry: 100.0, elections_per_run: 2.5, kv_msgs_per_op: 2.0, ..f(40, 25.0, 2.5) });
    // Files: round trip; a bad one is an error naming it.
    let path = tmp("baseline-unit.json");
    baseline::save(&base, &path).unwrap();
    assert_eq!(baseline::load(&path).unwrap(), base);
    std::fs::write(&path, "{\"raft\": \"ours\"}").unwrap();
    let e = baseline::load(&path).unwrap_err();
    assert!(e.starts_with(&format!("baseline {}: missing field", path.display())), "{e}");
    std::fs::write(&path, "{\"raft\": \"ours\", \"seeds\": 0, \"tolerance\": 0.05, \"scenarios\": {}}").unwrap();
    assert!(baseline::load(&path).unwrap_err().contains("needs seeds >= 1"));
    let mut bad = base.clone();
    bad.scenarios.get_mut("b").unwrap().tolerance = Some(-1.0);
    baseline::save(&bad, &path).unwrap();
    assert!(baseline::load(&path).unwrap_err().contains("tolerances >= 0"));
}

#[test]
fn cli_saves_a_baseline_and_holds_a_campaign_to_it() {
    let path = tmp("baseline-cli.json");
    let p = path.to_str().unwrap();
    let (code, out, err) = kvraft(&["fuzz", "--scenario", "basic", "--seeds", "2", "--save-baseline", p, "--jobs", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("wrote the performance baseline"), "{out}");
    let (code, out, err) = kvraft(&["fuzz", "--baseline", p, "--jobs", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("performance: within the baseline (tolerance 5%)"), "{out}");
    // The same runs against a baseline that says they used to be faster.
    let mut b = kvraft::campaign::baseline::load(&path).unwrap();
    b.scenarios.get_mut("basic").unwrap().ms_per_op *= 0.9;
    kvraft::campaign::baseline::save(&b, &path).unwrap();
    let (code, out, _) = kvraft(&["fuzz", "--baseline", p, "--jobs", "1"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("SLOWER basic: ") && out.contains("performance: slower than the baseline"), "{out}");
    // Another Raft than the baseline's is refused.
    let (code, _, err) = kvraft(&["fuzz", "--baseline", p, "--raft", "raft-rs"]);
    assert_ne!(code, 0);
    assert!(err.contains("measured on Raft 'ours'"), "{err}");
}

/// The campaign as a library, as a user's crate or a test drives it: plan
/// scenarios over seeds, run, read the failures by class, shrink one.
#[test]
fn campaign_library_plans_runs_and_groups_failures() {
    use kvraft::campaign::{Campaign, Seeds};
    use kvraft::sim::rafts::RaftKind;
    // Seeds: shards split a range; nothing to run is an error, not a pass.
    assert_eq!(Seeds { start: 10, count: 5, shard: Some((1, 2)) }.list().unwrap(), vec![11, 13]);
    assert!(Seeds::range(1, 0).list().unwrap_err().contains("0 seeds"));
    assert!(Seeds { start: 1, count: 2, shard: Some((3, 4)) }.list().unwrap_err().contains("selects none"));
    assert!(Seeds::range(u64::MAX, 2).list().unwrap_err().contains("past"));
    let swarm = [swarm::SWARM.to_string()];
    let plan = Campaign::new(RunOptions::limit(LIMIT), 2)
        .scenarios(&swarm, &Seeds::range(1, 8), RaftKind::OURS, Some(Bug::LocalGet))
        .unwrap()
        .specs([spec_for("basic", 1, None).unwrap()]);
    assert!(plan.clone().scenarios(&["nope".to_string()], &Seeds::range(1, 1), RaftKind::OURS, None).is_err());
    assert_eq!(plan.planned().len(), 9);
    let outcome = plan.run(&|_| {});
    assert_eq!((outcome.reports.len(), outcome.planned), (9, 9));
    // The planned order, whatever finished first.
    let seeds: Vec<u64> = outcome.reports.iter().map(|r| r.seed).collect();
    assert_eq!(seeds, vec![1, 2, 3, 4, 5, 6, 7, 8, 1]);
    assert!(outcome.reports[8].passed, "{:?}", outcome.reports[8].failure);
    let classes = outcome.classes();
    assert!(!classes.is_empty() && !outcome.passed(), "a server answering Get locally passed 8 swarm seeds");
    assert!(classes.iter().all(|c| c.class == FailureClass::NotLinearizable), "{:?}", outcome.failure_lines());
    assert_eq!(classes.iter().map(|c| c.count).sum::<usize>(), outcome.failed().len());
    assert!(outcome.summary().contains("FAILED swarm seed"), "{}", outcome.summary());
    // A gate stops after the first batch with a failure.
    let first = outcome.failed()[0].seed;
    let gate = Campaign::new(RunOptions::limit(LIMIT), 2)
        .scenarios(&swarm, &Seeds::range(first, 8), RaftKind::OURS, Some(Bug::LocalGet))
        .unwrap()
        .stop_at_first_failing_batch(2);
    let stopped = gate.run(&|_| {});
    assert!(!stopped.passed() && stopped.reports.len() == 2 && stopped.planned == 8, "{}", stopped.reports.len());
}

fn twin() -> kvraft::raft::MakeRaft {
    kvraft::raft::make()
}

/// This crate's Raft registered again under another name, as a user's
/// crate registers its own.
const TWIN: RaftInfo = RaftInfo { name: "ours-twin", about: "this crate's Raft under another name", make: twin, appends_at_election: false };

fn another() -> kvraft::raft::MakeRaft {
    kvraft::raft_rs::make()
}

/// A Raft registered from outside is named like the shipped ones: parsed,
/// in run specs, run; names are unique and words.
#[test]
fn rafts_register_by_name() {
    let info = TWIN;
    let k = rafts::register(info).unwrap();
    assert_eq!((k.name(), RaftKind::parse("ours-twin")), ("ours-twin", Ok(k)));
    assert!(RaftKind::all().contains(&k) && RaftKind::all()[..2] == RaftKind::SHIPPED);
    assert!(RaftKind::known().contains("ours-twin"));
    // Registering it again (another test of the binary, say) is harmless;
    // another Raft under its name, or under a shipped one's, is refused.
    assert_eq!(rafts::register(info), Ok(k));
    let e = rafts::register(RaftInfo { make: another, ..info }).unwrap_err();
    assert!(e.contains("already registered as 'ours-twin'"), "{e}");
    assert!(rafts::register(RaftInfo { name: "ours", ..info }).is_err());
    assert!(rafts::register(RaftInfo { name: "two words", ..info }).unwrap_err().contains("nonempty word"));
    // A spec names it, round-trips, and runs it.
    let spec = swarm_spec(3).with_raft(k);
    let json = spec.to_json_pretty();
    assert!(json.contains("\"raft\": \"ours-twin\""), "{json}");
    assert_eq!(RunSpec::from_json_str(&json, "twin.json").unwrap(), spec);
    let r = run(&spec, &RunOptions::limit(Some(Duration::from_secs(600))));
    assert!(r.passed && r.ops > 0, "{:?}", r.failure);
    // The same seed on the shipped Raft it wraps runs the same run.
    let same = run(&swarm_spec(3), &RunOptions::limit(Some(Duration::from_secs(600))));
    assert_eq!(r.trace_hash, same.trace_hash);
}

/// A user's binary is `kvraft::cli::main_with(&[its Raft])`: the same
/// commands, its Raft named by `--raft`, reproduce commands naming it.
/// Here in-process, through `run_with` (what `main_with` runs).
#[test]
fn the_command_line_runs_a_registered_raft() {
    use kvraft::cli::run_with;
    use kvraft::sim::context::cli_command_for;
    use std::process::ExitCode;
    let twin = TWIN;
    let code = |args: &[&str]| run_with(&[twin], std::iter::once("sim").chain(args.iter().copied()));
    assert_eq!(code(&["run", "swarm", "--seed", "3", "--raft", "ours-twin"]), ExitCode::SUCCESS);
    assert_eq!(code(&["fuzz", "--swarm", "--seeds", "2", "--raft", "ours-twin", "--jobs", "1"]), ExitCode::SUCCESS);
    // Bad input: exit code 2, the process goes on.
    assert_eq!(code(&["run", "swarm", "--seed", "3", "--raft", "nope"]), ExitCode::from(2));
    assert_eq!(run_with(&[RaftInfo { name: "ours", ..twin }], ["sim", "list"]), ExitCode::from(2));
    // Reproduce commands name the binary they came from.
    assert_eq!(cli_command_for("/work/target/release/kvraft"), "cargo run --release --");
    assert_eq!(cli_command_for("/work/target/release/sim"), "cargo run --release --bin sim --");
    assert_eq!(cli_command_for("/work/target/release/examples/demo"), "cargo run --release --example demo --");
}

/// A campaign in a test: `Outcome::verdict` is Ok when every run passed,
/// and otherwise says each failure class, its first seed and the command
/// that reproduces it (naming the Raft when it is not the default).
#[test]
fn a_campaign_in_a_test_fails_with_class_seed_and_reproduce_command() {
    use kvraft::campaign::fuzz::{Campaign, Seeds};
    let twin = rafts::register(TWIN).unwrap();
    let swarm = vec![swarm::SWARM.to_string()];
    let opts = || RunOptions::limit(Some(Duration::from_secs(600)));
    let ok = Campaign::new(opts(), 2).scenarios(&swarm, &Seeds::range(1, 4), twin, None).unwrap().run(&|_| {});
    assert_eq!(ok.verdict(), Ok(()));
    let bad = Campaign::new(opts(), 2).scenarios(&swarm, &Seeds::range(1, 4), twin, Some(Bug::NoDedup)).unwrap().run(&|_| {});
    let e = bad.verdict().unwrap_err();
    let first = bad.failed()[0];
    let class = first.failure.as_ref().unwrap().class.to_string();
    assert!(e.contains(&format!("- {class} (")) && e.contains(&format!("first: swarm seed {}:", first.seed)), "{e}");
    let reproduce = format!("reproduce: cargo run --release -- run swarm --seed {} --bug no-dedup --raft ours-twin", first.seed);
    assert!(e.contains(&reproduce), "{e}");
}
