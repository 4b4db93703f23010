//! Probe clusters: short bursts at a chosen rate that find out whether the
//! path can carry it before the allocator moves a subscriber up.
//!
//! A cluster runs at `rate` until `rate x duration` bytes (at least
//! `min_packets` packets) have gone out. Media sent meanwhile counts towards
//! it; [`Prober::poll`] fills the rest with padding packets of
//! `packet_size` bytes at the times the rate calls for (the shard sends them
//! as padding-only RTP or as retransmissions of recent packets: anything of
//! that size on the leg). Every packet sent during the cluster carries its
//! id in the send history, so the feedback tells how fast the cluster was
//! received ([`super::probe_measure`]).
//!
//! A cluster is aborted at once when its feedback shows a loss or its
//! packets' delay grows past `abort_delay`, or when the caller says the leg
//! is congested. On a path with delay noise (the jitter the caller reports
//! with [`Prober::set_jitter`]) clusters last longer (up to
//! `jitter_duration_multiple` times the jitter, at most four times
//! `duration`) and the abort threshold grows by `jitter_abort_multiple`
//! times the jitter: otherwise noise alone would fail most probes (the
//! measure itself fits a line through every packet's delay, see
//! [`super::probe_measure`]). After a success the next probe may follow after
//! `min_interval`; after a failure the wait starts at `backoff_initial` and
//! doubles up to `backoff_max`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::history::{PacketResult, ProbeClusterId};
use super::probe_measure::{ClusterMeasure, Verdict};
use super::Bitrate;

/// Parameters of the prober (`[bwe.probe]` in the config).
#[derive(Clone, Debug, PartialEq)]
pub struct ProberConfig {
    /// Target length of a cluster: long enough that its excess over a
    /// shaped link's rate does not fit in the shaper's burst allowance.
    pub duration: Duration,
    /// A cluster sends at least this many packets.
    pub min_packets: u32,
    /// Size of a padding packet.
    pub packet_size: usize,
    /// Abort when the cluster's packets queue this much more than its first.
    pub abort_delay: Duration,
    /// Give up on a cluster's feedback this long after it ended.
    pub result_timeout: Duration,
    /// Wait after a successful probe.
    pub min_interval: Duration,
    /// Wait after a failed probe, doubling up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// A cluster lasts at least this many times the path's jitter.
    pub jitter_duration_multiple: u32,
    /// The abort threshold grows by this many times the path's jitter.
    pub jitter_abort_multiple: u32,
}

impl Default for ProberConfig {
    fn default() -> Self {
        ProberConfig {
            duration: Duration::from_millis(100),
            min_packets: 5,
            packet_size: 1000,
            abort_delay: Duration::from_millis(25),
            result_timeout: Duration::from_secs(1),
            min_interval: Duration::from_millis(500),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(3),
            jitter_duration_multiple: 5,
            jitter_abort_multiple: 3,
        }
    }
}

/// A padding packet to send now for a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbePacket {
    pub size: usize,
    pub cluster: ProbeClusterId,
}

/// How a probe ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeEnd {
    /// The path carried the probe rate.
    Success,
    /// The path delivered less than the probe rate: the result is its capacity.
    Saturated,
    Loss,
    DelayGrowth,
    /// The caller reported congestion while the cluster ran.
    Congested,
    /// Too little feedback came back in time.
    Timeout,
    /// The path carried the probe rate, but a recent probe at or below it
    /// failed: it counts once the next probe passes too (the leg's
    /// [`ProbeConfirm`](super::confirm::ProbeConfirm); the prober itself
    /// never ends a probe so).
    Unconfirmed,
}

/// The result of one probe cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub cluster: ProbeClusterId,
    /// The rate probed for.
    pub rate: Bitrate,
    /// The rate the path delivered, when enough of the cluster came back.
    pub measured: Option<Bitrate>,
    pub end: ProbeEnd,
}

impl ProbeOutcome {
    pub fn is_success(&self) -> bool {
        self.end == ProbeEnd::Success
    }
}

#[derive(Debug)]
struct Active {
    id: ProbeClusterId,
    rate: Bitrate,
    start: Instant,
    target_bytes: u64,
    bytes: u64,
    packets: u32,
}

/// Counters of the prober.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProberStats {
    pub clusters: u64,
    pub successes: u64,
    pub failures: u64,
    pub aborted: u64,
    pub padding_bytes: u64,
}

#[derive(Debug)]
pub struct Prober {
    cfg: ProberConfig,
    next_id: u32,
    active: Option<Active>,
    /// Clusters sent (or aborted), waiting for their feedback; bounded.
    measures: VecDeque<ClusterMeasure>,
    next_allowed: Option<Instant>,
    backoff: Duration,
    tolerated: f64,
    jitter: Duration,
    stats: ProberStats,
}

