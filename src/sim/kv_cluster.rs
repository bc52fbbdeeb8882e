//! The KV tester (6.5840's kvraft config.go): a cluster of KV servers,
//! each Raft + KV on one madsim node. It holds how a cluster is built
//! ([`KvOptions`]); the cluster ([`KvCluster`]) and its controls: clerks
//! (each a [`TestClerk`] on a node of its own, every op recorded in the
//! run's history), crashes, restarts, pauses, partitions, disk stalls and
//! network faults; a server's boot, which wires its Raft to the monitor
//! and to the protocol-moment traps (the traps themselves, and how a
//! nemesis arms one, are in [`super::traps`]; [`KvCluster::trap`] finds
//! one); and the run's results: its history, figures, the monitor's
//! verdict and convergence at the end. The checks a run's history and
//! figures get (linearizability, the ms/op and efficiency bounds) are in
//! `campaign::verify`; addresses are in [`super::addr`].

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::time::sleep;

use super::addr::{clerk_addr, host_name, server_addr};
use super::context;
use super::failure::Failure;
use super::test_clerk::TestClerk;
use super::fleet::{DiskFaults, DiskStats, Fleet, Service};
use super::monitor::{Monitor, MonitorReport, Reached};
use super::network::{Budget, FaultConfig, NetStats, SimNetwork};
use super::rafts::RaftKind;
use super::trace::{Cmd, RunLog, TraceLine};
use super::traps::{self, Kit, Trap, Traps};
use crate::check::history::{kinds, Event, History, Recorder};
use crate::kv::{Bug, Clerk, ClerkConfig, KvOp, KvRequest, KvServer, ServerConfig, Tamper};
use crate::net::{FaultHook, Transport};
use crate::raft::persister::Damage;
use crate::raft::{self, ApplyMsg, Consensus, MakeArgs, MakeRaft, Persister};
use rand::Rng;

/// How a KV cluster is built.
#[derive(Clone)]
pub struct KvOptions {
    pub servers: usize,
    pub unreliable: bool,
    /// A deliberate server bug (to show the checks catch it).
    pub bug: Bug,
    pub make_raft: MakeRaft,
    pub clerk: ClerkConfig,
    /// Faults from the start, instead of those `unreliable` implies.
    pub faults: Option<FaultConfig>,
    /// A deviation on one server only (tests of the monitor), instead of
    /// what `bug` gives that server.
    pub tamper_one: Option<(usize, Arc<dyn Tamper>)>,
    /// The most messages the run may send (None: no cap).
    pub budget: Option<Budget>,
    /// How the servers' disks behave and fail.
    pub disk: DiskFaults,
    /// Clock drift: each server's clock runs at a rate drawn from
    /// [1/sqrt(d), sqrt(d)] (1: none), so no two differ by more than d.
    pub clock_drift: f64,
    /// Record the per-server trace (see [`super::trace`]).
    pub trace: bool,
    /// The longest an op may stay pending, in virtual time (None: no
    /// limit): past it the run fails as a liveness failure at once, rather
    /// than when the run's time limit runs out.
    pub op_deadline: Option<Duration>,
}

impl KvOptions {
    /// The same options with a Raft the harness knows by name.
    pub fn raft(mut self, kind: RaftKind) -> Self {
        self.make_raft = kind.make();
        self
    }
}

impl KvOptions {
    pub fn new(servers: usize, unreliable: bool) -> Self {
        KvOptions {
            servers,
            unreliable,
            bug: Bug::None,
            make_raft: raft::make(),
            clerk: ClerkConfig::default(),
            faults: None,
            tamper_one: None,
            budget: Some(Budget::default()),
            disk: DiskFaults::default(),
            clock_drift: 1.0,
            trace: false,
            op_deadline: None,
        }
    }

    /// Server i's deviation, if any.
    fn tamper(&self, i: usize) -> Option<Arc<dyn Tamper>> {
        match &self.tamper_one {
            Some((j, t)) if *j == i => Some(t.clone()),
            _ => self.bug.tamper(),
        }
    }
}

/// What runs on a server node: the KV server and its Raft.
#[derive(Clone)]
struct KvNode {
    kv: KvServer,
    raft: Arc<dyn Consensus>,
}

impl Service for KvNode {
    fn stop(&self) {
        // Stops the server and its Raft.
        self.kv.kill();
    }
}

#[derive(Default)]
struct State {
    clerks: usize,
    clerk_nodes: Vec<madsim::task::NodeId>,
    /// Each clerk's id, and the clerk (by index) that has it.
    clerk_ids: std::collections::BTreeMap<u64, usize>,
    partitions: u64,
    pauses: u64,
    /// Clerks that cannot reach every server.
    restricted_clerks: std::collections::BTreeSet<usize>,
    /// The run spec, for the history (opaque here).
    spec: Option<serde_json::Value>,
}

