//! The loss-based part of the estimate.
//!
//! Loss on a real path has two causes: a full queue (congestion; it grows
//! with the sending rate) and the medium itself (radio, a lossy hop; it
//! does not). Cutting the rate on the second kind only starves the call, so
//! the controller keeps a baseline of the loss seen while the delay detector
//! says the path is not congested, and reacts to loss above that baseline:
//!
//! - excess above `high` (10%) for three intervals in a row (shorter is an
//!   outage, such as a radio fade), or above `low` (2%) while a queue stands
//!   on the path (loss at a full queue: tail drops): congestion loss; the
//!   bound drops to `acked * (1 - loss / 2)`, at most once per round trip
//!   plus 300 ms;
//! - excess below `low` (2%): the bound grows 8% a second and disappears
//!   once it is above the delay-based estimate;
//! - in between: hold (the estimate stops growing).
//!
//! The baseline follows the loss slowly (5 s), only while neither the delay
//! detector nor a standing queue says the path is congested, and never
//! above 5%: more loss than that is not taken as the medium's.

use std::time::{Duration, Instant};

use super::Bitrate;

const LOW: f64 = 0.02;
const HIGH: f64 = 0.10;
/// Excess loss from which the leg counts as congested (no probing, no
/// moving up): well above the noise of random loss around its baseline.
pub(crate) const CONGESTED: f64 = 0.05;
/// An interval closes after this many packets and this much time.
const INTERVAL_PACKETS: u32 = 30;
const INTERVAL_TIME: Duration = Duration::from_millis(100);
/// Heavy loss for more intervals in a row than this is not an outage.
const OUTAGE_INTERVALS: u32 = 3;
/// Weight of a new interval in the short-term loss.
const SHORT_ALPHA: f64 = 0.3;
/// Time constant of the baseline.
const BASELINE_TAU: Duration = Duration::from_secs(5);
const BASELINE_MAX: f64 = 0.05;
const GROWTH_PER_SEC: f64 = 1.08;

#[derive(Debug, Default)]
pub(crate) struct LossControl {
    lost: u32,
    total: u32,
    interval_start: Option<Instant>,
    short: Option<f64>,
    baseline: f64,
    bound: Option<Bitrate>,
    last_decrease: Option<Instant>,
    last_interval: Option<Instant>,
    /// Consecutive intervals with loss above `HIGH`.
    high_streak: u32,
}

impl LossControl {
    /// Short-term loss fraction (0 until measured).
    pub(crate) fn loss(&self) -> f64 {
        self.short.unwrap_or(0.0)
    }

    /// Loss the path shows without congestion.
    pub(crate) fn baseline(&self) -> f64 {
        self.baseline
    }

    /// Short-term loss above the baseline.
    pub(crate) fn excess(&self) -> f64 {
        (self.loss() - self.baseline).max(0.0)
    }

    pub(crate) fn bound(&self) -> Option<Bitrate> {
        self.bound
    }

    /// Loss was measured, but no interval closed for `memory`.
    pub(crate) fn stale(&self, memory: Duration, now: Instant) -> bool {
        self.last_interval
            .is_some_and(|t| now.saturating_duration_since(t) >= memory)
    }

    /// Forgets the loss measured and the bound it set, keeping the
    /// baseline (the medium's own loss does not change while idle).
    pub(crate) fn forget(&mut self) {
        *self = LossControl {
            baseline: self.baseline,
            ..LossControl::default()
        };
    }

    /// Lifts the bound (a probe went through at a higher rate).
    pub(crate) fn lift_to(&mut self, rate: Bitrate) {
        if self.bound.is_some_and(|b| b < rate) {
            self.bound = None;
        }
    }

