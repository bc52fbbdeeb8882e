//! Run specs: everything that determines one KV run (workload, sizes, fault
//! rates, nemesis schedule, server bug, bounds, and the seed), as plain data
//! with its JSON form, so a run can be saved, shrunk, replayed (`kvraft run
//! --spec FILE`) and kept as a regression. The catalogue and the swarm
//! generator make specs; the executor runs them.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::kv::Bug;
use crate::raft::persister::WriteKind;
use crate::sim::fleet::DiskFaults;
use crate::sim::network::FaultConfig;
use crate::sim::rafts::RaftKind;
pub use crate::sim::traps::WriteMoment;

/// Default liveness window: after every fault is healed, each clerk must
/// complete one new op within this much virtual time.
pub const LIVENESS_MS: u64 = 10_000;

/// Largest cluster a spec may ask for (server addresses use one octet, and
/// partition styles are only interesting on small clusters).
pub const MAX_SERVERS: usize = 15;
/// Largest number of clerks (each is a simulated node).
pub const MAX_CLIENTS: usize = 250;

/// One run, complete: replaying the same spec gives the same run, bit for bit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Name in reports and history file names: a catalogue scenario, "swarm",
    /// or anything.
    pub scenario: String,
    pub seed: u64,
    pub servers: usize,
    pub clients: usize,
    pub workload: Workload,
    #[serde(default)]
    pub faults: Faults,
    /// How the servers are partitioned. For a generic workload: none, halves
    /// or one_way (the partitioner draws as it goes). For swarm: used only to
    /// generate `nemesis` when the spec has no explicit schedule.
    #[serde(default)]
    pub partition: PartitionStyle,
    /// Server crashes per virtual second (swarm; each restarts after a drawn
    /// downtime). Used only to generate `nemesis` when it is absent.
    #[serde(default)]
    pub crash_rate: f64,
    /// Protocol-aware nemesis events per virtual second (swarm): crash or
    /// cut off the leader at protocol moments (see [`Action`]). Used only to
    /// generate `nemesis` when it is absent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub targeted_rate: f64,
    /// One family of protocol-aware events the schedule is dense in, the
    /// others left out (swarm: one seed in three). Used only to generate
    /// `nemesis` when it is absent.
    #[serde(default, skip_serializing_if = "Focus::is_none")]
    pub focus: Focus,
    /// The swarm nemesis's fault events; absent: generated from the seed, the
    /// partition style and the crash and targeted rates (see
    /// `nemesis::schedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nemesis: Option<Vec<NemesisEvent>>,
    /// A deliberate server bug.
    #[serde(default, with = "bug_name")]
    pub bug: Bug,
    /// The servers' disks: sync latency, loss of unsynced writes at a crash,
    /// torn writes, latent corruption (default: 1 ms syncs, unsynced writes
    /// lost, half the crashes tear the next write, no corruption).
    #[serde(default)]
    pub disk: DiskFaults,
    /// Clock drift: each server's clock runs at its own rate, no two more
    /// than this factor apart (1: none; at most 2.5, so that heartbeats
    /// still come well inside election timeouts).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub clock_drift: f64,
    /// The Raft the servers run, by its registered name: "ours" (the
    /// default), "raft-rs", or one a user's crate registered
    /// ([`crate::sim::rafts::register`]).
    #[serde(default, skip_serializing_if = "RaftKind::is_default")]
    pub raft: RaftKind,
    /// Mean virtual ms per completed op the run must stay under.
    pub bound_ms: f64,
    /// Liveness window in virtual ms.
    #[serde(default = "default_liveness_ms")]
    pub liveness_ms: u64,
    /// Test-only: one message gets a delay from an unseeded generator, so
    /// the run is not deterministic (proves `--check-determinism` works).
    #[doc(hidden)]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inject_nondeterminism: bool,
}

