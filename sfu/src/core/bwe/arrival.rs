//! Delay-based overuse detection: packet groups, the arrival-time trendline
//! and its adaptive threshold (the detector of Google Congestion Control,
//! draft-ietf-rmcat-gcc-02, with the trendline filter of libwebrtc).
//!
//! Packets sent within a few milliseconds of each other form a group. For
//! two consecutive groups, `arrival delta - send delta` is how much the
//! queue on the path grew in between. The accumulated, smoothed delay is fit
//! with a line over the last groups; a rising slope above an adaptive
//! threshold for long enough is overuse, a falling one below minus the
//! threshold is underuse (a queue draining).

use std::collections::VecDeque;

/// Packets sent within this span of the group's first packet join it.
const GROUP_SPAN_US: i64 = 5_000;
/// A packet arriving within this of the previous one, and earlier relative
/// to its send time, is part of the same burst (a queue releasing packets).
const BURST_DELTA_US: i64 = 5_000;
const MAX_BURST_US: i64 = 100_000;

const WINDOW: usize = 20;
const SMOOTHING: f64 = 0.9;
const THRESHOLD_GAIN: f64 = 4.0;
const MAX_DELTAS_FOR_GAIN: f64 = 60.0;
const INITIAL_THRESHOLD_MS: f64 = 12.5;
const THRESHOLD_MIN_MS: f64 = 6.0;
const THRESHOLD_MAX_MS: f64 = 600.0;
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
/// A trend this far above the threshold is a spike the threshold does not
/// adapt to (a sudden capacity drop must still be seen as overuse).
const MAX_ADAPT_OFFSET_MS: f64 = 15.0;
const OVERUSE_TIME_MS: f64 = 10.0;

/// What the detector concludes about the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    Normal,
    /// Delay is rising: the path queues, the sender is above capacity.
    Overuse,
    /// Delay is falling: a queue drains.
    Underuse,
}

impl Usage {
    /// Its name in stats: `normal`, `overuse` or `underuse`.
    pub fn as_str(self) -> &'static str {
        match self {
            Usage::Normal => "normal",
            Usage::Overuse => "overuse",
            Usage::Underuse => "underuse",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Group {
    first_send: i64,
    last_send: i64,
    first_arrival: i64,
    last_arrival: i64,
}

/// The delay change between two consecutive groups.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct GroupDelta {
    pub send_delta_us: i64,
    pub arrival_delta_us: i64,
    /// Arrival of the later group's last packet.
    pub arrival_us: i64,
}

/// Sorts packets (fed in arrival order) into send-time groups.
#[derive(Debug, Default)]
pub(crate) struct ArrivalGroups {
    current: Option<Group>,
    previous: Option<Group>,
}

impl ArrivalGroups {
    /// Feeds one received packet; returns the delta when it closes a group.
    pub(crate) fn push(&mut self, send_us: i64, arrival_us: i64) -> Option<GroupDelta> {
        let Some(cur) = self.current.as_mut() else {
            self.current = Some(Group {
                first_send: send_us,
                last_send: send_us,
                first_arrival: arrival_us,
                last_arrival: arrival_us,
            });
            return None;
        };
        if send_us < cur.first_send {
            // Sent before the current group began (reordered): no use.
            return None;
        }
        let in_span = send_us.saturating_sub(cur.first_send) <= GROUP_SPAN_US;
        let arrival_gap = arrival_us.saturating_sub(cur.last_arrival);
        let propagation = arrival_gap.saturating_sub(send_us.saturating_sub(cur.last_send));
        let burst = propagation < 0
            && arrival_gap <= BURST_DELTA_US
            && arrival_us.saturating_sub(cur.first_arrival) < MAX_BURST_US;
        if in_span || burst {
            cur.last_send = cur.last_send.max(send_us);
            cur.last_arrival = cur.last_arrival.max(arrival_us);
            return None;
        }
        let closed = *cur;
        let delta = self.previous.map(|prev| GroupDelta {
            send_delta_us: closed.last_send.saturating_sub(prev.last_send),
            arrival_delta_us: closed.last_arrival.saturating_sub(prev.last_arrival),
            arrival_us: closed.last_arrival,
        });
        self.previous = Some(closed);
        self.current = Some(Group {
            first_send: send_us,
            last_send: send_us,
            first_arrival: arrival_us,
            last_arrival: arrival_us,
        });
        // Arrivals going backwards between groups mean reordering or a
        // receiver clock jump: skip rather than feed a nonsense delta.
        delta.filter(|d| d.arrival_delta_us >= 0)
    }
}

/// The trendline filter and overuse detector.
#[derive(Debug)]
pub(crate) struct Trendline {
    /// (arrival ms since the first group, smoothed accumulated delay ms)
    window: VecDeque<(f64, f64)>,
    first_arrival_us: Option<i64>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    deltas: f64,
    threshold_ms: f64,
    last_threshold_ms: Option<f64>,
    previous_trend: f64,
    overuse_ms: f64,
    overuse_count: u32,
    usage: Usage,
    last_trend: f64,
}

impl Default for Trendline {
    fn default() -> Self {
        Trendline {
            window: VecDeque::with_capacity(WINDOW + 1),
            first_arrival_us: None,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            deltas: 0.0,
            threshold_ms: INITIAL_THRESHOLD_MS,
            last_threshold_ms: None,
            previous_trend: 0.0,
            overuse_ms: 0.0,
            overuse_count: 0,
            usage: Usage::Normal,
            last_trend: 0.0,
        }
    }
}

impl Trendline {
    pub(crate) fn usage(&self) -> Usage {
        self.usage
    }

