//! Tests of the history types, the linearizability checker, the history
//! parsers, the `check` command and the HTML timeline.

use std::path::PathBuf;

use kvraft::check::check_history;
use kvraft::check::edn::parse_edn_history;
use kvraft::check::history::gen::{generate, GenConfig};
use kvraft::check::history::{kinds, Event, History, HistoryError, NetFaults, Op, OpKind, Recorder, Role};
use kvraft::check::timeline::build_timeline;
use kvraft::check::timeline::model::{Bar, ChartId, KeyMark, Mark, MarkKind, SpanKind, World};
use kvraft::check::{load_any, parse_any};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Helpers

fn op(client: u64, kind: OpKind, key: &str, value: &str, output: Option<&str>, call: u64, ret: Option<u64>) -> Op {
    Op::new(client, kind, key, value, output.map(str::to_string), call, ret)
}
fn put(c: u64, k: &str, v: &str, call: u64, ret: u64) -> Op {
    op(c, OpKind::Put, k, v, None, call, Some(ret))
}
fn app(c: u64, k: &str, v: &str, call: u64, ret: u64) -> Op {
    op(c, OpKind::Append, k, v, None, call, Some(ret))
}
fn get(c: u64, k: &str, out: &str, call: u64, ret: u64) -> Op {
    op(c, OpKind::Get, k, "", Some(out), call, Some(ret))
}
fn pput(c: u64, k: &str, v: &str, call: u64) -> Op {
    op(c, OpKind::Put, k, v, None, call, None)
}
fn papp(c: u64, k: &str, v: &str, call: u64) -> Op {
    op(c, OpKind::Append, k, v, None, call, None)
}
fn pget(c: u64, k: &str, call: u64) -> Op {
    op(c, OpKind::Get, k, "", None, call, None)
}

/// The brute-force oracle: tries every order consistent with real time
/// (pending writes optional, pending gets ignored) against the sequential
/// model on real strings, remembering (ops done, store) pairs already
/// explored. Independent of the checker (no per-key split, no pruning).
fn brute_force(ops: &[Op]) -> bool {
    use std::collections::{BTreeMap, HashSet};
    let ops: Vec<&Op> =
        ops.iter().filter(|o| !(o.kind == OpKind::Get && (o.return_ns.is_none() || o.output.is_none()))).collect();
    assert!(ops.len() <= 64);
    let n = ops.len();
    // pred[i]: ops that returned before op i was called.
    let pred: Vec<u64> = (0..n)
        .map(|i| {
            (0..n).filter(|&j| matches!(ops[j].return_ns, Some(r) if r < ops[i].call_ns)).fold(0u64, |m, j| m | 1 << j)
        })
        .collect();
    let required: u64 = (0..n).filter(|&i| ops[i].return_ns.is_some()).fold(0u64, |m, i| m | 1 << i);
    struct Ctx<'a> {
        ops: Vec<&'a Op>,
        pred: Vec<u64>,
        required: u64,
        seen: HashSet<(u64, Vec<(String, String)>)>,
    }
    fn rec(c: &mut Ctx, done: u64, store: &mut BTreeMap<String, String>) -> bool {
        if done & c.required == c.required {
            return true;
        }
        let key: Vec<(String, String)> = store.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if !c.seen.insert((done, key)) {
            return false;
        }
        for i in 0..c.ops.len() {
            if done >> i & 1 == 1 || c.pred[i] & !done != 0 {
                continue;
            }
            let o = c.ops[i];
            let cur = store.get(&o.key).cloned().unwrap_or_default();
            match o.kind {
                OpKind::Get => {
                    if o.output.as_deref() == Some(cur.as_str()) && rec(c, done | 1 << i, store) {
                        return true;
                    }
                }
                OpKind::Put | OpKind::Append => {
                    let new = if o.kind == OpKind::Put { o.value.clone() } else { format!("{cur}{}", o.value) };
                    let old = store.insert(o.key.clone(), new);
                    let ok = rec(c, done | 1 << i, store);
                    match old {
                        Some(v) => store.insert(o.key.clone(), v),
                        None => store.remove(&o.key),
                    };
                    if ok {
                        return true;
                    }
                }
            }
        }
        false
    }
    let mut c = Ctx { ops, pred, required, seen: HashSet::new() };
    rec(&mut c, 0, &mut BTreeMap::new())
}

fn assert_lin(ops: &[Op], expect: bool) {
    let v = check_history(ops);
    assert_eq!(v.linearizable, expect, "checker said {v} for {ops:#?}\n{}", v.report(ops));
    assert_eq!(brute_force(ops), expect, "brute force disagrees with the expectation for {ops:#?}");
}

// ---------------------------------------------------------------------------
// Random histories from real executions

/// One generated op: (client, kind 0..3, key, value index, gap before call,
/// duration, where in [call, return] it takes effect (0..=100), pending,
/// a pending write takes effect).
type GenOp = (u64, u8, u8, u8, u64, u64, u64, bool, bool);

const VALUES: [&str; 5] = ["a", "b", "ab", "ba", ""];

fn gen_op() -> impl Strategy<Value = GenOp> {
    (0..4u64, 0..3u8, 0..3u8, 0..5u8, 0..4u64, 0..6u64, 0..=100u64, prop::bool::weighted(0.2), any::<bool>())
}

/// Builds a legal history: per-client sequential ops, each taking effect at a
/// point inside its interval (pending writes maybe later, maybe never).
fn build_legal(spec: &[GenOp], keys: u8, clients: u64) -> Vec<Op> {
    let mut free = vec![0u64; clients as usize];
    let mut ops = Vec::new();
    let mut effects: Vec<(u64, usize)> = Vec::new();
    for (i, &(c, k, key, v, gap, dur, at, pending, takes)) in spec.iter().enumerate() {
        let c = c % clients;
        let call = free[c as usize] + gap;
        let ret = call + dur;
        free[c as usize] = ret + 1;
        let kind = [OpKind::Get, OpKind::Put, OpKind::Append][k as usize];
        let key = format!("k{}", key % keys);
        let value = if kind == OpKind::Get {
            String::new()
        } else if v == 4 && i % 3 == 0 {
            format!("v{i}") // a unique value now and then
        } else {
            VALUES[v as usize].to_string()
        };
        let effect = call * 100 + (dur * at);
        if !pending {
            effects.push((effect, i));
        } else if kind != OpKind::Get && takes {
            effects.push((effect + 150 * dur + 7, i));
        }
        ops.push(Op::new(c, kind, key, value, None, call, if pending { None } else { Some(ret) }));
    }
    effects.sort();
    let mut store = std::collections::HashMap::<String, String>::new();
    for (_, i) in effects {
        let o = &mut ops[i];
        match o.kind {
            OpKind::Get => o.output = Some(store.get(&o.key).cloned().unwrap_or_default()),
            OpKind::Put => {
                store.insert(o.key.clone(), o.value.clone());
            }
            OpKind::Append => store.entry(o.key.clone()).or_default().push_str(&o.value),
        }
    }
    ops
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn legal_histories_are_linearizable(spec in prop::collection::vec(gen_op(), 1..=8), keys in 1..=3u8, clients in 1..=4u64) {
        let ops = build_legal(&spec, keys, clients);
        prop_assert!(brute_force(&ops), "generator made an illegal history: {:#?}", ops);
        let v = check_history(&ops);
        prop_assert!(v.linearizable, "{:#?}\n{}", ops, v.report(&ops));
    }

    #[test]
    fn mutated_histories_agree_with_brute_force(
        spec in prop::collection::vec(gen_op(), 1..=8),
        keys in 1..=3u8,
        clients in 1..=4u64,
        which in any::<prop::sample::Index>(),
        new_out in 0..8usize,
    ) {
        let mut ops = build_legal(&spec, keys, clients);
        let gets: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].output.is_some()).collect();
        if !gets.is_empty() {
            let g = gets[which.index(gets.len())];
            let old = ops[g].output.clone().unwrap();
            let out = match new_out {
                0..=4 => VALUES[new_out].to_string(),
                5 => format!("{old}a"),
                6 => "aa".to_string(),
                _ => old.chars().skip(1).collect(),
            };
            ops[g].output = Some(out);
        }
        let v = check_history(&ops);
        prop_assert_eq!(v.linearizable, brute_force(&ops), "{:#?}\n{}", ops, v.report(&ops));
    }

    /// Arbitrary (mostly illegal) histories: random intervals and outputs.
    #[test]
    fn random_histories_agree_with_brute_force(
        raw in prop::collection::vec((0..3u64, 0..3u8, 0..2u8, 0..5usize, 0..12u64, 0..8u64, prop::bool::weighted(0.2), 0..7usize), 1..=9)
    ) {
        let outs = ["", "a", "b", "ab", "ba", "aa", "aba"];
        let ops: Vec<Op> = raw.iter().map(|&(c, k, key, v, call, dur, pending, o)| {
            let kind = [OpKind::Get, OpKind::Put, OpKind::Append][k as usize];
            Op::new(
                c,
                kind,
                format!("k{key}"),
                if kind == OpKind::Get { String::new() } else { VALUES[v].to_string() },
                if kind == OpKind::Get && !pending { Some(outs[o].to_string()) } else { None },
                call,
                if pending { None } else { Some(call + dur) },
            )
        }).collect();
        let v = check_history(&ops);
        prop_assert_eq!(v.linearizable, brute_force(&ops), "{:#?}\n{}", ops, v.report(&ops));
    }
}

