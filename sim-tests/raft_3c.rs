//! Lab 3C of MIT 6.5840 (2024): persistence, ported to the madsim simulator,
//! plus one test of our own that mixes message duplication with partitions
//! and crashes. Sleeps are virtual; randomness is the simulation's seeded RNG.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kvraft::sim::raft_cluster::{cmd_int, rand_u64, RaftCluster};
use tokio::time::sleep;

/// The tester allows a full second for an election.
const RAFT_ELECTION_TIMEOUT: Duration = Duration::from_millis(1000);

/// The integer inside a command made by `cmd_int`, if it is one.
fn as_int(cmd: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(cmd).ok().map(u64::from_le_bytes)
}

fn rand_below(n: usize) -> usize {
    (rand_u64() % n as u64) as usize
}

#[madsim::test]
async fn persist1_3c() {
    let servers = 3;
    let cfg = RaftCluster::new(servers, true, "raft_3c::persist1_3c").await;
    cfg.begin("Test (3C): basic persistence");

    cfg.one(cmd_int(11), servers, true).await;

    // Crash and reboot every server.
    for i in 0..servers {
        cfg.start1(i).await;
    }
    for i in 0..servers {
        cfg.disconnect(i);
        cfg.connect(i);
    }

    cfg.one(cmd_int(12), servers, true).await;

    let leader1 = cfg.check_one_leader().await;
    cfg.disconnect(leader1);
    cfg.start1(leader1).await;
    cfg.connect(leader1);

    cfg.one(cmd_int(13), servers, true).await;

    let leader2 = cfg.check_one_leader().await;
    cfg.disconnect(leader2);
    cfg.one(cmd_int(14), servers - 1, true).await;
    cfg.start1(leader2).await;
    cfg.connect(leader2);

    // Let leader2 catch up before the next server goes down.
    cfg.wait(4, servers, None).await;

    let i3 = (cfg.check_one_leader().await + 1) % servers;
    cfg.disconnect(i3);
    cfg.one(cmd_int(15), servers - 1, true).await;
    cfg.start1(i3).await;
    cfg.connect(i3);

    cfg.one(cmd_int(16), servers, true).await;

    cfg.end();
}

#[madsim::test]
async fn persist2_3c() {
    let servers = 5;
    let cfg = RaftCluster::new(servers, true, "raft_3c::persist2_3c").await;
    cfg.begin("Test (3C): more persistence");

    let mut index = 1u64;
    for _ in 0..5 {
        cfg.one(cmd_int(10 + index), servers, true).await;
        index += 1;

        let leader1 = cfg.check_one_leader().await;

        cfg.disconnect((leader1 + 1) % servers);
        cfg.disconnect((leader1 + 2) % servers);

        cfg.one(cmd_int(10 + index), servers - 2, true).await;
        index += 1;

        cfg.disconnect(leader1 % servers);
        cfg.disconnect((leader1 + 3) % servers);
        cfg.disconnect((leader1 + 4) % servers);

        cfg.start1((leader1 + 1) % servers).await;
        cfg.start1((leader1 + 2) % servers).await;
        cfg.connect((leader1 + 1) % servers);
        cfg.connect((leader1 + 2) % servers);

        sleep(RAFT_ELECTION_TIMEOUT).await;

        cfg.start1((leader1 + 3) % servers).await;
        cfg.connect((leader1 + 3) % servers);

        cfg.one(cmd_int(10 + index), servers - 2, true).await;
        index += 1;

        cfg.connect((leader1 + 4) % servers);
        cfg.connect(leader1 % servers);
    }

    cfg.one(cmd_int(1000), servers, true).await;

    cfg.end();
}

