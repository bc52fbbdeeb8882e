//! How a run fails, as data: a [`Failure`] is made where the failure is
//! found (the monitor, the network's budget, a clerk's deadline, the
//! executor's checks), with its [`FailureClass`] and what it involves
//! (servers, term, index), and is carried up to the report as a value: a
//! returned one, or the payload of the panic that stops a run. Nothing
//! above reads a failure's words: "fails the same way" compares classes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::property::Property;

/// How a run failed, for "fails the same way" (shrink, the regressions
/// file, the campaign's table). Each class has one name (see
/// [`FailureClass::name`]), which is also how files store it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureClass {
    /// The monitor found a safety property broken (or no convergence).
    Safety(Property),
    /// The clerks' history has no linearization.
    NotLinearizable,
    /// An op never completed: stuck past its deadline, or no clerk made
    /// progress after every fault healed.
    Liveness,
    /// The ops took longer on average than the run's bound.
    TooSlow,
    /// Raft used more messages or bytes than the run's efficiency bound.
    Inefficient,
    /// The run sent more messages than its budget and was stopped.
    Budget,
    /// The run did not finish within its wall-time limit (a step that
    /// never returns).
    Hung,
    /// Two runs of the same spec differed.
    Nondeterminism,
    /// Any other panic (an assertion in a workload, the time limit), by the
    /// start of its message with the numbers blanked (see [`panic_prefix`]).
    Panic(String),
}

impl FailureClass {
    /// The classes a deliberately broken server can be held to produce (all
    /// but the run's own accidents: hung, nondeterminism and panics).
    pub fn expectable() -> Vec<FailureClass> {
        let mut v: Vec<FailureClass> = Property::ALL.into_iter().map(FailureClass::Safety).collect();
        v.extend([FailureClass::NotLinearizable, FailureClass::Liveness, FailureClass::TooSlow, FailureClass::Inefficient, FailureClass::Budget]);
        v
    }

    /// The class's one name, e.g. `safety: exactly once`, `too slow`.
    pub fn name(&self) -> String {
        match self {
            FailureClass::Safety(p) => format!("safety: {}", p.name()),
            FailureClass::NotLinearizable => "not linearizable".to_string(),
            FailureClass::Liveness => "liveness".to_string(),
            FailureClass::TooSlow => "too slow".to_string(),
            FailureClass::Inefficient => "inefficient".to_string(),
            FailureClass::Budget => "budget exceeded".to_string(),
            FailureClass::Hung => "hung".to_string(),
            FailureClass::Nondeterminism => "nondeterminism".to_string(),
            FailureClass::Panic(p) => format!("panic: {p}"),
        }
    }

    /// The class a [`name`](Self::name) names (how files store a class).
    pub fn from_name(name: &str) -> Option<FailureClass> {
        if let Some(p) = name.strip_prefix("panic: ") {
            return Some(FailureClass::Panic(p.to_string()));
        }
        let mut all = FailureClass::expectable();
        all.extend([FailureClass::Hung, FailureClass::Nondeterminism]);
        all.into_iter().find(|c| c.name() == name)
    }

    /// The class as a file name part, e.g. `safety-exactly-once`.
    pub fn slug(&self) -> String {
        let mut out = String::new();
        for c in self.name().chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        out.trim_matches('-').chars().take(60).collect()
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for FailureClass {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for FailureClass {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        FailureClass::from_name(&name).ok_or_else(|| {
            let known: Vec<String> = FailureClass::expectable().iter().map(FailureClass::name).collect();
            serde::de::Error::custom(format!("unknown failure class '{name}'; one of: {}, hung, nondeterminism, panic: ...", known.join(", ")))
        })
    }
}

/// A run's failure: its class, what happened in words, and what it
/// involves where that applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub class: FailureClass,
    /// What happened, for a person (nothing reads it back).
    pub detail: String,
    /// The servers it involves (empty: the whole cluster, or none named).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// When it was found, in virtual seconds since the run began (None:
    /// found outside the simulation, by a check after the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_s: Option<f64>,
}

impl Failure {
    /// A failure of `class`, found now.
    pub fn new(class: FailureClass, detail: impl Into<String>) -> Failure {
        let at_s = madsim::time::TimeHandle::try_current().map(|t| t.elapsed().as_secs_f64());
        Failure { class, detail: detail.into(), servers: Vec::new(), term: None, index: None, at_s }
    }