/// One op of a longer generated history (see `gen_op`), values drawn from
/// a larger set including longer ones.
fn gen_op_long() -> impl Strategy<Value = GenOp> {
    (0..6u64, 0..3u8, 0..2u8, 0..5u8, 0..4u64, 0..8u64, 0..=100u64, prop::bool::weighted(0.12), any::<bool>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, .. ProptestConfig::default() })]

    /// Longer histories (up to 40 ops, up to 6 clients, 2 keys, pending
    /// ops) from real executions, one read then changed: the checker agrees
    /// with the memoised brute force both before and after.
    #[test]
    fn longer_histories_agree_with_brute_force(
        spec in prop::collection::vec(gen_op_long(), 1..=40),
        clients in 1..=6u64,
        which in any::<prop::sample::Index>(),
        how in 0..6usize,
    ) {
        let mut ops = build_legal(&spec, 2, clients);
        if ops.iter().filter(|o| o.return_ns.is_none() && o.kind != OpKind::Get).count() > 8 {
            return Ok(()); // keep the oracle fast
        }
        let v = check_history(&ops);
        prop_assert!(v.linearizable, "{:#?}\n{}", ops, v.report(&ops));
        let gets: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].output.is_some()).collect();
        if gets.is_empty() {
            return Ok(());
        }
        let g = gets[which.index(gets.len())];
        let old = ops[g].output.clone().unwrap();
        // Mostly plausible wrong values: another read's value, one with a
        // piece dropped or repeated.
        let other = ops[gets[(which.index(gets.len()) + 1 + how) % gets.len()]].output.clone().unwrap();
        ops[g].output = Some(match how {
            0 | 1 => other,
            2 => old.chars().skip(1).collect(),
            3 => format!("{old}{}", old.chars().last().map(String::from).unwrap_or_else(|| "a".into())),
            4 => format!("{old}{old}"),
            _ => old.chars().take(old.chars().count().saturating_sub(1)).collect(),
        });
        let v = check_history(&ops);
        prop_assert_eq!(v.linearizable, brute_force(&ops), "{:#?}\n{}", ops, v.report(&ops));
        // The general bit sets (used beyond 64 ops in flight) agree.
        prop_assert_eq!(kvraft::check::checker::check_history_wide(&ops), v);
    }
}

/// Larger legal histories (beyond brute force) with many pending writes.
#[test]
fn generated_legal_histories_with_pending_ops() {
    for seed in 0..40 {
        for (clients, keys) in [(3, 1), (6, 2), (12, 1)] {
            let h = generate(&GenConfig {
                ops: 400,
                keys,
                clients,
                seed,
                pending_writes: 0.15,
                pending_gets: 0.1,
                slow_ops: if seed % 2 == 0 { 0.03 } else { 0.0 },
                ..GenConfig::default()
            });
            let v = check_history(&h.ops);
            assert!(v.linearizable, "seed {seed} clients {clients} keys {keys}: {}", v.report(&h.ops));
        }
    }
}

// ---------------------------------------------------------------------------
// Hand-made cases

#[test]
fn empty_and_trivial_histories() {
    assert!(check_history(&[]).linearizable);
    assert_lin(&[get(0, "k", "", 0, 1)], true);
    assert_lin(&[get(0, "k", "x", 0, 1)], false);
    assert_lin(&[put(0, "k", "x", 0, 1), get(0, "k", "x", 2, 3)], true);
    // Only writes: nothing to observe.
    assert_lin(&[put(0, "k", "x", 0, 1), app(1, "k", "y", 0, 5)], true);
}

#[test]
fn stale_read_is_illegal() {
    let ops = vec![
        put(0, "k", "1", 0, 10),
        put(0, "k", "2", 20, 30),
        get(1, "k", "1", 40, 50), // the put of "2" finished before this get began
    ];
    assert_lin(&ops, false);
    let v = check_history(&ops);
    assert_eq!(v.failing_key.as_deref(), Some("k"));
    let d = v.detail.unwrap();
    assert_eq!(d.ops, vec![0, 1, 2]);
    assert_eq!(d.linearized_prefix, vec![0, 1]);
    assert_eq!(d.stuck_op, Some(2));
    // Overlapping, it is fine.
    assert_lin(&[put(0, "k", "1", 0, 10), put(0, "k", "2", 20, 45), get(1, "k", "1", 40, 50)], true);
}

#[test]
fn lost_append_is_illegal() {
    let ops = vec![
        app(0, "k", "a", 0, 10),
        app(1, "k", "b", 5, 15),
        get(2, "k", "a", 20, 30), // "b" finished but is missing
    ];
    assert_lin(&ops, false);
    assert_lin(&[app(0, "k", "a", 0, 10), app(1, "k", "b", 5, 25), get(2, "k", "a", 20, 30)], true);
}

#[test]
fn duplicated_append_is_illegal() {
    let ops = vec![app(0, "k", "x", 0, 10), get(1, "k", "xx", 20, 30)];
    assert_lin(&ops, false);
    // With two appends of the same value it is fine.
    assert_lin(&[app(0, "k", "x", 0, 10), app(1, "k", "x", 0, 10), get(1, "k", "xx", 20, 30)], true);
    // Values repeat: "a" + "b" is "ab" whichever append wrote what.
    assert_lin(
        &[app(0, "k", "a", 0, 10), app(1, "k", "b", 0, 10), app(2, "k", "ab", 12, 14), get(1, "k", "abab", 20, 30)],
        true,
    );
    assert_lin(&[app(0, "k", "ab", 0, 10), app(1, "k", "b", 0, 10), get(1, "k", "abab", 20, 30)], false);
}

#[test]
fn read_of_a_value_never_written_is_illegal() {
    assert_lin(&[put(0, "k", "1", 0, 10), get(1, "k", "7", 5, 30)], false);
    // ...even if it is written to another key.
    assert_lin(&[put(0, "j", "7", 0, 10), get(1, "k", "7", 5, 30)], false);
}

#[test]
fn reads_must_agree_on_an_order() {
    // Two concurrent puts; readers after both see different final values.
    let ops =
        vec![put(0, "k", "a", 0, 10), put(1, "k", "b", 0, 10), get(2, "k", "a", 20, 30), get(3, "k", "b", 40, 50)];
    assert_lin(&ops, false);
    let ops = vec![put(0, "k", "a", 0, 10), put(1, "k", "b", 0, 10), get(2, "k", "a", 5, 30), get(3, "k", "b", 4, 50)];
    assert_lin(&ops, true);
}

#[test]
fn pending_writes_may_take_effect_or_not() {
    // Taken effect, much later than its call.
    assert_lin(&[pput(0, "k", "x", 0), get(1, "k", "", 10, 20), get(1, "k", "x", 100, 110)], true);
    // Never taken effect.
    assert_lin(&[pput(0, "k", "x", 0), get(1, "k", "", 100, 110)], true);
    // A pending append, used once only.
    assert_lin(&[papp(0, "k", "x", 0), get(1, "k", "x", 10, 20), get(1, "k", "x", 30, 40)], true);
    assert_lin(&[papp(0, "k", "x", 0), get(1, "k", "xx", 10, 20)], false);
    // It cannot take effect before its call.
    assert_lin(&[get(1, "k", "x", 0, 5), papp(0, "k", "x", 10)], false);
    // Taking effect, then overwritten, then read: fine.
    assert_lin(&[pput(0, "k", "p", 0), get(1, "k", "p", 5, 6), put(1, "k", "q", 7, 8), get(1, "k", "q", 9, 10)], true);
    // Once a later read shows it is gone it cannot come back.
    assert_lin(&[pput(0, "k", "p", 0), get(1, "k", "p", 5, 6), put(1, "k", "q", 7, 8), get(1, "k", "p", 9, 10)], false);
    // Pending gets constrain nothing.
    assert_lin(&[pget(0, "k", 0), put(1, "k", "q", 7, 8)], true);
    // Two pending puts of the same value, both needed.
    assert_lin(
        &[
            pput(0, "k", "p", 0),
            pput(1, "k", "p", 1),
            get(2, "k", "p", 5, 6),
            put(2, "k", "q", 7, 8),
            get(2, "k", "q", 9, 10),
            get(2, "k", "p", 11, 12),
        ],
        true,
    );
    assert_lin(
        &[
            pput(0, "k", "p", 0),
            get(2, "k", "p", 5, 6),
            put(2, "k", "q", 7, 8),
            get(2, "k", "q", 9, 10),
            get(2, "k", "p", 11, 12),
        ],
        false,
    );
}

