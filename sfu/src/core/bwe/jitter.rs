//! The path's delay noise, as RFC 3550 measures interarrival jitter: for
//! each received packet, how much its transit time differs from the
//! previous one's, smoothed over 16 packets; only packets sent at least
//! 5 ms after the one compared with count (within a burst, a slow link's
//! serialization spreads arrivals, and that is its rate, not noise).
//!
//! A probe is judged by the delay and spacing of a few dozen packets; on a
//! path whose delay jumps by tens of milliseconds anyway (a busy machine's
//! scheduling, a Wi-Fi link) that noise alone would make most probes look
//! like they built a queue. The prober widens its clusters and its
//! thresholds by this figure (see [`super::prober`]).

use std::time::{Duration, Instant};

use super::history::PacketResult;

/// Packets sent closer than this belong to one burst.
const GROUP_SPAN_US: i64 = 5_000;

/// A single transit difference above this is an outlier (a pause, a
/// reordering of feedback), not noise: it counts at this much.
const MAX_SAMPLE_US: f64 = 100_000.0;

#[derive(Clone, Debug, Default)]
pub struct Jitter {
    last: Option<(Instant, i64)>,
    jitter_us: f64,
}

impl Jitter {
    /// Takes the results of one feedback, in sending order.
    pub fn on_results(&mut self, results: &[PacketResult]) {
        for r in results {
            let Some(arrival) = r.arrival_us else {
                continue;
            };
            let sent = r.sent.sent_at;
            if let Some((prev_sent, prev_arrival)) = self.last {
                let send_gap = if sent >= prev_sent {
                    sent.duration_since(prev_sent).as_micros() as i64
                } else {
                    -(prev_sent.duration_since(sent).as_micros() as i64)
                };
                // Packets sent together (a frame's burst) are spread by the
                // link's serialization, which is rate, not noise: compare
                // only packets sent apart, as the delay detector's groups do.
                if send_gap.abs() < GROUP_SPAN_US {
                    continue;
                }
                let d = ((arrival - prev_arrival) - send_gap).unsigned_abs() as f64;
                self.jitter_us += (d.min(MAX_SAMPLE_US) - self.jitter_us) / 16.0;
            }
            self.last = Some((sent, arrival));
        }
    }

    /// The smoothed jitter.
    pub fn get(&self) -> Duration {
        Duration::from_micros(self.jitter_us.max(0.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::bwe::history::{PacketKind, SentPacket, TransportSeq};

    fn result(t0: Instant, i: u64, sent_us: u64, arrival_us: i64) -> PacketResult {
        PacketResult {
            sent: SentPacket {
                seq: TransportSeq(i),
                sent_at: t0 + Duration::from_micros(sent_us),
                size: 1000,
                kind: PacketKind::Video,
                probe: None,
            },
            arrival_us: Some(arrival_us),
        }
    }

    #[test]
    fn a_steady_path_has_none_and_a_noisy_one_shows_its_noise() {
        let t0 = Instant::now();
        let mut steady = Jitter::default();
        let rs: Vec<_> = (0..100)
            .map(|i| result(t0, i, i * 10_000, 5_000 + i as i64 * 10_000))
            .collect();
        steady.on_results(&rs);
        assert_eq!(steady.get(), Duration::ZERO);

        // Transit alternating between 5 and 25 ms: each difference is 20 ms.
        let mut noisy = Jitter::default();
        let rs: Vec<_> = (0..200)
            .map(|i| {
                let transit = if i % 2 == 0 { 5_000 } else { 25_000 };
                result(t0, i, i * 10_000, i as i64 * 10_000 + transit)
            })
            .collect();
        noisy.on_results(&rs);
        let j = noisy.get().as_micros();
        assert!((19_000..=20_000).contains(&j), "{j}");
    }

    #[test]
    fn a_burst_spread_by_a_slow_link_is_no_jitter() {
        let t0 = Instant::now();
        let mut j = Jitter::default();
        // Frames of 5 packets every 33 ms, sent at once, arriving 12 ms
        // apart (1,200 bytes at 800 kbit/s).
        let rs: Vec<_> = (0..100u64)
            .map(|i| {
                let frame = i / 5;
                let sent = frame * 33_000;
                result(t0, i, sent, sent as i64 + 2_000 + (i % 5) as i64 * 12_000)
            })
            .collect();
        j.on_results(&rs);
        assert!(j.get() < Duration::from_millis(2), "{:?}", j.get());
    }

    #[test]
    fn lost_packets_are_skipped() {
        let t0 = Instant::now();
        let mut j = Jitter::default();
        let mut rs: Vec<_> = (0..50)
            .map(|i| result(t0, i, i * 10_000, i as i64 * 10_000))
            .collect();
        for r in rs.iter_mut().step_by(3) {
            r.arrival_us = None;
        }
        j.on_results(&rs);
        assert_eq!(j.get(), Duration::ZERO);
    }
}
