//! A published track as the shard knows it: its streams (one per
//! simulcast encoding), what each incoming packet is (read once for all
//! subscribers), and the numbers the publisher's SDP gives it.

use std::time::{Duration, Instant};

use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::RTCRtpReceiverId;

use crate::core::codec::dd::DdReader;
use crate::core::codec::{frame_info, CodecKind, Desc, FrameInfo};
use crate::core::extmap;
use crate::core::ids::PeerKey;
use crate::core::keyframe::KeyframeThrottle;
use crate::core::sdp;
use crate::core::seq::{media_time, seq_newer};
use crate::stats::Drop;

/// A stream that sent nothing for this long is taken as stopped (paused
/// by its encoder, or by dynacast).
pub const STREAM_IDLE: Duration = Duration::from_millis(1500);

/// How many sequence numbers back from the newest a stream remembers
/// which arrived (a multiple of 64 that divides 65536).
const RECEIVED_WINDOW: u16 = 512;

/// Spatial layers a stream's rate is measured for, one slot each (VP9
/// numbers up to 8 in 3 bits, AV1's dependency descriptor up to 4).
/// Higher ones, which no codec here can name, share the top slot.
pub const SPATIAL_SLOTS: usize = 8;

/// Temporal layers a stream's rate is measured for, per spatial slot
/// (VP8 and VP9 name up to 8, encoders send up to 4). Higher ones share
/// the top slot.
pub const TEMPORAL_SLOTS: usize = 4;

/// What an arriving packet is to its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Newer than any before.
    New,
    /// Older than the newest and not seen before: a repair of a loss.
    Repair,
    /// A packet that already arrived, sent again.
    Duplicate,
}

/// One simulcast encoding (or the one stream of a plain track).
pub struct InStream {
    pub rid: Option<String>,
    pub ssrc: u32,
    highest_seq: Option<u16>,
    /// The RTP timestamp of the packet with `highest_seq`: how far behind
    /// the stream a repair comes, in media time.
    highest_ts: u32,
    /// Which of the last `RECEIVED_WINDOW` sequence numbers up to the
    /// newest arrived, one bit each, indexed by the number modulo the
    /// window.
    received: [u64; RECEIVED_WINDOW as usize / 64],
    pub last_packet: Option<Instant>,
    /// Coded size from the last keyframe, when the codec tells it.
    pub size: Option<(u16, u16)>,
    pub keyframe: KeyframeThrottle,
    /// The stream's dependency descriptor structure (each simulcast
    /// encoding sends its own).
    dd: DdReader,
    /// Bytes in the current one-second window and the rate of the last,
    /// per spatial layer (SVC; all in slot 0 otherwise) and temporal
    /// layer: what a subscriber's link carries for a target is the sum up
    /// to it, see [`InStream::rate_up_to`].
    window_start: Option<Instant>,
    layer_bytes: [[u64; TEMPORAL_SLOTS]; SPATIAL_SLOTS],
    layer_bitrate: [[u64; TEMPORAL_SLOTS]; SPATIAL_SLOTS],
}

impl InStream {
    pub fn new(rid: Option<String>, ssrc: u32, keyframe: KeyframeThrottle) -> Self {
        InStream {
            rid,
            ssrc,
            highest_seq: None,
            highest_ts: 0,
            received: [0; RECEIVED_WINDOW as usize / 64],
            last_packet: None,
            size: None,
            keyframe,
            dd: DdReader::default(),
            window_start: None,
            layer_bytes: [[0; TEMPORAL_SLOTS]; SPATIAL_SLOTS],
            layer_bitrate: [[0; TEMPORAL_SLOTS]; SPATIAL_SLOTS],
        }
    }

    /// The rate of the last window's packets, bit/s (0 before a window
    /// has ended).
    pub fn bitrate(&self) -> u64 {
        self.layer_bitrate.iter().flatten().sum()
    }

