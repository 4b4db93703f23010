//! The bandwidth estimate of one leg: delay-based, loss-based, and bounded
//! by what was actually sent.
//!
//! ```text
//! estimate = min(delay-based, loss-based, cap)
//! cap      = factor x min(sent rate, acknowledged rate)      (factor 1.5)
//!            raised to the last probe result for `probe_grace` after it,
//!            and never below the initial estimate
//! ```
//!
//! The cap is what keeps the estimate honest: a delay-based estimator sees
//! no congestion while the sender sends little, so left alone it grows
//! without bound (the runaway estimate of the library's GCC). Here the
//! estimate is never more than 1.5 times what was sent and received in the
//! last window, except just after a probe proved more; moving higher
//! therefore always goes through a probe.

use std::time::{Duration, Instant};

pub use super::arrival::Usage;
use super::arrival::{ArrivalGroups, Trendline};
use super::history::PacketResult;
use super::loss::LossControl;
use super::rate::{QueueDelay, RateWindow};
use super::rate_control::RateControl;
use super::Bitrate;

/// When no loss interval closed for this long, the loss part forgets.
const LOSS_MEMORY: Duration = Duration::from_secs(3);
/// A decrease takes out the standing queue over this time...
const QUEUE_DRAIN: Duration = Duration::from_secs(1);
/// ...removing at most this fraction of the rate for it.
const MAX_DRAIN: f64 = 0.3;

/// Overuse is blamed on a probe only while less than this is queued.
const PROBE_QUEUE_MAX: Duration = Duration::from_millis(100);
/// How long the highest acknowledged rate is remembered.
const BEST_ACKED_AGE: Duration = Duration::from_secs(30);
/// More than this standing on the path makes loss congestion loss.
const CONGESTED_QUEUE: Duration = Duration::from_millis(60);
/// A standing queue this long is a backlog: what is sent does not fit.
const BACKLOG: Duration = Duration::from_millis(500);
/// A queue above this that grew since the last feedback, which already
/// showed more than half of it, is overuse whatever the trend says (see
/// `queue_overuse`).
const QUEUE_OVERUSE: Duration = Duration::from_millis(200);
/// ...by at least this much: a path that became longer (a new route)
/// shows a queue above the old floor until the floor follows, which only
/// jitter moves up and down.
const QUEUE_GROWTH: Duration = Duration::from_millis(30);
/// How long a queue reading stays current without feedback.
const QUEUE_READING_AGE: Duration = Duration::from_secs(1);

/// Parameters of the estimator (`[bwe]` in the config).
#[derive(Clone, Debug, PartialEq)]
pub struct EstimatorConfig {
    /// Estimate before any feedback.
    pub initial: Bitrate,
    pub min: Bitrate,
    pub max: Bitrate,
    /// On overuse the estimate drops to this fraction of the acknowledged rate.
    pub beta: f64,
    /// The estimate is at most this multiple of the sent and acknowledged rate.
    pub cap_factor: f64,
    /// Window of the sent and acknowledged rates that bound the estimate.
    pub rate_window: Duration,
    /// Window of the acknowledged rate a decrease starts from: short, so
    /// that under overuse it is the rate the path delivers now.
    pub decrease_window: Duration,
    /// After a probe ends, overuse is blamed on the probe's own queue for
    /// this long and does not lower the estimate.
    pub probe_settle: Duration,
    /// How long a probe result may hold the estimate above the cap.
    pub probe_grace: Duration,
    /// With no feedback for this long while sending, the estimate halves.
    pub feedback_timeout: Duration,
}

impl Default for EstimatorConfig {
    fn default() -> Self {
        EstimatorConfig {
            initial: Bitrate::kbps(300),
            min: Bitrate::kbps(30),
            max: Bitrate::kbps(20_000),
            beta: 0.9,
            cap_factor: 1.5,
            rate_window: Duration::from_millis(1000),
            decrease_window: Duration::from_millis(300),
            probe_settle: Duration::from_millis(300),
            probe_grace: Duration::from_secs(3),
            feedback_timeout: Duration::from_secs(2),
        }
    }
}

