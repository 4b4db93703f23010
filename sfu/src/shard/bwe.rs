//! Per-subscriber bandwidth estimation, as the shard drives it: every RTP
//! packet sent on a subscriber's connection is stamped with that
//! connection's transport-wide sequence number and recorded in its
//! [`LegBwe`]; the subscriber's transport-cc feedback feeds it back; the
//! estimate bounds retransmissions (a share of it), throttles keyframe
//! requests from a congested subscriber, and is what the [`Allocator`]
//! distributes over the subscriber's tracks (see `adapt.rs`). Probe
//! padding goes out on a probe SSRC of its own, so the media streams'
//! numbering stays gap-free for the subscriber.
//!
//! One [`SubscriberBwe`] per connection ("leg" in `core::bwe` terms: one
//! path from the server to one subscriber). Nothing here reads a clock.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
};
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;

use crate::core::bwe::allocator::{Allocator, AllocatorConfig};
use crate::core::bwe::feedback::TransportFeedback;
use crate::core::bwe::history::PacketKind;
use crate::core::bwe::leg::{LegBwe, LegConfig};
use crate::core::bwe::prober::ProbeOutcome;
use crate::core::bwe::Bitrate;
use crate::stats::Drop;

/// Bytes of padding per probe packet (payload; the header comes on top).
const PROBE_PAYLOAD: usize = 240;
/// Bytes SRTP adds to every packet (AEAD tag or HMAC), counted as sent.
const SRTP_OVERHEAD: usize = 16;
/// How long a sent-rate window lasts for the reported `sent_bps`.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// The retransmission budget may save up this much time's worth.
const RTX_BURST: Duration = Duration::from_millis(500);

/// What every subscriber's estimation is configured with (`[media.bwe]`).
#[derive(Clone, Debug)]
pub struct BweSettings {
    /// Estimation and allocation on; off, every leg gets what the
    /// subscriber's track settings ask for, as before.
    pub enabled: bool,
    /// Probe for headroom before moving a subscriber up.
    pub probing: bool,
    pub leg: LegConfig,
    pub alloc: AllocatorConfig,
    /// Share of the estimate retransmissions may use.
    pub retransmit_share: f64,
    /// A congested subscriber's keyframe requests reach the publisher at
    /// most this often.
    pub congested_keyframe_interval: Duration,
}

impl Default for BweSettings {
    fn default() -> Self {
        BweSettings {
            enabled: true,
            probing: true,
            leg: LegConfig::default(),
            alloc: AllocatorConfig::default(),
            retransmit_share: 0.2,
            congested_keyframe_interval: Duration::from_secs(2),
        }
    }
}

/// Counters of one subscriber's estimation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BweCounts {
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub feedbacks: u64,
    pub probes_started: u64,
    pub probes_succeeded: u64,
    pub probes_failed: u64,
    pub probe_packets: u64,
    pub retransmissions_sent: u64,
    pub retransmissions_dropped: u64,
    pub keyframe_requests_throttled: u64,
    /// Probe clusters not sent: RTX negotiated and nothing yet to repeat.
    pub probes_unsendable: u64,
}

/// Where probes go: a video section's payload type and mid, so the
/// subscriber's transport demultiplexes them into the bundle (and counts
/// them for its feedback) without mixing them into any media stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeRoute {
    pub pt: u8,
    pub mid: Option<(u8, Bytes)>,
    /// The video legs' RTX flows, where the subscriber negotiated RTX.
    pub rtx: Vec<RtxRoute>,
}

/// One video leg's RTX flow (RFC 4588). Probes go there as browsers send
/// their own: each probe packet repeats a packet the subscriber already
/// got, which it counts for its feedback and then discards as a
/// duplicate. Only a subscriber that negotiated no RTX gets padding of
/// zeros on the connection's probe SSRC instead, which a browser would
/// list as a stream of its own that never decodes a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtxRoute {
    pub ssrc: u32,
    /// The leg's section: its mid header extension (id, value).
    pub mid: Option<(u8, Bytes)>,
    /// The leg whose packets are repeated.
    pub track: crate::core::ids::TrackNo,
    /// Media payload type to its RTX payload type, as the subscriber
    /// numbers them.
    pub pts: Vec<(u8, u8)>,
}

