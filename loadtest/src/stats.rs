//! What a subscribing bot measures, as plain structs fed with packets and
//! times: loss after retransmission, interarrival jitter, end-to-end latency
//! percentiles and video freezes. No clock is read here; callers pass `now`.

use std::time::{Duration, Instant};

/// Unwraps 16-bit RTP sequence numbers into a 64-bit count and tells which
/// packets are missing. A retransmission that fills a gap counts as received;
/// a duplicate counts once.
#[derive(Debug, Default, Clone)]
pub struct SeqTracker {
    first: Option<u64>,
    highest: u64,
    /// One bit per packet since the first: a bitmap rather than a set, so a
    /// long run costs a bit per packet and no hashing.
    seen: Vec<u64>,
    received: u64,
    duplicates: u64,
}

/// Packets tracked per track (an hour of 1.5 Mbps video is far below it);
/// later ones are ignored rather than growing memory without bound.
const MAX_TRACKED: u64 = 1 << 26;

impl SeqTracker {
    /// Records one packet; returns its extended sequence number and whether
    /// it advanced the highest number seen (a first, in-order arrival).
    pub fn on_packet(&mut self, seq: u16) -> (u64, bool) {
        let ext = match self.first {
            None => {
                // Start far from zero so an early reordered packet cannot
                // underflow.
                let ext = (1u64 << 32) + seq as u64;
                self.first = Some(ext);
                self.highest = ext;
                ext
            }
            Some(_) => {
                // The candidate nearest to the highest seen, by wrap-around.
                let base = self.highest & !0xffff;
                let mut ext = base + seq as u64;
                if ext + 0x8000 < self.highest {
                    ext += 0x1_0000;
                } else if ext > self.highest + 0x8000 {
                    ext -= 0x1_0000;
                }
                ext
            }
        };
        let first = self.first.unwrap_or(ext);
        if ext < first {
            // Older than the first packet measured: outside the window.
            return (ext, false);
        }
        let offset = ext - first;
        if offset >= MAX_TRACKED {
            return (ext, false);
        }
        let (word, bit) = ((offset / 64) as usize, offset % 64);
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return (ext, false);
        }
        self.seen[word] |= 1 << bit;
        self.received += 1;
        let advanced = ext > self.highest || self.received == 1;
        if ext > self.highest {
            self.highest = ext;
        }
        (ext, advanced)
    }

    /// Packets expected from the first to the highest sequence number seen.
    pub fn expected(&self) -> u64 {
        self.first.map_or(0, |f| self.highest - f + 1)
    }

    /// Distinct packets received.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets never received, retransmissions counted.
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received())
    }

    /// Copies of packets already received (retransmissions that were not needed).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

/// RFC 3550 interarrival jitter, in RTP clock units, fed with in-order
/// first arrivals only.
#[derive(Debug, Clone)]
pub struct Jitter {
    clock_rate: u32,
    last: Option<(Instant, u32)>,
    jitter: f64,
}

impl Jitter {
    pub fn new(clock_rate: u32) -> Self {
        Jitter {
            clock_rate,
            last: None,
            jitter: 0.0,
        }
    }

    pub fn on_packet(&mut self, arrival: Instant, rtp_timestamp: u32) {
        if let Some((prev_arrival, prev_ts)) = self.last {
            let arrival_diff =
                arrival.duration_since(prev_arrival).as_secs_f64() * self.clock_rate as f64;
            let ts_diff = rtp_timestamp.wrapping_sub(prev_ts) as i32 as f64;
            let d = (arrival_diff - ts_diff).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last = Some((arrival, rtp_timestamp));
    }

    /// The current estimate in milliseconds.
    pub fn ms(&self) -> f64 {
        self.jitter * 1000.0 / self.clock_rate as f64
    }
}

/// Counts "no new frame for more than `threshold`" stalls of a video track,
/// fed with the frames that became decodable ([`crate::playout`]).
#[derive(Debug, Clone)]
pub struct FreezeDetector {
    threshold: Duration,
    /// When the last frame came (or the track's window began).
    last_at: Option<Instant>,
    pub frames: u64,
    pub freezes: u64,
    pub frozen: Duration,
}

impl FreezeDetector {
    pub fn new(threshold: Duration) -> Self {
        FreezeDetector {
            threshold,
            last_at: None,
            frames: 0,
            freezes: 0,
            frozen: Duration::ZERO,
        }
    }

    /// The track is being watched from `now` on (its first packet in the
    /// window): a track whose packets arrive but whose frames never become
    /// decodable is frozen from here.
    pub fn begin(&mut self, now: Instant) {
        self.last_at.get_or_insert(now);
    }

