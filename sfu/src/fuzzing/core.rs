//! Fuzz entry points for the Sans-I/O core: the codec payload readers,
//! one forwarder's decisions over a stream of arbitrary packets, the SDP
//! helpers and the offer check, and transport-cc feedback through the
//! bandwidth estimator of a leg.

use std::time::Duration;

use bytes::Bytes;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtp::packet::Packet;
use rtc::shared::marshal::{Marshal, Unmarshal};

use super::epoch;
use crate::core::bwe::feedback::TransportFeedback;
use crate::core::bwe::history::PacketKind;
use crate::core::bwe::leg::{LegBwe, LegConfig};
use crate::core::codec::dd::DdReader;
use crate::core::codec::vp8::Vp8Desc;
use crate::core::codec::vp9::Vp9Desc;
use crate::core::codec::{frame_info, h264, CodecKind, Desc};
use crate::core::extmap::{self, ExtMap};
use crate::core::forwarder::{Decision, Forwarder, InPacket, PtMap};
use crate::core::layer::{Layer, Selector, Simulcast, Svc};
use crate::core::{offer_check, sdp};

/// A codec payload as a publisher sends it, through every reader: the
/// first byte picks the codec, the rest is the payload; for AV1 the input
/// is split at the first `0xff 0xff` into dependency descriptors (as a
/// stream sends them, structure first) and the payload. The rewriters run
/// on a copy, and a rewritten descriptor must read back as written.
pub fn codec(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            if let Some(d) = Vp8Desc::parse(rest) {
                let _ = d.keyframe_size(rest);
                let mut copy = rest.to_vec();
                let id = 0x1234 % d.picture_id_modulus().max(1);
                d.rewrite(&mut copy, id, 7);
                if let Some(back) = Vp8Desc::parse(&copy) {
                    if let Some((got, _)) = back.picture_id {
                        assert_eq!(got, id, "VP8 PictureID rewrite");
                    }
                }
            }
        }
        1 => {
            if let Some(d) = Vp9Desc::parse(rest) {
                let _ = d.keyframe();
                let mut copy = rest.to_vec();
                let id = 0x0123 % d.picture_id_modulus().max(1);
                d.rewrite_picture_id(&mut copy, id);
                if let Some(back) = Vp9Desc::parse(&copy) {
                    if let Some((got, _)) = back.picture_id {
                        assert_eq!(got, id, "VP9 PictureID rewrite");
                    }
                }
            }
        }
        2 => {
            let _ = h264::keyframe(rest);
            let _ = frame_info(CodecKind::H264, rest, None);
        }
        _ => {
            let mut reader = DdReader::default();
            let mut parts = rest.split(|b| *b == 0xff);
            let payload = parts.next().unwrap_or(&[]);
            for ext in parts {
                if let Some(f) = reader.read(ext) {
                    for codec in [CodecKind::Av1, CodecKind::Vp9, CodecKind::Vp8] {
                        let _ = frame_info(codec, payload, Some(&f));
                    }
                }
            }
            let _ = frame_info(CodecKind::Av1, payload, None);
        }
    }
}

