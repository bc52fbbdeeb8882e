//! Lab 3B of MIT 6.5840 (2024): log replication, ported to the madsim
//! simulator. Sleeps are virtual; randomness is the simulation's seeded RNG.

use std::time::Duration;

use kvraft::sim::raft_cluster::{cmd_int, cmd_str, rand_string, rand_u64, RaftCluster};
use tokio::sync::mpsc;
use tokio::time::sleep;

/// The tester allows a full second for an election.
const RAFT_ELECTION_TIMEOUT: Duration = Duration::from_millis(1000);

/// The integer inside a command made by `cmd_int`, if it is one.
fn as_int(cmd: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(cmd).ok().map(u64::from_le_bytes)
}

#[madsim::test]
async fn basic_agree_3b() {
    let servers = 3;
    let cfg = RaftCluster::new(servers, true, "raft_3b::basic_agree_3b").await;
    cfg.begin("Test (3B): basic agreement");

    let iters = 3u64;
    for index in 1..iters + 1 {
        let (nd, _) = cfg.n_committed(index);
        if nd > 0 {
            panic!("some have committed before Start()");
        }

        let xindex = cfg.one(cmd_int(index * 100), servers, false).await;
        if xindex != index {
            panic!("got index {xindex} but expected {index}");
        }
    }

    cfg.end();
}

/// Counts RPC bytes to check that each command travels to each peer once.
#[madsim::test]
async fn rpc_bytes_3b() {
    let servers = 3;
    let cfg = RaftCluster::new(servers, true, "raft_3b::rpc_bytes_3b").await;
    cfg.begin("Test (3B): RPC byte count");

    cfg.one(cmd_int(99), servers, false).await;
    let bytes0 = cfg.bytes_total();

    let iters = 10u64;
    let mut sent: u64 = 0;
    for index in 2..iters + 2 {
        let cmd = cmd_str(&rand_string(5000));
        let len = cmd.len() as u64;
        let xindex = cfg.one(cmd, servers, false).await;
        if xindex != index {
            panic!("got index {xindex} but expected {index}");
        }
        sent += len;
    }

    let bytes1 = cfg.bytes_total();
    let got = bytes1 - bytes0;
    let expected = servers as u64 * sent;
    if got > expected + 50000 {
        panic!("too many RPC bytes; got {got}, expected {expected}");
    }

    cfg.end();
}

/// Followers fail one after the other.
#[madsim::test]
async fn follower_failure_3b() {
    let servers = 3;
    let cfg = RaftCluster::new(servers, true, "raft_3b::follower_failure_3b").await;
    cfg.begin("Test (3B): test progressive failure of followers");

    cfg.one(cmd_int(101), servers, false).await;

    // Cut one follower off.
    let leader1 = cfg.check_one_leader().await;
    cfg.disconnect((leader1 + 1) % servers);

    // Leader plus the other follower still form a majority.
    cfg.one(cmd_int(102), servers - 1, false).await;
    sleep(RAFT_ELECTION_TIMEOUT).await;
    cfg.one(cmd_int(103), servers - 1, false).await;

    // Now cut off both followers.
    let leader2 = cfg.check_one_leader().await;
    cfg.disconnect((leader2 + 1) % servers);
    cfg.disconnect((leader2 + 2) % servers);

    // The leader must still accept a command...
    let Some((index, _)) = cfg.start(leader2, cmd_int(104)) else {
        panic!("leader rejected Start()");
    };
    if index != 4 {
        panic!("expected index 4, got {index}");
    }

    sleep(2 * RAFT_ELECTION_TIMEOUT).await;

    // ...but it must not commit without a majority.
    let (n, _) = cfg.n_committed(index);
    if n > 0 {
        panic!("{n} committed but no majority");
    }

    cfg.end();
}