struct Shared {
    name: String,
    seed: u64,
    n: usize,
    fleet: Fleet<KvNode>,
    net: Arc<SimNetwork>,
    state: Mutex<State>,
    recorder: Recorder,
    monitor: Monitor,
    traps: Traps,
    /// Each server's clock rate.
    rates: Vec<f64>,
    disk: DiskFaults,
    log: RunLog,
    clerk_cfg: ClerkConfig,
    op_deadline: Option<Duration>,
    t0: Instant,
    begin: Mutex<Instant>,
}

/// The KV tester. Clones share the cluster.
#[derive(Clone)]
pub struct KvCluster(Arc<Shared>);

/// Summary figures of a run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunFigures {
    pub ops: usize,
    pub pending: usize,
    pub mean_ms_per_op: f64,
    pub max_ms_per_op: f64,
    pub virtual_ms: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub partitions: u64,
    pub pauses: u64,
    /// The fastest server clock's rate over the slowest's (1: no drift).
    pub drift: f64,
    pub net: NetStats,
    pub disk: DiskStats,
}

impl KvCluster {
    pub async fn new(servers: usize, unreliable: bool, test_name: &str) -> Self {
        Self::with_options(KvOptions::new(servers, unreliable), test_name).await
    }

    /// A cluster as `opts` says, its servers booted, for the test or run
    /// `test_name`.
    pub async fn with_options(opts: KvOptions, test_name: &str) -> Self {
        let seed = context::announce(test_name);
        let log = RunLog::new(opts.trace);
        let net = Self::new_network(&opts, &log);
        let n = opts.servers;
        let monitor = Monitor::new(n, Arc::new(show_command));
        monitor.set_log(log.clone());
        let kit = Kit { net: net.clone(), log: log.clone(), monitor: monitor.clone(), servers: n };
        let traps = traps::standard(&kit);
        let rates = clock_rates(n, opts.clock_drift);
        let fleet = Self::start_fleet(&opts, kit, &traps, &rates).await;
        if fleet.up().iter().any(|(_, node)| !node.raft.reports_events()) {
            monitor.start_polling();
        }
        // Op times and event times count from the same moment.
        let t0 = Instant::now();
        log.set_origin();
        KvCluster(Arc::new(Shared {
            name: test_name.to_string(),
            seed,
            n,
            fleet,
            net,
            state: Mutex::new(State::default()),
            recorder: Recorder::new(),
            monitor,
            traps,
            rates,
            disk: opts.disk,
            log,
            clerk_cfg: opts.clerk,
            op_deadline: opts.op_deadline,
            t0,
            begin: Mutex::new(Instant::now()),
        }))
    }

    /// The cluster's network, with the faults `opts` asks for from the
    /// start (said in `log`) and its message budget.
    fn new_network(opts: &KvOptions, log: &RunLog) -> Arc<SimNetwork> {
        let net = Arc::new(SimNetwork::new());
        net.set_tracer(log.clone());
        if let Some(f) = opts.faults.clone() {
            net.set_faults(f);
        } else if opts.unreliable {
            net.set_faults(FaultConfig::unreliable());
        }
        let faults = net.faults().describe();
        if !faults.is_empty() {
            log.event(Event::new(0, kinds::FAULTS).detail(faults));
        }
        net.set_budget(opts.budget);
        net
    }

    /// Boots the servers (see [`boot`]) in the world of `kit`, each Raft
    /// seen through `traps`, server i's clock at `rates[i]`.
    async fn start_fleet(opts: &KvOptions, kit: Kit, traps: &Traps, rates: &[f64]) -> Fleet<KvNode> {
        let n = opts.servers;
        let peers: Vec<SocketAddr> = (0..n).map(server_addr).collect();
        let ips: Vec<IpAddr> = peers.iter().map(|a| a.ip()).collect();
        let world = Arc::new(World {
            net: kit.net,
            monitor: kit.monitor,
            log: kit.log,
            traps: traps.clone(),
            peers,
            make: traps.wrap(opts.make_raft.clone()),
            tampers: (0..n).map(|i| opts.tamper(i)).collect(),
            rates: rates.to_vec(),
        });
        Fleet::start(&ips, opts.disk, move |i, boot_no, persister| boot(world.clone(), i, boot_no, persister)).await
    }

    pub fn n(&self) -> usize {
        self.0.n
    }
    pub fn seed(&self) -> u64 {
        self.0.seed
    }
    pub fn name(&self) -> &str {
        &self.0.name
    }
    pub fn network(&self) -> &SimNetwork {
        &self.0.net
    }
    pub fn all(&self) -> Vec<usize> {
        (0..self.0.n).collect()
    }
    fn server_ips(&self) -> Vec<IpAddr> {
        (0..self.0.n).map(|i| server_addr(i).ip()).collect()
    }

