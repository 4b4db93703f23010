//! One WebRTC peer connection of a bot, on its own UDP socket, driven by one
//! task: the `rtc` Sans-I/O connection, the clip players of a publisher and
//! the measurements of what arrives.
//!
//! The bot's signaling task talks to it through [`PeerCommand`]s (remote
//! SDP and candidates, stop) and gets [`PeerSignal`]s back (local SDP).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use rtc::interceptor::{Attribute, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::interceptor::{NackGeneratorBuilder, NackResponderBuilder};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp::packetizer::Packetizer;

use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind, TYPE_RTCP_FB_NACK,
};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::error::Error as RtcError;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use signaling::protocol::IceCandidate;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::abs_time;
use crate::clip::{Clip, Player};
use crate::scenario::Shared;
use crate::stats::{Histogram, TrackStats};

const MTU: usize = 1200;
/// NACKs sent for one missing packet before giving it up.
const MAX_NACKS_PER_PACKET: u16 = 10;

/// What the signaling side tells a peer.
#[derive(Debug)]
pub enum PeerCommand {
    RemoteOffer(String),
    RemoteAnswer(String),
    RemoteCandidate(IceCandidate),
    /// Send our own offer (we publish, or we are the P2P newcomer).
    MakeOffer,
    Stop,
}

/// What a peer wants sent over signaling.
#[derive(Debug)]
pub enum PeerSignal {
    Offer(String),
    Answer(String),
    Error(String),
}

/// What to publish.
#[derive(Clone)]
pub struct Publish {
    pub video: Option<Arc<Clip>>,
    pub audio: Option<Arc<Clip>>,
}

/// Measurements of one peer connection, returned when its task ends.
#[derive(Debug, Default)]
pub struct PeerReport {
    /// From the bot's WebSocket open to ICE+DTLS connected.
    pub connected_after: Option<Duration>,
    /// From the bot's WebSocket open to the first media packet.
    pub first_media_after: Option<Duration>,
    /// Received tracks, keyed by (stream id, kind is video).
    pub tracks: Vec<((String, bool), TrackStats)>,
    pub latency: Histogram,
    pub failed: Option<String>,
}

/// Marks inbound RTCP for delivery to the application: the bot needs the
/// keyframe requests (PLI/FIR), which the default chain consumes.
#[derive(Default)]
struct DeliverRtcp {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for DeliverRtcp {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = RtcError;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if matches!(msg.message.packet, Packet::Rtcp(_)) {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Self::Error> {
        Ok(())
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }
}

impl Interceptor for DeliverRtcp {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

fn vp8() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        },
        payload_type: 96,
    }
}

fn opus() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type: 111,
    }
}

