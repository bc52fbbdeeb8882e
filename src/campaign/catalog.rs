//! The catalogue of named KV scenarios, each a run spec for any seed; the
//! spec of a run named on the command line (a scenario or "swarm"); and the
//! shortest command that replays a spec.

use super::nemesis;
use super::spec::{self, Faults, Focus, PartitionStyle, RunSpec, Workload, LIVENESS_MS};
use super::swarm;
use crate::kv::Bug;
use crate::sim::fleet::DiskFaults;
use crate::sim::rafts::RaftKind;
use crate::sim::network::FaultConfig;

/// One named scenario.
#[derive(Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    /// Its run spec, for seed 0.
    template: RunSpec,
    /// Part of the default campaign (the deliberately broken ones are not).
    pub default: bool,
}

impl Scenario {
    /// The scenario's run with `seed`. A scenario whose nemesis schedule
    /// its seed draws has its bound drawn with it, as swarm's is.
    pub fn spec(&self, seed: u64) -> RunSpec {
        let mut s = RunSpec { seed, ..self.template.clone() };
        if matches!(s.workload, Workload::Swarm { .. }) {
            s.bound_ms = swarm::swarm_bound_ms(&s);
        }
        s
    }

    /// Mean virtual ms per completed op that the scenario must stay under;
    /// None for one whose bound is drawn with each seed's schedule.
    pub fn bound_ms(&self) -> Option<f64> {
        (!matches!(self.template.workload, Workload::Swarm { .. })).then_some(self.template.bound_ms)
    }
}

/// 6.5840's GenericTest as a run spec: `clients` clerks and `servers`
/// servers, three 5 s rounds, 6.5840's unreliable network if asked,
/// restarts of every server between rounds, partitions of the given style.
/// A catalogue row names each field, starting from [`Generic::FIVE`].
#[derive(Clone, Copy)]
struct Generic {
    clients: usize,
    servers: usize,
    /// 6.5840's unreliable network: loss both ways and delays.
    unreliable: bool,
    /// Every server crashes and restarts between rounds.
    restarts: bool,
    partition: PartitionStyle,
    /// Random keys, and puts as well as appends.
    random_keys: bool,
    /// The scenario's ms/op bound.
    bound_ms: f64,
}

impl Generic {
    /// 5 clerks on 5 servers, a reliable network, nothing crashes, no
    /// partitions, each clerk its own key; a row sets `bound_ms` (0 here).
    const FIVE: Generic = Generic {
        clients: 5,
        servers: 5,
        unreliable: false,
        restarts: false,
        partition: PartitionStyle::None,
        random_keys: false,
        bound_ms: 0.0,
    };

    fn spec(self, name: &str) -> RunSpec {
        let mut faults = Faults::default();
        if self.unreliable {
            let u = FaultConfig::unreliable();
            faults.request_loss = u.request_loss;
            faults.reply_loss = u.reply_loss;
            faults.delay_ms = [u.min_delay.as_millis() as u64, u.max_delay.as_millis() as u64];
        }
        RunSpec {
            scenario: name.to_string(),
            seed: 0,
            servers: self.servers,
            clients: self.clients,
            workload: Workload::Generic {
                iterations: 3,
                round_ms: 5000,
                random_keys: self.random_keys,
                restarts: self.restarts,
                inline_checks: true,
            },
            faults,
            partition: self.partition,
            crash_rate: 0.0,
            focus: Focus::None,
        targeted_rate: 0.0,
            nemesis: None,
            bug: Bug::None,
            disk: DiskFaults::default(),
            clock_drift: 1.0,
            raft: RaftKind::OURS,
            bound_ms: self.bound_ms,
            liveness_ms: LIVENESS_MS,
            inject_nondeterminism: false,
        }
    }
}