    pub fn begin(&self, description: &str) {
        context::say(format!("{description} ..."));
        *self.0.begin.lock().unwrap() = Instant::now();
    }

    /// Checks the 120 s virtual-time limit and prints what the part did.
    pub fn end(&self) {
        let t = self.0.begin.lock().unwrap().elapsed();
        assert!(self.0.t0.elapsed() <= Duration::from_secs(120), "test took longer than 120 seconds (virtual)");
        let f = self.figures();
        context::say(format!(
            "  ... Passed -- virtual {:.1}s, {} peers, {} ops so far ({} pending), {} kv rpcs",
            t.as_secs_f64(),
            self.0.n,
            f.ops,
            f.pending,
            f.net.requests_by_service.get(&crate::kv::KV_SERVICE).copied().unwrap_or(0)
        ));
    }

    // ----- clerks -----

    /// A clerk on a node of its own, able to reach the servers in `to`.
    pub async fn make_client(&self, to: &[usize]) -> TestClerk {
        let k = {
            let mut s = self.0.state.lock().unwrap();
            s.clerks += 1;
            s.clerks - 1
        };
        let addr = clerk_addr(k);
        let node = self.0.fleet.handle().create_node().name(format!("clerk-{k}")).ip(addr.ip()).build();
        self.0.state.lock().unwrap().clerk_nodes.push(node.id());
        let hook: Arc<dyn FaultHook> = self.0.net.clone();
        let transport = node
            .spawn(async move { Transport::bind(addr, hook).await })
            .await
            .expect("clerk node task")
            .unwrap_or_else(|e| panic!("clerk {k}: bind {addr}: {e}"));
        let servers: Vec<SocketAddr> = (0..self.0.n).map(server_addr).collect();
        let clerk = Clerk::new(transport, servers.clone(), self.0.clerk_cfg.clone());
        let other = self.0.state.lock().unwrap().clerk_ids.insert(clerk.id(), k);
        if let Some(other) = other {
            self.0.monitor.clerks_share_id(other, k, clerk.id());
        }
        self.0.log.clerk(clerk.id(), k as u64);
        let ck = TestClerk { clerk, index: k, recorder: self.0.recorder.clone(), t0: self.0.t0, servers, deadline: self.0.op_deadline };
        self.connect_client(&ck, to);
        ck
    }

    /// Lets clerk `ck` reach exactly the servers in `to`.
    pub fn connect_client(&self, ck: &TestClerk, to: &[usize]) {
        self.connect_client_by_index(ck.index, to);
    }

    /// As [`connect_client`](Self::connect_client), for a clerk moved into a task.
    pub fn connect_client_by_index(&self, clerk: usize, to: &[usize]) {
        let all = (0..self.0.n).all(|j| to.contains(&j));
        // A restriction is always news (the servers it reaches may differ
        // from the last one); lifting it only if one was on.
        let changed = {
            let mut s = self.0.state.lock().unwrap();
            if all {
                s.restricted_clerks.remove(&clerk)
            } else {
                s.restricted_clerks.insert(clerk);
                true
            }
        };
        if changed {
            let reach: Vec<String> = to.iter().map(|j| j.to_string()).collect();
            let what = if all { "every server".to_string() } else { format!("servers {{{}}} only", reach.join(",")) };
            self.0.log.event(Event::new(0, kinds::CLERK_LINKS).detail(format!("clerk {clerk} reaches {what}")));
        }
        let c = clerk_addr(clerk).ip();
        for j in 0..self.0.n {
            let s = server_addr(j).ip();
            if to.contains(&j) {
                self.0.net.uncut(c, s);
                self.0.net.uncut(s, c);
            } else {
                self.0.net.cut(c, s);
                self.0.net.cut(s, c);
            }
        }
    }

    // ----- servers and the network between them -----

    /// Partitions the servers into two groups (clerks are not affected).
    pub fn partition(&self, p1: &[usize], p2: &[usize]) {
        let ip = |v: &[usize]| v.iter().map(|i| server_addr(*i).ip()).collect::<Vec<_>>();
        self.0.net.partition(&self.server_ips(), &[ip(p1), ip(p2)]);
        self.0.state.lock().unwrap().partitions += 1;
        let mut e = Event::new(0, kinds::PARTITION);
        e.groups = vec![p1.iter().map(|x| *x as u64).collect(), p2.iter().map(|x| *x as u64).collect()];
        self.0.log.event(e);
    }

    /// Records a world event (e.g. the nemesis action about to act), at now.
    pub fn note(&self, kind: &str, detail: impl Into<String>) {
        self.0.log.event(Event::new(0, kind).detail(detail));
    }

    /// The spec that produced this run, for the history (opaque here).
    pub fn set_spec(&self, spec: serde_json::Value) {
        self.0.state.lock().unwrap().spec = Some(spec);
    }