    /// Counts one feedback's packets. `delay_congested`: the delay detector
    /// sees overuse; `queued`: a queue stands on the path (loss with a full
    /// queue is the queue's, not the medium's), and a cut is further scaled
    /// by `drain` to empty it; `estimate` is the delay-based estimate.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_feedback(
        &mut self,
        lost: u32,
        received: u32,
        delay_congested: bool,
        queued: bool,
        drain: f64,
        acked: Option<Bitrate>,
        estimate: Bitrate,
        rtt: Duration,
        now: Instant,
    ) {
        self.lost += lost;
        self.total += lost + received;
        let start = *self.interval_start.get_or_insert(now);
        if self.total < INTERVAL_PACKETS || now.saturating_duration_since(start) < INTERVAL_TIME {
            return;
        }
        let fraction = self.lost as f64 / self.total as f64;
        self.lost = 0;
        self.total = 0;
        self.interval_start = Some(now);
        let dt = self
            .last_interval
            .map_or(INTERVAL_TIME, |t| now.saturating_duration_since(t))
            .min(Duration::from_secs(1));
        self.last_interval = Some(now);

        let short = match self.short {
            None => fraction,
            Some(s) => (1.0 - SHORT_ALPHA) * s + SHORT_ALPHA * fraction,
        };
        self.short = Some(short);
        let excess = (short - self.baseline).max(0.0);

        if !delay_congested && !queued && excess <= HIGH {
            // A slow average of the short-term loss: random loss makes it
            // swing both ways, the baseline is its mean.
            let a = (dt.as_secs_f64() / BASELINE_TAU.as_secs_f64()).min(1.0);
            self.baseline += a * (short - self.baseline);
            self.baseline = self.baseline.clamp(0.0, BASELINE_MAX);
        }

        self.high_streak = if fraction - self.baseline > HIGH {
            self.high_streak + 1
        } else {
            0
        };
        // Heavy loss over an interval or two without a queue is an outage (a
        // radio fade), not congestion; longer, or with a queue, it is.
        if (excess > HIGH && (self.high_streak >= OUTAGE_INTERVALS || queued))
            || (excess > LOW && queued)
        {
            let wait = rtt + Duration::from_millis(300);
            let recent = self
                .last_decrease
                .is_some_and(|t| now.saturating_duration_since(t) < wait);
            if let (false, Some(acked)) = (recent, acked) {
                let from = self.bound.unwrap_or(estimate).min(estimate);
                // With a queue standing, also take out the queue (`drain`).
                let cut = acked.scale((1.0 - 0.5 * short) * if queued { drain } else { 1.0 });
                self.bound = Some(cut.min(from));
                self.last_decrease = Some(now);
            }
        } else if excess < LOW {
            if let Some(b) = self.bound {
                let grown = b.scale(GROWTH_PER_SEC.powf(dt.as_secs_f64())) + Bitrate(1000);
                self.bound = (grown < estimate).then_some(grown);
            }
        } else if self.bound.is_none() {
            // Loss a little above the baseline: stop growing here.
            self.bound = Some(estimate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const RTT: Duration = Duration::from_millis(100);

    /// Feeds `secs` seconds of 100-packet feedbacks every 100 ms with the
    /// given loss fraction.
    fn run(c: &mut LossControl, t: &mut Instant, secs: u32, loss: f64, delay: bool, est: Bitrate) {
        for _ in 0..secs * 10 {
            let lost = (loss * 100.0).round() as u32;
            *t += 100 * MS;
            c.on_feedback(lost, 100 - lost, delay, false, 1.0, Some(est), est, RTT, *t);
        }
    }

    #[test]
    fn steady_random_loss_becomes_the_baseline_and_never_cuts() {
        let mut t = Instant::now();
        let mut c = LossControl::default();
        let est = Bitrate::kbps(2000);
        run(&mut c, &mut t, 20, 0.05, false, est);
        assert_eq!(c.bound(), None);
        assert!((c.baseline() - 0.05).abs() < 0.01, "{}", c.baseline());
        assert!(c.excess() < LOW);
    }

    #[test]
    fn loss_far_above_the_baseline_cuts_then_recovers() {
        let mut t = Instant::now();
        let mut c = LossControl::default();
        let est = Bitrate::kbps(2000);
        run(&mut c, &mut t, 5, 0.0, false, est);
        run(&mut c, &mut t, 1, 0.30, false, est);
        let cut = c.bound().expect("a bound after 30% loss");
        assert!(cut < Bitrate::kbps(1900), "{cut}");
        // Loss goes away: the bound grows back and disappears.
        run(&mut c, &mut t, 30, 0.0, false, est);
        assert_eq!(c.bound(), None);
    }

    #[test]
    fn loss_during_delay_congestion_does_not_raise_the_baseline() {
        let mut t = Instant::now();
        let mut c = LossControl::default();
        run(&mut c, &mut t, 10, 0.06, true, Bitrate::kbps(1000));
        assert_eq!(c.baseline(), 0.0);
        assert!(c.excess() > 0.05);
    }

    #[test]
    fn moderate_loss_at_a_standing_queue_is_congestion() {
        let mut t = Instant::now();
        let mut c = LossControl::default();
        let est = Bitrate::kbps(2000);
        for _ in 0..20 {
            t += 100 * MS;
            c.on_feedback(6, 94, false, true, 0.8, Some(est), est, RTT, t);
        }
        // 2000 x (1 - 0.03) x 0.8, once or more.
        assert!(
            c.bound().is_some_and(|b| b <= Bitrate::kbps(1552)),
            "{:?}",
            c.bound()
        );
        assert_eq!(c.baseline(), 0.0, "tail drops are not the medium's loss");
    }

    #[test]
    fn a_probe_at_a_higher_rate_lifts_the_bound() {
        let mut t = Instant::now();
        let mut c = LossControl::default();
        run(&mut c, &mut t, 1, 0.5, false, Bitrate::kbps(1000));
        assert!(c.bound().is_some());
        c.lift_to(Bitrate::kbps(1500));
        assert_eq!(c.bound(), None);
    }
}
