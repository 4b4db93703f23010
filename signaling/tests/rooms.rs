//! Rooms: join, events, leave, media state, capacity, modes and scoping.

mod common;
use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn join_announces_members_and_leave_tells_the_room() {
    let s = dev_server().await;
    let mut a = Client::connect(s.addr).await;
    let mut b = Client::connect(s.addr).await;

    let ja = a.join("standup", "Ann").await;
    assert_eq!(ja["clientId"], a.id.as_str());
    assert_eq!(ja["room"], "standup");
    assert_eq!(ja["mode"], "p2p");
    assert_eq!(ja["name"], "Ann");
    assert_eq!(ja["participants"], json!([]));
    assert_eq!(ja["iceServers"], json!([]));
    assert_eq!(ja["permissions"], json!({"publish":true,"subscribe":true}));
    assert_eq!(ja["resumeToken"].as_str().unwrap().len(), 32);

    let jb = b.join("standup", "Bob").await;
    assert_eq!(
        jb["participants"],
        json!([{"id":a.id,"name":"Ann","media":{"microphone":false,"camera":false,"screen":false},
            "permissions":{"publish":true,"subscribe":true}}])
    );
    let ev = a.recv_type("participant-joined").await;
    assert_eq!(ev["participant"]["id"], b.id.as_str());
    assert_eq!(ev["participant"]["name"], "Bob");

    let st = s.sig.stats().await;
    assert_eq!((st.rooms, st.participants, st.p2p_rooms), (1, 2, 1));

    b.send(json!({"type":"leave"})).await;
    assert_eq!(b.recv().await, json!({"type":"left","room":"standup"}));
    assert_eq!(a.recv_type("participant-left").await["id"], b.id.as_str());
    a.send(json!({"type":"leave"})).await;
    a.recv_type("left").await;
    let st = s.sig.stats().await;
    assert_eq!((st.rooms, st.participants), (0, 0), "empty room is removed");
    // The socket stays usable after leaving.
    b.join("other", "Bob").await;
}

