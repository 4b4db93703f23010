//! The bridge to the media plane: a participant's untargeted offers,
//! answers and candidates in an SFU room become [`MediaCommand`]s, and the
//! plane's [`MediaEvent`]s go back to that participant's socket.

use serde_json::Value;

use super::{Effects, Hub};
use crate::error::ErrorCode;
use crate::ids::{ClientId, ParticipantId, RoomName};
use crate::media::{MediaCommand, MediaEvent};
use crate::protocol::{sdp_text, MediaState, RoomMode, ServerMessage, TrackSource};

impl Hub {
    pub(super) fn offer_to_media(&mut self, conn: &ClientId, sdp: &Value, fx: &mut Effects) {
        let Some(sdp) = sdp_for_server(conn, sdp, "offer", fx) else {
            return;
        };
        self.pass_to_media(conn, "offer", fx, |room, participant| MediaCommand::Offer {
            room,
            participant,
            sdp,
        })
    }

    pub(super) fn answer_to_media(&mut self, conn: &ClientId, sdp: &Value, fx: &mut Effects) {
        let Some(sdp) = sdp_for_server(conn, sdp, "answer", fx) else {
            return;
        };
        self.pass_to_media(conn, "answer", fx, |room, participant| {
            MediaCommand::Answer {
                room,
                participant,
                sdp,
            }
        })
    }

    pub(super) fn candidate_to_media(
        &mut self,
        conn: &ClientId,
        candidate: Value,
        fx: &mut Effects,
    ) {
        let candidate = match candidate {
            Value::Null => None,
            v => match serde_json::from_value(v) {
                Ok(c) => Some(c),
                Err(e) => {
                    fx.send(
                        conn,
                        ServerMessage::error(
                            ErrorCode::InvalidMessage,
                            format!("invalid `candidate`: {e}"),
                            Some("ice-candidate"),
                        ),
                    );
                    return;
                }
            },
        };
        self.pass_to_media(conn, "ice-candidate", fx, |room, participant| {
            MediaCommand::Candidate {
                room,
                participant,
                candidate,
            }
        })
    }

    pub(super) fn track_settings_to_media(
        &mut self,
        conn: &ClientId,
        publisher: String,
        track: String,
        settings: crate::media::TrackSettings,
        fx: &mut Effects,
    ) {
        if track.len() > 256 || publisher.len() > 256 {
            fx.send(
                conn,
                ServerMessage::error(
                    ErrorCode::InvalidMessage,
                    "`participant` and `track` are at most 256 characters",
                    Some("track-settings"),
                ),
            );
            return;
        }
        let publisher = ParticipantId::from_string(publisher);
        self.pass_to_media(conn, "track-settings", fx, |room, participant| {
            MediaCommand::TrackSettings {
                room,
                participant,
                publisher,
                track,
                settings,
            }
        })
    }

    /// Tells the media plane which of a member's tracks are screen shares
    /// (SFU rooms only). Without `always`, only when it has some (a member
    /// whose state is learnt, not changed).
    pub(super) fn screen_tracks_to_media(
        &self,
        room: &RoomName,
        publisher: &ParticipantId,
        media: &MediaState,
        always: bool,
        fx: &mut Effects,
    ) {
        if !self.media_available || self.rooms.mode(room) != Some(RoomMode::Sfu) {
            return;
        }
        let tracks: Vec<String> = media
            .tracks
            .iter()
            .filter(|t| t.source == TrackSource::Screen)
            .map(|t| t.id.clone())
            .collect();
        if tracks.is_empty() && !always {
            return;
        }
        fx.media.push(MediaCommand::ScreenTracks {
            room: room.clone(),
            publisher: publisher.clone(),
            tracks,
        });
    }

    /// Hands an untargeted offer, answer or candidate to the media plane.
    fn pass_to_media(
        &mut self,
        conn: &ClientId,
        request: &str,
        fx: &mut Effects,
        make: impl FnOnce(RoomName, ParticipantId) -> MediaCommand,
    ) {
        let settings = request == "track-settings";
        let Some(pid) = self.participant_of(conn) else {
            fx.send(
                conn,
                if settings {
                    ServerMessage::error(ErrorCode::NotInRoom, "join a room first", Some(request))
                } else {
                    ServerMessage::error(
                        ErrorCode::InvalidMessage,
                        "`target` is required outside an SFU room",
                        Some(request),
                    )
                },
            );
            return;
        };
        let room = self
            .participants
            .get(&pid)
            .map(|p| p.room.clone())
            .filter(|r| self.rooms.mode(r) == Some(RoomMode::Sfu));
        match room {
            Some(room) => fx.media.push(make(room, pid)),
            None => fx.send(
                conn,
                ServerMessage::error(
                    ErrorCode::InvalidMessage,
                    if settings {
                        "`track-settings` is for SFU rooms"
                    } else {
                        "`target` is required in a P2P room"
                    },
                    Some(request),
                ),
            ),
        }
    }

    pub(super) fn on_media_event(&mut self, event: MediaEvent, fx: &mut Effects) {
        let (pid, msg) = match event {
            MediaEvent::RelaySdp {
                room,
                node,
                kind,
                sdp,
            } => {
                if self.relay_open(&room, &node) {
                    fx.cluster.push(super::ClusterOut::RelaySdp {
                        node,
                        room,
                        kind,
                        sdp,
                    });
                }
                return;
            }
            MediaEvent::RelayStreams {
                room,
                node,
                publisher,
                track,
                active,
            } => {
                if self.relay_open(&room, &node) {
                    fx.cluster.push(super::ClusterOut::RelayStreams {
                        node,
                        room,
                        publisher,
                        track,
                        active,
                    });
                }
                return;
            }
            MediaEvent::Offer { participant, sdp } => (participant, ServerMessage::Offer { sdp }),
            MediaEvent::Answer { participant, sdp } => (participant, ServerMessage::Answer { sdp }),
            MediaEvent::Candidate {
                participant,
                candidate,
            } => (participant, ServerMessage::IceCandidate { candidate }),
            MediaEvent::Error {
                participant,
                code,
                message,
            } => (
                participant,
                ServerMessage::Error {
                    code,
                    message,
                    request: (code == ErrorCode::OfferIgnored).then(|| "offer".to_owned()),
                },
            ),
            MediaEvent::ActiveSpeakers {
                participant,
                speakers,
            } => (participant, ServerMessage::ActiveSpeakers { speakers }),
            MediaEvent::PublisherEncodings {
                participant,
                track,
                mid,
                encodings,
            } => (
                participant,
                ServerMessage::PublisherEncodings {
                    track,
                    mid,
                    encodings,
                },
            ),
            MediaEvent::StreamState {
                participant,
                publisher,
                track,
                paused,
                reason,
            } => (
                participant,
                ServerMessage::StreamState {
                    participant: publisher,
                    track,
                    paused,
                    reason,
                },
            ),
        };
        if let Some(conn) = self.participants.get(&pid).and_then(|p| p.conn.clone()) {
            fx.send(&conn, msg);
        }
    }
}

/// The SDP text of an offer or answer for the media plane (text or the
/// browser's description object); a bad one is answered with an error.
fn sdp_for_server(conn: &ClientId, sdp: &Value, request: &str, fx: &mut Effects) -> Option<String> {
    match sdp_text(sdp, request) {
        Ok(s) => Some(s),
        Err(e) => {
            fx.send(
                conn,
                ServerMessage::error(ErrorCode::InvalidMessage, e, Some(request)),
            );
            None
        }
    }
}
