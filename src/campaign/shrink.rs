//! Shrinking a failing run: search for a smaller spec that fails the same
//! way (same [`FailureClass`]): fewer nemesis events (delta debugging over
//! the explicit schedule), fewer clients, servers, keys and ops, a shorter
//! run, lower fault rates. Every candidate is a real run, so the work is
//! bounded by a budget of runs.

use std::time::Duration;

use super::report::RunReport;
use crate::sim::failure::FailureClass;
use super::exec::RunOptions;
use super::exec::run_all;
use super::spec::{Action, NemesisEvent, PartitionStyle, RunSpec, Workload};
use super::nemesis;

pub struct ShrinkOptions {
    /// Most runs to spend (the first run of the original included).
    pub budget: usize,
    pub time_limit: Option<Duration>,
    /// Candidates tried at once; the first failing one in order wins, so
    /// the result does not depend on this.
    pub jobs: usize,
    /// Other seeds to try a reduction under when the run's own seed no
    /// longer fails (0: keep the seed).
    pub reseed: u64,
}

pub struct ShrinkOutcome {
    pub original: RunSpec,
    pub original_report: RunReport,
    pub class: FailureClass,
    pub shrunk: RunSpec,
    pub shrunk_report: RunReport,
    /// Runs spent, out of `budget`.
    pub runs: usize,
    pub budget: usize,
    /// The reductions that were kept, in order.
    pub steps: Vec<String>,
}

impl ShrinkOutcome {
    /// What was removed, one "what: from -> to" line per thing that changed.
    pub fn summary(&self) -> Vec<String> {
        let (a, b) = (&self.original, &self.shrunk);
        let mut out = Vec::new();
        let mut cmp = |what: &str, x: String, y: String| {
            if x != y {
                out.push(format!("{what}: {x} -> {y}"));
            }
        };
        cmp("seed", a.seed.to_string(), b.seed.to_string());
        cmp("nemesis events", nemesis::schedule(a).len().to_string(), nemesis::schedule(b).len().to_string());
        cmp("servers", a.servers.to_string(), b.servers.to_string());
        cmp("clients", a.clients.to_string(), b.clients.to_string());
        cmp("ops completed", self.original_report.ops.to_string(), self.shrunk_report.ops.to_string());
        cmp("run time (virtual ms)", a.run_ms().to_string(), b.run_ms().to_string());
        match (&a.workload, &b.workload) {
            (Workload::Swarm { keys: k1, ops_per_client: o1, .. }, Workload::Swarm { keys: k2, ops_per_client: o2, .. }) => {
                cmp("keys", k1.to_string(), k2.to_string());
                let show = |o: &Option<u64>| o.map_or("unlimited".to_string(), |n| n.to_string());
                cmp("ops per client", show(o1), show(o2));
            }
            (
                Workload::Generic { iterations: i1, restarts: r1, .. },
                Workload::Generic { iterations: i2, restarts: r2, .. },
            ) => {
                cmp("rounds", i1.to_string(), i2.to_string());
                cmp("restarts between rounds", r1.to_string(), r2.to_string());
            }
            _ => {}
        }
        let pct = |x: f64| format!("{}%", (x * 100.0).round());
        cmp("request loss", pct(a.faults.request_loss), pct(b.faults.request_loss));
        cmp("reply loss", pct(a.faults.reply_loss), pct(b.faults.reply_loss));
        cmp("duplication", pct(a.faults.duplicate_rate), pct(b.faults.duplicate_rate));
        cmp("delay (ms)", format!("{:?}", a.faults.delay_ms), format!("{:?}", b.faults.delay_ms));
        cmp("long reordering", a.faults.long_reordering.to_string(), b.faults.long_reordering.to_string());
        cmp("partition style", a.partition.name().to_string(), b.partition.name().to_string());
        cmp("crash rate (per s)", a.crash_rate.to_string(), b.crash_rate.to_string());
        out
    }
}

