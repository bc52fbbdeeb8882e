//! The write trap: catches a server the moment it writes a chosen kind of
//! durable state (its hard state: term and vote; a log append; a log
//! truncation), through the disk the harness owns, so it works for any Raft
//! behind `MakeRaft`. Caught *before* the write, the server is cut off in
//! that step and its disk stalls, so the write cannot become durable before
//! the crash that follows: as if the crash came just before it. Caught
//! *after* it, the server goes on (its reply leaves once the write is
//! durable) and is crashed the moment the write is durable: it comes back
//! in the same election or term (the `CrashAtWrite` nemesis).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::{sleep, Instant};

use super::{Kit, Trap};
use crate::check::history::{kinds, Event};
use crate::raft::persister::WriteKind;
use crate::raft::Persister;
use crate::sim::addr::server_addr;
use crate::sim::network::SimNetwork;
use crate::sim::trace::RunLog;

/// Whether the crash comes just before the write is durable or just after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMoment {
    Before,
    After,
}

/// How long a disk caught before a write stalls: longer than the crash
/// takes to follow.
const BEFORE_STALL: Duration = Duration::from_millis(500);

/// Catches a server at a write of a chosen kind (see the module's doc).
pub struct WriteTrap {
    /// The servers watched (empty: none), the kind and the moment.
    armed: Mutex<Option<(Vec<usize>, WriteKind, WriteMoment)>>,
    /// The server caught and its write's end.
    sprung: Mutex<Option<(usize, usize)>>,
    net: Arc<SimNetwork>,
    log: RunLog,
}

impl WriteTrap {
    /// The trap, disarmed.
    pub fn new(kit: &Kit) -> Self {
        WriteTrap { armed: Mutex::new(None), sprung: Mutex::new(None), net: kit.net.clone(), log: kit.log.clone() }
    }

    /// Waits at most `within` for one of `servers` to write `kind`; the
    /// server caught, once its write is durable (`After`) or cut off with
    /// the write still volatile (`Before`). `disk` gives a server's disk.
    pub async fn catch(
        &self,
        servers: Vec<usize>,
        kind: WriteKind,
        moment: WriteMoment,
        within: Duration,
        disk: impl Fn(usize) -> Persister,
    ) -> Option<usize> {
        *self.sprung.lock().unwrap() = None;
        *self.armed.lock().unwrap() = Some((servers, kind, moment));
        let start = Instant::now();
        let caught = loop {
            if let Some(c) = self.sprung.lock().unwrap().take() {
                break Some(c);
            }
            if start.elapsed() >= within {
                break None;
            }
            sleep(Duration::from_millis(1)).await;
        };
        *self.armed.lock().unwrap() = None;
        let (server, end) = caught?;
        if moment == WriteMoment::After {
            // Crash it the moment the write is durable (its reply may leave).
            let d = disk(server);
            let waited = Instant::now();
            while d.durable_len() < end && waited.elapsed() < Duration::from_secs(1) {
                sleep(Duration::from_millis(1)).await;
            }
        }
        Some(server)
    }
}

impl Trap for WriteTrap {
    fn written(&self, server: usize, disk: &Persister, kind: WriteKind, end: usize) {
        let mut armed = self.armed.lock().unwrap();
        let Some((servers, want, moment)) = armed.as_ref() else { return };
        if *want != kind || !servers.contains(&server) {
            return;
        }
        let moment = *moment;
        *armed = None;
        drop(armed);
        if moment == WriteMoment::Before {
            // In the step of the write: nothing it does after it leaves,
            // and the write cannot be synced before the crash.
            disk.stall(BEFORE_STALL);
            self.net.disconnect(server_addr(server).ip());
            let detail = format!("caught the moment it wrote {} (before it was durable)", kind.name());
            self.log.event(Event::new(0, kinds::DISCONNECT).server(server as u64).detail(detail));
        }
        *self.sprung.lock().unwrap() = Some((server, end));
    }
}