/// A packet the subscriber already got, to repeat on an RTX flow.
#[derive(Clone, Debug)]
pub struct ProbeFiller {
    /// The RTX flow's SSRC, payload type and mid extension.
    pub ssrc: u32,
    pub pt: u8,
    pub mid: Option<(u8, Bytes)>,
    /// The original's timestamp, and the RTX payload: the original's
    /// sequence number, then its payload.
    pub ts: u32,
    pub payload: Bytes,
}

/// One subscriber connection's estimation state.
#[derive(Debug)]
pub struct SubscriberBwe {
    pub leg: LegBwe,
    pub alloc: Allocator,
    /// The transport-cc extension id this connection negotiated.
    pub twcc_id: Option<u8>,
    /// Feedback arrived: the estimate means something.
    pub feedback_seen: bool,
    pub probe_route: Option<ProbeRoute>,
    probe_ssrc: u32,
    probe_seq: u16,
    probe_ts: u32,
    /// A probe that proved a rate, for the next allocation.
    pub probe_success: Option<Bitrate>,
    rtx_tokens: f64,
    rtx_at: Option<Instant>,
    last_keyframe_request: Option<Instant>,
    /// What the last allocation gave the tracks.
    pub allocated: Bitrate,
    pub counts: BweCounts,
    window_start: Option<Instant>,
    window_bytes: u64,
    pub sent_bps: u64,
    /// Tracks the subscriber was told are paused for bandwidth.
    pub told_paused: Vec<crate::core::ids::TrackNo>,
}

impl SubscriberBwe {
    pub fn new(s: &BweSettings, probe_ssrc: u32, first_seq: u16) -> Self {
        SubscriberBwe {
            leg: LegBwe::new(s.leg.clone(), first_seq),
            alloc: Allocator::new(s.alloc.clone()),
            twcc_id: None,
            feedback_seen: false,
            probe_route: None,
            probe_ssrc,
            probe_seq: first_seq,
            probe_ts: 0,
            probe_success: None,
            rtx_tokens: 0.0,
            rtx_at: None,
            last_keyframe_request: None,
            allocated: Bitrate::ZERO,
            counts: BweCounts::default(),
            window_start: None,
            window_bytes: 0,
            sent_bps: 0,
            told_paused: Vec::new(),
        }
    }

    /// Estimation drives this subscriber: transport-cc is negotiated and
    /// its feedback arrives.
    pub fn active(&self) -> bool {
        self.twcc_id.is_some() && self.feedback_seen
    }

    /// Records a packet about to be sent and stamps its transport-wide
    /// sequence number. `size` is the packet's RTP size before stamping.
    pub fn on_send(
        &mut self,
        header: &mut Header,
        size: usize,
        kind: PacketKind,
        probe: Option<crate::core::bwe::history::ProbeClusterId>,
        now: Instant,
    ) {
        let wire = size + SRTP_OVERHEAD + if self.twcc_id.is_some() { 4 } else { 0 };
        self.counts.packets_sent += 1;
        self.counts.bytes_sent += wire as u64;
        match self.window_start {
            Some(t) if now.saturating_duration_since(t) >= RATE_WINDOW => {
                let secs = now.saturating_duration_since(t).as_secs_f64();
                self.sent_bps = (self.window_bytes as f64 * 8.0 / secs) as u64;
                self.window_start = Some(now);
                self.window_bytes = 0;
            }
            None => self.window_start = Some(now),
            _ => {}
        }
        self.window_bytes += wire as u64;
        let Some(id) = self.twcc_id else { return };
        let seq = self.leg.on_packet_sent(wire, kind, probe, now);
        // A one-byte header allows ids 1 to 14 only; a packet the
        // extension cannot be added to goes out unstamped (and is lost to
        // the estimate, which tolerates that as an unknown number).
        let _ = header.set_extension(id, Bytes::copy_from_slice(&seq.wire().to_be_bytes()));
    }

