//! The depth-first search over one key's events: nodes, moves, choice-point
//! frames, and the search itself with its pruning rules and its memo.

use super::memo::{FxMap, Mask, MemoEntry};
use super::model::Model;
use super::pending::{PendIndex, PendSets};
use super::problem::{Event, Kind, Problem, DEAD, NONE};

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

struct Frame<M> {
    node: Node<M>,
    lin_len: u32,
    start: u32,
    all_generated: bool,
    cursor: u32,
}

/// What a search found, in the problem's op numbering.
pub(super) struct Outcome {
    pub linearizable: bool,
    /// Search states explored.
    pub explored: u64,
    /// If not linearizable: the longest prefix of ops that could be
    /// linearized (empty otherwise).
    pub prefix: Vec<u32>,
    /// If not linearizable: the op that could not follow that prefix.
    pub stuck: Option<u32>,
}

pub(super) struct Search<'p, M: Mask> {
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
    pub(super) fn new(p: &'p Problem<'p>, words: usize) -> Self {
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

    /// Searches for a linearization of the whole problem.
    pub(super) fn run(mut self) -> Outcome {
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
                    return Outcome { linearizable: true, explored: self.explored, prefix: Vec::new(), stuck: None };
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
                    return Outcome { linearizable: false, explored: self.explored, prefix: best, stuck: self.stuck };
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
