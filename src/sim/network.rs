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

use super::failure::Failure;
use super::trace::{MsgFate, RunLog};
use crate::check::history::NetFaults;
use crate::net::{Fate, FaultHook, FrameKind, Releaser};

/// Probabilistic faults applied to every message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultConfig {
    /// Probability a request is lost.
    pub request_loss: f64,
    /// Probability a reply is lost.
    pub reply_loss: f64,
    /// Each request is held back a uniform 0..max_delay (reorders messages).
    pub max_delay: Duration,
    /// Lower end of that delay: min_delay..max_delay (0 in labrpc).
    #[serde(default)]
    pub min_delay: Duration,
    /// A reply is held back 200..2200 ms with probability 2/3 (labrpc's
    /// LongReordering).
    pub long_reordering: bool,
    /// Probability a message (request or reply) is delivered twice.
    pub duplicate_rate: f64,
    /// Probability a message (request or reply) is replayed: a copy
    /// delivered again 1-6 s later, after whatever came since (TigerBeetle's
    /// packet simulator replays packets).
    #[serde(default)]
    pub replay_rate: f64,
}

impl FaultConfig {
    /// The faults in one short line, e.g. `loss 10/5% dup 30% delay 0-27ms
    /// long-reordering`; empty when there are none.
    pub fn describe(&self) -> String {
        self.rates().to_string()
    }

    /// The faults in whole percent and ms, as a faults event records them.
    pub fn rates(&self) -> NetFaults {
        let pct = |x: f64| (x * 100.0).round() as u64;
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        NetFaults {
            request_loss_pct: pct(self.request_loss),
            reply_loss_pct: pct(self.reply_loss),
            duplicate_pct: pct(self.duplicate_rate),
            delay_ms: (!self.max_delay.is_zero()).then(|| [ms(self.min_delay), ms(self.max_delay)]),
            long_reordering: self.long_reordering,
            replay_pct: pct(self.replay_rate),
        }
    }

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
    /// Messages held back and let go later (see [`SimNetwork::hold`]).
    pub held: u64,
    /// Messages of which a copy was replayed seconds later.
    pub replayed: u64,
    /// Requests and request bytes per transport service.
    pub requests_by_service: BTreeMap<u16, u64>,
    pub bytes_by_service: BTreeMap<u16, u64>,
    /// Requests per (service, destination host).
    pub requests_by_dest: BTreeMap<(u16, IpAddr), u64>,
    /// Frames (requests and replies) and their bytes, per service.
    pub frames_by_service: BTreeMap<u16, (u64, u64)>,
}

impl NetStats {
    /// Frames and bytes of every service but `except` (e.g. all of Raft's,
    /// whatever services a Raft uses, when `except` is the KV service).
    pub fn frames_except(&self, except: u16) -> (u64, u64) {
        self.frames_by_service
            .iter()
            .filter(|(s, _)| **s != except)
            .fold((0, 0), |(f, b), (_, (f2, b2))| (f + f2, b + b2))
    }

    /// Frames and bytes of `service` alone.
    pub fn frames_of(&self, service: u16) -> (u64, u64) {
        self.frames_by_service.get(&service).copied().unwrap_or((0, 0))
    }
}

/// A cap on the messages a run may send: `base` plus `per_s` for every
/// virtual second, and on their bytes: `bytes_base` plus `bytes_per_s`. A
/// run past either is stopped (a flooding Raft must fail the run, not hang
/// the campaign), deterministically, unlike a wall clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub base: u64,
    pub per_s: u64,
    pub bytes_base: u64,
    pub bytes_per_s: u64,
}

impl Default for Budget {
    /// About 50 times what the busiest swarm mix sends (messages), and 50
    /// times the most Raft bytes per second a correct run sent (430 KB/s:
    /// `stale_tails`, whose stale leaders pile up entries to repair).
    fn default() -> Self {
        Budget { base: 200_000, per_s: 50_000, bytes_base: 20_000_000, bytes_per_s: 20_000_000 }
    }
}

#[derive(Default)]
struct State {
    faults: FaultConfig,
    /// Hosts cut off from everyone (6.5840's disconnect).
    disconnected: BTreeSet<IpAddr>,
    /// Directed links cut by partitions: (from, to).
    cut: BTreeSet<(IpAddr, IpAddr)>,
    /// Hosts that receive nothing (they may still send) until reconnected.
    deaf: BTreeSet<IpAddr>,
    stats: NetStats,
    /// Running hash of every send and arrival with its fate: two runs of one
    /// seed must end with the same value.
    trace: u64,
    /// Test-only: give the next request an extra delay from an unseeded
    /// generator, to prove that the determinism check catches it.
    unseeded_delay: bool,
    budget: Option<Budget>,
    /// Bytes of every frame sent, for the budget.
    bytes_sent: u64,
    /// Where messages that did not simply arrive are recorded (tracing only).
    tracer: Option<RunLog>,
    /// While messages are being held: the share held, the one host whose
    /// messages are held (None: any), and what lets them go.
    holding: Option<(f64, Option<IpAddr>, Releaser)>,
    /// Messages held since holding began.
    held_now: u64,
}