struct Search<'a> {
    opts: &'a ShrinkOptions,
    class: FailureClass,
    runs: usize,
    cur: RunSpec,
    cur_report: RunReport,
    steps: Vec<String>,
    progress: &'a dyn Fn(&str),
}

impl Search<'_> {
    fn left(&self) -> usize {
        self.opts.budget.saturating_sub(self.runs)
    }

    /// Runs candidates in order, in batches of `jobs`, until one fails the
    /// same way; adopts it. False if none did (or the budget ran out).
    fn try_first(&mut self, cands: Vec<(String, RunSpec)>) -> bool {
        let mut i = 0;
        while i < cands.len() && self.left() > 0 {
            let n = self.opts.jobs.max(1).min(self.left()).min(cands.len() - i);
            let batch: Vec<RunSpec> = cands[i..i + n].iter().map(|(_, s)| s.clone()).collect();
            // The candidates share the original's name: they write no
            // files, which would overwrite the original failure's.
            let quiet = RunOptions { no_files: true, ..RunOptions::limit(self.opts.time_limit) };
            let reports = run_all(&batch, n, &quiet, &|_| {});
            for (k, r) in reports.into_iter().enumerate() {
                // Charged as if run one at a time, so that the budget runs
                // out at the same candidate whatever `jobs` is.
                self.runs += 1;
                let same = r.failure.as_ref().map(|f| &f.class) == Some(&self.class);
                if same {
                    let what = cands[i + k].0.clone();
                    let failure: String = r.failure.as_ref().map(|f| f.to_string()).unwrap_or_default().chars().take(100).collect();
                    (self.progress)(&format!("  kept: {what} (run {}, {failure})", self.runs));
                    self.steps.push(what);
                    self.cur = cands[i + k].1.clone();
                    self.cur_report = r;
                    return true;
                }
            }
            i += n;
        }
        false
    }

    /// Delta debugging over the explicit nemesis schedule: removes ever
    /// smaller chunks of events while the run still fails the same way.
    fn ddmin_events(&mut self) -> bool {
        let mut changed = false;
        let Some(events) = self.cur.nemesis.clone() else { return false };
        if events.is_empty() {
            return false;
        }
        if self.try_first(vec![(format!("all {} nemesis events removed", events.len()), with_events(&self.cur, Vec::new()))]) {
            return true;
        }
        let mut n = 2usize;
        loop {
            let events = self.cur.nemesis.clone().unwrap_or_default();
            let len = events.len();
            if len < 2 || self.left() == 0 {
                break;
            }
            let n_eff = n.min(len);
            let chunks = chunk_bounds(len, n_eff);
            let cands: Vec<(String, RunSpec)> = chunks
                .iter()
                .map(|&(lo, hi)| {
                    let kept: Vec<NemesisEvent> = events[..lo].iter().chain(&events[hi..]).cloned().collect();
                    (format!("nemesis events {}..{} of {len} removed", lo, hi), with_events(&self.cur, kept))
                })
                .collect();
            if self.try_first(cands) {
                changed = true;
                n = (n_eff - 1).max(2);
            } else if n_eff >= len {
                break;
            } else {
                n = (n_eff * 2).min(len);
            }
        }
        changed
    }

    /// One round of the other reductions, each tried once in order.
    fn reduce_once(&mut self) -> bool {
        let mut changed = false;
        for make in [clients_cands, length_cands, fault_cands, event_cands, server_cands, key_cands, generic_cands] {
            if self.left() == 0 {
                break;
            }
            let cands = make(&self.cur, &self.cur_report);
            if self.try_first(cands.clone()) {
                changed = true;
                continue;
            }
            // Any change reshuffles every later random draw, so a smaller run
            // may miss the failure by chance: try it under other seeds too.
            for k in 1..=self.opts.reseed {
                let reseeded: Vec<(String, RunSpec)> = cands
                    .iter()
                    .map(|(what, s)| {
                        let mut s = s.clone();
                        s.seed = s.seed.wrapping_add(k);
                        (format!("{what}, seed {}", s.seed), s)
                    })
                    .collect();
                if self.left() == 0 {
                    break;
                }
                if self.try_first(reseeded) {
                    changed = true;
                    break;
                }
            }
        }
        changed
    }
}

