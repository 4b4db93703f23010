//! A bottleneck link in front of a bot's receive path: the bot's own
//! downlink cap (`--downlink-kbps`).
//!
//! Datagrams join a bounded FIFO queue and leave it at the link's rate,
//! metered by a token bucket; when the queue is full, new arrivals are
//! dropped (tail drop), as a router's queue in front of a slow access link
//! drops them. So delay builds up first and loss follows, which is what a
//! sender's bandwidth estimator has to notice. Sans-I/O: the caller passes
//! `now` and asks when the next datagram is due.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Bytes a link adds to each UDP payload (IPv4 and UDP headers): a rate
/// cap on a real link counts them too.
pub const PER_DATAGRAM_OVERHEAD: usize = 28;

/// The link's shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkSpec {
    /// Capacity in bits per second.
    pub rate_bps: u64,
    /// How much the queue holds, as time at the link's rate.
    pub queue: Duration,
}

/// The smallest queue and bucket, in bytes: a couple of full-size
/// datagrams, so a slow link still passes a whole packet.
const MIN_BYTES: usize = 2 * 1500;

/// One queued datagram.
#[derive(Debug)]
struct Queued<T> {
    item: T,
    size: usize,
    arrived: Instant,
}

/// The bottleneck. `T` is what is queued (the datagram with its address).
#[derive(Debug)]
pub struct Bottleneck<T> {
    /// Bytes per second.
    rate: f64,
    limit_bytes: usize,
    /// Token bucket depth in bytes: what may pass back to back after idle.
    burst: f64,
    tokens: f64,
    refilled_at: Instant,
    queue: VecDeque<Queued<T>>,
    queued_bytes: usize,
}

/// What became of a datagram offered to the link.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// The queue was full: tail drop.
    Dropped,
}

impl<T> Bottleneck<T> {
    /// An idle link with a full bucket at `now`.
    pub fn new(spec: LinkSpec, now: Instant) -> Self {
        let rate = (spec.rate_bps.max(8) as f64) / 8.0;
        let limit_bytes = ((rate * spec.queue.as_secs_f64()) as usize).max(MIN_BYTES);
        // A 5 ms burst, as a shaper's bucket of a few packets: enough that
        // back-to-back datagrams after an idle moment are not delayed for
        // nothing, small enough that the rate holds over any frame.
        let burst = (rate * 0.005).max(MIN_BYTES as f64);
        Bottleneck {
            rate,
            limit_bytes,
            burst,
            tokens: burst,
            refilled_at: now,
            queue: VecDeque::new(),
            queued_bytes: 0,
        }
    }

    /// Capacity of the queue in bytes.
    #[cfg(test)]
    pub fn limit_bytes(&self) -> usize {
        self.limit_bytes
    }

    /// Bytes waiting.
    #[cfg(test)]
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    fn refill(&mut self, now: Instant) {
        if now > self.refilled_at {
            let dt = now.duration_since(self.refilled_at).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(self.burst);
            self.refilled_at = now;
        }
    }

    /// A datagram of `payload_len` bytes arrived at the link at `now`.
    pub fn offer(&mut self, now: Instant, payload_len: usize, item: T) -> Offer {
        let size = payload_len + PER_DATAGRAM_OVERHEAD;
        if self.queued_bytes + size > self.limit_bytes {
            return Offer::Dropped;
        }
        self.queue.push_back(Queued {
            item,
            size,
            arrived: now,
        });
        self.queued_bytes += size;
        Offer::Queued
    }

    /// The next datagram that has crossed the link by `now`, with the time
    /// it spent queued.
    pub fn poll(&mut self, now: Instant) -> Option<(T, Duration)> {
        self.refill(now);
        let head = self.queue.front()?;
        // A microbyte of slack: `poll_timeout` rounds to whole microseconds.
        if self.tokens + 1e-6 < head.size as f64 {
            return None;
        }
        let q = self.queue.pop_front()?;
        self.tokens = (self.tokens - q.size as f64).max(0.0);
        self.queued_bytes -= q.size;
        Some((q.item, now.saturating_duration_since(q.arrived)))
    }

