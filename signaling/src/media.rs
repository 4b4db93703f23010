//! The boundary between signaling and a media plane.
//!
//! Signaling knows nothing about RTP. For rooms in SFU mode it hands
//! [`MediaCommand`]s to a [`MediaPlane`] and routes the [`MediaEvent`]s the
//! plane sends back to the right socket. P2P rooms need no media plane.
//!
//! Everything a media plane needs from signaling is here or re-exported
//! here, and none of it needs HTTP or JWT: a media plane depends on this
//! crate with `default-features = false` (no `server` feature), which leaves
//! out the hub, the WebSocket and HTTP service and access tokens.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use crate::error::ErrorCode;
pub use crate::ids::{NodeId, ParticipantId, RoomName};

/// A trickled ICE candidate as the browser's `RTCIceCandidate.toJSON()` gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// What the token (or development mode) lets a participant do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    pub publish: bool,
    pub subscribe: bool,
}

/// The quality a subscriber asks for, at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    Low,
    Medium,
    High,
}

/// What a subscriber wants of one forwarded track: how it shows it
/// (adaptive stream) and its own choices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrackSettings {
    /// Shown at all (false: a hidden tab, a tile scrolled out of view, a
    /// zero-size element).
    pub visible: bool,
    /// The size it is rendered at, in device pixels (0: not known).
    pub width: u32,
    pub height: u32,
    /// The most the subscriber wants, whatever the size.
    pub quality: Option<Quality>,
    pub max_width: Option<u32>,
    pub max_height: Option<u32>,
    /// The subscriber wants nothing of this track for now.
    pub paused: bool,
}

impl Default for TrackSettings {
    fn default() -> Self {
        TrackSettings {
            visible: true,
            width: 0,
            height: 0,
            quality: None,
            max_width: None,
            max_height: None,
            paused: false,
        }
    }
}

/// An offer or an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpKind {
    Offer,
    Answer,
}

/// Which end of a relay connection this node is. The two nodes of a relay
/// take opposite ends, by comparing their ids (see [`RelayEnd::between`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayEnd {
    /// A full ICE agent on a socket of its own, the controlling side, DTLS
    /// client, polite in perfect negotiation.
    Full,
    /// Like a client's connection: ICE-lite on the shared media port, DTLS
    /// server, impolite.
    Lite,
}

impl RelayEnd {
    /// This node's end of a relay with `other`: the smaller id is `Full`.
    pub fn between(me: &NodeId, other: &NodeId) -> RelayEnd {
        if me < other {
            RelayEnd::Full
        } else {
            RelayEnd::Lite
        }
    }
}

/// One entry of an `active-speakers` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Speaker {
    pub id: ParticipantId,
    /// Smoothed audio level, 0 (silence) to 1 (the loudest).
    pub level: f32,
}

/// Whether one of a publisher's encodings should be sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncodingState {
    /// The encoding's rid; absent for a track with one encoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    pub active: bool,
    /// SVC (one encoding with spatial layers): how many spatial layers,
    /// the lowest ones, anyone receives; the encoder may drop the rest.
    /// Absent: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spatial_layers: Option<u8>,
}

/// A request from signaling to the media plane. Each is about one
/// participant (or one node-to-node relay) of one room; the room is named
/// in every command so a plane can route it (to the shard that owns the
/// room) without a lookup table.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaCommand {
    /// The participant joined an SFU room: set up its state.
    Join {
        room: RoomName,
        participant: ParticipantId,
        permissions: Permissions,
    },
    /// The participant left (or its socket closed): free everything it had.
    Leave {
        room: RoomName,
        participant: ParticipantId,
    },
    /// The client's SDP offer; the plane answers with [`MediaEvent::Answer`].
    Offer {
        room: RoomName,
        participant: ParticipantId,
        sdp: String,
    },
    /// The client's answer to an offer the plane sent.
    Answer {
        room: RoomName,
        participant: ParticipantId,
        sdp: String,
    },
    /// A trickled candidate from the client; `None` ends its gathering.
    Candidate {
        room: RoomName,
        participant: ParticipantId,
        candidate: Option<IceCandidate>,
    },
    /// How the participant shows (or wants) one track another member
    /// publishes.
    TrackSettings {
        room: RoomName,
        participant: ParticipantId,
        publisher: ParticipantId,
        track: String,
        settings: TrackSettings,
    },
    /// Another node serves members of this room too: exchange tracks with
    /// it over a relay connection (each local track goes to it once, each
    /// of its tracks is forwarded here to the local members).
    RelayOpen {
        room: RoomName,
        node: NodeId,
        end: RelayEnd,
    },
    /// The room no longer spans that node: the relay goes.
    RelayClose { room: RoomName, node: NodeId },
    /// An offer or answer from that node's end of the relay.
    RelaySdp {
        room: RoomName,
        node: NodeId,
        kind: SdpKind,
        sdp: String,
    },
    /// Which streams of one of this node's simulcast tracks the other
    /// node's subscribers need (by quality rank, lowest first): its end of
    /// the relay carries only those, and the publisher may stop encoding
    /// the others when nobody here needs them either.
    RelayStreams {
        room: RoomName,
        node: NodeId,
        publisher: ParticipantId,
        track: String,
        active: Vec<bool>,
    },
    /// Which of a member's published tracks carry a screen share (from its
    /// `media-state`), here or on another node: allocation serves them
    /// before cameras. An empty list clears them.
    ScreenTracks {
        room: RoomName,
        publisher: ParticipantId,
        tracks: Vec<String>,
    },
}

