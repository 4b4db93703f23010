//! Send-side bandwidth estimation of one subscriber leg: the sequence
//! allocator, the send history, the estimator and the prober, wired
//! together.
//!
//! The shard calls, for each leg:
//!
//! - [`LegBwe::on_packet_sent`] for every RTP packet it sends on the leg
//!   (media, retransmission, padding), and writes the returned number into
//!   the packet's transport-cc extension;
//! - [`LegBwe::on_feedback`] with each transport-cc feedback of the
//!   subscriber (see [`super::feedback`] for the conversion); a returned
//!   [`ProbeOutcome`] goes to the allocator;
//! - [`LegBwe::estimate`] when it allocates and to set the pacer's rate;
//! - [`LegBwe::request_probe`] with the allocator's next step and goal
//!   while it wants more than it has, then [`LegBwe::poll_probe`] at
//!   [`LegBwe::next_deadline`] to get the padding to send.

use std::time::{Duration, Instant};

use super::confirm::{Judged, ProbeConfirm};
use super::estimator::{Estimator, EstimatorConfig, EstimatorState};
use super::feedback::TransportFeedback;
use super::history::{
    HistoryStats, PacketKind, PacketResult, SendHistory, SentPacket, SeqAllocator, TransportSeq,
};
use super::jitter::Jitter;
use super::prober::{ProbeEnd, ProbeOutcome, ProbePacket, Prober, ProberConfig, ProberStats};
use super::Bitrate;

/// Below this fraction of the best rate the path delivered in the last
/// 30 s, probing is allowed even when the leg sends close to its estimate.
const RECOVERY_FRACTION: f64 = 0.5;

/// Parameters of one leg's estimation (`[bwe]` in the config).
#[derive(Clone, Debug, PartialEq)]
pub struct LegConfig {
    pub estimator: EstimatorConfig,
    pub prober: ProberConfig,
    /// Packets the send history keeps.
    pub history_packets: usize,
    /// Feedback about packets older than this is ignored.
    pub history_age: Duration,
    /// A probe goes this much above the rate asked for, so that a success
    /// leaves headroom.
    pub probe_margin: f64,
    /// A probe is at most this multiple of the current estimate.
    pub probe_max_multiple: f64,
    /// Probing only while the leg sends less than this fraction of the
    /// estimate (application-limited), except at start-up.
    pub alr_fraction: f64,
    /// How long after a layer switch's keyframe delay growth is blamed on it.
    pub keyframe_guard: Duration,
}

impl Default for LegConfig {
    fn default() -> Self {
        LegConfig {
            estimator: EstimatorConfig::default(),
            prober: ProberConfig::default(),
            history_packets: 8192,
            history_age: Duration::from_secs(10),
            probe_margin: 1.05,
            probe_max_multiple: 2.0,
            alr_fraction: 0.85,
            keyframe_guard: Duration::from_millis(500),
        }
    }
}

/// Why [`LegBwe::request_probe`] did not start a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeRefused {
    #[error("the leg is congested")]
    Congested,
    #[error("the estimate allows the rate and the path delivered it lately")]
    NotNeeded,
    #[error("a probe is running or the wait after the last one is not over")]
    NotNow,
    #[error("the leg already sends close to its estimate")]
    NotApplicationLimited,
}

/// Counters of one leg.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LegStats {
    pub history: HistoryStats,
    pub prober: ProberStats,
    pub packets_sent: u64,
    pub bytes_sent: u64,
}

#[derive(Debug)]
pub struct LegBwe {
    cfg: LegConfig,
    seq: SeqAllocator,
    history: SendHistory,
    estimator: Estimator,
    prober: Prober,
    confirm: ProbeConfirm,
    jitter: Jitter,
    results: Vec<PacketResult>,
    /// No overuse and no failed probe yet: probing is allowed while the
    /// leg is not application-limited, to find the capacity quickly.
    startup: bool,
    /// The last probe succeeded, and no congestion since: the next one
    /// goes for the allocator's goal.
    climbing: bool,
    packets_sent: u64,
    bytes_sent: u64,
}

