//! The commit trap: catches a leader the moment it applies an entry beyond
//! a given index (one it has just committed), and cuts it off from
//! everyone in the same step, before it can tell anyone (the
//! `CrashLeaderOnCommit` nemesis; the rewrite trap arms it too).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Kit, Trap};
use crate::check::history::{kinds, Event};
use crate::raft::{ApplyMsg, Index, Persister};
use crate::sim::addr::server_addr;
use crate::sim::network::SimNetwork;
use crate::sim::trace::RunLog;

/// Catches a leader the moment it applies an entry beyond a given index
/// (one it has just committed): cuts it off from everyone in the same step,
/// before it can tell anyone (see [`CommitTrap::catch_leader`]).
pub struct CommitTrap {
    /// The server watched, and the index it must apply beyond.
    armed: Mutex<Option<(usize, Index)>>,
    sprung: tokio::sync::Notify,
    net: Arc<SimNetwork>,
    log: RunLog,
    /// The last index `start` gave out, by server.
    started: Mutex<Vec<Index>>,
}

impl CommitTrap {
    /// The trap, disarmed.
    pub fn new(kit: &Kit) -> Self {
        CommitTrap {
            armed: Mutex::new(None),
            sprung: tokio::sync::Notify::new(),
            net: kit.net.clone(),
            log: kit.log.clone(),
            started: Mutex::new(vec![0; kit.servers]),
        }
    }

    /// Waits up to `within` for server `leader` to apply an entry beyond
    /// every entry it had taken from a clerk so far (so one it appended
    /// after this call), and cuts it off from everyone in the same step,
    /// before it can pass the commit on. Whether it was caught.
    pub async fn catch_leader(&self, leader: usize, within: Duration) -> bool {
        let after = self.started.lock().unwrap()[leader];
        self.arm(leader, after);
        let caught = self.sprung(within).await;
        self.disarm();
        caught
    }

    /// Arms the trap for server `server` beyond index `after` (a caller
    /// then waits with [`CommitTrap::sprung`]).
    pub(super) fn arm(&self, server: usize, after: Index) {
        *self.armed.lock().unwrap() = Some((server, after));
    }

    /// Disarms the trap.
    pub(super) fn disarm(&self) {
        *self.armed.lock().unwrap() = None;
    }

    /// Waits up to `within` for the trap to spring; whether it did.
    pub(super) async fn sprung(&self, within: Duration) -> bool {
        tokio::time::timeout(within, self.sprung.notified()).await.is_ok()
    }
}

impl Trap for CommitTrap {
    fn started(&self, server: usize, _disk: &Persister, index: Index) {
        let mut started = self.started.lock().unwrap();
        started[server] = started[server].max(index);
    }

    fn applied(&self, server: usize, _disk: &Persister, m: &ApplyMsg) {
        let index = m.index;
        let mut armed = self.armed.lock().unwrap();
        if armed.is_some_and(|(s, after)| s == server && index > after) {
            *armed = None;
            self.net.disconnect(server_addr(server).ip());
            self.log.event(Event::new(0, kinds::DISCONNECT).server(server as u64).detail(format!("caught the moment it applied index {index}")));
            self.sprung.notify_one();
        }
    }
}