    /// The run's log of world events and, when tracing, its trace.
    pub fn run_log(&self) -> &RunLog {
        &self.0.log
    }

    /// The per-server trace so far, if the cluster records one.
    pub fn trace_lines(&self) -> Option<Vec<TraceLine>> {
        self.0.log.trace_lines(&host_name, &self.0.recorder.snapshot())
    }

    fn faults_changed(&self) {
        self.0.log.event(Event::new(0, kinds::FAULTS).faults(self.0.net.faults().rates()));
    }

    /// Cuts the link from server `from` to server `to` only (one way).
    pub fn cut_one_way(&self, from: usize, to: usize) {
        self.0.net.cut(server_addr(from).ip(), server_addr(to).ip());
        self.0.state.lock().unwrap().partitions += 1;
        let mut e = Event::new(0, kinds::CUT);
        e.links = vec![[from as u64, to as u64]];
        self.0.log.event(e);
    }

    /// Reconnects every server to every other.
    pub fn connect_all(&self) {
        let ips = self.server_ips();
        self.0.net.partition(&ips, &[ips.clone()]);
        for ip in ips {
            self.0.net.connect(ip);
        }
        self.0.log.event(Event::new(0, kinds::HEAL));
    }

    /// Stops every node of the cluster and lets their tasks drop. Without
    /// this, tasks still waiting on a mailbox keep each other alive through
    /// their wakers after the simulation ends, and a campaign's memory grows
    /// with every run.
    pub async fn shutdown(&self) {
        self.0.fleet.crash_all();
        let clerks = std::mem::take(&mut self.0.state.lock().unwrap().clerk_nodes);
        for id in clerks {
            self.0.fleet.handle().kill(id);
        }
        // Killed tasks are dropped when the executor next polls them.
        sleep(Duration::from_millis(1)).await;
    }

    /// Server `i`'s disk (of its current or last boot).
    pub fn disk(&self, i: usize) -> Persister {
        self.0.fleet.persister(i)
    }

    /// Kills server `i` (its persisted state is kept).
    pub fn shutdown_server(&self, i: usize) {
        if !self.0.net.is_disconnected(server_addr(i).ip()) {
            self.0.log.event(Event::new(0, kinds::DISCONNECT).server(i as u64));
        }
        self.0.net.disconnect(server_addr(i).ip());
        let was_up = self.0.fleet.is_up(i);
        let report = self.0.fleet.crash(i);
        if was_up {
            let mut what = Vec::new();
            if let Some(r) = report.filter(|r| r.writes_lost > 0) {
                what.push(format!("{} unsynced writes lost", r.writes_lost));
            }
            if report.is_some_and(|r| r.torn) {
                what.push("the next write torn".to_string());
            }
            if report.is_some_and(|r| r.corrupted) {
                what.push("a synced record corrupted".to_string());
            }
            self.0.log.event(Event::new(0, kinds::CRASH).server(i as u64).detail(what.join(", ")));
        }
        if report.is_some_and(|r| r.writes_lost > 0) {
            self.0.monitor.note(Reached::UnsyncedWritesLost);
        }
    }

    /// Freezes server `i` for `ms` of virtual time (no ticks, no receives;
    /// messages to it wait), as a long GC pause or swapping would; it then
    /// runs on from where it stopped, its timers long overdue.
    pub async fn pause_server(&self, i: usize, ms: u64) {
        if !self.is_alive(i) {
            return;
        }
        let was_leader = self.leader() == Some(i);
        self.0.state.lock().unwrap().pauses += 1;
        self.0.log.event(Event::new(0, kinds::PAUSE).server(i as u64).duration_ms(ms));
        self.0.fleet.pause(i);
        sleep(Duration::from_millis(ms)).await;
        self.0.fleet.resume(i);
        self.0.log.event(Event::new(0, kinds::RESUME).server(i as u64));
        if was_leader && self.is_alive(i) {
            self.0.monitor.note(Reached::PausedLeaderResumed);
        }
    }

    /// Restarts server `i` from its persisted state. It stays disconnected
    /// until `connect_all` (as in 6.5840).
    pub async fn start_server(&self, i: usize) {
        if !self.0.net.is_disconnected(server_addr(i).ip()) {
            self.0.log.event(Event::new(0, kinds::DISCONNECT).server(i as u64));
        }
        self.0.net.disconnect(server_addr(i).ip());
        if self.0.fleet.is_up(i) {
            self.0.log.event(Event::new(0, kinds::CRASH).server(i as u64));
        }
        self.0.fleet.restart(i).await;
        let boot = self.0.fleet.boots(i);
        self.0.log.event(Event::new(0, kinds::RESTART).server(i as u64).detail(format!("boot {boot}")));
    }