/// Legal histories that earlier versions of the checker wrongly rejected
/// (found by the property tests and by differential fuzzing).
#[test]
fn regressions_found_by_fuzzing() {
    // A put equal to the current value still lets concurrent writes be
    // dropped before it.
    assert_lin(
        &[
            get(2, "k", "", 0, 0),
            put(1, "k", "b", 0, 2),
            put(0, "k", "b", 0, 6),
            put(1, "k", "ab", 3, 6),
            get(0, "k", "b", 7, 7),
            get(0, "k", "b", 8, 8),
        ],
        true,
    );
    // Of two identical appends, the droppable one returning first must
    // still be tried before the other.
    assert_lin(
        &[
            app(1, "k", "ab", 0, 6),
            put(2, "k", "a", 1, 2),
            app(2, "k", "b", 5, 14),
            app(0, "k", "b", 1, 10),
            get(0, "k", "abab", 11, 13),
            get(0, "k", "ababb", 16, 20),
        ],
        true,
    );
}

#[test]
fn equal_times_overlap() {
    // A returns at 10, B is called at 10: they overlap, either order is fine.
    assert_lin(&[put(0, "k", "a", 0, 10), put(1, "k", "b", 10, 20), get(2, "k", "a", 30, 40)], true);
    assert_lin(&[put(0, "k", "a", 0, 9), put(1, "k", "b", 10, 20), get(2, "k", "a", 30, 40)], false);
}

#[test]
fn keys_are_independent_and_all_failing_keys_reported() {
    let ops = vec![
        put(0, "a", "1", 0, 10),
        get(0, "a", "2", 20, 30),
        put(0, "b", "1", 0, 10),
        get(0, "b", "1", 20, 30),
        get(0, "c", "z", 0, 1),
    ];
    let v = check_history(&ops);
    assert!(!v.linearizable);
    assert_eq!(v.failing_key.as_deref(), Some("a"));
    assert_eq!(v.failing_keys, vec!["a".to_string(), "c".to_string()]);
}

#[test]
fn many_concurrent_clients_on_one_key() {
    // More than 64 ops in flight at once on one key.
    let mut ops = Vec::new();
    for c in 0..100u64 {
        ops.push(app(c, "k", "x", 0, 1000));
    }
    ops.push(get(200, "k", &"x".repeat(100), 2000, 2001));
    assert!(check_history(&ops).linearizable);
    ops.push(get(201, "k", &"x".repeat(99), 2000, 2001));
    assert!(!check_history(&ops).linearizable);
}

#[test]
fn invalid_ops_do_not_panic() {
    // A get without output counts as pending; a return before the call as at the call.
    let mut g = get(0, "k", "", 5, 1);
    g.output = None;
    let v = check_history(&[g, put(0, "k", "x", 10, 3), get(1, "k", "x", 20, 21)]);
    assert!(v.linearizable);
}

// ---------------------------------------------------------------------------
// The porcupine kv histories

fn porcupine_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/porcupine-kv"));
    if dir.join("c01-ok.txt").exists() {
        Some(dir)
    } else {
        println!("skipped: {} not found", dir.display());
        None
    }
}

