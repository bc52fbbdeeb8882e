//! The Rafts the harness knows by name: a registry, open to other crates.
//! This crate registers its own Raft (`ours`) and tikv's raft-rs behind the
//! same `MakeRaft` seam (`raft-rs`); a user's crate registers its Raft with
//! [`register`] and then names it wherever a Raft is named: run specs,
//! campaigns, the command line.
//!
//! ```ignore
//! let mine = kvraft::sim::rafts::register(RaftInfo {
//!     name: "mine",
//!     about: "my Raft, from my crate",
//!     make: my_crate::make_raft,
//!     appends_at_election: false,
//! })?;
//! ```

use std::fmt;
use std::sync::{LazyLock, RwLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::raft::MakeRaft;

/// What the registry knows of one Raft.
#[derive(Clone, Copy, Debug)]
pub struct RaftInfo {
    /// Its name in run specs and on the command line (unique).
    pub name: &'static str,
    /// One line about it, for listings.
    pub about: &'static str,
    /// Makes the factory every boot of every server calls.
    pub make: fn() -> MakeRaft,
    /// Whether a new leader appends an entry of its own (a no-op) at each
    /// election, as raft-rs and openraft do: entries a test proposes land
    /// one index later than in 6.5840's convention.
    pub appends_at_election: bool,
}

static REGISTRY: LazyLock<RwLock<Vec<RaftInfo>>> = LazyLock::new(|| {
    RwLock::new(vec![
        RaftInfo { name: "ours", about: "this crate's Raft (src/raft/)", make: crate::raft::make, appends_at_election: false },
        RaftInfo {
            name: "raft-rs",
            about: "tikv's raft-rs 0.7 through its adapter (src/raft_rs/)",
            make: crate::raft_rs::make,
            appends_at_election: true,
        },
    ])
});

fn registry() -> std::sync::RwLockReadGuard<'static, Vec<RaftInfo>> {
    REGISTRY.read().unwrap_or_else(|e| e.into_inner())
}

/// Adds a Raft to the registry, under `info.name`. Registering the same
/// name again with the same factory is a no-op (tests of one binary may
/// each register it); another Raft under a taken name is an error.
pub fn register(info: RaftInfo) -> Result<RaftKind, String> {
    if info.name.is_empty() || info.name.chars().any(|c| c.is_whitespace() || c == ',') {
        return Err(format!("a Raft's name must be a nonempty word (no spaces or commas), not '{}'", info.name));
    }
    let mut r = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    match r.iter().find(|x| x.name == info.name) {
        Some(x) if std::ptr::fn_addr_eq(x.make, info.make) => {}
        Some(_) => return Err(format!("a different Raft is already registered as '{}'", info.name)),
        None => r.push(info),
    }
    Ok(RaftKind(info.name))
}

/// A Raft the harness can run, by its registered name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RaftKind(&'static str);

impl RaftKind {
    /// This crate's Raft (`src/raft/`), the default.
    pub const OURS: RaftKind = RaftKind("ours");
    /// tikv's raft-rs 0.7 through its adapter (`src/raft_rs/`).
    pub const RAFT_RS: RaftKind = RaftKind("raft-rs");

    /// The two Rafts this crate ships (whatever else is registered).
    pub const SHIPPED: [RaftKind; 2] = [RaftKind::OURS, RaftKind::RAFT_RS];

    /// Every registered Raft, in the order registered (this crate's two
    /// first).
    pub fn all() -> Vec<RaftKind> {
        registry().iter().map(|i| RaftKind(i.name)).collect()
    }

    /// The names of every registered Raft, for messages.
    pub fn known() -> String {
        registry().iter().map(|i| i.name).collect::<Vec<_>>().join(", ")
    }

    pub fn name(self) -> &'static str {
        self.0
    }

    /// Finds a registered Raft by name; an unknown name is an error that
    /// lists the known ones.
    pub fn parse(s: &str) -> Result<RaftKind, String> {
        registry().iter().find(|i| i.name == s).map(|i| RaftKind(i.name)).ok_or_else(|| format!("unknown Raft '{s}'; known: {}", RaftKind::known()))
    }

    /// What the registry knows of it.
    pub fn info(self) -> RaftInfo {
        *registry().iter().find(|i| i.name == self.0).unwrap_or_else(|| panic!("Raft '{}' is not registered", self.0))
    }

    pub fn make(self) -> MakeRaft {
        (self.info().make)()
    }

    pub fn is_default(&self) -> bool {
        *self == RaftKind::OURS
    }
}

impl Default for RaftKind {
    fn default() -> Self {
        RaftKind::OURS
    }
}

impl fmt::Debug for RaftKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for RaftKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for RaftKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for RaftKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        RaftKind::parse(&name).map_err(serde::de::Error::custom)
    }
}
