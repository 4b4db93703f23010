//! The delay-based rate controller: additive/multiplicative increase while
//! the path is normal, a cut to a fraction of the acknowledged rate on
//! overuse, hold while a queue drains.
//!
//! Increases are multiplicative (about 8% a second) far from the last known
//! link capacity and additive (about one packet per response time) near it,
//! so the estimate finds a new capacity quickly and approaches a known one
//! without overshooting. Increases are bounded by the caller's `ceiling`
//! (a multiple of what is actually sent), so the estimate never grows on
//! silence.

use std::time::{Duration, Instant};

use super::arrival::Usage;
use super::Bitrate;

/// Multiplicative increase per second, far from the link capacity.
const MULTIPLICATIVE_PER_SEC: f64 = 1.08;
/// Smallest additive increase, bits per second per second.
const MIN_ADDITIVE_BPS_PER_SEC: f64 = 4_000.0;
const ASSUMED_FPS: f64 = 30.0;
const MTU_BITS: f64 = 1200.0 * 8.0;
/// Within this fraction of the last capacity, growth is additive.
const NEAR_FRACTION: f64 = 0.7;

/// The acknowledged rate at the moments of overuse: a running mean and
/// variance, so "near capacity" can be told from "far below it".
#[derive(Clone, Copy, Debug, Default)]
struct LinkCapacity {
    mean_kbps: Option<f64>,
    /// Variance normalised by the mean (kbit/s).
    var: f64,
}

impl LinkCapacity {
    const ALPHA: f64 = 0.05;

    fn on_overuse(&mut self, acked: Bitrate) {
        let x = acked.as_f64() / 1000.0;
        let mean = match self.mean_kbps {
            // A sample far outside the known band starts over.
            Some(m) if (x - m).abs() <= 3.0 * self.deviation(m) => {
                (1.0 - Self::ALPHA) * m + Self::ALPHA * x
            }
            _ => {
                self.var = 0.4;
                x
            }
        };
        let norm = mean.max(1.0);
        self.var = ((1.0 - Self::ALPHA) * self.var + Self::ALPHA * (mean - x).powi(2) / norm)
            .clamp(0.4, 2.5);
        self.mean_kbps = Some(mean);
    }

    fn deviation(&self, mean_kbps: f64) -> f64 {
        (self.var * mean_kbps).sqrt()
    }

    fn mean(&self) -> Option<Bitrate> {
        self.mean_kbps.map(|m| Bitrate::from_f64(m * 1000.0))
    }

    fn upper(&self) -> Option<Bitrate> {
        self.mean_kbps
            .map(|m| Bitrate::from_f64((m + 3.0 * self.deviation(m)) * 1000.0))
    }

    fn reset(&mut self) {
        self.mean_kbps = None;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Hold,
    Increase,
}

#[derive(Debug)]
pub(crate) struct RateControl {
    estimate: Bitrate,
    min: Bitrate,
    max: Bitrate,
    /// Fraction of the acknowledged rate the estimate drops to on overuse.
    beta: f64,
    state: State,
    capacity: LinkCapacity,
    last_update: Option<Instant>,
    last_decrease: Option<Instant>,
}

impl RateControl {
    pub(crate) fn new(initial: Bitrate, min: Bitrate, max: Bitrate, beta: f64) -> Self {
        RateControl {
            estimate: initial.clamp(min, max),
            min,
            max,
            beta: beta.clamp(0.5, 0.95),
            state: State::Hold,
            capacity: LinkCapacity::default(),
            last_update: None,
            last_decrease: None,
        }
    }

    pub(crate) fn estimate(&self) -> Bitrate {
        self.estimate
    }

    /// The capacity seen at the last overuse events, if any.
    pub(crate) fn link_capacity(&self) -> Option<Bitrate> {
        self.capacity
            .mean_kbps
            .map(|m| Bitrate::from_f64(m * 1000.0))
    }

