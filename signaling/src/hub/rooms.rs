//! Rooms, membership and presence.
//!
//! The room directory (which rooms exist, in which mode, with which members
//! in join order, and what the members are told about each other) sits
//! behind [`RoomDirectory`]; [`LocalRooms`] keeps it in memory. A server
//! that runs alone holds only its own participants there; in a cluster the
//! directory also holds the members other nodes serve, filled from Redis
//! (a snapshot when a room gets its first member here, then its events).
//! Presence is what members are told: `joined` lists the others,
//! `participant-joined`, `participant-left` and `media-state` follow.

use std::collections::HashMap;
use std::fmt;

use super::{not_in_room, ClusterOut, Effects, Hub};
use crate::ids::{ClientId, NodeId, ParticipantId, RoomName};
use crate::media::{MediaCommand, Permissions};
use crate::protocol::{MediaState, ParticipantInfo, RoomMode, ServerMessage, TrackInfo};

/// How many rooms of each mode exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoomCounts {
    pub p2p: usize,
    pub sfu: usize,
}

/// A member of a room as the others see it, and where it is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub info: ParticipantInfo,
    /// The node serving it; `None`: this one.
    pub node: Option<NodeId>,
}

impl Member {
    pub fn id(&self) -> &ParticipantId {
        &self.info.id
    }
}

/// Which rooms exist and who is in them.
///
/// A room exists while it has members: [`RoomDirectory::add`] creates it in
/// the given mode, and removing its last member removes it.
pub trait RoomDirectory: fmt::Debug + Send {
    /// The room's mode, when it exists.
    fn mode(&self, room: &RoomName) -> Option<RoomMode>;
    /// Its members, in join order (empty when it does not exist).
    fn members(&self, room: &RoomName) -> &[Member];
    /// Adds a member, creating the room in `mode` if needed; a member
    /// already there is updated in place (it keeps its position).
    fn add(&mut self, room: &RoomName, mode: RoomMode, member: Member);
    /// Replaces a member's media state; false when it is not there.
    fn set_media(&mut self, room: &RoomName, id: &ParticipantId, media: MediaState) -> bool;
    /// Records that another node (or, with `None`, this one) serves a member.
    fn set_node(&mut self, room: &RoomName, id: &ParticipantId, node: Option<NodeId>) -> bool;
    /// Removes a member; the room goes when its last member does.
    fn remove(&mut self, room: &RoomName, id: &ParticipantId) -> Option<Member>;
    fn counts(&self) -> RoomCounts;

    /// One member, when it is in the room.
    fn member(&self, room: &RoomName, id: &ParticipantId) -> Option<&Member> {
        self.members(room).iter().find(|m| m.id() == id)
    }
}

#[derive(Clone, Debug)]
struct Room {
    mode: RoomMode,
    members: Vec<Member>,
}

/// The room directory, in memory.
#[derive(Debug, Default)]
pub struct LocalRooms {
    rooms: HashMap<RoomName, Room>,
}

impl LocalRooms {
    fn member_mut(&mut self, room: &RoomName, id: &ParticipantId) -> Option<&mut Member> {
        self.rooms
            .get_mut(room)?
            .members
            .iter_mut()
            .find(|m| m.id() == id)
    }
}

impl RoomDirectory for LocalRooms {
    fn mode(&self, room: &RoomName) -> Option<RoomMode> {
        self.rooms.get(room).map(|r| r.mode)
    }

    fn members(&self, room: &RoomName) -> &[Member] {
        self.rooms.get(room).map_or(&[], |r| &r.members[..])
    }

    fn add(&mut self, room: &RoomName, mode: RoomMode, member: Member) {
        let r = self.rooms.entry(room.clone()).or_insert_with(|| Room {
            mode,
            members: Vec::new(),
        });
        match r.members.iter_mut().find(|m| m.id() == member.id()) {
            Some(m) => *m = member,
            None => r.members.push(member),
        }
    }