    /// Cuts every listed directed server link (from, to) as one partition event.
    pub fn cut_links(&self, links: &[(usize, usize)]) {
        for (a, b) in links {
            self.0.net.cut(server_addr(*a).ip(), server_addr(*b).ip());
        }
        self.0.state.lock().unwrap().partitions += 1;
        let mut e = Event::new(0, kinds::CUT);
        e.links = links.iter().map(|(a, b)| [*a as u64, *b as u64]).collect();
        self.0.log.event(e);
    }

    /// Undoes the disconnection of a crashed server (after `start_server`).
    pub fn connect_server(&self, i: usize) {
        if self.0.net.is_disconnected(server_addr(i).ip()) {
            self.0.log.event(Event::new(0, kinds::CONNECT).server(i as u64));
        }
        self.0.net.connect(server_addr(i).ip());
    }

    /// Ends every fault: restarts crashed servers, reconnects all servers and
    /// clerks, turns loss, delay and duplication off, and lets messages
    /// held back go.
    pub async fn heal(&self) {
        for i in 0..self.0.n {
            // A server that refused to start (a corrupt disk) stays down.
            if !self.is_alive(i) && self.0.fleet.stopped(i).is_none() {
                self.start_server(i).await;
            }
        }
        if self.0.net.faults() != FaultConfig::default() {
            self.0.net.set_faults(FaultConfig::default());
            self.faults_changed();
        }
        self.0.net.heal();
        self.release_held();
        self.0.state.lock().unwrap().restricted_clerks.clear();
        self.0.log.event(Event::new(0, kinds::HEAL).detail("every link restored, clerks' too"));
    }

    /// Holds back `share` (0 to 1) of the messages from now on, until
    /// [`release_held`](Self::release_held) (see [`SimNetwork::hold`]).
    pub fn hold_messages(&self, share: f64) {
        self.0.net.hold(share);
        let detail = if share > 0.0 {
            format!("{:.0}% of messages held back", share * 100.0)
        } else {
            "no more messages held back (those held wait)".to_string()
        };
        self.0.log.event(Event::new(0, kinds::HOLD).detail(detail));
    }

    /// Holds back every message to server `i` (from servers and clerks),
    /// and no other, until [`release_held`](Self::release_held).
    pub fn hold_messages_to(&self, i: usize) {
        self.0.net.hold_to(server_addr(i).ip());
        self.0.log.event(Event::new(0, kinds::HOLD).server(i as u64).detail(format!("every message to server {i} held back")));
    }

    /// Whether server `i` is up and believes it leads.
    pub fn leads(&self, i: usize) -> bool {
        self.0.fleet.get(i).is_some_and(|node| node.raft.state().1)
    }

    /// The share of messages being held back (0 when none are).
    pub fn held_share(&self) -> f64 {
        self.0.net.held_share()
    }

    /// Lets every message held back go at once, and holds no more.
    pub fn release_held(&self) {
        let n = self.0.net.release();
        if n > 0 {
            self.0.log.event(Event::new(0, kinds::RELEASE).detail(format!("{n} held messages let go at once")));
        }
    }