    /// `n` frames became decodable at `now`.
    pub fn on_frames(&mut self, now: Instant, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(at) = self.last_at {
            self.gap(now.saturating_duration_since(at));
        }
        self.frames += n;
        self.last_at = Some(now);
    }

    fn gap(&mut self, gap: Duration) {
        if gap > self.threshold {
            self.freezes += 1;
            self.frozen += gap;
        }
    }

    /// The measured window ended at `end`: a stall still going counts.
    pub fn finish(&mut self, end: Instant) {
        if let Some(at) = self.last_at {
            self.gap(end.saturating_duration_since(at));
            self.last_at = Some(end);
        }
    }
}

/// A histogram of durations with 10 µs buckets up to 50 ms and 1 ms buckets
/// up to 10 s (beyond that, the last bucket). Bounded memory, mergeable.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

const FINE_STEP_US: u64 = 10;
const FINE_END_US: u64 = 50_000;
const COARSE_STEP_US: u64 = 1_000;
const COARSE_END_US: u64 = 10_000_000;
const FINE_BUCKETS: usize = (FINE_END_US / FINE_STEP_US) as usize;
const BUCKETS: usize = FINE_BUCKETS + ((COARSE_END_US - FINE_END_US) / COARSE_STEP_US) as usize;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        let i = if us < FINE_END_US {
            (us / FINE_STEP_US) as usize
        } else {
            (FINE_BUCKETS + ((us - FINE_END_US) / COARSE_STEP_US) as usize).min(BUCKETS - 1)
        };
        self.counts[i] += 1;
        self.total += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The upper bound of the bucket holding the `q` quantile (0..=1), in
    /// milliseconds; `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let upper_us = if i < FINE_BUCKETS {
                    (i as u64 + 1) * FINE_STEP_US
                } else {
                    FINE_END_US + (i - FINE_BUCKETS + 1) as u64 * COARSE_STEP_US
                };
                return Some(upper_us as f64 / 1000.0);
            }
        }
        None
    }

    pub fn percentiles(&self) -> Percentiles {
        Percentiles {
            p50: self.quantile_ms(0.50),
            p95: self.quantile_ms(0.95),
            p99: self.quantile_ms(0.99),
        }
    }
}

/// p50, p95 and p99 in milliseconds (`null` in JSON when nothing was measured).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// Percentiles of a list of samples (nearest rank), for small lists such
/// as join times.
pub fn percentiles_of(samples: &[f64]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    };
    Percentiles {
        p50: at(0.50),
        p95: at(0.95),
        p99: at(0.99),
    }
}

/// Everything measured on one received track.
#[derive(Debug, Clone)]
pub struct TrackStats {
    pub video: bool,
    pub seq: SeqTracker,
    pub jitter: Jitter,
    pub freeze: FreezeDetector,
    pub bytes: u64,
    pub packets: u64,
}

/// Video stalls longer than this count as freezes.
pub const FREEZE_THRESHOLD: Duration = Duration::from_millis(500);

impl TrackStats {
    pub fn new(video: bool) -> Self {
        TrackStats {
            video,
            seq: SeqTracker::default(),
            jitter: Jitter::new(if video { 90_000 } else { 48_000 }),
            freeze: FreezeDetector::new(FREEZE_THRESHOLD),
            bytes: 0,
            packets: 0,
        }
    }

