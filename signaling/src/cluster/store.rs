//! The cluster's state in Redis: the node registry and the room directory.
//!
//! Keys (all under the prefix `P`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P node:<id>` | string, with a TTL | the node's [`NodeInfo`] as JSON |
//! | `P nodes` | set | node ids (a member whose key expired is a dead node) |
//! | `P noderooms:<id>` | set | rooms where the node serves members |
//! | `P rooms` | set | every room |
//! | `P room:<r>` | hash | `mode`, `home` (the first node), `ver` (bumped by every change) |
//! | `P room:<r>:members` | hash | member id to its [`MemberRecord`] JSON |
//! | `P room:<r>:where` | hash | member id to the node serving it |
//! | `P room:<r>:nodes` | hash | node to how many members it serves |
//! | `P room:<r>:resume` | hash | SHA-1 of a resume token to its member id |
//!
//! Channels: `P events:<r>` (the room's [`RoomEvent`](super::RoomEvent)s),
//! `P to:<id>` (messages for one node). Every change to a room is one Lua
//! script, so it is atomic and its event is published in the same step.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};
use sha1::{Digest, Sha1};

use super::wire::{MemberRecord, NodeMessage};
use super::NodeInfo;
use crate::ids::{NodeId, ParticipantId, RoomName};
use crate::protocol::{MediaState, RoomMode};

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected reply from Redis: {0}")]
    Reply(String),
    /// The pub/sub connection is lost and not back yet.
    #[error("the connection to Redis is down")]
    Down,
    #[error("Redis did not answer in time")]
    Timeout,
}

type Result<T> = std::result::Result<T, ClusterError>;

/// `HGET mode`, `HGET home`, `HLEN members`, `HGETALL nodes` of one room.
type RoomRow = (Option<String>, Option<String>, u32, Vec<(String, u32)>);

/// A room as placement sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomRecord {
    pub mode: Option<RoomMode>,
    pub home: Option<NodeId>,
    /// Nodes serving members, with how many each.
    pub nodes: Vec<(NodeId, u32)>,
}

/// What entering a member in a room came to.
#[derive(Clone, Debug, PartialEq)]
pub enum EnterOutcome {
    /// In. `members`: everyone in the room, with the node serving each.
    Entered {
        mode: RoomMode,
        ver: u64,
        members: Vec<(MemberRecord, NodeId)>,
    },
    ModeMismatch(RoomMode),
    RoomFull(RoomMode),
    /// The room appeared meanwhile, served by other nodes: place again.
    Elsewhere,
}

/// A place taken over by this node.
#[derive(Clone, Debug, PartialEq)]
pub struct TakeOver {
    pub member: MemberRecord,
    pub mode: RoomMode,
    pub ver: u64,
    pub members: Vec<(MemberRecord, NodeId)>,
}

/// A room in the cluster view.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RoomView {
    pub room: String,
    pub mode: Option<RoomMode>,
    pub home: Option<NodeId>,
    pub participants: u32,
    /// Where its members are served, and how many on each node.
    pub nodes: Vec<(NodeId, u32)>,
}

/// What [`Store::enter`] needs.
#[derive(Clone, Debug)]
pub struct EnterArgs<'a> {
    pub me: &'a NodeId,
    pub room: &'a RoomName,
    pub mode: Option<RoomMode>,
    pub default_mode: RoomMode,
    pub max_p2p: usize,
    pub max_sfu: usize,
    pub member: &'a MemberRecord,
    /// Refuse ([`EnterOutcome::Elsewhere`]) when the room exists and this
    /// node serves none of its members.
    pub guard: bool,
    pub resume_token: &'a str,
}

struct Scripts {
    enter: Script,
    take_over: Script,
    leave: Script,
    media: Script,
    reap: Script,
}

/// How long one attempt to connect to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a command may wait for its reply. The scripts touch a few keys
/// of one room; a reply this late means Redis is gone, not busy.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts to connect again before a command fails. Few, so that while
/// Redis is down a command fails within a few seconds (a join is refused,
/// a heartbeat is skipped) instead of queueing the cluster task behind it;
/// the next command tries again.
const CONNECT_RETRIES: usize = 2;

/// A connection to the cluster's Redis. Cheap to clone.
///
/// It connects again by itself when Redis goes away and comes back (a
/// restart, a failover): the command that finds the connection broken
/// fails, and the ones after it use the new connection.
#[derive(Clone)]
pub struct Store {
    con: ConnectionManager,
    prefix: String,
    scripts: std::sync::Arc<Scripts>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Compares two secrets' MACs in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The SHA-1 of a resume token, hex: what Redis keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    Sha1::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| ClusterError::Reply(e.to_string()))
}

