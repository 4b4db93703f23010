//! A publishing bot's outgoing tracks: clips played into RTP, one encoding
//! per track or three simulcast encodings of one video track (rids `q`,
//! `h`, `f`, lowest first, as the server expects them ordered).
//!
//! Like a browser, a simulcast sender stamps every packet with the
//! transceiver's mid and the encoding's rid (the server tells the layers
//! apart by rid), answers a keyframe request on one layer's SSRC with a
//! keyframe of that layer only, and stops sending the encodings the server
//! marks inactive (dynacast), resuming with a keyframe.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp::packetizer::Packetizer;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverId};

use super::connection::{opus, vp8};
use crate::abs_time;
use crate::clip::{Clip, Player};

const MTU: usize = 1200;

/// One encoding to publish: a clip, and its rid when the track is simulcast.
#[derive(Clone)]
pub struct Encoding {
    pub rid: Option<String>,
    pub clip: Arc<Clip>,
}

/// What to publish.
#[derive(Clone)]
pub struct Publish {
    /// One encoding, or the simulcast encodings lowest first; empty: no video.
    pub video: Vec<Encoding>,
    pub audio: Option<Arc<Clip>>,
}

/// Negotiated header extension ids of a sender.
#[derive(Debug, Default, Clone, Copy)]
struct ExtIds {
    abs_time: Option<u8>,
    mid: Option<u8>,
    rid: Option<u8>,
}

struct OutEncoding {
    rid: Option<String>,
    /// The rid as the rid header extension carries it.
    rid_ext: Option<Bytes>,
    ssrc: u32,
    clip: Arc<Clip>,
    player: Option<Player>,
    packetizer: Option<Box<dyn Packetizer>>,
    /// The server has not asked to pause it (dynacast).
    active: bool,
    /// RTP packets sent while measuring.
    sent: u64,
}

/// One published track.
pub struct OutTrack {
    sender: RTCRtpSenderId,
    track_id: String,
    video: bool,
    clock_rate: u32,
    ext: ExtIds,
    /// The transceiver's mid, for the mid header extension (simulcast).
    mid: Option<Bytes>,
    encodings: Vec<OutEncoding>,
}

