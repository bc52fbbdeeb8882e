//! What the search's memo and nodes are made of: bit sets over the slots of
//! in-flight ops (`Mask`, and `BigMask` past 64 slots), the entry kept per
//! failed choice point, and the fast hasher behind every map of the checker
//! (`FxMap`). The memo itself and its dominance test live in the search.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};

// ---------------------------------------------------------------------------
// A fast hasher for the search's small integer keys.

#[derive(Default, Clone, Copy)]
pub(super) struct Fx(u64);

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
pub(super) type FxMap<K, V> = HashMap<K, V, FxBuild>;

// ---------------------------------------------------------------------------
// Bit sets over the "slots" of in-flight completed ops.

pub(super) trait Mask: Clone + Eq + Hash + fmt::Debug {
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
pub(super) struct BigMask(Box<[u64]>);

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
// What the memo keeps of a failed choice point (see `Search::memo`).

pub(super) struct MemoEntry<M> {
    pub(super) gets: M,
    pub(super) erasable: M,
    pub(super) pend: u32,
    pub(super) unobserved: bool,
}
