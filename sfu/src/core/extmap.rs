//! Header-extension translation between two legs.
//!
//! Each peer connection negotiates its own extension ids, so a forwarded
//! packet's extensions are re-numbered by URI. The publisher's transport-cc
//! number is dropped: every leg has its own transport-wide sequence.
//! Extensions the subscriber did not negotiate are dropped too (the library
//! rejects a packet carrying an id it does not know).

use bytes::Bytes;
use rtc::rtp::header::{Extension, Header};

pub const TRANSPORT_CC: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
pub const AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
pub const ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
pub const ABS_CAPTURE_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";
pub const MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
pub const VIDEO_ORIENTATION: &str = "urn:3gpp:video-orientation";
pub const PLAYOUT_DELAY: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";
pub const VIDEO_CONTENT_TYPE: &str =
    "http://www.webrtc.org/experiments/rtp-hdrext/video-content-type";
pub const VIDEO_TIMING: &str = "http://www.webrtc.org/experiments/rtp-hdrext/video-timing";
pub const COLOR_SPACE: &str = "http://www.webrtc.org/experiments/rtp-hdrext/color-space";
pub const DEPENDENCY_DESCRIPTOR: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";
pub const RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
pub const REPAIRED_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

/// Extensions worth carrying from publisher to subscriber.
pub const FORWARDED: &[&str] = &[
    AUDIO_LEVEL,
    ABS_SEND_TIME,
    ABS_CAPTURE_TIME,
    VIDEO_ORIENTATION,
    PLAYOUT_DELAY,
];

/// Source id to destination id; 0 drops the extension.
#[derive(Clone, Debug)]
pub struct ExtMap {
    map: [u8; 256],
    /// The dependency descriptor's source and destination ids: carried only
    /// for AV1, whose receivers need it; for VP9 it would make receivers
    /// track decode targets the forwarder changes, so they use the VP9
    /// payload descriptor instead.
    dd: Option<(u8, u8)>,
    /// The destination's id for `mid`, which is per-leg state rather than
    /// something carried from the source.
    mid: Option<(u8, Bytes)>,
    /// The destination's id for `rtp-stream-id` and the rid it carries:
    /// set only where one connection carries several streams of a track
    /// (a relay), whose receiver tells them apart by it.
    rid: Option<(u8, Bytes)>,
}

impl ExtMap {
    /// `src` and `dst` are the negotiated `(id, uri)` pairs of the two legs;
    /// `dst_mid` is the subscriber transceiver's mid.
    pub fn new(src: &[(u8, String)], dst: &[(u8, String)], dst_mid: Option<&str>) -> Self {
        let mut map = [0u8; 256];
        for (sid, uri) in src {
            if uri == TRANSPORT_CC || uri == MID || !FORWARDED.contains(&uri.as_str()) {
                continue;
            }
            if let Some((did, _)) = dst.iter().find(|(_, u)| u == uri) {
                map[*sid as usize] = *did;
            }
        }
        let mid = match (dst.iter().find(|(_, u)| u == MID), dst_mid) {
            (Some((id, _)), Some(m)) => Some((*id, Bytes::copy_from_slice(m.as_bytes()))),
            _ => None,
        };
        let id_of = |l: &[(u8, String)]| {
            l.iter()
                .find(|(_, u)| u == DEPENDENCY_DESCRIPTOR)
                .map(|(i, _)| *i)
        };
        let dd = id_of(src).zip(id_of(dst));
        ExtMap {
            map,
            mid,
            dd,
            rid: None,
        }
    }

    /// Also names the stream: every packet carries `rid` under the
    /// destination's `rtp-stream-id` id (none negotiated: nothing).
    pub fn with_rid(mut self, dst: &[(u8, String)], rid: &str) -> Self {
        self.rid = dst
            .iter()
            .find(|(_, u)| u == RID)
            .map(|(id, _)| (*id, Bytes::copy_from_slice(rid.as_bytes())));
        self
    }

    /// Rebuilds the header's extensions for the destination leg. The list
    /// is rebuilt rather than edited in place, so the padding the library
    /// computes stays right.
    pub fn apply(&self, header: &mut Header, with_dd: bool) {
        let old = std::mem::take(&mut header.extensions);
        let profile = header.extension_profile;
        self.write(&old, profile, header, with_dd);
    }

