//! Configuration sections owned by signaling.
//!
//! Each section is `#[serde(default, deny_unknown_fields)]`: every key has a
//! built-in default, and a misspelt key is an error that names it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::protocol::{IceServer, RoomMode};

/// `[auth]`: API keys that sign access tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// API key name to secret. Empty: development mode (no token needed,
    /// `POST /api/token` mints them).
    pub keys: BTreeMap<String, String>,
}

/// `[rooms]`: room behaviour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomsConfig {
    /// Mode of a room created by a join that asks for none.
    pub default_mode: RoomMode,
    /// Largest P2P room (a full mesh): the next join is refused.
    pub max_p2p_participants: usize,
    /// Largest SFU room.
    pub max_sfu_participants: usize,
    /// How long a participant whose socket dropped keeps its place before
    /// the room is told it left. Zero: told at once.
    #[serde(with = "humantime_serde")]
    pub reconnect_grace: Duration,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        RoomsConfig {
            default_mode: RoomMode::Sfu,
            max_p2p_participants: 4,
            max_sfu_participants: 100,
            reconnect_grace: Duration::from_secs(10),
        }
    }
}

/// A TURN server sharing a secret with this server (coturn `use-auth-secret`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnConfig {
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`.
    pub secret: String,
    /// How long handed-out credentials stay valid.
    #[serde(with = "humantime_serde", default = "default_turn_ttl")]
    pub ttl: Duration,
}

fn default_turn_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// `[ice]`: ICE servers given to clients in `joined`. Default: none (host
/// candidates suffice when server and browsers share a network).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IceConfig {
    pub servers: Vec<IceServer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn: Option<TurnConfig>,
}

/// `[limits]`: per-connection protection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest WebSocket frame; a larger one closes the socket (1009).
    pub max_message_bytes: usize,
    /// Sustained messages per second per connection.
    pub messages_per_second: u32,
    /// Messages allowed in a burst above the sustained rate; past it the
    /// socket is closed (1008).
    pub message_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: 64 * 1024,
            messages_per_second: 50,
            message_burst: 200,
        }
    }
}

/// Everything signaling needs, gathered by the server binary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignalingConfig {
    pub auth: AuthConfig,
    pub rooms: RoomsConfig,
    pub ice: IceConfig,
    pub limits: LimitsConfig,
}
