//! In-process WebRTC clients (the `rtc` Sans-I/O peer connection on real
//! loopback UDP sockets) talking to a real [`SfuPlane`]: signaling is the
//! plane's own command/event interface, media is real ICE + DTLS-SRTP.
//!
//! [`Net`] runs on real sockets and the wall clock, and is kept for what
//! only exists in the runtime: its UDP demultiplexing, the route table
//! between shards, and relays between nodes (`forwarding.rs`,
//! `garbage.rs`, `spoofed_stun.rs`, `relay.rs`). Every other media test
//! runs on [`sim::SimNet`], in virtual time.
#![allow(dead_code)]

pub mod camera;
pub mod sim;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;

use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RTCRtpParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use sfu::{MediaConfig, SfuPlane};
use signaling::ids::{ParticipantId, RoomName};
use signaling::media::{MediaCommand, MediaEvent, MediaEventReceiver, MediaPlane};
use signaling::protocol::Permissions;

pub const ABS_CAPTURE_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
pub const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
pub const RRID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// The id a session description gives an extension URI.
pub fn extmap_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=extmap:"))
        .find(|l| l.split_whitespace().nth(1) == Some(uri))
        .and_then(|l| l.split([' ', '/']).next()?.parse().ok())
}

/// The ICE ufrag and password a session description gives.
pub fn ice_credentials(sdp: &str) -> (String, String) {
    let find = |key: &str| {
        sdp.lines()
            .find_map(|l| l.strip_prefix(key))
            .expect("an ICE credential line")
            .trim()
            .to_owned()
    };
    (find("a=ice-ufrag:"), find("a=ice-pwd:"))
}

pub fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

pub fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![
            RTCPFeedback {
                typ: "nack".into(),
                parameter: String::new(),
            },
            RTCPFeedback {
                typ: "nack".into(),
                parameter: "pli".into(),
            },
        ],
    }
}

/// A plane on an ephemeral loopback port, with `shards` shards.
pub fn start_plane(shards: usize) -> (Arc<SfuPlane>, MediaEventReceiver) {
    start_plane_with(shards, |_| {})
}

/// Like [`start_plane`], with the configuration changed by `f`.
pub fn start_plane_with(
    shards: usize,
    f: impl FnOnce(&mut MediaConfig),
) -> (Arc<SfuPlane>, MediaEventReceiver) {
    let mut cfg = MediaConfig {
        udp_port: 0,
        shards,
        keyframe_min_interval_ms: 200,
        ..MediaConfig::default()
    };
    f(&mut cfg);
    SfuPlane::start(&cfg).expect("media plane starts")
}

/// What a client received on one forwarded track.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub stream_ids: Vec<String>,
    pub packets: u64,
    pub seqs: BTreeSet<u64>,
    last_seq: Option<u64>,
    pub payloads: Vec<Bytes>,
    pub ext_ids: BTreeSet<u8>,
    /// The last payload seen per extension id.
    pub ext_payloads: BTreeMap<u8, Bytes>,
    /// The SSRC the track last arrived on.
    pub ssrc: u32,
}

impl Received {
    fn push(&mut self, p: &Packet) {
        self.packets += 1;
        self.ssrc = p.header.ssrc;
        // Extend to 64 bits so wrap-around keeps order.
        let s = p.header.sequence_number as u64;
        let ext = match self.last_seq {
            None => s + (1 << 16),
            Some(last) => {
                let base = last & !0xffff;
                let cands = [
                    base.wrapping_sub(1 << 16) + s,
                    base + s,
                    base + (1 << 16) + s,
                ];
                *cands
                    .iter()
                    .min_by_key(|c| (**c as i64 - last as i64).unsigned_abs())
                    .unwrap()
            }
        };
        if self.last_seq.is_none_or(|l| ext > l) {
            self.last_seq = Some(ext);
        }
        self.seqs.insert(ext);
        if self.payloads.len() < 4096 {
            self.payloads.push(p.payload.clone());
        }
        for e in &p.header.extensions {
            self.ext_ids.insert(e.id);
            self.ext_payloads.insert(e.id, e.payload.clone());
        }
    }

