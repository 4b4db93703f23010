//! A bit rate in bits per second.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// Bits per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bitrate(pub u64);

impl Bitrate {
    pub const ZERO: Bitrate = Bitrate(0);
    pub const MAX: Bitrate = Bitrate(u64::MAX);

    pub const fn bps(bps: u64) -> Self {
        Bitrate(bps)
    }

    pub const fn kbps(kbps: u64) -> Self {
        Bitrate(kbps * 1000)
    }

    pub const fn as_bps(self) -> u64 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64
    }

    /// A rate from a float, clamped at zero (NaN is zero).
    pub fn from_f64(bps: f64) -> Self {
        if bps.is_nan() || bps <= 0.0 {
            Bitrate(0)
        } else {
            Bitrate(bps.min(u64::MAX as f64) as u64)
        }
    }

    /// The rate of `bytes` spread over `over`; zero for an empty interval.
    pub fn from_bytes(bytes: u64, over: Duration) -> Self {
        let secs = over.as_secs_f64();
        if secs <= 0.0 {
            return Bitrate(0);
        }
        Self::from_f64(bytes as f64 * 8.0 / secs)
    }

    /// `self` scaled by `factor`.
    pub fn scale(self, factor: f64) -> Self {
        Self::from_f64(self.0 as f64 * factor)
    }

    /// How long `bytes` take at this rate (`Duration::MAX` at zero).
    pub fn time_for(self, bytes: u64) -> Duration {
        if self.0 == 0 {
            return Duration::MAX;
        }
        Duration::try_from_secs_f64(bytes as f64 * 8.0 / self.0 as f64).unwrap_or(Duration::MAX)
    }

    /// How many bytes this rate carries in `over`.
    pub fn bytes_in(self, over: Duration) -> f64 {
        self.0 as f64 * over.as_secs_f64() / 8.0
    }

    pub fn clamp(self, min: Bitrate, max: Bitrate) -> Self {
        Bitrate(self.0.clamp(min.0, max.0.max(min.0)))
    }
}

impl Add for Bitrate {
    type Output = Bitrate;
    fn add(self, rhs: Bitrate) -> Bitrate {
        Bitrate(self.0.saturating_add(rhs.0))
    }
}

impl Sub for Bitrate {
    type Output = Bitrate;
    fn sub(self, rhs: Bitrate) -> Bitrate {
        Bitrate(self.0.saturating_sub(rhs.0))
    }
}

impl std::iter::Sum for Bitrate {
    fn sum<I: Iterator<Item = Bitrate>>(iter: I) -> Bitrate {
        iter.fold(Bitrate::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Bitrate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1_000_000 {
            write!(f, "{:.2} Mbit/s", self.0 as f64 / 1e6)
        } else {
            write!(f, "{:.1} kbit/s", self.0 as f64 / 1e3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_from_bytes_and_back() {
        let r = Bitrate::from_bytes(125_000, Duration::from_secs(1));
        assert_eq!(r, Bitrate::kbps(1000));
        assert_eq!(r.time_for(1250), Duration::from_millis(10));
        assert!((r.bytes_in(Duration::from_millis(100)) - 12_500.0).abs() < 1e-6);
        assert_eq!(Bitrate::from_bytes(10, Duration::ZERO), Bitrate::ZERO);
        assert_eq!(Bitrate::ZERO.time_for(1), Duration::MAX);
    }

    #[test]
    fn arithmetic_saturates_and_floats_clamp() {
        assert_eq!(Bitrate(5) - Bitrate(9), Bitrate::ZERO);
        assert_eq!(Bitrate::MAX + Bitrate(1), Bitrate::MAX);
        assert_eq!(Bitrate::from_f64(f64::NAN), Bitrate::ZERO);
        assert_eq!(Bitrate::from_f64(-3.0), Bitrate::ZERO);
        assert_eq!(Bitrate::kbps(100).scale(1.5), Bitrate::kbps(150));
        assert_eq!(Bitrate(7).clamp(Bitrate(10), Bitrate(20)), Bitrate(10));
        assert_eq!(format!("{}", Bitrate::kbps(2500)), "2.50 Mbit/s");
    }
}
