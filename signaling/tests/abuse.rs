//! Attacks on the signaling server over real sockets, each asserting the
//! protection that stops it: slow readers, idle and half-open connections,
//! connection floods from one address, oversized fragmented messages,
//! WebSocket protocol violations, foreign origins, statistics without the
//! token, and oversized or control-character fields.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use futures::SinkExt;
use serde_json::json;
use signaling::config::SignalingConfig;
use signaling::protocol::RoomMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

fn p2p() -> SignalingConfig {
    let mut cfg = SignalingConfig::default();
    cfg.rooms.default_mode = RoomMode::P2p;
    cfg.rooms.reconnect_grace = Duration::ZERO;
    cfg
}

/// Reads until the peer closes the TCP connection; true if it did within
/// `LONG` (whatever it sent first).
async fn tcp_closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let end = tokio::time::Instant::now() + LONG;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// A WebSocket opened by hand, so the test can send frames no well-behaved
/// library would.
async fn raw_ws(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut b).await.unwrap(),
            1,
            "server closed during upgrade"
        );
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// One client-to-server frame: `first` is FIN/RSV/opcode, masked unless
/// `mask` is false.
fn frame(first: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mut f = vec![first];
    let m = if mask { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(m | n as u8),
        n => {
            f.push(m | 126);
            f.extend((n as u16).to_be_bytes());
        }
    }
    if mask {
        let key = [1u8, 2, 3, 4];
        f.extend(key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend(payload);
    }
    f
}

/// Reads server frames until a close frame; returns its code, or `None`
/// when the connection ended without one.
async fn close_code(s: &mut TcpStream) -> Option<u16> {
    let end = tokio::time::Instant::now() + LONG;
    loop {
        let mut h = [0u8; 2];
        match tokio::time::timeout_at(end, s.read_exact(&mut h)).await {
            Ok(Ok(_)) => {}
            _ => return None,
        }
        let mut len = u64::from(h[1] & 0x7f);
        if len == 126 {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.ok()?;
            len = u64::from(u16::from_be_bytes(l));
        } else if len == 127 {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).await.ok()?;
            len = u64::from_be_bytes(l);
        }
        let mut payload = vec![0u8; len as usize];
        s.read_exact(&mut payload).await.ok()?;
        if h[0] & 0x0f == 0x8 {
            return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
        }
    }
}

#[tokio::test]
async fn slow_reader_is_closed_leaves_its_room_and_its_queue_is_freed() {
    let mut cfg = p2p();
    cfg.limits.write_timeout = Duration::from_millis(500);
    cfg.limits.messages_per_second = 100_000;
    cfg.limits.message_burst = 100_000;
    let s = server(cfg).await;
    let mut slow = Client::connect(s.addr).await;
    let mut b = Client::connect(s.addr).await;
    slow.join("r", "Slow").await;
    b.join("r", "B").await;
    slow.recv_type("participant-joined").await;
    assert_eq!(s.sig.open_sessions(), 2);
    // `slow` never reads again. B relays large offers to it until the
    // server gives up on it (its TCP window and then its queue fill).
    let sdp = "x".repeat(60_000);
    let mut left = None;
    for _ in 0..2_000 {
        let offer = json!({"type":"offer","target":slow.id,"sdp":sdp});
        b.send(offer).await;
        if let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(
            Duration::from_millis(5),
            futures::StreamExt::next(&mut b.ws),
        )
        .await
        {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "participant-left" {
                left = Some(v);
                break;
            }
        }
    }
    let left = match left {
        Some(v) => v,
        None => tokio::time::timeout(LONG, b.recv_type("participant-left"))
            .await
            .expect("the slow reader never left its room"),
    };
    assert_eq!(left["id"], slow.id.as_str());
    // Its session ended: the socket and every queued frame are dropped.
    assert!(
        eventually(async || s.sig.open_sessions() == 1).await,
        "the slow reader's session is still alive"
    );
    assert!(eventually(async || s.sig.stats().await.connections == 1).await);
    // The other member is served as before.
    b.send(json!({"type":"ping","id":1})).await;
    assert_eq!(b.recv_type("pong").await["id"], 1);
}

