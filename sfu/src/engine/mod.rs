//! How every server-side peer connection is built: codecs, header
//! extensions, interceptors, ICE-lite with known credentials, and the one
//! host candidate on the shared port.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{
    Interceptor, NackGeneratorBuilder, ReceiverReportBuilder, Registry, SenderReportBuilder, Slot,
    TwccReceiverBuilder,
};
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_AV1, MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8,
    MIME_TYPE_VP9,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::shared::error::Error;

use crate::core::{extmap, sdp};

mod read_side;
pub mod srtp_keys;
mod taps;
use read_side::ReadSide;
pub use read_side::Reads;
use taps::{FeedbackTap, RepairUnwrap};

/// One codec the server can forward.
struct CodecSpec {
    name: &'static str,
    kind: RtpCodecKind,
    mime: &'static str,
    clock_rate: u32,
    channels: u16,
    fmtp: &'static str,
    pt: u8,
}

const CODECS: &[CodecSpec] = &[
    CodecSpec {
        name: "opus",
        kind: RtpCodecKind::Audio,
        mime: MIME_TYPE_OPUS,
        clock_rate: 48_000,
        channels: 2,
        fmtp: "minptime=10;useinbandfec=1",
        pt: 111,
    },
    CodecSpec {
        name: "vp8",
        kind: RtpCodecKind::Video,
        mime: MIME_TYPE_VP8,
        clock_rate: 90_000,
        channels: 0,
        fmtp: "",
        pt: 96,
    },
    CodecSpec {
        name: "h264",
        kind: RtpCodecKind::Video,
        mime: MIME_TYPE_H264,
        clock_rate: 90_000,
        channels: 0,
        fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        pt: 102,
    },
    CodecSpec {
        name: "h264",
        kind: RtpCodecKind::Video,
        mime: MIME_TYPE_H264,
        clock_rate: 90_000,
        channels: 0,
        fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
        pt: 104,
    },
    CodecSpec {
        name: "vp9",
        kind: RtpCodecKind::Video,
        mime: MIME_TYPE_VP9,
        clock_rate: 90_000,
        channels: 0,
        fmtp: "profile-id=0",
        pt: 98,
    },
    CodecSpec {
        name: "av1",
        kind: RtpCodecKind::Video,
        mime: MIME_TYPE_AV1,
        clock_rate: 90_000,
        channels: 0,
        fmtp: "",
        pt: 45,
    },
];

/// The library's codec description of a codec as an SDP section numbers it.
pub fn rtp_codec(c: &sdp::Codec, kind: RtpCodecKind) -> RTCRtpCodec {
    let mime = match c.name.as_str() {
        "opus" => MIME_TYPE_OPUS.to_owned(),
        "vp8" => MIME_TYPE_VP8.to_owned(),
        "vp9" => MIME_TYPE_VP9.to_owned(),
        "h264" => MIME_TYPE_H264.to_owned(),
        "av1" => MIME_TYPE_AV1.to_owned(),
        other => format!(
            "{}/{other}",
            if kind == RtpCodecKind::Audio {
                "audio"
            } else {
                "video"
            }
        ),
    };
    RTCRtpCodec {
        mime_type: mime,
        clock_rate: c.clock_rate,
        channels: c.channels,
        sdp_fmtp_line: c.fmtp.clone(),
        rtcp_feedback: Vec::new(),
    }
}

/// The codec names `[media] codecs` accepts.
pub const CODEC_NAMES: &[&str] = &["opus", "vp8", "h264", "vp9", "av1"];

fn video_feedback() -> Vec<RTCPFeedback> {
    [("nack", ""), ("nack", "pli"), ("ccm", "fir")]
        .iter()
        .map(|(t, p)| RTCPFeedback {
            typ: t.to_string(),
            parameter: p.to_string(),
        })
        .collect()
}

