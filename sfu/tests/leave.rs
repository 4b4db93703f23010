//! A participant who leaves has its tracks removed from every subscriber
//! (the server renegotiates) and its state freed; the others carry on.

mod common;

use std::time::Duration;

use common::{payload, Net};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::media::MediaPlane;

#[test]
fn leaving_removes_the_tracks_from_everyone_and_frees_the_connection() {
    let mut net = Net::new(1);
    for name in ["ann", "ben", "cat"] {
        let i = net.join(name, true, true);
        net.clients[i].add_track(&format!("{name}-video"), RtpCodecKind::Video);
    }
    let mut seq = 0u16;
    let mut send = |net: &mut Net| {
        seq = seq.wrapping_add(1);
        for c in net.clients.iter_mut() {
            c.send_rtp(0, seq, seq as u32 * 3000, payload(seq, 400), true);
        }
    };
    let everyone_receives = |n: &Net| n.clients.iter().all(|c| c.received.len() == 2);
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !everyone_receives(&net) && std::time::Instant::now() < end {
        net.pump_for(
            Duration::from_millis(100),
            Duration::from_millis(10),
            &mut send,
        );
    }
    assert!(everyone_receives(&net));
    let offers_before: Vec<u32> = net.clients.iter().map(|c| c.offers_received).collect();
    let stats = net.plane.stats();
    assert_eq!((stats.connections, stats.tracks), (3, 3));

    net.leave(2);
    let cat_gone = |n: &Net| {
        n.clients[..2].iter().all(|c| {
            c.pc.remote_description()
                .is_some_and(|d| !d.sdp.contains("cat-video"))
        })
    };
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !cat_gone(&net) && std::time::Instant::now() < end {
        net.pump_for(
            Duration::from_millis(50),
            Duration::from_millis(10),
            &mut send,
        );
    }
    assert!(
        cat_gone(&net),
        "the server's new offers no longer carry cat's track"
    );
    for i in 0..2 {
        assert!(
            net.clients[i].offers_received > offers_before[i],
            "client {i} was re-offered"
        );
    }
    let stats = net.plane.stats();
    assert_eq!(
        (stats.connections, stats.tracks),
        (2, 2),
        "cat's connection and track are freed"
    );
    // Ann and Ben still receive each other.
    let counts: Vec<u64> = net.clients[..2]
        .iter()
        .map(|c| c.received.values().map(|r| r.packets).sum())
        .collect();
    net.pump_for(
        Duration::from_millis(700),
        Duration::from_millis(10),
        &mut send,
    );
    for i in 0..2 {
        let other = if i == 0 { "ben-video" } else { "ann-video" };
        let now: u64 = net.clients[i].received.values().map(|r| r.packets).sum();
        assert!(now > counts[i] + 20, "client {i} still receives");
        assert!(net.clients[i].received.contains_key(other));
    }
}
