//! A byte rate over a sliding time window.

use std::collections::VecDeque;

use super::Bitrate;

/// Bytes counted over the last `window_us` of a clock given in
/// microseconds (local send time or the receiver's arrival time).
#[derive(Debug, Clone)]
pub(crate) struct RateWindow {
    window_us: i64,
    /// Below this much history the rate is not given.
    min_span_us: i64,
    samples: VecDeque<(i64, u32)>,
    bytes: u64,
    first_us: Option<i64>,
    max_samples: usize,
}

impl RateWindow {
    pub(crate) fn new(window_us: i64, min_span_us: i64) -> Self {
        RateWindow {
            window_us: window_us.max(1),
            min_span_us: min_span_us.clamp(1, window_us.max(1)),
            samples: VecDeque::new(),
            bytes: 0,
            first_us: None,
            max_samples: 16_384,
        }
    }

    pub(crate) fn push(&mut self, at_us: i64, bytes: u32) {
        self.first_us.get_or_insert(at_us);
        if self.samples.len() >= self.max_samples {
            if let Some((_, b)) = self.samples.pop_front() {
                self.bytes -= b as u64;
            }
        }
        self.samples.push_back((at_us, bytes));
        self.bytes += bytes as u64;
    }

    /// The rate over the window ending at `now_us`; `None` until
    /// `min_span_us` of history exist. With less than a full window of
    /// history, the bytes are spread over the history there is.
    pub(crate) fn rate(&mut self, now_us: i64) -> Option<Bitrate> {
        let start = now_us.saturating_sub(self.window_us);
        while let Some(&(t, b)) = self.samples.front() {
            if t > start {
                break;
            }
            self.samples.pop_front();
            self.bytes -= b as u64;
        }
        let span = now_us.saturating_sub(self.first_us?);
        if span < self.min_span_us {
            return None;
        }
        let over = span.min(self.window_us);
        Some(Bitrate::from_f64(self.bytes as f64 * 8e6 / over as f64))
    }

    /// Whether a full window of history exists at `now_us`.
    pub(crate) fn is_full(&self, now_us: i64) -> bool {
        self.first_us
            .is_some_and(|f| now_us.saturating_sub(f) >= self.window_us)
    }
}

/// The queueing delay of a path: one-way delay (arrival minus send time,
/// with an unknown constant clock offset) above its lowest value over a
/// sliding window. The lowest value is the empty path.
#[derive(Debug, Clone)]
pub(crate) struct QueueDelay {
    window_us: i64,
    /// (local time, one-way delay), increasing in delay: a sliding minimum.
    floor: VecDeque<(i64, i64)>,
    last: Option<i64>,
    /// The queueing delay before the last reading.
    previous: i64,
}

impl QueueDelay {
    pub(crate) fn new(window_us: i64) -> Self {
        QueueDelay {
            window_us,
            floor: VecDeque::new(),
            last: None,
            previous: 0,
        }
    }

    /// The least delayed packet of one feedback, at local time `at_us`.
    pub(crate) fn push(&mut self, at_us: i64, owd_us: i64) {
        self.previous = self.queueing_us();
        while self.floor.back().is_some_and(|&(_, v)| v >= owd_us) {
            self.floor.pop_back();
        }
        self.floor.push_back((at_us, owd_us));
        while self
            .floor
            .front()
            .is_some_and(|&(t, _)| t < at_us.saturating_sub(self.window_us))
        {
            self.floor.pop_front();
        }
        self.last = Some(owd_us);
    }

    /// The queueing delay before the last reading (0 before the second).
    pub(crate) fn previous_us(&self) -> i64 {
        self.previous
    }

    /// Queueing delay of the last feedback's least delayed packet.
    pub(crate) fn queueing_us(&self) -> i64 {
        match (self.last, self.floor.front()) {
            (Some(l), Some(&(_, f))) => l.saturating_sub(f).max(0),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queueing_is_the_delay_above_the_windows_floor() {
        let mut q = QueueDelay::new(10_000_000);
        q.push(0, 5_050_000);
        q.push(100_000, 5_080_000);
        assert_eq!(q.queueing_us(), 30_000);
        q.push(200_000, 5_040_000);
        assert_eq!(q.queueing_us(), 0);
        q.push(300_000, 5_140_000);
        assert_eq!(q.queueing_us(), 100_000);
        assert_eq!(q.previous_us(), 0, "the reading before");
        // The floor ages out: a lasting longer path becomes the new floor.
        q.push(10_400_000, 5_140_000);
        assert_eq!(q.queueing_us(), 0);
    }

    #[test]
    fn the_rate_covers_the_window_and_forgets_older_bytes() {
        let mut w = RateWindow::new(1_000_000, 100_000);
        // 1250 bytes every 10 ms = 1 Mbit/s.
        for i in 0..300 {
            w.push(i * 10_000, 1250);
        }
        assert_eq!(w.rate(2_990_000), Some(Bitrate::kbps(1000)));
        assert!(w.is_full(2_990_000));
        // Nothing more for half a second: half the window is empty.
        assert_eq!(w.rate(3_490_000), Some(Bitrate::kbps(500)));
        assert_eq!(w.rate(5_000_000), Some(Bitrate::ZERO));
    }

    #[test]
    fn a_short_history_is_spread_over_its_span_or_not_given() {
        let mut w = RateWindow::new(1_000_000, 100_000);
        assert_eq!(w.rate(0), None);
        w.push(0, 1250);
        w.push(10_000, 1250);
        assert_eq!(w.rate(50_000), None, "less than the minimum span");
        assert_eq!(w.rate(200_000), Some(Bitrate::kbps(100)));
        assert!(!w.is_full(200_000));
    }
}
