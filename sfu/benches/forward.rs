//! Server CPU per forwarded packet: one publisher to 1, 10 and 100
//! subscribers, through one shard, for a video track (VP8, 1,100-byte
//! payloads, with the NACK cache and layer logic) and an audio track (Opus,
//! 100-byte payloads).
//!
//! What is measured, per iteration: one SRTP datagram from the publisher
//! handed to `Shard::handle_datagram` (SRTP decrypt, the receive-side
//! interceptors: NACK generator, TWCC and receiver-report recording), the
//! forwarding decision and per-leg rewrite (SSRC, payload type, sequence
//! number, timestamp, header extensions, NACK cache copy) for each
//! subscriber, the send path per leg, and collecting the output datagrams.
//! Both SRTP paths are measured both ways: `own`, the shard's own SRTP
//! (`[media] own_srtp` and `own_srtp_in`, the defaults: the publisher's
//! packet decrypted in place and handed to the interceptors directly,
//! each forwarded packet marshalled once and encrypted in place), and
//! `library`, the library's receive pipeline and write path (interceptors
//! and SRTP). AES-128-GCM, as the clients negotiate. The time reported is the benchmark thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`), not wall time, so other load on the machine
//! does not inflate it. Not measured: the socket system calls (receive once, send per
//! subscriber) and thread wake-ups. Criterion's throughput line (elements/s,
//! one element per forwarded packet) is the inverse of the CPU time per
//! forwarded packet.
//!
//! A second group, `read_feedback`, measures one RTCP datagram from a
//! subscriber (a receiver report) read by the shard's own SRTCP path
//! (`[media] own_srtcp_in`) or by the library's receive pipeline.
//!
//! The peers are real `rtc` peer connections (ICE, DTLS, SRTP) wired to the
//! shard in memory, so the connections are the same as over UDP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;

use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use sfu::shard::{Shard, ShardConfig};
use signaling::ids::{ParticipantId, RoomName};
use signaling::media::{MediaCommand, MediaEvent};
use signaling::protocol::Permissions;

const SERVER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7882);

fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![RTCPFeedback {
            typ: "nack".into(),
            parameter: String::new(),
        }],
    }
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: Vec::new(),
    }
}

/// What the publisher sends.
#[derive(Clone, Copy, Debug)]
enum Media {
    Video,
    Audio,
}

impl Media {
    fn name(self) -> &'static str {
        match self {
            Media::Video => "video",
            Media::Audio => "audio",
        }
    }

    fn codec(self) -> RTCRtpCodec {
        match self {
            Media::Video => vp8(),
            Media::Audio => opus(),
        }
    }

    fn kind(self) -> RtpCodecKind {
        match self {
            Media::Video => RtpCodecKind::Video,
            Media::Audio => RtpCodecKind::Audio,
        }
    }

    /// Payload size and RTP timestamp step of one packet.
    fn packet(self) -> (usize, u32) {
        match self {
            Media::Video => (1100, 3000),
            Media::Audio => (100, 960),
        }
    }
}

struct Client {
    id: ParticipantId,
    addr: SocketAddr,
    pc: RTCPeerConnection,
    received: u64,
}

fn client(i: u16) -> Client {
    let addr = SocketAddr::from(([127, 0, 0, 1], 20_000 + i));
    let mut me = MediaEngine::default();
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: vp8(),
            payload_type: 96,
        },
        RtpCodecKind::Video,
    )
    .unwrap();
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus(),
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )
    .unwrap();
    let registry = register_default_interceptors(Registry::new(), &mut me).unwrap();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(SettingEngineBuilder::new().build())
        .with_media_engine(me)
        .with_interceptor_registry(registry)
        .build(Instant::now())
        .unwrap();
    sfu::engine::add_host_candidate(&mut pc, addr).unwrap();
    Client {
        id: ParticipantId::from_string(format!("c{i}")),
        addr,
        pc,
        received: 0,
    }
}

/// A shard with one publisher and `n` subscribers, all connected and
/// media flowing, plus the publisher's SSRC.
struct Room {
    shard: Shard,
    clients: Vec<Client>,
    ssrc: u32,
    seq: u16,
    media: Media,
}

