//! KV scenarios beyond 6.5840's: heavy duplication, one-way partitions, a
//! leader crashed right after `start`, and deliberately broken servers that
//! the checks must catch. Each runs on this crate's Raft (`kv_more::ours::`)
//! and on raft-rs (`kv_more::raft_rs::`).

fn name(raft: RaftKind, test: &str) -> String {
    crate::test_name("kv_more", raft, test)
}

use std::time::Duration;

use kvraft::kv::Bug;
use kvraft::sim::kv_cluster::{KvCluster, KvOptions};
use kvraft::sim::traps::AppendTrap;
use kvraft::sim::rafts::RaftKind;
use kvraft::campaign::catalog;
use kvraft::campaign::{run, RunOptions};
use kvraft::sim::failure::FailureClass;
use kvraft::campaign::verify;
use kvraft::sim::property::Property;
use kvraft::campaign::workload::{check_clnt_appends, generic_test, GenericSpec, ELECTION_TIMEOUT};
use tokio::time::sleep;

async fn duplication_4a(raft: RaftKind) {
    // 30% of requests and replies delivered twice, on top of loss, delay,
    // partitions and whole-cluster restarts.
    let mut spec = GenericSpec { raft, ..GenericSpec::new(5, 5, true, true, true, false) };
    spec.duplicate_rate = 0.3;
    let cluster = generic_test(&name(raft, "duplication_4a"), &spec, 600.0).await;
    assert!(cluster.figures().net.duplicated > 100, "duplication did not fire");
}

async fn one_way_partitions_4a(raft: RaftKind) {
    let mut spec = GenericSpec { raft, ..GenericSpec::new(5, 5, false, false, true, false) };
    spec.one_way = true;
    generic_test(&name(raft, "one_way_partitions_4a"), &spec, 300.0).await;
}

async fn leader_crash_after_start_4a(raft: RaftKind) {
    const ROUNDS: usize = 20;
    let cluster = KvCluster::with_options(KvOptions::new(5, false).raft(raft), &name(raft, "leader_crash_after_start_4a")).await;
    cluster.begin("Test: leader crashed right after start (new)");
    let mut ck = cluster.make_client(&cluster.all()).await;
    ck.put("k", "").await;
    let trap = cluster.trap::<AppendTrap>().expect("every cluster has the append trap");
    let mut crashes = 0;
    for n in 0..ROUNDS {
        let mut myck = cluster.make_client(&cluster.all()).await;
        let op = tokio::spawn(async move { myck.append("k", &format!("x 0 {n} y")).await });
        // Cut off and crash the leader the moment it has handed the op to
        // Raft: the op may or may not survive, but it must apply at most
        // once, and the clerk must get an answer from the new leader.
        let victim = trap.catch_leader(Duration::from_secs(1)).await;
        if let Some(v) = victim {
            cluster.shutdown_server(v);
            crashes += 1;
        }
        op.await.expect("clerk task");
        if let Some(v) = victim {
            cluster.start_server(v).await;
            cluster.connect_all();
        }
    }
    assert!(crashes >= ROUNDS / 2, "only {crashes} of {ROUNDS} rounds crashed a leader after start");
    sleep(ELECTION_TIMEOUT).await;
    let v = ck.get("k").await;
    check_clnt_appends(0, &v, ROUNDS);
    verify::check(&cluster, 1500.0).await;
    cluster.end();
}

async fn broken_local_get_is_caught(raft: RaftKind) {
    // Gets answered from the local map: a leader cut off in a minority serves
    // a value the majority has already overwritten.
    let mut opts = KvOptions::new(5, false).raft(raft);
    opts.bug = Bug::LocalGet;
    let cluster = KvCluster::with_options(opts, &name(raft, "broken_local_get_is_caught")).await;
    let mut ck = cluster.make_client(&cluster.all()).await;
    ck.put("k", "a").await;
    let (p1, p2) = cluster.make_partition();
    // The old leader goes to the minority side.
    let (minority, majority) = (p1[..2].to_vec(), [&p1[2..], &p2[..]].concat());
    cluster.partition(&minority, &majority);
    let mut ck_major = cluster.make_client(&majority).await;
    let mut ck_minor = cluster.make_client(&minority[..1]).await;
    ck_major.put("k", "b").await;
    // Start the Get strictly after the Put returned (same instant = concurrent).
    sleep(Duration::from_millis(1)).await;
    // A correct server never answers this Get from the minority; the broken
    // one answers at once, with the stale "a".
    let stale = tokio::time::timeout(Duration::from_secs(2), ck_minor.get("k")).await;
    println!("  minority get: {stale:?}");
    let (verdict, _) = verify::linearizability(&cluster);
    assert!(!verdict.linearizable, "the checker missed a server that answers Get from its local map");
    assert_eq!(verdict.failing_key.as_deref(), Some("k"));
}

#[test]
fn broken_no_dedup_is_caught() {
    // No duplicate table: retried appends (after lost or duplicated
    // messages) apply twice. The monitor stops the run at the second apply.
    for (raft, seed) in RaftKind::SHIPPED.into_iter().flat_map(|r| (1..=3).map(move |s| (r, s))) {
        let spec = catalog::find("broken_no_dedup").unwrap().spec(seed).with_raft(raft);
        let r = run(&spec, &RunOptions::limit(Some(Duration::from_secs(600))));
        let f = r.failure.as_ref().expect("a server without a duplicate table must be caught");
        println!("  {} seed {seed}: {f}", raft.name());
        assert_eq!(f.class.clone(), FailureClass::Safety(Property::ExactlyOnce), "{f}");
    }
}

on_each_raft!(
    duplication_4a,
    one_way_partitions_4a,
    leader_crash_after_start_4a,
    broken_local_get_is_caught,
);
