//! What the clerks do in a KV run: 6.5840's GenericTest (the ported lab 4A
//! tests and the catalogue share its body), random Get/Put/Append on a few
//! keys (swarm), and the liveness phase that ends every campaign run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::time::sleep;

use tokio::task::JoinHandle;

use super::spec::{NemesisEvent, PartitionStyle, RunSpec, Workload};
use super::{nemesis, verify};
use crate::kv::Bug;
use crate::sim::failure::Failure;
use crate::sim::kv_cluster::{KvCluster, KvOptions};
use crate::sim::test_clerk::TestClerk;
use crate::sim::network::FaultConfig;
use crate::sim::raft_cluster::rand_u64;
use crate::sim::rafts::RaftKind;

/// 6.5840's electionTimeout in the KV tests.
pub const ELECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// The knobs of GenericTest, plus the faults this project adds.
#[derive(Clone, Debug)]
pub struct GenericSpec {
    pub clients: usize,
    pub servers: usize,
    pub unreliable: bool,
    pub crash: bool,
    pub partitions: bool,
    pub random_keys: bool,
    /// Rounds of client work (3 in 6.5840).
    pub iterations: usize,
    /// How long clients run in each round (5 s in 6.5840).
    pub run: Duration,
    /// Fraction of messages delivered twice.
    pub duplicate_rate: f64,
    /// The partitioner cuts random one-way links instead of splitting in two.
    pub one_way: bool,
    pub bug: Bug,
    /// The Raft the servers run.
    pub raft: RaftKind,
    /// Check each client's Gets and appends as the run goes (off only to let a
    /// deliberately broken server run to the end, for the history checker).
    pub inline_checks: bool,
    /// Network faults from the start, replacing what `unreliable` and
    /// `duplicate_rate` imply (run specs set them one by one).
    pub faults: Option<FaultConfig>,
}

impl GenericSpec {
    /// GenericTest(nclients, nservers, unreliable, crash, partitions, maxraftstate=-1, randomkeys).
    pub fn new(clients: usize, servers: usize, unreliable: bool, crash: bool, partitions: bool, random_keys: bool) -> Self {
        GenericSpec {
            clients,
            servers,
            unreliable,
            crash,
            partitions,
            random_keys,
            iterations: 3,
            run: Duration::from_secs(5),
            duplicate_rate: 0.0,
            one_way: false,
            bug: Bug::None,
            raft: RaftKind::OURS,
            inline_checks: true,
            faults: None,
        }
    }

    /// The GenericTest parameters of a spec's generic workload.
    pub fn from_run(spec: &RunSpec) -> Option<GenericSpec> {
        let Workload::Generic { iterations, round_ms, random_keys, restarts, inline_checks } = &spec.workload else {
            return None;
        };
        let mut g = GenericSpec::new(
            spec.clients,
            spec.servers,
            !spec.faults.is_none(),
            *restarts,
            spec.partition != PartitionStyle::None,
            *random_keys,
        );
        g.iterations = *iterations;
        g.run = Duration::from_millis(*round_ms);
        g.duplicate_rate = spec.faults.duplicate_rate;
        g.one_way = spec.partition == PartitionStyle::OneWay;
        g.bug = spec.bug;
        g.raft = spec.raft;
        g.inline_checks = *inline_checks;
        g.faults = Some(spec.faults.to_config());
        Some(g)
    }

    /// The cluster this workload runs on.
    pub fn options(&self) -> KvOptions {
        let mut opts = KvOptions::new(self.servers, self.unreliable).raft(self.raft);
        opts.bug = self.bug;
        opts.faults = self.faults.clone();
        opts
    }

    /// 6.5840's test title.
    pub fn title(&self) -> String {
        let mut t = String::from("Test: ");
        if self.unreliable {
            t += "unreliable net, ";
        }
        if self.crash {
            t += "restarts, ";
        }
        if self.partitions {
            t += "partitions, ";
        }
        if self.duplicate_rate > 0.0 {
            t += "duplication, ";
        }
        if self.one_way {
            t += "one-way cuts, ";
        }
        t += if self.clients > 1 { "many clients" } else { "one client" };
        if self.random_keys {
            t += ", random keys";
        }
        t + " (4A)"
    }
}

