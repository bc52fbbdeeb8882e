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

mod memo;
mod model;
mod pending;
mod problem;
mod search;

use std::collections::BTreeMap;
use std::fmt;

use super::history::{Op, OpKind};
use memo::BigMask;
use problem::Problem;
use search::Search;

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
    let found = if words == 1 && !wide {
        Search::<u64>::new(&prob, 1).run()
    } else {
        Search::<BigMask>::new(&prob, words).run()
    };
    let map = |v: Vec<u32>| v.into_iter().map(|k| prob.ids[k as usize]).collect::<Vec<_>>();
    KeyResult {
        ok: found.linearizable,
        explored: found.explored,
        prefix: if found.linearizable { Vec::new() } else { map(found.prefix) },
        stuck: found.stuck.map(|k| prob.ids[k as usize]),
    }
}