fn one() -> f64 {
    1.0
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn default_liveness_ms() -> u64 {
    LIVENESS_MS
}

/// What the clerks do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Workload {
    /// 6.5840's GenericTest: rounds in which each clerk appends to and reads
    /// its own key (or random keys, with puts), checking what it reads.
    Generic {
        /// Rounds of client work.
        iterations: usize,
        /// Length of each round in virtual ms.
        round_ms: u64,
        random_keys: bool,
        /// Crash and restart every server between rounds.
        restarts: bool,
        /// Clerks check their reads as they go (off for broken servers, so
        /// the history checker sees the whole run).
        inline_checks: bool,
    },
    /// Random Get/Put/Append on `keys` keys, each written value unique, for
    /// `run_ms` of virtual time or until each clerk did `ops_per_client` ops,
    /// while a nemesis applies the fault events.
    Swarm {
        keys: usize,
        run_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ops_per_client: Option<u64>,
    },
}

/// Probabilistic network faults for the whole run (until the liveness heal).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Probability a request is lost.
    #[serde(default)]
    pub request_loss: f64,
    /// Probability a reply is lost.
    #[serde(default)]
    pub reply_loss: f64,
    /// Probability a message is delivered twice.
    #[serde(default)]
    pub duplicate_rate: f64,
    /// Each request is held back a uniform [min, max) ms.
    #[serde(default)]
    pub delay_ms: [u64; 2],
    /// Two replies in three held back 200-2200 ms.
    #[serde(default)]
    pub long_reordering: bool,
    /// Probability a message (request or reply) is replayed: a copy
    /// delivered again 1-6 s later.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replay_rate: f64,
}


impl Faults {
    pub fn to_config(&self) -> FaultConfig {
        FaultConfig {
            request_loss: self.request_loss,
            reply_loss: self.reply_loss,
            min_delay: Duration::from_millis(self.delay_ms[0]),
            max_delay: Duration::from_millis(self.delay_ms[1]),
            long_reordering: self.long_reordering,
            duplicate_rate: self.duplicate_rate,
            replay_rate: self.replay_rate,
        }
    }

    pub fn is_none(&self) -> bool {
        *self == Faults::default()
    }
}

/// The family of protocol-aware events a swarm schedule focuses on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Focus {
    /// Every family at its base rate.
    #[default]
    None,
    /// Crashes at durable-state writes (`split_vote`, `crash_at_write`).
    Writes,
    /// Late messages and leaders that come back (`late_messages`,
    /// `leader_returns`).
    Late,
}

impl Focus {
    pub fn is_none(&self) -> bool {
        *self == Focus::None
    }

    pub fn name(&self) -> &'static str {
        match self {
            Focus::None => "none",
            Focus::Writes => "writes",
            Focus::Late => "late",
        }
    }
}

/// How servers are split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionStyle {
    #[default]
    None,
    /// Two random non-empty halves.
    Halves,
    /// The current leader alone on one side.
    Leader,
    /// A few random one-way links between servers cut.
    OneWay,
    /// Two halves that cannot see each other and one server that sees both.
    Bridge,
    /// Each event picks one of the four above.
    Mixed,
}

impl PartitionStyle {
    pub fn name(self) -> &'static str {
        match self {
            PartitionStyle::None => "none",
            PartitionStyle::Halves => "halves",
            PartitionStyle::Leader => "leader",
            PartitionStyle::OneWay => "one_way",
            PartitionStyle::Bridge => "bridge",
            PartitionStyle::Mixed => "mixed",
        }
    }
}

/// One nemesis fault event, at a virtual time after the workload starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisEvent {
    pub at_ms: u64,
    pub action: Action,
}