/// A snapshot of the estimator for stats and decisions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EstimatorState {
    pub estimate: Bitrate,
    pub delay_based: Bitrate,
    pub loss_bound: Option<Bitrate>,
    pub cap: Option<Bitrate>,
    pub sent: Option<Bitrate>,
    pub acked: Option<Bitrate>,
    pub usage: Usage,
    /// Short-term loss fraction and the part of it above the path's baseline.
    pub loss: f64,
    pub loss_excess: f64,
    /// Loss the path shows without congestion (not reacted to).
    pub loss_baseline: f64,
    /// The acknowledged rate at recent overuse events.
    pub link_capacity: Option<Bitrate>,
    /// The delay detector's scaled trend and its adaptive threshold (ms).
    pub trend: f64,
    pub threshold_ms: f64,
    /// Delay standing on the path (one-way delay above its recent floor).
    pub queueing: Duration,
    pub rtt: Option<Duration>,
}

/// Estimates the available bandwidth of one leg from transport feedback.
#[derive(Debug)]
pub struct Estimator {
    cfg: EstimatorConfig,
    epoch: Option<Instant>,
    groups: ArrivalGroups,
    trend: Trendline,
    control: RateControl,
    loss: LossControl,
    sent: RateWindow,
    acked: RateWindow,
    recent: RateWindow,
    queue: QueueDelay,
    /// When feedback last gave a queue reading (a feedback with a packet
    /// received in it).
    queue_read_at: Option<Instant>,
    /// The last verdict on delay: the trend's or the queue's, as the rate
    /// control took it (overuse a probe caused counts as underuse).
    usage: Usage,
    last_arrival_us: Option<i64>,
    rtt: Option<Duration>,
    last_overuse: Option<Instant>,
    probe: Option<(Bitrate, Instant)>,
    /// A probe runs (`Some(None)`) or ended then (`Some(Some(t))`).
    probe_guard: Option<Option<Instant>>,
    burst_guard: Option<Instant>,
    /// Acknowledged rates of the last 30 s, decreasing: a sliding maximum.
    best_acked: std::collections::VecDeque<(Instant, Bitrate)>,
    last_feedback: Option<Instant>,
    last_sent: Option<Instant>,
    scratch: Vec<(i64, i64)>,
}

impl Estimator {
    pub fn new(cfg: EstimatorConfig) -> Self {
        let window = cfg.rate_window.as_micros() as i64;
        Estimator {
            control: RateControl::new(cfg.initial, cfg.min, cfg.max, cfg.beta),
            groups: ArrivalGroups::default(),
            trend: Trendline::default(),
            loss: LossControl::default(),
            sent: RateWindow::new(window, window / 4),
            acked: RateWindow::new(window, window / 4),
            recent: {
                let w = cfg.decrease_window.as_micros() as i64;
                RateWindow::new(w, w / 2)
            },
            queue: QueueDelay::new(10_000_000),
            queue_read_at: None,
            usage: Usage::Normal,
            epoch: None,
            last_arrival_us: None,
            rtt: None,
            last_overuse: None,
            probe: None,
            probe_guard: None,
            burst_guard: None,
            best_acked: std::collections::VecDeque::new(),
            last_feedback: None,
            last_sent: None,
            scratch: Vec::new(),
            cfg,
        }
    }

    fn local_us(&mut self, at: Instant) -> i64 {
        let epoch = *self.epoch.get_or_insert(at);
        match at.checked_duration_since(epoch) {
            Some(d) => d.as_micros() as i64,
            None => -(epoch.duration_since(at).as_micros() as i64),
        }
    }

    /// Every packet sent on the leg (media, retransmission, padding).
    pub fn on_packet_sent(&mut self, size: usize, now: Instant) {
        let t = self.local_us(now);
        self.sent.push(t, size as u32);
        if self.last_sent.is_none() {
            // Feedback timing starts with the first packet.
            self.last_feedback.get_or_insert(now);
        }
        self.last_sent = Some(now);
    }

