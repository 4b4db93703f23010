//! The signaling core: connections, participants and rooms, with no I/O.
//!
//! [`Hub::handle`] takes one [`Input`] and the current time and returns the
//! [`Effects`]: frames to send to connections, commands for the media plane,
//! connections to close. The driver in [`crate::server`] owns the sockets
//! and the clock; tests drive the hub directly.
//!
//! A connection (its [`ClientId`] from `registered`) becomes a participant
//! when it joins a room; the participant id is the connection's id. When the
//! socket drops, the participant is held for the reconnect grace period: a
//! new connection that sends `join` with the `resumeToken` from `joined`
//! takes its place and the room never sees it leave.

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;
use serde_json::Value;

use crate::auth::{ice_servers_for, Auth, Claims};
use crate::config::{IceConfig, RoomsConfig};
use crate::error::ErrorCode;
use crate::ids::{ClientId, ParticipantId, RoomName};
use crate::media::{MediaCommand, MediaEvent};
use crate::protocol::{
    sdp_text, ClientMessage, Incoming, MediaState, Outgoing, ParticipantInfo, Permissions,
    RoomMode, ServerMessage,
};
use crate::room::Room;

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// Something that happened to the hub.
#[derive(Debug)]
pub enum Input {
    /// A socket opened; `token` came from the URL's `?token=`.
    Connected {
        conn: ClientId,
        token: Option<String>,
    },
    /// A valid message arrived on a socket.
    Message { conn: ClientId, incoming: Incoming },
    /// A socket closed. `hold`: the connection was lost (no goodbye), so
    /// its participant is held for the reconnect grace period.
    Disconnected { conn: ClientId, hold: bool },
    /// The media plane has something for a participant.
    Media(MediaEvent),
    /// Time passed: expire reconnect grace periods.
    Timeout,
}

/// What the hub decided.
#[derive(Debug, Default, PartialEq)]
pub struct Effects {
    pub sends: Vec<(ClientId, Outgoing)>,
    pub media: Vec<MediaCommand>,
    /// Connections to close (replaced by a resumed one).
    pub closes: Vec<ClientId>,
}

impl Effects {
    fn send(&mut self, to: &ClientId, msg: impl Into<Outgoing>) {
        self.sends.push((to.clone(), msg.into()));
    }
}

#[derive(Debug)]
struct Conn {
    url_token: Option<String>,
    /// The participant this connection speaks for, once joined.
    participant: Option<ParticipantId>,
}

#[derive(Debug)]
struct Participant {
    room: RoomName,
    /// The token's identity, or the participant id without a token.
    identity: String,
    name: String,
    media: MediaState,
    permissions: Permissions,
    resume_token: String,
    /// The connection, or `None` while held for reconnection.
    conn: Option<ClientId>,
    /// When the hold ends, while detached.
    detached_until: Option<Millis>,
}

impl Participant {
    fn info(&self, id: &ParticipantId) -> ParticipantInfo {
        ParticipantInfo {
            id: id.clone(),
            name: self.name.clone(),
            media: self.media.clone(),
            permissions: self.permissions,
        }
    }
}

/// Counts for `/api/stats` and `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HubStats {
    pub connections: usize,
    pub participants: usize,
    pub rooms: usize,
    pub p2p_rooms: usize,
    pub sfu_rooms: usize,
}

/// The signaling state machine.
#[derive(Debug)]
pub struct Hub {
    auth: Auth,
    rooms_cfg: RoomsConfig,
    ice: IceConfig,
    media_available: bool,
    conns: HashMap<ClientId, Conn>,
    participants: HashMap<ParticipantId, Participant>,
    rooms: HashMap<RoomName, Room>,
}

impl Hub {
    /// `media_available`: whether SFU rooms can be served.
    pub fn new(auth: Auth, rooms_cfg: RoomsConfig, ice: IceConfig, media_available: bool) -> Self {
        Hub {
            auth,
            rooms_cfg,
            ice,
            media_available,
            conns: HashMap::new(),
            participants: HashMap::new(),
            rooms: HashMap::new(),
        }
    }

