//! The search that learns (`fuzz --guided`, issue 26): its campaigns are
//! fixed by their seeds whatever the threads, its mutants stay inside
//! swarm's ranges and pass on a correct Raft, and a failing mutant is
//! saved as a spec that replays it.

use std::time::Duration;

use kvraft::campaign::exec::{run, RunOptions};
use kvraft::campaign::guided::{mutate, GuideOptions, GUIDED};
use kvraft::campaign::nemesis::{materialize, within_run};
use kvraft::campaign::spec::RunSpec;
use kvraft::campaign::swarm::{swarm_bound_ms, swarm_spec};
use kvraft::campaign::{Campaign, Seeds};
use kvraft::kv::Bug;
use kvraft::sim::rafts::RaftKind;
use rand::rngs::StdRng;
use rand::SeedableRng;

const LIMIT: Option<Duration> = Some(Duration::from_secs(600));

/// (scenario, seed, trace hash, passed) of a guided campaign of `count`
/// seeds from `start` on `jobs` threads, and how many runs were mutants.
fn guided(start: u64, count: u64, jobs: usize) -> (Vec<(String, u64, u64, bool)>, u64) {
    let opts = RunOptions { time_limit: LIMIT, wall_limit: Some(Duration::from_secs(60)), ..Default::default() };
    let campaign = Campaign::new(opts, jobs).guided(&Seeds::range(start, count), RaftKind::OURS, None, GuideOptions::default()).unwrap();
    assert_eq!(campaign.planned_runs(), count as usize);
    let outcome = campaign.run(&|_| {});
    let runs = outcome.reports.iter().map(|r| (r.scenario.clone(), r.seed, r.trace_hash, r.passed)).collect();
    (runs, outcome.guided.expect("a guided campaign reports what it learned").mutated)
}

/// One thread or two, the same specs run under the same seeds, in seed
/// order, and every run passes on our Raft: mutants included.
#[test]
fn guided_campaigns_are_fixed_by_their_seeds_whatever_the_threads() {
    let (one, mutated) = guided(40, 60, 1);
    let (two, _) = guided(40, 60, 2);
    assert_eq!(one, two);
    assert_eq!(one.iter().map(|r| r.1).collect::<Vec<_>>(), (40..100).collect::<Vec<_>>());
    let mutants = one.iter().filter(|r| r.0 == GUIDED).count() as u64;
    assert_eq!(mutants, mutated);
    assert!(mutants >= 15, "{mutants} mutants in 60 seeds");
    let failed: Vec<_> = one.iter().filter(|r| !r.3).collect();
    assert!(failed.is_empty(), "{failed:?}");
}

/// Mutants of swarm specs: valid, with swarm's fault ranges, a schedule
/// inside the run, and the bound swarm gives their mix; and different
/// from their parent.
#[test]
fn mutants_stay_inside_swarm_ranges() {
    let mut made = 0;
    for seed in 1..=300u64 {
        let parent = materialize(&swarm_spec(seed));
        let donor = materialize(&swarm_spec(seed + 1000));
        let mut rng = StdRng::seed_from_u64(seed);
        let Some(child) = mutate(&parent, Some(&donor), 5000 + seed, &mut rng) else { continue };
        made += 1;
        child.validate().unwrap();
        assert_eq!((child.scenario.as_str(), child.seed), (GUIDED, 5000 + seed));
        let f = &child.faults;
        assert!(f.request_loss <= 0.3 && f.reply_loss <= 0.3 && f.duplicate_rate <= 0.5 && f.replay_rate <= 0.05, "{f:?}");
        assert!(f.delay_ms[1] <= 70, "{f:?}");
        let events = child.nemesis.clone().unwrap();
        let before = parent.nemesis.as_ref().unwrap().len();
        assert!(events.len() <= before.max(64) + 4 && events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert_eq!(within_run(&child).len(), events.len(), "seed {seed}: an event past the run's end");
        assert_eq!(child.bound_ms, swarm_bound_ms(&child));
        let same = RunSpec { scenario: parent.scenario.clone(), seed: parent.seed, bound_ms: parent.bound_ms, ..child.clone() };
        assert_ne!(same, parent, "seed {seed}: the mutant changed nothing");
    }
    assert!(made >= 270, "{made} of 300 mutants valid");
}

/// A failing mutant (no scenario name and seed give it) is saved next to
/// its history, and its reproduce command's spec file replays it exactly.
#[test]
fn a_failing_mutant_replays_from_its_saved_spec() {
    let parent = materialize(&swarm_spec(7));
    let mut rng = StdRng::seed_from_u64(7);
    let child = mutate(&parent, None, 9_000_007, &mut rng).unwrap().with_bug(Bug::NoDedup);
    let r = run(&child, &RunOptions::limit(LIMIT));
    assert!(!r.passed, "a server without a duplicate table passed");
    let path = r.reproduce.strip_prefix("cargo run --release -- run --spec ").expect(&r.reproduce);
    let saved = RunSpec::load(std::path::Path::new(path)).unwrap();
    assert_eq!(saved, materialize(&child));
    let again = run(&saved, &RunOptions::limit(LIMIT));
    assert_eq!((again.trace_hash, &again.failure), (r.trace_hash, &r.failure));
    // A swarm seed as drawn replays by name: nothing is saved for it.
    let plain = run(&swarm_spec(7).with_bug(Bug::NoDedup), &RunOptions::limit(LIMIT));
    assert!(!plain.passed && plain.reproduce.contains("run swarm --seed 7"), "{}", plain.reproduce);
}