#[tokio::test]
async fn media_state_is_relayed_and_remembered() {
    let s = dev_server().await;
    let mut a = Client::connect(s.addr).await;
    let mut b = Client::connect(s.addr).await;
    a.join("r", "Ann").await;
    b.join("r", "Bob").await;
    a.recv_type("participant-joined").await;
    b.send(json!({"type":"media-state","microphone":false,"camera":true,"tracks":[{"id":"t1","source":"camera"}]})).await;
    let m = a.recv_type("media-state").await;
    assert_eq!(m["from"], b.id.as_str());
    assert_eq!(
        m["media"],
        json!({"microphone":false,"camera":true,"screen":false,"tracks":[{"id":"t1","source":"camera"}]})
    );
    let mut c = Client::connect(s.addr).await;
    let jc = c.join("r", "Cy").await;
    let bob = jc["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == b.id.as_str())
        .unwrap()
        .clone();
    assert_eq!(bob["media"]["camera"], true);
}

#[tokio::test]
async fn p2p_room_is_capped_and_the_error_names_sfu() {
    let s = dev_server().await;
    let mut clients = Vec::new();
    for i in 0..4 {
        let mut c = Client::connect(s.addr).await;
        c.join("mesh", &format!("p{i}")).await;
        clients.push(c);
    }
    let mut fifth = Client::connect(s.addr).await;
    let e = fifth
        .expect_error(json!({"type":"join","room":"mesh"}), "room_full")
        .await;
    assert_eq!(e["request"], "join");
    assert!(e["message"].as_str().unwrap().contains("SFU"), "{e}");
    // Still connected, and can join elsewhere.
    fifth.join("elsewhere", "p5").await;
}

#[tokio::test]
async fn relay_reaches_only_the_same_room() {
    let s = dev_server().await;
    let mut a = Client::connect(s.addr).await;
    let mut b = Client::connect(s.addr).await;
    let mut c = Client::connect(s.addr).await;
    let mut outsider = Client::connect(s.addr).await;
    a.join("r1", "A").await;
    b.join("r1", "B").await;
    c.join("r2", "C").await;
    a.send(json!({"type":"offer","target":b.id.clone(),"sdp":"o"}))
        .await;
    let m = b.recv_type("offer").await;
    assert_eq!(m["from"], a.id.as_str());
    a.expect_error(
        json!({"type":"offer","target":c.id.clone(),"sdp":"o"}),
        "unknown_target",
    )
    .await;
    outsider
        .expect_error(
            json!({"type":"offer","target":a.id.clone(),"sdp":"o"}),
            "unknown_target",
        )
        .await;
    a.send(json!({"type":"list-clients"})).await;
    assert_eq!(a.recv_type("clients-list").await["clients"], json!([b.id]));
    outsider.send(json!({"type":"list-clients"})).await;
    assert_eq!(
        outsider.recv_type("clients-list").await["clients"],
        json!([])
    );
    c.silent().await;
}

#[tokio::test]
async fn modes_and_room_names_are_checked() {
    let s = dev_server().await;
    let mut a = Client::connect(s.addr).await;
    let mut b = Client::connect(s.addr).await;
    a.expect_error(json!({"type":"join","room":"bad name!"}), "invalid_room")
        .await;
    a.expect_error(json!({"type":"join","room":""}), "invalid_room")
        .await;
    // No media plane here: SFU rooms cannot be served.
    let e = a
        .expect_error(
            json!({"type":"join","room":"r","mode":"sfu"}),
            "media_unavailable",
        )
        .await;
    assert_eq!(e["request"], "join");
    a.send(json!({"type":"join","room":"r","mode":"p2p"})).await;
    a.recv_type("joined").await;
    a.expect_error(json!({"type":"join","room":"r2"}), "already_in_room")
        .await;
    b.expect_error(
        json!({"type":"join","room":"r","mode":"sfu"}),
        "mode_mismatch",
    )
    .await;
}

#[tokio::test]
async fn untargeted_offer_outside_an_sfu_room_is_refused() {
    let s = dev_server().await;
    let mut a = Client::connect(s.addr).await;
    a.expect_error(json!({"type":"offer","sdp":"v=0"}), "invalid_message")
        .await;
    a.join("p", "A").await;
    a.expect_error(
        json!({"type":"ice-candidate","candidate":null}),
        "invalid_message",
    )
    .await;
}

#[tokio::test]
async fn dropped_socket_is_held_for_the_grace_period_then_resumed() {
    let (s, mut a, b, jb) = pair_in_room(Duration::from_secs(5)).await;
    let resume = jb["resumeToken"].as_str().unwrap().to_string();
    let b_id = b.id.clone();
    drop(b);
    a.silent().await; // no participant-left while held

    // A wrong resume token is a fresh join with a new id.
    let mut b2 = Client::connect(s.addr).await;
    b2.send(json!({"type":"join","room":"r","name":"B","resume":"0000"}))
        .await;
    let j = b2.recv_type("joined").await;
    assert_eq!(j["resumed"], false);
    assert_ne!(j["clientId"], b_id.as_str());
    a.recv_type("participant-joined").await;

    let mut b3 = Client::connect(s.addr).await;
    b3.send(json!({"type":"join","room":"r","resume":resume}))
        .await;
    let j = b3.recv_type("joined").await;
    assert_eq!(j["resumed"], true);
    assert_eq!(j["clientId"], b_id.as_str());
    assert_eq!(j["name"], "B");
    // Relays reach the resumed participant under its old id.
    a.send(json!({"type":"offer","target":b_id.clone(),"sdp":"again"}))
        .await;
    assert_eq!(b3.recv_type("offer").await["sdp"], "again");
    a.silent().await;
}

#[tokio::test]
async fn held_participant_leaves_when_the_grace_period_ends() {
    let (s, mut a, b, _) = pair_in_room(Duration::from_millis(300)).await;
    let b_id = b.id.clone();
    drop(b);
    let left = a.recv_type("participant-left").await;
    assert_eq!(left["id"], b_id.as_str());
    assert_eq!(s.sig.stats().await.participants, 1);
}

#[tokio::test]
async fn without_grace_a_closed_socket_leaves_at_once() {
    let (_s, mut a, mut b, _) = pair_in_room(Duration::ZERO).await;
    let b_id = b.id.clone();
    b.ws.close(None).await.unwrap();
    assert_eq!(a.recv_type("participant-left").await["id"], b_id.as_str());
}

#[tokio::test]
async fn a_goodbye_close_is_not_held() {
    use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
    let s = dev_server().await; // default grace: 10 s
    let mut a = Client::connect(s.addr).await;
    let mut b = Client::connect(s.addr).await;
    a.join("r", "A").await;
    b.join("r", "B").await;
    a.recv_type("participant-joined").await;
    let b_id = b.id.clone();
    let bye = CloseFrame {
        code: CloseCode::Away,
        reason: "tab closed".into(),
    };
    b.ws.close(Some(bye)).await.unwrap();
    assert_eq!(a.recv_type("participant-left").await["id"], b_id.as_str());
}
