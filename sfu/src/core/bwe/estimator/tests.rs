use super::*;
use crate::core::bwe::history::{PacketKind, SentPacket, TransportSeq};

const MS: Duration = Duration::from_millis(1);

/// A sender at `rate` through a path of capacity `capacity` (a queue
/// that grows when the rate is above it), with feedback every 100 ms.
struct Path {
    t0: Instant,
    seq: u64,
    queue_free_us: i64,
    pending: Vec<PacketResult>,
    /// A receiver that is not scheduled for a while every `.0` µs, for
    /// `.1[k % len]` µs in the k-th period: packets that arrive meanwhile
    /// are stamped when it runs again.
    stalls: Option<(i64, Vec<i64>)>,
    /// Delay added to every packet past the queue (a longer route), and
    /// up to this much jitter on top of it, µs.
    extra_us: i64,
    jitter_us: i64,
}

impl Path {
    fn new() -> Self {
        Path {
            t0: Instant::now(),
            seq: 0,
            queue_free_us: 0,
            pending: Vec::new(),
            stalls: None,
            extra_us: 0,
            jitter_us: 0,
        }
    }

    /// Spread evenly over `jitter_us`, the same for every run.
    fn jitter(&self) -> i64 {
        if self.jitter_us == 0 {
            return 0;
        }
        (self.seq as i64 * 7919) % (self.jitter_us + 1)
    }

    fn stamp(&self, arrival_us: i64) -> i64 {
        let Some((period, lens)) = &self.stalls else {
            return arrival_us;
        };
        let k = arrival_us / period;
        let len = lens[k as usize % lens.len()];
        let into = arrival_us % period;
        if into < len {
            arrival_us - into + len
        } else {
            arrival_us
        }
    }

    /// Sends for `ms` at `rate` over `capacity`; returns the time reached.
    fn run(&mut self, e: &mut Estimator, from_ms: u64, ms: u64, rate: Bitrate, capacity: Bitrate) {
        let size = 1000u32;
        let gap = rate.time_for(size as u64);
        let mut t = self.t0 + Duration::from_millis(from_ms);
        let end = t + Duration::from_millis(ms);
        let mut next_fb = t + 100 * MS;
        while t < end {
            let send_us = (t - self.t0).as_micros() as i64;
            let start = self.queue_free_us.max(send_us);
            self.queue_free_us = start + capacity.time_for(size as u64).as_micros() as i64;
            let sent = SentPacket {
                seq: TransportSeq(self.seq),
                sent_at: t,
                size,
                kind: PacketKind::Video,
                probe: None,
            };
            self.seq += 1;
            e.on_packet_sent(size as usize, t);
            self.pending.push(PacketResult {
                sent,
                arrival_us: Some(
                    self.stamp(self.queue_free_us + 20_000 + self.extra_us + self.jitter()),
                ),
            });
            t += gap;
            if t >= next_fb {
                let now_us = (t - self.t0).as_micros() as i64;
                let (ready, rest): (Vec<_>, Vec<_>) = self
                    .pending
                    .drain(..)
                    .partition(|r| r.arrival_us.unwrap() <= now_us);
                self.pending = rest;
                e.on_feedback(&ready, t + 20 * MS);
                next_fb += 100 * MS;
            }
        }
    }
}

/// An estimator that starts at `kbps`, with the rest as configured by default.
fn starting_at(kbps: u64) -> Estimator {
    Estimator::new(EstimatorConfig {
        initial: Bitrate::kbps(kbps),
        ..Default::default()
    })
}

#[test]
fn sending_above_capacity_brings_the_estimate_down_to_it() {
    let mut e = starting_at(2000);
    let mut p = Path::new();
    p.run(&mut e, 0, 3000, Bitrate::kbps(2000), Bitrate::kbps(1000));
    let now = p.t0 + 3000 * MS;
    let est = e.estimate(now);
    assert!(est <= Bitrate::kbps(1100), "{est}");
    assert!(est >= Bitrate::kbps(500), "{est}");
    assert!(e.is_congested(now));
}

#[test]
fn the_estimate_never_runs_away_above_what_is_sent() {
    let mut e = Estimator::new(EstimatorConfig::default());
    let mut p = Path::new();
    // 200 kbit/s on a 10 Mbit/s path for 30 s: no congestion at all.
    p.run(&mut e, 0, 30_000, Bitrate::kbps(200), Bitrate::kbps(10_000));
    let est = e.estimate(p.t0 + 30_000 * MS);
    assert!(est <= Bitrate::kbps(301), "{est}");
    assert!(est >= Bitrate::kbps(250), "{est}");
}