impl OutTrack {
    /// Adds a track of `stream_id` to the connection, before the offer.
    pub fn add(
        pc: &mut RTCPeerConnection,
        stream_id: &str,
        video: bool,
        encodings: Vec<Encoding>,
    ) -> anyhow::Result<OutTrack> {
        let codec = if video { vp8() } else { opus() };
        let kind = if video {
            RtpCodecKind::Video
        } else {
            RtpCodecKind::Audio
        };
        let label = if video { "video" } else { "audio" };
        let mut out = Vec::new();
        let mut params = Vec::new();
        for e in encodings {
            let ssrc = rand::random::<u32>();
            params.push(RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: e.rid.clone().unwrap_or_default(),
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: codec.rtp_codec.clone(),
                ..Default::default()
            });
            out.push(OutEncoding {
                rid_ext: e.rid.as_ref().map(|r| Bytes::copy_from_slice(r.as_bytes())),
                rid: e.rid,
                ssrc,
                clip: e.clip,
                player: None,
                packetizer: None,
                active: true,
                sent: 0,
            });
        }
        let track_id = format!("{stream_id}-{label}");
        let track = MediaStreamTrack::new(
            stream_id.to_owned(),
            track_id.clone(),
            format!("loadtest {label}"),
            kind,
            params,
        );
        let sender = pc.add_track(track)?;
        Ok(OutTrack {
            sender,
            track_id,
            video,
            clock_rate: codec.rtp_codec.clock_rate,
            ext: ExtIds::default(),
            mid: None,
            encodings: out,
        })
    }

    fn simulcast(&self) -> bool {
        self.encodings.iter().any(|e| e.rid.is_some())
    }

    /// Sets up the packetizers once the connection is up and payload type
    /// and extension ids are negotiated.
    pub fn start(&mut self, pc: &mut RTCPeerConnection, now: Instant) -> anyhow::Result<()> {
        let Some(mut sender) = pc.rtp_sender(self.sender) else {
            anyhow::bail!("sender vanished");
        };
        let params = sender.get_parameters();
        let Some(codec) = params.rtp_parameters.codecs.first().cloned() else {
            anyhow::bail!("no codec negotiated for a published track");
        };
        let id_of = |uri: &str| {
            params
                .rtp_parameters
                .header_extensions
                .iter()
                .find(|e| e.uri == uri)
                .and_then(|e| u8::try_from(e.id).ok())
        };
        self.ext = ExtIds {
            abs_time: id_of(abs_time::URI),
            mid: id_of(rtc::sdp::extmap::SDES_MID_URI),
            rid: id_of(rtc::sdp::extmap::SDES_RTP_STREAM_ID_URI),
        };
        if self.simulcast() {
            anyhow::ensure!(
                self.ext.mid.is_some() && self.ext.rid.is_some(),
                "the server did not accept the mid and rid header extensions simulcast needs"
            );
            let tid = RTCRtpTransceiverId::from(self.sender);
            self.mid = pc
                .rtp_transceiver(tid)
                .and_then(|t| t.mid().clone())
                .map(Bytes::from);
            anyhow::ensure!(self.mid.is_some(), "a simulcast track without a mid");
        }
        for e in self.encodings.iter_mut() {
            let payloader = codec.rtp_codec.payloader()?;
            e.packetizer = Some(Box::new(rtc::rtp::packetizer::new_packetizer(
                now,
                MTU,
                codec.payload_type,
                e.ssrc,
                payloader,
                Box::new(rtc::rtp::sequence::new_random_sequencer()),
                self.clock_rate,
            )));
            e.player = Some(Player::new(e.clip.clone(), now));
        }
        Ok(())
    }

    /// When the next frame of any encoding is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.encodings
            .iter()
            .filter_map(|e| e.player.as_ref().map(Player::poll_timeout))
            .min()
    }

    /// Packetizes and sends every frame due at `now`.
    pub fn send_due(
        &mut self,
        pc: &mut RTCPeerConnection,
        now: Instant,
        measuring: bool,
    ) -> anyhow::Result<()> {
        let mut stamp: Option<Bytes> = None;
        for e in self.encodings.iter_mut() {
            let (Some(player), Some(packetizer)) = (e.player.as_mut(), e.packetizer.as_mut())
            else {
                continue;
            };
            while let Some(frame) = player.poll_frame(now) {
                if !e.active {
                    // Paused: nothing is encoded or sent, but the RTP clock
                    // runs on, as a camera's capture clock does.
                    packetizer.skip_samples(frame.duration_rtp);
                    continue;
                }
                let packets = packetizer.packetize(now, &frame.data, frame.duration_rtp)?;
                let capture = stamp
                    .get_or_insert_with(|| {
                        Bytes::copy_from_slice(&abs_time::encode(SystemTime::now()))
                    })
                    .clone();
                let Some(mut sender) = pc.rtp_sender(self.sender) else {
                    anyhow::bail!("sender vanished");
                };
                for mut p in packets {
                    if let Some(id) = self.ext.abs_time {
                        p.header.set_extension(id, capture.clone())?;
                    }
                    if let (Some(rid), Some(rid_id), Some(mid), Some(mid_id)) =
                        (&e.rid_ext, self.ext.rid, &self.mid, self.ext.mid)
                    {
                        p.header.set_extension(mid_id, mid.clone())?;
                        p.header.set_extension(rid_id, rid.clone())?;
                    }
                    // A packet the library refuses is lost; receivers count it.
                    if sender.write_rtp(now, p).is_ok() && measuring {
                        e.sent += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// A keyframe request (PLI or FIR) for `ssrc`: that encoding jumps to
    /// its clip's next keyframe. Returns whether the SSRC is this track's.
    pub fn request_keyframe(&mut self, ssrc: u32) -> bool {
        let mut hit = false;
        for e in self.encodings.iter_mut().filter(|e| e.ssrc == ssrc) {
            if let Some(p) = e.player.as_mut() {
                p.request_keyframe();
            }
            hit = true;
        }
        hit
    }

    /// A keyframe request that names no SSRC of ours: every encoding of a
    /// video track sends one.
    pub fn request_keyframe_all(&mut self) {
        if self.video {
            for p in self.encodings.iter_mut().filter_map(|e| e.player.as_mut()) {
                p.request_keyframe();
            }
        }
    }

    /// Applies `publisher-encodings` (dynacast) when it names this track:
    /// encodings marked inactive stop, reactivated ones restart at a
    /// keyframe. An entry without a rid names a track's single encoding.
    /// Returns how many encodings changed state.
    pub fn set_active(&mut self, track: &str, states: &[(Option<String>, bool)]) -> u64 {
        if track != self.track_id {
            return 0;
        }
        let mut changed = 0;
        for (rid, active) in states {
            for e in self.encodings.iter_mut().filter(|e| e.rid == *rid) {
                if e.active == *active {
                    continue;
                }
                e.active = *active;
                changed += 1;
                if *active {
                    if let Some(p) = e.player.as_mut() {
                        p.restart_at_keyframe();
                    }
                }
            }
        }
        changed
    }

    /// Packets sent in the window per encoding: its rid, or the kind.
    pub fn sent(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        let kind = if self.video { "video" } else { "audio" };
        self.encodings
            .iter()
            .map(move |e| (e.rid.clone().unwrap_or_else(|| kind.to_owned()), e.sent))
    }
}