impl LegBwe {
    /// `first_seq` is the first transport-wide number (any value).
    pub fn new(cfg: LegConfig, first_seq: u16) -> Self {
        LegBwe {
            seq: SeqAllocator::new(first_seq),
            history: SendHistory::new(cfg.history_packets, cfg.history_age),
            estimator: Estimator::new(cfg.estimator.clone()),
            prober: Prober::new(cfg.prober.clone()),
            confirm: ProbeConfirm::default(),
            jitter: Jitter::default(),
            results: Vec::new(),
            startup: true,
            climbing: false,
            packets_sent: 0,
            bytes_sent: 0,
            cfg,
        }
    }

    /// Records a packet about to be sent; returns its transport-wide
    /// number. `probe` is the cluster of a padding packet from
    /// [`Self::poll_probe`] (media packets are tagged with a running
    /// cluster automatically).
    pub fn on_packet_sent(
        &mut self,
        size: usize,
        kind: PacketKind,
        probe: Option<super::history::ProbeClusterId>,
        now: Instant,
    ) -> TransportSeq {
        let probe = match (kind, probe) {
            (_, Some(c)) => Some(c),
            (PacketKind::Padding, None) => None,
            _ => self.prober.on_media_sent(size, now),
        };
        let seq = self.seq.next_seq();
        self.history.on_sent(SentPacket {
            seq,
            sent_at: now,
            size: size.min(u32::MAX as usize) as u32,
            kind,
            probe,
        });
        self.estimator.on_packet_sent(size, now);
        self.packets_sent += 1;
        self.bytes_sent += size as u64;
        seq
    }

    /// Takes one transport-cc feedback; returns the outcome of a probe
    /// that ended with it.
    pub fn on_feedback(&mut self, fb: &TransportFeedback, now: Instant) -> Option<ProbeOutcome> {
        let mut results = std::mem::take(&mut self.results);
        results.clear();
        self.history.on_feedback(fb, now, &mut results);
        self.estimator.on_feedback(&results, now);
        self.jitter.on_results(&results);
        self.prober.set_jitter(self.jitter.get());
        // Twice the path's usual loss is not the probe's doing.
        let tolerated = 2.0 * self.estimator.loss_baseline();
        let mut outcome = self.prober.on_feedback(&results, tolerated, now);
        self.results = results;
        if outcome.is_none() && self.prober.is_probing() && self.estimator.is_congested(now) {
            outcome = self.prober.abort(now);
        }
        if let Some(o) = &mut outcome {
            self.apply_outcome(o, now);
        }
        if self.estimator.is_congested(now) {
            self.startup = false;
            self.climbing = false;
        }
        outcome
    }

    /// Feeds a probe's outcome to the estimator, after judging it: a pass
    /// that contradicts a recent failure becomes `Unconfirmed`, which
    /// changes nothing but ends the probe.
    fn apply_outcome(&mut self, o: &mut ProbeOutcome, now: Instant) {
        if self.confirm.judge(o, now) == Judged::Unconfirmed {
            o.end = ProbeEnd::Unconfirmed;
            self.estimator.on_probe_ended(None, false, now);
            return;
        }
        let measured = o
            .measured
            .filter(|_| matches!(o.end, ProbeEnd::Success | ProbeEnd::Saturated));
        self.estimator.on_probe_ended(measured, o.is_success(), now);
        self.climbing = o.is_success();
        if !o.is_success() {
            self.startup = false;
        }
    }

    /// A layer switch up is committed: its keyframe will leave at about
    /// `keyframe_at`. The burst it makes is expected; delay growth from it
    /// does not lower the estimate (unless a long queue builds).
    pub fn on_layer_switch(&mut self, keyframe_at: Instant) {
        self.estimator
            .on_burst(keyframe_at + self.cfg.keyframe_guard);
    }

    /// The estimate at `now`.
    pub fn estimate(&mut self, now: Instant) -> Bitrate {
        self.estimator.estimate(now)
    }

    /// What the path allows whatever was sent in the last second
    /// (`Estimator::sustained`).
    pub fn sustained(&mut self, now: Instant) -> Bitrate {
        self.estimator.sustained(now)
    }

