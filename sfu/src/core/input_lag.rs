//! How far behind the media plane reads, and what it sheds when it is too
//! far behind.
//!
//! A datagram waits in the kernel's receive queue from its arrival until a
//! shard reads it. On a server past its capacity that wait grows until the
//! queue is full: a client's queue of 200 KiB at a publisher's 150 packets
//! a second is more than a second of video, which every subscriber then
//! sees as latency (the load test past the knee had p99 latencies of 1.5
//! to 2.7 s, most of it in these queues). A bounded queue for media is one
//! bounded in time: RTP that waited longer than `[media] max_input_lag` is
//! dropped unread (counted as `stale_input`), so the shard catches up and
//! what it forwards is fresh. The subscribers see a gap (repaired by a
//! retransmission or a keyframe, as for loss on the path) instead of a
//! delay that never goes away. STUN, DTLS and RTCP are never shed:
//! consent, handshakes and feedback must get through, and they are few.
//!
//! Every datagram's wait is also observed for the `sfu_input_lag_seconds`
//! histogram, and what the kernel dropped for want of buffer before the
//! shard could read (the socket's running count, see `batch_recv`) is
//! counted as `socket_overflow`.

use std::time::Duration;

use crate::demux::{classify, Kind};

/// Upper bounds of the lag histogram's buckets, ms.
pub const LAG_LE_MS: [u64; 10] = [1, 5, 10, 25, 50, 100, 250, 500, 1_000, 5_000];

/// The shedding rule: see the module docs.
#[derive(Clone, Copy, Debug)]
pub struct InputLag {
    /// `None`: never shed.
    bound: Option<Duration>,
}

impl InputLag {
    /// `bound`: the longest wait after which RTP is still forwarded; zero
    /// means never shed.
    pub fn new(bound: Duration) -> Self {
        InputLag {
            bound: (!bound.is_zero()).then_some(bound),
        }
    }

    /// Whether a datagram that waited `lag` in the kernel is still worth
    /// reading: false only for RTP older than the bound.
    pub fn keep(&self, lag: Duration, datagram: &[u8]) -> bool {
        match self.bound {
            Some(b) if lag > b => !is_rtp(datagram),
            _ => true,
        }
    }
}

/// RTP (not RTCP) by its first two bytes (RFC 5761 section 4: RTCP packet
/// types 192 to 223 sit where RTP's marker bit and payload types 64 to 95
/// would).
fn is_rtp(b: &[u8]) -> bool {
    classify(b) == Kind::Rtp && !(64..=95).contains(&(b[1] & 0x7f))
}

/// A socket's running drop count (`SO_RXQ_OVFL`) turned into what was
/// dropped since the last datagram read.
#[derive(Clone, Copy, Debug, Default)]
pub struct OverflowCount {
    last: Option<u32>,
}

impl OverflowCount {
    /// The drops `count` shows since the previous reading: all of them the
    /// first time (the socket is the plane's from its start), and across
    /// the counter's wrap.
    pub fn observe(&mut self, count: u32) -> u32 {
        let new = count.wrapping_sub(self.last.unwrap_or(0));
        self.last = Some(count);
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTP: [u8; 12] = [0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
    const RTP_MARKED_AUDIO: [u8; 12] = [0x80, 0x80 | 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
    const RTCP_RR: [u8; 8] = [0x81, 201, 0, 1, 0, 0, 0, 7];
    const RTCP_PLI: [u8; 12] = [0x81, 206, 0, 2, 0, 0, 0, 7, 0, 0, 0, 9];
    const STUN: [u8; 20] = [
        0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    const DTLS: [u8; 13] = [22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn only_rtp_past_the_bound_is_shed() {
        let l = InputLag::new(ms(300));
        for d in [&RTP[..], &RTP_MARKED_AUDIO] {
            assert!(l.keep(ms(0), d));
            assert!(l.keep(ms(300), d), "at the bound it is still kept");
            assert!(!l.keep(ms(301), d));
            assert!(!l.keep(ms(5_000), d));
        }
        for d in [&RTCP_RR[..], &RTCP_PLI, &STUN, &DTLS, &[], &[0x80]] {
            assert!(l.keep(ms(5_000), d), "{d:?} is never shed");
        }
    }

    #[test]
    fn a_zero_bound_never_sheds() {
        let l = InputLag::new(Duration::ZERO);
        assert!(l.keep(ms(60_000), &RTP));
    }

    #[test]
    fn the_overflow_count_turns_into_drops_since_the_last_reading() {
        let mut c = OverflowCount::default();
        assert_eq!(c.observe(0), 0);
        assert_eq!(c.observe(5), 5);
        assert_eq!(c.observe(5), 0);
        assert_eq!(c.observe(12), 7);
        let mut w = OverflowCount::default();
        assert_eq!(
            w.observe(u32::MAX - 1),
            u32::MAX - 1,
            "all of them at first"
        );
        assert_eq!(w.observe(3), 5, "across the wrap");
    }
}