#[madsim::test]
async fn persist3_3c() {
    let servers = 3;
    let cfg = RaftCluster::new(servers, true, "raft_3c::persist3_3c").await;
    cfg.begin("Test (3C): partitioned leader and one follower crash, leader restarts");

    cfg.one(cmd_int(101), 3, true).await;

    let leader = cfg.check_one_leader().await;
    cfg.disconnect((leader + 2) % servers);

    cfg.one(cmd_int(102), 2, true).await;

    cfg.crash1(leader % servers);
    cfg.crash1((leader + 1) % servers);
    cfg.connect((leader + 2) % servers);
    cfg.start1(leader % servers).await;
    cfg.connect(leader % servers);

    cfg.one(cmd_int(103), 2, true).await;

    cfg.start1((leader + 1) % servers).await;
    cfg.connect((leader + 1) % servers);

    cfg.one(cmd_int(104), servers, true).await;

    cfg.end();
}

/// The scenarios of Figure 8 of the extended Raft paper. Each round offers a
/// command to whoever leads; that leader then usually crashes almost at once
/// (maybe before committing) and sometimes only after a while (probably after
/// committing). Servers are rebooted whenever fewer than a majority are up,
/// so new leaders must deal with uncommitted entries of older terms.
#[madsim::test]
async fn figure8_3c() {
    let servers = 5;
    let cfg = RaftCluster::new(servers, true, "raft_3c::figure8_3c").await;
    cfg.begin("Test (3C): Figure 8");

    cfg.one(cmd_int(rand_u64()), 1, true).await;

    let et_ms = RAFT_ELECTION_TIMEOUT.as_millis() as u64;
    let mut nup = servers;
    for _ in 0..1000 {
        let mut leader = None;
        for i in 0..servers {
            if cfg.is_alive(i) && cfg.start(i, cmd_int(rand_u64())).is_some() {
                leader = Some(i);
            }
        }

        let ms = if rand_u64() % 1000 < 100 { rand_u64() % (et_ms / 2) } else { rand_u64() % 13 };
        sleep(Duration::from_millis(ms)).await;

        if let Some(l) = leader {
            cfg.crash1(l);
            nup -= 1;
        }

        if nup < 3 {
            let s = rand_below(servers);
            if !cfg.is_alive(s) {
                cfg.start1(s).await;
                cfg.connect(s);
                nup += 1;
            }
        }
    }

    for i in 0..servers {
        if !cfg.is_alive(i) {
            cfg.start1(i).await;
            cfg.connect(i);
        }
    }

    cfg.one(cmd_int(rand_u64()), servers, true).await;

    cfg.end();
}

#[madsim::test]
async fn unreliable_agree_3c() {
    let servers = 5;
    let cfg = RaftCluster::new(servers, false, "raft_3c::unreliable_agree_3c").await;
    cfg.begin("Test (3C): unreliable agreement");

    let mut tasks = Vec::new();
    for iters in 1..50u64 {
        for j in 0..4u64 {
            let cfg = cfg.clone();
            tasks.push(tokio::spawn(async move {
                cfg.one(cmd_int(100 * iters + j), 1, true).await;
            }));
        }
        cfg.one(cmd_int(iters), 1, true).await;
    }

    cfg.set_unreliable(false);

    for t in futures::future::join_all(tasks).await {
        t.expect("a concurrent one() failed");
    }

    cfg.one(cmd_int(100), servers, true).await;

    cfg.end();
}

#[madsim::test]
async fn figure8_unreliable_3c() {
    let servers = 5;
    let cfg = RaftCluster::new(servers, false, "raft_3c::figure8_unreliable_3c").await;
    cfg.begin("Test (3C): Figure 8 (unreliable)");

    cfg.one(cmd_int(rand_u64() % 10000), 1, true).await;

    let et_ms = RAFT_ELECTION_TIMEOUT.as_millis() as u64;
    let mut nup = servers;
    for iters in 0..1000 {
        if iters == 200 {
            cfg.set_long_reordering(true);
        }
        let mut leader = None;
        for i in 0..servers {
            let ok = cfg.start(i, cmd_int(rand_u64() % 10000)).is_some();
            if ok && cfg.is_connected(i) {
                leader = Some(i);
            }
        }

        let ms = if rand_u64() % 1000 < 100 { rand_u64() % (et_ms / 2) } else { rand_u64() % 13 };
        sleep(Duration::from_millis(ms)).await;

        if let Some(l) = leader {
            if rand_u64() % 1000 < et_ms / 2 {
                cfg.disconnect(l);
                nup -= 1;
            }
        }

        if nup < 3 {
            let s = rand_below(servers);
            if !cfg.is_connected(s) {
                cfg.connect(s);
                nup += 1;
            }
        }
    }

    for i in 0..servers {
        if !cfg.is_connected(i) {
            cfg.connect(i);
        }
    }

    cfg.one(cmd_int(rand_u64() % 10000), servers, true).await;

    cfg.end();
}

