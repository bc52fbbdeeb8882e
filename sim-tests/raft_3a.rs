//! Lab 3A of MIT 6.5840 (2024): leader election, ported to the madsim
//! simulator. Every sleep is in virtual time; every random choice comes from
//! the simulation's seeded generator, so a seed reproduces a run exactly.

use std::time::Duration;

use kvraft::sim::raft_cluster::{rand_u64, RaftCluster};
use tokio::time::sleep;

/// The tester allows a full second for an election, far more than the
/// timeouts the Raft paper suggests.
const RAFT_ELECTION_TIMEOUT: Duration = Duration::from_millis(1000);

#[madsim::test]
async fn initial_election_3a() {
    let servers = 3;
    let cfg = RaftCluster::new(servers, true, "raft_3a::initial_election_3a").await;
    cfg.begin("Test (3A): initial election");

    // A leader must emerge.
    cfg.check_one_leader().await;

    // Give followers a moment to hear of the election, then all peers must
    // report the same term.
    sleep(Duration::from_millis(50)).await;
    let term1 = cfg.check_terms();
    if term1 < 1 {
        panic!("term is {term1}, but should be at least 1");
    }

    // With a healthy network, neither the leader nor the term should change.
    sleep(2 * RAFT_ELECTION_TIMEOUT).await;
    let term2 = cfg.check_terms();
    if term1 != term2 {
        println!("warning: term changed even though there were no failures");
    }

    // And a leader must still be there.
    cfg.check_one_leader().await;

    cfg.end();
}

#[madsim::test]
async fn re_election_3a() {
    let servers = 3;
    let cfg = RaftCluster::new(servers, true, "raft_3a::re_election_3a").await;
    cfg.begin("Test (3A): election after network failure");

    let leader1 = cfg.check_one_leader().await;

    // Losing the leader must lead to a new election.
    cfg.disconnect(leader1);
    cfg.check_one_leader().await;

    // The old leader coming back must not unseat the new one; it has to
    // step down to follower.
    cfg.connect(leader1);
    let leader2 = cfg.check_one_leader().await;

    // Without a quorum nobody may be elected.
    cfg.disconnect(leader2);
    cfg.disconnect((leader2 + 1) % servers);
    sleep(2 * RAFT_ELECTION_TIMEOUT).await;

    // The lone connected server must not believe it leads.
    cfg.check_no_leader();

    // Once a quorum is back, it must elect someone.
    cfg.connect((leader2 + 1) % servers);
    cfg.check_one_leader().await;

    // The last server rejoining must not leave the cluster leaderless.
    cfg.connect(leader2);
    cfg.check_one_leader().await;

    cfg.end();
}

#[madsim::test]
async fn many_elections_3a() {
    let servers = 7;
    let cfg = RaftCluster::new(servers, true, "raft_3a::many_elections_3a").await;
    cfg.begin("Test (3A): multiple elections");

    cfg.check_one_leader().await;

    let iters = 10;
    for _ in 1..iters {
        // Cut off up to three servers (the picks may repeat).
        let i1 = (rand_u64() % servers as u64) as usize;
        let i2 = (rand_u64() % servers as u64) as usize;
        let i3 = (rand_u64() % servers as u64) as usize;
        cfg.disconnect(i1);
        cfg.disconnect(i2);
        cfg.disconnect(i3);

        // Either the leader survived, or the four (or more) still connected
        // servers must elect a new one.
        cfg.check_one_leader().await;

        cfg.connect(i1);
        cfg.connect(i2);
        cfg.connect(i3);
    }

    cfg.check_one_leader().await;

    cfg.end();
}
