//! Permissions decide what is forwarded: a participant without `publish`
//! has its tracks ignored, one without `subscribe` receives nothing, and a
//! subscriber-only client that never offers gets the server's offer. Runs
//! on the in-memory network with a virtual clock.

mod common;

use std::time::Duration;

use common::payload;
use common::sim::SimNet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use sfu::stats::Drop;

const TICK: Duration = Duration::from_millis(10);

#[test]
fn permissions_gate_publishing_and_subscribing() {
    let mut net = SimNet::new(1);
    let publisher = net.join("pub", true, false);
    net.clients[publisher].add_track("pub-video", RtpCodecKind::Video);
    let muted = net.join("muted", false, true);
    net.clients[muted].add_track("muted-video", RtpCodecKind::Video);
    assert!(
        net.step_until(TICK, Duration::from_secs(20), |n| n.clients[0].connected()
            && n.clients[1].connected())
    );
    let mut seq = 0u16;
    let mut send = |net: &mut SimNet| {
        seq = seq.wrapping_add(1);
        let now = net.now;
        net.clients[publisher].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 500), now);
        net.clients[muted].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 500), now);
    };
    // Tracks open on the server with their first packets.
    net.run(Duration::from_millis(500), TICK, &mut send);
    // A viewer that publishes nothing and sends no offer: it gets ours.
    let viewer = net.join("viewer", false, true);
    let ok = |n: &SimNet| {
        n.clients[viewer].packets_of("pub-video") >= 50
            && n.clients[muted].packets_of("pub-video") >= 50
    };
    let mut steps = 0;
    while !ok(&net) && steps < 3000 {
        send(&mut net);
        net.step(TICK);
        steps += 1;
    }
    assert!(
        net.clients[viewer].connected(),
        "a subscriber-only client connects through the server's offer"
    );
    assert!(ok(&net), "viewer and muted member receive the publisher");
    assert!(
        !net.clients[viewer].received.contains_key("muted-video"),
        "tracks of a member without publish are not forwarded"
    );
    assert!(
        net.clients[publisher].received.is_empty(),
        "a member without subscribe receives nothing"
    );
    assert_eq!(net.clients[publisher].offers_received, 0);
    let c = &net.shard.counts;
    assert_eq!(c.tracks, 1);
    assert!(c.dropped[Drop::NotPermitted as usize] > 0, "{c:?}");
}
