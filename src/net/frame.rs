//! The wire format: one frame per datagram.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::RpcError;

/// One message on the wire. `id` pairs a reply with its request; `service`
/// selects the handler on the receiving node.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Frame {
    pub reply: bool,
    pub id: u64,
    pub service: u16,
    pub body: Vec<u8>,
}

/// Serialises a message body.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // bincode cannot fail on the plain data types used here (no maps with
    // non-string keys issues, no unsized readers), so failure is a bug.
    bincode::serialize(value).expect("bincode serialisation of an in-memory value")
}

/// Deserialises a message body, naming what failed to decode.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, RpcError> {
    bincode::deserialize(bytes).map_err(|e| RpcError::Decode { what, reason: e.to_string() })
}
