//! Entry points for the fuzz targets in `fuzz/` and for the tests that
//! replay their corpora and crash reproducers (`sfu/tests/fuzz_corpus.rs`).
//! Each takes untrusted bytes exactly as they arrive from the network and
//! must never panic; see docs/testing.md.

mod core;

pub use self::core::{codec, forwarder, sdp_helpers, twcc};

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::codec::vp9::Vp9Packet;
use rtc::rtp::packet::Packet;
use rtc::rtp::packetizer::Depacketizer;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::marshal::{Marshal, Unmarshal};
use signaling::ids::{ParticipantId, RoomName};
use signaling::media::MediaCommand;
use signaling::protocol::{IceCandidate, Permissions};

use crate::core::codec::dd::DdReader;
use crate::core::codec::{frame_info, CodecKind};
use crate::core::extmap::{self, ExtMap};
use crate::core::seq::SeqRewriter;
use crate::demux;
use crate::engine::{build_peer, PeerSetup};
use crate::shard::{Shard, ShardConfig, UfragChange};

/// One fixed instant per process: targets advance time from it, so a
/// reproducer runs the same way every time.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn room() -> RoomName {
    RoomName::parse("fuzz").expect("a valid room name")
}

fn server_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7882))
}

/// A datagram on the shared port, as the receive path looks at it before
/// any connection does: classification and the ufrag lookup, and the
/// library's STUN decoder.
pub fn datagram(data: &[u8]) {
    let kind = demux::classify(data);
    if let Some(u) = demux::stun_ufrag(data) {
        assert!(!u.is_empty() && !u.contains(':'));
        assert_eq!(kind, demux::Kind::Stun);
    }
    let mut m = rtc::stun::message::Message::new();
    let _ = m.unmarshal_binary(data);
    // The seeds' requests are signed with this password.
    let _ = demux::verify_binding_request(data, FUZZ_PWD);
}

/// The ICE password the `datagram` seeds sign their requests with.
pub const FUZZ_PWD: &[u8] = b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/// A datagram reaching a shard with one participant: from an unknown
/// address, then from one a STUN request bound (ICE, DTLS, SRTP and the
/// address table behind it). Builds a peer connection per run, so it runs
/// far slower than the pure targets.
pub fn shard_datagram(data: &[u8]) {
    let (mut shard, ufrag, pwd) = shard_with_one_participant();
    let now = epoch();
    // The input may name the connection: the placeholder stands for the
    // ufrag the shard chose.
    let data = replace(data, UFRAG_PLACEHOLDER, ufrag.as_bytes());
    let stranger = SocketAddr::from(([127, 0, 0, 2], 40_000));
    let bound = SocketAddr::from(([127, 0, 0, 3], 40_000));
    shard.handle_datagram(stranger, BytesMut::from(&data[..]), now);
    shard.handle_datagram(bound, binding_request(&ufrag, pwd.as_bytes()), now);
    shard.handle_datagram(bound, BytesMut::from(&data[..]), now);
    shard.handle_timeout(now + Duration::from_secs(1));
    let (out, events, changes) = shard.take_output();
    out.clear();
    events.clear();
    changes.clear();
}

/// SDP text from a client, through the parser every offer and answer meets
/// first, and the candidate parser on its candidate lines.
pub fn sdp(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("a=") {
            let _ = rtc::ice::candidate::unmarshal_candidate(c);
        }
    }
    let _ = rtc::ice::candidate::unmarshal_candidate(&text);
    if let Ok(offer) = RTCSessionDescription::offer(text.clone()) {
        if let Ok(parsed) = offer.unmarshal() {
            let _ = parsed.marshal();
        }
    }
    let _ = RTCSessionDescription::answer(text);
}