impl MediaCommand {
    /// The participant it is about; `None` for relay commands.
    pub fn participant(&self) -> Option<&ParticipantId> {
        match self {
            MediaCommand::Join { participant, .. }
            | MediaCommand::Leave { participant, .. }
            | MediaCommand::Offer { participant, .. }
            | MediaCommand::Answer { participant, .. }
            | MediaCommand::Candidate { participant, .. }
            | MediaCommand::TrackSettings { participant, .. } => Some(participant),
            MediaCommand::RelayOpen { .. }
            | MediaCommand::RelayClose { .. }
            | MediaCommand::RelaySdp { .. }
            | MediaCommand::RelayStreams { .. }
            | MediaCommand::ScreenTracks { .. } => None,
        }
    }

    /// The room the participant is in.
    pub fn room(&self) -> &RoomName {
        match self {
            MediaCommand::Join { room, .. }
            | MediaCommand::Leave { room, .. }
            | MediaCommand::Offer { room, .. }
            | MediaCommand::Answer { room, .. }
            | MediaCommand::Candidate { room, .. }
            | MediaCommand::TrackSettings { room, .. }
            | MediaCommand::RelayOpen { room, .. }
            | MediaCommand::RelayClose { room, .. }
            | MediaCommand::RelaySdp { room, .. }
            | MediaCommand::RelayStreams { room, .. }
            | MediaCommand::ScreenTracks { room, .. } => room,
        }
    }
}

/// Something the media plane wants told to a participant's client.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaEvent {
    /// A server-initiated offer (renegotiation when tracks come and go).
    Offer {
        participant: ParticipantId,
        sdp: String,
    },
    /// The answer to the client's offer.
    Answer {
        participant: ParticipantId,
        sdp: String,
    },
    /// A local ICE candidate of the server; `None` ends gathering.
    Candidate {
        participant: ParticipantId,
        candidate: Option<IceCandidate>,
    },
    /// A command could not be carried out (bogus SDP, say).
    Error {
        participant: ParticipantId,
        code: ErrorCode,
        message: String,
    },
    /// Who speaks in the participant's room, loudest first.
    ActiveSpeakers {
        participant: ParticipantId,
        speakers: Vec<Speaker>,
    },
    /// Which encodings of one of the participant's own tracks anyone
    /// receives (dynacast): the others need not be encoded.
    PublisherEncodings {
        participant: ParticipantId,
        track: String,
        /// The track's media section in the participant's SDP.
        mid: Option<String>,
        encodings: Vec<EncodingState>,
    },
    /// An offer or answer for the other node's end of a relay.
    RelaySdp {
        room: RoomName,
        node: NodeId,
        kind: SdpKind,
        sdp: String,
    },
    /// Which streams of a simulcast track that came over the relay from
    /// `node` this node's subscribers need (dynacast across nodes), for
    /// that node's end of the relay.
    RelayStreams {
        room: RoomName,
        node: NodeId,
        publisher: ParticipantId,
        track: String,
        active: Vec<bool>,
    },
    /// A track the participant receives was paused by the server (its
    /// downlink cannot carry even the lowest layer), or resumed.
    StreamState {
        participant: ParticipantId,
        /// Who publishes the track.
        publisher: String,
        track: String,
        paused: bool,
        /// Why it is paused (`bandwidth`).
        reason: Option<String>,
    },
}

