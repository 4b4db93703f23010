//! Unit tests of the hub as a whole.

use std::time::Duration;

use super::*;
use crate::config::{IceConfig, RoomsConfig};
use crate::ids::RoomName;
use crate::protocol::parse_client_message;

fn room() -> RoomName {
    RoomName::parse("r").unwrap()
}

fn hub(grace: Duration) -> Hub {
    let rooms = RoomsConfig {
        reconnect_grace: grace,
        ..RoomsConfig::default()
    };
    Hub::new(
        Auth::new(Default::default()),
        rooms,
        IceConfig::default(),
        true,
    )
}

fn msg(hub: &mut Hub, conn: &ClientId, text: &str, now: Millis) -> Effects {
    let incoming = parse_client_message(text).unwrap();
    hub.handle(
        Input::Message {
            conn: conn.clone(),
            incoming,
        },
        now,
    )
}

fn connect(hub: &mut Hub) -> ClientId {
    let id = ClientId::random();
    hub.handle(
        Input::Connected {
            conn: id.clone(),
            token: None,
        },
        0,
    );
    id
}

#[test]
fn a_screen_share_in_media_state_reaches_the_media_plane() {
    let mut h = hub(Duration::ZERO);
    let a = connect(&mut h);
    msg(&mut h, &a, r#"{"type":"join","room":"r"}"#, 0);
    let fx = msg(
        &mut h,
        &a,
        r#"{"type":"media-state","microphone":true,"camera":true,"screen":true,
            "tracks":[{"id":"cam1","source":"camera"},{"id":"scr1","source":"screen"}]}"#,
        0,
    );
    assert_eq!(
        fx.media,
        vec![MediaCommand::ScreenTracks {
            room: room(),
            publisher: a.clone(),
            tracks: vec!["scr1".into()],
        }]
    );
    // Sharing stops: the media plane is told there is none now.
    let fx = msg(
        &mut h,
        &a,
        r#"{"type":"media-state","microphone":true,"camera":true,"tracks":[{"id":"cam1","source":"camera"}]}"#,
        0,
    );
    assert!(
        matches!(&fx.media[..], [MediaCommand::ScreenTracks { tracks, .. }] if tracks.is_empty()),
        "{fx:?}"
    );
}

