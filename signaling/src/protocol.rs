//! The wire protocol: JSON text frames over the WebSocket at `/ws`.
//!
//! Every message is an object with a `type`. The classic minimal signaling
//! messages (`registered`, `offer`/`answer`/`ice-candidate` with
//! `target`/`from`, `list-clients`/`clients-list`) keep their exact shape;
//! rooms, media state and errors are layered on top. `docs/protocol.md` is
//! the reference for every message.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ErrorCode;
use crate::ids::{ClientId, NodeId};
pub use crate::media::{IceCandidate, Permissions};

/// How a room carries media.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RoomMode {
    /// Browsers connect to each other; the server relays signaling only.
    P2p,
    /// Every participant connects once to the server, which forwards media.
    #[default]
    Sfu,
}

impl RoomMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomMode::P2p => "p2p",
            RoomMode::Sfu => "sfu",
        }
    }
}

/// What a published track carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackSource {
    Microphone,
    Camera,
    Screen,
    #[serde(rename = "screen-audio")]
    ScreenAudio,
}

/// Names a published track's source, by the track id the publisher's SDP
/// carries (the id subscribers see in their `MediaStreamTrack`'s msid).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    pub id: String,
    pub source: TrackSource,
}

/// Which of a participant's sources are on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MediaState {
    pub microphone: bool,
    pub camera: bool,
    #[serde(default)]
    pub screen: bool,
    /// The participant's published tracks and their sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracks: Vec<TrackInfo>,
}

/// A message from a client, after validation.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ClientMessage {
    /// SDP offer: to another client (`target`) or, in an SFU room, to the
    /// server. `sdp` is the SDP text or the browser's description object
    /// (`{"type":"offer","sdp":"v=0..."}`); relayed as it came.
    Offer {
        #[serde(default)]
        target: Option<String>,
        sdp: Value,
    },
    /// SDP answer, addressed like an offer.
    Answer {
        #[serde(default)]
        target: Option<String>,
        sdp: Value,
    },
    /// A trickled ICE candidate, addressed like an offer. `null` ends gathering.
    IceCandidate {
        #[serde(default)]
        target: Option<String>,
        candidate: Value,
    },
    /// Asks for the ids of the other connected clients.
    ListClients {},
    /// Joins (and creates, if needed) a room.
    Join {
        room: String,
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        mode: Option<RoomMode>,
        /// The `resumeToken` of an earlier `joined`: take back that place
        /// while the reconnect grace period lasts.
        #[serde(default)]
        resume: Option<String>,
        /// The client follows `redirect` and `move` (a cluster may then
        /// send it to another node).
        #[serde(default)]
        redirect: bool,
    },
    /// Leaves the current room; the socket stays open.
    Leave {},
    /// Announces which sources are on.
    MediaState {
        microphone: bool,
        camera: bool,
        #[serde(default)]
        screen: bool,
        #[serde(default)]
        tracks: Vec<TrackInfo>,
    },
    /// How the sender shows (or wants) a track another member publishes
    /// (SFU rooms): adaptive stream and subscriber choices.
    TrackSettings {
        /// The publisher's participant id.
        participant: String,
        /// The publisher's track id (the forwarded track's id).
        track: String,
        #[serde(flatten)]
        settings: crate::media::TrackSettings,
    },
    /// Keep-alive; answered with `pong` echoing `id` when given.
    Ping {
        #[serde(default)]
        id: Option<Value>,
    },
}