    /// A hash of the whole run so far: every message event (see
    /// [`SimNetwork::trace_hash`]) and every recorded op with its times.
    pub fn trace_hash(&self) -> u64 {
        use super::network::mix_hash;
        let mut h = self.0.net.trace_hash();
        for op in self.0.recorder.snapshot() {
            // FNV-1a over the text: one multiply per byte (Get outputs can be long).
            let text = format!("{}|{}|{}|{}|{:?}", op.client, op.kind, op.key, op.value, op.output);
            let fnv = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |a, b| (a ^ b as u64).wrapping_mul(0x100_0000_01b3));
            h = mix_hash(h, fnv);
            h = mix_hash(h, op.call_ns);
            h = mix_hash(h, op.return_ns.map_or(u64::MAX, |r| r));
        }
        h
    }

    pub fn is_alive(&self, i: usize) -> bool {
        self.0.fleet.is_up(i)
    }

    /// Some server that believes it is the leader (highest term).
    pub fn leader(&self) -> Option<usize> {
        let mut best: Option<(u64, usize)> = None;
        for (i, node) in self.0.fleet.up() {
            let (term, is_leader) = node.raft.state();
            if is_leader && best.is_none_or(|(t, _)| term > t) {
                best = Some((term, i));
            }
        }
        best.map(|(_, i)| i)
    }

    /// Server i's term, if it is up (what its Raft's `state` says).
    pub fn term(&self, i: usize) -> Option<u64> {
        self.0.fleet.get(i).map(|node| node.raft.state().0)
    }

    /// Counts a situation a nemesis brought about (coverage).
    pub fn reached(&self, r: Reached) {
        self.0.monitor.note(r);
    }

    /// The longest a sync of the servers' disks may take.
    pub fn longest_sync(&self) -> Duration {
        Duration::from_micros(self.0.disk.sync_us.1.max(1000))
    }

    /// Entries server i has applied, if it is up.
    pub fn applied(&self, i: usize) -> Option<u64> {
        self.0.fleet.get(i).map(|node| node.kv.last_applied())
    }

    /// The cluster's trap of type `T` (see [`super::traps`]), to arm it
    /// and wait for it; None if no such trap is registered.
    pub fn trap<T: Trap>(&self) -> Option<Arc<T>> {
        self.0.traps.get::<T>()
    }

    /// Server i's disk stalls for `d`: no sync it starts meanwhile ends
    /// sooner.
    pub fn stall_disk(&self, i: usize, d: Duration) {
        self.0.fleet.persister(i).stall(d);
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.0.log.event(Event::new(0, kinds::DISK_STALL).server(i as u64).duration_ms(ms));
    }

    /// A majority containing the current leader (if any), and the rest.
    pub fn make_partition(&self) -> (Vec<usize>, Vec<usize>) {
        let l = self.leader().unwrap_or(0);
        let n = self.0.n;
        let mut p1 = vec![l];
        let mut p2 = Vec::new();
        for i in (0..n).filter(|i| *i != l) {
            if p1.len() < n / 2 + 1 {
                p1.push(i);
            } else {
                p2.push(i);
            }
        }
        (p1, p2)
    }

    pub fn set_unreliable(&self, unreliable: bool) {
        self.0.net.update_faults(|f| {
            let u = if unreliable { FaultConfig::unreliable() } else { FaultConfig::default() };
            (f.request_loss, f.reply_loss, f.max_delay) = (u.request_loss, u.reply_loss, u.max_delay);
        });
        self.faults_changed();
    }

    pub fn set_duplication(&self, rate: f64) {
        let before = self.0.net.faults();
        self.0.net.update_faults(|f| f.duplicate_rate = rate);
        if self.0.net.faults() != before {
            self.faults_changed();
        }
    }

    /// Total bytes of Raft state persisted by all servers.
    pub fn log_size(&self) -> usize {
        (0..self.0.n).map(|i| self.0.fleet.persister(i).raft_state_size()).max().unwrap_or(0)
    }

    // ----- results -----

    /// Completes once the monitor recorded a violation in a campaign run
    /// (see [`Monitor::stopped`]).
    pub async fn stopped(&self) {
        self.0.monitor.stopped().await
    }

    /// What the monitor saw so far.
    pub fn monitor_report(&self) -> MonitorReport {
        self.0.monitor.report()
    }

    /// The first safety violation, if any (the run has failed with it).
    pub fn violation(&self) -> Option<Failure> {
        self.0.monitor.violation()
    }

    /// Convergence, at the end of a run (every server up and connected, the
    /// faults off): within `bound` of virtual time every server applies up
    /// to the same index, and then every replica holds the same state (data
    /// and duplicate table). Fails the run with a violation otherwise.
    /// Returns the virtual ms it took.
    ///
    /// A Raft without a no-op at election commits an earlier term's entries
    /// only beneath one of its own, so when a new leader takes over after
    /// the last op, its followers could wait for ever: while the replicas
    /// differ, a clerk whose ops are not recorded submits a Get, and another
    /// [`NUDGE`] after each answer. Each Get runs to its answer: cut off
    /// at a deadline no longer than the clerk's two attempts at one server,
    /// it would try the same server (one stopped for a corrupt disk, say)
    /// for ever (swarm seed 30003407).
    pub async fn converge(&self, bound: Duration) -> u64 {
        let start = Instant::now();
        let mut nudger = self.make_client(&self.all()).await.clerk;
        let nudging = tokio::spawn(async move {
            loop {
                sleep(NUDGE).await;
                nudger.get("converge").await;
            }
        });
        // Stops the nudger on every way out.
        struct Stop(tokio::task::JoinHandle<()>);
        impl Drop for Stop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let _stop = Stop(nudging);
        loop {
            let applied: Vec<(usize, u64)> = self.0.fleet.up().iter().map(|(i, node)| (*i, node.kv.last_applied())).collect();
            let top = applied.iter().map(|(_, a)| *a).max().unwrap_or(0);
            // A server that refused to start (a corrupt disk) is not counted.
            let expected = (0..self.0.n).filter(|i| self.0.fleet.stopped(*i).is_none()).count();
            if applied.len() == expected && applied.iter().all(|(_, a)| *a == top) {
                break;
            }
            if start.elapsed() >= bound {
                let shown: Vec<String> = applied.iter().map(|(i, a)| format!("server {i} at {a}")).collect();
                self.0.monitor.diverged(format!(
                    "{} ms after the run ended (bound {} ms) the servers have not applied up to the same index: {} ({} of {} up, {} stopped for a corrupt disk)",
                    bound.as_millis(),
                    bound.as_millis(),
                    shown.join(", "),
                    applied.len(),
                    self.0.n,
                    self.0.n - expected
                ), Vec::new());
                // In a campaign run the violation is data: the run ends now.
                return start.elapsed().as_millis() as u64;
            }
            sleep(Duration::from_millis(10)).await;
        }
        let took = start.elapsed().as_millis() as u64;
        let states: Vec<(usize, _)> = self.0.fleet.up().iter().map(|(i, node)| (*i, node.kv.contents())).collect();
        // Every server stopped for a corrupt disk (a one-server run can do
        // that): nothing to compare.
        let Some((first, (index, (data0, sessions0)))) = states.first() else { return took };
        for (j, (_, (data, sessions))) in &states[1..] {
            if let Some(what) = first_difference(data0, data) {
                self.0.monitor.diverged(format!("at applied index {index}, servers {first} and {j} hold different data: {what}"), vec![*first as u64, *j as u64]);
                return took;
            }
            if sessions0 != sessions {
                let k = sessions0.iter().zip(sessions.iter()).position(|(a, b)| a != b).unwrap_or(sessions0.len().min(sessions.len()));
                let show = |v: &Vec<(u64, u64, Option<String>)>| {
                    v.get(k).map_or("nothing".to_string(), |(c, seq, r)| format!("clerk {c:x} at #{seq} (reply {r:?})"))
                };
                self.0.monitor.diverged(format!(
                    "at applied index {index}, servers {first} and {j} hold different duplicate tables: entry {k} is {} on one and {} on the other",
                    show(sessions0),
                    show(sessions)
                ), vec![*first as u64, *j as u64]);
                return took;
            }
        }
        took
    }

    /// The clerks' history, with the spec (if set) and the world events.
    pub fn history(&self) -> History {
        History {
            scenario: self.0.name.clone(),
            seed: self.0.seed,
            spec: self.0.state.lock().unwrap().spec.clone(),
            ops: self.0.recorder.snapshot(),
            events: self.0.log.events(),
        }
    }

    /// Counts and latencies of the recorded ops, and the faults that fired.
    pub fn figures(&self) -> RunFigures {
        self.figures_until(Instant::now())
    }

    /// The run's figures with `end` as its last moment (a run that stopped
    /// midway, read after its simulation ended: `end` is when it stopped).
    pub fn figures_until(&self, end: Instant) -> RunFigures {
        let ops = self.0.recorder.snapshot();
        let lat: Vec<f64> =
            ops.iter().filter_map(|o| o.return_ns.map(|r| (r - o.call_ns) as f64 / 1e6)).collect();
        let (crashes, restarts) = self.0.fleet.counts();
        let (partitions, pauses) = {
            let s = self.0.state.lock().unwrap();
            (s.partitions, s.pauses)
        };
        RunFigures {
            ops: lat.len(),
            pending: ops.len() - lat.len(),
            mean_ms_per_op: if lat.is_empty() { 0.0 } else { lat.iter().sum::<f64>() / lat.len() as f64 },
            max_ms_per_op: lat.iter().copied().fold(0.0, f64::max),
            virtual_ms: end.saturating_duration_since(self.0.t0).as_millis() as u64,
            crashes,
            restarts,
            partitions,
            pauses,
            drift: self.0.rates.iter().copied().fold(1.0f64, f64::max) / self.0.rates.iter().copied().fold(1.0f64, f64::min),
            net: self.0.net.stats(),
            disk: self.0.fleet.disk_stats(),
        }
    }
}

