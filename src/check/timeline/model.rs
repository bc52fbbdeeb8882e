//! The timeline as data: everything the page draws, laid out on its charts,
//! with no HTML in it. [`build_timeline`] makes it from a history and its
//! verdict; the `html` module beside it draws it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use super::world::{secs, Leadership, Mark, MarkKind, Note, ServerLane, Span, SpanKind, World};
use crate::check::checker::{Failure, Verdict};
use crate::check::history::{kinds, History, Op, Role};

/// At most this many ops are drawn in the overview (the failing key's are
/// always drawn).
pub const OVERVIEW_MAX_OPS: usize = 20_000;
/// At most this many ops of the failing key are drawn in the detail view.
pub const DETAIL_MAX_OPS: usize = 3_000;
/// At most this many prefix entries are listed.
pub const PREFIX_MAX: usize = 5_000;
/// Approximate width of one character of a tick label (10 px font), px.
pub const TICK_CHAR_W: f64 = 6.2;
/// Width of one distinct time in the detail view, px.
const DETAIL_UNIT: f64 = 18.0;

/// Everything the timeline page shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    pub title: String,
    pub summary: Summary,
    /// The run spec that produced the history, as pretty JSON.
    pub spec: Option<String>,
    /// What happened around the clients over the whole run; `None` when the
    /// history has no events.
    pub world: Option<World>,
    /// The failing key on its own, when the history is not linearizable.
    pub detail: Option<DetailView>,
    pub overview: Overview,
}

/// The table at the top of the page.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    pub ops: usize,
    pub pending: usize,
    pub clients: usize,
    pub keys: usize,
    /// Counts of the world's events, when the history has any.
    pub world: Option<WorldCounts>,
    /// Why it is not linearizable; `None` when it is.
    pub failure: Option<FailureSummary>,
    pub states_explored: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorldCounts {
    pub events: usize,
    pub servers: usize,
    pub partitions_or_cuts: usize,
    pub crashes: usize,
    pub terms_with_a_leader: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FailureSummary {
    /// The first failing key ("" if the verdict names none).
    pub key: String,
    /// Every failing key, when there is more than one.
    pub all_keys: Vec<String>,
    /// How far the search got on the key, when the verdict says.
    pub search: Option<SearchSummary>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SearchSummary {
    pub linearized: usize,
    pub key_ops: usize,
    pub states_explored: u64,
    /// The op that could not be linearized (its id and the op).
    pub stuck: Option<(usize, Op)>,
}

/// The failing key's ops, in time compressed to the order of their calls
/// and returns, and the longest prefix the search linearized.
#[derive(Clone, Debug, PartialEq)]
pub struct DetailView {
    pub key: String,
    /// Ops of the key in the verdict, and how many of them are drawn.
    pub key_ops: usize,
    pub shown: usize,
    pub chart: Chart,
    /// The linearized prefix (id and op, in order), at most [`PREFIX_MAX`].
    pub prefix: Vec<(usize, Op)>,
    /// Its full length.
    pub prefix_len: usize,
    /// The op after it that could not be placed.
    pub stuck: Option<(usize, Op)>,
}

/// Every op (up to [`OVERVIEW_MAX_OPS`]) over virtual time.
#[derive(Clone, Debug, PartialEq)]
pub struct Overview {
    pub ops: usize,
    /// How many are drawn.
    pub shown: usize,
    /// Whether there were too many to draw them all (more than
    /// [`OVERVIEW_MAX_OPS`]).
    pub capped: bool,
    /// `None` when there is nothing to draw (no ops, no events).
    pub chart: Option<Chart>,
}

/// Which chart (each has its own zoom).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChartId {
    Detail,
    Overview,
}

impl ChartId {
    pub fn as_str(self) -> &'static str {
        match self {
            ChartId::Detail => "detail",
            ChartId::Overview => "overview",
        }
    }
}

/// One chart: a time axis, the world's lanes (if any), a lane per client.
/// x is in chart units from the chart's left edge (the page scales them
/// when zoomed).
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub id: ChartId,
    /// The virtual time it covers.
    pub from_ns: u64,
    pub to_ns: u64,
    pub width: f64,
    pub scale: TimeScale,
    pub ticks: Vec<Tick>,
    /// The world over the chart's time (clipped to it in the detail view).
    pub world: Option<World>,
    /// By client id.
    pub lanes: Vec<ClientLane>,
}

