//! The properties the monitor checks (see [`super::monitor`]), named so
//! that a failure can say which one broke (see [`super::failure`]).

use serde::Serialize;

/// The properties the monitor checks. Each doc says what the property is
/// (for Raft's, in the words of the Raft paper, Ongaro and Ousterhout 2014,
/// Figure 3 and the section cited), what the monitor takes as a violation,
/// and what is legal however surprising it looks; `monitor::` tests break
/// each on purpose, and run the legal cases through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Property {
    /// *State Machine Safety* (section 5.4.3): if a server has applied a log
    /// entry at a given index to its state machine, no other server will
    /// ever apply a different log entry for the same index.
    ///
    /// Violation: two applies at one index, by any servers in any boots,
    /// whose entries differ in term or command. Also, within one boot, an
    /// apply out of order: Figure 2 applies `log[lastApplied]` after
    /// incrementing `lastApplied`, so with no snapshots a boot applies 1, 2,
    /// 3, ... with no gap and no repeat.
    ///
    /// Legal: a restarted server applying the same entries again from index
    /// 1 (its state machine is rebuilt by replaying the log); servers
    /// applying at different times.
    StateMachineSafety,
    /// *Election Safety* (section 5.2): at most one leader can be elected in
    /// a given term.
    ///
    /// Violation: two servers report (or are polled) leading one term. Also
    /// one server leading one term in two boots: `currentTerm` and
    /// `votedFor` are persistent (Figure 2), so a restarted server is a
    /// follower of its old term and can lead only after a new election in a
    /// later term; leading the old term again means its term or vote was
    /// lost, and the two leaderships may append different entries at one
    /// index and term.
    ///
    /// Legal: leaders of different terms at once (a deposed leader that has
    /// not heard of the new term yet); a leader elected by votes whose
    /// replies arrived late, even after later terms began.
    ElectionSafety,
    /// *Leader Completeness* (section 5.4): if a log entry is committed in
    /// a given term, then that entry will be present in the logs of the
    /// leaders for all higher-numbered terms.
    ///
    /// Violation: a server becomes leader of term T (as reported, or
    /// polled) and its log (`Consensus::log_terms`) lacks, or holds another
    /// term at, an index applied before it became leader whose entry is
    /// known to have been committed in a term below T. The committing term
    /// is bounded from outside by the lowest term any server was in when it
    /// applied the index (`Committed::committed_by`), and an entry is
    /// committed no later than any entry after it.
    ///
    /// Legal: a leader of a term *lower* than the one that committed an
    /// entry lacking it (a vote for term 1, granted before term 2 committed
    /// index 1 and delivered after, makes a leader of term 1 with an empty
    /// log: swarm seed 10010381); a leader of the committing term itself
    /// (that is election safety's business); entries committed after the
    /// election in time (a Raft cannot list what it will hold later).
    /// Skipped, and counted, for a Raft whose `log_terms` answers None.
    LeaderCompleteness,
    /// *Committed* (section 5.3): "a log entry is committed once the leader
    /// that created the entry has replicated it on a majority of the
    /// servers"; an entry of an earlier term is committed with the first
    /// entry of the leader's term after it (section 5.4.2), which by Log
    /// Matching puts it on that same majority. Applied means committed
    /// (Figure 2: apply only up to `commitIndex`), so an entry is on a
    /// majority of logs when it is first applied anywhere.
    ///
    /// Violation: the first apply of an index (by any server, in any boot)
    /// while fewer than a majority of the servers' logs hold an entry of
    /// that index and term (`Consensus::log_term`), a server that is down
    /// or booting counted as holding it (its disk is not read).
    ///
    /// Legal: the later applies of the index (servers that were behind);
    /// entries of a log not yet durable counted (a live server's log as
    /// its Raft lists it). Skipped for a Raft that cannot list its log.
    CommittedOnMajority,
    /// The harness's end-of-run check, not a property of the paper (which
    /// promises availability only while a majority is up and can talk, and
    /// no time bound): once every fault is healed and each clerk has done a
    /// new op, every replica reaches the same applied index within
    /// `CONVERGENCE_MS` of virtual time and then holds the same data and
    /// duplicate table (which follows from state machine safety and the
    /// state machine being deterministic).
    ///
    /// Violation: the applied indexes still differ after the bound, or two
    /// replicas at the same index hold different data or tables.
    ///
    /// Legal: replicas that differ while faults run; a server stopped for a
    /// corrupt disk (it is not counted).
    Convergence,
    /// The service's exactly-once semantics (section 8 of the paper: each
    /// command carries its client's serial number, and the state machine
    /// does not execute a number it has already executed).
    ///
    /// Violation: a replica applies the same (clerk, request number) as
    /// new twice in one boot, or two clerks share an id.
    ///
    /// Legal: the same request committed at several indexes (a clerk's
    /// retry to another server), applied as new once and as a repeat after;
    /// a restarted replica applying it as new again while it replays its
    /// log into an empty state machine.
    ExactlyOnce,
    /// The contract of a Raft that reports events (`Consensus::
    /// reports_events`), which election safety, leader completeness and
    /// coverage rest on; each clause is a rule of Figure 2 or section 5
    /// seen from outside.
    ///
    /// Violation: it applies an index beyond the commit index it last
    /// reported (Figure 2: apply only up to `commitIndex`); at an apply,
    /// `state()` answers a role or term other than the last reported;
    /// within a boot a reported term or commit index goes back (both
    /// increase monotonically, Figure 2) or a report repeats the last one
    /// unchanged; a situation is reported in a role it cannot happen in; a
    /// situation's claim does not show: a leader reporting uncommitted
    /// entries of earlier terms, or an old term's entries committed beneath
    /// its own (section 5.4.2), applies just beyond its commit index an
    /// entry of its own term; a vote reported refused for the candidate's
    /// log (section 5.4.1) is then granted, or was for a request of another
    /// term than the voter's (a request of an earlier term is refused for
    /// its term, whatever the log; one of a later term makes the voter adopt
    /// it first, section 5.1); a step down on a reply's higher term (section
    /// 5.1) is not followed by becoming a follower of a later term.
    ///
    /// Legal: a commit index that starts again from what a boot recovered;
    /// a refusal reported without a situation (refused for its term); a
    /// late reply that makes a follower adopt a higher term (reported as a
    /// role change, not as a step down).
    ReportedState,
}

impl Property {
    pub const ALL: [Property; 7] = [
        Property::StateMachineSafety,
        Property::ElectionSafety,
        Property::LeaderCompleteness,
        Property::CommittedOnMajority,
        Property::Convergence,
        Property::ExactlyOnce,
        Property::ReportedState,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Property::StateMachineSafety => "state machine safety",
            Property::ElectionSafety => "election safety",
            Property::LeaderCompleteness => "leader completeness",
            Property::CommittedOnMajority => "committed on a majority",
            Property::Convergence => "convergence",
            Property::ExactlyOnce => "exactly once",
            Property::ReportedState => "reported state",
        }
    }
}