impl MediaEvent {
    /// The participant the event is for; `None` for a relay's.
    pub fn participant(&self) -> Option<&ParticipantId> {
        match self {
            MediaEvent::Offer { participant, .. }
            | MediaEvent::Answer { participant, .. }
            | MediaEvent::Candidate { participant, .. }
            | MediaEvent::Error { participant, .. }
            | MediaEvent::ActiveSpeakers { participant, .. }
            | MediaEvent::PublisherEncodings { participant, .. }
            | MediaEvent::StreamState { participant, .. } => Some(participant),
            MediaEvent::RelaySdp { .. } | MediaEvent::RelayStreams { .. } => None,
        }
    }
}

/// Where a media plane sends its events.
pub type MediaEventSender = mpsc::UnboundedSender<MediaEvent>;
/// Where signaling reads them.
pub type MediaEventReceiver = mpsc::UnboundedReceiver<MediaEvent>;

/// Counters a media plane reports, for `/metrics` and `/api/stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MediaStats {
    /// Peer connections the plane holds.
    pub connections: u64,
    /// Tracks being published.
    pub tracks: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// NACKed packets the server re-sent from its own cache.
    pub nacks_answered: u64,
    /// PLI/FIR sent to publishers.
    pub keyframe_requests_sent: u64,
    /// Media connections that lost ICE consent after being connected.
    pub disconnects: u64,
    /// Packets a subscriber deliberately did not get: another simulcast
    /// stream, a layer above its own, a paused or hidden track.
    pub packets_skipped: u64,
    /// Times a subscriber moved to another simulcast stream.
    pub layer_switches: u64,
    /// Node-to-node relay connections (cascading rooms across a cluster).
    pub relays: u64,
    /// RTP packets (and bytes) sent to other nodes over relays, included in
    /// `packets_out`/`bytes_out`.
    pub relay_packets_out: u64,
    pub relay_bytes_out: u64,
    /// RTP packets received from other nodes over relays.
    pub relay_packets_in: u64,
    /// ICE restarts the plane accepted (a client re-offered new ICE
    /// credentials on its connection, after a network change).
    pub ice_restarts: u64,
    /// Client addresses whose datagrams arrive on a socket of the shard
    /// that owns them (`[media] connected_sockets`).
    pub connected_sockets: u64,
    /// Datagrams the receiving shard read for another shard and handed over.
    pub datagrams_handed_off: u64,
    /// RTP packets sent to participants encrypted by the plane's own SRTP
    /// path (`[media] own_srtp`), included in `packets_out`.
    pub packets_own_srtp: u64,
    /// RTP packets received from publishers and decrypted by the plane's
    /// own SRTP path (`[media] own_srtp_in`), included in `packets_in`.
    pub packets_own_srtp_in: u64,
    /// RTCP packets (compound datagrams) received from participants and
    /// decrypted by the plane's own SRTCP path (`[media] own_srtcp_in`),
    /// included in `packets_in`.
    pub packets_own_srtcp_in: u64,
    /// Times the media shards' threads slept and were woken, summed over
    /// shards (Linux; 0 elsewhere).
    pub shard_wakeups: u64,
    /// Packets dropped, by reason.
    pub dropped: Vec<(String, u64)>,
    /// Subscribers' bandwidth estimates, observed at every allocation round.
    pub bwe_estimate_bps: Histogram,
    /// Time between one subscriber's consecutive layer switches of a track.
    pub layer_switch_interval_seconds: Histogram,
    /// How long datagrams waited in the kernel's receive queue before the
    /// plane read them (a plane past its capacity falls behind here).
    pub input_lag_seconds: Histogram,
    /// Shards that read so late that new participants are refused.
    pub shards_behind: u64,
    /// Per subscriber connection: bandwidth estimate, allocation, layers.
    pub subscribers: Vec<SubscriberStats>,
}

/// Observations counted per bucket since the start (`/metrics` renders
/// them as a Prometheus histogram).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Histogram {
    /// Upper bounds of the buckets, ascending.
    pub le: Vec<f64>,
    /// Observations per bucket, not cumulative; one more than `le`: the
    /// last counts those above every bound.
    pub counts: Vec<u64>,
    /// Sum of all observations.
    pub sum: f64,
}

