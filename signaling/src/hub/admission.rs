//! Admission: whether a `join` may enter the room, and as whom.
//!
//! Checked in order: not already in a room, a valid room name, the token
//! (or development mode), the room's mode, its size, and for SFU rooms a
//! media plane to serve it. What passes becomes a [`Participant`].

use super::rooms::Participant;
use super::sessions::random_token;
use super::{Effects, Hub, Millis};
use crate::auth::{ice_servers_for, Claims, Grants, TokenError};
use crate::error::ErrorCode;
use crate::ids::{ClientId, RoomName};
use crate::media::Permissions;
use crate::protocol::{MediaState, ParticipantInfo, RoomMode, ServerMessage};

impl Hub {
    /// `join`, after a failed (or no) local `resume`. In a cluster,
    /// `resume` may still take back a place another node holds.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn join(
        &mut self,
        conn: &ClientId,
        room: &str,
        token: Option<String>,
        name: Option<String>,
        mode: Option<RoomMode>,
        can_move: bool,
        resume: Option<String>,
        now: Millis,
        fx: &mut Effects,
    ) {
        let err = |code, msg: String| ServerMessage::error(code, msg, Some("join"));
        if self.participant_of(conn).is_some() || self.pending.contains_key(conn) {
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
            None => (None, None, Grants::default(), None),
        };
        let wanted = mode.or(token_mode);
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
        let info = ParticipantInfo {
            id: pid.clone(),
            name: display,
            media: MediaState::default(),
            permissions,
        };
        let participant = Participant {
            room: room_name.clone(),
            mode: wanted.unwrap_or(self.rooms_cfg.default_mode),
            identity: identity.clone(),
            permissions,
            resume_token: random_token(),
            conn: Some(conn.clone()),
            detached_until: None,
            can_move,
            moved: false,
        };
        if self.node.is_some() {
            // The room's mode and size are the cluster's to check.
            self.enter_cluster(conn, wanted, participant, info, identity, resume, fx);
            return;
        }
        let existing = self.rooms.mode(&room_name);
        let room_mode = match (existing, wanted) {
            (Some(m), Some(w)) if m != w => {
                fx.send(
                    conn,
                    err(
                        ErrorCode::ModeMismatch,
                        format!("room `{room}` is a {} room", m.as_str()),
                    ),
                );
                return;
            }
            (Some(m), _) => m,
            (None, w) => w.unwrap_or(self.rooms_cfg.default_mode),
        };
        if let Some(refusal) = self.refuse_size(room, room_mode, &room_name) {
            fx.send(conn, refusal);
            return;
        }
        let mut participant = participant;
        participant.mode = room_mode;
        let ice_servers = ice_servers_for(&self.ice, &identity, now / 1000);
        self.enter(conn, room_mode, pid, participant, info, ice_servers, fx);
    }

    /// Why the room cannot take one more member in `mode`, if it cannot.
    fn refuse_size(
        &self,
        room: &str,
        mode: RoomMode,
        room_name: &RoomName,
    ) -> Option<ServerMessage> {
        let err = |code, msg: String| ServerMessage::error(code, msg, Some("join"));
        let size = self.rooms.members(room_name).len();
        match mode {
            RoomMode::P2p if size >= self.rooms_cfg.max_p2p_participants => Some(err(
                ErrorCode::RoomFull,
                format!(
                    "P2P room `{room}` is full ({} participants, a full mesh); use an SFU room for more",
                    self.rooms_cfg.max_p2p_participants
                ),
            )),
            RoomMode::Sfu if !self.media_available => Some(err(
                ErrorCode::MediaUnavailable,
                "this server has no media plane for SFU rooms; join with mode `p2p`".into(),
            )),
            RoomMode::Sfu if self.media_at_capacity => Some(err(
                ErrorCode::ServerBusy,
                "this server's media plane is at capacity (it reads its media late); try again shortly or on another server".into(),
            )),
            RoomMode::Sfu if size >= self.rooms_cfg.max_sfu_participants => Some(err(
                ErrorCode::RoomFull,
                format!(
                    "room `{room}` is full ({} participants)",
                    self.rooms_cfg.max_sfu_participants
                ),
            )),
            _ => None,
        }
    }

    /// Checks the token for a join. `Ok(None)`: development mode without a token.
    fn authorize(
        &self,
        token: Option<&str>,
        room: &str,
        now: Millis,
    ) -> Result<Option<Claims>, TokenError> {
        match token {
            Some(t) => self.auth.verify_join(t, room, now / 1000).map(Some),
            None if self.auth.is_development() => Ok(None),
            None => Err(TokenError::Required),
        }
    }
}
