//! 6.5840 (2024) lab 4A, ported by name with its parameters. Every test also
//! checks its whole history for linearizability and asserts a ms/op bound in
//! virtual time (stated per test, printed with the measured figure). Each
//! test runs twice: on this crate's Raft (`kv_4a::ours::`) and on tikv's
//! raft-rs (`kv_4a::raft_rs::`), with the same bounds.

use std::time::{Duration, Instant};

use kvraft::sim::kv_cluster::{KvCluster, KvOptions};
use kvraft::sim::rafts::RaftKind;
use kvraft::campaign::verify;
use kvraft::campaign::workload::{check_clnt_appends, check_concurrent_appends, generic_test, GenericSpec, ELECTION_TIMEOUT};
use tokio::time::sleep;

/// GenericTest(nclients, nservers, unreliable, crash, partitions, maxraftstate=-1, randomkeys).
fn spec(raft: RaftKind, clients: usize, servers: usize, unreliable: bool, crash: bool, partitions: bool, random_keys: bool) -> GenericSpec {
    GenericSpec { raft, ..GenericSpec::new(clients, servers, unreliable, crash, partitions, random_keys) }
}

fn name(raft: RaftKind, test: &str) -> String {
    crate::test_name("kv_4a", raft, test)
}

async fn basic_4a(raft: RaftKind) {
    generic_test(&name(raft, "basic_4a"), &spec(raft, 1, 5, false, false, false, false), 45.0).await;
}

async fn speed_4a(raft: RaftKind) {
    const NUM_OPS: usize = 1000;
    // 6.5840: heartbeats are ~100 ms apart and at least 3 ops must complete
    // per heartbeat interval, so an op may not wait for a heartbeat.
    const TIME_PER_OP_MS: f64 = 100.0 / 3.0;
    let cluster = KvCluster::with_options(KvOptions::new(3, false).raft(raft), &name(raft, "speed_4a")).await;
    let mut ck = cluster.make_client(&cluster.all()).await;
    cluster.begin("Test: ops complete fast enough (4A)");
    // Wait for the first op, so a leader exists and the servers are ready.
    ck.get("x").await;
    let start = Instant::now();
    for i in 0..NUM_OPS {
        ck.append("x", &format!("x 0 {i} y")).await;
    }
    let dur = start.elapsed();
    let v = ck.get("x").await;
    check_clnt_appends(0, &v, NUM_OPS);
    let per_op = dur.as_secs_f64() * 1000.0 / NUM_OPS as f64;
    println!("  {NUM_OPS} appends: {per_op:.2} ms/op (bound {TIME_PER_OP_MS:.1} ms/op)");
    assert!(per_op <= TIME_PER_OP_MS, "Operations completed too slowly {per_op:.2} ms/op > {TIME_PER_OP_MS:.1} ms/op");
    verify::check(&cluster, TIME_PER_OP_MS).await;
    cluster.end();
}

async fn concurrent_4a(raft: RaftKind) {
    generic_test(&name(raft, "concurrent_4a"), &spec(raft, 5, 5, false, false, false, false), 60.0).await;
}

async fn unreliable_4a(raft: RaftKind) {
    generic_test(&name(raft, "unreliable_4a"), &spec(raft, 5, 5, true, false, false, false), 200.0).await;
}

