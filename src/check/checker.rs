//! A complete linearizability checker for the key/value model.
//!
//! # Model
//! `put(k, v)` sets the value of `k`, `append(k, a)` appends `a` to it (a
//! missing key is `""`), `get(k)` returns it. A history is linearizable when
//! some total order of its ops, consistent with real time (A before B when A
//! returned before B was called), makes every completed get return what the
//! sequential model says. A pending op (no return) may take effect at any
//! point after its call, or never; a pending get constrains nothing.
//!
//! # Algorithm
//! Keys are independent (linearizability is local), so each key is checked
//! on its own. Per key, the search is a depth-first search with memoisation
//! (in the spirit of Wing & Gong and Lowe) over the time-ordered list of call
//! and return events, but ops are linearized *just in time*: nothing is
//! decided at calls; at the return of an op `x` not yet linearized, the
//! search linearizes `x`, optionally preceded by other ops in flight
//! (called, not returned) or pending. Any linearization can be rearranged
//! into this form, so the search is complete. A node is (event index, model
//! state, in-flight ops already linearized, in-flight writes that may be
//! dropped, pending writes used, one flag). Choice points from which every
//! choice failed are remembered, so the search always ends with yes or no.
//!
//! What keeps it fast (every rule keeps the search sound and complete: a
//! choice is left out only when another choice that is explored is at least
//! as good):
//! * **Exact canonical states.** A state matters only through the get
//!   outputs it can still become. A value that is a prefix of some completed
//!   get output of the key is represented by the range of (sorted, distinct)
//!   outputs starting with it plus its length; every other value is the one
//!   state `DEAD` (no get can read it, appends keep it dead, only a put
//!   revives the key). Two values get the same state exactly when they are
//!   equal (or both dead); comparing with an output is O(1); no string is
//!   copied or hashed during the search.
//! * **Greedy gets.** A get in flight whose output equals the state is
//!   linearized at once: gets do not change the state, so doing them as
//!   early as possible is equivalent.
//! * **Erasable writes.** When a put is linearized, every in-flight write not
//!   yet linearized may later simply be dropped (placed just before that put,
//!   where nobody sees it) instead of taking effect: one node instead of one
//!   per subset of overwritten writes.
//! * **Useless choices are skipped.** An optional write (anything but the
//!   returning op) that makes the state dead; any put while an optional
//!   write is still unobserved (the flag: doing that write would have been
//!   pointless); a pending write identical to an in-flight one; all but one
//!   of identical in-flight writes; a pending write after the last get that
//!   could see its effect (it is then also forgotten, so nodes merge).
//! * **Early failure.** A node fails as soon as some in-flight get can no
//!   longer read its value (neither the state is a prefix of it nor is there
//!   a put left that writes a prefix of it), or, at a get's return, no
//!   sequence of the available writes could produce its value.
//! * **Memo with dominance.** A choice point fails if a failed one at the
//!   same event, state and linearized writes had satisfied at least its gets,
//!   kept at least its erasable writes, used at most its pending writes and
//!   was no more restricted by the flag. Only choice points are remembered,
//!   and only once all their choices failed, so a legal history costs about
//!   one pass and little memory.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use super::history::{Op, OpKind};

// ---------------------------------------------------------------------------
// Results

/// The outcome of checking a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub linearizable: bool,
    /// The first key (in sorted order) whose ops are not linearizable.
    pub failing_key: Option<String>,
    /// Details of the first failing key; `None` when linearizable.
    pub detail: Option<Failure>,
    /// Every key that is not linearizable (sorted).
    pub failing_keys: Vec<String>,
    /// Keys checked (keys with no completed get are trivially fine).
    pub keys_checked: usize,
    /// Search states explored over all keys.
    pub states_explored: u64,
}

/// Why a key is not linearizable, as far as the search got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub key: String,
    /// Ids (indices into the checked op slice) of every op on the key.
    pub ops: Vec<usize>,
    /// The longest sequence of ops of the key the search managed to
    /// linearize (op ids in linearization order).
    pub linearized_prefix: Vec<usize>,
    /// The op that could not be linearized at the end of that prefix: the
    /// one whose return was reached with no way to place it.
    pub stuck_op: Option<usize>,
    /// Search states explored for this key.
    pub states_explored: u64,
}

impl Verdict {
    /// A multi-line human-readable report (mentions ops by id and content).
    pub fn report(&self, ops: &[Op]) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        if self.linearizable {
            let _ = writeln!(s, "linearizable ({} keys, {} states explored)", self.keys_checked, self.states_explored);
            return s;
        }
        let _ =
            writeln!(s, "NOT linearizable: keys {:?} ({} states explored)", self.failing_keys, self.states_explored);
        if let Some(d) = &self.detail {
            let _ = writeln!(
                s,
                "key {:?}: {} ops; the search linearized at most {} of them ({} states):",
                d.key,
                d.ops.len(),
                d.linearized_prefix.len(),
                d.states_explored
            );
            for &id in &d.linearized_prefix {
                let _ = writeln!(s, "  #{id} {}", describe_op(&ops[id]));
            }
            if let Some(id) = d.stuck_op {
                let _ = writeln!(s, "then could not linearize #{id} {}", describe_op(&ops[id]));
            }
        }
        s
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.linearizable {
            write!(f, "linearizable")
        } else {
            write!(f, "NOT linearizable (key {:?})", self.failing_key.as_deref().unwrap_or(""))
        }
    }
}

/// One line describing an op, e.g. `client 3 append("k1", "x") [10, 25]`.
pub fn describe_op(op: &Op) -> String {
    let ret = match op.return_ns {
        Some(r) => r.to_string(),
        None => "pending".to_string(),
    };
    match op.kind {
        OpKind::Get => format!(
            "client {} get({:?}) -> {} [{}, {}]",
            op.client,
            op.key,
            match &op.output {
                Some(o) => format!("{o:?}"),
                None => "?".to_string(),
            },
            op.call_ns,
            ret
        ),
        k => format!("client {} {}({:?}, {:?}) [{}, {}]", op.client, k, op.key, op.value, op.call_ns, ret),
    }
}

/// Checks a history. Never gives up: the answer is always exact.
///
/// Ops need not be valid in the sense of
/// [`super::history::validate_ops`]: a get without output is treated as
/// pending (it constrains nothing) and a return before the call as a return at
/// the call.
pub fn check_history(ops: &[Op]) -> Verdict {
    check_history_impl(ops, false)
}

/// [`check_history`] using the general (more than 64 ops in flight) bit
/// sets whatever the concurrency; for testing that code path.
#[doc(hidden)]
pub fn check_history_wide(ops: &[Op]) -> Verdict {
    check_history_impl(ops, true)
}

fn check_history_impl(ops: &[Op], wide: bool) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (id, op) in ops.iter().enumerate() {
        by_key.entry(op.key.as_str()).or_default().push(id);
    }
    let mut verdict = Verdict {
        linearizable: true,
        failing_key: None,
        detail: None,
        failing_keys: Vec::new(),
        keys_checked: by_key.len(),
        states_explored: 0,
    };
    for (key, ids) in by_key {
        let r = check_key_impl(ops, &ids, wide);
        verdict.states_explored += r.explored;
        if !r.ok {
            verdict.linearizable = false;
            verdict.failing_keys.push(key.to_string());
            if verdict.detail.is_none() {
                verdict.failing_key = Some(key.to_string());
                verdict.detail = Some(Failure {
                    key: key.to_string(),
                    ops: ids.clone(),
                    linearized_prefix: r.prefix,
                    stuck_op: r.stuck,
                    states_explored: r.explored,
                });
            }
        }
    }
    verdict
}

