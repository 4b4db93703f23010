//! Layer selection: which packets of a published track one subscriber
//! gets, given the layer it should receive.
//!
//! A track is one or more *streams* (simulcast: one per encoding, told
//! apart by SSRC and rid), each possibly made of spatial and temporal
//! *layers* (SVC, or temporal layers within a simulcast stream). A
//! [`Selector`] follows a target [`Layer`] and decides per packet:
//! forward, or drop with a reason. It only ever changes what it forwards
//! where the subscriber's decoder can follow: a new stream or a higher
//! spatial layer at a keyframe (never a retransmitted one), a higher
//! temporal layer at a switching point, anything lower at the start of a
//! picture. Until the switch point comes it keeps forwarding what it had,
//! so the picture never goes blank.

mod choose;
mod simulcast;
mod svc;

pub use choose::{choose, LayerOption};
pub use simulcast::Simulcast;
pub use svc::Svc;

use super::codec::FrameInfo;

/// A layer to forward: a simulcast stream (or SVC spatial layer) and the
/// highest temporal layer within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Layer {
    pub spatial: u8,
    pub temporal: u8,
}

impl Layer {
    pub const LOWEST: Layer = Layer {
        spatial: 0,
        temporal: 0,
    };
    /// Everything: the top of any track.
    pub const TOP: Layer = Layer {
        spatial: u8::MAX,
        temporal: u8::MAX,
    };

    pub fn new(spatial: u8, temporal: u8) -> Layer {
        Layer { spatial, temporal }
    }
}

/// One incoming packet as a selector sees it.
#[derive(Clone, Copy, Debug)]
pub struct LayerPacket<'a> {
    /// Simulcast stream index (0 for a single stream).
    pub stream: u8,
    pub info: &'a FrameInfo,
    pub marker: bool,
    /// A repair of an earlier packet (older than the newest of its stream,
    /// or unwrapped from RTX): never a point to switch at.
    pub retransmission: bool,
}

/// A selector's verdict on one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it. `switched`: the first packet of a new stream, where
    /// numbering is re-based. `marker`: the RTP marker to send (SVC ends
    /// the picture at the highest spatial layer forwarded).
    Forward { switched: bool, marker: bool },
    /// A stream this subscriber does not get now (another simulcast
    /// encoding): not part of what it sees at all.
    OtherStream,
    /// A layer of the forwarded stream left out (higher temporal or
    /// spatial layer): numbering closes the gap.
    Filtered,
    /// Waiting for a keyframe of this stream to start or switch.
    WaitingKeyframe(u8),
    /// The subscriber gets nothing of this track now.
    Paused,
}

/// The layer selector of one (subscriber, track).
#[derive(Clone, Debug)]
pub enum Selector {
    /// Everything, unless paused: audio, and codecs with no structure the
    /// server reads.
    All { paused: bool },
    /// Simulcast streams (one stream for a plain track), each with
    /// optional temporal layers.
    Simulcast(Simulcast),
    /// One stream with spatial and temporal layers.
    Svc(Svc),
    /// One simulcast stream whole, unless paused: a relay carries each
    /// stream of a track to another node under an SSRC of its own, and
    /// that node's subscribers choose among them.
    Stream { index: u8, paused: bool },
}

impl Selector {
    pub fn on_packet(&mut self, p: &LayerPacket) -> Verdict {
        match self {
            Selector::All { paused: true } => Verdict::Paused,
            Selector::All { paused: false } => Verdict::Forward {
                switched: false,
                marker: p.marker,
            },
            Selector::Simulcast(s) => s.on_packet(p),
            Selector::Svc(s) => s.on_packet(p),
            Selector::Stream { index, .. } if p.stream != *index => Verdict::OtherStream,
            Selector::Stream { paused: true, .. } => Verdict::Paused,
            Selector::Stream { paused: false, .. } => Verdict::Forward {
                switched: false,
                marker: p.marker,
            },
        }
    }

    /// Sets what to forward (`None`: nothing). Returns the stream a
    /// keyframe is needed from to get there, if any.
    pub fn set_target(&mut self, target: Option<Layer>) -> Option<u8> {
        match self {
            Selector::All { paused } | Selector::Stream { paused, .. } => {
                *paused = target.is_none();
                None
            }
            Selector::Simulcast(s) => s.set_target(target),
            Selector::Svc(s) => s.set_target(target),
        }
    }

    pub fn target(&self) -> Option<Layer> {
        match self {
            Selector::All { paused } => (!*paused).then_some(Layer::TOP),
            Selector::Stream { index, paused } => (!*paused).then_some(Layer::new(*index, u8::MAX)),
            Selector::Simulcast(s) => s.target(),
            Selector::Svc(s) => s.target(),
        }
    }

    /// What is being forwarded now (`None`: nothing yet, or paused).
    pub fn current(&self) -> Option<Layer> {
        match self {
            Selector::All { paused } => (!*paused).then_some(Layer::TOP),
            Selector::Stream { index, paused } => (!*paused).then_some(Layer::new(*index, u8::MAX)),
            Selector::Simulcast(s) => s.current(),
            Selector::Svc(s) => s.current(),
        }
    }
}

/// Temporal layer bookkeeping shared by both selectors.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Temporal {
    pub current: u8,
}

impl Temporal {
    /// At the start of a picture: go down at once, go up at a switching
    /// point (as far as the target and the point allow, and only to a
    /// layer that includes the picture). Returns whether the packet's
    /// temporal layer is forwarded.
    pub fn admit(&mut self, info: &FrameInfo, target: u8) -> bool {
        if info.picture_start || info.keyframe {
            if target < self.current {
                self.current = target;
            } else {
                let up = target.min(info.switch_up_to);
                if up > self.current && info.temporal <= up {
                    self.current = up;
                }
            }
        }
        info.temporal <= self.current
    }
}

#[cfg(test)]
mod tests;