    /// The sent rate over the last window, zero after a second of silence.
    pub fn sent_rate(&self, now: Instant) -> u64 {
        match self.window_start {
            Some(t) if now.saturating_duration_since(t) < 2 * RATE_WINDOW => self.sent_bps,
            _ => 0,
        }
    }

    /// One transport-cc feedback from the subscriber.
    pub fn on_feedback(&mut self, tcc: &TransportLayerCc, now: Instant) {
        if self.twcc_id.is_none() {
            return;
        }
        self.feedback_seen = true;
        self.counts.feedbacks += 1;
        let fb = to_feedback(tcc);
        if let Some(o) = self.leg.on_feedback(&fb, now) {
            self.on_outcome(o);
        }
    }

    fn on_outcome(&mut self, o: ProbeOutcome) {
        tracing::debug!(end = ?o.end, rate = %o.rate, measured = ?o.measured.map(|m| m.to_string()), "probe ended");
        if o.is_success() {
            self.counts.probes_succeeded += 1;
            self.probe_success = o.measured;
        } else {
            self.counts.probes_failed += 1;
        }
    }

    /// Whether a retransmission of `size` bytes fits the budget (a share
    /// of the estimate, saved up for at most half a second).
    pub fn allow_retransmission(
        &mut self,
        size: usize,
        share: f64,
        now: Instant,
    ) -> Result<(), Drop> {
        if !self.active() {
            self.counts.retransmissions_sent += 1;
            return Ok(());
        }
        let rate = self.leg.estimate(now).as_f64() * share / 8.0;
        let cap = (rate * RTX_BURST.as_secs_f64()).max(2.0 * 1500.0);
        let dt = self
            .rtx_at
            .map_or(RTX_BURST, |t| now.saturating_duration_since(t));
        self.rtx_at = Some(now);
        self.rtx_tokens = (self.rtx_tokens + rate * dt.as_secs_f64()).min(cap);
        if self.rtx_tokens < size as f64 {
            self.counts.retransmissions_dropped += 1;
            return Err(Drop::NackBudget);
        }
        self.rtx_tokens -= size as f64;
        self.counts.retransmissions_sent += 1;
        Ok(())
    }

    /// Whether a keyframe request from this subscriber may go on to the
    /// publisher: always while the leg is fine, at most once per
    /// `interval` while it is congested (its losses are its own link's,
    /// and every keyframe makes them worse).
    pub fn allow_keyframe_request(&mut self, interval: Duration, now: Instant) -> bool {
        let congested = self.active() && self.leg.is_congested(now);
        if congested
            && self
                .last_keyframe_request
                .is_some_and(|t| now.saturating_duration_since(t) < interval)
        {
            self.counts.keyframe_requests_throttled += 1;
            return false;
        }
        self.last_keyframe_request = Some(now);
        true
    }

    /// Asks for a probe towards `target` (the next step and the goal, see
    /// `LegBwe::request_probe`) when probing is on and useful.
    pub fn maybe_probe(&mut self, target: Option<(Bitrate, Bitrate)>, now: Instant) {
        let (Some((step, goal)), Some(_)) = (target, &self.probe_route) else {
            return;
        };
        if self.leg.request_probe(step, goal, now).is_ok() {
            self.counts.probes_started += 1;
        }
    }

