//! Identifier newtypes.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// A connected client's id, also its participant id once it joins a room.
///
/// 128 random bits rendered as 32 hex digits: unguessable, so knowing
/// someone's id grants nothing by itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// A fresh random id.
    pub fn random() -> Self {
        let bytes: [u8; 16] = rand::rng().random();
        let mut s = String::with_capacity(32);
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        ClientId(s)
    }

    /// Wraps an id that came from elsewhere (a message field).
    pub fn from_string(s: impl Into<String>) -> Self {
        ClientId(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The participant id is the client id: one socket, one participant.
pub type ParticipantId = ClientId;

/// A room's name, validated: 1 to 64 characters of `[A-Za-z0-9_.-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomName(String);

impl RoomName {
    pub const MAX_LEN: usize = 64;

    /// Validates a room name; `None` when it is empty, too long or has other characters.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        ok.then(|| RoomName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A node of a cluster (`[cluster] node_id`), unique among the nodes
/// sharing one Redis.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(String);

impl NodeId {
    pub fn new(s: impl Into<String>) -> Self {
        NodeId(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_long() {
        let a = ClientId::random();
        let b = ClientId::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
    }

    #[test]
    fn room_names_are_validated() {
        assert!(RoomName::parse("standup-1.a_b").is_some());
        assert!(RoomName::parse("").is_none());
        assert!(RoomName::parse("a b").is_none());
        assert!(RoomName::parse(&"x".repeat(65)).is_none());
    }
}
