//! Relay SDP that arrives before its relay exists.
//!
//! A node that comes to serve members of a room learns of the other nodes'
//! members through room events, and the other nodes' relay offers travel
//! on their own channel: an offer can overtake the event that makes this
//! node open the relay it belongs to. Such an offer is held here, the
//! latest per room and node, and handed to the media plane right after
//! the relay opens, instead of being lost (the other end does not offer
//! again by itself).

use std::collections::HashMap;

use super::Millis;
use crate::ids::{NodeId, RoomName};
use crate::media::SdpKind;

/// How long an early SDP waits for its relay.
const KEEP_MS: Millis = 30_000;
/// Rooms and nodes held at most: beyond it, early SDP is dropped (and
/// counted) until older ones are taken or expire.
const MAX_HELD: usize = 1024;

#[derive(Debug, Default)]
pub(super) struct EarlySdp {
    held: HashMap<(RoomName, NodeId), Held>,
    /// Early SDP dropped because `MAX_HELD` were held.
    pub dropped: u64,
}

#[derive(Debug)]
struct Held {
    kind: SdpKind,
    sdp: String,
    at: Millis,
}

impl EarlySdp {
    /// Holds `sdp` from `node` for `room`, replacing an older one from the
    /// same node; `false` when it was dropped because too many are held.
    pub fn hold(
        &mut self,
        room: RoomName,
        node: NodeId,
        kind: SdpKind,
        sdp: String,
        now: Millis,
    ) -> bool {
        self.held.retain(|_, h| now.saturating_sub(h.at) < KEEP_MS);
        let key = (room, node);
        if self.held.len() >= MAX_HELD && !self.held.contains_key(&key) {
            self.dropped += 1;
            return false;
        }
        self.held.insert(key, Held { kind, sdp, at: now });
        true
    }

    /// The SDP held from `node` for `room`, if any, no longer held.
    pub fn take(&mut self, room: &RoomName, node: &NodeId) -> Option<(SdpKind, String)> {
        self.held
            .remove(&(room.clone(), node.clone()))
            .map(|h| (h.kind, h.sdp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(s: &str) -> RoomName {
        RoomName::parse(s).unwrap()
    }

    fn node(s: &str) -> NodeId {
        NodeId::new(s)
    }

    #[test]
    fn the_latest_sdp_per_room_and_node_is_kept_until_taken() {
        let mut e = EarlySdp::default();
        assert!(e.hold(room("r"), node("n2"), SdpKind::Offer, "first".into(), 0));
        assert!(e.hold(room("r"), node("n2"), SdpKind::Offer, "second".into(), 10));
        assert!(e.hold(room("r"), node("n3"), SdpKind::Offer, "other".into(), 10));
        assert_eq!(
            e.take(&room("r"), &node("n2")),
            Some((SdpKind::Offer, "second".into()))
        );
        assert_eq!(e.take(&room("r"), &node("n2")), None);
        assert_eq!(e.held.len(), 1);
    }

    #[test]
    fn old_sdp_expires_and_the_store_is_bounded() {
        let mut e = EarlySdp::default();
        assert!(e.hold(room("r"), node("n2"), SdpKind::Offer, "old".into(), 0));
        for i in 0..MAX_HELD - 1 {
            assert!(e.hold(
                room(&format!("x{i}")),
                node("n9"),
                SdpKind::Offer,
                String::new(),
                1
            ));
        }
        assert!(!e.hold(room("full"), node("n9"), SdpKind::Offer, String::new(), 2));
        assert_eq!(e.dropped, 1);
        // Once the first expires, there is room again; it is gone.
        assert!(e.hold(
            room("later"),
            node("n9"),
            SdpKind::Offer,
            String::new(),
            KEEP_MS + 1
        ));
        assert_eq!(e.take(&room("r"), &node("n2")), None);
    }
}