fn mode_str(m: RoomMode) -> &'static str {
    m.as_str()
}

fn parse_mode(s: &str) -> Result<RoomMode> {
    match s {
        "sfu" => Ok(RoomMode::Sfu),
        "p2p" => Ok(RoomMode::P2p),
        other => Err(ClusterError::Reply(format!("room mode `{other}`"))),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn array(v: &Value) -> Result<&[Value]> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(ClusterError::Reply(format!(
            "expected an array, got {other:?}"
        ))),
    }
}

/// Pairs of a flat `HGETALL` reply.
fn pairs(v: &Value) -> Result<Vec<(String, String)>> {
    let a = array(v)?;
    Ok(a.chunks(2)
        .filter_map(|c| match c {
            [k, v] => Some((text(k)?, text(v)?)),
            _ => None,
        })
        .collect())
}

/// Members and where each is served, from the `members` and `where` hashes.
fn members(records: &Value, wheres: &Value) -> Result<Vec<(MemberRecord, NodeId)>> {
    let wheres: std::collections::HashMap<String, String> = pairs(wheres)?.into_iter().collect();
    let mut out = Vec::new();
    for (id, json) in pairs(records)? {
        let Ok(m) = serde_json::from_str::<MemberRecord>(&json) else {
            tracing::warn!(member = %id, "unreadable member record in Redis; skipped");
            continue;
        };
        let node = NodeId::new(wheres.get(&id).cloned().unwrap_or_default());
        out.push((m, node));
    }
    Ok(out)
}

impl Store {
    /// Connects and checks that Redis answers.
    pub async fn connect(url: &str, prefix: &str) -> Result<Store> {
        let client = redis::Client::open(url)?;
        Self::with_client(&client, prefix).await
    }