/// What every boot of a server is wired to: the simulated world, and the
/// make-up of the cluster's servers.
struct World {
    net: Arc<SimNetwork>,
    monitor: Monitor,
    log: RunLog,
    traps: Traps,
    /// The servers' addresses, by server id.
    peers: Vec<SocketAddr>,
    /// Makes a server's Raft, seen through the traps.
    make: MakeRaft,
    /// Each server's deviation, if any.
    tampers: Vec<Option<Arc<dyn Tamper>>>,
    /// Each server's clock rate.
    rates: Vec<f64>,
}

/// One boot of KV server `i` (its boot number `boot_no`) on its node. The
/// traps, then the monitor, see what its Raft reports; every entry it
/// applies goes through [`tap`] on the way to the KV server.
async fn boot(world: Arc<World>, i: usize, boot_no: u64, persister: Persister) -> Result<KvNode, String> {
    let (peers, monitor) = (world.peers.clone(), &world.monitor);
    let hook: Arc<dyn FaultHook> = world.net.clone();
    let transport = Transport::bind(peers[i], hook).await.unwrap_or_else(|e| panic!("server {i}: bind {}: {e}", peers[i]));
    let (apply_tx, tap_rx) = mpsc::unbounded_channel::<ApplyMsg>();
    let (tap_tx, apply_rx) = mpsc::unbounded_channel::<ApplyMsg>();
    let had_log = persister.log_len() > 0;
    match persister.damage() {
        Some(Damage::TornTail { .. }) => monitor.note(Reached::TornTailRecovered),
        Some(Damage::Corrupt { .. }) => monitor.note(Reached::CorruptRecordFound),
        None => {}
    }
    let events = {
        let (seen, disk, traps) = (monitor.raft_events(i, boot_no), persister.clone(), world.traps.clone());
        let events: raft::EventSink = Arc::new(move |e| {
            traps.event(i, &disk, &e);
            seen(e)
        });
        events
    };
    let disk = persister.clone();
    let clock_rate = world.rates[i];
    let raft = (world.make)(MakeArgs { transport: transport.clone(), peers, me: i, persister, apply_tx, events, clock_rate })?;
    monitor.boot(i, boot_no, raft.clone(), had_log);
    let kv_events = monitor.kv_events(i, boot_no);
    tokio::spawn(tap(world.clone(), i, boot_no, disk, tap_rx, tap_tx));
    let cfg = ServerConfig { tamper: world.tampers[i].clone(), events: Some(kv_events), ..Default::default() };
    let kv = KvServer::start(&transport, raft.clone(), apply_rx, cfg);
    Ok(KvNode { kv, raft })
}

