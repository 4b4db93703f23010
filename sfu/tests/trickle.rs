//! The server trickles its host candidates to each client once, after its
//! first answer or offer, and then signals the end of candidates.

mod common;

use std::time::Duration;

use common::{payload, Net};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

#[test]
fn server_candidates_are_trickled_once_then_ended() {
    let mut net = Net::new(1);
    let publisher = net.join("pub", true, true);
    net.clients[publisher].add_track("cam", RtpCodecKind::Video);
    let viewer = net.join("viewer", false, true);
    assert!(net.pump_until(Duration::from_secs(20), |n| n.clients[publisher].connected));
    // The viewer is offered the publisher's track once its packets flow.
    let mut seq = 0u16;
    let mut send = |n: &mut Net| {
        seq = seq.wrapping_add(1);
        n.clients[publisher].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 300), true);
    };
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while !net.clients[viewer].connected && std::time::Instant::now() < end {
        net.pump_for(
            Duration::from_millis(100),
            Duration::from_millis(10),
            &mut send,
        );
    }
    assert!(net.clients[viewer].connected);
    let port = net.server_addr().port();
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
    // Renegotiation (the viewer is offered the publisher's track) does not
    // trickle again.
    let before = net.clients[viewer].trickled.len();
    net.pump_for(
        Duration::from_millis(300),
        Duration::from_millis(10),
        &mut send,
    );
    assert_eq!(net.clients[viewer].trickled.len(), before);
}