    fn set_media(&mut self, room: &RoomName, id: &ParticipantId, media: MediaState) -> bool {
        self.member_mut(room, id)
            .map(|m| m.info.media = media)
            .is_some()
    }

    fn set_node(&mut self, room: &RoomName, id: &ParticipantId, node: Option<NodeId>) -> bool {
        self.member_mut(room, id).map(|m| m.node = node).is_some()
    }

    fn remove(&mut self, room: &RoomName, id: &ParticipantId) -> Option<Member> {
        let r = self.rooms.get_mut(room)?;
        let i = r.members.iter().position(|m| m.id() == id)?;
        let m = r.members.remove(i);
        if r.members.is_empty() {
            self.rooms.remove(room);
        }
        Some(m)
    }

    fn counts(&self) -> RoomCounts {
        let p2p = self
            .rooms
            .values()
            .filter(|r| r.mode == RoomMode::P2p)
            .count();
        RoomCounts {
            p2p,
            sfu: self.rooms.len() - p2p,
        }
    }
}

/// A participant this hub serves: what is not presence (that is in the
/// directory) but its session.
#[derive(Debug)]
pub(super) struct Participant {
    pub room: RoomName,
    pub mode: RoomMode,
    /// The token's identity, or the participant id without a token.
    pub identity: String,
    pub permissions: Permissions,
    pub resume_token: String,
    /// The connection, or `None` while held for reconnection.
    pub conn: Option<ClientId>,
    /// When the hold ends, while detached.
    pub detached_until: Option<super::Millis>,
    /// Its client follows `redirect` and `move`.
    pub can_move: bool,
    /// Another node took the place over (the client moved there): it is no
    /// longer in the room here, but its socket and media stay until the
    /// client closes them, so nothing is lost while it moves.
    pub moved: bool,
}

impl Hub {
    /// Everyone in `room` but `except`, as members see each other.
    pub(super) fn others_info(
        &self,
        room: &RoomName,
        except: &ParticipantId,
    ) -> Vec<ParticipantInfo> {
        self.rooms
            .members(room)
            .iter()
            .filter(|m| m.id() != except)
            .map(|m| m.info.clone())
            .collect()
    }

