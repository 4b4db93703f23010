//! ICE consent at the intervals RFC 7675 allows never makes a connection
//! flap, and a connection is reported lost only once consent has really
//! expired. Runs on the in-memory network with a virtual clock.

mod common;

use std::time::Duration;

use common::sim::SimNet;
use common::{payload, ClientOptions};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

const FRAME: Duration = Duration::from_millis(33);

/// A publisher and a subscriber whose ICE agents send a consent check only
/// every 6 seconds, connected and forwarding.
fn call(seed: u64) -> SimNet {
    let mut net = SimNet::new(seed);
    let slow = ClientOptions {
        keepalive: Some(Duration::from_secs(6)),
        ..ClientOptions::default()
    };
    let a = net.join_with("a", true, true, slow.clone());
    net.clients[a].add_track("a-video", RtpCodecKind::Video);
    net.join_with("b", false, true, slow);
    let mut seq = 0u16;
    let mut ok = false;
    for _ in 0..600 {
        seq = seq.wrapping_add(1);
        let now = net.now;
        net.clients[a].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 200), now);
        net.step(FRAME);
        if net.clients[1].packets_of("a-video") >= 10 {
            ok = true;
            break;
        }
    }
    assert!(ok, "the call did not come up: {:?}", net.shard.counts);
    net
}

#[test]
fn consent_every_six_seconds_never_flaps_over_a_minute() {
    let mut net = call(1);
    assert!(net.clients.iter().all(|c| c.connected()));
    let states_before: Vec<usize> = net.clients.iter().map(|c| c.states.len()).collect();
    let received_before = net.clients[1].packets_of("a-video");
    let mut seq = 10_000u16;
    net.run(Duration::from_secs(60), FRAME, |n| {
        seq = seq.wrapping_add(1);
        let now = n.now;
        n.clients[0].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 200), now);
    });
    assert_eq!(
        net.shard.counts.disconnects, 0,
        "the server saw a connection lose consent"
    );
    for (c, before) in net.clients.iter().zip(states_before) {
        assert_eq!(
            &c.states[before..],
            &[] as &[RTCPeerConnectionState],
            "{} changed state",
            c.id
        );
    }
    // Media kept flowing the whole minute (about 30 packets a second).
    let got = net.clients[1].packets_of("a-video") - received_before;
    assert!(got > 1700, "only {got} packets in a minute");
}

#[test]
fn silence_is_a_lost_connection_only_after_consent_expires() {
    let mut net = call(2);
    // The subscriber goes silent: no consent checks, no reports.
    net.clients[1].uplink_blocked = true;
    let mut seq = 20_000u16;
    let mut send = |n: &mut SimNet| {
        seq = seq.wrapping_add(1);
        let now = n.now;
        n.clients[0].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 200), now);
    };
    net.run(Duration::from_secs(25), FRAME, &mut send);
    assert_eq!(
        net.shard.counts.disconnects, 0,
        "reported lost before 30 s without consent"
    );
    net.run(Duration::from_secs(20), FRAME, &mut send);
    assert_eq!(
        net.shard.counts.disconnects, 1,
        "a subscriber silent for 45 s is not reported lost"
    );
}
