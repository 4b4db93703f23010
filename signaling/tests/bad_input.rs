//! Bad input gets an `error` (or a close code) and loses nothing.

mod common;
use common::*;
use serde_json::json;
use signaling::config::SignalingConfig;
use signaling::protocol::RoomMode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use futures::SinkExt;

#[tokio::test]
async fn malformed_messages_get_errors_and_the_socket_stays_open() {
    let s = dev_server().await;
    let mut a = Client::connect(s.addr).await;
    let mut b = Client::connect(s.addr).await;
    a.join("r", "A").await;
    b.join("r", "B").await;

    let cases: Vec<(String, &str, Option<&str>)> = vec![
        ("{oops".into(), "bad_json", None),
        ("\"just a string\"".into(), "invalid_message", None),
        (
            json!({"sdp":"no type"}).to_string(),
            "invalid_message",
            None,
        ),
        (
            json!({"type":"teleport"}).to_string(),
            "unknown_type",
            Some("teleport"),
        ),
        (
            json!({"type":"offer","target":b.id}).to_string(),
            "invalid_message",
            Some("offer"),
        ),
        (
            // To the server (no target), `sdp` must be SDP text or a
            // description object; a relay carries whatever it holds.
            json!({"type":"answer","sdp":42}).to_string(),
            "invalid_message",
            Some("answer"),
        ),
        (
            json!({"type":"ice-candidate","target":b.id}).to_string(),
            "invalid_message",
            Some("ice-candidate"),
        ),
        (
            json!({"type":"join"}).to_string(),
            "invalid_message",
            Some("join"),
        ),
        (
            json!({"type":"media-state","camera":"on","microphone":true}).to_string(),
            "invalid_message",
            Some("media-state"),
        ),
        (
            json!({"type":"offer","target":"ffff","sdp":"x"}).to_string(),
            "unknown_target",
            Some("offer"),
        ),
    ];
    for (text, code, request) in cases {
        a.send_text(text.clone()).await;
        let e = a.recv_type("error").await;
        assert_eq!(e["code"], code, "{text} -> {e}");
        assert_eq!(e["request"].as_str(), request, "{text} -> {e}");
        assert!(!e["message"].as_str().unwrap().is_empty());
    }
    a.ws.send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(a.recv_type("error").await["code"], "invalid_message");

    // Nothing leaked to the other member, and both still work.
    b.silent().await;
    a.send(json!({"type":"offer","target":b.id.clone(),"sdp":"ok"}))
        .await;
    assert_eq!(b.recv_type("offer").await["from"], a.id.as_str());
}

#[tokio::test]
async fn messages_that_need_a_room_say_so() {
    let s = dev_server().await;
    let mut a = Client::connect(s.addr).await;
    let e = a.expect_error(json!({"type":"leave"}), "not_in_room").await;
    assert_eq!(e["request"], "leave");
    a.expect_error(
        json!({"type":"media-state","microphone":true,"camera":true}),
        "not_in_room",
    )
    .await;
}

#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    let mut cfg = SignalingConfig::default();
    cfg.rooms.default_mode = RoomMode::P2p;
    cfg.limits.max_message_bytes = 1024;
    let s = server(cfg).await;
    let mut a = Client::connect(s.addr).await;
    let mut b = Client::connect(s.addr).await;
    a.join("r", "A").await;
    b.join("r", "B").await;
    let big = json!({"type":"offer","target":b.id.clone(),"sdp":"x".repeat(2000)});
    a.send(big).await;
    let (code, reason) = a.closed().await;
    assert_eq!(code, CloseCode::Size);
    assert!(reason.contains("too big"), "{reason}");
    // The room is told, the other member keeps working.
    assert_eq!(b.recv_type("participant-left").await["id"], a.id.as_str());
    b.send(json!({"type":"ping"})).await;
    b.recv_type("pong").await;
}

#[tokio::test]
async fn message_flood_closes_with_1008() {
    let mut cfg = SignalingConfig::default();
    cfg.rooms.default_mode = RoomMode::P2p;
    cfg.limits.messages_per_second = 5;
    cfg.limits.message_burst = 20;
    let s = server(cfg).await;
    let mut a = Client::connect(s.addr).await;
    for i in 0..200 {
        if a.ws
            .send(Message::Text(
                json!({"type":"ping","id":i}).to_string().into(),
            ))
            .await
            .is_err()
        {
            break;
        }
    }
    let (code, reason) = a.closed().await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("rate"), "{reason}");
    let mut b = Client::connect(s.addr).await;
    b.send(json!({"type":"ping"})).await;
    b.recv_type("pong").await;
}

#[tokio::test]
async fn abrupt_disconnect_removes_the_participant_and_tells_the_room() {
    let (s, mut a, b, _) = pair_in_room(std::time::Duration::ZERO).await;
    let b_id = b.id.clone();
    // Drop the TCP stream without a close handshake.
    drop(b);
    assert_eq!(a.recv_type("participant-left").await["id"], b_id.as_str());
    assert_eq!(s.sig.stats().await.participants, 1);
}
