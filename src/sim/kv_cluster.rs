//! A cluster of KV servers (each Raft + KV on one madsim node) and clerks
//! (each on a node of its own), with the controls of 6.5840's kvraft tester
//! (config.go), a recorded history of every clerk op, and the two checks every
//! KV scenario makes: linearizability and a ms/op bound in virtual time.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use madsim::runtime::{Handle, NodeHandle};
use tokio::sync::mpsc;
use tokio::time::sleep;

use super::checker::{check_history, Verdict};
use super::history::{History, OpKind, Recorder};
use super::network::{FaultConfig, NetStats, SimNetwork};
use super::raft_cluster::server_addr;
use super::report;
use crate::kv::{Bug, Clerk, ClerkConfig, KvServer, ServerConfig};
use crate::net::{FaultHook, Transport};
use crate::raft::{self, ApplyMsg, Consensus, MakeArgs, MakeRaft, Persister};

/// Address of the `k`-th clerk's node.
pub fn clerk_addr(k: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1 + (k / 250) as u8, 0, (k % 250) as u8 + 1)), 9000)
}

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
}

impl KvOptions {
    pub fn new(servers: usize, unreliable: bool) -> Self {
        KvOptions { servers, unreliable, bug: Bug::None, make_raft: raft::make(), clerk: ClerkConfig::default(), faults: None }
    }
}

#[derive(Default)]
struct ServerSlot {
    kv: Option<KvServer>,
    raft: Option<Arc<dyn Consensus>>,
    persister: Persister,
}

struct State {
    servers: Vec<ServerSlot>,
    clerks: usize,
    clerk_nodes: Vec<madsim::task::NodeId>,
    crashes: u64,
    restarts: u64,
    partitions: u64,
}

struct Shared {
    name: String,
    seed: u64,
    n: usize,
    handle: Handle,
    nodes: Vec<NodeHandle>,
    net: Arc<SimNetwork>,
    state: Arc<Mutex<State>>,
    recorder: Recorder,
    clerk_cfg: ClerkConfig,
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
    pub net: NetStats,
}

impl KvCluster {
    pub async fn new(servers: usize, unreliable: bool, test_name: &str) -> Self {
        Self::with_options(KvOptions::new(servers, unreliable), test_name).await
    }

