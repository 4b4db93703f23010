//! Whether a probe that passed counts.
//!
//! A rate shaper lets a short burst through at line rate (an htb class's
//! burst allowance is a few kilobytes), so a probe cluster only a little
//! above the path's capacity can come back with no delay growth: it passes
//! though the path cannot carry its rate. The allocator moves the
//! subscriber up on it, and the keyframe of that move takes what the server
//! sends over the capacity for a second. Such a pass contradicts a recent
//! probe at or below its rate that failed: then the pass is confirmed by
//! the next probe before it counts. A path that was capped and is not any
//! more passes both (the second within about a probe interval); a capped
//! one rarely passes twice in a row.

use std::time::{Duration, Instant};

use super::prober::{ProbeEnd, ProbeOutcome};
use super::Bitrate;

/// A failed probe is recent evidence this long.
const FAILURE_MEMORY: Duration = Duration::from_secs(10);
/// An unconfirmed pass is confirmed by a pass within this long.
const CONFIRM_WITHIN: Duration = Duration::from_secs(5);

/// What a probe's outcome is worth to the allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judged {
    /// As it is: a success proves its rate, a failure proves nothing.
    Counts,
    /// A pass that contradicts a recent failure: it proves nothing until
    /// the next probe passes too.
    Unconfirmed,
}

/// The recent probe outcomes of one leg.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProbeConfirm {
    /// The rate of the last probe the path did not carry, and when.
    failed: Option<(Bitrate, Instant)>,
    /// When a pass was held back for confirmation.
    unconfirmed: Option<Instant>,
}

impl ProbeConfirm {
    /// A pass waits for its confirmation at `now`: the next probe is
    /// wanted even when the estimate already allows the next step.
    pub fn pending(&self, now: Instant) -> bool {
        self.unconfirmed
            .is_some_and(|t| now.saturating_duration_since(t) < CONFIRM_WITHIN)
    }

    /// Judges a probe's outcome and remembers it.
    pub fn judge(&mut self, o: &ProbeOutcome, now: Instant) -> Judged {
        let recent = |at: Instant, within: Duration| now.saturating_duration_since(at) < within;
        match o.end {
            ProbeEnd::Success => {
                if self
                    .unconfirmed
                    .take()
                    .is_some_and(|t| recent(t, CONFIRM_WITHIN))
                {
                    self.failed = None;
                    return Judged::Counts;
                }
                let proves = o.measured.unwrap_or(o.rate).max(o.rate);
                let contradicts = self
                    .failed
                    .is_some_and(|(rate, at)| recent(at, FAILURE_MEMORY) && rate <= proves);
                if contradicts {
                    self.unconfirmed = Some(now);
                    Judged::Unconfirmed
                } else {
                    Judged::Counts
                }
            }
            // No feedback in time says nothing of the path.
            ProbeEnd::Timeout | ProbeEnd::Unconfirmed => Judged::Counts,
            ProbeEnd::Saturated | ProbeEnd::Loss | ProbeEnd::DelayGrowth | ProbeEnd::Congested => {
                self.failed = Some((o.rate, now));
                self.unconfirmed = None;
                Judged::Counts
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::bwe::history::ProbeClusterId;
    use Judged::{Counts, Unconfirmed};
    use ProbeEnd::*;

    /// A probe at `kbps` that measured that much.
    fn outcome(end: ProbeEnd, kbps: u64) -> ProbeOutcome {
        ProbeOutcome {
            cluster: ProbeClusterId(0),
            rate: Bitrate::kbps(kbps),
            measured: Some(Bitrate::kbps(kbps)),
            end,
        }
    }

    /// Judges outcomes in turn: `(second, end, kbit/s probed and measured,
    /// expected)`.
    fn run(rows: &[(u64, ProbeEnd, u64, Judged)]) {
        let t0 = Instant::now();
        let mut c = ProbeConfirm::default();
        for (i, &(at, end, kbps, want)) in rows.iter().enumerate() {
            let got = c.judge(&outcome(end, kbps), t0 + Duration::from_secs(at));
            assert_eq!(got, want, "row {i}: {end:?} at {kbps} kbit/s, {at} s");
        }
    }

    #[test]
    fn a_pass_right_after_a_failure_at_or_below_its_rate_waits_for_the_next() {
        run(&[
            // Nothing failed: a pass counts.
            (0, Success, 900, Counts),
            // Under a cap: 900 fails, then 935 passes (a shaper's burst).
            (1, DelayGrowth, 900, Counts),
            (2, Success, 935, Unconfirmed),
            // The next one fails: nothing was proven.
            (3, Loss, 935, Counts),
            (4, Success, 950, Unconfirmed),
            // Two passes in a row: the second counts, and clears the failure.
            (5, Success, 1800, Counts),
            (6, Success, 2000, Counts),
        ]);
    }

    #[test]
    fn a_pass_below_a_failed_rate_or_long_after_it_counts() {
        run(&[
            (0, Saturated, 1500, Counts),
            // Below what failed: no contradiction.
            (1, Success, 1200, Counts),
            // A timeout says nothing either way.
            (2, Timeout, 2000, Counts),
            // Above it, but the failure is old.
            (11, Success, 2000, Counts),
            // A pass whose confirmation comes too late waits again.
            (12, Congested, 800, Counts),
            (13, Success, 900, Unconfirmed),
            (19, Success, 900, Unconfirmed),
        ]);
    }

    #[test]
    fn pending_until_confirmed_or_too_late() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = ProbeConfirm::default();
        let o = outcome;
        c.judge(&o(DelayGrowth, 600), t0);
        assert!(!c.pending(t0));
        assert_eq!(c.judge(&o(Success, 1000), t0 + s), Unconfirmed);
        assert!(c.pending(t0 + 2 * s));
        assert!(!c.pending(t0 + 7 * s), "too late");
        assert_eq!(c.judge(&o(Success, 1000), t0 + 3 * s), Counts);
        assert!(!c.pending(t0 + 3 * s));
    }
}
