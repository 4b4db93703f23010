//! Permissions decide what is forwarded: a participant without `publish`
//! has its tracks ignored, one without `subscribe` receives nothing, and a
//! subscriber-only client that never offers gets the server's offer.

mod common;

use std::time::Duration;

use common::{payload, Net};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::media::MediaPlane;

#[test]
fn permissions_gate_publishing_and_subscribing() {
    let mut net = Net::new(1);
    let publisher = net.join("pub", true, false);
    net.clients[publisher].add_track("pub-video", RtpCodecKind::Video);
    let muted = net.join("muted", false, true);
    net.clients[muted].add_track("muted-video", RtpCodecKind::Video);
    assert!(
        net.pump_until(Duration::from_secs(20), |n| n.clients[0].connected
            && n.clients[1].connected)
    );
    let mut seq = 0u16;
    let mut send = |net: &mut Net| {
        seq = seq.wrapping_add(1);
        net.clients[publisher].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 500), true);
        net.clients[muted].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 500), true);
    };
    // Tracks open on the server with their first packets.
    net.pump_for(
        Duration::from_millis(500),
        Duration::from_millis(10),
        &mut send,
    );
    // A viewer that publishes nothing and sends no offer: it gets ours.
    let viewer = net.join("viewer", false, true);
    let ok = |n: &Net| {
        n.clients[viewer]
            .received
            .get("pub-video")
            .is_some_and(|r| r.packets >= 50)
            && n.clients[muted]
                .received
                .get("pub-video")
                .is_some_and(|r| r.packets >= 50)
    };
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !ok(&net) && std::time::Instant::now() < end {
        net.pump_for(
            Duration::from_millis(100),
            Duration::from_millis(10),
            &mut send,
        );
    }
    assert!(
        net.clients[viewer].connected,
        "a subscriber-only client connects through the server's offer"
    );
    assert!(ok(&net), "viewer and muted member receive the publisher");
    assert!(
        net.clients[viewer].received.get("muted-video").is_none(),
        "tracks of a member without publish are not forwarded"
    );
    assert!(
        net.clients[publisher].received.is_empty(),
        "a member without subscribe receives nothing"
    );
    assert_eq!(net.clients[publisher].offers_received, 0);
    let stats = net.plane.stats();
    assert_eq!(stats.tracks, 1);
    let not_permitted = stats
        .dropped
        .iter()
        .find(|(k, _)| k == "not_permitted")
        .map(|(_, v)| *v);
    assert!(not_permitted.unwrap_or(0) > 0, "{stats:?}");
}
