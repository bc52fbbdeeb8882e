//! The Rafts the harness knows by name: this crate's, and tikv's raft-rs
//! behind the same `MakeRaft` seam. A user's own Raft is any other
//! `MakeRaft`, handed to `KvOptions::make_raft`.

use serde::{Deserialize, Serialize};

use crate::raft::MakeRaft;

/// A Raft the harness can run by name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RaftKind {
    /// This crate's Raft (`src/raft/`).
    #[default]
    #[serde(rename = "ours")]
    Ours,
    /// tikv's raft-rs 0.7 through its adapter (`src/raft_rs/`).
    #[serde(rename = "raft-rs")]
    RaftRs,
}

impl RaftKind {
    pub const ALL: [RaftKind; 2] = [RaftKind::Ours, RaftKind::RaftRs];

    pub fn name(self) -> &'static str {
        match self {
            RaftKind::Ours => "ours",
            RaftKind::RaftRs => "raft-rs",
        }
    }

    /// Parses a name: ours or raft-rs.
    pub fn parse(s: &str) -> Result<RaftKind, String> {
        RaftKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| format!("unknown Raft '{s}'; known: ours, raft-rs"))
    }

    pub fn make(self) -> MakeRaft {
        match self {
            RaftKind::Ours => crate::raft::make(),
            RaftKind::RaftRs => crate::raft_rs::make(),
        }
    }

    pub fn is_default(&self) -> bool {
        *self == RaftKind::Ours
    }
}
