//! Search that learns: swarm seeds in generations, where a run that
//! reached something rare (a coverage kind, at a count few runs reached)
//! or came close to failing a bound keeps its spec in a corpus, and later
//! seeds mutate corpus specs (event times, event parameters, fault rates,
//! events spliced from another spec) instead of drawing every spec afresh.
//! AFL's loop, on run specs: coverage with bucketed hit counts decides what
//! is kept, and half the seeds stay fresh swarm mixes so the search does
//! not close in on its first finds.
//!
//! Determinism: the spec of the k-th seed is drawn from that seed and the
//! corpus as exactly the runs of the seeds before the (k - lag)-th left
//! it, learned in seed order, so the whole campaign is fixed by its
//! seeds and lag; the threads that run it change nothing, and keep busy
//! with up to `lag` runs in flight. A mutated spec runs under its own
//! seed; it is named [`GUIDED`], and a failing one is saved as a spec file
//! that replays it alone.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::exec::{self, RunOptions};
use super::nemesis;
use super::report::RunReport;
use super::spec::{Action, NemesisEvent, RunSpec, Workload, WriteTarget};
use super::swarm::{swarm_bound_ms, swarm_spec};
use super::verify::CONVERGENCE_MS;
use crate::kv::Bug;
use crate::sim::rafts::RaftKind;
use super::spec::WriteMoment;

/// The name mutated specs run under.
pub const GUIDED: &str = "guided";

// The stream each seed's choice and mutations are drawn from.
const GUIDE_STREAM: u64 = 0x4755_4944_4544_5f4d; // "GUIDED_M"

/// How a guided campaign searches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GuideOptions {
    /// A seed's spec is drawn from what the runs of the seeds at least this
    /// many before it reached (the runs in flight at once, at most).
    pub lag: usize,
    /// The share of seeds that draw a fresh swarm mix (the rest mutate a
    /// corpus spec, once there is one).
    pub fresh: f64,
    /// A feature (a coverage kind at a bucketed count, or a near miss) is
    /// rare while fewer than this share of the runs so far reached it.
    pub rare: f64,
    /// A near miss: a run used at least this share of a bound (ms/op,
    /// Raft messages, the liveness window, convergence).
    pub near: f64,
    /// The most specs the corpus keeps (the least promising go first).
    pub corpus: usize,
}

impl Default for GuideOptions {
    fn default() -> Self {
        GuideOptions { lag: 8, fresh: 0.5, rare: 0.05, near: 0.5, corpus: 256 }
    }
}

/// A spec kept for what its run reached.
#[derive(Clone, Debug)]
struct Kept {
    /// With its schedule written out.
    spec: RunSpec,
    /// What it reached that was rare then (for `kvraft` to show).
    why: Vec<String>,
    /// How promising: the rarer what it reached, the higher.
    weight: f64,
    /// Children drawn from it so far.
    children: u64,
}

impl Kept {
    /// How likely it is drawn as a parent: its weight, less each time it was.
    fn score(&self) -> f64 {
        self.weight / (1.0 + self.children as f64).sqrt()
    }
}

/// What a guided campaign has learned so far.
#[derive(Clone, Debug)]
pub struct Guide {
    opts: GuideOptions,
    raft: RaftKind,
    bug: Option<Bug>,
    corpus: Vec<Kept>,
    /// Feature -> runs that reached it.
    seen: BTreeMap<String, u64>,
    runs: u64,
    /// Runs that mutated a corpus spec, and specs kept, so far.
    pub mutated: u64,
    pub kept: u64,
}

/// AFL's hit-count buckets: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+.
fn bucket(n: u64) -> &'static str {
    match n {
        0 => "0",
        1 => "1",
        2 => "2",
        3 => "3",
        4..=7 => "4-7",
        8..=15 => "8-15",
        16..=31 => "16-31",
        32..=127 => "32-127",
        _ => "128+",
    }
}

/// What a run reached, as features: each coverage kind at its bucketed
/// count, and each bound it came within `near` of.
pub fn features(r: &RunReport, near: f64) -> Vec<String> {
    let mut f: Vec<String> = r.coverage.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k}:{}", bucket(*n))).collect();
    let close = |used: f64, bound: f64| bound > 0.0 && used >= near * bound;
    if close(r.ms_per_op, r.bound_ms) {
        f.push("near:ms_per_op".into());
    }
    if close(r.raft_msgs as f64, r.raft_bound.0 as f64) || close(r.raft_bytes as f64, r.raft_bound.1 as f64) {
        f.push("near:raft_msgs".into());
    }
    if r.liveness_ms.is_some_and(|ms| close(ms as f64, r.liveness_window_ms as f64)) {
        f.push("near:liveness".into());
    }
    if r.convergence_ms.is_some_and(|ms| close(ms as f64, CONVERGENCE_MS as f64)) {
        f.push("near:convergence".into());
    }
    f
}

