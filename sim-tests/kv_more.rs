//! KV scenarios beyond 6.5840's: heavy duplication, one-way partitions, a
//! leader crashed right after `start`, and deliberately broken servers that
//! the history checker must catch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kvraft::kv::Bug;
use kvraft::raft::{self, Consensus, Index, MakeArgs, MakeRaft, Term};
use kvraft::sim::kv_cluster::{KvCluster, KvOptions};
use kvraft::campaign::catalog;
use kvraft::campaign::exec::run_spec_isolated;
use kvraft::campaign::report::FailureClass;
use kvraft::campaign::verify;
use kvraft::sim::monitor::Property;
use kvraft::campaign::workload::{check_clnt_appends, generic_test, GenericSpec, ELECTION_TIMEOUT};
use tokio::time::sleep;

#[madsim::test]
async fn duplication_4a() {
    // 30% of requests and replies delivered twice, on top of loss, delay,
    // partitions and whole-cluster restarts.
    let mut spec = GenericSpec::new(5, 5, true, true, true, false);
    spec.duplicate_rate = 0.3;
    let cfg = generic_test("kv_more::duplication_4a", &spec, 600.0).await;
    assert!(cfg.figures().net.duplicated > 100, "duplication did not fire");
}

#[madsim::test]
async fn one_way_partitions_4a() {
    let mut spec = GenericSpec::new(5, 5, false, false, true, false);
    spec.one_way = true;
    generic_test("kv_more::one_way_partitions_4a", &spec, 300.0).await;
}

/// Wraps a Raft so the harness learns the moment a leader accepts a command.
struct Tattletale {
    inner: Arc<dyn Consensus>,
    me: usize,
    armed: Arc<AtomicBool>,
    fired: Arc<Mutex<Option<usize>>>,
}

impl Consensus for Tattletale {
    fn start(&self, command: Vec<u8>) -> Option<(Index, Term)> {
        let r = self.inner.start(command);
        if r.is_some() && self.armed.swap(false, Ordering::SeqCst) {
            *self.fired.lock().unwrap() = Some(self.me);
        }
        r
    }
    fn state(&self) -> (Term, bool) {
        self.inner.state()
    }
    fn kill(&self) {
        self.inner.kill()
    }
}

#[madsim::test]
async fn leader_crash_after_start_4a() {
    const ROUNDS: usize = 20;
    let armed = Arc::new(AtomicBool::new(false));
    let fired: Arc<Mutex<Option<usize>>> = Arc::new(Mutex::new(None));
    let (a, f) = (armed.clone(), fired.clone());
    let base = raft::make();
    let make: MakeRaft = Arc::new(move |args: MakeArgs| {
        let me = args.me;
        let inner = base(args)?;
        Ok(Arc::new(Tattletale { inner, me, armed: a.clone(), fired: f.clone() }) as Arc<dyn Consensus>)
    });
    let mut opts = KvOptions::new(5, false);
    opts.make_raft = make;
    let cfg = KvCluster::with_options(opts, "kv_more::leader_crash_after_start_4a").await;
    cfg.begin("Test: leader crashed right after start (new)");
    let mut ck = cfg.make_client(&cfg.all()).await;
    ck.put("k", "").await;
    let mut crashes = 0;
    for n in 0..ROUNDS {
        armed.store(true, Ordering::SeqCst);
        let mut myck = cfg.make_client(&cfg.all()).await;
        let op = tokio::spawn(async move { myck.append("k", &format!("x 0 {n} y")).await });
        // Crash the leader the moment it has handed the op to Raft: the op
        // may or may not survive, but it must apply at most once, and the
        // clerk must get an answer from the new leader.
        let victim = loop {
            if let Some(v) = fired.lock().unwrap().take() {
                break Some(v);
            }
            if op.is_finished() {
                break None;
            }
            sleep(Duration::from_micros(100)).await;
        };
        if let Some(v) = victim {
            cfg.shutdown_server(v);
            crashes += 1;
        }
        op.await.expect("clerk task");
        if let Some(v) = victim {
            cfg.start_server(v).await;
            cfg.connect_all();
        }
    }
    assert!(crashes >= ROUNDS / 2, "only {crashes} of {ROUNDS} rounds crashed a leader after start");
    sleep(ELECTION_TIMEOUT).await;
    let v = ck.get("k").await;
    check_clnt_appends(0, &v, ROUNDS);
    verify::check(&cfg, 1500.0).await;
    cfg.end();
}

#[madsim::test]
async fn broken_local_get_is_caught() {
    // Gets answered from the local map: a leader cut off in a minority serves
    // a value the majority has already overwritten.
    let mut opts = KvOptions::new(5, false);
    opts.bug = Bug::LocalGet;
    let cfg = KvCluster::with_options(opts, "kv_more::broken_local_get_is_caught").await;
    let mut ck = cfg.make_client(&cfg.all()).await;
    ck.put("k", "a").await;
    let (p1, p2) = cfg.make_partition();
    // The old leader goes to the minority side.
    let (minority, majority) = (p1[..2].to_vec(), [&p1[2..], &p2[..]].concat());
    cfg.partition(&minority, &majority);
    let mut ck_major = cfg.make_client(&majority).await;
    let mut ck_minor = cfg.make_client(&minority[..1]).await;
    ck_major.put("k", "b").await;
    // Start the Get strictly after the Put returned (same instant = concurrent).
    sleep(Duration::from_millis(1)).await;
    // A correct server never answers this Get from the minority; the broken
    // one answers at once, with the stale "a".
    let stale = tokio::time::timeout(Duration::from_secs(2), ck_minor.get("k")).await;
    println!("  minority get: {stale:?}");
    let (verdict, _) = verify::linearizability(&cfg);
    assert!(!verdict.linearizable, "the checker missed a server that answers Get from its local map");
    assert_eq!(verdict.failing_key.as_deref(), Some("k"));
}

#[test]
fn broken_no_dedup_is_caught() {
    // No duplicate table: retried appends (after lost or duplicated
    // messages) apply twice. The monitor stops the run at the second apply.
    for seed in 1..=3 {
        let spec = catalog::find("broken_no_dedup").unwrap().spec(seed);
        let r = run_spec_isolated(&spec, Some(Duration::from_secs(600)), false);
        let f = r.failure.as_deref().expect("a server without a duplicate table must be caught");
        println!("  seed {seed}: {f}");
        assert_eq!(FailureClass::of(f), FailureClass::Safety(Property::ExactlyOnce), "{f}");
    }
}
