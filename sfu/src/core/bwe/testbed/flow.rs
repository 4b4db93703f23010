//! One flow of the test bed: an SFU leg (sources, allocator, pacer,
//! estimator, prober) sending to one receiver that answers with
//! transport-cc feedback, wired as the shard will wire them.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::source::{MediaPacket, Source, SourceKind};
use crate::core::bwe::allocator::{
    AllocationEvent, Allocator, AllocatorConfig, Layer, LayerRate, Signal, Target, TrackInput,
    TrackKind,
};
use crate::core::bwe::feedback::TransportFeedback;
use crate::core::bwe::history::PacketKind;
use crate::core::bwe::leg::{LegBwe, LegConfig};
use crate::core::bwe::pacer::{Pacer, PacerConfig, PacketMeta, Priority};
use crate::core::bwe::prober::ProbeOutcome;
use crate::core::bwe::Bitrate;
use crate::core::ids::TrackNo;

const ALLOCATE_EVERY: Duration = Duration::from_millis(100);

/// What a flow sends.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum MediaSpec {
    /// Simulcast cameras (layer rates in kbit/s) and audio tracks of 40 kbit/s.
    Layered {
        cameras: Vec<Vec<u64>>,
        audio: usize,
    },
    /// One video whose rate follows the estimate, plus one audio track.
    Elastic { min_kbps: u64, max_kbps: u64 },
    /// Cross traffic at a constant rate that ignores the estimate.
    Cbr { kbps: u64 },
}

#[derive(Clone, Debug)]
pub(crate) struct FlowSpec {
    pub media: MediaSpec,
    pub start: Duration,
    pub stop: Option<Duration>,
    /// The video pauses (the publisher stops sending) between these times.
    pub pause: Option<(Duration, Duration)>,
    /// Link indices the media crosses, in order; and the feedback.
    pub media_path: Vec<usize>,
    pub feedback_path: Vec<usize>,
    pub feedback_interval: Duration,
    pub leg: LegConfig,
    pub seed: u64,
}

impl FlowSpec {
    pub(crate) fn new(media: MediaSpec, media_path: Vec<usize>, feedback_path: Vec<usize>) -> Self {
        FlowSpec {
            media,
            start: Duration::ZERO,
            stop: None,
            pause: None,
            media_path,
            feedback_path,
            feedback_interval: Duration::from_millis(50),
            leg: LegConfig::default(),
            seed: 1,
        }
    }
}

/// The receiving end: records arrivals, reports them periodically.
#[derive(Debug)]
pub(crate) struct Receiver {
    highest: Option<u64>,
    next_base: Option<u64>,
    arrivals: HashMap<u64, i64>,
    pub next_feedback: Instant,
    interval: Duration,
    count: u8,
    t0: Instant,
    pub delivered: RateLog,
}

impl Receiver {
    fn new(t0: Instant, interval: Duration) -> Self {
        Receiver {
            highest: None,
            next_base: None,
            arrivals: HashMap::new(),
            next_feedback: t0 + interval,
            interval,
            count: 0,
            t0,
            delivered: RateLog::default(),
        }
    }

    pub(crate) fn on_media(&mut self, seq: u16, size: usize, at: Instant) {
        let ext = match self.highest {
            None => seq as u64 + (1 << 20),
            Some(h) => {
                let d = seq.wrapping_sub(h as u16) as i16 as i64;
                (h as i64 + d) as u64
            }
        };
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.next_base.get_or_insert(ext);
        // The receiver's clock runs from an arbitrary origin.
        let us = (at - self.t0).as_micros() as i64 + 7_000_000;
        self.arrivals.insert(ext, us);
        self.delivered.push(at, size);
    }