    /// Safety property `p` broken, as the monitor saw it.
    pub fn safety(p: Property, detail: impl Into<String>) -> Failure {
        Failure::new(FailureClass::Safety(p), detail)
    }

    /// No linearization of the history; `key` is the key whose ops have
    /// none (the checker checks keys one by one).
    pub fn not_linearizable(key: Option<&str>) -> Failure {
        let detail = match key {
            Some(k) => format!("the ops of key {k:?} have no linearization"),
            None => "the history has no linearization".to_string(),
        };
        Failure::new(FailureClass::NotLinearizable, detail)
    }

    pub fn liveness(detail: impl Into<String>) -> Failure {
        Failure::new(FailureClass::Liveness, detail)
    }

    /// The ops took `ms_per_op` on average (virtual time), over `bound_ms`.
    pub fn too_slow(ms_per_op: f64, bound_ms: f64) -> Failure {
        Failure::new(FailureClass::TooSlow, format!("{ms_per_op:.1} ms/op > {bound_ms} ms/op (virtual time)"))
    }

    pub fn inefficient(detail: impl Into<String>) -> Failure {
        Failure::new(FailureClass::Inefficient, detail)
    }

    pub fn budget(detail: impl Into<String>) -> Failure {
        Failure::new(FailureClass::Budget, detail)
    }

    pub fn hung(detail: impl Into<String>) -> Failure {
        Failure::new(FailureClass::Hung, detail)
    }

    pub fn nondeterminism(detail: impl Into<String>) -> Failure {
        Failure::new(FailureClass::Nondeterminism, detail)
    }

    /// A panic with message `msg` (not a [`Failure`] of its own): classed
    /// by its start (see [`panic_prefix`]).
    pub fn panic(msg: impl Into<String>) -> Failure {
        let msg = msg.into();
        Failure::new(FailureClass::Panic(panic_prefix(&msg)), msg)
    }

    /// The servers it involves, sorted, once each.
    pub fn servers(mut self, servers: impl IntoIterator<Item = u64>) -> Failure {
        self.servers = servers.into_iter().collect();
        self.servers.sort_unstable();
        self.servers.dedup();
        self
    }

    pub fn term(mut self, t: u64) -> Failure {
        self.term = Some(t);
        self
    }

    pub fn index(mut self, i: u64) -> Failure {
        self.index = Some(i);
        self
    }

    /// Fails the run here: panics with this failure as the payload, which
    /// a campaign's run keeps as data (see [`super::context`]) and a test
    /// of its own prints.
    pub fn raise(self) -> ! {
        std::panic::panic_any(self)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.class {
            FailureClass::Panic(_) => write!(f, "panic: {}", self.detail)?,
            c => write!(f, "{c}: {}", self.detail)?,
        }
        if let Some(at) = self.at_s {
            write!(f, " (at {at:.3} s virtual)")?;
        }
        Ok(())
    }
}

/// The start of a panic message with what varies between runs blanked: the
/// source location dropped, every number replaced by `N`, at most 48
/// characters (e.g. `N missing element x N N y in Append result x N N`).
pub fn panic_prefix(msg: &str) -> String {
    let msg = msg.split(" (at ").next().unwrap_or(msg);
    let mut out = String::new();
    let mut in_number = false;
    for c in msg.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
        if out.chars().count() >= 48 {
            break;
        }
    }
    out.trim_end().to_string()
}
