//! A shard past its capacity sheds RTP that waited too long unread
//! (`stale_input`); the publisher's retransmission of it comes back fresh
//! but carries media as old. While the shard is behind, a repair further
//! than `[media] max_input_lag` behind its stream's newest packet is shed
//! too (`stale_repair`); a recent repair still goes through, and so does
//! any repair while the shard keeps up (a publisher far away).

mod common;

use std::time::Duration;

use common::payload;
use common::sim::SimNet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use sfu::stats::Drop;

const TICK: Duration = Duration::from_millis(5);
/// 90 kHz video: a packet every 33 ms of media time.
const TICKS_PER_SEQ: u32 = 3000;

/// A publisher of one video track and a viewer of it: (net, publisher,
/// viewer).
fn room(seed: u64) -> (SimNet, usize, usize) {
    let mut net = SimNet::new(seed);
    let publisher = net.join("pub", true, false);
    net.clients[publisher].add_track("pub-video", RtpCodecKind::Video);
    let viewer = net.join("viewer", false, true);
    (net, publisher, viewer)
}

/// Packet `seq` of the publisher's video (its RTP clock at 33 ms a
/// packet), then one tick.
fn send_video(net: &mut SimNet, publisher: usize, seq: u16) {
    let now = net.now;
    net.clients[publisher].send_rtp(
        0,
        seq,
        u32::from(seq) * TICKS_PER_SEQ,
        payload(seq, 300),
        now,
    );
    net.step(TICK);
}

#[test]
fn late_repairs_are_shed_only_while_the_shard_is_behind() {
    let (mut net, publisher, viewer) = room(0x57a1e);
    let send = |net: &mut SimNet, seq: u16| send_video(net, publisher, seq);
    // Live media until the viewer has it, then 90 packets more with three
    // gaps: 80, 60 and 5 packets behind the newest.
    let mut seq = 1000u16;
    while net.clients[viewer].packets_of("pub-video") == 0 && seq < 5000 {
        send(&mut net, seq);
        seq += 1;
    }
    let (far, stale, recent) = (seq + 10, seq + 30, seq + 85);
    for s in seq..=seq + 90 {
        if ![far, stale, recent].contains(&s) {
            send(&mut net, s);
        }
    }
    net.run(Duration::from_millis(200), TICK, |_| {});
    let shed = |net: &SimNet| net.shard.counts.dropped[Drop::StaleRepair as usize];
    let got = |net: &SimNet| net.clients[viewer].packets_of("pub-video");
    assert_eq!(shed(&net), 0);

    // Keeping up: a repair 80 packets (2.7 s) behind is forwarded.
    let before = got(&net);
    send(&mut net, far);
    net.run(Duration::from_millis(100), TICK, |_| {});
    assert_eq!(got(&net), before + 1, "a late repair while keeping up");

    net.shard.behind = true;
    // Behind: 60 packets (2 s) behind the newest, past the bound (300 ms).
    let before = got(&net);
    send(&mut net, stale);
    net.run(Duration::from_millis(100), TICK, |_| {});
    assert_eq!(got(&net), before, "a stale repair while behind is shed");
    assert_eq!(shed(&net), 1);
    // Behind: 5 packets (167 ms) behind, within the bound.
    send(&mut net, recent);
    net.run(Duration::from_millis(100), TICK, |_| {});
    assert_eq!(got(&net), before + 1, "a recent repair goes through");
    assert_eq!(shed(&net), 1);
}

/// A subscriber's NACKs that could not get through for a while (its uplink
/// was down while its downlink lost packets) arrive together when it comes
/// back, asking for media seconds old. A shard that keeps up answers them;
/// one that is behind drops the answers as `stale_repair`.
#[test]
fn late_nacks_are_answered_only_while_the_shard_keeps_up() {
    let (answered, shed) = nacks_after_an_outage(false);
    assert!(answered > 0, "keeping up: {answered} answered");
    assert_eq!(shed, 0);
    // Behind, only the losses of the outage's last 300 ms of media (if
    // any) are recent enough to send again.
    let (answered_behind, shed) = nacks_after_an_outage(true);
    assert!(shed > 0, "behind: {shed} shed");
    assert!(
        answered_behind < answered && answered_behind + shed >= answered,
        "behind: {answered_behind} answered and {shed} shed, keeping up {answered} answered"
    );
}

/// (NACKed packets sent again, answers dropped as stale) after the outage.
fn nacks_after_an_outage(behind: bool) -> (u64, u64) {
    let (mut net, publisher, viewer) = room(0x0ac5);
    let mut seq = 1000u16;
    let mut send = |net: &mut SimNet| {
        send_video(net, publisher, seq);
        seq = seq.wrapping_add(1);
    };
    for _ in 0..4_000 {
        if net.clients[viewer].packets_of("pub-video") >= 50 {
            break;
        }
        send(&mut net);
    }
    // The outage: a fifth of the viewer's packets lost, its NACKs too.
    net.shard.behind = behind;
    net.clients[viewer].uplink_blocked = true;
    net.clients[viewer].downlink_loss = 0.2;
    for _ in 0..60 {
        send(&mut net);
    }
    let before = net.shard.counts.nacks_answered;
    net.clients[viewer].uplink_blocked = false;
    net.clients[viewer].downlink_loss = 0.0;
    for _ in 0..100 {
        send(&mut net);
    }
    let c = &net.shard.counts;
    (
        c.nacks_answered - before,
        c.dropped[Drop::StaleRepair as usize],
    )
}