    /// One RTP packet arrived at `now`.
    pub fn on_packet(&mut self, now: Instant, seq: u16, timestamp: u32, size: usize) {
        self.packets += 1;
        self.bytes += size as u64;
        let (_, in_order) = self.seq.on_packet(seq);
        if in_order {
            self.jitter.on_packet(now, timestamp);
        }
        if self.video {
            self.freeze.begin(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_counts_gaps_not_filled_by_retransmission() {
        let mut s = SeqTracker::default();
        // 65530..=65535, 0..=9 with 65533, 2 and 5 missing, then 2 retransmitted
        // late, 7 duplicated and 65531 arriving out of order.
        let order: Vec<u16> = vec![
            65530, 65532, 65534, 65535, 65531, 0, 1, 3, 4, 6, 7, 7, 8, 9, 2,
        ];
        for q in order {
            s.on_packet(q);
        }
        assert_eq!(s.expected(), 16);
        assert_eq!(s.received(), 14);
        assert_eq!(s.lost(), 2); // 65533 and 5
        assert_eq!(s.duplicates(), 1);
    }

    #[test]
    fn wraps_many_times_without_drift() {
        let mut s = SeqTracker::default();
        let mut q: u16 = 100;
        for i in 0..200_000u32 {
            if i % 1000 != 0 {
                s.on_packet(q);
            }
            q = q.wrapping_add(1);
        }
        assert_eq!(s.expected(), 200_000 - 1); // the very first was skipped
        assert_eq!(s.lost(), 199);
    }

    #[test]
    fn jitter_is_zero_for_perfect_pacing_and_matches_rfc_formula() {
        let t0 = Instant::now();
        let mut j = Jitter::new(90_000);
        for i in 0..100u32 {
            j.on_packet(t0 + Duration::from_millis(33) * i, 2970 * i);
        }
        assert!(j.ms() < 1e-6, "{}", j.ms());

        // Alternating 10 ms early/late arrivals around a 20 ms cadence: each
        // |D| is 20 ms, so the estimate converges to 20 ms.
        let mut j = Jitter::new(48_000);
        for i in 0..2000u32 {
            let skew = if i % 2 == 0 { 0 } else { 20 };
            let at = t0 + Duration::from_millis(20 * i as u64 + skew);
            j.on_packet(at, 960 * i);
        }
        assert!((j.ms() - 20.0).abs() < 0.01, "{}", j.ms());

        // One step: first D = 16 ms gives J = 1 ms.
        let mut j = Jitter::new(1000);
        j.on_packet(t0, 0);
        j.on_packet(t0 + Duration::from_millis(36), 20);
        assert!((j.ms() - 1.0).abs() < 1e-9, "{}", j.ms());
    }

    #[test]
    fn percentiles_from_histogram_and_samples() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile_ms(0.5), None);
        // 1..=100 ms, one each.
        for ms in 1..=100u64 {
            h.record(Duration::from_micros(ms * 1000 - 500));
        }
        let p = h.percentiles();
        assert_eq!(p.p50, Some(49.51)); // fine bucket of 49.5 ms
        assert_eq!(p.p95, Some(95.0)); // coarse 1 ms bucket of 94.5 ms
        assert_eq!(p.p99, Some(99.0));
        let mut h2 = Histogram::default();
        h2.record(Duration::from_secs(60)); // beyond range: last bucket
        h.merge(&h2);
        assert_eq!(h.count(), 101);
        assert_eq!(h.quantile_ms(1.0), Some(10_000.0));

        let s: Vec<f64> = (1..=200).map(|x| x as f64).collect();
        let p = percentiles_of(&s);
        assert_eq!(
            (p.p50, p.p95, p.p99),
            (Some(100.0), Some(190.0), Some(198.0))
        );
        assert_eq!(percentiles_of(&[]).p50, None);
        assert_eq!(percentiles_of(&[7.0]).p99, Some(7.0));
    }

    #[test]
    fn freezes_are_gaps_between_decodable_frames_over_500ms() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut f = FreezeDetector::new(FREEZE_THRESHOLD);
        // 30 fps for 1 s.
        for i in 0..30u64 {
            f.on_frames(ms(i * 33), 1);
        }
        assert_eq!((f.frames, f.freezes), (30, 0));
        // A 700 ms hole, then three frames at once (a retransmission
        // completed the one the others waited for).
        f.on_frames(ms(29 * 33 + 700), 3);
        f.on_frames(ms(29 * 33 + 700), 0);
        assert_eq!((f.frames, f.freezes), (33, 1));
        assert_eq!(f.frozen, Duration::from_millis(700));
        // Exactly 500 ms is not a freeze.
        f.on_frames(ms(29 * 33 + 1200), 1);
        assert_eq!(f.freezes, 1);
        // A stall still going at the end of the window counts.
        f.finish(ms(29 * 33 + 1200 + 800));
        assert_eq!(f.freezes, 2);
        assert_eq!(f.frozen, Duration::from_millis(1500));

        // Watched from the window's start, a track that never decodes a
        // frame is one freeze as long as the window.
        let mut f = FreezeDetector::new(FREEZE_THRESHOLD);
        f.begin(ms(0));
        f.begin(ms(300));
        f.finish(ms(2000));
        assert_eq!((f.frames, f.freezes), (0, 1));
        assert_eq!(f.frozen, Duration::from_millis(2000));
        // A frame 600 ms after the start ends a first freeze.
        let mut f = FreezeDetector::new(FREEZE_THRESHOLD);
        f.begin(ms(0));
        f.on_frames(ms(600), 1);
        f.on_frames(ms(633), 1);
        f.finish(ms(700));
        assert_eq!((f.frames, f.freezes), (2, 1));
    }

    #[test]
    fn track_stats_combines_the_parts() {
        let t0 = Instant::now();
        let mut t = TrackStats::new(false);
        for i in 0..50u16 {
            if i != 10 {
                t.on_packet(
                    t0 + Duration::from_millis(20) * i as u32,
                    i,
                    960 * i as u32,
                    100,
                );
            }
        }
        assert_eq!((t.seq.expected(), t.seq.lost(), t.bytes), (50, 1, 4900));
        assert!(t.jitter.ms() < 1e-6);
        assert_eq!(t.freeze.frames, 0, "audio has no freeze count");
    }
}
