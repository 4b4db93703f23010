//! The test bed: flows over simulated links in fake time.
//!
//! Links are numbered; each flow names the links its media crosses and
//! those its feedback crosses (a shared bottleneck is a link several flows
//! name). The bed runs an event loop: it jumps to the earliest deadline of
//! any flow, link or scheduled change, routes what arrived, lets each flow
//! act, and samples every flow every 100 ms.

use std::time::{Duration, Instant};

use super::feedback::TransportFeedback;
use super::sim::{Link, LinkConfig, Loss};
use super::Bitrate;

pub(crate) mod flow;
pub(crate) mod source;

use flow::{Flow, FlowSpec, Out};

pub(crate) use flow::MediaSpec;

const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// A change to a link at a scheduled time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Change {
    Rate(usize, Option<Bitrate>),
    Delay(usize, Duration),
    Loss(usize, Loss),
}

enum Body {
    Media { seq: u16, size: usize },
    Feedback(TransportFeedback),
}

struct Packet {
    flow: usize,
    hop: usize,
    body: Body,
}

/// One flow's state every 100 ms.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub t: Duration,
    pub estimate: Bitrate,
    /// Sent over the last second (media, padding, probes), measured by the bed.
    pub sent: Bitrate,
    /// Received over the last second.
    pub delivered: Bitrate,
    /// Bytes waiting in the flow's first link.
    pub queued: usize,
    /// Inside a probe or its grace period.
    pub probing: bool,
    pub congested: bool,
    pub state: super::estimator::EstimatorState,
    /// Simulcast videos whose committed target is their top layer.
    pub at_top: usize,
}

pub(crate) struct Bed {
    pub t0: Instant,
    now: Instant,
    links: Vec<Link<Packet>>,
    pub flows: Vec<Flow>,
    changes: Vec<(Instant, Change)>,
    samples: Vec<Vec<Sample>>,
    next_sample: Instant,
}

impl Bed {
    pub(crate) fn new(links: Vec<LinkConfig>, flows: Vec<FlowSpec>) -> Self {
        let t0 = Instant::now();
        let n = flows.len();
        Bed {
            t0,
            now: t0,
            links: links.into_iter().map(Link::new).collect(),
            flows: flows.into_iter().map(|f| Flow::new(f, t0)).collect(),
            changes: Vec::new(),
            samples: vec![Vec::new(); n],
            next_sample: t0,
        }
    }

    /// Schedules a change of a link at `at` after the start.
    pub(crate) fn at(&mut self, at: Duration, change: Change) -> &mut Self {
        self.changes.push((self.t0 + at, change));
        self.changes.sort_by_key(|(t, _)| *t);
        self
    }

    pub(crate) fn samples(&self, flow: usize) -> &[Sample] {
        &self.samples[flow]
    }

    pub(crate) fn time(&self, at: Duration) -> Instant {
        self.t0 + at
    }

