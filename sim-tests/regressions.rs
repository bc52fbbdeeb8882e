//! Replays `sim-tests/regressions.json`, the way proptest keeps its
//! regressions: runs that once failed stay in the suite for good.
//!
//! The file is one JSON object: `about` (this format, in a sentence) and
//! `entries`, each with
//! - `name`: unique, printed with the result;
//! - `why`: the bug the run found and how it was fixed, or why the run is
//!   worth keeping;
//! - `expect`: `"pass"` (the bug was fixed: the run must pass), or, for a
//!   deliberately broken server, the failure class it must keep producing
//!   (`"safety: <property>"` such as `"safety: exactly once"`, `"not
//!   linearizable"`, `"liveness"`, `"too slow"`, `"inefficient"`, `"budget
//!   exceeded"`);
//! - `spec`: the run spec, exactly as `kvraft run --spec FILE` reads it.
//!
//! `kvraft fuzz --save-failures FILE` appends failing runs in this format;
//! `kvraft shrink ... --out FILE` writes a spec to paste into an entry.
//! Every entry is also run twice and must replay bit for bit.

use std::path::Path;
use std::time::Duration;

use kvraft::campaign::{run, RunOptions};
use kvraft::campaign::regressions::RegressionFile;

#[test]
fn regressions_replay() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sim-tests/regressions.json");
    let file = RegressionFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!file.entries.is_empty(), "{} has no entries", path.display());
    let mut wrong = Vec::new();
    for e in &file.entries {
        let r = run(&e.spec, &RunOptions::limit(Some(Duration::from_secs(600))).determinism(true));
        let got = r.failure.as_ref().map_or("pass".to_string(), |f| f.class.name());
        println!(
            "{:<32} expect {:<17} got {:<17} ({} ops, {:.1} ms/op, bound {}; {})",
            e.name,
            e.expect.name(),
            got,
            r.ops, r.ms_per_op, r.bound_ms, r.mix
        );
        if !e.expect.met_by(r.failure.as_ref().map(|f| &f.class)) {
            wrong.push(format!(
                "{}: expected {}, got {} ({}); replay: cargo run --release -- run --spec FILE with the entry's spec",
                e.name,
                e.expect.name(),
                got,
                r.failure.as_ref().map_or("passed".to_string(), |f| f.to_string())
            ));
        }
    }
    assert!(wrong.is_empty(), "regressions not as expected:\n{}", wrong.join("\n"));
}