/// The SDP text of an `offer` or `answer` sent to the server: either the
/// text itself or the browser's `RTCSessionDescription` object
/// (`{"type":"offer","sdp":"v=0..."}`, as `pc.localDescription` serializes).
/// An object's `type`, when present, must be `expected`.
pub fn sdp_text(sdp: &Value, expected: &str) -> Result<String, String> {
    match sdp {
        Value::String(s) => Ok(s.clone()),
        Value::Object(o) => {
            match o.get("type") {
                None | Some(Value::Null) => {}
                Some(Value::String(t)) if t == expected => {}
                Some(Value::String(t)) => {
                    return Err(format!("`sdp.type` is `{t}` in an `{expected}` message"))
                }
                Some(_) => return Err("`sdp.type` must be a string".into()),
            }
            match o.get("sdp") {
                Some(Value::String(s)) => Ok(s.clone()),
                _ => Err("`sdp` must be the SDP text or an object with an `sdp` string".into()),
            }
        }
        _ => Err("`sdp` must be the SDP text or an object with an `sdp` string".into()),
    }
}

/// Every `type` a client may send.
pub const CLIENT_TYPES: &[&str] = &[
    "offer",
    "answer",
    "ice-candidate",
    "list-clients",
    "join",
    "leave",
    "media-state",
    "track-settings",
    "ping",
];

/// A frame that failed validation, with what to tell the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub code: ErrorCode,
    pub message: String,
    /// The offending request's `type`, when it had a readable one.
    pub request: Option<String>,
}

/// A validated message and the object it came from (relayed messages are
/// forwarded whole, unknown fields included).
#[derive(Clone, Debug, PartialEq)]
pub struct Incoming {
    pub message: ClientMessage,
    pub raw: Map<String, Value>,
}

/// Parses and validates one text frame.
pub fn parse_client_message(text: &str) -> Result<Incoming, ParseError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ParseError {
        code: ErrorCode::BadJson,
        message: format!("message is not valid JSON: {e}"),
        request: None,
    })?;
    let Value::Object(raw) = value else {
        return Err(ParseError {
            code: ErrorCode::InvalidMessage,
            message: "message must be a JSON object".into(),
            request: None,
        });
    };
    let ty = match raw.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => {
            return Err(ParseError {
                code: ErrorCode::InvalidMessage,
                message: "field `type` must be a string".into(),
                request: None,
            })
        }
        None => {
            return Err(ParseError {
                code: ErrorCode::InvalidMessage,
                message: "missing field `type`".into(),
                request: None,
            })
        }
    };
    if !CLIENT_TYPES.contains(&ty.as_str()) {
        return Err(ParseError {
            code: ErrorCode::UnknownType,
            message: format!("unknown message type `{ty}`"),
            request: Some(ty),
        });
    }
    match serde_json::from_value::<ClientMessage>(Value::Object(raw.clone())) {
        Ok(message) => match check_lengths(&message) {
            Ok(()) => Ok(Incoming { message, raw }),
            Err(why) => Err(ParseError {
                code: ErrorCode::InvalidMessage,
                message: format!("invalid `{ty}` message: {why}"),
                request: Some(ty),
            }),
        },
        Err(e) => Err(ParseError {
            code: ErrorCode::InvalidMessage,
            message: format!("invalid `{ty}` message: {e}"),
            request: Some(ty),
        }),
    }
}

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest id a client names: a target, a track id.
pub const MAX_ID_BYTES: usize = 64;
/// Most tracks a `media-state` may describe.
pub const MAX_TRACKS: usize = 16;
/// Longest access token or resume token.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Longest `ping` id, as JSON.
pub const MAX_PING_ID_BYTES: usize = 64;

