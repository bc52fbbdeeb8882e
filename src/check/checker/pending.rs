//! Pending writes (called, never returned), grouped in classes of equal
//! kind and value: the interned sets of how many of each class a node has
//! used (`PendSets`), and when each class stops mattering (`PendIndex`).

use super::memo::FxMap;
use super::model::Model;
use super::problem::{Kind, Problem, DEAD};

// ---------------------------------------------------------------------------
// Sets of used pending writes: per class, how many (earliest called first).

pub(super) struct PendSets {
    pub(super) sets: Vec<Box<[(u32, u32)]>>,
    map: FxMap<Box<[(u32, u32)]>, u32>,
    add: FxMap<(u32, u32), u32>,
    remove: FxMap<(u32, u32), u32>,
}

impl PendSets {
    pub(super) fn new() -> Self {
        let empty: Box<[(u32, u32)]> = Box::new([]);
        let mut map = FxMap::default();
        map.insert(empty.clone(), 0);
        PendSets { sets: vec![empty], map, add: FxMap::default(), remove: FxMap::default() }
    }

    #[inline]
    pub(super) fn used(&self, p: u32, c: u32) -> u32 {
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

    pub(super) fn add(&mut self, p: u32, c: u32) -> u32 {
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
    pub(super) fn remove(&mut self, p: u32, c: u32) -> u32 {
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
pub(super) struct PendIndex<'p> {
    pub(super) live: Vec<bool>,
    pub(super) expire: Vec<u32>,
    /// Event index -> classes expiring there.
    pub(super) expiring: FxMap<u32, Vec<u32>>,
    /// Distinct lengths of live pending append values.
    pub(super) append_lens: Vec<usize>,
    pub(super) append_by_value: FxMap<&'p [u8], u32>,
    /// Live pending put classes whose value is a prefix of the target, per
    /// target (filled lazily).
    pub(super) put_for_target: FxMap<u32, Vec<u32>>,
}

impl<'p> PendIndex<'p> {
    pub(super) fn new(p: &'p Problem<'p>, model: &Model<'p>) -> Self {
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
