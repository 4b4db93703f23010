//! The cluster's Redis side against a real `redis-server`: the registry
//! with its TTL, the room directory's atomic first home, the scripts'
//! checks, and placement over what the registry holds.

mod common;

use std::time::Duration;

use common::eventually;
use common::redis::RedisServer;
use futures::StreamExt;
use signaling::cluster::{
    select, EnterArgs, EnterOutcome, Limits, Load, MemberRecord, NodeInfo, RoomEvent, Store,
};
use signaling::ids::{NodeId, ParticipantId, RoomName};
use signaling::media::Permissions;
use signaling::protocol::{MediaState, ParticipantInfo, RoomMode};

fn node(id: &str, participants: u32) -> NodeInfo {
    NodeInfo {
        id: NodeId::new(id),
        url: format!("ws://{id}.test/ws"),
        media: String::new(),
        region: String::new(),
        draining: false,
        load: Load {
            participants,
            ..Load::default()
        },
    }
}

fn member(id: &str) -> MemberRecord {
    MemberRecord {
        info: ParticipantInfo {
            id: ParticipantId::from_string(id),
            name: id.to_uppercase(),
            media: MediaState::default(),
            permissions: Permissions {
                publish: true,
                subscribe: true,
            },
        },
        identity: format!("{id}-identity"),
    }
}

fn args<'a>(
    me: &'a NodeId,
    room: &'a RoomName,
    m: &'a MemberRecord,
    mode: Option<RoomMode>,
    guard: bool,
) -> EnterArgs<'a> {
    EnterArgs {
        me,
        room,
        mode,
        default_mode: RoomMode::Sfu,
        max_p2p: 2,
        max_sfu: 100,
        member: m,
        guard,
        resume_token: "tok",
    }
}

#[tokio::test]
async fn two_nodes_racing_for_new_rooms_never_both_become_home() {
    let redis = RedisServer::start();
    let a = Store::connect(&redis.url(), "t:").await.unwrap();
    let b = Store::connect(&redis.url(), "t:").await.unwrap();
    let (na, nb) = (NodeId::new("a"), NodeId::new("b"));
    for i in 0..40 {
        let room = RoomName::parse(&format!("race-{i}")).unwrap();
        let (ma, mb) = (member(&format!("a{i}")), member(&format!("b{i}")));
        // Both placed the join here, seeing no room: both ask with the guard.
        let (aa, ab) = (
            args(&na, &room, &ma, None, true),
            args(&nb, &room, &mb, None, true),
        );
        let (ra, rb) = tokio::join!(a.enter(&aa), b.enter(&ab));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let won: Vec<&NodeId> = [(&ra, &na), (&rb, &nb)]
            .into_iter()
            .filter(|(r, _)| matches!(r, EnterOutcome::Entered { .. }))
            .map(|(_, n)| n)
            .collect();
        assert_eq!(won.len(), 1, "room {room}: {ra:?} / {rb:?}");
        let lost = if won[0] == &na { &rb } else { &ra };
        assert_eq!(lost, &EnterOutcome::Elsewhere);
        let rec = a.room(&room).await.unwrap();
        assert_eq!(rec.home.as_ref(), Some(won[0]));
        assert_eq!(rec.nodes, vec![(won[0].clone(), 1)]);
    }
}

