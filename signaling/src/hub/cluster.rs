//! The hub's side of a cluster: what it asks of the cluster shell
//! ([`ClusterOut`], in [`super::Effects::cluster`]) and what comes back
//! ([`ClusterIn`], as [`super::Input::Cluster`]).
//!
//! In a cluster a `join` that passes admission (token, room name) is
//! placed by the shell, which owns the room directory in Redis: it answers
//! with the room's members on every node ([`ClusterIn::Entered`]), a node
//! to send the client to ([`ClusterIn::Redirect`]), or a refusal (room
//! full, mode mismatch). Other nodes' members then arrive as events, and
//! this hub's own changes go out as [`ClusterOut`]s. The hub stays free of
//! I/O: without a cluster none of this is used.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::rooms::{Member, Participant};
use super::{Effects, Hub, Millis};
use crate::auth::ice_servers_for;
use crate::error::ErrorCode;
use crate::ids::{ClientId, NodeId, ParticipantId, RoomName};
use crate::media::{MediaCommand, Permissions, RelayEnd, SdpKind};
use crate::protocol::{MediaState, Outgoing, ParticipantInfo, RoomMode, ServerMessage};

/// A join that passed admission, for the cluster to place.
#[derive(Clone, Debug, PartialEq)]
pub struct EnterRequest {
    pub conn: ClientId,
    pub room: RoomName,
    /// The mode the client (or its token) asked for.
    pub mode: Option<RoomMode>,
    /// The mode of a room this join creates without asking for one.
    pub default_mode: RoomMode,
    /// The new member, as the others will see it (its id is `conn`).
    pub member: ParticipantInfo,
    pub identity: String,
    pub resume_token: String,
    /// The client follows `redirect`: it may be sent to another node.
    pub redirect: bool,
    /// A resume token from `join`: take back a place another node holds.
    pub resume: Option<String>,
}

/// What the hub asks of the cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum ClusterOut {
    /// Place a join and enter it in its room.
    Enter(Box<EnterRequest>),
    /// A member served here left its room.
    Left {
        room: RoomName,
        id: ParticipantId,
        resume_token: String,
    },
    /// A member served here changed its media state.
    Media {
        room: RoomName,
        id: ParticipantId,
        media: MediaState,
    },
    /// Relay a client's message to a member another node serves.
    Relay {
        node: NodeId,
        to: ParticipantId,
        message: Map<String, Value>,
    },
    /// An offer or answer for `node`'s end of the room's media relay.
    RelaySdp {
        node: NodeId,
        room: RoomName,
        kind: SdpKind,
        sdp: String,
    },
    /// The streams of one of `node`'s tracks this node's subscribers need.
    RelayStreams {
        node: NodeId,
        room: RoomName,
        publisher: ParticipantId,
        track: String,
        active: Vec<bool>,
    },
}

/// A place taken back from another node by a `join` with `resume`.
#[derive(Clone, Debug, PartialEq)]
pub struct TakenPlace {
    pub info: ParticipantInfo,
    pub identity: String,
    pub resume_token: String,
}

/// What the cluster tells the hub.
#[derive(Clone, Debug, PartialEq)]
pub enum ClusterIn {
    /// A join was entered in its room here. `members`: everyone in the
    /// room, on every node (this node's members with `node: None`).
    Entered {
        conn: ClientId,
        room: RoomName,
        mode: RoomMode,
        members: Vec<Member>,
        taken: Option<TakenPlace>,
    },
    /// The join goes to another node.
    Redirect {
        conn: ClientId,
        room: RoomName,
        url: String,
        node: NodeId,
    },
    /// The join was refused (room full, mode mismatch, no cluster state).
    Refused {
        conn: ClientId,
        code: ErrorCode,
        message: String,
    },
    /// Someone joined on another node.
    Joined { room: RoomName, member: Member },
    /// A member of another node left.
    Left { room: RoomName, id: ParticipantId },
    /// Everyone in a room with members here, as Redis holds it after this
    /// node may have missed events (its connection to Redis was lost):
    /// other nodes' members new to the hub join, those missing leave, and
    /// changed media states and nodes are taken.
    Snapshot {
        room: RoomName,
        members: Vec<Member>,
    },
    /// A member of another node changed its media state.
    Media {
        room: RoomName,
        id: ParticipantId,
        media: MediaState,
    },
    /// A member is now served by `node` (it moved or reconnected there).
    Moved {
        room: RoomName,
        id: ParticipantId,
        node: NodeId,
    },
    /// A message relayed from another node for a member served here.
    Relayed {
        to: ParticipantId,
        message: Map<String, Value>,
    },
    /// This node is draining: tell the room's members here to move.
    Move {
        room: RoomName,
        url: String,
        node: NodeId,
    },
    /// An offer or answer from `node`'s end of the room's media relay
    /// (authenticated by the cluster secret).
    RelaySdp {
        room: RoomName,
        node: NodeId,
        kind: SdpKind,
        sdp: String,
    },
    /// Which streams of one of this node's tracks `node`'s subscribers
    /// need (authenticated by the cluster secret).
    RelayStreams {
        room: RoomName,
        node: NodeId,
        publisher: ParticipantId,
        track: String,
        active: Vec<bool>,
    },
}

