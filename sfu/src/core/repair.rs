//! Retransmissions of rid-based simulcast layers (RFC 4588 RTX, named by
//! RFC 8852's repaired-rtp-stream-id).
//!
//! A browser that simulcasts with RTX negotiated sends each layer's
//! retransmissions on an SSRC of their own that no SDP line names: the
//! only tie to the layer they repair is the `repaired-rtp-stream-id`
//! (rrid) header extension, equal to that layer's `rid`. The media library
//! binds such flows only when an `a=ssrc-group:FID` declares them, so
//! without this step every retransmission of every simulcast layer would
//! be dropped, and a lost packet of a forwarded layer would never be
//! repaired.
//!
//! [`RepairMap`] learns which SSRC and payload type carry each rid from
//! the media itself, and turns an rrid-tagged RTX packet back into the
//! packet it repairs (original SSRC, payload type and sequence number from
//! the OSN field), before NACK generation and forwarding see it. The
//! forwarder then treats it as any late packet: a repair, never a layer
//! switch point.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use rtc::rtp::packet::Packet;

/// Extension URIs this module reads.
pub const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
pub const RRID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

/// At most this many layers are remembered per connection (a publisher
/// sends three or four per track; the cap bounds what a hostile client
/// can make us hold).
const MAX_LAYERS: usize = 64;

/// What [`RepairMap::unwrap`] did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Not an rrid-tagged retransmission: left as it was.
    NotRepair,
    /// Rewritten into the packet it repairs.
    Unwrapped,
    /// A retransmission flow's padding (bandwidth probing): nothing to
    /// repair, drop it.
    Padding,
    /// Names a rid no media has been seen on, or too short to carry the
    /// original sequence number: drop it.
    Unknown,
}

/// The rid layers of one connection and how to unwrap their repairs.
#[derive(Debug, Default)]
pub struct RepairMap {
    rid_id: Option<u8>,
    rrid_id: Option<u8>,
    /// rid → (media SSRC, media payload type).
    layers: HashMap<Bytes, (u32, u8)>,
    /// Media SSRCs already in `layers`, so the rid is read once per flow.
    known: HashSet<u32>,
}

impl RepairMap {
    /// Learns the negotiated extension ids (from the library's stream
    /// description, which lists them by URI).
    pub fn set_ids(&mut self, rid: Option<u8>, rrid: Option<u8>) {
        if rid.is_some() {
            self.rid_id = rid;
        }
        if rrid.is_some() {
            self.rrid_id = rrid;
        }
    }

    /// Notes which layer a media packet of a bound stream belongs to. Cheap
    /// after the first packet of each SSRC: one set lookup.
    pub fn learn(&mut self, pkt: &Packet) {
        let ssrc = pkt.header.ssrc;
        if self.known.contains(&ssrc) || self.layers.len() >= MAX_LAYERS {
            return;
        }
        let Some(id) = self.rid_id else { return };
        let Some(rid) = pkt.header.get_extension(id).filter(|r| !r.is_empty()) else {
            return;
        };
        // A layer that moved to a new SSRC (a restarted encoder) replaces
        // its old one.
        if let Some((old, _)) = self.layers.insert(rid, (ssrc, pkt.header.payload_type)) {
            self.known.remove(&old);
        }
        self.known.insert(ssrc);
    }

    /// Forgets a media SSRC the library unbound.
    pub fn forget(&mut self, ssrc: u32) {
        if self.known.remove(&ssrc) {
            self.layers.retain(|_, (s, _)| *s != ssrc);
        }
    }