fn build_connection() -> Result<RTCPeerConnection, RtcError> {
    let mut media = MediaEngine::default();
    media.register_codec(vp8(), RtpCodecKind::Video)?;
    media.register_codec(opus(), RtpCodecKind::Audio)?;
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        media.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: abs_time::URI.to_owned(),
            },
            kind,
            None,
        )?;
    }
    // The library's default chain, except that a missing packet is NACKed at
    // most 10 times (like browsers) instead of for as long as it stays in
    // the receive log: unbounded NACKs from a bot that falls behind would
    // flood the server with retransmission requests for packets merely late.
    for parameter in ["", "pli"] {
        media.register_feedback(
            RTCPFeedback {
                typ: TYPE_RTCP_FB_NACK.to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
    configure_simulcast_extension_headers(&mut media)?;
    let registry = Registry::new()
        .with(Slot::from(14_000), DeliverRtcp::default())
        .with(Slot::NackResponder, NackResponderBuilder::new().build())
        .with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_max_nacks_per_packet(MAX_NACKS_PER_PACKET)
                .build(),
        );
    let registry = configure_twcc_receiver_only(registry, &mut media)?;
    let registry = configure_rtcp_reports(registry);
    // No ICE servers: bots talk to a server on loopback only.
    let config = RTCConfigurationBuilder::new().build();
    RTCPeerConnectionBuilder::new()
        .with_configuration(config)
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .build(Instant::now())
}

/// One outgoing track being played from a clip.
struct Outgoing {
    sender: RTCRtpSenderId,
    ssrc: u32,
    video: bool,
    clock_rate: u32,
    player: Option<Player>,
    packetizer: Option<Box<dyn Packetizer>>,
    clip: Arc<Clip>,
    ext_id: Option<u8>,
}

struct Incoming {
    key: (String, bool),
    stats: TrackStats,
    ext_id: Option<u8>,
}

/// Runs one peer connection until told to stop, the shared deadline passes,
/// or the connection fails.
pub async fn run(
    publish: Option<Publish>,
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<PeerCommand>,
    signals: mpsc::UnboundedSender<PeerSignal>,
    started: Instant,
) -> PeerReport {
    let mut report = PeerReport::default();
    if let Err(e) = drive(
        publish,
        &shared,
        &mut commands,
        &signals,
        started,
        &mut report,
    )
    .await
    {
        report.failed = Some(e.to_string());
        let _ = signals.send(PeerSignal::Error(e.to_string()));
    }
    report
}

async fn drive(
    publish: Option<Publish>,
    shared: &Shared,
    commands: &mut mpsc::UnboundedReceiver<PeerCommand>,
    signals: &mpsc::UnboundedSender<PeerSignal>,
    started: Instant,
    report: &mut PeerReport,
) -> anyhow::Result<()> {
    let socket = bind_socket()?;
    let local_addr = socket.local_addr()?;
    let mut pc = build_connection()?;

    let mut outgoing: Vec<Outgoing> = Vec::new();
    if let Some(p) = &publish {
        let stream_id = format!("bot-{}", rand::random::<u32>());
        for (clip, video) in [(p.audio.clone(), false), (p.video.clone(), true)] {
            let Some(clip) = clip else { continue };
            let codec = if video { vp8() } else { opus() };
            let kind = if video {
                RtpCodecKind::Video
            } else {
                RtpCodecKind::Audio
            };
            let ssrc = rand::random::<u32>();
            let track = MediaStreamTrack::new(
                stream_id.clone(),
                format!("{stream_id}-{}", if video { "video" } else { "audio" }),
                format!("loadtest {}", if video { "video" } else { "audio" }),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec: codec.rtp_codec.clone(),
                    ..Default::default()
                }],
            );
            let sender = pc.add_track(track)?;
            outgoing.push(Outgoing {
                sender,
                ssrc,
                video,
                clock_rate: codec.rtp_codec.clock_rate,
                player: None,
                packetizer: None,
                clip,
                ext_id: None,
            });
        }
    }

    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: local_addr.ip().to_string(),
            port: local_addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    pc.add_local_candidate(RTCIceCandidate::from(&host).to_json()?)?;

    let mut incoming: HashMap<String, Incoming> = HashMap::new();
    let mut receivers: HashMap<String, RTCRtpReceiverId> = HashMap::new();
    let mut have_local_offer = false;
    let mut recv_transceivers = false;
    let mut connected = false;
    let mut buf = vec![0u8; 2048];

    loop {
        let now = Instant::now();
        // Media due now.
        if connected {
            for out in outgoing.iter_mut() {
                send_due(&mut pc, out, now)?;
            }
        }
        while let Some(msg) = pc.poll_write() {
            // A full send buffer on loopback is a lost packet, which the
            // receivers count; it does not end the bot.
            let _ = socket.try_send_to(&msg.message, msg.transport.peer_addr);
        }
        while let Some(event) = pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => match state {
                    RTCPeerConnectionState::Connected if !connected => {
                        connected = true;
                        report.connected_after = Some(started.elapsed());
                        let now = Instant::now();
                        for out in outgoing.iter_mut() {
                            start_sending(&mut pc, out, now)?;
                        }
                    }
                    RTCPeerConnectionState::Failed => {
                        anyhow::bail!("peer connection failed");
                    }
                    _ => {}
                },
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    receivers.insert(init.track_id.clone(), init.receiver_id);
                    if let Some(mut r) = pc.rtp_receiver(init.receiver_id) {
                        let video = r.track().kind() == RtpCodecKind::Video;
                        let ext_id = r
                            .get_parameters()
                            .rtp_parameters
                            .header_extensions
                            .iter()
                            .find(|e| e.uri == abs_time::URI)
                            .and_then(|e| u8::try_from(e.id).ok());
                        let stream = init.stream_ids.first().cloned().unwrap_or_default();
                        incoming.insert(
                            init.track_id.clone(),
                            Incoming {
                                key: (stream, video),
                                stats: TrackStats::new(video),
                                ext_id,
                            },
                        );
                    }
                }
                _ => {}
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = pc.poll_read() {
            match message {
                RTCMessage::RtpPacket(track_id, packet) => {
                    let now = Instant::now();
                    if report.first_media_after.is_none() {
                        report.first_media_after = Some(started.elapsed());
                    }
                    if !shared.measuring.load(Ordering::Relaxed) {
                        continue;
                    }
                    let Some(inc) = incoming.get_mut(&track_id) else {
                        continue;
                    };
                    let size = packet.payload.len() + 12;
                    inc.stats.on_packet(
                        now,
                        packet.header.sequence_number,
                        packet.header.timestamp,
                        size,
                    );
                    if let Some(id) = inc.ext_id {
                        if let Some(ext) = packet.header.get_extension(id) {
                            if let Some(l) = abs_time::latency(&ext, SystemTime::now()) {
                                report.latency.record(l);
                            }
                        }
                    }
                    shared.packets_received.fetch_add(1, Ordering::Relaxed);
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    let wants_keyframe = packets.iter().any(|p| {
                        let h = p.header();
                        // Payload-specific feedback: FMT 1 is PLI, 4 is FIR.
                        h.packet_type == rtc::rtcp::header::PacketType::PayloadSpecificFeedback
                            && (h.count == 1 || h.count == 4)
                    });
                    if wants_keyframe {
                        for out in outgoing.iter_mut().filter(|o| o.video) {
                            if let Some(p) = out.player.as_mut() {
                                p.request_keyframe();
                            }
                        }
                    }
                }
                _ => {}
            }
        }

        if shared.deadline_passed() {
            break;
        }

        let mut deadline = pc
            .poll_timeout()
            .unwrap_or(now + Duration::from_secs(1))
            .min(now + Duration::from_secs(1));
        for out in &outgoing {
            if let Some(p) = &out.player {
                deadline = deadline.min(p.poll_timeout());
            }
        }
        let sleep = tokio::time::sleep_until(deadline.into());
        tokio::select! {
            biased;
            cmd = commands.recv() => match cmd {
                None | Some(PeerCommand::Stop) => break,
                Some(PeerCommand::MakeOffer) => {
                    if outgoing.is_empty() && !recv_transceivers {
                        // A receive-only offerer (a P2P subscriber) asks for media.
                        recv_transceivers = true;
                        pc.add_transceiver_from_kind(RtpCodecKind::Audio, None)?;
                        pc.add_transceiver_from_kind(RtpCodecKind::Video, None)?;
                    }
                    let offer = pc.create_offer(None)?;
                    pc.set_local_description(Instant::now(), offer.clone())?;
                    have_local_offer = true;
                    let _ = signals.send(PeerSignal::Offer(offer.sdp));
                }
                Some(PeerCommand::RemoteOffer(sdp)) => {
                    if have_local_offer {
                        // Glare. The server is the impolite side and ignores
                        // our offer, so we roll ours back, answer its offer,
                        // then offer again (our tracks stay added).
                        pc.set_local_description(Instant::now(), RTCSessionDescription::rollback(None)?)?;
                        answer(&mut pc, sdp, signals)?;
                        let offer = pc.create_offer(None)?;
                        pc.set_local_description(Instant::now(), offer.clone())?;
                        let _ = signals.send(PeerSignal::Offer(offer.sdp));
                    } else {
                        answer(&mut pc, sdp, signals)?;
                    }
                }
                Some(PeerCommand::RemoteAnswer(sdp)) => {
                    pc.set_remote_description(Instant::now(), RTCSessionDescription::answer(sdp)?)?;
                    have_local_offer = false;
                }
                Some(PeerCommand::RemoteCandidate(c)) => {
                    // A candidate for an m-line we do not have yet is harmless to drop.
                    let _ = pc.add_remote_candidate(RTCIceCandidateInit {
                        candidate: c.candidate,
                        sdp_mid: c.sdp_mid,
                        sdp_mline_index: c.sdp_m_line_index,
                        username_fragment: c.username_fragment,
                        ..Default::default()
                    });
                }
            },
            res = socket.recv_from(&mut buf) => {
                let (n, peer_addr): (usize, SocketAddr) = res?;
                let now = Instant::now();
                feed(&mut pc, local_addr, peer_addr, &buf[..n], now);
                // Drain what else is ready in this wake-up (bounded), so a
                // busy bot pays one wake-up per batch rather than per packet.
                for _ in 0..RECV_BATCH {
                    match socket.try_recv_from(&mut buf) {
                        Ok((n, peer_addr)) => feed(&mut pc, local_addr, peer_addr, &buf[..n], now),
                        Err(_) => break,
                    }
                }
            }
            _ = sleep => {
                pc.handle_timeout(Instant::now())?;
            }
        }
    }

    let end = Instant::now();
    for (_, mut inc) in incoming {
        inc.stats.freeze.finish(end);
        report.tracks.push((inc.key, inc.stats));
    }
    let _ = pc.close();
    Ok(())
}