    /// Puts an admitted participant in its room: `joined` to it,
    /// `participant-joined` to the others, and its media state in an SFU room.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn enter(
        &mut self,
        conn: &ClientId,
        room_mode: RoomMode,
        pid: ParticipantId,
        participant: Participant,
        info: ParticipantInfo,
        ice_servers: Vec<crate::protocol::IceServer>,
        fx: &mut Effects,
    ) {
        let room_name = participant.room.clone();
        let others = self.others_info(&room_name, &pid);
        self.rooms.add(
            &room_name,
            room_mode,
            Member {
                info: info.clone(),
                node: None,
            },
        );
        let joined = ServerMessage::Joined {
            client_id: pid.clone(),
            room: room_name.to_string(),
            mode: room_mode,
            name: info.name.clone(),
            participants: others,
            ice_servers,
            permissions: participant.permissions,
            resume_token: participant.resume_token.clone(),
            resumed: false,
            moved: false,
            node: self.node.clone(),
        };
        let permissions = participant.permissions;
        self.participants.insert(pid.clone(), participant);
        if let Some(c) = self.conns.get_mut(conn) {
            c.participant = Some(pid.clone());
        }
        fx.send(conn, joined);
        self.broadcast(
            &room_name,
            &pid,
            ServerMessage::ParticipantJoined { participant: info },
            fx,
        );
        if room_mode == RoomMode::Sfu {
            fx.media.push(MediaCommand::Join {
                room: room_name.clone(),
                participant: pid,
                permissions,
            });
        }
        self.sync_relays(&room_name, fx);
    }

    /// `leave`: out of the room, socket kept.
    pub(super) fn leave(&mut self, conn: &ClientId, fx: &mut Effects) {
        let Some(pid) = self.participant_of(conn) else {
            fx.send(conn, not_in_room("leave"));
            return;
        };
        let room = self
            .participants
            .get(&pid)
            .map(|p| p.room.to_string())
            .unwrap_or_default();
        self.remove_participant(&pid, fx);
        if let Some(c) = self.conns.get_mut(conn) {
            c.participant = None;
        }
        fx.send(conn, ServerMessage::Left { room });
    }

    /// `media-state`: remembered for later joiners and told to the others.
    pub(super) fn media_state(
        &mut self,
        conn: &ClientId,
        microphone: bool,
        camera: bool,
        screen: bool,
        mut tracks: Vec<TrackInfo>,
        fx: &mut Effects,
    ) {
        let Some(pid) = self.participant_of(conn) else {
            fx.send(conn, not_in_room("media-state"));
            return;
        };
        tracks.truncate(16);
        let media = MediaState {
            microphone,
            camera,
            screen,
            tracks,
        };
        let Some(p) = self.participants.get(&pid) else {
            return;
        };
        if p.moved {
            return;
        }
        let room = p.room.clone();
        self.rooms.set_media(&room, &pid, media.clone());
        self.screen_tracks_to_media(&room, &pid, &media, true, fx);
        if self.node.is_some() {
            fx.cluster.push(ClusterOut::Media {
                room: room.clone(),
                id: pid.clone(),
                media: media.clone(),
            });
        }
        self.broadcast(
            &room,
            &pid,
            ServerMessage::MediaState {
                from: pid.clone(),
                media,
            },
            fx,
        );
    }

    /// Removes a participant from its room, tells the others, frees its media.
    pub(super) fn remove_participant(&mut self, pid: &ParticipantId, fx: &mut Effects) {
        let Some(p) = self.participants.remove(pid) else {
            return;
        };
        let sfu = p.mode == RoomMode::Sfu;
        if !p.moved {
            // Told before the room forgets the member, so the others are known.
            self.broadcast(
                &p.room,
                pid,
                ServerMessage::ParticipantLeft { id: pid.clone() },
                fx,
            );
            self.rooms.remove(&p.room, pid);
        }
        if self.node.is_some() {
            // For a member that moved, the cluster only stops listening to
            // the room (Redis already has it on its new node).
            fx.cluster.push(ClusterOut::Left {
                room: p.room.clone(),
                id: pid.clone(),
                resume_token: p.resume_token.clone(),
            });
        }
        if sfu {
            fx.media.push(MediaCommand::Leave {
                room: p.room.clone(),
                participant: pid.clone(),
            });
        }
        self.sync_relays(&p.room, fx);
    }

    /// Sends to every member of `room` attached to this hub but `except`.
    pub(super) fn broadcast(
        &self,
        room: &RoomName,
        except: &ParticipantId,
        msg: ServerMessage,
        fx: &mut Effects,
    ) {
        for m in self.rooms.members(room) {
            if m.id() == except || m.node.is_some() {
                continue;
            }
            if let Some(conn) = self.participants.get(m.id()).and_then(|p| p.conn.as_ref()) {
                fx.send(conn, msg.clone());
            }
        }
    }

    /// `list-clients`: the other members of the room, or the other clients
    /// outside rooms.
    pub(super) fn visible_peers(&self, conn: &ClientId) -> Vec<ClientId> {
        match self.participant_of(conn) {
            Some(pid) => match self.participants.get(&pid) {
                Some(p) => self
                    .rooms
                    .members(&p.room)
                    .iter()
                    .map(Member::id)
                    .filter(|id| **id != pid)
                    .cloned()
                    .collect(),
                None => Vec::new(),
            },
            None => {
                let mut ids: Vec<ClientId> = self
                    .conns
                    .iter()
                    .filter(|(id, c)| *id != conn && c.participant.is_none() && c.classic)
                    .map(|(id, _)| id.clone())
                    .collect();
                ids.sort();
                ids
            }
        }
    }
}
