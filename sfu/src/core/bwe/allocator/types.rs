//! The allocator's inputs and outputs.

use std::time::Duration;

use crate::core::bwe::Bitrate;
use crate::core::ids::TrackNo;

/// A simulcast/SVC layer: spatial (resolution) and temporal (frame rate).
/// Ordered by quality: spatial first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Layer {
    pub spatial: u8,
    pub temporal: u8,
}

impl Layer {
    pub const fn new(spatial: u8, temporal: u8) -> Self {
        Layer { spatial, temporal }
    }
}

/// One layer of a published video track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerRate {
    pub layer: Layer,
    /// Measured bitrate while received; the expected one otherwise.
    pub bitrate: Bitrate,
    /// The server receives it now (dynacast may have paused it).
    pub available: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackKind {
    Audio {
        bitrate: Bitrate,
    },
    /// Layers in any order.
    Video {
        layers: Vec<LayerRate>,
    },
}

/// One track of the subscriber and what the subscriber asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackInput {
    pub track: TrackNo,
    pub kind: TrackKind,
    pub screen_share: bool,
    pub active_speaker: bool,
    /// Shown on the subscriber's screen (adaptive stream).
    pub visible: bool,
    pub paused_by_subscriber: bool,
    /// Highest layer the subscriber wants (its quality or size choice).
    pub max_layer: Option<Layer>,
}

/// Why a video track gets nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PauseReason {
    NotVisible,
    PausedBySubscriber,
    /// Not even its lowest layer fits the estimate.
    Bandwidth,
    /// The publisher sends no layer the subscriber may take.
    NoLayers,
}

/// What a track gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Audio,
    Layer(Layer),
    Paused(PauseReason),
}

/// The allocation of one track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackAllocation {
    pub track: TrackNo,
    pub target: Target,
    pub bitrate: Bitrate,
    /// The layer this subscriber wants the publisher to send (dynacast).
    pub wanted: Option<Layer>,
}

/// What changed for the subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocationEvent {
    Paused {
        track: TrackNo,
        reason: PauseReason,
    },
    Resumed {
        track: TrackNo,
        layer: Layer,
    },
    LayerChanged {
        track: TrackNo,
        from: Layer,
        to: Layer,
    },
}

/// The provisional result of phase 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Provisional {
    pub estimate: Bitrate,
    /// What the whole estimate allows: the committed set must fit it.
    pub tracks: Vec<TrackAllocation>,
    pub total: Bitrate,
    /// What `up_headroom x estimate` allows: where moves up may go.
    pub up_tracks: Vec<TrackAllocation>,
}

/// The committed result of phase 2.
#[derive(Clone, Debug, PartialEq)]
pub struct Allocation {
    pub tracks: Vec<TrackAllocation>,
    pub total: Bitrate,
    pub events: Vec<AllocationEvent>,
    /// The estimate the next move up needs (the total after the smallest
    /// single step, over `up_headroom`): what to probe for before moving up.
    /// `None` when every track has what it wants.
    pub probe_target: Option<Bitrate>,
    /// The estimate every track's best available layer needs (over
    /// `up_headroom`, layers blocked after congestion left out): what to
    /// probe for while probes keep succeeding, so that a subscriber with
    /// room climbs in a few probes rather than a layer at a time. `None`
    /// when every track has what it wants.
    pub probe_goal: Option<Bitrate>,
    /// The total rate with every track at the best layer it wants.
    pub desired: Bitrate,
}

/// What the estimator says besides the estimate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Signal {
    pub congested: bool,
    /// A probe just proved this rate deliverable.
    pub probe_success: Option<Bitrate>,
    /// The highest rate the path delivered lately (`LegBwe::recent_best`):
    /// a move up without a probe may go this far.
    pub delivered: Option<Bitrate>,
    /// The path shows congestion that stands: a queue of more than 60 ms
    /// above its floor, or loss above its baseline. Then the committed set
    /// must fit the whole estimate at once.
    pub standing: bool,
    /// What the path allows whatever was sent in the last second
    /// (`LegBwe::sustained`): the committed set is kept while it fits
    /// this and the path shows no congestion, even when the estimate fell
    /// only because the publishers sent less for a moment. `None`: the
    /// estimate.
    pub sustained: Option<Bitrate>,
    /// What the path delivered over the last second (acknowledged). While
    /// that carries every flowing video at its lowest layer, none is
    /// paused: the shortfall is in the layers above, which go first.
    pub carried: Option<Bitrate>,
    /// A long queue stands on the path (`LegBwe::backlogged`): what is
    /// sent does not fit, whatever the path delivers, or the queue would
    /// drain. Then `carried` keeps no video flowing: a video whose lowest
    /// layer is all that is sent may be paused, so the queue drains and
    /// the audio behind it is not late by seconds.
    pub backlog: bool,
}

/// Parameters of the allocator (`[bwe.allocation]` in the config).
#[derive(Clone, Debug, PartialEq)]
pub struct AllocatorConfig {
    /// A move up needs the estimate to allow it this long (or a probe).
    pub up_hold: Duration,
    /// A move up must fit in this fraction of the estimate; the committed
    /// set is kept while it fits the whole estimate. The band between is
    /// the hysteresis that keeps a steady link from flapping.
    pub up_headroom: f64,
    /// While the path shows no standing congestion (`Signal::standing`),
    /// the committed set is kept down to an estimate of this fraction of
    /// its total. The estimator answers each overuse by backing off to 90%
    /// of what the path delivered, which is about what is sent: without
    /// this, one back-off (a burst of jitter on a busy machine is enough)
    /// would pause a video at once.
    pub down_tolerance: f64,
    /// A layer left for lack of bandwidth is blocked this long at first...
    pub block_initial: Duration,
    /// ...doubling each time the track is pushed down again, up to this.
    pub block_max: Duration,
    /// A track stable this long starts again from `block_initial`.
    pub block_reset: Duration,
    /// A flowing video is paused for bandwidth only once the committed set
    /// has been over the estimate this long (2 s): a pause is a freeze, a layer
    /// down is not, and a dip of the estimate (a queue draining after a
    /// move down, a burst of jitter) passes sooner.
    pub pause_hold: Duration,
    /// Nor within this long of a move up (5 s): the set before it fitted.
    pub pause_after_up: Duration,
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        AllocatorConfig {
            up_hold: Duration::from_secs(3),
            up_headroom: 0.9,
            down_tolerance: 0.8,
            block_initial: Duration::from_secs(8),
            block_max: Duration::from_secs(120),
            block_reset: Duration::from_secs(60),
            pause_hold: Duration::from_secs(2),
            pause_after_up: Duration::from_secs(5),
        }
    }
}
