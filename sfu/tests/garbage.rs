//! Garbage on the media port, STUN for ufrags nobody has, and junk from a
//! connected client's own address (oversized datagrams among it) are
//! counted and dropped; the call goes on.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{payload, Net};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::media::MediaPlane;

fn dropped(stats: &signaling::media::MediaStats, why: &str) -> u64 {
    stats
        .dropped
        .iter()
        .find(|(k, _)| k == why)
        .map_or(0, |(_, v)| *v)
}

#[test]
fn junk_is_counted_and_dropped_while_the_call_continues() {
    let mut net = Net::new(2);
    let publisher = net.join("pub", true, true);
    net.clients[publisher].add_track("pub-video", RtpCodecKind::Video);
    let viewer = net.join("viewer", true, true);
    let mut seq = 0u16;
    let mut send = |net: &mut Net| {
        seq = seq.wrapping_add(1);
        net.clients[publisher].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 700), true);
    };
    let flowing = |n: &Net, at_least: u64| {
        n.clients[viewer]
            .received
            .get("pub-video")
            .is_some_and(|r| r.packets >= at_least)
    };
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !flowing(&net, 50) && std::time::Instant::now() < end {
        net.pump_for(
            Duration::from_millis(100),
            Duration::from_millis(10),
            &mut send,
        );
    }
    assert!(flowing(&net, 50), "the call is up");

    let server = net.server_addr();
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut x = 0x1234_5678_u64;
    let mut junk = |len: usize, first: u8| {
        let mut v = vec![first];
        for _ in 1..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push(x as u8);
        }
        v
    };
    for i in 0..100u32 {
        if i % 10 == 0 {
            // In bursts, so the socket's receive buffer does not overflow.
            net.pump_for(
                Duration::from_millis(30),
                Duration::from_millis(10),
                &mut send,
            );
        }
        // Not STUN, DTLS or RTP by its first byte.
        stranger
            .send_to(&junk(50 + i as usize, 70 + (i % 50) as u8), server)
            .unwrap();
        // STUN naming nobody, DTLS and RTP from an unknown address.
        stranger
            .send_to(
                &common::unsigned_binding_request(&format!("nobody{i}")),
                server,
            )
            .unwrap();
        stranger.send_to(&junk(100, 22), server).unwrap();
        stranger.send_to(&junk(200, 0x80), server).unwrap();
        // Junk RTP from the viewer's own, connected address: fails SRTP
        // authentication inside its connection, which carries on.
        net.clients[viewer]
            .socket
            .send_to(&junk(120, 0x80), server)
            .unwrap();
        // Longer than any datagram a peer sends: cut by the receive
        // buffer, so dropped whole rather than handed on in part.
        if i % 10 == 5 {
            net.clients[viewer]
                .socket
                .send_to(&junk(3000, 0x80), server)
                .unwrap();
        }
    }
    let before = net.clients[viewer].received["pub-video"].packets;
    let end = std::time::Instant::now() + Duration::from_secs(30);
    let ok = |n: &Net| {
        let s = n.plane.stats();
        dropped(&s, "garbage") >= 100
            && dropped(&s, "unknown_source") >= 300
            && dropped(&s, "oversize") >= 10
    };
    while !(ok(&net) && flowing(&net, before + 100)) && std::time::Instant::now() < end {
        net.pump_for(
            Duration::from_millis(100),
            Duration::from_millis(10),
            &mut send,
        );
    }
    let stats = net.plane.stats();
    assert!(ok(&net), "junk counted by reason: {stats:?}");
    assert!(
        flowing(&net, before + 100),
        "media keeps flowing after the junk"
    );
    assert_eq!(stats.connections, 2, "junk allocated no connection");
    assert!(net.clients.iter().all(|c| c.connected));
}