    /// The rate of the last window's packets of spatial layers up to
    /// `spatial` and temporal layers up to `temporal`: what the selectors
    /// forward for that target (SVC keeps every lower spatial layer,
    /// `core/layer/svc.rs`; both keep every lower temporal layer). 0
    /// before a window has ended.
    pub fn rate_up_to(&self, spatial: u8, temporal: u8) -> u64 {
        let n = (spatial as usize + 1).min(SPATIAL_SLOTS);
        let m = (temporal as usize + 1).min(TEMPORAL_SLOTS);
        self.layer_bitrate[..n]
            .iter()
            .map(|t| t[..m].iter().sum::<u64>())
            .sum()
    }

    /// Whether spatial layer `spatial` had packets in the last window.
    pub fn layer_seen(&self, spatial: u8) -> bool {
        self.layer_bitrate
            .get(spatial as usize)
            .is_some_and(|t| t.iter().any(|b| *b > 0))
    }

    /// How many temporal layers the last window had packets of (the
    /// highest seen, plus one; 0 before a window has ended).
    pub fn temporal_layers(&self) -> u8 {
        (0..TEMPORAL_SLOTS)
            .rev()
            .find(|&t| self.layer_bitrate.iter().any(|s| s[t] > 0))
            .map_or(0, |t| t as u8 + 1)
    }

    /// Whether media arrived on it recently.
    pub fn active(&self, now: Instant) -> bool {
        self.last_packet
            .is_some_and(|t| now.saturating_duration_since(t) < STREAM_IDLE)
    }

    /// Notes a packet and says what it is. A duplicate is not counted:
    /// browsers probe their uplink with RTX packets that repeat media
    /// already sent, and one the server got already repairs nothing. Sent
    /// on under its first copy's numbers, a subscriber would discard it
    /// (SRTP replay protection) without acknowledging it in its
    /// transport-cc feedback, which the subscriber's bandwidth estimate
    /// takes for loss; counted, it would inflate the stream's measured
    /// rate, which the allocator compares with the estimate.
    fn on_packet(&mut self, seq: u16, ts: u32, now: Instant) -> Arrival {
        let arrival = match self.highest_seq {
            Some(h) if !seq_newer(seq, h) => {
                if h.wrapping_sub(seq) < RECEIVED_WINDOW && self.seen(seq) {
                    Arrival::Duplicate
                } else {
                    // Too old to tell is taken as a repair, as before.
                    Arrival::Repair
                }
            }
            Some(h) => {
                // Numbers skipped on the way up have not arrived (yet).
                let ahead = seq.wrapping_sub(h);
                if ahead >= RECEIVED_WINDOW {
                    self.received = [0; RECEIVED_WINDOW as usize / 64];
                } else {
                    for n in 1..ahead {
                        self.set_seen(h.wrapping_add(n), false);
                    }
                }
                self.highest_seq = Some(seq);
                self.highest_ts = ts;
                Arrival::New
            }
            None => {
                self.highest_seq = Some(seq);
                self.highest_ts = ts;
                Arrival::New
            }
        };
        if arrival == Arrival::Duplicate {
            return arrival;
        }
        self.set_seen(seq, true);
        self.last_packet = Some(now);
        arrival
    }

    /// Counts a packet that is not a duplicate in the rate windows, under
    /// its layer. No allocation: this is the per-packet path.
    fn count(&mut self, bytes: usize, spatial: u8, temporal: u8, now: Instant) {
        match self.window_start {
            Some(t) if now.saturating_duration_since(t) >= Duration::from_secs(1) => {
                let secs = now.saturating_duration_since(t).as_secs_f64();
                let rate = |b: u64| (b as f64 * 8.0 / secs) as u64;
                let slots = self.layer_bitrate.iter_mut().zip(&mut self.layer_bytes);
                for (r, b) in slots.flat_map(|(r, b)| r.iter_mut().zip(b)) {
                    *r = rate(*b);
                    *b = 0;
                }
                self.window_start = Some(now);
            }
            None => self.window_start = Some(now),
            _ => {}
        }
        let s = (spatial as usize).min(SPATIAL_SLOTS - 1);
        let t = (temporal as usize).min(TEMPORAL_SLOTS - 1);
        self.layer_bytes[s][t] += bytes as u64;
    }

    fn seen(&self, seq: u16) -> bool {
        let i = (seq % RECEIVED_WINDOW) as usize;
        self.received[i / 64] & (1 << (i % 64)) != 0
    }