    /// Runs until `until` after the start.
    pub(crate) fn run(&mut self, until: Duration) {
        let end = self.t0 + until;
        let mut out = Vec::new();
        while self.now < end {
            let next = self.next_deadline().min(end);
            // Always move on, even when something is overdue.
            self.now = next.max(self.now + Duration::from_micros(10));
            let now = self.now;
            while self.changes.first().is_some_and(|(t, _)| *t <= now) {
                let (_, c) = self.changes.remove(0);
                self.apply(c, now);
            }
            for i in 0..self.links.len() {
                while let Some((at, p)) = self.links[i].poll(now) {
                    self.route(p, at);
                }
            }
            for f in 0..self.flows.len() {
                if let Some(fb) = self.flows[f].receiver.poll_feedback(now) {
                    let size = 20 + 2 * fb.packets.len();
                    self.send(f, 0, Body::Feedback(fb), size, now);
                }
                out.clear();
                self.flows[f].step(now, &mut out);
                for o in out.drain(..) {
                    let Out::Media { seq, size } = o;
                    self.send(f, 0, Body::Media { seq, size }, size, now);
                }
            }
            if now >= self.next_sample {
                self.sample(now);
                self.next_sample += SAMPLE_EVERY;
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let mut d = self.next_sample;
        for l in &self.links {
            if let Some(x) = l.next_deadline() {
                d = d.min(x);
            }
        }
        for f in &self.flows {
            if let Some(x) = f.next_deadline() {
                d = d.min(x);
            }
        }
        if let Some((t, _)) = self.changes.first() {
            d = d.min(*t);
        }
        d
    }

    fn apply(&mut self, c: Change, now: Instant) {
        match c {
            Change::Rate(l, r) => self.links[l].set_rate(r, now),
            Change::Delay(l, d) => self.links[l].set_delay(d, now),
            Change::Loss(l, loss) => self.links[l].set_loss(loss, now),
        }
    }

    fn path(&self, flow: usize, body: &Body) -> &[usize] {
        match body {
            Body::Media { .. } => &self.flows[flow].spec.media_path,
            Body::Feedback(_) => &self.flows[flow].spec.feedback_path,
        }
    }

    fn send(&mut self, flow: usize, hop: usize, body: Body, size: usize, now: Instant) {
        let Some(&link) = self.path(flow, &body).get(hop) else {
            self.deliver(flow, body, now);
            return;
        };
        self.links[link].send(Packet { flow, hop, body }, size, now);
    }

    fn route(&mut self, p: Packet, at: Instant) {
        let size = match &p.body {
            Body::Media { size, .. } => *size,
            Body::Feedback(fb) => 20 + 2 * fb.packets.len(),
        };
        self.send(p.flow, p.hop + 1, p.body, size, at);
    }

    fn deliver(&mut self, flow: usize, body: Body, at: Instant) {
        let f = &mut self.flows[flow];
        match body {
            Body::Media { seq, size } => f.receiver.on_media(seq, size, at),
            Body::Feedback(fb) => f.on_feedback(&fb, at),
        }
    }

    fn sample(&mut self, now: Instant) {
        for (i, f) in self.flows.iter_mut().enumerate() {
            let first = f.spec.media_path.first().copied();
            let grace = f.spec.leg.estimator.probe_grace;
            let s = Sample {
                t: now - self.t0,
                estimate: f.leg.estimate(now),
                sent: f.sent.rate(now, RATE_WINDOW),
                delivered: f.receiver.delivered.rate(now, RATE_WINDOW),
                queued: first.map_or(0, |l| self.links[l].queued_bytes()),
                probing: f.near_probe(now, grace),
                congested: f.leg.is_congested(now),
                state: f.leg.state(now),
                at_top: f.videos_at_top(),
            };
            self.samples[i].push(s);
        }
    }

    pub(crate) fn link_stats(&self, link: usize) -> super::sim::LinkStats {
        self.links[link].stats()
    }
}

/// Mean of a rate over samples.
pub(crate) fn mean<'a>(
    it: impl Iterator<Item = &'a Sample>,
    f: impl Fn(&Sample) -> Bitrate,
) -> Bitrate {
    let (sum, n) = it.fold((0.0, 0u32), |(s, n), x| (s + f(x).as_f64(), n + 1));
    if n == 0 {
        Bitrate::ZERO
    } else {
        Bitrate::from_f64(sum / n as f64)
    }
}

/// The first time from which `ok` holds for every sample up to `to`.
pub(crate) fn settled_from(
    samples: &[Sample],
    to: Duration,
    ok: impl Fn(&Sample) -> bool,
) -> Option<Duration> {
    let mut since = None;
    for s in samples.iter().filter(|s| s.t < to) {
        match (ok(s), since) {
            (true, None) => since = Some(s.t),
            (false, _) => since = None,
            _ => {}
        }
    }
    since
}

/// A text trace of a flow (for failure messages and the docs).
pub(crate) fn describe(
    samples: &[Sample],
    from: Duration,
    to: Duration,
    every: Duration,
) -> String {
    let mut out = String::new();
    let mut next = from;
    for s in samples.iter().filter(|s| s.t >= from && s.t < to) {
        if s.t >= next {
            out.push_str(&format!(
                "t={:5.1}s est={:6.0}k dly={:6.0}k sent={:6.0}k recv={:6.0}k q={:6}B/{:3}ms {:?} thr={:.0} loss={:.3}/{:.3} {}{}\n",
                s.t.as_secs_f64(),
                s.estimate.as_f64() / 1e3,
                s.state.delay_based.as_f64() / 1e3,
                s.sent.as_f64() / 1e3,
                s.delivered.as_f64() / 1e3,
                s.queued,
                s.state.queueing.as_millis(),
                s.state.usage,
                s.state.threshold_ms,
                s.state.loss,
                s.state.loss_baseline,
                if s.probing { "probe " } else { "" },
                if s.congested { "congested" } else { "" }
            ));
            next += every;
        }
    }
    out
}
