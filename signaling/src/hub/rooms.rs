//! Rooms, membership and presence.
//!
//! The room directory (which rooms exist, in which mode, with which members
//! in join order) sits behind [`RoomDirectory`]; [`LocalRooms`] keeps it in
//! memory for a server that runs alone. Presence is what members are told:
//! `joined` lists the others, `participant-joined`, `participant-left` and
//! `media-state` follow.

use std::collections::HashMap;
use std::fmt;

use super::{not_in_room, Effects, Hub};
use crate::ids::{ClientId, ParticipantId, RoomName};
use crate::media::{MediaCommand, Permissions};
use crate::protocol::{MediaState, ParticipantInfo, RoomMode, ServerMessage, TrackInfo};

/// How many rooms of each mode exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoomCounts {
    pub p2p: usize,
    pub sfu: usize,
}

/// Which rooms exist and who is in them.
///
/// A room exists while it has members: [`RoomDirectory::add`] creates it in
/// the given mode, and removing its last member removes it.
pub trait RoomDirectory: fmt::Debug + Send {
    /// The room's mode, when it exists.
    fn mode(&self, room: &RoomName) -> Option<RoomMode>;
    /// Its members, in join order (empty when it does not exist).
    fn members(&self, room: &RoomName) -> &[ParticipantId];
    /// Adds a member, creating the room in `mode` if needed.
    fn add(&mut self, room: &RoomName, mode: RoomMode, member: ParticipantId);
    /// Removes a member; the room goes when its last member does.
    fn remove(&mut self, room: &RoomName, member: &ParticipantId);
    fn counts(&self) -> RoomCounts;
}

#[derive(Clone, Debug)]
struct Room {
    mode: RoomMode,
    members: Vec<ParticipantId>,
}

/// The room directory of a server that runs alone.
#[derive(Debug, Default)]
pub struct LocalRooms {
    rooms: HashMap<RoomName, Room>,
}

impl RoomDirectory for LocalRooms {
    fn mode(&self, room: &RoomName) -> Option<RoomMode> {
        self.rooms.get(room).map(|r| r.mode)
    }

    fn members(&self, room: &RoomName) -> &[ParticipantId] {
        self.rooms.get(room).map_or(&[], |r| &r.members[..])
    }

    fn add(&mut self, room: &RoomName, mode: RoomMode, member: ParticipantId) {
        let r = self.rooms.entry(room.clone()).or_insert_with(|| Room {
            mode,
            members: Vec::new(),
        });
        if !r.members.contains(&member) {
            r.members.push(member);
        }
    }

    fn remove(&mut self, room: &RoomName, member: &ParticipantId) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.members.retain(|m| m != member);
            if r.members.is_empty() {
                self.rooms.remove(room);
            }
        }
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

/// A member of a room served by this hub.
#[derive(Debug)]
pub(super) struct Participant {
    pub room: RoomName,
    /// The token's identity, or the participant id without a token.
    pub identity: String,
    pub name: String,
    pub media: MediaState,
    pub permissions: Permissions,
    pub resume_token: String,
    /// The connection, or `None` while held for reconnection.
    pub conn: Option<ClientId>,
    /// When the hold ends, while detached.
    pub detached_until: Option<super::Millis>,
}

impl Participant {
    pub fn info(&self, id: &ParticipantId) -> ParticipantInfo {
        ParticipantInfo {
            id: id.clone(),
            name: self.name.clone(),
            media: self.media.clone(),
            permissions: self.permissions,
        }
    }
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
            .filter(|id| *id != except)
            .filter_map(|id| self.participants.get(id).map(|p| p.info(id)))
            .collect()
    }

    /// Puts an admitted participant in its room: `joined` to it,
    /// `participant-joined` to the others, and its media state in an SFU room.
    pub(super) fn enter(
        &mut self,
        conn: &ClientId,
        room_name: RoomName,
        room_mode: RoomMode,
        participant: Participant,
        ice_servers: Vec<crate::protocol::IceServer>,
        fx: &mut Effects,
    ) {
        let pid = conn.clone();
        let others = self.others_info(&room_name, &pid);
        self.rooms.add(&room_name, room_mode, pid.clone());
        let info = participant.info(&pid);
        let joined = ServerMessage::Joined {
            client_id: pid.clone(),
            room: room_name.to_string(),
            mode: room_mode,
            name: participant.name.clone(),
            participants: others,
            ice_servers,
            permissions: participant.permissions,
            resume_token: participant.resume_token.clone(),
            resumed: false,
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
                room: room_name,
                participant: pid,
                permissions,
            });
        }
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
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        p.media = media.clone();
        let room = p.room.clone();
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
        let sfu = self.rooms.mode(&p.room) == Some(RoomMode::Sfu);
        // Told before the room forgets the member, so the others are known.
        self.broadcast(
            &p.room,
            pid,
            ServerMessage::ParticipantLeft { id: pid.clone() },
            fx,
        );
        self.rooms.remove(&p.room, pid);
        if sfu {
            fx.media.push(MediaCommand::Leave {
                room: p.room,
                participant: pid.clone(),
            });
        }
    }

    /// Sends to every attached member of `room` but `except`.
    pub(super) fn broadcast(
        &self,
        room: &RoomName,
        except: &ParticipantId,
        msg: ServerMessage,
        fx: &mut Effects,
    ) {
        for id in self.rooms.members(room).iter().filter(|id| *id != except) {
            if let Some(conn) = self.participants.get(id).and_then(|p| p.conn.as_ref()) {
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