    /// The threshold-scaled trend of the last update (for diagnostics).
    pub(crate) fn modified_trend(&self) -> f64 {
        self.last_trend
    }

    pub(crate) fn threshold_ms(&self) -> f64 {
        self.threshold_ms
    }

    pub(crate) fn update(&mut self, d: GroupDelta) -> Usage {
        let delta_ms = d.arrival_delta_us.saturating_sub(d.send_delta_us) as f64 / 1000.0;
        let send_delta_ms = d.send_delta_us as f64 / 1000.0;
        let first = *self.first_arrival_us.get_or_insert(d.arrival_us);
        let x = d.arrival_us.saturating_sub(first) as f64 / 1000.0;

        self.deltas = (self.deltas + 1.0).min(1000.0);
        self.accumulated_ms += delta_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        self.window.push_back((x, self.smoothed_ms));
        if self.window.len() > WINDOW {
            self.window.pop_front();
        }
        let trend = if self.window.len() == WINDOW {
            linear_fit(&self.window).unwrap_or(self.previous_trend)
        } else {
            self.previous_trend
        };
        self.detect(trend, send_delta_ms, x);
        self.usage
    }

    fn detect(&mut self, trend: f64, send_delta_ms: f64, now_ms: f64) {
        if self.deltas < 2.0 {
            self.usage = Usage::Normal;
            return;
        }
        let modified = self.deltas.min(MAX_DELTAS_FOR_GAIN) * trend * THRESHOLD_GAIN;
        self.last_trend = modified;
        if modified > self.threshold_ms {
            if self.overuse_count == 0 {
                // Assume the overuse began half a group ago.
                self.overuse_ms = send_delta_ms / 2.0;
            } else {
                self.overuse_ms += send_delta_ms;
            }
            self.overuse_count += 1;
            if self.overuse_ms > OVERUSE_TIME_MS
                && self.overuse_count > 1
                && trend >= self.previous_trend
            {
                self.overuse_ms = 0.0;
                self.overuse_count = 0;
                self.usage = Usage::Overuse;
            }
        } else if modified < -self.threshold_ms {
            self.overuse_ms = 0.0;
            self.overuse_count = 0;
            self.usage = Usage::Underuse;
        } else {
            self.overuse_ms = 0.0;
            self.overuse_count = 0;
            self.usage = Usage::Normal;
        }
        self.previous_trend = trend;
        self.adapt_threshold(modified, now_ms);
    }