/// What a nemesis event does. Every partition-like action first heals the
/// links between servers, so it replaces the previous partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Servers in `a` and in `b` cannot reach each other. The two sides are
    /// non-empty, disjoint, and together every server (checked on load).
    Partition { a: Vec<usize>, b: Vec<usize> },
    /// Whoever leads at that moment is cut from the other servers.
    IsolateLeader,
    /// Directed links (from, to) cut.
    CutOneWay { links: Vec<(usize, usize)> },
    /// `a` and `b` cannot reach each other; `bridge` reaches both.
    Bridge { bridge: usize, a: Vec<usize>, b: Vec<usize> },
    /// Every link between servers restored.
    Heal,
    /// The server crashes (if up); it stays down until a restart or the end.
    Crash { server: usize },
    /// The server restarts from its persisted state (if down).
    Restart { server: usize },
    /// Whoever leads at that moment crashes, and restarts `down_ms` later.
    CrashLeader { down_ms: u64 },
    /// The next entry the leader appends is its last: the moment `start`
    /// returns, before the entry reaches any follower, the leader is cut off
    /// and crashed; it restarts `down_ms` later. (If no entry is appended
    /// within a second, nothing happens.)
    CrashLeaderAfterAppend { down_ms: u64 },
    /// Followers are cut off until the leader and the rest are a bare
    /// majority, and the leader's disk stalls for 300 ms; the moment the
    /// leader applies the next entry it commits (its own copy one of the
    /// few that make it committed, and perhaps not yet on its disk), it is
    /// cut off and crashed, and the followers
    /// that hold the entry are cut off in turn, so that the majority left
    /// (the others, and the leader once it restarts `down_ms` later) has
    /// the entry only if the leader's disk kept it. All heal a second
    /// after the restart. (If it commits nothing within a second, the
    /// followers are let back and nothing else happens.)
    CrashLeaderOnCommit { down_ms: u64 },
    /// A server's log is rewritten, and it leads on a slow disk: the leader
    /// is cut off the moment it appends an entry (which then ends its log
    /// alone); once the others have a leader of their own it rejoins at
    /// once, and the moment that leader's AppendEntries replaces the end of
    /// its log, that leader is cut off in turn, and so are servers until the
    /// rewritten one and the rest are a bare majority. If the rewritten
    /// server then leads, its disk stalls for 300 ms, and the moment it
    /// applies its first entry it is cut off and crashed, as in
    /// `crash_leader_on_commit`, and restarts `down_ms` later. (A server
    /// that counts a rewritten entry, or the next, as durable too early
    /// loses a committed entry here.) If a step does not come within a few
    /// seconds, all heal and nothing else happens.
    CrashRewrittenOnCommit { down_ms: u64 },
    /// The leader and other servers, a minority in all, crash together and
    /// restart `down_ms` later (repeated quickly: lab 3C's Figure 8).
    CrashMinorityWithLeader { down_ms: u64 },
    /// The server furthest behind (fewest entries applied, if any is behind)
    /// restarts at once, in the middle of catching up.
    RestartLagging,
    /// The leader and other servers, a minority in all, are cut off from the
    /// rest: a majority elects a new leader while the old one goes stale.
    LeaderMinority,
    /// The server freezes for `ms` (no ticks, no receives, as in a long GC
    /// pause), then runs on.
    Pause { server: usize, ms: u64 },
    /// Whoever leads at that moment freezes for `ms`, then wakes up stale.
    PauseLeader { ms: u64 },
    /// A server of `target` is crashed the moment it writes `write` to its
    /// disk (`hard_state`: its term and vote; `append`: log entries;
    /// `truncate`: its log cut short): just `before` the write is durable
    /// (its disk stalled in that step, so the write is lost, and crashed a
    /// few ms later, so what it sent without waiting for the write is out)
    /// or just `after` (once it is durable and what it sent on the strength
    /// of it has arrived); it restarts `down_ms` later, inside the same
    /// election or term. (A Raft that acts on state it has not made durable,
    /// or forgets some of it at a restart, votes twice or loses an entry
    /// here.) If none writes within 3 s, nothing happens.
    CrashAtWrite { write: WriteKind, moment: WriteMoment, target: WriteTarget, down_ms: u64 },
    /// An election split in two around one voter: the leader crashes and
    /// is back 50 ms later (before anyone's election timeout); then the
    /// servers are split into two sides that hear each other only through one
    /// server, the hub (drawn among those with the shortest log on disk,
    /// so that either side's candidate may get its vote), so each side's
    /// first candidate
    /// campaigns in the same term and both ask the hub. The hub is crashed
    /// at its first write of its hard state (a vote, or its own candidacy),
    /// just `before` or `after` that write is durable, and is back
    /// `down_ms` later, while the other side's candidate may still ask; all
    /// heal 1.5 s after the split. (A Raft that forgets its vote or term at
    /// a restart, or grants a vote before it is durable, votes twice in one
    /// term here: two leaders of a term.)
    SplitVote { moment: WriteMoment, down_ms: u64 },
    /// Messages held past an election: `hold_pct`% of the messages
    /// (requests and replies of every service, each way) are held back
    /// from now on; 200 ms later the leader is cut off (and a quarter as
    /// many held from then, so the election gets through); once another
    /// server leads and the old leader has heard of it, that leader is cut
    /// off in turn (nothing more held), and the moment the election after
    /// it begins, the held messages are let go at once: requests and
    /// replies of two terms arrive among that election's candidates (a
    /// reply while its call may still wait for it); all heal once a leader
    /// is up, or 4 s after the start at most. With `restart`, a server
    /// other than the deposed one crashes as the second election begins
    /// and is back 20 ms later, in time for the late messages.
    LateMessages {
        hold_pct: u64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        restart: bool,
    },
    /// A leader that comes back: the leader is cut off the moment it
    /// appends an entry (which then ends its log alone), with `hold_pct`%
    /// of the messages held back from the start (armed 200 ms after it when
    /// any are held; a quarter as many from the cut on); once another server leads,
    /// it rejoins (that leader's entries overwrite its own), and whoever
    /// else leads is cut off in turn (healed once a new leader is up) until
    /// the first server leads again, for at most 5 s; then all heal and the
    /// held messages, from its first term on, are let go at once.
    LeaderReturns { hold_pct: u64 },
    /// Votes let go a term late: the leader is cut off; the first server to
    /// campaign hears nothing from then on (every message to it held back),
    /// so the others grant it their votes and it never learns of them;
    /// once it campaigns again, in the next term, its own messages are cut
    /// off, the old leader rejoins, and the votes it was granted in the
    /// earlier term are let go, while the others elect one of them in its
    /// term; all heal once another server leads, or 3 s after each wait
    /// at most. (A candidate that counts a vote granted in an earlier term
    /// leads that term too: two leaders of a term.)
    StaleVotes,
}