/// Registers the configured codecs (in the configured order) and the
/// header extensions the forwarder carries.
pub fn media_engine(codecs: &[String]) -> Result<MediaEngine, Error> {
    let mut me = MediaEngine::default();
    for name in codecs {
        let name = name.to_ascii_lowercase();
        for spec in CODECS.iter().filter(|c| c.name == name) {
            let feedback = if spec.kind == RtpCodecKind::Video {
                video_feedback()
            } else {
                Vec::new()
            };
            me.register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: RTCRtpCodec {
                        mime_type: spec.mime.to_owned(),
                        clock_rate: spec.clock_rate,
                        channels: spec.channels,
                        sdp_fmtp_line: spec.fmtp.to_owned(),
                        rtcp_feedback: feedback,
                    },
                    payload_type: spec.pt,
                },
                spec.kind,
            )?;
            // RTX (RFC 4588) beside every video codec, at the next payload
            // type: publishers then retransmit on a flow of their own, which
            // the SRTP replay window and the NACK generator keep apart from
            // the media (and simulcast layers repair through rrid, see
            // `core::repair`).
            if spec.kind == RtpCodecKind::Video {
                me.register_codec(
                    RTCRtpCodecParameters {
                        rtp_codec: RTCRtpCodec {
                            mime_type: MIME_TYPE_RTX.to_owned(),
                            clock_rate: spec.clock_rate,
                            channels: 0,
                            sdp_fmtp_line: format!("apt={}", spec.pt),
                            rtcp_feedback: Vec::new(),
                        },
                        payload_type: spec.pt + 1,
                    },
                    spec.kind,
                )?;
            }
        }
    }
    // The library numbers extensions in the order they are registered, and
    // our offers carry those numbers. They are Chromium's own where we
    // share an extension with it, and numbers Chromium does not use
    // otherwise: a page that added its own transceivers before our offer
    // arrived (and rolled its offer back) numbers its new sections with its
    // defaults, and Chromium refuses a BUNDLE whose sections give one
    // number to two extensions ("codec collision for header extension").
    // Placeholders (registered for no media kind, so never offered) hold
    // the numbers Chromium uses for extensions we do not negotiate.
    const AUDIO: &[RtpCodecKind] = &[RtpCodecKind::Audio];
    const VIDEO: &[RtpCodecKind] = &[RtpCodecKind::Video];
    const BOTH: &[RtpCodecKind] = &[RtpCodecKind::Audio, RtpCodecKind::Video];
    const NONE: &[RtpCodecKind] = &[RtpCodecKind::Unspecified];
    let numbered: [(&str, &[RtpCodecKind]); 13] = [
        (extmap::AUDIO_LEVEL, AUDIO),           // 1
        (extmap::ABS_SEND_TIME, BOTH),          // 2
        (extmap::TRANSPORT_CC, BOTH),           // 3
        (extmap::MID, BOTH),                    // 4
        (extmap::PLAYOUT_DELAY, NONE),          // 5
        (extmap::VIDEO_CONTENT_TYPE, NONE),     // 6
        (extmap::VIDEO_TIMING, NONE),           // 7
        (extmap::COLOR_SPACE, NONE),            // 8
        (extmap::ABS_CAPTURE_TIME, BOTH),       // 9
        (extmap::RID, VIDEO),                   // 10
        (extmap::REPAIRED_RID, VIDEO),          // 11
        (extmap::DEPENDENCY_DESCRIPTOR, VIDEO), // 12: for AV1's layers
        (extmap::VIDEO_ORIENTATION, VIDEO),     // 13
    ];
    for (uri, kinds) in numbered {
        for &kind in kinds {
            me.register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: uri.to_owned(),
                },
                kind,
                None,
            )?;
        }
    }
    Ok(me)
}

/// What a peer connection needs to know about its shard's socket.
#[derive(Clone, Debug)]
pub struct PeerSetup {
    pub codecs: Vec<String>,
    /// Address and port put in the host candidate(s).
    pub advertise: Vec<SocketAddr>,
    pub ufrag: String,
    pub pwd: String,
    /// Counts RTP that arrives on no negotiated track (shared by a shard's
    /// connections; the library drops such packets without a word).
    pub unknown_ssrc: Arc<AtomicU64>,
    /// Counts rrid-tagged retransmissions that repair nothing: padding
    /// (bandwidth probes) and rids no media arrived on.
    pub unusable_repairs: Arc<AtomicU64>,
    /// The full end of a node-to-node relay (see
    /// `signaling::media::RelayEnd`): a full ICE agent (the controlling
    /// side against the other node's ICE-lite end), DTLS client when it
    /// answers. `false`: a participant's connection (ICE-lite, DTLS server).
    pub relay_full: bool,
    /// RTP and RTCP that passed SRTP and parsing (what did not was refused).
    pub srtp_ok: Arc<AtomicU64>,
    /// The connection's crypto provider, which learns its SRTP keys (see
    /// [`srtp_keys`]); `None`: the library's default.
    pub keys: Option<Arc<srtp_keys::KeyTap>>,
}

/// How long a connection may go without a consent check from the client
/// before it is `disconnected`. RFC 7675 lets an agent check every 4 to 6
/// seconds and revokes consent only after 30 seconds without one; the
/// library's default (5 s) made connections to agents that check every 5
/// to 6 s (aiortc) flap every few seconds.
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);
/// After `disconnected`, how much longer until `failed`.
pub const FAILED_AFTER_DISCONNECT: Duration = Duration::from_secs(10);