    /// Probe packets due at `now`, ready to write, and outcomes of probes
    /// that timed out. `filler`: a packet to repeat on an RTX flow, if one
    /// of the route's legs has sent any.
    pub fn poll_probes(
        &mut self,
        now: Instant,
        filler: Option<&ProbeFiller>,
        out: &mut Vec<Packet>,
    ) {
        while let Some(p) = self.leg.poll_probe(now) {
            let Some(route) = self.probe_route.clone() else {
                continue;
            };
            // With RTX negotiated but nothing sent on it yet: no probe (the
            // cluster fails and is tried later), not zeros on an SSRC the
            // subscriber would take for a new stream.
            if filler.is_none() && !route.rtx.is_empty() {
                self.counts.probes_unsendable += 1;
                continue;
            }
            // A cluster's packet is cut into probe packets; each counts
            // towards it.
            let mut left = p.size;
            while left > 0 {
                let (ssrc, pt, ts, payload, mid) = match filler {
                    Some(f) => (f.ssrc, f.pt, f.ts, f.payload.clone(), &f.mid),
                    None => {
                        let n = PROBE_PAYLOAD.min(left.max(PROBE_PAYLOAD / 2));
                        let zeros = Bytes::from_static(&ZEROS[..n]);
                        (self.probe_ssrc, route.pt, self.probe_ts, zeros, &route.mid)
                    }
                };
                let padding = filler.is_none();
                let size = 12 + 8 + payload.len() + if padding { 4 } else { 0 };
                left = left.saturating_sub(size);
                let mut header = Header {
                    version: 2,
                    padding,
                    payload_type: pt,
                    sequence_number: self.probe_seq,
                    timestamp: ts,
                    ssrc,
                    ..Default::default()
                };
                self.probe_seq = self.probe_seq.wrapping_add(1);
                if let Some((id, mid)) = mid {
                    let _ = header.set_extension(*id, mid.clone());
                }
                self.on_send(&mut header, size, PacketKind::Padding, Some(p.cluster), now);
                self.counts.probe_packets += 1;
                out.push(Packet { header, payload });
            }
        }
        self.probe_ts = self.probe_ts.wrapping_add(90);
        if let Some(o) = self.leg.poll_outcome(now) {
            self.on_outcome(o);
        }
    }

    /// The connection's own probe SSRC (used where no RTX flow is).
    pub fn probe_ssrc(&self) -> u32 {
        self.probe_ssrc
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.probe_route.as_ref()?;
        self.leg.next_deadline()
    }
}

static ZEROS: [u8; PROBE_PAYLOAD] = [0; PROBE_PAYLOAD];