impl Chart {
    /// The x of virtual time `t`.
    pub fn x(&self, t: u64) -> f64 {
        self.scale.x(t)
    }
}

/// How a chart maps virtual time to x.
#[derive(Clone, Debug, PartialEq)]
pub enum TimeScale {
    /// `(t - t0) * per_ns`.
    Linear { t0: u64, per_ns: f64 },
    /// The rank of t among `times` (sorted, distinct) times `unit`; times
    /// after the last are at `end_rank`.
    Ranked { times: Vec<u64>, unit: f64, end_rank: f64 },
}

impl TimeScale {
    pub fn x(&self, t: u64) -> f64 {
        match self {
            TimeScale::Linear { t0, per_ns } => t.saturating_sub(*t0) as f64 * per_ns,
            TimeScale::Ranked { times, unit, end_rank } => {
                if t > times.last().copied().unwrap_or(0) {
                    end_rank * unit
                } else {
                    times.partition_point(|&x| x < t) as f64 * unit
                }
            }
        }
    }
}

/// A tick of the time axis; `shown` is false for one whose label would
/// overlap the one before.
#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    pub x: f64,
    pub label: String,
    pub shown: bool,
}

/// A client's lane.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientLane {
    pub client: u64,
    pub bars: Vec<Bar>,
}

/// An op, as a bar from its call to its return.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// Its id (index in the history).
    pub id: usize,
    pub op: Op,
    pub x: f64,
    pub dx: f64,
    /// Open-ended: never returned.
    pub pending: bool,
    pub key: KeyMark,
    /// The op the search could not linearize.
    pub stuck: bool,
    /// Its position in the linearized prefix.
    pub order: Option<usize>,
}

/// How a bar stands to the failing key (in the overview).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMark {
    /// No failing key, or the detail view (all of one key).
    Plain,
    /// On the failing key.
    Failing,
    /// On another key, while one fails.
    Other,
}

/// The timeline of `history` checked with result `verdict`: the data the
/// page draws ([`super::render_timeline_html`] is this, drawn). Needs no
/// more than the history and the verdict; deterministic (no clock, ordered
/// maps); any history draws, however odd its events.
pub fn build_timeline(history: &History, verdict: &Verdict) -> Timeline {
    let ops = &history.ops;
    let end = ops
        .iter()
        .map(|o| o.return_ns.unwrap_or(o.call_ns).max(o.call_ns))
        .chain(history.events.iter().map(|e| e.at_ns))
        .max()
        .unwrap_or(0);
    let servers: BTreeSet<u64> = ops.iter().filter_map(|o| o.server).chain(history.events.iter().filter_map(|e| e.server)).collect();
    let world = (!history.events.is_empty()).then(|| World::build(&history.events, &servers, end));
    let order: HashMap<usize, usize> =
        verdict.detail.as_ref().map(|d| d.linearized_prefix.iter().enumerate().map(|(k, &id)| (id, k)).collect()).unwrap_or_default();
    let stuck = verdict.detail.as_ref().and_then(|d| d.stuck_op);
    let detail = match (verdict.detail.as_ref(), verdict.failing_key.as_deref()) {
        (Some(d), Some(fk)) => Some(detail_view(ops, d, fk, &order, world.as_ref())),
        _ => None,
    };
    let marks = Marks { failing_key: verdict.failing_key.as_deref(), order: &order, stuck };
    Timeline {
        title: format!("kvraft history: {}", history.scenario),
        summary: summary(history, verdict, servers.len()),
        spec: history.spec.as_ref().map(|s| serde_json::to_string_pretty(s).unwrap_or_default()),
        overview: overview(ops, &marks, world.as_ref(), end),
        detail,
        world,
    }
}