/// The result of [`check_key`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyResult {
    /// Whether the ops are linearizable.
    pub ok: bool,
    /// Search states explored.
    pub explored: u64,
    /// Longest linearized prefix (op ids); empty when ok.
    pub prefix: Vec<usize>,
    /// The op that could not be linearized after that prefix.
    pub stuck: Option<usize>,
}

/// Checks the ops `ids` of `ops`, which must all be on the same key (the
/// key is not looked at: ops of several keys would be checked as one
/// register).
pub fn check_key(ops: &[Op], ids: &[usize]) -> KeyResult {
    check_key_impl(ops, ids, false)
}

fn check_key_impl(ops: &[Op], ids: &[usize], wide: bool) -> KeyResult {
    let prob = match Problem::build(ops, ids) {
        Some(p) => p,
        None => return KeyResult { ok: true, explored: 0, prefix: Vec::new(), stuck: None },
    };
    let words = (prob.max_slots as usize).div_ceil(64).max(1);
    let (ok, explored, prefix, stuck) = if words == 1 && !wide {
        Search::<u64>::new(&prob, 1).run()
    } else {
        Search::<BigMask>::new(&prob, words).run()
    };
    let map = |v: Vec<u32>| v.into_iter().map(|k| prob.ids[k as usize]).collect::<Vec<_>>();
    KeyResult {
        ok,
        explored,
        prefix: if ok { Vec::new() } else { map(prefix) },
        stuck: stuck.map(|k| prob.ids[k as usize]),
    }
}

// ---------------------------------------------------------------------------
// A fast hasher for the search's small integer keys.

#[derive(Default, Clone, Copy)]
struct Fx(u64);

const FX_K: u64 = 0xf135_7aea_2e62_a9c5;

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        let rd = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
        if n >= 8 {
            let mut i = 0;
            while i + 8 < n {
                self.write_u64(rd(i));
                i += 8;
            }
            // The last 8 bytes (overlapping the previous chunk if needed).
            self.write_u64(rd(n - 8));
        } else if n >= 4 {
            let lo = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as u64;
            let hi = u32::from_le_bytes(bytes[n - 4..].try_into().unwrap()) as u64;
            self.write_u64(lo | hi << 32);
        } else if n > 0 {
            let v = bytes[0] as u64 | (bytes[n / 2] as u64) << 8 | (bytes[n - 1] as u64) << 16;
            self.write_u64(v);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64)
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64)
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(FX_K);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // Fold the high bits down: hashbrown uses both ends of the hash.
        (self.0 ^ (self.0 >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (self.0 >> 32)
    }
}

type FxBuild = BuildHasherDefault<Fx>;
type FxMap<K, V> = HashMap<K, V, FxBuild>;

// ---------------------------------------------------------------------------
// Bit sets over the "slots" of in-flight completed ops.

trait Mask: Clone + Eq + Hash + fmt::Debug {
    fn zero(words: usize) -> Self;
    fn get(&self, i: u32) -> bool;
    fn set(&mut self, i: u32);
    fn clear(&mut self, i: u32);
    /// Sets every bit of `other` not yet set, calling `f` for each.
    fn absorb(&mut self, other: &Self, f: impl FnMut(u32)) -> bool;
    /// Calls `f` for every bit of `self` not in `minus`.
    fn each_minus(&self, minus: &Self, f: impl FnMut(u32));
    /// Whether `self` has a bit outside `minus` other than `except`.
    fn any_minus(&self, minus: &Self, except: u32) -> bool;
    /// `self |= a & !b`.
    fn or_minus(&mut self, a: &Self, b: &Self);
    fn and(&self, other: &Self) -> Self;
    /// Whether every bit of `other` is in `self`.
    fn contains_all(&self, other: &Self) -> bool;
}

impl Mask for u64 {
    #[inline]
    fn zero(_: usize) -> Self {
        0
    }
    #[inline]
    fn get(&self, i: u32) -> bool {
        *self >> i & 1 == 1
    }
    #[inline]
    fn set(&mut self, i: u32) {
        *self |= 1 << i
    }
    #[inline]
    fn clear(&mut self, i: u32) {
        *self &= !(1 << i)
    }
    #[inline]
    fn absorb(&mut self, other: &Self, mut f: impl FnMut(u32)) -> bool {
        let mut new = *other & !*self;
        if new == 0 {
            return false;
        }
        *self |= new;
        while new != 0 {
            f(new.trailing_zeros());
            new &= new - 1;
        }
        true
    }
    #[inline]
    fn each_minus(&self, minus: &Self, mut f: impl FnMut(u32)) {
        let mut m = *self & !*minus;
        while m != 0 {
            f(m.trailing_zeros());
            m &= m - 1;
        }
    }
    #[inline]
    fn any_minus(&self, minus: &Self, except: u32) -> bool {
        let ex = if except < 64 { 1u64 << except } else { 0 };
        *self & !*minus & !ex != 0
    }
    #[inline]
    fn or_minus(&mut self, a: &Self, b: &Self) {
        *self |= *a & !*b
    }
    #[inline]
    fn and(&self, other: &Self) -> Self {
        *self & *other
    }
    #[inline]
    fn contains_all(&self, other: &Self) -> bool {
        *other & !*self == 0
    }
}

/// A bit set for keys with more than 64 ops in flight at once.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct BigMask(Box<[u64]>);

impl Mask for BigMask {
    fn zero(words: usize) -> Self {
        BigMask(vec![0; words].into_boxed_slice())
    }
    fn get(&self, i: u32) -> bool {
        self.0[(i / 64) as usize] >> (i % 64) & 1 == 1
    }
    fn set(&mut self, i: u32) {
        self.0[(i / 64) as usize] |= 1 << (i % 64)
    }
    fn clear(&mut self, i: u32) {
        self.0[(i / 64) as usize] &= !(1 << (i % 64))
    }
    fn absorb(&mut self, other: &Self, mut f: impl FnMut(u32)) -> bool {
        let mut any = false;
        for (w, (a, b)) in self.0.iter_mut().zip(other.0.iter()).enumerate() {
            let mut new = *b & !*a;
            *a |= new;
            while new != 0 {
                any = true;
                f(w as u32 * 64 + new.trailing_zeros());
                new &= new - 1;
            }
        }
        any
    }
    fn each_minus(&self, minus: &Self, mut f: impl FnMut(u32)) {
        for (w, (a, b)) in self.0.iter().zip(minus.0.iter()).enumerate() {
            let mut m = *a & !*b;
            while m != 0 {
                f(w as u32 * 64 + m.trailing_zeros());
                m &= m - 1;
            }
        }
    }
    fn any_minus(&self, minus: &Self, except: u32) -> bool {
        self.0.iter().zip(minus.0.iter()).enumerate().any(|(w, (a, b))| {
            let ex = if except / 64 == w as u32 { 1u64 << (except % 64) } else { 0 };
            *a & !*b & !ex != 0
        })
    }
    fn or_minus(&mut self, a: &Self, b: &Self) {
        for ((s, a), b) in self.0.iter_mut().zip(a.0.iter()).zip(b.0.iter()) {
            *s |= *a & !*b;
        }
    }
    fn and(&self, other: &Self) -> Self {
        BigMask(self.0.iter().zip(other.0.iter()).map(|(a, b)| a & b).collect())
    }
    fn contains_all(&self, other: &Self) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| b & !a == 0)
    }
}

// ---------------------------------------------------------------------------
// The per-key problem.

const DEAD: u32 = 0;
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Event {
    /// Local op index.
    op: u32,
    ret: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Get,
    Put,
    Append,
}