const MAX_MEASURES: usize = 4;

impl Prober {
    pub fn new(cfg: ProberConfig) -> Self {
        Prober {
            backoff: cfg.backoff_initial,
            cfg,
            next_id: 1,
            active: None,
            measures: VecDeque::new(),
            next_allowed: None,
            tolerated: 0.0,
            jitter: Duration::ZERO,
            stats: ProberStats::default(),
        }
    }

    pub fn stats(&self) -> ProberStats {
        self.stats
    }

    /// The path's delay noise (RFC 3550 interarrival jitter), for the
    /// clusters that start and the verdicts that follow.
    pub fn set_jitter(&mut self, jitter: Duration) {
        self.jitter = jitter;
    }

    fn cluster_duration(&self) -> Duration {
        (self.jitter * self.cfg.jitter_duration_multiple)
            .clamp(self.cfg.duration, self.cfg.duration * 4)
    }

    fn abort_delay(&self) -> Duration {
        self.cfg.abort_delay + self.jitter * self.cfg.jitter_abort_multiple
    }

    /// A cluster is being sent.
    pub fn is_probing(&self) -> bool {
        self.active.is_some()
    }

    /// A cluster is being sent or awaits its feedback.
    pub fn is_busy(&self) -> bool {
        self.active.is_some() || !self.measures.is_empty()
    }

    /// Whether a new cluster may start at `now` (none running, none
    /// awaiting feedback, the wait after the last one over).
    pub fn can_start(&self, now: Instant) -> bool {
        !self.is_busy() && self.next_allowed.is_none_or(|t| now >= t)
    }

    /// Starts a cluster at `rate` if [`Self::can_start`].
    pub fn start(&mut self, rate: Bitrate, now: Instant) -> Option<ProbeClusterId> {
        if !self.can_start(now) || rate == Bitrate::ZERO {
            return None;
        }
        let id = ProbeClusterId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        let min_bytes = self.cfg.min_packets as u64 * self.cfg.packet_size as u64;
        let target_bytes = (rate.bytes_in(self.cluster_duration()) as u64).max(min_bytes);
        self.active = Some(Active {
            id,
            rate,
            start: now,
            target_bytes,
            bytes: 0,
            packets: 0,
        });
        self.measures.push_back(ClusterMeasure::new(id, rate, now));
        while self.measures.len() > MAX_MEASURES {
            self.measures.pop_front();
        }
        self.stats.clusters += 1;
        Some(id)
    }

    /// Every media packet sent on the leg: counts towards a running cluster
    /// and returns its id to record in the send history. (Padding from
    /// [`Self::poll`] is counted when polled and carries its id already.)
    pub fn on_media_sent(&mut self, size: usize, now: Instant) -> Option<ProbeClusterId> {
        let a = self.active.as_mut()?;
        a.bytes += size as u64;
        a.packets += 1;
        let id = a.id;
        self.finish_if_done(now);
        Some(id)
    }