    /// The threshold follows |trend| slowly upwards and faster downwards so
    /// that a competing loss-based flow does not starve this one and
    /// ordinary jitter is not overuse.
    fn adapt_threshold(&mut self, modified: f64, now_ms: f64) {
        let last = *self.last_threshold_ms.get_or_insert(now_ms);
        if modified.abs() > self.threshold_ms + MAX_ADAPT_OFFSET_MS {
            self.last_threshold_ms = Some(now_ms);
            return;
        }
        let k = if modified.abs() < self.threshold_ms {
            K_DOWN
        } else {
            K_UP
        };
        let dt = (now_ms - last).clamp(0.0, 100.0);
        self.threshold_ms += k * (modified.abs() - self.threshold_ms) * dt;
        self.threshold_ms = self.threshold_ms.clamp(THRESHOLD_MIN_MS, THRESHOLD_MAX_MS);
        self.last_threshold_ms = Some(now_ms);
    }
}

/// Least-squares slope of y over x.
fn linear_fit(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    (den != 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `n` groups 33 ms apart (one frame each) whose arrival spacing
    /// is `arrival_ms`, starting at `t_us`; returns the last usage seen and
    /// the arrival time reached.
    fn frames(
        g: &mut ArrivalGroups,
        t: &mut Trendline,
        n: usize,
        send0_us: &mut i64,
        arr0_us: &mut i64,
        arrival_ms: f64,
    ) -> Vec<Usage> {
        let mut seen = Vec::new();
        for _ in 0..n {
            *send0_us += 33_000;
            *arr0_us += (arrival_ms * 1000.0) as i64;
            // Three packets per frame, 1 ms apart.
            for k in 0..3 {
                if let Some(d) = g.push(*send0_us + k * 1000, *arr0_us + k * 1000) {
                    seen.push(t.update(d));
                }
            }
        }
        seen
    }

    #[test]
    fn packets_close_together_form_one_group() {
        let mut g = ArrivalGroups::default();
        assert_eq!(g.push(0, 50_000), None);
        assert_eq!(g.push(2_000, 52_000), None);
        assert_eq!(g.push(4_000, 54_000), None);
        // 10 ms later: a new group; no delta yet (needs two complete groups).
        assert_eq!(g.push(14_000, 64_000), None);
        let d = g.push(30_000, 85_000).unwrap();
        assert_eq!(d.send_delta_us, 14_000 - 4_000);
        assert_eq!(d.arrival_delta_us, 64_000 - 54_000);
        assert_eq!(d.arrival_us, 64_000);
    }

    #[test]
    fn a_burst_released_by_a_queue_stays_one_group() {
        let mut g = ArrivalGroups::default();
        g.push(0, 100_000);
        // Sent 20 ms later but arrives right behind: released by a queue.
        assert_eq!(g.push(20_000, 101_000), None);
        assert_eq!(g.push(40_000, 102_000), None);
    }

    #[test]
    fn steady_delay_is_normal_and_growing_delay_is_overuse() {
        let mut g = ArrivalGroups::default();
        let mut t = Trendline::default();
        let (mut s, mut a) = (0, 1_000_000);
        let seen = frames(&mut g, &mut t, 60, &mut s, &mut a, 33.0);
        assert!(seen.iter().all(|u| *u == Usage::Normal), "{seen:?}");
        // Each frame now arrives 4 ms later than sent: a queue builds.
        let seen = frames(&mut g, &mut t, 30, &mut s, &mut a, 37.0);
        assert!(seen.contains(&Usage::Overuse), "{seen:?}");
        assert_eq!(t.usage(), Usage::Overuse);
    }

    #[test]
    fn a_draining_queue_is_underuse() {
        let mut g = ArrivalGroups::default();
        let mut t = Trendline::default();
        let (mut s, mut a) = (0, 1_000_000);
        frames(&mut g, &mut t, 40, &mut s, &mut a, 33.0);
        let seen = frames(&mut g, &mut t, 20, &mut s, &mut a, 28.0);
        assert!(seen.contains(&Usage::Underuse), "{seen:?}");
    }

    #[test]
    fn jitter_without_trend_is_not_overuse() {
        let mut g = ArrivalGroups::default();
        let mut t = Trendline::default();
        let (mut s, mut a) = (0, 1_000_000);
        let mut seen = Vec::new();
        for i in 0..300 {
            // +-3 ms alternating jitter around a steady delay.
            let j = if i % 2 == 0 { 36.0 } else { 30.0 };
            seen.extend(frames(&mut g, &mut t, 1, &mut s, &mut a, j));
        }
        assert!(!seen.contains(&Usage::Overuse));
        assert!(t.threshold_ms() >= THRESHOLD_MIN_MS);
    }

    #[test]
    fn reordered_groups_are_skipped() {
        let mut g = ArrivalGroups::default();
        g.push(0, 100_000);
        g.push(10_000, 110_000);
        // Arrives before the previous group: no delta.
        assert_eq!(g.push(20_000, 105_000), None);
        // A packet sent before the current group began is ignored.
        assert_eq!(g.push(5_000, 130_000), None);
    }
}
