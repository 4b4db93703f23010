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
    }
}

#[test]
fn with_own_srtp_off_the_library_protects_every_packet() {
    let net = call(Profile::Srtp_Aes128_Cm_Hmac_Sha1_80, false);
    let c = &net.shard.counts;
    assert!(net.clients[1].packets_of("pub-video") >= 400, "{c:?}");
    assert_eq!(c.own_srtp, 0, "{c:?}");
}