    /// The next padding packet, when one is due at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<ProbePacket> {
        let due = self.deadline_of_active()?;
        if now < due {
            return None;
        }
        let a = self.active.as_mut()?;
        let size = self.cfg.packet_size;
        a.bytes += size as u64;
        a.packets += 1;
        self.stats.padding_bytes += size as u64;
        let cluster = a.id;
        self.finish_if_done(now);
        Some(ProbePacket { size, cluster })
    }

    /// When [`Self::poll`] next has a packet, or a result times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timeout = self
            .measures
            .iter()
            .filter_map(|m| m.ended.map(|e| e + self.cfg.result_timeout))
            .min();
        match (self.deadline_of_active(), timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn deadline_of_active(&self) -> Option<Instant> {
        let a = self.active.as_ref()?;
        Some(a.start + a.rate.time_for(a.bytes))
    }

    fn finish_if_done(&mut self, now: Instant) {
        let done = self
            .active
            .as_ref()
            .is_some_and(|a| a.bytes >= a.target_bytes && a.packets >= self.cfg.min_packets);
        if done {
            self.end_active(now);
        }
    }

    fn end_active(&mut self, now: Instant) {
        if let Some(a) = self.active.take() {
            if let Some(m) = self.measures.iter_mut().find(|m| m.id == a.id) {
                m.sent_packets = a.packets;
                m.ended = Some(now);
            }
        }
    }

    /// Stops the running cluster (the leg is congested); its outcome comes
    /// with the feedback.
    pub fn abort(&mut self, now: Instant) -> Option<ProbeOutcome> {
        let a = self.active.as_ref()?;
        let id = a.id;
        self.end_active(now);
        let pos = self.measures.iter().position(|m| m.id == id)?;
        let m = self.measures.remove(pos)?;
        Some(self.conclude(m, Some(ProbeEnd::Congested), now))
    }

    /// Feeds one feedback's results; returns the outcome of a cluster that
    /// completed, failed or timed out. `tolerated_loss` is the fraction of
    /// packets the path loses without congestion (a loss within it does not
    /// abort a probe).
    pub fn on_feedback(
        &mut self,
        results: &[PacketResult],
        tolerated_loss: f64,
        now: Instant,
    ) -> Option<ProbeOutcome> {
        self.tolerated = tolerated_loss.clamp(0.0, 0.5);
        for m in self.measures.iter_mut() {
            m.on_results(results);
        }
        self.poll_outcome(now)
    }

    /// Outcomes due at `now` without feedback (time-outs).
    pub fn poll_outcome(&mut self, now: Instant) -> Option<ProbeOutcome> {
        let abort_delay = self.abort_delay();
        let tolerated = self.tolerated;
        let timeout = self.cfg.result_timeout;
        let active_id = self.active.as_ref().map(|a| a.id);
        let pos = self.measures.iter().position(|m| {
            m.verdict(abort_delay, tolerated) != Verdict::Pending
                || m.complete()
                || m.ended
                    .is_some_and(|e| now.saturating_duration_since(e) >= timeout)
        })?;
        let m = self.measures.remove(pos)?;
        let forced = match m.verdict(abort_delay, tolerated) {
            Verdict::Loss => Some(ProbeEnd::Loss),
            Verdict::DelayGrowth => Some(ProbeEnd::DelayGrowth),
            Verdict::Pending if !m.complete() => Some(ProbeEnd::Timeout),
            Verdict::Pending => None,
        };
        if active_id == Some(m.id) {
            // Aborted at once: no more padding for this cluster.
            self.active = None;
            self.stats.aborted += 1;
        }
        Some(self.conclude(m, forced, now))
    }

    fn conclude(
        &mut self,
        m: ClusterMeasure,
        forced: Option<ProbeEnd>,
        now: Instant,
    ) -> ProbeOutcome {
        let measured = m.result(self.cfg.min_packets);
        let end = match (forced, measured) {
            (Some(end), _) => end,
            (None, Some((_, true))) => ProbeEnd::Success,
            // Short of the cluster's own send rate (media sent meanwhile
            // adds to it) but above the rate probed for: that rate is proven.
            (None, Some((r, false))) if r >= m.rate => ProbeEnd::Success,
            (None, Some((_, false))) => ProbeEnd::Saturated,
            (None, None) => ProbeEnd::Timeout,
        };
        if end == ProbeEnd::Success {
            self.stats.successes += 1;
            self.backoff = self.cfg.backoff_initial;
            self.next_allowed = Some(now + self.cfg.min_interval);
        } else {
            self.stats.failures += 1;
            self.next_allowed = Some(now + self.backoff);
            self.backoff = (self.backoff * 2).min(self.cfg.backoff_max);
        }
        ProbeOutcome {
            cluster: m.id,
            rate: m.rate,
            measured: measured.map(|(r, _)| r),
            end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::bwe::history::{PacketKind, SentPacket, TransportSeq};

    const MS: Duration = Duration::from_millis(1);

    /// Drives a cluster by polling every 100 us; returns (time, packet) sent.
    fn drain(p: &mut Prober, from: Instant, until: Instant) -> Vec<(Instant, ProbePacket)> {
        let mut out = Vec::new();
        let mut t = from;
        while t < until {
            while let Some(pkt) = p.poll(t) {
                out.push((t, pkt));
            }
            t += Duration::from_micros(100);
        }
        out
    }

    fn feedback(
        sent: &[(Instant, ProbePacket)],
        t0: Instant,
        recv_gap_us: i64,
        lose: Option<usize>,
    ) -> Vec<PacketResult> {
        sent.iter()
            .enumerate()
            .map(|(i, (at, pkt))| PacketResult {
                sent: SentPacket {
                    seq: TransportSeq(i as u64),
                    sent_at: *at,
                    size: pkt.size as u32,
                    kind: PacketKind::Padding,
                    probe: Some(pkt.cluster),
                },
                arrival_us: (lose != Some(i)).then_some(
                    (sent[0].0 - t0).as_micros() as i64 + 30_000 + i as i64 * recv_gap_us,
                ),
            })
            .collect()
    }

    #[test]
    fn a_cluster_sends_its_bytes_at_its_rate_then_stops() {
        let t0 = Instant::now();
        let mut p = Prober::new(ProberConfig {
            duration: 50 * MS,
            ..ProberConfig::default()
        });
        let id = p.start(Bitrate::kbps(1600), t0).unwrap();
        assert!(p.start(Bitrate::kbps(1600), t0).is_none(), "one at a time");
        let sent = drain(&mut p, t0, t0 + 200 * MS);
        // 1.6 Mbit/s x 50 ms = 10 kB = 10 packets, one every 5 ms.
        assert_eq!(sent.len(), 10);
        assert!(sent
            .iter()
            .all(|(_, pkt)| pkt.cluster == id && pkt.size == 1000));
        let last = sent.last().unwrap().0 - t0;
        assert!(last >= 45 * MS && last <= 46 * MS, "{last:?}");
        assert!(!p.is_probing());
        assert_eq!(p.stats().padding_bytes, 10_000);
    }

    #[test]
    fn media_sent_during_a_cluster_replaces_padding() {
        let t0 = Instant::now();
        let mut p = Prober::new(ProberConfig {
            duration: 50 * MS,
            ..ProberConfig::default()
        });
        let id = p.start(Bitrate::kbps(1600), t0).unwrap();
        for i in 0..4 {
            assert_eq!(p.on_media_sent(1000, t0 + i * MS), Some(id));
        }
        let sent = drain(&mut p, t0, t0 + 200 * MS);
        assert_eq!(sent.len(), 6);
        assert_eq!(p.on_media_sent(1000, t0 + 300 * MS), None, "cluster over");
    }

    #[test]
    fn a_delivered_probe_succeeds_and_a_saturated_one_measures_capacity() {
        let t0 = Instant::now();
        let mut p = Prober::new(ProberConfig::default());
        p.start(Bitrate::kbps(1600), t0).unwrap();
        let sent = drain(&mut p, t0, t0 + 100 * MS);
        let out = p
            .on_feedback(&feedback(&sent, t0, 5000, None), 0.0, t0 + 150 * MS)
            .unwrap();
        assert_eq!(out.end, ProbeEnd::Success);
        let m = out.measured.unwrap().as_f64();
        assert!((m - 1_600_000.0).abs() < 20_000.0, "{m}");
        // The next one may start after the short interval.
        assert!(!p.can_start(t0 + 600 * MS));
        let t1 = t0 + 650 * MS;
        p.start(Bitrate::kbps(1600), t1).unwrap();
        let sent = drain(&mut p, t1, t1 + 100 * MS);
        // Arriving at half the rate, but growing less than the abort delay:
        // use a larger abort delay to see the saturated verdict.
        p.cfg.abort_delay = Duration::from_secs(1);
        let out = p
            .on_feedback(&feedback(&sent, t0, 10_000, None), 0.0, t1 + 200 * MS)
            .unwrap();
        assert_eq!(out.end, ProbeEnd::Saturated);
        let m = out.measured.unwrap().as_f64();
        assert!((m - 760_000.0).abs() < 20_000.0, "{m}");
        assert!(!p.can_start(t1 + 1100 * MS), "backoff after failure");
        assert!(p.can_start(t1 + 1200 * MS));
    }

    #[test]
    fn loss_aborts_the_running_cluster_at_once() {
        let t0 = Instant::now();
        let mut p = Prober::new(ProberConfig {
            duration: Duration::from_millis(500),
            ..Default::default()
        });
        p.start(Bitrate::kbps(1600), t0).unwrap();
        let sent = drain(&mut p, t0, t0 + 30 * MS);
        let out = p
            .on_feedback(&feedback(&sent, t0, 5000, Some(2)), 0.0, t0 + 30 * MS)
            .unwrap();
        assert_eq!(out.end, ProbeEnd::Loss);
        assert!(!p.is_probing());
        assert_eq!(p.poll(t0 + 400 * MS), None);
        assert_eq!(p.stats().aborted, 1);
    }

    #[test]
    fn a_cluster_without_feedback_times_out_and_backs_off_more_each_time() {
        let t0 = Instant::now();
        let mut p = Prober::new(ProberConfig::default());
        let mut t = t0;
        let mut waits = Vec::new();
        for _ in 0..4 {
            p.start(Bitrate::kbps(800), t).unwrap();
            drain(&mut p, t, t + 100 * MS);
            let due = p.next_deadline().unwrap();
            let out = p.poll_outcome(due).unwrap();
            assert_eq!(out.end, ProbeEnd::Timeout);
            let mut w = due;
            while !p.can_start(w) {
                w += 10 * MS;
            }
            waits.push((w - due).as_millis());
            t = w;
        }
        assert_eq!(waits, vec![1000, 2000, 3000, 3000]);
    }

    #[test]
    fn abort_by_the_caller_ends_the_cluster() {
        let t0 = Instant::now();
        let mut p = Prober::new(ProberConfig::default());
        p.start(Bitrate::kbps(1600), t0).unwrap();
        drain(&mut p, t0, t0 + 10 * MS);
        let out = p.abort(t0 + 10 * MS).unwrap();
        assert_eq!(out.end, ProbeEnd::Congested);
        assert!(!p.is_busy());
        assert_eq!(p.poll(t0 + 40 * MS), None);
    }
}