/// Whom a [`Action::CrashAtWrite`] watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteTarget {
    /// Every server up but the leader: voters and candidates.
    Voter,
    /// Whoever leads when it fires.
    Leader,
    /// Every server up.
    Any,
}

impl Action {
    /// The servers the action names.
    pub fn servers(&self) -> Vec<usize> {
        match self {
            Action::Partition { a, b } => a.iter().chain(b).copied().collect(),
            Action::IsolateLeader
            | Action::Heal
            | Action::CrashLeader { .. }
            | Action::CrashLeaderAfterAppend { .. }
            | Action::CrashLeaderOnCommit { .. }
            | Action::CrashRewrittenOnCommit { .. }
            | Action::CrashMinorityWithLeader { .. }
            | Action::RestartLagging
            | Action::LeaderMinority
            | Action::PauseLeader { .. }
            | Action::CrashAtWrite { .. }
            | Action::SplitVote { .. }
            | Action::LateMessages { .. }
            | Action::LeaderReturns { .. }
            | Action::StaleVotes => Vec::new(),
            Action::CutOneWay { links } => links.iter().flat_map(|(x, y)| [*x, *y]).collect(),
            Action::Bridge { bridge, a, b } => std::iter::once(*bridge).chain(a.iter().copied()).chain(b.iter().copied()).collect(),
            Action::Crash { server } | Action::Restart { server } | Action::Pause { server, .. } => vec![*server],
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Action::Partition { .. } => "partition",
            Action::IsolateLeader => "isolate_leader",
            Action::CutOneWay { .. } => "cut_one_way",
            Action::Bridge { .. } => "bridge",
            Action::Heal => "heal",
            Action::Crash { .. } => "crash",
            Action::Restart { .. } => "restart",
            Action::CrashLeader { .. } => "crash_leader",
            Action::CrashLeaderAfterAppend { .. } => "crash_leader_after_append",
            Action::CrashLeaderOnCommit { .. } => "crash_leader_on_commit",
            Action::CrashRewrittenOnCommit { .. } => "crash_rewritten_on_commit",
            Action::CrashMinorityWithLeader { .. } => "crash_minority_with_leader",
            Action::RestartLagging => "restart_lagging",
            Action::LeaderMinority => "leader_minority",
            Action::Pause { .. } => "pause",
            Action::PauseLeader { .. } => "pause_leader",
            Action::CrashAtWrite { .. } => "crash_at_write",
            Action::SplitVote { .. } => "split_vote",
            Action::LateMessages { .. } => "late_messages",
            Action::LeaderReturns { .. } => "leader_returns",
            Action::StaleVotes => "stale_votes",
        }
    }

