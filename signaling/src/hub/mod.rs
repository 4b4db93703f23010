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
//!
//! The hub's jobs, one module each:
//!
//! - [`admission`]: checks a `join` (room name, token, mode, room size).
//! - [`rooms`]: the room directory (behind [`RoomDirectory`]), membership
//!   and presence: `joined`, `participant-joined`/`-left`, `media-state`.
//! - [`sessions`]: connections, reconnect holds and `resume`.
//! - [`relay`]: offers, answers and candidates between clients (P2P rooms
//!   and the classic protocol).
//! - [`bridge`]: the media plane: commands out, events back to sockets.
//! - [`cluster`]: in a cluster, joins placed by the cluster shell, and the
//!   other nodes' members and relayed messages.

mod admission;
mod bridge;
mod cluster;
mod early_sdp;
mod relay;
mod rooms;
mod sessions;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::auth::Auth;
use crate::config::{ClassicProtocol, IceConfig, RoomsConfig};
use crate::error::ErrorCode;
use crate::ids::{ClientId, NodeId, ParticipantId};
use crate::media::{MediaCommand, MediaEvent};
use crate::protocol::{ClientMessage, Incoming, Outgoing, ServerMessage};

pub use cluster::{ClusterIn, ClusterOut, EnterRequest, TakenPlace};
pub use rooms::{LocalRooms, Member, RoomCounts, RoomDirectory};

use rooms::Participant;
use sessions::Conn;

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
    /// The cluster answered a request or has news from other nodes.
    Cluster(ClusterIn),
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
    /// Requests for the cluster shell (always empty without a cluster).
    pub cluster: Vec<ClusterOut>,
}

impl Effects {
    fn send(&mut self, to: &ClientId, msg: impl Into<Outgoing>) {
        self.sends.push((to.clone(), msg.into()));
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
    /// The media plane is past its capacity: SFU joins are refused
    /// (`server_busy`) until it catches up.
    media_at_capacity: bool,
    /// Who may relay and list without joining (resolved, never `Auto`).
    classic: ClassicProtocol,
    conns: HashMap<ClientId, Conn>,
    participants: HashMap<ParticipantId, Participant>,
    rooms: Box<dyn RoomDirectory>,
    /// This node's id, in a cluster.
    node: Option<NodeId>,
    pending: cluster::Pending,
    relays: cluster::Relays,
    early_sdp: early_sdp::EarlySdp,
}

impl Hub {
    /// `media_available`: whether SFU rooms can be served.
    pub fn new(auth: Auth, rooms_cfg: RoomsConfig, ice: IceConfig, media_available: bool) -> Self {
        Self::with_directory(
            auth,
            rooms_cfg,
            ice,
            media_available,
            Box::new(LocalRooms::default()),
        )
    }

    /// A hub whose rooms are kept in `rooms`.
    pub fn with_directory(
        auth: Auth,
        rooms_cfg: RoomsConfig,
        ice: IceConfig,
        media_available: bool,
        rooms: Box<dyn RoomDirectory>,
    ) -> Self {
        let classic = ClassicProtocol::Auto.resolve(auth.is_development());
        Hub {
            classic,
            auth,
            rooms_cfg,
            ice,
            media_available,
            media_at_capacity: false,
            conns: HashMap::new(),
            participants: HashMap::new(),
            rooms,
            node: None,
            pending: HashMap::new(),
            relays: HashMap::new(),
            early_sdp: Default::default(),
        }
    }

    /// Whether the media plane is past its capacity (see
    /// `MediaPlane::at_capacity`): SFU joins are refused while it is.
    pub fn set_media_at_capacity(&mut self, at_capacity: bool) {
        self.media_at_capacity = at_capacity;
    }

    /// Sets `[auth] classic_protocol` (default: `auto`).
    pub fn with_classic_protocol(mut self, mode: ClassicProtocol) -> Self {
        self.classic = mode.resolve(self.auth.is_development());
        self
    }

    /// Makes this hub node `node` of a cluster: joins are then placed by
    /// the cluster ([`ClusterOut::Enter`]) and rooms span nodes.
    pub fn in_cluster(mut self, node: NodeId) -> Self {
        self.node = Some(node);
        self
    }

    /// This node's id, in a cluster.
    pub fn node(&self) -> Option<&NodeId> {
        self.node.as_ref()
    }

    pub fn stats(&self) -> HubStats {
        let RoomCounts { p2p, sfu } = self.rooms.counts();
        HubStats {
            connections: self.conns.len(),
            participants: self.participants.len(),
            rooms: p2p + sfu,
            p2p_rooms: p2p,
            sfu_rooms: sfu,
        }
    }

    pub fn handle(&mut self, input: Input, now: Millis) -> Effects {
        let mut fx = Effects::default();
        match input {
            Input::Connected { conn, token } => self.on_connect(conn, token, now, &mut fx),
            Input::Message { conn, incoming } => self.on_message(conn, incoming, now, &mut fx),
            Input::Disconnected { conn, hold } => self.on_disconnect(&conn, hold, now, &mut fx),
            Input::Media(event) => self.on_media_event(event, &mut fx),
            Input::Cluster(c) => self.on_cluster(c, now, &mut fx),
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
                None => self.offer_to_media(&conn, &sdp, fx),
            },
            ClientMessage::Answer { target, sdp } => match target {
                Some(t) => self.relay(&conn, &t, raw, "answer", fx),
                None => self.answer_to_media(&conn, &sdp, fx),
            },
            ClientMessage::IceCandidate { target, candidate } => match target {
                Some(t) => self.relay(&conn, &t, raw, "ice-candidate", fx),
                None => self.candidate_to_media(&conn, candidate, fx),
            },
            ClientMessage::ListClients {} => {
                if !self.classic_allowed(&conn, "list-clients", fx) {
                    return;
                }
                let clients = self.visible_peers(&conn);
                fx.send(&conn, ServerMessage::ClientsList { clients });
            }
            ClientMessage::Join {
                room,
                token,
                name,
                mode,
                resume,
                redirect,
            } => {
                if let Some(resume) = &resume {
                    if self.resume(&conn, &room, resume, now, fx) {
                        return;
                    }
                }
                self.join(&conn, &room, token, name, mode, redirect, resume, now, fx)
            }
            ClientMessage::Leave {} => self.leave(&conn, fx),
            ClientMessage::MediaState {
                microphone,
                camera,
                screen,
                tracks,
            } => self.media_state(&conn, microphone, camera, screen, tracks, fx),
            ClientMessage::TrackSettings {
                participant,
                track,
                settings,
            } => self.track_settings_to_media(&conn, participant, track, settings, fx),
            ClientMessage::Ping { id } => fx.send(&conn, ServerMessage::Pong { id }),
        }
    }

    fn participant_of(&self, conn: &ClientId) -> Option<ParticipantId> {
        self.conns.get(conn).and_then(|c| c.participant.clone())
    }
}

fn not_in_room(request: &str) -> ServerMessage {
    ServerMessage::error(ErrorCode::NotInRoom, "join a room first", Some(request))
}