impl Guide {
    /// A guide with an empty corpus, for swarm on `raft` (with `bug` in
    /// every server if given).
    pub fn new(opts: GuideOptions, raft: RaftKind, bug: Option<Bug>) -> Guide {
        Guide { opts, raft, bug, corpus: Vec::new(), seen: BTreeMap::new(), runs: 0, mutated: 0, kept: 0 }
    }

    pub fn options(&self) -> GuideOptions {
        self.opts
    }

    /// Specs kept now.
    pub fn corpus_len(&self) -> usize {
        self.corpus.len()
    }

    fn fresh(&self, seed: u64) -> RunSpec {
        let s = swarm_spec(seed).with_raft(self.raft);
        match self.bug {
            Some(b) => s.with_bug(b),
            None => s,
        }
    }

    /// The spec of `seed`: a fresh swarm mix, or a mutant of a corpus spec.
    pub fn spec_for(&mut self, seed: u64) -> RunSpec {
        let mut rng = StdRng::seed_from_u64(seed ^ GUIDE_STREAM);
        if self.corpus.is_empty() || rng.gen_bool(self.opts.fresh) {
            return self.fresh(seed);
        }
        // A parent by weight, each child making it a little less likely
        // to be drawn again.
        let weights: Vec<f64> = self.corpus.iter().map(Kept::score).collect();
        let total: f64 = weights.iter().sum();
        let mut x = rng.gen_range(0.0..total);
        let mut i = 0;
        while i + 1 < weights.len() && x >= weights[i] {
            x -= weights[i];
            i += 1;
        }
        self.corpus[i].children += 1;
        let donor = self.corpus.choose(&mut rng).map(|k| k.spec.clone());
        match mutate(&self.corpus[i].spec, donor.as_ref(), seed, &mut rng) {
            Some(child) => {
                self.mutated += 1;
                child
            }
            None => self.fresh(seed),
        }
    }

    /// Learns from a run of `spec`: a passing run that reached a rare
    /// feature keeps its spec.
    pub fn learn(&mut self, r: &RunReport, spec: &RunSpec) {
        let feats = features(r, self.opts.near);
        let limit = (self.opts.rare * self.runs as f64).max(1.0);
        let seen = |f: &String| self.seen.get(f).copied().unwrap_or(0) as f64;
        let rare: Vec<&String> = feats.iter().filter(|f| seen(f) < limit).collect();
        if r.passed && !rare.is_empty() {
            let weight = rare.iter().map(|f| 1.0 / (1.0 + seen(f))).sum();
            let why = rare.iter().map(|f| f.to_string()).collect();
            self.corpus.push(Kept { spec: nemesis::materialize(spec), why, weight, children: 0 });
            self.kept += 1;
        }
        for f in feats {
            *self.seen.entry(f).or_default() += 1;
        }
        self.runs += 1;
        if self.corpus.len() > self.opts.corpus {
            // Drop the least promising (ties: the oldest).
            let worst = (0..self.corpus.len()).min_by(|&a, &b| self.corpus[a].score().total_cmp(&self.corpus[b].score())).unwrap_or(0);
            self.corpus.remove(worst);
        }
    }