#[test]
fn porcupine_kv_verdicts() {
    let Some(dir) = porcupine_dir() else { return };
    for (file, expect) in [
        ("c01-ok.txt", true),
        ("c01-bad.txt", false),
        ("c10-ok.txt", true),
        ("c10-bad.txt", false),
        ("c50-ok.txt", true),
        ("c50-bad.txt", false),
    ] {
        let h = load_any(dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
        let v = check_history(&h.ops);
        assert_eq!(v.linearizable, expect, "{file}: {v}");
        if !expect {
            let d = v.detail.as_ref().expect("failure detail");
            assert!(d.stuck_op.is_some(), "{file}");
            assert_eq!(v.failing_key.as_deref(), Some(d.key.as_str()));
        }
    }
}

#[test]
fn porcupine_kv_bad_truncations_agree_with_full_search() {
    // Check growing prefixes of c10-bad: once illegal, stays illegal.
    let Some(dir) = porcupine_dir() else { return };
    let h = load_any(dir.join("c10-bad.txt")).unwrap();
    let mut was_bad = false;
    for n in (0..=h.ops.len()).step_by(25) {
        let bad = !check_history(&h.ops[..n]).linearizable;
        assert!(!was_bad || bad, "prefix {n}");
        was_bad = bad;
    }
    assert!(was_bad);
}

// ---------------------------------------------------------------------------
// Generated large histories (correctness only; timing is in examples/bench.rs)

#[test]
fn generated_10k_history_is_linearizable() {
    let h = generate(&GenConfig { ops: 10_000, keys: 10, clients: 10, seed: 7, ..GenConfig::default() });
    let v = check_history(&h.ops);
    assert!(v.linearizable, "{}", v.report(&h.ops));
    // Break one read: it must be caught.
    let mut ops = h.ops.clone();
    let g =
        ops.iter().rposition(|o| o.kind == OpKind::Get && o.output.as_deref().is_some_and(|s| !s.is_empty())).unwrap();
    ops[g].output = Some(format!("{}!", ops[g].output.as_ref().unwrap()));
    let v = check_history(&ops);
    assert!(!v.linearizable);
    assert_eq!(v.failing_key.as_deref(), Some(ops[g].key.as_str()));
}

#[test]
fn generated_one_key_history_is_linearizable() {
    let h = generate(&GenConfig { ops: 10_000, keys: 1, clients: 10, seed: 3, ..GenConfig::default() });
    assert!(check_history(&h.ops).linearizable);
    let h = generate(&GenConfig {
        ops: 5_000,
        keys: 1,
        clients: 10,
        seed: 4,
        pending_writes: 0.1,
        pending_gets: 0.05,
        ..GenConfig::default()
    });
    assert!(check_history(&h.ops).linearizable);
}

// ---------------------------------------------------------------------------
// JSON, EDN, validation, recorder

#[test]
fn json_round_trip() {
    let h = generate(&GenConfig {
        ops: 300,
        keys: 3,
        clients: 4,
        seed: 9,
        pending_writes: 0.2,
        pending_gets: 0.2,
        ..GenConfig::default()
    });
    let text = h.to_json_string();
    let back = History::from_json_str(&text).unwrap();
    assert_eq!(back.ops, h.ops);
    assert_eq!(back.scenario, h.scenario);
    assert_eq!(back.seed, h.seed);
    // The documented field format.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let first = &v["ops"][0];
    for f in ["client", "kind", "key", "value", "output", "call_ns", "return_ns"] {
        assert!(first.get(f).is_some(), "missing {f}");
    }
    let dir = std::env::temp_dir().join(format!("kvraft-checker-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("h.json");
    h.write_json(&path).unwrap();
    assert_eq!(History::load_json(&path).unwrap().ops, h.ops);
    assert_eq!(load_any(&path).unwrap().ops, h.ops);
    std::fs::remove_dir_all(&dir).ok();
}

/// A small history with every optional field: server facts on ops, a spec,
/// and world events of every kind the timeline draws.
fn history_with_facts() -> History {
    let mut ops = vec![put(0, "k", "a", 10, 50), get(1, "k", "a", 60, 90), get(2, "k", "", 100, 140), pput(0, "k", "b", 150)];
    (ops[0].server, ops[0].term, ops[0].index) = (Some(1), Some(1), Some(3));
    (ops[1].server, ops[1].term, ops[1].index) = (Some(1), Some(1), Some(4));
    // Answered by a stale server without the log.
    ops[2].server = Some(2);
    let mut h = History::new("facts", 7, ops);
    h.spec = Some(serde_json::json!({"scenario": "facts", "seed": 7, "servers": 3}));
    let mut partition = Event::new(55, kinds::PARTITION);
    partition.groups = vec![vec![0, 1], vec![2]];
    let mut cut = Event::new(95, kinds::CUT);
    cut.links = vec![[0, 2]];
    h.events = vec![
        Event::new(0, kinds::FAULTS).faults(NetFaults { request_loss_pct: 10, reply_loss_pct: 10, duplicate_pct: 20, ..NetFaults::default() }),
        Event::new(5, kinds::ROLE).server(1).term(1).role(Role::Leader),
        partition,
        Event::new(70, kinds::ROLE).server(2).term(2).role(Role::Leader),
        Event::new(80, kinds::CRASH).server(0),
        cut,
        Event::new(110, kinds::RESTART).server(0).detail("boot 2"),
        Event::new(120, kinds::HEAL),
        Event::new(125, kinds::DISK_STALL).server(1).duration_ms(0),
        Event::new(130, kinds::FAULTS).faults(NetFaults::default()),
        Event::new(135, kinds::NEMESIS).detail("crash_leader (down 500 ms)"),
        Event::new(136, "something new").detail("kept as a note"),
    ];
    h
}

#[test]
fn json_round_trip_with_server_facts_spec_and_events() {
    let h = history_with_facts();
    let text = h.to_json_string();
    let back = History::from_json_str(&text).unwrap();
    assert_eq!(back.ops, h.ops);
    assert_eq!(back.spec, h.spec);
    assert_eq!(back.events, h.events);
    assert_eq!(back.ops[0].index, Some(3));
    assert_eq!((back.ops[2].server, back.ops[2].index), (Some(2), None));
    // Absent facts are left out of the file, so a history without them is
    // written exactly as before.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["ops"][2].get("index").is_none() && v["ops"][3].get("server").is_none());
    let plain = History::new("plain", 1, vec![put(0, "k", "v", 0, 5)]);
    let text = plain.to_json_string();
    assert!(!text.contains("server") && !text.contains("events") && !text.contains("spec"), "{text}");
    let back = History::from_json_str(&text).unwrap();
    assert!(back.spec.is_none() && back.events.is_empty() && back.ops[0].server.is_none());
    // The checker ignores the facts.
    assert_eq!(check_history(&h.ops).linearizable, check_history(&History::new("x", 1, h.ops.iter().map(|o| Op::new(o.client, o.kind, o.key.clone(), o.value.clone(), o.output.clone(), o.call_ns, o.return_ns)).collect()).ops).linearizable);
    // Through a file, with either loader.
    let d = temp_dir("facts");
    let path = d.join("h.json");
    h.write_json(&path).unwrap();
    let loaded = load_any(&path).unwrap();
    assert_eq!((loaded.ops, loaded.events), (h.ops.clone(), h.events.clone()));
    // A bad event names the file and line.
    let bad = h.to_json_string().replace("\"kind\":\"crash\"", "\"kind\":7");
    let e = History::from_json_str_named(&bad, "ev.json").unwrap_err().to_string();
    assert!(e.starts_with("ev.json: line ") && e.contains("invalid type"), "{e}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn old_history_files_still_load() {
    // The format before server facts, spec and events, as written then.
    let text = "{\"scenario\": \"swarm\", \"seed\": 46, \"ops\": [\n  {\"client\":0,\"kind\":\"put\",\"key\":\"k1\",\"value\":\"c0n0.\",\"output\":null,\"call_ns\":1000,\"return_ns\":2000},\n  {\"client\":1,\"kind\":\"get\",\"key\":\"k1\",\"value\":\"\",\"output\":\"c0n0.\",\"call_ns\":2500,\"return_ns\":3000}\n]}\n";
    let h = parse_any(text, "old.json").unwrap();
    assert_eq!(h.ops.len(), 2);
    assert!(h.spec.is_none() && h.events.is_empty() && h.ops.iter().all(|o| o.server.is_none() && o.term.is_none()));
    assert!(check_history(&h.ops).linearizable);
    // And the timeline of an old file is drawn as before, with no world lanes.
    let html = kvraft::check::timeline::render_timeline_html(&h, &check_history(&h.ops));
    assert!(!html.contains("class=\"lane world") && html.contains("client 1"));
    // EDN has no server facts either.
    let h = parse_edn_history("{:process 0, :type :invoke, :f :put, :key \"k\", :value \"a\"}\n{:process 0, :type :ok, :f :put, :key \"k\", :value \"a\"}\n", "old.edn").unwrap();
    assert!(h.events.is_empty() && h.ops[0].server.is_none());
}

#[test]
fn old_event_details_load_as_typed_fields() {
    // Events as files written before the typed fields had them: the facts
    // in `detail`.
    let text = r#"{"scenario": "old", "seed": 1, "ops": [
  {"client":0,"kind":"put","key":"k","value":"a","output":null,"call_ns":0,"return_ns":10}
], "events": [
  {"at_ns":0,"kind":"faults","detail":"loss 10/5% dup 30% delay 0-27ms long-reordering"},
  {"at_ns":1,"kind":"role","server":2,"term":3,"detail":"leader"},
  {"at_ns":2,"kind":"role","server":1,"term":3,"detail":"follower"},
  {"at_ns":3,"kind":"pause","server":1,"detail":"500 ms"},
  {"at_ns":4,"kind":"disk_stall","server":2,"detail":"300 ms, as it leads with a rewritten log"},
  {"at_ns":5,"kind":"faults"},
  {"at_ns":6,"kind":"crash","server":0,"detail":"2 unsynced writes lost"},
  {"at_ns":7,"kind":"faults","detail":"loss of words"},
  {"at_ns":8,"kind":"role","server":0,"term":4,"detail":"the leader, perhaps"},
  {"at_ns":9,"kind":"restart","server":0,"detail":"500 ms"}
]}"#;
    let h = History::from_json_str(text).unwrap();
    let e = &h.events;
    let rates = NetFaults { request_loss_pct: 10, reply_loss_pct: 5, duplicate_pct: 30, delay_ms: Some([0, 27]), long_reordering: true, replay_pct: 0 };
    assert_eq!((e[0].faults, e[0].detail.as_str()), (Some(rates), ""));
    assert_eq!((e[1].role, e[1].term, e[1].detail.as_str()), (Some(Role::Leader), Some(3), ""));
    assert_eq!(e[2].role, Some(Role::Follower));
    assert_eq!((e[3].duration_ms, e[3].detail.as_str()), (Some(500), ""));
    assert_eq!((e[4].duration_ms, e[4].detail.as_str()), (Some(300), "as it leads with a rewritten log"));
    assert_eq!(e[5].faults, Some(NetFaults::default()), "no words: every fault off");
    // Words of other kinds, and words that say no such fact, stay words.
    assert_eq!((e[6].duration_ms, e[6].detail.as_str()), (None, "2 unsynced writes lost"));
    assert_eq!((e[7].faults, e[7].detail.as_str()), (None, "loss of words"));
    assert_eq!((e[8].role, e[8].detail.as_str()), (None, "the leader, perhaps"));
    assert_eq!((e[9].duration_ms, e[9].detail.as_str()), (None, "500 ms"));
    // Written again, they are in the new form, and load the same.
    let again = h.to_json_string();
    assert!(again.contains("\"role\":\"leader\"") && again.contains("\"duration_ms\":300") && again.contains("\"faults\":{}"), "{again}");
    assert!(!again.contains("\"detail\":\"leader\"") && again.contains("\"kind\":\"pause\",\"server\":1,\"duration_ms\":500}"), "{again}");
    assert_eq!(History::from_json_str(&again).unwrap().events, h.events);
    // The words for a person say the same as before.
    assert_eq!(e[0].text(), "loss 10/5% dup 30% delay 0-27ms long-reordering");
    assert_eq!(e[4].text(), "300 ms, as it leads with a rewritten log");
    assert_eq!(NetFaults::parse(&rates.to_string()), Some(rates));
}

#[test]
fn timeline_draws_the_world_around_the_clients() {
    let h = history_with_facts();
    let v = check_history(&h.ops);
    assert!(!v.linearizable, "the stale read makes it fail");
    let html = kvraft::check::timeline::render_timeline_html(&h, &v);
    // Lanes for the network, the fault switches, the leaders and each server.
    for lane in ["network</span>", "loss/dup/delay</span>", "leaders</span>", "server 0</span>", "server 1</span>", "server 2</span>"] {
        assert!(html.contains(lane), "no lane {lane}");
    }
    // The partition with its sides, as a band across all lanes and per server.
    assert!(html.contains("A: {0,1} | B: {2}"), "partition band");
    assert!(html.contains("class=\"overlay net\""));
    assert!(html.contains(">side A<") && html.contains(">alone (B)<"));
    // The one-way cut, the fault switches, the crash and the restart.
    assert!(html.contains("cut 0→2") && html.contains("↛2") && html.contains("↚0"));
    assert!(html.contains(">loss 10/10% dup 20%<") && html.contains("class=\"overlay faults\""));
    assert!(html.contains("class=\"band down\"") && html.contains("class=\"overlay crash\"") && html.contains("class=\"overlay restart\""));
    assert!(html.contains("server 0 down from"));
    // Leaders by term: s1 in term 1, then s2 in term 2, both still leading
    // for a while (two rows).
    assert!(html.contains(">T1 s1<") && html.contains(">T2 s2<"));
    assert!(html.contains("server 1 led term 1"));
    // Ops marked with their server; the stale read has no log position.
    assert!(html.contains("applied at log index 3 in term 1"));
    assert!(html.contains("class=\"srv nolog\"") && html.contains(">s2</span>"));
    assert!(html.contains("answered by server 2 with no log position"));
    // The spec, and the events it does not draw as bands.
    assert!(html.contains("the run spec that produced this history") && html.contains("&quot;servers&quot;: 3"));
    assert!(html.contains("crash_leader (down 500 ms)") && html.contains("kept as a note"));
    // A disk stall is drawn on its server's lane (here 0 ms long).
    assert!(html.contains("class=\"band stall\"") && html.contains("disk of server 1 stalled from"), "disk stall band");
}

// The timeline's model: what the page draws, as data.

/// The spans of server `s`'s lane of kind `pick`, as (from, to, label).
fn lane_spans(w: &World, s: u64, pick: fn(SpanKind) -> bool) -> Vec<(u64, u64, String)> {
    let lane = w.server(s).unwrap_or_else(|| panic!("no lane for server {s}"));
    lane.spans.iter().filter(|sp| pick(sp.kind)).map(|sp| (sp.from, sp.to, sp.label.clone())).collect()
}

#[test]
fn timeline_model_a_crash_then_restart_is_a_down_span() {
    let h = history_with_facts();
    let t = build_timeline(&h, &check_history(&h.ops));
    let w = t.world.as_ref().expect("a world: the history has events");
    // Server 0 crashed at 80 and restarted at 110.
    assert_eq!(lane_spans(w, 0, |k| k == SpanKind::Down), vec![(80, 110, "down".to_string())]);
    let down = w.server(0).unwrap().spans.iter().find(|sp| sp.kind == SpanKind::Down).unwrap();
    assert!(down.title.contains("(boot 2)"), "{}", down.title);
    assert_eq!(
        w.marks,
        vec![Mark { at: 80, server: 0, kind: MarkKind::Crash }, Mark { at: 110, server: 0, kind: MarkKind::Restart }]
    );
    // No other server was down.
    for s in [1, 2] {
        assert!(lane_spans(w, s, |k| k == SpanKind::Down).is_empty(), "server {s}");
    }
    // A crash with no restart is down to the end of the run (the last
    // op's call, 150); a pause is a span of its own, a disk stall lasts its
    // duration_ms (cut to the end).
    let mut h2 = h.clone();
    h2.events.push(Event::new(140, kinds::CRASH).server(2));
    h2.events.push(Event::new(20, kinds::PAUSE).server(1).duration_ms(30));
    h2.events.push(Event::new(50, kinds::RESUME).server(1));
    h2.events.push(Event::new(100, kinds::DISK_STALL).server(2).duration_ms(1));
    h2.events.sort_by_key(|e| e.at_ns);
    let w2 = build_timeline(&h2, &check_history(&h2.ops)).world.unwrap();
    assert_eq!(lane_spans(&w2, 2, |k| k == SpanKind::Down), vec![(140, 150, "down".to_string())]);
    assert_eq!(lane_spans(&w2, 1, |k| k == SpanKind::Paused), vec![(20, 50, "paused".to_string())]);
    assert_eq!(lane_spans(&w2, 2, |k| k == SpanKind::DiskStall), vec![(100, 150, "disk stalled".to_string())]);
    assert_eq!(lane_spans(&w2, 1, |k| k == SpanKind::DiskStall), vec![(125, 125, "disk stalled".to_string())]);
}

#[test]
fn timeline_model_leaders_by_term() {
    let mut h = history_with_facts();
    // s1 leads term 1 from 5, s2 term 2 from 70; s1 learns of term 2 at 100.
    h.events.push(Event::new(100, kinds::ROLE).server(1).term(2).role(Role::Follower));
    h.events.push(Event::new(101, kinds::ROLE).server(0).term(3).role(Role::Candidate));
    h.events.sort_by_key(|e| e.at_ns);
    let t = build_timeline(&h, &check_history(&h.ops));
    let w = t.world.as_ref().unwrap();
    let leaders: Vec<(u64, u64, u64, u64, usize)> = w.leaders.iter().map(|l| (l.server, l.term, l.span.from, l.span.to, l.row)).collect();
    // Overlapping leaderships are in different rows; a candidate leads nothing.
    assert_eq!(leaders, vec![(1, 1, 5, 100, 0), (2, 2, 70, 150, 1)]);
    assert_eq!(w.leader_rows, 2);
    assert_eq!(w.leaders[0].span.label, "T1 s1");
    assert_eq!(lane_spans(w, 1, |k| k == SpanKind::Led { term: 1 }).iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(), vec![(5, 100)]);
    assert!(lane_spans(w, 0, |k| matches!(k, SpanKind::Led { .. })).is_empty());
    assert_eq!(t.summary.world.as_ref().unwrap().terms_with_a_leader, 2);
    // A later leader of a new term, after the first stepped down, shares row 0.
    h.events.push(Event::new(120, kinds::ROLE).server(1).term(4).role(Role::Leader));
    h.events.push(Event::new(120, kinds::ROLE).server(2).term(4).role(Role::Follower));
    h.events.sort_by_key(|e| e.at_ns);
    let w = build_timeline(&h, &check_history(&h.ops)).world.unwrap();
    let leaders: Vec<(u64, u64, u64, u64, usize)> = w.leaders.iter().map(|l| (l.server, l.term, l.span.from, l.span.to, l.row)).collect();
    assert_eq!(leaders, vec![(1, 1, 5, 100, 0), (2, 2, 70, 120, 1), (1, 4, 120, 150, 0)]);
}

#[test]
fn timeline_model_a_partition_has_sides() {
    let h = history_with_facts();
    let w = build_timeline(&h, &check_history(&h.ops)).world.unwrap();
    // Partitioned {0,1} | {2} at 55; 0→2 cut too at 95; healed at 120.
    let net: Vec<(u64, u64, &str)> = w.net.iter().map(|sp| (sp.from, sp.to, sp.label.as_str())).collect();
    assert_eq!(net, vec![(55, 95, "A: {0,1} | B: {2}"), (95, 120, "A: {0,1} | B: {2}; cut 0→2")]);
    let sides = |s| lane_spans(&w, s, |k| matches!(k, SpanKind::Side(_) | SpanKind::Alone | SpanKind::Cut | SpanKind::CutOff));
    assert_eq!(sides(0), vec![(55, 95, "side A".to_string()), (95, 120, "side A ↛2".to_string())]);
    assert_eq!(sides(1), vec![(55, 120, "side A".to_string())]);
    assert_eq!(sides(2), vec![(55, 95, "alone (B)".to_string()), (95, 120, "alone (B) ↚0".to_string())]);
    let kinds_of = |s: u64| w.server(s).unwrap().spans.iter().map(|sp| sp.kind).filter(|k| matches!(k, SpanKind::Side(_) | SpanKind::Alone)).collect::<Vec<_>>();
    assert_eq!(kinds_of(0), vec![SpanKind::Side(0), SpanKind::Side(0)]);
    assert_eq!(kinds_of(2), vec![SpanKind::Alone, SpanKind::Alone]);
    // Loss and duplication from 0 until switched off at 130.
    let faults: Vec<(u64, u64, &str)> = w.faults.iter().map(|sp| (sp.from, sp.to, sp.label.as_str())).collect();
    assert_eq!(faults, vec![(0, 130, "loss 10/10% dup 20%")]);
    // A server cut off from everyone, and one in no group.
    let mut h2 = History::new("cut off", 1, vec![put(0, "k", "a", 0, 100)]);
    let mut p = Event::new(10, kinds::PARTITION);
    p.groups = vec![vec![0, 1], vec![2, 3]];
    h2.events = vec![p, Event::new(20, kinds::DISCONNECT).server(3), Event::new(30, kinds::CONNECT).server(3)];
    let w2 = build_timeline(&h2, &check_history(&h2.ops)).world.unwrap();
    let lane3: Vec<(u64, u64, SpanKind)> = w2.server(3).unwrap().spans.iter().map(|sp| (sp.from, sp.to, sp.kind)).collect();
    assert_eq!(lane3, vec![(10, 20, SpanKind::Side(1)), (20, 30, SpanKind::CutOff), (30, 100, SpanKind::Side(1))]);
    assert_eq!(w2.net.iter().map(|sp| sp.label.as_str()).collect::<Vec<_>>(), ["A: {0,1} | B: {2,3}", "A: {0,1} | B: {2,3}; s3 cut off", "A: {0,1} | B: {2,3}"]);
}

#[test]
fn timeline_model_lists_what_it_does_not_draw() {
    let mut h = history_with_facts();
    // A faults event whose words an old file had and no reader knows.
    let mut odd = Event::new(132, kinds::FAULTS);
    odd.detail = "loss of words".into();
    h.events.push(odd);
    h.events.sort_by_key(|e| e.at_ns);
    let w = build_timeline(&h, &check_history(&h.ops)).world.unwrap();
    let notes: Vec<(u64, &str, &str)> = w.notes.iter().map(|n| (n.at_ns, n.kind.as_str(), n.text.as_str())).collect();
    assert_eq!(notes, vec![(132, "faults", "loss of words"), (135, "nemesis", "crash_leader (down 500 ms)"), (136, "something new", "kept as a note")]);
    // It switched nothing on: loss and duplication still end at 130.
    assert_eq!(w.faults.iter().map(|sp| (sp.from, sp.to)).collect::<Vec<_>>(), vec![(0, 130)]);
}

#[test]
fn timeline_model_charts_and_axes() {
    let h = history_with_facts();
    let v = check_history(&h.ops);
    let t = build_timeline(&h, &v);
    assert_eq!(t, build_timeline(&h, &v), "the same history gives the same model");
    assert_eq!(t.title, "kvraft history: facts");
    let f = t.summary.failure.as_ref().expect("not linearizable");
    assert_eq!(f.key, "k");
    let world = t.summary.world.as_ref().unwrap();
    assert_eq!((world.events, world.servers, world.partitions_or_cuts, world.crashes), (12, 3, 2, 1));
    // The overview: the whole run, from 0 to its end, every op a bar in
    // its client's lane, on the failing key.
    let o = t.overview.chart.as_ref().unwrap();
    assert_eq!((o.id, o.from_ns, o.to_ns), (ChartId::Overview, 0, 150));
    assert_eq!((t.overview.ops, t.overview.shown, t.overview.capped), (4, 4, false));
    assert_eq!(o.lanes.iter().map(|l| (l.client, l.bars.len())).collect::<Vec<_>>(), vec![(0, 2), (1, 1), (2, 1)]);
    let bars: Vec<&Bar> = o.lanes.iter().flat_map(|l| &l.bars).collect();
    assert!(bars.iter().all(|b| b.key == KeyMark::Failing && b.x >= 0.0 && b.x + b.dx <= o.width + 1e-6));
    assert!(bars.iter().all(|b| (b.x - o.x(b.op.call_ns)).abs() < 1e-9), "a bar starts at its call");
    let pending = bars.iter().find(|b| b.id == 3).unwrap();
    assert!(pending.pending && (pending.x + pending.dx - o.width).abs() < 1e-9, "a pending op runs to the right edge");
    assert!(o.ticks.len() >= 2 && o.ticks[0].shown && o.ticks.windows(2).all(|w| w[0].x < w[1].x));
    assert!(o.world.as_ref().is_some_and(|w| w.notes.len() == 2));
    // The detail view: the failing key's ops in order-of-events time, the
    // linearized prefix and the op that could not be placed.
    let d = t.detail.as_ref().expect("a detail view");
    let fd = v.detail.as_ref().unwrap();
    assert_eq!((d.key.as_str(), d.key_ops, d.shown), ("k", 4, 4));
    assert_eq!(d.prefix.iter().map(|(id, _)| *id).collect::<Vec<_>>(), fd.linearized_prefix);
    assert_eq!(d.stuck.as_ref().map(|(id, _)| *id), fd.stuck_op);
    let c = &d.chart;
    assert_eq!((c.id, c.from_ns, c.to_ns), (ChartId::Detail, 10, 150));
    // Each distinct call or return time is one step of x (18 px); a time
    // in between is placed at the next one, a later one at the right edge.
    let xs: Vec<f64> = [10, 50, 60, 90, 100, 140, 150, 55, 151].iter().map(|t| c.x(*t)).collect();
    assert_eq!(xs, vec![0.0, 18.0, 36.0, 54.0, 72.0, 90.0, 108.0, 36.0, c.width]);
    assert_eq!(c.width, (7.0 + 3.0) * 18.0);
    assert_eq!(c.ticks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>()[..2], ["0.0000 s", "0.0000 s"]);
    assert_eq!(c.ticks.len(), 7);
    // Put #0 (10..50) spans its call's step to just before the step after its return.
    let put0 = c.lanes.iter().flat_map(|l| &l.bars).find(|b| b.id == 0).unwrap();
    assert_eq!((put0.x, put0.dx), (0.0, 2.0 * 18.0 - 2.0));
    let stuck: Vec<&Bar> = c.lanes.iter().flat_map(|l| &l.bars).filter(|b| b.stuck).collect();
    assert_eq!(stuck.iter().map(|b| b.id).collect::<Vec<_>>(), fd.stuck_op.into_iter().collect::<Vec<_>>());
    // Its world is the one over the key's stretch of time, with no list.
    let cw = c.world.as_ref().unwrap();
    assert!(cw.notes.is_empty() && cw.faults.len() == 1 && cw.marks.len() == 2);
    // A linearizable history with no events: no world, no detail view,
    // time from the first call to the last return.
    let plain = History::new("plain", 1, vec![put(0, "k", "v", 1000, 2000), get(1, "k", "v", 2500, 3000)]);
    let t = build_timeline(&plain, &check_history(&plain.ops));
    assert!(t.world.is_none() && t.detail.is_none() && t.summary.failure.is_none());
    let o = t.overview.chart.unwrap();
    assert_eq!((o.from_ns, o.to_ns, o.world.is_none()), (1000, 3000, true));
    assert!(o.lanes.iter().flat_map(|l| &l.bars).all(|b| b.key == KeyMark::Plain && b.order.is_none()));
}

#[test]
fn timeline_model_caps_the_overview_and_keeps_the_failing_key() {
    use kvraft::check::timeline::model::OVERVIEW_MAX_OPS;
    let mut ops: Vec<Op> = (0..OVERVIEW_MAX_OPS as u64 + 50).map(|i| put(i % 5, &format!("k{}", i % 3), "v", i * 10, i * 10 + 5)).collect();
    ops.push(get(7, "bad", "never written", 5, 6));
    let h = History::new("big", 1, ops);
    let v = check_history(&h.ops);
    let t = build_timeline(&h, &v);
    assert!(t.overview.capped && t.overview.shown == OVERVIEW_MAX_OPS && t.overview.ops == OVERVIEW_MAX_OPS + 51);
    let o = t.overview.chart.unwrap();
    let ids: Vec<usize> = o.lanes.iter().flat_map(|l| &l.bars).map(|b| b.id).collect();
    assert_eq!(ids.len(), OVERVIEW_MAX_OPS);
    assert!(ids.contains(&(OVERVIEW_MAX_OPS + 50)), "the failing key's op is drawn");
    assert!(!ids.contains(&(OVERVIEW_MAX_OPS + 49)), "the latest other op is not");
}

#[test]
fn timeline_tick_labels_do_not_overlap() {
    // Left edges and label widths as the page lays them out (10 px font).
    fn shown_ticks(html: &str, chart: &str) -> Vec<(f64, usize)> {
        let start = html.find(&format!("id=\"{chart}\"")).unwrap();
        let axis = &html[start..];
        let axis = &axis[..axis.find("</div>\n").unwrap()];
        axis.split("<div class=\"tick\"")
            .skip(1)
            .map(|t| {
                let left: f64 = t.split("left:").nth(1).unwrap().split("px").next().unwrap().parse().unwrap();
                let text = t.split('>').nth(1).unwrap().split('<').next().unwrap();
                (left, text.chars().count())
            })
            .collect()
    }
    let h = generate(&GenConfig { ops: 400, keys: 1, clients: 8, seed: 3, ..GenConfig::default() });
    let mut bad = h.clone();
    // Break it: a get of a value nobody wrote.
    let g = bad.ops.iter().position(|o| o.kind == OpKind::Get && o.return_ns.is_some()).unwrap();
    bad.ops[g].output = Some("never written".into());
    let v = check_history(&bad.ops);
    assert!(!v.linearizable);
    let html = kvraft::check::timeline::render_timeline_html(&bad, &v);
    for chart in ["detail", "overview"] {
        let ticks = shown_ticks(&html, chart);
        assert!(ticks.len() >= 3, "{chart}: only {} ticks shown", ticks.len());
        for w in ticks.windows(2) {
            let right = w[0].0 + w[0].1 as f64 * 6.2;
            assert!(w[1].0 >= right + 8.0, "{chart}: tick at {} overlaps the one at {} ({} chars)", w[1].0, w[0].0, w[0].1);
        }
    }
}

#[test]
fn json_format_exactly() {
    let text = r#"{"scenario": "s", "seed": 123, "ops": [
        {"client": 0, "kind": "put", "key": "k", "value": "v", "output": null, "call_ns": 0, "return_ns": 5},
        {"client": 1, "kind": "get", "key": "k", "value": "", "output": "v", "call_ns": 6, "return_ns": 9},
        {"client": 2, "kind": "append", "key": "k", "value": "w", "output": null, "call_ns": 6, "return_ns": null}
    ]}"#;
    let h = History::from_json_str(text).unwrap();
    assert_eq!(h.seed, 123);
    assert_eq!(h.ops[1].output.as_deref(), Some("v"));
    assert_eq!(h.ops[2].return_ns, None);
    assert!(check_history(&h.ops).linearizable);
}

