//! The servers of a simulated cluster: one madsim node each, the durable
//! state each keeps across crashes, and the one crash and restart path that
//! the Raft and KV clusters share.

use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::runtime::{Handle, NodeHandle};
use tokio::time::sleep;

use crate::raft::{Consensus, Persister};

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
}

struct State<S> {
    slots: Vec<Slot<S>>,
    crashes: u64,
    restarts: u64,
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
    /// returns the service. It runs again, from the persisted state, at every
    /// restart. Returns once every server is up.
    pub async fn start<F, Fut>(ips: &[IpAddr], boot: F) -> Fleet<S>
    where
        F: Fn(usize, u64, Persister) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = S> + 'static,
    {
        let handle = Handle::current();
        let state = Arc::new(Mutex::new(State {
            slots: ips.iter().map(|_| Slot { up: None, persister: Persister::new(), boots: 0, node_running: true }).collect(),
            crashes: 0,
            restarts: 0,
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
                            let service = boot(i, n, persister).await;
                            state.lock().unwrap().slots[i].up = Some(service);
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
                if slot.up.is_some() || !slot.node_running {
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

    /// Crashes server i if it is up (or still booting): its durable state
    /// is kept (the next boot gets a copy), its service is stopped and its
    /// node killed. Returns whether it was up.
    pub fn crash(&self, i: usize) -> bool {
        let (service, running) = {
            let mut s = self.state.lock().unwrap();
            let slot = &mut s.slots[i];
            slot.persister = slot.persister.copy();
            let up = slot.up.take();
            let running = std::mem::replace(&mut slot.node_running, false);
            if up.is_some() {
                s.crashes += 1;
            }
            (up, running)
        };
        if let Some(service) = &service {
            service.stop();
        }
        if running {
            self.handle.kill(self.nodes[i].id());
        }
        service.is_some()
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

    /// Crashes and restarts so far.
    pub fn counts(&self) -> (u64, u64) {
        let s = self.state.lock().unwrap();
        (s.crashes, s.restarts)
    }

    /// The simulation's handle (to create other nodes, e.g. clerks).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}