    /// What the specs in the corpus were kept for: each rare feature and
    /// how many of them reached it, the most common first.
    pub fn kept_for(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for k in &self.corpus {
            for f in &k.why {
                *counts.entry(f).or_default() += 1;
            }
        }
        let mut v: Vec<(String, usize)> = counts.into_iter().map(|(f, n)| (f.to_string(), n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

/// Swarm's own ranges, which mutants stay inside (the bounds were fitted
/// to them).
const MAX_LOSS: f64 = 0.3;
const MAX_DUP: f64 = 0.5;
const MAX_REPLAY: f64 = 0.05;
const MAX_EVENTS: usize = 64;

fn scaled(rng: &mut StdRng, x: f64, max: f64) -> f64 {
    let y = match rng.gen_range(0..3) {
        0 => 0.0,
        1 => x * rng.gen_range(0.5..2.0),
        _ => rng.gen_range(0.01..max),
    };
    ((y.min(max)) * 100.0).round() / 100.0
}

fn scaled_ms(rng: &mut StdRng, ms: u64, lo: u64, hi: u64) -> u64 {
    ((ms as f64 * rng.gen_range(0.5..2.0)) as u64).clamp(lo, hi)
}

/// An event's parameters drawn again: its downtime, its moment, what it
/// holds back, whom it watches.
fn retune(rng: &mut StdRng, a: &Action) -> Action {
    let moment = |m: WriteMoment| if m == WriteMoment::Before { WriteMoment::After } else { WriteMoment::Before };
    match a.clone() {
        Action::CrashLeader { down_ms } => Action::CrashLeader { down_ms: scaled_ms(rng, down_ms, 50, 3000) },
        Action::CrashLeaderAfterAppend { down_ms } => Action::CrashLeaderAfterAppend { down_ms: scaled_ms(rng, down_ms, 50, 3000) },
        Action::CrashLeaderOnCommit { down_ms } => Action::CrashLeaderOnCommit { down_ms: scaled_ms(rng, down_ms, 50, 3000) },
        Action::CrashRewrittenOnCommit { down_ms } => Action::CrashRewrittenOnCommit { down_ms: scaled_ms(rng, down_ms, 50, 1000) },
        Action::CrashMinorityWithLeader { down_ms } => Action::CrashMinorityWithLeader { down_ms: scaled_ms(rng, down_ms, 50, 3000) },
        Action::PauseLeader { ms } => Action::PauseLeader { ms: scaled_ms(rng, ms, 50, 3000) },
        Action::Pause { server, ms } => Action::Pause { server, ms: scaled_ms(rng, ms, 50, 3000) },
        Action::CrashAtWrite { write, moment: m, target, down_ms } => match rng.gen_range(0..3) {
            0 => Action::CrashAtWrite { write, moment: moment(m), target, down_ms },
            1 => {
                let target = *[WriteTarget::Voter, WriteTarget::Leader, WriteTarget::Any].choose(rng).unwrap();
                Action::CrashAtWrite { write, moment: m, target, down_ms }
            }
            _ => Action::CrashAtWrite { write, moment: m, target, down_ms: scaled_ms(rng, down_ms, 5, 1000) },
        },
        Action::SplitVote { moment: m, down_ms } => {
            if rng.gen_bool(0.5) {
                Action::SplitVote { moment: moment(m), down_ms }
            } else {
                Action::SplitVote { moment: m, down_ms: scaled_ms(rng, down_ms, 5, 300) }
            }
        }
        Action::LateMessages { hold_pct, restart } => {
            if rng.gen_bool(0.5) {
                Action::LateMessages { hold_pct, restart: !restart }
            } else {
                Action::LateMessages { hold_pct: rng.gen_range(1..=10) * 10, restart }
            }
        }
        Action::LeaderReturns { .. } => Action::LeaderReturns { hold_pct: rng.gen_range(0..=10) * 10 },
        other => other,
    }
}

/// A mutant of `parent` under `seed`: one to four changes to its schedule
/// (an event moved, copied, dropped or retuned, or one spliced in from
/// `donor`) or to its fault rates; None if it came out invalid or the same.
pub fn mutate(parent: &RunSpec, donor: Option<&RunSpec>, seed: u64, rng: &mut StdRng) -> Option<RunSpec> {
    let mut s = nemesis::materialize(parent);
    s.seed = seed;
    s.scenario = GUIDED.to_string();
    let Workload::Swarm { run_ms, .. } = s.workload else { return None };
    let mut ev: Vec<NemesisEvent> = s.nemesis.take().unwrap_or_default();
    let (ev0, faults0) = (ev.clone(), s.faults.clone());
    let mut changes = 1 + (0..3).take_while(|_| rng.gen_bool(0.5)).count();
    // Changes that change nothing (a rate scaled from 0, an event with
    // nothing to retune) do not count, up to a few tries.
    let mut tries = 0;
    while changes > 0 && tries < 16 {
        tries += 1;
        let before = (ev.clone(), s.faults.clone());
        let pick = rng.gen_range(0..8);
        if ev.is_empty() && pick < 5 {
            continue;
        }
        match pick {
            0 => {
                let i = rng.gen_range(0..ev.len());
                let at = ev[i].at_ms as i64 + rng.gen_range(-800..=800i64);
                ev[i].at_ms = at.clamp(100, run_ms as i64 - 1) as u64;
            }
            1 if ev.len() < MAX_EVENTS => {
                let e = ev[rng.gen_range(0..ev.len())].clone();
                let at = (e.at_ms + rng.gen_range(200..2000)).min(run_ms - 1);
                ev.push(NemesisEvent { at_ms: at, action: e.action });
            }
            2 => {
                ev.remove(rng.gen_range(0..ev.len()));
            }
            3 | 4 => {
                let i = rng.gen_range(0..ev.len());
                ev[i].action = retune(rng, &ev[i].action);
            }
            5 if ev.len() < MAX_EVENTS => {
                let n = s.servers;
                let from: Vec<NemesisEvent> = donor.map(nemesis::within_run).unwrap_or_default();
                let from: Vec<NemesisEvent> = from.into_iter().filter(|e| e.action.servers().iter().all(|x| *x < n)).collect();
                if let Some(e) = from.choose(rng) {
                    let at = rng.gen_range(100..run_ms.max(101));
                    ev.push(NemesisEvent { at_ms: at, action: e.action.clone() });
                }
            }
            _ => {
                let f = &mut s.faults;
                match rng.gen_range(0..5) {
                    0 => f.request_loss = scaled(rng, f.request_loss, MAX_LOSS),
                    1 => f.reply_loss = scaled(rng, f.reply_loss, MAX_LOSS),
                    2 => f.duplicate_rate = scaled(rng, f.duplicate_rate, MAX_DUP),
                    3 => f.replay_rate = scaled(rng, f.replay_rate, MAX_REPLAY),
                    _ => {
                        let lo = rng.gen_range(0..=10);
                        f.delay_ms = if rng.gen_bool(0.3) { [0, 0] } else { [lo, lo + rng.gen_range(1..=60)] };
                    }
                }
            }
        }
        if (&ev, &s.faults) != (&before.0, &before.1) {
            changes -= 1;
        }
    }
    if (&ev, &s.faults) == (&ev0, &faults0) {
        return None;
    }
    ev.sort_by_key(|e| e.at_ms);
    s.nemesis = Some(ev);
    // Valid first (a spliced event may name a server this spec lacks),
    // then bound as swarm bounds its mixes.
    s.validate().ok()?;
    s.bound_ms = swarm_bound_ms(&s);
    Some(s)
}

/// Runs a guided campaign over `seeds` on `jobs` threads, each run as
/// [`exec::run`] does, calling `progress` with each report as it comes;
/// with `stop_at_failure`, plans nothing more once a run failed (every
/// seed before it has run). The reports in seed order, and what the
/// guide learned.
pub fn run_guided(
    guide: Guide,
    seeds: &[u64],
    jobs: usize,
    opts: &RunOptions,
    stop_at_failure: bool,
    progress: &(dyn Fn(&RunReport) + Sync),
) -> (Vec<RunReport>, Guide) {
    struct State {
        guide: Guide,
        specs: Vec<RunSpec>,
        reports: Vec<Option<RunReport>>,
        learned: usize,
        failed: bool,
    }
    let lag = guide.opts.lag;
    let state = Mutex::new(State { guide, specs: Vec::new(), reports: vec![None; seeds.len()], learned: 0, failed: false });
    let changed = Condvar::new();
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let mut st = state.lock().unwrap();
                let (i, spec) = loop {
                    let i = st.specs.len();
                    if i == seeds.len() || (stop_at_failure && st.failed) {
                        return;
                    }
                    // Learn, in order, up to exactly the seeds `lag` before this one.
                    let need = i.saturating_sub(lag);
                    while st.learned < need {
                        let j = st.learned;
                        let Some(r) = st.reports[j].take() else { break };
                        let spec = st.specs[j].clone();
                        st.guide.learn(&r, &spec);
                        st.reports[j] = Some(r);
                        st.learned += 1;
                    }
                    if st.learned == need {
                        let spec = st.guide.spec_for(seeds[i]);
                        st.specs.push(spec.clone());
                        break (i, spec);
                    }
                    st = changed.wait(st).unwrap();
                };
                drop(st);
                let r = exec::run(&spec, opts);
                progress(&r);
                let mut st = state.lock().unwrap();
                st.failed |= !r.passed;
                st.reports[i] = Some(r);
                changed.notify_all();
            });
        }
    });
    let st = state.into_inner().unwrap();
    (st.reports.into_iter().flatten().collect(), st.guide)
}
