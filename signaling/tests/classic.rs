//! The classic minimal signaling messages, for clients that never join a room.

mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn registered_then_relay_offer_answer_candidate_with_from() {
    let s = dev_server().await;
    let mut a = Client::connect(s.addr).await;
    let mut b = Client::connect(s.addr).await;
    assert_ne!(a.id, b.id);
    assert_eq!(a.id.len(), 32);

    a.send(json!({"type":"offer","target":b.id,"sdp":"v=0 offer","extra":{"k":1}}))
        .await;
    let m = b.recv().await;
    assert_eq!(
        m,
        json!({"type":"offer","target":b.id,"sdp":"v=0 offer","extra":{"k":1},"from":a.id})
    );

    b.send(json!({"type":"answer","target":a.id,"sdp":"v=0 answer"}))
        .await;
    let m = a.recv().await;
    assert_eq!(
        m,
        json!({"type":"answer","target":a.id,"sdp":"v=0 answer","from":b.id})
    );

    let cand = json!({"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0});
    a.send(json!({"type":"ice-candidate","target":b.id,"candidate":cand}))
        .await;
    let m = b.recv().await;
    assert_eq!(m["type"], "ice-candidate");
    assert_eq!(m["candidate"], cand);
    assert_eq!(m["from"], a.id.as_str());
}

#[tokio::test]
async fn list_clients_excludes_the_caller() {
    let s = dev_server().await;
    let mut a = Client::connect(s.addr).await;
    let b = Client::connect(s.addr).await;
    let c = Client::connect(s.addr).await;
    a.send(json!({"type":"list-clients"})).await;
    let m = a.recv().await;
    assert_eq!(m["type"], "clients-list");
    let mut got: Vec<String> = m["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    got.sort();
    let mut want = vec![b.id.clone(), c.id.clone()];
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn unknown_target_is_an_error_and_the_socket_stays_open() {
    let s = dev_server().await;
    let mut a = Client::connect(s.addr).await;
    let e = a
        .expect_error(
            json!({"type":"offer","target":"nobody","sdp":"x"}),
            "unknown_target",
        )
        .await;
    assert_eq!(e["request"], "offer");
    // Sending to yourself is refused too.
    a.expect_error(
        json!({"type":"answer","target":a.id.clone(),"sdp":"x"}),
        "unknown_target",
    )
    .await;
    a.send(json!({"type":"ping","id":7})).await;
    assert_eq!(a.recv().await, json!({"type":"pong","id":7}));
}

#[tokio::test]
async fn disconnected_client_disappears_from_the_list() {
    let s = dev_server().await;
    let mut a = Client::connect(s.addr).await;
    let b = Client::connect(s.addr).await;
    drop(b);
    // Outside rooms no event tells of a departure: ask until the list is
    // empty.
    let gone = eventually(async || {
        a.send(json!({"type":"list-clients"})).await;
        let m = a.recv().await;
        m["clients"].as_array().unwrap().is_empty()
    })
    .await;
    assert!(gone, "closed client still listed");
}

/// The classic client of the WebRTC lessons sends the browser's objects as
/// they are: `sdp` as the description object, `candidate` as the
/// candidate object. They are relayed unchanged, outside rooms and inside a
/// P2P room alike.
#[tokio::test]
async fn object_shaped_sdp_and_candidate_are_relayed_unchanged() {
    let s = dev_server().await;
    for in_room in [false, true] {
        let mut a = Client::connect(s.addr).await;
        let mut b = Client::connect(s.addr).await;
        if in_room {
            for c in [&mut a, &mut b] {
                c.send(json!({"type":"join","room":"lesson","mode":"p2p"}))
                    .await;
                assert_eq!(c.recv_type("joined").await["mode"], "p2p");
            }
            // b's join is announced to a.
            a.recv_type("participant-joined").await;
        }
        let offer = json!({"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"});
        a.send(json!({"type":"offer","target":b.id,"sdp":offer}))
            .await;
        assert_eq!(
            b.recv_type("offer").await,
            json!({"type":"offer","target":b.id,"sdp":offer,"from":a.id})
        );
        let answer = json!({"type":"answer","sdp":"v=0\r\n"});
        b.send(json!({"type":"answer","target":a.id,"sdp":answer}))
            .await;
        assert_eq!(
            a.recv_type("answer").await,
            json!({"type":"answer","target":a.id,"sdp":answer,"from":b.id})
        );
        let cand = json!({"candidate":"candidate:1 1 UDP 2122260223 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"Xy12"});
        a.send(json!({"type":"ice-candidate","target":b.id,"candidate":cand}))
            .await;
        assert_eq!(
            b.recv_type("ice-candidate").await,
            json!({"type":"ice-candidate","target":b.id,"candidate":cand,"from":a.id})
        );
    }
}
