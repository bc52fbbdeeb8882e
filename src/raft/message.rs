//! Raft's messages and log entries, as they go over the wire and to disk.

use serde::{Deserialize, Serialize};

/// Index of a log entry; the log starts at 1 (0 is the empty prefix).
pub type Index = u64;
pub type Term = u64;
/// A server's position in the peer list.
pub type PeerId = usize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub command: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteArgs {
    pub term: Term,
    pub candidate: PeerId,
    pub last_log_index: Index,
    pub last_log_term: Term,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteReply {
    pub term: Term,
    pub granted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendArgs {
    pub term: Term,
    pub leader: PeerId,
    pub prev_log_index: Index,
    pub prev_log_term: Term,
    pub entries: Vec<Entry>,
    pub leader_commit: Index,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendReply {
    pub term: Term,
    pub success: bool,
    /// On success: the follower's log matches the leader's up to here. The
    /// reply carries it so that a late or duplicated reply is still exact.
    pub match_index: Index,
    /// On failure: where the leader should retry from (fast backup).
    pub conflict_index: Index,
    /// On failure: the term of the follower's conflicting entry, if any.
    pub conflict_term: Option<Term>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Vote(VoteArgs),
    Append(AppendArgs),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Vote(VoteReply),
    Append(AppendReply),
}

/// The state Raft must persist before answering anything that depends on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<PeerId>,
}

/// A committed entry handed to the service, in log order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyMsg {
    pub index: Index,
    pub term: Term,
    pub command: Vec<u8>,
}

/// A server's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// Rare protocol situations a Raft may report as they occur, so a harness
/// can show which of them its runs reached (coverage).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Situation {
    /// A candidate's election timed out without a majority: it campaigns again.
    SplitVote,
    /// A new leader holds entries not known to be committed (entries of
    /// earlier terms that only a later commit of its own can commit).
    /// Reported after the role change and before any commit it causes: the
    /// entry just beyond the commit index last reported is of an earlier
    /// term than the leader's.
    LeaderWithUncommitted,
    /// A follower removed entries that conflicted with the leader's.
    ConflictTruncated,
    /// The leader's next index for a follower skipped a whole term of the
    /// follower's entries at once (fast backup).
    BackupSkippedTerm,
    /// An AppendEntries from an older term was refused.
    StaleTermAppendRefused,
    /// A vote was refused because the candidate's log is behind. A Raft
    /// that reports its votes reports this just before that refusal.
    VoteRefusedLogBehind,
    /// A leader or candidate stepped down on a higher term seen in a reply.
    /// Reported just before the role change to follower of that term.
    SteppedDownOnReply,
    /// An entry of an earlier term became committed beneath one of the
    /// current term (Figure 8's rule). Reported before the commit: the
    /// entry just beyond the commit index last reported is of an earlier
    /// term than the leader's.
    OldTermCommittedBeneath,
    /// An AppendEntries arrived that a newer one had already superseded
    /// (late or duplicated): it changed nothing.
    StaleAppend,
}

impl Situation {
    pub const ALL: [Situation; 9] = [
        Situation::SplitVote,
        Situation::LeaderWithUncommitted,
        Situation::ConflictTruncated,
        Situation::BackupSkippedTerm,
        Situation::StaleTermAppendRefused,
        Situation::VoteRefusedLogBehind,
        Situation::SteppedDownOnReply,
        Situation::OldTermCommittedBeneath,
        Situation::StaleAppend,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Situation::SplitVote => "split_vote",
            Situation::LeaderWithUncommitted => "leader_with_uncommitted",
            Situation::ConflictTruncated => "conflict_truncated",
            Situation::BackupSkippedTerm => "backup_skipped_term",
            Situation::StaleTermAppendRefused => "stale_term_append_refused",
            Situation::VoteRefusedLogBehind => "vote_refused_log_behind",
            Situation::SteppedDownOnReply => "stepped_down_on_reply",
            Situation::OldTermCommittedBeneath => "old_term_committed_beneath",
            Situation::StaleAppend => "stale_append",
        }
    }
}

/// What a Raft reports as it happens (see `Consensus::reports_events`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaftEvent {
    /// This server's role or term changed; `role` is its role in `term`.
    Role { term: Term, role: Role },
    /// A rare situation occurred on this server.
    Situation(Situation),
    /// This server answered `candidate`'s request for its vote in `term`.
    Vote { term: Term, candidate: PeerId, granted: bool },
    /// Entries `from..=to` were appended to this server's log, sent by the
    /// leader `leader` of `term` (the leader's own proposals included).
    Appended { term: Term, leader: PeerId, from: Index, to: Index },
    /// This server's commit index advanced to `index`.
    Committed { index: Index },
}
