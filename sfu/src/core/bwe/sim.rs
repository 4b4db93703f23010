//! A link simulator for tests: one direction of a path, in fake time, with
//! a seeded random generator, so every run is the same.
//!
//! A packet sent into the link waits in a bounded FIFO (tail drop when the
//! queued bytes would exceed `queue_bytes`), is serialised at `rate`, may be
//! lost (random or Gilbert-Elliott bursts), then travels `delay` plus a
//! uniform `jitter` (without reordering: a packet never overtakes the one
//! before it). The rate, delay and loss can change at any time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Bitrate;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Loss {
    None,
    /// Each packet lost with this probability.
    Random(f64),
    /// Two states: good and bad, each with its own loss probability; every
    /// packet first moves between them with the given probabilities.
    GilbertElliott {
        to_bad: f64,
        to_good: f64,
        loss_good: f64,
        loss_bad: f64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LinkConfig {
    /// `None`: unlimited.
    pub rate: Option<Bitrate>,
    pub queue_bytes: usize,
    pub delay: Duration,
    pub jitter: Duration,
    pub loss: Loss,
    pub seed: u64,
}

impl LinkConfig {
    /// A bottleneck of `rate` with a queue of `queue` worth of it.
    pub(crate) fn bottleneck(rate: Bitrate, queue: Duration, delay: Duration) -> Self {
        LinkConfig {
            rate: Some(rate),
            queue_bytes: rate.bytes_in(queue) as usize,
            delay,
            jitter: Duration::ZERO,
            loss: Loss::None,
            seed: 1,
        }
    }

    /// No rate limit, only delay.
    pub(crate) fn wire(delay: Duration) -> Self {
        LinkConfig {
            rate: None,
            queue_bytes: usize::MAX,
            delay,
            jitter: Duration::ZERO,
            loss: Loss::None,
            seed: 2,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LinkStats {
    pub sent: u64,
    pub tail_dropped: u64,
    pub lost: u64,
    pub delivered: u64,
    pub delivered_bytes: u64,
}

#[derive(Debug)]
pub(crate) struct Link<P> {
    cfg: LinkConfig,
    rng: StdRng,
    bad: bool,
    queue: VecDeque<(P, usize, Instant)>,
    queued_bytes: usize,
    free_at: Option<Instant>,
    in_flight: VecDeque<(Instant, P)>,
    last_arrival: Option<Instant>,
    stats: LinkStats,
}

impl<P> Link<P> {
    pub(crate) fn new(cfg: LinkConfig) -> Self {
        Link {
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
            bad: false,
            queue: VecDeque::new(),
            queued_bytes: 0,
            free_at: None,
            in_flight: VecDeque::new(),
            last_arrival: None,
            stats: LinkStats::default(),
        }
    }

    pub(crate) fn stats(&self) -> LinkStats {
        self.stats
    }

    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    pub(crate) fn set_rate(&mut self, rate: Option<Bitrate>, now: Instant) {
        self.advance(now);
        self.cfg.rate = rate;
    }

    pub(crate) fn set_delay(&mut self, delay: Duration, now: Instant) {
        self.advance(now);
        self.cfg.delay = delay;
    }

    pub(crate) fn set_loss(&mut self, loss: Loss, now: Instant) {
        self.advance(now);
        self.cfg.loss = loss;
    }

    /// Puts a packet on the link; `false` if the queue was full.
    pub(crate) fn send(&mut self, packet: P, size: usize, now: Instant) -> bool {
        self.advance(now);
        self.stats.sent += 1;
        if self.queued_bytes.saturating_add(size) > self.cfg.queue_bytes {
            self.stats.tail_dropped += 1;
            return false;
        }
        self.queued_bytes += size;
        self.queue.push_back((packet, size, now));
        self.advance(now);
        true
    }

    fn finish_of(&self, size: usize, enqueued: Instant) -> Instant {
        let start = self.free_at.map_or(enqueued, |f| f.max(enqueued));
        match self.cfg.rate {
            Some(r) => start + r.time_for(size as u64).min(Duration::from_secs(3600)),
            None => start,
        }
    }

    /// Moves every packet serialised by `now` into flight.
    fn advance(&mut self, now: Instant) {
        while let Some(&(_, size, enq)) = self.queue.front() {
            let finish = self.finish_of(size, enq);
            if finish > now {
                break;
            }
            let Some((packet, size, _)) = self.queue.pop_front() else {
                break;
            };
            self.queued_bytes -= size;
            self.free_at = Some(finish);
            if self.lose() {
                self.stats.lost += 1;
                continue;
            }
            let jitter = if self.cfg.jitter.is_zero() {
                Duration::ZERO
            } else {
                self.cfg.jitter.mul_f64(self.rng.random::<f64>())
            };
            let mut arrival = finish + self.cfg.delay + jitter;
            if let Some(last) = self.last_arrival {
                arrival = arrival.max(last);
            }
            self.last_arrival = Some(arrival);
            self.stats.delivered += 1;
            self.stats.delivered_bytes += size as u64;
            self.in_flight.push_back((arrival, packet));
        }
    }

    fn lose(&mut self) -> bool {
        match self.cfg.loss {
            Loss::None => false,
            Loss::Random(p) => self.rng.random::<f64>() < p,
            Loss::GilbertElliott {
                to_bad,
                to_good,
                loss_good,
                loss_bad,
            } => {
                let flip = self.rng.random::<f64>();
                if self.bad && flip < to_good {
                    self.bad = false;
                } else if !self.bad && flip < to_bad {
                    self.bad = true;
                }
                let p = if self.bad { loss_bad } else { loss_good };
                self.rng.random::<f64>() < p
            }
        }
    }

    /// The next packet that has arrived by `now`, with its arrival time.
    pub(crate) fn poll(&mut self, now: Instant) -> Option<(Instant, P)> {
        self.advance(now);
        if self.in_flight.front().is_some_and(|(at, _)| *at <= now) {
            return self.in_flight.pop_front();
        }
        None
    }

    /// When something next happens on the link.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let arrival = self.in_flight.front().map(|(at, _)| *at);
        let serialised = self
            .queue
            .front()
            .map(|&(_, size, enq)| self.finish_of(size, enq));
        match (arrival, serialised) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn drain(link: &mut Link<u32>, until: Instant) -> Vec<(Instant, u32)> {
        let mut out = Vec::new();
        while let Some(d) = link.next_deadline() {
            if d > until {
                break;
            }
            while let Some(p) = link.poll(d) {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn serialises_at_the_rate_then_adds_the_delay() {
        let t0 = Instant::now();
        // 1 Mbit/s: 1250 bytes take 10 ms.
        let mut link = Link::new(LinkConfig::bottleneck(
            Bitrate::kbps(1000),
            200 * MS,
            50 * MS,
        ));
        for i in 0..5 {
            assert!(link.send(i, 1250, t0));
        }
        let got = drain(&mut link, t0 + 1000 * MS);
        let at: Vec<_> = got.iter().map(|(t, _)| (*t - t0).as_millis()).collect();
        assert_eq!(at, vec![60, 70, 80, 90, 100]);
        assert_eq!(
            got.iter().map(|(_, p)| *p).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn a_full_queue_drops_the_tail() {
        let t0 = Instant::now();
        // 100 ms of queue at 1 Mbit/s = 12 500 bytes = 10 packets.
        let mut link = Link::new(LinkConfig::bottleneck(
            Bitrate::kbps(1000),
            100 * MS,
            10 * MS,
        ));
        let accepted = (0..15).filter(|i| link.send(*i, 1250, t0)).count();
        assert_eq!(accepted, 10);
        assert_eq!(link.stats().tail_dropped, 5);
        // Once it drains, it accepts again.
        drain(&mut link, t0 + 200 * MS);
        assert!(link.send(99, 1250, t0 + 200 * MS));
    }

    #[test]
    fn a_rate_change_applies_to_what_is_still_queued() {
        let t0 = Instant::now();
        let mut link = Link::new(LinkConfig::bottleneck(
            Bitrate::kbps(1000),
            1000 * MS,
            Duration::ZERO,
        ));
        for i in 0..4 {
            link.send(i, 1250, t0);
        }
        link.set_rate(Some(Bitrate::kbps(500)), t0 + 15 * MS);
        let at: Vec<_> = drain(&mut link, t0 + 1000 * MS)
            .iter()
            .map(|(t, _)| (*t - t0).as_millis())
            .collect();
        // The first left at 10 ms; the second was on the wire at the change
        // and is timed at the new rate, as are the rest.
        assert_eq!(at, vec![10, 30, 50, 70]);
    }

    #[test]
    fn random_loss_is_seeded_and_close_to_its_probability() {
        let t0 = Instant::now();
        let run = |seed| {
            let mut cfg = LinkConfig::wire(10 * MS);
            cfg.loss = Loss::Random(0.05);
            cfg.seed = seed;
            let mut link = Link::new(cfg);
            for i in 0..20_000 {
                link.send(i, 100, t0);
            }
            let got: Vec<u32> = drain(&mut link, t0 + 1000 * MS)
                .into_iter()
                .map(|(_, p)| p)
                .collect();
            got
        };
        let a = run(7);
        assert_eq!(a, run(7), "same seed, same losses");
        assert_ne!(a, run(8));
        let loss = 1.0 - a.len() as f64 / 20_000.0;
        assert!((loss - 0.05).abs() < 0.005, "{loss}");
    }

    #[test]
    fn gilbert_elliott_loss_comes_in_bursts() {
        let t0 = Instant::now();
        let mut cfg = LinkConfig::wire(10 * MS);
        // Bad state 10% of the time, mean burst of 10 packets, all lost in it.
        cfg.loss = Loss::GilbertElliott {
            to_bad: 0.0111,
            to_good: 0.1,
            loss_good: 0.0,
            loss_bad: 1.0,
        };
        let mut link = Link::new(cfg);
        for i in 0..50_000u32 {
            link.send(i, 100, t0);
        }
        let got: Vec<u32> = drain(&mut link, t0 + 1000 * MS)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        let lost = 50_000 - got.len();
        let loss = lost as f64 / 50_000.0;
        assert!((loss - 0.1).abs() < 0.02, "{loss}");
        // Count gaps: mean burst length near 10, far from random's ~1.1.
        let gaps = got.windows(2).filter(|w| w[1] != w[0] + 1).count();
        let mean_burst = lost as f64 / gaps as f64;
        assert!(mean_burst > 7.0 && mean_burst < 13.0, "{mean_burst}");
    }

    #[test]
    fn jitter_never_reorders() {
        let t0 = Instant::now();
        let mut cfg = LinkConfig::wire(20 * MS);
        cfg.jitter = 30 * MS;
        let mut link = Link::new(cfg);
        for i in 0..1000u32 {
            link.send(i, 100, t0 + i * MS);
        }
        let got = drain(&mut link, t0 + 5000 * MS);
        assert_eq!(got.len(), 1000);
        assert!(got.windows(2).all(|w| w[0].1 < w[1].1 && w[0].0 <= w[1].0));
        let spread: Vec<u128> = got
            .iter()
            .map(|(t, p)| (*t - t0).as_millis() - *p as u128)
            .collect();
        assert!(spread.iter().all(|d| *d >= 20 && *d <= 50));
        assert!(spread.iter().any(|d| *d >= 40));
    }
}