/// Limits on what the server stores and repeats to others: a name is shown
/// to every member, track ids go into every `joined`, so each is bounded
/// (a room's `joined` stays small however its members fill them) and holds
/// no control characters (NUL, line breaks, terminal escapes).
fn check_lengths(m: &ClientMessage) -> Result<(), String> {
    fn id(what: &str, v: &str) -> Result<(), String> {
        if v.len() > MAX_ID_BYTES {
            return Err(format!("`{what}` is longer than {MAX_ID_BYTES} bytes"));
        }
        if v.chars().any(char::is_control) {
            return Err(format!("`{what}` holds control characters"));
        }
        Ok(())
    }
    match m {
        ClientMessage::Offer { target, .. }
        | ClientMessage::Answer { target, .. }
        | ClientMessage::IceCandidate { target, .. } => {
            if let Some(t) = target {
                id("target", t)?;
            }
        }
        ClientMessage::Join {
            room,
            token,
            name,
            resume,
            ..
        } => {
            if room.len() > crate::ids::RoomName::MAX_LEN {
                return Err(format!(
                    "`room` is longer than {} bytes",
                    crate::ids::RoomName::MAX_LEN
                ));
            }
            for (what, t) in [("token", token), ("resume", resume)] {
                if t.as_ref().is_some_and(|t| t.len() > MAX_TOKEN_BYTES) {
                    return Err(format!("`{what}` is longer than {MAX_TOKEN_BYTES} bytes"));
                }
            }
            if let Some(n) = name {
                check_name(n)?;
            }
        }
        ClientMessage::MediaState { tracks, .. } => {
            if tracks.len() > MAX_TRACKS {
                return Err(format!("at most {MAX_TRACKS} tracks"));
            }
            for t in tracks {
                id("tracks[].id", &t.id)?;
            }
        }
        ClientMessage::Ping { id: Some(v) } if v.to_string().len() > MAX_PING_ID_BYTES => {
            return Err(format!("`id` is longer than {MAX_PING_ID_BYTES} bytes"));
        }
        _ => {}
    }
    Ok(())
}

/// A display name: at most [`MAX_NAME_CHARS`] characters, none of them a
/// control character.
pub fn check_name(n: &str) -> Result<(), String> {
    if n.chars().count() > MAX_NAME_CHARS {
        return Err(format!("`name` is longer than {MAX_NAME_CHARS} characters"));
    }
    if n.chars().any(char::is_control) {
        return Err("`name` holds control characters".into());
    }
    Ok(())
}

/// A participant as other members see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub id: ClientId,
    pub name: String,
    pub media: MediaState,
    /// What the participant's token lets it do: one without `publish` is a
    /// viewer, and others can show it as one rather than as a silent camera.
    pub permissions: Permissions,
}

/// An ICE server handed to clients in `joined` (the browser's `RTCIceServer`),
/// as configured under `[[ice.servers]]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A message from the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    /// First message on every connection.
    #[serde(rename_all = "camelCase")]
    Registered { client_id: ClientId },
    /// Answer to `list-clients`.
    ClientsList { clients: Vec<ClientId> },
    /// Answer to `join`.
    #[serde(rename_all = "camelCase")]
    Joined {
        client_id: ClientId,
        room: String,
        mode: RoomMode,
        name: String,
        participants: Vec<ParticipantInfo>,
        ice_servers: Vec<IceServer>,
        permissions: Permissions,
        /// Secret to send as `resume` in a `join` on a new socket after a drop.
        resume_token: String,
        /// True when this join took back an earlier place.
        resumed: bool,
        /// True when the place was taken back from another node of the
        /// cluster: the media connection with that node is gone, so the
        /// client opens a new one (as after a fresh join).
        #[serde(default, skip_serializing_if = "is_false")]
        moved: bool,
        /// The node serving this participant, in a cluster.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<NodeId>,
    },
    /// Answer to a `join` with `redirect: true` that another node of the
    /// cluster should serve: join there instead (this socket stays open
    /// and out of any room; close it).
    Redirect {
        url: String,
        node: NodeId,
        room: String,
    },
    /// This node is shutting down: join `url` with `resume` (the place,
    /// media state and id are kept), then close this socket once the new
    /// connection carries media. Sent only to clients that joined with
    /// `redirect: true`.
    Move {
        url: String,
        node: NodeId,
        room: String,
    },
    /// Someone joined your room.
    ParticipantJoined { participant: ParticipantInfo },
    /// Someone left your room (left, hung up, or lost the connection).
    ParticipantLeft { id: ClientId },
    /// Answer to `leave`.
    Left { room: String },
    /// A member's media state changed.
    MediaState { from: ClientId, media: MediaState },
    /// SDP offer from the server's media plane (SFU rooms).
    Offer { sdp: String },
    /// SDP answer from the server's media plane (SFU rooms).
    Answer { sdp: String },
    /// ICE candidate from the server's media plane (SFU rooms).
    IceCandidate { candidate: Option<IceCandidate> },
    /// Who speaks in the room, loudest first (SFU rooms).
    ActiveSpeakers {
        speakers: Vec<crate::media::Speaker>,
    },
    /// Which encodings of one of your tracks anyone receives (SFU rooms,
    /// dynacast): set the others inactive.
    PublisherEncodings {
        track: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mid: Option<String>,
        encodings: Vec<crate::media::EncodingState>,
    },
    /// A track you receive was paused by the server because your downlink
    /// cannot carry even its lowest layer (`paused: true`, `reason:
    /// "bandwidth"`), or it flows again (`paused: false`). SFU rooms.
    StreamState {
        participant: String,
        track: String,
        paused: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Answer to `ping`.
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Value>,
    },
    /// A request could not be served. The connection stays open.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ServerMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>, request: Option<&str>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
            request: request.map(str::to_owned),
        }
    }
}

