//! A cluster whose Redis goes away: the nodes keep serving what they have,
//! refuse what needs Redis, come back when Redis does (a restart without
//! its data included), and still stop on request.

mod common;

use common::redis::RedisServer;
use common::{cluster_node, eventually, Client, LONG};
use serde_json::json;
use signaling::cluster::Store;
use signaling::config::SignalingConfig;

/// Whether Redis lists exactly `nodes` as live and room `r` with
/// `participants` members.
async fn registered(store: &Store, nodes: &[&str], participants: u32) -> bool {
    let Ok((live, _)) = store.nodes().await else {
        return false;
    };
    let ids: Vec<&str> = live.iter().map(|n| n.id.as_str()).collect();
    let Ok(rooms) = store.rooms().await else {
        return false;
    };
    ids == nodes
        && rooms
            .iter()
            .any(|r| r.room == "r" && r.participants == participants)
}

#[tokio::test]
async fn nodes_put_themselves_and_their_rooms_back_after_redis_restarts_empty() {
    let mut redis = RedisServer::start();
    let cfg = SignalingConfig::default();
    let n1 = cluster_node(&redis.url(), "n1", cfg.clone()).await;
    let n2 = cluster_node(&redis.url(), "n2", cfg).await;
    let mut ann = Client::connect(n1.addr).await;
    let mut bob = Client::connect(n2.addr).await;
    assert_eq!(ann.join("r", "Ann").await["node"], "n1");
    assert_eq!(bob.join("r", "Bob").await["node"], "n2");
    ann.recv_type("participant-joined").await;
    // Media states move the room's version on, past what a Redis that
    // restarted empty will count to before the newcomer below joins.
    ann.send(json!({"type":"media-state","microphone":true,"camera":false}))
        .await;
    bob.recv_type("media-state").await;
    bob.send(json!({"type":"media-state","microphone":false,"camera":true}))
        .await;
    ann.recv_type("media-state").await;

    redis.restart();

    // Both nodes register again and put their members back.
    let store = Store::connect(&redis.url(), "test:").await.unwrap();
    assert!(
        eventually(|| registered(&store, &["n1", "n2"], 2)).await,
        "never happened: n1 and n2 registered again, with Ann and Bob in `r`"
    );
    let n1_cluster = n1.sig.cluster().unwrap().clone();
    assert!(
        eventually(|| {
            let s = n1_cluster.stats();
            async move { s.redis_connected && s.redis_reconnects >= 1 }
        })
        .await,
        "never happened: n1 counts a reconnect"
    );

    // A newcomer on n2 finds the room with both members and their media.
    let mut cy = Client::connect(n2.addr).await;
    let jc = cy.join("r", "Cy").await;
    assert_eq!(jc["node"], "n2");
    let mut others: Vec<(String, bool, bool)> = jc["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["media"]["microphone"].as_bool().unwrap(),
                p["media"]["camera"].as_bool().unwrap(),
            )
        })
        .collect();
    others.sort();
    assert_eq!(
        others,
        [("Ann".into(), true, false), ("Bob".into(), false, true)]
    );

    // The members see Cy arrive, and nothing else: the room never saw
    // anyone leave and come back while Redis was away.
    for member in [&mut ann, &mut bob] {
        let ev = member.recv().await;
        assert_eq!(ev["type"], "participant-joined", "{ev}");
        assert_eq!(ev["participant"]["id"], cy.id.as_str());
    }

    // Messages cross the nodes both ways again.
    cy.send(json!({"type":"offer","target":ann.id,"sdp":{"type":"offer","sdp":"v=0\r\n"}}))
        .await;
    assert_eq!(ann.recv_type("offer").await["from"], cy.id.as_str());
    ann.send(
        json!({"type":"ice-candidate","target":cy.id,"candidate":{"candidate":"c","sdpMid":"0"}}),
    )
    .await;
    assert_eq!(cy.recv_type("ice-candidate").await["from"], ann.id.as_str());
    ann.send(json!({"type":"media-state","microphone":false,"camera":false}))
        .await;
    for member in [&mut bob, &mut cy] {
        let ms = member.recv_type("media-state").await;
        assert_eq!(ms["from"], ann.id.as_str());
        assert_eq!(ms["media"]["microphone"], false);
    }

    // The cluster task still stops, and n1 leaves the cluster cleanly.
    tokio::time::timeout(LONG, n1_cluster.stop())
        .await
        .expect("the cluster task stops");
    assert!(
        eventually(|| registered(&store, &["n2"], 2)).await,
        "never happened: n1 gone from the registry"
    );
    assert_eq!(
        bob.recv_type("participant-left").await["id"],
        ann.id.as_str()
    );
}

#[tokio::test]
async fn a_node_without_redis_serves_its_rooms_refuses_joins_and_still_stops() {
    let mut redis = RedisServer::start();
    let n1 = cluster_node(&redis.url(), "n1", SignalingConfig::default()).await;
    let mut ann = Client::connect(n1.addr).await;
    let mut bob = Client::connect(n1.addr).await;
    ann.join("r", "Ann").await;
    bob.join("r", "Bob").await;
    ann.recv_type("participant-joined").await;

    redis.kill();
    let cluster = n1.sig.cluster().unwrap().clone();
    assert!(
        eventually(|| {
            let s = cluster.stats();
            async move { !s.redis_connected }
        })
        .await,
        "never happened: n1 notices Redis is gone"
    );

    // Members here still talk to each other.
    bob.send(json!({"type":"offer","target":ann.id,"sdp":"v=0"}))
        .await;
    assert_eq!(ann.recv_type("offer").await["from"], bob.id.as_str());
    ann.send(json!({"type":"media-state","microphone":true,"camera":false}))
        .await;
    assert_eq!(bob.recv_type("media-state").await["from"], ann.id.as_str());

    // A join that needs the room directory gets an error, not silence.
    let mut cy = Client::connect(n1.addr).await;
    cy.send(json!({"type":"join","room":"other","name":"Cy"}))
        .await;
    let e = cy.recv_type_within("error", LONG).await;
    assert_eq!(e["code"], "internal", "{e}");
    assert_eq!(e["request"], "join", "{e}");

    // Leaving still works here, and the node still stops.
    bob.send(json!({"type":"leave"})).await;
    bob.recv_type("left").await;
    assert_eq!(
        ann.recv_type("participant-left").await["id"],
        bob.id.as_str()
    );
    tokio::time::timeout(LONG, cluster.stop())
        .await
        .expect("the cluster task stops while Redis is down");
}