/// The media relays this node keeps, per SFU room: one to each other node
/// serving members of the room, while this node serves some too.
pub(super) type Relays = HashMap<RoomName, BTreeSet<NodeId>>;

/// A join waiting for the cluster's answer.
#[derive(Debug)]
pub(super) struct PendingJoin {
    pub participant: Participant,
    pub info: ParticipantInfo,
}

pub(super) type Pending = HashMap<ClientId, PendingJoin>;

impl Hub {
    /// This node keeps a relay with `node` for `room`: what concerns that
    /// relay may pass between the nodes.
    pub(super) fn relay_open(&self, room: &RoomName, node: &NodeId) -> bool {
        self.relays.get(room).is_some_and(|r| r.contains(node))
    }

    /// Hands an admitted join to the cluster; the answer completes it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn enter_cluster(
        &mut self,
        conn: &ClientId,
        mode: Option<RoomMode>,
        participant: Participant,
        info: ParticipantInfo,
        identity: String,
        resume: Option<String>,
        fx: &mut Effects,
    ) {
        fx.cluster.push(ClusterOut::Enter(Box::new(EnterRequest {
            conn: conn.clone(),
            room: participant.room.clone(),
            mode,
            default_mode: self.rooms_cfg.default_mode,
            member: info.clone(),
            identity,
            resume_token: participant.resume_token.clone(),
            redirect: participant.can_move,
            resume,
        })));
        self.pending
            .insert(conn.clone(), PendingJoin { participant, info });
    }

    pub(super) fn on_cluster(&mut self, input: ClusterIn, now: Millis, fx: &mut Effects) {
        let screens_room = match &input {
            ClusterIn::Media { room, .. } => Some(room.clone()),
            _ => None,
        };
        let room = match &input {
            ClusterIn::Entered { room, .. }
            | ClusterIn::Snapshot { room, .. }
            | ClusterIn::Joined { room, .. }
            | ClusterIn::Left { room, .. }
            | ClusterIn::Moved { room, .. } => Some(room.clone()),
            _ => None,
        };
        // Remote members whose screen shares the media plane must learn.
        let screens: Vec<(ParticipantId, bool)> = match &input {
            ClusterIn::Joined { member, .. } => vec![(member.id().clone(), false)],
            ClusterIn::Media { id, .. } | ClusterIn::Left { id, .. } => vec![(id.clone(), true)],
            _ => Vec::new(),
        };
        let all_remote = matches!(
            input,
            ClusterIn::Entered { .. } | ClusterIn::Snapshot { .. }
        );
        self.on_cluster_input(input, now, fx);
        if let Some(room) = &room {
            self.sync_relays(room, fx);
        }
        if let Some(room) = room.or(screens_room) {
            self.remote_screens(&room, &screens, all_remote, fx);
        }
    }

    /// Tells the media plane the screen shares of the room's members on
    /// other nodes: those named in `ids` (with `true`: even none, to clear
    /// them), or with `all`, every remote member that shares.
    fn remote_screens(
        &self,
        room: &RoomName,
        ids: &[(ParticipantId, bool)],
        all: bool,
        fx: &mut Effects,
    ) {
        let members = self.rooms.members(room);
        for m in members.iter().filter(|m| m.node.is_some()) {
            let named = ids.iter().find(|(id, _)| id == m.id());
            if all || named.is_some() {
                let always = named.is_some_and(|(_, a)| *a);
                self.screen_tracks_to_media(room, m.id(), &m.info.media, always, fx);
            }
        }
        // A member that left is no longer listed (the room may be gone
        // here too): clear what it shared.
        for (id, always) in ids {
            let gone = !members.iter().any(|m| m.id() == id) && !self.participants.contains_key(id);
            if *always && gone && self.media_available {
                fx.media.push(MediaCommand::ScreenTracks {
                    room: room.clone(),
                    publisher: id.clone(),
                    tracks: Vec::new(),
                });
            }
        }
    }

    /// Opens and closes the room's media relays to match where its members
    /// are: one to each other node serving some, while this node serves
    /// some too (SFU rooms only).
    pub(super) fn sync_relays(&mut self, room: &RoomName, fx: &mut Effects) {
        let Some(me) = self.node.clone() else {
            return;
        };
        let sfu = self.rooms.mode(room) == Some(RoomMode::Sfu);
        let members = self.rooms.members(room);
        let here = members.iter().any(|m| m.node.is_none());
        let wanted: BTreeSet<NodeId> = if sfu && here {
            members.iter().filter_map(|m| m.node.clone()).collect()
        } else {
            BTreeSet::new()
        };
        let have = self.relays.remove(room).unwrap_or_default();
        for node in have.difference(&wanted) {
            fx.media.push(MediaCommand::RelayClose {
                room: room.clone(),
                node: node.clone(),
            });
        }
        for node in wanted.difference(&have) {
            fx.media.push(MediaCommand::RelayOpen {
                room: room.clone(),
                node: node.clone(),
                end: RelayEnd::between(&me, node),
            });
            if let Some((kind, sdp)) = self.early_sdp.take(room, node) {
                fx.media.push(MediaCommand::RelaySdp {
                    room: room.clone(),
                    node: node.clone(),
                    kind,
                    sdp,
                });
            }
        }
        if !wanted.is_empty() {
            self.relays.insert(room.clone(), wanted);
        }
    }

    fn on_cluster_input(&mut self, input: ClusterIn, now: Millis, fx: &mut Effects) {
        match input {
            ClusterIn::Entered {
                conn,
                room,
                mode,
                members,
                taken,
            } => self.entered(conn, room, mode, members, taken, now, fx),
            ClusterIn::Redirect {
                conn,
                room,
                url,
                node,
            } => {
                if self.pending.remove(&conn).is_some() {
                    let room = room.to_string();
                    fx.send(&conn, ServerMessage::Redirect { url, node, room });
                }
            }
            ClusterIn::Refused {
                conn,
                code,
                message,
            } => {
                if self.pending.remove(&conn).is_some() {
                    fx.send(&conn, ServerMessage::error(code, message, Some("join")));
                }
            }
            ClusterIn::Joined { room, member } => {
                let Some(mode) = self.rooms.mode(&room) else {
                    return;
                };
                if self.participants.contains_key(member.id()) {
                    return;
                }
                let known = self.rooms.member(&room, member.id()).is_some();
                let (id, info) = (member.id().clone(), member.info.clone());
                self.rooms.add(&room, mode, member);
                if !known {
                    let msg = ServerMessage::ParticipantJoined { participant: info };
                    self.broadcast(&room, &id, msg, fx);
                }
            }
            ClusterIn::Left { room, id } => {
                if self.participants.get(&id).is_some_and(|p| !p.moved) {
                    return;
                }
                if self.rooms.remove(&room, &id).is_some() {
                    let msg = ServerMessage::ParticipantLeft { id: id.clone() };
                    self.broadcast(&room, &id, msg, fx);
                }
            }
            ClusterIn::Media { room, id, media } => {
                if self.participants.get(&id).is_some_and(|p| !p.moved) {
                    return;
                }
                if self.rooms.set_media(&room, &id, media.clone()) {
                    let msg = ServerMessage::MediaState {
                        from: id.clone(),
                        media,
                    };
                    self.broadcast(&room, &id, msg, fx);
                }
            }
            ClusterIn::Moved { room, id, node } => self.moved_away(room, id, node, now, fx),
            ClusterIn::Snapshot { room, members } => self.snapshot(room, members, now, fx),
            ClusterIn::Relayed { to, message } => {
                let Some(conn) = self
                    .participants
                    .get(&to)
                    .filter(|p| !p.moved)
                    .and_then(|p| p.conn.clone())
                else {
                    return;
                };
                fx.send(&conn, Outgoing::Relay(message));
            }
            ClusterIn::RelaySdp {
                room,
                node,
                kind,
                sdp,
            } => {
                if self.relay_open(&room, &node) {
                    fx.media.push(MediaCommand::RelaySdp {
                        room,
                        node,
                        kind,
                        sdp,
                    });
                } else if !self.early_sdp.hold(room, node, kind, sdp, now) {
                    tracing::warn!(
                        dropped = self.early_sdp.dropped,
                        "relay SDP for a relay not open yet dropped: too many held"
                    );
                }
            }
            ClusterIn::RelayStreams {
                room,
                node,
                publisher,
                track,
                active,
            } => {
                // Before the relay opens, it carries every stream anyway.
                if self.relay_open(&room, &node) {
                    fx.media.push(MediaCommand::RelayStreams {
                        room,
                        node,
                        publisher,
                        track,
                        active,
                    });
                }
            }
            ClusterIn::Move { room, url, node } => {
                for (_, p) in self.participants.iter() {
                    if p.room != room || p.moved || !p.can_move {
                        continue;
                    }
                    if let Some(conn) = &p.conn {
                        let msg = ServerMessage::Move {
                            url: url.clone(),
                            node: node.clone(),
                            room: room.to_string(),
                        };
                        fx.send(conn, msg);
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn entered(
        &mut self,
        conn: ClientId,
        room: RoomName,
        mode: RoomMode,
        members: Vec<Member>,
        taken: Option<TakenPlace>,
        now: Millis,
        fx: &mut Effects,
    ) {
        let pending = self.pending.remove(&conn);
        let live = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.participant.is_none());
        let (
            Some(PendingJoin {
                mut participant,
                info,
            }),
            true,
        ) = (pending, live)
        else {
            // The socket went (or joined elsewhere) meanwhile: undo.
            let (id, resume_token) = match &taken {
                Some(t) => (t.info.id.clone(), t.resume_token.clone()),
                None => (conn.clone(), String::new()),
            };
            fx.cluster.push(ClusterOut::Left {
                room,
                id,
                resume_token,
            });
            return;
        };
        if mode == RoomMode::Sfu && !self.media_available {
            fx.cluster.push(ClusterOut::Left {
                room,
                id: taken.as_ref().map_or(conn.clone(), |t| t.info.id.clone()),
                resume_token: participant.resume_token.clone(),
            });
            fx.send(
                &conn,
                ServerMessage::error(
                    ErrorCode::MediaUnavailable,
                    "this server has no media plane for SFU rooms; join with mode `p2p`",
                    Some("join"),
                ),
            );
            return;
        }
        for m in members {
            if self.participants.contains_key(m.id()) || m.id() == &conn {
                continue;
            }
            if taken.as_ref().is_some_and(|t| &t.info.id == m.id()) {
                continue;
            }
            self.rooms.add(&room, mode, m);
        }
        participant.mode = mode;
        match taken {
            None => {
                let ice = ice_servers_for(&self.ice, &participant.identity, now / 1000);
                self.enter(&conn, mode, conn.clone(), participant, info, ice, fx);
            }
            Some(t) => self.take_back(&conn, mode, participant, t, now, fx),
        }
    }

    /// Brings a room's other-node members in line with `members`, through
    /// the same steps as the events that were missed, so the room is told
    /// only of real changes. This node's own members are left alone: the
    /// cluster task keeps them in Redis.
    fn snapshot(&mut self, room: RoomName, members: Vec<Member>, now: Millis, fx: &mut Effects) {
        let listed: BTreeSet<&ParticipantId> = members.iter().map(|m| m.id()).collect();
        let gone: Vec<ParticipantId> = self
            .rooms
            .members(&room)
            .iter()
            .filter(|m| m.node.is_some() && !listed.contains(m.id()))
            .map(|m| m.id().clone())
            .collect();
        for id in gone {
            let room = room.clone();
            self.on_cluster_input(ClusterIn::Left { room, id }, now, fx);
        }
        for member in members {
            let Some(node) = member.node.clone() else {
                continue;
            };
            let (id, media) = (member.id().clone(), member.info.media.clone());
            let known = self
                .rooms
                .member(&room, &id)
                .map(|k| (k.info.media.clone(), k.node.clone()));
            let room = room.clone();
            let missed = match known {
                None => vec![ClusterIn::Joined { room, member }],
                Some((was, at)) => {
                    let mut missed = Vec::new();
                    if at.as_ref() != Some(&node) {
                        let room = room.clone();
                        let id = id.clone();
                        missed.push(ClusterIn::Moved { room, id, node });
                    }
                    if was != media {
                        missed.push(ClusterIn::Media { room, id, media });
                    }
                    missed
                }
            };
            for m in missed {
                self.on_cluster_input(m, now, fx);
            }
        }
    }

    /// Serves here a place another node held: same id, name and media
    /// state; the room is not told (it never saw the member leave).
    fn take_back(
        &mut self,
        conn: &ClientId,
        mode: RoomMode,
        mut participant: Participant,
        t: TakenPlace,
        now: Millis,
        fx: &mut Effects,
    ) {
        let pid = t.info.id.clone();
        participant.identity = t.identity;
        participant.resume_token = t.resume_token;
        participant.permissions = Permissions {
            publish: t.info.permissions.publish,
            subscribe: t.info.permissions.subscribe,
        };
        let room = participant.room.clone();
        let others = self.others_info(&room, &pid);
        self.rooms.add(
            &room,
            mode,
            Member {
                info: t.info.clone(),
                node: None,
            },
        );
        let joined = ServerMessage::Joined {
            client_id: pid.clone(),
            room: room.to_string(),
            mode,
            name: t.info.name.clone(),
            participants: others,
            ice_servers: ice_servers_for(&self.ice, &participant.identity, now / 1000),
            permissions: participant.permissions,
            resume_token: participant.resume_token.clone(),
            resumed: true,
            moved: true,
            node: self.node.clone(),
        };
        let permissions = participant.permissions;
        self.participants.insert(pid.clone(), participant);
        if let Some(c) = self.conns.get_mut(conn) {
            c.participant = Some(pid.clone());
        }
        fx.send(conn, joined);
        if mode == RoomMode::Sfu {
            fx.media.push(MediaCommand::Join {
                room: room.clone(),
                participant: pid,
                permissions,
            });
        }
        self.sync_relays(&room, fx);
    }

    /// Another node now serves `id`. When it was ours, the client moved (or
    /// reconnected) there: it leaves here without the room being told.
    fn moved_away(
        &mut self,
        room: RoomName,
        id: ParticipantId,
        node: NodeId,
        now: Millis,
        fx: &mut Effects,
    ) {
        if Some(&node) == self.node.as_ref() {
            return;
        }
        let grace = self.rooms_cfg.reconnect_grace.as_millis() as u64;
        match self.participants.get_mut(&id) {
            Some(p) if !p.moved => {
                p.moved = true;
                // The old socket and media stay while the client switches
                // over; it closes them itself, and they go after the grace
                // period at the latest.
                p.detached_until = Some(now + grace.max(1000));
                let attached = p.conn.is_some();
                self.rooms.set_node(&room, &id, Some(node));
                if !attached {
                    self.remove_participant(&id, fx);
                }
            }
            Some(_) => {}
            None => {
                self.rooms.set_node(&room, &id, Some(node));
            }
        }
    }

    /// Relays to a member another node serves; false when `target` is not
    /// such a member of `room`.
    pub(super) fn relay_remote(
        &self,
        room: &RoomName,
        target: &ParticipantId,
        message: &Map<String, Value>,
        fx: &mut Effects,
    ) -> bool {
        match self.rooms.member(room, target).and_then(|m| m.node.clone()) {
            Some(node) => {
                fx.cluster.push(ClusterOut::Relay {
                    node,
                    to: target.clone(),
                    message: message.clone(),
                });
                true
            }
            None => false,
        }
    }
}
