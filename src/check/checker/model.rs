//! The key/value model over canonical states: a value is the range of get
//! outputs it is a prefix of plus its length, or `DEAD` when no get can read
//! it; `put` and `append` move between these states.

use super::memo::FxMap;
use super::problem::{Kind, Problem, DEAD, NONE};

// ---------------------------------------------------------------------------
// The model: canonical states.

#[derive(Clone, Copy, Debug)]
pub(super) struct StateInfo {
    /// Outputs `outs[lo..hi]` are exactly those having this value as prefix.
    pub(super) lo: u32,
    pub(super) hi: u32,
    pub(super) len: usize,
}

pub(super) struct Model<'p> {
    outs: &'p [&'p [u8]],
    values: &'p [&'p [u8]],
    pub(super) states: Vec<StateInfo>,
    intern: FxMap<(u32, usize), u32>,
    pub(super) put_state: Vec<u32>,
    append_cache: FxMap<(u32, u32), u32>,
}

impl<'p> Model<'p> {
    pub(super) fn new(prob: &'p Problem<'p>) -> Self {
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
    pub(super) fn narrow_to_state(&mut self, lo: u32, hi: u32, off: usize, needle: &[u8]) -> u32 {
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
    pub(super) fn apply(&mut self, s: u32, kind: Kind, v: u32) -> u32 {
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
    pub(super) fn leads_to(&self, s: u32, t: u32) -> bool {
        if s == DEAD {
            return false;
        }
        let a = self.states[s as usize];
        let r = self.states[t as usize].lo;
        a.lo <= r && r < a.hi
    }
}
