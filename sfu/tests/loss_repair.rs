//! With 5% of the server-to-subscriber RTP lost on the way (seeded loss on
//! the in-memory network, virtual clock), the subscriber still ends with
//! every packet: its NACKs are answered by the server from its own per-leg
//! cache. The NACKs are read by the shard's own SRTCP path, and with that
//! off (`own_srtcp_in`) by the library's; the repair is the same.

mod common;

use std::time::Duration;

use common::payload;
use common::sim::SimNet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use sfu::MediaConfig;

const TICK: Duration = Duration::from_millis(5);

#[test]
fn server_retransmissions_repair_five_percent_downstream_loss() {
    for own_rtcp in [true, false] {
        repairs_downstream_loss(own_rtcp);
    }
}

fn repairs_downstream_loss(own_rtcp: bool) {
    // The server's default media configuration. Retransmissions to a
    // subscriber stay within a share of its bandwidth estimate (`bwe.rs`
    // tests that budget); the stream here, about 0.5 Mbit/s, is one whose
    // repairs fit in it.
    let mut net = SimNet::with_config(0x5eed, |c| {
        c.bwe = MediaConfig::default().bwe.settings();
        c.own_srtcp_in = own_rtcp;
    });
    let publisher = net.join("pub", true, false);
    net.clients[publisher].add_track("pub-video", RtpCodecKind::Video);
    let viewer = net.join("viewer", false, true);
    net.clients[viewer].downlink_loss = 0.05;

    let mut seq = 1000u16;
    let mut send = |net: &mut SimNet| {
        seq = seq.wrapping_add(1);
        let now = net.now;
        net.clients[publisher].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 300), now);
    };
    // Media flows from the start so the track opens and the viewer gets an offer.
    let mut steps = 0;
    while net.clients[viewer].packets_of("pub-video") < 600 && steps < 12_000 {
        send(&mut net);
        net.step(TICK);
        steps += 1;
    }
    // Let the last NACKs be answered (a second of virtual time, no media).
    net.run(Duration::from_secs(1), TICK, |_| {});

    let r = net.clients[viewer]
        .received
        .get("pub-video")
        .expect("viewer receives the track");
    let c = &net.shard.counts;
    assert!(r.packets >= 600, "received {}", r.packets);
    assert!(
        net.lost >= 10,
        "only {} packets were lost on the way",
        net.lost
    );
    assert!(c.nacks_answered >= net.lost / 2, "{c:?}");
    if own_rtcp {
        // Every NACK (and receiver report, and transport-wide feedback)
        // came through the shard's own path once the connection was up.
        assert!(c.own_srtcp_in >= net.lost / 2, "{c:?}");
    } else {
        assert_eq!(c.own_srtcp_in, 0, "{c:?}");
    }
    assert_eq!(
        r.gaps(),
        0,
        "every packet between the first and the last received arrived ({} distinct, {} lost on the way, {} retransmitted)",
        r.seqs.len(),
        net.lost,
        c.nacks_answered
    );
}
