//! With API keys configured, the classic protocol (relaying by `target` and
//! `list-clients` outside rooms) is not open to anyone who connects: it
//! needs a token on the socket's URL, or is off (`[auth] classic_protocol`).

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::json;
use signaling::auth::{Auth, Claims, Grants};
use signaling::config::{ClassicProtocol, SignalingConfig};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(exp: u64) -> String {
    let keys = std::collections::BTreeMap::from([("main".to_string(), "secret-main".to_string())]);
    let claims = Claims {
        sub: "classic".into(),
        room: Some("any".into()),
        name: None,
        grants: Grants::default(),
        mode: None,
        exp,
        iat: now(),
    };
    Auth::new(keys).sign(&claims, Some("main")).unwrap()
}

async fn keyed(mode: ClassicProtocol) -> TestServer {
    let mut cfg = SignalingConfig::default();
    common::keyed(&mut cfg);
    cfg.auth.classic_protocol = mode;
    server(cfg).await
}

#[tokio::test]
async fn without_a_token_nothing_is_listed_or_relayed() {
    let s = keyed(ClassicProtocol::Auto).await;
    let mut anon = Client::connect(s.addr).await;
    let t = token(now() + 60);
    let mut member = Client::connect_url(&format!("ws://{}/ws?token={t}", s.addr)).await;
    anon.expect_error(json!({"type":"list-clients"}), "permission_denied")
        .await;
    let e = anon
        .expect_error(
            json!({"type":"offer","target":member.id,"sdp":"v=0"}),
            "permission_denied",
        )
        .await;
    assert_eq!(e["request"], "offer");
    member.silent().await;
    // The unauthenticated socket is not listed to those with a token, and
    // cannot be sent to.
    member.send(json!({"type":"list-clients"})).await;
    let list = member.recv_type("clients-list").await;
    assert_eq!(list["clients"], json!([]));
    member
        .expect_error(
            json!({"type":"offer","target":anon.id,"sdp":"v=0"}),
            "unknown_target",
        )
        .await;
}

#[tokio::test]
async fn sockets_with_a_token_list_and_relay_to_each_other() {
    let s = keyed(ClassicProtocol::Token).await;
    let t = token(now() + 60);
    let mut a = Client::connect_url(&format!("ws://{}/ws?token={t}", s.addr)).await;
    let mut b = Client::connect_url(&format!("ws://{}/ws?token={t}", s.addr)).await;
    // An expired token counts as none.
    let old = token(now() - 10);
    let mut late = Client::connect_url(&format!("ws://{}/ws?token={old}", s.addr)).await;
    late.expect_error(json!({"type":"list-clients"}), "permission_denied")
        .await;
    a.send(json!({"type":"list-clients"})).await;
    assert_eq!(a.recv_type("clients-list").await["clients"], json!([b.id]));
    a.send(json!({"type":"offer","target":b.id,"sdp":"v=0"}))
        .await;
    let got = b.recv_type("offer").await;
    assert_eq!(got["from"], a.id.as_str());
}

#[tokio::test]
async fn off_means_rooms_only_even_with_a_token() {
    let s = keyed(ClassicProtocol::Off).await;
    let t = token(now() + 60);
    let mut a = Client::connect_url(&format!("ws://{}/ws?token={t}", s.addr)).await;
    let e = a
        .expect_error(json!({"type":"list-clients"}), "permission_denied")
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("join a room"),
        "{e}"
    );
}

#[tokio::test]
async fn development_mode_keeps_the_classic_protocol_open() {
    let s = dev_server().await;
    let mut a = Client::connect(s.addr).await;
    let b = Client::connect(s.addr).await;
    a.send(json!({"type":"list-clients"})).await;
    assert_eq!(a.recv_type("clients-list").await["clients"], json!([b.id]));
}
