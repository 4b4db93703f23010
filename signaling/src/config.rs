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
    /// Origins (`https://app.example.com`) whose pages may open `/ws`. A
    /// browser's upgrade request from any other origin gets 403. Empty:
    /// any origin. Requests without an `Origin` header (not from a browser)
    /// are not affected.
    pub allowed_origins: Vec<String>,
    /// When set, `GET /api/stats` and `GET /metrics` need the header
    /// `Authorization: Bearer <stats_token>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_token: Option<String>,
    /// Who may use the classic protocol (relaying `offer`/`answer`/
    /// `ice-candidate` by `target` and `list-clients` without joining a
    /// room).
    pub classic_protocol: ClassicProtocol,
}

/// `[auth] classic_protocol`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassicProtocol {
    /// `open` in development mode, `token` when keys are configured.
    #[default]
    Auto,
    /// Any socket.
    Open,
    /// Sockets opened with a valid access token (`/ws?token=`), any room.
    Token,
    /// Nobody: sockets must join a room.
    Off,
}

impl ClassicProtocol {
    /// `Auto` resolved for a server with or without keys.
    pub fn resolve(self, development: bool) -> ClassicProtocol {
        match self {
            ClassicProtocol::Auto if development => ClassicProtocol::Open,
            ClassicProtocol::Auto => ClassicProtocol::Token,
            other => other,
        }
    }
}

/// Shortest API secret accepted: an HS256 key shorter than its hash's
/// output can be brute-forced offline from any token it signed.
pub const MIN_SECRET_BYTES: usize = 32;

impl AuthConfig {
    /// The first problem with the keys, if any: a secret shorter than
    /// [`MIN_SECRET_BYTES`].
    pub fn check(&self) -> Result<(), String> {
        for (name, secret) in &self.keys {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(format!(
                    "auth.keys.{name}: the secret is {} bytes; at least {MIN_SECRET_BYTES} are needed",
                    secret.len()
                ));
            }
        }
        if self.stats_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err("auth.stats_token must be at least 16 bytes".into());
        }
        Ok(())
    }
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
    /// How long a client may take to send a request's headers (and, with
    /// TLS, to finish the handshake) before the connection is closed.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A WebSocket that sends nothing (not even a pong to the server's
    /// pings) for this long is closed with code 1001. The server pings
    /// every third of it; browsers answer pings by themselves.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A client that does not take a frame off its socket within this long
    /// is a slow reader: its socket is closed (1008), it leaves its room and
    /// its queued frames are freed.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// Open connections (HTTP and WebSocket) from one IP address; past it
    /// new connections are closed at once. 0: no limit.
    pub max_connections_per_ip: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: 64 * 1024,
            messages_per_second: 50,
            message_burst: 200,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            max_connections_per_ip: 256,
        }
    }
}

/// `[cluster]`: many nodes run as one service, coordinated by Redis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Redis URL (`redis://127.0.0.1:6379/0`, `rediss://...` is not
    /// supported). Empty: this server runs alone, with no cluster.
    pub redis: String,
    /// This node's id, unique among the nodes sharing the Redis. Empty: a
    /// random id at every start.
    pub node_id: String,
    /// Region label. New rooms go to the least-loaded node of the region of
    /// the node the client reached, when one has headroom.
    pub region: String,
    /// The WebSocket URL at which clients reach this node, sent to clients
    /// of other nodes in `redirect` and `move`. Empty: `ws://` (or `wss://`
    /// with TLS) and `[server] listen`, then `/ws`.
    pub url: String,
    /// Prefix of every Redis key and channel, so clusters can share a Redis.
    pub prefix: String,
    /// How often the node refreshes its entry (with its load) in Redis.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// How long an entry lives without a refresh: a node that stops (or is
    /// killed) is gone from the cluster after this, and its participants
    /// are removed from their rooms.
    #[serde(with = "humantime_serde")]
    pub node_ttl: Duration,
    /// Participants a node takes before new ones go to other nodes. 0: no limit.
    pub max_participants: u32,
    /// Published tracks a node holds before new participants go to other
    /// nodes. 0: no limit.
    pub max_tracks: u32,
    /// CPU use (percent of all cores) above which new participants go to
    /// other nodes. 0: no limit.
    pub max_cpu_percent: u32,
    /// On SIGTERM, how long the node waits for its participants to move to
    /// other nodes before it exits.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Secret shared by the nodes; authenticates node-to-node media relays.
    pub secret: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            redis: String::new(),
            node_id: String::new(),
            region: String::new(),
            url: String::new(),
            prefix: "sfu:".into(),
            heartbeat: Duration::from_secs(1),
            node_ttl: Duration::from_secs(3),
            max_participants: 0,
            max_tracks: 0,
            max_cpu_percent: 0,
            drain_timeout: Duration::from_secs(30),
            secret: String::new(),
        }
    }
}

impl ClusterConfig {
    /// Whether a Redis is configured (a cluster), or the server runs alone.
    pub fn enabled(&self) -> bool {
        !self.redis.trim().is_empty()
    }
}

/// Everything signaling needs, gathered by the server binary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignalingConfig {
    pub auth: AuthConfig,
    pub rooms: RoomsConfig,
    pub ice: IceConfig,
    pub limits: LimitsConfig,
    pub cluster: ClusterConfig,
}