/// Passes what server `i`'s Raft applies (from `from`) on to its KV server
/// (`to`): traced, checked by the monitor, and seen by the traps first.
async fn tap(
    world: Arc<World>,
    i: usize,
    boot_no: u64,
    disk: Persister,
    mut from: mpsc::UnboundedReceiver<ApplyMsg>,
    to: mpsc::UnboundedSender<ApplyMsg>,
) {
    let tracing = world.log.tracing();
    while let Some(m) = from.recv().await {
        // Traced first, so that an apply the monitor finds wrong is in
        // the trace.
        if tracing {
            // A request starts with its clerk id and number (see
            // `KvRequest`): read just those, without decoding the op.
            let (cmd, req) = if m.command.is_empty() {
                (Cmd::Noop, (0, 0))
            } else {
                match crate::net::decode::<(u64, u64)>(&m.command, "kv command") {
                    Ok(r) => (Cmd::Request, r),
                    Err(_) => (Cmd::Undecodable, (0, 0)),
                }
            };
            world.log.apply(i, m.index, m.term, cmd, req);
        }
        world.monitor.apply(i, boot_no, &m);
        world.traps.applied(i, &disk, &m);
        if to.send(m).is_err() {
            return;
        }
    }
}

/// Each server's clock rate: 1 without drift, else drawn (seeded) from
/// [1/sqrt(drift), sqrt(drift)].
fn clock_rates(n: usize, drift: f64) -> Vec<f64> {
    if drift <= 1.0 {
        return vec![1.0; n];
    }
    let half = drift.sqrt().ln();
    let mut rng = madsim::rand::thread_rng();
    (0..n).map(|_| rng.gen_range(-half..=half).exp()).collect()
}

/// While replicas differ at the end of a run, how long
/// [`KvCluster::converge`] waits after each answer before it submits
/// another op of the current term.
pub const NUDGE: Duration = Duration::from_millis(300);

/// A KV command as violation messages show it.
pub fn show_command(cmd: &[u8]) -> String {
    if cmd.is_empty() {
        return "(an empty entry: a Raft no-op)".to_string();
    }
    match crate::net::decode::<KvRequest>(cmd, "kv command") {
        Ok(r) => {
            let op = match &r.op {
                KvOp::Get { key } => format!("get({key:?})"),
                KvOp::Put { key, value } => format!("put({key:?}, {value:?})"),
                KvOp::Append { key, value } => format!("append({key:?}, {value:?})"),
            };
            format!("[clerk {:x} #{} {op}]", r.client, r.seq)
        }
        Err(_) => format!("<{} undecodable bytes>", cmd.len()),
    }
}

/// The first key at which two replicas' data differ, described.
fn first_difference(a: &[(String, String)], b: &[(String, String)]) -> Option<String> {
    let mut i = 0;
    loop {
        match (a.get(i), b.get(i)) {
            (None, None) => return None,
            (Some((k, v)), None) => return Some(format!("key {k:?} is {v:?} on the first and missing on the second")),
            (None, Some((k, v))) => return Some(format!("key {k:?} is missing on the first and {v:?} on the second")),
            (Some((ka, va)), Some((kb, vb))) => {
                if ka != kb {
                    let (k, first_has) = if ka < kb { (ka, true) } else { (kb, false) };
                    return Some(format!("key {k:?} exists only on the {}", if first_has { "first" } else { "second" }));
                }
                if va != vb {
                    return Some(format!("key {ka:?} is {va:?} on the first and {vb:?} on the second"));
                }
            }
        }
        i += 1;
    }
}