/// Leaders fail.
#[madsim::test]
async fn leader_failure_3b() {
    let servers = 3;
    let cfg = RaftCluster::new(servers, true, "raft_3b::leader_failure_3b").await;
    cfg.begin("Test (3B): test failure of leaders");

    cfg.one(cmd_int(101), servers, false).await;

    // Cut the first leader off.
    let leader1 = cfg.check_one_leader().await;
    cfg.disconnect(leader1);

    // The two followers left must elect a new leader.
    cfg.one(cmd_int(102), servers - 1, false).await;
    sleep(RAFT_ELECTION_TIMEOUT).await;
    cfg.one(cmd_int(103), servers - 1, false).await;

    // Cut the new leader off too.
    let leader2 = cfg.check_one_leader().await;
    cfg.disconnect(leader2);

    // Offer a command to every server.
    for i in 0..servers {
        let _ = cfg.start(i, cmd_int(104));
    }

    sleep(2 * RAFT_ELECTION_TIMEOUT).await;

    // Nobody has a majority, so index 4 must stay uncommitted.
    let (n, _) = cfg.n_committed(4);
    if n > 0 {
        panic!("{n} committed but no majority");
    }

    cfg.end();
}

/// A follower that was cut off takes part again once reconnected.
#[madsim::test]
async fn fail_agree_3b() {
    let servers = 3;
    let cfg = RaftCluster::new(servers, true, "raft_3b::fail_agree_3b").await;
    cfg.begin("Test (3B): agreement after follower reconnects");

    cfg.one(cmd_int(101), servers, false).await;

    // Cut one follower off.
    let leader = cfg.check_one_leader().await;
    cfg.disconnect((leader + 1) % servers);

    // The remaining two still agree.
    cfg.one(cmd_int(102), servers - 1, false).await;
    cfg.one(cmd_int(103), servers - 1, false).await;
    sleep(RAFT_ELECTION_TIMEOUT).await;
    cfg.one(cmd_int(104), servers - 1, false).await;
    cfg.one(cmd_int(105), servers - 1, false).await;

    // Bring it back.
    cfg.connect((leader + 1) % servers);

    // All three must keep what was agreed and agree on more.
    cfg.one(cmd_int(106), servers, true).await;
    sleep(RAFT_ELECTION_TIMEOUT).await;
    cfg.one(cmd_int(107), servers, true).await;

    cfg.end();
}

#[madsim::test]
async fn fail_no_agree_3b() {
    let servers = 5;
    let cfg = RaftCluster::new(servers, true, "raft_3b::fail_no_agree_3b").await;
    cfg.begin("Test (3B): no agreement if too many followers disconnect");

    cfg.one(cmd_int(10), servers, false).await;

    // Three of the five servers (all followers) go away.
    let leader = cfg.check_one_leader().await;
    cfg.disconnect((leader + 1) % servers);
    cfg.disconnect((leader + 2) % servers);
    cfg.disconnect((leader + 3) % servers);

    let Some((index, _)) = cfg.start(leader, cmd_int(20)) else {
        panic!("leader rejected Start()");
    };
    if index != 2 {
        panic!("expected index 2, got {index}");
    }

    sleep(2 * RAFT_ELECTION_TIMEOUT).await;

    let (n, _) = cfg.n_committed(index);
    if n > 0 {
        panic!("{n} committed but no majority");
    }

    // Heal.
    cfg.connect((leader + 1) % servers);
    cfg.connect((leader + 2) % servers);
    cfg.connect((leader + 3) % servers);

    // The three that were cut off may have elected one of their own, which
    // never saw index 2.
    let leader2 = cfg.check_one_leader().await;
    let Some((index2, _)) = cfg.start(leader2, cmd_int(30)) else {
        panic!("leader2 rejected Start()");
    };
    if !(2..=3).contains(&index2) {
        panic!("unexpected index {index2}");
    }

    cfg.one(cmd_int(1000), servers, true).await;

    cfg.end();
}

