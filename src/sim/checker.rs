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
//! decided at calls; at the return of an op `x` that is not yet linearized,
//! the search linearizes `x`, optionally preceded by other ops that are in
//! flight (called, not returned) or pending. Any linearization can be
//! rearranged into this form, so the search is complete. A search node is
//! (event index, set of in-flight ops already linearized, model state, which
//! pending writes were used, one flag described below). Nodes from which all
//! choices failed are remembered and never expanded again, so the search
//! always terminates with a yes or no.
//!
//! What keeps it fast, each step preserving soundness and completeness:
//! * **Exact canonical states.** A state matters only through which get
//!   outputs it can still turn into. A value that is a prefix of some
//!   completed get output of the key is represented by the range of
//!   (sorted, distinct) outputs having it as a prefix plus its length; every
//!   other value is the single state `DEAD` (no get can ever observe it and
//!   appending keeps it dead; only a put revives the key). Two values map to
//!   the same state exactly when they are equal (or both dead), comparison
//!   with a get output is O(1) and no strings are copied or hashed in the
//!   search.
//! * **Greedy gets.** A get in flight whose output equals the current state
//!   is linearized at once: a get does not change the state, so doing it as
//!   early as possible is never worse (the two nodes are equivalent).
//! * **Dominated choices are skipped.** An optional write that makes the
//!   state dead is useless unless a put may still follow before `x`; a
//!   pending write is never used to make the state dead or to leave it
//!   unchanged, nor overwritten by a put before anything observed it
//!   (tracked by the flag); of several identical pending writes (same kind
//!   and value) the earliest called is used first.
//! * **Cheap memo.** Only choice points are remembered, and only once every
//!   choice below them failed, so a legal history costs about one pass.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::sim::history::{Op, OpKind};

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
        let _ = writeln!(s, "NOT linearizable: keys {:?} ({} states explored)", self.failing_keys, self.states_explored);
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
/// [`crate::sim::history::validate_ops`]: a get without output is treated as
/// pending (it constrains nothing) and a return before the call as a return at
/// the call.
pub fn check_history(ops: &[Op]) -> Verdict {
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
        let r = check_key(ops, &ids);
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

/// Checks only the ops whose ids are given (all assumed to be on one key).
pub struct KeyResult {
    pub ok: bool,
    pub explored: u64,
    /// Longest linearized prefix (op ids), filled when not ok.
    pub prefix: Vec<usize>,
    pub stuck: Option<usize>,
}

/// Checks the ops `ids` of `ops`, which must all be on the same key.
pub fn check_key(ops: &[Op], ids: &[usize]) -> KeyResult {
    let prob = match Problem::build(ops, ids) {
        Some(p) => p,
        None => return KeyResult { ok: true, explored: 0, prefix: Vec::new(), stuck: None },
    };
    let words = (prob.max_slots as usize).div_ceil(64).max(1);
    let (ok, explored, prefix, stuck) = if words == 1 {
        Search::<u64>::new(&prob, 1).run()
    } else {
        Search::<BigMask>::new(&prob, words).run()
    };
    let map = |v: Vec<u32>| v.into_iter().map(|k| prob.ids[k as usize]).collect::<Vec<_>>();
    KeyResult { ok, explored, prefix: if ok { Vec::new() } else { map(prefix) }, stuck: stuck.map(|k| prob.ids[k as usize]) }
}

// ---------------------------------------------------------------------------
// A fast hasher for the search's small integer keys.

#[derive(Default, Clone, Copy)]
struct Fx(u64);

const FX_K: u64 = 0xf135_7aea_2e62_a9c5;

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
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
        self.0 = (self.0.wrapping_add(i)).wrapping_mul(FX_K);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

type FxBuild = BuildHasherDefault<Fx>;
type FxMap<K, V> = HashMap<K, V, FxBuild>;
type FxSet<K> = HashSet<K, FxBuild>;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// Distinct completed-get outputs, sorted.
    outs: Vec<&'a [u8]>,
}