async fn unreliable_one_key_4a(raft: RaftKind) {
    const NCLIENT: usize = 5;
    const UPTO: usize = 10;
    let cluster = KvCluster::with_options(KvOptions::new(3, true).raft(raft), &name(raft, "unreliable_one_key_4a")).await;
    let mut ck = cluster.make_client(&cluster.all()).await;
    cluster.begin("Test: concurrent append to same key, unreliable (4A)");
    ck.put("k", "").await;
    let mut tasks = Vec::new();
    for me in 0..NCLIENT {
        let mut myck = cluster.make_client(&cluster.all()).await;
        tasks.push(tokio::spawn(async move {
            for n in 0..UPTO {
                myck.append("k", &format!("x {me} {n} y")).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let counts = vec![UPTO; NCLIENT];
    let vx = ck.get("k").await;
    check_concurrent_appends(&vx, &counts);
    verify::check(&cluster, 250.0).await;
    cluster.end();
}

/// Submits an op in a task and reports completion on a channel.
fn spawn_done<F: std::future::Future<Output = ()> + Send + 'static>(f: F) -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        f.await;
        let _ = tx.send(());
    });
    rx
}

async fn one_partition_4a(raft: RaftKind) {
    let cluster = KvCluster::with_options(KvOptions::new(5, false).raft(raft), &name(raft, "one_partition_4a")).await;
    let mut ck = cluster.make_client(&cluster.all()).await;
    ck.put("1", "13").await;

    cluster.begin("Test: progress in majority (4A)");
    let (p1, p2) = cluster.make_partition();
    cluster.partition(&p1, &p2);
    let mut ckp1 = cluster.make_client(&p1).await;
    let mut ckp2a = cluster.make_client(&p2).await;
    let mut ckp2b = cluster.make_client(&p2).await;
    ckp1.put("1", "14").await;
    assert_eq!(ckp1.get("1").await, "14");
    cluster.end();

    cluster.begin("Test: no progress in minority (4A)");
    let (ckp2a_idx, ckp2b_idx) = (ckp2a.index(), ckp2b.index());
    let mut done0 = spawn_done(async move {
        ckp2a.put("1", "15").await;
    });
    let mut done1 = spawn_done(async move {
        ckp2b.get("1").await;
    });
    tokio::select! {
        _ = &mut done0 => panic!("Put in minority completed"),
        _ = &mut done1 => panic!("Get in minority completed"),
        _ = sleep(Duration::from_secs(1)) => {}
    }
    assert_eq!(ckp1.get("1").await, "14");
    ckp1.put("1", "16").await;
    assert_eq!(ckp1.get("1").await, "16");
    cluster.end();

    cluster.begin("Test: completion after heal (4A)");
    cluster.connect_all();
    cluster.connect_client_by_index(ckp2a_idx, &cluster.all());
    cluster.connect_client_by_index(ckp2b_idx, &cluster.all());
    sleep(ELECTION_TIMEOUT).await;
    tokio::select! {
        _ = &mut done0 => {}
        _ = sleep(Duration::from_millis(30 * 100)) => panic!("Put did not complete"),
    }
    tokio::select! {
        _ = &mut done1 => {}
        _ = sleep(Duration::from_millis(30 * 100)) => panic!("Get did not complete"),
    }
    assert_eq!(ck.get("1").await, "15");
    // Two ops sat in the minority for over a second: they dominate the mean.
    verify::check(&cluster, 800.0).await;
    cluster.end();
}

async fn many_partitions_one_client_4a(raft: RaftKind) {
    generic_test(&name(raft, "many_partitions_one_client_4a"), &spec(raft, 1, 5, false, false, true, false), 150.0).await;
}

async fn many_partitions_many_clients_4a(raft: RaftKind) {
    generic_test(&name(raft, "many_partitions_many_clients_4a"), &spec(raft, 5, 5, false, false, true, false), 150.0).await;
}

async fn persist_one_client_4a(raft: RaftKind) {
    generic_test(&name(raft, "persist_one_client_4a"), &spec(raft, 1, 5, false, true, false, false), 100.0).await;
}

async fn persist_concurrent_4a(raft: RaftKind) {
    generic_test(&name(raft, "persist_concurrent_4a"), &spec(raft, 5, 5, false, true, false, false), 100.0).await;
}

async fn persist_concurrent_unreliable_4a(raft: RaftKind) {
    generic_test(&name(raft, "persist_concurrent_unreliable_4a"), &spec(raft, 5, 5, true, true, false, false), 300.0).await;
}

async fn persist_partition_4a(raft: RaftKind) {
    generic_test(&name(raft, "persist_partition_4a"), &spec(raft, 5, 5, false, true, true, false), 150.0).await;
}

async fn persist_partition_unreliable_4a(raft: RaftKind) {
    generic_test(&name(raft, "persist_partition_unreliable_4a"), &spec(raft, 5, 5, true, true, true, false), 500.0).await;
}

async fn persist_partition_unreliable_linearizable_4a(raft: RaftKind) {
    generic_test(&name(raft, "persist_partition_unreliable_linearizable_4a"), &spec(raft, 15, 7, true, true, true, true), 600.0).await;
}

on_each_raft!(
    basic_4a,
    speed_4a,
    concurrent_4a,
    unreliable_4a,
    unreliable_one_key_4a,
    one_partition_4a,
    many_partitions_one_client_4a,
    many_partitions_many_clients_4a,
    persist_one_client_4a,
    persist_concurrent_4a,
    persist_concurrent_unreliable_4a,
    persist_partition_4a,
    persist_partition_unreliable_4a,
    persist_partition_unreliable_linearizable_4a,
);