    /// When the head of the queue will have crossed; `None` when empty.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let head = self.queue.front()?;
        let missing = head.size as f64 - self.tokens;
        if missing <= 0.0 {
            return Some(self.refilled_at);
        }
        // Round up to the next microsecond so the tokens are there when
        // the caller comes back.
        let wait = Duration::from_micros((missing / self.rate * 1e6).ceil() as u64);
        Some(self.refilled_at + wait)
    }
}

/// Whether a datagram on a multiplexed WebRTC port is (S)RTP rather than
/// RTCP, STUN or DTLS (RFC 7983, RFC 5761): first byte 128 to 191 and a
/// second byte that is not an RTCP packet type (192 to 223 with the marker
/// bit folded in).
pub fn is_rtp(datagram: &[u8]) -> bool {
    match datagram {
        [b0, b1, ..] => (128..=191).contains(b0) && !(64..=95).contains(&(b1 & 0x7f)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Runs a link in fake time: `arrivals` are (time, payload size); returns
    /// (departure time, queued for) of every datagram that passed, by index,
    /// and the indices dropped.
    fn simulate(
        spec: LinkSpec,
        arrivals: &[(Duration, usize)],
        until: Duration,
    ) -> (Vec<(usize, Duration, Duration)>, Vec<usize>) {
        let t0 = Instant::now();
        let mut link = Bottleneck::new(spec, t0);
        let mut passed = Vec::new();
        let mut dropped = Vec::new();
        let mut next = 0;
        let mut now = t0;
        let end = t0 + until;
        while now <= end {
            while next < arrivals.len() && t0 + arrivals[next].0 <= now {
                if link.offer(now, arrivals[next].1, next) == Offer::Dropped {
                    dropped.push(next);
                }
                next += 1;
            }
            while let Some((i, waited)) = link.poll(now) {
                passed.push((i, now - t0, waited));
            }
            // Step to the next event: an arrival or the link's next departure.
            let mut step = end + MS;
            if let Some(a) = arrivals.get(next) {
                step = step.min(t0 + a.0);
            }
            if let Some(d) = link.poll_timeout() {
                step = step.min(d.max(now + Duration::from_micros(1)));
            }
            now = step;
        }
        (passed, dropped)
    }

    #[test]
    fn under_the_rate_nothing_waits_or_drops() {
        // 1000 kbit/s link, 100 packets of 1000 bytes a second = ~820 kbit/s with overhead.
        let spec = LinkSpec {
            rate_bps: 1_000_000,
            queue: Duration::from_millis(200),
        };
        let arrivals: Vec<_> = (0..200).map(|i| (MS * 10 * i, 1000)).collect();
        let (passed, dropped) = simulate(spec, &arrivals, Duration::from_secs(3));
        assert!(dropped.is_empty());
        assert_eq!(passed.len(), 200);
        assert!(
            passed.iter().all(|&(_, _, waited)| waited <= MS),
            "{passed:?}"
        );
    }

    #[test]
    fn over_the_rate_delay_builds_then_the_tail_drops() {
        // 800 kbit/s = 100,000 bytes/s; offered 2000 kbit/s in 1000-byte
        // datagrams (1028 bytes on the link) for 2 s.
        let spec = LinkSpec {
            rate_bps: 800_000,
            queue: Duration::from_millis(200),
        };
        let link = Bottleneck::<()>::new(spec, Instant::now());
        assert_eq!(link.limit_bytes(), 20_000);
        let arrivals: Vec<_> = (0..500)
            .map(|i| (Duration::from_micros(4000 * i), 1000))
            .collect();
        let (passed, dropped) = simulate(spec, &arrivals, Duration::from_secs(4));
        // The first datagrams find an empty queue; the drops start only once
        // about 200 ms of queue has built.
        let first_drop = dropped[0];
        assert!(first_drop > 20, "dropped from {first_drop}");
        let waited_before_drop = passed.iter().find(|p| p.0 == first_drop - 1).unwrap().2;
        assert!(waited_before_drop >= MS * 150, "{waited_before_drop:?}");
        // Queueing delay never exceeds the queue's length (plus one packet).
        let max_wait = passed.iter().map(|p| p.2).max().unwrap();
        assert!(max_wait <= MS * 212, "{max_wait:?}");
        // What passes is the link rate: over the 2 s of overload it carried
        // 100,000 bytes/s / 1028 bytes ~ 97 datagrams a second.
        let in_first_2s = passed
            .iter()
            .filter(|p| p.1 <= Duration::from_secs(2))
            .count();
        assert!((190..=200).contains(&in_first_2s), "{in_first_2s}");
        assert_eq!(passed.len() + dropped.len(), 500);
        // Every queued datagram leaves eventually, in order.
        let order: Vec<usize> = passed.iter().map(|p| p.0).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted);
    }

    #[test]
    fn an_idle_link_passes_a_small_burst_at_once() {
        let spec = LinkSpec {
            rate_bps: 800_000,
            queue: Duration::from_millis(200),
        };
        let t0 = Instant::now();
        let mut link = Bottleneck::new(spec, t0);
        // A 3-datagram keyframe burst of 1200 bytes after idle: the bucket
        // (3,000 bytes) passes two at once, the third waits its turn.
        for i in 0..3 {
            assert_eq!(link.offer(t0, 1200, i), Offer::Queued);
        }
        assert_eq!(link.poll(t0).map(|p| p.0), Some(0));
        assert_eq!(link.poll(t0).map(|p| p.0), Some(1));
        assert_eq!(link.poll(t0), None);
        let due = link.poll_timeout().unwrap();
        // 1228 bytes - 544 tokens left = 684 bytes at 100,000 B/s = 6.84 ms.
        assert_eq!(due - t0, Duration::from_micros(6840));
        assert_eq!(link.poll(due - Duration::from_micros(10)), None);
        let (i, waited) = link.poll(due).unwrap();
        assert_eq!((i, waited), (2, Duration::from_micros(6840)));
        assert_eq!(link.poll_timeout(), None);
        assert_eq!(link.queued_bytes(), 0);
    }

    #[test]
    fn a_full_queue_drops_what_does_not_fit_and_takes_smaller_later() {
        let spec = LinkSpec {
            rate_bps: 8_000,
            queue: Duration::ZERO,
        };
        let t0 = Instant::now();
        let mut link = Bottleneck::new(spec, t0);
        assert_eq!(link.limit_bytes(), MIN_BYTES);
        assert_eq!(link.offer(t0, 1400, 0), Offer::Queued);
        assert_eq!(link.offer(t0, 1400, 1), Offer::Queued);
        assert_eq!(link.offer(t0, 1400, 2), Offer::Dropped);
        assert_eq!(link.offer(t0, 100, 3), Offer::Queued);
        assert_eq!(link.queued_bytes(), 2 * 1428 + 128);
    }

    #[test]
    fn tells_rtp_from_rtcp_stun_and_dtls() {
        assert!(is_rtp(&[0x80, 96, 0, 1]));
        assert!(is_rtp(&[0x90, 0x80 | 111]));
        assert!(!is_rtp(&[0x80, 200])); // sender report
        assert!(!is_rtp(&[0x81, 205])); // transport feedback
        assert!(!is_rtp(&[0x81, 206])); // PLI
        assert!(!is_rtp(&[0x00, 0x01])); // STUN
        assert!(!is_rtp(&[22, 254])); // DTLS
        assert!(!is_rtp(&[0x80]));
    }
}
