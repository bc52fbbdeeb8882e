//! Deliberately broken servers, for showing that the harness catches them.
//! A broken server is the real one with a [`Tamper`]: the one seam through
//! which a test deviation reaches the server. The real service has none.

use std::sync::Arc;

use super::ops::{KvOp, KvReply, KvRequest, KvStateMachine};

/// A deviation from the real service. Each hook is called at one point of
/// the server, with its state machine, and by default changes nothing.
pub trait Tamper: Send + Sync + 'static {
    /// A request arrived. An answer returned here is sent at once: the
    /// request never reaches Raft.
    fn on_request(&self, _req: &KvRequest, _sm: &mut KvStateMachine) -> Option<KvReply> {
        None
    }
    /// A committed request is about to be applied.
    fn before_apply(&self, _req: &KvRequest, _sm: &mut KvStateMachine) {}
}

/// The deliberate bugs a run can ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Bug {
    #[default]
    None,
    /// Answer Get from the local map without going through Raft.
    LocalGet,
    /// Keep no duplicate table: a retried Put/Append is applied again.
    NoDedup,
}

impl Bug {
    /// The server's tamper for this bug (None: the real server).
    pub fn tamper(self) -> Option<Arc<dyn Tamper>> {
        match self {
            Bug::None => None,
            Bug::LocalGet => Some(Arc::new(LocalGet)),
            Bug::NoDedup => Some(Arc::new(NoDedup)),
        }
    }
}

/// Reads from whatever this replica has applied: a stale minority or a
/// deposed leader answers with old data.
struct LocalGet;

impl Tamper for LocalGet {
    fn on_request(&self, req: &KvRequest, sm: &mut KvStateMachine) -> Option<KvReply> {
        match &req.op {
            // A repeat of an applied Get still gets its first answer.
            KvOp::Get { key } if sm.cached(req.client, req.seq).is_none() => Some(KvReply::Ok(Some(sm.get(key)), None)),
            _ => None,
        }
    }
}

/// Forgets every clerk's session before each request and each apply, so
/// neither the answer cache nor the apply-time check ever sees a repeat.
struct NoDedup;

impl Tamper for NoDedup {
    fn on_request(&self, _req: &KvRequest, sm: &mut KvStateMachine) -> Option<KvReply> {
        sm.forget_sessions();
        None
    }
    fn before_apply(&self, _req: &KvRequest, sm: &mut KvStateMachine) {
        sm.forget_sessions();
    }
}
