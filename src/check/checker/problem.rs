//! One key's ops as the search sees them: local op indices, the
//! time-ordered call and return events, slots for completed ops, classes of
//! pending writes, and the interned values and get outputs.

use super::memo::FxMap;
use crate::check::history::{Op, OpKind};

// ---------------------------------------------------------------------------
// The per-key problem.

pub(super) const DEAD: u32 = 0;
pub(super) const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
pub(super) struct Event {
    /// Local op index.
    pub(super) op: u32,
    pub(super) ret: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Kind {
    Get,
    Put,
    Append,
}

/// The static description of one key's ops.
pub(super) struct Problem<'a> {
    /// Local op index -> global op id.
    pub(super) ids: Vec<usize>,
    pub(super) kind: Vec<Kind>,
    /// Value id of writes (index into `values`); NONE for gets.
    pub(super) val: Vec<u32>,
    /// Target state of completed gets; NONE otherwise.
    pub(super) target: Vec<u32>,
    /// Slot of completed ops; NONE for pending ones.
    pub(super) slot: Vec<u32>,
    /// Index of the return event of completed ops; NONE for pending ones.
    pub(super) ret_idx: Vec<u32>,
    /// Index of the call event of each op.
    pub(super) call_idx: Vec<u32>,
    /// Pending-write class; NONE for completed ops.
    pub(super) pclass: Vec<u32>,
    pub(super) events: Vec<Event>,
    pub(super) max_slots: u32,
    /// Pending classes: kind and value, ops in call order.
    pub(super) class_kind: Vec<Kind>,
    pub(super) class_val: Vec<u32>,
    pub(super) class_ops: Vec<Vec<u32>>,
    /// Distinct values written.
    pub(super) values: Vec<&'a [u8]>,
    /// Whether some put writes the value.
    pub(super) value_is_put: Vec<bool>,
    /// The rank of the value among the outputs, if it is one.
    pub(super) value_out: Vec<u32>,
    /// Distinct completed-get outputs, sorted.
    pub(super) outs: Vec<&'a [u8]>,
}

impl<'a> Problem<'a> {
    /// `None` when the key trivially passes (no completed get).
    pub(super) fn build(ops: &'a [Op], ids: &[usize]) -> Option<Problem<'a>> {
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