#[test]
fn a_probe_result_lifts_the_estimate_for_the_grace_period_only() {
    let mut e = Estimator::new(EstimatorConfig::default());
    let mut p = Path::new();
    p.run(&mut e, 0, 5_000, Bitrate::kbps(200), Bitrate::kbps(10_000));
    let t = p.t0 + 5_000 * MS;
    e.on_probe_started();
    e.on_probe_ended(Some(Bitrate::kbps(2000)), true, t);
    assert_eq!(e.estimate(t), Bitrate::kbps(2000));
    p.run(
        &mut e,
        5_000,
        4_000,
        Bitrate::kbps(200),
        Bitrate::kbps(10_000),
    );
    let est = e.estimate(p.t0 + 9_000 * MS);
    assert!(est <= Bitrate::kbps(301), "{est}");
}

#[test]
fn a_second_of_little_sending_lowers_the_estimate_but_not_what_the_path_sustains() {
    let mut e = Estimator::new(EstimatorConfig::default());
    let mut p = Path::new();
    // A probe took the estimate up to 3 Mbit/s; then 2 Mbit/s is sent.
    p.run(&mut e, 0, 2_000, Bitrate::kbps(200), Bitrate::kbps(10_000));
    e.on_probe_started();
    e.on_probe_ended(Some(Bitrate::kbps(3000)), true, p.t0 + 2_000 * MS);
    p.run(
        &mut e,
        2_000,
        8_000,
        Bitrate::kbps(2000),
        Bitrate::kbps(10_000),
    );
    let t = p.t0 + 10_000 * MS;
    assert!(e.estimate(t) >= Bitrate::kbps(2500), "{}", e.estimate(t));
    // The publishers stall: 200 kbit/s for a second and a half.
    p.run(
        &mut e,
        10_000,
        1_500,
        Bitrate::kbps(200),
        Bitrate::kbps(10_000),
    );
    let t = p.t0 + 11_500 * MS;
    let est = e.estimate(t);
    assert!(est <= Bitrate::kbps(1000), "bound to the rate sent: {est}");
    let sustained = e.sustained(t);
    assert!(sustained >= Bitrate::kbps(2500), "{sustained}");
    assert!(sustained <= Bitrate::kbps(3100), "{sustained}");
    // Sending again, the estimate is back at once: the stall taught
    // nothing about the path, so it has nothing to climb back.
    p.run(
        &mut e,
        11_500,
        1_500,
        Bitrate::kbps(2000),
        Bitrate::kbps(10_000),
    );
    let est = e.estimate(p.t0 + 13_000 * MS);
    assert!(est >= Bitrate::kbps(2500), "{est}");
}

#[test]
fn what_the_path_sustains_follows_congestion_down() {
    let mut e = starting_at(2500);
    let mut p = Path::new();
    p.run(&mut e, 0, 5_000, Bitrate::kbps(2000), Bitrate::kbps(10_000));
    p.run(
        &mut e,
        5_000,
        3_000,
        Bitrate::kbps(2000),
        Bitrate::kbps(1000),
    );
    let sustained = e.sustained(p.t0 + 8_000 * MS);
    assert!(sustained <= Bitrate::kbps(1100), "{sustained}");
}

#[test]
fn silence_of_feedback_halves_the_estimate() {
    let mut e = Estimator::new(EstimatorConfig::default());
    let t0 = Instant::now();
    // 800 kbit/s for 2.5 s and not one feedback.
    for i in 0..250 {
        e.on_packet_sent(1000, t0 + i * 10 * MS);
    }
    assert_eq!(e.estimate(t0 + 1_990 * MS), Bitrate::kbps(300));
    assert_eq!(e.estimate(t0 + 2_490 * MS), Bitrate::kbps(150));
    // Once per timeout, not once per call.
    assert_eq!(e.estimate(t0 + 2_495 * MS), Bitrate::kbps(150));
}

#[test]
fn sending_little_never_caps_the_estimate_below_where_it_started() {
    let mut e = Estimator::new(EstimatorConfig::default());
    let mut p = Path::new();
    // Audio only (50 kbit/s) for 10 s on a fast path: the cap is 1.5 x
    // the sent rate, but no lower than the initial 300 kbit/s, so a video
    // the subscriber has not received yet still fits its lowest layer.
    p.run(&mut e, 0, 10_000, Bitrate::kbps(50), Bitrate::kbps(10_000));
    let now = p.t0 + 10_000 * MS;
    assert_eq!(e.estimate(now), Bitrate::kbps(300));
    assert!(!e.is_congested(now));
}

