//! Building a bot's `rtc` peer connection and its socket: the codecs and
//! header extensions it offers and accepts, and the interceptors that make
//! it behave like a browser (NACK, receiver reports, transport-wide
//! congestion control feedback).

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use bytes::BytesMut;
use rtc::interceptor::{Attribute, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::interceptor::{NackGeneratorBuilder, NackResponderBuilder};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc,
};
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability,
    RtpCodecKind, TYPE_RTCP_FB_NACK,
};
use rtc::sansio::Protocol;
use rtc::shared::error::Error as RtcError;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use sfu::{batch_recv, read_only};
use tokio::io::unix::AsyncFd;

use crate::abs_time;

/// NACKs sent for one missing packet before giving it up.
const MAX_NACKS_PER_PACKET: u16 = 10;

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

pub fn vp8() -> RTCRtpCodecParameters {
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

pub fn opus() -> RTCRtpCodecParameters {
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

/// A peer connection configured like a browser's, as far as the server can
/// tell: VP8 and Opus; abs-capture-time; mid, rid and repaired-rid (for
/// simulcast); NACK and PLI; receiver and sender reports; and
/// transport-wide congestion control both ways: sequence numbers on what
/// the bot sends, and transport-cc feedback (every 100 ms) on what it
/// receives, which the server's send-side bandwidth estimation needs.
pub fn build() -> Result<RTCPeerConnection, RtcError> {
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
    let registry = configure_twcc(registry, &mut media)?;
    let registry = configure_rtcp_reports(registry);
    // No ICE servers: bots talk to a server on loopback only.
    let config = RTCConfigurationBuilder::new().build();
    RTCPeerConnectionBuilder::new()
        .with_configuration(config)
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .build(Instant::now())
}

/// A UDP socket on loopback with room for bursts: a bot receiving many
/// tracks gets them in bursts (keyframes), and the default buffer drops them.
///
/// The kernel stamps each datagram with its arrival, so the bot can tell
/// the latency of the path to its socket from the time it took to read it
/// (a bot sharing the machine with the server reads late once the machine
/// is full). The socket is polled for reading only: sends that cannot be
/// made at once are dropped, as on a full link, and a readiness wake-up
/// for every datagram sent would be wasted.
pub fn bind_socket() -> anyhow::Result<AsyncFd<UdpSocket>> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    let _ = sock.set_recv_buffer_size(4 << 20);
    let _ = sock.set_send_buffer_size(1 << 20);
    sock.set_nonblocking(true)?;
    sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    let sock: UdpSocket = sock.into();
    batch_recv::enable_arrival_info(&sock)?;
    Ok(read_only::register(sock)?)
}

/// Hands one datagram to the connection.
pub fn feed(
    pc: &mut RTCPeerConnection,
    local_addr: SocketAddr,
    peer_addr: SocketAddr,
    message: BytesMut,
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
        message,
    });
}