    fn set_seen(&mut self, seq: u16, seen: bool) {
        let i = (seq % RECEIVED_WINDOW) as usize;
        if seen {
            self.received[i / 64] |= 1 << (i % 64);
        } else {
            self.received[i / 64] &= !(1 << (i % 64));
        }
    }
}

/// A track a participant publishes.
pub struct Published {
    pub publisher: PeerKey,
    pub receiver: RTCRtpReceiverId,
    /// The publisher's participant id: the forwarded stream id.
    pub stream_id: String,
    /// The id in the publisher's own msid: the forwarded track id.
    pub track_id: String,
    pub kind: RtpCodecKind,
    /// The publisher's media section for this track.
    pub mid: String,
    /// As the publisher's latest SDP numbers them, preferred first.
    pub codecs: Vec<sdp::Codec>,
    /// `(id, uri)` header extensions of the publisher's latest SDP.
    pub exts: Vec<(u8, String)>,
    /// The rids the publisher sends, lowest quality first (empty: no
    /// simulcast).
    pub rids: Vec<String>,
    /// Streams as they open, in no particular order; see [`Self::stream_index`].
    pub streams: Vec<InStream>,
    /// Spatial layers seen within the stream (SVC: VP9 or AV1 with more
    /// than one).
    pub spatial_layers: u8,
    /// Size of each spatial layer, when the stream says (VP9's
    /// scalability structure, AV1's dependency descriptor).
    pub layer_sizes: Vec<(u16, u16)>,
    /// Dynacast: what the publisher was last told to send, per stream
    /// index, and since when each has been unneeded.
    pub encodings_told: Vec<bool>,
    pub unneeded_since: Vec<Option<Instant>>,
    /// SVC dynacast: how many spatial layers the publisher was last told
    /// to encode (`None`: all), and since when fewer have been enough.
    pub spatial_told: Option<u8>,
    pub spatial_unneeded_since: Option<Instant>,
    /// A track that came over a relay: when its node was last told which
    /// streams this one needs (told again every `RELAY_NEEDS_EVERY`, as a
    /// node message can be lost).
    pub relay_told_at: Option<Instant>,
    dd_id: Option<u8>,
    audio_level_id: Option<u8>,
    /// Smoothed audio level, 0 (silence) to 1.
    pub level: f32,
}