    /// Turns an rrid-tagged RTX packet into the packet it repairs, in
    /// place. Only call it for packets on SSRCs the library has not bound
    /// (a bound stream's packets are media, or RTX the library unwraps).
    pub fn unwrap(&self, pkt: &mut Packet) -> Repair {
        let Some(id) = self.rrid_id else {
            return Repair::NotRepair;
        };
        let Some(rrid) = pkt.header.get_extension(id) else {
            return Repair::NotRepair;
        };
        let Some(&(ssrc, pt)) = self.layers.get(&rrid) else {
            return Repair::Unknown;
        };
        if pkt.payload.is_empty() {
            return Repair::Padding;
        }
        if pkt.payload.len() < 2 {
            return Repair::Unknown;
        }
        let osn = u16::from_be_bytes([pkt.payload[0], pkt.payload[1]]);
        pkt.payload = pkt.payload.slice(2..);
        pkt.header.ssrc = ssrc;
        pkt.header.payload_type = pt;
        pkt.header.sequence_number = osn;
        // The library stripped the padding from the payload; the repaired
        // packet had none of its own.
        pkt.header.padding = false;
        let _ = pkt.header.del_extension(id);
        Repair::Unwrapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::header::Header;

    const RID: u8 = 10;
    const RRID: u8 = 11;

    fn packet(
        ssrc: u32,
        pt: u8,
        seq: u16,
        ext: Option<(u8, &'static str)>,
        payload: &[u8],
    ) -> Packet {
        let mut header = Header {
            version: 2,
            ssrc,
            payload_type: pt,
            sequence_number: seq,
            ..Default::default()
        };
        if let Some((id, v)) = ext {
            header.extension = true;
            header.extension_profile = 0xBEDE;
            header
                .set_extension(id, Bytes::from_static(v.as_bytes()))
                .unwrap();
        }
        Packet {
            header,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    fn map() -> RepairMap {
        let mut m = RepairMap::default();
        m.set_ids(Some(RID), Some(RRID));
        m.learn(&packet(1111, 96, 10, Some((RID, "q")), b"media"));
        m.learn(&packet(3333, 96, 70, Some((RID, "f")), b"media"));
        m
    }

    #[test]
    fn an_rrid_retransmission_becomes_the_packet_it_repairs() {
        let m = map();
        let mut p = packet(9999, 97, 500, Some((RRID, "f")), &[0x01, 0x02, 0xaa, 0xbb]);
        assert_eq!(m.unwrap(&mut p), Repair::Unwrapped);
        assert_eq!(p.header.ssrc, 3333);
        assert_eq!(p.header.payload_type, 96);
        assert_eq!(p.header.sequence_number, 0x0102);
        assert_eq!(&p.payload[..], &[0xaa, 0xbb]);
        assert!(p.header.get_extension(RRID).is_none());
    }

    #[test]
    fn each_layer_is_repaired_from_its_own_rid() {
        let m = map();
        let mut p = packet(8888, 97, 1, Some((RRID, "q")), &[0, 9, 1]);
        assert_eq!(m.unwrap(&mut p), Repair::Unwrapped);
        assert_eq!((p.header.ssrc, p.header.sequence_number), (1111, 9));
    }

    #[test]
    fn padding_unknown_rids_and_short_packets_are_not_repairs() {
        let m = map();
        type Case = (Option<(u8, &'static str)>, &'static [u8], Repair);
        let cases: [Case; 5] = [
            (Some((RRID, "f")), b"", Repair::Padding),
            (Some((RRID, "h")), b"\x00\x01x", Repair::Unknown),
            (Some((RRID, "f")), b"\x00", Repair::Unknown),
            (Some((RID, "f")), b"\x00\x01x", Repair::NotRepair),
            (None, b"\x00\x01x", Repair::NotRepair),
        ];
        for (ext, payload, want) in cases {
            let mut p = packet(7777, 97, 3, ext, payload);
            assert_eq!(m.unwrap(&mut p), want, "{ext:?} {payload:?}");
            if want != Repair::Unwrapped {
                assert_eq!(p.header.ssrc, 7777, "left as it was");
            }
        }
    }

    #[test]
    fn a_layer_on_a_new_ssrc_replaces_the_old_and_forgetting_clears_it() {
        let mut m = map();
        m.learn(&packet(4444, 96, 1, Some((RID, "f")), b"x"));
        let mut p = packet(9999, 97, 5, Some((RRID, "f")), &[0, 5, 1]);
        assert_eq!(m.unwrap(&mut p), Repair::Unwrapped);
        assert_eq!(p.header.ssrc, 4444);
        m.forget(4444);
        let mut p = packet(9999, 97, 6, Some((RRID, "f")), &[0, 6, 1]);
        assert_eq!(m.unwrap(&mut p), Repair::Unknown);
    }

    #[test]
    fn the_number_of_layers_held_is_bounded() {
        let mut m = RepairMap::default();
        m.set_ids(Some(RID), Some(RRID));
        for i in 0..1000u32 {
            let rid: &'static str = Box::leak(format!("r{i}").into_boxed_str());
            m.learn(&packet(i + 1, 96, 1, Some((RID, rid)), b"x"));
        }
        assert_eq!(m.layers.len(), MAX_LAYERS);
        assert!(m.known.len() <= MAX_LAYERS);
    }
}