    pub fn stats(&self) -> HubStats {
        let p2p_rooms = self
            .rooms
            .values()
            .filter(|r| r.mode == RoomMode::P2p)
            .count();
        HubStats {
            connections: self.conns.len(),
            participants: self.participants.len(),
            rooms: self.rooms.len(),
            p2p_rooms,
            sfu_rooms: self.rooms.len() - p2p_rooms,
        }
    }

    /// The earliest time [`Input::Timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.participants
            .values()
            .filter_map(|p| p.detached_until)
            .min()
    }

    pub fn handle(&mut self, input: Input, now: Millis) -> Effects {
        let mut fx = Effects::default();
        match input {
            Input::Connected { conn, token } => {
                fx.send(
                    &conn,
                    ServerMessage::Registered {
                        client_id: conn.clone(),
                    },
                );
                self.conns.insert(
                    conn,
                    Conn {
                        url_token: token,
                        participant: None,
                    },
                );
            }
            Input::Message { conn, incoming } => self.on_message(conn, incoming, now, &mut fx),
            Input::Disconnected { conn, hold } => self.on_disconnect(&conn, hold, now, &mut fx),
            Input::Media(event) => self.on_media_event(event, &mut fx),
            Input::Timeout => self.expire_holds(now, &mut fx),
        }
        fx
    }

    fn on_message(&mut self, conn: ClientId, incoming: Incoming, now: Millis, fx: &mut Effects) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        let Incoming { message, raw } = incoming;
        match message {
            ClientMessage::Offer { target, sdp } => match target {
                Some(t) => self.relay(&conn, &t, raw, "offer", fx),
                None => {
                    let Some(sdp) = sdp_for_server(&conn, &sdp, "offer", fx) else {
                        return;
                    };
                    self.to_media(&conn, "offer", fx, |p| MediaCommand::Offer {
                        participant: p,
                        sdp,
                    })
                }
            },
            ClientMessage::Answer { target, sdp } => match target {
                Some(t) => self.relay(&conn, &t, raw, "answer", fx),
                None => {
                    let Some(sdp) = sdp_for_server(&conn, &sdp, "answer", fx) else {
                        return;
                    };
                    self.to_media(&conn, "answer", fx, |p| MediaCommand::Answer {
                        participant: p,
                        sdp,
                    })
                }
            },
            ClientMessage::IceCandidate { target, candidate } => match target {
                Some(t) => self.relay(&conn, &t, raw, "ice-candidate", fx),
                None => {
                    let candidate = match candidate {
                        Value::Null => None,
                        v => match serde_json::from_value(v) {
                            Ok(c) => Some(c),
                            Err(e) => {
                                fx.send(
                                    &conn,
                                    ServerMessage::error(
                                        ErrorCode::InvalidMessage,
                                        format!("invalid `candidate`: {e}"),
                                        Some("ice-candidate"),
                                    ),
                                );
                                return;
                            }
                        },
                    };
                    self.to_media(&conn, "ice-candidate", fx, |p| MediaCommand::Candidate {
                        participant: p,
                        candidate,
                    })
                }
            },
            ClientMessage::ListClients {} => {
                let clients = self.visible_peers(&conn);
                fx.send(&conn, ServerMessage::ClientsList { clients });
            }
            ClientMessage::Join {
                room,
                token,
                name,
                mode,
                resume,
            } => {
                if let Some(resume) = resume {
                    if self.resume(&conn, &room, &resume, now, fx) {
                        return;
                    }
                }
                self.join(&conn, &room, token, name, mode, now, fx)
            }
            ClientMessage::Leave {} => match self.participant_of(&conn) {
                Some(pid) => {
                    let room = self
                        .participants
                        .get(&pid)
                        .map(|p| p.room.to_string())
                        .unwrap_or_default();
                    self.remove_participant(&pid, fx);
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.participant = None;
                    }
                    fx.send(&conn, ServerMessage::Left { room });
                }
                None => fx.send(&conn, not_in_room("leave")),
            },
            ClientMessage::MediaState {
                microphone,
                camera,
                screen,
                mut tracks,
            } => {
                let Some(pid) = self.participant_of(&conn) else {
                    fx.send(&conn, not_in_room("media-state"));
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
            ClientMessage::Ping { id } => fx.send(&conn, ServerMessage::Pong { id }),
        }
    }

    /// Forwards a client's message whole, with `from` added.
    fn relay(
        &mut self,
        conn: &ClientId,
        target: &str,
        mut raw: serde_json::Map<String, Value>,
        request: &str,
        fx: &mut Effects,
    ) {
        let target = ClientId::from_string(target);
        let participant = self.participant_of(conn);
        let to_conn = match &participant {
            Some(pid) => {
                let room = self.participants.get(pid).map(|p| &p.room);
                match self.participants.get(&target) {
                    Some(t) if Some(&t.room) == room && &target != pid => t.conn.clone(),
                    _ => None,
                }
            }
            None => match self.conns.get(&target) {
                Some(c) if c.participant.is_none() && &target != conn => Some(target.clone()),
                _ => None,
            },
        };
        match to_conn {
            Some(to) => {
                let from = participant.unwrap_or_else(|| conn.clone());
                raw.insert("from".into(), Value::String(from.to_string()));
                fx.send(&to, Outgoing::Relay(raw));
            }
            None => fx.send(
                conn,
                ServerMessage::error(
                    ErrorCode::UnknownTarget,
                    format!("no client `{target}` to send to here"),
                    Some(request),
                ),
            ),
        }
    }

    /// Hands an untargeted offer, answer or candidate to the media plane.
    fn to_media(
        &mut self,
        conn: &ClientId,
        request: &str,
        fx: &mut Effects,
        make: impl FnOnce(ParticipantId) -> MediaCommand,
    ) {
        let Some(pid) = self.participant_of(conn) else {
            fx.send(
                conn,
                ServerMessage::error(
                    ErrorCode::InvalidMessage,
                    "`target` is required outside an SFU room",
                    Some(request),
                ),
            );
            return;
        };
        let sfu = self
            .participants
            .get(&pid)
            .and_then(|p| self.rooms.get(&p.room))
            .is_some_and(|r| r.mode == RoomMode::Sfu);
        if sfu {
            fx.media.push(make(pid));
        } else {
            fx.send(
                conn,
                ServerMessage::error(
                    ErrorCode::InvalidMessage,
                    "`target` is required in a P2P room",
                    Some(request),
                ),
            );
        }
    }

    fn visible_peers(&self, conn: &ClientId) -> Vec<ClientId> {
        match self.participant_of(conn) {
            Some(pid) => self
                .participants
                .get(&pid)
                .and_then(|p| self.rooms.get(&p.room))
                .map(|r| r.others(&pid).cloned().collect())
                .unwrap_or_default(),
            None => {
                let mut ids: Vec<ClientId> = self
                    .conns
                    .iter()
                    .filter(|(id, c)| *id != conn && c.participant.is_none())
                    .map(|(id, _)| id.clone())
                    .collect();
                ids.sort();
                ids
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn join(
        &mut self,
        conn: &ClientId,
        room: &str,
        token: Option<String>,
        name: Option<String>,
        mode: Option<RoomMode>,
        now: Millis,
        fx: &mut Effects,
    ) {
        let err = |code, msg: String| ServerMessage::error(code, msg, Some("join"));
        if self.participant_of(conn).is_some() {
            fx.send(
                conn,
                err(
                    ErrorCode::AlreadyInRoom,
                    "already in a room: send `leave` first".into(),
                ),
            );
            return;
        }
        let Some(room_name) = RoomName::parse(room) else {
            fx.send(
                conn,
                err(
                    ErrorCode::InvalidRoom,
                    format!(
                        "room names are 1 to {} characters of A-Z a-z 0-9 _ . -",
                        RoomName::MAX_LEN
                    ),
                ),
            );
            return;
        };
        let token = token.or_else(|| self.conns.get(conn).and_then(|c| c.url_token.clone()));
        let claims = match self.authorize(token.as_deref(), room, now) {
            Ok(c) => c,
            Err(e) => {
                fx.send(conn, err(e.code(), e.to_string()));
                return;
            }
        };
        let (identity, token_name, grants, token_mode) = match &claims {
            Some(c) => (Some(c.sub.clone()), c.name.clone(), c.grants, c.mode),
            None => (None, None, crate::auth::Grants::default(), None),
        };
        let wanted = mode.or(token_mode);
        let existing = self.rooms.get(&room_name);
        let room_mode = match (existing, wanted) {
            (Some(r), Some(m)) if r.mode != m => {
                fx.send(
                    conn,
                    err(
                        ErrorCode::ModeMismatch,
                        format!("room `{room}` is a {} room", r.mode.as_str()),
                    ),
                );
                return;
            }
            (Some(r), _) => r.mode,
            (None, m) => m.unwrap_or(self.rooms_cfg.default_mode),
        };
        let size = existing.map_or(0, Room::len);
        match room_mode {
            RoomMode::P2p if size >= self.rooms_cfg.max_p2p_participants => {
                fx.send(conn, err(
                    ErrorCode::RoomFull,
                    format!(
                        "P2P room `{room}` is full ({} participants, a full mesh); use an SFU room for more",
                        self.rooms_cfg.max_p2p_participants
                    ),
                ));
                return;
            }
            RoomMode::Sfu if !self.media_available => {
                fx.send(
                    conn,
                    err(
                        ErrorCode::MediaUnavailable,
                        "this server has no media plane for SFU rooms; join with mode `p2p`".into(),
                    ),
                );
                return;
            }
            RoomMode::Sfu if size >= self.rooms_cfg.max_sfu_participants => {
                fx.send(
                    conn,
                    err(
                        ErrorCode::RoomFull,
                        format!(
                            "room `{room}` is full ({} participants)",
                            self.rooms_cfg.max_sfu_participants
                        ),
                    ),
                );
                return;
            }
            _ => {}
        }

        let pid = conn.clone();
        let display = name
            .or(token_name)
            .map(|n| n.chars().take(64).collect::<String>())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "Guest".to_owned());
        let permissions = Permissions {
            publish: grants.publish,
            subscribe: grants.subscribe,
        };
        let identity = identity.unwrap_or_else(|| pid.to_string());
        let room_entry = self
            .rooms
            .entry(room_name.clone())
            .or_insert_with(|| Room::new(room_mode));
        let others: Vec<ParticipantInfo> = room_entry
            .members()
            .iter()
            .filter_map(|id| self.participants.get(id).map(|p| p.info(id)))
            .collect();
        room_entry.add(pid.clone());
        let participant = Participant {
            room: room_name.clone(),
            identity: identity.clone(),
            name: display.clone(),
            media: MediaState::default(),
            permissions,
            resume_token: random_token(),
            conn: Some(conn.clone()),
            detached_until: None,
        };
        let info = participant.info(&pid);
        let resume_token = participant.resume_token.clone();
        self.participants.insert(pid.clone(), participant);
        if let Some(c) = self.conns.get_mut(conn) {
            c.participant = Some(pid.clone());
        }
        fx.send(
            conn,
            ServerMessage::Joined {
                client_id: pid.clone(),
                room: room.to_owned(),
                mode: room_mode,
                name: display,
                participants: others,
                ice_servers: ice_servers_for(&self.ice, &identity, now / 1000),
                permissions,
                resume_token,
                resumed: false,
            },
        );
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

    /// Gives a held (or still attached) participant of `room` whose resume
    /// token matches to this connection. False when there is none: the
    /// caller then joins afresh.
    fn resume(
        &mut self,
        conn: &ClientId,
        room: &str,
        token: &str,
        now: Millis,
        fx: &mut Effects,
    ) -> bool {
        if self.participant_of(conn).is_some() {
            return false;
        }
        let Some(room_name) = RoomName::parse(room) else {
            return false;
        };
        let found = self.participants.iter().find(|(_, p)| {
            p.room == room_name && !token.is_empty() && constant_time_eq(&p.resume_token, token)
        });
        let Some((pid, _)) = found else { return false };
        let pid = pid.clone();
        let Some(room_ref) = self.rooms.get(&room_name) else {
            return false;
        };
        let mode = room_ref.mode;
        let others: Vec<ParticipantInfo> = room_ref
            .others(&pid)
            .filter_map(|id| self.participants.get(id).map(|p| p.info(id)))
            .collect();
        let Some(p) = self.participants.get_mut(&pid) else {
            return false;
        };
        if let Some(old) = p.conn.replace(conn.clone()) {
            if let Some(c) = self.conns.get_mut(&old) {
                c.participant = None;
            }
            fx.closes.push(old);
        }
        p.detached_until = None;
        let joined = ServerMessage::Joined {
            client_id: pid.clone(),
            room: room.to_owned(),
            mode,
            name: p.name.clone(),
            participants: others,
            ice_servers: ice_servers_for(&self.ice, &p.identity, now / 1000),
            permissions: p.permissions,
            resume_token: p.resume_token.clone(),
            resumed: true,
        };
        if let Some(c) = self.conns.get_mut(conn) {
            c.participant = Some(pid);
        }
        fx.send(conn, joined);
        true
    }

    /// Checks the token for a join. `Ok(None)`: development mode without a token.
    fn authorize(
        &self,
        token: Option<&str>,
        room: &str,
        now: Millis,
    ) -> Result<Option<Claims>, crate::auth::TokenError> {
        match token {
            Some(t) => self.auth.verify_join(t, room, now / 1000).map(Some),
            None if self.auth.is_development() => Ok(None),
            None => Err(crate::auth::TokenError::Required),
        }
    }

    fn on_disconnect(&mut self, conn: &ClientId, hold: bool, now: Millis, fx: &mut Effects) {
        let Some(c) = self.conns.remove(conn) else {
            return;
        };
        let Some(pid) = c.participant else { return };
        let grace = self.rooms_cfg.reconnect_grace;
        if hold && grace > Duration::ZERO {
            if let Some(p) = self.participants.get_mut(&pid) {
                p.conn = None;
                p.detached_until = Some(now + grace.as_millis() as u64);
                return;
            }
        }
        self.remove_participant(&pid, fx);
    }

    fn expire_holds(&mut self, now: Millis, fx: &mut Effects) {
        let expired: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|(_, p)| p.detached_until.is_some_and(|t| t <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for pid in expired {
            self.remove_participant(&pid, fx);
        }
    }

    /// Removes a participant from its room, tells the others, frees its media.
    fn remove_participant(&mut self, pid: &ParticipantId, fx: &mut Effects) {
        let Some(p) = self.participants.remove(pid) else {
            return;
        };
        let mut sfu = false;
        if let Some(room) = self.rooms.get_mut(&p.room) {
            room.remove(pid);
            sfu = room.mode == RoomMode::Sfu;
            if room.is_empty() {
                self.rooms.remove(&p.room);
            }
        }
        self.broadcast(
            &p.room,
            pid,
            ServerMessage::ParticipantLeft { id: pid.clone() },
            fx,
        );
        if sfu {
            fx.media.push(MediaCommand::Leave {
                participant: pid.clone(),
            });
        }
    }

    fn on_media_event(&mut self, event: MediaEvent, fx: &mut Effects) {
        let (pid, msg) = match event {
            MediaEvent::Offer { participant, sdp } => (participant, ServerMessage::Offer { sdp }),
            MediaEvent::Answer { participant, sdp } => (participant, ServerMessage::Answer { sdp }),
            MediaEvent::Candidate {
                participant,
                candidate,
            } => (participant, ServerMessage::IceCandidate { candidate }),
            MediaEvent::Error {
                participant,
                code,
                message,
            } => (
                participant,
                ServerMessage::Error {
                    code,
                    message,
                    request: None,
                },
            ),
        };
        if let Some(conn) = self.participants.get(&pid).and_then(|p| p.conn.clone()) {
            fx.send(&conn, msg);
        }
    }

    /// Sends to every attached member of `room` but `except`.
    fn broadcast(
        &self,
        room: &RoomName,
        except: &ParticipantId,
        msg: ServerMessage,
        fx: &mut Effects,
    ) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        for id in r.others(except) {
            if let Some(conn) = self.participants.get(id).and_then(|p| p.conn.as_ref()) {
                fx.send(conn, msg.clone());
            }
        }
    }

    fn participant_of(&self, conn: &ClientId) -> Option<ParticipantId> {
        self.conns.get(conn).and_then(|c| c.participant.clone())
    }
}

/// The SDP text of an offer or answer for the media plane (text or the
/// browser's description object); a bad one is answered with an error.
fn sdp_for_server(conn: &ClientId, sdp: &Value, request: &str, fx: &mut Effects) -> Option<String> {
    match sdp_text(sdp, request) {
        Ok(s) => Some(s),
        Err(e) => {
            fx.send(
                conn,
                ServerMessage::error(ErrorCode::InvalidMessage, e, Some(request)),
            );
            None
        }
    }
}

fn not_in_room(request: &str) -> ServerMessage {
    ServerMessage::error(ErrorCode::NotInRoom, "join a room first", Some(request))
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn random_token() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::parse_client_message;

    fn hub(grace: Duration) -> Hub {
        let rooms = RoomsConfig {
            reconnect_grace: grace,
            ..RoomsConfig::default()
        };
        Hub::new(
            Auth::new(Default::default()),
            rooms,
            IceConfig::default(),
            true,
        )
    }

    fn msg(hub: &mut Hub, conn: &ClientId, text: &str, now: Millis) -> Effects {
        let incoming = parse_client_message(text).unwrap();
        hub.handle(
            Input::Message {
                conn: conn.clone(),
                incoming,
            },
            now,
        )
    }

    fn connect(hub: &mut Hub) -> ClientId {
        let id = ClientId::random();
        hub.handle(
            Input::Connected {
                conn: id.clone(),
                token: None,
            },
            0,
        );
        id
    }

    #[test]
    fn sfu_join_offer_and_leave_drive_the_media_plane() {
        let mut h = hub(Duration::ZERO);
        let a = connect(&mut h);
        let fx = msg(&mut h, &a, r#"{"type":"join","room":"r"}"#, 0);
        assert!(
            matches!(&fx.media[..], [MediaCommand::Join { participant, permissions, .. }]
            if participant == &a && permissions.publish && permissions.subscribe)
        );
        let fx = msg(&mut h, &a, r#"{"type":"offer","sdp":"v=0"}"#, 0);
        assert_eq!(
            fx.media,
            vec![MediaCommand::Offer {
                participant: a.clone(),
                sdp: "v=0".into()
            }]
        );
        // The browser's description object works as well as the text.
        let fx = msg(
            &mut h,
            &a,
            r#"{"type":"offer","sdp":{"type":"offer","sdp":"v=1"}}"#,
            0,
        );
        assert_eq!(
            fx.media,
            vec![MediaCommand::Offer {
                participant: a.clone(),
                sdp: "v=1".into()
            }]
        );
        let fx = msg(
            &mut h,
            &a,
            r#"{"type":"answer","sdp":{"type":"offer","sdp":"v=1"}}"#,
            0,
        );
        assert!(fx.media.is_empty());
        assert!(matches!(
            &fx.sends[..],
            [(
                _,
                Outgoing::Message(ServerMessage::Error {
                    code: ErrorCode::InvalidMessage,
                    ..
                })
            )]
        ));
        let fx = msg(
            &mut h,
            &a,
            r#"{"type":"ice-candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0"}}"#,
            0,
        );
        assert!(
            matches!(&fx.media[..], [MediaCommand::Candidate { candidate: Some(c), .. }] if c.sdp_mid.as_deref() == Some("0"))
        );
        let fx = msg(
            &mut h,
            &a,
            r#"{"type":"ice-candidate","candidate":{"nope":1}}"#,
            0,
        );
        assert!(fx.media.is_empty());
        assert!(matches!(
            &fx.sends[..],
            [(
                _,
                Outgoing::Message(ServerMessage::Error {
                    code: ErrorCode::InvalidMessage,
                    ..
                })
            )]
        ));
        let fx = h.handle(
            Input::Disconnected {
                conn: a.clone(),
                hold: true,
            },
            0,
        );
        assert_eq!(
            fx.media,
            vec![MediaCommand::Leave {
                participant: a.clone()
            }]
        );
        assert_eq!(h.stats(), HubStats::default());
    }

    #[test]
    fn media_events_reach_their_participant_only() {
        let mut h = hub(Duration::ZERO);
        let a = connect(&mut h);
        let b = connect(&mut h);
        msg(&mut h, &a, r#"{"type":"join","room":"r"}"#, 0);
        msg(&mut h, &b, r#"{"type":"join","room":"r"}"#, 0);
        let fx = h.handle(
            Input::Media(MediaEvent::Offer {
                participant: b.clone(),
                sdp: "o".into(),
            }),
            0,
        );
        assert_eq!(
            fx.sends,
            vec![(
                b.clone(),
                Outgoing::Message(ServerMessage::Offer { sdp: "o".into() })
            )]
        );
        let fx = h.handle(
            Input::Media(MediaEvent::Error {
                participant: a.clone(),
                code: ErrorCode::MediaRejected,
                message: "bad sdp".into(),
            }),
            0,
        );
        assert!(
            matches!(&fx.sends[..], [(to, Outgoing::Message(ServerMessage::Error { code: ErrorCode::MediaRejected, .. }))] if to == &a)
        );
        // Events for someone gone are dropped.
        let gone = ClientId::random();
        let fx = h.handle(
            Input::Media(MediaEvent::Answer {
                participant: gone,
                sdp: "x".into(),
            }),
            0,
        );
        assert!(fx.sends.is_empty());
    }

    #[test]
    fn held_participant_expires_on_timeout() {
        let mut h = hub(Duration::from_millis(500));
        let a = connect(&mut h);
        let b = connect(&mut h);
        msg(&mut h, &a, r#"{"type":"join","room":"r"}"#, 0);
        msg(&mut h, &b, r#"{"type":"join","room":"r"}"#, 0);
        let fx = h.handle(
            Input::Disconnected {
                conn: b.clone(),
                hold: true,
            },
            1000,
        );
        assert!(fx.sends.is_empty() && fx.media.is_empty());
        assert_eq!(h.poll_timeout(), Some(1500));
        assert!(h.handle(Input::Timeout, 1499).sends.is_empty());
        let fx = h.handle(Input::Timeout, 1500);
        assert_eq!(
            fx.sends,
            vec![(
                a.clone(),
                Outgoing::Message(ServerMessage::ParticipantLeft { id: b.clone() })
            )]
        );
        assert_eq!(fx.media, vec![MediaCommand::Leave { participant: b }]);
        assert_eq!(h.poll_timeout(), None);
    }

    #[test]
    fn resume_takes_over_a_still_attached_participant() {
        let mut h = hub(Duration::from_secs(10));
        let a = connect(&mut h);
        let fx = msg(&mut h, &a, r#"{"type":"join","room":"r"}"#, 0);
        let Outgoing::Message(ServerMessage::Joined { resume_token, .. }) = &fx.sends[0].1 else {
            panic!()
        };
        let a2 = connect(&mut h);
        let fx = msg(
            &mut h,
            &a2,
            &format!(r#"{{"type":"join","room":"r","resume":"{resume_token}"}}"#),
            0,
        );
        assert_eq!(fx.closes, vec![a.clone()], "the old socket is closed");
        assert!(fx.media.is_empty(), "the media plane keeps its connection");
        assert!(
            matches!(&fx.sends[0].1, Outgoing::Message(ServerMessage::Joined { client_id, resumed: true, .. }) if client_id == &a)
        );
        // The old socket's close no longer affects the participant.
        let fx = h.handle(
            Input::Disconnected {
                conn: a.clone(),
                hold: false,
            },
            0,
        );
        assert!(fx.media.is_empty());
        assert_eq!(h.stats().participants, 1);
    }
}