    /// Results of one feedback report, as matched by the send history.
    pub fn on_feedback(&mut self, results: &[PacketResult], now: Instant) {
        self.last_feedback = Some(now);
        let (mut lost, mut received) = (0u32, 0u32);
        let mut min_rtt: Option<Duration> = None;
        let mut min_owd: Option<i64> = None;
        self.scratch.clear();
        for r in results {
            let Some(arrival) = r.arrival_us else {
                lost += 1;
                continue;
            };
            received += 1;
            let rtt = now.saturating_duration_since(r.sent.sent_at);
            min_rtt = Some(min_rtt.map_or(rtt, |m| m.min(rtt)));
            self.acked.push(arrival, r.sent.size);
            self.recent.push(arrival, r.sent.size);
            self.last_arrival_us = Some(self.last_arrival_us.map_or(arrival, |l| l.max(arrival)));
            let send_us = self.local_us(r.sent.sent_at);
            self.scratch.push((arrival, send_us));
            let owd = arrival.saturating_sub(send_us);
            min_owd = Some(min_owd.map_or(owd, |m| m.min(owd)));
        }
        if let Some(owd) = min_owd {
            let t = self.local_us(now);
            self.queue.push(t, owd);
            self.queue_read_at = Some(now);
        }
        if let Some(sample) = min_rtt {
            self.rtt = Some(match self.rtt {
                None => sample,
                Some(r) => (r * 7 + sample) / 8,
            });
        }
        // The detector wants packets in arrival order.
        self.scratch.sort_unstable();
        for i in 0..self.scratch.len() {
            let (arrival, send) = self.scratch[i];
            if let Some(d) = self.groups.push(send, arrival) {
                self.trend.update(d);
            }
        }
        let mut usage = self.trend.usage();
        if self.queue_overuse() {
            usage = Usage::Overuse;
        }
        if usage == Usage::Overuse {
            if self.probe_guarded(now) {
                // The queue a probe (or a keyframe burst) built, not the
                // media: hold, do not cut, and do not count the leg as
                // congested, which would move its layers down. The probe
                // ends on that delay growth by itself and backs off.
                usage = Usage::Underuse;
            } else {
                // No probing, no moving up for a while.
                self.last_overuse = Some(now);
            }
        }
        let acked = self.acked_rate();
        if let Some(a) = acked {
            while self.best_acked.back().is_some_and(|&(_, b)| b <= a) {
                self.best_acked.pop_back();
            }
            self.best_acked.push_back((now, a));
        }
        while self
            .best_acked
            .front()
            .is_some_and(|&(t, _)| now.saturating_duration_since(t) > BEST_ACKED_AGE)
        {
            self.best_acked.pop_front();
        }
        // A decrease starts from what the path delivers now: the
        // acknowledged rate over a short window.
        let delivered = self.last_arrival_us.and_then(|l| self.recent.rate(l));
        let rtt = self.rtt.unwrap_or(Duration::from_millis(100));
        let ceiling = self.cap(now).unwrap_or(Bitrate::MAX);
        // A decrease also drains the queue standing on the path, within
        // about a second, when that takes more than the usual back-off, so
        // repeated cycles do not stack up delay.
        let standing = Duration::from_micros(self.queue.queueing_us() as u64);
        let drain = 1.0 - (standing.as_secs_f64() / QUEUE_DRAIN.as_secs_f64()).min(MAX_DRAIN);
        self.control
            .update(usage, delivered.or(acked), drain, ceiling, rtt, now);
        // The delay-based part is kept within what the path has shown it
        // carries (the best of the last 30 s), not within the last second's
        // rate: a second in which the publishers sent little (a stalled
        // encoder, a still screen) says nothing of the path, and must not
        // cost the subscriber its layers. The estimate itself is still
        // bounded by the last second's rate (`estimate`).
        if !self.in_grace(now) {
            if let Some(bound) = self.validated(now) {
                self.control.limit_to(bound);
            }
        }
        self.usage = usage;
        let delay_congested = usage == Usage::Overuse;
        let queued = self.queue.queueing_us() > CONGESTED_QUEUE.as_micros() as i64;
        let estimate = self.control.estimate();
        self.loss.on_feedback(
            lost,
            received,
            delay_congested,
            queued,
            drain,
            acked,
            estimate,
            rtt,
            now,
        );
    }

    /// A queue past `QUEUE_OVERUSE` that grew by `QUEUE_GROWTH` since the
    /// reading before, which showed more than half of it. The trend
    /// catches a queue as it starts to grow, from the spacing of packet
    /// groups; when few packets arrive (a link far slower than what is
    /// sent: 8 groups a second at 80 kbit/s) its threshold, which adapts
    /// per update, climbs with it, and a queue of seconds could build
    /// before it said overuse. Two readings in a row keep a receiver's
    /// one-off stall (one late reading, then back down) from counting.
    fn queue_overuse(&self) -> bool {
        let (q, before) = (self.queue.queueing_us(), self.queue.previous_us());
        let limit = QUEUE_OVERUSE.as_micros() as i64;
        q > limit && before > limit / 2 && q >= before + QUEUE_GROWTH.as_micros() as i64
    }

    /// A probe cluster started: until it ends, delay growth is its own.
    pub fn on_probe_started(&mut self) {
        self.probe_guard = Some(None);
    }