#[tokio::test]
async fn silent_socket_is_closed_with_1001_and_a_listening_one_stays() {
    let mut cfg = p2p();
    cfg.limits.idle_timeout = Duration::from_millis(600);
    let s = server(cfg).await;
    // Answers nothing, not even the server's pings.
    let mut silent = raw_ws(s.addr).await;
    assert_eq!(close_code(&mut silent).await, Some(1001));
    assert!(tcp_closed_by_server(&mut silent).await);
    assert!(eventually(async || s.sig.open_sessions() == 0).await);
    // A client whose library answers pings stays however long it is quiet.
    let mut quiet = Client::connect(s.addr).await;
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < until {
        // Reading lets the client library answer pings.
        let _ = tokio::time::timeout(
            Duration::from_millis(100),
            futures::StreamExt::next(&mut quiet.ws),
        )
        .await;
    }
    quiet.send(json!({"type":"ping","id":2})).await;
    assert_eq!(quiet.recv_type("pong").await["id"], 2);
}

#[tokio::test]
async fn half_sent_request_and_idle_connection_are_closed() {
    let mut cfg = p2p();
    cfg.limits.header_read_timeout = Duration::from_millis(500);
    let s = server(cfg).await;
    let mut half = TcpStream::connect(s.addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut nothing = TcpStream::connect(s.addr).await.unwrap();
    assert!(
        tcp_closed_by_server(&mut half).await,
        "half-sent request kept open"
    );
    assert!(
        tcp_closed_by_server(&mut nothing).await,
        "silent connection kept open"
    );
    // Whole requests are still served.
    let mut ok = TcpStream::connect(s.addr).await.unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    ok.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

#[tokio::test]
async fn connections_from_one_address_are_capped() {
    let mut cfg = p2p();
    cfg.limits.max_connections_per_ip = 3;
    let s = server(cfg).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(Client::connect(s.addr).await);
    }
    let mut extra = TcpStream::connect(s.addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(LONG, extra.read(&mut buf))
        .await
        .expect("over the cap, the connection was neither served nor closed")
        .unwrap_or(0);
    assert_eq!(
        n,
        0,
        "served over the cap: {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // A place frees when a connection closes.
    drop(held.pop());
    assert!(
        eventually(async || {
            let Ok(mut c) = TcpStream::connect(s.addr).await else {
                return false;
            };
            let _ = c
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await;
            let mut r = String::new();
            let _ = c.read_to_string(&mut r).await;
            r.starts_with("HTTP/1.1 200")
        })
        .await
    );
}

#[tokio::test]
async fn fragmented_message_is_refused_as_it_grows() {
    let mut cfg = p2p();
    cfg.limits.max_message_bytes = 1024;
    let s = server(cfg).await;
    let mut c = Client::connect(s.addr).await;
    let part = vec![b' '; 800];
    c.ws.send(Message::Frame(Frame::message(
        part.clone(),
        OpCode::Data(Data::Text),
        false,
    )))
    .await
    .unwrap();
    // The second fragment takes the message over the limit: no third is
    // waited for.
    c.ws.send(Message::Frame(Frame::message(
        part,
        OpCode::Data(Data::Continue),
        false,
    )))
    .await
    .unwrap();
    let (code, _) = c.closed().await;
    assert_eq!(code, CloseCode::Size);
}

#[tokio::test]
async fn binary_frames_count_against_the_rate_limit() {
    let mut cfg = p2p();
    cfg.limits.messages_per_second = 5;
    cfg.limits.message_burst = 20;
    let s = server(cfg).await;
    let mut c = Client::connect(s.addr).await;
    for _ in 0..200 {
        if c.ws
            .send(Message::Binary(vec![1, 2, 3].into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let (code, reason) = c.closed().await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("rate"), "{reason}");
}

#[tokio::test]
async fn protocol_violations_get_a_close_code() {
    let s = server(p2p()).await;
    // Text that is not UTF-8: 1007.
    let mut c = raw_ws(s.addr).await;
    c.write_all(&frame(0x81, &[0xff, 0xfe, 0x00], true))
        .await
        .unwrap();
    assert_eq!(close_code(&mut c).await, Some(1007));
    // An unmasked frame from a client: 1002.
    let mut c = raw_ws(s.addr).await;
    c.write_all(&frame(0x81, br#"{"type":"ping"}"#, false))
        .await
        .unwrap();
    assert_eq!(close_code(&mut c).await, Some(1002));
    // A reserved data opcode: 1002.
    let mut c = raw_ws(s.addr).await;
    c.write_all(&frame(0x83, b"x", true)).await.unwrap();
    assert_eq!(close_code(&mut c).await, Some(1002));
    // A reserved bit set: 1002.
    let mut c = raw_ws(s.addr).await;
    c.write_all(&frame(0xc1, b"x", true)).await.unwrap();
    assert_eq!(close_code(&mut c).await, Some(1002));
}

#[tokio::test]
async fn foreign_origins_cannot_open_the_websocket() {
    let mut cfg = p2p();
    cfg.auth.allowed_origins = vec!["https://app.example.com".into()];
    let s = server(cfg).await;
    let status = |origin: Option<&'static str>| async move {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        let o = origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "GET /ws HTTP/1.1\r\nHost: x\r\n{o}Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        c.write_all(req.as_bytes()).await.unwrap();
        let mut buf = [0u8; 12];
        c.read_exact(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[9..12]).into_owned()
    };
    assert_eq!(status(Some("https://evil.example.net")).await, "403");
    assert_eq!(status(Some("null")).await, "403");
    assert_eq!(status(Some("https://app.example.com")).await, "101");
    // Not a browser: no Origin, no check.
    assert_eq!(status(None).await, "101");
}

#[tokio::test]
async fn statistics_need_the_token_when_one_is_set() {
    let mut cfg = p2p();
    cfg.auth.stats_token = Some("stats-token-0123456789".into());
    let s = server(cfg).await;
    let get = |auth: Option<&'static str>| async move {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        let a = auth
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let req = format!("GET /api/stats HTTP/1.1\r\nHost: x\r\n{a}Connection: close\r\n\r\n");
        c.write_all(req.as_bytes()).await.unwrap();
        let mut r = String::new();
        c.read_to_string(&mut r).await.unwrap();
        r
    };
    assert!(get(None).await.starts_with("HTTP/1.1 401"));
    assert!(get(Some("wrong-token-0123456789"))
        .await
        .starts_with("HTTP/1.1 401"));
    let ok = get(Some("stats-token-0123456789")).await;
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.contains("signaling"),
        "{ok}"
    );
}

#[tokio::test]
async fn stored_fields_are_bounded_so_joined_stays_small() {
    let mut cfg = p2p();
    cfg.rooms.max_p2p_participants = 40;
    let s = server(cfg).await;
    let mut a = Client::connect(s.addr).await;
    a.join("r", "A").await;
    // A 60 KB track id, as in the amplification attack: refused.
    let big = json!({"type":"media-state","microphone":true,"camera":true,
        "tracks":[{"id":"x".repeat(60_000),"source":"camera"}]});
    a.expect_error(big, "invalid_message").await;
    // A name with NUL or terminal escapes: refused, not broadcast.
    let mut b = Client::connect(s.addr).await;
    b.expect_error(
        json!({"type":"join","room":"r","name":"evil\u{0}\u{1b}[2J"}),
        "invalid_message",
    )
    .await;
    a.silent().await;
    // Thirty members each storing what they may: `joined` stays small.
    let mut members = Vec::new();
    for i in 0..30 {
        let mut c = Client::connect(s.addr).await;
        c.join("big", &"n".repeat(64)).await;
        let tracks: Vec<_> = (0..16)
            .map(|t| json!({"id": format!("{i:02}{t:02}{}", "t".repeat(60)), "source":"camera"}))
            .collect();
        c.send(json!({"type":"media-state","microphone":true,"camera":true,"tracks":tracks}))
            .await;
        members.push(c);
    }
    let mut last = Client::connect(s.addr).await;
    // Let every media-state land before joining.
    for m in &mut members {
        m.send(json!({"type":"ping","id":0})).await;
        m.recv_type("pong").await;
    }
    last.send(json!({"type":"join","room":"big","name":"L"}))
        .await;
    let joined = last.recv_type("joined").await;
    let size = joined.to_string().len();
    assert_eq!(joined["participants"].as_array().unwrap().len(), 30);
    // 30 x (64-byte name + 16 x 64-byte ids + framing) stays near 40 KB,
    // not megabytes.
    assert!(size < 80_000, "joined is {size} bytes");
}