/// Builds a server-side peer connection: ICE-lite with the given
/// credentials, host candidates on the shared port, NACK generation towards
/// publishers, receiver/sender reports, transport-wide-cc feedback to
/// publishers, and inbound keyframe requests and NACKs delivered to us.
///
/// The library's NACK responder is left out on purpose: the forwarder
/// answers NACKs from its own per-leg cache (it knows the rewritten numbers).
///
/// Also returns the shard's handle on the connection's read-side
/// interceptors, for the RTP it decrypts itself (`core::srtp_in`).
pub fn build_peer(setup: &PeerSetup, now: Instant) -> Result<(RTCPeerConnection, Reads), Error> {
    let mut me = media_engine(&setup.codecs)?;
    // The transport-wide-cc recorder sits wire-ward of RepairUnwrap (which
    // drops RTX padding it cannot use): a browser probes its bandwidth with
    // exactly that padding, and a probe missing from our feedback reads as
    // lost, which holds its estimate, and its top simulcast layers, down.
    // (The library's slot for it is above the NACK generator; nothing here
    // paces, so nothing below needs its feedback to pass a pacer.)
    //
    // Every interceptor but the sender reports only reads: they sit behind
    // one link of the chain, which writes pass straight by (`ReadSide`).
    // The order within is the order reads take.
    let read_side: Vec<Box<dyn Interceptor>> = vec![
        Box::new(TwccReceiverBuilder::new().build()),
        Box::new(RepairUnwrap::new(setup.unusable_repairs.clone())),
        Box::new(NackGeneratorBuilder::new().build()),
        Box::new(ReceiverReportBuilder::new().build()),
        Box::new(FeedbackTap::new(
            setup.unknown_ssrc.clone(),
            setup.srtp_ok.clone(),
        )),
    ];
    let (read_side, reads) = ReadSide::new(read_side);
    let registry = Registry::new()
        .with(Slot::from(5_500), read_side)
        .with(Slot::SenderReport, SenderReportBuilder::new().build());
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        me.register_feedback(
            RTCPFeedback {
                typ: "transport-cc".to_owned(),
                ..Default::default()
            },
            kind,
        );
        me.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: extmap::TRANSPORT_CC.to_owned(),
            },
            kind,
            None,
        )?;
    }

    use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile as P;
    let mut settings = SettingEngineBuilder::new();
    if let Some(tap) = &setup.keys {
        settings = settings.with_crypto_provider(tap.clone());
    }
    let settings = settings
        .with_lite(!setup.relay_full)
        .with_ice_credentials(setup.ufrag.clone(), setup.pwd.clone())
        // Never resolve a client's `.local` candidates: an ICE-lite server
        // does not need them, and a query would put names a client chose
        // on the server's network as multicast DNS (the default queries).
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        // An ICE-lite agent never sends checks, so no keep-alive interval.
        .with_ice_timeouts(Some(CONSENT_TIMEOUT), Some(FAILED_AFTER_DISCONNECT), None)
        .with_srtp_protection_profiles(vec![
            P::Srtp_Aead_Aes_128_Gcm,
            P::Srtp_Aes128_Cm_Hmac_Sha1_80,
        ])
        // A client that does not use RTX retransmits on the media SSRC, so
        // a repaired packet arrives late: the default window of 64 would
        // reject it as a replay.
        .with_srtp_replay_protection_window(1024)
        // Answer as the DTLS server. Browsers answer our offers `active`
        // (DTLS client), so the server is the DTLS server whoever offered
        // first, and a later answer of ours never contradicts the role the
        // first negotiation settled (the library's default, `active`,
        // would when the server had offered first).
        .with_answering_dtls_role(if setup.relay_full {
            // The other node's end answers as DTLS server; when this end
            // answers a renegotiation it keeps the client role it has.
            rtc::peer_connection::transport::RTCDtlsRole::Client
        } else {
            rtc::peer_connection::transport::RTCDtlsRole::Server
        })
        .build();
    let config = RTCConfigurationBuilder::new().build();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(config)
        .with_setting_engine(settings)
        .with_media_engine(me)
        .with_interceptor_registry(registry)
        .build(now)?;
    for addr in &setup.advertise {
        add_host_candidate(&mut pc, *addr)?;
    }
    Ok((pc, reads))
}

/// Adds a UDP host candidate at `addr` to a connection's local candidates.
pub fn add_host_candidate(pc: &mut RTCPeerConnection, addr: SocketAddr) -> Result<(), Error> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)?;
    Ok(())
}

/// How long a peer that never completes ICE is kept.
pub const _CONNECT_GRACE: Duration = Duration::from_secs(30);
