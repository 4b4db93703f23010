//! Bogus SDP and candidates get a `media_rejected` error for the sender
//! alone; nothing panics and the other participants carry on.

mod common;

use std::time::Duration;

use common::{payload, Net};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::error::ErrorCode;
use signaling::media::{MediaCommand, MediaEvent, MediaPlane};
use signaling::protocol::IceCandidate;

#[test]
fn bogus_sdp_and_candidates_are_rejected_without_harm() {
    let mut net = Net::new(1);
    let a = net.join("a", true, true);
    net.clients[a].add_track("a-video", RtpCodecKind::Video);
    let b = net.join("b", true, true);
    let mut seq = 0u16;
    let mut send = |net: &mut Net| {
        seq = seq.wrapping_add(1);
        net.clients[a].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 300), true);
    };
    let flowing = |n: &Net, k: u64| {
        n.clients[b]
            .received
            .get("a-video")
            .is_some_and(|r| r.packets >= k)
    };
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !flowing(&net, 30) && std::time::Instant::now() < end {
        net.pump_for(
            Duration::from_millis(100),
            Duration::from_millis(10),
            &mut send,
        );
    }
    assert!(flowing(&net, 30));

    // A third participant sends nonsense; its errors come back as events.
    let c = net.join("c", true, true);
    let cid = net.clients[c].id.clone();
    for sdp in ["", "not sdp at all", "v=0\r\nm=video 9 RTP/AVP 96\r\n"] {
        net.plane.handle(MediaCommand::Offer {
            room: net.room.clone(),
            participant: cid.clone(),
            sdp: sdp.into(),
        });
    }
    net.plane.handle(MediaCommand::Answer {
        room: net.room.clone(),
        participant: cid.clone(),
        sdp: "v=0\r\n".into(),
    });
    // A candidate for b's established connection that makes no sense.
    net.plane.handle(MediaCommand::Candidate {
        room: net.room.clone(),
        participant: net.clients[b].id.clone(),
        candidate: Some(IceCandidate {
            candidate: "candidate:garbage".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        }),
    });
    let mut errors = Vec::new();
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while errors.len() < 5 && std::time::Instant::now() < end {
        while let Ok(ev) = net.events.try_recv() {
            match ev {
                MediaEvent::Error {
                    participant,
                    code,
                    message,
                } => errors.push((participant, code, message)),
                // Everything else goes to the clients as usual.
                other => {
                    let _ = other;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(errors.len(), 5, "{errors:?}");
    assert!(errors
        .iter()
        .all(|(_, code, _)| *code == ErrorCode::MediaRejected));
    assert_eq!(errors.iter().filter(|(p, _, _)| *p == cid).count(), 4);
    assert!(errors.iter().all(|(_, _, m)| !m.is_empty()));

    // The call between a and b is unharmed.
    let before = net.clients[b].received["a-video"].packets;
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while !flowing(&net, before + 30) && std::time::Instant::now() < end {
        net.pump_for(
            Duration::from_millis(100),
            Duration::from_millis(10),
            &mut send,
        );
    }
    assert!(flowing(&net, before + 30));
    assert_eq!(net.plane.stats().connections, 3);
}
