//! A client that nominates another candidate pair on a live connection
//! (browsers do when a pair they prefer becomes valid after the first, or
//! their network changes) and from then on sends only from there: the
//! server's media follows it, and its connection stays up past the
//! consent timeout, though the media library keeps the first pair. Runs
//! on the in-memory network with a virtual clock.

mod common;

use std::time::Duration;

use common::payload;
use common::sim::SimNet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

const FRAME: Duration = Duration::from_millis(33);

fn send(net: &mut SimNet, seq: u16) {
    let now = net.now;
    net.clients[0].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 200), now);
}

#[test]
fn media_follows_a_client_that_nominates_another_pair_and_its_connection_stays_up() {
    let mut net = SimNet::new(5);
    let a = net.join("a", true, true);
    net.clients[a].add_track("a-video", RtpCodecKind::Video);
    let b = net.join("b", false, true);
    let mut seq = 0u16;
    let up = net.run_until(
        FRAME,
        Duration::from_secs(20),
        |n| {
            seq = seq.wrapping_add(1);
            send(n, seq);
        },
        |n| n.clients[b].packets_of("a-video") >= 10,
    );
    assert!(up, "the call did not come up: {:?}", net.shard.counts);

    // The subscriber moves to another socket and nominates the pair from
    // there, signed with the server's password, as Chromium does.
    let server_sdp = net.clients[b]
        .server_sdps
        .last()
        .expect("server SDP")
        .clone();
    let own_sdp = net.clients[b].pc.local_description().expect("own SDP").sdp;
    let (server_ufrag, pwd) = common::ice_credentials(&server_sdp);
    let username = format!("{server_ufrag}:{}", common::ice_credentials(&own_sdp).0);
    let moved = net.new_addr();
    net.clients[b].move_to(moved);
    let now = net.now;
    net.shard.handle_datagram(
        moved,
        sfu::fuzzing::nominating_binding_request(&username, pwd.as_bytes()),
        now,
    );
    let undelivered_at_move = net.undelivered;
    let had = net.clients[b].packets_of("a-video");

    // A minute: past the consent timeout (30 s) and the failure after it
    // (10 s more), with the client's own checks coming from the new
    // address only.
    let end = net.now + Duration::from_secs(60);
    while net.now < end {
        seq = seq.wrapping_add(1);
        send(&mut net, seq);
        net.step(FRAME);
    }
    let got = net.clients[b].packets_of("a-video") - had;
    let frames = 60_000 / 33;
    assert!(
        got >= frames * 9 / 10,
        "media reaches the subscriber at its new address: {got} packets of {frames} \
         ({} sent to an address the client left)",
        net.undelivered - undelivered_at_move
    );
    assert_eq!(
        net.shard.counts.disconnects, 0,
        "no connection lost consent: {:?}",
        net.shard.counts
    );
    assert!(
        net.undelivered - undelivered_at_move <= 5,
        "nothing but what was in flight goes to the address the client left: {}",
        net.undelivered - undelivered_at_move
    );
    assert!(
        net.clients[b].connected(),
        "the subscriber stays connected: {:?}",
        net.clients[b].states
    );
}