/// Datagrams read per wake-up beyond the first.
const RECV_BATCH: usize = 64;

/// A UDP socket on loopback with room for bursts: a bot receiving many
/// tracks gets them in bursts (keyframes), and the default buffer drops them.
fn bind_socket() -> anyhow::Result<UdpSocket> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    let _ = sock.set_recv_buffer_size(4 << 20);
    let _ = sock.set_send_buffer_size(1 << 20);
    sock.set_nonblocking(true)?;
    sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    Ok(UdpSocket::from_std(sock.into())?)
}

fn feed(
    pc: &mut RTCPeerConnection,
    local_addr: SocketAddr,
    peer_addr: SocketAddr,
    data: &[u8],
    now: Instant,
) {
    // A datagram the stack refuses (a replayed or undecryptable packet) is
    // dropped; the receiver's counts show any loss it causes.
    let _ = pc.handle_read(TaggedBytesMut {
        now,
        transport: TransportContext {
            local_addr,
            peer_addr,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        },
        message: BytesMut::from(data),
    });
}

fn answer(
    pc: &mut RTCPeerConnection,
    sdp: String,
    signals: &mpsc::UnboundedSender<PeerSignal>,
) -> anyhow::Result<()> {
    pc.set_remote_description(Instant::now(), RTCSessionDescription::offer(sdp)?)?;
    let answer = pc.create_answer(None)?;
    pc.set_local_description(Instant::now(), answer.clone())?;
    let _ = signals.send(PeerSignal::Answer(answer.sdp));
    Ok(())
}