    /// Sequence numbers missing between the first and last received.
    pub fn gaps(&self) -> u64 {
        match (self.seqs.first(), self.seqs.last()) {
            (Some(a), Some(b)) => (b - a + 1) - self.seqs.len() as u64,
            _ => 0,
        }
    }
}

/// How a test client's peer connection is set up.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// ICE consent-check interval (the library's default when `None`).
    /// The client then also waits RFC 7675's 30 s without a response before
    /// calling its own connection disconnected, as agents that check this
    /// rarely do.
    pub keepalive: Option<Duration>,
    /// Negotiate RTX (RFC 4588) beside VP8, as browsers do.
    pub rtx: bool,
    /// The SRTP profiles offered in DTLS, in order (the library's default
    /// when empty).
    pub srtp_profiles: Vec<rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile>,
}

/// A client peer connection as the tests use it: Opus and VP8, the
/// library's default interceptors, abs-capture-time, a host candidate at
/// `local`, and an SRTP replay window wide enough for late repairs.
pub fn client_pc(local: SocketAddr, now: Instant, opts: &ClientOptions) -> RTCPeerConnection {
    let mut me = MediaEngine::default();
    for (codec, pt, kind) in [
        (opus(), 111, RtpCodecKind::Audio),
        (vp8(), 96, RtpCodecKind::Video),
    ] {
        me.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: codec,
                payload_type: pt,
            },
            kind,
        )
        .unwrap();
    }
    if opts.rtx {
        me.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: "video/rtx".to_owned(),
                    clock_rate: 90_000,
                    channels: 0,
                    sdp_fmtp_line: "apt=96".to_owned(),
                    rtcp_feedback: Vec::new(),
                },
                payload_type: 97,
            },
            RtpCodecKind::Video,
        )
        .unwrap();
    }
    for (uri, kind) in [
        (ABS_CAPTURE_TIME, RtpCodecKind::Audio),
        (ABS_CAPTURE_TIME, RtpCodecKind::Video),
        (MID_URI, RtpCodecKind::Audio),
        (MID_URI, RtpCodecKind::Video),
        (RID_URI, RtpCodecKind::Video),
        (RRID_URI, RtpCodecKind::Video),
        (AUDIO_LEVEL_URI, RtpCodecKind::Audio),
    ] {
        me.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: uri.to_owned(),
            },
            kind,
            None,
        )
        .unwrap();
    }
    let registry = register_default_interceptors(Registry::new(), &mut me).unwrap();
    let mut settings = SettingEngineBuilder::new().with_srtp_replay_protection_window(1024);
    if let Some(k) = opts.keepalive {
        settings = settings.with_ice_timeouts(Some(Duration::from_secs(30)), None, Some(k));
    }
    if !opts.srtp_profiles.is_empty() {
        settings = settings.with_srtp_protection_profiles(opts.srtp_profiles.clone());
    }
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(settings.build())
        .with_media_engine(me)
        .with_interceptor_registry(registry)
        .build(now)
        .unwrap();
    sfu::engine::add_host_candidate(&mut pc, local).unwrap();
    pc
}

pub struct Client {
    pub id: ParticipantId,
    pub pc: RTCPeerConnection,
    pub socket: UdpSocket,
    pub local: SocketAddr,
    /// Where this client's media goes to (the server, or a relay).
    pub server_override: Option<SocketAddr>,
    pub senders: Vec<(RTCRtpSenderId, u32, RtpCodecKind)>,
    pub want_offer: bool,
    pub connected: bool,
    pub received: BTreeMap<String, Received>,
    pub track_streams: HashMap<String, Vec<String>>,
    pub offers_received: u32,
    /// The rid of each simulcast SSRC this client sends.
    pub rids: HashMap<u32, String>,
}

/// The mid of the transceiver a sender belongs to.
pub fn sender_mid(pc: &mut RTCPeerConnection, sid: RTCRtpSenderId) -> Option<String> {
    let ids: Vec<_> = pc.get_transceivers().collect();
    ids.into_iter().find_map(|t| {
        let tr = pc.rtp_transceiver(t)?;
        (tr.sender()? == sid).then(|| tr.mid().clone())?
    })
}