    pub async fn with_options(opts: KvOptions, test_name: &str) -> Self {
        let seed = report::announce(test_name);
        let handle = Handle::current();
        let net = Arc::new(SimNetwork::new());
        if let Some(f) = opts.faults.clone() {
            net.set_faults(f);
        } else if opts.unreliable {
            net.set_faults(FaultConfig::unreliable());
        }
        let n = opts.servers;
        let state = Arc::new(Mutex::new(State {
            servers: (0..n).map(|_| ServerSlot::default()).collect(),
            clerks: 0,
            clerk_nodes: Vec::new(),
            crashes: 0,
            restarts: 0,
            partitions: 0,
        }));
        let peers: Vec<SocketAddr> = (0..n).map(server_addr).collect();
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let (state, net, peers, make, bug) = (state.clone(), net.clone(), peers.clone(), opts.make_raft.clone(), opts.bug);
            nodes.push(
                handle
                    .create_node()
                    .name(format!("server-{i}"))
                    .ip(peers[i].ip())
                    .init(move || boot(i, state.clone(), net.clone(), peers.clone(), make.clone(), bug))
                    .build(),
            );
        }
        let c = KvCluster(Arc::new(Shared {
            name: test_name.to_string(),
            seed,
            n,
            handle,
            nodes,
            net,
            state,
            recorder: Recorder::new(),
            clerk_cfg: opts.clerk,
            t0: Instant::now(),
            begin: Mutex::new(Instant::now()),
        }));
        for i in 0..n {
            c.wait_booted(i).await;
        }
        c
    }

    async fn wait_booted(&self, i: usize) {
        while self.0.state.lock().unwrap().servers[i].kv.is_none() {
            sleep(Duration::from_millis(1)).await;
        }
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
        report::say(format!("{description} ..."));
        *self.0.begin.lock().unwrap() = Instant::now();
    }

    /// Checks the 120 s virtual-time limit and prints what the part did.
    pub fn end(&self) {
        let t = self.0.begin.lock().unwrap().elapsed();
        assert!(self.0.t0.elapsed() <= Duration::from_secs(120), "test took longer than 120 seconds (virtual)");
        let f = self.figures();
        report::say(format!(
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
        let node = self.0.handle.create_node().name(format!("clerk-{k}")).ip(addr.ip()).build();
        self.0.state.lock().unwrap().clerk_nodes.push(node.id());
        let hook: Arc<dyn FaultHook> = self.0.net.clone();
        let transport = node
            .spawn(async move { Transport::bind(addr, hook).await })
            .await
            .expect("clerk node task")
            .unwrap_or_else(|e| panic!("clerk {k}: bind {addr}: {e}"));
        let servers = (0..self.0.n).map(server_addr).collect();
        let clerk = Clerk::new(transport, servers, self.0.clerk_cfg.clone());
        let ck = TestClerk { clerk, index: k, recorder: self.0.recorder.clone(), t0: self.0.t0 };
        self.connect_client(&ck, to);
        ck
    }

    /// Lets clerk `ck` reach exactly the servers in `to`.
    pub fn connect_client(&self, ck: &TestClerk, to: &[usize]) {
        self.connect_client_by_index(ck.index, to);
    }

    /// As [`connect_client`](Self::connect_client), for a clerk moved into a task.
    pub fn connect_client_by_index(&self, clerk: usize, to: &[usize]) {
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
    }

    /// Cuts the link from server `from` to server `to` only (one way).
    pub fn cut_one_way(&self, from: usize, to: usize) {
        self.0.net.cut(server_addr(from).ip(), server_addr(to).ip());
        self.0.state.lock().unwrap().partitions += 1;
    }

    /// Reconnects every server to every other.
    pub fn connect_all(&self) {
        let ips = self.server_ips();
        self.0.net.partition(&ips, &[ips.clone()]);
        for ip in ips {
            self.0.net.connect(ip);
        }
    }

    /// Stops every node of the cluster and lets their tasks drop. Without
    /// this, tasks still waiting on a mailbox keep each other alive through
    /// their wakers after the simulation ends, and a campaign's memory grows
    /// with every run.
    pub async fn shutdown(&self) {
        for i in 0..self.0.n {
            self.shutdown_server(i);
        }
        let clerks = std::mem::take(&mut self.0.state.lock().unwrap().clerk_nodes);
        for id in clerks {
            self.0.handle.kill(id);
        }
        // Killed tasks are dropped when the executor next polls them.
        sleep(Duration::from_millis(1)).await;
    }

    /// Kills server `i` (its persisted state is kept).
    pub fn shutdown_server(&self, i: usize) {
        self.0.net.disconnect(server_addr(i).ip());
        let kv = {
            let mut s = self.0.state.lock().unwrap();
            let slot = &mut s.servers[i];
            slot.persister = slot.persister.copy();
            slot.raft = None;
            let kv = slot.kv.take();
            if kv.is_some() {
                s.crashes += 1;
            }
            kv
        };
        if let Some(kv) = kv {
            kv.kill();
            self.0.handle.kill(self.0.nodes[i].id());
        }
    }

    /// Restarts server `i` from its persisted state. It stays disconnected
    /// until `connect_all` (as in 6.5840).
    pub async fn start_server(&self, i: usize) {
        self.shutdown_server(i);
        self.0.state.lock().unwrap().restarts += 1;
        self.0.handle.restart(self.0.nodes[i].id());
        self.wait_booted(i).await;
    }

    /// Cuts every listed directed server link (from, to) as one partition event.
    pub fn cut_links(&self, links: &[(usize, usize)]) {
        for (a, b) in links {
            self.0.net.cut(server_addr(*a).ip(), server_addr(*b).ip());
        }
        self.0.state.lock().unwrap().partitions += 1;
    }

    /// Undoes the disconnection of a crashed server (after `start_server`).
    pub fn connect_server(&self, i: usize) {
        self.0.net.connect(server_addr(i).ip());
    }

    /// Ends every fault: restarts crashed servers, reconnects all servers and
    /// clerks, and turns loss, delay and duplication off.
    pub async fn heal(&self) {
        for i in 0..self.0.n {
            if !self.is_alive(i) {
                self.start_server(i).await;
            }
        }
        self.0.net.set_faults(FaultConfig::default());
        self.0.net.heal();
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
        self.0.state.lock().unwrap().servers[i].kv.is_some()
    }

    /// Some server that believes it is the leader (highest term).
    pub fn leader(&self) -> Option<usize> {
        let s = self.0.state.lock().unwrap();
        let mut best: Option<(u64, usize)> = None;
        for (i, slot) in s.servers.iter().enumerate() {
            if let Some(r) = &slot.raft {
                let (term, is_leader) = r.state();
                if is_leader && best.is_none_or(|(t, _)| term > t) {
                    best = Some((term, i));
                }
            }
        }
        best.map(|(_, i)| i)
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
    }

    pub fn set_duplication(&self, rate: f64) {
        self.0.net.update_faults(|f| f.duplicate_rate = rate);
    }

    /// Total bytes of Raft state persisted by all servers.
    pub fn log_size(&self) -> usize {
        self.0.state.lock().unwrap().servers.iter().map(|s| s.persister.raft_state_size()).max().unwrap_or(0)
    }

    // ----- results -----

    pub fn history(&self) -> History {
        History { scenario: self.0.name.clone(), seed: self.0.seed, ops: self.0.recorder.snapshot() }
    }

    /// Counts and latencies of the recorded ops, and the faults that fired.
    pub fn figures(&self) -> RunFigures {
        let ops = self.0.recorder.snapshot();
        let lat: Vec<f64> =
            ops.iter().filter_map(|o| o.return_ns.map(|r| (r - o.call_ns) as f64 / 1e6)).collect();
        let s = self.0.state.lock().unwrap();
        RunFigures {
            ops: lat.len(),
            pending: ops.len() - lat.len(),
            mean_ms_per_op: if lat.is_empty() { 0.0 } else { lat.iter().sum::<f64>() / lat.len() as f64 },
            max_ms_per_op: lat.iter().copied().fold(0.0, f64::max),
            virtual_ms: self.0.t0.elapsed().as_millis() as u64,
            crashes: s.crashes,
            restarts: s.restarts,
            partitions: s.partitions,
            net: self.0.net.stats(),
        }
    }

    /// Checks the history; writes it (JSON, and an HTML timeline if it fails)
    /// where [`history_dir`] says. Does not panic.
    pub fn verify(&self) -> (Verdict, Option<PathBuf>) {
        let h = self.history();
        let verdict = check_history(&h.ops);
        let mut written = None;
        let dir = history_dir(!verdict.linearizable);
        if let Some(dir) = dir {
            let _ = std::fs::create_dir_all(&dir);
            let json = dir.join(format!("{}-{}.json", h.scenario, h.seed));
            match h.write_json(&json) {
                Ok(()) => written = Some(json.clone()),
                Err(e) => eprintln!("could not write {}: {e}", json.display()),
            }
            if !verdict.linearizable {
                let html = dir.join(format!("{}-{}.html", h.scenario, h.seed));
                match super::timeline::write_timeline_html(&h, &verdict, &html) {
                    // Campaigns report the history path themselves.
                    Ok(()) if report::is_quiet() => {}
                    Ok(()) => eprintln!("timeline: {}", html.display()),
                    Err(e) => eprintln!("could not write {}: {e}", html.display()),
                }
            }
        }
        (verdict, written)
    }

    /// The two checks of every KV scenario: the history is linearizable, and
    /// the mean virtual ms per completed op is within `bound_ms`.
    pub fn check(&self, bound_ms: f64) {
        let f = self.figures();
        report::say(format!(
            "  {} ops ({} pending); {:.2} ms/op mean (bound {bound_ms} ms/op), {:.0} ms max",
            f.ops, f.pending, f.mean_ms_per_op, f.max_ms_per_op
        ));
        report::say(format!(
            "  faults: requests_dropped={} replies_dropped={} cut_dropped={} duplicated={} delayed={} partitions={} crashes={} restarts={}",
            f.net.requests_dropped, f.net.replies_dropped, f.net.cut_dropped, f.net.duplicated, f.net.delayed, f.partitions, f.crashes, f.restarts
        ));
        let (verdict, path) = self.verify();
        if !verdict.linearizable {
            panic!(
                "history is not linearizable (key {:?}); history: {}; reproduce with: {}",
                verdict.failing_key,
                path.map(|p| p.display().to_string()).unwrap_or_default(),
                report::reproduce_command(&self.0.name, self.0.seed)
            );
        }
        report::say("  history is linearizable");
        assert!(
            f.mean_ms_per_op <= bound_ms,
            "operations too slow: {:.2} ms/op > {bound_ms} ms/op (virtual)",
            f.mean_ms_per_op
        );
    }
}

/// Where histories go: `KVRAFT_HISTORY_DIR` if set; for a failed check,
/// `target/kvraft-failures` otherwise.
pub fn history_dir(failed: bool) -> Option<PathBuf> {
    match std::env::var_os("KVRAFT_HISTORY_DIR") {
        Some(d) => Some(PathBuf::from(d)),
        None if failed => Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/kvraft-failures")),
        None => None,
    }
}

/// A clerk whose every op is recorded in the cluster's history.
pub struct TestClerk {
    clerk: Clerk,
    index: usize,
    recorder: Recorder,
    t0: Instant,
}

impl TestClerk {
    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub async fn get(&mut self, key: &str) -> String {
        let id = self.recorder.call(self.index as u64, OpKind::Get, key.to_string(), String::new(), self.now_ns());
        let v = self.clerk.get(key).await;
        self.recorder.ret(id, Some(v.clone()), self.now_ns());
        v
    }

    pub async fn put(&mut self, key: &str, value: &str) {
        let id = self.recorder.call(self.index as u64, OpKind::Put, key.to_string(), value.to_string(), self.now_ns());
        self.clerk.put(key, value).await;
        self.recorder.ret(id, None, self.now_ns());
    }

    pub async fn append(&mut self, key: &str, value: &str) {
        let id = self.recorder.call(self.index as u64, OpKind::Append, key.to_string(), value.to_string(), self.now_ns());
        self.clerk.append(key, value).await;
        self.recorder.ret(id, None, self.now_ns());
    }
}

/// One boot of KV server `i` on its node.
async fn boot(i: usize, state: Arc<Mutex<State>>, net: Arc<SimNetwork>, peers: Vec<SocketAddr>, make: MakeRaft, bug: Bug) {
    let hook: Arc<dyn FaultHook> = net;
    let transport = Transport::bind(peers[i], hook).await.unwrap_or_else(|e| panic!("server {i}: bind {}: {e}", peers[i]));
    let persister = state.lock().unwrap().servers[i].persister.clone();
    let (apply_tx, apply_rx) = mpsc::unbounded_channel::<ApplyMsg>();
    let raft = make(MakeArgs { transport: transport.clone(), peers, me: i, persister, apply_tx })
        .unwrap_or_else(|e| panic!("server {i} failed to boot: {e}"));
    let kv = KvServer::start(&transport, raft.clone(), apply_rx, ServerConfig { bug, ..Default::default() });
    let mut s = state.lock().unwrap();
    s.servers[i].raft = Some(raft);
    s.servers[i].kv = Some(kv);
    drop(s);
    // A madsim node whose init task returns is considered exited, and its
    // tasks stop: keep it running until it is killed.
    futures::future::pending::<()>().await;
}
