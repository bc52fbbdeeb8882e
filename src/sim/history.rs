//! TEMPORARY stand-in until the history module lands (same API).
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind { Get, Put, Append }
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op { pub client: u64, pub kind: OpKind, pub key: String, pub value: String, pub output: Option<String>, pub call_ns: u64, pub return_ns: Option<u64> }
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct History { pub scenario: String, pub seed: u64, pub ops: Vec<Op> }
impl History { pub fn write_json(&self, p: &std::path::Path) -> std::io::Result<()> { std::fs::write(p, serde_json::to_string(self).unwrap()) } }
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Op>>>);
pub type OpId = usize;
impl Recorder {
    pub fn new() -> Self { Self::default() }
    pub fn call(&self, client: u64, kind: OpKind, key: String, value: String, now_ns: u64) -> OpId { let mut v = self.0.lock().unwrap(); v.push(Op { client, kind, key, value, output: None, call_ns: now_ns, return_ns: None }); v.len() - 1 }
    pub fn ret(&self, id: OpId, output: Option<String>, now_ns: u64) { let mut v = self.0.lock().unwrap(); v[id].output = output; v[id].return_ns = Some(now_ns); }
    pub fn snapshot(&self) -> Vec<Op> { self.0.lock().unwrap().clone() }
}
