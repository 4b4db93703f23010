//! Forwarded RTP is encrypted by the shard itself, with the subscriber
//! connection's SRTP keys, whichever of the two profiles the subscriber
//! negotiated; the subscriber's SRTP (the library's) accepts it, and what
//! a lossy downlink loses is repaired through the same path.

mod common;

use std::time::Duration;

use common::sim::SimNet;
use common::{payload, ClientOptions};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile as Profile;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

const TICK: Duration = Duration::from_millis(10);

fn call(profile: Profile, own_srtp: bool) -> SimNet {
    let mut net = SimNet::with_config(0x0a5e, |c| c.own_srtp = own_srtp);
    let publisher = net.join("pub", true, false);
    net.clients[publisher].add_track("pub-video", RtpCodecKind::Video);
    net.clients[publisher].add_track("pub-audio", RtpCodecKind::Audio);
    let only = ClientOptions {
        srtp_profiles: vec![profile],
        ..ClientOptions::default()
    };
    let viewer = net.join_with("viewer", false, true, only);
    net.clients[viewer].downlink_loss = 0.02;
    let mut seq = 0u16;
    for _ in 0..3_000 {
        let v = &net.clients[viewer];
        if v.packets_of("pub-video") >= 400 && v.packets_of("pub-audio") >= 400 {
            break;
        }
        seq = seq.wrapping_add(1);
        let now = net.now;
        let p = &mut net.clients[publisher];
        p.send_rtp(0, seq, seq as u32 * 900, payload(seq, 900), now);
        p.send_rtp(1, seq, seq as u32 * 480, payload(seq, 80), now);
        net.step(TICK);
    }
    net.run(Duration::from_secs(1), TICK, |_| {});
    net
}

#[test]
fn both_srtp_profiles_are_protected_by_the_shard_and_accepted_by_the_subscriber() {
    for profile in [
        Profile::Srtp_Aead_Aes_128_Gcm,
        Profile::Srtp_Aes128_Cm_Hmac_Sha1_80,
    ] {
        let net = call(profile, true);
        let viewer = &net.clients[1];
        let c = &net.shard.counts;
        for track in ["pub-video", "pub-audio"] {
            assert!(
                viewer.packets_of(track) >= 400,
                "{profile:?}: {track}: {} packets ({c:?})",
                viewer.packets_of(track)
            );
        }
        let video = viewer.received.get("pub-video").unwrap();
        assert_eq!(video.gaps(), 0, "{profile:?}: losses repaired ({c:?})");
        assert!(c.nacks_answered > 0, "{profile:?}: {c:?}");
        // Every forwarded packet and retransmission took the shard's path.
        assert!(
            c.own_srtp >= c.packets_forwarded + c.nacks_answered,
            "{profile:?}: {c:?}"
        );
        // And the publisher's packets the shard's inbound path, all but the
        // first of each stream (which the library reads, binding it).
        assert!(c.own_srtp_in >= 800 - 2 * 5, "{profile:?}: {c:?}");
    }
}

#[test]
fn with_own_srtp_off_the_library_protects_every_packet() {
    let net = call(Profile::Srtp_Aes128_Cm_Hmac_Sha1_80, false);
    let c = &net.shard.counts;
    assert!(net.clients[1].packets_of("pub-video") >= 400, "{c:?}");
    assert_eq!(c.own_srtp, 0, "{c:?}");
}

/// What a publisher's uplink loses, the NACK generator of its connection
/// asks for again although the shard, not the library, read the packets
/// around each gap: the viewer gets every packet. With the setting off
/// the library reads them all, and the same holds.
#[test]
fn uplink_losses_are_repaired_when_the_shard_reads_the_publisher() {
    for own_in in [true, false] {
        let mut net = SimNet::with_config(0x1055, |c| c.own_srtp_in = own_in);
        let publisher = net.join("pub", true, false);
        net.clients[publisher].add_track("pub-video", RtpCodecKind::Video);
        let viewer = net.join("viewer", false, true);
        let mut seq = 0u16;
        let mut sent = 0;
        for _ in 0..3_000 {
            if sent >= 600 {
                break;
            }
            seq = seq.wrapping_add(1);
            let now = net.now;
            if net.clients[publisher].send_rtp(0, seq, seq as u32 * 900, payload(seq, 900), now) {
                sent += 1;
            }
            // Loss starts once the stream is known to the shard.
            net.clients[publisher].uplink_loss = if sent > 50 { 0.03 } else { 0.0 };
            net.step(TICK);
        }
        net.clients[publisher].uplink_loss = 0.0;
        net.run(Duration::from_secs(2), TICK, |_| {});
        let c = &net.shard.counts;
        assert!(net.lost_up > 5, "own_in {own_in}: {} lost", net.lost_up);
        let video = net.clients[viewer].received.get("pub-video").unwrap();
        assert!(
            video.packets >= 550,
            "own_in {own_in}: {} packets ({c:?})",
            video.packets
        );
        assert_eq!(video.gaps(), 0, "own_in {own_in}: losses repaired ({c:?})");
        if own_in {
            assert!(c.own_srtp_in >= 500, "{c:?}");
        } else {
            assert_eq!(c.own_srtp_in, 0, "{c:?}");
        }
    }
}