fn summary(history: &History, verdict: &Verdict, servers: usize) -> Summary {
    let ops = &history.ops;
    let events = &history.events;
    let world = (!events.is_empty()).then(|| WorldCounts {
        events: events.len(),
        servers,
        partitions_or_cuts: events.iter().filter(|e| e.kind == kinds::PARTITION || e.kind == kinds::CUT).count(),
        crashes: events.iter().filter(|e| e.kind == kinds::CRASH).count(),
        terms_with_a_leader: events
            .iter()
            .filter(|e| e.kind == kinds::ROLE && e.role == Some(Role::Leader))
            .filter_map(|e| e.term)
            .collect::<BTreeSet<u64>>()
            .len(),
    });
    let failure = (!verdict.linearizable).then(|| FailureSummary {
        key: verdict.failing_key.clone().unwrap_or_default(),
        all_keys: if verdict.failing_keys.len() > 1 { verdict.failing_keys.clone() } else { Vec::new() },
        search: verdict.detail.as_ref().map(|d| SearchSummary {
            linearized: d.linearized_prefix.len(),
            key_ops: d.ops.len(),
            states_explored: d.states_explored,
            stuck: d.stuck_op.and_then(|s| ops.get(s).map(|o| (s, o.clone()))),
        }),
    });
    Summary {
        scenario: history.scenario.clone(),
        seed: history.seed,
        ops: ops.len(),
        pending: ops.iter().filter(|o| o.return_ns.is_none()).count(),
        clients: ops.iter().map(|o| o.client).collect::<BTreeSet<_>>().len(),
        keys: ops.iter().map(|o| o.key.as_str()).collect::<BTreeSet<_>>().len(),
        world,
        failure,
        states_explored: verdict.states_explored,
    }
}

/// What marks a bar beyond its op: the failing key, its place in the
/// linearized prefix, whether it is the stuck op.
struct Marks<'a> {
    failing_key: Option<&'a str>,
    order: &'a HashMap<usize, usize>,
    stuck: Option<usize>,
}

/// Bars into lanes, by client.
fn lanes(bars: Vec<Bar>) -> Vec<ClientLane> {
    let mut by: BTreeMap<u64, Vec<Bar>> = BTreeMap::new();
    for b in bars {
        by.entry(b.op.client).or_default().push(b);
    }
    by.into_iter().map(|(client, bars)| ClientLane { client, bars }).collect()
}

/// Marks which tick labels fit after the previous shown one.
fn thin_ticks(cands: Vec<(f64, String)>) -> Vec<Tick> {
    let mut right = f64::MIN;
    cands
        .into_iter()
        .map(|(x, label)| {
            let shown = x >= right + 8.0;
            if shown {
                right = x + label.chars().count() as f64 * TICK_CHAR_W + 4.0;
            }
            Tick { x, label, shown }
        })
        .collect()
}

/// The failing key in event-order time.
fn detail_view(ops: &[Op], d: &Failure, fk: &str, order: &HashMap<usize, usize>, world: Option<&World>) -> DetailView {
    let shown: Vec<usize> = d.ops.iter().copied().filter(|&i| i < ops.len()).take(DETAIL_MAX_OPS).collect();
    // Time compressed to the rank of distinct call and return times.
    let mut times: Vec<u64> = Vec::new();
    for &i in &shown {
        times.push(ops[i].call_ns);
        if let Some(r) = ops[i].return_ns {
            times.push(r);
        }
    }
    times.sort_unstable();
    times.dedup();
    let unit = DETAIL_UNIT;
    let rank = |t: u64| times.partition_point(|&x| x < t) as f64;
    let end_rank = times.len() as f64 + 3.0;
    let bars: Vec<Bar> = shown
        .iter()
        .map(|&i| {
            let o = &ops[i];
            let x = rank(o.call_ns);
            let x2 = match o.return_ns {
                Some(r) => rank(r) + 1.0,
                None => end_rank,
            };
            let (pending, stuck) = (o.return_ns.is_none(), Some(i) == d.stuck_op);
            Bar { id: i, op: o.clone(), x: x * unit, dx: (x2 - x) * unit - 2.0, pending, key: KeyMark::Plain, stuck, order: order.get(&i).copied() }
        })
        .collect();
    // Every distinct time is a tick candidate (to 0.1 ms).
    let ticks = thin_ticks(times.iter().enumerate().map(|(k, t)| (k as f64 * unit, secs(*t, 4))).collect());
    let (first, last) = (times.first().copied().unwrap_or(0), times.last().copied().unwrap_or(0));
    let chart = Chart {
        id: ChartId::Detail,
        from_ns: first,
        to_ns: last,
        width: end_rank * unit,
        scale: TimeScale::Ranked { times, unit, end_rank },
        ticks,
        world: world.map(|w| w.clip(first, last)),
        lanes: lanes(bars),
    };
    let stuck = d.stuck_op.and_then(|s| ops.get(s).map(|o| (s, o.clone())));
    let prefix = d.linearized_prefix.iter().take(PREFIX_MAX).filter_map(|&id| ops.get(id).map(|o| (id, o.clone()))).collect();
    DetailView { key: fk.to_string(), key_ops: d.ops.len(), shown: shown.len(), chart, prefix, prefix_len: d.linearized_prefix.len(), stuck }
}