/// Random ops under protocol-aware events (1.5 a second on average, drawn
/// from the seed) with light loss and duplication, on disks that a crash
/// may corrupt.
fn leader_churn() -> RunSpec {
    RunSpec {
        scenario: "leader_churn".to_string(),
        seed: 0,
        servers: 5,
        clients: 5,
        workload: Workload::Swarm { keys: 10, run_ms: 10_000, ops_per_client: None },
        faults: Faults { request_loss: 0.05, reply_loss: 0.05, duplicate_rate: 0.1, delay_ms: [0, 10], long_reordering: false, replay_rate: 0.0 },
        partition: PartitionStyle::None,
        crash_rate: 0.0,
        focus: Focus::None,
        targeted_rate: 1.5,
        nemesis: None,
        bug: Bug::None,
        // Now and then a crash flips a bit of a synced record.
        disk: DiskFaults { corrupt_rate: 0.3, ..DiskFaults::default() },
        clock_drift: 1.0,
        raft: RaftKind::OURS,
        bound_ms: 0.0,
        liveness_ms: LIVENESS_MS,
        inject_nondeterminism: false,
    }
}

/// Stale leaders with long tails: three times, the leader is cut off from
/// the other servers (not from the 15 clerks, who keep handing it ops it
/// can never commit) while the rest elect a new leader and commit on; then
/// the links heal and that leader crashes, so the next one, which never
/// heard from the old one, must find where their logs part across a long
/// divergent suffix (the back-up path).
fn stale_tails() -> RunSpec {
    use super::spec::{Action, NemesisEvent};
    let at = |at_ms: u64, action: Action| NemesisEvent { at_ms, action };
    RunSpec {
        scenario: "stale_tails".to_string(),
        clients: 15,
        workload: Workload::Swarm { keys: 10, run_ms: 6000, ops_per_client: None },
        faults: Faults::default(),
        focus: Focus::None,
        targeted_rate: 0.0,
        nemesis: Some(
            [500, 2500, 4500]
                .into_iter()
                .flat_map(|t| {
                    [
                        at(t, Action::IsolateLeader),
                        at(t + 1500, Action::Heal),
                        at(t + 1501, Action::CrashLeader { down_ms: 300 }),
                    ]
                })
                .collect(),
        ),
        disk: DiskFaults::default(),
        ..leader_churn()
    }
}

/// Commits that rest on the leader's disk: about once a second the leader
/// is left with a bare majority and its disk stalls; the moment it applies
/// an entry it then commits, it crashes and the followers that hold the
/// entry are cut off, so the majority left has the entry only if the
/// leader's disk kept it (a leader that counts its own copy before it is
/// durable loses a committed entry here).
fn commit_crashes() -> RunSpec {
    use super::spec::{Action, NemesisEvent};
    RunSpec {
        scenario: "commit_crashes".to_string(),
        faults: Faults::default(),
        focus: Focus::None,
        targeted_rate: 0.0,
        nemesis: Some(
            (1..=9).map(|k| NemesisEvent { at_ms: 1000 * k, action: Action::CrashLeaderOnCommit { down_ms: 100 } }).collect(),
        ),
        disk: DiskFaults::default(),
        ..leader_churn()
    }
}

/// Commits that rest on a rewritten log: three times a leader is cut off
/// with an entry nobody else has, rejoins the next leader, which replaces
/// that entry with its own first and is cut off at once; if the rewritten
/// server then leads, on a stalled disk and with a bare majority, it
/// crashes as it applies its first entry, its majority cut off (a server
/// that counts a rewritten entry, or the next, as durable before it is
/// loses a committed entry here). On 3 servers, where the rewritten one
/// wins the next election about half the time.
fn rewrites() -> RunSpec {
    use super::spec::{Action, NemesisEvent};
    RunSpec {
        scenario: "rewrites".to_string(),
        servers: 3,
        workload: Workload::Swarm { keys: 10, run_ms: 12_000, ops_per_client: None },
        faults: Faults::default(),
        focus: Focus::None,
        targeted_rate: 0.0,
        nemesis: Some(
            [1000, 5000, 9000]
                .into_iter()
                .map(|at_ms| NemesisEvent { at_ms, action: Action::CrashRewrittenOnCommit { down_ms: 100 } })
                .collect(),
        ),
        disk: DiskFaults::default(),
        ..leader_churn()
    }
}