/// `n` contiguous chunks covering 0..len.
fn chunk_bounds(len: usize, n: usize) -> Vec<(usize, usize)> {
    (0..n).map(|i| (i * len / n, (i + 1) * len / n)).filter(|(a, b)| a < b).collect()
}

fn with_events(spec: &RunSpec, events: Vec<NemesisEvent>) -> RunSpec {
    let mut s = spec.clone();
    s.nemesis = Some(events);
    s
}

/// The sizes among `targets` that are at least 1 and below `n`, in
/// increasing order, once each.
fn smaller(n: usize, mut targets: Vec<usize>) -> Vec<usize> {
    targets.retain(|t| *t >= 1 && *t < n);
    targets.sort_unstable();
    targets.dedup();
    targets
}

fn clients_cands(s: &RunSpec, _: &RunReport) -> Vec<(String, RunSpec)> {
    let c = s.clients;
    smaller(c, vec![1, 2, c / 2, c - 1])
        .into_iter()
        .map(|t| {
            let mut n = s.clone();
            n.clients = t;
            (format!("clients {c} -> {t}"), n)
        })
        .collect()
}

fn length_cands(s: &RunSpec, r: &RunReport) -> Vec<(String, RunSpec)> {
    let mut out = Vec::new();
    match &s.workload {
        Workload::Swarm { keys, run_ms, ops_per_client } => {
            if *run_ms > 1000 {
                let t = (run_ms / 2).max(1000);
                let mut n = s.clone();
                n.workload = Workload::Swarm { keys: *keys, run_ms: t, ops_per_client: *ops_per_client };
                if let Some(ev) = &mut n.nemesis {
                    ev.retain(|e| e.at_ms < t);
                }
                out.push((format!("run time {run_ms} -> {t} ms"), n));
            }
            // What each clerk did in the failing run, halved.
            let did = (r.ops as u64 / s.clients as u64).max(1);
            let cur = ops_per_client.unwrap_or(did).min(did);
            if cur > 1 {
                let t = cur / 2;
                let mut n = s.clone();
                n.workload = Workload::Swarm { keys: *keys, run_ms: *run_ms, ops_per_client: Some(t) };
                out.push((format!("ops per client {} -> {t}", ops_per_client.map_or("unlimited".to_string(), |o| o.to_string())), n));
            }
        }
        Workload::Generic { iterations, round_ms, random_keys, restarts, inline_checks } => {
            if *iterations > 1 {
                for t in [1, iterations - 1] {
                    let mut n = s.clone();
                    n.workload = Workload::Generic {
                        iterations: t,
                        round_ms: *round_ms,
                        random_keys: *random_keys,
                        restarts: *restarts,
                        inline_checks: *inline_checks,
                    };
                    out.push((format!("rounds {iterations} -> {t}"), n));
                }
            }
            if *round_ms > 1000 {
                let t = (round_ms / 2).max(1000);
                let mut n = s.clone();
                n.workload = Workload::Generic {
                    iterations: *iterations,
                    round_ms: t,
                    random_keys: *random_keys,
                    restarts: *restarts,
                    inline_checks: *inline_checks,
                };
                out.push((format!("round time {round_ms} -> {t} ms"), n));
            }
        }
    }
    out
}