/// Stands for the server's ufrag in `datagram` inputs (16 bytes, as long
/// as the real ones).
pub const UFRAG_PLACEHOLDER: &[u8] = b"FUZZUFRAG0000000";

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// A binding request with USERNAME `username`, then the attributes in
/// `rest` (type and value each), and no MESSAGE-INTEGRITY.
fn request(username: &str, rest: &[(u16, &[u8])], tid: u8) -> Vec<u8> {
    let mut attrs = Vec::new();
    for (typ, val) in std::iter::once((0x0006, username.as_bytes())).chain(rest.iter().copied()) {
        attrs.extend(typ.to_be_bytes());
        attrs.extend((val.len() as u16).to_be_bytes());
        attrs.extend(val);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
    }
    let mut m = vec![0x00, 0x01];
    m.extend((attrs.len() as u16).to_be_bytes());
    m.extend([0x21, 0x12, 0xA4, 0x42]);
    m.extend([tid; 12]);
    m.extend(attrs);
    m
}

/// `m` with a MESSAGE-INTEGRITY made with `pwd` appended: the HMAC covers
/// the message with its length counting that attribute (RFC 5389 section
/// 15.4).
fn signed(mut m: Vec<u8>, pwd: &[u8]) -> BytesMut {
    use hmac::{Hmac, Mac};
    let len = (m.len() - 20 + 24) as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    if let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(pwd) {
        mac.update(&m);
        m.extend([0x00, 0x08, 0x00, 20]);
        m.extend(mac.finalize().into_bytes());
    }
    BytesMut::from(&m[..])
}

/// A binding request naming the server's `ufrag` in USERNAME, with no
/// MESSAGE-INTEGRITY: what an attacker who learnt a ufrag can send.
pub fn unsigned_binding_request(ufrag: &str) -> Vec<u8> {
    request(&format!("{ufrag}:fuzzclient"), &[], 7)
}

/// A binding request from a client, as an ICE agent sends it: USERNAME
/// naming the server's `ufrag`, MESSAGE-INTEGRITY made with the server's
/// password `pwd`.
pub fn binding_request(ufrag: &str, pwd: &[u8]) -> BytesMut {
    signed(unsigned_binding_request(ufrag), pwd)
}

/// A binding request as a controlling ICE agent sends it on the pair it
/// nominates: USERNAME `username` (the server's ufrag, a colon, the
/// client's), PRIORITY (a peer-reflexive candidate's, RFC 8445 section
/// 5.1.2.1), ICE-CONTROLLING and USE-CANDIDATE, and MESSAGE-INTEGRITY made
/// with the server's password `pwd`.
pub fn nominating_binding_request(username: &str, pwd: &[u8]) -> BytesMut {
    let priority = 1_853_824_767u32.to_be_bytes();
    let tie_breaker = 0x0102_0304_0506_0708u64.to_be_bytes();
    let rest: [(u16, &[u8]); 3] = [(0x0024, &priority), (0x802a, &tie_breaker), (0x0025, &[])];
    signed(request(username, &rest, 9), pwd)
}

/// A shard with one participant (publish and subscribe grants) that has
/// offered one audio section, and the ufrag and password the shard
/// answered with (the library picks them with the local description, so
/// the offer comes first).
fn shard_with_one_participant() -> (Shard, String, String) {
    let mut shard = Shard::new(shard_config(), StdRng::seed_from_u64(1));
    let participant = ParticipantId::from_string("fuzz");
    shard.handle_command(
        MediaCommand::Join {
            room: room(),
            participant: participant.clone(),
            permissions: Permissions {
                publish: true,
                subscribe: true,
            },
        },
        epoch(),
    );
    if let Some(sdp) = client_offer() {
        shard.handle_command(
            MediaCommand::Offer {
                room: room(),
                participant,
                sdp,
            },
            epoch(),
        );
    }
    let (_, _, changes) = shard.take_output();
    let (ufrag, pwd) = changes
        .drain(..)
        .find_map(|c| match c {
            UfragChange::Added { ufrag, pwd } => Some((ufrag, pwd)),
            UfragChange::Removed(_) => None,
        })
        .unwrap_or_default();
    (shard, ufrag, pwd)
}

/// Packets a publisher or subscriber sends once SRTP is stripped: RTP with
/// header extensions and codec payload descriptors, and RTCP compounds
/// (NACK lists, transport-cc feedback). Runs them through what the forward
/// path does to them: extension translation, sequence rewriting, marshal.
pub fn rtp_rtcp(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        rtp(rest);
    } else {
        rtcp(rest);
    }
}

