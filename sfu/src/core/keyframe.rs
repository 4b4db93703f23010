//! Keyframe-request merging and throttling for one published track.
//!
//! Every subscriber that joins or loses a picture asks for a keyframe. The
//! publisher needs one request per burst, not one per subscriber: the first
//! request goes out at once, the ones that follow within `min_interval` are
//! merged into a single request sent when the interval ends.

use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct KeyframeThrottle {
    min_interval: Duration,
    last_sent: Option<Instant>,
    pending: bool,
}

impl KeyframeThrottle {
    pub fn new(min_interval: Duration) -> Self {
        KeyframeThrottle {
            min_interval,
            last_sent: None,
            pending: false,
        }
    }

    /// A subscriber asks for a keyframe: `true` means send a request to the
    /// publisher now; `false` means it is merged into a later one.
    pub fn request(&mut self, now: Instant) -> bool {
        match self.last_sent {
            Some(at) if now.saturating_duration_since(at) < self.min_interval => {
                self.pending = true;
                false
            }
            _ => {
                self.last_sent = Some(now);
                self.pending = false;
                true
            }
        }
    }

    /// Called at (or after) [`Self::deadline`]: `true` means send the merged
    /// request now.
    pub fn poll(&mut self, now: Instant) -> bool {
        match (self.pending, self.deadline()) {
            (true, Some(at)) if now >= at => {
                self.pending = false;
                self.last_sent = Some(now);
                true
            }
            _ => false,
        }
    }

    /// When a merged request is due, if one is waiting.
    pub fn deadline(&self) -> Option<Instant> {
        if !self.pending {
            return None;
        }
        self.last_sent.map(|at| at + self.min_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_first_request_goes_out_at_once() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::new(500 * MS);
        assert!(k.request(t0));
        assert_eq!(k.deadline(), None);
    }

    #[test]
    fn requests_within_the_interval_merge_into_one() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::new(500 * MS);
        assert!(k.request(t0));
        assert!(!k.request(t0 + 10 * MS));
        assert!(!k.request(t0 + 20 * MS));
        assert!(!k.request(t0 + 300 * MS));
        assert_eq!(k.deadline(), Some(t0 + 500 * MS));
        assert!(!k.poll(t0 + 499 * MS));
        assert!(k.poll(t0 + 500 * MS));
        // Merged: exactly one went out, nothing left.
        assert!(!k.poll(t0 + 2000 * MS));
        assert_eq!(k.deadline(), None);
    }

    #[test]
    fn a_request_after_the_interval_goes_out_at_once() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::new(500 * MS);
        assert!(k.request(t0));
        assert!(k.request(t0 + 600 * MS));
        assert!(!k.request(t0 + 700 * MS));
        assert_eq!(k.deadline(), Some(t0 + 1100 * MS));
    }
}