    /// A probe cluster ended. `measured` is the rate it found deliverable;
    /// `reached` says whether that is the rate it probed for. A probe that
    /// reached its rate lifts the estimate above the cap for
    /// `probe_grace` (time for the allocator to use it); one that did not
    /// measured the path's capacity: the delay-based part moves to it.
    pub fn on_probe_ended(&mut self, measured: Option<Bitrate>, reached: bool, now: Instant) {
        self.probe_guard = Some(Some(now));
        let Some(rate) = measured else { return };
        self.control.on_probe(rate, now);
        if reached {
            self.loss.lift_to(rate);
            self.probe = Some((rate, now));
        } else {
            // The path saturated below the estimate: the estimate was
            // optimistic (it grew while the sender sent less). Bring it to
            // what the path carried, never below what it delivers now.
            let floor = self.acked_rate().unwrap_or(Bitrate::ZERO);
            self.control.limit_to(rate.max(floor));
        }
    }

    /// The sender is about to send a burst it knows of (the keyframe of a
    /// layer switch): until `until`, delay growth is blamed on it.
    pub fn on_burst(&mut self, until: Instant) {
        self.burst_guard = Some(self.burst_guard.map_or(until, |u| u.max(until)));
    }

    fn probe_guarded(&self, now: Instant) -> bool {
        // A probe or a keyframe adds at most a few tens of milliseconds of
        // queue; more than that stands on the path whatever they did.
        if self.queue.queueing_us() > PROBE_QUEUE_MAX.as_micros() as i64 {
            return false;
        }
        if self.burst_guard.is_some_and(|u| now < u) {
            return true;
        }
        match self.probe_guard {
            Some(None) => true,
            Some(Some(t)) => now.saturating_duration_since(t) < self.cfg.probe_settle,
            None => false,
        }
    }

    /// What the path delivered over the last `rate_window` (acknowledged).
    pub fn delivered(&mut self) -> Option<Bitrate> {
        self.acked_rate()
    }

    fn acked_rate(&mut self) -> Option<Bitrate> {
        let last = self.last_arrival_us?;
        self.acked.rate(last)
    }

    fn in_grace(&self, now: Instant) -> bool {
        self.probe
            .is_some_and(|(_, at)| now.saturating_duration_since(at) < self.cfg.probe_grace)
    }

    /// The bound from what was sent and acknowledged; `None` while less
    /// than a window has been sent (start-up).
    fn cap(&mut self, now: Instant) -> Option<Bitrate> {
        let t = self.local_us(now);
        if !self.sent.is_full(t) {
            return None;
        }
        let sent = self.sent.rate(t)?;
        let base = match self.acked_rate() {
            Some(a) => a.min(sent),
            None => sent,
        };
        // Never below the starting estimate: a leg that sends little (its
        // videos not flowing yet, or paused) would otherwise cap itself
        // under its smallest layer and could only come back through a
        // probe. Congestion still lowers the estimate below it, through
        // the delay- and loss-based parts.
        Some(base.scale(self.cfg.cap_factor).max(self.cfg.initial))
    }

    /// `cap_factor` times the best rate the path delivered over about the
    /// last 30 s; the last second's bound (`cap`) until that is known.
    fn validated(&mut self, now: Instant) -> Option<Bitrate> {
        let cap = self.cap(now)?;
        Some(match self.recent_best() {
            Some(best) => best.scale(self.cfg.cap_factor).max(cap),
            None => cap,
        })
    }

    /// What the path-based parts allow (delay and loss), bounded by what
    /// the path delivered lately (`cap_factor` times its best rate over
    /// about 30 s) but not by what was sent in the last second. The
    /// allocator keeps a subscriber's committed layers while they fit
    /// this: when the estimate falls only because less was sent (a
    /// publisher's encoder stalled for a moment), the path has not changed.
    pub fn sustained(&mut self, now: Instant) -> Bitrate {
        let mut e = self.path_estimate();
        if let Some(v) = self.validated(now) {
            e = e.min(v);
        }
        e.clamp(self.cfg.min, self.cfg.max)
    }

    /// The delay-based part under the loss bound, if one holds.
    fn path_estimate(&self) -> Bitrate {
        let e = self.control.estimate();
        self.loss.bound().map_or(e, |b| e.min(b))
    }