#[test]
fn bad_json_reports_line_and_column() {
    let text = "{\"scenario\": \"s\", \"seed\": 1, \"ops\": [\n  {\"client\": 0, \"kind\": \"frob\"}\n]}";
    let e = History::from_json_str_named(text, "bad.json").unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, HistoryError::Json { line: 2, .. }), "{msg}");
    assert!(msg.contains("bad.json") && msg.contains("line 2"), "{msg}");
    // Truncated file.
    let e = History::from_json_str_named("{\"scenario\": \"s\", \"seed\": 1, \"ops\": [", "t.json").unwrap_err();
    assert!(e.to_string().contains("t.json: line 1"), "{e}");
    // Well-formed JSON, invalid history.
    let text = r#"{"scenario": "s", "seed": 1, "ops": [{"client": 0, "kind": "get", "key": "k", "value": "", "output": null, "call_ns": 0, "return_ns": 5}]}"#;
    let e = History::from_json_str_named(text, "v.json").unwrap_err();
    assert!(e.to_string().contains("v.json: op 0: get returned but has no output"), "{e}");
    let text = r#"{"scenario": "s", "seed": 1, "ops": [{"client": 0, "kind": "put", "key": "k", "value": "x", "output": null, "call_ns": 9, "return_ns": 5}]}"#;
    let e = History::from_json_str(text).unwrap_err();
    assert!(e.to_string().contains("before its call"), "{e}");
    // Missing file.
    let e = load_any("/nonexistent/h.json").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/h.json"), "{e}");
}

