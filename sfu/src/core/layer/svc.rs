//! SVC: one stream whose pictures carry several spatial layers (VP9 with
//! its payload descriptor, AV1 with the dependency descriptor). Higher
//! spatial layers are dropped at once at a picture boundary; moving up
//! waits for a keyframe, since in the modes browsers use (`L3T3_KEY`) a
//! spatial layer's later frames refer to its own earlier ones.

use super::{Layer, LayerPacket, Temporal, Verdict};

#[derive(Clone, Debug)]
pub struct Svc {
    target: Option<Layer>,
    /// The highest spatial layer forwarded now.
    current: Option<u8>,
    temporal: Temporal,
}

impl Svc {
    pub fn new(target: Option<Layer>) -> Self {
        Svc {
            target,
            current: None,
            temporal: Temporal {
                current: target.map_or(0, |t| t.temporal),
            },
        }
    }

    pub fn set_target(&mut self, target: Option<Layer>) -> Option<u8> {
        self.target = target;
        match (target, self.current) {
            (None, _) => {
                self.current = None;
                None
            }
            (Some(_), None) => Some(0),
            (Some(t), Some(c)) if t.spatial > c => Some(0),
            _ => None,
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
        let info = p.info;
        let at_key = info.keyframe && !p.retransmission;
        let mut switched = false;
        match self.current {
            None if at_key => {
                self.current = Some(target.spatial);
                self.temporal.current = target.temporal;
                switched = true;
            }
            None => return Verdict::WaitingKeyframe(0),
            Some(c) if info.picture_start => {
                if target.spatial < c {
                    self.current = Some(target.spatial);
                } else if target.spatial > c && at_key {
                    self.current = Some(target.spatial);
                    self.temporal.current = target.temporal;
                }
            }
            Some(_) => {}
        }
        let Some(cur) = self.current else {
            return Verdict::WaitingKeyframe(0);
        };
        if info.spatial > cur {
            // Left out; while a move up waits for a keyframe, each packet
            // of the wanted layer is a reminder to ask for one.
            return if info.spatial <= target.spatial {
                Verdict::WaitingKeyframe(0)
            } else {
                Verdict::Filtered
            };
        }
        if !self.temporal.admit(info, target.temporal) {
            return Verdict::Filtered;
        }
        // The picture ends, for this subscriber, at the end of the highest
        // spatial layer it gets.
        let marker = p.marker || (info.layer_end && info.spatial == cur);
        Verdict::Forward { switched, marker }
    }
}
