//! The linearizability checker, a tool of its own: client histories and
//! their JSON form ([`history`]), a Jepsen EDN reader ([`edn`]), the complete
//! checker for the key/value model ([`checker`]), the HTML timeline of a
//! failing history ([`timeline`]) and the `kvraft check` command ([`cmd`]).
//! It needs nothing else of this crate: no simulation, no Raft.

pub mod checker;
pub mod cmd;
pub mod edn;
pub mod history;
pub mod input;
pub mod timeline;

pub use checker::{check_history, describe_op, Verdict};
pub use history::{History, HistoryError, Op, OpKind, Recorder};
pub use input::{load_any, parse_any};