/// Sets up the packetizer once the connection is up and the payload type
/// and extension id are negotiated.
fn start_sending(
    pc: &mut RTCPeerConnection,
    out: &mut Outgoing,
    now: Instant,
) -> anyhow::Result<()> {
    let Some(mut sender) = pc.rtp_sender(out.sender) else {
        anyhow::bail!("sender vanished");
    };
    let params = sender.get_parameters();
    let Some(codec) = params.rtp_parameters.codecs.first() else {
        anyhow::bail!("no codec negotiated for a published track");
    };
    out.ext_id = params
        .rtp_parameters
        .header_extensions
        .iter()
        .find(|e| e.uri == abs_time::URI)
        .and_then(|e| u8::try_from(e.id).ok());
    let payloader = codec.rtp_codec.payloader()?;
    out.packetizer = Some(Box::new(rtc::rtp::packetizer::new_packetizer(
        now,
        MTU,
        codec.payload_type,
        out.ssrc,
        payloader,
        Box::new(rtc::rtp::sequence::new_random_sequencer()),
        out.clock_rate,
    )));
    out.player = Some(Player::new(out.clip.clone(), now));
    Ok(())
}

fn send_due(pc: &mut RTCPeerConnection, out: &mut Outgoing, now: Instant) -> anyhow::Result<()> {
    let (Some(player), Some(packetizer)) = (out.player.as_mut(), out.packetizer.as_mut()) else {
        return Ok(());
    };
    while let Some(frame) = player.poll_frame(now) {
        let packets = packetizer.packetize(now, &frame.data, frame.duration_rtp)?;
        let stamp = Bytes::copy_from_slice(&abs_time::encode(SystemTime::now()));
        let Some(mut sender) = pc.rtp_sender(out.sender) else {
            anyhow::bail!("sender vanished");
        };
        for mut p in packets {
            if let Some(id) = out.ext_id {
                p.header.set_extension(id, stamp.clone())?;
            }
            // A packet the library refuses is lost; receivers count it.
            let _ = sender.write_rtp(now, p);
        }
    }
    Ok(())
}