/// The id a sender's negotiated parameters give an extension URI.
pub fn sender_ext_id(params: &RTCRtpParameters, uri: &str) -> Option<u8> {
    params
        .header_extensions
        .iter()
        .find(|h| h.uri == uri)
        .map(|h| h.id as u8)
}

/// A simulcast video track: one VP8 encoding per rid (lowest quality
/// first) on SSRCs from `base` up; returns the track and the SSRCs.
pub fn simulcast_track(
    stream_id: String,
    track_id: &str,
    base: u32,
    rids: &[&str],
) -> (MediaStreamTrack, Vec<u32>) {
    let encodings: Vec<RTCRtpEncodingParameters> = rids
        .iter()
        .enumerate()
        .map(|(k, rid)| RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                rid: rid.to_string(),
                ssrc: Some(base + k as u32),
                ..Default::default()
            },
            codec: vp8(),
            ..Default::default()
        })
        .collect();
    let ssrcs = (0..rids.len() as u32).map(|k| base + k).collect();
    let track = MediaStreamTrack::new(
        stream_id,
        track_id.to_owned(),
        track_id.to_owned(),
        RtpCodecKind::Video,
        encodings,
    );
    (track, ssrcs)
}

impl Client {
    fn new(id: &str) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let local = socket.local_addr().unwrap();
        let pc = client_pc(local, Instant::now(), &ClientOptions::default());
        Client {
            id: ParticipantId::from_string(id),
            pc,
            socket,
            local,
            server_override: None,
            senders: Vec::new(),
            want_offer: false,
            connected: false,
            received: BTreeMap::new(),
            track_streams: HashMap::new(),
            offers_received: 0,
            rids: HashMap::new(),
        }
    }

    /// Adds a simulcast video track (rids lowest quality first); each
    /// encoding is one more entry of `senders`, in order.
    pub fn add_simulcast_track(&mut self, track_id: &str, rids: &[&str]) {
        let base = (rand::random::<u32>() | 1) & 0x7fff_fff0;
        let (track, ssrcs) = simulcast_track(format!("{}-stream", self.id), track_id, base, rids);
        let s = self.pc.add_track(track).unwrap();
        for (ssrc, rid) in ssrcs.iter().zip(rids) {
            self.senders.push((s, *ssrc, RtpCodecKind::Video));
            self.rids.insert(*ssrc, rid.to_string());
        }
        self.want_offer = true;
    }

    /// Adds a track to publish; the offer goes out on the next pump.
    pub fn add_track(&mut self, track_id: &str, kind: RtpCodecKind) {
        let codec = if kind == RtpCodecKind::Audio {
            opus()
        } else {
            vp8()
        };
        let ssrc: u32 = rand::random::<u32>() | 1;
        let track = MediaStreamTrack::new(
            format!("{}-stream", self.id),
            track_id.to_owned(),
            track_id.to_owned(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        );
        let s = self.pc.add_track(track).unwrap();
        self.senders.push((s, ssrc, kind));
        self.want_offer = true;
    }

    /// Sends one RTP packet on the i-th published track.
    pub fn send_rtp(&mut self, i: usize, seq: u16, ts: u32, payload: Bytes, marker: bool) -> bool {
        self.send_rtp_ext(i, seq, ts, payload, marker, None)
    }

    /// Like [`Self::send_rtp`], stamping an abs-capture-time extension.
    pub fn send_rtp_ext(
        &mut self,
        i: usize,
        seq: u16,
        ts: u32,
        payload: Bytes,
        marker: bool,
        capture_time: Option<[u8; 8]>,
    ) -> bool {
        let (sid, ssrc, _) = self.senders[i];
        let mid = if self.rids.contains_key(&ssrc) {
            sender_mid(&mut self.pc, sid)
        } else {
            None
        };
        let Some(mut sender) = self.pc.rtp_sender(sid) else {
            return false;
        };
        let params = sender.get_parameters().rtp_parameters.clone();
        let Some(pt) = params.codecs.first().map(|c| c.payload_type) else {
            return false;
        };
        let ext_id = sender_ext_id(&params, ABS_CAPTURE_TIME);
        let mut pkt = Packet {
            header: Header {
                version: 2,
                marker,
                payload_type: pt,
                sequence_number: seq,
                timestamp: ts,
                ssrc,
                ..Default::default()
            },
            payload,
        };
        if let (Some(id), Some(t)) = (ext_id, capture_time) {
            let _ = pkt.header.set_extension(id, Bytes::copy_from_slice(&t));
        }
        // A simulcast encoding names its stream, as browsers do.
        if let Some(rid) = self.rids.get(&ssrc) {
            if let (Some(id), Some(mid)) = (sender_ext_id(&params, MID_URI), mid) {
                let _ = pkt.header.set_extension(id, Bytes::from(mid));
            }
            if let Some(id) = sender_ext_id(&params, RID_URI) {
                let _ = pkt.header.set_extension(id, Bytes::from(rid.clone()));
            }
        }
        sender.write_rtp(Instant::now(), pkt).is_ok()
    }

    pub fn set_ssrc(&mut self, i: usize, ssrc: u32) {
        // A "re-published" source: same sender, new SSRC on the wire is not
        // something the library allows, so tests switch tracks instead.
        self.senders[i].1 = ssrc;
    }
}

