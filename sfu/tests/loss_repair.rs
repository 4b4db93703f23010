//! With 5% of the server-to-subscriber RTP lost on the way (a seeded lossy
//! relay in the test), the subscriber still ends with every packet: its
//! NACKs are answered by the server from its own per-leg cache.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{payload, LossyRelay, Net};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::media::MediaPlane;

#[test]
fn server_retransmissions_repair_five_percent_downstream_loss() {
    let mut net = Net::new(1);
    let publisher = net.join("pub", true, false);
    net.clients[publisher].add_track("pub-video", RtpCodecKind::Video);
    let relay = LossyRelay::start(net.server_addr(), 5, 0x5eed);
    let viewer = net.join("viewer", false, true);
    net.clients[viewer].server_override = Some(relay.addr);

    let mut seq = 1000u16;
    let mut send = |net: &mut Net| {
        seq = seq.wrapping_add(1);
        net.clients[publisher].send_rtp(
            0,
            seq,
            seq as u32 * 3000,
            payload(seq, 900),
            seq.is_multiple_of(3),
        );
    };
    // Media flows from the start so the track opens and the viewer gets an offer.
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < end
        && net.clients[viewer]
            .received
            .get("pub-video")
            .is_none_or(|r| r.packets < 600)
    {
        net.pump_for(
            Duration::from_millis(100),
            Duration::from_millis(5),
            &mut send,
        );
    }
    // Let the last NACKs be answered.
    net.pump_for(
        Duration::from_millis(600),
        Duration::from_millis(5),
        &mut send,
    );
    net.pump_for(Duration::from_millis(500), Duration::from_secs(10), |_| {});

    let r = net.clients[viewer]
        .received
        .get("pub-video")
        .expect("viewer receives the track");
    let lost_on_the_way = relay.dropped.load(Ordering::Relaxed);
    let stats = net.plane.stats();
    assert!(r.packets >= 600, "received {}", r.packets);
    assert!(
        lost_on_the_way >= 10,
        "the relay dropped {lost_on_the_way} packets"
    );
    assert!(stats.nacks_answered >= lost_on_the_way / 2, "{stats:?}");
    assert_eq!(
        r.gaps(),
        0,
        "every packet between the first and the last received arrived ({} distinct, {} dropped by the relay, {} retransmitted)",
        r.seqs.len(),
        lost_on_the_way,
        stats.nacks_answered
    );
}