/// The static description of one key's ops.
struct Problem<'a> {
    /// Local op index -> global op id.
    ids: Vec<usize>,
    kind: Vec<Kind>,
    /// Value id of writes (index into `values`); NONE for gets.
    val: Vec<u32>,
    /// Target state of completed gets; NONE otherwise.
    target: Vec<u32>,
    /// Slot of completed ops; NONE for pending ones.
    slot: Vec<u32>,
    /// Index of the return event of completed ops; NONE for pending ones.
    ret_idx: Vec<u32>,
    /// Index of the call event of each op.
    call_idx: Vec<u32>,
    /// Pending-write class; NONE for completed ops.
    pclass: Vec<u32>,
    events: Vec<Event>,
    max_slots: u32,
    /// Pending classes: kind and value, ops in call order.
    class_kind: Vec<Kind>,
    class_val: Vec<u32>,
    class_ops: Vec<Vec<u32>>,
    /// Distinct values written.
    values: Vec<&'a [u8]>,
    /// Whether some put writes the value.
    value_is_put: Vec<bool>,
    /// The rank of the value among the outputs, if it is one.
    value_out: Vec<u32>,
    /// Distinct completed-get outputs, sorted.
    outs: Vec<&'a [u8]>,
}

impl<'a> Problem<'a> {
    /// `None` when the key trivially passes (no completed get).
    fn build(ops: &'a [Op], ids: &[usize]) -> Option<Problem<'a>> {
        let n = ids.len();
        let mut p = Problem {
            ids: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            val: Vec::with_capacity(n),
            target: Vec::with_capacity(n),
            slot: Vec::new(),
            ret_idx: Vec::new(),
            call_idx: Vec::new(),
            pclass: Vec::new(),
            events: Vec::with_capacity(n * 2),
            max_slots: 0,
            class_kind: Vec::new(),
            class_val: Vec::new(),
            class_ops: Vec::new(),
            values: Vec::new(),
            value_is_put: Vec::new(),
            value_out: Vec::new(),
            outs: Vec::new(),
        };
        // One pass over the ops: distinct outputs (first-seen order, for
        // now), distinct values, events.
        let mut out_ids: FxMap<&[u8], u32> = FxMap::default();
        let mut value_ids: FxMap<&[u8], u32> = FxMap::default();
        let mut pending: Vec<bool> = Vec::with_capacity(n);
        // (time, is_return, local op)
        let mut evs: Vec<(u64, bool, u32)> = Vec::with_capacity(n * 2);
        for &id in ids {
            let op = &ops[id];
            let local = p.ids.len() as u32;
            match op.kind {
                OpKind::Get => {
                    let (Some(_), Some(o)) = (op.return_ns, op.output.as_deref()) else {
                        continue; // a pending get constrains nothing
                    };
                    let o = o.as_bytes();
                    let next = p.outs.len() as u32;
                    let t = *out_ids.entry(o).or_insert_with(|| {
                        p.outs.push(o);
                        next
                    });
                    p.kind.push(Kind::Get);
                    p.val.push(NONE);
                    p.target.push(t);
                }
                k => {
                    let v = op.value.as_bytes();
                    let next = p.values.len() as u32;
                    let vid = *value_ids.entry(v).or_insert_with(|| {
                        p.values.push(v);
                        p.value_is_put.push(false);
                        next
                    });
                    let kind = if k == OpKind::Put { Kind::Put } else { Kind::Append };
                    if kind == Kind::Put {
                        p.value_is_put[vid as usize] = true;
                    }
                    p.kind.push(kind);
                    p.val.push(vid);
                    p.target.push(NONE);
                }
            }
            p.ids.push(id);
            pending.push(op.return_ns.is_none());
            evs.push((op.call_ns, false, local));
            if let Some(r) = op.return_ns {
                evs.push((r.max(op.call_ns), true, local));
            }
        }
        if p.outs.is_empty() {
            return None;
        }
        // Sort the outputs; targets become rank + 1 (the state ids of the
        // outputs themselves, interned first by the model).
        let mut order: Vec<u32> = (0..p.outs.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| p.outs[a as usize].cmp(p.outs[b as usize]));
        let mut rank = vec![0u32; p.outs.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i as usize] = r as u32;
        }
        p.outs = order.iter().map(|&i| p.outs[i as usize]).collect();
        for t in p.target.iter_mut() {
            if *t != NONE {
                *t = rank[*t as usize] + 1;
            }
        }
        p.value_out = p.values.iter().map(|v| out_ids.get(v).map_or(NONE, |&i| rank[i as usize])).collect();
        let n = p.ids.len();
        p.slot = vec![NONE; n];
        p.pclass = vec![NONE; n];
        // Calls before returns at equal times (such ops overlap).
        evs.sort_unstable();
        // Slots for completed ops, classes for pending writes.
        let mut free: std::collections::BinaryHeap<std::cmp::Reverse<u32>> = Default::default();
        let mut next_slot = 0u32;
        let mut classes: FxMap<(Kind, u32), u32> = FxMap::default();
        for &(_, ret, local) in &evs {
            let l = local as usize;
            if pending[l] {
                let key = (p.kind[l], p.val[l]);
                let n = classes.len() as u32;
                let c = *classes.entry(key).or_insert(n);
                if c == n {
                    p.class_kind.push(p.kind[l]);
                    p.class_val.push(p.val[l]);
                    p.class_ops.push(Vec::new());
                }
                p.class_ops[c as usize].push(local);
                p.pclass[l] = c;
            } else if !ret {
                let s = match free.pop() {
                    Some(std::cmp::Reverse(s)) => s,
                    None => {
                        next_slot += 1;
                        next_slot - 1
                    }
                };
                p.slot[l] = s;
            } else {
                free.push(std::cmp::Reverse(p.slot[l]));
            }
            p.events.push(Event { op: local, ret });
        }
        p.max_slots = next_slot;
        p.ret_idx = vec![NONE; p.ids.len()];
        p.call_idx = vec![NONE; p.ids.len()];
        for (i, e) in p.events.iter().enumerate() {
            if e.ret {
                p.ret_idx[e.op as usize] = i as u32;
            } else {
                p.call_idx[e.op as usize] = i as u32;
            }
        }
        Some(p)
    }
}

// ---------------------------------------------------------------------------
// The model: canonical states.

#[derive(Clone, Copy, Debug)]
struct StateInfo {
    /// Outputs `outs[lo..hi]` are exactly those having this value as prefix.
    lo: u32,
    hi: u32,
    len: usize,
}

struct Model<'p> {
    outs: &'p [&'p [u8]],
    values: &'p [&'p [u8]],
    states: Vec<StateInfo>,
    intern: FxMap<(u32, usize), u32>,
    put_state: Vec<u32>,
    append_cache: FxMap<(u32, u32), u32>,
}

impl<'p> Model<'p> {
    fn new(prob: &'p Problem<'p>) -> Self {
        let outs = &prob.outs[..];
        let t = outs.len() as u32;
        let mut m = Model {
            outs,
            values: &prob.values,
            states: Vec::with_capacity(outs.len() * 2 + 2),
            intern: FxMap::default(),
            put_state: Vec::new(),
            append_cache: FxMap::default(),
        };
        m.states.push(StateInfo { lo: 0, hi: 0, len: 0 }); // DEAD
                                                           // The outputs starting with outs[k] are outs[k..hi[k]]: close each
                                                           // when the first output not starting with it comes (a stack of
                                                           // nested prefixes, as the outputs are sorted).
        let mut hi = vec![t; outs.len()];
        let mut stack: Vec<usize> = Vec::new();
        for (j, o) in outs.iter().enumerate() {
            while let Some(&k) = stack.last() {
                if o.starts_with(outs[k]) {
                    break;
                }
                hi[k] = j as u32;
                stack.pop();
            }
            stack.push(j);
        }
        m.intern.reserve(outs.len() * 2);
        for (k, o) in outs.iter().enumerate() {
            m.intern.insert((k as u32, o.len()), k as u32 + 1);
            m.states.push(StateInfo { lo: k as u32, hi: hi[k], len: o.len() });
        }
        m.put_state = (0..prob.values.len())
            .map(|v| {
                if !prob.value_is_put[v] {
                    DEAD
                } else if prob.value_out[v] != NONE {
                    prob.value_out[v] + 1
                } else {
                    m.narrow_to_state(0, t, 0, prob.values[v])
                }
            })
            .collect();
        m
    }