/// Servers that rejoin leaders that never heard from them: three times,
/// the leader is caught at an append and crashed with that entry alone on
/// its disk, and so is the next leader at its first entry (of a term no
/// other server holds); then the leader elected meanwhile crashes too, so
/// that the one that finally takes both back was elected after the
/// majority's log had moved past where theirs part from it. Its first
/// AppendEntries then lands beyond their logs, and they find the place
/// through the back-up hints: the first rejoins with entries of a term the
/// leader holds (the leader's hint), the second with one of a term it does
/// not (the follower's). A Raft with poor hints resends what they hold.
fn rejoins() -> RunSpec {
    use super::spec::{Action, NemesisEvent};
    let at = |at_ms: u64, action: Action| NemesisEvent { at_ms, action };
    RunSpec {
        scenario: "rejoins".to_string(),
        clients: 15,
        workload: Workload::Swarm { keys: 10, run_ms: 12_000, ops_per_client: None },
        faults: Faults::default(),
        focus: Focus::None,
        targeted_rate: 0.0,
        nemesis: Some(
            [1000, 5000, 9000]
                .into_iter()
                .flat_map(|t| {
                    // The second leader is caught 0.5-1 s after the first,
                    // a third is elected 0.3-0.6 s later; the crash of that
                    // one and the election of a fourth come before either
                    // victim is back.
                    [
                        at(t, Action::CrashLeaderAfterAppend { down_ms: 3000 }),
                        at(t + 1, Action::CrashLeaderAfterAppend { down_ms: 2500 }),
                        at(t + 1700, Action::CrashLeader { down_ms: 300 }),
                    ]
                })
                .collect(),
        ),
        disk: DiskFaults::default(),
        ..leader_churn()
    }
}

/// Every scenario, in a fixed order.
pub fn catalog() -> Vec<Scenario> {
    use PartitionStyle::{Halves, OneWay};
    let sc = |name: &'static str, about: &'static str, template: RunSpec| Scenario { name, about, template, default: true };
    let broken = |name: &'static str, about: &'static str, template: RunSpec| Scenario { name, about, template, default: false };
    let mut dup = Generic { unreliable: true, restarts: true, partition: Halves, bound_ms: 600.0, ..Generic::FIVE }.spec("duplication");
    dup.faults.duplicate_rate = 0.3;
    vec![
        sc("basic", "1 clerk, 5 servers, reliable network", Generic { clients: 1, bound_ms: 45.0, ..Generic::FIVE }.spec("basic")),
        sc("concurrent", "5 clerks, 5 servers, reliable network", Generic { bound_ms: 60.0, ..Generic::FIVE }.spec("concurrent")),
        sc(
            "unreliable",
            "5 clerks; 10% of requests and replies lost, delays 0-27 ms",
            Generic { unreliable: true, bound_ms: 200.0, ..Generic::FIVE }.spec("unreliable"),
        ),
        sc(
            "partitions",
            "5 clerks; servers split in two at random every ~1 s",
            Generic { partition: Halves, bound_ms: 150.0, ..Generic::FIVE }.spec("partitions"),
        ),
        sc(
            "restarts",
            "5 clerks; all servers crash and restart between rounds",
            Generic { restarts: true, bound_ms: 100.0, ..Generic::FIVE }.spec("restarts"),
        ),
        sc(
            "restarts_unreliable",
            "5 clerks; crashes and a lossy network",
            Generic { unreliable: true, restarts: true, bound_ms: 300.0, ..Generic::FIVE }.spec("restarts_unreliable"),
        ),
        sc(
            "partitions_restarts_unreliable",
            "5 clerks; partitions, crashes, loss",
            Generic { unreliable: true, restarts: true, partition: Halves, bound_ms: 500.0, ..Generic::FIVE }.spec("partitions_restarts_unreliable"),
        ),
        sc(
            "linearizable",
            "15 clerks, 7 servers, random keys with puts; partitions, crashes, loss",
            Generic { clients: 15, servers: 7, unreliable: true, restarts: true, partition: Halves, random_keys: true, bound_ms: 600.0, ..Generic::FIVE }.spec("linearizable"),
        ),
        sc("duplication", "5 clerks; 30% of messages delivered twice, plus loss, partitions, crashes", dup),
        sc("one_way", "5 clerks; random one-way link cuts between servers", Generic { partition: OneWay, bound_ms: 300.0, ..Generic::FIVE }.spec("one_way")),
        sc(
            "leader_churn",
            "5 clerks, 10 keys, 10 s; the leader crashed as it appends, crashed with a minority (Figure 8), left stale in a minority",
            leader_churn(),
        ),
        sc(
            "commit_crashes",
            "5 clerks, 5 servers; each second the leader, left with a bare majority and a stalled disk, crashes as it commits, its majority cut off",
            commit_crashes(),
        ),
        sc(
            "rewrites",
            "5 clerks, 3 servers; three times a leader's last entry is replaced by the next leader's first, and if it then leads, on a stalled disk, it crashes as it commits",
            rewrites(),
        ),
        Scenario {
            name: "stale_tails",
            about: "15 clerks, 5 servers; three times a leader cut off from the servers (not the clerks) piles up entries it cannot commit, then rejoins a new leader",
            template: stale_tails(),
            default: false,
        },
        Scenario {
            name: "rejoins",
            about: "15 clerks, 5 servers; three times two leaders crash with entries nobody else has and rejoin a leader elected later (the back-up hints)",
            template: rejoins(),
            default: false,
        },
        broken(
            "broken_local_get",
            "a broken server that answers Get from its local map (must fail)",
            Generic { partition: Halves, random_keys: true, bound_ms: 150.0, ..Generic::FIVE }.spec("broken_local_get").with_bug(Bug::LocalGet),
        ),
        broken(
            "broken_no_dedup",
            "a broken server without a duplicate table (must fail)",
            Generic { unreliable: true, bound_ms: 200.0, ..Generic::FIVE }.spec("broken_no_dedup").with_bug(Bug::NoDedup),
        ),
    ]
}

