//! At most one log line per reason per interval.
//!
//! Whatever a stranger can make the server refuse, it can make it refuse
//! as fast as it can send: a log line per refused packet would turn the
//! server's disk and log pipeline into the attacker's amplifier. Every
//! refusal is counted (the counters are exact); the log only says, once
//! per interval and reason, that it happens and how often.

use std::time::{Duration, Instant};

/// The default interval between two lines about the same reason.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Per-reason rate limit for log lines; reasons are small integers.
pub struct LogLimiter<const N: usize> {
    interval: Duration,
    next: [Option<Instant>; N],
    suppressed: [u64; N],
}

impl<const N: usize> LogLimiter<N> {
    pub fn new(interval: Duration) -> Self {
        LogLimiter {
            interval,
            next: [None; N],
            suppressed: [0; N],
        }
    }

    /// One more event of `reason`. `Some(n)`: log a line now; `n` events
    /// of this reason were not logged since the last line. `None`: stay
    /// quiet (the event is remembered for the next line).
    #[inline]
    pub fn hit(&mut self, reason: usize, now: Instant) -> Option<u64> {
        let (Some(next), Some(sup)) = (self.next.get_mut(reason), self.suppressed.get_mut(reason))
        else {
            return None;
        };
        match *next {
            Some(t) if now < t => {
                *sup += 1;
                None
            }
            _ => {
                *next = Some(now + self.interval);
                Some(std::mem::take(sup))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_reason_per_interval() {
        let t0 = Instant::now();
        let mut l = LogLimiter::<3>::new(Duration::from_secs(10));
        let mut lines = 0;
        for i in 0..10_000u64 {
            let now = t0 + Duration::from_millis(i); // ten seconds of a flood
            if l.hit(0, now).is_some() {
                lines += 1;
            }
        }
        assert_eq!(lines, 1);
        // Another reason has its own budget.
        assert_eq!(l.hit(1, t0), Some(0));
        // The next line tells how many were not logged.
        assert_eq!(l.hit(0, t0 + Duration::from_secs(10)), Some(9_999));
        assert_eq!(l.hit(0, t0 + Duration::from_secs(11)), None);
        // Out-of-range reasons are never logged and never panic.
        assert_eq!(l.hit(3, t0), None);
    }
}
