//! The servers of a simulated cluster: one madsim node each, the durable
//! state each keeps across crashes, and the one crash and restart path that
//! the Raft and KV clusters share.

use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::runtime::{Handle, NodeHandle};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::time::sleep;

use crate::raft::persister::{CrashReport, DiskConfig};
use crate::raft::{Consensus, Persister};

/// How the servers' disks behave and fail.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiskFaults {
    /// Each sync takes a latency drawn from this range (µs).
    pub sync_us: (u64, u64),
    /// A crash loses the writes not yet synced.
    pub lose_unsynced: bool,
    /// Chance that a crash leaves a torn prefix of the first unsynced write.
    pub torn_rate: f64,
    /// Chance that a crash corrupts a byte of a synced record (a latent
    /// sector error); at most one server's disk per run.
    pub corrupt_rate: f64,
}

impl Default for DiskFaults {
    /// 1 ms syncs, unsynced writes lost at a crash, half the crashes tear
    /// the next write, no corruption.
    fn default() -> Self {
        DiskFaults { sync_us: (1000, 1000), lose_unsynced: true, torn_rate: 0.5, corrupt_rate: 0.0 }
    }
}

impl DiskFaults {
    pub fn disk(&self) -> DiskConfig {
        DiskConfig { sync_us: self.sync_us, lose_unsynced: self.lose_unsynced }
    }
}

/// What the disks went through.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiskStats {
    /// Unsynced writes lost at crashes, and crashes that lost any.
    pub writes_lost: u64,
    pub crashes_losing_writes: u64,
    /// Crashes that left a torn prefix of a write.
    pub torn_writes: u64,
    /// Synced records corrupted at crashes.
    pub corrupted: u64,
    /// Boots that found a corrupt record and refused to start.
    pub corrupt_found: u64,
}

/// What runs on a server node while it is up: stopping it makes it answer
/// and apply nothing more (the node is killed right after).
pub trait Service: Clone + Send + 'static {
    fn stop(&self);
}

impl Service for Arc<dyn Consensus> {
    fn stop(&self) {
        self.kill();
    }
}

struct Slot<S> {
    /// The running service; None while the server is down.
    up: Option<S>,
    /// Durable state. A crash hands the next boot a copy, so an old instance
    /// that somehow keeps writing writes where nobody reads.
    persister: Persister,
    /// Boots so far (the first is boot 1).
    boots: u64,
    /// The node runs (up, or still booting).
    node_running: bool,
    /// The server refused to boot, and why (it stays down).
    stopped: Option<String>,
}

struct State<S> {
    slots: Vec<Slot<S>>,
    crashes: u64,
    restarts: u64,
    faults: DiskFaults,
    disk: DiskStats,
}

/// Servers 0..n, each on a node of its own. Clones share the fleet.
pub struct Fleet<S> {
    handle: Handle,
    nodes: Vec<NodeHandle>,
    state: Arc<Mutex<State<S>>>,
}

impl<S> Clone for Fleet<S> {
    fn clone(&self) -> Self {
        Fleet { handle: self.handle.clone(), nodes: self.nodes.clone(), state: self.state.clone() }
    }
}