    /// One step of the controller. `acked` is the rate the path delivers
    /// (None until known); on overuse the estimate drops to
    /// `acked x min(beta, drain)`, where `drain` < `beta` when a queue
    /// stands on the path and must be emptied too; `ceiling` bounds any
    /// increase; `rtt` sets how fast additive increase and repeated
    /// decreases may go.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn update(
        &mut self,
        usage: Usage,
        acked: Option<Bitrate>,
        drain: f64,
        ceiling: Bitrate,
        rtt: Duration,
        now: Instant,
    ) -> Bitrate {
        let dt = self
            .last_update
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
            .min(Duration::from_secs(1));
        self.last_update = Some(now);
        match usage {
            Usage::Overuse => self.decrease(acked, drain, rtt, now),
            Usage::Underuse => self.state = State::Hold,
            Usage::Normal => {
                if self.state == State::Hold {
                    // One quiet step after a decrease or a drain before growing.
                    self.state = State::Increase;
                } else {
                    self.increase(dt, rtt, ceiling);
                }
            }
        }
        self.estimate = self.estimate.clamp(self.min, self.max);
        self.estimate
    }

    /// A probe measured `rate`: the estimate jumps there if it is higher.
    pub(crate) fn on_probe(&mut self, rate: Bitrate, now: Instant) {
        if rate > self.estimate {
            self.estimate = rate.clamp(self.min, self.max);
            if self.capacity.upper().is_some_and(|u| rate > u) {
                self.capacity.reset();
            }
            self.last_update = Some(now);
        }
    }

    /// Lowers the estimate to `limit` if it is above (the estimate is not
    /// kept above what the sender can back).
    pub(crate) fn limit_to(&mut self, limit: Bitrate) {
        if self.estimate > limit {
            self.estimate = limit.max(self.min);
        }
    }

    fn decrease(&mut self, acked: Option<Bitrate>, drain: f64, rtt: Duration, now: Instant) {
        self.state = State::Hold;
        let Some(acked) = acked else {
            return;
        };
        // One decrease per round trip, unless the path collapsed (the
        // acknowledged rate is far below the estimate).
        let wait = rtt.clamp(Duration::from_millis(10), Duration::from_millis(200));
        let recent = self
            .last_decrease
            .is_some_and(|t| now.saturating_duration_since(t) < wait);
        if recent && acked.as_f64() >= 0.5 * self.estimate.as_f64() {
            return;
        }
        let target = acked.scale(self.beta.min(drain));
        if target < self.estimate {
            self.estimate = target;
        }
        self.capacity.on_overuse(acked);
        self.last_decrease = Some(now);
    }