    /// The state of value `prefix + needle`, where `outs[lo..hi]` are the
    /// outputs having `prefix` (of length `off`) as prefix.
    fn narrow_to_state(&mut self, lo: u32, hi: u32, off: usize, needle: &[u8]) -> u32 {
        let range = &self.outs[lo as usize..hi as usize];
        fn key(o: &[u8], off: usize, n: usize) -> &[u8] {
            let end = (off + n).min(o.len());
            &o[off.min(end)..end]
        }
        let nl = needle.len();
        let a = range.partition_point(|o| key(o, off, nl) < needle);
        let b = a + range[a..].partition_point(|o| key(o, off, nl) == needle);
        if a == b {
            return DEAD;
        }
        let (nlo, nhi, nlen) = (lo + a as u32, lo + b as u32, off + needle.len());
        let next = self.states.len() as u32;
        let id = *self.intern.entry((nlo, nlen)).or_insert(next);
        if id == next {
            self.states.push(StateInfo { lo: nlo, hi: nhi, len: nlen });
        }
        id
    }

    #[inline]
    fn apply(&mut self, s: u32, kind: Kind, v: u32) -> u32 {
        match kind {
            Kind::Get => s,
            Kind::Put => self.put_state[v as usize],
            Kind::Append => {
                if s == DEAD {
                    return DEAD;
                }
                if let Some(&n) = self.append_cache.get(&(s, v)) {
                    return n;
                }
                let st = self.states[s as usize];
                let needle = self.values[v as usize];
                let n = if needle.is_empty() { s } else { self.narrow_to_state(st.lo, st.hi, st.len, needle) };
                self.append_cache.insert((s, v), n);
                n
            }
        }
    }

    /// Whether state `s` (not DEAD) is a prefix of target state `t`'s value.
    #[inline]
    fn leads_to(&self, s: u32, t: u32) -> bool {
        if s == DEAD {
            return false;
        }
        let a = self.states[s as usize];
        let r = self.states[t as usize].lo;
        a.lo <= r && r < a.hi
    }
}

// ---------------------------------------------------------------------------
// Sets of used pending writes: per class, how many (earliest called first).

struct PendSets {
    sets: Vec<Box<[(u32, u32)]>>,
    map: FxMap<Box<[(u32, u32)]>, u32>,
    add: FxMap<(u32, u32), u32>,
    remove: FxMap<(u32, u32), u32>,
}

impl PendSets {
    fn new() -> Self {
        let empty: Box<[(u32, u32)]> = Box::new([]);
        let mut map = FxMap::default();
        map.insert(empty.clone(), 0);
        PendSets { sets: vec![empty], map, add: FxMap::default(), remove: FxMap::default() }
    }

    #[inline]
    fn used(&self, p: u32, c: u32) -> u32 {
        if p == 0 {
            return 0;
        }
        let s = &self.sets[p as usize];
        match s.binary_search_by_key(&c, |e| e.0) {
            Ok(i) => s[i].1,
            Err(_) => 0,
        }
    }

    fn intern(&mut self, v: Vec<(u32, u32)>) -> u32 {
        let b = v.into_boxed_slice();
        if let Some(&q) = self.map.get(&b) {
            return q;
        }
        let next = self.sets.len() as u32;
        self.map.insert(b.clone(), next);
        self.sets.push(b);
        next
    }

    fn add(&mut self, p: u32, c: u32) -> u32 {
        if let Some(&q) = self.add.get(&(p, c)) {
            return q;
        }
        let mut v: Vec<(u32, u32)> = self.sets[p as usize].to_vec();
        match v.binary_search_by_key(&c, |e| e.0) {
            Ok(i) => v[i].1 += 1,
            Err(i) => v.insert(i, (c, 1)),
        }
        let q = self.intern(v);
        self.add.insert((p, c), q);
        q
    }

    /// Forgets class `c` entirely.
    fn remove(&mut self, p: u32, c: u32) -> u32 {
        if self.used(p, c) == 0 {
            return p;
        }
        if let Some(&q) = self.remove.get(&(p, c)) {
            return q;
        }
        let v: Vec<(u32, u32)> = self.sets[p as usize].iter().copied().filter(|e| e.0 != c).collect();
        let q = self.intern(v);
        self.remove.insert((p, c), q);
        q
    }
}

// ---------------------------------------------------------------------------
// When each pending-write class stops mattering.

/// For each pending class: whether it can matter at all and the last event
/// (the return of the last get that could observe its effect) at which it
/// can. After that, its effect could only lead to states no get observes,
/// so using it is pointless and whether it was used is forgotten.
struct PendIndex<'p> {
    live: Vec<bool>,
    expire: Vec<u32>,
    /// Event index -> classes expiring there.
    expiring: FxMap<u32, Vec<u32>>,
    /// Distinct lengths of live pending append values.
    append_lens: Vec<usize>,
    append_by_value: FxMap<&'p [u8], u32>,
    /// Live pending put classes whose value is a prefix of the target, per
    /// target (filled lazily).
    put_for_target: FxMap<u32, Vec<u32>>,
}

impl<'p> PendIndex<'p> {
    fn new(p: &'p Problem<'p>, model: &Model<'p>) -> Self {
        let nc = p.class_kind.len();
        let mut ix = PendIndex {
            live: vec![false; nc],
            expire: vec![0; nc],
            expiring: FxMap::default(),
            append_lens: Vec::new(),
            append_by_value: FxMap::default(),
            put_for_target: FxMap::default(),
        };
        if nc == 0 {
            return ix;
        }
        // Latest return event of a get reading each output.
        let t = p.outs.len();
        let mut last_ret = vec![0u32; t];
        for k in 0..p.kind.len() {
            if p.kind[k] == Kind::Get {
                let r = (p.target[k] - 1) as usize;
                last_ret[r] = last_ret[r].max(p.ret_idx[k]);
            }
        }
        // Puts: the latest get reading a value that starts with the put's.
        let mut tree = vec![0u32; 2 * t];
        tree[t..].copy_from_slice(&last_ret);
        for i in (1..t).rev() {
            tree[i] = tree[2 * i].max(tree[2 * i + 1]);
        }
        let range_max = |mut l: usize, mut r: usize| {
            let mut m = 0;
            l += t;
            r += t;
            while l < r {
                if l & 1 == 1 {
                    m = m.max(tree[l]);
                    l += 1;
                }
                if r & 1 == 1 {
                    r -= 1;
                    m = m.max(tree[r]);
                }
                l /= 2;
                r /= 2;
            }
            m
        };
        for c in 0..nc {
            if p.class_kind[c] == Kind::Put {
                let st = model.put_state[p.class_val[c] as usize];
                if st != DEAD {
                    let info = model.states[st as usize];
                    ix.live[c] = true;
                    ix.expire[c] = range_max(info.lo as usize, info.hi as usize);
                }
            } else {
                let v = p.values[p.class_val[c] as usize];
                if !v.is_empty() {
                    ix.append_by_value.insert(v, c as u32);
                    if !ix.append_lens.contains(&v.len()) {
                        ix.append_lens.push(v.len());
                    }
                }
            }
        }
        // Appends: the latest get reading a value that contains the append's.
        if !ix.append_by_value.is_empty() {
            ix.append_lens.sort_unstable();
            let mut order: Vec<usize> = (0..t).collect();
            order.sort_unstable_by_key(|&r| std::cmp::Reverse(last_ret[r]));
            // Quick filter on (length, first byte, last byte).
            let mut filter = vec![0u64; ix.append_lens.len() * 1024];
            for v in ix.append_by_value.keys() {
                let li = ix.append_lens.binary_search(&v.len()).unwrap();
                let h = li * 65536 + (v[0] as usize) * 256 + v[v.len() - 1] as usize;
                filter[h / 64] |= 1 << (h % 64);
            }
            let mut remaining = ix.append_by_value.len();
            'outer: for r in order {
                let o = p.outs[r];
                for (li, &len) in ix.append_lens.iter().enumerate() {
                    if len > o.len() {
                        break;
                    }
                    for i in 0..=o.len() - len {
                        let h = li * 65536 + (o[i] as usize) * 256 + o[i + len - 1] as usize;
                        if filter[h / 64] >> (h % 64) & 1 == 0 {
                            continue;
                        }
                        if let Some(&c) = ix.append_by_value.get(&o[i..i + len]) {
                            if !ix.live[c as usize] {
                                ix.live[c as usize] = true;
                                ix.expire[c as usize] = last_ret[r];
                                remaining -= 1;
                                if remaining == 0 {
                                    break 'outer;
                                }
                            }
                        }
                    }
                }
            }
            ix.append_by_value.retain(|_, c| ix.live[*c as usize]);
            let mut lens: Vec<usize> = ix.append_by_value.keys().map(|v| v.len()).collect();
            lens.sort_unstable();
            lens.dedup();
            ix.append_lens = lens;
        }
        for c in 0..nc {
            if ix.live[c] {
                ix.expiring.entry(ix.expire[c]).or_default().push(c as u32);
            }
        }
        ix
    }
}