#[test]
fn edn_parsing() {
    let text = r#"
{:process 0, :type :invoke, :f :put, :key "k", :value "a\"b"}
{:type :invoke, :process 1, :f :get, :key "k", :value nil}
{:process 0 :type :ok :f :put :key "k" :value "a\"b"}   ; comment
{:process 1, :type :ok, :f :get, :key "k", :value "a\"b"}
{:process 2, :type :invoke, :f :append, :key "k", :value "\u00e9\n"}
{:process 3, :type :invoke, :f :append, :key "k", :value "z"}
{:process 3, :type :fail, :f :append, :key "k", :value "z"}
{:process 4, :type :invoke, :f :get, :key "k", :value nil}
{:process 4, :type :info, :f :get, :key "k", :value nil}
{:process :nemesis, :type :info, :f :start, :value nil}
{:process 5, :type :invoke, :f :put, :value [7 "v"]}
"#;
    let h = parse_edn_history(text, "t.edn").unwrap();
    assert_eq!(h.ops.len(), 5);
    assert_eq!(h.ops[0].value, "a\"b");
    assert_eq!((h.ops[0].call_ns, h.ops[0].return_ns), (2, Some(4)));
    assert_eq!(h.ops[1].output.as_deref(), Some("a\"b"));
    assert_eq!(h.ops[2].value, "é\n");
    assert_eq!(h.ops[2].return_ns, None); // never completed: pending
    assert_eq!(h.ops[3].kind, OpKind::Get); // :info: pending
    assert_eq!(h.ops[3].return_ns, None);
    assert_eq!((h.ops[4].key.as_str(), h.ops[4].value.as_str()), ("7", "v"));
    assert!(check_history(&h.ops).linearizable);
}

