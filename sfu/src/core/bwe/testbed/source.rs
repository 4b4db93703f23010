//! Media sources of the test bed: what a publisher sends and the SFU
//! forwards to one subscriber.
//!
//! - audio: one packet every 20 ms;
//! - simulcast video: 30 frames a second of the layer the allocator chose
//!   (a switch takes effect `SWITCH_DELAY` later, the time a keyframe
//!   request takes to produce a keyframe on the new layer, and starts with
//!   a keyframe);
//! - elastic video: 30 frames a second at a rate that follows the
//!   estimate, as an encoder of a sender running congestion control does
//!   (the sources RFC 8867 assumes).
//!
//! Frame sizes vary by +-20% around the rate; keyframes are three times
//! the average frame.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::core::bwe::history::PacketKind;
use crate::core::bwe::Bitrate;

pub(crate) const FRAME_INTERVAL: Duration = Duration::from_micros(33_333);
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
pub(crate) const SWITCH_DELAY: Duration = Duration::from_millis(200);
const MAX_PACKET: usize = 1200;
const KEYFRAME_FACTOR: f64 = 3.0;
const FRAME_JITTER: f64 = 0.2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MediaPacket {
    pub size: usize,
    pub kind: PacketKind,
    pub stream: u32,
    pub frame: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SourceKind {
    Audio { bitrate: Bitrate },
    Simulcast { layers: Vec<Bitrate> },
    Elastic { min: Bitrate, max: Bitrate },
}

#[derive(Debug)]
pub(crate) struct Source {
    pub kind: SourceKind,
    pub stream: u32,
    next_frame: Instant,
    frame_no: u32,
    /// Simulcast: the layer sent now and a switch waiting for its keyframe.
    current: Option<usize>,
    pending: Option<(Option<usize>, Instant)>,
    /// Elastic: the encoder's target.
    rate: Bitrate,
    keyframe: bool,
    /// The publisher is paused (RFC 8867 pause and resume).
    pub paused: bool,
    rng: StdRng,
    /// Layer switches that took effect.
    pub switches: u32,
}

impl Source {
    pub(crate) fn new(kind: SourceKind, stream: u32, start: Instant, seed: u64) -> Self {
        let rate = match &kind {
            SourceKind::Elastic { min, .. } => *min,
            _ => Bitrate::ZERO,
        };
        Source {
            kind,
            stream,
            next_frame: start,
            frame_no: 0,
            current: None,
            pending: None,
            rate,
            keyframe: true,
            paused: false,
            rng: StdRng::seed_from_u64(seed),
            switches: 0,
        }
    }

    /// Simulcast: the allocator's target layer (`None`: paused).
    pub(crate) fn set_layer(&mut self, layer: Option<usize>, now: Instant) {
        let wanted_now = self.pending.map_or(self.current, |(l, _)| l);
        if wanted_now != layer {
            self.pending = Some((layer, now + SWITCH_DELAY));
        }
    }

    /// The layer whose frames are sent now.
    pub(crate) fn current_layer(&self) -> Option<usize> {
        self.current
    }

    /// Elastic: the encoder's target rate.
    pub(crate) fn set_rate(&mut self, rate: Bitrate) {
        if let SourceKind::Elastic { min, max } = self.kind {
            self.rate = rate.clamp(min, max);
        }
    }

    pub(crate) fn next_deadline(&self) -> Instant {
        match self.pending {
            Some((_, at)) => at.min(self.next_frame),
            None => self.next_frame,
        }
    }

    /// Emits the packets of every frame due by `now`.
    pub(crate) fn poll(&mut self, now: Instant, out: &mut Vec<MediaPacket>) {
        if let Some((layer, at)) = self.pending {
            if now >= at {
                if layer.is_some() && self.current.is_some() {
                    self.switches += 1;
                }
                self.current = layer;
                self.pending = None;
                self.keyframe = true;
            }
        }
        while self.next_frame <= now {
            self.next_frame += match self.kind {
                SourceKind::Audio { .. } => AUDIO_INTERVAL,
                _ => FRAME_INTERVAL,
            };
            self.frame_no = self.frame_no.wrapping_add(1);
            if self.paused {
                continue;
            }
            self.emit(out);
        }
    }

    fn emit(&mut self, out: &mut Vec<MediaPacket>) {
        let (rate, kind, interval) = match &self.kind {
            SourceKind::Audio { bitrate } => (*bitrate, PacketKind::Audio, AUDIO_INTERVAL),
            SourceKind::Simulcast { layers } => match self.current {
                Some(l) => (layers[l], PacketKind::Video, FRAME_INTERVAL),
                None => return,
            },
            SourceKind::Elastic { .. } => (self.rate, PacketKind::Video, FRAME_INTERVAL),
        };
        let mean = rate.bytes_in(interval);
        let mut size = if kind == PacketKind::Audio {
            mean
        } else {
            mean * (1.0 + FRAME_JITTER * (2.0 * self.rng.random::<f64>() - 1.0))
        };
        if kind == PacketKind::Video && self.keyframe {
            size *= KEYFRAME_FACTOR;
            self.keyframe = false;
        }
        let size = (size.round() as usize).max(50);
        let packets = size.div_ceil(MAX_PACKET);
        for i in 0..packets {
            let part = size / packets + usize::from(i < size % packets);
            out.push(MediaPacket {
                size: part,
                kind,
                stream: self.stream,
                frame: self.frame_no,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &mut Source, t0: Instant, secs: u64) -> Vec<MediaPacket> {
        let mut out = Vec::new();
        let end = t0 + Duration::from_secs(secs);
        while src.next_deadline() < end {
            let t = src.next_deadline();
            src.poll(t, &mut out);
        }
        out
    }

    #[test]
    fn a_simulcast_layer_sends_about_its_rate_after_the_switch_delay() {
        let t0 = Instant::now();
        let mut s = Source::new(
            SourceKind::Simulcast {
                layers: vec![Bitrate::kbps(150), Bitrate::kbps(500)],
            },
            1,
            t0,
            3,
        );
        s.set_layer(Some(1), t0);
        let out = run(&mut s, t0, 20);
        let bytes: usize = out.iter().map(|p| p.size).sum();
        let kbps = bytes as f64 * 8.0 / 20.0 / 1000.0;
        assert!((kbps - 495.0).abs() < 20.0, "{kbps}");
        assert!(out.iter().all(|p| p.size <= MAX_PACKET));
        assert_eq!(s.current_layer(), Some(1));
    }

    #[test]
    fn audio_is_one_packet_every_20_ms() {
        let t0 = Instant::now();
        let mut s = Source::new(
            SourceKind::Audio {
                bitrate: Bitrate::kbps(40),
            },
            2,
            t0,
            1,
        );
        let out = run(&mut s, t0, 1);
        assert_eq!(out.len(), 50);
        assert!(out
            .iter()
            .all(|p| p.size == 100 && p.kind == PacketKind::Audio));
    }
}
