//! A participant that first only watches, then publishes with a plain
//! `addTrack` on its existing connection: the client reuses a transceiver
//! the server offered for forwarding and re-offers it `sendrecv` (browsers
//! do exactly this). Its media must be forwarded, and RTP the server cannot
//! attribute to any track must be counted, never dropped in silence.

mod common;

use std::time::Duration;

use common::payload;
use common::sim::SimNet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

const FRAME: Duration = Duration::from_millis(33);

/// Sends one packet on every published track of every client, then steps.
fn send_all(net: &mut SimNet, seq: u16) {
    let now = net.now;
    for c in net.clients.iter_mut() {
        for i in 0..c.senders.len() {
            c.send_rtp(i, seq, seq as u32 * 3000, payload(seq, 200), now);
        }
    }
    net.step(FRAME);
}

fn until(net: &mut SimNet, seq: &mut u16, mut cond: impl FnMut(&SimNet) -> bool) -> bool {
    for _ in 0..900 {
        *seq = seq.wrapping_add(1);
        send_all(net, *seq);
        if cond(net) {
            return true;
        }
    }
    false
}

fn unknown_ssrc(net: &SimNet) -> u64 {
    sfu::stats::DROP_REASONS
        .iter()
        .find(|(_, n)| *n == "unknown_ssrc")
        .map(|(d, _)| net.shard.counts.dropped[*d as usize])
        .unwrap()
}

#[test]
fn a_watcher_publishing_on_reused_transceivers_is_forwarded() {
    let mut net = SimNet::new(7);
    let a = net.join("a", true, true);
    net.clients[a].add_track("a-video", RtpCodecKind::Video);
    net.clients[a].add_track("a-audio", RtpCodecKind::Audio);
    let b = net.join("b", true, true);
    let mut seq = 0;
    assert!(
        until(&mut net, &mut seq, |n| n.clients[b].packets_of("a-video")
            >= 10
            && n.clients[b].packets_of("a-audio") >= 10),
        "the watcher does not receive: {:?}",
        net.shard.counts
    );
    let transceivers_before = net.clients[b].pc.get_transceivers().count();
    let unknown_before = unknown_ssrc(&net);

    // Plain addTrack: the library reuses the transceivers the server's
    // offer created (same kind, no sender yet), as browsers do.
    net.clients[b].add_track("b-video", RtpCodecKind::Video);
    net.clients[b].add_track("b-audio", RtpCodecKind::Audio);
    assert_eq!(
        net.clients[b].pc.get_transceivers().count(),
        transceivers_before,
        "the client did not reuse the server's transceivers"
    );
    assert!(
        until(&mut net, &mut seq, |n| n.clients[a].packets_of("b-video")
            >= 20
            && n.clients[a].packets_of("b-audio") >= 20),
        "media on reused transceivers is not forwarded: {:?}",
        net.shard.counts
    );
    let offer = net.clients[b].pc.local_description().unwrap().sdp;
    assert!(
        offer.matches("a=sendrecv").count() >= 2,
        "the re-offer reuses transceivers as sendrecv:\n{offer}"
    );
    // The original forwarding still works both ways, and nothing was
    // dropped for lack of a track once negotiated (the test client, unlike
    // a browser, sends a packet or two before the server has its offer).
    let unknown_negotiated = unknown_ssrc(&net);
    assert!(unknown_negotiated - unknown_before <= 4);
    let before = net.clients[b].packets_of("a-video");
    until(&mut net, &mut seq, |n| {
        n.clients[b].packets_of("a-video") > before + 20
    });
    assert!(net.clients[b].packets_of("a-video") > before + 20);
    assert_eq!(unknown_ssrc(&net), unknown_negotiated);
}

/// An offer that declares other SSRCs than the client sends on, and
/// negotiates neither mid nor rid, gives the server no way to tell which
/// track a packet belongs to: such packets are counted.
#[test]
fn rtp_on_no_negotiated_track_is_counted() {
    let mut net = SimNet::new(8);
    let a = net.join("a", true, true);
    let v = net.clients[a].add_track("a-video", RtpCodecKind::Video);
    let s = net.clients[a].add_track("a-audio", RtpCodecKind::Audio);
    net.clients[a].munge = Some(Box::new(move |sdp: &str| {
        sdp.split("\r\n")
            .filter(|l| !(l.starts_with("a=extmap:") && l.contains("sdes:mid")))
            .collect::<Vec<_>>()
            .join("\r\n")
            .replace(&v.to_string(), &(v ^ 0x55).to_string())
            .replace(&s.to_string(), &(s ^ 0x55).to_string())
    }));
    net.join("b", false, true);
    let mut seq = 0;
    assert!(
        until(&mut net, &mut seq, |n| unknown_ssrc(n) >= 20),
        "unattributable RTP is not counted: {:?} {:?}",
        net.shard.counts,
        net.clients[0].errors,
    );
    assert_eq!(net.clients[1].packets_of("a-video"), 0);
}