/// One subscriber connection's bandwidth figures (`/api/stats`
/// `media.subscribers`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberStats {
    pub participant: String,
    /// Estimation drives this subscriber (transport-cc feedback arrives).
    pub estimation: bool,
    pub estimate_bps: Option<u64>,
    /// What the allocation gave its tracks.
    pub allocated_bps: Option<u64>,
    /// Sent to it over the last complete 1 s window, so up to a second
    /// old (media, retransmissions, probes).
    pub sent_bps: u64,
    pub packets_sent: u64,
    pub congested: bool,
    pub rtt_ms: Option<u64>,
    pub feedbacks: u64,
    pub probes_started: u64,
    pub probes_succeeded: u64,
    pub probes_failed: u64,
    /// Probes that passed right after one at or below their rate failed,
    /// and so counted only once the next one passed too.
    pub probes_unconfirmed: u64,
    pub probe_packets: u64,
    /// Probes not sent: RTX negotiated and no video packet yet to repeat.
    pub probes_unsendable: u64,
    pub retransmissions_sent: u64,
    /// NACKs not answered because the retransmission budget was spent.
    pub retransmissions_dropped: u64,
    /// Its keyframe requests held back while it was congested.
    pub keyframe_requests_throttled: u64,
    /// What the estimate is made of (absent while estimation is off).
    pub bwe: Option<EstimateParts>,
    /// Its send queue (absent while estimation is off).
    pub pacer: Option<PacerFigures>,
    pub tracks: Vec<SubscriberTrackStats>,
}

/// A subscriber connection's pacer: what waits in it now, and what it
/// sent and dropped so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PacerFigures {
    /// Its media goes through the pacer now: its estimate holds it back
    /// (a track gets less than it wants, or the path is congested).
    pub paced: bool,
    pub queued_packets: u64,
    pub queued_bytes: u64,
    /// How long the oldest queued packet has waited.
    pub queue_ms: u64,
    /// The longest any sent packet waited.
    pub max_wait_ms: u64,
    pub sent_packets: u64,
    /// Queue full, evicted for a more important packet, or the rest of a
    /// frame that lost a packet (see the `pacer_*` drop reasons).
    pub dropped_packets: u64,
}

/// The parts of a subscriber's estimate: the estimate is the lowest of
/// `delayBps`, `lossBoundBps` and `capBps` (the cap lifted to a probe's
/// result for a while after it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EstimateParts {
    /// The delay-based rate controller's estimate.
    pub delay_bps: u64,
    /// The loss-based bound, while loss holds the estimate down.
    pub loss_bound_bps: Option<u64>,
    /// 1.5 x what was sent and acknowledged over the last second.
    pub cap_bps: Option<u64>,
    /// The delay detector's verdict: `normal`, `overuse` or `underuse`.
    pub usage: String,
    /// Short-term loss, in thousandths.
    pub loss_permille: u32,
    /// Delay standing on the path, above its recent floor.
    pub queueing_ms: u64,
    /// The delay detector's trend of the last update (delay growth, scaled
    /// as it is compared with the threshold), rounded.
    pub trend: i64,
    /// The threshold the trend is compared with (adapts to the path's
    /// jitter).
    pub threshold_ms: u64,
}

/// One track a subscriber receives.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberTrackStats {
    pub track: String,
    pub publisher: String,
    pub kind: String,
    /// The layer it gets now (a simulcast rid, or `sNtM`).
    pub layer: Option<String>,
    /// The layer it is switching to.
    pub target: Option<String>,
    /// Why it gets nothing: `bandwidth`, `hidden`, `subscriber`, `no_layers`.
    pub paused: Option<String>,
    /// The layers of a layered video its publisher sends now, lowest
    /// first (a layer the encoder stopped sending, for lack of CPU or
    /// uplink, is missing: no subscriber can get it); empty otherwise.
    pub publisher_layers: Vec<String>,
}

/// A media plane. Calls must not block: implementations queue the command
/// for their own tasks or threads and report back through events.
pub trait MediaPlane: Send + Sync + 'static {
    fn handle(&self, command: MediaCommand);

    /// Whether the plane is past its capacity and new SFU participants
    /// should be turned away (`server_busy`) rather than make everyone's
    /// media worse. Read at every `join`: must be cheap.
    fn at_capacity(&self) -> bool {
        false
    }

    /// A snapshot of the plane's counters.
    fn stats(&self) -> MediaStats {
        MediaStats::default()
    }
}
