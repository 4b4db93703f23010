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
pub use crate::ids::{ParticipantId, RoomName};

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

/// A request from signaling to the media plane. Each is about one
/// participant of one room; the room is named in every command so a plane
/// can route it (to the shard that owns the room) without a lookup table.
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
}

impl MediaCommand {
    pub fn participant(&self) -> &ParticipantId {
        match self {
            MediaCommand::Join { participant, .. }
            | MediaCommand::Leave { participant, .. }
            | MediaCommand::Offer { participant, .. }
            | MediaCommand::Answer { participant, .. }
            | MediaCommand::Candidate { participant, .. } => participant,
        }
    }

    /// The room the participant is in.
    pub fn room(&self) -> &RoomName {
        match self {
            MediaCommand::Join { room, .. }
            | MediaCommand::Leave { room, .. }
            | MediaCommand::Offer { room, .. }
            | MediaCommand::Answer { room, .. }
            | MediaCommand::Candidate { room, .. } => room,
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
    /// Packets dropped, by reason.
    pub dropped: Vec<(String, u64)>,
}

/// A media plane. Calls must not block: implementations queue the command
/// for their own tasks or threads and report back through events.
pub trait MediaPlane: Send + Sync + 'static {
    fn handle(&self, command: MediaCommand);

    /// A snapshot of the plane's counters.
    fn stats(&self) -> MediaStats {
        MediaStats::default()
    }
}
