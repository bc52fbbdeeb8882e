//! The regressions file (`sim-tests/regressions.json`): runs that once
//! failed, kept as specs and replayed by `cargo test`.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::nemesis;
use super::report::RunReport;
use super::spec::{json_error, RunSpec};
use crate::kv::Bug;
use crate::sim::failure::FailureClass;

/// The regressions file (`sim-tests/regressions.json`): runs that once
/// failed, replayed by `cargo test --release --test suite -- regressions::`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegressionFile {
    /// What the file is (kept at the top of the file as its documentation).
    pub about: String,
    pub entries: Vec<Regression>,
}

/// One regression: a run and what it must do now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regression {
    /// Unique in the file; names the test's output line.
    pub name: String,
    /// Why it is here: the bug it found, or why the run is worth keeping.
    pub why: String,
    /// "pass" (the bug was fixed), or the failure class a deliberately
    /// broken server must keep producing (stored by its name).
    #[serde(default)]
    pub expect: Expect,
    pub spec: RunSpec,
}

/// What a regression's run must do now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Expect {
    /// Pass: the bug it found was fixed.
    #[default]
    Pass,
    /// Fail this way: a deliberately broken server keeps producing its
    /// failure (one of [`FailureClass::expectable`]).
    Fail(FailureClass),
}

impl Expect {
    /// How a file spells it: `pass`, or the class's name.
    pub fn name(&self) -> String {
        match self {
            Expect::Pass => "pass".to_string(),
            Expect::Fail(c) => c.name(),
        }
    }

    /// Whether a run with this failure (None: it passed) did what was expected.
    pub fn met_by(&self, failure: Option<&FailureClass>) -> bool {
        match self {
            Expect::Pass => failure.is_none(),
            Expect::Fail(c) => failure == Some(c),
        }
    }
}

impl Serialize for Expect {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if name == "pass" {
            return Ok(Expect::Pass);
        }
        match FailureClass::from_name(&name).filter(|c| FailureClass::expectable().contains(c)) {
            Some(c) => Ok(Expect::Fail(c)),
            None => {
                let known: Vec<String> = FailureClass::expectable().iter().map(FailureClass::name).collect();
                Err(serde::de::Error::custom(format!("expect is '{name}'; use one of: pass, {}", known.join(", "))))
            }
        }
    }
}

impl Regression {
    /// The entry of a failing run: expected to pass once the bug is fixed;
    /// with a deliberate bug, expected to keep failing the same way.
    pub fn of_failure(r: &RunReport) -> Regression {
        let class = r.failure.as_ref().map(|f| f.class.clone());
        let expect = match class {
            Some(c) if r.spec.bug != Bug::None && FailureClass::expectable().contains(&c) => Expect::Fail(c),
            _ => Expect::Pass,
        };
        let failure = r.failure.as_ref().map(|f| f.to_string()).unwrap_or_default();
        Regression {
            name: format!("{}-{}", r.scenario, r.seed),
            why: format!("found by kvraft fuzz ({}): {failure}. Say what the bug was once it is fixed.", r.mix),
            expect,
            spec: nemesis::materialize(&r.spec),
        }
    }
}

pub const REGRESSIONS_ABOUT: &str = "Regressions: runs that once failed (or are worth keeping), \
replayed by `cargo test --release --test suite -- regressions::`. Each entry: name (unique), why (the bug it \
found, or why it is kept), expect (\"pass\", or for a deliberately broken server the failure class it \
must keep producing: \"safety: <property>\" (e.g. \"safety: exactly once\"), \"not linearizable\", \"liveness\", \"too slow\", \"inefficient\" \
or \"budget exceeded\"), spec (a run spec, as \
`kvraft run --spec` reads). `kvraft fuzz --save-failures FILE` appends failing runs; once the bug \
is fixed, edit `why` to say what it was.";

impl RegressionFile {
    pub fn new() -> Self {
        RegressionFile { about: REGRESSIONS_ABOUT.to_string(), entries: Vec::new() }
    }

    /// Reads and validates a regressions file (every spec, unique names).
    pub fn load(path: &Path) -> Result<RegressionFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let origin = path.display().to_string();
        let f: RegressionFile = serde_json::from_str(&text).map_err(|e| json_error(&origin, &e, "invalid regressions file"))?;
        for (i, r) in f.entries.iter().enumerate() {
            r.spec.validate().map_err(|e| format!("{origin}: entry {i} ({}): invalid spec: {e}", r.name))?;
            if f.entries[..i].iter().any(|o| o.name == r.name) {
                return Err(format!("{origin}: entry {i}: the name '{}' is used twice", r.name));
            }
        }
        Ok(f)
    }

    /// Appends `entries` to the file at `path` (created if missing), making
    /// names unique.
    pub fn append(path: &Path, entries: Vec<Regression>) -> Result<usize, String> {
        let mut f = if path.exists() { RegressionFile::load(path)? } else { RegressionFile::new() };
        let n = entries.len();
        for mut e in entries {
            let base = e.name.clone();
            let mut k = 2;
            while f.entries.iter().any(|o| o.name == e.name) {
                e.name = format!("{base}-{k}");
                k += 1;
            }
            f.entries.push(e);
        }
        let text = serde_json::to_string_pretty(&f).expect("a regressions file serialises") + "\n";
        std::fs::write(path, text).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        Ok(n)
    }
}

impl Default for RegressionFile {
    fn default() -> Self {
        Self::new()
    }
}
