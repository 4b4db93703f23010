//! The server trickles its host candidates to each client once, after its
//! first answer or offer, and then signals the end of candidates. On the
//! simulated network, in virtual time: the candidates come from the
//! shard, which advertises [`SERVER`]. (That the runtime advertises the
//! port it bound is shown on real UDP by `forwarding.rs`, whose clients
//! reach the server only through the candidates in its SDP.)

mod common;

use std::time::Duration;

use common::sim::{SimNet, SERVER};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

const FRAME: Duration = Duration::from_millis(10);

#[test]
fn server_candidates_are_trickled_once_then_ended() {
    let mut net = SimNet::new(3);
    let publisher = net.join("pub", true, true);
    net.clients[publisher].add_track("cam", RtpCodecKind::Video);
    let viewer = net.join("viewer", false, true);
    assert!(
        net.step_until(FRAME, Duration::from_secs(20), |n| n.clients[publisher]
            .connected())
    );
    // The viewer is offered the publisher's track once its packets flow.
    let mut seq = 0u16;
    assert!(
        net.media_until(&mut seq, FRAME, Duration::from_secs(20), |n| n.clients
            [viewer]
            .connected())
    );
    let port = SERVER.port();
    for c in &net.clients {
        let (last, hosts) = c.trickled.split_last().expect("candidates were trickled");
        assert_eq!(last, &None, "{}: ends with end-of-candidates", c.id);
        assert!(!hosts.is_empty(), "{}: at least one host candidate", c.id);
        for h in hosts {
            let h = h.as_ref().expect("only the last is the end marker");
            assert!(h.candidate.starts_with("candidate:"), "{h:?}");
            assert!(h.candidate.contains(" typ host"), "{h:?}");
            assert!(
                h.candidate.contains(&format!(" {port} ")),
                "server port {port} in {h:?}"
            );
            assert!(h.sdp_mid.is_some(), "{h:?}");
        }
    }
    // Renegotiation does not trickle again: the publisher adds a track
    // (its offer, the server's answer), and the viewer is offered it.
    let before: Vec<usize> = net.clients.iter().map(|c| c.trickled.len()).collect();
    let offers = net.clients[viewer].offers_received;
    net.clients[publisher].add_track("mic", RtpCodecKind::Audio);
    assert!(
        net.media_until(&mut seq, FRAME, Duration::from_secs(20), |n| n.clients
            [viewer]
            .packets_of("mic")
            > 0),
        "the viewer receives the new track"
    );
    assert!(net.clients[viewer].offers_received > offers);
    let after: Vec<usize> = net.clients.iter().map(|c| c.trickled.len()).collect();
    assert_eq!(after, before);
}