    /// Whether it crashes a server (a restart of a running server crashes
    /// it first).
    pub fn crashes(&self) -> bool {
        matches!(
            self,
            Action::Crash { .. }
                | Action::CrashLeader { .. }
                | Action::CrashLeaderAfterAppend { .. }
                | Action::CrashLeaderOnCommit { .. }
                | Action::CrashRewrittenOnCommit { .. }
                | Action::CrashMinorityWithLeader { .. }
                | Action::RestartLagging
                | Action::CrashAtWrite { .. }
                | Action::SplitVote { .. }
        )
    }

    /// How long the servers it crashes or freezes are out, for the
    /// actions that say.
    pub fn down_ms(&self) -> Option<u64> {
        match self {
            Action::CrashLeader { down_ms }
            | Action::CrashLeaderAfterAppend { down_ms }
            | Action::CrashLeaderOnCommit { down_ms }
            | Action::CrashRewrittenOnCommit { down_ms }
            | Action::CrashMinorityWithLeader { down_ms }
            | Action::CrashAtWrite { down_ms, .. }
            | Action::SplitVote { down_ms, .. } => Some(*down_ms),
            Action::Pause { ms, .. } | Action::PauseLeader { ms } => Some(*ms),
            _ => None,
        }
    }

    /// Whether the action targets a protocol role (the leader, a lagging
    /// server) rather than servers named in advance.
    pub fn is_targeted(&self) -> bool {
        matches!(
            self,
            Action::IsolateLeader
                | Action::CrashLeader { .. }
                | Action::CrashLeaderAfterAppend { .. }
                | Action::CrashLeaderOnCommit { .. }
                | Action::CrashRewrittenOnCommit { .. }
                | Action::CrashMinorityWithLeader { .. }
                | Action::RestartLagging
                | Action::LeaderMinority
                | Action::PauseLeader { .. }
                | Action::CrashAtWrite { .. }
                | Action::SplitVote { .. }
                | Action::LateMessages { .. }
                | Action::LeaderReturns { .. }
                | Action::StaleVotes
        )
    }
}

/// `Bug` as kebab-case names in spec files (as on the command line).
mod bug_name {
    use super::Bug;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &Bug, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(super::bug_to_str(*b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bug, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_bug(&s).map_err(serde::de::Error::custom)
    }
}

pub fn bug_to_str(b: Bug) -> &'static str {
    match b {
        Bug::None => "none",
        Bug::LocalGet => "local-get",
        Bug::NoDedup => "no-dedup",
    }
}

