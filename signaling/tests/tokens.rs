//! Access tokens at join time, the development-mode endpoint and ICE servers.

mod common;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::json;
use signaling::auth::{Auth, Claims, Grants};
use signaling::config::{SignalingConfig, TurnConfig};
use signaling::protocol::IceServer;
use signaling::protocol::RoomMode;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(secret: &str, room: &str, exp: u64, grants: Grants) -> String {
    let keys = std::collections::BTreeMap::from([("main".to_string(), secret.to_string())]);
    let claims = Claims {
        sub: "alice".into(),
        room: Some(room.into()),
        name: Some("Alice".into()),
        grants,
        mode: None,
        exp,
        iat: now(),
    };
    Auth::new(keys).sign(&claims, Some("main")).unwrap()
}

async fn keyed_server() -> TestServer {
    let mut cfg = SignalingConfig::default();
    cfg.rooms.default_mode = RoomMode::P2p;
    keyed(&mut cfg);
    server(cfg).await
}

#[tokio::test]
async fn each_bad_token_has_its_own_code() {
    let s = keyed_server().await;
    let mut c = Client::connect(s.addr).await;
    let later = now() + 3600;
    c.expect_error(json!({"type":"join","room":"r"}), "token_required")
        .await;
    let expired = token("secret-main", "r", now() - 10, Grants::default());
    c.expect_error(
        json!({"type":"join","room":"r","token":expired}),
        "token_expired",
    )
    .await;
    let forged = token("not-the-secret", "r", later, Grants::default());
    c.expect_error(
        json!({"type":"join","room":"r","token":forged}),
        "token_invalid",
    )
    .await;
    c.expect_error(
        json!({"type":"join","room":"r","token":"garbage"}),
        "token_invalid",
    )
    .await;
    let other_room = token("secret-main", "other", later, Grants::default());
    c.expect_error(
        json!({"type":"join","room":"r","token":other_room}),
        "token_wrong_room",
    )
    .await;
    let no_join = token(
        "secret-main",
        "r",
        later,
        Grants {
            join: false,
            ..Grants::default()
        },
    );
    c.expect_error(
        json!({"type":"join","room":"r","token":no_join}),
        "permission_denied",
    )
    .await;
    assert_eq!(s.sig.stats().await.participants, 0);

    let good = token(
        "secret-main",
        "r",
        later,
        Grants {
            publish: false,
            ..Grants::default()
        },
    );
    c.send(json!({"type":"join","room":"r","token":good})).await;
    let j = c.recv_type("joined").await;
    assert_eq!(j["name"], "Alice", "display name from the token");
    assert_eq!(j["permissions"], json!({"publish":false,"subscribe":true}));

    // The others see it as a viewer, in `joined` and in `participant-joined`.
    let full = token("secret-main", "r", later, Grants::default());
    let mut d = Client::connect(s.addr).await;
    d.send(json!({"type":"join","room":"r","token":full})).await;
    let jd = d.recv_type("joined").await;
    assert_eq!(
        jd["participants"][0]["permissions"],
        json!({"publish":false,"subscribe":true})
    );
    let ev = c.recv_type("participant-joined").await;
    assert_eq!(
        ev["participant"]["permissions"],
        json!({"publish":true,"subscribe":true})
    );
}

#[tokio::test]
async fn token_on_the_websocket_url_is_used_for_join() {
    let s = keyed_server().await;
    let t = token("secret-main", "r", now() + 60, Grants::default());
    let mut c = Client::connect_url(&format!("ws://{}/ws?token={t}", s.addr)).await;
    c.send(json!({"type":"join","room":"r"})).await;
    assert_eq!(c.recv_type("joined").await["room"], "r");
}

#[tokio::test]
async fn development_mode_mints_tokens_and_keyed_mode_refuses() {
    let dev = dev_server().await;
    let http = reqwest_post(dev.addr, r#"{"room":"demo","name":"Dee","identity":"dee"}"#).await;
    assert_eq!(http.0, 200);
    let body: serde_json::Value = serde_json::from_str(&http.1).unwrap();
    let t = body["token"].as_str().unwrap();
    let mut c = Client::connect(dev.addr).await;
    c.send(json!({"type":"join","room":"demo","token":t})).await;
    assert_eq!(c.recv_type("joined").await["name"], "Dee");
    // The minted token is still bound to its room.
    let mut d = Client::connect(dev.addr).await;
    d.expect_error(
        json!({"type":"join","room":"elsewhere","token":t}),
        "token_wrong_room",
    )
    .await;

    let bad = reqwest_post(dev.addr, r#"{"room":"bad room"}"#).await;
    assert_eq!(bad.0, 400);
    assert!(bad.1.contains("invalid_room"));
    let bad = reqwest_post(dev.addr, "{").await;
    assert_eq!(bad.0, 400);
    assert!(bad.1.contains("invalid_message"));

    let keyed = keyed_server().await;
    let refused = reqwest_post(keyed.addr, r#"{"room":"demo"}"#).await;
    assert_eq!(refused.0, 403);
    assert!(refused.1.contains("permission_denied"));
}

#[tokio::test]
async fn joined_carries_configured_ice_servers_and_turn_credentials() {
    let mut cfg = SignalingConfig::default();
    cfg.rooms.default_mode = RoomMode::P2p;
    cfg.ice.servers.push(IceServer {
        urls: vec!["stun:127.0.0.1:3478".into()],
        username: None,
        credential: None,
    });
    cfg.ice.turn = Some(TurnConfig {
        urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
        secret: "turn-secret".into(),
        ttl: std::time::Duration::from_secs(600),
    });
    let s = server(cfg).await;
    let mut c = Client::connect(s.addr).await;
    let j = c.join("r", "A").await;
    let ice = j["iceServers"].as_array().unwrap();
    assert_eq!(ice[0], json!({"urls":["stun:127.0.0.1:3478"]}));
    let user = ice[1]["username"].as_str().unwrap();
    let (expiry, identity) = user.split_once(':').unwrap();
    let expiry: u64 = expiry.parse().unwrap();
    assert!(expiry > now() + 500 && expiry <= now() + 601, "{expiry}");
    assert_eq!(identity, c.id);
    let (_, cred) = signaling::auth::turn_credentials("turn-secret", identity, expiry);
    assert_eq!(ice[1]["credential"], cred.as_str());
}

/// A minimal HTTP/1.1 POST to /api/token: (status, body).
async fn reqwest_post(addr: std::net::SocketAddr, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /api/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
