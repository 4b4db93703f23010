//! Two media planes (two nodes of a cluster) joined by a relay: a
//! publisher on one, a subscriber on the other, real UDP, ICE and
//! DTLS-SRTP between each client and its node and between the nodes. The
//! relay's offers and answers are carried here as signaling would.

mod common;

use std::time::{Duration, Instant};

use common::camera::{keyframe_width, sized, vp8, SIZES};
use common::{payload, wait_for_io, Net};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::ids::{NodeId, ParticipantId};
use signaling::media::{MediaCommand, MediaEvent, MediaPlane, RelayEnd, TrackSettings};

thread_local! {
    /// The latest relay SDP node "a" sent (it holds the full end).
    static A_SDP: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Carries relay offers, answers and stream needs from one node's plane to
/// the other's.
fn carry(from: &mut Net, from_node: &str, to: &Net) {
    for ev in from.relay_sdp.drain(..) {
        match ev {
            MediaEvent::RelaySdp {
                room, kind, sdp, ..
            } => {
                if from_node == "a" {
                    A_SDP.with(|s| *s.borrow_mut() = sdp.clone());
                }
                to.plane.handle(MediaCommand::RelaySdp {
                    room,
                    node: NodeId::new(from_node),
                    kind,
                    sdp,
                });
            }
            MediaEvent::RelayStreams {
                room,
                publisher,
                track,
                active,
                ..
            } => to.plane.handle(MediaCommand::RelayStreams {
                room,
                node: NodeId::new(from_node),
                publisher,
                track,
                active,
            }),
            _ => {}
        }
    }
}

fn pump_both(a: &mut Net, b: &mut Net) {
    a.pump();
    b.pump();
    carry(a, "a", b);
    carry(b, "b", a);
}

/// Pumps both nodes until `cond` holds, for at most `max` of wall-clock
/// time, waiting for the clients' sockets and timers between pumps; true
/// if it held.
fn pump_both_until(
    a: &mut Net,
    b: &mut Net,
    max: Duration,
    mut cond: impl FnMut(&Net, &Net) -> bool,
) -> bool {
    let end = Instant::now() + max;
    loop {
        pump_both(a, b);
        if cond(a, b) {
            return true;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        wait_for_io(&mut [&mut *a, &mut *b], left);
    }
}

/// One frame of alice's media (video, and audio if `audio`), then the
/// two nodes pumped for 10 ms: the frame rate of her camera.
fn frame(a: &mut Net, b: &mut Net, alice: usize, seq: &mut u16, audio: bool) {
    *seq = seq.wrapping_add(1);
    let s = *seq;
    let c = &mut a.clients[alice];
    c.send_rtp(0, s, s as u32 * 3000, payload(s, 600), true);
    if audio {
        c.send_rtp(1, s, s as u32 * 960, payload(s, 80), true);
    }
    pump_both_until(a, b, Duration::from_millis(10), |_, _| false);
}

/// Opens the room's relay on both nodes ("a" < "b": node a holds the
/// full end).
fn open_relay(a: &Net, b: &Net) {
    a.plane.handle(MediaCommand::RelayOpen {
        room: a.room.clone(),
        node: NodeId::new("b"),
        end: RelayEnd::Full,
    });
    b.plane.handle(MediaCommand::RelayOpen {
        room: b.room.clone(),
        node: NodeId::new("a"),
        end: RelayEnd::Lite,
    });
}

#[test]
fn a_publisher_on_one_node_reaches_a_subscriber_on_another_through_a_relay() {
    let mut a = Net::new(1);
    let mut b = Net::new(2);
    let alice = a.join("alice", true, true);
    a.clients[alice].add_track("alice-video", RtpCodecKind::Video);
    a.clients[alice].add_track("alice-audio", RtpCodecKind::Audio);
    let bob = b.join("bob", false, true);
    open_relay(&a, &b);

    let mut seq = 0u16;
    let flowing = |b: &Net| {
        let r = &b.clients[bob].received;
        r.len() == 2 && r.values().all(|t| t.packets >= 50)
    };
    let end = Instant::now() + Duration::from_secs(30);
    while !flowing(&b) && Instant::now() < end {
        frame(&mut a, &mut b, alice, &mut seq, true);
    }
    let got = &b.clients[bob].received;
    assert_eq!(
        got.len(),
        2,
        "bob gets alice's two tracks: {:?}",
        got.keys()
    );
    for (track, r) in got {
        assert!(track.starts_with("alice-"), "{track}");
        assert!(r.packets >= 50, "{track}: {} packets", r.packets);
        // As if alice were on bob's node: her participant id in the msid.
        assert_eq!(r.stream_ids, vec!["alice".to_string()], "{track}");
    }
    let (sa, sb) = (a.plane.stats(), b.plane.stats());
    assert_eq!((sa.relays, sb.relays), (1, 1));
    assert_eq!(sb.connections, 1, "relays are not counted as participants");
    assert!(sa.relay_packets_out >= 100, "{sa:?}");
    assert!(sb.relay_packets_in >= 100, "{sb:?}");
    assert_eq!(
        sb.relay_packets_out, 0,
        "nothing goes back: bob publishes nothing"
    );

    // The full end's own socket (the candidate in its SDP) takes nothing
    // from anywhere but the other node: STUN and junk from elsewhere are
    // dropped and counted, and the media goes on.
    let relay_socket = A_SDP.with(|s| sfu::core::sdp::candidate_addresses(&s.borrow()));
    assert_eq!(relay_socket.len(), 1, "{relay_socket:?}");
    let unknown = |n: &Net| {
        n.plane
            .stats()
            .dropped
            .iter()
            .find(|(r, _)| r == "unknown_source")
            .map_or(0, |(_, v)| *v)
    };
    let before = unknown(&a);
    let packets_before: u64 = b.clients[bob].received.values().map(|t| t.packets).sum();
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for k in 0..50u8 {
        // A STUN binding request (no attributes), then junk.
        let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        stun.extend([k; 12]);
        stranger.send_to(&stun, relay_socket[0]).unwrap();
        stranger
            .send_to(&[0x80, k, 1, 2, 3], relay_socket[0])
            .unwrap();
    }
    let end = Instant::now() + Duration::from_secs(10);
    while unknown(&a) < before + 100 && Instant::now() < end {
        frame(&mut a, &mut b, alice, &mut seq, false);
    }
    assert_eq!(
        unknown(&a),
        before + 100,
        "every datagram from the stranger dropped and counted"
    );
    let mut buf = [0u8; 1500];
    stranger.set_nonblocking(true).unwrap();
    assert!(
        stranger.recv_from(&mut buf).is_err(),
        "the stranger got no answer"
    );
    for _ in 0..50 {
        frame(&mut a, &mut b, alice, &mut seq, false);
    }
    let packets_after: u64 = b.clients[bob].received.values().map(|t| t.packets).sum();
    assert!(
        packets_after >= packets_before + 40,
        "{packets_before} -> {packets_after}"
    );

    // A keyframe request on node b crosses to the publisher on node a.
    // First a quiet spell, so no request of the set-up is still to come.
    let end = Instant::now() + Duration::from_secs(10);
    let before = loop {
        let v = a.plane.stats().keyframe_requests_sent;
        // A window of wall-clock time in which nothing may change.
        pump_both_until(&mut a, &mut b, Duration::from_millis(800), |_, _| false);
        if a.plane.stats().keyframe_requests_sent == v {
            break v;
        }
        assert!(Instant::now() < end, "keyframe requests never settle");
    };
    let end = Instant::now() + Duration::from_secs(10);
    let mut crossed = false;
    while Instant::now() < end && !crossed {
        // Asked again every 100 ms, as a receiver does while it has no
        // picture (the throttle may merge a request away).
        b.request_keyframe(bob, "alice-video");
        crossed = pump_both_until(&mut a, &mut b, Duration::from_millis(100), |a, _| {
            a.plane.stats().keyframe_requests_sent > before
        });
    }
    assert!(crossed, "bob's PLI reached alice's node through the relay");

    // The room no longer spans the nodes: alice's tracks leave bob.
    a.plane.handle(MediaCommand::RelayClose {
        room: a.room.clone(),
        node: NodeId::new("b"),
    });
    b.plane.handle(MediaCommand::RelayClose {
        room: b.room.clone(),
        node: NodeId::new("a"),
    });
    let offers = b.clients[bob].offers_received;
    let closed = b.pump_until(Duration::from_secs(10), |n| {
        n.plane.stats().relays == 0 && n.clients[bob].offers_received > offers
    });
    assert!(
        closed,
        "the relay goes and bob is offered the room without alice's tracks"
    );
    assert_eq!(a.plane.stats().relays, 0);
}

/// One frame of alice's simulcast camera: a packet on each stream, a
/// keyframe on every stream every 20 frames; then both nodes pumped for
/// 10 ms.
fn shoot(a: &mut Net, b: &mut Net, alice: usize, frame_no: &mut u32) {
    let f = *frame_no;
    let key = f.is_multiple_of(20);
    for (s, size) in SIZES.iter().enumerate() {
        let p = vp8(true, f as u16 & 0x7fff, f as u8, key, *size, 300);
        let seq = (s as u16 * 20_000).wrapping_add(f as u16);
        a.clients[alice].send_rtp(s, seq, f * 3000, p, true);
    }
    *frame_no += 1;
    pump_both_until(a, b, Duration::from_millis(10), |_, _| false);
}

/// Tells node `net` what size `who` shows alice's camera at.
fn show_alice_at(net: &Net, who: usize, w: u32, h: u32) {
    net.plane.handle(MediaCommand::TrackSettings {
        room: net.room.clone(),
        participant: net.clients[who].id.clone(),
        publisher: ParticipantId::from_string("alice"),
        track: "alice-cam".into(),
        settings: TrackSettings { ..sized(w, h) },
    });
}

/// Every simulcast stream crosses the relay, so subscribers on the far
/// node each get the stream that fits their tile, and move between
/// streams there as a local subscriber would. With one stream crossing,
/// both would get the same.
#[test]
fn each_subscriber_on_the_far_node_gets_the_simulcast_stream_that_fits_it() {
    let mut a = Net::new(1);
    let mut b = Net::new(2);
    let alice = a.join("alice", true, false);
    a.clients[alice].add_simulcast_track("alice-cam", &["q", "h", "f"]);
    let bob = b.join("bob", false, true);
    let carol = b.join("carol", false, true);
    show_alice_at(&b, bob, 320, 180);
    show_alice_at(&b, carol, 1280, 720);
    open_relay(&a, &b);

    let mut frame_no = 0u32;
    let width = |b: &Net, who: usize| {
        b.clients[who]
            .received
            .get("alice-cam")
            .and_then(keyframe_width)
    };
    let end = Instant::now() + Duration::from_secs(30);
    while (width(&b, bob), width(&b, carol)) != (Some(320), Some(1280)) && Instant::now() < end {
        shoot(&mut a, &mut b, alice, &mut frame_no);
    }
    assert_eq!(
        (width(&b, bob), width(&b, carol)),
        (Some(320), Some(1280)),
        "bob's small tile gets the lowest stream, carol's large one the top"
    );

    // The tiles swap sizes: the far node moves each subscriber.
    show_alice_at(&b, bob, 1280, 720);
    show_alice_at(&b, carol, 320, 180);
    let end = Instant::now() + Duration::from_secs(30);
    while (width(&b, bob), width(&b, carol)) != (Some(1280), Some(320)) && Instant::now() < end {
        shoot(&mut a, &mut b, alice, &mut frame_no);
    }
    assert_eq!(
        (width(&b, bob), width(&b, carol)),
        (Some(1280), Some(320)),
        "each moved to the stream of its new size"
    );
    // One copy of each stream crossed, whatever the far node's
    // subscribers take: three streams, not one per subscriber.
    let (sa, sb) = (a.plane.stats(), b.plane.stats());
    assert!(sb.relay_packets_in >= 3 * 40, "{sb:?}");
    assert!(
        sa.relay_packets_out <= 3 * frame_no as u64 + 50,
        "{} packets out over the relay for {frame_no} frames",
        sa.relay_packets_out
    );

    // Both tiles small: after the dynacast grace, node b tells node a it
    // needs only the lowest stream. The relay then carries only that, and
    // alice, whom nobody on her own node watches, is told to stop
    // encoding the other two.
    show_alice_at(&b, bob, 320, 180);
    let told = |a: &Net| {
        a.encodings.iter().rev().find_map(|e| match e {
            MediaEvent::PublisherEncodings { encodings, .. } => {
                Some(encodings.iter().map(|e| e.active).collect::<Vec<_>>())
            }
            _ => None,
        })
    };
    let end = Instant::now() + Duration::from_secs(30);
    while told(&a) != Some(vec![true, false, false]) && Instant::now() < end {
        shoot(&mut a, &mut b, alice, &mut frame_no);
    }
    assert_eq!(
        told(&a),
        Some(vec![true, false, false]),
        "alice is told to send only her lowest stream"
    );
    let (out0, frames0) = (a.plane.stats().relay_packets_out, frame_no);
    for _ in 0..60 {
        shoot(&mut a, &mut b, alice, &mut frame_no);
    }
    let (out, frames) = (a.plane.stats().relay_packets_out - out0, frame_no - frames0);
    assert!(
        out <= frames as u64 + 10,
        "only the lowest stream crosses now: {out} packets for {frames} frames"
    );
    assert_eq!(width(&b, bob), Some(320));

    // Carol's tile grows again: the top stream is needed at once, crosses
    // again, and she gets it.
    show_alice_at(&b, carol, 1280, 720);
    let end = Instant::now() + Duration::from_secs(30);
    while width(&b, carol) != Some(1280) && Instant::now() < end {
        shoot(&mut a, &mut b, alice, &mut frame_no);
    }
    assert_eq!(width(&b, carol), Some(1280), "the top stream is back");
    assert_eq!(told(&a).map(|t| t[2]), Some(true), "alice encodes it again");
}