/// Panics unless `v` holds client `clnt`'s appends 0..count, once each, in order.
pub fn check_clnt_appends(clnt: usize, v: &str, count: usize) {
    let mut last: Option<usize> = None;
    for j in 0..count {
        let wanted = format!("x {clnt} {j} y");
        let off = v.find(&wanted).unwrap_or_else(|| panic!("{clnt} missing element {wanted} in Append result {v}"));
        let off1 = v.rfind(&wanted).unwrap();
        assert_eq!(off1, off, "duplicate element {wanted} in Append result");
        if let Some(l) = last {
            assert!(off > l, "wrong order for element {wanted} in Append result");
        }
        last = Some(off);
    }
}

/// Panics unless `v` holds every client's appends, once each, each client's in order.
pub fn check_concurrent_appends(v: &str, counts: &[usize]) {
    for (i, n) in counts.iter().enumerate() {
        check_clnt_appends(i, v, *n);
    }
}

/// Repartitions the servers at random about once a second until `done`.
async fn partitioner(cluster: KvCluster, done: Arc<AtomicBool>, one_way: bool) {
    let n = cluster.n();
    while !done.load(Ordering::SeqCst) {
        if one_way {
            // Heal, then cut a few random directed links between servers.
            cluster.connect_all();
            let cuts = 1 + rand_u64() as usize % n;
            for _ in 0..cuts {
                let a = rand_u64() as usize % n;
                let b = rand_u64() as usize % n;
                if a != b {
                    cluster.cut_one_way(a, b);
                }
            }
        } else {
            let side: Vec<u64> = (0..n).map(|_| rand_u64() % 2).collect();
            let p0: Vec<usize> = (0..n).filter(|i| side[*i] == 0).collect();
            let p1: Vec<usize> = (0..n).filter(|i| side[*i] == 1).collect();
            cluster.partition(&p0, &p1);
        }
        sleep(ELECTION_TIMEOUT + Duration::from_millis(rand_u64() % 200)).await;
    }
}

/// 6.5840's GenericTest: rounds of clients doing random Appends and Gets
/// (checking each Get against the value they predict), with partitions and
/// whole-cluster crashes between rounds as asked; then every client's appends
/// are checked, and the whole history for linearizability and `bound_ms`.
pub async fn generic_test(name: &str, spec: &GenericSpec, bound_ms: f64) -> KvCluster {
    let cluster = run_generic(name, spec).await;
    verify::check(&cluster, bound_ms).await;
    cluster.end();
    cluster
}

/// GenericTest's workload without the final checks: returns the cluster with
/// its recorded history.
pub async fn run_generic(name: &str, spec: &GenericSpec) -> KvCluster {
    let cluster = KvCluster::with_options(spec.options(), name).await;
    generic(&cluster, spec).await;
    cluster
}