/// One frame to send: a typed message, or a client's message relayed whole.
#[derive(Clone, Debug, PartialEq)]
pub enum Outgoing {
    Message(ServerMessage),
    Relay(Map<String, Value>),
}

impl Outgoing {
    pub fn to_json(&self) -> String {
        match self {
            Outgoing::Message(m) => serde_json::to_string(m).unwrap_or_default(),
            Outgoing::Relay(v) => serde_json::to_string(v).unwrap_or_default(),
        }
    }
}

impl From<ServerMessage> for Outgoing {
    fn from(m: ServerMessage) -> Self {
        Outgoing::Message(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_and_repeated_fields_are_bounded() {
        let long = "x".repeat(MAX_ID_BYTES + 1);
        let cases = [
            format!(
                r#"{{"type":"join","room":"r","name":"{}"}}"#,
                "n".repeat(MAX_NAME_CHARS + 1)
            ),
            r#"{"type":"join","room":"r","name":"a\u0000b"}"#.to_string(),
            r#"{"type":"join","room":"r","name":"line\nbreak"}"#.to_string(),
            r#"{"type":"join","room":"r","name":"esc\u001b[31m"}"#.to_string(),
            format!(
                r#"{{"type":"join","room":"r","token":"{}"}}"#,
                "t".repeat(MAX_TOKEN_BYTES + 1)
            ),
            format!(r#"{{"type":"offer","target":"{long}","sdp":"v=0"}}"#),
            format!(
                r#"{{"type":"media-state","microphone":true,"camera":true,"tracks":[{{"id":"{long}","source":"camera"}}]}}"#
            ),
            format!(
                r#"{{"type":"media-state","microphone":true,"camera":true,"tracks":[{}]}}"#,
                vec![r#"{"id":"a","source":"camera"}"#; MAX_TRACKS + 1].join(",")
            ),
            format!(
                r#"{{"type":"ping","id":"{}"}}"#,
                "p".repeat(MAX_PING_ID_BYTES)
            ),
        ];
        for c in &cases {
            let e = parse_client_message(c).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidMessage, "{c}");
        }
        // At the limits, and names in any script, are fine.
        let ok = [
            format!(
                r#"{{"type":"join","room":"r","name":"{}"}}"#,
                "é".repeat(MAX_NAME_CHARS)
            ),
            r#"{"type":"join","room":"r","name":"Zoë 李"}"#.to_string(),
            format!(
                r#"{{"type":"ping","id":"{}"}}"#,
                "p".repeat(MAX_PING_ID_BYTES - 2)
            ),
        ];
        for c in &ok {
            assert!(parse_client_message(c).is_ok(), "{c}");
        }
    }

    #[test]
    fn parses_classic_offer_with_extra_fields() {
        let inc =
            parse_client_message(r#"{"type":"offer","target":"x","sdp":"v=0","extra":1}"#).unwrap();
        assert_eq!(
            inc.message,
            ClientMessage::Offer {
                target: Some("x".into()),
                sdp: Value::from("v=0")
            }
        );
        assert_eq!(inc.raw.get("extra"), Some(&Value::from(1)));
    }

    #[test]
    fn sdp_may_be_text_or_the_description_object() {
        let text = Value::from("v=0\r\n");
        assert_eq!(sdp_text(&text, "offer").unwrap(), "v=0\r\n");
        let obj: Value = serde_json::from_str(r#"{"type":"offer","sdp":"v=0\r\n"}"#).unwrap();
        assert_eq!(sdp_text(&obj, "offer").unwrap(), "v=0\r\n");
        let untyped: Value = serde_json::from_str(r#"{"sdp":"v=0"}"#).unwrap();
        assert_eq!(sdp_text(&untyped, "answer").unwrap(), "v=0");
        for bad in [
            r#"{"type":"answer","sdp":"v=0"}"#,
            r#"{"type":"offer"}"#,
            r#"{"type":"offer","sdp":5}"#,
            r#"{"type":7,"sdp":"v=0"}"#,
            r#"42"#,
            r#"null"#,
            r#"["v=0"]"#,
        ] {
            let v: Value = serde_json::from_str(bad).unwrap();
            assert!(sdp_text(&v, "offer").is_err(), "{bad}");
        }
    }

    #[test]
    fn classic_object_shapes_parse_for_relay() {
        let offer = r#"{"type":"offer","target":"b","sdp":{"type":"offer","sdp":"v=0\r\n"}}"#;
        let inc = parse_client_message(offer).unwrap();
        assert!(matches!(
            inc.message,
            ClientMessage::Offer {
                sdp: Value::Object(_),
                ..
            }
        ));
        let cand = r#"{"type":"ice-candidate","target":"b","candidate":{"candidate":"candidate:1 1 UDP 2122260223 10.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}"#;
        let inc = parse_client_message(cand).unwrap();
        assert_eq!(inc.raw["candidate"]["sdpMLineIndex"], Value::from(0));
    }

    #[test]
    fn rejects_bad_input_with_codes() {
        let cases = [
            ("{not json", ErrorCode::BadJson, None),
            ("[1,2]", ErrorCode::InvalidMessage, None),
            (r#"{"sdp":"x"}"#, ErrorCode::InvalidMessage, None),
            (r#"{"type":5}"#, ErrorCode::InvalidMessage, None),
            (r#"{"type":"dance"}"#, ErrorCode::UnknownType, Some("dance")),
            (
                r#"{"type":"offer","target":"x"}"#,
                ErrorCode::InvalidMessage,
                Some("offer"),
            ),
            (
                r#"{"type":"join","room":7}"#,
                ErrorCode::InvalidMessage,
                Some("join"),
            ),
            (
                r#"{"type":"join","room":"a","mode":"mesh"}"#,
                ErrorCode::InvalidMessage,
                Some("join"),
            ),
            (
                r#"{"type":"media-state","microphone":"yes","camera":true}"#,
                ErrorCode::InvalidMessage,
                Some("media-state"),
            ),
        ];
        for (text, code, request) in cases {
            let err = parse_client_message(text).unwrap_err();
            assert_eq!(err.code, code, "{text}");
            assert_eq!(err.request.as_deref(), request, "{text}");
        }
    }

    #[test]
    fn server_messages_have_wire_names() {
        let m = ServerMessage::Registered {
            client_id: ClientId::from_string("abc"),
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"registered","clientId":"abc"}"#
        );
        let m = ServerMessage::ClientsList {
            clients: vec![ClientId::from_string("b")],
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"clients-list","clients":["b"]}"#
        );
        let e = ServerMessage::error(ErrorCode::RoomFull, "full", Some("join"));
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"error","code":"room_full","message":"full","request":"join"}"#
        );
    }
}