pub struct Net {
    pub plane: Arc<SfuPlane>,
    pub events: MediaEventReceiver,
    pub clients: Vec<Client>,
    pub room: RoomName,
    /// Offers, answers and stream needs for other nodes' ends of relays,
    /// for the test to carry.
    pub relay_sdp: Vec<MediaEvent>,
    /// Every `PublisherEncodings` event (dynacast), in order.
    pub encodings: Vec<MediaEvent>,
    buf: Vec<u8>,
}

impl Net {
    pub fn new(shards: usize) -> Net {
        Self::with_config(shards, |_| {})
    }

    /// Like [`Self::new`], with the media configuration changed by `f`.
    pub fn with_config(shards: usize, f: impl FnOnce(&mut MediaConfig)) -> Net {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let (plane, events) = start_plane_with(shards, f);
        Net {
            plane,
            events,
            clients: Vec::new(),
            room: RoomName::parse("room").unwrap(),
            relay_sdp: Vec::new(),
            encodings: Vec::new(),
            buf: vec![0; 2048],
        }
    }

    pub fn server_addr(&self) -> SocketAddr {
        self.plane.local_addr()
    }

    pub fn join(&mut self, name: &str, publish: bool, subscribe: bool) -> usize {
        let c = Client::new(name);
        self.plane.handle(MediaCommand::Join {
            room: self.room.clone(),
            participant: c.id.clone(),
            permissions: Permissions { publish, subscribe },
        });
        self.clients.push(c);
        self.clients.len() - 1
    }

    pub fn leave(&mut self, i: usize) {
        let id = self.clients[i].id.clone();
        self.plane.handle(MediaCommand::Leave {
            room: self.room.clone(),
            participant: id,
        });
    }

    fn index_of(&self, id: &ParticipantId) -> Option<usize> {
        self.clients.iter().position(|c| &c.id == id)
    }

    /// One round: signaling events, then every client's I/O and timers.
    pub fn pump(&mut self) {
        while let Ok(ev) = self.events.try_recv() {
            self.on_event(ev);
        }
        let now = Instant::now();
        for i in 0..self.clients.len() {
            self.client_io(i, now);
        }
        for i in 0..self.clients.len() {
            let c = &mut self.clients[i];
            let pending = c.pc.pending_local_description().is_some()
                || c.pc.pending_remote_description().is_some();
            if c.want_offer && !pending {
                c.want_offer = false;
                let offer = c.pc.create_offer(None).unwrap();
                c.pc.set_local_description(now, offer).unwrap();
                let sdp = c.pc.local_description().unwrap().sdp;
                let id = c.id.clone();
                self.plane.handle(MediaCommand::Offer {
                    room: self.room.clone(),
                    participant: id,
                    sdp,
                });
            }
        }
    }

