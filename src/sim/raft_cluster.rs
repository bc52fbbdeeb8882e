//! A cluster of Raft servers on madsim nodes, with the controls and checks of
//! 6.5840's Raft tester (config.go): crash, restart, disconnect, unreliable
//! networks, one leader per term, and agreement of every applied command.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::sleep;

use super::addr::server_addr;
use super::context;
use super::fleet::{DiskFaults, Fleet};
use super::monitor::{Monitor, MonitorReport};
use super::network::{FaultConfig, SimNetwork};
use crate::net::{FaultHook, Transport};
use crate::raft::{self, ApplyMsg, Consensus, MakeArgs, MakeRaft, Persister, RAFT_SERVICE};

/// A command made of an integer (what most 6.5840 tests submit).
pub fn cmd_int(x: u64) -> Vec<u8> {
    x.to_le_bytes().to_vec()
}

/// A command made of a string.
pub fn cmd_str(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// A random number from the simulation's seeded generator.
pub fn rand_u64() -> u64 {
    madsim::rand::thread_rng().gen()
}

/// A random alphanumeric string of `n` characters (seeded).
pub fn rand_string(n: usize) -> String {
    let mut rng = madsim::rand::thread_rng();
    (0..n).map(|_| rng.sample(rand::distributions::Alphanumeric) as char).collect()
}

/// A command as messages show it: an integer, a short string, or its size.
pub fn show(cmd: &[u8]) -> String {
    if cmd.len() == 8 {
        format!("{}", u64::from_le_bytes(cmd.try_into().unwrap()))
    } else if cmd.len() <= 32 {
        String::from_utf8_lossy(cmd).into_owned()
    } else {
        format!("<{} bytes>", cmd.len())
    }
}

struct State {
    /// Commands each server applied, by index (kept across reboots: a
    /// restarted server must re-apply the same ones).
    logs: Vec<BTreeMap<u64, Vec<u8>>>,
    connected: Vec<bool>,
    max_index: u64,
    /// Disconnections of a connected server (each one cuts the network).
    partitions: u64,
}

struct Shared {
    name: String,
    n: usize,
    seed: u64,
    fleet: Fleet<Arc<dyn Consensus>>,
    net: Arc<SimNetwork>,
    monitor: Monitor,
    state: Arc<Mutex<State>>,
    t0: Instant,
    begin: Mutex<(Instant, u64, u64, u64)>,
}

/// The Raft tester. Clones share the cluster.
#[derive(Clone)]
pub struct RaftCluster(Arc<Shared>);

impl RaftCluster {
    /// Starts `n` servers of this crate's Raft, connected, on a reliable or
    /// unreliable network. Prints the seed and how to reproduce a failure.
    pub async fn new(n: usize, reliable: bool, test_name: &str) -> Self {
        Self::with_raft(n, reliable, test_name, raft::make()).await
    }

    /// As [`new`](Self::new), with another Raft implementation.
    pub async fn with_raft(n: usize, reliable: bool, test_name: &str, make: MakeRaft) -> Self {
        let seed = context::announce(test_name);
        let net = Arc::new(SimNetwork::new());
        if !reliable {
            net.set_faults(FaultConfig::unreliable());
        }
        let state = Arc::new(Mutex::new(State {
            logs: vec![BTreeMap::new(); n],
            connected: vec![true; n],
            max_index: 0,
            partitions: 0,
        }));
        let peers: Vec<SocketAddr> = (0..n).map(server_addr).collect();
        let ips: Vec<IpAddr> = peers.iter().map(|a| a.ip()).collect();
        let monitor = Monitor::new(n, Arc::new(show));
        let (st, nt, mon) = (state.clone(), net.clone(), monitor.clone());
        let fleet = Fleet::start(&ips, DiskFaults::default(), move |i, boot_no, persister| {
            boot(i, boot_no, st.clone(), nt.clone(), peers.clone(), make.clone(), persister, mon.clone())
        })
        .await;
        if fleet.up().iter().any(|(_, raft)| !raft.reports_events()) {
            monitor.start_polling();
        }
        RaftCluster(Arc::new(Shared {
            name: test_name.to_string(),
            n,
            seed,
            fleet,
            net,
            monitor,
            state,
            t0: Instant::now(),
            begin: Mutex::new((Instant::now(), 0, 0, 0)),
        }))
    }

    pub fn n(&self) -> usize {
        self.0.n
    }
    pub fn seed(&self) -> u64 {
        self.0.seed
    }
    pub fn network(&self) -> &SimNetwork {
        &self.0.net
    }

    fn raft(&self, i: usize) -> Option<Arc<dyn Consensus>> {
        self.0.fleet.get(i)
    }

    /// Starts the timer and counters of one test (6.5840's cfg.begin).
    pub fn begin(&self, description: &str) {
        context::say(format!("{description} ..."));
        *self.0.begin.lock().unwrap() = (Instant::now(), self.rpc_total(), self.bytes_total(), self.max_index());
    }

    /// Checks the time limit and prints what the test did (6.5840's cfg.end).
    pub fn end(&self) {
        let (t, rpcs0, bytes0, cmds0) = *self.0.begin.lock().unwrap();
        let elapsed = t.elapsed();
        assert!(self.0.t0.elapsed() <= Duration::from_secs(120), "test took longer than 120 seconds (virtual)");
        let st = self.0.net.stats();
        let (crashes, restarts) = self.0.fleet.counts();
        let partitions = self.0.state.lock().unwrap().partitions;
        context::say(format!(
            "  ... Passed -- virtual {:.1}s, {} peers, {} rpcs, {} bytes, {} cmds",
            elapsed.as_secs_f64(),
            self.0.n,
            self.rpc_total() - rpcs0,
            self.bytes_total() - bytes0,
            self.max_index() - cmds0
        ));
        context::say(format!(
            "  faults: requests_dropped={} replies_dropped={} cut_dropped={} duplicated={} delayed={} long_delayed={} partitions={} crashes={} restarts={}",
            st.requests_dropped, st.replies_dropped, st.cut_dropped, st.duplicated, st.delayed, st.long_delayed, partitions, crashes, restarts
        ));
        let m = self.monitor_report();
        let reached: Vec<String> = m.coverage.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k}={n}")).collect();
        context::say(format!("  monitor: {} terms led; reached: {}", m.terms_led, reached.join(" ")));
    }

    // ----- controls -----

    /// Shuts server `i` down, keeping its persisted state.
    pub fn crash1(&self, i: usize) {
        self.disconnect(i);
        self.0.fleet.crash(i);
    }

    /// Restarts server `i` from its persisted state (crashing it first if it
    /// is up). It comes back disconnected, as in 6.5840; call `connect`.
    pub async fn start1(&self, i: usize) {
        self.disconnect(i);
        self.0.fleet.restart(i).await;
    }

    pub fn disconnect(&self, i: usize) {
        let mut s = self.0.state.lock().unwrap();
        if s.connected[i] {
            s.partitions += 1;
        }
        s.connected[i] = false;
        drop(s);
        self.0.net.disconnect(server_addr(i).ip());
    }

    pub fn connect(&self, i: usize) {
        self.0.state.lock().unwrap().connected[i] = true;
        self.0.net.connect(server_addr(i).ip());
    }

    pub fn is_connected(&self, i: usize) -> bool {
        self.0.state.lock().unwrap().connected[i]
    }

    pub fn is_alive(&self, i: usize) -> bool {
        self.0.fleet.is_up(i)
    }

    pub fn set_unreliable(&self, unreliable: bool) {
        self.0.net.update_faults(|f| {
            let u = FaultConfig::unreliable();
            if unreliable {
                (f.request_loss, f.reply_loss, f.max_delay) = (u.request_loss, u.reply_loss, u.max_delay);
            } else {
                (f.request_loss, f.reply_loss, f.max_delay) = (0.0, 0.0, Duration::ZERO);
            }
        });
    }

    pub fn set_long_reordering(&self, on: bool) {
        self.0.net.update_faults(|f| f.long_reordering = on);
    }

    /// Delivers this fraction of requests and replies twice.
    pub fn set_duplication(&self, rate: f64) {
        self.0.net.update_faults(|f| f.duplicate_rate = rate);
    }

    // ----- Raft, as the tests see it -----

    /// Server i's Start: Some((index, term)) if it is up and believes it leads.
    pub fn start(&self, i: usize, cmd: Vec<u8>) -> Option<(u64, u64)> {
        self.raft(i)?.start(cmd)
    }

    /// Server i's (term, is_leader); (0, false) if it is down.
    pub fn get_state(&self, i: usize) -> (u64, bool) {
        self.raft(i).map_or((0, false), |r| r.state())
    }

    // ----- counters -----

    /// Raft RPCs sent to server i.
    pub fn rpc_count(&self, i: usize) -> u64 {
        let st = self.0.net.stats();
        st.requests_by_dest.get(&(RAFT_SERVICE, server_addr(i).ip())).copied().unwrap_or(0)
    }

    pub fn rpc_total(&self) -> u64 {
        self.0.net.stats().requests_by_service.get(&RAFT_SERVICE).copied().unwrap_or(0)
    }

    pub fn bytes_total(&self) -> u64 {
        self.0.net.stats().bytes_by_service.get(&RAFT_SERVICE).copied().unwrap_or(0)
    }

    pub fn max_index(&self) -> u64 {
        self.0.state.lock().unwrap().max_index
    }

    // ----- checks (6.5840's) -----

    pub async fn check_one_leader(&self) -> usize {
        for _ in 0..10 {
            let ms = 450 + rand_u64() % 100;
            sleep(Duration::from_millis(ms)).await;
            let mut leaders: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
            for i in 0..self.0.n {
                if self.is_connected(i) {
                    if let (term, true) = self.get_state(i) {
                        leaders.entry(term).or_default().push(i);
                    }
                }
            }
            for (term, ls) in &leaders {
                assert!(ls.len() <= 1, "term {term} has {} (>1) leaders", ls.len());
            }
            if let Some((_, ls)) = leaders.iter().next_back() {
                return ls[0];
            }
        }
        panic!("expected one leader, got none");
    }

    pub fn check_terms(&self) -> u64 {
        let mut term = None;
        for i in 0..self.0.n {
            if self.is_connected(i) {
                let (t, _) = self.get_state(i);
                match term {
                    None => term = Some(t),
                    Some(x) => assert_eq!(x, t, "servers disagree on term"),
                }
            }
        }
        term.unwrap_or(0)
    }

    pub fn check_no_leader(&self) {
        for i in 0..self.0.n {
            if self.is_connected(i) {
                assert!(!self.get_state(i).1, "expected no leader among connected servers, but {i} claims to be leader");
            }
        }
    }

    /// How many servers think the entry at `index` is committed, and its command.
    pub fn n_committed(&self, index: u64) -> (usize, Option<Vec<u8>>) {
        let s = self.0.state.lock().unwrap();
        let mut count = 0;
        let mut cmd: Option<&Vec<u8>> = None;
        for (i, log) in s.logs.iter().enumerate() {
            if let Some(c) = log.get(&index) {
                if let Some(prev) = cmd {
                    assert_eq!(prev, c, "committed values do not match: index {index}, server {i}");
                }
                count += 1;
                cmd = Some(c);
            }
        }
        (count, cmd.cloned())
    }

    /// Waits for at least `n` servers to commit `index`; None if the term
    /// moved past `start_term` meanwhile.
    pub async fn wait(&self, index: u64, n: usize, start_term: Option<u64>) -> Option<Vec<u8>> {
        let mut to = Duration::from_millis(10);
        for _ in 0..30 {
            if self.n_committed(index).0 >= n {
                break;
            }
            sleep(to).await;
            if to < Duration::from_secs(1) {
                to *= 2;
            }
            if let Some(st) = start_term {
                for i in 0..self.0.n {
                    if self.get_state(i).0 > st {
                        return None;
                    }
                }
            }
        }
        let (nd, cmd) = self.n_committed(index);
        assert!(nd >= n, "only {nd} decided for index {index}; wanted {n}");
        cmd
    }

    /// Submits `cmd` until some leader commits it on `expected` servers
    /// (retrying with new leaders if `retry`). Returns its index.
    pub async fn one(&self, cmd: Vec<u8>, expected: usize, retry: bool) -> u64 {
        let t0 = Instant::now();
        let mut starts = 0;
        while t0.elapsed() < Duration::from_secs(10) {
            let mut index = None;
            for _ in 0..self.0.n {
                starts = (starts + 1) % self.0.n;
                if self.is_connected(starts) {
                    if let Some((i, _)) = self.start(starts, cmd.clone()) {
                        index = Some(i);
                        break;
                    }
                }
            }
            if let Some(index) = index {
                let t1 = Instant::now();
                while t1.elapsed() < Duration::from_secs(2) {
                    let (nd, c) = self.n_committed(index);
                    if nd > 0 && nd >= expected && c.as_deref() == Some(&cmd[..]) {
                        return index;
                    }
                    sleep(Duration::from_millis(20)).await;
                }
                assert!(retry, "one({}) failed to reach agreement", show(&cmd));
            } else {
                sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("one({}) failed to reach agreement", show(&cmd));
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// What the monitor saw so far (terms led, coverage).
    pub fn monitor_report(&self) -> MonitorReport {
        self.0.monitor.report()
    }
}

/// One boot of server `i` (boot number `boot_no`): runs on its node, from
/// its persisted state. The monitor sees what the Raft reports and checks
/// every apply against every server and boot.
#[allow(clippy::too_many_arguments)]
async fn boot(
    i: usize,
    boot_no: u64,
    state: Arc<Mutex<State>>,
    net: Arc<SimNetwork>,
    peers: Vec<SocketAddr>,
    make: MakeRaft,
    persister: Persister,
    monitor: Monitor,
) -> Result<Arc<dyn Consensus>, String> {
    let hook: Arc<dyn FaultHook> = net;
    let transport = Transport::bind(peers[i], hook).await.unwrap_or_else(|e| panic!("server {i}: bind {}: {e}", peers[i]));
    let (apply_tx, mut apply_rx) = mpsc::unbounded_channel::<ApplyMsg>();
    let had_log = persister.log_len() > 0;
    let events = monitor.raft_events(i, boot_no);
    let raft = make(MakeArgs { transport, peers, me: i, persister, apply_tx, events, clock_rate: 1.0 })?;
    monitor.boot(i, boot_no, raft.clone(), had_log);
    tokio::spawn(async move {
        while let Some(m) = apply_rx.recv().await {
            monitor.apply(i, boot_no, &m);
            let mut s = state.lock().unwrap();
            s.max_index = s.max_index.max(m.index);
            s.logs[i].insert(m.index, m.command);
        }
    });
    Ok(raft)
}