fn rtp(data: &[u8]) {
    let mut buf = data;
    let Ok(mut pkt) = Packet::unmarshal(&mut buf) else {
        return;
    };
    // Both depacketizers read the codec's payload descriptor.
    let _ = Vp8Packet::default().depacketize(&pkt.payload);
    let _ = Vp9Packet::default().depacketize(&pkt.payload);
    let _ = Vp8Packet::default().is_partition_head(&pkt.payload);
    // The publisher's ids as a browser numbers them, forwarded to a leg
    // with its own numbering.
    let src: Vec<(u8, String)> = [
        (1, extmap::AUDIO_LEVEL),
        (2, extmap::ABS_SEND_TIME),
        (3, extmap::TRANSPORT_CC),
        (4, extmap::MID),
        (13, extmap::VIDEO_ORIENTATION),
        (14, extmap::ABS_CAPTURE_TIME),
        (15, extmap::PLAYOUT_DELAY),
    ]
    .into_iter()
    .map(|(i, u)| (i, u.to_owned()))
    .collect();
    let dst: Vec<(u8, String)> = src.iter().map(|(i, u)| (15 - *i % 15, u.clone())).collect();
    // The forwarder's own payload and descriptor readers, every codec.
    for codec in [
        CodecKind::Vp8,
        CodecKind::Vp9,
        CodecKind::H264,
        CodecKind::Av1,
    ] {
        let _ = frame_info(codec, &pkt.payload, None);
    }
    let mut dd = DdReader::default();
    for e in pkt.header.extensions.iter() {
        if let Some(f) = dd.read(&e.payload) {
            let _ = frame_info(CodecKind::Av1, &pkt.payload, Some(&f));
        }
    }
    ExtMap::new(&src, &dst, Some("7")).apply(&mut pkt.header, true);
    let mut seq = SeqRewriter::new(90_000);
    let now = epoch();
    let h = &pkt.header;
    let _ = seq.rewrite(h.ssrc, h.sequence_number, h.timestamp, now);
    let _ = seq.rewrite(
        h.ssrc,
        h.sequence_number.wrapping_add(1),
        h.timestamp,
        now + Duration::from_millis(1),
    );
    let _ = seq.rewrite(
        h.ssrc ^ 1,
        h.sequence_number.wrapping_sub(5000),
        h.timestamp,
        now + Duration::from_millis(2),
    );
    // What the forwarder sends must still marshal.
    let _ = pkt.marshal();
}

fn rtcp(data: &[u8]) {
    let mut buf = Bytes::copy_from_slice(data);
    let Ok(pkts) = rtc::rtcp::packet::unmarshal(&mut buf) else {
        return;
    };
    for p in &pkts {
        if let Some(nack) = p.as_any().downcast_ref::<TransportLayerNack>() {
            // As `answer_nack` walks it: 17 sequence numbers per pair at most.
            for pair in &nack.nacks {
                assert!(pair.packet_list().len() <= 17);
            }
        }
        if let Some(cc) = p.as_any().downcast_ref::<TransportLayerCc>() {
            let _ = cc.packet_status_count;
        }
        let _ = p.marshal();
    }
    // The transport-cc parser on its own (it is reached inside compounds
    // only after a valid header of another packet).
    let mut raw = Bytes::copy_from_slice(data);
    let _ = TransportLayerCc::unmarshal(&mut raw);
    let _ = raw.remaining();
}

fn shard_config() -> Arc<ShardConfig> {
    Arc::new(ShardConfig {
        codecs: ["opus", "vp8", "h264", "vp9", "av1"]
            .map(str::to_owned)
            .to_vec(),
        advertise: vec![server_addr()],
        tcp: false,
        keyframe_min_interval: Duration::from_millis(500),
        nack_cache_packets: 64,
        bwe: Default::default(),
        own_srtp: true,
        own_srtp_in: true,
        own_srtcp_in: true,
        stale_repair_after: Some(std::time::Duration::from_millis(300)),
    })
}