    fn on_event(&mut self, ev: MediaEvent) {
        let now = Instant::now();
        match ev {
            MediaEvent::Offer { participant, sdp } => {
                let Some(i) = self.index_of(&participant) else {
                    return;
                };
                let c = &mut self.clients[i];
                c.offers_received += 1;
                if c.pc.pending_local_description().is_some() {
                    // Polite: roll our offer back, answer, offer again later.
                    c.pc.set_local_description(now, RTCSessionDescription::rollback(None).unwrap())
                        .unwrap();
                    c.want_offer = true;
                }
                let offer = RTCSessionDescription::offer(sdp).unwrap();
                c.pc.set_remote_description(now, offer).unwrap();
                let answer = c.pc.create_answer(None).unwrap();
                c.pc.set_local_description(now, answer).unwrap();
                let sdp = c.pc.local_description().unwrap().sdp;
                self.plane.handle(MediaCommand::Answer {
                    room: self.room.clone(),
                    participant,
                    sdp,
                });
            }
            MediaEvent::Answer { participant, sdp } => {
                let Some(i) = self.index_of(&participant) else {
                    return;
                };
                let c = &mut self.clients[i];
                if c.pc.pending_local_description().is_some() {
                    let answer = RTCSessionDescription::answer(sdp).unwrap();
                    c.pc.set_remote_description(now, answer).unwrap();
                }
            }
            MediaEvent::Candidate { .. }
            | MediaEvent::Error { .. }
            | MediaEvent::ActiveSpeakers { .. }
            | MediaEvent::StreamState { .. } => {}
            MediaEvent::PublisherEncodings { .. } => self.encodings.push(ev),
            MediaEvent::RelaySdp { .. } | MediaEvent::RelayStreams { .. } => {
                self.relay_sdp.push(ev)
            }
        }
    }

    fn client_io(&mut self, i: usize, now: Instant) {
        let server = self.server_addr();
        let buf = &mut self.buf;
        let c = &mut self.clients[i];
        while let Ok((n, from)) = c.socket.recv_from(buf) {
            // Through a relay the server's packets come from the relay; the
            // connection must see them as the server's.
            let from = match c.server_override {
                Some(relay) if from == relay => server,
                _ => from,
            };
            let _ = c.pc.handle_read(TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr: c.local,
                    peer_addr: from,
                    transport_protocol: TransportProtocol::UDP,
                    ecn: None,
                },
                message: BytesMut::from(&buf[..n]),
            });
        }
        if c.pc.poll_timeout().is_some_and(|t| t <= now) {
            let _ = c.pc.handle_timeout(now);
        }
        while let Some(ev) = c.pc.poll_event() {
            match ev {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => {
                    c.connected = s == RTCPeerConnectionState::Connected;
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    c.track_streams
                        .insert(init.track_id.clone(), init.stream_ids.clone());
                }
                _ => {}
            }
        }
        while let Some(m) = c.pc.poll_read() {
            if let RTCMessage::RtpPacket(track_id, p) = m.message {
                let streams = c.track_streams.get(&track_id).cloned().unwrap_or_default();
                let r = c.received.entry(track_id).or_default();
                r.stream_ids = streams;
                r.push(&p);
            }
        }
        while let Some(w) = c.pc.poll_write() {
            let to = match c.server_override {
                Some(relay) if w.transport.peer_addr == server => relay,
                _ => w.transport.peer_addr,
            };
            let _ = c.socket.send_to(&w.message, to);
        }
    }

    /// Client `i` asks for a keyframe of a track it receives (a PLI on the
    /// SSRC the track arrives on).
    pub fn request_keyframe(&mut self, i: usize, track_id: &str) {
        use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
        let c = &mut self.clients[i];
        let Some(ssrc) = c.received.get(track_id).map(|r| r.ssrc) else {
            return;
        };
        let ids: Vec<_> = c.pc.get_transceivers().collect();
        let receiver = ids
            .into_iter()
            .find_map(|t| c.pc.rtp_transceiver(t).and_then(|t| t.receiver()));
        if let Some(mut r) = receiver.and_then(|r| c.pc.rtp_receiver(r)) {
            let pli = PictureLossIndication {
                sender_ssrc: 1,
                media_ssrc: ssrc,
            };
            let _ = r.write_rtcp(Instant::now(), vec![Box::new(pli)]);
        }
    }

    /// Pumps until `cond` holds or `timeout` passes; true if it held.
    /// Between pumps it waits for the clients' sockets and timers.
    pub fn pump_until(&mut self, timeout: Duration, mut cond: impl FnMut(&Net) -> bool) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            self.pump();
            if cond(self) {
                return true;
            }
            wait_for_io(
                &mut [&mut *self],
                end.saturating_duration_since(Instant::now()),
            );
        }
        false
    }

    /// Pumps for `dur` of wall-clock time (real sockets: a window in which
    /// the server does its work), calling `each` every `every` (to send
    /// media at a steady rate). Between pumps it waits for the clients'
    /// sockets and timers.
    pub fn pump_for(&mut self, dur: Duration, every: Duration, mut each: impl FnMut(&mut Net)) {
        let end = Instant::now() + dur;
        let mut next = Instant::now();
        while Instant::now() < end {
            if Instant::now() >= next {
                each(self);
                next += every;
            }
            self.pump();
            let due = next.min(end);
            wait_for_io(
                &mut [&mut *self],
                due.saturating_duration_since(Instant::now()),
            );
        }
    }

    /// Every client that publishes is connected and every other client's
    /// expected tracks are negotiated.
    pub fn all_connected(&self) -> bool {
        self.clients.iter().all(|c| c.connected)
    }
}