fn fault_cands(s: &RunSpec, _: &RunReport) -> Vec<(String, RunSpec)> {
    let mut out = Vec::new();
    let f = &s.faults;
    let half = |x: f64| {
        let h = (x * 50.0).round() / 100.0;
        if h < 0.01 {
            0.0
        } else {
            h
        }
    };
    type Field = fn(&mut RunSpec) -> &mut f64;
    let fields: [(&str, f64, Field); 4] = [
        ("request loss", f.request_loss, |s| &mut s.faults.request_loss),
        ("reply loss", f.reply_loss, |s| &mut s.faults.reply_loss),
        ("duplication", f.duplicate_rate, |s| &mut s.faults.duplicate_rate),
        ("replay", f.replay_rate, |s| &mut s.faults.replay_rate),
    ];
    for (name, x, field) in fields {
        if x > 0.0 {
            for t in [0.0, half(x)] {
                if t < x {
                    let mut n = s.clone();
                    *field(&mut n) = t;
                    out.push((format!("{name} {x} -> {t}"), n));
                }
            }
        }
    }
    if f.delay_ms[1] > 0 {
        let mut n = s.clone();
        n.faults.delay_ms = [0, 0];
        out.push((format!("delay {:?} -> none", f.delay_ms), n));
        let mut n = s.clone();
        n.faults.delay_ms = [f.delay_ms[0] / 2, f.delay_ms[1] / 2];
        out.push((format!("delay {:?} -> {:?}", f.delay_ms, n.faults.delay_ms), n));
    }
    if f.long_reordering {
        let mut n = s.clone();
        n.faults.long_reordering = false;
        out.push(("long reordering off".to_string(), n));
    }
    out
}

/// Simpler forms of single events: fewer messages held back (none, or
/// half), a late-messages event without its restart.
fn event_cands(s: &RunSpec, _: &RunReport) -> Vec<(String, RunSpec)> {
    let Some(ev) = &s.nemesis else { return Vec::new() };
    let mut out = Vec::new();
    // No messages held, or half as many (in tens of percent).
    let fewer = |h: u64| if h / 20 > 0 { vec![0, h / 20 * 10] } else { vec![0] };
    for (i, e) in ev.iter().enumerate() {
        let simpler: Vec<(String, Action)> = match &e.action {
            Action::LateMessages { hold_pct, restart } => {
                let mut v: Vec<(String, Action)> = fewer(*hold_pct)
                    .into_iter()
                    .filter(|h| h < hold_pct)
                    .map(|h| (format!("held {hold_pct}% -> {h}%"), Action::LateMessages { hold_pct: h, restart: *restart }))
                    .collect();
                if *restart {
                    v.push(("no restart".to_string(), Action::LateMessages { hold_pct: *hold_pct, restart: false }));
                }
                v
            }
            Action::LeaderReturns { hold_pct } => fewer(*hold_pct)
                .into_iter()
                .filter(|h| h < hold_pct)
                .map(|h| (format!("held {hold_pct}% -> {h}%"), Action::LeaderReturns { hold_pct: h }))
                .collect(),
            _ => Vec::new(),
        };
        for (what, action) in simpler {
            let mut v = ev.clone();
            v[i] = NemesisEvent { at_ms: e.at_ms, action };
            out.push((format!("event {i} ({}): {what}", e.action.kind()), with_events(s, v)));
        }
    }
    out
}

/// Keeps the event's servers below `n`; None if nothing meaningful is left.
fn restrict(e: &NemesisEvent, n: usize) -> Option<NemesisEvent> {
    let keep = |v: &Vec<usize>| v.iter().copied().filter(|x| *x < n).collect::<Vec<_>>();
    let action = match &e.action {
        Action::Partition { a, b } => {
            let (a, b) = (keep(a), keep(b));
            if a.is_empty() || b.is_empty() {
                return None;
            }
            Action::Partition { a, b }
        }
        Action::Bridge { bridge, a, b } => {
            let (a, b) = (keep(a), keep(b));
            if a.is_empty() || b.is_empty() {
                return None;
            }
            if *bridge < n {
                Action::Bridge { bridge: *bridge, a, b }
            } else {
                Action::Partition { a, b }
            }
        }
        Action::CutOneWay { links } => {
            let links: Vec<(usize, usize)> = links.iter().copied().filter(|(x, y)| *x < n && *y < n).collect();
            if links.is_empty() {
                return None;
            }
            Action::CutOneWay { links }
        }
        Action::Crash { server } | Action::Restart { server } | Action::Pause { server, .. } if *server >= n => return None,
        a => a.clone(),
    };
    Some(NemesisEvent { at_ms: e.at_ms, action })
}