    /// Writes the destination leg's extensions into `header` (which has
    /// none yet) from the source's list, read in place: a forwarded
    /// packet's header is built once, not cloned and then rebuilt.
    pub fn write(&self, src: &[Extension], profile: u16, header: &mut Header, with_dd: bool) {
        header.extension = false;
        header.extensions_padding = 0;
        header.extension_profile = 0;
        header.extensions.clear();
        for ext in src {
            let mut id = self.map[ext.id as usize];
            if let Some((from, to)) = self.dd.filter(|_| with_dd) {
                if ext.id == from {
                    id = to;
                }
            }
            if id != 0 {
                set(header, profile, id, ext.payload.clone());
            }
        }
        for (id, payload) in self.mid.iter().chain(self.rid.iter()) {
            set(header, profile, *id, payload.clone());
        }
    }
}

/// Every 16-bit number, big-endian, in order: an element carrying one
/// (the transport-wide sequence number every sent packet is stamped with)
/// is a static slice of this table, not an allocation per packet.
static BE16: [u8; 2 * 65_536] = {
    let mut t = [0u8; 2 * 65_536];
    let mut i = 0;
    while i < 65_536 {
        t[2 * i] = (i >> 8) as u8;
        t[2 * i + 1] = i as u8;
        i += 1;
    }
    t
};

/// `n` as a two-byte big-endian element payload, without allocating.
pub fn be16(n: u16) -> Bytes {
    let at = 2 * n as usize;
    Bytes::from_static(&BE16[at..at + 2])
}

const ONE_BYTE: u16 = 0xBEDE;
const TWO_BYTE: u16 = 0x1000;

