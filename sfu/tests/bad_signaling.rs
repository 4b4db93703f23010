//! Bogus SDP and candidates get a `media_rejected` error for the sender
//! alone; nothing panics and the other participants carry on. On the
//! simulated network, in virtual time: the shard itself takes the bogus
//! commands, so a panic fails the test where it happens.

mod common;

use std::time::Duration;

use common::sim::SimNet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::media::MediaCommand;
use signaling::protocol::IceCandidate;

const FRAME: Duration = Duration::from_millis(10);
const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn bogus_sdp_and_candidates_are_rejected_without_harm() {
    let mut net = SimNet::new(5);
    let a = net.join("a", true, true);
    net.clients[a].add_track("a-video", RtpCodecKind::Video);
    let b = net.join("b", true, true);
    let mut seq = 0u16;
    assert!(net.media_until(&mut seq, FRAME, PATIENCE, |n| n.clients[b]
        .packets_of("a-video")
        >= 30));

    // A third participant sends nonsense; its errors come back as events.
    let c = net.join("c", true, true);
    let cid = net.clients[c].id.clone();
    let now = net.now;
    for sdp in ["", "not sdp at all", "v=0\r\nm=video 9 RTP/AVP 96\r\n"] {
        net.shard.handle_command(
            MediaCommand::Offer {
                room: net.room.clone(),
                participant: cid.clone(),
                sdp: sdp.into(),
            },
            now,
        );
    }
    net.shard.handle_command(
        MediaCommand::Answer {
            room: net.room.clone(),
            participant: cid.clone(),
            sdp: "v=0\r\n".into(),
        },
        now,
    );
    // A candidate for b's established connection that makes no sense.
    net.shard.handle_command(
        MediaCommand::Candidate {
            room: net.room.clone(),
            participant: net.clients[b].id.clone(),
            candidate: Some(IceCandidate {
                candidate: "candidate:garbage".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: None,
            }),
        },
        now,
    );
    let error_count = |n: &SimNet| n.clients.iter().map(|c| c.errors.len()).sum::<usize>();
    net.step_until(FRAME, PATIENCE, |n| error_count(n) >= 5);
    let errors: Vec<(usize, &String)> = net
        .clients
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.errors.iter().map(move |e| (i, e)))
        .collect();
    assert_eq!(errors.len(), 5, "{errors:?}");
    // Each is `code: message`, with a message.
    assert!(errors.iter().all(|(_, e)| e
        .strip_prefix("media_rejected: ")
        .is_some_and(|m| !m.is_empty())));
    assert_eq!(errors.iter().filter(|(i, _)| *i == c).count(), 4);

    // The call between a and b is unharmed.
    let before = net.clients[b].packets_of("a-video");
    assert!(net.media_until(&mut seq, FRAME, PATIENCE, |n| n.clients[b]
        .packets_of("a-video")
        >= before + 30));
    assert_eq!(net.shard.counts.connections, 3);
}