// ---------------------------------------------------------------------------
// The search.

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Node<M> {
    /// Next event to process.
    i: u32,
    state: u32,
    /// Used pending writes (a PendSets id).
    pend: u32,
    /// An optional write (one not forced by a return) was applied and
    /// nothing observed the state since: a put now would erase it unseen,
    /// which is never better than not applying it, so puts are barred.
    unobserved: bool,
    /// Slots of in-flight completed ops already linearized.
    lin: M,
    /// Slots of in-flight completed writes, not linearized, that were in
    /// flight when some put was linearized: each may still take effect, or
    /// be dropped (placed just before that put, where nothing sees it).
    erasable: M,
}

#[derive(Clone, Copy, Debug)]
enum Move {
    /// Linearize the returning op itself.
    Advance,
    /// Drop the returning op, which is erasable.
    Discard,
    /// Linearize the in-flight completed write in this slot.
    Write(u32),
    /// Use one pending write of this class.
    Pend(u32),
}

/// The puts writing one value (that is a prefix of some output).
struct PutGroup {
    state: u32,
    /// Completed puts in call order, and the latest return among each
    /// prefix of them.
    puts: Vec<u32>,
    max_ret: Vec<u32>,
    pending: Vec<u32>,
}

struct MemoEntry<M> {
    gets: M,
    erasable: M,
    pend: u32,
    unobserved: bool,
}

struct Frame<M> {
    node: Node<M>,
    lin_len: u32,
    start: u32,
    all_generated: bool,
    cursor: u32,
}

struct Search<'p, M: Mask> {
    p: &'p Problem<'p>,
    model: Model<'p>,
    ix: PendIndex<'p>,
    words: usize,
    // The in-flight situation at event index `idx`.
    idx: usize,
    inflight_writes: M,
    inflight_gets: M,
    gets_by_target: Vec<M>,
    /// Puts grouped by value (only values that are a prefix of some output).
    put_groups: Vec<PutGroup>,
    /// Per target (by rank): the groups whose value is a prefix of it
    /// (empty when too big to keep; then `put_check` is off).
    groups_by_rank: Vec<Vec<u32>>,
    put_check: bool,
    slot_op: Vec<u32>,
    avail: Vec<u32>,
    avail_puts: Vec<u32>,
    avail_appends: Vec<u32>,
    psets: PendSets,
    // Search bookkeeping.
    lin: Vec<u32>,
    best: Vec<u32>,
    best_valid: usize,
    stuck: Option<u32>,
    /// Failed choice points, keyed by event, state and linearized in-flight
    /// writes; the rest is compared by dominance: a node fails if a failed
    /// one had satisfied at least its gets, kept at least its erasable
    /// writes, used at most its pending writes and was at most as
    /// restricted (flag).
    memo: FxMap<(u32, u32, M), Vec<MemoEntry<M>>>,
    memo_len: usize,
    frames: Vec<Frame<M>>,
    moves: Vec<Move>,
    slots_buf: Vec<u32>,
    reach_buf: Vec<u32>,
    twins_buf: Vec<(Kind, u32)>,
    explored: u64,
}

impl<'p, M: Mask> Search<'p, M> {
    fn new(p: &'p Problem<'p>, words: usize) -> Self {
        let model = Model::new(p);
        let ix = PendIndex::new(p, &model);
        let mut me = Search {
            p,
            words,
            idx: 0,
            inflight_writes: M::zero(words),
            inflight_gets: M::zero(words),
            put_groups: Vec::new(),
            groups_by_rank: Vec::new(),
            put_check: false,
            gets_by_target: vec![M::zero(words); p.outs.len() + 1],
            slot_op: vec![NONE; p.max_slots as usize],
            avail: vec![0; p.class_kind.len()],
            avail_puts: Vec::new(),
            avail_appends: Vec::new(),
            psets: PendSets::new(),
            lin: Vec::new(),
            best: Vec::new(),
            best_valid: 0,
            stuck: None,
            memo: FxMap::default(),
            memo_len: 0,
            frames: Vec::new(),
            moves: Vec::new(),
            slots_buf: Vec::new(),
            reach_buf: Vec::new(),
            twins_buf: Vec::new(),
            explored: 0,
            model,
            ix,
        };
        me.build_put_index();
        me
    }

    /// Fills `put_groups` and `groups_by_rank`, unless too big.
    fn build_put_index(&mut self) {
        let p = self.p;
        let t = p.outs.len();
        let mut group_of: FxMap<u32, u32> = FxMap::default();
        let mut groups: Vec<PutGroup> = Vec::new();
        let mut puts: Vec<u32> = (0..p.kind.len() as u32).filter(|&k| p.kind[k as usize] == Kind::Put).collect();
        puts.sort_unstable_by_key(|&k| p.call_idx[k as usize]);
        for &k in &puts {
            let st = self.model.put_state[p.val[k as usize] as usize];
            if st == DEAD {
                continue;
            }
            let next = groups.len() as u32;
            let gi = *group_of.entry(st).or_insert(next);
            if gi == next {
                groups.push(PutGroup { state: st, puts: Vec::new(), max_ret: Vec::new(), pending: Vec::new() });
            }
            let g = &mut groups[gi as usize];
            if p.slot[k as usize] == NONE {
                g.pending.push(k);
            } else {
                let r = p.ret_idx[k as usize];
                let m = g.max_ret.last().map_or(r, |&m| m.max(r));
                g.puts.push(k);
                g.max_ret.push(m);
            }
        }
        let budget = 16 * p.kind.len() + 1024;
        let total: usize = groups
            .iter()
            .map(|g| {
                let info = self.model.states[g.state as usize];
                (info.hi - info.lo) as usize
            })
            .sum();
        if total > budget {
            return;
        }
        let mut by_rank = vec![Vec::new(); t];
        for (gi, g) in groups.iter().enumerate() {
            let info = self.model.states[g.state as usize];
            for r in info.lo..info.hi {
                by_rank[r as usize].push(gi as u32);
            }
        }
        self.put_groups = groups;
        self.groups_by_rank = by_rank;
        self.put_check = true;
    }