    fn increase(&mut self, dt: Duration, rtt: Duration, ceiling: Bitrate) {
        if self.capacity.upper().is_some_and(|u| self.estimate > u) {
            // Well above the old capacity: the path changed, forget it.
            self.capacity.reset();
        }
        // Back from a decrease the estimate climbs additively towards the
        // capacity it just left (additive increase, multiplicative decrease:
        // what makes flows sharing a link converge to fair shares); only far
        // below it (a loss cut, a path that changed) does it grow
        // multiplicatively.
        let near = self
            .capacity
            .mean()
            .is_some_and(|m| self.estimate.as_f64() >= NEAR_FRACTION * m.as_f64());
        let e = self.estimate.as_f64();
        let next = if near {
            let bits_per_frame = e / ASSUMED_FPS;
            let packets = (bits_per_frame / MTU_BITS).ceil().max(1.0);
            let packet_bits = bits_per_frame / packets;
            let response = (rtt + Duration::from_millis(100)).as_secs_f64();
            let per_sec = (packet_bits / response).max(MIN_ADDITIVE_BPS_PER_SEC);
            e + per_sec * dt.as_secs_f64()
        } else {
            let grown = e * MULTIPLICATIVE_PER_SEC.powf(dt.as_secs_f64());
            grown.max(e + 1000.0 * dt.as_secs_f64())
        };
        let next = Bitrate::from_f64(next);
        // Never grow past the ceiling; an estimate already above it is left
        // for the caller to bound.
        if next > self.estimate {
            self.estimate = next.min(ceiling.max(self.estimate));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const RTT: Duration = Duration::from_millis(100);

    fn control() -> RateControl {
        RateControl::new(
            Bitrate::kbps(300),
            Bitrate::kbps(30),
            Bitrate::kbps(20_000),
            0.85,
        )
    }

    #[test]
    fn grows_about_eight_percent_a_second_when_far_from_capacity() {
        let t0 = Instant::now();
        let mut c = control();
        let mut t = t0;
        for _ in 0..=20 {
            c.update(
                Usage::Normal,
                Some(Bitrate::kbps(300)),
                1.0,
                Bitrate::MAX,
                RTT,
                t,
            );
            t += 50 * MS;
        }
        // One step of hold, then 1 s of growth: 300 * 1.08.
        let e = c.estimate().as_f64();
        assert!((e - 324_000.0).abs() < 500.0, "{e}");
    }

    #[test]
    fn overuse_cuts_to_beta_of_the_acked_rate_once_per_round_trip() {
        let t0 = Instant::now();
        let mut c = control();
        c.update(Usage::Normal, None, 1.0, Bitrate::MAX, RTT, t0);
        c.update(
            Usage::Overuse,
            Some(Bitrate::kbps(200)),
            1.0,
            Bitrate::MAX,
            RTT,
            t0 + 50 * MS,
        );
        assert_eq!(c.estimate(), Bitrate::kbps(170));
        // Within one round trip a second overuse does not cut again...
        c.update(
            Usage::Overuse,
            Some(Bitrate::kbps(150)),
            1.0,
            Bitrate::MAX,
            RTT,
            t0 + 100 * MS,
        );
        assert_eq!(c.estimate(), Bitrate::kbps(170));
        // ...unless the path collapsed.
        c.update(
            Usage::Overuse,
            Some(Bitrate::kbps(60)),
            1.0,
            Bitrate::MAX,
            RTT,
            t0 + 120 * MS,
        );
        assert_eq!(c.estimate(), Bitrate::kbps(51));
        assert!(c.link_capacity().is_some());
    }

    #[test]
    fn near_a_known_capacity_growth_is_additive() {
        let t0 = Instant::now();
        let mut c = RateControl::new(
            Bitrate::kbps(1000),
            Bitrate::kbps(30),
            Bitrate::kbps(20_000),
            0.95,
        );
        c.update(
            Usage::Overuse,
            Some(Bitrate::kbps(1000)),
            1.0,
            Bitrate::MAX,
            RTT,
            t0,
        );
        assert_eq!(c.estimate(), Bitrate::kbps(950));
        let mut t = t0;
        for _ in 0..21 {
            t += 50 * MS;
            c.update(
                Usage::Normal,
                Some(Bitrate::kbps(950)),
                1.0,
                Bitrate::MAX,
                RTT,
                t,
            );
        }
        // About 1 s of growth at ~one 8.3 kbit packet per 200 ms: ~+40 kbit/s,
        // far below the +8% (+76 kbit/s) of multiplicative growth.
        let grown = c.estimate().as_f64() - 950_000.0;
        assert!(grown > 20_000.0 && grown < 60_000.0, "{grown}");
    }

    #[test]
    fn growth_stops_at_the_ceiling_and_underuse_holds() {
        let t0 = Instant::now();
        let mut c = control();
        let mut t = t0;
        for _ in 0..200 {
            c.update(Usage::Normal, None, 1.0, Bitrate::kbps(400), RTT, t);
            t += 50 * MS;
        }
        assert_eq!(c.estimate(), Bitrate::kbps(400));
        c.update(Usage::Underuse, None, 1.0, Bitrate::MAX, RTT, t);
        c.update(Usage::Underuse, None, 1.0, Bitrate::MAX, RTT, t + 500 * MS);
        assert_eq!(c.estimate(), Bitrate::kbps(400));
        c.limit_to(Bitrate::kbps(350));
        assert_eq!(c.estimate(), Bitrate::kbps(350));
    }

    #[test]
    fn a_probe_raises_the_estimate_and_never_lowers_it() {
        let t0 = Instant::now();
        let mut c = control();
        c.on_probe(Bitrate::kbps(900), t0);
        assert_eq!(c.estimate(), Bitrate::kbps(900));
        c.on_probe(Bitrate::kbps(500), t0);
        assert_eq!(c.estimate(), Bitrate::kbps(900));
    }
}