#[test]
fn sfu_join_offer_and_leave_drive_the_media_plane() {
    let mut h = hub(Duration::ZERO);
    let a = connect(&mut h);
    let fx = msg(&mut h, &a, r#"{"type":"join","room":"r"}"#, 0);
    assert!(
        matches!(&fx.media[..], [MediaCommand::Join { participant, permissions, .. }]
        if participant == &a && permissions.publish && permissions.subscribe)
    );
    let fx = msg(&mut h, &a, r#"{"type":"offer","sdp":"v=0"}"#, 0);
    assert_eq!(
        fx.media,
        vec![MediaCommand::Offer {
            room: room(),
            participant: a.clone(),
            sdp: "v=0".into()
        }]
    );
    // The browser's description object works as well as the text.
    let fx = msg(
        &mut h,
        &a,
        r#"{"type":"offer","sdp":{"type":"offer","sdp":"v=1"}}"#,
        0,
    );
    assert_eq!(
        fx.media,
        vec![MediaCommand::Offer {
            room: room(),
            participant: a.clone(),
            sdp: "v=1".into()
        }]
    );
    let fx = msg(
        &mut h,
        &a,
        r#"{"type":"answer","sdp":{"type":"offer","sdp":"v=1"}}"#,
        0,
    );
    assert!(fx.media.is_empty());
    assert!(matches!(
        &fx.sends[..],
        [(
            _,
            Outgoing::Message(ServerMessage::Error {
                code: ErrorCode::InvalidMessage,
                ..
            })
        )]
    ));
    let fx = msg(
        &mut h,
        &a,
        r#"{"type":"ice-candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0"}}"#,
        0,
    );
    assert!(
        matches!(&fx.media[..], [MediaCommand::Candidate { candidate: Some(c), .. }] if c.sdp_mid.as_deref() == Some("0"))
    );
    let fx = msg(
        &mut h,
        &a,
        r#"{"type":"ice-candidate","candidate":{"nope":1}}"#,
        0,
    );
    assert!(fx.media.is_empty());
    assert!(matches!(
        &fx.sends[..],
        [(
            _,
            Outgoing::Message(ServerMessage::Error {
                code: ErrorCode::InvalidMessage,
                ..
            })
        )]
    ));
    let fx = h.handle(
        Input::Disconnected {
            conn: a.clone(),
            hold: true,
        },
        0,
    );
    assert_eq!(
        fx.media,
        vec![MediaCommand::Leave {
            room: room(),
            participant: a.clone()
        }]
    );
    assert_eq!(h.stats(), HubStats::default());
}

/// While the media plane is past its capacity, SFU joins get
/// `server_busy` and reach no media plane; P2P rooms, which use none, and
/// the participants already in get on; once it catches up, joins pass.
#[test]
fn sfu_joins_are_refused_while_the_media_plane_is_at_capacity() {
    let mut h = hub(Duration::ZERO);
    let a = connect(&mut h);
    msg(&mut h, &a, r#"{"type":"join","room":"r"}"#, 0);
    h.set_media_at_capacity(true);
    let b = connect(&mut h);
    let fx = msg(&mut h, &b, r#"{"type":"join","room":"r"}"#, 0);
    assert!(fx.media.is_empty(), "{:?}", fx.media);
    assert!(matches!(
        &fx.sends[..],
        [(
            _,
            Outgoing::Message(ServerMessage::Error {
                code: ErrorCode::ServerBusy,
                ..
            })
        )]
    ));
    assert_eq!(h.stats().participants, 1);
    // The one in the room still reaches the media plane.
    let fx = msg(&mut h, &a, r#"{"type":"offer","sdp":"v=0"}"#, 0);
    assert_eq!(fx.media.len(), 1);
    let c = connect(&mut h);
    msg(&mut h, &c, r#"{"type":"join","room":"p","mode":"p2p"}"#, 0);
    assert_eq!(h.stats().participants, 2, "a P2P join passes");
    h.set_media_at_capacity(false);
    let fx = msg(&mut h, &b, r#"{"type":"join","room":"r"}"#, 0);
    assert!(matches!(&fx.media[..], [MediaCommand::Join { participant, .. }] if participant == &b));
}

#[test]
fn media_events_reach_their_participant_only() {
    let mut h = hub(Duration::ZERO);
    let a = connect(&mut h);
    let b = connect(&mut h);
    msg(&mut h, &a, r#"{"type":"join","room":"r"}"#, 0);
    msg(&mut h, &b, r#"{"type":"join","room":"r"}"#, 0);
    let fx = h.handle(
        Input::Media(MediaEvent::Offer {
            participant: b.clone(),
            sdp: "o".into(),
        }),
        0,
    );
    assert_eq!(
        fx.sends,
        vec![(
            b.clone(),
            Outgoing::Message(ServerMessage::Offer { sdp: "o".into() })
        )]
    );
    let fx = h.handle(
        Input::Media(MediaEvent::Error {
            participant: a.clone(),
            code: ErrorCode::MediaRejected,
            message: "bad sdp".into(),
        }),
        0,
    );
    assert!(
        matches!(&fx.sends[..], [(to, Outgoing::Message(ServerMessage::Error { code: ErrorCode::MediaRejected, .. }))] if to == &a)
    );
    // Events for someone gone are dropped.
    let gone = ClientId::random();
    let fx = h.handle(
        Input::Media(MediaEvent::Answer {
            participant: gone,
            sdp: "x".into(),
        }),
        0,
    );
    assert!(fx.sends.is_empty());
}

#[test]
fn held_participant_expires_on_timeout() {
    let mut h = hub(Duration::from_millis(500));
    let a = connect(&mut h);
    let b = connect(&mut h);
    msg(&mut h, &a, r#"{"type":"join","room":"r"}"#, 0);
    msg(&mut h, &b, r#"{"type":"join","room":"r"}"#, 0);
    let fx = h.handle(
        Input::Disconnected {
            conn: b.clone(),
            hold: true,
        },
        1000,
    );
    assert!(fx.sends.is_empty() && fx.media.is_empty());
    assert_eq!(h.poll_timeout(), Some(1500));
    assert!(h.handle(Input::Timeout, 1499).sends.is_empty());
    let fx = h.handle(Input::Timeout, 1500);
    assert_eq!(
        fx.sends,
        vec![(
            a.clone(),
            Outgoing::Message(ServerMessage::ParticipantLeft { id: b.clone() })
        )]
    );
    assert_eq!(
        fx.media,
        vec![MediaCommand::Leave {
            room: room(),
            participant: b
        }]
    );
    assert_eq!(h.poll_timeout(), None);
}

#[test]
fn resume_takes_over_a_still_attached_participant() {
    let mut h = hub(Duration::from_secs(10));
    let a = connect(&mut h);
    let fx = msg(&mut h, &a, r#"{"type":"join","room":"r"}"#, 0);
    let Outgoing::Message(ServerMessage::Joined { resume_token, .. }) = &fx.sends[0].1 else {
        panic!()
    };
    let a2 = connect(&mut h);
    let fx = msg(
        &mut h,
        &a2,
        &format!(r#"{{"type":"join","room":"r","resume":"{resume_token}"}}"#),
        0,
    );
    assert_eq!(fx.closes, vec![a.clone()], "the old socket is closed");
    assert!(fx.media.is_empty(), "the media plane keeps its connection");
    assert!(
        matches!(&fx.sends[0].1, Outgoing::Message(ServerMessage::Joined { client_id, resumed: true, .. }) if client_id == &a)
    );
    // The old socket's close no longer affects the participant.
    let fx = h.handle(
        Input::Disconnected {
            conn: a.clone(),
            hold: false,
        },
        0,
    );
    assert!(fx.media.is_empty());
    assert_eq!(h.stats().participants, 1);
}

mod cluster {
    use super::*;
    use crate::hub::{ClusterIn, ClusterOut, Member};
    use crate::ids::NodeId;
    use crate::media::{RelayEnd, SdpKind};
    use crate::protocol::{ParticipantInfo, RoomMode};

    fn node_hub() -> Hub {
        hub(Duration::from_secs(10)).in_cluster(NodeId::new("n1"))
    }

    fn remote(id: &str, name: &str) -> Member {
        Member {
            info: ParticipantInfo {
                id: ClientId::from_string(id),
                name: name.into(),
                media: Default::default(),
                permissions: crate::media::Permissions {
                    publish: true,
                    subscribe: true,
                },
            },
            node: Some(NodeId::new("n2")),
        }
    }

    #[test]
    fn a_snapshot_after_missed_events_tells_the_room_only_what_changed() {
        let mut h = node_hub();
        let a = connect(&mut h);
        let bob = remote("b", "Bob");
        join_via_cluster(&mut h, &a, vec![bob.clone(), remote("c", "Cy")]);

        // Nothing was missed: nothing to tell.
        let same = vec![bob.clone(), remote("c", "Cy")];
        let fx = h.handle(
            Input::Cluster(ClusterIn::Snapshot {
                room: room(),
                members: same,
            }),
            0,
        );
        assert!(fx.sends.is_empty(), "{fx:?}");

        // Cy left, Di joined, Bob turned his microphone on and moved to n3,
        // all while the events were lost.
        let mut moved = bob.clone();
        moved.info.media.microphone = true;
        moved.node = Some(NodeId::new("n3"));
        let fx = h.handle(
            Input::Cluster(ClusterIn::Snapshot {
                room: room(),
                members: vec![moved, remote("d", "Di")],
            }),
            0,
        );
        let told: Vec<String> = fx
            .sends
            .iter()
            .map(|(to, m)| {
                assert_eq!(to, &a);
                match m {
                    Outgoing::Message(ServerMessage::ParticipantLeft { id }) => {
                        format!("left {id}")
                    }
                    Outgoing::Message(ServerMessage::ParticipantJoined { participant }) => {
                        format!("joined {}", participant.id)
                    }
                    Outgoing::Message(ServerMessage::MediaState { from, media }) => {
                        format!("media {from} {}", media.microphone)
                    }
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        assert_eq!(told, ["left c", "media b true", "joined d"]);
        let b = h
            .rooms
            .member(&room(), &ClientId::from_string("b"))
            .unwrap();
        assert_eq!(b.node.as_ref().map(NodeId::as_str), Some("n3"));
        // The media relays follow: n3 and n2 (Di) now, Cy's n2 kept.
        assert!(
            fx.media.iter().any(
                |c| matches!(c, MediaCommand::RelayOpen { node, .. } if node.as_str() == "n3")
            ),
            "{fx:?}"
        );
    }

    /// Joins `conn` through the cluster with `members` already in the room.
    fn join_via_cluster(h: &mut Hub, conn: &ClientId, members: Vec<Member>) -> Effects {
        let fx = msg(h, conn, r#"{"type":"join","room":"r","redirect":true}"#, 0);
        let [ClusterOut::Enter(req)] = &fx.cluster[..] else {
            panic!("{fx:?}")
        };
        assert!(
            fx.sends.is_empty() && fx.media.is_empty(),
            "nothing until placed"
        );
        assert!(req.redirect);
        assert_eq!(&req.member.id, conn);
        h.handle(
            Input::Cluster(ClusterIn::Entered {
                conn: conn.clone(),
                room: room(),
                mode: RoomMode::Sfu,
                members,
                taken: None,
            }),
            0,
        )
    }

    #[test]
    fn a_join_waits_for_placement_then_sees_the_other_nodes_members() {
        let mut h = node_hub();
        let a = connect(&mut h);
        let fx = join_via_cluster(&mut h, &a, vec![remote("b", "Bob")]);
        let Outgoing::Message(ServerMessage::Joined {
            participants, node, ..
        }) = &fx.sends[0].1
        else {
            panic!("{fx:?}")
        };
        assert_eq!(participants[0].name, "Bob");
        assert_eq!(node.as_ref().map(NodeId::as_str), Some("n1"));
        // The room spans n2: a media relay to it, this node its full end.
        assert!(
            matches!(&fx.media[..], [MediaCommand::Join { .. }, MediaCommand::RelayOpen { node, end: RelayEnd::Full, .. }] if node.as_str() == "n2")
        );

        // Events from the other node reach the local member.
        let fx = h.handle(
            Input::Cluster(ClusterIn::Joined {
                room: room(),
                member: remote("c", "Cy"),
            }),
            0,
        );
        assert!(
            matches!(&fx.sends[..], [(to, Outgoing::Message(ServerMessage::ParticipantJoined { participant }))] if to == &a && participant.name == "Cy")
        );
        let fx = h.handle(
            Input::Cluster(ClusterIn::Left {
                room: room(),
                id: ClientId::from_string("b"),
            }),
            0,
        );
        assert!(
            matches!(&fx.sends[..], [(_, Outgoing::Message(ServerMessage::ParticipantLeft { id }))] if id.as_str() == "b")
        );

        // A P2P-style relay to the remote member goes to its node.
        let fx = msg(
            &mut h,
            &a,
            r#"{"type":"offer","target":"c","sdp":"v=0"}"#,
            0,
        );
        assert!(
            matches!(&fx.cluster[..], [ClusterOut::Relay { node, to, message }]
            if node.as_str() == "n2" && to.as_str() == "c" && message["from"] == a.as_str())
        );

        // Local changes go out to the cluster.
        let fx = msg(
            &mut h,
            &a,
            r#"{"type":"media-state","microphone":true,"camera":false}"#,
            0,
        );
        assert!(matches!(&fx.cluster[..], [ClusterOut::Media { media, .. }] if media.microphone));
        // Relay offers and answers go between the nodes.
        let sdp = MediaEvent::RelaySdp {
            room: room(),
            node: NodeId::new("n2"),
            kind: SdpKind::Offer,
            sdp: "v=0".into(),
        };
        let fx = h.handle(Input::Media(sdp), 0);
        assert!(
            matches!(&fx.cluster[..], [ClusterOut::RelaySdp { node, kind: SdpKind::Offer, .. }] if node.as_str() == "n2")
        );
        let fx = h.handle(
            Input::Cluster(ClusterIn::RelaySdp {
                room: room(),
                node: NodeId::new("n2"),
                kind: SdpKind::Answer,
                sdp: "v=0".into(),
            }),
            0,
        );
        assert!(matches!(
            &fx.media[..],
            [MediaCommand::RelaySdp {
                kind: SdpKind::Answer,
                ..
            }]
        ));
        // None for a node the room does not span.
        let fx = h.handle(
            Input::Cluster(ClusterIn::RelaySdp {
                room: room(),
                node: NodeId::new("n9"),
                kind: SdpKind::Offer,
                sdp: "v=0".into(),
            }),
            0,
        );
        assert!(fx.media.is_empty());
        // Stream needs too, each way, and only for a node the room spans.
        let needs = |node: &str| MediaEvent::RelayStreams {
            room: room(),
            node: NodeId::new(node),
            publisher: ClientId::from_string("c"),
            track: "cam".into(),
            active: vec![true, false],
        };
        let fx = h.handle(Input::Media(needs("n2")), 0);
        assert!(
            matches!(&fx.cluster[..], [ClusterOut::RelayStreams { node, track, active, .. }]
            if node.as_str() == "n2" && track == "cam" && active == &[true, false])
        );
        let fx = h.handle(Input::Media(needs("n9")), 0);
        assert!(fx.cluster.is_empty());
        let told = |node: &str| ClusterIn::RelayStreams {
            room: room(),
            node: NodeId::new(node),
            publisher: a.clone(),
            track: "cam".into(),
            active: vec![false, true],
        };
        let fx = h.handle(Input::Cluster(told("n2")), 0);
        assert!(
            matches!(&fx.media[..], [MediaCommand::RelayStreams { node, publisher, active, .. }]
            if node.as_str() == "n2" && publisher == &a && active == &[false, true])
        );
        let fx = h.handle(Input::Cluster(told("n9")), 0);
        assert!(fx.media.is_empty());

        // The last member here leaves: the relay goes with it.
        let fx = msg(&mut h, &a, r#"{"type":"leave"}"#, 0);
        assert!(matches!(&fx.cluster[..], [ClusterOut::Left { id, .. }] if id == &a));
        assert!(
            matches!(&fx.media[..], [MediaCommand::Leave { .. }, MediaCommand::RelayClose { node, .. }] if node.as_str() == "n2")
        );
    }

    #[test]
    fn redirects_refusals_and_joins_of_gone_sockets() {
        let mut h = node_hub();
        let a = connect(&mut h);
        msg(
            &mut h,
            &a,
            r#"{"type":"join","room":"r","redirect":true}"#,
            0,
        );
        let fx = h.handle(
            Input::Cluster(ClusterIn::Redirect {
                conn: a.clone(),
                room: room(),
                url: "ws://n2/ws".into(),
                node: NodeId::new("n2"),
            }),
            0,
        );
        assert!(
            matches!(&fx.sends[..], [(_, Outgoing::Message(ServerMessage::Redirect { url, .. }))] if url == "ws://n2/ws")
        );
        assert_eq!(h.stats().participants, 0);
        msg(&mut h, &a, r#"{"type":"join","room":"r"}"#, 0);
        let fx = h.handle(
            Input::Cluster(ClusterIn::Refused {
                conn: a.clone(),
                code: ErrorCode::RoomFull,
                message: "full".into(),
            }),
            0,
        );
        assert!(matches!(
            &fx.sends[..],
            [(
                _,
                Outgoing::Message(ServerMessage::Error {
                    code: ErrorCode::RoomFull,
                    ..
                })
            )]
        ));

        // Placed after its socket went: the cluster is told to undo it.
        let b = connect(&mut h);
        msg(&mut h, &b, r#"{"type":"join","room":"r"}"#, 0);
        h.handle(
            Input::Disconnected {
                conn: b.clone(),
                hold: false,
            },
            0,
        );
        let fx = h.handle(
            Input::Cluster(ClusterIn::Entered {
                conn: b.clone(),
                room: room(),
                mode: RoomMode::Sfu,
                members: vec![],
                taken: None,
            }),
            0,
        );
        assert!(matches!(&fx.cluster[..], [ClusterOut::Left { id, .. }] if id == &b));
        assert!(fx.sends.is_empty() && fx.media.is_empty());
    }

    #[test]
    fn a_member_taken_over_elsewhere_leaves_here_without_a_word_to_the_room() {
        let mut h = node_hub();
        let a = connect(&mut h);
        let b = connect(&mut h);
        join_via_cluster(&mut h, &a, vec![]);
        join_via_cluster(&mut h, &b, vec![]);
        // a's client moved to n2 (it still has its old socket here).
        let fx = h.handle(
            Input::Cluster(ClusterIn::Moved {
                room: room(),
                id: a.clone(),
                node: NodeId::new("n2"),
            }),
            1000,
        );
        assert!(fx.sends.is_empty(), "{fx:?}");
        // Its media stays until it switches over; the room now spans n2.
        assert!(
            matches!(&fx.media[..], [MediaCommand::RelayOpen { node, .. }] if node.as_str() == "n2")
        );
        // Its old socket closes: it goes, silently, media and all.
        let fx = h.handle(
            Input::Disconnected {
                conn: a.clone(),
                hold: true,
            },
            1000,
        );
        assert!(fx.sends.is_empty(), "{fx:?}");
        assert!(
            matches!(&fx.media[..], [MediaCommand::Leave { participant, .. }] if participant == &a)
        );
        // The room still lists it, on n2, and messages for it go there.
        let fx = msg(&mut h, &b, r#"{"type":"list-clients"}"#, 1000);
        assert_eq!(
            fx.sends[0].1,
            Outgoing::Message(ServerMessage::ClientsList {
                clients: vec![a.clone()]
            })
        );
        let fx = msg(
            &mut h,
            &b,
            &format!(r#"{{"type":"answer","target":"{a}","sdp":"x"}}"#),
            1000,
        );
        assert!(
            matches!(&fx.cluster[..], [ClusterOut::Relay { node, .. }] if node.as_str() == "n2")
        );
    }

    #[test]
    fn a_relay_offer_that_overtakes_the_room_event_waits_for_its_relay() {
        let mut h = node_hub();
        let a = connect(&mut h);
        join_via_cluster(&mut h, &a, vec![]);
        let offer = |h: &mut Hub, sdp: &str| {
            h.handle(
                Input::Cluster(ClusterIn::RelaySdp {
                    room: room(),
                    node: NodeId::new("n2"),
                    kind: SdpKind::Offer,
                    sdp: sdp.into(),
                }),
                1000,
            )
        };
        // n2's offer arrives before this node knows n2 serves the room:
        // no relay to hand it to yet.
        assert!(offer(&mut h, "v=0 first").media.is_empty());
        assert!(offer(&mut h, "v=0 latest").media.is_empty());
        // The room event follows: the relay opens and gets n2's latest offer.
        let fx = h.handle(
            Input::Cluster(ClusterIn::Joined {
                room: room(),
                member: remote("c", "Cy"),
            }),
            1000,
        );
        assert!(
            matches!(&fx.media[..], [
                MediaCommand::RelayOpen { node: open, .. },
                MediaCommand::RelaySdp { node, kind: SdpKind::Offer, sdp, .. },
            ] if open.as_str() == "n2" && node.as_str() == "n2" && sdp == "v=0 latest"),
            "{fx:?}"
        );
        // Once open, offers go straight through, and nothing is held twice.
        let fx = offer(&mut h, "v=0 again");
        assert!(
            matches!(&fx.media[..], [MediaCommand::RelaySdp { sdp, .. }] if sdp == "v=0 again"),
            "{fx:?}"
        );
    }

    #[test]
    fn a_remote_member_s_screen_share_reaches_the_media_plane_and_goes_with_it() {
        let mut h = node_hub();
        let a = connect(&mut h);
        join_via_cluster(&mut h, &a, vec![remote("b", "Bob")]);
        let mut media = crate::protocol::MediaState::default();
        media.tracks.push(crate::protocol::TrackInfo {
            id: "scr".into(),
            source: crate::protocol::TrackSource::Screen,
        });
        let fx = h.handle(
            Input::Cluster(ClusterIn::Media {
                room: room(),
                id: ClientId::from_string("b"),
                media,
            }),
            0,
        );
        assert!(
            matches!(&fx.media[..], [MediaCommand::ScreenTracks { publisher, tracks, .. }]
                if publisher.as_str() == "b" && tracks == &["scr".to_string()]),
            "{fx:?}"
        );
        let fx = h.handle(
            Input::Cluster(ClusterIn::Left {
                room: room(),
                id: ClientId::from_string("b"),
            }),
            0,
        );
        assert!(
            fx.media.iter().any(
                |c| matches!(c, MediaCommand::ScreenTracks { publisher, tracks, .. }
                if publisher.as_str() == "b" && tracks.is_empty())
            ),
            "{fx:?}"
        );
    }
}
