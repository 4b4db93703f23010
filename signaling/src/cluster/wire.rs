//! What the nodes write to Redis and to each other, as JSON.
//!
//! The Lua scripts build room events by concatenation (so a member record
//! passes through byte for byte), with these exact field names.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::{NodeId, ParticipantId};
use crate::protocol::{MediaState, ParticipantInfo};

/// A member as the room directory in Redis holds it: what the others see,
/// and the identity its token gave it (kept for a node that takes the
/// place over). The node serving it is kept beside, not in, the record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberRecord {
    #[serde(flatten)]
    pub info: ParticipantInfo,
    pub identity: String,
}

/// An event on a room's channel. `ver` is the room's version after the
/// change, `node` the node that made it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum RoomEvent {
    Joined {
        room: String,
        ver: u64,
        node: NodeId,
        member: MemberRecord,
    },
    Left {
        room: String,
        ver: u64,
        node: NodeId,
        id: ParticipantId,
    },
    Media {
        room: String,
        ver: u64,
        node: NodeId,
        id: ParticipantId,
        media: MediaState,
    },
    /// The member is now served by `node`.
    Moved {
        room: String,
        ver: u64,
        node: NodeId,
        id: ParticipantId,
    },
}

impl RoomEvent {
    pub fn ver(&self) -> u64 {
        match self {
            RoomEvent::Joined { ver, .. }
            | RoomEvent::Left { ver, .. }
            | RoomEvent::Media { ver, .. }
            | RoomEvent::Moved { ver, .. } => *ver,
        }
    }

    pub fn node(&self) -> &NodeId {
        match self {
            RoomEvent::Joined { node, .. }
            | RoomEvent::Left { node, .. }
            | RoomEvent::Media { node, .. }
            | RoomEvent::Moved { node, .. } => node,
        }
    }
}

/// A message on a node's own channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum NodeMessage {
    /// A client's offer, answer or candidate for a member served there,
    /// whole, `from` included.
    Relay {
        to: ParticipantId,
        message: Map<String, Value>,
    },
    /// An offer or answer for the receiving node's end of a room's media
    /// relay, from node `from`. `mac`: HMAC-SHA1 of the rest under the
    /// cluster secret (see [`relay_mac`]): a relay's DTLS fingerprint comes
    /// only from a node that knows the secret.
    RelaySdp {
        room: String,
        from: NodeId,
        kind: crate::media::SdpKind,
        sdp: String,
        mac: String,
    },
    /// Which streams of one of the receiving node's simulcast tracks the
    /// subscribers of node `from` need (dynacast across nodes). `mac`: see
    /// [`streams_mac`].
    RelayStreams {
        room: String,
        from: NodeId,
        publisher: ParticipantId,
        track: String,
        active: Vec<bool>,
        mac: String,
    },
}

/// The MAC of a relay offer or answer: hex HMAC-SHA1 under `secret` of
/// room, sending node, receiving node, kind and SDP.
pub fn relay_mac(
    secret: &str,
    room: &str,
    from: &NodeId,
    to: &NodeId,
    kind: crate::media::SdpKind,
    sdp: &str,
) -> String {
    let kind = match kind {
        crate::media::SdpKind::Offer => "offer",
        crate::media::SdpKind::Answer => "answer",
    };
    mac(secret, &[room, from.as_str(), to.as_str(), kind], sdp)
}

/// The MAC of a relay's stream needs: hex HMAC-SHA1 under `secret` of
/// room, sending node, receiving node, publisher, track and the needs
/// (`1`/`0` per stream). A node other than the relay's far end cannot
/// pause a track's streams.
pub fn streams_mac(
    secret: &str,
    room: &str,
    from: &NodeId,
    to: &NodeId,
    publisher: &ParticipantId,
    track: &str,
    active: &[bool],
) -> String {
    let bits: String = active.iter().map(|a| if *a { '1' } else { '0' }).collect();
    let parts = [
        "streams",
        room,
        from.as_str(),
        to.as_str(),
        publisher.as_str(),
        track,
    ];
    mac(secret, &parts, &bits)
}