    /// A necessary condition on node `n`: every in-flight get not yet
    /// linearized can still read its value, i.e. either the state is a
    /// prefix of it (appends may complete it) or some put that has not yet
    /// been linearized or dropped, and is called before the get returns,
    /// writes a prefix of it.
    /// `None` if fine, else a get that cannot be satisfied any more.
    fn gets_ok(&self, n: &Node<M>) -> Option<u32> {
        if !self.put_check {
            return None;
        }
        let mut bad = None;
        self.inflight_gets.each_minus(&n.lin, |b| {
            if bad.is_some() {
                return;
            }
            let g = self.slot_op[b as usize] as usize;
            if !self.get_ok(n, g) {
                bad = Some(g as u32);
            }
        });
        bad
    }

    fn get_ok(&self, n: &Node<M>, g: usize) -> bool {
        let t = self.p.target[g];
        if self.model.leads_to(n.state, t) {
            return true;
        }
        let gret = self.p.ret_idx[g];
        for &gi in &self.groups_by_rank[(t - 1) as usize] {
            let grp = &self.put_groups[gi as usize];
            // Completed puts called before the get returns, latest first,
            // until all earlier ones returned before now.
            let end = grp.puts.partition_point(|&y| self.p.call_idx[y as usize] < gret);
            for j in (0..end).rev() {
                if grp.max_ret[j] < n.i {
                    break;
                }
                let y = grp.puts[j] as usize;
                if self.p.call_idx[y] >= n.i {
                    return true; // called later: still to come
                }
                if self.p.ret_idx[y] >= n.i && !n.lin.get(self.p.slot[y]) {
                    return true; // in flight, not linearized (maybe erasable)
                }
            }
            for &y in &grp.pending {
                let c = self.p.pclass[y as usize] as usize;
                if self.p.call_idx[y as usize] < gret && self.ix.live[c] && self.ix.expire[c] >= n.i {
                    return true;
                }
            }
        }
        false
    }

    // --- the in-flight situation, moved forwards and backwards in time ---

    fn forward(&mut self) {
        let ev = self.p.events[self.idx];
        self.idx += 1;
        self.toggle(ev, !ev.ret);
    }

    fn backward(&mut self) {
        self.idx -= 1;
        let ev = self.p.events[self.idx];
        if self.p.slot[ev.op as usize] == NONE {
            self.untoggle_pending(ev);
        } else {
            self.toggle(ev, ev.ret);
        }
    }

    /// Applies event `ev` (or undoes it): `on` = the op is now in flight.
    fn toggle(&mut self, ev: Event, on: bool) {
        let k = ev.op as usize;
        let slot = self.p.slot[k];
        if slot == NONE {
            // A pending write: available from its call on, forever.
            let c = self.p.pclass[k] as usize;
            if !self.ix.live[c] {
                return;
            }
            self.avail[c] += 1;
            if self.avail[c] == 1 {
                if self.p.class_kind[c] == Kind::Put {
                    self.avail_puts.push(c as u32)
                } else {
                    self.avail_appends.push(c as u32)
                }
            }
            return;
        }
        if on {
            self.slot_op[slot as usize] = k as u32;
        }
        let m = match self.p.kind[k] {
            Kind::Get => {
                if on {
                    self.inflight_gets.set(slot)
                } else {
                    self.inflight_gets.clear(slot)
                }
                &mut self.gets_by_target[self.p.target[k] as usize]
            }
            Kind::Put | Kind::Append => &mut self.inflight_writes,
        };
        if on {
            m.set(slot)
        } else {
            m.clear(slot)
        }
    }

    fn untoggle_pending(&mut self, ev: Event) {
        let c = self.p.pclass[ev.op as usize] as usize;
        if !self.ix.live[c] {
            return;
        }
        self.avail[c] -= 1;
        if self.avail[c] == 0 {
            if self.p.class_kind[c] == Kind::Put {
                self.avail_puts.pop();
            } else {
                self.avail_appends.pop();
            }
        }
    }

    fn rewind_to(&mut self, i: usize) {
        while self.idx > i {
            self.backward();
        }
    }

    /// Moves node `n` past its current event (already applied to it).
    #[inline]
    fn step(&mut self, n: &mut Node<M>) {
        let i = n.i;
        n.i += 1;
        self.forward();
        if n.pend != 0 && !self.ix.expiring.is_empty() {
            if let Some(list) = self.ix.expiring.get(&i) {
                for &c in list {
                    n.pend = self.psets.remove(n.pend, c);
                }
            }
        }
    }

    // --- node transitions ---

    /// Linearizes every in-flight get that the new state satisfies.
    #[inline]
    fn close_gets(&mut self, n: &mut Node<M>) {
        let s = n.state as usize;
        if s == DEAD as usize || s >= self.gets_by_target.len() {
            return;
        }
        let lin = &mut self.lin;
        let slot_op = &self.slot_op;
        if n.lin.absorb(&self.gets_by_target[s], |b| lin.push(slot_op[b as usize])) {
            n.unobserved = false;
        }
    }

    /// After a put: every in-flight write not linearized may be dropped.
    #[inline]
    fn after_put(&self, n: &mut Node<M>) {
        n.erasable.or_minus(&self.inflight_writes, &n.lin);
    }

    fn apply_move(&mut self, n: &mut Node<M>, mv: Move) {
        match mv {
            Move::Advance => {
                let x = self.p.events[n.i as usize].op as usize;
                let xslot = self.p.slot[x];
                if n.erasable.get(xslot) {
                    n.erasable.clear(xslot);
                    n.unobserved = true;
                }
                let k = self.p.kind[x];
                n.state = self.model.apply(n.state, k, self.p.val[x]);
                self.lin.push(x as u32);
                self.close_gets(n);
                if k == Kind::Put {
                    self.after_put(n);
                    n.erasable.clear(xslot);
                }
                self.step(n);
            }
            Move::Discard => {
                let x = self.p.events[n.i as usize].op as usize;
                n.erasable.clear(self.p.slot[x]);
                self.step(n);
            }
            Move::Write(slot) => {
                let y = self.slot_op[slot as usize] as usize;
                let k = self.p.kind[y];
                n.state = self.model.apply(n.state, k, self.p.val[y]);
                n.lin.set(slot);
                n.erasable.clear(slot);
                n.unobserved = true;
                self.lin.push(y as u32);
                self.close_gets(n);
                if k == Kind::Put {
                    self.after_put(n);
                }
            }
            Move::Pend(c) => {
                let used = self.psets.used(n.pend, c);
                let y = self.p.class_ops[c as usize][used as usize] as usize;
                let k = self.p.kind[y];
                n.pend = self.psets.add(n.pend, c);
                n.state = self.model.apply(n.state, k, self.p.val[y]);
                n.unobserved = true;
                self.lin.push(y as u32);
                self.close_gets(n);
                if k == Kind::Put {
                    self.after_put(n);
                }
            }
        }
    }

    /// Whether linearizing a put now would make some in-flight write
    /// (other than the one in slot `except`) erasable that is not yet.
    fn put_erases_more(&self, n: &Node<M>, except: u32) -> bool {
        let mut done = n.lin.clone();
        done.or_minus(&n.erasable, &M::zero(self.words));
        self.inflight_writes.any_minus(&done, except)
    }

    /// Whether pending class `c` can be used in node `n` now.
    #[inline]
    fn pend_usable(&self, n: &Node<M>, c: u32) -> bool {
        self.ix.expire[c as usize] >= n.i && self.psets.used(n.pend, c) < self.avail[c as usize]
    }