/// The longest [`wait_for_io`] blocks: signaling events and the plane's
/// figures do not wake it, so it looks again this often.
const IO_WAIT_CAP: Duration = Duration::from_millis(5);

/// Blocks until a datagram waits on one of these nets' client sockets or
/// one of their connections' timers is due, for at most `max` (and at
/// most [`IO_WAIT_CAP`]).
pub fn wait_for_io(nets: &mut [&mut Net], max: Duration) {
    use std::os::fd::AsRawFd;
    let now = Instant::now();
    let mut wait = max.min(IO_WAIT_CAP);
    let mut fds = Vec::new();
    for c in nets.iter_mut().flat_map(|n| n.clients.iter_mut()) {
        if let Some(t) = c.pc.poll_timeout() {
            wait = wait.min(t.saturating_duration_since(now));
        }
        fds.push(libc::pollfd {
            fd: c.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
    }
    let ms = wait.as_micros().div_ceil(1000) as libc::c_int;
    // SAFETY: `fds` is a live array of `fds.len()` pollfd structs for the
    // duration of the call; poll(2) only writes their `revents`.
    unsafe {
        libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
    }
}

/// A STUN binding request whose USERNAME names `ufrag`, with no
/// MESSAGE-INTEGRITY at all.
pub fn unsigned_binding_request(ufrag: &str) -> Vec<u8> {
    sfu::fuzzing::unsigned_binding_request(ufrag)
}

/// A fake VP8 payload: a valid-looking descriptor and some bytes, marked by
/// the sequence number so a test can tell packets apart.
pub fn payload(seq: u16, size: usize) -> Bytes {
    let mut v = vec![0x10, 0x00, 0x9d, 0x01, 0x2a];
    v.extend(seq.to_be_bytes());
    v.resize(size, 0xab);
    Bytes::from(v)
}

/// A UDP relay between one client and the server that drops a seeded
/// fraction of the server's RTP packets on their way to the client.
pub struct LossyRelay {
    pub addr: SocketAddr,
    pub dropped: Arc<std::sync::atomic::AtomicU64>,
    pub passed: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LossyRelay {
    /// `loss_percent` of server-to-client RTP (not RTCP, STUN or DTLS) is dropped.
    pub fn start(server: SocketAddr, loss_percent: u64, seed: u64) -> LossyRelay {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let dropped = Arc::new(AtomicU64::new(0));
        let passed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, p, st) = (dropped.clone(), passed.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut client: Option<SocketAddr> = None;
            let mut buf = vec![0u8; 2048];
            let mut rng = seed | 1;
            while !st.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let data = &buf[..n];
                if from == server {
                    let Some(to) = client else { continue };
                    let is_rtp =
                        n > 12 && (128..192).contains(&data[0]) && !(192..=223).contains(&data[1]);
                    // xorshift64: reproducible loss pattern per seed.
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    if is_rtp && rng % 100 < loss_percent {
                        d.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    p.fetch_add(1, Ordering::Relaxed);
                    let _ = sock.send_to(data, to);
                } else {
                    client = Some(from);
                    let _ = sock.send_to(data, server);
                }
            }
        });
        LossyRelay {
            addr,
            dropped,
            passed,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
