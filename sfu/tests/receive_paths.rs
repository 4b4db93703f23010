//! Each shard receives its own clients' datagrams: with two shards and a
//! room on the second, the publisher's media reaches that shard on its
//! connected socket, not through shard 0's hand-off, and is forwarded as
//! before. With `[media] connected_sockets` off, every datagram goes
//! through shard 0 (the comparison that shows the test can fail). Real
//! UDP, ICE and DTLS-SRTP on loopback.

mod common;

use std::time::Duration;

use common::{payload, Net};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::ids::RoomName;

const SHARDS: usize = 2;
const PACKETS: u16 = 300;

/// A room name the plane puts on shard 1.
fn room_on_second_shard(plane: &sfu::SfuPlane) -> RoomName {
    (0..)
        .map(|i| format!("room-{i}"))
        .find(|name| plane.shard_for_room(name) == 1)
        .and_then(|n| RoomName::parse(&n))
        .expect("a name on shard 1")
}

/// Connected clients on `connected` sockets, datagrams handed over while
/// `PACKETS` video packets were forwarded, and packets the subscriber got.
fn forward(connected: bool) -> (u64, u64, u64) {
    let mut net = Net::with_config(SHARDS, |c| c.connected_sockets = connected);
    net.room = room_on_second_shard(&net.plane);
    let publisher = net.join("pub", true, true);
    net.clients[publisher].add_track("pub-video", RtpCodecKind::Video);
    let viewer = net.join("viewer", false, true);
    let mut seq = 0u16;
    let flowing = {
        let end = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            seq = seq.wrapping_add(1);
            net.clients[publisher].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 500), true);
            net.pump_for(Duration::from_millis(20), Duration::from_millis(5), |_| {});
            if net.clients[viewer]
                .received
                .get("pub-video")
                .is_some_and(|r| r.packets >= 10)
            {
                break true;
            }
            if std::time::Instant::now() > end {
                break false;
            }
        }
    };
    assert!(flowing, "media flows from publisher to viewer");
    let (sockets, handed_before) = net.plane.receive_paths();
    let got_before = net.clients[viewer].received["pub-video"].packets;
    for _ in 0..PACKETS {
        seq = seq.wrapping_add(1);
        net.clients[publisher].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 500), true);
        net.pump_for(Duration::from_millis(4), Duration::from_millis(2), |_| {});
    }
    let target = got_before + PACKETS as u64;
    net.pump_until(Duration::from_secs(10), |n| {
        n.clients[viewer].received["pub-video"].packets >= target
    });
    let (_, handed_after) = net.plane.receive_paths();
    let got = net.clients[viewer].received["pub-video"].packets - got_before;
    (sockets, handed_after - handed_before, got)
}

#[test]
fn a_shard_reads_its_own_clients_on_connected_sockets_not_through_shard_0() {
    let (sockets, handed, got) = forward(true);
    let (sockets_off, handed_off, got_off) = forward(false);
    println!(
        "connected sockets on: {sockets} sockets, {handed} datagrams handed over, {got} forwarded; \
         off: {sockets_off}, {handed_off}, {got_off}"
    );
    assert!(
        sockets >= 2,
        "both clients have a connected socket: {sockets}"
    );
    assert!(
        got >= PACKETS as u64 * 95 / 100,
        "the viewer gets the media: {got} of {PACKETS}"
    );
    assert!(
        handed <= PACKETS as u64 / 10,
        "the publisher's media reaches its shard directly: {handed} datagrams handed over by shard 0 for {PACKETS} sent"
    );
    // Off, shard 0 reads everything and hands the second shard its share.
    assert_eq!(sockets_off, 0);
    assert!(
        got_off >= PACKETS as u64 * 95 / 100,
        "off, the viewer gets the media: {got_off}"
    );
    assert!(
        handed_off >= PACKETS as u64,
        "off, every datagram goes through shard 0: {handed_off} handed over for {PACKETS} sent"
    );
}