fn server_cands(s: &RunSpec, _: &RunReport) -> Vec<(String, RunSpec)> {
    if !matches!(s.workload, Workload::Swarm { .. }) {
        return Vec::new();
    }
    [3usize, 5]
        .into_iter()
        .filter(|t| *t < s.servers)
        .map(|t| {
            let mut n = s.clone();
            n.servers = t;
            if let Some(ev) = &mut n.nemesis {
                *ev = ev.iter().filter_map(|e| restrict(e, t)).collect();
            }
            (format!("servers {} -> {t}", s.servers), n)
        })
        .collect()
}

fn key_cands(s: &RunSpec, _: &RunReport) -> Vec<(String, RunSpec)> {
    let Workload::Swarm { keys, run_ms, ops_per_client } = &s.workload else { return Vec::new() };
    smaller(*keys, vec![1, 2, keys / 2])
        .into_iter()
        .map(|t| {
            let mut n = s.clone();
            n.workload = Workload::Swarm { keys: t, run_ms: *run_ms, ops_per_client: *ops_per_client };
            (format!("keys {keys} -> {t}"), n)
        })
        .collect()
}

fn generic_cands(s: &RunSpec, _: &RunReport) -> Vec<(String, RunSpec)> {
    let Workload::Generic { iterations, round_ms, random_keys, restarts, inline_checks } = &s.workload else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if *restarts {
        let mut n = s.clone();
        n.workload = Workload::Generic {
            iterations: *iterations,
            round_ms: *round_ms,
            random_keys: *random_keys,
            restarts: false,
            inline_checks: *inline_checks,
        };
        out.push(("restarts between rounds off".to_string(), n));
    }
    if s.partition != PartitionStyle::None {
        let mut n = s.clone();
        n.partition = PartitionStyle::None;
        out.push((format!("partitions {} -> none", s.partition.name()), n));
    }
    out
}

/// Shrinks the failing run `spec`. Errors if it does not fail.
pub fn shrink(spec: &RunSpec, opts: &ShrinkOptions, progress: &dyn Fn(&str)) -> Result<ShrinkOutcome, String> {
    // The explicit schedule behaves exactly as the generated one, and its
    // events can be removed one by one.
    let original = nemesis::materialize(spec);
    let first = run_all(std::slice::from_ref(&original), 1, &RunOptions::limit(opts.time_limit), &|_| {}).remove(0);
    let Some(failure) = first.failure.clone() else {
        return Err(format!(
            "{} seed {} passes ({}); there is no failure to shrink",
            spec.scenario, spec.seed, first.mix
        ));
    };
    let class = failure.class.clone();
    progress(&format!("original: {} -> {} ({} ops)", first.mix, failure.to_string().chars().take(100).collect::<String>(), first.ops));
    let mut search = Search {
        opts,
        class: class.clone(),
        runs: 1,
        cur: original.clone(),
        cur_report: first.clone(),
        steps: Vec::new(),
        progress,
    };
    loop {
        let a = search.ddmin_events();
        let b = search.reduce_once();
        if !(a || b) || search.left() == 0 {
            break;
        }
    }
    // With an explicit schedule the style and rate only describe it: make
    // them say what is left.
    let mut shrunk = search.cur;
    if let Some(ev) = shrunk.nemesis.clone() {
        if !ev.iter().any(|e| matches!(e.action, Action::Crash { .. })) {
            shrunk.crash_rate = 0.0;
        }
        if ev.iter().all(|e| matches!(e.action, Action::Crash { .. } | Action::Restart { .. } | Action::Heal)) {
            shrunk.partition = PartitionStyle::None;
        }
        if !ev.iter().any(|e| e.action.is_targeted()) {
            shrunk.targeted_rate = 0.0;
        }
    }
    Ok(ShrinkOutcome {
        original,
        original_report: first,
        class,
        shrunk,
        shrunk_report: search.cur_report,
        runs: search.runs,
        budget: opts.budget,
        steps: search.steps,
    })
}
