//! Error codes sent to clients in `error` messages.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code. Clients switch on these; the
/// accompanying `message` is for people and may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON.
    BadJson,
    /// The `type` is not one the server knows.
    UnknownType,
    /// A field is missing or has the wrong type, or the message is not an object.
    InvalidMessage,
    /// `target` names no connected client, or one outside your room.
    UnknownTarget,
    /// The request needs a room and the client has not joined one.
    NotInRoom,
    /// `join` while already in a room.
    AlreadyInRoom,
    /// The room name is empty, too long, or has characters other than `[A-Za-z0-9_.-]`.
    InvalidRoom,
    /// The P2P room has reached its maximum size.
    RoomFull,
    /// The room exists in the other mode than the one requested.
    ModeMismatch,
    /// The server requires a token and none was given.
    TokenRequired,
    /// The token is malformed, forged, or signed with an unknown key.
    TokenInvalid,
    /// The token has expired.
    TokenExpired,
    /// The token is for another room.
    TokenWrongRoom,
    /// The token does not grant what was asked (join, publish, ...).
    PermissionDenied,
    /// The server has no media plane for SFU rooms.
    MediaUnavailable,
    /// The SDP or ICE candidate was refused by the media plane.
    MediaRejected,
    /// The client's offer crossed the server's own pending offer and was
    /// ignored (the server is the impolite side of perfect negotiation):
    /// answer the server's offer, then offer again.
    OfferIgnored,
    /// The media plane is past its capacity (it reads its media late):
    /// no new SFU participants until it catches up.
    ServerBusy,
    /// Something failed inside the server; nothing about it is leaked.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::UnknownTarget => "unknown_target",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::AlreadyInRoom => "already_in_room",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::ModeMismatch => "mode_mismatch",
            ErrorCode::TokenRequired => "token_required",
            ErrorCode::TokenInvalid => "token_invalid",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TokenWrongRoom => "token_wrong_room",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::MediaUnavailable => "media_unavailable",
            ErrorCode::MediaRejected => "media_rejected",
            ErrorCode::OfferIgnored => "offer_ignored",
            ErrorCode::ServerBusy => "server_busy",
            ErrorCode::Internal => "internal",
        }
    }
}