/// GenericTest's workload on `cluster`; returns the clerks of the last round and
/// the checking clerk, for a liveness phase.
pub async fn generic(cluster: &KvCluster, spec: &GenericSpec) -> Vec<TestClerk> {
    if spec.faults.is_none() {
        cluster.set_duplication(spec.duplicate_rate);
    }
    cluster.begin(&spec.title());
    let mut ck = cluster.make_client(&cluster.all()).await;
    let mut last_round = Vec::new();
    for _ in 0..spec.iterations {
        let done_clients = Arc::new(AtomicBool::new(false));
        let done_partitioner = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for cli in 0..spec.clients {
            let mut myck = cluster.make_client(&cluster.all()).await;
            let done = done_clients.clone();
            let (random_keys, nclients, checks) = (spec.random_keys, spec.clients, spec.inline_checks);
            clients.push(tokio::spawn(async move {
                let mut j = 0;
                let mut last = String::new();
                if !random_keys {
                    myck.put(&cli.to_string(), &last).await;
                }
                while !done.load(Ordering::SeqCst) {
                    let key = if random_keys { (rand_u64() as usize % nclients).to_string() } else { cli.to_string() };
                    let nv = format!("x {cli} {j} y");
                    if rand_u64() % 1000 < 500 {
                        myck.append(&key, &nv).await;
                        if !random_keys {
                            last.push_str(&nv);
                        }
                        j += 1;
                    } else if random_keys && rand_u64() % 1000 < 100 {
                        myck.put(&key, &nv).await;
                        j += 1;
                    } else {
                        let v = myck.get(&key).await;
                        if !random_keys && checks {
                            assert_eq!(v, last, "get wrong value, key {key}");
                        }
                    }
                }
                (j, myck)
            }));
        }
        let part = if spec.partitions {
            sleep(Duration::from_secs(1)).await;
            Some(tokio::spawn(partitioner(cluster.clone(), done_partitioner.clone(), spec.one_way)))
        } else {
            None
        };
        sleep(spec.run).await;
        done_clients.store(true, Ordering::SeqCst);
        done_partitioner.store(true, Ordering::SeqCst);
        if let Some(p) = part {
            p.await.expect("partitioner task");
            cluster.connect_all();
            // Let a new term start, so ops stuck in a minority come unstuck.
            sleep(ELECTION_TIMEOUT).await;
        }
        if spec.crash {
            for i in 0..spec.servers {
                cluster.shutdown_server(i);
            }
            sleep(ELECTION_TIMEOUT).await;
            for i in 0..spec.servers {
                cluster.start_server(i).await;
            }
            cluster.connect_all();
        }
        last_round.clear();
        for (i, c) in clients.into_iter().enumerate() {
            let (j, myck) = c.await.expect("client task");
            last_round.push(myck);
            let v = ck.get(&i.to_string()).await;
            if !spec.random_keys && spec.inline_checks {
                check_clnt_appends(i, &v, j);
            }
        }
    }
    last_round.push(ck);
    last_round
}

/// What the liveness phase measured.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Liveness {
    /// Virtual ms from the heal until the last clerk completed its new op
    /// (None: some clerk did not within the window).
    pub ms: Option<u64>,
    pub clerks: usize,
    pub completed: usize,
}