#[test]
fn bad_edn_reports_line() {
    let cases: &[(&str, usize, &str)] = &[
        ("{:process 0, :type :invoke, :f :get, :key \"k\", :value nil}\n{:process 0, :type :ok, :f :get, :key \"k\", :value \"unterminated}\n", 2, "unterminated string"),
        ("\n\n{:process 0, :type :invoke, :f :get, :key \"k\"\n", 3, "never closed"),
        ("{:process 0, :type :ok, :f :get, :key \"k\", :value nil}", 1, "never invoked"),
        ("{:process 0, :type :invoke, :f :frob, :key \"k\"}", 1, "unknown :f"),
        ("{:process 0, :type :invoke, :f :get, :key \"k\"}\n{:process 0, :type :invoke, :f :get, :key \"k\"}", 2, "line 1"),
        ("{:process 0, :type :invoke, :f :get, :key \"k\"}\n{:process 0, :type :ok, :f :put, :key \"k\"}", 2, "completes a :get"),
        ("{:process 0, :type :invoke}", 1, "no :f"),
        ("{:process 0 :type}", 1, "odd number"),
        ("[1 2 3]", 1, "expected an event map"),
        ("{:a \"\\q\"}", 1, "unknown escape"),
        ("}", 1, "unexpected '}'"),
        ("{:process 0, :type :invoke, :f :put, :key \"k\", :value {:x 1}}", 1, "must be a string"),
        ("{:process -3, :type :invoke, :f :put, :key \"k\", :value \"v\"}", 1, "non-negative"),
    ];
    for (text, line, what) in cases {
        let e = parse_edn_history(text, "bad.edn").unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, HistoryError::Edn { line: l, .. } if l == *line), "{text:?}: {msg}");
        assert!(msg.starts_with(&format!("bad.edn: line {line}: ")), "{msg}");
        assert!(msg.contains(what), "{text:?}: {msg}");
    }
    // Deep nesting and garbage do not panic.
    let deep = "[".repeat(100_000);
    assert!(parse_edn_history(&deep, "deep.edn").is_err());
    let tags = "#_ ".repeat(100_000) + "1";
    assert!(parse_edn_history(&tags, "tags.edn").is_err());
    for junk in [
        "\\",
        "#",
        ":",
        "{:a #_}",
        "\"\\u12\"",
        "\"\\ud800\"",
        "#{",
        "\u{0}",
        "{:process 99999999999999999999999 :type :invoke}",
    ] {
        assert!(parse_edn_history(junk, "j.edn").is_err(), "{junk:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, .. ProptestConfig::default() })]
    /// The timeline draws any history with any events (times, servers,
    /// groups and links out of order or out of range) without panicking.
    #[test]
    fn timeline_never_panics_on_odd_events(
        raw in prop::collection::vec((0..17usize, prop::num::u64::ANY, 0..4u64, prop::collection::vec(prop::collection::vec(0..6u64, 0..4), 0..3), prop::collection::vec((0..6u64, 0..6u64), 0..3), prop::bool::ANY), 0..25),
        servers in prop::collection::vec(prop::option::of(prop::num::u64::ANY), 4),
    ) {
        let all = [kinds::PARTITION, kinds::CUT, kinds::HEAL, kinds::DISCONNECT, kinds::CONNECT, kinds::CRASH, kinds::RESTART, kinds::FAULTS, kinds::ROLE, kinds::NEMESIS, kinds::CLERK_LINKS, kinds::PHASE, kinds::PAUSE, kinds::RESUME, kinds::DISK_STALL, "odd", ""];
        let events: Vec<Event> = raw.iter().map(|(k, at, s, groups, links, leader)| {
            let mut e = Event::new(*at, all[*k]).server(*s).term(*at % 7);
            e.groups = groups.clone();
            e.links = links.iter().map(|(a, b)| [*a, *b]).collect();
            match (*leader, at % 3) {
                (true, _) => e.role = Some(Role::Leader),
                (false, 0) => e.duration_ms = Some(*at),
                (false, 1) => e.faults = Some(NetFaults { request_loss_pct: 10, ..NetFaults::default() }),
                _ => e.detail = "words".into(),
            }
            e
        }).collect();
        let mut ops = vec![put(0, "k", "a", 10, 50), get(1, "k", "b", 60, 90), pget(2, "k", 70), get(0, "k", "a", 0, u64::MAX / 2)];
        for (o, s) in ops.iter_mut().zip(&servers) {
            o.server = *s;
            o.index = s.map(|x| x / 3);
        }
        let mut h = History::new("odd", 1, ops);
        h.events = events;
        let v = check_history(&h.ops);
        let html = kvraft::check::timeline::render_timeline_html(&h, &v);
        prop_assert!(html.ends_with("</body></html>\n"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, .. ProptestConfig::default() })]
    /// The parsers never panic on arbitrary input.
    #[test]
    fn parsers_never_panic(s in "\\PC{0,80}", t in "[{}:\\[\\]\"\\\\#_ a-z0-9,\n]{0,80}") {
        let _ = parse_edn_history(&s, "x");
        let _ = parse_edn_history(&t, "x");
        let _ = parse_any(&s, "x");
        let _ = parse_any(&format!("{{\"{t}"), "x");
    }
}

#[test]
fn validation_rejects_malformed_ops() {
    let ok = History::new("s", 1, vec![put(0, "k", "v", 0, 5), get(0, "k", "v", 6, 7)]);
    assert!(ok.validate().is_ok());
    let mut bad = ok.clone();
    bad.ops[0].return_ns = Some(0);
    bad.ops[0].call_ns = 3;
    assert!(bad.validate().is_err());
    let mut bad = ok.clone();
    bad.ops[1].output = None;
    assert!(bad.validate().is_err());
    let mut bad = ok.clone();
    bad.ops[0].output = Some("x".into());
    assert!(bad.validate().unwrap_err().to_string().contains("op 0: put has an output"));
    let mut bad = ok.clone();
    bad.ops[1].return_ns = None;
    assert!(bad.validate().is_err());
}

#[test]
fn recorder_records_calls_and_returns() {
    let r = Recorder::new();
    let r2 = r.clone();
    let a = r.call(0, OpKind::Put, "k", "v", 10);
    let b = r2.call(1, OpKind::Get, "k", "", 12);
    let c = r2.call(2, OpKind::Append, "k", "w", 13);
    r.ret(a, None, 20);
    r2.ret(b, Some("v".into()), 25);
    let ops = r.snapshot();
    assert_eq!(ops.len(), 3);
    assert_eq!(ops[0].return_ns, Some(20));
    assert_eq!(ops[1].output.as_deref(), Some("v"));
    assert_eq!(ops[2].return_ns, None);
    let _ = c;
    let h = r.history("rec", 5);
    assert!(h.validate().is_ok());
    assert!(check_history(&h.ops).linearizable);
}

// ---------------------------------------------------------------------------
// The check command and the timeline

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kvraft-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn check_command_exit_codes() {
    use kvraft::check::cmd::run_check;
    let d = temp_dir("checkcmd");
    let good = d.join("good.json");
    History::new("g", 1, vec![put(0, "k", "v", 0, 5), get(0, "k", "v", 6, 7)]).write_json(&good).unwrap();
    let badlin = d.join("bad.edn");
    std::fs::write(
        &badlin,
        "{:process 0, :type :invoke, :f :put, :key \"k\", :value \"v\"}\n{:process 0, :type :ok, :f :put, :key \"k\", :value \"v\"}\n{:process 1, :type :invoke, :f :get, :key \"k\", :value nil}\n{:process 1, :type :ok, :f :get, :key \"k\", :value \"w\"}\n",
    )
    .unwrap();
    let broken = d.join("broken.json");
    std::fs::write(&broken, "{\"scenario\": 1}").unwrap();
    assert_eq!(run_check(std::slice::from_ref(&good)), 0);
    assert_eq!(run_check(&[good.clone(), badlin.clone()]), 1);
    assert_eq!(run_check(&[good.clone(), badlin.clone(), broken.clone()]), 2);
    assert_eq!(run_check(&[d.join("missing.json")]), 2);
    if let Some(dir) = porcupine_dir() {
        assert_eq!(run_check(&[dir.join("c10-ok.txt"), dir.join("c50-ok.txt")]), 0);
        assert_eq!(run_check(&[dir.join("c50-bad.txt")]), 1);
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn timeline_html_is_self_contained_and_escaped() {
    use kvraft::check::timeline::write_timeline_html;
    let d = temp_dir("timeline");
    let ops = vec![
        put(0, "k<script>", "<b>&\"'", 0, 10),
        get(1, "k<script>", "nope</div>", 5, 20),
        pput(2, "k<script>", "p", 3),
        get(3, "other", "", 1, 2),
    ];
    let h = History::new("scenario <x>", 42, ops);
    let v = check_history(&h.ops);
    assert!(!v.linearizable);
    let path = d.join("t.html");
    write_timeline_html(&h, &v, &path).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script>\"") && !html.contains("k<script>"), "unescaped text");
    assert!(html.contains("k&lt;script&gt;"));
    assert!(html.contains("scenario &lt;x&gt;"));
    assert!(html.contains("NOT linearizable"));
    assert!(!html.contains("http://") && !html.contains("https://"), "external assets");
    // Linearizable, and large.
    let h =
        generate(&GenConfig { ops: 5000, keys: 5, clients: 20, seed: 2, pending_writes: 0.05, ..GenConfig::default() });
    let v = check_history(&h.ops);
    write_timeline_html(&h, &v, &path).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.contains("linearizable"));
    // A large failing one.
    if let Some(dir) = porcupine_dir() {
        let h = load_any(dir.join("c50-bad.txt")).unwrap();
        let v = check_history(&h.ops);
        write_timeline_html(&h, &v, &path).unwrap();
        let html = std::fs::read_to_string(&path).unwrap();
        assert!(html.contains("NOT linearizable"));
    }
    std::fs::remove_dir_all(&d).ok();
}

