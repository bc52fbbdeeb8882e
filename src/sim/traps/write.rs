//! The write trap: catches a server the moment it writes a chosen kind of
//! durable state (its hard state: term and vote; a log append; a log
//! truncation), through the disk the harness owns, so it works for any Raft
//! behind `MakeRaft`. From the write to its crash it hears nothing (it
//! still sends), so it comes back knowing what it knew when it wrote.
//! Caught *before* the write is durable, its disk
//! stalls in that step, so the write cannot become durable before the
//! crash that follows a few ms later: what the server sent without waiting
//! for the write is out, nothing that waited is. Caught *after* it, the
//! server goes on and is crashed once the write is durable and what waited
//! for it (a vote's reply, say) has arrived. Either way it comes back in
//! the same election or term (the `CrashAtWrite` and `SplitVote` nemeses).

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

/// How long after its write is durable (`After`), or after the write
/// (`Before`), a server caught is crashed: a send and a receive (1 ms each)
/// and the network's latency (1-10 ms).
const AFTER_GRACE: Duration = Duration::from_millis(12);

/// Catches a server at a write of a chosen kind (see the module's doc).
pub struct WriteTrap {
    /// The servers watched (empty: none), the kind and the moment.
    armed: Mutex<Option<(Vec<usize>, WriteKind, WriteMoment)>>,
    /// The server caught and its write's end.
    sprung: Mutex<Option<(usize, usize)>>,
    /// Held by the one [`WriteTrap::catch`] using the trap: overlapping
    /// ones take turns rather than disarm each other.
    busy: tokio::sync::Mutex<()>,
    net: Arc<SimNetwork>,
    log: RunLog,
}

impl WriteTrap {
    /// The trap, disarmed.
    pub fn new(kit: &Kit) -> Self {
        WriteTrap { armed: Mutex::new(None), sprung: Mutex::new(None), busy: tokio::sync::Mutex::new(()), net: kit.net.clone(), log: kit.log.clone() }
    }

    /// Waits at most `within` for one of `servers` to write `kind`; the
    /// server caught, [`AFTER_GRACE`] after its write is durable (`After`)
    /// or after the write, still volatile on a stalled disk (`Before`), to
    /// be crashed at once. `disk` gives a server's disk. One at a time: a
    /// second call waits for the first to finish, then waits its own
    /// `within`.
    pub async fn catch(
        &self,
        servers: Vec<usize>,
        kind: WriteKind,
        moment: WriteMoment,
        within: Duration,
        disk: impl Fn(usize) -> Persister,
    ) -> Option<usize> {
        let _turn = self.busy.lock().await;
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
            // Crash it once the write is durable.
            let d = disk(server);
            let waited = Instant::now();
            while d.durable_len() < end && waited.elapsed() < Duration::from_secs(1) {
                sleep(Duration::from_millis(1)).await;
            }
        }
        // What it sent meanwhile has left and arrived (a message in flight
        // from a crashed server is lost): `After`, what waited for the
        // write (a vote's reply, say); `Before`, only what did not wait.
        sleep(AFTER_GRACE).await;
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
        // From its write to its crash it hears nothing (what it sends still
        // goes): it comes back knowing what it knew when it wrote.
        self.net.deafen(server_addr(server).ip());
        if moment == WriteMoment::Before {
            // In the step of the write: it cannot be durable before the
            // crash that follows.
            disk.stall(BEFORE_STALL);
            let ms = BEFORE_STALL.as_millis() as u64;
            let detail = format!("caught the moment it wrote {}: not durable before its crash", kind.name());
            self.log.event(Event::new(0, kinds::DISK_STALL).server(server as u64).duration_ms(ms).detail(detail));
        }
        *self.sprung.lock().unwrap() = Some((server, end));
    }
}