    /// The value of target state `t` (a get output).
    #[inline]
    fn target_bytes(&self, t: u32) -> &'p [u8] {
        self.p.outs[(t - 1) as usize]
    }

    /// Pending put classes whose value is a prefix of target `t`.
    fn puts_for_target(&mut self, t: u32) -> &[u32] {
        if !self.ix.put_for_target.contains_key(&t) {
            let list: Vec<u32> = (0..self.p.class_kind.len() as u32)
                .filter(|&c| {
                    self.ix.live[c as usize]
                        && self.p.class_kind[c as usize] == Kind::Put
                        && self.model.leads_to(self.model.put_state[self.p.class_val[c as usize] as usize], t)
                })
                .collect();
            self.ix.put_for_target.insert(t, list);
        }
        &self.ix.put_for_target[&t]
    }

    /// A necessary condition for satisfying a get with target `t` at the
    /// current event: some sequence of the writes available now (each
    /// usable any number of times, ignoring every other constraint) turns
    /// the state into `t`.
    fn can_reach(&mut self, n: &Node<M>, t: u32) -> bool {
        let mut stack = std::mem::take(&mut self.reach_buf);
        stack.clear();
        if self.model.leads_to(n.state, t) {
            stack.push(n.state);
        }
        let mut slots = std::mem::take(&mut self.slots_buf);
        slots.clear();
        self.inflight_writes.each_minus(&n.lin, |b| slots.push(b));
        for &b in &slots {
            let y = self.slot_op[b as usize] as usize;
            if self.p.kind[y] == Kind::Put {
                let st = self.model.put_state[self.p.val[y] as usize];
                if self.model.leads_to(st, t) && !stack.contains(&st) {
                    stack.push(st);
                }
            }
        }
        if !self.avail_puts.is_empty() {
            let list = self.puts_for_target(t).to_vec();
            for c in list {
                if self.pend_usable(n, c) {
                    let st = self.model.put_state[self.p.class_val[c as usize] as usize];
                    if !stack.contains(&st) {
                        stack.push(st);
                    }
                }
            }
        }
        let tb = self.target_bytes(t);
        let mut seen: Vec<u32> = stack.clone();
        let mut found = false;
        while let Some(st) = stack.pop() {
            if st == t {
                found = true;
                break;
            }
            let len = self.model.states[st as usize].len;
            let push = |s2: u32, stack: &mut Vec<u32>, seen: &mut Vec<u32>| {
                if s2 != DEAD && !seen.contains(&s2) {
                    seen.push(s2);
                    stack.push(s2);
                }
            };
            for &b in &slots {
                let y = self.slot_op[b as usize] as usize;
                if self.p.kind[y] == Kind::Append {
                    let s2 = self.model.apply(st, Kind::Append, self.p.val[y]);
                    if self.model.leads_to(s2, t) {
                        push(s2, &mut stack, &mut seen);
                    }
                }
            }
            if !self.avail_appends.is_empty() {
                for li in 0..self.ix.append_lens.len() {
                    let l = self.ix.append_lens[li];
                    if len + l > tb.len() {
                        break;
                    }
                    if let Some(&c) = self.ix.append_by_value.get(&tb[len..len + l]) {
                        if self.pend_usable(n, c) {
                            let s2 = self.model.apply(st, Kind::Append, self.p.class_val[c as usize]);
                            push(s2, &mut stack, &mut seen);
                        }
                    }
                }
            }
        }
        self.slots_buf = slots;
        self.reach_buf = stack;
        found
    }

    /// Generates the choices at the return of op `x` (not yet linearized)
    /// in node `n`: phase 1 the likely ones, phase 2 the rest.
    ///
    /// Choices that are never better than another choice are left out: an
    /// optional write (any but the returning op, or the returning op when
    /// erasable) that makes the state dead (nothing can observe it until a
    /// put, and a put would erase it unseen) or, when it could equally be
    /// dropped, leaves the state unchanged; any put while an optional write
    /// is unobserved; of identical writes, all but one; pending writes past
    /// the last get that could observe them.
    fn gen_moves(&mut self, n: &Node<M>, x: usize, phase2: bool) {
        let xk = self.p.kind[x];
        let xslot = self.p.slot[x];
        let target = if xk == Kind::Get { self.p.target[x] } else { NONE };
        if xk != Kind::Get && !phase2 {
            let optional = n.erasable.get(xslot);
            let mut advance = !(n.unobserved && xk == Kind::Put);
            if advance && optional {
                let s2 = self.model.apply(n.state, xk, self.p.val[x]);
                advance = s2 != DEAD && (s2 != n.state || (xk == Kind::Put && self.put_erases_more(n, xslot)));
            }
            if advance {
                self.moves.push(Move::Advance);
            }
            if optional {
                self.moves.push(Move::Discard);
            }
            return;
        }
        // In-flight completed writes. Of several identical ones (same kind
        // and value), doing one that returns earlier keeps one with a later
        // deadline, which is never worse; and doing one that must take
        // effect rather than an erasable one returning no earlier keeps the
        // option to drop. So per kind and value only the earliest-returning
        // non-erasable one and the earliest-returning erasable one (if it
        // returns before that one) are candidates.
        let mut slots = std::mem::take(&mut self.slots_buf);
        slots.clear();
        self.inflight_writes.each_minus(&n.lin, |b| slots.push(b));
        slots.retain(|&b| b != xslot);
        if slots.len() > 1 {
            let key = |b: &u32| {
                let y = self.slot_op[*b as usize] as usize;
                (self.p.kind[y], self.p.val[y], self.p.ret_idx[y])
            };
            slots.sort_unstable_by_key(key);
            let mut kept = 0;
            let mut g = 0;
            while g < slots.len() {
                let (k0, v0, _) = key(&slots[g]);
                let mut h = g;
                let (mut first_plain, mut first_erasable) = (None, None);
                while h < slots.len() && key(&slots[h]).0 == k0 && key(&slots[h]).1 == v0 {
                    let b = slots[h];
                    if n.erasable.get(b) {
                        if first_erasable.is_none() && first_plain.is_none() {
                            first_erasable = Some(b);
                        }
                    } else if first_plain.is_none() {
                        first_plain = Some(b);
                    }
                    h += 1;
                }
                for b in [first_erasable, first_plain].into_iter().flatten() {
                    slots[kept] = b;
                    kept += 1;
                }
                g = h;
            }
            slots.truncate(kept);
        }
        for &b in &slots {
            let y = self.slot_op[b as usize] as usize;
            let yk = self.p.kind[y];
            if n.unobserved && yk == Kind::Put {
                continue;
            }
            let s2 = self.model.apply(n.state, yk, self.p.val[y]);
            if s2 == DEAD || (s2 == n.state && n.erasable.get(b) && !(yk == Kind::Put && self.put_erases_more(n, b))) {
                continue;
            }
            if target != NONE && self.model.leads_to(s2, target) == phase2 {
                continue;
            }
            self.moves.push(Move::Write(b));
        }
        // A pending write identical to an in-flight completed one is never
        // better than that one: doing the completed one (an obligation)
        // keeps the pending one available for later.
        let mut twins = std::mem::take(&mut self.twins_buf);
        twins.clear();
        if !(self.avail_puts.is_empty() && self.avail_appends.is_empty()) {
            for &b in &slots {
                let y = self.slot_op[b as usize] as usize;
                twins.push((self.p.kind[y], self.p.val[y]));
            }
        }
        self.slots_buf = slots;
        let twin = |c: u32, tw: &Vec<(Kind, u32)>| {
            !tw.is_empty() && tw.contains(&(self.p.class_kind[c as usize], self.p.class_val[c as usize]))
        };
        // Pending writes.
        if self.avail_puts.is_empty() && self.avail_appends.is_empty() {
            self.twins_buf = twins;
            return;
        }
        if target != NONE && !phase2 {
            // Only those leading towards the target, found by index.
            if !n.unobserved && !self.avail_puts.is_empty() {
                let list = self.puts_for_target(target).to_vec();
                for c in list {
                    if self.pend_usable(n, c) && !twin(c, &twins) {
                        let s2 = self.model.put_state[self.p.class_val[c as usize] as usize];
                        if s2 != n.state || self.put_erases_more(n, NONE) {
                            self.moves.push(Move::Pend(c));
                        }
                    }
                }
            }
            if n.state != DEAD && !self.avail_appends.is_empty() && self.model.leads_to(n.state, target) {
                let tb = self.target_bytes(target);
                let len = self.model.states[n.state as usize].len;
                for li in 0..self.ix.append_lens.len() {
                    let l = self.ix.append_lens[li];
                    if len + l > tb.len() {
                        break;
                    }
                    if let Some(&c) = self.ix.append_by_value.get(&tb[len..len + l]) {
                        if self.pend_usable(n, c) && !twin(c, &twins) {
                            self.moves.push(Move::Pend(c));
                        }
                    }
                }
            }
            self.twins_buf = twins;
            return;
        }
        if !n.unobserved {
            for i in 0..self.avail_puts.len() {
                let c = self.avail_puts[i];
                if !self.pend_usable(n, c) || twin(c, &twins) {
                    continue;
                }
                let s2 = self.model.put_state[self.p.class_val[c as usize] as usize];
                if s2 == DEAD || (s2 == n.state && !self.put_erases_more(n, NONE)) {
                    continue;
                }
                if target != NONE && self.model.leads_to(s2, target) {
                    continue;
                }
                self.moves.push(Move::Pend(c));
            }
        }
        if n.state != DEAD {
            for i in 0..self.avail_appends.len() {
                let c = self.avail_appends[i];
                if !self.pend_usable(n, c) || twin(c, &twins) {
                    continue;
                }
                let s2 = self.model.apply(n.state, Kind::Append, self.p.class_val[c as usize]);
                if s2 == n.state || s2 == DEAD {
                    continue;
                }
                if target != NONE && self.model.leads_to(s2, target) {
                    continue;
                }
                self.moves.push(Move::Pend(c));
            }
        }
        self.twins_buf = twins;
    }

    /// Whether pending-use set `q` uses no class more than `p` does.
    fn pend_le(&self, q: u32, p: u32) -> bool {
        q == p || q == 0 || self.psets.sets[q as usize].iter().all(|&(c, k)| self.psets.used(p, c) >= k)
    }

    /// The memo key and the satisfied gets of node `n` (the in-flight
    /// situation must be at `n.i`).
    fn memo_key(&self, n: &Node<M>) -> ((u32, u32, M), M) {
        ((n.i, n.state, n.lin.and(&self.inflight_writes)), n.lin.and(&self.inflight_gets))
    }

    fn memo_fails(&self, n: &Node<M>) -> bool {
        let (key, gets) = self.memo_key(n);
        match self.memo.get(&key) {
            None => false,
            Some(v) => v.iter().any(|e| {
                (!e.unobserved || n.unobserved)
                    && e.gets.contains_all(&gets)
                    && e.erasable.contains_all(&n.erasable)
                    && self.pend_le(e.pend, n.pend)
            }),
        }
    }

    fn memo_insert(&mut self, n: Node<M>) {
        self.memo_len += 1;
        let (key, gets) = self.memo_key(&n);
        let e = MemoEntry { gets, erasable: n.erasable, pend: n.pend, unobserved: n.unobserved };
        self.memo.entry(key).or_default().push(e);
    }

    fn dead_end(&mut self, n: &Node<M>) {
        let op = self.p.events[(n.i as usize).min(self.p.events.len() - 1)].op;
        self.dead_end_at(op);
    }

    /// Records the current path if it is the longest so far; `op` is the op
    /// that could not be linearized after it.
    fn dead_end_at(&mut self, op: u32) {
        if self.lin.len() > self.best.len() || self.stuck.is_none() {
            let v = self.best_valid.min(self.best.len());
            self.best.truncate(v);
            self.best.extend_from_slice(&self.lin[v..]);
            self.best_valid = self.lin.len();
            self.stuck = Some(op);
        }
    }

    fn truncate_lin(&mut self, len: usize) {
        self.lin.truncate(len);
        self.best_valid = self.best_valid.min(len);
    }

    /// Returns (linearizable, states explored, longest prefix, stuck op).
    fn run(mut self) -> (bool, u64, Vec<u32>, Option<u32>) {
        let n_events = self.p.events.len();
        let init = self.model.narrow_to_state(0, self.p.outs.len() as u32, 0, b"");
        let mut node = Node {
            i: 0,
            state: init,
            pend: 0,
            unobserved: false,
            lin: M::zero(self.words),
            erasable: M::zero(self.words),
        };
        // Whether the node was just reached by a choice and needs checking.
        let mut check = false;
        'search: loop {
            // Go forward until the end, a dead end or a choice.
            loop {
                if check {
                    check = false;
                    if let Some(g) = self.gets_ok(&node) {
                        self.dead_end_at(g);
                        break;
                    }
                }
                let i = node.i as usize;
                if i == n_events {
                    return (true, self.explored, Vec::new(), None);
                }
                self.explored += 1;
                let ev = self.p.events[i];
                let x = ev.op as usize;
                let slot = self.p.slot[x];
                if !ev.ret {
                    let mut bad = false;
                    if slot != NONE && self.p.kind[x] == Kind::Get {
                        if self.p.target[x] == node.state {
                            node.lin.set(slot);
                            self.lin.push(x as u32);
                            node.unobserved = false;
                        } else {
                            bad = self.put_check && !self.get_ok(&node, x);
                        }
                    }
                    self.step(&mut node);
                    if bad {
                        self.dead_end_at(x as u32);
                        break;
                    }
                    continue;
                }
                if node.lin.get(slot) {
                    node.lin.clear(slot);
                    self.step(&mut node);
                    continue;
                }
                // A choice point.
                if self.memo_len != 0 && self.memo_fails(&node) {
                    self.dead_end(&node);
                    break;
                }
                if self.p.kind[x] == Kind::Get && !self.can_reach(&node, self.p.target[x]) {
                    self.dead_end(&node);
                    break;
                }
                let start = self.moves.len();
                self.gen_moves(&node, x, false);
                let mut all = false;
                if self.moves.len() == start {
                    self.gen_moves(&node, x, true);
                    all = true;
                }
                let count = self.moves.len() - start;
                if count == 0 {
                    self.dead_end(&node);
                    break;
                }
                if all && count == 1 {
                    let mv = self.moves.pop().unwrap();
                    self.apply_move(&mut node, mv);
                    check = true;
                    continue;
                }
                self.frames.push(Frame {
                    node: node.clone(),
                    lin_len: self.lin.len() as u32,
                    start: start as u32,
                    all_generated: all,
                    cursor: start as u32,
                });
                let mv = self.moves[start];
                self.apply_move(&mut node, mv);
                check = true;
            }
            // Backtrack to the newest choice point with choices left.
            loop {
                let Some(f) = self.frames.last_mut() else {
                    let best = std::mem::take(&mut self.best);
                    return (false, self.explored, best, self.stuck);
                };
                f.cursor += 1;
                let fi = f.node.i as usize;
                let lin_len = f.lin_len as usize;
                if f.cursor as usize == self.moves.len() && !f.all_generated {
                    f.all_generated = true;
                    let fnode = f.node.clone();
                    self.rewind_to(fi);
                    let x = self.p.events[fi].op as usize;
                    self.gen_moves(&fnode, x, true);
                }
                let f = self.frames.last().unwrap();
                if (f.cursor as usize) < self.moves.len() {
                    let mv = self.moves[f.cursor as usize];
                    node = f.node.clone();
                    self.rewind_to(fi);
                    self.truncate_lin(lin_len);
                    self.apply_move(&mut node, mv);
                    check = true;
                    continue 'search;
                }
                let f = self.frames.pop().unwrap();
                self.moves.truncate(f.start as usize);
                self.rewind_to(f.node.i as usize);
                self.memo_insert(f.node);
            }
        }
    }
}