/// A replayed copy comes at least this long after the original.
const REPLAY_AFTER: Duration = Duration::from_secs(1);

/// Mixed into the trace hash for a message held back.
const HELD_WORD: u64 = 0x4845_4c44; // "HELD"

/// Mixes `x` into the running hash `h` (splitmix64's finaliser: cheap, and
/// stable across Rust releases, unlike `DefaultHasher`).
pub fn mix_hash(h: u64, x: u64) -> u64 {
    let mut z = (h ^ x).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn addr_word(a: SocketAddr) -> u64 {
    let ip = match a.ip() {
        IpAddr::V4(v4) => u32::from(v4) as u64,
        IpAddr::V6(v6) => u128::from(v6) as u64,
    };
    (ip << 16) | a.port() as u64
}

/// Virtual time since the simulation started (0 outside one).
fn now_ns() -> u64 {
    madsim::time::TimeHandle::try_current().map_or(0, |t| t.elapsed().as_nanos() as u64)
}

impl State {
    fn link_open(&self, from: IpAddr, to: IpAddr) -> bool {
        from == to
            || (!self.disconnected.contains(&from)
                && !self.disconnected.contains(&to)
                && !self.deaf.contains(&to)
                && !self.cut.contains(&(from, to)))
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

    /// Undoes [`disconnect`](Self::disconnect) and [`deafen`](Self::deafen)
    /// (cut links stay cut).
    pub fn connect(&self, host: IpAddr) {
        let mut s = self.state.lock().unwrap();
        s.disconnected.remove(&host);
        s.deaf.remove(&host);
    }

    /// Nothing reaches `host` any more (messages in flight to it included)
    /// until it is reconnected; what it sends still goes.
    pub fn deafen(&self, host: IpAddr) {
        self.state.lock().unwrap().deaf.insert(host);
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
        s.deaf.clear();
    }

    pub fn link_open(&self, from: IpAddr, to: IpAddr) -> bool {
        self.state.lock().unwrap().link_open(from, to)
    }

    /// Caps the messages of the rest of the run (see [`Budget`]).
    pub fn set_budget(&self, budget: Option<Budget>) {
        self.state.lock().unwrap().budget = budget;
    }

    /// Records every message lost, cut, delayed or duplicated in `log`'s
    /// trace (from now on; only if the log traces).
    pub fn set_tracer(&self, log: RunLog) {
        self.state.lock().unwrap().tracer = log.tracing().then_some(log);
    }

    /// The running hash of every message event so far (see [`mix_hash`]).
    pub fn trace_hash(&self) -> u64 {
        self.state.lock().unwrap().trace
    }

    /// From now on, holds back a share `share` (0 to 1) of the messages that
    /// are neither cut nor lost: each is sent only once [`release`]
    /// (Self::release) lets it go. Holding again replaces the share.
    pub fn hold(&self, share: f64) {
        self.hold_for(share, None);
    }

    fn hold_for(&self, share: f64, to: Option<IpAddr>) {
        let mut s = self.state.lock().unwrap();
        match &mut s.holding {
            Some((sh, only, _)) => (*sh, *only) = (share, to),
            None => s.holding = Some((share, to, Releaser::default())),
        }
    }

    /// Holds back every message to `host`, and no other, from now on,
    /// until [`release`](Self::release).
    pub fn hold_to(&self, host: IpAddr) {
        self.hold_for(1.0, Some(host));
    }

    /// The share of messages being held back (0 when none are).
    pub fn held_share(&self) -> f64 {
        self.state.lock().unwrap().holding.as_ref().map_or(0.0, |(share, _, _)| *share)
    }

    /// Stops holding messages and lets every message held go at once (each
    /// still meets the links as they are when it arrives). Returns how many
    /// were held since [`hold`](Self::hold).
    pub fn release(&self) -> u64 {
        let mut s = self.state.lock().unwrap();
        let Some((_, _, releaser)) = s.holding.take() else { return 0 };
        releaser.release();
        std::mem::take(&mut s.held_now)
    }

    /// Test-only: the next request gets an extra delay drawn from `rand`'s
    /// OS-seeded generator, which madsim does not control.
    #[doc(hidden)]
    pub fn inject_unseeded_delay(&self) {
        self.state.lock().unwrap().unseeded_delay = true;
    }
}

impl FaultHook for SimNetwork {
    fn on_send(&self, src: SocketAddr, dst: SocketAddr, kind: FrameKind, service: u16, bytes: usize) -> Fate {
        let (mut fate, cut) = self.decide(src, dst, kind, service, bytes);
        let mut s = self.state.lock().unwrap();
        if s.unseeded_delay && kind == FrameKind::Request && !fate.copies.is_empty() {
            s.unseeded_delay = false;
            fate.copies[0] += Duration::from_nanos(rand::thread_rng().gen_range(1..1_000_000_000));
        }
        if let Some(log) = &s.tracer {
            let us = |d: &Duration| d.as_micros().min(u32::MAX as u128) as u32;
            let what = match fate.copies.as_slice() {
                _ if fate.held.is_some() => Some(MsgFate::Held),
                [d, d2] if *d2 >= *d + REPLAY_AFTER => Some(MsgFate::Replayed { delay_us: us(d), replay_us: us(d2) }),
                [] if cut => Some(MsgFate::Cut),
                [] => Some(MsgFate::Lost),
                [d] if d.is_zero() => None,
                [d] => Some(MsgFate::Delivered { delay_us: us(d), dup_us: None }),
                [d, d2, ..] => Some(MsgFate::Delivered { delay_us: us(d), dup_us: Some(us(d2)) }),
            };
            if let Some(f) = what {
                log.message(src.ip(), dst.ip(), kind, service, f);
            }
        }
        let mut h = s.trace;
        for w in [now_ns(), addr_word(src), addr_word(dst), kind as u64, service as u64, bytes as u64, fate.copies.len() as u64] {
            h = mix_hash(h, w);
        }
        for d in &fate.copies {
            h = mix_hash(h, d.as_nanos() as u64);
        }
        if fate.held.is_some() {
            h = mix_hash(h, HELD_WORD);
        }
        s.trace = h;
        tracing::trace!(at_ns = now_ns(), %src, %dst, ?kind, service, bytes, copies = ?fate.copies, "send");
        fate
    }

    fn on_arrive(&self, src: SocketAddr, dst: SocketAddr, kind: FrameKind, service: u16) -> bool {
        let mut s = self.state.lock().unwrap();
        let open = s.link_open(src.ip(), dst.ip());
        if !open {
            s.stats.cut_dropped += 1;
            if let Some(log) = &s.tracer {
                log.message(src.ip(), dst.ip(), kind, service, MsgFate::CutOnArrival);
            }
        }
        let mut h = s.trace;
        for w in [now_ns(), addr_word(src), addr_word(dst), kind as u64 | 0x100, open as u64] {
            h = mix_hash(h, w);
        }
        s.trace = h;
        open
    }
}

impl SimNetwork {
    /// The fate of one message: link state, then loss, delay and
    /// duplication; and whether a cut link dropped it.
    fn decide(&self, src: SocketAddr, dst: SocketAddr, kind: FrameKind, service: u16, bytes: usize) -> (Fate, bool) {
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
        let per = st.frames_by_service.entry(service).or_default();
        per.0 += 1;
        per.1 += bytes as u64;
        s.bytes_sent += bytes as u64;
        if let Some(b) = s.budget {
            let sent = s.stats.requests_sent + s.stats.replies_sent;
            let secs = now_ns() as f64 / 1e9;
            let over = if sent > b.base + (b.per_s as f64 * secs) as u64 {
                Some(format!("{sent} messages sent in {secs:.3} s of virtual time (budget {} + {} per s)", b.base, b.per_s))
            } else if s.bytes_sent > b.bytes_base + (b.bytes_per_s as f64 * secs) as u64 {
                Some(format!("{} bytes sent in {secs:.3} s of virtual time (budget {} + {} per s)", s.bytes_sent, b.bytes_base, b.bytes_per_s))
            } else {
                None
            };
            if let Some(over) = over {
                // Once: the panic ends the run; later sends are fallout.
                s.budget = None;
                drop(s);
                Failure::budget(format!("{over}; the run was stopped")).raise();
            }
        }
        if !s.link_open(src.ip(), dst.ip()) {
            s.stats.cut_dropped += 1;
            return (Fate::drop(), true);
        }
        let f = s.faults.clone();
        let loss = if kind == FrameKind::Request { f.request_loss } else { f.reply_loss };
        if loss > 0.0 && rng.gen_bool(loss.min(1.0)) {
            match kind {
                FrameKind::Request => s.stats.requests_dropped += 1,
                FrameKind::Reply => s.stats.replies_dropped += 1,
            }
            return (Fate::drop(), false);
        }
        let mut delay = Duration::ZERO;
        if kind == FrameKind::Request && !f.max_delay.is_zero() {
            delay = if f.min_delay < f.max_delay { rng.gen_range(f.min_delay..f.max_delay) } else { f.max_delay };
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
        if f.replay_rate > 0.0 && copies.len() == 1 && rng.gen_bool(f.replay_rate.min(1.0)) {
            copies.push(delay + REPLAY_AFTER + Duration::from_micros(rng.gen_range(0..5_000_000)));
            s.stats.replayed += 1;
        }
        if let Some((share, only, releaser)) = &s.holding {
            if only.is_none_or(|h| h == dst.ip()) && rng.gen_bool(share.clamp(0.0, 1.0)) {
                let held = Some(releaser.release_of());
                s.stats.held += 1;
                s.held_now += 1;
                return (Fate { copies: Vec::new(), held }, false);
            }
        }
        (Fate { copies, held: None }, false)
    }
}