pub fn find(name: &str) -> Option<Scenario> {
    catalog().into_iter().find(|s| s.name == name)
}

/// The spec of a named run: a catalogue scenario or "swarm", with `seed`
/// and a deliberate bug (None: as the scenario has it).
pub fn spec_for(name: &str, seed: u64, bug: Option<Bug>) -> Result<RunSpec, String> {
    let spec = if name == swarm::SWARM {
        swarm::swarm_spec(seed)
    } else {
        let sc = find(name).ok_or_else(|| {
            let mut names: Vec<&str> = catalog().iter().map(|s| s.name).collect();
            names.push(swarm::SWARM);
            format!("unknown scenario '{name}'; known: {}", names.join(", "))
        })?;
        sc.spec(seed)
    };
    Ok(match bug {
        Some(b) => spec.with_bug(b),
        None => spec,
    })
}

/// The shortest command that replays `spec`: by name and seed when the name
/// and seed generate exactly this spec, else from a spec file.
pub fn replay_command(spec: &RunSpec) -> String {
    replay_by_name(spec).unwrap_or_else(|| format!("{} run --spec FILE (the spec saved by --save-failures or shrink --out)", crate::sim::context::cli_command()))
}

/// The command that replays `spec` by scenario name and seed, if that
/// gives exactly this spec (a catalogue scenario or a swarm seed as
/// drawn); None for a spec only a file can give (edited, mutated, shrunk).
pub fn replay_by_name(spec: &RunSpec) -> Option<String> {
    let bug = if spec.bug == Bug::None { None } else { Some(spec.bug) };
    match spec_for(&spec.scenario, spec.seed, bug).map(|s| s.with_raft(spec.raft)) {
        Ok(s) if s == *spec || (s.nemesis.is_none() && nemesis::materialize(&s) == *spec) => {
            let bug_arg = bug.map(|b| format!(" --bug {}", spec::bug_to_str(b))).unwrap_or_default();
            let raft_arg = if spec.raft.is_default() { String::new() } else { format!(" --raft {}", spec.raft.name()) };
            Some(format!("{} run {} --seed {}{bug_arg}{raft_arg}", crate::sim::context::cli_command(), spec.scenario, spec.seed))
        }
        _ => None,
    }
}
