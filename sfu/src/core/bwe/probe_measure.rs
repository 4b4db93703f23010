//! What the feedback says about one probe cluster.
//!
//! Every packet sent while a cluster runs (padding and media alike) carries
//! the cluster's id. The send rate is measured over the cluster's send
//! times, the receive rate over its arrival times; a receive rate well
//! below the send rate means the path saturated and the receive rate is its
//! capacity.

use std::time::{Duration, Instant};

use super::history::{PacketResult, ProbeClusterId};
use super::Bitrate;

/// Received below this fraction of the send rate: the path saturated.
const SATURATED_RATIO: f64 = 0.9;
/// A saturated result is taken at this fraction of the receive rate.
const SATURATED_USE: f64 = 0.95;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Still waiting for feedback.
    Pending,
    /// A packet of the cluster was lost.
    Loss,
    /// The one-way delay of the cluster's packets grew past the limit.
    DelayGrowth,
}

#[derive(Debug)]
pub(crate) struct ClusterMeasure {
    pub id: ProbeClusterId,
    pub rate: Bitrate,
    pub started: Instant,
    pub sent_packets: u32,
    pub ended: Option<Instant>,
    reported: u32,
    received: u32,
    lost: u32,
    first_send: Option<Instant>,
    last_send: Option<Instant>,
    last_send_size: u32,
    send_bytes: u64,
    min_owd_us: Option<i64>,
    /// One-way delay of the latest-sent packet received so far.
    last_sent_owd_us: Option<i64>,
    last_sent_received: Option<Instant>,
    /// One-way delay against send time, for the least-squares slope.
    fit: Fit,
}

/// Least-squares line through (send time, one-way delay) points, in
/// milliseconds.
#[derive(Debug, Default)]
struct Fit {
    n: f64,
    x: f64,
    y: f64,
    xx: f64,
    xy: f64,
}

impl Fit {
    fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        self.x += x;
        self.y += y;
        self.xx += x * x;
        self.xy += x * y;
    }

    fn slope(&self) -> Option<f64> {
        let d = self.n * self.xx - self.x * self.x;
        (self.n >= 2.0 && d > f64::EPSILON).then(|| (self.n * self.xy - self.x * self.y) / d)
    }
}

impl ClusterMeasure {
    pub(crate) fn new(id: ProbeClusterId, rate: Bitrate, started: Instant) -> Self {
        ClusterMeasure {
            id,
            rate,
            started,
            sent_packets: 0,
            ended: None,
            reported: 0,
            received: 0,
            lost: 0,
            first_send: None,
            last_send: None,
            last_send_size: 0,
            send_bytes: 0,
            min_owd_us: None,
            last_sent_owd_us: None,
            last_sent_received: None,
            fit: Fit::default(),
        }
    }

    /// Takes this cluster's packets from one feedback.
    pub(crate) fn on_results(&mut self, results: &[PacketResult]) {
        for r in results.iter().filter(|r| r.sent.probe == Some(self.id)) {
            self.reported += 1;
            let s = r.sent.sent_at;
            if self.first_send.is_none_or(|f| s < f) {
                self.first_send = Some(s);
            }
            if self.last_send.is_none_or(|l| s >= l) {
                self.last_send = Some(s);
                self.last_send_size = r.sent.size;
            }
            self.send_bytes += r.sent.size as u64;
            let Some(arrival) = r.arrival_us else {
                self.lost += 1;
                continue;
            };
            self.received += 1;
            // One-way delay up to an unknown clock offset: only its growth counts.
            let owd = arrival
                .saturating_sub(s.saturating_duration_since(self.started).as_micros() as i64);
            self.min_owd_us = Some(self.min_owd_us.map_or(owd, |m| m.min(owd)));
            let x_ms = s.saturating_duration_since(self.started).as_secs_f64() * 1000.0;
            self.fit.add(x_ms, owd as f64 / 1000.0);
            if self.last_sent_received.is_none_or(|l| s >= l) {
                self.last_sent_received = Some(s);
                self.last_sent_owd_us = Some(owd);
            }
        }
    }

    /// How much more the latest-sent packet received so far was delayed
    /// than the cluster's least delayed one. A queue the probe builds
    /// delays each packet more than the one before, so the latest-sent
    /// shows it. A receiver that was not scheduled for a while (a busy
    /// machine) stamps the packets that waited all at once: the first of
    /// them look delayed, and the later ones catch up.
    fn growth_us(&self) -> i64 {
        match (self.last_sent_owd_us, self.min_owd_us) {
            (Some(last), Some(min)) => last - min,
            _ => 0,
        }
    }