impl<'a> Problem<'a> {
    /// `None` when the key trivially passes (no completed get).
    fn build(ops: &'a [Op], ids: &[usize]) -> Option<Problem<'a>> {
        let is_get_done = |op: &Op| op.kind == OpKind::Get && op.return_ns.is_some() && op.output.is_some();
        let mut outs: Vec<&[u8]> =
            ids.iter().map(|&i| &ops[i]).filter(|o| is_get_done(o)).map(|o| o.output.as_deref().unwrap().as_bytes()).collect();
        if outs.is_empty() {
            return None;
        }
        outs.sort_unstable();
        outs.dedup();

        let mut p = Problem {
            ids: Vec::with_capacity(ids.len()),
            kind: Vec::with_capacity(ids.len()),
            val: Vec::with_capacity(ids.len()),
            target: Vec::with_capacity(ids.len()),
            slot: Vec::with_capacity(ids.len()),
            pclass: Vec::with_capacity(ids.len()),
            events: Vec::with_capacity(ids.len() * 2),
            max_slots: 0,
            class_kind: Vec::new(),
            class_val: Vec::new(),
            class_ops: Vec::new(),
            values: Vec::new(),
            outs,
        };
        let mut value_ids: FxMap<&[u8], u32> = FxMap::default();
        // (time, is_return, local op)
        let mut evs: Vec<(u64, bool, u32)> = Vec::with_capacity(ids.len() * 2);
        for &id in ids {
            let op = &ops[id];
            let k = match op.kind {
                OpKind::Get => Kind::Get,
                OpKind::Put => Kind::Put,
                OpKind::Append => Kind::Append,
            };
            if k == Kind::Get && !is_get_done(op) {
                continue; // a pending get constrains nothing
            }
            let local = p.ids.len() as u32;
            p.ids.push(id);
            p.kind.push(k);
            if k == Kind::Get {
                p.val.push(NONE);
                let o = op.output.as_deref().unwrap().as_bytes();
                let rank = p.outs.binary_search(&o).expect("output is present") as u32;
                // Target states are interned first: state id = rank + 1.
                p.target.push(rank + 1);
            } else {
                let next = value_ids.len() as u32;
                let v = *value_ids.entry(op.value.as_bytes()).or_insert_with(|| {
                    p.values.push(op.value.as_bytes());
                    next
                });
                p.val.push(v);
                p.target.push(NONE);
            }
            p.slot.push(NONE);
            p.pclass.push(NONE);
            evs.push((op.call_ns, false, local));
            if let Some(r) = op.return_ns {
                evs.push((r.max(op.call_ns), true, local));
            }
        }
        // Calls before returns at equal times (such ops overlap).
        evs.sort_unstable();
        // Slots for completed ops, classes for pending writes.
        let mut free: std::collections::BinaryHeap<std::cmp::Reverse<u32>> = Default::default();
        let mut next_slot = 0u32;
        let mut classes: FxMap<(Kind, u32), u32> = FxMap::default();
        for &(_, ret, local) in &evs {
            let l = local as usize;
            let pending = ops[p.ids[l]].return_ns.is_none();
            if pending {
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
        for (k, o) in outs.iter().enumerate() {
            let hi = k + outs[k..].partition_point(|x| x.starts_with(o));
            m.intern.insert((k as u32, o.len()), k as u32 + 1);
            m.states.push(StateInfo { lo: k as u32, hi: hi as u32, len: o.len() });
        }
        let _ = t;
        m.put_state = (0..prob.values.len()).map(|v| m.narrow_to_state(0, t, 0, prob.values[v])).collect();
        m
    }

    /// The state of value `prefix + needle`, where `outs[lo..hi]` are the
    /// outputs having `prefix` (of length `off`) as prefix.
    fn narrow_to_state(&mut self, lo: u32, hi: u32, off: usize, needle: &[u8]) -> u32 {
        let range = &self.outs[lo as usize..hi as usize];
        fn key<'k>(o: &'k [u8], off: usize, n: usize) -> &'k [u8] {
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
// Sets of used pending writes: per class, how many (earliest first).

struct PendSets {
    sets: Vec<Box<[(u32, u32)]>>,
    map: FxMap<Box<[(u32, u32)]>, u32>,
    add: FxMap<(u32, u32), u32>,
}

impl PendSets {
    fn new() -> Self {
        let empty: Box<[(u32, u32)]> = Box::new([]);
        let mut map = FxMap::default();
        map.insert(empty.clone(), 0);
        PendSets { sets: vec![empty], map, add: FxMap::default() }
    }
    #[inline]
    fn used(&self, p: u32, c: u32) -> u32 {
        let s = &self.sets[p as usize];
        if s.is_empty() {
            return 0;
        }
        match s.binary_search_by_key(&c, |e| e.0) {
            Ok(i) => s[i].1,
            Err(_) => 0,
        }
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
        let b = v.into_boxed_slice();
        let next = self.sets.len() as u32;
        let q = match self.map.get(&b) {
            Some(&q) => q,
            None => {
                self.map.insert(b.clone(), next);
                self.sets.push(b);
                next
            }
        };
        self.add.insert((p, c), q);
        q
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
    /// A pending write was used and nothing observed the state since: a put
    /// now would make that use pointless (dominated), so puts are barred.
    unobserved: bool,
    /// Slots of in-flight completed ops already linearized.
    lin: M,
}

#[derive(Clone, Copy, Debug)]
enum Move {
    /// Linearize the returning op itself.
    Advance,
    /// Linearize the in-flight completed write in this slot.
    Write(u32),
    /// Use one pending write of this class.
    Pend(u32),
}

struct Frame<M> {
    node: Node<M>,
    lin_len: u32,
    start: u32,
    cursor: u32,
    all_generated: bool,
}

struct Search<'p, M: Mask> {
    p: &'p Problem<'p>,
    model: Model<'p>,
    words: usize,
    // The in-flight situation at event index `idx`.
    idx: usize,
    inflight_writes: M,
    inflight_puts: M,
    gets_by_target: Vec<M>,
    slot_op: Vec<u32>,
    avail: Vec<u32>,
    avail_puts: Vec<u32>,
    avail_appends: Vec<u32>,
    /// Class is worth using at all (a pending put whose value no get can
    /// ever observe is not).
    class_live: Vec<bool>,
    psets: PendSets,
    // Search bookkeeping.
    lin: Vec<u32>,
    best: Vec<u32>,
    best_valid: usize,
    stuck: Option<u32>,
    memo: FxSet<Node<M>>,
    frames: Vec<Frame<M>>,
    moves: Vec<Move>,
    explored: u64,
}

impl<'p, M: Mask> Search<'p, M> {
    fn new(p: &'p Problem<'p>, words: usize) -> Self {
        let model = Model::new(p);
        let class_live = (0..p.class_kind.len())
            .map(|c| p.class_kind[c] != Kind::Put || model.put_state[p.class_val[c] as usize] != DEAD)
            .collect();
        Search {
            p,
            words,
            idx: 0,
            inflight_writes: M::zero(words),
            inflight_puts: M::zero(words),
            gets_by_target: vec![M::zero(words); p.outs.len() + 1],
            slot_op: vec![NONE; p.max_slots as usize],
            avail: vec![0; p.class_kind.len()],
            avail_puts: Vec::new(),
            avail_appends: Vec::new(),
            class_live,
            psets: PendSets::new(),
            lin: Vec::new(),
            best: Vec::new(),
            best_valid: 0,
            stuck: None,
            memo: FxSet::default(),
            frames: Vec::new(),
            moves: Vec::new(),
            explored: 0,
            model,
        }
    }

    // --- the in-flight situation, moved forwards and backwards in time ---

    fn forward(&mut self) {
        let ev = self.p.events[self.idx];
        self.idx += 1;
        let k = ev.op as usize;
        let slot = self.p.slot[k];
        if slot == NONE {
            // Pending write: becomes available at its call, forever.
            let c = self.p.pclass[k] as usize;
            if !self.class_live[c] {
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
        let on = !ev.ret;
        if on {
            self.slot_op[slot as usize] = k as u32;
        }
        let set = |m: &mut M| if on { m.set(slot) } else { m.clear(slot) };
        match self.p.kind[k] {
            Kind::Get => set(&mut self.gets_by_target[self.p.target[k] as usize]),
            Kind::Put => {
                set(&mut self.inflight_writes);
                set(&mut self.inflight_puts);
            }
            Kind::Append => set(&mut self.inflight_writes),
        }
    }

    fn backward(&mut self) {
        self.idx -= 1;
        let ev = self.p.events[self.idx];
        let k = ev.op as usize;
        let slot = self.p.slot[k];
        if slot == NONE {
            let c = self.p.pclass[k] as usize;
            if !self.class_live[c] {
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
            return;
        }
        let on = ev.ret; // undoing a return puts the op back in flight
        if on {
            self.slot_op[slot as usize] = k as u32;
        }
        let set = |m: &mut M| if on { m.set(slot) } else { m.clear(slot) };
        match self.p.kind[k] {
            Kind::Get => set(&mut self.gets_by_target[self.p.target[k] as usize]),
            Kind::Put => {
                set(&mut self.inflight_writes);
                set(&mut self.inflight_puts);
            }
            Kind::Append => set(&mut self.inflight_writes),
        }
    }

    fn rewind_to(&mut self, i: usize) {
        while self.idx > i {
            self.backward();
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

    fn apply_move(&mut self, n: &mut Node<M>, mv: Move) {
        match mv {
            Move::Advance => {
                let x = self.p.events[n.i as usize].op as usize;
                n.state = self.model.apply(n.state, self.p.kind[x], self.p.val[x]);
                self.lin.push(x as u32);
                self.close_gets(n);
                n.i += 1;
                self.forward();
            }
            Move::Write(slot) => {
                let y = self.slot_op[slot as usize] as usize;
                n.state = self.model.apply(n.state, self.p.kind[y], self.p.val[y]);
                n.lin.set(slot);
                self.lin.push(y as u32);
                self.close_gets(n);
            }
            Move::Pend(c) => {
                let used = self.psets.used(n.pend, c);
                let y = self.p.class_ops[c as usize][used as usize] as usize;
                n.pend = self.psets.add(n.pend, c);
                n.state = self.model.apply(n.state, self.p.kind[y], self.p.val[y]);
                n.unobserved = true;
                self.lin.push(y as u32);
                self.close_gets(n);
            }
        }
    }

    /// Generates the choices at the return of op `x` (not yet linearized)
    /// in node `n`. Phase 1 holds the likely ones, phase 2 the rest.
    fn gen_moves(&mut self, n: &Node<M>, x: usize, phase2: bool) {
        let xk = self.p.kind[x];
        let xslot = self.p.slot[x];
        let target = if xk == Kind::Get { self.p.target[x] } else { NONE };
        if xk != Kind::Get {
            if !phase2 && !(n.unobserved && xk == Kind::Put) {
                self.moves.push(Move::Advance);
            }
            if !phase2 {
                return;
            }
        }
        // Whether a put may still come before x (for pruning writes that
        // make the state dead).
        let pend_put_avail = !n.unobserved && self.avail_puts.iter().any(|&c| self.psets.used(n.pend, c) < self.avail[c as usize]);
        let mut cands: Vec<Move> = Vec::new();
        // In-flight completed writes.
        let mut slots: Vec<u32> = Vec::new();
        self.inflight_writes.each_minus(&n.lin, |b| slots.push(b));
        for b in slots {
            if b == xslot {
                continue;
            }
            let y = self.slot_op[b as usize] as usize;
            let yk = self.p.kind[y];
            if n.unobserved && yk == Kind::Put {
                continue;
            }
            let s2 = self.model.apply(n.state, yk, self.p.val[y]);
            let progress = target != NONE && self.model.leads_to(s2, target);
            if progress == phase2 && target != NONE {
                continue;
            }
            if s2 == DEAD {
                let put_follows = xk == Kind::Put
                    || pend_put_avail
                    || (!n.unobserved && self.inflight_puts.any_minus(&n.lin, b));
                if !put_follows {
                    continue;
                }
            }
            cands.push(Move::Write(b));
        }
        // Pending writes.
        if !n.unobserved {
            for i in 0..self.avail_puts.len() {
                let c = self.avail_puts[i];
                if self.psets.used(n.pend, c) >= self.avail[c as usize] {
                    continue;
                }
                let s2 = self.model.put_state[self.p.class_val[c as usize] as usize];
                if s2 == n.state || s2 == DEAD {
                    continue;
                }
                let progress = target != NONE && self.model.leads_to(s2, target);
                if progress == phase2 && target != NONE {
                    continue;
                }
                cands.push(Move::Pend(c));
            }
        }
        if n.state != DEAD {
            for i in 0..self.avail_appends.len() {
                let c = self.avail_appends[i];
                if self.psets.used(n.pend, c) >= self.avail[c as usize] {
                    continue;
                }
                let s2 = self.model.apply(n.state, Kind::Append, self.p.class_val[c as usize]);
                if s2 == n.state || s2 == DEAD {
                    continue;
                }
                let progress = target != NONE && self.model.leads_to(s2, target);
                if progress == phase2 && target != NONE {
                    continue;
                }
                cands.push(Move::Pend(c));
            }
        }
        self.moves.extend(cands);
    }

    fn dead_end(&mut self, n: &Node<M>) {
        if self.lin.len() > self.best.len() || self.stuck.is_none() {
            let v = self.best_valid.min(self.best.len());
            self.best.truncate(v);
            self.best.extend_from_slice(&self.lin[v..]);
            self.best_valid = self.lin.len();
            self.stuck = Some(self.p.events[n.i as usize].op);
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
        let mut node = Node { i: 0, state: init, pend: 0, unobserved: false, lin: M::zero(self.words) };
        'search: loop {
            // Go forward until the end, a dead end or a choice.
            loop {
                let i = node.i as usize;
                if i == n_events {
                    return (true, self.explored, Vec::new(), None);
                }
                self.explored += 1;
                let ev = self.p.events[i];
                let x = ev.op as usize;
                let slot = self.p.slot[x];
                if !ev.ret {
                    self.forward();
                    if self.p.kind[x] == Kind::Get && self.p.target[x] == node.state {
                        node.lin.set(slot);
                        self.lin.push(x as u32);
                        node.unobserved = false;
                    }
                    node.i += 1;
                    continue;
                }
                if node.lin.get(slot) {
                    node.lin.clear(slot);
                    self.forward();
                    node.i += 1;
                    continue;
                }
                // A choice point.
                if !self.memo.is_empty() && self.memo.contains(&node) {
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
                    continue;
                }
                self.frames.push(Frame {
                    node: node.clone(),
                    lin_len: self.lin.len() as u32,
                    start: start as u32,
                    cursor: start as u32,
                    all_generated: all,
                });
                let mv = self.moves[start];
                self.apply_move(&mut node, mv);
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
                    continue 'search;
                }
                let f = self.frames.pop().unwrap();
                self.moves.truncate(f.start as usize);
                self.memo.insert(f.node);
            }
        }
    }
}