impl Published {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        publisher: PeerKey,
        receiver: RTCRtpReceiverId,
        stream_id: String,
        track_id: String,
        kind: RtpCodecKind,
        section: sdp::Media,
    ) -> Self {
        let mut p = Published {
            publisher,
            receiver,
            stream_id,
            track_id,
            kind,
            mid: section.mid.clone().unwrap_or_default(),
            codecs: Vec::new(),
            exts: Vec::new(),
            rids: Vec::new(),
            streams: Vec::new(),
            spatial_layers: 1,
            layer_sizes: Vec::new(),
            encodings_told: Vec::new(),
            unneeded_since: Vec::new(),
            spatial_told: None,
            spatial_unneeded_since: None,
            relay_told_at: None,
            dd_id: None,
            audio_level_id: None,
            level: 0.0,
        };
        p.renumber(&section);
        p
    }

    /// Takes the numbers of the publisher's latest SDP; true if they changed.
    pub fn renumber(&mut self, section: &sdp::Media) -> bool {
        if self.codecs == section.codecs && self.exts == section.extmaps {
            return false;
        }
        self.codecs = section.codecs.clone();
        self.exts = section.extmaps.clone();
        // A description that leaves the rids out (an answer from a client
        // that was not asked for simulcast) does not stop the streams
        // already running: forgetting their rids would rank them all 0.
        if !section.send_rids.is_empty() {
            self.rids = section.send_rids.clone();
        }
        self.dd_id = section.extmap_id(extmap::DEPENDENCY_DESCRIPTOR);
        self.audio_level_id = section.extmap_id(extmap::AUDIO_LEVEL);
        true
    }

    pub fn is_video(&self) -> bool {
        self.kind == RtpCodecKind::Video
    }

    /// One stream with several spatial layers (VP9 or AV1 SVC), seen in
    /// its packets: its layers are allocated one by one.
    pub fn svc(&self) -> bool {
        self.rids.is_empty() && self.spatial_layers > 1 && self.is_video()
    }

    /// A video with lower layers to fall back to: simulcast streams, or an
    /// SVC stream's spatial layers.
    pub fn layered(&self) -> bool {
        self.is_video() && (!self.rids.is_empty() || self.svc())
    }

    /// Adds a stream (a simulcast encoding that just opened); returns its
    /// position in `streams`.
    pub fn add_stream(&mut self, rid: Option<String>, ssrc: u32, keyframe: KeyframeThrottle) {
        if let Some(s) = self.streams.iter_mut().find(|s| s.rid == rid) {
            if s.ssrc != ssrc {
                // Another SSRC numbers its packets afresh: none of them
                // arrived before.
                s.highest_seq = None;
                s.received = [0; RECEIVED_WINDOW as usize / 64];
            }
            s.ssrc = ssrc;
            return;
        }
        self.streams.push(InStream::new(rid, ssrc, keyframe));
    }

    /// The quality rank of a stream: its rid's place in the publisher's
    /// list (lowest first), 0 without simulcast.
    pub fn stream_index(&self, stream: &InStream) -> u8 {
        stream
            .rid
            .as_ref()
            .and_then(|r| self.rids.iter().position(|x| x == r))
            .unwrap_or(0) as u8
    }

    /// The stream with a given quality rank.
    pub fn stream_by_index(&self, index: u8) -> Option<&InStream> {
        self.streams.iter().find(|s| self.stream_index(s) == index)
    }

    pub fn stream_by_index_mut(&mut self, index: u8) -> Option<&mut InStream> {
        let at = self
            .streams
            .iter()
            .position(|s| self.stream_index(s) == index)?;
        self.streams.get_mut(at)
    }

    /// How many streams a subscriber may be switched between.
    pub fn stream_count(&self) -> u8 {
        (self.rids.len().max(1)) as u8
    }

    pub fn codec_kind(&self, pt: u8) -> CodecKind {
        self.codecs
            .iter()
            .find(|c| c.pt == pt)
            .map_or(CodecKind::Other, |c| CodecKind::from_name(&c.name))
    }

    /// Reads an incoming packet once for every subscriber: its stream, the
    /// layer and picture information, whether it is a repair. An error: a
    /// packet of no stream of this track, or one that already arrived.
    pub fn read(&mut self, pkt: &Packet, now: Instant) -> Result<Incoming, Drop> {
        let ssrc = pkt.header.ssrc;
        let at = self
            .streams
            .iter()
            .position(|s| s.ssrc == ssrc)
            .ok_or(Drop::NotPermitted)?;
        let stream = self.stream_index(&self.streams[at]);
        let codec = self.codec_kind(pkt.header.payload_type);
        let size = 12 + pkt.payload.len();
        let h = &pkt.header;
        let (retransmission, lateness) =
            match self.streams[at].on_packet(h.sequence_number, h.timestamp, now) {
                Arrival::New => (false, Duration::ZERO),
                Arrival::Repair => (
                    true,
                    media_time(
                        self.streams[at].highest_ts.wrapping_sub(h.timestamp),
                        self.clock_rate(h.payload_type),
                    ),
                ),
                Arrival::Duplicate => return Err(Drop::UnusableRepair),
            };
        if self.kind == RtpCodecKind::Audio {
            self.streams[at].count(size, 0, 0, now);
            if let Some(l) = self
                .audio_level_id
                .and_then(|id| pkt.header.get_extension(id))
                .and_then(|v| v.first().copied())
            {
                self.on_audio_level(l);
            }
            return Ok(Incoming {
                stream,
                codec,
                retransmission,
                lateness,
                info: FrameInfo::default(),
            });
        }
        let dd = self
            .dd_id
            .filter(|_| matches!(codec, CodecKind::Av1 | CodecKind::Vp8))
            .and_then(|id| pkt.header.get_extension(id))
            .and_then(|v| self.streams[at].dd.read(&v));
        let info = frame_info(codec, &pkt.payload, dd.as_ref());
        self.streams[at].count(size, info.spatial, info.temporal, now);
        if info.spatial + 1 > self.spatial_layers {
            self.spatial_layers = info.spatial + 1;
        }
        if info.keyframe {
            let (size, layers) = match &info.desc {
                Desc::Vp8(d) => (d.keyframe_size(&pkt.payload), Vec::new()),
                Desc::Vp9(d) => (d.resolutions.last().copied(), d.resolutions.clone()),
                Desc::None => {
                    let r = self.streams[at]
                        .dd
                        .structure()
                        .map(|s| s.resolutions.clone())
                        .unwrap_or_default();
                    (r.last().copied(), r)
                }
            };
            if size.is_some() {
                self.streams[at].size = size;
            }
            // A publisher told to drop its top spatial layers (dynacast)
            // describes only the ones it keeps: the sizes of the others
            // are kept, for the subscribers that may ask for them again.
            if layers.len() >= self.layer_sizes.len() {
                self.layer_sizes = layers;
            } else {
                self.layer_sizes[..layers.len()].copy_from_slice(&layers);
            }
        }
        Ok(Incoming {
            stream,
            codec,
            retransmission,
            lateness,
            info,
        })
    }

    /// The clock rate of payload type `pt`, as negotiated; for one not
    /// negotiated, that of every codec of the kind we take (Opus 48 kHz,
    /// video 90 kHz).
    fn clock_rate(&self, pt: u8) -> u32 {
        self.codecs.iter().find(|c| c.pt == pt).map_or(
            if self.kind == RtpCodecKind::Audio {
                48_000
            } else {
                90_000
            },
            |c| c.clock_rate,
        )
    }

    /// RFC 6464: the level byte carries -dBov in its low 7 bits (0 is the
    /// loudest, 127 silence). Smoothed as a linear amplitude so a short
    /// burst lifts it quickly and silence lets it fall over a few tenths
    /// of a second.
    fn on_audio_level(&mut self, byte: u8) {
        let dbov = (byte & 0x7f) as f32;
        let amplitude = 10f32.powf(-dbov / 20.0);
        let a = if amplitude > self.level { 0.3 } else { 0.05 };
        self.level += a * (amplitude - self.level);
    }
}

