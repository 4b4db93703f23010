//! Connections, reconnect holds and `resume`.
//!
//! A participant whose socket is lost (not closed with a goodbye) is held,
//! detached, for `[rooms] reconnect_grace`; the room is not told. A new
//! socket that joins with the participant's resume token within that time
//! takes its place; otherwise the hold expires and the participant leaves.

use std::time::Duration;

use rand::Rng;

use super::{Effects, Hub, Millis};
use crate::auth::ice_servers_for;
use crate::config::ClassicProtocol;
use crate::ids::{ClientId, ParticipantId, RoomName};
use crate::protocol::ServerMessage;

/// One open socket.
#[derive(Debug)]
pub(super) struct Conn {
    pub url_token: Option<String>,
    /// The participant this connection speaks for, once joined.
    pub participant: Option<ParticipantId>,
    /// May use the classic protocol (see `[auth] classic_protocol`).
    pub classic: bool,
}

impl Hub {
    /// The earliest time [`super::Input::Timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.participants
            .values()
            .filter_map(|p| p.detached_until)
            .min()
    }

    pub(super) fn on_connect(
        &mut self,
        conn: ClientId,
        token: Option<String>,
        now: Millis,
        fx: &mut Effects,
    ) {
        let classic = match self.classic {
            ClassicProtocol::Off => false,
            ClassicProtocol::Token => token
                .as_deref()
                .is_some_and(|t| self.auth.verify(t, now / 1000).is_ok()),
            ClassicProtocol::Open | ClassicProtocol::Auto => true,
        };
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
                classic,
            },
        );
    }

    /// Gives a held (or still attached) participant of `room` whose resume
    /// token matches to this connection. False when there is none: the
    /// caller then joins afresh.
    pub(super) fn resume(
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
            p.room == room_name
                && !p.moved
                && !token.is_empty()
                && constant_time_eq(&p.resume_token, token)
        });
        let Some((pid, _)) = found else { return false };
        let pid = pid.clone();
        let Some(mode) = self.rooms.mode(&room_name) else {
            return false;
        };
        let others = self.others_info(&room_name, &pid);
        let name = self
            .rooms
            .member(&room_name, &pid)
            .map(|m| m.info.name.clone())
            .unwrap_or_default();
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
            name,
            participants: others,
            ice_servers: ice_servers_for(&self.ice, &p.identity, now / 1000),
            permissions: p.permissions,
            resume_token: p.resume_token.clone(),
            resumed: true,
            moved: false,
            node: self.node.clone(),
        };
        if let Some(c) = self.conns.get_mut(conn) {
            c.participant = Some(pid);
        }
        fx.send(conn, joined);
        true
    }

    pub(super) fn on_disconnect(
        &mut self,
        conn: &ClientId,
        hold: bool,
        now: Millis,
        fx: &mut Effects,
    ) {
        let Some(c) = self.conns.remove(conn) else {
            return;
        };
        let Some(pid) = c.participant else { return };
        let grace = self.rooms_cfg.reconnect_grace;
        let moved = self.participants.get(&pid).is_some_and(|p| p.moved);
        if hold && grace > Duration::ZERO && !moved {
            if let Some(p) = self.participants.get_mut(&pid) {
                p.conn = None;
                p.detached_until = Some(now + grace.as_millis() as u64);
                return;
            }
        }
        self.remove_participant(&pid, fx);
    }

    pub(super) fn expire_holds(&mut self, now: Millis, fx: &mut Effects) {
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
}

pub(super) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// 128 random bits as 32 hex digits.
pub(super) fn random_token() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