/// One churn client: until `stop`, offers random commands to every server
/// and, when one accepts, waits a bounded while to see whether its command
/// is the one committed at that index. Returns the commands it saw commit.
/// Ends a churn: loss and delay off, every server up and connected, the
/// clients stopped; returns every value the clients saw committed.
async fn heal_and_stop_clients(
    cfg: &RaftCluster,
    stop: &AtomicBool,
    clients: Vec<tokio::task::JoinHandle<Vec<u64>>>,
) -> Vec<u64> {
    cfg.set_unreliable(false);
    for i in 0..cfg.n() {
        if !cfg.is_alive(i) {
            cfg.start1(i).await;
        }
        cfg.connect(i);
    }
    stop.store(true, Ordering::SeqCst);
    let mut values = Vec::new();
    for c in clients {
        match c.await {
            Ok(vv) => values.extend(vv),
            Err(_) => panic!("client failed"),
        }
    }
    values
}

async fn churn_client(cfg: RaftCluster, me: u64, stop: Arc<AtomicBool>) -> Vec<u64> {
    let servers = cfg.n();
    let mut values = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let x = rand_u64();
        let mut index = None;
        for i in 0..servers {
            // Any of them may be a leader.
            if let Some((index1, _)) = cfg.start(i, cmd_int(x)) {
                index = Some(index1);
            }
        }
        if let Some(index) = index {
            // The leader may or may not commit it; don't wait forever.
            for to in [10, 20, 50, 100, 200] {
                let (nd, cmd) = cfg.n_committed(index);
                if nd > 0 {
                    match cmd.as_deref().and_then(as_int) {
                        Some(xx) => {
                            if xx == x {
                                values.push(x);
                            }
                        }
                        None => panic!("wrong command type"),
                    }
                    break;
                }
                sleep(Duration::from_millis(to)).await;
            }
        } else {
            sleep(Duration::from_millis(79 + me * 17)).await;
        }
    }
    values
}

/// Checks that every value in `values` is in the log the whole cluster
/// agrees on up to `last_index`.
async fn check_values_committed(cfg: &RaftCluster, values: &[u64], last_index: u64) {
    let servers = cfg.n();
    let mut really = Vec::with_capacity(last_index as usize);
    for index in 1..=last_index {
        let v = cfg.wait(index, servers, None).await;
        match v.as_deref().and_then(as_int) {
            Some(vi) => really.push(vi),
            None => panic!("not an int"),
        }
    }
    for v1 in values {
        if !really.contains(v1) {
            panic!("didn't find a value");
        }
    }
}

async fn internal_churn(unreliable: bool, name: &str) {
    let servers = 5;
    let cfg = RaftCluster::new(servers, !unreliable, name).await;
    if unreliable {
        cfg.begin("Test (3C): unreliable churn");
    } else {
        cfg.begin("Test (3C): churn");
    }

    let stop = Arc::new(AtomicBool::new(false));

    // Concurrent clients.
    let ncli = 3;
    let clients: Vec<_> =
        (0..ncli).map(|i| tokio::spawn(churn_client(cfg.clone(), i, stop.clone()))).collect();

    for _ in 0..20 {
        if rand_u64() % 1000 < 200 {
            let i = rand_below(servers);
            cfg.disconnect(i);
        }

        if rand_u64() % 1000 < 500 {
            let i = rand_below(servers);
            if !cfg.is_alive(i) {
                cfg.start1(i).await;
            }
            cfg.connect(i);
        }

        if rand_u64() % 1000 < 200 {
            let i = rand_below(servers);
            if cfg.is_alive(i) {
                cfg.crash1(i);
            }
        }

        // Changes come often enough that the cluster rarely settles between
        // them, but not so often that peers can never keep up: a bit less
        // than an election timeout.
        sleep(RAFT_ELECTION_TIMEOUT * 7 / 10).await;
    }

    sleep(RAFT_ELECTION_TIMEOUT).await;
    let values = heal_and_stop_clients(&cfg, &stop, clients).await;

    sleep(RAFT_ELECTION_TIMEOUT).await;

    let last_index = cfg.one(cmd_int(rand_u64()), servers, true).await;

    check_values_committed(&cfg, &values, last_index).await;

    cfg.end();
}