/// An incoming packet read once for all subscribers.
pub struct Incoming {
    pub stream: u8,
    pub codec: CodecKind,
    pub retransmission: bool,
    /// For a repair: how far behind its stream's newest packet it is, in
    /// media time (RTP timestamps); zero otherwise.
    pub lateness: Duration,
    pub info: FrameInfo,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::codec::FrameInfo;
    use crate::core::layer::{Layer, LayerPacket, Svc, Verdict};

    fn stream() -> InStream {
        InStream::new(None, 1, KeyframeThrottle::new(Duration::from_millis(500)))
    }

    /// As `Published::read` does: noted, then counted unless a duplicate.
    fn arrive(s: &mut InStream, seq: u16, now: Instant) -> Arrival {
        let a = s.on_packet(seq, 0, now);
        if a != Arrival::Duplicate {
            s.count(100, 0, 0, now);
        }
        a
    }

    #[test]
    fn a_packet_that_already_arrived_is_a_duplicate_and_a_missing_one_a_repair() {
        let now = Instant::now();
        let mut s = stream();
        // Across the wrap, 65534 and 1 missing.
        for seq in [65_533u16, 65_535, 0, 2] {
            assert_eq!(arrive(&mut s, seq, now), Arrival::New);
        }
        assert_eq!(arrive(&mut s, 65_534, now), Arrival::Repair);
        assert_eq!(arrive(&mut s, 65_534, now), Arrival::Duplicate);
        assert_eq!(arrive(&mut s, 2, now), Arrival::Duplicate);
        assert_eq!(arrive(&mut s, 1, now), Arrival::Repair);
        // A jump forgets what lay in the window before it: the numbers
        // skipped did not arrive.
        assert_eq!(arrive(&mut s, 2 + 600, now), Arrival::New);
        assert_eq!(arrive(&mut s, 2 + 600 - 512 + 1, now), Arrival::Repair);
        // Further back than the window: a repair, as it cannot be told.
        assert_eq!(arrive(&mut s, 2, now), Arrival::Repair);
        // Only what was counted is in the window's bytes.
        assert_eq!(s.layer_bytes.iter().flatten().sum::<u64>(), 900);
    }

