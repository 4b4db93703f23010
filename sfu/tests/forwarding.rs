//! Media is forwarded between three clients in one room over real UDP,
//! ICE and DTLS-SRTP, each receiving the other two's tracks with the
//! publisher's ids in the msid.

mod common;

use std::time::Duration;

use common::{extmap_id, payload, Net, ABS_CAPTURE_TIME};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::media::MediaPlane;

#[test]
fn three_clients_receive_each_others_audio_and_video() {
    let stats = three_clients(true);
    // Every forwarded packet was encrypted by the shard itself (and the
    // clients, whose SRTP is the library's, decrypted them).
    assert!(
        stats.packets_own_srtp >= stats.packets_out,
        "forwarded RTP takes the shard's own SRTP path: {stats:?}"
    );
    // And the shard decrypted what the clients published, but for the
    // first packets of each stream (the library's, until the stream is
    // known).
    assert!(
        stats.packets_own_srtp_in > 0 && stats.packets_own_srtp_in <= stats.packets_in,
        "received RTP takes the shard's own SRTP path: {stats:?}"
    );
    // And the clients' RTCP (receiver reports, sender reports).
    assert!(
        stats.packets_own_srtcp_in > 0,
        "received RTCP takes the shard's own SRTCP path: {stats:?}"
    );
    // The shard's thread slept between the clients' packets, and its
    // wake-ups are counted.
    #[cfg(target_os = "linux")]
    assert!(stats.shard_wakeups > 0, "{stats:?}");
}

#[test]
fn with_own_srtp_off_the_library_encrypts_what_is_forwarded() {
    let stats = three_clients(false);
    assert_eq!(stats.packets_own_srtp, 0, "{stats:?}");
}

fn three_clients(own_srtp: bool) -> signaling::media::MediaStats {
    let mut net = Net::with_config(1, |c| c.own_srtp = own_srtp);
    for name in ["alice", "bob", "carol"] {
        let i = net.join(name, true, true);
        net.clients[i].add_track(&format!("{name}-video"), RtpCodecKind::Video);
        net.clients[i].add_track(&format!("{name}-audio"), RtpCodecKind::Audio);
    }
    assert!(
        net.pump_until(Duration::from_secs(20), |n| n.all_connected()),
        "all three connect to the server's one port"
    );
    let mut seq = 0u16;
    let mut ok = |net: &mut Net| {
        seq = seq.wrapping_add(1);
        for c in net.clients.iter_mut() {
            let capture = [0xC0, 0xFF, 0xEE, 0, 0, 0, (seq >> 8) as u8, seq as u8];
            c.send_rtp_ext(
                0,
                seq,
                seq as u32 * 3000,
                payload(seq, 600),
                true,
                Some(capture),
            );
            c.send_rtp(1, seq, seq as u32 * 960, payload(seq, 80), true);
        }
    };
    let all_flowing = |n: &Net| {
        n.clients
            .iter()
            .all(|c| c.received.len() == 4 && c.received.values().all(|r| r.packets >= 50))
    };
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !all_flowing(&net) && std::time::Instant::now() < end {
        net.pump_for(
            Duration::from_millis(100),
            Duration::from_millis(10),
            &mut ok,
        );
    }
    for c in &net.clients {
        let me = c.id.as_str();
        let got: Vec<&String> = c.received.keys().collect();
        assert_eq!(
            got.len(),
            4,
            "{me} receives two tracks from each of the two others: {got:?}"
        );
        for (track, r) in &c.received {
            assert!(
                !track.starts_with(me),
                "{me} does not receive its own {track}"
            );
            let publisher = track.split('-').next().unwrap();
            assert_eq!(
                r.stream_ids,
                vec![publisher.to_string()],
                "stream id of {track} is its publisher's participant id"
            );
            assert!(r.packets >= 50, "{me} got {} packets of {track}", r.packets);
            if track.ends_with("-video") {
                // The publisher's abs-capture-time arrives intact, under the
                // id this subscriber negotiated for it.
                let sdp = c.pc.remote_description().unwrap().sdp.clone();
                let id = extmap_id(&sdp, ABS_CAPTURE_TIME).expect("negotiated abs-capture-time");
                let stamp = r.ext_payloads.get(&id).expect("abs-capture-time forwarded");
                assert_eq!(&stamp[..3], &[0xC0, 0xFF, 0xEE], "{me}: {track}");
                assert!(!r.ext_ids.is_empty());
            }
        }
    }
    // The shards read their wake-up count once a second: wait for a
    // reading taken after they first slept.
    #[cfg(target_os = "linux")]
    net.pump_until(Duration::from_secs(20), |n| {
        n.plane.stats().shard_wakeups > 0
    });
    let stats = net.plane.stats();
    assert_eq!(stats.connections, 3);
    assert_eq!(stats.tracks, 6);
    assert!(stats.packets_out >= 600, "{stats:?}");
    assert!(
        stats.keyframe_requests_sent >= 1,
        "new subscribers asked for keyframes: {stats:?}"
    );
    stats
}