    /// Loss or delay growth seen so far. `tolerated` is the fraction of
    /// packets the path loses anyway (random loss, not congestion): losses
    /// up to that count are not the probe's doing.
    pub(crate) fn verdict(&self, abort_delay: Duration, tolerated: f64) -> Verdict {
        if self.lost as f64 > tolerated * self.reported as f64 + 0.5 {
            Verdict::Loss
        } else if self.growth_us() > abort_delay.as_micros() as i64 {
            Verdict::DelayGrowth
        } else {
            Verdict::Pending
        }
    }

    /// Every packet sent in the cluster has been reported.
    pub(crate) fn complete(&self) -> bool {
        self.ended.is_some() && self.reported >= self.sent_packets
    }

    #[cfg(test)]
    pub(crate) fn received(&self) -> u32 {
        self.received
    }

    /// The measured deliverable rate and whether the path kept up with the
    /// send rate; `None` without enough received packets.
    ///
    /// How much the path stretched the cluster is the slope of its packets'
    /// one-way delay over their send times, fitted by least squares: a path
    /// that keeps up adds no delay along the cluster (slope 0), a bottleneck
    /// of capacity C under a probe at rate R adds R/C - 1 per unit of time.
    /// Delay noise moves single packets, which would stretch or shrink a
    /// span measured from the earliest to the latest arrival; the fit
    /// averages it out over every packet.
    pub(crate) fn result(&self, min_packets: u32) -> Option<(Bitrate, bool)> {
        if self.received < min_packets.max(2) {
            return None;
        }
        let send_span = self.last_send?.saturating_duration_since(self.first_send?);
        if send_span.is_zero() {
            return None;
        }
        // The span covers all packets but one: the last sent.
        let send = Bitrate::from_bytes(self.send_bytes - self.last_send_size as u64, send_span);
        let slope = self.fit.slope()?;
        // A receiver that was not scheduled for a while stamps what waited
        // at once: the delay falls along the cluster. That is no faster path.
        let recv = send.scale(1.0 / (1.0 + slope.max(-0.5)));
        if recv.as_f64() < SATURATED_RATIO * send.as_f64() {
            Some((recv.scale(SATURATED_USE), false))
        } else {
            Some((send.min(recv), true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::bwe::history::{PacketKind, SentPacket, TransportSeq};

    const MS: Duration = Duration::from_millis(1);

    /// A 2 Mbit/s cluster that started at `t0`, sent `packets` and ended
    /// `after` it.
    fn sent(t0: Instant, packets: u32, after: Duration) -> ClusterMeasure {
        let mut m = ClusterMeasure::new(ProbeClusterId(1), Bitrate::kbps(2000), t0);
        m.sent_packets = packets;
        m.ended = Some(t0 + after);
        m
    }

    /// `n` packets of 1000 bytes sent every `send_gap_us`, arriving every
    /// `recv_gap_us` (a bottleneck spaces them), some lost.
    fn results(
        t0: Instant,
        n: u64,
        send_gap_us: u64,
        recv_gap_us: i64,
        lost: &[u64],
    ) -> Vec<PacketResult> {
        (0..n)
            .map(|i| PacketResult {
                sent: SentPacket {
                    seq: TransportSeq(i),
                    sent_at: t0 + Duration::from_micros(i * send_gap_us),
                    size: 1000,
                    kind: PacketKind::Padding,
                    probe: Some(ProbeClusterId(1)),
                },
                arrival_us: (!lost.contains(&i)).then_some(50_000 + i as i64 * recv_gap_us),
            })
            .collect()
    }

    #[test]
    fn a_probe_the_path_keeps_up_with_measures_the_send_rate() {
        let t0 = Instant::now();
        let mut m = sent(t0, 10, 40 * MS);
        // 1000 bytes every 4 ms = 2 Mbit/s, arriving just as spaced.
        m.on_results(&results(t0, 10, 4000, 4000, &[]));
        assert!(m.complete());
        assert_eq!(m.verdict(20 * MS, 0.0), Verdict::Pending);
        assert_eq!(m.result(5), Some((Bitrate::kbps(2000), true)));
    }

    /// Arrivals of `results` moved by up to `amplitude_us` of noise
    /// (a fixed pseudo-random sequence), never before the previous one.
    fn with_noise(mut r: Vec<PacketResult>, amplitude_us: i64) -> Vec<PacketResult> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut prev = i64::MIN;
        for p in r.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let noise = (x % (amplitude_us as u64 + 1)) as i64;
            let a = p.arrival_us.unwrap() + noise;
            p.arrival_us = Some(a.max(prev));
            prev = a.max(prev);
        }
        r
    }

    #[test]
    fn delay_noise_neither_fails_a_probe_the_path_keeps_up_with_nor_hides_a_bottleneck() {
        let t0 = Instant::now();
        // 150 ms at 2 Mbit/s (38 packets) with up to 30 ms of noise on
        // each arrival: the earliest and latest arrivals alone would say
        // the path delivered a sixth less than it did.
        let mut ok = sent(t0, 38, 150 * MS);
        ok.on_results(&with_noise(results(t0, 38, 4000, 4000, &[]), 30_000));
        let (rate, reached) = ok.result(5).unwrap();
        assert!(reached, "{rate}");
        // The same noise on a bottleneck at 1.5 Mbit/s.
        let mut sat = sent(t0, 38, 150 * MS);
        sat.on_results(&with_noise(results(t0, 38, 4000, 5333, &[]), 30_000));
        let (rate, reached) = sat.result(5).unwrap();
        assert!(!reached, "{rate}");
        assert!(
            (1200..=1600).contains(&(rate.as_f64() as u64 / 1000)),
            "about 95% of 1.5 Mbit/s: {rate}"
        );
    }

    #[test]
    fn a_saturated_probe_measures_the_bottleneck() {
        let t0 = Instant::now();
        let mut m = sent(t0, 10, 40 * MS);
        // Sent at 2 Mbit/s, arriving at 1 Mbit/s: the queue grows 4 ms a packet.
        m.on_results(&results(t0, 10, 4000, 8000, &[]));
        let (rate, ok) = m.result(5).unwrap();
        assert!(!ok);
        assert_eq!(rate, Bitrate::kbps(950));
        assert_eq!(
            m.verdict(20 * MS, 0.0),
            Verdict::DelayGrowth,
            "36 ms of growth"
        );
    }

    #[test]
    fn delay_a_busy_receiver_adds_at_once_is_no_reason_to_abort() {
        let t0 = Instant::now();
        let mut m = sent(t0, 10, 40 * MS);
        // Sent every 4 ms. The receiver stamps the first three on time,
        // is then not scheduled until 42 ms and stamps the seven that
        // waited 0.1 ms apart: the first of those was delayed 30 ms more.
        let mut r = results(t0, 10, 4000, 4000, &[]);
        for (i, p) in r.iter_mut().enumerate().skip(3) {
            p.arrival_us = Some(50_000 + 42_000 + (i as i64 - 3) * 100);
        }
        m.on_results(&r);
        assert_eq!(m.verdict(20 * MS, 0.0), Verdict::Pending);
        // A queue that grows to the end is still seen, whatever the order
        // of the reports.
        let mut q = ClusterMeasure::new(ProbeClusterId(1), Bitrate::kbps(2000), t0);
        let mut r = results(t0, 10, 4000, 8000, &[]);
        r.reverse();
        q.on_results(&r[..5]);
        q.on_results(&r[5..]);
        assert_eq!(q.verdict(20 * MS, 0.0), Verdict::DelayGrowth);
    }

    #[test]
    fn loss_or_too_few_packets_are_seen() {
        let t0 = Instant::now();
        let mut m = ClusterMeasure::new(ProbeClusterId(1), Bitrate::kbps(2000), t0);
        m.sent_packets = 10;
        m.on_results(&results(t0, 3, 4000, 4000, &[1]));
        assert_eq!(m.verdict(20 * MS, 0.0), Verdict::Loss);
        // On a path that loses 40% anyway, one loss in three is no verdict.
        assert_eq!(m.verdict(20 * MS, 0.4), Verdict::Pending);
        assert!(!m.complete());
        assert_eq!(m.result(5), None, "two received packets say nothing");
        // Packets of other clusters are not counted.
        let mut other = results(t0, 3, 4000, 4000, &[]);
        other
            .iter_mut()
            .for_each(|r| r.sent.probe = Some(ProbeClusterId(2)));
        m.on_results(&other);
        assert_eq!(m.received(), 2);
    }
}