    /// Two seconds of an L3T3_KEY-like stream at 30 pictures a second: a
    /// keyframe first, then per picture one packet per spatial layer, the
    /// layers growing in size and the temporal pattern 0, 2, 1, 2.
    fn svc_pictures() -> Vec<(FrameInfo, usize, bool)> {
        let mut out = Vec::new();
        for pic in 0..60u32 {
            let temporal = [0, 2, 1, 2][pic as usize % 4];
            for spatial in 0..3u8 {
                let info = FrameInfo {
                    picture_start: spatial == 0,
                    keyframe: pic == 0 && spatial == 0,
                    spatial,
                    temporal,
                    switch_up_to: temporal,
                    layer_end: true,
                    ..Default::default()
                };
                let bytes = [200, 500, 1100][spatial as usize] + (pic as usize % 7) * 10;
                out.push((info, bytes, spatial == 2));
            }
        }
        out
    }

    #[test]
    fn the_rate_up_to_a_layer_is_what_the_svc_selector_forwards_for_it() {
        let t0 = Instant::now();
        for (target, temporal) in (0..3u8).flat_map(|s| [(s, 0), (s, 1), (s, u8::MAX)]) {
            let mut s = stream();
            let mut sel = Svc::new(Some(Layer::new(target, temporal)));
            let mut forwarded = 0u64;
            let mut counted_from = None;
            for (i, (info, bytes, marker)) in svc_pictures().into_iter().enumerate() {
                let now = t0 + Duration::from_millis(i as u64 / 3 * 1000 / 30);
                assert_eq!(s.on_packet(i as u16, 0, now), Arrival::New);
                s.count(bytes, info.spatial, info.temporal, now);
                let p = LayerPacket {
                    stream: 0,
                    info: &info,
                    marker,
                    retransmission: false,
                };
                let fwd = matches!(sel.on_packet(&p), Verdict::Forward { .. });
                // The rate of the second window (from the first packet at
                // or after 1 s) against the bytes forwarded in it.
                if now >= t0 + Duration::from_secs(1) && counted_from.is_none() {
                    counted_from = Some(now);
                    forwarded = 0;
                }
                if fwd {
                    forwarded += bytes as u64;
                }
            }
            // Closes the second window.
            let end = t0 + Duration::from_secs(2);
            s.on_packet(60_000, 0, end);
            s.count(1, 0, 0, end);
            let secs = end
                .saturating_duration_since(counted_from.unwrap())
                .as_secs_f64();
            let sent = (forwarded as f64 * 8.0 / secs) as u64;
            let measured = s.rate_up_to(target, temporal);
            assert!(
                measured.abs_diff(sent) <= 8,
                "target s{target}t{temporal}: measured {measured}, forwarded {sent}"
            );
            assert!(s.layer_seen(target));
            assert_eq!(s.temporal_layers(), 3);
        }
        let s = stream();
        assert_eq!(s.rate_up_to(2, u8::MAX), 0, "nothing before a window ends");
        assert!(!s.layer_seen(0));
        assert_eq!(s.temporal_layers(), 0);
    }

    #[test]
    fn layers_past_the_slots_share_the_top_one() {
        let t0 = Instant::now();
        let mut s = stream();
        s.count(1000, 200, 9, t0);
        s.count(1, 0, 0, t0 + Duration::from_secs(1));
        assert_eq!(s.rate_up_to(u8::MAX, u8::MAX), 8000);
        assert_eq!(s.rate_up_to(u8::MAX, TEMPORAL_SLOTS as u8 - 2), 0);
        assert_eq!(s.temporal_layers(), TEMPORAL_SLOTS as u8);
        assert!(s.layer_seen(SPATIAL_SLOTS as u8 - 1));
        assert!(!s.layer_seen(u8::MAX));
    }
}