/// The ops the overview draws: all, or when too many, all of the failing
/// key's, then the earliest others.
fn overview_ops(ops: &[Op], failing_key: Option<&str>) -> Vec<usize> {
    if ops.len() <= OVERVIEW_MAX_OPS {
        return (0..ops.len()).collect();
    }
    let mut chosen: Vec<usize> = (0..ops.len()).filter(|&i| Some(ops[i].key.as_str()) == failing_key).collect();
    let room = OVERVIEW_MAX_OPS.saturating_sub(chosen.len());
    chosen.extend((0..ops.len()).filter(|&i| Some(ops[i].key.as_str()) != failing_key).take(room));
    chosen.sort_unstable();
    chosen
}

/// Everything over virtual time; with a world, from 0 to the end of the
/// run, else over the drawn ops.
fn overview(ops: &[Op], marks: &Marks, world: Option<&World>, end: u64) -> Overview {
    let chosen = overview_ops(ops, marks.failing_key);
    if chosen.is_empty() && world.is_none() {
        return Overview { ops: ops.len(), shown: 0, capped: false, chart: None };
    }
    let t0 = if world.is_some() { 0 } else { chosen.iter().map(|&i| ops[i].call_ns).min().unwrap_or(0) };
    let t1 = if world.is_some() {
        end
    } else {
        chosen.iter().map(|&i| ops[i].return_ns.unwrap_or(ops[i].call_ns).max(ops[i].call_ns)).max().unwrap_or(t0)
    };
    let span_ns = (t1 - t0).max(1) as f64 * 1.03;
    let clients = chosen.iter().map(|&i| ops[i].client).collect::<BTreeSet<_>>().len().max(1);
    let width = (chosen.len() as f64 / clients as f64 * 40.0).clamp(1200.0, 60000.0);
    let scale = width / span_ns;
    let bars: Vec<Bar> = chosen
        .iter()
        .map(|&i| {
            let o = &ops[i];
            let x = (o.call_ns - t0) as f64 * scale;
            let x2 = match o.return_ns {
                Some(r) => (r.max(o.call_ns) - t0) as f64 * scale,
                None => width,
            };
            let key = match marks.failing_key {
                Some(fk) if fk == o.key => KeyMark::Failing,
                Some(_) => KeyMark::Other,
                None => KeyMark::Plain,
            };
            let (pending, stuck, order) = (o.return_ns.is_none(), Some(i) == marks.stuck, marks.order.get(&i).copied());
            Bar { id: i, op: o.clone(), x, dx: x2 - x, pending, key, stuck, order }
        })
        .collect();
    let chart = Chart {
        id: ChartId::Overview,
        from_ns: t0,
        to_ns: t1,
        width,
        scale: TimeScale::Linear { t0, per_ns: scale },
        ticks: overview_ticks(t0, span_ns, scale),
        world: world.cloned(),
        lanes: lanes(bars),
    };
    Overview { ops: ops.len(), shown: chosen.len(), capped: ops.len() > OVERVIEW_MAX_OPS, chart: Some(chart) }
}

/// Tick candidates on round times, close enough that labels still follow
/// each other when zoomed in 4 times; the page shows only those that do
/// not overlap the one before, at every zoom.
fn overview_ticks(t0: u64, span_ns: f64, scale: f64) -> Vec<Tick> {
    let label_w = 10.0 * TICK_CHAR_W + 8.0;
    let step = nice_step((label_w / (scale * 4.0)).max(1.0));
    let digits = digits_for(step);
    let mut ticks = Vec::new();
    let mut k = 0u64;
    while (k as f64 * step) <= span_ns && ticks.len() < 20_000 {
        let t = t0 as f64 + k as f64 * step;
        ticks.push(((t - t0 as f64) * scale, secs(t.round() as u64, digits)));
        k += 1;
    }
    thin_ticks(ticks)
}

/// A "nice" step (1, 2 or 5 times a power of ten) of at least `min`.
fn nice_step(min: f64) -> f64 {
    let p = 10f64.powf(min.max(1e-9).log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= min {
            return m * p;
        }
    }
    10.0 * p
}

/// Decimals that tell ticks `step_ns` apart, in seconds.
fn digits_for(step_ns: f64) -> usize {
    let d = -(step_ns / 1e9).log10().floor();
    d.clamp(0.0, 9.0) as usize
}