#[tokio::test]
async fn the_scripts_check_mode_and_size_and_keep_members_with_their_node() {
    let redis = RedisServer::start();
    let s = Store::connect(&redis.url(), "t:").await.unwrap();
    let (na, nb) = (NodeId::new("a"), NodeId::new("b"));
    let room = RoomName::parse("mesh").unwrap();
    let (m1, m2, m3) = (member("p1"), member("p2"), member("p3"));
    let r = s
        .enter(&args(&na, &room, &m1, Some(RoomMode::P2p), false))
        .await
        .unwrap();
    assert!(matches!(
        r,
        EnterOutcome::Entered {
            mode: RoomMode::P2p,
            ..
        }
    ));
    // Another mode: refused, whoever asks.
    let r = s
        .enter(&args(&nb, &room, &m2, Some(RoomMode::Sfu), false))
        .await
        .unwrap();
    assert_eq!(r, EnterOutcome::ModeMismatch(RoomMode::P2p));
    let r = s.enter(&args(&nb, &room, &m2, None, false)).await.unwrap();
    let EnterOutcome::Entered { members, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(members.len(), 2);
    assert!(members.contains(&(m1.clone(), na.clone())));
    assert!(members.contains(&(m2.clone(), nb.clone())));
    // max_p2p is 2 in these tests: the mesh is full across both nodes.
    let r = s.enter(&args(&na, &room, &m3, None, false)).await.unwrap();
    assert_eq!(r, EnterOutcome::RoomFull(RoomMode::P2p));
    let mut rec = s.room(&room).await.unwrap();
    rec.nodes.sort();
    assert_eq!(rec.nodes, vec![(na.clone(), 1), (nb.clone(), 1)]);

    // Only the serving node removes a member; the last one takes the room.
    assert!(!s.leave(&na, &room, &m2.info.id, "tok").await.unwrap());
    assert!(s.leave(&nb, &room, &m2.info.id, "tok").await.unwrap());
    assert!(s.leave(&na, &room, &m1.info.id, "tok").await.unwrap());
    assert_eq!(s.room(&room).await.unwrap().mode, None);
    assert!(s.rooms().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_node_that_stops_heartbeating_expires_and_its_members_leave() {
    let redis = RedisServer::start();
    let s = Store::connect(&redis.url(), "t:").await.unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let (mut sink, mut events) = client.get_async_pubsub().await.unwrap().split();
    sink.subscribe(s.events_channel("r")).await.unwrap();

    let (alive, dying) = (node("alive", 0), node("dying", 0));
    s.register(&alive, Duration::from_secs(30)).await.unwrap();
    s.register(&dying, Duration::from_millis(300))
        .await
        .unwrap();
    let room = RoomName::parse("r").unwrap();
    let (m1, m2) = (member("p1"), member("p2"));
    s.enter(&args(&alive.id, &room, &m1, None, false))
        .await
        .unwrap();
    s.enter(&args(&dying.id, &room, &m2, None, false))
        .await
        .unwrap();
    let (live, dead) = s.nodes().await.unwrap();
    assert_eq!(live.len(), 2);
    assert!(dead.is_empty());

    // No refresh: the entry expires, and the node shows as dead.
    // Redis expires the entry on its own clock: nothing to await but a
    // changed answer.
    assert!(
        eventually(async || !s.nodes().await.unwrap().1.is_empty()).await,
        "the entry never expired"
    );
    let (live, dead) = s.nodes().await.unwrap();
    assert_eq!(live, vec![alive.clone()]);
    assert_eq!(dead, vec![dying.id.clone()]);
    assert_eq!(s.reap(&dying.id).await.unwrap(), 1);
    assert_eq!(
        s.reap(&dying.id).await.unwrap(),
        0,
        "reaping twice is harmless"
    );
    assert_eq!(s.nodes().await.unwrap(), (vec![alive.clone()], vec![]));
    let rec = s.room(&room).await.unwrap();
    assert_eq!(rec.nodes, vec![(alive.id.clone(), 1)]);

    // The room heard both joins, then the dead node's member leave.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let msg = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("room events")
            .unwrap();
        let e: RoomEvent = serde_json::from_str(&msg.get_payload::<String>().unwrap()).unwrap();
        seen.push(e);
    }
    assert!(
        matches!(&seen[2], RoomEvent::Left { id, node, .. } if id == &m2.info.id && node == &dying.id)
    );
    let vers: Vec<u64> = seen.iter().map(RoomEvent::ver).collect();
    assert!(vers.windows(2).all(|w| w[0] < w[1]), "{vers:?}");
}

#[tokio::test]
async fn a_resume_token_takes_the_place_over_on_another_node() {
    let redis = RedisServer::start();
    let s = Store::connect(&redis.url(), "t:").await.unwrap();
    let (na, nb) = (NodeId::new("a"), NodeId::new("b"));
    let room = RoomName::parse("r").unwrap();
    let (m1, m2) = (member("p1"), member("p2"));
    let mut a1 = args(&na, &room, &m1, None, false);
    a1.resume_token = "secret-1";
    s.enter(&a1).await.unwrap();
    let mut a2 = args(&na, &room, &m2, None, false);
    a2.resume_token = "secret-2";
    s.enter(&a2).await.unwrap();
    assert!(s.take_over(&nb, &room, "wrong").await.unwrap().is_none());
    let t = s.take_over(&nb, &room, "secret-1").await.unwrap().unwrap();
    assert_eq!(t.member, m1);
    assert_eq!(t.mode, RoomMode::Sfu);
    let mut rec = s.room(&room).await.unwrap();
    rec.nodes.sort();
    assert_eq!(rec.nodes, vec![(na.clone(), 1), (nb.clone(), 1)]);
    // The old node can no longer remove it; the dead old node's reaping
    // leaves it alone too.
    assert!(!s.leave(&na, &room, &m1.info.id, "secret-1").await.unwrap());
    assert_eq!(s.reap(&na).await.unwrap(), 1);
    let rec = s.room(&room).await.unwrap();
    assert_eq!(rec.nodes, vec![(nb.clone(), 1)]);
    assert!(s.take_over(&nb, &room, "secret-2").await.unwrap().is_none());
}

#[tokio::test]
async fn placement_over_the_registry_respects_limits() {
    let redis = RedisServer::start();
    let s = Store::connect(&redis.url(), "t:").await.unwrap();
    let limits = Limits {
        max_participants: 2,
        ..Limits::default()
    };
    for (id, n) in [("n1", 2), ("n2", 1), ("n3", 0)] {
        s.register(&node(id, n), Duration::from_secs(30))
            .await
            .unwrap();
    }
    let room = RoomName::parse("r").unwrap();
    let m = member("p1");
    s.enter(&args(&NodeId::new("n1"), &room, &m, None, false))
        .await
        .unwrap();
    let (nodes, _) = s.nodes().await.unwrap();
    let rec = s.room(&room).await.unwrap();
    // The room's node is at its limit: the least-loaded node.
    let to = select(&rec.nodes, rec.home.as_ref(), &nodes, &limits, "").unwrap();
    assert_eq!(to.id.as_str(), "n3");
    // With headroom the room stays together.
    s.register(&node("n1", 1), Duration::from_secs(30))
        .await
        .unwrap();
    let (nodes, _) = s.nodes().await.unwrap();
    let to = select(&rec.nodes, rec.home.as_ref(), &nodes, &limits, "").unwrap();
    assert_eq!(to.id.as_str(), "n1");
}