    /// The feedback due at `now`, if any.
    pub(crate) fn poll_feedback(&mut self, now: Instant) -> Option<TransportFeedback> {
        if now < self.next_feedback {
            return None;
        }
        while self.next_feedback <= now {
            self.next_feedback += self.interval;
        }
        let (base, highest) = (self.next_base?, self.highest?);
        if highest < base {
            return None;
        }
        let statuses: Vec<Option<i64>> =
            (base..=highest).map(|s| self.arrivals.remove(&s)).collect();
        self.next_base = Some(highest + 1);
        self.count = self.count.wrapping_add(1);
        Some(TransportFeedback::from_arrivals(
            base as u16,
            self.count,
            &statuses,
        ))
    }
}

/// Bytes over a trailing window, measured by the bed itself.
#[derive(Debug, Default)]
pub(crate) struct RateLog {
    log: VecDeque<(Instant, usize)>,
    bytes: usize,
}

impl RateLog {
    pub(crate) fn push(&mut self, at: Instant, size: usize) {
        self.log.push_back((at, size));
        self.bytes += size;
    }

    /// The rate over the `window` before `now`.
    pub(crate) fn rate(&mut self, now: Instant, window: Duration) -> Bitrate {
        while let Some(&(t, s)) = self.log.front() {
            if now.saturating_duration_since(t) < window {
                break;
            }
            self.log.pop_front();
            self.bytes -= s;
        }
        Bitrate::from_bytes(self.bytes as u64, window)
    }
}

/// What left the sender, for the bed to route.
pub(crate) enum Out {
    Media { seq: u16, size: usize },
}

pub(crate) struct Flow {
    pub spec: FlowSpec,
    pub leg: LegBwe,
    pub pacer: Pacer<MediaPacket>,
    pub allocator: Allocator,
    pub sources: Vec<Source>,
    pub receiver: Receiver,
    next_allocation: Instant,
    probe_success: Option<Bitrate>,
    pub sent: RateLog,
    pub events: Vec<(Instant, AllocationEvent)>,
    pub probes: Vec<(Instant, Option<ProbeOutcome>, Instant)>,
    pub last_targets: Vec<Target>,
    started: bool,
    stopped: bool,
    t0: Instant,
    scratch: Vec<MediaPacket>,
}

impl Flow {
    pub(crate) fn new(spec: FlowSpec, t0: Instant) -> Self {
        let start = t0 + spec.start;
        let mut sources = Vec::new();
        let mut stream = 1u32;
        let mut add = |kind: SourceKind, sources: &mut Vec<Source>| {
            sources.push(Source::new(
                kind,
                stream,
                start,
                spec.seed * 100 + stream as u64,
            ));
            stream += 1;
        };
        match &spec.media {
            MediaSpec::Layered { cameras, audio } => {
                for layers in cameras {
                    let layers = layers.iter().map(|k| Bitrate::kbps(*k)).collect();
                    add(SourceKind::Simulcast { layers }, &mut sources);
                }
                for _ in 0..*audio {
                    add(
                        SourceKind::Audio {
                            bitrate: Bitrate::kbps(40),
                        },
                        &mut sources,
                    );
                }
            }
            MediaSpec::Elastic { min_kbps, max_kbps } => {
                add(
                    SourceKind::Elastic {
                        min: Bitrate::kbps(*min_kbps),
                        max: Bitrate::kbps(*max_kbps),
                    },
                    &mut sources,
                );
                add(
                    SourceKind::Audio {
                        bitrate: Bitrate::kbps(40),
                    },
                    &mut sources,
                );
            }
            MediaSpec::Cbr { kbps } => {
                let rate = Bitrate::kbps(*kbps);
                add(
                    SourceKind::Elastic {
                        min: rate,
                        max: rate,
                    },
                    &mut sources,
                );
            }
        }
        let initial = spec.leg.estimator.initial;
        Flow {
            leg: LegBwe::new(spec.leg.clone(), (spec.seed as u16).wrapping_mul(977)),
            pacer: Pacer::new(PacerConfig::default(), initial),
            allocator: Allocator::new(AllocatorConfig::default()),
            receiver: Receiver::new(t0, spec.feedback_interval),
            next_allocation: start,
            probe_success: None,
            sent: RateLog::default(),
            events: Vec::new(),
            probes: Vec::new(),
            last_targets: Vec::new(),
            started: false,
            stopped: false,
            sources,
            spec,
            t0,
            scratch: Vec::new(),
        }
    }

