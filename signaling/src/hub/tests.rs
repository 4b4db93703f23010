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
