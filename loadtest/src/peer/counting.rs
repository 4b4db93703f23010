//! Counting receivers (`--receive count`): RTP counted from the part of
//! the datagram SRTP leaves in the clear, without decrypting it.
//!
//! SRTP encrypts an RTP packet's payload and leaves its header readable:
//! the sequence number, the timestamp, the SSRC and the header extensions
//! (abs-capture-time among them). That is all the load test's delivery,
//! jitter and latency figures need. A full receiver also authenticates and
//! decrypts each packet and walks it through the library's receive
//! pipeline, which costs a bot about twice what the server spends to
//! forward the packet; with bots on the same machine as the server, they
//! reach a full core before the server does. Counting receivers cost a
//! fraction of that, so a run can take the server to saturation.
//!
//! What a counting receiver does not do: decode (no frames, no freezes, no
//! keyframe requests), check the authentication tag, NACK, or send
//! transport-wide feedback or receiver reports for the packets it counts
//! (the server's estimate of its downlink stays where it started, so the
//! server does not pace towards it). A stream's first packets still go
//! through the library, which names the track they belong to; STUN, DTLS,
//! RTCP and retransmissions on their own SSRC always do.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use rtc::interceptor::{
    AttributedPacket, Interceptor, Packet, RTPHeaderExtension, StreamInfo, TaggedPacket,
    TwccReceiverBuilder, TwccReceiverInterceptor,
};
use rtc::rtp::header::Header;
use rtc::sansio::Protocol;
use rtc::shared::marshal::Unmarshal;
use rtc::shared::TransportContext;
use sfu::core::extmap::TRANSPORT_CC;

/// The fields of an RTP header SRTP leaves in the clear, and where the
/// payload starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClearHeader {
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Bytes of header (fixed part, CSRCs, extensions).
    pub len: usize,
    /// Where the extension block's elements are, if there is one:
    /// (start, end, two-byte form).
    extensions: Option<(usize, usize, bool)>,
}

/// Reads the clear header of an RTP datagram; `None` if it is not RTP
/// version 2 or is cut short.
pub fn parse(d: &[u8]) -> Option<ClearHeader> {
    let b0 = *d.first()?;
    if b0 >> 6 != 2 {
        return None;
    }
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
    };
    let seq = u16::from_be_bytes(d.get(2..4)?.try_into().ok()?);
    let timestamp = word(4)?;
    let ssrc = word(8)?;
    let mut len = 12 + 4 * usize::from(b0 & 0x0f);
    let mut extensions = None;
    if b0 & 0x10 != 0 {
        let profile = u16::from_be_bytes(d.get(len..len + 2)?.try_into().ok()?);
        let words = usize::from(u16::from_be_bytes(
            d.get(len + 2..len + 4)?.try_into().ok()?,
        ));
        let start = len + 4;
        let end = start + 4 * words;
        if end > d.len() {
            return None;
        }
        extensions = match profile {
            0xBEDE => Some((start, end, false)),
            p if p & 0xFFF0 == 0x1000 => Some((start, end, true)),
            _ => None,
        };
        len = end;
    }
    if len > d.len() {
        return None;
    }
    Some(ClearHeader {
        seq,
        timestamp,
        ssrc,
        len,
        extensions,
    })
}

impl ClearHeader {
    /// The value of header extension `id` (RFC 8285, one- or two-byte
    /// form), if the packet carries it.
    pub fn extension<'a>(&self, d: &'a [u8], id: u8) -> Option<&'a [u8]> {
        let (mut at, end, two_byte) = self.extensions?;
        while at < end {
            let b = d[at];
            if b == 0 {
                // Padding between elements.
                at += 1;
                continue;
            }
            let (this, len, head) = if two_byte {
                (b, usize::from(*d.get(at + 1)?), 2)
            } else {
                if b >> 4 == 15 {
                    // The one-byte form's reserved id ends the block.
                    return None;
                }
                (b >> 4, usize::from(b & 0x0f) + 1, 1)
            };
            let value = at + head;
            if value + len > end {
                return None;
            }
            if this == id {
                return Some(&d[value..value + len]);
            }
            at = value + len;
        }
        None
    }
}

/// What a counting receiver counts itself: the SSRCs whose track the
/// library has named, and the transport-wide feedback for what it counted.
///
/// The feedback is made by the library's own transport-wide recorder, fed
/// the clear headers: the server then estimates a counting receiver's
/// downlink from feedback as it does a full one's (without it, the
/// server's estimate would halve every two seconds and its pacer would
/// throttle the bot).
pub struct Counting {
    tracks: HashMap<u32, String>,
    twcc: TwccReceiverInterceptor,
    /// Packets counted here in the measured window rather than read
    /// through the library.
    pub counted: u64,
}

impl Default for Counting {
    fn default() -> Self {
        Counting {
            tracks: HashMap::new(),
            twcc: TwccReceiverBuilder::new().build(),
            counted: 0,
        }
    }
}

impl Counting {
    /// The library handed over a packet of `ssrc` on track `track`, whose
    /// transport-wide extension (if negotiated) is `twcc_ext`: its
    /// stream's next packets are counted here.
    pub fn learn(&mut self, ssrc: u32, track: &str, twcc_ext: Option<u8>) {
        if self.tracks.contains_key(&ssrc) {
            return;
        }
        self.tracks.insert(ssrc, track.to_owned());
        if let Some(id) = twcc_ext {
            self.twcc.bind_remote_stream(&StreamInfo {
                ssrc,
                rtp_header_extensions: vec![RTPHeaderExtension {
                    uri: TRANSPORT_CC.to_owned(),
                    id: u16::from(id),
                }],
                ..Default::default()
            });
        }
    }