/// The liveness phase: heals every fault (restarts crashed servers,
/// reconnects everything, turns loss, delay and duplication off), then every
/// clerk must finish the op it may be in and complete one new Append within
/// `window` of virtual time. `clerks` yield each clerk once its workload ends;
/// `key_of` names the key each clerk appends to.
pub async fn liveness_phase(
    cluster: &KvCluster,
    clerks: Vec<tokio::task::JoinHandle<TestClerk>>,
    key_of: impl Fn(usize) -> String,
    window: Duration,
) -> Result<Liveness, Failure> {
    cluster.note(
        crate::check::history::kinds::PHASE,
        format!("liveness: every fault healed; each clerk must complete a new op within {} ms", window.as_millis()),
    );
    cluster.heal().await;
    let healed = std::time::Instant::now();
    let total = clerks.len();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (k, h) in clerks.into_iter().enumerate() {
        let (done, key) = (done.clone(), key_of(k));
        tasks.push(tokio::spawn(async move {
            let mut ck = h.await.expect("clerk task");
            // Unique per clerk and distinct from workload values.
            ck.append(&key, &format!("live{}", ck.index())).await;
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    let all = async {
        for t in tasks {
            t.await.expect("liveness task");
        }
    };
    let ok = tokio::time::timeout(window, all).await.is_ok();
    let completed = done.load(Ordering::SeqCst);
    if ok {
        Ok(Liveness { ms: Some(healed.elapsed().as_millis() as u64), clerks: total, completed })
    } else {
        Err(Failure::liveness(format!(
            "{} of {total} clerks completed no new op within {} ms (virtual) after every fault was healed",
            total - completed,
            window.as_millis()
        )))
    }
}

/// The key clerk `k` appends to in the liveness phase.
pub fn key_name(k: usize) -> String {
    format!("k{k}")
}

/// What a run's workload came to: its liveness phase, and how long the
/// replicas took to converge after it (0: not tried, the cluster was stuck).
pub struct Ran {
    pub liveness: Result<Liveness, Failure>,
    pub convergence_ms: u64,
}

/// The workload of `spec` on `cluster` (a generic one's rounds, or a
/// swarm's random ops while the nemesis applies `schedule`, the run
/// described as `mix`), then the liveness phase and convergence.
pub async fn run(cluster: &KvCluster, spec: &RunSpec, schedule: Vec<NemesisEvent>, mix: &str) -> Ran {
    let (clerks, key_of): (_, Box<dyn Fn(usize) -> String>) = match &spec.workload {
        Workload::Generic { .. } => {
            let g = GenericSpec::from_run(spec).expect("a generic workload");
            let clerks = generic(cluster, &g).await;
            // Handles for uniformity with swarm clerks, which may be mid-op.
            let clerks = clerks.into_iter().map(|ck| tokio::spawn(async move { ck })).collect();
            let n = spec.clients;
            (clerks, Box::new(move |k| (k % n).to_string()))
        }
        Workload::Swarm { keys, .. } => {
            let keys = *keys;
            (random_ops(cluster, spec, schedule, mix).await, Box::new(move |k| key_name(k % keys)))
        }
    };
    let liveness = liveness_phase(cluster, clerks, key_of, Duration::from_millis(spec.liveness_ms)).await;
    // A stuck cluster cannot converge: the liveness failure says enough.
    let convergence_ms = match liveness {
        Ok(_) => {
            cluster.note(crate::check::history::kinds::PHASE, "convergence: every replica must apply up to the same index");
            cluster.converge(Duration::from_millis(verify::CONVERGENCE_MS)).await
        }
        Err(_) => 0,
    };
    Ran { liveness, convergence_ms }
}

/// The random-ops workload of a swarm spec on `cluster`, up to the end of its
/// run time: clerks do random Get/Put/Append on the spec's keys while the
/// nemesis applies `events` (the spec's schedule, drawn by the executor;
/// see [`nemesis::within_run`]); `mix` names the run. Returns the clerks (each handed back when
/// its current op finishes).
pub async fn random_ops(cluster: &KvCluster, spec: &RunSpec, events: Vec<NemesisEvent>, mix: &str) -> Vec<JoinHandle<TestClerk>> {
    let Workload::Swarm { keys, run_ms, ops_per_client } = spec.workload else {
        panic!("random_ops needs a swarm workload");
    };
    cluster.begin(&format!("Test: swarm {mix}"));
    // Start once a first leader is elected (or after 10 s without one), so
    // the first election does not count as the workload's latency: the
    // clerks run closed loops, and in short runs that one second would
    // dominate the mean ms/op.
    let wait_from = Instant::now();
    while cluster.leader().is_none() && wait_from.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut clerks = Vec::new();
    for c in 0..spec.clients {
        let mut ck = cluster.make_client(&cluster.all()).await;
        let done = done.clone();
        clerks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !done.load(Ordering::SeqCst) && ops_per_client.is_none_or(|m| n < m) {
                let key = key_name(rand_u64() as usize % keys);
                // Unique values let the checker tell every write apart.
                let value = format!("c{c}n{n}.");
                match rand_u64() % 100 {
                    0..=44 => {
                        ck.get(&key).await;
                    }
                    45..=64 => ck.put(&key, &value).await,
                    _ => ck.append(&key, &value).await,
                }
                n += 1;
            }
            ck
        }));
    }
    let nemesis = tokio::spawn(nemesis::run(cluster.clone(), events, start));
    tokio::time::sleep(Duration::from_millis(run_ms)).await;
    done.store(true, Ordering::SeqCst);
    // Every event is due before now; a restart in progress finishes first.
    nemesis.await.expect("nemesis task");
    clerks
}