    /// The estimate at `now`.
    pub fn estimate(&mut self, now: Instant) -> Bitrate {
        self.check_feedback_timeout(now);
        if self.loss_stale(now) {
            self.loss.forget();
        }
        let mut e = self.path_estimate();
        if let Some(cap) = self.cap(now) {
            let cap = match self.probe {
                Some((p, _)) if self.in_grace(now) => cap.max(p),
                _ => cap,
            };
            e = e.min(cap);
        }
        e.clamp(self.cfg.min, self.cfg.max)
    }

    /// Whether the leg shows congestion now: overuse in the last second,
    /// loss well above the path's baseline, or an active loss bound. (A
    /// standing queue alone is not: after a route change the delay floor
    /// takes a while to follow.)
    pub fn is_congested(&self, now: Instant) -> bool {
        let recent_overuse = self
            .last_overuse
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1));
        let lossy = self.loss.excess() > super::loss::CONGESTED || self.loss.bound().is_some();
        recent_overuse || (lossy && !self.loss_stale(now))
    }

    /// Congestion that stands, as opposed to one overuse verdict: more than
    /// `CONGESTED_QUEUE` standing on the path, or loss above its baseline.
    pub fn standing_congestion(&self) -> bool {
        self.queue.queueing_us() > CONGESTED_QUEUE.as_micros() as i64
            || self.loss.excess() > super::loss::CONGESTED
            || self.loss.bound().is_some()
    }

    /// More than `BACKLOG` stands on the path: far more than a burst or
    /// a probe leaves, and more delay than a conversation bears.
    /// The reading counts while current: with nothing sent, or nothing of
    /// it acknowledged, no feedback refreshes it, and a paused leg must
    /// still be probed.
    pub fn backlogged(&self, now: Instant) -> bool {
        self.queue.queueing_us() > BACKLOG.as_micros() as i64
            && self
                .queue_read_at
                .is_some_and(|t| now.saturating_duration_since(t) < QUEUE_READING_AGE)
    }

    /// No loss interval closed for `LOSS_MEMORY`: what the loss part
    /// learnt is stale. The leg went quiet, or sends only a trickle (the
    /// retransmissions a subscriber still asks for while its one video is
    /// paused), too few packets to measure loss again. Kept, the old loss
    /// would hold the leg congested for good: no probe would be sent to
    /// find out that the path recovered.
    fn loss_stale(&self, now: Instant) -> bool {
        self.loss.stale(LOSS_MEMORY, now)
    }

    /// The rate the path delivered at the last overuse events.
    pub fn link_capacity(&self) -> Option<Bitrate> {
        self.control.link_capacity()
    }

    /// The highest rate the path delivered over about the last 30 s.
    pub fn recent_best(&self) -> Option<Bitrate> {
        self.best_acked.front().map(|&(_, r)| r)
    }

    /// The loss the path shows without congestion.
    pub fn loss_baseline(&self) -> f64 {
        self.loss.baseline()
    }

    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    pub fn state(&mut self, now: Instant) -> EstimatorState {
        let t = self.local_us(now);
        EstimatorState {
            estimate: self.estimate(now),
            delay_based: self.control.estimate(),
            loss_bound: self.loss.bound(),
            cap: self.cap(now),
            sent: self.sent.rate(t),
            acked: self.acked_rate(),
            usage: self.usage,
            loss: self.loss.loss(),
            loss_excess: self.loss.excess(),
            loss_baseline: self.loss.baseline(),
            link_capacity: self.control.link_capacity(),
            trend: self.trend.modified_trend(),
            threshold_ms: self.trend.threshold_ms(),
            queueing: Duration::from_micros(self.queue.queueing_us() as u64),
            rtt: self.rtt,
        }
    }

    /// The rate sent over the last window (`None` at start-up).
    pub fn sent_rate(&mut self, now: Instant) -> Option<Bitrate> {
        let t = self.local_us(now);
        self.sent.rate(t)
    }

    /// Feedback stopped while packets kept going out: the reverse path or
    /// the receiver is gone, or the forward path is so congested that
    /// nothing arrives. Halve the estimate once per timeout.
    fn check_feedback_timeout(&mut self, now: Instant) {
        let (Some(fb), Some(sent)) = (self.last_feedback, self.last_sent) else {
            return;
        };
        if sent > fb && now.saturating_duration_since(fb) >= self.cfg.feedback_timeout {
            let halved = self.control.estimate().scale(0.5);
            self.control.limit_to(halved);
            self.last_feedback = Some(now);
        }
    }
}

#[cfg(test)]
mod tests;