/// Adds one element, in a form the library can write. The first element
/// picks the header's form: the source's, when the element fits it.
///
/// RFC 8285's one-byte form carries ids 1 to 14 and 1 to 16 bytes (its
/// length field is the length minus one); the library checks the id and
/// the upper bound when it adds an element to a one-byte header, but not
/// an empty element, nor anything when the element is the first, and
/// writing such a header underflows (rtc-rtp 0.21.1 header.rs,
/// `payload.len() as u8 - 1`: a panic with overflow checks, a corrupt id
/// without). A publisher's two-byte header may carry empty elements and
/// ids above 14, so the form is checked here. An element the form cannot
/// carry is lost; the packet is not.
fn set(header: &mut Header, profile: u16, id: u8, payload: Bytes) {
    let fits_one_byte = (1..=14).contains(&id) && (1..=16).contains(&payload.len());
    if !header.extension {
        let form = if fits_one_byte && profile != TWO_BYTE {
            ONE_BYTE
        } else if id >= 1 && payload.len() <= 255 {
            TWO_BYTE
        } else {
            return;
        };
        header.extension = true;
        header.extension_profile = form;
    } else if header.extension_profile == ONE_BYTE && !fits_one_byte {
        return;
    }
    let _ = header.set_extension(id, payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::packet::Packet;
    use rtc::shared::marshal::{Marshal, Unmarshal};

    fn list(v: &[(u8, &str)]) -> Vec<(u8, String)> {
        v.iter().map(|(i, u)| (*i, u.to_string())).collect()
    }

    #[test]
    fn extensions_are_renumbered_by_uri_and_transport_cc_is_dropped() {
        let src = list(&[(1, AUDIO_LEVEL), (3, TRANSPORT_CC), (5, ABS_CAPTURE_TIME)]);
        let dst = list(&[
            (2, ABS_CAPTURE_TIME),
            (4, MID),
            (7, AUDIO_LEVEL),
            (9, TRANSPORT_CC),
        ]);
        let map = ExtMap::new(&src, &dst, Some("3"));
        let mut p = Packet::default();
        p.header.version = 2;
        p.header
            .set_extension(1, Bytes::from_static(&[0x85]))
            .unwrap();
        p.header
            .set_extension(3, Bytes::from_static(&[0, 9]))
            .unwrap();
        p.header
            .set_extension(5, Bytes::from_static(&[1, 2, 3, 4, 5, 6, 7, 8]))
            .unwrap();
        p.payload = Bytes::from_static(b"media");
        map.apply(&mut p.header, false);
        let raw = p.marshal().unwrap();
        let back = Packet::unmarshal(&mut &raw[..]).unwrap();
        assert_eq!(back.header.get_extension(7).as_deref(), Some(&[0x85][..]));
        assert_eq!(
            back.header.get_extension(2).as_deref(),
            Some(&[1, 2, 3, 4, 5, 6, 7, 8][..])
        );
        assert_eq!(back.header.get_extension(4).as_deref(), Some(&b"3"[..]));
        assert_eq!(back.header.get_extension(9), None);
        assert_eq!(back.header.get_extension(3), None);
        assert_eq!(back.payload.as_ref(), b"media");
    }

    /// Found by fuzzing: an empty element from a two-byte header, or one
    /// with an id a one-byte header cannot carry, never reaches the
    /// library's one-byte writer.
    #[test]
    fn elements_the_one_byte_form_cannot_carry_never_reach_it() {
        let dst = list(&[(1, AUDIO_LEVEL), (2, ABS_CAPTURE_TIME)]);
        let src = list(&[(5, AUDIO_LEVEL), (20, ABS_CAPTURE_TIME)]);
        let map = ExtMap::new(&src, &dst, None);
        for (profile, first) in [(TWO_BYTE, 5u8), (TWO_BYTE, 20), (ONE_BYTE, 5), (0xABCD, 5)] {
            let mut p = Packet::default();
            p.header.version = 2;
            p.header.extension = true;
            p.header.extension_profile = profile;
            p.header.extensions = vec![
                rtc::rtp::header::Extension {
                    id: first,
                    payload: Bytes::new(),
                },
                rtc::rtp::header::Extension {
                    id: 20,
                    payload: Bytes::from_static(&[1, 2, 3]),
                },
            ];
            map.apply(&mut p.header, false);
            let raw = p.marshal().expect("a writable header");
            let back = Packet::unmarshal(&mut &raw[..]).unwrap();
            // Every element goes in a form that can carry it.
            assert_eq!(
                back.header.get_extension(2).as_deref(),
                Some(&[1, 2, 3][..]),
                "profile {profile:#x}"
            );
        }
        // Directly: an empty first element makes a two-byte header.
        let mut h = Header::default();
        set(&mut h, 0, 3, Bytes::new());
        assert_eq!(h.extension_profile, TWO_BYTE);
        let mut h = Header::default();
        set(&mut h, ONE_BYTE, 30, Bytes::from_static(&[1]));
        assert_eq!(h.extension_profile, TWO_BYTE);
        set(&mut h, ONE_BYTE, 0, Bytes::from_static(&[1]));
        assert_eq!(h.extensions.len(), 1);
    }

    #[test]
    fn a_stream_of_a_relay_carries_its_rid_beside_the_mid() {
        let src = list(&[(1, AUDIO_LEVEL), (10, RID)]);
        let dst = list(&[(4, MID), (6, RID)]);
        let map = ExtMap::new(&src, &dst, Some("2")).with_rid(&dst, "h");
        let mut p = Packet::default();
        p.header.version = 2;
        // The publisher's own rid (it stops sending it once acknowledged)
        // is not what names the stream on the relay.
        p.header
            .set_extension(10, Bytes::from_static(b"f"))
            .unwrap();
        map.apply(&mut p.header, false);
        let raw = p.marshal().unwrap();
        let back = Packet::unmarshal(&mut &raw[..]).unwrap();
        assert_eq!(back.header.get_extension(4).as_deref(), Some(&b"2"[..]));
        assert_eq!(back.header.get_extension(6).as_deref(), Some(&b"h"[..]));
        assert_eq!(back.header.extensions.len(), 2);
        // A destination that did not negotiate rids gets none.
        let plain = list(&[(4, MID)]);
        let map = ExtMap::new(&src, &plain, Some("2")).with_rid(&plain, "h");
        let mut h = Header::default();
        map.apply(&mut h, false);
        assert_eq!(h.extensions.len(), 1);
    }

    #[test]
    fn be16_is_the_number_big_endian() {
        for n in [0u16, 1, 255, 256, 0x1234, 65_534, 65_535] {
            assert_eq!(be16(n).as_ref(), &n.to_be_bytes()[..]);
        }
    }

    #[test]
    fn no_common_extension_leaves_a_plain_header() {
        let map = ExtMap::new(&list(&[(3, TRANSPORT_CC)]), &list(&[]), None);
        let mut p = Packet::default();
        p.header.version = 2;
        p.header
            .set_extension(3, Bytes::from_static(&[0, 9]))
            .unwrap();
        map.apply(&mut p.header, false);
        assert!(!p.header.extension);
        let raw = p.marshal().unwrap();
        assert_eq!(raw.len(), 12);
    }
}