#[madsim::test]
async fn reliable_churn_3c() {
    internal_churn(false, "raft_3c::reliable_churn_3c").await;
}

#[madsim::test]
async fn unreliable_churn_3c() {
    internal_churn(true, "raft_3c::unreliable_churn_3c").await;
}

/// Not in 6.5840: heavy message duplication (30% of requests and of replies
/// arrive twice, the copy possibly after later messages) on top of loss and
/// delay, while random groups of servers are cut off and servers crash and
/// reboot. Clients submit commands all along. Agreement of every applied
/// entry is checked by the cluster itself; at the end, with the network
/// whole again, everyone must agree on a new command and every command a
/// client saw committed must be in the final log.
#[madsim::test]
async fn duplication_partitions_crashes_3c() {
    let servers = 5;
    let cfg = RaftCluster::new(servers, false, "raft_3c::duplication_partitions_crashes_3c").await;
    cfg.set_duplication(0.3);
    cfg.begin("Test (3C): duplication with partitions and crashes");

    cfg.one(cmd_int(rand_u64()), servers, true).await;

    let stop = Arc::new(AtomicBool::new(false));
    let ncli = 3;
    let clients: Vec<_> =
        (0..ncli).map(|i| tokio::spawn(churn_client(cfg.clone(), i, stop.clone()))).collect();

    let et_ms = RAFT_ELECTION_TIMEOUT.as_millis() as u64;
    for _ in 0..30 {
        // Each crashed server reboots with even odds (it comes back cut off;
        // the partition below decides whether it rejoins).
        for i in 0..servers {
            if !cfg.is_alive(i) && rand_u64().is_multiple_of(2) {
                cfg.start1(i).await;
            }
        }

        // A new random partition: a random set of 2 to 5 servers is
        // connected, the rest cut off. Two times in three the connected
        // side is a majority, so progress is possible between faults.
        let k = [2, 3, 3, 4, 4, 5][rand_below(6)];
        let mut order: Vec<usize> = (0..servers).collect();
        for j in (1..servers).rev() {
            order.swap(j, rand_below(j + 1));
        }
        for (pos, &i) in order.iter().enumerate() {
            if pos < k {
                cfg.connect(i);
            } else {
                cfg.disconnect(i);
            }
        }

        // Sometimes a server crashes on top of that.
        if rand_u64() % 1000 < 300 {
            let i = rand_below(servers);
            if cfg.is_alive(i) {
                cfg.crash1(i);
            }
        }

        // Commands straight from the test too, to every server that takes
        // them.
        for i in 0..servers {
            let _ = cfg.start(i, cmd_int(rand_u64()));
        }

        // Half an election timeout to one and a half: long enough, often,
        // for a new leader to emerge and commit before the next change.
        sleep(Duration::from_millis(et_ms / 2 + rand_u64() % et_ms)).await;
    }

    // Heal: everyone up and connected, no more loss or delay (duplication
    // stays on: it loses nothing, so progress must still be possible).
    let values = heal_and_stop_clients(&cfg, &stop, clients).await;

    let last_index = cfg.one(cmd_int(rand_u64()), servers, true).await;

    check_values_committed(&cfg, &values, last_index).await;

    let dups = cfg.network().stats().duplicated;
    if dups == 0 {
        panic!("the network never duplicated a message");
    }

    cfg.end();
}