    pub async fn with_client(client: &redis::Client, prefix: &str) -> Result<Store> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(CONNECT_RETRIES)
            .set_max_delay(Duration::from_millis(500));
        let mut con = ConnectionManager::new_with_config(client.clone(), config).await?;
        let _: String = redis::cmd("PING").query_async(&mut con).await?;
        Ok(Store {
            con,
            prefix: prefix.to_owned(),
            scripts: std::sync::Arc::new(Scripts {
                enter: Script::new(include_str!("lua/enter.lua")),
                take_over: Script::new(include_str!("lua/take_over.lua")),
                leave: Script::new(include_str!("lua/leave.lua")),
                media: Script::new(include_str!("lua/media.lua")),
                reap: Script::new(include_str!("lua/reap.lua")),
            }),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn room_key(&self, room: &str) -> String {
        format!("{}room:{room}", self.prefix)
    }

    /// The channel of a room's events.
    pub fn events_channel(&self, room: &str) -> String {
        format!("{}events:{room}", self.prefix)
    }

    /// The channel of messages for one node.
    pub fn node_channel(&self, node: &NodeId) -> String {
        format!("{}to:{node}", self.prefix)
    }

    fn node_key(&self, node: &NodeId) -> String {
        format!("{}node:{node}", self.prefix)
    }

    fn nodes_key(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    fn noderooms_key(&self, node: &NodeId) -> String {
        format!("{}noderooms:{node}", self.prefix)
    }

    fn rooms_key(&self) -> String {
        format!("{}rooms", self.prefix)
    }

    /// Writes (or refreshes) this node's registry entry. False when the
    /// entry was not there: the first heartbeat, or the node was taken for
    /// dead (it missed its TTL) and must enter its members again.
    pub async fn register(&self, info: &NodeInfo, ttl: Duration) -> Result<bool> {
        let json = to_json(info)?;
        let mut con = self.con.clone();
        let (previous, _): (Option<String>, i64) = redis::pipe()
            .cmd("SET")
            .arg(self.node_key(&info.id))
            .arg(json)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .arg("GET")
            .cmd("SADD")
            .arg(self.nodes_key())
            .arg(info.id.as_str())
            .query_async(&mut con)
            .await?;
        Ok(previous.is_some())
    }

    /// Live nodes, and the ids of registered nodes whose entry expired.
    pub async fn nodes(&self) -> Result<(Vec<NodeInfo>, Vec<NodeId>)> {
        let mut con = self.con.clone();
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.nodes_key())
            .query_async(&mut con)
            .await?;
        if ids.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let keys: Vec<String> = ids
            .iter()
            .map(|i| self.node_key(&NodeId::new(i.clone())))
            .collect();
        let infos: Vec<Option<String>> =
            redis::cmd("MGET").arg(&keys).query_async(&mut con).await?;
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for (id, info) in ids.into_iter().zip(infos) {
            match info.and_then(|j| serde_json::from_str::<NodeInfo>(&j).ok()) {
                Some(n) => live.push(n),
                None => dead.push(NodeId::new(id)),
            }
        }
        live.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((live, dead))
    }

    /// Removes a node and every member it served (telling their rooms);
    /// returns how many members went.
    pub async fn reap(&self, node: &NodeId) -> Result<u64> {
        let mut con = self.con.clone();
        let n: u64 = self
            .scripts
            .reap
            .prepare_invoke()
            .arg(&self.prefix)
            .arg(node.as_str())
            .invoke_async(&mut con)
            .await?;
        Ok(n)
    }

    /// A room as placement sees it (default when it does not exist).
    pub async fn room(&self, room: &RoomName) -> Result<RoomRecord> {
        let key = self.room_key(room.as_str());
        let mut con = self.con.clone();
        let (mode, home, nodes): (Option<String>, Option<String>, Vec<(String, u32)>) =
            redis::pipe()
                .cmd("HGET")
                .arg(&key)
                .arg("mode")
                .cmd("HGET")
                .arg(&key)
                .arg("home")
                .cmd("HGETALL")
                .arg(format!("{key}:nodes"))
                .query_async(&mut con)
                .await?;
        Ok(RoomRecord {
            mode: mode.as_deref().map(parse_mode).transpose()?,
            home: home.map(NodeId::new),
            nodes: nodes
                .into_iter()
                .map(|(n, c)| (NodeId::new(n), c))
                .collect(),
        })
    }

    /// Enters a member in a room, creating it when needed; see [`EnterArgs`].
    pub async fn enter(&self, a: &EnterArgs<'_>) -> Result<EnterOutcome> {
        let key = self.room_key(a.room.as_str());
        let member = to_json(a.member)?;
        let mut con = self.con.clone();
        let reply: Value = self
            .scripts
            .enter
            .prepare_invoke()
            .key(&key)
            .key(format!("{key}:members"))
            .key(format!("{key}:where"))
            .key(format!("{key}:nodes"))
            .key(format!("{key}:resume"))
            .key(self.rooms_key())
            .key(self.noderooms_key(a.me))
            .arg(a.me.as_str())
            .arg(a.mode.map_or("", mode_str))
            .arg(mode_str(a.default_mode))
            .arg(a.max_p2p)
            .arg(a.max_sfu)
            .arg(a.member.info.id.as_str())
            .arg(member)
            .arg(if a.guard { "1" } else { "0" })
            .arg(token_hash(a.resume_token))
            .arg(a.room.as_str())
            .arg(self.events_channel(a.room.as_str()))
            .invoke_async(&mut con)
            .await?;
        let r = array(&reply)?;
        let status = r.first().and_then(text).unwrap_or_default();
        let mode =
            || -> Result<RoomMode> { parse_mode(&r.get(1).and_then(text).unwrap_or_default()) };
        match status.as_str() {
            "ok" => Ok(EnterOutcome::Entered {
                mode: mode()?,
                ver: r
                    .get(2)
                    .and_then(text)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                members: members(&r[3], &r[4])?,
            }),
            "mode_mismatch" => Ok(EnterOutcome::ModeMismatch(mode()?)),
            "room_full" => Ok(EnterOutcome::RoomFull(mode()?)),
            "elsewhere" => Ok(EnterOutcome::Elsewhere),
            other => Err(ClusterError::Reply(format!("enter: `{other}`"))),
        }
    }

    /// Takes over the place that `resume_token` holds in `room`, for this
    /// node. `None` when no member of the room holds it.
    pub async fn take_over(
        &self,
        me: &NodeId,
        room: &RoomName,
        resume_token: &str,
    ) -> Result<Option<TakeOver>> {
        let key = self.room_key(room.as_str());
        let mut con = self.con.clone();
        let reply: Value = self
            .scripts
            .take_over
            .prepare_invoke()
            .key(&key)
            .key(format!("{key}:members"))
            .key(format!("{key}:where"))
            .key(format!("{key}:nodes"))
            .key(format!("{key}:resume"))
            .key(self.noderooms_key(me))
            .arg(me.as_str())
            .arg(token_hash(resume_token))
            .arg(room.as_str())
            .arg(self.events_channel(room.as_str()))
            .arg(&self.prefix)
            .invoke_async(&mut con)
            .await?;
        if matches!(reply, Value::Nil) {
            return Ok(None);
        }
        let r = array(&reply)?;
        if r.len() < 6 {
            return Err(ClusterError::Reply("take_over: short reply".into()));
        }
        let member: MemberRecord = serde_json::from_str(&text(&r[1]).unwrap_or_default())
            .map_err(|e| ClusterError::Reply(format!("member record: {e}")))?;
        Ok(Some(TakeOver {
            member,
            mode: parse_mode(&text(&r[2]).unwrap_or_default())?,
            ver: text(&r[3]).and_then(|v| v.parse().ok()).unwrap_or(0),
            members: members(&r[4], &r[5])?,
        }))
    }

    /// Removes a member this node serves. False when it is not this node's
    /// (it moved elsewhere meanwhile, or is gone).
    pub async fn leave(
        &self,
        me: &NodeId,
        room: &RoomName,
        id: &ParticipantId,
        resume_token: &str,
    ) -> Result<bool> {
        let key = self.room_key(room.as_str());
        let mut con = self.con.clone();
        let n: i64 = self
            .scripts
            .leave
            .prepare_invoke()
            .key(&key)
            .key(format!("{key}:members"))
            .key(format!("{key}:where"))
            .key(format!("{key}:nodes"))
            .key(format!("{key}:resume"))
            .key(self.rooms_key())
            .key(self.noderooms_key(me))
            .arg(me.as_str())
            .arg(id.as_str())
            .arg(token_hash(resume_token))
            .arg(room.as_str())
            .arg(self.events_channel(room.as_str()))
            .invoke_async(&mut con)
            .await?;
        Ok(n == 1)
    }

    /// Records a member's new media state and tells the room.
    pub async fn set_media(
        &self,
        me: &NodeId,
        room: &RoomName,
        member: &MemberRecord,
        media: &MediaState,
    ) -> Result<bool> {
        let key = self.room_key(room.as_str());
        let mut con = self.con.clone();
        let n: i64 = self
            .scripts
            .media
            .prepare_invoke()
            .key(&key)
            .key(format!("{key}:members"))
            .key(format!("{key}:where"))
            .arg(me.as_str())
            .arg(member.info.id.as_str())
            .arg(to_json(member)?)
            .arg(room.as_str())
            .arg(self.events_channel(room.as_str()))
            .arg(to_json(media)?)
            .invoke_async(&mut con)
            .await?;
        Ok(n == 1)
    }

    /// A room's version and members, with the node serving each (empty
    /// when the room does not exist).
    pub async fn room_members(
        &self,
        room: &RoomName,
    ) -> Result<(u64, Vec<(MemberRecord, NodeId)>)> {
        let key = self.room_key(room.as_str());
        let mut con = self.con.clone();
        let (ver, records, wheres): (Option<u64>, Value, Value) = redis::pipe()
            .cmd("HGET")
            .arg(&key)
            .arg("ver")
            .cmd("HGETALL")
            .arg(format!("{key}:members"))
            .cmd("HGETALL")
            .arg(format!("{key}:where"))
            .query_async(&mut con)
            .await?;
        Ok((ver.unwrap_or(0), members(&records, &wheres)?))
    }

    /// Sends a message to one node.
    pub async fn send_to(&self, node: &NodeId, msg: &NodeMessage) -> Result<()> {
        let json = to_json(msg)?;
        let mut con = self.con.clone();
        let _: i64 = redis::cmd("PUBLISH")
            .arg(self.node_channel(node))
            .arg(json)
            .query_async(&mut con)
            .await?;
        Ok(())
    }

    /// Every room, where it lives and how big it is (the cluster view).
    pub async fn rooms(&self) -> Result<Vec<RoomView>> {
        let mut con = self.con.clone();
        let mut names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.rooms_key())
            .query_async(&mut con)
            .await?;
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for room in names {
            let key = self.room_key(&room);
            let (mode, home, count, nodes): RoomRow = redis::pipe()
                .cmd("HGET")
                .arg(&key)
                .arg("mode")
                .cmd("HGET")
                .arg(&key)
                .arg("home")
                .cmd("HLEN")
                .arg(format!("{key}:members"))
                .cmd("HGETALL")
                .arg(format!("{key}:nodes"))
                .query_async(&mut con)
                .await?;
            out.push(RoomView {
                room,
                mode: mode.as_deref().and_then(|m| parse_mode(m).ok()),
                home: home.map(NodeId::new),
                participants: count,
                nodes: nodes
                    .into_iter()
                    .map(|(n, c)| (NodeId::new(n), c))
                    .collect(),
            });
        }
        Ok(out)
    }
}