    /// The track a datagram of a learnt stream belongs to, with its clear
    /// header; `None`: the library's to read.
    pub fn claim(&self, d: &[u8]) -> Option<(&str, ClearHeader)> {
        if !crate::shaper::is_rtp(d) {
            return None;
        }
        let h = parse(d)?;
        Some((self.tracks.get(&h.ssrc)?.as_str(), h))
    }

    /// Notes a claimed datagram's arrival for the transport-wide
    /// feedback.
    pub fn arrived(&mut self, d: &[u8], h: &ClearHeader, now: Instant) {
        // The header alone: the recorder reads the SSRC and the extension.
        let Ok(header) = Header::unmarshal(&mut &d[..h.len]) else {
            return;
        };
        let packet = TaggedPacket {
            now,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(rtc::rtp::packet::Packet {
                header,
                payload: Bytes::new(),
            })),
        };
        if self.twcc.handle_read(packet).is_ok() {
            while self.twcc.poll_read().is_some() {}
        }
    }

    /// The transport-wide feedback due by `now`, to send to the server.
    pub fn feedback(&mut self, now: Instant) -> Vec<Box<dyn rtc::rtcp::Packet>> {
        let _ = self.twcc.handle_timeout(now);
        let mut out = Vec::new();
        while let Some(p) = self.twcc.poll_write() {
            if let Packet::Rtcp(pkts) = p.message.packet {
                out.extend(pkts);
            }
        }
        out
    }

    /// When the next feedback is due.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.twcc.poll_timeout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTP packet with one CSRC, one-byte extensions 3 (2 bytes) and
    /// 5 (8 bytes), and a 4-byte payload.
    fn packet() -> Vec<u8> {
        let mut p = vec![0x91, 111, 0x12, 0x34];
        p.extend_from_slice(&0x0102_0304u32.to_be_bytes());
        p.extend_from_slice(&0xCAFE_F00Du32.to_be_bytes());
        p.extend_from_slice(&7u32.to_be_bytes()); // CSRC
        p.extend_from_slice(&[0xBE, 0xDE, 0, 4]); // 4 words of extensions
        p.extend_from_slice(&[0x31, 0xAA, 0xBB]);
        p.extend_from_slice(&[0x57, 1, 2, 3, 4, 5, 6, 7, 8]);
        p.extend_from_slice(&[0, 0, 0, 0]); // padding to the word
        p.extend_from_slice(&[9, 9, 9, 9]); // payload
        p
    }

    #[test]
    fn reads_the_clear_fields_and_extensions() {
        let p = packet();
        let h = parse(&p).unwrap();
        assert_eq!(
            (h.seq, h.timestamp, h.ssrc),
            (0x1234, 0x0102_0304, 0xCAFE_F00D)
        );
        assert_eq!(h.len, p.len() - 4);
        assert_eq!(h.extension(&p, 3), Some(&[0xAA, 0xBB][..]));
        assert_eq!(h.extension(&p, 5), Some(&[1, 2, 3, 4, 5, 6, 7, 8][..]));
        assert_eq!(h.extension(&p, 4), None);
    }

    #[test]
    fn two_byte_extensions() {
        let mut p = vec![0x90, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        p.extend_from_slice(&[0x10, 0x00, 0, 2]);
        p.extend_from_slice(&[20, 3, 7, 8, 9, 0, 0, 0]);
        let h = parse(&p).unwrap();
        assert_eq!(h.extension(&p, 20), Some(&[7, 8, 9][..]));
    }

    #[test]
    fn cut_or_foreign_datagrams_are_refused_without_panicking() {
        let p = packet();
        for n in 0..p.len() - 4 {
            assert_eq!(parse(&p[..n]), None, "cut at {n}");
        }
        // An extension length running past its block.
        let mut bad = p.clone();
        bad[20] = 0x5F;
        let h = parse(&bad).unwrap();
        assert_eq!(h.extension(&bad, 5), None);
        assert_eq!(parse(&[0x40; 40]), None, "not version 2");
    }

    #[test]
    fn counted_packets_are_answered_with_transport_wide_feedback() {
        use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
        // Extension 4 carries the transport-wide number (2 bytes).
        let packet = |seq: u16| {
            let mut p = vec![0x90, 111];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]);
            p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x41]);
            p.extend_from_slice(&(1000 + seq).to_be_bytes());
            p.extend_from_slice(&[0, 1, 2, 3, 4]);
            p
        };
        let t0 = Instant::now();
        let mut c = Counting::default();
        c.learn(9, "t", Some(4));
        for seq in 0..10u16 {
            let d = packet(seq);
            let (_, h) = c.claim(&d).unwrap();
            c.arrived(
                &d,
                &h,
                t0 + std::time::Duration::from_millis(u64::from(seq)),
            );
        }
        let due = c.poll_timeout().expect("feedback is due");
        assert!(c.feedback(t0).is_empty(), "nothing before it is due");
        let fb = c.feedback(due);
        let tcc = fb
            .iter()
            .find_map(|p| p.as_any().downcast_ref::<TransportLayerCc>())
            .expect("transport-wide feedback");
        assert_eq!(
            (tcc.base_sequence_number, tcc.packet_status_count),
            (1000, 10)
        );
    }

    #[test]
    fn counts_only_streams_the_library_named() {
        let p = packet();
        let mut c = Counting::default();
        assert!(c.claim(&p).is_none());
        c.learn(0xCAFE_F00D, "track-a", None);
        let (track, h) = c.claim(&p).unwrap();
        assert_eq!((track, h.seq), ("track-a", 0x1234));
        // RTCP (payload type 200 to 204 with the marker bit) stays with the library.
        let mut rtcp = p.clone();
        rtcp[1] = 200;
        assert!(c.claim(&rtcp).is_none());
    }
}