/// The library's transport-cc RTCP in the core's plain form. A report
/// whose symbols run out of receive deltas (malformed) ends there.
pub fn to_feedback(tcc: &TransportLayerCc) -> TransportFeedback {
    let mut fb = TransportFeedback::new(
        tcc.base_sequence_number,
        tcc.reference_time,
        tcc.fb_pkt_count,
    );
    let mut deltas = tcc.recv_deltas.iter();
    let mut left = tcc.packet_status_count as usize;
    let mut push = |s: SymbolTypeTcc, fb: &mut TransportFeedback| -> bool {
        match s {
            SymbolTypeTcc::PacketNotReceived => fb.push_lost(),
            SymbolTypeTcc::PacketReceivedSmallDelta | SymbolTypeTcc::PacketReceivedLargeDelta => {
                match deltas.next() {
                    Some(d) => fb.push_received(d.delta),
                    None => false,
                }
            }
            SymbolTypeTcc::PacketReceivedWithoutDelta => fb.push_received(0),
        }
    };
    'chunks: for chunk in &tcc.packet_chunks {
        match chunk {
            PacketStatusChunk::RunLengthChunk(c) => {
                for _ in 0..c.run_length {
                    if left == 0 || !push(c.packet_status_symbol, &mut fb) {
                        break 'chunks;
                    }
                    left -= 1;
                }
            }
            PacketStatusChunk::StatusVectorChunk(c) => {
                for s in &c.symbol_list {
                    if left == 0 || !push(*s, &mut fb) {
                        break 'chunks;
                    }
                    left -= 1;
                }
            }
        }
    }
    fb
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
        RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk, SymbolSizeTypeTcc,
    };

    fn delta(us: i64) -> RecvDelta {
        RecvDelta {
            type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
            delta: us,
        }
    }

    #[test]
    fn transport_cc_converts_symbol_by_symbol_and_stops_at_the_count() {
        let tcc = TransportLayerCc {
            base_sequence_number: 65_534,
            packet_status_count: 5,
            reference_time: 7,
            fb_pkt_count: 3,
            packet_chunks: vec![
                PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                    type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                    packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
                    run_length: 2,
                }),
                PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                    type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                    symbol_size: SymbolSizeTypeTcc::TwoBit,
                    // Seven symbols, of which the count keeps three.
                    symbol_list: vec![
                        SymbolTypeTcc::PacketNotReceived,
                        SymbolTypeTcc::PacketReceivedLargeDelta,
                        SymbolTypeTcc::PacketNotReceived,
                        SymbolTypeTcc::PacketReceivedSmallDelta,
                        SymbolTypeTcc::PacketNotReceived,
                        SymbolTypeTcc::PacketNotReceived,
                        SymbolTypeTcc::PacketNotReceived,
                    ],
                }),
            ],
            recv_deltas: vec![delta(1000), delta(250), delta(-500), delta(9)],
            ..Default::default()
        };
        let fb = to_feedback(&tcc);
        assert_eq!(fb.base_seq, 65_534);
        assert_eq!(fb.reference_time, 7);
        assert_eq!(fb.feedback_count, 3);
        assert_eq!(
            fb.packets,
            vec![Some(1000), Some(250), None, Some(-500), None]
        );
    }

    #[test]
    fn a_report_without_enough_deltas_ends_where_they_run_out() {
        let tcc = TransportLayerCc {
            packet_status_count: 100,
            packet_chunks: vec![PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
                run_length: 100,
            })],
            recv_deltas: vec![delta(1), delta(2)],
            ..Default::default()
        };
        assert_eq!(to_feedback(&tcc).packets, vec![Some(1), Some(2)]);
    }

    #[test]
    fn every_sent_packet_is_stamped_with_consecutive_numbers() {
        let s = BweSettings::default();
        let mut b = SubscriberBwe::new(&s, 1, 65_535);
        b.twcc_id = Some(5);
        let t0 = Instant::now();
        let mut seen = Vec::new();
        for i in 0..3u32 {
            let mut h = Header {
                version: 2,
                ..Default::default()
            };
            b.on_send(
                &mut h,
                1000,
                PacketKind::Video,
                None,
                t0 + Duration::from_millis(i.into()),
            );
            let ext = h.get_extension(5).expect("stamped");
            seen.push(u16::from_be_bytes([ext[0], ext[1]]));
        }
        assert_eq!(seen, vec![65_535, 0, 1]);
        assert_eq!(b.counts.packets_sent, 3);
    }

    #[test]
    fn retransmissions_stay_within_their_share_of_the_estimate() {
        let s = BweSettings::default();
        let mut b = SubscriberBwe::new(&s, 1, 0);
        b.twcc_id = Some(5);
        b.feedback_seen = true;
        let t0 = Instant::now();
        // The initial estimate (300 kbit/s) x 0.2 = 7.5 kB/s, 3.75 kB saved.
        let mut sent = 0;
        for _ in 0..100 {
            if b.allow_retransmission(1000, s.retransmit_share, t0).is_ok() {
                sent += 1;
            }
        }
        assert!((2..=4).contains(&sent), "{sent}");
        assert_eq!(b.counts.retransmissions_dropped, 100 - sent);
        // A second later, another second's worth.
        let later = t0 + Duration::from_secs(1);
        let more = (0..100)
            .filter(|_| {
                b.allow_retransmission(1000, s.retransmit_share, later)
                    .is_ok()
            })
            .count();
        assert!((3..=8).contains(&more), "{more}");
    }

    #[test]
    fn without_feedback_nothing_is_held_back() {
        let s = BweSettings::default();
        let mut b = SubscriberBwe::new(&s, 1, 0);
        let t0 = Instant::now();
        assert!((0..100).all(|_| b.allow_retransmission(1200, 0.2, t0).is_ok()));
        assert!((0..10).all(|_| b.allow_keyframe_request(Duration::from_secs(2), t0)));
    }
}