    /// What the path delivered over the last second (acknowledged).
    pub fn delivered(&mut self) -> Option<Bitrate> {
        self.estimator.delivered()
    }

    pub fn is_congested(&self, now: Instant) -> bool {
        self.estimator.is_congested(now)
    }

    /// Congestion that stands: a queue or loss (see `Signal::standing`).
    pub fn standing_congestion(&self) -> bool {
        self.estimator.standing_congestion()
    }

    /// A long queue stands on the path (`Estimator::backlogged`).
    pub fn backlogged(&self, now: Instant) -> bool {
        self.estimator.backlogged(now)
    }

    /// The highest rate the path delivered over about the last 30 s.
    pub fn recent_best(&self) -> Option<Bitrate> {
        self.estimator.recent_best()
    }

    pub fn state(&mut self, now: Instant) -> EstimatorState {
        self.estimator.state(now)
    }

    pub fn stats(&self) -> LegStats {
        LegStats {
            history: self.history.stats(),
            prober: self.prober.stats(),
            packets_sent: self.packets_sent,
            bytes_sent: self.bytes_sent,
        }
    }

    /// Asks for a probe: `target` is the estimate the allocator's next
    /// move up needs, `goal` the estimate everything it wants needs. At
    /// start-up and while probes succeed the probe goes for the goal,
    /// otherwise for the target; it runs at that times `probe_margin`, at
    /// most `probe_max_multiple` times the estimate, so each success
    /// doubles what is proven and a subscriber with room climbs in a few
    /// probes rather than a layer at a time. Refused on a congested leg
    /// (or one with a backlog standing),
    /// when the estimate allows `target` and the path delivered it lately,
    /// while another probe runs or the wait after one is not over, and
    /// while the leg sends close to its estimate (unless at start-up, or
    /// far below the capacity the path showed before).
    pub fn request_probe(
        &mut self,
        target: Bitrate,
        goal: Bitrate,
        now: Instant,
    ) -> Result<Bitrate, ProbeRefused> {
        let estimate = self.estimator.estimate(now);
        // Not needed when the estimate allows the target and the path
        // delivered it lately: the allocator moves up on those. Either
        // alone is no proof (the estimate grows while the leg sends less,
        // up to 1.5 times what it sends; a rate delivered before a drop
        // says nothing of the path now).
        // A pass waiting for its confirmation is the exception: the move it
        // would allow waits for the next probe, not for the estimate.
        if target <= estimate
            && self.estimator.recent_best().is_some_and(|d| d >= target)
            && !self.confirm.pending(now)
        {
            return Err(ProbeRefused::NotNeeded);
        }
        // Nor behind a backlog: a probe would wait in it, measure nothing
        // and lengthen it.
        if self.estimator.is_congested(now) || self.estimator.backlogged(now) {
            return Err(ProbeRefused::Congested);
        }
        if !self.prober.can_start(now) {
            return Err(ProbeRefused::NotNow);
        }
        // Far below the capacity the path showed before (the leg was
        // paused or sent little for a while, and the estimate followed what
        // it sent), probing finds the way back faster than growth does.
        let recovering = self
            .estimator
            .recent_best()
            .is_some_and(|c| estimate.as_f64() < RECOVERY_FRACTION * c.as_f64());
        if !self.startup && !recovering {
            let sent = self.estimator.sent_rate(now).unwrap_or(Bitrate::ZERO);
            if sent.as_f64() >= self.cfg.alr_fraction * estimate.as_f64() {
                return Err(ProbeRefused::NotApplicationLimited);
            }
        }
        let want = if self.startup || self.climbing {
            goal.max(target)
        } else {
            target
        };
        let rate = want
            .scale(self.cfg.probe_margin)
            .min(estimate.scale(self.cfg.probe_max_multiple));
        self.prober.start(rate, now).ok_or(ProbeRefused::NotNow)?;
        self.estimator.on_probe_started();
        Ok(rate)
    }

    /// The next probe padding packet due at `now`. Send it, then report it
    /// with [`Self::on_packet_sent`] (kind `Padding`, its cluster).
    pub fn poll_probe(&mut self, now: Instant) -> Option<ProbePacket> {
        self.prober.poll(now)
    }

