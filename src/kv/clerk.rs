//! The clerk: a client of the KV service. Retries until it gets an answer,
//! with a unique id and a sequence number per request so that servers apply
//! each request once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom;

use super::ops::{KvOp, KvReply, KvRequest, LogPosition, KV_SERVICE};
use crate::net::Transport;

#[derive(Clone, Debug)]
pub struct ClerkConfig {
    /// How long one attempt waits for a server's answer.
    pub attempt_timeout: Duration,
    /// Pause after every server failed once, so a leaderless cluster is not flooded.
    pub round_backoff: Duration,
    /// Timeouts in a row at one server before trying the next: a lost
    /// message is likelier than a lost leader.
    pub timeouts_before_moving: u32,
}

impl Default for ClerkConfig {
    fn default() -> Self {
        ClerkConfig { attempt_timeout: Duration::from_millis(150), round_backoff: Duration::from_millis(20), timeouts_before_moving: 2 }
    }
}

/// A server's answer to a request, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// A Get's value; None for Put/Append.
    pub value: Option<String>,
    /// The server the successful attempt went to.
    pub server: SocketAddr,
    /// Where in the log the request was applied, if the server said.
    pub at: Option<LogPosition>,
}

/// One clerk. One outstanding request at a time (`&mut self`).
pub struct Clerk {
    transport: Arc<Transport>,
    /// Servers in an order that says nothing about their ids.
    servers: Vec<SocketAddr>,
    id: u64,
    seq: u64,
    leader: usize,
    cfg: ClerkConfig,
}

impl Clerk {
    pub fn new(transport: Arc<Transport>, mut servers: Vec<SocketAddr>, cfg: ClerkConfig) -> Clerk {
        let mut rng = madsim::rand::thread_rng();
        servers.shuffle(&mut rng);
        let id = rand::Rng::gen(&mut rng);
        Clerk { transport, servers, id, seq: 0, leader: 0, cfg }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub async fn get(&mut self, key: &str) -> String {
        self.call(KvOp::Get { key: key.to_string() }).await.unwrap_or_default()
    }

    pub async fn put(&mut self, key: &str, value: &str) {
        self.call(KvOp::Put { key: key.to_string(), value: value.to_string() }).await;
    }

    pub async fn append(&mut self, key: &str, value: &str) {
        self.call(KvOp::Append { key: key.to_string(), value: value.to_string() }).await;
    }

    /// Sends `op` until some server answers it; never gives up.
    pub async fn call(&mut self, op: KvOp) -> Option<String> {
        self.call_answer(op).await.value
    }

    /// As [`Clerk::call`], with who answered and where the op was applied.
    pub async fn call_answer(&mut self, op: KvOp) -> Answer {
        self.seq += 1;
        let req = KvRequest { client: self.id, seq: self.seq, op };
        let mut failed_in_round = 0;
        let mut timeouts = 0;
        loop {
            let dst = self.servers[self.leader];
            let reply = self.transport.call::<KvRequest, KvReply>(dst, KV_SERVICE, &req, self.cfg.attempt_timeout).await;
            if reply.is_err() {
                timeouts += 1;
                if timeouts < self.cfg.timeouts_before_moving {
                    continue;
                }
            }
            timeouts = 0;
            match reply {
                Ok(KvReply::Ok(value, at)) => return Answer { value, server: dst, at },
                Ok(KvReply::WrongLeader) | Ok(KvReply::Timeout) | Err(_) => {
                    self.leader = (self.leader + 1) % self.servers.len();
                    failed_in_round += 1;
                    if failed_in_round >= self.servers.len() {
                        failed_in_round = 0;
                        tokio::time::sleep(self.cfg.round_backoff).await;
                    }
                }
            }
        }
    }
}