    fn active(&self, now: Instant) -> bool {
        now >= self.t0 + self.spec.start && self.spec.stop.is_none_or(|s| now < self.t0 + s)
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if self.stopped {
            return Some(self.receiver.next_feedback);
        }
        let mut d = [
            Some(self.receiver.next_feedback),
            self.pacer.next_deadline(),
            self.leg.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        if self
            .spec
            .stop
            .is_none_or(|s| self.next_allocation < self.t0 + s)
        {
            d = Some(d.map_or(self.next_allocation, |x| x.min(self.next_allocation)));
            for s in &self.sources {
                d = Some(d.map_or(s.next_deadline(), |x| x.min(s.next_deadline())));
            }
        }
        d
    }

    /// Feedback from the receiver reached the sender.
    pub(crate) fn on_feedback(&mut self, fb: &TransportFeedback, now: Instant) {
        if let Some(o) = self.leg.on_feedback(fb, now) {
            self.record_outcome(o, now);
        }
    }

    fn record_outcome(&mut self, o: ProbeOutcome, now: Instant) {
        if let Some(p) = self.probes.iter_mut().rev().find(|p| p.1.is_none()) {
            p.1 = Some(o);
            p.2 = now;
        }
        if o.is_success() {
            self.probe_success = o.measured;
            self.next_allocation = now;
        }
    }

    /// Does everything due at `now`; returns packets to put on the path.
    pub(crate) fn step(&mut self, now: Instant, out: &mut Vec<Out>) {
        if !self.active(now) {
            // A stopped sender is gone: nothing more leaves it.
            self.stopped = self.started;
            return;
        }
        if !self.started {
            self.started = true;
        }
        if let Some((from, to)) = self.spec.pause {
            let paused = now >= self.t0 + from && now < self.t0 + to;
            for s in self
                .sources
                .iter_mut()
                .filter(|s| !matches!(s.kind, SourceKind::Audio { .. }))
            {
                s.paused = paused;
            }
        }
        if now >= self.next_allocation {
            self.allocate(now);
            self.next_allocation = now + ALLOCATE_EVERY;
        }
        let mut pkts = std::mem::take(&mut self.scratch);
        for s in &mut self.sources {
            if s.next_deadline() <= now {
                s.poll(now, &mut pkts);
            }
        }
        for p in pkts.drain(..) {
            let priority = if p.kind == PacketKind::Audio {
                Priority::Audio
            } else {
                Priority::Video
            };
            let meta = PacketMeta {
                size: p.size,
                priority,
                stream: p.stream,
                frame: p.frame,
            };
            self.pacer.push(p, meta, now);
        }
        self.scratch = pkts;
        while self.pacer.pop_dropped().is_some() {}
        while let Some(p) = self.pacer.poll(now) {
            let seq = self.leg.on_packet_sent(p.meta.size, p.item.kind, None, now);
            self.sent.push(now, p.meta.size);
            out.push(Out::Media {
                seq: seq.wire(),
                size: p.meta.size,
            });
        }
        while let Some(pkt) = self.leg.poll_probe(now) {
            let seq =
                self.leg
                    .on_packet_sent(pkt.size, PacketKind::Padding, Some(pkt.cluster), now);
            self.sent.push(now, pkt.size);
            out.push(Out::Media {
                seq: seq.wire(),
                size: pkt.size,
            });
        }
        if let Some(o) = self.leg.poll_outcome(now) {
            self.record_outcome(o, now);
        }
    }

    fn allocate(&mut self, now: Instant) {
        let estimate = self.leg.estimate(now);
        self.pacer.set_estimate(estimate);
        let congested = self.leg.is_congested(now);
        let probe_target = match self.spec.media {
            MediaSpec::Cbr { kbps } => {
                for s in &mut self.sources {
                    s.set_rate(Bitrate::kbps(kbps));
                }
                None
            }
            MediaSpec::Elastic { max_kbps, .. } => {
                for s in &mut self.sources {
                    s.set_rate(estimate - Bitrate::kbps(40));
                }
                // A paused encoder wants nothing more.
                let paused = self.sources.iter().any(|s| s.paused);
                (!paused).then_some((Bitrate::kbps(max_kbps), Bitrate::kbps(max_kbps)))
            }
            MediaSpec::Layered { .. } => {
                let inputs = self.inputs();
                let signal = Signal {
                    congested,
                    probe_success: self.probe_success.take(),
                    delivered: self.leg.recent_best(),
                    standing: self.leg.standing_congestion(),
                    sustained: Some(self.leg.sustained(now)),
                    carried: self.leg.delivered(),
                    backlog: self.leg.backlogged(now),
                };
                let a = self.allocator.allocate(&inputs, estimate, signal, now);
                self.events.extend(a.events.iter().map(|e| (now, *e)));
                // A move up sends a keyframe once the switch happens: the
                // shard tells the estimator, as here.
                let up = a.events.iter().any(|e| match e {
                    AllocationEvent::LayerChanged { from, to, .. } => to > from,
                    AllocationEvent::Resumed { .. } => true,
                    AllocationEvent::Paused { .. } => false,
                });
                if up {
                    self.leg.on_layer_switch(now + super::source::SWITCH_DELAY);
                }
                self.last_targets = a.tracks.iter().map(|t| t.target).collect();
                for (s, t) in self.sources.iter_mut().zip(&a.tracks) {
                    if let SourceKind::Simulcast { .. } = s.kind {
                        let layer = match t.target {
                            Target::Layer(l) => Some(l.spatial as usize),
                            _ => None,
                        };
                        s.set_layer(layer, now);
                    }
                }
                a.probe_target.zip(a.probe_goal)
            }
        };
        if let Some((target, goal)) = probe_target {
            if self.leg.request_probe(target, goal, now).is_ok() {
                self.probes.push((now, None, now));
            }
        }
    }

    fn inputs(&self) -> Vec<TrackInput> {
        self.sources
            .iter()
            .map(|s| TrackInput {
                track: TrackNo(s.stream as u64),
                kind: match &s.kind {
                    SourceKind::Audio { bitrate } => TrackKind::Audio { bitrate: *bitrate },
                    SourceKind::Simulcast { layers } => TrackKind::Video {
                        layers: layers
                            .iter()
                            .enumerate()
                            .map(|(i, b)| LayerRate {
                                layer: Layer::new(i as u8, 0),
                                bitrate: *b,
                                available: true,
                            })
                            .collect(),
                    },
                    SourceKind::Elastic { .. } => TrackKind::Video { layers: Vec::new() },
                },
                screen_share: false,
                active_speaker: false,
                visible: true,
                paused_by_subscriber: false,
                max_layer: None,
            })
            .collect()
    }

    /// Simulcast videos whose committed target is their top layer.
    pub(crate) fn videos_at_top(&self) -> usize {
        self.sources
            .iter()
            .zip(&self.last_targets)
            .filter(|(s, t)| match (&s.kind, t) {
                (SourceKind::Simulcast { layers }, Target::Layer(l)) => {
                    l.spatial as usize + 1 == layers.len()
                }
                _ => false,
            })
            .count()
    }

    /// Layer switches and pauses the allocator decided.
    pub(crate) fn switches_between(&self, from: Instant, to: Instant) -> usize {
        self.events
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .count()
    }

    /// Whether `at` is inside a probe, or within `grace` after one that
    /// succeeded (when the estimate may stand above the cap).
    pub(crate) fn near_probe(&self, at: Instant, grace: Duration) -> bool {
        self.probes.iter().any(|(start, outcome, end)| {
            let end = match outcome {
                Some(o) if o.is_success() => *end + grace,
                Some(_) => *end,
                None => *start + Duration::from_secs(2),
            };
            at >= *start && at <= end
        })
    }
}
