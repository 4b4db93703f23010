//! What a bot reads from the server's WebSocket, parsed once into values.
//! The server (or whoever answers on its port) is not trusted: a frame that
//! does not parse, or a field of the wrong shape, is ignored rather than
//! taken as a default that would steer the bot.

use serde_json::Value;
use signaling::protocol::{IceCandidate, RoomMode};

/// One server message, as far as a bot acts on it.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerMsg {
    /// The bot is in the room; `participants` are the others already there.
    Joined {
        mode: Option<RoomMode>,
        participants: Vec<String>,
    },
    Offer {
        from: Option<String>,
        sdp: String,
    },
    Answer {
        from: Option<String>,
        sdp: String,
    },
    Candidate {
        from: Option<String>,
        candidate: IceCandidate,
    },
    ParticipantLeft {
        id: String,
    },
    /// A cluster sends the bot to the node serving its room: the node's
    /// WebSocket address, `host:port` of a `ws://` URL.
    Redirect {
        addr: std::net::SocketAddr,
    },
    Error {
        code: String,
        message: String,
    },
    /// Anything else: valid JSON the bot has no use for.
    Other,
}

/// Parses one text frame; `None` when it is not a JSON object with a
/// string `type`.
pub fn parse(text: &str) -> Option<ServerMsg> {
    let msg: Value = serde_json::from_str(text).ok()?;
    let ty = msg.get("type")?.as_str()?;
    let from = msg.get("from").and_then(Value::as_str).map(str::to_owned);
    let sdp = || {
        match msg.get("sdp") {
            Some(Value::String(s)) => Some(s.clone()),
            // The browser's description object, as other clients send it.
            Some(Value::Object(o)) => o.get("sdp").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        }
    };
    Some(match ty {
        "joined" => ServerMsg::Joined {
            mode: msg
                .get("mode")
                .and_then(|m| serde_json::from_value(m.clone()).ok()),
            participants: msg
                .get("participants")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.get("id").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        },
        "offer" => ServerMsg::Offer { from, sdp: sdp()? },
        "answer" => ServerMsg::Answer { from, sdp: sdp()? },
        "ice-candidate" => ServerMsg::Candidate {
            from,
            candidate: serde_json::from_value(msg.get("candidate")?.clone()).ok()?,
        },
        "participant-left" => ServerMsg::ParticipantLeft {
            id: msg.get("id")?.as_str()?.to_owned(),
        },
        "redirect" => ServerMsg::Redirect {
            addr: ws_addr(msg.get("url")?.as_str()?)?,
        },
        "error" => ServerMsg::Error {
            code: msg
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned(),
            message: msg
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        },
        _ => ServerMsg::Other,
    })
}

/// `host:port` of a `ws://host:port/ws` URL with a numeric host.
fn ws_addr(url: &str) -> Option<std::net::SocketAddr> {
    let rest = url.strip_prefix("ws://")?;
    let hostport = rest.split('/').next()?;
    hostport.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_server_sends() {
        let j = parse(
            r#"{"type":"joined","mode":"p2p","participants":[{"id":"a"},{"x":1},{"id":"b"}]}"#,
        );
        assert_eq!(
            j,
            Some(ServerMsg::Joined {
                mode: Some(RoomMode::P2p),
                participants: vec!["a".into(), "b".into()]
            })
        );
        let o = parse(r#"{"type":"offer","from":"a","sdp":{"type":"offer","sdp":"v=0"}}"#);
        assert_eq!(
            o,
            Some(ServerMsg::Offer {
                from: Some("a".into()),
                sdp: "v=0".into()
            })
        );
        let c = parse(r#"{"type":"ice-candidate","candidate":{"candidate":"c","sdpMid":"0"}}"#);
        assert!(matches!(c, Some(ServerMsg::Candidate { from: None, .. })));
        let r =
            parse(r#"{"type":"redirect","url":"ws://127.0.0.1:7990/ws","node":"n2","room":"r"}"#);
        assert_eq!(
            r,
            Some(ServerMsg::Redirect {
                addr: "127.0.0.1:7990".parse().unwrap()
            })
        );
    }

    #[test]
    fn ignores_what_is_malformed() {
        for t in [
            "",
            "[]",
            "{}",
            r#"{"type":5}"#,
            r#"{"type":"offer"}"#,
            r#"{"type":"offer","sdp":7}"#,
            r#"{"type":"ice-candidate","candidate":"x"}"#,
            r#"{"type":"participant-left","id":null}"#,
            r#"{"type":"redirect","url":"wss://example.com/ws"}"#,
            r#"{"type":"redirect","url":"ws://example.com/ws"}"#,
            r#"{"type":"redirect"}"#,
        ] {
            assert_eq!(parse(t), None, "{t}");
        }
        assert_eq!(parse(r#"{"type":"pong"}"#), Some(ServerMsg::Other));
        assert_eq!(
            parse(r#"{"type":"joined","mode":"mesh"}"#),
            Some(ServerMsg::Joined {
                mode: None,
                participants: vec![]
            })
        );
    }
}
