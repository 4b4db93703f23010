//! What the bots bring back when a run ends: one [`BotReport`] per bot,
//! holding a [`PeerReport`] per peer connection. The report module reads
//! these; the bot and peer tasks fill them.

use std::time::Duration;

use crate::plan::ViewSize;
use crate::playout::Playout;
use crate::stats::{Histogram, TrackStats};
use crate::video_layer::LayerTracker;

/// One received track.
#[derive(Debug)]
pub struct ReceivedTrack {
    /// The publisher's stream id (its participant id in an SFU room).
    pub stream: String,
    pub video: bool,
    /// Its packets were decoded (a full receiver): frames, freezes and
    /// layers are measured. A counting receiver's are not.
    pub decoded: bool,
    pub stats: TrackStats,
    /// The simulcast layers the track arrived in (video only).
    pub layer: LayerTracker,
    /// Which of its frames became decodable (video only).
    pub playout: Playout,
    /// Keyframe requests (PLI) the bot sent for it in the window.
    pub keyframe_requests: u64,
}

impl ReceivedTrack {
    pub fn new(stream: String, video: bool, decoded: bool) -> Self {
        ReceivedTrack {
            stream,
            video,
            decoded,
            stats: TrackStats::new(video),
            layer: LayerTracker::default(),
            playout: Playout::default(),
            keyframe_requests: 0,
        }
    }

    /// What tells this track apart from the bot's other received tracks.
    pub fn key(&self) -> (&str, bool) {
        (&self.stream, self.video)
    }
}

/// What the bot's downlink cap did in the measured window.
#[derive(Debug, Clone, Default)]
pub struct CapReport {
    /// RTP datagrams that reached the cap (what the server sent the bot).
    pub rtp_arrived: u64,
    /// RTP datagrams the cap's full queue dropped.
    pub rtp_dropped: u64,
    /// Other datagrams (RTCP, STUN, DTLS) dropped.
    pub other_dropped: u64,
    /// Time datagrams spent in the cap's queue.
    pub queue_delay: Histogram,
}

/// Measurements of one peer connection, returned when its task ends.
#[derive(Debug, Default)]
pub struct PeerReport {
    /// From the bot's WebSocket open to ICE+DTLS connected.
    pub connected_after: Option<Duration>,
    /// From the bot's WebSocket open to the first media packet.
    pub first_media_after: Option<Duration>,
    pub tracks: Vec<ReceivedTrack>,
    /// Capture to when the bot read the packet.
    pub latency: Histogram,
    /// Capture to the packet's arrival at the bot's socket (the kernel's
    /// stamp): the latency without the bot's own delay in reading.
    pub socket_latency: Histogram,
    /// The downlink cap, when the bot has one.
    pub cap: Option<CapReport>,
    /// RTP packets sent in the window per published encoding: the rid
    /// (`q`, `h`, `f`), or `video`/`audio` for a track with one encoding.
    pub sent_by_encoding: Vec<(String, u64)>,
    /// `publisher-encodings` updates that changed what the bot sends.
    pub encoding_changes: u64,
    /// RTP packets counted from their clear header (a counting receiver).
    pub counted: u64,
    pub failed: Option<String>,
}

/// What one bot saw.
#[derive(Debug, Default)]
pub struct BotReport {
    pub name: String,
    pub room: String,
    /// The server's id for the bot (`clientId` of `joined`).
    pub participant: Option<String>,
    /// It publishes (publishers receive the others too).
    pub publisher: bool,
    /// The bot's downlink is capped.
    pub capped: bool,
    /// The size it asked for remote video at.
    pub view: Option<ViewSize>,
    /// `track-settings` messages sent.
    pub track_settings_sent: u64,
    /// `active-speakers` events received.
    pub active_speaker_events: u64,
    /// WebSocket open to `joined`.
    pub joined_after: Option<Duration>,
    /// The node a cluster's `redirect` sent the bot to.
    pub redirected_to: Option<std::net::SocketAddr>,
    pub peers: Vec<PeerReport>,
    /// Errors the server answered after the join (the first few).
    pub server_errors: Vec<String>,
    pub error: Option<String>,
}