/// Hex HMAC-SHA1 under `secret` of `parts` (each ended by a 0 byte, so no
/// two lists of parts read the same) and `tail`.
fn mac(secret: &str, parts: &[&str], tail: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    for part in parts {
        m.update(part.as_bytes());
        m.update(&[0]);
    }
    m.update(tail.as_bytes());
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_as_the_scripts_write_them_parse() {
        let member = r#"{"id":"p1","name":"Ann","media":{"microphone":true,"camera":false,"screen":false},"permissions":{"publish":true,"subscribe":true},"identity":"ann"}"#;
        let joined =
            format!(r#"{{"t":"joined","room":"r","ver":3,"node":"n1","member":{member}}}"#);
        let e: RoomEvent = serde_json::from_str(&joined).unwrap();
        assert_eq!(e.ver(), 3);
        let RoomEvent::Joined { member, .. } = e else {
            panic!()
        };
        assert_eq!(member.info.name, "Ann");
        assert_eq!(member.identity, "ann");
        // Written flat, as the scripts and other nodes read it.
        let back = serde_json::to_value(&member).unwrap();
        assert_eq!(back["id"], "p1");
        assert_eq!(back["identity"], "ann");
        assert_eq!(back["media"]["microphone"], true);
        let left: RoomEvent =
            serde_json::from_str(r#"{"t":"left","room":"r","ver":4,"node":"n2","id":"p1"}"#)
                .unwrap();
        assert_eq!(left.node().as_str(), "n2");
        assert!(serde_json::from_str::<RoomEvent>(r#"{"t":"nope"}"#).is_err());
    }

    #[test]
    fn relay_macs_bind_every_field_to_the_secret() {
        use crate::media::SdpKind::{Answer, Offer};
        let (a, b) = (NodeId::new("a"), NodeId::new("b"));
        let m = relay_mac("s3cret", "r", &a, &b, Offer, "v=0");
        assert_eq!(m.len(), 40);
        assert_eq!(m, relay_mac("s3cret", "r", &a, &b, Offer, "v=0"));
        for other in [
            relay_mac("other", "r", &a, &b, Offer, "v=0"),
            relay_mac("s3cret", "r2", &a, &b, Offer, "v=0"),
            relay_mac("s3cret", "r", &b, &a, Offer, "v=0"),
            relay_mac("s3cret", "r", &a, &b, Answer, "v=0"),
            relay_mac("s3cret", "r", &a, &b, Offer, "v=1"),
        ] {
            assert_ne!(m, other);
        }
    }

    #[test]
    fn stream_macs_bind_every_field_to_the_secret() {
        let (a, b) = (NodeId::new("a"), NodeId::new("b"));
        let (p, q) = (
            ParticipantId::from_string("p"),
            ParticipantId::from_string("q"),
        );
        let on = [true, false, true];
        let m = streams_mac("s3cret", "r", &a, &b, &p, "cam", &on);
        assert_eq!(m.len(), 40);
        assert_eq!(m, streams_mac("s3cret", "r", &a, &b, &p, "cam", &on));
        for other in [
            streams_mac("other", "r", &a, &b, &p, "cam", &on),
            streams_mac("s3cret", "r2", &a, &b, &p, "cam", &on),
            streams_mac("s3cret", "r", &b, &a, &p, "cam", &on),
            streams_mac("s3cret", "r", &a, &b, &q, "cam", &on),
            streams_mac("s3cret", "r", &a, &b, &p, "cam2", &on),
            streams_mac("s3cret", "r", &a, &b, &p, "cam", &[true, true, true]),
            streams_mac("s3cret", "r", &a, &b, &p, "cam", &[true, false]),
            // Not a relay offer's MAC either.
            relay_mac("s3cret", "r", &a, &b, crate::media::SdpKind::Offer, "101"),
        ] {
            assert_ne!(m, other);
        }
    }
}