    /// A probe that ended without feedback (timeout), due at `now`.
    pub fn poll_outcome(&mut self, now: Instant) -> Option<ProbeOutcome> {
        let mut o = self.prober.poll_outcome(now)?;
        self.apply_outcome(&mut o, now);
        Some(o)
    }

    /// When [`Self::poll_probe`] or [`Self::poll_outcome`] next have work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.prober.next_deadline()
    }

    pub fn is_probing(&self) -> bool {
        self.prober.is_probing()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn sent_packets_get_consecutive_numbers_and_feedback_reaches_the_estimator() {
        let t0 = Instant::now();
        let mut leg = LegBwe::new(LegConfig::default(), 65_530);
        let mut arrivals = Vec::new();
        for i in 0..40u32 {
            let seq = leg.on_packet_sent(1000, PacketKind::Video, None, t0 + i * 10 * MS);
            assert_eq!(seq.wire(), 65_530u16.wrapping_add(i as u16));
            arrivals.push(Some(40_000 + i as i64 * 10_000));
        }
        let fb = TransportFeedback::from_arrivals(65_530, 0, &arrivals);
        assert_eq!(leg.on_feedback(&fb, t0 + 460 * MS), None);
        let st = leg.state(t0 + 460 * MS);
        assert_eq!(leg.stats().history.unknown, 0);
        assert!(st.acked.is_some());
        assert!(st.rtt.is_some());
    }

    #[test]
    fn absurd_feedback_is_counted_not_a_panic() {
        let t0 = Instant::now();
        let mut leg = LegBwe::new(LegConfig::default(), 0);
        for i in 0..50u32 {
            leg.on_packet_sent(1000, PacketKind::Video, None, t0 + i * MS);
        }
        let mut t = t0;
        for k in 0..200u32 {
            t += 50 * MS;
            let mut fb =
                TransportFeedback::new((k * 7919) as u16, k.wrapping_mul(0x0080_0001), k as u8);
            for j in 0..40 {
                match (k + j) % 4 {
                    0 => fb.push_received(i64::MAX),
                    1 => fb.push_received(i64::MIN),
                    2 => fb.push_lost(),
                    _ => fb.push_received(-8_000_000),
                };
            }
            leg.on_feedback(&fb, t);
            leg.on_packet_sent(1000, PacketKind::Video, None, t);
        }
        let st = leg.stats();
        assert!(st.history.malformed > 0);
        assert!(st.history.unknown > 0);
        let e = leg.estimate(t);
        assert!(e >= Bitrate::kbps(30) && e <= Bitrate::kbps(20_000));
    }

    #[test]
    fn a_probe_runs_when_asked_unless_one_runs_already() {
        let t0 = Instant::now();
        // An estimate (300 kbit/s at first) that allows the target proves
        // nothing: the probe runs.
        let mut low = LegBwe::new(LegConfig::default(), 0);
        assert_eq!(
            low.request_probe(Bitrate::kbps(100), Bitrate::kbps(100), t0),
            Ok(Bitrate::kbps(105))
        );
        let mut leg = LegBwe::new(LegConfig::default(), 0);
        let rate = leg
            .request_probe(Bitrate::kbps(500), Bitrate::kbps(500), t0)
            .unwrap();
        assert_eq!(rate, Bitrate::kbps(525), "5% above the target");
        let rate_capped = {
            let mut leg2 = LegBwe::new(LegConfig::default(), 0);
            leg2.request_probe(Bitrate::kbps(5000), Bitrate::kbps(5000), t0)
                .unwrap()
        };
        assert_eq!(
            rate_capped,
            Bitrate::kbps(600),
            "at most twice the estimate"
        );
        assert_eq!(
            leg.request_probe(Bitrate::kbps(500), Bitrate::kbps(500), t0),
            Err(ProbeRefused::NotNow)
        );
        // Padding comes out and is tagged with the cluster.
        let pkt = leg.poll_probe(t0).unwrap();
        leg.on_packet_sent(pkt.size, PacketKind::Padding, Some(pkt.cluster), t0);
        assert!(leg.is_probing());
    }
}
