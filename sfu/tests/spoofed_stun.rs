//! The media-path hijack: spoofed STUN from a publisher's address, naming
//! connections whose ufrags an attacker learns by joining, and from
//! thousands of made-up sources. The subscriber's media keeps flowing, no
//! state grows, and every spoofed packet is counted.
//!
//! Real UDP on loopback and two shards, so the receiver's route table and
//! the shards' address tables are both attacked. Sending from the
//! publisher's own socket is what a spoofed source address looks like to
//! the server.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{payload, Net};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::media::{MediaPlane, MediaStats};

fn dropped(stats: &MediaStats, why: &str) -> u64 {
    stats
        .dropped
        .iter()
        .find(|(k, _)| k == why)
        .map_or(0, |(_, v)| *v)
}

/// The server's ICE ufrag and password of a client's connection, from the
/// server's SDP the client applied (what any participant sees of its own).
fn server_credentials(net: &Net, i: usize) -> (String, String) {
    let sdp = &net.clients[i]
        .pc
        .remote_description()
        .expect("negotiated")
        .sdp;
    common::ice_credentials(sdp)
}

#[test]
fn spoofed_stun_neither_cuts_a_publisher_nor_grows_state() {
    let mut net = Net::new(2);
    let publisher = net.join("pub", true, true);
    net.clients[publisher].add_track("pub-video", RtpCodecKind::Video);
    let viewer = net.join("viewer", false, true);
    // An attacker with a token: a participant of its own, so it knows its
    // own ICE password and the server's ufrag format.
    let mallory = net.join("mallory", false, true);
    let mut seq = 0u16;
    let sent = std::cell::Cell::new(0u64);
    let mut send = |net: &mut Net| {
        seq = seq.wrapping_add(1);
        if net.clients[publisher].send_rtp(0, seq, seq as u32 * 3000, payload(seq, 700), true) {
            sent.set(sent.get() + 1);
        }
    };
    let received = |n: &Net| {
        n.clients[viewer]
            .received
            .get("pub-video")
            .map_or(0, |r| r.packets)
    };
    let end = Instant::now() + Duration::from_secs(60);
    while received(&net) < 50 && Instant::now() < end {
        net.pump_for(
            Duration::from_millis(100),
            Duration::from_millis(10),
            &mut send,
        );
    }
    assert!(received(&net) >= 50, "the call is up");
    assert!(net.all_connected());

    let server = net.server_addr();
    let (viewer_ufrag, viewer_pwd) = server_credentials(&net, viewer);
    let (mallory_ufrag, mallory_pwd) = server_credentials(&net, mallory);
    let (pub_ufrag, _) = server_credentials(&net, publisher);
    let before = net.plane.stats();
    let (addrs_before, routes_before) = net.plane.bound_addresses();
    assert_eq!(
        (addrs_before, routes_before),
        (3, 3),
        "one address per client"
    );

    // 1. From the publisher's address: requests naming every connection
    // (its own too) with no or a guessed MESSAGE-INTEGRITY, and one signed
    // with the attacker's own valid credentials, at about 100 packets/s
    // for 3 s while the publisher sends media.
    let spoofed_unsigned = [
        sfu::fuzzing::binding_request(&viewer_ufrag, b"guessed-password").to_vec(),
        sfu::fuzzing::binding_request(&mallory_ufrag, b"").to_vec(),
        sfu::fuzzing::binding_request(&pub_ufrag, b"not-the-password-either").to_vec(),
        common::unsigned_binding_request(&viewer_ufrag),
    ];
    let spoofed_signed =
        sfu::fuzzing::binding_request(&mallory_ufrag, mallory_pwd.as_bytes()).to_vec();
    let recv_at_start = received(&net);
    let sent_at_start = sent.get();
    let mut unsigned_sent = 0u64;
    let mut signed_sent = 0u64;
    for round in 0..30 {
        for m in &spoofed_unsigned {
            net.clients[publisher].socket.send_to(m, server).unwrap();
            unsigned_sent += 1;
        }
        net.clients[publisher]
            .socket
            .send_to(&spoofed_signed, server)
            .unwrap();
        signed_sent += 1;
        let _ = round;
        net.pump_for(
            Duration::from_millis(50),
            Duration::from_millis(10),
            &mut send,
        );
    }
    let got = received(&net) - recv_at_start;
    let out = sent.get() - sent_at_start;
    eprintln!("during the spoofed STUN from the publisher's address: {got} of {out} packets reached the viewer");
    assert!(
        got * 10 >= out * 8,
        "the viewer kept receiving the publisher: {got} of {out}"
    );

    // 2. From thousands of made-up sources, naming the viewer's and the
    // attacker's connections, signed with a guess or with the attacker's
    // own password (an address nobody holds yet: it may bind to the
    // attacker's connection, which keeps at most a few).
    let mut many_sent = 0u64;
    for batch in 0..20 {
        let sockets: Vec<UdpSocket> = (0..250)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (k, s) in sockets.iter().enumerate() {
            let m = if k % 2 == 0 {
                sfu::fuzzing::binding_request(&viewer_ufrag, b"guess").to_vec()
            } else {
                common::unsigned_binding_request(&mallory_ufrag)
            };
            s.send_to(&m, server).unwrap();
            many_sent += 1;
        }
        // The attacker's own connection may take a few of its own new
        // addresses; it never holds more than a handful.
        if batch % 5 == 0 {
            sockets[0]
                .send_to(
                    &sfu::fuzzing::binding_request(&mallory_ufrag, mallory_pwd.as_bytes()),
                    server,
                )
                .unwrap();
        }
        net.pump_for(
            Duration::from_millis(60),
            Duration::from_millis(10),
            &mut send,
        );
    }
    let _ = viewer_pwd;

    // Media still flows after the attack, and everything is counted.
    let after_attack = received(&net);
    let end = Instant::now() + Duration::from_secs(30);
    while received(&net) < after_attack + 100 && Instant::now() < end {
        net.pump_for(
            Duration::from_millis(100),
            Duration::from_millis(10),
            &mut send,
        );
    }
    assert!(
        received(&net) >= after_attack + 100,
        "media flows after the attack"
    );
    assert!(net.all_connected());
    let stats = net.plane.stats();
    let unauth = dropped(&stats, "stun_unauthenticated") - dropped(&before, "stun_unauthenticated");
    let in_use = dropped(&stats, "address_in_use") - dropped(&before, "address_in_use");
    eprintln!(
        "spoofed: {unsigned_sent} unsigned + {many_sent} from many sources counted as \
         stun_unauthenticated {unauth}; {signed_sent} signed by another participant counted \
         as address_in_use {in_use}"
    );
    // Loopback may lose a datagram when a burst overflows the socket
    // buffer; nearly all must be counted.
    assert!(
        unauth * 10 >= (unsigned_sent + many_sent) * 9,
        "spoofed requests counted: {unauth} of {}",
        unsigned_sent + many_sent
    );
    assert!(
        in_use * 10 >= signed_sent * 9,
        "another participant's signed requests from the publisher's address refused: {in_use} of {signed_sent}"
    );
    let (addrs, routes) = net.plane.bound_addresses();
    assert!(
        addrs <= 3 + sfu::core::bind::MAX_ADDRS_PER_OWNER as u64
            && routes <= 3 + sfu::core::bind::MAX_ADDRS_PER_OWNER as u64,
        "bound addresses stay bounded: {addrs} in the shards, {routes} routes"
    );
    assert_eq!(stats.connections, 3, "no connection was added or lost");
}