/// Parses a bug name: none, local-get or no-dedup.
pub fn parse_bug(s: &str) -> Result<Bug, String> {
    match s {
        "none" => Ok(Bug::None),
        "local-get" => Ok(Bug::LocalGet),
        "no-dedup" => Ok(Bug::NoDedup),
        _ => Err(format!("unknown bug '{s}'; known: none, local-get, no-dedup")),
    }
}

impl RunSpec {
    /// The same run on another Raft.
    pub fn with_raft(mut self, raft: RaftKind) -> RunSpec {
        self.raft = raft;
        self
    }

    /// Applies a deliberate server bug. A broken server would trip the
    /// clerks' own read checks, so those are turned off and the history
    /// checker judges the whole run.
    pub fn with_bug(mut self, bug: Bug) -> RunSpec {
        self.bug = bug;
        if bug != Bug::None {
            if let Workload::Generic { inline_checks, .. } = &mut self.workload {
                *inline_checks = false;
            }
        }
        self
    }

    /// Checks every field; the error names the field and the problem.
    pub fn validate(&self) -> Result<(), String> {
        let rate = |what: &str, x: f64| -> Result<(), String> {
            if (0.0..=1.0).contains(&x) {
                Ok(())
            } else {
                Err(format!("{what} is {x}; it must be a probability between 0 and 1"))
            }
        };
        if self.servers == 0 || self.servers > MAX_SERVERS {
            return Err(format!("servers is {}; it must be 1 to {MAX_SERVERS}", self.servers));
        }
        if self.clients == 0 || self.clients > MAX_CLIENTS {
            return Err(format!("clients is {}; it must be 1 to {MAX_CLIENTS}", self.clients));
        }
        rate("faults.request_loss", self.faults.request_loss)?;
        rate("faults.reply_loss", self.faults.reply_loss)?;
        rate("faults.duplicate_rate", self.faults.duplicate_rate)?;
        // A certain loss would make every op wait forever.
        if self.faults.request_loss >= 1.0 || self.faults.reply_loss >= 1.0 {
            return Err("faults: a loss rate of 1 loses every message; use less than 1".to_string());
        }
        let [lo, hi] = self.faults.delay_ms;
        if lo > hi {
            return Err(format!("faults.delay_ms is [{lo}, {hi}]; the first (min) must not exceed the second (max)"));
        }
        if hi > 60_000 {
            return Err(format!("faults.delay_ms max is {hi}; at most 60000 ms"));
        }
        let d = &self.disk;
        if d.sync_us.0 > d.sync_us.1 || d.sync_us.1 > 1_000_000 {
            return Err(format!(
                "disk.sync_us is [{}, {}]; the first (min) must not exceed the second (max), at most 1000000",
                d.sync_us.0, d.sync_us.1
            ));
        }
        rate("disk.torn_rate", d.torn_rate)?;
        rate("disk.corrupt_rate", d.corrupt_rate)?;
        if !(1.0..=2.5).contains(&self.clock_drift) {
            return Err(format!("clock_drift is {}; it must be 1 (none) to 2.5", self.clock_drift));
        }
        if !(self.targeted_rate >= 0.0 && self.targeted_rate <= 100.0) {
            return Err(format!("targeted_rate is {}; it must be 0 to 100 events per second", self.targeted_rate));
        }
        if !(self.crash_rate >= 0.0 && self.crash_rate <= 100.0) {
            return Err(format!("crash_rate is {}; it must be 0 to 100 crashes per second", self.crash_rate));
        }
        if !(self.bound_ms > 0.0 && self.bound_ms.is_finite()) {
            return Err(format!("bound_ms is {}; it must be a positive number", self.bound_ms));
        }
        if self.liveness_ms == 0 {
            return Err("liveness_ms is 0; it must be positive".to_string());
        }
        match &self.workload {
            Workload::Generic { iterations, round_ms, .. } => {
                if *iterations == 0 {
                    return Err("workload.iterations is 0; it must be at least 1".to_string());
                }
                if *round_ms == 0 {
                    return Err("workload.round_ms is 0; it must be positive".to_string());
                }
                if !matches!(self.partition, PartitionStyle::None | PartitionStyle::Halves | PartitionStyle::OneWay) {
                    return Err(format!(
                        "partition is {}; the generic workload supports none, halves and one_way",
                        self.partition.name()
                    ));
                }
                if self.nemesis.is_some() {
                    return Err("nemesis: the generic workload has no nemesis schedule (only swarm does)".to_string());
                }
                if self.crash_rate != 0.0 {
                    return Err("crash_rate: the generic workload crashes servers only between rounds (workload.restarts)".to_string());
                }
                if self.targeted_rate != 0.0 {
                    return Err("targeted_rate: the generic workload has no nemesis schedule (only swarm does)".to_string());
                }
                if self.inject_nondeterminism {
                    return Err("inject_nondeterminism: only the swarm workload has this test knob".to_string());
                }
            }
            Workload::Swarm { keys, run_ms, ops_per_client } => {
                if *keys == 0 {
                    return Err("workload.keys is 0; it must be at least 1".to_string());
                }
                if *run_ms == 0 {
                    return Err("workload.run_ms is 0; it must be positive".to_string());
                }
                if *ops_per_client == Some(0) {
                    return Err("workload.ops_per_client is 0; it must be at least 1 (or absent)".to_string());
                }
            }
        }
        if let Some(events) = &self.nemesis {
            for (i, e) in events.iter().enumerate() {
                if let Some(d) = e.action.down_ms().filter(|d| *d > 60_000) {
                    return Err(format!("nemesis[{i}] ({} at {} ms): it lasts {d} ms; at most 60000", e.action.kind(), e.at_ms));
                }
                if let Some(s) = e.action.servers().into_iter().find(|s| *s >= self.servers) {
                    return Err(format!(
                        "nemesis[{i}] ({} at {} ms) names server {s}, but there are only {} servers (0 to {})",
                        e.action.kind(),
                        e.at_ms,
                        self.servers,
                        self.servers - 1
                    ));
                }
                if let Action::Partition { a, b } = &e.action {
                    let mut seen = vec![0u8; self.servers];
                    a.iter().chain(b).for_each(|x| seen[*x] += 1);
                    let problem = if a.is_empty() || b.is_empty() {
                        Some("one side is empty".to_string())
                    } else if let Some(x) = seen.iter().position(|c| *c > 1) {
                        Some(format!("server {x} is named twice"))
                    } else {
                        seen.iter().position(|c| *c == 0).map(|x| format!("server {x} is on neither side"))
                    };
                    if let Some(p) = problem {
                        return Err(format!(
                            "nemesis[{i}] (partition at {} ms): {p}; the sides a and b must split the {} servers between them",
                            e.at_ms, self.servers
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The spec as pretty JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a run spec serialises")
    }

    /// Parses and validates a spec; `origin` (a file name) starts every error.
    pub fn from_json_str(text: &str, origin: &str) -> Result<RunSpec, String> {
        let spec: RunSpec = serde_json::from_str(text).map_err(|e| json_error(origin, &e, "invalid run spec"))?;
        spec.validate().map_err(|e| format!("{origin}: invalid run spec: {e}"))?;
        Ok(spec)
    }

    /// Reads, parses and validates a spec file.
    pub fn load(path: &Path) -> Result<RunSpec, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        RunSpec::from_json_str(&text, &path.display().to_string())
    }

    /// Virtual ms the workload runs (before the liveness phase).
    pub fn run_ms(&self) -> u64 {
        match &self.workload {
            Workload::Generic { iterations, round_ms, .. } => *iterations as u64 * *round_ms,
            Workload::Swarm { run_ms, .. } => *run_ms,
        }
    }
}

pub(super) fn json_error(origin: &str, e: &serde_json::Error, what: &str) -> String {
    // serde_json ends its message with the position, which comes first here.
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let msg = msg.strip_suffix(&suffix).unwrap_or(&msg);
    format!("{origin}: line {}, column {}: {what}: {msg}", e.line(), e.column())
}