/// Splits an input into commands: NUL separates them, the first byte of
/// each picks what it is and the rest is its text.
fn commands(data: &[u8]) -> impl Iterator<Item = (u8, String)> + '_ {
    data.split(|b| *b == 0)
        .filter_map(|c| c.split_first())
        .map(|(op, rest)| (*op, String::from_utf8_lossy(rest).into_owned()))
}

/// What a client sends about its connection: offers, answers and trickled
/// candidates. The first byte picks the side. Even: a shard with one
/// participant takes offers and candidates through `handle_command`, as
/// signaling hands them over. Odd: a server connection built as the shard
/// builds it offers a video and an audio track, and the input's answers
/// and candidates are applied to it.
pub fn client_sdp(data: &[u8]) {
    let Some((&side, rest)) = data.split_first() else {
        return;
    };
    if side & 1 == 0 {
        sdp_through_shard(rest);
    } else {
        sdp_answers(rest);
    }
}

fn sdp_through_shard(data: &[u8]) {
    let (mut shard, _, _) = shard_with_one_participant();
    let participant = ParticipantId::from_string("fuzz");
    let mut now = epoch();
    for (op, text) in commands(data) {
        let participant = participant.clone();
        let room = room();
        let cmd = match op % 4 {
            0 => MediaCommand::Offer {
                room,
                participant,
                sdp: text,
            },
            1 => MediaCommand::Answer {
                room,
                participant,
                sdp: text,
            },
            2 => MediaCommand::Candidate {
                room,
                participant,
                candidate: Some(IceCandidate {
                    candidate: text,
                    sdp_mid: Some("0".into()),
                    sdp_m_line_index: Some(0),
                    username_fragment: None,
                }),
            },
            _ => {
                now += Duration::from_millis(500);
                shard.handle_timeout(now);
                continue;
            }
        };
        shard.handle_command(cmd, now);
        let (out, events, changes) = shard.take_output();
        out.clear();
        events.clear();
        changes.clear();
    }
}

/// A client's first offer: one send-receive audio section.
fn client_offer() -> Option<String> {
    let setup = PeerSetup {
        codecs: shard_config().codecs.clone(),
        advertise: vec![SocketAddr::from(([127, 0, 0, 3], 40_000))],
        ufrag: "fuzzclient".into(),
        pwd: "fuzzClientPasswordFuzzClientPwd0".into(),
        unknown_ssrc: Default::default(),
        unusable_repairs: Default::default(),
        relay_full: false,
        srtp_ok: Default::default(),
        keys: None,
    };
    let (mut pc, _) = build_peer(&setup, epoch()).ok()?;
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendrecv,
        streams: vec![],
        send_encodings: vec![],
    };
    pc.add_transceiver_from_kind(RtpCodecKind::Audio, Some(init))
        .ok()?;
    let offer = pc.create_offer(None).ok()?;
    Some(offer.sdp)
}

fn sdp_answers(data: &[u8]) {
    let now = epoch();
    let setup = PeerSetup {
        codecs: shard_config().codecs.clone(),
        advertise: vec![server_addr()],
        ufrag: "fuzzServerUfrag0".into(),
        pwd: "fuzzServerPasswordFuzzServerPwd0".into(),
        unknown_ssrc: Default::default(),
        unusable_repairs: Default::default(),
        relay_full: false,
        srtp_ok: Default::default(),
        keys: None,
    };
    let Ok((mut pc, _)) = build_peer(&setup, now) else {
        return;
    };
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            streams: vec![],
            send_encodings: vec![],
        };
        let _ = pc.add_transceiver_from_kind(kind, Some(init));
    }
    let Ok(offer) = pc.create_offer(None) else {
        return;
    };
    if pc.set_local_description(now, offer).is_err() {
        return;
    }
    for (op, text) in commands(data) {
        if op & 1 == 0 {
            if let Ok(answer) = RTCSessionDescription::answer(text) {
                let _ = pc.set_remote_description(now, answer);
            }
        } else {
            let _ = pc.add_remote_candidate(RTCIceCandidateInit {
                candidate: text,
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
                ..Default::default()
            });
        }
        while pc.poll_write().is_some() {}
        while pc.poll_event().is_some() {}
    }
}
