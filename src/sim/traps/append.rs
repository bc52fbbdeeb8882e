//! The append trap: catches the leader the moment it appends an entry, and
//! cuts it off from everyone before the entry reaches anyone (the
//! `CrashLeaderAfterAppend` nemesis: the entry survives on its disk alone).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::time::sleep;

use super::{Kit, Trap};
use crate::check::history::{kinds, Event};
use crate::raft::{Index, Persister};
use crate::sim::addr::server_addr;
use crate::sim::network::SimNetwork;
use crate::sim::trace::RunLog;

/// Catches the leader the moment it appends an entry: cuts it off before
/// the entry reaches anyone (see [`AppendTrap::catch_leader`]).
pub struct AppendTrap {
    armed: AtomicBool,
    sprung: Mutex<Option<usize>>,
    /// Held by the one [`AppendTrap::catch_leader`] using the trap:
    /// overlapping ones take turns rather than disarm each other.
    busy: tokio::sync::Mutex<()>,
    net: Arc<SimNetwork>,
    log: RunLog,
}

impl AppendTrap {
    /// The trap, disarmed.
    pub fn new(kit: &Kit) -> Self {
        AppendTrap {
            armed: AtomicBool::new(false),
            sprung: Mutex::new(None),
            busy: tokio::sync::Mutex::new(()),
            net: kit.net.clone(),
            log: kit.log.clone(),
        }
    }

    /// Waits up to `within` for the leader to append an entry, and cuts it
    /// off from everyone in the same step, before the entry reaches anyone.
    /// Returns that leader. One at a time: a second call waits for the
    /// first to finish, then waits its own `within`.
    pub async fn catch_leader(&self, within: Duration) -> Option<usize> {
        let _turn = self.busy.lock().await;
        *self.sprung.lock().unwrap() = None;
        self.armed.store(true, Ordering::SeqCst);
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(l) = self.sprung.lock().unwrap().take() {
                return Some(l);
            }
            sleep(Duration::from_millis(1)).await;
        }
        self.armed.store(false, Ordering::SeqCst);
        self.sprung.lock().unwrap().take()
    }
}

impl Trap for AppendTrap {
    /// If the trap is armed, it springs: cuts the server off, and says so.
    fn started(&self, server: usize, _disk: &Persister, _index: Index) {
        if self.armed.swap(false, Ordering::SeqCst) {
            // In the same step as the append: nothing has been sent yet.
            self.net.disconnect(server_addr(server).ip());
            let e = Event::new(0, kinds::DISCONNECT).server(server as u64).detail("caught the moment it appended");
            self.log.event(e);
            *self.sprung.lock().unwrap() = Some(server);
        }
    }
}
