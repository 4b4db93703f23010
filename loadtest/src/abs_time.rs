//! The abs-capture-time RTP header extension
//! (<http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time>): the
//! capture time as a 64-bit NTP timestamp (32.32 fixed point). Publishers
//! stamp every packet; subscribers on the same machine subtract it from
//! their own clock to get the end-to-end latency.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The 8-byte form of the extension for this time.
pub fn encode(t: SystemTime) -> [u8; 8] {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs() + NTP_UNIX_OFFSET;
    let frac = ((since.subsec_nanos() as u64) << 32) / 1_000_000_000;
    ((secs << 32) | frac).to_be_bytes()
}

/// The capture time in an extension payload (8 or 16 bytes).
pub fn decode(payload: &[u8]) -> Option<SystemTime> {
    let ntp = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
    let secs = (ntp >> 32).checked_sub(NTP_UNIX_OFFSET)?;
    let nanos = ((ntp & 0xffff_ffff) * 1_000_000_000) >> 32;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

/// How long ago (by `now`) the packet was captured; zero if the stamp is
/// in the future (clock step).
pub fn latency(payload: &[u8], now: SystemTime) -> Option<Duration> {
    let captured = decode(payload)?;
    Some(now.duration_since(captured).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_within_a_nanosecond() {
        let t = UNIX_EPOCH + Duration::new(1_764_000_000, 123_456_789);
        let back = decode(&encode(t)).unwrap();
        let diff = back.duration_since(t).unwrap_or_else(|e| e.duration());
        assert!(diff <= Duration::from_nanos(1), "{diff:?}");
    }

    #[test]
    fn known_encoding_and_latency() {
        // 1970-01-01T00:00:00.5Z is NTP 2208988800.5.
        let t = UNIX_EPOCH + Duration::from_millis(500);
        let bytes = encode(t);
        assert_eq!(
            u64::from_be_bytes(bytes),
            (NTP_UNIX_OFFSET << 32) | 0x8000_0000
        );
        let now = t + Duration::from_millis(12);
        let l = latency(&bytes, now).unwrap();
        assert!((l.as_secs_f64() - 0.012).abs() < 1e-6);
        assert_eq!(decode(&[1, 2, 3]), None);
        assert_eq!(decode(&[0; 8]), None); // before 1970
    }
}