/// One subscriber's forwarder fed arbitrary packets: the input is a list
/// of records, each a control byte (which stream, retransmission, a layer
/// target change, a NACK lookup, time) and an RTP packet, separated by
/// `0xff 0xfe`. Checks what every forwarded packet must be: the leg's
/// SSRC, a payload type the subscriber negotiated, and a header that still
/// marshals after the extension plan.
pub fn forwarder(data: &[u8]) {
    let Some((&setup, rest)) = data.split_first() else {
        return;
    };
    let codec = [
        CodecKind::Vp8,
        CodecKind::Vp9,
        CodecKind::H264,
        CodecKind::Av1,
    ][setup as usize % 4];
    let selector = match (setup >> 2) % 4 {
        0 => Selector::All { paused: false },
        1 => Selector::Simulcast(Simulcast::new(Some(Layer::new(2, u8::MAX)))),
        2 => Selector::Stream {
            index: (setup >> 4) % 3,
            paused: false,
        },
        _ => Selector::Svc(Svc::new(Some(Layer::TOP))),
    };
    let selector_is_stream = matches!(selector, Selector::Stream { .. });
    const LEG_SSRC: u32 = 0x5eed;
    let mut fwd = Forwarder::new(LEG_SSRC, 90_000, selector, 64);
    let pts = PtMap::new(&[(96, 100), (97, 101), (111, 111)]);
    let list = |v: &[(u8, &str)]| -> Vec<(u8, String)> {
        v.iter().map(|(i, u)| (*i, u.to_string())).collect()
    };
    let src = list(&[
        (1, extmap::AUDIO_LEVEL),
        (3, extmap::TRANSPORT_CC),
        (4, extmap::MID),
        (11, extmap::DEPENDENCY_DESCRIPTOR),
        (14, extmap::ABS_CAPTURE_TIME),
    ]);
    let dst = list(&[
        (2, extmap::AUDIO_LEVEL),
        (5, extmap::MID),
        (7, extmap::ABS_CAPTURE_TIME),
        (12, extmap::DEPENDENCY_DESCRIPTOR),
        (13, extmap::RID),
    ]);
    let ext = ExtMap::new(&src, &dst, Some("1"));
    // A relay's stream names itself by rid.
    let ext = if selector_is_stream {
        ext.with_rid(&dst, "h")
    } else {
        ext
    };
    if setup & 0x80 == 0 {
        fwd.negotiated(pts, ext.clone());
    }
    let mut dd = DdReader::default();
    let mut now = epoch();
    for record in split_on(rest, &[0xff, 0xfe]) {
        let Some((&ctl, raw)) = record.split_first() else {
            continue;
        };
        now += Duration::from_millis((ctl & 0x0f) as u64);
        if ctl & 0xc0 == 0xc0 {
            // A layer target change, as adaptation decides it.
            let target = (ctl & 0x10 != 0).then(|| Layer::new((ctl >> 4) & 3, ctl & 3));
            let _ = fwd.set_target(target);
            if ctl & 0x20 != 0 {
                fwd.negotiated(PtMap::new(&[(96, 100)]), ext.clone());
            }
            continue;
        }
        let mut buf = raw;
        let Ok(pkt) = Packet::unmarshal(&mut buf) else {
            continue;
        };
        let dd_frame = pkt
            .header
            .extensions
            .iter()
            .find(|e| e.id == 11)
            .and_then(|e| dd.read(&e.payload));
        let info = frame_info(codec, &pkt.payload, dd_frame.as_ref());
        let input = InPacket {
            ssrc: pkt.header.ssrc,
            seq: pkt.header.sequence_number,
            ts: pkt.header.timestamp,
            pt: pkt.header.payload_type,
            marker: pkt.header.marker,
            stream: (ctl >> 4) & 3,
            retransmission: ctl & 0x40 != 0,
            info: &info,
            payload: &pkt.payload,
        };
        match fwd.on_packet(&input, now) {
            Decision::Forward(out) => {
                assert_eq!(
                    out.ssrc, LEG_SSRC,
                    "a forwarded packet carries the leg's SSRC"
                );
                assert!(
                    [100, 101, 111].contains(&out.pt),
                    "a forwarded packet carries a negotiated payload type: {}",
                    out.pt
                );
                if matches!(info.desc, Desc::None) {
                    assert_eq!(
                        out.payload, pkt.payload,
                        "a payload with nothing to rewrite is the publisher's"
                    );
                }
                let mut header = pkt.header.clone();
                header.ssrc = out.ssrc;
                header.payload_type = out.pt;
                header.sequence_number = out.seq;
                header.timestamp = out.ts;
                fwd.ext.apply(&mut header, codec == CodecKind::Av1);
                let p = Packet {
                    header,
                    payload: out.payload,
                };
                let _ = p.marshal();
                // What a NACK for it finds.
                let _ = fwd.retransmit(out.seq);
            }
            Decision::Drop(_) => {}
        }
        let _ = fwd.retransmit(pkt.header.sequence_number);
    }
}