// ---------------------------------------------------------------------------
// Timing (not a pass/fail criterion): `cargo test --release --test suite -- checker::timing --ignored --nocapture`

#[test]
#[ignore]
fn timing() {
    use std::time::Instant;
    fn best(n: usize, mut f: impl FnMut() -> bool) -> (f64, bool) {
        let mut b = f64::MAX;
        let mut r = false;
        for _ in 0..n {
            let t = Instant::now();
            r = f();
            b = b.min(t.elapsed().as_secs_f64() * 1e3);
        }
        (b, r)
    }
    if let Some(dir) = porcupine_dir() {
        for f in ["c01-ok.txt", "c01-bad.txt", "c10-ok.txt", "c10-bad.txt", "c50-ok.txt", "c50-bad.txt"] {
            let text = std::fs::read_to_string(dir.join(f)).unwrap();
            let (ms, ok) = best(5, || check_history(&parse_any(&text, f).unwrap().ops).linearizable);
            println!("{f:<12} parse+check {ms:>8.2} ms  {}", if ok { "linearizable" } else { "NOT linearizable" });
        }
    }
    let base = GenConfig { ops: 10_000, keys: 10, clients: 10, seed: 1, ..GenConfig::default() };
    for (name, cfg, reps) in [
        ("10k ops, 10 keys, 10 clients", base.clone(), 5),
        ("10k ops, 10 keys, 50 clients", GenConfig { clients: 50, ..base.clone() }, 5),
        ("10k ops, 1 key, 10 clients", GenConfig { keys: 1, ..base.clone() }, 5),
        ("10k ops, 10% pending writes", GenConfig { pending_writes: 0.1, pending_gets: 0.1, ..base.clone() }, 5),
        (
            "10k ops, 1 key, 10% pending",
            GenConfig { keys: 1, pending_writes: 0.1, pending_gets: 0.1, ..base.clone() },
            5,
        ),
        ("100k ops, 10 keys, 10 clients", GenConfig { ops: 100_000, ..base.clone() }, 2),
    ] {
        let json = generate(&cfg).to_json_string();
        let (ms, ok) = best(reps, || check_history(&History::from_json_str(&json).unwrap().ops).linearizable);
        assert!(ok);
        println!("{name:<32} parse+check {ms:>8.2} ms");
    }
    let h = generate(&GenConfig { ops: 1_000_000, ..base });
    let (ms, ok) = best(1, || check_history(&h.ops).linearizable);
    assert!(ok);
    println!("{:<32} check       {ms:>8.2} ms", "1M ops, 10 keys, 10 clients");
}