impl Room {
    fn new(n: usize, media: Media, own_srtp: bool) -> Room {
        let cfg = Arc::new(ShardConfig {
            codecs: vec!["opus".into(), "vp8".into()],
            advertise: vec![SERVER],
            tcp: false,
            keyframe_min_interval: Duration::from_millis(500),
            nack_cache_packets: 1024,
            bwe: Default::default(),
            own_srtp,
            own_srtp_in: own_srtp,
            own_srtcp_in: own_srtp,
            stale_repair_after: Some(Duration::from_millis(300)),
        });
        let mut shard = Shard::new(cfg, StdRng::seed_from_u64(7));
        let room = RoomName::parse("bench").unwrap();
        let mut clients: Vec<Client> = (0..=n as u16).map(client).collect();
        let now = Instant::now();
        for (i, c) in clients.iter().enumerate() {
            shard.handle_command(
                MediaCommand::Join {
                    room: room.clone(),
                    participant: c.id.clone(),
                    permissions: Permissions {
                        publish: i == 0,
                        subscribe: i != 0,
                    },
                },
                now,
            );
        }
        let ssrc = 0x1234_5678;
        let track_id = format!("pub-{}", media.name());
        let track = MediaStreamTrack::new(
            "pub".into(),
            track_id.clone(),
            track_id,
            media.kind(),
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: media.codec(),
                ..Default::default()
            }],
        );
        clients[0].pc.add_track(track).unwrap();
        let offer = clients[0].pc.create_offer(None).unwrap();
        clients[0].pc.set_local_description(now, offer).unwrap();
        let sdp = clients[0].pc.local_description().unwrap().sdp;
        shard.handle_command(
            MediaCommand::Offer {
                room: room.clone(),
                participant: clients[0].id.clone(),
                sdp,
            },
            now,
        );
        let mut room = Room {
            shard,
            clients,
            ssrc,
            seq: 0,
            media,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while room.clients[1..].iter().any(|c| c.received < 3) {
            if Instant::now() > deadline {
                let states: Vec<(u64, bool)> = room
                    .clients
                    .iter()
                    .map(|c| (c.received, c.pc.remote_description().is_some()))
                    .collect();
                panic!(
                    "set-up did not converge: {:?} {states:?}",
                    room.shard.counts
                );
            }
            let from = room.clients[0].addr;
            for d in room.publish_one() {
                room.shard.handle_datagram(from, d, Instant::now());
            }
            room.step(true);
        }
        room
    }

    /// Moves every queued datagram and signaling event between the shard
    /// and the clients, and runs due timers.
    fn step(&mut self, deliver: bool) {
        let now = Instant::now();
        self.shard.handle_timeout(now);
        let (out, events, _) = self.shard.take_output();
        let out: Vec<(SocketAddr, BytesMut)> = std::mem::take(out);
        let events: Vec<MediaEvent> = std::mem::take(events);
        for e in events {
            self.on_event(e, now);
        }
        for (to, data) in out {
            if !deliver {
                continue;
            }
            if let Some(c) = self.clients.iter_mut().find(|c| c.addr == to) {
                let _ = c.pc.handle_read(TaggedBytesMut {
                    now,
                    transport: TransportContext {
                        local_addr: c.addr,
                        peer_addr: SERVER,
                        transport_protocol: TransportProtocol::UDP,
                        ecn: None,
                    },
                    message: data,
                });
            }
        }
        let mut up = Vec::new();
        for c in self.clients.iter_mut() {
            if c.pc.poll_timeout().is_some_and(|t| t <= now) {
                let _ = c.pc.handle_timeout(now);
            }
            while c.pc.poll_event().is_some() {}
            while let Some(m) = c.pc.poll_read() {
                if matches!(m.message, RTCMessage::RtpPacket(..)) {
                    c.received += 1;
                }
            }
            while let Some(w) = c.pc.poll_write() {
                up.push((c.addr, w.message));
            }
        }
        for (from, data) in up {
            self.shard.handle_datagram(from, data, now);
        }
    }

    fn on_event(&mut self, e: MediaEvent, now: Instant) {
        let shard = &mut self.shard;
        match e {
            MediaEvent::Offer { participant, sdp } => {
                let c = self
                    .clients
                    .iter_mut()
                    .find(|c| c.id == participant)
                    .unwrap();
                c.pc.set_remote_description(now, RTCSessionDescription::offer(sdp).unwrap())
                    .unwrap();
                let answer = c.pc.create_answer(None).unwrap();
                c.pc.set_local_description(now, answer).unwrap();
                let sdp = c.pc.local_description().unwrap().sdp;
                shard.handle_command(
                    MediaCommand::Answer {
                        room: RoomName::parse("bench").unwrap(),
                        participant,
                        sdp,
                    },
                    now,
                );
            }
            MediaEvent::Answer { participant, sdp } => {
                let c = self
                    .clients
                    .iter_mut()
                    .find(|c| c.id == participant)
                    .unwrap();
                c.pc.set_remote_description(now, RTCSessionDescription::answer(sdp).unwrap())
                    .unwrap();
            }
            _ => {}
        }
    }

    /// Has the publisher encrypt its next packet; returns what it sends
    /// (the packet, and now and then a report of its own).
    fn publish_one(&mut self) -> Vec<BytesMut> {
        self.publish_inner().unwrap_or_default()
    }

    fn publish_inner(&mut self) -> Option<Vec<BytesMut>> {
        self.seq = self.seq.wrapping_add(1);
        let pc = &mut self.clients[0].pc;
        let sid = pc.get_senders().next()?;
        let mut sender = pc.rtp_sender(sid)?;
        let pt = sender
            .get_parameters()
            .rtp_parameters
            .codecs
            .first()?
            .payload_type;
        let (size, ts_step) = self.media.packet();
        let pkt = Packet {
            header: Header {
                version: 2,
                marker: true,
                payload_type: pt,
                sequence_number: self.seq,
                timestamp: (self.seq as u32).wrapping_mul(ts_step),
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::from(vec![0x90u8; size]),
        };
        let _ = sender.write_rtp(Instant::now(), pkt);
        let mut out = Vec::new();
        while let Some(w) = pc.poll_write() {
            out.push(w.message);
        }
        Some(out)
    }
}