fn split_on<'a>(data: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(sep.len()).position(|w| w == sep) {
            Some(i) => {
                rest = Some(&r[i + sep.len()..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// Client SDP through the server's own SDP helpers: the media-section
/// reader, the answer rewriting that follows an offer's numbering, the
/// extension-id alignment, RTCP-candidate removal, and the offer check.
/// NUL splits the input into the client's SDP and the server's.
pub fn sdp_helpers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (theirs, ours) = text.split_once('\0').unwrap_or((&text, &text));
    let sections = sdp::media_sections(theirs);
    for m in &sections {
        for c in &m.codecs {
            for d in &m.codecs {
                let _ = c.same_format(d);
            }
        }
    }
    let _ = sdp::media_sections(ours);
    let followed = sdp::follow_offer(ours, theirs);
    let _ = sdp::media_sections(&followed);
    let _ = sdp::align_extmaps(ours, theirs);
    let _ = sdp::drop_rtcp_candidates(theirs);
    for max in [0, 1, 16, usize::MAX] {
        let _ = offer_check::check_offer(theirs, max);
    }
}

/// Transport-cc feedback from a subscriber, as the media library parses it,
/// converted to the estimator's form and fed to a leg that sent the
/// packets it reports; the leg's estimate must stay a number. The first
/// byte picks between the library's parser and raw feedback fields (so
/// impossible deltas reach the estimator too).
pub fn twcc(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fb = if mode & 1 == 0 {
        // rtc-rtcp 0.21.1 computes `4 * (length + 1)` in u16: a length
        // field of 0xFFFF overflows. Release builds (the server) wrap it to
        // a "too short" error; only builds with overflow checks, like this
        // fuzzer's, panic, so such reports are not the library's to see
        // here (regression input kept in fuzz/regressions/twcc).
        if rest.get(2..4) == Some(&[0xff, 0xff][..]) {
            return;
        }
        let mut raw = Bytes::copy_from_slice(rest);
        match TransportLayerCc::unmarshal(&mut raw) {
            Ok(tcc) => crate::shard::bwe::to_feedback(&tcc),
            Err(_) => return,
        }
    } else {
        raw_feedback(rest)
    };
    let mut now = epoch();
    let mut leg = LegBwe::new(LegConfig::default(), fb.base_seq.wrapping_sub(8));
    let count = (fb.packets.len() + 16).min(2048);
    for i in 0..count {
        let kind = if i % 7 == 0 {
            PacketKind::Padding
        } else {
            PacketKind::Video
        };
        leg.on_packet_sent(200 + i % 1000, kind, None, now);
        now += Duration::from_micros(500);
    }
    now += Duration::from_millis(30);
    let _ = leg.on_feedback(&fb, now);
    let again = TransportFeedback {
        feedback_count: fb.feedback_count.wrapping_add(1),
        ..fb.clone()
    };
    let _ = leg.on_feedback(&again, now + Duration::from_millis(5));
    let e = leg.estimate(now + Duration::from_millis(10));
    let _ = leg.is_congested(now + Duration::from_millis(10));
    let _ = leg.poll_probe(now + Duration::from_millis(10));
    let _ = format!("{e:?}");
}

/// Feedback straight from bytes: base, reference time, count, then one
/// signed 16-bit delta (in 250 us units; `0x8000` is a loss) per packet.
fn raw_feedback(b: &[u8]) -> TransportFeedback {
    let g = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut fb = TransportFeedback::new(
        u16::from_be_bytes([g(0), g(1)]),
        u32::from_be_bytes([0, g(2), g(3), g(4)]),
        g(5),
    );
    for d in b.get(6..).unwrap_or(&[]).chunks_exact(2) {
        let v = i16::from_be_bytes([d[0], d[1]]);
        let more = if v == i16::MIN {
            fb.push_lost()
        } else {
            fb.push_received(v as i64 * 250)
        };
        if !more {
            break;
        }
    }
    fb
}