impl<S: Service> Fleet<S> {
    /// Creates a node per address and boots each: `boot(i, boot_number,
    /// persister)` runs on server i's node, starts what it needs there and
    /// returns the service, or why it refuses to start (then the server
    /// stays down). It runs again, from the persisted state, at every
    /// restart. Returns once every server is up (or stopped).
    pub async fn start<F, Fut>(ips: &[IpAddr], faults: DiskFaults, boot: F) -> Fleet<S>
    where
        F: Fn(usize, u64, Persister) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, String>> + 'static,
    {
        let handle = Handle::current();
        let state = Arc::new(Mutex::new(State {
            slots: ips
                .iter()
                .map(|_| Slot { up: None, persister: Persister::with_disk(faults.disk()), boots: 0, node_running: true, stopped: None })
                .collect(),
            crashes: 0,
            restarts: 0,
            faults,
            disk: DiskStats::default(),
        }));
        let boot = Arc::new(boot);
        let nodes = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                let (state, boot) = (state.clone(), boot.clone());
                handle
                    .create_node()
                    .name(format!("server-{i}"))
                    .ip(*ip)
                    .init(move || {
                        let (state, boot) = (state.clone(), boot.clone());
                        async move {
                            let (n, persister) = {
                                let mut s = state.lock().unwrap();
                                let slot = &mut s.slots[i];
                                slot.boots += 1;
                                (slot.boots, slot.persister.clone())
                            };
                            match boot(i, n, persister.clone()).await {
                                Ok(service) => state.lock().unwrap().slots[i].up = Some(service),
                                // The documented policy for a corrupt disk:
                                // the server refuses to start, and stays down.
                                Err(why) if persister.holds_corruption() => {
                                    tracing::warn!(server = i, boot = n, "refuses to start: {why}");
                                    let mut s = state.lock().unwrap();
                                    s.disk.corrupt_found += 1;
                                    s.slots[i].stopped = Some(why);
                                }
                                // On a sound disk, failing to start is the
                                // Raft's own bug (it cannot read what it
                                // wrote, say): the run fails here.
                                Err(why) => panic!("server {i} (boot {n}) failed to start on a sound disk: {why}"),
                            }
                            // A madsim node whose init task returns counts as
                            // exited and its tasks stop: run until killed.
                            futures::future::pending::<()>().await;
                        }
                    })
                    .build()
            })
            .collect();
        let fleet = Fleet { handle, nodes, state };
        for i in 0..ips.len() {
            fleet.wait_up(i).await;
        }
        fleet
    }

    /// Waits until server i is up, or crashed again meanwhile.
    async fn wait_up(&self, i: usize) {
        loop {
            {
                let s = self.state.lock().unwrap();
                let slot = &s.slots[i];
                if slot.up.is_some() || !slot.node_running || slot.stopped.is_some() {
                    return;
                }
            }
            sleep(Duration::from_millis(1)).await;
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Server i's service, if it is up.
    pub fn get(&self, i: usize) -> Option<S> {
        self.state.lock().unwrap().slots[i].up.clone()
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.state.lock().unwrap().slots[i].up.is_some()
    }

    /// The services of the servers that are up, with their ids.
    pub fn up(&self) -> Vec<(usize, S)> {
        let s = self.state.lock().unwrap();
        s.slots.iter().enumerate().filter_map(|(i, slot)| slot.up.clone().map(|x| (i, x))).collect()
    }

    /// Server i's durable state (what its next boot recovers).
    pub fn persister(&self, i: usize) -> Persister {
        self.state.lock().unwrap().slots[i].persister.clone()
    }

    /// Server i's current boot number (1 for the first boot).
    pub fn boots(&self, i: usize) -> u64 {
        self.state.lock().unwrap().slots[i].boots
    }

    /// Crashes server i if its node runs (up, booting, or stopped for a
    /// corrupt disk): its service is stopped and its node killed; its next
    /// boot finds what its disk holds after a crash (what was synced, maybe
    /// a torn write or a corrupt record: see [`DiskFaults`]). Returns what
    /// the crash did to the disk, or None if the node was already down.
    pub fn crash(&self, i: usize) -> Option<CrashReport> {
        let (service, report) = {
            let mut s = self.state.lock().unwrap();
            if !s.slots[i].node_running {
                // Already down: its disk stays as the crash left it.
                return None;
            }
            let mut rng = madsim::rand::thread_rng();
            let torn = rng.gen_bool(s.faults.torn_rate.clamp(0.0, 1.0));
            let corrupt = s.disk.corrupted == 0 && rng.gen_bool(s.faults.corrupt_rate.clamp(0.0, 1.0));
            let (next, report) = s.slots[i].persister.crash(torn, corrupt, &mut rng);
            s.disk.writes_lost += report.writes_lost;
            s.disk.crashes_losing_writes += (report.writes_lost > 0) as u64;
            s.disk.torn_writes += report.torn as u64;
            s.disk.corrupted += report.corrupted as u64;
            let slot = &mut s.slots[i];
            slot.persister = next;
            slot.stopped = None;
            slot.node_running = false;
            let up = slot.up.take();
            if up.is_some() {
                s.crashes += 1;
            }
            (up, report)
        };
        if let Some(service) = &service {
            service.stop();
        }
        self.handle.kill(self.nodes[i].id());
        Some(report)
    }

    /// Restarts server i from its durable state (crashing it first if it is
    /// up); returns once it is up.
    pub async fn restart(&self, i: usize) {
        self.crash(i);
        {
            let mut s = self.state.lock().unwrap();
            s.restarts += 1;
            s.slots[i].node_running = true;
        }
        self.handle.restart(self.nodes[i].id());
        self.wait_up(i).await;
    }

    /// Crashes every server (at the end of a run: see `KvCluster::shutdown`).
    pub fn crash_all(&self) {
        for i in 0..self.len() {
            self.crash(i);
        }
    }

    /// Why server i refused to start, if it did (it stays down).
    pub fn stopped(&self, i: usize) -> Option<String> {
        self.state.lock().unwrap().slots[i].stopped.clone()
    }

    /// What the disks went through so far.
    pub fn disk_stats(&self) -> DiskStats {
        self.state.lock().unwrap().disk.clone()
    }

    /// Crashes and restarts so far.
    pub fn counts(&self) -> (u64, u64) {
        let s = self.state.lock().unwrap();
        (s.crashes, s.restarts)
    }

    /// Freezes server i's node: none of its tasks runs (no ticks, no
    /// receives) until [`resume`](Self::resume); messages to it wait.
    pub fn pause(&self, i: usize) {
        self.handle.pause(self.nodes[i].id());
    }

    pub fn resume(&self, i: usize) {
        self.handle.resume(self.nodes[i].id());
    }

    /// The simulation's handle (to create other nodes, e.g. clerks).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}
