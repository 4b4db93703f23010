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
        /// The bot's own participant id (`clientId`).
        client_id: Option<String>,
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
        /// The request type the error answers, when the server names it.
        request: Option<String>,
    },
    /// Dynacast: which encodings of the bot's own track `track` anyone
    /// receives, as (rid, active); a rid of `None` names a track's single
    /// encoding.
    PublisherEncodings {
        track: String,
        encodings: Vec<(Option<String>, bool)>,
    },
    /// Who speaks in the room, loudest first: (participant id, level).
    ActiveSpeakers {
        speakers: Vec<(String, f64)>,
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
            client_id: msg
                .get("clientId")
                .and_then(Value::as_str)
                .map(str::to_owned),
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
            request: msg
                .get("request")
                .and_then(Value::as_str)
                .map(str::to_owned),
        },
        "publisher-encodings" => ServerMsg::PublisherEncodings {
            track: msg.get("track")?.as_str()?.to_owned(),
            encodings: msg
                .get("encodings")?
                .as_array()?
                .iter()
                .map(|e| {
                    let rid = match e.get("rid") {
                        None | Some(Value::Null) => None,
                        Some(r) => Some(r.as_str()?.to_owned()),
                    };
                    Some((rid, e.get("active")?.as_bool()?))
                })
                .collect::<Option<Vec<_>>>()?,
        },
        "active-speakers" => ServerMsg::ActiveSpeakers {
            speakers: msg
                .get("speakers")?
                .as_array()?
                .iter()
                .map(|s| {
                    Some((
                        s.get("id")?.as_str()?.to_owned(),
                        s.get("level").and_then(Value::as_f64).unwrap_or(0.0),
                    ))
                })
                .collect::<Option<Vec<_>>>()?,
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

/// The video tracks an SFU offer sends the bot, as (stream id, track id)
/// from the `a=msid` lines of its video sections that send (`sendonly` or
/// `sendrecv`, port not 0). In an SFU room the stream id is the publisher's
/// participant id and the track id the publisher's, which is what
/// `track-settings` names.
pub fn offered_video_tracks(sdp: &str) -> Vec<(String, String)> {
    /// What is known of the video section being read.
    struct Section {
        rejected: bool,
        sends: bool,
        msid: Option<(String, String)>,
    }
    fn flush(section: &mut Option<Section>, out: &mut Vec<(String, String)>) {
        if let Some(Section {
            rejected: false,
            sends: true,
            msid: Some(ids),
        }) = section.take()
        {
            if !out.contains(&ids) {
                out.push(ids);
            }
        }
    }
    let mut out = Vec::new();
    let mut section: Option<Section> = None;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            flush(&mut section, &mut out);
            let mut f = m.split_whitespace();
            if f.next() == Some("video") {
                // A section without a direction attribute is sendrecv.
                section = Some(Section {
                    rejected: f.next() == Some("0"),
                    sends: true,
                    msid: None,
                });
            }
            continue;
        }
        let Some(sec) = section.as_mut() else {
            continue;
        };
        match line {
            "a=sendonly" | "a=sendrecv" => sec.sends = true,
            "a=recvonly" | "a=inactive" => sec.sends = false,
            _ => {
                if let Some(v) = line.strip_prefix("a=msid:") {
                    let mut ids = v.split_whitespace();
                    if let (Some(stream), Some(track)) = (ids.next(), ids.next()) {
                        if stream != "-" && sec.msid.is_none() {
                            sec.msid = Some((stream.to_owned(), track.to_owned()));
                        }
                    }
                }
            }
        }
    }
    flush(&mut section, &mut out);
    out
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
                client_id: None,
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
            r#"{"type":"publisher-encodings","encodings":[]}"#,
            r#"{"type":"publisher-encodings","track":"t","encodings":[{"rid":"q"}]}"#,
            r#"{"type":"publisher-encodings","track":"t","encodings":[{"rid":5,"active":true}]}"#,
            r#"{"type":"active-speakers","speakers":[{"level":1}]}"#,
            r#"{"type":"active-speakers"}"#,
        ] {
            assert_eq!(parse(t), None, "{t}");
        }
        assert_eq!(parse(r#"{"type":"pong"}"#), Some(ServerMsg::Other));
        assert_eq!(
            parse(r#"{"type":"joined","mode":"mesh"}"#),
            Some(ServerMsg::Joined {
                client_id: None,
                mode: None,
                participants: vec![]
            })
        );
    }

    #[test]
    fn reads_adaptive_media_events() {
        assert_eq!(
            parse(
                r#"{"type":"publisher-encodings","track":"t1","encodings":[{"rid":"q","active":true},{"rid":"f","active":false},{"active":true}]}"#
            ),
            Some(ServerMsg::PublisherEncodings {
                track: "t1".into(),
                encodings: vec![
                    (Some("q".into()), true),
                    (Some("f".into()), false),
                    (None, true)
                ]
            })
        );
        assert_eq!(
            parse(r#"{"type":"active-speakers","speakers":[{"id":"a","level":0.8},{"id":"b"}]}"#),
            Some(ServerMsg::ActiveSpeakers {
                speakers: vec![("a".into(), 0.8), ("b".into(), 0.0)]
            })
        );
        assert_eq!(
            parse(
                r#"{"type":"error","code":"invalid_message","message":"m","request":"track-settings"}"#
            ),
            Some(ServerMsg::Error {
                code: "invalid_message".into(),
                message: "m".into(),
                request: Some("track-settings".into())
            })
        );
        assert!(matches!(
            parse(r#"{"type":"joined","clientId":"me"}"#),
            Some(ServerMsg::Joined { client_id: Some(id), .. }) if id == "me"
        ));
    }

    #[test]
    fn finds_the_video_tracks_an_offer_sends() {
        let sdp = "v=0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=sendonly\r\n\
            a=msid:alice alice-audio\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
            a=mid:1\r\n\
            a=sendonly\r\n\
            a=msid:alice alice-video\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
            a=recvonly\r\n\
            a=msid:me me-video\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 96\r\n\
            a=sendonly\r\n\
            a=msid:gone gone-video\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
            a=msid:bob bob-video\r\n\
            a=msid:bob other\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
            a=sendonly\r\n\
            a=msid:- nostream\r\n\
            m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
            a=msid:x y\r\n";
        assert_eq!(
            offered_video_tracks(sdp),
            vec![
                ("alice".to_owned(), "alice-video".to_owned()),
                ("bob".to_owned(), "bob-video".to_owned())
            ]
        );
        assert!(offered_video_tracks("").is_empty());
        assert!(offered_video_tracks("m=video\na=msid:").is_empty());
    }
}
