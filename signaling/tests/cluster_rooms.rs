//! Rooms across the nodes of a cluster: two (or three) signaling nodes
//! sharing a real `redis-server`, clients over real WebSockets.

mod common;

use std::time::Duration;

use common::redis::RedisServer;
use common::{cluster_node, eventually, Client, TestServer};
use serde_json::{json, Value};
use signaling::config::SignalingConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn two_nodes(redis: &RedisServer, cfg: SignalingConfig) -> (TestServer, TestServer) {
    let n1 = cluster_node(&redis.url(), "n1", cfg.clone()).await;
    let n2 = cluster_node(&redis.url(), "n2", cfg).await;
    (n1, n2)
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    let status = text[9..12].parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Waits until the registry, read through `node`, lists both nodes and
/// n1's last heartbeat reports `n1_participants` participants.
async fn settle(node: std::net::SocketAddr, n1_participants: u64) {
    let mut view = Value::Null;
    let settled = eventually(async || {
        let status;
        (status, view) = http_get(node, "/api/cluster").await;
        let nodes = view["nodes"].as_array().cloned().unwrap_or_default();
        let n1 = nodes.iter().find(|n| n["id"] == "n1");
        status == 200
            && nodes.len() == 2
            && n1.is_some_and(|n| n["load"]["participants"].as_u64() == Some(n1_participants))
    })
    .await;
    assert!(settled, "the cluster did not settle: {view}");
}

#[tokio::test]
async fn members_on_two_nodes_see_each_other_and_talk_through_redis() {
    let redis = RedisServer::start();
    let mut cfg = SignalingConfig::default();
    cfg.rooms.max_p2p_participants = 2;
    let (n1, n2) = two_nodes(&redis, cfg).await;
    let mut a = Client::connect(n1.addr).await;
    let mut b = Client::connect(n2.addr).await;
    let ja = a.join("mesh", "Ann").await;
    assert_eq!(ja["node"], "n1");
    let jb = b.join("mesh", "Bob").await;
    assert_eq!(jb["node"], "n2");
    assert_eq!(jb["mode"], "p2p");
    assert_eq!(jb["participants"][0]["id"], a.id.as_str());
    assert_eq!(jb["participants"][0]["name"], "Ann");
    let ev = a.recv_type("participant-joined").await;
    assert_eq!(ev["participant"]["id"], b.id.as_str());

    // Media state, offers and candidates cross the nodes.
    a.send(json!({"type":"media-state","microphone":true,"camera":false}))
        .await;
    let ms = b.recv_type("media-state").await;
    assert_eq!(ms["from"], a.id.as_str());
    assert_eq!(ms["media"]["microphone"], true);
    a.send(json!({"type":"offer","target":b.id,"sdp":{"type":"offer","sdp":"v=0\r\n"},"extra":7}))
        .await;
    let offer = b.recv_type("offer").await;
    assert_eq!(offer["from"], a.id.as_str());
    assert_eq!(offer["sdp"]["sdp"], "v=0\r\n");
    assert_eq!(offer["extra"], 7);
    b.send(json!({"type":"ice-candidate","target":a.id,"candidate":{"candidate":"candidate:1 1 UDP 1 127.0.0.1 9 typ host","sdpMid":"0"}}))
        .await;
    let cand = a.recv_type("ice-candidate").await;
    assert_eq!(cand["from"], b.id.as_str());
    assert_eq!(cand["candidate"]["sdpMid"], "0");
    b.send(json!({"type":"list-clients"})).await;
    assert_eq!(b.recv_type("clients-list").await["clients"], json!([a.id]));

    // The mesh is full across both nodes.
    let mut c = Client::connect(n1.addr).await;
    c.send(json!({"type":"join","room":"mesh"})).await;
    let e = c.recv_type("error").await;
    assert_eq!(e["code"], "room_full");
    let mut d = Client::connect(n2.addr).await;
    d.expect_error(
        json!({"type":"join","room":"mesh","mode":"sfu"}),
        "mode_mismatch",
    )
    .await;

    // A late joiner sees media states set before it came.
    b.send(json!({"type":"leave"})).await;
    b.recv_type("left").await;
    let gone = a.recv_type("participant-left").await;
    assert_eq!(gone["id"], b.id.as_str());
    let jc = c.join("mesh", "Cy").await;
    assert_eq!(jc["participants"][0]["media"]["microphone"], true);
}

#[tokio::test]
async fn a_place_is_taken_back_on_another_node_without_the_room_noticing() {
    let redis = RedisServer::start();
    let mut cfg = SignalingConfig::default();
    cfg.rooms.reconnect_grace = Duration::from_secs(10);
    let (n1, n2) = two_nodes(&redis, cfg).await;
    let mut a = Client::connect(n1.addr).await;
    let mut b = Client::connect(n1.addr).await;
    let ja = a.join("r", "Ann").await;
    b.join("r", "Bob").await;
    a.recv_type("participant-joined").await;
    let token = ja["resumeToken"].as_str().unwrap().to_string();

    // Ann's socket is lost (no close frame), and she comes back on n2.
    drop(a);
    let mut a2 = Client::connect(n2.addr).await;
    a2.send(json!({"type":"join","room":"r","resume":token}))
        .await;
    let j = a2.recv_type("joined").await;
    assert_eq!(j["resumed"], true);
    assert_eq!(j["moved"], true);
    assert_eq!(j["clientId"], ja["clientId"]);
    assert_eq!(j["node"], "n2");
    assert_eq!(j["name"], "Ann");
    assert_eq!(j["participants"][0]["name"], "Bob");

    // Bob's messages reach her on n2 once n1 has heard of the move
    // (until then n1 holds her place and refuses them, as for any held
    // participant).
    let end = std::time::Instant::now() + Duration::from_secs(10);
    let offer = loop {
        b.send(json!({"type":"offer","target":ja["clientId"],"sdp":"v=0"}))
            .await;
        if let Ok(o) = tokio::time::timeout(Duration::from_millis(500), a2.recv_type("offer")).await
        {
            break o;
        }
        assert_eq!(b.recv_type("error").await["code"], "unknown_target");
        assert!(
            std::time::Instant::now() < end,
            "n1 never learnt of the move"
        );
    };
    assert_eq!(offer["from"], b.id.as_str());
    // And Bob never saw her leave.
    b.silent().await;
    // The token works once: another socket cannot take the place again
    // from n1 (the place is n2's now, and n1 has no hold).
    let mut thief = Client::connect(n1.addr).await;
    thief
        .send(json!({"type":"join","room":"r","resume":"not-the-token"}))
        .await;
    let jt = thief.recv_type("joined").await;
    assert_eq!(jt["resumed"], false);
    assert_ne!(jt["clientId"], ja["clientId"]);
    b.recv_type("participant-joined").await;

    a2.send(json!({"type":"leave"})).await;
    let left = b.recv_type("participant-left").await;
    assert_eq!(left["id"], ja["clientId"]);
}

#[tokio::test]
async fn a_full_node_redirects_clients_that_follow_and_serves_the_others() {
    let redis = RedisServer::start();
    let mut cfg = SignalingConfig::default();
    cfg.cluster.max_participants = 1;
    let (n1, n2) = two_nodes(&redis, cfg).await;
    settle(n1.addr, 0).await;
    let mut a = Client::connect(n1.addr).await;
    a.send(json!({"type":"join","room":"r","name":"Ann","redirect":true}))
        .await;
    assert_eq!(a.recv_type("joined").await["node"], "n1");
    settle(n1.addr, 1).await;

    // n1 is at its limit: a client that follows redirects goes to n2.
    let mut c = Client::connect(n1.addr).await;
    c.send(json!({"type":"join","room":"r","name":"Cy","redirect":true}))
        .await;
    let r = c.recv().await;
    assert_eq!(r["type"], "redirect", "{r}");
    assert_eq!(r["node"], "n2");
    assert_eq!(r["room"], "r");
    assert_eq!(r["url"], format!("ws://{}/ws", n2.addr));
    let mut c2 = Client::connect_url(r["url"].as_str().unwrap()).await;
    let j = c2.join("r", "Cy").await;
    assert_eq!(j["node"], "n2");
    assert_eq!(j["participants"][0]["name"], "Ann");
    a.recv_type("participant-joined").await;

    // A client that does not follow redirects is served where it is.
    let mut d = Client::connect(n1.addr).await;
    let jd = d.join("r", "Di").await;
    assert_eq!(jd["node"], "n1");
    assert_eq!(jd["participants"].as_array().unwrap().len(), 2);

    // The cluster view, from either node.
    let (status, view) = http_get(n2.addr, "/api/cluster").await;
    assert_eq!(status, 200, "{view}");
    let nodes: Vec<&str> = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["n1", "n2"]);
    let room = &view["rooms"][0];
    assert_eq!(room["room"], "r");
    assert_eq!(room["participants"], 3);
    assert_eq!(room["home"], "n1");
    let mut where_: Vec<(String, u64)> = room["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_u64().unwrap()))
        .collect();
    where_.sort();
    assert_eq!(where_, [("n1".to_string(), 2), ("n2".to_string(), 1)]);
}

#[tokio::test]
async fn a_server_alone_says_it_has_no_cluster() {
    let sig = signaling::server::Signaling::start(SignalingConfig::default(), None);
    assert!(sig.cluster().is_none());
    let app = signaling::cluster::view::router(sig);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (status, body) = http_get(addr, "/api/cluster").await;
    assert_eq!(status, 404);
    assert!(
        body["message"].as_str().unwrap().contains("alone"),
        "{body}"
    );
}
