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

use std::time::{Duration, Instant};

use crate::demux::{classify, is_rtcp, Kind};

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
            Some(b) if lag > b => classify(datagram) != Kind::Rtp || is_rtcp(datagram),
            _ => true,
        }
    }
}

/// Whether a shard reads so late that it should take no more work: the
/// signal for refusing new SFU participants (`server_busy`) while the
/// participants it has would be made worse by more.
///
/// Judged per second of reads: a second in which at least [`LATE_SHARE`]
/// of at least [`MIN_READS`] datagrams waited longer than [`LATE`] is a
/// late second; two late seconds in a row make the shard behind, and the
/// first second with under [`CLEAR_SHARE`] late (or too few reads to tell)
/// ends it. A single stall (a scheduling hiccup, a burst of handshakes)
/// does not refuse anybody.
#[derive(Clone, Debug, Default)]
pub struct Backlog {
    window: Option<Instant>,
    reads: u32,
    late: u32,
    late_seconds: u8,
    behind: bool,
}

/// A datagram that waited longer than this was read late.
pub const LATE: Duration = Duration::from_millis(100);
/// The share of a second's reads that makes it a late second.
pub const LATE_SHARE: f64 = 0.10;
/// Under this share a second clears the backlog.
pub const CLEAR_SHARE: f64 = 0.02;
/// Fewer reads in a second say nothing about load.
pub const MIN_READS: u32 = 50;
const SECOND: Duration = Duration::from_secs(1);
/// Late seconds in a row that make a shard behind.
const LATE_SECONDS: u8 = 2;

impl Backlog {
    /// One datagram read at `now` after waiting `lag`.
    pub fn observe(&mut self, lag: Duration, now: Instant) {
        self.roll(now);
        self.reads += 1;
        if lag > LATE {
            self.late += 1;
        }
    }

    /// Whether the shard is behind, as of `now`.
    pub fn is_behind(&mut self, now: Instant) -> bool {
        self.roll(now);
        self.behind
    }

    /// Closes the second that began at `window` once `now` is past it (a
    /// gap longer than a second counts as a quiet second).
    fn roll(&mut self, now: Instant) {
        let start = *self.window.get_or_insert(now);
        if now.saturating_duration_since(start) < SECOND {
            return;
        }
        let share = if self.reads >= MIN_READS {
            f64::from(self.late) / f64::from(self.reads)
        } else {
            0.0
        };
        if share >= LATE_SHARE {
            self.late_seconds = self.late_seconds.saturating_add(1);
            if self.late_seconds >= LATE_SECONDS {
                self.behind = true;
            }
        } else {
            self.late_seconds = 0;
            if share < CLEAR_SHARE {
                self.behind = false;
            }
        }
        self.reads = 0;
        self.late = 0;
        self.window = Some(if now.saturating_duration_since(start) < 2 * SECOND {
            start + SECOND
        } else {
            now
        });
    }
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

    /// `n` reads spread over the second from `start`, `late` of them late.
    fn second(b: &mut Backlog, start: Instant, n: u32, late: u32) {
        for i in 0..n {
            let lag = if i < late { ms(400) } else { ms(2) };
            b.observe(lag, start + ms(u64::from(i) * 1000 / u64::from(n)));
        }
    }

    #[test]
    fn two_late_seconds_in_a_row_make_a_shard_behind_and_one_clear_second_ends_it() {
        let t = Instant::now();
        let s = |k: u64| t + Duration::from_secs(k);
        let mut b = Backlog::default();
        second(&mut b, s(0), 200, 0);
        assert!(!b.is_behind(s(1)));
        // One late second (a stall) is not enough.
        second(&mut b, s(1), 200, 40);
        assert!(!b.is_behind(s(2)));
        second(&mut b, s(2), 200, 2);
        second(&mut b, s(3), 200, 40);
        assert!(!b.is_behind(s(4)), "the late seconds were not in a row");
        second(&mut b, s(4), 200, 60);
        assert!(b.is_behind(s(5)), "two late seconds in a row");
        // Between the shares: still behind.
        second(&mut b, s(5), 200, 10);
        assert!(b.is_behind(s(6)));
        // A clear second ends it.
        second(&mut b, s(6), 200, 2);
        assert!(!b.is_behind(s(7)));
    }

    #[test]
    fn a_quiet_shard_is_not_behind() {
        let t = Instant::now();
        let mut b = Backlog::default();
        for k in 0..3 {
            second(&mut b, t + Duration::from_secs(k), 200, 200);
        }
        assert!(b.is_behind(t + Duration::from_secs(3)));
        // Nothing read for a while: the seconds that pass are quiet ones.
        assert!(!b.is_behind(t + Duration::from_secs(10)));
        // Too few reads to judge, however late.
        second(&mut b, t + Duration::from_secs(10), 20, 20);
        second(&mut b, t + Duration::from_secs(11), 20, 20);
        assert!(!b.is_behind(t + Duration::from_secs(12)));
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
