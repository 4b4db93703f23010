//! A participant who leaves has its tracks removed from every subscriber
//! (the server renegotiates) and its state freed; the others carry on.
//! Runs on the in-memory network with a virtual clock.

mod common;

use std::time::Duration;

use common::payload;
use common::sim::SimNet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

const TICK: Duration = Duration::from_millis(10);

#[test]
fn leaving_removes_the_tracks_from_everyone_and_frees_the_connection() {
    let mut net = SimNet::new(1);
    for name in ["ann", "ben", "cat"] {
        let i = net.join(name, true, true);
        net.clients[i].add_track(&format!("{name}-video"), RtpCodecKind::Video);
    }
    let mut seq = 0u16;
    let mut send = |net: &mut SimNet| {
        seq = seq.wrapping_add(1);
        let now = net.now;
        for c in net.clients.iter_mut() {
            c.send_rtp(0, seq, seq as u32 * 3000, payload(seq, 400), now);
        }
    };
    let everyone_receives = |n: &SimNet| n.clients.iter().all(|c| c.received.len() == 2);
    let mut steps = 0;
    while !everyone_receives(&net) && steps < 3000 {
        send(&mut net);
        net.step(TICK);
        steps += 1;
    }
    assert!(everyone_receives(&net), "{:?}", net.shard.counts);
    let offers_before: Vec<u32> = net.clients.iter().map(|c| c.offers_received).collect();
    let c = &net.shard.counts;
    assert_eq!((c.connections, c.tracks), (3, 3));

    net.leave(2);
    let cat_gone = |n: &SimNet| {
        n.clients[..2].iter().all(|c| {
            c.pc.remote_description()
                .is_some_and(|d| !d.sdp.contains("cat-video"))
        })
    };
    let mut steps = 0;
    while !cat_gone(&net) && steps < 3000 {
        send(&mut net);
        net.step(TICK);
        steps += 1;
    }
    assert!(
        cat_gone(&net),
        "the server's new offers no longer carry cat's track"
    );
    for (i, before) in offers_before.iter().take(2).enumerate() {
        assert!(
            net.clients[i].offers_received > *before,
            "client {i} was re-offered"
        );
    }
    let c = &net.shard.counts;
    assert_eq!(
        (c.connections, c.tracks),
        (2, 2),
        "cat's connection and track are freed"
    );
    // Ann and Ben still receive each other.
    let counts: Vec<u64> = net.clients[..2]
        .iter()
        .map(|c| c.received.values().map(|r| r.packets).sum())
        .collect();
    net.run(Duration::from_millis(700), TICK, &mut send);
    for (i, before) in counts.iter().enumerate() {
        let other = if i == 0 { "ben-video" } else { "ann-video" };
        let now: u64 = net.clients[i].received.values().map(|r| r.packets).sum();
        assert!(now > before + 20, "client {i} still receives");
        assert!(net.clients[i].received.contains_key(other));
    }
}