/// A leg whose packets are numbered and reported one at a time.
struct Reported {
    t0: Instant,
    seq: u64,
}

impl Reported {
    fn new() -> Self {
        Reported {
            t0: Instant::now(),
            seq: 0,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// A 500-byte packet sent at `ms`, and its result (20 ms later, or
    /// lost).
    fn send(&mut self, e: &mut Estimator, ms: u64, arrives: bool) -> PacketResult {
        e.on_packet_sent(500, self.at(ms));
        let r = PacketResult {
            sent: SentPacket {
                seq: TransportSeq(self.seq),
                sent_at: self.at(ms),
                size: 500,
                kind: PacketKind::Video,
                probe: None,
            },
            arrival_us: arrives.then_some((ms * 1000 + 20_000) as i64),
        };
        self.seq += 1;
        r
    }

    /// 1 s at 400 kbit/s where half of every report is lost; returns when
    /// the last report came (ms).
    fn half_lost_second(&mut self, e: &mut Estimator) -> u64 {
        for step in 0..10u64 {
            let results: Vec<_> = (0..10u64)
                .map(|i| self.send(e, step * 100 + i * 10, i % 2 == 0))
                .collect();
            e.on_feedback(&results, self.at(step * 100 + 120));
        }
        1_120
    }
}

#[test]
fn loss_learnt_before_the_leg_went_quiet_is_forgotten() {
    let mut e = Estimator::new(EstimatorConfig::default());
    let mut leg = Reported::new();
    let end_ms = leg.half_lost_second(&mut e);
    let end = leg.at(end_ms);
    assert!(e.is_congested(end), "half the packets lost");
    let cut = e.estimate(end);
    assert!(cut < Bitrate::kbps(300), "{cut}");
    // Then nothing goes out and nothing comes back (every video paused).
    // For a while the loss is remembered...
    assert!(e.is_congested(end + 2_500 * MS));
    assert_eq!(e.estimate(end + 2_500 * MS), cut);
    // ...then forgotten: kept, it would hold the leg congested for good.
    let later = end + 3_500 * MS;
    assert!(!e.is_congested(later));
    assert!(e.estimate(later) > cut);
}

#[test]
fn loss_learnt_before_the_leg_went_down_to_a_trickle_is_forgotten() {
    let mut e = Estimator::new(EstimatorConfig::default());
    let mut leg = Reported::new();
    let end = leg.half_lost_second(&mut e);
    assert!(e.is_congested(leg.at(end)), "half the packets lost");
    // Then one packet every 700 ms, each received and reported: far too
    // few to measure loss, though packets and feedback keep flowing.
    let mut at = end;
    let mut congested = Vec::new();
    while at < end + 5_000 {
        at += 700;
        let r = leg.send(&mut e, at, true);
        e.on_feedback(&[r], leg.at(at + 30));
        congested.push((at - end, e.is_congested(leg.at(at + 30))));
    }
    assert!(
        congested.iter().take(3).all(|c| c.1),
        "remembered for a while: {congested:?}"
    );
    assert!(
        !congested.last().unwrap().1,
        "then forgotten: {congested:?}"
    );
}

#[test]
fn a_receiver_that_stamps_late_now_and_then_is_no_congestion_for_the_detector() {
    let mut e = Estimator::new(EstimatorConfig::default());
    let mut p = Path::new();
    // Every 250 ms the receiver sleeps for 10 to 70 ms, longer each time
    // for four periods: delay that grows and falls back, with no queue
    // (the path carries four times what is sent).
    p.stalls = Some((250_000, vec![10_000, 30_000, 50_000, 70_000]));
    let mut congested = 0;
    for i in 0..100 {
        p.run(
            &mut e,
            i * 100,
            100,
            Bitrate::kbps(500),
            Bitrate::kbps(2000),
        );
        congested += e.is_congested(p.t0 + Duration::from_millis(i * 100 + 100)) as u32;
    }
    let now = p.t0 + 10_000 * MS;
    let est = e.estimate(now);
    assert_eq!(congested, 0, "estimate {est}, state {:?}", e.state(now));
    assert!(est >= Bitrate::kbps(500), "{est}");
}

#[test]
fn overuse_a_probe_caused_is_no_congestion() {
    // The same burst over the path's capacity, once as a probe and once
    // as media: only the media's overuse makes the leg congested.
    let run = |probe: bool| {
        let mut e = Estimator::new(EstimatorConfig::default());
        let mut path = Path::new();
        path.run(&mut e, 0, 5_000, Bitrate::kbps(500), Bitrate::kbps(1000));
        if probe {
            e.on_probe_started();
        }
        path.run(
            &mut e,
            5_000,
            300,
            Bitrate::kbps(1_250),
            Bitrate::kbps(1000),
        );
        e.is_congested(path.t0 + Duration::from_millis(5_300))
    };
    assert!(run(false), "media over capacity is congestion");
    assert!(!run(true), "a probe over capacity is not");
}

#[test]
fn a_link_twenty_times_slower_is_overuse_before_a_long_queue_builds() {
    // 1.7 Mbit/s sent, and the path drops to 80 kbit/s: about ten packets
    // arrive a second, too few for the trend to outrun its threshold.
    let mut e = starting_at(2000);
    let mut p = Path::new();
    p.run(&mut e, 0, 5000, Bitrate::kbps(1700), Bitrate::kbps(10_000));
    let mut cut_at = None;
    for k in 0..20 {
        let from = 5000 + k * 100;
        p.run(&mut e, from, 100, Bitrate::kbps(1700), Bitrate::kbps(80));
        let now = p.t0 + Duration::from_millis(from + 100);
        if e.estimate(now) < Bitrate::kbps(100) {
            cut_at = Some((k + 1) * 100);
            assert!(e.is_congested(now));
            break;
        }
    }
    // The queue grows by about 95 ms every 100 ms: the cut comes while it
    // is under half a second (the trend alone took 700 ms).
    let cut_at = cut_at.expect("the estimate falls to the slow link");
    assert!(cut_at <= 500, "cut {cut_at} ms after the drop");
}

#[test]
fn a_backlog_counts_while_feedback_keeps_showing_it() {
    let mut e = starting_at(2000);
    let mut p = Path::new();
    p.run(&mut e, 0, 2000, Bitrate::kbps(1700), Bitrate::kbps(10_000));
    assert!(!e.backlogged(p.t0 + 2000 * MS));
    p.run(&mut e, 2000, 1000, Bitrate::kbps(1700), Bitrate::kbps(80));
    let end = p.t0 + 3000 * MS;
    assert!(e.backlogged(end), "{:?} standing", e.state(end).queueing);
    // Nothing sent, so no feedback: the reading goes out of date, and
    // a paused leg may be probed again.
    assert!(!e.backlogged(end + 2 * QUEUE_READING_AGE));
    // Nor while packets go out and no feedback comes back: the feedback
    // timeout that halves the estimate is no new reading of the queue.
    let mut t = end;
    for _ in 0..50 {
        t += 100 * MS;
        e.on_packet_sent(1000, t);
        e.estimate(t);
    }
    assert!(!e.backlogged(t), "a queue reading {:?} old", t - end);
}

#[test]
fn a_longer_route_with_jitter_is_no_growing_queue() {
    // 1 Mbit/s over a wide path, then every packet takes 300 ms longer
    // with up to 20 ms of jitter: the queue reads about 300 ms until the
    // floor follows (10 s), but it does not grow.
    let mut e = starting_at(1000);
    let mut p = Path::new();
    p.run(&mut e, 0, 5000, Bitrate::kbps(1000), Bitrate::kbps(10_000));
    p.extra_us = 300_000;
    p.jitter_us = 20_000;
    // The step itself may count once (it is delay growth); after it, the
    // jitter around the new delay must not.
    p.run(
        &mut e,
        5000,
        1000,
        Bitrate::kbps(1000),
        Bitrate::kbps(10_000),
    );
    let settled = e.estimate(p.t0 + 6000 * MS);
    p.run(
        &mut e,
        6000,
        3000,
        Bitrate::kbps(1000),
        Bitrate::kbps(10_000),
    );
    let now = p.t0 + 9000 * MS;
    assert!(
        e.state(now).queueing > Duration::from_millis(250),
        "the floor has not followed yet"
    );
    let est = e.estimate(now);
    assert!(
        est >= settled,
        "{est} after {settled}: cut on jitter around a standing queue"
    );
    assert!(!e.is_congested(now));
}
