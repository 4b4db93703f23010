//! Many nodes as one service, coordinated by Redis.
//!
//! Redis holds three things, all under `[cluster] prefix`:
//!
//! - the **node registry**: each node's [`NodeInfo`] (its URL, media
//!   address, region and load), refreshed every `heartbeat` with a TTL of
//!   `node_ttl`, so a node that dies is gone within a few seconds; the
//!   survivors then remove its participants from their rooms ([`Store::reap`]);
//! - the **room directory**: per room its mode, its first home, its members
//!   (what the others see of them) and the node serving each, changed only
//!   by Lua scripts, so two nodes can never both create a room and a member
//!   is never lost between two writes;
//! - **pub/sub**: each room's events (joined, left, media state, moved) on
//!   one channel that the nodes serving the room listen to, and a channel
//!   per node for messages addressed to one of its participants (P2P
//!   offers, answers and candidates between members on different nodes).
//!
//! Media never goes through Redis.
//!
//! [`select`] decides where a new participant goes (pure, unit-tested);
//! [`Store`] is the Redis side; [`ClusterNode`] is the task that joins the
//! hub (through [`crate::hub::ClusterOut`] and [`crate::hub::ClusterIn`]) to
//! Redis. Without `[cluster] redis` none of it runs.

mod feed;
mod select;
mod shell;
mod store;
pub mod view;
mod wire;

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;

pub use select::{select, Limits};
pub use shell::{ClusterHandle, ClusterNode, ClusterStats, ClusterView, CpuProbe};
pub use store::{
    token_hash, ClusterError, EnterArgs, EnterOutcome, RoomRecord, RoomView, Store, TakeOver,
};
pub use wire::{MemberRecord, RoomEvent};

/// A node's load, as it reports it with every heartbeat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// CPU use of the server process, percent of all cores (0 to 100).
    pub cpu_percent: f64,
    /// Participants it serves.
    pub participants: u32,
    /// Tracks published to it.
    pub tracks: u32,
    /// RTP packets it forwarded per second over the last heartbeat.
    pub packets_per_second: u64,
}

/// A node of the cluster, as the registry holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    /// The WebSocket URL clients are sent to (`redirect`, `move`).
    pub url: String,
    /// Its media address (`ip:port` of the one UDP port), when it has a media plane.
    #[serde(default)]
    pub media: String,
    #[serde(default)]
    pub region: String,
    /// It is shutting down: it takes no new participants.
    #[serde(default)]
    pub draining: bool,
    #[serde(default)]
    pub load: Load,
}
