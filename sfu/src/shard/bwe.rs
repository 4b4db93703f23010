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
use crate::core::bwe::pacer::{
    DropReason as PacerDrop, Pacer, PacerConfig, PacerStats, PacketMeta, Priority,
};
use crate::core::bwe::prober::{ProbeEnd, ProbeOutcome};
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
    /// Media to an estimating subscriber leaves through its pacer. Off in
    /// this default (the link-simulator tests choose); the server's
    /// configuration turns it on (`[media.bwe] pacing`, docs/config.md).
    pub pacing: bool,
    pub pacer: PacerConfig,
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
            pacing: false,
            pacer: PacerConfig::default(),
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
    pub probes_unconfirmed: u64,
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

/// A packet waiting in a connection's pacer, not yet stamped with its
/// transport-wide sequence number (numbers follow the order of sending).
#[derive(Debug)]
pub struct Queued {
    pub packet: Packet,
    /// RTP size before stamping.
    pub size: usize,
    pub kind: PacketKind,
}

/// A packet the pacer will not send: its SSRC, what it was, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacerDropped {
    pub ssrc: u32,
    pub kind: PacketKind,
    pub reason: PacerDrop,
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
    pacing: bool,
    pacer: Pacer<Queued>,
    /// The estimate holds this subscriber back: a track has less than it
    /// wants, or the path is congested (set by each allocation).
    pub limited: bool,
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
            pacing: s.pacing,
            pacer: Pacer::new(s.pacer.clone(), s.leg.estimator.initial),
            limited: true,
        }
    }

    /// Never paces: a relay between nodes is not held to an estimate (its
    /// far node allocates each subscriber's share there).
    pub fn never_pace(&mut self) {
        self.pacing = false;
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
        let _ = header.set_extension(id, crate::core::extmap::be16(seq.wire()));
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
        self.set_pacing_rate(now);
    }

    /// Paces at a multiple of the estimate, or of what the last
    /// allocation gave the tracks if that is more: tracks with no lower
    /// layer (audio, single-layer video) are sent whatever the estimate,
    /// and pacing them below their own rate would only hold every packet
    /// in the queue until its drain bound (half a second).
    pub fn set_pacing_rate(&mut self, now: Instant) {
        self.pacer
            .set_estimate(self.leg.estimate(now).max(self.allocated));
    }

    /// Whether media written now goes through the pacer: the estimate
    /// means something (feedback arrives) and holds the subscriber back,
    /// or packets still wait there (which must leave first, in order).
    ///
    /// A subscriber that gets everything it wants within its estimate, on
    /// a path without congestion, is not paced: pacing is for a leg whose
    /// estimate is the limit, and for the others it would only add timer
    /// wake-ups and hold back each frame's last packets.
    pub fn paces(&self) -> bool {
        self.pacing && ((self.active() && self.limited) || !self.pacer.is_empty())
    }

    /// Queues a packet (unstamped) for [`Self::next_paced`]. A video
    /// packet's frame is its RTP timestamp, its stream its SSRC.
    pub fn enqueue(&mut self, packet: Packet, size: usize, kind: PacketKind, now: Instant) {
        let meta = pacer_meta(&packet.header, size, kind);
        self.pacer.push(Queued { packet, size, kind }, meta, now);
    }

    /// Stamps and records a packet that may leave now without waiting in
    /// the pacer (see [`Pacer::pass`]): most audio, and anything while
    /// nothing waits and the budget allows. `false`: it has to wait
    /// ([`Self::enqueue`]); the header is untouched then.
    pub fn pass(
        &mut self,
        header: &mut Header,
        size: usize,
        kind: PacketKind,
        now: Instant,
    ) -> bool {
        if !self.pacer.pass(pacer_meta(header, size, kind), now) {
            return false;
        }
        self.on_send(header, size, kind, None, now);
        true
    }

    /// Whether packets wait in the pacer.
    pub fn has_queued(&self) -> bool {
        !self.pacer.is_empty()
    }

    /// The next queued packet the pacing budget allows at `now`, stamped
    /// and recorded as sent.
    pub fn next_paced(&mut self, now: Instant) -> Option<(Packet, usize, PacketKind)> {
        let Queued {
            mut packet,
            size,
            kind,
        } = self.pacer.poll(now)?.item;
        self.on_send(&mut packet.header, size, kind, None, now);
        Some((packet, size, kind))
    }

    /// A packet the pacer dropped (queue full, evicted for something more
    /// important, the rest of a frame that lost a packet, a stream gone).
    pub fn pacer_dropped(&mut self) -> Option<PacerDropped> {
        self.pacer.pop_dropped().map(|d| PacerDropped {
            ssrc: d.meta.stream,
            kind: d.item.kind,
            reason: d.reason,
        })
    }

    /// Drops what waits for a stream that is gone (a removed leg).
    pub fn remove_stream(&mut self, ssrc: u32) {
        self.pacer.remove_stream(ssrc);
    }

    /// When the pacer next has a packet to send.
    pub fn pacer_deadline(&self) -> Option<Instant> {
        self.pacer.next_deadline()
    }

    /// The pacer's queue: packets, bytes, the oldest one's wait, counters.
    pub fn pacer_figures(&self, now: Instant) -> (usize, u64, Duration, PacerStats) {
        (
            self.pacer.len(),
            self.pacer.queued_bytes(),
            self.pacer.queue_delay(now),
            self.pacer.stats(),
        )
    }

    fn on_outcome(&mut self, o: ProbeOutcome) {
        tracing::debug!(end = ?o.end, rate = %o.rate, measured = ?o.measured.map(|m| m.to_string()), "probe ended");
        match o.end {
            ProbeEnd::Success => {
                self.counts.probes_succeeded += 1;
                self.probe_success = o.measured;
            }
            ProbeEnd::Unconfirmed => self.counts.probes_unconfirmed += 1,
            _ => self.counts.probes_failed += 1,
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

/// How the pacer sees a packet of `size` RTP bytes.
fn pacer_meta(header: &Header, size: usize, kind: PacketKind) -> PacketMeta {
    let priority = match kind {
        PacketKind::Audio => Priority::Audio,
        PacketKind::Retransmission => Priority::Retransmission,
        PacketKind::Video => Priority::Video,
        PacketKind::Padding => Priority::Padding,
    };
    PacketMeta {
        size: size + SRTP_OVERHEAD,
        priority,
        stream: header.ssrc,
        frame: header.timestamp,
    }
}

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

    fn rtp(ssrc: u32, seq: u16, ts: u32) -> Packet {
        Packet {
            header: Header {
                version: 2,
                ssrc,
                sequence_number: seq,
                timestamp: ts,
                ..Default::default()
            },
            payload: Bytes::from_static(&[0; 8]),
        }
    }

    /// A connection with pacing on whose feedback arrives, numbering from
    /// `first_seq`.
    fn paced_leg(first_seq: u16) -> SubscriberBwe {
        let s = BweSettings {
            pacing: true,
            ..Default::default()
        };
        let mut b = SubscriberBwe::new(&s, 1, first_seq);
        b.twcc_id = Some(5);
        b.feedback_seen = true;
        b
    }

    #[test]
    fn paced_media_leaves_at_the_pacing_rate_numbered_in_sending_order() {
        let mut b = paced_leg(100);
        b.feedback_seen = false;
        assert!(!b.paces(), "no feedback yet: no rate to pace at");
        b.feedback_seen = true;
        assert!(b.paces());
        b.limited = false;
        assert!(!b.paces(), "everything it wants fits: nothing to pace");
        b.limited = true;
        let t0 = Instant::now();
        // A frame of 20 packets, then an audio packet: audio leaves first,
        // the frame at 2.5 x the initial 300 kbit/s (about 11 ms a packet).
        for i in 0..20 {
            b.enqueue(rtp(10, i, 9000), 1000, PacketKind::Video, t0);
        }
        b.enqueue(rtp(20, 0, 960), 100, PacketKind::Audio, t0);
        // No longer held back, it still sends what waits first, in order.
        b.limited = false;
        assert!(b.paces());
        let mut sent = Vec::new();
        let mut t = t0;
        while t < t0 + Duration::from_secs(1) {
            while let Some((p, _, kind)) = b.next_paced(t) {
                let ext = p.header.get_extension(5).expect("stamped when sent");
                let twcc = u16::from_be_bytes([ext[0], ext[1]]);
                sent.push((t, kind, p.header.sequence_number, twcc));
            }
            t += Duration::from_millis(1);
        }
        assert_eq!(sent.len(), 21);
        assert_eq!(sent[0].1, PacketKind::Audio);
        assert_eq!(sent[0].0, t0);
        let media: Vec<u16> = sent[1..].iter().map(|s| s.2).collect();
        assert_eq!(media, (0..20).collect::<Vec<u16>>(), "the frame in order");
        let twcc: Vec<u16> = sent.iter().map(|s| s.3).collect();
        assert_eq!(
            twcc,
            (100..121).collect::<Vec<u16>>(),
            "numbers in sending order"
        );
        // 19 gaps of 1,016 bytes at 750 kbit/s: about 206 ms.
        let span = sent[20].0 - sent[1].0;
        assert!(
            span >= Duration::from_millis(190) && span <= Duration::from_millis(220),
            "{span:?}"
        );
        assert_eq!(b.counts.packets_sent, 21);
        assert!(b.pacer_deadline().is_none());
    }

    #[test]
    fn a_removed_leg_leaves_nothing_in_the_pacer() {
        let mut b = paced_leg(0);
        let t0 = Instant::now();
        for i in 0..10 {
            b.enqueue(rtp(10, i, 9000), 1000, PacketKind::Video, t0);
        }
        assert!(b.next_paced(t0).is_some());
        b.remove_stream(10);
        assert!(b.next_paced(t0 + Duration::from_secs(1)).is_none());
        let dropped: Vec<PacerDropped> = std::iter::from_fn(|| b.pacer_dropped()).collect();
        assert_eq!(dropped.len(), 9);
        assert!(dropped
            .iter()
            .all(|d| d.ssrc == 10 && d.reason == PacerDrop::StreamRemoved));
        assert!(b.pacer_deadline().is_none());
    }

    #[test]
    fn tracks_sent_above_the_estimate_are_paced_at_their_own_rate() {
        let mut b = paced_leg(0);
        let t0 = Instant::now();
        // Audio and single-layer video the allocation keeps whatever the
        // estimate: 2 Mbit/s against the initial 300 kbit/s. Paced at
        // 2.5 x 300 kbit/s, 50 kB would wait more than half a second; at
        // 2.5 x 2 Mbit/s they take 80 ms.
        b.allocated = Bitrate::kbps(2000);
        b.set_pacing_rate(t0);
        for i in 0..50 {
            b.enqueue(
                rtp(10, i, 9000 + u32::from(i / 5)),
                1000,
                PacketKind::Video,
                t0,
            );
        }
        let mut last = t0;
        let mut t = t0;
        let mut n = 0;
        while t < t0 + Duration::from_secs(2) {
            while b.next_paced(t).is_some() {
                n += 1;
                last = t;
            }
            t += Duration::from_millis(1);
        }
        assert_eq!(n, 50);
        let took = last - t0;
        assert!(took <= Duration::from_millis(100), "{took:?}");
    }
}