impl Room {
    /// Has subscriber `i` encrypt one receiver report about what it gets
    /// (the RTCP every subscriber sends); returns the datagram(s).
    fn report_one(&mut self, i: usize) -> Vec<BytesMut> {
        let now = Instant::now();
        let pc = &mut self.clients[i].pc;
        let report = ReceiverReport {
            ssrc: 0x5151_0000 + i as u32,
            reports: vec![ReceptionReport {
                ssrc: self.ssrc,
                last_sequence_number: u32::from(self.seq),
                ..Default::default()
            }],
            ..Default::default()
        };
        let _ = pc.handle_write(TaggedRTCMessage {
            now,
            message: RTCMessage::RtcpPacket(String::new(), vec![Box::new(report)]),
        });
        let mut out = Vec::new();
        while let Some(w) = pc.poll_write() {
            out.push(w.message);
        }
        out
    }
}

impl Room {
    /// The timed part: the shard reads each batch of datagrams from
    /// `from` at one `now`, runs its timers and hands over its output.
    /// Returns the CPU time that took.
    fn receive(&mut self, from: SocketAddr, packets: Vec<Vec<BytesMut>>) -> Duration {
        let start = thread_cpu_time();
        for batch in packets {
            let now = Instant::now();
            for p in batch {
                self.shard.handle_datagram(from, p, now);
            }
            self.shard.handle_timeout(now);
            let (out, _, _) = self.shard.take_output();
            out.clear();
        }
        thread_cpu_time().saturating_sub(start)
    }
}

/// CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn forward(c: &mut Criterion) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let mut group = c.benchmark_group("forward_one_packet");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    for (media, own, n) in [Media::Video, Media::Audio]
        .into_iter()
        .flat_map(|m| [(m, true), (m, false)])
        .flat_map(|(m, own)| [1usize, 10, 100].map(|n| (m, own, n)))
    {
        let mut room = Room::new(n, media, own);
        let from = room.clients[0].addr;
        let path = if own { "own" } else { "library" };
        group.throughput(Throughput::Elements(n as u64));
        let id = BenchmarkId::new(format!("{}/{path}", media.name()), n);
        group.bench_with_input(id, &n, |b, _| {
            b.iter_custom(|iters| {
                // Untimed: let the clients' consent checks and reports through
                // so the connections stay up.
                for _ in 0..3 {
                    room.step(true);
                }
                // Fresh packets (SRTP rejects replays), encrypted by the
                // publisher outside the timed part.
                let packets: Vec<Vec<BytesMut>> = (0..iters).map(|_| room.publish_one()).collect();
                let before = room.shard.counts.packets_forwarded;
                let spent = room.receive(from, packets);
                let forwarded = room.shard.counts.packets_forwarded - before;
                // Forwarding, not dropping, is what is timed.
                assert!(
                    forwarded * 100 >= iters * n as u64 * 99,
                    "{forwarded} of {} forwarded: {:?}",
                    iters * n as u64,
                    room.shard.counts
                );
                spent
            });
        });
    }
    group.finish();
}

/// Server CPU per RTCP datagram a subscriber sends (a receiver report,
/// the most common one), read by the shard's own SRTCP path or the
/// library's receive pipeline: decrypting, parsing, the read-side
/// interceptors and the feedback handling.
fn feedback(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_feedback");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    for own in [true, false] {
        let mut room = Room::new(1, Media::Video, own);
        let from = room.clients[1].addr;
        let path = if own { "own" } else { "library" };
        group.throughput(Throughput::Elements(1));
        group.bench_function(path, |b| {
            b.iter_custom(|iters| {
                for _ in 0..3 {
                    room.step(true);
                }
                let packets: Vec<Vec<BytesMut>> = (0..iters).map(|_| room.report_one(1)).collect();
                let before = room.shard.counts.own_srtcp_in;
                let spent = room.receive(from, packets);
                // The path named is the one timed.
                let own_reads = room.shard.counts.own_srtcp_in - before;
                assert_eq!(own_reads, if own { iters } else { 0 }, "{path}");
                spent
            });
        });
    }
    group.finish();
}

criterion_group!(benches, forward, feedback);
criterion_main!(benches);