#[madsim::test]
async fn concurrent_starts_3b() {
    let servers = 3;
    let cfg = RaftCluster::new(servers, true, "raft_3b::concurrent_starts_3b").await;
    cfg.begin("Test (3B): concurrent Start()s");

    let mut success = false;
    'attempt: for attempt in 0..5 {
        if attempt > 0 {
            // Let things settle before the next attempt.
            sleep(Duration::from_secs(3)).await;
        }

        let leader = cfg.check_one_leader().await;
        let Some((_, term)) = cfg.start(leader, cmd_int(1)) else {
            // The leader already lost its job.
            continue;
        };

        // Several tasks call Start on the leader at once; those that land in
        // `term` report their index.
        let iters = 5u64;
        let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
        let mut tasks = Vec::new();
        for ii in 0..iters {
            let (cfg, tx) = (cfg.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                match cfg.start(leader, cmd_int(100 + ii)) {
                    Some((index, term1)) if term1 == term => {
                        let _ = tx.send(index);
                    }
                    _ => {}
                }
            }));
        }
        drop(tx);
        for t in futures::future::join_all(tasks).await {
            t.expect("a Start() task failed");
        }

        for j in 0..servers {
            if cfg.get_state(j).0 != term {
                // A new term began: low RPC counts cannot be expected.
                continue 'attempt;
            }
        }

        let mut failed = false;
        let mut cmds: Vec<u64> = Vec::new();
        while let Some(index) = rx.recv().await {
            match cfg.wait(index, servers, Some(term)).await {
                // The peers moved to a later term, so not every Start() can
                // be expected to have made it.
                None => {
                    failed = true;
                    break;
                }
                Some(cmd) => match as_int(&cmd) {
                    Some(ix) => cmds.push(ix),
                    None => panic!("value {cmd:?} is not an int"),
                },
            }
        }

        if failed {
            continue;
        }

        for ii in 0..iters {
            let x = 100 + ii;
            if !cmds.contains(&x) {
                panic!("cmd {x} missing in {cmds:?}");
            }
        }

        success = true;
        break;
    }

    if !success {
        panic!("term changed too often");
    }

    cfg.end();
}

#[madsim::test]
async fn rejoin_3b() {
    let servers = 3;
    let cfg = RaftCluster::new(servers, true, "raft_3b::rejoin_3b").await;
    cfg.begin("Test (3B): rejoin of partitioned leader");

    cfg.one(cmd_int(101), servers, true).await;

    // The leader loses the network.
    let leader1 = cfg.check_one_leader().await;
    cfg.disconnect(leader1);

    // It keeps appending entries nobody will hear of.
    let _ = cfg.start(leader1, cmd_int(102));
    let _ = cfg.start(leader1, cmd_int(103));
    let _ = cfg.start(leader1, cmd_int(104));

    // The new leader commits, index 2 included.
    cfg.one(cmd_int(103), 2, true).await;

    // The new leader loses the network.
    let leader2 = cfg.check_one_leader().await;
    cfg.disconnect(leader2);

    // The old leader comes back.
    cfg.connect(leader1);

    cfg.one(cmd_int(104), 2, true).await;

    // Everyone together.
    cfg.connect(leader2);

    cfg.one(cmd_int(105), servers, true).await;

    cfg.end();
}

#[madsim::test]
async fn backup_3b() {
    let servers = 5;
    let cfg = RaftCluster::new(servers, true, "raft_3b::backup_3b").await;
    cfg.begin("Test (3B): leader backs up quickly over incorrect follower logs");

    cfg.one(cmd_int(rand_u64()), servers, true).await;

    // Leader and one follower end up alone together.
    let leader1 = cfg.check_one_leader().await;
    cfg.disconnect((leader1 + 2) % servers);
    cfg.disconnect((leader1 + 3) % servers);
    cfg.disconnect((leader1 + 4) % servers);

    // Many commands that cannot commit.
    for _ in 0..50 {
        let _ = cfg.start(leader1, cmd_int(rand_u64()));
    }

    sleep(RAFT_ELECTION_TIMEOUT / 2).await;

    cfg.disconnect(leader1 % servers);
    cfg.disconnect((leader1 + 1) % servers);

    // The other three get their turn.
    cfg.connect((leader1 + 2) % servers);
    cfg.connect((leader1 + 3) % servers);
    cfg.connect((leader1 + 4) % servers);

    // Many commands that do commit in the new group.
    for _ in 0..50 {
        cfg.one(cmd_int(rand_u64()), 3, true).await;
    }

    // Again a leader with a single follower.
    let leader2 = cfg.check_one_leader().await;
    let mut other = (leader1 + 2) % servers;
    if leader2 == other {
        other = (leader2 + 1) % servers;
    }
    cfg.disconnect(other);

    // Many more commands that cannot commit.
    for _ in 0..50 {
        let _ = cfg.start(leader2, cmd_int(rand_u64()));
    }

    sleep(RAFT_ELECTION_TIMEOUT / 2).await;

    // The first leader comes back, with its follower and `other`.
    for i in 0..servers {
        cfg.disconnect(i);
    }
    cfg.connect(leader1 % servers);
    cfg.connect((leader1 + 1) % servers);
    cfg.connect(other);

    // Many commands that commit in this group.
    for _ in 0..50 {
        cfg.one(cmd_int(rand_u64()), 3, true).await;
    }

    // Everyone.
    for i in 0..servers {
        cfg.connect(i);
    }
    cfg.one(cmd_int(rand_u64()), servers, true).await;

    cfg.end();
}

