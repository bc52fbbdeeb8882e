//! The campaign engine. A run flows one way: the catalogue ([`catalog`]) or
//! the swarm generator ([`swarm`]) makes a run spec ([`spec`]); the executor
//! ([`exec`]) runs it (the workload of [`workload`], the faults of
//! [`nemesis`], the checks of [`verify`]) and returns a report ([`report`]);
//! a campaign ([`fuzz`]: [`Campaign`]) runs many and summarises them, [`shrink`] searches for a smaller
//! run that fails the same way, [`regressions`] keeps failing runs, and
//! [`baseline`] holds a campaign to the efficiency of an earlier one.

pub mod baseline;
pub mod catalog;
pub mod exec;
pub mod fuzz;
pub mod guided;
pub mod nemesis;
pub mod regressions;
pub mod report;
pub mod shrink;
pub mod spec;
pub mod swarm;
pub mod verify;
pub mod workload;

pub use exec::{run, RunOptions};
pub use fuzz::{Campaign, Outcome, Seeds};
