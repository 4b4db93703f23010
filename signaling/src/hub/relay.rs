//! Offers, answers and candidates between clients, relayed whole with
//! `from` added: between members of one P2P room, or between clients
//! outside rooms (the classic protocol).

use serde_json::{Map, Value};

use super::{Effects, Hub};
use crate::config::ClassicProtocol;
use crate::error::ErrorCode;
use crate::ids::ClientId;
use crate::protocol::{Outgoing, ServerMessage};

impl Hub {
    /// Forwards a client's message whole, with `from` added. A target in
    /// another situation than the sender (another room, or in a room while
    /// the sender is not) is `unknown_target`.
    pub(super) fn relay(
        &mut self,
        conn: &ClientId,
        target: &str,
        mut raw: Map<String, Value>,
        request: &str,
        fx: &mut Effects,
    ) {
        let participant = self.participant_of(conn);
        if participant.is_none() && !self.classic_allowed(conn, request, fx) {
            return;
        }
        let target = ClientId::from_string(target);
        let to_conn = match &participant {
            Some(pid) => {
                let room = self.participants.get(pid).map(|p| p.room.clone());
                match self.participants.get(&target) {
                    Some(t) if Some(&t.room) == room.as_ref() && &target != pid && !t.moved => {
                        t.conn.clone()
                    }
                    None if &target != pid => {
                        // In a cluster the target may be served by another node.
                        let Some(room) = room else { return };
                        raw.insert("from".into(), Value::String(pid.to_string()));
                        if self.relay_remote(&room, &target, &raw, fx) {
                            return;
                        }
                        None
                    }
                    _ => None,
                }
            }
            None => match self.conns.get(&target) {
                Some(c) if c.participant.is_none() && c.classic && &target != conn => {
                    Some(target.clone())
                }
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

    /// Whether this unjoined socket may use the classic protocol; if not,
    /// tells it why.
    pub(super) fn classic_allowed(&self, conn: &ClientId, request: &str, fx: &mut Effects) -> bool {
        if self.participant_of(conn).is_some() || self.conns.get(conn).is_some_and(|c| c.classic) {
            return true;
        }
        let message = match self.classic {
            ClassicProtocol::Off => "this server does not relay outside rooms: join a room",
            _ => "relaying outside rooms needs an access token: open the socket with /ws?token=",
        };
        fx.send(
            conn,
            ServerMessage::error(ErrorCode::PermissionDenied, message, Some(request)),
        );
        false
    }
}
