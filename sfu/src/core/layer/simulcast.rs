//! Simulcast: several streams of one track (one per encoding), of which
//! the subscriber gets one, switched only at a keyframe of the new one.

use super::{Layer, LayerPacket, Temporal, Verdict};

#[derive(Clone, Debug)]
pub struct Simulcast {
    target: Option<Layer>,
    /// The stream forwarded now.
    current: Option<u8>,
    temporal: Temporal,
}

impl Simulcast {
    /// A selector aiming at `target` (a plain track is stream 0).
    pub fn new(target: Option<Layer>) -> Self {
        Simulcast {
            target,
            current: None,
            temporal: Temporal {
                current: target.map_or(0, |t| t.temporal),
            },
        }
    }

    pub fn set_target(&mut self, target: Option<Layer>) -> Option<u8> {
        self.target = target;
        match target {
            None => {
                self.current = None;
                None
            }
            Some(t) if self.current != Some(t.spatial) => Some(t.spatial),
            Some(_) => None,
        }
    }

    pub fn target(&self) -> Option<Layer> {
        self.target
    }

    pub fn current(&self) -> Option<Layer> {
        self.current.map(|s| Layer::new(s, self.temporal.current))
    }

    pub fn on_packet(&mut self, p: &LayerPacket) -> Verdict {
        let Some(target) = self.target else {
            return Verdict::Paused;
        };
        if self.current == Some(p.stream) {
            return if self.temporal.admit(p.info, target.temporal) {
                Verdict::Forward {
                    switched: false,
                    marker: p.marker,
                }
            } else {
                Verdict::Filtered
            };
        }
        if p.stream != target.spatial {
            return Verdict::OtherStream;
        }
        if p.info.keyframe && !p.retransmission {
            self.current = Some(p.stream);
            // A keyframe starts every temporal layer afresh.
            self.temporal.current = target.temporal;
            return Verdict::Forward {
                switched: true,
                marker: p.marker,
            };
        }
        // The current stream (if any) goes on until this one's keyframe.
        Verdict::WaitingKeyframe(p.stream)
    }
}