#[madsim::test]
async fn count_3b() {
    let servers = 3;
    let cfg = RaftCluster::new(servers, true, "raft_3b::count_3b").await;
    cfg.begin("Test (3B): RPC counts aren't too high");

    let rpcs = || (0..servers).map(|j| cfg.rpc_count(j)).sum::<u64>();

    cfg.check_one_leader().await;

    let mut total1 = rpcs();

    if !(1..=30).contains(&total1) {
        panic!("too many or few RPCs ({total1}) to elect initial leader");
    }

    let mut total2 = 0;
    let mut success = false;
    'attempt: for attempt in 0..5 {
        if attempt > 0 {
            // Let things settle before the next attempt.
            sleep(Duration::from_secs(3)).await;
        }

        let leader = cfg.check_one_leader().await;
        total1 = rpcs();

        let iters = 10u64;
        let Some((starti, term)) = cfg.start(leader, cmd_int(1)) else {
            // The leader already lost its job.
            continue;
        };
        let mut cmds: Vec<u64> = Vec::new();
        for i in 1..iters + 2 {
            let x = rand_u64() % (1 << 31);
            cmds.push(x);
            match cfg.start(leader, cmd_int(x)) {
                // The term moved on while we were starting, or the leader
                // stepped down (which also means a new term).
                None => continue 'attempt,
                Some((_, term1)) if term1 != term => continue 'attempt,
                Some((index1, _)) => {
                    if starti + i != index1 {
                        panic!("Start() failed");
                    }
                }
            }
        }

        for i in 1..iters + 1 {
            match cfg.wait(starti + i, servers, Some(term)).await {
                // New term: try again.
                None => continue 'attempt,
                Some(cmd) => {
                    if as_int(&cmd) != Some(cmds[(i - 1) as usize]) {
                        panic!(
                            "wrong value {:?} committed for index {}; expected {:?}",
                            as_int(&cmd).map_or_else(|| format!("{cmd:?}"), |x| x.to_string()),
                            starti + i,
                            cmds
                        );
                    }
                }
            }
        }

        let mut failed = false;
        total2 = 0;
        for j in 0..servers {
            if cfg.get_state(j).0 != term {
                // New term: low RPC counts cannot be expected, but total2
                // still has to be brought up to date.
                failed = true;
            }
            total2 += cfg.rpc_count(j);
        }

        if failed {
            continue 'attempt;
        }

        if total2 - total1 > (iters + 1 + 3) * 3 {
            panic!("too many RPCs ({}) for {} entries", total2 - total1, iters);
        }

        success = true;
        break;
    }

    if !success {
        panic!("term changed too often");
    }

    sleep(RAFT_ELECTION_TIMEOUT).await;

    let total3: u64 = (0..servers).map(|j| cfg.rpc_count(j)).sum();

    if total3 - total2 > 3 * 20 {
        panic!("too many RPCs ({}) for 1 second of idleness", total3 - total2);
    }

    cfg.end();
}
