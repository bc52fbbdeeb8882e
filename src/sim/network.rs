//! The simulated network's fault model: the [`FaultHook`] the transport
//! consults for every message, with link state (disconnections, partitions,
//! one-way cuts) and seeded loss, delay, long reordering and duplication, and
//! counters of every fault that actually fired.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::net::{Fate, FaultHook, FrameKind};

/// Probabilistic faults applied to every message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultConfig {
    /// Probability a request is lost.
    pub request_loss: f64,
    /// Probability a reply is lost.
    pub reply_loss: f64,
    /// Each request is held back a uniform 0..max_delay (reorders messages).
    pub max_delay: Duration,
    /// A reply is held back 200..2200 ms with probability 2/3 (labrpc's
    /// LongReordering).
    pub long_reordering: bool,
    /// Probability a message (request or reply) is delivered twice.
    pub duplicate_rate: f64,
}

impl FaultConfig {
    /// labrpc's unreliable mode: 10% of requests and of replies lost,
    /// requests delayed 0-27 ms.
    pub fn unreliable() -> Self {
        FaultConfig { request_loss: 0.1, reply_loss: 0.1, max_delay: Duration::from_millis(27), ..Default::default() }
    }
}

/// Counts of what the network did: traffic, and every fault that fired.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetStats {
    pub requests_sent: u64,
    pub replies_sent: u64,
    pub request_bytes: u64,
    pub requests_dropped: u64,
    pub replies_dropped: u64,
    /// Messages lost to a disconnection or partition (at send or on arrival).
    pub cut_dropped: u64,
    pub duplicated: u64,
    pub delayed: u64,
    pub long_delayed: u64,
    /// Requests and request bytes per transport service.
    pub requests_by_service: BTreeMap<u16, u64>,
    pub bytes_by_service: BTreeMap<u16, u64>,
    /// Requests per (service, destination host).
    pub requests_by_dest: BTreeMap<(u16, IpAddr), u64>,
}

#[derive(Default)]
struct State {
    faults: FaultConfig,
    /// Hosts cut off from everyone (6.5840's disconnect).
    disconnected: BTreeSet<IpAddr>,
    /// Directed links cut by partitions: (from, to).
    cut: BTreeSet<(IpAddr, IpAddr)>,
    stats: NetStats,
}

impl State {
    fn link_open(&self, from: IpAddr, to: IpAddr) -> bool {
        from == to
            || (!self.disconnected.contains(&from) && !self.disconnected.contains(&to) && !self.cut.contains(&(from, to)))
    }
}

/// The simulated network shared by every node of a run.
#[derive(Default)]
pub struct SimNetwork {
    state: Mutex<State>,
}

impl SimNetwork {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn faults(&self) -> FaultConfig {
        self.state.lock().unwrap().faults.clone()
    }

    pub fn set_faults(&self, f: FaultConfig) {
        self.state.lock().unwrap().faults = f;
    }

    pub fn update_faults(&self, f: impl FnOnce(&mut FaultConfig)) {
        f(&mut self.state.lock().unwrap().faults);
    }

    pub fn stats(&self) -> NetStats {
        self.state.lock().unwrap().stats.clone()
    }

    /// Cuts `host` off from everyone, both ways.
    pub fn disconnect(&self, host: IpAddr) {
        self.state.lock().unwrap().disconnected.insert(host);
    }

    /// Undoes [`disconnect`](Self::disconnect) (cut links stay cut).
    pub fn connect(&self, host: IpAddr) {
        self.state.lock().unwrap().disconnected.remove(&host);
    }

    pub fn is_disconnected(&self, host: IpAddr) -> bool {
        self.state.lock().unwrap().disconnected.contains(&host)
    }

    /// Cuts the one-way link from `from` to `to`.
    pub fn cut(&self, from: IpAddr, to: IpAddr) {
        self.state.lock().unwrap().cut.insert((from, to));
    }

    pub fn uncut(&self, from: IpAddr, to: IpAddr) {
        self.state.lock().unwrap().cut.remove(&(from, to));
    }

    /// Partitions `hosts` into `groups`: links between different groups are
    /// cut both ways, links within a group restored. Hosts in no group are
    /// cut from all listed hosts.
    pub fn partition(&self, hosts: &[IpAddr], groups: &[Vec<IpAddr>]) {
        let group_of = |h: &IpAddr| groups.iter().position(|g| g.contains(h));
        let mut s = self.state.lock().unwrap();
        for a in hosts {
            for b in hosts {
                if a == b {
                    continue;
                }
                let same = matches!((group_of(a), group_of(b)), (Some(x), Some(y)) if x == y);
                if same {
                    s.cut.remove(&(*a, *b));
                } else {
                    s.cut.insert((*a, *b));
                }
            }
        }
    }

    /// Restores every link and reconnects every host.
    pub fn heal(&self) {
        let mut s = self.state.lock().unwrap();
        s.cut.clear();
        s.disconnected.clear();
    }

    pub fn link_open(&self, from: IpAddr, to: IpAddr) -> bool {
        self.state.lock().unwrap().link_open(from, to)
    }
}

impl FaultHook for SimNetwork {
    fn on_send(&self, src: SocketAddr, dst: SocketAddr, kind: FrameKind, service: u16, bytes: usize) -> Fate {
        let mut rng = madsim::rand::thread_rng();
        let mut s = self.state.lock().unwrap();
        let st = &mut s.stats;
        match kind {
            FrameKind::Request => {
                st.requests_sent += 1;
                st.request_bytes += bytes as u64;
                *st.requests_by_service.entry(service).or_default() += 1;
                *st.bytes_by_service.entry(service).or_default() += bytes as u64;
                *st.requests_by_dest.entry((service, dst.ip())).or_default() += 1;
            }
            FrameKind::Reply => st.replies_sent += 1,
        }
        if !s.link_open(src.ip(), dst.ip()) {
            s.stats.cut_dropped += 1;
            return Fate::drop();
        }
        let f = s.faults.clone();
        let loss = if kind == FrameKind::Request { f.request_loss } else { f.reply_loss };
        if loss > 0.0 && rng.gen_bool(loss.min(1.0)) {
            match kind {
                FrameKind::Request => s.stats.requests_dropped += 1,
                FrameKind::Reply => s.stats.replies_dropped += 1,
            }
            return Fate::drop();
        }
        let mut delay = Duration::ZERO;
        if kind == FrameKind::Request && !f.max_delay.is_zero() {
            delay = rng.gen_range(Duration::ZERO..f.max_delay);
            s.stats.delayed += 1;
        }
        if kind == FrameKind::Reply && f.long_reordering && rng.gen_ratio(2, 3) {
            delay = Duration::from_millis(200 + rng.gen_range(0..2000));
            s.stats.long_delayed += 1;
        }
        let mut copies = vec![delay];
        if f.duplicate_rate > 0.0 && rng.gen_bool(f.duplicate_rate.min(1.0)) {
            // The copy trails the original by up to 30 ms, so it may also
            // arrive after later messages.
            copies.push(delay + Duration::from_micros(rng.gen_range(0..30_000)));
            s.stats.duplicated += 1;
        }
        Fate { copies }
    }

    fn on_arrive(&self, src: SocketAddr, dst: SocketAddr, _kind: FrameKind) -> bool {
        let mut s = self.state.lock().unwrap();
        if s.link_open(src.ip(), dst.ip()) {
            true
        } else {
            s.stats.cut_dropped += 1;
            false
        }
    }
}
